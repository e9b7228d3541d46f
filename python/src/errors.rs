//! The Python exception hierarchy of DESIGN.md, and the one place a `CoreError` becomes one.
//!
//! The classes are built at module initialisation with `type(...)` because `InvalidInput` must
//! derive from both `TetherError` and `ValueError`, which a single-base exception macro cannot say.

use pyo3::exceptions::{PyException, PyValueError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule, PyTuple, PyType};
use tether_core::{CoreError, Nodes};

/// The exception classes, created once per process.
pub struct Exceptions {
    root: Py<PyType>,
    invalid_input: Py<PyType>,
    conflict: Py<PyType>,
    incompatible: Py<PyType>,
    migration_limit: Py<PyType>,
    migration_timed_out: Py<PyType>,
    epoch_exhausted: Py<PyType>,
    still_attached: Py<PyType>,
    stale_fence: Py<PyType>,
    not_admitted: Py<PyType>,
    snapshot: Py<PyType>,
}

static EXCEPTIONS: PyOnceLock<Exceptions> = PyOnceLock::new();

/// A new exception class `tether.<name>` with `bases`.
fn class<'py>(py: Python<'py>, name: &str, bases: &[&Bound<'py, PyType>], doc: &str) -> PyResult<Py<PyType>> {
    let namespace = PyDict::new(py);
    namespace.set_item("__module__", "tether")?;
    namespace.set_item("__doc__", doc)?;
    let bases = PyTuple::new(py, bases)?;
    let builtins = py.import("builtins")?;
    Ok(builtins.getattr("type")?.call1((name, bases, namespace))?.cast_into::<PyType>()?.unbind())
}

impl Exceptions {
    fn build(py: Python<'_>) -> PyResult<Self> {
        let root = class(py, "TetherError", &[&py.get_type::<PyException>()], "Root of every error raised by tether.")?;
        let r = root.bind(py);
        let sub = |name: &str, doc: &str| class(py, name, &[r], doc);
        Ok(Self {
            invalid_input: class(
                py,
                "InvalidInput",
                &[r, &py.get_type::<PyValueError>()],
                "An argument breaks a rule of the contract (identifier, duration, mode). Attribute: field.",
            )?,
            conflict: sub(
                "AttachmentConflict",
                "The volume is attached elsewhere in a way that excludes the node. \
                 Attributes: volume, node, attached_to.",
            )?,
            incompatible: sub(
                "IncompatibleAttachment",
                "The volume is already attached to the node with other access. \
                 Attributes: volume, node, existing, requested.",
            )?,
            migration_limit: sub(
                "MigrationLimit",
                "An RWX volume is already on two nodes. Attributes: volume, node, nodes.",
            )?,
            migration_timed_out: sub(
                "MigrationTimedOut",
                "The volume's migration is older than its timeout. \
                 Attributes: volume, node, nodes, elapsed, timeout.",
            )?,
            epoch_exhausted: sub(
                "EpochExhausted",
                "The volume's epoch cannot grow any further (epochs never wrap); nothing changed. \
                 Attributes: volume, epoch.",
            )?,
            still_attached: sub(
                "VolumeStillAttached",
                "forget was asked to drop a volume that is still attached. Attributes: volume, nodes.",
            )?,
            stale_fence: sub(
                "StaleFence",
                "A fence is no newer than the one the storage target applied last. \
                 Attributes: volume, epoch, applied.",
            )?,
            not_admitted: sub(
                "NotAdmitted",
                "A node's I/O session is not allowed by the volume's latest fence. \
                 Attributes: volume, node, presented, admitted (None if not in the fence), fence_epoch.",
            )?,
            snapshot: sub("SnapshotError", "A snapshot document was rejected; the engine kept its state.")?,
            root,
        })
    }

    /// The classes, creating them on first use.
    pub fn get(py: Python<'_>) -> PyResult<&Self> {
        EXCEPTIONS.get_or_try_init(py, || Self::build(py))
    }

    /// Adds every class to `module` under its public name.
    pub fn register(module: &Bound<'_, PyModule>) -> PyResult<()> {
        let e = Self::get(module.py())?;
        for class in [
            &e.root,
            &e.invalid_input,
            &e.conflict,
            &e.incompatible,
            &e.migration_limit,
            &e.migration_timed_out,
            &e.epoch_exhausted,
            &e.still_attached,
            &e.stale_fence,
            &e.not_admitted,
            &e.snapshot,
        ] {
            let class = class.bind(module.py());
            module.add(class.name()?, class)?;
        }
        Ok(())
    }
}

/// An exception of `class` carrying `message`, with attributes set by `attrs`.
fn raise<'py>(
    py: Python<'py>,
    class: &Py<PyType>,
    message: String,
    attrs: impl FnOnce(&Bound<'py, PyAny>) -> PyResult<()>,
) -> PyErr {
    let made = class.bind(py).call1((message,)).and_then(|exc| {
        attrs(&exc)?;
        Ok(PyErr::from_value(exc))
    });
    made.unwrap_or_else(|failed| failed)
}

/// An `InvalidInput` raised by this layer itself, for a value it cannot even hand to the engine.
pub fn invalid_input(py: Python<'_>, field: &str, message: String) -> PyErr {
    match Exceptions::get(py) {
        Ok(classes) => raise(py, &classes.invalid_input, message, |e| e.setattr("field", field)),
        Err(failed) => failed,
    }
}

fn names<'py>(py: Python<'py>, nodes: &Nodes) -> PyResult<Bound<'py, PyTuple>> {
    PyTuple::new(py, nodes.iter().map(|n| &**n).collect::<Vec<&str>>())
}

/// The one mapping from a core refusal to a Python exception; the message is the core's own.
pub fn to_py(py: Python<'_>, err: CoreError) -> PyErr {
    let classes = match Exceptions::get(py) {
        Ok(classes) => classes,
        Err(failed) => return failed,
    };
    let message = err.to_string();
    match err {
        CoreError::InvalidInput(bad) => {
            raise(py, &classes.invalid_input, message, |e| e.setattr("field", bad.field.to_string()))
        }
        CoreError::Conflict { volume, node, attached_to } => raise(py, &classes.conflict, message, |e| {
            e.setattr("volume", volume)?;
            e.setattr("node", node)?;
            e.setattr("attached_to", names(py, &attached_to)?)
        }),
        CoreError::Incompatible { volume, node, existing, requested } => {
            raise(py, &classes.incompatible, message, |e| {
                e.setattr("volume", volume)?;
                e.setattr("node", node)?;
                e.setattr("existing", existing.to_string())?;
                e.setattr("requested", requested.to_string())
            })
        }
        CoreError::MigrationLimit { volume, node, nodes } => raise(py, &classes.migration_limit, message, |e| {
            e.setattr("volume", volume)?;
            e.setattr("node", node)?;
            e.setattr("nodes", names(py, &nodes)?)
        }),
        CoreError::MigrationTimedOut { volume, node, nodes, elapsed, timeout } => {
            raise(py, &classes.migration_timed_out, message, |e| {
                e.setattr("volume", volume)?;
                e.setattr("node", node)?;
                e.setattr("nodes", names(py, &nodes)?)?;
                e.setattr("elapsed", elapsed)?;
                e.setattr("timeout", timeout)
            })
        }
        CoreError::EpochExhausted { volume, epoch } => raise(py, &classes.epoch_exhausted, message, |e| {
            e.setattr("volume", volume)?;
            e.setattr("epoch", epoch)
        }),
        CoreError::StillAttached { volume, nodes } => raise(py, &classes.still_attached, message, |e| {
            e.setattr("volume", volume)?;
            e.setattr("nodes", names(py, &nodes)?)
        }),
        CoreError::StaleFence { volume, epoch, applied } => raise(py, &classes.stale_fence, message, |e| {
            e.setattr("volume", volume)?;
            e.setattr("epoch", epoch)?;
            e.setattr("applied", applied)
        }),
        CoreError::NotAdmitted { volume, node, presented, admitted, fence_epoch } => {
            raise(py, &classes.not_admitted, message, |e| {
                e.setattr("volume", volume)?;
                e.setattr("node", node)?;
                e.setattr("presented", presented)?;
                e.setattr("admitted", admitted)?;
                e.setattr("fence_epoch", fence_epoch)
            })
        }
        CoreError::BadSnapshot(_) => raise(py, &classes.snapshot, message, |_| Ok(())),
    }
}
