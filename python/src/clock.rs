//! `tether.ManualClock`: a clock that moves only when the caller advances it, for tests and replays.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use pyo3::prelude::*;
use tether_core::Clock;

use crate::convert::Span;

/// A manual clock; pass it as `Engine(clock=...)`. Thread-safe.
#[pyclass(frozen, module = "tether")]
#[derive(Debug)]
pub struct ManualClock {
    inner: Arc<tether_core::ManualClock>,
}

impl ManualClock {
    /// The clock as the engine takes it.
    pub fn shared(&self) -> Arc<dyn Clock> {
        self.inner.clone()
    }
}

#[pymethods]
impl ManualClock {
    /// A clock whose wall time is `start` (an aware datetime) or, by default, the current time.
    #[new]
    #[pyo3(signature = (start = None))]
    fn new(start: Option<SystemTime>) -> Self {
        let inner = start.map_or_else(tether_core::ManualClock::new, tether_core::ManualClock::with_wall_time);
        Self { inner: Arc::new(inner) }
    }

    /// Moves the clock forward by `by` (seconds or a timedelta; never backwards).
    fn advance(&self, py: Python<'_>, by: Span) -> PyResult<()> {
        self.inner.advance(by.duration(py, "clock advance")?);
        Ok(())
    }

    /// How far the clock has moved since it was made.
    #[getter]
    fn elapsed(&self) -> Duration {
        self.inner.elapsed()
    }

    /// The clock's current wall time.
    fn now(&self) -> SystemTime {
        self.inner.wall_time(self.inner.now())
    }

    fn __repr__(&self) -> String {
        format!("ManualClock(elapsed={:?})", self.inner.elapsed())
    }
}
