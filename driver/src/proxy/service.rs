//! The gRPC side of the proxy: one service per CSI service name, each taking any method as
//! bytes (so RPCs this build's proto lacks, like snapshots or expansion, pass through too) and
//! handing it to [`Proxy::handle`].

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use tonic::body::Body;
use tonic::server::{NamedService, UnaryService};
use tonic::service::Routes;
use tonic::transport::server::Router;

use super::raw::RawCodec;
use super::Proxy;

/// One call on its way through the proxy.
struct Call {
    proxy: Arc<Proxy>,
    path: String,
}

impl UnaryService<Bytes> for Call {
    type Response = Bytes;
    type Future = Pin<Box<dyn Future<Output = Result<tonic::Response<Bytes>, tonic::Status>> + Send>>;

    fn call(&mut self, request: tonic::Request<Bytes>) -> Self::Future {
        let (proxy, path) = (Arc::clone(&self.proxy), std::mem::take(&mut self.path));
        Box::pin(async move {
            let deadline = proxy.upstream.deadline_for(request.metadata());
            proxy.handle(&path, request.into_inner(), deadline).await.map(tonic::Response::new)
        })
    }
}

macro_rules! csi_service {
    ($name:ident, $full:literal) => {
        /// Every method of this CSI service, through the proxy.
        #[derive(Debug, Clone)]
        pub struct $name(Arc<Proxy>);

        impl NamedService for $name {
            const NAME: &'static str = $full;
        }

        impl tower::Service<http::Request<Body>> for $name {
            type Response = http::Response<Body>;
            type Error = Infallible;
            type Future = Pin<Box<dyn Future<Output = Result<http::Response<Body>, Infallible>> + Send>>;

            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
                Poll::Ready(Ok(()))
            }

            fn call(&mut self, req: http::Request<Body>) -> Self::Future {
                let call = Call { proxy: Arc::clone(&self.0), path: req.uri().path().to_owned() };
                Box::pin(async move { Ok(tonic::server::Grpc::new(RawCodec).unary(call, req).await) })
            }
        }
    };
}

csi_service!(IdentityProxy, "csi.v1.Identity");
csi_service!(ControllerProxy, "csi.v1.Controller");
csi_service!(NodeProxy, "csi.v1.Node");

/// The three CSI services through `proxy`.
pub fn router(proxy: Arc<Proxy>) -> Router {
    crate::server::builder().add_routes(routes(proxy))
}

/// The three CSI services through `proxy`, as a service of their own (a standby's socket hands
/// its calls to them once it leads: `k8s::standby`).
pub fn routes(proxy: Arc<Proxy>) -> Routes {
    Routes::new(IdentityProxy(Arc::clone(&proxy)))
        .add_service(ControllerProxy(Arc::clone(&proxy)))
        .add_service(NodeProxy(proxy))
}
