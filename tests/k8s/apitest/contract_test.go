// What the cluster needs from deploy/, read from the server's own (defaulted) answer to the dry
// run: attach required, the driver's and the sidecars' leader election, the driver's probes, the
// cluster store in the controller and the node plugin (with its token), one data directory for
// both controller replicas and the node plugin beside them, the node plugin's mounts.
package apitest

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

type httpProbe struct {
	HTTPGet *struct {
		Path string          `json:"path"`
		Port json.RawMessage `json:"port"` // a number or a port name
	} `json:"httpGet"`
}

type container struct {
	Name  string   `json:"name"`
	Image string   `json:"image"`
	Args  []string `json:"args"`
	Env   []struct {
		Name      string `json:"name"`
		Value     string `json:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `json:"fieldPath"`
			} `json:"fieldRef"`
		} `json:"valueFrom"`
	} `json:"env"`
	Ports []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
	} `json:"ports"`
	ReadinessProbe  *httpProbe `json:"readinessProbe"`
	LivenessProbe   *httpProbe `json:"livenessProbe"`
	SecurityContext struct {
		Privileged *bool `json:"privileged"`
	} `json:"securityContext"`
	VolumeMounts []struct {
		Name             string `json:"name"`
		MountPath        string `json:"mountPath"`
		MountPropagation string `json:"mountPropagation"`
	} `json:"volumeMounts"`
}

type podSpec struct {
	ServiceAccountName           string      `json:"serviceAccountName"`
	AutomountServiceAccountToken *bool       `json:"automountServiceAccountToken"`
	Containers                   []container `json:"containers"`
	Affinity                     struct {
		PodAffinity struct {
			Required []struct {
				LabelSelector struct {
					MatchLabels map[string]string `json:"matchLabels"`
				} `json:"labelSelector"`
				TopologyKey string `json:"topologyKey"`
			} `json:"requiredDuringSchedulingIgnoredDuringExecution"`
		} `json:"podAffinity"`
	} `json:"affinity"`
	Volumes []struct {
		Name     string `json:"name"`
		HostPath *struct {
			Path string `json:"path"`
		} `json:"hostPath"`
	} `json:"volumes"`
}

type workload struct {
	Spec struct {
		Replicas *int `json:"replicas"`
		Strategy struct {
			Type string `json:"type"`
		} `json:"strategy"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template struct {
			Metadata struct {
				Labels map[string]string `json:"labels"`
			} `json:"metadata"`
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

// container returns the pod's container called name.
func (p podSpec) container(t *testing.T, name string) container {
	t.Helper()
	for _, c := range p.Containers {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no container %s in %v", name, containerNames(p))
	return container{}
}

// fieldRef is the downward-API field an env variable of c comes from, "" if none.
func (c container) fieldRef(name string) string {
	for _, e := range c.Env {
		if e.Name == name && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil {
			return e.ValueFrom.FieldRef.FieldPath
		}
	}
	return ""
}

// flag is the value of --name=value in c's args, and whether it is there.
func (c container) flag(name string) (string, bool) {
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// probePort resolves an httpGet probe's port (a number or the name of one of c's ports).
func (c container) probePort(p *httpProbe) (int, error) {
	var number int
	if err := json.Unmarshal(p.HTTPGet.Port, &number); err == nil {
		return number, nil
	}
	var name string
	if err := json.Unmarshal(p.HTTPGet.Port, &name); err != nil {
		return 0, fmt.Errorf("probe port %s: %w", p.HTTPGet.Port, err)
	}
	for _, port := range c.Ports {
		if port.Name == name {
			return port.ContainerPort, nil
		}
	}
	return 0, fmt.Errorf("probe port %q names no port of %s", name, c.Name)
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
			if !slices.Contains(c.Args, "--leader-election") {
				t.Errorf("tether-csi args %v: no --leader-election, so every replica would serve", c.Args)
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

// The driver's Lease: its namespace (POD_NAMESPACE, unless --leader-election-namespace says) and
// its identity (POD_NAME, else --node-id, which both replicas share) come from the downward API.
func TestControllerDriverTakesItsLeaseIdentityFromThePod(t *testing.T) {
	var d workload
	dryRun(t, "Deployment", "tether-csi-controller", &d)
	c := d.Spec.Template.Spec.container(t, "tether-csi")
	for name, want := range map[string]string{"POD_NAME": "metadata.name", "POD_NAMESPACE": "metadata.namespace"} {
		if got := c.fieldRef(name); got != want {
			t.Errorf("tether-csi env %s comes from field %q, want %q", name, got, want)
		}
	}
	if v, ok := c.flag("--leader-election-namespace"); ok && v != "$(POD_NAMESPACE)" && v != ns {
		t.Errorf("--leader-election-namespace=%s: the Lease role is only in %s", v, ns)
	}
}

// The kubelet probes the driver from outside the pod: /readyz (503 on a standby and while
// rebuilding) for readiness, /healthz for liveness, on the port --metrics-address listens on, and
// not on loopback (the driver's default).
func TestControllerDriverIsProbedOnItsMetricsAddress(t *testing.T) {
	var d workload
	dryRun(t, "Deployment", "tether-csi-controller", &d)
	c := d.Spec.Template.Spec.container(t, "tether-csi")
	address, ok := c.flag("--metrics-address")
	if !ok {
		t.Fatalf("tether-csi args %v: no --metrics-address, so it listens on 127.0.0.1 only", c.Args)
	}
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		t.Fatalf("--metrics-address=%s: %v", address, err)
	}
	if ip := net.ParseIP(host); host == "localhost" || ip != nil && ip.IsLoopback() {
		t.Errorf("--metrics-address=%s: the kubelet cannot reach a loopback address", address)
	}
	for _, p := range []struct {
		kind, path string
		probe      *httpProbe
	}{{"readiness", "/readyz", c.ReadinessProbe}, {"liveness", "/healthz", c.LivenessProbe}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("tether-csi has no %s probe over HTTP", p.kind)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s probe path %q, want %s", p.kind, p.probe.HTTPGet.Path, p.path)
		}
		got, err := c.probePort(p.probe)
		if err != nil {
			t.Error(err)
		} else if strconv.Itoa(got) != port {
			t.Errorf("%s probe port %d, but --metrics-address=%s", p.kind, got, address)
		}
	}
}

// Two replicas, one data directory: the state is in the API server, but CreateVolume writes a
// volume's data under --state-dir/data on its node (a hostPath), so a standby may only take over
// if it runs on the node the leader ran on. And since a standby is never Ready, only Recreate (not
// a rolling update, which waits for new pods to turn Ready) can replace the pods.
func TestControllerReplicasShareOneDataDirectoryAndAreRecreated(t *testing.T) {
	var d workload
	dryRun(t, "Deployment", "tether-csi-controller", &d)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("controller replicas %v, want 2 (a leader and a standby)", d.Spec.Replicas)
	}
	if d.Spec.Strategy.Type != "Recreate" {
		t.Errorf("controller strategy %q, want Recreate", d.Spec.Strategy.Type)
	}
	pod := d.Spec.Template.Spec
	if dir := pod.stateHostPath(t, "tether-csi"); dir == "" {
		t.Fatal("the controller's --state-dir is not a hostPath volume; then this test must change with it")
	}
	together := false
	for _, term := range pod.Affinity.PodAffinity.Required {
		matchesReplicas := len(term.LabelSelector.MatchLabels) > 0
		for k, v := range term.LabelSelector.MatchLabels {
			matchesReplicas = matchesReplicas && d.Spec.Template.Metadata.Labels[k] == v
		}
		together = together || matchesReplicas && term.TopologyKey == "kubernetes.io/hostname"
	}
	if !together {
		t.Errorf("no required podAffinity puts the replicas on one node: %+v", pod.Affinity)
	}
}

// stateHostPath is the host directory mounted at container's --state-dir, "" if that is no
// hostPath volume.
func (p podSpec) stateHostPath(t *testing.T, container string) string {
	t.Helper()
	c := p.container(t, container)
	stateDir, _ := c.flag("--state-dir")
	volume := ""
	for _, m := range c.VolumeMounts {
		if stateDir != "" && m.MountPath == stateDir {
			volume = m.Name
		}
	}
	for _, v := range p.Volumes {
		if v.Name == volume && v.HostPath != nil {
			return v.HostPath.Path
		}
	}
	return ""
}

// Both run the cluster store: the controller as its owner (it takes the term and re-fences), the
// node plugin as a reader with a mounted token of its own identity. Neither takes a lock on the
// state directory, so on the controller's node both use one host directory: the node plugin stages
// the data CreateVolume wrote there.
func TestControllerAndNodePluginRunTheClusterStore(t *testing.T) {
	var controller, nodes workload
	dryRun(t, "Deployment", "tether-csi-controller", &controller)
	dryRun(t, "DaemonSet", "tether-csi-node", &nodes)
	c := controller.Spec.Template.Spec.container(t, "tether-csi")
	if v, _ := c.flag("--store"); v != "kubernetes" || slices.Contains(c.Args, "--node-plugin") {
		t.Errorf("controller tether-csi args %v: want --store=kubernetes, not as a node plugin", c.Args)
	}
	pod := nodes.Spec.Template.Spec
	plugin := pod.container(t, "tether-csi")
	if v, _ := plugin.flag("--store"); v != "kubernetes" || !slices.Contains(plugin.Args, "--node-plugin") {
		t.Errorf("node tether-csi args %v: want --store=kubernetes --node-plugin", plugin.Args)
	}
	if pod.ServiceAccountName != "tether-csi-node" {
		t.Errorf("node plugin service account %q, want tether-csi-node", pod.ServiceAccountName)
	}
	if pod.AutomountServiceAccountToken == nil || !*pod.AutomountServiceAccountToken {
		t.Error("the node plugin mounts no service account token, so it cannot read TetherVolumes")
	}
	controllerDir, nodeDir := controller.Spec.Template.Spec.stateHostPath(t, "tether-csi"), pod.stateHostPath(t, "tether-csi")
	if controllerDir == "" || controllerDir != nodeDir {
		t.Errorf("--state-dir on the host: controller %q, node plugin %q; want one directory", controllerDir, nodeDir)
	}
}

func TestNodePluginIsPrivilegedWithBidirectionalKubeletMount(t *testing.T) {
	var d workload
	dryRun(t, "DaemonSet", "tether-csi-node", &d)
	pod := d.Spec.Template.Spec
	if got := containerNames(pod); !slices.Equal(got, []string{"tether-csi", "node-driver-registrar"}) {
		t.Fatalf("node containers %v", got)
	}
	plugin, registrar := pod.Containers[0], pod.Containers[1]
	// The node plugin reaches the API server in-cluster, with its own token (above): no
	// kubeconfig, and no Lease (a --node-plugin refuses --leader-election).
	for _, a := range plugin.Args {
		if strings.HasPrefix(a, "--kubeconfig") || strings.HasPrefix(a, "--leader-election") {
			t.Errorf("tether-csi node args carry %s", a)
		}
	}
	for _, e := range plugin.Env {
		if e.Name == "KUBECONFIG" {
			t.Error("tether-csi node env sets KUBECONFIG")
		}
	}
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

// The sidecar images deploy/ runs are the releases the control-plane tier builds and tests
// (tests/k8s/versions.env), so what is deployed is what was exercised.
func TestControllerSidecarsAreTheVersionsTheTierTests(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	pins := map[string]string{}
	for _, line := range strings.Split(string(raw), "\n") {
		if name, value, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			pins[name] = value
		}
	}
	want := map[string]string{
		"csi-attacher":    "registry.k8s.io/sig-storage/csi-attacher:" + pins["ATTACHER_VERSION"],
		"csi-provisioner": "registry.k8s.io/sig-storage/csi-provisioner:" + pins["PROVISIONER_VERSION"],
	}
	var d workload
	dryRun(t, "Deployment", "tether-csi-controller", &d)
	for _, c := range d.Spec.Template.Spec.Containers {
		if image, ok := want[c.Name]; ok && c.Image != image {
			t.Errorf("%s image %q; the tier tests %q", c.Name, c.Image, image)
		}
		delete(want, c.Name)
	}
	for name := range want {
		t.Errorf("no %s container in the controller", name)
	}
}
