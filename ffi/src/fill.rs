//! In-place writers of the results every publish, unpublish and stale clear returns, and of
//! the fence inside them. They write each field
//! through the caller's pointer into memory zeroed first, instead of building a value of a few
//! hundred bytes (two inline node names) on the stack and copying it out: on the hot path that
//! copy cost more than the rest of the boundary.

use tether_core::{Fence, PublishOutcome, Published, StaleOutcome, UnpublishOutcome};

use crate::fence::tether_fence;
use crate::types::{clipped, nanos, tether_node_name, tether_publish_result, tether_stale_result};
use crate::types::{tether_published as P, tether_stale as S, tether_unpublish_result, tether_unpublished as U};

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

/// Writes a fence.
///
/// # Safety
/// `dst` is valid for writes, aligned, and zero-filled.
pub(crate) unsafe fn fence(dst: *mut tether_fence, f: &Fence) {
    // SAFETY: promised by the caller; plain data assigned by place, and a fence has at most
    // two nodes, so `i` stays inside the array.
    unsafe {
        (*dst).epoch = f.epoch;
        (*dst).mode = f.access.mode.into();
        (*dst).readonly = f.access.readonly;
        (*dst).node_count = f.len();
        for (i, a) in f.nodes().enumerate() {
            node_name(&raw mut (*dst).nodes[i].node, &a.node);
            (*dst).nodes[i].epoch = a.epoch;
        }
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
        (*dst).admitted_epoch = o.admitted;
        if let Some(n) = other {
            node_name(&raw mut (*dst).other_node, n);
        }
        fence(&raw mut (*dst).fence, &o.fence);
    }
}

/// Writes an unpublish outcome.
///
/// # Safety
/// `dst` is valid for writes, aligned, and zero-filled.
pub(crate) unsafe fn unpublish_result(dst: *mut tether_unpublish_result, o: &UnpublishOutcome) {
    let (kind, names, epoch, duration, after) = match o {
        UnpublishOutcome::NotAttached => (U::TETHER_UNPUBLISHED_NOT_ATTACHED, [None, None], 0, 0, None),
        UnpublishOutcome::Detached { nodes, epoch, fence } => {
            (U::TETHER_UNPUBLISHED_DETACHED, [Some(&nodes.primary), nodes.target.as_ref()], *epoch, 0, Some(fence))
        }
        UnpublishOutcome::MigrationCompleted { source, target, duration, epoch, fence } => {
            let names = [Some(source), Some(target)];
            (U::TETHER_UNPUBLISHED_MIGRATION_COMPLETED, names, *epoch, nanos(*duration), Some(fence))
        }
        UnpublishOutcome::MigrationAborted { source, target, epoch, fence } => {
            (U::TETHER_UNPUBLISHED_MIGRATION_ABORTED, [Some(source), Some(target)], *epoch, 0, Some(fence))
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
        if let Some(f) = after {
            fence(&raw mut (*dst).fence, f);
        }
    }
}

/// Writes a compare-and-clear outcome.
///
/// # Safety
/// `dst` is valid for writes, aligned, and zero-filled.
pub(crate) unsafe fn stale_result(dst: *mut tether_stale_result, o: &StaleOutcome) {
    // SAFETY: as in `publish_result`.
    unsafe {
        let StaleOutcome::Cleared { remaining, epoch, fence: f, .. } = o else {
            (*dst).kind = S::TETHER_STALE_NOT_ATTACHED;
            return;
        };
        (*dst).kind = S::TETHER_STALE_CLEARED;
        (*dst).epoch = *epoch;
        if let Some(n) = remaining {
            node_name(&raw mut (*dst).remaining, n);
        }
        fence(&raw mut (*dst).fence, f);
    }
}
