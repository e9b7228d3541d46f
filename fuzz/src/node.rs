//! The driver's Node handlers (NodeStage, NodeUnstage, NodePublish, NodeUnpublish) on arbitrary
//! protobuf requests, with the controller requests of `crate::controller` around them so that
//! volumes and sessions exist, against an in-process driver over a temporary state directory.
//!
//! Nothing outside that directory can be touched: every staging and target path is rewritten to
//! one inside its `mnt` folder (one byte names one of a few fixed paths; any other path keeps only
//! its letters, digits, `_`, `-` and `/`, so no `..` and no absolute path survives), and the
//! driver mounts into a [`RecordedMounts`] table confined to the temporary directory, never the
//! kernel.
//!
//! After every input: the engine's invariants; a refused call changed nothing in the engine's
//! state and left no mount that was not there before; every mount lies inside the folder; a stage or publish the driver accepted was
//! allowed by the volume's fence (the node is admitted at or below the epoch it presented), and
//! left its path mounted; an accepted unstage or unpublish left its path unmounted.
//!
//! An input is the controller target's chunks; ops 0 to 4 are its requests, 5 to 8 the Node
//! requests. A publish context with exactly one key of one byte is replaced by the context of the
//! volume's last publish to the driver's node, so the fuzzer reaches real sessions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use prost::Message;
use tether_driver::controller::EPOCH_KEY;
use tether_driver::csi::{
    NodePublishVolumeRequest, NodeStageVolumeRequest, NodeUnpublishVolumeRequest, NodeUnstageVolumeRequest,
};
use tether_driver::mount::{Mounter, RecordedMounts};

use crate::controller::{self, chunks, NODES};
use crate::invariants::check;

/// The fixed paths a one-byte path names: siblings, a nested one, and one under another's path.
const PATHS: [&str; 6] = ["stage", "target", "stage-2", "target-2", "nested/target", "stage/inside"];
/// The longest path kept from an input (its characters after filtering).
const MAX_PATH: usize = 64;

struct World {
    w: controller::World,
    root: PathBuf,
    mounts: Arc<RecordedMounts>,
}

/// What a Node call claimed to have done, for the checks after it.
enum Claim {
    /// A stage or publish: the session `presented` on `volume` was allowed, `path` is mounted.
    Session { volume: String, presented: Option<u64>, path: PathBuf },
    /// An unstage or unpublish: `path` is no longer mounted.
    Released { path: PathBuf },
}

fn open() -> World {
    let mut w = controller::open();
    let root = w.dir.path().join("mnt");
    std::fs::create_dir(&root).unwrap();
    // Sources are the store's files, in the same temporary directory.
    let mounts = Arc::new(RecordedMounts::new(w.dir.path()).unwrap());
    w.driver.set_mounts(Arc::clone(&mounts) as Arc<dyn Mounter>);
    let root = root.canonicalize().unwrap();
    World { w, root, mounts }
}

impl World {
    /// The request's path, confined to the mount folder (an empty one stays empty: "missing").
    fn path(&self, path: &mut String) {
        if path.is_empty() {
            return;
        }
        let kept: String = match path.as_bytes() {
            [b] => PATHS[usize::from(*b) % PATHS.len()].to_owned(),
            _ => path
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
                .take(MAX_PATH)
                .collect(),
        };
        let kept = kept.trim_start_matches('/');
        *path = self.root.join(if kept.is_empty() { "x" } else { kept }).to_string_lossy().into_owned();
    }

    fn context(&self, volume: &str, context: &mut HashMap<String, String>) {
        if context.len() == 1 && context.keys().all(|k| k.len() == 1) {
            *context = self.w.contexts.get(volume).cloned().unwrap_or_default();
        }
    }

    /// One Node request: whether the driver accepted it, and what that claims; `None` when the
    /// bytes are not that request.
    fn call(&mut self, op: u8, bytes: &[u8]) -> Option<(bool, Option<Claim>)> {
        let d = &self.w.driver;
        let presented = |c: &HashMap<String, String>| c.get(EPOCH_KEY).and_then(|e| e.parse().ok());
        Some(match op {
            5 => {
                let mut req = NodeStageVolumeRequest::decode(bytes).ok()?;
                self.w.volume(&mut req.volume_id);
                self.path(&mut req.staging_target_path);
                self.context(&req.volume_id, &mut req.publish_context);
                let ok = d.node_stage(&req).is_ok();
                let block = req.volume_capability.as_ref().is_some_and(|c| {
                    matches!(c.access_type, Some(tether_driver::csi::volume_capability::AccessType::Block(_)))
                });
                // A block volume is not staged: nothing is mounted for it.
                let path = (!block).then(|| PathBuf::from(&req.staging_target_path));
                let claim = path.map(|path| Claim::Session {
                    volume: req.volume_id.clone(),
                    presented: presented(&req.publish_context),
                    path,
                });
                (ok, claim)
            }
            6 => {
                let mut req = NodeUnstageVolumeRequest::decode(bytes).ok()?;
                self.w.volume(&mut req.volume_id);
                self.path(&mut req.staging_target_path);
                let ok = d.node_unstage(&req.volume_id, &req.staging_target_path).is_ok();
                (ok, Some(Claim::Released { path: req.staging_target_path.into() }))
            }
            7 => {
                let mut req = NodePublishVolumeRequest::decode(bytes).ok()?;
                self.w.volume(&mut req.volume_id);
                self.path(&mut req.staging_target_path);
                self.path(&mut req.target_path);
                self.context(&req.volume_id, &mut req.publish_context);
                let ok = d.node_publish(&req).is_ok();
                let claim = Claim::Session {
                    volume: req.volume_id.clone(),
                    presented: presented(&req.publish_context),
                    path: req.target_path.into(),
                };
                (ok, Some(claim))
            }
            _ => {
                let mut req = NodeUnpublishVolumeRequest::decode(bytes).ok()?;
                self.w.volume(&mut req.volume_id);
                self.path(&mut req.target_path);
                let ok = d.node_unpublish(&req.volume_id, &req.target_path).is_ok();
                (ok, Some(Claim::Released { path: req.target_path.into() }))
            }
        })
    }

    /// The checks of an accepted call's claim.
    fn claim_holds(&self, claim: &Claim) {
        match claim {
            Claim::Session { volume, presented, path } => {
                let presented = presented.expect("a session was accepted without an epoch in its context");
                let fence = self.w.driver.engine.fence(volume).unwrap().expect("a session on an untracked volume");
                assert!(
                    fence.nodes().any(|n| n.node.to_string() == NODES[0] && n.epoch <= presented),
                    "a session of {} at epoch {presented} on {volume} was accepted under {fence}",
                    NODES[0]
                );
                assert!(self.mounts.mounted(path).unwrap().is_some(), "{} is not mounted", path.display());
            }
            Claim::Released { path } => {
                assert!(self.mounts.mounted(path).unwrap().is_none(), "{} is still mounted", path.display());
            }
        }
    }

    /// Every mount's target is in the mount folder, its source in the temporary directory.
    fn mounts_confined(&self, dir: &Path) {
        for m in self.mounts.mounts() {
            assert!(
                m.target.starts_with(&self.root) && m.source.starts_with(dir),
                "a mount outside its folders: {m:?}"
            );
        }
    }
}

pub fn run(data: &[u8]) {
    sessions(data);
}

/// Runs an input and counts the stages and publishes the driver accepted.
pub fn sessions(data: &[u8]) -> usize {
    let mut accepted_sessions = 0;
    let mut w = open();
    let dir = w.w.dir.path().canonicalize().unwrap();
    for (op, bytes) in chunks(data) {
        let op = op % 9;
        let (before, mounted) = (w.w.driver.engine.snapshot(), w.mounts.mounts());
        let accepted = if op < 5 { w.w.call(op, bytes).map(|ok| (ok, None)) } else { w.call(op, bytes) };
        match accepted {
            Some((false, _)) => {
                assert_eq!(w.w.driver.engine.snapshot(), before, "a refused call (op {op}) changed the engine's state");
                // An unpublish may have unmounted before it failed (a retry finishes it); no
                // refused call may leave a mount that was not there.
                let after = w.mounts.mounts();
                let kept = after.len() <= mounted.len() && after.iter().all(|m| mounted.contains(m));
                assert!(kept, "a refused call (op {op}) left a new mount: {after:?}, before {mounted:?}");
            }
            Some((true, Some(claim))) => {
                accepted_sessions += usize::from(matches!(claim, Claim::Session { .. }));
                w.claim_holds(&claim);
            }
            _ => {}
        }
        w.mounts_confined(&dir);
        check(&w.w.driver.engine);
    }
    accepted_sessions
}

/// A first input for the fuzzer: a filesystem volume (RWO) and a block volume (RWX), each
/// published to the driver's node, staged, published, unpublished and unstaged.
pub fn seed() -> Vec<u8> {
    use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, BlockVolume, MountVolume};
    use tether_driver::csi::{ControllerPublishVolumeRequest, CreateVolumeRequest, VolumeCapability};
    let mut out = Vec::new();
    let mut chunk = |op: u8, bytes: Vec<u8>| {
        out.push(op);
        out.extend_from_slice(&u16::try_from(bytes.len()).unwrap().to_le_bytes());
        out.extend(bytes);
    };
    let context = HashMap::from([("k".to_owned(), String::new())]);
    let kinds = [
        (AccessType::Mount(MountVolume::default()), Mode::SingleNodeWriter),
        (AccessType::Block(BlockVolume {}), Mode::MultiNodeMultiWriter),
    ];
    for (i, (kind, mode)) in kinds.into_iter().enumerate() {
        let cap = VolumeCapability { access_type: Some(kind), access_mode: Some(AccessMode { mode: mode as i32 }) };
        let volume = String::from_utf8(vec![u8::try_from(i).unwrap()]).unwrap();
        let (stage, target) = ("\u{0}".to_owned(), "\u{1}".to_owned());
        let create = CreateVolumeRequest {
            name: format!("seed-{i}"),
            volume_capabilities: vec![cap.clone()],
            ..Default::default()
        };
        chunk(0, create.encode_to_vec());
        let publish = ControllerPublishVolumeRequest {
            volume_id: volume.clone(),
            node_id: "\u{0}".into(),
            volume_capability: Some(cap.clone()),
            ..Default::default()
        };
        chunk(2, publish.encode_to_vec());
        let staged = NodeStageVolumeRequest {
            volume_id: volume.clone(),
            publish_context: context.clone(),
            staging_target_path: stage.clone(),
            volume_capability: Some(cap.clone()),
            ..Default::default()
        };
        chunk(5, staged.encode_to_vec());
        // The publish names what the stage named, and its target.
        let NodeStageVolumeRequest { volume_id, publish_context, staging_target_path, volume_capability, .. } = staged;
        let (target_path, rest) = (target.clone(), NodePublishVolumeRequest::default());
        let published = NodePublishVolumeRequest {
            volume_id,
            publish_context,
            staging_target_path,
            target_path,
            volume_capability,
            ..rest
        };
        chunk(7, published.encode_to_vec());
        chunk(8, NodeUnpublishVolumeRequest { volume_id: volume.clone(), target_path: target }.encode_to_vec());
        chunk(6, NodeUnstageVolumeRequest { volume_id: volume, staging_target_path: stage }.encode_to_vec());
    }
    out
}
