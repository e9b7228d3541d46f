//! What the tests against the real API server of tests/k8s share: the environment run.sh exports,
//! and waiting for an observable state with a deadline (never for a length of time).
#![allow(dead_code)]

use std::future::Future;
use std::path::Path;
use std::time::{Duration, Instant};

/// A variable tests/k8s/run.sh exports; a missing one means the test was not started through it.
pub fn env(name: &str) -> String {
    std::env::var(name)
        .unwrap_or_else(|_| panic!("{name} is not set: run this through tests/k8s/run.sh (make test-k8s)"))
}

/// Polls `check` until it returns `Some`, failing the test once `deadline` has passed.
pub async fn until_within<T, F: Future<Output = Option<T>>>(
    deadline: Duration,
    what: &str,
    mut check: impl FnMut() -> F,
) -> T {
    let deadline = Instant::now() + deadline;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The epochs of every fence applied under a store's state directory `state` (`fences/*.json`;
/// a write in progress is a dot-file until its rename makes it whole).
pub fn fence_epochs(state: &Path) -> Vec<u64> {
    std::fs::read_dir(state.join("fences"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.extension().is_some_and(|x| x == "json") && !p.file_name().unwrap().to_string_lossy().starts_with('.')
        })
        .map(|p| {
            let f: serde_json::Value = serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap();
            f["epoch"].as_u64().unwrap()
        })
        .collect()
}
