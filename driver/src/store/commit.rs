//! Group commit: one thread owns the database's write connection. Whoever calls while it is
//! busy with a commit queues up, and the next commit takes every queued change in one
//! transaction, so concurrent changes share one write and one sync; each caller is woken with
//! its own result only after that commit is durable (or failed).

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use rusqlite::{Connection, TransactionBehavior};

use super::{DbFailure, StoreError};

/// One caller's change, run inside the shared transaction, under a savepoint of its own: all
/// or nothing. Its `Ok` value is handed back (a term, or 0). An `Err` other than
/// [`StoreError::Db`] is that caller's alone (a refused fence, a corrupt row): what it wrote
/// before returning is rolled back and the other changes commit; a `Db` error aborts the whole
/// transaction and fails every caller in it.
pub type Op = Box<dyn FnOnce(&Connection) -> Result<u64, StoreError> + Send>;

struct Request {
    op: Op,
    reply: SyncSender<Result<u64, StoreError>>,
}

/// At most this many changes share one transaction.
const MAX_BATCH: usize = 4096;

/// Names the operation and database an error came from; corruption is [`StoreError::Corrupt`].
pub fn db_error(op: &'static str, path: &Path) -> impl FnOnce(rusqlite::Error) -> StoreError + use<> {
    let path = path.to_path_buf();
    move |e| match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase) => {
            StoreError::Corrupt { path, message: e.to_string() }
        }
        _ => StoreError::Db { op, path, source: DbFailure::Sqlite(e) },
    }
}

/// The committing thread and the queue to it; dropping it lets the thread finish what is
/// queued, close the connection and end.
#[derive(Debug)]
pub struct Committer {
    queue: Option<Sender<Request>>,
    thread: Option<JoinHandle<()>>,
    db: PathBuf,
}

impl Committer {
    pub fn start(conn: Connection, db: &Path) -> Result<Self, StoreError> {
        let (queue, requests) = mpsc::channel();
        let path = db.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("tether-store-commit".into())
            .spawn(move || run(conn, &path, &requests))
            .map_err(super::io_error("start the committer of", db))?;
        Ok(Self { queue: Some(queue), thread: Some(thread), db: db.to_path_buf() })
    }

    /// Runs `op` in the next commit and returns its result once that commit is durable.
    pub fn commit(&self, op: Op) -> Result<u64, StoreError> {
        let stopped = || StoreError::Db { op: "commit to", path: self.db.clone(), source: DbFailure::CommitterStopped };
        let (reply, done) = mpsc::sync_channel(1);
        let queue = self.queue.as_ref().ok_or_else(stopped)?;
        queue.send(Request { op, reply }).map_err(|_| stopped())?;
        done.recv().map_err(|_| stopped())?
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(mut conn: Connection, db: &Path, requests: &Receiver<Request>) {
    while let Ok(first) = requests.recv() {
        let batch: Vec<Request> = std::iter::once(first).chain(requests.try_iter().take(MAX_BATCH - 1)).collect();
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|r| (r.op, r.reply)).unzip();
        match commit_all(&mut conn, db, ops) {
            Ok(results) => {
                for (reply, result) in replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(e) => fail_all(replies, e),
        }
    }
}

/// Hands the error of a failed transaction to every caller in it: as it is to a lone caller,
/// shared otherwise.
fn fail_all(mut replies: Vec<SyncSender<Result<u64, StoreError>>>, e: StoreError) {
    if replies.len() == 1 {
        let _ = replies.pop().map(|reply| reply.send(Err(e)));
        return;
    }
    let shared = Arc::new(e);
    for reply in replies {
        let _ = reply.send(Err(StoreError::Shared(Arc::clone(&shared))));
    }
}

/// One transaction for `ops`, committed (and so synced) once, each op inside a savepoint so that
/// an op's own failure takes back only its own writes (a record whose fence was refused is not
/// committed without it). An error beginning or committing the transaction, handling a
/// savepoint, or a [`StoreError::Db`] of one op, fails the whole transaction.
fn commit_all(conn: &mut Connection, db: &Path, ops: Vec<Op>) -> Result<Vec<Result<u64, StoreError>>, StoreError> {
    let mut tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db_error("begin a transaction on", db))?;
    let mut results = Vec::with_capacity(ops.len());
    for op in ops {
        let change = tx.savepoint().map_err(db_error("begin a change on", db))?;
        match op(&change) {
            Err(e @ StoreError::Db { .. }) => return Err(e), // the transaction rolls back on drop
            Ok(value) => {
                change.commit().map_err(db_error("end a change on", db))?;
                results.push(Ok(value));
            }
            Err(e) => {
                // A savepoint finishes by its drop behaviour, rollback: ROLLBACK TO, then RELEASE.
                change.finish().map_err(db_error("roll back a change on", db))?;
                results.push(Err(e));
            }
        }
    }
    tx.commit().map_err(db_error("commit to", db))?;
    Ok(results)
}
