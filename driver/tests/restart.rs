//! The real binary under SIGKILL, SIGTERM and corrupt state: every acknowledged volume and
//! attachment survives a kill in the middle of concurrent traffic, nothing unacknowledged is
//! left half-made, SIGTERM exits 0 and removes the socket, and bad state stops start-up.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{capability, epoch_of};
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::csi::{
    ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest, ListVolumesRequest,
};
use tether_driver::server::connect_unix;
use tonic::transport::Channel;

const NODES: [&str; 4] = ["node-a", "node-b", "node-c", "node-d"];
/// Concurrent clients of the kill-under-load test.
const CLIENTS: usize = 64;

/// A driver process that is killed when dropped, so a failing test leaves none behind.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

/// Starts the driver on `dir`; its log goes to `dir/driver.log` (a pipe nobody reads would
/// fill up and block it).
fn spawn(dir: &Path) -> Running {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(dir.join("driver.log")).unwrap();
    Command::new(env!("CARGO_BIN_EXE_tether-csi"))
        .args(["--endpoint", &format!("unix://{}", dir.join("csi.sock").display())])
        .args(["--node-id", NODES[0], "--nodes", &NODES[1..].join(",")])
        .args(["--state-dir", &dir.join("state").display().to_string(), "--metrics-address", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::from(log))
        .spawn()
        .map(Running)
        .expect("start tether-csi")
}

/// Polls until the child serves its socket (a readiness wait on another process, not a test
/// of timing: the deadline only turns a hang into a failure).
async fn client(dir: &Path, child: &mut Child) -> ControllerClient<Channel> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(channel) = connect_unix(&dir.join("csi.sock")).await {
            return ControllerClient::new(channel);
        }
        assert!(child.try_wait().unwrap().is_none(), "tether-csi exited during start-up");
        assert!(Instant::now() < deadline, "tether-csi did not open its socket");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create(c: &mut ControllerClient<Channel>, name: &str) -> Result<String, tonic::Status> {
    let req = CreateVolumeRequest {
        name: name.into(),
        volume_capabilities: vec![capability(false, Mode::SingleNodeWriter)],
        ..Default::default()
    };
    Ok(c.create_volume(req).await?.into_inner().volume.unwrap().volume_id)
}

fn publish_req(volume: &str, node: &str) -> ControllerPublishVolumeRequest {
    ControllerPublishVolumeRequest {
        volume_id: volume.into(),
        node_id: node.into(),
        volume_capability: Some(capability(false, Mode::SingleNodeWriter)),
        ..Default::default()
    }
}

/// What a worker knows about one volume: the last acknowledged state (node and epoch, or
/// detached), and the state an unanswered call would have left.
#[derive(Debug, Clone, Default)]
struct Known {
    acked: Option<(String, u64)>,
    /// The nodes the volume would be on had the unanswered call gone through.
    unanswered: Option<Vec<String>>,
}

/// Cycles publish / unpublish over its volumes until the driver stops answering.
async fn worker(
    mut c: ControllerClient<Channel>,
    volumes: Vec<String>,
    acks: Arc<AtomicUsize>,
) -> BTreeMap<String, Known> {
    let mut known: BTreeMap<String, Known> = volumes.iter().map(|v| (v.clone(), Known::default())).collect();
    for round in 0.. {
        for (i, v) in volumes.iter().enumerate() {
            let k = known.get_mut(v).unwrap();
            if k.acked.is_some() {
                let req = ControllerUnpublishVolumeRequest { volume_id: v.clone(), ..Default::default() };
                if c.controller_unpublish_volume(req).await.is_err() {
                    k.unanswered = Some(vec![]);
                    return known;
                }
                k.acked = None;
            } else {
                let node = NODES[(round + i) % NODES.len()];
                let Ok(resp) = c.controller_publish_volume(publish_req(v, node)).await else {
                    k.unanswered = Some(vec![node.to_owned()]);
                    return known;
                };
                k.acked = Some((node.to_owned(), epoch_of(&resp.into_inner())));
            }
            acks.fetch_add(1, Ordering::Relaxed);
        }
    }
    unreachable!()
}

/// Creates volumes until the driver stops answering: (acknowledged ids, unanswered name).
async fn creator(mut c: ControllerClient<Channel>, acks: Arc<AtomicUsize>) -> (Vec<String>, Option<String>) {
    let mut created = Vec::new();
    for i in 0.. {
        let name = format!("late-{i}");
        match create(&mut c, &name).await {
            Ok(id) => created.push(id),
            Err(_) => return (created, Some(name)),
        }
        acks.fetch_add(1, Ordering::Relaxed);
    }
    unreachable!()
}

fn file_stems(dir: &Path, ext: Option<&str>) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| PathBuf::from(e.unwrap().file_name()))
        .inspect(|p| assert!(!p.to_string_lossy().ends_with(".tmp"), "a temporary file survived: {}", p.display()))
        .filter(|p| ext.is_none_or(|x| p.extension().is_some_and(|e| e == x)))
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_during_concurrent_publishes_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let mut volumes = Vec::new();
    // 64 clients, each with its own connection and volumes, as many as the driver bench's
    // largest load.
    for i in 0..CLIENTS * 2 {
        volumes.push(create(&mut c, &format!("pvc-{i}")).await.unwrap());
    }
    let acks = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for chunk in volumes.chunks(2) {
        let own = client(dir.path(), &mut child).await;
        workers.push(tokio::spawn(worker(own, chunk.to_vec(), acks.clone())));
    }
    let creating = tokio::spawn(creator(c.clone(), acks.clone()));
    // Kill once enough traffic was acknowledged, while the workers are still running.
    while acks.load(Ordering::Relaxed) < 1000 {
        tokio::task::yield_now().await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let mut known = BTreeMap::new();
    for w in workers {
        known.extend(w.await.unwrap());
    }
    let (late, unanswered_create) = creating.await.unwrap();
    drop(c);

    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let listed = c.list_volumes(ListVolumesRequest::default()).await.unwrap().into_inner().entries;
    let listed: BTreeMap<String, Vec<String>> =
        listed.into_iter().map(|e| (e.volume.unwrap().volume_id, e.status.unwrap().published_node_ids)).collect();
    for id in volumes.iter().chain(&late) {
        assert!(listed.contains_key(id), "acknowledged volume {id} is gone after the restart");
    }
    let extra = listed.len() - volumes.len() - late.len();
    assert!(extra <= usize::from(unanswered_create.is_some()), "{extra} volumes appeared that were never asked for");
    for (v, k) in &known {
        let nodes = &listed[v];
        let acked = k.acked.as_ref().map(|(n, _)| vec![n.clone()]).unwrap_or_default();
        let maybe = k.unanswered.clone();
        assert!(
            nodes == &acked || maybe.as_ref() == Some(nodes),
            "volume {v}: {nodes:?}, acknowledged {acked:?}, unanswered {maybe:?}"
        );
        // The epoch survived too: an idempotent republish hands back the acknowledged one.
        if let (Some((node, epoch)), None) = (&k.acked, &k.unanswered) {
            let again = c.controller_publish_volume(publish_req(v, node)).await.unwrap().into_inner();
            assert_eq!(epoch_of(&again), *epoch, "volume {v}: epoch after restart");
        }
    }
    // The new start took a higher term and re-fenced every volume at it before serving, so
    // every epoch issued after the kill is above every epoch issued before it.
    let state = dir.path().join("state");
    let term: u64 = std::fs::read_to_string(state.join("term")).unwrap().parse().unwrap();
    assert_eq!(term, 2, "the second start's term");
    let before = known.values().filter_map(|k| k.acked.as_ref().map(|(_, e)| *e)).max().unwrap();
    assert!(before < term << 32, "epochs before the kill are of term 1: {before}");
    for v in known.keys() {
        let applied: serde_json::Value =
            serde_json::from_slice(&std::fs::read(state.join(format!("fences/{v}.json"))).unwrap()).unwrap();
        assert!(applied["epoch"].as_u64().unwrap() >= term << 32, "volume {v}: {applied}");
    }
    let v = create(&mut c, "pvc-after").await.unwrap();
    let after = c.controller_publish_volume(publish_req(&v, NODES[1])).await.unwrap().into_inner();
    assert!(epoch_of(&after) > before, "a new attach at {} after {before}", epoch_of(&after));
    // Nothing half-made: every record has its data and every piece of data its record.
    assert_eq!(file_stems(&state.join("volumes"), Some("json")), file_stems(&state.join("data"), None));
    let mut listed: BTreeSet<String> = listed.keys().cloned().collect();
    listed.insert(v);
    assert_eq!(file_stems(&state.join("volumes"), Some("json")), listed);
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn sigterm_exits_zero_and_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let v = create(&mut c, "pvc-term").await.unwrap();
    c.controller_publish_volume(publish_req(&v, "node-b")).await.unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "tether-csi exited with {status} after SIGTERM");
    assert!(!dir.path().join("csi.sock").exists(), "the socket was left behind");
    drop(c);
    // The acknowledged attachment is there for the next start.
    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let listed = c.list_volumes(ListVolumesRequest::default()).await.unwrap().into_inner().entries;
    assert_eq!(listed[0].status.as_ref().unwrap().published_node_ids, ["node-b"]);
    child.kill().unwrap();
    child.wait().unwrap();
}

fn start_fails_naming(dir: &Path, file: &Path) {
    std::fs::write(dir.join("driver.log"), b"").unwrap();
    let status = spawn(dir).wait().unwrap();
    assert!(!status.success(), "tether-csi started on bad state");
    let stderr = std::fs::read_to_string(dir.join("driver.log")).unwrap();
    assert!(stderr.contains(&file.display().to_string()), "the error does not name {}: {stderr}", file.display());
}

#[tokio::test]
async fn corrupt_or_truncated_state_stops_start_up_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let v = create(&mut c, "pvc-corrupt").await.unwrap();
    c.controller_publish_volume(publish_req(&v, "node-b")).await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(c);
    let record = dir.path().join("state").join("volumes").join(format!("{v}.json"));
    let good = std::fs::read(&record).unwrap();
    std::fs::write(&record, &good[..good.len() / 2]).unwrap();
    start_fails_naming(dir.path(), &record);
    std::fs::write(&record, b"\x00\x00garbage").unwrap();
    start_fails_naming(dir.path(), &record);
    // An attachment the contract cannot reach (an RWO volume on two nodes) is refused too.
    let text = String::from_utf8(good).unwrap().replace(r#"["node-b"]"#, r#"["node-b","node-c"]"#);
    std::fs::write(&record, text).unwrap();
    start_fails_naming(dir.path(), &record);
}
