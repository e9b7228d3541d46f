//! A volume's metadata: what `CreateVolume` decided, kept for the volume's whole life.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::status::DriverError;

/// The parameter that sets a volume's migration timeout, in whole seconds.
pub const MIGRATION_TIMEOUT_PARAM: &str = "migrationTimeoutSeconds";

/// How a volume is presented: a directory (filesystem) or a sparse file (block).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum VolumeKind {
    Filesystem,
    Block,
}

/// Everything the store keeps about one volume besides its attachment.
/// Also the `meta` of the cluster store's objects, whose schema is derived from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VolumeMeta {
    pub id: String,
    pub name: String,
    pub kind: VolumeKind,
    pub capacity_bytes: u64,
    /// The `CreateVolume` parameters, verbatim.
    pub parameters: BTreeMap<String, String>,
}

/// The keys the external-provisioner's `--extra-create-metadata` adds to the parameters.
pub const PVC_NAMESPACE_PARAM: &str = "csi.storage.k8s.io/pvc/namespace";
pub const PVC_NAME_PARAM: &str = "csi.storage.k8s.io/pvc/name";

/// The `PersistentVolumeClaim` a volume was created for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub namespace: String,
    pub name: String,
}

impl VolumeMeta {
    /// The PVC this volume was provisioned for, if the provisioner said.
    pub fn claim(&self) -> Option<Claim> {
        let namespace = self.parameters.get(PVC_NAMESPACE_PARAM).filter(|s| !s.is_empty())?;
        let name = self.parameters.get(PVC_NAME_PARAM).filter(|s| !s.is_empty())?;
        Some(Claim { namespace: namespace.clone(), name: name.clone() })
    }

    /// The migration timeout this volume asks for, if its parameters set one.
    pub fn migration_timeout(&self) -> Option<Duration> {
        // Parameters were checked at creation; a stored value always parses.
        parse_migration_timeout(&self.parameters).ok().flatten()
    }
}

/// Reads `migrationTimeoutSeconds`: absent is `None`; anything but a whole number of seconds
/// is refused. The engine clamps the value into its bounds.
pub fn parse_migration_timeout(params: &BTreeMap<String, String>) -> Result<Option<Duration>, DriverError> {
    let Some(raw) = params.get(MIGRATION_TIMEOUT_PARAM) else { return Ok(None) };
    raw.trim().parse::<u64>().map(|s| Some(Duration::from_secs(s))).map_err(|_| {
        DriverError::Invalid(format!(
            "parameter {MIGRATION_TIMEOUT_PARAM} is {raw:?}; give a whole number of seconds, e.g. \"300\""
        ))
    })
}
