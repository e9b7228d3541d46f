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
}

impl fmt::Display for InputField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Volume => "volume id",
            Self::Node => "node id",
            Self::GracePeriod => "grace period",
            Self::MigrationTimeout => "migration timeout",
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
    #[error("snapshot version {found} is not supported; this engine reads version {supported}")]
    UnknownVersion { found: u64, supported: u64 },

    /// The document describes a state the contract cannot reach.
    #[error("snapshot entry {subject:?} is inconsistent: {problem}")]
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
    #[error(transparent)]
    Invalid(#[from] InvalidInput),
}

impl From<serde_json::Error> for SnapshotError {
    fn from(e: serde_json::Error) -> Self {
        Self::Malformed { line: e.line(), column: e.column(), message: e.to_string() }
    }
}
