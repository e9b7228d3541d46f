//! A simulated storage target fed every fence the engine emits, out of order, duplicated and
//! replayed: after each change's fence arrives, the target admits exactly the nodes the
//! engine's latest state allows (both sides during a migration, the source after an abort,
//! the target after completion, nobody after a detach, the new holder after a handoff), and a
//! session is accepted exactly when the engine's state would accept it.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use tether_core::{
    Access, AccessMode, Config, Engine, Fence, ManualClock, PublishOutcome, StaleOutcome, UnpublishOutcome,
};

const NODES: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Op {
    Publish { n: usize, rwx: bool },
    Unpublish { n: Option<usize> },
    ClearStale { n: usize },
    Advance { secs: u64 },
    NewTerm,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..NODES.len(), any::<bool>()).prop_map(|(n, rwx)| Op::Publish { n, rwx }),
        4 => prop::option::weighted(0.85, 0..NODES.len()).prop_map(|n| Op::Unpublish { n }),
        1 => (0..NODES.len()).prop_map(|n| Op::ClearStale { n }),
        2 => prop_oneof![Just(1u64), Just(20), Just(40)].prop_map(|secs| Op::Advance { secs }),
        1 => Just(Op::NewTerm),
    ]
}

/// The storage target: keeps the last fence it applied, by the target's rule.
#[derive(Default)]
struct Target {
    applied: Option<Fence>,
}

impl Target {
    fn deliver(&mut self, f: &Fence) {
        if f.check_supersedes("v", self.applied.as_ref().map(|a| a.epoch)).is_ok() {
            self.applied = Some(f.clone());
        }
    }

    /// Whether `node` presenting `epoch` may do I/O now.
    fn admits(&self, node: &str, epoch: u64) -> bool {
        self.applied.as_ref().is_some_and(|f| f.check_session("v", node, epoch).is_ok())
    }
}

/// What the engine's own state allows: `node` is attached and was admitted at or below `epoch`.
fn engine_allows(e: &Engine, node: &str, epoch: u64) -> bool {
    e.get("v").unwrap().is_some_and(|a| {
        let admitted = [Some(a.admitted.0), a.admitted.1];
        a.nodes.iter().zip(admitted.into_iter().flatten()).any(|(n, adm)| &**n == node && epoch >= adm)
    })
}

/// The fence a step emitted, if it changed anything.
fn step(e: &Engine, clock: &ManualClock, op: &Op) -> Option<Fence> {
    match *op {
        Op::Publish { n, rwx } => {
            let access = Access { mode: if rwx { AccessMode::Rwx } else { AccessMode::Rwo }, readonly: false };
            e.publish("v", NODES[n], access, None).ok().map(|PublishOutcome { fence, .. }| fence)
        }
        Op::Unpublish { n } => match e.unpublish("v", n.map(|n| NODES[n])).unwrap() {
            UnpublishOutcome::NotAttached => None,
            UnpublishOutcome::Detached { fence, .. }
            | UnpublishOutcome::MigrationCompleted { fence, .. }
            | UnpublishOutcome::MigrationAborted { fence, .. } => Some(fence),
        },
        Op::ClearStale { n } => match e.clear_stale("v", NODES[n]).unwrap() {
            StaleOutcome::Cleared { fence, .. } => Some(fence),
            StaleOutcome::NotAttached => None,
        },
        Op::Advance { secs } => {
            clock.advance(Duration::from_secs(secs));
            None
        }
        Op::NewTerm => {
            e.set_term(e.term() + 1).unwrap();
            e.refence().into_iter().next().map(|vf| vf.fence)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn the_target_admits_exactly_what_the_latest_state_allows(
        ops in prop::collection::vec(op(), 1..60),
        shuffles in prop::collection::vec(any::<prop::sample::Index>(), 60),
        replays in prop::collection::vec(prop::collection::vec(any::<prop::sample::Index>(), 0..4), 60),
    ) {
        let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH));
        let e = Engine::with_config(Config::default(), clock.clone()).unwrap();
        let mut target = Target::default();
        let mut emitted: Vec<Fence> = Vec::new();
        let mut epochs_presented = vec![0u64];
        for (i, op) in ops.iter().enumerate() {
            let Some(latest) = step(&e, &clock, op) else { continue };
            prop_assert_eq!(Some(latest.clone()), e.fence("v").unwrap(), "the outcome's fence is the volume's");
            // This change's fence arrives among replays of older ones and a duplicate, in an
            // order the shuffle picks.
            let mut batch: Vec<Fence> = replays[i].iter().filter(|_| !emitted.is_empty()).map(|r| r.get(&emitted).clone()).collect();
            batch.push(latest.clone());
            batch.push(latest.clone());
            let (k, last) = (shuffles[i].index(batch.len()), batch.len() - 1);
            batch.swap(k, last);
            for f in &batch {
                target.deliver(f);
            }
            prop_assert_eq!(target.applied.as_ref(), Some(&latest));
            epochs_presented.extend(latest.nodes().map(|a| a.epoch));
            emitted.push(latest);
            for node in NODES {
                for &presented in &epochs_presented {
                    prop_assert_eq!(
                        target.admits(node, presented),
                        engine_allows(&e, node, presented),
                        "node {} presenting {} after {:?}", node, presented, op
                    );
                }
            }
        }
        // A late copy of every earlier fence changes nothing.
        let last = target.applied.clone();
        for f in &emitted {
            target.deliver(f);
        }
        prop_assert_eq!(target.applied, last);
    }
}
