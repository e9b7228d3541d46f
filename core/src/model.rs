//! A deliberately simple, single-threaded implementation of the same contract: plain
//! `HashMap`s and `String`s, no atomics, no interning. It is the oracle the property tests
//! compare the engine with and, behind one `Mutex`, the benchmarks' baseline (the design of
//! the Go attachment managers Tether replaces). Enabled by the `model` feature.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{duration_to_nanos, nanos_to_duration, Clock, Nanos};
use crate::config::{clamp_migration_timeout, Config};
use crate::error::{CoreError, Inconsistency, InputField, InvalidInput, Problem, SnapshotError};
use crate::fence::{Admission, Fence, VolumeFence, MAX_TERM};
use crate::ids::{check_node_id, check_volume_id};
use crate::outcome::{
    Access, AccessMode, ClearedAttachment, Nodes, PendingNode, PublishOutcome, Published, ReconcileReport,
    StaleOutcome, TimedOutMigration, UnpublishOutcome,
};
use crate::snapshot::{unix_nanos, Snapshot};

#[derive(Debug, Clone, Default)]
struct Volume {
    /// `(node, admission epoch)`, primary first.
    nodes: Vec<(String, u64)>,
    access: Access,
    epoch: u64,
    changed_at: Nanos,
    timeout: Duration,
    reported: bool,
    last_detach: Option<(Nanos, String)>,
}

impl Volume {
    fn holds(&self, node: &str) -> bool {
        self.nodes.iter().any(|(n, _)| n == node)
    }

    fn names(&self) -> Nodes {
        Nodes { primary: self.nodes[0].0.as_str().into(), target: self.nodes.get(1).map(|n| n.0.as_str().into()) }
    }

    fn fence(&self) -> Fence {
        let nodes = self.nodes.iter().map(|(n, e)| Admission { node: n.as_str().into(), epoch: *e }).collect();
        Fence::new(self.epoch, self.access, nodes).expect("the model keeps fences well formed")
    }
}

/// An attachment as the model lists it: volume, nodes with their admission epochs, access, epoch.
pub type ModelAttachment = (String, Vec<(String, u64)>, Access, u64);

/// The reference model. Every method mirrors the `Engine` method of the same name.
#[derive(Debug)]
pub struct Model {
    clock: Arc<dyn Clock>,
    config: Config,
    volumes: HashMap<String, Volume>,
    missing: HashMap<String, Nanos>,
    term: u64,
    floor: u64,
}

impl Model {
    /// A model with `config` on `clock`.
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self { clock, config, volumes: HashMap::new(), missing: HashMap::new(), term: 0, floor: 0 }
    }

    /// Changes the grace period.
    pub fn set_grace_period(&mut self, grace: Duration) {
        self.config.grace_period = grace;
    }

    /// `max(epoch + 1, term << 32)`, or the refusal of a change that cannot raise it.
    fn next(&self, volume: &str, epoch: u64) -> Result<u64, CoreError> {
        match epoch.checked_add(1).filter(|&e| e < u64::MAX) {
            Some(e) => Ok(e.max(self.term << 32)),
            None => Err(CoreError::EpochExhausted { volume: volume.to_owned(), epoch }),
        }
    }

    /// The publish table, row by row.
    pub fn publish(
        &mut self,
        volume: &str,
        node: &str,
        access: Access,
        timeout: Option<Duration>,
    ) -> Result<PublishOutcome, CoreError> {
        check_volume_id(volume)?;
        check_node_id(node)?;
        let now = self.clock.now();
        let grace = duration_to_nanos(self.config.grace_period);
        let timeout = clamp_migration_timeout(timeout.unwrap_or(self.config.default_migration_timeout));
        let mut v = self.volumes.get(volume).cloned().unwrap_or(Volume { epoch: self.floor, ..Volume::default() });
        let (name, who) = (volume.to_owned(), node.to_owned());
        let kind = if v.nodes.is_empty() {
            Published::Attached
        } else if v.holds(node) {
            if v.access != access {
                return Err(CoreError::Incompatible { volume: name, node: who, existing: v.access, requested: access });
            }
            let admitted = v.nodes.iter().find(|(n, _)| n == node).map(|n| n.1).expect("held");
            return Ok(PublishOutcome { kind: Published::AlreadyAttached, epoch: v.epoch, admitted, fence: v.fence() });
        } else if v.access.mode == AccessMode::Rwo && access.mode == AccessMode::Rwo {
            let late = matches!(&v.last_detach, Some((t, n)) if *n == v.nodes[0].0 && now - t < grace);
            if !late {
                return Err(CoreError::Conflict { volume: name, node: who, attached_to: v.names() });
            }
            Published::HandedOff { from: v.nodes[0].0.as_str().into() }
        } else if v.access.mode == AccessMode::Rwx && access == v.access {
            if v.nodes.len() == 2 {
                let elapsed = nanos_to_duration(now - v.changed_at);
                if elapsed > v.timeout {
                    let (nodes, timeout) = (v.names(), v.timeout);
                    return Err(CoreError::MigrationTimedOut { volume: name, node: who, nodes, elapsed, timeout });
                }
                return Err(CoreError::MigrationLimit { volume: name, node: who, nodes: v.names() });
            }
            Published::MigrationStarted { source: v.nodes[0].0.as_str().into(), timeout }
        } else {
            return Err(CoreError::Conflict { volume: name, node: who, attached_to: v.names() });
        };
        let epoch = self.next(volume, v.epoch)?;
        match kind {
            Published::MigrationStarted { .. } => {
                v.nodes.push((who, epoch));
                v.timeout = timeout;
                v.reported = false;
            }
            Published::HandedOff { .. } => {
                v.last_detach = None;
                v.nodes = vec![(who, epoch)];
                v.access = access;
            }
            _ => {
                v.nodes = vec![(who, epoch)];
                v.access = access;
            }
        }
        v.epoch = epoch;
        v.changed_at = now;
        let fence = v.fence();
        self.volumes.insert(name, v);
        Ok(PublishOutcome { kind, epoch, admitted: epoch, fence })
    }

    /// The unpublish table, row by row.
    pub fn unpublish(&mut self, volume: &str, node: Option<&str>) -> Result<UnpublishOutcome, CoreError> {
        check_volume_id(volume)?;
        if let Some(n) = node {
            check_node_id(n)?;
        }
        let now = self.clock.now();
        let Some(v) = self.volumes.get(volume) else { return Ok(UnpublishOutcome::NotAttached) };
        if v.nodes.is_empty() || node.is_some_and(|n| !v.holds(n)) {
            return Ok(UnpublishOutcome::NotAttached);
        }
        let epoch = self.next(volume, v.epoch)?;
        let v = self.volumes.get_mut(volume).expect("looked up above");
        let before = v.nodes.clone();
        let duration = nanos_to_duration(now - v.changed_at);
        v.epoch = epoch;
        v.changed_at = now;
        match node {
            Some(n) if before.len() == 2 => {
                v.nodes.retain(|m| m.0 != n);
                let (source, target) = (before[0].0.as_str().into(), before[1].0.as_str().into());
                let fence = v.fence();
                Ok(if before[0].0 == n {
                    UnpublishOutcome::MigrationCompleted { source, target, duration, epoch, fence }
                } else {
                    UnpublishOutcome::MigrationAborted { source, target, epoch, fence }
                })
            }
            _ => {
                let nodes = v.names();
                v.nodes.clear();
                v.access = Access::default();
                v.last_detach = Some((now, before[0].0.clone()));
                Ok(UnpublishOutcome::Detached { nodes, epoch, fence: v.fence() })
            }
        }
    }

    /// Whether the last full detach is less than `grace` old.
    pub fn is_within_grace_period(&self, volume: &str, grace: Duration) -> Result<bool, CoreError> {
        check_volume_id(volume)?;
        let now = self.clock.now();
        Ok(self
            .volumes
            .get(volume)
            .and_then(|v| v.last_detach.as_ref())
            .is_some_and(|(t, _)| now - t < duration_to_nanos(grace)))
    }

    /// Compare-and-clear.
    pub fn clear_stale(&mut self, volume: &str, node: &str) -> Result<StaleOutcome, CoreError> {
        let now = self.clock.now();
        let Some(v) = self.volumes.get(volume) else { return Ok(StaleOutcome::NotAttached) };
        if !v.holds(node) {
            return Ok(StaleOutcome::NotAttached);
        }
        let epoch = self.next(volume, v.epoch)?;
        let v = self.volumes.get_mut(volume).expect("looked up above");
        v.nodes.retain(|m| m.0 != node);
        if v.nodes.is_empty() {
            v.access = Access::default();
        }
        v.epoch = epoch;
        v.changed_at = now;
        let remaining = v.nodes.first().map(|n| n.0.as_str().into());
        Ok(StaleOutcome::Cleared { node: node.into(), remaining, epoch, fence: v.fence() })
    }

    /// One reconcile pass.
    pub fn reconcile(&mut self, live: &[&str]) -> ReconcileReport {
        let now = self.clock.now();
        let grace = duration_to_nanos(self.config.grace_period);
        let mut report = ReconcileReport::default();
        let mut orphans: HashMap<String, Vec<String>> = HashMap::new();
        for (name, v) in &mut self.volumes {
            for (n, _) in v.nodes.iter().filter(|n| !live.contains(&n.0.as_str())) {
                orphans.entry(n.clone()).or_default().push(name.clone());
            }
            let elapsed = nanos_to_duration(now - v.changed_at);
            if v.nodes.len() == 2 && elapsed > v.timeout && !v.reported {
                v.reported = true;
                report.timed_out_migrations.push(TimedOutMigration {
                    volume: name.clone(),
                    source: v.nodes[0].0.as_str().into(),
                    target: v.nodes[1].0.as_str().into(),
                    elapsed,
                    timeout: v.timeout,
                });
            }
        }
        let marks: Vec<String> = self.missing.keys().cloned().collect();
        for n in marks.into_iter().filter(|n| !orphans.contains_key(n)) {
            self.missing.remove(&n);
            if live.contains(&n.as_str()) {
                report.returned.push(n.as_str().into());
            }
        }
        let mut orphans: Vec<(String, Vec<String>)> = orphans.into_iter().collect();
        orphans.sort();
        for (node, vols) in orphans {
            let since = *self.missing.entry(node.clone()).or_insert(now);
            if now - since >= grace {
                self.missing.remove(&node);
                for vol in vols {
                    if let Ok(StaleOutcome::Cleared { epoch, fence, .. }) = self.clear_stale(&vol, &node) {
                        report.cleared.push(ClearedAttachment {
                            volume: vol,
                            node: node.as_str().into(),
                            epoch,
                            fence,
                        });
                    }
                }
            } else {
                report.pending.push(PendingNode {
                    node: node.as_str().into(),
                    missing_since: self.clock.wall_time(since),
                    clears_in: nanos_to_duration(grace - (now - since)),
                    volumes: vols.len(),
                });
            }
        }
        report.cleared.sort_by(|a, b| a.volume.cmp(&b.volume));
        report.pending.sort_by(|a, b| a.node.cmp(&b.node));
        report.returned.sort();
        report.timed_out_migrations.sort_by(|a, b| a.volume.cmp(&b.volume));
        report
    }

    /// A volume's fence, if the model tracks it.
    pub fn fence(&self, volume: &str) -> Option<Fence> {
        self.volumes.get(volume).map(Volume::fence)
    }

    /// Raises the term; refuses one above [`MAX_TERM`].
    pub fn set_term(&mut self, term: u64) -> Result<u64, CoreError> {
        if term > MAX_TERM {
            let problem = Problem::TooLarge { value: term, max: MAX_TERM };
            return Err(CoreError::InvalidInput(InvalidInput { field: InputField::Term, problem }));
        }
        self.term = self.term.max(term);
        Ok(self.term)
    }

    /// The term in force.
    pub fn term(&self) -> u64 {
        self.term
    }

    /// Raises every volume's epoch to the term, keeping nodes and admissions.
    pub fn refence(&mut self) -> Vec<VolumeFence> {
        let mut names: Vec<String> = self.volumes.keys().cloned().collect();
        names.sort();
        let mut out = Vec::new();
        for name in names {
            if let Ok(epoch) = self.next(&name, self.volumes[&name].epoch) {
                let v = self.volumes.get_mut(&name).expect("listed");
                v.epoch = epoch;
                out.push(VolumeFence { volume: name, fence: v.fence() });
            }
        }
        out
    }

    /// Drops a volume's record unless it is attached.
    pub fn forget(&mut self, volume: &str) -> Result<bool, CoreError> {
        check_volume_id(volume)?;
        match self.volumes.get(volume) {
            Some(v) if !v.nodes.is_empty() => {
                Err(CoreError::StillAttached { volume: volume.to_owned(), nodes: v.names() })
            }
            Some(v) => {
                self.floor = self.floor.max(v.epoch);
                self.volumes.remove(volume);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// [`Model::next`] under the term in force after a restore bringing `doc_term`.
    fn next_under(&self, volume: &str, epoch: u64, doc_term: u64) -> Result<u64, CoreError> {
        let term = self.term.max(doc_term);
        self.next(volume, epoch).map(|e| e.max(term << 32))
    }

    /// Replaces the state with a (well-formed) document's, never lowering an epoch: a volume
    /// not above its live epoch with another state goes one above it; one not live, above
    /// the floor; a volume dropped while attached stays, detached, one change above; other
    /// dropped volumes raise the floor. Every raised epoch is of the term in force after it.
    pub fn restore(&mut self, doc: &Snapshot) -> Result<(), CoreError> {
        // An epoch or floor the next change could not raise is refused (epochs never wrap).
        let cannot_grow = |subject: &str, epoch: u64| {
            let problem = Inconsistency::EpochCannotGrow(epoch);
            CoreError::BadSnapshot(SnapshotError::Inconsistent { subject: subject.into(), problem })
        };
        if self.next_under("", doc.epoch_floor, doc.term).is_err() {
            return Err(cannot_grow("epoch_floor", doc.epoch_floor));
        }
        if let Some(e) = doc.volumes.iter().find(|e| self.next_under(&e.volume, e.epoch, doc.term).is_err()) {
            return Err(cannot_grow(&e.volume, e.epoch));
        }
        let now = self.clock.now();
        let wall = unix_nanos(self.clock.wall_time(now));
        let reference = wall.max(doc.taken_at_unix_nanos);
        let instant = |unix: u64| now.saturating_sub(reference.saturating_sub(unix));
        let mut next = HashMap::new();
        for e in &doc.volumes {
            let mut v = Volume { epoch: e.epoch, ..Volume::default() };
            v.last_detach = e.last_detach.as_ref().map(|d| (instant(d.at_unix_nanos), d.node.clone()));
            if let Some(a) = &e.attachment {
                let admitted = if a.admitted.is_empty() { vec![e.epoch; a.nodes.len()] } else { a.admitted.clone() };
                v.nodes = a.nodes.iter().cloned().zip(admitted).collect();
                v.access = Access { mode: a.mode, readonly: a.readonly };
                v.changed_at = instant(a.since_unix_nanos);
                v.timeout = a
                    .migration_timeout_ms
                    .map_or(Duration::ZERO, |ms| clamp_migration_timeout(Duration::from_millis(u64::from(ms))));
                v.reported = a.timeout_reported && a.nodes.len() == 2;
            }
            let (base, same) = match self.volumes.get(&e.volume) {
                Some(l) => (l.epoch, l.nodes == v.nodes && (l.nodes.is_empty() || l.access == v.access)),
                None => (self.floor, false),
            };
            if v.epoch < base || (v.epoch == base && !same && base > 0) {
                v.epoch = self.next_under(&e.volume, base, doc.term)?;
            }
            next.insert(e.volume.clone(), v);
        }
        // A volume dropped while attached stays, detached, one change above its epoch.
        let kept: Vec<(String, u64)> = self
            .volumes
            .iter()
            .filter(|(k, l)| !l.nodes.is_empty() && !next.contains_key(*k))
            .map(|(k, l)| Ok((k.clone(), self.next_under(k, l.epoch, doc.term)?)))
            .collect::<Result<_, CoreError>>()?;
        for (k, epoch) in kept {
            next.insert(k, Volume { epoch, ..Volume::default() });
        }
        let dropped = self.volumes.iter().filter(|(k, _)| !next.contains_key(*k)).map(|(_, v)| v.epoch).max();
        self.floor = self.floor.max(dropped.unwrap_or(0)).max(doc.epoch_floor);
        self.term = self.term.max(doc.term);
        self.volumes = next;
        self.missing = doc.missing_nodes.iter().map(|m| (m.node.clone(), instant(m.since_unix_nanos))).collect();
        Ok(())
    }

    /// Every attachment as (volume, nodes with admissions, access, epoch), sorted by volume.
    pub fn attachments(&self) -> Vec<ModelAttachment> {
        let mut all: Vec<_> = self
            .volumes
            .iter()
            .filter(|(_, v)| !v.nodes.is_empty())
            .map(|(k, v)| (k.clone(), v.nodes.clone(), v.access, v.epoch))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// A volume's epoch (0 if never attached, or the floor if not tracked).
    pub fn epoch(&self, volume: &str) -> u64 {
        self.volumes.get(volume).map_or(0, |v| v.epoch)
    }
}
