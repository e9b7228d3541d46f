//! The driver's controller handlers on arbitrary protobuf requests, against an in-process
//! driver over a temporary state directory: every refused call leaves the engine's state as
//! it was, and every state keeps the invariants.
//!
//! An input is a sequence of `[op][len: u16 le][protobuf bytes]` chunks. A volume id of one
//! byte names the n-th volume created so far and a node id of one byte one of the three
//! nodes, so the fuzzer reaches real volumes and nodes; any other id goes through as it is.
//! The node handlers are `node_requests`' (crate::node), which builds on this world.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use prost::Message;
use tether_core::ManualClock;
use tether_driver::csi::{
    ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest, DeleteVolumeRequest,
};
use tether_driver::events::LogSink;
use tether_driver::nodes::StaticNodes;
use tether_driver::store::EmbeddedStore;
use tether_driver::{Driver, Parts, Settings};

use crate::invariants::check;

/// The driver's own node (`Settings::node_id`) comes first.
pub(crate) const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

pub(crate) struct World {
    pub(crate) dir: tempfile::TempDir,
    clock: Arc<ManualClock>,
    pub(crate) driver: Driver,
    volumes: Vec<String>,
    /// The publish context of each volume's last successful publish to the driver's own node.
    pub(crate) contexts: HashMap<String, HashMap<String, String>>,
}

/// A scratch directory in memory where the machine has one (/dev/shm, a tmpfs): the store's
/// fsyncs then cost nothing, so the fuzzer gets through many more inputs a second.
fn scratch() -> tempfile::TempDir {
    tempfile::tempdir_in("/dev/shm").or_else(|_| tempfile::tempdir()).unwrap()
}

pub(crate) fn open() -> World {
    let dir = scratch();
    let clock = Arc::new(ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000)));
    let settings = Settings {
        driver_name: "tether.csi.fuzz".into(),
        node_id: NODES[0].into(),
        grace_period: Duration::from_secs(30),
        default_migration_timeout: Duration::from_secs(300),
        metrics_namespace: "rds_csi".into(),
        lease_term: 0,
    };
    let parts = Parts {
        clock: clock.clone(),
        store: Arc::new(EmbeddedStore::open(&dir.path().join("state"), 1 << 40).unwrap()),
        nodes: Arc::new(StaticNodes::new(NODES.iter().map(ToString::to_string))),
        events: Arc::new(LogSink),
        changes: None,
        awaits_rebuild: false,
    };
    let driver = Driver::open(settings, parts).unwrap();
    World { dir, clock, driver, volumes: Vec::new(), contexts: HashMap::new() }
}

/// An input's `[op][len: u16 le][protobuf bytes]` chunks (a short last chunk is cut to what is left).
pub(crate) fn chunks(mut data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || {
        let [op, l0, l1, rest @ ..] = data else { return None };
        let len = usize::from(u16::from_le_bytes([*l0, *l1])).min(rest.len());
        let (bytes, tail) = rest.split_at(len);
        data = tail;
        Some((*op, bytes))
    })
}

impl World {
    pub(crate) fn volume(&self, id: &mut String) {
        if let [b] = id.as_bytes() {
            if !self.volumes.is_empty() {
                *id = self.volumes[usize::from(*b) % self.volumes.len()].clone();
            }
        }
    }

    fn node(id: &mut String) {
        if let [b] = id.as_bytes() {
            *id = NODES[usize::from(*b) % NODES.len()].to_owned();
        }
    }

    /// One request; `false` when the bytes are not that request.
    pub(crate) fn call(&mut self, op: u8, bytes: &[u8]) -> Option<bool> {
        let d = &self.driver;
        Some(match op % 5 {
            0 => {
                let req = CreateVolumeRequest::decode(bytes).ok()?;
                let made = d.create_volume(&req).map(|v| v.volume_id);
                made.map(|id| self.volumes.push(id)).is_ok()
            }
            1 => {
                let mut req = DeleteVolumeRequest::decode(bytes).ok()?;
                self.volume(&mut req.volume_id);
                d.delete_volume(&req).is_ok()
            }
            2 => {
                let mut req = ControllerPublishVolumeRequest::decode(bytes).ok()?;
                self.volume(&mut req.volume_id);
                Self::node(&mut req.node_id);
                let published = d.controller_publish(&req);
                if let (Ok(r), true) = (&published, req.node_id == NODES[0]) {
                    self.contexts.insert(req.volume_id.clone(), r.publish_context.clone());
                }
                published.is_ok()
            }
            3 => {
                let mut req = ControllerUnpublishVolumeRequest::decode(bytes).ok()?;
                self.volume(&mut req.volume_id);
                Self::node(&mut req.node_id);
                d.controller_unpublish(&req).is_ok()
            }
            _ => {
                self.clock.advance(Duration::from_secs(u64::from(bytes.first().copied().unwrap_or(1))));
                true
            }
        })
    }
}

pub fn run(data: &[u8]) {
    let mut w = open();
    for (op, bytes) in chunks(data) {
        let before = w.driver.engine.snapshot();
        if w.call(op, bytes) == Some(false) {
            assert_eq!(w.driver.engine.snapshot(), before, "a refused call (op {op}) changed the engine's state");
        }
        check(&w.driver.engine);
    }
}
