//! One volume's entry: its attachment, epoch and detach stamp, and the table's rules applied to it.
//!
//! Every method here runs inside the caller's entry guard; [`DetachStamp`] alone is also read
//! and cleared under a shared guard, which is why it is atomic.

use crate::clock::{Clock, Nanos, NEVER};
use crate::nodes::NodeId;
use crate::outcome::{Access, AccessMode};
use crate::sync::{AtomicU64, Ordering};

/// When a volume was last fully detached, or [`NEVER`].
///
/// Written (set or consumed) only under the entry's write guard; read and cleared under a
/// shared guard by `is_within_grace_period`, `detach_timestamp` and `clear_detach_timestamp`.
#[derive(Debug)]
pub(crate) struct DetachStamp(AtomicU64);

impl DetachStamp {
    pub(crate) fn never() -> Self {
        Self(AtomicU64::new(NEVER))
    }

    pub(crate) fn at(t: Nanos) -> Self {
        Self(AtomicU64::new(t))
    }

    /// The detach instant, if any.
    pub(crate) fn get(&self) -> Option<Nanos> {
        // Acquire pairs with the Release of `set`: whoever sees the time sees the node written
        // before it (the node is written under the write guard, so this is belt and braces).
        let t = self.0.load(Ordering::Acquire);
        (t != NEVER).then_some(t)
    }

    pub(crate) fn set(&self, t: Nanos) {
        self.0.store(t, Ordering::Release);
    }

    /// Drops the stamp; true when this call is the one that dropped it.
    pub(crate) fn clear(&self) -> bool {
        self.0.swap(NEVER, Ordering::AcqRel) != NEVER
    }

    /// Whether the stamp is less than `grace` old at `now`: the grace rule, in one place.
    pub(crate) fn within(&self, now: Nanos, grace: Nanos) -> bool {
        self.get().is_some_and(|t| now.saturating_sub(t) < grace)
    }

    /// [`DetachStamp::within`] at the clock's current instant, read only when there is a stamp
    /// (a volume never detached costs no clock read).
    pub(crate) fn within_now(&self, clock: &dyn Clock, grace: Nanos) -> bool {
        self.get().is_some() && self.within(clock.now(), grace)
    }
}

/// A migration in progress: the target and what only a migration needs, kept off the entry so
/// that the common one-node entry stays at 48 bytes.
#[derive(Debug)]
pub(crate) struct Migration {
    /// The target's admission epoch.
    pub(crate) admitted: u64,
    pub(crate) target: NodeId,
    /// The timeout fixed when the migration started, in whole seconds (30 ..= 3600).
    pub(crate) timeout_s: u16,
    /// Whether reconcile has reported the migration as timed out; set under a shared guard.
    reported: std::sync::atomic::AtomicBool,
}

/// One volume's state. Kept after detach: the epoch and detach stamp outlive the attachment.
#[derive(Debug)]
pub(crate) struct VolumeRecord {
    /// Versions the node set: raised by every change, never lowered, never wrapped.
    pub(crate) epoch: u64,
    /// When the node set last changed; during a migration, when it started.
    pub(crate) since: Nanos,
    /// The last full detach (with `detached_from`).
    pub(crate) detached_at: DetachStamp,
    /// The primary's admission epoch (meaningful while attached).
    pub(crate) admitted: u64,
    /// Present while the volume is on two nodes.
    migration: Option<Box<Migration>>,
    pub(crate) detached_from: NodeId,
    /// The primary's id in the low 30 bits, mode and read-only in the top two: mode and
    /// read-only change only under the write guard, so no atomic is needed.
    primary: u32,
}

const ID_BITS: u32 = (1 << 30) - 1;
const RWX: u32 = 1 << 30;
const READONLY: u32 = 1 << 31;
/// The largest node id the packed primary slot holds; `NodeId::NONE` is stored as `ID_BITS`.
pub(crate) const MAX_NODE_ID: u32 = ID_BITS - 1;

/// Why an epoch could not be raised: the next one would be `u64::MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exhausted(pub(crate) u64);

/// `epoch` raised for a change under `term`: `max(epoch + 1, term << 32)`, refused when it
/// cannot grow. `u64::MAX` itself is never issued; `u64::MAX - 1` is the last epoch, after
/// which the volume can change no more, and a restore refuses a document holding it (or a
/// floor there), since no change could follow. `term` is at most `u32::MAX`, so the shift
/// never overflows.
pub(crate) fn next_epoch(epoch: u64, term: u64) -> Result<u64, Exhausted> {
    epoch.checked_add(1).filter(|&e| e < u64::MAX).map(|e| e.max(term << 32)).ok_or(Exhausted(epoch))
}

impl VolumeRecord {
    /// A volume never attached, whose first change will be raised above `floor`.
    pub(crate) fn new(floor: u64) -> Self {
        Self {
            epoch: floor,
            since: 0,
            detached_at: DetachStamp::never(),
            admitted: 0,
            migration: None,
            detached_from: NodeId::NONE,
            primary: ID_BITS,
        }
    }

    pub(crate) fn primary(&self) -> NodeId {
        match self.primary & ID_BITS {
            ID_BITS => NodeId::NONE,
            id => NodeId(id),
        }
    }

    fn set_primary(&mut self, node: NodeId) {
        let id = if node.is_none() { ID_BITS } else { node.0 };
        debug_assert!(node.is_none() || id <= MAX_NODE_ID);
        self.primary = (self.primary & !ID_BITS) | id;
    }

    /// `[primary, target]`; `NONE` slots are empty. Both `NONE`: not attached.
    pub(crate) fn nodes(&self) -> [NodeId; 2] {
        [self.primary(), self.migration.as_ref().map_or(NodeId::NONE, |m| m.target)]
    }

    /// The admission epochs of `nodes()`, slot for slot (0 for an empty slot).
    pub(crate) fn admissions(&self) -> [u64; 2] {
        let primary = if self.is_attached() { self.admitted } else { 0 };
        [primary, self.migration.as_ref().map_or(0, |m| m.admitted)]
    }

    pub(crate) fn migration(&self) -> Option<&Migration> {
        self.migration.as_deref()
    }

    pub(crate) fn is_attached(&self) -> bool {
        !self.primary().is_none()
    }

    pub(crate) fn is_migrating(&self) -> bool {
        self.migration.is_some()
    }

    pub(crate) fn access(&self) -> Access {
        let mode = if self.primary & RWX == 0 { AccessMode::Rwo } else { AccessMode::Rwx };
        Access { mode, readonly: self.primary & READONLY != 0 }
    }

    pub(crate) fn set_access(&mut self, access: Access) {
        let bits = if access.mode == AccessMode::Rwx { RWX } else { 0 } | if access.readonly { READONLY } else { 0 };
        self.primary = (self.primary & ID_BITS) | bits;
    }

    /// Whether reconcile has already reported this migration as timed out.
    pub(crate) fn timeout_reported(&self) -> bool {
        self.migration.as_ref().is_some_and(|m| m.reported.load(std::sync::atomic::Ordering::Acquire))
    }

    /// Marks the migration as reported; true if this call is the one that marked it.
    /// Safe under a shared guard: only the reported flag changes.
    pub(crate) fn mark_timeout_reported(&self) -> bool {
        self.migration.as_ref().is_some_and(|m| !m.reported.swap(true, std::sync::atomic::Ordering::AcqRel))
    }

    pub(crate) fn holds(&self, node: NodeId) -> bool {
        !node.is_none() && self.nodes().contains(&node)
    }

    /// Every node id the record holds in the node table: the attachment's slots and the
    /// detach record's node (held until the record is written again after its stamp was
    /// consumed or cleared; see [`VolumeRecord::drop_consumed_detach`]).
    pub(crate) fn held(&self) -> [NodeId; 3] {
        let [a, b] = self.nodes();
        [a, b, self.detached_from]
    }

    /// Lets the detach record's node go once its stamp is gone (consumed by a handoff, or
    /// cleared under a shared guard, which cannot write this field). Under the write guard.
    pub(crate) fn drop_consumed_detach(&mut self) {
        if self.detached_at.get().is_none() {
            self.detached_from = NodeId::NONE;
        }
    }

    /// The migration's timeout (0 when not migrating).
    pub(crate) fn migration_timeout(&self) -> Nanos {
        self.migration.as_ref().map_or(0, |m| u64::from(m.timeout_s) * 1_000_000_000)
    }

    /// The volume is now on `node` alone, admitted at `epoch`.
    pub(crate) fn set_single(&mut self, node: NodeId, admitted: u64, epoch: u64, now: Nanos) {
        self.set_primary(node);
        self.admitted = admitted;
        self.migration = None;
        self.changed(epoch, now);
    }

    /// The volume is on no node; its fence admits nobody and carries the default access (a
    /// detached volume has none of its own, and a snapshot does not keep one).
    pub(crate) fn set_detached(&mut self, epoch: u64, now: Nanos) {
        self.primary = ID_BITS;
        self.admitted = 0;
        self.migration = None;
        self.changed(epoch, now);
    }

    /// The primary stays; `target` joins, admitted at `epoch`.
    pub(crate) fn set_migrating(&mut self, target: NodeId, timeout_s: u16, epoch: u64, now: Nanos) {
        self.set_migration(target, epoch, timeout_s, false);
        self.changed(epoch, now);
    }

    /// Installs a migration record as a restored document describes it.
    pub(crate) fn set_migration(&mut self, target: NodeId, admitted: u64, timeout_s: u16, reported: bool) {
        self.migration = Some(Box::new(Migration {
            admitted,
            target,
            timeout_s,
            reported: std::sync::atomic::AtomicBool::new(reported),
        }));
    }

    /// Sets the primary and its admission as a restored document describes them.
    pub(crate) fn set_restored_primary(&mut self, node: NodeId, admitted: u64) {
        self.set_primary(node);
        self.admitted = admitted;
    }

    fn changed(&mut self, epoch: u64, now: Nanos) {
        debug_assert!(epoch > self.epoch, "epochs only grow");
        self.epoch = epoch;
        self.since = now;
    }
}

// The per-volume memory budget (DESIGN: at most 200 resident bytes per tracked volume) rests
// on this entry staying at 48 bytes: with a 16-byte key, a 64-byte map slot.
const _: () = assert!(std::mem::size_of::<VolumeRecord>() == 48);
