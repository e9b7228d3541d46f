//! The cluster as the driver sees it: Nodes, `PersistentVolumes` and `VolumeAttachments` kept
//! in caches by watchers, so a publish asks the cache, never the API server, whether a node
//! still exists and what it holds.

use std::collections::HashMap;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;

use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio::sync::Notify;
use tokio_stream::StreamExt;

use super::attachments::Attachments;
use crate::nodes::{Held, NodeDirectory, Records};
use crate::volume::Claim;

/// The Node and PV caches, filled by [`Cluster::watch`].
#[derive(Clone)]
pub struct Cluster {
    nodes: Store<Node>,
    pvs: Store<PersistentVolume>,
    attachments: Attachments,
    driver_name: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("driver_name", &self.driver_name)
            .field("nodes", &self.nodes.len())
            .field("pvs", &self.pvs.len())
            .field("attachments", &self.attachments)
            .finish()
    }
}

/// Whether a Node's `Ready` condition says it is ready.
fn is_ready(node: &Node) -> bool {
    let conditions = node.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// The CSI volume handle of a PV of driver `driver`.
pub fn volume_handle<'a>(pv: &'a PersistentVolume, driver: &str) -> Option<&'a str> {
    let csi = pv.spec.as_ref()?.csi.as_ref()?;
    (csi.driver == driver).then_some(csi.volume_handle.as_str())
}

impl Cluster {
    /// Starts watching Nodes, PVs and this driver's `VolumeAttachments` (the third future);
    /// `node_lost` is notified when a Node is deleted, turns
    /// `NotReady`, or the Node list is read anew (a node may have gone while the watch was down).
    /// The watchers retry with backoff for as long as the returned futures run.
    pub fn watch(
        client: &Client,
        driver_name: &str,
        node_lost: Arc<Notify>,
    ) -> (
        Arc<Self>,
        impl Future<Output = ()> + Send + 'static,
        impl Future<Output = ()> + Send + 'static,
        impl Future<Output = ()> + Send + 'static,
    ) {
        let (nodes, node_writer) = reflector::store();
        let (pvs, pv_writer) = reflector::store();
        let node_stream =
            reflector::reflector(node_writer, watcher(Api::<Node>::all(client.clone()), watcher::Config::default()))
                .default_backoff();
        let pv_stream = reflector::reflector(
            pv_writer,
            watcher(Api::<PersistentVolume>::all(client.clone()), watcher::Config::default()),
        )
        .default_backoff();
        let node_task = async move {
            let mut ready: HashMap<String, bool> = HashMap::new();
            let mut stream = pin!(node_stream);
            while let Some(event) = stream.next().await {
                let lost = match event {
                    Ok(watcher::Event::Delete(node)) => {
                        ready.remove(&node.metadata.name.unwrap_or_default());
                        true
                    }
                    Ok(watcher::Event::Apply(node) | watcher::Event::InitApply(node)) => {
                        let now = is_ready(&node);
                        let was = ready.insert(node.metadata.name.unwrap_or_default(), now);
                        was == Some(true) && !now
                    }
                    Ok(watcher::Event::InitDone) => true,
                    Ok(watcher::Event::Init) => false,
                    Err(e) => {
                        tracing::warn!(error = %e, "Node watch failed; retrying");
                        false
                    }
                };
                if lost {
                    node_lost.notify_one();
                }
            }
        };
        let pv_task = async move {
            let mut stream = pin!(pv_stream);
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    tracing::warn!(error = %e, "PersistentVolume watch failed; retrying");
                }
            }
        };
        let (attachments, va_task) = Attachments::watch(client, driver_name);
        (Arc::new(Self { nodes, pvs, attachments, driver_name: driver_name.to_owned() }), node_task, pv_task, va_task)
    }

    /// Waits until both caches hold a complete first listing.
    pub async fn ready(&self) {
        // The writers live as long as the watch tasks; if those are gone, nothing will fill
        // the caches and waiting longer is pointless.
        let _ = self.nodes.wait_until_ready().await;
        let _ = self.pvs.wait_until_ready().await;
    }

    /// Whether the cached Node's `Ready` condition is `True`.
    pub fn is_ready(&self, node: &str) -> bool {
        self.nodes.get(&ObjectRef::new(node)).is_some_and(|n| is_ready(&n))
    }

    /// The CSI driver name whose PVs these are.
    pub fn driver_name(&self) -> &str {
        &self.driver_name
    }

    /// The PV of this driver whose volume handle is `volume`.
    pub fn pv_for(&self, volume: &str) -> Option<Arc<PersistentVolume>> {
        self.pvs.find(|pv| volume_handle(pv, &self.driver_name) == Some(volume))
    }

    /// Every PV of this driver.
    pub fn our_pvs(&self) -> Vec<Arc<PersistentVolume>> {
        self.pvs.state_filter(|pv| volume_handle(pv, &self.driver_name).is_some())
    }

    /// The PVC bound to `volume`'s PV, from its claimRef.
    pub fn claim_of(&self, volume: &str) -> Option<Claim> {
        let pv = self.pv_for(volume)?;
        let claim = pv.spec.as_ref()?.claim_ref.as_ref()?;
        Some(Claim { namespace: claim.namespace.clone()?, name: claim.name.clone()? })
    }
}

/// How long a publish waits for the `VolumeAttachments` read anew before it refuses.
const RECORDS_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl Cluster {
    /// A quorum read of `volume`'s `VolumeAttachments`, on the calling blocking thread.
    fn attachments_now(&self, volume: &str) -> Records {
        let Some(pv) = self.pv_for(volume).and_then(|pv| pv.metadata.name.clone()) else {
            return Records::Unreadable(format!(
                "no PersistentVolume of {} has volume handle {volume}",
                self.driver_name
            ));
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return Records::Unreadable("no Tokio runtime to read the VolumeAttachments on".to_owned());
        };
        match runtime.block_on(tokio::time::timeout(RECORDS_TIMEOUT, self.attachments.nodes_now(&pv))) {
            Ok(Ok(nodes)) => Records::Nodes(nodes),
            Ok(Err(e)) => Records::Unreadable(format!("listing VolumeAttachments: {e}")),
            Err(_) => Records::Unreadable(format!("listing VolumeAttachments took over {RECORDS_TIMEOUT:?}")),
        }
    }
}

impl NodeDirectory for Cluster {
    /// Whether the Node object exists in the cache (`NotReady` nodes exist: their pods may
    /// still be writing).
    fn exists(&self, node: &str) -> bool {
        self.nodes.get(&ObjectRef::new(node)).is_some()
    }

    fn live(&self) -> Vec<String> {
        self.nodes.state().iter().filter_map(|n| n.metadata.name.clone()).collect()
    }

    /// From the `VolumeAttachment` cache, through the volume's PV.
    fn held(&self, volume: &str, node: &str) -> Held {
        match self.pv_for(volume).and_then(|pv| pv.metadata.name.clone()) {
            Some(pv) => self.attachments.held(&pv, node),
            None => Held::Unknown,
        }
    }

    /// The `VolumeAttachment` cache follows a watch, so it may lag.
    fn held_may_lag(&self) -> bool {
        true
    }

    fn records_now(&self, volume: &str) -> Records {
        self.attachments_now(volume)
    }
}
