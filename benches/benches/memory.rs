//! Resident bytes per tracked volume at 1 000 000 attached volumes: the engine and the baseline,
//! each measured as the growth of this process's resident set while it is filled.

use tether_benches::{node_name, resident_bytes, volume_name, Baseline, Contract};
use tether_core::Engine;

const VOLUMES: usize = 1_000_000;

fn measure(name: &str, keys: &[String], fill: impl FnOnce(&[String]) -> Box<dyn Contract>) {
    let before = resident_bytes();
    let contender = fill(keys);
    let after = resident_bytes();
    #[allow(clippy::cast_precision_loss)]
    let per = (after - before) as f64 / VOLUMES as f64;
    println!(
        "memory/{name}: {per:.1} resident bytes per attached volume ({VOLUMES} volumes, names of {} bytes)",
        keys[0].len()
    );
    drop(contender);
}

fn main() {
    // Criterion passes `--bench`; nothing else is accepted.
    let keys: Vec<String> = (0..VOLUMES).map(volume_name).collect();
    measure("engine", &keys, |keys| {
        let e = Engine::new();
        for (i, v) in keys.iter().enumerate() {
            assert!(e.publish_rwo(v, &node_name(i)));
        }
        Box::new(e)
    });
    measure("baseline_mutex_hashmap", &keys, |keys| {
        let b = Baseline::new(std::sync::Arc::new(tether_core::CoarseClock::new()));
        for (i, v) in keys.iter().enumerate() {
            assert!(b.publish_rwo(v, &node_name(i)));
        }
        Box::new(b)
    });
}
