//! A deliberately simple, single-threaded implementation of the same contract: plain
//! `HashMap`s and `String`s, no atomics, no interning. It is the oracle the property tests
//! compare the engine with and, behind one `Mutex`, the benchmarks' baseline (the design of
//! the Go attachment managers Tether replaces). Enabled by the `model` feature.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::clock::{duration_to_nanos, nanos_to_duration, Clock, Nanos};
use crate::config::{clamp_migration_timeout, Config};
use crate::error::CoreError;
use crate::ids::{check_node_id, check_volume_id};
use crate::outcome::{
    Access, AccessMode, ClearedAttachment, Nodes, PendingNode, PublishOutcome, Published, ReconcileReport,
    TimedOutMigration, UnpublishOutcome,
};

#[derive(Debug, Clone, Default)]
struct Volume {
    nodes: Vec<String>,
    access: Access,
    epoch: u64,
    changed_at: Nanos,
    timeout: Duration,
    reported: bool,
    last_detach: Option<(Nanos, String)>,
}

/// The reference model. Every method mirrors the `Engine` method of the same name.
#[derive(Debug)]
pub struct Model {
    clock: Arc<dyn Clock>,
    config: Config,
    volumes: HashMap<String, Volume>,
    missing: HashMap<String, Nanos>,
}

fn nodes(list: &[String]) -> Nodes {
    Nodes { primary: list[0].as_str().into(), target: list.get(1).map(|n| n.as_str().into()) }
}

impl Model {
    /// A model with `config` on `clock`.
    pub fn new(config: Config, clock: Arc<dyn Clock>) -> Self {
        Self { clock, config, volumes: HashMap::new(), missing: HashMap::new() }
    }

    /// Changes the grace period.
    pub fn set_grace_period(&mut self, grace: Duration) {
        self.config.grace_period = grace;
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
        let v = self.volumes.entry(volume.to_owned()).or_default();
        let (volume, node) = (volume.to_owned(), node.to_owned());
        let kind = if v.nodes.is_empty() {
            Published::Attached
        } else if v.nodes.contains(&node) {
            if v.access != access {
                return Err(CoreError::Incompatible { volume, node, existing: v.access, requested: access });
            }
            return Ok(PublishOutcome { kind: Published::AlreadyAttached, epoch: v.epoch });
        } else if v.access.mode == AccessMode::Rwo && access.mode == AccessMode::Rwo {
            let late = matches!(&v.last_detach, Some((t, n)) if *n == v.nodes[0] && now - t < grace);
            if !late {
                return Err(CoreError::Conflict { volume, node, attached_to: nodes(&v.nodes) });
            }
            v.last_detach = None;
            Published::HandedOff { from: v.nodes[0].as_str().into() }
        } else if v.access.mode == AccessMode::Rwx && access.mode == AccessMode::Rwx {
            if v.nodes.len() == 2 {
                let elapsed = nanos_to_duration(now - v.changed_at);
                if elapsed > v.timeout {
                    let timeout = v.timeout;
                    return Err(CoreError::MigrationTimedOut {
                        volume,
                        node,
                        nodes: nodes(&v.nodes),
                        elapsed,
                        timeout,
                    });
                }
                return Err(CoreError::MigrationLimit { volume, node, nodes: nodes(&v.nodes) });
            }
            Published::MigrationStarted { source: v.nodes[0].as_str().into(), timeout }
        } else {
            return Err(CoreError::Conflict { volume, node, attached_to: nodes(&v.nodes) });
        };
        if let Published::MigrationStarted { .. } = kind {
            v.nodes.push(node);
            v.timeout = timeout;
            v.reported = false;
        } else {
            v.nodes = vec![node];
            v.access = access;
        }
        v.epoch += 1;
        v.changed_at = now;
        Ok(PublishOutcome { kind, epoch: v.epoch })
    }

    /// The unpublish table, row by row.
    pub fn unpublish(&mut self, volume: &str, node: Option<&str>) -> Result<UnpublishOutcome, CoreError> {
        check_volume_id(volume)?;
        if let Some(n) = node {
            check_node_id(n)?;
        }
        let now = self.clock.now();
        let Some(v) = self.volumes.get_mut(volume) else { return Ok(UnpublishOutcome::NotAttached) };
        if v.nodes.is_empty() || node.is_some_and(|n| !v.nodes.iter().any(|m| m == n)) {
            return Ok(UnpublishOutcome::NotAttached);
        }
        let before = v.nodes.clone();
        v.epoch += 1;
        let duration = nanos_to_duration(now - v.changed_at);
        v.changed_at = now;
        let epoch = v.epoch;
        match node {
            Some(n) if before.len() == 2 => {
                v.nodes.retain(|m| m != n);
                let (source, target) = (before[0].as_str().into(), before[1].as_str().into());
                Ok(if before[0] == n {
                    UnpublishOutcome::MigrationCompleted { source, target, duration, epoch }
                } else {
                    UnpublishOutcome::MigrationAborted { source, target, epoch }
                })
            }
            _ => {
                v.nodes.clear();
                v.last_detach = Some((now, before[0].clone()));
                Ok(UnpublishOutcome::Detached { nodes: nodes(&before), epoch })
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

    /// Compare-and-clear; true when `node` was removed.
    pub fn clear_stale(&mut self, volume: &str, node: &str) -> bool {
        let now = self.clock.now();
        let Some(v) = self.volumes.get_mut(volume) else { return false };
        if !v.nodes.iter().any(|m| m == node) {
            return false;
        }
        v.nodes.retain(|m| m != node);
        v.epoch += 1;
        v.changed_at = now;
        true
    }

    /// One reconcile pass.
    pub fn reconcile(&mut self, live: &[&str]) -> ReconcileReport {
        let now = self.clock.now();
        let grace = duration_to_nanos(self.config.grace_period);
        let mut report = ReconcileReport::default();
        let mut orphans: HashMap<String, Vec<String>> = HashMap::new();
        for (name, v) in &mut self.volumes {
            for n in v.nodes.iter().filter(|n| !live.contains(&n.as_str())) {
                orphans.entry(n.clone()).or_default().push(name.clone());
            }
            let elapsed = nanos_to_duration(now - v.changed_at);
            if v.nodes.len() == 2 && elapsed > v.timeout && !v.reported {
                v.reported = true;
                report.timed_out_migrations.push(TimedOutMigration {
                    volume: name.clone(),
                    source: v.nodes[0].as_str().into(),
                    target: v.nodes[1].as_str().into(),
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
                    if self.clear_stale(&vol, &node) {
                        let epoch = self.volumes[&vol].epoch;
                        report.cleared.push(ClearedAttachment { volume: vol, node: node.as_str().into(), epoch });
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

    /// Every attachment as (volume, nodes, access, epoch), sorted by volume.
    pub fn attachments(&self) -> Vec<(String, Vec<String>, Access, u64)> {
        let mut all: Vec<_> = self
            .volumes
            .iter()
            .filter(|(_, v)| !v.nodes.is_empty())
            .map(|(k, v)| (k.clone(), v.nodes.clone(), v.access, v.epoch))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// A volume's epoch (0 if never attached).
    pub fn epoch(&self, volume: &str) -> u64 {
        self.volumes.get(volume).map_or(0, |v| v.epoch)
    }
}
