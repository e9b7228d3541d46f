//! The cluster store's figures (`--store=kubernetes`): `controller_publish` + `controller_unpublish`
//! pairs on a driver whose store is the API server, with 1 and 64 concurrent clients (threads,
//! one volume and node each, called in process: the store's cost, not gRPC's), beside the
//! baseline of the same run: a bare conditional update (replace on the version last written) of
//! one small object per client on the same API server, two per pair. p50 is per call; pairs per
//! second is over the whole run.
//!
//! Needs an API server: `tests/k8s/run.sh 'cargo bench -p tether-benches --bench kube_store'`
//! (the admin's KUBECONFIG; the CRDs are applied from the Rust types).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use tether_benches::percentile;
use tether_core::MonotonicClock;
use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
use tether_driver::csi::{
    ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest, VolumeCapability,
};
use tether_driver::events::LogSink;
use tether_driver::nodes::StaticNodes;
use tether_driver::store::kube::resource::{TetherTerm, TetherVolume};
use tether_driver::store::{KubeStore, Role};
use tether_driver::{Driver, Parts, Settings};

const RUN_FOR: Duration = Duration::from_secs(5);
const CLIENTS: [usize; 2] = [1, 64];

struct Figures {
    p50: Duration,
    pairs_per_s: f64,
}

fn figures(mut lat: Vec<Duration>, wall: Duration) -> Figures {
    lat.sort_unstable();
    let pairs = f64::from(u32::try_from(lat.len() / 2).unwrap_or(u32::MAX));
    Figures { p50: percentile(&lat, 500), pairs_per_s: pairs / wall.as_secs_f64() }
}

/// Runs `clients` threads, each calling `pair(i)` (two timed calls) until the deadline.
fn drive(clients: usize, pair: impl Fn(usize) -> [Duration; 2] + Sync) -> Figures {
    let start = Instant::now();
    let lat = std::thread::scope(|s| {
        let threads: Vec<_> = (0..clients)
            .map(|i| {
                let pair = &pair;
                s.spawn(move || {
                    let mut lat = Vec::new();
                    while start.elapsed() < RUN_FOR {
                        lat.extend(pair(i));
                    }
                    lat
                })
            })
            .collect();
        threads.into_iter().flat_map(|t| t.join().expect("client")).collect()
    });
    figures(lat, start.elapsed())
}

fn timed(f: impl FnOnce()) -> Duration {
    let t = Instant::now();
    f();
    t.elapsed()
}

fn cap() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter.into() }),
    }
}

/// A driver on the cluster store, with 64 volumes and nodes.
fn driver(config: kube::Config, dir: &Path) -> (Arc<Driver>, Vec<String>) {
    let store = KubeStore::open(config, dir, 1 << 50, Role::Controller, Duration::from_secs(30)).expect("store");
    let nodes: Vec<String> = (0..64).map(|i| format!("bench-node-{i}")).collect();
    let parts = Parts {
        clock: Arc::new(MonotonicClock::new()),
        store: Arc::new(store),
        nodes: Arc::new(StaticNodes::new(nodes.clone())),
        events: Arc::new(LogSink),
        changes: None,
        awaits_rebuild: false,
    };
    let settings = Settings {
        driver_name: "tether.csi.bench".into(),
        node_id: nodes[0].clone(),
        grace_period: Duration::from_secs(30),
        default_migration_timeout: Duration::from_mins(5),
        metrics_namespace: "rds_csi".into(),
        lease_term: 0,
    };
    let driver = Arc::new(Driver::open(settings, parts).expect("driver"));
    let volumes = (0..64)
        .map(|i| {
            let req = CreateVolumeRequest {
                name: format!("bench-{i}"),
                volume_capabilities: vec![cap()],
                ..Default::default()
            };
            driver.create_volume(&req).expect("create").volume_id
        })
        .collect();
    (driver, volumes)
}

fn publish_pair(driver: &Driver, volume: &str, node: &str) -> [Duration; 2] {
    let publish = ControllerPublishVolumeRequest {
        volume_id: volume.into(),
        node_id: node.into(),
        volume_capability: Some(cap()),
        ..Default::default()
    };
    let unpublish =
        ControllerUnpublishVolumeRequest { volume_id: volume.into(), node_id: node.into(), ..Default::default() };
    [
        timed(|| drop(driver.controller_publish(&publish).expect("publish"))),
        timed(|| driver.controller_unpublish(&unpublish).expect("unpublish")),
    ]
}

/// Replaces `ConfigMap` `name` on the version it last wrote, with a counter in it.
async fn bare_update(api: &Api<ConfigMap>, object: &mut ConfigMap, n: u64) -> Duration {
    object.data = Some([("n".to_owned(), n.to_string())].into());
    let name = object.metadata.name.clone().expect("name");
    let t = Instant::now();
    *object = api.replace(&name, &PostParams::default(), object).await.expect("replace");
    t.elapsed()
}

fn bare_pairs(rt: &tokio::runtime::Runtime, client: &Client, clients: usize) -> Figures {
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let objects: Vec<std::sync::Mutex<ConfigMap>> = (0..clients)
        .map(|i| {
            let name = format!("bench-bare-{i}");
            let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
            let cm = rt.block_on(api.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&body)));
            std::sync::Mutex::new(cm.expect("configmap"))
        })
        .collect();
    drive(clients, |i| {
        let mut object = objects[i].lock().expect("lock");
        rt.block_on(async { [bare_update(&api, &mut object, 1).await, bare_update(&api, &mut object, 2).await] })
    })
}

fn main() {
    if std::env::var_os("TETHER_K8S_DRIVER_KUBECONFIG").is_none() {
        println!("kube_store: no API server (run it through tests/k8s/run.sh); skipped");
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let config = rt.block_on(kube::Config::infer()).expect("KUBECONFIG");
    let client = rt.block_on(async { Client::try_from(config.clone()) }).expect("client");
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in [TetherVolume::crd(), TetherTerm::crd()] {
        let name = crd.metadata.name.clone().expect("name");
        rt.block_on(crds.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&crd))).expect("crd");
    }
    let volumes_api: Api<TetherVolume> = Api::all(client.clone());
    while rt.block_on(volumes_api.list(&ListParams::default().limit(1))).is_err() {
        std::thread::sleep(Duration::from_millis(100));
    }
    let dir = tempfile_dir();
    let (driver, volumes) = driver(config, &dir);
    for clients in CLIENTS {
        let bare = bare_pairs(&rt, &client, clients);
        let store = drive(clients, |i| publish_pair(&driver, &volumes[i], &format!("bench-node-{i}")));
        println!(
            "clients={clients:<3} publish+unpublish p50={:>9.1?} pairs/s={:>7.0} | bare replace p50={:>9.1?} pairs/s={:>7.0} | p50 ratio={:.2} pairs/s ratio={:.2}",
            store.p50,
            store.pairs_per_s,
            bare.p50,
            bare.pairs_per_s,
            store.p50.as_secs_f64() / bare.p50.as_secs_f64(),
            store.pairs_per_s / bare.pairs_per_s
        );
    }
}

/// A directory for the volumes' data, under target/.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-kube-store");
    std::fs::create_dir_all(&dir).expect("data directory");
    dir
}
