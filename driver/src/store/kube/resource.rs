//! The cluster store's custom resources (`tether.io/v1alpha1`, cluster-scoped): a `TetherVolume`
//! per volume (its record, its applied fence and the controller term of its last writer) and the
//! `TetherTerm` singleton (the last controller term handed out); how a volume id names its
//! object; and the conversions to and from the engine's types. The CRDs are generated from these
//! types (`examples/crd.rs`), so the schema the API server enforces is the one written here.

use std::fmt::Write as _;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tether_core::{Access, AccessMode, Admission, AttachmentEntry, DetachEntry, Fence, VolumeEntry};

use crate::store::StoredVolume;
use crate::volume::VolumeMeta;

/// The name of the `TetherTerm` singleton.
pub const TERM_OBJECT: &str = "controller";

/// What a hashed object name starts with (a volume id that is no valid object name).
pub const HASHED_PREFIX: &str = "sha256-";

/// One volume: what the embedded store keeps in its two rows, in one object, so that a change
/// of record and fence is one conditional write.
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(group = "tether.io", version = "v1alpha1", kind = "TetherVolume", plural = "tethervolumes")]
#[kube(shortname = "tvol")]
#[serde(rename_all = "camelCase")]
pub struct TetherVolumeSpec {
    /// The CSI volume id; the object's name is the id, or its SHA-256 when the id is no valid name.
    pub volume_id: String,
    /// The controller term of the last writer: a writer of an older term is refused.
    pub term: u64,
    pub meta: VolumeMeta,
    /// The engine's state of the volume, absent while it was never attached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engine: Option<EngineRecord>,
    /// The last fence applied: what a node's I/O session is checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<FenceRecord>,
}

/// The last controller term handed out, in the object named [`TERM_OBJECT`].
#[derive(CustomResource, Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[kube(group = "tether.io", version = "v1alpha1", kind = "TetherTerm", plural = "tetherterms")]
pub struct TetherTermSpec {
    pub term: u64,
}

/// How a volume is shared (the engine's `AccessMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub enum Mode {
    #[serde(rename = "RWO")]
    Rwo,
    #[serde(rename = "RWX")]
    Rwx,
}

/// The engine's entry of one volume (`VolumeEntry` without the id, which the object holds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct EngineRecord {
    pub epoch: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<AttachmentRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_detach: Option<DetachRecord>,
}

/// The volume's current attachment: nodes, primary first, each with its admission epoch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttachmentRecord {
    pub mode: Mode,
    pub readonly: bool,
    pub nodes: Vec<String>,
    #[serde(default)]
    pub admitted: Vec<u64>,
    pub since_unix_nanos: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub migration_timeout_ms: Option<u32>,
    #[serde(default)]
    pub timeout_reported: bool,
}

/// The volume's last full detach.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DetachRecord {
    pub node: String,
    pub at_unix_nanos: u64,
}

/// An applied fence: `(epoch, access, [(node, admitted_at)])`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FenceRecord {
    pub epoch: u64,
    pub mode: Mode,
    pub readonly: bool,
    pub nodes: Vec<AdmissionRecord>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdmissionRecord {
    pub node: String,
    pub admitted_at: u64,
}

/// The object name of volume `id`: the id itself when it is a DNS subdomain (what the API
/// server accepts as a name; every id this driver creates is one), else [`HASHED_PREFIX`] and
/// the id's SHA-256 in hex. The object keeps the id, and every read checks it, so two ids that
/// meet on one name are refused, never mixed.
pub fn object_name(id: &str) -> String {
    if is_dns_subdomain(id) {
        return id.to_owned();
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    digest.as_ref().iter().fold(HASHED_PREFIX.to_owned(), |mut name, b| {
        let _ = write!(name, "{b:02x}");
        name
    })
}

/// RFC 1123 subdomain: at most 253 bytes of dot-separated labels, each lowercase
/// alphanumerics and '-', starting and ending alphanumeric.
fn is_dns_subdomain(s: &str) -> bool {
    let alnum = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    s.len() <= 253
        && s.split('.').all(|label| {
            label.starts_with(alnum) && label.ends_with(alnum) && label.chars().all(|c| alnum(c) || c == '-')
        })
}

fn mode_of(m: AccessMode) -> Mode {
    match m {
        AccessMode::Rwo => Mode::Rwo,
        AccessMode::Rwx => Mode::Rwx,
    }
}

fn access_mode(m: Mode) -> AccessMode {
    match m {
        Mode::Rwo => AccessMode::Rwo,
        Mode::Rwx => AccessMode::Rwx,
    }
}

impl From<&VolumeEntry> for EngineRecord {
    fn from(e: &VolumeEntry) -> Self {
        Self {
            epoch: e.epoch,
            attachment: e.attachment.as_ref().map(|a| AttachmentRecord {
                mode: mode_of(a.mode),
                readonly: a.readonly,
                nodes: a.nodes.clone(),
                admitted: a.admitted.clone(),
                since_unix_nanos: a.since_unix_nanos,
                migration_timeout_ms: a.migration_timeout_ms,
                timeout_reported: a.timeout_reported,
            }),
            last_detach: e
                .last_detach
                .as_ref()
                .map(|d| DetachRecord { node: d.node.clone(), at_unix_nanos: d.at_unix_nanos }),
        }
    }
}

impl EngineRecord {
    /// The engine's entry of volume `volume`.
    pub fn to_entry(&self, volume: &str) -> VolumeEntry {
        VolumeEntry {
            volume: volume.to_owned(),
            epoch: self.epoch,
            attachment: self.attachment.as_ref().map(|a| AttachmentEntry {
                mode: access_mode(a.mode),
                readonly: a.readonly,
                nodes: a.nodes.clone(),
                admitted: a.admitted.clone(),
                since_unix_nanos: a.since_unix_nanos,
                migration_timeout_ms: a.migration_timeout_ms,
                timeout_reported: a.timeout_reported,
            }),
            last_detach: self
                .last_detach
                .as_ref()
                .map(|d| DetachEntry { node: d.node.clone(), at_unix_nanos: d.at_unix_nanos }),
        }
    }
}

impl From<&Fence> for FenceRecord {
    fn from(f: &Fence) -> Self {
        Self {
            epoch: f.epoch,
            mode: mode_of(f.access.mode),
            readonly: f.access.readonly,
            nodes: f.nodes().map(|a| AdmissionRecord { node: a.node.to_string(), admitted_at: a.epoch }).collect(),
        }
    }
}

impl TetherVolumeSpec {
    /// The volume and its applied fence as the object holds them, checked: the id the object
    /// was read for, the same id inside, and a fence the engine can hold. A message naming
    /// the field that is wrong otherwise.
    pub fn decode(&self, id: &str) -> Result<(StoredVolume, Option<Fence>), String> {
        if self.volume_id != id {
            return Err(format!("spec.volumeId is {:?}, not {id:?}", self.volume_id));
        }
        if self.meta.id != id {
            return Err(format!("spec.meta.id is {:?}, not {id:?}", self.meta.id));
        }
        let fence = self
            .fence
            .as_ref()
            .map(|f| {
                let nodes = f.nodes.iter().map(|a| Admission { node: a.node.as_str().into(), epoch: a.admitted_at });
                let access = Access { mode: access_mode(f.mode), readonly: f.readonly };
                Fence::new(f.epoch, access, nodes.collect()).map_err(|e| format!("spec.fence: {e}"))
            })
            .transpose()?;
        let engine = self.engine.as_ref().map(|e| e.to_entry(id));
        Ok((StoredVolume { meta: self.meta.clone(), engine }, fence))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_that_is_a_valid_name_is_the_name() {
        assert_eq!(object_name("tv-18f3a-0"), "tv-18f3a-0");
        assert_eq!(object_name("a.b-c"), "a.b-c");
    }

    #[test]
    fn an_odd_or_long_id_is_hashed_into_a_valid_name() {
        let long = "v".repeat(254);
        for id in ["Upper", "with/slash", "-lead", "trail-", "a..b", "sp ace", "ü", long.as_str()] {
            let name = object_name(id);
            assert!(name.starts_with(HASHED_PREFIX) && name.len() == HASHED_PREFIX.len() + 64, "{id:?} -> {name}");
            assert!(is_dns_subdomain(&name), "{name}");
        }
        assert_ne!(object_name("Upper"), object_name("upper"));
    }

    #[test]
    fn an_object_for_another_id_or_with_a_bad_fence_is_refused_by_name() {
        let meta = VolumeMeta {
            id: "tv-1".into(),
            name: "pvc-1".into(),
            kind: crate::volume::VolumeKind::Filesystem,
            capacity_bytes: 1,
            parameters: std::collections::BTreeMap::new(),
        };
        let spec = TetherVolumeSpec { volume_id: "tv-1".into(), term: 1, meta, engine: None, fence: None };
        assert!(spec.decode("tv-1").is_ok());
        assert!(spec.decode("tv-2").unwrap_err().contains("spec.volumeId"));
        let mut inner = spec.clone();
        inner.meta.id = "tv-9".into();
        assert!(inner.decode("tv-1").unwrap_err().contains("spec.meta.id"));
        let mut twice = spec;
        let node = AdmissionRecord { node: "n1".into(), admitted_at: 3 };
        twice.fence = Some(FenceRecord { epoch: 5, mode: Mode::Rwx, readonly: false, nodes: vec![node.clone(), node] });
        assert!(twice.decode("tv-1").unwrap_err().contains("spec.fence"));
    }
}
