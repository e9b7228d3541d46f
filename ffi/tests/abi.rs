//! The C ABI called from Rust exactly as C calls it: raw pointers, lengths, out-parameters.
//! Small and deterministic (manual clocks), so Miri runs all of it and checks every unsafe
//! block on the way.

use std::ffi::CStr;
use std::mem::MaybeUninit;
use std::ptr;

use tether::*;

mod support;
use support::*;

#[test]
fn publish_outcomes_and_refusals_map_to_statuses() {
    let e = Engine::manual();
    let first = publish(e.0, "pvc-1", "a", 0).unwrap();
    assert_eq!((first.kind, first.epoch), (tether_published::TETHER_PUBLISHED_ATTACHED, 1));
    assert_eq!(publish(e.0, "pvc-1", "a", 0).unwrap().kind, tether_published::TETHER_PUBLISHED_ALREADY_ATTACHED);
    assert_eq!(publish(e.0, "pvc-1", "b", 0), Err(tether_status::TETHER_CONFLICT));

    let mut info = MaybeUninit::<tether_error_info>::uninit();
    // SAFETY: writable out slot.
    assert_eq!(unsafe { tether_last_error_info(info.as_mut_ptr()) }, tether_status::TETHER_OK);
    // SAFETY: written on OK.
    let info = unsafe { info.assume_init() };
    assert_eq!((info.status, info.node_count, info.nodes[0].as_str()), (tether_status::TETHER_CONFLICT, 1, "a"));
    assert!(last_error().contains("unpublish it from node \"a\""));

    assert_eq!(publish(e.0, "pvc-1", "a", 1), Err(tether_status::TETHER_INCOMPATIBLE));
    assert_eq!(publish(e.0, "pvc-1", "a", 9), Err(tether_status::TETHER_INVALID_ARGUMENT));
}

#[test]
fn migration_outcomes_carry_both_nodes() {
    let e = Engine::manual();
    publish(e.0, "vm", "src", 1).unwrap();
    let started = publish(e.0, "vm", "dst", 1).unwrap();
    assert_eq!(started.kind, tether_published::TETHER_PUBLISHED_MIGRATION_STARTED);
    assert_eq!((started.other_node.as_str(), started.migration_timeout_ns), ("src", 300 * SEC));
    assert_eq!(publish(e.0, "vm", "third", 1), Err(tether_status::TETHER_MIGRATION_LIMIT));
    // SAFETY: live manual-clock engine.
    assert_eq!(unsafe { tether_engine_advance_clock(e.0, 301 * SEC) }, tether_status::TETHER_OK);
    assert_eq!(publish(e.0, "vm", "third", 1), Err(tether_status::TETHER_MIGRATION_TIMED_OUT));

    let mut out = MaybeUninit::<tether_unpublish_result>::uninit();
    // SAFETY: live engine, ids valid, out writable.
    let st = unsafe { tether_engine_unpublish(e.0, b"vm".as_ptr(), 2, b"src".as_ptr(), 3, out.as_mut_ptr()) };
    assert_eq!(st, tether_status::TETHER_OK);
    // SAFETY: written on OK.
    let out = unsafe { out.assume_init() };
    assert_eq!(out.kind, tether_unpublished::TETHER_UNPUBLISHED_MIGRATION_COMPLETED);
    assert_eq!((out.nodes[0].as_str(), out.nodes[1].as_str(), out.duration_ns), ("src", "dst", 301 * SEC));
}

#[test]
fn hostile_inputs_are_refused_and_outputs_untouched() {
    let e = Engine::manual();
    let mut within = MaybeUninit::new(true);
    let bad = [b'v', 0xff];
    // SAFETY: every pointer is NULL or valid for its stated length.
    unsafe {
        assert_eq!(
            tether_engine_is_within_grace_period(ptr::null(), b"v".as_ptr(), 1, SEC, within.as_mut_ptr()),
            tether_status::TETHER_NULL_POINTER
        );
        assert_eq!(
            tether_engine_is_within_grace_period(e.0, ptr::null(), 4, SEC, within.as_mut_ptr()),
            tether_status::TETHER_NULL_POINTER
        );
        assert_eq!(
            tether_engine_is_within_grace_period(e.0, bad.as_ptr(), 2, SEC, within.as_mut_ptr()),
            tether_status::TETHER_INVALID_UTF8
        );
        assert_eq!(
            tether_engine_is_within_grace_period(e.0, ptr::null(), 0, SEC, within.as_mut_ptr()),
            tether_status::TETHER_INVALID_ARGUMENT
        );
        assert_eq!(
            tether_engine_is_within_grace_period(e.0, b"v".as_ptr(), usize::MAX, SEC, within.as_mut_ptr()),
            tether_status::TETHER_INVALID_ARGUMENT
        );
        assert!(within.assume_init(), "a refused call wrote its output");
        assert_eq!(
            tether_engine_publish_cstr(e.0, c"v".as_ptr(), ptr::null(), 0, false, 0, ptr::null_mut()),
            tether_status::TETHER_NULL_POINTER
        );
    }
    assert!(last_error().contains("node id is a NULL pointer"));
}

#[test]
fn last_error_copy_reports_length_and_never_overflows() {
    // SAFETY: NULL engine is the point; the other arguments are unused.
    let st = unsafe { tether_engine_set_grace_period(ptr::null(), 0) };
    assert_eq!(st, tether_status::TETHER_NULL_POINTER);
    let mut len = 0usize;
    let mut small = [0x55u8; 4];
    // SAFETY: `small` has 4 writable bytes; `len` is writable.
    let st = unsafe { tether_last_error_copy(small.as_mut_ptr().cast(), small.len(), &raw mut len) };
    assert_eq!((st, small), (tether_status::TETHER_BUFFER_TOO_SMALL, [0x55; 4]));
    let mut buf = vec![0u8; len + 1];
    // SAFETY: `buf` has len + 1 writable bytes.
    let st = unsafe { tether_last_error_copy(buf.as_mut_ptr().cast(), buf.len(), ptr::null_mut()) };
    assert_eq!(st, tether_status::TETHER_OK);
    assert_eq!(CStr::from_bytes_with_nul(&buf).unwrap().to_str().unwrap(), last_error());
}

/// Needs the test hook: `make test-ffi` runs this crate's tests with `--features test-hooks`.
#[cfg(feature = "test-hooks")]
#[test]
fn a_panic_becomes_a_status() {
    assert_eq!(tether_debug_panic(), tether_status::TETHER_PANIC);
    assert!(last_error().contains("deliberate"));
    // The library still works on this thread.
    let e = Engine::manual();
    assert!(publish(e.0, "v", "n", 0).is_ok());
}

#[test]
fn reconcile_packed_splits_names_and_checks_lengths() {
    let e = Engine::manual();
    publish(e.0, "v1", "gone", 0).unwrap();
    publish(e.0, "v2", "here", 0).unwrap();
    let names = "herelater";
    let mut json = ptr::null_mut();
    // SAFETY: `names` holds 9 bytes, `lens` two words; `json` writable.
    let st = unsafe {
        tether_engine_reconcile_packed(
            e.0,
            names.as_ptr(),
            names.len(),
            [4, 5].as_ptr(),
            2,
            &raw mut json,
            ptr::null_mut(),
        )
    };
    assert_eq!(st, tether_status::TETHER_OK);
    let report = take_string(json);
    assert!(report.contains(r#""pending":[{"node":"gone","#), "{report}");

    let mut untouched = ptr::null_mut();
    // SAFETY: as above, with lengths that do not add up.
    let st = unsafe {
        tether_engine_reconcile_packed(
            e.0,
            names.as_ptr(),
            names.len(),
            [4, 4].as_ptr(),
            2,
            &raw mut untouched,
            ptr::null_mut(),
        )
    };
    assert_eq!((st, untouched), (tether_status::TETHER_INVALID_ARGUMENT, ptr::null_mut()));
    assert!(last_error().contains("leave 1 bytes of names unused"));
}

#[test]
fn snapshot_restores_and_bad_documents_change_nothing() {
    let e = Engine::manual();
    publish(e.0, "v", "a", 0).unwrap();
    let mut json = ptr::null_mut();
    let mut len = 0;
    // SAFETY: live engine, writable outputs.
    assert_eq!(unsafe { tether_engine_snapshot(e.0, &raw mut json, &raw mut len) }, tether_status::TETHER_OK);
    let doc = take_string(json);
    assert_eq!(doc.len(), len);

    let copy = Engine::manual();
    // SAFETY: `doc` is valid for its length.
    assert_eq!(unsafe { tether_engine_restore(copy.0, doc.as_ptr(), doc.len()) }, tether_status::TETHER_OK);
    assert_eq!(publish(copy.0, "v", "b", 0), Err(tether_status::TETHER_CONFLICT));
    // SAFETY: a truncated prefix of `doc`.
    let st = unsafe { tether_engine_restore(copy.0, doc.as_ptr(), doc.len() / 2) };
    assert_eq!(st, tether_status::TETHER_BAD_SNAPSHOT);
    assert!(last_error().contains("malformed"));
    assert_eq!(publish(copy.0, "v", "a", 0).unwrap().kind, tether_published::TETHER_PUBLISHED_ALREADY_ATTACHED);
}

#[test]
fn threads_share_one_engine_and_keep_their_own_errors() {
    let e = Engine::manual();
    // SAFETY: the handle is live for the whole scope; `tether_engine` is Sync.
    let shared: &tether_engine = unsafe { &*e.0 };
    let results: Vec<_> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..2)
            .map(|i| {
                s.spawn(move || {
                    let got = publish(shared, "shared", &format!("n{i}"), 0).map(|o| o.kind);
                    (got, got.is_err().then(last_error))
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert_eq!(results.iter().filter(|(got, _)| got.is_ok()).count(), 1);
    let (_, seen) = results.iter().find(|(got, _)| got.is_err()).unwrap();
    assert!(seen.as_ref().unwrap().contains("cannot be attached"));
}
