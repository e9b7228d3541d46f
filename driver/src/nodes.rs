//! Which nodes exist. Without Kubernetes the set is fixed (`--node-id` plus `--nodes`); a
//! Kubernetes layer implements [`NodeDirectory`] over its Node watcher.

use std::collections::BTreeSet;

/// The nodes a volume may be published to.
pub trait NodeDirectory: Send + Sync + 'static {
    fn exists(&self, node: &str) -> bool;
    /// Every node alive now, for reconcile.
    fn live(&self) -> Vec<String>;
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
