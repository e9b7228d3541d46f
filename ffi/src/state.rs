//! Whole-engine state calls: reconcile against the live nodes, snapshot to JSON, restore.

use std::ffi::c_char;

use crate::boundary::{give_string, guard, handle, read_document, str_array, text, Id, Out};
use crate::engine::tether_engine;
use crate::json;
use crate::status::{tether_status, FfiError};
use crate::types::tether_str;

fn reconcile(h: &tether_engine, live: &[&str], out: Out<*mut c_char>, len: Option<Out<usize>>) -> Result<(), FfiError> {
    let report = h.engine.reconcile(live)?;
    give_string(json::report(&report), out, len)
}

/// One reconcile pass against the nodes that exist now: `live_nodes` is an array of `count`
/// node names (NULL only with `count` 0). Nodes missing for at least the grace period lose
/// their attachments. An invalid name refuses the whole call and changes nothing.
///
/// The report goes to `*out_json` (owned; free with `tether_string_free`; length without the
/// NUL to `*out_len` unless NULL):
/// `{"cleared":[{"volume":"v","node":"n","epoch":2,"fence":{..}}],
///   "pending":[{"node":"n","missing_since_unix_ns":1,"clears_in_ns":1,"volumes":1}],
///   "returned":["n"],
///   "timed_out_migrations":[{"volume":"v","source":"a","target":"b","elapsed_ns":1,"timeout_ns":1}]}`;
/// each cleared entry's `fence` is the volume's fence after the clear, shaped as in
/// `tether_engine_refence`, for the storage target.
/// Thread-safe (reconciles, snapshots and restores run one at a time).
#[no_mangle]
pub unsafe extern "C" fn tether_engine_reconcile(
    engine: *const tether_engine,
    live_nodes: *const tether_str,
    count: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle, `count` readable names and writable
        // outputs, each possibly NULL.
        let (h, out, len) = unsafe { (handle(engine)?, Out::new(out_json, "out_json")?, Out::optional(out_len)) };
        // SAFETY: as above.
        let live = unsafe { str_array(live_nodes, count, "live node names") }?;
        reconcile(h, &live, out, len)
    })
}

/// `tether_engine_reconcile` with the names packed back to back: `names` holds `names_len`
/// bytes, the concatenation of `count` names whose lengths are `lens[0..count]` (they must sum
/// to `names_len`). Made for callers, such as Go, whose own memory may not hold pointers that
/// C reads.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_reconcile_packed(
    engine: *const tether_engine,
    names: *const u8,
    names_len: usize,
    lens: *const usize,
    count: usize,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a live handle, readable inputs of the given sizes and
        // writable outputs, each possibly NULL.
        let (h, out, len, all) = unsafe {
            (handle(engine)?, Out::new(out_json, "out_json")?, Out::optional(out_len), text(names, names_len, "names")?)
        };
        // The lengths are read as a byte string of `count` words, checked like any other input.
        if lens.is_null() && count > 0 {
            return Err(FfiError::Null("lens"));
        }
        let lens: &[usize] = if count == 0 {
            &[]
        } else {
            if count > isize::MAX as usize / std::mem::size_of::<usize>() {
                return Err(FfiError::BadArgument { what: "count", problem: format!("{count} is too large").into() });
            }
            // SAFETY: non-NULL, size fits an object, and the caller promises `count` readable words.
            unsafe { std::slice::from_raw_parts(lens, count) }
        };
        reconcile(h, &split(all, lens)?, out, len)
    })
}

/// Cuts `all` into consecutive names of the given lengths, refusing lengths that do not add up
/// or that cut a character in two.
fn split<'a>(all: &'a str, lens: &[usize]) -> Result<Vec<&'a str>, FfiError> {
    let mut rest = all;
    let mut names = Vec::with_capacity(lens.len());
    for (i, &n) in lens.iter().enumerate() {
        let bad = |problem: String| FfiError::BadArgument { what: "lens", problem: problem.into() };
        if n > rest.len() {
            return Err(bad(format!("name {i} needs {n} bytes but only {} remain in names", rest.len())));
        }
        if !rest.is_char_boundary(n) {
            return Err(bad(format!("name {i} ends inside a UTF-8 character")));
        }
        let (name, tail) = rest.split_at(n);
        names.push(name);
        rest = tail;
    }
    if !rest.is_empty() {
        return Err(FfiError::BadArgument {
            what: "lens",
            problem: format!("the lengths leave {} bytes of names unused", rest.len()).into(),
        });
    }
    Ok(names)
}

/// The whole state (attachments with their admission epochs, detach records, missing-node
/// marks, the term) as the versioned JSON document of DESIGN.md (format version 2), in
/// `*out_json` (owned; free with `tether_string_free`; length without the NUL to `*out_len`
/// unless NULL). Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_snapshot(
    engine: *const tether_engine,
    out_json: *mut *mut c_char,
    out_len: *mut usize,
) -> tether_status {
    // SAFETY: the caller promises a live handle and writable outputs, each possibly NULL.
    unsafe { read_document(engine, out_json, out_len, |h| h.engine.snapshot_json()) }
}

/// Restores from JSON text of `json_len` bytes; see [`tether_engine_restore`].
///
/// # Safety
/// `engine` is NULL or live; `json` is valid as [`Id::read`] needs.
unsafe fn restore(engine: *const tether_engine, json: Id) -> tether_status {
    guard(|| {
        // SAFETY: forwarded from the caller.
        let (h, json) = unsafe { (handle(engine)?, json.read("snapshot JSON")?) };
        Ok(h.engine.restore_json(json)?)
    })
}

/// Replaces the whole state with a snapshot document's: `json_len` bytes of UTF-8 JSON. The
/// document is checked completely first; a malformed, unknown-version or inconsistent one is
/// refused with `TETHER_BAD_SNAPSHOT` and nothing changes. Version 1 documents still restore
/// (admission epochs taken as the volume's epoch). The restore is atomic (every concurrent call
/// sees the state wholly before or wholly after it) and never lowers an epoch: a document's
/// epoch below the live one is raised above it. Counters are kept. Meant for start-up: a
/// publish racing with it may be replaced by the restored state.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_restore(
    engine: *const tether_engine,
    json: *const u8,
    json_len: usize,
) -> tether_status {
    // SAFETY: the caller's promises are those `restore` needs.
    unsafe { restore(engine, Id::Bytes(json, json_len)) }
}

/// `tether_engine_restore` with a NUL-terminated document.
#[no_mangle]
pub unsafe extern "C" fn tether_engine_restore_cstr(
    engine: *const tether_engine,
    json: *const c_char,
) -> tether_status {
    // SAFETY: the caller's promises are those `restore` needs.
    unsafe { restore(engine, Id::CStr(json)) }
}

#[cfg(test)]
mod tests {
    use super::split;
    use crate::status::tether_status;

    #[test]
    fn packed_names_split_exactly_or_not_at_all() {
        assert_eq!(split("ab-cdé", &[2, 1, 4]).unwrap(), ["ab", "-", "cdé"]);
        assert_eq!(split("", &[]).unwrap(), Vec::<&str>::new());
        for lens in [&[2, 2][..], &[1, 1], &[7], &[4]] {
            let err = split("abcé", lens).unwrap_err();
            assert_eq!(err.status(), tether_status::TETHER_INVALID_ARGUMENT, "{lens:?}");
        }
    }
}
