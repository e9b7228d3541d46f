//! The engine rebuilt at start-up from the per-volume records (each holds the engine's
//! `Engine::volume_entry` beside the volume's metadata).

use tether_core::{unix_nanos, CoreError, Engine, Snapshot, VolumeEntry, SNAPSHOT_VERSION};

/// Replaces the engine's state with the stored entries (a snapshot taken "now").
pub fn restore(engine: &Engine, entries: Vec<VolumeEntry>) -> Result<(), CoreError> {
    let clock = engine.clock();
    let taken_at_unix_nanos = unix_nanos(clock.wall_time(clock.now()));
    let snapshot = Snapshot {
        version: SNAPSHOT_VERSION,
        taken_at_unix_nanos,
        term: 0,
        epoch_floor: 0,
        volumes: entries,
        missing_nodes: vec![],
    };
    engine.restore(&snapshot)
}
