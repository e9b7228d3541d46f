// The fence as a Go value, its crossing to and from the library, and the storage target's two
// rules on it (applied by the library, never re-implemented here).

package tether

/*
#cgo noescape tg_fence_check_supersedes
#cgo nocallback tg_fence_check_supersedes
#cgo noescape tg_fence_check_session
#cgo nocallback tg_fence_check_session
#include "shim.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Admission is one node a fence admits, and the epoch of the change that admitted it: the
// least epoch the node's I/O session must present.
type Admission struct {
	Node  string
	Epoch uint64
}

// Fence is what a storage target must allow for a volume now: Nodes (primary first; none
// after a detach, two during a migration) with the access they hold. A target applies a
// fence only if its Epoch is higher than the last one it applied ([Fence.CheckSupersedes])
// and admits a node's session only if the latest fence admits it ([Fence.CheckSession]).
type Fence struct {
	Epoch  uint64
	Access Access
	Nodes  []Admission
}

// VolumeFence is one volume's fence, as [Engine.Refence] returns them.
type VolumeFence struct {
	Volume string
	Fence  Fence
}

// Admission returns node's admission epoch, and whether the fence admits node at all.
func (f Fence) Admission(node string) (uint64, bool) {
	for _, a := range f.Nodes {
		if a.Node == node {
			return a.Epoch, true
		}
	}
	return 0, false
}

// String describes the fence, e.g. `epoch 3 (RWX): "a"@1, "b"@3`.
func (f Fence) String() string {
	nodes := make([]string, len(f.Nodes))
	for i, a := range f.Nodes {
		nodes[i] = fmt.Sprintf("%q@%d", a.Node, a.Epoch)
	}
	if len(nodes) == 0 {
		nodes = []string{"nobody"}
	}
	return fmt.Sprintf("epoch %d (%v): %s", f.Epoch, f.Access, strings.Join(nodes, ", "))
}

// CheckSupersedes reports whether a storage target that last applied a fence at epoch applied
// may apply f: nil if f's epoch is higher, otherwise a [*StaleFenceError], so a delayed,
// replayed or stale-leader update never reopens access. (A target that never applied a fence
// may apply any.) volume only names the volume in the error. A Fence this package did not
// hand out, of a shape no fence has, is an [*InvalidArgumentError].
func (f Fence) CheckSupersedes(volume string, applied uint64) error {
	cf, err := fenceToC(f)
	if err != nil {
		return err
	}
	vp, vl := str(volume)
	return failure(C.tg_fence_check_supersedes(&cf, vp, vl, true, C.uint64_t(applied)), volume, "")
}

// CheckSession reports whether node, presenting epoch presented (the admission epoch its
// publish gave it), may use volume under f, the latest fence the target applied: nil if f
// admits node at an epoch no higher than presented, otherwise a [*NotAdmittedError].
func (f Fence) CheckSession(volume, node string, presented uint64) error {
	cf, err := fenceToC(f)
	if err != nil {
		return err
	}
	vp, vl := str(volume)
	np, nl := str(node)
	return failure(C.tg_fence_check_session(&cf, vp, vl, np, nl, C.uint64_t(presented)), volume, node)
}

// failure maps a failure of a call that needs no engine.
func failure(f *C.tg_failure, volume, node string) error {
	if f == nil {
		return nil
	}
	return failed(f, volume, node)
}

// fenceFromC copies a fence the library wrote.
func fenceFromC(f *C.tether_fence) Fence {
	out := Fence{Epoch: uint64(f.epoch), Access: Access{Mode: modeFromC(f.mode), ReadOnly: bool(f.readonly)}}
	n := min(int(f.node_count), len(f.nodes))
	if n > 0 {
		out.Nodes = make([]Admission, n)
	}
	for i := range n {
		out.Nodes[i] = Admission{Node: nodeName(&f.nodes[i].node), Epoch: uint64(f.nodes[i].epoch)}
	}
	return out
}

// fenceToC lays a Go fence out as the library's. What cannot be laid out (more nodes or longer
// names than a fence holds) is refused here; everything else the library checks.
func fenceToC(f Fence) (C.tether_fence, error) {
	var out C.tether_fence
	if len(f.Nodes) > len(out.nodes) {
		return out, &InvalidArgumentError{Message: fmt.Sprintf("invalid fence: %d nodes; a fence admits at most %d",
			len(f.Nodes), len(out.nodes))}
	}
	out.epoch, out.mode, out.readonly = C.uint64_t(f.Epoch), C.tether_access_mode(modeToC(f.Access.Mode)), C.bool(f.Access.ReadOnly)
	out.node_count = C.size_t(len(f.Nodes))
	for i, a := range f.Nodes {
		slot := &out.nodes[i]
		if len(a.Node) >= len(slot.node.bytes) {
			return out, &InvalidArgumentError{Message: fmt.Sprintf(
				"invalid fence: node %d's name is %d bytes long; the limit is %d bytes", i, len(a.Node), len(slot.node.bytes)-1)}
		}
		copy(unsafe.Slice((*byte)(unsafe.Pointer(&slot.node.bytes[0])), len(slot.node.bytes)), a.Node)
		slot.node.len, slot.epoch = C.size_t(len(a.Node)), C.uint64_t(a.Epoch)
	}
	return out, nil
}
