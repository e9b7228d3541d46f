// The cluster store's requests done for real against the CRDs of deploy/ (00-crd.yaml): the
// controller's identity keeps TetherVolumes and the TetherTerm with preconditions, the way
// driver/src/store/kube/mod.rs does; the node plugin's token reads a TetherVolume and is refused
// every other request, which changes nothing.
package apitest

import (
	"net/http"
	"testing"
)

const (
	volumes = "/apis/tether.io/v1alpha1/tethervolumes"
	terms   = "/apis/tether.io/v1alpha1/tetherterms"
)

// tetherVolume is a TetherVolume as the store writes one: the record of a filesystem volume.
func tetherVolume(name string, term int) map[string]any {
	return map[string]any{
		"apiVersion": "tether.io/v1alpha1", "kind": "TetherVolume", "metadata": map[string]any{"name": name},
		"spec": map[string]any{"volumeId": name, "term": term, "meta": map[string]any{
			"id": name, "name": name, "kind": "filesystem", "capacity_bytes": 1 << 20, "parameters": map[string]any{},
		}},
	}
}

// decoded is the answer's object as a map (to send back with a change) and its metadata.
func decoded(t *testing.T, resp Response) (map[string]any, ObjectMeta) {
	t.Helper()
	var object map[string]any
	var meta ObjectMeta
	if err := resp.Decode(&object); err != nil {
		t.Fatal(err)
	}
	if err := resp.Decode(&meta); err != nil {
		t.Fatal(err)
	}
	return object, meta
}

// A volume's life in the store: created (409 when it exists), read, listed, replaced on the
// version read (409 on a stale one), deleted on the version read; and the term singleton read
// (404 before the first), created and replaced. As the controller pod and as the driver's roles.
func TestDriverIdentityKeepsTheClusterStore(t *testing.T) {
	deploy(t)
	asDriver(t, func(t *testing.T, c *Client, who string) {
		name := "tether-ops-" + who
		expect(t, http.StatusNotFound)(c.Do(http.MethodGet, volumes+"/"+name, "", nil))
		expect(t, http.StatusCreated)(c.Do(http.MethodPost, volumes, "application/json", tetherVolume(name, 1)))
		expect(t, http.StatusConflict)(c.Do(http.MethodPost, volumes, "application/json", tetherVolume(name, 1)))
		contains(t, "tethervolumes", names(t, expect(t, http.StatusOK)(c.Do(http.MethodGet, volumes, "", nil))), name)
		read, _ := decoded(t, expect(t, http.StatusOK)(c.Do(http.MethodGet, volumes+"/"+name, "", nil)))
		read["spec"].(map[string]any)["term"] = 2
		_, replaced := decoded(t, expect(t, http.StatusOK)(c.Do(http.MethodPut, volumes+"/"+name, "application/json", read)))
		expect(t, http.StatusConflict)(c.Do(http.MethodPut, volumes+"/"+name, "application/json", read))
		stale := map[string]any{"preconditions": map[string]any{"resourceVersion": read["metadata"].(map[string]any)["resourceVersion"]}}
		expect(t, http.StatusConflict)(c.Do(http.MethodDelete, volumes+"/"+name, "application/json", stale))
		current := map[string]any{"preconditions": map[string]any{"resourceVersion": replaced.Metadata.ResourceVersion}}
		expect(t, http.StatusOK)(c.Do(http.MethodDelete, volumes+"/"+name, "application/json", current))
		expect(t, http.StatusNotFound)(c.Do(http.MethodGet, volumes+"/"+name, "", nil))

		term := map[string]any{"apiVersion": "tether.io/v1alpha1", "kind": "TetherTerm",
			"metadata": map[string]any{"name": name}, "spec": map[string]any{"term": 1}}
		expect(t, http.StatusNotFound)(c.Do(http.MethodGet, terms+"/"+name, "", nil))
		expect(t, http.StatusCreated)(c.Do(http.MethodPost, terms, "application/json", term))
		read, _ = decoded(t, expect(t, http.StatusOK)(c.Do(http.MethodGet, terms+"/"+name, "", nil)))
		read["spec"].(map[string]any)["term"] = 2
		expect(t, http.StatusOK)(c.Do(http.MethodPut, terms+"/"+name, "application/json", read))
		expect(t, http.StatusConflict)(c.Do(http.MethodPut, terms+"/"+name, "application/json", read))
	})
}

// The node plugin's token authenticates as tether-csi-node and reads a TetherVolume; a list, a
// watch, a create, an update, a patch or a delete of one, and any access to the term, are refused
// (403) and leave the object as it was.
func TestNodeIdentityOnlyReadsATetherVolume(t *testing.T) {
	c := nodePlugin(t)
	if user, _ := whoAmI(t, c); user != "system:serviceaccount:"+ns+":tether-csi-node" {
		t.Fatalf("the node plugin's token authenticates as %s", user)
	}
	name := "tether-ops-node"
	applyAt(t, volumes+"/"+name, tetherVolume(name, 1))
	object, before := decoded(t, expect(t, http.StatusOK)(c.Do(http.MethodGet, volumes+"/"+name, "", nil)))
	if before.Metadata.Name != name {
		t.Errorf("got TetherVolume %q, want %s", before.Metadata.Name, name)
	}
	object["spec"].(map[string]any)["term"] = 9
	for _, r := range []struct {
		method, path, contentType string
		body                      any
	}{
		{http.MethodGet, volumes, "", nil},
		{http.MethodGet, volumes + "?watch=true&timeoutSeconds=1", "", nil},
		{http.MethodPost, volumes, "application/json", tetherVolume("tether-ops-node-new", 1)},
		{http.MethodPut, volumes + "/" + name, "application/json", object},
		{http.MethodPatch, volumes + "/" + name, "application/merge-patch+json", map[string]any{"spec": map[string]any{"term": 9}}},
		{http.MethodDelete, volumes + "/" + name, "", nil},
		{http.MethodGet, terms + "/controller", "", nil},
	} {
		resp, err := c.Do(r.method, r.path, r.contentType, r.body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Status != http.StatusForbidden {
			t.Errorf("%s %s as tether-csi-node: status %d, want 403", r.method, r.path, resp.Status)
		}
	}
	_, after := decoded(t, expect(t, http.StatusOK)(admin.Do(http.MethodGet, volumes+"/"+name, "", nil)))
	if after.Metadata.ResourceVersion != before.Metadata.ResourceVersion {
		t.Errorf("TetherVolume %s changed by refused requests: version %s, was %s", name,
			after.Metadata.ResourceVersion, before.Metadata.ResourceVersion)
	}
	expect(t, http.StatusNotFound)(admin.Do(http.MethodGet, volumes+"/tether-ops-node-new", "", nil))
}
