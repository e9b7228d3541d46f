//! The JSON documents the library hands out for lists, reconcile reports and re-fences: their
//! shapes are part of the C ABI and written in the header beside the calls that return them.

use serde::Serialize;
use tether_core::{Attachment, Fence, ReconcileReport, VolumeFence};

use crate::types::{nanos, unix_nanos};

#[derive(Serialize)]
struct AttachmentDoc<'a> {
    volume: &'a str,
    mode: String,
    readonly: bool,
    nodes: Vec<&'a str>,
    epoch: u64,
    since_unix_ns: u64,
    migration: Option<MigrationDoc>,
    admitted: Vec<u64>,
}

#[derive(Serialize)]
struct MigrationDoc {
    elapsed_ns: u64,
    timeout_ns: u64,
}

fn attachment(a: &Attachment) -> AttachmentDoc<'_> {
    AttachmentDoc {
        volume: &a.volume,
        mode: a.access.mode.to_string(),
        readonly: a.access.readonly,
        nodes: a.nodes.iter().map(|n| &**n).collect(),
        epoch: a.epoch,
        since_unix_ns: unix_nanos(a.since),
        migration: a.migration.map(|m| MigrationDoc { elapsed_ns: nanos(m.elapsed), timeout_ns: nanos(m.timeout) }),
        admitted: std::iter::once(a.admitted.0).chain(a.admitted.1).collect(),
    }
}

/// A list of attachments as a JSON array.
pub(crate) fn attachments(list: &[Attachment]) -> String {
    let docs: Vec<AttachmentDoc<'_>> = list.iter().map(attachment).collect();
    serde_json::to_string(&docs).expect("plain data always serialises")
}

#[derive(Serialize)]
struct ReportDoc<'a> {
    cleared: Vec<ClearedDoc<'a>>,
    pending: Vec<PendingDoc<'a>>,
    returned: Vec<&'a str>,
    timed_out_migrations: Vec<TimedOutDoc<'a>>,
}

#[derive(Serialize)]
struct ClearedDoc<'a> {
    volume: &'a str,
    node: &'a str,
    epoch: u64,
    fence: FenceDoc<'a>,
}

/// A fence: `{"epoch":1,"mode":"RWO","readonly":false,"nodes":[{"node":"a","admitted_at":1}]}`.
#[derive(Serialize)]
struct FenceDoc<'a> {
    epoch: u64,
    mode: String,
    readonly: bool,
    nodes: Vec<AdmissionDoc<'a>>,
}

#[derive(Serialize)]
struct AdmissionDoc<'a> {
    node: &'a str,
    admitted_at: u64,
}

fn fence(f: &Fence) -> FenceDoc<'_> {
    FenceDoc {
        epoch: f.epoch,
        mode: f.access.mode.to_string(),
        readonly: f.access.readonly,
        nodes: f.nodes().map(|a| AdmissionDoc { node: &a.node, admitted_at: a.epoch }).collect(),
    }
}

#[derive(Serialize)]
struct VolumeFenceDoc<'a> {
    volume: &'a str,
    fence: FenceDoc<'a>,
}

/// A re-fence's fences as a JSON array.
pub(crate) fn volume_fences(list: &[VolumeFence]) -> String {
    let docs: Vec<VolumeFenceDoc<'_>> =
        list.iter().map(|v| VolumeFenceDoc { volume: &v.volume, fence: fence(&v.fence) }).collect();
    serde_json::to_string(&docs).expect("plain data always serialises")
}

#[derive(Serialize)]
struct PendingDoc<'a> {
    node: &'a str,
    missing_since_unix_ns: u64,
    clears_in_ns: u64,
    volumes: usize,
}

#[derive(Serialize)]
struct TimedOutDoc<'a> {
    volume: &'a str,
    source: &'a str,
    target: &'a str,
    elapsed_ns: u64,
    timeout_ns: u64,
}

/// A reconcile report as a JSON object.
pub(crate) fn report(r: &ReconcileReport) -> String {
    let doc = ReportDoc {
        cleared: r
            .cleared
            .iter()
            .map(|c| ClearedDoc { volume: &c.volume, node: &c.node, epoch: c.epoch, fence: fence(&c.fence) })
            .collect(),
        pending: r
            .pending
            .iter()
            .map(|p| PendingDoc {
                node: &p.node,
                missing_since_unix_ns: unix_nanos(p.missing_since),
                clears_in_ns: nanos(p.clears_in),
                volumes: p.volumes,
            })
            .collect(),
        returned: r.returned.iter().map(|n| &**n).collect(),
        timed_out_migrations: r
            .timed_out_migrations
            .iter()
            .map(|t| TimedOutDoc {
                volume: &t.volume,
                source: &t.source,
                target: &t.target,
                elapsed_ns: nanos(t.elapsed),
                timeout_ns: nanos(t.timeout),
            })
            .collect(),
    };
    serde_json::to_string(&doc).expect("plain data always serialises")
}
