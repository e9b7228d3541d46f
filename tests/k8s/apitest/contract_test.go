// What the cluster needs from deploy/, read from the server's own (defaulted) answer to the dry
// run: attach required, the sidecars and their leader election, the node plugin's mounts.
package apitest

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

type podSpec struct {
	ServiceAccountName           string `json:"serviceAccountName"`
	AutomountServiceAccountToken *bool  `json:"automountServiceAccountToken"`
	Containers                   []struct {
		Name            string   `json:"name"`
		Image           string   `json:"image"`
		Args            []string `json:"args"`
		SecurityContext struct {
			Privileged *bool `json:"privileged"`
		} `json:"securityContext"`
		VolumeMounts []struct {
			MountPath        string `json:"mountPath"`
			MountPropagation string `json:"mountPropagation"`
		} `json:"volumeMounts"`
	} `json:"containers"`
}

type workload struct {
	Spec struct {
		Template struct {
			Spec podSpec `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

// dryRun returns the server's answer to a dry run of one manifest, decoded into v.
func dryRun(t *testing.T, kind, name string, v any) {
	t.Helper()
	ensureNamespace(t, "tether")
	objects, res := manifests(t)
	i := find(t, objects, kind, name)
	if err := applied(t)(Apply(admin, objects[i], res[i], true)).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func containerNames(p podSpec) []string {
	var names []string
	for _, c := range p.Containers {
		names = append(names, c.Name)
	}
	return names
}

// Sidecar images are pinned to a release tag, never a moving one.
var pinned = regexp.MustCompile(`^registry\.k8s\.io/sig-storage/[a-z-]+:v\d+\.\d+\.\d+$`)

func TestCSIDriverRequiresAttach(t *testing.T) {
	var d struct {
		Spec struct {
			AttachRequired *bool `json:"attachRequired"`
		} `json:"spec"`
	}
	dryRun(t, "CSIDriver", "tether.csi.dev", &d)
	if d.Spec.AttachRequired == nil || !*d.Spec.AttachRequired {
		t.Error("CSIDriver tether.csi.dev: attachRequired is not true")
	}
}

func TestControllerRunsTheDriverWithItsSidecarsUnderLeaderElection(t *testing.T) {
	var d workload
	dryRun(t, "Deployment", "tether-csi-controller", &d)
	pod := d.Spec.Template.Spec
	if pod.ServiceAccountName != "tether-csi-controller" {
		t.Errorf("controller service account %q", pod.ServiceAccountName)
	}
	if got := containerNames(pod); !slices.Equal(got, []string{"tether-csi", "csi-provisioner", "csi-attacher"}) {
		t.Errorf("controller containers %v", got)
	}
	for _, c := range pod.Containers {
		if c.Name == "tether-csi" {
			if !slices.Contains(c.Args, "--endpoint=unix:///csi/csi.sock") {
				t.Errorf("tether-csi args %v lack the endpoint", c.Args)
			}
			continue
		}
		if !pinned.MatchString(c.Image) {
			t.Errorf("%s image %q is not a pinned registry.k8s.io release", c.Name, c.Image)
		}
		if !slices.Contains(c.Args, "--leader-election") || !slices.Contains(c.Args, "--csi-address=/csi/csi.sock") {
			t.Errorf("%s args %v: want --leader-election and the driver's socket", c.Name, c.Args)
		}
	}
}

func TestNodePluginIsPrivilegedWithBidirectionalKubeletMount(t *testing.T) {
	var d workload
	dryRun(t, "DaemonSet", "tether-csi-node", &d)
	pod := d.Spec.Template.Spec
	if got := containerNames(pod); !slices.Equal(got, []string{"tether-csi", "node-driver-registrar"}) {
		t.Fatalf("node containers %v", got)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the node plugin mounts a service account token it has no use for")
	}
	plugin, registrar := pod.Containers[0], pod.Containers[1]
	if plugin.SecurityContext.Privileged == nil || !*plugin.SecurityContext.Privileged {
		t.Error("tether-csi node container is not privileged")
	}
	bidirectional := false
	for _, m := range plugin.VolumeMounts {
		bidirectional = bidirectional || m.MountPath == "/var/lib/kubelet" && m.MountPropagation == "Bidirectional"
	}
	if !bidirectional {
		t.Errorf("no Bidirectional mount of /var/lib/kubelet in %+v", plugin.VolumeMounts)
	}
	if !pinned.MatchString(registrar.Image) {
		t.Errorf("registrar image %q is not a pinned registry.k8s.io release", registrar.Image)
	}
	if !slices.ContainsFunc(registrar.Args, func(a string) bool {
		return strings.HasPrefix(a, "--kubelet-registration-path=/var/lib/kubelet/plugins/tether.csi.dev/")
	}) {
		t.Errorf("registrar args %v: no registration path under the driver's plugin directory", registrar.Args)
	}
}
