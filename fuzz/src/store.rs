//! The embedded store's record loader on arbitrary bytes: a record that does not load is
//! refused as corrupt (the driver then fails closed); one that loads rebuilds an engine that
//! keeps every invariant, or is refused whole.

use tether_driver::store::{EmbeddedStore, VolumeStore};

use crate::invariants::{busy_engine, check, exercise};

pub fn run(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("volumes");
    std::fs::create_dir_all(&records).unwrap();
    std::fs::write(records.join("pvc-1.json"), data).unwrap();
    let store = EmbeddedStore::open(dir.path(), 1 << 30).unwrap();
    let Ok(volumes) = store.load() else { return };
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0].meta.id, "pvc-1", "a record loads only under its own name");
    let e = busy_engine();
    let before = e.snapshot();
    let entries = volumes.into_iter().filter_map(|v| v.engine).collect();
    match tether_driver::persisted::restore(&e, entries) {
        Err(_) => assert_eq!(e.snapshot(), before, "a refused rebuild changed the state"),
        Ok(()) => {
            check(&e);
            exercise(&e);
        }
    }
}
