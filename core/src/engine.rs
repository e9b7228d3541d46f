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
use crate::fence::Fence;
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
    /// Locking behaviour: holds the volume's entry write guard for the clock read, the
    /// decision and its write; interns a new node name under it (the node table's locks are
    /// never held while waiting for an entry guard).
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
            node: self.nodes.lookup(node),
            name: node,
            names: &self.nodes,
            access,
            migration_timeout_s: u16::try_from(timeout.as_secs()).expect("a clamped timeout is at most 3600 s"),
            grace: duration_to_nanos(config.grace_period),
            evidence,
        };
        let mut orphans = Vec::new();
        let outcome = self.publish_request(volume, &req, timeout, &mut orphans);
        let cleared = orphans.into_iter().map(|o| ClearedHolder { node: o.node, epoch: o.epoch }).collect();
        EvidencedPublish { outcome, cleared }
    }

    /// Decides a checked request in the volume's entry guard (made if the volume is new and the
    /// publish granted) and maps the decision out.
    fn publish_request(
        &self,
        volume: &str,
        req: &PublishRequest<'_>,
        timeout: Duration,
        cleared: &mut Vec<Orphan>,
    ) -> Result<PublishOutcome, CoreError> {
        let decided = match self.volumes.get_mut(volume) {
            Some(mut rec) => self.publish_locked(&mut rec, req, cleared),
            None => match self.volumes.entry(volume.into()) {
                Entry::Occupied(mut o) => self.publish_locked(o.get_mut(), req, cleared),
                Entry::Vacant(v) => {
                    // The floor is written under this shard's lock too (see `forget`).
                    let mut rec = VolumeRecord::new(self.epoch_floor.load(Ordering::Acquire));
                    let out = self.publish_locked(&mut rec, req, cleared);
                    if out.is_ok() {
                        v.insert(rec);
                    }
                    out
                }
            },
        };
        match decided {
            Ok((decision, fence)) => {
                let admitted = fence.admission(req.name).expect("a granted publish admits the node");
                Ok(PublishOutcome { kind: self.published(decision, timeout), epoch: fence.epoch, admitted, fence })
            }
            Err(refusal) => Err(self.refused(volume, req.name, req.access, refusal)),
        }
    }

    /// The clock and term as read under the caller's entry guard, so a volume's own times and
    /// epochs follow the entry's order.
    fn moment(&self) -> Moment {
        Moment { now: self.clock.now(), term: self.term.load(Ordering::Acquire) }
    }

    /// Applies the table and counts the outcome and any orphans cleared on the way, inside the
    /// entry guard so counts and gauges follow the entry's own order.
    fn publish_locked(
        &self,
        rec: &mut VolumeRecord,
        req: &PublishRequest<'_>,
        cleared: &mut Vec<Orphan>,
    ) -> Result<(Decision, Fence), Refusal> {
        let decided = rec.publish(req, self.moment(), cleared);
        let c = self.counters.local();
        for orphan in cleared.iter() {
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
        decided.map(|d| (d, self.fence_of(rec)))
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
    /// Locking behaviour: holds the volume's entry write guard for the clock read, the
    /// decision and its write.
    pub fn unpublish(&self, volume: &str, node: Option<&str>) -> Result<UnpublishOutcome, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        let node_id = match node {
            Some(n) => {
                check_node_id(n).map_err(|e| self.invalid(e))?;
                // A name never interned holds nothing.
                let Some(id) = self.nodes.lookup(n) else { return Ok(self.not_attached()) };
                Some(id)
            }
            None => None,
        };
        let Some(mut rec) = self.volumes.get_mut(volume) else { return Ok(self.not_attached()) };
        let done = rec.unpublish(node_id, self.moment()).map_err(|e| self.exhausted(volume, e))?;
        self.count_unpublish(done);
        let (epoch, fence) = (rec.epoch, self.fence_of(&rec));
        drop(rec);
        Ok(match done {
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
        })
    }

    fn not_attached(&self) -> UnpublishOutcome {
        self.counters.local().not_attached.incr();
        UnpublishOutcome::NotAttached
    }

    /// Counts an unpublish. Every migration ends exactly once: completed, aborted, or ended by
    /// a full detach (here) or a stale clear (`clear_stale_id`).
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
    /// Locking behaviour: holds the volume's entry write guard.
    pub fn clear_stale(&self, volume: &str, node: &str) -> Result<StaleOutcome, CoreError> {
        check_volume_id(volume).and_then(|()| check_node_id(node)).map_err(|e| self.invalid(e))?;
        let Some(id) = self.nodes.lookup(node) else { return Ok(StaleOutcome::NotAttached) };
        self.clear_stale_id(volume, id, None)
    }

    /// [`Engine::clear_stale`] by id; with `seen`, only while the volume's epoch is still the
    /// one the caller's scan saw (reconcile clears by epoch).
    pub(crate) fn clear_stale_id(
        &self,
        volume: &str,
        node: NodeId,
        seen: Option<u64>,
    ) -> Result<StaleOutcome, CoreError> {
        let Some(mut rec) = self.volumes.get_mut(volume) else { return Ok(StaleOutcome::NotAttached) };
        let was_migrating = rec.is_migrating();
        if !rec.clear_node(node, seen, self.moment()).map_err(|e| self.exhausted(volume, e))? {
            return Ok(StaleOutcome::NotAttached);
        }
        self.count_cleared(was_migrating);
        let (remaining, epoch, fence) = (rec.primary(), rec.epoch, self.fence_of(&rec));
        drop(rec);
        Ok(StaleOutcome::Cleared {
            node: self.nodes.name(node),
            remaining: (!remaining.is_none()).then(|| self.nodes.name(remaining)),
            epoch,
            fence,
        })
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
    /// Locking behaviour: holds the volume's shard write lock.
    pub fn forget(&self, volume: &str) -> Result<bool, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        let mut attached = None;
        let removed = self.volumes.remove_if(volume, |_, rec| {
            if rec.is_attached() {
                attached = Some(rec.nodes());
                return false;
            }
            // Under the shard lock, as the floor's reader in `publish` is.
            self.epoch_floor.fetch_max(rec.epoch, Ordering::AcqRel);
            true
        });
        if let Some(nodes) = attached {
            return Err(CoreError::StillAttached { volume: volume.to_owned(), nodes: self.names(nodes) });
        }
        if removed.is_some() {
            self.counters.local().forgotten.incr();
        }
        Ok(removed.is_some())
    }
}
