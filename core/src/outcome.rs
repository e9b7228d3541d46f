//! The values the engine hands back: access modes, node lists, outcomes and reports.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::fence::Fence;

/// A node's name as the engine hands it out; cheap to clone.
pub type NodeName = Arc<str>;

/// How many nodes may hold a volume.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
pub enum AccessMode {
    /// Single-node writer: at most one node, ever.
    #[default]
    #[serde(rename = "RWO")]
    Rwo,
    /// Multi-node: a second node only for a live migration, never a third.
    #[serde(rename = "RWX")]
    Rwx,
}

impl AccessMode {
    /// How many nodes may hold a volume of this mode at once: the publish table's limit
    /// (RWO one; RWX two, the source and target of a migration), written once here and read
    /// by the table, the restore's checks and adoption.
    pub const fn node_limit(self) -> usize {
        match self {
            Self::Rwo => 1,
            Self::Rwx => 2,
        }
    }
}

impl fmt::Display for AccessMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Rwo => "RWO",
            Self::Rwx => "RWX",
        })
    }
}

/// The access a publish asks for: mode and read-only flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Access {
    pub mode: AccessMode,
    pub readonly: bool,
}

impl Access {
    pub const RWO: Self = Self { mode: AccessMode::Rwo, readonly: false };
    pub const RWX: Self = Self { mode: AccessMode::Rwx, readonly: false };

    /// The same mode, read-only.
    #[must_use]
    pub const fn readonly(self) -> Self {
        Self { mode: self.mode, readonly: true }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ro = if self.readonly { " read-only" } else { "" };
        write!(f, "{}{ro}", self.mode)
    }
}

/// The ordered nodes of an attachment: the primary (first attached) and, during a
/// migration, the target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Nodes {
    pub primary: NodeName,
    pub target: Option<NodeName>,
}

impl Nodes {
    /// One node.
    pub fn one(primary: impl Into<NodeName>) -> Self {
        Self { primary: primary.into(), target: None }
    }

    /// Two nodes, primary first.
    pub fn two(primary: impl Into<NodeName>, target: impl Into<NodeName>) -> Self {
        Self { primary: primary.into(), target: Some(target.into()) }
    }

    /// How many nodes: 1 or 2.
    pub fn len(&self) -> usize {
        1 + usize::from(self.target.is_some())
    }

    /// Never empty; here for symmetry with `len`.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The nodes in order, primary first.
    pub fn iter(&self) -> impl Iterator<Item = &NodeName> {
        std::iter::once(&self.primary).chain(self.target.as_ref())
    }

    /// Whether `node` is one of them.
    pub fn contains(&self, node: &str) -> bool {
        self.iter().any(|n| &**n == node)
    }
}

impl fmt::Display for Nodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.target {
            None => write!(f, "node {:?}", &*self.primary),
            Some(t) => write!(f, "nodes {:?} and {:?}", &*self.primary, &**t),
        }
    }
}

/// A successful publish: what happened, the volume's epoch after it, the node's admission
/// epoch (the same on an idempotent re-publish) and the fence a storage target must apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishOutcome {
    pub kind: Published,
    pub epoch: u64,
    pub admitted: u64,
    pub fence: Fence,
}

/// What a successful publish did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// The volume was not attached; now it is, to this node only.
    Attached,
    /// The volume was already attached to this node with this access: nothing changed.
    AlreadyAttached,
    /// An RWO attachment on `from` was a late re-attach inside the grace period; the volume
    /// now belongs to this node alone.
    HandedOff { from: NodeName },
    /// An RWX volume on `source` is now also on this node, for at most `timeout`.
    MigrationStarted { source: NodeName, timeout: Duration },
}

/// What an unpublish did. Every variant is a success: unpublish is idempotent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnpublishOutcome {
    /// The volume was not attached to that node (or at all): nothing changed.
    NotAttached,
    /// The volume is no longer attached anywhere; a detach record was written.
    Detached { nodes: Nodes, epoch: u64, fence: Fence },
    /// The migration source left; the target is now the only node.
    MigrationCompleted { source: NodeName, target: NodeName, duration: Duration, epoch: u64, fence: Fence },
    /// The migration target left; the source keeps the volume.
    MigrationAborted { source: NodeName, target: NodeName, epoch: u64, fence: Fence },
}

/// What a compare-and-clear of a stale attachment did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StaleOutcome {
    /// The volume was not (or no longer) attached to that node: nothing changed.
    NotAttached,
    /// The node was removed from the volume; `remaining` is the node still attached, if any.
    Cleared { node: NodeName, remaining: Option<NodeName>, epoch: u64, fence: Fence },
}

/// A volume's attachment as read at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attachment {
    pub volume: String,
    pub access: Access,
    pub nodes: Nodes,
    pub epoch: u64,
    /// The admission epochs of `nodes`: the primary's, and the target's during a migration.
    pub admitted: (u64, Option<u64>),
    /// When the node set last changed (attach, handoff, migration start or end).
    pub since: SystemTime,
    /// Present while the volume is on two nodes.
    pub migration: Option<MigrationStatus>,
}

/// A migration in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MigrationStatus {
    pub elapsed: Duration,
    pub timeout: Duration,
}

impl MigrationStatus {
    /// Whether the migration is older than its timeout.
    pub fn timed_out(&self) -> bool {
        self.elapsed > self.timeout
    }
}

/// The last full detach of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DetachRecord {
    pub node: NodeName,
    pub at: SystemTime,
    pub age: Duration,
}

/// What one `reconcile` pass found and did.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReconcileReport {
    /// Attachments cleared because their node had been missing for at least the grace period.
    pub cleared: Vec<ClearedAttachment>,
    /// Missing nodes whose attachments are kept until their grace period runs out.
    pub pending: Vec<PendingNode>,
    /// Nodes that had been marked missing and are live again: they keep their volumes.
    pub returned: Vec<NodeName>,
    /// Migrations found older than their timeout, each reported once.
    pub timed_out_migrations: Vec<TimedOutMigration>,
}

/// One attachment a reconcile cleared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearedAttachment {
    pub volume: String,
    pub node: NodeName,
    pub epoch: u64,
    pub fence: Fence,
}

/// A node seen missing whose attachments are not cleared yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingNode {
    pub node: NodeName,
    pub missing_since: SystemTime,
    /// How long until its attachments are cleared, if it stays missing.
    pub clears_in: Duration,
    pub volumes: usize,
}

/// A migration older than its timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimedOutMigration {
    pub volume: String,
    pub source: NodeName,
    pub target: NodeName,
    pub elapsed: Duration,
    pub timeout: Duration,
}
