//! The node table: each node name interned once as a small id, so a volume's entry stays small.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};

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

/// How many buckets the id-to-name table has: bucket `b` holds the `2^b` ids from `2^b - 1`,
/// so 30 buckets hold every id up to [`crate::record::MAX_NODE_ID`].
const BUCKETS: usize = 30;

/// Interned node names. Grows by one entry per distinct node name ever seen; node names are
/// bounded by the cluster's nodes, so it is never pruned.
///
/// Id to name is an append-only table read without any lock (every outcome names its nodes,
/// so a lock there would be a write to one shared line on every call): buckets of doubling
/// size, each made once, each slot set once, both through [`OnceLock`]. An id is handed out
/// only after its slot is set, so a reader never finds its slot empty.
#[derive(Debug, Default)]
pub(crate) struct NodeTable {
    ids: DashMap<NodeName, NodeId, ahash::RandomState>,
    names: [OnceLock<Box<[OnceLock<NodeName>]>>; BUCKETS],
    /// How many ids have been issued; written only under the name map's shard lock of the
    /// name being interned.
    issued: AtomicU32,
}

/// The bucket and the slot in it of `id`.
fn slot_of(id: NodeId) -> (usize, usize) {
    let n = id.0 + 1;
    let bucket = n.ilog2();
    (bucket as usize, (n - (1 << bucket)) as usize)
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
    /// Locking behaviour: a shard lock of the name map (its write lock only when the name is
    /// new); the id-to-name table takes no lock.
    pub(crate) fn intern(&self, name: &str) -> NodeId {
        if let Some(id) = self.lookup(name) {
            return id;
        }
        let name: NodeName = Arc::from(name);
        *self.ids.entry(Arc::clone(&name)).or_insert_with(|| {
            // Two new names in different shards may be interned at once: the counter orders them.
            let id = self
                .issued
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n <= crate::record::MAX_NODE_ID).then_some(n + 1)
                })
                .expect("fewer than 2^30 - 1 node names");
            let id = NodeId(id);
            let (bucket, slot) = slot_of(id);
            let bucket = self.names[bucket].get_or_init(|| (0..1usize << bucket).map(|_| OnceLock::new()).collect());
            assert!(bucket[slot].set(name).is_ok(), "node id {} issued twice", id.0);
            id
        })
    }

    /// How many names are interned.
    ///
    /// Locking behaviour: none; one atomic read.
    pub(crate) fn len(&self) -> usize {
        self.issued.load(Ordering::Acquire) as usize
    }

    /// The name of `id`. Panics on [`NodeId::NONE`] or an id this table never issued.
    ///
    /// Locking behaviour: none; two atomic reads (the bucket's and the slot's).
    pub(crate) fn name(&self, id: NodeId) -> NodeName {
        let (bucket, slot) = slot_of(id);
        let name = self.names[bucket].get().and_then(|b| b[slot].get());
        Arc::clone(name.expect("a node id this table issued"))
    }
}
