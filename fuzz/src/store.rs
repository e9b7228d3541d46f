//! The embedded store's import of the file-per-record layout on arbitrary bytes as a volume
//! record: a record that does not load refuses the open, naming the file, imports nothing and
//! leaves the file as it was (the driver then fails closed); one that loads is in the database
//! and rebuilds an engine that keeps every invariant, or is refused whole.

use tether_driver::store::{EmbeddedStore, StoreError, VolumeStore};

use crate::invariants::{busy_engine, check, exercise};

pub fn run(data: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let records = dir.path().join("volumes");
    std::fs::create_dir_all(&records).unwrap();
    let record = records.join("pvc-1.json");
    std::fs::write(&record, data).unwrap();
    let store = match EmbeddedStore::open(dir.path(), 1 << 30) {
        Ok(store) => store,
        Err(StoreError::Corrupt { path, .. }) => {
            assert_eq!(path, record, "the refusal names the record");
            assert_eq!(std::fs::read(&record).unwrap(), data, "a refused import keeps the old record");
            return;
        }
        Err(e) => panic!("{e}"),
    };
    assert!(!record.exists(), "an imported record's file is removed");
    let volumes = store.load().expect("an imported record loads from the database");
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
