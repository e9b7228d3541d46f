//! The tonic services: each RPC opens a span with its volume and node, runs the driver's
//! synchronous operation on the blocking pool (it may fsync or mount), times it, and maps
//! its refusal to a status once.

use std::sync::Arc;
use std::time::Instant;

use tether_core::Shown;
use tonic::{Request, Response, Status};
use tracing::instrument;

use crate::csi::controller_server::Controller;
use crate::csi::identity_server::Identity;
use crate::csi::node_server::Node;
use crate::csi::{
    controller_service_capability, node_service_capability, plugin_capability, ControllerGetCapabilitiesRequest,
    ControllerGetCapabilitiesResponse, ControllerPublishVolumeRequest, ControllerPublishVolumeResponse,
    ControllerServiceCapability, ControllerUnpublishVolumeRequest, ControllerUnpublishVolumeResponse,
    CreateVolumeRequest, CreateVolumeResponse, DeleteVolumeRequest, DeleteVolumeResponse, GetCapacityRequest,
    GetCapacityResponse, GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginInfoRequest,
    GetPluginInfoResponse, ListVolumesRequest, ListVolumesResponse, NodeGetCapabilitiesRequest,
    NodeGetCapabilitiesResponse, NodeGetInfoRequest, NodeGetInfoResponse, NodePublishVolumeRequest,
    NodePublishVolumeResponse, NodeServiceCapability, NodeStageVolumeRequest, NodeStageVolumeResponse,
    NodeUnpublishVolumeRequest, NodeUnpublishVolumeResponse, NodeUnstageVolumeRequest, NodeUnstageVolumeResponse,
    PluginCapability, ProbeRequest, ProbeResponse, ValidateVolumeCapabilitiesRequest,
    ValidateVolumeCapabilitiesResponse,
};
use crate::driver::Driver;
use crate::status::DriverError;

/// Identity, Controller and Node over one driver.
#[derive(Debug, Clone)]
pub struct CsiService {
    driver: Arc<Driver>,
}

impl CsiService {
    pub fn new(driver: Arc<Driver>) -> Self {
        Self { driver }
    }

    /// Runs `op` as a driver step (`step::run`), observing its duration under `operation` if
    /// given.
    async fn run<T, F>(&self, operation: Option<&'static str>, op: F) -> Result<Response<T>, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Driver) -> Result<T, DriverError> + Send + 'static,
    {
        let _running = self.driver.call();
        let start = Instant::now();
        let result = crate::step::run(&self.driver, op).await;
        if let Some(name) = operation {
            self.driver.metrics.observe_operation(name, start.elapsed().as_secs_f64());
        }
        result.map(Response::new)
    }
}

/// A controller capability of RPC type `t`.
pub fn controller_cap(t: controller_service_capability::rpc::Type) -> ControllerServiceCapability {
    let rpc = controller_service_capability::Rpc { r#type: t.into() };
    ControllerServiceCapability { r#type: Some(controller_service_capability::Type::Rpc(rpc)) }
}

/// A node capability of RPC type `t`.
pub fn node_cap(t: node_service_capability::rpc::Type) -> NodeServiceCapability {
    let rpc = node_service_capability::Rpc { r#type: t.into() };
    NodeServiceCapability { r#type: Some(node_service_capability::Type::Rpc(rpc)) }
}

/// `GetPluginInfo`'s answer for driver `name`, the same from a leader and a standby.
pub fn plugin_info(name: &str) -> GetPluginInfoResponse {
    GetPluginInfoResponse {
        name: name.to_owned(),
        vendor_version: env!("CARGO_PKG_VERSION").to_owned(),
        manifest: std::collections::HashMap::new(),
    }
}

/// `GetPluginCapabilities`' answer, the same from a leader and a standby.
pub fn plugin_capabilities() -> GetPluginCapabilitiesResponse {
    let service = plugin_capability::Service { r#type: plugin_capability::service::Type::ControllerService.into() };
    let cap = PluginCapability { r#type: Some(plugin_capability::Type::Service(service)) };
    GetPluginCapabilitiesResponse { capabilities: vec![cap] }
}

#[tonic::async_trait]
impl Identity for CsiService {
    async fn get_plugin_info(
        &self,
        _: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        Ok(Response::new(plugin_info(&self.driver.settings.driver_name)))
    }

    async fn get_plugin_capabilities(
        &self,
        _: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        Ok(Response::new(plugin_capabilities()))
    }

    async fn probe(&self, _: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        Ok(Response::new(ProbeResponse { ready: Some(self.driver.is_ready()) }))
    }
}

#[tonic::async_trait]
impl Controller for CsiService {
    #[instrument(skip_all, fields(name = %Shown::id(&request.get_ref().name)))]
    async fn create_volume(
        &self,
        request: Request<CreateVolumeRequest>,
    ) -> Result<Response<CreateVolumeResponse>, Status> {
        let req = request.into_inner();
        self.run(Some("create_volume"), move |d| {
            d.create_volume(&req).map(|v| CreateVolumeResponse { volume: Some(v) })
        })
        .await
    }

    #[instrument(skip_all, fields(volume = %Shown::id(&request.get_ref().volume_id)))]
    async fn delete_volume(
        &self,
        request: Request<DeleteVolumeRequest>,
    ) -> Result<Response<DeleteVolumeResponse>, Status> {
        let req = request.into_inner();
        self.run(Some("delete_volume"), move |d| d.delete_volume(&req).map(|()| DeleteVolumeResponse {})).await
    }

    #[instrument(skip_all, fields(volume = %Shown::id(&request.get_ref().volume_id), node = %Shown::id(&request.get_ref().node_id)))]
    async fn controller_publish_volume(
        &self,
        request: Request<ControllerPublishVolumeRequest>,
    ) -> Result<Response<ControllerPublishVolumeResponse>, Status> {
        let req = request.into_inner();
        self.run(Some("controller_publish"), move |d| d.controller_publish(&req)).await
    }

    #[instrument(skip_all, fields(volume = %Shown::id(&request.get_ref().volume_id), node = %Shown::id(&request.get_ref().node_id)))]
    async fn controller_unpublish_volume(
        &self,
        request: Request<ControllerUnpublishVolumeRequest>,
    ) -> Result<Response<ControllerUnpublishVolumeResponse>, Status> {
        let req = request.into_inner();
        self.run(Some("controller_unpublish"), move |d| {
            d.controller_unpublish(&req).map(|()| ControllerUnpublishVolumeResponse {})
        })
        .await
    }

    #[instrument(skip_all, fields(volume = %Shown::id(&request.get_ref().volume_id)))]
    async fn validate_volume_capabilities(
        &self,
        request: Request<ValidateVolumeCapabilitiesRequest>,
    ) -> Result<Response<ValidateVolumeCapabilitiesResponse>, Status> {
        let req = request.into_inner();
        self.run(None, move |d| d.validate_capabilities(&req)).await
    }

    #[instrument(skip_all)]
    async fn list_volumes(
        &self,
        request: Request<ListVolumesRequest>,
    ) -> Result<Response<ListVolumesResponse>, Status> {
        let req = request.into_inner();
        self.run(None, move |d| d.list_volumes(&req)).await
    }

    async fn get_capacity(&self, _: Request<GetCapacityRequest>) -> Result<Response<GetCapacityResponse>, Status> {
        Ok(Response::new(self.driver.capacity()))
    }

    async fn controller_get_capabilities(
        &self,
        _: Request<ControllerGetCapabilitiesRequest>,
    ) -> Result<Response<ControllerGetCapabilitiesResponse>, Status> {
        use controller_service_capability::rpc::Type;
        let capabilities = [
            Type::CreateDeleteVolume,
            Type::PublishUnpublishVolume,
            Type::ListVolumes,
            Type::ListVolumesPublishedNodes,
            Type::GetCapacity,
            Type::PublishReadonly,
        ]
        .into_iter()
        .map(controller_cap)
        .collect();
        Ok(Response::new(ControllerGetCapabilitiesResponse { capabilities }))
    }
}

#[tonic::async_trait]
impl Node for CsiService {
    #[instrument(skip_all, fields(volume = %Shown::id(&request.get_ref().volume_id), node = %self.driver.settings.node_id))]
    async fn node_stage_volume(
        &self,
        request: Request<NodeStageVolumeRequest>,
    ) -> Result<Response<NodeStageVolumeResponse>, Status> {
        let req = request.into_inner();
        self.run(Some("node_stage"), move |d| d.node_stage(&req).map(|()| NodeStageVolumeResponse {})).await
    }

    #[instrument(skip_all, fields(volume = %Shown::id(&request.get_ref().volume_id), node = %self.driver.settings.node_id))]
    async fn node_unstage_volume(
        &self,
        request: Request<NodeUnstageVolumeRequest>,
    ) -> Result<Response<NodeUnstageVolumeResponse>, Status> {
        let req = request.into_inner();
        self.run(Some("node_unstage"), move |d| {
            d.node_unstage(&req.volume_id, &req.staging_target_path).map(|()| NodeUnstageVolumeResponse {})
        })
        .await
    }

    #[instrument(skip_all, fields(volume = %Shown::id(&request.get_ref().volume_id), node = %self.driver.settings.node_id))]
    async fn node_publish_volume(
        &self,
        request: Request<NodePublishVolumeRequest>,
    ) -> Result<Response<NodePublishVolumeResponse>, Status> {
        let req = request.into_inner();
        self.run(Some("node_publish"), move |d| d.node_publish(&req).map(|()| NodePublishVolumeResponse {})).await
    }

    #[instrument(skip_all, fields(volume = %Shown::id(&request.get_ref().volume_id), node = %self.driver.settings.node_id))]
    async fn node_unpublish_volume(
        &self,
        request: Request<NodeUnpublishVolumeRequest>,
    ) -> Result<Response<NodeUnpublishVolumeResponse>, Status> {
        let req = request.into_inner();
        self.run(Some("node_unpublish"), move |d| {
            d.node_unpublish(&req.volume_id, &req.target_path).map(|()| NodeUnpublishVolumeResponse {})
        })
        .await
    }

    async fn node_get_capabilities(
        &self,
        _: Request<NodeGetCapabilitiesRequest>,
    ) -> Result<Response<NodeGetCapabilitiesResponse>, Status> {
        let cap = node_cap(node_service_capability::rpc::Type::StageUnstageVolume);
        Ok(Response::new(NodeGetCapabilitiesResponse { capabilities: vec![cap] }))
    }

    async fn node_get_info(&self, _: Request<NodeGetInfoRequest>) -> Result<Response<NodeGetInfoResponse>, Status> {
        Ok(Response::new(NodeGetInfoResponse {
            node_id: self.driver.settings.node_id.clone(),
            max_volumes_per_node: 0,
            accessible_topology: None,
        }))
    }
}
