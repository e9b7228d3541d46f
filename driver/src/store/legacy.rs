//! The layout before the database: `volumes/<id>.json` (a [`StoredVolume`]), `fences/<id>.json`
//! (a [`StoredFence`]) and `term`, each replaced atomically by a rename. The first open of such
//! a state directory reads it whole, with the checks the old loader made, and imports it into
//! the database in the transaction that creates the schema and sets [`MIGRATED`]; only after
//! that commit are the old files removed. A crash before the commit leaves the old files, and
//! the next open imports them again; a crash after it leaves files that the next open, seeing
//! [`MIGRATED`], removes without reading. An unreadable old file refuses the open, naming it,
//! and imports nothing.

use std::fs;
use std::path::{Path, PathBuf};

use tether_core::Fence;

use super::atomic::{io as io_error, sync_dir};
use super::{StoreError, StoredFence, StoredVolume};

/// The `settings` key set once the old layout (or its absence) was imported.
pub const MIGRATED: &str = "migrated_file_layout";

const RECORDS: &str = "volumes";
const FENCES: &str = "fences";
const TERM: &str = "term";

/// What the old layout held.
#[derive(Debug, Default)]
pub struct Legacy {
    /// `(id, record as JSON)`, each checked to load as the old loader did.
    pub records: Vec<(String, Vec<u8>)>,
    pub fences: Vec<(String, Fence)>,
    pub term: Option<u64>,
}

impl Legacy {
    pub fn is_empty(&self) -> bool {
        self.records.is_empty() && self.fences.is_empty() && self.term.is_none()
    }
}

fn corrupt(path: &Path, message: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt { path: path.to_path_buf(), message: message.to_string() }
}

/// The JSON files of `dir` as `(id, path)`, skipping the temporaries of writes that never
/// reached their rename (never acknowledged); anything else there is refused.
fn json_files(dir: &Path) -> Result<Vec<(String, PathBuf)>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", dir)(e)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry.map_err(io_error("list", dir))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let extension = path.extension().and_then(|e| e.to_str());
        if name.starts_with('.') && extension == Some("tmp") {
            continue;
        }
        match (extension, path.file_stem().and_then(|s| s.to_str())) {
            (Some("json"), Some(stem)) => files.push((stem.to_owned(), path.clone())),
            _ => return Err(corrupt(&path, "unexpected file in a state directory")),
        }
    }
    files.sort_unstable();
    Ok(files)
}

/// Reads the old layout under `root` (empty if there is none).
pub fn read(root: &Path) -> Result<Legacy, StoreError> {
    let mut old = Legacy::default();
    for (id, path) in json_files(&root.join(RECORDS))? {
        let bytes = fs::read(&path).map_err(io_error("read", &path))?;
        let stored: StoredVolume = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e))?;
        if stored.meta.id != id {
            return Err(corrupt(&path, format!("it describes volume {:?}, not {id:?}", stored.meta.id)));
        }
        old.records.push((id, bytes));
    }
    for (id, path) in json_files(&root.join(FENCES))? {
        let bytes = fs::read(&path).map_err(io_error("read", &path))?;
        let stored: StoredFence = serde_json::from_slice(&bytes).map_err(|e| corrupt(&path, e))?;
        old.fences.push((id, Fence::try_from(stored).map_err(|e| corrupt(&path, e))?));
    }
    let term = root.join(TERM);
    match fs::read(&term) {
        Ok(bytes) => old.term = Some(serde_json::from_slice(&bytes).map_err(|e| corrupt(&term, e))?),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("read", &term)(e)),
    }
    Ok(old)
}

/// Removes what is left of the old layout; call only once [`MIGRATED`] is committed.
pub fn remove(root: &Path) -> Result<(), StoreError> {
    let mut removed = false;
    for dir in [RECORDS, FENCES] {
        let path = root.join(dir);
        match fs::remove_dir_all(&path) {
            Ok(()) => removed = true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove", &path)(e)),
        }
    }
    let term = root.join(TERM);
    match fs::remove_file(&term) {
        Ok(()) => removed = true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_error("remove", &term)(e)),
    }
    if removed {
        sync_dir(root)?;
    }
    Ok(())
}
