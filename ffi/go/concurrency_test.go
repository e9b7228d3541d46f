// Many goroutines on one engine: one writer per RWO volume, errors that describe their own
// call (never another goroutine's), and Close racing with calls.

package tether

import (
	"errors"
	"fmt"
	"sync"
	"testing"
)

// Goroutines race to attach one RWO volume: exactly one wins; every other one is told who won.
func TestConcurrentPublishOneWinner(t *testing.T) {
	e := newEngine(t)
	const n = 16
	results := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			_, results[i] = e.Publish("v", fmt.Sprintf("node-%d", i), rwo)
		})
	}
	wg.Wait()
	winners := 0
	a, _, _ := e.Get("v")
	for i, err := range results {
		if err == nil {
			winners++
			continue
		}
		c := asError[*ConflictError](t, err, ErrConflict)
		equal(t, "loser's node", c.Node, fmt.Sprintf("node-%d", i))
		equalSlices(t, "holder", c.AttachedTo, a.Nodes)
	}
	equal(t, "winners", winners, 1)
}

// Each goroutine gets conflicts on its own volume, held by its own node: the details of every
// error must be those of that goroutine's call, even as goroutines move between threads.
func TestConcurrentErrorsAreTheirOwn(t *testing.T) {
	e := newEngine(t)
	const n, rounds = 8, 300
	for i := range n {
		publish(t, e, fmt.Sprintf("vol-%d", i), fmt.Sprintf("holder-%d", i), rwo, Attached)
	}
	failures := make(chan error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			volume, holder := fmt.Sprintf("vol-%d", i), fmt.Sprintf("holder-%d", i)
			for r := range rounds {
				node := fmt.Sprintf("other-%d-%d", i, r)
				_, err := e.Publish(volume, node, rwo)
				var c *ConflictError
				if !errors.As(err, &c) || c.Volume != volume || c.Node != node ||
					len(c.AttachedTo) != 1 || c.AttachedTo[0] != holder {
					failures <- fmt.Errorf("goroutine %d round %d: got %v", i, r, err)
					return
				}
				if _, err := e.Publish("", node, rwo); !errors.Is(err, ErrInvalidArgument) {
					failures <- fmt.Errorf("goroutine %d round %d: empty volume gave %v", i, r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
}

// A mixed workload on shared volumes keeps the invariants: an RWO volume on one node, an RWX
// volume on at most two, and epochs that only grow.
func TestConcurrentMixedWorkloadKeepsInvariants(t *testing.T) {
	e := newEngine(t)
	const n, rounds = 6, 400
	var wg sync.WaitGroup
	for g := range n {
		wg.Go(func() {
			for r := range rounds {
				volume := fmt.Sprintf("v%d", r%4)
				access := rwo
				if r%4 >= 2 {
					access = rwx
				}
				node := fmt.Sprintf("n%d", (g+r)%3)
				switch r % 5 {
				case 0, 1:
					_, _ = e.Publish(volume, node, access)
				case 2:
					_, _ = e.Unpublish(volume, node)
				case 3:
					_, _ = e.IsWithinGracePeriod(volume, 0)
				case 4:
					_, _ = e.ClearStale(volume, node)
				}
			}
		})
	}
	var last [4]uint64
	for range 200 {
		for _, a := range must[[]Attachment](t)(e.List()) {
			if (a.Access.Mode == RWO && len(a.Nodes) != 1) || len(a.Nodes) > 2 || len(a.Nodes) == 0 {
				t.Fatalf("invariant broken: %+v", a)
			}
		}
		for i := range last {
			ep := must[uint64](t)(e.Epoch(fmt.Sprintf("v%d", i)))
			if ep < last[i] {
				t.Fatalf("epoch of v%d went back from %d to %d", i, last[i], ep)
			}
			last[i] = ep
		}
	}
	wg.Wait()
}

// Close racing with calls on other goroutines: every call either works or returns ErrClosed.
func TestCloseRacingWithCalls(t *testing.T) {
	e := newEngine(t)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range 4 {
		wg.Go(func() {
			<-start
			for r := range 500 {
				volume := fmt.Sprintf("v%d-%d", g, r)
				if _, err := e.Publish(volume, "a", rwo); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("publish during Close: %v", err)
					return
				}
			}
		})
	}
	close(start)
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := e.Publish("late", "a", rwo); !errors.Is(err, ErrClosed) {
		t.Fatalf("publish after Close: %v", err)
	}
}
