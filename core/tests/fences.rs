//! What the contract corpus (tests/contract/) does not say about epochs, fences, restore and
//! lifetime: fence shapes a backend cannot hold, a restore of the same state or a lower term,
//! interned names after refused calls. The handoff's evidence (`publish_with`) is `evidence.rs`.
//! The rows of DESIGN.md's sections themselves are scenarios there, run by `corpus.rs`.

mod common;

use common::{engine, fence, fence_of};
use tether_core::{Access, Admission, Fence, StaleOutcome, UnpublishOutcome};

const RWO: Access = Access::RWO;
const RWX: Access = Access::RWX;

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
