//! Model-based property test: random sequences of publish, unpublish, grace checks, stale
//! clears, reconcile, clock advances, grace changes and snapshot-and-restore run against the
//! engine and the simple reference model; every outcome and the resulting state must agree.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use proptest::prelude::*;
use tether_core::model::Model;
use tether_core::{Access, AccessMode, Config, CoreError, Engine, Inconsistency, ManualClock, Snapshot, SnapshotError};

const VOLUMES: [&str; 3] = ["v0", "v1", "v2"];
const NODES: [&str; 4] = ["n0", "n1", "n2", "n3"];

#[derive(Debug, Clone)]
enum Op {
    Publish {
        v: usize,
        n: usize,
        rwx: bool,
        ro: bool,
        timeout_s: Option<u64>,
    },
    Unpublish {
        v: usize,
        n: Option<usize>,
    },
    Grace {
        v: usize,
        secs: u64,
    },
    ClearStale {
        v: usize,
        n: usize,
    },
    Reconcile {
        live: u8,
    },
    Advance {
        millis: u64,
    },
    SetGrace {
        secs: u64,
    },
    SnapshotRestore,
    SetTerm {
        term: u64,
    },
    Refence,
    Forget {
        v: usize,
    },
    Fence {
        v: usize,
    },
    /// Restores, into the live engine, its own snapshot changed by `edit`.
    RestoreEdited {
        v: usize,
        edit: Edit,
    },
}

/// How `Op::RestoreEdited` changes a snapshot before restoring it.
#[derive(Debug, Clone, Copy)]
enum Edit {
    /// The volume's epoch lowered by this much (admissions kept at most the new epoch).
    Lower(u64),
    /// The volume left out.
    Drop,
    /// The volume's epoch put this far below `u64::MAX`.
    NearMax(u64),
    /// The document's term raised to this.
    Term(u64),
}

fn op() -> impl Strategy<Value = Op> {
    let v = 0..VOLUMES.len();
    let n = 0..NODES.len();
    prop_oneof![
        6 => (v.clone(), n.clone(), any::<bool>(), prop::bool::weighted(0.1), prop::option::of(prop_oneof![0u64..400, Just(30), Just(31)]))
            .prop_map(|(v, n, rwx, ro, timeout_s)| Op::Publish { v, n, rwx, ro, timeout_s }),
        4 => (v.clone(), prop::option::weighted(0.9, n.clone())).prop_map(|(v, n)| Op::Unpublish { v, n }),
        1 => (v.clone(), 0u64..60).prop_map(|(v, secs)| Op::Grace { v, secs }),
        1 => (v, n).prop_map(|(v, n)| Op::ClearStale { v, n }),
        2 => any::<u8>().prop_map(|live| Op::Reconcile { live }),
        // Whole seconds, so elapsed times land exactly on grace periods and timeouts.
        4 => prop_oneof![
            4 => (0u64..=31).prop_map(|s| s * 1_000),
            1 => prop::sample::select(vec![29_000u64, 30_000, 60_000, 270_000, 299_000, 300_000, 301_000]),
            1 => 0u64..1_000,
        ].prop_map(|millis| Op::Advance { millis }),
        1 => (0u64..90).prop_map(|secs| Op::SetGrace { secs }),
        1 => Just(Op::SnapshotRestore),
        1 => prop_oneof![0u64..4, Just(u64::from(u32::MAX)), Just(1 << 32)].prop_map(|term| Op::SetTerm { term }),
        1 => Just(Op::Refence),
        1 => (0..VOLUMES.len()).prop_map(|v| Op::Forget { v }),
        1 => (0..VOLUMES.len()).prop_map(|v| Op::Fence { v }),
        2 => (0..VOLUMES.len(), prop_oneof![
            (1u64..4).prop_map(Edit::Lower),
            Just(Edit::Drop),
            (0u64..3).prop_map(Edit::NearMax),
            (0u64..4).prop_map(Edit::Term),
        ]).prop_map(|(v, edit)| Op::RestoreEdited { v, edit }),
    ]
}

struct Pair {
    clock: Arc<ManualClock>,
    engine: Engine,
    model: Model,
}

impl Pair {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)));
        let engine = Engine::with_config(Config::default(), clock.clone()).unwrap();
        let model = Model::new(Config::default(), clock.clone());
        Self { clock, engine, model }
    }

    fn step(&mut self, op: &Op) -> Result<(), TestCaseError> {
        let (e, m) = (&self.engine, &mut self.model);
        match *op {
            Op::Publish { v, n, rwx, ro, timeout_s } => {
                let access = Access { mode: if rwx { AccessMode::Rwx } else { AccessMode::Rwo }, readonly: ro };
                let t = timeout_s.map(Duration::from_secs);
                prop_assert_eq!(e.publish(VOLUMES[v], NODES[n], access, t), m.publish(VOLUMES[v], NODES[n], access, t));
            }
            Op::Unpublish { v, n } => {
                let n = n.map(|n| NODES[n]);
                prop_assert_eq!(e.unpublish(VOLUMES[v], n), m.unpublish(VOLUMES[v], n));
            }
            Op::Grace { v, secs } => {
                let g = Duration::from_secs(secs);
                prop_assert_eq!(e.is_within_grace_period(VOLUMES[v], g), m.is_within_grace_period(VOLUMES[v], g));
            }
            Op::ClearStale { v, n } => {
                prop_assert_eq!(e.clear_stale(VOLUMES[v], NODES[n]), m.clear_stale(VOLUMES[v], NODES[n]));
            }
            Op::Reconcile { live } => {
                let live: Vec<&str> =
                    NODES.iter().enumerate().filter(|(i, _)| live & (1 << i) != 0).map(|(_, n)| *n).collect();
                prop_assert_eq!(e.reconcile(&live).unwrap(), m.reconcile(&live));
            }
            Op::Advance { millis } => self.clock.advance(Duration::from_millis(millis)),
            Op::SetGrace { secs } => {
                e.set_grace_period(Duration::from_secs(secs)).unwrap();
                m.set_grace_period(Duration::from_secs(secs));
            }
            Op::SnapshotRestore => {
                let json = e.snapshot_json();
                let fresh = Engine::with_config(e.config(), self.clock.clone()).unwrap();
                // A volume that reached the last epoch (u64::MAX - 1) can change no more; a
                // document holding it is refused, naming it, and every other state round-trips.
                // The same holds for the epoch floor a forget of such a volume left.
                let doc = e.snapshot();
                let stuck = if doc.epoch_floor == u64::MAX - 1 {
                    Some("epoch_floor".to_owned())
                } else {
                    doc.volumes.into_iter().find(|v| v.epoch == u64::MAX - 1).map(|v| v.volume)
                };
                match (fresh.restore_json(&json), stuck) {
                    (Ok(()), None) => {
                        prop_assert_eq!(fresh.snapshot_json(), json);
                        self.engine = fresh;
                    }
                    (Err(CoreError::BadSnapshot(SnapshotError::Inconsistent { subject, problem })), Some(v)) => {
                        prop_assert_eq!(subject, v);
                        prop_assert_eq!(problem, Inconsistency::EpochCannotGrow(u64::MAX - 1));
                    }
                    (got, stuck) => prop_assert!(false, "restore gave {:?} with stuck volume {:?}", got, stuck),
                }
            }
            Op::SetTerm { term } => prop_assert_eq!(e.set_term(term), m.set_term(term)),
            Op::Refence => prop_assert_eq!(e.refence(), m.refence()),
            Op::Forget { v } => prop_assert_eq!(e.forget(VOLUMES[v]), m.forget(VOLUMES[v])),
            Op::Fence { v } => prop_assert_eq!(e.fence(VOLUMES[v]).unwrap(), m.fence(VOLUMES[v])),
            Op::RestoreEdited { v, edit } => {
                let mut doc = e.snapshot();
                edited(&mut doc, VOLUMES[v], edit);
                prop_assert_eq!(e.restore(&doc), m.restore(&doc));
            }
        }
        self.same_state()
    }

    fn same_state(&self) -> Result<(), TestCaseError> {
        let engine: Vec<_> = self
            .engine
            .list()
            .into_iter()
            .map(|a| {
                let admitted = [Some(a.admitted.0), a.admitted.1];
                let nodes = a.nodes.iter().map(ToString::to_string).zip(admitted.into_iter().flatten()).collect();
                (a.volume, nodes, a.access, a.epoch)
            })
            .collect::<Vec<(String, Vec<(String, u64)>, Access, u64)>>();
        prop_assert_eq!(engine, self.model.attachments());
        for v in VOLUMES {
            prop_assert_eq!(self.engine.epoch(v).unwrap(), self.model.epoch(v));
            prop_assert_eq!(self.engine.fence(v).unwrap(), self.model.fence(v));
        }
        prop_assert_eq!(self.engine.term(), self.model.term());
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, max_shrink_iters: 4096, ..ProptestConfig::default() })]

    #[test]
    fn engine_agrees_with_the_reference_model(ops in prop::collection::vec(op(), 1..120)) {
        let mut pair = Pair::new();
        for op in &ops {
            pair.step(op)?;
        }
    }
}

/// Applies `edit` to `volume`'s entry of `doc` (or to the document), keeping it well formed.
fn edited(doc: &mut Snapshot, volume: &str, edit: Edit) {
    let entry = doc.volumes.iter_mut().find(|e| e.volume == volume);
    let set_epoch = |e: &mut tether_core::VolumeEntry, epoch: u64| {
        let epoch = epoch.max(u64::from(e.attachment.is_some()));
        e.epoch = epoch;
        if let Some(a) = e.attachment.as_mut() {
            a.admitted.iter_mut().for_each(|x| *x = (*x).min(epoch));
        }
    };
    match (edit, entry) {
        (Edit::Lower(by), Some(e)) => set_epoch(e, e.epoch.saturating_sub(by)),
        (Edit::Drop, Some(_)) => doc.volumes.retain(|e| e.volume != volume),
        (Edit::NearMax(k), Some(e)) => set_epoch(e, u64::MAX - 2 - k),
        (Edit::Term(t), _) => doc.term = doc.term.max(t),
        (_, None) => {}
    }
}
