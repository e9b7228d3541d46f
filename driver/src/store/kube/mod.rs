//! The cluster store: each volume's record and applied fence as one `TetherVolume` object in the
//! Kubernetes API server, and the controller term as the `TetherTerm` singleton
//! (`resource.rs`), so that replicas on any node share nothing but the API server.
//!
//! Every change is one conditional write: a replace carrying the resourceVersion it was decided
//! on, or a create. The API server answers once etcd has it, so the change is durable before the
//! CSI reply. The rules hold across processes and nodes without a lock because each is checked
//! against the version the write replaces: a fence is applied only above the stored one
//! (`Fence::check_supersedes`), and a writer whose term is below the term of the object's last
//! writer is refused with [`StoreError::TermSuperseded`], also after a conflict made it re-read.
//! A node plugin opens the store read-only ([`Role::Node`]): it loads nothing, takes no term,
//! never re-fences, and reads each volume at the time of the call (a quorum GET).
//!
//! The volumes' data stays on the local disk under the data directory, as in the embedded store.
//!
//! The trait is synchronous (its callers run on blocking threads, or at start-up); the store runs
//! its requests on a small runtime of its own, with its own client, so a call never blocks the
//! runtime that serves CSI and never depends on it.

pub mod migrate;
pub mod resource;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;
use kube::api::{DeleteParams, ListParams, ObjectMeta, PostParams, Preconditions};
use kube::Api;
use tether_core::{Fence, VolumeEntry, VolumeFence};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use self::resource::{
    object_name, EngineRecord, FenceRecord, TetherTerm, TetherTermSpec, TetherVolume, TetherVolumeSpec, TERM_OBJECT,
};
use super::{data, StoreError, StoredVolume, VolumeRead, VolumeStore};
use crate::k8s::{self, client::ClientError, client::Sent, ApiRate};
use crate::volume::VolumeMeta;

/// How often a write re-reads and retries after a conflict before it gives up (UNAVAILABLE).
const MAX_ATTEMPTS: u32 = 16;
/// How many objects a re-fence writes at once.
pub const REFENCE_CONCURRENCY: usize = 64;

/// What went wrong talking to the API server, kept whole.
#[derive(Debug, thiserror::Error)]
pub enum KubeFailure {
    #[error(transparent)]
    Api(#[from] kube::Error),
    #[error("no answer from the API server within {0:?}")]
    TimedOut(Duration),
    #[error("the object does not exist")]
    Missing,
    #[error("other writers changed the object {0} times in a row (each attempt re-read it); retry")]
    Conflicts(u32),
    #[error("a node plugin's store is read-only")]
    ReadOnly,
    #[error("the store's runtime stopped")]
    Stopped,
    #[error("the client's rate: {0}")]
    Rate(#[from] k8s::client::RateError),
}

impl KubeFailure {
    /// Unreachable, too slow, overloaded or busy: worth retrying. A refusal (forbidden,
    /// invalid, missing) is not.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Api(kube::Error::Api(status)) => status.code == 429 || status.code >= 500,
            Self::Api(_) | Self::TimedOut(_) | Self::Conflicts(_) | Self::Stopped => true,
            Self::Missing | Self::ReadOnly | Self::Rate(_) => false,
        }
    }
}

/// What a process does with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Loads every volume, takes a term, writes.
    Controller,
    /// Reads one volume at a time, writes nothing.
    Node,
}

/// The cluster store. See the module documentation.
pub struct KubeStore {
    shared: Arc<Shared>,
    runtime: Runtime,
    data: PathBuf,
    capacity: u64,
    role: Role,
}

/// What the store's requests share.
struct Shared {
    volumes: Api<TetherVolume>,
    terms: Api<TetherTerm>,
    /// The term this process writes at (0 until `next_term`).
    term: AtomicU64,
    /// Each volume's object as last read or written: the precondition of the next write, which
    /// the API server refuses (409) if anything else wrote the object since.
    known: DashMap<String, TetherVolume>,
    timeout: Duration,
    /// Requests the client sent.
    sent: Arc<Sent>,
}

impl std::fmt::Debug for KubeStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeStore")
            .field("role", &self.role)
            .field("term", &self.shared.term.load(Ordering::Acquire))
            .field("data", &self.data)
            .finish_non_exhaustive()
    }
}

/// The store's own runtime; shut down without waiting, so it may be dropped anywhere.
struct Runtime(Option<tokio::runtime::Runtime>);

impl Runtime {
    /// Runs `work` on the store's runtime and waits for it on this thread.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let rt = self.0.as_ref().expect("the runtime lives as long as the store");
        rt.spawn(async move {
            let _ = tx.send(work.await);
        });
        rx.recv().map_err(|_| kube_error("run", "the cluster store", KubeFailure::Stopped))?
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

fn kube_error(op: &'static str, object: &str, source: KubeFailure) -> StoreError {
    StoreError::Kube { op, object: object.to_owned(), source: Box::new(source) }
}

/// How an object is named in errors: `tethervolumes.tether.io/<name>`.
fn volume_object(name: &str) -> String {
    format!("tethervolumes.tether.io/{name}")
}

const TERM_OBJECT_PATH: &str = "tetherterms.tether.io/controller";

/// One API call, bounded in time, its error named.
async fn call<T>(
    op: &'static str,
    object: &str,
    timeout: Duration,
    request: impl Future<Output = Result<T, kube::Error>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result.map_err(|e| kube_error(op, object, e.into())),
        Err(_) => Err(kube_error(op, object, KubeFailure::TimedOut(timeout))),
    }
}

/// A 409: the version written on changed (Conflict), or the object to create exists
/// (`AlreadyExists`).
fn is_conflict(e: &StoreError) -> bool {
    api_code(e) == Some(409)
}

/// The HTTP code of the API server's refusal, if `e` is one.
fn api_code(e: &StoreError) -> Option<u16> {
    match e {
        StoreError::Kube { source, .. } => match &**source {
            KubeFailure::Api(kube::Error::Api(s)) => Some(s.code),
            _ => None,
        },
        _ => None,
    }
}

impl Shared {
    fn term(&self) -> u64 {
        self.term.load(Ordering::Acquire)
    }

    /// The object of volume `id` now (a quorum read), if any.
    async fn get(&self, id: &str) -> Result<Option<TetherVolume>, StoreError> {
        let name = object_name(id);
        call("read", &volume_object(&name), self.timeout, self.volumes.get_opt(&name)).await
    }

    /// Refuses an object this process may not build on: one that holds no valid volume `id`
    /// ([`decode_object`]), or that a newer term wrote.
    fn check(&self, id: &str, object: &TetherVolume) -> Result<(StoredVolume, Option<Fence>), StoreError> {
        let decoded = decode_object(id, object)?;
        let ours = self.term();
        let found = object.spec.term;
        if found > ours {
            let object = volume_object(object.metadata.name.as_deref().unwrap_or_default());
            return Err(StoreError::TermSuperseded { object, ours, found });
        }
        Ok(decoded)
    }

    /// One conditional write of volume `id`'s object: `change` decides on the version read
    /// (the one last known, else a fresh read), and the replace carries that version. On a
    /// conflict, reads again, decides again (the term and fence rules included), and retries.
    /// A change that changes nothing is acknowledged without a write once confirmed on a fresh read.
    ///
    /// A conflict with a writer of an earlier term is [`StoreError::ChangedAfterRead`]: an old
    /// leader's write landed after this process read the object, so the engine state this
    /// process decided on is stale, and merging onto it could admit a second writer.
    async fn update(
        &self,
        id: &str,
        change: impl Fn(&str, &mut TetherVolumeSpec) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        let name = object_name(id);
        let path = volume_object(&name);
        let mut known = self.known.get(id).map(|o| o.clone());
        let mut conflicted = false;
        for _ in 0..MAX_ATTEMPTS {
            let fresh = known.is_none();
            let mut object = match known.take() {
                Some(o) => o,
                None => self.get(id).await?.ok_or_else(|| kube_error("update", &path, KubeFailure::Missing))?,
            };
            self.check(id, &object)?;
            if conflicted && object.spec.term < self.term() {
                let (ours, found) = (self.term(), object.spec.term);
                return Err(StoreError::ChangedAfterRead { object: path, ours, found });
            }
            let before = object.spec.clone();
            change(id, &mut object.spec)?;
            object.spec.term = self.term();
            if object.spec == before {
                if fresh {
                    self.known.insert(id.to_owned(), object);
                    return Ok(());
                }
                continue;
            }
            strip_managed_fields(&mut object);
            match call("replace", &path, self.timeout, self.volumes.replace(&name, &PostParams::default(), &object))
                .await
            {
                Ok(written) => {
                    self.known.insert(id.to_owned(), written);
                    return Ok(());
                }
                Err(e) => {
                    self.known.remove(id);
                    if !is_conflict(&e) {
                        return Err(e);
                    }
                    conflicted = true;
                }
            }
        }
        Err(kube_error("update", &path, KubeFailure::Conflicts(MAX_ATTEMPTS)))
    }

    /// Creates volume `meta`'s object; if it exists (a create retried after a lost reply),
    /// records `meta` there as a save without engine state would.
    async fn create(&self, meta: VolumeMeta) -> Result<(), StoreError> {
        let spec = TetherVolumeSpec {
            volume_id: meta.id.clone(),
            term: self.term(),
            meta: meta.clone(),
            engine: None,
            fence: None,
        };
        match self.create_object(spec).await {
            Err(e) if is_conflict(&e) => {
                self.update(&meta.id.clone(), move |_, spec| {
                    spec.meta = meta.clone();
                    spec.engine = None;
                    Ok(())
                })
                .await
            }
            other => other,
        }
    }

    /// Record, engine state and fence of volume `meta.id` in one conditional write: a replace of
    /// its object, or its create when there is none yet (a proxied volume is first recorded at
    /// its first publish; Tether never saw its `CreateVolume`). A create that meets an object made
    /// meanwhile falls back to the replace, rules checked on what it found.
    async fn save(
        &self,
        meta: VolumeMeta,
        engine: Option<EngineRecord>,
        fence: Option<Fence>,
    ) -> Result<(), StoreError> {
        let (id, first) = (meta.id.clone(), meta.clone());
        let change = move |id: &str, spec: &mut TetherVolumeSpec| {
            spec.meta = meta.clone();
            spec.engine.clone_from(&engine);
            fence.as_ref().map_or(Ok(()), |f| apply_rule(id, spec, f))
        };
        // A fresh read is kept for the replace below, so that it does not read the object again.
        let found = self.known.contains_key(&id)
            || match self.get(&id).await? {
                Some(object) => {
                    self.known.insert(id.clone(), object);
                    true
                }
                None => false,
            };
        if !found {
            let mut spec =
                TetherVolumeSpec { volume_id: id.clone(), term: self.term(), meta: first, engine: None, fence: None };
            change(&id, &mut spec)?;
            match self.create_object(spec).await {
                Err(e) if is_conflict(&e) => {}
                other => return other,
            }
        }
        self.update(&id, change).await
    }

    /// Creates the object `spec` describes; a 409 if it exists.
    async fn create_object(&self, spec: TetherVolumeSpec) -> Result<(), StoreError> {
        let name = object_name(&spec.volume_id);
        let id = spec.volume_id.clone();
        let object = TetherVolume { metadata: ObjectMeta { name: Some(name.clone()), ..ObjectMeta::default() }, spec };
        let params = PostParams::default();
        let written =
            call("create", &volume_object(&name), self.timeout, self.volumes.create(&params, &object)).await?;
        self.known.insert(id, written);
        Ok(())
    }

    /// Deletes volume `id`'s object, on the version read (term rule included); gone is done.
    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        let name = object_name(id);
        let path = volume_object(&name);
        for _ in 0..MAX_ATTEMPTS {
            self.known.remove(id);
            let Some(object) = self.get(id).await? else { return Ok(()) };
            self.check(id, &object)?;
            let preconditions = Preconditions { resource_version: object.metadata.resource_version.clone(), uid: None };
            let params = DeleteParams { preconditions: Some(preconditions), ..DeleteParams::default() };
            match call("delete", &path, self.timeout, self.volumes.delete(&name, &params)).await {
                Ok(_) => return Ok(()),
                Err(e) if api_code(&e) == Some(404) => return Ok(()),
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(kube_error("delete", &path, KubeFailure::Conflicts(MAX_ATTEMPTS)))
    }

    /// Every volume's object, decoded and checked ([`decode_object`]).
    async fn load(&self) -> Result<Vec<StoredVolume>, StoreError> {
        let list =
            call("list", "tethervolumes.tether.io", self.timeout, self.volumes.list(&ListParams::default())).await?;
        let mut volumes = Vec::with_capacity(list.items.len());
        for object in list.items {
            let id = object.spec.volume_id.clone();
            // A read: the term rule binds writers, and a starting leader loads before it has a term.
            let (stored, _) = decode_object(&id, &object)?;
            self.known.insert(id, object);
            volumes.push(stored);
        }
        Ok(volumes)
    }

    /// Raises the `TetherTerm` singleton to above what it held and at least `at_least`, by a
    /// conditional write (create when there is none), and writes at that term from now on.
    async fn next_term(&self, at_least: u64) -> Result<u64, StoreError> {
        let params = PostParams::default();
        for _ in 0..MAX_ATTEMPTS {
            let current = call("read", TERM_OBJECT_PATH, self.timeout, self.terms.get_opt(TERM_OBJECT)).await?;
            let stored = current.as_ref().map_or(0, |t| t.spec.term);
            let term = stored.saturating_add(1).max(at_least);
            let written = if let Some(mut object) = current {
                object.spec.term = term;
                call("replace", TERM_OBJECT_PATH, self.timeout, self.terms.replace(TERM_OBJECT, &params, &object)).await
            } else {
                let object = TetherTerm::new(TERM_OBJECT, TetherTermSpec { term });
                call("create", TERM_OBJECT_PATH, self.timeout, self.terms.create(&params, &object)).await
            };
            match written {
                Ok(_) => {
                    self.term.fetch_max(term, Ordering::AcqRel);
                    return Ok(term);
                }
                Err(e) if is_conflict(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Err(kube_error("update", TERM_OBJECT_PATH, KubeFailure::Conflicts(MAX_ATTEMPTS)))
    }
}

/// Asks the API server to keep no `managedFields` on the object (a list of one empty entry
/// clears them, per the Kubernetes field-management documentation). Only Tether writes these
/// objects, so server-side apply's record of who owns which field serves no one, and keeping
/// it up to date is much of what an update of a custom resource costs the API server
/// (benches/README.md, "The cluster store").
fn strip_managed_fields(object: &mut TetherVolume) {
    object.metadata.managed_fields = Some(vec![ManagedFieldsEntry::default()]);
}

/// The fence rule on the object: the same fence again changes nothing; an older or equal
/// other one is refused.
fn apply_rule(id: &str, spec: &mut TetherVolumeSpec, fence: &Fence) -> Result<(), StoreError> {
    let record = FenceRecord::from(fence);
    if spec.fence.as_ref() == Some(&record) {
        return Ok(());
    }
    fence.check_supersedes(id, spec.fence.as_ref().map(|f| f.epoch)).map_err(StoreError::Fence)?;
    spec.fence = Some(record);
    Ok(())
}

/// The re-fence of one volume: the fence rule, except that a volume this process wrote since
/// at its own term with a newer fence (a call's write beside the background re-fence) is
/// re-fenced already and left as it is.
fn refence_rule(id: &str, spec: &mut TetherVolumeSpec, fence: &Fence, ours: u64) -> Result<(), StoreError> {
    let newer = spec.fence.as_ref().is_some_and(|f| f.epoch >= fence.epoch);
    if spec.term == ours && newer {
        return Ok(());
    }
    apply_rule(id, spec, fence)
}

impl KubeStore {
    /// Opens the cluster store through `config`, keeping volumes' data under `root/data`.
    /// Each API call gives up after `timeout`. Makes no request yet. Its client sends at most
    /// [`ApiRate::DEFAULT`]; see [`KubeStore::open_at_rate`].
    pub fn open(
        config: kube::Config,
        root: &Path,
        capacity: u64,
        role: Role,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::open_at_rate(config, root, capacity, role, timeout, ApiRate::DEFAULT)
    }

    /// [`KubeStore::open`] with a client limited to `rate` (`--kube-api-qps`, `--kube-api-burst`).
    pub fn open_at_rate(
        config: kube::Config,
        root: &Path,
        capacity: u64,
        role: Role,
        timeout: Duration,
        rate: ApiRate,
    ) -> Result<Self, StoreError> {
        let data = root.join("data");
        std::fs::create_dir_all(&data).map_err(super::io_error("create directory", &data))?;
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tether-kube-store")
            .enable_all()
            .build()
            .map_err(super::io_error("start the runtime of", &data))?;
        let runtime = Runtime(Some(rt));
        // The client's connection pool runs on the runtime it is made on: the store's.
        let (client, sent) = runtime.run(async move {
            k8s::client(config, rate).map_err(|e| match e {
                ClientError::Kube(e) => kube_error("connect to", "the API server", e.into()),
                ClientError::Rate(message) => kube_error("connect to", "the API server", KubeFailure::Rate(message)),
            })
        })?;
        let shared = Shared {
            volumes: Api::all(client.clone()),
            terms: Api::all(client),
            term: AtomicU64::new(0),
            known: DashMap::new(),
            timeout,
            sent,
        };
        Ok(Self { shared: Arc::new(shared), runtime, data, capacity, role })
    }

    /// How many requests this store has sent to the API server.
    pub fn requests_sent(&self) -> u64 {
        self.shared.sent.get()
    }

    /// The term this process writes at (0 before [`VolumeStore::next_term`]).
    pub fn term(&self) -> u64 {
        self.shared.term()
    }

    /// Writes at `term` from now on, as a process that took it would; never lowers the term.
    /// For tests that need several writers at one term (one leader never has company).
    #[doc(hidden)]
    pub fn set_term(&self, term: u64) {
        self.shared.term.fetch_max(term, Ordering::AcqRel);
    }

    fn writable(&self, op: &'static str, id: &str) -> Result<Arc<Shared>, StoreError> {
        match self.role {
            Role::Controller => Ok(Arc::clone(&self.shared)),
            Role::Node => Err(kube_error(op, &volume_object(&object_name(id)), KubeFailure::ReadOnly)),
        }
    }

    /// Volume `id`'s object as the API server holds it now, checked.
    fn read(&self, id: &str) -> Result<Option<(StoredVolume, Option<Fence>)>, StoreError> {
        let (shared, id) = (Arc::clone(&self.shared), id.to_owned());
        self.runtime.run(async move {
            let object = shared.get(&id).await?;
            object.map(|o| decode_object(&id, &o)).transpose()
        })
    }
}

/// An object that holds valid volume `id` under its own name, decoded; for a reader, which has
/// no term to defend (the term rule binds writers).
fn decode_object(id: &str, object: &TetherVolume) -> Result<(StoredVolume, Option<Fence>), StoreError> {
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let bad = |message| StoreError::BadObject { object: volume_object(name), message };
    if name != object_name(&object.spec.volume_id) {
        return Err(bad(format!("its name is not the one of spec.volumeId {:?}", object.spec.volume_id)));
    }
    object.spec.decode(id).map_err(bad)
}

impl KubeStore {
    /// Creates volume `stored`'s object whole (record, engine state, `fence`) at this store's
    /// term, for moving a store here; refuses, naming the object, one that exists already.
    pub fn import(&self, stored: &StoredVolume, fence: Option<&Fence>) -> Result<(), StoreError> {
        let shared = self.writable("import", &stored.meta.id)?;
        let spec = TetherVolumeSpec {
            volume_id: stored.meta.id.clone(),
            term: shared.term(),
            meta: stored.meta.clone(),
            engine: stored.engine.as_ref().map(EngineRecord::from),
            fence: fence.map(FenceRecord::from),
        };
        self.runtime.run(async move { shared.create_object(spec).await })
    }
}

impl VolumeStore for KubeStore {
    /// Every volume (a node plugin loads none: it reads each at the time of the call).
    fn load(&self) -> Result<Vec<StoredVolume>, StoreError> {
        if self.role == Role::Node {
            return Ok(Vec::new());
        }
        let shared = Arc::clone(&self.shared);
        self.runtime.run(async move { shared.load().await })
    }

    fn create(&self, meta: &VolumeMeta) -> Result<(), StoreError> {
        let shared = self.writable("create", &meta.id)?;
        data::provision(&self.data, meta)?;
        let meta = meta.clone();
        self.runtime.run(async move { shared.create(meta).await })
    }

    /// Record and fence in one conditional write: a refused fence writes nothing.
    fn save(&self, meta: &VolumeMeta, engine: Option<&VolumeEntry>, fence: Option<&Fence>) -> Result<(), StoreError> {
        let shared = self.writable("update", &meta.id)?;
        let (meta, engine, fence) = (meta.clone(), engine.map(EngineRecord::from), fence.cloned());
        self.runtime.run(async move { shared.save(meta, engine, fence).await })
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        let shared = self.writable("delete", id)?;
        let owned = id.to_owned();
        self.runtime.run(async move { shared.delete(&owned).await })?;
        data::remove(&self.data, id)
    }

    fn source(&self, id: &str) -> PathBuf {
        self.data.join(id)
    }

    fn record_path(&self, id: &str) -> PathBuf {
        PathBuf::from(volume_object(&object_name(id)))
    }

    fn capacity_bytes(&self) -> u64 {
        self.capacity
    }

    fn apply_fence(&self, id: &str, fence: &Fence) -> Result<(), StoreError> {
        let shared = self.writable("apply a fence to", id)?;
        let (id, fence) = (id.to_owned(), fence.clone());
        self.runtime.run(async move { shared.update(&id, move |id, spec| apply_rule(id, spec, &fence)).await })
    }

    /// Each fence its own conditional write, [`REFENCE_CONCURRENCY`] at a time; the first
    /// error stops the batch (writes in flight finish, none starts).
    fn apply_fences(&self, fences: &[VolumeFence]) -> Result<(), StoreError> {
        if fences.is_empty() {
            return Ok(());
        }
        let shared = self.writable("apply a fence to", &fences[0].volume)?;
        let (fences, ours) = (fences.to_vec(), shared.term());
        self.runtime.run(async move {
            let permits = Arc::new(Semaphore::new(REFENCE_CONCURRENCY));
            let mut tasks = JoinSet::new();
            let mut outcome = Ok(());
            for vf in fences {
                let permit = Arc::clone(&permits).acquire_owned().await.expect("the semaphore is never closed");
                while let Some(done) = tasks.try_join_next() {
                    outcome = outcome.and(done.expect("a fence write does not panic"));
                }
                if outcome.is_err() {
                    break;
                }
                let shared = Arc::clone(&shared);
                tasks.spawn(async move {
                    let result = shared.update(&vf.volume, |id, spec| refence_rule(id, spec, &vf.fence, ours)).await;
                    drop(permit);
                    result
                });
            }
            while let Some(done) = tasks.join_next().await {
                outcome = outcome.and(done.expect("a fence write does not panic"));
            }
            outcome
        })
    }

    fn applied_fence(&self, id: &str) -> Result<Option<Fence>, StoreError> {
        Ok(self.read(id)?.and_then(|(_, fence)| fence))
    }

    /// Every re-fence is a write to the API server: 10 000 volumes take tens of seconds.
    fn refences_in_background(&self) -> bool {
        true
    }

    /// A node plugin takes no term (it never writes): `at_least` as it is.
    fn next_term(&self, at_least: u64) -> Result<u64, StoreError> {
        if self.role == Role::Node {
            return Ok(at_least);
        }
        let shared = Arc::clone(&self.shared);
        self.runtime.run(async move { shared.next_term(at_least).await })
    }

    /// One quorum GET: the record and the fence are one object.
    fn read_volume(&self, id: &str) -> Option<Result<Option<VolumeRead>, StoreError>> {
        Some(self.read(id).map(|found| found.map(|(stored, fence)| (stored.meta, fence))))
    }
}
