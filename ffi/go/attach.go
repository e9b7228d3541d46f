// The calls that change attachments: publish, unpublish and compare-and-clear.

package tether

/*
#include "shim.h"
*/
import "C"

import "time"

// Publish attaches volume to node with access, following the publish table of DESIGN.md. A
// migration it starts gets the engine's default timeout. Refusals are a [*ConflictError],
// [*IncompatibleError], [*MigrationLimitError], [*MigrationTimedOutError] or
// [*EpochExhaustedError]; a refused call changes nothing. The result carries the node's
// admission epoch and the volume's fence.
func (e *Engine) Publish(volume, node string, access Access) (PublishResult, error) {
	return e.publish(volume, node, access, 0)
}

// PublishWithTimeout is [Engine.Publish] with the timeout of the migration it may start
// (clamped into 30 s .. 1 h; the result reports the effective value).
func (e *Engine) PublishWithTimeout(volume, node string, access Access, timeout time.Duration) (PublishResult, error) {
	ns, err := nanos(timeout, "migration timeout")
	if err != nil {
		return PublishResult{}, err
	}
	// 0 tells the library "use the default"; an explicit zero is the shortest timeout, which
	// the library clamps like any other.
	return e.publish(volume, node, access, max(ns, 1))
}

func (e *Engine) publish(volume, node string, access Access, timeoutNs C.uint64_t) (PublishResult, error) {
	var out C.tether_publish_result
	vp, vl := str(volume)
	np, nl := str(node)
	h, err := e.handle()
	if err != nil {
		return PublishResult{}, err
	}
	f := C.tg_publish(h, vp, vl, np, nl, modeToC(access.Mode), C.bool(access.ReadOnly), timeoutNs, &out)
	err = e.check(f, volume, node)
	if err != nil {
		return PublishResult{}, err
	}
	return publishResult(&out), nil
}

// Unpublish detaches volume from node, following the unpublish table of DESIGN.md.
// Idempotent: a volume not attached there gives [NotAttached] and no error.
func (e *Engine) Unpublish(volume, node string) (UnpublishResult, error) {
	var out C.tether_unpublish_result
	vp, vl := str(volume)
	np, nl := str(node)
	h, err := e.handle()
	if err != nil {
		return UnpublishResult{}, err
	}
	err = e.check(C.tg_unpublish(h, vp, vl, np, nl, &out), volume, node)
	if err != nil {
		return UnpublishResult{}, err
	}
	return unpublishResult(&out), nil
}

// UnpublishAll detaches volume from every node (CSI allows an unpublish without a node id).
func (e *Engine) UnpublishAll(volume string) (UnpublishResult, error) {
	var out C.tether_unpublish_result
	vp, vl := str(volume)
	h, err := e.handle()
	if err != nil {
		return UnpublishResult{}, err
	}
	err = e.check(C.tg_unpublish_all(h, vp, vl, &out), volume, "")
	if err != nil {
		return UnpublishResult{}, err
	}
	return unpublishResult(&out), nil
}

// ClearStale removes node from volume only if it still holds it (compare-and-clear), so it can
// never undo a newer attachment. It writes no detach record.
func (e *Engine) ClearStale(volume, node string) (StaleResult, error) {
	var out C.tether_stale_result
	vp, vl := str(volume)
	np, nl := str(node)
	h, err := e.handle()
	if err != nil {
		return StaleResult{}, err
	}
	err = e.check(C.tg_clear_stale(h, vp, vl, np, nl, &out), volume, node)
	if err != nil {
		return StaleResult{}, err
	}
	return StaleResult{
		Cleared:   out.kind == C.TETHER_STALE_CLEARED,
		Remaining: nodeName(&out.remaining),
		Epoch:     uint64(out.epoch),
		Fence:     fenceFromC(&out.fence),
	}, nil
}
