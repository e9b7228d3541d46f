// The library's test hook, for the panic-boundary test (hooks_test.go): only with
// `-tags tether_test_hooks`, linked against a library built with the `test-hooks` feature
// (mk/go.mk); the installed library and include/tether.h do not have it.

//go:build tether_test_hooks

package tether

/*
#include "shim.h"

// Not in the public header: a library built with the test-hooks feature exports it.
tether_status tether_debug_panic(void);

static tg_failure *tg_debug_panic(void) { return tg_capture(tether_debug_panic()); }
*/
import "C"

// debugPanic makes the library panic inside its boundary and returns the error that becomes.
func debugPanic() error {
	if f := C.tg_debug_panic(); f != nil {
		return failed(f, "", "")
	}
	return nil
}
