//! What each fuzz target does with one input, and the engine invariants it checks afterwards:
//! shared by the libFuzzer binaries and the stable replay test.

pub mod abi;
pub mod controller;
pub mod invariants;
pub mod node;
pub mod snapshot;
pub mod store;
