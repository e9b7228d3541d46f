//! Which nodes exist, and what the world outside the engine shows them holding. Without
//! Kubernetes the set is fixed (`--node-id` plus `--nodes`) and there is no such evidence; a
//! Kubernetes layer implements [`NodeDirectory`] over its Node and `VolumeAttachment` watchers.

use std::collections::BTreeSet;

/// What the outside world (with Kubernetes, the `VolumeAttachments`) shows of a node holding a
/// volume: the evidence that beats timers (DESIGN.md, Driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// An attachment record exists and says attached: a grace-period handoff must not take the
    /// volume from this node.
    Attached,
    /// An attachment record exists, not (yet) attached.
    Pending,
    /// The attachment record was seen deleted and none exists now: a holder the engine still
    /// has is an orphan (say, a late publish retry after the unpublish).
    Gone,
    /// No evidence either way (standalone, caches not filled, or never seen): timers decide.
    Unknown,
}

/// The nodes a volume may be published to.
pub trait NodeDirectory: Send + Sync + 'static {
    fn exists(&self, node: &str) -> bool;
    /// Every node alive now, for reconcile.
    fn live(&self) -> Vec<String>;
    /// What the outside world shows of `node` holding `volume`; it must not block (it is asked
    /// under the volume's entry guard).
    fn held(&self, _volume: &str, _node: &str) -> Held {
        Held::Unknown
    }
}

/// A fixed set of nodes.
#[derive(Debug, Clone, Default)]
pub struct StaticNodes(BTreeSet<String>);

impl StaticNodes {
    pub fn new(nodes: impl IntoIterator<Item = String>) -> Self {
        Self(nodes.into_iter().filter(|n| !n.is_empty()).collect())
    }
}

impl NodeDirectory for StaticNodes {
    fn exists(&self, node: &str) -> bool {
        self.0.contains(node)
    }

    fn live(&self) -> Vec<String> {
        self.0.iter().cloned().collect()
    }
}
