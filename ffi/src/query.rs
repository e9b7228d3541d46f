//! Read-side calls on one volume (grace check, detach record, attachment, epoch) and on the
//! whole engine (list, count, counters).

use std::ffi::c_char;
use std::time::Duration;

use crate::boundary::{guard, handle, read_document, read_value, Id, Out};
use crate::engine::tether_engine;
use crate::json;
use crate::status::{tether_status, FfiError};
use crate::types::{tether_attachment, tether_detach_record, tether_stats};

/// Runs `f` behind the boundary on a handle and one volume id.
///
/// # Safety
/// `engine` is NULL or live; `volume` is valid as [`Id::read`] needs; `f`'s own pointers are
/// valid as its export documents.
unsafe fn on_volume(
    engine: *const tether_engine,
    volume: Id,
    f: impl FnOnce(&tether_engine, &str) -> Result<(), FfiError>,
) -> tether_status {
    // SAFETY: forwarded from the caller.
    guard(|| unsafe { f(handle(engine)?, volume.read("volume id")?) })
}

/// The grace check, writing to `out`.
///
/// # Safety
/// `out` is NULL or writable.
unsafe fn grace(grace_ns: u64, out: *mut bool) -> impl FnOnce(&tether_engine, &str) -> Result<(), FfiError> {
    move |h, v| {
        // SAFETY: promised by the caller of `grace`.
        let out = unsafe { Out::new(out, "out") }?;
        out.write(h.engine.is_within_grace_period(v, Duration::from_nanos(grace_ns))?);
        Ok(())
    }
}

/// Reading one attachment, writing to `found` and `out`.
///
/// # Safety
/// `found` and `out` are NULL or writable.
unsafe fn get(
    found: *mut bool,
    out: *mut tether_attachment,
) -> impl FnOnce(&tether_engine, &str) -> Result<(), FfiError> {
    move |h, v| {
        // SAFETY: promised by the caller of `get`.
        let (found, out) = unsafe { (Out::new(found, "found")?, Out::new(out, "out")?) };
        let attachment = h.engine.get(v)?;
        if let Some(a) = &attachment {
            out.write(a.into());
        }
        found.write(attachment.is_some());
        Ok(())
    }
}

/// Writes to `*out` whether `volume` was last fully detached less than `grace_ns` nanoseconds
/// ago (false for a volume never detached or unknown). Allocates nothing. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_is_within_grace_period(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    grace_ns: u64,
    out: *mut bool,
) -> tether_status {
    // SAFETY: the caller's promises are those `on_volume` and `grace` need. (A closure of its
    // own, so this export's guard is not shared with the `_cstr` one's and the id's kind is
    // known where it is read.)
    unsafe { on_volume(engine, Id::Bytes(volume, volume_len), |h, v| grace(grace_ns, out)(h, v)) }
}

/// `tether_engine_is_within_grace_period` with a NUL-terminated `volume`.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_is_within_grace_period_cstr(
    engine: *const tether_engine,
    volume: *const c_char,
    grace_ns: u64,
    out: *mut bool,
) -> tether_status {
    // SAFETY: the caller's promises are those `on_volume` and `grace` need.
    unsafe { on_volume(engine, Id::CStr(volume), grace(grace_ns, out)) }
}

/// Reads `volume`'s last full detach. `*found` says whether there is one; `*out` is written
/// only when there is. Both must be non-NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_detach_timestamp_get(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    found: *mut bool,
    out: *mut tether_detach_record,
) -> tether_status {
    // SAFETY: the caller promises writable outputs (or NULL), and what `on_volume` needs.
    unsafe {
        on_volume(engine, Id::Bytes(volume, volume_len), |h, v| {
            let (found, out) = (Out::new(found, "found")?, Out::new(out, "out")?);
            let record = h.engine.detach_timestamp(v)?;
            if let Some(r) = &record {
                out.write(r.into());
            }
            found.write(record.is_some());
            Ok(())
        })
    }
}

/// Drops `volume`'s detach record so no later publish can use it for a handoff. `*cleared`
/// (may be NULL) says whether there was one. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_detach_timestamp_clear(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    cleared: *mut bool,
) -> tether_status {
    // SAFETY: the caller promises a writable `cleared` (or NULL), and what `on_volume` needs.
    unsafe {
        on_volume(engine, Id::Bytes(volume, volume_len), |h, v| {
            let out = Out::optional(cleared);
            let was = h.engine.clear_detach_timestamp(v)?;
            if let Some(out) = out {
                out.write(was);
            }
            Ok(())
        })
    }
}

/// Reads `volume`'s attachment. `*found` says whether it is attached; `*out` is written only
/// when it is. Both must be non-NULL. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_get(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    found: *mut bool,
    out: *mut tether_attachment,
) -> tether_status {
    // SAFETY: the caller promises writable outputs (or NULL), and what `on_volume` needs.
    unsafe { on_volume(engine, Id::Bytes(volume, volume_len), get(found, out)) }
}

/// `tether_engine_get` with a NUL-terminated `volume`.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_get_cstr(
    engine: *const tether_engine,
    volume: *const c_char,
    found: *mut bool,
    out: *mut tether_attachment,
) -> tether_status {
    // SAFETY: as for `tether_engine_get`.
    unsafe { on_volume(engine, Id::CStr(volume), get(found, out)) }
}

/// Writes `volume`'s epoch (fencing token) to `*out`: 0 if it was never attached (or was
/// forgotten). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_epoch(
    engine: *const tether_engine,
    volume: *const u8,
    volume_len: usize,
    out: *mut u64,
) -> tether_status {
    // SAFETY: the caller promises a writable `out` (or NULL), and what `on_volume` needs.
    unsafe {
        on_volume(engine, Id::Bytes(volume, volume_len), |h, v| {
            let out = Out::new(out, "out")?;
            out.write(h.engine.epoch(v)?);
            Ok(())
        })
    }
}

/// Every attachment as a JSON array sorted by volume, in `*out_json`, an owned NUL-terminated
/// string the caller frees with `tether_string_free`; its length (without the NUL) goes to
/// `*out_len` unless NULL. Each element:
/// `{"volume":"v","mode":"RWO"|"RWX","readonly":false,"nodes":["a","b"],"epoch":2,
///   "since_unix_ns":1,"migration":null|{"elapsed_ns":1,"timeout_ns":1},"admitted":[1,2]}`
/// (`admitted`: the admission epoch of each node, in the same order). Fields are only ever
/// appended.
/// Thread-safe; not one point-in-time cut across volumes while others write.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_list(
    engine: *const tether_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> tether_status {
    // SAFETY: the caller promises a live handle and writable outputs, each possibly NULL.
    unsafe { read_document(engine, out_json, out_len, |h| json::attachments(&h.engine.list())) }
}

/// Writes how many volumes are attached now to `*out`. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_attached_count(engine: *const tether_engine, out: *mut usize) -> tether_status {
    // SAFETY: the caller promises a live handle and a writable `out`, each possibly NULL.
    unsafe { read_value(engine, out, |h| h.engine.attached_count()) }
}

/// Writes a reading of every counter to `*out`. Lock-free; thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_stats(engine: *const tether_engine, out: *mut tether_stats) -> tether_status {
    // SAFETY: the caller promises a live handle and a writable `out`, each possibly NULL.
    unsafe { read_value(engine, out, |h| h.engine.stats().into()) }
}
