//! The adopt path at scale: a driver restarting on 10 000 stored volumes rebuilds its state
//! from 10 000 `VolumeAttachment`s and their PVs, handed over by a fake lister as the JSON
//! list pages the API server sends (500 objects a page), so the figure is the driver's own work
//! and not the API server's. Beside it, in the same run: decoding the same pages (what any
//! rebuild pays), restoring the adopted state into a fresh engine, and one bare `fdatasync` per
//! volume the adoption persists (what persisting them one at a time would cost at least).
//!
//! `cargo bench -p tether-benches --bench adopt` — the store lives under
//! `TETHER_BENCH_STATE_DIR` (default: a directory under `target/`, on disk).

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeSpec};
use k8s_openapi::api::storage::v1::{
    VolumeAttachment, VolumeAttachmentSource, VolumeAttachmentSpec, VolumeAttachmentStatus,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ListMeta, ObjectMeta};
use k8s_openapi::{List, ListableResource};
use serde::de::DeserializeOwned;
use tether_benches::node_name;
use tether_core::{Engine, MonotonicClock};
use tether_driver::csi::volume_capability::{access_mode::Mode, AccessMode, AccessType, MountVolume};
use tether_driver::csi::{CapacityRange, CreateVolumeRequest, VolumeCapability};
use tether_driver::events::LogSink;
use tether_driver::k8s::rebuild::observed;
use tether_driver::nodes::StaticNodes;
use tether_driver::store::EmbeddedStore;
use tether_driver::{Driver, Parts, Settings};

const VOLUMES: usize = 10_000;
const PAGE: usize = 500;
const DRIVER: &str = "tether.csi.bench";

fn open(state: &Path, awaits_rebuild: bool) -> Driver {
    let settings = Settings {
        driver_name: DRIVER.into(),
        node_id: "node-000".into(),
        grace_period: Duration::from_secs(30),
        default_migration_timeout: Duration::from_mins(5),
        metrics_namespace: "tether".into(),
        lease_term: 0,
    };
    let parts = Parts {
        clock: Arc::new(MonotonicClock::new()),
        store: Arc::new(EmbeddedStore::open(state, 1 << 50).expect("store")),
        nodes: Arc::new(StaticNodes::new((0..100).map(node_name))),
        events: Arc::new(LogSink),
        changes: None,
        awaits_rebuild,
    };
    Driver::open(settings, parts).expect("driver")
}

/// Creates the volumes (never attached) and returns their ids.
fn create_volumes(state: &Path) -> Vec<String> {
    let driver = open(state, false);
    let cap = VolumeCapability {
        access_type: Some(AccessType::Mount(MountVolume::default())),
        access_mode: Some(AccessMode { mode: Mode::SingleNodeWriter.into() }),
    };
    (0..VOLUMES)
        .map(|i| {
            let req = CreateVolumeRequest {
                name: format!("adopt-{i}"),
                volume_capabilities: vec![cap.clone()],
                capacity_range: Some(CapacityRange { required_bytes: 1 << 20, limit_bytes: 0 }),
                ..Default::default()
            };
            driver.create_volume(&req).expect("create").volume_id
        })
        .collect()
}

fn pv(i: usize, handle: &str) -> PersistentVolume {
    let csi = CSIPersistentVolumeSource { driver: DRIVER.into(), volume_handle: handle.into(), ..Default::default() };
    PersistentVolume {
        metadata: ObjectMeta { name: Some(format!("pv-{i}")), ..Default::default() },
        spec: Some(PersistentVolumeSpec {
            access_modes: Some(vec!["ReadWriteOnce".into()]),
            csi: Some(csi),
            ..Default::default()
        }),
        status: None,
    }
}

fn va(i: usize) -> VolumeAttachment {
    VolumeAttachment {
        metadata: ObjectMeta { name: Some(format!("csi-{i:064x}")), ..Default::default() },
        spec: VolumeAttachmentSpec {
            attacher: DRIVER.into(),
            node_name: node_name(i),
            source: VolumeAttachmentSource { persistent_volume_name: Some(format!("pv-{i}")), ..Default::default() },
        },
        status: Some(VolumeAttachmentStatus { attached: true, ..Default::default() }),
    }
}

/// The list pages a lister would receive, as JSON.
fn pages<T: ListableResource + serde::Serialize + Clone>(items: &[T]) -> Vec<String> {
    items
        .chunks(PAGE)
        .map(|chunk| serde_json::to_string(&List { items: chunk.to_vec(), metadata: ListMeta::default() }).unwrap())
        .collect()
}

/// The fake lister: every page decoded, as `kube`'s `Api::list` does with the body.
fn decode<T: ListableResource + DeserializeOwned>(pages: &[String]) -> Vec<T> {
    pages.iter().flat_map(|p| serde_json::from_str::<List<T>>(p).expect("page").items).collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// One rebuild as the Kubernetes layer runs it: decode the lists, work out what is attached,
/// adopt it. Returns the time of each part and how many volumes the adoption changed.
fn rebuild(state: &Path, va_pages: &[String], pv_pages: &[String]) -> (Driver, [Duration; 3], usize) {
    let driver = open(state, true);
    let t = Instant::now();
    let (vas, pvs) = (decode::<VolumeAttachment>(va_pages), decode::<PersistentVolume>(pv_pages));
    let decoded = t.elapsed();
    let t = Instant::now();
    let (seen, skipped) = observed(DRIVER, &vas, &pvs);
    let worked_out = t.elapsed();
    assert!(skipped.is_empty(), "{skipped:?}");
    let t = Instant::now();
    let report = driver.adopt(&seen).expect("adopt");
    let adopted = t.elapsed();
    assert!(report.refused.is_empty(), "{:?}", report.refused);
    (driver, [decoded, worked_out, adopted], report.changed().count())
}

fn report(what: &str, [decoded, worked_out, adopted]: [Duration; 3], changed: usize, sync: Duration) {
    let total = decoded + worked_out + adopted;
    let syncs = sync * u32::try_from(changed).unwrap_or(u32::MAX);
    println!(
        "adopt/{what}: {:.0} ms in all (decode {:.0} ms, work out {:.1} ms, adopt {:.0} ms), {:.2}x decoding the pages alone; \
         {changed} volumes persisted, against {changed} bare fdatasyncs {:.0} ms: {:.2}x",
        ms(total),
        ms(decoded),
        ms(worked_out),
        ms(adopted),
        total.as_secs_f64() / decoded.as_secs_f64(),
        ms(syncs),
        if syncs.is_zero() { f64::NAN } else { adopted.as_secs_f64() / syncs.as_secs_f64() },
    );
}

fn main() {
    // `cargo bench` passes --bench; under `cargo test --benches` there is nothing to measure.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let root = tether_benches::state_root("adopt-bench");
    let _ = std::fs::remove_dir_all(&root);
    let state = root.join("state");
    std::fs::create_dir_all(&state).expect("state dir");
    let ids = create_volumes(&state);
    let va_pages = pages(&(0..VOLUMES).map(va).collect::<Vec<_>>());
    let pv_pages = pages(&ids.iter().enumerate().map(|(i, id)| pv(i, id)).collect::<Vec<_>>());
    let sync = tether_benches::fdatasync_latencies(&root, 200)[100];
    println!(
        "adopt: {VOLUMES} volumes under {}; one bare fdatasync {:.0} µs (median of 200)",
        root.display(),
        sync.as_secs_f64() * 1e6
    );

    // First start with the attachments: every volume is new to the engine and persisted.
    let (driver, parts, changed) = rebuild(&state, &va_pages, &pv_pages);
    report("first rebuild, 10 000 new attachments", parts, changed, sync);
    let snapshot = driver.engine.snapshot();
    drop(driver);
    let t = Instant::now();
    Engine::new().restore(&snapshot).expect("restore");
    println!("adopt/floor: restoring the adopted state into a fresh engine {:.1} ms", ms(t.elapsed()));

    // A restart (or failover) on the same records: everything adopted matches, nothing to persist.
    let (_driver, parts, changed) = rebuild(&state, &va_pages, &pv_pages);
    report("rebuild after a restart, all unchanged", parts, changed, sync);
    let _ = std::fs::remove_dir_all(&root);
}
