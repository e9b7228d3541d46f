//! Events about attachments: which outcome posts which event, and the sink they go to.
//! Standalone, the sink is the log; a Kubernetes layer implements [`EventSink`] to post them
//! on the PVC through a bounded queue, never blocking a CSI call.

use std::time::Duration;

use crate::adopt::Refused;
use crate::volume::Claim;
use tether_core::{CoreError, PublishOutcome, Published, ReconcileReport, Shown, UnpublishOutcome};

/// The event reasons of DESIGN.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    AttachmentConflict,
    VolumeAttached,
    VolumeDetached,
    StaleAttachmentCleared,
    MigrationStarted,
    MigrationCompleted,
    MigrationFailed,
}

impl Reason {
    pub const ALL: [Self; 7] = [
        Self::AttachmentConflict,
        Self::VolumeAttached,
        Self::VolumeDetached,
        Self::StaleAttachmentCleared,
        Self::MigrationStarted,
        Self::MigrationCompleted,
        Self::MigrationFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::AttachmentConflict => "AttachmentConflict",
            Self::VolumeAttached => "VolumeAttached",
            Self::VolumeDetached => "VolumeDetached",
            Self::StaleAttachmentCleared => "StaleAttachmentCleared",
            Self::MigrationStarted => "MigrationStarted",
            Self::MigrationCompleted => "MigrationCompleted",
            Self::MigrationFailed => "MigrationFailed",
        }
    }

    /// Warnings are what an operator must look at.
    pub fn is_warning(self) -> bool {
        matches!(self, Self::AttachmentConflict | Self::MigrationFailed)
    }
}

/// One event about one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub reason: Reason,
    pub volume: String,
    pub message: String,
    /// The PVC to post it on; the driver fills it in from the volume's parameters.
    pub claim: Option<Claim>,
}

/// Where events go. `post` must not block; it returns whether the event was accepted
/// (a bounded queue may drop it).
pub trait EventSink: Send + Sync + 'static {
    fn post(&self, event: Event) -> bool;
}

/// The standalone sink: every event becomes a log line.
#[derive(Debug, Default)]
pub struct LogSink;

impl EventSink for LogSink {
    fn post(&self, event: Event) -> bool {
        let message = Shown::within(&event.message, crate::status::MAX_MESSAGE_LEN);
        if event.reason.is_warning() {
            tracing::warn!(reason = event.reason.as_str(), volume = %Shown::id(&event.volume), "{}", message);
        } else {
            tracing::info!(reason = event.reason.as_str(), volume = %Shown::id(&event.volume), "{}", message);
        }
        true
    }
}

fn event(reason: Reason, volume: &str, message: String) -> Event {
    Event { reason, volume: volume.to_owned(), message, claim: None }
}

/// The event a publish result posts, if any; `took` is how long the call took to decide and
/// make the outcome durable.
pub fn for_publish(
    volume: &str,
    node: &str,
    result: &Result<PublishOutcome, CoreError>,
    took: Duration,
) -> Option<Event> {
    match result {
        Ok(out) => match &out.kind {
            Published::Attached => Some(event(
                Reason::VolumeAttached,
                volume,
                format!("attached to node {node:?} at epoch {} in {took:.1?}", out.epoch),
            )),
            Published::HandedOff { from } => Some(event(
                Reason::VolumeAttached,
                volume,
                format!(
                    "attached to node {node:?} at epoch {} in {took:.1?}, taken over from {from:?} within the grace period",
                    out.epoch
                ),
            )),
            Published::MigrationStarted { source, timeout } => Some(event(
                Reason::MigrationStarted,
                volume,
                format!("migration from {source:?} to {node:?} started at epoch {}, timeout {timeout:?}", out.epoch),
            )),
            Published::AlreadyAttached => None,
        },
        Err(
            e @ (CoreError::Conflict { .. } | CoreError::MigrationLimit { .. } | CoreError::MigrationTimedOut { .. }),
        ) => Some(event(Reason::AttachmentConflict, volume, e.to_string())),
        Err(_) => None,
    }
}

/// The event an unpublish result posts, if any.
pub fn for_unpublish(volume: &str, result: &Result<UnpublishOutcome, CoreError>) -> Option<Event> {
    match result.as_ref().ok()? {
        UnpublishOutcome::NotAttached => None,
        UnpublishOutcome::Detached { nodes, epoch, .. } => {
            Some(event(Reason::VolumeDetached, volume, format!("detached from {nodes} at epoch {epoch}")))
        }
        UnpublishOutcome::MigrationCompleted { source, target, duration, epoch, .. } => Some(event(
            Reason::MigrationCompleted,
            volume,
            format!("migration from {source:?} to {target:?} completed after {duration:?} at epoch {epoch}"),
        )),
        UnpublishOutcome::MigrationAborted { source, target, epoch, .. } => Some(event(
            Reason::MigrationFailed,
            volume,
            format!("migration from {source:?} to {target:?} aborted: the target left; {source:?} keeps the volume (epoch {epoch})"),
        )),
    }
}

fn stale_cleared(volume: &str, node: &str, epoch: u64, why: &str) -> Event {
    event(Reason::StaleAttachmentCleared, volume, format!("cleared from node {node:?}, {why} (epoch {epoch})"))
}

/// The event of an attachment cleared at publish time because its node no longer exists.
pub fn holder_gone(volume: &str, node: &str, epoch: u64) -> Event {
    stale_cleared(volume, node, epoch, "which no longer exists, to let a new attachment in")
}

/// The event of a holder cleared because its attachment record is gone (an orphan).
pub fn orphan(volume: &str, node: &str, epoch: u64) -> Event {
    stale_cleared(volume, node, epoch, "whose VolumeAttachment no longer exists (a late publish after its unpublish)")
}

/// The conflict event of an attachment Kubernetes shows that the rebuild could not adopt.
pub fn for_refused(r: &Refused) -> Event {
    event(
        Reason::AttachmentConflict,
        &r.volume,
        format!(
            "Kubernetes shows volume {:?} attached to node {:?}, which cannot be kept ({}); it stays on {:?}. \
             Detach it from {:?} (delete that VolumeAttachment) to resolve this.",
            r.volume, r.node, r.why, r.kept, r.node
        ),
    )
}

/// The events a reconcile pass posts.
pub fn for_reconcile(report: &ReconcileReport) -> Vec<Event> {
    let cleared = report
        .cleared
        .iter()
        .map(|c| stale_cleared(&c.volume, &c.node, c.epoch, "missing for at least the grace period"));
    let timed_out = report.timed_out_migrations.iter().map(|m| {
        event(
            Reason::MigrationFailed,
            &m.volume,
            format!(
                "migration from {:?} to {:?} has run {:?}, past its timeout of {:?}; unpublish one side to end it",
                m.source, m.target, m.elapsed, m.timeout
            ),
        )
    });
    cleared.chain(timed_out).collect()
}
