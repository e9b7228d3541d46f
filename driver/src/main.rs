//! `tether-csi`: parses the command line, opens the driver on its state directory, serves
//! CSI and metrics until SIGTERM or SIGINT, then finishes in-flight calls and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tether_core::{Clock, MonotonicClock};
use tether_driver::events::LogSink;
use tether_driver::http::DriverSlot;
use tether_driver::k8s::{
    self,
    client::ApiRate,
    lease::{Elector, LeaseConfig},
    standby::Gate,
};
use tether_driver::logging::{self, LogFormat};
use tether_driver::nodes::StaticNodes;
use tether_driver::proxy;
use tether_driver::reconciler;
use tether_driver::registration;
use tether_driver::server::{self, Endpoint};
use tether_driver::store::kube::migrate;
use tether_driver::store::{EmbeddedStore, KubeStore, Role, StateLock, VolumeStore};
use tether_driver::{Driver, Parts, Settings};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tonic::transport::server::Router;

/// A CSI driver whose attach decisions are the Tether engine's.
#[derive(Debug, Parser)]
#[command(name = "tether-csi", version)]
struct Args {
    /// Where to serve CSI: <unix:///path/to/csi.sock>, or tcp://host:port for development.
    #[arg(long)]
    endpoint: Endpoint,
    /// This node's id (the Node service's identity; also a node volumes may be published to).
    #[arg(long)]
    node_id: String,
    /// Other nodes that exist, comma-separated (without Kubernetes, the only known nodes).
    #[arg(long, value_delimiter = ',')]
    nodes: Vec<String>,
    /// Directory of the embedded volume store and its state; with --store=kubernetes, of the
    /// volumes' data only.
    #[arg(long)]
    state_dir: PathBuf,
    /// Where volumes' records, applied fences and the controller term live: the embedded
    /// store (`SQLite` under --state-dir, one node), or custom resources in the Kubernetes API
    /// server (needs Kubernetes and the CRDs of deploy/00-crd.yaml).
    #[arg(long, value_enum, default_value = "embedded")]
    store: StoreKind,
    /// Serve as a node plugin of the cluster store: read each volume from the API server at
    /// the time of the call, write nothing, take no term, start no Kubernetes layer. Needs
    /// --store=kubernetes.
    #[arg(long)]
    node_plugin: bool,
    /// Register this node plugin with the kubelet itself, on <DIR>/<driver-name>-reg.sock
    /// (in a cluster `/var/lib/kubelet/plugins_registry`), instead of node-driver-registrar.
    /// Needs --node-plugin and --kubelet-registration-path.
    #[arg(long)]
    kubelet_registration_dir: Option<PathBuf>,
    /// The CSI socket's path as the kubelet sees it, sent to the kubelet at registration
    /// (e.g. `/var/lib/kubelet/plugins/tether.csi.dev/csi.sock`).
    #[arg(long)]
    kubelet_registration_path: Option<PathBuf>,
    /// The CSI driver name reported by `GetPluginInfo`.
    #[arg(long, default_value = "tether.csi.dev")]
    driver_name: String,
    /// Address of /metrics, /healthz and /readyz; empty to disable.
    #[arg(long, default_value = "127.0.0.1:9809")]
    metrics_address: String,
    /// Prometheus namespace of every metric.
    #[arg(long, default_value = "rds_csi")]
    metrics_namespace: String,
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
    /// Bytes the embedded store may hand out in total.
    #[arg(long, default_value_t = 1 << 40)]
    capacity_bytes: u64,
    /// Grace period for a late re-attach, in seconds.
    #[arg(long, default_value_t = 30)]
    grace_period_seconds: u64,
    /// Default migration timeout, in seconds (clamped to 30..3600).
    #[arg(long, default_value_t = 300)]
    migration_timeout_seconds: u64,
    /// Seconds between reconcile passes (timed-out migrations, nodes gone).
    #[arg(long, default_value_t = 300)]
    reconcile_interval_seconds: u64,
    /// Kubeconfig of the Kubernetes layer (events on PVCs, Node watch, rebuild from
    /// `VolumeAttachments`, PV annotations). Without it, `KUBECONFIG` or in-cluster
    /// configuration switch it on; with none of them it stays off.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Serve only while holding a coordination.k8s.io Lease (controller replicas); the
    /// identity is `POD_NAME`, else --node-id.
    #[arg(long)]
    leader_election: bool,
    /// Namespace of the Lease (default: `POD_NAMESPACE`).
    #[arg(long)]
    leader_election_namespace: Option<String>,
    /// Name of the Lease.
    #[arg(long, default_value = "tether-csi-controller")]
    lease_name: String,
    /// How long a leader that stopped renewing keeps the Lease, in seconds (at least 3).
    #[arg(long, default_value_t = 15)]
    lease_duration_seconds: u64,
    /// How often the leader renews the Lease and a standby looks at it, in seconds (at most a
    /// third of --lease-duration-seconds, which is the default): a standby takes a lapsed Lease
    /// up to this long after it lapsed.
    #[arg(long)]
    lease_retry_period_seconds: Option<u64>,
    /// Leases of the sidecars beside this driver, comma-separated (in the Lease's namespace):
    /// on taking the Lease over from a replica that stopped renewing, the new leader clears
    /// the holder of each of them that replica still holds, so its own sidecars take them at
    /// once instead of waiting out their lease duration.
    #[arg(long, value_delimiter = ',')]
    sidecar_leases: Vec<String>,
    /// Proxy mode: serve the CO and forward to the CSI driver at <unix:///path/to/driver.sock>,
    /// the engine deciding publish, unpublish and the node's sessions first.
    #[arg(long)]
    upstream: Option<Endpoint>,
    /// Deadline of a call forwarded to --upstream when the incoming call sent none, in seconds.
    #[arg(long, default_value_t = 60)]
    upstream_timeout_seconds: u64,
    /// Requests per second each Kubernetes client may send on average (the store's, the
    /// layer's). The default is sized for 10 000 volumes: see `ApiRate::DEFAULT`.
    #[arg(long, default_value_t = ApiRate::DEFAULT.qps)]
    kube_api_qps: f64,
    /// Requests each Kubernetes client may send at once after a quiet spell: 10 000 lets a new
    /// leader re-fence 10 000 volumes without waiting for tokens.
    #[arg(long, default_value_t = ApiRate::DEFAULT.burst)]
    kube_api_burst: u32,
}

impl Args {
    fn api_rate(&self) -> ApiRate {
        ApiRate { qps: self.kube_api_qps, burst: self.kube_api_burst }
    }
}

/// The values of --store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum StoreKind {
    Embedded,
    Kubernetes,
}

/// How long one call of the cluster store to the API server may take before it fails
/// (UNAVAILABLE to the CSI caller).
const STORE_TIMEOUT: Duration = Duration::from_secs(10);

/// How the process ends: asked to (signal), because it lost the Lease, or because the cluster
/// store showed a newer leader's term (the driver then stopped serving by itself).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Running,
    Signalled,
    LostLease,
    Superseded,
}

fn settings(args: &Args, lease_term: u64) -> Settings {
    Settings {
        driver_name: args.driver_name.clone(),
        node_id: args.node_id.clone(),
        grace_period: Duration::from_secs(args.grace_period_seconds),
        default_migration_timeout: Duration::from_secs(args.migration_timeout_seconds),
        metrics_namespace: args.metrics_namespace.clone(),
        lease_term,
    }
}

fn registration_flags(args: &Args) -> registration::Flags<'_> {
    registration::Flags {
        dir: args.kubelet_registration_dir.as_deref(),
        path: args.kubelet_registration_path.as_deref(),
        node_plugin: args.node_plugin,
        endpoint: &args.endpoint,
        driver_name: &args.driver_name,
    }
}

fn lease_config(args: &Args) -> Result<LeaseConfig, String> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let namespace = args
        .leader_election_namespace
        .clone()
        .or_else(|| from_env("POD_NAMESPACE"))
        .ok_or("--leader-election needs the Lease's namespace: --leader-election-namespace or POD_NAMESPACE")?;
    let identity = from_env("POD_NAME").unwrap_or_else(|| args.node_id.clone());
    let duration = Duration::from_secs(args.lease_duration_seconds.max(3));
    let retry = args.lease_retry_period_seconds.map_or(duration / 3, |s| Duration::from_secs(s.max(1)));
    let sidecar_leases = args.sidecar_leases.clone();
    Ok(LeaseConfig { namespace, name: args.lease_name.clone(), identity, duration, retry, sidecar_leases })
}

/// Turns SIGTERM and SIGINT into `Stop::Signalled`.
fn watch_signals(stop: watch::Sender<Stop>) -> std::io::Result<()> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight calls"),
            _ = int.recv() => tracing::info!("SIGINT: finishing in-flight calls"),
        }
        stop.send_replace(Stop::Signalled);
    });
    Ok(())
}

/// Completes when the process is asked to stop.
async fn stopped(mut stop: watch::Receiver<Stop>) -> Stop {
    stop.wait_for(|s| *s != Stop::Running).await.map_or(Stop::Signalled, |s| *s)
}

/// The CSI server's task.
type Serving = JoinHandle<Result<(), Box<dyn std::error::Error + Send + Sync>>>;

/// Serves `router` on `endpoint` until a stop, which shuts the driver down once there is one.
fn serve(router: Router, endpoint: &Endpoint, slot: &DriverSlot, stop: &watch::Sender<Stop>) -> Serving {
    let (endpoint, slot, stop) = (endpoint.clone(), Arc::clone(slot), stop.subscribe());
    let shutdown = async move {
        stopped(stop).await;
        if let Some(driver) = slot.get() {
            driver.begin_shutdown();
        }
    };
    tokio::spawn(async move { server::serve_router(router, &endpoint, shutdown).await })
}

/// Waits for the Lease (or a stop, or the end of a standby's `serving`, whose error is
/// returned); once leading, losing the Lease stops the process. Returns the election task,
/// which releases the Lease when `release` turns true.
async fn lead(
    elector: Elector,
    stop: &watch::Sender<Stop>,
    release: watch::Receiver<bool>,
    serving: Option<&mut Serving>,
) -> Result<JoinHandle<()>, Box<dyn std::error::Error>> {
    let mut leading = elector.leading();
    let identity = elector.identity().to_owned();
    let task = tokio::spawn(elector.run(release));
    tracing::info!(identity = %identity, "standby: waiting for the Lease");
    let ended = async {
        match serving {
            Some(serving) => serving.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = leading.wait_for(|l| *l) => {}
        _ = stopped(stop.subscribe()) => return Ok(task),
        result = ended => {
            result.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
            // A stop ends the server too, and may be seen here first.
            if *stop.borrow() != Stop::Running {
                return Ok(task);
            }
            return Err("the CSI server stopped while this replica was a standby".into());
        }
    }
    tracing::info!(identity = %identity, "leading");
    let stop = stop.clone();
    tokio::spawn(async move {
        if leading.wait_for(|l| !*l).await.is_ok() {
            tracing::error!("lost the Lease: stopping, so that only the leader serves");
            stop.send_if_modified(|s| {
                let running = *s == Stop::Running;
                if running {
                    *s = Stop::LostLease;
                }
                running
            });
        }
    });
    Ok(task)
}

/// The driver's services sit behind a gate: a standby's socket answers Identity (Probe not
/// ready) until it leads. In proxy mode (with the upstream returned) its name and capabilities
/// are the upstream's.
fn gate(args: &Args) -> Result<(Gate, Option<proxy::Upstream>), Box<dyn std::error::Error>> {
    Ok(match &args.upstream {
        Some(Endpoint::Unix(socket)) => {
            let upstream = proxy::Upstream::new(socket, Duration::from_secs(args.upstream_timeout_seconds));
            (Gate::standby_in_front_of(upstream.clone(), &args.lease_name), Some(upstream))
        }
        Some(Endpoint::Tcp(_)) => return Err("--upstream must be a unix:// socket, as CSI drivers serve".into()),
        None => (Gate::standby(&args.driver_name, &args.lease_name), None),
    })
}

async fn run(args: Args) -> Result<Stop, Box<dyn std::error::Error>> {
    tether_core::check_node_id(&args.node_id).map_err(|e| format!("--node-id: {e}"))?;
    let kubelet = registration::Config::from_flags(&registration_flags(&args))?;
    let (stop, _) = watch::channel(Stop::Running);
    watch_signals(stop.clone())?;
    let config = k8s::config(args.kubeconfig.as_deref()).await?;
    if args.node_plugin && (args.store != StoreKind::Kubernetes || args.leader_election) {
        return Err("--node-plugin needs --store=kubernetes and no --leader-election".into());
    }
    // A node plugin uses Kubernetes for the store alone.
    let kube = match config.clone().filter(|_| !args.node_plugin) {
        Some(config) => Some(k8s::client(config, args.api_rate())?.0),
        None => None,
    };
    let slot: DriverSlot = Arc::default();
    if !args.metrics_address.is_empty() {
        let listener = tokio::net::TcpListener::bind(&args.metrics_address)
            .await
            .map_err(|e| format!("--metrics-address {}: {e}", args.metrics_address))?;
        tracing::info!(address = %args.metrics_address, "serving metrics");
        tokio::spawn(tether_driver::http::serve_metrics(listener, Arc::clone(&slot)));
    }
    let (gate, upstream) = gate(&args)?;
    let serve = |router| serve(router, &args.endpoint, &slot, &stop);
    let mut serving = None;
    // Leadership comes first: a standby must not read a store the leader is writing.
    let (release, release_rx) = watch::channel(false);
    let mut elector = None;
    let mut lease_term = 0;
    if args.leader_election {
        let client =
            kube.clone().ok_or("--leader-election needs Kubernetes: a kubeconfig or in-cluster configuration")?;
        let e = Elector::new(client, lease_config(&args)?, Arc::new(MonotonicClock::new()));
        let term = e.term();
        serving = Some(serve(gate.router()));
        elector = Some(lead(e, &stop, release_rx, serving.as_mut()).await?);
        lease_term = term.load(std::sync::atomic::Ordering::Acquire);
        if *stop.borrow() != Stop::Running {
            // A standby has no calls worth finishing: its sidecars' idle connections must not
            // hold the exit up.
            if let Some(serving) = serving {
                serving.abort();
                remove_socket(&args.endpoint);
            }
            return finish(elector, &release, Stop::Signalled).await;
        }
    }
    let store = open_store(&args, config).await?;
    let clock: Arc<dyn Clock> = Arc::new(MonotonicClock::new());
    let mut layer = kube.map(|client| {
        let reporter = k8s::Reporter { component: args.driver_name.clone(), instance: args.node_id.clone() };
        k8s::layer::Layer::start(client, reporter, &args.driver_name)
    });
    let parts = if let Some(l) = &layer {
        l.parts(clock, store)
    } else {
        let nodes = StaticNodes::new(std::iter::once(args.node_id.clone()).chain(args.nodes.iter().cloned()));
        Parts { clock, store, nodes: Arc::new(nodes), events: Arc::new(LogSink), changes: None, awaits_rebuild: false }
    };
    let driver = Arc::new(Driver::open(settings(&args, lease_term), parts)?);
    let _ = slot.set(Arc::clone(&driver));
    // A stop that came while the driver opened found no driver to shut down.
    if *stop.borrow() != Stop::Running {
        driver.begin_shutdown();
    }
    let node_lost = layer.as_ref().map_or_else(|| Arc::new(Notify::new()), |l| Arc::clone(&l.node_lost));
    let every = Duration::from_secs(args.reconcile_interval_seconds);
    let reconciler = tokio::spawn(reconciler::run(Arc::clone(&driver), every, node_lost));
    // The socket serves at once (a standby's already did); until the rebuild is done, calls
    // that need state answer UNAVAILABLE.
    let routes = match upstream {
        Some(upstream) => {
            tracing::info!(upstream = %upstream.target(), "proxy mode: forwarding to the upstream driver");
            proxy::routes(Arc::new(proxy::Proxy::new(Arc::clone(&driver), upstream)))
        }
        None => server::routes(Arc::clone(&driver)),
    };
    gate.lead(routes);
    let served = serving.unwrap_or_else(|| serve(gate.router()));
    if let Some(kubelet) = &kubelet {
        registration::spawn(kubelet, &driver, stopped(stop.subscribe()))?;
    }
    let rebuilt = async {
        if let Some(layer) = layer.as_mut() {
            tracing::info!("Kubernetes on: rebuilding attachment state from VolumeAttachments");
            layer.run(&driver).await;
        }
        std::future::pending::<()>().await;
    };
    // The server returns once every connection is closed; a client that keeps an idle
    // connection open must not hold the exit up once the calls in flight are done.
    tokio::select! {
        result = served => result.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?,
        () = drained(&driver) => tracing::info!("in-flight calls done; closing the remaining connections"),
        () = rebuilt => {}
    }
    reconciler.abort();
    drop(layer);
    remove_socket(&args.endpoint);
    refence_done(&driver).await;
    tracing::info!("stopped; every acknowledged change is durable");
    // Still "running" here means nobody asked: the driver stopped itself on a newer term.
    let why = match *stop.borrow() {
        Stop::Running => Stop::Superseded,
        why => why,
    };
    finish(elector, &release, why).await
}

/// Waits for the background re-fence, which stops after its batch in flight once shutdown
/// began, so none of its writes lands after the Lease is released and a new leader has read.
async fn refence_done(driver: &Arc<Driver>) {
    driver.begin_shutdown();
    let sweep = Arc::clone(driver);
    if let Ok(Err(e)) = tokio::task::spawn_blocking(move || sweep.await_refence()).await {
        tracing::warn!("the background re-fence had stopped early: {e}");
    }
}

fn remove_socket(endpoint: &Endpoint) {
    if let Endpoint::Unix(path) = endpoint {
        let _ = std::fs::remove_file(path);
    }
}

/// The store --store names.
async fn open_store(
    args: &Args,
    config: Option<kube::Config>,
) -> Result<Arc<dyn VolumeStore>, Box<dyn std::error::Error>> {
    Ok(match args.store {
        StoreKind::Embedded => {
            // Held by the store until the process ends: a second process on this state
            // directory is refused, naming this one; a new leader (replicas may share the
            // directory) waits for its predecessor, which released the Lease and is exiting.
            let (dir, wait) = (args.state_dir.clone(), args.leader_election);
            let state_lock = tokio::task::spawn_blocking(move || StateLock::acquire(&dir, wait)).await??;
            tracing::info!(lock = %state_lock.path().display(), "holding the state directory");
            Arc::new(EmbeddedStore::serve(&args.state_dir, args.capacity_bytes, state_lock)?)
        }
        StoreKind::Kubernetes => {
            let config =
                config.ok_or("--store=kubernetes needs Kubernetes: a kubeconfig or in-cluster configuration")?;
            let role = if args.node_plugin { Role::Node } else { Role::Controller };
            let (root, capacity, rate) = (&args.state_dir, args.capacity_bytes, args.api_rate());
            Arc::new(KubeStore::open_at_rate(config, root, capacity, role, STORE_TIMEOUT, rate)?)
        }
    })
}

/// Releases the Lease (if held) and reports why the process stops.
async fn finish(
    elector: Option<JoinHandle<()>>,
    release: &watch::Sender<bool>,
    why: Stop,
) -> Result<Stop, Box<dyn std::error::Error>> {
    release.send_replace(true);
    if let Some(task) = elector {
        let _ = task.await;
    }
    Ok(why)
}

/// Completes once shutdown began, no RPC is running, and connections had a moment to close.
async fn drained(driver: &Driver) {
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    while !driver.is_shutting_down() || driver.in_flight() > 0 {
        poll.tick().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    while driver.in_flight() > 0 {
        poll.tick().await;
    }
}

/// `tether-csi migrate-store`: moves the embedded store under --state-dir into the API server
/// (the cluster store of --store=kubernetes), every record with its fence, and exits. Run it
/// once, with no driver running on that state directory; the volumes' data stays where it is.
#[derive(Debug, Parser)]
#[command(name = "tether-csi migrate-store")]
struct MigrateArgs {
    /// The embedded store's directory.
    #[arg(long)]
    state_dir: PathBuf,
    /// Kubeconfig of the API server (else `KUBECONFIG`, else in-cluster configuration).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

async fn migrate_store(args: MigrateArgs) -> Result<(), Box<dyn std::error::Error>> {
    let config = k8s::config(args.kubeconfig.as_deref())
        .await?
        .ok_or("migrate-store needs Kubernetes: --kubeconfig, KUBECONFIG or in-cluster configuration")?;
    let from = EmbeddedStore::open(&args.state_dir, u64::MAX)?;
    let to = KubeStore::open(config, &args.state_dir, u64::MAX, Role::Controller, STORE_TIMEOUT)?;
    let done = tokio::task::spawn_blocking(move || migrate::migrate(&from, &to)).await??;
    tracing::info!(
        volumes = done.volumes,
        fences = done.fences,
        term = done.term,
        "moved the embedded store into the API server"
    );
    Ok(())
}

/// Runs `work` on a new runtime; an error is logged and printed, and fails the process.
fn run_to_exit<T>(
    work: impl std::future::Future<Output = Result<T, Box<dyn std::error::Error>>>,
) -> Result<T, ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| {
        eprintln!("tether-csi: cannot start the runtime: {e}");
        ExitCode::FAILURE
    })?;
    runtime.block_on(work).map_err(|e| {
        tracing::error!("{e}");
        eprintln!("tether-csi: {e}");
        ExitCode::FAILURE
    })
}

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("migrate-store") {
        let args = MigrateArgs::parse_from(std::env::args().skip(1));
        logging::init(LogFormat::Text);
        return run_to_exit(migrate_store(args)).map_or_else(|code| code, |()| ExitCode::SUCCESS);
    }
    let args = Args::parse();
    logging::init(args.log_format);
    match run_to_exit(run(args)) {
        Ok(Stop::LostLease | Stop::Superseded) => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}
