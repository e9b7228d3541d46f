// Hostile inputs: every identifier-taking call refuses bad identifiers with a typed error and
// changes nothing; bad modes and negative durations are refused too.

package tether

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// hostileIDs are identifiers the contract refuses, by what is wrong with them.
var hostileIDs = map[string]string{
	"empty":             "",
	"over-long":         strings.Repeat("x", 129),
	"NUL-bearing":       "pvc\x00-1",
	"invalid UTF-8":     "pvc-\xff\xfe",
	"truncated UTF-8":   "pvc-\xc3",
	"over-long by one":  strings.Repeat("é", 64) + "x",
	"lone continuation": "\x80",
}

// idCalls are the calls that take identifiers, with the bad one placed as volume or node.
func idCalls(e *Engine, bad string) map[string]error {
	errs := map[string]error{}
	_, errs["Publish volume"] = e.Publish(bad, "a", rwo)
	_, errs["Publish node"] = e.Publish("v", bad, rwo)
	_, errs["PublishWithTimeout node"] = e.PublishWithTimeout("v", bad, rwx, time.Minute)
	_, errs["Unpublish volume"] = e.Unpublish(bad, "a")
	_, errs["Unpublish node"] = e.Unpublish("v", bad)
	_, errs["UnpublishAll"] = e.UnpublishAll(bad)
	_, errs["ClearStale volume"] = e.ClearStale(bad, "a")
	_, errs["ClearStale node"] = e.ClearStale("v", bad)
	_, errs["IsWithinGracePeriod"] = e.IsWithinGracePeriod(bad, time.Second)
	_, _, errs["DetachTimestamp"] = e.DetachTimestamp(bad)
	_, errs["ClearDetachTimestamp"] = e.ClearDetachTimestamp(bad)
	_, _, errs["Get"] = e.Get(bad)
	_, errs["Epoch"] = e.Epoch(bad)
	_, errs["Reconcile"] = e.Reconcile([]string{"a", bad})
	_, _, errs["Fence"] = e.Fence(bad)
	_, errs["Forget"] = e.Forget(bad)
	held := Fence{Epoch: 1, Nodes: []Admission{{Node: "a", Epoch: 1}}}
	errs["CheckSupersedes volume"] = held.CheckSupersedes(bad, 0)
	errs["CheckSession volume"] = held.CheckSession(bad, "a", 1)
	errs["CheckSession node"] = held.CheckSession("v", bad, 1)
	return errs
}

func TestHostileIdentifiers(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwo, Attached)
	unpublish(t, e, "v", "a", Detached)
	publish(t, e, "v", "a", rwo, Attached)
	before := must[[]byte](t)(e.Snapshot())
	for what, bad := range hostileIDs {
		for call, err := range idCalls(e, bad) {
			var invalid *InvalidArgumentError
			if !errors.As(err, &invalid) || !errors.Is(err, ErrInvalidArgument) || invalid.Message == "" {
				t.Errorf("%s with a %s id: got %v (%T), want an InvalidArgumentError", call, what, err, err)
			}
		}
	}
	equal(t, "state untouched", string(must[[]byte](t)(e.Snapshot())), string(before))
}

// The longest identifier the contract allows is accepted, in bytes not characters.
func TestLongestIdentifiersAccepted(t *testing.T) {
	e := newEngine(t)
	volume, node := strings.Repeat("v", 128), strings.Repeat("é", 64)
	r := publish(t, e, volume, node, rwo, Attached)
	equal(t, "epoch", r.Epoch, 1)
	u := unpublish(t, e, volume, node, Detached)
	equalSlices(t, "nodes", u.Nodes, []string{node})
}

func TestBadModeAndDurations(t *testing.T) {
	e := newEngine(t)
	_, err := e.Publish("v", "a", Access{Mode: Mode(7)})
	invalid := asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	if !strings.Contains(invalid.Message, "7") {
		t.Errorf("message does not name the bad mode: %q", invalid.Message)
	}
	_, err = e.PublishWithTimeout("v", "a", rwx, -time.Second)
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	_, err = e.IsWithinGracePeriod("v", -time.Second)
	asError[*InvalidArgumentError](t, err, ErrInvalidArgument)
	equal(t, "nothing attached", must[int](t)(e.AttachedCount()), 0)
}
