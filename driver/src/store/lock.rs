//! One process serves a state directory at a time: an exclusive `flock` on `<state-dir>/lock`,
//! held for the life of the process, with the holder's pid written inside so that a refused
//! start can name it.
//!
//! `flock` (through `nix`, already the driver's way to the kernel; std's `File::lock` needs a
//! newer Rust than the workspace's 1.88) is tied to the open file, so the kernel drops it when
//! the holder exits however it exits, SIGKILL included: no stale lock to clean up by hand. It
//! is advisory, which is enough: every process that serves a store takes it first.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The lock file's name under the state directory.
pub const LOCK_FILE: &str = "lock";

/// The held lock; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct StateLock {
    _held: Flock<File>,
    path: PathBuf,
}

/// Why the state directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "state directory {dir} is in use by another process ({holder}, holding {path}); one process serves a store \
         at a time: stop it, or give this one its own --state-dir"
    )]
    Held { dir: PathBuf, path: PathBuf, holder: Holder },
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
}

/// Who holds the lock, as far as its file says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    Pid(u32),
    /// The holder has not written its pid yet (it is starting), or wrote something else.
    Unknown,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Pid(pid) => write!(f, "pid {pid}"),
            Self::Unknown => f.write_str("pid not yet written"),
        }
    }
}

impl StateLock {
    /// Takes the lock of `dir` (created if missing). While another process holds it, `wait`
    /// false refuses at once, naming the holder; `wait` true (a new leader whose predecessor
    /// released the Lease and is still exiting) logs the holder and blocks until it is free.
    pub fn acquire(dir: &Path, wait: bool) -> Result<Self, LockError> {
        std::fs::create_dir_all(dir).map_err(io("create directory", dir))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(io("open", &path))?;
        let held = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(held) => held,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let holder = read_holder(&mut file);
                if !wait {
                    return Err(LockError::Held { dir: dir.to_path_buf(), path, holder });
                }
                tracing::info!(lock = %path.display(), %holder, "waiting for the state directory's holder to exit");
                Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| io("lock", &path)(errno.into()))?
            }
            Err((_, errno)) => return Err(io("lock", &path)(errno.into())),
        };
        let pid = format!("{}\n", std::process::id());
        held.set_len(0).map_err(io("truncate", &path))?;
        held.write_all_at(pid.as_bytes(), 0).map_err(io("write", &path))?;
        Ok(Self { _held: held, path })
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> LockError + use<> {
    let path = path.to_path_buf();
    move |source| LockError::Io { op, path, source }
}

fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let read = file.rewind().and_then(|()| file.take(32).read_to_string(&mut text));
    read.ok().and_then(|_| text.trim().parse().ok()).map_or(Holder::Unknown, Holder::Pid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_naming_the_holder_and_free_once_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path(), false).unwrap();
        // flock locks belong to the open file, so a second open in this process conflicts too.
        match StateLock::acquire(dir.path(), false) {
            Err(LockError::Held { holder, path, .. }) => {
                assert_eq!(holder, Holder::Pid(std::process::id()));
                assert_eq!(path, first.path());
            }
            other => panic!("a second holder was let in: {other:?}"),
        }
        drop(first);
        let second = StateLock::acquire(dir.path(), false).expect("the lock is free once its holder is gone");
        // A waiter takes the lock once the holder lets go (it blocks if it asked first).
        let waiter = std::thread::spawn({
            let dir = dir.path().to_path_buf();
            move || StateLock::acquire(&dir, true).map(drop)
        });
        drop(second);
        waiter.join().unwrap().expect("the waiter takes the lock once it is free");
    }
}
