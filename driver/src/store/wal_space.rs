//! Gives the write-ahead log its disk space before the first commit, so that a commit
//! overwrites blocks the file already has instead of growing it.
//!
//! A sync that grows a file also makes its new size durable (a filesystem journal commit);
//! a sync of blocks the file already has writes only them. `SQLite` appends each commit's
//! frames to the log and, after a checkpoint, starts again at its beginning without shrinking
//! it: once the log has reached its working size, every commit is an overwrite. A new log
//! (each start, as `SQLite` removes it when the last connection closes) grows frame by frame
//! until then. Writing zeros up to the working size first skips that phase. Zeros are not
//! frames of any log (their salts cannot match a header's), so `SQLite`'s recovery, and
//! `wal.rs`, read them as the end of the log, as they read the frames of an earlier cycle.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::Path;

use rusqlite::Connection;

use super::commit::db_error;
use super::wal::{FRAME_HEADER, WAL_HEADER};
use super::StoreError;

/// Frames beyond the automatic checkpoint's threshold the space allows for: the commit that
/// crosses it, and a few more while the checkpoint waits for a reader.
const SLACK_FRAMES: u64 = 64;

/// The log's working size for `conn`'s database: a header, then as many frames as the
/// automatic checkpoint lets the log hold, and [`SLACK_FRAMES`].
fn working_size(conn: &Connection, db: &Path) -> Result<u64, StoreError> {
    let read = |pragma: &str, what: &'static str| -> Result<u64, StoreError> {
        let value: i64 = conn.pragma_query_value(None, pragma, |r| r.get(0)).map_err(db_error(what, db))?;
        // A threshold of 0 or less turns the automatic checkpoint off: only the slack then.
        Ok(u64::try_from(value).unwrap_or(0))
    };
    let page = read("page_size", "read the page size of")?;
    let threshold = read("wal_autocheckpoint", "read the checkpoint threshold of")?;
    let (header, frame_header) = (WAL_HEADER as u64, FRAME_HEADER as u64);
    Ok(header + (threshold + SLACK_FRAMES) * (frame_header + page))
}

/// Extends `db`'s log with zeros to its working size, synced, if it is shorter. Call with
/// `conn` open on `db`, so that the log exists and `SQLite` does not remove it meanwhile.
///
/// The zeros are appended (`O_APPEND`): each write lands past the end of the file as it is at
/// that moment, so even a process that has the database open and writes its log meanwhile
/// (a tool opened beside the driver) never has a frame it wrote overwritten.
pub fn reserve(conn: &Connection, db: &Path) -> Result<(), StoreError> {
    let wal = super::wal::with_suffix(db, "-wal");
    let want = working_size(conn, db)?;
    let mut file = OpenOptions::new().append(true).open(&wal).map_err(super::io_error("open", &wal))?;
    let have = file.metadata().map_err(super::io_error("measure", &wal))?.len();
    if have >= want {
        return Ok(());
    }
    std::io::copy(&mut std::io::repeat(0).take(want - have), &mut file)
        .map_err(super::io_error("reserve space in", &wal))?;
    file.sync_all().map_err(super::io_error("sync", &wal))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::store::{EmbeddedStore, VolumeStore, DB_FILE};
    use crate::volume::{VolumeKind, VolumeMeta};

    fn meta(id: &str) -> VolumeMeta {
        VolumeMeta {
            id: id.into(),
            name: id.into(),
            kind: VolumeKind::Filesystem,
            capacity_bytes: 1 << 30,
            parameters: std::collections::BTreeMap::new(),
        }
    }

    fn log_len(root: &Path) -> u64 {
        std::fs::metadata(crate::store::wal::with_suffix(&root.join(DB_FILE), "-wal")).unwrap().len()
    }

    /// The store's files as a process killed now would leave them, copied to `to`.
    fn killed_copy(root: &Path, to: &Path) {
        for suffix in ["", "-wal", "-shm"] {
            let name = format!("{DB_FILE}{suffix}");
            std::fs::copy(root.join(&name), to.join(&name)).unwrap();
        }
    }

    /// The working size of a fresh database's log, by `SQLite`'s defaults.
    fn default_working_size() -> u64 {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("t.db");
        working_size(&rusqlite::Connection::open(&db).unwrap(), &db).unwrap()
    }

    #[test]
    fn an_open_store_has_its_log_at_working_size_each_start() {
        let dir = tempfile::tempdir().unwrap();
        let want = default_working_size();
        assert!(want > 4 << 20, "the default threshold is 1000 pages of 4 KiB: {want}");
        let store = EmbeddedStore::open(dir.path(), 1 << 40).unwrap();
        assert_eq!(log_len(dir.path()), want);
        store.create(&meta("pvc-1")).unwrap();
        assert_eq!(log_len(dir.path()), want, "a commit overwrites reserved space");
        drop(store);
        // A clean close folds the log into the database and removes it; the next start reserves again.
        let _store = EmbeddedStore::open(dir.path(), 1 << 40).unwrap();
        assert_eq!(log_len(dir.path()), want);
    }

    #[test]
    fn a_store_killed_before_and_after_commits_into_reserved_space_opens_with_every_commit() {
        let (dir, before, after) =
            (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        EmbeddedStore::open(dir.path(), 1 << 40).unwrap().create(&meta("pvc-0")).unwrap();
        // Reopened after a clean close, nothing to migrate: the log is reserved space only.
        let store = EmbeddedStore::open(dir.path(), 1 << 40).unwrap();
        killed_copy(dir.path(), before.path());
        for id in ["pvc-1", "pvc-2", "pvc-3"] {
            store.create(&meta(id)).unwrap();
        }
        killed_copy(dir.path(), after.path());
        crate::store::wal::verify(&before.path().join(DB_FILE)).expect("a log of zeros only");
        let reopened = EmbeddedStore::open(before.path(), 1 << 40).unwrap();
        assert!(reopened.stored("pvc-0").unwrap().is_some() && reopened.stored("pvc-1").unwrap().is_none());
        crate::store::wal::verify(&after.path().join(DB_FILE)).expect("three commits, then zeros");
        let reopened = EmbeddedStore::open(after.path(), 1 << 40).unwrap();
        for id in ["pvc-0", "pvc-1", "pvc-2", "pvc-3"] {
            assert!(reopened.stored(id).unwrap().is_some(), "{id} was acknowledged");
        }
    }

    #[test]
    fn a_store_opened_beside_a_live_writer_loses_none_of_its_commits() {
        let (dir, killed) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        drop(EmbeddedStore::open(dir.path(), 1 << 40).unwrap());
        // Another connection writes a short log of its own, and stays open.
        let db = dir.path().join(DB_FILE);
        let writer = rusqlite::Connection::open(&db).unwrap();
        writer.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE side (v INTEGER)").unwrap();
        let insert = |v: i64| assert_eq!(writer.execute("INSERT INTO side VALUES (?1)", [v]).unwrap(), 1);
        (0..3).for_each(insert);
        assert!(log_len(dir.path()) < default_working_size());
        let beside = EmbeddedStore::open(dir.path(), 1 << 40).unwrap();
        assert_eq!(log_len(dir.path()), default_working_size());
        (3..6).for_each(insert);
        killed_copy(dir.path(), killed.path());
        drop(beside);
        let copy = rusqlite::Connection::open(killed.path().join(DB_FILE)).unwrap();
        let rows: i64 = copy.query_row("SELECT count(*) FROM side", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 6, "every commit of the live writer, before and after the reservation");
    }
}
