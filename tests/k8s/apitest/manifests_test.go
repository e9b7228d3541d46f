// deploy/ against the real server: every manifest passes a server-side dry run (validation,
// defaulting, admission), nothing is persisted by it, and an invalid change is refused.
package apitest

import (
	"encoding/json"
	"net/http"
	"testing"
)

func TestEveryManifestPassesServerSideDryRun(t *testing.T) {
	// Namespaced objects, dry run or not, are only admitted into an existing namespace.
	ensureNamespace(t, "tether")
	objects, res := manifests(t)
	for i, o := range objects {
		before, err := admin.Do(http.MethodGet, o.Path(res[i]), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		var got ObjectMeta
		if err := applied(t)(Apply(admin, o, res[i], true)).Decode(&got); err != nil {
			t.Fatal(err)
		}
		if got.Kind != o.Kind || got.Metadata.Name != o.Name || got.Metadata.Namespace != o.Namespace {
			t.Errorf("%v: the dry run answered %s %s/%s", o, got.Kind, got.Metadata.Namespace, got.Metadata.Name)
		}
		if before.Status == http.StatusNotFound {
			expect(t, http.StatusNotFound)(admin.Do(http.MethodGet, o.Path(res[i]), "", nil))
		}
	}
}

// The dry run is a real check: the same Deployment with a negative replica count is refused.
func TestServerSideDryRunRefusesAnInvalidManifest(t *testing.T) {
	ensureNamespace(t, "tether")
	objects, res := manifests(t)
	i := find(t, objects, "Deployment", "tether-csi-controller")
	var doc map[string]any
	if err := json.Unmarshal(objects[i].JSON, &doc); err != nil {
		t.Fatal(err)
	}
	doc["spec"].(map[string]any)["replicas"] = -1
	broken := objects[i]
	var err error
	if broken.JSON, err = json.Marshal(doc); err != nil {
		t.Fatal(err)
	}
	expect(t, http.StatusUnprocessableEntity)(Apply(admin, broken, res[i], true))
}

func find(t *testing.T, objects []Object, kind, name string) int {
	t.Helper()
	for i, o := range objects {
		if o.Kind == kind && o.Name == name {
			return i
		}
	}
	t.Fatalf("no %s %s in deploy/", kind, name)
	return -1
}
