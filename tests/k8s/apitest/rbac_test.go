// The RBAC of deploy/ on the real server: the driver's own roles grant exactly the verbs its
// Kubernetes layer uses, the controller identity also covers the sidecars, and nothing wider.
package apitest

import (
	"slices"
	"sort"
	"testing"
)

const (
	ns    = "tether" // the driver's namespace (leases)
	appNS = "app"    // any namespace a PVC lives in (events)
)

// perms is one Perm per verb.
func perms(group, resource, namespace string, verbs ...string) []Perm {
	out := make([]Perm, len(verbs))
	for i, v := range verbs {
		out[i] = Perm{v, group, resource, namespace}
	}
	return out
}

// driverNeeds is every request the driver's Kubernetes layer (driver/src/k8s/) makes, written from
// its code, not from deploy/:
//   - poster.rs creates a core/v1 Event on the PVC, in the PVC's namespace (never patches one, and
//     never reads the PVC: it comes from the volume's parameters or its PV's claimRef);
//   - cluster.rs runs a Node and a PV reflector (list and watch);
//   - rebuild.rs lists VolumeAttachments and PVs; attachments.rs runs a VolumeAttachment
//     reflector (list and watch);
//   - annotate.rs merge-patches a PV's annotations and gets it again after a 409;
//   - lease.rs gets, creates and replaces (update) its Lease, in the driver's namespace;
//   - and the cluster store it runs with (storeNeeds).
func driverNeeds() []Perm {
	return slices.Concat(
		perms("", "events", appNS, "create"),
		perms("", "nodes", "", "list", "watch"),
		perms("storage.k8s.io", "volumeattachments", "", "list", "watch"),
		perms("", "persistentvolumes", "", "get", "list", "watch", "patch"),
		perms("coordination.k8s.io", "leases", ns, "get", "create", "update"),
		storeNeeds(),
	)
}

// storeNeeds is every request the controller's cluster store (driver/src/store/kube/mod.rs) makes,
// all cluster-scoped: it gets, creates, replaces (update) and deletes one TetherVolume, lists
// them (the load and the re-fence), and gets, creates and replaces the TetherTerm singleton.
func storeNeeds() []Perm {
	return slices.Concat(
		perms("tether.io", "tethervolumes", "", "get", "list", "create", "update", "delete"),
		perms("tether.io", "tetherterms", "", "get", "create", "update"),
	)
}

// nodeNeeds is every request a node plugin of the cluster store (--node-plugin) makes: it gets one
// TetherVolume at each NodeStage and NodePublish, and nothing else.
func nodeNeeds() []Perm {
	return perms("tether.io", "tethervolumes", "", "get")
}

// beyondStore is a sample of what no identity may do with the cluster store's objects: watch,
// patch or delete them in bulk, or list, delete or patch the term.
func beyondStore() []Perm {
	return slices.Concat(
		perms("tether.io", "tethervolumes", "", "watch", "patch", "deletecollection"),
		perms("tether.io", "tetherterms", "", "list", "watch", "patch", "delete", "deletecollection"),
		perms("tether.io", "tethervolumes/status", "", "get", "update", "patch"),
	)
}

// sidecarNeeds is what external-provisioner and external-attacher use for this driver.
func sidecarNeeds() []Perm {
	return slices.Concat(
		perms("", "persistentvolumes", "", "create", "delete", "patch"),
		perms("", "persistentvolumeclaims", appNS, "get", "list", "watch", "update"),
		perms("storage.k8s.io", "storageclasses", "", "get", "list", "watch"),
		perms("", "events", appNS, "list", "watch", "create", "update", "patch"),
		perms("storage.k8s.io", "csinodes", "", "get", "list", "watch"),
		perms("storage.k8s.io", "volumeattachments", "", "get", "list", "watch", "patch"),
		perms("storage.k8s.io", "volumeattachments/status", "", "patch"),
		perms("coordination.k8s.io", "leases", ns, "get", "list", "watch", "create", "update", "delete"),
	)
}

// beyondController is a sample of what no identity of the controller pod may do.
func beyondController() []Perm {
	return []Perm{
		{"create", "", "secrets", appNS}, {"get", "", "secrets", ns}, {"list", "", "secrets", ""},
		{"create", "", "pods", appNS}, {"delete", "", "pods", ns}, {"get", "", "configmaps", ns},
		{"update", "", "nodes", ""}, {"patch", "", "nodes", ""}, {"delete", "", "nodes", ""},
		{"update", "", "persistentvolumes", ""}, {"delete", "", "persistentvolumeclaims", appNS},
		{"patch", "", "persistentvolumeclaims", appNS}, {"create", "", "persistentvolumeclaims", appNS},
		{"create", "storage.k8s.io", "volumeattachments", ""}, {"delete", "storage.k8s.io", "volumeattachments", ""},
		{"update", "storage.k8s.io", "volumeattachments", ""}, {"delete", "", "events", appNS},
		{"create", "coordination.k8s.io", "leases", appNS}, {"update", "coordination.k8s.io", "leases", "kube-system"},
		{"delete", "storage.k8s.io", "csidrivers", ""}, {"create", "storage.k8s.io", "storageclasses", ""},
		{"delete", "", "namespaces", ""}, {"create", "", "serviceaccounts/token", ns},
		{"impersonate", "", "users", ""}, {"create", "rbac.authorization.k8s.io", "clusterrolebindings", ""},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", ""},
		// Granted to the driver before it settled on what it uses; no container of the pod uses them.
		{"get", "", "nodes", ""}, {"create", "events.k8s.io", "events", appNS},
		{"patch", "events.k8s.io", "events", appNS},
	}
}

// beyondDriver: verbs the sidecars hold that the driver's own roles must not.
func beyondDriver() []Perm {
	return []Perm{
		{"create", "", "persistentvolumes", ""}, {"delete", "", "persistentvolumes", ""},
		{"list", "", "persistentvolumeclaims", appNS}, {"watch", "", "persistentvolumeclaims", appNS},
		{"update", "", "persistentvolumeclaims", appNS}, {"patch", "storage.k8s.io", "volumeattachments", ""},
		{"patch", "storage.k8s.io", "volumeattachments/status", ""}, {"list", "", "events", appNS},
		{"update", "", "events", appNS}, {"get", "storage.k8s.io", "storageclasses", ""},
		{"get", "storage.k8s.io", "csinodes", ""}, {"list", "coordination.k8s.io", "leases", ns},
		{"delete", "coordination.k8s.io", "leases", ns},
		// Granted to the driver before it settled on what it uses; the sidecars still use them.
		{"get", "", "persistentvolumeclaims", appNS}, {"patch", "", "events", appNS},
		{"get", "storage.k8s.io", "volumeattachments", ""},
	}
}

func assertAccess(t *testing.T, c *Client, who string, perms []Perm, want bool) {
	t.Helper()
	for _, p := range perms {
		got, err := Allowed(c, p)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s: %v allowed = %v, want %v", who, p, got, want)
		}
	}
}

func TestControllerIdentityMayDoWhatTheDriverAndSidecarsNeed(t *testing.T) {
	deploy(t)
	assertAccess(t, driver, "tether-csi-controller", driverNeeds(), true)
	assertAccess(t, driver, "tether-csi-controller", sidecarNeeds(), true)
}

func TestControllerIdentityIsRefusedEverythingElse(t *testing.T) {
	deploy(t)
	assertAccess(t, driver, "tether-csi-controller", beyondController(), false)
	assertAccess(t, driver, "tether-csi-controller", beyondStore(), false)
}

// bindProbe binds the driver's own roles (not the sidecars') to the probe user.
func bindProbe(t *testing.T) {
	t.Helper()
	deploy(t)
	subjects := []map[string]any{{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "tether-rbac-probe"}}
	binding := func(kind, roleKind, role, namespace string) {
		meta := map[string]any{"name": "tether-test-probe-" + role}
		path := "/apis/rbac.authorization.k8s.io/v1/" + map[string]string{
			"ClusterRoleBinding": "clusterrolebindings/", "RoleBinding": "namespaces/" + namespace + "/rolebindings/",
		}[kind]
		if namespace != "" {
			meta["namespace"] = namespace
		}
		body := map[string]any{
			"apiVersion": "rbac.authorization.k8s.io/v1", "kind": kind, "metadata": meta, "subjects": subjects,
			"roleRef": map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": roleKind, "name": role},
		}
		applyAt(t, path+meta["name"].(string), body)
	}
	binding("ClusterRoleBinding", "ClusterRole", "tether-csi-driver", "")
	binding("RoleBinding", "Role", "tether-csi-driver-leader-election", ns)
	binding("ClusterRoleBinding", "ClusterRole", "tether-csi-store-controller", "")
}

func TestDriverRolesGrantTheDriverNeedsAndNotTheSidecars(t *testing.T) {
	bindProbe(t)
	assertAccess(t, probe, "driver roles", driverNeeds(), true)
	assertAccess(t, probe, "driver roles", beyondDriver(), false)
	assertAccess(t, probe, "driver roles", beyondController(), false)
}

// The exact proof: everything the driver's roles grant in a namespace, minus what any
// authenticated user may do, is the driver's needs in that namespace and nothing else.
func TestDriverRolesGrantExactlyTheDriverNeeds(t *testing.T) {
	bindProbe(t)
	assertExactly(t, probe, "the driver's roles", driverNeeds())
}

// The same for the controller pod's identity as a whole: the driver's and the sidecars' needs.
func TestControllerIdentityGrantsExactlyTheDriverAndSidecarNeeds(t *testing.T) {
	deploy(t)
	assertExactly(t, driver, "tether-csi-controller", append(driverNeeds(), sidecarNeeds()...))
}

func assertExactly(t *testing.T, c *Client, who string, needs []Perm) {
	t.Helper()
	for _, namespace := range []string{ns, appNS} {
		granted, err := Rules(c, namespace)
		if err != nil {
			t.Fatal(err)
		}
		baseline, err := Rules(nobody, namespace)
		if err != nil {
			t.Fatal(err)
		}
		var extra []string
		for _, k := range granted {
			if !slices.Contains(baseline, k) {
				extra = append(extra, k)
			}
		}
		want := map[string]bool{}
		for _, p := range needs {
			if p.Namespace == "" || p.Namespace == namespace || isAnyNamespace(p) {
				want[p.key()] = true
			}
		}
		wantKeys := make([]string, 0, len(want))
		for k := range want {
			wantKeys = append(wantKeys, k)
		}
		sort.Strings(wantKeys)
		if !slices.Equal(extra, wantKeys) {
			t.Errorf("in %s %s grant\n  %v\nwant exactly\n  %v", namespace, who, extra, wantKeys)
		}
	}
}

// isAnyNamespace: events and PVCs are wherever the PVC is, so those needs (asked in appNS: the
// driver's events, the sidecars' events and PVCs) hold in every namespace; the Leases are needed in
// the driver's namespace only.
func isAnyNamespace(p Perm) bool {
	return p.Resource == "events" || p.Resource == "persistentvolumeclaims"
}

// The node plugin's identity, asked about as the DaemonSet's token: it may get a TetherVolume,
// and nothing the controller pod does besides (no list, update or delete of TetherVolumes, no
// term), nor anything sampled beyond the controller.
func TestNodeIdentityMayOnlyGetTetherVolumes(t *testing.T) {
	c := nodePlugin(t)
	assertAccess(t, c, "tether-csi-node", nodeNeeds(), true)
	var others []Perm
	for _, p := range slices.Concat(driverNeeds(), sidecarNeeds(), beyondController(), beyondStore()) {
		if !slices.Contains(nodeNeeds(), p) {
			others = append(others, p)
		}
	}
	assertAccess(t, c, "tether-csi-node", others, false)
}

// The exact proof for the node plugin: its token grants get on tethervolumes, and nothing else
// beyond what any authenticated user may do, in the driver's namespace and in an application's.
func TestNodeIdentityGrantsExactlyTheNodeNeeds(t *testing.T) {
	assertExactly(t, nodePlugin(t), "tether-csi-node", nodeNeeds())
}
