//! Instruction counts of one grace check, engine beside floor and baseline, hit and miss, for
//! callgrind: `make bench-callgrind` runs
//! `valgrind --tool=callgrind --toggle-collect='grace_cost::run_engine' target/release/examples/grace_cost`
//! once per `run_*` function and divides by the call count.
//! Counts instructions, not time, so the figure does not move with the machine's load.

use std::hint::black_box;
use std::sync::Arc;

use tether_benches::{detached, engine, volume_name, Baseline, Contract, Floor};
use tether_core::{Clock, CoarseClock, ManualClock};

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

/// `grace_cost [VOLUMES [engine|floor|baseline]]`: every contender over 10 000 volumes on the
/// engine's default clock by default; with a count, that many volumes on a manual clock (the
/// misses probe 10 000 names never tracked);
/// with a contender, only that one is filled and run (valgrind's cache simulation of a
/// 1 000 000-volume table then takes minutes, not an hour).
fn main() {
    let mut args = std::env::args().skip(1);
    let count = args.next();
    let given = count.is_some();
    let n: usize = count.map_or(10_000, |a| a.parse().expect("VOLUMES is a count"));
    let only = args.next();
    let runs = |name: &str| only.as_deref().is_none_or(|o| o == name);
    let keys: Vec<String> = (0..n).map(volume_name).collect();
    let absent: Vec<String> = (n..n + 10_000).map(volume_name).collect();
    // Probed in a scattered order, so at 1 000 000 volumes each check is a cold lookup.
    let probe = |names: &[String]| -> Vec<String> {
        (0..CALLS.min(names.len())).map(|i| names[i.wrapping_mul(7919) % names.len()].clone()).collect()
    };
    let (keys_probe, absent_probe) = (probe(&keys), probe(&absent));
    // Valgrind fills a million volumes slower than the 30 s grace period runs out, so a given
    // count runs on a manual clock, which stands still (every contender reads the same one).
    let clock: Arc<dyn Clock> = if given { Arc::new(ManualClock::new()) } else { Arc::new(CoarseClock::new()) };
    if runs("engine") {
        let e = engine(clock.clone());
        detached(&e, &keys);
        assert_eq!(run_engine(&e, &keys_probe), CALLS, "every present volume was just detached");
        assert_eq!(run_engine_miss(&e, &absent_probe), 0, "absent volumes are never within a grace period");
    }
    if runs("floor") {
        let f = Floor::new(&keys, clock.clone());
        assert_eq!(run_floor(&f, &keys_probe), CALLS, "every present volume was just stamped");
        assert_eq!(run_floor_miss(&f, &absent_probe), 0, "absent volumes are not in the floor");
    }
    if runs("baseline") {
        let b = Baseline::new(clock);
        detached(&b, &keys);
        assert_eq!(run_baseline(&b, &keys_probe), CALLS, "every present volume was just detached");
        assert_eq!(run_baseline_miss(&b, &absent_probe), 0, "absent volumes are never within a grace period");
    }
    println!("{CALLS} grace checks per run_* function, {n} volumes");
}
