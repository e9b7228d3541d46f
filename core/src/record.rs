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
    /// The migration timeout fixed when the migration started, in milliseconds.
    pub(crate) migration_timeout_ms: u32,
    pub(crate) mode: AccessMode,
    pub(crate) readonly: bool,
    /// Set once reconcile has reported this migration as timed out.
    pub(crate) timeout_reported: std::sync::atomic::AtomicBool,
}

impl VolumeRecord {
    /// A volume never attached.
    pub(crate) fn new() -> Self {
        Self {
            epoch: 0,
            since: 0,
            detached_at: DetachStamp::never(),
            detached_from: NodeId::NONE,
            nodes: [NodeId::NONE; 2],
            migration_timeout_ms: 0,
            mode: AccessMode::Rwo,
            readonly: false,
            timeout_reported: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub(crate) fn is_attached(&self) -> bool {
        !self.nodes[0].is_none()
    }

    pub(crate) fn is_migrating(&self) -> bool {
        !self.nodes[1].is_none()
    }

    pub(crate) fn access(&self) -> Access {
        Access { mode: self.mode, readonly: self.readonly }
    }

    pub(crate) fn holds(&self, node: NodeId) -> bool {
        !node.is_none() && self.nodes.contains(&node)
    }

    pub(crate) fn migration_timeout(&self) -> Nanos {
        u64::from(self.migration_timeout_ms) * 1_000_000
    }

    /// Replaces the node set and bumps the epoch: the one way the node set changes.
    pub(crate) fn set_nodes(&mut self, nodes: [NodeId; 2], now: Nanos) {
        self.nodes = nodes;
        self.since = now;
        self.epoch += 1;
    }
}
