//! Identity through the proxy: the upstream's name and info as they are; Probe ready only if
//! Tether and the upstream both are; capabilities the upstream's, plus the controller service
//! and `PUBLISH_UNPUBLISH_VOLUME`, which Tether serves even for an upstream without them.

use bytes::Bytes;
use prost::Message;
use tokio::time::Instant;
use tonic::{Code, Status};

use super::upstream::{Upstream, UpstreamError};
use super::{wire, Proxy};
use crate::csi::{
    controller_service_capability, plugin_capability, ControllerGetCapabilitiesResponse, ControllerServiceCapability,
    GetPluginCapabilitiesResponse, PluginCapability, ProbeResponse,
};
use crate::service::controller_cap;

pub const PLUGIN_INFO: &str = "/csi.v1.Identity/GetPluginInfo";
pub const PROBE: &str = "/csi.v1.Identity/Probe";
pub const PLUGIN_CAPABILITIES: &str = "/csi.v1.Identity/GetPluginCapabilities";
pub const CONTROLLER_CAPABILITIES: &str = "/csi.v1.Controller/ControllerGetCapabilities";

/// `capabilities` is field 1 of both capability responses.
const CAPABILITIES_FIELD: u32 = 1;

fn publish_unpublish() -> ControllerServiceCapability {
    controller_cap(controller_service_capability::rpc::Type::PublishUnpublishVolume)
}

fn is_publish_unpublish(cap: ControllerServiceCapability) -> bool {
    matches!(cap.r#type, Some(controller_service_capability::Type::Rpc(rpc))
        if rpc.r#type == i32::from(controller_service_capability::rpc::Type::PublishUnpublishVolume))
}

impl Proxy {
    /// Ready only if Tether is and the upstream is (an upstream that leaves `ready` out is
    /// ready, as the specification says); an upstream that fails the probe fails it here.
    pub(super) async fn probe(&self, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        let answer = self.forward(PROBE, body, deadline).await?;
        let upstream: ProbeResponse = self.upstream.read("Probe", &answer)?;
        let ready = self.driver.is_ready() && upstream.ready.unwrap_or(true);
        Ok(ProbeResponse { ready: Some(ready) }.encode_to_vec().into())
    }

    /// The upstream's controller capabilities (none if it has no controller service) and whether
    /// they include `PUBLISH_UNPUBLISH_VOLUME`.
    async fn upstream_controller_capabilities(&self, body: Bytes, deadline: Instant) -> Result<(Bytes, bool), Status> {
        let answer = match self.upstream.call(CONTROLLER_CAPABILITIES, body, deadline).await {
            Ok(answer) => answer,
            Err(UpstreamError::Answered(s)) if s.code() == Code::Unimplemented => Bytes::new(),
            Err(e) => return Err(e.into()),
        };
        let caps: ControllerGetCapabilitiesResponse = self.upstream.read("ControllerGetCapabilities", &answer)?;
        let has = caps.capabilities.iter().any(|c| is_publish_unpublish(*c));
        Ok((answer, has))
    }

    /// The upstream's controller capabilities, plus `PUBLISH_UNPUBLISH_VOLUME` if it lacks it.
    pub(super) async fn controller_capabilities(&self, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        let (answer, has) = self.upstream_controller_capabilities(body, deadline).await?;
        let _ = self.attaches.set(has);
        if has {
            return Ok(answer);
        }
        Ok(wire::append_message(&answer, CAPABILITIES_FIELD, &publish_unpublish()))
    }

    /// Whether the upstream attaches (has `PUBLISH_UNPUBLISH_VOLUME`), asked once and kept.
    pub(super) async fn upstream_attaches(&self, deadline: Instant) -> Result<bool, Status> {
        let ask = || async { Ok(self.upstream_controller_capabilities(Bytes::new(), deadline).await?.1) };
        self.attaches.get_or_try_init(ask).await.copied()
    }
}

/// `upstream`'s plugin capabilities, plus `CONTROLLER_SERVICE` if it has none (a standby in
/// proxy mode answers the same: `k8s::standby`).
pub async fn plugin_capabilities(upstream: &Upstream, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
    let answer = upstream.call(PLUGIN_CAPABILITIES, body, deadline).await?;
    let caps: GetPluginCapabilitiesResponse = upstream.read("GetPluginCapabilities", &answer)?;
    let controller = i32::from(plugin_capability::service::Type::ControllerService);
    let has = caps
        .capabilities
        .iter()
        .any(|c| matches!(&c.r#type, Some(plugin_capability::Type::Service(s)) if s.r#type == controller));
    if has {
        return Ok(answer);
    }
    let service = plugin_capability::Service { r#type: controller };
    let cap = PluginCapability { r#type: Some(plugin_capability::Type::Service(service)) };
    Ok(wire::append_message(&answer, CAPABILITIES_FIELD, &cap))
}
