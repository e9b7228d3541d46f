//! Evidence from outside the engine about a volume's holders ("evidence beats timers",
//! DESIGN.md's Driver section), and what a publish decided with it did to them.

use crate::error::CoreError;
use crate::outcome::{NodeName, PublishOutcome};

/// What the world outside the engine (with Kubernetes, the `VolumeAttachments`) shows of a
/// node that holds a volume in the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Evidence {
    /// The orchestrator still wants the node attached (a `VolumeAttachment` exists, attached
    /// or still being attached): the grace-period handoff never takes the volume from it.
    Holds,
    /// The node is known released (its `VolumeAttachment` is gone, or the node itself is): an
    /// orphan, cleared by compare-and-clear when it is all that refuses a publish (`Conflict`).
    Released,
    /// No evidence either way: the timers decide (the grace rule).
    Unknown,
}

/// A holder cleared as an orphan ([`Evidence::Released`]) inside a publish: counted as a
/// stale clear, its epoch raised, no detach record written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClearedHolder {
    pub node: NodeName,
    /// The volume's epoch after this clear.
    pub epoch: u64,
}

/// What [`crate::Engine::publish_with`] decided: the publish's outcome, and the orphans it
/// cleared first. A clear stands even when the publish is still refused (another holder
/// refuses it), so a caller persists a change whenever `cleared` is not empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidencedPublish {
    pub outcome: Result<PublishOutcome, CoreError>,
    /// In the order cleared; empty unless the publish met a `Conflict` with a released holder.
    pub cleared: Vec<ClearedHolder>,
}
