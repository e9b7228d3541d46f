// Whole-engine state: reconcile against the live nodes, snapshot to JSON, restore from it.

package tether

/*
#include "shim.h"
*/
import "C"

import "unsafe"

// Reconcile runs one reconcile pass against the nodes that exist now: nodes missing for at
// least the grace period lose their attachments. An invalid name refuses the whole call and
// changes nothing.
func (e *Engine) Reconcile(liveNodes []string) (ReconcileReport, error) {
	// The names cross packed back to back with their lengths: Go memory that C reads may not
	// hold Go pointers, which an array of (pointer, length) pairs would.
	total := 0
	for _, n := range liveNodes {
		total += len(n)
	}
	names := make([]byte, 0, total)
	lens := make([]C.size_t, len(liveNodes))
	for i, n := range liveNodes {
		names = append(names, n...)
		lens[i] = C.size_t(len(n))
	}
	var doc *C.char
	var n C.size_t
	h, err := e.handle()
	if err != nil {
		return ReconcileReport{}, err
	}
	err = e.check(C.tg_reconcile(h, (*C.uint8_t)(unsafe.SliceData(names)), C.size_t(len(names)),
		unsafe.SliceData(lens), C.size_t(len(lens)), &doc, &n), "", "")
	if err != nil {
		return ReconcileReport{}, err
	}
	var rd reportDoc
	if err := decode(ownedBytes(doc, n), &rd, "reconcile report"); err != nil {
		return ReconcileReport{}, err
	}
	return rd.report(), nil
}

// Snapshot returns the whole state (attachments, detach records, missing-node marks) as the
// versioned JSON document of DESIGN.md.
func (e *Engine) Snapshot() ([]byte, error) {
	var doc *C.char
	var n C.size_t
	h, err := e.handle()
	if err != nil {
		return nil, err
	}
	err = e.check(C.tg_snapshot(h, &doc, &n), "", "")
	if err != nil {
		return nil, err
	}
	return ownedBytes(doc, n), nil
}

// Restore replaces the whole state with a snapshot document's. A malformed, unknown-version
// or inconsistent document is refused with a [*SnapshotError] and nothing changes. Meant for
// start-up, before the engine serves publishes.
func (e *Engine) Restore(doc []byte) error {
	h, err := e.handle()
	if err != nil {
		return err
	}
	return e.check(C.tg_restore(h, (*C.uint8_t)(unsafe.SliceData(doc)), C.size_t(len(doc))), "", "")
}

// Version is the library's version, e.g. "0.1.0".
func Version() string {
	return C.GoString(C.tether_version())
}
