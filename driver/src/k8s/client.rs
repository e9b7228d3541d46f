//! Every kube client the driver makes: limited to a rate (a token bucket, as client-go's QPS and
//! burst) and counting the requests it sends.
//!
//! The bucket is `governor`'s (a kept GCRA token bucket with burst; tower's own rate limit is a
//! fixed window, which after a burst would stall every call until the window ends, and a
//! takeover's re-fence is exactly such a burst). It waits in `poll_ready`, behind the client's
//! buffer, so one token is taken per request sent, whichever task sent it.

use std::future::Future;
use std::num::NonZeroU32;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use kube::client::ClientBuilder;
use kube::{Client, Config};

/// How fast a client may send requests: `qps` on average, `burst` at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ApiRate {
    pub qps: f64,
    pub burst: u32,
}

impl ApiRate {
    /// Sized for 10 000 volumes. Steady state: 10 000 pods rescheduled within five minutes are
    /// 20 000 publishes and unpublishes, one write each: 67 per second; 500 leaves room for
    /// the rebuild's lists and the events beside them. Burst: a new leader re-fences every
    /// attached volume (one write each, in the background while it serves), so 10 000 pass at
    /// once instead of queueing for 20 s at 500 a second. Client-go's defaults (5 and 10, the
    /// sidecars') would make that re-fence take over half an hour.
    pub const DEFAULT: Self = Self { qps: 500.0, burst: 10_000 };

    /// The bucket, or why `self` cannot be one.
    fn limiter(self) -> Result<DefaultDirectRateLimiter, RateError> {
        let burst = NonZeroU32::new(self.burst).ok_or(RateError::NoBurst)?;
        if !(self.qps.is_finite() && self.qps > 0.0) {
            return Err(RateError::NotPositive(self.qps));
        }
        let period = Duration::try_from_secs_f64(1.0 / self.qps)
            .map_err(|source| RateError::NoPeriod { qps: self.qps, source })?;
        let quota = Quota::with_period(period).ok_or(RateError::TooHigh(self.qps))?;
        Ok(RateLimiter::direct(quota.allow_burst(burst)))
    }
}

/// Why an [`ApiRate`] is no bucket.
#[derive(Debug, thiserror::Error)]
pub enum RateError {
    #[error("the API burst must be at least 1")]
    NoBurst,
    #[error("the API QPS must be a positive number, not {0}")]
    NotPositive(f64),
    #[error("API QPS {qps}: {source}")]
    NoPeriod { qps: f64, source: std::time::TryFromFloatSecsError },
    #[error("API QPS {0} is too high")]
    TooHigh(f64),
}

impl Default for ApiRate {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How many requests a client sent.
#[derive(Debug, Default)]
pub struct Sent(AtomicU64);

impl Sent {
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Why a client could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("Kubernetes client: {0}")]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Rate(#[from] RateError),
}

/// A client for `config` at `rate`, and its count of requests sent. Call it on the runtime
/// that will run the client's requests: its buffer's worker is spawned there.
pub fn client(config: Config, rate: ApiRate) -> Result<(Client, Arc<Sent>), ClientError> {
    let limiter = Arc::new(rate.limiter()?);
    let sent = Arc::new(Sent::default());
    let layer = Limit { limiter, sent: Arc::clone(&sent) };
    Ok((ClientBuilder::try_from(config)?.with_layer(&layer).build(), sent))
}

/// The layer of [`client`].
struct Limit {
    limiter: Arc<DefaultDirectRateLimiter>,
    sent: Arc<Sent>,
}

impl<S> tower::Layer<S> for Limit {
    type Service = Limited<S>;

    fn layer(&self, inner: S) -> Limited<S> {
        Limited { inner, limiter: Arc::clone(&self.limiter), sent: Arc::clone(&self.sent), wait: None, admitted: false }
    }
}

/// A service that sends a request only with a token from the bucket, and counts it.
pub struct Limited<S> {
    inner: S,
    limiter: Arc<DefaultDirectRateLimiter>,
    sent: Arc<Sent>,
    wait: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    /// A token was taken for the next request.
    admitted: bool,
}

impl<S: tower::Service<R>, R> tower::Service<R> for Limited<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        if !self.admitted {
            let limiter = Arc::clone(&self.limiter);
            let wait = self.wait.get_or_insert_with(|| Box::pin(async move { limiter.until_ready().await }));
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.wait = None;
            self.admitted = true;
        }
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> S::Future {
        self.admitted = false;
        self.sent.0.fetch_add(1, Ordering::Relaxed);
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use super::ApiRate;

    #[test]
    fn a_bucket_lets_its_burst_through_at_once_then_waits_for_the_rate() {
        // One token per 1 000 s: nothing refills during the test, however slow the machine.
        let limiter = ApiRate { qps: 0.001, burst: 3 }.limiter().unwrap();
        assert!((0..3).all(|_| limiter.check().is_ok()), "the burst passes at once");
        assert!(limiter.check().is_err(), "the fourth waits for a token");
    }

    #[test]
    fn a_rate_that_is_no_bucket_is_refused_by_name() {
        let burst = ApiRate { qps: 5.0, burst: 0 }.limiter().unwrap_err();
        assert!(burst.to_string().contains("burst"), "{burst}");
        for qps in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = ApiRate { qps, burst: 10 }.limiter().unwrap_err();
            assert!(e.to_string().contains("QPS"), "{qps}: {e}");
        }
    }
}
