//! Proxy mode in front of a real upstream no one here wrote: the Kubernetes e2e suite's mock CSI
//! driver (built by tests/proxy/build-mock.sh, named by `TETHER_CSI_MOCK`; `make test-proxy`
//! runs these). With attach enabled it accepts `ControllerPublish` only for its own node id;
//! with attach disabled Tether arbitrates across nodes, one mock per node for the node side.
//! These run on the multi-threaded runtime, as `tether-csi` does; the in-process tests of
//! `proxy.rs` run on the current-thread one.

mod common;
mod proxy_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use proxy_support::{assert_code, block, open_driver, serve, ProxyHarness, NODES};
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::controller_service_capability::rpc::Type;
use tether_driver::csi::controller_service_capability::Type as CapType;
use tether_driver::csi::identity_client::IdentityClient;
use tether_driver::csi::plugin_capability::{service, Type as PluginType};
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::csi::{
    ControllerGetCapabilitiesRequest, CreateVolumeRequest, DeleteVolumeRequest, GetPluginCapabilitiesRequest,
    GetPluginInfoRequest, ListVolumesRequest, ProbeRequest,
};
use tether_driver::k8s::standby::Gate;
use tether_driver::proxy::{self, Proxy, Upstream};
use tether_driver::server::connect_unix;
use tonic::Code;

/// The mock, killed when dropped.
struct Mock(Child);

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the mock as node `node` on `socket` and waits until it serves (a readiness wait on
/// another process; the limit only turns a hang into a failure).
async fn mock(socket: &Path, node: &str, attach: bool) -> Mock {
    let bin = std::env::var("TETHER_CSI_MOCK").expect("TETHER_CSI_MOCK names the mock's binary (make test-proxy)");
    let mut cmd = Command::new(bin);
    cmd.args(["-endpoint", &socket.display().to_string(), "-name", node]);
    if !attach {
        cmd.arg("-disable-attach");
    }
    let mut child = Mock(cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("start the mock"));
    let limit = Instant::now() + Duration::from_secs(30);
    while connect_unix(socket).await.is_err() {
        assert!(child.0.try_wait().unwrap().is_none(), "the mock exited during start-up");
        assert!(Instant::now() < limit, "the mock did not open {}", socket.display());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child
}

fn paths(dir: &tempfile::TempDir) -> (PathBuf, PathBuf, PathBuf) {
    (dir.path().join("mock-a.sock"), dir.path().join("mock-b.sock"), dir.path().join("state"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the e2e mock CSI driver: make test-proxy builds it"]
async fn with_attach_the_mock_only_sees_what_the_engine_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _, state) = paths(&dir);
    let _mock = mock(&socket, NODES[0], true).await;
    let mut h = ProxyHarness::start(dir, &socket, &state, NODES[0]).await;
    let info = h.identity.get_plugin_info(GetPluginInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.name, NODES[0], "the mock's name (its node id)");
    let req = CreateVolumeRequest {
        name: "pvc-real".into(),
        volume_capabilities: vec![block(Mode::SingleNodeWriter)],
        ..Default::default()
    };
    let v = h.controller.create_volume(req).await.unwrap().into_inner().volume.unwrap().volume_id;
    let context = h.rwo(&v, NODES[0]).await.unwrap().publish_context;
    assert!(context.contains_key("device") && context.contains_key("tether.io/epoch"), "{context:?}");
    let refused = assert_code(h.rwo(&v, NODES[1]).await, Code::FailedPrecondition);
    assert!(refused.message().contains("node-a"), "the engine's refusal, not the mock's: {}", refused.message());
    h.stage(&v, &context).await.expect("the mock requires its own `device` key, which reached it");
    h.unpublish(&v, NODES[0]).await.unwrap();
    let theirs = assert_code(h.rwo(&v, NODES[1]).await, Code::NotFound);
    assert!(theirs.message().contains("Not matching Node ID"), "the mock's own refusal: {}", theirs.message());
    assert!(h.holders(&v).is_empty(), "the engine's change is undone after the mock refused");
    h.rwo(&v, NODES[0]).await.expect("node-a attaches again");
    h.unpublish(&v, NODES[0]).await.unwrap();
    h.controller.delete_volume(DeleteVolumeRequest { volume_id: v.clone(), ..Default::default() }).await.unwrap();
    assert_eq!(h.driver.volume_count(), 0, "forgotten once the mock deleted it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the e2e mock CSI driver: make test-proxy builds it"]
async fn without_attach_tether_arbitrates_across_nodes_and_fences_each_nodes_mock() {
    let dir = tempfile::tempdir().unwrap();
    let (sock_a, sock_b, state) = paths(&dir);
    let _mocks = (mock(&sock_a, NODES[0], false).await, mock(&sock_b, NODES[1], false).await);
    let node_b_dir = tempfile::tempdir().unwrap();
    let mut b = ProxyHarness::start(node_b_dir, &sock_b, &state, NODES[1]).await;
    let mut a = ProxyHarness::start(dir, &sock_a, &state, NODES[0]).await;
    let caps = a.controller.controller_get_capabilities(ControllerGetCapabilitiesRequest {}).await.unwrap();
    let attach = caps
        .into_inner()
        .capabilities
        .iter()
        .any(|c| matches!(c.r#type, Some(CapType::Rpc(r)) if r.r#type == i32::from(Type::PublishUnpublishVolume)));
    assert!(attach, "Tether offers the attach step the mock lacks");
    // Each mock starts with the same volumes (same ids), so both nodes' mocks know this one.
    let listed = a.controller.list_volumes(ListVolumesRequest::default()).await.unwrap().into_inner();
    let v = listed.entries[0].volume.as_ref().unwrap().volume_id.clone();
    let on_a = a.rwx(&v, NODES[0]).await.unwrap().publish_context;
    a.stage(&v, &on_a).await.expect("node-a's mock stages");
    let rwo = assert_code(a.rwo(&v, NODES[1]).await, Code::FailedPrecondition);
    assert!(rwo.message().contains("node-a"), "{}", rwo.message());
    let stolen = assert_code(b.stage(&v, &on_a).await, Code::FailedPrecondition);
    assert!(stolen.message().contains("does not admit it"), "node-b presenting node-a's context: {}", stolen.message());
    // A live migration: both admitted, then only the target.
    let on_b = a.rwx(&v, NODES[1]).await.unwrap().publish_context;
    b.stage(&v, &on_b).await.expect("the target's mock stages during the migration");
    a.stage(&v, &on_a).await.expect("the source keeps its session");
    a.unpublish(&v, NODES[0]).await.unwrap();
    assert_eq!(a.holders(&v), [NODES[1]]);
    let fenced = assert_code(a.stage(&v, &on_a).await, Code::FailedPrecondition);
    assert!(fenced.message().contains("does not admit it"), "{}", fenced.message());
    b.stage(&v, &on_b).await.expect("the target alone");
}

/// Whether `caps` offer the controller service.
fn offers_controller(caps: &tether_driver::csi::GetPluginCapabilitiesResponse) -> bool {
    let controller = i32::from(service::Type::ControllerService);
    caps.capabilities.iter().any(|c| matches!(&c.r#type, Some(PluginType::Service(s)) if s.r#type == controller))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs the e2e mock CSI driver: make test-proxy builds it"]
async fn a_standby_in_front_of_the_mock_answers_identity_as_the_leader_would_and_is_not_ready() {
    let dir = tempfile::tempdir().unwrap();
    let (socket, _, state) = paths(&dir);
    let mock = mock(&socket, NODES[0], false).await;
    let gate = Gate::standby_in_front_of(Upstream::new(&socket, Duration::from_secs(10)), "tl-proxy-lease");
    let tether = dir.path().join("tether.sock");
    let served = serve(gate.router(), &tether);
    let channel = connect_unix(&tether).await.unwrap();
    let (mut identity, mut controller) = (IdentityClient::new(channel.clone()), ControllerClient::new(channel));
    let info = identity.get_plugin_info(GetPluginInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.name, NODES[0], "the mock's name (its -name), as the leader's proxy answers it");
    let probe = identity.probe(ProbeRequest {}).await.unwrap().into_inner();
    assert_eq!(probe.ready, Some(false), "a standby is never ready, so its sidecars wait");
    let caps = identity.get_plugin_capabilities(GetPluginCapabilitiesRequest {}).await.unwrap().into_inner();
    assert!(offers_controller(&caps), "the mock's capabilities with Tether's controller service: {caps:?}");
    let create = || CreateVolumeRequest { name: "pvc-standby".into(), ..Default::default() };
    let refused = assert_code(controller.create_volume(create()).await, Code::Unavailable);
    assert!(
        refused.message().contains("standby") && refused.message().contains("tl-proxy-lease"),
        "{}",
        refused.message()
    );

    // The replica leads: the connection its sidecars hold reaches the proxy, with the same name.
    let (driver, _clock) = open_driver(&state, NODES[0]);
    gate.lead(proxy::routes(Arc::new(Proxy::new(driver, Upstream::new(&socket, Duration::from_secs(10))))));
    let led = identity.get_plugin_info(GetPluginInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(led, info, "the leader's GetPluginInfo is the standby's");
    assert_eq!(identity.probe(ProbeRequest {}).await.unwrap().into_inner().ready, Some(true));
    let req = CreateVolumeRequest { volume_capabilities: vec![block(Mode::SingleNodeWriter)], ..create() };
    controller.create_volume(req).await.expect("forwarded to the mock once leading");
    drop((identity, controller));
    served.stop().await;

    // A standby whose upstream is gone cannot learn the name: it says so, naming the upstream.
    drop(mock);
    let gate = Gate::standby_in_front_of(Upstream::new(&socket, Duration::from_secs(2)), "tl-proxy-lease");
    let again = dir.path().join("tether-2.sock");
    let _served = serve(gate.router(), &again);
    let mut identity = IdentityClient::new(connect_unix(&again).await.unwrap());
    let unknown = assert_code(identity.get_plugin_info(GetPluginInfoRequest {}).await, Code::Unavailable);
    let message = unknown.message();
    assert!(message.contains("could not ask it") && message.contains(&socket.display().to_string()), "{message}");
    assert_eq!(identity.probe(ProbeRequest {}).await.unwrap().into_inner().ready, Some(false));
}
