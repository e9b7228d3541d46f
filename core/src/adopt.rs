//! Adopting attachments recorded outside the engine (with Kubernetes, `VolumeAttachment`s) as
//! its state: the outside record is the truth for which nodes hold a volume, the engine's own
//! record keeps what the outside does not know (epochs, detach records, timeouts reported).
//! The rules (the node limit, how epochs grow) are the engine's, so they live here; a front end
//! only gathers what it observed and calls [`Engine::adopt`] (or [`plan`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use crate::config::clamp_migration_timeout;
use crate::engine::Engine;
use crate::error::CoreError;
use crate::ids::{check_node_id, check_volume_id};
use crate::outcome::Access;
use crate::record::next_epoch;
use crate::snapshot::{unix_nanos, AttachmentEntry, Snapshot, VolumeEntry};

/// One node holding a volume, and since when (the record's creation time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedNode {
    pub node: String,
    pub since: SystemTime,
}

/// What the outside record says about one volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedVolume {
    pub access: Access,
    pub nodes: Vec<ObservedNode>,
    /// The lowest epoch the volume may have: a fencing token handed out before (say, by a
    /// replica whose state is gone) must never be handed out again.
    pub epoch_floor: u64,
}

/// Every attached volume the outside record knows, by volume id.
pub type Observed = BTreeMap<String, ObservedVolume>;

/// An attachment the outside record shows that the engine cannot hold (an RWO volume on two
/// nodes, an RWX volume on three, a node name the engine refuses).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub volume: String,
    pub node: String,
    /// The nodes the volume was given instead.
    pub kept: Vec<String>,
    pub why: String,
}

/// What adopting changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdoptReport {
    /// Volumes whose engine record already matched.
    pub unchanged: usize,
    /// Volumes given the outside record's nodes (new, or different from the engine's).
    pub adopted: Vec<String>,
    /// Volumes the engine had attached that the outside record shows attached nowhere.
    pub dropped: Vec<String>,
    pub refused: Vec<Refused>,
}

impl AdoptReport {
    /// Every volume whose record changed, for persisting.
    pub fn changed(&self) -> impl Iterator<Item = &String> {
        self.adopted.iter().chain(&self.dropped)
    }
}

/// The nodes to keep, in engine order (source first): the engine's own nodes that the record
/// still shows come first, then the record's oldest; at most one for RWO, two for RWX.
fn choose(
    volume: &str,
    current: &[String],
    observed: &ObservedVolume,
    refused: &mut Vec<Refused>,
) -> Vec<ObservedNode> {
    let limit = observed.access.mode.node_limit();
    let mut candidates: Vec<&ObservedNode> = Vec::new();
    let mut invalid = Vec::new();
    for n in &observed.nodes {
        match check_node_id(&n.node) {
            Ok(()) if !candidates.iter().any(|c| c.node == n.node) => candidates.push(n),
            Ok(()) => {}
            Err(e) => invalid.push((n.node.clone(), e.to_string())),
        }
    }
    candidates.sort_by_key(|n| (current.iter().position(|c| *c == n.node).unwrap_or(usize::MAX), n.since));
    let kept: Vec<ObservedNode> = candidates.iter().take(limit).map(|n| (*n).clone()).collect();
    let kept_names: Vec<String> = kept.iter().map(|n| n.node.clone()).collect();
    let too_many = candidates.iter().skip(limit).map(|extra| {
        (extra.node.clone(), format!("an {} volume may be attached to at most {limit} node(s)", observed.access))
    });
    for (node, why) in invalid.into_iter().chain(too_many) {
        refused.push(Refused { volume: volume.into(), node, kept: kept_names.clone(), why });
    }
    kept
}

/// The attachment entry for `kept` nodes, or `None` if the current one already says the same.
fn attachment(
    current: Option<&AttachmentEntry>,
    observed: &ObservedVolume,
    kept: &[ObservedNode],
    timeout: Duration,
) -> Option<AttachmentEntry> {
    let names: Vec<String> = kept.iter().map(|n| n.node.clone()).collect();
    if let Some(a) = current {
        let same_nodes = a.nodes.iter().collect::<BTreeSet<_>>() == names.iter().collect::<BTreeSet<_>>();
        if same_nodes && a.mode == observed.access.mode && a.readonly == observed.access.readonly {
            return None;
        }
    }
    // A migration started when its target attached: the later record.
    let since = kept.iter().map(|n| n.since).max().unwrap_or(SystemTime::UNIX_EPOCH);
    let timeout_ms = u32::try_from(clamp_migration_timeout(timeout).as_millis()).unwrap_or(u32::MAX);
    // A node the engine already had keeps its admission epoch (its publish context stays
    // valid); a new one is admitted at the volume's new epoch, filled in by `plan` (0 here).
    let admitted = names
        .iter()
        .map(|n| {
            current.and_then(|a| a.nodes.iter().position(|m| m == n).and_then(|i| a.admitted.get(i))).map_or(0, |e| *e)
        })
        .collect();
    Some(AttachmentEntry {
        mode: observed.access.mode,
        readonly: observed.access.readonly,
        nodes: names,
        admitted,
        since_unix_nanos: unix_nanos(since),
        migration_timeout_ms: (kept.len() == 2).then_some(timeout_ms),
        timeout_reported: false,
    })
}

/// The state `snapshot` becomes when `observed` is the truth for attachments. Missing-node
/// marks and detach records are kept; an epoch grows by one whenever a volume's nodes change,
/// and never ends below the observed floor. `timeout_for` gives each volume's migration timeout. Refuses, naming the volume, an
/// epoch or observed floor that cannot grow; the snapshot is then left to the caller unchanged.
pub fn plan(
    snapshot: &Snapshot,
    observed: &Observed,
    timeout_for: impl Fn(&str) -> Duration,
) -> Result<(Snapshot, AdoptReport), CoreError> {
    let mut report = AdoptReport::default();
    let mut volumes: BTreeMap<String, VolumeEntry> =
        snapshot.volumes.iter().map(|v| (v.volume.clone(), v.clone())).collect();
    // One above, which must itself leave room for the next change: a restore refuses an epoch
    // that cannot grow, so the plan refuses it first, naming the volume. The term is left to
    // the re-fence a front end runs after adopting (see `Engine::adopt`), so an adopted node's
    // admission stays the volume's next epoch, as its publish context had it.
    let raise = |volume: &str, epoch: u64| {
        next_epoch(epoch, 0)
            .and_then(|e| next_epoch(e, snapshot.term).map(|_| e))
            .map_err(|_| CoreError::EpochExhausted { volume: volume.to_owned(), epoch })
    };
    for (volume, obs) in observed {
        if let Err(e) = check_volume_id(volume) {
            let refuse = |n: &ObservedNode| Refused {
                volume: volume.clone(),
                node: n.node.clone(),
                kept: vec![],
                why: e.to_string(),
            };
            report.refused.extend(obs.nodes.iter().map(refuse));
            continue;
        }
        let entry = volumes.entry(volume.clone()).or_insert_with(|| VolumeEntry {
            volume: volume.clone(),
            epoch: 0,
            attachment: None,
            last_detach: None,
        });
        let current: Vec<String> = entry.attachment.as_ref().map(|a| a.nodes.clone()).unwrap_or_default();
        let kept = choose(volume, &current, obs, &mut report.refused);
        if kept.is_empty() {
            continue;
        }
        let floor = obs.epoch_floor.max(entry.epoch);
        match attachment(entry.attachment.as_ref(), obs, &kept, timeout_for(volume)) {
            Some(mut a) => {
                let epoch = raise(volume, floor)?;
                entry.epoch = epoch;
                a.admitted.iter_mut().filter(|e| **e == 0).for_each(|e| *e = epoch);
                entry.attachment = Some(a);
                report.adopted.push(volume.clone());
            }
            None if floor > entry.epoch => {
                // The floor is an epoch handed out before: it must leave room to change.
                next_epoch(floor, snapshot.term)
                    .map_err(|_| CoreError::EpochExhausted { volume: volume.to_owned(), epoch: floor })?;
                entry.epoch = floor;
                report.adopted.push(volume.clone());
            }
            None => report.unchanged += 1,
        }
    }
    for (volume, entry) in &mut volumes {
        let shown = observed.get(volume).is_some_and(|o| o.nodes.iter().any(|n| check_node_id(&n.node).is_ok()));
        if entry.attachment.is_some() && !shown {
            entry.attachment = None;
            entry.epoch = raise(volume, entry.epoch)?;
            report.dropped.push(volume.clone());
        }
    }
    let adopted = Snapshot { volumes: volumes.into_values().collect(), ..snapshot.clone() };
    Ok((adopted, report))
}

impl Engine {
    /// Makes `observed` the truth for attachments: plans against this engine's snapshot (see
    /// [`plan`]) and restores the result atomically. Returns what changed; on any error the
    /// state is untouched.
    ///
    /// Call it while no publish runs (before serving, or on taking over as leader): a change
    /// between the snapshot and the restore would be replaced by the plan. Then run
    /// [`Engine::refence`] before serving: it puts every epoch at the current term.
    ///
    /// Locking behaviour: as [`Engine::snapshot`], then as [`Engine::restore`].
    pub fn adopt(&self, observed: &Observed, timeout_for: impl Fn(&str) -> Duration) -> Result<AdoptReport, CoreError> {
        let (snapshot, report) = plan(&self.snapshot(), observed, timeout_for)?;
        self.restore(&snapshot)?;
        Ok(report)
    }
}
