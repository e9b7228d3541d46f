//! A volume's data on the local disk, for every backend: a directory (filesystem) or a sparse
//! file (block) under the store's data directory, made and removed durably.

use std::fs::{self, File};
use std::path::Path;

use super::atomic::{io as io_error, sync_dir};
use super::StoreError;
use crate::volume::{VolumeKind, VolumeMeta};

/// Makes `meta`'s volume under `data` (where the store's `source` points) and syncs `data`.
pub fn provision(data: &Path, meta: &VolumeMeta) -> Result<(), StoreError> {
    let path = data.join(&meta.id);
    match meta.kind {
        VolumeKind::Filesystem => fs::create_dir_all(&path).map_err(io_error("create directory", &path))?,
        VolumeKind::Block => {
            let f = File::create(&path).map_err(io_error("create", &path))?;
            // set_len on a new file allocates nothing: the block volume is sparse.
            f.set_len(meta.capacity_bytes).map_err(io_error("size", &path))?;
        }
    }
    sync_dir(data)
}

/// Removes volume `id`'s data under `data`, if any, and syncs `data`.
pub fn remove(data: &Path, id: &str) -> Result<(), StoreError> {
    let path = data.join(id);
    let removed = if path.is_dir() { fs::remove_dir_all(&path) } else { fs::remove_file(&path) };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error("remove", &path)(e)),
        _ => sync_dir(data),
    }
}
