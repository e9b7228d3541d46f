//! `tether-core`: the attachment engine every Tether front end calls.
//!
//! It decides, per volume and without a global lock, whether a volume may attach to a node:
//! it refuses a second writer of an RWO volume, lets an RWX block volume sit on two nodes for
//! a bounded live migration, forgives a late re-attach inside the grace period, and clears the
//! attachments of nodes that are gone. `../shared/DESIGN.md` is the contract; the tables there
//! are implemented in [`rules`](crate::Engine::publish) and nowhere else.
//!
//! The crate does no I/O, spawns no thread and has no async code. Time comes from an injected
//! [`Clock`]; tests use [`ManualClock`].
//!
//! ```
//! use tether_core::{Access, CoreError, Engine, Published};
//!
//! let engine = Engine::new();
//! let out = engine.publish("pvc-1", "node-a", Access::RWO, None)?;
//! assert_eq!(out.kind, Published::Attached);
//! let refused = engine.publish("pvc-1", "node-b", Access::RWO, None).unwrap_err();
//! assert!(matches!(refused, CoreError::Conflict { .. }));
//! # Ok::<(), CoreError>(())
//! ```
#![forbid(unsafe_code)]

pub mod adopt;
mod clock;
mod config;
mod engine;
mod error;
mod evidence;
mod fence;
mod ids;
#[cfg(feature = "model")]
pub mod model;
mod nodes;
mod outcome;
mod queries;
mod reconcile;
mod record;
mod rules;
mod snapshot;
mod stats;
mod sync;

#[cfg(all(test, loom))]
mod loom_tests;

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;

pub use clock::{
    duration_to_nanos, nanos_to_duration, Clock, CoarseClock, ManualClock, MonotonicClock, Nanos, NEVER, ORIGIN,
};
pub use config::{
    check_grace_period, clamp_migration_timeout, Config, DEFAULT_GRACE_PERIOD, DEFAULT_MIGRATION_TIMEOUT,
    DEFAULT_RECONCILE_INTERVAL, MAX_GRACE_PERIOD, MAX_MIGRATION_TIMEOUT, MIN_MIGRATION_TIMEOUT,
};
pub use engine::Engine;
pub use error::{CoreError, Inconsistency, InputField, InvalidFence, InvalidInput, Problem, SnapshotError};
pub use evidence::{ClearedHolder, Evidence, EvidencedPublish};
pub use fence::{Admission, Fence, VolumeFence, MAX_TERM};
pub use ids::{check_node_id, check_volume_id, Shown, MAX_ID_LEN};
pub use outcome::{
    Access, AccessMode, Attachment, ClearedAttachment, DetachRecord, MigrationStatus, NodeName, Nodes, PendingNode,
    PublishOutcome, Published, ReconcileReport, StaleOutcome, TimedOutMigration, UnpublishOutcome,
};
pub use snapshot::{
    unix_nanos, AttachmentEntry, DetachEntry, MissingNodeEntry, Snapshot, VolumeEntry, SNAPSHOT_VERSION,
};
pub use stats::Stats;
