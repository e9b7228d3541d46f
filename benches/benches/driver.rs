//! The CSI driver's figures: `ControllerPublish` + `ControllerUnpublish` over the Unix socket
//! with 1, 8 and 64 concurrent clients, beside an empty unary RPC (Identity `Probe`) on the same
//! server and socket, the same `Probe` through the authority adapter (as `tether-csi` serves
//! its socket) and the engine alone, all in one run; then the resident memory of a
//! driver holding 100 000 volumes. Latencies are per call (p50, p99); throughput is
//! publish+unpublish pairs (or probe pairs) per second. A bare `fdatasync` on the state
//! directory's filesystem is timed in the same run, and the ratios issue 13 sets targets for are
//! printed last.
//!
//! `cargo bench -p tether-benches --bench driver -- --proxy` measures proxy mode instead: pairs
//! through `tether-csi --upstream` against the upstream alone, at 1 and 64 clients, for an
//! upstream that keeps its attachments in memory and for one that syncs each to disk, beside
//! Probe pairs through the proxy against the upstream alone (the hop with no engine and no
//! store, which the proxy forwards), and one commit of the embedded store on the same disk (a
//! record saved, sequentially, before and after the runs), the "one store commit" of issue 20's
//! p50 target.
//!
//! `cargo bench -p tether-benches --bench driver` — the store lives under
//! `TETHER_BENCH_STATE_DIR` (default: a temporary directory under `target/`, on disk).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tether_benches::{fdatasync_latencies, percentile};
#[path = "shared/saves.rs"]
mod saves;
use tether_core::{Access, Engine, MonotonicClock};
use tether_driver::authority::AuthorityFix;
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::identity_client::IdentityClient;
use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
use tether_driver::csi::{
    ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest, ProbeRequest,
    VolumeCapability,
};
use tether_driver::events::LogSink;
use tether_driver::nodes::StaticNodes;
use tether_driver::proxy::{self, Proxy, Upstream};
use tether_driver::server::{bind_unix, connect_unix, router};
use tether_driver::store::EmbeddedStore;
use tether_driver::{Driver, Parts, Settings};
use tokio_stream::wrappers::UnixListenerStream;
use tokio_stream::StreamExt;

const RUN_FOR: Duration = Duration::from_secs(3);
/// `fdatasync`s timed before the RPC runs, and as many after.
const FDATASYNCS: usize = 200;
const CLIENTS: [usize; 3] = [1, 8, 64];
const PROXY_CLIENTS: [usize; 2] = [1, 64];
/// Store commits timed before the proxy runs, and as many after: the disk's speed drifts over
/// a run, so the floor brackets it, as the `fdatasync`s do.
const FLOOR_COMMITS: usize = 500;

fn settings() -> Settings {
    Settings {
        driver_name: "tether.csi.bench".into(),
        node_id: "node-a".into(),
        grace_period: Duration::from_secs(30),
        default_migration_timeout: Duration::from_mins(5),
        metrics_namespace: "rds_csi".into(),
        lease_term: 0,
    }
}

fn open(state: &Path) -> Arc<Driver> {
    let parts = Parts {
        clock: Arc::new(MonotonicClock::new()),
        store: Arc::new(EmbeddedStore::open(state, 1 << 50).expect("store")),
        nodes: Arc::new(StaticNodes::new(["node-a".to_owned(), "node-b".to_owned()])),
        events: Arc::new(LogSink),
        changes: None,
        awaits_rebuild: false,
    };
    Arc::new(Driver::open(settings(), parts).expect("driver"))
}

fn cap() -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter.into() }),
    }
}

/// p50, p99 of per-call latencies, and pairs per second over the whole run.
struct Figures {
    p50: Duration,
    p99: Duration,
    pairs_per_s: f64,
}

fn figures(mut lat: Vec<Duration>, pairs: usize, wall: Duration) -> Figures {
    lat.sort_unstable();
    let pairs = f64::from(u32::try_from(pairs).unwrap_or(u32::MAX));
    Figures { p50: percentile(&lat, 500), p99: percentile(&lat, 990), pairs_per_s: pairs / wall.as_secs_f64() }
}

fn print(what: &str, clients: usize, f: &Figures) {
    println!("{what:<28} clients={clients:<3} p50={:>9.1?} p99={:>9.1?} pairs/s={:>9.0}", f.p50, f.p99, f.pairs_per_s);
}

/// Runs `clients` tasks, each calling `pair` (two calls, each timed) until the deadline.
async fn drive<F, Fut>(clients: usize, pair: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = [Duration; 2]> + Send,
{
    let start = Instant::now();
    let tasks: Vec<_> = (0..clients)
        .map(|i| {
            let pair = pair.clone();
            tokio::spawn(async move {
                let mut lat = Vec::new();
                while start.elapsed() < RUN_FOR {
                    lat.extend(pair(i).await);
                }
                lat
            })
        })
        .collect();
    let mut lat = Vec::new();
    for t in tasks {
        lat.extend(t.await.expect("client"));
    }
    let wall = start.elapsed();
    let pairs = lat.len() / 2;
    figures(lat, pairs, wall)
}

/// Measures `first`, then `second` (both at `clients`), prints each and the second's pairs per
/// second against the first's, named `ratio`.
async fn compare(
    clients: usize,
    ratio: &str,
    first: (&str, impl std::future::Future<Output = Figures>),
    second: (&str, impl std::future::Future<Output = Figures>),
) -> (Figures, Figures) {
    let a = first.1.await;
    print(first.0, clients, &a);
    let b = second.1.await;
    print(second.0, clients, &b);
    println!("{ratio:<28} clients={clients:<3} pairs/s ratio={:.3}", b.pairs_per_s / a.pairs_per_s);
    (a, b)
}

async fn timed<T>(f: impl std::future::Future<Output = T>) -> Duration {
    let t = Instant::now();
    f.await;
    t.elapsed()
}

/// Two Probes per pair on one connection per client.
async fn probe_figures(socket: &Path, clients: usize) -> Figures {
    let mut channels = Vec::new();
    for _ in 0..clients {
        channels.push(connect_unix(socket).await.expect("connect"));
    }
    let channels = Arc::new(channels);
    drive(clients, move |i| {
        let mut c = IdentityClient::new(channels[i].clone());
        async move { [timed(c.probe(ProbeRequest {})).await, timed(c.probe(ProbeRequest {})).await] }
    })
    .await
}

/// `ControllerPublish` + `ControllerUnpublish` of `volumes[i]` to node-a by client `i`, each
/// client on a connection of its own, as separate sidecars would have.
async fn pair_figures(socket: &Path, clients: usize, volumes: &Arc<Vec<String>>) -> Figures {
    let mut channels = Vec::new();
    for _ in 0..clients {
        channels.push(connect_unix(socket).await.expect("connect"));
    }
    let (ch, vols) = (Arc::new(channels), Arc::clone(volumes));
    drive(clients, move |i| {
        let mut c = ControllerClient::new(ch[i].clone());
        let volume_id = vols[i].clone();
        async move {
            let p = ControllerPublishVolumeRequest {
                volume_id: volume_id.clone(),
                node_id: "node-a".into(),
                volume_capability: Some(cap()),
                ..Default::default()
            };
            let u = ControllerUnpublishVolumeRequest { volume_id, node_id: "node-a".into(), ..Default::default() };
            let tp = Instant::now();
            c.controller_publish_volume(p).await.expect("publish");
            let tp = tp.elapsed();
            let tu = Instant::now();
            c.controller_unpublish_volume(u).await.expect("unpublish");
            [tp, tu.elapsed()]
        }
    })
    .await
}

/// Creates `count` volumes through the driver at `socket`.
async fn create_volumes(socket: &Path, count: usize) -> Arc<Vec<String>> {
    let mut setup = ControllerClient::new(connect_unix(socket).await.expect("connect"));
    let mut volumes = Vec::new();
    for i in 0..count {
        let req =
            CreateVolumeRequest { name: format!("bench-{i}"), volume_capabilities: vec![cap()], ..Default::default() };
        volumes.push(setup.create_volume(req).await.expect("create").into_inner().volume.expect("volume").volume_id);
    }
    Arc::new(volumes)
}

/// The upstream of the proxy figures, killed when dropped.
struct Mock(std::process::Child);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The two upstreams the proxy figures are taken against, both the e2e mock CSI driver as
/// node-a: as it is (its state in memory, no I/O, so the proxy's own cost shows whole), and
/// with `-attach-sync` (each accepted attach change synced to a file before it answers, as a
/// driver that remembers its attachments must).
const UPSTREAMS: [(&str, bool); 2] = [("in memory", false), ("syncing each attach", true)];

/// One upstream's figures at each of [`PROXY_CLIENTS`]: (alone, through the proxy).
type Runs = Vec<(Figures, Figures)>;

/// Starts the mock in `state` (`TETHER_CSI_MOCK`, built by tests/proxy/build-mock.sh) and a
/// proxy in front of it, then measures pairs through the proxy against the mock alone, and when
/// `probes`, Probe pairs the same way (the hop: no engine, no store).
async fn proxy_runs(state: &Path, syncing: bool, probes: bool) -> Runs {
    std::fs::create_dir_all(state).expect("state");
    let upstream_socket = state.join("upstream.sock");
    let bin = std::env::var("TETHER_CSI_MOCK").expect("TETHER_CSI_MOCK names the mock (tests/proxy/build-mock.sh)");
    let mut mock = std::process::Command::new(bin);
    mock.args(["-endpoint", &upstream_socket.display().to_string(), "-name", "node-a"]);
    if syncing {
        let kept = state.join("upstream-attachments");
        std::fs::create_dir_all(&kept).expect("upstream's directory");
        mock.arg("-attach-sync").arg(kept);
    }
    let _mock = Mock(mock.stderr(std::process::Stdio::null()).spawn().expect("start the mock"));
    while connect_unix(&upstream_socket).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let proxy_socket = state.join("proxy.sock");
    let front = Upstream::new(&upstream_socket, Duration::from_secs(30));
    let proxy = proxy::router(Arc::new(Proxy::new(open(&state.join("proxy")), front)));
    let served =
        tokio::spawn(proxy.serve_with_incoming(UnixListenerStream::new(bind_unix(&proxy_socket).expect("socket"))));
    let volumes = create_volumes(&proxy_socket, PROXY_CLIENTS[1]).await;
    let mut runs = Vec::new();
    for clients in PROXY_CLIENTS {
        runs.push(
            compare(
                clients,
                "  proxy/upstream",
                ("upstream alone", pair_figures(&upstream_socket, clients, &volumes)),
                ("through the proxy", pair_figures(&proxy_socket, clients, &volumes)),
            )
            .await,
        );
        if probes {
            compare(
                clients,
                "  Probe proxy/upstream",
                ("Probe, upstream alone", probe_figures(&upstream_socket, clients)),
                ("Probe, through the proxy", probe_figures(&proxy_socket, clients)),
            )
            .await;
        }
    }
    served.abort();
    runs
}

/// Proxy mode (`--proxy`): publish+unpublish pairs through `tether-csi --upstream` in front of
/// each of [`UPSTREAMS`], against the same upstream alone, in one run, then the floors the
/// targets are set against (one `fdatasync`, one store commit) and the targets' ratios.
async fn proxy_bench(state: &Path) {
    std::fs::create_dir_all(state).expect("state");
    let mut fdatasync = fdatasync_latencies(state, FDATASYNCS);
    let (mut commits, _) = saves::embedded(&state.join("commit-floor-before"), 1, FLOOR_COMMITS);
    let mut all = Vec::new();
    for (i, (name, syncing)) in UPSTREAMS.into_iter().enumerate() {
        println!("upstream: the e2e mock, {name}");
        all.push((name, proxy_runs(&state.join(format!("upstream-{i}")), syncing, i == 0).await));
    }
    fdatasync.extend(fdatasync_latencies(state, FDATASYNCS));
    fdatasync.sort_unstable();
    let sync_p50 = percentile(&fdatasync, 500);
    println!("{:<28} p50={sync_p50:>9.1?} p99={:>9.1?}", "bare fdatasync (state dir)", percentile(&fdatasync, 990));
    commits.extend(saves::embedded(&state.join("commit-floor-after"), 1, FLOOR_COMMITS).0);
    commits.sort_unstable();
    let commit_p50 = percentile(&commits, 500);
    println!("{:<28} p50={commit_p50:>9.1?} p99={:>9.1?}", "one store commit (state dir)", percentile(&commits, 990));
    for (name, runs) in &all {
        proxy_targets(name, runs, sync_p50, commit_p50);
    }
}

/// The ratios issue 20 sets targets for, against one upstream.
fn proxy_targets(name: &str, runs: &Runs, sync_p50: Duration, commit_p50: Duration) {
    let [(alone_1, through_1), (alone_64, through_64)] = &runs[..] else { return };
    println!(
        "target ({name}): {} clients, pairs/s through the proxy against the upstream alone: {:.2} (at least 0.8)",
        PROXY_CLIENTS[1],
        through_64.pairs_per_s / alone_64.pairs_per_s
    );
    for (floor, p50) in [("one fdatasync", sync_p50), ("one store commit", commit_p50)] {
        println!(
            "target ({name}): 1 client, p50 through the proxy against the upstream's + {floor} ({:.1?} + {p50:.1?}): {:.2} (at most 1)",
            alone_1.p50,
            through_1.p50.as_secs_f64() / (alone_1.p50 + p50).as_secs_f64()
        );
    }
    println!(
        "({name}) 1 client: pairs/s ratio {:.2}, p50 ratio {:.2}; 64 clients: p50 ratio {:.2}",
        through_1.pairs_per_s / alone_1.pairs_per_s,
        through_1.p50.as_secs_f64() / alone_1.p50.as_secs_f64(),
        through_64.p50.as_secs_f64() / alone_64.p50.as_secs_f64()
    );
}

async fn rpc_bench(state: &Path) {
    let driver = open(state);
    let socket = state.join("csi.sock");
    let incoming = UnixListenerStream::new(bind_unix(&socket).expect("socket"));
    tokio::spawn(router(Arc::clone(&driver)).serve_with_incoming(incoming));
    // The same driver behind the authority adapter; a tonic client's valid authority makes the
    // adapter decode every header block and forward it unchanged.
    let fixed_socket = state.join("csi-adapter.sock");
    let fixed = UnixListenerStream::new(bind_unix(&fixed_socket).expect("socket")).map(|c| c.map(AuthorityFix::new));
    tokio::spawn(router(Arc::clone(&driver)).serve_with_incoming(fixed));
    let volumes = create_volumes(&socket, CLIENTS[2]).await;
    // The floor of one durable write where the store keeps its state, before and after the RPCs.
    let mut fdatasync = fdatasync_latencies(state, FDATASYNCS);
    let mut runs = Vec::new();
    for clients in CLIENTS {
        let (probe, _) = compare(
            clients,
            "  adapter/baseline",
            ("Identity/Probe (baseline)", probe_figures(&socket, clients)),
            ("Identity/Probe (adapter)", probe_figures(&fixed_socket, clients)),
        )
        .await;
        let publish = pair_figures(&socket, clients, &volumes).await;
        print("ControllerPublish+Unpublish", clients, &publish);
        runs.push((clients, probe, publish));
    }
    fdatasync.extend(fdatasync_latencies(state, FDATASYNCS));
    fdatasync.sort_unstable();
    let sync_p50 = percentile(&fdatasync, 500);
    println!("{:<28} p50={sync_p50:>9.1?} p99={:>9.1?}", "bare fdatasync (state dir)", percentile(&fdatasync, 990));
    print_targets(&runs, sync_p50);
}

/// The ratios issue 13 sets targets for, from this run's figures.
fn print_targets(runs: &[(usize, Figures, Figures)], sync_p50: Duration) {
    let (Some((_, probe_1, publish_1)), Some((_, probe_64, publish_64))) = (runs.first(), runs.last()) else { return };
    println!(
        "target: {} clients, publish+unpublish pairs/s against Probe's: {:.2} (at least 0.6)",
        CLIENTS[2],
        publish_64.pairs_per_s / probe_64.pairs_per_s
    );
    println!(
        "target: {} clients, p99 against Probe's p99: {:.2} (at most 2)",
        CLIENTS[2],
        publish_64.p99.as_secs_f64() / probe_64.p99.as_secs_f64()
    );
    println!(
        "target: 1 client, p50 against Probe's p50 + one fdatasync ({:.1?} + {sync_p50:.1?}): {:.2} (at most 1)",
        probe_1.p50,
        publish_1.p50.as_secs_f64() / (probe_1.p50 + sync_p50).as_secs_f64()
    );
}

fn engine_bench() {
    let engine = Arc::new(Engine::new());
    for clients in CLIENTS {
        let start = Instant::now();
        let threads: Vec<_> = (0..clients)
            .map(|i| {
                let engine = Arc::clone(&engine);
                std::thread::spawn(move || {
                    let volume = format!("engine-{i}");
                    let mut lat = Vec::new();
                    while start.elapsed() < RUN_FOR {
                        let t = Instant::now();
                        engine.publish(&volume, "node-a", Access::RWO, None).expect("publish");
                        let tp = t.elapsed();
                        let t = Instant::now();
                        engine.unpublish(&volume, Some("node-a")).expect("unpublish");
                        lat.extend([tp, t.elapsed()]);
                    }
                    lat
                })
            })
            .collect();
        let lat: Vec<Duration> = threads.into_iter().flat_map(|t| t.join().expect("thread")).collect();
        let pairs = lat.len() / 2;
        print("engine alone (threads)", clients, &figures(lat, pairs, start.elapsed()));
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
    line.split_whitespace().nth(1).and_then(|v| v.parse().ok()).expect("VmRSS value")
}

/// Fills a store with 100 000 volumes, half of them attached.
fn fill_store(state: &Path) -> usize {
    const VOLUMES: usize = 100_000;
    let driver = open(state);
    for i in 0..VOLUMES {
        let req = CreateVolumeRequest {
            name: format!("mem-{i}"),
            volume_capabilities: vec![cap()],
            capacity_range: Some(tether_driver::csi::CapacityRange { required_bytes: 1 << 20, limit_bytes: 0 }),
            ..Default::default()
        };
        let v = driver.create_volume(&req).expect("create");
        if i % 2 == 0 {
            let p = ControllerPublishVolumeRequest {
                volume_id: v.volume_id,
                node_id: "node-b".into(),
                volume_capability: Some(cap()),
                ..Default::default()
            };
            driver.controller_publish(&p).expect("publish");
        }
    }
    VOLUMES
}

/// In a fresh process (this bench re-run with `--memory-child`): resident memory before and
/// after a driver loads the store.
fn memory_child(state: &Path) {
    let before = rss_kib();
    let driver = open(state);
    let after = rss_kib();
    println!(
        "memory: driver holding {} volumes ({} attached): {} KiB resident, +{} KiB for the volumes ({} bytes/volume)",
        driver.volume_count(),
        driver.engine.attached_count(),
        after,
        after.saturating_sub(before),
        after.saturating_sub(before) * 1024 / u64::try_from(driver.volume_count().max(1)).unwrap_or(1)
    );
}

fn memory_bench(state: &Path) {
    fill_store(state);
    let exe = std::env::current_exe().expect("bench executable");
    let status = std::process::Command::new(exe).arg("--memory-child").arg(state).status().expect("memory child");
    assert!(status.success(), "memory child failed");
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--memory-child") {
        memory_child(Path::new(&args[i + 1]));
        return;
    }
    // `cargo bench` passes --bench; under `cargo test --benches` there is nothing to measure.
    if !args.iter().any(|a| a == "--bench") {
        return;
    }
    let root = tether_benches::state_root("driver-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("state root");
    if args.iter().any(|a| a == "--proxy") {
        println!("proxy state under {}", root.display());
        let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
        runtime.block_on(proxy_bench(&root.join("proxy")));
        drop(runtime);
        let _ = std::fs::remove_dir_all(&root);
        return;
    }
    println!("RPC state under {}", root.display());
    engine_bench();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");
    runtime.block_on(rpc_bench(&root.join("rpc")));
    drop(runtime);
    // The memory figure does not depend on the disk; tmpfs makes filling 100 000 volumes quick.
    let memory_root =
        if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm/tether-driver-bench") } else { root.clone() };
    let _ = std::fs::remove_dir_all(&memory_root);
    memory_bench(&memory_root.join("memory"));
    let _ = std::fs::remove_dir_all(&memory_root);
    let _ = std::fs::remove_dir_all(&root);
}
