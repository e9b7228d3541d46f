//! Proxy mode against a recording upstream (a tonic CSI server in this test, whose answers each
//! test scripts): the engine decides first and a refused publish never reaches the upstream;
//! the grace handoff and a migration (completion, abort) through the proxy; the node's session
//! check before forwarding, with Tether's keys stripped; and an upstream that fails, hangs,
//! restarts or answers hostile data.

mod common;
mod proxy_support;

use std::collections::HashMap;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use proxy_support::{assert_code, block, serve_raw, serve_upstream, start, ProxyHarness, GRACE, NODES};
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::csi::{
    controller_service_capability, plugin_capability, ControllerGetCapabilitiesRequest,
    ControllerGetCapabilitiesResponse, ControllerPublishVolumeRequest, CreateVolumeRequest, DeleteVolumeRequest,
    GetCapacityRequest, GetPluginCapabilitiesRequest, GetPluginInfoRequest, NodeGetCapabilitiesRequest,
    NodeGetInfoRequest, ProbeRequest, ValidateVolumeCapabilitiesRequest,
};
use tether_driver::proxy::LEDGER_PARAM;
use tether_driver::service::controller_cap;
use tether_driver::store::{EmbeddedStore, VolumeStore};
use tonic::{Code, Status};

const PUBLISH: &str = "ControllerPublishVolume";
const UNPUBLISH: &str = "ControllerUnpublishVolume";
const STAGE: &str = "NodeStageVolume";

/// A publish of block volume `volume` to `node` (RWO) that gives up after `timeout`.
fn timed_publish(volume: &str, node: &str, timeout: Duration) -> tonic::Request<ControllerPublishVolumeRequest> {
    let mut req = tonic::Request::new(ControllerPublishVolumeRequest {
        volume_id: volume.into(),
        node_id: node.into(),
        volume_capability: Some(block(Mode::SingleNodeWriter)),
        ..Default::default()
    });
    req.set_timeout(timeout);
    req
}

fn nodes_of(calls: &[proxy_support::Received]) -> Vec<&str> {
    calls.iter().map(|c| c.node.as_str()).collect()
}

#[tokio::test]
async fn an_rwo_conflict_is_refused_by_the_engine_and_never_reaches_the_upstream() {
    let (mut h, up, _served) = start().await;
    let out = h.rwo("vol-1", NODES[0]).await.unwrap();
    assert_eq!(out.publish_context["devicePath"], "/dev/upstream0", "the upstream's context is kept");
    assert!(out.publish_context.contains_key("tether.io/epoch"), "Tether's keys are added: {:?}", out.publish_context);
    let refused = assert_code(h.rwo("vol-1", NODES[1]).await, Code::FailedPrecondition);
    assert!(refused.message().contains("node-a"), "names the holder: {}", refused.message());
    assert_eq!(nodes_of(&up.of(PUBLISH)), [NODES[0]], "only the accepted publish was forwarded");
    assert_eq!(h.holders("vol-1"), [NODES[0]]);
    let fenced = up.of(PUBLISH)[0].fenced.clone();
    assert_eq!(fenced, Some(vec![NODES[0].to_owned()]), "the fence was durable before the upstream got the call");
}

#[tokio::test]
async fn a_volume_id_the_store_cannot_record_is_refused_before_the_engine_and_the_upstream() {
    let (mut h, up, _served) = start().await;
    for id in ["../store.db", "/etc/passwd", "./x", "a/../../b"] {
        let refused = assert_code(h.rwo(id, NODES[0]).await, Code::InvalidArgument);
        assert!(refused.message().contains("cannot record it"), "{id}: {}", refused.message());
        assert!(h.holders(id).is_empty());
    }
    assert!(up.of(PUBLISH).is_empty());
    h.rwo("pool/vol-1", NODES[0]).await.expect("a nested relative id is fine");
}

#[tokio::test]
async fn the_grace_handoff_detaches_the_late_holder_at_the_upstream_before_attaching_the_new_one() {
    let (mut h, up, _served) = start().await;
    h.rwo("vol-g", NODES[0]).await.unwrap();
    h.unpublish("vol-g", NODES[0]).await.unwrap();
    // A's late retry, which the CO no longer wants, then B within the grace period.
    h.rwo("vol-g", NODES[0]).await.unwrap();
    h.clock.advance(GRACE / 2);
    h.rwo("vol-g", NODES[1]).await.expect("handed off to B within the grace period");
    assert_eq!(h.holders("vol-g"), [NODES[1]]);
    let calls: Vec<(&str, String)> = up
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.method == PUBLISH || c.method == UNPUBLISH)
        .map(|c| (c.method, c.node.clone()))
        .collect();
    let expected =
        [(PUBLISH, "node-a"), (UNPUBLISH, "node-a"), (PUBLISH, "node-a"), (UNPUBLISH, "node-a"), (PUBLISH, "node-b")];
    assert_eq!(calls, expected.map(|(m, n)| (m, n.to_owned())), "A detached at the upstream before B attached");
}

/// A's late retry of `volume`, then B within the grace period while the upstream fails every
/// detach: the engine hands the volume to B, the upstream still has A. Returns B's error.
async fn hand_off_with_a_failed_detach(h: &mut ProxyHarness, up: &proxy_support::Recording, volume: &str) -> Status {
    h.rwo(volume, NODES[0]).await.unwrap();
    h.unpublish(volume, NODES[0]).await.unwrap();
    h.rwo(volume, NODES[0]).await.unwrap();
    up.set(|s| s.unpublish_fails = Some((Code::Internal, "array busy".into())));
    let failed = assert_code(h.rwo(volume, NODES[1]).await, Code::Internal);
    assert_eq!(h.holders(volume), [NODES[1]], "the handoff is durable in the engine");
    failed
}

#[tokio::test]
async fn a_failed_detach_of_the_handed_off_holder_is_owed_and_retried_by_the_next_publish() {
    let (mut h, up, _served) = start().await;
    let failed = hand_off_with_a_failed_detach(&mut h, &up, "vol-o").await;
    assert_eq!(failed.message(), "array busy", "the upstream's error passes through unchanged");
    assert_eq!(nodes_of(&up.of(PUBLISH)), [NODES[0], NODES[0]], "B was not attached while A may still be");
    up.set(|s| s.unpublish_fails = None);
    h.rwo("vol-o", NODES[1]).await.expect("the CO's retry: A detached now, then B");
    assert_eq!(nodes_of(&up.of(PUBLISH)), [NODES[0], NODES[0], NODES[1]]);
    assert_eq!(nodes_of(&up.of(UNPUBLISH)), [NODES[0], NODES[0], NODES[0]]);
}

#[tokio::test]
async fn a_detach_owed_at_the_upstream_survives_a_restart_and_is_made_before_the_new_holder_attaches() {
    let (mut h, up, _served) = start().await;
    hand_off_with_a_failed_detach(&mut h, &up, "vol-r").await;
    let socket = h.upstream_socket.clone();
    let dir = h.stop().await;
    up.set(|s| s.unpublish_fails = None);
    let state = dir.path().join("state");
    let mut h = ProxyHarness::start(dir, &socket, &state, NODES[0]).await;
    up.calls.lock().unwrap().clear();
    h.rwo("vol-r", NODES[1]).await.expect("the CO's retry after the restart");
    let calls: Vec<(&str, String)> = up.calls.lock().unwrap().iter().map(|c| (c.method, c.node.clone())).collect();
    let expected = [(UNPUBLISH, NODES[0].to_owned()), (PUBLISH, NODES[1].to_owned())];
    assert!(calls.ends_with(&expected), "A detached at the upstream before B attached, after the restart: {calls:?}");
    h.rwo("vol-r", NODES[1]).await.unwrap();
    assert_eq!(up.of(UNPUBLISH).len(), 1, "paid once: nothing is owed any more");
    assert_eq!(ledger(&state, "vol-r").as_deref(), Some(r#"["node-b"]"#), "the record keeps B only");
    h.unpublish("vol-r", NODES[1]).await.unwrap();
    assert_eq!(ledger(&state, "vol-r"), None, "detached at the upstream: nothing left in the record");
}

/// The ledger of `volume`'s durable record in `state`: the nodes the upstream may have it on.
fn ledger(state: &std::path::Path, volume: &str) -> Option<String> {
    let records = EmbeddedStore::open(state, 1 << 40).unwrap().load().unwrap();
    let record = records.into_iter().find(|r| r.meta.id == volume).expect("the volume's record");
    record.meta.parameters.get(LEDGER_PARAM).cloned()
}

#[tokio::test]
async fn a_migration_completes_and_aborts_through_the_proxy_with_the_fence_on_the_node_side() {
    let (mut h, up, _served) = start().await;
    let (a, b, c) = (NODES[0], NODES[1], NODES[2]);
    let source = h.rwx("vol-m", a).await.unwrap().publish_context;
    h.rwx("vol-m", b).await.unwrap();
    assert_eq!(h.holders("vol-m"), [a, b]);
    let limit = assert_code(h.rwx("vol-m", c).await, Code::FailedPrecondition);
    assert!(limit.message().contains("node-c"), "{}", limit.message());
    assert_eq!(nodes_of(&up.of(PUBLISH)), [a, b], "the third node never reached the upstream");
    h.stage("vol-m", &source).await.expect("the source keeps its session during the migration");
    // Abort (target leaves), start again, complete (source leaves).
    h.unpublish("vol-m", b).await.unwrap();
    assert_eq!(h.holders("vol-m"), [a]);
    h.stage("vol-m", &source).await.expect("after an abort the source still may");
    h.rwx("vol-m", b).await.unwrap();
    h.unpublish("vol-m", a).await.unwrap();
    assert_eq!(h.holders("vol-m"), [b]);
    let refused = assert_code(h.stage("vol-m", &source).await, Code::FailedPrecondition);
    assert!(refused.message().contains("does not admit it"), "{}", refused.message());
    assert_eq!(up.of(STAGE).len(), 2, "the refused stage was not forwarded");
    assert_eq!(nodes_of(&up.of(UNPUBLISH)), [b, a]);
}

#[tokio::test]
async fn a_migration_through_the_proxy_fences_the_node_side_of_both_nodes() {
    let (mut a, up, _served) = start().await;
    let (na, nb) = (NODES[0], NODES[1]);
    let state = a.dir.path().join("state");
    let mut b = ProxyHarness::start(tempfile::tempdir().unwrap(), &a.upstream_socket, &state, nb).await;
    // Completion: the target's session goes on, the source's ends.
    let ca = a.rwx("vol-c", na).await.unwrap().publish_context;
    let cb = a.rwx("vol-c", nb).await.unwrap().publish_context;
    a.stage("vol-c", &ca).await.expect("the source, during the migration");
    b.stage("vol-c", &cb).await.expect("the target, during the migration");
    a.unpublish("vol-c", na).await.unwrap();
    b.stage("vol-c", &cb).await.expect("the target, after completion");
    assert_code(a.stage("vol-c", &ca).await, Code::FailedPrecondition);
    // Abort: the source's session goes on, the target's ends.
    let ca = a.rwx("vol-x", na).await.unwrap().publish_context;
    let cb = a.rwx("vol-x", nb).await.unwrap().publish_context;
    a.unpublish("vol-x", nb).await.unwrap();
    assert_code(b.stage("vol-x", &cb).await, Code::FailedPrecondition);
    a.stage("vol-x", &ca).await.expect("the source, after an abort");
    assert_eq!(up.of(STAGE).len(), 4, "every accepted stage once, neither refused one");
    assert_eq!(nodes_of(&up.of(PUBLISH)), [na, nb, na, nb]);
    assert_eq!(nodes_of(&up.of(UNPUBLISH)), [na, nb]);
}

#[tokio::test]
async fn node_calls_reach_the_upstream_with_its_own_context_keys_only() {
    let (mut h, up, _served) = start().await;
    let context = h.rwo("vol-n", NODES[0]).await.unwrap().publish_context;
    h.stage("vol-n", &context).await.unwrap();
    let staged = &up.of(STAGE)[0];
    assert_eq!(staged.context, HashMap::from([("devicePath".to_owned(), "/dev/upstream0".to_owned())]));
    let missing = assert_code(h.stage("vol-n", &HashMap::new()).await, Code::InvalidArgument);
    assert!(missing.message().contains("tether.io/epoch"), "{}", missing.message());
    assert_eq!(up.of(STAGE).len(), 1, "a stage without Tether's context is not forwarded");
    let info = h.node.node_get_info(NodeGetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(info.node_id, NODES[0], "the upstream's answer");
    let caps = h.node.node_get_capabilities(NodeGetCapabilitiesRequest {}).await.unwrap().into_inner();
    assert_eq!(caps.capabilities.len(), 2, "the upstream's two node capabilities: {caps:?}");
}

#[tokio::test]
async fn an_upstream_refusal_passes_through_and_leaves_the_engine_as_it_was() {
    let (mut h, up, _served) = start().await;
    up.set(|s| s.publish_fails = Some((Code::NotFound, "no such LUN".into())));
    let refused = assert_code(h.rwo("vol-r", NODES[0]).await, Code::NotFound);
    assert_eq!(refused.message(), "no such LUN");
    assert_eq!(up.of(PUBLISH).len(), 1, "an answer, even a refusal, is passed on and never repeated");
    assert!(h.holders("vol-r").is_empty(), "the engine's change is undone");
    assert_eq!(h.driver.volume_count(), 0, "and the volume's record dropped: nothing refused leaves a trace");
    up.set(|s| s.publish_fails = None);
    h.rwo("vol-r", NODES[1]).await.expect("another node may attach: nothing held it");
}

#[tokio::test]
async fn an_upstream_that_advertises_attach_but_does_not_implement_it_is_a_refusal() {
    let (mut h, up, _served) = start().await;
    up.set(|s| s.publish_fails = Some((Code::Unimplemented, "unknown method".into())));
    assert_code(h.rwo("vol-u", NODES[0]).await, Code::Unimplemented);
    assert!(h.holders("vol-u").is_empty());
}

#[tokio::test]
async fn a_hanging_upstream_gets_the_calls_deadline_and_the_engine_keeps_the_node() {
    let (mut h, up, _served) = start().await;
    h.rwo("warm-up", NODES[2]).await.unwrap();
    up.set(|s| s.publish_hangs = true);
    let req = timed_publish("vol-h", NODES[0], Duration::from_millis(500));
    let late = assert_code(h.controller.controller_publish_volume(req).await, Code::DeadlineExceeded);
    assert!(
        late.message().contains(&h.upstream_socket.display().to_string()),
        "names the upstream: {}",
        late.message()
    );
    assert_eq!(h.holders("vol-h"), [NODES[0]], "the upstream may have attached: the engine keeps the node");
    up.set(|s| s.publish_hangs = false);
    h.rwo("vol-h", NODES[0]).await.expect("the CO's retry is idempotent in the engine and forwarded again");
    assert_eq!(up.of(PUBLISH).iter().filter(|c| c.volume == "vol-h").count(), 2);
    assert_code(h.rwo("vol-h", NODES[1]).await, Code::FailedPrecondition);
}

#[tokio::test]
async fn an_upstream_that_is_gone_is_unavailable_naming_it_and_a_restarted_one_is_used_again() {
    let (mut h, up, served) = start().await;
    h.rwo("vol-s", NODES[0]).await.unwrap();
    served.stop().await;
    let req = timed_publish("vol-s2", NODES[1], Duration::from_millis(300));
    let gone = assert_code(h.controller.controller_publish_volume(req).await, Code::Unavailable);
    assert!(gone.message().contains("could not be reached"), "{}", gone.message());
    assert!(gone.message().contains(&h.upstream_socket.display().to_string()), "{}", gone.message());
    let _again = serve_upstream(&up, &h.upstream_socket);
    h.unpublish("vol-s", NODES[0]).await.expect("the restarted upstream is called");
    assert!(h.holders("vol-s").is_empty());
}

#[tokio::test]
async fn an_upstream_restarting_during_a_publish_is_called_again_within_the_deadline() {
    let (mut h, up, served) = start().await;
    h.rwo("warm-up", NODES[2]).await.unwrap();
    served.stop().await;
    let mut controller = h.controller.clone();
    let call = tokio::spawn(async move {
        let req = ControllerPublishVolumeRequest {
            volume_id: "vol-t".into(),
            node_id: NODES[0].into(),
            volume_capability: Some(block(Mode::SingleNodeWriter)),
            ..Default::default()
        };
        controller.controller_publish_volume(req).await
    });
    // The engine decides before forwarding; once it has, the forward is under way.
    while h.holders("vol-t").is_empty() {
        tokio::task::yield_now().await;
    }
    let _again = serve_upstream(&up, &h.upstream_socket);
    let out = call.await.unwrap().expect("answered once the upstream is back");
    assert_eq!(out.into_inner().publish_context["devicePath"], "/dev/upstream0");
    assert_eq!(up.of(PUBLISH).iter().filter(|c| c.volume == "vol-t").count(), 1);
}

#[tokio::test]
async fn an_upstream_context_in_tethers_prefix_or_too_large_is_refused_by_name() {
    let (mut h, up, _served) = start().await;
    up.set(|s| s.publish_context = HashMap::from([("tether.io/epoch".to_owned(), "999999".to_owned())]));
    let prefixed = assert_code(h.rwo("vol-p", NODES[0]).await, Code::Internal);
    assert!(prefixed.message().contains("\"tether.io/epoch\""), "{}", prefixed.message());
    assert!(prefixed.message().contains(&h.upstream_socket.display().to_string()), "{}", prefixed.message());
    assert_eq!(h.holders("vol-p"), [NODES[0]], "the upstream did attach: the engine keeps the node");
    up.set(|s| s.publish_context = HashMap::from([("blob".to_owned(), "x".repeat(300 << 10))]));
    let huge = assert_code(h.rwo("vol-q", NODES[0]).await, Code::Internal);
    assert!(huge.message().contains("publish_context of 307204 bytes"), "{}", huge.message());
}

/// Bytes that are no message: field 1, length-delimited, five bytes long, with one.
const GARBAGE: &[u8] = b"\x0a\x05\x01";
const CAPABILITIES_PATH: &str = "/csi.v1.Controller/ControllerGetCapabilities";

/// A proxy on node-a in front of an upstream answering `answers` as raw bytes.
async fn start_raw(answers: HashMap<&'static str, Bytes>) -> (ProxyHarness, proxy_support::Served) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("raw.sock");
    let served = serve_raw(answers, &socket);
    let state = dir.path().join("state");
    (ProxyHarness::start(dir, &socket, &state, NODES[0]).await, served)
}

#[tokio::test]
async fn unreadable_capabilities_from_the_upstream_are_an_internal_error_naming_it_and_nothing_is_decided() {
    let answers = HashMap::from([
        (CAPABILITIES_PATH, Bytes::from_static(GARBAGE)),
        ("/csi.v1.Identity/Probe", Bytes::from_static(GARBAGE)),
    ]);
    let (mut h, _served) = start_raw(answers).await;
    let upstream = h.upstream_socket.display().to_string();
    let caps = h.controller.controller_get_capabilities(ControllerGetCapabilitiesRequest {}).await;
    for (what, status) in [
        ("ControllerGetCapabilities", assert_code(caps, Code::Internal)),
        ("ControllerGetCapabilities", assert_code(h.rwo("vol-c", NODES[0]).await, Code::Internal)),
        ("Probe", assert_code(h.identity.probe(ProbeRequest {}).await, Code::Internal)),
    ] {
        let message = status.message();
        assert!(message.contains(&upstream) && message.contains(what), "names the upstream and {what}: {message}");
        assert!(message.contains("not a valid"), "says what is wrong: {message}");
    }
    assert!(h.holders("vol-c").is_empty(), "the engine decided nothing");
    assert_eq!(h.driver.volume_count(), 0, "and recorded nothing");
}

#[tokio::test]
async fn an_unreadable_publish_answer_is_an_internal_error_and_the_engine_keeps_the_node_it_may_have() {
    use controller_service_capability::rpc::Type;
    let caps = ControllerGetCapabilitiesResponse { capabilities: vec![controller_cap(Type::PublishUnpublishVolume)] };
    let answers = HashMap::from([
        (CAPABILITIES_PATH, Bytes::from(caps.encode_to_vec())),
        ("/csi.v1.Controller/ControllerPublishVolume", Bytes::from_static(GARBAGE)),
    ]);
    let (mut h, _served) = start_raw(answers).await;
    let status = assert_code(h.rwo("vol-g", NODES[0]).await, Code::Internal);
    assert!(status.message().contains("ControllerPublishVolume"), "{}", status.message());
    assert!(status.message().contains(&h.upstream_socket.display().to_string()), "{}", status.message());
    assert_eq!(h.holders("vol-g"), [NODES[0]], "the upstream answered, so it may have attached: the node is kept");
    assert_code(h.rwo("vol-g", NODES[1]).await, Code::FailedPrecondition);
}

#[tokio::test]
async fn unpublish_goes_to_the_upstream_first_and_a_failure_leaves_the_engine_attached() {
    let (mut h, up, _served) = start().await;
    h.rwo("vol-d", NODES[0]).await.unwrap();
    up.set(|s| s.unpublish_fails = Some((Code::Internal, "detach failed".into())));
    let failed = assert_code(h.unpublish("vol-d", NODES[0]).await, Code::Internal);
    assert_eq!(failed.message(), "detach failed");
    assert_eq!(h.holders("vol-d"), [NODES[0]], "never freed while the upstream may still have it");
    up.set(|s| s.unpublish_fails = None);
    h.unpublish("vol-d", NODES[0]).await.unwrap();
    assert!(h.holders("vol-d").is_empty());
}

#[tokio::test]
async fn delete_is_refused_while_attached_and_forgets_the_volume_only_after_the_upstream_deleted_it() {
    let (mut h, up, _served) = start().await;
    h.rwo("vol-x", NODES[0]).await.unwrap();
    let delete = |id: &str| DeleteVolumeRequest { volume_id: id.into(), ..Default::default() };
    assert_code(h.controller.delete_volume(delete("vol-x")).await, Code::FailedPrecondition);
    assert!(up.of("DeleteVolume").is_empty(), "not forwarded");
    h.unpublish("vol-x", NODES[0]).await.unwrap();
    up.set(|s| s.delete_fails = Some((Code::Internal, "busy".into())));
    assert_code(h.controller.delete_volume(delete("vol-x")).await, Code::Internal);
    assert_eq!(h.driver.volume_count(), 1, "kept while the upstream has not deleted it");
    up.set(|s| s.delete_fails = None);
    h.controller.delete_volume(delete("vol-x")).await.unwrap();
    assert_eq!(h.driver.volume_count(), 0, "forgotten after the upstream deleted it");
}

#[tokio::test]
async fn without_an_upstream_attach_step_tether_arbitrates_and_advertises_it() {
    use controller_service_capability::rpc::Type;
    let (mut h, up, _served) = start().await;
    up.set(|s| s.attaches = false);
    let caps =
        h.controller.controller_get_capabilities(ControllerGetCapabilitiesRequest {}).await.unwrap().into_inner();
    let types: Vec<i32> = caps
        .capabilities
        .iter()
        .filter_map(|c| c.r#type.map(|controller_service_capability::Type::Rpc(r)| r.r#type))
        .collect();
    assert_eq!(types, [i32::from(Type::CreateDeleteVolume), i32::from(Type::PublishUnpublishVolume)]);
    let out = h.rwo("vol-a", NODES[0]).await.unwrap();
    assert!(out.publish_context.contains_key("tether.io/epoch"));
    assert_code(h.rwo("vol-a", NODES[1]).await, Code::FailedPrecondition);
    h.unpublish("vol-a", NODES[0]).await.unwrap();
    assert!(up.of(PUBLISH).is_empty() && up.of(UNPUBLISH).is_empty(), "nothing to forward to");
}

#[tokio::test]
async fn identity_is_the_upstreams_with_tethers_readiness_and_controller_service() {
    let (mut h, up, _served) = start().await;
    let info = h.identity.get_plugin_info(GetPluginInfoRequest {}).await.unwrap().into_inner();
    assert_eq!((info.name.as_str(), info.vendor_version.as_str()), (proxy_support::UPSTREAM_NAME, "9.9.9"));
    let caps = h.identity.get_plugin_capabilities(GetPluginCapabilitiesRequest {}).await.unwrap().into_inner();
    let kinds: Vec<_> = caps.capabilities.iter().map(|c| c.r#type.unwrap()).collect();
    assert!(matches!(kinds[0], plugin_capability::Type::VolumeExpansion(_)), "the upstream's first: {kinds:?}");
    assert!(
        matches!(&kinds[1], plugin_capability::Type::Service(s) if s.r#type == 1),
        "controller service added: {kinds:?}"
    );
    let ready = |h: &mut ProxyHarness| {
        let mut id = h.identity.clone();
        async move { id.probe(ProbeRequest {}).await.unwrap().into_inner().ready }
    };
    assert_eq!(ready(&mut h).await, Some(true));
    up.set(|s| s.ready = None);
    assert_eq!(ready(&mut h).await, Some(true), "an upstream leaving ready out is ready");
    up.set(|s| s.ready = Some(false));
    assert_eq!(ready(&mut h).await, Some(false));
    up.set(|s| s.ready = Some(true));
    h.driver.begin_shutdown();
    assert_eq!(ready(&mut h).await, Some(false), "not ready while Tether is not");
}

#[tokio::test]
async fn what_tether_does_not_decide_passes_through_unchanged() {
    let (mut h, up, _served) = start().await;
    let req = CreateVolumeRequest { name: "pvc-1".into(), ..Default::default() };
    let created = h.controller.create_volume(req).await.unwrap().into_inner();
    assert_eq!(created.volume.unwrap().volume_id, "up-pvc-1");
    assert_eq!(up.of("CreateVolume").len(), 1);
    let capacity = h.controller.get_capacity(GetCapacityRequest::default()).await.unwrap().into_inner();
    assert_eq!(capacity.available_capacity, 42);
    let unimplemented = h.controller.validate_volume_capabilities(ValidateVolumeCapabilitiesRequest::default()).await;
    let status = assert_code(unimplemented, Code::Unimplemented);
    assert_eq!(status.message(), "not in this upstream", "the upstream's own status");
    assert_eq!(h.driver.volume_count(), 0, "a created volume enters the catalogue only when published");
}
