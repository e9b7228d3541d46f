// Test helpers: an engine on a manual clock, and unwrapping of calls that must succeed.

package tether

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

// wall is the manual clock's start, so reported times are exact.
var wall = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// newEngine makes an engine on a manual clock, closed when the test ends.
func newEngine(t testing.TB, opts ...Option) *Engine {
	t.Helper()
	e, err := New(append([]Option{WithManualClock(wall)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// must returns v, failing the test if err is set.
func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return v
	}
}

// advance moves e's manual clock.
func advance(t testing.TB, e *Engine, d time.Duration) {
	t.Helper()
	if err := e.Advance(d); err != nil {
		t.Fatalf("Advance(%v): %v", d, err)
	}
}

// asError checks that err is a *T matching sentinel, and returns it.
func asError[T error](t testing.TB, err error, sentinel error) T {
	t.Helper()
	var target T
	if !errors.As(err, &target) {
		t.Fatalf("error %v (%T) is not a %T", err, err, target)
	}
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not match %v", err, sentinel)
	}
	if err.Error() == "" {
		t.Fatalf("error %T has an empty message", err)
	}
	return target
}

func equal[T comparable](t testing.TB, what string, got, want T) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

// deepEqual compares values that hold slices, such as results with a fence.
func deepEqual(t testing.TB, what string, got, want any) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %+v, want %+v", what, got, want)
	}
}

func equalSlices(t testing.TB, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %q, want %q", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: got %q, want %q", what, got, want)
		}
	}
}

// publish publishes and checks the outcome's kind.
func publish(t testing.TB, e *Engine, volume, node string, access Access, want PublishKind) PublishResult {
	t.Helper()
	r, err := e.Publish(volume, node, access)
	if err != nil {
		t.Fatalf("Publish(%q, %q, %v): %v", volume, node, access, err)
	}
	equal(t, "publish kind", r.Kind, want)
	return r
}

// unpublish unpublishes and checks the outcome's kind.
func unpublish(t testing.TB, e *Engine, volume, node string, want UnpublishKind) UnpublishResult {
	t.Helper()
	r, err := e.Unpublish(volume, node)
	if err != nil {
		t.Fatalf("Unpublish(%q, %q): %v", volume, node, err)
	}
	equal(t, "unpublish kind", r.Kind, want)
	return r
}

var rwo, rwx = Access{Mode: RWO}, Access{Mode: RWX}
