//! Arguments coming in from Python: durations (seconds or `timedelta`), access modes, and the
//! non-negative integers (terms, epochs) the engine takes as `u64`.

use std::time::Duration;

use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDelta, PyInt};

use crate::errors::invalid_input;
use crate::outcomes::AccessMode;

/// A duration as given: a number of seconds or a `datetime.timedelta`, read as seconds.
/// Checked by [`Span::duration`], which knows which argument it was.
#[derive(Debug, Clone, Copy)]
pub struct Span(pub f64);

impl FromPyObject<'_, '_> for Span {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        if obj.is_instance_of::<PyDelta>() {
            Ok(Self(obj.call_method0("total_seconds")?.extract()?))
        } else {
            Ok(Self(obj.extract()?))
        }
    }
}

impl Span {
    /// The duration, or `InvalidInput` naming `field` if it is negative, NaN or too long.
    pub fn duration(self, py: Python<'_>, field: &str) -> PyResult<Duration> {
        let seconds = self.0;
        if !(seconds.is_finite() && seconds >= 0.0) {
            return Err(invalid_input(
                py,
                field,
                format!("invalid {field}: {seconds} s; give a finite, non-negative number of seconds or a timedelta"),
            ));
        }
        Duration::try_from_secs_f64(seconds)
            .map_err(|_| invalid_input(py, field, format!("invalid {field}: {seconds} s is too long to represent")))
    }
}

/// An access mode as given: `AccessMode` or the string `"RWO"` / `"RWX"` (any case).
#[derive(Debug, Clone, Copy)]
pub struct Mode(pub tether_core::AccessMode);

impl FromPyObject<'_, '_> for Mode {
    type Error = PyErr;

    fn extract(obj: Borrowed<'_, '_, PyAny>) -> PyResult<Self> {
        if let Ok(mode) = obj.cast::<AccessMode>() {
            return Ok(Self((*mode.get()).into()));
        }
        let text: String = obj.extract()?;
        match text.to_ascii_uppercase().as_str() {
            "RWO" => Ok(Self(tether_core::AccessMode::Rwo)),
            "RWX" => Ok(Self(tether_core::AccessMode::Rwx)),
            _ => Err(invalid_input(
                obj.py(),
                "access mode",
                format!("invalid access mode: {text:?}; give tether.AccessMode.RWO or RWX (or \"RWO\", \"RWX\")"),
            )),
        }
    }
}

/// A non-negative integer as given (a term, an epoch), as the engine takes it. Any int that
/// fits a `u64` is handed on unchanged, so the engine's own limits (a term's) stay its rule
/// alone; one outside that range is `InvalidInput` naming `field` and the caller's `limit`,
/// worded as the engine words a value too large. A bool, though an int to Python, is a
/// `TypeError`: `True` is never a deliberate term.
pub fn unsigned(obj: &Bound<'_, PyAny>, field: &str, limit: u64) -> PyResult<u64> {
    if obj.is_instance_of::<PyBool>() {
        return Err(PyTypeError::new_err(format!("{field} must be an int, not bool")));
    }
    match obj.extract::<u64>() {
        Ok(value) => Ok(value),
        Err(_) if obj.is_instance_of::<PyInt>() => {
            let problem =
                if obj.lt(0)? { "give a non-negative integer".to_owned() } else { format!("the limit is {limit}") };
            Err(invalid_input(obj.py(), field, format!("invalid {field}: it is {}; {problem}", obj.repr()?)))
        }
        Err(not_an_int) => Err(not_an_int),
    }
}
