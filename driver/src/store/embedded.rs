//! The embedded store: volumes as directories or sparse files under `--state-dir/data/`, and
//! everything else in one `SQLite` database, `--state-dir/store.db` (write-ahead log, synced on
//! every commit): each volume's record ([`StoredVolume`] as JSON), the last fence applied to it
//! ([`StoredFence`] as JSON) and the last controller term handed out.
//!
//! Every change runs in the shared transaction of the committer (`commit.rs`), so concurrent
//! changes are made durable by one sync. Every check-then-write (the fence rule, the next term)
//! runs inside that transaction, which holds the database's write lock: the rule holds across
//! every process sharing the state directory, an old leader's late write included.
//!
//! A create writes the data first and the record last, so a crash in between leaves data
//! without a record, which `load` removes: nothing unacknowledged survives half-made. The
//! layout before the database (one JSON file per record and per fence, a `term` file) is
//! imported on the first open (`legacy.rs`).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use tether_core::{Fence, VolumeEntry, VolumeFence};

use super::atomic::{io as io_error, sync_dir};
use super::commit::{db_error, Committer, Op};
use super::{data, legacy, DbFailure, StateLock, StoreError, StoredFence, StoredVolume, StoredVolumeRef, VolumeStore};
use crate::volume::VolumeMeta;

/// The database's file name under the state directory.
pub const DB_FILE: &str = "store.db";

/// How long a change waits for another process's transaction (say, the other replica's start).
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

const SCHEMA: &str = "
    CREATE TABLE IF NOT EXISTS volumes (id TEXT PRIMARY KEY NOT NULL, record BLOB NOT NULL) STRICT;
    CREATE TABLE IF NOT EXISTS fences (id TEXT PRIMARY KEY NOT NULL, fence BLOB NOT NULL) STRICT;
    CREATE TABLE IF NOT EXISTS settings (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL) STRICT;
";

/// The `settings` key of the last term handed out.
const TERM: &str = "term";

/// Volumes under one directory.
#[derive(Debug)]
pub struct EmbeddedStore {
    data: PathBuf,
    db: PathBuf,
    /// For reads, beside the committer's connection (the log lets them run during a commit).
    reader: Mutex<Connection>,
    committer: Committer,
    capacity: u64,
    /// The state directory's lock, when this store serves it (dropped after the committer).
    lock: Option<StateLock>,
}

/// A connection to `db` in write-ahead-log mode, every commit synced.
fn connect(db: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(db).map_err(db_error("open", db))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(db_error("configure", db))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db_error("set the journal mode of", db))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Db {
            op: "set the journal mode of",
            path: db.into(),
            source: DbFailure::JournalMode(mode),
        });
    }
    conn.pragma_update(None, "synchronous", "FULL").map_err(db_error("configure", db))?;
    Ok(conn)
}

/// Refuses a database whose pages do not hold together (a torn or truncated file).
fn check_integrity(conn: &Connection, db: &Path) -> Result<(), StoreError> {
    let mut stmt = conn.prepare("PRAGMA quick_check").map_err(db_error("check", db))?;
    let found: Vec<String> =
        stmt.query_map([], |r| r.get(0)).and_then(Iterator::collect).map_err(db_error("check", db))?;
    if found == ["ok"] {
        Ok(())
    } else {
        Err(StoreError::Corrupt { path: db.into(), message: found.join("; ") })
    }
}

/// Creates the schema and imports the old layout, unless an earlier open did, in one
/// transaction: a crash before its commit leaves the old files as they were.
fn migrate(conn: &mut Connection, root: &Path, db: &Path) -> Result<(), StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(db_error("begin on", db))?;
    tx.execute_batch(SCHEMA).map_err(db_error("create the tables of", db))?;
    if setting(&tx, db, legacy::MIGRATED)?.is_none() {
        let old = legacy::read(root)?;
        for (id, record) in &old.records {
            put_record(&tx, db, id, record)?;
        }
        for (id, fence) in &old.fences {
            put_fence(&tx, db, id, fence)?;
        }
        if let Some(term) = old.term {
            put_setting(&tx, db, TERM, term)?;
        }
        put_setting(&tx, db, legacy::MIGRATED, 1)?;
        if !old.is_empty() {
            let (volumes, fences) = (old.records.len(), old.fences.len());
            tracing::info!(volumes, fences, term = old.term, db = %db.display(), "imported the file-per-record state");
        }
    }
    tx.commit().map_err(db_error("commit to", db))
}

fn setting(conn: &Connection, db: &Path, key: &str) -> Result<Option<u64>, StoreError> {
    let value: Option<i64> = lookup(conn, db, "SELECT value FROM settings WHERE key = ?1", key)?;
    value
        .map(|v| {
            u64::try_from(v)
                .map_err(|_| StoreError::Corrupt { path: db.into(), message: format!("setting {key} is {v}") })
        })
        .transpose()
}

fn put_setting(conn: &Connection, db: &Path, key: &'static str, value: u64) -> Result<(), StoreError> {
    let value = i64::try_from(value).map_err(|_| StoreError::Db {
        op: "write to",
        path: db.into(),
        source: DbFailure::TooLarge { key, value },
    })?;
    run(
        conn,
        db,
        "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![key, value],
    )
}

/// Runs one write through the connection's cache of prepared statements.
fn run(conn: &Connection, db: &Path, sql: &str, params: impl rusqlite::Params) -> Result<(), StoreError> {
    conn.prepare_cached(sql).and_then(|mut stmt| stmt.execute(params)).map(drop).map_err(db_error("write to", db))
}

/// The first column of the row `sql` selects with `key`, if any, through the statement cache.
fn lookup<T: rusqlite::types::FromSql>(
    conn: &Connection,
    db: &Path,
    sql: &str,
    key: &str,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut stmt| stmt.query_row([key], |r| r.get(0)).optional())
        .map_err(db_error("read", db))
}

fn put_record(conn: &Connection, db: &Path, id: &str, record: &[u8]) -> Result<(), StoreError> {
    run(
        conn,
        db,
        "INSERT INTO volumes (id, record) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET record = excluded.record",
        params![id, record],
    )
}

fn put_fence(conn: &Connection, db: &Path, id: &str, fence: &Fence) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(&StoredFence::from(fence)).expect("a fence always serialises");
    run(
        conn,
        db,
        "INSERT INTO fences (id, fence) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET fence = excluded.fence",
        params![id, bytes],
    )
}

fn decode_record(db: &Path, id: &str, bytes: &[u8]) -> Result<StoredVolume, StoreError> {
    let corrupt = |message| StoreError::Corrupt { path: db.into(), message };
    let stored: StoredVolume =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("the record of volume {id:?}: {e}")))?;
    if stored.meta.id != id {
        return Err(corrupt(format!("the record of volume {id:?} describes volume {:?}", stored.meta.id)));
    }
    Ok(stored)
}

fn decode_fence(db: &Path, id: &str, bytes: &[u8]) -> Result<Fence, StoreError> {
    let corrupt = |message| StoreError::Corrupt { path: db.into(), message };
    let stored: StoredFence =
        serde_json::from_slice(bytes).map_err(|e| corrupt(format!("the fence applied to volume {id:?}: {e}")))?;
    Fence::try_from(stored).map_err(|e| corrupt(format!("the fence applied to volume {id:?}: {e}")))
}

fn read_fence(conn: &Connection, db: &Path, id: &str) -> Result<Option<Fence>, StoreError> {
    let bytes: Option<Vec<u8>> = lookup(conn, db, "SELECT fence FROM fences WHERE id = ?1", id)?;
    bytes.map(|b| decode_fence(db, id, &b)).transpose()
}

/// Applies `fence` to `id` by the target's rule, inside the committer's transaction (which
/// holds the write lock of every process on the database): the same fence again changes
/// nothing, an older or equal other one is refused.
/// `recorded` says the caller just wrote the volume's record in this transaction.
fn apply_one(
    conn: &Connection,
    db: &Path,
    data: &Path,
    id: &str,
    fence: &Fence,
    recorded: bool,
) -> Result<(), StoreError> {
    if !recorded && lookup::<i64>(conn, db, "SELECT 1 FROM volumes WHERE id = ?1", id)?.is_none() {
        let source = std::io::Error::from(std::io::ErrorKind::NotFound);
        return Err(StoreError::Io { op: "apply a fence to", path: data.join(id), source });
    }
    let applied = read_fence(conn, db, id)?;
    if applied.as_ref() == Some(fence) {
        return Ok(());
    }
    fence.check_supersedes(id, applied.map(|f| f.epoch)).map_err(StoreError::Fence)?;
    put_fence(conn, db, id, fence)
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store under `root`, holding at most `capacity` bytes;
    /// refuses a database that is not whole, naming its file. On the first open of a state
    /// directory of the earlier layout, imports it (see `legacy.rs`).
    pub fn open(root: &Path, capacity: u64) -> Result<Self, StoreError> {
        let data = root.join("data");
        fs::create_dir_all(&data).map_err(io_error("create directory", &data))?;
        let db = root.join(DB_FILE);
        let mut writer = connect(&db)?;
        check_integrity(&writer, &db)?;
        migrate(&mut writer, root, &db)?;
        legacy::remove(root)?;
        super::wal_space::reserve(&writer, &db)?;
        let reader = Mutex::new(connect(&db)?);
        let committer = Committer::start(writer, &db)?;
        Ok(Self { data, db, reader, committer, capacity, lock: None })
    }

    /// [`EmbeddedStore::open`] for the process that serves the state directory, holding its
    /// `lock` for the store's life: first refuses a write-ahead log that would lose
    /// acknowledged commits (see `wal.rs`), which it can check because nothing else has the
    /// database open.
    pub fn serve(root: &Path, capacity: u64, lock: StateLock) -> Result<Self, StoreError> {
        super::wal::verify(&root.join(DB_FILE))?;
        let mut store = Self::open(root, capacity)?;
        store.lock = Some(lock);
        Ok(store)
    }

    /// The database file.
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// The last term handed out (0 before the first), read only.
    pub fn term(&self) -> Result<u64, StoreError> {
        Ok(setting(&self.reader(), &self.db, TERM)?.unwrap_or(0))
    }

    /// One volume's record as stored, if any.
    pub fn stored(&self, id: &str) -> Result<Option<StoredVolume>, StoreError> {
        let bytes: Option<Vec<u8>> = lookup(&self.reader(), &self.db, "SELECT record FROM volumes WHERE id = ?1", id)?;
        bytes.map(|b| decode_record(&self.db, id, &b)).transpose()
    }

    /// The id of every stored volume, read only (a `load` also removes data without a record).
    pub fn volume_ids(&self) -> Result<Vec<String>, StoreError> {
        Ok(self
            .rows("SELECT id, record FROM volumes ORDER BY id", decode_record)?
            .into_iter()
            .map(|(id, _)| id)
            .collect())
    }

    /// Every applied fence, by volume id.
    pub fn applied_fences(&self) -> Result<Vec<(String, Fence)>, StoreError> {
        self.rows("SELECT id, fence FROM fences ORDER BY id", decode_fence)
    }

    fn reader(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.reader.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn rows<T>(
        &self,
        sql: &str,
        decode: fn(&Path, &str, &[u8]) -> Result<T, StoreError>,
    ) -> Result<Vec<(String, T)>, StoreError> {
        let reader = self.reader();
        let mut stmt = reader.prepare(sql).map_err(db_error("read", &self.db))?;
        let mut rows = stmt.query([]).map_err(db_error("read", &self.db))?;
        let mut decoded = Vec::new();
        while let Some(row) = rows.next().map_err(db_error("read", &self.db))? {
            let (id, bytes): (String, Vec<u8>) =
                row.get(0).and_then(|id| Ok((id, row.get(1)?))).map_err(db_error("read", &self.db))?;
            let value = decode(&self.db, &id, &bytes)?;
            decoded.push((id, value));
        }
        Ok(decoded)
    }

    fn commit(
        &self,
        op: impl FnOnce(&Connection, &Path, &Path) -> Result<u64, StoreError> + Send + 'static,
    ) -> Result<u64, StoreError> {
        let (db, data) = (self.db.clone(), self.data.clone());
        let op: Op = Box::new(move |conn| op(conn, &db, &data));
        self.committer.commit(op)
    }

    fn record_bytes(meta: &VolumeMeta, engine: Option<&VolumeEntry>) -> Vec<u8> {
        serde_json::to_vec(&StoredVolumeRef { meta, engine }).expect("a stored volume always serialises")
    }

    /// Removes data that has no record: a create that crashed before it was acknowledged.
    fn remove_orphans(&self, known: &std::collections::HashSet<&str>) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.data).map_err(io_error("list", &self.data))? {
            let entry = entry.map_err(io_error("list", &self.data))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if known.contains(name.as_str()) {
                continue;
            }
            let path = entry.path();
            tracing::warn!(path = %path.display(), "removing volume data without a record (unacknowledged create)");
            let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
            removed.map_err(io_error("remove", &path))?;
        }
        sync_dir(&self.data)
    }
}

impl VolumeStore for EmbeddedStore {
    fn load(&self) -> Result<Vec<StoredVolume>, StoreError> {
        let volumes: Vec<StoredVolume> = self
            .rows("SELECT id, record FROM volumes ORDER BY id", decode_record)?
            .into_iter()
            .map(|(_, v)| v)
            .collect();
        let known = volumes.iter().map(|v| v.meta.id.as_str()).collect();
        self.remove_orphans(&known)?;
        Ok(volumes)
    }

    fn create(&self, meta: &VolumeMeta) -> Result<(), StoreError> {
        data::provision(&self.data, meta)?;
        self.save(meta, None, None)
    }

    fn save(&self, meta: &VolumeMeta, engine: Option<&VolumeEntry>, fence: Option<&Fence>) -> Result<(), StoreError> {
        let (id, record, fence) = (meta.id.clone(), Self::record_bytes(meta, engine), fence.cloned());
        self.commit(move |conn, db, data| {
            put_record(conn, db, &id, &record)?;
            fence.map_or(Ok(()), |f| apply_one(conn, db, data, &id, &f, true))?;
            Ok(0)
        })
        .map(drop)
    }

    /// One transaction, so one sync, for every record: 10 000 adopted volumes persist in one
    /// commit instead of 10 000.
    fn save_all(&self, volumes: &[(Arc<VolumeMeta>, Option<VolumeEntry>)]) -> Result<(), StoreError> {
        let records: Vec<(String, Vec<u8>)> =
            volumes.iter().map(|(meta, engine)| (meta.id.clone(), Self::record_bytes(meta, engine.as_ref()))).collect();
        self.commit(move |conn, db, _| {
            records.iter().try_for_each(|(id, record)| put_record(conn, db, id, record)).map(|()| 0)
        })
        .map(drop)
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        // Record first: a crash after it leaves orphan data, which the next load removes.
        let owned = id.to_owned();
        self.commit(move |conn, db, _| {
            for sql in ["DELETE FROM volumes WHERE id = ?1", "DELETE FROM fences WHERE id = ?1"] {
                run(conn, db, sql, [&owned])?;
            }
            Ok(0)
        })?;
        data::remove(&self.data, id)
    }

    fn source(&self, id: &str) -> PathBuf {
        self.data.join(id)
    }

    fn record_path(&self, _id: &str) -> PathBuf {
        self.db.clone()
    }

    fn capacity_bytes(&self) -> u64 {
        self.capacity
    }

    fn apply_fence(&self, id: &str, fence: &Fence) -> Result<(), StoreError> {
        let (id, fence) = (id.to_owned(), fence.clone());
        self.commit(move |conn, db, data| apply_one(conn, db, data, &id, &fence, false).map(|()| 0)).map(drop)
    }

    /// One transaction, so one sync, for the whole batch (100 000 volumes re-fence in
    /// seconds); each fence by the same rule, stopping at the first refused.
    fn apply_fences(&self, fences: &[VolumeFence]) -> Result<(), StoreError> {
        let fences = fences.to_vec();
        self.commit(move |conn, db, data| {
            fences.iter().try_for_each(|vf| apply_one(conn, db, data, &vf.volume, &vf.fence, false)).map(|()| 0)
        })
        .map(drop)
    }

    fn applied_fence(&self, id: &str) -> Result<Option<Fence>, StoreError> {
        read_fence(&self.reader(), &self.db, id)
    }

    fn next_term(&self, at_least: u64) -> Result<u64, StoreError> {
        self.commit(move |conn, db, _| {
            let term = setting(conn, db, TERM)?.unwrap_or(0).saturating_add(1).max(at_least);
            put_setting(conn, db, TERM, term)?;
            Ok(term)
        })
    }
}
