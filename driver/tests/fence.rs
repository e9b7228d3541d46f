//! The fence end to end in the driver: the embedded store applies only a newer fence (also
//! against a second process on the same state directory), `NodeStage` admits exactly the nodes
//! of the latest applied fence at or above their admission epochs (both sides during a
//! migration), and `DeleteVolume` forgets the engine's record.

mod common;

use std::collections::HashMap;

use common::{assert_code, block_volume as volume, epoch_of, fence, nth, Harness, NODES};
use tether_core::CoreError;
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::csi::{ControllerPublishVolumeResponse, DeleteVolumeRequest, NodeStageVolumeRequest};
use tether_driver::store::{EmbeddedStore, StoreError, VolumeStore, DB_FILE};
use tonic::Code;

/// A second process on the same state directory, as a stale leader would be.
fn two_stores() -> (tempfile::TempDir, EmbeddedStore, EmbeddedStore) {
    let dir = tempfile::tempdir().unwrap();
    let a = EmbeddedStore::open(dir.path(), 1 << 30).unwrap();
    let b = EmbeddedStore::open(dir.path(), 1 << 30).unwrap();
    a.create(&volume("v")).unwrap();
    (dir, a, b)
}

#[test]
fn a_fence_replayed_with_an_older_epoch_is_refused_and_leaves_the_store_as_it_was() {
    let (_dir, store, other) = two_stores();
    store.apply_fence("v", &fence(5, &[("node-a", 5)])).unwrap();
    let before = other.applied_fences().unwrap();
    for older in [fence(3, &[("node-b", 3)]), fence(5, &[("node-b", 5)])] {
        let err = store.apply_fence("v", &older).unwrap_err();
        assert!(
            matches!(err, StoreError::Fence(CoreError::StaleFence { epoch, applied: 5, .. }) if epoch == older.epoch),
            "{err}"
        );
        assert!(err.to_string().contains("epoch 5 is already applied"), "names both epochs: {err}");
    }
    assert_eq!(other.applied_fences().unwrap(), before, "the refused fences wrote nothing");
    assert_eq!(store.applied_fence("v").unwrap(), Some(fence(5, &[("node-a", 5)])));
    store.apply_fence("v", &fence(5, &[("node-a", 5)])).expect("the same fence again is a no-op");
    store.apply_fence("v", &fence(6, &[])).expect("a newer fence replaces it");
    assert_eq!(store.applied_fence("v").unwrap(), Some(fence(6, &[])));
}

#[test]
fn a_stale_leaders_late_fence_is_refused_by_the_shared_store() {
    let (_dir, old_leader, new_leader) = two_stores();
    let old_term = old_leader.next_term(0).unwrap();
    let new_term = new_leader.next_term(0).unwrap();
    assert!(new_term > old_term, "each start takes a higher term ({old_term} then {new_term})");
    new_leader.apply_fence("v", &fence(new_term << 32, &[])).unwrap();
    let late = fence((old_term << 32) + 7, &[("node-a", (old_term << 32) + 7)]);
    assert!(matches!(old_leader.apply_fence("v", &late), Err(StoreError::Fence(CoreError::StaleFence { .. }))));
    assert_eq!(new_leader.applied_fence("v").unwrap(), Some(fence(new_term << 32, &[])));
}

#[test]
fn a_term_above_the_lease_floor_and_every_stored_term_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(store.next_term(0).unwrap(), 1);
    assert_eq!(store.next_term(7).unwrap(), 7, "a Lease further on sets the floor");
    let reopened = EmbeddedStore::open(dir.path(), 1 << 30).unwrap();
    assert_eq!(reopened.next_term(0).unwrap(), 8, "the stored term survived");
}

#[test]
fn a_corrupt_fence_row_is_an_error_naming_the_database() {
    let (dir, store, _) = two_stores();
    let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    let invalid = br#"{"epoch":3,"mode":"RWO","readonly":false,"nodes":[["a",9]]}"#.as_slice();
    db.execute("INSERT INTO fences (id, fence) VALUES ('v', ?1)", [invalid]).unwrap();
    let err = store.applied_fence("v").unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { ref path, .. } if path.ends_with(DB_FILE)), "{err}");
    assert!(err.to_string().contains(r#"volume "v""#), "names the volume: {err}");
}

#[test]
fn a_fence_for_an_unknown_volume_is_refused() {
    let (_dir, store, _) = two_stores();
    assert!(matches!(store.apply_fence("nope", &fence(1, &[])), Err(StoreError::Io { .. })));
    assert_eq!(store.applied_fence("nope").unwrap(), None);
}

/// `NodeStage` of block volume `v` on this driver's node (block volumes need no mount), with
/// `context` as the publish context.
async fn stage(h: &mut Harness, v: &str, context: &HashMap<String, String>) -> Result<(), tonic::Status> {
    let req = NodeStageVolumeRequest {
        volume_id: v.into(),
        staging_target_path: h.dir.path().join("staging").display().to_string(),
        volume_capability: Some(common::capability(true, Mode::MultiNodeMultiWriter)),
        publish_context: context.clone(),
        ..Default::default()
    };
    h.node.node_stage_volume(req).await.map(|_| ())
}

fn ctx(resp: &ControllerPublishVolumeResponse) -> HashMap<String, String> {
    resp.publish_context.clone()
}

#[tokio::test]
async fn a_node_outside_the_fence_is_refused_at_node_stage_naming_both_epochs() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-outside", true, &[]).await;
    // Published to node-b; this driver's Node service is node-a and presents node-b's context.
    let out = h.rwx(&v, NODES[1]).await.unwrap();
    assert_eq!(out.publish_context["tether.io/fence-epoch"], nth(1).to_string());
    let refused = assert_code(stage(&mut h, &v, &ctx(&out)).await, Code::FailedPrecondition);
    assert!(
        refused.message().contains(&format!("fence at epoch {} does not admit it", nth(1))),
        "{}",
        refused.message()
    );
    assert!(refused.message().contains(&format!("with epoch {}", nth(1))), "{}", refused.message());
}

#[tokio::test]
async fn both_sides_of_a_migration_are_admitted_and_only_the_survivor_after_it() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-migrating", true, &[]).await;
    let (a, b) = (NODES[0], NODES[1]);
    let source = ctx(&h.rwx(&v, a).await.unwrap());
    let target = h.rwx(&v, b).await.unwrap();
    assert_eq!(
        (epoch_of(&target), target.publish_context["tether.io/fence-epoch"].as_str()),
        (nth(2), &*nth(2).to_string())
    );
    stage(&mut h, &v, &source).await.expect("the source, admitted first, keeps its session during the migration");
    h.unpublish(&v, b).await.unwrap(); // abort: the source alone
    stage(&mut h, &v, &source).await.expect("after an abort the source still may");
    h.rwx(&v, b).await.unwrap();
    h.unpublish(&v, a).await.unwrap(); // completion: the target alone
    let refused = assert_code(stage(&mut h, &v, &source).await, Code::FailedPrecondition);
    assert!(refused.message().contains("does not admit it"), "{}", refused.message());
}

#[tokio::test]
async fn a_context_from_an_earlier_attachment_is_refused_and_the_current_one_accepted() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-again", true, &[]).await;
    let a = NODES[0];
    let earlier = ctx(&h.rwx(&v, a).await.unwrap());
    h.unpublish(&v, a).await.unwrap();
    let stale = assert_code(stage(&mut h, &v, &earlier).await, Code::FailedPrecondition);
    assert!(stale.message().contains("does not admit it"), "detached: nobody: {}", stale.message());
    let current = ctx(&h.rwx(&v, a).await.unwrap());
    let refused = assert_code(stage(&mut h, &v, &earlier).await, Code::FailedPrecondition);
    assert!(
        refused.message().contains(&format!("admitted it at epoch {}, above the epoch presented", nth(3))),
        "{}",
        refused.message()
    );
    stage(&mut h, &v, &current).await.expect("the current context is admitted");
}

#[tokio::test]
async fn every_change_hands_its_fence_to_the_store_before_the_reply() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-applied", true, &[]).await;
    h.rwx(&v, NODES[0]).await.unwrap();
    h.rwx(&v, NODES[1]).await.unwrap();
    let applied = h.store.applied_fence(&v).unwrap().unwrap();
    assert_eq!(applied, h.driver.engine.fence(&v).unwrap().unwrap());
    assert_eq!(
        applied.nodes().map(|a| (&*a.node, a.epoch)).collect::<Vec<_>>(),
        [(NODES[0], nth(1)), (NODES[1], nth(2))]
    );
    h.unpublish(&v, "").await.unwrap();
    assert!(h.store.applied_fence(&v).unwrap().unwrap().is_empty(), "after a detach the fence admits nobody");
}

#[tokio::test]
async fn delete_volume_forgets_the_engine_record() {
    let mut h = Harness::start().await;
    let v = h.create("pvc-deleted", false, &[]).await;
    h.rwo(&v, NODES[0]).await.unwrap();
    h.unpublish(&v, NODES[0]).await.unwrap();
    assert!(h.driver.engine.fence(&v).unwrap().is_some());
    h.controller.delete_volume(DeleteVolumeRequest { volume_id: v.clone(), ..Default::default() }).await.unwrap();
    assert_eq!(h.driver.engine.fence(&v).unwrap(), None, "the record is gone");
    assert_eq!(h.driver.engine.stats().forgotten, 1);
    assert_eq!(h.store.applied_fence(&v).unwrap(), None, "so is the applied fence");
}

#[test]
fn a_batch_of_fences_follows_the_same_rule_for_each() {
    let (_dir, store, _) = two_stores();
    store.create(&volume("w")).unwrap();
    store.apply_fence("w", &fence(9, &[("node-a", 9)])).unwrap();
    let batch = |epoch_v, epoch_w| {
        vec![
            tether_core::VolumeFence { volume: "v".into(), fence: fence(epoch_v, &[]) },
            tether_core::VolumeFence { volume: "w".into(), fence: fence(epoch_w, &[]) },
        ]
    };
    store.apply_fences(&batch(4, 10)).unwrap();
    assert_eq!(store.applied_fence("v").unwrap(), Some(fence(4, &[])));
    assert_eq!(store.applied_fence("w").unwrap(), Some(fence(10, &[])));
    let err = store.apply_fences(&batch(5, 8)).unwrap_err();
    assert!(matches!(err, StoreError::Fence(CoreError::StaleFence { epoch: 8, applied: 10, .. })), "{err}");
    assert_eq!(store.applied_fence("w").unwrap(), Some(fence(10, &[])), "the older one was not applied");
}
