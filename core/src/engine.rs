//! The engine: the volume map, node table, settings, clock and counters, and the calls that
//! change attachments (publish, unpublish, compare-and-clear).

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use dashmap::mapref::entry::Entry;
use dashmap::DashMap;

use crate::clock::{duration_to_nanos, nanos_to_duration, Clock, CoarseClock, Nanos};
use crate::config::{check_grace_period, clamp_migration_timeout, Config};
use crate::error::{CoreError, InvalidInput};
use crate::evidence::{ClearedHolder, Evidence, EvidencedPublish};
use crate::ids::{check_node_id, check_volume_id};
use crate::nodes::{NodeId, NodeTable};
use crate::outcome::{Access, Nodes, PublishOutcome, Published, StaleOutcome, UnpublishOutcome};
use crate::record::{Exhausted, VolumeRecord};
use crate::rules::{Decision, Moment, Orphan, PublishRequest, Refusal, Unpublished};
use crate::stats::{Counters, Stats};
use crate::sync::{AtomicU64, Ordering};

pub(crate) type VolumeMap = DashMap<Box<str>, VolumeRecord, ahash::RandomState>;

/// The attachment engine. `Send + Sync`: share it behind an `Arc` between any number of threads.
///
/// Each volume's decisions are made inside that volume's map entry guard; there is no global
/// lock on the publish, unpublish or query paths.
#[derive(Debug)]
pub struct Engine {
    pub(crate) volumes: VolumeMap,
    pub(crate) nodes: NodeTable,
    pub(crate) config: ArcSwap<Config>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) counters: Counters,
    /// Missing-node marks; also serialises reconcile, snapshot and restore with each other.
    pub(crate) missing: std::sync::Mutex<std::collections::HashMap<NodeId, Nanos>>,
    /// The controller term: every change issues an epoch of at least `term << 32`.
    pub(crate) term: AtomicU64,
    /// The highest epoch of any volume record dropped (forgotten, or replaced away by a
    /// restore): a record made later starts there, so a recreated volume's epoch never goes
    /// back. Written and read under the shard lock of the volume concerned.
    pub(crate) epoch_floor: AtomicU64,
}

impl Default for Engine {
    fn default() -> Self {
        Self::new()
    }
}

impl Engine {
    /// An engine with the default settings on the default clock, [`CoarseClock`].
    pub fn new() -> Self {
        Self::build(Config::default(), Arc::new(CoarseClock::new()))
    }

    /// An engine with `config` on `clock` (a [`crate::ManualClock`] in tests).
    pub fn with_config(config: Config, clock: Arc<dyn Clock>) -> Result<Self, CoreError> {
        let config = config.validated()?;
        Ok(Self::build(config, clock))
    }

    fn build(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self {
            volumes: DashMap::with_hasher(ahash::RandomState::new()),
            nodes: NodeTable::default(),
            config: ArcSwap::from_pointee(config),
            clock,
            counters: Counters::default(),
            missing: std::sync::Mutex::default(),
            term: AtomicU64::new(0),
            epoch_floor: AtomicU64::new(0),
        }
    }

    /// The clock this engine reads.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The current settings.
    pub fn config(&self) -> Config {
        **self.config.load()
    }

    /// Changes the grace period for later calls. Refuses one above [`crate::MAX_GRACE_PERIOD`].
    pub fn set_grace_period(&self, grace: Duration) -> Result<(), CoreError> {
        let grace = check_grace_period(grace).map_err(|e| self.invalid(e))?;
        self.config.rcu(|c| Config { grace_period: grace, ..**c });
        Ok(())
    }

    /// Changes the default migration timeout for migrations started later; clamped into
    /// 30 s ..= 1 h. Returns the effective value.
    pub fn set_default_migration_timeout(&self, timeout: Duration) -> Duration {
        let timeout = clamp_migration_timeout(timeout);
        self.config.rcu(|c| Config { default_migration_timeout: timeout, ..**c });
        timeout
    }

    /// A reading of every counter.
    pub fn stats(&self) -> Stats {
        self.counters.read()
    }

    /// Attaches `volume` to `node` with `access`, following the publish table of DESIGN.md.
    /// `migration_timeout` (clamped into 30 s ..= 1 h) applies if this starts a migration;
    /// `None` takes the configured default. The node's name is interned only if it is admitted.
    ///
    /// Locking behaviour: holds the volume's entry write guard for the node's lookup, the
    /// clock read, the decision and its write; under it, interns an admitted node's name and
    /// lets go of names the volume no longer holds (the node table's locks are never held while
    /// waiting for an entry guard).
    pub fn publish(
        &self,
        volume: &str,
        node: &str,
        access: Access,
        migration_timeout: Option<Duration>,
    ) -> Result<PublishOutcome, CoreError> {
        self.publish_with(volume, node, access, migration_timeout, &|_| Evidence::Unknown).outcome
    }

    /// [`Engine::publish`] with evidence from outside the engine ("evidence beats timers",
    /// DESIGN.md's Driver section): `evidence(holder)` says what the world outside shows of a
    /// node that holds the volume. [`Evidence::Holds`]: the grace-period handoff never takes the
    /// volume from it. [`Evidence::Released`]: an orphan; when the publish is refused with
    /// `Conflict` and such a holder refuses it, the holder is cleared by compare-and-clear
    /// (counted as a stale clear, epoch raised, no detach record) and the publish is decided
    /// again, all under one guard; a migration at its limit or past its timeout stays refused.
    /// [`Evidence::Unknown`]: the timers decide, as in [`Engine::publish`]. It is asked only about
    /// holders, only when a handoff or a conflict is being decided, possibly more than once.
    ///
    /// Locking behaviour: as [`Engine::publish`]; `evidence` runs under the volume's entry
    /// guard, so it must not call the engine or block.
    pub fn publish_with(
        &self,
        volume: &str,
        node: &str,
        access: Access,
        migration_timeout: Option<Duration>,
        evidence: &dyn Fn(&str) -> Evidence,
    ) -> EvidencedPublish {
        if let Err(e) = check_volume_id(volume).and_then(|()| check_node_id(node)) {
            return EvidencedPublish { outcome: Err(self.invalid(e)), cleared: Vec::new() };
        }
        let config = self.config.load();
        let timeout = clamp_migration_timeout(migration_timeout.unwrap_or(config.default_migration_timeout));
        let req = PublishRequest {
            node: None, // looked up inside the entry guard (`publish_locked`)
            name: node,
            names: &self.nodes,
            access,
            migration_timeout_s: u16::try_from(timeout.as_secs()).expect("a clamped timeout is at most 3600 s"),
            grace: duration_to_nanos(config.grace_period),
            evidence,
        };
        let mut orphans = Vec::new();
        let mut locked = |rec: &mut VolumeRecord| self.publish_locked(volume, rec, &req, timeout, &mut orphans);
        let outcome = match self.volumes.get_mut(volume) {
            Some(mut rec) => locked(&mut rec),
            None => match self.volumes.entry(volume.into()) {
                Entry::Occupied(mut o) => locked(o.get_mut()),
                Entry::Vacant(v) => {
                    // The floor is written under this shard's lock too (see `forget`).
                    let mut rec = VolumeRecord::new(self.epoch_floor.load(Ordering::Acquire));
                    let out = locked(&mut rec);
                    if out.is_ok() {
                        v.insert(rec);
                    }
                    out
                }
            },
        };
        let cleared = orphans.into_iter().map(|o| ClearedHolder { node: o.node, epoch: o.epoch }).collect();
        EvidencedPublish { outcome, cleared }
    }

    /// The clock and term as read under the caller's entry guard, so a volume's own times and
    /// epochs follow the entry's order.
    fn moment(&self) -> Moment {
        Moment { now: self.clock.now(), term: self.term.load(Ordering::Acquire) }
    }

    /// Settles every part of a publish inside the entry guard: the node's identity (looked up
    /// here, so two first publishes of one new node agree on it), the table, the counts, the
    /// outcome's names (read while the record still holds them), the orphans cleared on the way
    /// (named before they are let go) and the node table's holds.
    fn publish_locked(
        &self,
        volume: &str,
        rec: &mut VolumeRecord,
        req: &PublishRequest<'_>,
        timeout: Duration,
        cleared: &mut Vec<Orphan>,
    ) -> Result<PublishOutcome, CoreError> {
        let before = rec.held();
        let req = PublishRequest { node: self.nodes.lookup(req.name), ..*req };
        let decided = rec.publish(&req, self.moment(), cleared);
        self.count_publish(&decided, cleared);
        let (out, pinned) = match decided {
            Ok(decision) => {
                let fence = self.fence_of(rec);
                let admitted = fence.admission(req.name).expect("a granted publish admits the node");
                let kind = self.published(decision, timeout);
                let pinned = match decision {
                    Decision::AlreadyAttached => None,
                    Decision::MigrationStarted { .. } => Some(rec.nodes()[1]),
                    Decision::Attached | Decision::HandedOff { .. } => Some(rec.primary()),
                };
                (Ok(PublishOutcome { kind, epoch: fence.epoch, admitted, fence }), pinned)
            }
            Err(refusal) => (Err(self.refused(volume, req.name, req.access, refusal)), None),
        };
        self.settle(rec, &before, pinned);
        out
    }

    /// Ends a change of `rec` (under its write guard, after the outcome's names are read):
    /// moves the record's holds in the node table from `before` to what it holds now.
    ///
    /// Locking behaviour: runs under the caller's entry write guard; takes the node table's
    /// locks only for a name's last release (see `NodeTable::release`).
    fn settle(&self, rec: &mut VolumeRecord, before: &[NodeId; 3], pinned: Option<NodeId>) {
        rec.drop_consumed_detach();
        self.nodes.settle(before, &rec.held(), pinned);
    }

    /// Counts a publish's outcome and the orphans it cleared, inside the entry guard so counts
    /// and gauges follow the entry's own order.
    fn count_publish(&self, decided: &Result<Decision, Refusal>, cleared: &[Orphan]) {
        let c = self.counters.local();
        for orphan in cleared {
            self.count_cleared(orphan.migrating);
        }
        match decided {
            Ok(Decision::Attached) => c.attached.incr(),
            Ok(Decision::AlreadyAttached) => c.already_attached.incr(),
            Ok(Decision::HandedOff { .. }) => c.handed_off.incr(),
            Ok(Decision::MigrationStarted { .. }) => {
                c.migrations_started.incr();
                self.counters.active_migrations.incr();
            }
            Err(Refusal::Conflict { .. }) => c.conflicts.incr(),
            Err(Refusal::Incompatible { .. }) => c.incompatible.incr(),
            Err(Refusal::MigrationLimit { .. }) => c.migration_limit.incr(),
            Err(Refusal::MigrationTimedOut { .. }) => c.migration_timed_out.incr(),
            Err(Refusal::EpochExhausted { .. }) => c.epoch_exhausted.incr(),
        }
    }

    fn published(&self, decision: Decision, timeout: Duration) -> Published {
        match decision {
            Decision::Attached => Published::Attached,
            Decision::AlreadyAttached => Published::AlreadyAttached,
            Decision::HandedOff { from } => Published::HandedOff { from: self.nodes.name(from) },
            Decision::MigrationStarted { source } => {
                Published::MigrationStarted { source: self.nodes.name(source), timeout }
            }
        }
    }

    fn refused(&self, volume: &str, node: &str, requested: Access, refusal: Refusal) -> CoreError {
        let (volume, node) = (volume.to_owned(), node.to_owned());
        match refusal {
            Refusal::Conflict { holders } => CoreError::Conflict { volume, node, attached_to: self.names(holders) },
            Refusal::Incompatible { existing } => CoreError::Incompatible { volume, node, existing, requested },
            Refusal::MigrationLimit { holders } => {
                CoreError::MigrationLimit { volume, node, nodes: self.names(holders) }
            }
            Refusal::MigrationTimedOut { holders, elapsed, timeout } => CoreError::MigrationTimedOut {
                volume,
                node,
                nodes: self.names(holders),
                elapsed: nanos_to_duration(elapsed),
                timeout: nanos_to_duration(timeout),
            },
            Refusal::EpochExhausted { epoch } => CoreError::EpochExhausted { volume, epoch },
        }
    }

    /// Counts and returns the refusal of a change whose epoch could not grow.
    fn exhausted(&self, volume: &str, Exhausted(epoch): Exhausted) -> CoreError {
        self.counters.local().epoch_exhausted.incr();
        CoreError::EpochExhausted { volume: volume.to_owned(), epoch }
    }

    /// The names of a non-empty node pair.
    pub(crate) fn names(&self, ids: [NodeId; 2]) -> Nodes {
        Nodes { primary: self.nodes.name(ids[0]), target: (!ids[1].is_none()).then(|| self.nodes.name(ids[1])) }
    }

    /// Counts and returns an invalid-input error.
    pub(crate) fn invalid(&self, e: InvalidInput) -> CoreError {
        self.counters.local().invalid_input.incr();
        CoreError::InvalidInput(e)
    }

    /// Detaches `volume` from `node` (from every node when `None`), following the unpublish
    /// table of DESIGN.md. Idempotent: a volume not attached there gives `NotAttached`.
    ///
    /// Locking behaviour: holds the volume's entry write guard for the node's lookup, the
    /// clock read, the decision and its write; under it, lets go of the names the volume no
    /// longer holds (see `NodeTable::release`).
    pub fn unpublish(&self, volume: &str, node: Option<&str>) -> Result<UnpublishOutcome, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        if let Some(n) = node {
            check_node_id(n).map_err(|e| self.invalid(e))?;
        }
        let Some(mut rec) = self.volumes.get_mut(volume) else { return Ok(self.not_attached()) };
        // The node's id is looked up under the guard: an id this volume holds cannot be
        // released and given to another name meanwhile.
        let node_id = match node.map(|n| self.nodes.lookup(n)) {
            // A name not interned holds nothing.
            Some(None) => return Ok(self.not_attached()),
            Some(Some(id)) => Some(id),
            None => None,
        };
        let before = rec.held();
        let done = rec.unpublish(node_id, self.moment()).map_err(|e| self.exhausted(volume, e))?;
        self.count_unpublish(done);
        let (epoch, fence) = (rec.epoch, self.fence_of(&rec));
        let out = match done {
            Unpublished::NotAttached => UnpublishOutcome::NotAttached,
            Unpublished::Detached { nodes, .. } => {
                UnpublishOutcome::Detached { nodes: self.names(nodes), epoch, fence }
            }
            Unpublished::MigrationCompleted { source, target, duration } => UnpublishOutcome::MigrationCompleted {
                source: self.nodes.name(source),
                target: self.nodes.name(target),
                duration: nanos_to_duration(duration),
                epoch,
                fence,
            },
            Unpublished::MigrationAborted { source, target } => UnpublishOutcome::MigrationAborted {
                source: self.nodes.name(source),
                target: self.nodes.name(target),
                epoch,
                fence,
            },
        };
        self.settle(&mut rec, &before, None);
        Ok(out)
    }

    fn not_attached(&self) -> UnpublishOutcome {
        self.counters.local().not_attached.incr();
        UnpublishOutcome::NotAttached
    }

    /// Counts an unpublish. Every migration ends exactly once: completed, aborted, or ended by
    /// a full detach (here) or a stale clear (`clear_stale_with`).
    fn count_unpublish(&self, done: Unpublished) {
        let c = self.counters.local();
        match done {
            Unpublished::NotAttached => c.not_attached.incr(),
            Unpublished::Detached { migrating, .. } => {
                c.detached.incr();
                if migrating {
                    c.migrations_detached.incr();
                    self.counters.active_migrations.decr();
                }
            }
            Unpublished::MigrationCompleted { .. } => {
                c.migrations_completed.incr();
                self.counters.active_migrations.decr();
            }
            Unpublished::MigrationAborted { .. } => {
                c.migrations_aborted.incr();
                self.counters.active_migrations.decr();
            }
        }
    }

    /// Compare-and-clear: removes `node` from `volume` only if it still holds it, so it can never
    /// undo a newer attachment. Writes no detach record.
    ///
    /// Locking behaviour: holds the volume's entry write guard for the node's lookup, the
    /// decision and its write, and lets go of the cleared node's name under it.
    pub fn clear_stale(&self, volume: &str, node: &str) -> Result<StaleOutcome, CoreError> {
        check_volume_id(volume).and_then(|()| check_node_id(node)).map_err(|e| self.invalid(e))?;
        self.clear_stale_with(volume, &|names| names.lookup(node), None)
    }

    /// [`Engine::clear_stale`] of the node `resolve` names, resolved under the entry guard (or
    /// an id the caller pins); with `seen`, only while the volume's epoch is still the one the
    /// caller's scan saw (reconcile clears by epoch).
    ///
    /// Locking behaviour: holds the volume's entry write guard.
    pub(crate) fn clear_stale_with(
        &self,
        volume: &str,
        resolve: &dyn Fn(&NodeTable) -> Option<NodeId>,
        seen: Option<u64>,
    ) -> Result<StaleOutcome, CoreError> {
        let Some(mut rec) = self.volumes.get_mut(volume) else { return Ok(StaleOutcome::NotAttached) };
        let Some(node) = resolve(&self.nodes) else { return Ok(StaleOutcome::NotAttached) };
        let (was_migrating, before) = (rec.is_migrating(), rec.held());
        if !rec.clear_node(node, seen, self.moment()).map_err(|e| self.exhausted(volume, e))? {
            return Ok(StaleOutcome::NotAttached);
        }
        self.count_cleared(was_migrating);
        let (remaining, epoch, fence) = (rec.primary(), rec.epoch, self.fence_of(&rec));
        let out = StaleOutcome::Cleared {
            node: self.nodes.name(node),
            remaining: (!remaining.is_none()).then(|| self.nodes.name(remaining)),
            epoch,
            fence,
        };
        self.settle(&mut rec, &before, None);
        Ok(out)
    }

    /// Counts a stale clear; one that removed a migration's side ends the migration.
    fn count_cleared(&self, was_migrating: bool) {
        self.counters.local().stale_cleared.incr();
        if was_migrating {
            self.counters.local().migrations_cleared.incr();
            self.counters.active_migrations.decr();
        }
    }

    /// Drops the record of `volume` (epoch, detach record) once it is attached nowhere; the
    /// driver calls it when the volume is deleted. Returns whether there was a record. A
    /// volume of the same name made later starts above the forgotten epoch. Refuses an
    /// attached volume, naming its nodes.
    ///
    /// Locking behaviour: holds the volume's shard write lock; after it, lets go of the name of
    /// the record's detach node in the node table (see `NodeTable::release`).
    pub fn forget(&self, volume: &str) -> Result<bool, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        let mut attached = None;
        let removed = self.volumes.remove_if(volume, |_, rec| {
            if rec.is_attached() {
                // Named under the guard, while the record holds them.
                attached = Some(self.names(rec.nodes()));
                return false;
            }
            // Under the shard lock, as the floor's reader in `publish` is.
            self.epoch_floor.fetch_max(rec.epoch, Ordering::AcqRel);
            true
        });
        if let Some(nodes) = attached {
            return Err(CoreError::StillAttached { volume: volume.to_owned(), nodes });
        }
        if let Some((_, rec)) = &removed {
            // The record is gone: its detach record's node is held by nothing of it any more.
            self.nodes.settle(&rec.held(), &[], None);
            self.counters.local().forgotten.incr();
        }
        Ok(removed.is_some())
    }
}
