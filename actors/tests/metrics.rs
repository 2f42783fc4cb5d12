//! The core's metrics through a running system, on tokio's paused clock:
//! the open-incidents gauge follows status transitions, the overdue gauge
//! catches an escalation step that was due and did not fire, and the
//! counters (ingest results, notifications, restarts, commits) move.

mod common;

use std::time::Duration;

use common::*;
use incident_actors::domain::{AlertStatus, Attribution, Interface};
use incident_actors::SystemConfig;
use prometheus::proto::{MetricFamily, MetricType};

/// The value of metric `name` whose labels include `labels`: a counter's or
/// gauge's value, a histogram's sample count; 0 when there is no such series.
fn value(families: &[MetricFamily], name: &str, labels: &[(&str, &str)]) -> f64 {
    let Some(family) = families.iter().find(|f| f.name() == name) else {
        return 0.0;
    };
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
        .map(|m| match family.get_field_type() {
            MetricType::COUNTER => m.get_counter().get_value(),
            MetricType::GAUGE => m.get_gauge().get_value(),
            MetricType::HISTOGRAM => m.get_histogram().get_sample_count() as f64,
            other => panic!("{name}: unexpected type {other:?}"),
        })
        .unwrap_or(0.0)
}

fn by(user: &str) -> Attribution {
    Attribution::new(user, Interface::Api)
}

#[tokio::test(start_paused = true)]
async fn open_incidents_follow_status_transitions_and_resolve_removes_them() {
    let h = start(SystemConfig::default()).await;
    let open = |status: &'static str| {
        let families = h.system.gather_metrics();
        value(
            &families,
            "lim_open_incidents",
            &[("status", status), ("service", "chat")],
        )
    };
    assert_eq!(open("triggered"), 0.0);
    let a = open_incident(&h.system, "A").await;
    let _b = open_incident(&h.system, "B").await;
    settle().await;
    assert_eq!(open("triggered"), 2.0);
    assert_eq!(open("acknowledged"), 0.0);

    h.system.acknowledge(a, by("alice")).await.unwrap();
    assert_eq!(open("triggered"), 1.0);
    assert_eq!(open("acknowledged"), 1.0);

    h.system.resolve(a, by("alice")).await.unwrap();
    settle().await;
    assert_eq!(open("acknowledged"), 0.0, "resolved: not open any more");
    assert_eq!(open("triggered"), 1.0);

    // A resolving alert resolves the other one.
    h.system
        .ingest(alert("B", AlertStatus::Resolved))
        .await
        .unwrap();
    settle().await;
    assert_eq!(open("triggered"), 0.0);
    let families = h.system.gather_metrics();
    let ingested = |result| {
        value(
            &families,
            "lim_ingest_alerts_total",
            &[("source", "native"), ("result", result)],
        )
    };
    assert_eq!(ingested("created"), 2.0);
    assert_eq!(ingested("resolved"), 1.0);
    assert_eq!(ingested("error"), 0.0);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_escalation_step_that_cannot_fire_becomes_overdue_after_5_s() {
    // Default policy: step 0 at once, then again every 5 minutes.
    let h = start(SystemConfig::default()).await;
    let overdue = || value(&h.system.gather_metrics(), "lim_escalations_overdue", &[]);
    open_incident(&h.system, "A").await;
    settle().await;
    assert_eq!(h.channel.count(), 1);
    assert_eq!(overdue(), 0.0);

    // The store refuses commits: the 5-minute step's timer fires, its
    // commit fails, it is retried every second, and the step stays undone.
    h.store.set_failing_commits(true);
    tokio::time::sleep(Duration::from_secs(5 * 60 + 4)).await;
    settle().await;
    assert_eq!(overdue(), 0.0, "4 s late: within the grace");
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(overdue(), 1.0, "6 s late and not fired: overdue");
    assert_eq!(h.channel.count(), 1, "and indeed nobody was paged");

    // The store is back: the next retry fires the step.
    h.store.set_failing_commits(false);
    tokio::time::sleep(Duration::from_secs(1)).await;
    settle().await;
    assert_eq!(overdue(), 0.0);
    assert_eq!(h.channel.count(), 2);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_acknowledged_incident_is_never_overdue() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    h.system.acknowledge(id, by("alice")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3600)).await;
    assert_eq!(
        value(&h.system.gather_metrics(), "lim_escalations_overdue", &[]),
        0.0
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn deliveries_commits_and_restarts_are_counted() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    settle().await;
    // A crashed incident actor is restarted by the router.
    h.clock.panic_next(1);
    let _ = h.system.acknowledge(id, by("alice")).await;
    settle().await;
    h.system.acknowledge(id, by("alice")).await.unwrap();
    settle().await;

    let families = h.system.gather_metrics();
    assert_eq!(
        value(
            &families,
            "lim_actor_restarts_total",
            &[("kind", "incident")]
        ),
        1.0
    );
    // The page at minute 0 and the "acknowledged" update.
    assert_eq!(
        value(
            &families,
            "lim_notifications_total",
            &[("channel", "console"), ("result", "delivered")]
        ),
        2.0
    );
    assert_eq!(
        value(
            &families,
            "lim_notification_delivery_seconds",
            &[("channel", "console")]
        ),
        2.0
    );
    assert!(value(&families, "lim_persistence_commit_seconds", &[]) >= 2.0);
    assert!(value(&families, "lim_persistence_batch_size", &[]) >= 2.0);
    assert_eq!(value(&families, "lim_persistence_pending_writes", &[]), 0.0);
    assert_eq!(
        value(
            &families,
            "lim_notifier_deliveries",
            &[("channel", "console"), ("state", "in_flight")]
        ),
        0.0
    );
    h.system.shutdown().await;
}
