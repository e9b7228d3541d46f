//! Where a driver step runs when an RPC handler calls it: a step may wait for a store commit,
//! which must not stall the runtime's other tasks.

use std::sync::Arc;

use tonic::Status;

use crate::driver::Driver;
use crate::status::DriverError;

/// Runs `op` on `driver` on the blocking pool and maps its error to the call's status, logged.
///
/// Running it in place instead (`block_in_place` on the multi-threaded runtime) was tried on
/// 2026-12-07: it took the hand-off out of a proxied publish (94 to 14 µs at p50, timed
/// inside the proxy), but the proxy bench showed no gain above the noise in two A/B rounds,
/// and the driver bench's 64-client p99 was 16.6 and 25.4 ms in its two runs with it against
/// 9.8 ms without; see benches/README.md.
pub async fn run<T, F>(driver: &Arc<Driver>, op: F) -> Result<T, Status>
where
    T: Send + 'static,
    F: FnOnce(&Driver) -> Result<T, DriverError> + Send + 'static,
{
    let driver = Arc::clone(driver);
    let result = tokio::task::spawn_blocking(move || op(&driver))
        .await
        .map_err(|e| Status::internal(format!("the operation did not complete: {e}")))?;
    result.map_err(|e| {
        let status = Status::from(e);
        tracing::warn!(code = ?status.code(), "{}", status.message());
        status
    })
}
