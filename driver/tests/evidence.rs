//! "Evidence beats timers" in `ControllerPublish`: a holder whose attachment record is gone
//! (an orphan) is cleared at once by compare-and-clear and the publish proceeds; the
//! grace-period handoff never takes an RWO volume from a holder with a record, attached or
//! still being attached; without evidence the timers decide. A directory whose cache may lag
//! (the `VolumeAttachment` watch) is trusted at once only for "a record exists": a clear or a
//! handoff waits for the records read anew, and an unreadable reading refuses.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_code, Harness, NODES};
use tether_core::ManualClock;
use tether_driver::nodes::{Held, NodeDirectory, Records, StaticNodes};
use tonic::Code;

/// Every test node exists; what each holds in the cache, whether the cache may lag, and what a
/// fresh reading of the records shows are what the test says.
struct Evidence {
    nodes: StaticNodes,
    held: Mutex<HashMap<(String, String), Held>>,
    lagging: AtomicBool,
    /// What `records_now` answers; `None`: unreadable.
    records: Mutex<Option<BTreeSet<String>>>,
    reads: AtomicUsize,
}

impl Evidence {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            nodes: StaticNodes::new(NODES.map(String::from)),
            held: Mutex::new(HashMap::new()),
            lagging: AtomicBool::new(false),
            records: Mutex::new(None),
            reads: AtomicUsize::new(0),
        })
    }

    /// A directory over a lagging cache whose fresh reading shows `records`.
    fn lagging(records: Option<&[&str]>) -> Arc<Self> {
        let this = Self::new();
        this.lagging.store(true, Ordering::Relaxed);
        *this.records.lock().unwrap() = records.map(|r| r.iter().map(|&n| n.to_owned()).collect());
        this
    }

    fn set(&self, volume: &str, node: &str, held: Held) {
        self.held.lock().unwrap().insert((volume.into(), node.into()), held);
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::Relaxed)
    }
}

impl NodeDirectory for Evidence {
    fn exists(&self, node: &str) -> bool {
        self.nodes.exists(node)
    }

    fn live(&self) -> Vec<String> {
        self.nodes.live()
    }

    fn held(&self, volume: &str, node: &str) -> Held {
        self.held.lock().unwrap().get(&(volume.to_owned(), node.to_owned())).copied().unwrap_or(Held::Unknown)
    }

    fn held_may_lag(&self) -> bool {
        self.lagging.load(Ordering::Relaxed)
    }

    fn records_now(&self, _volume: &str) -> Records {
        self.reads.fetch_add(1, Ordering::Relaxed);
        match &*self.records.lock().unwrap() {
            Some(nodes) => Records::Nodes(nodes.clone()),
            None => Records::Unreadable("the test's API server is down".to_owned()),
        }
    }
}

async fn start(evidence: &Arc<Evidence>) -> Harness {
    let evidence = evidence.clone();
    Harness::start_custom(tempfile::tempdir().unwrap(), ManualClock::new(), |p| p.nodes = evidence).await
}

fn orphan_count(h: &Harness) -> u64 {
    let prefix = "rds_csi_attachment_reconcile_total{action=\"orphan\"} ";
    let text = h.driver.metrics.render();
    text.lines().find_map(|l| l.strip_prefix(prefix)).expect("the series is always exported").parse().unwrap()
}

/// Attached to node-a, detached, and attached to node-a again: inside the grace period the
/// timer alone would call node-a's attachment a late re-attach and hand the volume over.
async fn late_reattach(h: &mut Harness) -> String {
    let v = h.create("pvc-late", false, &[]).await;
    h.rwo(&v, NODES[0]).await.unwrap();
    h.unpublish(&v, NODES[0]).await.unwrap();
    h.rwo(&v, NODES[0]).await.unwrap();
    h.clock.advance(Duration::from_secs(1));
    v
}

/// B's publish is refused naming A; A keeps the volume; nothing was cleared or handed off.
async fn refused_and_kept(h: &mut Harness, v: &str, why: &str) {
    let refused = assert_code(h.rwo(v, NODES[1]).await, Code::FailedPrecondition);
    assert!(refused.message().contains(&format!("{:?}", NODES[0])), "{why}: {}", refused.message());
    assert_eq!(h.nodes_of(v), [NODES[0]], "{why}");
    let stats = h.driver.engine.stats();
    assert_eq!((stats.handed_off, stats.stale_cleared), (0, 0), "{why}");
    assert_eq!(orphan_count(h), 0, "{why}");
    assert_eq!(h.reasons().last(), Some(&"AttachmentConflict"), "{why}");
}

#[tokio::test]
async fn a_conflicting_publish_clears_an_orphan_holder_at_once_and_attaches() {
    let ev = Evidence::new();
    let mut h = start(&ev).await;
    let v = h.create("pvc-orphan", false, &[]).await;
    h.rwo(&v, NODES[0]).await.unwrap(); // a late publish retry, after the attacher's unpublish
    ev.set(&v, NODES[0], Held::Gone);
    h.rwo(&v, NODES[1]).await.expect("the orphan gives way");
    assert_eq!(h.nodes_of(&v), [NODES[1]]);
    assert_eq!(orphan_count(&h), 1);
    assert_eq!(h.reasons(), ["VolumeAttached", "StaleAttachmentCleared", "VolumeAttached"]);
    assert_eq!(h.stored(&v).engine.unwrap().attachment.unwrap().nodes, [NODES[1]], "durable before the reply");
    assert_eq!(ev.reads(), 0, "a cache that does not lag is not read anew");
}

#[tokio::test]
async fn a_holder_with_a_record_or_without_evidence_is_never_cleared() {
    for held in [Held::Attached, Held::Pending, Held::Unknown] {
        let ev = Evidence::new();
        let mut h = start(&ev).await;
        let v = h.create("pvc-held", false, &[]).await;
        h.rwo(&v, NODES[0]).await.unwrap();
        ev.set(&v, NODES[0], held);
        refused_and_kept(&mut h, &v, &format!("{held:?}")).await;
    }
}

#[tokio::test]
async fn the_grace_handoff_never_takes_a_volume_from_a_holder_with_a_record_attached_or_pending() {
    for held in [Held::Attached, Held::Pending] {
        let ev = Evidence::new();
        let mut h = start(&ev).await;
        let v = late_reattach(&mut h).await;
        ev.set(&v, NODES[0], held);
        refused_and_kept(&mut h, &v, &format!("{held:?}")).await;
    }
}

#[tokio::test]
async fn without_evidence_the_grace_handoff_still_applies() {
    let ev = Evidence::new();
    let mut h = start(&ev).await;
    let v = late_reattach(&mut h).await;
    h.rwo(&v, NODES[1]).await.expect("no evidence: the timer decides");
    assert_eq!(h.nodes_of(&v), [NODES[1]]);
    assert_eq!(h.driver.engine.stats().handed_off, 1);
}

#[tokio::test]
async fn a_lagging_cache_that_shows_a_pending_record_refuses_without_reading_anew() {
    let ev = Evidence::lagging(Some(&[]));
    let mut h = start(&ev).await;
    let v = late_reattach(&mut h).await;
    ev.set(&v, NODES[0], Held::Pending);
    refused_and_kept(&mut h, &v, "pending").await;
    assert_eq!(ev.reads(), 0, "a record in the cache settles it");
}

#[tokio::test]
async fn a_lagging_cache_that_says_gone_is_overruled_by_a_fresh_reading_that_shows_the_record() {
    // The watch saw the old record deleted and not yet the new one; the holder has one.
    for grace in [false, true] {
        let ev = Evidence::lagging(Some(&[NODES[0]]));
        let mut h = start(&ev).await;
        let v = if grace { late_reattach(&mut h).await } else { h.create("pvc", false, &[]).await };
        h.rwo(&v, NODES[0]).await.unwrap();
        ev.set(&v, NODES[0], Held::Gone);
        refused_and_kept(&mut h, &v, &format!("inside the grace window: {grace}")).await;
        assert_eq!(ev.reads(), 1);
    }
}

#[tokio::test]
async fn a_lagging_cache_with_no_record_is_never_taken_for_a_handoff_before_the_fresh_reading() {
    // Unknown in the cache: without reading anew the timer would hand the volume over.
    let ev = Evidence::lagging(Some(&[NODES[0]]));
    let mut h = start(&ev).await;
    let v = late_reattach(&mut h).await;
    refused_and_kept(&mut h, &v, "unknown in the cache, a record in the API server").await;
    assert_eq!(ev.reads(), 1);
}

#[tokio::test]
async fn a_fresh_reading_without_the_holders_record_clears_the_orphan_and_attaches() {
    for cached in [Held::Gone, Held::Unknown] {
        let ev = Evidence::lagging(Some(&[NODES[2]]));
        let mut h = start(&ev).await;
        let v = h.create("pvc-orphan", false, &[]).await;
        h.rwo(&v, NODES[0]).await.unwrap();
        ev.set(&v, NODES[0], cached);
        h.rwo(&v, NODES[1]).await.expect("the orphan gives way");
        assert_eq!(h.nodes_of(&v), [NODES[1]], "{cached:?}");
        assert_eq!(ev.reads(), 1);
        assert_eq!(orphan_count(&h), 1);
        assert_eq!(h.reasons(), ["VolumeAttached", "StaleAttachmentCleared", "VolumeAttached"]);
        let events = h.events.0.lock().unwrap();
        assert!(events[1].message.contains(&format!("{:?}", NODES[0])), "{}", events[1].message);
        drop(events);
        let stats = h.driver.engine.stats();
        assert_eq!((stats.stale_cleared, stats.handed_off, stats.attached), (1, 0, 2));
        assert_eq!(h.stored(&v).engine.unwrap().attachment.unwrap().nodes, [NODES[1]], "durable before the reply");
    }
}

#[tokio::test]
async fn an_unreadable_fresh_reading_refuses_and_clears_nothing() {
    let ev = Evidence::lagging(None);
    let mut h = start(&ev).await;
    let v = late_reattach(&mut h).await;
    ev.set(&v, NODES[0], Held::Gone);
    refused_and_kept(&mut h, &v, "unreadable").await;
    assert_eq!(ev.reads(), 1);
}

#[tokio::test]
async fn records_are_read_anew_only_on_a_conflict() {
    let ev = Evidence::lagging(Some(&[]));
    let mut h = start(&ev).await;
    let v = h.create("pvc", false, &[]).await;
    h.rwo(&v, NODES[0]).await.unwrap();
    h.rwo(&v, NODES[0]).await.unwrap();
    h.unpublish(&v, NODES[0]).await.unwrap();
    h.rwo(&v, NODES[1]).await.unwrap();
    assert_eq!(ev.reads(), 0, "a plain, an idempotent and a fresh publish read nothing");
}
