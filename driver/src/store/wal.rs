//! Checks `SQLite`'s write-ahead log (`store.db-wal`) before `SQLite` reads it, so that a damaged
//! log stops start-up instead of silently dropping acknowledged commits.
//!
//! `SQLite`'s recovery takes the first frame that fails its checksum as the end of the log and
//! replays only the commits before it: a frame damaged in the middle of the log makes every
//! later, synced commit vanish without a word. What a crash can legitimately leave is only a
//! torn tail: the frames of the one commit whose sync never returned, and so was never
//! acknowledged. Two checks tell that apart from damage, from the formats `SQLite` documents
//! (its file-format page, "The Write-Ahead Log", and the wal-index header of its WAL-mode
//! notes):
//!
//! - the log itself: a frame of this log (salts equal to the header's) after the first frame
//!   that fails, or a header that fails its checksum with frames after it, is damage;
//! - the wal-index (`store.db-shm`), which survives a killed process: its header records the
//!   last frame of the last synced commit (`mxFrame`); a log whose valid commits end before it
//!   lost acknowledged commits, the last frame's included.
//!
//! Run it only while no other connection has the database open (the state directory's lock is
//! held and this process opened no connection yet): a log being written can look torn.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use super::StoreError;

pub(super) const WAL_HEADER: usize = 32;
pub(super) const FRAME_HEADER: usize = 24;
/// The header's magic; the low bit says the checksums read words big-endian.
const MAGIC: u32 = 0x377f_0682;
const VERSION: u32 = 3_007_000;
/// The wal-index header (two copies of 48 bytes), then the checkpoint info: `nBackfill` first.
const SHM_HEADER: usize = 48;
const SHM_BACKFILL: usize = 2 * SHM_HEADER;

/// `SQLite`'s checksum over `bytes` (a multiple of 8) from `(s0, s1)`, words in the given order.
fn checksum(big_endian: bool, (mut s0, mut s1): (u32, u32), bytes: &[u8]) -> (u32, u32) {
    let word = |b: &[u8]| {
        let b = [b[0], b[1], b[2], b[3]];
        if big_endian {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        }
    };
    for pair in bytes.chunks_exact(8) {
        s0 = s0.wrapping_add(word(&pair[..4])).wrapping_add(s1);
        s1 = s1.wrapping_add(word(&pair[4..])).wrapping_add(s0);
    }
    (s0, s1)
}

fn be(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn salt(bytes: &[u8], at: usize) -> [u8; 8] {
    let mut salt = [0; 8];
    salt.copy_from_slice(&bytes[at..at + 8]);
    salt
}

fn ne(bytes: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

/// What the log holds, as `SQLite`'s recovery would read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogScan {
    /// The header's salts (as bytes: `SQLite` copies them, it does not parse them), if the
    /// header is whole.
    pub salts: Option<[u8; 8]>,
    /// Whole frames in the file.
    pub frames: usize,
    /// The frames recovery keeps: up to the last commit frame before the first invalid one.
    pub recovered: usize,
    /// The first frame (from 1) that fails, if any, and a frame of this log after it.
    pub damage: Option<(usize, usize)>,
}

/// Reads the log `bytes` as `SQLite`'s recovery does, and notes damage.
pub fn scan(bytes: &[u8]) -> LogScan {
    let header = bytes.get(..WAL_HEADER);
    let valid_header = header.and_then(|h| {
        let magic = be(h, 0);
        let page = usize::try_from(be(h, 8)).ok()?;
        let ok = magic & !1 == MAGIC
            && be(h, 4) == VERSION
            && page.is_power_of_two()
            && (512..=65536).contains(&page)
            && checksum(magic & 1 == 1, (0, 0), &h[..24]) == (be(h, 24), be(h, 28));
        ok.then_some((magic & 1 == 1, page, salt(h, 16), (be(h, 24), be(h, 28))))
    });
    let Some((big_endian, page, salts, mut sum)) = valid_header else {
        // Without a whole header no frame can be read or checked: room for a frame of the
        // smallest page after it is damage (a torn header has nothing synced behind it), unless
        // every byte is zero: space reserved for a log not yet begun (`wal_space.rs`).
        let reserved = bytes.iter().all(|&b| b == 0);
        let damaged = !reserved && bytes.len().saturating_sub(WAL_HEADER) >= FRAME_HEADER + 512;
        return LogScan { salts: None, frames: 0, recovered: 0, damage: damaged.then_some((0, 1)) };
    };
    let size = FRAME_HEADER + page;
    let frames: Vec<&[u8]> = bytes[WAL_HEADER..].chunks_exact(size).collect();
    let ours = |f: &[u8]| salt(f, 8) == salts;
    let (mut recovered, mut first_bad) = (0, None);
    for (i, f) in frames.iter().enumerate() {
        sum = checksum(big_endian, checksum(big_endian, sum, &f[..8]), &f[FRAME_HEADER..]);
        if be(f, 0) == 0 || !ours(f) || sum != (be(f, 16), be(f, 20)) {
            first_bad = Some(i);
            break;
        }
        if be(f, 4) != 0 {
            recovered = i + 1;
        }
    }
    let damage = first_bad.and_then(|bad| {
        let later = frames[bad + 1..].iter().position(|f| ours(f))?;
        Some((bad + 1, bad + 2 + later))
    });
    LogScan { salts: Some(salts), frames: frames.len(), recovered, damage }
}

/// The wal-index header's word of the last synced commit and the log's salts, if the header is
/// whole (both copies equal, initialised, checksum right); and the checkpoint's `nBackfill`.
fn synced(shm: &[u8]) -> Option<(u32, [u8; 8], u32)> {
    let (one, two) = (shm.get(..SHM_HEADER)?, shm.get(SHM_HEADER..2 * SHM_HEADER)?);
    let whole = one == two
        && ne(one, 0) == VERSION
        && one[12] == 1
        && checksum(cfg!(target_endian = "big"), (0, 0), &one[..40]) == (ne(one, 40), ne(one, 44));
    let backfilled = shm.get(SHM_BACKFILL..SHM_BACKFILL + 4)?;
    whole.then(|| (ne(one, 16), salt(one, 32), ne(backfilled, 0)))
}

fn read(path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match File::open(path) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).map_err(super::io_error("read", path))?;
            Ok(Some(bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(super::io_error("open", path)(e)),
    }
}

/// `db`'s file with `suffix` after its name: `-wal` for the log, `-shm` for the wal-index.
pub(super) fn with_suffix(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Refuses, naming `<db>-wal`, a log that would lose acknowledged commits when `SQLite` opens
/// `db`; a torn tail of an unacknowledged commit passes. See the module doc for when to call it.
pub fn verify(db: &Path) -> Result<(), StoreError> {
    let path = with_suffix(db, "-wal");
    let log = read(&path)?.unwrap_or_default();
    let found = scan(&log);
    let corrupt = |message| Err(StoreError::Corrupt { path: path.clone(), message });
    match found.damage {
        Some((0, _)) => {
            let after = log.len() - WAL_HEADER;
            return corrupt(format!(
                "its header is damaged and {after} bytes of frames follow it; SQLite would drop them all"
            ));
        }
        Some((bad, later)) => {
            return corrupt(format!(
                "frame {bad} of {} fails its checksum and frame {later} of the same log follows it; SQLite would \
                 drop every commit after frame {}",
                found.frames, found.recovered
            ));
        }
        None => {}
    }
    let Some((last_synced, salts, backfilled)) = read(&with_suffix(db, "-shm"))?.as_deref().and_then(synced) else {
        return Ok(());
    };
    let last_synced = usize::try_from(last_synced).unwrap_or(usize::MAX);
    // A whole header with other salts is a log begun after this index was last written back
    // (a log restarts only once every frame of the old one is in the database file): the index
    // says nothing about it. No whole header: the log the index describes is gone or cut.
    let described = found.salts.is_none_or(|s| s == salts);
    // Everything already copied into the database file, and nothing of the log replayed: whole.
    let in_db = found.recovered == 0 && u32::try_from(last_synced).is_ok_and(|s| s <= backfilled);
    if last_synced > found.recovered && described && !in_db {
        return corrupt(format!(
            "its commits end at frame {} of {} but the wal-index says commits up to frame {last_synced} were synced \
             (acknowledged); a frame of one of them is damaged or missing",
            found.recovered, found.frames
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A log of `commits` one-row commits as `SQLite` writes it, copied while its connection is
    /// still open (closing would fold it into the database and remove it).
    fn log_of(commits: usize) -> (Vec<u8>, usize) {
        let (log, frame, _) = log_and_index_of(commits);
        (log, frame)
    }

    /// [`log_of`] and the wal-index beside it.
    fn log_and_index_of(commits: usize) -> (Vec<u8>, usize, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("t.db")).unwrap();
        conn.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
        conn.execute_batch("CREATE TABLE t (v BLOB)").unwrap();
        for i in 0..commits {
            conn.execute("INSERT INTO t VALUES (?1)", [vec![u8::try_from(i).unwrap(); 100]]).unwrap();
        }
        let bytes = std::fs::read(dir.path().join("t.db-wal")).unwrap();
        let index = std::fs::read(dir.path().join("t.db-shm")).unwrap();
        let page = usize::try_from(be(&bytes, 8)).unwrap();
        (bytes, FRAME_HEADER + page, index)
    }

    /// `verify` of a database whose log is `log`, with `index` as its wal-index if given.
    fn verify_with(log: &[u8], index: Option<&[u8]>) -> Result<(), StoreError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.db-wal"), log).unwrap();
        if let Some(index) = index {
            std::fs::write(dir.path().join("t.db-shm"), index).unwrap();
        }
        verify(&dir.path().join("t.db"))
    }

    #[test]
    fn a_damaged_last_frame_the_index_says_was_synced_is_refused_and_tolerated_without_it() {
        let (log, frame, index) = log_and_index_of(5);
        verify_with(&log, Some(&index)).expect("a whole log and its index");
        let mut damaged = log.clone();
        let at = log.len() - frame / 2;
        damaged[at..at + 16].iter_mut().for_each(|b| *b ^= 0xff);
        match verify_with(&damaged, Some(&index)) {
            Err(StoreError::Corrupt { message, .. }) => assert!(message.contains("wal-index"), "{message}"),
            other => panic!("a synced commit's damaged frame passed: {other:?}"),
        }
        // Without the index, nothing says the last commit was synced: a torn tail.
        verify_with(&damaged, None).expect("a torn tail");
        // The log cut away whole while the index says commits were synced.
        assert!(verify_with(&[], Some(&index)).is_err(), "a log gone with synced commits passed");
    }

    #[test]
    fn a_whole_log_is_recovered_to_its_last_frame() {
        let (log, _) = log_of(5);
        let found = scan(&log);
        assert_eq!((found.recovered, found.damage), (found.frames, None));
        assert!(found.frames >= 6, "{found:?}");
    }

    #[test]
    fn a_torn_last_frame_is_a_tolerated_tail_not_damage() {
        let (log, frame) = log_of(5);
        let whole = scan(&log).frames;
        // Cut inside the last frame, or scribble on it: the last commit was never synced.
        let cut = scan(&log[..log.len() - frame / 2]);
        assert_eq!((cut.frames, cut.damage), (whole - 1, None));
        let mut torn = log.clone();
        let at = log.len() - frame / 2;
        torn[at..at + 16].fill(0xa5);
        let found = scan(&torn);
        assert_eq!((found.recovered, found.damage), (whole - 1, None));
        // Without a wal-index saying more was synced, the driver starts on it.
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.db-wal"), &torn).unwrap();
        verify(&dir.path().join("t.db")).unwrap();
    }

    #[test]
    fn a_frame_of_the_log_after_a_failing_one_is_damage_named_by_the_file() {
        let (log, frame) = log_of(5);
        let mut damaged = log.clone();
        let at = WAL_HEADER + frame + frame / 2;
        damaged[at..at + 16].iter_mut().for_each(|b| *b ^= 0xff);
        assert_eq!(scan(&damaged).damage, Some((2, 3)));
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.db-wal"), &damaged).unwrap();
        match verify(&dir.path().join("t.db")) {
            Err(StoreError::Corrupt { path, message }) => {
                assert_eq!(path, dir.path().join("t.db-wal"));
                assert!(message.contains("frame 2"), "{message}");
            }
            other => panic!("a damaged log passed: {other:?}"),
        }
    }

    #[test]
    fn frames_of_an_older_log_after_a_reset_are_not_damage() {
        let (log, frame) = log_of(5);
        // A new log's header (other salts) over the old frames: none of them is this log's.
        let mut reset = log.clone();
        reset[16..24].iter_mut().for_each(|b| *b = b.wrapping_add(1));
        let sum = checksum(be(&reset, 0) & 1 == 1, (0, 0), &reset[..24]);
        reset[24..28].copy_from_slice(&sum.0.to_be_bytes());
        reset[28..32].copy_from_slice(&sum.1.to_be_bytes());
        let found = scan(&reset);
        assert_eq!((found.recovered, found.damage), (0, None), "{found:?}");
        assert_eq!(found.frames, (log.len() - WAL_HEADER) / frame);
    }

    #[test]
    fn a_log_of_zeros_is_reserved_space_not_damage() {
        let (_, frame) = log_of(1);
        let found = scan(&vec![0; WAL_HEADER + 8 * frame]);
        assert_eq!((found.salts, found.recovered, found.damage), (None, 0, None), "{found:?}");
    }

    #[test]
    fn a_zeroed_header_with_frames_behind_it_is_damage() {
        let (mut log, _) = log_of(5);
        log[..WAL_HEADER].iter_mut().for_each(|b| *b = 0);
        assert_eq!(scan(&log).damage, Some((0, 1)));
    }
}
