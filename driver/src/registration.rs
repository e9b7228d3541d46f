//! Kubelet plugin registration by `tether-csi` itself, in place of node-driver-registrar: the
//! flags that switch it on, the `pluginregistration.Registration` service on
//! `<dir>/<driver-name>-reg.sock`, and what the kubelet last said about it.

use std::future::Future;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use prometheus::{IntCounter, IntGauge, Opts};
use tokio::net::UnixStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::driver::Driver;
use crate::metrics::Metrics;
use crate::server::{self, Endpoint};

/// The kubelet's registration messages and service, generated from `proto/pluginregistration.proto`.
#[allow(clippy::pedantic, missing_docs)]
pub mod api {
    tonic::include_proto!("pluginregistration");
}

use api::registration_server::{Registration, RegistrationServer};
use api::{InfoRequest, PluginInfo, RegistrationStatus, RegistrationStatusResponse};

/// `PluginInfo.type` of a CSI driver, as the kubelet's plugin watcher spells it.
pub const CSI_PLUGIN: &str = "CSIPlugin";
/// The CSI versions offered to the kubelet, as node-driver-registrar offers them.
pub const SUPPORTED_VERSIONS: [&str; 1] = ["1.0.0"];
/// How often the wait for this process's own CSI socket tries it again.
const CSI_POLL: Duration = Duration::from_millis(50);

/// A refused combination of the registration flags; each message names the flag to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlagError {
    #[error("--kubelet-registration-path needs --kubelet-registration-dir (the kubelet's plugin registry, e.g. /var/lib/kubelet/plugins_registry)")]
    PathWithoutDir,
    #[error("--kubelet-registration-dir needs --kubelet-registration-path (the CSI socket's path as the kubelet sees it, e.g. /var/lib/kubelet/plugins/tether.csi.dev/csi.sock)")]
    DirWithoutPath,
    #[error("--kubelet-registration-dir needs --node-plugin: only the node plugin serves the kubelet")]
    NotNodePlugin,
    #[error("{flag} {path:?} must be an absolute UTF-8 path")]
    BadPath { flag: &'static str, path: PathBuf },
    #[error("--kubelet-registration-dir needs a unix:// --endpoint: the kubelet calls CSI drivers on Unix sockets")]
    TcpEndpoint,
    #[error("--driver-name {0:?} cannot name the registration socket <dir>/<driver-name>-reg.sock: it must be non-empty, without '/' or NUL, and not start with '.' (the kubelet ignores such files)")]
    DriverName(String),
}

/// The command-line values registration depends on, as `tether-csi` parsed them.
#[derive(Debug, Clone, Copy)]
pub struct Flags<'a> {
    pub dir: Option<&'a Path>,
    pub path: Option<&'a Path>,
    pub node_plugin: bool,
    pub endpoint: &'a Endpoint,
    pub driver_name: &'a str,
}

/// Registration switched on and checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Where the kubelet's plugin watcher looks for sockets (`--kubelet-registration-dir`).
    pub dir: PathBuf,
    /// The CSI socket as the kubelet sees it (`--kubelet-registration-path`), sent in `GetInfo`.
    pub kubelet_endpoint: String,
    /// The CSI socket as this process sees it (`--endpoint`).
    pub csi_socket: PathBuf,
    pub driver_name: String,
}

fn absolute<'a>(flag: &'static str, path: &'a Path) -> Result<&'a str, FlagError> {
    path.to_str().filter(|_| path.is_absolute()).ok_or_else(|| FlagError::BadPath { flag, path: path.to_path_buf() })
}

impl Config {
    /// `None` when registration is off (neither flag given); otherwise the checked settings
    /// or the first flag that is wrong.
    pub fn from_flags(flags: &Flags<'_>) -> Result<Option<Self>, FlagError> {
        let (dir, path) = match (flags.dir, flags.path) {
            (None, None) => return Ok(None),
            (None, Some(_)) => return Err(FlagError::PathWithoutDir),
            (Some(_), None) => return Err(FlagError::DirWithoutPath),
            (Some(dir), Some(path)) => (dir, path),
        };
        if !flags.node_plugin {
            return Err(FlagError::NotNodePlugin);
        }
        absolute("--kubelet-registration-dir", dir)?;
        let kubelet_endpoint = absolute("--kubelet-registration-path", path)?.to_owned();
        let Endpoint::Unix(csi_socket) = flags.endpoint else {
            return Err(FlagError::TcpEndpoint);
        };
        let name = flags.driver_name;
        // The kubelet's plugin watcher skips files whose name starts with a dot.
        if name.is_empty() || name.starts_with('.') || name.contains(['/', '\0']) {
            return Err(FlagError::DriverName(name.to_owned()));
        }
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            kubelet_endpoint,
            csi_socket: csi_socket.clone(),
            driver_name: name.to_owned(),
        }))
    }

    /// The registration socket, named as node-driver-registrar names it.
    pub fn socket(&self) -> PathBuf {
        self.dir.join(format!("{}-reg.sock", self.driver_name))
    }
}

/// What the kubelet last said about this plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KubeletStatus {
    /// No `NotifyRegistrationStatus` yet.
    Waiting,
    Registered,
    /// The kubelet refused, with its reason.
    Refused(String),
}

/// The `Registration` service: answers `GetInfo` and records the kubelet's verdict, in the
/// log, in [`Registrar::status`] and in two metrics (`<ns>_kubelet_registered`, 1 while the
/// last verdict was a registration; `<ns>_kubelet_registration_refusals_total`).
#[derive(Debug, Clone)]
pub struct Registrar {
    info: PluginInfo,
    status: Arc<watch::Sender<KubeletStatus>>,
    registered: IntGauge,
    refusals: IntCounter,
}

impl Registrar {
    /// A registrar for `config`, its metrics added to `metrics` (once per registry).
    pub fn new(config: &Config, namespace: &str, metrics: &Metrics) -> Result<Self, prometheus::Error> {
        let opts = |name: &str, help: &str| Opts::new(name, help).namespace(namespace).subsystem("kubelet");
        let registered = IntGauge::with_opts(opts(
            "registered",
            "1 while the kubelet's last word was that it registered the plugin.",
        ))?;
        let refusals = IntCounter::with_opts(opts(
            "registration_refusals_total",
            "Registrations the kubelet refused (its reason is in the log).",
        ))?;
        metrics.register(Box::new(registered.clone()))?;
        metrics.register(Box::new(refusals.clone()))?;
        let info = PluginInfo {
            r#type: CSI_PLUGIN.to_owned(),
            name: config.driver_name.clone(),
            endpoint: config.kubelet_endpoint.clone(),
            supported_versions: SUPPORTED_VERSIONS.map(str::to_owned).to_vec(),
        };
        let (status, _) = watch::channel(KubeletStatus::Waiting);
        Ok(Self { info, status: Arc::new(status), registered, refusals })
    }

    /// The kubelet's last verdict.
    pub fn status(&self) -> KubeletStatus {
        self.status.borrow().clone()
    }

    fn record(&self, verdict: &RegistrationStatus) {
        let name = &self.info.name;
        let status = if verdict.plugin_registered {
            tracing::info!(driver = %name, "the kubelet registered the plugin");
            self.registered.set(1);
            KubeletStatus::Registered
        } else {
            tracing::error!(driver = %name, error = %verdict.error, "the kubelet refused to register the plugin");
            self.registered.set(0);
            self.refusals.inc();
            KubeletStatus::Refused(verdict.error.clone())
        };
        self.status.send_replace(status);
    }
}

#[tonic::async_trait]
impl Registration for Registrar {
    #[instrument(skip_all)]
    async fn get_info(&self, _request: Request<InfoRequest>) -> Result<Response<PluginInfo>, Status> {
        tracing::debug!(endpoint = %self.info.endpoint, "the kubelet asked for the plugin's info");
        Ok(Response::new(self.info.clone()))
    }

    #[instrument(skip_all, fields(registered = request.get_ref().plugin_registered))]
    async fn notify_registration_status(
        &self,
        request: Request<RegistrationStatus>,
    ) -> Result<Response<RegistrationStatusResponse>, Status> {
        self.record(request.get_ref());
        Ok(Response::new(RegistrationStatusResponse {}))
    }
}

/// The registration socket this process bound; removed when dropped, unless another process
/// has bound a socket of its own at that path since (its inode differs).
#[derive(Debug)]
struct SocketFile {
    path: PathBuf,
    inode: (u64, u64),
}

impl SocketFile {
    fn identify(path: &Path) -> Option<(u64, u64)> {
        std::fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
    }
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if Self::identify(&self.path) == Some(self.inode) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Completes once something accepts connections on `path`: the kubelet calls the CSI socket
/// (`NodeGetInfo`) as soon as registration answers, so registration waits for it, as
/// node-driver-registrar, which asks the driver for its name first, does.
async fn accepting(path: &Path) {
    let mut waited = false;
    while UnixStream::connect(path).await.is_err() {
        if !waited {
            tracing::info!(csi = %path.display(), "waiting for the CSI socket before registering with the kubelet");
            waited = true;
        }
        tokio::time::sleep(CSI_POLL).await;
    }
}

/// Binds the registration socket now (replacing a stale one, refusing a file that is not a
/// socket), so that a bad directory fails start-up naming the path; then serves `registrar`
/// on it once the CSI socket answers, until `shutdown` completes. The socket file is removed
/// the moment `shutdown` completes (the kubelet then deregisters the plugin) or the task is
/// dropped.
pub fn start(
    config: &Config,
    registrar: Registrar,
    shutdown: impl Future + Send + 'static,
) -> std::io::Result<JoinHandle<Result<(), tonic::transport::Error>>> {
    let path = config.socket();
    let listener = server::bind_unix(&path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("registration socket {}: {e}", path.display())))?;
    let inode = SocketFile::identify(&path).ok_or_else(|| {
        std::io::Error::other(format!("registration socket {}: gone right after it was bound", path.display()))
    })?;
    let file = SocketFile { path, inode };
    let csi = config.csi_socket.clone();
    Ok(tokio::spawn(async move {
        let mut shutdown = Box::pin(async move {
            shutdown.await;
        });
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = accepting(&csi) => {}
        }
        tracing::info!(socket = %file.path.display(), "serving kubelet plugin registration");
        let until = async move {
            shutdown.await;
            drop(file);
        };
        server::serve_unix(server::builder().add_service(RegistrationServer::new(registrar)), listener, until).await
    }))
}

/// Registers `driver` with the kubelet as [`start`] does; a failure of the server once it
/// runs is logged. `tether-csi --kubelet-registration-dir` calls this once.
pub fn spawn(
    config: &Config,
    driver: &Driver,
    shutdown: impl Future + Send + 'static,
) -> Result<Registrar, Box<dyn std::error::Error>> {
    let registrar = Registrar::new(config, &driver.settings.metrics_namespace, &driver.metrics)?;
    let task = start(config, registrar.clone(), shutdown)?;
    tokio::spawn(async move {
        match task.await {
            Ok(Ok(())) => tracing::info!("kubelet plugin registration stopped"),
            Ok(Err(e)) => tracing::error!(error = %e, "kubelet plugin registration failed"),
            Err(e) => tracing::error!(error = %e, "kubelet plugin registration task ended abnormally"),
        }
    });
    Ok(registrar)
}
