// The read-side calls: grace check, detach records, attachments, list, epochs, counters.

package tether

import (
	"testing"
	"time"
)

func TestGraceCheckAndDetachRecord(t *testing.T) {
	e := newEngine(t)
	equal(t, "unknown volume", must[bool](t)(e.IsWithinGracePeriod("v", time.Hour)), false)
	_, found, err := e.DetachTimestamp("v")
	equal(t, "no record", found, false)
	equal(t, "no error", err, nil)

	publish(t, e, "v", "a", rwo, Attached)
	advance(t, e, time.Second)
	unpublish(t, e, "v", "a", Detached)
	advance(t, e, 10*time.Second)
	equal(t, "inside", must[bool](t)(e.IsWithinGracePeriod("v", 11*time.Second)), true)
	equal(t, "at the edge", must[bool](t)(e.IsWithinGracePeriod("v", 10*time.Second)), false)

	rec, found, err := e.DetachTimestamp("v")
	equal(t, "found", found, true)
	equal(t, "error", err, nil)
	equal(t, "node", rec.Node, "a")
	equal(t, "at", rec.At.Equal(wall.Add(time.Second)), true)
	equal(t, "age", rec.Age, 10*time.Second)

	equal(t, "cleared", must[bool](t)(e.ClearDetachTimestamp("v")), true)
	equal(t, "cleared twice", must[bool](t)(e.ClearDetachTimestamp("v")), false)
	equal(t, "after clear", must[bool](t)(e.IsWithinGracePeriod("v", time.Hour)), false)
}

func TestGetListEpochCount(t *testing.T) {
	e := newEngine(t)
	_, found, err := e.Get("v")
	equal(t, "not attached", found, false)
	equal(t, "error", err, nil)
	equal(t, "epoch of unknown", must[uint64](t)(e.Epoch("v")), 0)

	publish(t, e, "w", "a", Access{Mode: RWO, ReadOnly: true}, Attached)
	publish(t, e, "v", "a", rwx, Attached)
	advance(t, e, 2*time.Second)
	publish(t, e, "v", "b", rwx, MigrationStarted)
	advance(t, e, 3*time.Second)

	a, found, err := e.Get("v")
	equal(t, "found", found, true)
	equal(t, "error", err, nil)
	checkMigrating(t, a)

	list := must[[]Attachment](t)(e.List())
	equal(t, "list length", len(list), 2)
	checkMigrating(t, list[0])
	equal(t, "second volume", list[1].Volume, "w")
	equal(t, "read-only access", list[1].Access, Access{Mode: RWO, ReadOnly: true})
	equal(t, "no migration", list[1].Migration == nil, true)
	equal(t, "since", list[1].Since.Equal(wall), true)

	equal(t, "count", must[int](t)(e.AttachedCount()), 2)
	equal(t, "epoch", must[uint64](t)(e.Epoch("v")), 2)
	unpublish(t, e, "w", "a", Detached)
	equal(t, "count after detach", must[int](t)(e.AttachedCount()), 1)
	equal(t, "epoch survives detach", must[uint64](t)(e.Epoch("w")), 2)
}

// checkMigrating checks volume v as TestGetListEpochCount leaves it: on a and b, migrating.
func checkMigrating(t *testing.T, a Attachment) {
	t.Helper()
	equal(t, "volume", a.Volume, "v")
	equal(t, "access", a.Access, rwx)
	equalSlices(t, "nodes", a.Nodes, []string{"a", "b"})
	equal(t, "epoch", a.Epoch, 2)
	equal(t, "since", a.Since.Equal(wall.Add(2*time.Second)), true)
	if a.Migration == nil {
		t.Fatal("no migration status")
	}
	equal(t, "migration", *a.Migration, MigrationStatus{Elapsed: 3 * time.Second, Timeout: 5 * time.Minute})
}

func TestStatsCountEveryOutcome(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwo, Attached)
	publish(t, e, "v", "a", rwo, AlreadyAttached)
	_, _ = e.Publish("v", "b", rwo)
	_, _ = e.Publish("v", "a", Access{Mode: RWX})
	unpublish(t, e, "v", "a", Detached)
	unpublish(t, e, "v", "a", NotAttached)
	publish(t, e, "v", "a", rwo, Attached)
	publish(t, e, "v", "b", rwo, HandedOff)
	publish(t, e, "m", "a", rwx, Attached)
	publish(t, e, "m", "b", rwx, MigrationStarted)
	_, _ = e.Publish("m", "c", rwx)
	_, _ = e.Publish("", "c", rwx)
	got := must[Stats](t)(e.Stats())
	want := Stats{
		Attached: 3, AlreadyAttached: 1, HandedOff: 1, MigrationsStarted: 1, Conflicts: 1,
		Incompatible: 1, MigrationLimit: 1, Detached: 1, NotAttached: 1, InvalidInput: 1,
		ActiveMigrations: 1,
	}
	equal(t, "stats", got, want)

	unpublish(t, e, "m", "a", MigrationCompleted)
	publish(t, e, "m", "c", rwx, MigrationStarted)
	unpublish(t, e, "m", "c", MigrationAborted)
	publish(t, e, "m", "d", rwx, MigrationStarted)
	advance(t, e, time.Hour)
	_, _ = e.Publish("m", "e", rwx)
	must[StaleResult](t)(e.ClearStale("v", "b"))
	must[ReconcileReport](t)(e.Reconcile([]string{"b", "d"}))
	got = must[Stats](t)(e.Stats())
	want.MigrationsStarted, want.MigrationsCompleted, want.MigrationsAborted = 3, 1, 1
	want.MigrationTimedOut, want.MigrationsTimedOut, want.StaleCleared, want.Reconciles = 1, 1, 1, 1
	equal(t, "stats", got, want)
}
