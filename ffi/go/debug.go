// Hooks for this package's own tests and benchmarks (test files cannot use cgo themselves).

package tether

/*
#cgo nocallback tg_noop
#include "shim.h"
*/
import "C"

// noop makes an empty cgo call, declared like the engine's calls: the benchmarks' measure of
// the crossing alone.
func noop() { C.tg_noop() }
