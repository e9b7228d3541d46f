//! This driver's `VolumeAttachments`, cached by a watcher, and the ones seen deleted: the
//! evidence of who holds a volume that beats timers (DESIGN.md, Driver); and the same records
//! read anew from the API server, for the decisions the cache could get wrong.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::ListParams;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{watcher, WatchStreamExt};
use kube::{Api, Client};
use tokio_stream::StreamExt;

use crate::nodes::Held;

/// `(persistent volume name, node name)` of an attachment record.
type Key = (String, String);

/// The cache; [`Attachments::held`] answers from it without a call to the API server.
#[derive(Clone)]
pub struct Attachments {
    store: Store<VolumeAttachment>,
    /// Records seen deleted and not created again since (a deletion missed while the watch
    /// was down is not here: that only makes an orphan look unknown, never the reverse).
    deleted: Arc<Mutex<HashSet<Key>>>,
    /// Whether the first complete listing arrived.
    listed: Arc<AtomicBool>,
    attacher: String,
    api: Api<VolumeAttachment>,
}

impl std::fmt::Debug for Attachments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attachments")
            .field("attacher", &self.attacher)
            .field("cached", &self.store.len())
            .field("listed", &self.listed)
            .finish_non_exhaustive()
    }
}

fn key(va: &VolumeAttachment) -> Option<Key> {
    Some((va.spec.source.persistent_volume_name.clone()?, va.spec.node_name.clone()))
}

impl Attachments {
    /// Starts watching the `VolumeAttachments` whose attacher is `attacher` (the driver name);
    /// the watcher retries with backoff for as long as the returned future runs.
    pub fn watch(client: &Client, attacher: &str) -> (Self, impl Future<Output = ()> + Send + 'static) {
        let (store, writer) = reflector::store();
        let api = Api::<VolumeAttachment>::all(client.clone());
        let stream = reflector::reflector(writer, watcher(api.clone(), watcher::Config::default())).default_backoff();
        let attacher = attacher.to_owned();
        let this = Self { store, deleted: Arc::default(), listed: Arc::default(), attacher, api };
        let (deleted, listed, ours) = (Arc::clone(&this.deleted), Arc::clone(&this.listed), this.attacher.clone());
        let task = async move {
            let mut stream = pin!(stream);
            while let Some(event) = stream.next().await {
                let mine = |va: &VolumeAttachment| (va.spec.attacher == ours).then(|| key(va)).flatten();
                match event {
                    Ok(watcher::Event::Delete(va)) => {
                        if let Some(k) = mine(&va) {
                            deleted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(k);
                        }
                    }
                    Ok(watcher::Event::Apply(va) | watcher::Event::InitApply(va)) => {
                        if let Some(k) = mine(&va) {
                            deleted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&k);
                        }
                    }
                    Ok(watcher::Event::InitDone) => listed.store(true, Ordering::Release),
                    Ok(watcher::Event::Init) => {}
                    Err(e) => tracing::warn!(error = %e, "VolumeAttachment watch failed; retrying"),
                }
            }
        };
        (this, task)
    }

    /// What the records show of `node` holding the volume of PV `pv`.
    pub fn held(&self, pv: &str, node: &str) -> Held {
        if !self.listed.load(Ordering::Acquire) {
            return Held::Unknown;
        }
        let record = self
            .store
            .find(|va| va.spec.attacher == self.attacher && key(va).is_some_and(|(p, n)| p == pv && n == node));
        match record {
            Some(va) if va.status.as_ref().is_some_and(|s| s.attached) => Held::Attached,
            Some(_) => Held::Pending,
            None => {
                let key = (pv.to_owned(), node.to_owned());
                if self.deleted.lock().unwrap_or_else(std::sync::PoisonError::into_inner).contains(&key) {
                    Held::Gone
                } else {
                    Held::Unknown
                }
            }
        }
    }

    /// The nodes that have a record of this driver for PV `pv` now, in any state (attached,
    /// being attached, being deleted). A LIST without a resource version is a quorum read from
    /// etcd, never an answer from a watch cache, so it sees every record created before it.
    pub async fn nodes_now(&self, pv: &str) -> Result<BTreeSet<String>, kube::Error> {
        let list = self.api.list(&ListParams::default()).await?;
        let ours = list.items.into_iter().filter(|va| va.spec.attacher == self.attacher);
        Ok(ours.filter_map(|va| key(&va)).filter(|(p, _)| p == pv).map(|(_, node)| node).collect())
    }
}
