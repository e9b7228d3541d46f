//! Leader election with a `coordination.k8s.io` Lease: one controller replica leads (serves
//! CSI, rebuilds, reconciles); the others wait. Expiry is judged on this process's own
//! monotonic clock from when it last saw the Lease change, so clock skew between replicas
//! cannot hand the Lease over early.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::PostParams;
use kube::{Api, Client};
use tether_core::{duration_to_nanos, Clock, Nanos};
use tokio::sync::watch;

/// Which Lease, who we are, and its timing.
#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    pub identity: String,
    /// How long a holder that stopped renewing keeps the Lease (15 s by default).
    pub duration: Duration,
    /// How often the holder renews and a standby looks at the Lease: a standby notices a
    /// lapsed Lease up to this long after it lapsed (clamped to a third of `duration`).
    pub retry: Duration,
    /// Leases of the sidecars beside this driver (external-attacher, external-provisioner) in
    /// the same namespace. Their holder's identity is its pod's name, as ours is; see
    /// [`Elector::free_sidecar_leases`].
    pub sidecar_leases: Vec<String>,
}

/// The Lease record as last seen, and when (on our clock) it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    holder: Option<String>,
    renew: Option<MicroTime>,
    at: Nanos,
}

/// Competes for one Lease; `leading()` says whether this process holds it.
pub struct Elector {
    api: Api<Lease>,
    config: LeaseConfig,
    clock: Arc<dyn Clock>,
    seen: Option<Seen>,
    /// When we last renewed successfully (our clock); leadership ends `duration` after it.
    renewed_at: Option<Nanos>,
    leading: watch::Sender<bool>,
    /// The Lease's transitions as we last wrote them while holding it: the controller term's
    /// floor, growing with every change of holder.
    term: Arc<AtomicU64>,
}

impl std::fmt::Debug for Elector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Elector")
            .field("config", &self.config)
            .field("leading", &*self.leading.borrow())
            .finish_non_exhaustive()
    }
}

fn now_micro() -> MicroTime {
    MicroTime(k8s_openapi::jiff::Timestamp::now())
}

fn seconds(d: Duration) -> i32 {
    i32::try_from(d.as_secs().max(1)).unwrap_or(i32::MAX)
}

impl Elector {
    pub fn new(client: Client, config: LeaseConfig, clock: Arc<dyn Clock>) -> Self {
        let api = Api::namespaced(client, &config.namespace);
        let term = Arc::new(AtomicU64::new(0));
        Self { api, config, clock, seen: None, renewed_at: None, leading: watch::Sender::new(false), term }
    }

    /// The Lease's transitions as this process last took or renewed it (0 before that):
    /// shared, so it can be read after the elector has moved into its task.
    pub fn term(&self) -> Arc<AtomicU64> {
        Arc::clone(&self.term)
    }

    /// Follows leadership: true while this process leads.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.subscribe()
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    fn mine(&self, holder: &LeaseSpec) -> LeaseSpec {
        let taking_over = holder.holder_identity.as_deref() != Some(self.config.identity.as_str());
        let transitions = holder.lease_transitions.unwrap_or(0);
        LeaseSpec {
            holder_identity: Some(self.config.identity.clone()),
            lease_duration_seconds: Some(seconds(self.config.duration)),
            acquire_time: if taking_over { Some(now_micro()) } else { holder.acquire_time.clone() },
            renew_time: Some(now_micro()),
            // Every change of holder counts, a takeover of a released Lease too (it keeps its
            // acquire time): the count is the floor of the term epochs are issued under.
            lease_transitions: Some(if taking_over && holder.acquire_time.is_some() {
                transitions + 1
            } else {
                transitions
            }),
            ..LeaseSpec::default()
        }
    }

    /// Whether the holder we see has let the Lease lapse: no holder, or no change seen for
    /// the Lease's duration.
    fn lapsed(&mut self, spec: &LeaseSpec) -> bool {
        let now = self.clock.now();
        let record = (spec.holder_identity.clone(), spec.renew_time.clone());
        match &self.seen {
            Some(s) if (s.holder.clone(), s.renew.clone()) == record => {}
            _ => self.seen = Some(Seen { holder: record.0, renew: record.1, at: now }),
        }
        let duration = spec
            .lease_duration_seconds
            .map_or(self.config.duration, |s| Duration::from_secs(u64::try_from(s).unwrap_or(0)));
        let since = self.seen.as_ref().map_or(now, |s| s.at);
        spec.holder_identity.as_deref().is_none_or(str::is_empty)
            || now.saturating_sub(since) >= duration_to_nanos(duration)
    }

    /// One round: create, renew or take over the Lease if we may. Returns whether we hold it.
    pub async fn try_once(&mut self) -> Result<bool, kube::Error> {
        // The holder whose lapsed Lease this round takes over, if it does.
        let mut taken_from = None;
        let (held, transitions) = match self.api.get_opt(&self.config.name).await? {
            None => {
                let spec = self.mine(&LeaseSpec::default());
                let transitions = spec.lease_transitions;
                let lease = Lease {
                    metadata: ObjectMeta { name: Some(self.config.name.clone()), ..ObjectMeta::default() },
                    spec: Some(spec),
                };
                (conflict_is_false(self.api.create(&PostParams::default(), &lease).await)?, transitions)
            }
            Some(mut lease) => {
                let spec = lease.spec.clone().unwrap_or_default();
                let ours = spec.holder_identity.as_deref() == Some(self.config.identity.as_str());
                if !ours && !self.lapsed(&spec) {
                    (false, None)
                } else {
                    taken_from = spec.holder_identity.clone().filter(|h| !ours && !h.is_empty());
                    let mine = self.mine(&spec);
                    let transitions = mine.lease_transitions;
                    lease.spec = Some(mine);
                    let put = self.api.replace(&self.config.name, &PostParams::default(), &lease).await;
                    (conflict_is_false(put)?, transitions)
                }
            }
        };
        if let Some(lost) = taken_from.filter(|_| held) {
            self.free_sidecar_leases(&lost).await;
        }
        if held {
            self.renewed_at = Some(self.clock.now());
            let transitions = transitions.and_then(|t| u64::try_from(t).ok()).unwrap_or(0);
            self.term.store(transitions, Ordering::Release);
        }
        self.leading.send_replace(held);
        Ok(held)
    }

    /// After taking the Lease over from `lost`, which stopped renewing: frees each sidecar
    /// Lease `lost` still holds (holder cleared), so the sidecars beside this replica take
    /// them at their first try instead of waiting out the lease duration from when they first
    /// saw them (client-go's rule, after they waited for this driver to be ready). The lost
    /// replica's sidecars, if alive, only reach its driver, which no longer leads. Called
    /// before this replica serves; a failure costs time, not safety, so it is only logged.
    async fn free_sidecar_leases(&self, lost: &str) {
        for name in &self.config.sidecar_leases {
            let freed = async {
                let Some(mut lease) = self.api.get_opt(name).await? else { return Ok(false) };
                let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
                if spec.holder_identity.as_deref() != Some(lost) {
                    return Ok(false);
                }
                spec.holder_identity = None;
                self.api.replace(name, &PostParams::default(), &lease).await.map(|_| true)
            };
            match freed.await {
                Ok(true) => tracing::info!(lease = %name, holder = %lost, "freed the lost leader's sidecar Lease"),
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(lease = %name, error = %e, "sidecar Lease not freed; its sidecar waits it out");
                }
            }
        }
    }

    /// Whether a leader that cannot renew has run out of time.
    fn expired(&self) -> bool {
        self.renewed_at.is_none_or(|at| self.clock.now().saturating_sub(at) >= duration_to_nanos(self.config.duration))
    }

    /// Competes until `stop` turns true, trying every retry period (at most a third of the
    /// duration, so a leader gets three tries to renew); on stop, releases the Lease if it
    /// holds it, so a standby takes over without waiting it out.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        let every = self.config.retry.clamp(Duration::from_millis(100), self.config.duration / 3);
        while !*stop.borrow() {
            match self.try_once().await {
                Ok(_) => {}
                Err(e) if *self.leading.borrow() && !self.expired() => {
                    tracing::warn!(error = %e, "Lease renewal failed; still leading until it expires");
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Lease not reachable");
                    self.leading.send_replace(false);
                }
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {}
                _ = stop.changed() => {}
            }
        }
        self.release().await;
    }

    /// Gives the Lease up if we hold it (holder cleared, so another takes it at once).
    pub async fn release(&mut self) {
        let was_leading = self.leading.send_replace(false);
        if !was_leading {
            return;
        }
        let result = async {
            let Some(mut lease) = self.api.get_opt(&self.config.name).await? else { return Ok(()) };
            let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
            if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
                return Ok(());
            }
            spec.holder_identity = None;
            spec.renew_time = Some(now_micro());
            self.api.replace(&self.config.name, &PostParams::default(), &lease).await.map(|_| ())
        }
        .await;
        match result {
            Ok(()) => tracing::info!(lease = %self.config.name, "Lease released"),
            Err(e) => tracing::warn!(error = %e, "Lease not released; a standby takes over once it expires"),
        }
    }
}

/// A write that lost a race (409) means someone else holds the Lease.
fn conflict_is_false<T>(result: Result<T, kube::Error>) -> Result<bool, kube::Error> {
    match result {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
