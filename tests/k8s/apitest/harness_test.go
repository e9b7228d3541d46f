// The harness itself, as the driver's tests will use it: the kubeconfigs authenticate as their
// identities, and the API server can be taken away and brought back with its data intact.
package apitest

import (
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"testing"

	"sigs.k8s.io/yaml"
)

// kubeconfigClient builds a client from a kubeconfig written by cluster.sh, using only what the
// file says (server, embedded CA, token), as a Kubernetes client library would.
func kubeconfigClient(t *testing.T, path string) *Client {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Clusters []struct {
			Cluster struct {
				Server string `json:"server"`
				CAData string `json:"certificate-authority-data"`
			} `json:"cluster"`
		} `json:"clusters"`
		Users []struct {
			User struct {
				Token string `json:"token"`
			} `json:"user"`
		} `json:"users"`
	}
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if len(cfg.Clusters) != 1 || len(cfg.Users) != 1 {
		t.Fatalf("%s: want one cluster and one user, got %d and %d", path, len(cfg.Clusters), len(cfg.Users))
	}
	ca, err := base64.StdEncoding.DecodeString(cfg.Clusters[0].Cluster.CAData)
	if err != nil {
		t.Fatal(err)
	}
	caFile := t.TempDir() + "/ca.crt"
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(Env{Server: cfg.Clusters[0].Cluster.Server, CAFile: caFile}, cfg.Users[0].User.Token)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// whoAmI asks the server who the client is (SelfSubjectReview).
func whoAmI(t *testing.T, c *Client) (string, []string) {
	t.Helper()
	body := map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
	resp := expect(t, http.StatusCreated)(c.Do(http.MethodPost, "/apis/authentication.k8s.io/v1/selfsubjectreviews",
		"application/json", body))
	var answer struct {
		Status struct {
			UserInfo struct {
				Username string   `json:"username"`
				Groups   []string `json:"groups"`
			} `json:"userInfo"`
		} `json:"status"`
	}
	if err := resp.Decode(&answer); err != nil {
		t.Fatal(err)
	}
	return answer.Status.UserInfo.Username, answer.Status.UserInfo.Groups
}

func TestKubeconfigsAuthenticateAsTheirIdentity(t *testing.T) {
	for _, c := range []struct {
		env, user, group string
	}{
		{"TETHER_K8S_ADMIN_KUBECONFIG", "tether-admin", "system:masters"},
		{"TETHER_K8S_DRIVER_KUBECONFIG", "system:serviceaccount:tether:tether-csi-controller", "system:serviceaccounts:tether"},
	} {
		path := os.Getenv(c.env)
		if path == "" {
			t.Fatalf("%s is not set", c.env)
		}
		user, groups := whoAmI(t, kubeconfigClient(t, path))
		if user != c.user || !slices.Contains(groups, c.group) {
			t.Errorf("%s authenticates as %s %v, want %s in %s", c.env, user, groups, c.user, c.group)
		}
	}
}

func ctl(t *testing.T, command string) {
	t.Helper()
	out, err := exec.Command(os.Getenv("TETHER_K8S_CTL"), command, os.Getenv("TETHER_K8S_DIR")).CombinedOutput()
	if err != nil {
		t.Fatalf("cluster.sh %s: %v\n%s", command, err, out)
	}
}

func TestAPIServerStopsAndComesBackWithItsData(t *testing.T) {
	ensureNamespace(t, "harness")
	if _, err := admin.Do(http.MethodGet, "/readyz", "", nil); err != nil {
		t.Fatal(err)
	}
	ctl(t, "stop-apiserver")
	// Started again whatever happens below, for the tests that follow.
	defer ctl(t, "start-apiserver")
	if _, err := admin.Do(http.MethodGet, "/readyz", "", nil); err == nil {
		t.Fatal("the API server still answers after stop-apiserver")
	}
	ctl(t, "start-apiserver")
	expect(t, http.StatusOK)(admin.Do(http.MethodGet, "/api/v1/namespaces/harness", "", nil))
}
