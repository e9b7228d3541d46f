//! Restore racing publish, unpublish, reconcile and readers on many threads. Every volume is
//! held by "holder" before, during and after a loop of restores of a document that also says
//! "holder" (with epochs below the live ones, so each restore must raise them): no publish to
//! another node is ever granted, no reader ever sees a volume unattached, a volume outside the
//! document keeps no outcome ordered after the restore that dropped it, and no epoch ever goes
//! down.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, SystemTime};

use tether_core::{Access, Config, Engine, ManualClock, UnpublishOutcome};

const VOLUMES: usize = 16;
const RESTORES: usize = 300;

fn volume(i: usize) -> String {
    format!("pvc-{i}")
}

#[test]
fn restore_is_atomic_against_every_concurrent_call() {
    let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)));
    let engine = Arc::new(Engine::with_config(Config::default(), clock).unwrap());
    for i in 0..VOLUMES {
        engine.publish(&volume(i), "holder", Access::RWO, None).unwrap();
    }
    // The document: the same holders at epoch 1; a re-fence puts the live epochs above it, so
    // every restore must raise each epoch once more.
    let doc = engine.snapshot();
    assert_eq!(engine.refence().len(), VOLUMES);
    let finished = Arc::new(AtomicBool::new(false));
    let granted = Arc::new(AtomicU64::new(0));
    let empty_reads = Arc::new(AtomicU64::new(0));
    thread::scope(|s| {
        for t in 0..4 {
            let (e, done, grants) = (Arc::clone(&engine), Arc::clone(&finished), Arc::clone(&granted));
            s.spawn(move || {
                let node = format!("intruder-{t}");
                while !done.load(Ordering::Acquire) {
                    for i in 0..VOLUMES {
                        if e.publish(&volume(i), &node, Access::RWO, None).is_ok() {
                            grants.fetch_add(1, Ordering::Relaxed);
                        }
                        // Unpublishing a node that holds nothing must stay a no-op.
                        assert_eq!(e.unpublish(&volume(i), Some(&node)).unwrap(), UnpublishOutcome::NotAttached);
                    }
                }
            });
        }
        let (e, done, empties) = (Arc::clone(&engine), Arc::clone(&finished), Arc::clone(&empty_reads));
        s.spawn(move || {
            let mut last = [0u64; VOLUMES];
            while !done.load(Ordering::Acquire) {
                for (i, seen) in last.iter_mut().enumerate() {
                    match e.get(&volume(i)).unwrap() {
                        Some(a) => {
                            assert_eq!(&*a.nodes.primary, "holder");
                            assert!(a.epoch >= *seen, "{}: epoch went down from {seen} to {}", volume(i), a.epoch);
                            *seen = a.epoch;
                        }
                        None => {
                            empties.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                // Every node is live: reconcile never clears, but it scans while restores run.
                assert!(e.reconcile(&["holder"]).unwrap().cleared.is_empty());
            }
        });
        let (e, done, doc) = (Arc::clone(&engine), Arc::clone(&finished), &doc);
        s.spawn(move || {
            for _ in 0..RESTORES {
                e.restore(doc).unwrap();
            }
            done.store(true, Ordering::Release);
        });
    });
    assert_eq!(granted.load(Ordering::Relaxed), 0, "a publish was granted a volume held by another node");
    assert_eq!(empty_reads.load(Ordering::Relaxed), 0, "a reader saw a volume unattached during a restore");
    for i in 0..VOLUMES {
        let a = engine.get(&volume(i)).unwrap().unwrap();
        assert_eq!(&*a.nodes.primary, "holder");
        assert_eq!(a.epoch, 2 + RESTORES as u64, "{}: each restore of a lower epoch raised it by one", volume(i));
    }
    assert_eq!(engine.interned_nodes(), 1, "the refused intruders left no name behind");
}

/// Writers on volumes the document does not hold race the restores that drop them: every
/// outcome is ordered wholly before a restore (and dropped with the volume) or after it, so
/// the final state is exactly what the last writes made of a dropped volume, and its epoch
/// never returns below one issued before.
#[test]
fn restore_drops_volumes_outside_the_document_without_losing_later_outcomes() {
    let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)));
    let engine = Arc::new(Engine::with_config(Config::default(), clock).unwrap());
    let doc = engine.snapshot(); // empty
    let finished = Arc::new(AtomicBool::new(false));
    thread::scope(|s| {
        for t in 0..3 {
            let (e, done) = (Arc::clone(&engine), Arc::clone(&finished));
            s.spawn(move || {
                let v = format!("own-{t}");
                let mut highest = 0;
                while !done.load(Ordering::Acquire) {
                    let out = e.publish(&v, "n", Access::RWO, None).unwrap();
                    assert!(out.epoch > highest, "{v}: epoch {} after {highest}", out.epoch);
                    highest = out.epoch;
                    if let UnpublishOutcome::Detached { epoch, .. } = e.unpublish(&v, Some("n")).unwrap() {
                        assert!(epoch > highest);
                        highest = epoch;
                    }
                }
            });
        }
        let (e, done, doc) = (Arc::clone(&engine), Arc::clone(&finished), &doc);
        s.spawn(move || {
            for _ in 0..RESTORES {
                e.restore(doc).unwrap();
            }
            done.store(true, Ordering::Release);
        });
    });
    for t in 0..3 {
        assert_eq!(engine.get(&format!("own-{t}")).unwrap(), None, "the last outcome of own-{t} was a detach");
    }
}
