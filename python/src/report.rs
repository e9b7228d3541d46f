//! A reconcile pass's report, as frozen Python objects.

use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tether_core as tcore;

use crate::fence::Fence;
use crate::outcomes::fields_repr;

/// One attachment a reconcile cleared because its node had been missing for the grace period.
#[pyclass(frozen, eq, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearedAttachment {
    pub volume: String,
    pub node: String,
    pub epoch: u64,
    /// The volume's fence after the clear.
    pub fence: Fence,
}

#[pymethods]
impl ClearedAttachment {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["volume", "node", "epoch", "fence"])
    }
}

/// A missing node whose attachments are kept until its grace period runs out.
#[pyclass(frozen, eq, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNode {
    pub node: String,
    pub missing_since: SystemTime,
    pub clears_in: Duration,
    pub volumes: usize,
}

#[pymethods]
impl PendingNode {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["node", "missing_since", "clears_in", "volumes"])
    }
}

/// A migration found older than its timeout (reported once).
#[pyclass(frozen, eq, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOutMigration {
    pub volume: String,
    pub source: String,
    pub target: String,
    pub elapsed: Duration,
    pub timeout: Duration,
}

#[pymethods]
impl TimedOutMigration {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["volume", "source", "target", "elapsed", "timeout"])
    }
}

/// What one reconcile pass found and did.
#[pyclass(frozen, eq, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    cleared: Vec<ClearedAttachment>,
    pending: Vec<PendingNode>,
    returned: Vec<String>,
    timed_out_migrations: Vec<TimedOutMigration>,
}

impl From<tcore::ReconcileReport> for ReconcileReport {
    fn from(r: tcore::ReconcileReport) -> Self {
        Self {
            cleared: r
                .cleared
                .into_iter()
                .map(|c| ClearedAttachment {
                    volume: c.volume,
                    node: c.node.to_string(),
                    epoch: c.epoch,
                    fence: c.fence.into(),
                })
                .collect(),
            pending: r
                .pending
                .into_iter()
                .map(|p| PendingNode {
                    node: p.node.to_string(),
                    missing_since: p.missing_since,
                    clears_in: p.clears_in,
                    volumes: p.volumes,
                })
                .collect(),
            returned: r.returned.iter().map(ToString::to_string).collect(),
            timed_out_migrations: r
                .timed_out_migrations
                .into_iter()
                .map(|t| TimedOutMigration {
                    volume: t.volume,
                    source: t.source.to_string(),
                    target: t.target.to_string(),
                    elapsed: t.elapsed,
                    timeout: t.timeout,
                })
                .collect(),
        }
    }
}

#[pymethods]
impl ReconcileReport {
    /// Attachments cleared, sorted by volume.
    #[getter]
    fn cleared<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.cleared.clone())
    }

    /// Missing nodes not cleared yet, sorted by node.
    #[getter]
    fn pending<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.pending.clone())
    }

    /// Nodes that had been missing and are live again: they kept their volumes.
    #[getter]
    fn returned<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.returned)
    }

    /// Migrations older than their timeout, each reported by one pass only.
    #[getter]
    fn timed_out_migrations<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, self.timed_out_migrations.clone())
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["cleared", "pending", "returned", "timed_out_migrations"])
    }
}
