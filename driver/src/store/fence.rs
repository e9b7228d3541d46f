//! A fence as the embedded store keeps it on disk, and the conversion to and from the engine's.

use tether_core::{Access, AccessMode, Admission, Fence, InvalidFence};

/// One applied fence: `fences/<id>.json`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredFence {
    pub epoch: u64,
    pub mode: AccessMode,
    pub readonly: bool,
    /// `(node, admission epoch)`, primary first.
    pub nodes: Vec<(String, u64)>,
}

impl From<&Fence> for StoredFence {
    fn from(f: &Fence) -> Self {
        Self {
            epoch: f.epoch,
            mode: f.access.mode,
            readonly: f.access.readonly,
            nodes: f.nodes().map(|a| (a.node.to_string(), a.epoch)).collect(),
        }
    }
}

impl TryFrom<StoredFence> for Fence {
    type Error = InvalidFence;

    fn try_from(s: StoredFence) -> Result<Self, InvalidFence> {
        let nodes = s.nodes.into_iter().map(|(node, epoch)| Admission { node: node.into(), epoch }).collect();
        Fence::new(s.epoch, Access { mode: s.mode, readonly: s.readonly }, nodes)
    }
}
