//! What engine calls hand back, as small frozen Python objects: one class per core outcome
//! (fences have their own file, fence.rs).

use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tether_core as tcore;

use crate::fence::Fence;

/// How many nodes may hold a volume: `RWO` (one) or `RWX` (two, during a live migration).
#[pyclass(frozen, eq, eq_int, hash, module = "tether")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessMode {
    #[pyo3(name = "RWO")]
    Rwo,
    #[pyo3(name = "RWX")]
    Rwx,
}

impl From<AccessMode> for tcore::AccessMode {
    fn from(m: AccessMode) -> Self {
        match m {
            AccessMode::Rwo => Self::Rwo,
            AccessMode::Rwx => Self::Rwx,
        }
    }
}

impl From<tcore::AccessMode> for AccessMode {
    fn from(m: tcore::AccessMode) -> Self {
        match m {
            tcore::AccessMode::Rwo => Self::Rwo,
            tcore::AccessMode::Rwx => Self::Rwx,
        }
    }
}

/// The access a volume is held with: its mode and read-only flag.
// Not `Copy`: pymethods take `&self`, which clippy flags on a two-byte `Copy` type.
#[pyclass(frozen, eq, hash, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Access {
    pub mode: AccessMode,
    pub readonly: bool,
}

impl From<tcore::Access> for Access {
    fn from(a: tcore::Access) -> Self {
        Self { mode: a.mode.into(), readonly: a.readonly }
    }
}

#[pymethods]
impl Access {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["mode", "readonly"])
    }

    /// The core's wording: `RWO`, `RWX read-only`, ...
    fn __str__(&self) -> String {
        tcore::Access { mode: self.mode.into(), readonly: self.readonly }.to_string()
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

/// A successful publish: its kind, the volume's epoch after it, the node's admission epoch,
/// the fence a storage target must apply, and the kind's details.
/// Holds the core's outcome as it is and converts a field only when Python reads it.
#[pyclass(frozen, eq, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome(tcore::PublishOutcome);

impl From<tcore::PublishOutcome> for PublishOutcome {
    fn from(out: tcore::PublishOutcome) -> Self {
        Self(out)
    }
}

#[pymethods]
impl PublishOutcome {
    #[getter]
    fn kind(&self) -> PublishKind {
        match self.0.kind {
            tcore::Published::Attached => PublishKind::Attached,
            tcore::Published::AlreadyAttached => PublishKind::AlreadyAttached,
            tcore::Published::HandedOff { .. } => PublishKind::HandedOff,
            tcore::Published::MigrationStarted { .. } => PublishKind::MigrationStarted,
        }
    }

    #[getter]
    fn epoch(&self) -> u64 {
        self.0.epoch
    }

    /// The node's admission epoch: the epoch of the change that admitted it, the same on an
    /// idempotent re-publish. What the node presents when it opens its I/O session.
    #[getter]
    fn admitted(&self) -> u64 {
        self.0.admitted
    }

    /// The volume's fence after the publish.
    #[getter]
    fn fence(&self) -> Fence {
        self.0.fence.clone().into()
    }

    /// `HANDED_OFF`: the node whose late re-attach was replaced.
    #[getter(from_node)]
    fn handed_off_from(&self) -> Option<&str> {
        match &self.0.kind {
            tcore::Published::HandedOff { from } => Some(from),
            _ => None,
        }
    }

    /// `MIGRATION_STARTED`: the node the volume was already on.
    #[getter]
    fn source(&self) -> Option<&str> {
        match &self.0.kind {
            tcore::Published::MigrationStarted { source, .. } => Some(source),
            _ => None,
        }
    }

    /// `MIGRATION_STARTED`: the effective (clamped) migration timeout.
    #[getter]
    fn timeout(&self) -> Option<Duration> {
        match self.0.kind {
            tcore::Published::MigrationStarted { timeout, .. } => Some(timeout),
            _ => None,
        }
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["kind", "epoch", "admitted", "fence", "from_node", "source", "timeout"])
    }
}

/// A successful unpublish. `nodes` are the nodes that left the volume (empty for `NOT_ATTACHED`).
/// Holds the core's outcome as it is and converts a field only when Python reads it.
#[pyclass(frozen, eq, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnpublishOutcome(tcore::UnpublishOutcome);

impl From<tcore::UnpublishOutcome> for UnpublishOutcome {
    fn from(out: tcore::UnpublishOutcome) -> Self {
        Self(out)
    }
}

#[pymethods]
impl UnpublishOutcome {
    #[getter]
    fn kind(&self) -> UnpublishKind {
        match self.0 {
            tcore::UnpublishOutcome::NotAttached => UnpublishKind::NotAttached,
            tcore::UnpublishOutcome::Detached { .. } => UnpublishKind::Detached,
            tcore::UnpublishOutcome::MigrationCompleted { .. } => UnpublishKind::MigrationCompleted,
            tcore::UnpublishOutcome::MigrationAborted { .. } => UnpublishKind::MigrationAborted,
        }
    }

    /// The volume's epoch after the change; `None` when nothing changed.
    #[getter]
    fn epoch(&self) -> Option<u64> {
        match self.0 {
            tcore::UnpublishOutcome::NotAttached => None,
            tcore::UnpublishOutcome::Detached { epoch, .. }
            | tcore::UnpublishOutcome::MigrationCompleted { epoch, .. }
            | tcore::UnpublishOutcome::MigrationAborted { epoch, .. } => Some(epoch),
        }
    }

    /// The volume's fence after the change; `None` when nothing changed.
    #[getter]
    fn fence(&self) -> Option<Fence> {
        match &self.0 {
            tcore::UnpublishOutcome::NotAttached => None,
            tcore::UnpublishOutcome::Detached { fence, .. }
            | tcore::UnpublishOutcome::MigrationCompleted { fence, .. }
            | tcore::UnpublishOutcome::MigrationAborted { fence, .. } => Some(fence.clone().into()),
        }
    }

    /// The nodes that left: every node on a full detach, the source on completion, the target on abort.
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let left: Vec<&str> = match &self.0 {
            tcore::UnpublishOutcome::NotAttached => Vec::new(),
            tcore::UnpublishOutcome::Detached { nodes, .. } => nodes.iter().map(|n| &**n).collect(),
            tcore::UnpublishOutcome::MigrationCompleted { source, .. } => vec![source],
            tcore::UnpublishOutcome::MigrationAborted { target, .. } => vec![target],
        };
        PyTuple::new(py, left)
    }

    /// `MIGRATION_COMPLETED` / `MIGRATION_ABORTED`: the migration's source.
    #[getter]
    fn source(&self) -> Option<&str> {
        self.migration().map(|(source, _)| source)
    }

    /// `MIGRATION_COMPLETED` / `MIGRATION_ABORTED`: the migration's target.
    #[getter]
    fn target(&self) -> Option<&str> {
        self.migration().map(|(_, target)| target)
    }

    /// `MIGRATION_COMPLETED`: how long the migration ran.
    #[getter]
    fn duration(&self) -> Option<Duration> {
        match self.0 {
            tcore::UnpublishOutcome::MigrationCompleted { duration, .. } => Some(duration),
            _ => None,
        }
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["kind", "epoch", "fence", "nodes", "source", "target", "duration"])
    }
}

impl UnpublishOutcome {
    fn migration(&self) -> Option<(&str, &str)> {
        match &self.0 {
            tcore::UnpublishOutcome::MigrationCompleted { source, target, .. }
            | tcore::UnpublishOutcome::MigrationAborted { source, target, .. } => Some((source, target)),
            _ => None,
        }
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
    /// The volume's fence after the clear.
    pub fence: Option<Fence>,
}

impl From<tcore::StaleOutcome> for StaleOutcome {
    fn from(out: tcore::StaleOutcome) -> Self {
        match out {
            tcore::StaleOutcome::NotAttached => {
                Self { cleared: false, node: None, remaining: None, epoch: None, fence: None }
            }
            tcore::StaleOutcome::Cleared { node, remaining, epoch, fence } => Self {
                cleared: true,
                node: Some(node.to_string()),
                remaining: remaining.map(|n| n.to_string()),
                epoch: Some(epoch),
                fence: Some(fence.into()),
            },
        }
    }
}

#[pymethods]
impl StaleOutcome {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["cleared", "node", "remaining", "epoch", "fence"])
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

/// A volume's attachment as read at one moment. `since` is when its node set last changed;
/// `admitted` holds each node's admission epoch, slot for slot with `nodes`.
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
    pub admitted: Vec<u64>,
    #[pyo3(get)]
    pub since: SystemTime,
    #[pyo3(get)]
    pub migration: Option<Migration>,
}

impl From<tcore::Attachment> for Attachment {
    fn from(a: tcore::Attachment) -> Self {
        Self {
            volume: a.volume,
            mode: a.access.mode.into(),
            readonly: a.access.readonly,
            nodes: a.nodes.iter().map(ToString::to_string).collect(),
            epoch: a.epoch,
            admitted: std::iter::once(a.admitted.0).chain(a.admitted.1).collect(),
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

    /// Each node's admission epoch, in the order of `nodes`.
    #[getter]
    fn admitted<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        PyTuple::new(py, &self.admitted)
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["volume", "mode", "readonly", "nodes", "epoch", "admitted", "since", "migration"])
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

impl From<tcore::DetachRecord> for DetachRecord {
    fn from(d: tcore::DetachRecord) -> Self {
        Self { node: d.node.to_string(), at: d.at, age: d.age }
    }
}

#[pymethods]
impl DetachRecord {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["node", "at", "age"])
    }
}
