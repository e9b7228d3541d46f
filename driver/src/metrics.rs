//! Prometheus metrics with the names, labels and buckets of DESIGN.md. Engine outcomes are
//! read from `Engine::stats()` at scrape time, so there is one count, not two; only what the
//! engine cannot see (call durations, events, migration durations) is counted here.

use std::sync::{Arc, Mutex, PoisonError};

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};
use tether_core::{Engine, Stats};

use crate::events::Reason;

/// `operation_duration_seconds` buckets, from DESIGN.md.
pub const OPERATION_BUCKETS: [f64; 9] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// `migration_duration_seconds` buckets: live migrations take seconds to the 1 h timeout cap.
pub const MIGRATION_BUCKETS: [f64; 10] = [1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0];

/// The RPCs whose duration is observed, as `operation` label values.
pub const OPERATIONS: [&str; 8] = [
    "create_volume",
    "delete_volume",
    "controller_publish",
    "controller_unpublish",
    "node_stage",
    "node_unstage",
    "node_publish",
    "node_unpublish",
];

type Read = fn(&Stats) -> u64;

/// `attach_total{status}`: every publish outcome the engine counts.
const ATTACH: [(&str, Read); 8] = [
    ("attached", |s| s.attached),
    ("already_attached", |s| s.already_attached),
    ("handed_off", |s| s.handed_off),
    ("migration_started", |s| s.migrations_started),
    ("conflict", |s| s.conflicts),
    ("incompatible", |s| s.incompatible),
    ("migration_limit", |s| s.migration_limit),
    ("migration_timed_out", |s| s.migration_timed_out),
];
/// `detach_total{status}`: every unpublish outcome.
const DETACH: [(&str, Read); 4] = [
    ("detached", |s| s.detached),
    ("not_attached", |s| s.not_attached),
    ("migration_completed", |s| s.migrations_completed),
    ("migration_aborted", |s| s.migrations_aborted),
];
/// `reconcile_total{action}`, as the engine counts it: passes run, attachments cleared from
/// nodes gone (by reconcile or at publish time), migrations reported past their timeout.
const RECONCILE: [(&str, Read); 3] = [
    ("run", |s| s.reconciles),
    ("stale_cleared", |s| s.stale_cleared),
    ("migration_timed_out", |s| s.migrations_timed_out),
];
/// `reconcile_total{action}`, as the driver counts it: state rebuilt from Kubernetes,
/// publishes that found the holding node gone, and publishes that found the holder an orphan
/// (its `VolumeAttachment` deleted).
pub const DRIVER_RECONCILE_ACTIONS: [&str; 3] = ["rebuilt", "holder_gone", "orphan"];
/// `migration_migrations_total{result}`.
const MIGRATIONS: [(&str, Read); 4] = [
    ("started", |s| s.migrations_started),
    ("completed", |s| s.migrations_completed),
    ("aborted", |s| s.migrations_aborted),
    ("timeout", |s| s.migrations_timed_out),
];

/// The engine's counters as Prometheus families, filled from one `stats()` reading per scrape.
struct EngineCollector {
    engine: Arc<Engine>,
    attach: IntCounterVec,
    detach: IntCounterVec,
    conflicts: IntCounter,
    reconcile: IntCounterVec,
    grace_used: IntCounter,
    stale_cleared: IntCounter,
    migrations: IntCounterVec,
    active: IntGauge,
    /// Serialises scrapes: each refills the families before reading them.
    scrape: Mutex<()>,
}

fn fill(vec: &IntCounterVec, table: &[(&str, Read)], stats: &Stats) {
    for (label, read) in table {
        let c = vec.with_label_values(&[*label]);
        c.reset();
        c.inc_by(read(stats));
    }
}

fn set(counter: &IntCounter, value: u64) {
    counter.reset();
    counter.inc_by(value);
}

impl Collector for EngineCollector {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = Vec::new();
        d.extend(self.attach.desc());
        d.extend(self.detach.desc());
        d.extend(self.conflicts.desc());
        d.extend(self.reconcile.desc());
        d.extend(self.grace_used.desc());
        d.extend(self.stale_cleared.desc());
        d.extend(self.migrations.desc());
        d.extend(self.active.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let _one_at_a_time = self.scrape.lock().unwrap_or_else(PoisonError::into_inner);
        let s = self.engine.stats();
        fill(&self.attach, &ATTACH, &s);
        fill(&self.detach, &DETACH, &s);
        fill(&self.reconcile, &RECONCILE, &s);
        fill(&self.migrations, &MIGRATIONS, &s);
        set(&self.conflicts, s.conflicts);
        set(&self.grace_used, s.handed_off);
        set(&self.stale_cleared, s.stale_cleared);
        self.active.set(i64::try_from(s.active_migrations).unwrap_or(i64::MAX));
        let mut families = Vec::new();
        families.extend(self.attach.collect());
        families.extend(self.detach.collect());
        families.extend(self.conflicts.collect());
        families.extend(self.reconcile.collect());
        families.extend(self.grace_used.collect());
        families.extend(self.stale_cleared.collect());
        families.extend(self.migrations.collect());
        families.extend(self.active.collect());
        families
    }
}

/// The driver's registry and the metrics it updates itself.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    operation_duration: HistogramVec,
    events_posted: IntCounterVec,
    events_dropped: IntCounterVec,
    migration_duration: Histogram,
    refence_pending: IntGauge,
    /// The engine collector's family; the driver adds its own actions to it.
    reconcile: IntCounterVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn opts(ns: &str, sub: &str, name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace(ns).subsystem(sub)
}

impl Metrics {
    /// Every metric under `namespace` (`rds_csi` by default), with the engine's read at scrape time.
    pub fn new(namespace: &str, engine: Arc<Engine>) -> Result<Self, prometheus::Error> {
        let ns = namespace;
        let a = "attachment";
        let collector = EngineCollector {
            engine,
            attach: IntCounterVec::new(opts(ns, a, "attach_total", "Publish outcomes, by status."), &["status"])?,
            detach: IntCounterVec::new(opts(ns, a, "detach_total", "Unpublish outcomes, by status."), &["status"])?,
            conflicts: IntCounter::with_opts(opts(
                ns,
                a,
                "conflicts_total",
                "Publishes refused: another node holds the volume.",
            ))?,
            reconcile: IntCounterVec::new(
                opts(ns, a, "reconcile_total", "Reconcile passes and what they found, by action."),
                &["action"],
            )?,
            grace_used: IntCounter::with_opts(opts(
                ns,
                a,
                "grace_period_used_total",
                "RWO handoffs of a late re-attach inside the grace period.",
            ))?,
            stale_cleared: IntCounter::with_opts(opts(
                ns,
                a,
                "stale_cleared_total",
                "Attachments cleared from nodes gone for the grace period.",
            ))?,
            migrations: IntCounterVec::new(
                opts(ns, "migration", "migrations_total", "Live migrations, by result."),
                &["result"],
            )?,
            active: IntGauge::with_opts(opts(ns, "migration", "active_migrations", "Volumes on two nodes now."))?,
            scrape: Mutex::new(()),
        };
        let operation_duration = HistogramVec::new(
            HistogramOpts::new("operation_duration_seconds", "CSI call duration, by operation.")
                .namespace(ns)
                .subsystem(a)
                .buckets(OPERATION_BUCKETS.to_vec()),
            &["operation"],
        )?;
        let events_posted = IntCounterVec::new(
            Opts::new("events_posted_total", "Events accepted by the event sink, by reason.").namespace(ns),
            &["reason"],
        )?;
        let events_dropped = IntCounterVec::new(
            Opts::new(
                "events_dropped_total",
                "Events that never reached the API server (queue full, refused or unreachable), by reason.",
            )
            .namespace(ns),
            &["reason"],
        )?;
        let migration_duration = Histogram::with_opts(
            HistogramOpts::new("duration_seconds", "Duration of completed live migrations.")
                .namespace(ns)
                .subsystem("migration")
                .buckets(MIGRATION_BUCKETS.to_vec()),
        )?;
        for op in OPERATIONS {
            let _ = operation_duration.with_label_values(&[op]);
        }
        for r in Reason::ALL {
            let _ = events_posted.with_label_values(&[r.as_str()]);
            let _ = events_dropped.with_label_values(&[r.as_str()]);
        }
        let reconcile = collector.reconcile.clone();
        for action in DRIVER_RECONCILE_ACTIONS {
            let _ = reconcile.with_label_values(&[action]);
        }
        let refence_pending = IntGauge::with_opts(opts(
            ns,
            a,
            "refence_pending",
            "Volumes re-fenced at this leader's term whose fence the store has not taken yet.",
        ))?;
        let registry = Registry::new();
        registry.register(Box::new(collector))?;
        registry.register(Box::new(operation_duration.clone()))?;
        registry.register(Box::new(events_posted.clone()))?;
        registry.register(Box::new(events_dropped.clone()))?;
        registry.register(Box::new(migration_duration.clone()))?;
        registry.register(Box::new(refence_pending.clone()))?;
        Ok(Self {
            registry,
            operation_duration,
            events_posted,
            events_dropped,
            migration_duration,
            refence_pending,
            reconcile,
        })
    }

    /// Adds a part's own metrics (the kubelet registration's, say) to the registry, once: a
    /// second registration of the same names fails.
    pub fn register(&self, collector: Box<dyn Collector>) -> Result<(), prometheus::Error> {
        self.registry.register(collector)
    }

    pub fn observe_operation(&self, operation: &str, seconds: f64) {
        self.operation_duration.with_label_values(&[operation]).observe(seconds);
    }

    pub fn event_posted(&self, reason: Reason) {
        self.events_posted.with_label_values(&[reason.as_str()]).inc();
    }

    pub fn event_dropped(&self, reason: Reason) {
        self.events_dropped.with_label_values(&[reason.as_str()]).inc();
    }

    /// The count of one labelled sample, for tests and diagnostics.
    pub fn events_dropped(&self, reason: Reason) -> u64 {
        self.events_dropped.with_label_values(&[reason.as_str()]).get()
    }

    /// Counts one of [`DRIVER_RECONCILE_ACTIONS`].
    pub fn reconcile_action(&self, action: &'static str) {
        debug_assert!(DRIVER_RECONCILE_ACTIONS.contains(&action), "unknown reconcile action {action}");
        self.reconcile.with_label_values(&[action]).inc();
    }

    /// Sets `refence_pending`: volumes still owing their re-fence at this term.
    pub fn set_refence_pending(&self, volumes: usize) {
        self.refence_pending.set(i64::try_from(volumes).unwrap_or(i64::MAX));
    }

    pub fn migration_completed(&self, seconds: f64) {
        self.migration_duration.observe(seconds);
    }

    /// The text exposition format of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        prometheus::TextEncoder::new().encode(&self.registry.gather(), &mut buf).expect("text encoding cannot fail");
        String::from_utf8(buf).expect("the text format is UTF-8")
    }
}
