//! Multi-threaded stress: threads hammer a few volumes and nodes with random operations.
//! Sampled invariants must hold throughout; afterwards every state change the threads saw is
//! replayed in epoch order, which proves no update was lost or doubled, that each outcome
//! matched the state it left, and that the counters equal the outcomes seen.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, SystemTime};

use tether_core::{
    Access, AccessMode, Config, CoreError, Engine, ManualClock, NodeName, Published, StaleOutcome, UnpublishOutcome,
};

const VOLUMES: [&str; 4] = ["v0", "v1", "v2", "v3"];
const NODES: [&str; 3] = ["n0", "n1", "n2"];
const THREADS: usize = 4;
const OPS: usize = 20_000;

/// A state change as an outcome reported it.
#[derive(Debug, Clone)]
enum Change {
    Attached { node: NodeName, mode: AccessMode },
    HandedOff { from: NodeName, to: NodeName },
    MigrationStarted { source: NodeName, target: NodeName },
    Detached { nodes: Vec<NodeName> },
    Completed { source: NodeName, target: NodeName },
    Aborted { source: NodeName, target: NodeName },
    StaleCleared { node: NodeName },
}

#[derive(Default)]
struct Seen {
    /// volume -> epoch -> change.
    changes: BTreeMap<String, BTreeMap<u64, Change>>,
    /// counter name (as in `Stats::fields`) -> outcomes of that kind seen.
    counts: BTreeMap<&'static str, u64>,
}

fn bump(counts: &mut BTreeMap<&'static str, u64>, name: &'static str, by: u64) {
    *counts.entry(name).or_default() += by;
}

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        usize::try_from(self.0 % n as u64).expect("below n, which is a usize")
    }
}

fn check_invariants(engine: &Engine) {
    for a in engine.list() {
        let names: Vec<_> = a.nodes.iter().collect();
        assert!(names.len() <= 2, "{} is on three nodes", a.volume);
        if a.access.mode == AccessMode::Rwo {
            assert_eq!(names.len(), 1, "RWO volume {} is on {:?}", a.volume, names);
        }
        if names.len() == 2 {
            assert_ne!(names[0], names[1]);
            assert!(a.migration.is_some(), "two nodes without a migration on {}", a.volume);
        }
    }
}

fn worker(engine: &Engine, clock: &ManualClock, seed: u64) -> Seen {
    let mut rng = Rng(seed);
    let mut tally = Seen::default();
    let s = &mut tally.counts;
    for i in 0..OPS {
        let v = VOLUMES[rng.below(VOLUMES.len())];
        let n = NODES[rng.below(NODES.len())];
        let mut record = |epoch: u64, change: Change| {
            assert!(
                tally.changes.entry(v.to_owned()).or_default().insert(epoch, change).is_none(),
                "epoch {epoch} of {v} twice"
            );
        };
        match rng.below(20) {
            0..=7 => {
                let mode = if rng.below(2) == 0 { AccessMode::Rwo } else { AccessMode::Rwx };
                match engine.publish(v, n, Access { mode, readonly: false }, None) {
                    Ok(out) => match out.kind {
                        Published::Attached => {
                            bump(s, "attached", 1);
                            record(out.epoch, Change::Attached { node: n.into(), mode });
                        }
                        Published::AlreadyAttached => bump(s, "already_attached", 1),
                        Published::HandedOff { from } => {
                            bump(s, "handed_off", 1);
                            record(out.epoch, Change::HandedOff { from, to: n.into() });
                        }
                        Published::MigrationStarted { source, .. } => {
                            bump(s, "migrations_started", 1);
                            record(out.epoch, Change::MigrationStarted { source, target: n.into() });
                        }
                    },
                    Err(CoreError::Conflict { .. }) => bump(s, "conflicts", 1),
                    Err(CoreError::Incompatible { .. }) => bump(s, "incompatible", 1),
                    Err(CoreError::MigrationLimit { .. }) => bump(s, "migration_limit", 1),
                    Err(CoreError::MigrationTimedOut { .. }) => bump(s, "migration_timed_out", 1),
                    Err(e) => panic!("unexpected {e}"),
                }
            }
            8..=13 => {
                let node = (rng.below(8) != 0).then_some(n);
                match engine.unpublish(v, node).unwrap() {
                    UnpublishOutcome::NotAttached => bump(s, "not_attached", 1),
                    UnpublishOutcome::Detached { nodes, epoch, .. } => {
                        bump(s, "detached", 1);
                        bump(s, "migrations_detached", u64::from(nodes.len() == 2));
                        record(epoch, Change::Detached { nodes: nodes.iter().cloned().collect() });
                    }
                    UnpublishOutcome::MigrationCompleted { source, target, epoch, .. } => {
                        bump(s, "migrations_completed", 1);
                        record(epoch, Change::Completed { source, target });
                    }
                    UnpublishOutcome::MigrationAborted { source, target, epoch, .. } => {
                        bump(s, "migrations_aborted", 1);
                        record(epoch, Change::Aborted { source, target });
                    }
                }
            }
            14 => {
                if let StaleOutcome::Cleared { node, epoch, remaining, .. } = engine.clear_stale(v, n).unwrap() {
                    bump(s, "stale_cleared", 1);
                    bump(s, "migrations_cleared", u64::from(remaining.is_some()));
                    record(epoch, Change::StaleCleared { node });
                }
            }
            15 => {
                let live: Vec<&str> = NODES.iter().copied().filter(|_| rng.below(4) != 0).collect();
                let report = engine.reconcile(&live).unwrap();
                bump(s, "reconciles", 1);
                bump(s, "migrations_timed_out", report.timed_out_migrations.len() as u64);
                for c in report.cleared {
                    bump(s, "stale_cleared", 1);
                    // One node left in the fence: the clear ended a migration.
                    bump(s, "migrations_cleared", u64::from(c.fence.len() == 1));
                    assert!(tally
                        .changes
                        .entry(c.volume)
                        .or_default()
                        .insert(c.epoch, Change::StaleCleared { node: c.node })
                        .is_none());
                }
            }
            16 => clock.advance(Duration::from_secs(rng.below(20) as u64)),
            _ => {
                engine.is_within_grace_period(v, Duration::from_secs(30)).unwrap();
            }
        }
        if i % 1000 == 0 {
            check_invariants(engine);
        }
    }
    tally
}

/// Replays one volume's changes in epoch order, checking each against the state before it.
fn replay(volume: &str, changes: &BTreeMap<u64, Change>, engine: &Engine) {
    let mut nodes: Vec<NodeName> = Vec::new();
    let mut mode = AccessMode::Rwo;
    for (expected, (epoch, change)) in (1..).zip(changes) {
        assert_eq!(*epoch, expected, "{volume}: epoch {expected} missing: an update was lost");
        let ctx = || format!("{volume} epoch {epoch}: {change:?} after {nodes:?}");
        match change {
            Change::Attached { node, mode: m } => {
                assert!(nodes.is_empty(), "{}", ctx());
                (nodes, mode) = (vec![node.clone()], *m);
            }
            Change::HandedOff { from, to } => {
                assert!(mode == AccessMode::Rwo && nodes == [from.clone()], "{}", ctx());
                nodes = vec![to.clone()];
            }
            Change::MigrationStarted { source, target } => {
                assert!(mode == AccessMode::Rwx && nodes == [source.clone()], "{}", ctx());
                nodes.push(target.clone());
            }
            Change::Detached { nodes: was } => {
                assert_eq!(&nodes, was, "{}", ctx());
                nodes.clear();
            }
            Change::Completed { source, target } => {
                assert_eq!(nodes, [source.clone(), target.clone()], "{}", ctx());
                nodes = vec![target.clone()];
            }
            Change::Aborted { source, target } => {
                assert_eq!(nodes, [source.clone(), target.clone()], "{}", ctx());
                nodes = vec![source.clone()];
            }
            Change::StaleCleared { node } => {
                assert!(nodes.contains(node), "{}", ctx());
                nodes.retain(|n| n != node);
            }
        }
    }
    assert_eq!(engine.epoch(volume).unwrap(), changes.len() as u64, "{volume}: a change nobody saw");
    let now: Vec<NodeName> = engine.get(volume).unwrap().map(|a| a.nodes.iter().cloned().collect()).unwrap_or_default();
    assert_eq!(now, nodes, "{volume}: final state differs from the replay");
}

#[test]
fn concurrent_operations_keep_every_invariant() {
    let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH));
    let engine = Arc::new(Engine::with_config(Config::default(), clock.clone()).unwrap());
    let results = Arc::new(Mutex::new(Vec::new()));
    thread::scope(|scope| {
        for t in 0..THREADS {
            let (engine, clock, results) = (&engine, &clock, &results);
            scope.spawn(move || {
                let seen = worker(engine, clock, 0x9E37_79B9_7F4A_7C15 ^ ((t as u64 + 1) * 0x1234_5678_9ABC_DEF1));
                results.lock().unwrap().push(seen);
            });
        }
    });
    check_invariants(&engine);
    let mut all: BTreeMap<String, BTreeMap<u64, Change>> = BTreeMap::new();
    let mut total = BTreeMap::new();
    for seen in results.lock().unwrap().drain(..) {
        for (v, changes) in seen.changes {
            for (epoch, change) in changes {
                assert!(
                    all.entry(v.clone()).or_default().insert(epoch, change).is_none(),
                    "{v} epoch {epoch} reported twice"
                );
            }
        }
        for (name, n) in seen.counts {
            bump(&mut total, name, n);
        }
    }
    for v in VOLUMES {
        replay(v, all.get(v).unwrap_or(&BTreeMap::new()), &engine);
    }
    let migrating = engine.list().iter().filter(|a| a.nodes.len() == 2).count() as u64;
    bump(&mut total, "active_migrations", migrating);
    let stats: BTreeMap<&'static str, u64> = engine.stats().fields().into_iter().filter(|(_, n)| *n != 0).collect();
    assert_eq!(stats, total.into_iter().filter(|(_, n)| *n != 0).collect(), "counters differ from the outcomes seen");
    let st = engine.stats();
    assert_eq!(
        st.migrations_started,
        st.migrations_completed
            + st.migrations_aborted
            + st.migrations_detached
            + st.migrations_cleared
            + st.active_migrations,
        "every migration that started ended exactly once or is still running: {st:?}"
    );
    for counter in ["handed_off", "migrations_started", "stale_cleared", "migrations_completed", "migrations_aborted"] {
        assert!(stats.contains_key(counter), "the mix never produced {counter}: {stats:?}");
    }
}

/// Threads intern new node names at once (names in different shards of the name map are
/// interned in parallel, across several buckets of the id-to-name table): every name gets an
/// id of its own, and every outcome and query names the node that was asked for.
#[test]
fn names_interned_concurrently_each_resolve_to_their_own_node() {
    const PER_THREAD: usize = 300;
    let engine = Engine::new();
    thread::scope(|s| {
        for t in 0..THREADS {
            let engine = &engine;
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let (volume, node) = (format!("vol-{t}-{i}"), format!("node-{t}-{i}"));
                    let out = engine.publish(&volume, &node, Access::RWO, None).expect("a new volume attaches");
                    assert_eq!(out.fence.nodes().map(|a| &*a.node).collect::<Vec<_>>(), [node.as_str()]);
                }
            });
        }
    });
    assert_eq!(engine.interned_nodes(), THREADS * PER_THREAD);
    for t in 0..THREADS {
        for i in 0..PER_THREAD {
            let attachment = engine.get(&format!("vol-{t}-{i}")).unwrap().expect("attached");
            assert_eq!(&*attachment.nodes.primary, format!("node-{t}-{i}"));
        }
    }
}
