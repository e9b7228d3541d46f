//! Instruction counts of the C ABI against native calls, for `make bench-ffi`: run under
//! `valgrind --tool=callgrind`, which counts instructions exactly whatever else the machine
//! runs (wall-clock benchmarks on a shared machine are noisy).
//!
//! Usage: `abi_cost <case> <iterations>`, case one of `setup` (the set-up alone, subtracted
//! from the others), `native-grace`, `c-grace`, `native-cycle`, `c-cycle`. Every case first
//! makes one engine with 10 000 detached volumes, as `benches/benches/ffi.rs` does.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::time::Duration;

use tether::{
    tether_engine, tether_engine_free, tether_engine_is_within_grace_period, tether_engine_new, tether_engine_publish,
    tether_engine_unpublish, tether_publish_result, tether_status, tether_unpublish_result,
};
use tether_core::Access;

const GRACE: Duration = Duration::from_secs(30);

fn c_cycle(h: *const tether_engine, volume: &str, node: &str) {
    let mut published = MaybeUninit::<tether_publish_result>::uninit();
    let mut unpublished = MaybeUninit::<tether_unpublish_result>::uninit();
    // SAFETY: live handle, ids valid for their lengths, outputs writable.
    let (p, u) = unsafe {
        let p = tether_engine_publish(
            h,
            volume.as_ptr(),
            volume.len(),
            node.as_ptr(),
            node.len(),
            0,
            false,
            0,
            published.as_mut_ptr(),
        );
        let u = tether_engine_unpublish(
            h,
            volume.as_ptr(),
            volume.len(),
            node.as_ptr(),
            node.len(),
            unpublished.as_mut_ptr(),
        );
        (p, u)
    };
    assert_eq!((p, u), (tether_status::TETHER_OK, tether_status::TETHER_OK));
    black_box((&published, &unpublished));
}

fn c_grace(h: *const tether_engine, volume: &str) {
    let mut out = false;
    // SAFETY: live handle, id valid for its length, `out` writable.
    let st =
        unsafe { tether_engine_is_within_grace_period(h, volume.as_ptr(), volume.len(), 30_000_000_000, &raw mut out) };
    assert_eq!(st, tether_status::TETHER_OK);
    black_box(out);
}

fn main() {
    let mut args = std::env::args().skip(1);
    let case = args.next().expect("a case");
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).expect("an iteration count");
    let keys: Vec<String> = (0..10_000).map(|i| format!("pvc-{i:08}")).collect();
    let nodes: Vec<String> = (0..7).map(|i| format!("node-{i}")).collect();
    let mut h = std::ptr::null_mut();
    // SAFETY: NULL config means defaults; `h` is a valid out slot.
    assert_eq!(unsafe { tether_engine_new(std::ptr::null(), &raw mut h) }, tether_status::TETHER_OK);
    // SAFETY: live until freed at the end.
    let engine = unsafe { &*h }.inner();
    for k in &keys {
        engine.publish(k, "node-0", Access::RWO, None).expect("fresh volume attaches");
        engine.unpublish(k, Some("node-0")).expect("attached volume detaches");
    }
    for n in 0..iterations {
        let (volume, node) = (keys[n.wrapping_mul(7919) % keys.len()].as_str(), nodes[n % 7].as_str());
        match case.as_str() {
            "native-grace" => drop(black_box(engine.is_within_grace_period(volume, GRACE))),
            "c-grace" => c_grace(h, volume),
            "native-cycle" => {
                black_box(engine.publish(volume, node, Access::RWO, None).expect("publish"));
                black_box(engine.unpublish(volume, Some(node)).expect("unpublish"));
            }
            "c-cycle" => c_cycle(h, volume, node),
            "setup" => {}
            other => panic!("unknown case {other}"),
        }
    }
    // SAFETY: made above, freed once.
    unsafe { tether_engine_free(h) };
}
