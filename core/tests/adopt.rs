//! Adoption's rules in core (`tether_core::adopt`): the epoch arithmetic is checked, so an
//! observed floor or an epoch that cannot grow is refused by name and the engine is untouched;
//! an adopted epoch is issued under the term like any other change; the node limit is the
//! publish table's.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tether_core::adopt::{Observed, ObservedNode, ObservedVolume};
use tether_core::{Access, AccessMode, Config, CoreError, Engine, ManualClock};

fn seen(access: Access, nodes: &[&str], epoch_floor: u64) -> ObservedVolume {
    let nodes = nodes.iter().map(|n| ObservedNode { node: (*n).to_owned(), since: SystemTime::now() }).collect();
    ObservedVolume { access, nodes, epoch_floor }
}

fn observed(volumes: Vec<(&str, ObservedVolume)>) -> Observed {
    volumes.into_iter().map(|(v, o)| (v.to_owned(), o)).collect()
}

const TIMEOUT: Duration = Duration::from_secs(300);

/// An engine holding "old" on node-a at epoch `u64::MAX - 2`, one change below the last epoch.
fn one_below_the_last_epoch() -> Engine {
    let engine = Engine::new();
    let doc = r#"{"version": 2, "taken_at_unix_nanos": 0, "missing_nodes": [], "term": 0, "epoch_floor": 0,
        "volumes": [{"volume": "old", "epoch": 18446744073709551613,
                     "attachment": {"mode": "RWO", "readonly": false, "nodes": ["node-a"], "admitted": [1], "since_unix_nanos": 0}}]}"#;
    engine.restore_json(doc).unwrap();
    engine
}

#[test]
fn an_observed_floor_that_cannot_grow_is_refused_by_name() {
    // On a manual clock: a snapshot carries the time it was taken, and the two compared here
    // must differ only if the refused adoption changed something.
    let engine = Engine::with_config(Config::default(), Arc::new(ManualClock::new())).unwrap();
    engine.publish("keep", "node-a", Access::RWO, None).unwrap();
    let before = engine.snapshot();
    for floor in [u64::MAX, u64::MAX - 1, u64::MAX - 2] {
        let obs = observed(vec![("pvc-1", seen(Access::RWO, &["node-b"], floor))]);
        match engine.adopt(&obs, |_| TIMEOUT) {
            Err(CoreError::EpochExhausted { volume, .. }) => assert_eq!(volume, "pvc-1", "floor {floor}"),
            other => panic!("floor {floor}: {other:?}"),
        }
        assert_eq!(engine.snapshot(), before, "a refused adoption changes nothing");
    }
    // Above u64::MAX - 3 the adopted epoch could not grow once more; this one can.
    let obs = observed(vec![("pvc-1", seen(Access::RWO, &["node-b"], u64::MAX - 3))]);
    engine.adopt(&obs, |_| TIMEOUT).unwrap();
    assert_eq!(engine.epoch("pvc-1").unwrap(), u64::MAX - 2);
    engine.unpublish("pvc-1", None).expect("the adopted volume can still change");
}

/// A volume one change below the last epoch cannot be dropped by an adoption (the epoch it
/// would get could not grow, and the restore would refuse it): refused by name, state kept.
#[test]
fn dropping_a_volume_onto_the_last_epoch_is_refused_by_name() {
    let engine = one_below_the_last_epoch();
    let obs = observed(vec![]);
    match engine.adopt(&obs, |_| TIMEOUT) {
        Err(CoreError::EpochExhausted { volume, epoch }) => assert_eq!((volume.as_str(), epoch), ("old", u64::MAX - 2)),
        other => panic!("{other:?}"),
    }
    assert_eq!(engine.get("old").unwrap().unwrap().epoch, u64::MAX - 2, "untouched");
}

/// An adoption raises each changed volume's epoch by one (the new node admitted there); the
/// re-fence a front end runs after it puts every epoch at the term, admissions kept.
#[test]
fn adopted_epochs_grow_by_one_and_the_refence_after_puts_them_at_the_term() {
    let engine = Engine::new();
    engine.publish("moved", "node-a", Access::RWO, None).unwrap();
    engine.publish("gone", "node-a", Access::RWO, None).unwrap();
    engine.set_term(3).unwrap();
    let obs = observed(vec![("moved", seen(Access::RWO, &["node-b"], 0)), ("new", seen(Access::RWO, &["node-c"], 7))]);
    let report = engine.adopt(&obs, |_| TIMEOUT).unwrap();
    assert_eq!(report.adopted, ["moved", "new"]);
    assert_eq!(report.dropped, ["gone"]);
    let epochs: Vec<u64> = ["moved", "new", "gone"].iter().map(|v| engine.epoch(v).unwrap()).collect();
    assert_eq!(epochs, [2, 8, 2]);
    assert_eq!(engine.refence().len(), 3);
    for v in ["moved", "new", "gone"] {
        assert_eq!(engine.epoch(v).unwrap(), 3 << 32, "{v}");
    }
    assert_eq!(engine.fence("new").unwrap().unwrap().admission("node-c"), Some(8));
}

#[test]
fn the_node_limit_is_the_publish_tables() {
    for (mode, access) in [(AccessMode::Rwo, Access::RWO), (AccessMode::Rwx, Access::RWX)] {
        let engine = Engine::new();
        let obs = observed(vec![("pvc", seen(access, &["n1", "n2", "n3"], 0))]);
        let report = engine.adopt(&obs, |_| TIMEOUT).unwrap();
        let kept = engine.get("pvc").unwrap().unwrap().nodes.iter().count();
        assert_eq!(kept, mode.node_limit());
        assert_eq!(report.refused.len(), 3 - mode.node_limit());
        // The publish table refuses one more node in the same place.
        assert!(engine.publish("pvc", "n4", access, None).is_err());
    }
}

/// A volume that reached the last epoch (`u64::MAX - 1`) can change no more, and a document
/// holding it is refused; so is adopting a state that holds it, naming the volume.
#[test]
fn a_volume_at_the_last_epoch_blocks_adoption_by_name() {
    let engine = one_below_the_last_epoch();
    engine.unpublish("old", None).unwrap();
    let refused = engine.adopt(&Observed::new(), |_| TIMEOUT).expect_err("its state cannot be restored");
    assert!(refused.to_string().contains("\"old\""), "{refused}");
    assert_eq!(engine.epoch("old").unwrap(), u64::MAX - 1, "untouched");
}
