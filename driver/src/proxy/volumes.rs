//! How the store records a volume of the upstream: not created by Tether, it enters the catalogue
//! at its first publish with what the engine needs (its id and kind, from the publish's
//! capability) and no data (the upstream owns the data plane), and leaves it when the upstream
//! deleted it.

use std::collections::BTreeMap;
use std::path::{Component, Path};

use crate::driver::Driver;
use crate::status::DriverError;
use crate::volume::{VolumeKind, VolumeMeta};

/// Parameter of a proxied volume's record: the upstream that owns it.
pub const UPSTREAM_PARAM: &str = "tether.io/upstream";

/// Records `volume` of kind `kind` if the catalogue does not know it yet; returns whether it did
/// now. The record is durable before the engine decides on it, so a fence applied for it
/// has a record to go with.
pub(crate) fn register(d: &Driver, volume: &str, kind: VolumeKind, upstream: &str) -> Result<bool, DriverError> {
    if d.catalog.get(volume).is_some() {
        return Ok(false);
    }
    // The store keeps a volume's data at data/<id>; a proxied volume has none, but deleting its
    // record removes that path, so an id must not lead out of data/.
    if !Path::new(volume).components().all(|c| matches!(c, Component::Normal(_))) {
        return Err(DriverError::Invalid(format!(
            "volume id {volume:?} is not a relative path without \".\" or \"..\"; Tether's embedded store \
             cannot record it"
        )));
    }
    let meta = VolumeMeta {
        id: volume.to_owned(),
        name: volume.to_owned(),
        kind,
        capacity_bytes: 0,
        parameters: BTreeMap::from([(UPSTREAM_PARAM.to_owned(), upstream.to_owned())]),
    };
    d.store.save(&meta, None, None)?;
    d.catalog.insert(meta);
    tracing::info!(volume, upstream, "proxied volume recorded");
    Ok(true)
}

/// Drops a proxied volume's record and the engine's, once it is attached nowhere (the engine's
/// `forget` refuses otherwise). An unknown volume needs nothing.
pub(crate) fn unregister(d: &Driver, volume: &str) -> Result<(), DriverError> {
    if d.catalog.get(volume).is_none() {
        return Ok(());
    }
    if let Some(a) = d.engine.get(volume)? {
        return Err(DriverError::StillPublished { volume: volume.to_owned(), nodes: a.nodes.to_string() });
    }
    d.store.delete(volume)?;
    d.catalog.remove(volume);
    d.engine.forget(volume)?;
    tracing::info!(volume, "proxied volume forgotten");
    Ok(())
}
