//! Escalation on tokio's paused clock: steps fire at the right virtual
//! time, an acknowledge stops them, repeats stop after the count, an ack
//! timeout re-triggers.

mod common;

use std::time::Duration;

use common::*;
use incident_actors::domain::{
    AlertStatus, Attribution, EscalationPolicy, EscalationStep, IncidentStatus, IngestAction,
    Interface, Target,
};
use incident_actors::SystemConfig;

#[tokio::test(start_paused = true)]
async fn default_policy_notifies_at_0_5_10_15_minutes_then_stops() {
    let h = start(SystemConfig::default()).await;
    let out = h
        .system
        .ingest(alert("HighLatency", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(out.action, IngestAction::Created);
    settle().await;
    assert_eq!(h.channel.minutes_since_t0(), vec![0], "first step at once");
    advance_minutes(4).await;
    assert_eq!(h.channel.count(), 1, "nothing before 5 minutes");
    advance_minutes(1).await;
    settle().await;
    assert_eq!(h.channel.minutes_since_t0(), vec![0, 5]);
    advance_minutes(60).await;
    assert_eq!(
        h.channel.minutes_since_t0(),
        vec![0, 5, 10, 15],
        "3 repeats, then stop"
    );
    let id = out.incident_id.unwrap();
    let timeline = h.store.timeline(id).await.unwrap();
    let names: Vec<_> = timeline.iter().map(|e| e.kind.name()).collect();
    assert_eq!(
        names,
        [
            "triggered",
            "notified",
            "notified",
            "notified",
            "notified",
            "escalation_exhausted"
        ]
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn acknowledge_stops_the_escalation() {
    let h = start(SystemConfig::default()).await;
    let out = h
        .system
        .ingest(alert("A", AlertStatus::Firing))
        .await
        .unwrap();
    settle().await;
    advance_minutes(6).await;
    assert_eq!(h.channel.count(), 2);
    let acked = h
        .system
        .acknowledge(
            out.incident_id.unwrap(),
            Attribution::new("alice", Interface::Api),
        )
        .await
        .unwrap();
    assert_eq!(acked.status, IncidentStatus::Acknowledged);
    assert_eq!(acked.deadlines().escalation, None);
    advance_minutes(120).await;
    assert_eq!(h.channel.count(), 2, "no step pages after the acknowledge");
    h.system.shutdown().await;
}

fn two_step_policy(ack_timeout: Option<Duration>) -> EscalationPolicy {
    EscalationPolicy {
        name: "default".into(),
        steps: vec![
            EscalationStep {
                delay: Duration::from_secs(60),
                targets: vec![Target::Channel("console".into())],
            },
            EscalationStep {
                delay: Duration::from_secs(120),
                targets: vec![Target::Channel("console".into())],
            },
        ],
        repeat: 1,
        ack_timeout,
    }
}

#[tokio::test(start_paused = true)]
async fn steps_follow_their_delays_and_repeat_count() {
    let config = SystemConfig {
        policy: two_step_policy(None),
        ..SystemConfig::default()
    };
    let h = start(config).await;
    h.system
        .ingest(alert("A", AlertStatus::Firing))
        .await
        .unwrap();
    advance_minutes(30).await;
    // step0 @0, step1 @1, (repeat) step0 @3, step1 @4, exhausted.
    assert_eq!(h.channel.minutes_since_t0(), vec![0, 1, 3, 4]);
    let steps: Vec<_> = h
        .channel
        .delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| step_of(n))
        .collect();
    assert_eq!(steps, vec![(0, 0), (1, 0), (0, 1), (1, 1)]);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn ack_timeout_retriggers_on_the_incidents_own_timer() {
    let config = SystemConfig {
        policy: two_step_policy(Some(Duration::from_secs(10 * 60))),
        ..SystemConfig::default()
    };
    let h = start(config).await;
    let id = open_incident(&h.system, "A").await;
    settle().await;
    h.system
        .acknowledge(id, Attribution::new("bob", Interface::Cli))
        .await
        .unwrap();
    advance_minutes(9).await;
    assert_eq!(h.channel.count(), 1);
    advance_minutes(1).await;
    settle().await;
    assert_eq!(
        h.channel.minutes_since_t0(),
        vec![0, 10],
        "re-triggered, escalation restarted"
    );
    let live = h.system.live_incident(id).await.unwrap();
    assert_eq!(live.status, IncidentStatus::Triggered);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pages_queued_behind_a_slow_channel_are_dropped_after_an_acknowledge() {
    let slow = RecordingChannel {
        latency: Duration::from_secs(60),
        ..RecordingChannel::default()
    };
    // One send at a time, so B's page queues behind A's.
    let config = SystemConfig {
        notifier: incident_actors::notifier::NotifierSettings {
            max_in_flight: 1,
            ..Default::default()
        },
        ..SystemConfig::default()
    };
    let h = start_with_channel(
        config,
        std::sync::Arc::new(incident_actors::memory_store::MemoryStore::new()),
        TestClock::new(),
        slow,
    )
    .await;
    let a = h
        .system
        .ingest(alert("A", AlertStatus::Firing))
        .await
        .unwrap();
    let b = h
        .system
        .ingest(alert("B", AlertStatus::Firing))
        .await
        .unwrap();
    settle().await;
    // A's page is being delivered (a minute); B's waits behind it. Acknowledge B meanwhile.
    h.system
        .acknowledge(
            b.incident_id.unwrap(),
            Attribution::new("alice", Interface::Api),
        )
        .await
        .unwrap();
    advance_minutes(3).await;
    let paged: Vec<_> = h
        .channel
        .delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| n.incident.id)
        .collect();
    assert_eq!(
        paged,
        vec![a.incident_id.unwrap()],
        "B was acknowledged before its page went out"
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn snooze_retriggers_on_the_incidents_own_timer() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    settle().await;
    let snoozed = h
        .system
        .snooze(
            id,
            Attribution::new("alice", Interface::Slack),
            Duration::from_secs(30 * 60),
        )
        .await
        .unwrap();
    assert_eq!(snoozed.status, IncidentStatus::Acknowledged);
    advance_minutes(29).await;
    assert_eq!(h.channel.count(), 1, "quiet while snoozed");
    advance_minutes(1).await;
    settle().await;
    assert_eq!(
        h.channel.minutes_since_t0(),
        vec![0, 30],
        "paged again when the snooze ends"
    );
    advance_minutes(5).await;
    settle().await;
    assert_eq!(
        h.channel.minutes_since_t0(),
        vec![0, 30, 35],
        "escalation restarted"
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn escalate_now_and_notes() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    settle().await;
    advance_minutes(1).await;
    h.system
        .escalate(id, Attribution::new("boss", Interface::Cli))
        .await
        .unwrap();
    settle().await;
    assert_eq!(
        h.channel.minutes_since_t0(),
        vec![0, 1],
        "the next step fired at once"
    );
    h.system
        .add_note(
            id,
            Attribution::new("bob", Interface::Api),
            "looking".into(),
        )
        .await
        .unwrap();
    h.system
        .resolve(id, Attribution::new("bob", Interface::Api))
        .await
        .unwrap();
    settle().await;
    // Notes are still taken once resolved (no actor any more).
    let after = h
        .system
        .add_note(
            id,
            Attribution::new("bob", Interface::Api),
            "root cause: deploy".into(),
        )
        .await
        .unwrap();
    assert_eq!(after.status, IncidentStatus::Resolved);
    let names = timeline_names(&h.store, id).await;
    assert_eq!(
        names,
        [
            "triggered",
            "notified",
            "escalated",
            "notified",
            "note_added",
            "resolved",
            "note_added"
        ]
    );
    // Anything but a note on a resolved incident is a conflict.
    assert!(h
        .system
        .escalate(id, Attribution::new("boss", Interface::Cli))
        .await
        .is_err());
    h.system.shutdown().await;
}
