//! Status codes, the crate's error type, and the one place that maps an engine error to a code.

use std::ffi::CStr;
use std::fmt;

use tether_core::{CoreError, InvalidFence, Nodes};

use crate::types::{tether_error_info, tether_node_name};

/// The result of every fallible call. `TETHER_OK` is 0; every other code is a refusal and
/// comes with a message (`tether_last_error`) and details (`tether_last_error_info`) on the
/// calling thread.
///
/// Codes are grouped by hundreds: 1xx the arguments were unusable, 2xx the engine (or a
/// fence rule) refused the change, 3xx the snapshot document was rejected, 9xx the library
/// itself failed.
/// A code keeps its meaning forever: codes are added, never renumbered, and a retired code is
/// never reused.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum tether_status {
    /// Success: every output was written.
    TETHER_OK = 0,
    /// An argument breaks a rule of the contract: an empty, over-long or NUL-containing
    /// identifier, a duration out of range, inconsistent lengths.
    TETHER_INVALID_ARGUMENT = 100,
    /// A pointer that must not be NULL was NULL.
    TETHER_NULL_POINTER = 101,
    /// A text argument is not valid UTF-8.
    TETHER_INVALID_UTF8 = 102,
    /// The call needs an engine made by `tether_engine_new_manual_clock`.
    TETHER_NOT_MANUAL_CLOCK = 103,
    /// Another node holds the volume in a way that excludes this one (CSI FAILED_PRECONDITION).
    TETHER_CONFLICT = 200,
    /// The same node holds the volume with another access mode or read-only flag
    /// (CSI ALREADY_EXISTS).
    TETHER_INCOMPATIBLE = 201,
    /// An RWX volume is already on two nodes during a migration.
    TETHER_MIGRATION_LIMIT = 202,
    /// The volume's migration has run past its timeout; unpublish one side to end it.
    TETHER_MIGRATION_TIMED_OUT = 203,
    /// The volume's epoch cannot grow any further (epochs never wrap), so the volume can change
    /// no more; nothing changed. Details: `epoch`.
    TETHER_EPOCH_EXHAUSTED = 204,
    /// `tether_engine_forget` was asked to drop a volume that is still attached; unpublish it
    /// from every node first. Details: the nodes holding it.
    TETHER_STILL_ATTACHED = 205,
    /// A storage target was handed a fence no newer than the one it applied last (a delayed,
    /// replayed or stale-leader update). Details: `epoch` (the refused fence's) and
    /// `applied_epoch`.
    TETHER_STALE_FENCE = 206,
    /// A node's I/O session is not allowed by the volume's latest fence: the node is not in it,
    /// or presented an epoch below its admission epoch. Details: the node, `epoch` (the
    /// fence's), `presented_epoch`, `admitted_epoch` (0 when the fence does not admit it).
    TETHER_NOT_ADMITTED = 207,
    /// A snapshot document is malformed, of an unknown version, or inconsistent; the engine
    /// kept its state.
    TETHER_BAD_SNAPSHOT = 300,
    /// A caller buffer is too small; the required size was reported and nothing written.
    TETHER_BUFFER_TOO_SMALL = 900,
    /// The library panicked inside this call. The call had no effect the caller can rely on;
    /// the engine stays usable (every engine change is made inside one entry guard).
    TETHER_PANIC = 901,
}

impl tether_status {
    /// Every status, for looking one up by its code.
    const ALL: [Self; 16] = [
        Self::TETHER_OK,
        Self::TETHER_INVALID_ARGUMENT,
        Self::TETHER_NULL_POINTER,
        Self::TETHER_INVALID_UTF8,
        Self::TETHER_NOT_MANUAL_CLOCK,
        Self::TETHER_CONFLICT,
        Self::TETHER_INCOMPATIBLE,
        Self::TETHER_MIGRATION_LIMIT,
        Self::TETHER_MIGRATION_TIMED_OUT,
        Self::TETHER_EPOCH_EXHAUSTED,
        Self::TETHER_STILL_ATTACHED,
        Self::TETHER_STALE_FENCE,
        Self::TETHER_NOT_ADMITTED,
        Self::TETHER_BAD_SNAPSHOT,
        Self::TETHER_BUFFER_TOO_SMALL,
        Self::TETHER_PANIC,
    ];

    /// The status with this code, if there is one.
    pub(crate) fn from_code(code: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|s| *s as u32 == code)
    }

    /// The status's name as C spells it.
    pub(crate) fn name(self) -> &'static CStr {
        match self {
            Self::TETHER_OK => c"TETHER_OK",
            Self::TETHER_INVALID_ARGUMENT => c"TETHER_INVALID_ARGUMENT",
            Self::TETHER_NULL_POINTER => c"TETHER_NULL_POINTER",
            Self::TETHER_INVALID_UTF8 => c"TETHER_INVALID_UTF8",
            Self::TETHER_NOT_MANUAL_CLOCK => c"TETHER_NOT_MANUAL_CLOCK",
            Self::TETHER_CONFLICT => c"TETHER_CONFLICT",
            Self::TETHER_INCOMPATIBLE => c"TETHER_INCOMPATIBLE",
            Self::TETHER_MIGRATION_LIMIT => c"TETHER_MIGRATION_LIMIT",
            Self::TETHER_MIGRATION_TIMED_OUT => c"TETHER_MIGRATION_TIMED_OUT",
            Self::TETHER_EPOCH_EXHAUSTED => c"TETHER_EPOCH_EXHAUSTED",
            Self::TETHER_STILL_ATTACHED => c"TETHER_STILL_ATTACHED",
            Self::TETHER_STALE_FENCE => c"TETHER_STALE_FENCE",
            Self::TETHER_NOT_ADMITTED => c"TETHER_NOT_ADMITTED",
            Self::TETHER_BAD_SNAPSHOT => c"TETHER_BAD_SNAPSHOT",
            Self::TETHER_BUFFER_TOO_SMALL => c"TETHER_BUFFER_TOO_SMALL",
            Self::TETHER_PANIC => c"TETHER_PANIC",
        }
    }
}

/// Why a call failed, before it becomes a status, a message and details.
///
/// Kept small (the engine's error is boxed, text is boxed) because every export moves a
/// `Result<(), FfiError>` out of its panic guard: a large one costs a `memcpy` per call on
/// the success path too.
#[derive(Debug)]
pub(crate) enum FfiError {
    /// The engine refused.
    Core(Box<CoreError>),
    /// A required pointer was NULL; names the argument.
    Null(&'static str),
    /// A text argument is not UTF-8; names the argument and the first bad byte.
    NotUtf8 { what: &'static str, at: usize },
    /// A length no object can have, lengths that disagree, a value out of its set.
    BadArgument { what: &'static str, problem: Box<str> },
    /// An engine without a manual clock was asked to move its clock.
    NotManualClock,
    /// A fence passed in breaks the fence's shape (see `tether_fence`).
    BadFence(InvalidFence),
    /// A panic was caught at the boundary; its message if it had one.
    Panic(Box<str>),
}

impl From<CoreError> for FfiError {
    fn from(e: CoreError) -> Self {
        Self::Core(Box::new(e))
    }
}

/// The status for an engine error: the single mapping from engine errors to C codes
/// (DESIGN.md, "Errors across boundaries").
fn core_status(e: &CoreError) -> tether_status {
    match e {
        CoreError::InvalidInput(_) => tether_status::TETHER_INVALID_ARGUMENT,
        CoreError::Conflict { .. } => tether_status::TETHER_CONFLICT,
        CoreError::Incompatible { .. } => tether_status::TETHER_INCOMPATIBLE,
        CoreError::MigrationLimit { .. } => tether_status::TETHER_MIGRATION_LIMIT,
        CoreError::MigrationTimedOut { .. } => tether_status::TETHER_MIGRATION_TIMED_OUT,
        CoreError::EpochExhausted { .. } => tether_status::TETHER_EPOCH_EXHAUSTED,
        CoreError::StillAttached { .. } => tether_status::TETHER_STILL_ATTACHED,
        CoreError::StaleFence { .. } => tether_status::TETHER_STALE_FENCE,
        CoreError::NotAdmitted { .. } => tether_status::TETHER_NOT_ADMITTED,
        CoreError::BadSnapshot(_) => tether_status::TETHER_BAD_SNAPSHOT,
    }
}

impl FfiError {
    /// The status for this error.
    pub(crate) fn status(&self) -> tether_status {
        match self {
            Self::Core(e) => core_status(e),
            Self::BadArgument { .. } | Self::BadFence(_) => tether_status::TETHER_INVALID_ARGUMENT,
            Self::Null(_) => tether_status::TETHER_NULL_POINTER,
            Self::NotUtf8 { .. } => tether_status::TETHER_INVALID_UTF8,
            Self::NotManualClock => tether_status::TETHER_NOT_MANUAL_CLOCK,
            Self::Panic(_) => tether_status::TETHER_PANIC,
        }
    }

    /// The structured details a caller needs to act without parsing the message: the nodes
    /// involved and, where they apply, the existing access, the migration's times and the
    /// epochs of a fence refusal.
    pub(crate) fn info(&self) -> tether_error_info {
        let mut info = tether_error_info { status: self.status(), ..tether_error_info::default() };
        let Self::Core(e) = self else { return info };
        let nodes = match &**e {
            CoreError::Conflict { attached_to, .. } => Some(attached_to),
            CoreError::Incompatible { node, existing, .. } => {
                set_node(&mut info, node);
                info.existing_mode = existing.mode.into();
                info.existing_readonly = existing.readonly;
                None
            }
            CoreError::MigrationLimit { nodes, .. } | CoreError::StillAttached { nodes, .. } => Some(nodes),
            CoreError::MigrationTimedOut { nodes, elapsed, timeout, .. } => {
                info.elapsed_ns = crate::types::nanos(*elapsed);
                info.timeout_ns = crate::types::nanos(*timeout);
                Some(nodes)
            }
            CoreError::EpochExhausted { epoch, .. } => {
                info.epoch = *epoch;
                None
            }
            CoreError::StaleFence { epoch, applied, .. } => {
                (info.epoch, info.applied_epoch) = (*epoch, *applied);
                None
            }
            CoreError::NotAdmitted { node, presented, admitted, fence_epoch, .. } => {
                set_node(&mut info, node);
                (info.epoch, info.presented_epoch) = (*fence_epoch, *presented);
                info.admitted_epoch = admitted.unwrap_or(0);
                None
            }
            CoreError::InvalidInput(_) | CoreError::BadSnapshot(_) => None,
        };
        if let Some(nodes) = nodes {
            set_nodes(&mut info, nodes);
        }
        info
    }
}

fn set_node(info: &mut tether_error_info, node: &str) {
    info.nodes[0] = tether_node_name::from_str(node);
    info.node_count = 1;
}

fn set_nodes(info: &mut tether_error_info, nodes: &Nodes) {
    for (slot, name) in info.nodes.iter_mut().zip(nodes.iter()) {
        *slot = tether_node_name::from_str(name);
    }
    info.node_count = nodes.len();
}

impl fmt::Display for FfiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Core(e) => e.fmt(f),
            Self::Null(what) => write!(f, "{what} is a NULL pointer; pass a valid pointer"),
            Self::NotUtf8 { what, at } => write!(f, "{what} is not valid UTF-8 (bad byte at offset {at})"),
            Self::BadArgument { what, problem } => write!(f, "invalid {what}: {problem}"),
            Self::BadFence(e) => write!(f, "invalid fence: {e}"),
            Self::NotManualClock => f.write_str(
                "this engine runs on the system's monotonic clock; only an engine made by \
                 tether_engine_new_manual_clock can be advanced",
            ),
            Self::Panic(msg) => write!(f, "internal error (panic) in the tether library: {msg}; please report it"),
        }
    }
}
