//! The metrics endpoint: `/metrics` (Prometheus text), `/healthz` (the process answers) and
//! `/readyz` (the driver serves calls; 503 once shutdown began).

use std::convert::Infallible;
use std::sync::Arc;

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

fn handle(driver: &Driver, req: &Request<hyper::body::Incoming>) -> Response<Full<Bytes>> {
    const TEXT: &str = "text/plain; charset=utf-8";
    if req.method() != Method::GET {
        return reply(StatusCode::METHOD_NOT_ALLOWED, TEXT, "only GET is served\n".into());
    }
    match req.uri().path() {
        "/metrics" => reply(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", driver.metrics.render()),
        "/healthz" => reply(StatusCode::OK, TEXT, "ok\n".into()),
        "/readyz" if driver.is_ready() => reply(StatusCode::OK, TEXT, "ready\n".into()),
        "/readyz" => reply(StatusCode::SERVICE_UNAVAILABLE, TEXT, "shutting down\n".into()),
        _ => reply(StatusCode::NOT_FOUND, TEXT, "not found; try /metrics, /healthz or /readyz\n".into()),
    }
}

/// Serves the endpoint on `listener` forever (the task is dropped at shutdown).
pub async fn serve_metrics(listener: TcpListener, driver: Arc<Driver>) {
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
                let resp = handle(&driver, &req);
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
