// Reconcile, snapshot and restore through the Go API.

package tether

import (
	"bytes"
	"testing"
	"time"
)

func TestReconcileRefusesInvalidNameWholly(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwo, Attached)
	must[ReconcileReport](t)(e.Reconcile(nil))
	advance(t, e, time.Hour)
	_, err := e.Reconcile([]string{"b", ""})
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	_, err = e.Reconcile([]string{"b", "\xff"})
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	equal(t, "nothing cleared", must[int](t)(e.AttachedCount()), 1)
}

func TestSnapshotRestoreRoundTrip(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwx, Attached)
	publish(t, e, "v", "b", rwx, MigrationStarted)
	publish(t, e, "w", "a", rwo, Attached)
	unpublish(t, e, "w", "a", Detached)
	doc := must[[]byte](t)(e.Snapshot())

	f := newEngine(t)
	if err := f.Restore(doc); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	equal(t, "same document", bytes.Equal(must[[]byte](t)(f.Snapshot()), doc), true)
	a, _, _ := f.Get("v")
	equalSlices(t, "restored nodes", a.Nodes, []string{"a", "b"})
	equal(t, "restored epoch", must[uint64](t)(f.Epoch("w")), 2)
	equal(t, "restored detach record", must[bool](t)(f.IsWithinGracePeriod("w", time.Second)), true)
}

func TestRestoreRefusesBadDocumentsAndKeepsState(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwo, Attached)
	before := must[[]byte](t)(e.Snapshot())
	bad := map[string]string{
		"empty":           "",
		"truncated":       string(before[:len(before)/2]),
		"not an object":   "[1, 2]",
		"unknown version": `{"version": 99, "taken_at_unix_nanos": 0, "volumes": [], "missing_nodes": []}`,
		"RWO on two nodes": `{"version": 1, "taken_at_unix_nanos": 0, "missing_nodes": [], "volumes": [
			{"volume": "x", "epoch": 1, "attachment": {"mode": "RWO", "readonly": false, "nodes": ["a", "b"],
			 "since_unix_nanos": 0}}]}`,
		"NUL inside": "{\"version\": 1\x00}",
	}
	for name, doc := range bad {
		err := e.Restore([]byte(doc))
		asError[*SnapshotError](t, err, ErrBadSnapshot)
		equal(t, name+": state kept", bytes.Equal(must[[]byte](t)(e.Snapshot()), before), true)
	}
	err := e.Restore([]byte("{\"version\": \xff}"))
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	err = e.Restore(nil)
	asError[*SnapshotError](t, err, ErrBadSnapshot)
}
