// Benchmarks: the grace check and a publish/unpublish cycle through cgo against the Go
// baseline (internal/baseline), an empty cgo call, and a 90 % read / 10 % write mix on as
// many goroutines as GOMAXPROCS (run with -cpu 1,2). Figures and commands: benches/README.md.

package tether

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"tether.example/ffi/go/internal/baseline"
)

const grace = 30 * time.Second

// subject is what the benchmarks drive: the engine through cgo, or the Go baseline.
type subject struct {
	name      string
	grace     func(volume string) (bool, error)
	publish   func(volume, node string) error
	unpublish func(volume, node string) error
}

func subjects(b *testing.B) []subject {
	e, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	m := baseline.New(grace, time.Now)
	return []subject{
		{
			name:      "tether",
			grace:     func(v string) (bool, error) { return e.IsWithinGracePeriod(v, grace) },
			publish:   func(v, n string) error { _, err := e.Publish(v, n, Access{}); return err },
			unpublish: func(v, n string) error { _, err := e.Unpublish(v, n); return err },
		},
		{
			name:      "go-baseline",
			grace:     func(v string) (bool, error) { return m.IsWithinGracePeriod(v, grace) },
			publish:   func(v, n string) error { _, _, err := m.Publish(v, n, false); return err },
			unpublish: func(v, n string) error { _, _, err := m.Unpublish(v, n); return err },
		},
	}
}

func BenchmarkEmptyCgoCall(b *testing.B) {
	for b.Loop() {
		noop()
	}
}

// The grace check of a volume detached a moment ago (so the record is read), as a CSI driver
// makes it on every publish.
func BenchmarkGraceCheck(b *testing.B) {
	for _, s := range subjects(b) {
		must0(b, s.publish("pvc-bench", "node-a"))
		must0(b, s.unpublish("pvc-bench", "node-a"))
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if in, err := s.grace("pvc-bench"); err != nil || !in {
					b.Fatalf("grace check: %v %v", in, err)
				}
			}
		})
	}
}

// One publish and one unpublish of the same volume per iteration.
func BenchmarkPublishUnpublish(b *testing.B) {
	for _, s := range subjects(b) {
		b.Run(s.name, func(b *testing.B) {
			for b.Loop() {
				if err := s.publish("pvc-bench", "node-a"); err != nil {
					b.Fatal(err)
				}
				if err := s.unpublish("pvc-bench", "node-a"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Nine grace checks for every write (a publish or an unpublish, alternating), each goroutine
// on volumes of its own, so the only sharing is the engine itself.
func BenchmarkMix90Read10Write(b *testing.B) {
	const perGoroutine = 64
	for _, s := range subjects(b) {
		b.Run(s.name, func(b *testing.B) {
			var next atomic.Int64
			b.RunParallel(func(pb *testing.PB) {
				g := next.Add(1)
				volumes := make([]string, perGoroutine)
				attached := make([]bool, perGoroutine)
				for i := range volumes {
					volumes[i] = fmt.Sprintf("pvc-%d-%d", g, i)
				}
				node := fmt.Sprintf("node-%d", g)
				for i := 0; pb.Next(); i++ {
					v := i % perGoroutine
					if i%10 != 9 {
						_, _ = s.grace(volumes[v])
						continue
					}
					var err error
					if attached[v] {
						err = s.unpublish(volumes[v], node)
					} else {
						err = s.publish(volumes[v], node)
					}
					if err != nil {
						b.Error(err)
						return
					}
					attached[v] = !attached[v]
				}
			})
		})
	}
}

func must0(b *testing.B, err error) {
	b.Helper()
	if err != nil {
		b.Fatal(err)
	}
}
