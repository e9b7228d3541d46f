//! The metrics endpoint: `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (the driver serves calls; 503 while a standby, while rebuilding state, and once
//! shutdown began).

use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::driver::Driver;

fn reply(status: StatusCode, content_type: &str, body: String) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .expect("static headers are valid")
}

/// The driver once it exists: a standby replica serves health before it leads and opens one.
pub type DriverSlot = Arc<OnceLock<Arc<Driver>>>;

/// A slot already holding `driver`.
pub fn slot(driver: Arc<Driver>) -> DriverSlot {
    Arc::new(OnceLock::from(driver))
}

fn readiness(driver: Option<&Arc<Driver>>) -> (StatusCode, &'static str) {
    match driver {
        None => (StatusCode::SERVICE_UNAVAILABLE, "standby: another replica leads\n"),
        Some(d) if d.is_ready() => (StatusCode::OK, "ready\n"),
        Some(d) if d.is_rebuilding() => {
            (StatusCode::SERVICE_UNAVAILABLE, "rebuilding attachment state from Kubernetes\n")
        }
        Some(_) => (StatusCode::SERVICE_UNAVAILABLE, "shutting down\n"),
    }
}

fn handle(driver: Option<&Arc<Driver>>, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET is served\n".into());
    }
    match req.uri().path() {
        "/metrics" => {
            let body = driver.map(|d| d.metrics.render()).unwrap_or_default();
            reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", body)
        }
        "/healthz" => reply(StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" => {
            let (status, text) = readiness(driver);
            reply(status, TEXT, text.into())
        }
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found; try /metrics, /healthz or /readyz\n".into()),
    }
}

/// Serves the endpoint on `listener` forever (the task is dropped at shutdown).
pub async fn serve_metrics(listener: TcpListener, driver: DriverSlot) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                continue;
            }
        };
        let driver = Arc::clone(&driver);
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let resp = handle(driver.get(), &req);
                async move { Ok::<_, Infallible>(resp) }
            });
            if let Err(e) =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await
            {
                tracing::debug!(error = %e, "metrics connection ended with an error");
            }
        });
    }
}
