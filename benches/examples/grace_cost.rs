//! Instruction counts of one grace check, engine beside floor and baseline, hit and miss, for
//! callgrind: `make bench-callgrind` runs
//! `valgrind --tool=callgrind --toggle-collect='grace_cost::run_engine' target/release/examples/grace_cost`
//! once per `run_*` function and divides by the call count.
//! Counts instructions, not time, so the figure does not move with the machine's load.

use std::hint::black_box;
use std::sync::Arc;

use tether_benches::{detached, engine, volume_name, Baseline, Contract, Floor};
use tether_core::CoarseClock;

const CALLS: usize = 100_000;

/// The loop every `run_*` shares, inlined into each so callgrind attributes it to that one.
#[allow(clippy::inline_always, reason = "each run_* must hold its own copy of the loop for callgrind")]
#[inline(always)]
fn count(keys: &[String], within: impl Fn(&str) -> bool) -> usize {
    (0..CALLS).filter(|i| within(&keys[i % keys.len()])).count()
}

#[inline(never)]
fn run_engine(c: &dyn Contract, keys: &[String]) -> usize {
    black_box(1); // distinct bodies, so the linker folds no two of them
    count(keys, |v| c.within_grace(v))
}

#[inline(never)]
fn run_engine_miss(c: &dyn Contract, keys: &[String]) -> usize {
    black_box(2); // distinct bodies, so the linker folds no two of them
    count(keys, |v| c.within_grace(v))
}

#[inline(never)]
fn run_baseline(c: &dyn Contract, keys: &[String]) -> usize {
    black_box(3); // distinct bodies, so the linker folds no two of them
    count(keys, |v| c.within_grace(v))
}

#[inline(never)]
fn run_baseline_miss(c: &dyn Contract, keys: &[String]) -> usize {
    black_box(4); // distinct bodies, so the linker folds no two of them
    count(keys, |v| c.within_grace(v))
}

#[inline(never)]
fn run_floor(f: &Floor, keys: &[String]) -> usize {
    black_box(5); // distinct bodies, so the linker folds no two of them
    count(keys, |v| f.within_grace(v))
}

#[inline(never)]
fn run_floor_miss(f: &Floor, keys: &[String]) -> usize {
    black_box(6); // distinct bodies, so the linker folds no two of them
    count(keys, |v| f.within_grace(v))
}

fn main() {
    let keys: Vec<String> = (0..10_000).map(volume_name).collect();
    let clock = Arc::new(CoarseClock::new());
    let e = engine(clock.clone());
    let b = Baseline::new(clock.clone());
    detached(&e, &keys);
    detached(&b, &keys);
    let f = Floor::new(&keys, clock);
    let absent: Vec<String> = (10_000..20_000).map(volume_name).collect();
    let hits = [run_engine(&e, &keys), run_floor(&f, &keys), run_baseline(&b, &keys)];
    let misses = [run_engine_miss(&e, &absent), run_floor_miss(&f, &absent), run_baseline_miss(&b, &absent)];
    assert_eq!(hits, [CALLS; 3], "every present volume was just detached");
    assert_eq!(misses, [0; 3], "absent volumes are never within a grace period");
    println!("{CALLS} grace checks per run_* function");
    black_box((hits, misses));
}
