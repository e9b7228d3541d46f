// The panic boundary, through the library's test hook (debug_hooks.go): only with
// `-tags tether_test_hooks` against a library built with the `test-hooks` feature (mk/go.mk).

//go:build tether_test_hooks

package tether

import (
	"regexp"
	"testing"
)

// A panic inside the library reaches Go as an InternalError; the process and engines live on.
func TestLibraryPanicIsAnError(t *testing.T) {
	e := newEngine(t)
	publish(t, e, "v", "a", rwo, Attached)
	err := debugPanic()
	internal := asError[*InternalError](t, err, ErrInternal)
	equal(t, "status", internal.Status, 901)
	if !regexp.MustCompile(`(?i)panic`).MatchString(internal.Message) {
		t.Errorf("message does not say it was a panic: %q", internal.Message)
	}
	publish(t, e, "v", "a", rwo, AlreadyAttached)
}
