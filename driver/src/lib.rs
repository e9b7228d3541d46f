//! CSI driver over `tether-core` (issue 5; not written yet).
