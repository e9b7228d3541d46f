//! The connection to the upstream driver: one lazily connected channel to its Unix socket,
//! unary calls with a deadline, retried while the upstream cannot be reached (a restart), and
//! the one mapping of an upstream failure to a status.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::raw::RawCodec;

/// The first pause before calling an upstream that could not be reached again; it doubles up to
/// [`MAX_BACKOFF`], within the call's deadline.
const FIRST_BACKOFF: Duration = Duration::from_millis(20);
const MAX_BACKOFF: Duration = Duration::from_millis(500);

/// Why a forwarded call failed.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    /// The upstream answered with this status: it passes through unchanged.
    #[error("{}", .0.message())]
    Answered(Status),
    #[error("upstream driver {target} could not be reached for {method}: {reason}; check that it runs and serves that socket")]
    Unreachable { target: String, method: String, reason: String },
    #[error("upstream driver {target} did not answer {method} within the call's deadline ({waited:?} after it was forwarded)")]
    Deadline { target: String, method: String, waited: Duration },
    /// The upstream answered something Tether must not pass on.
    #[error("upstream driver {target} answered {method} with {problem}")]
    Hostile { target: String, method: String, problem: String },
}

impl UpstreamError {
    /// Whether the upstream refused the call outright, so it did not act on it: a status that
    /// says the request itself cannot be served, never one that could hide a change made.
    pub fn is_refusal(&self) -> bool {
        let Self::Answered(s) = self else { return false };
        matches!(
            s.code(),
            Code::InvalidArgument
                | Code::NotFound
                | Code::AlreadyExists
                | Code::PermissionDenied
                | Code::FailedPrecondition
                | Code::ResourceExhausted
                | Code::OutOfRange
                | Code::Unimplemented
                | Code::Unauthenticated
        )
    }
}

impl From<UpstreamError> for Status {
    fn from(e: UpstreamError) -> Self {
        let code = match &e {
            UpstreamError::Answered(status) => return status.clone(),
            UpstreamError::Unreachable { .. } => Code::Unavailable,
            UpstreamError::Deadline { .. } => Code::DeadlineExceeded,
            UpstreamError::Hostile { .. } => Code::Internal,
        };
        Self::new(code, e.to_string())
    }
}

/// The upstream driver.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// `unix:///path`, as given to `--upstream`: how errors name it.
    target: String,
    channel: Channel,
    default_deadline: Duration,
}

impl Upstream {
    /// A channel to the driver serving `socket`, connected at the first call (and again after
    /// the upstream restarts), so Tether can start before its upstream.
    pub fn new(socket: &Path, default_deadline: Duration) -> Self {
        let path: PathBuf = socket.to_path_buf();
        let channel = tonic::transport::Endpoint::from_static("http://upstream.invalid").connect_with_connector_lazy(
            tower::service_fn(move |_: tonic::transport::Uri| {
                let path = path.clone();
                async move {
                    let stream = tokio::net::UnixStream::connect(path).await?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(stream))
                }
            }),
        );
        Self { target: format!("unix://{}", socket.display()), channel, default_deadline }
    }

    /// How errors name the upstream.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The deadline of a call arriving now with `metadata`: its `grpc-timeout` or the default,
    /// less a margin so that the upstream's failure to answer in time reaches the caller as this
    /// proxy's clear error rather than as the caller's own timeout.
    pub fn deadline_for(&self, metadata: &tonic::metadata::MetadataMap) -> Instant {
        let timeout = super::deadline::of(metadata, self.default_deadline);
        Instant::now() + timeout - (timeout / 10).min(Duration::from_secs(1))
    }

    /// The upstream's `answer` to `method` as `M`, or a failure naming both if it is not one.
    pub fn read<M: prost::Message + Default>(&self, method: &str, answer: &Bytes) -> Result<M, UpstreamError> {
        M::decode(answer.clone()).map_err(|e| {
            let problem = format!(
                "a message that is not a valid {}: {e}",
                std::any::type_name::<M>().rsplit("::").next().unwrap_or("answer")
            );
            self.hostile(method, problem)
        })
    }

    /// A failure of `method` for an answer Tether refuses to pass on.
    pub fn hostile(&self, method: &str, problem: String) -> UpstreamError {
        UpstreamError::Hostile { target: self.target.clone(), method: method.to_owned(), problem }
    }

    /// Calls `path` (`/csi.v1.Service/Method`) with the message `body`, until `until`.
    /// While the upstream cannot be reached (no answer at all: its socket is gone or refuses),
    /// the call is made again after a pause: every CSI call is idempotent by the specification,
    /// so a repeat is safe. An answer, error or not, is never repeated.
    pub async fn call(&self, path: &str, body: Bytes, until: Instant) -> Result<Bytes, UpstreamError> {
        let method = path.rsplit('/').next().unwrap_or(path).to_owned();
        let route: http::uri::PathAndQuery = path.parse().map_err(|_| UpstreamError::Unreachable {
            target: self.target.clone(),
            method: method.clone(),
            reason: format!("{path:?} is not a gRPC method path"),
        })?;
        let started = Instant::now();
        let mut backoff = FIRST_BACKOFF;
        loop {
            let mut request = tonic::Request::new(body.clone());
            request.set_timeout(until.saturating_duration_since(Instant::now()));
            let mut grpc = tonic::client::Grpc::new(self.channel.clone());
            let attempt = async {
                grpc.ready().await.map_err(|e| Status::from_error(e.into()))?;
                grpc.unary(request, route.clone(), RawCodec).await
            };
            let status = match tokio::time::timeout_at(until, attempt).await {
                Ok(Ok(response)) => return Ok(response.into_inner()),
                Ok(Err(status)) => status,
                Err(_) => {
                    let waited = started.elapsed();
                    return Err(UpstreamError::Deadline { target: self.target.clone(), method, waited });
                }
            };
            // A status the upstream sent has no source; one made here from a transport
            // failure carries it.
            if std::error::Error::source(&status).is_none() {
                return Err(UpstreamError::Answered(status));
            }
            if Instant::now() + backoff >= until {
                // The deadline this proxy sends along ran out first (tonic reports it as a
                // local cancellation).
                if matches!(status.code(), Code::Cancelled | Code::DeadlineExceeded) {
                    let waited = started.elapsed();
                    return Err(UpstreamError::Deadline { target: self.target.clone(), method, waited });
                }
                let reason = format!("{} ({:?})", status.message(), status.code());
                return Err(UpstreamError::Unreachable { target: self.target.clone(), method, reason });
            }
            tracing::debug!(upstream = %self.target, method = %method, "upstream unreachable; calling again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}
