// Benchmarks: the grace check and a publish/unpublish cycle through cgo against the Go
// baseline (internal/baseline), an empty cgo call, and a 90 % read / 10 % write mix on as many
// goroutines as GOMAXPROCS (run with -cpu 1,2). The key set and its scattered order are those
// of benches/benches/ffi.rs, so the figures sit beside the native ones. Figures and commands:
// benches/README.md.

package tether

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/tether-csi/tether/ffi/go/internal/baseline"
)

const (
	benchVolumes = 10_000
	// Long enough that every volume detached at set-up stays inside it for the whole run
	// (-count repeats the sub-benchmarks without setting up again).
	benchGrace = time.Hour
	// Each goroutine of the mix owns this many volumes, so goroutines never contend on one.
	mixShare = 1_000
)

var (
	benchKeys  = names("pvc-%08d", benchVolumes)
	benchNodes = names("node-%d", 7)
)

func names(format string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf(format, i)
	}
	return out
}

// scattered picks key i in a scattered order, so no figure is one cache-hot key.
func scattered(keys []string, i int) string {
	return keys[(i*7919)%len(keys)]
}

// withCPU runs the benchmark's loop and reports, beside Go's wall-clock ns/op, the CPU time the
// process spent per operation (all threads, user and system): on a shared machine the wall
// clock also counts time other processes held the cores, the CPU time does not.
func withCPU(b *testing.B, loop func()) {
	start := cpuTime()
	loop()
	b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// subject is what the benchmarks drive: the engine through cgo, or the Go baseline.
type subject struct {
	name      string
	engine    *Engine // nil for the baseline
	grace     func(volume string) (bool, error)
	publish   func(volume, node string) error
	unpublish func(volume, node string) error
}

// subjects makes both, every volume attached and detached once so grace checks hit a record.
func subjects(b *testing.B) []subject {
	e, err := New()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = e.Close() })
	m := baseline.New(benchGrace, time.Now)
	all := []subject{
		{
			name:      "tether",
			engine:    e,
			grace:     func(v string) (bool, error) { return e.IsWithinGracePeriod(v, benchGrace) },
			publish:   func(v, n string) error { _, err := e.Publish(v, n, Access{}); return err },
			unpublish: func(v, n string) error { _, err := e.Unpublish(v, n); return err },
		},
		{
			name:      "go-baseline",
			grace:     func(v string) (bool, error) { return m.IsWithinGracePeriod(v, benchGrace) },
			publish:   func(v, n string) error { _, _, err := m.Publish(v, n, false); return err },
			unpublish: func(v, n string) error { _, _, err := m.Unpublish(v, n); return err },
		},
	}
	for _, s := range all {
		for _, k := range benchKeys {
			if s.publish(k, benchNodes[0]) != nil || s.unpublish(k, benchNodes[0]) != nil {
				b.Fatalf("%s: setting up %s failed", s.name, k)
			}
		}
	}
	return all
}

func BenchmarkEmptyCgoCall(b *testing.B) {
	withCPU(b, func() {
		for b.Loop() {
			noop()
		}
	})
}

// The grace check of a volume detached inside the window, as a CSI driver makes it on publish.
func BenchmarkGraceCheck(b *testing.B) {
	for _, s := range subjects(b) {
		b.Run(s.name, func(b *testing.B) {
			i := 0
			withCPU(b, func() {
				for b.Loop() {
					i++
					if in, err := s.grace(scattered(benchKeys, i)); err != nil || !in {
						b.Fatalf("grace check: %v %v", in, err)
					}
				}
			})
		})
	}
}

// One publish and one unpublish of the same volume per iteration.
func BenchmarkPublishUnpublish(b *testing.B) {
	for _, s := range subjects(b) {
		b.Run(s.name, func(b *testing.B) {
			i := 0
			withCPU(b, func() {
				for b.Loop() {
					i++
					v, n := scattered(benchKeys, i), benchNodes[i%len(benchNodes)]
					if err := s.publish(v, n); err != nil {
						b.Fatal(err)
					}
					if err := s.unpublish(v, n); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// Nine grace checks for every write (a publish or an unpublish, alternating per volume), each
// goroutine on volumes of its own, so the only thing shared is the engine itself.
func BenchmarkMix90Read10Write(b *testing.B) {
	for _, s := range subjects(b) {
		b.Run(s.name, func(b *testing.B) {
			var next atomic.Int64
			withCPU(b, func() {
				b.RunParallel(func(pb *testing.PB) {
					g := int(next.Add(1)-1) % (benchVolumes / mixShare)
					keys := benchKeys[g*mixShare : (g+1)*mixShare]
					attached := make([]bool, len(keys))
					node := benchNodes[g%len(benchNodes)]
					for i := 0; pb.Next(); i++ {
						if i%10 != 9 {
							_, _ = s.grace(scattered(keys, i))
							continue
						}
						k := (i * 7919) % len(keys)
						var err error
						if attached[k] {
							err = s.unpublish(keys[k], node)
						} else {
							err = s.publish(keys[k], node)
						}
						if err != nil {
							b.Error(err)
							return
						}
						attached[k] = !attached[k]
					}
				})
			})
		})
	}
}
