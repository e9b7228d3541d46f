//! The event sink that posts events on the PVC through a bounded queue, so a slow or absent
//! API server never holds up a CSI call.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::{Event as KubeEvent, EventSource, ObjectReference};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::api::PostParams;
use kube::{Api, Client};
use tokio::sync::mpsc;

use super::cluster::Cluster;
use crate::events::{Event, EventSink};
use crate::metrics::Metrics;
use crate::volume::Claim;

/// Events waiting for the API server; beyond this, new events are dropped and counted.
pub const QUEUE_CAPACITY: usize = 1024;
/// One post may take this long before the event counts as dropped and the next one goes.
const POST_TIMEOUT: Duration = Duration::from_secs(10);

/// Who reports the events: `source.component` and `reportingComponent`, and the instance.
#[derive(Debug, Clone)]
pub struct Reporter {
    pub component: String,
    pub instance: String,
}

/// Accepts events without waiting; [`Poster::run`] sends them to the API server.
#[derive(Debug)]
pub struct KubeSink {
    queue: mpsc::Sender<Event>,
}

/// The background half of [`KubeSink`].
pub struct Poster {
    queue: mpsc::Receiver<Event>,
    client: Client,
    reporter: Reporter,
    /// Where to find a volume's PVC from its PV's claimRef, when its parameters do not say.
    cluster: Option<Arc<Cluster>>,
}

impl std::fmt::Debug for Poster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Poster").field("reporter", &self.reporter).finish_non_exhaustive()
    }
}

/// A sink and the poster that drains it; run the poster once the driver's metrics exist.
pub fn sink(client: Client, reporter: Reporter, capacity: usize) -> (Arc<KubeSink>, Poster) {
    let (tx, rx) = mpsc::channel(capacity);
    (Arc::new(KubeSink { queue: tx }), Poster { queue: rx, client, reporter, cluster: None })
}

impl EventSink for KubeSink {
    /// False when the queue is full (or the poster is gone): the driver counts it as dropped.
    fn post(&self, event: Event) -> bool {
        self.queue.try_send(event).is_ok()
    }
}

impl Poster {
    /// Finds the PVC of events whose volume parameters name none through `cluster`'s PVs.
    #[must_use]
    pub fn with_claims(mut self, cluster: Arc<Cluster>) -> Self {
        self.cluster = Some(cluster);
        self
    }

    /// Posts each queued event on its PVC; an event without a known PVC is skipped, and one
    /// the API server does not take is counted as dropped.
    pub async fn run(mut self, metrics: Metrics) {
        while let Some(event) = self.queue.recv().await {
            let claim = event.claim.clone().or_else(|| self.cluster.as_ref()?.claim_of(&event.volume));
            let Some(claim) = claim else {
                tracing::debug!(reason = event.reason.as_str(), volume = %event.volume, "no PVC known; event not posted");
                continue;
            };
            let api: Api<KubeEvent> = Api::namespaced(self.client.clone(), &claim.namespace);
            let object = self.object(&claim, &event);
            match tokio::time::timeout(POST_TIMEOUT, api.create(&PostParams::default(), &object)).await {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => Self::dropped(&metrics, &event, &e.to_string()),
                Err(_) => Self::dropped(&metrics, &event, "timed out"),
            }
        }
    }

    fn dropped(metrics: &Metrics, event: &Event, why: &str) {
        metrics.event_dropped(event.reason);
        tracing::warn!(reason = event.reason.as_str(), volume = %event.volume, error = why, "event not posted");
    }

    fn object(&self, claim: &Claim, event: &Event) -> KubeEvent {
        let now = Time(k8s_openapi::jiff::Timestamp::now());
        let kind = if event.reason.is_warning() { "Warning" } else { "Normal" };
        KubeEvent {
            metadata: ObjectMeta {
                generate_name: Some(format!("{}.", claim.name)),
                namespace: Some(claim.namespace.clone()),
                ..ObjectMeta::default()
            },
            involved_object: ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: Some(claim.namespace.clone()),
                name: Some(claim.name.clone()),
                ..ObjectReference::default()
            },
            reason: Some(event.reason.as_str().into()),
            message: Some(format!("volume {}: {}", event.volume, event.message)),
            type_: Some(kind.into()),
            count: Some(1),
            first_timestamp: Some(now.clone()),
            last_timestamp: Some(now),
            source: Some(EventSource { component: Some(self.reporter.component.clone()), host: None }),
            reporting_component: Some(self.reporter.component.clone()),
            reporting_instance: Some(self.reporter.instance.clone()),
            ..KubeEvent::default()
        }
    }
}
