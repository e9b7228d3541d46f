//! What only the driver adds to the fencing flows, over the Unix socket on a manual clock: gRPC
//! codes and messages, events, volume parameters, `NOT_FOUND`, `ABORTED`, durability. The contract's
//! rows themselves are the corpus (tests/contract/), run over CSI by `corpus.rs`.

mod common;

use std::time::Duration;

use common::{assert_code, epoch_of, nth, Harness};
use tether_driver::csi::volume_capability::access_mode::Mode;
use tonic::Code;

#[tokio::test]
async fn rwo_conflict_is_failed_precondition_naming_the_holder() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-conflict", false, &[]).await;
    let first = h.rwo(&v, "node-a").await.unwrap();
    assert_eq!(epoch_of(&first), nth(1));
    let refused = assert_code(h.rwo(&v, "node-b").await, Code::FailedPrecondition);
    assert!(refused.message().contains("\"node-a\""), "message names the holder: {}", refused.message());
    assert!(refused.message().contains("\"node-b\""), "message names the requester: {}", refused.message());
    assert_eq!(h.nodes_of(&v), ["node-a"]);
    assert!(h.reasons().contains(&"AttachmentConflict"));
}

#[tokio::test]
async fn republish_to_the_same_node_is_idempotent_and_keeps_the_epoch() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-idem", false, &[]).await;
    let first = h.rwo(&v, "node-a").await.unwrap();
    let again = h.rwo(&v, "node-a").await.unwrap();
    assert_eq!(first.publish_context, again.publish_context);
    assert_eq!(h.driver.engine.stats().already_attached, 1);
}

#[tokio::test]
async fn incompatible_republish_is_already_exists() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-incompat", false, &[]).await;
    h.rwo(&v, "node-a").await.unwrap();
    let readonly = h.publish(&v, "node-a", Mode::SingleNodeReaderOnly, false).await;
    let refused = assert_code(readonly, Code::AlreadyExists);
    assert!(refused.message().contains("read-only"), "{}", refused.message());
    assert!(!h.driver.engine.get(&v).unwrap().unwrap().access.readonly);
}

#[tokio::test]
async fn rwx_migration_starts_and_completes_when_the_source_leaves() {
    let mut h = Harness::start().await;
    let v = h.create("vm-disk", true, &[]).await;
    h.rwx(&v, "node-a").await.unwrap();
    let started = h.rwx(&v, "node-b").await.unwrap();
    assert_eq!(epoch_of(&started), nth(2));
    assert_eq!(h.nodes_of(&v), ["node-a", "node-b"]);
    h.clock.advance(Duration::from_secs(12));
    h.unpublish(&v, "node-a").await.unwrap();
    assert_eq!(h.nodes_of(&v), ["node-b"]);
    assert_eq!(h.driver.engine.stats().migrations_completed, 1);
    assert!(h.reasons().ends_with(&["MigrationStarted", "MigrationCompleted"]));
}

#[tokio::test]
async fn rwx_migration_aborts_when_the_target_leaves() {
    let mut h = Harness::start().await;
    let v = h.create("vm-disk", true, &[]).await;
    h.rwx(&v, "node-a").await.unwrap();
    h.rwx(&v, "node-b").await.unwrap();
    h.unpublish(&v, "node-b").await.unwrap();
    assert_eq!(h.nodes_of(&v), ["node-a"]);
    assert_eq!(h.driver.engine.stats().migrations_aborted, 1);
    assert_eq!(h.reasons().last(), Some(&"MigrationFailed"));
}

#[tokio::test]
async fn a_third_node_is_refused_during_a_migration() {
    let mut h = Harness::start().await;
    let v = h.create("vm-disk", true, &[]).await;
    h.rwx(&v, "node-a").await.unwrap();
    h.rwx(&v, "node-b").await.unwrap();
    let refused = assert_code(h.rwx(&v, "node-c").await, Code::FailedPrecondition);
    assert!(refused.message().contains("two nodes"), "{}", refused.message());
    assert_eq!(h.driver.engine.stats().migration_limit, 1);
}

#[tokio::test]
async fn a_migration_past_its_timeout_refuses_and_is_reported_once() {
    let mut h = Harness::start().await;
    // The volume's own timeout (60 s), not the default (300 s), decides.
    let v = h.create("vm-disk", true, &[("migrationTimeoutSeconds", "60")]).await;
    h.rwx(&v, "node-a").await.unwrap();
    h.rwx(&v, "node-b").await.unwrap();
    h.clock.advance(Duration::from_secs(61));
    let refused = assert_code(h.rwx(&v, "node-c").await, Code::FailedPrecondition);
    assert!(refused.message().contains("past its timeout"), "{}", refused.message());
    let report = h.driver.reconcile().unwrap();
    assert_eq!(report.timed_out_migrations.len(), 1);
    assert!(h.driver.reconcile().unwrap().timed_out_migrations.is_empty(), "reported once");
    assert_eq!(h.driver.engine.stats().migrations_timed_out, 1);
    assert_eq!(h.nodes_of(&v), ["node-a", "node-b"], "the engine never detaches a side by itself");
}

#[tokio::test]
async fn rwx_is_refused_for_filesystem_volumes() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-fs", false, &[]).await;
    assert_code(h.publish(&v, "node-a", Mode::MultiNodeMultiWriter, false).await, Code::InvalidArgument);
    assert!(h.nodes_of(&v).is_empty());
}

#[tokio::test]
async fn unpublish_of_an_unattached_or_unknown_volume_succeeds() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-idle", false, &[]).await;
    h.unpublish(&v, "node-a").await.unwrap();
    h.unpublish(&v, "").await.unwrap();
    h.unpublish("tv-no-such-volume", "node-a").await.unwrap();
    assert_eq!(h.driver.engine.stats().not_attached, 3);
}

#[tokio::test]
async fn publish_to_an_unknown_node_or_volume_is_not_found() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-x", false, &[]).await;
    let refused = assert_code(h.rwo(&v, "node-z").await, Code::NotFound);
    assert!(refused.message().contains("node-z"));
    assert_code(h.rwo("tv-missing", "node-a").await, Code::NotFound);
    assert!(h.nodes_of(&v).is_empty());
}

#[tokio::test]
async fn a_second_operation_on_a_busy_volume_is_aborted() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-busy", false, &[]).await;
    let (entered, release) = h.store.arm();
    let mut first_client = h.controller.clone();
    let first_req = tether_driver::csi::ControllerPublishVolumeRequest {
        volume_id: v.clone(),
        node_id: "node-a".into(),
        volume_capability: Some(common::capability(false, Mode::SingleNodeWriter)),
        ..Default::default()
    };
    let first = tokio::spawn(async move { first_client.controller_publish_volume(first_req).await });
    // The first publish is now inside its persist step, holding the volume.
    tokio::task::spawn_blocking(move || entered.recv().unwrap()).await.unwrap();
    let refused = assert_code(h.rwo(&v, "node-b").await, Code::Aborted);
    assert!(refused.message().contains("in progress"), "{}", refused.message());
    assert_code(h.unpublish(&v, "node-a").await, Code::Aborted);
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    assert_eq!(h.nodes_of(&v), ["node-a"]);
    h.unpublish(&v, "node-a").await.unwrap();
}

#[tokio::test]
async fn bad_ids_are_invalid_argument_before_anything_else() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-ids", false, &[]).await;
    let long = "v".repeat(129);
    for (volume, node) in [
        ("", "node-a"),
        (long.as_str(), "node-a"),
        ("bad\0id", "node-a"),
        (v.as_str(), ""),
        (v.as_str(), &"n".repeat(129)),
        (v.as_str(), "node\0a"),
        // Invalid wins over not-found: an unknown volume with a bad node id.
        ("tv-missing", "node\0a"),
    ] {
        let refused = assert_code(h.rwo(volume, node).await, Code::InvalidArgument);
        assert!(refused.message().starts_with("invalid"), "{}", refused.message());
    }
    assert_code(h.unpublish("", "node-a").await, Code::InvalidArgument);
    assert_code(h.unpublish(&v, "node\0a").await, Code::InvalidArgument);
    assert!(h.nodes_of(&v).is_empty());
}

#[tokio::test]
async fn the_publish_context_carries_a_growing_epoch() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-epoch", false, &[]).await;
    let mut last = 0;
    for _ in 0..3 {
        let ctx = h.rwo(&v, "node-a").await.unwrap();
        assert!(epoch_of(&ctx) > last);
        last = epoch_of(&ctx);
        assert_eq!(ctx.publish_context["tether.io/node"], "node-a");
        h.unpublish(&v, "node-a").await.unwrap();
    }
}

#[tokio::test]
async fn a_retry_after_a_failed_persist_is_acknowledged_only_once_durable() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-disk-full", false, &[]).await;
    h.store.fail_next.store(true, std::sync::atomic::Ordering::SeqCst);
    let failed = assert_code(h.rwo(&v, "node-a").await, Code::Internal);
    assert!(failed.message().contains(tether_driver::store::DB_FILE), "names the file: {}", failed.message());
    assert!(h.stored(&v).engine.is_none(), "nothing reached the disk");
    // The engine already holds the attachment, so the retry is idempotent; it must still
    // write the record before it is acknowledged.
    h.rwo(&v, "node-a").await.unwrap();
    let entry = h.stored(&v).engine.expect("the retry persisted the attachment");
    assert_eq!(entry.attachment.expect("attached").nodes, ["node-a"]);
}
