//! The Kubernetes event sink: events land on the PVC of a real API server (run by
//! `make test-k8s`), and a full queue or an unreachable server costs a CSI call nothing but a
//! counted drop.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Harness;
use k8s_openapi::api::core::v1::{Event, Namespace, PersistentVolumeClaim};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{ListParams, ObjectMeta, PostParams};
use kube::{Api, Client};
use tether_driver::events::Reason;
use tether_driver::k8s::{self, KubeSink, Poster, Reporter};
use tether_driver::volume::{PVC_NAMESPACE_PARAM, PVC_NAME_PARAM};
use tonic::Code;

const NS: &str = "tether-events";
const PVC: &str = "data";
/// How long the API server may take to show an event before the test fails.
const DEADLINE: Duration = Duration::from_secs(30);

async fn sink(kubeconfig: &Path, capacity: usize) -> (Arc<KubeSink>, Poster) {
    let config = k8s::config(Some(kubeconfig)).await.unwrap().expect("a kubeconfig switches Kubernetes on");
    let reporter = Reporter { component: "tether.csi.test".into(), instance: "node-a".into() };
    k8s::sink(Client::try_from(config).unwrap(), reporter, capacity)
}

/// A driver whose events go to `kubeconfig`'s server, and its poster (not running yet).
async fn driver(kubeconfig: &Path, capacity: usize) -> (Harness, Poster) {
    let (sink, poster) = sink(kubeconfig, capacity).await;
    (Harness::start_with(tempfile::tempdir().unwrap(), Some(sink)).await, poster)
}

/// The same, with the poster running.
async fn posting(kubeconfig: &Path) -> Harness {
    let (h, poster) = driver(kubeconfig, k8s::QUEUE_CAPACITY).await;
    tokio::spawn(poster.run(h.driver.metrics.clone()));
    h
}

async fn create_claimed(h: &mut Harness) -> String {
    h.create("pvc-events", false, &[(PVC_NAMESPACE_PARAM, NS), (PVC_NAME_PARAM, PVC)]).await
}

fn unreachable_kubeconfig(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    let text = "apiVersion: v1\nkind: Config\ncurrent-context: c\n\
        clusters: [{name: c, cluster: {server: 'https://127.0.0.1:1', insecure-skip-tls-verify: true}}]\n\
        users: [{name: u, user: {token: nobody}}]\n\
        contexts: [{name: c, context: {cluster: c, user: u}}]\n";
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_queue_drops_and_counts_without_failing_the_call() {
    let dir = tempfile::tempdir().unwrap();
    // The poster holds the queue open but never drains it.
    let (mut h, _poster) = driver(&unreachable_kubeconfig(dir.path()), 1).await;
    let volume = create_claimed(&mut h).await;
    h.rwo(&volume, "node-a").await.unwrap();
    let refused = h.rwo(&volume, "node-b").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(h.driver.metrics.events_dropped(Reason::VolumeAttached), 0, "the first event fit in the queue");
    assert_eq!(h.driver.metrics.events_dropped(Reason::AttachmentConflict), 1);
    assert!(h.driver.metrics.render().contains("rds_csi_events_dropped_total{reason=\"AttachmentConflict\"} 1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unreachable_api_server_counts_the_event_dropped_and_publish_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = posting(&unreachable_kubeconfig(dir.path())).await;
    let volume = create_claimed(&mut h).await;
    h.rwo(&volume, "node-a").await.unwrap();
    let deadline = Instant::now() + DEADLINE;
    while h.driver.metrics.events_dropped(Reason::VolumeAttached) == 0 {
        assert!(Instant::now() < deadline, "the failed post was never counted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(h.driver.metrics.render().contains("rds_csi_events_dropped_total{reason=\"VolumeAttached\"} 1"));
}

fn meta(name: &str) -> ObjectMeta {
    ObjectMeta { name: Some(name.into()), namespace: Some(NS.into()), ..ObjectMeta::default() }
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// As the admin: the namespace, the PVC, and the driver's right to post events there.
async fn fixtures(admin: &Client) {
    let pp = PostParams::default();
    let ns =
        Namespace { metadata: ObjectMeta { name: Some(NS.into()), ..ObjectMeta::default() }, ..Namespace::default() };
    Api::<Namespace>::all(admin.clone()).create(&pp, &ns).await.unwrap();
    let pvc: PersistentVolumeClaim = from_json(serde_json::json!({
        "metadata": {"name": PVC, "namespace": NS},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }));
    Api::<PersistentVolumeClaim>::namespaced(admin.clone(), NS).create(&pp, &pvc).await.unwrap();
    let may_post = PolicyRule {
        api_groups: Some(vec![String::new()]),
        resources: Some(vec!["events".into()]),
        verbs: vec!["create".into()],
        ..PolicyRule::default()
    };
    let role = Role { metadata: meta("events"), rules: Some(vec![may_post]) };
    Api::<Role>::namespaced(admin.clone(), NS).create(&pp, &role).await.unwrap();
    let binding = RoleBinding {
        metadata: meta("events"),
        role_ref: RoleRef { api_group: "rbac.authorization.k8s.io".into(), kind: "Role".into(), name: "events".into() },
        subjects: Some(vec![Subject {
            kind: "ServiceAccount".into(),
            name: "tether-csi-controller".into(),
            namespace: Some("tether".into()),
            ..Subject::default()
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), NS).create(&pp, &binding).await.unwrap();
}

/// Polls the API server until the PVC has an event of `reason`.
async fn event_on_pvc(admin: &Client, reason: Reason) -> Event {
    let api = Api::<Event>::namespaced(admin.clone(), NS);
    let params = ListParams::default().fields(&format!("involvedObject.name={PVC}"));
    let deadline = Instant::now() + DEADLINE;
    loop {
        let events = api.list(&params).await.unwrap();
        if let Some(e) = events.items.into_iter().find(|e| e.reason.as_deref() == Some(reason.as_str())) {
            return e;
        }
        assert!(Instant::now() < deadline, "no {} event on the PVC", reason.as_str());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: make test-k8s"]
async fn attach_and_conflict_events_land_on_the_pvc() {
    let admin_config = std::env::var("KUBECONFIG").expect("KUBECONFIG: the admin's, set by tests/k8s/run.sh");
    let driver_config =
        std::env::var("TETHER_K8S_DRIVER_KUBECONFIG").expect("TETHER_K8S_DRIVER_KUBECONFIG, set by tests/k8s/run.sh");
    let admin = Client::try_from(k8s::config(Some(Path::new(&admin_config))).await.unwrap().unwrap()).unwrap();
    fixtures(&admin).await;
    let mut h = posting(Path::new(&driver_config)).await;
    let volume = create_claimed(&mut h).await;
    h.rwo(&volume, "node-a").await.unwrap();
    let refused = h.rwo(&volume, "node-b").await.unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");

    let attached = event_on_pvc(&admin, Reason::VolumeAttached).await;
    assert_eq!(attached.type_.as_deref(), Some("Normal"));
    assert_eq!(attached.involved_object.kind.as_deref(), Some("PersistentVolumeClaim"));
    assert!(attached.message.as_deref().unwrap().contains("\"node-a\""), "{attached:?}");
    let conflict = event_on_pvc(&admin, Reason::AttachmentConflict).await;
    assert_eq!(conflict.type_.as_deref(), Some("Warning"));
    let message = conflict.message.unwrap();
    assert!(message.contains("node-a") && message.contains(&volume), "{message}");
    assert_eq!(h.driver.metrics.events_dropped(Reason::VolumeAttached), 0);
    assert_eq!(h.driver.metrics.events_dropped(Reason::AttachmentConflict), 0);
}
