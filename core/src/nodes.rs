//! The node table: each node name interned once as a small id, so a volume's entry stays small.

use std::sync::{Arc, RwLock};

use dashmap::DashMap;

use crate::outcome::NodeName;

/// A node's interned id. Ids are never reused; [`NodeId::NONE`] marks an empty slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeId(pub(crate) u32);

impl NodeId {
    pub(crate) const NONE: Self = Self(u32::MAX);

    pub(crate) fn is_none(self) -> bool {
        self == Self::NONE
    }
}

/// Interned node names. Grows by one entry per distinct node name ever seen; node names are
/// bounded by the cluster's nodes, so it is never pruned.
#[derive(Debug, Default)]
pub(crate) struct NodeTable {
    ids: DashMap<NodeName, NodeId, ahash::RandomState>,
    names: RwLock<Vec<NodeName>>,
}

impl NodeTable {
    /// The id of `name`, if it was ever interned.
    ///
    /// Locking behaviour: a read lock on one shard of the name map.
    pub(crate) fn lookup(&self, name: &str) -> Option<NodeId> {
        self.ids.get(name).map(|r| *r)
    }

    /// The id of `name`, interning it when new. Called only when state is about to hold the
    /// name, so a refused or invalid call leaves no name behind.
    ///
    /// Locking behaviour: a shard lock of the name map, and the name list's write lock only
    /// when the name is new.
    pub(crate) fn intern(&self, name: &str) -> NodeId {
        if let Some(id) = self.lookup(name) {
            return id;
        }
        *self.ids.entry(Arc::from(name)).or_insert_with(|| {
            let mut names = self.names.write().unwrap_or_else(std::sync::PoisonError::into_inner);
            let id = u32::try_from(names.len()).ok().filter(|&id| id <= crate::record::MAX_NODE_ID);
            let id = NodeId(id.expect("fewer than 2^30 - 1 node names"));
            names.push(Arc::from(name));
            id
        })
    }

    /// How many names are interned.
    ///
    /// Locking behaviour: the name list's read lock.
    pub(crate) fn len(&self) -> usize {
        self.names.read().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }

    /// The name of `id`. Panics on [`NodeId::NONE`] or an id this table never issued.
    ///
    /// Locking behaviour: the name list's read lock.
    pub(crate) fn name(&self, id: NodeId) -> NodeName {
        let names = self.names.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(&names[id.0 as usize])
    }
}
