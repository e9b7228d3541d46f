//! A standby replica's CSI socket. While another replica holds the Lease, Identity answers
//! (`GetPluginInfo`, `GetPluginCapabilities`, Probe `ready: false`), so the sidecars beside it
//! connect, learn the driver's name and wait in their probe loop instead of exiting into the
//! kubelet's restart back-off; every other call is UNAVAILABLE, saying why. Once the replica
//! leads, the same socket and the same connections serve the driver's services. In proxy mode
//! (`--upstream`) the name and plugin capabilities are the upstream's, asked of it at each
//! call, as the leader's proxy would answer them; an upstream that cannot answer fails the call
//! with its code, naming the upstream.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use prost::Message;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::Routes;
use tonic::transport::server::Router;
use tonic::{Request, Response, Status};
use tower::ServiceExt;

use crate::csi::identity_server::{Identity, IdentityServer};
use crate::csi::{
    GetPluginCapabilitiesRequest, GetPluginCapabilitiesResponse, GetPluginInfoRequest, GetPluginInfoResponse,
    ProbeRequest, ProbeResponse,
};
use crate::proxy::{self, Upstream, PLUGIN_INFO};
use crate::service::{plugin_capabilities, plugin_info};

/// The socket's services: a standby's until [`Gate::lead`] hands them the driver's.
#[derive(Clone)]
pub struct Gate(Arc<Inner>);

struct Inner {
    /// The driver's services, once this replica leads.
    leading: OnceLock<Routes>,
    /// Identity as a standby.
    standby: Routes,
    /// Why a call that needs the leader is refused.
    refusal: String,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("leading", &self.is_leading()).finish_non_exhaustive()
    }
}

impl Gate {
    /// A standby of driver `driver_name` waiting for Lease `lease`.
    pub fn standby(driver_name: &str, lease: &str) -> Self {
        Self::with(StandbyIdentity::Own(driver_name.to_owned()), lease)
    }

    /// A standby in proxy mode, in front of `upstream`, waiting for Lease `lease`.
    pub fn standby_in_front_of(upstream: Upstream, lease: &str) -> Self {
        Self::with(StandbyIdentity::Upstream(upstream), lease)
    }

    fn with(identity: StandbyIdentity, lease: &str) -> Self {
        Self(Arc::new(Inner {
            leading: OnceLock::new(),
            standby: Routes::new(IdentityServer::new(identity)),
            refusal: format!(
                "this replica is a standby: another replica holds the Lease {lease:?} and serves; \
                 this one serves once it takes the Lease"
            ),
        }))
    }

    /// From now on every call goes to `routes` (the driver's services); a second call is ignored.
    pub fn lead(&self, routes: Routes) {
        let _ = self.0.leading.set(routes);
    }

    pub fn is_leading(&self) -> bool {
        self.0.leading.get().is_some()
    }

    /// The three CSI services behind the gate, with the server settings every endpoint shares.
    pub fn router(&self) -> Router {
        crate::server::builder()
            .add_service(Gated::<IdentityName>::new(self))
            .add_service(Gated::<ControllerName>::new(self))
            .add_service(Gated::<NodeName>::new(self))
    }

    /// One call: to the driver's services once leading, else the standby's answer.
    async fn call(self, identity: bool, request: http::Request<Body>) -> http::Response<Body> {
        let inner = &self.0;
        let routes = match inner.leading.get() {
            Some(leading) => leading.clone(),
            None if identity => inner.standby.clone(),
            None => return Status::unavailable(inner.refusal.clone()).into_http(),
        };
        match routes.oneshot(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// Identity of a replica that does not lead: its own driver's, or its upstream's.
enum StandbyIdentity {
    Own(String),
    Upstream(Upstream),
}

/// What the standby answers to `method` as its upstream does: `answer` (the upstream's reply)
/// read as `M`. A failure to ask or to read keeps its code and says why the upstream was asked.
async fn learned<M: prost::Message + Default>(
    upstream: &Upstream,
    method: &str,
    answer: impl Future<Output = Result<Bytes, Status>>,
) -> Result<Response<M>, Status> {
    let not_learned = |e: Status| {
        let why = format!("this standby answers {method} as its upstream does, and could not ask it: {}", e.message());
        Status::new(e.code(), why)
    };
    let answer = answer.await.map_err(not_learned)?;
    Ok(Response::new(upstream.read(method, &answer).map_err(|e| not_learned(e.into()))?))
}

#[tonic::async_trait]
impl Identity for StandbyIdentity {
    async fn get_plugin_info(
        &self,
        request: Request<GetPluginInfoRequest>,
    ) -> Result<Response<GetPluginInfoResponse>, Status> {
        let upstream = match self {
            Self::Own(name) => return Ok(Response::new(plugin_info(name))),
            Self::Upstream(upstream) => upstream,
        };
        let deadline = upstream.deadline_for(request.metadata());
        let body = request.into_inner().encode_to_vec().into();
        learned(upstream, "GetPluginInfo", async {
            upstream.call(PLUGIN_INFO, body, deadline).await.map_err(Status::from)
        })
        .await
    }

    async fn get_plugin_capabilities(
        &self,
        request: Request<GetPluginCapabilitiesRequest>,
    ) -> Result<Response<GetPluginCapabilitiesResponse>, Status> {
        let upstream = match self {
            Self::Own(_) => return Ok(Response::new(plugin_capabilities())),
            Self::Upstream(upstream) => upstream,
        };
        let deadline = upstream.deadline_for(request.metadata());
        let body = request.into_inner().encode_to_vec().into();
        learned(upstream, "GetPluginCapabilities", proxy::plugin_capabilities(upstream, body, deadline)).await
    }

    async fn probe(&self, _: Request<ProbeRequest>) -> Result<Response<ProbeResponse>, Status> {
        Ok(Response::new(ProbeResponse { ready: Some(false) }))
    }
}

/// A CSI service name, routed to the gate.
trait CsiName: Send + Sync + 'static {
    const NAME: &'static str;
}

struct IdentityName;
struct ControllerName;
struct NodeName;

impl CsiName for IdentityName {
    const NAME: &'static str = "csi.v1.Identity";
}
impl CsiName for ControllerName {
    const NAME: &'static str = "csi.v1.Controller";
}
impl CsiName for NodeName {
    const NAME: &'static str = "csi.v1.Node";
}

/// Every method of service `N`, through the gate.
struct Gated<N> {
    gate: Gate,
    name: std::marker::PhantomData<fn() -> N>,
}

impl<N> Gated<N> {
    fn new(gate: &Gate) -> Self {
        Self { gate: gate.clone(), name: std::marker::PhantomData }
    }
}

impl<N> Clone for Gated<N> {
    fn clone(&self) -> Self {
        Self::new(&self.gate)
    }
}

impl<N: CsiName> NamedService for Gated<N> {
    const NAME: &'static str = N::NAME;
}

impl<N: CsiName> tower::Service<http::Request<Body>> for Gated<N> {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let gate = self.gate.clone();
        Box::pin(async move { Ok(gate.call(N::NAME == IdentityName::NAME, request).await) })
    }
}
