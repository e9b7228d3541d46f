//! Moving an embedded store into the cluster store (`tether-csi migrate-store`): every record
//! with its applied fence, and a term above the embedded store's last, without loss. Whatever
//! it cannot carry over whole it refuses by name, before it writes anything it can check first.

use std::collections::BTreeMap;

use tether_core::Fence;

use super::KubeStore;
use crate::store::{EmbeddedStore, StoreError, VolumeStore};

/// What a migration carried over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migrated {
    pub volumes: usize,
    pub fences: usize,
    /// The cluster store's term after the move: above the embedded store's last.
    pub term: u64,
}

/// Why a migration stopped.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A fence applied to a volume the embedded store holds no record of: it cannot become an
    /// object (an object is a volume), and dropping it could reopen access.
    #[error("the embedded store holds a fence for volume {0:?} but no record of it; nothing was moved")]
    FenceWithoutRecord(String),
}

/// Moves everything `from` holds into `to` (a controller's cluster store, whose objects for
/// these volumes must not exist yet): first the term, then one object per volume, each created
/// whole with its fence. A failure part way leaves the objects made so far; running it again
/// refuses on the first of them by name (delete them to start over).
pub fn migrate(from: &EmbeddedStore, to: &KubeStore) -> Result<Migrated, MigrateError> {
    let volumes = from.load()?;
    let mut fences: BTreeMap<String, Fence> = from.applied_fences()?.into_iter().collect();
    if let Some(orphan) = fences.keys().find(|id| !volumes.iter().any(|v| &v.meta.id == *id)) {
        return Err(MigrateError::FenceWithoutRecord(orphan.clone()));
    }
    let term = to.next_term(from.term()?.saturating_add(1))?;
    let fence_count = fences.len();
    for stored in &volumes {
        to.import(stored, fences.remove(&stored.meta.id).as_ref())?;
    }
    Ok(Migrated { volumes: volumes.len(), fences: fence_count, term })
}
