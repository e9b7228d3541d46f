//! Snapshot and restore: the whole state as a versioned JSON document.
//!
//! Format, version 2 (times are wall-clock nanoseconds since the Unix epoch; an instant is
//! restored as "that long before now", measured against the later of the restoring clock's
//! wall time and `taken_at_unix_nanos`, so a wall-clock step back never shortens an age):
//!
//! ```json
//! { "version": 2,
//!   "taken_at_unix_nanos": 1764151482000000000,
//!   "term": 1, "epoch_floor": 0,
//!   "volumes": [
//!     { "volume": "pvc-1", "epoch": 4294967299,
//!       "attachment": { "mode": "RWX", "readonly": false, "nodes": ["a", "b"],
//!                       "admitted": [4294967297, 4294967299],
//!                       "since_unix_nanos": 1764151480000000000,
//!                       "migration_timeout_ms": 300000, "timeout_reported": false },
//!       "last_detach": { "node": "c", "at_unix_nanos": 1764151400000000000 } } ],
//!   "missing_nodes": [ { "node": "d", "since_unix_nanos": 1764151470000000000 } ] }
//! ```
//!
//! `attachment` and `last_detach` may be absent; `migration_timeout_ms` is required when an
//! attachment has two nodes; `admitted` holds each node's admission epoch (from 1 up to the
//! volume's epoch). `term` and `epoch_floor` (the highest epoch of any record dropped) default
//! to 0. Version 1 is version 2 without `term`, `epoch_floor` and `admitted`: each node is
//! taken as admitted at the volume's epoch. Unknown fields are refused; times more than
//! [`FUTURE_LIMIT`] after the restoring clock's wall time are refused.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock::{duration_to_nanos, Nanos};
use crate::config::{clamp_migration_timeout, MAX_MIGRATION_TIMEOUT, MIN_MIGRATION_TIMEOUT};
use crate::engine::Engine;
use crate::error::{CoreError, Inconsistency, InputField, InvalidInput, Problem, SnapshotError};
use crate::fence::MAX_TERM;
use crate::ids::{check_node_id, check_volume_id};
use crate::nodes::NodeId;
use crate::outcome::{Access, AccessMode};
use crate::record::{next_epoch, DetachStamp, Exhausted, VolumeRecord};
use crate::sync::Ordering;

/// The snapshot format version this engine writes; it also reads every version from 1.
pub const SNAPSHOT_VERSION: u64 = 2;

/// How far after the restoring clock's wall time a document's times may lie (clock skew
/// between the machine that wrote it and this one); anything later is refused.
pub const FUTURE_LIMIT: Duration = Duration::from_secs(3600);

/// The whole state of an engine, as a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    pub version: u64,
    pub taken_at_unix_nanos: u64,
    #[serde(default)]
    pub term: u64,
    #[serde(default)]
    pub epoch_floor: u64,
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
    /// Each node's admission epoch, slot for slot (absent in version 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admitted: Vec<u64>,
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

/// One shard of the volume map, as dashmap's raw API hands it out (hashbrown's raw table,
/// the same crate version dashmap builds on).
type Shard = hashbrown::raw::RawTable<(Box<str>, dashmap::SharedValue<VolumeRecord>)>;

// The restore inserts with dashmap's `hash_usize`, which is its full 64-bit hash only where
// a usize is 64 bits wide.
const _: () = assert!(usize::BITS == 64, "the atomic restore needs 64-bit hashes");

/// Volume records by key, not yet in the map.
type Records = Vec<(Box<str>, VolumeRecord)>;

/// One volume of a checked document, names not yet interned (a refused restore interns
/// nothing).
struct StagedVolume<'a> {
    volume: &'a str,
    epoch: u64,
    access: Access,
    /// `(node, admission epoch)`, primary first; empty when not attached.
    nodes: Vec<(&'a str, u64)>,
    since: Nanos,
    timeout_s: u16,
    reported: bool,
    detach: Option<(&'a str, Nanos)>,
}

/// A checked document.
struct Staged<'a> {
    volumes: Vec<StagedVolume<'a>>,
    marks: Vec<(&'a str, Nanos)>,
    term: u64,
    floor: u64,
}

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
    wall: u64,
    reference_wall: u64,
}

impl Timeline {
    /// The instant of `unix`, refused if it lies more than [`FUTURE_LIMIT`] after this
    /// clock's wall time.
    fn instant(&self, what: &'static str, unix: u64) -> Result<Nanos, Inconsistency> {
        let ahead = unix.saturating_sub(self.wall);
        if ahead > duration_to_nanos(FUTURE_LIMIT) {
            return Err(Inconsistency::FutureTime { what, ahead: Duration::from_nanos(ahead), limit: FUTURE_LIMIT });
        }
        Ok(self.now.saturating_sub(self.reference_wall.saturating_sub(unix)))
    }
}

fn version_supported(version: u64) -> Result<(), SnapshotError> {
    if (1..=SNAPSHOT_VERSION).contains(&version) {
        Ok(())
    } else {
        Err(SnapshotError::UnknownVersion { found: version, supported: SNAPSHOT_VERSION })
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
        Snapshot {
            version: SNAPSHOT_VERSION,
            taken_at_unix_nanos: wall(self.clock.now()),
            term: self.term(),
            epoch_floor: self.epoch_floor.load(Ordering::Acquire),
            volumes,
            missing_nodes,
        }
    }

    /// One volume's entry in the snapshot format (what [`Engine::snapshot`] lists for it), read
    /// under one shared guard; `None` if the engine does not track the volume. For front ends
    /// that persist volume by volume.
    ///
    /// Locking behaviour: a shared guard on the volume's entry.
    pub fn volume_entry(&self, volume: &str) -> Result<Option<VolumeEntry>, CoreError> {
        check_volume_id(volume).map_err(|e| self.invalid(e))?;
        let wall = |t: Nanos| unix_nanos(self.clock.wall_time(t));
        Ok(self.volumes.get(volume).map(|r| self.entry_of(volume, &r, &wall)))
    }

    fn entry_of(&self, volume: &str, rec: &VolumeRecord, wall: &impl Fn(Nanos) -> u64) -> VolumeEntry {
        let attachment = rec.is_attached().then(|| {
            let admissions = rec.admissions();
            AttachmentEntry {
                mode: rec.access().mode,
                readonly: rec.access().readonly,
                nodes: self.names(rec.nodes()).iter().map(ToString::to_string).collect(),
                admitted: admissions[..=usize::from(rec.is_migrating())].to_vec(),
                since_unix_nanos: wall(rec.since),
                migration_timeout_ms: rec.migration().map(|m| u32::from(m.timeout_s) * 1000),
                timeout_reported: rec.timeout_reported(),
            }
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
        version_supported(version)?;
        Ok(serde_json::from_str(json)?)
    }

    /// Restores from JSON text; see [`Engine::restore`].
    pub fn restore_json(&self, json: &str) -> Result<(), CoreError> {
        let snapshot = Self::parse_snapshot(json)?;
        self.restore(&snapshot)
    }

    /// Replaces the whole state with `snapshot`'s, atomically: every concurrent call is
    /// ordered wholly before or wholly after it, and none sees a partial or empty state. The
    /// document is checked completely first; on any error nothing changes. Epochs never go
    /// down: a volume whose document epoch is not above the live one (with another state) is
    /// raised above it, a volume the document drops raises the floor, and the term is the
    /// higher of the two. Counters are kept, except the active-migrations gauge, recomputed.
    ///
    /// A live volume the document drops while it is attached keeps its record, detached, at a
    /// raised epoch: its fence is empty, so a storage target can still revoke the old holders.
    /// Every epoch the restore raises is at least `term << 32` for the term in force after it.
    ///
    /// Locking behaviour: holds the reconcile lock, then every map shard's write lock at
    /// once (taken in shard order; no other call holds two shard locks) while the contents
    /// are swapped; after both are let go, the replaced records and marks let go of their
    /// node names (see `NodeTable::release`).
    pub fn restore(&self, snapshot: &Snapshot) -> Result<(), CoreError> {
        let staged = self.stage(snapshot)?;
        // Each record and mark takes its holds in the node table here; the replaced ones
        // let theirs go once the swap is done (or these go, if the restore is refused).
        let marks: HashMap<NodeId, Nanos> = staged.marks.iter().map(|(n, t)| (self.nodes.intern(n), *t)).collect();
        let records: Records = staged.volumes.iter().map(|v| (Box::from(v.volume), self.record_of(v))).collect();
        let mut missing = self.missing.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut shards: Vec<_> = self.volumes.shards().iter().map(|s| s.write()).collect();
        let mut live: HashMap<Box<str>, VolumeRecord> = HashMap::new();
        for shard in &mut shards {
            live.extend(shard.drain().map(|(k, v)| (k, v.into_inner())));
        }
        // Inserts records into the write-locked shards, each into the shard its key hashes to.
        // dashmap hashes a key to a usize and hands hashbrown the same value as a u64.
        let hash = |k: &str| self.volumes.hash_usize(&k);
        let put_back = |shards: &mut [dashmap::RwLockWriteGuard<'_, Shard>], records: Records| {
            for (key, rec) in records {
                let h = hash(&key);
                let shard = &mut shards[self.volumes.determine_shard(h)];
                shard.insert(h as u64, (key, dashmap::SharedValue::new(rec)), |(k, _)| hash(k) as u64);
            }
        };
        // Every epoch the restore issues is of the term in force after it.
        let term = self.term().max(staged.term);
        let records = match raise_epochs(records, &live, self.epoch_floor.load(Ordering::Acquire), term) {
            Ok(records) => records,
            Err((volume, e, records)) => {
                // Put the live state back as it was; no caller could see it gone.
                put_back(&mut shards, live.into_iter().collect());
                drop((shards, missing));
                self.nodes.release_all(records.iter().flat_map(|(_, r)| r.held()).filter(|n| !n.is_none()));
                self.nodes.release_all(marks.into_keys());
                return Err(CoreError::EpochExhausted { volume, epoch: e.0 });
            }
        };
        let in_doc: HashSet<&str> = records.iter().map(|(k, _)| &**k).collect();
        let dropped = live.iter().filter(|(k, _)| !in_doc.contains(&***k)).map(|(_, r)| r.epoch).max().unwrap_or(0);
        let migrating = records.iter().filter(|(_, r)| r.is_migrating()).count();
        self.epoch_floor.fetch_max(dropped.max(staged.floor), Ordering::AcqRel);
        self.term.fetch_max(staged.term, Ordering::AcqRel);
        put_back(&mut shards, records);
        let old_marks = std::mem::replace(&mut *missing, marks);
        self.counters.active_migrations.set(migrating as u64);
        drop((shards, missing));
        self.nodes.release_all(live.values().flat_map(VolumeRecord::held).filter(|n| !n.is_none()));
        self.nodes.release_all(old_marks.into_keys());
        Ok(())
    }

    /// Checks a document completely, touching no live state and interning no name.
    fn stage<'a>(&self, snapshot: &'a Snapshot) -> Result<Staged<'a>, SnapshotError> {
        version_supported(snapshot.version)?;
        let bad_term =
            |t| SnapshotError::Inconsistent { subject: "term".into(), problem: Inconsistency::TermTooLarge(t) };
        if snapshot.term > MAX_TERM {
            return Err(bad_term(snapshot.term));
        }
        // Every epoch, and the floor, must leave room for the next change, as the term in force
        // after the restore issues it: a value that cannot grow would refuse every later change
        // of its volume (or, for the floor, of every new volume) for good.
        let term = self.term().max(snapshot.term);
        if next_epoch(snapshot.epoch_floor, term).is_err() {
            let problem = Inconsistency::EpochCannotGrow(snapshot.epoch_floor);
            return Err(SnapshotError::Inconsistent { subject: "epoch_floor".into(), problem });
        }
        let now = self.clock.now();
        let wall = unix_nanos(self.clock.wall_time(now));
        let timeline = Timeline { now, wall, reference_wall: wall.max(snapshot.taken_at_unix_nanos) };
        let bad_doc = |problem| SnapshotError::Inconsistent { subject: "taken_at_unix_nanos".into(), problem };
        timeline.instant("taken_at_unix_nanos", snapshot.taken_at_unix_nanos).map_err(bad_doc)?;
        let mut seen = HashSet::new();
        let mut volumes = Vec::with_capacity(snapshot.volumes.len());
        for entry in &snapshot.volumes {
            let bad = |problem| SnapshotError::Inconsistent { subject: entry.volume.clone(), problem };
            check_volume_id(&entry.volume).map_err(|e| bad(e.into()))?;
            if !seen.insert(entry.volume.as_str()) {
                return Err(bad(Inconsistency::DuplicateVolume));
            }
            volumes.push(stage_volume(entry, &timeline, term).map_err(bad)?);
        }
        let mut marks = Vec::with_capacity(snapshot.missing_nodes.len());
        let mut seen_marks = HashSet::new();
        for m in &snapshot.missing_nodes {
            let bad = |problem| SnapshotError::Inconsistent { subject: m.node.clone(), problem };
            check_node_id(&m.node).map_err(|e| bad(e.into()))?;
            if !seen_marks.insert(m.node.as_str()) {
                return Err(bad(Inconsistency::DuplicateMissingNode));
            }
            marks.push((m.node.as_str(), timeline.instant("since_unix_nanos", m.since_unix_nanos).map_err(bad)?));
        }
        Ok(Staged { volumes, marks, term: snapshot.term, floor: snapshot.epoch_floor })
    }

    /// The record a checked volume describes, its names interned.
    fn record_of(&self, v: &StagedVolume<'_>) -> VolumeRecord {
        let mut rec = VolumeRecord::new(v.epoch);
        if let Some((node, at)) = v.detach {
            rec.detached_from = self.nodes.intern(node);
            rec.detached_at = DetachStamp::at(at);
        }
        rec.set_access(v.access);
        rec.since = v.since;
        if let Some(&(primary, admitted)) = v.nodes.first() {
            rec.set_restored_primary(self.nodes.intern(primary), admitted);
        }
        if let Some(&(target, admitted)) = v.nodes.get(1) {
            rec.set_migration(self.nodes.intern(target), admitted, v.timeout_s, v.reported);
        }
        rec
    }
}

/// Raises each document record's epoch so that no epoch goes down: above the live record of
/// the same volume when the document's is not higher and the state differs (kept when it is
/// the same state), and above the floor for a volume not live. A live volume that the
/// document drops while it is attached is kept, detached (an empty fence), at a raised epoch,
/// so a storage target can still revoke its old holders. Every raised epoch is of `term`.
/// Fails, naming the volume and handing the records back, when such an epoch cannot grow.
fn raise_epochs(
    mut records: Records,
    live: &HashMap<Box<str>, VolumeRecord>,
    floor: u64,
    term: u64,
) -> Result<Records, (String, Exhausted, Records)> {
    let in_doc: HashSet<Box<str>> = records.iter().map(|(k, _)| k.clone()).collect();
    for (key, l) in live.iter().filter(|(k, l)| l.is_attached() && !in_doc.contains(*k)) {
        records.push((key.clone(), VolumeRecord::new(l.epoch)));
    }
    let mut failed = None;
    for (key, rec) in &mut records {
        let (base, same) = match live.get(key) {
            Some(l) => (l.epoch, same_state(l, rec)),
            None => (floor, false),
        };
        if rec.epoch < base || (rec.epoch == base && !same && base > 0) {
            match next_epoch(base, term) {
                Ok(e) => rec.epoch = e,
                Err(e) => {
                    failed = Some((key.to_string(), e));
                    break;
                }
            }
        }
    }
    match failed {
        Some((volume, e)) => Err((volume, e, records)),
        None => Ok(records),
    }
}

/// Whether two records hold the same nodes, admissions and (while attached) access: a
/// detached volume's access is not part of the document.
fn same_state(a: &VolumeRecord, b: &VolumeRecord) -> bool {
    a.nodes() == b.nodes() && a.admissions() == b.admissions() && (!a.is_attached() || a.access() == b.access())
}

/// Checks one volume of a document.
fn stage_volume<'a>(entry: &'a VolumeEntry, timeline: &Timeline, term: u64) -> Result<StagedVolume<'a>, Inconsistency> {
    if next_epoch(entry.epoch, term).is_err() {
        return Err(Inconsistency::EpochCannotGrow(entry.epoch));
    }
    let detach = match &entry.last_detach {
        Some(d) => {
            check_node_id(&d.node)?;
            Some((d.node.as_str(), timeline.instant("at_unix_nanos", d.at_unix_nanos)?))
        }
        None => None,
    };
    let mut staged = StagedVolume {
        volume: &entry.volume,
        epoch: entry.epoch,
        access: Access::RWO,
        nodes: Vec::new(),
        since: 0,
        timeout_s: 0,
        reported: false,
        detach,
    };
    let Some(a) = &entry.attachment else { return Ok(staged) };
    if entry.epoch == 0 {
        return Err(Inconsistency::AttachedAtEpochZero);
    }
    match (a.nodes.len(), a.mode) {
        (0, _) => return Err(Inconsistency::NoNodes),
        (n, _) if n > AccessMode::Rwx.node_limit() => return Err(Inconsistency::TooManyNodes(n)),
        (n, AccessMode::Rwo) if n > AccessMode::Rwo.node_limit() => return Err(Inconsistency::RwoOnTwoNodes),
        _ => {}
    }
    if a.nodes.len() == 2 && a.nodes[0] == a.nodes[1] {
        return Err(Inconsistency::DuplicateNode);
    }
    for n in &a.nodes {
        check_node_id(n)?;
    }
    // Version 1 has no admission epochs: each node is taken as admitted at the volume's epoch.
    let admitted = if a.admitted.is_empty() { vec![entry.epoch; a.nodes.len()] } else { a.admitted.clone() };
    if admitted.len() != a.nodes.len() || admitted.iter().any(|&e| e == 0 || e > entry.epoch) {
        return Err(Inconsistency::BadAdmissions { nodes: a.nodes.clone(), admitted, epoch: entry.epoch });
    }
    staged.access = Access { mode: a.mode, readonly: a.readonly };
    staged.since = timeline.instant("since_unix_nanos", a.since_unix_nanos)?;
    staged.nodes = a.nodes.iter().map(String::as_str).zip(admitted).collect();
    if a.nodes.len() == 2 {
        staged.timeout_s = check_snapshot_timeout(a.migration_timeout_ms)?;
        staged.reported = a.timeout_reported;
    }
    Ok(staged)
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
