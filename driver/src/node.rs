//! Node operations: stage, publish and their inverses as real bind mounts, all idempotent,
//! and the node's I/O-session check: stage and publish are accepted only while the volume's
//! latest applied fence admits this node at or below the epoch its publish context presents.

use std::collections::HashMap;
use std::fs;
use std::path::Path;

use tether_core::{check_volume_id, Fence};

use crate::capability;
use crate::controller::EPOCH_KEY;
use crate::csi::{NodePublishVolumeRequest, NodeStageVolumeRequest, VolumeCapability};
use crate::driver::Driver;
use crate::status::DriverError;
use crate::store::io_error;
use crate::volume::VolumeKind;

fn invalid(msg: impl Into<String>) -> DriverError {
    DriverError::Invalid(msg.into())
}

fn io(op: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> DriverError + use<> {
    let named = io_error(op, path);
    move |source| DriverError::Store(named(source))
}

fn required<'a>(value: &'a str, what: &str) -> Result<&'a Path, DriverError> {
    if value.is_empty() {
        return Err(invalid(format!("{what} is missing")));
    }
    Ok(Path::new(value))
}

fn capability_of(cap: Option<&VolumeCapability>) -> Result<capability::Capability, DriverError> {
    capability::parse(cap.ok_or_else(|| invalid("volume capability is missing"))?)
}

/// Makes the mount target: a directory for a filesystem volume, a file for a block volume.
fn make_target(target: &Path, kind: VolumeKind) -> Result<(), DriverError> {
    match kind {
        VolumeKind::Filesystem => fs::create_dir_all(target).map_err(io("create directory", target)),
        VolumeKind::Block => {
            if let Some(parent) = target.parent() {
                fs::create_dir_all(parent).map_err(io("create directory", parent))?;
            }
            fs::OpenOptions::new().create(true).append(true).open(target).map(drop).map_err(io("create", target))
        }
    }
}

/// The volume a node call names, and where its last applied fence comes from.
struct NodeVolume {
    meta: std::sync::Arc<crate::volume::VolumeMeta>,
    fence: NodeFence,
}

/// A node call's fence: read with the volume in one request (the cluster store), or asked of
/// the store at the check (the embedded store, whose catalogue gave the volume).
enum NodeFence {
    Read(Option<Fence>),
    AtCheck,
}

/// The epoch a publish context presents, refused by name when missing or not a number.
fn presented_epoch(context: &HashMap<String, String>) -> Result<u64, DriverError> {
    let raw = context.get(EPOCH_KEY).ok_or_else(|| {
        invalid(format!("publish_context lacks {EPOCH_KEY}; publish the volume with ControllerPublishVolume first"))
    })?;
    raw.parse().map_err(|_| invalid(format!("publish_context {EPOCH_KEY} is {raw:?}, not a number")))
}

impl Driver {
    /// The session check (DESIGN.md, "Epochs, admissions and fences"): the epoch the publish
    /// context presents against the last fence the store applied; the rule itself is
    /// `Fence::check_session`'s.
    pub(crate) fn fence(&self, volume: &str, context: &HashMap<String, String>) -> Result<(), DriverError> {
        self.admit(volume, context, || self.store.applied_fence(volume))
    }

    /// [`Driver::fence`] against the fence `read` returns, read only once the context is valid.
    fn admit(
        &self,
        volume: &str,
        context: &HashMap<String, String>,
        read: impl FnOnce() -> Result<Option<Fence>, crate::store::StoreError>,
    ) -> Result<(), DriverError> {
        let presented = presented_epoch(context)?;
        let fence = read()?.unwrap_or_else(|| Fence::empty(0, tether_core::Access::RWO));
        Ok(fence.check_session(volume, &self.settings.node_id, presented)?)
    }

    /// The session check of a node call on `volume`, with the fence read together with it if
    /// it was.
    fn admit_node(&self, volume: &NodeVolume, context: &HashMap<String, String>) -> Result<(), DriverError> {
        match &volume.fence {
            NodeFence::Read(fence) => self.admit(&volume.meta.id, context, || Ok(fence.clone())),
            NodeFence::AtCheck => self.fence(&volume.meta.id, context),
        }
    }

    /// The volume a node call names: read from the store at the time of the call where the
    /// store is shared with a controller elsewhere (the cluster store: one read for the record
    /// and its fence), else the catalogue's.
    fn node_volume(&self, id: &str) -> Result<NodeVolume, DriverError> {
        match self.store.read_volume(id) {
            None => Ok(NodeVolume { meta: self.volume(id)?, fence: NodeFence::AtCheck }),
            Some(read) => {
                let (meta, fence) = read?.ok_or_else(|| DriverError::VolumeNotFound(id.to_owned()))?;
                Ok(NodeVolume { meta: std::sync::Arc::new(meta), fence: NodeFence::Read(fence) })
            }
        }
    }

    /// `NodeStageVolume`: a filesystem volume is bind-mounted at the staging path; a block
    /// volume needs no staging (its file is bound at publish).
    pub fn node_stage(&self, req: &NodeStageVolumeRequest) -> Result<(), DriverError> {
        check_volume_id(&req.volume_id)?;
        let staging = required(&req.staging_target_path, "staging target path")?;
        let cap = capability_of(req.volume_capability.as_ref())?;
        let volume = self.node_volume(&req.volume_id)?;
        let meta = &volume.meta;
        capability::check_fits(cap, &meta.id, meta.kind)?;
        let _guard = self.inflight.begin(&req.volume_id)?;
        self.admit_node(&volume, &req.publish_context)?;
        if meta.kind == VolumeKind::Block
            || self.mounts.mounted(staging).map_err(io("read mounts for", staging))?.is_some()
        {
            return Ok(());
        }
        make_target(staging, VolumeKind::Filesystem)?;
        let source = self.store.source(&meta.id);
        self.mounts.bind(&source, staging, false).map_err(io("bind-mount onto", staging))
    }

    /// `NodeUnstageVolume`: unmounts the staging path if it is mounted.
    pub fn node_unstage(&self, volume: &str, staging_path: &str) -> Result<(), DriverError> {
        check_volume_id(volume)?;
        let staging = required(staging_path, "staging target path")?;
        let _guard = self.inflight.begin(volume)?;
        if self.mounts.mounted(staging).map_err(io("read mounts for", staging))?.is_some() {
            self.mounts.unbind(staging).map_err(io("unmount", staging))?;
        }
        Ok(())
    }

    /// `NodePublishVolume`: binds the staged directory (filesystem) or the volume's file, as a
    /// loop device (block), onto the target path, read-only when asked.
    pub fn node_publish(&self, req: &NodePublishVolumeRequest) -> Result<(), DriverError> {
        check_volume_id(&req.volume_id)?;
        let target = required(&req.target_path, "target path")?;
        let staging = required(&req.staging_target_path, "staging target path")?;
        let cap = capability_of(req.volume_capability.as_ref())?;
        let volume = self.node_volume(&req.volume_id)?;
        let meta = &volume.meta;
        capability::check_fits(cap, &meta.id, meta.kind)?;
        let readonly = req.readonly || cap.access.readonly;
        let _guard = self.inflight.begin(&req.volume_id)?;
        self.admit_node(&volume, &req.publish_context)?;
        if let Some(ro) = self.mounts.mounted(target).map_err(io("read mounts for", target))? {
            if ro == readonly {
                return Ok(());
            }
            return Err(DriverError::Precondition(format!(
                "target path {} is already mounted {}; unpublish it first",
                target.display(),
                if ro { "read-only" } else { "read-write" }
            )));
        }
        let source = match meta.kind {
            VolumeKind::Filesystem => {
                if self.mounts.mounted(staging).map_err(io("read mounts for", staging))?.is_none() {
                    return Err(DriverError::Precondition(format!(
                        "volume {:?} is not staged at {}; call NodeStageVolume first",
                        meta.id,
                        staging.display()
                    )));
                }
                staging.to_path_buf()
            }
            VolumeKind::Block => self.store.source(&meta.id),
        };
        make_target(target, meta.kind)?;
        match meta.kind {
            VolumeKind::Filesystem => self.mounts.bind(&source, target, readonly),
            VolumeKind::Block => self.mounts.bind_block(&source, target, readonly),
        }
        .map_err(io("bind-mount onto", target))
    }

    /// `NodeUnpublishVolume`: unmounts the target path and removes it.
    pub fn node_unpublish(&self, volume: &str, target_path: &str) -> Result<(), DriverError> {
        check_volume_id(volume)?;
        let target = required(target_path, "target path")?;
        // No catalogue check: a deleted volume's leftover mount must still be removable.
        let _guard = self.inflight.begin(volume)?;
        while self.mounts.mounted(target).map_err(io("read mounts for", target))?.is_some() {
            self.mounts.unbind(target).map_err(io("unmount", target))?;
        }
        let removed = if target.is_dir() { fs::remove_dir(target) } else { fs::remove_file(target) };
        match removed {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("remove", target)(e)),
            _ => Ok(()),
        }
    }
}
