//! The embedded store: volumes as directories or sparse files under `--state-dir`, one
//! durable JSON record per volume.
//!
//! Layout: `volumes/<id>.json` holds a [`StoredVolume`]; `data/<id>` is the volume itself;
//! `fences/<id>.json` the last fence applied to it ([`StoredFence`]); `term` the last
//! controller term handed out.
//! A create writes the data first and the record last, so a crash in between leaves data
//! without a record, which `load` removes: nothing unacknowledged survives half-made.

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use tether_core::{Fence, VolumeEntry, VolumeFence};

use super::atomic::{io as io_error, remove_durably, sync_dir, write_atomic};
use super::{StoreError, StoredFence, StoredVolume, StoredVolumeRef, VolumeStore};
use crate::volume::{VolumeKind, VolumeMeta};

/// Volumes under one directory.
#[derive(Debug)]
pub struct EmbeddedStore {
    root: PathBuf,
    records: PathBuf,
    data: PathBuf,
    fences: PathBuf,
    capacity: u64,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store under `root`, holding at most `capacity` bytes.
    pub fn open(root: &Path, capacity: u64) -> Result<Self, StoreError> {
        let (records, data, fences) = (root.join("volumes"), root.join("data"), root.join("fences"));
        for dir in [&records, &data, &fences] {
            fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
        }
        Ok(Self { root: root.to_path_buf(), records, data, fences, capacity })
    }

    /// Holds an exclusive `flock` on `path` until dropped: every process sharing the store
    /// takes it before reading and replacing a volume's fence, so the check and the write are
    /// one step even between an old and a new leader.
    fn lock(path: &Path) -> Result<Flock<File>, StoreError> {
        let file = File::open(path).map_err(io_error("open for locking", path))?;
        Flock::lock(file, FlockArg::LockExclusive)
            .map_err(|(_, errno)| io_error("lock", path)(std::io::Error::from(errno)))
    }

    fn fence_bytes(fence: &Fence) -> Vec<u8> {
        serde_json::to_vec(&StoredFence::from(fence)).expect("a fence always serialises")
    }

    /// Whether `fence` is to be written over the one applied to `id`: `false` for the same
    /// fence again, an error by the target's rule for an older or equal other one. Call under
    /// the volume's lock.
    fn supersedes(&self, id: &str, fence: &Fence) -> Result<bool, StoreError> {
        let applied = self.applied_fence(id)?;
        if applied.as_ref() == Some(fence) {
            return Ok(false);
        }
        fence.check_supersedes(id, applied.map(|f| f.epoch)).map_err(StoreError::Fence)?;
        Ok(true)
    }

    fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>, StoreError> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| StoreError::Corrupt { path: path.to_path_buf(), message: e.to_string() }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_error("read", path)(e)),
        }
    }

    fn record_name(id: &str) -> String {
        format!("{id}.json")
    }

    fn read_record(path: &Path) -> Result<StoredVolume, StoreError> {
        let bytes = fs::read(path).map_err(io_error("read", path))?;
        let stored: StoredVolume = serde_json::from_slice(&bytes)
            .map_err(|e| StoreError::Corrupt { path: path.to_path_buf(), message: e.to_string() })?;
        let expected = path.file_stem().and_then(|s| s.to_str()).unwrap_or_default();
        if stored.meta.id != expected {
            let message = format!("it describes volume {:?}, not {expected:?}", stored.meta.id);
            return Err(StoreError::Corrupt { path: path.to_path_buf(), message });
        }
        Ok(stored)
    }

    /// Removes fence files a batch wrote but never renamed into place (it stopped on an error
    /// or a crash): they were never applied.
    fn remove_unrenamed_fences(&self) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.fences).map_err(io_error("list", &self.fences))? {
            let path = entry.map_err(io_error("list", &self.fences))?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            if name.starts_with('.') && path.extension().is_some_and(|e| e == "tmp") {
                fs::remove_file(&path).map_err(io_error("remove", &path))?;
            }
        }
        Ok(())
    }

    /// Removes data that has no record: a create that crashed before it was acknowledged.
    fn remove_orphans(&self, known: &std::collections::HashSet<String>) -> Result<(), StoreError> {
        for entry in fs::read_dir(&self.data).map_err(io_error("list", &self.data))? {
            let entry = entry.map_err(io_error("list", &self.data))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if known.contains(&name) {
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
        let mut volumes = Vec::new();
        for entry in fs::read_dir(&self.records).map_err(io_error("list", &self.records))? {
            let path = entry.map_err(io_error("list", &self.records))?.path();
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let extension = path.extension().and_then(|e| e.to_str());
            if name.starts_with('.') && extension == Some("tmp") {
                // A write that never reached its rename was never acknowledged.
                fs::remove_file(&path).map_err(io_error("remove", &path))?;
            } else if extension == Some("json") {
                volumes.push(Self::read_record(&path)?);
            } else {
                let message = "unexpected file in the volume record directory".to_owned();
                return Err(StoreError::Corrupt { path, message });
            }
        }
        let known = volumes.iter().map(|v| v.meta.id.clone()).collect();
        self.remove_orphans(&known)?;
        self.remove_unrenamed_fences()?;
        volumes.sort_unstable_by(|a, b| a.meta.id.cmp(&b.meta.id));
        Ok(volumes)
    }

    fn create(&self, meta: &VolumeMeta) -> Result<(), StoreError> {
        let path = self.source(&meta.id);
        match meta.kind {
            VolumeKind::Filesystem => fs::create_dir_all(&path).map_err(io_error("create directory", &path))?,
            VolumeKind::Block => {
                let f = File::create(&path).map_err(io_error("create", &path))?;
                // set_len on a new file allocates nothing: the block volume is sparse.
                f.set_len(meta.capacity_bytes).map_err(io_error("size", &path))?;
            }
        }
        sync_dir(&self.data)?;
        self.save(meta, None)
    }

    fn save(&self, meta: &VolumeMeta, engine: Option<&VolumeEntry>) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(&StoredVolumeRef { meta, engine }).expect("a stored volume always serialises");
        write_atomic(&self.records, &Self::record_name(&meta.id), &bytes)
    }

    fn delete(&self, id: &str) -> Result<(), StoreError> {
        // Record first: a crash after it leaves orphan data, which the next load removes.
        remove_durably(&self.records, &Self::record_name(id))?;
        remove_durably(&self.fences, &Self::record_name(id))?;
        let path = self.source(id);
        let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("remove", &path)(e)),
            _ => sync_dir(&self.data),
        }
    }

    fn source(&self, id: &str) -> PathBuf {
        self.data.join(id)
    }

    fn record_path(&self, id: &str) -> PathBuf {
        self.records.join(Self::record_name(id))
    }

    fn capacity_bytes(&self) -> u64 {
        self.capacity
    }

    fn apply_fence(&self, id: &str, fence: &Fence) -> Result<(), StoreError> {
        let _held = Self::lock(&self.source(id))?;
        if !self.supersedes(id, fence)? {
            return Ok(()); // the same fence again: already applied
        }
        write_atomic(&self.fences, &Self::record_name(id), &Self::fence_bytes(fence))
    }

    /// Two syncs for the whole batch instead of two per fence (100 000 volumes re-fence in
    /// seconds, not minutes): every fence is written to a file of this process's own, one
    /// `syncfs` makes them all durable, then each is checked again and renamed into place
    /// under its volume's lock, and one directory fsync makes the renames durable. A crash
    /// before the renames leaves the old fences, which the next start re-fences anyway.
    fn apply_fences(&self, fences: &[VolumeFence]) -> Result<(), StoreError> {
        let tmp = |id: &str| self.fences.join(format!(".{id}.json.{}.tmp", std::process::id()));
        for vf in fences {
            let path = tmp(&vf.volume);
            fs::write(&path, Self::fence_bytes(&vf.fence)).map_err(io_error("write", &path))?;
        }
        let dir = File::open(&self.fences).map_err(io_error("open", &self.fences))?;
        nix::unistd::syncfs(&dir).map_err(|e| io_error("syncfs", &self.fences)(std::io::Error::from(e)))?;
        for vf in fences {
            let _held = Self::lock(&self.source(&vf.volume))?;
            let (from, to) = (tmp(&vf.volume), self.fences.join(Self::record_name(&vf.volume)));
            if self.supersedes(&vf.volume, &vf.fence)? {
                fs::rename(&from, &to).map_err(io_error("rename", &to))?;
            } else {
                fs::remove_file(&from).map_err(io_error("remove", &from))?;
            }
        }
        sync_dir(&self.fences)
    }

    fn applied_fence(&self, id: &str) -> Result<Option<Fence>, StoreError> {
        let path = self.fences.join(Self::record_name(id));
        let Some(stored) = Self::read_json::<StoredFence>(&path)? else { return Ok(None) };
        Fence::try_from(stored).map(Some).map_err(|e| StoreError::Corrupt { path, message: e.to_string() })
    }

    fn next_term(&self, at_least: u64) -> Result<u64, StoreError> {
        let path = self.root.join("term");
        let _held = Self::lock(&self.root)?;
        let stored: u64 = Self::read_json(&path)?.unwrap_or(0);
        let term = stored.saturating_add(1).max(at_least);
        write_atomic(&self.root, "term", term.to_string().as_bytes())?;
        Ok(term)
    }
}
