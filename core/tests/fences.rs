//! What the contract corpus (tests/contract/) does not say about epochs, fences, restore and
//! lifetime: fence shapes a backend cannot hold, a restore of the same state or a lower term,
//! interned names after refused calls, and the handoff's evidence (`publish_with`). The rows of
//! DESIGN.md's sections themselves are scenarios there, run by `corpus.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_core::{
    Access, Admission, Config, CoreError, Engine, Fence, ManualClock, Nodes, Published, StaleOutcome, UnpublishOutcome,
};

const RWO: Access = Access::RWO;
const RWX: Access = Access::RWX;

fn engine() -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)));
    (Engine::with_config(Config::default(), clock.clone()).unwrap(), clock)
}

fn fence(epoch: u64, access: Access, nodes: &[(&str, u64)]) -> Fence {
    let nodes = nodes.iter().map(|&(n, e)| Admission { node: n.into(), epoch: e }).collect();
    Fence::new(epoch, access, nodes).unwrap()
}

fn fence_of(e: &Engine, v: &str) -> Fence {
    e.fence(v).unwrap().expect("tracked")
}

// ---- admission epochs ----

// ---- fences ----

#[test]
fn fence_shapes_a_backend_cannot_hold_are_refused() {
    let adm = |n: &str, e| Admission { node: n.into(), epoch: e };
    assert!(Fence::new(3, RWX, vec![adm("a", 1), adm("b", 2), adm("c", 3)]).is_err(), "three nodes");
    assert!(Fence::new(3, RWX, vec![adm("a", 1), adm("a", 2)]).is_err(), "a node twice");
    assert!(Fence::new(3, RWO, vec![adm("a", 4)]).is_err(), "admitted after the fence");
    assert!(Fence::new(3, RWO, vec![adm("a", 0)]).is_err(), "admitted at epoch 0");
}

// ---- the migration-target row ----

// ---- terms ----

// ---- checked epoch arithmetic ----

// ---- snapshot and restore ----

#[test]
fn restore_the_same_state_keeps_the_epoch() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.restore(&e.snapshot()).unwrap();
    assert_eq!(fence_of(&e, "v"), fence(1, RWO, &[("a", 1)]));
}

#[test]
fn restore_keeps_the_higher_term() {
    let (e, _) = engine();
    e.set_term(4).unwrap();
    let mut doc = e.snapshot();
    doc.term = 2;
    e.restore(&doc).unwrap();
    assert_eq!(e.term(), 4);
    doc.term = 6;
    e.restore(&doc).unwrap();
    assert_eq!(e.term(), 6);
}

#[test]
fn restore_a_refused_document_interns_no_node_name() {
    let (e, _) = engine();
    let before = e.interned_nodes();
    let doc = r#"{"version":2,"taken_at_unix_nanos":0,"missing_nodes":[{"node":"m1","since_unix_nanos":0}],
        "volumes":[{"volume":"v","epoch":1,"attachment":{"mode":"RWO","readonly":false,"nodes":["x","y"],
        "admitted":[1,1],"since_unix_nanos":0}}]}"#;
    assert!(e.restore_json(doc).is_err());
    assert_eq!(e.interned_nodes(), before);
}

// ---- lifetime and memory ----

#[test]
fn names_refused_and_invalid_calls_intern_no_node_name() {
    let (e, _) = engine();
    e.publish("v", "holder", RWO, None).unwrap();
    let before = e.interned_nodes();
    for i in 0..1000 {
        let made_up = format!("made-up-{i}");
        assert!(e.publish("v", &made_up, RWO, None).is_err());
        assert_eq!(e.unpublish("v", Some(&made_up)), Ok(UnpublishOutcome::NotAttached));
        assert_eq!(e.clear_stale("v", &made_up), Ok(StaleOutcome::NotAttached));
    }
    e.reconcile(&["holder", "made-up-x"]).unwrap();
    assert_eq!(e.interned_nodes(), before);
    e.publish("w", "admitted", RWO, None).unwrap();
    assert_eq!(e.interned_nodes(), before + 1, "an admitted name is interned");
}

// ---- counters: every migration ends exactly once ----

// ---- evidence beats timers ----

#[test]
fn evidence_the_grace_handoff_never_takes_a_volume_from_a_holder_shown_still_attached() {
    let (e, clock) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.unpublish("v", Some("a")).unwrap();
    e.publish("v", "a", RWO, None).unwrap(); // inside the grace window: a late re-attach by the timer
    clock.advance(Duration::from_secs(1));
    let asked = std::sync::Mutex::new(Vec::new());
    let refused = e
        .publish_with("v", "b", RWO, None, &|n| {
            asked.lock().unwrap().push(n.to_owned());
            n == "a"
        })
        .unwrap_err();
    assert!(matches!(refused, CoreError::Conflict { ref attached_to, .. } if *attached_to == Nodes::one("a")));
    assert_eq!(*asked.lock().unwrap(), ["a"], "asked about the holder only");
    assert_eq!(fence_of(&e, "v"), fence(3, RWO, &[("a", 3)]), "nothing changed");
    let out = e.publish_with("v", "b", RWO, None, &|_| false).unwrap();
    assert_eq!(out.kind, Published::HandedOff { from: "a".into() }, "without such evidence the grace rule applies");
}

#[test]
fn evidence_is_not_asked_outside_the_grace_window() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    let refused = e.publish_with("v", "b", RWO, None, &|_| panic!("no handoff is possible, nothing to ask"));
    assert!(matches!(refused, Err(CoreError::Conflict { .. })));
}
