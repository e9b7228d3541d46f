//! The node table: each node name interned as a small id while something holds it, so a
//! volume's entry stays small and the table holds only the names in use.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use arc_swap::ArcSwapOption;
use dashmap::DashMap;

use crate::outcome::NodeName;

/// A node's interned id. An id is reused once nothing holds its name; [`NodeId::NONE`] marks
/// an empty slot.
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

/// One id's slot: its name while the id is issued, and how many holders it has.
///
/// The name is an `ArcSwapOption` (arc-swap, already the engine's settings cell) because a
/// slot is cleared and set again when its id is reused, and readers must not take a lock.
#[derive(Debug, Default)]
struct Slot {
    name: ArcSwapOption<NodeName>,
    /// Attachment slots, detach records, missing marks and pins that hold the id.
    holders: AtomicU32,
}

/// Interned node names, reference-counted by what holds them.
///
/// A holder is an attachment slot (primary or migration target), a detach record's node, a
/// missing mark, or a short-lived pin (a call that resolved a name and must keep its id from
/// being reused while it works). When the last holder lets go, the name leaves the table and
/// its id goes onto a free list, to be handed to the next new name; so the table's slots are
/// bounded by the most names ever held at once, not by every name ever seen.
///
/// Id to name is read without any lock (every outcome names its nodes, so a lock there would
/// be a write to one shared line on every call): buckets of doubling size, each made once
/// through [`OnceLock`], each slot a cell that a reader loads atomically. A reader may resolve
/// an id only while it keeps the id held: inside the entry guard of a volume whose record
/// holds it, under the missing-mark lock for a mark, or with a pin.
#[derive(Debug, Default)]
pub(crate) struct NodeTable {
    ids: DashMap<NodeName, NodeId, ahash::RandomState>,
    slots: [OnceLock<Box<[Slot]>>; BUCKETS],
    /// How many ids were ever issued (the high-water mark of slots in use).
    issued: AtomicU32,
    /// Ids whose names were released, for reuse. A lock only on a name's first hold and last
    /// release: holding a name that is already held, and reading names, never take it.
    free: Mutex<Vec<u32>>,
}

/// The bucket and the slot in it of `id`.
fn slot_of(id: NodeId) -> (usize, usize) {
    let n = id.0 + 1;
    let bucket = n.ilog2();
    (bucket as usize, (n - (1 << bucket)) as usize)
}

impl NodeTable {
    fn slot(&self, id: NodeId) -> &Slot {
        let (bucket, slot) = slot_of(id);
        let bucket = self.slots[bucket].get().expect("a node id this table issued");
        &bucket[slot]
    }

    /// The id of `name` if it is interned now. The answer can be outdated as soon as the
    /// name's shard lock is let go: use it only to compare with ids the caller holds (inside
    /// a volume's entry guard, an id that volume holds cannot change name), or [`NodeTable::pin`].
    ///
    /// Locking behaviour: a read lock on one shard of the name map.
    pub(crate) fn lookup(&self, name: &str) -> Option<NodeId> {
        self.ids.get(name).map(|r| *r)
    }

    /// Takes one hold on `name`, interning it when new, and returns its id. Called only when
    /// state is about to hold the name (or as a pin), so a refused or invalid call leaves no
    /// name behind once its pin is released.
    ///
    /// Locking behaviour: a shard lock of the name map (its write lock only when the name is
    /// new, and then the free list's lock); the id-to-name table takes no lock.
    pub(crate) fn intern(&self, name: &str) -> NodeId {
        if let Some(id) = self.pin(name) {
            return id;
        }
        let name: NodeName = Arc::from(name);
        let mut fresh = false;
        let entry = self.ids.entry(Arc::clone(&name)).or_insert_with(|| {
            // The slot is nobody's until the entry is in the map: set it up, first hold
            // included, before any other call can find the name.
            let id = self.issue();
            let slot = self.slot(id);
            slot.holders.store(1, Ordering::Release);
            slot.name.store(Some(Arc::new(Arc::clone(&name))));
            fresh = true;
            id
        });
        if !fresh {
            // Interned meanwhile by another call: hold it under the shard's write lock, which
            // `release` needs to remove the name.
            self.slot(*entry).holders.fetch_add(1, Ordering::AcqRel);
        }
        *entry
    }

    /// An id for a new name: a released one, or the next never issued.
    fn issue(&self) -> NodeId {
        if let Some(id) = self.free.lock().unwrap_or_else(PoisonError::into_inner).pop() {
            return NodeId(id);
        }
        let id = self
            .issued
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| (n <= crate::record::MAX_NODE_ID).then_some(n + 1))
            .expect("fewer than 2^30 - 1 node names held at once");
        let (bucket, _) = slot_of(NodeId(id));
        self.slots[bucket].get_or_init(|| (0..1usize << bucket).map(|_| Slot::default()).collect());
        NodeId(id)
    }

    /// Takes one hold on `name` if it is interned now; `None` (and nothing taken) if not.
    ///
    /// Locking behaviour: a read lock on one shard of the name map, held while the hold is
    /// taken, so the name cannot be removed in between.
    pub(crate) fn pin(&self, name: &str) -> Option<NodeId> {
        let entry = self.ids.get(name)?;
        self.slot(*entry).holders.fetch_add(1, Ordering::AcqRel);
        Some(*entry)
    }

    /// Takes one more hold on `id`, which the caller already holds (so it cannot be released
    /// meanwhile).
    ///
    /// Locking behaviour: none; one atomic add.
    pub(crate) fn hold(&self, id: NodeId) {
        let before = self.slot(id).holders.fetch_add(1, Ordering::AcqRel);
        debug_assert!(before > 0, "node id {} held without a holder", id.0);
    }

    /// Lets go of one hold on `id`; the last one removes the name and frees the id.
    ///
    /// Locking behaviour: one atomic subtraction; the last hold also takes the write lock of
    /// the name's map shard, then the free list's lock.
    pub(crate) fn release(&self, id: NodeId) {
        let slot = self.slot(id);
        if slot.holders.fetch_sub(1, Ordering::AcqRel) != 1 {
            return;
        }
        // After a racing pin and release the slot may be cleared (or reused) already: then
        // that release removed the name, and there is nothing left to do here.
        let Some(name) = slot.name.load_full() else { return };
        // Someone may have pinned the name since the count reached zero (it is then above zero
        // again), or another last release may have removed it already: remove only this id's
        // entry, and only at zero, under the shard lock that pins hold.
        let removed = self.ids.remove_if(&**name, |_, v| *v == id && slot.holders.load(Ordering::Acquire) == 0);
        if removed.is_some() {
            slot.name.store(None);
            self.free.lock().unwrap_or_else(PoisonError::into_inner).push(id.0);
        }
    }

    /// Lets go of one hold on each of `ids`.
    ///
    /// Locking behaviour: as [`NodeTable::release`], once per id.
    pub(crate) fn release_all(&self, ids: impl IntoIterator<Item = NodeId>) {
        for id in ids {
            self.release(id);
        }
    }

    /// Moves one record's holds from `before` to `after` (the ids it held and holds, `NONE`
    /// for an empty place). `pinned` is a hold the caller took to admit a node: it becomes the
    /// record's hold if the node is now held, and is released otherwise.
    ///
    /// Locking behaviour: as [`NodeTable::hold`] and [`NodeTable::release`].
    pub(crate) fn settle(&self, before: &[NodeId], after: &[NodeId], pinned: Option<NodeId>) {
        let mut gone: Vec<NodeId> = before.iter().copied().filter(|n| !n.is_none()).collect();
        let mut pin = pinned;
        for &n in after.iter().filter(|n| !n.is_none()) {
            if let Some(i) = gone.iter().position(|g| *g == n) {
                gone.swap_remove(i);
            } else if pin == Some(n) {
                pin = None;
            } else {
                self.hold(n);
            }
        }
        self.release_all(gone.into_iter().chain(pin));
    }

    /// How many names are interned (held by something) now.
    ///
    /// Locking behaviour: a read lock on each shard of the name map in turn.
    pub(crate) fn len(&self) -> usize {
        self.ids.len()
    }

    /// How many ids were ever issued: the table's slots, bounded by the most names held at once.
    ///
    /// Locking behaviour: none; one atomic read.
    pub(crate) fn slots(&self) -> usize {
        self.issued.load(Ordering::Acquire) as usize
    }

    /// The name of `id`, which the caller holds (see the type's documentation). Panics on
    /// [`NodeId::NONE`] or an id not issued now.
    ///
    /// Locking behaviour: none; two atomic loads (the bucket's and the slot's).
    pub(crate) fn name(&self, id: NodeId) -> NodeName {
        let name = self.slot(id).name.load();
        Arc::clone(name.as_deref().expect("a node id this table issued and the caller holds"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_released_name_frees_its_id_for_the_next_name() {
        let t = NodeTable::default();
        let a = t.intern("a");
        assert_eq!(t.intern("a"), a, "a held name keeps its id");
        t.release(a);
        assert_eq!(t.len(), 1, "one hold is left");
        t.release(a);
        assert_eq!((t.len(), t.lookup("a")), (0, None), "the last release removes the name");
        let b = t.intern("b");
        assert_eq!(b, a, "the freed id is reused");
        assert_eq!(&*t.name(b), "b");
        assert_eq!(t.slots(), 1);
    }

    /// Release racing lookup: threads take and let go of holds on a few shared names (so each
    /// name's last release races another thread's pin or intern of it, and ids are reused all
    /// the time); while a thread holds an id, the id resolves to its name, and at the end
    /// every name is gone.
    #[test]
    fn names_released_while_others_pin_them_never_change_under_a_holder() {
        let t = NodeTable::default();
        let names = ["n0", "n1", "n2", "n3", "n4"];
        std::thread::scope(|s| {
            for k in 0..4usize {
                let t = &t;
                s.spawn(move || {
                    for i in 0..20_000usize {
                        let name = names[(i * (k + 1)) % names.len()];
                        let id = if i % 3 == 0 { t.pin(name) } else { Some(t.intern(name)) };
                        if let Some(id) = id {
                            assert_eq!(&*t.name(id), name, "id {} changed name under its holder", id.0);
                            assert_eq!(t.lookup(name), Some(id));
                            t.release(id);
                        }
                    }
                });
            }
        });
        assert_eq!(t.len(), 0, "every hold was let go");
        assert!(t.slots() <= names.len() * 2, "ids are reused: {} slots", t.slots());
    }

    #[test]
    fn settle_moves_holds_and_consumes_the_pin() {
        let t = NodeTable::default();
        let (a, b) = (t.intern("a"), t.intern("b"));
        // A record held [a]; a change admitted b (pinned) and kept a as the detach record.
        t.settle(&[a, NodeId::NONE], &[b, a], Some(b));
        assert_eq!(t.slot(a).holders.load(Ordering::Acquire), 1);
        assert_eq!(t.slot(b).holders.load(Ordering::Acquire), 1);
        // The record lets go of everything; a refused admission releases its pin.
        let c = t.intern("c");
        t.settle(&[b, a], &[], Some(c));
        assert_eq!(t.len(), 0);
    }
}
