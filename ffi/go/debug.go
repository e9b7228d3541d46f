// Hooks for this package's own tests and benchmarks (test files cannot use cgo themselves).

package tether

/*
#cgo nocallback tg_noop
#cgo nocallback tg_debug_panic
#include "shim.h"
*/
import "C"

// noop makes an empty cgo call, declared like the engine's calls: the benchmarks' measure of
// the crossing alone.
func noop() { C.tg_noop() }

// debugPanic makes the library panic inside its boundary and returns the error that becomes.
func debugPanic() error {
	if f := C.tg_debug_panic(); f != nil {
		return failed(f, "", "")
	}
	return nil
}
