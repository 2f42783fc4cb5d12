//! The core's Prometheus metrics: what the actors count and measure, in a
//! [`prometheus::Registry`] of each system's own, which the server serves at
//! `/metrics` (and registers its HTTP-side metrics in).
//!
//! Why a registry per system and not prometheus' global default one: tests
//! run several systems in one process, and each must see only its own
//! figures (and register the same metric names without a clash).
//!
//! Most metrics are counted where things happen (an ingest answered, a
//! delivery recorded, an actor restarted, a batch committed). Two gauges are
//! computed when scraped instead, from the [`IncidentBoard`]: the open
//! incidents by status and service, and the overdue escalations (open
//! incidents whose escalation step was due more than [`OVERDUE_GRACE`] ago
//! and has not fired: a stuck actor, a lost timer, a store refusing
//! commits). Each incident actor publishes its incident on the board after
//! every change and withdraws it when it stops (even when killed: the
//! board slot is withdrawn on drop), so the board is what the live actors
//! hold, and "overdue" is judged with the system's [`Clock`](crate::time::Clock), as the
//! escalation deadlines are.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use prometheus::proto::MetricFamily;
use prometheus::{
    exponential_buckets, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry,
};

use crate::domain::{AttemptOutcome, Incident, IncidentId, IncidentStatus, IngestAction};
use crate::messages::{IngestError, IngestOutcome};
use crate::time::Timestamp;

/// How late an escalation step may be before it counts as overdue: a timer
/// fires a few milliseconds late and its commit takes a batch; beyond
/// seconds, something is wrong.
pub const OVERDUE_GRACE: Duration = Duration::from_secs(5);

/// Latency buckets (seconds) for requests and commits: 0.5 ms to 10 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Delivery latency buckets (seconds): a channel answers in milliseconds
/// when well, and retries back off for minutes when not.
const DELIVERY_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0,
];

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A metric could not be made or registered (a bad or duplicate name).
    #[error("metrics: {0}")]
    Prometheus(#[from] prometheus::Error),
}

/// The core's metrics, registered in [`CoreMetrics::registry`].
pub struct CoreMetrics {
    registry: Registry,
    /// `lim_ingest_alerts_total{source,result}`.
    pub ingest_alerts: IntCounterVec,
    /// `lim_notifications_total{channel,result}`.
    pub notifications: IntCounterVec,
    /// `lim_notification_delivery_seconds{channel}`.
    pub delivery_latency: HistogramVec,
    /// `lim_actor_restarts_total{kind}`.
    pub restarts: IntCounterVec,
    /// `lim_persistence_batch_size`.
    pub batch_size: Histogram,
    /// `lim_persistence_commit_seconds`.
    pub commit_latency: Histogram,
    /// `lim_persistence_pending_writes`.
    pub pending_writes: IntGauge,
    /// `lim_incidents_quarantined`: incidents whose actor kept failing.
    pub quarantined: IntGauge,
    /// `lim_notifier_deliveries{channel,state}` (state: queued, in_flight, retrying).
    pub notifier_queue: IntGaugeVec,
    /// `lim_open_incidents{status,service}`, set from the board when scraped.
    open_incidents: IntGaugeVec,
    /// `lim_escalations_overdue`, set from the board when scraped.
    overdue: IntGauge,
    /// What the live incident actors hold.
    pub board: IncidentBoard,
    /// Serialises scrapes: each resets and refills the board's gauges.
    scrape: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind: keep going.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CoreMetrics {
    /// The metrics of a new system, in a new registry.
    pub fn new() -> Result<Self, MetricsError> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, MetricsError>(c)
        };
        let gauge_vec = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, MetricsError>(g)
        };
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, MetricsError>(g)
        };
        let histogram = |name: &str, help: &str, buckets: Vec<f64>| {
            let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(buckets))?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, MetricsError>(h)
        };
        let delivery_latency = HistogramVec::new(
            HistogramOpts::new(
                "lim_notification_delivery_seconds",
                "Time from a delivery's commit (when it was recorded pending) to its channel \
                 accepting it, retries included, by channel",
            )
            .buckets(DELIVERY_BUCKETS.to_vec()),
            &["channel"],
        )?;
        registry.register(Box::new(delivery_latency.clone()))?;
        Ok(CoreMetrics {
            ingest_alerts: counter(
                "lim_ingest_alerts_total",
                "Alerts ingested, by source and result (created, joined, resolved, unchanged, \
                 silenced; rejected: a request refused whole; error: not committed)",
                &["source", "result"],
            )?,
            notifications: counter(
                "lim_notifications_total",
                "Delivery attempts' outcomes by channel: delivered, failed (for good), \
                 retried (failed, will retry), cancelled (no longer wanted)",
                &["channel", "result"],
            )?,
            delivery_latency,
            restarts: counter(
                "lim_actor_restarts_total",
                "Actors restarted by their supervisor after a failure, by kind",
                &["kind"],
            )?,
            batch_size: histogram(
                "lim_persistence_batch_size",
                "Writes (incident changes and repeat counters) in one group commit",
                exponential_buckets(1.0, 2.0, 12)?,
            )?,
            commit_latency: histogram(
                "lim_persistence_commit_seconds",
                "Duration of one group commit in the store",
                LATENCY_BUCKETS.to_vec(),
            )?,
            pending_writes: gauge(
                "lim_persistence_pending_writes",
                "Incident writes waiting for the next group commit",
            )?,
            quarantined: gauge(
                "lim_incidents_quarantined",
                "Open incidents whose actor failed more often than the restart intensity allows: \
                 no actor runs them, their alerts and commands are refused (503) until an \
                 operator restarts them",
            )?,
            notifier_queue: gauge_vec(
                "lim_notifier_deliveries",
                "Deliveries in a channel worker's hands, by channel and state \
                 (queued, in_flight, retrying)",
                &["channel", "state"],
            )?,
            open_incidents: gauge_vec(
                "lim_open_incidents",
                "Open incidents by status and service",
                &["status", "service"],
            )?,
            overdue: gauge(
                "lim_escalations_overdue",
                "Open incidents whose escalation step was due more than 5 s ago and has not fired",
            )?,
            registry,
            board: IncidentBoard::default(),
            scrape: Mutex::new(()),
        })
    }

    /// The registry every metric of this system is in; the server registers
    /// its own there too.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Every metric family as of `now`: the board's gauges are refreshed
    /// first.
    pub fn gather(&self, now: Timestamp) -> Vec<MetricFamily> {
        let _scrape = lock(&self.scrape);
        let open = self.board.open_by_status_and_service();
        // Reset, then set: a service with no open incident left has no series.
        self.open_incidents.reset();
        for ((status, service), n) in open {
            self.open_incidents
                .with_label_values(&[status, service.as_str()])
                .set(n as i64);
        }
        self.overdue
            .set(self.board.overdue(now, OVERDUE_GRACE) as i64);
        self.registry.gather()
    }

    /// Counts one alert's ingest result.
    pub fn count_ingest(&self, source: &str, result: &Result<IngestOutcome, IngestError>) {
        self.ingest_alerts
            .with_label_values(&[source, ingest_result(result)])
            .inc();
    }

    /// Counts a request of `source` refused whole (nothing ingested).
    pub fn count_rejected(&self, source: &str) {
        self.ingest_alerts
            .with_label_values(&[source, "rejected"])
            .inc();
    }

    /// Counts a delivery attempt's outcome on `channel`; a delivery also
    /// observes its latency, from `created_at` (its commit) to `at`.
    pub fn count_attempt(
        &self,
        channel: &str,
        outcome: &AttemptOutcome,
        created_at: Timestamp,
        at: Timestamp,
    ) {
        let result = match outcome {
            AttemptOutcome::Delivered { .. } => {
                let ms = at.0.saturating_sub(created_at.0).max(0);
                self.delivery_latency
                    .with_label_values(&[channel])
                    .observe(ms as f64 / 1000.0);
                "delivered"
            }
            AttemptOutcome::Failed { last: true, .. } => "failed",
            AttemptOutcome::Failed { last: false, .. } => "retried",
            AttemptOutcome::Cancelled => "cancelled",
        };
        self.notifications
            .with_label_values(&[channel, result])
            .inc();
    }

    /// Counts a restart of an actor of `kind` (`incident`, `router`,
    /// `persistence`, `notifier`, `heartbeats`, `heartbeat`, `channel_worker`).
    pub fn count_restart(&self, kind: &str) {
        self.restarts.with_label_values(&[kind]).inc();
    }

    /// Sets the depth gauges of `channel`'s worker.
    pub fn set_notifier_depth(
        &self,
        channel: &str,
        queued: usize,
        in_flight: usize,
        retrying: usize,
    ) {
        for (state, n) in [
            ("queued", queued),
            ("in_flight", in_flight),
            ("retrying", retrying),
        ] {
            self.notifier_queue
                .with_label_values(&[channel, state])
                .set(n as i64);
        }
    }
}

/// The `result` label of an ingest result: the action (`created`,
/// `joined`, `resolved`, `unchanged`, `silenced`), or `error`.
pub fn ingest_result(result: &Result<IngestOutcome, IngestError>) -> &'static str {
    match result {
        Ok(outcome) => match outcome.action {
            IngestAction::Created => "created",
            IngestAction::Joined => "joined",
            IngestAction::Resolved => "resolved",
            IngestAction::Unchanged => "unchanged",
            IngestAction::Silenced => "silenced",
        },
        Err(_) => "error",
    }
}

/// One open incident as its actor published it.
struct BoardEntry {
    /// Which actor published it: a restarted incident's new actor publishes
    /// before the old one's state is dropped, and the old one's withdrawal
    /// must not remove the new entry.
    owner: u64,
    status: IncidentStatus,
    service: String,
    /// When its next escalation step is due (triggered incidents only): the
    /// committed deadline, which moves only when the step's commit succeeds.
    escalation_due: Option<Timestamp>,
}

/// The open incidents as their live actors hold them: a small shared map
/// the actors update and the scrape reads.
#[derive(Default)]
pub struct IncidentBoard {
    entries: Mutex<HashMap<IncidentId, BoardEntry>>,
}

/// Owner tokens, unique in the process.
static OWNERS: AtomicU64 = AtomicU64::new(1);

impl IncidentBoard {
    /// A slot for the actor of incident `id`: publish through it; it
    /// withdraws the entry when dropped.
    pub fn slot(metrics: &Arc<CoreMetrics>, id: IncidentId) -> BoardSlot {
        BoardSlot {
            published: None,
            metrics: metrics.clone(),
            id,
            owner: OWNERS.fetch_add(1, Ordering::Relaxed),
        }
    }

    fn publish(&self, owner: u64, incident: &Incident) {
        let mut entries = lock(&self.entries);
        if !incident.status.is_open() {
            if entries.get(&incident.id).is_some_and(|e| e.owner == owner) {
                entries.remove(&incident.id);
            }
            return;
        }
        let escalation_due = incident.deadlines().escalation;
        match entries.get_mut(&incident.id) {
            Some(e) => {
                e.owner = owner;
                e.status = incident.status;
                e.escalation_due = escalation_due;
                if e.service != incident.service {
                    e.service = incident.service.clone();
                }
            }
            None => {
                entries.insert(
                    incident.id,
                    BoardEntry {
                        owner,
                        status: incident.status,
                        service: incident.service.clone(),
                        escalation_due,
                    },
                );
            }
        }
    }

    fn withdraw(&self, id: IncidentId, owner: u64) {
        let mut entries = lock(&self.entries);
        if entries.get(&id).is_some_and(|e| e.owner == owner) {
            entries.remove(&id);
        }
    }

    /// Open incidents on the board.
    pub fn len(&self) -> usize {
        lock(&self.entries).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Open incidents counted by (status, service).
    pub fn open_by_status_and_service(&self) -> BTreeMap<(&'static str, String), usize> {
        let entries = lock(&self.entries);
        let mut out: BTreeMap<(&'static str, String), usize> = BTreeMap::new();
        for e in entries.values() {
            *out.entry((e.status.as_str(), e.service.clone()))
                .or_default() += 1;
        }
        out
    }

    /// Open incidents whose escalation step was due before `now - grace`.
    pub fn overdue(&self, now: Timestamp, grace: Duration) -> usize {
        let cutoff = Timestamp(now.0.saturating_sub(grace.as_millis() as i64));
        lock(&self.entries)
            .values()
            .filter(|e| e.escalation_due.is_some_and(|due| due < cutoff))
            .count()
    }
}

/// An incident actor's place on the board; withdrawn when dropped (the
/// actor's state is dropped however it stops, killed included).
pub struct BoardSlot {
    metrics: Arc<CoreMetrics>,
    id: IncidentId,
    owner: u64,
    /// What was last published (status, escalation deadline, a hash of the
    /// service): a repeat changes none of it, so it takes no lock.
    published: Option<(IncidentStatus, Option<Timestamp>, u64)>,
}

impl BoardSlot {
    /// Publishes the incident as the actor now holds it (a resolved one is
    /// withdrawn), unless the board already shows it so.
    pub fn publish(&mut self, incident: &Incident) {
        use std::hash::{Hash, Hasher};
        let mut service = std::collections::hash_map::DefaultHasher::new();
        incident.service.hash(&mut service);
        let now = Some((
            incident.status,
            incident.deadlines().escalation,
            service.finish(),
        ));
        if self.published == now {
            return;
        }
        self.metrics.board.publish(self.owner, incident);
        self.published = now;
    }
}

impl Drop for BoardSlot {
    fn drop(&mut self) {
        self.metrics.board.withdraw(self.id, self.owner);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Alert, AlertStatus, EscalationPolicy, Labels};

    fn incident(id: u64, service: &str) -> Incident {
        let mut labels = Labels::new();
        labels.insert("alertname".into(), format!("A{id}"));
        labels.insert("service".into(), service.into());
        let alert = Alert {
            labels,
            annotations: Labels::new(),
            status: AlertStatus::Firing,
            starts_at: Timestamp(0),
            ends_at: None,
            source: "native".into(),
            dedup_key: None,
            extra: None,
        };
        Incident::open(
            IncidentId(id),
            alert,
            &EscalationPolicy::default_console(),
            Timestamp(0),
        )
        .0
    }

    fn gauge(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> Option<i64> {
        let family = families.iter().find(|f| f.name() == name)?;
        family
            .get_metric()
            .iter()
            .find(|m| {
                labels.iter().all(|(k, v)| {
                    m.get_label()
                        .iter()
                        .any(|l| l.name() == *k && l.value() == *v)
                })
            })
            .map(|m| m.get_gauge().get_value() as i64)
    }

    #[test]
    fn a_stale_owner_does_not_withdraw_the_new_entry() {
        let metrics = Arc::new(CoreMetrics::new().unwrap());
        let mut old = IncidentBoard::slot(&metrics, IncidentId(1));
        old.publish(&incident(1, "chat"));
        let mut new = IncidentBoard::slot(&metrics, IncidentId(1));
        new.publish(&incident(1, "chat"));
        drop(old);
        assert_eq!(metrics.board.len(), 1, "the restarted actor's entry stays");
        drop(new);
        assert!(metrics.board.is_empty());
    }

    #[test]
    fn overdue_counts_deadlines_past_the_grace() {
        let metrics = Arc::new(CoreMetrics::new().unwrap());
        let mut slot = IncidentBoard::slot(&metrics, IncidentId(1));
        let mut i = incident(1, "chat");
        i.escalation.next_at = Some(Timestamp(10_000));
        slot.publish(&i);
        let at = |ms| {
            gauge(
                &metrics.gather(Timestamp(ms)),
                "lim_escalations_overdue",
                &[],
            )
        };
        assert_eq!(at(10_000), Some(0));
        assert_eq!(at(15_000), Some(0), "exactly 5 s late is not overdue yet");
        assert_eq!(at(15_001), Some(1));
        i.status = IncidentStatus::Acknowledged;
        slot.publish(&i);
        assert_eq!(
            at(60_000),
            Some(0),
            "an acknowledged incident does not escalate"
        );
    }

    #[test]
    fn open_incidents_follow_status_and_leave_when_resolved() {
        let metrics = Arc::new(CoreMetrics::new().unwrap());
        let (mut a, mut b) = (
            IncidentBoard::slot(&metrics, IncidentId(1)),
            IncidentBoard::slot(&metrics, IncidentId(2)),
        );
        let mut one = incident(1, "chat");
        a.publish(&one);
        b.publish(&incident(2, "chat"));
        let open = |status: &str| {
            gauge(
                &metrics.gather(Timestamp(0)),
                "lim_open_incidents",
                &[("status", status), ("service", "chat")],
            )
        };
        assert_eq!(open("triggered"), Some(2));
        assert_eq!(open("acknowledged"), None);
        one.status = IncidentStatus::Acknowledged;
        a.publish(&one);
        assert_eq!(open("triggered"), Some(1));
        assert_eq!(open("acknowledged"), Some(1));
        one.status = IncidentStatus::Resolved;
        a.publish(&one);
        assert_eq!(open("acknowledged"), None, "resolved: no longer open");
        assert_eq!(open("triggered"), Some(1));
    }
}
