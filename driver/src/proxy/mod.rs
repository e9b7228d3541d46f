//! Proxy mode (`--upstream`): Tether serves the CO and forwards to a CSI driver the cluster
//! already runs. What Tether does not decide is forwarded as bytes (codes, messages and every
//! field unchanged); what it decides (publish, unpublish, delete's `forget`, the node's session
//! check, probe and capabilities) is decided by the engine first (DESIGN.md, "In front of
//! another driver").
//!
//! One idea per file: `raw` (the byte codec), `wire` (editing a message's bytes), `deadline`,
//! `upstream` (the client and its failures), `volumes` (how a proxied volume is recorded),
//! `ledger` (the nodes the upstream may have attached, kept in that record), `identity`, `attach` (controller paths), `session` (node paths), `service` (the gRPC
//! services and routing).

mod attach;
pub mod deadline;
mod identity;
mod ledger;
pub mod raw;
mod service;
mod session;
pub mod upstream;
pub mod volumes;
pub mod wire;

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::OnceCell;
use tokio::time::Instant;
use tonic::Status;

use crate::driver::Driver;
use crate::inflight::InFlight;
use crate::status::DriverError;
pub use identity::{plugin_capabilities, PLUGIN_INFO};
pub use ledger::LEDGER_PARAM;
pub use service::{router, routes};
pub use upstream::{Upstream, UpstreamError};

/// Prefix of every key Tether adds to a context: an upstream may not use it.
pub const TETHER_PREFIX: &str = "tether.io/";

/// Tether in front of an upstream driver.
#[derive(Debug)]
pub struct Proxy {
    driver: Arc<Driver>,
    upstream: Upstream,
    /// One proxied operation per volume at a time, from the engine's decision to the upstream's
    /// answer: a second one is ABORTED, so an unpublish can never slip between a publish's
    /// engine step and its forward.
    busy: InFlight,
    /// Whether the upstream has `PUBLISH_UNPUBLISH_VOLUME`, asked once.
    attaches: OnceCell<bool>,
}

impl Proxy {
    pub fn new(driver: Arc<Driver>, upstream: Upstream) -> Self {
        Self { driver, upstream, busy: InFlight::default(), attaches: OnceCell::new() }
    }

    pub fn driver(&self) -> &Arc<Driver> {
        &self.driver
    }

    pub fn upstream(&self) -> &Upstream {
        &self.upstream
    }

    /// Runs a driver step (it may wait for a store commit): see [`crate::step::run`].
    async fn blocking<T, F>(&self, op: F) -> Result<T, Status>
    where
        T: Send + 'static,
        F: FnOnce(&Driver) -> Result<T, DriverError> + Send + 'static,
    {
        crate::step::run(&self.driver, op).await
    }

    /// Forwards `body` to `path` unchanged and returns the upstream's answer unchanged.
    async fn forward(&self, path: &str, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        self.upstream.call(path, body, deadline).await.map_err(Status::from)
    }

    /// Routes one call: the paths Tether decides, and everything else to the upstream.
    async fn handle(&self, path: &str, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        let _running = self.driver.call();
        match path {
            identity::PROBE => self.probe(body, deadline).await,
            identity::PLUGIN_CAPABILITIES => identity::plugin_capabilities(&self.upstream, body, deadline).await,
            identity::CONTROLLER_CAPABILITIES => self.controller_capabilities(body, deadline).await,
            attach::PUBLISH => self.publish(body, deadline).await,
            attach::UNPUBLISH => self.unpublish(body, deadline).await,
            attach::DELETE => self.delete(body, deadline).await,
            session::STAGE => self.stage(body, deadline).await,
            session::PUBLISH => self.node_publish(body, deadline).await,
            _ => self.forward(path, body, deadline).await,
        }
    }
}

/// The request `body` as `M`, or `INVALID_ARGUMENT` naming what it should have been.
fn decode<M: prost::Message + Default>(body: &Bytes, what: &str) -> Result<M, Status> {
    M::decode(body.clone()).map_err(|e| Status::invalid_argument(format!("the request is not a valid {what}: {e}")))
}
