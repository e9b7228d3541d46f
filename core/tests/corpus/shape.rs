//! The JSON shape of every engine outcome and error, as the corpus's expectations name them
//! (tests/contract/README.md). Shared by the core runner and the driver's.
#![allow(dead_code)]

use std::time::Duration;

use serde_json::{json, Value};
use tether_core::{
    Access, Attachment, CoreError, DetachRecord, Fence, Inconsistency, InputField, Nodes, Problem, PublishOutcome,
    Published, ReconcileReport, SnapshotError, StaleOutcome, UnpublishOutcome,
};

/// Maps epochs to the corpus's numbering: a front end that starts at term 1 issues
/// `1 << 32` where the corpus (term 0) says 1, so it passes `base = (1 << 32) - 1`.
#[derive(Clone, Copy, Default)]
pub struct Shape {
    pub base: u64,
}

pub fn access(a: Access) -> String {
    format!("{}{}", a.mode, if a.readonly { "-ro" } else { "" })
}

fn secs(d: Duration) -> Value {
    json!(d.as_secs_f64())
}

fn names(n: &Nodes) -> Value {
    json!(n.iter().map(std::string::ToString::to_string).collect::<Vec<_>>())
}

impl Shape {
    pub fn epoch(self, e: u64) -> u64 {
        if e == 0 {
            0
        } else {
            e - self.base
        }
    }

    pub fn fence(self, f: &Fence) -> Value {
        let nodes: Vec<Value> = f.nodes().map(|a| json!([a.node.to_string(), self.epoch(a.epoch)])).collect();
        json!({"epoch": self.epoch(f.epoch), "access": access(f.access), "nodes": nodes})
    }

    pub fn published(self, o: &PublishOutcome) -> Value {
        let mut v =
            json!({"epoch": self.epoch(o.epoch), "admitted": self.epoch(o.admitted), "fence": self.fence(&o.fence)});
        let (kind, extra) = match &o.kind {
            Published::Attached => ("Attached", json!({})),
            Published::AlreadyAttached => ("AlreadyAttached", json!({})),
            Published::HandedOff { from } => ("HandedOff", json!({"from": from.to_string()})),
            Published::MigrationStarted { source, timeout } => {
                ("MigrationStarted", json!({"source": source.to_string(), "timeout_s": secs(*timeout)}))
            }
        };
        merge(&mut v, kind, extra);
        v
    }

    pub fn unpublished(self, o: &UnpublishOutcome) -> Value {
        match o {
            UnpublishOutcome::NotAttached => json!({"outcome": "NotAttached"}),
            UnpublishOutcome::Detached { nodes, epoch, fence } => json!({
                "outcome": "Detached", "nodes": names(nodes), "epoch": self.epoch(*epoch), "fence": self.fence(fence)
            }),
            UnpublishOutcome::MigrationCompleted { source, target, duration, epoch, fence } => json!({
                "outcome": "MigrationCompleted", "source": source.to_string(), "target": target.to_string(),
                "duration_s": secs(*duration), "epoch": self.epoch(*epoch), "fence": self.fence(fence)
            }),
            UnpublishOutcome::MigrationAborted { source, target, epoch, fence } => json!({
                "outcome": "MigrationAborted", "source": source.to_string(), "target": target.to_string(),
                "epoch": self.epoch(*epoch), "fence": self.fence(fence)
            }),
        }
    }

    pub fn stale(self, o: &StaleOutcome) -> Value {
        match o {
            StaleOutcome::NotAttached => json!({"outcome": "NotAttached"}),
            StaleOutcome::Cleared { node, remaining, epoch, fence } => json!({
                "outcome": "Cleared", "node": node.to_string(), "remaining": remaining.as_ref().map(std::string::ToString::to_string),
                "epoch": self.epoch(*epoch), "fence": self.fence(fence)
            }),
        }
    }

    /// Every list sorted, so the expectation does not depend on map order.
    pub fn reconciled(self, r: &ReconcileReport) -> Value {
        let mut cleared: Vec<Value> = r
            .cleared
            .iter()
            .map(|c| json!({"volume": c.volume, "node": c.node.to_string(), "epoch": self.epoch(c.epoch), "fence": self.fence(&c.fence)}))
            .collect();
        cleared.sort_by_key(|c| (c["volume"].to_string(), c["node"].to_string()));
        let mut pending: Vec<Value> = r
            .pending
            .iter()
            .map(|p| json!({"node": p.node.to_string(), "volumes": p.volumes, "clears_in_s": secs(p.clears_in)}))
            .collect();
        pending.sort_by_key(|p| p["node"].to_string());
        let mut returned: Vec<String> = r.returned.iter().map(std::string::ToString::to_string).collect();
        returned.sort();
        let mut timed_out: Vec<Value> = r
            .timed_out_migrations
            .iter()
            .map(|t| json!({"volume": t.volume, "source": t.source.to_string(), "target": t.target.to_string(), "elapsed_s": secs(t.elapsed), "timeout_s": secs(t.timeout)}))
            .collect();
        timed_out.sort_by_key(|t| t["volume"].to_string());
        json!({"cleared": cleared, "pending": pending, "returned": returned, "timed_out": timed_out})
    }

    /// What a `check` step reads of one volume.
    pub fn volume(
        self,
        at: Option<&Attachment>,
        epoch: u64,
        fence: Option<&Fence>,
        detach: Option<&DetachRecord>,
        within_grace: bool,
    ) -> Value {
        json!({
            "nodes": at.map(|a| names(&a.nodes)),
            "access": at.map(|a| access(a.access)),
            "admitted": at.map(|a| {
                let (p, t) = a.admitted;
                std::iter::once(p).chain(t).map(|e| self.epoch(e)).collect::<Vec<_>>()
            }),
            "migration": at.and_then(|a| a.migration).map(|m| json!({"elapsed_s": secs(m.elapsed), "timeout_s": secs(m.timeout)})),
            "epoch": self.epoch(epoch),
            "fence": fence.map(|f| self.fence(f)),
            "detach": detach.map(|d| json!({"node": d.node.to_string(), "age_s": secs(d.age)})),
            "within_grace": within_grace,
        })
    }

    pub fn error(self, e: &CoreError) -> Value {
        let (kind, extra) = match e {
            CoreError::InvalidInput(i) => {
                ("InvalidInput", json!({"field": field(i.field), "problem": problem(&i.problem)}))
            }
            CoreError::Conflict { attached_to, .. } => ("Conflict", json!({"nodes": names(attached_to)})),
            CoreError::Incompatible { existing, requested, .. } => {
                ("Incompatible", json!({"existing": access(*existing), "requested": access(*requested)}))
            }
            CoreError::MigrationLimit { nodes, .. } => ("MigrationLimit", json!({"nodes": names(nodes)})),
            CoreError::MigrationTimedOut { nodes, elapsed, timeout, .. } => (
                "MigrationTimedOut",
                json!({"nodes": names(nodes), "elapsed_s": secs(*elapsed), "timeout_s": secs(*timeout)}),
            ),
            CoreError::EpochExhausted { epoch, .. } => ("EpochExhausted", json!({"epoch": self.epoch(*epoch)})),
            CoreError::StillAttached { nodes, .. } => ("StillAttached", json!({"nodes": names(nodes)})),
            CoreError::StaleFence { epoch, applied, .. } => {
                ("StaleFence", json!({"epoch": self.epoch(*epoch), "applied": self.epoch(*applied)}))
            }
            CoreError::NotAdmitted { presented, admitted, fence_epoch, .. } => (
                "NotAdmitted",
                json!({"presented": presented, "admitted": admitted, "fence_epoch": self.epoch(*fence_epoch)}),
            ),
            CoreError::BadSnapshot(s) => ("BadSnapshot", snapshot_error(s)),
        };
        let mut v = json!({});
        v.as_object_mut().unwrap().insert("error".into(), kind.into());
        v.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        v
    }
}

fn merge(v: &mut Value, outcome: &str, extra: Value) {
    let o = v.as_object_mut().unwrap();
    o.insert("outcome".into(), outcome.into());
    if let Value::Object(extra) = extra {
        o.extend(extra);
    }
}

fn field(f: InputField) -> &'static str {
    match f {
        InputField::Volume => "volume",
        InputField::Node => "node",
        InputField::GracePeriod => "grace_period",
        InputField::MigrationTimeout => "migration_timeout",
        InputField::Term => "term",
    }
}

fn problem(p: &Problem) -> &'static str {
    match p {
        Problem::Empty => "empty",
        Problem::TooLong { .. } => "too_long",
        Problem::ContainsNul { .. } => "contains_nul",
        Problem::NotUtf8 { .. } => "not_utf8",
        Problem::OutOfRange { .. } => "out_of_range",
        Problem::TooLarge { .. } => "too_large",
    }
}

fn snapshot_error(s: &SnapshotError) -> Value {
    match s {
        SnapshotError::Malformed { .. } => json!({"snapshot": "malformed"}),
        SnapshotError::UnknownVersion { found, .. } => json!({"snapshot": "unknown_version", "found": found}),
        SnapshotError::Inconsistent { subject, problem } => {
            json!({"snapshot": "inconsistent", "subject": subject, "problem": inconsistency(problem)})
        }
    }
}

fn inconsistency(i: &Inconsistency) -> &'static str {
    match i {
        Inconsistency::RwoOnTwoNodes => "rwo_on_two_nodes",
        Inconsistency::TooManyNodes(_) => "too_many_nodes",
        Inconsistency::NoNodes => "no_nodes",
        Inconsistency::DuplicateNode => "duplicate_node",
        Inconsistency::DuplicateVolume => "duplicate_volume",
        Inconsistency::DuplicateMissingNode => "duplicate_missing_node",
        Inconsistency::AttachedAtEpochZero => "attached_at_epoch_zero",
        Inconsistency::EpochCannotGrow(_) => "epoch_cannot_grow",
        Inconsistency::BadAdmissions { .. } => "bad_admissions",
        Inconsistency::FutureTime { .. } => "future_time",
        Inconsistency::TermTooLarge(_) => "term_too_large",
        Inconsistency::Invalid(_) => "invalid",
    }
}
