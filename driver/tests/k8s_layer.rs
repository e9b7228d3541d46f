//! The Kubernetes layer against the real API server of `make test-k8s` (each test is ignored
//! in a plain `cargo test`): events found through the PV's claimRef, PV annotations, node loss
//! and the grace period, the holder-gone check, an API server outage, restart and rebuild from
//! `VolumeAttachments`, and leader election. Tests run one at a time (`--test-threads=1`): one
//! of them stops the API server. They use the driver's identity with deploy/'s RBAC applied,
//! so the manifests are proven sufficient; waits poll for an observable state with a deadline.

mod apiserver;
mod common;

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use apiserver::{apiserver, env, free_port, http_get};
use common::{nth, Harness, GRACE};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tether_core::ManualClock;
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::identity_client::IdentityClient;
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::csi::{ControllerPublishVolumeRequest, CreateVolumeRequest, GetPluginInfoRequest, ProbeRequest};
use tether_driver::events::Reason;
use tether_driver::k8s::annotate::{EPOCH_ANNOTATION, NODES_ANNOTATION};
use tether_driver::k8s::layer::Layer;
use tether_driver::k8s::lease::{Elector, LeaseConfig};
use tether_driver::k8s::{self, Reporter};
use tether_driver::nodes::{Held, NodeDirectory};
use tether_driver::server::connect_unix;
use tether_driver::volume::{PVC_NAMESPACE_PARAM, PVC_NAME_PARAM};
use tonic::Code;

/// How long the API server or the driver may take to show a state before the test fails.
const DEADLINE: Duration = Duration::from_mins(1);
const PVC: &str = "data";

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
async fn until<T, F: Future<Output = Option<T>>>(what: &str, check: impl FnMut() -> F) -> T {
    apiserver::until_within(DEADLINE, what, check).await
}

async fn client(kubeconfig: &str) -> Client {
    Client::try_from(k8s::config(Some(Path::new(kubeconfig))).await.unwrap().unwrap()).unwrap()
}

/// The admin and the driver's identity, with deploy/'s namespace and controller RBAC applied.
struct Env {
    admin: Client,
    driver: Client,
}

async fn setup() -> Env {
    let admin = client(&env("KUBECONFIG")).await;
    for file in ["00-namespace.yaml", "20-rbac-controller.yaml"] {
        apiserver::apply_manifest(&admin, file).await;
    }
    Env { admin, driver: client(&env("TETHER_K8S_DRIVER_KUBECONFIG")).await }
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

impl Env {
    async fn node(&self, name: &str) {
        let node: Node = from_json(json!({ "metadata": { "name": name } }));
        Api::<Node>::all(self.admin.clone()).create(&PostParams::default(), &node).await.unwrap();
    }

    /// Sets the Node's `Ready` condition, as its kubelet would.
    async fn ready(&self, name: &str, status: &str) {
        let patch = json!({ "status": { "conditions": [{ "type": "Ready", "status": status }] } });
        Api::<Node>::all(self.admin.clone())
            .patch_status(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    async fn delete_node(&self, name: &str) {
        Api::<Node>::all(self.admin.clone()).delete(name, &DeleteParams::default()).await.unwrap();
    }

    /// A namespace with the PVC `data` in it.
    async fn claim(&self, namespace: &str) {
        let ns: Namespace = from_json(json!({ "metadata": { "name": namespace } }));
        Api::<Namespace>::all(self.admin.clone()).create(&PostParams::default(), &ns).await.unwrap();
        let pvc: PersistentVolumeClaim = from_json(json!({
            "metadata": { "name": PVC, "namespace": namespace },
            "spec": { "accessModes": ["ReadWriteOnce"], "resources": { "requests": { "storage": "1Gi" } } },
        }));
        Api::<PersistentVolumeClaim>::namespaced(self.admin.clone(), namespace)
            .create(&PostParams::default(), &pvc)
            .await
            .unwrap();
    }

    /// A PV of `driver` for volume `handle`; `claim` is the namespace of a bound `data` PVC.
    async fn pv(
        &self,
        name: &str,
        driver: &str,
        handle: &str,
        mode: &str,
        claim: Option<&str>,
        annotations: serde_json::Value,
    ) {
        let claim_ref = claim.map(|ns| json!({ "namespace": ns, "name": PVC }));
        let pv: PersistentVolume = from_json(json!({
            "metadata": { "name": name, "annotations": annotations },
            "spec": {
                "capacity": { "storage": "1Gi" },
                "accessModes": [mode],
                "volumeMode": if mode == "ReadWriteMany" { "Block" } else { "Filesystem" },
                "csi": { "driver": driver, "volumeHandle": handle },
                "claimRef": claim_ref,
            },
        }));
        Api::<PersistentVolume>::all(self.admin.clone()).create(&PostParams::default(), &pv).await.unwrap();
    }

    async fn pv_annotations(&self, name: &str) -> BTreeMap<String, String> {
        let pv = Api::<PersistentVolume>::all(self.admin.clone()).get(name).await.unwrap();
        pv.metadata.annotations.unwrap_or_default()
    }

    /// A `VolumeAttachment` as the external-attacher leaves it once `ControllerPublish` succeeded.
    async fn attachment(&self, name: &str, driver: &str, pv: &str, node: &str, attached: bool) {
        let api = Api::<VolumeAttachment>::all(self.admin.clone());
        let va: VolumeAttachment = from_json(json!({
            "metadata": { "name": name },
            "spec": { "attacher": driver, "nodeName": node, "source": { "persistentVolumeName": pv } },
        }));
        api.create(&PostParams::default(), &va).await.unwrap();
        let status = json!({ "status": { "attached": attached } });
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.unwrap();
    }

    /// The events of `reason` on the PVC `data` in `namespace`.
    async fn events(&self, namespace: &str, reason: Reason) -> Vec<Event> {
        let api = Api::<Event>::namespaced(self.admin.clone(), namespace);
        let params = ListParams::default().fields(&format!("involvedObject.name={PVC}"));
        let all = api.list(&params).await.unwrap().items;
        all.into_iter().filter(|e| e.reason.as_deref() == Some(reason.as_str())).collect()
    }

    async fn event(&self, namespace: &str, reason: Reason) -> Event {
        until(&format!("a {} event in {namespace}", reason.as_str()), || async {
            self.events(namespace, reason).await.into_iter().next()
        })
        .await
    }

    async fn lease_holder(&self, name: &str) -> Option<String> {
        let lease = Api::<Lease>::namespaced(self.admin.clone(), "tether").get_opt(name).await.unwrap()?;
        lease.spec?.holder_identity
    }
}

/// An in-process driver on the Kubernetes layer (its state rebuilt), on a manual clock.
async fn live(env: &Env, driver_name: &str) -> (Harness, Layer) {
    let reporter = Reporter { component: driver_name.into(), instance: "test".into() };
    let mut layer = Layer::start(env.driver.clone(), reporter, driver_name);
    let mut settings = common::settings();
    settings.driver_name = driver_name.into();
    let mut h = Harness::start_named(tempfile::tempdir().unwrap(), ManualClock::new(), settings, |p| {
        p.nodes = layer.cluster.clone();
        p.events = layer.sink.clone();
        p.changes = Some(layer.annotator.clone());
        p.awaits_rebuild = true;
    })
    .await;
    assert_eq!(h.rwo("tv-any", "any").await.unwrap_err().code(), Code::Unavailable, "publish before the rebuild");
    layer.run(&h.driver).await;
    assert!(h.driver.is_ready());
    (h, layer)
}

async fn exists(layer: &Layer, node: &str, wanted: bool) {
    until(&format!("node {node} exists={wanted} in the cache"), || async {
        (layer.cluster.exists(node) == wanted).then_some(())
    })
    .await;
}

fn claimed(namespace: &str) -> [(&str, &str); 2] {
    [(PVC_NAMESPACE_PARAM, namespace), (PVC_NAME_PARAM, PVC)]
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn events_find_the_pvc_through_the_claim_ref_and_pv_annotations_follow_the_attachment() {
    let env = setup().await;
    let driver = "claims.tether.test";
    env.claim("tl-claims").await;
    env.node("tl1-a").await;
    let (mut h, layer) = live(&env, driver).await;
    let volume = h.create("tl1-vol", false, &[]).await;
    env.pv("tl1-pv", driver, &volume, "ReadWriteOnce", Some("tl-claims"), json!({})).await;
    env.pv("tl1-ghost", driver, "tv-ghost", "ReadWriteOnce", None, json!({ NODES_ANNOTATION: "tl1-b" })).await;
    exists(&layer, "tl1-a", true).await;
    until("the PVs in the cache", || async { (layer.cluster.our_pvs().len() == 2).then_some(()) }).await;
    assert!(layer.cluster.pv_for(&volume).is_some());

    h.rwo(&volume, "tl1-a").await.unwrap();
    let attached = env.event("tl-claims", Reason::VolumeAttached).await;
    assert_eq!(attached.type_.as_deref(), Some("Normal"));
    let message = attached.message.unwrap();
    let at = format!("attached to node \"tl1-a\" at epoch {} in ", nth(1));
    assert!(message.contains(&at), "with its duration: {message}");
    until("the attached-node annotation", || async {
        let a = env.pv_annotations("tl1-pv").await;
        (a.get(NODES_ANNOTATION).map(String::as_str) == Some("tl1-a")
            && a.get(EPOCH_ANNOTATION) == Some(&nth(1).to_string()))
        .then_some(())
    })
    .await;

    h.unpublish(&volume, "tl1-a").await.unwrap();
    env.event("tl-claims", Reason::VolumeDetached).await;
    until("the annotation cleared on detach, the epoch kept", || async {
        let a = env.pv_annotations("tl1-pv").await;
        (!a.contains_key(NODES_ANNOTATION) && a.get(EPOCH_ANNOTATION) == Some(&nth(2).to_string())).then_some(())
    })
    .await;

    // A volume attached before its PV existed gets its annotation from the next reconcile pass.
    let late = h.create("tl1-late", false, &[]).await;
    h.rwo(&late, "tl1-a").await.unwrap();
    env.pv("tl1-late-pv", driver, &late, "ReadWriteOnce", None, json!({})).await;
    until("the late PV in the cache", || async { layer.cluster.pv_for(&late).map(|_| ()) }).await;

    assert_eq!(env.pv_annotations("tl1-ghost").await.get(NODES_ANNOTATION).map(String::as_str), Some("tl1-b"));
    h.driver.reconcile().unwrap();
    until("reconcile to remove the annotation no attachment backs", || async {
        (!env.pv_annotations("tl1-ghost").await.contains_key(NODES_ANNOTATION)).then_some(())
    })
    .await;
    until("reconcile to annotate the late PV", || async {
        (env.pv_annotations("tl1-late-pv").await.get(NODES_ANNOTATION).map(String::as_str) == Some("tl1-a"))
            .then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn a_deleted_node_is_cleared_only_after_the_grace_period_and_one_that_returns_keeps_its_volumes() {
    let env = setup().await;
    env.claim("tl-nodes").await;
    for n in ["tl2-a", "tl2-b", "tl2-c", "tl2-d"] {
        env.node(n).await;
    }
    let (mut h, layer) = live(&env, "nodes.tether.test").await;
    let reconciler = tokio::spawn(tether_driver::reconciler::run(
        h.driver.clone(),
        Duration::from_hours(1),
        layer.node_lost.clone(),
    ));
    for n in ["tl2-a", "tl2-b", "tl2-c", "tl2-d"] {
        exists(&layer, n, true).await;
    }
    let (v1, v2, v3) = (
        h.create("tl2-v1", false, &claimed("tl-nodes")).await,
        h.create("tl2-v2", false, &claimed("tl-nodes")).await,
        h.create("tl2-v3", false, &claimed("tl-nodes")).await,
    );
    h.rwo(&v1, "tl2-a").await.unwrap();
    h.rwo(&v2, "tl2-b").await.unwrap();
    h.rwo(&v3, "tl2-c").await.unwrap();

    // The pass for the watcher's first listing, then one for the deletion: it only marks the
    // node missing.
    until("the first reconcile pass", || async { (h.driver.engine.stats().reconciles >= 1).then_some(()) }).await;
    let before = h.driver.engine.stats().reconciles;
    env.delete_node("tl2-a").await;
    until("the Node watcher to trigger a reconcile pass", || async {
        (h.driver.engine.stats().reconciles > before).then_some(())
    })
    .await;
    assert_eq!(h.nodes_of(&v1), ["tl2-a"], "cleared before the grace period");
    assert_eq!(h.driver.engine.stats().stale_cleared, 0);
    h.clock.advance(GRACE);
    let report = h.driver.reconcile().unwrap();
    assert_eq!(report.cleared.iter().map(|c| c.volume.as_str()).collect::<Vec<_>>(), [v1.as_str()]);
    assert!(h.nodes_of(&v1).is_empty());
    let cleared = env.event("tl-nodes", Reason::StaleAttachmentCleared).await;
    assert!(cleared.message.unwrap().contains("tl2-a"));
    assert!(h.driver.metrics.render().contains("rds_csi_attachment_reconcile_total{action=\"stale_cleared\"} 1"));

    // Gone, then back before the grace period ran out: keeps its volume.
    env.delete_node("tl2-b").await;
    exists(&layer, "tl2-b", false).await;
    let report = h.driver.reconcile().unwrap();
    assert_eq!(report.pending.iter().map(|p| &*p.node).collect::<Vec<_>>(), ["tl2-b"]);
    env.node("tl2-b").await;
    exists(&layer, "tl2-b", true).await;
    h.clock.advance(GRACE);
    let report = h.driver.reconcile().unwrap();
    assert!(report.cleared.is_empty(), "{report:?}");
    assert_eq!(h.nodes_of(&v2), ["tl2-b"]);

    // Ready, then NotReady: a pass runs, and the node keeps its volume (its pods may still write).
    env.ready("tl2-b", "True").await;
    until("the cache to see tl2-b Ready", || async { layer.cluster.is_ready("tl2-b").then_some(()) }).await;
    let before = h.driver.engine.stats().reconciles;
    env.ready("tl2-b", "False").await;
    until("NotReady to trigger a reconcile pass", || async {
        (h.driver.engine.stats().reconciles > before).then_some(())
    })
    .await;
    h.clock.advance(GRACE);
    assert!(h.driver.reconcile().unwrap().cleared.is_empty());
    assert_eq!(h.nodes_of(&v2), ["tl2-b"]);

    // The holder of an RWO volume is gone: a publish elsewhere clears it at once.
    env.delete_node("tl2-c").await;
    exists(&layer, "tl2-c", false).await;
    h.rwo(&v3, "tl2-d").await.unwrap();
    assert_eq!(h.nodes_of(&v3), ["tl2-d"]);
    assert!(h.driver.metrics.render().contains("rds_csi_attachment_reconcile_total{action=\"holder_gone\"} 1"));
    reconciler.abort();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn with_the_api_server_stopped_calls_succeed_events_are_counted_dropped_and_posting_resumes() {
    let env = setup().await;
    env.claim("tl-outage").await;
    env.node("tl3-a").await;
    env.node("tl3-b").await;
    let (mut h, layer) = live(&env, "outage.tether.test").await;
    exists(&layer, "tl3-a", true).await;
    exists(&layer, "tl3-b", true).await;
    let volume = h.create("tl3-vol", false, &claimed("tl-outage")).await;
    h.rwo(&volume, "tl3-a").await.unwrap();
    env.event("tl-outage", Reason::VolumeAttached).await;

    tokio::task::spawn_blocking(|| apiserver("stop-apiserver")).await.unwrap();
    h.unpublish(&volume, "tl3-a").await.unwrap();
    h.rwo(&volume, "tl3-b").await.unwrap();
    assert_eq!(h.nodes_of(&volume), ["tl3-b"]);
    until("the events to be counted as dropped", || async {
        let m = &h.driver.metrics;
        (m.events_dropped(Reason::VolumeDetached) == 1 && m.events_dropped(Reason::VolumeAttached) == 1).then_some(())
    })
    .await;

    tokio::task::spawn_blocking(|| apiserver("start-apiserver")).await.unwrap();
    h.unpublish(&volume, "tl3-b").await.unwrap();
    let detached = env.event("tl-outage", Reason::VolumeDetached).await;
    assert!(detached.message.unwrap().contains("tl3-b"), "the event posted after the outage");
    assert_eq!(env.events("tl-outage", Reason::VolumeAttached).await.len(), 1, "the outage's attach event was dropped");
}

/// A `tether-csi` process on the Kubernetes layer.
struct Proc {
    child: Child,
    socket: PathBuf,
    metrics: String,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(dir: &Path, name: &str, driver: &str, extra: &[&str]) -> Proc {
    let socket = dir.join(format!("{name}.sock"));
    let metrics = format!("127.0.0.1:{}", free_port());
    let log = std::fs::File::create(dir.join(format!("{name}.log"))).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_tether-csi"))
        .args(["--endpoint", &format!("unix://{}", socket.display()), "--node-id", "tl-controller"])
        .args(["--state-dir", &dir.join("state").display().to_string(), "--driver-name", driver])
        .args(["--metrics-address", &metrics, "--kubeconfig", &env("TETHER_K8S_DRIVER_KUBECONFIG")])
        .args(extra)
        .env("POD_NAMESPACE", "tether")
        .env("POD_NAME", name)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    Proc { child, socket, metrics }
}

/// GET `path` from the process's metrics address: status and body, or `None` if it does not answer.
fn get(proc: &Proc, path: &str) -> Option<(u16, String)> {
    http_get(&proc.metrics, path)
}

async fn readyz(proc: &Proc, status: u16, body: &str) {
    until(&format!("/readyz {status} {body:?}"), || async {
        get(proc, "/readyz").filter(|(s, b)| *s == status && b.contains(body)).map(|_| ())
    })
    .await;
}

async fn controller(proc: &Proc) -> ControllerClient<tonic::transport::Channel> {
    let channel = until("the CSI socket", || async { connect_unix(&proc.socket).await.ok() }).await;
    ControllerClient::new(channel)
}

async fn publish(
    c: &mut ControllerClient<tonic::transport::Channel>,
    volume: &str,
    node: &str,
    block: bool,
) -> Result<u64, tonic::Status> {
    let mode = if block { Mode::MultiNodeMultiWriter } else { Mode::SingleNodeWriter };
    let req = ControllerPublishVolumeRequest {
        volume_id: volume.into(),
        node_id: node.into(),
        volume_capability: Some(common::capability(block, mode)),
        ..Default::default()
    };
    let resp = c.controller_publish_volume(req).await?.into_inner();
    Ok(resp.publish_context["tether.io/epoch"].parse().unwrap())
}

async fn create(c: &mut ControllerClient<tonic::transport::Channel>, name: &str, block: bool) -> String {
    let mode = if block { Mode::MultiNodeMultiWriter } else { Mode::SingleNodeWriter };
    let req = CreateVolumeRequest {
        name: name.into(),
        volume_capabilities: vec![common::capability(block, mode)],
        ..Default::default()
    };
    c.create_volume(req).await.unwrap().into_inner().volume.unwrap().volume_id
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn a_killed_driver_restarts_rebuilds_from_volume_attachments_and_serves_nothing_before() {
    let env = setup().await;
    let driver = "restart.tether.test";
    for n in ["tl4-a", "tl4-b", "tl4-c"] {
        env.node(n).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let first = spawn(dir.path(), "tl4-first", driver, &[]);
    readyz(&first, 200, "ready").await;
    let mut c = controller(&first).await;
    let (kept, migrating, detached) = (
        create(&mut c, "tl4-kept", false).await,
        create(&mut c, "tl4-mig", true).await,
        create(&mut c, "tl4-off", false).await,
    );
    let epoch = until("the nodes in the cache", || {
        let (mut c, kept) = (c.clone(), kept.clone());
        async move { publish(&mut c, &kept, "tl4-a", false).await.ok() }
    })
    .await;
    env.pv("tl4-pv-kept", driver, &kept, "ReadWriteOnce", None, json!({})).await;
    env.pv("tl4-pv-mig", driver, &migrating, "ReadWriteMany", None, json!({ EPOCH_ANNOTATION: "7" })).await;
    env.pv("tl4-pv-off", driver, &detached, "ReadWriteOnce", None, json!({})).await;
    env.attachment("tl4-va-kept", driver, "tl4-pv-kept", "tl4-a", true).await;
    // A migration this process never saw (another replica served it), and an attach in progress.
    env.attachment("tl4-va-mig-a", driver, "tl4-pv-mig", "tl4-a", true).await;
    env.attachment("tl4-va-mig-b", driver, "tl4-pv-mig", "tl4-b", true).await;
    env.attachment("tl4-va-off", driver, "tl4-pv-off", "tl4-c", false).await;
    drop(c);
    drop(first); // SIGKILL

    tokio::task::spawn_blocking(|| apiserver("stop-apiserver")).await.unwrap();
    let second = spawn(dir.path(), "tl4-second", driver, &[]);
    let mut c = controller(&second).await;
    let refused = publish(&mut c, &detached, "tl4-c", false).await.unwrap_err();
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    readyz(&second, 503, "rebuilding").await;
    tokio::task::spawn_blocking(|| apiserver("start-apiserver")).await.unwrap();
    readyz(&second, 200, "ready").await;

    assert_eq!(publish(&mut c, &kept, "tl4-a", false).await.unwrap(), epoch, "the acknowledged attachment, unchanged");
    let conflict = publish(&mut c, &kept, "tl4-b", false).await.unwrap_err();
    assert_eq!(conflict.code(), Code::FailedPrecondition, "{conflict:?}");
    let limit = publish(&mut c, &migrating, "tl4-c", true).await.unwrap_err();
    assert_eq!(limit.code(), Code::FailedPrecondition, "the rebuilt migration holds two nodes: {limit:?}");
    assert_eq!(publish(&mut c, &migrating, "tl4-b", true).await.unwrap(), 8, "epoch above the annotated 7");
    assert_eq!(
        publish(&mut c, &detached, "tl4-c", false).await.unwrap(),
        2 << 32,
        "not attached until the attacher says so; attached now under the second start's term"
    );
    let (_, metrics) = get(&second, "/metrics").unwrap();
    assert!(metrics.contains("rds_csi_migration_active_migrations 1"), "{metrics}");
    assert!(metrics.contains("rds_csi_attachment_reconcile_total{action=\"rebuilt\"} 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn two_replicas_elect_one_leader_and_the_standby_takes_over_when_it_stops() {
    let env = setup().await;
    let driver = "ha.tether.test";
    let dir = tempfile::tempdir().unwrap();
    let lease = ["--leader-election", "--lease-name", "tl5-lease"];
    let mut first = spawn(dir.path(), "tl5-first", driver, &lease);
    readyz(&first, 200, "ready").await;
    assert_eq!(env.lease_holder("tl5-lease").await.as_deref(), Some("tl5-first"));
    env.node("tl5-a").await;
    env.node("tl5-b").await;
    let mut c = controller(&first).await;
    let volume = create(&mut c, "tl5-vol", false).await;
    until("the nodes in the cache", || {
        let (mut c, volume) = (c.clone(), volume.clone());
        async move { publish(&mut c, &volume, "tl5-a", false).await.ok() }
    })
    .await;
    env.pv("tl5-pv", driver, &volume, "ReadWriteOnce", None, json!({})).await;
    env.attachment("tl5-va", driver, "tl5-pv", "tl5-a", true).await;
    drop(c);
    let second = spawn(dir.path(), "tl5-second", driver, &lease);
    readyz(&second, 503, "standby").await;
    // The standby's socket answers Identity (not ready) and refuses the rest, saying why, so
    // its sidecars wait connected.
    let (channel, connects) = counted_channel(&second.socket).await;
    let mut identity = IdentityClient::new(channel.clone());
    let info = identity.get_plugin_info(GetPluginInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.name, driver);
    assert_eq!(identity.probe(ProbeRequest {}).await.unwrap().into_inner().ready, Some(false));
    let mut on_second = ControllerClient::new(channel);
    let standby = publish(&mut on_second, &volume, "tl5-b", false).await.unwrap_err();
    assert_eq!(standby.code(), Code::Unavailable, "{standby:?}");
    assert!(standby.message().contains("standby") && standby.message().contains("tl5-lease"), "{standby:?}");
    assert_eq!(env.lease_holder("tl5-lease").await.as_deref(), Some("tl5-first"));

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(first.child.id()).unwrap()),
        nix::sys::signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::task::spawn_blocking(move || first.child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "the leader stops cleanly: {status:?}");
    readyz(&second, 200, "ready").await;
    assert_eq!(env.lease_holder("tl5-lease").await.as_deref(), Some("tl5-second"));
    // The same connection now reaches the leader's services.
    assert_eq!(identity.probe(ProbeRequest {}).await.unwrap().into_inner().ready, Some(true));
    let refused = publish(&mut on_second, &volume, "tl5-b", false).await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "the new leader keeps the attachment: {refused:?}");
    assert_eq!(connects.load(Ordering::SeqCst), 1, "one connection from standby to leader");
}

/// A channel to `socket` and how many connections it opened (a channel reconnects by itself).
async fn counted_channel(socket: &Path) -> (tonic::transport::Channel, Arc<AtomicUsize>) {
    let connects = Arc::new(AtomicUsize::new(0));
    let (path, count) = (socket.to_path_buf(), Arc::clone(&connects));
    let channel = until("the standby's CSI socket", || {
        let (path, count) = (path.clone(), Arc::clone(&count));
        async move {
            tonic::transport::Endpoint::from_static("http://tether-csi.invalid")
                .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
                    let (path, count) = (path.clone(), Arc::clone(&count));
                    async move {
                        let stream = tokio::net::UnixStream::connect(path).await?;
                        count.fetch_add(1, Ordering::SeqCst);
                        Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                    }
                }))
                .await
                .ok()
        }
    })
    .await;
    (channel, connects)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn evidence_an_orphan_holder_is_cleared_at_once_and_an_attached_one_is_never_handed_off() {
    let env = setup().await;
    let driver = "evidence.tether.test";
    env.node("tl10-a").await;
    env.node("tl10-b").await;
    let (mut h, layer) = live(&env, driver).await;
    exists(&layer, "tl10-b", true).await;
    // A late publish for node A after the attacher's unpublish: A's VolumeAttachment is gone.
    let orphaned = h.create("tl10-orphan", false, &[]).await;
    env.pv("tl10-pv-orphan", driver, &orphaned, "ReadWriteOnce", None, json!({})).await;
    env.attachment("tl10-va-orphan", driver, "tl10-pv-orphan", "tl10-a", true).await;
    h.rwo(&orphaned, "tl10-a").await.unwrap();
    until("the attachment in the cache", || async {
        (layer.cluster.held(&orphaned, "tl10-a") == Held::Attached).then_some(())
    })
    .await;
    let api = Api::<VolumeAttachment>::all(env.admin.clone());
    api.delete("tl10-va-orphan", &DeleteParams::default()).await.unwrap();
    until("the deletion seen", || async { (layer.cluster.held(&orphaned, "tl10-a") == Held::Gone).then_some(()) })
        .await;
    h.rwo(&orphaned, "tl10-b").await.expect("the orphan is cleared at once, without waiting for a grace period");
    assert_eq!(h.nodes_of(&orphaned), ["tl10-b"]);
    assert!(h.driver.metrics.render().contains("rds_csi_attachment_reconcile_total{action=\"orphan\"} 1"));

    // A holder inside the grace window whose VolumeAttachment is attached keeps the volume.
    let held = h.create("tl10-held", false, &[]).await;
    env.pv("tl10-pv-held", driver, &held, "ReadWriteOnce", None, json!({})).await;
    env.attachment("tl10-va-held", driver, "tl10-pv-held", "tl10-a", true).await;
    h.rwo(&held, "tl10-a").await.unwrap();
    h.unpublish(&held, "tl10-a").await.unwrap();
    h.rwo(&held, "tl10-a").await.unwrap();
    until("the attachment in the cache", || async {
        (layer.cluster.held(&held, "tl10-a") == Held::Attached).then_some(())
    })
    .await;
    let refused = h.rwo(&held, "tl10-b").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(h.nodes_of(&held), ["tl10-a"]);
}

/// The epochs of every fence applied in the shared state directory.
fn applied_epochs(dir: &Path) -> Vec<u64> {
    apiserver::fence_epochs(&dir.join("state"))
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn a_leader_killed_mid_traffic_is_replaced_at_a_higher_term_and_its_late_fences_are_refused() {
    let env = setup().await;
    let driver = "failover.tether.test";
    let dir = tempfile::tempdir().unwrap();
    let lease = ["--leader-election", "--lease-name", "tl9-lease", "--lease-duration-seconds", "3"];
    let first = spawn(dir.path(), "tl9-first", driver, &lease);
    readyz(&first, 200, "ready").await;
    env.node("tl9-a").await;
    env.node("tl9-b").await;
    let mut c = controller(&first).await;
    let mut volumes = Vec::new();
    for i in 0..8 {
        volumes.push(create(&mut c, &format!("tl9-vol-{i}"), false).await);
    }
    until("the nodes in the cache", || {
        let (mut c, v) = (c.clone(), volumes[0].clone());
        async move { publish(&mut c, &v, "tl9-a", false).await.ok() }
    })
    .await;
    let second = spawn(dir.path(), "tl9-second", driver, &lease);
    readyz(&second, 503, "standby").await;
    // Traffic on the leader until it dies: publish and unpublish in turn on every volume.
    let traffic = tokio::spawn({
        let (mut c, volumes) = (c.clone(), volumes.clone());
        async move {
            let mut issued = Vec::new();
            for round in 0.. {
                for v in &volumes {
                    let node = if round % 2 == 0 { "tl9-a" } else { "tl9-b" };
                    let Ok(epoch) = publish(&mut c, v, node, false).await else { return issued };
                    issued.push(epoch);
                    let req = tether_driver::csi::ControllerUnpublishVolumeRequest {
                        volume_id: v.clone(),
                        ..Default::default()
                    };
                    if c.controller_unpublish_volume(req).await.is_err() {
                        return issued;
                    }
                }
            }
            issued
        }
    });
    until("traffic acknowledged", || async {
        (applied_epochs(dir.path()).iter().filter(|&&e| e > 1 << 32).count() >= 4).then_some(())
    })
    .await;
    drop(first); // SIGKILL, mid-traffic
    let issued = traffic.await.unwrap();
    assert!(!issued.is_empty(), "the old leader acknowledged publishes");
    let before = *applied_epochs(dir.path()).iter().chain(&issued).max().unwrap();
    assert!(before < 2 << 32, "the old leader's epochs are of its term: {before}");

    readyz(&second, 200, "ready").await;
    assert_eq!(env.lease_holder("tl9-lease").await.as_deref(), Some("tl9-second"));
    let term = apiserver::term(&dir.path().join("state"));
    assert_eq!(term, 2);
    let refenced = applied_epochs(dir.path());
    assert!(refenced.iter().all(|&e| e >= term << 32 && e > before), "re-fenced before serving: {refenced:?}");
    let mut c = controller(&second).await;
    for v in &volumes {
        let epoch = publish(&mut c, v, "tl9-b", false).await.unwrap();
        assert!(epoch > before, "{v}: the new leader issued {epoch}, not above the old leader's {before}");
    }
    // The old leader's next fence, had it lived to write it late, is refused by the store.
    let store = tether_driver::store::EmbeddedStore::open(&dir.path().join("state"), 1 << 40).unwrap();
    let late = tether_core::Fence::new(
        before + 1,
        tether_core::Access::RWO,
        vec![tether_core::Admission { node: "tl9-a".into(), epoch: before + 1 }],
    )
    .unwrap();
    let refused = tether_driver::store::VolumeStore::apply_fence(&store, &volumes[0], &late).unwrap_err();
    assert!(
        matches!(refused, tether_driver::store::StoreError::Fence(tether_core::CoreError::StaleFence { .. })),
        "{refused}"
    );
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn a_leader_that_loses_its_lease_stops_serving_and_exits_non_zero() {
    let env = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let mut leader =
        spawn(dir.path(), "tl7-leader", "lost.tether.test", &["--leader-election", "--lease-name", "tl7-lease"]);
    readyz(&leader, 200, "ready").await;
    // Someone else writes the Lease (a partition healed the wrong way): the leader must step down.
    let api = Api::<Lease>::namespaced(env.admin.clone(), "tether");
    let mut lease = api.get("tl7-lease").await.unwrap();
    let spec = lease.spec.as_mut().unwrap();
    spec.holder_identity = Some("tl7-intruder".into());
    spec.renew_time =
        Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::jiff::Timestamp::now()));
    api.replace("tl7-lease", &PostParams::default(), &lease).await.unwrap();
    let status = until("the leader to exit", || {
        let status = leader.child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert_eq!(status.code(), Some(1), "losing the Lease is a failure exit, so the pod restarts as standby");
    assert_eq!(env.lease_holder("tl7-lease").await.as_deref(), Some("tl7-intruder"), "it did not take the Lease back");
}

/// Lease `name` in `tether` as `identity` competes for it: 15 s, tried every 5 s, no sidecars.
fn lease_config(name: &str, identity: &str) -> LeaseConfig {
    LeaseConfig {
        namespace: "tether".into(),
        name: name.into(),
        identity: identity.into(),
        duration: Duration::from_secs(15),
        retry: Duration::from_secs(5),
        sidecar_leases: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn a_crashed_leader_is_replaced_once_its_lease_lapses_on_the_standbys_clock() {
    let env = setup().await;
    let config = |identity: &str| lease_config("tl6-lease", identity);
    let (clock_a, clock_b) = (Arc::new(ManualClock::new()), Arc::new(ManualClock::new()));
    let mut a = Elector::new(env.driver.clone(), config("tl6-a"), clock_a.clone());
    let mut b = Elector::new(env.driver.clone(), config("tl6-b"), clock_b.clone());
    assert!(a.try_once().await.unwrap(), "the first comer creates and holds the Lease");
    assert!(!b.try_once().await.unwrap());
    assert!(a.try_once().await.unwrap(), "the leader renews");
    clock_b.advance(Duration::from_mins(1));
    assert!(!b.try_once().await.unwrap(), "a renewal B has just seen restarts B's count");
    // A stops renewing (crashed). B waits out the duration on its own clock, not A's timestamps.
    clock_b.advance(Duration::from_secs(14));
    assert!(!b.try_once().await.unwrap(), "not lapsed yet");
    clock_b.advance(Duration::from_secs(1));
    assert!(b.try_once().await.unwrap(), "lapsed: B takes over");
    assert_eq!(env.lease_holder("tl6-lease").await.as_deref(), Some("tl6-b"));
    assert!(!a.try_once().await.unwrap(), "A, back, sees B holding it");
    assert!(!*a.leading().borrow());
    let lease = Api::<Lease>::namespaced(env.admin.clone(), "tether").get("tl6-lease").await.unwrap();
    assert_eq!(lease.spec.unwrap().lease_transitions, Some(1));
}

/// A sidecar's Lease as client-go writes it, held by `holder` (a pod's name).
async fn sidecar_lease(env: &Env, name: &str, holder: &str) {
    let lease = Lease {
        metadata: kube::api::ObjectMeta { name: Some(name.into()), ..Default::default() },
        spec: Some(k8s_openapi::api::coordination::v1::LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            renew_time: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                k8s_openapi::jiff::Timestamp::now(),
            )),
            ..Default::default()
        }),
    };
    Api::<Lease>::namespaced(env.admin.clone(), "tether").create(&PostParams::default(), &lease).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn a_takeover_frees_the_sidecar_leases_the_lost_leader_still_holds_and_no_other() {
    let env = setup().await;
    let config = |identity: &str| LeaseConfig {
        sidecar_leases: vec!["tl11-attacher".into(), "tl11-provisioner".into(), "tl11-absent".into()],
        ..lease_config("tl11-lease", identity)
    };
    let (clock_a, clock_b) = (Arc::new(ManualClock::new()), Arc::new(ManualClock::new()));
    let mut a = Elector::new(env.driver.clone(), config("tl11-a"), clock_a.clone());
    let mut b = Elector::new(env.driver.clone(), config("tl11-b"), clock_b.clone());
    let first = a.try_once().await;
    let lease = Api::<Lease>::namespaced(env.admin.clone(), "tether").get_opt("tl11-lease").await.unwrap();
    assert!(matches!(first, Ok(true)), "the first comer holds the Lease: {first:?}, {lease:?}");
    // A's attacher leads beside it; the provisioner's Lease is another pod's.
    sidecar_lease(&env, "tl11-attacher", "tl11-a").await;
    sidecar_lease(&env, "tl11-provisioner", "tl11-other").await;
    assert!(!b.try_once().await.unwrap());
    assert_eq!(env.lease_holder("tl11-attacher").await.as_deref(), Some("tl11-a"), "a standby frees nothing");
    // A is lost with its sidecars: B takes over once the Lease lapses on its clock.
    clock_b.advance(Duration::from_secs(15));
    assert!(b.try_once().await.unwrap(), "lapsed: B takes over");
    assert_eq!(env.lease_holder("tl11-attacher").await, None, "A's sidecar's Lease is free for B's");
    assert_eq!(env.lease_holder("tl11-provisioner").await.as_deref(), Some("tl11-other"), "not A's: kept");
    // tl11-absent did not exist at the takeover. A renewal by the holder is no takeover: a
    // sidecar Lease held by the lost pod's identity is freed only when the driver's changes hands.
    sidecar_lease(&env, "tl11-absent", "tl11-a").await;
    assert!(b.try_once().await.unwrap(), "B renews");
    assert_eq!(env.lease_holder("tl11-absent").await.as_deref(), Some("tl11-a"), "freed only at a takeover");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn a_migration_past_its_timeout_posts_one_migration_failed_warning() {
    let env = setup().await;
    env.claim("tl-timeout").await;
    env.node("tl8-a").await;
    env.node("tl8-b").await;
    let (mut h, layer) = live(&env, "timeout.tether.test").await;
    exists(&layer, "tl8-a", true).await;
    exists(&layer, "tl8-b", true).await;
    let params = [claimed("tl-timeout")[0], claimed("tl-timeout")[1], ("migrationTimeoutSeconds", "60")];
    let volume = h.create("tl8-vm", true, &params).await;
    h.rwx(&volume, "tl8-a").await.unwrap();
    h.rwx(&volume, "tl8-b").await.unwrap();
    env.event("tl-timeout", Reason::MigrationStarted).await;
    h.clock.advance(Duration::from_secs(61));
    assert_eq!(h.driver.reconcile().unwrap().timed_out_migrations.len(), 1);
    assert!(h.driver.reconcile().unwrap().timed_out_migrations.is_empty(), "reported once");

    let failed = env.event("tl-timeout", Reason::MigrationFailed).await;
    assert_eq!(failed.type_.as_deref(), Some("Warning"));
    let message = failed.message.unwrap();
    assert!(message.contains("tl8-a") && message.contains("tl8-b") && message.contains("timeout"), "{message}");
    let metrics = h.driver.metrics.render();
    assert!(metrics.contains("rds_csi_events_posted_total{reason=\"MigrationFailed\"} 1"), "{metrics}");
    assert!(metrics.contains("rds_csi_migration_migrations_total{result=\"timeout\"} 1"), "{metrics}");
    assert_eq!(h.nodes_of(&volume), ["tl8-a", "tl8-b"], "the engine never detaches a side by itself");

    // The orchestrator ends it: the source leaves, the migration completes.
    h.unpublish(&volume, "tl8-a").await.unwrap();
    let completed = env.event("tl-timeout", Reason::MigrationCompleted).await;
    assert_eq!(completed.type_.as_deref(), Some("Normal"));
    let message = completed.message.unwrap();
    assert!(message.contains("from \"tl8-a\" to \"tl8-b\" completed after 61"), "{message}");
    let started = env.event("tl-timeout", Reason::MigrationStarted).await;
    assert_eq!(started.type_.as_deref(), Some("Normal"));
    assert!(started.message.unwrap().contains("timeout 60s"));
}
