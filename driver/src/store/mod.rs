//! The volume store: where volumes live and where their metadata and attachment state are
//! kept. The embedded store is the default; another backend implements [`VolumeStore`].

mod atomic;
mod commit;
mod data;
mod embedded;
mod fence;
pub mod kube;
mod legacy;
mod lock;
mod wal;
mod wal_space;

use std::path::PathBuf;
use std::sync::Arc;

use tether_core::{CoreError, Fence, VolumeEntry, VolumeFence};

pub use atomic::{io as io_error, write_atomic};
pub use embedded::{EmbeddedStore, DB_FILE};
pub use fence::StoredFence;
pub use kube::{KubeFailure, KubeStore, Role};
pub use lock::{Holder, LockError, StateLock, LOCK_FILE};

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

/// Why the store failed. Every variant names the file or object it concerns.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{op} {path}: {source}")]
    Io { op: &'static str, path: PathBuf, source: std::io::Error },
    #[error("state file {path} is corrupt or truncated: {message}; restore it from a backup or remove the volume's files by hand")]
    Corrupt { path: PathBuf, message: String },
    /// The database refused or failed an operation (I/O, locking, a full disk).
    #[error("{op} {path}: {source}")]
    Db { op: &'static str, path: PathBuf, source: DbFailure },
    /// The shared transaction this change was in failed for every change in it (group
    /// commit): the one error, handed to each caller.
    #[error(transparent)]
    Shared(Arc<StoreError>),
    /// The backend refused a fence by the fence rule (not newer than the one it applied).
    #[error(transparent)]
    Fence(CoreError),
    /// The cluster store's call to the Kubernetes API server failed or was refused.
    #[error("{op} {object}: {source}")]
    Kube { op: &'static str, object: String, source: Box<KubeFailure> },
    /// An object of the cluster store that holds no valid volume (hand-edited or corrupt).
    #[error("{object} is not a valid Tether volume: {message}; fix or delete the object by hand")]
    BadObject { object: String, message: String },
    /// An object was last written at a newer controller term than this process's: a newer
    /// leader serves, so this one must stop serving.
    #[error("{object} was written at controller term {found}, above this process's term {ours}: a newer leader serves, so this one stops serving")]
    TermSuperseded { object: String, ours: u64, found: u64 },
    /// A writer of an earlier controller term changed an object after this leader read it (an
    /// old leader's write that landed late): what this leader holds of the volume is stale.
    #[error("{object} was changed at the earlier controller term {found} after this leader (term {ours}) read it: its state here is stale, so this leader stops serving and is read again by its next start")]
    ChangedAfterRead { object: String, ours: u64, found: u64 },
}

impl StoreError {
    /// Whether the store could not be reached or answer in time, or is no longer this process's
    /// to write (a newer term): the call may succeed later, or against another instance.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Kube { source, .. } => source.is_unavailable(),
            Self::Shared(inner) => inner.is_unavailable(),
            other => other.stops_leader(),
        }
    }

    /// Whether this process may no longer serve from what it holds: a newer leader serves, or
    /// an older one changed a volume after this one read it. Either way it stops serving.
    pub fn stops_leader(&self) -> bool {
        match self {
            Self::TermSuperseded { .. } | Self::ChangedAfterRead { .. } => true,
            Self::Shared(inner) => inner.stops_leader(),
            _ => false,
        }
    }
}

/// What went wrong inside the database, kept whole.
#[derive(Debug, thiserror::Error)]
pub enum DbFailure {
    #[error(transparent)]
    Sqlite(#[from] rusqlite::Error),
    #[error("the journal mode stayed {0:?}, not WAL")]
    JournalMode(String),
    #[error("setting {key} is too large for the database: {value}")]
    TooLarge { key: &'static str, value: u64 },
    #[error("the committer thread stopped")]
    CommitterStopped,
}

/// A volume's metadata and last applied fence, read together ([`VolumeStore::read_volume`]).
pub type VolumeRead = (VolumeMeta, Option<Fence>);

/// A place to keep volumes. Every method that changes state has made the change durable
/// when it returns `Ok`, so the caller may acknowledge it.
pub trait VolumeStore: Send + Sync + 'static {
    /// Every stored volume. Fails, naming the file, on anything it cannot read.
    fn load(&self) -> Result<Vec<StoredVolume>, StoreError>;
    /// Provisions the volume's data (directory or sparse file) and records it.
    fn create(&self, meta: &VolumeMeta) -> Result<(), StoreError>;
    /// Records a new state of an existing volume: its metadata and the engine's entry, and, if
    /// given, applies its new fence (as [`VolumeStore::apply_fence`], by the same rule), as one
    /// durable change, all or nothing: a refused fence (`StoreError::Fence`) saves no record,
    /// and an error saving the record applies no fence. Either way the store is left as it was.
    fn save(&self, meta: &VolumeMeta, engine: Option<&VolumeEntry>, fence: Option<&Fence>) -> Result<(), StoreError>;
    /// [`VolumeStore::save`] of many volumes' records, without fences (an adoption at start-up
    /// persisting what it changed); a backend may make them durable together. Stops at the
    /// first error.
    fn save_all(&self, volumes: &[(Arc<VolumeMeta>, Option<VolumeEntry>)]) -> Result<(), StoreError> {
        volumes.iter().try_for_each(|(meta, engine)| self.save(meta, engine.as_ref(), None))
    }
    /// Forgets a volume and removes its data. Deleting an unknown volume succeeds.
    fn delete(&self, id: &str) -> Result<(), StoreError>;
    /// Where a node mounts the volume from.
    fn source(&self, id: &str) -> PathBuf;
    /// Where the volume's record lives (the file holding it), for error messages.
    fn record_path(&self, id: &str) -> PathBuf;
    /// Bytes the backend can hold in total.
    fn capacity_bytes(&self) -> u64;
    /// The storage target's half of the fence (DESIGN.md, "Epochs, admissions and fences"):
    /// applies `fence` to volume `id` durably, but only if its epoch is higher than the last
    /// fence applied there (checked with `Fence::check_supersedes`, across every process
    /// sharing the store); an older or equal one is refused with `StoreError::Fence` and
    /// leaves the store as it was.
    fn apply_fence(&self, id: &str, fence: &Fence) -> Result<(), StoreError>;
    /// The last fence applied to volume `id`, if any: what a node's I/O session is checked
    /// against.
    fn applied_fence(&self, id: &str) -> Result<Option<Fence>, StoreError>;
    /// [`VolumeStore::apply_fence`] for many volumes at once (a re-fence at start-up), with the
    /// same rule for each; a backend may make them durable together. Stops at the first error.
    /// A backend that re-fences in the background ([`VolumeStore::refences_in_background`])
    /// leaves a volume alone that this process wrote since at its own term with a newer fence:
    /// that write re-fenced it already.
    fn apply_fences(&self, fences: &[VolumeFence]) -> Result<(), StoreError> {
        fences.iter().try_for_each(|vf| self.apply_fence(&vf.volume, &vf.fence))
    }
    /// Whether a new leader serves before its re-fence is written, the driver then writing it
    /// in the background and each volume's own before that volume's next call is acknowledged:
    /// a store where a re-fence is one remote write per volume (the cluster store). By default
    /// the re-fence is written whole before anything is served.
    fn refences_in_background(&self) -> bool {
        false
    }
    /// The controller term for this start: above every term the store handed out before and
    /// at least `at_least` (a Lease's transitions), raised durably before it returns.
    fn next_term(&self, at_least: u64) -> Result<u64, StoreError>;
    /// A volume's metadata and the last fence applied to it, read from the store together (one
    /// read) at the time of the call (`Ok(None)`: no such volume), for a node that keeps no
    /// state of its own: the cluster store, where the controller on another node created and
    /// fenced the volume a moment ago. `None` from a store that only its holder writes (the
    /// embedded store): the driver's catalogue is current, and [`VolumeStore::applied_fence`]
    /// gives the fence.
    fn read_volume(&self, _id: &str) -> Option<Result<Option<VolumeRead>, StoreError>> {
        None
    }
}
