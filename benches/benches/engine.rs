//! Engine figures beside the `Mutex<HashMap>` baseline and the `DashMap::get` floor, one run:
//! grace check hit and miss at 10 000 and 1 000 000 volumes, a publish + unpublish cycle,
//! and a 90 % read / 10 % write mix on 1 and 2 threads.

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use tether_benches::{clocks, detached, engine, node_name, volume_name, Baseline, Contract, Floor};
use tether_core::Engine;

/// Looks keys up in a scattered order, so the figure is not a cache-hot single key.
fn scattered(keys: &[String], i: usize) -> &str {
    &keys[i.wrapping_mul(7919) % keys.len()]
}

fn grace(c: &mut Criterion) {
    for n in [10_000usize, 1_000_000] {
        let keys: Vec<String> = (0..n).map(volume_name).collect();
        let absent: Vec<String> = (n..n + 10_000).map(volume_name).collect();
        let mut engines = Vec::new();
        let mut floors = Vec::new();
        for (suffix, clock) in clocks() {
            let e = engine(clock.clone());
            detached(&e, &keys);
            engines.push((format!("engine{suffix}"), e));
            floors.push((format!("floor_dashmap_get_plus_clock{suffix}"), Floor::new(&keys, clock)));
        }
        let baseline = Baseline::new(clocks()[0].1.clone());
        detached(&baseline, &keys);
        for (case, probe) in [("hit", &keys), ("miss", &absent)] {
            let mut g = c.benchmark_group(format!("grace_{case}/{n}"));
            let mut i = 0usize;
            for ((engine_name, engine), (floor_name, floor)) in engines.iter().zip(&floors) {
                g.bench_function(engine_name.as_str(), |b| {
                    b.iter(|| {
                        i += 1;
                        black_box(engine.within_grace(scattered(probe, i)))
                    });
                });
                g.bench_function(floor_name.as_str(), |b| {
                    b.iter(|| {
                        i += 1;
                        black_box(floor.within_grace(scattered(probe, i)))
                    });
                });
            }
            g.bench_function("baseline_mutex_hashmap", |b| {
                b.iter(|| {
                    i += 1;
                    black_box(baseline.within_grace(scattered(probe, i)))
                });
            });
            g.finish();
        }
    }
}

fn cycle(c: &mut Criterion) {
    let keys: Vec<String> = (0..10_000).map(volume_name).collect();
    let engine = Engine::new();
    let baseline = Baseline::new(clocks()[0].1.clone());
    detached(&engine, &keys);
    detached(&baseline, &keys);
    let mut g = c.benchmark_group("publish_unpublish_cycle");
    let contenders: [(&str, &dyn Contract); 2] = [("engine", &engine), ("baseline_mutex_hashmap", &baseline)];
    for (name, contender) in contenders {
        let mut i = 0usize;
        g.bench_function(name, |b| {
            b.iter(|| {
                i += 1;
                let (v, node) = (scattered(&keys, i), node_name(i % 7));
                assert!(contender.publish_rwo(v, &node));
                assert!(contender.unpublish(v, &node));
            });
        });
    }
    g.finish();
}

/// One operation of the mix: 9 grace checks in 10, else a publish or unpublish of a volume
/// this thread owns (so writes succeed and no thread waits for another's volume).
fn mixed_op(c: &dyn Contract, keys: &[String], thread: usize, threads: usize, i: usize, node: &str) {
    let own = |j: usize| &keys[(j.wrapping_mul(7919) / threads * threads + thread) % keys.len()];
    if i % 10 == 9 {
        // Writes come in pairs on one volume: publish it, then unpublish it.
        let v = own(i / 20);
        if (i / 10).is_multiple_of(2) {
            black_box(c.publish_rwo(v, node));
        } else {
            black_box(c.unpublish(v, node));
        }
    } else {
        black_box(c.within_grace(scattered(keys, i)));
    }
}

fn mix(c: &mut Criterion) {
    let keys: Vec<String> = (0..10_000).map(volume_name).collect();
    let engine = Engine::new();
    let baseline = Baseline::new(clocks()[0].1.clone());
    detached(&engine, &keys);
    detached(&baseline, &keys);
    let mut g = c.benchmark_group("mix_90_read_10_write");
    g.throughput(Throughput::Elements(1));
    let contenders: [(&str, &dyn Contract); 2] = [("engine", &engine), ("baseline_mutex_hashmap", &baseline)];
    for threads in [1usize, 2] {
        for (name, contender) in contenders {
            let start = AtomicUsize::new(0);
            g.bench_function(BenchmarkId::new(name, format!("{threads}_threads")), |b| {
                b.iter_custom(|iters| run_mix(contender, &keys, threads, iters, &start));
            });
        }
    }
    g.finish();
}

/// Runs `iters` operations spread over `threads` threads; returns the wall time they took.
fn run_mix(c: &dyn Contract, keys: &[String], threads: usize, iters: u64, start: &AtomicUsize) -> Duration {
    let per_thread = usize::try_from(iters).expect("iteration count fits usize").div_ceil(threads);
    let base = start.fetch_add(per_thread, Ordering::Relaxed);
    let began = Instant::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            s.spawn(move || {
                let node = format!("mix-node-{t}");
                for i in base..base + per_thread {
                    mixed_op(c, keys, t, threads, i, &node);
                }
            });
        }
    });
    began.elapsed()
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(40).warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = grace, cycle, mix
}
criterion_main!(benches);
