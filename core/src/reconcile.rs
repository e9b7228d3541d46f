//! Reconcile: mark nodes missing, clear their attachments once missing for the grace period,
//! forget marks of nodes that return, and report migrations past their timeout once each.

use std::collections::{HashMap, HashSet};

use crate::clock::{duration_to_nanos, nanos_to_duration, Nanos};
use crate::engine::Engine;
use crate::error::CoreError;
use crate::ids::check_node_id;
use crate::nodes::NodeId;
use crate::outcome::{ClearedAttachment, PendingNode, ReconcileReport, StaleOutcome, TimedOutMigration};

/// What one scan of the volume map found.
#[derive(Default)]
struct Scan {
    /// Volumes held by each node that is not live, with the epoch the scan saw.
    orphans: HashMap<NodeId, Vec<(Box<str>, u64)>>,
    timed_out: Vec<TimedOutMigration>,
}

impl Engine {
    /// One reconcile pass against the nodes that exist now. Refuses the whole call (changing
    /// nothing) if any name in `live_nodes` is invalid.
    ///
    /// Locking behaviour: holds the engine's reconcile lock throughout (reconciles, snapshots
    /// and restores run one at a time); takes shared guards on one map shard at a time while
    /// scanning, then each cleared volume's entry write guard in turn. Pins the live and the
    /// orphaned node names in the node table for the pass (see `NodeTable::pin`).
    pub fn reconcile<S: AsRef<str>>(&self, live_nodes: &[S]) -> Result<ReconcileReport, CoreError> {
        for n in live_nodes {
            check_node_id(n.as_ref()).map_err(|e| self.invalid(e))?;
        }
        // Pinned, so that no live id is released and given to another name during the pass.
        let pins: Vec<NodeId> = live_nodes.iter().filter_map(|n| self.nodes.pin(n.as_ref())).collect();
        let live: HashSet<NodeId> = pins.iter().copied().collect();
        let mut missing = self.missing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let report = self.reconcile_locked(&live, &mut missing);
        drop(missing);
        self.nodes.release_all(pins);
        Ok(report)
    }

    /// The pass itself, under the reconcile lock (`missing`), with the live ids pinned.
    fn reconcile_locked(&self, live: &HashSet<NodeId>, missing: &mut HashMap<NodeId, Nanos>) -> ReconcileReport {
        self.counters.local().reconciles.incr();
        let now = self.clock.now();
        let grace = duration_to_nanos(self.config().grace_period);
        let scan = self.scan(live, now);

        let mut report = ReconcileReport { timed_out_migrations: scan.timed_out, ..ReconcileReport::default() };
        // Marks of nodes that are live again, or that no longer hold anything, are dropped.
        missing.retain(|node, _| {
            let keep = scan.orphans.contains_key(node);
            if !keep && live.contains(node) {
                report.returned.push(self.nodes.name(*node));
            }
            if !keep {
                self.nodes.release(*node); // the mark's hold
            }
            keep
        });
        // Nodes in name order, so a pass that clears both sides of a migration is deterministic.
        let mut orphans: Vec<_> = scan.orphans.into_iter().map(|(id, vols)| (self.nodes.name(id), id, vols)).collect();
        orphans.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        // Epochs this pass itself issued: clearing both sides of a migration changes the epoch
        // between the two clears, and the second must still match.
        let mut ours = HashMap::new();
        for (_, node, volumes) in &orphans {
            let node = *node;
            let since = *missing.entry(node).or_insert_with(|| {
                self.nodes.hold(node); // the new mark's hold; the scan's pin keeps it valid
                now
            });
            let missing_for = now.saturating_sub(since);
            if missing_for >= grace {
                report.cleared.extend(self.clear_node_everywhere(node, volumes, &mut ours));
                missing.remove(&node);
                self.nodes.release(node);
            } else {
                report.pending.push(PendingNode {
                    node: self.nodes.name(node),
                    missing_since: self.clock.wall_time(since),
                    clears_in: nanos_to_duration(grace - missing_for),
                    volumes: volumes.len(),
                });
            }
        }
        report.cleared.sort_by(|a, b| a.volume.cmp(&b.volume));
        report.timed_out_migrations.sort_unstable_by(|a, b| a.volume.cmp(&b.volume));
        report.pending.sort_unstable_by(|a, b| a.node.cmp(&b.node));
        report.returned.sort_unstable();
        self.nodes.release_all(orphans.into_iter().map(|(_, id, _)| id)); // the scan's pins
        report
    }

    fn scan(&self, live: &HashSet<NodeId>, now: Nanos) -> Scan {
        let mut scan = Scan::default();
        for rec in &self.volumes {
            for node in rec.nodes().into_iter().filter(|n| !n.is_none() && !live.contains(n)) {
                let volumes = scan.orphans.entry(node).or_insert_with(|| {
                    // Pinned under the guard, while this record holds it: the pass names and
                    // marks the node after the guard is gone.
                    self.nodes.hold(node);
                    Vec::new()
                });
                volumes.push((rec.key().clone(), rec.epoch));
            }
            let elapsed = now.saturating_sub(rec.since);
            // The swap under a shared guard makes "reported once" hold even if two passes
            // overlapped; the flag is reset under the write guard when a migration starts.
            if rec.is_migrating() && elapsed > rec.migration_timeout() && rec.mark_timeout_reported() {
                self.counters.local().migrations_timed_out.incr();
                scan.timed_out.push(TimedOutMigration {
                    volume: rec.key().to_string(),
                    source: self.nodes.name(rec.nodes()[0]),
                    target: self.nodes.name(rec.nodes()[1]),
                    elapsed: nanos_to_duration(elapsed),
                    timeout: nanos_to_duration(rec.migration_timeout()),
                });
            }
        }
        scan
    }

    /// Clears `node` from each volume whose epoch is still the one the scan saw: a volume
    /// detached and re-attached to the same node since is left alone. A volume whose epoch can
    /// no longer grow keeps its node (counted in `epoch_exhausted`).
    fn clear_node_everywhere(
        &self,
        node: NodeId,
        volumes: &[(Box<str>, u64)],
        ours: &mut HashMap<Box<str>, u64>,
    ) -> Vec<ClearedAttachment> {
        volumes
            .iter()
            .filter_map(|(v, seen)| {
                let seen = ours.get(v).copied().unwrap_or(*seen);
                match self.clear_stale_with(v, &|_| Some(node), Some(seen)) {
                    Ok(StaleOutcome::Cleared { node, epoch, fence, .. }) => {
                        ours.insert(v.clone(), epoch);
                        Some(ClearedAttachment { volume: v.to_string(), node, epoch, fence })
                    }
                    Ok(StaleOutcome::NotAttached) | Err(_) => None,
                }
            })
            .collect()
    }
}
