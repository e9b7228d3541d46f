// Publish, unpublish and compare-and-clear through the Go API, row by row of DESIGN.md.

package tether

import (
	"testing"
	"time"
)

func TestPublishRWORows(t *testing.T) {
	e := newEngine(t)
	r := publish(t, e, "v", "a", rwo, Attached)
	equal(t, "epoch", r.Epoch, 1)
	equal(t, "other", r.Other, "")
	r = publish(t, e, "v", "a", rwo, AlreadyAttached)
	equal(t, "epoch", r.Epoch, 1)

	_, err := e.Publish("v", "a", Access{Mode: RWO, ReadOnly: true})
	inc := asError[*IncompatibleError](t, err, ErrIncompatible)
	equal(t, "incompatible volume", inc.Volume, "v")
	equal(t, "incompatible node", inc.Node, "a")
	equal(t, "existing", inc.Existing, rwo)

	_, err = e.Publish("v", "b", rwo)
	c := asError[*ConflictError](t, err, ErrConflict)
	equal(t, "conflict volume", c.Volume, "v")
	equal(t, "conflict node", c.Node, "b")
	equalSlices(t, "attached to", c.AttachedTo, []string{"a"})
	equal(t, "epoch after refusals", must[uint64](t)(e.Epoch("v")), 1)
}

func TestPublishHandoffInsideGraceOnly(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwo, Attached)
	unpublish(t, e, "v", "a", Detached)
	publish(t, e, "v", "a", rwo, Attached) // a late re-attach of a
	advance(t, e, 29*time.Second)
	r := publish(t, e, "v", "b", rwo, HandedOff)
	equal(t, "handed off from", r.Other, "a")
	equal(t, "epoch", r.Epoch, 4)
	// The detach record was consumed: c cannot take the volume from b.
	_, err := e.Publish("v", "c", rwo)
	asError[*ConflictError](t, err, ErrConflict)

	unpublish(t, e, "v", "b", Detached)
	publish(t, e, "v", "b", rwo, Attached)
	advance(t, e, 30*time.Second)
	_, err = e.Publish("v", "c", rwo)
	equalSlices(t, "holder after the grace period", asError[*ConflictError](t, err, ErrConflict).AttachedTo, []string{"b"})
}

func TestMigrationRows(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwx, Attached)
	r := publish(t, e, "v", "b", rwx, MigrationStarted)
	equal(t, "source", r.Other, "a")
	equal(t, "default timeout", r.MigrationTimeout, 5*time.Minute)

	_, err := e.Publish("v", "c", rwx)
	lim := asError[*MigrationLimitError](t, err, ErrMigrationLimit)
	equalSlices(t, "migration nodes", lim.Nodes, []string{"a", "b"})
	equal(t, "limit node", lim.Node, "c")

	_, err = e.Publish("v", "c", rwo)
	asError[*ConflictError](t, err, ErrConflict)

	advance(t, e, 5*time.Minute+time.Second)
	_, err = e.Publish("v", "c", rwx)
	to := asError[*MigrationTimedOutError](t, err, ErrMigrationTimedOut)
	equalSlices(t, "timed-out nodes", to.Nodes, []string{"a", "b"})
	equal(t, "elapsed", to.Elapsed, 5*time.Minute+time.Second)
	equal(t, "timeout", to.Timeout, 5*time.Minute)

	u := unpublish(t, e, "v", "a", MigrationCompleted)
	equalSlices(t, "completed nodes", u.Nodes, []string{"a", "b"})
	equal(t, "duration", u.Duration, 5*time.Minute+time.Second)
	equal(t, "epoch", u.Epoch, 3)

	r = must[PublishResult](t)(e.PublishWithTimeout("v", "c", rwx, time.Second))
	equal(t, "kind", r.Kind, MigrationStarted)
	equal(t, "clamped timeout", r.MigrationTimeout, 30*time.Second)
	u = unpublish(t, e, "v", "c", MigrationAborted)
	equalSlices(t, "aborted nodes", u.Nodes, []string{"b", "c"})
	equal(t, "abort duration", u.Duration, 0)

	r = must[PublishResult](t)(e.PublishWithTimeout("v", "d", rwx, 0))
	equal(t, "zero timeout clamps up", r.MigrationTimeout, 30*time.Second)
}

func TestUnpublishRows(t *testing.T) {
	e := newEngine(t)
	u := unpublish(t, e, "v", "a", NotAttached)
	equal(t, "epoch", u.Epoch, 0)
	if u.Nodes != nil {
		t.Fatalf("not attached: nodes %q", u.Nodes)
	}
	publish(t, e, "v", "a", rwo, Attached)
	unpublish(t, e, "v", "b", NotAttached)
	u = unpublish(t, e, "v", "a", Detached)
	equalSlices(t, "detached", u.Nodes, []string{"a"})
	equal(t, "epoch", u.Epoch, 2)

	publish(t, e, "w", "a", rwx, Attached)
	publish(t, e, "w", "b", rwx, MigrationStarted)
	u = must[UnpublishResult](t)(e.UnpublishAll("w"))
	equal(t, "kind", u.Kind, Detached)
	equalSlices(t, "all nodes", u.Nodes, []string{"a", "b"})
	u = must[UnpublishResult](t)(e.UnpublishAll("w"))
	equal(t, "again", u.Kind, NotAttached)
}

func TestClearStale(t *testing.T) {
	e := newEngine(t)
	s := must[StaleResult](t)(e.ClearStale("v", "a"))
	deepEqual(t, "unknown", s, StaleResult{})

	publish(t, e, "v", "a", rwx, Attached)
	publish(t, e, "v", "b", rwx, MigrationStarted)
	s = must[StaleResult](t)(e.ClearStale("v", "a"))
	deepEqual(t, "cleared", s, StaleResult{Cleared: true, Remaining: "b", Epoch: 3,
		Fence: Fence{Epoch: 3, Access: rwx, Nodes: []Admission{{Node: "b", Epoch: 2}}}})
	s = must[StaleResult](t)(e.ClearStale("v", "a"))
	equal(t, "compare-and-clear", s.Cleared, false)
	s = must[StaleResult](t)(e.ClearStale("v", "b"))
	// Nobody is left; an empty fence's access carries no meaning, so only its epoch is checked.
	s.Fence.Access = Access{}
	deepEqual(t, "last node", s, StaleResult{Cleared: true, Epoch: 4, Fence: Fence{Epoch: 4}})
	// A stale clear is not a detach: no handoff window opens.
	_, found, err := e.DetachTimestamp("v")
	equal(t, "detach record", found, false)
	equal(t, "error", err, nil)
}
