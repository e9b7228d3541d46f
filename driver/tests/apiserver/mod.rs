//! What the tests against the real API server of tests/k8s share: the environment run.sh exports,
//! and waiting for an observable state with a deadline (never for a length of time).
#![allow(dead_code)]

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use kube::api::{DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::discovery::{self, Scope};
use kube::{Api, Client};

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

/// deploy/, or where `TETHER_K8S_DEPLOY_DIR` says.
pub fn deploy_dir() -> PathBuf {
    std::env::var("TETHER_K8S_DEPLOY_DIR")
        .map_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy"), PathBuf::from)
}

/// Server-side applies every object of the manifest `file` (under [`deploy_dir`]) as `admin`.
pub async fn apply_manifest(admin: &Client, file: &str) {
    let text = std::fs::read_to_string(deploy_dir().join(file)).unwrap();
    let docs: Vec<Option<DynamicObject>> = serde_saphyr::from_multiple(&text).unwrap();
    for object in docs.into_iter().flatten() {
        let gvk = GroupVersionKind::try_from(object.types.as_ref().unwrap()).unwrap();
        let (resource, caps) = discovery::pinned_kind(admin, &gvk).await.unwrap();
        let api: Api<DynamicObject> = match (&caps.scope, &object.metadata.namespace) {
            (Scope::Namespaced, Some(ns)) => Api::namespaced_with(admin.clone(), ns, &resource),
            _ => Api::all_with(admin.clone(), &resource),
        };
        let name = object.metadata.name.clone().unwrap();
        api.patch(&name, &PatchParams::apply("tether-tests").force(), &Patch::Apply(&object)).await.unwrap();
    }
}

/// Runs `tests/k8s/cluster.sh` to stop or start the API server (same port, same etcd).
pub fn apiserver(action: &str) {
    let status = Command::new(env("TETHER_K8S_CTL")).arg(action).arg(env("TETHER_K8S_DIR")).status().unwrap();
    assert!(status.success(), "{action} failed");
}

/// A free TCP port on 127.0.0.1 (for a process's metrics address).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// GET `path` from `address` over plain HTTP/1.1: the status and the body, or `None` if nothing
/// answers there.
pub fn http_get(address: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).ok()?;
    stream.write_all(format!("GET {path} HTTP/1.1\r\nHost: tether\r\nConnection: close\r\n\r\n").as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.split(' ').nth(1)?.parse().ok()?;
    Some((status, text.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()))
}
