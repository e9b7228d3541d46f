//! The node paths Tether decides: `NodeStageVolume` and `NodePublishVolume` are checked against
//! the volume's latest applied fence first (the driver's own session check), then forwarded with
//! the upstream's context keys only: Tether's (`tether.io/*`) are removed from the bytes.

use bytes::Bytes;
use tether_core::check_volume_id;
use tokio::time::Instant;
use tonic::Status;

use super::{decode, wire, Proxy, TETHER_PREFIX};
use crate::csi::{NodePublishVolumeRequest, NodeStageVolumeRequest};
use crate::status::DriverError;

pub const STAGE: &str = "/csi.v1.Node/NodeStageVolume";
pub const PUBLISH: &str = "/csi.v1.Node/NodePublishVolume";

/// `publish_context` is field 2 of both requests.
const CONTEXT_FIELD: u32 = 2;

impl Proxy {
    pub(super) async fn stage(&self, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        let req: NodeStageVolumeRequest = decode(&body, "NodeStageVolumeRequest")?;
        self.checked_forward(STAGE, "node_stage", body, req.volume_id, req.publish_context, deadline).await
    }

    pub(super) async fn node_publish(&self, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        let req: NodePublishVolumeRequest = decode(&body, "NodePublishVolumeRequest")?;
        self.checked_forward(PUBLISH, "node_publish", body, req.volume_id, req.publish_context, deadline).await
    }

    async fn checked_forward(
        &self,
        path: &str,
        operation: &'static str,
        body: Bytes,
        volume: String,
        context: std::collections::HashMap<String, String>,
        deadline: Instant,
    ) -> Result<Bytes, Status> {
        let started = std::time::Instant::now();
        check_volume_id(&volume).map_err(|e| Status::from(DriverError::from(e)))?;
        self.blocking(move |d| d.fence(&volume, &context)).await?;
        let stripped = wire::strip_map(&body, CONTEXT_FIELD, |k| k.starts_with(TETHER_PREFIX))
            .map_err(|e| Status::invalid_argument(format!("the request's publish_context is malformed: {e}")))?;
        let answer = self.forward(path, stripped, deadline).await?;
        self.driver.metrics.observe_operation(operation, started.elapsed().as_secs_f64());
        Ok(answer)
    }
}
