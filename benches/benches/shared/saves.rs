//! The driver's embedded store saving records, one commit per save: what `store_commit`
//! measures against the other candidates, and what `driver --proxy` counts as one store commit.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_driver::store::{EmbeddedStore, VolumeStore};
use tether_driver::volume::{VolumeKind, VolumeMeta};

fn meta(i: usize) -> VolumeMeta {
    VolumeMeta {
        id: format!("pvc-{i:08}"),
        name: format!("pvc-{i:08}"),
        kind: VolumeKind::Filesystem,
        capacity_bytes: 1 << 30,
        parameters: std::collections::BTreeMap::new(),
    }
}

/// `threads` threads saving their own volume's record `commits` times each, each save one
/// commit of the driver's embedded store: (sorted latencies of one save, saves per second).
pub fn embedded(dir: &Path, threads: usize, commits: usize) -> (Vec<Duration>, f64) {
    let store = Arc::new(EmbeddedStore::open(dir, 1 << 50).expect("store"));
    for i in 0..threads {
        store.create(&meta(i)).expect("create");
    }
    let start = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|i| {
            let store = Arc::clone(&store);
            std::thread::spawn(move || {
                let mut meta = meta(i);
                (0..commits)
                    .map(|round| {
                        // A new record each time: SQLite writes nothing for an unchanged row.
                        meta.name = format!("pvc-{i:08}-{round}");
                        let t = Instant::now();
                        store.save(&meta, None, None).expect("save");
                        t.elapsed()
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut lat: Vec<Duration> = workers.into_iter().flat_map(|w| w.join().expect("worker")).collect();
    let wall = start.elapsed();
    lat.sort_unstable();
    let saves = f64::from(u32::try_from(lat.len()).unwrap_or(u32::MAX));
    (lat, saves / wall.as_secs_f64())
}
