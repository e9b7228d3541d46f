//! What the contract corpus (tests/contract/) cannot say about the core in JSON: wall-clock
//! times in detach records, error messages, whole-snapshot equality after a round trip, the
//! per-volume snapshot entry and the mode names. Every row of DESIGN.md's tables is a scenario
//! there, run by `corpus.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_core::{Access, AccessMode, Config, CoreError, Engine, ManualClock, Nodes};

const SEC: Duration = Duration::from_secs(1);
const RWO: Access = Access::RWO;
const RWX: Access = Access::RWX;

fn engine() -> (Engine, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)));
    let engine = Engine::with_config(Config::default(), clock.clone()).unwrap();
    (engine, clock)
}

fn migrating(e: &Engine) {
    e.publish("v", "a", RWX, None).unwrap();
    e.publish("v", "b", RWX, None).unwrap();
}

#[test]
fn conflict_message_names_the_volume_the_node_and_the_holder() {
    let (e, _) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    let err = e.publish("v", "b", RWO, None).unwrap_err();
    assert_eq!(err, CoreError::Conflict { volume: "v".into(), node: "b".into(), attached_to: Nodes::one("a") });
    for part in ["\"v\"", "\"b\"", "\"a\"", "unpublish"] {
        assert!(err.to_string().contains(part), "the message names {part}: {err}");
    }
}

#[test]
fn detach_record_carries_the_wall_time_of_the_detach() {
    let (e, clock) = engine();
    e.publish("v", "a", RWO, None).unwrap();
    clock.advance(SEC);
    e.unpublish("v", Some("a")).unwrap();
    clock.advance(SEC);
    let rec = e.detach_timestamp("v").unwrap().unwrap();
    assert_eq!(rec.at, SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_001));
}

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
fn access_mode_names_match_the_design() {
    assert_eq!(AccessMode::Rwo.to_string(), "RWO");
    assert_eq!(AccessMode::Rwx.to_string(), "RWX");
}
