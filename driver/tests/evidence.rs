//! "Evidence beats timers" in `ControllerPublish`: a holder whose attachment record is gone
//! (an orphan) is cleared at once by compare-and-clear and the publish proceeds; the
//! grace-period handoff never takes an RWO volume from a holder whose record is still
//! attached; without evidence the timers decide, as before.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_code, Harness, NODES};
use tether_core::ManualClock;
use tether_driver::nodes::{Held, NodeDirectory, StaticNodes};
use tonic::Code;

/// Every test node exists; what each holds is what the test says.
struct Evidence {
    nodes: StaticNodes,
    held: Mutex<HashMap<(String, String), Held>>,
}

impl Evidence {
    fn new() -> Arc<Self> {
        Arc::new(Self { nodes: StaticNodes::new(NODES.map(String::from)), held: Mutex::new(HashMap::new()) })
    }

    fn set(&self, volume: &str, node: &str, held: Held) {
        self.held.lock().unwrap().insert((volume.into(), node.into()), held);
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
    assert!(h.reasons().contains(&"StaleAttachmentCleared"), "{:?}", h.reasons());
    assert_eq!(h.stored(&v).engine.unwrap().attachment.unwrap().nodes, [NODES[1]], "durable before the reply");
}

#[tokio::test]
async fn a_holder_with_a_record_or_without_evidence_is_never_cleared() {
    for held in [Held::Attached, Held::Pending, Held::Unknown] {
        let ev = Evidence::new();
        let mut h = start(&ev).await;
        let v = h.create("pvc-held", false, &[]).await;
        h.rwo(&v, NODES[0]).await.unwrap();
        ev.set(&v, NODES[0], held);
        assert_code(h.rwo(&v, NODES[1]).await, Code::FailedPrecondition);
        assert_eq!(h.nodes_of(&v), [NODES[0]], "{held:?}");
        assert_eq!(orphan_count(&h), 0, "{held:?}");
    }
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

#[tokio::test]
async fn the_grace_handoff_never_takes_a_volume_from_a_holder_shown_attached() {
    let ev = Evidence::new();
    let mut h = start(&ev).await;
    let v = late_reattach(&mut h).await;
    ev.set(&v, NODES[0], Held::Attached);
    let refused = assert_code(h.rwo(&v, NODES[1]).await, Code::FailedPrecondition);
    assert!(refused.message().contains(&format!("{:?}", NODES[0])), "{}", refused.message());
    assert_eq!(h.nodes_of(&v), [NODES[0]]);
    assert_eq!(h.driver.engine.stats().handed_off, 0);
}

#[tokio::test]
async fn without_evidence_the_grace_handoff_still_applies() {
    let ev = Evidence::new();
    let mut h = start(&ev).await;
    let v = late_reattach(&mut h).await;
    ev.set(&v, NODES[0], Held::Pending);
    h.rwo(&v, NODES[1]).await.expect("a record not attached is no evidence against the handoff");
    assert_eq!(h.nodes_of(&v), [NODES[1]]);
    assert_eq!(h.driver.engine.stats().handed_off, 1);
}
