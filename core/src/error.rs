//! Every way an engine call can refuse, as typed values that each front end maps once.

use std::fmt;
use std::time::Duration;

use crate::outcome::{Access, Nodes};

/// Why a request was refused. The state is untouched whenever one of these is returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CoreError {
    /// An argument breaks a rule of the contract (identifier, duration); nothing was looked up.
    #[error(transparent)]
    InvalidInput(#[from] InvalidInput),

    /// The volume is attached elsewhere in a way that excludes `node`.
    #[error(
        "volume {volume:?} cannot be attached to node {node:?}: it is attached to {attached_to}; \
         unpublish it from {attached_to} first (or wait until that node is cleared as stale)"
    )]
    Conflict { volume: String, node: String, attached_to: Nodes },

    /// The volume is already attached to `node` with other access.
    #[error(
        "volume {volume:?} is already attached to node {node:?} as {existing}, not {requested}; \
         unpublish it from {node:?} before attaching it as {requested}"
    )]
    Incompatible { volume: String, node: String, existing: Access, requested: Access },

    /// An RWX volume is already on two nodes (a migration in progress).
    #[error(
        "volume {volume:?} cannot be attached to node {node:?}: it is already on two nodes \
         ({nodes}) during a migration; complete or abort that migration first"
    )]
    MigrationLimit { volume: String, node: String, nodes: Nodes },

    /// The volume's migration is older than its timeout.
    #[error(
        "volume {volume:?} cannot be attached to node {node:?}: its migration between {nodes} \
         has run {elapsed:?}, past its timeout of {timeout:?}; unpublish one side to end it"
    )]
    MigrationTimedOut { volume: String, node: String, nodes: Nodes, elapsed: Duration, timeout: Duration },

    /// The change would raise the volume's epoch past `u64::MAX`; epochs never wrap, so the
    /// volume can change no more. Nothing changed.
    #[error(
        "volume {volume:?} cannot change: its epoch {epoch} cannot grow any further (epochs never wrap); \
         create a new volume and move the data to it"
    )]
    EpochExhausted { volume: String, epoch: u64 },

    /// `forget` was asked to drop a volume that is still attached.
    #[error("volume {volume:?} is still attached to {nodes}; unpublish it from every node before forgetting it")]
    StillAttached { volume: String, nodes: Nodes },

    /// A storage target was handed a fence no newer than the one it applied last.
    #[error(
        "fence at epoch {epoch} for volume {volume:?} is refused: epoch {applied} is already applied, \
         and only a higher epoch may replace it (a delayed, replayed or stale-leader update)"
    )]
    StaleFence { volume: String, epoch: u64, applied: u64 },

    /// A node's I/O session is not allowed by the volume's latest fence.
    #[error(
        "node {node:?} may not use volume {volume:?} with epoch {presented}: {}; \
         publish the volume to this node again to get a current publish context",
        match admitted {
            Some(a) => format!("the fence at epoch {fence_epoch} admitted it at epoch {a}, above the epoch presented"),
            None => format!("the fence at epoch {fence_epoch} does not admit it"),
        }
    )]
    NotAdmitted { volume: String, node: String, presented: u64, admitted: Option<u64>, fence_epoch: u64 },

    /// A snapshot document could not be restored; the engine kept its state.
    #[error(transparent)]
    BadSnapshot(#[from] SnapshotError),
}

/// Which argument was invalid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputField {
    Volume,
    Node,
    GracePeriod,
    MigrationTimeout,
    Term,
}

impl fmt::Display for InputField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Volume => "volume id",
            Self::Node => "node id",
            Self::GracePeriod => "grace period",
            Self::MigrationTimeout => "migration timeout",
            Self::Term => "term",
        })
    }
}

/// What was wrong with an argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    Empty,
    TooLong { len: usize, max: usize },
    ContainsNul { at: usize },
    NotUtf8 { at: usize },
    OutOfRange { min: Duration, max: Duration },
    TooLarge { value: u64, max: u64 },
}

/// An invalid argument: which one, and what was wrong with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field}: {problem}")]
pub struct InvalidInput {
    pub field: InputField,
    pub problem: Problem,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("it is empty; give a non-empty identifier"),
            Self::TooLong { len, max } => write!(f, "it is {len} bytes long; the limit is {max} bytes"),
            Self::ContainsNul { at } => write!(f, "it contains a NUL byte at offset {at}"),
            Self::NotUtf8 { at } => write!(f, "it is not valid UTF-8 (bad byte at offset {at})"),
            Self::OutOfRange { min, max } => write!(f, "it must be between {min:?} and {max:?}"),
            Self::TooLarge { value, max } => write!(f, "it is {value}; the limit is {max}"),
        }
    }
}

/// Why a snapshot document was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    /// The text is not a snapshot document at all (not JSON, or a field of the wrong shape).
    #[error("snapshot is malformed at line {line}, column {column}: {message}")]
    Malformed { line: usize, column: usize, message: String },

    /// The document's `version` is not one this engine reads.
    #[error("snapshot version {found} is not supported; this engine reads versions 1 to {supported}")]
    UnknownVersion { found: u64, supported: u64 },

    /// The document describes a state the contract cannot reach.
    #[error("snapshot entry \"{}\" is inconsistent: {problem}", crate::Shown::id(.subject))]
    Inconsistent { subject: String, problem: Inconsistency },
}

/// A state the contract can never reach, found in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Inconsistency {
    #[error("an RWO volume is attached to two nodes")]
    RwoOnTwoNodes,
    #[error("a volume is attached to {0} nodes; at most 2 are possible")]
    TooManyNodes(usize),
    #[error("an attachment lists no node")]
    NoNodes,
    #[error("a node is listed twice in one attachment")]
    DuplicateNode,
    #[error("the volume appears more than once")]
    DuplicateVolume,
    #[error("the missing node appears more than once")]
    DuplicateMissingNode,
    #[error("an attached volume has epoch 0; every attach increments the epoch")]
    AttachedAtEpochZero,
    #[error("the epoch is {0}, which cannot grow (epochs never wrap)")]
    EpochCannotGrow(u64),
    #[error("the admission epochs {admitted:?} do not fit nodes {nodes:?} at epoch {epoch}: one per node, each from 1 up to the epoch")]
    BadAdmissions { nodes: Vec<String>, admitted: Vec<u64>, epoch: u64 },
    #[error("{what} is {ahead:?} ahead of the restoring clock; at most {limit:?} is accepted")]
    FutureTime { what: &'static str, ahead: Duration, limit: Duration },
    #[error("the term {0} is above the largest term, {max}", max = crate::fence::MAX_TERM)]
    TermTooLarge(u64),
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

impl From<serde_json::Error> for SnapshotError {
    fn from(e: serde_json::Error) -> Self {
        Self::Malformed { line: e.line(), column: e.column(), message: e.to_string() }
    }
}

/// A fence a backend read back breaks the fence's shape: more than two nodes, a node twice,
/// or an admission epoch of 0 or above the fence's epoch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a fence at epoch {epoch} with {nodes} nodes is not a fence: at most two distinct nodes, each admitted from epoch 1 up to the fence's epoch")]
pub struct InvalidFence {
    pub epoch: u64,
    pub nodes: usize,
}
