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
fn every_status_is_in_the_header_with_its_value() {
    let h = header();
    let all = [
        tether_status::TETHER_OK,
        tether_status::TETHER_INVALID_ARGUMENT,
        tether_status::TETHER_NULL_POINTER,
        tether_status::TETHER_INVALID_UTF8,
        tether_status::TETHER_NOT_MANUAL_CLOCK,
        tether_status::TETHER_CONFLICT,
        tether_status::TETHER_INCOMPATIBLE,
        tether_status::TETHER_MIGRATION_LIMIT,
        tether_status::TETHER_MIGRATION_TIMED_OUT,
        tether_status::TETHER_BAD_SNAPSHOT,
        tether_status::TETHER_BUFFER_TOO_SMALL,
        tether_status::TETHER_PANIC,
    ];
    for status in all {
        // SAFETY: a static NUL-terminated string.
        let name = unsafe { CStr::from_ptr(tether_status_name(status as u32)) }.to_str().unwrap();
        assert_eq!(format!("{status:?}"), name);
        assert!(h.contains(&format!("  {name} = {},", status as u32)), "{name} missing from the header");
    }
}
