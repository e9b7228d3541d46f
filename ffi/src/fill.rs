//! In-place writers of the results every publish and unpublish returns. They write each field
//! through the caller's pointer into memory zeroed first, instead of building a value of a few
//! hundred bytes (two inline node names) on the stack and copying it out: on the hot path that
//! copy cost more than the rest of the boundary.

use tether_core::{PublishOutcome, Published, UnpublishOutcome};

use crate::types::{clipped, nanos, tether_node_name, tether_publish_result, tether_unpublish_result};
use crate::types::{tether_published as P, tether_unpublished as U};

/// Writes `name` into a zeroed node-name slot.
///
/// # Safety
/// `dst` is valid for writes, aligned, and zero-filled.
unsafe fn node_name(dst: *mut tether_node_name, name: &str) {
    let name = clipped(name);
    // SAFETY: promised by the caller; `name` fits the array with room for the NUL (a zero
    // already there), and cannot overlap the caller's memory.
    unsafe {
        (*dst).len = name.len();
        std::ptr::copy_nonoverlapping(name.as_ptr(), (&raw mut (*dst).bytes).cast::<u8>(), name.len());
    }
}

/// Writes a publish outcome.
///
/// # Safety
/// `dst` is valid for writes, aligned, and zero-filled.
pub(crate) unsafe fn publish_result(dst: *mut tether_publish_result, o: &PublishOutcome) {
    let (kind, other, timeout) = match &o.kind {
        Published::Attached => (P::TETHER_PUBLISHED_ATTACHED, None, 0),
        Published::AlreadyAttached => (P::TETHER_PUBLISHED_ALREADY_ATTACHED, None, 0),
        Published::HandedOff { from } => (P::TETHER_PUBLISHED_HANDED_OFF, Some(from), 0),
        Published::MigrationStarted { source, timeout } => {
            (P::TETHER_PUBLISHED_MIGRATION_STARTED, Some(source), nanos(*timeout))
        }
    };
    // SAFETY: promised by the caller. Each field is plain data without drop glue, assigned by
    // place (the zero left in `kind` before this is never read).
    unsafe {
        (*dst).kind = kind;
        (*dst).epoch = o.epoch;
        (*dst).migration_timeout_ns = timeout;
        if let Some(n) = other {
            node_name(&raw mut (*dst).other_node, n);
        }
    }
}

/// Writes an unpublish outcome.
///
/// # Safety
/// `dst` is valid for writes, aligned, and zero-filled.
pub(crate) unsafe fn unpublish_result(dst: *mut tether_unpublish_result, o: &UnpublishOutcome) {
    let (kind, names, epoch, duration) = match o {
        UnpublishOutcome::NotAttached => (U::TETHER_UNPUBLISHED_NOT_ATTACHED, [None, None], 0, 0),
        UnpublishOutcome::Detached { nodes, epoch } => {
            (U::TETHER_UNPUBLISHED_DETACHED, [Some(&nodes.primary), nodes.target.as_ref()], *epoch, 0)
        }
        UnpublishOutcome::MigrationCompleted { source, target, duration, epoch } => {
            (U::TETHER_UNPUBLISHED_MIGRATION_COMPLETED, [Some(source), Some(target)], *epoch, nanos(*duration))
        }
        UnpublishOutcome::MigrationAborted { source, target, epoch } => {
            (U::TETHER_UNPUBLISHED_MIGRATION_ABORTED, [Some(source), Some(target)], *epoch, 0)
        }
    };
    // SAFETY: as in `publish_result`.
    unsafe {
        (*dst).kind = kind;
        (*dst).epoch = epoch;
        (*dst).duration_ns = duration;
        (*dst).node_count = names.iter().flatten().count();
        for (i, name) in names.iter().enumerate() {
            if let Some(name) = name {
                node_name(&raw mut (*dst).nodes[i], name);
            }
        }
    }
}
