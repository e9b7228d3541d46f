//! What one durable change of a volume costs in each candidate for the driver's store, with one
//! change per commit and with 64 changes sharing one commit, beside a bare `fdatasync` of the
//! same filesystem, all taken in turns in the same run:
//!
//! - files (the store before issue 13): each change is its own file, replaced by write, fsync,
//!   rename and directory fsync; nothing can share a commit, so only one change per commit.
//! - `SQLite` (rusqlite, bundled) in write-ahead-log mode with `synchronous = FULL`.
//! - redb with `Durability::Immediate`.
//!
//! Then the driver's store itself (`EmbeddedStore`, `SQLite` behind the group committer): 1 and 64
//! threads saving records, each save returning once durable.
//!
//! `cargo bench -p tether-benches --bench store_commit` — under `TETHER_BENCH_STATE_DIR`
//! (default: a temporary directory under `target/`, on disk).

use std::path::Path;
use std::time::{Duration, Instant};

use tether_benches::{fdatasync_latencies, percentile};
#[path = "shared/saves.rs"]
mod saves;
use tether_driver::store::write_atomic;

const COMMITS: usize = 200;
const BATCH: usize = 64;

/// A record of the size the driver writes for an attached volume (about 300 bytes of JSON).
fn record(i: usize) -> Vec<u8> {
    format!(
        r#"{{"meta":{{"id":"pvc-{i:08}","name":"pvc-{i:08}","kind":"Filesystem","capacity_bytes":1073741824,"parameters":{{}}}},"engine":{{"volume":"pvc-{i:08}","epoch":4294967301,"attachment":{{"nodes":["node-a"],"mode":"RWO","readonly":false,"admitted":[4294967301]}},"last_detach":null}}}}"#
    )
    .into_bytes()
}

/// One candidate: makes `batch` changes durable per call, starting at change `first`.
type Commit = Box<dyn FnMut(usize)>;

fn report(what: &str, batch: usize, lat: &[Duration], floor: Duration) {
    let p50 = percentile(lat, 500);
    let per_change = p50 / u32::try_from(batch).unwrap_or(1);
    println!(
        "{what:<34} changes/commit={batch:<3} commit p50={p50:>9.1?} p99={:>9.1?} per change={per_change:>9.1?} = {:.2}x fdatasync",
        percentile(lat, 990),
        per_change.as_secs_f64() / floor.as_secs_f64()
    );
}

fn files(dir: &Path, batch: usize) -> Commit {
    std::fs::create_dir_all(dir).expect("dir");
    let dir = dir.to_path_buf();
    Box::new(move |first| {
        for i in first..first + batch {
            write_atomic(&dir, &format!("pvc-{}.json", i % 1000), &record(i)).expect("write");
        }
    })
}

fn sqlite(dir: &Path, batch: usize) -> Commit {
    std::fs::create_dir_all(dir).expect("dir");
    let mut conn = rusqlite::Connection::open(dir.join("bench.db")).expect("open");
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0)).expect("wal");
    conn.pragma_update(None, "synchronous", "FULL").expect("synchronous");
    conn.execute_batch("CREATE TABLE volumes (id TEXT PRIMARY KEY NOT NULL, record BLOB NOT NULL) STRICT")
        .expect("table");
    Box::new(move |first| {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate).expect("begin");
        for i in first..first + batch {
            tx.execute(
                "INSERT INTO volumes (id, record) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET record = excluded.record",
                rusqlite::params![format!("pvc-{}", i % 1000), record(i)],
            )
            .expect("insert");
        }
        tx.commit().expect("commit");
    })
}

const VOLUMES: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("volumes");

fn redb(dir: &Path, batch: usize) -> Commit {
    std::fs::create_dir_all(dir).expect("dir");
    let db = redb::Database::create(dir.join("bench.redb")).expect("open");
    Box::new(move |first| {
        let mut tx = db.begin_write().expect("begin");
        tx.set_durability(redb::Durability::Immediate);
        {
            let mut table = tx.open_table(VOLUMES).expect("table");
            for i in first..first + batch {
                table.insert(format!("pvc-{}", i % 1000).as_str(), record(i).as_slice()).expect("insert");
            }
        }
        tx.commit().expect("commit");
    })
}

/// Every candidate's commits and bare `fdatasync`s, taken in turns (one of each per round), so
/// that the others' load on the disk falls on all of them alike: (bare `fdatasync` latencies,
/// each candidate's latencies), all sorted.
fn interleaved(root: &Path, candidates: &mut [(&str, usize, Commit)]) -> (Vec<Duration>, Vec<Vec<Duration>>) {
    let mut floor = Vec::with_capacity(COMMITS);
    let mut lat = vec![Vec::with_capacity(COMMITS); candidates.len()];
    for k in 0..COMMITS {
        floor.extend(fdatasync_latencies(root, 1));
        for ((_, batch, commit), lat) in candidates.iter_mut().zip(&mut lat) {
            let t = Instant::now();
            commit(k * *batch);
            lat.push(t.elapsed());
        }
    }
    floor.sort_unstable();
    for l in &mut lat {
        l.sort_unstable();
    }
    (floor, lat)
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --benches` there is nothing to measure.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = tether_benches::state_root("store-bench");
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(&root).expect("state root");
    println!("under {}", root.display());
    let mut candidates: Vec<(&str, usize, Commit)> = Vec::new();
    // Files cannot share a commit: 64 changes cost 64 times one.
    candidates.push(("files: write, fsync, rename, fsync", 1, files(&root.join("files"), 1)));
    for batch in [1, BATCH] {
        candidates.push(("SQLite WAL, synchronous=FULL", batch, sqlite(&root.join(format!("sqlite-{batch}")), batch)));
        candidates.push(("redb, Durability::Immediate", batch, redb(&root.join(format!("redb-{batch}")), batch)));
    }
    let (floor, lat) = interleaved(&root, &mut candidates);
    let p50 = percentile(&floor, 500);
    println!("{:<34} p50={p50:>9.1?} p99={:>9.1?}", "bare fdatasync (baseline)", percentile(&floor, 990));
    for ((what, batch, _), lat) in candidates.iter().zip(&lat) {
        report(what, *batch, lat, p50);
    }
    for threads in [1, BATCH] {
        let (lat, per_s) = saves::embedded(&root.join(format!("embedded-{threads}")), threads, COMMITS);
        println!(
            "{:<34} threads={threads:<3} save p50={:>9.1?} p99={:>9.1?} saves/s={per_s:>8.0} = {:.2}x 1/fdatasync",
            "EmbeddedStore (group commit)",
            percentile(&lat, 500),
            percentile(&lat, 990),
            per_s * p50.as_secs_f64()
        );
    }
    let _ = std::fs::remove_dir_all(&root);
}
