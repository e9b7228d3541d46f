//! What the tiers driven by the real Kubernetes control plane share (`k8s_tier.rs`, where the
//! tests play the kubelet, and `node_tier.rs`, on real kubelets): the stack of tests/k8s/stack.sh
//! seen as its admin, the objects a scenario makes (namespaces, claims, Pods), and waits for what
//! the control plane shows (bindings, attachments, events, the leader's metrics), each polled
//! with a deadline.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    Event, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, ServiceAccount,
};
use k8s_openapi::api::storage::v1::{CSINode, VolumeAttachment};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use tether_driver::k8s::annotate::NODES_ANNOTATION;
use tokio_stream::StreamExt;

use crate::apiserver::{self, env};

/// How long the control plane may take to show a state before the test fails. Generous: the
/// sidecars retry with backoff and the machine is shared.
pub const DEADLINE: Duration = Duration::from_mins(2);
/// How long every Pod of an attach storm may take to get its volume after a failover: the
/// attacher's longest retry interval (5 min) and a margin.
pub const STORM_DEADLINE: Duration = Duration::from_mins(7);
pub const CLAIM: &str = "data";
pub const NAMESPACE: &str = "tether";
pub const LEASE: &str = "tether-csi-controller";

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn until<T, F: Future<Output = Option<T>>>(what: &str, check: impl FnMut() -> F) -> T {
    apiserver::until_within(DEADLINE, what, check).await
}

pub fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// The value of one series (`name{labels}` exactly as exposed) in a Prometheus text page; 0 when
/// absent. Every series read here is a count.
pub fn sample(page: &str, series: &str) -> i64 {
    page.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0)
}

/// The stack of tests/k8s/stack.sh, seen as its admin.
pub struct Tier {
    pub admin: Client,
    pub driver: String,
    /// Lease identity and metrics address of each `tether-csi` replica.
    pub replicas: Vec<(String, String)>,
    pub grace: Duration,
}

impl Tier {
    pub async fn new() -> Self {
        let config = tether_driver::k8s::config(Some(Path::new(&env("KUBECONFIG")))).await.unwrap().unwrap();
        let replicas = env("TETHER_TIER_REPLICAS")
            .split_whitespace()
            .map(|r| {
                let (name, address) = r.split_once('=').unwrap();
                (name.to_owned(), address.to_owned())
            })
            .collect();
        Self {
            admin: Client::try_from(config).unwrap(),
            driver: env("TETHER_TIER_DRIVER"),
            replicas,
            grace: Duration::from_secs(env("TETHER_TIER_GRACE_SECONDS").parse().unwrap()),
        }
    }

    pub fn all<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::ClusterResourceScope>,
        K::DynamicType: Default,
    {
        Api::all(self.admin.clone())
    }

    pub fn namespaced<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = kube::core::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.admin.clone(), namespace)
    }

    /// A namespace and its `default` `ServiceAccount` (Pods need it; the controller that makes
    /// it does not run here).
    pub async fn namespace(&self, name: &str) {
        let ns: Namespace = from_json(json!({ "metadata": { "name": name } }));
        self.all::<Namespace>().create(&PostParams::default(), &ns).await.unwrap();
        let sa: ServiceAccount = from_json(json!({ "metadata": { "name": "default" } }));
        self.namespaced::<ServiceAccount>(name).create(&PostParams::default(), &sa).await.unwrap();
    }

    /// A Ready Node whose volumes the attach/detach controller manages, and its `CSINode` naming
    /// the driver with the node's name as its CSI node id (what node-driver-registrar would
    /// register).
    pub async fn node(&self, name: &str) {
        let node: Node = from_json(json!({
            "metadata": {
                "name": name,
                "annotations": { "volumes.kubernetes.io/controller-managed-attach-detach": "true" },
            },
        }));
        self.all::<Node>().create(&PostParams::default(), &node).await.unwrap();
        self.ready(name, "True").await;
        let csinode: CSINode = from_json(json!({
            "metadata": { "name": name },
            "spec": { "drivers": [{ "name": self.driver, "nodeID": name }] },
        }));
        self.all::<CSINode>().create(&PostParams::default(), &csinode).await.unwrap();
    }

    /// Sets the Node's `Ready` condition, as its kubelet (or its absence) would.
    pub async fn ready(&self, name: &str, status: &str) {
        let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
        let patch = json!({ "status": { "conditions": [{
            "type": "Ready", "status": status, "reason": "Tier", "lastHeartbeatTime": now, "lastTransitionTime": now,
        }] } });
        self.all::<Node>().patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch)).await.unwrap();
    }

    /// Reports `volumes` (unique volume names) in use on the node, as its kubelet does while
    /// they are mounted; the attach/detach controller does not detach a volume in use. It reads
    /// volumesInUse on each update of the Node (until one comes, it takes an attached volume
    /// for mounted), so the report also touches the Node, as a kubelet's heartbeat would, in
    /// case the list did not change.
    pub async fn in_use(&self, node: &str, volumes: &[String]) {
        let nodes = self.all::<Node>();
        let patch = json!({ "status": { "volumesInUse": volumes } });
        nodes.patch_status(node, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
        let nonce = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().as_nanos().to_string();
        let touch = json!({ "metadata": { "annotations": { "tier.tether.io/kubelet-report": nonce } } });
        nodes.patch(node, &PatchParams::default(), &Patch::Merge(&touch)).await.unwrap();
    }

    /// The claim `data` of the `StorageClass` `tether` (RWO filesystem, or RWX block), with the
    /// node a scheduler would pick for its first consumer.
    pub async fn claim(&self, namespace: &str, rwx_block: bool, node: &str) {
        self.claim_named(namespace, CLAIM, "1Gi", rwx_block, node).await;
    }

    /// The claim `claim` of `size` of the `StorageClass` `tether` (RWO filesystem, or RWX
    /// block), with the node a scheduler would pick for its first consumer.
    pub async fn claim_named(&self, namespace: &str, claim: &str, size: &str, rwx_block: bool, node: &str) {
        let (mode, volume_mode) = if rwx_block { ("ReadWriteMany", "Block") } else { ("ReadWriteOnce", "Filesystem") };
        let pvc: PersistentVolumeClaim = from_json(json!({
            "metadata": {
                "name": claim,
                "annotations": { "volume.kubernetes.io/selected-node": node },
            },
            "spec": {
                "storageClassName": "tether",
                "accessModes": [mode],
                "volumeMode": volume_mode,
                "resources": { "requests": { "storage": size } },
            },
        }));
        self.namespaced::<PersistentVolumeClaim>(namespace).create(&PostParams::default(), &pvc).await.unwrap();
    }

    /// Waits for the claim `data` to be bound; returns its PV.
    pub async fn bound(&self, namespace: &str) -> PersistentVolume {
        self.bound_named(namespace, CLAIM).await
    }

    /// Waits for the claim `claim` to be bound; returns its PV.
    pub async fn bound_named(&self, namespace: &str, claim: &str) -> PersistentVolume {
        let claims = self.namespaced::<PersistentVolumeClaim>(namespace);
        let pv_name = until(&format!("claim {namespace}/{claim} bound"), || async {
            let pvc = claims.get(claim).await.ok()?;
            let bound = pvc.status.as_ref()?.phase.as_deref() == Some("Bound");
            bound.then(|| pvc.spec?.volume_name).flatten()
        })
        .await;
        self.all::<PersistentVolume>().get(&pv_name).await.unwrap()
    }

    /// A Pod on `node` using the claim (as a device when `block`).
    pub async fn pod(&self, namespace: &str, name: &str, node: &str, block: bool) {
        let mut container = json!({ "name": "app", "image": "registry.k8s.io/pause:3.10" });
        use_volume(&mut container, block);
        let pod: Pod = from_json(json!({
            "metadata": { "name": name },
            "spec": {
                "nodeName": node,
                "containers": [container],
                "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": CLAIM } }],
            },
        }));
        self.namespaced::<Pod>(namespace).create(&PostParams::default(), &pod).await.unwrap();
    }

    /// Deletes a Pod the way `kubectl delete` does: it stays Terminating (no kubelet confirms),
    /// which the attach/detach controller treats as terminated once no container runs.
    pub async fn delete_pod(&self, namespace: &str, name: &str) {
        self.namespaced::<Pod>(namespace).delete(name, &DeleteParams::default()).await.unwrap();
    }

    /// The `VolumeAttachments` of `pv` on `node`.
    pub async fn attachments(&self, pv: &str, node: &str) -> Vec<VolumeAttachment> {
        let all = self.all::<VolumeAttachment>().list(&ListParams::default()).await.unwrap().items;
        all.into_iter()
            .filter(|va| va.spec.node_name == node && va.spec.source.persistent_volume_name.as_deref() == Some(pv))
            .collect()
    }

    /// Waits for a `VolumeAttachment` of `pv` on `node` with `status.attached`.
    pub async fn attached(&self, pv: &str, node: &str) -> VolumeAttachment {
        until(&format!("{pv} attached to {node}"), || async {
            self.attachments(pv, node).await.into_iter().find(|va| va.status.as_ref().is_some_and(|s| s.attached))
        })
        .await
    }

    /// Waits until no `VolumeAttachment` of `pv` on `node` is left.
    pub async fn detached(&self, pv: &str, node: &str) {
        until(&format!("{pv}'s VolumeAttachment on {node} gone"), || async {
            self.attachments(pv, node).await.is_empty().then_some(())
        })
        .await;
    }

    /// The events of `reason` on the claim.
    pub async fn events(&self, namespace: &str, reason: &str) -> Vec<Event> {
        self.claim_events(namespace, CLAIM, reason).await
    }

    /// The events of `reason` on the claim named `claim`.
    pub async fn claim_events(&self, namespace: &str, claim: &str, reason: &str) -> Vec<Event> {
        let params = ListParams::default().fields(&format!("involvedObject.name={claim}"));
        let all = self.namespaced::<Event>(namespace).list(&params).await.unwrap().items;
        all.into_iter()
            .filter(|e| {
                e.reason.as_deref() == Some(reason)
                    && e.involved_object.kind.as_deref() == Some("PersistentVolumeClaim")
            })
            .collect()
    }

    /// Waits for an event of `reason` on the claim whose message contains `text`.
    pub async fn event(&self, namespace: &str, reason: &str, text: &str) -> Event {
        until(&format!("a {reason} event on {namespace}/{CLAIM} saying {text:?}"), || async {
            let events = self.events(namespace, reason).await;
            events.into_iter().find(|e| e.message.as_deref().is_some_and(|m| m.contains(text)))
        })
        .await
    }

    /// Waits until Pod `pod` is told it waits for the claim held on `holder`: the attach/detach
    /// controller's Multi-Attach event on the Pod, or Tether's `AttachmentConflict` on the claim
    /// naming the holder (when a `VolumeAttachment` for the Pod's node was made).
    pub async fn kept_out(&self, namespace: &str, pod: &str, holder: &str) {
        self.kept_out_of(namespace, pod, CLAIM, holder).await;
    }

    /// [`Tier::kept_out`] for the claim named `claim`.
    pub async fn kept_out_of(&self, namespace: &str, pod: &str, claim: &str, holder: &str) {
        let events = self.namespaced::<Event>(namespace);
        let params = ListParams::default().fields(&format!("involvedObject.name={pod}"));
        until(&format!("{namespace}/{pod} told it waits for {holder}"), || async {
            let on_pod = events.list(&params).await.unwrap().items;
            let multi = on_pod.iter().any(|e| {
                e.reason.as_deref() == Some("FailedAttachVolume")
                    && e.message.as_deref().is_some_and(|m| m.contains("Multi-Attach"))
            });
            let conflict = self.claim_events(namespace, claim, "AttachmentConflict").await;
            (multi || conflict.iter().any(|e| e.message.as_deref().is_some_and(|m| m.contains(holder)))).then_some(())
        })
        .await;
    }

    /// The replica holding the driver's Lease.
    pub async fn leader(&self) -> String {
        let leases = self.namespaced::<Lease>(NAMESPACE);
        until("a holder of the driver's Lease", || async { leases.get(LEASE).await.ok()?.spec?.holder_identity }).await
    }

    /// The `/metrics` page of the replica holding the driver's Lease.
    pub async fn metrics(&self) -> String {
        let leases = self.namespaced::<Lease>(NAMESPACE);
        until("the leader's /metrics", || async {
            let holder = leases.get(LEASE).await.ok()?.spec?.holder_identity?;
            let (_, address) = self.replicas.iter().find(|(name, _)| *name == holder)?;
            get(address, "/metrics")
        })
        .await
    }

    pub async fn pv_annotations(&self, name: &str) -> BTreeMap<String, String> {
        self.all::<PersistentVolume>().get(name).await.unwrap().metadata.annotations.unwrap_or_default()
    }

    /// Waits for the driver's `tether.io/attached-nodes` annotation on the PV to read `nodes`
    /// (`None`: removed).
    pub async fn annotated(&self, pv: &str, nodes: Option<&str>) {
        until(&format!("{pv} annotated {NODES_ANNOTATION}={nodes:?}"), || async {
            (self.pv_annotations(pv).await.get(NODES_ANNOTATION).map(String::as_str) == nodes).then_some(())
        })
        .await;
    }

    /// The unique name the attach/detach controller and the kubelet give the PV's volume.
    pub fn unique_name(&self, pv: &PersistentVolume) -> String {
        format!("kubernetes.io/csi/{}^{}", self.driver, handle(pv))
    }

    /// A claim provisioned and bound, and a Pod `app-a` using it on `node`, attached and reported
    /// in use there. Returns the PV and its `VolumeAttachment`.
    pub async fn running(&self, namespace: &str, node: &str, rwx_block: bool) -> (PersistentVolume, VolumeAttachment) {
        self.claim(namespace, rwx_block, node).await;
        let pv = self.bound(namespace).await;
        self.pod(namespace, "app-a", node, rwx_block).await;
        let va = self.attached(pv_name(&pv), node).await;
        self.recorded(&pv, node).await;
        self.in_use(node, &[self.unique_name(&pv)]).await;
        (pv, va)
    }

    /// Waits until the attach/detach controller has recorded the attach: the Node's
    /// status.volumesAttached lists the volume (the `VolumeAttachment` turns attached before that).
    pub async fn recorded(&self, pv: &PersistentVolume, node: &str) {
        let unique = self.unique_name(pv);
        until(&format!("{unique} in {node}'s volumesAttached"), || async {
            let status = self.all::<Node>().get(node).await.ok()?.status?;
            status.volumes_attached.unwrap_or_default().iter().any(|v| v.name == unique).then_some(())
        })
        .await;
    }
}

/// Gives a Pod's container the volume `data`: at /dev/data as a device when `block`, else
/// mounted at /data.
pub fn use_volume(container: &mut serde_json::Value, block: bool) {
    if block {
        container["volumeDevices"] = json!([{ "name": "data", "devicePath": "/dev/data" }]);
    } else {
        container["volumeMounts"] = json!([{ "name": "data", "mountPath": "/data" }]);
    }
}

pub fn pv_name(pv: &PersistentVolume) -> &str {
    pv.metadata.name.as_deref().unwrap()
}

pub fn handle(pv: &PersistentVolume) -> &str {
    &pv.spec.as_ref().unwrap().csi.as_ref().unwrap().volume_handle
}

/// GET `path` over plain HTTP/1.1; the body of a 200 answer.
pub fn get(address: &str, path: &str) -> Option<String> {
    apiserver::http_get(address, path).filter(|(status, _)| *status == 200).map(|(_, body)| body)
}

pub fn attach_total(page: &str, status: &str) -> i64 {
    sample(page, &format!("rds_csi_attachment_attach_total{{status=\"{status}\"}}"))
}

pub fn detach_total(page: &str, status: &str) -> i64 {
    sample(page, &format!("rds_csi_attachment_detach_total{{status=\"{status}\"}}"))
}

pub fn attach_error(va: &VolumeAttachment) -> Option<String> {
    va.status.as_ref()?.attach_error.as_ref()?.message.clone()
}

/// Every change of the `VolumeAttachments` of PV `pv`, watched from a task: each time two
/// nodes' records read attached at once, what they were is pushed to the returned list.
pub fn watch_for_two_attached(client: &Client, pv: &str) -> (Arc<Mutex<Vec<String>>>, tokio::task::JoinHandle<()>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let stream = watcher(Api::<VolumeAttachment>::all(client.clone()), watcher::Config::default());
    let (pv, found) = (pv.to_owned(), Arc::clone(&seen));
    let task = tokio::spawn(async move {
        let mut attached: BTreeMap<String, String> = BTreeMap::new();
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            let (va, gone) = match event {
                Ok(watcher::Event::Apply(va) | watcher::Event::InitApply(va)) => (va, false),
                Ok(watcher::Event::Delete(va)) => (va, true),
                _ => continue,
            };
            if va.spec.source.persistent_volume_name.as_deref() != Some(pv.as_str()) {
                continue;
            }
            let name = va.metadata.name.clone().unwrap_or_default();
            if !gone && va.status.as_ref().is_some_and(|s| s.attached) {
                attached.insert(name, va.spec.node_name.clone());
            } else {
                attached.remove(&name);
            }
            if attached.values().collect::<BTreeSet<_>>().len() > 1 {
                found.lock().unwrap().push(format!("watch: {attached:?}"));
            }
        }
    });
    (seen, task)
}
