//! The controller paths Tether decides, and their order with the upstream:
//!
//! - Publish: the engine first, durable with its fence, then the upstream. A refusal never
//!   reaches the upstream. If the upstream then refuses outright (it did not attach), a change
//!   this call made is undone in the engine, so nothing refused stays; if its answer is lost
//!   (unreachable, deadline) the engine keeps the node: the upstream may have attached, and the
//!   CO either retries the same publish (`AlreadyAttached` in the engine, forwarded again) or
//!   gives up and unpublishes. Either way the engine never admits fewer holders than the
//!   upstream may have, so no window admits a second writer.
//!   Nodes the engine took the volume from on the way (a grace handoff, a holder cleared on
//!   evidence) are detached at the upstream before the new holder is attached there; the
//!   volume's ledger (`ledger`) keeps them owed, durably, until the upstream confirms.
//! - Unpublish: the upstream first, the engine after it succeeded, so the engine never frees a
//!   volume the upstream still has attached.
//! - Delete: refused while the engine has the volume attached; forwarded; the engine and the
//!   store forget the volume only after the upstream deleted it.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use prost::Message;
use tether_core::{check_node_id, check_volume_id};
use tokio::time::Instant;
use tonic::Status;

use super::{decode, ledger, volumes, wire, Proxy, TETHER_PREFIX};
use crate::capability;
use crate::csi::{
    ControllerPublishVolumeRequest, ControllerPublishVolumeResponse, ControllerUnpublishVolumeRequest,
    ControllerUnpublishVolumeResponse, DeleteVolumeRequest,
};
use crate::driver::Driver;
use crate::status::DriverError;
use crate::volume::{VolumeKind, VolumeMeta};

pub const PUBLISH: &str = "/csi.v1.Controller/ControllerPublishVolume";
pub const UNPUBLISH: &str = "/csi.v1.Controller/ControllerUnpublishVolume";
pub const DELETE: &str = "/csi.v1.Controller/DeleteVolume";

/// `publish_context` is field 1 of `ControllerPublishVolumeResponse`.
const CONTEXT_FIELD: u32 = 1;

/// The most bytes (keys and values) an upstream's `publish_context` may hold. The CO keeps the
/// context in the `VolumeAttachment`'s status, an API object the API server bounds at about
/// 1.5 MiB in all; a real driver's context is a few keys.
pub const MAX_CONTEXT_BYTES: usize = 256 << 10;

/// The nodes the engine has `volume` on.
fn holders(d: &Driver, volume: &str) -> Result<Vec<String>, DriverError> {
    Ok(d.engine.get(volume)?.map(|a| a.nodes.iter().map(ToString::to_string).collect()).unwrap_or_default())
}

fn invalid(e: impl Into<DriverError>) -> Status {
    Status::from(e.into())
}

/// What the engine's side of a publish did.
struct Decided {
    ours: ControllerPublishVolumeResponse,
    /// The node was not a holder before: this call changed the engine.
    fresh: bool,
    /// This call recorded the volume.
    registered: bool,
    /// Nodes the upstream still has to detach before this one is attached there.
    owed: BTreeSet<String>,
}

/// The nodes `volume`'s ledger has that the engine does not hold it on: the detaches owed.
fn owed(d: &Driver, volume: &str) -> Result<BTreeSet<String>, DriverError> {
    let held = holders(d, volume)?;
    let ledger = d.catalog.get(volume).map(|m| ledger::nodes(&m)).transpose()?.unwrap_or_default();
    Ok(ledger.into_iter().filter(|n| !held.contains(n)).collect())
}

/// The engine's side of a publish: the volume recorded if new, the node entered in its ledger
/// when the upstream attaches (in the engine's commit, or in a commit of its own when the
/// publish is idempotent), then the engine's decision. A refusal puts the record back as it was.
fn decide(
    d: &Driver,
    req: &ControllerPublishVolumeRequest,
    kind: VolumeKind,
    target: &str,
    attaches: bool,
) -> Result<Decided, DriverError> {
    let volume = req.volume_id.as_str();
    let before = holders(d, volume)?;
    let registered = volumes::register(d, volume, kind, target)?;
    let mut entered = None;
    let result = (|| -> Result<_, DriverError> {
        if attaches {
            entered = ledger::edit(d, volume, |l| {
                l.insert(req.node_id.clone());
            })?;
        }
        let ours = d.controller_publish(req)?;
        let fresh = !before.contains(&req.node_id);
        // A fresh publish committed the ledger with the engine; an idempotent one wrote nothing.
        if entered.is_some() && !fresh {
            ledger::persist(d, volume)?;
        }
        Ok((ours, fresh))
    })();
    let (ours, fresh) = result.inspect_err(|_| {
        if let Some(old) = entered.take() {
            d.catalog.insert(VolumeMeta::clone(&old));
        }
        if registered {
            let _ = volumes::unregister(d, volume);
        }
    })?;
    if !attaches {
        return Ok(Decided { ours, fresh, registered, owed: BTreeSet::new() });
    }
    // A node the engine took the volume from is in the ledger already, unless its record
    // predates the ledger; `release` makes the ledger durable whenever something is owed.
    let after = holders(d, volume)?;
    ledger::edit(d, volume, |l| l.extend(before.into_iter().filter(|n| !after.contains(n))))?;
    Ok(Decided { ours, fresh, registered, owed: owed(d, volume)? })
}

impl Proxy {
    pub(super) async fn publish(&self, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        let started = Instant::now();
        let req: ControllerPublishVolumeRequest = decode(&body, "ControllerPublishVolumeRequest")?;
        let (volume, node) = (req.volume_id.clone(), req.node_id.clone());
        check_volume_id(&volume).map_err(invalid)?;
        check_node_id(&node).map_err(invalid)?;
        let cap =
            req.volume_capability.as_ref().ok_or_else(|| Status::invalid_argument("volume capability is missing"))?;
        let kind = capability::parse(cap).map_err(invalid)?.kind;
        let _busy = self.busy.begin(&volume).map_err(Status::from)?;
        let attaches = self.upstream_attaches(deadline).await?;
        let target = self.upstream.target().to_owned();
        let secrets = req.secrets.clone();
        let Decided { ours, fresh, registered, owed } =
            self.blocking(move |d| decide(d, &req, kind, &target, attaches)).await?;
        if !attaches {
            self.driver.metrics.observe_operation("controller_publish", started.elapsed().as_secs_f64());
            return Ok(ours.encode_to_vec().into());
        }
        self.release(&volume, owed, secrets, deadline).await?;
        let answer = match self.upstream.call(PUBLISH, body, deadline).await {
            Ok(answer) => answer,
            Err(e) => {
                if fresh && e.is_refusal() {
                    self.undo_publish(volume, node, registered).await;
                }
                return Err(e.into());
            }
        };
        let theirs: ControllerPublishVolumeResponse = self.upstream.read("ControllerPublishVolume", &answer)?;
        self.check_context(&theirs)?;
        self.driver.metrics.observe_operation("controller_publish", started.elapsed().as_secs_f64());
        Ok(wire::append_map(&answer, CONTEXT_FIELD, &ours.publish_context))
    }

    /// Detaches at the upstream the nodes `owed` (its ledger has them, the engine does not:
    /// taken by a grace handoff or cleared on evidence, now or by an earlier call, before a
    /// restart or not), before the new holder is attached there. A node detached leaves the
    /// ledger; one whose detach failed stays owed, and the CO's retry of the publish (or the
    /// delete) that got this error pays it. Nothing owed costs nothing.
    async fn release(
        &self,
        volume: &str,
        owed: BTreeSet<String>,
        secrets: HashMap<String, String>,
        deadline: Instant,
    ) -> Result<(), Status> {
        if owed.is_empty() {
            return Ok(());
        }
        let mut detached = Vec::new();
        let mut failed = None;
        for node in owed {
            let req = ControllerUnpublishVolumeRequest {
                volume_id: volume.into(),
                node_id: node.clone(),
                secrets: secrets.clone(),
            };
            if let Err(e) = self.upstream.call(UNPUBLISH, req.encode_to_vec().into(), deadline).await {
                failed = Some(e);
                break;
            }
            tracing::info!(volume, node, "detached at the upstream: the engine took the volume from it");
            detached.push(node);
        }
        let v = volume.to_owned();
        self.blocking(move |d| {
            ledger::edit(d, &v, |l| l.retain(|n| !detached.contains(n)))?;
            ledger::persist(d, &v)
        })
        .await?;
        failed.map_or(Ok(()), |e| Err(e.into()))
    }

    /// Undoes what this publish changed in the engine after the upstream refused it outright; a
    /// failure leaves the engine holding the node (the safe side) and is logged. The node leaves
    /// the ledger in the engine's commit: the upstream did not attach it.
    async fn undo_publish(&self, volume: String, node: String, registered: bool) {
        let req =
            ControllerUnpublishVolumeRequest { volume_id: volume.clone(), node_id: node.clone(), ..Default::default() };
        let undone = self
            .blocking(move |d| {
                ledger::edit(d, &req.volume_id, |l| {
                    l.remove(&req.node_id);
                })?;
                d.controller_unpublish(&req)?;
                if registered {
                    volumes::unregister(d, &req.volume_id)?;
                }
                Ok(())
            })
            .await;
        match undone {
            Ok(()) => tracing::info!(volume, node, "upstream refused the publish; the engine's change is undone"),
            Err(e) => tracing::error!(volume, node, "upstream refused the publish; undoing it failed: {}", e.message()),
        }
    }

    /// Refuses an upstream context that uses Tether's prefix or is too large to keep.
    fn check_context(&self, theirs: &ControllerPublishVolumeResponse) -> Result<(), Status> {
        let up = &self.upstream;
        if let Some(key) = theirs.publish_context.keys().find(|k| k.starts_with(TETHER_PREFIX)) {
            let problem = format!("publish_context key {key:?}, in the prefix {TETHER_PREFIX:?} that Tether reserves");
            return Err(up.hostile("ControllerPublishVolume", problem).into());
        }
        let size: usize = theirs.publish_context.iter().map(|(k, v)| k.len() + v.len()).sum();
        if size > MAX_CONTEXT_BYTES {
            let problem = format!("a publish_context of {size} bytes; Tether passes at most {MAX_CONTEXT_BYTES}");
            return Err(up.hostile("ControllerPublishVolume", problem).into());
        }
        Ok(())
    }

    pub(super) async fn unpublish(&self, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        let started = Instant::now();
        let req: ControllerUnpublishVolumeRequest = decode(&body, "ControllerUnpublishVolumeRequest")?;
        check_volume_id(&req.volume_id).map_err(invalid)?;
        if !req.node_id.is_empty() {
            check_node_id(&req.node_id).map_err(invalid)?;
        }
        let _busy = self.busy.begin(&req.volume_id).map_err(Status::from)?;
        let attaches = self.upstream_attaches(deadline).await?;
        let answer = if attaches {
            self.forward(UNPUBLISH, body, deadline).await?
        } else {
            ControllerUnpublishVolumeResponse {}.encode_to_vec().into()
        };
        self.blocking(move |d| {
            let held = holders(d, &req.volume_id)?;
            // The upstream detached: the node leaves the ledger, in the engine's commit when the
            // engine held it, else in one of its own.
            let left = attaches
                && ledger::edit(d, &req.volume_id, |l| match req.node_id.as_str() {
                    "" => l.clear(),
                    node => {
                        l.remove(node);
                    }
                })?
                .is_some();
            d.controller_unpublish(&req)?;
            let committed = if req.node_id.is_empty() { !held.is_empty() } else { held.contains(&req.node_id) };
            if left && !committed {
                ledger::persist(d, &req.volume_id)?;
            }
            Ok(())
        })
        .await?;
        self.driver.metrics.observe_operation("controller_unpublish", started.elapsed().as_secs_f64());
        Ok(answer)
    }

    pub(super) async fn delete(&self, body: Bytes, deadline: Instant) -> Result<Bytes, Status> {
        let req: DeleteVolumeRequest = decode(&body, "DeleteVolumeRequest")?;
        let volume = req.volume_id;
        check_volume_id(&volume).map_err(invalid)?;
        let _busy = self.busy.begin(&volume).map_err(Status::from)?;
        let v = volume.clone();
        let owed = self
            .blocking(move |d| match d.engine.get(&v)? {
                Some(a) => Err(DriverError::StillPublished { volume: v, nodes: a.nodes.to_string() }),
                None => owed(d, &v),
            })
            .await?;
        // A detach still owed is paid before the upstream deletes the volume and its record goes.
        self.release(&volume, owed, req.secrets, deadline).await?;
        let answer = self.forward(DELETE, body, deadline).await?;
        self.blocking(move |d| volumes::unregister(d, &volume)).await?;
        Ok(answer)
    }
}
