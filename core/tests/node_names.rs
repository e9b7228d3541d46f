//! Node names are interned only while something holds them (issue 18, hole 5): millions of
//! distinct names pass through publish, unpublish, detach records, missing marks and forget
//! while the node table stays the size of the names in use; and names released while other
//! threads resolve theirs never make a call name the wrong node.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use tether_core::{Access, Engine, Published, StaleOutcome, UnpublishOutcome};

/// Distinct node names sent through the engine by the bounded-memory test.
const NAMES: usize = 2_000_000;
/// Volumes the names rotate over: at most two names per volume are held at once (its holder
/// and its detach record), so the table never needs more slots than this allows.
const VOLUMES: usize = 64;

#[test]
fn millions_of_distinct_node_names_pass_through_with_bounded_memory() {
    let engine = Engine::new();
    let mut most_held = 0;
    for i in 0..NAMES {
        let (volume, node) = (format!("pvc-{}", i % VOLUMES), format!("node-{i}"));
        match i % 4 {
            // A refused publish leaves no name behind.
            0 if i >= VOLUMES => {
                engine.publish(&volume, &node, Access::RWO, None).unwrap();
                assert!(engine.publish(&volume, &format!("intruder-{i}"), Access::RWO, None).is_err());
                engine.unpublish(&volume, Some(&node)).unwrap();
            }
            // The detach record holds the name until the next detach replaces it, or forget.
            1 => {
                engine.publish(&volume, &node, Access::RWX, None).unwrap();
                engine.unpublish(&volume, None).unwrap();
                engine.forget(&volume).unwrap();
            }
            // A stale clear writes no detach record: the name goes at once.
            2 => {
                engine.publish(&volume, &node, Access::RWO, None).unwrap();
                assert!(matches!(engine.clear_stale(&volume, &node).unwrap(), StaleOutcome::Cleared { .. }));
            }
            _ => {
                engine.publish(&volume, &node, Access::RWO, None).unwrap();
                engine.unpublish(&volume, Some(&node)).unwrap();
            }
        }
        if i % 61 == 0 {
            // Sampled (it reads every shard of the name map), at every phase of the rotation.
            most_held = most_held.max(engine.interned_nodes());
        }
        if i % 100_000 == 0 {
            // A missing mark holds its node; reconcile releases it once the node is cleared.
            let marked = format!("gone-{i}");
            engine.publish("pvc-marked", &marked, Access::RWO, None).unwrap();
            assert_eq!(engine.reconcile(&[] as &[&str]).unwrap().pending.len(), 1);
            engine.unpublish("pvc-marked", None).unwrap();
            engine.forget("pvc-marked").unwrap();
            assert!(engine.reconcile(&[] as &[&str]).unwrap().pending.is_empty());
        }
    }
    // Only the detach records of the volumes are left holding names.
    let held: usize = engine.snapshot().volumes.iter().filter(|v| v.last_detach.is_some()).count();
    assert_eq!(engine.interned_nodes(), held);
    assert!(held <= VOLUMES, "{held} names held by {VOLUMES} volumes");
    assert!(most_held <= VOLUMES + 1, "at most one name per volume and the one being admitted: {most_held}");
    assert!(engine.node_slots() <= 2 * VOLUMES + 2, "{} slots for {NAMES} names", engine.node_slots());
}

/// A restore takes holds for the names its document holds and lets go of those it replaced.
#[test]
fn a_restore_releases_the_names_of_the_state_it_replaces() {
    let engine = Engine::new();
    engine.publish("pvc-a", "node-old", Access::RWO, None).unwrap();
    engine.unpublish("pvc-a", None).unwrap();
    engine.publish("pvc-b", "node-gone", Access::RWO, None).unwrap();
    engine.reconcile(&["node-old"]).unwrap();
    assert_eq!(engine.interned_nodes(), 2);
    let doc = Engine::new();
    doc.publish("pvc-c", "node-new", Access::RWO, None).unwrap();
    engine.restore(&doc.snapshot()).unwrap();
    // pvc-b was dropped while attached: it stays, detached, holding no name.
    assert_eq!(engine.interned_nodes(), 1, "only node-new is held");
    assert!(engine.fence("pvc-b").unwrap().unwrap().is_empty());
    let refused = Engine::parse_snapshot(&doc.snapshot_json().replace("\"epoch\":1", "\"epoch\":18446744073709551614"));
    assert!(engine.restore(&refused.unwrap()).is_err());
    assert_eq!(engine.interned_nodes(), 1, "a refused restore leaves no name behind");
}

/// Release racing lookup: threads attach and detach their own short-lived names (so ids are
/// released and reused all the time) while others publish, query and unpublish a fixed node
/// on their volumes. Every outcome names the node that was asked for, and no call is refused
/// or confused by an id that changed name under it.
#[test]
fn names_released_and_reused_never_resolve_to_another_node() {
    const CHURN: usize = 2;
    const ROUNDS: usize = 60_000;
    let engine = Engine::new();
    let done = AtomicBool::new(false);
    thread::scope(|s| {
        for t in 0..CHURN {
            let (engine, done) = (&engine, &done);
            s.spawn(move || {
                let mut i = 0usize;
                while !done.load(Ordering::Acquire) {
                    let (volume, node) = (format!("churn-{t}"), format!("churn-{t}-{}", i % 7));
                    let out = engine.publish(&volume, &node, Access::RWO, None).unwrap();
                    assert_eq!(out.fence.nodes().map(|a| &*a.node).collect::<Vec<_>>(), [node.as_str()]);
                    match engine.unpublish(&volume, Some(&node)).unwrap() {
                        UnpublishOutcome::Detached { nodes, .. } => assert_eq!(&*nodes.primary, node),
                        other => panic!("{node}: {other:?}"),
                    }
                    engine.forget(&volume).unwrap();
                    i += 1;
                }
            });
        }
        let engine = &engine;
        let steady = s.spawn(move || {
            for round in 0..ROUNDS {
                let (volume, node) = (format!("steady-{}", round % 3), format!("steady-node-{}", round % 5));
                let out = engine.publish(&volume, &node, Access::RWO, None).unwrap();
                assert!(matches!(out.kind, Published::Attached), "{volume}: {:?}", out.kind);
                assert_eq!(&*engine.get(&volume).unwrap().unwrap().nodes.primary, node);
                // The detach record names the node the last detach took, which nothing else holds.
                let last = engine.detach_timestamp(&volume).unwrap().map(|d| d.node.to_string());
                assert_eq!(last, round.checked_sub(3).map(|r| format!("steady-node-{}", r % 5)));
                // A name that is not this volume's node is never taken for it.
                assert_eq!(engine.unpublish(&volume, Some("churn-0-3")).unwrap(), UnpublishOutcome::NotAttached);
                assert!(matches!(engine.unpublish(&volume, Some(&node)).unwrap(), UnpublishOutcome::Detached { .. }));
            }
        });
        steady.join().unwrap();
        done.store(true, Ordering::Release);
    });
    let held: usize = engine.snapshot().volumes.iter().filter(|v| v.last_detach.is_some()).count();
    assert_eq!(engine.interned_nodes(), held, "every churned name was released");
}
