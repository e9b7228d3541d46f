//! The C ABI against native Rust, one run, one engine: a grace check and a publish + unpublish
//! cycle, each called once through the exported `extern "C"` functions (pointer and length
//! ids, NULL checks, UTF-8 validation, panic boundary, out-parameters) and once as plain
//! `Engine` methods on the very same engine.

use std::hint::black_box;
use std::mem::MaybeUninit;
use std::ptr;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tether::{
    tether_engine, tether_engine_free, tether_engine_is_within_grace_period, tether_engine_new, tether_engine_publish,
    tether_engine_unpublish, tether_publish_result, tether_status, tether_unpublish_result,
};
use tether_core::{Access, Engine};

const VOLUMES: usize = 10_000;
const GRACE: Duration = Duration::from_secs(30);

/// Looks keys up in a scattered order, so the figure is not a cache-hot single key.
fn scattered(keys: &[String], i: usize) -> &str {
    &keys[i.wrapping_mul(7919) % keys.len()]
}

/// An engine made through the C ABI, every volume detached once (so grace checks hit).
struct Handle(*mut tether_engine);

impl Handle {
    fn new(keys: &[String]) -> Self {
        let mut raw = ptr::null_mut();
        // SAFETY: NULL config means defaults; `raw` is a valid out slot.
        assert_eq!(unsafe { tether_engine_new(ptr::null(), &raw mut raw) }, tether_status::TETHER_OK);
        let handle = Self(raw);
        for k in keys {
            handle.engine().publish(k, "node-0", Access::RWO, None).expect("fresh volume attaches");
            handle.engine().unpublish(k, Some("node-0")).expect("attached volume detaches");
        }
        handle
    }

    fn engine(&self) -> &Engine {
        // SAFETY: the handle is live until drop.
        unsafe { &*self.0 }.inner()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: made by tether_engine_new, freed once.
        unsafe { tether_engine_free(self.0) }
    }
}

fn grace(c: &mut Criterion) {
    let keys: Vec<String> = (0..VOLUMES).map(|i| format!("pvc-{i:08}")).collect();
    let handle = Handle::new(&keys);
    let mut group = c.benchmark_group("ffi_grace_hit");
    let mut n = 0usize;
    group.bench_function("native", |b| {
        b.iter(|| {
            n += 1;
            black_box(handle.engine().is_within_grace_period(scattered(&keys, n), GRACE).unwrap())
        });
    });
    let grace_ns = u64::try_from(GRACE.as_nanos()).unwrap();
    group.bench_function("c_abi", |b| {
        b.iter(|| {
            n += 1;
            let volume = scattered(&keys, n);
            let mut out = false;
            // SAFETY: live handle, `volume` valid for its length, `out` writable.
            let st = unsafe {
                tether_engine_is_within_grace_period(handle.0, volume.as_ptr(), volume.len(), grace_ns, &raw mut out)
            };
            assert_eq!(st, tether_status::TETHER_OK);
            black_box(out)
        });
    });
    group.finish();
}

fn cycle(c: &mut Criterion) {
    let keys: Vec<String> = (0..VOLUMES).map(|i| format!("pvc-{i:08}")).collect();
    let nodes: Vec<String> = (0..7).map(|i| format!("node-{i}")).collect();
    let handle = Handle::new(&keys);
    let mut group = c.benchmark_group("ffi_publish_unpublish_cycle");
    let mut n = 0usize;
    group.bench_function("native", |b| {
        b.iter(|| {
            n += 1;
            let (volume, node) = (scattered(&keys, n), nodes[n % 7].as_str());
            black_box(handle.engine().publish(volume, node, Access::RWO, None).unwrap());
            black_box(handle.engine().unpublish(volume, Some(node)).unwrap());
        });
    });
    group.bench_function("c_abi", |b| {
        b.iter(|| {
            n += 1;
            let (volume, node) = (scattered(&keys, n), nodes[n % 7].as_str());
            let mut published = MaybeUninit::<tether_publish_result>::uninit();
            let mut unpublished = MaybeUninit::<tether_unpublish_result>::uninit();
            // SAFETY: live handle, ids valid for their lengths, outputs writable.
            unsafe {
                let st = tether_engine_publish(
                    handle.0,
                    volume.as_ptr(),
                    volume.len(),
                    node.as_ptr(),
                    node.len(),
                    0,
                    false,
                    0,
                    published.as_mut_ptr(),
                );
                assert_eq!(st, tether_status::TETHER_OK);
                let st = tether_engine_unpublish(
                    handle.0,
                    volume.as_ptr(),
                    volume.len(),
                    node.as_ptr(),
                    node.len(),
                    unpublished.as_mut_ptr(),
                );
                assert_eq!(st, tether_status::TETHER_OK);
            }
            black_box((&published, &unpublished));
        });
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(4));
    targets = grace, cycle
}
criterion_main!(benches);
