//! The re-fence a new leader owes its volumes where the store writes it in the background (the
//! cluster store, [`VolumeStore::refences_in_background`]): which volumes still owe it, and the
//! thread that writes them while the leader serves.
//!
//! Why the leader may serve before every volume is re-fenced: the re-fence exists so that a
//! late write of the old leader is refused (DESIGN.md, "Terms"). Per volume that still holds:
//! a volume that owes its re-fence is written, record and fence at the new term, before any
//! call on it is acknowledged (`Driver::persist_if`), and an old leader's write that lands
//! first is found by that write's conflict (`StoreError::ChangedAfterRead`), which stops this
//! leader rather than merge onto what it no longer knows. What the background write saves is
//! the wait: at 220 to 330 API writes a second, 10 000 volumes are 30 to 45 s of no service.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use dashmap::DashSet;
use tether_core::{Engine, VolumeFence};

use crate::driver::phase::SHUTTING_DOWN;
use crate::metrics::Metrics;
use crate::store::{StoreError, VolumeStore};

/// Volumes handed to the store per batch: enough to keep its concurrent writes busy, few
/// enough that the pending gauge moves and a stop is seen within a batch.
const BATCH: usize = 1024;
/// How long the sweep waits before retrying a batch the store could not reach.
const RETRY: Duration = Duration::from_secs(1);

/// The volumes re-fenced in the engine at this term whose fence the store has not taken yet,
/// and the sweep writing them.
#[derive(Default)]
pub(crate) struct Owed {
    volumes: Arc<DashSet<String>>,
    sweep: Mutex<Option<JoinHandle<Result<usize, StoreError>>>>,
}

/// What the sweep needs of the driver.
pub(crate) struct Sweep {
    pub store: Arc<dyn VolumeStore>,
    pub engine: Arc<Engine>,
    pub metrics: Metrics,
    /// The driver's phase: the sweep stops when shutdown begins, and begins it when the store
    /// says this leader may no longer serve.
    pub phase: Arc<AtomicU8>,
}

impl Owed {
    /// Whether `volume` still owes its re-fence: its next call writes it before acknowledging.
    pub fn owes(&self, volume: &str) -> bool {
        self.volumes.contains(volume)
    }

    /// A write of `volume` at this term carried its current fence: it owes nothing now.
    pub fn settled(&self, volume: &str) {
        self.volumes.remove(volume);
    }

    /// Volumes still owing their re-fence.
    pub fn len(&self) -> usize {
        self.volumes.len()
    }

    /// Records `fences`' volumes as owed and starts the sweep writing them, after the one
    /// before (a second adoption) has finished.
    pub fn start(&self, fences: &[VolumeFence], sweep: Sweep) {
        let mut slot = self.sweep.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(earlier) = slot.take() {
            log_end(earlier.join());
        }
        if fences.is_empty() && self.volumes.is_empty() {
            return;
        }
        for vf in fences {
            self.volumes.insert(vf.volume.clone());
        }
        sweep.metrics.set_refence_pending(self.volumes.len());
        let volumes = Arc::clone(&self.volumes);
        *slot = Some(
            std::thread::Builder::new()
                .name("tether-refence".into())
                .spawn(move || sweep.run(&volumes))
                .expect("the operating system starts a thread"),
        );
    }

    /// Waits for the sweep: how many fences it wrote, or why it stopped early (the volumes
    /// left are written by their next call). `Ok(0)` when none ran since the last wait.
    pub fn wait(&self) -> Result<usize, StoreError> {
        let handle = self.sweep.lock().unwrap_or_else(PoisonError::into_inner).take();
        handle.map_or(Ok(0), |h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
    }
}

fn log_end(ended: std::thread::Result<Result<usize, StoreError>>) {
    match ended {
        Ok(Ok(written)) => tracing::debug!(written, "the earlier re-fence sweep had finished"),
        Ok(Err(e)) => tracing::warn!("the earlier re-fence sweep stopped: {e}"),
        Err(_) => tracing::error!("the earlier re-fence sweep panicked"),
    }
}

impl Sweep {
    /// Writes every owed volume's current fence, [`BATCH`] at a time, until none is owed.
    /// A store out of reach is retried; a store saying this leader may no longer serve stops
    /// it (and the driver); any other error stops the sweep alone.
    fn run(self, owed: &DashSet<String>) -> Result<usize, StoreError> {
        let mut written = 0;
        loop {
            if self.phase.load(Ordering::Acquire) == SHUTTING_DOWN {
                return Ok(written);
            }
            let batch: Vec<String> = owed.iter().take(BATCH).map(|v| v.key().clone()).collect();
            if batch.is_empty() {
                tracing::info!(written, term = self.engine.term(), "re-fence written for every volume");
                return Ok(written);
            }
            let fences = self.current(&batch);
            match self.store.apply_fences(&fences) {
                Ok(()) => {
                    written += fences.len();
                    for v in &batch {
                        owed.remove(v);
                    }
                    self.metrics.set_refence_pending(owed.len());
                }
                Err(e) if e.stops_leader() => {
                    tracing::error!("re-fence: {e}");
                    self.phase.store(SHUTTING_DOWN, Ordering::Release);
                    return Err(e);
                }
                Err(e) if e.is_unavailable() => {
                    tracing::warn!("re-fence: {e}; retrying in {RETRY:?}");
                    std::thread::sleep(RETRY);
                }
                Err(e) => {
                    tracing::error!("re-fence stopped, each volume left is re-fenced by its next call: {e}");
                    return Err(e);
                }
            }
        }
    }

    /// The fences of `volumes` now: a call may have moved one on since the re-fence.
    fn current(&self, volumes: &[String]) -> Vec<VolumeFence> {
        volumes
            .iter()
            .filter_map(|v| {
                let fence = self.engine.fence(v).ok().flatten()?;
                Some(VolumeFence { volume: v.clone(), fence })
            })
            .collect()
    }
}
