//! Fuzz target: `Engine::restore_json` on arbitrary bytes (checks in `tether_fuzz::snapshot`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_fuzz::snapshot::run(data));
