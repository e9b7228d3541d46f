//! Which nodes exist, and what the world outside the engine shows them holding. Without
//! Kubernetes the set is fixed (`--node-id` plus `--nodes`) and there is no such evidence; a
//! Kubernetes layer implements [`NodeDirectory`] over its Node and `VolumeAttachment` watchers.

use std::collections::BTreeSet;

use tether_core::Evidence;

/// What the outside world (with Kubernetes, the `VolumeAttachments`) shows of a node holding a
/// volume: the evidence that beats timers (DESIGN.md, Driver).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// An attachment record exists and says attached.
    Attached,
    /// An attachment record exists, not (yet) attached: still being attached, which is as much
    /// a claim on the volume as attached.
    Pending,
    /// The attachment record was seen deleted and none exists now: a holder the engine still
    /// has is an orphan (say, a late publish retry after the unpublish).
    Gone,
    /// No evidence either way (standalone, caches not filled, or never seen): timers decide.
    Unknown,
}

/// A current reading of a volume's attachment records, for a decision a lagging cache could
/// get wrong (see [`NodeDirectory::records_now`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Records {
    /// The nodes that have a record for the volume now, in any state (attached, being
    /// attached, being deleted); a node not here has none.
    Nodes(BTreeSet<String>),
    /// The read failed: every holder counts as holding (refuse, never admit).
    Unreadable(String),
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
    /// Whether [`NodeDirectory::held`] answers from a cache that may lag the records (a watch).
    /// If so, only its "a record exists" is taken at once; a clear or a grace handoff waits for
    /// [`NodeDirectory::records_now`].
    fn held_may_lag(&self) -> bool {
        false
    }
    /// The records of `volume` as they are now (with Kubernetes, a quorum LIST of the
    /// `VolumeAttachments`). Asked only when `held_may_lag`, only on a refused publish, outside
    /// the volume's entry guard; it may block (it runs on the call's blocking thread).
    fn records_now(&self, _volume: &str) -> Records {
        Records::Unreadable("this node directory keeps no attachment records".to_owned())
    }
}

impl dyn NodeDirectory {
    /// The engine's evidence about `holder` of `volume` from what the directory holds: a node
    /// that no longer exists is released; a record (attached or pending) holds; when the
    /// records may lag, nothing else is taken at once (it counts as holding until
    /// [`NodeDirectory::records_now`] says otherwise); else a record seen deleted is released
    /// and no record is no evidence.
    pub fn cached_evidence(&self, volume: &str, holder: &str) -> Evidence {
        if !self.exists(holder) {
            return Evidence::Released;
        }
        match self.held(volume, holder) {
            Held::Attached | Held::Pending => Evidence::Holds,
            _ if self.held_may_lag() => Evidence::Holds,
            Held::Gone => Evidence::Released,
            Held::Unknown => Evidence::Unknown,
        }
    }

    /// Whether the cache's answer about `holder` is one that records read now could overturn
    /// into a clear or a handoff: the node exists and the cache shows no record for it.
    pub fn may_be_released(&self, volume: &str, holder: &str) -> bool {
        self.held_may_lag()
            && self.exists(holder)
            && !matches!(self.held(volume, holder), Held::Attached | Held::Pending)
    }

    /// The evidence about `holder` from records read now: a node that no longer exists, or
    /// has no record, is released; one with a record holds.
    pub fn current_evidence(&self, records: &BTreeSet<String>, holder: &str) -> Evidence {
        if self.exists(holder) && records.contains(holder) {
            Evidence::Holds
        } else {
            Evidence::Released
        }
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
