// Crossing into the library: linking, Go values as C arguments, and the one mapping from a
// failed call's status and details to a Go error.

package tether

/*
// The library and its header come through pkg-config: see link_static.go and link_shared.go.
#cgo CFLAGS: -std=c11 -Wall
// No shim function keeps a pointer it is given past the call, nor calls back into Go: cgo may
// then leave its arguments on the stack and skip the callback bookkeeping.
#cgo noescape tg_new
#cgo nocallback tg_new
#cgo nocallback tg_free
#cgo noescape tg_config_default
#cgo nocallback tg_config_default
#cgo noescape tg_advance
#cgo nocallback tg_advance
#cgo noescape tg_config
#cgo nocallback tg_config
#cgo noescape tg_set_grace_period
#cgo nocallback tg_set_grace_period
#cgo noescape tg_set_default_migration_timeout
#cgo nocallback tg_set_default_migration_timeout
#cgo noescape tg_publish
#cgo nocallback tg_publish
#cgo noescape tg_unpublish
#cgo nocallback tg_unpublish
#cgo noescape tg_unpublish_all
#cgo nocallback tg_unpublish_all
#cgo noescape tg_clear_stale
#cgo nocallback tg_clear_stale
#cgo noescape tg_is_within_grace_period
#cgo nocallback tg_is_within_grace_period
#cgo nocallback tg_failure_at
#cgo noescape tg_detach_timestamp_get
#cgo nocallback tg_detach_timestamp_get
#cgo noescape tg_detach_timestamp_clear
#cgo nocallback tg_detach_timestamp_clear
#cgo noescape tg_get
#cgo nocallback tg_get
#cgo noescape tg_epoch
#cgo nocallback tg_epoch
#cgo noescape tg_list
#cgo nocallback tg_list
#cgo noescape tg_attached_count
#cgo nocallback tg_attached_count
#cgo noescape tg_stats
#cgo nocallback tg_stats
#cgo noescape tg_reconcile
#cgo nocallback tg_reconcile
#cgo noescape tg_snapshot
#cgo nocallback tg_snapshot
#cgo noescape tg_restore
#cgo nocallback tg_restore
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"math"
	"time"
	"unsafe"
)

// str passes a Go string as (pointer, length) without copying it. The library only reads
// the bytes during the call (the shim functions are declared noescape), and a string's bytes
// hold no Go pointers, so this is within cgo's rules.
func str(s string) (*C.uint8_t, C.size_t) {
	return (*C.uint8_t)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s))
}

// nanos converts a Go duration for the library, which counts unsigned nanoseconds; a negative
// duration has no such form and is refused here, before any call.
func nanos(d time.Duration, what string) (C.uint64_t, error) {
	if d < 0 {
		return 0, &InvalidArgumentError{Message: fmt.Sprintf("invalid %s: %v is negative; give a duration >= 0", what, d)}
	}
	return C.uint64_t(d), nil
}

// duration converts the library's nanoseconds back, saturating at the longest Go duration.
func duration(ns C.uint64_t) time.Duration {
	if uint64(ns) > math.MaxInt64 {
		return math.MaxInt64
	}
	return time.Duration(ns)
}

// unixTime converts nanoseconds since the Unix epoch to a time.Time.
func unixTime(ns C.uint64_t) time.Time {
	return time.Unix(0, int64(duration(ns)))
}

// nodeName copies a node name held by value in a result. (A plain Go copy, not C.GoStringN:
// that would make the result escape to the heap.)
func nodeName(n *C.tether_node_name) string {
	length := min(int(n.len), len(n.bytes))
	return string(unsafe.Slice((*byte)(unsafe.Pointer(&n.bytes[0])), length))
}

// nodeNames copies the first count names of a result's pair; nil when there are none.
func nodeNames(pair *[2]C.tether_node_name, count C.size_t) []string {
	if count == 0 {
		return nil
	}
	names := make([]string, min(int(count), len(pair)))
	for i := range names {
		names[i] = nodeName(&pair[i])
	}
	return names
}

// failed is the error for a failed call: the one place statuses become Go errors. volume and
// node are the call's arguments, for the errors that name them. It frees the failure.
func failed(f *C.tg_failure, volume, node string) error {
	defer C.tg_failure_free(f)
	info, status := f.info, f.info.status
	msg := fmt.Sprintf("tether: call failed with status %d and no message (out of memory?)", uint32(status))
	if f.message != nil {
		msg = C.GoString(f.message)
	}
	nodes := nodeNames(&info.nodes, info.node_count)
	switch status {
	case C.TETHER_INVALID_ARGUMENT, C.TETHER_INVALID_UTF8:
		return &InvalidArgumentError{Message: msg}
	case C.TETHER_CONFLICT:
		return &ConflictError{Volume: volume, Node: node, AttachedTo: nodes, Message: msg}
	case C.TETHER_INCOMPATIBLE:
		existing := Access{Mode: modeFromC(info.existing_mode), ReadOnly: bool(info.existing_readonly)}
		return &IncompatibleError{Volume: volume, Node: node, Existing: existing, Message: msg}
	case C.TETHER_MIGRATION_LIMIT:
		return &MigrationLimitError{Volume: volume, Node: node, Nodes: nodes, Message: msg}
	case C.TETHER_MIGRATION_TIMED_OUT:
		return &MigrationTimedOutError{
			Volume: volume, Node: node, Nodes: nodes,
			Elapsed: duration(info.elapsed_ns), Timeout: duration(info.timeout_ns), Message: msg,
		}
	case C.TETHER_EPOCH_EXHAUSTED:
		return &EpochExhaustedError{Volume: volume, Epoch: uint64(info.epoch), Message: msg}
	case C.TETHER_STILL_ATTACHED:
		return &StillAttachedError{Volume: volume, Nodes: nodes, Message: msg}
	case C.TETHER_STALE_FENCE:
		return &StaleFenceError{Volume: volume, Epoch: uint64(info.epoch), Applied: uint64(info.applied_epoch), Message: msg}
	case C.TETHER_NOT_ADMITTED:
		return &NotAdmittedError{
			Volume: volume, Node: node, Presented: uint64(info.presented_epoch), FenceEpoch: uint64(info.epoch),
			Admitted: uint64(info.admitted_epoch), Listed: info.admitted_epoch != 0, Message: msg,
		}
	case C.TETHER_BAD_SNAPSHOT:
		return &SnapshotError{Message: msg}
	case C.TETHER_NOT_MANUAL_CLOCK:
		return fmt.Errorf("%w: %s", ErrNotManualClock, msg)
	default:
		// NULL_POINTER, BUFFER_TOO_SMALL, PANIC: this package's or the library's fault.
		return &InternalError{Status: uint32(status), Message: msg}
	}
}

// modeToC gives the library's access mode; an unknown Mode is passed as is, for the library to
// refuse with a message naming it.
func modeToC(m Mode) C.uint32_t {
	switch m {
	case RWO:
		return C.TETHER_RWO
	case RWX:
		return C.TETHER_RWX
	}
	return C.uint32_t(m)
}

func modeFromC(m C.tether_access_mode) Mode {
	if m == C.TETHER_RWX {
		return RWX
	}
	return RWO
}
