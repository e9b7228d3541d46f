//! C ABI over `tether-core` (issue 3; not written yet).
