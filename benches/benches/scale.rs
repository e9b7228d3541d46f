//! Whole-state operations at 1 000 000 volumes, each beside a floor measured in the same run:
//! a snapshot (floor: serialising the same document), an atomic restore (floor: filling a
//! fresh engine from the same document, which holds no lock for the whole of it), a reconcile
//! pass (floor: one read-only walk of the map), and the longest wait each of them causes a
//! publish on another thread (floor: the longest publish while nothing else runs).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use tether_benches::{node_name, volume_name};
use tether_core::{Access, Engine};

const VOLUMES: usize = 1_000_000;

fn filled() -> Engine {
    let e = Engine::new();
    for i in 0..VOLUMES {
        e.publish(&volume_name(i), &node_name(i), Access::RWO, None).unwrap();
    }
    e
}

/// Runs `op` once while another thread publishes and unpublishes a volume of its own in a
/// loop; returns how long `op` took and the longest single publish or unpublish meanwhile.
fn with_publisher(e: &Engine, op: impl FnOnce()) -> (Duration, Duration) {
    let stop = AtomicBool::new(false);
    thread::scope(|s| {
        let publisher = s.spawn(|| {
            let mut longest = Duration::ZERO;
            while !stop.load(Ordering::Acquire) {
                let t = Instant::now();
                e.publish("bench-own", "bench-node", Access::RWO, None).unwrap();
                e.unpublish("bench-own", None).unwrap();
                longest = longest.max(t.elapsed());
            }
            longest
        });
        thread::sleep(Duration::from_millis(50)); // the publisher is running
        let t = Instant::now();
        op();
        let took = t.elapsed();
        stop.store(true, Ordering::Release);
        (took, publisher.join().unwrap())
    })
}

fn line(what: &str, took: Duration, floor_what: &str, floor: Duration) {
    println!(
        "scale/{what}: {:.1} ms; {floor_what}: {:.1} ms; ratio {:.2}",
        took.as_secs_f64() * 1e3,
        floor.as_secs_f64() * 1e3,
        took.as_secs_f64() / floor.as_secs_f64()
    );
}

fn main() {
    // Criterion passes `--bench`; nothing else is accepted.
    let e = Arc::new(filled());
    let live: Vec<String> =
        (0..VOLUMES).map(node_name).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let (_, idle) = with_publisher(&e, || thread::sleep(Duration::from_millis(500)));

    let t = Instant::now();
    let doc = e.snapshot();
    let snapshot = t.elapsed();
    let t = Instant::now();
    let json = serde_json::to_string(&doc).unwrap();
    let serialise = t.elapsed();
    line("snapshot", snapshot, "floor serialise the same document to JSON", serialise);

    let (restore, restore_stall) = with_publisher(&e, || e.restore(&doc).unwrap());
    let t = Instant::now();
    let fresh = Engine::new();
    fresh.restore(&doc).unwrap();
    let fill = t.elapsed();
    drop(fresh);
    line("atomic restore into the live engine", restore, "floor restore into a fresh engine", fill);

    let (reconcile, reconcile_stall) = with_publisher(&e, || assert!(e.reconcile(&live).unwrap().cleared.is_empty()));
    let t = Instant::now();
    assert_eq!(e.attached_count(), VOLUMES);
    let walk = t.elapsed();
    line("reconcile pass", reconcile, "floor one walk of the map", walk);

    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "scale/longest publish+unpublish: idle {:.3} ms; during restore {:.1} ms; during reconcile {:.3} ms",
        ms(idle),
        ms(restore_stall),
        ms(reconcile_stall)
    );
    println!("scale/snapshot document: {} MB of JSON for {VOLUMES} volumes", json.len() / 1_000_000);
}
