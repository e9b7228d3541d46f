//! One test per row of DESIGN.md's tables (publish, unpublish, grace, stale, epochs, snapshot),
//! each named after its row and driven by the manual clock.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_core::{
    Access, AccessMode, Admission, Config, CoreError, Engine, Fence, Inconsistency, InputField, ManualClock, Nodes,
    Problem, Published, SnapshotError, StaleOutcome, UnpublishOutcome, MAX_ID_LEN,
};

const SEC: Duration = Duration::from_secs(1);
const RWO: Access = Access::RWO;
const RWX: Access = Access::RWX;

fn engine() -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)));
    let engine = Engine::with_config(Config::default(), clock.clone()).unwrap();
    (engine, clock)
}

fn nodes_of(e: &Engine, v: &str) -> Option<Vec<String>> {
    e.get(v).unwrap().map(|a| a.nodes.iter().map(ToString::to_string).collect())
}

fn attached(e: &Engine, v: &str, nodes: &[&str]) {
    assert_eq!(nodes_of(e, v), Some(nodes.iter().map(ToString::to_string).collect()), "nodes of {v}");
}

/// Attach to A, detach from A, re-attach A: the state of the handoff row.
fn late_reattach(e: &Engine, clock: &ManualClock) {
    e.publish("v", "a", RWO, None).unwrap();
    clock.advance(SEC);
    e.unpublish("v", Some("a")).unwrap();
    clock.advance(SEC);
    e.publish("v", "a", RWO, None).unwrap();
}

/// The fence `(epoch, access, [(node, admitted_at)])`.
fn fence(epoch: u64, access: Access, nodes: &[(&str, u64)]) -> Fence {
    let nodes = nodes.iter().map(|&(n, e)| Admission { node: n.into(), epoch: e }).collect();
    Fence::new(epoch, access, nodes).unwrap()
}

fn migrating(e: &Engine) {
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
}

// ---- publish table ----

#[test]
fn publish_not_attached_any_request_attaches() {
    for access in [RWO, RWX, RWO.readonly(), RWX.readonly()] {
        let (e, _) = engine();
        let out = e.publish("v", "a", access, None).unwrap();
        assert_eq!(out.kind, Published::Attached);
        assert_eq!(out.epoch, 1);
        attached(&e, "v", &["a"]);
        assert_eq!(e.get("v").unwrap().unwrap().access, access);
    }
}

#[test]
fn publish_same_node_same_mode_and_readonly_is_already_attached() {
    let (e, _) = engine();
    e.publish("v", "a", RWO.readonly(), None).unwrap();
    let out = e.publish("v", "a", RWO.readonly(), None).unwrap();
    assert_eq!(out.kind, Published::AlreadyAttached);
    assert_eq!(out.epoch, 1, "an idempotent publish changes no epoch");
    attached(&e, "v", &["a"]);
}

#[test]
fn publish_same_node_other_mode_or_readonly_is_incompatible() {
    for (first, second) in [(RWO, RWX), (RWO, RWO.readonly()), (RWX, RWO), (RWX.readonly(), RWX)] {
        let (e, _) = engine();
        e.publish("v", "a", first, None).unwrap();
        let err = e.publish("v", "a", second, None).unwrap_err();
        assert_eq!(
            err,
            CoreError::Incompatible { volume: "v".into(), node: "a".into(), existing: first, requested: second }
        );
        attached(&e, "v", &["a"]);
        assert_eq!(e.get("v").unwrap().unwrap().access, first, "state unchanged");
    }
}

#[test]
fn publish_rwo_late_reattach_within_grace_hands_off() {
    let (e, clock) = engine();
    late_reattach(&e, &clock);
    clock.advance(Duration::from_secs(27)); // 29 s after the detach: inside the 30 s grace
    let out = e.publish("v", "b", RWO, None).unwrap();
    assert_eq!(out.kind, Published::HandedOff { from: "a".into() });
    attached(&e, "v", &["b"]);
    assert_eq!(e.stats().handed_off, 1, "grace period used is counted");
    assert_eq!(e.detach_timestamp("v").unwrap(), None, "the detach record is consumed");
    assert!(!e.is_within_grace_period("v", Duration::from_secs(30)).unwrap());
}

#[test]
fn publish_rwo_handoff_needs_the_holder_to_be_the_detached_node() {
    // Detached from A, then legitimately attached to B: C is never handed the volume.
    let (e, clock) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.unpublish("v", Some("a")).unwrap();
    e.publish("v", "b", RWO, None).unwrap();
    clock.advance(SEC);
    let err = e.publish("v", "c", RWO, None).unwrap_err();
    assert!(matches!(err, CoreError::Conflict { ref attached_to, .. } if *attached_to == Nodes::one("b")));
    attached(&e, "v", &["b"]);
}

#[test]
fn publish_rwo_otherwise_is_conflict() {
    let (e, clock) = engine();
    late_reattach(&e, &clock);
    clock.advance(Duration::from_secs(29)); // exactly 30 s after the detach: the window is closed
    let err = e.publish("v", "b", RWO, None).unwrap_err();
    assert_eq!(err, CoreError::Conflict { volume: "v".into(), node: "b".into(), attached_to: Nodes::one("a") });
    assert!(err.to_string().contains("\"a\""), "the message names the holder: {err}");
    attached(&e, "v", &["a"]);
    assert_eq!(e.stats().conflicts, 1);
}

#[test]
fn publish_rwx_on_one_node_to_another_starts_migration() {
    let (e, _) = engine();
    e.publish("v", "a", RWX, None).unwrap();
    let out = e.publish("v", "b", RWX, Some(Duration::from_secs(120))).unwrap();
    assert_eq!(out.kind, Published::MigrationStarted { source: "a".into(), timeout: Duration::from_secs(120) });
    assert_eq!(out.epoch, 2);
    attached(&e, "v", &["a", "b"]);
    let m = e.get("v").unwrap().unwrap().migration.unwrap();
    assert_eq!((m.elapsed, m.timeout), (Duration::ZERO, Duration::from_secs(120)));
    assert_eq!(e.stats().active_migrations, 1);
}

#[test]
fn publish_rwx_migration_timeout_defaults_and_clamps() {
    let (e, _) = engine();
    // One-second resolution: a fraction of a second rounds up.
    for (asked, got) in [(None, 300), (Some(1_000), 30), (Some(7_200_000), 3600), (Some(90_500), 91)] {
        e.publish("v", "a", RWX, None).unwrap();
        let out = e.publish("v", "b", RWX, asked.map(Duration::from_millis)).unwrap();
        assert_eq!(out.kind, Published::MigrationStarted { source: "a".into(), timeout: Duration::from_secs(got) });
        e.unpublish("v", None).unwrap();
    }
}

#[test]
fn publish_rwx_on_two_nodes_to_a_third_is_migration_limit() {
    let (e, _) = engine();
    migrating(&e);
    let err = e.publish("v", "c", RWX, None).unwrap_err();
    assert_eq!(err, CoreError::MigrationLimit { volume: "v".into(), node: "c".into(), nodes: Nodes::two("a", "b") });
    attached(&e, "v", &["a", "b"]);
}

#[test]
fn publish_rwx_on_two_nodes_past_timeout_is_migration_timed_out_before_limit() {
    let (e, clock) = engine();
    migrating(&e);
    clock.advance(Duration::from_secs(301));
    let err = e.publish("v", "c", RWX, None).unwrap_err();
    assert_eq!(
        err,
        CoreError::MigrationTimedOut {
            volume: "v".into(),
            node: "c".into(),
            nodes: Nodes::two("a", "b"),
            elapsed: Duration::from_secs(301),
            timeout: Duration::from_secs(300),
        }
    );
    attached(&e, "v", &["a", "b"]);
}

#[test]
fn publish_rwx_to_rwo_or_rwo_to_rwx_is_conflict() {
    for (first, second) in [(RWX, RWO), (RWO, RWX)] {
        let (e, _) = engine();
        e.publish("v", "a", first, None).unwrap();
        let err = e.publish("v", "b", second, None).unwrap_err();
        assert!(matches!(err, CoreError::Conflict { ref attached_to, .. } if *attached_to == Nodes::one("a")));
        attached(&e, "v", &["a"]);
    }
}

#[test]
fn publish_republish_of_a_migration_side_is_already_attached() {
    let (e, _) = engine();
    migrating(&e);
    for n in ["a", "b"] {
        assert_eq!(e.publish("v", n, RWX, None).unwrap().kind, Published::AlreadyAttached);
    }
}

// ---- unpublish table ----

#[test]
fn unpublish_not_attached_or_not_to_node_is_not_attached() {
    let (e, _) = engine();
    assert_eq!(e.unpublish("never", Some("a")).unwrap(), UnpublishOutcome::NotAttached);
    assert_eq!(e.unpublish("never", None).unwrap(), UnpublishOutcome::NotAttached);
    e.publish("v", "a", RWO, None).unwrap();
    assert_eq!(e.unpublish("v", Some("b")).unwrap(), UnpublishOutcome::NotAttached);
    assert_eq!(e.unpublish("v", Some("unknown-node")).unwrap(), UnpublishOutcome::NotAttached);
    attached(&e, "v", &["a"]);
    assert_eq!(e.stats().not_attached, 4);
}

#[test]
fn unpublish_sole_node_detaches_and_writes_the_detach_record() {
    let (e, clock) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    clock.advance(SEC);
    let out = e.unpublish("v", Some("a")).unwrap();
    assert_eq!(out, UnpublishOutcome::Detached { nodes: Nodes::one("a"), epoch: 2, fence: fence(2, RWO, &[]) });
    assert_eq!(nodes_of(&e, "v"), None);
    clock.advance(SEC);
    let rec = e.detach_timestamp("v").unwrap().unwrap();
    assert_eq!((&*rec.node, rec.age), ("a", SEC));
    assert_eq!(rec.at, SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_001));
}

#[test]
fn unpublish_migration_source_completes_it() {
    let (e, clock) = engine();
    migrating(&e);
    clock.advance(Duration::from_secs(42));
    let out = e.unpublish("v", Some("a")).unwrap();
    assert_eq!(
        out,
        UnpublishOutcome::MigrationCompleted {
            source: "a".into(),
            target: "b".into(),
            duration: Duration::from_secs(42),
            epoch: 3,
            fence: fence(3, RWX, &[("b", 2)]),
        }
    );
    attached(&e, "v", &["b"]);
    assert_eq!(e.detach_timestamp("v").unwrap(), None, "only a full detach writes a record");
    assert_eq!((e.stats().migrations_completed, e.stats().active_migrations), (1, 0));
}

#[test]
fn unpublish_migration_target_aborts_it() {
    let (e, _) = engine();
    migrating(&e);
    let out = e.unpublish("v", Some("b")).unwrap();
    assert_eq!(
        out,
        UnpublishOutcome::MigrationAborted {
            source: "a".into(),
            target: "b".into(),
            epoch: 3,
            fence: fence(3, RWX, &[("a", 1)])
        }
    );
    attached(&e, "v", &["a"]);
    assert_eq!(e.detach_timestamp("v").unwrap(), None);
    assert_eq!((e.stats().migrations_aborted, e.stats().active_migrations), (1, 0));
}

#[test]
fn unpublish_without_node_detaches_every_node() {
    let (e, _) = engine();
    migrating(&e);
    let out = e.unpublish("v", None).unwrap();
    assert_eq!(out, UnpublishOutcome::Detached { nodes: Nodes::two("a", "b"), epoch: 3, fence: fence(3, RWO, &[]) });
    assert_eq!(nodes_of(&e, "v"), None);
    assert_eq!(&*e.detach_timestamp("v").unwrap().unwrap().node, "a");
    assert_eq!(e.stats().active_migrations, 0);
}

// ---- grace period ----

#[test]
fn grace_true_iff_last_full_detach_less_than_grace_ago() {
    let (e, clock) = engine();
    let grace = Duration::from_secs(30);
    assert!(!e.is_within_grace_period("v", grace).unwrap(), "never attached");
    e.publish("v", "a", RWO, None).unwrap();
    assert!(!e.is_within_grace_period("v", grace).unwrap(), "never detached");
    e.unpublish("v", Some("a")).unwrap();
    assert!(e.is_within_grace_period("v", grace).unwrap());
    clock.advance(Duration::from_secs(29));
    assert!(e.is_within_grace_period("v", grace).unwrap());
    clock.advance(SEC);
    assert!(!e.is_within_grace_period("v", grace).unwrap(), "exactly the grace period ago is outside");
    assert!(e.is_within_grace_period("v", Duration::from_secs(31)).unwrap());
}

#[test]
fn grace_clear_detach_timestamp_drops_the_record() {
    let (e, clock) = engine();
    late_reattach(&e, &clock);
    assert!(e.clear_detach_timestamp("v").unwrap());
    assert!(!e.clear_detach_timestamp("v").unwrap(), "second clear finds nothing");
    assert!(!e.is_within_grace_period("v", Duration::from_secs(30)).unwrap());
    assert!(matches!(e.publish("v", "b", RWO, None), Err(CoreError::Conflict { .. })), "no handoff without a record");
}

#[test]
fn grace_period_setting_changes_the_handoff_window_at_run_time() {
    let (e, clock) = engine();
    late_reattach(&e, &clock);
    clock.advance(Duration::from_secs(10));
    e.set_grace_period(Duration::from_secs(5)).unwrap();
    assert!(matches!(e.publish("v", "b", RWO, None), Err(CoreError::Conflict { .. })));
    e.set_grace_period(Duration::from_secs(60)).unwrap();
    assert!(matches!(e.publish("v", "b", RWO, None).unwrap().kind, Published::HandedOff { .. }));
    let err = e.set_grace_period(Duration::from_secs(3601)).unwrap_err();
    assert!(matches!(err, CoreError::InvalidInput(i) if i.field == InputField::GracePeriod));
    assert_eq!(e.config().grace_period, Duration::from_secs(60), "refused setting leaves the old one");
}

// ---- stale nodes ----

#[test]
fn stale_clear_is_compare_and_clear() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    e.unpublish("v", Some("a")).unwrap();
    e.publish("v", "b", RWO, None).unwrap();
    assert_eq!(e.clear_stale("v", "a").unwrap(), StaleOutcome::NotAttached, "never undoes a newer attachment");
    attached(&e, "v", &["b"]);
    assert_eq!(
        e.clear_stale("v", "b").unwrap(),
        StaleOutcome::Cleared { node: "b".into(), remaining: None, epoch: 4, fence: fence(4, RWO, &[]) }
    );
    assert_eq!(nodes_of(&e, "v"), None);
    assert_eq!(&*e.detach_timestamp("v").unwrap().unwrap().node, "a", "a stale clear writes no detach record");
}

#[test]
fn stale_clear_of_one_migration_side_keeps_the_other() {
    let (e, _) = engine();
    migrating(&e);
    assert_eq!(
        e.clear_stale("v", "a").unwrap(),
        StaleOutcome::Cleared {
            node: "a".into(),
            remaining: Some("b".into()),
            epoch: 3,
            fence: fence(3, RWX, &[("b", 2)])
        }
    );
    attached(&e, "v", &["b"]);
    assert_eq!(e.stats().active_migrations, 0);
}

#[test]
fn reconcile_clears_a_missing_node_only_after_the_grace_period() {
    let (e, clock) = engine();
    e.publish("v1", "gone", RWO, None).unwrap();
    e.publish("v2", "live", RWO, None).unwrap();
    let r = e.reconcile(&["live"]).unwrap();
    assert!(r.cleared.is_empty());
    assert_eq!(r.pending.len(), 1);
    assert_eq!(
        (&*r.pending[0].node, r.pending[0].volumes, r.pending[0].clears_in),
        ("gone", 1, Duration::from_secs(30))
    );
    clock.advance(Duration::from_secs(29));
    assert!(e.reconcile(&["live"]).unwrap().cleared.is_empty());
    attached(&e, "v1", &["gone"]);
    clock.advance(SEC);
    let r = e.reconcile(&["live"]).unwrap();
    assert_eq!(r.cleared.len(), 1);
    assert_eq!((r.cleared[0].volume.as_str(), &*r.cleared[0].node), ("v1", "gone"));
    assert_eq!(nodes_of(&e, "v1"), None);
    attached(&e, "v2", &["live"]);
    assert_eq!(e.stats().stale_cleared, 1);
}

#[test]
fn reconcile_node_back_before_grace_loses_nothing() {
    let (e, clock) = engine();
    e.publish("v", "flaky", RWO, None).unwrap();
    assert_eq!(e.reconcile::<&str>(&[]).unwrap().pending.len(), 1);
    clock.advance(Duration::from_secs(20));
    let r = e.reconcile(&["flaky"]).unwrap();
    assert_eq!(r.returned, vec!["flaky".into()] as Vec<tether_core::NodeName>);
    clock.advance(Duration::from_secs(20));
    let r = e.reconcile::<&str>(&[]).unwrap();
    assert!(r.cleared.is_empty(), "the missing clock restarted when the node came back");
    attached(&e, "v", &["flaky"]);
}

#[test]
fn reconcile_reports_a_timed_out_migration_once() {
    let (e, clock) = engine();
    migrating(&e);
    clock.advance(Duration::from_secs(300));
    assert!(e.reconcile(&["a", "b"]).unwrap().timed_out_migrations.is_empty(), "not older than its timeout yet");
    clock.advance(SEC);
    let r = e.reconcile(&["a", "b"]).unwrap();
    assert_eq!(r.timed_out_migrations.len(), 1);
    let t = &r.timed_out_migrations[0];
    assert_eq!((t.volume.as_str(), &*t.source, &*t.target), ("v", "a", "b"));
    assert!(e.reconcile(&["a", "b"]).unwrap().timed_out_migrations.is_empty(), "reported once");
    attached(&e, "v", &["a", "b"]);
    assert_eq!(e.stats().migrations_timed_out, 1);
}

// ---- epochs ----

#[test]
fn epoch_grows_on_every_node_set_change_and_survives_detach() {
    let (e, clock) = engine();
    let mut epochs = vec![e.epoch("v").unwrap()];
    e.publish("v", "a", RWX, None).unwrap();
    epochs.push(e.epoch("v").unwrap());
    e.publish("v", "b", RWX, None).unwrap(); // migration start
    epochs.push(e.epoch("v").unwrap());
    e.unpublish("v", Some("b")).unwrap(); // abort
    epochs.push(e.epoch("v").unwrap());
    e.publish("v", "b", RWX, None).unwrap();
    e.unpublish("v", Some("a")).unwrap(); // completion
    epochs.push(e.epoch("v").unwrap());
    e.unpublish("v", None).unwrap(); // detach
    epochs.push(e.epoch("v").unwrap());
    clock.advance(SEC);
    e.restore_json(&e.snapshot_json()).unwrap();
    epochs.push(e.epoch("v").unwrap());
    assert_eq!(epochs, vec![0, 1, 2, 3, 5, 6, 6]);
}

// ---- snapshot and restore ----

#[test]
fn snapshot_round_trip_keeps_attachments_detach_records_and_marks() {
    let (e, clock) = engine();
    migrating(&e);
    e.publish("w", "c", RWO.readonly(), None).unwrap();
    e.unpublish("w", Some("c")).unwrap();
    e.publish("x", "gone", RWO, None).unwrap();
    e.reconcile(&["a", "b", "c"]).unwrap();
    clock.advance(Duration::from_secs(10));
    let json = e.snapshot_json();

    let (f, fclock) = engine();
    fclock.advance(Duration::from_secs(10));
    f.restore_json(&json).unwrap();
    assert_eq!(f.list(), e.list());
    assert_eq!(f.detach_timestamp("w").unwrap(), e.detach_timestamp("w").unwrap());
    assert_eq!(f.snapshot(), e.snapshot());
    assert_eq!(f.stats().active_migrations, 1);
    fclock.advance(Duration::from_secs(20));
    assert_eq!(f.reconcile(&["a", "b", "c"]).unwrap().cleared.len(), 1, "the missing mark survived restore");
}

#[test]
fn snapshot_volume_entry_is_the_snapshots_entry_for_that_volume() {
    let (e, clock) = engine();
    migrating(&e);
    clock.advance(Duration::from_secs(301));
    e.reconcile(&["a", "b"]).unwrap();
    e.publish("w", "c", RWO, None).unwrap();
    e.unpublish("w", None).unwrap();
    let snapshot = e.snapshot();
    for entry in &snapshot.volumes {
        assert_eq!(e.volume_entry(&entry.volume).unwrap().as_ref(), Some(entry));
    }
    assert!(e.volume_entry("v").unwrap().unwrap().attachment.unwrap().timeout_reported);
    assert_eq!(e.volume_entry("never").unwrap(), None);
    assert!(matches!(e.volume_entry(""), Err(CoreError::InvalidInput(_))));
}

#[test]
fn snapshot_restore_refuses_unknown_version_and_malformed_text() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    let before = e.snapshot();
    let bad_version = e.snapshot_json().replace("\"version\":2", "\"version\":3");
    assert_eq!(
        e.restore_json(&bad_version).unwrap_err(),
        CoreError::BadSnapshot(SnapshotError::UnknownVersion { found: 3, supported: 2 })
    );
    let json = e.snapshot_json();
    let truncated = &json[..json.len() / 2];
    assert!(matches!(e.restore_json(truncated), Err(CoreError::BadSnapshot(SnapshotError::Malformed { .. }))));
    assert!(matches!(e.restore_json("{\"version\":1}"), Err(CoreError::BadSnapshot(SnapshotError::Malformed { .. }))));
    assert_eq!(e.snapshot(), before, "state untouched");
}

#[test]
fn snapshot_restore_refuses_impossible_states() {
    let doc = |attachment: &str| {
        format!(
            r#"{{"version":1,"taken_at_unix_nanos":0,"missing_nodes":[],
                "volumes":[{{"volume":"v","epoch":1,"attachment":{attachment}}}]}}"#
        )
    };
    let cases = [
        (
            doc(r#"{"mode":"RWO","readonly":false,"nodes":["a","b"],"since_unix_nanos":0}"#),
            Inconsistency::RwoOnTwoNodes,
        ),
        (
            doc(r#"{"mode":"RWX","readonly":false,"nodes":["a","b","c"],"since_unix_nanos":0}"#),
            Inconsistency::TooManyNodes(3),
        ),
        (
            doc(
                r#"{"mode":"RWX","readonly":false,"nodes":["a","a"],"since_unix_nanos":0,"migration_timeout_ms":60000}"#,
            ),
            Inconsistency::DuplicateNode,
        ),
        (doc(r#"{"mode":"RWO","readonly":false,"nodes":[],"since_unix_nanos":0}"#), Inconsistency::NoNodes),
        (
            doc(r#"{"mode":"RWO","readonly":false,"nodes":[""],"since_unix_nanos":0}"#),
            Inconsistency::Invalid(tether_core::InvalidInput { field: InputField::Node, problem: Problem::Empty }),
        ),
    ];
    for (json, problem) in cases {
        let (e, _) = engine();
        e.publish("keep", "a", RWO, None).unwrap();
        let err = e.restore_json(&json).unwrap_err();
        assert_eq!(err, CoreError::BadSnapshot(SnapshotError::Inconsistent { subject: "v".into(), problem }), "{json}");
        attached(&e, "keep", &["a"]);
    }
    let twice = r#"{"version":1,"taken_at_unix_nanos":0,"missing_nodes":[],
        "volumes":[{"volume":"v","epoch":1},{"volume":"v","epoch":2}]}"#;
    let (e, _) = engine();
    assert!(matches!(
        e.restore_json(twice),
        Err(CoreError::BadSnapshot(SnapshotError::Inconsistent { problem: Inconsistency::DuplicateVolume, .. }))
    ));
}

// ---- invalid input ----

#[test]
fn invalid_ids_are_refused_and_leave_state_untouched() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    let long = "x".repeat(MAX_ID_LEN + 1);
    let cases: [(&str, &str, InputField, Problem); 5] = [
        ("", "a", InputField::Volume, Problem::Empty),
        ("v", "", InputField::Node, Problem::Empty),
        ("v\0x", "a", InputField::Volume, Problem::ContainsNul { at: 1 }),
        (&long, "a", InputField::Volume, Problem::TooLong { len: MAX_ID_LEN + 1, max: MAX_ID_LEN }),
        ("v", &long, InputField::Node, Problem::TooLong { len: MAX_ID_LEN + 1, max: MAX_ID_LEN }),
    ];
    for (v, n, field, problem) in cases {
        let want = CoreError::InvalidInput(tether_core::InvalidInput { field, problem });
        assert_eq!(e.publish(v, n, RWO, None).unwrap_err(), want);
        assert_eq!(e.unpublish(v, Some(n)).unwrap_err(), want);
        assert_eq!(e.clear_stale(v, n).unwrap_err(), want);
    }
    assert!(e.is_within_grace_period("", SEC).is_err());
    assert!(e.reconcile(&["ok", ""]).is_err());
    assert_eq!(e.list().len(), 1);
    attached(&e, "v", &["a"]);
    assert_eq!(e.stats().invalid_input, 17);
    assert_eq!(e.stats().reconciles, 0, "a refused reconcile did not run");
    let max = "y".repeat(MAX_ID_LEN);
    assert_eq!(e.publish(&max, &max, RWO, None).unwrap().kind, Published::Attached, "exactly the limit is fine");
}

#[test]
fn access_mode_names_match_the_design() {
    assert_eq!(AccessMode::Rwo.to_string(), "RWO");
    assert_eq!(AccessMode::Rwx.to_string(), "RWX");
}
