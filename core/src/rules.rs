//! The publish and unpublish tables of DESIGN.md, applied to one volume's entry.
//!
//! Pure functions of the entry and the request: the caller holds the entry's write guard,
//! so each decision and its write are one atomic step.

use crate::clock::Nanos;
use crate::nodes::NodeId;
use crate::outcome::{Access, AccessMode};
use crate::record::VolumeRecord;

/// A publish request, with ids interned and settings read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PublishRequest {
    pub(crate) node: NodeId,
    pub(crate) access: Access,
    /// The effective (clamped) migration timeout, in whole seconds.
    pub(crate) migration_timeout_s: u16,
    pub(crate) grace: Nanos,
    pub(crate) now: Nanos,
}

/// A publish that succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Attached,
    AlreadyAttached,
    HandedOff { from: NodeId },
    MigrationStarted { source: NodeId },
}

/// A publish that was refused; the entry is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    Conflict { holders: [NodeId; 2] },
    Incompatible { existing: Access },
    MigrationLimit { holders: [NodeId; 2] },
    MigrationTimedOut { holders: [NodeId; 2], elapsed: Nanos, timeout: Nanos },
}

/// What an unpublish did to the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unpublished {
    NotAttached,
    Detached { nodes: [NodeId; 2] },
    MigrationCompleted { source: NodeId, target: NodeId, duration: Nanos },
    MigrationAborted { source: NodeId, target: NodeId },
}

impl VolumeRecord {
    /// The publish table.
    pub(crate) fn publish(&mut self, req: &PublishRequest) -> Result<Decision, Refusal> {
        if !self.is_attached() {
            self.attach(req);
            return Ok(Decision::Attached);
        }
        if self.holds(req.node) {
            return if self.access() == req.access {
                Ok(Decision::AlreadyAttached)
            } else {
                Err(Refusal::Incompatible { existing: self.access() })
            };
        }
        match (self.access().mode, req.access.mode) {
            (AccessMode::Rwo, AccessMode::Rwo) => self.hand_off(req),
            (AccessMode::Rwx, AccessMode::Rwx) => self.start_migration(req),
            _ => Err(Refusal::Conflict { holders: self.nodes }),
        }
    }

    fn attach(&mut self, req: &PublishRequest) {
        self.set_access(req.access);
        self.set_nodes([req.node, NodeId::NONE], req.now);
    }

    /// RWO held by A: the request wins only if A's attachment is a late re-attach, i.e. the
    /// volume was fully detached from A less than the grace period ago.
    fn hand_off(&mut self, req: &PublishRequest) -> Result<Decision, Refusal> {
        let from = self.nodes[0];
        let late = self.detached_from == from && self.detached_at.within(req.now, req.grace);
        if !late {
            return Err(Refusal::Conflict { holders: self.nodes });
        }
        self.detached_at.clear();
        self.attach(req);
        Ok(Decision::HandedOff { from })
    }

    /// RWX: a second node starts a migration; a third is refused, as timed out when the
    /// migration has outlived its timeout (that check comes first), else as over the limit.
    fn start_migration(&mut self, req: &PublishRequest) -> Result<Decision, Refusal> {
        if self.is_migrating() {
            let elapsed = req.now.saturating_sub(self.since);
            let timeout = self.migration_timeout();
            if elapsed > timeout {
                return Err(Refusal::MigrationTimedOut { holders: self.nodes, elapsed, timeout });
            }
            return Err(Refusal::MigrationLimit { holders: self.nodes });
        }
        let source = self.nodes[0];
        self.migration_timeout_s = req.migration_timeout_s;
        self.set_timeout_reported(false);
        self.set_nodes([source, req.node], req.now);
        Ok(Decision::MigrationStarted { source })
    }

    /// The unpublish table. `None` detaches every node (CSI allows an empty node id).
    pub(crate) fn unpublish(&mut self, node: Option<NodeId>, now: Nanos) -> Unpublished {
        if !self.is_attached() {
            return Unpublished::NotAttached;
        }
        let Some(node) = node else { return self.detach_all(now) };
        if !self.holds(node) {
            return Unpublished::NotAttached;
        }
        if !self.is_migrating() {
            return self.detach_all(now);
        }
        let [source, target] = self.nodes;
        let duration = now.saturating_sub(self.since);
        if node == source {
            self.set_nodes([target, NodeId::NONE], now);
            Unpublished::MigrationCompleted { source, target, duration }
        } else {
            self.set_nodes([source, NodeId::NONE], now);
            Unpublished::MigrationAborted { source, target }
        }
    }

    /// A full detach: the only change that writes the detach record.
    fn detach_all(&mut self, now: Nanos) -> Unpublished {
        let nodes = self.nodes;
        self.detached_from = nodes[0];
        self.detached_at.set(now);
        self.set_nodes([NodeId::NONE; 2], now);
        Unpublished::Detached { nodes }
    }

    /// Compare-and-clear: removes `node` only if it still holds the volume. Writes no detach
    /// record (the node did not detach; it vanished). Returns whether it removed it.
    pub(crate) fn clear_node(&mut self, node: NodeId, now: Nanos) -> bool {
        if !self.holds(node) {
            return false;
        }
        let [a, b] = self.nodes;
        let rest = if a == node { b } else { a };
        self.set_nodes([rest, NodeId::NONE], now);
        true
    }
}
