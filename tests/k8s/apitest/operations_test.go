// The driver's identity doing its real requests against the server (not only access reviews):
// each one it needs succeeds, and one outside its permissions is refused with 403.
package apitest

import (
	"net/http"
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

func TestDriverIdentityReadsWhatItWatches(t *testing.T) {
	fixtures(t)
	for _, path := range []string{
		"/api/v1/nodes", "/api/v1/nodes/node-a", "/apis/storage.k8s.io/v1/volumeattachments",
		"/apis/storage.k8s.io/v1/volumeattachments/" + vaName, "/api/v1/persistentvolumes",
		"/api/v1/persistentvolumes/" + pvName, "/api/v1/namespaces/" + appNS + "/persistentvolumeclaims/" + pvcName,
	} {
		expect(t, http.StatusOK)(driver.Do(http.MethodGet, path, "", nil))
	}
}

func TestDriverIdentityAnnotatesAPersistentVolume(t *testing.T) {
	fixtures(t)
	patch := map[string]any{"metadata": map[string]any{"annotations": map[string]any{"tether.io/attached-nodes": "node-a"}}}
	var pv ObjectMeta
	resp := expect(t, http.StatusOK)(driver.Do(http.MethodPatch, "/api/v1/persistentvolumes/"+pvName,
		"application/merge-patch+json", patch))
	if err := resp.Decode(&pv); err != nil {
		t.Fatal(err)
	}
	if got := pv.Metadata.Annotations["tether.io/attached-nodes"]; got != "node-a" {
		t.Errorf("annotation after the patch = %q, want node-a", got)
	}
}

func TestDriverIdentityPostsEventsOnAClaim(t *testing.T) {
	fixtures(t)
	now := time.Now().UTC()
	claim := map[string]any{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": appNS, "name": pvcName}
	core := map[string]any{
		"apiVersion": "v1", "kind": "Event", "metadata": map[string]any{"name": "tether-ops-core", "namespace": appNS},
		"involvedObject": claim, "reason": "VolumeAttached", "message": "attached to node-a", "type": "Normal",
		"firstTimestamp": now.Format(time.RFC3339), "lastTimestamp": now.Format(time.RFC3339), "count": 1,
		"source": map[string]any{"component": "tether-csi"},
	}
	expect(t, http.StatusCreated)(driver.Do(http.MethodPost, "/api/v1/namespaces/"+appNS+"/events", "application/json", core))
	expect(t, http.StatusOK)(driver.Do(http.MethodPatch, "/api/v1/namespaces/"+appNS+"/events/tether-ops-core",
		"application/merge-patch+json", map[string]any{"count": 2}))
	series := map[string]any{
		"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": map[string]any{"name": "tether-ops-new", "namespace": appNS},
		"eventTime": now.Format("2006-01-02T15:04:05.000000Z"), "reportingController": "tether.csi.dev/tether-csi",
		"reportingInstance": "tether-csi-0", "action": "Attach", "reason": "VolumeAttached", "type": "Normal",
		"note": "attached to node-a", "regarding": claim,
	}
	expect(t, http.StatusCreated)(driver.Do(http.MethodPost, "/apis/events.k8s.io/v1/namespaces/"+appNS+"/events",
		"application/json", series))
}

func TestDriverIdentityHoldsALease(t *testing.T) {
	deploy(t)
	path := "/apis/coordination.k8s.io/v1/namespaces/" + ns + "/leases"
	lease := map[string]any{
		"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": map[string]any{"name": "tether-ops-test"},
		"spec": map[string]any{"holderIdentity": "replica-a", "leaseDurationSeconds": 15},
	}
	var got map[string]any
	if err := expect(t, http.StatusCreated)(driver.Do(http.MethodPost, path, "application/json", lease)).Decode(&got); err != nil {
		t.Fatal(err)
	}
	expect(t, http.StatusOK)(driver.Do(http.MethodGet, path+"/tether-ops-test", "", nil))
	got["spec"].(map[string]any)["holderIdentity"] = "replica-b"
	expect(t, http.StatusOK)(driver.Do(http.MethodPut, path+"/tether-ops-test", "application/json", got))
}

func TestDriverIdentityIsRefusedOutsideItsPermissions(t *testing.T) {
	fixtures(t)
	secret := map[string]any{"apiVersion": "v1", "kind": "Secret", "metadata": map[string]any{"name": "stolen"}}
	expect(t, http.StatusForbidden)(driver.Do(http.MethodPost, "/api/v1/namespaces/"+appNS+"/secrets", "application/json", secret))
	expect(t, http.StatusForbidden)(driver.Do(http.MethodGet, "/api/v1/namespaces/"+ns+"/secrets", "", nil))
	expect(t, http.StatusForbidden)(driver.Do(http.MethodDelete, "/api/v1/nodes/node-a", "", nil))
	expect(t, http.StatusForbidden)(driver.Do(http.MethodDelete, "/apis/storage.k8s.io/v1/volumeattachments/"+vaName, "", nil))
	// The PV and the Node are still there: a refused request changed nothing.
	expect(t, http.StatusOK)(admin.Do(http.MethodGet, "/api/v1/nodes/node-a", "", nil))
	expect(t, http.StatusOK)(admin.Do(http.MethodGet, "/apis/storage.k8s.io/v1/volumeattachments/"+vaName, "", nil))
}
