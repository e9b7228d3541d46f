//! A scripted sequence of CSI calls against an in-process driver on a manual clock, then its
//! metrics endpoint stays up until stdin closes. `tests/csi/metrics_test.py` runs this, scrapes
//! `/metrics` and checks every metric against the values this sequence must produce.
//!
//! Prints `METRICS http://127.0.0.1:<port>` once the sequence is done.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use tether_core::ManualClock;
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, BlockVolume, MountVolume};
use tether_driver::csi::{
    ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest, VolumeCapability,
};
use tether_driver::events::LogSink;
use tether_driver::nodes::StaticNodes;
use tether_driver::server::{bind_unix, connect_unix, router};
use tether_driver::store::EmbeddedStore;
use tether_driver::{Driver, Parts, Settings};
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::Code;

type Client = ControllerClient<Channel>;

fn cap(block: bool, mode: Mode) -> VolumeCapability {
    let access_type = if block { AccessType::Block(BlockVolume {}) } else { AccessType::Mount(MountVolume::default()) };
    VolumeCapability { access_type: Some(access_type), access_mode: Some(AccessMode { mode: mode.into() }) }
}

async fn create(c: &mut Client, name: &str, block: bool, timeout: Option<&str>) -> String {
    let parameters: HashMap<String, String> =
        timeout.map(|t| ("migrationTimeoutSeconds".to_owned(), t.to_owned())).into_iter().collect();
    let mode = if block { Mode::MultiNodeMultiWriter } else { Mode::SingleNodeWriter };
    let req = CreateVolumeRequest {
        name: name.into(),
        volume_capabilities: vec![cap(block, mode)],
        parameters,
        ..Default::default()
    };
    c.create_volume(req).await.expect("create").into_inner().volume.expect("volume").volume_id
}

/// Publishes and checks the outcome's code (`Code::Ok` for success).
async fn publish(c: &mut Client, volume: &str, node: &str, block: bool, mode: Mode, want: Code) {
    let req = ControllerPublishVolumeRequest {
        volume_id: volume.into(),
        node_id: node.into(),
        volume_capability: Some(cap(block, mode)),
        ..Default::default()
    };
    let got = c.controller_publish_volume(req).await.map_or_else(|s| s.code(), |_| Code::Ok);
    assert_eq!(got, want, "publish {volume} to {node}");
}

async fn unpublish(c: &mut Client, volume: &str, node: &str) {
    let req = ControllerUnpublishVolumeRequest { volume_id: volume.into(), node_id: node.into(), ..Default::default() };
    c.controller_unpublish_volume(req).await.expect("unpublish");
}

async fn scenario(c: &mut Client, clock: &ManualClock, driver: &Driver) {
    use Mode::{MultiNodeMultiWriter as Rwx, SingleNodeReaderOnly as RoRwo, SingleNodeWriter as Rwo};
    let a = create(c, "pvc-a", false, None).await;
    let m = create(c, "vm-disk-m", true, Some("300")).await;
    let n = create(c, "vm-disk-n", true, Some("30")).await;
    // RWO: attach, idempotent republish, conflict, incompatible, detach.
    publish(c, &a, "node-a", false, Rwo, Code::Ok).await;
    publish(c, &a, "node-a", false, Rwo, Code::Ok).await;
    publish(c, &a, "node-b", false, Rwo, Code::FailedPrecondition).await;
    publish(c, &a, "node-a", false, RoRwo, Code::AlreadyExists).await;
    unpublish(c, &a, "node-a").await;
    // A late re-attach on node-a inside the grace period is handed to node-b.
    publish(c, &a, "node-a", false, Rwo, Code::Ok).await;
    publish(c, &a, "node-b", false, Rwo, Code::Ok).await;
    // M: a migration that completes after 42 s, then one that hits the limit and aborts.
    publish(c, &m, "node-a", true, Rwx, Code::Ok).await;
    publish(c, &m, "node-b", true, Rwx, Code::Ok).await;
    clock.advance(Duration::from_secs(42));
    unpublish(c, &m, "node-a").await;
    publish(c, &m, "node-c", true, Rwx, Code::Ok).await;
    publish(c, &m, "node-a", true, Rwx, Code::FailedPrecondition).await;
    unpublish(c, &m, "node-c").await;
    // N: a migration past its 30 s timeout refuses a third node and is reported by reconcile.
    publish(c, &n, "node-a", true, Rwx, Code::Ok).await;
    publish(c, &n, "node-b", true, Rwx, Code::Ok).await;
    clock.advance(Duration::from_secs(31));
    publish(c, &n, "node-c", true, Rwx, Code::FailedPrecondition).await;
    driver.reconcile().expect("reconcile");
    // Unpublish from a node that does not hold the volume: nothing to do.
    unpublish(c, &a, "node-c").await;
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let clock = Arc::new(ManualClock::new());
    let settings = Settings {
        driver_name: "tether.csi.metrics-test".into(),
        node_id: "node-a".into(),
        grace_period: Duration::from_secs(30),
        default_migration_timeout: Duration::from_mins(5),
        metrics_namespace: "rds_csi".into(),
        lease_term: 0,
    };
    let parts = Parts {
        clock: clock.clone(),
        store: Arc::new(EmbeddedStore::open(&dir.path().join("state"), 1 << 40).expect("store")),
        nodes: Arc::new(StaticNodes::new(["node-a", "node-b", "node-c"].map(String::from))),
        events: Arc::new(LogSink),
        changes: None,
        awaits_rebuild: false,
    };
    let driver = Arc::new(Driver::open(settings, parts).expect("driver"));
    let socket = dir.path().join("csi.sock");
    let incoming = UnixListenerStream::new(bind_unix(&socket).expect("socket"));
    tokio::spawn(router(driver.clone()).serve_with_incoming(incoming));
    let mut client = ControllerClient::new(connect_unix(&socket).await.expect("connect"));
    scenario(&mut client, &clock, &driver).await;

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("metrics port");
    println!("METRICS http://{}", listener.local_addr().expect("address"));
    tokio::spawn(tether_driver::http::serve_metrics(listener, tether_driver::http::slot(driver)));
    // Serve until the test closes our stdin.
    tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await.expect("stdin").ok();
}
