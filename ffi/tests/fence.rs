//! Fences, terms, re-fence and forget through the C ABI, called as C calls them; small and on
//! manual clocks, so Miri runs it too.

use std::mem::MaybeUninit;
use std::ptr;

use tether::*;

mod support;
use support::*;

/// The fence's nodes as (name, admission epoch) pairs.
fn admitted(f: &tether_fence) -> Vec<(&str, u64)> {
    f.nodes[..f.node_count].iter().map(|a| (a.node.as_str(), a.epoch)).collect()
}

/// `volume`'s fence, or None for an untracked volume.
fn fence(e: *const tether_engine, volume: &str) -> Option<tether_fence> {
    let (mut found, mut out) = (false, MaybeUninit::<tether_fence>::uninit());
    // SAFETY: live engine, id valid for its length, outputs writable.
    let st = unsafe { tether_engine_fence(e, volume.as_ptr(), volume.len(), &raw mut found, out.as_mut_ptr()) };
    assert_eq!(st, tether_status::TETHER_OK);
    // SAFETY: written when found.
    found.then(|| unsafe { out.assume_init() })
}

#[test]
fn publish_and_unpublish_carry_admissions_and_fences() {
    let e = Engine::manual();
    let first = publish(e.0, "vm", "src", 1).unwrap();
    assert_eq!((first.admitted_epoch, admitted(&first.fence)), (1, vec![("src", 1)]));
    assert_eq!((first.fence.epoch, first.fence.mode), (1, tether_access_mode::TETHER_RWX));
    let target = publish(e.0, "vm", "dst", 1).unwrap();
    assert_eq!((target.admitted_epoch, admitted(&target.fence)), (2, vec![("src", 1), ("dst", 2)]));
    assert_eq!(publish(e.0, "vm", "dst", 1).unwrap().admitted_epoch, 2, "idempotent re-publish");

    let mut out = MaybeUninit::<tether_unpublish_result>::uninit();
    // SAFETY: live engine, ids valid, out writable.
    let st = unsafe { tether_engine_unpublish(e.0, b"vm".as_ptr(), 2, b"src".as_ptr(), 3, out.as_mut_ptr()) };
    assert_eq!(st, tether_status::TETHER_OK);
    // SAFETY: written on OK.
    let done = unsafe { out.assume_init() };
    assert_eq!((done.fence.epoch, admitted(&done.fence)), (3, vec![("dst", 2)]));
    assert_eq!(fence(e.0, "vm").map(|f| f.epoch), Some(3));
    assert!(fence(e.0, "never").is_none(), "untracked is not an empty fence");
}

#[test]
fn terms_raise_every_epoch_and_keep_admissions() {
    let e = Engine::manual();
    publish(e.0, "a", "n1", 0).unwrap();
    let mut term = 0;
    // SAFETY: live engine, writable outputs.
    unsafe {
        assert_eq!(tether_engine_set_term(e.0, 7, &raw mut term), tether_status::TETHER_OK);
        assert_eq!(tether_engine_set_term(e.0, 3, ptr::null_mut()), tether_status::TETHER_OK);
        assert_eq!(tether_engine_term(e.0, &raw mut term), tether_status::TETHER_OK);
        assert_eq!(tether_engine_set_term(e.0, 1 << 32, ptr::null_mut()), tether_status::TETHER_INVALID_ARGUMENT);
    }
    assert_eq!(term, 7, "a term never goes down");
    assert!(last_error().contains("term"));
    let (mut json, mut len) = (ptr::null_mut(), 0);
    // SAFETY: live engine, writable outputs.
    assert_eq!(unsafe { tether_engine_refence(e.0, &raw mut json, &raw mut len) }, tether_status::TETHER_OK);
    let doc = take_string(json);
    assert_eq!(doc.len(), len);
    let want = format!(
        r#"[{{"volume":"a","fence":{{"epoch":{},"mode":"RWO","readonly":false,"nodes":[{{"node":"n1","admitted_at":1}}]}}}}]"#,
        7u64 << 32
    );
    assert_eq!(doc, want);
}

#[test]
fn forget_refuses_an_attached_volume_and_names_its_node() {
    let e = Engine::manual();
    publish(e.0, "v", "n1", 0).unwrap();
    let mut forgotten = true;
    // SAFETY: live engine, id valid, output writable.
    let st = unsafe { tether_engine_forget(e.0, b"v".as_ptr(), 1, &raw mut forgotten) };
    assert_eq!(st, tether_status::TETHER_STILL_ATTACHED);
    let info = error_info();
    assert_eq!((info.node_count, info.nodes[0].as_str(), forgotten), (1, "n1", true));
    assert!(last_error().contains("still attached"));
    // SAFETY: as above.
    unsafe {
        tether_engine_unpublish_all(e.0, b"v".as_ptr(), 1, ptr::null_mut());
        assert_eq!(tether_engine_forget(e.0, b"v".as_ptr(), 1, &raw mut forgotten), tether_status::TETHER_OK);
    }
    assert!(forgotten && fence(e.0, "v").is_none());
}

#[test]
fn the_targets_rules_refuse_stale_fences_and_unadmitted_sessions() {
    let e = Engine::manual();
    let f = publish(e.0, "v", "n1", 0).unwrap().fence;
    // SAFETY: `f` is a fence from the library; ids valid for their lengths.
    unsafe {
        assert_eq!(tether_fence_check_supersedes(&raw const f, b"v".as_ptr(), 1, false, 0), tether_status::TETHER_OK);
        assert_eq!(
            tether_fence_check_supersedes(&raw const f, b"v".as_ptr(), 1, true, 1),
            tether_status::TETHER_STALE_FENCE
        );
        let info = error_info();
        assert_eq!((info.epoch, info.applied_epoch), (1, 1));
        assert_eq!(
            tether_fence_check_session(&raw const f, b"v".as_ptr(), 1, b"n1".as_ptr(), 2, 1),
            tether_status::TETHER_OK
        );
        assert_eq!(
            tether_fence_check_session(&raw const f, b"v".as_ptr(), 1, b"n2".as_ptr(), 2, 9),
            tether_status::TETHER_NOT_ADMITTED
        );
        let info = error_info();
        assert_eq!((info.nodes[0].as_str(), info.presented_epoch, info.admitted_epoch), ("n2", 9, 0));
        assert_eq!(
            tether_fence_check_session(&raw const f, b"v".as_ptr(), 1, b"n1".as_ptr(), 2, 0),
            tether_status::TETHER_NOT_ADMITTED
        );
        assert_eq!(error_info().admitted_epoch, 1);
    }
}

#[test]
fn malformed_fences_are_refused() {
    let e = Engine::manual();
    let good = publish(e.0, "v", "n1", 0).unwrap().fence;
    let mut bad = [good; 5];
    bad[0].node_count = 3;
    bad[1].nodes[0].node.len = TETHER_NODE_NAME_CAP;
    bad[2].nodes[0].epoch = 2; // admitted above the fence's epoch
    bad[3].nodes[0].node.bytes[0] = 0xff;
    bad[4].node_count = 2; // the same node twice
    bad[4].nodes[1] = bad[4].nodes[0];
    for (i, f) in bad.iter().enumerate() {
        // SAFETY: each is a readable fence; the id is valid.
        let st = unsafe { tether_fence_check_supersedes(f, b"v".as_ptr(), 1, false, 0) };
        assert_ne!(st, tether_status::TETHER_OK, "fence {i}");
    }
    let mut raw = good;
    // SAFETY: writes a mode that is no tether_access_mode as the raw integer C could store.
    unsafe { (&raw mut raw.mode).cast::<u32>().write(9) };
    // SAFETY: as above.
    let st = unsafe { tether_fence_check_supersedes(&raw const raw, b"v".as_ptr(), 1, false, 0) };
    assert_eq!(st, tether_status::TETHER_INVALID_ARGUMENT);
    // SAFETY: NULL fence is the point.
    let st = unsafe { tether_fence_check_session(ptr::null(), b"v".as_ptr(), 1, b"n".as_ptr(), 1, 1) };
    assert_eq!(st, tether_status::TETHER_NULL_POINTER);
}
