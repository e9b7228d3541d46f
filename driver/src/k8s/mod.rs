//! The Kubernetes layer: when it is switched on, and its parts (events, Node and PV caches,
//! rebuild from `VolumeAttachments`, PV annotations, leader election, and their wiring).

use std::path::{Path, PathBuf};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::Config;

pub mod annotate;
pub mod attachments;
pub mod client;
pub mod cluster;
pub mod layer;
pub mod lease;
pub mod poster;
pub mod rebuild;
pub mod standby;

pub use client::{client, ApiRate};
pub use poster::{sink, KubeSink, Poster, Reporter, QUEUE_CAPACITY};

/// Where in-cluster configuration keeps the `ServiceAccount` token.
const TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// Why the Kubernetes layer could not start although it was asked for.
#[derive(Debug, thiserror::Error)]
pub enum KubeError {
    #[error("kubeconfig {path}: {source}")]
    Kubeconfig { path: String, source: kube::config::KubeconfigError },
    #[error("in-cluster configuration: {0}")]
    InCluster(#[from] kube::config::InClusterError),
    #[error("Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

/// The configuration to use: `--kubeconfig`, else `KUBECONFIG`, else in-cluster if both the
/// service host and the token are there; `None` means Kubernetes is off.
pub async fn config(kubeconfig: Option<&Path>) -> Result<Option<Config>, KubeError> {
    let env_path = std::env::var_os("KUBECONFIG").filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = kubeconfig.map(Path::to_path_buf).or(env_path) {
        let to_err = |source| KubeError::Kubeconfig { path: path.display().to_string(), source };
        let file = Kubeconfig::read_from(&path).map_err(to_err)?;
        return Ok(Some(Config::from_custom_kubeconfig(file, &KubeConfigOptions::default()).await.map_err(to_err)?));
    }
    if std::env::var_os("KUBERNETES_SERVICE_HOST").is_some() && Path::new(TOKEN_FILE).exists() {
        return Ok(Some(Config::incluster()?));
    }
    Ok(None)
}
