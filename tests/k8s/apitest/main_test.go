// Shared set-up of the API server tests: the clients of each identity and deploy/ applied once.
package apitest

import (
	"fmt"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"
)

var (
	env                          Env
	admin, driver, probe, nobody *Client
	deployOnce                   sync.Once
	deployErr                    error
	nodeOnce                     sync.Once
	nodeClient                   *Client // the node plugin's token (tether-csi-node), after deploy
	nodeErr                      error
)

func TestMain(m *testing.M) {
	if err := setUp(); err != nil {
		fmt.Fprintln(os.Stderr, "apitest:", err)
		os.Exit(2)
	}
	os.Exit(m.Run())
}

func setUp() (err error) {
	if env, err = LoadEnv(); err != nil {
		return err
	}
	for _, c := range []struct {
		client **Client
		token  string
	}{{&admin, env.AdminToken}, {&driver, env.DriverToken}, {&probe, env.ProbeToken}, {&nobody, env.NobodyToken}} {
		if *c.client, err = NewClient(env, c.token); err != nil {
			return err
		}
	}
	return nil
}

// resources resolves every object's resource through discovery.
func resources(t *testing.T, objects []Object) []Resource {
	t.Helper()
	byVersion := map[string]map[string]Resource{}
	out := make([]Resource, len(objects))
	for i, o := range objects {
		kinds, ok := byVersion[o.APIVersion]
		if !ok {
			var err error
			if kinds, err = Discover(admin, o.APIVersion); err != nil {
				t.Fatal(err)
			}
			byVersion[o.APIVersion] = kinds
		}
		if out[i], ok = kinds[o.Kind]; !ok {
			t.Fatalf("%v: the server serves no kind %s in %s", o, o.Kind, o.APIVersion)
		}
	}
	return out
}

func manifests(t *testing.T) ([]Object, []Resource) {
	t.Helper()
	objects, err := LoadManifests(env.DeployDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(objects) == 0 {
		t.Fatalf("no manifests in %s", env.DeployDir)
	}
	return objects, resources(t, objects)
}

// ensureNamespace creates a namespace for real (namespaced objects, dry run or not, need one).
func ensureNamespace(t *testing.T, name string) {
	t.Helper()
	ns := map[string]any{"apiVersion": "v1", "kind": "Namespace", "metadata": map[string]any{"name": name}}
	resp, err := admin.Do(http.MethodPost, "/api/v1/namespaces", "application/json", ns)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != http.StatusCreated && resp.Status != http.StatusConflict {
		t.Fatalf("creating namespace %s: %d %s", name, resp.Status, resp.Body)
	}
}

// deploy applies every manifest for real, once per test binary, for the tests that need the RBAC.
func deploy(t *testing.T) {
	t.Helper()
	deployOnce.Do(func() {
		objects, res := manifests(t)
		for i, o := range objects {
			resp, err := Apply(admin, o, res[i], false)
			if err == nil && resp.Status != http.StatusOK && resp.Status != http.StatusCreated {
				err = fmt.Errorf("applying %v: %d %s", o, resp.Status, resp.Body)
			}
			if err != nil {
				deployErr = err
				return
			}
		}
		deployErr = served(crdCollections, time.Minute)
	})
	if deployErr != nil {
		t.Fatal(deployErr)
	}
}

// crdCollections are the collections of the CRDs in deploy/ (00-crd.yaml).
var crdCollections = []string{"/apis/tether.io/v1alpha1/tethervolumes", "/apis/tether.io/v1alpha1/tetherterms"}

// served polls until the admin can list every collection (a CRD is served a moment after it is
// created), failing after within.
func served(collections []string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, path := range collections {
		for {
			resp, err := admin.Do(http.MethodGet, path+"?limit=1", "", nil)
			if err == nil && resp.Status == http.StatusOK {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s not served after %v: %v %d %s", path, within, err, resp.Status, resp.Body)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nil
}

// nodePlugin is a client with a real token of tether-csi-node, the one the DaemonSet mounts.
func nodePlugin(t *testing.T) *Client {
	t.Helper()
	deploy(t)
	nodeOnce.Do(func() {
		token, err := ServiceAccountToken(admin, ns, "tether-csi-node")
		if err == nil {
			nodeClient, err = NewClient(env, token)
		}
		nodeErr = err
	})
	if nodeErr != nil {
		t.Fatal(nodeErr)
	}
	return nodeClient
}

// applyAt server-side applies body at path as the admin (test fixtures, not deploy/).
func applyAt(t *testing.T, path string, body map[string]any) {
	t.Helper()
	applied(t)(admin.Do(http.MethodPatch, path+"?fieldManager=tether-tests&force=true",
		"application/apply-patch+yaml", body))
}

// expect fails the test on a transport error or a status not in want; use as
// expect(t, http.StatusOK)(client.Do(...)).
func expect(t *testing.T, want ...int) func(Response, error) Response {
	return func(resp Response, err error) Response {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(want, resp.Status) {
			t.Fatalf("status %d, want %v: %.400s", resp.Status, want, resp.Body)
		}
		return resp
	}
}

// applied accepts what a server-side apply answers: 201 when it created, 200 when it updated.
func applied(t *testing.T) func(Response, error) Response {
	return expect(t, http.StatusOK, http.StatusCreated)
}

// ObjectMeta is the part of an answer the tests look at first.
type ObjectMeta struct {
	Kind     string `json:"kind"`
	Metadata struct {
		Name            string            `json:"name"`
		Namespace       string            `json:"namespace"`
		ResourceVersion string            `json:"resourceVersion"`
		Annotations     map[string]string `json:"annotations"`
	} `json:"metadata"`
}
