//! Proxy mode in process: a recording upstream (a tonic CSI server written here, whose answers a
//! test sets, and which remembers every call it got), a driver on a manual clock, and Tether's
//! proxy in front of the upstream on its own socket, with clients to it.
#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tether_core::ManualClock;
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::controller_server::{Controller, ControllerServer};
use tether_driver::csi::identity_client::IdentityClient;
use tether_driver::csi::identity_server::{Identity, IdentityServer};
use tether_driver::csi::node_client::NodeClient;
use tether_driver::csi::node_server::{Node, NodeServer};
use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, BlockVolume};
use tether_driver::csi::{
    controller_service_capability, node_service_capability, plugin_capability, ControllerGetCapabilitiesRequest,
    ControllerGetCapabilitiesResponse, ControllerPublishVolumeRequest, ControllerPublishVolumeResponse,
    ControllerUnpublishVolumeRequest, ControllerUnpublishVolumeResponse, CreateVolumeRequest, CreateVolumeResponse,
    DeleteVolumeRequest, DeleteVolumeResponse, GetCapacityRequest, GetCapacityResponse, GetPluginCapabilitiesRequest,
    GetPluginCapabilitiesResponse, GetPluginInfoRequest, GetPluginInfoResponse, ListVolumesRequest,
    ListVolumesResponse, NodeGetCapabilitiesRequest, NodeGetCapabilitiesResponse, NodeGetInfoRequest,
    NodeGetInfoResponse, NodePublishVolumeRequest, NodePublishVolumeResponse, NodeStageVolumeRequest,
    NodeStageVolumeResponse, NodeUnpublishVolumeRequest, NodeUnpublishVolumeResponse, NodeUnstageVolumeRequest,
    NodeUnstageVolumeResponse, PluginCapability, ProbeRequest, ProbeResponse, ValidateVolumeCapabilitiesRequest,
    ValidateVolumeCapabilitiesResponse, Volume, VolumeCapability,
};
use tether_driver::events::LogSink;
use tether_driver::nodes::StaticNodes;
use tether_driver::proxy::{router, Proxy, Upstream};
use tether_driver::server::{bind_unix, connect_unix};
use tether_driver::service::{controller_cap, node_cap};
use tether_driver::store::{EmbeddedStore, VolumeStore};
use tether_driver::{Driver, Parts, Settings};
use tokio::sync::oneshot;
use tokio_stream::wrappers::UnixListenerStream;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

// Not every test that shares this module uses every re-export.
#[allow(unused_imports)]
pub use super::common::{assert_code, GRACE, NODES};
pub const UPSTREAM_NAME: &str = "upstream.csi.test";

/// What the recording upstream answers; a test changes it between calls.
#[derive(Debug, Clone)]
pub struct Script {
    pub attaches: bool,
    /// `ControllerPublish`: this status instead of an answer.
    pub publish_fails: Option<(Code, String)>,
    /// `ControllerUnpublish`: this status instead of an answer.
    pub unpublish_fails: Option<(Code, String)>,
    /// `DeleteVolume`: this status instead of an answer.
    pub delete_fails: Option<(Code, String)>,
    /// `ControllerPublish` never answers.
    pub publish_hangs: bool,
    pub publish_context: HashMap<String, String>,
    pub ready: Option<bool>,
}

impl Default for Script {
    fn default() -> Self {
        Self {
            attaches: true,
            publish_fails: None,
            unpublish_fails: None,
            delete_fails: None,
            publish_hangs: false,
            publish_context: HashMap::from([("devicePath".to_owned(), "/dev/upstream0".to_owned())]),
            ready: Some(true),
        }
    }
}

/// One call the upstream received: its method and the request's debug form, and for node calls
/// the publish context it was given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    pub method: &'static str,
    pub volume: String,
    pub node: String,
    pub context: HashMap<String, String>,
    /// For a publish: the nodes of the fence the store had applied when the call arrived.
    pub fenced: Option<Vec<String>>,
}

/// A CSI driver that answers as its script says and records what it got.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    pub script: Arc<Mutex<Script>>,
    pub calls: Arc<Mutex<Vec<Received>>>,
    /// Tether's state directory, read (by a store of its own) at each publish it gets.
    pub state: Arc<Mutex<Option<PathBuf>>>,
}

impl Recording {
    fn record(&self, method: &'static str, volume: &str, node: &str, context: &HashMap<String, String>) {
        let fenced = (method == "ControllerPublishVolume").then(|| self.fenced(volume)).flatten();
        let r = Received { method, volume: volume.into(), node: node.into(), context: context.clone(), fenced };
        self.calls.lock().unwrap().push(r);
    }

    fn fenced(&self, volume: &str) -> Option<Vec<String>> {
        let state = self.state.lock().unwrap().clone()?;
        let fence = EmbeddedStore::open(&state, 1 << 40).unwrap().applied_fence(volume).unwrap()?;
        Some(fence.nodes().map(|a| a.node.to_string()).collect())
    }

    fn script(&self) -> Script {
        self.script.lock().unwrap().clone()
    }

    /// The calls of `method` so far.
    pub fn of(&self, method: &str) -> Vec<Received> {
        self.calls.lock().unwrap().iter().filter(|c| c.method == method).cloned().collect()
    }

    pub fn set(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.script.lock().unwrap());
    }
}

fn fail(f: Option<(Code, String)>) -> Result<(), Status> {
    f.map_or(Ok(()), |(code, message)| Err(Status::new(code, message)))
}

#[tonic::async_trait]
impl Identity for Recording {
    async fn get_plugin_info(
        &self,
        _: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        self.record("GetPluginInfo", "", "", &HashMap::new());
        let manifest = HashMap::from([("url".to_owned(), "https://upstream.invalid".to_owned())]);
        Ok(Response::new(GetPluginInfoResponse {
            name: UPSTREAM_NAME.into(),
            vendor_version: "9.9.9".into(),
            manifest,
        }))
    }
    async fn get_plugin_capabilities(
        &self,
        _: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        let expansion =
            plugin_capability::VolumeExpansion { r#type: plugin_capability::volume_expansion::Type::Online.into() };
        let cap = PluginCapability { r#type: Some(plugin_capability::Type::VolumeExpansion(expansion)) };
        Ok(Response::new(GetPluginCapabilitiesResponse { capabilities: vec![cap] }))
    }
    async fn probe(&self, _: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        Ok(Response::new(ProbeResponse { ready: self.script().ready }))
    }
}

#[tonic::async_trait]
impl Controller for Recording {
    async fn create_volume(&self, r: Request<CreateVolumeRequest>) -> Result<Response<CreateVolumeResponse>, Status> {
        let r = r.into_inner();
        self.record("CreateVolume", &r.name, "", &HashMap::new());
        let volume = Volume { volume_id: format!("up-{}", r.name), capacity_bytes: 1 << 30, ..Default::default() };
        Ok(Response::new(CreateVolumeResponse { volume: Some(volume) }))
    }
    async fn delete_volume(&self, r: Request<DeleteVolumeRequest>) -> Result<Response<DeleteVolumeResponse>, Status> {
        self.record("DeleteVolume", &r.get_ref().volume_id, "", &HashMap::new());
        fail(self.script().delete_fails)?;
        Ok(Response::new(DeleteVolumeResponse {}))
    }
    async fn controller_publish_volume(
        &self,
        r: Request<ControllerPublishVolumeRequest>,
    ) -> Result<Response<ControllerPublishVolumeResponse>, Status> {
        let r = r.into_inner();
        self.record("ControllerPublishVolume", &r.volume_id, &r.node_id, &HashMap::new());
        let script = self.script();
        if script.publish_hangs {
            std::future::pending::<()>().await;
        }
        fail(script.publish_fails)?;
        Ok(Response::new(ControllerPublishVolumeResponse { publish_context: script.publish_context }))
    }
    async fn controller_unpublish_volume(
        &self,
        r: Request<ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<ControllerUnpublishVolumeResponse>, Status> {
        let r = r.into_inner();
        self.record("ControllerUnpublishVolume", &r.volume_id, &r.node_id, &HashMap::new());
        fail(self.script().unpublish_fails)?;
        Ok(Response::new(ControllerUnpublishVolumeResponse {}))
    }
    async fn validate_volume_capabilities(
        &self,
        _: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        Err(Status::unimplemented("not in this upstream"))
    }
    async fn list_volumes(&self, _: Request<ListVolumesRequest>) -> Result<Response<ListVolumesResponse>, Status> {
        Err(Status::unimplemented("not in this upstream"))
    }
    async fn get_capacity(&self, _: Request<GetCapacityRequest>) -> Result<Response<GetCapacityResponse>, Status> {
        Ok(Response::new(GetCapacityResponse { available_capacity: 42, ..Default::default() }))
    }
    async fn controller_get_capabilities(
        &self,
        _: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        use controller_service_capability::rpc::Type;
        let mut capabilities = vec![controller_cap(Type::CreateDeleteVolume)];
        if self.script().attaches {
            capabilities.push(controller_cap(Type::PublishUnpublishVolume));
        }
        Ok(Response::new(ControllerGetCapabilitiesResponse { capabilities }))
    }
}

#[tonic::async_trait]
impl Node for Recording {
    async fn node_stage_volume(
        &self,
        r: Request<NodeStageVolumeRequest>,
    ) -> Result<Response<NodeStageVolumeResponse>, Status> {
        let r = r.into_inner();
        self.record("NodeStageVolume", &r.volume_id, "", &r.publish_context);
        Ok(Response::new(NodeStageVolumeResponse {}))
    }
    async fn node_unstage_volume(
        &self,
        r: Request<NodeUnstageVolumeRequest>,
    ) -> Result<Response<NodeUnstageVolumeResponse>, Status> {
        self.record("NodeUnstageVolume", &r.get_ref().volume_id, "", &HashMap::new());
        Ok(Response::new(NodeUnstageVolumeResponse {}))
    }
    async fn node_publish_volume(
        &self,
        r: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let r = r.into_inner();
        self.record("NodePublishVolume", &r.volume_id, "", &r.publish_context);
        Ok(Response::new(NodePublishVolumeResponse {}))
    }
    async fn node_unpublish_volume(
        &self,
        r: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        self.record("NodeUnpublishVolume", &r.get_ref().volume_id, "", &HashMap::new());
        Ok(Response::new(NodeUnpublishVolumeResponse {}))
    }
    async fn node_get_capabilities(
        &self,
        _: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        use node_service_capability::rpc::Type;
        let capabilities = [Type::StageUnstageVolume, Type::GetVolumeStats].into_iter().map(node_cap).collect();
        Ok(Response::new(NodeGetCapabilitiesResponse { capabilities }))
    }
    async fn node_get_info(&self, _: Request<NodeGetInfoRequest>) -> Result<Response<NodeGetInfoResponse>, Status> {
        Ok(Response::new(NodeGetInfoResponse { node_id: NODES[0].into(), ..Default::default() }))
    }
}

/// A server on a Unix socket until its stop sender is dropped or fired.
pub struct Served {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Stops serving and waits until the socket no longer answers.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

/// Serves `router` on `socket` until stopped.
pub fn serve(router: tonic::transport::server::Router, socket: &Path) -> Served {
    let listener = bind_unix(socket).unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = router
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), async {
                let _ = stopped.await;
            })
            .await;
    });
    Served { stop: Some(stop), task }
}

/// Serves the recording upstream on `socket`.
pub fn serve_upstream(upstream: &Recording, socket: &Path) -> Served {
    let router = tonic::transport::Server::builder()
        .add_service(IdentityServer::new(upstream.clone()))
        .add_service(ControllerServer::new(upstream.clone()))
        .add_service(NodeServer::new(upstream.clone()));
    serve(router, socket)
}

/// Serves Tether's proxy for `driver` on `socket`, in front of the upstream at
/// `upstream_socket`; returns the server and a channel to it.
pub async fn serve_proxy(driver: &Arc<Driver>, upstream_socket: &Path, socket: &Path) -> (Served, Channel) {
    let proxy = Arc::new(Proxy::new(Arc::clone(driver), Upstream::new(upstream_socket, Duration::from_secs(10))));
    (serve(router(proxy), socket), connect_unix(socket).await.unwrap())
}

/// Tether's proxy in front of an upstream, and clients to the proxy.
pub struct ProxyHarness {
    pub dir: tempfile::TempDir,
    pub clock: Arc<ManualClock>,
    pub driver: Arc<Driver>,
    pub upstream_socket: PathBuf,
    pub controller: ControllerClient<Channel>,
    pub node: NodeClient<Channel>,
    pub identity: IdentityClient<Channel>,
    served: Served,
}

pub fn settings(node: &str) -> Settings {
    Settings {
        driver_name: "tether.csi.proxy-test".into(),
        node_id: node.into(),
        grace_period: GRACE,
        default_migration_timeout: Duration::from_mins(5),
        metrics_namespace: "rds_csi".into(),
        lease_term: 0,
    }
}

/// A driver on `state` whose node side is `node`, on a manual clock (returned with it).
pub fn open_driver(state: &Path, node: &str) -> (Arc<Driver>, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new());
    let parts = Parts {
        clock: clock.clone(),
        store: Arc::new(EmbeddedStore::open(state, 1 << 40).unwrap()),
        nodes: Arc::new(StaticNodes::new(NODES.iter().map(ToString::to_string))),
        events: Arc::new(LogSink),
        changes: None,
        awaits_rebuild: false,
    };
    (Arc::new(Driver::open(settings(node), parts).unwrap()), clock)
}

impl ProxyHarness {
    /// A proxy whose node side is `node`, in front of the upstream at `upstream_socket`, with
    /// its state in `state` (a second harness on the same state is another node's plugin).
    pub async fn start(dir: tempfile::TempDir, upstream_socket: &Path, state: &Path, node: &str) -> Self {
        let (driver, clock) = open_driver(state, node);
        let socket = dir.path().join(format!("tether-{node}.sock"));
        let (served, channel) = serve_proxy(&driver, upstream_socket, &socket).await;
        Self {
            controller: ControllerClient::new(channel.clone()),
            node: NodeClient::new(channel.clone()),
            identity: IdentityClient::new(channel),
            dir,
            clock,
            driver,
            upstream_socket: upstream_socket.to_path_buf(),
            served,
        }
    }

    /// Stops serving and closes the driver, so another harness can open its state directory
    /// (a restart of the plugin); returns the directory.
    pub async fn stop(self) -> tempfile::TempDir {
        let Self { dir, driver, served, controller, node, identity, .. } = self;
        drop((controller, node, identity));
        served.stop().await;
        drop(driver);
        dir
    }

    pub async fn publish_with(
        &mut self,
        volume: &str,
        node: &str,
        mode: Mode,
    ) -> Result<ControllerPublishVolumeResponse, Status> {
        let req = ControllerPublishVolumeRequest {
            volume_id: volume.into(),
            node_id: node.into(),
            volume_capability: Some(block(mode)),
            ..Default::default()
        };
        self.controller.controller_publish_volume(req).await.map(Response::into_inner)
    }

    pub async fn rwo(&mut self, volume: &str, node: &str) -> Result<ControllerPublishVolumeResponse, Status> {
        self.publish_with(volume, node, Mode::SingleNodeWriter).await
    }

    pub async fn rwx(&mut self, volume: &str, node: &str) -> Result<ControllerPublishVolumeResponse, Status> {
        self.publish_with(volume, node, Mode::MultiNodeMultiWriter).await
    }

    pub async fn unpublish(&mut self, volume: &str, node: &str) -> Result<(), Status> {
        let req =
            ControllerUnpublishVolumeRequest { volume_id: volume.into(), node_id: node.into(), ..Default::default() };
        self.controller.controller_unpublish_volume(req).await.map(drop)
    }

    pub async fn stage(&mut self, volume: &str, context: &HashMap<String, String>) -> Result<(), Status> {
        let req = NodeStageVolumeRequest {
            volume_id: volume.into(),
            staging_target_path: self.dir.path().join("staging").display().to_string(),
            volume_capability: Some(block(Mode::MultiNodeMultiWriter)),
            publish_context: context.clone(),
            ..Default::default()
        };
        self.node.node_stage_volume(req).await.map(drop)
    }

    /// The nodes the engine has the volume on, primary first.
    pub fn holders(&self, volume: &str) -> Vec<String> {
        super::common::holders(&self.driver, volume)
    }
}

pub fn block(mode: Mode) -> VolumeCapability {
    VolumeCapability {
        access_type: Some(AccessType::Block(BlockVolume {})),
        access_mode: Some(AccessMode { mode: mode.into() }),
    }
}

/// A recording upstream served in `dir`, and a proxy on node-a in front of it.
pub async fn start() -> (ProxyHarness, Recording, Served) {
    let dir = tempfile::tempdir().unwrap();
    let upstream = Recording::default();
    let socket = dir.path().join("upstream.sock");
    let served = serve_upstream(&upstream, &socket);
    let state = dir.path().join("state");
    let h = ProxyHarness::start(dir, &socket, &state, NODES[0]).await;
    *upstream.state.lock().unwrap() = Some(state);
    (h, upstream, served)
}

/// An upstream that answers each method it has bytes for with those bytes as they are, valid
/// message or not (a driver answering garbage), and every other method with UNIMPLEMENTED.
#[derive(Debug, Clone, Default)]
pub struct RawUpstream(Arc<HashMap<&'static str, bytes::Bytes>>);

/// One call to the raw upstream: its answer, if it has one.
struct RawAnswer(Option<bytes::Bytes>);

impl tonic::server::UnaryService<bytes::Bytes> for RawAnswer {
    type Response = bytes::Bytes;
    type Future = std::future::Ready<Result<Response<bytes::Bytes>, Status>>;

    fn call(&mut self, _: Request<bytes::Bytes>) -> Self::Future {
        std::future::ready(self.0.take().map(Response::new).ok_or_else(|| Status::unimplemented("no answer scripted")))
    }
}

macro_rules! raw_service {
    ($name:ident, $full:literal) => {
        #[derive(Debug, Clone)]
        struct $name(RawUpstream);

        impl tonic::server::NamedService for $name {
            const NAME: &'static str = $full;
        }

        impl tower::Service<http::Request<tonic::body::Body>> for $name {
            type Response = http::Response<tonic::body::Body>;
            type Error = std::convert::Infallible;
            type Future =
                std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>>;

            fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: http::Request<tonic::body::Body>) -> Self::Future {
                let answer = RawAnswer(self.0 .0.get(req.uri().path()).cloned());
                let codec = tether_driver::proxy::raw::RawCodec;
                Box::pin(async move { Ok(tonic::server::Grpc::new(codec).unary(answer, req).await) })
            }
        }
    };
}

raw_service!(RawIdentity, "csi.v1.Identity");
raw_service!(RawController, "csi.v1.Controller");

/// Serves a raw upstream answering `answers` (method path to bytes) on `socket`.
pub fn serve_raw(answers: HashMap<&'static str, bytes::Bytes>, socket: &Path) -> Served {
    let raw = RawUpstream(Arc::new(answers));
    serve(
        tonic::transport::Server::builder().add_service(RawIdentity(raw.clone())).add_service(RawController(raw)),
        socket,
    )
}
