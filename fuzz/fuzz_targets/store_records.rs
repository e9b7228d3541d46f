//! Fuzz target: the embedded store's record loader on arbitrary bytes (checks in `tether_fuzz::store`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_fuzz::store::run(data));
