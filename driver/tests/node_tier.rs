//! Tether volumes used by real Pods on real kubelets (issue 21; `make test-node`, through
//! `tests/node/tier.sh` inside `tests/k8s/run.sh --stack` with the replicas on the cluster store;
//! each test is ignored in a plain `cargo test`). Three nodes of this machine, each a containerd
//! and a kubelet with tether-csi as its node plugin; Pods name their node (`nodeName`: no
//! scheduler runs). Assertions are on API objects, events, the driver's metrics, the
//! `TetherVolume` the controller writes and the mounts the kubelets make; every wait polls an
//! observable state with a deadline.

mod apiserver;
mod tier;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use apiserver::env;
use k8s_openapi::api::core::v1::{Node, PersistentVolume, Pod};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{DeleteParams, ListParams, LogParams, Patch, PatchParams, PostParams};
use serde_json::json;
use tether_driver::store::kube::resource::{object_name, TetherVolume};
use tier::{from_json, handle, pv_name, sample, until, watch_for_two_attached, Tier, CLAIM};

const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1";
/// What the Pods write and read back through a volume.
const MARK: &str = "tether-was-here";

/// The nodes tier.sh started: name and folder (its `kubelet.pid`, `plugin.metrics`).
fn nodes() -> BTreeMap<String, PathBuf> {
    env("TETHER_NODES")
        .split_whitespace()
        .map(|n| {
            let (name, dir) = n.split_once('=').unwrap();
            (name.to_owned(), PathBuf::from(dir))
        })
        .collect()
}

/// The names of the nodes, in order (node-a, node-b, node-c).
fn names() -> Vec<String> {
    nodes().into_keys().collect()
}

/// A busybox Pod on `node` running `script`, the claim `claim` at /data (a filesystem) or
/// /dev/data (a block device).
async fn pod(tier: &Tier, ns: &str, name: &str, node: &str, claim: &str, block: bool, script: &str) {
    let mut container = json!({
        "name": "c", "image": BUSYBOX, "imagePullPolicy": "Never", "command": ["sh", "-c", script],
    });
    tier::use_volume(&mut container, block);
    let pod: Pod = from_json(json!({
        "metadata": { "name": name },
        "spec": {
            "nodeName": node,
            "automountServiceAccountToken": false,
            "terminationGracePeriodSeconds": 1,
            "restartPolicy": "Never",
            "containers": [container],
            "volumes": [{ "name": "data", "persistentVolumeClaim": { "claimName": claim } }],
        },
    }));
    tier.namespaced::<Pod>(ns).create(&PostParams::default(), &pod).await.unwrap();
}

async fn phase(tier: &Tier, ns: &str, name: &str) -> Option<String> {
    tier.namespaced::<Pod>(ns).get(name).await.ok()?.status?.phase
}

async fn running(tier: &Tier, ns: &str, name: &str) {
    until(&format!("Pod {ns}/{name} Running"), || async {
        (phase(tier, ns, name).await.as_deref() == Some("Running")).then_some(())
    })
    .await;
}

/// Waits until the Pod's log (read through the API server from its kubelet) contains `text`;
/// fails at once, with the log, if the Pod ended without it.
async fn logged(tier: &Tier, ns: &str, name: &str, text: &str) -> String {
    until(&format!("{ns}/{name} logging {text:?}"), || async {
        let ended = matches!(phase(tier, ns, name).await.as_deref(), Some("Failed" | "Succeeded"));
        let log = tier.namespaced::<Pod>(ns).logs(name, &LogParams::default()).await.ok()?;
        assert!(!ended || log.contains(text), "{ns}/{name} ended, its log: {log:?}");
        log.contains(text).then_some(log)
    })
    .await
}

/// A claim named `claim` of the `tether` `StorageClass`, provisioned for `node`, bound; its PV.
async fn claim(tier: &Tier, ns: &str, claim: &str, rwx_block: bool, node: &str) -> PersistentVolume {
    tier.claim_named(ns, claim, "16Mi", rwx_block, node).await;
    tier.bound_named(ns, claim).await
}

/// The nodes where the kubelet has the volume `id` staged: a mount at a `globalmount` under the
/// node's folder whose source is the volume's data (`data/<id>` in the shared state directory).
fn staged_on(id: &str) -> Vec<String> {
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let data = format!("/data/{id}");
    let mut on = Vec::new();
    for (name, dir) in nodes() {
        let dir = format!("{}/", dir.display());
        let staged = mounts.lines().any(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            fields[3].ends_with(&data) && fields[4].starts_with(&dir) && fields[4].ends_with("/globalmount")
        });
        if staged {
            on.push(name);
        }
    }
    on
}

/// The nodes in the fence the controller last applied for the PV's volume, read from its
/// `TetherVolume`.
async fn fenced(tier: &Tier, pv: &PersistentVolume) -> Vec<String> {
    let volumes = tier.all::<TetherVolume>();
    let object = volumes.get(&object_name(handle(pv))).await.unwrap();
    object.spec.fence.map(|f| f.nodes.into_iter().map(|n| n.node).collect()).unwrap_or_default()
}

/// Waits until the fence holds exactly `nodes`.
async fn fence_is(tier: &Tier, pv: &PersistentVolume, nodes: &[&str]) {
    until(&format!("{}'s fence holding only {nodes:?}", pv_name(pv)), || async {
        let mut now = fenced(tier, pv).await;
        now.sort();
        (now == nodes).then_some(())
    })
    .await;
}

/// The attached `VolumeAttachments` of the PV, by node.
async fn attached_on(tier: &Tier, pv: &str) -> Vec<String> {
    let all = tier.all::<VolumeAttachment>().list(&ListParams::default()).await.unwrap().items;
    let mut on: Vec<String> = all
        .into_iter()
        .filter(|va| va.spec.source.persistent_volume_name.as_deref() == Some(pv))
        .filter(|va| va.status.as_ref().is_some_and(|s| s.attached))
        .map(|va| va.spec.node_name)
        .collect();
    on.sort();
    on
}

/// The sum of a series over every node plugin's `/metrics`.
fn node_plugins_sample(series: &str) -> i64 {
    nodes()
        .values()
        .map(|dir| {
            let address = std::fs::read_to_string(dir.join("plugin.metrics")).unwrap();
            let page = tier::get(address.trim(), "/metrics").expect("a node plugin's /metrics");
            sample(&page, series)
        })
        .sum()
}

const NODE_STAGES: &str = "rds_csi_attachment_operation_duration_seconds_count{operation=\"node_stage\"}";

/// How many rounds s1 races two Pods for a claim.
const RACE_ROUNDS: usize = 20;

#[tokio::test]
#[ignore = "needs the nodes of tests/node/tier.sh (make test-node)"]
async fn s1_two_pods_on_two_nodes_racing_for_an_rwo_claim_one_runs_the_other_waits() {
    let tier = Tier::new().await;
    let ns = "n1";
    tier.namespace(ns).await;
    let names = names();
    let (a, b) = (names[0].as_str(), names[1].as_str());
    // A claim per round, provisioned first (alternating the node the provisioner is told):
    // each round's two Pods race for a volume no node had.
    let mut pvs = Vec::new();
    for round in 0..RACE_ROUNDS {
        pvs.push(claim(&tier, ns, &format!("c{round}"), false, [a, b][round % 2]).await);
    }
    let stages_before = node_plugins_sample(NODE_STAGES);
    let mut watches = Vec::new();
    let mut wins = [0; 2];
    for (round, pv) in pvs.iter().enumerate() {
        let name = pv_name(pv);
        watches.push(watch_for_two_attached(&tier.admin, name));
        let claim = format!("c{round}");
        let pods = [format!("a{round}"), format!("b{round}")];
        let script = format!("echo {MARK} >/data/f && exec sleep 100000");
        tokio::join!(
            pod(&tier, ns, &pods[0], a, &claim, false, &script),
            pod(&tier, ns, &pods[1], b, &claim, false, &script)
        );
        let won = until(&format!("round {round}: one racing Pod Running"), || async {
            let phases = [phase(&tier, ns, &pods[0]).await, phase(&tier, ns, &pods[1]).await];
            let up: Vec<usize> = (0..2).filter(|&i| phases[i].as_deref() == Some("Running")).collect();
            assert!(up.len() < 2, "round {round}: both Pods Running on one RWO volume");
            up.first().copied()
        })
        .await;
        let lost = 1 - won;
        let nodes = [a, b];
        tier.kept_out_of(ns, &pods[lost], &claim, nodes[won]).await;
        assert_eq!(phase(&tier, ns, &pods[lost]).await.as_deref(), Some("Pending"), "round {round}");
        assert_eq!(attached_on(&tier, name).await, [nodes[won]], "round {round}");
        assert_eq!(staged_on(handle(pv)), [nodes[won]], "round {round}: staged");
        wins[won] += 1;
        // The loser's Pod goes first, or the controller would attach its node once the winner's goes.
        for p in [&pods[lost], &pods[won]] {
            tier.namespaced::<Pod>(ns).delete(p, &DeleteParams::default()).await.unwrap();
        }
    }
    // Every round's winner unstaged and detached by its kubelet and the controller.
    for pv in &pvs {
        until(&format!("{} detached everywhere", pv_name(pv)), || async {
            attached_on(&tier, pv_name(pv)).await.is_empty().then_some(())
        })
        .await;
        assert!(staged_on(handle(pv)).is_empty(), "{} still staged", pv_name(pv));
    }
    for (seen, task) in watches {
        task.abort();
        let seen = seen.lock().unwrap().clone();
        assert!(seen.is_empty(), "two nodes attached at once: {seen:?}");
    }
    // One NodeStage per round, on the winner's node (the loser's kubelet waits for an attach).
    let stages = node_plugins_sample(NODE_STAGES) - stages_before;
    assert_eq!(stages, i64::try_from(RACE_ROUNDS).unwrap(), "NodeStage calls on the node plugins");
    println!("s1: {RACE_ROUNDS} rounds, {} won by {a}, {} by {b}", wins[0], wins[1]);
}

/// A source Pod on the first node writes MARK at the start of an RWX block volume and stays; the
/// target Pod on the second opens the device and reads it back. Returns the PV once both run,
/// the volume attached to both nodes, the fence holding both.
async fn migration_started(tier: &Tier, ns: &str, a: &str, b: &str) -> PersistentVolume {
    tier.namespace(ns).await;
    let pv = claim(tier, ns, CLAIM, true, a).await;
    let write = format!("echo {MARK} | dd of=/dev/data conv=fsync 2>/dev/null && echo written && exec sleep 100000");
    pod(tier, ns, "source", a, CLAIM, true, &write).await;
    logged(tier, ns, "source", "written").await;
    let read = "dd if=/dev/data bs=512 count=1 iflag=direct 2>/dev/null | head -n 1 && exec sleep 100000";
    pod(tier, ns, "target", b, CLAIM, true, read).await;
    running(tier, ns, "source").await;
    running(tier, ns, "target").await;
    // The target read through its own node what the source wrote through its.
    logged(tier, ns, "target", MARK).await;
    assert_eq!(attached_on(tier, pv_name(&pv)).await, [a, b]);
    tier.event(ns, "MigrationStarted", b).await;
    fence_is(tier, &pv, &[a, b]).await;
    pv
}

#[tokio::test]
#[ignore = "needs the nodes of tests/node/tier.sh (make test-node)"]
async fn s2_a_block_rwx_volume_migrates_live_between_nodes_and_a_third_is_refused() {
    let tier = Tier::new().await;
    let names = names();
    let (a, b, c) = (names[0].as_str(), names[1].as_str(), names[2].as_str());
    let before = tier.metrics().await;
    let ns = "n2";
    let pv = migration_started(&tier, ns, a, b).await;

    // A third node while two hold it: refused (the migration limit), its Pod kept waiting.
    pod(&tier, ns, "third", c, CLAIM, true, "exec sleep 100000").await;
    let error = until(&format!("the attachError on {c}"), || async {
        tier.attachments(pv_name(&pv), c).await.iter().find_map(tier::attach_error)
    })
    .await;
    assert!(error.contains("migration"), "attachError {error:?}");
    assert_eq!(phase(&tier, ns, "third").await.as_deref(), Some("Pending"));
    let refused = "rds_csi_attachment_attach_total{status=\"migration_limit\"}";
    assert!(sample(&tier.metrics().await, refused) > sample(&before, refused));
    tier.namespaced::<Pod>(ns).delete("third", &DeleteParams::default()).await.unwrap();
    tier.detached(pv_name(&pv), c).await;

    // Completion: the source goes, the target keeps the volume alone.
    tier.namespaced::<Pod>(ns).delete("source", &DeleteParams::default()).await.unwrap();
    tier.detached(pv_name(&pv), a).await;
    fence_is(&tier, &pv, &[b]).await;
    tier.event(ns, "MigrationCompleted", b).await;
    assert_eq!(phase(&tier, ns, "target").await.as_deref(), Some("Running"));

    // Abort: on a second volume, the target goes and the source keeps it.
    let ns = "n2-abort";
    let pv = migration_started(&tier, ns, a, b).await;
    tier.namespaced::<Pod>(ns).delete("target", &DeleteParams::default()).await.unwrap();
    tier.detached(pv_name(&pv), b).await;
    fence_is(&tier, &pv, &[a]).await;
    tier.event(ns, "MigrationFailed", "aborted").await;
    let after = tier.metrics().await;
    for result in ["completed", "aborted"] {
        let series = format!("rds_csi_migration_migrations_total{{result=\"{result}\"}}");
        assert_eq!(sample(&after, &series) - sample(&before, &series), 1, "{result}: {after}");
    }
}

#[tokio::test]
#[ignore = "needs the nodes of tests/node/tier.sh (make test-node); run last: it kills a kubelet"]
async fn s3_a_lost_node_out_of_service_gives_its_volume_to_the_replacement_pod() {
    let tier = Tier::new().await;
    let names = names();
    let (a, b) = (names[0].as_str(), names[1].as_str());
    let ns = "n3";
    tier.namespace(ns).await;
    let pv = claim(&tier, ns, CLAIM, false, a).await;
    pod(&tier, ns, "first", a, CLAIM, false, &format!("echo {MARK} >/data/f && exec sleep 100000")).await;
    running(&tier, ns, "first").await;

    // The node is lost: its kubelet killed (its containers stay, as on a partitioned node).
    let kubelet = std::fs::read_to_string(nodes()[a].join("kubelet.pid")).unwrap();
    let kubelet = nix::unistd::Pid::from_raw(kubelet.trim().parse().unwrap());
    let lost = Instant::now();
    nix::sys::signal::kill(kubelet, nix::sys::signal::Signal::SIGKILL).unwrap();
    // The administrator marks it out of service; the replacement Pod is made on another node.
    let taint = json!({ "spec": { "taints": [{
        "key": "node.kubernetes.io/out-of-service", "value": "nodeshutdown", "effect": "NoExecute",
    }] } });
    tier.all::<Node>().patch(a, &PatchParams::default(), &Patch::Merge(&taint)).await.unwrap();
    pod(&tier, ns, "replacement", b, CLAIM, false, "cat /data/f && exec sleep 100000").await;

    // The node lifecycle controller finds it NotReady, the taint evicts the Pod, pod GC deletes it
    // (its node out of service), and the attach/detach controller detaches at once.
    running(&tier, ns, "replacement").await;
    let elapsed = lost.elapsed();
    assert_eq!(attached_on(&tier, pv_name(&pv)).await, [b]);
    fence_is(&tier, &pv, &[b]).await;
    logged(&tier, ns, "replacement", MARK).await;
    assert!(tier.namespaced::<Pod>(ns).get_opt("first").await.unwrap().is_none(), "the lost node's Pod is left");
    // A figure, not an assertion (tests/node/README.md).
    println!("s3: kubelet killed to the replacement Pod Running on {b}: {:.1} s", elapsed.as_secs_f64());
}

/// How many Pods s4 creates while the leader is killed.
const FAILOVER_PODS: usize = 30;

#[tokio::test]
#[ignore = "needs the nodes of tests/node/tier.sh (make test-node)"]
async fn s4_the_leader_killed_while_pods_are_created_every_pod_runs_with_one_attachment() {
    let tier = Tier::new().await;
    let names = names();
    let ns = "n4";
    tier.namespace(ns).await;
    let mut pvs = Vec::new();
    for i in 0..FAILOVER_PODS {
        pvs.push(claim(&tier, ns, &format!("c{i}"), false, &names[i % names.len()]).await);
    }
    let leader = tier.leader().await;
    let child = std::path::Path::new(&env("TETHER_TIER_DIR")).join(format!("{leader}.child.pid"));
    let child = nix::unistd::Pid::from_raw(std::fs::read_to_string(child).unwrap().trim().parse().unwrap());
    let started = Instant::now();
    let creating = async {
        for i in 0..FAILOVER_PODS {
            let (name, claim) = (format!("p{i}"), format!("c{i}"));
            pod(&tier, ns, &name, &names[i % names.len()], &claim, false, "exec sleep 100000").await;
        }
    };
    // SIGKILL once a third of the Pods exist: the others are created while no replica serves.
    let kill = async {
        until("a third of the Pods created", || async {
            let pods = tier.namespaced::<Pod>(ns).list(&ListParams::default()).await.ok()?.items;
            (pods.len() >= FAILOVER_PODS / 3).then_some(())
        })
        .await;
        nix::sys::signal::kill(child, nix::sys::signal::Signal::SIGKILL).unwrap();
    };
    tokio::join!(creating, kill);
    apiserver::until_within(tier::STORM_DEADLINE, &format!("all {FAILOVER_PODS} Pods Running"), || async {
        let pods = tier.namespaced::<Pod>(ns).list(&ListParams::default()).await.ok()?.items;
        let up = pods.iter().filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running")).count();
        (up == FAILOVER_PODS).then_some(())
    })
    .await;
    let all = started.elapsed();
    for (i, pv) in pvs.iter().enumerate() {
        assert_eq!(attached_on(&tier, pv_name(pv)).await, [names[i % names.len()].as_str()], "{}", pv_name(pv));
        assert_eq!(staged_on(handle(pv)), [names[i % names.len()].as_str()], "{} staged", pv_name(pv));
    }
    let page = tier.metrics().await;
    assert!(sample(&page, "rds_csi_attachment_reconcile_total{action=\"rebuilt\"}") >= 1, "{page}");
    println!(
        "s4: leader {leader} SIGKILLed while {FAILOVER_PODS} Pods were created: all Running after {:.1} s",
        all.as_secs_f64()
    );
}
