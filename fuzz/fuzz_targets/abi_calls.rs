//! Fuzz target: the C ABI's entry points on arbitrary identifiers, lengths, modes and documents (checks in `tether_fuzz::abi`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_fuzz::abi::run(data));
