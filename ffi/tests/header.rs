//! The committed header against the crate: its version macros match Cargo.toml's version, and
//! every status code the library names is in the header with the same value.

use std::ffi::CStr;

use tether::{tether_status, tether_status_name, tether_version};

fn header() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../include/tether.h");
    std::fs::read_to_string(path).expect("include/tether.h is committed")
}

fn define(header: &str, name: &str) -> String {
    let prefix = format!("#define {name} ");
    header
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{name} is not defined in include/tether.h"))
        .trim()
        .to_owned()
}

#[test]
#[cfg_attr(miri, ignore = "reads a file, which Miri's isolation forbids")]
fn version_macros_match_cargo_toml() {
    let h = header();
    assert_eq!(define(&h, "TETHER_VERSION_MAJOR"), env!("CARGO_PKG_VERSION_MAJOR"));
    assert_eq!(define(&h, "TETHER_VERSION_MINOR"), env!("CARGO_PKG_VERSION_MINOR"));
    assert_eq!(define(&h, "TETHER_VERSION_PATCH"), env!("CARGO_PKG_VERSION_PATCH"));
    // SAFETY: a static NUL-terminated string.
    assert_eq!(unsafe { CStr::from_ptr(tether_version()) }.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

#[test]
#[cfg_attr(miri, ignore = "reads a file, which Miri's isolation forbids")]
fn every_status_the_library_names_is_in_the_header_with_its_code() {
    let h = header();
    let body =
        h.split("enum tether_status").nth(1).and_then(|rest| rest.split("};").next()).expect("enum tether_status");
    let in_header = body.lines().filter(|l| l.trim_start().starts_with("TETHER_")).count();
    let mut named = 0;
    for code in 0..1000u32 {
        // SAFETY: a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(tether_status_name(code)) }.to_str().unwrap();
        if name != "TETHER_UNKNOWN_STATUS" {
            named += 1;
            assert!(h.contains(&format!("  {name} = {code},")), "{name} = {code} is missing from the header");
        }
    }
    assert_eq!(named, in_header, "a status is in the header but the library has no name for it");
    assert_eq!(format!("{:?}", tether_status::TETHER_PANIC), "TETHER_PANIC");
}
