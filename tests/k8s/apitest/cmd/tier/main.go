// Command tier is what tests/k8s/stack.sh asks of the API server and of deploy/: apply the
// manifests, mint a ServiceAccount's kubeconfig, and read a controller container's arguments (so
// the processes of the tier run with the flags the Deployment gives them).
//
//	tier apply DIR                   server-side apply every manifest in DIR, as the admin
//	tier kubeconfig NS SA OUT        a token for ServiceAccount NS/SA (TokenRequest), as a kubeconfig
//	tier args DIR OBJECT CONTAINER OLD=NEW...   a container's args in the pod template of the
//	                                           object named OBJECT, one a line, each OLD made NEW
package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"

	"sigs.k8s.io/yaml"

	"tether.example/tests/k8s/apitest"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "tier:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	switch {
	case len(args) == 2 && args[0] == "apply":
		return apply(args[1])
	case len(args) == 4 && args[0] == "kubeconfig":
		return kubeconfig(args[1], args[2], args[3])
	case len(args) >= 4 && args[0] == "args":
		return containerArgs(args[1], args[2], args[3], args[4:])
	}
	return fmt.Errorf("usage: tier apply DIR | kubeconfig NS SA OUT | args DIR OBJECT CONTAINER OLD=NEW...")
}

func admin() (apitest.Env, *apitest.Client, error) {
	env, err := apitest.LoadEnv()
	if err != nil {
		return env, nil, err
	}
	c, err := apitest.NewClient(env, env.AdminToken)
	return env, c, err
}

func apply(dir string) error {
	_, c, err := admin()
	if err != nil {
		return err
	}
	objects, err := apitest.LoadManifests(dir)
	if err != nil {
		return err
	}
	kinds := map[string]map[string]apitest.Resource{}
	for _, o := range objects {
		if kinds[o.APIVersion] == nil {
			if kinds[o.APIVersion], err = apitest.Discover(c, o.APIVersion); err != nil {
				return err
			}
		}
		r, ok := kinds[o.APIVersion][o.Kind]
		if !ok {
			return fmt.Errorf("%v: no kind %s in %s", o, o.Kind, o.APIVersion)
		}
		resp, err := apitest.Apply(c, o, r, false)
		if err != nil {
			return err
		}
		if resp.Status != http.StatusOK && resp.Status != http.StatusCreated {
			return fmt.Errorf("applying %v: %d %s", o, resp.Status, resp.Body)
		}
	}
	return nil
}

// kubeconfig mints a real ServiceAccount token, so requests authenticate through the service
// account authenticator as the pod's would (not through the static token file).
func kubeconfig(namespace, sa, out string) error {
	env, c, err := admin()
	if err != nil {
		return err
	}
	token, err := apitest.ServiceAccountToken(c, namespace, sa)
	if err != nil {
		return err
	}
	ca, err := os.ReadFile(env.CAFile)
	if err != nil {
		return err
	}
	config := map[string]any{
		"apiVersion": "v1", "kind": "Config", "current-context": sa,
		"clusters": []any{map[string]any{"name": "tether-test", "cluster": map[string]any{
			"server": env.Server, "certificate-authority-data": base64.StdEncoding.EncodeToString(ca)}}},
		"users":    []any{map[string]any{"name": sa, "user": map[string]any{"token": token}}},
		"contexts": []any{map[string]any{"name": sa, "context": map[string]any{"cluster": "tether-test", "user": sa, "namespace": namespace}}},
	}
	raw, err := yaml.Marshal(config)
	if err != nil {
		return err
	}
	return os.WriteFile(out, raw, 0o600)
}

func containerArgs(dir, object, container string, subs []string) error {
	objects, err := apitest.LoadManifests(dir)
	if err != nil {
		return err
	}
	for _, o := range objects {
		if o.Name != object || (o.Kind != "Deployment" && o.Kind != "DaemonSet") {
			continue
		}
		var pod struct {
			Spec struct {
				Template struct {
					Spec struct {
						Containers []struct {
							Name string   `json:"name"`
							Args []string `json:"args"`
						} `json:"containers"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		if err := yaml.Unmarshal(o.JSON, &pod); err != nil {
			return err
		}
		for _, c := range pod.Spec.Template.Spec.Containers {
			if c.Name != container {
				continue
			}
			for _, arg := range c.Args {
				for _, sub := range subs {
					old, new, _ := strings.Cut(sub, "=")
					arg = strings.ReplaceAll(arg, old, new)
				}
				fmt.Println(arg)
			}
			return nil
		}
	}
	return fmt.Errorf("no container %s in a Deployment or DaemonSet %s in %s", container, object, dir)
}
