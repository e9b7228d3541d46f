// The JSON documents the library returns for lists, reconcile reports and re-fences (their
// shapes are written in include/tether.h), and their decoding into Go values.

package tether

/*
#include "shim.h"
*/
import "C"

import (
	"encoding/json"
	"fmt"
	"unsafe"
)

type attachmentDoc struct {
	Volume      string        `json:"volume"`
	Mode        string        `json:"mode"`
	ReadOnly    bool          `json:"readonly"`
	Nodes       []string      `json:"nodes"`
	Epoch       uint64        `json:"epoch"`
	SinceUnixNs uint64        `json:"since_unix_ns"`
	Migration   *migrationDoc `json:"migration"`
	Admitted    []uint64      `json:"admitted"`
}

type migrationDoc struct {
	ElapsedNs uint64 `json:"elapsed_ns"`
	TimeoutNs uint64 `json:"timeout_ns"`
}

type fenceDoc struct {
	Epoch    uint64 `json:"epoch"`
	Mode     string `json:"mode"`
	ReadOnly bool   `json:"readonly"`
	Nodes    []struct {
		Node       string `json:"node"`
		AdmittedAt uint64 `json:"admitted_at"`
	} `json:"nodes"`
}

type volumeFenceDoc struct {
	Volume string   `json:"volume"`
	Fence  fenceDoc `json:"fence"`
}

type reportDoc struct {
	Cleared []struct {
		Volume string   `json:"volume"`
		Node   string   `json:"node"`
		Epoch  uint64   `json:"epoch"`
		Fence  fenceDoc `json:"fence"`
	} `json:"cleared"`
	Pending []struct {
		Node               string `json:"node"`
		MissingSinceUnixNs uint64 `json:"missing_since_unix_ns"`
		ClearsInNs         uint64 `json:"clears_in_ns"`
		Volumes            int    `json:"volumes"`
	} `json:"pending"`
	Returned           []string `json:"returned"`
	TimedOutMigrations []struct {
		Volume    string `json:"volume"`
		Source    string `json:"source"`
		Target    string `json:"target"`
		ElapsedNs uint64 `json:"elapsed_ns"`
		TimeoutNs uint64 `json:"timeout_ns"`
	} `json:"timed_out_migrations"`
}

// ownedBytes copies and frees a string the library handed over.
func ownedBytes(s *C.char, n C.size_t) []byte {
	defer C.tether_string_free(s)
	return C.GoBytes(unsafe.Pointer(s), C.int(n))
}

// decode reads a library document; a document this package cannot read is the library's
// fault, never the caller's.
func decode(doc []byte, into any, what string) error {
	if err := json.Unmarshal(doc, into); err != nil {
		return &InternalError{Message: fmt.Sprintf("tether: the library's %s document is unreadable: %v", what, err)}
	}
	return nil
}

// modeFromDoc reads a document's access mode.
func modeFromDoc(mode string) Mode {
	if mode == "RWX" {
		return RWX
	}
	return RWO
}

func (d *fenceDoc) fence() Fence {
	f := Fence{Epoch: d.Epoch, Access: Access{Mode: modeFromDoc(d.Mode), ReadOnly: d.ReadOnly}}
	for _, n := range d.Nodes {
		f.Nodes = append(f.Nodes, Admission{Node: n.Node, Epoch: n.AdmittedAt})
	}
	return f
}

func (d *attachmentDoc) attachment() Attachment {
	a := Attachment{
		Volume:   d.Volume,
		Access:   Access{Mode: modeFromDoc(d.Mode), ReadOnly: d.ReadOnly},
		Nodes:    d.Nodes,
		Admitted: d.Admitted,
		Epoch:    d.Epoch,
		Since:    unixTime(C.uint64_t(d.SinceUnixNs)),
	}
	if m := d.Migration; m != nil {
		a.Migration = &MigrationStatus{Elapsed: duration(C.uint64_t(m.ElapsedNs)), Timeout: duration(C.uint64_t(m.TimeoutNs))}
	}
	return a
}

func (d *reportDoc) report() ReconcileReport {
	var r ReconcileReport
	for _, c := range d.Cleared {
		r.Cleared = append(r.Cleared, ClearedAttachment{Volume: c.Volume, Node: c.Node, Epoch: c.Epoch, Fence: c.Fence.fence()})
	}
	for _, p := range d.Pending {
		r.Pending = append(r.Pending, PendingNode{
			Node:         p.Node,
			MissingSince: unixTime(C.uint64_t(p.MissingSinceUnixNs)),
			ClearsIn:     duration(C.uint64_t(p.ClearsInNs)),
			Volumes:      p.Volumes,
		})
	}
	r.Returned = d.Returned
	for _, t := range d.TimedOutMigrations {
		r.TimedOutMigrations = append(r.TimedOutMigrations, TimedOutMigration{
			Volume: t.Volume, Source: t.Source, Target: t.Target,
			Elapsed: duration(C.uint64_t(t.ElapsedNs)), Timeout: duration(C.uint64_t(t.TimeoutNs)),
		})
	}
	return r
}
