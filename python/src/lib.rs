//! `tether._tether`: the Python extension module over `tether-core`, re-exported by the
//! pure-Python package `tether` (python/tether/__init__.py).
//!
//! Every rule stays in the core; this crate converts arguments in, outcomes out, and maps each
//! `CoreError` to its exception in one place (`errors::to_py`).

mod clock;
mod convert;
mod engine;
mod errors;
mod fence;
mod outcomes;
mod report;

use pyo3::prelude::*;

/// The native half of the `tether` package; import `tether` instead.
#[pymodule]
fn _tether(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<engine::Engine>()?;
    m.add_class::<clock::ManualClock>()?;
    m.add_class::<outcomes::AccessMode>()?;
    m.add_class::<outcomes::Access>()?;
    m.add_class::<outcomes::PublishKind>()?;
    m.add_class::<outcomes::UnpublishKind>()?;
    m.add_class::<outcomes::PublishOutcome>()?;
    m.add_class::<outcomes::UnpublishOutcome>()?;
    m.add_class::<outcomes::StaleOutcome>()?;
    m.add_class::<outcomes::Migration>()?;
    m.add_class::<outcomes::Attachment>()?;
    m.add_class::<outcomes::DetachRecord>()?;
    m.add_class::<fence::Admission>()?;
    m.add_class::<fence::Fence>()?;
    m.add_class::<fence::VolumeFence>()?;
    m.add_class::<report::ClearedAttachment>()?;
    m.add_class::<report::PendingNode>()?;
    m.add_class::<report::TimedOutMigration>()?;
    m.add_class::<report::ReconcileReport>()?;
    errors::Exceptions::register(m)?;
    m.add("MAX_ID_LEN", tether_core::MAX_ID_LEN)?;
    m.add("MAX_TERM", tether_core::MAX_TERM)?;
    Ok(())
}
