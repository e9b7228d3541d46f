// Fences, terms, re-fence and forget through the Go API: who is in the fence through each
// change of DESIGN.md, the storage target's two rules, and the typed errors of each refusal.

package tether

import (
	"fmt"
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

// fenceOf reads volume's fence, which must be tracked.
func fenceOf(t *testing.T, e *Engine, volume string) Fence {
	t.Helper()
	f, ok, err := e.Fence(volume)
	if err != nil || !ok {
		t.Fatalf("Fence(%q): ok %v, err %v", volume, ok, err)
	}
	return f
}

// Both nodes during a migration, only the target after completion, only the source after an
// abort, nobody after a detach; each fence supersedes the one before it, never the reverse.
func TestFenceThroughMigration(t *testing.T) {
	e := newEngine(t)
	first := publish(t, e, "vm", "src", rwx, Attached)
	equal(t, "admitted", first.Admitted, 1)
	deepEqual(t, "first fence", first.Fence, Fence{Epoch: 1, Access: rwx, Nodes: admissions("src", 1)})

	during := publish(t, e, "vm", "dst", rwx, MigrationStarted)
	equal(t, "target admitted", during.Admitted, 2)
	deepEqual(t, "during", during.Fence, Fence{Epoch: 2, Access: rwx, Nodes: admissions("src", 1, "dst", 2)})
	deepEqual(t, "Fence reads the same", fenceOf(t, e, "vm"), during.Fence)
	equal(t, "idempotent admission", publish(t, e, "vm", "dst", rwx, AlreadyAttached).Admitted, 2)
	equal(t, "supersedes", during.Fence.CheckSupersedes("vm", first.Fence.Epoch), nil)
	asError[*StaleFenceError](t, first.Fence.CheckSupersedes("vm", during.Fence.Epoch), ErrStaleFence)
	for _, node := range []string{"src", "dst"} {
		epoch, _ := during.Fence.Admission(node)
		equal(t, node+" session", during.Fence.CheckSession("vm", node, epoch), nil)
	}

	done := unpublish(t, e, "vm", "src", MigrationCompleted)
	deepEqual(t, "completed", done.Fence, Fence{Epoch: 3, Access: rwx, Nodes: admissions("dst", 2)})
	asError[*NotAdmittedError](t, done.Fence.CheckSession("vm", "src", 1), ErrNotAdmitted)

	back := publish(t, e, "vm", "src", rwx, MigrationStarted)
	deepEqual(t, "second migration", back.Fence.Nodes, admissions("dst", 2, "src", 4))
	aborted := unpublish(t, e, "vm", "src", MigrationAborted)
	deepEqual(t, "aborted", aborted.Fence, Fence{Epoch: 5, Access: rwx, Nodes: admissions("dst", 2)})

	detached := unpublish(t, e, "vm", "dst", Detached)
	equal(t, "detached epoch", detached.Fence.Epoch, 6)
	equal(t, "nobody", len(detached.Fence.Nodes), 0)
	equal(t, "tracked though empty", fenceOf(t, e, "vm").Epoch, 6)
	deepEqual(t, "not attached: zero fence", unpublish(t, e, "vm", "dst", NotAttached).Fence, Fence{})
	_, ok, err := e.Fence("never")
	equal(t, "untracked", ok, false)
	equal(t, "untracked error", err, nil)
}

// A handoff moves the fence to the new holder alone; the list carries admission epochs.
func TestFenceAfterHandoff(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "h", "a", rwo, Attached)
	unpublish(t, e, "h", "a", Detached)
	late := publish(t, e, "h", "a", rwo, Attached)
	handed := publish(t, e, "h", "b", rwo, HandedOff)
	deepEqual(t, "new holder only", handed.Fence, Fence{Epoch: 4, Access: rwo, Nodes: admissions("b", 4)})
	asError[*NotAdmittedError](t, handed.Fence.CheckSession("h", "a", late.Admitted), ErrNotAdmitted)

	publish(t, e, "m", "a", rwx, Attached)
	publish(t, e, "m", "b", rwx, MigrationStarted)
	a, _, _ := e.Get("m")
	deepEqual(t, "Get admissions", a.Admitted, []uint64{1, 2})
	list := must[[]Attachment](t)(e.List())
	deepEqual(t, "List admissions", [][]uint64{list[0].Admitted, list[1].Admitted}, [][]uint64{{4}, {1, 2}})
}

// After SetTerm(t) and Refence, every tracked epoch is at least t<<32 and every admission is
// unchanged; later changes issue epochs above it; a term never goes down.
func TestTermsAndRefence(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "t1", "a", rwo, Attached)
	publish(t, e, "t2", "a", rwx, Attached)
	publish(t, e, "t2", "b", rwx, MigrationStarted)
	publish(t, e, "t3", "c", rwo, Attached)
	unpublish(t, e, "t3", "c", Detached)
	const term = 5
	equal(t, "term before", must[uint64](t)(e.Term()), 0)
	equal(t, "in force", must[uint64](t)(e.SetTerm(term)), term)

	fences := must[[]VolumeFence](t)(e.Refence())
	equal(t, "every tracked volume", len(fences), 3)
	want := map[string][]Admission{"t1": admissions("a", 1), "t2": admissions("a", 1, "b", 2), "t3": nil}
	for _, vf := range fences {
		if vf.Fence.Epoch < term<<32 {
			t.Errorf("%s: epoch %d below %d", vf.Volume, vf.Fence.Epoch, uint64(term)<<32)
		}
		deepEqual(t, vf.Volume+" admissions", vf.Fence.Nodes, want[vf.Volume])
		deepEqual(t, vf.Volume+" as read", fenceOf(t, e, vf.Volume), vf.Fence)
	}
	again := publish(t, e, "t1", "a", rwo, AlreadyAttached)
	equal(t, "admission kept", again.Admitted, 1)
	fresh := publish(t, e, "t4", "d", rwo, Attached)
	equal(t, "new epochs above the term", fresh.Admitted >= term<<32, true)

	equal(t, "lower term ignored", must[uint64](t)(e.SetTerm(2)), term)
	_, err := e.SetTerm(MaxTerm + 1)
	invalid := asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	equal(t, "names the limit", strings.Contains(invalid.Message, fmt.Sprint(MaxTerm)), true)
	equal(t, "term unchanged", must[uint64](t)(e.Term()), term)
	stats := must[Stats](t)(e.Stats())
	equal(t, "refenced", stats.Refenced, 3)
}

func TestForget(t *testing.T) {
	e := newEngine(t)
	equal(t, "untracked", must[bool](t)(e.Forget("never")), false)
	publish(t, e, "f", "a", rwx, Attached)
	publish(t, e, "f", "b", rwx, MigrationStarted)
	_, err := e.Forget("f")
	still := asError[*StillAttachedError](t, err, ErrStillAttached)
	equal(t, "volume", still.Volume, "f")
	equalSlices(t, "holders", still.Nodes, []string{"a", "b"})

	must[UnpublishResult](t)(e.UnpublishAll("f"))
	equal(t, "forgotten", must[bool](t)(e.Forget("f")), true)
	_, ok, _ := e.Fence("f")
	equal(t, "no record", ok, false)
	equal(t, "recreated above the forgotten epoch", publish(t, e, "f", "a", rwo, Attached).Epoch > 3, true)
	s := must[Stats](t)(e.Stats())
	equal(t, "counters", [3]uint64{s.Forgotten, s.MigrationsDetached, s.MigrationsCleared}, [3]uint64{1, 1, 0})
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

// A volume whose epoch cannot grow refuses every change, and says so with its epoch.
func TestEpochExhausted(t *testing.T) {
	e := newEngine(t)
	doc := fmt.Sprintf(`{"version":2,"taken_at_unix_nanos":%d,"term":0,"epoch_floor":0,"missing_nodes":[],
		"volumes":[{"volume":"x","epoch":18446744073709551614,"attachment":{"mode":"RWO","readonly":false,
		"nodes":["a"],"admitted":[1],"since_unix_nanos":%d}}]}`, wall.UnixNano(), wall.UnixNano())
	if err := e.Restore([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	_, err := e.Unpublish("x", "a")
	ex := asError[*EpochExhaustedError](t, err, ErrEpochExhausted)
	equal(t, "epoch", ex.Epoch, 1<<64-2)
	equal(t, "volume", ex.Volume, "x")
	equal(t, "counted", must[Stats](t)(e.Stats()).EpochExhausted, 1)
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
