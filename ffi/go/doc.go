// Package tether is the Go binding of Tether, the attachment engine for Kubernetes storage
// drivers: it decides, per volume and without a global lock, whether a volume may attach to a
// node, following the contract of DESIGN.md.
//
// An [Engine] wraps the Rust library through its C ABI (include/tether.h), linked statically
// from target/release (build it with `cargo build -p tether-ffi --release`). Every method is
// safe to call from any number of goroutines at once. Refusals are typed errors: use
// errors.As to get a [*ConflictError] and the node that holds the volume, or errors.Is with
// the sentinels such as [ErrConflict]. Identifiers cross into the library without a copy.
//
// Tests make an engine with [WithManualClock] and move its time with [Engine.Advance], so
// they never sleep.
package tether
