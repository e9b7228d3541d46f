//! The driver: the engine, the volume store and catalogue, the nodes, events and metrics,
//! wired together. RPC handlers call its synchronous operations (see `controller` and `node`).

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashSet;
use tether_core::{Clock, Config, CoreError, Engine, SnapshotError};

use crate::adopt::{AdoptReport, Observed};
use crate::catalog::Catalog;
use crate::events::{Event, EventSink};
use crate::inflight::InFlight;
use crate::metrics::Metrics;
use crate::mount::{Mounter, SystemMounts};
use crate::nodes::NodeDirectory;
use crate::persisted;
use crate::refence::{Owed, Sweep};
use crate::status::DriverError;
use crate::store::{StoreError, VolumeStore};
use crate::volume::VolumeMeta;

/// What the driver is, independent of where it listens.
#[derive(Debug, Clone)]
pub struct Settings {
    pub driver_name: String,
    /// The node this driver's Node service runs on.
    pub node_id: String,
    pub grace_period: Duration,
    pub default_migration_timeout: Duration,
    pub metrics_namespace: String,
    /// The lowest controller term this start may take: the Lease's transitions with leader
    /// election, 0 standalone. The term is also above every term the store handed out.
    pub lease_term: u64,
}

/// The parts a driver is built from; tests swap the clock, store, nodes or events.
pub struct Parts {
    pub clock: Arc<dyn Clock>,
    pub store: Arc<dyn VolumeStore>,
    pub nodes: Arc<dyn NodeDirectory>,
    pub events: Arc<dyn EventSink>,
    /// Told about every volume whose attachment changed (Kubernetes: the PV annotations).
    pub changes: Option<Arc<dyn ChangeListener>>,
    /// Whether attachment state comes from outside and must be adopted (see
    /// [`Driver::adopt`]) before any call that depends on it is served.
    pub awaits_rebuild: bool,
}

/// Learns which volumes' attachments changed; must not block.
pub trait ChangeListener: Send + Sync + 'static {
    fn changed(&self, volume: &str);
    /// A reconcile pass ran: a chance to tidy what no attachment backs any more.
    fn reconciled(&self) {}
}

/// Where the driver is in its life; calls that read or change attachments wait for `SERVING`.
pub(crate) mod phase {
    pub const REBUILDING: u8 = 0;
    pub const SERVING: u8 = 1;
    pub const SHUTTING_DOWN: u8 = 2;
}

/// Why the driver could not start. It never starts on state it could not read.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("invalid setting: {0}")]
    Settings(#[from] CoreError),
    #[error("state file {path} holds an inconsistent attachment: {source}")]
    Inconsistent { path: String, source: SnapshotError },
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
}

/// A running driver's state.
pub struct Driver {
    pub settings: Settings,
    pub engine: Arc<Engine>,
    pub metrics: Metrics,
    pub(crate) store: Arc<dyn VolumeStore>,
    pub(crate) catalog: Catalog,
    pub(crate) nodes: Arc<dyn NodeDirectory>,
    events: Arc<dyn EventSink>,
    changes: Option<Arc<dyn ChangeListener>>,
    pub(crate) inflight: InFlight,
    /// Where the Node handlers mount: the kernel, unless [`Driver::set_mounts`] said otherwise.
    pub(crate) mounts: Arc<dyn Mounter>,
    phase: Arc<AtomicU8>,
    /// Volumes that owe the store their re-fence at this term (a store that writes it in the
    /// background): the next call on one writes it before it is acknowledged.
    owed: Owed,
    /// Volumes whose last persist failed: the engine moved on but the disk did not, so the
    /// next call on them persists even if it changes nothing (an idempotent retry must not
    /// be acknowledged on state that is not durable).
    unsaved: DashSet<String>,
    /// RPCs between arrival and reply, so shutdown can wait for them and no longer.
    calls: AtomicUsize,
}

/// Counts one RPC while it is held.
#[derive(Debug)]
pub struct CallGuard<'a>(&'a AtomicUsize);

impl Drop for CallGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A dropped driver serves nothing: its background re-fence stops after the batch in flight,
/// so it never writes beside the driver that replaces it.
impl Drop for Driver {
    fn drop(&mut self) {
        self.begin_shutdown();
        if let Err(e) = self.owed.wait() {
            tracing::debug!("the re-fence had stopped: {e}");
        }
    }
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("settings", &self.settings)
            .field("volumes", &self.catalog.len())
            .field("in_flight", &self.inflight.len())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// Loads every stored volume and the engine state kept with them, then is ready to serve.
    pub fn open(settings: Settings, parts: Parts) -> Result<Self, StartupError> {
        let config = Config {
            grace_period: settings.grace_period,
            default_migration_timeout: settings.default_migration_timeout,
        };
        let engine = Arc::new(Engine::with_config(config, parts.clock)?);
        let stored = parts.store.load()?;
        let catalog = Catalog::default();
        let mut entries = Vec::new();
        for v in stored {
            if let Some(entry) = v.engine {
                if entry.volume != v.meta.id {
                    let path = parts.store.record_path(&v.meta.id);
                    let message = format!("its engine entry is for volume {:?}", entry.volume);
                    return Err(StoreError::Corrupt { path, message }.into());
                }
                entries.push(entry);
            }
            catalog.insert(v.meta);
        }
        persisted::restore(&engine, entries).map_err(|e| match e {
            CoreError::BadSnapshot(source) => {
                let subject = match &source {
                    SnapshotError::Inconsistent { subject, .. } => subject.clone(),
                    _ => String::new(),
                };
                StartupError::Inconsistent { path: parts.store.record_path(&subject).display().to_string(), source }
            }
            other => StartupError::Settings(other),
        })?;
        let term = parts.store.next_term(settings.lease_term)?;
        engine.set_term(term)?;
        let metrics = Metrics::new(&settings.metrics_namespace, Arc::clone(&engine))?;
        tracing::info!(volumes = catalog.len(), attached = engine.attached_count(), term, "state loaded");
        let driver = Self {
            settings,
            engine,
            metrics,
            store: parts.store,
            catalog,
            nodes: parts.nodes,
            events: parts.events,
            changes: parts.changes,
            inflight: InFlight::default(),
            mounts: Arc::new(SystemMounts),
            phase: Arc::new(AtomicU8::new(if parts.awaits_rebuild { phase::REBUILDING } else { phase::SERVING })),
            owed: Owed::default(),
            calls: AtomicUsize::new(0),
            unsaved: DashSet::new(),
        };
        if !parts.awaits_rebuild {
            driver.refence()?;
        }
        Ok(driver)
    }

    /// Makes the Node handlers mount through `mounts` instead of the kernel (a
    /// [`crate::mount::RecordedMounts`] for tests and fuzzing). Call it before serving.
    pub fn set_mounts(&mut self, mounts: Arc<dyn Mounter>) {
        self.mounts = mounts;
    }

    /// Re-fences every volume at this start's term and hands each fence to the store, so a
    /// late update of an earlier leader is refused by the store: before anything is served, or,
    /// where the store writes it in the background, before each volume's next call is
    /// acknowledged (see `refence.rs`).
    fn refence(&self) -> Result<(), StoreError> {
        let mut fences = self.engine.refence();
        fences.retain(|vf| self.catalog.get(&vf.volume).is_some());
        let (term, volumes) = (self.engine.term(), fences.len());
        if self.store.refences_in_background() {
            let sweep = Sweep {
                store: Arc::clone(&self.store),
                engine: Arc::clone(&self.engine),
                metrics: self.metrics.clone(),
                phase: Arc::clone(&self.phase),
            };
            self.owed.start(&fences, sweep);
            tracing::info!(term, volumes, "re-fencing every volume at this term, in the background");
            return Ok(());
        }
        self.store.apply_fences(&fences)?;
        tracing::info!(term, volumes, "re-fenced every volume at this term");
        Ok(())
    }

    /// Waits until the background re-fence has written every volume it owes (at once where the
    /// store re-fences before serving): how many it wrote, or why it stopped early.
    pub fn await_refence(&self) -> Result<usize, StoreError> {
        self.owed.wait()
    }

    /// Volumes whose re-fence at this term the store has not taken yet.
    pub fn refence_pending(&self) -> usize {
        self.owed.len()
    }

    /// Whether the driver accepts calls: state rebuilt, shutdown not begun.
    pub fn is_ready(&self) -> bool {
        self.phase.load(Ordering::Acquire) == phase::SERVING
    }

    /// Whether attachment state still waits to be adopted from outside.
    pub fn is_rebuilding(&self) -> bool {
        self.phase.load(Ordering::Acquire) == phase::REBUILDING
    }

    /// A leader that meets a newer term in the store, or finds a volume changed by an older one
    /// after it read it, stops serving: every later call gets UNAVAILABLE, and the process
    /// exits once the calls in flight are done.
    fn stop_if_superseded(&self, e: &StoreError) {
        if e.stops_leader() {
            tracing::error!("{e}");
            self.begin_shutdown();
        }
    }

    /// Whether shutdown began.
    pub fn is_shutting_down(&self) -> bool {
        self.phase.load(Ordering::Acquire) == phase::SHUTTING_DOWN
    }

    /// Stops accepting state-changing calls: they get UNAVAILABLE from now on.
    pub fn begin_shutdown(&self) {
        self.phase.store(phase::SHUTTING_DOWN, Ordering::Release);
    }

    pub(crate) fn check_ready(&self) -> Result<(), DriverError> {
        match self.phase.load(Ordering::Acquire) {
            phase::SERVING => Ok(()),
            phase::REBUILDING => Err(DriverError::Rebuilding),
            _ => Err(DriverError::ShuttingDown),
        }
    }

    /// Marks an RPC as running until the guard drops.
    pub fn call(&self) -> CallGuard<'_> {
        self.calls.fetch_add(1, Ordering::AcqRel);
        CallGuard(&self.calls)
    }

    /// Work running now: RPCs, plus volume operations whose caller went away (they still
    /// finish, persisting before they release the volume).
    pub fn in_flight(&self) -> usize {
        self.calls.load(Ordering::Acquire) + self.inflight.len()
    }

    /// How many volumes the store holds.
    pub fn volume_count(&self) -> usize {
        self.catalog.len()
    }

    /// Tells the change listener, if any, that `volume`'s attachment changed.
    pub(crate) fn changed(&self, volume: &str) {
        if let Some(l) = &self.changes {
            l.changed(volume);
        }
    }

    pub(crate) fn post(&self, event: Option<Event>) {
        if let Some(mut event) = event {
            let reason = event.reason;
            event.claim = self.catalog.get(&event.volume).and_then(|meta| meta.claim());
            if self.events.post(event) {
                self.metrics.event_posted(reason);
            } else {
                self.metrics.event_dropped(reason);
            }
        }
    }

    /// Writes the engine's state for many volumes beside their metadata as one store call, which
    /// the store may make durable in one commit. A failure marks every one of them unsaved.
    fn persist_all(&self, volumes: &[&String]) -> Result<(), DriverError> {
        let mut records = Vec::with_capacity(volumes.len());
        for volume in volumes {
            if let Some(meta) = self.catalog.get(volume) {
                let entry = self.engine.volume_entry(volume)?;
                records.push((meta, entry));
            }
        }
        if let Err(e) = self.store.save_all(&records) {
            for (meta, _) in &records {
                self.unsaved.insert(meta.id.clone());
            }
            self.stop_if_superseded(&e);
            return Err(e.into());
        }
        for (meta, _) in &records {
            self.unsaved.remove(&meta.id);
        }
        Ok(())
    }

    /// If the call changed the volume, or an earlier change of it never reached the disk (a
    /// persist or a fence apply failed), or it still owes its re-fence at this term: writes the
    /// engine's state for it beside its metadata and hands its current fence to the store, as
    /// one durable change. Call under the volume's in-flight guard, before acknowledging.
    pub(crate) fn persist_if(&self, changed: bool, meta: &VolumeMeta) -> Result<(), DriverError> {
        if !changed && !self.unsaved.contains(&meta.id) && !self.owed.owes(&meta.id) {
            return Ok(());
        }
        let fence = self.engine.fence(&meta.id)?;
        self.write(meta, fence.as_ref())
    }

    /// The engine's state for `meta`'s volume, and `fence` if given, to the store. A failure
    /// marks the volume unsaved, so the next call on it writes both again before it is
    /// acknowledged.
    fn write(&self, meta: &VolumeMeta, fence: Option<&tether_core::Fence>) -> Result<(), DriverError> {
        let entry = self.engine.volume_entry(&meta.id)?;
        if let Err(e) = self.store.save(meta, entry.as_ref(), fence) {
            self.unsaved.insert(meta.id.clone());
            self.stop_if_superseded(&e);
            return Err(e.into());
        }
        self.unsaved.remove(&meta.id);
        if fence.is_some() {
            self.owed.settled(&meta.id);
        }
        Ok(())
    }

    /// One reconcile pass against the live nodes: posts its events and persists what it
    /// cleared. Standalone, the node set is fixed, so this mostly reports timed-out migrations.
    pub fn reconcile(&self) -> Result<tether_core::ReconcileReport, DriverError> {
        let live = self.nodes.live();
        let report = self.engine.reconcile(&live)?;
        for cleared in &report.cleared {
            if let Some(meta) = self.catalog.get(&cleared.volume) {
                // Record and fence in one change: a fence a newer term superseded saves nothing
                // (the volume stays unsaved, so its next call writes it again) and the pass goes on.
                match self.write(&meta, Some(&cleared.fence)) {
                    Err(DriverError::Store(e)) => superseded(e)?,
                    other => other?,
                }
            }
            self.changed(&cleared.volume);
        }
        for event in crate::events::for_reconcile(&report) {
            self.post(Some(event));
        }
        if let Some(l) = &self.changes {
            l.reconciled();
        }
        Ok(report)
    }

    /// Makes `observed` (every attached volume, as Kubernetes records it) the engine's truth
    /// for attachments, persists every volume that changed, and then serves calls. An
    /// attachment the engine cannot hold is refused, logged and posted as a conflict.
    ///
    /// Call it while no publish runs: before serving (calls get UNAVAILABLE until it
    /// succeeds) or on taking over as leader. On error the driver keeps refusing calls.
    pub fn adopt(&self, observed: &Observed) -> Result<AdoptReport, DriverError> {
        let default_timeout = self.engine.config().default_migration_timeout;
        let timeout_for = |v: &str| self.catalog.get(v).and_then(|m| m.migration_timeout()).unwrap_or(default_timeout);
        let report = self.engine.adopt(observed, timeout_for)?;
        // A retry after a failed persist finds the engine already adopted: what did not reach
        // the disk then is still owed.
        let owed: Vec<String> = self.unsaved.iter().map(|v| v.key().clone()).collect();
        let mut to_persist: Vec<&String> = report.changed().chain(&owed).collect();
        to_persist.sort_unstable();
        to_persist.dedup();
        self.persist_all(&to_persist)?;
        for volume in to_persist {
            self.changed(volume);
        }
        for r in &report.refused {
            tracing::error!(volume = %r.volume, node = %r.node, kept = ?r.kept, "attachment not adopted: {}", r.why);
            self.post(Some(crate::events::for_refused(r)));
        }
        self.metrics.reconcile_action("rebuilt");
        self.refence()?;
        // A volume adopted unchanged may still lack what a crashed leader never wrote for it
        // (its PV annotations): one sweep now, not at the next reconcile pass.
        if let Some(l) = &self.changes {
            l.reconciled();
        }
        let _ = self.phase.compare_exchange(phase::REBUILDING, phase::SERVING, Ordering::AcqRel, Ordering::Acquire);
        tracing::info!(
            unchanged = report.unchanged,
            adopted = report.adopted.len(),
            dropped = report.dropped.len(),
            refused = report.refused.len(),
            "attachment state rebuilt"
        );
        Ok(report)
    }
}

/// A fence the store refused because a newer one is already applied (a publish on the same
/// volume got there first) needs nothing more.
fn superseded(e: StoreError) -> Result<(), StoreError> {
    match e {
        StoreError::Fence(CoreError::StaleFence { .. }) => Ok(()),
        other => Err(other),
    }
}
