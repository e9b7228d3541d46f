// A new term raised while goroutines change volumes: the ordering promise of SetTerm holds
// across goroutines and threads, and no volume's epoch ever goes down.

package tether

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
)

// Every change that starts after SetTerm has returned issues an epoch of at least term<<32;
// a re-fence racing with the changes returns only fences at or above it; epochs only grow.
func TestTermRaisedUnderLoad(t *testing.T) {
	e := newEngine(t)
	const n, rounds, term = 8, 200, 9
	var raised atomic.Bool
	termSet := make(chan struct{})
	// Closed once the term is raised, or when goroutine 0 gives up, so no one waits forever.
	release := sync.OnceFunc(func() { close(termSet) })
	failures := make(chan error, n+1)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			volume, last := fmt.Sprintf("vol-%d", i), uint64(0)
			if i == 0 {
				defer release()
			}
			for r := range rounds {
				if i == 0 && r == rounds/2 {
					if _, err := e.SetTerm(term); err != nil {
						failures <- err
						return
					}
					raised.Store(true)
					release()
				}
				after := raised.Load()
				p, err := e.Publish(volume, "a", rwo)
				if err == nil && p.Epoch <= last {
					err = fmt.Errorf("%s: publish epoch %d after %d", volume, p.Epoch, last)
				}
				if err == nil && after && p.Epoch < term<<32 {
					err = fmt.Errorf("%s: publish after SetTerm issued epoch %d", volume, p.Epoch)
				}
				if err != nil {
					failures <- err
					return
				}
				u, err := e.Unpublish(volume, "a")
				if err != nil {
					failures <- err
					return
				}
				last = u.Epoch
			}
		})
	}
	wg.Go(func() {
		<-termSet
		fences, err := e.Refence()
		for _, vf := range fences {
			if err == nil && vf.Fence.Epoch < term<<32 {
				err = fmt.Errorf("%s re-fenced at %d", vf.Volume, vf.Fence.Epoch)
			}
		}
		if err != nil {
			failures <- err
		}
	})
	wg.Wait()
	close(failures)
	for err := range failures {
		t.Error(err)
	}
}
