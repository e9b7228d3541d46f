// Package baseline is the benchmark baseline for the tether package: an RWO attachment
// manager in the design of the Go drivers Tether replaces (a map behind a sync.RWMutex, one
// sync.Mutex per volume), following the RWO rows of DESIGN.md's publish and unpublish tables.
//
// It exists only to be measured against; nothing outside the benchmarks uses it.
package baseline

import (
	"errors"
	"sync"
	"time"
)

// maxIDLen is the identifier bound of DESIGN.md (the CSI limit for string fields).
const maxIDLen = 128

// Errors the baseline refuses with.
var (
	ErrInvalidID    = errors.New("baseline: invalid identifier")
	ErrConflict     = errors.New("baseline: volume attached to another node")
	ErrIncompatible = errors.New("baseline: volume attached to this node with other access")
)

// Outcome is what a successful publish or unpublish did.
type Outcome uint8

// Outcomes, named as in DESIGN.md.
const (
	Attached Outcome = iota + 1
	AlreadyAttached
	HandedOff
	NotAttached
	Detached
)

// volume is one volume's record; its fields are guarded by mu.
type volume struct {
	mu           sync.Mutex
	node         string // "" when not attached
	readonly     bool
	epoch        uint64
	detachedAt   time.Time // zero when never fully detached
	detachedFrom string
}

// Manager holds every volume. The map is guarded by mu, each record by its own lock.
type Manager struct {
	mu      sync.RWMutex
	volumes map[string]*volume
	grace   time.Duration
	now     func() time.Time
}

// New returns a manager with the given grace period, reading time from now (time.Now in
// benchmarks, a manual clock in tests).
func New(grace time.Duration, now func() time.Time) *Manager {
	return &Manager{volumes: make(map[string]*volume), grace: grace, now: now}
}

func validID(id string) bool {
	if id == "" || len(id) > maxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] == 0 {
			return false
		}
	}
	return true
}

// lookup returns the volume's record, creating it when create is set.
func (m *Manager) lookup(id string, create bool) *volume {
	m.mu.RLock()
	v := m.volumes[id]
	m.mu.RUnlock()
	if v != nil || !create {
		return v
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v = m.volumes[id]; v == nil {
		v = &volume{}
		m.volumes[id] = v
	}
	return v
}

// Publish attaches volume to node (RWO), returning the outcome and the epoch after it.
func (m *Manager) Publish(id, node string, readonly bool) (Outcome, uint64, error) {
	if !validID(id) || !validID(node) {
		return 0, 0, ErrInvalidID
	}
	v := m.lookup(id, true)
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case v.node == "":
		v.attach(node, readonly)
		return Attached, v.epoch, nil
	case v.node == node && v.readonly == readonly:
		return AlreadyAttached, v.epoch, nil
	case v.node == node:
		return 0, v.epoch, ErrIncompatible
	case v.detachedFrom == v.node && !v.detachedAt.IsZero() && m.now().Sub(v.detachedAt) < m.grace:
		// The holder's attachment is a late re-attach after its own detach: hand off.
		v.detachedAt = time.Time{}
		v.attach(node, readonly)
		return HandedOff, v.epoch, nil
	default:
		return 0, v.epoch, ErrConflict
	}
}

func (v *volume) attach(node string, readonly bool) {
	v.node, v.readonly = node, readonly
	v.epoch++
}

// Unpublish detaches volume from node; "" detaches it from whichever node holds it.
func (m *Manager) Unpublish(id, node string) (Outcome, uint64, error) {
	if !validID(id) || (node != "" && !validID(node)) {
		return 0, 0, ErrInvalidID
	}
	v := m.lookup(id, false)
	if v == nil {
		return NotAttached, 0, nil
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.node == "" || (node != "" && v.node != node) {
		return NotAttached, v.epoch, nil
	}
	v.detachedFrom, v.detachedAt = v.node, m.now()
	v.node = ""
	v.epoch++
	return Detached, v.epoch, nil
}

// IsWithinGracePeriod reports whether volume was last fully detached less than grace ago.
func (m *Manager) IsWithinGracePeriod(id string, grace time.Duration) (bool, error) {
	if !validID(id) {
		return false, ErrInvalidID
	}
	v := m.lookup(id, false)
	if v == nil {
		return false, nil
	}
	v.mu.Lock()
	at := v.detachedAt
	v.mu.Unlock()
	return !at.IsZero() && m.now().Sub(at) < grace, nil
}
