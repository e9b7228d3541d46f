//! The cluster store's figures (`--store=kubernetes`): `controller_publish` + `controller_unpublish`
//! pairs on a driver whose store is the API server, with 1 and 64 concurrent clients (threads,
//! one volume and node each, called in process: the store's cost, not gRPC's), beside the
//! baselines of the same run, each a bare conditional update (replace on the version last
//! written) of one object per client on the same API server, two per pair: a small `ConfigMap` as
//! any client writes it; the same `ConfigMap` with its `managedFields` cleared, as the store writes
//! its objects; a copy of one of the store's `TetherVolume`s, cleared alike; a `TetherTerm` (a
//! custom resource of one integer), cleared alike. p50 is per call; pairs per second is over the
//! whole run.
//!
//! Then a takeover at `TETHER_BENCH_TAKEOVER_VOLUMES` attached volumes (10 000 unless set; 0
//! skips it): the store's part of a new leader's start, `Driver::open` on a fresh store (list,
//! raise the term, re-fence every volume in the engine) until it serves; then an idempotent
//! publish of a volume whose re-fence is still owed (written before its reply), and the time
//! until the background re-fence has written every volume; beside the baseline of the same run,
//! one list and a bare conditional update of every `TetherVolume` (`managedFields` cleared, as
//! the store's re-fence does) at the re-fence's concurrency
//! (before and after the store; then at a quarter and four times that concurrency); and etcd's
//! bytes per volume (its in-use size before and after the volumes were created and attached).
//!
//! Needs an API server: `tests/k8s/run.sh 'cargo bench -p tether-benches --bench kube_store'`
//! (the admin's KUBECONFIG; the CRDs are applied from the Rust types).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use tether_benches::percentile;
use tether_core::MonotonicClock;
use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
use tether_driver::csi::{
    ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest, VolumeCapability,
};
use tether_driver::events::LogSink;
use tether_driver::nodes::StaticNodes;
use tether_driver::store::kube::resource::{object_name, TetherTerm, TetherTermSpec, TetherVolume};
use tether_driver::store::kube::REFENCE_CONCURRENCY;
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

/// A driver on a new cluster store (a new leader: it loads, takes the next term and re-fences),
/// with 64 nodes.
fn open_driver(config: kube::Config, dir: &Path) -> Arc<Driver> {
    let store = KubeStore::open(config, dir, 1 << 50, Role::Controller, Duration::from_secs(30)).expect("store");
    let nodes: Vec<String> = (0..64).map(node).collect();
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
    Arc::new(Driver::open(settings, parts).expect("driver"))
}

fn node(i: usize) -> String {
    format!("bench-node-{}", i % 64)
}

fn create(driver: &Driver, name: String) -> String {
    let req = CreateVolumeRequest { name, volume_capabilities: vec![cap()], ..Default::default() };
    driver.create_volume(&req).expect("create").volume_id
}

/// A driver on the cluster store, with 64 volumes and nodes.
fn driver(config: kube::Config, dir: &Path) -> (Arc<Driver>, Vec<String>) {
    let driver = open_driver(config, dir);
    let volumes = (0..64).map(|i| create(&driver, format!("bench-{i}"))).collect();
    (driver, volumes)
}

fn publish_request(volume: &str, node: &str) -> ControllerPublishVolumeRequest {
    ControllerPublishVolumeRequest {
        volume_id: volume.into(),
        node_id: node.into(),
        volume_capability: Some(cap()),
        ..Default::default()
    }
}

fn publish_pair(driver: &Driver, volume: &str, node: &str) -> [Duration; 2] {
    let publish = publish_request(volume, node);
    let unpublish =
        ControllerUnpublishVolumeRequest { volume_id: volume.into(), node_id: node.into(), ..Default::default() };
    [
        timed(|| drop(driver.controller_publish(&publish).expect("publish"))),
        timed(|| driver.controller_unpublish(&unpublish).expect("unpublish")),
    ]
}

/// Replaces `object` on the version it last wrote, with counter `n` in an annotation; with
/// `strip`, clearing its `managedFields` as the store's writes do.
async fn bare_update<K>(api: &Api<K>, object: &mut K, n: u64, strip: bool) -> Duration
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    object.meta_mut().annotations = Some([("bench.tether.io/n".to_owned(), n.to_string())].into());
    if strip {
        object.meta_mut().managed_fields = Some(vec![ManagedFieldsEntry::default()]);
    }
    let name = object.meta().name.clone().expect("name");
    let t = Instant::now();
    *object = api.replace(&name, &PostParams::default(), object).await.expect("replace");
    t.elapsed()
}

/// Pairs of bare updates, one object per client.
fn bare_pairs<K>(rt: &tokio::runtime::Runtime, api: &Api<K>, objects: &[std::sync::Mutex<K>], strip: bool) -> Figures
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug + Send + Sync,
{
    drive(objects.len(), |i| {
        let mut object = objects[i].lock().expect("lock");
        rt.block_on(async {
            [bare_update(api, &mut object, 1, strip).await, bare_update(api, &mut object, 2, strip).await]
        })
    })
}

/// One small `ConfigMap` per client: the baseline.
fn config_maps(rt: &tokio::runtime::Runtime, api: &Api<ConfigMap>, clients: usize) -> Vec<std::sync::Mutex<ConfigMap>> {
    (0..clients)
        .map(|i| {
            let name = format!("bench-bare-{i}");
            let body = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}});
            let cm = rt.block_on(api.patch(&name, &PatchParams::apply("bench").force(), &Patch::Apply(&body)));
            std::sync::Mutex::new(cm.expect("configmap"))
        })
        .collect()
}

/// A copy of the store's object of each of `volumes` under a volume id of its own: the same
/// kind and size, for the second baseline (how much of the gap is the object, not the store).
fn volume_copies(
    rt: &tokio::runtime::Runtime,
    api: &Api<TetherVolume>,
    volumes: &[String],
) -> Vec<std::sync::Mutex<TetherVolume>> {
    volumes
        .iter()
        .map(|id| {
            let mut copy = rt.block_on(api.get(&object_name(id))).expect("the store's object");
            copy.spec.volume_id = format!("bench-copy-{id}");
            copy.metadata =
                kube::api::ObjectMeta { name: Some(object_name(&copy.spec.volume_id)), ..Default::default() };
            std::sync::Mutex::new(rt.block_on(api.create(&PostParams::default(), &copy)).expect("copy"))
        })
        .collect()
}

/// One `TetherTerm` per client (a custom resource of one integer): the third baseline, the API
/// server's cost of any custom resource, whatever its size.
fn term_objects(
    rt: &tokio::runtime::Runtime,
    api: &Api<TetherTerm>,
    clients: usize,
) -> Vec<std::sync::Mutex<TetherTerm>> {
    (0..clients)
        .map(|i| {
            let object = TetherTerm::new(&format!("bench-term-{i}"), TetherTermSpec { term: 1 });
            let made = rt.block_on(api.patch(
                &format!("bench-term-{i}"),
                &PatchParams::apply("bench").force(),
                &Patch::Apply(&object),
            ));
            std::sync::Mutex::new(made.expect("a TetherTerm"))
        })
        .collect()
}

/// Bytes of `object`'s JSON as the API server returns it, and of its `managedFields`.
fn json_size<K: kube::Resource + serde::Serialize>(object: &K) -> (usize, usize) {
    let whole = serde_json::to_vec(object).expect("json").len();
    let managed = serde_json::to_vec(&object.meta().managed_fields).expect("json").len();
    (whole, managed)
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
    let (driver, volumes) = driver(config.clone(), &dir);
    let config_map_api: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    // Copies of objects as the store leaves them after a publish and an unpublish.
    for (i, v) in volumes.iter().enumerate() {
        publish_pair(&driver, v, &format!("bench-node-{i}"));
    }
    let copies = volume_copies(&rt, &volumes_api, &volumes);
    let pairs = std::env::var("TETHER_BENCH_PAIRS").map_or(true, |v| v != "0");
    for clients in CLIENTS.into_iter().filter(|_| pairs) {
        let maps = config_maps(&rt, &config_map_api, clients);
        let bare = bare_pairs(&rt, &config_map_api, &maps, false);
        let stripped = bare_pairs(&rt, &config_map_api, &maps, true);
        let same_kind = bare_pairs(&rt, &volumes_api, &copies[..clients], true);
        let terms_api: Api<TetherTerm> = Api::all(client.clone());
        let smallest_kind = bare_pairs(&rt, &terms_api, &term_objects(&rt, &terms_api, clients), true);
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
        println!(
            "clients={clients:<3} bare replace of the ConfigMap clearing its managedFields as the store does p50={:>9.1?} pairs/s={:>7.0} | store to it: p50 ratio={:.2} pairs/s ratio={:.2}",
            stripped.p50,
            stripped.pairs_per_s,
            store.p50.as_secs_f64() / stripped.p50.as_secs_f64(),
            store.pairs_per_s / stripped.pairs_per_s
        );
        println!(
            "clients={clients:<3} bare replace of a TetherVolume (same kind and size as the store's, managedFields cleared) p50={:>9.1?} pairs/s={:>7.0} | store to it: p50 ratio={:.2} pairs/s ratio={:.2}",
            same_kind.p50,
            same_kind.pairs_per_s,
            store.p50.as_secs_f64() / same_kind.p50.as_secs_f64(),
            store.pairs_per_s / same_kind.pairs_per_s
        );
        println!(
            "clients={clients:<3} bare replace of a TetherTerm (a custom resource of one integer, managedFields cleared) p50={:>9.1?} pairs/s={:>7.0} | to the ConfigMap cleared alike: p50 ratio={:.2} pairs/s ratio={:.2}",
            smallest_kind.p50,
            smallest_kind.pairs_per_s,
            smallest_kind.p50.as_secs_f64() / stripped.p50.as_secs_f64(),
            smallest_kind.pairs_per_s / stripped.pairs_per_s
        );
    }
    if pairs {
        let attached = rt.block_on(volumes_api.get(&object_name(&volumes[0]))).expect("the store's object");
        let cm = rt.block_on(config_map_api.get("bench-bare-0")).expect("the ConfigMap");
        let term = rt.block_on(Api::<TetherTerm>::all(client.clone()).get("bench-term-0")).expect("the TetherTerm");
        for (what, (whole, managed)) in [
            ("the store's TetherVolume after its last unpublish", json_size(&attached)),
            ("the baseline ConfigMap", json_size(&cm)),
            ("the baseline TetherTerm", json_size(&term)),
        ] {
            println!("object size: {what}: {whole} bytes of JSON, {managed} of them managedFields");
        }
    }
    drop(driver);
    // The copies are no volumes of the store's: gone before a leader loads.
    for copy in copies {
        let name = copy.into_inner().expect("lock").metadata.name.expect("name");
        rt.block_on(volumes_api.delete(&name, &DeleteParams::default())).expect("delete the copy");
    }
    let n = std::env::var("TETHER_BENCH_TAKEOVER_VOLUMES").map_or(10_000, |v| v.parse().expect("a number"));
    if n > 0 {
        takeover(&rt, &client, &config, &dir, n);
    }
}

/// The takeover figures at `n` attached volumes (see the module documentation).
fn takeover(rt: &tokio::runtime::Runtime, client: &Client, config: &kube::Config, dir: &Path, n: usize) {
    let before = etcd_in_use();
    let seeding = Instant::now();
    let seed = open_driver(config.clone(), dir);
    let threads = 64;
    let attached: Vec<(String, String)> = std::thread::scope(|s| {
        let seeders: Vec<_> = (0..threads)
            .map(|t| {
                let seed = &seed;
                s.spawn(move || {
                    let mut attached = Vec::new();
                    for i in (t..n).step_by(threads) {
                        let volume = create(seed, format!("takeover-{i}"));
                        seed.controller_publish(&publish_request(&volume, &node(i))).expect("publish");
                        attached.push((volume, node(i)));
                    }
                    attached
                })
            })
            .collect();
        seeders.into_iter().flat_map(|h| h.join().expect("a seeding thread")).collect()
    });
    drop(seed);
    let seeded = seeding.elapsed();
    // etcd's backend commits its in-use size every 100 ms.
    std::thread::sleep(Duration::from_secs(1));
    let after = etcd_in_use();
    // The machine's noise moves a 30 s figure by 2x: the baseline runs before and after the
    // store, and the ratio is to their mean.
    let bare_before = rt.block_on(bare_refence(client, REFENCE_CONCURRENCY));
    let start = Instant::now();
    let leader = open_driver(config.clone(), dir);
    let serving = start.elapsed();
    assert!(leader.is_ready() && leader.volume_count() >= n, "the new leader loaded every volume");
    let owed = leader.refence_pending();
    let (volume, holder) = attached.last().expect("n > 0");
    let call = Instant::now();
    leader.controller_publish(&publish_request(volume, holder)).expect("idempotent publish");
    let first_call = call.elapsed();
    let written = leader.await_refence().expect("the background re-fence");
    let refenced = start.elapsed();
    let bare_after = rt.block_on(bare_refence(client, REFENCE_CONCURRENCY));
    let bare = (bare_before + bare_after) / 2;
    println!(
        "takeover volumes={n} seeded in {seeded:.1?} | new leader serving after {serving:.2?} (list, term, engine re-fenced; {owed} volumes owed to the store) | an idempotent publish then {first_call:.2?} | every re-fence written ({written} by the sweep, at {REFENCE_CONCURRENCY}) after {refenced:.2?} | bare list + {} replaces at {REFENCE_CONCURRENCY}: {bare_before:.2?} before, {bare_after:.2?} after | serving / bare={:.3} | all written / bare={:.2}",
        leader.volume_count(),
        serving.as_secs_f64() / bare.as_secs_f64(),
        refenced.as_secs_f64() / bare.as_secs_f64()
    );
    for concurrency in [REFENCE_CONCURRENCY / 4, 4 * REFENCE_CONCURRENCY] {
        let other = rt.block_on(bare_refence(client, concurrency));
        println!(
            "bare list + replaces at {concurrency}: {other:.2?} (ratio to {REFENCE_CONCURRENCY} at a time: {:.2})",
            other.as_secs_f64() / bare.as_secs_f64()
        );
    }
    if let (Some(before), Some(after)) = (before, after) {
        let per = (after - before) / f64::from(u32::try_from(n).expect("n"));
        println!("etcd in-use bytes per volume (created and attached, history until compaction): {per:.0}");
    }
}

/// One list of every `TetherVolume` and a conditional replace of each (an annotation changed),
/// `concurrency` at a time: the API work of a re-fence without the store.
async fn bare_refence(client: &Client, concurrency: usize) -> Duration {
    let api: Api<TetherVolume> = Api::all(client.clone());
    let start = Instant::now();
    let list = api.list(&ListParams::default()).await.expect("list");
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for mut object in list.items {
        let (api, permit) = (api.clone(), Arc::clone(&permits).acquire_owned().await.expect("permit"));
        tasks.spawn(async move {
            object.metadata.annotations = Some([("bench.tether.io/n".to_owned(), "1".to_owned())].into());
            object.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
            let name = object.metadata.name.clone().expect("name");
            api.replace(&name, &PostParams::default(), &object).await.expect("replace");
            drop(permit);
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("replace task");
    }
    start.elapsed()
}

/// etcd's `etcd_mvcc_db_total_size_in_use_in_bytes`, from its metrics on the port cluster.sh
/// wrote down, if it answers.
fn etcd_in_use() -> Option<f64> {
    use std::io::{Read, Write};
    let dir = std::env::var("TETHER_K8S_DIR").ok()?;
    let port = std::fs::read_to_string(Path::new(&dir).join("etcd.port")).ok()?;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port.trim().parse::<u16>().ok()?)).ok()?;
    stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: etcd\r\nConnection: close\r\n\r\n").ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let line = text.lines().find(|l| l.starts_with("etcd_mvcc_db_total_size_in_use_in_bytes "))?;
    line.split_whitespace().nth(1)?.parse::<f64>().ok()
}

/// A directory for the volumes' data, under target/.
fn tempfile_dir() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-kube-store");
    std::fs::create_dir_all(&dir).expect("data directory");
    dir
}
