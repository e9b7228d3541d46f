//! What the benchmarks compare: the engine, the `Mutex<HashMap>` baseline with the same
//! contract, the floor a grace check can approach (a bare `DashMap::get` plus a clock read), and
//! the floor of a durable write (a bare `fdatasync`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use dashmap::DashMap;
use tether_core::model::Model;
use tether_core::{Access, Clock, CoarseClock, Config, Engine, MonotonicClock};

/// The grace period every benchmark asks about.
pub const GRACE: Duration = Duration::from_secs(30);

/// A realistic volume name (the shape Kubernetes gives provisioned volumes): 40 bytes.
pub fn volume_name(i: usize) -> String {
    format!("pvc-{:08x}-{:04x}-4000-8000-{:012x}", i, i % 0xffff, i.wrapping_mul(2_654_435_761))
}

/// One of 100 node names.
pub fn node_name(i: usize) -> String {
    format!("node-{:03}", i % 100)
}

/// The calls the benchmarks make, so each benchmark body is written once for every contender.
pub trait Contract: Send + Sync {
    fn publish_rwo(&self, volume: &str, node: &str) -> bool;
    fn unpublish(&self, volume: &str, node: &str) -> bool;
    fn within_grace(&self, volume: &str) -> bool;
}

impl Contract for Engine {
    fn publish_rwo(&self, volume: &str, node: &str) -> bool {
        self.publish(volume, node, Access::RWO, None).is_ok()
    }
    fn unpublish(&self, volume: &str, node: &str) -> bool {
        Engine::unpublish(self, volume, Some(node)).is_ok()
    }
    fn within_grace(&self, volume: &str) -> bool {
        self.is_within_grace_period(volume, GRACE).unwrap_or(false)
    }
}

/// The baseline: the reference model of the same contract behind one `Mutex` guarding
/// everything, the design of the Go attachment managers Tether replaces.
#[derive(Debug)]
pub struct Baseline(Mutex<Model>);

impl Baseline {
    /// An empty baseline on `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self(Mutex::new(Model::new(Config::default(), clock)))
    }

    fn model(&self) -> std::sync::MutexGuard<'_, Model> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Contract for Baseline {
    fn publish_rwo(&self, volume: &str, node: &str) -> bool {
        self.model().publish(volume, node, Access::RWO, None).is_ok()
    }
    fn unpublish(&self, volume: &str, node: &str) -> bool {
        self.model().unpublish(volume, Some(node)).is_ok()
    }
    fn within_grace(&self, volume: &str) -> bool {
        self.model().is_within_grace_period(volume, GRACE).unwrap_or(false)
    }
}

/// The floor: the same keys in a bare `DashMap` with the engine's hasher, one `get` and one
/// read of the same clock, nothing else.
#[derive(Debug)]
pub struct Floor {
    map: DashMap<Box<str>, u64, ahash::RandomState>,
    clock: Arc<dyn Clock>,
}

impl Floor {
    /// A floor holding `volumes`, each with a stamp of "now" on `clock`.
    pub fn new(volumes: &[String], clock: Arc<dyn Clock>) -> Self {
        let map = DashMap::with_hasher(ahash::RandomState::new());
        for v in volumes {
            map.insert(v.as_str().into(), clock.now());
        }
        Self { map, clock }
    }

    /// A lookup plus a clock read, compared the way the grace check compares.
    pub fn within_grace(&self, volume: &str) -> bool {
        self.map.get(volume).is_some_and(|t| self.clock.now().saturating_sub(*t) < 30_000_000_000)
    }
}

/// The clocks the benchmarks run on: the engine's default (coarse, 4 ms ticks) and std's
/// `Instant` (nanosecond resolution, slower to read).
pub fn clocks() -> [(&'static str, Arc<dyn Clock>); 2] {
    [("", Arc::new(CoarseClock::new())), ("_instant_clock", Arc::new(MonotonicClock::new()))]
}

/// An engine with default settings on `clock`.
pub fn engine(clock: Arc<dyn Clock>) -> Engine {
    Engine::with_config(Config::default(), clock).expect("default settings are valid")
}

/// Fills `c` with `volumes`, each attached then detached, so each has a fresh detach record.
pub fn detached<C: Contract>(c: &C, volumes: &[String]) {
    for (i, v) in volumes.iter().enumerate() {
        let node = node_name(i);
        assert!(c.publish_rwo(v, &node) && c.unpublish(v, &node));
    }
}

/// The resident set size of this process, in bytes (Linux).
pub fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("statm resident field");
    pages * 4096
}

/// Latencies of `n` bare `fdatasync`s of a 4 KiB block rewritten in place, in a file under
/// `dir`: the floor of one durable write on that filesystem, sorted.
pub fn fdatasync_latencies(dir: &std::path::Path, n: usize) -> Vec<std::time::Duration> {
    use std::io::{Seek, SeekFrom, Write};
    let path = dir.join("fdatasync-floor");
    let mut f = std::fs::File::create(&path).expect("floor file");
    let block = [0x5a_u8; 4096];
    f.write_all(&block).expect("write");
    f.sync_all().expect("fsync");
    let mut lat: Vec<_> = (0..n)
        .map(|_| {
            f.seek(SeekFrom::Start(0)).expect("seek");
            f.write_all(&block).expect("write");
            let t = std::time::Instant::now();
            f.sync_data().expect("fdatasync");
            t.elapsed()
        })
        .collect();
    drop(f);
    let _ = std::fs::remove_file(&path);
    lat.sort_unstable();
    lat
}

/// The nearest-rank percentile `per_mille` / 1000 of sorted latencies (per mille, to stay in
/// integers).
pub fn percentile(sorted: &[std::time::Duration], per_mille: usize) -> std::time::Duration {
    sorted[(sorted.len() - 1) * per_mille / 1000]
}

/// Where a bench that writes to disk keeps its state: `TETHER_BENCH_STATE_DIR`, or the folder
/// `name` under the workspace's `target/` (on disk, not tmpfs).
pub fn state_root(name: &str) -> std::path::PathBuf {
    std::env::var_os("TETHER_BENCH_STATE_DIR")
        .map_or_else(|| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target").join(name), Into::into)
}
