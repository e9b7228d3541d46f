// The values the engine hands back to Go: access modes, outcomes, records and reports (the
// fence they carry is in fence.go).

package tether

import (
	"fmt"
	"time"
)

// Mode is how many nodes may hold a volume.
type Mode uint8

const (
	// RWO is single-node writer (ReadWriteOnce): at most one node, ever. The zero Mode.
	RWO Mode = iota
	// RWX is multi-node (ReadWriteMany): a second node only during a live migration.
	RWX
)

func (m Mode) String() string {
	switch m {
	case RWO:
		return "RWO"
	case RWX:
		return "RWX"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// Access is what a publish asks for: a mode and a read-only flag. The zero Access is RWO,
// read-write.
type Access struct {
	Mode     Mode
	ReadOnly bool
}

func (a Access) String() string {
	if a.ReadOnly {
		return a.Mode.String() + " read-only"
	}
	return a.Mode.String()
}

// PublishKind is what a successful publish did.
type PublishKind uint8

const (
	// Attached: the volume was not attached; now it is, to this node only.
	Attached PublishKind = iota + 1
	// AlreadyAttached: the volume was already attached to this node with this access.
	AlreadyAttached
	// HandedOff: an RWO attachment on Other was a late re-attach inside the grace period;
	// the volume now belongs to this node alone.
	HandedOff
	// MigrationStarted: an RWX volume on Other (the source) is now also on this node.
	MigrationStarted
)

var publishKindNames = [...]string{"", "Attached", "AlreadyAttached", "HandedOff", "MigrationStarted"}

func (k PublishKind) String() string {
	if int(k) < len(publishKindNames) && k != 0 {
		return publishKindNames[k]
	}
	return fmt.Sprintf("PublishKind(%d)", uint8(k))
}

// PublishResult is a successful publish.
type PublishResult struct {
	Kind PublishKind
	// Epoch is the volume's fencing token after the publish.
	Epoch uint64
	// Other is the node that lost the volume (HandedOff) or the migration's source
	// (MigrationStarted); empty otherwise.
	Other string
	// MigrationTimeout is the effective (clamped) timeout of a started migration; 0 otherwise.
	MigrationTimeout time.Duration
	// Admitted is this node's admission epoch, the same on an idempotent re-publish: the least
	// epoch its I/O session must present.
	Admitted uint64
	// Fence is the volume's fence after the publish: hand it to the storage target before
	// acknowledging the publish.
	Fence Fence
}

// UnpublishKind is what an unpublish did. Every kind is a success: unpublish is idempotent.
type UnpublishKind uint8

const (
	// NotAttached: the volume was not attached to that node (or at all); nothing changed.
	NotAttached UnpublishKind = iota + 1
	// Detached: the volume is attached nowhere now; a detach record was written.
	Detached
	// MigrationCompleted: the migration's source left; the target is the only node now.
	MigrationCompleted
	// MigrationAborted: the migration's target left; the source keeps the volume.
	MigrationAborted
)

var unpublishKindNames = [...]string{"", "NotAttached", "Detached", "MigrationCompleted", "MigrationAborted"}

func (k UnpublishKind) String() string {
	if int(k) < len(unpublishKindNames) && k != 0 {
		return unpublishKindNames[k]
	}
	return fmt.Sprintf("UnpublishKind(%d)", uint8(k))
}

// UnpublishResult is a successful unpublish.
type UnpublishResult struct {
	Kind UnpublishKind
	// Epoch is the volume's epoch after the call; 0 for NotAttached.
	Epoch uint64
	// Nodes are the nodes detached (Detached), or the migration's source and target
	// (MigrationCompleted, MigrationAborted); nil for NotAttached.
	Nodes []string
	// Duration is how long a completed migration ran; 0 otherwise.
	Duration time.Duration
	// Fence is the volume's fence after the change (Detached: nobody; MigrationCompleted: the
	// target; MigrationAborted: the source); the zero Fence for NotAttached, which changes
	// nothing.
	Fence Fence
}

// StaleResult is what a compare-and-clear of a stale attachment did.
type StaleResult struct {
	// Cleared is false when the volume was not (or no longer) attached to the node.
	Cleared bool
	// Remaining is the node still attached after the clear, if any.
	Remaining string
	// Epoch is the volume's epoch after the clear; 0 when nothing was cleared.
	Epoch uint64
	// Fence is the volume's fence after the clear; the zero Fence when nothing was cleared.
	Fence Fence
}

// MigrationStatus is a migration in progress.
type MigrationStatus struct {
	Elapsed time.Duration
	Timeout time.Duration
}

// Attachment is a volume's attachment as read at one moment.
type Attachment struct {
	Volume string
	Access Access
	// Nodes holds one node, or two during a migration (source first).
	Nodes []string
	// Admitted holds the admission epoch of each of Nodes, in the same order.
	Admitted []uint64
	Epoch    uint64
	// Since is when the node set last changed.
	Since time.Time
	// Migration is set while the volume is on two nodes.
	Migration *MigrationStatus
}

// DetachRecord is the last full detach of a volume.
type DetachRecord struct {
	Node string
	At   time.Time
	Age  time.Duration
}

// Config holds the settings that can change while the engine runs.
type Config struct {
	// GracePeriod is how long after a full detach a late re-attach may be handed off.
	GracePeriod time.Duration
	// DefaultMigrationTimeout applies to migrations started without a timeout of their own.
	DefaultMigrationTimeout time.Duration
}

// ReconcileReport is what one reconcile pass found and did.
type ReconcileReport struct {
	// Cleared are attachments removed because their node was missing for the grace period.
	Cleared []ClearedAttachment
	// Pending are missing nodes whose attachments are kept until the grace period runs out.
	Pending []PendingNode
	// Returned are nodes marked missing before that are live again; they kept their volumes.
	Returned []string
	// TimedOutMigrations are migrations found past their timeout, each reported once.
	TimedOutMigrations []TimedOutMigration
}

// ClearedAttachment is one attachment a reconcile cleared.
type ClearedAttachment struct {
	Volume, Node string
	Epoch        uint64
	// Fence is the volume's fence after the clear, for the storage target.
	Fence Fence
}

// PendingNode is a node seen missing whose attachments are not cleared yet.
type PendingNode struct {
	Node         string
	MissingSince time.Time
	// ClearsIn is how long until its attachments are cleared, if it stays missing.
	ClearsIn time.Duration
	// Volumes is how many volumes it holds.
	Volumes int
}

// TimedOutMigration is a migration past its timeout.
type TimedOutMigration struct {
	Volume, Source, Target string
	Elapsed, Timeout       time.Duration
}

// Stats is a reading of the engine's counters. Each field is exact; fields read while other
// goroutines call the engine may come from slightly different moments. ActiveMigrations is a
// gauge; every other field counts since the engine was made.
type Stats struct {
	Attached, AlreadyAttached, HandedOff, MigrationsStarted                      uint64
	Conflicts, Incompatible, MigrationLimit, MigrationTimedOut                   uint64
	Detached, NotAttached, MigrationsCompleted, MigrationsAborted                uint64
	MigrationsTimedOut, StaleCleared, Reconciles, InvalidInput, ActiveMigrations uint64
	// MigrationsDetached and MigrationsCleared count migrations ended by a full detach and by
	// a stale clear of one side.
	MigrationsDetached, MigrationsCleared uint64
	// Refenced counts epochs raised by [Engine.Refence]; Forgotten, records dropped by
	// [Engine.Forget]; EpochExhausted, changes refused because an epoch could not grow.
	Refenced, Forgotten, EpochExhausted uint64
}
