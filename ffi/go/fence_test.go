// Fences through the Go API: the storage target's two rules' typed errors, fences of a shape
// no fence has, and their text. Who is in the fence through each change of DESIGN.md, terms,
// re-fence and forget are scenarios of tests/contract/ (corpus_test.go).

package tether

import (
	"strings"
	"testing"
)

// admissions builds a fence's node list: node, epoch, node, epoch...
func admissions(pairs ...any) []Admission {
	var out []Admission
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, Admission{Node: pairs[i].(string), Epoch: uint64(pairs[i+1].(int))})
	}
	return out
}

func TestFenceRuleErrors(t *testing.T) {
	f := Fence{Epoch: 7, Access: rwo, Nodes: admissions("a", 3)}
	stale := asError[*StaleFenceError](t, f.CheckSupersedes("v", 7), ErrStaleFence)
	deepEqual(t, "stale", [3]any{stale.Volume, stale.Epoch, stale.Applied}, [3]any{"v", uint64(7), uint64(7)})
	equal(t, "newer", f.CheckSupersedes("v", 6), nil)

	low := asError[*NotAdmittedError](t, f.CheckSession("v", "a", 2), ErrNotAdmitted)
	deepEqual(t, "below admission", *low, NotAdmittedError{Volume: "v", Node: "a", Presented: 2, FenceEpoch: 7,
		Admitted: 3, Listed: true, Message: low.Message})
	out := asError[*NotAdmittedError](t, f.CheckSession("v", "b", 9), ErrNotAdmitted)
	equal(t, "not listed", out.Listed, false)
	equal(t, "admitted at 3", f.CheckSession("v", "a", 3), nil)
	if !strings.Contains(out.Message, `"b"`) || !strings.Contains(out.Message, `"v"`) {
		t.Errorf("message does not name node and volume: %q", out.Message)
	}
}

// Fences that are not fences are refused before either rule runs.
func TestMalformedFences(t *testing.T) {
	good := Fence{Epoch: 2, Access: rwx, Nodes: admissions("a", 1, "b", 2)}
	bad := map[string]Fence{
		"three nodes":      {Epoch: 3, Access: rwx, Nodes: admissions("a", 1, "b", 2, "c", 3)},
		"over-long name":   {Epoch: 2, Nodes: admissions(strings.Repeat("x", 129), 1)},
		"invalid UTF-8":    {Epoch: 2, Nodes: admissions("\xff", 1)},
		"NUL in a name":    {Epoch: 2, Nodes: admissions("a\x00", 1)},
		"empty name":       {Epoch: 2, Nodes: admissions("", 1)},
		"a node twice":     {Epoch: 2, Access: rwx, Nodes: admissions("a", 1, "a", 2)},
		"admitted later":   {Epoch: 2, Nodes: admissions("a", 3)},
		"admitted at zero": {Epoch: 2, Nodes: admissions("a", 0)},
		"unknown mode":     {Epoch: 2, Access: Access{Mode: Mode(7)}, Nodes: admissions("a", 1)},
	}
	for name, f := range bad {
		t.Run(name, func(t *testing.T) {
			asError[*InvalidArgumentError](t, f.CheckSupersedes("v", 0), ErrInvalidArgument)
			asError[*InvalidArgumentError](t, f.CheckSession("v", "a", 1), ErrInvalidArgument)
		})
	}
	equal(t, "longest name accepted", Fence{Epoch: 1, Nodes: admissions(strings.Repeat("é", 64), 1)}.
		CheckSession("v", strings.Repeat("é", 64), 1), nil)
	equal(t, "good", good.CheckSupersedes("v", 1), nil)
}

func TestFenceString(t *testing.T) {
	equal(t, "two", Fence{Epoch: 3, Access: rwx, Nodes: admissions("a", 1, "b", 3)}.String(), `epoch 3 (RWX): "a"@1, "b"@3`)
	equal(t, "nobody", Fence{Epoch: 4}.String(), "epoch 4 (RWO): nobody")
}
