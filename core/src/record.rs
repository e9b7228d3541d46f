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

/// One volume's state. Kept after detach: the epoch and detach stamp outlive the attachment.
#[derive(Debug)]
pub(crate) struct VolumeRecord {
    /// Grows by one at every change of the node set; never reset.
    pub(crate) epoch: u64,
    /// When the node set last changed; during a migration, when it started.
    pub(crate) since: Nanos,
    /// The last full detach (with `detached_from`).
    pub(crate) detached_at: DetachStamp,
    pub(crate) detached_from: NodeId,
    /// `[primary, target]`; `NONE` slots are empty. Both `NONE`: not attached.
    pub(crate) nodes: [NodeId; 2],
    /// The migration timeout fixed when the migration started, in whole seconds (30 ..= 3600).
    pub(crate) migration_timeout_s: u16,
    /// Mode, read-only and "timeout reported" bits in one byte, which keeps the entry at 40
    /// bytes. Mode and read-only change only under the write guard; the reported bit is also
    /// set under a shared guard by reconcile, hence the atomic.
    flags: std::sync::atomic::AtomicU8,
}

const RWX: u8 = 1;
const READONLY: u8 = 2;
const TIMEOUT_REPORTED: u8 = 4;

impl VolumeRecord {
    /// A volume never attached.
    pub(crate) fn new() -> Self {
        Self {
            epoch: 0,
            since: 0,
            detached_at: DetachStamp::never(),
            detached_from: NodeId::NONE,
            nodes: [NodeId::NONE; 2],
            migration_timeout_s: 0,
            flags: std::sync::atomic::AtomicU8::new(0),
        }
    }

    pub(crate) fn is_attached(&self) -> bool {
        !self.nodes[0].is_none()
    }

    pub(crate) fn is_migrating(&self) -> bool {
        !self.nodes[1].is_none()
    }

    pub(crate) fn access(&self) -> Access {
        let flags = self.flags.load(std::sync::atomic::Ordering::Relaxed);
        let mode = if flags & RWX == 0 { AccessMode::Rwo } else { AccessMode::Rwx };
        Access { mode, readonly: flags & READONLY != 0 }
    }

    /// Sets mode and read-only and clears the reported bit. Called under the write guard.
    pub(crate) fn set_access(&mut self, access: Access) {
        let bits = if access.mode == AccessMode::Rwx { RWX } else { 0 } | if access.readonly { READONLY } else { 0 };
        *self.flags.get_mut() = bits;
    }

    /// Whether reconcile has already reported this migration as timed out.
    pub(crate) fn timeout_reported(&self) -> bool {
        self.flags.load(std::sync::atomic::Ordering::Acquire) & TIMEOUT_REPORTED != 0
    }

    /// Marks the migration as reported; true if this call is the one that marked it.
    /// Safe under a shared guard: only the reported bit changes.
    pub(crate) fn mark_timeout_reported(&self) -> bool {
        self.flags.fetch_or(TIMEOUT_REPORTED, std::sync::atomic::Ordering::AcqRel) & TIMEOUT_REPORTED == 0
    }

    /// Sets or clears the reported bit. Called under the write guard.
    pub(crate) fn set_timeout_reported(&mut self, reported: bool) {
        let flags = self.flags.get_mut();
        *flags = if reported { *flags | TIMEOUT_REPORTED } else { *flags & !TIMEOUT_REPORTED };
    }

    pub(crate) fn holds(&self, node: NodeId) -> bool {
        !node.is_none() && self.nodes.contains(&node)
    }

    pub(crate) fn migration_timeout(&self) -> Nanos {
        u64::from(self.migration_timeout_s) * 1_000_000_000
    }

    /// Replaces the node set and bumps the epoch: the one way the node set changes.
    pub(crate) fn set_nodes(&mut self, nodes: [NodeId; 2], now: Nanos) {
        self.nodes = nodes;
        self.since = now;
        self.epoch += 1;
    }
}

// The per-volume memory budget (DESIGN: at most 200 resident bytes per tracked volume) rests
// on this entry staying at 40 bytes: with a 16-byte key, a 56-byte map slot.
const _: () = assert!(std::mem::size_of::<VolumeRecord>() == 40);
