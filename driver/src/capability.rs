//! Volume capabilities: which CSI access types and modes the driver serves, and how they map
//! to the engine's access.

use tether_core::Access;

use crate::csi::volume_capability::access_mode::Mode;
use crate::csi::volume_capability::AccessType;
use crate::csi::VolumeCapability;
use crate::status::DriverError;
use crate::volume::VolumeKind;

/// A capability the driver accepts, in engine terms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capability {
    pub kind: VolumeKind,
    pub access: Access,
}

/// Checks one capability on its own: an access type, a known mode the engine can keep, and
/// RWX only for block volumes (`KubeVirt` live migration is the one multi-node use).
pub fn parse(cap: &VolumeCapability) -> Result<Capability, DriverError> {
    let kind = match &cap.access_type {
        Some(AccessType::Block(_)) => VolumeKind::Block,
        Some(AccessType::Mount(_)) => VolumeKind::Filesystem,
        None => return Err(DriverError::Invalid("volume capability has no access type (block or mount)".into())),
    };
    let mode = cap.access_mode.as_ref().map_or(Mode::Unknown, super::csi::volume_capability::AccessMode::mode);
    let access = match mode {
        Mode::SingleNodeWriter | Mode::SingleNodeSingleWriter | Mode::SingleNodeMultiWriter => Access::RWO,
        Mode::SingleNodeReaderOnly => Access::RWO.readonly(),
        Mode::MultiNodeMultiWriter if kind == VolumeKind::Block => Access::RWX,
        Mode::MultiNodeMultiWriter => {
            return Err(DriverError::Invalid(
                "access mode MULTI_NODE_MULTI_WRITER is accepted only for block volumes (live migration); \
                 use SINGLE_NODE_WRITER for a filesystem volume"
                    .into(),
            ))
        }
        Mode::MultiNodeReaderOnly | Mode::MultiNodeSingleWriter | Mode::Unknown => {
            return Err(DriverError::Invalid(format!(
                "access mode {} is not supported; use SINGLE_NODE_WRITER, SINGLE_NODE_READER_ONLY, or \
                 MULTI_NODE_MULTI_WRITER for block volumes",
                mode.as_str_name()
            )))
        }
    };
    Ok(Capability { kind, access })
}

/// Checks a non-empty list of capabilities that must all fit one volume kind.
pub fn parse_all(caps: &[VolumeCapability]) -> Result<VolumeKind, DriverError> {
    let mut kind = None;
    for cap in caps {
        let c = parse(cap)?;
        if kind.is_some_and(|k| k != c.kind) {
            return Err(DriverError::Invalid(
                "volume capabilities mix block and mount access; a volume is one or the other".into(),
            ));
        }
        kind = Some(c.kind);
    }
    kind.ok_or_else(|| DriverError::Invalid("volume capabilities are missing; give at least one".into()))
}

/// Checks that a capability suits a volume of `kind`.
pub fn check_fits(cap: Capability, volume: &str, kind: VolumeKind) -> Result<(), DriverError> {
    if cap.kind == kind {
        return Ok(());
    }
    Err(DriverError::Invalid(format!(
        "volume {volume:?} is a {kind:?} volume; the capability asks for {:?} access",
        cap.kind
    )))
}
