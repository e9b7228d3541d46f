//! The volume store: where volumes live and where their metadata and attachment state are
//! kept. The embedded store is the default; another backend implements [`VolumeStore`].

mod atomic;
mod embedded;

use std::path::PathBuf;

use tether_core::VolumeEntry;

pub use atomic::{io as io_error, write_atomic};
pub use embedded::EmbeddedStore;

use crate::volume::VolumeMeta;

/// One volume as stored: its metadata and the engine's state for it (epoch, attachment,
/// last detach), absent while it was never attached.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredVolume {
    pub meta: VolumeMeta,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<VolumeEntry>,
}

/// [`StoredVolume`] by reference, for writing without cloning.
#[derive(serde::Serialize)]
struct StoredVolumeRef<'a> {
    meta: &'a VolumeMeta,
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'a VolumeEntry>,
}

/// Why the store failed. Every variant names the file it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("state file {path} is corrupt or truncated: {message}; restore it from a backup or remove the volume's files by hand")]
    Corrupt { path: PathBuf, message: String },
}

/// A place to keep volumes. Every method that changes state has made the change durable
/// when it returns `Ok`, so the caller may acknowledge it.
pub trait VolumeStore: Send + Sync + 'static {
    /// Every stored volume. Fails, naming the file, on anything it cannot read.
    fn load(&self) -> Result<Vec<StoredVolume>, StoreError>;
    /// Provisions the volume's data (directory or sparse file) and records it.
    fn create(&self, meta: &VolumeMeta) -> Result<(), StoreError>;
    /// Records a new state of an existing volume: its metadata and the engine's entry.
    fn save(&self, meta: &VolumeMeta, engine: Option<&VolumeEntry>) -> Result<(), StoreError>;
    /// Forgets a volume and removes its data. Deleting an unknown volume succeeds.
    fn delete(&self, id: &str) -> Result<(), StoreError>;
    /// Where a node mounts the volume from.
    fn source(&self, id: &str) -> PathBuf;
    /// Where the volume's record lives, for error messages.
    fn record_path(&self, id: &str) -> PathBuf;
    /// Bytes the backend can hold in total.
    fn capacity_bytes(&self) -> u64;
}
