//! The engine's invariants, checked after every fuzz input: no RWO volume on two nodes, no RWX
//! volume on three, every fence lists exactly its volume's nodes at its epoch, and no admission
//! epoch above the volume's epoch.

use tether_core::{AccessMode, Engine, Snapshot};

/// Panics (which the fuzzer reports) when the engine's state breaks an invariant.
pub fn check(e: &Engine) {
    for a in e.list() {
        let limit = if a.access.mode == AccessMode::Rwo { 1 } else { 2 };
        assert!(a.nodes.len() <= limit, "{} is {} on {}", a.volume, a.access, a.nodes);
        let fence = e.fence(&a.volume).unwrap().expect("an attached volume has a fence");
        let fenced: Vec<String> = fence.nodes().map(|n| n.node.to_string()).collect();
        let held: Vec<String> = a.nodes.iter().map(ToString::to_string).collect();
        assert_eq!(fenced, held, "fence of {}", a.volume);
        assert_eq!(fence.epoch, a.epoch, "fence epoch of {}", a.volume);
        assert!(fence.nodes().all(|n| n.epoch >= 1 && n.epoch <= a.epoch), "admissions of {}: {fence}", a.volume);
    }
}

/// A state with something in it, so that "a refused call leaves the state untouched" means
/// something: an RWO volume, a migrating RWX volume and a detached one.
pub fn busy_engine() -> Engine {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};
    let clock =
        Arc::new(tether_core::ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)));
    let e = Engine::with_config(tether_core::Config::default(), clock).unwrap();
    let (rwo, rwx) = (tether_core::Access::RWO, tether_core::Access::RWX);
    e.publish("live-rwo", "node-a", rwo, None).unwrap();
    e.publish("live-rwx", "node-a", rwx, None).unwrap();
    e.publish("live-rwx", "node-b", rwx, None).unwrap();
    e.publish("gone", "node-c", rwo, None).unwrap();
    e.unpublish("gone", None).unwrap();
    e
}

/// Every epoch of `before` is still there and no lower (epochs never go down).
pub fn epochs_kept(before: &Snapshot, e: &Engine) {
    for v in &before.volumes {
        let now = e.epoch(&v.volume).unwrap();
        assert!(
            now >= v.epoch || now == 0 && e.snapshot().epoch_floor >= v.epoch,
            "{} went from {} to {now}",
            v.volume,
            v.epoch
        );
    }
}

/// Drives a restored state a little: every change it allows must keep the invariants.
pub fn exercise(e: &Engine) {
    let nodes = ["node-a", "node-b", "node-x"];
    for a in e.list() {
        for n in nodes {
            for access in [tether_core::Access::RWO, tether_core::Access::RWX] {
                let _ = e.publish(&a.volume, n, access, None);
                check(e);
            }
        }
        let _ = e.unpublish(&a.volume, Some(&a.nodes.primary));
        check(e);
    }
    let _ = e.reconcile(&["node-a"]);
    check(e);
}

/// The invariants on a snapshot document read back through a front end: no RWO volume on
/// two nodes, no RWX volume on three, one admission per node, each within the volume's epoch.
pub fn check_snapshot(json: &str) {
    let doc = Engine::parse_snapshot(json).expect("a front end's own snapshot parses");
    for v in &doc.volumes {
        let Some(a) = &v.attachment else { continue };
        let limit = if a.mode == AccessMode::Rwo { 1 } else { 2 };
        assert!(!a.nodes.is_empty() && a.nodes.len() <= limit, "{} is {} on {:?}", v.volume, a.mode, a.nodes);
        assert_eq!(a.admitted.len(), a.nodes.len(), "admissions of {}", v.volume);
        assert!(a.nodes.len() < 2 || a.nodes[0] != a.nodes[1], "{} lists {} twice", v.volume, a.nodes[0]);
        assert!(a.admitted.iter().all(|&x| x >= 1 && x <= v.epoch), "admissions of {}: {:?}", v.volume, a.admitted);
    }
}
