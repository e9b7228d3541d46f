// The driver's requests done for real against the server (not only access reviews), the way
// driver/src/k8s/ makes them: each succeeds as the controller pod's identity and as the driver's
// roles alone (so no sidecar rule can stand in for a missing driver rule), and requests outside
// them are refused with 403 and change nothing.
package apitest

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const (
	pvName  = "pv-tether-ops"
	pvcName = "claim-tether-ops"
	vaName  = "va-tether-ops"
)

// fixtures creates, as the admin, a Node, a PV of this driver bound to a PVC, and a VolumeAttachment.
func fixtures(t *testing.T) {
	t.Helper()
	deploy(t)
	ensureNamespace(t, appNS)
	applyAt(t, "/api/v1/nodes/node-a", map[string]any{"apiVersion": "v1", "kind": "Node", "metadata": map[string]any{"name": "node-a"}})
	applyAt(t, "/api/v1/persistentvolumes/"+pvName, map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolume", "metadata": map[string]any{"name": pvName},
		"spec": map[string]any{
			"capacity": map[string]any{"storage": "1Gi"}, "accessModes": []string{"ReadWriteOnce"},
			"persistentVolumeReclaimPolicy": "Retain", "csi": map[string]any{"driver": "tether.csi.dev", "volumeHandle": "vol-ops"},
			"claimRef": map[string]any{"namespace": appNS, "name": pvcName},
		},
	})
	applyAt(t, "/api/v1/namespaces/"+appNS+"/persistentvolumeclaims/"+pvcName, map[string]any{
		"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": map[string]any{"name": pvcName, "namespace": appNS},
		"spec": map[string]any{
			"accessModes": []string{"ReadWriteOnce"}, "volumeName": pvName, "storageClassName": "",
			"resources": map[string]any{"requests": map[string]any{"storage": "1Gi"}},
		},
	})
	applyAt(t, "/apis/storage.k8s.io/v1/volumeattachments/"+vaName, map[string]any{
		"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment", "metadata": map[string]any{"name": vaName},
		"spec": map[string]any{"attacher": "tether.csi.dev", "nodeName": "node-a", "source": map[string]any{"persistentVolumeName": pvName}},
	})
}

// asDriver runs f as the controller pod's identity, then as the probe user bound to the driver's
// own roles only; name tells them apart (for object names).
func asDriver(t *testing.T, f func(t *testing.T, c *Client, name string)) {
	t.Helper()
	bindProbe(t)
	for _, who := range []struct {
		name string
		c    *Client
	}{{"controller", driver}, {"driver-roles", probe}} {
		t.Run(who.name, func(t *testing.T) { f(t, who.c, who.name) })
	}
}

// names are the object names of a list answer.
func names(t *testing.T, resp Response) []string {
	t.Helper()
	var list struct {
		Items []struct {
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
		} `json:"items"`
	}
	if err := resp.Decode(&list); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(list.Items))
	for i, item := range list.Items {
		out[i] = item.Metadata.Name
	}
	return out
}

func contains(t *testing.T, what string, got []string, want string) {
	t.Helper()
	for _, g := range got {
		if g == want {
			return
		}
	}
	t.Errorf("%s %v lacks %s", what, got, want)
}

// watch opens a watch of path for a second: a granted watch answers 200 and starts with a
// synthetic ADDED event per existing object.
func watch(c *Client, path string) (Response, error) {
	return c.Do(http.MethodGet, path+"?watch=true&timeoutSeconds=1", "", nil)
}

// The Node and PV reflectors (list, then watch), the rebuild's paged lists of VolumeAttachments
// and PVs, and the PV read again after a conflict.
func TestDriverIdentityListsAndWatchesWhatItCaches(t *testing.T) {
	fixtures(t)
	asDriver(t, func(t *testing.T, c *Client, _ string) {
		contains(t, "nodes", names(t, expect(t, http.StatusOK)(c.Do(http.MethodGet, "/api/v1/nodes", "", nil))), "node-a")
		contains(t, "persistentvolumes", names(t, expect(t, http.StatusOK)(c.Do(http.MethodGet,
			"/api/v1/persistentvolumes?limit=500", "", nil))), pvName)
		contains(t, "volumeattachments", names(t, expect(t, http.StatusOK)(c.Do(http.MethodGet,
			"/apis/storage.k8s.io/v1/volumeattachments?limit=500", "", nil))), vaName)
		for path, object := range map[string]string{"/api/v1/nodes": "node-a", "/api/v1/persistentvolumes": pvName} {
			body := string(expect(t, http.StatusOK)(watch(c, path)).Body)
			if !strings.Contains(body, `"type":"ADDED"`) || !strings.Contains(body, `"name":"`+object+`"`) {
				t.Errorf("watch of %s: no ADDED event for %s in %.300s", path, object, body)
			}
		}
		var pv ObjectMeta
		if err := expect(t, http.StatusOK)(c.Do(http.MethodGet, "/api/v1/persistentvolumes/"+pvName, "", nil)).Decode(&pv); err != nil {
			t.Fatal(err)
		}
		if pv.Metadata.Name != pvName {
			t.Errorf("got PV %q, want %s", pv.Metadata.Name, pvName)
		}
	})
}

// annotate.rs: a merge patch of the two annotations, conditional on the resourceVersion; a stale
// one is a conflict (409, not 403), after which the PV is read again and the patch retried; a
// volume attached nowhere loses its nodes annotation (null) and keeps its epoch.
func TestDriverIdentityAnnotatesAPersistentVolume(t *testing.T) {
	fixtures(t)
	path := "/api/v1/persistentvolumes/" + pvName
	asDriver(t, func(t *testing.T, c *Client, _ string) {
		patch := func(resourceVersion string, nodes any, epoch string) (Response, error) {
			return c.Do(http.MethodPatch, path, "application/merge-patch+json", map[string]any{"metadata": map[string]any{
				"resourceVersion": resourceVersion,
				"annotations":     map[string]any{"tether.io/attached-nodes": nodes, "tether.io/epoch": epoch},
			}})
		}
		// Each answer into a fresh ObjectMeta: decoding into a used one keeps its old annotations.
		meta := func(resp Response) ObjectMeta {
			t.Helper()
			var m ObjectMeta
			if err := resp.Decode(&m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		expect(t, http.StatusConflict)(patch("1", "node-a", "3"))
		pv := meta(expect(t, http.StatusOK)(c.Do(http.MethodGet, path, "", nil)))
		pv = meta(expect(t, http.StatusOK)(patch(pv.Metadata.ResourceVersion, "node-a", "3")))
		if a := pv.Metadata.Annotations; a["tether.io/attached-nodes"] != "node-a" || a["tether.io/epoch"] != "3" {
			t.Errorf("annotations after the patch %v, want node-a and epoch 3", a)
		}
		pv = meta(expect(t, http.StatusOK)(patch(pv.Metadata.ResourceVersion, nil, "3")))
		if a := pv.Metadata.Annotations; a["tether.io/epoch"] != "3" {
			t.Errorf("annotations after the detach %v, want epoch 3 kept", a)
		} else if _, ok := a["tether.io/attached-nodes"]; ok {
			t.Errorf("annotations after the detach %v, want no attached-nodes", a)
		}
	})
}

// claimEvent is a core/v1 Event on the fixture PVC as poster.rs builds it.
func claimEvent(meta map[string]any) map[string]any {
	now := time.Now().UTC().Format(time.RFC3339)
	meta["namespace"] = appNS
	return map[string]any{
		"apiVersion": "v1", "kind": "Event", "metadata": meta,
		"involvedObject": map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": appNS, "name": pvcName},
		"reason":         "VolumeAttached", "message": `volume vol-ops: attached to "node-a"`, "type": "Normal", "count": 1,
		"firstTimestamp": now, "lastTimestamp": now, "source": map[string]any{"component": "tether.csi.dev"},
		"reportingComponent": "tether.csi.dev", "reportingInstance": "node-a",
	}
}

// poster.rs: each event is created (generateName "<pvc>.") in the PVC's namespace, never updated.
func TestDriverIdentityPostsEventsOnAClaim(t *testing.T) {
	fixtures(t)
	asDriver(t, func(t *testing.T, c *Client, _ string) {
		event := claimEvent(map[string]any{"generateName": pvcName + "."})
		var got ObjectMeta
		if err := expect(t, http.StatusCreated)(c.Do(http.MethodPost, "/api/v1/namespaces/"+appNS+"/events",
			"application/json", event)).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(got.Metadata.Name, pvcName+".") || got.Metadata.Namespace != appNS {
			t.Errorf("event created as %s/%s", got.Metadata.Namespace, got.Metadata.Name)
		}
	})
}

// lease.rs: get (404 while there is none), create (409 when another replica was first), replace
// to renew, take over or release (409 when the copy is stale).
func TestDriverIdentityHoldsALease(t *testing.T) {
	deploy(t)
	base := "/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases"
	asDriver(t, func(t *testing.T, c *Client, name string) {
		path := base + "/tether-ops-" + name
		lease := map[string]any{
			"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": map[string]any{"name": "tether-ops-" + name},
			"spec": map[string]any{"holderIdentity": "replica-a", "leaseDurationSeconds": 15},
		}
		expect(t, http.StatusNotFound)(c.Do(http.MethodGet, path, "", nil))
		expect(t, http.StatusCreated)(c.Do(http.MethodPost, base, "application/json", lease))
		expect(t, http.StatusConflict)(c.Do(http.MethodPost, base, "application/json", lease))
		var got map[string]any
		if err := expect(t, http.StatusOK)(c.Do(http.MethodGet, path, "", nil)).Decode(&got); err != nil {
			t.Fatal(err)
		}
		got["spec"].(map[string]any)["holderIdentity"] = "replica-b"
		var renewed struct {
			Spec struct {
				HolderIdentity string `json:"holderIdentity"`
			} `json:"spec"`
		}
		if err := expect(t, http.StatusOK)(c.Do(http.MethodPut, path, "application/json", got)).Decode(&renewed); err != nil {
			t.Fatal(err)
		}
		if renewed.Spec.HolderIdentity != "replica-b" {
			t.Errorf("holder after the update %q, want replica-b", renewed.Spec.HolderIdentity)
		}
		expect(t, http.StatusConflict)(c.Do(http.MethodPut, path, "application/json", got))
	})
}

// What no container of the controller pod may do, asked for as its identity.
func TestDriverIdentityIsRefusedOutsideItsPermissions(t *testing.T) {
	fixtures(t)
	secret := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "stolen"}}
	expect(t, http.StatusForbidden)(driver.Do(http.MethodPost, "/api/v1/namespaces/"+appNS+"/secrets", "application/json", secret))
	expect(t, http.StatusForbidden)(driver.Do(http.MethodGet, "/api/v1/namespaces/"+ns+"/secrets", "", nil))
	expect(t, http.StatusForbidden)(driver.Do(http.MethodDelete, "/api/v1/nodes/node-a", "", nil))
	expect(t, http.StatusForbidden)(driver.Do(http.MethodDelete, "/apis/storage.k8s.io/v1/volumeattachments/"+vaName, "", nil))
	// The Node reflector never gets one Node, and events are core/v1 only.
	expect(t, http.StatusForbidden)(driver.Do(http.MethodGet, "/api/v1/nodes/node-a", "", nil))
	series := map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": map[string]any{"name": "tether-ops-new", "namespace": appNS},
		"eventTime": time.Now().UTC().Format("2006-01-02T15:04:05.000000Z"), "reportingController": "tether.csi.dev/tether-csi",
		"reportingInstance": "tether-csi-0", "action": "Attach", "reason": "VolumeAttached", "type": "Normal",
		"note": "attached to node-a", "regarding": map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": appNS, "name": pvcName},
	}
	expect(t, http.StatusForbidden)(driver.Do(http.MethodPost, "/apis/events.k8s.io/v1/namespaces/"+appNS+"/events",
		"application/json", series))
	// A refused request changed nothing.
	expect(t, http.StatusOK)(admin.Do(http.MethodGet, "/api/v1/nodes/node-a", "", nil))
	expect(t, http.StatusOK)(admin.Do(http.MethodGet, "/apis/storage.k8s.io/v1/volumeattachments/"+vaName, "", nil))
	expect(t, http.StatusNotFound)(admin.Do(http.MethodGet, "/apis/events.k8s.io/v1/namespaces/"+appNS+"/events/tether-ops-new", "", nil))
	expect(t, http.StatusNotFound)(admin.Do(http.MethodGet, "/api/v1/namespaces/"+appNS+"/secrets/stolen", "", nil))
}

// What the sidecars may do but the driver does not, asked for with the driver's roles alone: the
// driver reads no PVC, gets or watches no VolumeAttachment, never updates an event, and does not
// list or delete Leases, create, update or delete PVs, or get a Node.
func TestDriverRolesAreRefusedWhatTheDriverDoesNotDo(t *testing.T) {
	fixtures(t)
	bindProbe(t)
	events := "/api/v1/namespaces/" + appNS + "/events"
	applyAt(t, events+"/tether-ops-sidecar", claimEvent(map[string]any{"name": "tether-ops-sidecar"}))
	leases := "/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases"
	applyAt(t, leases+"/tether-ops-sidecar", map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": map[string]any{"name": "tether-ops-sidecar"},
		"spec": map[string]any{"holderIdentity": "csi-attacher", "leaseDurationSeconds": 15},
	})
	pv := "/api/v1/persistentvolumes/" + pvName
	var current map[string]any
	if err := expect(t, http.StatusOK)(admin.Do(http.MethodGet, pv, "", nil)).Decode(&current); err != nil {
		t.Fatal(err)
	}
	current["spec"].(map[string]any)["persistentVolumeReclaimPolicy"] = "Delete"
	for _, r := range []struct {
		method, path string
		body         any
	}{
		{http.MethodGet, "/api/v1/namespaces/" + appNS + "/persistentvolumeclaims/" + pvcName, nil},
		{http.MethodGet, "/apis/storage.k8s.io/v1/volumeattachments/" + vaName, nil},
		{http.MethodGet, "/api/v1/nodes/node-a", nil},
		{http.MethodGet, events, nil},
		{http.MethodPatch, events + "/tether-ops-sidecar", map[string]any{"count": 2}},
		{http.MethodGet, leases, nil},
		{http.MethodDelete, leases + "/tether-ops-sidecar", nil},
		{http.MethodPut, pv, current},
		{http.MethodDelete, pv, nil},
	} {
		contentType := ""
		if r.body != nil {
			contentType = map[string]string{http.MethodPatch: "application/merge-patch+json", http.MethodPut: "application/json"}[r.method]
		}
		resp, err := probe.Do(r.method, r.path, contentType, r.body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusForbidden {
			t.Errorf("%s %s with the driver's roles: status %d, want 403", r.method, r.path, resp.Status)
		}
	}
	// Nothing changed: the event's count, the Lease, the PV and its reclaim policy.
	var event struct {
		Count int `json:"count"`
	}
	if err := expect(t, http.StatusOK)(admin.Do(http.MethodGet, events+"/tether-ops-sidecar", "", nil)).Decode(&event); err != nil {
		t.Fatal(err)
	}
	if event.Count != 1 {
		t.Errorf("event count %d after a refused patch, want 1", event.Count)
	}
	expect(t, http.StatusOK)(admin.Do(http.MethodGet, leases+"/tether-ops-sidecar", "", nil))
	var after struct {
		Spec struct {
			ReclaimPolicy string `json:"persistentVolumeReclaimPolicy"`
		} `json:"spec"`
	}
	if err := expect(t, http.StatusOK)(admin.Do(http.MethodGet, pv, "", nil)).Decode(&after); err != nil {
		t.Fatal(err)
	}
	if after.Spec.ReclaimPolicy != "Retain" {
		t.Errorf("PV reclaim policy %q after a refused update, want Retain", after.Spec.ReclaimPolicy)
	}
}
