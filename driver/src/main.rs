//! `tether-csi`: parses the command line, opens the driver on its state directory, serves
//! CSI and metrics until SIGTERM or SIGINT, then finishes in-flight calls and exits 0.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use tether_core::MonotonicClock;
use tether_driver::events::{EventSink, LogSink};
use tether_driver::k8s;
use tether_driver::logging::{self, LogFormat};
use tether_driver::nodes::StaticNodes;
use tether_driver::server::{self, Endpoint};
use tether_driver::store::EmbeddedStore;
use tether_driver::{Driver, Parts, Settings};
use tokio::signal::unix::{signal, SignalKind};

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
    /// Directory of the embedded volume store and its state.
    #[arg(long)]
    state_dir: PathBuf,
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
    /// Kubeconfig of the Kubernetes layer (events on PVCs). Without it, `KUBECONFIG` or
    /// in-cluster configuration switch it on; with none of them it stays off.
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
}

fn open(args: &Args, events: Arc<dyn EventSink>) -> Result<Arc<Driver>, Box<dyn std::error::Error>> {
    let settings = Settings {
        driver_name: args.driver_name.clone(),
        node_id: args.node_id.clone(),
        grace_period: Duration::from_secs(args.grace_period_seconds),
        default_migration_timeout: Duration::from_secs(args.migration_timeout_seconds),
        metrics_namespace: args.metrics_namespace.clone(),
    };
    let nodes = StaticNodes::new(std::iter::once(args.node_id.clone()).chain(args.nodes.iter().cloned()));
    let parts = Parts {
        clock: Arc::new(MonotonicClock::new()),
        store: Arc::new(EmbeddedStore::open(&args.state_dir, args.capacity_bytes)?),
        nodes: Arc::new(nodes),
        events,
    };
    Ok(Arc::new(Driver::open(settings, parts)?))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    tether_core::check_node_id(&args.node_id).map_err(|e| format!("--node-id: {e}"))?;
    let kube = match k8s::config(args.kubeconfig.as_deref()).await? {
        Some(config) => Some(kube::Client::try_from(config).map_err(k8s::KubeError::from)?),
        None => None,
    };
    let (events, poster): (Arc<dyn EventSink>, _) = match kube {
        Some(client) => {
            let reporter = k8s::Reporter { component: args.driver_name.clone(), instance: args.node_id.clone() };
            let (sink, poster) = k8s::sink(client, reporter, k8s::QUEUE_CAPACITY);
            tracing::info!("Kubernetes on: events go to the PVCs");
            (sink, Some(poster))
        }
        None => (Arc::new(LogSink), None),
    };
    let driver = open(&args, events)?;
    if let Some(poster) = poster {
        tokio::spawn(poster.run(driver.metrics.clone()));
    }
    if !args.metrics_address.is_empty() {
        let listener = tokio::net::TcpListener::bind(&args.metrics_address)
            .await
            .map_err(|e| format!("--metrics-address {}: {e}", args.metrics_address))?;
        tracing::info!(address = %args.metrics_address, "serving metrics");
        tokio::spawn(tether_driver::http::serve_metrics(listener, Arc::clone(&driver)));
    }
    let reconciler =
        tokio::spawn(reconcile_loop(Arc::clone(&driver), Duration::from_secs(args.reconcile_interval_seconds)));
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let stopping = Arc::clone(&driver);
    let shutdown = async move {
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: finishing in-flight calls"),
            _ = int.recv() => tracing::info!("SIGINT: finishing in-flight calls"),
        }
        stopping.begin_shutdown();
    };
    let served = server::serve(Arc::clone(&driver), &args.endpoint, shutdown);
    // The server returns once every connection is closed; a client that keeps an idle
    // connection open must not hold the exit up once the calls in flight are done.
    tokio::select! {
        result = served => result.map_err(|e| e.to_string())?,
        () = drained(&driver) => tracing::info!("in-flight calls done; closing the remaining connections"),
    }
    reconciler.abort();
    if let Endpoint::Unix(path) = &args.endpoint {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped; every acknowledged change is on disk");
    Ok(())
}

/// Completes once shutdown began, no RPC is running, and connections had a moment to close.
async fn drained(driver: &Driver) {
    let mut poll = tokio::time::interval(Duration::from_millis(10));
    while driver.is_ready() || driver.in_flight() > 0 {
        poll.tick().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    while driver.in_flight() > 0 {
        poll.tick().await;
    }
}

async fn reconcile_loop(driver: Arc<Driver>, every: Duration) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.tick().await;
    loop {
        tick.tick().await;
        let d = Arc::clone(&driver);
        match tokio::task::spawn_blocking(move || d.reconcile()).await {
            Ok(Ok(report)) => tracing::debug!(
                cleared = report.cleared.len(),
                timed_out = report.timed_out_migrations.len(),
                "reconciled"
            ),
            Ok(Err(e)) => tracing::warn!(error = %e, "reconcile failed"),
            Err(e) => tracing::warn!(error = %e, "reconcile did not complete"),
        }
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    logging::init(args.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tether-csi: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("tether-csi: {e}");
            ExitCode::FAILURE
        }
    }
}
