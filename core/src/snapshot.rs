//! Snapshot and restore: the whole state as a versioned JSON document.
//!
//! Format, version 1 (times are wall-clock nanoseconds since the Unix epoch; an instant is
//! restored as "that long before now", measured against the later of the restoring clock's
//! wall time and `taken_at_unix_nanos`, so a wall-clock step back never shortens an age):
//!
//! ```json
//! { "version": 1,
//!   "taken_at_unix_nanos": 1764151482000000000,
//!   "volumes": [
//!     { "volume": "pvc-1", "epoch": 3,
//!       "attachment": { "mode": "RWX", "readonly": false, "nodes": ["a", "b"],
//!                       "since_unix_nanos": 1764151480000000000,
//!                       "migration_timeout_ms": 300000, "timeout_reported": false },
//!       "last_detach": { "node": "c", "at_unix_nanos": 1764151400000000000 } } ],
//!   "missing_nodes": [ { "node": "d", "since_unix_nanos": 1764151470000000000 } ] }
//! ```
//!
//! `attachment` and `last_detach` may be absent; `migration_timeout_ms` is required when an
//! attachment has two nodes. Unknown fields are refused.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::{duration_to_nanos, Nanos};
use crate::config::{clamp_migration_timeout, MAX_MIGRATION_TIMEOUT, MIN_MIGRATION_TIMEOUT};
use crate::engine::Engine;
use crate::error::{CoreError, Inconsistency, InputField, InvalidInput, Problem, SnapshotError};
use crate::ids::{check_node_id, check_volume_id};
use crate::nodes::NodeId;
use crate::outcome::{Access, AccessMode};
use crate::record::{DetachStamp, VolumeRecord};

/// The snapshot format version this engine writes and reads.
pub const SNAPSHOT_VERSION: u64 = 1;

/// The whole state of an engine, as a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u64,
    pub taken_at_unix_nanos: u64,
    pub volumes: Vec<VolumeEntry>,
    pub missing_nodes: Vec<MissingNodeEntry>,
}

/// One volume ever attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VolumeEntry {
    pub volume: String,
    pub epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_detach: Option<DetachEntry>,
}

/// A volume's current attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttachmentEntry {
    pub mode: AccessMode,
    pub readonly: bool,
    pub nodes: Vec<String>,
    pub since_unix_nanos: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_timeout_ms: Option<u32>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub timeout_reported: bool,
}

/// A volume's last full detach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DetachEntry {
    pub node: String,
    pub at_unix_nanos: u64,
}

/// A node seen missing by reconcile, not yet cleared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MissingNodeEntry {
    pub node: String,
    pub since_unix_nanos: u64,
}

/// Records and missing-node marks built from a document, not yet live.
type Staged = (Vec<(Box<str>, VolumeRecord)>, HashMap<NodeId, Nanos>);

#[derive(Deserialize)]
struct VersionOnly {
    version: u64,
}

/// A wall-clock time as the snapshot format writes it: nanoseconds since the Unix epoch
/// (0 for a time before it).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, duration_to_nanos)
}

/// Turns wall-clock times of a document into instants of this engine's clock.
struct Timeline {
    now: Nanos,
    reference_wall: u64,
}

impl Timeline {
    fn instant(&self, unix: u64) -> Nanos {
        self.now.saturating_sub(self.reference_wall.saturating_sub(unix))
    }
}

impl Engine {
    /// The whole state as a document.
    ///
    /// Locking behaviour: holds the reconcile lock; shared guards on one map shard at a time.
    /// Each volume is read consistently; under concurrent writers the document is not one
    /// point-in-time cut across volumes.
    pub fn snapshot(&self) -> Snapshot {
        let missing = self.missing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let wall = |t: Nanos| unix_nanos(self.clock.wall_time(t));
        let mut volumes: Vec<VolumeEntry> = self.volumes.iter().map(|r| self.entry_of(r.key(), &r, &wall)).collect();
        volumes.sort_unstable_by(|a, b| a.volume.cmp(&b.volume));
        let mut missing_nodes: Vec<MissingNodeEntry> = missing
            .iter()
            .map(|(n, t)| MissingNodeEntry { node: self.nodes.name(*n).to_string(), since_unix_nanos: wall(*t) })
            .collect();
        missing_nodes.sort_unstable_by(|a, b| a.node.cmp(&b.node));
        Snapshot { version: SNAPSHOT_VERSION, taken_at_unix_nanos: wall(self.clock.now()), volumes, missing_nodes }
    }

    /// One volume's entry in the snapshot format (what [`Engine::snapshot`] lists for it), read
    /// under one shared guard; `None` if the volume was never attached. For front ends that
    /// persist volume by volume.
    ///
    /// Locking behaviour: a shared guard on the volume's entry.
    pub fn volume_entry(&self, volume: &str) -> Result<Option<VolumeEntry>, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        let wall = |t: Nanos| unix_nanos(self.clock.wall_time(t));
        Ok(self.volumes.get(volume).map(|r| self.entry_of(volume, &r, &wall)))
    }

    fn entry_of(&self, volume: &str, rec: &VolumeRecord, wall: &impl Fn(Nanos) -> u64) -> VolumeEntry {
        let attachment = rec.is_attached().then(|| AttachmentEntry {
            mode: rec.access().mode,
            readonly: rec.access().readonly,
            nodes: self.names(rec.nodes).iter().map(ToString::to_string).collect(),
            since_unix_nanos: wall(rec.since),
            migration_timeout_ms: rec.is_migrating().then_some(u32::from(rec.migration_timeout_s) * 1000),
            timeout_reported: rec.is_migrating() && rec.timeout_reported(),
        });
        let last_detach = rec
            .detached_at
            .get()
            .map(|t| DetachEntry { node: self.nodes.name(rec.detached_from).to_string(), at_unix_nanos: wall(t) });
        VolumeEntry { volume: volume.to_owned(), epoch: rec.epoch, attachment, last_detach }
    }

    /// [`Engine::snapshot`] as JSON text.
    pub fn snapshot_json(&self) -> String {
        serde_json::to_string(&self.snapshot()).expect("a snapshot always serialises")
    }

    /// Parses JSON text into a snapshot document, checking its version first.
    pub fn parse_snapshot(json: &str) -> Result<Snapshot, SnapshotError> {
        let VersionOnly { version } = serde_json::from_str(json)?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnknownVersion { found: version, supported: SNAPSHOT_VERSION });
        }
        Ok(serde_json::from_str(json)?)
    }

    /// Restores from JSON text; see [`Engine::restore`].
    pub fn restore_json(&self, json: &str) -> Result<(), CoreError> {
        let snapshot = Self::parse_snapshot(json)?;
        self.restore(&snapshot)
    }

    /// Replaces the whole state with `snapshot`'s. The document is checked completely first;
    /// on any error nothing changes. Counters are kept, except the active-migrations gauge,
    /// which is recomputed.
    ///
    /// Locking behaviour: holds the reconcile lock, then each map shard's write lock in turn.
    /// Meant for start-up: a publish running at the same time may land before the swap and be
    /// replaced by it.
    pub fn restore(&self, snapshot: &Snapshot) -> Result<(), CoreError> {
        let (records, marks) = self.stage(snapshot)?;
        let mut missing = self.missing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let migrating = records.iter().filter(|(_, r)| r.is_migrating()).count();
        self.volumes.clear();
        for (volume, rec) in records {
            self.volumes.insert(volume, rec);
        }
        *missing = marks;
        self.counters.active_migrations.set(migrating as u64);
        Ok(())
    }

    /// Checks a document and builds the records it describes, touching no live state.
    fn stage(&self, snapshot: &Snapshot) -> Result<Staged, SnapshotError> {
        if snapshot.version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnknownVersion { found: snapshot.version, supported: SNAPSHOT_VERSION });
        }
        let now = self.clock.now();
        let reference_wall = unix_nanos(self.clock.wall_time(now)).max(snapshot.taken_at_unix_nanos);
        let timeline = Timeline { now, reference_wall };
        let mut seen = HashSet::new();
        let mut records = Vec::with_capacity(snapshot.volumes.len());
        for entry in &snapshot.volumes {
            let bad = |problem| SnapshotError::Inconsistent { subject: entry.volume.clone(), problem };
            check_volume_id(&entry.volume).map_err(|e| bad(e.into()))?;
            if !seen.insert(entry.volume.as_str()) {
                return Err(bad(Inconsistency::DuplicateVolume));
            }
            let rec = self.stage_volume(entry, &timeline).map_err(bad)?;
            records.push((Box::from(entry.volume.as_str()), rec));
        }
        let mut marks = HashMap::with_capacity(snapshot.missing_nodes.len());
        for m in &snapshot.missing_nodes {
            let bad = |problem| SnapshotError::Inconsistent { subject: m.node.clone(), problem };
            check_node_id(&m.node).map_err(|e| bad(e.into()))?;
            if marks.insert(self.nodes.intern(&m.node), timeline.instant(m.since_unix_nanos)).is_some() {
                return Err(bad(Inconsistency::DuplicateMissingNode));
            }
        }
        Ok((records, marks))
    }

    fn stage_volume(&self, entry: &VolumeEntry, timeline: &Timeline) -> Result<VolumeRecord, Inconsistency> {
        let mut rec = VolumeRecord::new();
        rec.epoch = entry.epoch;
        if let Some(d) = &entry.last_detach {
            check_node_id(&d.node)?;
            rec.detached_from = self.nodes.intern(&d.node);
            rec.detached_at = DetachStamp::at(timeline.instant(d.at_unix_nanos));
        }
        let Some(a) = &entry.attachment else { return Ok(rec) };
        if entry.epoch == 0 {
            return Err(Inconsistency::AttachedAtEpochZero);
        }
        match (a.nodes.len(), a.mode) {
            (0, _) => return Err(Inconsistency::NoNodes),
            (2, AccessMode::Rwo) => return Err(Inconsistency::RwoOnTwoNodes),
            (n, _) if n > 2 => return Err(Inconsistency::TooManyNodes(n)),
            _ => {}
        }
        if a.nodes.len() == 2 && a.nodes[0] == a.nodes[1] {
            return Err(Inconsistency::DuplicateNode);
        }
        for n in &a.nodes {
            check_node_id(n)?;
        }
        rec.set_access(Access { mode: a.mode, readonly: a.readonly });
        rec.since = timeline.instant(a.since_unix_nanos);
        rec.nodes = [self.nodes.intern(&a.nodes[0]), a.nodes.get(1).map_or(NodeId::NONE, |n| self.nodes.intern(n))];
        if rec.is_migrating() {
            rec.migration_timeout_s = check_snapshot_timeout(a.migration_timeout_ms)?;
            rec.set_timeout_reported(a.timeout_reported);
        }
        Ok(rec)
    }
}

/// A document's timeout in milliseconds, checked against the bounds, as the record's whole
/// seconds (rounded up, as [`clamp_migration_timeout`] does).
fn check_snapshot_timeout(ms: Option<u32>) -> Result<u16, InvalidInput> {
    let bad = InvalidInput {
        field: InputField::MigrationTimeout,
        problem: Problem::OutOfRange { min: MIN_MIGRATION_TIMEOUT, max: MAX_MIGRATION_TIMEOUT },
    };
    match ms {
        Some(ms) if (MIN_MIGRATION_TIMEOUT..=MAX_MIGRATION_TIMEOUT).contains(&Duration::from_millis(u64::from(ms))) => {
            Ok(u16::try_from(clamp_migration_timeout(Duration::from_millis(u64::from(ms))).as_secs()).expect("<= 3600"))
        }
        _ => Err(bad),
    }
}
