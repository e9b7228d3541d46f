//! "Evidence beats timers" (DESIGN.md, Driver) as the engine applies it in `publish_with`:
//! a holder shown holding is never handed off by the grace rule; one shown released is cleared
//! (compare-and-clear) on a `Conflict` and the publish proceeds under the same guard, but a
//! migration at its limit or past its timeout stays refused; without evidence the timers decide.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{engine, fence, fence_of};
use tether_core::{
    Access, ClearedHolder, CoreError, Engine, Evidence, EvidencedPublish, ManualClock, Nodes, Published,
};

const RWO: Access = Access::RWO;
const RWX: Access = Access::RWX;

/// Evidence `released` for the named nodes, `Holds` for the others.
fn released(names: &'static [&'static str]) -> impl Fn(&str) -> Evidence {
    move |n| if names.contains(&n) { Evidence::Released } else { Evidence::Holds }
}

/// node-a attached, detached and attached again, one second ago: by the timer alone a late
/// re-attach inside the grace window.
fn late_reattach() -> (Engine, Arc<ManualClock>) {
    let (e, clock) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.unpublish("v", Some("a")).unwrap();
    e.publish("v", "a", RWO, None).unwrap();
    clock.advance(Duration::from_secs(1));
    (e, clock)
}

/// An RWX volume migrating from a to b (epochs 1 and 2).
fn migrating() -> (Engine, Arc<ManualClock>) {
    let (e, clock) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
    (e, clock)
}

#[test]
fn holds_the_grace_handoff_never_takes_a_volume_from_a_holder_shown_holding() {
    let (e, _) = late_reattach();
    let asked = Mutex::new(Vec::new());
    let out = e.publish_with("v", "b", RWO, None, &|n| {
        asked.lock().unwrap().push(n.to_owned());
        Evidence::Holds
    });
    assert!(matches!(out.outcome, Err(CoreError::Conflict { ref attached_to, .. }) if *attached_to == Nodes::one("a")));
    assert!(out.cleared.is_empty());
    assert!(asked.lock().unwrap().iter().all(|n| n == "a"), "asked about the holder only: {asked:?}");
    assert_eq!(fence_of(&e, "v"), fence(3, RWO, &[("a", 3)]), "nothing changed");
    let stats = e.stats();
    assert_eq!((stats.handed_off, stats.conflicts, stats.stale_cleared), (0, 1, 0));
}

#[test]
fn unknown_the_grace_rule_applies_as_without_evidence() {
    let (e, _) = late_reattach();
    let out = e.publish_with("v", "b", RWO, None, &|_| Evidence::Unknown);
    assert_eq!(out.outcome.unwrap().kind, Published::HandedOff { from: "a".into() });
    assert!(out.cleared.is_empty());
    assert_eq!(fence_of(&e, "v"), fence(4, RWO, &[("b", 4)]));
    assert_eq!(e.stats().handed_off, 1);
    // Outside the window, no evidence clears nothing: a plain conflict.
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    let out = e.publish_with("v", "b", RWO, None, &|_| Evidence::Unknown);
    assert!(matches!(out.outcome, Err(CoreError::Conflict { .. })));
    assert!(out.cleared.is_empty());
    assert_eq!(fence_of(&e, "v"), fence(1, RWO, &[("a", 1)]));
}

#[test]
fn released_an_orphan_is_cleared_on_a_conflict_and_the_publish_proceeds() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    let out = e.publish_with("v", "b", RWO, None, &released(&["a"]));
    let EvidencedPublish { outcome, cleared } = out;
    let outcome = outcome.expect("the orphan gives way");
    assert_eq!(outcome.kind, Published::Attached, "a clear, not a handoff");
    assert_eq!(cleared, [ClearedHolder { node: "a".into(), epoch: 2 }]);
    assert_eq!((outcome.epoch, outcome.admitted), (3, 3));
    assert_eq!(fence_of(&e, "v"), fence(3, RWO, &[("b", 3)]));
    assert!(e.detach_timestamp("v").unwrap().is_none(), "the orphan vanished; it did not detach");
    let stats = e.stats();
    assert_eq!((stats.stale_cleared, stats.attached, stats.conflicts, stats.handed_off), (1, 2, 0, 0));
}

#[test]
fn released_inside_the_grace_window_is_cleared_not_handed_off() {
    let (e, _) = late_reattach();
    let out = e.publish_with("v", "b", RWO, None, &released(&["a"]));
    assert_eq!(out.outcome.unwrap().kind, Published::Attached);
    assert_eq!(out.cleared, [ClearedHolder { node: "a".into(), epoch: 4 }]);
    assert_eq!(fence_of(&e, "v"), fence(5, RWO, &[("b", 5)]));
    let stats = e.stats();
    assert_eq!((stats.stale_cleared, stats.handed_off), (1, 0));
}

#[test]
fn released_on_a_node_that_does_not_refuse_the_publish_clears_nothing() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    // The requester's own re-publish is idempotent: no conflict, nothing to clear.
    let out = e.publish_with("v", "a", RWO, None, &|_| Evidence::Released);
    assert_eq!(out.outcome.unwrap().kind, Published::AlreadyAttached);
    assert!(out.cleared.is_empty());
    // Incompatible is not a conflict with another node.
    let out = e.publish_with("v", "a", Access::RWO.readonly(), None, &|_| Evidence::Released);
    assert!(matches!(out.outcome, Err(CoreError::Incompatible { .. })));
    assert!(out.cleared.is_empty());
    assert_eq!(fence_of(&e, "v"), fence(1, RWO, &[("a", 1)]));
    assert_eq!(e.stats().stale_cleared, 0);
}

#[test]
fn released_migration_limit_with_a_released_holder_stays_refused() {
    let (e, _) = migrating();
    let out = e.publish_with("v", "c", RWX, None, &released(&["a"]));
    assert!(matches!(out.outcome, Err(CoreError::MigrationLimit { .. })), "{:?}", out.outcome);
    assert!(out.cleared.is_empty());
    assert_eq!(fence_of(&e, "v"), fence(2, RWX, &[("a", 1), ("b", 2)]));
    assert_eq!((e.stats().stale_cleared, e.stats().active_migrations), (0, 1));
}

#[test]
fn released_migration_past_its_timeout_with_a_released_holder_stays_refused() {
    let (e, clock) = migrating();
    clock.advance(Duration::from_secs(301));
    let out = e.publish_with("v", "c", RWX, None, &released(&["a", "b"]));
    assert!(matches!(out.outcome, Err(CoreError::MigrationTimedOut { .. })), "{:?}", out.outcome);
    assert!(out.cleared.is_empty());
    assert_eq!(fence_of(&e, "v"), fence(2, RWX, &[("a", 1), ("b", 2)]));
}

#[test]
fn released_a_clear_stands_when_another_holder_still_refuses() {
    let (e, _) = migrating();
    // An RWO request conflicts with the RWX volume: a (released) is cleared, b still refuses.
    let out = e.publish_with("v", "c", RWO, None, &released(&["a"]));
    assert!(matches!(out.outcome, Err(CoreError::Conflict { ref attached_to, .. }) if *attached_to == Nodes::one("b")));
    assert_eq!(out.cleared, [ClearedHolder { node: "a".into(), epoch: 3 }]);
    assert_eq!(fence_of(&e, "v"), fence(3, RWX, &[("b", 2)]));
    let stats = e.stats();
    assert_eq!((stats.stale_cleared, stats.migrations_cleared, stats.active_migrations, stats.conflicts), (1, 1, 0, 1));
}

#[test]
fn released_every_holder_cleared_then_attached_alone() {
    let (e, _) = migrating();
    let out = e.publish_with("v", "c", RWO, None, &released(&["a", "b"]));
    assert_eq!(out.outcome.unwrap().kind, Published::Attached);
    let cleared: Vec<_> = out.cleared.iter().map(|c| (&*c.node, c.epoch)).collect();
    assert_eq!(cleared, [("a", 3), ("b", 4)]);
    assert_eq!(fence_of(&e, "v"), fence(5, RWO, &[("c", 5)]));
    let stats = e.stats();
    assert_eq!((stats.stale_cleared, stats.migrations_cleared, stats.active_migrations), (2, 1, 0));
}

#[test]
fn publish_without_evidence_is_publish_with_unknown() {
    let (with, _) = late_reattach();
    let (without, _) = late_reattach();
    let a = with.publish_with("v", "b", RWO, None, &|_| Evidence::Unknown).outcome.unwrap();
    let b = without.publish("v", "b", RWO, None).unwrap();
    assert_eq!(a, b);
    assert_eq!(with.snapshot().volumes, without.snapshot().volumes);
}
