// Tests that the baseline keeps the RWO rows of the contract, so the benchmarks compare like
// with like.
package baseline

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"
)

// clock is a manual clock: it moves only when the test says so.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newManager() (*Manager, *clock) {
	c := &clock{t: time.Unix(1_700_000_000, 0)}
	return New(30*time.Second, c.now), c
}

func TestPublishRows(t *testing.T) {
	m, c := newManager()
	expect := func(got Outcome, epoch uint64, err error, want Outcome, wantEpoch uint64, wantErr error) {
		t.Helper()
		if got != want || epoch != wantEpoch || !errors.Is(err, wantErr) {
			t.Fatalf("got (%v, %d, %v), want (%v, %d, %v)", got, epoch, err, want, wantEpoch, wantErr)
		}
	}
	o, e, err := m.Publish("v", "a", false)
	expect(o, e, err, Attached, 1, nil)
	o, e, err = m.Publish("v", "a", false)
	expect(o, e, err, AlreadyAttached, 1, nil)
	o, e, err = m.Publish("v", "a", true)
	expect(o, e, err, 0, 1, ErrIncompatible)
	o, e, err = m.Publish("v", "b", false)
	expect(o, e, err, 0, 1, ErrConflict)

	// Detached from a, then a re-attaches late: b takes over within the grace period.
	o, e, err = m.Unpublish("v", "a")
	expect(o, e, err, Detached, 2, nil)
	o, e, err = m.Publish("v", "a", false)
	expect(o, e, err, Attached, 3, nil)
	c.t = c.t.Add(10 * time.Second)
	o, e, err = m.Publish("v", "b", false)
	expect(o, e, err, HandedOff, 4, nil)
	// The detach record was consumed: c cannot take it from b.
	o, e, err = m.Publish("v", "c", false)
	expect(o, e, err, 0, 4, ErrConflict)
}

func TestHandoffNeedsGrace(t *testing.T) {
	m, c := newManager()
	must(t)(m.Publish("v", "a", false))
	must(t)(m.Unpublish("v", "a"))
	must(t)(m.Publish("v", "a", false))
	c.t = c.t.Add(30 * time.Second)
	if _, _, err := m.Publish("v", "b", false); !errors.Is(err, ErrConflict) {
		t.Fatalf("publish after the grace period: got %v, want a conflict", err)
	}
}

func TestUnpublishRows(t *testing.T) {
	m, _ := newManager()
	if o, _, err := m.Unpublish("v", "a"); o != NotAttached || err != nil {
		t.Fatalf("unknown volume: got %v %v", o, err)
	}
	must(t)(m.Publish("v", "a", false))
	if o, _, err := m.Unpublish("v", "b"); o != NotAttached || err != nil {
		t.Fatalf("other node: got %v %v", o, err)
	}
	if o, e, err := m.Unpublish("v", ""); o != Detached || e != 2 || err != nil {
		t.Fatalf("any node: got %v %d %v", o, e, err)
	}
}

func TestGraceWindow(t *testing.T) {
	m, c := newManager()
	if in, err := m.IsWithinGracePeriod("v", time.Minute); in || err != nil {
		t.Fatalf("never detached: got %v %v", in, err)
	}
	must(t)(m.Publish("v", "a", false))
	must(t)(m.Unpublish("v", "a"))
	c.t = c.t.Add(59 * time.Second)
	if in, err := m.IsWithinGracePeriod("v", time.Minute); !in || err != nil {
		t.Fatalf("59s after detach: got %v %v", in, err)
	}
	c.t = c.t.Add(time.Second)
	if in, err := m.IsWithinGracePeriod("v", time.Minute); in || err != nil {
		t.Fatalf("60s after detach: got %v %v", in, err)
	}
}

func TestInvalidIDs(t *testing.T) {
	m, _ := newManager()
	for _, id := range []string{"", "a\x00b", strings.Repeat("x", maxIDLen+1)} {
		if _, _, err := m.Publish(id, "a", false); !errors.Is(err, ErrInvalidID) {
			t.Errorf("publish volume %q: got %v", id, err)
		}
		if _, _, err := m.Publish("v", id, false); !errors.Is(err, ErrInvalidID) {
			t.Errorf("publish node %q: got %v", id, err)
		}
		if _, err := m.IsWithinGracePeriod(id, time.Second); !errors.Is(err, ErrInvalidID) {
			t.Errorf("grace %q: got %v", id, err)
		}
	}
}

// Many goroutines race for one volume: exactly one wins it.
func TestOneWriter(t *testing.T) {
	m, _ := newManager()
	var wg sync.WaitGroup
	wins := make(chan string, 8)
	for i := range 8 {
		node := string(rune('a' + i))
		wg.Go(func() {
			if o, _, err := m.Publish("v", node, false); err == nil && o == Attached {
				wins <- node
			}
		})
	}
	wg.Wait()
	close(wins)
	if n := len(wins); n != 1 {
		t.Fatalf("%d goroutines attached the volume; want exactly 1", n)
	}
}

// must fails the test when the call it wraps returned an error.
func must(t *testing.T) func(Outcome, uint64, error) {
	return func(_ Outcome, _ uint64, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}
