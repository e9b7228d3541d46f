//! Python bindings over `tether-core` (issue 4; not written yet).
