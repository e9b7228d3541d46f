//! When reconcile runs: every `--reconcile-interval`, whenever the Node watcher reports a node
//! lost, and when the grace period of a missing node runs out; never before the driver serves.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use crate::driver::Driver;

/// Runs reconcile passes until the task is dropped.
pub async fn run(driver: Arc<Driver>, every: Duration, trigger: Arc<Notify>) {
    let mut tick = tokio::time::interval(every.max(Duration::from_secs(1)));
    tick.tick().await;
    let mut due: Option<Instant> = None;
    loop {
        let grace_runs_out = async {
            match due {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = tick.tick() => {}
            () = trigger.notified() => {}
            () = grace_runs_out => {}
        }
        due = None;
        if !driver.is_ready() {
            continue;
        }
        let d = Arc::clone(&driver);
        match tokio::task::spawn_blocking(move || d.reconcile()).await {
            Ok(Ok(report)) => {
                // The next pass is due when the first pending node's grace period ends.
                due = report.pending.iter().map(|p| p.clears_in).min().map(|d| Instant::now() + d);
                tracing::debug!(
                    cleared = report.cleared.len(),
                    pending = report.pending.len(),
                    timed_out = report.timed_out_migrations.len(),
                    "reconciled"
                );
            }
            Ok(Err(e)) => tracing::warn!(error = %e, "reconcile failed"),
            Err(e) => tracing::warn!(error = %e, "reconcile did not complete"),
        }
    }
}
