//! The embedded store on its own: concurrent changes from two processes on one state directory
//! share commits and keep the fence rule, and the first open of a state directory of the
//! file-per-record layout imports it whole, refuses an unreadable one naming the file without
//! importing any of it, and is safe to crash in.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::{block_volume as volume, fence};
use tether_core::CoreError;
use tether_driver::store::{DbFailure, EmbeddedStore, StoreError, StoredFence, StoredVolume, VolumeStore, DB_FILE};

fn open(root: &Path) -> EmbeddedStore {
    EmbeddedStore::open(root, 1 << 30).unwrap()
}

#[test]
fn concurrent_changes_from_two_processes_keep_the_fence_rule_and_every_acknowledged_record() {
    const THREADS: u64 = 32;
    const ROUNDS: u64 = 40;
    let dir = tempfile::tempdir().unwrap();
    let stores = [Arc::new(open(dir.path())), Arc::new(open(dir.path()))];
    stores[0].create(&volume("v")).unwrap();
    let threads: Vec<_> = (0..THREADS)
        .map(|t| {
            let store = Arc::clone(&stores[usize::from(t % 2 == 1)]);
            std::thread::spawn(move || {
                let own = volume(&format!("t{t}"));
                store.create(&own).unwrap();
                let mut applied = Vec::new();
                for round in 0..ROUNDS {
                    let epoch = round * THREADS + t + 1;
                    match store.save(&own, None, None).and_then(|()| store.apply_fence("v", &fence(epoch, &[]))) {
                        Ok(()) => applied.push(epoch),
                        Err(StoreError::Fence(CoreError::StaleFence { epoch: refused, applied, .. })) => {
                            assert!(applied >= refused, "{refused} refused below {applied}");
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                applied
            })
        })
        .collect();
    let applied: Vec<u64> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
    let highest = ROUNDS * THREADS;
    assert!(applied.contains(&highest), "nothing can refuse the highest epoch");
    for store in &stores {
        assert_eq!(store.applied_fence("v").unwrap(), Some(fence(highest, &[])));
    }
    drop(stores);
    let ids: Vec<String> = open(dir.path()).load().unwrap().into_iter().map(|v| v.meta.id).collect();
    assert_eq!(ids.len(), usize::try_from(THREADS).unwrap() + 1, "{ids:?}");
}

/// The old layout of `n` volumes as the file-per-record store wrote it (the same JSON the
/// database keeps per row), with a temporary that never reached its rename; returns the ids.
fn old_layout(root: &Path, n: usize, epoch_base: u64) -> Vec<String> {
    for dir in ["volumes", "fences", "data"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    let ids: Vec<String> = (0..n).map(|i| format!("pvc-{i:04}")).collect();
    for (i, id) in ids.iter().enumerate() {
        std::fs::create_dir_all(root.join("data").join(id)).unwrap();
        let record = StoredVolume { meta: volume(id), engine: None };
        std::fs::write(root.join(format!("volumes/{id}.json")), serde_json::to_vec(&record).unwrap()).unwrap();
        let epoch = epoch_base + u64::try_from(i).unwrap();
        let f = StoredFence::from(&fence(epoch, &[("node-a", epoch)]));
        std::fs::write(root.join(format!("fences/{id}.json")), serde_json::to_vec(&f).unwrap()).unwrap();
    }
    std::fs::write(root.join("volumes/.pvc-9999.json.tmp"), b"{\"half").unwrap();
    std::fs::write(root.join("term"), b"7").unwrap();
    ids
}

fn assert_imported(store: &EmbeddedStore, ids: &[String], epoch_base: u64) {
    let loaded = store.load().unwrap();
    assert_eq!(loaded.iter().map(|v| v.meta.id.clone()).collect::<Vec<_>>(), ids);
    for (i, id) in ids.iter().enumerate() {
        let epoch = epoch_base + u64::try_from(i).unwrap();
        assert_eq!(store.applied_fence(id).unwrap(), Some(fence(epoch, &[("node-a", epoch)])), "{id}");
    }
    assert_eq!(store.term().unwrap(), 7);
}

fn assert_old_files_gone(root: &Path) {
    for old in ["volumes", "fences", "term"] {
        assert!(!root.join(old).exists(), "{old} is left after the import");
    }
}

#[test]
fn an_old_state_directory_is_imported_whole_and_its_files_removed() {
    let dir = tempfile::tempdir().unwrap();
    let ids = old_layout(dir.path(), 50, 100);
    let store = open(dir.path());
    assert_imported(&store, &ids, 100);
    assert_old_files_gone(dir.path());
    assert!(dir.path().join("data/pvc-0049").is_dir(), "the volumes' data stays");
    assert_eq!(store.next_term(0).unwrap(), 8, "the term goes on from the imported one");
    drop(store);
    let again = open(dir.path());
    assert_eq!(again.load().unwrap().len(), 50, "a second open imports nothing more");
}

#[test]
fn an_unreadable_old_file_refuses_the_open_naming_it_and_imports_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let ids = old_layout(dir.path(), 50, 100);
    // The last of each kind, read after everything before it was imported in the transaction.
    for bad in ["volumes/pvc-0049.json", "fences/pvc-0049.json", "term"] {
        let path = dir.path().join(bad);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &good[..good.len() / 2]).unwrap();
        match EmbeddedStore::open(dir.path(), 1 << 30) {
            Err(StoreError::Corrupt { path: named, .. }) => assert_eq!(named, path),
            other => panic!("opened on a torn {bad}: {other:?}"),
        }
        let db = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
        let tables: i64 = db.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get(0)).unwrap();
        assert_eq!(tables, 0, "the refused import left nothing in the database (not even its tables)");
        for id in &ids {
            assert!(dir.path().join(format!("volumes/{id}.json")).exists(), "{id}'s old record is kept");
        }
        std::fs::write(&path, good).unwrap();
    }
    assert_imported(&open(dir.path()), &ids, 100);
}

#[test]
fn old_files_left_by_a_crash_after_the_import_commit_are_removed_unread() {
    let dir = tempfile::tempdir().unwrap();
    let ids = old_layout(dir.path(), 5, 100);
    let store = open(dir.path());
    store.apply_fence(&ids[0], &fence(500, &[])).unwrap();
    drop(store);
    // What a crash between the import's commit and the removal leaves: the old files beside
    // the database that holds them (and, here, a newer change than they hold).
    old_layout(dir.path(), 5, 100);
    let store = open(dir.path());
    assert_eq!(store.applied_fence(&ids[0]).unwrap(), Some(fence(500, &[])), "the database wins");
    assert_old_files_gone(dir.path());
}

#[test]
fn save_all_records_every_volume_it_is_given_in_one_call() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let volumes: Vec<_> = (0..300).map(|i| Arc::new(volume(&format!("v{i}")))).collect();
    for v in &volumes {
        store.create(v).unwrap();
    }
    let entry = |i: u64, id: &str| tether_core::VolumeEntry {
        volume: id.into(),
        epoch: i + 1,
        attachment: None,
        last_detach: None,
    };
    let batch: Vec<_> = (0..).zip(&volumes).map(|(i, v)| (Arc::clone(v), Some(entry(i, &v.id)))).collect();
    store.save_all(&batch).unwrap();
    drop(store);
    let loaded = open(dir.path()).load().unwrap();
    assert_eq!(loaded.len(), volumes.len());
    for (meta, engine) in &batch {
        let stored = loaded.iter().find(|s| s.meta.id == meta.id).unwrap();
        assert_eq!(stored.engine.as_ref(), engine.as_ref(), "volume {}", meta.id);
    }
}

#[test]
fn a_failed_commit_names_its_cause_as_a_value_and_leaves_the_store_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let term = store.next_term(0).unwrap();
    // A term SQLite's signed 64-bit integers cannot hold fails the transaction it is in.
    match store.next_term(u64::MAX) {
        Err(StoreError::Db { source: DbFailure::TooLarge { key: "term", value: u64::MAX }, .. }) => {}
        other => panic!("expected a TooLarge database failure, got {other:?}"),
    }
    assert_eq!(store.next_term(0).unwrap(), term + 1, "the refused term left no trace");
}

/// The engine's entry of `id` at `epoch` with no attachment: enough to tell records apart.
fn entry_at(id: &str, epoch: u64) -> tether_core::VolumeEntry {
    tether_core::VolumeEntry { volume: id.into(), epoch, attachment: None, last_detach: None }
}

#[test]
fn a_refused_fence_commits_no_record_and_a_restart_loads_the_newer_acknowledged_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let v = volume("v");
    store.create(&v).unwrap();
    let newer = 5 << 32;
    store.save(&v, Some(&entry_at("v", newer)), Some(&fence(newer, &[("node-b", newer)]))).unwrap();
    // A writer of an earlier term: its fence is refused, and so is its record.
    let stale = (4 << 32) + 7;
    match store.save(&v, Some(&entry_at("v", stale)), Some(&fence(stale, &[("node-a", stale)]))) {
        Err(StoreError::Fence(CoreError::StaleFence { .. })) => {}
        other => panic!("the stale fence was not refused: {other:?}"),
    }
    assert_eq!(store.stored("v").unwrap().unwrap().engine, Some(entry_at("v", newer)));
    drop(store);
    let store = open(dir.path());
    let loaded = store.load().unwrap();
    assert_eq!(loaded[0].engine, Some(entry_at("v", newer)), "the stale record came back after a restart");
    assert_eq!(store.applied_fence("v").unwrap(), Some(fence(newer, &[("node-b", newer)])));
}

#[test]
fn in_a_group_commit_a_refused_fence_fails_only_its_own_change() {
    const WRITERS: u64 = 32;
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(open(dir.path()));
    for w in 0..WRITERS {
        store.create(&volume(&format!("v{w}"))).unwrap();
        // Every odd volume already has a fence newer than the one its writer will bring.
        if w % 2 == 1 {
            store.apply_fence(&format!("v{w}"), &fence(1000, &[])).unwrap();
        }
    }
    // Released together, so the committer takes many of them in one transaction.
    let start = Arc::new(std::sync::Barrier::new(usize::try_from(WRITERS).unwrap()));
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (store, start) = (Arc::clone(&store), Arc::clone(&start));
            std::thread::spawn(move || {
                let (id, epoch) = (format!("v{w}"), 10 + w);
                start.wait();
                store.save(&volume(&id), Some(&entry_at(&id, epoch)), Some(&fence(epoch, &[])))
            })
        })
        .collect();
    let results: Vec<_> = writers.into_iter().map(|t| t.join().unwrap()).collect();
    drop(store);
    let store = open(dir.path());
    for (w, result) in (0..WRITERS).zip(results) {
        let id = format!("v{w}");
        let stored = store.stored(&id).unwrap().unwrap().engine;
        if w % 2 == 1 {
            assert!(matches!(result, Err(StoreError::Fence(_))), "{id}: {result:?}");
            assert_eq!(stored, None, "{id}: the refused change left its record");
            assert_eq!(store.applied_fence(&id).unwrap(), Some(fence(1000, &[])));
        } else {
            assert!(result.is_ok(), "{id}: a neighbour's refusal failed it: {result:?}");
            assert_eq!(stored, Some(entry_at(&id, 10 + w)), "{id}");
            assert_eq!(store.applied_fence(&id).unwrap(), Some(fence(10 + w, &[])));
        }
    }
}
