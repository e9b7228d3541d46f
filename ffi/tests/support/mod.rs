//! What the ABI test files share: an engine on a manual clock, a publish that returns its
//! result, and readers of the strings the library hands out.
#![allow(dead_code)] // each test file uses its own part of it

use std::ffi::{c_char, CStr};
use std::mem::MaybeUninit;
use std::ptr;

use tether::*;

pub const SEC: u64 = 1_000_000_000;
pub const WALL0: u64 = 1_764_151_482_000_000_000;

pub struct Engine(pub *mut tether_engine);

impl Engine {
    pub fn manual() -> Self {
        let mut e = ptr::null_mut();
        // SAFETY: NULL config is allowed; `e` is a valid out slot.
        assert_eq!(unsafe { tether_engine_new_manual_clock(ptr::null(), WALL0, &raw mut e) }, tether_status::TETHER_OK);
        Self(e)
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        // SAFETY: made by tether_engine_new_manual_clock, freed once.
        unsafe { tether_engine_free(self.0) }
    }
}

pub fn publish(
    e: *const tether_engine,
    volume: &str,
    node: &str,
    mode: u32,
) -> Result<tether_publish_result, tether_status> {
    let mut out = MaybeUninit::<tether_publish_result>::uninit();
    // SAFETY: live engine, ids valid for their lengths, `out` writable.
    let st = unsafe {
        tether_engine_publish(
            e,
            volume.as_ptr(),
            volume.len(),
            node.as_ptr(),
            node.len(),
            mode,
            false,
            0,
            out.as_mut_ptr(),
        )
    };
    // SAFETY: written on success, which is the only case read.
    if st == tether_status::TETHER_OK {
        Ok(unsafe { out.assume_init() })
    } else {
        Err(st)
    }
}

pub fn last_error() -> String {
    let p = tether_last_error();
    assert!(!p.is_null());
    // SAFETY: a NUL-terminated string from the library, freed once below.
    let text = unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned();
    // SAFETY: as above.
    unsafe { tether_string_free(p) };
    text
}

pub fn take_string(p: *mut c_char) -> String {
    // SAFETY: a NUL-terminated string from the library, freed once below.
    let text = unsafe { CStr::from_ptr(p) }.to_str().expect("JSON is UTF-8").to_owned();
    // SAFETY: as above.
    unsafe { tether_string_free(p) };
    text
}

/// The calling thread's last error details.
pub fn error_info() -> tether_error_info {
    let mut info = MaybeUninit::<tether_error_info>::uninit();
    // SAFETY: writable out slot.
    assert_eq!(unsafe { tether_last_error_info(info.as_mut_ptr()) }, tether_status::TETHER_OK);
    // SAFETY: written on OK.
    unsafe { info.assume_init() }
}
