//! The publish and unpublish tables of DESIGN.md, applied to one volume's entry.
//!
//! Pure functions of the entry and the request: the caller holds the entry's write guard,
//! so each decision and its write are one atomic step. Every change raises the epoch with
//! [`next_epoch`]; a change whose epoch cannot grow is refused before anything is written.

use crate::clock::Nanos;
use crate::evidence::Evidence;
use crate::nodes::{NodeId, NodeTable};
use crate::outcome::{Access, AccessMode, NodeName};
use crate::record::{next_epoch, Exhausted, VolumeRecord};

/// A publish request, with settings read; the node is interned only if it is admitted.
#[derive(Clone, Copy)]
pub(crate) struct PublishRequest<'a> {
    /// The node's id if the name is interned now, looked up inside the entry guard: a name
    /// not interned holds nothing, and an id this volume holds keeps its name while the guard
    /// is held, so comparing it with the volume's nodes is exact.
    pub(crate) node: Option<NodeId>,
    pub(crate) name: &'a str,
    pub(crate) names: &'a NodeTable,
    pub(crate) access: Access,
    /// The effective (clamped) migration timeout, in whole seconds.
    pub(crate) migration_timeout_s: u16,
    pub(crate) grace: Nanos,
    /// What the caller's evidence shows of a holder, by name: one shown holding is never
    /// handed off by the grace rule; one shown released is cleared as an orphan on a conflict.
    pub(crate) evidence: &'a dyn Fn(&str) -> Evidence,
}

/// What the entry guard adds to a request: the instant and term read under it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Moment {
    pub(crate) now: Nanos,
    pub(crate) term: u64,
}

impl PublishRequest<'_> {
    /// The id to write into the entry, with one hold taken on it (interned now if the name
    /// is new); the engine turns that hold into the entry's when it settles the change.
    fn admit(&self) -> NodeId {
        self.names.intern(self.name)
    }

    fn evidence_of(&self, holder: NodeId) -> Evidence {
        (self.evidence)(&self.names.name(holder))
    }
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
    EpochExhausted { epoch: u64 },
}

impl From<Exhausted> for Refusal {
    fn from(Exhausted(epoch): Exhausted) -> Self {
        Self::EpochExhausted { epoch }
    }
}

/// A holder cleared as an orphan on the way to a publish's decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Orphan {
    /// Named under the guard: once cleared, nothing may hold the name any more.
    pub(crate) node: NodeName,
    /// Whether the clear ended a migration.
    pub(crate) migrating: bool,
    /// The volume's epoch after the clear.
    pub(crate) epoch: u64,
}

/// What an unpublish did to the entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unpublished {
    NotAttached,
    Detached { nodes: [NodeId; 2], migrating: bool },
    MigrationCompleted { source: NodeId, target: NodeId, duration: Nanos },
    MigrationAborted { source: NodeId, target: NodeId },
}

impl VolumeRecord {
    /// The publish table, past orphans: while the request is refused with `Conflict` and the
    /// evidence shows one of the refusing holders released, that holder is cleared
    /// (compare-and-clear, no detach record) and the table decides again. Each clear is pushed
    /// to `cleared` and stands even if another holder still refuses. At most two holders, so at
    /// most two clears. Only `Conflict` clears: a migration at its limit or past its timeout is
    /// not a conflict with an orphan, and stays refused.
    pub(crate) fn publish(
        &mut self,
        req: &PublishRequest<'_>,
        at: Moment,
        cleared: &mut Vec<Orphan>,
    ) -> Result<Decision, Refusal> {
        loop {
            let decided = self.decide(req, at);
            let Err(Refusal::Conflict { holders }) = decided else { return decided };
            let released = |h: &NodeId| !h.is_none() && req.evidence_of(*h) == Evidence::Released;
            let Some(orphan) = holders.iter().copied().find(released) else { return decided };
            let (node, migrating) = (req.names.name(orphan), self.is_migrating());
            if !self.clear_node(orphan, None, at)? {
                return decided;
            }
            cleared.push(Orphan { node, migrating, epoch: self.epoch });
        }
    }

    /// The publish table itself.
    fn decide(&mut self, req: &PublishRequest<'_>, at: Moment) -> Result<Decision, Refusal> {
        if !self.is_attached() {
            let epoch = next_epoch(self.epoch, at.term)?;
            self.attach(req, epoch, at.now);
            return Ok(Decision::Attached);
        }
        if req.node.is_some_and(|n| self.holds(n)) {
            return if self.access() == req.access {
                Ok(Decision::AlreadyAttached)
            } else {
                Err(Refusal::Incompatible { existing: self.access() })
            };
        }
        match (self.access().mode, req.access.mode) {
            (AccessMode::Rwo, AccessMode::Rwo) => self.hand_off(req, at),
            // The target must ask for the access the volume has: a read-only target of a
            // writable volume (or the reverse) is not a migration of the same workload.
            (AccessMode::Rwx, AccessMode::Rwx) if self.access().readonly == req.access.readonly => {
                self.start_migration(req, at)
            }
            _ => Err(Refusal::Conflict { holders: self.nodes() }),
        }
    }

    fn attach(&mut self, req: &PublishRequest<'_>, epoch: u64, now: Nanos) {
        self.set_access(req.access);
        self.set_single(req.admit(), epoch, epoch, now);
    }

    /// RWO held by A: the request wins only if A's attachment is a late re-attach, i.e. the
    /// volume was fully detached from A less than the grace period ago, and nothing outside
    /// the engine says otherwise. The detach record is not consumed by A's own re-attach:
    /// without evidence a fresh re-attach and the late retry this rule exists for look alike.
    fn hand_off(&mut self, req: &PublishRequest<'_>, at: Moment) -> Result<Decision, Refusal> {
        let from = self.primary();
        let late = self.detached_from == from && self.detached_at.within(at.now, req.grace);
        // Evidence beats timers: a holder shown holding is not late, and one shown released is
        // an orphan, cleared on this conflict rather than handed off.
        if !late || req.evidence_of(from) != Evidence::Unknown {
            return Err(Refusal::Conflict { holders: self.nodes() });
        }
        let epoch = next_epoch(self.epoch, at.term)?;
        self.detached_at.clear();
        self.attach(req, epoch, at.now);
        Ok(Decision::HandedOff { from })
    }

    /// RWX: a second node starts a migration; a third is refused, as timed out when the
    /// migration has outlived its timeout (that check comes first), else as over the limit.
    fn start_migration(&mut self, req: &PublishRequest<'_>, at: Moment) -> Result<Decision, Refusal> {
        let held = self.nodes().iter().filter(|n| !n.is_none()).count();
        if held >= AccessMode::Rwx.node_limit() {
            let elapsed = at.now.saturating_sub(self.since);
            let timeout = self.migration_timeout();
            if elapsed > timeout {
                return Err(Refusal::MigrationTimedOut { holders: self.nodes(), elapsed, timeout });
            }
            return Err(Refusal::MigrationLimit { holders: self.nodes() });
        }
        let epoch = next_epoch(self.epoch, at.term)?;
        let source = self.primary();
        self.set_migrating(req.admit(), req.migration_timeout_s, epoch, at.now);
        Ok(Decision::MigrationStarted { source })
    }

    /// The unpublish table. `None` detaches every node (CSI allows an empty node id).
    pub(crate) fn unpublish(&mut self, node: Option<NodeId>, at: Moment) -> Result<Unpublished, Exhausted> {
        if !self.is_attached() {
            return Ok(Unpublished::NotAttached);
        }
        let Some(node) = node else { return self.detach_all(at) };
        if !self.holds(node) {
            return Ok(Unpublished::NotAttached);
        }
        let Some(m) = self.migration() else { return self.detach_all(at) };
        let (source, target, target_admitted) = (self.primary(), m.target, m.admitted);
        let epoch = next_epoch(self.epoch, at.term)?;
        let duration = at.now.saturating_sub(self.since);
        if node == source {
            self.set_single(target, target_admitted, epoch, at.now);
            Ok(Unpublished::MigrationCompleted { source, target, duration })
        } else {
            self.set_single(source, self.admitted, epoch, at.now);
            Ok(Unpublished::MigrationAborted { source, target })
        }
    }

    /// A full detach: the only change that writes the detach record.
    fn detach_all(&mut self, at: Moment) -> Result<Unpublished, Exhausted> {
        let epoch = next_epoch(self.epoch, at.term)?;
        let (nodes, migrating) = (self.nodes(), self.is_migrating());
        self.detached_from = nodes[0];
        self.detached_at.set(at.now);
        self.set_detached(epoch, at.now);
        Ok(Unpublished::Detached { nodes, migrating })
    }

    /// Compare-and-clear: removes `node` only if it still holds the volume and, when `seen`
    /// is given, only if the epoch is still the one the caller saw. Writes no detach record
    /// (the node did not detach; it vanished). Returns whether it removed it.
    pub(crate) fn clear_node(&mut self, node: NodeId, seen: Option<u64>, at: Moment) -> Result<bool, Exhausted> {
        if !self.holds(node) || seen.is_some_and(|e| e != self.epoch) {
            return Ok(false);
        }
        let epoch = next_epoch(self.epoch, at.term)?;
        let [a, b] = self.nodes();
        let [adm_a, adm_b] = self.admissions();
        match (a == node, b.is_none()) {
            (_, true) => self.set_detached(epoch, at.now),
            (true, false) => self.set_single(b, adm_b, epoch, at.now),
            (false, false) => self.set_single(a, adm_a, epoch, at.now),
        }
        Ok(true)
    }

    /// A re-fence: the epoch rises to the term; nodes and admissions stay.
    pub(crate) fn refence(&mut self, term: u64) -> Result<(), Exhausted> {
        self.epoch = next_epoch(self.epoch, term)?;
        Ok(())
    }
}
