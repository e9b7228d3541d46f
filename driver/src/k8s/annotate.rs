//! Informational PV annotations: the nodes a volume is attached to and its epoch, written in
//! the background with retry on conflict, so no CSI call waits for the API server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::json;
use tether_core::Engine;
use tokio::sync::Notify;

use super::cluster::{volume_handle, Cluster};
use crate::driver::ChangeListener;

/// The nodes a volume is attached to, comma-separated; absent when it is attached nowhere.
pub const NODES_ANNOTATION: &str = "tether.io/attached-nodes";
/// The volume's epoch; kept after detach, so a rebuild never hands out an old token again.
pub const EPOCH_ANNOTATION: &str = "tether.io/epoch";
/// Writes of one PV tried before it waits for the next round.
const ATTEMPTS: usize = 5;
/// Wait after a round that left PVs unwritten (the API server is away): from 1 s, doubling to 30 s.
const RETRY: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(30));

/// Volumes whose annotations may be stale; [`Annotator::run`] writes them.
#[derive(Debug, Default)]
pub struct Annotator {
    dirty: Mutex<BTreeSet<String>>,
    /// Set after each reconcile pass: check every PV of the driver, not just the dirty ones.
    sweep: AtomicBool,
    wake: Notify,
}

impl ChangeListener for Annotator {
    fn changed(&self, volume: &str) {
        self.dirty.lock().unwrap_or_else(PoisonError::into_inner).insert(volume.to_owned());
        self.wake.notify_one();
    }

    fn reconciled(&self) {
        self.sweep.store(true, Ordering::Release);
        self.wake.notify_one();
    }
}

/// The annotations `volume` should carry now: nodes (or none) and epoch.
fn wanted(engine: &Engine, volume: &str) -> (Option<String>, Option<String>) {
    let attachment = engine.get(volume).ok().flatten();
    let nodes = attachment.map(|a| a.nodes.iter().map(ToString::to_string).collect::<Vec<_>>().join(","));
    let epoch = engine.epoch(volume).ok().filter(|e| *e > 0).map(|e| e.to_string());
    (nodes, epoch)
}

fn current(pv: &PersistentVolume) -> (Option<String>, Option<String>) {
    let a: Option<&BTreeMap<String, String>> = pv.metadata.annotations.as_ref();
    (a.and_then(|a| a.get(NODES_ANNOTATION).cloned()), a.and_then(|a| a.get(EPOCH_ANNOTATION).cloned()))
}

impl Annotator {
    fn take(&self, cluster: &Cluster) -> BTreeSet<String> {
        let mut volumes = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(PoisonError::into_inner));
        // A sweep checks every PV of the driver: it removes annotations no attachment backs and
        // writes those a PV created after its volume's attach never got. Only PVs that differ
        // from the engine cost an API call.
        if self.sweep.swap(false, Ordering::AcqRel) {
            let pvs = cluster.our_pvs();
            volumes.extend(pvs.iter().filter_map(|pv| volume_handle(pv, cluster.driver_name()).map(str::to_owned)));
        }
        volumes
    }

    /// Writes stale annotations until the task is dropped; a PV the API server would not take
    /// stays dirty and is tried again after a backoff.
    pub async fn run(self: Arc<Self>, client: Client, cluster: Arc<Cluster>, engine: Arc<Engine>) {
        let api: Api<PersistentVolume> = Api::all(client);
        let mut backoff = RETRY.0;
        loop {
            self.wake.notified().await;
            let mut failed = Vec::new();
            for volume in self.take(&cluster) {
                if let Err(e) = write(&api, &cluster, &engine, &volume).await {
                    tracing::debug!(volume = %volume, error = %e, "PV annotation not written; will retry");
                    failed.push(volume);
                }
            }
            if failed.is_empty() {
                backoff = RETRY.0;
                continue;
            }
            self.dirty.lock().unwrap_or_else(PoisonError::into_inner).extend(failed);
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY.1);
            self.wake.notify_one();
        }
    }
}

/// Why a PV's annotations were not written this round.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("PV {0} kept changing: {ATTEMPTS} conditional writes conflicted")]
    KeptChanging(String),
}

/// Brings one volume's PV annotations up to date: a merge patch conditional on the PV's
/// resourceVersion, read again and retried when someone else wrote the PV in between.
async fn write(
    api: &Api<PersistentVolume>,
    cluster: &Cluster,
    engine: &Engine,
    volume: &str,
) -> Result<(), WriteError> {
    let Some(mut pv) = cluster.pv_for(volume).map(|pv| (*pv).clone()) else { return Ok(()) };
    let name = pv.metadata.name.clone().unwrap_or_default();
    for _ in 0..ATTEMPTS {
        let want = wanted(engine, volume);
        if current(&pv) == want {
            return Ok(());
        }
        let patch = json!({ "metadata": {
            "resourceVersion": pv.metadata.resource_version,
            "annotations": { NODES_ANNOTATION: want.0, EPOCH_ANNOTATION: want.1 },
        }});
        match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(s)) if s.code == 409 => pv = api.get(&name).await?,
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
    Err(WriteError::KeptChanging(name))
}
