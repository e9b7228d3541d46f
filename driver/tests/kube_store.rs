//! The cluster store (`--store=kubernetes`) against the real API server of `make test-k8s` (each
//! test is ignored in a plain `cargo test`): concurrent writers on one object, an older term that
//! re-reads and is refused, hand-edited objects refused by name, a node plugin reading a fence
//! written a moment ago (with deploy/'s RBAC: get and nothing else), the API server stopped
//! under a store call, and `tether-csi migrate-store` moving an embedded store in. Tests run one
//! at a time (`--test-threads=1`): one of them stops the server. Each test uses volume ids of
//! its own; the term singleton is shared and only ever rises.

mod apiserver;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use apiserver::{apiserver, apply_manifest, env, until_within};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Config};
use serde_json::json;
use tether_core::{
    Access, AccessMode, Admission, AttachmentEntry, CoreError, Fence, ManualClock, VolumeEntry, VolumeFence,
};
use tether_driver::controller::EPOCH_KEY;
use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode as CsiMode, AccessType, MountVolume};
use tether_driver::csi::{
    ControllerPublishVolumeRequest, CreateVolumeRequest, NodePublishVolumeRequest, NodeStageVolumeRequest,
    VolumeCapability,
};
use tether_driver::events::LogSink;
use tether_driver::k8s;
use tether_driver::mount::RecordedMounts;
use tether_driver::nodes::StaticNodes;
use tether_driver::status::DriverError;
use tether_driver::store::kube::resource::{object_name, TetherVolume};
use tether_driver::store::{EmbeddedStore, KubeFailure, KubeStore, Role, StoreError, VolumeStore};
use tether_driver::volume::{VolumeKind, VolumeMeta};
use tether_driver::{Driver, Parts, Settings};
use tonic::{Code, Status};

const TIMEOUT: Duration = Duration::from_secs(5);
const NODE_USER: &str = "system:serviceaccount:tether:tether-csi-node";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

async fn config(kubeconfig: &str) -> Config {
    k8s::config(Some(Path::new(kubeconfig))).await.unwrap().unwrap()
}

/// The admin's client, the driver identity's configuration and the node plugin's (the admin
/// impersonating the node `ServiceAccount`), with deploy/'s namespace, `ServiceAccounts`, CRDs and
/// store RBAC applied, once the CRDs are served.
struct Env {
    admin: Client,
    driver: Config,
    node: Config,
}

fn setup(rt: &tokio::runtime::Runtime) -> Env {
    rt.block_on(async {
        let admin_config = config(&env("KUBECONFIG")).await;
        let admin = Client::try_from(admin_config.clone()).unwrap();
        for file in
            ["00-namespace.yaml", "20-rbac-controller.yaml", "22-rbac-node.yaml", "00-crd.yaml", "23-rbac-store.yaml"]
        {
            apply_manifest(&admin, file).await;
        }
        let driver = config(&env("TETHER_K8S_DRIVER_KUBECONFIG")).await;
        let volumes: Api<TetherVolume> = Api::all(Client::try_from(driver.clone()).unwrap());
        until_within(Duration::from_mins(1), "the CRDs to be served", || {
            let volumes = volumes.clone();
            async move { volumes.list(&ListParams::default().limit(1)).await.ok() }
        })
        .await;
        let mut node = admin_config;
        node.auth_info.impersonate = Some(NODE_USER.into());
        node.auth_info.impersonate_groups =
            Some(vec!["system:serviceaccounts".into(), "system:serviceaccounts:tether".into()]);
        Env { admin, driver, node }
    })
}

/// One directory for every store and mount of this test process: its controllers and node
/// plugins are on one host (the volumes' data stays on the local disk).
fn host() -> &'static Path {
    static HOST: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    HOST.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn store(config: &Config, role: Role) -> KubeStore {
    KubeStore::open(config.clone(), host(), 1 << 40, role, TIMEOUT).unwrap()
}

/// A controller store that took the next term.
fn controller(env: &Env) -> KubeStore {
    let s = store(&env.driver, Role::Controller);
    s.next_term(0).unwrap();
    s
}

fn meta(id: &str) -> VolumeMeta {
    VolumeMeta {
        id: id.into(),
        name: format!("pvc-{id}"),
        kind: VolumeKind::Filesystem,
        capacity_bytes: 1 << 20,
        parameters: BTreeMap::new(),
    }
}

fn fence(epoch: u64, nodes: &[(&str, u64)]) -> Fence {
    let nodes = nodes.iter().map(|(n, e)| Admission { node: (*n).into(), epoch: *e }).collect();
    Fence::new(epoch, Access { mode: AccessMode::Rwo, readonly: false }, nodes).unwrap()
}

fn code(e: StoreError) -> Code {
    Status::from(DriverError::Store(e)).code()
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn concurrent_writers_on_one_object_apply_each_fence_once_and_refuse_only_older_ones() {
    let rt = runtime();
    let env = setup(&rt);
    let first = controller(&env);
    let term = first.term();
    first.create(&meta("ks-race")).unwrap();
    // Eight writers at one term, each with its own client and cache, as eight processes would
    // be; each applies ten fences, their epochs interleaved with the others'.
    let writers: Vec<KubeStore> = (0..8)
        .map(|_| {
            let s = store(&env.driver, Role::Controller);
            s.next_term(term).unwrap();
            s
        })
        .collect();
    let top = writers.iter().map(KubeStore::term).max().unwrap();
    let base = top << 32;
    let results: Vec<Vec<(u64, Result<(), StoreError>)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = writers
            .iter()
            .enumerate()
            .map(|(k, w)| {
                scope.spawn(move || {
                    w.set_term(top);
                    (0..10u64)
                        .map(|i| {
                            let epoch = base + 1 + i * 8 + k as u64;
                            (epoch, w.apply_fence("ks-race", &fence(epoch, &[("n1", base + 1)])))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut applied = Vec::new();
    for (epoch, result) in results.into_iter().flatten() {
        match result {
            Ok(()) => applied.push(epoch),
            Err(StoreError::Fence(CoreError::StaleFence { epoch: refused, applied: newer, .. })) => {
                assert_eq!(refused, epoch);
                assert!(newer > epoch, "fence {epoch} refused for {newer}, which is not newer");
            }
            Err(other) => panic!("fence {epoch}: {other}"),
        }
    }
    let last = base + 80;
    assert!(applied.contains(&last), "the newest fence of all is always applied");
    let stored = writers[0].applied_fence("ks-race").unwrap().unwrap();
    assert_eq!(stored.epoch, last, "the stored fence is the newest acknowledged one");
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn a_writer_of_an_older_term_is_refused_even_after_it_rereads() {
    let rt = runtime();
    let env = setup(&rt);
    let old = controller(&env);
    old.create(&meta("ks-term")).unwrap();
    old.apply_fence("ks-term", &fence((old.term() << 32) + 1, &[("n1", (old.term() << 32) + 1)])).unwrap();
    // A new leader as Driver::open runs it: load, then take the next term.
    let new = store(&env.driver, Role::Controller);
    new.load().unwrap();
    new.next_term(0).unwrap();
    assert!(new.term() > old.term());
    let refence = fence(new.term() << 32, &[("n1", (old.term() << 32) + 1)]);
    new.apply_fence("ks-term", &refence).unwrap();

    // The old leader's cached version is stale: its replace conflicts, it re-reads, and the
    // object it reads was written by a newer term.
    let late = fence((old.term() << 32) + 2, &[("n2", (old.term() << 32) + 2)]);
    let refused = old.save(&meta("ks-term"), None, Some(&late)).unwrap_err();
    assert!(
        matches!(&refused, StoreError::TermSuperseded { ours, found, object }
            if *ours == old.term() && *found == new.term() && object.ends_with("/ks-term")),
        "{refused}"
    );
    assert_eq!(code(refused), Code::Unavailable);
    // Even a fence above the new one: the term, not the epoch, refuses it.
    let high = fence((new.term() << 32) + 5, &[("n2", (new.term() << 32) + 5)]);
    assert!(matches!(old.apply_fence("ks-term", &high), Err(StoreError::TermSuperseded { .. })));
    assert_eq!(new.applied_fence("ks-term").unwrap(), Some(refence), "nothing of the old leader's landed");
    assert!(matches!(old.delete("ks-term"), Err(StoreError::TermSuperseded { .. })));
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn an_old_leaders_write_landing_after_the_new_leader_read_stops_the_new_leader_and_is_kept() {
    let rt = runtime();
    let env = setup(&rt);
    let old = controller(&env);
    old.create(&meta("ks-late")).unwrap();
    let first = (old.term() << 32) + 1;
    old.apply_fence("ks-late", &fence(first, &[("n1", first)])).unwrap();
    // The new leader loads and takes its term; its re-fence of the volume is not written yet.
    let new = store(&env.driver, Role::Controller);
    new.load().unwrap();
    new.next_term(0).unwrap();
    // The old leader's write that was in flight lands now: the object is still of its term.
    let late = (old.term() << 32) + 2;
    old.apply_fence("ks-late", &fence(late, &[("n2", late)])).unwrap();

    let refence = VolumeFence { volume: "ks-late".into(), fence: fence(new.term() << 32, &[("n1", first)]) };
    let stopped = new.apply_fences(std::slice::from_ref(&refence)).unwrap_err();
    assert!(
        matches!(&stopped, StoreError::ChangedAfterRead { ours, found, object }
            if *ours == new.term() && *found == old.term() && object.ends_with("/ks-late")),
        "{stopped}"
    );
    assert!(stopped.stops_leader(), "the new leader stops serving rather than decide on a stale volume");
    assert_eq!(code(stopped), Code::Unavailable);
    let kept = new.applied_fence("ks-late").unwrap().unwrap();
    assert_eq!(kept.epoch, late, "the old leader's acknowledged write is kept, not merged over");
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn a_leader_that_meets_a_newer_term_stops_serving() {
    let rt = runtime();
    let env = setup(&rt);
    controller(&env).create(&meta("ks-stop")).unwrap();
    // Each leader starts as tether-csi does: Driver::open loads, takes the next term, re-fences.
    let old = driver_on(Arc::new(store(&env.driver, Role::Controller)), "n1");
    assert!(old.is_ready() && old.volume_count() >= 1);
    let new = driver_on(Arc::new(store(&env.driver, Role::Controller)), "n1");
    let publish = |driver: &Driver| {
        let req = tether_driver::csi::ControllerPublishVolumeRequest {
            volume_id: "ks-stop".into(),
            node_id: "n1".into(),
            volume_capability: Some(capability()),
            ..Default::default()
        };
        driver.controller_publish(&req)
    };
    publish(&new).unwrap();
    let refused = publish(&old).unwrap_err();
    assert_eq!(Status::from(refused).code(), Code::Unavailable);
    assert!(old.is_shutting_down(), "the superseded leader stops serving");
    assert!(new.is_ready(), "the new leader serves on");
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn a_hand_edited_object_is_refused_by_name() {
    let rt = runtime();
    let env = setup(&rt);
    let s = controller(&env);
    for id in ["ks-edit-id", "ks-edit-fence"] {
        s.create(&meta(id)).unwrap();
    }
    let volumes: Api<TetherVolume> = Api::all(env.admin.clone());
    let patch = |name: &str, body: serde_json::Value| {
        rt.block_on(volumes.patch(name, &PatchParams::default(), &Patch::Merge(body)))
    };
    patch("ks-edit-id", json!({"spec": {"volumeId": "ks-other"}})).unwrap();
    let twice = json!([{"node": "n1", "admittedAt": 3}, {"node": "n1", "admittedAt": 3}]);
    patch("ks-edit-fence", json!({"spec": {"fence": {"epoch": 5, "mode": "RWX", "readonly": false, "nodes": twice}}}))
        .unwrap();
    // The schema the API server enforces is the CRD's: a term that is no number never lands.
    let typed = patch("ks-edit-fence", json!({"spec": {"term": "seven"}})).unwrap_err();
    assert!(matches!(typed, kube::Error::Api(ref s) if s.code == 422), "{typed}");

    let fresh = controller(&env);
    let named = |e: StoreError, name: &str, what: &str| {
        assert!(
            matches!(&e, StoreError::BadObject { object, message }
            if object == &format!("tethervolumes.tether.io/{name}") && message.contains(what)),
            "{e}"
        );
        assert_eq!(code(e), Code::Internal);
    };
    let load = fresh.load().unwrap_err();
    assert!(matches!(load, StoreError::BadObject { .. }), "{load}");
    named(fresh.save(&meta("ks-edit-id"), None, None).unwrap_err(), "ks-edit-id", "spec.volumeId");
    named(fresh.applied_fence("ks-edit-fence").unwrap_err(), "ks-edit-fence", "spec.fence");
    let node = store(&env.node, Role::Node);
    named(node.applied_fence("ks-edit-fence").unwrap_err(), "ks-edit-fence", "spec.fence");
    for id in ["ks-edit-id", "ks-edit-fence"] {
        rt.block_on(volumes.delete(&object_name(id), &DeleteParams::default())).unwrap();
    }
}

/// A driver on `store` whose Node service is `node`, on a manual clock.
fn driver_on(store: Arc<dyn VolumeStore>, node: &str) -> Driver {
    let parts = Parts {
        clock: Arc::new(ManualClock::new()),
        store,
        nodes: Arc::new(StaticNodes::new([node.to_owned()])),
        events: Arc::new(LogSink),
        changes: None,
        awaits_rebuild: false,
    };
    let driver = Driver::open(settings(node), parts).unwrap();
    // A leader that finished starting: every earlier test's volume re-fenced at its term, so its
    // background writes never meet the next test's leader.
    driver.await_refence().unwrap();
    driver
}

fn settings(node: &str) -> Settings {
    Settings {
        driver_name: "tether.csi.test".into(),
        node_id: node.into(),
        grace_period: Duration::from_secs(30),
        default_migration_timeout: Duration::from_mins(5),
        metrics_namespace: "rds_csi".into(),
        lease_term: 0,
    }
}

fn capability() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(CsiMode { mode: Mode::SingleNodeWriter.into() }),
    }
}

/// A node plugin's driver on the cluster store, mounting into a table.
fn node_driver(env: &Env, node: &str) -> Driver {
    let mut driver = driver_on(Arc::new(store(&env.node, Role::Node)), node);
    driver.set_mounts(Arc::new(RecordedMounts::new(host()).unwrap()));
    driver
}

fn stage(driver: &Driver, id: &str, epoch: u64) -> Result<(), DriverError> {
    driver.node_stage(&NodeStageVolumeRequest {
        volume_id: id.into(),
        staging_target_path: host().join("staging").join(id).display().to_string(),
        volume_capability: Some(capability()),
        publish_context: HashMap::from([(EPOCH_KEY.to_owned(), epoch.to_string())]),
        ..Default::default()
    })
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn a_node_plugin_reads_a_volume_and_fence_written_a_moment_ago_and_may_only_get() {
    let rt = runtime();
    let env = setup(&rt);
    // The node plugin starts first: it loads nothing, so the volume below is new to it.
    let node = node_driver(&env, "n1");
    let missing = stage(&node, "ks-node", 1).unwrap_err();
    assert!(matches!(missing, DriverError::VolumeNotFound(_)), "{missing}");

    let c = controller(&env);
    c.create(&meta("ks-node")).unwrap();
    let admitted = (c.term() << 32) + 1;
    c.apply_fence("ks-node", &fence(admitted, &[("n1", admitted)])).unwrap();
    stage(&node, "ks-node", admitted).unwrap();

    // A handoff to n2 a moment later: n1's session is refused at its next call.
    c.apply_fence("ks-node", &fence(admitted + 1, &[("n2", admitted + 1)])).unwrap();
    let fenced = stage(&node, "ks-node", admitted).unwrap_err();
    assert_eq!(Status::from(fenced).code(), Code::FailedPrecondition);

    // The node plugin writes nothing, and its identity may not list or write either.
    let read_only = store(&env.node, Role::Node);
    let e = read_only.save(&meta("ks-node"), None, None).unwrap_err();
    assert!(matches!(&e, StoreError::Kube { source, .. } if matches!(**source, KubeFailure::ReadOnly)), "{e}");
    let as_node: Api<TetherVolume> = {
        let _in_runtime = rt.enter();
        Api::all(Client::try_from(env.node.clone()).unwrap())
    };
    let list = rt.block_on(as_node.list(&ListParams::default())).unwrap_err();
    assert!(matches!(list, kube::Error::Api(ref s) if s.code == 403), "{list}");
    let mut object = rt.block_on(as_node.get("ks-node")).unwrap();
    object.spec.term += 1;
    let write = rt.block_on(as_node.replace("ks-node", &PostParams::default(), &object)).unwrap_err();
    assert!(matches!(write, kube::Error::Api(ref s) if s.code == 403), "{write}");
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn a_node_call_reads_the_volume_and_its_fence_in_one_request() {
    let rt = runtime();
    let env = setup(&rt);
    let c = controller(&env);
    c.create(&meta("ks-one-get")).unwrap();
    let admitted = (c.term() << 32) + 1;
    c.apply_fence("ks-one-get", &fence(admitted, &[("n1", admitted)])).unwrap();
    let store = Arc::new(store(&env.node, Role::Node));
    let mut node = driver_on(Arc::clone(&store) as Arc<dyn VolumeStore>, "n1");
    node.set_mounts(Arc::new(RecordedMounts::new(host()).unwrap()));
    let sent = |call: &dyn Fn() -> Result<(), DriverError>| {
        let before = store.requests_sent();
        let result = call();
        (store.requests_sent() - before, result)
    };
    let (requests, staged) = sent(&|| stage(&node, "ks-one-get", admitted));
    staged.unwrap();
    assert_eq!(requests, 1, "a stage reads the record and the fence in one GET");
    let target = host().join("targets").join("ks-one-get").display().to_string();
    let (requests, published) = sent(&|| {
        node.node_publish(&NodePublishVolumeRequest {
            volume_id: "ks-one-get".into(),
            staging_target_path: host().join("staging").join("ks-one-get").display().to_string(),
            target_path: target.clone(),
            volume_capability: Some(capability()),
            publish_context: HashMap::from([(EPOCH_KEY.to_owned(), admitted.to_string())]),
            ..Default::default()
        })
    });
    published.unwrap();
    assert_eq!(requests, 1, "a publish reads the record and the fence in one GET");
    c.apply_fence("ks-one-get", &fence(admitted + 1, &[("n2", admitted + 1)])).unwrap();
    let (requests, fenced) = sent(&|| stage(&node, "ks-one-get", admitted));
    assert_eq!(Status::from(fenced.unwrap_err()).code(), Code::FailedPrecondition, "the fence read is the new one");
    assert_eq!(requests, 1, "a refused stage also reads once");
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn an_idempotent_publish_sends_no_request_to_the_api_server() {
    let rt = runtime();
    let env = setup(&rt);
    let c = Arc::new(controller(&env));
    let driver = driver_on(Arc::clone(&c) as Arc<dyn VolumeStore>, "n1");
    let create = CreateVolumeRequest {
        name: "ks-idempotent".into(),
        volume_capabilities: vec![capability()],
        ..Default::default()
    };
    let volume = driver.create_volume(&create).unwrap().volume_id;
    let publish = ControllerPublishVolumeRequest {
        volume_id: volume.clone(),
        node_id: "n1".into(),
        volume_capability: Some(capability()),
        ..Default::default()
    };
    let before = c.requests_sent();
    let first = driver.controller_publish(&publish).unwrap();
    assert_eq!(c.requests_sent() - before, 1, "the attach is one conditional write");
    let before = c.requests_sent();
    let again = driver.controller_publish(&publish).unwrap();
    assert_eq!(again.publish_context, first.publish_context, "the same admission");
    assert_eq!(c.requests_sent() - before, 0, "an AlreadyAttached publish sends nothing");
    // The write kept no server-side apply bookkeeping: only Tether writes these objects.
    let stored = rt.block_on(Api::<TetherVolume>::all(env.admin.clone()).get(&object_name(&volume))).unwrap();
    assert_eq!(stored.metadata.managed_fields.unwrap_or_default(), [], "no managedFields after the store's write");
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn the_api_server_stopped_under_store_calls_refuses_unavailable_and_loses_nothing_acknowledged() {
    let rt = runtime();
    let env = setup(&rt);
    let c = controller(&env);
    let node = store(&env.node, Role::Node);
    c.create(&meta("ks-outage")).unwrap();
    let before = fence((c.term() << 32) + 1, &[("n1", (c.term() << 32) + 1)]);
    c.apply_fence("ks-outage", &before).unwrap();

    apiserver("stop-apiserver");
    let during = fence((c.term() << 32) + 2, &[("n2", (c.term() << 32) + 2)]);
    let write = c.apply_fence("ks-outage", &during).unwrap_err();
    assert!(write.is_unavailable(), "{write}");
    let read = node.applied_fence("ks-outage").unwrap_err();
    assert!(read.is_unavailable(), "{read}");
    assert!(read.to_string().contains("tethervolumes.tether.io/ks-outage"), "says which object: {read}");
    assert_eq!(code(read), Code::Unavailable);
    apiserver("start-apiserver");

    let after = until_within_blocking(|| node.applied_fence("ks-outage").ok());
    assert_eq!(after, Some(before), "the acknowledged fence, and not the refused one");
    c.apply_fence("ks-outage", &during).unwrap();
    assert_eq!(node.applied_fence("ks-outage").unwrap(), Some(during));
}

/// Polls a blocking `check` until it returns `Some` (the API server coming back).
fn until_within_blocking<T>(mut check: impl FnMut() -> Option<T>) -> T {
    runtime().block_on(until_within(Duration::from_mins(1), "the API server to answer again", || {
        let found = check();
        async move { found }
    }))
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn migrate_store_moves_every_record_and_fence_and_refuses_to_overwrite() {
    let rt = runtime();
    let env = setup(&rt);
    let dir = tempfile::tempdir().unwrap();
    let embedded = EmbeddedStore::open(dir.path(), 1 << 40).unwrap();
    let old_term = embedded.next_term(0).unwrap();
    let epoch = (old_term << 32) + 1;
    let entry = VolumeEntry {
        volume: "ks-moved-a".into(),
        epoch,
        attachment: Some(AttachmentEntry {
            mode: AccessMode::Rwo,
            readonly: false,
            nodes: vec!["n1".into()],
            admitted: vec![epoch],
            since_unix_nanos: 1_700_000_000_000_000_000,
            migration_timeout_ms: None,
            timeout_reported: false,
        }),
        last_detach: None,
    };
    let mut claimed = meta("ks-moved-a");
    claimed.parameters.insert("csi.storage.k8s.io/pvc/name".into(), "data".into());
    embedded.create(&claimed).unwrap();
    embedded.save(&claimed, Some(&entry), Some(&fence(epoch, &[("n1", epoch)]))).unwrap();
    embedded.create(&meta("ks-moved-b")).unwrap();
    drop(embedded);

    let migrate = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_tether-csi"))
            .args(["migrate-store", "--state-dir"])
            .arg(dir.path())
            .args(["--kubeconfig", &apiserver::env("TETHER_K8S_DRIVER_KUBECONFIG")])
            .output()
            .unwrap()
    };
    let out = migrate();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let cluster = controller(&env);
    assert!(cluster.term() > old_term + 1, "the cluster's term is above the embedded store's");
    let moved: Vec<_> = cluster.load().unwrap().into_iter().filter(|v| v.meta.id.starts_with("ks-moved-")).collect();
    let embedded = EmbeddedStore::open(dir.path(), 1 << 40).unwrap();
    let mut before = embedded.load().unwrap();
    before.sort_by(|a, b| a.meta.id.cmp(&b.meta.id));
    assert_eq!(moved.len(), 2);
    for v in &moved {
        assert!(before.contains(v), "{} moved whole", v.meta.id);
    }
    assert_eq!(cluster.applied_fence("ks-moved-a").unwrap(), Some(fence(epoch, &[("n1", epoch)])));
    assert_eq!(cluster.applied_fence("ks-moved-b").unwrap(), None);

    let again = migrate();
    assert!(!again.status.success());
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(said.contains("tethervolumes.tether.io/ks-moved-a"), "names the object it will not overwrite: {said}");
}

/// The admin's kubeconfig, acting as the node plugin's `ServiceAccount` (impersonation), in `dir`.
fn node_kubeconfig(dir: &Path) -> std::path::PathBuf {
    let mut file = kube::config::Kubeconfig::read_from(apiserver::env("KUBECONFIG")).unwrap();
    for named in &mut file.auth_infos {
        let auth = named.auth_info.get_or_insert_with(Default::default);
        auth.impersonate = Some(NODE_USER.into());
        auth.impersonate_groups = Some(vec!["system:serviceaccounts".into(), "system:serviceaccounts:tether".into()]);
    }
    let path = dir.join("node.kubeconfig");
    std::fs::write(&path, serde_saphyr::to_string(&file).unwrap()).unwrap();
    path
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn a_node_plugin_process_checks_each_call_against_the_api_server_and_refuses_unavailable_without_it() {
    let rt = runtime();
    let env = setup(&rt);
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("node.sock");
    let log = std::fs::File::create(dir.path().join("node.log")).unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_tether-csi"))
        .args(["--endpoint", &format!("unix://{}", socket.display()), "--node-id", "n1", "--metrics-address", ""])
        .arg("--state-dir")
        .arg(host())
        .args(["--store=kubernetes", "--node-plugin", "--kubeconfig"])
        .arg(node_kubeconfig(dir.path()))
        .stderr(log)
        .spawn()
        .unwrap();
    let stage = |id: &str, epoch: u64| {
        rt.block_on(async {
            let channel = until_within(Duration::from_mins(1), "the node plugin's socket", || async {
                tether_driver::server::connect_unix(&socket).await.ok()
            })
            .await;
            let mut node = tether_driver::csi::node_client::NodeClient::new(channel);
            let req = NodeStageVolumeRequest {
                volume_id: id.into(),
                staging_target_path: host().join("staging").join(id).display().to_string(),
                volume_capability: Some(capability()),
                publish_context: HashMap::from([(EPOCH_KEY.to_owned(), epoch.to_string())]),
                ..Default::default()
            };
            node.node_stage_volume(req).await.unwrap_err()
        })
    };
    assert_eq!(stage("ks-proc", 1).code(), Code::NotFound);
    // Created after the node plugin started, fenced to another node: read at the call.
    let c = controller(&env);
    c.create(&meta("ks-proc")).unwrap();
    let epoch = (c.term() << 32) + 1;
    c.apply_fence("ks-proc", &fence(epoch, &[("n2", epoch)])).unwrap();
    let fenced = stage("ks-proc", epoch);
    assert_eq!(fenced.code(), Code::FailedPrecondition, "{fenced:?}");
    assert!(fenced.message().contains("\"n1\""), "{fenced:?}");

    apiserver("stop-apiserver");
    let unreachable = stage("ks-proc", epoch);
    apiserver("start-apiserver");
    assert_eq!(unreachable.code(), Code::Unavailable, "{unreachable:?}");
    assert!(unreachable.message().contains("tethervolumes.tether.io/ks-proc"), "says why: {unreachable:?}");
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
#[ignore = "needs the API server of tests/k8s/run.sh (make test-k8s)"]
fn a_first_save_without_create_records_the_volume_as_proxy_mode_does() {
    // Proxy mode records an upstream's volume at its first publish, with no CreateVolume of
    // Tether's: the save creates the object, record and fence together; the next one replaces it.
    let rt = runtime();
    let env = setup(&rt);
    let c = controller(&env);
    let epoch = (c.term() << 32) + 1;
    c.save(&meta("ks-first-save"), None, Some(&fence(epoch, &[("n1", epoch)]))).unwrap();
    assert_eq!(c.applied_fence("ks-first-save").unwrap(), Some(fence(epoch, &[("n1", epoch)])));
    let fresh = controller(&env);
    let loaded = fresh.load().unwrap().into_iter().find(|v| v.meta.id == "ks-first-save").expect("recorded");
    assert_eq!(loaded.meta, meta("ks-first-save"));
    let later = fresh.term() << 32;
    fresh.save(&meta("ks-first-save"), None, Some(&fence(later + 1, &[("n2", later + 1)]))).unwrap();
    assert_eq!(fresh.applied_fence("ks-first-save").unwrap(), Some(fence(later + 1, &[("n2", later + 1)])));
    let stale = c.save(&meta("ks-first-save"), None, Some(&fence(epoch + 1, &[("n1", epoch + 1)]))).unwrap_err();
    assert!(matches!(stale, StoreError::TermSuperseded { .. }), "{stale:?}");
}
