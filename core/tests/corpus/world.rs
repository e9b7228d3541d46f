//! One scenario's world: an engine on a manual clock, the steps applied to it in order, and
//! the engine's invariants checked after every step.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};
use tether_core::{Access, AccessMode, Clock, Config, CoreError, Engine, ManualClock};

use crate::compare::judge;
use crate::shape::Shape;
use crate::step::Fields;
use crate::view;

/// The corpus's wall time at the start of every scenario (tests/contract/README.md).
pub const START_UNIX_S: u64 = 1_764_000_000;

pub struct World {
    engine: Engine,
    clock: Arc<ManualClock>,
    shape: Shape,
}

/// An identifier: a string, or `{"repeat": s, "times": n}` for the length limits.
pub fn ident(v: &Value) -> Result<String, String> {
    if let Some(s) = v.as_str() {
        return Ok(s.to_owned());
    }
    let mut f = Fields::new(v, "identifier")?;
    let s = f.str("repeat")?.repeat(usize::try_from(f.u64("times")?).unwrap());
    f.finish().map(|()| s)
}

pub fn parse_access(mode: &str, readonly: bool) -> Result<Access, String> {
    let mode = match mode {
        "RWO" => AccessMode::Rwo,
        "RWX" => AccessMode::Rwx,
        other => return Err(format!("unknown mode {other:?}")),
    };
    Ok(Access { mode, readonly })
}

fn dur(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

impl World {
    fn new(wall: SystemTime, snapshot: Option<&str>) -> Self {
        let clock = Arc::new(ManualClock::with_wall_time(wall));
        let engine = Engine::with_config(Config::default(), clock.clone()).unwrap();
        if let Some(json) = snapshot {
            engine.restore_json(json).unwrap();
        }
        Self { engine, clock, shape: Shape::default() }
    }

    /// Runs every step; the first disagreement ends the scenario.
    pub fn run(steps: &[Value]) -> Result<(), String> {
        let mut w = Self::new(SystemTime::UNIX_EPOCH + Duration::from_secs(START_UNIX_S), None);
        for (i, s) in steps.iter().enumerate() {
            w.step(s).map_err(|e| format!("step {} ({}): {e}", i + 1, s.get("op").unwrap_or(&Value::Null)))?;
        }
        Ok(())
    }

    fn step(&mut self, s: &Value) -> Result<(), String> {
        let mut f = Fields::new(s, "step")?;
        f.opt_str("note")?;
        let expect = f.opt("expect").cloned();
        let op = f.str("op")?;
        let before = self.engine.snapshot();
        let got = self.apply(&op, &mut f)?;
        f.finish()?;
        if got.get("error").is_some() && self.engine.snapshot() != before {
            return Err(format!("refused with {got}, but the state changed"));
        }
        view::invariants(&self.engine)?;
        judge(expect.as_ref(), &got)
    }

    fn result<T>(&self, r: Result<T, CoreError>, ok: impl FnOnce(&T) -> Value) -> Value {
        match r {
            Ok(t) => ok(&t),
            Err(e) => self.shape.error(&e),
        }
    }

    fn apply(&mut self, op: &str, f: &mut Fields<'_>) -> Result<Value, String> {
        let (e, sh) = (&self.engine, self.shape);
        Ok(match op {
            "publish" => {
                let (v, n) = (ident(f.get("volume")?)?, ident(f.get("node")?)?);
                let access = parse_access(&f.opt_str("mode")?.unwrap_or("RWO".into()), f.bool_or("readonly", false)?)?;
                let timeout = f.opt_f64("timeout_s")?.map(dur);
                self.result(e.publish(&v, &n, access, timeout), |o| sh.published(o))
            }
            "unpublish" => {
                let v = ident(f.get("volume")?)?;
                let n = f.opt("node").map(ident).transpose()?;
                self.result(e.unpublish(&v, n.as_deref()), |o| sh.unpublished(o))
            }
            "clear_stale" => {
                let (v, n) = (ident(f.get("volume")?)?, ident(f.get("node")?)?);
                self.result(e.clear_stale(&v, &n), |o| sh.stale(o))
            }
            "reconcile" => {
                let live = f.array("live")?.iter().map(ident).collect::<Result<Vec<_>, _>>()?;
                self.result(e.reconcile(&live), |r| sh.reconciled(r))
            }
            "advance" => {
                self.clock.advance(dur(f.f64("seconds")?));
                json!({})
            }
            "set_grace" => self.result(e.set_grace_period(dur(f.f64("seconds")?)), |()| json!({})),
            "set_migration_timeout" => {
                json!({"timeout_s": e.set_default_migration_timeout(dur(f.f64("seconds")?)).as_secs_f64()})
            }
            "set_term" => self.result(e.set_term(f.u64("term")?), |t| json!({"term": t})),
            "refence" => {
                let fences: Vec<Value> =
                    e.refence().iter().map(|vf| json!({"volume": vf.volume, "fence": sh.fence(&vf.fence)})).collect();
                json!({"fences": fences})
            }
            "forget" => self.result(e.forget(&ident(f.get("volume")?)?), |b| json!({"forgotten": b})),
            "clear_detach" => {
                self.result(e.clear_detach_timestamp(&ident(f.get("volume")?)?), |b| json!({"cleared": b}))
            }
            "snapshot_restore" => {
                let json = e.snapshot_json();
                let wall = self.clock.wall_time(self.clock.now());
                *self = Self::new(wall, Some(&json));
                json!({})
            }
            "restore" => {
                let text = match (f.opt("document"), f.opt_str("text")?) {
                    (Some(doc), None) => doc.to_string(),
                    (None, Some(text)) => text,
                    _ => return Err("restore takes exactly one of document and text".into()),
                };
                self.result(e.restore_json(&text), |()| json!({}))
            }
            "session" | "supersedes" => return self.fence_rule(op, f),
            "check" => return self.check(f),
            "stats" => view::stats(e),
            other => return Err(format!("unknown step {other:?}")),
        })
    }

    /// The storage target's rules over the volume's current fence.
    fn fence_rule(&self, op: &str, f: &mut Fields<'_>) -> Result<Value, String> {
        let v = ident(f.get("volume")?)?;
        let (node, presented) =
            if op == "session" { (ident(f.get("node")?)?, f.u64("presented")?) } else { (String::new(), 0) };
        let applied = f.opt("applied").map(|a| a.as_u64().ok_or("applied is not an epoch")).transpose()?;
        let Some(fence) = self.engine.fence(&v).map_err(|e| e.to_string())? else {
            return Ok(json!({"error": "Untracked"}));
        };
        let r = if op == "session" {
            fence.check_session(&v, &node, presented)
        } else {
            fence.check_supersedes(&v, applied)
        };
        Ok(self.result(r, |()| json!({"ok": true})))
    }

    fn check(&self, f: &mut Fields<'_>) -> Result<Value, String> {
        let v = ident(f.get("volume")?)?;
        let grace = f.opt_f64("grace_s")?.map(dur);
        Ok(view::check(&self.engine, self.shape, &v, grace))
    }
}
