//! Which nodes the upstream may have a volume attached to, kept in the volume's store record (a
//! parameter), so that a detach the proxy still owes the upstream survives a restart.
//!
//! A node enters the ledger before its publish is forwarded (in the same store commit as the
//! engine's change when there is one) and leaves it only after the upstream detached it. The
//! detaches owed are the ledger less the engine's holders: a node the engine took the volume
//! from (a grace handoff, a holder cleared on evidence) stays owed until the upstream confirms,
//! however many restarts come between. A node in the ledger that the upstream never attached
//! only costs an idempotent unpublish.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::driver::Driver;
use crate::status::DriverError;
use crate::volume::VolumeMeta;

/// Parameter of a proxied volume's record: the nodes, as a JSON array of ids.
pub const LEDGER_PARAM: &str = "tether.io/upstream-attached";

/// The nodes `meta`'s ledger holds, or an error naming the volume if the record's value is not a
/// list of node ids (the record was edited by hand): the proxy cannot tell what it owes then,
/// so every call that needs it fails until the record is repaired.
pub(crate) fn nodes(meta: &VolumeMeta) -> Result<BTreeSet<String>, DriverError> {
    let Some(value) = meta.parameters.get(LEDGER_PARAM) else { return Ok(BTreeSet::new()) };
    serde_json::from_str(value).map_err(|e| {
        DriverError::Precondition(format!(
            "volume {:?}: its record's {LEDGER_PARAM} ({value:?}) is not a JSON list of node ids: {e}",
            meta.id
        ))
    })
}

/// Changes the ledger of `volume` in memory (the catalogue) by `edit`; returns the record as it
/// was if that changed it, so a caller can put it back. The next persist of the volume writes
/// it. An unknown volume has no ledger.
pub(crate) fn edit(
    d: &Driver,
    volume: &str,
    edit: impl FnOnce(&mut BTreeSet<String>),
) -> Result<Option<Arc<VolumeMeta>>, DriverError> {
    let Some(old) = d.catalog.get(volume) else { return Ok(None) };
    let mut ledger = nodes(&old)?;
    let before = ledger.clone();
    edit(&mut ledger);
    if ledger == before {
        return Ok(None);
    }
    let mut meta = VolumeMeta::clone(&old);
    if ledger.is_empty() {
        meta.parameters.remove(LEDGER_PARAM);
    } else {
        let value = serde_json::to_string(&ledger).expect("a set of strings serialises");
        meta.parameters.insert(LEDGER_PARAM.to_owned(), value);
    }
    d.catalog.insert(meta);
    Ok(Some(old))
}

/// Makes the volume's record (ledger included) durable now, for a change no engine commit
/// carried.
pub(crate) fn persist(d: &Driver, volume: &str) -> Result<(), DriverError> {
    match d.catalog.get(volume) {
        Some(meta) => d.persist_if(true, &meta),
        None => Ok(()),
    }
}
