//! Identical first publishes racing (issue 18, hole 1): threads publish the same volume to the
//! same never-seen node at once. The contract's row is "attached to `node`, same mode: the
//! second call is `AlreadyAttached`", so exactly one is `Attached`, every other one is
//! `AlreadyAttached` with the same admission epoch, and the fence lists the node once. Every
//! part of the decision, the node's identity included, is settled inside the entry guard.

use std::sync::Barrier;
use std::thread;

use tether_core::{Access, Engine, Published};

const THREADS: usize = 4;
const ROUNDS: usize = 4_000;
/// The engine's snapshot is restored into a fresh engine every this many rounds.
const RESTORE_EVERY: usize = 200;

#[test]
fn identical_first_publishes_of_a_new_node_agree_on_one_attachment() {
    let engine = Engine::new();
    let barrier = Barrier::new(THREADS);
    let results: Vec<Vec<_>> = thread::scope(|s| {
        let workers: Vec<_> = (0..THREADS)
            .map(|_| {
                let (engine, barrier) = (&engine, &barrier);
                s.spawn(move || {
                    (0..ROUNDS)
                        .map(|round| {
                            let access = if round % 2 == 0 { Access::RWO } else { Access::RWX };
                            barrier.wait();
                            engine.publish(&format!("pvc-{round}"), &format!("node-{round}"), access, None)
                        })
                        .collect()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("a worker panicked")).collect()
    });
    for round in 0..ROUNDS {
        let node = format!("node-{round}");
        let outs: Vec<_> = results
            .iter()
            .map(|r| r[round].clone().unwrap_or_else(|e| panic!("round {round}: a publish was refused: {e}")))
            .collect();
        let attached = outs.iter().filter(|o| o.kind == Published::Attached).count();
        assert_eq!(attached, 1, "round {round}: {attached} calls were told Attached: {outs:?}");
        for o in &outs {
            assert!(matches!(o.kind, Published::Attached | Published::AlreadyAttached), "round {round}: {o:?}");
            assert_eq!((o.epoch, o.admitted), (1, 1), "round {round}: one admission, at the first epoch: {o:?}");
            let fenced: Vec<_> = o.fence.nodes().map(|a| (&*a.node, a.epoch)).collect();
            assert_eq!(fenced, [(node.as_str(), 1)], "round {round}: the fence lists the node once");
        }
        if round % RESTORE_EVERY == RESTORE_EVERY - 1 {
            Engine::new().restore(&engine.snapshot()).expect("the engine's own snapshot restores");
        }
    }
    assert_eq!(engine.interned_nodes(), ROUNDS, "one name per node, each held by its volume");
    let stats = engine.stats();
    assert_eq!((stats.attached, stats.already_attached), (ROUNDS as u64, (ROUNDS * (THREADS - 1)) as u64));
    assert_eq!(stats.migrations_started + stats.conflicts, 0, "no call treated its own node as another");
}

/// The same race through unpublish: a node's id is looked up inside the entry guard, so an
/// unpublish racing the first publish of that node either finds the node attached and
/// detaches it, or finds it not attached; it never detaches another node.
#[test]
fn unpublish_racing_the_first_publish_of_a_node_only_ever_detaches_that_node() {
    let engine = Engine::new();
    let barrier = Barrier::new(2);
    thread::scope(|s| {
        s.spawn(|| {
            for round in 0..ROUNDS {
                barrier.wait();
                engine.publish(&format!("pvc-{round}"), &format!("node-{round}"), Access::RWO, None).unwrap();
            }
        });
        s.spawn(|| {
            for round in 0..ROUNDS {
                barrier.wait();
                if let tether_core::UnpublishOutcome::Detached { nodes, .. } =
                    engine.unpublish(&format!("pvc-{round}"), Some(&format!("node-{round}"))).unwrap()
                {
                    assert_eq!(&*nodes.primary, format!("node-{round}"));
                }
            }
        });
    });
    let left = engine.list().len();
    assert_eq!(
        engine.interned_nodes(),
        left + engine.snapshot().volumes.iter().filter(|v| v.last_detach.is_some()).count()
    );
}
