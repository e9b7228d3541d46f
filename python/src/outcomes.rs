//! What engine calls hand back, as small frozen Python objects: one class per core outcome.

use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tether_core as core;

/// How many nodes may hold a volume: `RWO` (one) or `RWX` (two, during a live migration).
#[pyclass(frozen, eq, eq_int, hash, module = "tether")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessMode {
    #[pyo3(name = "RWO")]
    Rwo,
    #[pyo3(name = "RWX")]
    Rwx,
}

impl From<AccessMode> for core::AccessMode {
    fn from(m: AccessMode) -> Self {
        match m {
            AccessMode::Rwo => Self::Rwo,
            AccessMode::Rwx => Self::Rwx,
        }
    }
}

impl From<core::AccessMode> for AccessMode {
    fn from(m: core::AccessMode) -> Self {
        match m {
            core::AccessMode::Rwo => Self::Rwo,
            core::AccessMode::Rwx => Self::Rwx,
        }
    }
}

/// What a successful publish did.
#[pyclass(frozen, eq, eq_int, hash, module = "tether")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PublishKind {
    #[pyo3(name = "ATTACHED")]
    Attached,
    #[pyo3(name = "ALREADY_ATTACHED")]
    AlreadyAttached,
    #[pyo3(name = "HANDED_OFF")]
    HandedOff,
    #[pyo3(name = "MIGRATION_STARTED")]
    MigrationStarted,
}

/// What an unpublish did (every kind is a success: unpublish is idempotent).
#[pyclass(frozen, eq, eq_int, hash, module = "tether")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UnpublishKind {
    #[pyo3(name = "NOT_ATTACHED")]
    NotAttached,
    #[pyo3(name = "DETACHED")]
    Detached,
    #[pyo3(name = "MIGRATION_COMPLETED")]
    MigrationCompleted,
    #[pyo3(name = "MIGRATION_ABORTED")]
    MigrationAborted,
}

fn tuple<'py>(py: Python<'py>, names: &[String]) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, names)
}

/// `Class(field=repr(value), ...)`, with each value's own Python repr.
pub fn fields_repr(obj: &Bound<'_, PyAny>, fields: &[&str]) -> PyResult<String> {
    let mut parts = Vec::with_capacity(fields.len());
    for field in fields {
        parts.push(format!("{field}={}", obj.getattr(*field)?.repr()?));
    }
    Ok(format!("{}({})", obj.get_type().name()?, parts.join(", ")))
}

/// A successful publish: its kind, the volume's epoch after it, and the kind's details.
#[pyclass(frozen, eq, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    pub kind: PublishKind,
    pub epoch: u64,
    /// `HANDED_OFF`: the node whose late re-attach was replaced.
    pub from_node: Option<String>,
    /// `MIGRATION_STARTED`: the node the volume was already on.
    pub source: Option<String>,
    /// `MIGRATION_STARTED`: the effective (clamped) migration timeout.
    pub timeout: Option<Duration>,
}

impl From<core::PublishOutcome> for PublishOutcome {
    fn from(out: core::PublishOutcome) -> Self {
        let mut py =
            Self { kind: PublishKind::Attached, epoch: out.epoch, from_node: None, source: None, timeout: None };
        match out.kind {
            core::Published::Attached => {}
            core::Published::AlreadyAttached => py.kind = PublishKind::AlreadyAttached,
            core::Published::HandedOff { from } => {
                py.kind = PublishKind::HandedOff;
                py.from_node = Some(from.to_string());
            }
            core::Published::MigrationStarted { source, timeout } => {
                py.kind = PublishKind::MigrationStarted;
                py.source = Some(source.to_string());
                py.timeout = Some(timeout);
            }
        }
        py
    }
}

#[pymethods]
impl PublishOutcome {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["kind", "epoch", "from_node", "source", "timeout"])
    }
}

/// A successful unpublish. `nodes` are the nodes that left the volume (empty for `NOT_ATTACHED`).
#[pyclass(frozen, eq, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpublishOutcome {
    #[pyo3(get)]
    pub kind: UnpublishKind,
    /// The volume's epoch after the change; `None` when nothing changed.
    #[pyo3(get)]
    pub epoch: Option<u64>,
    pub nodes: Vec<String>,
    /// `MIGRATION_COMPLETED` / `MIGRATION_ABORTED`: the migration's source and target.
    #[pyo3(get)]
    pub source: Option<String>,
    #[pyo3(get)]
    pub target: Option<String>,
    /// `MIGRATION_COMPLETED`: how long the migration ran.
    #[pyo3(get)]
    pub duration: Option<Duration>,
}

impl From<core::UnpublishOutcome> for UnpublishOutcome {
    fn from(out: core::UnpublishOutcome) -> Self {
        let none = Self {
            kind: UnpublishKind::NotAttached,
            epoch: None,
            nodes: Vec::new(),
            source: None,
            target: None,
            duration: None,
        };
        match out {
            core::UnpublishOutcome::NotAttached => none,
            core::UnpublishOutcome::Detached { nodes, epoch } => Self {
                kind: UnpublishKind::Detached,
                epoch: Some(epoch),
                nodes: nodes.iter().map(ToString::to_string).collect(),
                ..none
            },
            core::UnpublishOutcome::MigrationCompleted { source, target, duration, epoch } => Self {
                kind: UnpublishKind::MigrationCompleted,
                epoch: Some(epoch),
                nodes: vec![source.to_string()],
                source: Some(source.to_string()),
                target: Some(target.to_string()),
                duration: Some(duration),
            },
            core::UnpublishOutcome::MigrationAborted { source, target, epoch } => Self {
                kind: UnpublishKind::MigrationAborted,
                epoch: Some(epoch),
                nodes: vec![target.to_string()],
                source: Some(source.to_string()),
                target: Some(target.to_string()),
                duration: None,
            },
        }
    }
}

#[pymethods]
impl UnpublishOutcome {
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        tuple(py, &self.nodes)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["kind", "epoch", "nodes", "source", "target", "duration"])
    }
}

/// What a compare-and-clear did: whether `node` was removed, and what is left.
#[pyclass(frozen, eq, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleOutcome {
    pub cleared: bool,
    pub node: Option<String>,
    /// The node still attached after the clear, if any.
    pub remaining: Option<String>,
    pub epoch: Option<u64>,
}

impl From<core::StaleOutcome> for StaleOutcome {
    fn from(out: core::StaleOutcome) -> Self {
        match out {
            core::StaleOutcome::NotAttached => Self { cleared: false, node: None, remaining: None, epoch: None },
            core::StaleOutcome::Cleared { node, remaining, epoch } => Self {
                cleared: true,
                node: Some(node.to_string()),
                remaining: remaining.map(|n| n.to_string()),
                epoch: Some(epoch),
            },
        }
    }
}

#[pymethods]
impl StaleOutcome {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["cleared", "node", "remaining", "epoch"])
    }
}

/// A migration in progress: how long it has run and its timeout.
#[pyclass(frozen, eq, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    pub elapsed: Duration,
    pub timeout: Duration,
    pub timed_out: bool,
}

#[pymethods]
impl Migration {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["elapsed", "timeout", "timed_out"])
    }
}

/// A volume's attachment as read at one moment. `since` is when its node set last changed.
#[pyclass(frozen, eq, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    #[pyo3(get)]
    pub volume: String,
    #[pyo3(get)]
    pub mode: AccessMode,
    #[pyo3(get)]
    pub readonly: bool,
    pub nodes: Vec<String>,
    #[pyo3(get)]
    pub epoch: u64,
    #[pyo3(get)]
    pub since: SystemTime,
    #[pyo3(get)]
    pub migration: Option<Migration>,
}

impl From<core::Attachment> for Attachment {
    fn from(a: core::Attachment) -> Self {
        Self {
            volume: a.volume,
            mode: a.access.mode.into(),
            readonly: a.access.readonly,
            nodes: a.nodes.iter().map(ToString::to_string).collect(),
            epoch: a.epoch,
            since: a.since,
            migration: a.migration.map(|m| Migration {
                elapsed: m.elapsed,
                timeout: m.timeout,
                timed_out: m.timed_out(),
            }),
        }
    }
}

#[pymethods]
impl Attachment {
    /// The nodes, primary (first attached) first, then a migration's target.
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        tuple(py, &self.nodes)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["volume", "mode", "readonly", "nodes", "epoch", "since", "migration"])
    }
}

/// A volume's last full detach: from which node, when (wall clock), and how long ago.
#[pyclass(frozen, eq, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachRecord {
    pub node: String,
    pub at: SystemTime,
    pub age: Duration,
}

impl From<core::DetachRecord> for DetachRecord {
    fn from(d: core::DetachRecord) -> Self {
        Self { node: d.node.to_string(), at: d.at, age: d.age }
    }
}

#[pymethods]
impl DetachRecord {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["node", "at", "age"])
    }
}
