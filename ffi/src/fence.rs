//! The fence as a C value (`tether_fence`), read back from caller memory, and the storage
//! target's two rules on it: apply only a newer fence; admit a session only with an admission.

use std::sync::Arc;

use tether_core::{check_node_id, check_volume_id, Admission, CoreError, Fence};

use crate::attach::access;
use crate::boundary::{guard, text, Id};
use crate::status::{tether_status, FfiError};
use crate::types::{tether_access_mode, tether_node_name, TETHER_MAX_ID_LEN};

/// One node a fence admits, and its admission epoch (the epoch of the change that admitted it).
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct tether_admission {
    pub node: tether_node_name,
    pub epoch: u64,
}

/// A volume's fence: what a storage target must allow now. `nodes[0..node_count]` are the
/// admitted nodes, primary first (0 after a detach, 2 during a migration). A target applies a
/// fence only if its `epoch` is higher than the last one it applied
/// (`tether_fence_check_supersedes`), and admits a node's I/O session only if the node is in
/// the latest fence with an admission epoch at most the one it presents
/// (`tether_fence_check_session`).
///
/// Plain data, no pointers: copy it, store it, pass it back in. A fence passed in must have the
/// shape the library hands out: at most two distinct valid node names, each admitted from
/// epoch 1 up to `epoch`, and `mode` a `tether_access_mode`.
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[repr(C)]
pub struct tether_fence {
    pub epoch: u64,
    pub mode: tether_access_mode,
    pub readonly: bool,
    pub nodes: [tether_admission; 2],
    pub node_count: usize,
}

/// Reads a caller's fence into the engine's, checking every field. Fields are read one by one
/// through the pointer, as raw integers: caller memory may hold any bit pattern, and reading a
/// `bool` or an enum that is not one would be undefined behaviour.
///
/// # Safety
/// Unless NULL, `p` points to a readable `tether_fence`.
pub(crate) unsafe fn read(p: *const tether_fence, what: &'static str) -> Result<Fence, FfiError> {
    if p.is_null() {
        return Err(FfiError::Null(what));
    }
    // SAFETY: non-NULL and readable as promised; each read is of a plain integer at the
    // field's own (aligned) place, so any bit pattern is a value.
    let (epoch, mode, readonly, count) = unsafe {
        (
            (&raw const (*p).epoch).read(),
            (&raw const (*p).mode).cast::<u32>().read(),
            (&raw const (*p).readonly).cast::<u8>().read() != 0,
            (&raw const (*p).node_count).read(),
        )
    };
    if count > 2 {
        let problem = format!("node_count is {count}; a fence admits at most 2 nodes").into();
        return Err(FfiError::BadArgument { what, problem });
    }
    let mut nodes = Vec::with_capacity(count);
    for i in 0..count {
        // SAFETY: as above; `i` < 2.
        let slot = unsafe { &raw const (*p).nodes[i] };
        // SAFETY: as above.
        nodes.push(unsafe { admission(slot) }?);
    }
    Fence::new(epoch, access(mode, readonly)?, nodes).map_err(FfiError::BadFence)
}

/// Reads one admission of a caller's fence, its name checked like any node id.
///
/// # Safety
/// `p` points to a readable `tether_admission`.
unsafe fn admission(p: *const tether_admission) -> Result<Admission, FfiError> {
    // SAFETY: promised by the caller; plain integers and bytes.
    let (len, epoch, bytes) = unsafe {
        ((&raw const (*p).node.len).read(), (&raw const (*p).epoch).read(), (&raw const (*p).node.bytes).cast::<u8>())
    };
    if len > TETHER_MAX_ID_LEN {
        let problem = format!("a node name's len is {len}; the limit is {TETHER_MAX_ID_LEN} bytes").into();
        return Err(FfiError::BadArgument { what: "fence", problem });
    }
    // SAFETY: `bytes` holds TETHER_NODE_NAME_CAP > `len` readable bytes.
    let name = unsafe { text(bytes, len, "fence node name") }?;
    check_node_id(name).map_err(CoreError::from)?;
    Ok(Admission { node: Arc::from(name), epoch })
}

/// Whether a storage target that last applied `applied_epoch` (or nothing, when `has_applied`
/// is false) may apply `fence`: `TETHER_OK` if the fence's epoch is higher, otherwise
/// `TETHER_STALE_FENCE` (details: `epoch`, `applied_epoch`), so a delayed, replayed or
/// stale-leader update never reopens access. `volume` is `volume_len` bytes of UTF-8 and only
/// names the volume in the message. A malformed fence is `TETHER_INVALID_ARGUMENT`.
///
/// Needs no engine; reads its inputs only during the call. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_fence_check_supersedes(
    fence: *const tether_fence,
    volume: *const u8,
    volume_len: usize,
    has_applied: bool,
    applied_epoch: u64,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a readable fence (or NULL) and `volume_len` bytes.
        let (fence, volume) = unsafe { (read(fence, "fence")?, volume_id(Id::Bytes(volume, volume_len))?) };
        Ok(fence.check_supersedes(volume, has_applied.then_some(applied_epoch))?)
    })
}

/// Whether `node`, presenting `presented_epoch` (the admission epoch it was given at
/// publish), may use `volume` under `fence`, the latest fence the target applied: `TETHER_OK`
/// if the fence admits the node at an epoch no higher than the one presented, otherwise
/// `TETHER_NOT_ADMITTED` (details: the node, `epoch`, `presented_epoch`, `admitted_epoch`).
/// Identifiers as for `tether_engine_publish`. A malformed fence is `TETHER_INVALID_ARGUMENT`.
///
/// Needs no engine; reads its inputs only during the call. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn tether_fence_check_session(
    fence: *const tether_fence,
    volume: *const u8,
    volume_len: usize,
    node: *const u8,
    node_len: usize,
    presented_epoch: u64,
) -> tether_status {
    guard(|| {
        // SAFETY: the caller promises a readable fence (or NULL) and readable identifiers.
        let (fence, volume, node) = unsafe {
            (read(fence, "fence")?, volume_id(Id::Bytes(volume, volume_len))?, node_id(Id::Bytes(node, node_len))?)
        };
        Ok(fence.check_session(volume, node, presented_epoch)?)
    })
}

/// A volume id read and checked as the engine checks one.
///
/// # Safety
/// As for [`Id::read`].
unsafe fn volume_id<'a>(id: Id) -> Result<&'a str, FfiError> {
    // SAFETY: forwarded from the caller.
    let v = unsafe { id.read("volume id") }?;
    check_volume_id(v).map_err(CoreError::from)?;
    Ok(v)
}

/// A node id read and checked as the engine checks one.
///
/// # Safety
/// As for [`Id::read`].
unsafe fn node_id<'a>(id: Id) -> Result<&'a str, FfiError> {
    // SAFETY: forwarded from the caller.
    let n = unsafe { id.read("node id") }?;
    check_node_id(n).map_err(CoreError::from)?;
    Ok(n)
}
