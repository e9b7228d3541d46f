//! What the engine's integration tests share: an engine on the corpus's manual clock, and fences.

#![allow(dead_code)] // each test file uses its own part

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_core::{Access, Admission, Config, Engine, Fence, ManualClock};

/// An engine with the default settings on a manual clock whose wall time is the corpus's "now".
pub fn engine() -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)));
    (Engine::with_config(Config::default(), clock.clone()).unwrap(), clock)
}

/// The fence `(epoch, access, [(node, admitted_at)])`.
pub fn fence(epoch: u64, access: Access, nodes: &[(&str, u64)]) -> Fence {
    let nodes = nodes.iter().map(|&(n, e)| Admission { node: n.into(), epoch: e }).collect();
    Fence::new(epoch, access, nodes).unwrap()
}

/// The fence of a tracked volume.
pub fn fence_of(e: &Engine, v: &str) -> Fence {
    e.fence(v).unwrap().expect("tracked")
}
