//! Fuzz target: the embedded store's import of an old-layout volume record on arbitrary bytes
//! (checks in `tether_fuzz::store`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_fuzz::store::run(data));
