// What keeps epochs fencing across leaders and volume lifetimes: a volume's fence, the
// controller term, the re-fence a new leader runs, and forgetting a deleted volume.

package tether

/*
#cgo noescape tg_fence
#cgo nocallback tg_fence
#cgo noescape tg_set_term
#cgo nocallback tg_set_term
#cgo noescape tg_term
#cgo nocallback tg_term
#cgo noescape tg_refence
#cgo nocallback tg_refence
#cgo noescape tg_forget
#cgo nocallback tg_forget
#include "shim.h"
*/
import "C"

// MaxTerm is the highest controller term: term << 32 must fit an epoch.
const MaxTerm = 1<<32 - 1

// Fence reads volume's fence now; ok is false when the engine does not track the volume
// (never attached, or forgotten). A tracked volume attached nowhere has a fence with no
// nodes, which a storage target must still apply.
func (e *Engine) Fence(volume string) (f Fence, ok bool, err error) {
	var out C.tether_fence
	var found C.bool
	vp, vl := str(volume)
	h, err := e.handle()
	if err != nil {
		return Fence{}, false, err
	}
	err = e.check(C.tg_fence(h, vp, vl, &found, &out), volume, "")
	if err != nil || !found {
		return Fence{}, false, err
	}
	return fenceFromC(&out), true, nil
}

// SetTerm raises the controller term to term (a term never goes down: a lower one changes
// nothing) and returns the term in force. Every change made afterwards issues an epoch of at
// least term << 32. A term above [MaxTerm] is an [*InvalidArgumentError]. A new leader calls
// SetTerm with its term, then [Engine.Refence], before it serves.
func (e *Engine) SetTerm(term uint64) (uint64, error) {
	var inForce C.uint64_t
	h, err := e.handle()
	if err != nil {
		return 0, err
	}
	err = e.check(C.tg_set_term(h, C.uint64_t(term), &inForce), "", "")
	return uint64(inForce), err
}

// Term reads the current controller term (0 until one is set).
func (e *Engine) Term() (uint64, error) {
	var out C.uint64_t
	h, err := e.handle()
	if err != nil {
		return 0, err
	}
	err = e.check(C.tg_term(h, &out), "", "")
	return uint64(out), err
}

// Refence re-fences every volume the engine tracks at the current term and returns their
// fences, sorted by volume: each epoch rises to at least term << 32, nodes and admission
// epochs stay. Detached volumes are re-fenced too. Hand every fence to the storage target
// before serving, so any late update of the old leader is refused there.
func (e *Engine) Refence() ([]VolumeFence, error) {
	var doc *C.char
	var n C.size_t
	h, err := e.handle()
	if err != nil {
		return nil, err
	}
	if err = e.check(C.tg_refence(h, &doc, &n), "", ""); err != nil {
		return nil, err
	}
	var docs []volumeFenceDoc
	if err := decode(ownedBytes(doc, n), &docs, "re-fence"); err != nil {
		return nil, err
	}
	fences := make([]VolumeFence, len(docs))
	for i := range docs {
		fences[i] = VolumeFence{Volume: docs[i].Volume, Fence: docs[i].Fence.fence()}
	}
	return fences, nil
}

// Forget drops the record (epoch, detach record) of volume, which must be attached nowhere,
// and reports whether there was one; call it when the volume is deleted. A volume of the same
// name made later still starts above the forgotten epoch. An attached volume is a
// [*StillAttachedError], naming its nodes, and is kept.
func (e *Engine) Forget(volume string) (bool, error) {
	var forgotten C.bool
	vp, vl := str(volume)
	h, err := e.handle()
	if err != nil {
		return false, err
	}
	err = e.check(C.tg_forget(h, vp, vl, &forgotten), volume, "")
	return bool(forgotten), err
}
