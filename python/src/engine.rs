//! `tether.Engine`: every engine call with Python names and types; refusals become exceptions
//! through the one mapping in `errors`, and long calls run without the GIL.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyDict, PyString};
use tether_core::{duration_to_nanos, nanos_to_duration, Access, Config, CoreError};

use crate::clock::ManualClock;
use crate::convert::{unsigned, Mode, Span};
use crate::errors::to_py;
use crate::fence::{Fence, VolumeFence};
use crate::outcomes::{Attachment, DetachRecord, PublishOutcome, StaleOutcome, UnpublishOutcome};
use crate::report::ReconcileReport;

/// The attachment engine. Safe to share between Python threads.
#[pyclass(frozen, module = "tether")]
#[derive(Debug)]
pub struct Engine {
    inner: tether_core::Engine,
    /// The engine's grace period in nanoseconds, for the grace check's default: one relaxed
    /// load, where reading the engine's settings (an `ArcSwap` load) made the check 86
    /// instructions longer (callgrind, 998 against 912 a call with the Python loop). Only the
    /// `grace_period` setter changes the engine's grace period, and it stores here under
    /// `setting` after the engine took it.
    grace_ns: AtomicU64,
    /// Held by the setter across both stores, so two racing setters leave the engine and
    /// `grace_ns` with the same value.
    setting: Mutex<()>,
}

/// Maps a core result through the one error mapping.
fn mapped<T>(py: Python<'_>, r: Result<T, CoreError>) -> PyResult<T> {
    r.map_err(|e| to_py(py, e))
}

#[pymethods]
impl Engine {
    /// An engine with `grace_period` and default `migration_timeout` (seconds or timedelta),
    /// on the engine's default (coarse monotonic) clock or on `clock`.
    #[new]
    #[pyo3(
        signature = (grace_period = Span(30.0), migration_timeout = Span(300.0), clock = None),
        text_signature = "(grace_period=30.0, migration_timeout=300.0, clock=None)"
    )]
    fn new(
        py: Python<'_>,
        grace_period: Span,
        migration_timeout: Span,
        clock: Option<&Bound<'_, ManualClock>>,
    ) -> PyResult<Self> {
        let config = Config {
            grace_period: grace_period.duration(py, "grace period")?,
            default_migration_timeout: migration_timeout.duration(py, "migration timeout")?,
        };
        let clock = match clock {
            Some(c) => c.get().shared(),
            // The core's default clock, as `tether_core::Engine::new` uses.
            None => std::sync::Arc::new(tether_core::CoarseClock::new()),
        };
        let inner = mapped(py, tether_core::Engine::with_config(config, clock))?;
        let grace_ns = AtomicU64::new(duration_to_nanos(inner.config().grace_period));
        Ok(Self { inner, grace_ns, setting: Mutex::new(()) })
    }

    /// Attaches `volume` to `node` following DESIGN.md's publish table.
    #[pyo3(
        signature = (volume, node, mode = Mode(tether_core::AccessMode::Rwo), readonly = false, migration_timeout = None),
        text_signature = "(self, volume, node, mode='RWO', readonly=False, migration_timeout=None)"
    )]
    fn publish(
        &self,
        py: Python<'_>,
        volume: &str,
        node: &str,
        mode: Mode,
        readonly: bool,
        migration_timeout: Option<Span>,
    ) -> PyResult<PublishOutcome> {
        let timeout = migration_timeout.map(|t| t.duration(py, "migration timeout")).transpose()?;
        let access = Access { mode: mode.0, readonly };
        mapped(py, self.inner.publish(volume, node, access, timeout)).map(Into::into)
    }

    /// Detaches `volume` from `node`, or from every node when `node` is None. Idempotent.
    #[pyo3(signature = (volume, node = None))]
    fn unpublish(&self, py: Python<'_>, volume: &str, node: Option<&str>) -> PyResult<UnpublishOutcome> {
        mapped(py, self.inner.unpublish(volume, node)).map(Into::into)
    }

    /// True iff `volume` was last fully detached less than `grace` (default: the engine's grace
    /// period) ago.
    #[pyo3(signature = (volume, grace = None))]
    fn is_within_grace_period(&self, py: Python<'_>, volume: &str, grace: Option<Span>) -> PyResult<bool> {
        let grace = match grace {
            None => nanos_to_duration(self.grace_ns.load(Ordering::Relaxed)),
            Some(g) => g.duration(py, "grace period")?,
        };
        mapped(py, self.inner.is_within_grace_period(volume, grace))
    }

    /// The last full detach of `volume`, or None.
    fn detach_timestamp(&self, py: Python<'_>, volume: &str) -> PyResult<Option<DetachRecord>> {
        mapped(py, self.inner.detach_timestamp(volume)).map(|d| d.map(Into::into))
    }

    /// Drops `volume`'s detach record; returns whether there was one.
    fn clear_detach_timestamp(&self, py: Python<'_>, volume: &str) -> PyResult<bool> {
        mapped(py, self.inner.clear_detach_timestamp(volume))
    }

    /// `volume`'s attachment, or None when it is not attached.
    fn get(&self, py: Python<'_>, volume: &str) -> PyResult<Option<Attachment>> {
        mapped(py, self.inner.get(volume)).map(|a| a.map(Into::into))
    }

    /// Every attachment, sorted by volume.
    fn list(&self, py: Python<'_>) -> Vec<Attachment> {
        py.detach(|| self.inner.list().into_iter().map(Into::into).collect())
    }

    /// `volume`'s epoch (fencing token): 0 if it was never attached.
    fn epoch(&self, py: Python<'_>, volume: &str) -> PyResult<u64> {
        mapped(py, self.inner.epoch(volume))
    }

    /// `volume`'s fence now: what its storage target must allow. None for a volume the engine
    /// does not track (never attached, or forgotten); a detached volume's fence admits nobody.
    fn fence(&self, py: Python<'_>, volume: &str) -> PyResult<Option<Fence>> {
        mapped(py, self.inner.fence(volume)).map(|f| f.map(Into::into))
    }

    /// The controller term in force (0 until one is set).
    #[getter]
    fn term(&self) -> u64 {
        self.inner.term()
    }

    /// Raises the term to `term` (an int from 0 to `MAX_TERM`; a lower one leaves it as it is)
    /// and returns the term in force. Every change afterwards issues an epoch of at least
    /// `term << 32`. A new leader calls this, then `refence`, before it serves.
    fn set_term(&self, py: Python<'_>, term: &Bound<'_, PyAny>) -> PyResult<u64> {
        let term = unsigned(term, "term", tether_core::MAX_TERM)?;
        mapped(py, self.inner.set_term(term))
    }

    /// Re-fences every tracked volume at the current term: each epoch rises to at least
    /// `term << 32`, nodes and admission epochs stay. Returns the new fences, sorted by volume,
    /// for the storage backend to apply before the engine serves. Runs without the GIL: it
    /// visits every volume.
    fn refence(&self, py: Python<'_>) -> Vec<VolumeFence> {
        py.detach(|| self.inner.refence().into_iter().map(Into::into).collect())
    }

    /// Drops the record (epoch, detach record) of `volume`, which must be attached nowhere;
    /// returns whether there was one. A volume of that name made later starts above the
    /// forgotten epoch. Raises `VolumeStillAttached` for an attached volume.
    fn forget(&self, py: Python<'_>, volume: &str) -> PyResult<bool> {
        mapped(py, self.inner.forget(volume))
    }

    /// How many volumes are attached now.
    fn attached_count(&self, py: Python<'_>) -> usize {
        py.detach(|| self.inner.attached_count())
    }

    /// Compare-and-clear: removes `node` from `volume` only if it still holds it.
    fn clear_stale(&self, py: Python<'_>, volume: &str, node: &str) -> PyResult<StaleOutcome> {
        mapped(py, self.inner.clear_stale(volume, node)).map(Into::into)
    }

    /// One reconcile pass against the nodes that exist now (any iterable of str).
    fn reconcile(&self, py: Python<'_>, live_nodes: &Bound<'_, PyAny>) -> PyResult<ReconcileReport> {
        if live_nodes.is_instance_of::<PyString>() {
            return Err(pyo3::exceptions::PyTypeError::new_err(
                "live_nodes must be an iterable of node names, not a single str",
            ));
        }
        let names = live_nodes.try_iter()?.map(|n| n?.extract::<String>()).collect::<PyResult<Vec<String>>>()?;
        let report = py.detach(|| self.inner.reconcile(&names));
        mapped(py, report).map(Into::into)
    }

    /// The whole state as a JSON document (str).
    fn snapshot_json(&self, py: Python<'_>) -> String {
        py.detach(|| self.inner.snapshot_json())
    }

    /// The whole state as a dict (the JSON document, parsed).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let text = self.snapshot_json(py);
        py.import("json")?.call_method1("loads", (text,))
    }

    /// Replaces the whole state with a snapshot given as JSON text or as a dict. On any error
    /// (`SnapshotError`) the engine keeps its state.
    fn restore(&self, py: Python<'_>, snapshot: &Bound<'_, PyAny>) -> PyResult<()> {
        let text: String = if let Ok(s) = snapshot.cast::<PyString>() {
            s.to_str()?.to_owned()
        } else {
            py.import("json")?.call_method1("dumps", (snapshot,))?.extract()?
        };
        mapped(py, py.detach(|| self.inner.restore_json(&text)))
    }

    /// Every counter by name.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let counts = PyDict::new(py);
        for (name, value) in self.inner.stats().fields() {
            counts.set_item(name, value)?;
        }
        Ok(counts)
    }

    /// The grace period; settable (seconds or timedelta, at most one hour).
    #[getter]
    fn grace_period(&self) -> Duration {
        self.inner.config().grace_period
    }

    #[setter]
    fn set_grace_period(&self, py: Python<'_>, grace: Span) -> PyResult<()> {
        let grace = grace.duration(py, "grace period")?;
        let _setting = self.setting.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        mapped(py, self.inner.set_grace_period(grace))?;
        self.grace_ns.store(duration_to_nanos(grace), Ordering::Relaxed);
        Ok(())
    }

    /// The default migration timeout; settable, clamped into 30 s .. 1 h.
    #[getter]
    fn migration_timeout(&self) -> Duration {
        self.inner.config().default_migration_timeout
    }

    #[setter]
    fn set_migration_timeout(&self, py: Python<'_>, timeout: Span) -> PyResult<()> {
        self.inner.set_default_migration_timeout(timeout.duration(py, "migration timeout")?);
        Ok(())
    }

    fn __repr__(&self) -> String {
        let c = self.inner.config();
        format!("Engine(grace_period={:?}, migration_timeout={:?})", c.grace_period, c.default_migration_timeout)
    }
}
