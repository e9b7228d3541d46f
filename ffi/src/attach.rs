//! The calls that change attachments: publish, unpublish and compare-and-clear, each taking
//! identifiers as (pointer, length) pairs, with `_cstr` twins for NUL-terminated strings.

use std::ffi::c_char;
use std::time::Duration;

use tether_core::{Access, AccessMode};

use crate::boundary::{guard, handle, Id, Out};
use crate::engine::tether_engine;
use crate::fill;
use crate::status::{tether_status, FfiError};
use crate::types::{tether_publish_result, tether_stale_result, tether_unpublish_result};

/// The access a caller asked for; `mode` comes from C as a plain integer.
pub(crate) fn access(mode: u32, readonly: bool) -> Result<Access, FfiError> {
    let mode = match mode {
        0 => AccessMode::Rwo,
        1 => AccessMode::Rwx,
        other => {
            return Err(FfiError::BadArgument {
                what: "access mode",
                problem: format!("{other} is not a tether_access_mode (TETHER_RWO = 0, TETHER_RWX = 1)").into(),
            })
        }
    };
    Ok(Access { mode, readonly })
}

/// Publishes behind the boundary.
///
/// # Safety
/// `engine` is NULL or live; the ids are valid as [`Id::read`] needs; `out` is NULL or writable.
unsafe fn publish(
    engine: *const tether_engine,
    (volume, node): (Id, Id),
    (mode, readonly): (u32, bool),
    migration_timeout_ns: u64,
    out: *mut tether_publish_result,
) -> tether_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (h, volume, node, out) =
            unsafe { (handle(engine)?, volume.read("volume id")?, node.read("node id")?, Out::optional(out)) };
        let timeout = (migration_timeout_ns != 0).then(|| Duration::from_nanos(migration_timeout_ns));
        let outcome = h.engine.publish(volume, node, access(mode, readonly)?, timeout)?;
        if let Some(out) = out {
            // SAFETY: `fill` hands over the caller's output, zeroed.
            out.fill(|p| unsafe { fill::publish_result(p, &outcome) });
        }
        Ok(())
    })
}

/// Attaches `volume` to `node` following the publish table of DESIGN.md.
///
/// `volume`/`node`: `*_len` bytes of UTF-8 (no terminator needed); NULL only with length 0.
/// `mode`: a `tether_access_mode`. `migration_timeout_ns`: the timeout if this starts a
/// migration (clamped into 30 s ..= 1 h), or 0 for the engine's default.
/// `out`: receives the outcome on success; may be NULL.
///
/// Refusals: `TETHER_CONFLICT`, `TETHER_INCOMPATIBLE`, `TETHER_MIGRATION_LIMIT`,
/// `TETHER_MIGRATION_TIMED_OUT`, `TETHER_EPOCH_EXHAUSTED` (details in
/// `tether_last_error_info`), and argument errors.
/// A refused call changes nothing. Thread-safe; inputs are only read during the call.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_publish(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    node: *const u8,
    node_len: usize,
    mode: u32,
    readonly: bool,
    migration_timeout_ns: u64,
    out: *mut tether_publish_result,
) -> tether_status {
    let ids = (Id::Bytes(volume, volume_len), Id::Bytes(node, node_len));
    // SAFETY: the caller's promises are those `publish` needs.
    unsafe { publish(engine, ids, (mode, readonly), migration_timeout_ns, out) }
}

/// `tether_engine_publish` with NUL-terminated `volume` and `node`.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_publish_cstr(
    engine: *const tether_engine,
    volume: *const c_char,
    node: *const c_char,
    mode: u32,
    readonly: bool,
    migration_timeout_ns: u64,
    out: *mut tether_publish_result,
) -> tether_status {
    // SAFETY: the caller's promises are those `publish` needs.
    unsafe { publish(engine, (Id::CStr(volume), Id::CStr(node)), (mode, readonly), migration_timeout_ns, out) }
}

/// Unpublishes behind the boundary; `node` None means every node.
///
/// # Safety
/// As for [`publish`].
unsafe fn unpublish(
    engine: *const tether_engine,
    volume: Id,
    node: Option<Id>,
    out: *mut tether_unpublish_result,
) -> tether_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (h, volume, out) = unsafe { (handle(engine)?, volume.read("volume id")?, Out::optional(out)) };
        // SAFETY: forwarded from the caller.
        let node = node.map(|n| unsafe { n.read("node id") }).transpose()?;
        let outcome = h.engine.unpublish(volume, node)?;
        if let Some(out) = out {
            // SAFETY: `fill` hands over the caller's output, zeroed.
            out.fill(|p| unsafe { fill::unpublish_result(p, &outcome) });
        }
        Ok(())
    })
}

/// Detaches `volume` from `node` following the unpublish table of DESIGN.md. Idempotent: a
/// volume not attached there gives `TETHER_UNPUBLISHED_NOT_ATTACHED` and `TETHER_OK`.
/// Identifiers as for `tether_engine_publish`. `out` receives the outcome on success; may be
/// NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_unpublish(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    node: *const u8,
    node_len: usize,
    out: *mut tether_unpublish_result,
) -> tether_status {
    // SAFETY: the caller's promises are those `unpublish` needs.
    unsafe { unpublish(engine, Id::Bytes(volume, volume_len), Some(Id::Bytes(node, node_len)), out) }
}

/// `tether_engine_unpublish` with NUL-terminated `volume` and `node`.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_unpublish_cstr(
    engine: *const tether_engine,
    volume: *const c_char,
    node: *const c_char,
    out: *mut tether_unpublish_result,
) -> tether_status {
    // SAFETY: the caller's promises are those `unpublish` needs.
    unsafe { unpublish(engine, Id::CStr(volume), Some(Id::CStr(node)), out) }
}

/// Detaches `volume` from every node (CSI allows an unpublish with no node id): the outcome is
/// `DETACHED` with every node, or `NOT_ATTACHED`. `out` may be NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_unpublish_all(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    out: *mut tether_unpublish_result,
) -> tether_status {
    // SAFETY: the caller's promises are those `unpublish` needs.
    unsafe { unpublish(engine, Id::Bytes(volume, volume_len), None, out) }
}

/// Clears a stale attachment behind the boundary.
///
/// # Safety
/// As for [`publish`].
unsafe fn clear_stale(
    engine: *const tether_engine,
    volume: Id,
    node: Id,
    out: *mut tether_stale_result,
) -> tether_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (h, volume, node, out) =
            unsafe { (handle(engine)?, volume.read("volume id")?, node.read("node id")?, Out::optional(out)) };
        let outcome = h.engine.clear_stale(volume, node)?;
        if let Some(out) = out {
            // SAFETY: `fill` hands over the caller's output, zeroed.
            out.fill(|p| unsafe { fill::stale_result(p, &outcome) });
        }
        Ok(())
    })
}

/// Compare-and-clear: removes `node` from `volume` only if it still holds it, so it can never
/// undo a newer attachment; writes no detach record. `out` may be NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_clear_stale(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    node: *const u8,
    node_len: usize,
    out: *mut tether_stale_result,
) -> tether_status {
    // SAFETY: the caller's promises are those `clear_stale` needs.
    unsafe { clear_stale(engine, Id::Bytes(volume, volume_len), Id::Bytes(node, node_len), out) }
}

/// `tether_engine_clear_stale` with NUL-terminated `volume` and `node`.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_clear_stale_cstr(
    engine: *const tether_engine,
    volume: *const c_char,
    node: *const c_char,
    out: *mut tether_stale_result,
) -> tether_status {
    // SAFETY: the caller's promises are those `clear_stale` needs.
    unsafe { clear_stale(engine, Id::CStr(volume), Id::CStr(node), out) }
}
