//! Read-side calls: the grace check, detach records, one attachment, the list, epochs.

use std::time::Duration;

use crate::clock::{duration_to_nanos, nanos_to_duration, Nanos};
use crate::engine::Engine;
use crate::error::CoreError;
use crate::ids::check_volume_id;
use crate::outcome::{Attachment, DetachRecord, MigrationStatus};
use crate::record::VolumeRecord;

impl Engine {
    /// True iff `volume` was last fully detached less than `grace` ago. A volume never
    /// detached, or unknown, is not within its grace period. Allocates nothing.
    ///
    /// Locking behaviour: a shared guard on the volume's entry; reads one atomic under it.
    pub fn is_within_grace_period(&self, volume: &str, grace: Duration) -> Result<bool, CoreError> {
        // Look up first: only valid ids are ever keys, so a hit needs no validation; a miss is
        // validated to tell "unknown volume" (false) from "invalid id" (an error).
        match self.volumes.get(volume) {
            Some(rec) => Ok(rec.detached_at.within_now(&*self.clock, duration_to_nanos(grace))),
            None => check_volume_id(volume).map(|()| false).map_err(|e| self.invalid(e)),
        }
    }

    /// The last full detach of `volume`: which node, when, and how long ago.
    ///
    /// Locking behaviour: a shared guard on the volume's entry.
    pub fn detach_timestamp(&self, volume: &str) -> Result<Option<DetachRecord>, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        let Some(rec) = self.volumes.get(volume) else { return Ok(None) };
        let Some(at) = rec.detached_at.get() else { return Ok(None) };
        // Named under the guard, while the record holds the node.
        let node = self.nodes.name(rec.detached_from);
        drop(rec);
        Ok(Some(DetachRecord {
            node,
            at: self.clock.wall_time(at),
            age: nanos_to_duration(self.clock.now().saturating_sub(at)),
        }))
    }

    /// Drops `volume`'s detach record, so no later publish can use it for a handoff.
    /// Returns whether there was one.
    ///
    /// Locking behaviour: a shared guard on the volume's entry; the record is cleared with one
    /// atomic swap under it, so grace checks on the same volume are never blocked. The shared
    /// guard cannot write the record's node, so its name stays interned until the volume's
    /// next change (or `forget`) lets it go.
    pub fn clear_detach_timestamp(&self, volume: &str) -> Result<bool, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        Ok(self.volumes.get(volume).is_some_and(|rec| rec.detached_at.clear()))
    }

    /// `volume`'s epoch: 0 if it was never attached. Survives detach, snapshot and restore.
    ///
    /// Locking behaviour: a shared guard on the volume's entry.
    pub fn epoch(&self, volume: &str) -> Result<u64, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        Ok(self.volumes.get(volume).map_or(0, |rec| rec.epoch))
    }

    /// `volume`'s attachment, if it is attached.
    ///
    /// Locking behaviour: a shared guard on the volume's entry.
    pub fn get(&self, volume: &str) -> Result<Option<Attachment>, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        let now = self.clock.now();
        Ok(self.volumes.get(volume).and_then(|rec| self.attachment(volume, &rec, now)))
    }

    /// Every attachment, sorted by volume. Each is consistent in itself; while other threads
    /// write, the list is not one point-in-time cut across volumes.
    ///
    /// Locking behaviour: shared guards on one map shard at a time.
    pub fn list(&self) -> Vec<Attachment> {
        let now = self.clock.now();
        let mut all: Vec<Attachment> =
            self.volumes.iter().filter_map(|r| self.attachment(r.key(), r.value(), now)).collect();
        all.sort_unstable_by(|a, b| a.volume.cmp(&b.volume));
        all
    }

    /// How many node names the engine holds: a name is interned only while an attachment, a
    /// detach record or a missing mark holds it, so refused and invalid calls never grow it,
    /// and a name nothing holds any more is released.
    ///
    /// Locking behaviour: a read lock on each shard of the node table's name map in turn.
    pub fn interned_nodes(&self) -> usize {
        self.nodes.len()
    }

    /// How many slots the node table's id-to-name array uses: released ids are reused, so this
    /// is bounded by the most names held at once, not by every name ever seen.
    ///
    /// Locking behaviour: none; one atomic read.
    pub fn node_slots(&self) -> usize {
        self.nodes.slots()
    }

    /// How many volumes are attached now.
    ///
    /// Locking behaviour: shared guards on one map shard at a time.
    pub fn attached_count(&self) -> usize {
        self.volumes.iter().filter(|r| r.is_attached()).count()
    }

    pub(crate) fn attachment(&self, volume: &str, rec: &VolumeRecord, now: Nanos) -> Option<Attachment> {
        if !rec.is_attached() {
            return None;
        }
        let migration = rec.is_migrating().then(|| MigrationStatus {
            elapsed: nanos_to_duration(now.saturating_sub(rec.since)),
            timeout: nanos_to_duration(rec.migration_timeout()),
        });
        Some(Attachment {
            volume: volume.to_owned(),
            access: rec.access(),
            nodes: self.names(rec.nodes()),
            epoch: rec.epoch,
            admitted: (rec.admissions()[0], rec.migration().map(|m| m.admitted)),
            since: self.clock.wall_time(rec.since),
            migration,
        })
    }
}
