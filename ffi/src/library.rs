//! Library-wide calls: the version, freeing returned strings, and reading the calling
//! thread's last error.

use std::ffi::{c_char, CStr, CString};

use crate::boundary::{guard_value, with_last_error, Out};
use crate::status::tether_status;
use crate::types::tether_error_info;

/// The library's major version; the header and the library agree on all three parts.
pub const TETHER_VERSION_MAJOR: u32 = 0;
/// The library's minor version.
pub const TETHER_VERSION_MINOR: u32 = 1;
/// The library's patch version.
pub const TETHER_VERSION_PATCH: u32 = 0;

const fn parse(s: &str) -> u32 {
    let (bytes, mut i, mut n) = (s.as_bytes(), 0, 0);
    while i < bytes.len() {
        n = n * 10 + (bytes[i] - b'0') as u32;
        i += 1;
    }
    n
}

// The header's macros are literals (cbindgen copies them); these make a version bump in
// Cargo.toml fail the build until they, and so the committed header, follow.
const _: () = assert!(
    TETHER_VERSION_MAJOR == parse(env!("CARGO_PKG_VERSION_MAJOR"))
        && TETHER_VERSION_MINOR == parse(env!("CARGO_PKG_VERSION_MINOR"))
        && TETHER_VERSION_PATCH == parse(env!("CARGO_PKG_VERSION_PATCH")),
    "the TETHER_VERSION_* constants must match the crate version in Cargo.toml"
);

static VERSION: &CStr = match CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
    Ok(v) => v,
    Err(_) => panic!("the version holds no NUL"),
};

/// The library's version, e.g. "0.1.0": a static string, never freed. Compare with
/// `TETHER_VERSION_STRING` to detect a header/library mismatch. Thread-safe.
#[no_mangle]
pub extern "C" fn tether_version() -> *const c_char {
    VERSION.as_ptr()
}

/// The name of a status code, e.g. "TETHER_CONFLICT", or "TETHER_UNKNOWN_STATUS" for a value
/// that is not one: a static string, never freed. Thread-safe.
#[no_mangle]
pub extern "C" fn tether_status_name(status: u32) -> *const c_char {
    tether_status::from_code(status).map_or(c"TETHER_UNKNOWN_STATUS", tether_status::name).as_ptr()
}

/// Frees a string this library returned (`tether_engine_list`, `tether_engine_snapshot`,
/// `tether_engine_reconcile*`, `tether_engine_refence`, `tether_last_error`). NULL is ignored. Each string must be
/// freed exactly once, with this function only (not `free`).
#[no_mangle]
pub unsafe extern "C" fn tether_string_free(s: *mut c_char) {
    guard_value((), || {
        if !s.is_null() {
            // SAFETY: the caller promises a string from this library, freed once: it came from
            // `CString::into_raw`.
            drop(unsafe { CString::from_raw(s) });
        }
    });
}

/// A copy of the calling thread's last error message as an owned string (free it with
/// `tether_string_free`), or NULL if no call on this thread has failed yet.
///
/// The last error belongs to the OS thread that made the failing call and stays until the
/// next failure on that thread; successful calls leave it as it was, so read it right after
/// the status says a call failed. Go callers must read it in the same cgo call as the failing
/// one (a C helper in the cgo preamble), or with the goroutine locked to its thread.
#[no_mangle]
pub extern "C" fn tether_last_error() -> *mut c_char {
    guard_value(std::ptr::null_mut(), || {
        with_last_error(|e| e.map_or(std::ptr::null_mut(), |e| e.message.clone().into_raw()))
    })
}

/// Copies the calling thread's last error message, NUL-terminated, into `buf` of `buf_len`
/// bytes; the message length (without the NUL) goes to `*out_len` unless it is NULL. With no
/// error yet, the message is empty.
///
/// Returns `TETHER_BUFFER_TOO_SMALL`, writing nothing into `buf`, when `buf_len` is less than
/// the length plus one (so `buf` NULL with `buf_len` 0 asks for the length), and
/// `TETHER_NULL_POINTER` for `buf` NULL with `buf_len` > 0. This function never changes the
/// last error itself. See `tether_last_error` for which thread's error this is.
#[no_mangle]
pub unsafe extern "C" fn tether_last_error_copy(
    buf: *mut c_char,
    buf_len: usize,
    out_len: *mut usize,
) -> tether_status {
    guard_value(tether_status::TETHER_PANIC, || {
        with_last_error(|e| {
            let msg = e.map_or(&[][..], |e| e.message.as_bytes());
            // SAFETY: the caller promises `out_len` is NULL or writable.
            if let Some(out) = unsafe { Out::optional(out_len) } {
                out.write(msg.len());
            }
            if buf.is_null() && buf_len > 0 {
                return tether_status::TETHER_NULL_POINTER;
            }
            if buf_len <= msg.len() {
                return tether_status::TETHER_BUFFER_TOO_SMALL;
            }
            // SAFETY: `buf` is non-NULL here (buf_len > msg.len() >= 0) and the caller promises
            // `buf_len` writable bytes; the copy and the NUL fit in them and cannot overlap our
            // own message.
            unsafe {
                std::ptr::copy_nonoverlapping(msg.as_ptr(), buf.cast::<u8>(), msg.len());
                buf.add(msg.len()).write(0);
            }
            tether_status::TETHER_OK
        })
    })
}

/// Writes the details of the calling thread's last error (status, nodes involved, existing
/// access, migration times) to `*out`; with no error yet, a zeroed record with status
/// `TETHER_OK`. Returns `TETHER_NULL_POINTER` for a NULL `out`. Never changes the last error.
/// See `tether_last_error` for which thread's error this is.
#[no_mangle]
pub unsafe extern "C" fn tether_last_error_info(out: *mut tether_error_info) -> tether_status {
    guard_value(tether_status::TETHER_PANIC, || {
        // SAFETY: the caller promises `out` is NULL or writable.
        let Some(out) = (unsafe { Out::optional(out) }) else { return tether_status::TETHER_NULL_POINTER };
        out.write(with_last_error(|e| e.map_or_else(tether_error_info::default, |e| e.info)));
        tether_status::TETHER_OK
    })
}

/// Panics inside the panic boundary on purpose and returns `TETHER_PANIC`, with a last error
/// saying so: lets a consumer check that a library panic reaches it as a status rather than
/// killing its process. Has no other effect. Thread-safe.
///
/// A test hook, not part of the public C ABI: only a library built with the `test-hooks` feature
/// has it, and include/tether.h leaves it out (ffi/cbindgen.toml).
#[cfg(feature = "test-hooks")]
#[no_mangle]
pub extern "C" fn tether_debug_panic() -> tether_status {
    crate::boundary::guard(|| panic!("tether_debug_panic was called; this panic is deliberate"))
}
