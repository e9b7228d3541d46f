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

/// The epochs of every fence applied under a store's state directory `state`, read through
/// the store opened beside the running drivers (as another replica would).
pub fn fence_epochs(state: &Path) -> Vec<u64> {
    let store = tether_driver::store::EmbeddedStore::open(state, 1 << 40).unwrap();
    store.applied_fences().unwrap().into_iter().map(|(_, f)| f.epoch).collect()
}

/// The last controller term handed out under `state`.
pub fn term(state: &Path) -> u64 {
    tether_driver::store::EmbeddedStore::open(state, 1 << 40).unwrap().term().unwrap()
}
