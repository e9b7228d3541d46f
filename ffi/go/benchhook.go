//go:build tether_bench

// Benchmark hooks (test files cannot use cgo themselves): the grace check looped in C, for the
// benchmarks' figure of the check without a cgo crossing per call.

package tether

/*
#cgo noescape tg_bench_keys_new
#cgo nocallback tg_bench_keys_new
#cgo nocallback tg_bench_keys_free
#cgo nocallback tg_bench_grace
#include "benchhook.h"
*/
import "C"

import (
	"runtime"
	"time"
	"unsafe"
)

// benchKeysC is a C copy of a key set, one allocation per key.
type benchKeysC struct{ k *C.tg_bench_keys }

func newBenchKeysC(keys []string) benchKeysC {
	var packed []byte
	lens := make([]C.size_t, len(keys))
	for i, k := range keys {
		packed = append(packed, k...)
		lens[i] = C.size_t(len(k))
	}
	k := C.tg_bench_keys_new((*C.uint8_t)(unsafe.SliceData(packed)), unsafe.SliceData(lens), C.size_t(len(keys)))
	if k == nil {
		panic("tg_bench_keys_new: out of memory")
	}
	return benchKeysC{k}
}

func (k benchKeysC) free() { C.tg_bench_keys_free(k.k) }

// graceLoopC makes n grace checks from C on e (keys in the benchmarks' scattered order from
// first on) and returns how many were inside grace.
func graceLoopC(e *Engine, k benchKeysC, first, n int, grace time.Duration) int {
	inside := C.tg_bench_grace(e.h, k.k, C.uint64_t(first), C.uint64_t(n), C.uint64_t(grace))
	runtime.KeepAlive(e)
	return int(inside)
}
