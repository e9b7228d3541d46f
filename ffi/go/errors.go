// The errors the engine's calls return: one type per refusal, each matching its sentinel
// through errors.Is and found with its details through errors.As.

package tether

import (
	"errors"
	"time"
)

// Sentinels, one per kind of refusal: errors.Is(err, ErrConflict) and so on.
var (
	ErrInvalidArgument   = errors.New("tether: invalid argument")
	ErrConflict          = errors.New("tether: volume attached to another node")
	ErrIncompatible      = errors.New("tether: volume attached to this node with other access")
	ErrMigrationLimit    = errors.New("tether: volume already on two nodes")
	ErrMigrationTimedOut = errors.New("tether: migration past its timeout")
	ErrBadSnapshot       = errors.New("tether: snapshot rejected")
	ErrNotManualClock    = errors.New("tether: engine does not run on a manual clock")
	ErrInternal          = errors.New("tether: internal error in the tether library")
	// ErrClosed is returned by every call on an engine after Close.
	ErrClosed = errors.New("tether: engine is closed")
)

// InvalidArgumentError: an argument breaks a rule of the contract (an empty, over-long,
// NUL-bearing or non-UTF-8 identifier, a duration out of range). Nothing was changed.
type InvalidArgumentError struct {
	// Message is the library's explanation, naming the argument and the problem.
	Message string
}

func (e *InvalidArgumentError) Error() string        { return e.Message }
func (e *InvalidArgumentError) Is(target error) bool { return target == ErrInvalidArgument }

// ConflictError: another node holds the volume in a way that excludes Node
// (CSI FAILED_PRECONDITION).
type ConflictError struct {
	Volume, Node string
	// AttachedTo are the nodes holding the volume, primary first.
	AttachedTo []string
	Message    string
}

func (e *ConflictError) Error() string        { return e.Message }
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// IncompatibleError: Node already holds the volume with other access (CSI ALREADY_EXISTS).
type IncompatibleError struct {
	Volume, Node string
	// Existing is the access the volume is attached with.
	Existing Access
	Message  string
}

func (e *IncompatibleError) Error() string        { return e.Message }
func (e *IncompatibleError) Is(target error) bool { return target == ErrIncompatible }

// MigrationLimitError: an RWX volume is already on two nodes during a migration.
type MigrationLimitError struct {
	Volume, Node string
	// Nodes are the migration's source and target.
	Nodes   []string
	Message string
}

func (e *MigrationLimitError) Error() string        { return e.Message }
func (e *MigrationLimitError) Is(target error) bool { return target == ErrMigrationLimit }

// MigrationTimedOutError: the volume's migration has run past its timeout; unpublish one
// side to end it.
type MigrationTimedOutError struct {
	Volume, Node string
	// Nodes are the migration's source and target.
	Nodes            []string
	Elapsed, Timeout time.Duration
	Message          string
}

func (e *MigrationTimedOutError) Error() string        { return e.Message }
func (e *MigrationTimedOutError) Is(target error) bool { return target == ErrMigrationTimedOut }

// SnapshotError: a snapshot document is malformed, of an unknown version or inconsistent.
// The engine kept its state.
type SnapshotError struct {
	Message string
}

func (e *SnapshotError) Error() string        { return e.Message }
func (e *SnapshotError) Is(target error) bool { return target == ErrBadSnapshot }

// InternalError: the library failed in a way the caller cannot fix (a caught panic, a
// status this package does not know). The engine stays usable.
type InternalError struct {
	// Status is the library's status code.
	Status  uint32
	Message string
}

func (e *InternalError) Error() string        { return e.Message }
func (e *InternalError) Is(target error) bool { return target == ErrInternal }

// Sentinels of the fence refusals: errors.Is(err, ErrStillAttached) and so on.
var (
	ErrEpochExhausted = errors.New("tether: volume epoch cannot grow")
	ErrStillAttached  = errors.New("tether: volume still attached")
	ErrStaleFence     = errors.New("tether: fence not newer than the one applied")
	ErrNotAdmitted    = errors.New("tether: node not admitted by the fence")
)

// EpochExhaustedError: the volume's epoch cannot grow any further (epochs never wrap), so the
// volume can change no more; nothing changed. Make a new volume and move the data to it.
type EpochExhaustedError struct {
	Volume string
	// Epoch is the volume's epoch.
	Epoch   uint64
	Message string
}

func (e *EpochExhaustedError) Error() string        { return e.Message }
func (e *EpochExhaustedError) Is(target error) bool { return target == ErrEpochExhausted }

// StillAttachedError: [Engine.Forget] was asked to drop a volume that is still attached;
// unpublish it from every node first.
type StillAttachedError struct {
	Volume string
	// Nodes are the nodes holding the volume, primary first.
	Nodes   []string
	Message string
}

func (e *StillAttachedError) Error() string        { return e.Message }
func (e *StillAttachedError) Is(target error) bool { return target == ErrStillAttached }

// StaleFenceError: a fence no newer than the one a storage target applied last (a delayed,
// replayed or stale-leader update); the target must keep the fence it has.
type StaleFenceError struct {
	Volume string
	// Epoch is the refused fence's epoch; Applied, the epoch already applied.
	Epoch, Applied uint64
	Message        string
}

func (e *StaleFenceError) Error() string        { return e.Message }
func (e *StaleFenceError) Is(target error) bool { return target == ErrStaleFence }

// NotAdmittedError: a node's I/O session is not allowed by the volume's latest fence. The
// node should publish the volume again to get a current admission epoch.
type NotAdmittedError struct {
	Volume, Node string
	// Presented is the epoch the node presented; FenceEpoch, the fence's epoch.
	Presented, FenceEpoch uint64
	// Admitted is the node's admission epoch in the fence, when Listed says the fence admits
	// it at all (then Presented was below it).
	Admitted uint64
	Listed   bool
	Message  string
}

func (e *NotAdmittedError) Error() string        { return e.Message }
func (e *NotAdmittedError) Is(target error) bool { return target == ErrNotAdmitted }
