//! A new leader on a store that re-fences in the background (the cluster store does): it serves
//! at once, writes each volume's re-fence before that volume's first call is acknowledged, and
//! writes the rest beside the calls it serves.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use common::{epoch_of, settings, GatedStore, Harness, NODES};
use tether_core::ManualClock;
use tether_driver::store::VolumeStore;

/// Two volumes attached under a first start's term, on `dir`.
async fn attached_under_a_first_term() -> (tempfile::TempDir, [(String, u64); 2]) {
    let mut h = Harness::start().await;
    let mut attached = Vec::new();
    for (name, node) in [("pvc-first", NODES[0]), ("pvc-second", NODES[1])] {
        let id = h.create(name, false, &[]).await;
        let epoch = epoch_of(&h.rwo(&id, node).await.unwrap());
        attached.push((id, epoch));
    }
    (h.stop().await, attached.try_into().unwrap())
}

fn applied_epoch(store: &GatedStore, volume: &str) -> u64 {
    store.applied_fence(volume).unwrap().expect("a fence was applied").epoch
}

#[tokio::test]
async fn a_volume_owing_its_refence_is_written_before_its_first_call_is_acknowledged() {
    let (dir, [(first, admitted), (second, _)]) = attached_under_a_first_term().await;
    let store = Arc::new(GatedStore::open(dir.path()));
    store.background.store(true, Ordering::SeqCst);
    let (entered, release) = store.arm_fences();
    let mut h = Harness::start_on(dir, Arc::clone(&store), ManualClock::new(), settings(), |_| {}).await;

    // Serving while the background re-fence is held inside the store, nothing of it written.
    entered.recv().unwrap();
    let term = h.driver.engine.term();
    assert!(h.driver.is_ready(), "the new leader serves before its re-fence is written");
    assert_eq!(h.driver.refence_pending(), 2);
    for v in [&first, &second] {
        assert!(applied_epoch(&store, v) < term << 32, "{v}: still the first term's fence");
    }

    // An idempotent publish changes nothing in the engine, yet the volume owes its re-fence:
    // written, record and fence, before the reply.
    let again = h.rwo(&first, NODES[0]).await.unwrap();
    assert_eq!(epoch_of(&again), admitted, "the same admission as before the restart");
    assert!(applied_epoch(&store, &first) >= term << 32, "written at the new term before the reply");
    assert_eq!(h.stored(&first).engine.unwrap().epoch, h.driver.engine.volume_entry(&first).unwrap().unwrap().epoch);
    assert_eq!(h.driver.refence_pending(), 1, "the other volume still owes it");
    assert!(applied_epoch(&store, &second) < term << 32, "the other volume untouched by that call");

    release.send(()).unwrap();
    assert_eq!(h.driver.await_refence().unwrap(), 2, "the batch held both volumes");
    for v in [&first, &second] {
        assert!(applied_epoch(&store, v) >= term << 32, "{v}: re-fenced at the new term");
    }
    assert_eq!(h.driver.refence_pending(), 0);
    let metrics = h.driver.metrics.render();
    assert!(metrics.contains("rds_csi_attachment_refence_pending 0"), "{metrics}");
    h.stop().await;
}

#[tokio::test]
async fn a_store_that_refences_before_serving_owes_nothing_once_open() {
    let (dir, [(first, _), (second, _)]) = attached_under_a_first_term().await;
    let store = Arc::new(GatedStore::open(dir.path()));
    let h = Harness::start_on(dir, Arc::clone(&store), ManualClock::new(), settings(), |_| {}).await;
    let term = h.driver.engine.term();
    assert_eq!(h.driver.refence_pending(), 0);
    for v in [&first, &second] {
        assert!(applied_epoch(&store, v) >= term << 32, "{v}: re-fenced before the driver opened");
    }
    assert_eq!(h.driver.await_refence().unwrap(), 0, "no sweep ran");
    h.stop().await;
}
