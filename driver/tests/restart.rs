//! The real binary under SIGKILL, SIGTERM and corrupt state: every acknowledged volume and
//! attachment survives a kill in the middle of concurrent traffic, nothing unacknowledged is
//! left half-made, SIGTERM exits 0 and removes the socket, bad state (a torn, scribbled or
//! garbled database, a record that does not load or cannot be reached) stops start-up naming
//! the file, and a state directory of the file-per-record layout migrates on the first start,
//! even one killed during it. The state is read through the store, opened beside the driver.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
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
use tether_driver::store::{EmbeddedStore, VolumeStore, DB_FILE};
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

/// The names in `dir`.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect()
}

/// The store under `state`, opened beside a running driver as a second process would.
fn open_store(state: &Path) -> EmbeddedStore {
    EmbeddedStore::open(state, 1 << 40).unwrap()
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
    let store = open_store(&state);
    let term = store.term().unwrap();
    assert_eq!(term, 2, "the second start's term");
    let before = known.values().filter_map(|k| k.acked.as_ref().map(|(_, e)| *e)).max().unwrap();
    assert!(before < term << 32, "epochs before the kill are of term 1: {before}");
    for v in known.keys() {
        let applied = store.applied_fence(v).unwrap().unwrap();
        assert!(applied.epoch >= term << 32, "volume {v}: {applied:?}");
    }
    let v = create(&mut c, "pvc-after").await.unwrap();
    let after = c.controller_publish_volume(publish_req(&v, NODES[1])).await.unwrap().into_inner();
    assert!(epoch_of(&after) > before, "a new attach at {} after {before}", epoch_of(&after));
    child.kill().unwrap();
    child.wait().unwrap();
    // Nothing half-made: every record has its data and every piece of data its record.
    let records: BTreeSet<String> = store.volume_ids().unwrap().into_iter().collect();
    assert_eq!(records, names(&state.join("data")));
    let mut listed: BTreeSet<String> = listed.keys().cloned().collect();
    listed.insert(v);
    assert_eq!(records, listed);
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
    assert_eq!(first_volume_nodes(dir.path()).await, ["node-b"]);
}

/// Starts the driver on `dir` and returns the nodes its first listed volume is published to.
async fn first_volume_nodes(dir: &Path) -> Vec<String> {
    let mut child = spawn(dir);
    let mut c = client(dir, &mut child).await;
    let listed = c.list_volumes(ListVolumesRequest::default()).await.unwrap().into_inner().entries;
    child.kill().unwrap();
    child.wait().unwrap();
    listed[0].status.clone().unwrap().published_node_ids
}

fn start_fails_naming(dir: &Path, file: &Path) {
    std::fs::write(dir.join("driver.log"), b"").unwrap();
    let status = spawn(dir).wait().unwrap();
    assert!(!status.success(), "tether-csi started on bad state");
    let stderr = std::fs::read_to_string(dir.join("driver.log")).unwrap();
    assert!(stderr.contains(&file.display().to_string()), "the error does not name {}: {stderr}", file.display());
}

/// Folds the write-ahead log into the database file and closes it, so that the file alone
/// holds every page (as after a clean stop).
fn checkpoint(db: &Path) {
    let conn = rusqlite::Connection::open(db).unwrap();
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
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
    let db = dir.path().join("state").join(DB_FILE);
    checkpoint(&db);
    let good = std::fs::read(&db).unwrap();
    // Replaces the database file, with no log beside it that could belong to another content.
    let put = |bytes: &[u8]| {
        for log in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{log}", db.display()));
        }
        std::fs::write(&db, bytes).unwrap();
    };
    // Torn: the file ends before the pages its header and tree point to.
    put(&good[..good.len() / 2]);
    start_fails_naming(dir.path(), &db);
    put(b"\x00\x00garbage");
    start_fails_naming(dir.path(), &db);
    // A page overwritten in the middle of the file.
    let mut scribbled = good.clone();
    let page = scribbled.len() - 4096;
    scribbled[page..page + 64].fill(0xa5);
    put(&scribbled);
    start_fails_naming(dir.path(), &db);
    // A whole database whose record does not parse, or parses to what the contract cannot
    // reach (an RWO volume on two nodes), is refused too, naming the database.
    let edit = |record: &[u8]| {
        put(&good);
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute("UPDATE volumes SET record = ?1 WHERE id = ?2", rusqlite::params![record, v]).unwrap();
    };
    edit(b"{\"meta\":");
    start_fails_naming(dir.path(), &db);
    let text = String::from_utf8(open_record(&good, &v)).unwrap().replace(r#"["node-b"]"#, r#"["node-b","node-c"]"#);
    edit(text.as_bytes());
    start_fails_naming(dir.path(), &db);
    // The good file starts again.
    put(&good);
    assert_eq!(first_volume_nodes(dir.path()).await, ["node-b"]);
}

/// Volume `v`'s record in the database file `bytes`, read through a copy.
fn open_record(bytes: &[u8], v: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(DB_FILE), bytes).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join(DB_FILE)).unwrap();
    conn.query_row("SELECT record FROM volumes WHERE id = ?1", [v], |r| r.get(0)).unwrap()
}

/// Lays `state` out as the file-per-record store kept it (`volumes/<id>.json`,
/// `fences/<id>.json`, `term`: the same JSON the database keeps per row), with `extra`
/// unattached volumes more, and removes the database.
fn to_old_layout(state: &Path, extra: usize) {
    let store = open_store(state);
    let ids = store.volume_ids().unwrap();
    let template = store.stored(&ids[0]).unwrap().unwrap();
    let (records, fences) = (state.join("volumes"), state.join("fences"));
    std::fs::create_dir_all(&records).unwrap();
    std::fs::create_dir_all(&fences).unwrap();
    for id in &ids {
        let stored = store.stored(id).unwrap().unwrap();
        std::fs::write(records.join(format!("{id}.json")), serde_json::to_vec(&stored).unwrap()).unwrap();
    }
    for i in 0..extra {
        let mut stored = template.clone();
        stored.meta.id = format!("extra-{i}");
        stored.meta.name = stored.meta.id.clone();
        stored.engine = None;
        std::fs::write(records.join(format!("{}.json", stored.meta.id)), serde_json::to_vec(&stored).unwrap()).unwrap();
    }
    for (id, fence) in store.applied_fences().unwrap() {
        let stored = tether_driver::store::StoredFence::from(&fence);
        std::fs::write(fences.join(format!("{id}.json")), serde_json::to_vec(&stored).unwrap()).unwrap();
    }
    std::fs::write(state.join("term"), store.term().unwrap().to_string()).unwrap();
    drop(store);
    for file in [DB_FILE.to_owned(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")] {
        let _ = std::fs::remove_file(state.join(file));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_old_state_directory_migrates_on_first_start_even_when_killed_during_it() {
    const EXTRA: usize = 3000;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let mut acked = BTreeMap::new();
    for i in 0..20 {
        let v = create(&mut c, &format!("pvc-{i}")).await.unwrap();
        let node = (i % 2 == 0).then(|| NODES[1 + i % 3]);
        let epoch = match node {
            Some(n) => Some(epoch_of(&c.controller_publish_volume(publish_req(&v, n)).await.unwrap().into_inner())),
            None => None,
        };
        acked.insert(v, node.zip(epoch));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(c);
    to_old_layout(&state, EXTRA);
    let old_term: u64 = std::fs::read_to_string(state.join("term")).unwrap().parse().unwrap();
    // A first start killed as soon as its database appears: before, in the middle of or after
    // the import's transaction (the test cannot choose which; each must be safe).
    let mut first = spawn(dir.path());
    while !state.join(DB_FILE).exists() && first.try_wait().unwrap().is_none() {
        std::thread::yield_now();
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let committed = rusqlite::Connection::open(state.join(DB_FILE))
        .and_then(|db| db.query_row("SELECT count(*) FROM volumes", [], |r| r.get::<_, i64>(0)))
        .is_ok_and(|n| n > 0);
    let at = match (committed, state.join("volumes").exists()) {
        (false, _) => "before the import's commit",
        (true, true) => "after the import's commit, before the old files were removed",
        (true, false) => "after the old files were removed",
    };
    eprintln!("the first start was killed {at}");
    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let listed = c.list_volumes(ListVolumesRequest::default()).await.unwrap().into_inner().entries;
    let listed: BTreeMap<String, Vec<String>> =
        listed.into_iter().map(|e| (e.volume.unwrap().volume_id, e.status.unwrap().published_node_ids)).collect();
    assert_eq!(listed.len(), acked.len() + EXTRA, "every volume of the old layout is there");
    for (v, on) in &acked {
        let nodes: Vec<String> = on.iter().map(|(n, _)| (*n).to_owned()).collect();
        assert_eq!(listed[v], nodes, "volume {v}");
        if let Some((node, epoch)) = on {
            let again = c.controller_publish_volume(publish_req(v, node)).await.unwrap().into_inner();
            assert_eq!(epoch_of(&again), *epoch, "volume {v}: the epoch survived the migration");
        }
    }
    for old in ["volumes", "fences", "term"] {
        assert!(!state.join(old).exists(), "{old} is left after the migration");
    }
    let store = open_store(&state);
    assert!(store.term().unwrap() > old_term, "the term went on from the old layout's {old_term}");
    for (v, (node, _)) in acked.iter().filter_map(|(v, on)| Some((v, (*on)?))) {
        let applied = store.applied_fence(v).unwrap().expect("re-fenced at the new term");
        assert!(applied.epoch >= store.term().unwrap() << 32, "volume {v}");
        assert_eq!(applied.nodes().map(|a| a.node.to_string()).collect::<Vec<_>>(), [node], "volume {v}");
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn two_processes_on_one_state_directory_the_second_refuses_naming_the_holder() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = spawn(dir.path());
    let mut c = client(dir.path(), &mut first).await;
    let v = create(&mut c, "pvc-one-holder").await.unwrap();
    c.controller_publish_volume(publish_req(&v, "node-b")).await.unwrap();
    // The second on the same state directory (its own socket, so only the store is shared).
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("driver.log"), b"").unwrap();
    let mut second = Command::new(env!("CARGO_BIN_EXE_tether-csi"))
        .args(["--endpoint", &format!("unix://{}", other.path().join("csi.sock").display())])
        .args(["--node-id", NODES[0], "--nodes", &NODES[1..].join(",")])
        .args(["--state-dir", &dir.path().join("state").display().to_string(), "--metrics-address", ""])
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(other.path().join("driver.log")).unwrap()))
        .spawn()
        .map(Running)
        .unwrap();
    // A wait on another process, not a test of timing: the deadline turns a second server into
    // a failure instead of a hang.
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "a second process is serving the same state directory");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!status.success(), "a second process served the same state directory");
    let stderr = std::fs::read_to_string(other.path().join("driver.log")).unwrap();
    let holder = format!("pid {}", first.id());
    assert!(stderr.contains(&holder), "the refusal does not name the holder ({holder}): {stderr}");
    assert!(!other.path().join("csi.sock").exists(), "the refused process opened its socket");
    // The first still serves; once it is killed, the kernel drops its lock and a new one serves.
    c.controller_publish_volume(publish_req(&v, "node-b")).await.unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    drop(c);
    assert_eq!(first_volume_nodes(dir.path()).await, ["node-b"]);
}

/// Bytes of the write-ahead log's header and of each frame's header (the WAL format `SQLite` documents).
const WAL_HEADER: usize = 32;
const FRAME_HEADER: usize = 24;

/// Where a test scribbles on the write-ahead log.
#[derive(Debug, Clone, Copy)]
enum Spot {
    Header,
    /// The middle of frame `n` (from 0) of `len` frames, as a function of `len`.
    Frame(fn(usize) -> usize),
}

#[tokio::test]
async fn a_damaged_write_ahead_log_refuses_start_naming_it_or_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let (v1, v2) = (create(&mut c, "pvc-wal-1").await.unwrap(), create(&mut c, "pvc-wal-2").await.unwrap());
    c.controller_publish_volume(publish_req(&v1, "node-b")).await.unwrap();
    c.controller_publish_volume(publish_req(&v2, "node-c")).await.unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    drop(c);
    let files = [DB_FILE.to_owned(), format!("{DB_FILE}-wal"), format!("{DB_FILE}-shm")];
    let kept: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(state.join(f)).unwrap()).collect();
    let wal = &kept[1];
    let page = usize::try_from(u32::from_be_bytes(wal[8..12].try_into().unwrap())).unwrap();
    let frames = (wal.len() - WAL_HEADER) / (FRAME_HEADER + page);
    assert!(frames >= 4, "the log holds the acknowledged commits: {frames} frames");
    let spots = [
        ("the header", Spot::Header),
        ("the first frame", Spot::Frame(|_| 0)),
        ("a middle frame", Spot::Frame(|n| n / 2)),
        ("the second-to-last frame", Spot::Frame(|n| n - 2)),
        ("the last frame", Spot::Frame(|n| n - 1)),
    ];
    let mut failures = Vec::new();
    for (name, spot) in spots {
        for (file, bytes) in files.iter().zip(&kept) {
            std::fs::write(state.join(file), bytes).unwrap();
        }
        let at = match spot {
            Spot::Header => 8,
            Spot::Frame(n) => {
                let frame = FRAME_HEADER + page;
                WAL_HEADER + n(frames) * frame + frame / 2
            }
        };
        let mut damaged = wal.clone();
        damaged[at..at + 16].iter_mut().for_each(|b| *b ^= 0xff);
        std::fs::write(state.join(&files[1]), &damaged).unwrap();
        std::fs::write(dir.path().join("driver.log"), b"").unwrap();
        let mut child = spawn(dir.path());
        let served = wait_served_or_exited(dir.path(), &mut child).await;
        if let Some(mut c) = served {
            let listed = c.list_volumes(ListVolumesRequest::default()).await.unwrap().into_inner().entries;
            let on = |v: &str| {
                let entry = listed.iter().find(|e| e.volume.as_ref().unwrap().volume_id == v);
                entry.map(|e| e.status.clone().unwrap().published_node_ids)
            };
            let expected = (Some(vec!["node-b".to_owned()]), Some(vec!["node-c".to_owned()]));
            let found = (on(&v1), on(&v2));
            if found != expected {
                failures.push(format!("{name}: started and lost an acknowledged change: {found:?}"));
            }
        } else {
            let stderr = std::fs::read_to_string(dir.path().join("driver.log")).unwrap();
            let named = state.join(&files[1]).display().to_string();
            if !stderr.contains(&named) {
                failures.push(format!("{name}: the refusal does not name {named}: {stderr}"));
            }
            eprintln!("{name}: {}", stderr.lines().last().unwrap_or_default());
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    // The undamaged log starts and keeps both.
    for (file, bytes) in files.iter().zip(&kept) {
        std::fs::write(state.join(file), bytes).unwrap();
    }
    let mut child = spawn(dir.path());
    assert!(wait_served_or_exited(dir.path(), &mut child).await.is_some(), "the whole log was refused");
}

/// A client once the child serves, or `None` once it exited (a wait on another process; the
/// deadline only turns a hang into a failure).
async fn wait_served_or_exited(dir: &Path, child: &mut Child) -> Option<ControllerClient<Channel>> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if child.try_wait().unwrap().is_some() {
            return None;
        }
        if let Ok(channel) = connect_unix(&dir.join("csi.sock")).await {
            return Some(ControllerClient::new(channel));
        }
        assert!(Instant::now() < deadline, "tether-csi neither served nor exited");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_refused_call_with_a_huge_id_writes_a_bounded_log_line_and_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn(dir.path());
    let mut c = client(dir.path(), &mut child).await;
    let log = dir.path().join("driver.log");
    // Up to what the server decodes (4 MiB a message), less room for the other fields.
    for len in [1 << 20, (4 << 20) - 1024] {
        let huge = "v".repeat(len);
        let before = std::fs::metadata(&log).unwrap().len();
        let refused = c.controller_publish_volume(publish_req(&huge, "node-b")).await.unwrap_err();
        let req = CreateVolumeRequest { name: huge.clone(), ..Default::default() };
        let refused_create = c.create_volume(req).await.unwrap_err();
        let req =
            ControllerUnpublishVolumeRequest { volume_id: "pvc-x".into(), node_id: huge.clone(), ..Default::default() };
        let refused_node = c.controller_unpublish_volume(req).await.unwrap_err();
        // tracing writes each line to the log file before the handler replies.
        let grew = std::fs::metadata(&log).unwrap().len() - before;
        assert!(grew < 8 * 1024, "three refused calls with a {len}-byte id grew the log by {grew} bytes");
        for status in [refused, refused_create, refused_node] {
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{}", &status.message()[..200]);
            assert!(status.message().len() < 4096, "a {}-byte error message", status.message().len());
        }
    }
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains(&format!("... ({} bytes)", 1 << 20)), "the log does not show the id's length: {text}");
}
