//! Fuzz target: the driver's controller handlers on arbitrary protobuf requests (checks in `tether_fuzz::controller`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_fuzz::controller::run(data));
