//! `tether.Fence` and its parts: what a storage target must allow for a volume now, the two
//! rules that make it a fence (`check_supersedes`, `check_session`), and re-fence results.

use pyo3::prelude::*;
use pyo3::types::PyTuple;
use tether_core as tcore;

use crate::convert::unsigned;
use crate::errors::to_py;
use crate::outcomes::{fields_repr, Access};

/// One node a fence admits, and the epoch of the change that admitted it.
#[pyclass(frozen, eq, hash, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Admission {
    pub node: String,
    pub epoch: u64,
}

#[pymethods]
impl Admission {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["node", "epoch"])
    }
}

/// `(epoch, access, nodes)`: the nodes a storage target must allow for a volume now, primary
/// first; empty after a detach. Holds the core's fence as it is and converts a field only when
/// Python reads it, so the two rules below run on exactly what the engine issued.
#[pyclass(frozen, eq, hash, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fence(tcore::Fence);

impl From<tcore::Fence> for Fence {
    fn from(fence: tcore::Fence) -> Self {
        Self(fence)
    }
}

#[pymethods]
impl Fence {
    #[getter]
    fn epoch(&self) -> u64 {
        self.0.epoch
    }

    #[getter]
    fn access(&self) -> Access {
        self.0.access.into()
    }

    /// The admitted nodes with their admission epochs, primary first (0, 1 or 2 of them).
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        let admitted: Vec<Admission> =
            self.0.nodes().map(|a| Admission { node: a.node.to_string(), epoch: a.epoch }).collect();
        PyTuple::new(py, admitted)
    }

    /// `node`'s admission epoch, or None if the fence does not admit it.
    fn admission(&self, node: &str) -> Option<u64> {
        self.0.admission(node)
    }

    /// The storage target's rule: raises `StaleFence` unless this fence's epoch is higher than
    /// `applied`, the epoch of the last fence the target applied for `volume` (None: none yet).
    #[pyo3(signature = (volume, applied))]
    fn check_supersedes(&self, py: Python<'_>, volume: &str, applied: Option<&Bound<'_, PyAny>>) -> PyResult<()> {
        let applied = applied.map(|a| unsigned(a, "applied epoch", u64::MAX)).transpose()?;
        self.0.check_supersedes(volume, applied).map_err(|e| to_py(py, e))
    }

    /// The I/O-session rule: raises `NotAdmitted` unless this (the latest applied) fence admits
    /// `node` and the epoch it `presented` is at least its admission epoch.
    fn check_session(&self, py: Python<'_>, volume: &str, node: &str, presented: &Bound<'_, PyAny>) -> PyResult<()> {
        let presented = unsigned(presented, "presented epoch", u64::MAX)?;
        self.0.check_session(volume, node, presented).map_err(|e| to_py(py, e))
    }

    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["epoch", "access", "nodes"])
    }

    /// The core's wording, as messages and logs use it.
    fn __str__(&self) -> String {
        self.0.to_string()
    }
}

/// One volume's fence, as `Engine.refence` returns it.
#[pyclass(frozen, eq, get_all, module = "tether")]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeFence {
    pub volume: String,
    pub fence: Fence,
}

impl From<tcore::VolumeFence> for VolumeFence {
    fn from(v: tcore::VolumeFence) -> Self {
        Self { volume: v.volume, fence: v.fence.into() }
    }
}

#[pymethods]
impl VolumeFence {
    fn __repr__(slf: &Bound<'_, Self>) -> PyResult<String> {
        fields_repr(slf.as_any(), &["volume", "fence"])
    }
}
