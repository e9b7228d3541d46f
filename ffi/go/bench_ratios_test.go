//go:build tether_bench

// The grace-check ratios of issue 13 in one run, with the check looped in C (benchhook.go):
// built only with -tags tether_bench (make bench-go), so the hooks stay out of users' builds.

package tether

import (
	"math"
	"testing"
	"time"
)

// graceRound is how many calls of each kind one round of BenchmarkGraceRatios times.
const graceRound = 20_000

// BenchmarkGraceRatios puts issue 13's grace-check figures side by side in one run, on one
// goroutine: an empty cgo call, the library's check looped in C (no cgo crossing per check),
// the check through cgo (Engine.IsWithinGracePeriod) and the Go baseline's check, on the same
// keys in the same scattered order. Each round times graceRound calls of each in turn; the
// best round of each is reported (ns per call), then the ratios of the targets: the cgo check
// against the empty call plus 1.2x the check from C, and against the Go baseline. (Its ns/op
// is a whole round.)
func BenchmarkGraceRatios(b *testing.B) {
	subs := subjects(b)
	tether, base := subs[0], subs[1]
	keys := newBenchKeysC(benchKeys)
	defer keys.free()
	first := 0
	rounds := []struct {
		unit string
		run  func()
	}{
		{"empty-ns", func() {
			for range graceRound {
				noop()
			}
		}},
		{"from-c-ns", func() {
			if graceLoopC(tether.engine, keys, first, graceRound, benchGrace) != graceRound {
				b.Fatal("grace check from C: a volume outside its grace period")
			}
		}},
		{"cgo-ns", func() { graceChecks(b, tether, first, graceRound) }},
		{"go-baseline-ns", func() { graceChecks(b, base, first, graceRound) }},
	}
	best := make([]float64, len(rounds))
	for i := range best {
		best[i] = math.Inf(1)
	}
	for b.Loop() {
		for i, r := range rounds {
			start := time.Now()
			r.run()
			best[i] = min(best[i], float64(time.Since(start).Nanoseconds())/graceRound)
		}
		first += graceRound
	}
	for i, r := range rounds {
		b.ReportMetric(best[i], r.unit)
	}
	empty, fromC, cgo, goBase := best[0], best[1], best[2], best[3]
	b.ReportMetric(cgo/(empty+1.2*fromC), "cgo/(empty+1.2xC)")
	b.ReportMetric(cgo/goBase, "cgo/go-baseline")
}

// graceChecks makes n grace checks on s from key first on, as BenchmarkGraceCheck does.
func graceChecks(b *testing.B, s subject, first, n int) {
	for i := first + 1; i <= first+n; i++ {
		if in, err := s.grace(scattered(benchKeys, i)); err != nil || !in {
			b.Fatalf("%s grace check: %v %v", s.name, in, err)
		}
	}
}
