//! Controller operations: volumes in the store, attachments through the engine. Each checks
//! its request in a fixed order: `INVALID_ARGUMENT`, then `NOT_FOUND`, then state.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tether_core::{
    check_node_id, check_volume_id, Access, ClearedHolder, CoreError, EvidencedPublish, Published, UnpublishOutcome,
    MAX_ID_LEN,
};

use crate::capability::{self, Capability};
use crate::csi::{
    list_volumes_response, validate_volume_capabilities_response, ControllerPublishVolumeRequest,
    ControllerPublishVolumeResponse, ControllerUnpublishVolumeRequest, CreateVolumeRequest, DeleteVolumeRequest,
    GetCapacityResponse, ListVolumesRequest, ListVolumesResponse, ValidateVolumeCapabilitiesRequest,
    ValidateVolumeCapabilitiesResponse, Volume,
};
use crate::driver::Driver;
use crate::events;
use crate::nodes::Records;
use crate::status::DriverError;
use crate::volume::{parse_migration_timeout, VolumeKind, VolumeMeta};

/// Size of a volume whose request names none: 1 GiB.
pub const DEFAULT_VOLUME_BYTES: u64 = 1 << 30;
/// Prefix of every volume id this driver issues; paging tokens are such ids.
pub const VOLUME_ID_PREFIX: &str = "tv-";
/// `publish_context` key of the node's admission epoch: what the node presents at
/// `NodeStage` and `NodePublish`, accepted while the latest fence admits it at or below this.
pub const EPOCH_KEY: &str = "tether.io/epoch";
/// `publish_context` key of the epoch of the fence applied for this publish.
pub const FENCE_EPOCH_KEY: &str = "tether.io/fence-epoch";
/// `publish_context` key of the node the context was issued for.
pub const NODE_KEY: &str = "tether.io/node";
/// `publish_context` key of the access granted (`RWO`, `RWX`, with ` read-only`).
pub const ACCESS_KEY: &str = "tether.io/access";
/// `volume_context` key of the volume kind.
pub const KIND_KEY: &str = "tether.io/kind";

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn new_volume_id() -> String {
    let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
    format!("{VOLUME_ID_PREFIX}{nanos:x}-{seq:x}")
}

fn invalid(msg: impl Into<String>) -> DriverError {
    DriverError::Invalid(msg.into())
}

/// The size to provision for a capacity range, or why none fits.
fn size_for(range: Option<&crate::csi::CapacityRange>) -> Result<(u64, u64), DriverError> {
    let (required, limit) = range.map_or((0, 0), |r| (r.required_bytes, r.limit_bytes));
    let (Ok(required), Ok(limit)) = (u64::try_from(required), u64::try_from(limit)) else {
        return Err(invalid("capacity_range bytes must not be negative"));
    };
    if limit > 0 && required > limit {
        return Err(invalid(format!("capacity_range asks for at least {required} bytes but at most {limit}")));
    }
    let size = if required > 0 { required } else { DEFAULT_VOLUME_BYTES.min(if limit > 0 { limit } else { u64::MAX }) };
    Ok((size, limit))
}

fn volume_message(meta: &VolumeMeta) -> Volume {
    let kind = match meta.kind {
        VolumeKind::Filesystem => "filesystem",
        VolumeKind::Block => "block",
    };
    Volume {
        capacity_bytes: i64::try_from(meta.capacity_bytes).unwrap_or(i64::MAX),
        volume_id: meta.id.clone(),
        volume_context: HashMap::from([(KIND_KEY.to_owned(), kind.to_owned())]),
        ..Volume::default()
    }
}

impl Driver {
    pub(crate) fn volume(&self, id: &str) -> Result<Arc<VolumeMeta>, DriverError> {
        self.catalog.get(id).ok_or_else(|| DriverError::VolumeNotFound(id.to_owned()))
    }

    /// `CreateVolume`: idempotent by name; a known name with other properties is `ALREADY_EXISTS`.
    pub fn create_volume(&self, req: &CreateVolumeRequest) -> Result<Volume, DriverError> {
        if req.name.is_empty() {
            return Err(invalid("volume name is missing"));
        }
        if req.name.len() > MAX_ID_LEN || req.name.contains('\0') {
            return Err(invalid(format!("volume name must be at most {MAX_ID_LEN} bytes without NUL")));
        }
        let kind = capability::parse_all(&req.volume_capabilities)?;
        let (size, limit) = size_for(req.capacity_range.as_ref())?;
        if req.volume_content_source.is_some() {
            return Err(invalid("volume content sources (snapshots, clones) are not supported"));
        }
        let parameters: BTreeMap<String, String> = req.parameters.clone().into_iter().collect();
        parse_migration_timeout(&parameters)?;
        self.check_ready()?;
        let _guard = self.inflight.begin(&format!("create/{}", req.name))?;
        if let Some(existing) = self.catalog.by_name(&req.name) {
            return Self::same_volume(&existing, kind, size, limit, &parameters).map(|()| volume_message(&existing));
        }
        let available = self.store.capacity_bytes().saturating_sub(self.catalog.used_bytes());
        if size > available {
            return Err(DriverError::OutOfRange(format!(
                "volume {:?} needs {size} bytes; the store has {available} bytes left",
                req.name
            )));
        }
        let meta = VolumeMeta { id: new_volume_id(), name: req.name.clone(), kind, capacity_bytes: size, parameters };
        self.store.create(&meta)?;
        let meta = self.catalog.insert(meta);
        tracing::info!(volume = %meta.id, name = %meta.name, bytes = size, "volume created");
        Ok(volume_message(&meta))
    }

    fn same_volume(
        existing: &VolumeMeta,
        kind: VolumeKind,
        size: u64,
        limit: u64,
        parameters: &BTreeMap<String, String>,
    ) -> Result<(), DriverError> {
        let problem = if existing.kind != kind {
            format!("it is a {:?} volume, the request asks for {kind:?}", existing.kind)
        } else if existing.capacity_bytes < size || (limit > 0 && existing.capacity_bytes > limit) {
            format!("it has {} bytes, the request asks for {size}..{limit}", existing.capacity_bytes)
        } else if &existing.parameters != parameters {
            "its parameters differ".to_owned()
        } else {
            return Ok(());
        };
        Err(DriverError::NameTaken { name: existing.name.clone(), id: existing.id.clone(), problem })
    }

    /// `DeleteVolume`: idempotent; a published volume is `FAILED_PRECONDITION`.
    pub fn delete_volume(&self, req: &DeleteVolumeRequest) -> Result<(), DriverError> {
        check_volume_id(&req.volume_id)?;
        self.check_ready()?;
        let _guard = self.inflight.begin(&req.volume_id)?;
        if self.catalog.get(&req.volume_id).is_none() {
            return Ok(());
        }
        if let Some(a) = self.engine.get(&req.volume_id)? {
            return Err(DriverError::StillPublished { volume: req.volume_id.clone(), nodes: a.nodes.to_string() });
        }
        self.store.delete(&req.volume_id)?;
        self.catalog.remove(&req.volume_id);
        // Not attached (checked above, under the volume's guard), so the record can go.
        self.engine.forget(&req.volume_id)?;
        tracing::info!(volume = %req.volume_id, "volume deleted");
        Ok(())
    }

    /// `ControllerPublishVolume`: the engine decides; the new state and its fence are durable
    /// before the reply, whose context carries the node's admission epoch and the fence epoch.
    pub fn controller_publish(
        &self,
        req: &ControllerPublishVolumeRequest,
    ) -> Result<ControllerPublishVolumeResponse, DriverError> {
        let started = Instant::now();
        let (volume, node) = (req.volume_id.as_str(), req.node_id.as_str());
        check_volume_id(volume)?;
        check_node_id(node)?;
        let cap =
            capability::parse(req.volume_capability.as_ref().ok_or_else(|| invalid("volume capability is missing"))?)?;
        // Before NOT_FOUND: while state is rebuilt, the node cache may not be filled yet.
        self.check_ready()?;
        let meta = self.volume(volume)?;
        if !self.nodes.exists(node) {
            return Err(DriverError::NodeNotFound(node.to_owned()));
        }
        capability::check_fits(cap, volume, meta.kind)?;
        let _guard = self.inflight.begin(volume)?;
        let access = if req.readonly { cap.access.readonly() } else { cap.access };
        let EvidencedPublish { outcome: result, cleared } =
            self.publish_on_evidence(volume, node, access, meta.migration_timeout());
        let changed = !cleared.is_empty() || result.as_ref().is_ok_and(|out| out.kind != Published::AlreadyAttached);
        // The record and the fence go to the store together, in one durable change, when the
        // call changed them or an earlier persist failed: an idempotent call costs no store I/O.
        let saved = self.persist_if(changed, &meta);
        self.post_cleared(volume, &cleared);
        // Posted once the outcome is durable (or could not be made so), with how long it took.
        self.post(events::for_publish(volume, node, &result, started.elapsed()));
        if changed {
            self.changed(volume);
        }
        saved?;
        let out = result?;
        let context = HashMap::from([
            (EPOCH_KEY.to_owned(), out.admitted.to_string()),
            (FENCE_EPOCH_KEY.to_owned(), out.fence.epoch.to_string()),
            (NODE_KEY.to_owned(), node.to_owned()),
            (ACCESS_KEY.to_owned(), access.to_string()),
        ]);
        Ok(ControllerPublishVolumeResponse { publish_context: context })
    }

    /// `ControllerUnpublishVolume`: idempotent; an empty node id detaches every node.
    pub fn controller_unpublish(&self, req: &ControllerUnpublishVolumeRequest) -> Result<(), DriverError> {
        let volume = req.volume_id.as_str();
        check_volume_id(volume)?;
        let node = (!req.node_id.is_empty()).then_some(req.node_id.as_str());
        if let Some(node) = node {
            check_node_id(node)?;
        }
        // An unknown volume (say, deleted meanwhile) is attached nowhere: unpublish succeeds,
        // which is what a CO cleaning up expects.
        let meta = self.catalog.get(volume);
        self.check_ready()?;
        let _guard = self.inflight.begin(volume)?;
        let result = self.engine.unpublish(volume, node);
        self.post(events::for_unpublish(volume, &result));
        let out = result?;
        if let UnpublishOutcome::MigrationCompleted { duration, .. } = &out {
            self.metrics.migration_completed(duration.as_secs_f64());
        }
        let changed = out != UnpublishOutcome::NotAttached;
        if let Some(meta) = meta {
            self.persist_if(changed, &meta)?;
        }
        if changed {
            self.changed(volume);
        }
        Ok(())
    }

    /// Publishes with the evidence of the node directory; the rules are core's, applied under
    /// the volume's guard: a holder with an attachment record is never handed off by the grace
    /// rule, an orphan (its node or its record gone) is cleared on a conflict, and without
    /// evidence the timers decide. When the directory's answers may lag (a watch cache), the
    /// first decision takes only "a record exists" from them; if it is a conflict that a clear
    /// or a handoff could have settled otherwise, the records are read anew (outside the guard)
    /// and the engine decides once more with them. An unreadable reading leaves the conflict.
    fn publish_on_evidence(
        &self,
        volume: &str,
        node: &str,
        access: Access,
        timeout: Option<Duration>,
    ) -> EvidencedPublish {
        let dir = &*self.nodes;
        let mut first = self.engine.publish_with(volume, node, access, timeout, &|h| dir.cached_evidence(volume, h));
        let Err(CoreError::Conflict { attached_to, .. }) = &first.outcome else { return first };
        if !attached_to.iter().any(|h| dir.may_be_released(volume, h)) {
            return first;
        }
        let records = match dir.records_now(volume) {
            Records::Nodes(records) => records,
            Records::Unreadable(why) => {
                tracing::warn!(volume, node, %why, "attachment records unreadable: the holders keep the volume");
                return first;
            }
        };
        let second = self.engine.publish_with(volume, node, access, timeout, &|h| dir.current_evidence(&records, h));
        first.cleared.extend(second.cleared);
        EvidencedPublish { outcome: second.outcome, cleared: first.cleared }
    }

    /// Counts and posts the holders a publish cleared as orphans, once the clear is durable (or
    /// could not be made so).
    fn post_cleared(&self, volume: &str, cleared: &[ClearedHolder]) {
        for c in cleared {
            let (why, event): (_, fn(&str, &str, u64) -> events::Event) = if self.nodes.exists(&c.node) {
                ("orphan", events::orphan)
            } else {
                ("holder_gone", events::holder_gone)
            };
            self.metrics.reconcile_action(why);
            self.post(Some(event(volume, &c.node, c.epoch)));
        }
    }

    /// `ValidateVolumeCapabilities`: confirmed only if every capability fits the volume.
    pub fn validate_capabilities(
        &self,
        req: &ValidateVolumeCapabilitiesRequest,
    ) -> Result<ValidateVolumeCapabilitiesResponse, DriverError> {
        check_volume_id(&req.volume_id)?;
        if req.volume_capabilities.is_empty() {
            return Err(invalid("volume capabilities are missing; give at least one"));
        }
        let meta = self.volume(&req.volume_id)?;
        let fits = |c| capability::parse(c).and_then(|c: Capability| capability::check_fits(c, &meta.id, meta.kind));
        if let Some(e) = req.volume_capabilities.iter().find_map(|c| fits(c).err()) {
            return Ok(ValidateVolumeCapabilitiesResponse { confirmed: None, message: e.to_string() });
        }
        let confirmed = validate_volume_capabilities_response::Confirmed {
            volume_context: req.volume_context.clone(),
            volume_capabilities: req.volume_capabilities.clone(),
            parameters: req.parameters.clone(),
            mutable_parameters: HashMap::new(),
        };
        Ok(ValidateVolumeCapabilitiesResponse { confirmed: Some(confirmed), message: String::new() })
    }

    /// `ListVolumes`: pages by volume id, each entry with the nodes it is published to.
    pub fn list_volumes(&self, req: &ListVolumesRequest) -> Result<ListVolumesResponse, DriverError> {
        let max = usize::try_from(req.max_entries).map_err(|_| invalid("max_entries must not be negative"))?;
        let after = (!req.starting_token.is_empty()).then_some(req.starting_token.as_str());
        if after.is_some_and(|t| !t.starts_with(VOLUME_ID_PREFIX)) {
            return Err(DriverError::BadToken(req.starting_token.clone()));
        }
        let (page, more) = self.catalog.page(after, max);
        let next_token = if more { page.last().map(|m| m.id.clone()).unwrap_or_default() } else { String::new() };
        let entries = page
            .iter()
            .map(|meta| {
                let published = self.engine.get(&meta.id).ok().flatten();
                let published_node_ids = published.map(|a| a.nodes.iter().map(ToString::to_string).collect());
                list_volumes_response::Entry {
                    volume: Some(volume_message(meta)),
                    status: Some(list_volumes_response::VolumeStatus {
                        published_node_ids: published_node_ids.unwrap_or_default(),
                        volume_condition: None,
                    }),
                }
            })
            .collect();
        Ok(ListVolumesResponse { entries, next_token })
    }

    /// `GetCapacity`: what the store has left.
    pub fn capacity(&self) -> GetCapacityResponse {
        let left = self.store.capacity_bytes().saturating_sub(self.catalog.used_bytes());
        let left = i64::try_from(left).unwrap_or(i64::MAX);
        GetCapacityResponse { available_capacity: left, maximum_volume_size: Some(left), minimum_volume_size: None }
    }
}
