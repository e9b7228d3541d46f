//! The engine's state for one volume as stored beside its metadata, and the engine rebuilt
//! from those records at start-up.

use std::time::SystemTime;

use tether_core::{
    duration_to_nanos, AttachmentEntry, CoreError, DetachEntry, Engine, Snapshot, VolumeEntry, SNAPSHOT_VERSION,
};

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH).map_or(0, duration_to_nanos)
}

/// The engine's state for `volume` in the snapshot format; `None` if it was never attached.
///
/// Read with three engine queries: callers hold the volume's in-flight guard, so no other
/// call changes the volume in between.
pub fn engine_entry(engine: &Engine, volume: &str) -> Result<Option<VolumeEntry>, CoreError> {
    let epoch = engine.epoch(volume)?;
    if epoch == 0 {
        return Ok(None);
    }
    let attachment = engine.get(volume)?.map(|a| AttachmentEntry {
        mode: a.access.mode,
        readonly: a.access.readonly,
        nodes: a.nodes.iter().map(ToString::to_string).collect(),
        since_unix_nanos: unix_nanos(a.since),
        migration_timeout_ms: a.migration.map(|m| u32::try_from(m.timeout.as_millis()).unwrap_or(u32::MAX)),
        // Not known from outside the engine: a timed-out migration may be reported once more
        // after a restart, which is better than never.
        timeout_reported: false,
    });
    let last_detach = engine
        .detach_timestamp(volume)?
        .map(|d| DetachEntry { node: d.node.to_string(), at_unix_nanos: unix_nanos(d.at) });
    Ok(Some(VolumeEntry { volume: volume.to_owned(), epoch, attachment, last_detach }))
}

/// Replaces the engine's state with the stored entries (a snapshot taken "now").
pub fn restore(engine: &Engine, entries: Vec<VolumeEntry>) -> Result<(), CoreError> {
    let clock = engine.clock();
    let taken_at_unix_nanos = unix_nanos(clock.wall_time(clock.now()));
    let snapshot = Snapshot { version: SNAPSHOT_VERSION, taken_at_unix_nanos, volumes: entries, missing_nodes: vec![] };
    engine.restore(&snapshot)
}
