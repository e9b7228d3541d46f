//! One test per new or changed row of DESIGN.md's "Epochs, admissions and fences", "Snapshot
//! and restore" and "Lifetime and memory" sections, each named after its row, on the manual
//! clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_core::{
    Access, Admission, Config, CoreError, Engine, Fence, Inconsistency, InputField, ManualClock, Nodes, Problem,
    Published, Snapshot, SnapshotError, StaleOutcome, UnpublishOutcome, MAX_TERM,
};

const RWO: Access = Access::RWO;
const RWX: Access = Access::RWX;
const T1: u64 = 1 << 32;

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

fn unpublish_fence(out: UnpublishOutcome) -> Fence {
    match out {
        UnpublishOutcome::Detached { fence, .. }
        | UnpublishOutcome::MigrationCompleted { fence, .. }
        | UnpublishOutcome::MigrationAborted { fence, .. } => fence,
        UnpublishOutcome::NotAttached => panic!("nothing changed"),
    }
}

// ---- admission epochs ----

#[test]
fn admission_a_publish_returns_the_epoch_and_the_nodes_admission_epoch() {
    let (e, _) = engine();
    let out = e.publish("v", "a", RWX, None).unwrap();
    assert_eq!((out.epoch, out.admitted), (1, 1));
    assert_eq!(out.fence, fence(1, RWX, &[("a", 1)]));
    let target = e.publish("v", "b", RWX, None).unwrap();
    assert_eq!((target.epoch, target.admitted), (2, 2));
}

#[test]
fn admission_an_idempotent_republish_returns_the_same_admission_epoch() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
    let again = e.publish("v", "a", RWX, None).unwrap();
    assert_eq!(again.kind, Published::AlreadyAttached);
    assert_eq!((again.epoch, again.admitted), (2, 1), "the source keeps the epoch that admitted it");
}

#[test]
fn admission_stays_fixed_while_the_node_stays_attached() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
    e.unpublish("v", Some("b")).unwrap(); // abort: the source stays
    e.publish("v", "c", RWX, None).unwrap();
    e.unpublish("v", Some("a")).unwrap(); // completion: the target stays
    let a = e.get("v").unwrap().unwrap();
    assert_eq!((a.nodes, a.epoch, a.admitted), (Nodes::one("c"), 5, (4, None)));
}

// ---- fences ----

#[test]
fn fence_during_a_migration_admits_both_nodes() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    let out = e.publish("v", "b", RWX, None).unwrap();
    assert_eq!(out.fence, fence(2, RWX, &[("a", 1), ("b", 2)]));
    assert_eq!(fence_of(&e, "v"), out.fence);
}

#[test]
fn fence_after_completion_admits_only_the_target() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
    assert_eq!(unpublish_fence(e.unpublish("v", Some("a")).unwrap()), fence(3, RWX, &[("b", 2)]));
}

#[test]
fn fence_after_an_abort_admits_only_the_source() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
    assert_eq!(unpublish_fence(e.unpublish("v", Some("b")).unwrap()), fence(3, RWX, &[("a", 1)]));
}

#[test]
fn fence_after_a_detach_admits_nobody() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
    let after = unpublish_fence(e.unpublish("v", None).unwrap());
    assert!(after.is_empty());
    assert_eq!(after.epoch, 3);
}

#[test]
fn fence_after_a_handoff_admits_only_the_new_holder() {
    let (e, clock) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.unpublish("v", Some("a")).unwrap();
    e.publish("v", "a", RWO, None).unwrap(); // late re-attach inside the grace period
    clock.advance(Duration::from_secs(1));
    let out = e.publish("v", "b", RWO, None).unwrap();
    assert_eq!(out.kind, Published::HandedOff { from: "a".into() });
    assert_eq!(out.fence, fence(4, RWO, &[("b", 4)]));
}

#[test]
fn fence_after_a_stale_clear_admits_the_node_left() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
    let StaleOutcome::Cleared { fence: after, .. } = e.clear_stale("v", "a").unwrap() else { panic!("cleared") };
    assert_eq!(after, fence(3, RWX, &[("b", 2)]));
}

#[test]
fn fence_of_an_untracked_volume_is_none_and_an_invalid_id_is_refused() {
    let (e, _) = engine();
    assert_eq!(e.fence("never").unwrap(), None);
    assert!(matches!(e.fence(""), Err(CoreError::InvalidInput(i)) if i.field == InputField::Volume));
}

#[test]
fn fence_target_rule_applies_only_a_higher_epoch() {
    let newer = fence(5, RWO, &[("a", 5)]);
    assert_eq!(newer.check_supersedes("v", None), Ok(()));
    assert_eq!(newer.check_supersedes("v", Some(4)), Ok(()));
    for applied in [5, 6] {
        assert_eq!(
            newer.check_supersedes("v", Some(applied)),
            Err(CoreError::StaleFence { volume: "v".into(), epoch: 5, applied })
        );
    }
}

#[test]
fn fence_session_rule_needs_the_node_in_the_fence_at_or_above_its_admission() {
    let f = fence(7, RWX, &[("a", 3), ("b", 7)]);
    assert_eq!(f.check_session("v", "a", 3), Ok(()), "the older source is still in");
    assert_eq!(f.check_session("v", "b", 9), Ok(()));
    let refused = f.check_session("v", "b", 6).unwrap_err();
    assert_eq!(
        refused,
        CoreError::NotAdmitted {
            volume: "v".into(),
            node: "b".into(),
            presented: 6,
            admitted: Some(7),
            fence_epoch: 7
        }
    );
    assert!(refused.to_string().contains("admitted it at epoch 7"), "{refused}");
    let outside = f.check_session("v", "c", 100).unwrap_err();
    assert!(matches!(outside, CoreError::NotAdmitted { admitted: None, .. }), "{outside}");
}

#[test]
fn fence_shapes_a_backend_cannot_hold_are_refused() {
    let adm = |n: &str, e| Admission { node: n.into(), epoch: e };
    assert!(Fence::new(3, RWX, vec![adm("a", 1), adm("b", 2), adm("c", 3)]).is_err(), "three nodes");
    assert!(Fence::new(3, RWX, vec![adm("a", 1), adm("a", 2)]).is_err(), "a node twice");
    assert!(Fence::new(3, RWO, vec![adm("a", 4)]).is_err(), "admitted after the fence");
    assert!(Fence::new(3, RWO, vec![adm("a", 0)]).is_err(), "admitted at epoch 0");
}

// ---- the migration-target row ----

#[test]
fn publish_rwx_target_with_another_read_only_flag_is_conflict() {
    for (held, asked) in [(RWX, RWX.readonly()), (RWX.readonly(), RWX)] {
        let (e, _) = engine();
        e.publish("v", "a", held, None).unwrap();
        let err = e.publish("v", "b", asked, None).unwrap_err();
        assert_eq!(err, CoreError::Conflict { volume: "v".into(), node: "b".into(), attached_to: Nodes::one("a") });
        assert_eq!(fence_of(&e, "v"), fence(1, held, &[("a", 1)]), "state unchanged");
    }
}

// ---- terms ----

#[test]
fn term_a_change_after_set_term_issues_at_least_term_shifted_by_32() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    assert_eq!(e.set_term(3).unwrap(), 3);
    let out = e.unpublish("v", None).unwrap();
    assert_eq!(unpublish_fence(out).epoch, 3 << 32);
    assert_eq!(e.publish("v", "a", RWO, None).unwrap().epoch, (3 << 32) + 1, "then by one within the term");
    assert_eq!(e.publish("w", "a", RWO, None).unwrap().epoch, 3 << 32, "a new volume starts at the term");
}

#[test]
fn term_never_goes_down_and_a_term_above_the_limit_is_refused() {
    let (e, _) = engine();
    e.set_term(5).unwrap();
    assert_eq!(e.set_term(2).unwrap(), 5, "a lower term leaves it as it is");
    let err = e.set_term(MAX_TERM + 1).unwrap_err();
    assert!(matches!(err, CoreError::InvalidInput(i) if i.field == InputField::Term
        && i.problem == Problem::TooLarge { value: MAX_TERM + 1, max: MAX_TERM }));
    assert_eq!(e.term(), 5);
    assert_eq!(e.set_term(MAX_TERM).unwrap(), MAX_TERM, "the largest term still fits an epoch");
}

#[test]
fn term_refence_raises_every_epoch_keeping_nodes_and_admissions() {
    let (e, _) = engine();
    e.publish("m", "a", RWX, None).unwrap();
    e.publish("m", "b", RWX, None).unwrap();
    e.publish("d", "a", RWO, None).unwrap();
    e.unpublish("d", None).unwrap();
    e.set_term(1).unwrap();
    let fences = e.refence();
    let by_volume: Vec<(&str, &Fence)> = fences.iter().map(|f| (f.volume.as_str(), &f.fence)).collect();
    assert_eq!(by_volume, [("d", &Fence::empty(T1, RWO)), ("m", &fence(T1, RWX, &[("a", 1), ("b", 2)]))]);
    assert_eq!(e.get("m").unwrap().unwrap().nodes, Nodes::two("a", "b"));
    assert_eq!(e.stats().refenced, 2);
    let again = e.refence();
    assert_eq!(again[1].fence.epoch, T1 + 1, "a second re-fence in the same term still raises");
}

#[test]
fn term_a_late_update_of_the_old_term_is_refused_by_the_target_after_the_refence() {
    let (e, _) = engine();
    let old = e.publish("v", "a", RWO, None).unwrap().fence; // issued under term 0
    e.set_term(1).unwrap();
    let refenced = e.refence().remove(0).fence;
    assert_eq!(refenced.check_supersedes("v", Some(old.epoch)), Ok(()));
    assert!(matches!(old.check_supersedes("v", Some(refenced.epoch)), Err(CoreError::StaleFence { .. })));
}

// ---- checked epoch arithmetic ----

/// An engine whose volume "v" is attached to "a" at `epoch`, restored from a document.
fn at_epoch(epoch: u64) -> Engine {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    let mut doc = e.snapshot();
    doc.volumes[0].epoch = epoch;
    let (f, _) = engine();
    f.restore(&doc).unwrap();
    f
}

#[test]
fn epoch_that_cannot_grow_is_refused_never_wrapped() {
    let e = at_epoch(u64::MAX - 1);
    let refused = CoreError::EpochExhausted { volume: "v".into(), epoch: u64::MAX - 1 };
    assert_eq!(e.unpublish("v", None), Err(refused.clone()));
    assert_eq!(e.clear_stale("v", "a"), Err(refused.clone()));
    assert_eq!(e.refence(), vec![], "left out of a re-fence");
    assert_eq!(fence_of(&e, "v"), fence(u64::MAX - 1, RWO, &[("a", 1)]), "state unchanged");
    assert!(refused.to_string().contains("cannot grow"), "{refused}");
    assert_eq!(e.stats().epoch_exhausted, 2);
}

#[test]
fn epoch_one_below_the_last_still_changes_once() {
    let e = at_epoch(u64::MAX - 2);
    assert_eq!(unpublish_fence(e.unpublish("v", None).unwrap()).epoch, u64::MAX - 1);
    assert!(matches!(e.publish("v", "a", RWO, None), Err(CoreError::EpochExhausted { .. })));
    assert_eq!(e.fence("v").unwrap().unwrap().len(), 0, "the refused publish admitted nobody");
}

// ---- snapshot and restore ----

#[test]
fn restore_a_lower_document_epoch_is_raised_above_the_live_one() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.unpublish("v", None).unwrap(); // epoch 2
    let mut doc = e.snapshot();
    doc.volumes[0].epoch = 1;
    e.restore(&doc).unwrap();
    assert_eq!(e.epoch("v").unwrap(), 3, "2 -> 3, never 2 -> 1");
}

#[test]
fn restore_the_same_state_keeps_the_epoch() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.restore(&e.snapshot()).unwrap();
    assert_eq!(fence_of(&e, "v"), fence(1, RWO, &[("a", 1)]));
}

#[test]
fn restore_a_volume_the_document_drops_keeps_its_epoch_as_the_floor() {
    let (e, _) = engine();
    let empty = e.snapshot();
    e.publish("v", "a", RWO, None).unwrap();
    e.unpublish("v", None).unwrap();
    e.restore(&empty).unwrap();
    assert_eq!(e.fence("v").unwrap(), None, "gone");
    assert_eq!(e.publish("v", "a", RWO, None).unwrap().epoch, 3, "recreated above the dropped epoch 2");
    assert_eq!(e.snapshot().epoch_floor, 2);
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
fn restore_refuses_an_epoch_that_cannot_grow_a_term_too_large_and_times_far_ahead() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    let good = e.snapshot();
    let inconsistent = |f: &dyn Fn(&mut Snapshot)| {
        let mut doc = good.clone();
        f(&mut doc);
        match e.restore(&doc).unwrap_err() {
            CoreError::BadSnapshot(SnapshotError::Inconsistent { problem, .. }) => problem,
            other => panic!("{other}"),
        }
    };
    assert_eq!(inconsistent(&|d| d.volumes[0].epoch = u64::MAX), Inconsistency::EpochCannotGrow(u64::MAX));
    assert_eq!(inconsistent(&|d| d.term = MAX_TERM + 1), Inconsistency::TermTooLarge(MAX_TERM + 1));
    let two_hours = 7_200_000_000_000;
    let ahead = inconsistent(&|d| d.volumes[0].attachment.as_mut().unwrap().since_unix_nanos += two_hours);
    assert!(matches!(ahead, Inconsistency::FutureTime { what: "since_unix_nanos", .. }), "{ahead}");
    let ahead = inconsistent(&|d| d.taken_at_unix_nanos += two_hours);
    assert!(matches!(ahead, Inconsistency::FutureTime { what: "taken_at_unix_nanos", .. }), "{ahead}");
    let bad = inconsistent(&|d| d.volumes[0].attachment.as_mut().unwrap().admitted = vec![2]);
    assert!(matches!(bad, Inconsistency::BadAdmissions { epoch: 1, .. }), "an admission above the epoch: {bad}");
    let bad = inconsistent(&|d| d.volumes[0].attachment.as_mut().unwrap().admitted = vec![1, 1]);
    assert!(matches!(bad, Inconsistency::BadAdmissions { .. }), "one admission per node: {bad}");
    assert_eq!(e.snapshot(), good, "every refusal left the state as it was");
}

#[test]
fn restore_a_version_1_document_takes_each_node_as_admitted_at_the_volume_epoch() {
    let (e, _) = engine();
    let v1 = r#"{"version":1,"taken_at_unix_nanos":1764000000000000000,"missing_nodes":[],
        "volumes":[{"volume":"v","epoch":4,"attachment":{"mode":"RWX","readonly":false,"nodes":["a","b"],
        "since_unix_nanos":1764000000000000000,"migration_timeout_ms":60000}}]}"#;
    e.restore_json(v1).unwrap();
    assert_eq!(fence_of(&e, "v"), fence(4, RWX, &[("a", 4), ("b", 4)]));
    assert_eq!(e.snapshot().version, 2, "written back in the current format");
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
fn forget_drops_an_unattached_volume_and_a_recreated_one_starts_above_it() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.unpublish("v", None).unwrap();
    assert_eq!(e.forget("v"), Ok(true));
    assert_eq!(e.fence("v").unwrap(), None);
    assert_eq!(e.detach_timestamp("v").unwrap(), None, "its detach record went with it");
    assert_eq!(e.forget("v"), Ok(false), "nothing left to forget");
    assert_eq!(e.publish("v", "b", RWO, None).unwrap().epoch, 3, "above the forgotten epoch 2");
    assert_eq!(e.stats().forgotten, 1);
}

#[test]
fn forget_refuses_an_attached_volume_naming_its_nodes() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
    let err = e.forget("v").unwrap_err();
    assert_eq!(err, CoreError::StillAttached { volume: "v".into(), nodes: Nodes::two("a", "b") });
    assert!(err.to_string().contains("unpublish it"), "{err}");
    assert_eq!(fence_of(&e, "v").len(), 2, "still there");
}

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

#[test]
fn counters_a_migration_ended_by_a_full_detach_or_a_stale_clear_is_counted() {
    let (e, _) = engine();
    for v in ["d", "s"] {
        e.publish(v, "a", RWX, None).unwrap();
        e.publish(v, "b", RWX, None).unwrap();
    }
    e.unpublish("d", None).unwrap();
    e.clear_stale("s", "b").unwrap();
    let st = e.stats();
    assert_eq!(
        (st.migrations_started, st.migrations_detached, st.migrations_cleared, st.active_migrations),
        (2, 1, 1, 0)
    );
}

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
