//! Rebuilding attachment state from the `VolumeAttachments` of this driver: what Kubernetes
//! records as attached is what the engine must hold before any publish is served.

use std::collections::HashMap;
use std::time::SystemTime;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeSpec};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::ListParams;
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;
use tether_core::Access;

use super::annotate::EPOCH_ANNOTATION;
use crate::adopt::{Observed, ObservedNode, ObservedVolume};

/// Objects per page when listing.
const PAGE: u32 = 500;

/// Every object of a kind, page by page.
async fn list_all<K>(api: &Api<K>) -> Result<Vec<K>, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE);
    loop {
        let page = api.list(&params).await?;
        items.extend(page.items);
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(items),
        }
    }
}

/// Lists the `VolumeAttachments` and PVs and works out what is attached.
pub async fn observe(client: &Client, driver_name: &str) -> Result<(Observed, Vec<String>), kube::Error> {
    let attachments = list_all(&Api::<VolumeAttachment>::all(client.clone())).await?;
    let pvs = list_all(&Api::<PersistentVolume>::all(client.clone())).await?;
    Ok(observed(driver_name, &attachments, &pvs))
}

/// The engine access a PV's access modes and CSI read-only flag ask for.
pub fn access_of(spec: &PersistentVolumeSpec) -> Access {
    let modes = spec.access_modes.as_deref().unwrap_or_default();
    let has = |m: &str| modes.iter().any(|x| x == m);
    let readonly = spec.csi.as_ref().and_then(|c| c.read_only).unwrap_or(false)
        || (has("ReadOnlyMany") && !has("ReadWriteOnce") && !has("ReadWriteOncePod") && !has("ReadWriteMany"));
    let access = if has("ReadWriteMany") { Access::RWX } else { Access::RWO };
    if readonly {
        access.readonly()
    } else {
        access
    }
}

/// What `attachments` of driver `driver_name` say is attached, with each volume's access taken
/// from its PV (or the attachment's inline spec). Also returns, as messages, the attachments
/// that could not be understood (their PV is gone or belongs to another driver).
pub fn observed(
    driver_name: &str,
    attachments: &[VolumeAttachment],
    pvs: &[PersistentVolume],
) -> (Observed, Vec<String>) {
    let by_name: HashMap<&str, &PersistentVolume> =
        pvs.iter().filter_map(|pv| Some((pv.metadata.name.as_deref()?, pv))).collect();
    let mut out = Observed::new();
    let mut skipped = Vec::new();
    for va in attachments {
        let name = va.metadata.name.as_deref().unwrap_or("?");
        if va.spec.attacher != driver_name || !va.status.as_ref().is_some_and(|s| s.attached) {
            continue;
        }
        let source = &va.spec.source;
        let pv = source.persistent_volume_name.as_deref().and_then(|n| by_name.get(n).copied());
        let (spec, annotations) = match (pv, &source.inline_volume_spec) {
            (Some(pv), _) => (pv.spec.as_ref(), pv.metadata.annotations.as_ref()),
            (None, Some(inline)) => (Some(inline), None),
            (None, None) => (None, None),
        };
        let Some((spec, csi)) = spec.and_then(|s| Some((s, s.csi.as_ref()?))) else {
            skipped.push(format!(
                "VolumeAttachment {name}: its PersistentVolume {:?} was not found",
                source.persistent_volume_name
            ));
            continue;
        };
        if csi.driver != driver_name {
            skipped.push(format!("VolumeAttachment {name}: its volume belongs to driver {:?}", csi.driver));
            continue;
        }
        let since = va.metadata.creation_timestamp.as_ref().map_or(SystemTime::UNIX_EPOCH, |t| SystemTime::from(t.0));
        let floor = annotations.and_then(|a| a.get(EPOCH_ANNOTATION)).and_then(|e| e.parse().ok()).unwrap_or(0);
        let volume = out.entry(csi.volume_handle.clone()).or_insert_with(|| ObservedVolume {
            access: access_of(spec),
            nodes: Vec::new(),
            epoch_floor: floor,
        });
        volume.nodes.push(ObservedNode { node: va.spec.node_name.clone(), since });
    }
    (out, skipped)
}
