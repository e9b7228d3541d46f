//! Where the gRPC services listen: `unix:///path` (the CSI way) or `tcp://host:port` (for
//! development), served until a shutdown signal, finishing the calls in flight.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::net::{TcpListener, UnixListener};
use tokio_stream::wrappers::{TcpListenerStream, UnixListenerStream};
use tokio_stream::StreamExt;
use tonic::service::Routes;
use tonic::transport::server::Router;
use tonic::transport::Server;

use crate::authority::AuthorityFix;
use crate::csi::controller_server::ControllerServer;
use crate::csi::identity_server::IdentityServer;
use crate::csi::node_server::NodeServer;
use crate::driver::Driver;
use crate::service::CsiService;

/// A parsed `--endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl std::str::FromStr for Endpoint {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if let Some(path) = s.strip_prefix("unix://") {
            if !path.starts_with('/') {
                return Err(format!("endpoint {s:?}: a unix socket path must be absolute, e.g. unix:///run/csi.sock"));
            }
            Ok(Self::Unix(PathBuf::from(path)))
        } else if let Some(addr) = s.strip_prefix("tcp://") {
            addr.parse().map(Self::Tcp).map_err(|e| format!("endpoint {s:?}: {e}; e.g. tcp://127.0.0.1:10000"))
        } else {
            Err(format!("endpoint {s:?} must start with unix:// or tcp://"))
        }
    }
}

/// Remotely reset streams the server has not yet accepted that one connection may hold before
/// it is closed with GOAWAY (`ENHANCE_YOUR_CALM`, "`too_many_resets`"). h2 counts a stream here
/// only while it waits to be accepted and forgets it once accepted, so what reaches the limit
/// is the cancellations read in one go: after the process stalled (SIGSTOP, a long pause),
/// every call its clients opened and cancelled meanwhile; in a rapid-reset flood, thousands.
/// h2's default, 20, closed a sidecar's connection after a stall of a few seconds; 512 is many
/// times what the CSI sidecars keep in flight (tens of calls each) and still ends a flood at
/// its first few hundred streams. Each counted stream costs the server a slab entry, no task.
pub const MAX_PENDING_ACCEPT_RESETS: usize = 512;

/// The server settings every endpoint shares, the driver's services and the proxy's alike.
pub fn builder() -> Server {
    Server::builder().http2_max_pending_accept_reset_streams(Some(MAX_PENDING_ACCEPT_RESETS))
}

/// The three CSI services over one driver.
pub fn router(driver: Arc<Driver>) -> Router {
    builder().add_routes(routes(driver))
}

/// The three CSI services over one driver, as a service of their own (a standby's socket hands
/// its calls to them once it leads: `k8s::standby`).
pub fn routes(driver: Arc<Driver>) -> Routes {
    let svc = CsiService::new(driver);
    Routes::new(IdentityServer::new(svc.clone()))
        .add_service(ControllerServer::new(svc.clone()))
        .add_service(NodeServer::new(svc))
}

/// Binds a Unix socket, replacing a stale socket file left by a killed driver.
pub fn bind_unix(path: &Path) -> std::io::Result<UnixListener> {
    use std::os::unix::fs::FileTypeExt;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(std::io::Error::other(format!("{} exists and is not a socket", path.display())));
        }
        std::fs::remove_file(path)?;
    }
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    UnixListener::bind(path)
}

/// Serves `driver` on `endpoint` until `shutdown` completes, then waits for in-flight calls;
/// a Unix socket file is removed afterwards.
pub async fn serve(
    driver: Arc<Driver>,
    endpoint: &Endpoint,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    serve_router(router(driver), endpoint, shutdown).await
}

/// Serves `router` (the driver's services, or the proxy's) as [`serve`] does.
pub async fn serve_router(
    router: Router,
    endpoint: &Endpoint,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    match endpoint {
        Endpoint::Unix(path) => {
            let listener = bind_unix(path)?;
            tracing::info!(endpoint = %path.display(), "serving CSI");
            let served = serve_unix(router, listener, shutdown).await;
            let _ = std::fs::remove_file(path);
            served?;
        }
        Endpoint::Tcp(addr) => {
            let listener = TcpListener::bind(addr).await?;
            tracing::info!(endpoint = %addr, "serving CSI");
            serve_tcp(router, listener, shutdown).await?;
        }
    }
    Ok(())
}

/// Serves `router` on a bound Unix listener until `shutdown` completes; the caller owns the
/// socket file.
pub async fn serve_unix(
    router: Router,
    listener: UnixListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    // Clients other than grpc-go send the socket path as :authority; see src/authority/.
    let incoming = UnixListenerStream::new(listener).map(|conn| conn.map(AuthorityFix::new));
    router.serve_with_incoming_shutdown(incoming, shutdown).await
}

/// Serves `router` on a bound TCP listener until `shutdown` completes, to the same clients as
/// the Unix socket: the authority adapter sits on every connection here too (grpc-java sends
/// the target it was given, which h2 may refuse, whatever the transport).
pub async fn serve_tcp(
    router: Router,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let incoming = TcpListenerStream::new(listener).map(|conn| conn.map(AuthorityFix::new));
    router.serve_with_incoming_shutdown(incoming, shutdown).await
}

/// A client channel to a driver's Unix socket (tests, benchmarks, tools).
pub async fn connect_unix(path: &Path) -> Result<tonic::transport::Channel, tonic::transport::Error> {
    let path = path.to_path_buf();
    tonic::transport::Endpoint::from_static("http://tether-csi.invalid")
        .connect_with_connector(tower::service_fn(move |_: tonic::transport::Uri| {
            let path = path.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
            }
        }))
        .await
}
