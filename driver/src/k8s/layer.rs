//! The Kubernetes layer wired together: the Node and PV watchers, the event poster, the PV
//! annotator, and the rebuild from `VolumeAttachments` that must finish before the driver serves.

use std::sync::Arc;
use std::time::Duration;

use kube::Client;
use tether_core::Clock;
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::annotate::Annotator;
use super::cluster::Cluster;
use super::poster::{self, KubeSink, Poster, Reporter, QUEUE_CAPACITY};
use super::rebuild;
use crate::adopt::AdoptReport;
use crate::driver::{Driver, Parts};
use crate::status::DriverError;
use crate::store::VolumeStore;

/// Wait after a failed rebuild: from 1 s, doubling to 30 s.
const REBUILD_RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Why one rebuild attempt failed; the driver keeps refusing publishes and tries again.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error("listing VolumeAttachments and PersistentVolumes: {0}")]
    Kube(#[from] kube::Error),
    #[error("adopting the attachments: {0}")]
    Adopt(#[from] DriverError),
    #[error("the adopting task did not complete: {0}")]
    Join(#[from] tokio::task::JoinError),
}

/// The running layer; its background tasks stop when it is dropped.
pub struct Layer {
    pub client: Client,
    pub cluster: Arc<Cluster>,
    pub annotator: Arc<Annotator>,
    /// Notified when a Node is deleted or turns `NotReady`; the reconciler listens.
    pub node_lost: Arc<Notify>,
    pub sink: Arc<KubeSink>,
    poster: Option<Poster>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Layer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Layer").field("cluster", &self.cluster).finish_non_exhaustive()
    }
}

impl Layer {
    /// Starts the Node, PV and `VolumeAttachment` watchers; the caches fill in the background.
    pub fn start(client: Client, reporter: Reporter, driver_name: &str) -> Self {
        let node_lost = Arc::new(Notify::new());
        let (cluster, node_task, pv_task, va_task) = Cluster::watch(&client, driver_name, Arc::clone(&node_lost));
        let (sink, poster) = poster::sink(client.clone(), reporter, QUEUE_CAPACITY);
        Self {
            client,
            cluster,
            annotator: Arc::new(Annotator::default()),
            node_lost,
            sink,
            poster: Some(poster),
            tasks: vec![tokio::spawn(node_task), tokio::spawn(pv_task), tokio::spawn(va_task)],
        }
    }

    /// The parts Kubernetes provides: Nodes from the cache, events on PVCs, PV annotations,
    /// and state that must be rebuilt before serving.
    pub fn parts(&self, clock: Arc<dyn Clock>, store: Arc<dyn VolumeStore>) -> Parts {
        Parts {
            clock,
            store,
            nodes: self.cluster.clone(),
            events: self.sink.clone(),
            changes: Some(self.annotator.clone()),
            awaits_rebuild: true,
        }
    }

    /// Starts posting `driver`'s events and writing its annotations, then rebuilds its state
    /// from the `VolumeAttachments`, retrying with backoff until that succeeds; the driver serves
    /// from then on.
    pub async fn run(&mut self, driver: &Arc<Driver>) {
        if let Some(poster) = self.poster.take() {
            let metrics = driver.metrics.clone();
            self.tasks.push(tokio::spawn(poster.with_claims(self.cluster.clone()).run(metrics)));
        }
        let annotator =
            Arc::clone(&self.annotator).run(self.client.clone(), self.cluster.clone(), driver.engine.clone());
        self.tasks.push(tokio::spawn(annotator));
        rebuild_until_done(driver, &self.client, &self.cluster).await;
    }
}

impl Drop for Layer {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One rebuild: waits for the Node and PV caches, lists what is attached, adopts it.
pub async fn rebuild_once(
    driver: &Arc<Driver>,
    client: &Client,
    cluster: &Cluster,
) -> Result<AdoptReport, RebuildError> {
    cluster.ready().await;
    let (observed, skipped) = rebuild::observe(client, &driver.settings.driver_name).await?;
    for why in skipped {
        tracing::warn!("rebuild: {why}; not adopted");
    }
    let d = Arc::clone(driver);
    Ok(tokio::task::spawn_blocking(move || d.adopt(&observed)).await??)
}

/// Rebuilds until it succeeds: recovery fails closed, and the driver never serves from state
/// it could not rebuild.
pub async fn rebuild_until_done(driver: &Arc<Driver>, client: &Client, cluster: &Cluster) {
    let mut wait = REBUILD_RETRY.0;
    loop {
        match rebuild_once(driver, client, cluster).await {
            Ok(_) => return,
            Err(e) => tracing::warn!(error = %e, retry_in = ?wait, "rebuild failed; publishes answer UNAVAILABLE"),
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(REBUILD_RETRY.1);
    }
}
