//! The contract corpus (tests/contract/*.json) over the driver's gRPC socket, on a manual clock:
//! publish and unpublish are CSI calls; `check` and `stats` read the in-process engine. A
//! scenario marked `"csi": "<why>"` has no CSI equivalent and is counted and listed, never run
//! silently short; an unmarked scenario with a step CSI cannot express fails. With
//! `TETHER_CORPUS_STORE=kubernetes` (through tests/k8s/run.sh, `make test-k8s`) every driver runs
//! on the cluster store instead of the embedded one. With `TETHER_CORPUS_PROXY=1` (`make
//! test-proxy`) the calls go through Tether's proxy (`--upstream`) in front of a recording
//! upstream that attaches and accepts every node, and each publish also checks what reached
//! the upstream: a refused publish never does, an accepted one exactly once.

mod apiserver;
mod common;
#[path = "../../core/tests/corpus/compare.rs"]
mod compare;
#[path = "../../core/tests/corpus/files.rs"]
mod files;
mod proxy_support;
#[path = "../../core/tests/corpus/shape.rs"]
mod shape;
#[path = "../../core/tests/corpus/step.rs"]
mod step;
#[path = "../../core/tests/corpus/view.rs"]
mod view;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use kube::api::{DeleteParams, ListParams};

use serde_json::{json, Value};
use tether_core::{check_volume_id, Attachment, ManualClock, Stats};
use tether_driver::controller::{EPOCH_KEY, FENCE_EPOCH_KEY};
use tether_driver::csi::controller_client::ControllerClient;
use tether_driver::csi::volume_capability::access_mode::Mode;
use tether_driver::csi::{ControllerPublishVolumeRequest, ControllerUnpublishVolumeRequest, DeleteVolumeRequest};
use tether_driver::k8s;
use tether_driver::store::kube::resource::{TetherTerm, TetherVolume, TERM_OBJECT};
use tether_driver::store::{KubeStore, Role, VolumeStore};

use common::{capability, Harness};
use compare::judge;
use proxy_support::{serve_proxy, serve_upstream, Recording, Served};
use shape::Shape;
use step::Fields;

/// The driver starts at term 1: its first change issues `1 << 32` where the corpus says 1.
const SHAPE: Shape = Shape { base: (1 << 32) - 1 };
const START_UNIX_S: u64 = 1_764_000_000;

/// A scenario's world: a driver on a fresh state directory, the controller client the calls go
/// through (the driver's, or its proxy's), and the corpus's volume names mapped to the ids
/// `CreateVolume` gave them.
struct World {
    h: Harness,
    controller: ControllerClient<tonic::transport::Channel>,
    proxied: Option<Proxied>,
    ids: HashMap<String, String>,
}

/// With `TETHER_CORPUS_PROXY=1`: the recording upstream and Tether's proxy in front of it.
struct Proxied {
    upstream: Recording,
    served: [Served; 2],
}

impl Proxied {
    /// The publishes the upstream got so far, as (volume, node).
    fn publishes(&self) -> Vec<(String, String)> {
        self.upstream.of("ControllerPublishVolume").into_iter().map(|c| (c.volume, c.node)).collect()
    }
}

fn proxied() -> bool {
    std::env::var("TETHER_CORPUS_PROXY").is_ok_and(|v| v == "1")
}

/// Whether a scenario passed, failed (why), or has no CSI equivalent (why).
enum Verdict {
    Passed,
    Failed(String),
    NotCsi(String),
}

fn ident(v: &Value) -> Result<String, String> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_owned());
    }
    let mut f = Fields::new(v, "identifier")?;
    let s = f.str("repeat")?.repeat(usize::try_from(f.u64("times")?).unwrap());
    f.finish().map(|()| s)
}

/// The gRPC code DESIGN.md's table gives each core error: over CSI an error is compared by
/// its code; its details are the other runners' to check.
fn code_of(kind: &str) -> &'static str {
    match kind {
        "InvalidInput" => "InvalidArgument",
        "Incompatible" => "AlreadyExists",
        "BadSnapshot" => "Internal",
        _ => "FailedPrecondition",
    }
}

fn over_csi(want: Value) -> Value {
    match want.get("error").and_then(Value::as_str) {
        Some(kind) => json!({"error": code_of(kind)}),
        None => want,
    }
}

/// With `TETHER_CORPUS_STORE=kubernetes`, a cluster store (the driver's identity) that holds
/// nothing: the last scenario's objects and the term singleton are deleted first, so the
/// driver starts at term 1, as on a fresh state directory.
async fn cluster_store(dir: &std::path::Path) -> Option<Arc<dyn VolumeStore>> {
    if std::env::var("TETHER_CORPUS_STORE").ok()? != "kubernetes" {
        return None;
    }
    let config = |name: &str| {
        let path = apiserver::env(name);
        async move { k8s::config(Some(std::path::Path::new(&path))).await.unwrap().unwrap() }
    };
    let admin = kube::Client::try_from(config("KUBECONFIG").await).unwrap();
    for file in ["00-crd.yaml", "23-rbac-store.yaml"] {
        apiserver::apply_manifest(&admin, file).await;
    }
    let volumes: kube::Api<TetherVolume> = kube::Api::all(admin.clone());
    let emptied = apiserver::until_within(Duration::from_mins(1), "the CRDs to be served", || {
        let volumes = volumes.clone();
        async move { volumes.delete_collection(&DeleteParams::default(), &ListParams::default()).await.ok() }
    });
    emptied.await;
    let terms: kube::Api<TetherTerm> = kube::Api::all(admin);
    match terms.delete(TERM_OBJECT, &DeleteParams::default()).await {
        Err(kube::Error::Api(s)) if s.code != 404 => panic!("delete the term: {s}"),
        _ => {}
    }
    let driver = config("TETHER_K8S_DRIVER_KUBECONFIG").await;
    let store = KubeStore::open(driver, dir, 1 << 40, Role::Controller, Duration::from_secs(10)).unwrap();
    Some(Arc::new(store))
}

impl World {
    async fn start() -> Self {
        let clock = ManualClock::with_wall_time(SystemTime::UNIX_EPOCH + Duration::from_secs(START_UNIX_S));
        let dir = tempfile::tempdir().unwrap();
        let cluster = cluster_store(dir.path()).await;
        let h = Harness::start_custom(dir, clock, |parts| {
            if let Some(store) = cluster {
                parts.store = store;
            }
        })
        .await;
        let mut w = Self { controller: h.controller.clone(), h, proxied: None, ids: HashMap::new() };
        if proxied() {
            let upstream = Recording::default();
            let upstream_socket = w.h.dir.path().join("upstream.sock");
            let up = serve_upstream(&upstream, &upstream_socket);
            let (proxy, channel) = serve_proxy(&w.h.driver, &upstream_socket, &w.h.dir.path().join("proxy.sock")).await;
            w.controller = ControllerClient::new(channel);
            w.proxied = Some(Proxied { upstream, served: [proxy, up] });
        }
        w
    }

    /// The CSI id of a corpus volume, created (as a block volume, which takes every access)
    /// on first use; an invalid identifier goes to the driver as it is. Through the proxy the
    /// upstream owns the volumes: the name is the id, recorded by Tether at its first publish.
    async fn volume(&mut self, name: &str) -> String {
        if check_volume_id(name).is_err() || self.proxied.is_some() {
            return name.to_owned();
        }
        if let Some(id) = self.ids.get(name) {
            return id.clone();
        }
        let id = self.h.create(name, true, &[]).await;
        self.ids.insert(name.to_owned(), id.clone());
        id
    }

    async fn run(steps: &[Value]) -> Result<(), String> {
        let mut w = Self::start().await;
        for (i, s) in steps.iter().enumerate() {
            w.step(s).await.map_err(|e| format!("step {} ({}): {e}", i + 1, s.get("op").unwrap_or(&Value::Null)))?;
        }
        if let Some(p) = w.proxied.take() {
            for served in p.served {
                served.stop().await;
            }
        }
        w.h.stop().await;
        Ok(())
    }

    async fn step(&mut self, s: &Value) -> Result<(), String> {
        let mut f = Fields::new(s, "step")?;
        f.opt_str("note")?;
        let expect = f.opt("expect").cloned().map(over_csi);
        let op = f.str("op")?;
        let engine = self.h.driver.engine.clone();
        let before = engine.snapshot();
        let got = match op.as_str() {
            "publish" => self.publish(&mut f).await?,
            "unpublish" => self.unpublish(&mut f).await?,
            "advance" => {
                self.h.clock.advance(Duration::from_secs_f64(f.f64("seconds")?));
                json!({})
            }
            "check" => {
                let v = self.volume(&ident(f.get("volume")?)?).await;
                view::check(&engine, SHAPE, &v, f.opt_f64("grace_s")?.map(Duration::from_secs_f64))
            }
            "stats" => view::stats(&engine),
            "forget" => self.delete(&ident(f.get("volume")?)?).await,
            other => return Err(format!("{other:?} has no CSI equivalent: mark the scenario \"csi\": \"<why>\"")),
        };
        f.finish()?;
        if got.get("error").is_some() && engine.snapshot() != before {
            return Err(format!("refused with {got}, but the state changed"));
        }
        view::invariants(&engine)?;
        judge(expect.as_ref(), &got)
    }

    fn read(&self, id: &str) -> (Stats, Option<Attachment>) {
        let e = &self.h.driver.engine;
        (e.stats(), e.get(id).ok().flatten())
    }

    /// The volume's epoch and fence now, in the corpus's numbering.
    fn after(&self, id: &str, mut out: Value) -> Value {
        let e = &self.h.driver.engine;
        out["epoch"] = json!(SHAPE.epoch(e.epoch(id).unwrap()));
        out["fence"] = e.fence(id).unwrap().map_or(Value::Null, |f| SHAPE.fence(&f));
        out
    }

    async fn publish(&mut self, f: &mut Fields<'_>) -> Result<Value, String> {
        let v = self.volume(&ident(f.get("volume")?)?).await;
        let node = ident(f.get("node")?)?;
        let rwx = f.opt_str("mode")?.is_some_and(|m| m == "RWX");
        let readonly = f.bool_or("readonly", false)?;
        if f.has("timeout_s") {
            return Err("timeout_s has no CSI equivalent (the timeout is a volume parameter): mark the scenario".into());
        }
        let mode = if rwx { Mode::MultiNodeMultiWriter } else { Mode::SingleNodeWriter };
        let req = ControllerPublishVolumeRequest {
            volume_id: v.clone(),
            node_id: node.clone(),
            volume_capability: Some(capability(true, mode)),
            readonly,
            ..Default::default()
        };
        let (s0, at0) = self.read(&v);
        let forwarded = self.proxied.as_ref().map(Proxied::publishes);
        let answer = self.controller.controller_publish_volume(req).await;
        if let (Some(p), Some(before)) = (&self.proxied, forwarded) {
            let new = p.publishes()[before.len()..].to_vec();
            let expected = if answer.is_ok() { vec![(v.clone(), node.clone())] } else { vec![] };
            if new != expected {
                let outcome = answer.as_ref().map_or_else(|s| format!("{:?}", s.code()), |_| "accepted".into());
                return Err(format!("the upstream got {new:?} for a publish {outcome} by Tether, not {expected:?}"));
            }
        }
        let resp = match answer {
            Ok(r) => r.into_inner(),
            Err(status) => return Ok(json!({"error": format!("{:?}", status.code())})),
        };
        let (s1, at1) = self.read(&v);
        let ctx = |k: &str| resp.publish_context.get(k).and_then(|e| e.parse::<u64>().ok()).map(|e| SHAPE.epoch(e));
        let mut out = json!({"admitted": ctx(EPOCH_KEY), "fence": SHAPE.fence(&self.h.driver.engine.fence(&v).unwrap().unwrap())});
        out["epoch"] = json!(ctx(FENCE_EPOCH_KEY));
        let primary = at0.as_ref().map(|a| a.nodes.primary.to_string());
        if s1.handed_off > s0.handed_off {
            out["outcome"] = json!("HandedOff");
            out["from"] = json!(primary);
        } else if s1.migrations_started > s0.migrations_started {
            out["outcome"] = json!("MigrationStarted");
            out["source"] = json!(primary);
            out["timeout_s"] = json!(at1.and_then(|a| a.migration).map(|m| m.timeout.as_secs_f64()));
        } else if s1.already_attached > s0.already_attached {
            out["outcome"] = json!("AlreadyAttached");
        } else if s1.attached > s0.attached {
            out["outcome"] = json!("Attached");
        }
        Ok(out)
    }

    /// `forget` is `DeleteVolume`: the driver forgets the engine's record of a deleted volume.
    /// A later mention of the name creates a new volume.
    async fn delete(&mut self, name: &str) -> Value {
        let id = self.volume(name).await;
        let before = self.h.driver.engine.stats().forgotten;
        let req = DeleteVolumeRequest { volume_id: id, ..Default::default() };
        if let Err(status) = self.controller.delete_volume(req).await {
            return json!({"error": format!("{:?}", status.code())});
        }
        self.ids.remove(name);
        json!({"forgotten": self.h.driver.engine.stats().forgotten > before})
    }

    async fn unpublish(&mut self, f: &mut Fields<'_>) -> Result<Value, String> {
        let v = self.volume(&ident(f.get("volume")?)?).await;
        let node = f.opt("node").map(ident).transpose()?.unwrap_or_default();
        let (s0, at0) = self.read(&v);
        let req = ControllerUnpublishVolumeRequest { volume_id: v.clone(), node_id: node, ..Default::default() };
        if let Err(status) = self.controller.controller_unpublish_volume(req).await {
            return Ok(json!({"error": format!("{:?}", status.code())}));
        }
        let (s1, _) = self.read(&v);
        let names: Vec<String> = at0.iter().flat_map(|a| a.nodes.iter().map(ToString::to_string)).collect();
        let pair = || json!({"source": names.first(), "target": names.get(1)});
        let mut out = if s1.detached > s0.detached {
            json!({"outcome": "Detached", "nodes": names})
        } else if s1.migrations_completed > s0.migrations_completed {
            let mut o = pair();
            o["outcome"] = json!("MigrationCompleted");
            o["duration_s"] = json!(at0.and_then(|a| a.migration).map(|m| m.elapsed.as_secs_f64()));
            o
        } else if s1.migrations_aborted > s0.migrations_aborted {
            let mut o = pair();
            o["outcome"] = json!("MigrationAborted");
            o
        } else {
            return Ok(json!({"outcome": "NotAttached"}));
        };
        out = self.after(&v, out);
        Ok(out)
    }
}

/// Runs one scenario unless it is marked as having no CSI equivalent.
async fn judge_scenario(scenario: files::Read) -> (String, Verdict) {
    match scenario {
        Err((name, why)) => (name, Verdict::Failed(why)),
        Ok(files::Scenario { name, csi: Some(why), .. }) => (name, Verdict::NotCsi(why)),
        Ok(s) => (s.name, World::run(&s.steps).await.map_or_else(Verdict::Failed, |()| Verdict::Passed)),
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let (mut passed, mut failed, mut not_csi) = (0, 0, 0);
    for path in files::files() {
        let scenarios = files::read(&path).unwrap_or_else(|e| vec![Err((path.display().to_string(), e))]);
        for scenario in scenarios {
            let (name, verdict) = judge_scenario(scenario).await;
            match verdict {
                Verdict::Passed => {
                    passed += 1;
                    println!("ok   {name}");
                }
                Verdict::Failed(why) => {
                    failed += 1;
                    println!("FAIL {name}: {why}");
                }
                Verdict::NotCsi(why) => {
                    not_csi += 1;
                    println!("n/a  {name}: no CSI equivalent ({why})");
                }
            }
        }
    }
    println!("{not_csi} scenarios have no CSI equivalent (marked \"csi\" in the corpus; run by the other runners)");
    println!("corpus-csi: {passed} passed, {failed} failed");
    if failed > 0 || passed == 0 {
        std::process::exit(1);
    }
}
