//! Fuzz target: the driver's Node handlers on arbitrary protobuf requests, mounting into a table
//! confined to a temporary directory (checks in `tether_fuzz::node`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tether_fuzz::node::run(data));
