//! Calls on what keeps epochs fencing across changes of leader and volume lifetimes: a
//! volume's fence, the controller term, the re-fence a new leader runs, and forgetting a
//! deleted volume's record.

use std::ffi::c_char;

use crate::boundary::{guard, handle, read_document, read_value, Id, Out};
use crate::engine::tether_engine;
use crate::fence::tether_fence;
use crate::fill;
use crate::json;
use crate::status::tether_status;

/// Reads `volume`'s fence now. `*found` says whether the engine tracks the volume at all; `*out`
/// is written only when it does. A tracked volume attached nowhere has a fence with no node
/// (`node_count` 0) and its epoch, which a target must still apply; an untracked one (never
/// attached, or forgotten) has none. Both outputs must be non-NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_fence(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    found: *mut bool,
    out: *mut tether_fence,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle, readable id and writable outputs, each
        // possibly NULL.
        let (h, volume, found, out) = unsafe {
            (
                handle(engine)?,
                Id::Bytes(volume, volume_len).read("volume id")?,
                Out::new(found, "found")?,
                Out::new(out, "out")?,
            )
        };
        let fence = h.engine.fence(volume)?;
        if let Some(f) = &fence {
            // SAFETY: `fill` hands over the caller's output, zeroed.
            out.fill(|p| unsafe { fill::fence(p, f) });
        }
        found.write(fence.is_some());
        Ok(())
    })
}

/// Raises the controller term to `term` (a term never goes down: a lower one changes nothing)
/// and writes the term in force to `*in_force` unless it is NULL. Every change made after this
/// returns issues an epoch of at least `term << 32`. A term above `UINT32_MAX` is refused with
/// `TETHER_INVALID_ARGUMENT` and nothing changes. A new leader calls this with its term, then
/// `tether_engine_refence`, before it serves. Lock-free; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_set_term(
    engine: *const tether_engine,
    term: u64,
    in_force: *mut u64,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle (or NULL) and a writable output (or NULL).
        let (h, out) = unsafe { (handle(engine)?, Out::optional(in_force)) };
        let now = h.engine.set_term(term)?;
        if let Some(out) = out {
            out.write(now);
        }
        Ok(())
    })
}

/// Writes the current controller term to `*out` (0 until one is set). Lock-free; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_term(engine: *const tether_engine, out: *mut u64) -> tether_status {
    // SAFETY: the caller promises a live handle and a writable `out`, each possibly NULL.
    unsafe { read_value(engine, out, |h| h.engine.term()) }
}

/// Re-fences every volume the engine tracks at the current term: each epoch rises to at least
/// `term << 32`; nodes and their admission epochs stay. Detached volumes are re-fenced too (an
/// old leader could still attach them). Hand every returned fence to the storage target before
/// serving, so any late update of the old leader is refused there.
///
/// The fences go to `*out_json` as a JSON array sorted by volume (owned; free with
/// `tether_string_free`; length without the NUL to `*out_len` unless NULL). Each element:
/// `{"volume":"v","fence":{"epoch":4294967297,"mode":"RWO"|"RWX","readonly":false,
///   "nodes":[{"node":"a","admitted_at":1}]}}`.
/// A volume whose epoch is already at its maximum cannot be re-fenced and is left out.
/// Thread-safe (each map shard is locked in turn, not all at once).
#[no_mangle]
pub unsafe extern "C" fn tether_engine_refence(
    engine: *const tether_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> tether_status {
    // SAFETY: the caller promises a live handle and writable outputs, each possibly NULL.
    unsafe { read_document(engine, out_json, out_len, |h| json::volume_fences(&h.engine.refence())) }
}

/// Drops the record (epoch, detach record) of `volume`, which must be attached nowhere; the
/// driver calls it when the volume is deleted. `*forgotten` (may be NULL) says whether there
/// was a record. A volume of the same name made later still starts above the forgotten epoch.
/// An attached volume is refused with `TETHER_STILL_ATTACHED` (details: its nodes) and kept.
/// Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_forget(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    forgotten: *mut bool,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle, a readable id and a writable output, each
        // possibly NULL.
        let (h, volume, out) =
            unsafe { (handle(engine)?, Id::Bytes(volume, volume_len).read("volume id")?, Out::optional(forgotten)) };
        let was = h.engine.forget(volume)?;
        if let Some(out) = out {
            out.write(was);
        }
        Ok(())
    })
}
