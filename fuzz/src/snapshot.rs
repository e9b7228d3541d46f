//! Snapshot restore from arbitrary bytes: a refused document leaves the state exactly as it
//! was; an accepted one keeps every invariant, lowers no epoch, and round-trips.

use crate::invariants::{busy_engine, check, epochs_kept, exercise};

pub fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let e = busy_engine();
    let before = e.snapshot();
    match e.restore_json(text) {
        Err(_) => assert_eq!(e.snapshot(), before, "a refused restore changed the state"),
        Ok(()) => {
            check(&e);
            epochs_kept(&before, &e);
            let again = busy_engine();
            again.restore_json(&e.snapshot_json()).expect("the engine's own snapshot restores");
            assert_eq!(again.list(), e.list(), "a snapshot of a restored state round-trips");
            exercise(&e);
        }
    }
}
