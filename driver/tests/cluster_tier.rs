//! The cluster tier with nothing shared but the API server (issue 19): two controller replicas
//! (`--store=kubernetes --leader-election`, each on its own `--state-dir`, as the controller
//! `ServiceAccount`) and a node plugin per simulated node (node-a, node-b, node-c; each its own
//! directory, socket and node id, as the node `ServiceAccount`), all `tether-csi` processes. The
//! test is the CO: it talks CSI to each socket and, where a restarted controller rebuilds from
//! them, writes `VolumeAttachments` as the external-attacher would. Ignored in a plain `cargo test`;
//! run through tests/k8s/run.sh, one test at a time (one stops the API server). Volumes are block
//! volumes: `NodeStage` checks the fence and mounts nothing.

mod apiserver;
mod common;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use apiserver::{apiserver, apply_manifest, env, free_port, http_get};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{Node, PersistentVolume};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use tether_driver::controller::{EPOCH_KEY, FENCE_EPOCH_KEY};
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::node_client::NodeClient;
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::csi::{
    ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, CreateVolumeRequest, NodeStageVolumeRequest,
};
use tether_driver::k8s;
use tether_driver::server::connect_unix;
use tether_driver::store::kube::resource::{object_name, TetherTerm, TetherVolume, TERM_OBJECT};
use tether_driver::store::{KubeStore, Role, StoreError, VolumeStore};
use tonic::transport::Channel;
use tonic::{Code, Status};

/// How long a process or the API server may take to show a state before the test fails:
/// generous, for a loaded two-core machine; nothing is asserted on speed.
const DEADLINE: Duration = Duration::from_mins(2);
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];

async fn until<T, F: Future<Output = Option<T>>>(what: &str, check: impl FnMut() -> F) -> T {
    apiserver::until_within(DEADLINE, what, check).await
}

async fn client(kubeconfig: &str) -> Client {
    Client::try_from(k8s::config(Some(Path::new(kubeconfig))).await.unwrap().unwrap()).unwrap()
}

fn from_json<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> T {
    serde_json::from_value(value).unwrap()
}

/// deploy/'s namespace, RBAC and CRDs applied (once the CRDs are served to the controller's
/// identity), and the three Nodes; returns the admin's client.
async fn setup() -> Client {
    let admin = client(&env("KUBECONFIG")).await;
    for file in
        ["00-namespace.yaml", "20-rbac-controller.yaml", "22-rbac-node.yaml", "00-crd.yaml", "23-rbac-store.yaml"]
    {
        apply_manifest(&admin, file).await;
    }
    let volumes: Api<TetherVolume> = Api::all(client(&env("TETHER_K8S_DRIVER_KUBECONFIG")).await);
    until("the CRDs to be served", || {
        let volumes = volumes.clone();
        async move { volumes.list(&ListParams::default().limit(1)).await.ok() }
    })
    .await;
    for name in NODES {
        let node: Node = from_json(json!({ "metadata": { "name": name } }));
        let params = PatchParams::apply("tether-tests").force();
        Api::<Node>::all(admin.clone()).patch(name, &params, &Patch::Apply(&node)).await.unwrap();
    }
    admin
}

/// One `tether-csi` process in a directory of its own; killed (SIGKILL, then reaped) and its
/// directory's mounts, if any, undone whichever way the test ends.
struct Proc {
    child: Child,
    dir: tempfile::TempDir,
    socket: PathBuf,
    metrics: Option<String>,
}

impl Proc {
    fn spawn(name: &str, kubeconfig: &str, metrics: bool, args: &[&str]) -> Self {
        let dir = tempfile::Builder::new().prefix(&format!("tether-{name}-")).tempdir().unwrap();
        let socket = dir.path().join("csi.sock");
        let metrics = metrics.then(|| format!("127.0.0.1:{}", free_port()));
        let log = std::fs::File::create(dir.path().join("tether-csi.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tether-csi"))
            .args(["--endpoint", &format!("unix://{}", socket.display()), "--store", "kubernetes"])
            .args(["--state-dir", &dir.path().join("state").display().to_string(), "--kubeconfig", kubeconfig])
            .args(["--metrics-address", metrics.as_deref().unwrap_or("")])
            .args(args)
            .env("POD_NAMESPACE", "tether")
            .env("POD_NAME", name)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        Self { child, dir, socket, metrics }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn alive(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// The process's own log, for a failure message.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("tether-csi.log")).unwrap_or_default()
    }

    /// GET `path` from the metrics address: status and body, or `None` if it does not answer.
    fn get(&self, path: &str) -> Option<(u16, String)> {
        http_get(self.metrics.as_deref()?, path)
    }

    async fn readyz(&self, status: u16, body: &str) {
        until(&format!("/readyz {status} {body:?}"), || async {
            self.get("/readyz").filter(|(s, b)| *s == status && b.contains(body)).map(|_| ())
        })
        .await;
    }

    /// Waits until the replica's background re-fence has written every volume it owed.
    async fn refenced(&self) {
        until("rds_csi_attachment_refence_pending 0", || async {
            self.get("/metrics")
                .filter(|(s, b)| *s == 200 && b.contains("rds_csi_attachment_refence_pending 0\n"))
                .map(|_| ())
        })
        .await;
    }

    async fn channel(&self) -> Channel {
        until("the CSI socket", || async { connect_unix(&self.socket).await.ok() }).await
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        unmount_under(self.dir.path());
    }
}

/// Lazily unmounts every mount point under `dir`, deepest first (a `NodeStage` that mounted).
fn unmount_under(dir: &Path) {
    let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> =
        table.lines().filter_map(|l| l.split(' ').nth(4)).filter(|p| Path::new(p).starts_with(dir)).collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _ = nix::mount::umount2(point, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Two controller replicas on the Lease `lease` and a node plugin per node, each process on a
/// directory of its own. The first replica leads; the second is a standby.
struct Tier {
    admin: Client,
    driver: String,
    lease: String,
    controllers: [Proc; 2],
    nodes: Vec<Proc>,
}

impl Tier {
    async fn start(prefix: &str, lease_seconds: u64) -> Self {
        Self::start_with(prefix, lease_seconds, &[]).await
    }

    /// The same, every process also given `extra` arguments.
    async fn start_with(prefix: &str, lease_seconds: u64, extra: &[&str]) -> Self {
        let admin = setup().await;
        let driver = format!("{prefix}.tether.test");
        let lease = format!("{prefix}-lease");
        let seconds = lease_seconds.to_string();
        let controller = |replica: &str| {
            let args = ["--node-id", replica, "--driver-name", &driver, "--leader-election", "--lease-name", &lease];
            let args = [&args[..], &["--lease-duration-seconds", &seconds], extra].concat();
            Proc::spawn(replica, &env("TETHER_K8S_DRIVER_KUBECONFIG"), true, &args)
        };
        let first = controller(&format!("{prefix}-r1"));
        first.readyz(200, "ready").await;
        let second = controller(&format!("{prefix}-r2"));
        second.readyz(503, "standby").await;
        let nodes = NODES
            .iter()
            .map(|n| {
                let name = format!("{prefix}-{n}");
                let args = [&["--node-id", n, "--node-plugin"][..], extra].concat();
                Proc::spawn(&name, &env("TETHER_K8S_NODE_KUBECONFIG"), false, &args)
            })
            .collect();
        let tier = Self { admin, driver, lease, controllers: [first, second], nodes };
        tier.nodes_known(0, prefix).await;
        tier
    }

    /// Waits until replica `r` publishes to every node (its Node cache has them all).
    async fn nodes_known(&self, r: usize, prefix: &str) {
        let mut c = self.controller(r).await;
        for node in NODES {
            let volume = create(&mut c, &format!("{prefix}-probe-{node}-{r}")).await;
            until(&format!("{node} in the Node cache"), || {
                let (mut c, volume) = (c.clone(), volume.clone());
                async move { publish(&mut c, &volume, node, false).await.ok() }
            })
            .await;
            unpublish(&mut c, &volume, node).await.unwrap();
        }
    }

    async fn controller(&self, r: usize) -> ControllerClient<Channel> {
        ControllerClient::new(self.controllers[r].channel().await)
    }

    async fn node(&self, n: usize) -> NodeClient<Channel> {
        NodeClient::new(self.nodes[n].channel().await)
    }

    async fn lease_holder(&self) -> Option<String> {
        let lease = Api::<Lease>::namespaced(self.admin.clone(), "tether").get_opt(&self.lease).await.unwrap()?;
        lease.spec?.holder_identity
    }

    async fn stored(&self, volume: &str) -> TetherVolume {
        Api::<TetherVolume>::all(self.admin.clone()).get(&object_name(volume)).await.unwrap()
    }

    /// A PV of this tier's driver for `volume` (the rebuild finds a volume's access through it).
    async fn pv(&self, name: &str, volume: &str, rwx: bool) {
        let pv: PersistentVolume = from_json(json!({
            "metadata": { "name": name },
            "spec": {
                "capacity": { "storage": "1Gi" },
                "accessModes": [if rwx { "ReadWriteMany" } else { "ReadWriteOnce" }],
                "volumeMode": "Block",
                "csi": { "driver": self.driver, "volumeHandle": volume },
            },
        }));
        Api::<PersistentVolume>::all(self.admin.clone()).create(&PostParams::default(), &pv).await.unwrap();
    }

    /// What the external-attacher writes: a `VolumeAttachment` before `ControllerPublish`...
    async fn attachment(&self, name: &str, pv: &str, node: &str) -> Result<(), kube::Error> {
        let va: VolumeAttachment = from_json(json!({
            "metadata": { "name": name },
            "spec": { "attacher": self.driver, "nodeName": node, "source": { "persistentVolumeName": pv } },
        }));
        Api::<VolumeAttachment>::all(self.admin.clone()).create(&PostParams::default(), &va).await.map(|_| ())
    }

    /// ... marked attached once it succeeded ...
    async fn attached(&self, name: &str) -> Result<(), kube::Error> {
        let status = json!({ "status": { "attached": true } });
        let api = Api::<VolumeAttachment>::all(self.admin.clone());
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.map(|_| ())
    }

    /// ... and gone once `ControllerUnpublish` succeeded.
    async fn detached(&self, name: &str) -> Result<(), kube::Error> {
        Api::<VolumeAttachment>::all(self.admin.clone()).delete(name, &DeleteParams::default()).await.map(|_| ())
    }
}

async fn create(c: &mut ControllerClient<Channel>, name: &str) -> String {
    let req = CreateVolumeRequest {
        name: name.into(),
        volume_capabilities: vec![common::capability(true, Mode::MultiNodeMultiWriter)],
        ..Default::default()
    };
    c.create_volume(req).await.unwrap().into_inner().volume.unwrap().volume_id
}

/// A publish's context: the node's admission epoch and the fence epoch, and the whole map.
#[derive(Debug, Clone)]
struct Published {
    admitted: u64,
    fence: u64,
    context: std::collections::HashMap<String, String>,
}

async fn publish(c: &mut ControllerClient<Channel>, volume: &str, node: &str, rwx: bool) -> Result<Published, Status> {
    let mode = if rwx { Mode::MultiNodeMultiWriter } else { Mode::SingleNodeWriter };
    let req = ControllerPublishVolumeRequest {
        volume_id: volume.into(),
        node_id: node.into(),
        volume_capability: Some(common::capability(true, mode)),
        ..Default::default()
    };
    let context = c.controller_publish_volume(req).await?.into_inner().publish_context;
    Ok(Published {
        admitted: context[EPOCH_KEY].parse().unwrap(),
        fence: context[FENCE_EPOCH_KEY].parse().unwrap(),
        context,
    })
}

async fn unpublish(c: &mut ControllerClient<Channel>, volume: &str, node: &str) -> Result<(), Status> {
    let req = ControllerUnpublishVolumeRequest { volume_id: volume.into(), node_id: node.into(), ..Default::default() };
    c.controller_unpublish_volume(req).await.map(|_| ())
}

/// `NodeStage` of a block volume on the node plugin `n`, presenting the publish context `with`.
async fn stage(tier: &Tier, n: usize, volume: &str, with: &Published) -> Result<(), Status> {
    let req = NodeStageVolumeRequest {
        volume_id: volume.into(),
        staging_target_path: tier.nodes[n].dir.path().join("staging").join(volume).display().to_string(),
        volume_capability: Some(common::capability(true, Mode::MultiNodeMultiWriter)),
        publish_context: with.context.clone(),
        ..Default::default()
    };
    tier.node(n).await.node_stage_volume(req).await.map(|_| ())
}

fn refused(result: Result<(), Status>, code: Code, what: &str) {
    let status = result.expect_err(what);
    assert_eq!(status.code(), code, "{what}: {status:?}");
}

/// The nodes a stored record holds the volume on, each with its admission epoch.
fn holders(stored: &TetherVolume) -> Vec<(String, u64)> {
    let attachment = stored.spec.engine.as_ref().and_then(|e| e.attachment.as_ref());
    attachment.map(|a| a.nodes.iter().cloned().zip(a.admitted.iter().copied()).collect()).unwrap_or_default()
}

/// The nodes the stored, applied fence admits, each with its admission epoch, and its epoch.
fn fenced(stored: &TetherVolume) -> (u64, Vec<(String, u64)>) {
    let fence = stored.spec.fence.as_ref().expect("a fence was applied");
    (fence.epoch, fence.nodes.iter().map(|a| (a.node.clone(), a.admitted_at)).collect())
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: tests/k8s/run.sh (make test-k8s)"]
async fn a_completed_migration_moves_the_fence_so_node_a_is_refused_at_node_stage() {
    let tier = Tier::start("ct1", 15).await;
    let mut c = tier.controller(0).await;
    let (a, b, c_node) = (0, 1, 2);

    let rwo = create(&mut c, "ct1-rwo").await;
    let on_a = publish(&mut c, &rwo, NODES[a], false).await.unwrap();
    stage(&tier, a, &rwo, &on_a).await.expect("node-a, published RWO, stages");
    refused(stage(&tier, b, &rwo, &on_a).await, Code::FailedPrecondition, "node-b is not in node-a's RWO fence");

    let vm = create(&mut c, "ct1-vm").await;
    let source = publish(&mut c, &vm, NODES[a], true).await.unwrap();
    stage(&tier, a, &vm, &source).await.expect("the source stages");
    let target = publish(&mut c, &vm, NODES[b], true).await.unwrap();
    assert!(target.fence > source.fence, "the migration raised the fence: {target:?} after {source:?}");
    stage(&tier, b, &vm, &target).await.expect("the target stages during the migration");
    stage(&tier, a, &vm, &source).await.expect("the source still stages during the migration");
    refused(stage(&tier, c_node, &vm, &target).await, Code::FailedPrecondition, "node-c is in no fence");

    unpublish(&mut c, &vm, NODES[a]).await.expect("completion: the source unpublished");
    let (epoch, admitted) = fenced(&tier.stored(&vm).await);
    assert_eq!(admitted, [(NODES[b].to_owned(), target.admitted)], "after completion only the target");
    assert!(epoch > target.fence, "completion raised the fence: {epoch}");
    refused(stage(&tier, a, &vm, &source).await, Code::FailedPrecondition, "the source is fenced out after completion");
    stage(&tier, b, &vm, &target).await.expect("the target keeps staging after completion");
}

/// Where one client's volume stands, as the CO recorded it: what the last finished step left,
/// and the step under way when the traffic stopped (its outcome unknown to the CO).
#[derive(Debug, Clone, Default)]
struct Record {
    volume: String,
    /// The node and admission epoch of an attachment whose `VolumeAttachment` says attached.
    attached: Option<(String, u64)>,
    under_way: Option<String>,
}

/// What the failover clients recorded, as the CO: per client, the record of its kept volume
/// and of its churned one, and how many steps were acknowledged in all.
#[derive(Debug)]
struct Books {
    held: Mutex<Vec<Record>>,
    churned: Mutex<Vec<Record>>,
    acked: AtomicUsize,
}

/// One attach as the external-attacher takes it: the step marked under way in `records[i]`,
/// a `VolumeAttachment`, the publish, the `VolumeAttachment` marked attached, then the record
/// says attached. `None` once a call failed (the leader died).
async fn attach(
    tier: &Tier,
    c: &mut ControllerClient<Channel>,
    (records, acked): (&Mutex<Vec<Record>>, &AtomicUsize),
    i: usize,
    (volume, pv, va): (&str, &str, &str),
    node: &str,
) -> Option<()> {
    records.lock().unwrap()[i].under_way = Some(format!("publish to {node}"));
    tier.attachment(va, pv, node).await.ok()?;
    let p = publish(c, volume, node, false).await.ok()?;
    tier.attached(va).await.ok()?;
    records.lock().unwrap()[i] =
        Record { volume: volume.to_owned(), attached: Some((node.to_owned(), p.admitted)), under_way: None };
    acked.fetch_add(1, Ordering::AcqRel);
    Some(())
}

/// One client of the failover traffic: its kept volume attached once, then its churned volume
/// attached and detached on node-a and node-b in turn, each step as the external-attacher
/// takes it; stops at the first failed call (the leader died).
async fn churn(tier: Arc<Tier>, i: usize, books: Arc<Books>) -> Option<()> {
    let mut c = tier.controller(0).await;
    let (keep, spin) =
        (create(&mut c, &format!("ct2-held-{i}")).await, create(&mut c, &format!("ct2-churn-{i}")).await);
    let (keep_pv, spin_pv) = (format!("ct2-pv-held-{i}"), format!("ct2-pv-churn-{i}"));
    tier.pv(&keep_pv, &keep, false).await;
    tier.pv(&spin_pv, &spin, false).await;
    books.held.lock().unwrap()[i].volume.clone_from(&keep);
    books.churned.lock().unwrap()[i].volume.clone_from(&spin);
    let held = (&books.held, &books.acked);
    attach(&tier, &mut c, held, i, (&keep, &keep_pv, &format!("ct2-va-held-{i}")), NODES[i % 2]).await?;
    let churned = (&books.churned, &books.acked);
    for round in 0.. {
        let (node, va) = (NODES[round % 2], format!("ct2-va-churn-{i}-{round}"));
        attach(&tier, &mut c, churned, i, (&spin, &spin_pv, &va), node).await?;
        books.churned.lock().unwrap()[i].under_way = Some(format!("unpublish from {node}"));
        unpublish(&mut c, &spin, node).await.ok()?;
        tier.detached(&va).await.ok()?;
        books.churned.lock().unwrap()[i] = Record { volume: spin.clone(), ..Record::default() };
        books.acked.fetch_add(1, Ordering::AcqRel);
    }
    Some(())
}

const CLIENTS: usize = 64;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: tests/k8s/run.sh (make test-k8s)"]
async fn the_leader_killed_under_64_clients_is_replaced_by_the_other_replica_losing_nothing_acknowledged() {
    let tier = Arc::new(Tier::start("ct2", 3).await);
    let books = Arc::new(Books {
        held: Mutex::new(vec![Record::default(); CLIENTS]),
        churned: Mutex::new(vec![Record::default(); CLIENTS]),
        acked: AtomicUsize::new(0),
    });
    let clients: Vec<_> = (0..CLIENTS).map(|i| tokio::spawn(churn(Arc::clone(&tier), i, Arc::clone(&books)))).collect();
    // Every kept volume acknowledged and traffic beyond it, then the leader dies mid-traffic.
    until("every kept volume attached and churn under way", || async {
        let all_held = books.held.lock().unwrap().iter().all(|r| r.attached.is_some());
        (all_held && books.acked.load(Ordering::Acquire) >= 3 * CLIENTS).then_some(())
    })
    .await;
    let old_leader = tier.controllers[0].pid();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(i32::try_from(old_leader).unwrap()), nix::sys::signal::SIGKILL)
        .unwrap();
    for client in clients {
        assert!(client.await.unwrap().is_none(), "a client stops only when a call fails");
    }
    let (held, churned) = (books.held.lock().unwrap().clone(), books.churned.lock().unwrap().clone());
    let under_way = churned.iter().filter(|r| r.under_way.is_some()).count();
    let acked = books.acked.load(Ordering::Acquire);
    eprintln!("killed after {acked} acknowledged steps; {under_way} churn steps under way");

    tier.controllers[1].readyz(200, "ready").await;
    tier.controllers[1].refenced().await;
    assert_eq!(tier.lease_holder().await.as_deref(), Some("ct2-r2"), "the standby took the Lease");
    let term = Api::<TetherTerm>::all(tier.admin.clone()).get(TERM_OBJECT).await.unwrap().spec.term;
    let mut c = tier.controller(1).await;
    let mut old_term = 0;
    for (i, record) in held.iter().enumerate() {
        let (volume, (node, admitted)) = (format!("ct2-held-{i}"), record.attached.clone().unwrap());
        let id = &record.volume;
        let stored = tier.stored(id).await;
        old_term = old_term.max(admitted >> 32);
        assert_eq!(holders(&stored), [(node.clone(), admitted)], "{volume}: acknowledged, kept with its epoch");
        let (epoch, fence) = fenced(&stored);
        assert_eq!(fence, [(node.clone(), admitted)], "{volume}: the fence still admits its node");
        assert!(epoch >= term << 32, "{volume}: re-fenced at the new term {term}: {epoch}");
        let again = publish(&mut c, id, &node, false).await.unwrap();
        assert_eq!(again.admitted, admitted, "{volume}: the new leader's re-publish returns the same admission");
        let other = NODES[1 - i % 2];
        let conflict = publish(&mut c, id, other, false).await.map(|_| ());
        refused(conflict, Code::FailedPrecondition, &format!("{volume}: RWO on {node}, refused to {other}"));
    }
    assert!(term > old_term, "the new leader's term {term} is above the old one's {old_term}");
    for (i, record) in churned.iter().enumerate() {
        let volume = format!("ct2-churn-{i}");
        let stored = tier.stored(&record.volume).await;
        let now = holders(&stored);
        match (&record.attached, &record.under_way) {
            (Some(acked), None) => assert_eq!(now, std::slice::from_ref(acked), "{volume}: acknowledged, kept"),
            (None, None) => assert_eq!(now, [], "{volume}: acknowledged detached, stays so"),
            // A step the CO never saw finish may have landed or not; it never lands elsewhere.
            (_, Some(step)) => {
                let node = NODES.iter().find(|n| step.ends_with(*n)).unwrap();
                assert!(now.iter().all(|(n, _)| n == node), "{volume} during {step:?}: now {now:?}");
            }
        }
        if !now.is_empty() {
            assert!(fenced(&stored).0 >= term << 32, "{volume}: attached, re-fenced at the new term");
        }
    }

    // The old leader's write, had it lived to make it: refused by the API server for its term.
    let id = held[0].volume.clone();
    let before = tier.stored(&id).await;
    let late = tokio::task::spawn_blocking(move || {
        let config = blocking_config(&env("TETHER_K8S_DRIVER_KUBECONFIG"));
        let root = tempfile::tempdir().unwrap();
        let store = KubeStore::open(config, root.path(), 1 << 40, Role::Controller, Duration::from_secs(30)).unwrap();
        store.set_term(old_term);
        let high = (term << 32) + 1000;
        let fence = common::fence(high, &[(NODES[1], high)]);
        store.apply_fence(&id, &fence)
    })
    .await
    .unwrap();
    assert!(
        matches!(&late, Err(StoreError::TermSuperseded { ours, found, .. }) if *ours == old_term && *found == term),
        "{late:?}"
    );
    let after = tier.stored(&before.spec.volume_id).await;
    assert_eq!(after.spec.fence, before.spec.fence, "nothing of the old leader's write landed");
}

/// A kubeconfig's client configuration, read outside any runtime.
fn blocking_config(kubeconfig: &str) -> kube::Config {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(k8s::config(Some(Path::new(kubeconfig)))).unwrap().unwrap()
}

/// Counts of one outage client: steps acknowledged, UNAVAILABLE answers, and refusals of a
/// starting API server (below).
#[derive(Debug, Default)]
struct Tally {
    acked: AtomicUsize,
    unavailable: AtomicUsize,
    starting: AtomicUsize,
}

/// What the outage test tells its clients: the API server is away (from the moment it is
/// stopped until its /readyz answers again), and the traffic is to stop.
#[derive(Debug, Default)]
struct Flags {
    away: AtomicBool,
    stop: AtomicBool,
}

/// Whether `status` is a kube-apiserver's 403 while it was starting: it serves before its RBAC
/// caches are filled, refusing the controller's own verbs for a moment (the store maps a 403 to
/// INTERNAL, naming it). Only a call sent while the server was away may meet one.
fn refused_while_starting(status: &Status, sent_while_away: bool) -> bool {
    sent_while_away && status.code() == Code::Internal && status.message().contains("is forbidden")
}

/// One client of the outage traffic: publish and unpublish of its volume, node-a and node-b
/// in turn, each step retried until it succeeds (as a CO retries); tolerated: UNAVAILABLE, and
/// a starting server's 403; stops between steps once told, returning the attachment it left.
async fn retrying(
    mut c: ControllerClient<Channel>,
    volume: String,
    tally: Arc<Tally>,
    flags: Arc<Flags>,
) -> Option<(String, u64)> {
    let mut attached: Option<(String, u64)> = None;
    for round in 0.. {
        if flags.stop.load(Ordering::Acquire) {
            break;
        }
        let node = NODES[(round / 2) % 2];
        loop {
            let away = flags.away.load(Ordering::Acquire);
            let step = match &attached {
                None => publish(&mut c, &volume, node, false).await.map(|p| Some((node.to_owned(), p.admitted))),
                Some((on, _)) => unpublish(&mut c, &volume, on).await.map(|()| None),
            };
            let counter = match step {
                Ok(now) => {
                    attached = now;
                    tally.acked.fetch_add(1, Ordering::AcqRel);
                    break;
                }
                Err(s) if s.code() == Code::Unavailable => &tally.unavailable,
                Err(s) if refused_while_starting(&s, away) => &tally.starting,
                Err(s) => panic!("{volume}: only UNAVAILABLE is allowed while the API server is away: {s:?}"),
            };
            counter.fetch_add(1, Ordering::AcqRel);
            tokio::time::sleep(Duration::from_millis(100)).await; // a CO's retry backoff
        }
    }
    attached
}

const OUTAGE_CLIENTS: usize = 16;

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: tests/k8s/run.sh (make test-k8s)"]
async fn with_the_api_server_stopped_publishes_are_unavailable_and_service_returns_without_a_restart() {
    // The Lease outlasts the outage: nobody can take it while the API server is away, and the
    // leader keeps it (a leader that cannot renew past its duration steps down, tested elsewhere).
    let mut tier = Tier::start("ct3", 300).await;
    let leader = tier.controllers[0].pid();
    let mut c = tier.controller(0).await;
    let staged = create(&mut c, "ct3-staged").await;
    let on_a = publish(&mut c, &staged, NODES[0], false).await.unwrap();
    let spare = create(&mut c, "ct3-spare").await;
    let flags = Arc::new(Flags::default());
    let mut volumes = Vec::new();
    let mut tallies = Vec::new();
    let mut clients = Vec::new();
    for i in 0..OUTAGE_CLIENTS {
        let volume = create(&mut c, &format!("ct3-vol-{i}")).await;
        let tally = Arc::new(Tally::default());
        clients.push(tokio::spawn(retrying(c.clone(), volume.clone(), Arc::clone(&tally), Arc::clone(&flags))));
        volumes.push(volume);
        tallies.push(tally);
    }
    let each = |at_least: &dyn Fn(&Tally) -> bool| tallies.iter().all(|t| at_least(t));
    until("traffic acknowledged", || async { each(&|t| t.acked.load(Ordering::Acquire) >= 2).then_some(()) }).await;

    flags.away.store(true, Ordering::Release);
    tokio::task::spawn_blocking(|| apiserver("stop-apiserver")).await.unwrap();
    until("every client answered UNAVAILABLE", || async {
        each(&|t| t.unavailable.load(Ordering::Acquire) >= 1).then_some(())
    })
    .await;
    let away = publish(&mut c, &spare, NODES[1], false).await.map(|_| ());
    refused(away, Code::Unavailable, "a publish that must be written while the API server is away");
    let node_side = stage(&tier, 0, &staged, &on_a).await;
    refused(node_side, Code::Unavailable, "NodeStage cannot read the fence: refused, never admitted");

    tokio::task::spawn_blocking(|| apiserver("start-apiserver")).await.unwrap();
    flags.away.store(false, Ordering::Release);
    let returned: Vec<usize> = tallies.iter().map(|t| t.acked.load(Ordering::Acquire)).collect();
    until("every client served again", || async {
        tallies.iter().zip(&returned).all(|(t, r)| t.acked.load(Ordering::Acquire) >= r + 2).then_some(())
    })
    .await;
    flags.stop.store(true, Ordering::Release);
    let sum = |f: fn(&Tally) -> &AtomicUsize| tallies.iter().map(|t| f(t).load(Ordering::Acquire)).sum::<usize>();
    eprintln!(
        "outage: {} steps acknowledged, {} UNAVAILABLE, {} refused by the starting API server",
        sum(|t| &t.acked),
        sum(|t| &t.unavailable),
        sum(|t| &t.starting)
    );
    let mut left = Vec::new();
    for client in clients {
        left.push(client.await.unwrap());
    }
    assert!(tier.controllers[0].alive(), "the leader kept running: {}", tier.controllers[0].log());
    assert_eq!(tier.controllers[0].pid(), leader);
    assert_eq!(tier.lease_holder().await.as_deref(), Some("ct3-r1"), "the same process leads");
    for (volume, acked) in volumes.iter().zip(&left) {
        let now = holders(&tier.stored(volume).await);
        assert_eq!(now, acked.iter().cloned().collect::<Vec<_>>(), "{volume}: the last acknowledged step stands");
    }
    // The refused publish was not acknowledged, so nothing of it is in the store; its outcome
    // was unknown to the leader (a write may land after its timeout), so the leader kept it
    // unsaved and fails closed: the CO's retry is acknowledged once durable (driver/tests/fencing.rs).
    assert_eq!(holders(&tier.stored(&spare).await), [], "the refused publish was not stored");
    let retried = publish(&mut c, &spare, NODES[1], false).await.expect("the CO's retry is served");
    assert_eq!(holders(&tier.stored(&spare).await), [(NODES[1].to_owned(), retried.admitted)], "durable once acked");
    stage(&tier, 0, &staged, &on_a).await.expect("NodeStage served again, the fence read");
    refused(stage(&tier, 1, &staged, &on_a).await, Code::FailedPrecondition, "node-b still fenced out");
}

/// The e2e mock CSI driver (`TETHER_CSI_MOCK`, built by tests/proxy/build-mock.sh) on a socket of
/// its own, attach disabled: the storage backend every proxied process shares, as a real driver's
/// controller and node plugins share theirs. Killed when dropped.
struct Mock {
    child: Child,
    dir: tempfile::TempDir,
}

impl Mock {
    async fn start(name: &str) -> Self {
        let bin = std::env::var("TETHER_CSI_MOCK").expect("TETHER_CSI_MOCK names the e2e mock's binary (make test)");
        let dir = tempfile::Builder::new().prefix("tether-mock-").tempdir().unwrap();
        let socket = dir.path().join("upstream.sock");
        let child = Command::new(bin)
            .args(["-endpoint", &socket.display().to_string(), "-name", name, "-disable-attach"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mock = Self { child, dir };
        until("the mock's socket", || async { connect_unix(&socket).await.ok().map(|_| ()) }).await;
        mock
    }

    fn endpoint(&self) -> String {
        format!("unix://{}", self.dir.path().join("upstream.sock").display())
    }
}

impl Drop for Mock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server and the e2e mock: tests/k8s/run.sh (make test-k8s-cluster)"]
async fn in_front_of_an_upstream_every_node_checks_the_controllers_fence_read_from_the_api_server() {
    // deploy/proxy/: Tether in front of a driver, on the cluster store. The node plugins know a
    // volume only from its TetherVolume, which the controller wrote at the first publish.
    let mock = Mock::start("ct4.tether.test").await;
    let tier = Tier::start_with("ct4", 15, &["--upstream", &mock.endpoint()]).await;
    let mut c = tier.controller(0).await;
    let (a, b) = (0, 1);
    let volume = create(&mut c, "ct4-rwo").await;
    let on_a = publish(&mut c, &volume, NODES[a], false).await.unwrap();
    assert!(tier.stored(&volume).await.spec.meta.parameters.contains_key("tether.io/upstream"), "recorded as proxied");
    stage(&tier, a, &volume, &on_a).await.expect("node-a stages: fence checked, then forwarded");
    refused(stage(&tier, b, &volume, &on_a).await, Code::FailedPrecondition, "node-b is not in node-a's fence");
    refused(publish(&mut c, &volume, NODES[b], false).await.map(|_| ()), Code::FailedPrecondition, "RWO on node-a");

    unpublish(&mut c, &volume, NODES[a]).await.expect("node-a unpublished");
    let on_b = publish(&mut c, &volume, NODES[b], false).await.unwrap();
    assert!(on_b.fence > on_a.fence, "the handover raised the fence: {on_b:?} after {on_a:?}");
    stage(&tier, b, &volume, &on_b).await.expect("node-b stages now");
    refused(stage(&tier, a, &volume, &on_a).await, Code::FailedPrecondition, "node-a is fenced out");
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "needs the real API server: tests/k8s/run.sh (make test-k8s-cluster)"]
async fn a_node_plugin_on_the_cluster_store_registers_itself_with_the_kubelet() {
    // What a kubelet's plugin watcher does with the socket it finds in plugins_registry: GetInfo,
    // NotifyRegistrationStatus, then CSI calls on the endpoint it was given (the path the kubelet
    // sees, which in a pod differs from the container's own; here the test reaches the socket
    // directly).
    use tether_driver::csi::NodeGetInfoRequest;
    use tether_driver::registration::api::registration_client::RegistrationClient;
    use tether_driver::registration::api::{InfoRequest, RegistrationStatus};
    setup().await;
    let registry = tempfile::Builder::new().prefix("tether-plugins-registry-").tempdir().unwrap();
    let kubelet_path = "/var/lib/kubelet/plugins/tether.csi.dev/csi.sock";
    let registry_arg = registry.path().display().to_string();
    let args = ["--node-id", NODES[0], "--node-plugin", "--kubelet-registration-dir", &registry_arg];
    let args = [&args[..], &["--kubelet-registration-path", kubelet_path]].concat();
    let node = Proc::spawn("ct5-node-a", &env("TETHER_K8S_NODE_KUBECONFIG"), true, &args);
    let socket = registry.path().join("tether.csi.dev-reg.sock");
    let channel = until("the registration socket", || async { connect_unix(&socket).await.ok() }).await;
    let mut kubelet = RegistrationClient::new(channel);
    let info = kubelet.get_info(InfoRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (info.r#type.as_str(), info.name.as_str(), info.endpoint.as_str()),
        ("CSIPlugin", "tether.csi.dev", kubelet_path)
    );
    assert_eq!(info.supported_versions, ["1.0.0"]);
    let status = RegistrationStatus { plugin_registered: true, error: String::new() };
    kubelet.notify_registration_status(status).await.unwrap();
    until("rds_csi_kubelet_registered 1", || async {
        node.get("/metrics").filter(|(_, page)| page.contains("rds_csi_kubelet_registered 1")).map(|_| ())
    })
    .await;
    let got = NodeClient::new(node.channel().await).node_get_info(NodeGetInfoRequest {}).await.unwrap().into_inner();
    assert_eq!(got.node_id, NODES[0], "{}", node.log());
}
