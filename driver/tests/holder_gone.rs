//! The holder-gone rule of `ControllerPublish`: a publish refused with a conflict because nodes
//! hold the volume clears (compare-and-clear, in the engine under the volume's guard) the holders
//! the `NodeDirectory` no longer knows, posts and counts it, and the publish proceeds; holders
//! that exist, idempotent re-publishes, and a migration at its limit or past its timeout (not a
//! conflict: reconcile clears a gone side after the grace period) never clear anything.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_code, epoch_of, nth, Harness};
use tether_core::ManualClock;
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::nodes::NodeDirectory;
use tonic::Code;

/// A node directory whose nodes the test adds and removes while the driver runs.
#[derive(Debug)]
struct Nodes(Mutex<BTreeSet<String>>);

impl Nodes {
    fn new() -> Arc<Self> {
        Arc::new(Self(Mutex::new(["node-a", "node-b", "node-c", "node-d"].map(String::from).into())))
    }

    fn remove(&self, node: &str) {
        assert!(self.0.lock().unwrap().remove(node), "{node} was not there");
    }
}

impl NodeDirectory for Nodes {
    fn exists(&self, node: &str) -> bool {
        self.0.lock().unwrap().contains(node)
    }

    fn live(&self) -> Vec<String> {
        self.0.lock().unwrap().iter().cloned().collect()
    }
}

async fn start(nodes: &Arc<Nodes>) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let nodes = nodes.clone();
    Harness::start_custom(dir, ManualClock::new(), |p| p.nodes = nodes).await
}

/// `reconcile_total{action="holder_gone"}` as rendered.
fn holder_gone_count(h: &Harness) -> u64 {
    let prefix = "rds_csi_attachment_reconcile_total{action=\"holder_gone\"} ";
    let text = h.driver.metrics.render();
    text.lines().find_map(|l| l.strip_prefix(prefix)).expect("the series is always exported").parse().unwrap()
}

fn stored_nodes(h: &Harness, volume: &str) -> Vec<String> {
    h.stored(volume).engine.and_then(|e| e.attachment).map(|a| a.nodes).unwrap_or_default()
}

fn stored_epoch(h: &Harness, volume: &str) -> u64 {
    h.stored(volume).engine.map_or(0, |e| e.epoch)
}

/// A block volume migrating from node-a (source) to node-b (target).
async fn migrating(h: &mut Harness) -> String {
    let v = h.create("pvc-vm", true, &[]).await;
    h.rwx(&v, "node-a").await.unwrap();
    h.rwx(&v, "node-b").await.unwrap();
    v
}

#[tokio::test]
async fn an_rwo_publish_past_a_gone_holder_clears_it_and_attaches_at_a_higher_epoch() {
    let nodes = Nodes::new();
    let mut h = start(&nodes).await;
    let v = h.create("pvc-rwo", false, &[]).await;
    let first = h.rwo(&v, "node-a").await.unwrap();
    assert_eq!(epoch_of(&first), nth(1));
    nodes.remove("node-a");

    let second = h.rwo(&v, "node-b").await.expect("the holder is gone: the publish goes through");
    assert_eq!(epoch_of(&second), nth(3), "cleared (2), then attached (3)");
    assert!(epoch_of(&second) > epoch_of(&first));
    assert_eq!(h.nodes_of(&v), ["node-b"]);
    assert_eq!(h.reasons(), ["VolumeAttached", "StaleAttachmentCleared", "VolumeAttached"]);
    let events = h.events.0.lock().unwrap();
    assert!(events[1].message.contains("\"node-a\""), "the cleared event names the gone node: {}", events[1].message);
    drop(events);
    assert_eq!(stored_nodes(&h, &v), ["node-b"], "persisted before the reply");
    assert_eq!(stored_epoch(&h, &v), nth(3));
    assert_eq!(holder_gone_count(&h), 1);
    let stats = h.driver.engine.stats();
    assert_eq!((stats.stale_cleared, stats.attached, stats.conflicts), (1, 2, 0), "one decision, not a conflict");
    // No detach record was written for node-a: it vanished, it did not detach.
    assert!(h.driver.engine.detach_timestamp(&v).unwrap().is_none());
}

#[tokio::test]
async fn an_rwo_publish_against_a_present_holder_is_refused_and_clears_nothing() {
    let nodes = Nodes::new();
    let mut h = start(&nodes).await;
    let v = h.create("pvc-rwo", false, &[]).await;
    h.rwo(&v, "node-a").await.unwrap();
    // Another node going away changes nothing for node-a's volume.
    nodes.remove("node-d");

    let refused = assert_code(h.rwo(&v, "node-b").await, Code::FailedPrecondition);
    assert!(refused.message().contains("\"node-a\""), "{}", refused.message());
    assert_eq!(h.nodes_of(&v), ["node-a"]);
    assert_eq!(h.driver.engine.epoch(&v).unwrap(), nth(1));
    assert_eq!(h.reasons(), ["VolumeAttached", "AttachmentConflict"]);
    assert_eq!(h.driver.engine.stats().stale_cleared, 0);
    assert_eq!(holder_gone_count(&h), 0);
    assert_eq!(stored_nodes(&h, &v), ["node-a"]);
}

#[tokio::test]
async fn a_publish_from_a_gone_node_is_not_found_and_clears_nothing() {
    let nodes = Nodes::new();
    let mut h = start(&nodes).await;
    let v = h.create("pvc-rwo", false, &[]).await;
    h.rwo(&v, "node-a").await.unwrap();
    nodes.remove("node-a");
    nodes.remove("node-b");
    assert_code(h.rwo(&v, "node-b").await, Code::NotFound);
    assert_eq!(h.nodes_of(&v), ["node-a"], "a refused request never clears the holder");
    assert_eq!(holder_gone_count(&h), 0);
}

/// A third RWX publish is refused as `MigrationLimit` (or `MigrationTimedOut`), not as a
/// conflict, so a gone side is not cleared for it: the volume stays as it was.
async fn stays_refused(h: &mut Harness, v: &str) {
    let refused = assert_code(h.rwx(v, "node-c").await, Code::FailedPrecondition);
    assert!(refused.message().contains("\"node-a\"") && refused.message().contains("\"node-b\""), "{refused:?}");
    assert_eq!(h.nodes_of(v), ["node-a", "node-b"], "the gone side is left for reconcile");
    assert_eq!((h.driver.engine.stats().stale_cleared, h.driver.engine.stats().active_migrations), (0, 1));
    assert_eq!(holder_gone_count(h), 0);
    assert_eq!(h.reasons(), ["VolumeAttached", "MigrationStarted", "AttachmentConflict"]);
    assert_eq!(stored_nodes(h, v), ["node-a", "node-b"]);
}

#[tokio::test]
async fn an_rwx_migration_at_its_limit_with_sides_gone_stays_refused() {
    for gone in [&["node-a"][..], &["node-b"], &["node-a", "node-b"]] {
        let nodes = Nodes::new();
        let mut h = start(&nodes).await;
        let v = migrating(&mut h).await;
        for n in gone {
            nodes.remove(n);
        }
        stays_refused(&mut h, &v).await;
        assert_eq!(h.driver.engine.stats().migration_limit, 1, "{gone:?}");
    }
}

#[tokio::test]
async fn an_rwx_migration_at_its_limit_with_both_sides_present_is_refused() {
    let nodes = Nodes::new();
    let mut h = start(&nodes).await;
    let v = migrating(&mut h).await;
    let refused = assert_code(h.rwx(&v, "node-c").await, Code::FailedPrecondition);
    assert!(refused.message().contains("\"node-a\"") && refused.message().contains("\"node-b\""), "{refused:?}");
    assert_eq!(h.nodes_of(&v), ["node-a", "node-b"]);
    assert_eq!((h.driver.engine.stats().stale_cleared, h.driver.engine.stats().migration_limit), (0, 1));
    assert_eq!(holder_gone_count(&h), 0);
}

#[tokio::test]
async fn an_rwo_publish_to_an_rwx_volume_whose_holders_are_all_gone_attaches_the_new_node_alone() {
    let nodes = Nodes::new();
    let mut h = start(&nodes).await;
    let v = migrating(&mut h).await;
    nodes.remove("node-a");
    nodes.remove("node-b");

    // A conflict (RWO against RWX) with gone holders only: both are cleared.
    let out = h.publish(&v, "node-c", Mode::SingleNodeWriter, true).await.unwrap();
    assert_eq!(h.nodes_of(&v), ["node-c"]);
    assert_eq!(epoch_of(&out), nth(5), "attach, migration, two clears, attach");
    assert_eq!(
        h.reasons(),
        ["VolumeAttached", "MigrationStarted", "StaleAttachmentCleared", "StaleAttachmentCleared", "VolumeAttached"]
    );
    assert_eq!(h.driver.engine.stats().active_migrations, 0);
    assert_eq!(holder_gone_count(&h), 2);
    assert_eq!(stored_nodes(&h, &v), ["node-c"]);
}

#[tokio::test]
async fn an_idempotent_republish_never_clears_a_gone_node() {
    let nodes = Nodes::new();
    let mut h = start(&nodes).await;
    // RWO: another node gone changes nothing for the holder's retry.
    let rwo = h.create("pvc-rwo", false, &[]).await;
    let first = h.rwo(&rwo, "node-a").await.unwrap();
    // RWX migration: its source is gone, and the target retries its publish.
    let vm = h.create("pvc-vm", true, &[]).await;
    h.rwx(&vm, "node-a").await.unwrap();
    let target = h.rwx(&vm, "node-b").await.unwrap();
    nodes.remove("node-c");
    assert_eq!(h.rwo(&rwo, "node-a").await.unwrap().publish_context, first.publish_context);
    nodes.remove("node-a");
    assert_eq!(h.rwx(&vm, "node-b").await.unwrap().publish_context, target.publish_context);
    assert_eq!(h.nodes_of(&vm), ["node-a", "node-b"], "the gone source is left for reconcile");
    assert_eq!(h.driver.engine.stats().stale_cleared, 0);
    assert_eq!(h.driver.engine.stats().already_attached, 2);
    assert_eq!(holder_gone_count(&h), 0);
    assert!(!h.reasons().contains(&"StaleAttachmentCleared"));
}

#[tokio::test]
async fn a_clear_that_does_not_admit_the_request_is_still_persisted() {
    let nodes = Nodes::new();
    let mut h = start(&nodes).await;
    let v = migrating(&mut h).await;
    nodes.remove("node-a");

    // An RWO request conflicts with RWX: node-a is cleared, node-b still refuses it.
    let refused = assert_code(h.publish(&v, "node-c", Mode::SingleNodeWriter, true).await, Code::FailedPrecondition);
    assert!(refused.message().contains("\"node-b\""), "{}", refused.message());
    assert_eq!(h.nodes_of(&v), ["node-b"]);
    assert_eq!(stored_nodes(&h, &v), ["node-b"], "the clear is durable although the call failed");
    assert_eq!(stored_epoch(&h, &v), nth(3));
    assert_eq!(h.reasons(), ["VolumeAttached", "MigrationStarted", "StaleAttachmentCleared", "AttachmentConflict"]);
    assert_eq!(holder_gone_count(&h), 1);
    assert_eq!(h.driver.engine.stats().active_migrations, 0);
}

#[tokio::test]
async fn an_rwx_migration_past_its_timeout_with_one_side_gone_stays_refused() {
    let nodes = Nodes::new();
    let mut h = start(&nodes).await;
    let v = migrating(&mut h).await;
    h.clock.advance(h.driver.settings.default_migration_timeout + Duration::from_secs(1));
    nodes.remove("node-a");
    stays_refused(&mut h, &v).await;
    assert_eq!(h.driver.engine.stats().migration_timed_out, 1);
}
