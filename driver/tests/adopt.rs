//! Adopting Kubernetes' record of attached volumes as the engine's truth: `adopt::plan` rule by
//! rule (engine snapshot in, snapshot that restores out), and `Driver::adopt` end to end with the
//! fail-closed phase before it.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::{assert_code, epoch_of, nth, Harness, GRACE};
use tether_core::{Access, Config, Engine, ManualClock, Published, StaleOutcome};
use tether_driver::adopt::{plan, AdoptReport, Observed, ObservedNode, ObservedVolume};
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::csi::{ControllerUnpublishVolumeRequest, CreateVolumeRequest, DeleteVolumeRequest};
use tether_driver::events::Reason;
use tonic::Code;

/// The wall-clock time at which every engine's manual clock starts.
fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_hours(490_000)
}

/// `secs` after [`t0`].
fn at(secs: u64) -> SystemTime {
    t0() + Duration::from_secs(secs)
}

/// The migration timeout `plan` is given for every volume in these tests.
const TIMEOUT: Duration = Duration::from_mins(2);

struct Fixture {
    clock: Arc<ManualClock>,
    engine: Engine,
}

/// An engine on a manual clock at [`t0`], moved 1000 s on so that observed times are in the past.
fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::with_wall_time(t0()));
    let engine = Engine::with_config(Config::default(), clock.clone()).unwrap();
    clock.advance(Duration::from_secs(1000));
    Fixture { clock, engine }
}

impl Fixture {
    /// Plans against the engine's own snapshot and restores the result, which must be accepted.
    fn adopt(&self, observed: &Observed) -> AdoptReport {
        self.adopt_with(observed, |_| TIMEOUT)
    }

    fn adopt_with(&self, observed: &Observed, timeout_for: impl Fn(&str) -> Duration) -> AdoptReport {
        let (snapshot, report) = plan(&self.engine.snapshot(), observed, timeout_for).expect("the plan is accepted");
        self.engine.restore(&snapshot).expect("the engine accepts the planned snapshot");
        report
    }

    fn nodes(&self, volume: &str) -> Vec<String> {
        self.engine.get(volume).unwrap().map(|a| a.nodes.iter().map(ToString::to_string).collect()).unwrap_or_default()
    }

    fn epoch(&self, volume: &str) -> u64 {
        self.engine.epoch(volume).unwrap()
    }

    fn publish(&self, volume: &str, node: &str, access: Access) {
        self.engine.publish(volume, node, access, None).unwrap();
    }
}

/// One observed volume: nodes with the second (after [`t0`]) their record was made.
fn seen(access: Access, nodes: &[(&str, u64)], epoch_floor: u64) -> ObservedVolume {
    ObservedVolume {
        access,
        nodes: nodes.iter().map(|(n, s)| ObservedNode { node: (*n).to_owned(), since: at(*s) }).collect(),
        epoch_floor,
    }
}

fn observed(volumes: impl IntoIterator<Item = (&'static str, ObservedVolume)>) -> Observed {
    volumes.into_iter().map(|(v, o)| (v.to_owned(), o)).collect()
}

fn refused_nodes(report: &AdoptReport) -> Vec<(&str, &str)> {
    report.refused.iter().map(|r| (r.volume.as_str(), r.node.as_str())).collect()
}

// ---------------------------------------------------------------------------------------------
// adopt::plan
// ---------------------------------------------------------------------------------------------

#[test]
fn a_volume_unknown_to_the_engine_is_adopted_at_epoch_floor_plus_one() {
    for (floor, access) in [(0, Access::RWO), (7, Access::RWO), (41, Access::RWO.readonly()), (3, Access::RWX)] {
        let f = fixture();
        let report = f.adopt(&observed([("pvc-new", seen(access, &[("node-a", 100)], floor))]));
        assert_eq!(report.adopted, ["pvc-new"], "floor {floor}");
        assert_eq!((report.unchanged, report.dropped.len(), report.refused.len()), (0, 0, 0));
        let a = f.engine.get("pvc-new").unwrap().expect("adopted");
        assert_eq!(a.epoch, floor + 1, "floor {floor}");
        assert_eq!(f.epoch("pvc-new"), floor + 1);
        assert_eq!(a.access, access);
        assert_eq!(f.nodes("pvc-new"), ["node-a"]);
        assert_eq!(a.since, at(100), "the attachment dates from its record");
        assert!(a.migration.is_none());
    }
}

#[test]
fn the_same_nodes_as_the_engine_leave_the_volume_unchanged() {
    let f = fixture();
    f.publish("pvc-rwo", "node-a", Access::RWO);
    f.publish("pvc-mig", "node-a", Access::RWX);
    f.engine.publish("pvc-mig", "node-b", Access::RWX, Some(Duration::from_mins(10))).unwrap();
    f.clock.advance(Duration::from_secs(50));
    let before = (f.engine.get("pvc-rwo").unwrap(), f.engine.get("pvc-mig").unwrap());
    // Other record times, other order, a floor below the engine's epoch: still the same nodes.
    let report = f.adopt(&observed([
        ("pvc-rwo", seen(Access::RWO, &[("node-a", 10)], 1)),
        ("pvc-mig", seen(Access::RWX, &[("node-b", 5), ("node-a", 900)], 0)),
    ]));
    assert_eq!(report, AdoptReport { unchanged: 2, ..AdoptReport::default() });
    assert_eq!((f.engine.get("pvc-rwo").unwrap(), f.engine.get("pvc-mig").unwrap()), before);
    assert_eq!(f.nodes("pvc-mig"), ["node-a", "node-b"], "the engine's source stays the source");
    let mig = f.engine.get("pvc-mig").unwrap().unwrap().migration.unwrap();
    assert_eq!(mig.timeout, Duration::from_mins(10), "the engine's timeout, not timeout_for's");
    assert_eq!(mig.elapsed, Duration::from_secs(50), "the migration clock keeps running from its start");
    assert_eq!(f.engine.stats().active_migrations, 1);
}

#[test]
fn an_unchanged_migration_keeps_its_timeout_reported_once() {
    let f = fixture();
    f.publish("pvc-mig", "node-a", Access::RWX);
    f.publish("pvc-mig", "node-b", Access::RWX);
    f.clock.advance(tether_core::DEFAULT_MIGRATION_TIMEOUT + Duration::from_secs(1));
    let first = f.engine.reconcile(&["node-a", "node-b"]).unwrap();
    assert_eq!(first.timed_out_migrations.len(), 1);
    let report = f.adopt(&observed([("pvc-mig", seen(Access::RWX, &[("node-a", 1), ("node-b", 2)], 0))]));
    assert_eq!(report.unchanged, 1);
    let again = f.engine.reconcile(&["node-a", "node-b"]).unwrap();
    assert!(again.timed_out_migrations.is_empty(), "reported again after adopt: {again:?}");
}

#[test]
fn a_different_node_is_adopted_and_the_epoch_grows() {
    // (engine epoch before, observed floor, epoch after)
    for (floor, expected) in [(0, 4), (2, 4), (3, 4), (10, 11)] {
        let f = fixture();
        f.publish("pvc-1", "node-a", Access::RWO);
        f.engine.unpublish("pvc-1", Some("node-a")).unwrap();
        f.publish("pvc-1", "node-a", Access::RWO);
        assert_eq!(f.epoch("pvc-1"), 3);
        let report = f.adopt(&observed([("pvc-1", seen(Access::RWO, &[("node-b", 100)], floor))]));
        assert_eq!(report.adopted, ["pvc-1"], "floor {floor}");
        assert_eq!(report.unchanged, 0);
        assert_eq!(f.nodes("pvc-1"), ["node-b"], "floor {floor}");
        assert_eq!(f.epoch("pvc-1"), expected, "floor {floor}");
        // The adopted holder is enforced: the old one is refused now.
        assert!(f.engine.publish("pvc-1", "node-a", Access::RWO, None).is_err());
    }
}

#[test]
fn a_changed_mode_on_the_same_node_is_adopted() {
    let f = fixture();
    f.publish("pvc-1", "node-a", Access::RWO);
    let report = f.adopt(&observed([("pvc-1", seen(Access::RWO.readonly(), &[("node-a", 100)], 0))]));
    assert_eq!(report.adopted, ["pvc-1"]);
    let a = f.engine.get("pvc-1").unwrap().unwrap();
    assert_eq!((a.access, a.epoch), (Access::RWO.readonly(), 2));
}

#[test]
fn an_attached_volume_absent_from_observed_is_dropped_keeping_its_detach_record() {
    let f = fixture();
    f.publish("pvc-gone", "node-a", Access::RWO);
    f.engine.unpublish("pvc-gone", Some("node-a")).unwrap();
    let detached = f.engine.detach_timestamp("pvc-gone").unwrap().unwrap();
    f.clock.advance(Duration::from_secs(5));
    f.publish("pvc-gone", "node-b", Access::RWO);
    // A volume detached before adopting is not attached: nothing to drop.
    f.publish("pvc-idle", "node-c", Access::RWO);
    f.engine.unpublish("pvc-idle", None).unwrap();
    assert_eq!((f.epoch("pvc-gone"), f.epoch("pvc-idle")), (3, 2));

    let report = f.adopt(&Observed::new());
    assert_eq!(report.dropped, ["pvc-gone"]);
    assert!(report.adopted.is_empty() && report.refused.is_empty());
    assert_eq!(report.unchanged, 0);
    assert!(f.engine.get("pvc-gone").unwrap().is_none());
    assert_eq!(f.epoch("pvc-gone"), 4, "dropping is a change of nodes");
    assert_eq!(f.epoch("pvc-idle"), 2);
    let kept = f.engine.detach_timestamp("pvc-gone").unwrap().expect("the detach record survives the drop");
    assert_eq!((kept.node, kept.at), (detached.node, detached.at), "dropping writes no detach record");
    // No grace window was opened by the drop: the record is the old one's.
    assert!(!f.engine.is_within_grace_period("pvc-gone", Duration::from_secs(1)).unwrap());
}

#[test]
fn rwo_on_two_observed_nodes_keeps_the_engine_holder_else_the_older() {
    struct Case {
        name: &'static str,
        engine_holder: Option<&'static str>,
        observed: [(&'static str, u64); 2],
        kept: &'static str,
        refused: &'static str,
        changed: bool,
    }
    let cases = [
        Case {
            name: "engine holder is the younger record",
            engine_holder: Some("node-b"),
            observed: [("node-a", 100), ("node-b", 200)],
            kept: "node-b",
            refused: "node-a",
            changed: false,
        },
        Case {
            name: "engine holder is the older record",
            engine_holder: Some("node-a"),
            observed: [("node-b", 200), ("node-a", 100)],
            kept: "node-a",
            refused: "node-b",
            changed: false,
        },
        Case {
            name: "engine knows nothing: the older wins",
            engine_holder: None,
            observed: [("node-a", 200), ("node-b", 100)],
            kept: "node-b",
            refused: "node-a",
            changed: true,
        },
        Case {
            name: "engine holder not observed: the older wins",
            engine_holder: Some("node-c"),
            observed: [("node-a", 300), ("node-b", 150)],
            kept: "node-b",
            refused: "node-a",
            changed: true,
        },
    ];
    for c in cases {
        let f = fixture();
        if let Some(holder) = c.engine_holder {
            f.publish("pvc-1", holder, Access::RWO);
        }
        let epoch_before = f.epoch("pvc-1");
        let report = f.adopt(&observed([("pvc-1", seen(Access::RWO, &c.observed, 0))]));
        assert_eq!(f.nodes("pvc-1"), [c.kept], "{}", c.name);
        assert_eq!(refused_nodes(&report), [("pvc-1", c.refused)], "{}", c.name);
        assert_eq!(report.refused[0].kept, [c.kept], "{}", c.name);
        assert!(report.refused[0].why.contains("at most 1"), "{}: {}", c.name, report.refused[0].why);
        if c.changed {
            assert_eq!(report.adopted, ["pvc-1"], "{}", c.name);
            assert_eq!(f.epoch("pvc-1"), epoch_before + 1, "{}", c.name);
        } else {
            assert_eq!((report.unchanged, report.adopted.len()), (1, 0), "{}", c.name);
            assert_eq!(f.epoch("pvc-1"), epoch_before, "{}", c.name);
        }
    }
}

/// An RWX row: the engine's node, the observed nodes, the nodes expected in engine order.
type RwxCase = (Option<&'static str>, [(&'static str, u64); 2], [&'static str; 2]);

#[test]
fn rwx_on_two_observed_nodes_is_a_migration_from_the_engine_node_or_the_older() {
    let cases: [RwxCase; 3] = [
        (None, [("node-a", 200), ("node-b", 100)], ["node-b", "node-a"]),
        (Some("node-a"), [("node-b", 100), ("node-a", 200)], ["node-a", "node-b"]),
        (Some("node-c"), [("node-a", 300), ("node-b", 200)], ["node-b", "node-a"]),
    ];
    for (engine_node, seen_nodes, expected) in cases {
        let f = fixture();
        if let Some(n) = engine_node {
            f.publish("pvc-vm", n, Access::RWX);
        }
        let epoch_before = f.epoch("pvc-vm");
        let report = f.adopt(&observed([("pvc-vm", seen(Access::RWX, &seen_nodes, 0))]));
        assert_eq!(report.adopted, ["pvc-vm"]);
        assert!(report.refused.is_empty(), "{:?}", report.refused);
        assert_eq!(f.nodes("pvc-vm"), expected, "engine node {engine_node:?}");
        assert_eq!(f.epoch("pvc-vm"), epoch_before + 1);
        let a = f.engine.get("pvc-vm").unwrap().unwrap();
        let later = seen_nodes.iter().map(|(_, s)| *s).max().unwrap();
        assert_eq!(a.since, at(later), "a migration starts when its target attached");
        let mig = a.migration.expect("two nodes are a migration");
        assert_eq!(mig.timeout, TIMEOUT);
        assert_eq!(f.engine.stats().active_migrations, 1);
        // The source leaving completes it, as for a migration the engine started itself.
        let out = f.engine.unpublish("pvc-vm", Some(expected[0])).unwrap();
        assert!(matches!(out, tether_core::UnpublishOutcome::MigrationCompleted { .. }), "{out:?}");
        assert_eq!(f.nodes("pvc-vm"), [expected[1]]);
        assert_eq!(f.engine.stats().active_migrations, 0);
    }
}

#[test]
fn an_adopted_migration_timeout_is_timeout_for_the_volume_clamped() {
    let f = fixture();
    let timeout_for = |v: &str| match v {
        "pvc-short" => Duration::from_secs(1),
        "pvc-long" => Duration::from_hours(24),
        _ => Duration::from_secs(400),
    };
    let two = seen(Access::RWX, &[("node-a", 100), ("node-b", 200)], 0);
    f.adopt_with(&observed([("pvc-short", two.clone()), ("pvc-long", two.clone()), ("pvc-mid", two)]), timeout_for);
    let timeout = |v| f.engine.get(v).unwrap().unwrap().migration.unwrap().timeout;
    assert_eq!(timeout("pvc-short"), tether_core::MIN_MIGRATION_TIMEOUT);
    assert_eq!(timeout("pvc-long"), tether_core::MAX_MIGRATION_TIMEOUT);
    assert_eq!(timeout("pvc-mid"), Duration::from_secs(400));
}

#[test]
fn rwx_on_three_observed_nodes_keeps_two_and_refuses_one() {
    // (engine node, expected kept in engine order, expected refused)
    let cases: [(Option<&str>, [&str; 2], &str); 3] = [
        (None, ["node-b", "node-c"], "node-a"),
        (Some("node-a"), ["node-a", "node-b"], "node-c"),
        (Some("node-d"), ["node-b", "node-c"], "node-a"),
    ];
    for (engine_node, kept, refused) in cases {
        let f = fixture();
        if let Some(n) = engine_node {
            f.publish("pvc-vm", n, Access::RWX);
        }
        let report = f
            .adopt(&observed([("pvc-vm", seen(Access::RWX, &[("node-a", 300), ("node-b", 100), ("node-c", 200)], 0))]));
        assert_eq!(f.nodes("pvc-vm"), kept, "engine node {engine_node:?}");
        assert_eq!(refused_nodes(&report), [("pvc-vm", refused)], "engine node {engine_node:?}");
        assert_eq!(report.refused[0].kept, kept);
        assert!(report.refused[0].why.contains("at most 2"), "{}", report.refused[0].why);
        assert_eq!(report.adopted, ["pvc-vm"]);
        assert_eq!(f.engine.stats().active_migrations, 1);
    }
}

#[test]
fn an_invalid_node_name_is_refused_not_adopted() {
    let long = "n".repeat(tether_core::MAX_ID_LEN + 1);
    for bad in ["", "node\0a", long.as_str()] {
        let f = fixture();
        let report = f.adopt(&observed([("pvc-bad", seen(Access::RWO, &[(bad, 100)], 5))]));
        assert_eq!(refused_nodes(&report), [("pvc-bad", bad)]);
        assert!(report.adopted.is_empty() && report.dropped.is_empty(), "{report:?}");
        assert!(f.engine.get("pvc-bad").unwrap().is_none(), "nothing attached for {bad:?}");

        // Beside a valid node, only the valid one is adopted, and it is not counted against the
        // RWO limit by the invalid one.
        let f = fixture();
        let report = f.adopt(&observed([("pvc-mixed", seen(Access::RWO, &[(bad, 50), ("node-b", 100)], 0))]));
        assert_eq!(refused_nodes(&report), [("pvc-mixed", bad)]);
        assert_eq!(report.adopted, ["pvc-mixed"]);
        assert_eq!(f.nodes("pvc-mixed"), ["node-b"]);
    }
}

#[test]
fn a_volume_observed_only_on_invalid_nodes_is_dropped_from_the_engine() {
    let f = fixture();
    f.publish("pvc-1", "node-a", Access::RWO);
    let report = f.adopt(&observed([("pvc-1", seen(Access::RWO, &[("", 100)], 0))]));
    assert_eq!(report.dropped, ["pvc-1"]);
    assert_eq!(refused_nodes(&report), [("pvc-1", "")]);
    assert!(f.engine.get("pvc-1").unwrap().is_none());
    assert_eq!(f.epoch("pvc-1"), 2);
}

#[test]
fn a_refused_invalid_node_names_the_nodes_kept() {
    let f = fixture();
    let report = f.adopt(&observed([("pvc-mixed", seen(Access::RWO, &[("bad\0node", 50), ("node-b", 100)], 0))]));
    assert_eq!(f.nodes("pvc-mixed"), ["node-b"]);
    assert_eq!(report.refused[0].kept, ["node-b"], "Refused::kept: \"the nodes the volume was given instead\"");
}

#[test]
fn an_invalid_volume_id_is_refused_not_fatal() {
    let long = "v".repeat(tether_core::MAX_ID_LEN + 1);
    for bad in [String::new(), "pvc\0x".to_owned(), long] {
        let f = fixture();
        let mut seen_volumes = observed([("pvc-good", seen(Access::RWO, &[("node-a", 100)], 0))]);
        seen_volumes.insert(bad.clone(), seen(Access::RWO, &[("node-b", 100)], 0));
        let (snapshot, report) = plan(&f.engine.snapshot(), &seen_volumes, |_| TIMEOUT).expect("the plan is accepted");
        f.engine.restore(&snapshot).expect("one bad volume id must not make the whole state unrestorable");
        assert_eq!(report.adopted, ["pvc-good"]);
        assert_eq!(refused_nodes(&report), [(bad.as_str(), "node-b")]);
    }
}

#[test]
fn an_epoch_floor_above_the_engine_epoch_raises_it_without_changing_nodes() {
    // (floor, epoch after, adopted?)
    for (floor, expected, raised) in [(9, 9, true), (2, 2, true), (1, 1, false), (0, 1, false)] {
        let f = fixture();
        f.publish("pvc-1", "node-a", Access::RWO);
        f.clock.advance(Duration::from_secs(10));
        let before = f.engine.get("pvc-1").unwrap().unwrap();
        let report = f.adopt(&observed([("pvc-1", seen(Access::RWO, &[("node-a", 1)], floor))]));
        let after = f.engine.get("pvc-1").unwrap().unwrap();
        assert_eq!(after.epoch, expected, "floor {floor}");
        assert_eq!((&after.nodes, after.access, after.since), (&before.nodes, before.access, before.since));
        if raised {
            assert_eq!((report.adopted.len(), report.unchanged), (1, 0), "floor {floor}: {report:?}");
        } else {
            assert_eq!((report.adopted.len(), report.unchanged), (0, 1), "floor {floor}: {report:?}");
        }
        // The next change hands out a token above the floor.
        f.engine.unpublish("pvc-1", None).unwrap();
        assert_eq!(f.epoch("pvc-1"), expected + 1);
    }
}

#[test]
fn missing_node_marks_survive_with_their_time() {
    let f = fixture();
    f.publish("pvc-1", "node-b", Access::RWO);
    let first = f.engine.reconcile(&["node-a"]).unwrap();
    assert_eq!(first.pending.len(), 1, "node-b is marked missing: {first:?}");
    let marks = f.engine.snapshot().missing_nodes;
    assert_eq!(marks.len(), 1);
    f.clock.advance(GRACE / 2);

    let report = f.adopt(&observed([("pvc-1", seen(Access::RWO, &[("node-b", 1)], 0))]));
    assert_eq!(report.unchanged, 1);
    assert_eq!(f.engine.snapshot().missing_nodes, marks, "the mark and its time survive");

    // Half a grace period more clears it: the mark still counts from before the adopt.
    let pending = f.engine.reconcile(&["node-a"]).unwrap();
    assert_eq!(pending.cleared.len(), 0);
    f.clock.advance(GRACE / 2);
    let cleared = f.engine.reconcile(&["node-a"]).unwrap();
    assert_eq!(cleared.cleared.len(), 1, "{cleared:?}");
    assert!(f.engine.get("pvc-1").unwrap().is_none());
}

#[test]
fn the_active_migrations_gauge_is_right_after_restoring_a_plan() {
    let f = fixture();
    // Before: one migration (pvc-ends), one single-node RWX, one RWO.
    f.publish("pvc-ends", "node-a", Access::RWX);
    f.publish("pvc-ends", "node-b", Access::RWX);
    f.publish("pvc-starts", "node-a", Access::RWX);
    f.publish("pvc-rwo", "node-c", Access::RWO);
    assert_eq!(f.engine.stats().active_migrations, 1);
    f.adopt(&observed([
        ("pvc-ends", seen(Access::RWX, &[("node-b", 10)], 0)),
        ("pvc-starts", seen(Access::RWX, &[("node-a", 10), ("node-c", 20)], 0)),
        ("pvc-new", seen(Access::RWX, &[("node-a", 10), ("node-b", 20), ("node-c", 30)], 0)),
        ("pvc-rwo", seen(Access::RWO, &[("node-c", 10)], 0)),
    ]));
    assert_eq!(f.engine.stats().active_migrations, 2);
    assert_eq!(f.engine.list().iter().filter(|a| a.migration.is_some()).count(), 2);
    // The gauge keeps counting from there.
    f.engine.unpublish("pvc-new", Some("node-b")).unwrap();
    assert_eq!(f.engine.stats().active_migrations, 1);
}

#[test]
fn adopting_twice_changes_nothing_the_second_time() {
    let f = fixture();
    f.publish("pvc-moved", "node-a", Access::RWO);
    f.publish("pvc-dropped", "node-b", Access::RWO);
    let seen_volumes = observed([
        ("pvc-moved", seen(Access::RWO, &[("node-c", 10)], 0)),
        ("pvc-new", seen(Access::RWX, &[("node-a", 10), ("node-b", 20)], 4)),
        ("pvc-two", seen(Access::RWO, &[("node-a", 10), ("node-b", 20)], 0)),
    ]);
    let first = f.adopt(&seen_volumes);
    assert_eq!(first.adopted, ["pvc-moved", "pvc-new", "pvc-two"]);
    assert_eq!(first.dropped, ["pvc-dropped"]);
    let after_first = f.engine.snapshot();
    let second = f.adopt(&seen_volumes);
    assert_eq!((second.unchanged, second.adopted.len(), second.dropped.len()), (3, 0, 0), "{second:?}");
    assert_eq!(second.refused, first.refused, "a refusal is reported each time");
    assert_eq!(f.engine.snapshot().volumes, after_first.volumes);
}

#[test]
fn changed_lists_adopted_then_dropped_volumes() {
    let f = fixture();
    f.publish("pvc-dropped", "node-b", Access::RWO);
    f.publish("pvc-same", "node-a", Access::RWO);
    let report = f.adopt(&observed([
        ("pvc-same", seen(Access::RWO, &[("node-a", 10)], 0)),
        ("pvc-new", seen(Access::RWO, &[("node-a", 10)], 0)),
    ]));
    assert_eq!(report.changed().collect::<Vec<_>>(), ["pvc-new", "pvc-dropped"]);
}

#[test]
fn an_adopted_holder_can_be_cleared_with_compare_and_clear() {
    let f = fixture();
    f.adopt(&observed([("pvc-1", seen(Access::RWO, &[("node-a", 10)], 0))]));
    let out = f.engine.clear_stale("pvc-1", "node-a").unwrap();
    assert!(matches!(out, StaleOutcome::Cleared { epoch: 2, .. }), "{out:?}");
    assert_eq!(f.engine.publish("pvc-1", "node-b", Access::RWO, None).unwrap().kind, Published::Attached);
}

// ---------------------------------------------------------------------------------------------
// Driver::adopt
// ---------------------------------------------------------------------------------------------

/// A driver whose store holds `names` (each a filesystem volume), the first published to
/// node-a, restarted on the same directory waiting for its state to be adopted. Returns the
/// harness and the volume ids, in `names` order.
async fn rebuilding(names: &[&str]) -> (Harness, Vec<String>) {
    let mut h = Harness::start().await;
    let mut ids = Vec::new();
    for name in names {
        ids.push(h.create(name, false, &[]).await);
    }
    h.rwo(&ids[0], "node-a").await.unwrap();
    let dir = h.stop().await;
    let h = Harness::start_custom(dir, ManualClock::new(), |parts| parts.awaits_rebuild = true).await;
    (h, ids)
}

fn rwo_on(nodes: &[(&str, u64)], floor: u64) -> ObservedVolume {
    seen(Access::RWO, nodes, floor)
}

fn observed_ids(volumes: Vec<(&String, ObservedVolume)>) -> Observed {
    volumes.into_iter().map(|(v, o)| (v.clone(), o)).collect()
}

fn rebuilt_count(h: &Harness) -> Option<u64> {
    let text = h.driver.metrics.render();
    let prefix = "rds_csi_attachment_reconcile_total{action=\"rebuilt\"} ";
    text.lines().find_map(|l| l.strip_prefix(prefix)).map(|v| v.parse().unwrap())
}

#[tokio::test]
async fn calls_that_depend_on_attachments_are_unavailable_until_adopt() {
    let (mut h, ids) = rebuilding(&["pvc-held", "pvc-free"]).await;
    assert!(!h.driver.is_ready());
    assert!(h.driver.is_rebuilding());
    assert_code(h.rwo(&ids[1], "node-b").await, Code::Unavailable);
    assert_code(h.rwo(&ids[0], "node-a").await, Code::Unavailable);
    assert_code(h.unpublish(&ids[0], "node-a").await, Code::Unavailable);
    let all = ControllerUnpublishVolumeRequest { volume_id: ids[0].clone(), ..Default::default() };
    assert_code(h.controller.controller_unpublish_volume(all).await, Code::Unavailable);
    let create = CreateVolumeRequest {
        name: "pvc-during".into(),
        volume_capabilities: vec![common::capability(false, Mode::SingleNodeWriter)],
        ..Default::default()
    };
    assert_code(h.controller.create_volume(create.clone()).await, Code::Unavailable);
    let delete = DeleteVolumeRequest { volume_id: ids[1].clone(), ..Default::default() };
    assert_code(h.controller.delete_volume(delete.clone()).await, Code::Unavailable);
    assert_eq!(h.driver.volume_count(), 2, "nothing was created or deleted");
    assert_eq!(h.nodes_of(&ids[0]), ["node-a"], "nothing was detached");
    assert_eq!(rebuilt_count(&h), Some(0));

    let report = h.driver.adopt(&observed_ids(vec![(&ids[0], rwo_on(&[("node-a", 0)], 0))])).unwrap();
    assert_eq!(report.unchanged, 1);
    assert!(h.driver.is_ready());
    assert!(!h.driver.is_rebuilding());
    h.controller.create_volume(create).await.expect("serving after adopt");
    h.controller.delete_volume(delete).await.expect("serving after adopt");
    assert_eq!(h.driver.volume_count(), 2);
    assert_eq!(epoch_of(&h.rwo(&ids[0], "node-a").await.unwrap()), nth(1), "admitted before the restart, still");
}

#[tokio::test]
async fn an_adopted_attachment_is_enforced_persisted_and_counted() {
    let (mut h, ids) = rebuilding(&["pvc-moved", "pvc-new"]).await;
    let (moved, new) = (&ids[0], &ids[1]);
    // Kubernetes says: pvc-moved is on node-b (the store said node-a), pvc-new on node-c.
    let report = h
        .driver
        .adopt(&observed_ids(vec![(moved, rwo_on(&[("node-b", 0)], 0)), (new, rwo_on(&[("node-c", 0)], 4))]))
        .unwrap();
    let mut adopted = report.adopted.clone();
    adopted.sort();
    let mut expected = vec![moved.clone(), new.clone()];
    expected.sort();
    assert_eq!(adopted, expected);
    assert!(report.dropped.is_empty());

    let refused = assert_code(h.rwo(moved, "node-c").await, Code::FailedPrecondition);
    assert!(refused.message().contains("\"node-b\""), "{}", refused.message());
    assert_code(h.rwo(new, "node-a").await, Code::FailedPrecondition);
    // Admitted when adopted (the re-fence at the new term after it raises epochs, not admissions).
    assert_eq!(epoch_of(&h.rwo(moved, "node-b").await.unwrap()), nth(2), "idempotent: the adopted epoch");
    assert_eq!(epoch_of(&h.rwo(new, "node-c").await.unwrap()), 5, "floor 4 + 1");

    for (volume, node, epoch) in [(moved, "node-b", nth(2)), (new, "node-c", 5)] {
        let stored = h.stored(volume).engine.expect("the adopted state is persisted");
        assert_eq!(stored.epoch, epoch);
        assert_eq!(stored.attachment.expect("attached").nodes, [node]);
    }
    assert_eq!(rebuilt_count(&h), Some(1));
    assert!(h.driver.metrics.render().contains("rds_csi_attachment_reconcile_total{action=\"rebuilt\"} 1"));
}

#[tokio::test]
async fn a_volume_attached_in_the_store_but_not_in_kubernetes_is_dropped_and_persisted() {
    let (mut h, ids) = rebuilding(&["pvc-stale"]).await;
    assert_eq!(h.stored(&ids[0]).engine.unwrap().attachment.unwrap().nodes, ["node-a"]);
    let report = h.driver.adopt(&Observed::new()).unwrap();
    assert_eq!(report.dropped, [ids[0].clone()]);
    let stored = h.stored(&ids[0]).engine.expect("the entry is kept");
    assert!(stored.attachment.is_none(), "the drop is persisted: {stored:?}");
    assert_eq!(stored.epoch, nth(2));
    let out = h.rwo(&ids[0], "node-b").await.expect("free for another node");
    assert_eq!(epoch_of(&out), (2 << 32) + 1, "after the re-fence at the second start's term");
}

#[tokio::test]
async fn a_refused_attachment_posts_an_attachment_conflict() {
    let (h, ids) = rebuilding(&["pvc-twice"]).await;
    // The store says node-a; Kubernetes shows node-a and node-b for an RWO volume.
    let report = h.driver.adopt(&observed_ids(vec![(&ids[0], rwo_on(&[("node-b", 0), ("node-a", 50)], 0))])).unwrap();
    assert_eq!(refused_nodes(&report), [(ids[0].as_str(), "node-b")]);
    assert_eq!(h.nodes_of(&ids[0]), ["node-a"], "the engine's holder is kept");
    assert_eq!(h.reasons(), ["AttachmentConflict"]);
    let events = h.events.0.lock().unwrap();
    let event = &events[0];
    assert_eq!(event.reason, Reason::AttachmentConflict);
    assert_eq!(&event.volume, &ids[0]);
    assert!(event.message.contains("\"node-b\""), "{}", event.message);
    drop(events);
    assert!(h.driver.metrics.render().contains("rds_csi_events_posted_total{reason=\"AttachmentConflict\"} 1"));
}

#[tokio::test]
async fn a_failed_adopt_keeps_the_driver_closed_and_a_retry_opens_it() {
    let (mut h, ids) = rebuilding(&["pvc-1"]).await;
    h.store.fail_next.store(true, Ordering::SeqCst);
    let seen_volumes = observed_ids(vec![(&ids[0], rwo_on(&[("node-b", 0)], 0))]);
    h.driver.adopt(&seen_volumes).expect_err("the persist failed");
    assert!(h.driver.is_rebuilding());
    assert!(!h.driver.is_ready());
    assert_code(h.rwo(&ids[0], "node-c").await, Code::Unavailable);
    assert_eq!(rebuilt_count(&h), Some(0));

    h.driver.adopt(&seen_volumes).expect("the retry succeeds");
    assert!(h.driver.is_ready());
    assert_eq!(rebuilt_count(&h), Some(1));
    assert_code(h.rwo(&ids[0], "node-c").await, Code::FailedPrecondition);
    assert_eq!(h.nodes_of(&ids[0]), ["node-b"]);
}

#[tokio::test]
async fn an_adopt_retried_after_a_failed_persist_persists_the_adopted_state() {
    let (h, ids) = rebuilding(&["pvc-1"]).await;
    h.store.fail_next.store(true, Ordering::SeqCst);
    let seen_volumes = observed_ids(vec![(&ids[0], rwo_on(&[("node-b", 0)], 0))]);
    h.driver.adopt(&seen_volumes).expect_err("the persist failed");
    h.driver.adopt(&seen_volumes).expect("the retry succeeds");
    assert!(h.driver.is_ready());
    let stored = h.stored(&ids[0]).engine.unwrap();
    assert_eq!(stored.attachment.unwrap().nodes, ["node-b"], "served state must be durable");
}

#[tokio::test]
async fn an_attachment_of_a_volume_the_store_does_not_know_is_held_by_the_engine() {
    let (mut h, _ids) = rebuilding(&["pvc-known"]).await;
    let foreign = "pvc-foreign".to_owned();
    let report = h.driver.adopt(&observed_ids(vec![(&foreign, seen(Access::RWX, &[("node-c", 0)], 0))])).unwrap();
    assert!(report.adopted.contains(&foreign));
    assert_eq!(h.nodes_of(&foreign), ["node-c"]);
    // Unknown to the store: publishing it is NOT_FOUND, not a silent attach.
    assert_code(h.rwx(&foreign, "node-a").await, Code::NotFound);
}
