//! The one place where refusals become gRPC statuses (DESIGN.md, "Errors across boundaries").

use tether_core::{CoreError, InvalidInput, Shown};
use tonic::{Code, Status};

use crate::store::StoreError;

/// Every way a driver call can refuse, beyond the engine's own errors.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The engine refused; its message already names volume, nodes and the next step.
    #[error(transparent)]
    Core(#[from] CoreError),
    /// A request field is missing or malformed.
    #[error("{0}")]
    Invalid(String),
    #[error("volume {0:?} does not exist; create it first (or check the volume id)")]
    VolumeNotFound(String),
    #[error("node {0:?} is not known to this driver; known nodes come from --node-id and --nodes")]
    NodeNotFound(String),
    /// A create with a known name but other properties.
    #[error("a volume named {name:?} already exists ({id}) with other properties: {problem}")]
    NameTaken { name: String, id: String, problem: String },
    #[error("{0}")]
    OutOfRange(String),
    #[error("another operation on volume {0:?} is in progress; retry when it has finished")]
    Busy(String),
    #[error("volume {volume:?} is still published to {nodes}; unpublish it before deleting it")]
    StillPublished { volume: String, nodes: String },
    /// The node side refuses a publish context older than one it has already mounted.
    #[error("{0}")]
    Precondition(String),
    #[error("starting_token {0:?} was not issued by this driver; list again from the start")]
    BadToken(String),
    #[error("the volume store failed: {0}")]
    Store(#[from] StoreError),
    #[error("the driver is shutting down; retry against the next instance")]
    ShuttingDown,
    /// Recovery fails closed: without the attachments Kubernetes records, a publish could let
    /// a second node in.
    #[error("the driver is still rebuilding its attachment state from Kubernetes; retry shortly")]
    Rebuilding,
}

impl From<InvalidInput> for DriverError {
    fn from(e: InvalidInput) -> Self {
        Self::Core(CoreError::InvalidInput(e))
    }
}

/// The gRPC code of an engine error, per DESIGN.md's table. (`impl From<CoreError> for Status`
/// is impossible here: both types are foreign, so engine errors reach a status through
/// [`DriverError`], the one conversion below.)
pub fn core_code(e: &CoreError) -> Code {
    match e {
        CoreError::InvalidInput(_) => Code::InvalidArgument,
        CoreError::Conflict { .. }
        | CoreError::MigrationLimit { .. }
        | CoreError::MigrationTimedOut { .. }
        | CoreError::EpochExhausted { .. }
        | CoreError::StillAttached { .. }
        | CoreError::StaleFence { .. }
        | CoreError::NotAdmitted { .. } => Code::FailedPrecondition,
        CoreError::Incompatible { .. } => Code::AlreadyExists,
        // No RPC restores a snapshot; reaching this is a driver bug, not the caller's.
        CoreError::BadSnapshot(_) => Code::Internal,
    }
}

impl From<DriverError> for Status {
    fn from(e: DriverError) -> Self {
        let code = match &e {
            // The store refuses a fence by the fence rule when the caller holds a stale view.
            DriverError::Core(core) | DriverError::Store(StoreError::Fence(core)) => core_code(core),
            DriverError::Invalid(_) => Code::InvalidArgument,
            DriverError::VolumeNotFound(_) | DriverError::NodeNotFound(_) => Code::NotFound,
            DriverError::NameTaken { .. } => Code::AlreadyExists,
            DriverError::OutOfRange(_) => Code::OutOfRange,
            DriverError::Busy(_) | DriverError::BadToken(_) => Code::Aborted,
            DriverError::StillPublished { .. } | DriverError::Precondition(_) => Code::FailedPrecondition,
            // The cluster store unreachable, slow or taken over by a newer leader: retry later.
            DriverError::Store(store) if store.is_unavailable() => Code::Unavailable,
            DriverError::Store(_) => Code::Internal,
            DriverError::ShuttingDown | DriverError::Rebuilding => Code::Unavailable,
        };
        Self::new(code, Shown::within(&e.to_string(), MAX_MESSAGE_LEN).to_string())
    }
}

/// The most bytes of an error message a caller gets back (and the log repeats): enough for
/// every message the driver writes about valid identifiers, whatever text a request quoted.
pub const MAX_MESSAGE_LEN: usize = 2048;
