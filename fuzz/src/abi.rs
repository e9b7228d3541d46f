//! The C ABI's entry points with arbitrary identifiers (any bytes, NUL and invalid UTF-8
//! included), lengths (NULL pointers with any length), modes and documents: every call returns
//! a status, a refused call leaves the engine's state (its snapshot) as it was, and the state
//! keeps the invariants, read back through the ABI's own snapshot.
//!
//! An input is a sequence of steps: `[op]`, then per identifier `[len]` and that many bytes
//! (a `len` with the high bit set passes NULL with length `len & 0x7f`), then 4 bytes of mode.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::ptr;

use tether::*;

use crate::invariants::check_snapshot;

/// Reads the input as steps.
struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }

    /// An identifier as (pointer, length): the bytes stay in the input, which outlives the call.
    fn id(&mut self) -> Option<(*const u8, usize)> {
        let len = self.byte()?;
        if len & 0x80 != 0 {
            return Some((ptr::null(), usize::from(len & 0x7f)));
        }
        let n = usize::from(len & 0x3f).min(self.0.len());
        let (bytes, rest) = self.0.split_at(n);
        self.0 = rest;
        Some((bytes.as_ptr(), n))
    }

    fn u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        for x in &mut b {
            *x = self.byte().unwrap_or(0);
        }
        u32::from_le_bytes(b)
    }
}

/// The engine's snapshot through the ABI.
fn snapshot(e: *const tether_engine) -> String {
    let mut json: *mut std::ffi::c_char = ptr::null_mut();
    // SAFETY: a live handle and a writable output; the length output may be NULL.
    let status = unsafe { tether_engine_snapshot(e, &mut json, ptr::null_mut()) };
    assert_eq!(status, tether_status::TETHER_OK, "a snapshot never fails");
    // SAFETY: a string from the library, read then freed once.
    let text = unsafe { CStr::from_ptr(json) }.to_str().expect("the snapshot is UTF-8").to_owned();
    unsafe { tether_string_free(json) };
    text
}

/// One call; the status it returned.
fn call(e: *const tether_engine, r: &mut Reader<'_>) -> Option<tether_status> {
    let op = r.byte()?;
    // SAFETY: every pointer is NULL or points into the input with its length, outputs are
    // writable (written only on success, never read), and the handle is live.
    Some(unsafe {
        match op % 6 {
            0 => {
                let ((v, vl), (n, nl), mode) = (r.id()?, r.id()?, r.u32());
                let mut out = MaybeUninit::<tether_publish_result>::uninit();
                tether_engine_publish(
                    e,
                    v,
                    vl,
                    n,
                    nl,
                    mode & 0xff,
                    mode & 0x100 != 0,
                    u64::from(mode >> 9),
                    out.as_mut_ptr(),
                )
            }
            1 => {
                let ((v, vl), (n, nl)) = (r.id()?, r.id()?);
                let mut out = MaybeUninit::<tether_unpublish_result>::uninit();
                tether_engine_unpublish(e, v, vl, n, nl, out.as_mut_ptr())
            }
            2 => {
                let (v, vl) = r.id()?;
                let mut out = MaybeUninit::<tether_unpublish_result>::uninit();
                tether_engine_unpublish_all(e, v, vl, out.as_mut_ptr())
            }
            3 => {
                let (v, vl) = r.id()?;
                let mut forgotten = false;
                tether_engine_forget(e, v, vl, &mut forgotten)
            }
            4 => {
                let (d, dl) = r.id()?;
                tether_engine_restore(e, d, dl)
            }
            _ => tether_engine_advance_clock(e, u64::from(r.u32()) * 1_000_000),
        }
    })
}

pub fn run(data: &[u8]) {
    let mut e: *mut tether_engine = ptr::null_mut();
    // SAFETY: NULL config takes the defaults; `e` is writable.
    let made = unsafe { tether_engine_new_manual_clock(ptr::null(), 1_764_000_000_000_000_000, &mut e) };
    assert_eq!(made, tether_status::TETHER_OK);
    let mut r = Reader(data);
    loop {
        let before = snapshot(e);
        let Some(status) = call(e, &mut r) else { break };
        let after = snapshot(e);
        if status != tether_status::TETHER_OK {
            assert_eq!(before, after, "a refused call ({status:?}) changed the state");
        }
        check_snapshot(&after);
    }
    // SAFETY: the handle is live and freed once.
    unsafe { tether_engine_free(e) };
}
