//! An in-process driver on a Unix socket with a manual clock, and a tonic client to it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether_core::{ManualClock, VolumeEntry};
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::identity_client::IdentityClient;
use tether_driver::csi::node_client::NodeClient;
use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, BlockVolume, MountVolume};
use tether_driver::csi::{
    ControllerPublishVolumeRequest, ControllerPublishVolumeResponse, ControllerUnpublishVolumeRequest,
    CreateVolumeRequest, VolumeCapability,
};
use tether_driver::events::{Event, EventSink};
use tether_driver::nodes::StaticNodes;
use tether_driver::server::{bind_unix, connect_unix, router};
use tether_driver::store::{EmbeddedStore, StoreError, StoredVolume, VolumeStore};
use tether_driver::volume::VolumeMeta;
use tether_driver::{Driver, Parts, Settings};
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::{Code, Status};

pub const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
pub const GRACE: Duration = Duration::from_secs(30);

/// Remembers every event posted.
#[derive(Debug, Default)]
pub struct RecordingSink(pub Mutex<Vec<Event>>);

impl EventSink for RecordingSink {
    fn post(&self, event: Event) -> bool {
        self.0.lock().unwrap().push(event);
        true
    }
}

type Gate = Mutex<Option<(Sender<()>, Receiver<()>)>>;

/// A store whose next `save`, or next `apply_fences`, can be held until the test releases it.
#[derive(Debug)]
pub struct GatedStore {
    inner: EmbeddedStore,
    gate: Gate,
    fences_gate: Gate,
    /// Makes the next save fail, as a full disk would.
    pub fail_next: std::sync::atomic::AtomicBool,
    /// Re-fences in the background, as the cluster store does.
    pub background: std::sync::atomic::AtomicBool,
}

impl GatedStore {
    /// The embedded store under `dir`, nothing held.
    pub fn open(dir: &Path) -> Self {
        Self {
            inner: EmbeddedStore::open(&dir.join("state"), 1 << 40).unwrap(),
            gate: Mutex::new(None),
            fences_gate: Mutex::new(None),
            fail_next: std::sync::atomic::AtomicBool::new(false),
            background: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Holds the next save: returns (entered, release).
    pub fn arm(&self) -> (Receiver<()>, Sender<()>) {
        arm(&self.gate)
    }

    /// Holds the next `apply_fences`: returns (entered, release).
    pub fn arm_fences(&self) -> (Receiver<()>, Sender<()>) {
        arm(&self.fences_gate)
    }
}

fn arm(gate: &Gate) -> (Receiver<()>, Sender<()>) {
    let (entered_tx, entered_rx) = channel();
    let (release_tx, release_rx) = channel();
    *gate.lock().unwrap() = Some((entered_tx, release_rx));
    (entered_rx, release_tx)
}

/// Waits at `gate` if it is armed (once).
fn pass(gate: &Gate) {
    let held = gate.lock().unwrap().take();
    if let Some((entered, release)) = held {
        entered.send(()).unwrap();
        release.recv().unwrap();
    }
}

impl VolumeStore for GatedStore {
    fn load(&self) -> Result<Vec<StoredVolume>, StoreError> {
        self.inner.load()
    }
    fn create(&self, meta: &VolumeMeta) -> Result<(), StoreError> {
        self.inner.create(meta)
    }
    fn save(
        &self,
        meta: &VolumeMeta,
        engine: Option<&VolumeEntry>,
        fence: Option<&tether_core::Fence>,
    ) -> Result<(), StoreError> {
        if self.fail_next.swap(false, std::sync::atomic::Ordering::SeqCst) {
            let source = std::io::Error::from_raw_os_error(28);
            return Err(StoreError::Io { op: "write", path: self.record_path(&meta.id), source });
        }
        pass(&self.gate);
        self.inner.save(meta, engine, fence)
    }
    fn delete(&self, id: &str) -> Result<(), StoreError> {
        self.inner.delete(id)
    }
    fn source(&self, id: &str) -> PathBuf {
        self.inner.source(id)
    }
    fn record_path(&self, id: &str) -> PathBuf {
        self.inner.record_path(id)
    }
    fn capacity_bytes(&self) -> u64 {
        self.inner.capacity_bytes()
    }
    fn apply_fence(&self, id: &str, fence: &tether_core::Fence) -> Result<(), StoreError> {
        self.inner.apply_fence(id, fence)
    }
    fn applied_fence(&self, id: &str) -> Result<Option<tether_core::Fence>, StoreError> {
        self.inner.applied_fence(id)
    }
    fn apply_fences(&self, fences: &[tether_core::VolumeFence]) -> Result<(), StoreError> {
        pass(&self.fences_gate);
        self.inner.apply_fences(fences)
    }
    fn refences_in_background(&self) -> bool {
        self.background.load(std::sync::atomic::Ordering::SeqCst)
    }
    fn next_term(&self, at_least: u64) -> Result<u64, StoreError> {
        self.inner.next_term(at_least)
    }
}

/// A driver served in-process, and clients to it.
pub struct Harness {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub driver: Arc<Driver>,
    pub store: Arc<GatedStore>,
    pub events: Arc<RecordingSink>,
    pub controller: ControllerClient<Channel>,
    pub node: NodeClient<Channel>,
    pub identity: IdentityClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    served: Option<tokio::task::JoinHandle<()>>,
}

/// The nodes `driver`'s engine has `volume` on, primary first.
pub fn holders(driver: &Driver, volume: &str) -> Vec<String> {
    driver.engine.get(volume).unwrap().map(|a| a.nodes.iter().map(ToString::to_string).collect()).unwrap_or_default()
}

pub fn settings() -> Settings {
    Settings {
        driver_name: "tether.csi.test".into(),
        node_id: NODES[0].into(),
        grace_period: GRACE,
        default_migration_timeout: Duration::from_mins(5),
        metrics_namespace: "rds_csi".into(),
        lease_term: 0,
    }
}

pub async fn connect(socket: &Path) -> Channel {
    connect_unix(socket).await.expect("connect to the driver's socket")
}

impl Harness {
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        Self::start_in(dir).await
    }

    pub async fn start_in(dir: tempfile::TempDir) -> Self {
        Self::start_with(dir, None).await
    }

    /// With `sink`, events go there instead of to `events` (which then records nothing).
    pub async fn start_with(dir: tempfile::TempDir, sink: Option<Arc<dyn EventSink>>) -> Self {
        Self::start_custom(dir, ManualClock::new(), |parts| {
            if let Some(sink) = sink {
                parts.events = sink;
            }
        })
        .await
    }

    /// A driver on `clock`, its parts changed by `customize` before it opens.
    pub async fn start_custom(dir: tempfile::TempDir, clock: ManualClock, customize: impl FnOnce(&mut Parts)) -> Self {
        Self::start_named(dir, clock, settings(), customize).await
    }

    /// The same, with other settings (say, another driver name).
    pub async fn start_named(
        dir: tempfile::TempDir,
        clock: ManualClock,
        settings: Settings,
        customize: impl FnOnce(&mut Parts),
    ) -> Self {
        let store = Arc::new(GatedStore::open(dir.path()));
        Self::start_on(dir, store, clock, settings, customize).await
    }

    /// The same, on `store` (opened on `dir`, made ready by the test before the driver opens).
    pub async fn start_on(
        dir: tempfile::TempDir,
        store: Arc<GatedStore>,
        clock: ManualClock,
        settings: Settings,
        customize: impl FnOnce(&mut Parts),
    ) -> Self {
        let clock = Arc::new(clock);
        let events = Arc::new(RecordingSink::default());
        let mut parts = Parts {
            clock: clock.clone(),
            store: store.clone(),
            nodes: Arc::new(StaticNodes::new(NODES.iter().map(ToString::to_string))),
            events: events.clone(),
            changes: None,
            awaits_rebuild: false,
        };
        customize(&mut parts);
        let driver = Arc::new(Driver::open(settings, parts).unwrap());
        let socket = dir.path().join("csi.sock");
        let listener = bind_unix(&socket).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let served = tokio::spawn({
            let driver = driver.clone();
            async move {
                router(driver)
                    .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                        let _ = stopped.await;
                    })
                    .await
                    .unwrap();
            }
        });
        let channel = connect(&socket).await;
        Self {
            dir,
            clock,
            driver,
            store,
            events,
            controller: ControllerClient::new(channel.clone()),
            node: NodeClient::new(channel.clone()),
            identity: IdentityClient::new(channel),
            stop: Some(stop),
            served: Some(served),
        }
    }

    /// Stops the server, waiting for in-flight calls; returns the state directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        self.stop.take().unwrap().send(()).unwrap();
        drop(self.controller);
        drop(self.node);
        drop(self.identity);
        self.served.take().unwrap().await.unwrap();
        self.dir
    }

    pub async fn create(&mut self, name: &str, block: bool, params: &[(&str, &str)]) -> String {
        let mode = if block { Mode::MultiNodeMultiWriter } else { Mode::SingleNodeWriter };
        let req = CreateVolumeRequest {
            name: name.into(),
            volume_capabilities: vec![capability(block, mode)],
            parameters: params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            ..Default::default()
        };
        self.controller.create_volume(req).await.unwrap().into_inner().volume.unwrap().volume_id
    }

    pub async fn publish(
        &mut self,
        volume: &str,
        node: &str,
        mode: Mode,
        block: bool,
    ) -> Result<ControllerPublishVolumeResponse, Status> {
        let req = ControllerPublishVolumeRequest {
            volume_id: volume.into(),
            node_id: node.into(),
            volume_capability: Some(capability(block, mode)),
            ..Default::default()
        };
        self.controller.controller_publish_volume(req).await.map(tonic::Response::into_inner)
    }

    pub async fn rwo(&mut self, volume: &str, node: &str) -> Result<ControllerPublishVolumeResponse, Status> {
        self.publish(volume, node, Mode::SingleNodeWriter, false).await
    }

    pub async fn rwx(&mut self, volume: &str, node: &str) -> Result<ControllerPublishVolumeResponse, Status> {
        self.publish(volume, node, Mode::MultiNodeMultiWriter, true).await
    }

    pub async fn unpublish(&mut self, volume: &str, node: &str) -> Result<(), Status> {
        let req =
            ControllerUnpublishVolumeRequest { volume_id: volume.into(), node_id: node.into(), ..Default::default() };
        self.controller.controller_unpublish_volume(req).await.map(|_| ())
    }

    pub fn nodes_of(&self, volume: &str) -> Vec<String> {
        holders(&self.driver, volume)
    }

    /// The volume's record as stored.
    pub fn stored(&self, volume: &str) -> StoredVolume {
        self.store.inner.stored(volume).unwrap().expect("the volume is stored")
    }

    pub fn reasons(&self) -> Vec<&'static str> {
        self.events.0.lock().unwrap().iter().map(|e| e.reason.as_str()).collect()
    }
}

/// An RWO fence at `epoch` admitting `nodes` (node, admission epoch).
pub fn fence(epoch: u64, nodes: &[(&str, u64)]) -> tether_core::Fence {
    let nodes = nodes.iter().map(|&(n, e)| tether_core::Admission { node: n.into(), epoch: e }).collect();
    tether_core::Fence::new(epoch, tether_core::Access::RWO, nodes).unwrap()
}

/// A 1 MiB block volume `id`, as the store records it.
pub fn block_volume(id: &str) -> VolumeMeta {
    VolumeMeta {
        id: id.into(),
        name: id.into(),
        kind: tether_driver::volume::VolumeKind::Block,
        capacity_bytes: 1 << 20,
        parameters: std::collections::BTreeMap::new(),
    }
}

pub fn capability(block: bool, mode: Mode) -> VolumeCapability {
    let access_type = if block { AccessType::Block(BlockVolume {}) } else { AccessType::Mount(MountVolume::default()) };
    VolumeCapability { access_type: Some(access_type), access_mode: Some(AccessMode { mode: mode.into() }) }
}

/// The epoch of a volume's `n`-th change (from 1) under the term a fresh state directory's
/// first start takes, 1: epochs under term `t` start at `t << 32`.
pub const fn nth(n: u64) -> u64 {
    (1 << 32) + n - 1
}

/// The admission epoch a publish context presents (`tether.io/epoch`).
pub fn epoch_of(resp: &ControllerPublishVolumeResponse) -> u64 {
    resp.publish_context["tether.io/epoch"].parse().unwrap()
}

#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Status>, code: Code) -> Status {
    let status = result.expect_err("the call should have been refused");
    assert_eq!(status.code(), code, "unexpected status: {status:?}");
    status
}

pub fn context(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}
