//! The wall clock jumping forward and back while timers are armed (NTP
//! stepping the clock, a VM resumed, an operator's `date -s`): every timer
//! keeps its meaning. An escalation step due in 5 minutes fires 5 minutes
//! later on tokio's clock, not at once after a jump forward nor an hour
//! late after a jump back; so do ack expiry (snooze), an alert's `endsAt`
//! and a heartbeat's deadline. Tokio's paused clock drives the timers; the
//! test clock's wall time alone jumps.

mod common;

use std::time::Duration;

use common::*;
use incident_actors::domain::{
    AlertStatus, Attribution, EscalationPolicy, EscalationStep, HeartbeatMonitor, IncidentStatus,
    Interface, Target,
};
use incident_actors::SystemConfig;

const HOUR_MS: i64 = 3_600_000;

/// Deliveries so far: (step, repeat) of each page, in order.
fn pages(h: &Harness) -> Vec<(usize, u32)> {
    h.channel
        .delivered
        .lock()
        .unwrap()
        .iter()
        .map(|(_, n)| step_of(n))
        .collect()
}

/// The default policy: page at once, then every 5 minutes, 3 repeats.
async fn escalation_with_a_jump(jump_ms: i64) {
    let h = start(SystemConfig::default()).await;
    open_incident(&h.system, "Jumpy").await;
    settle().await;
    assert_eq!(h.channel.count(), 1, "first page at once");
    advance_minutes(1).await;
    h.clock.jump(jump_ms);
    // Nudge the incident with a repeat after the jump: a message handled on
    // the jumped clock must not re-arm the pending step either.
    h.system
        .ingest(alert("Jumpy", AlertStatus::Firing))
        .await
        .unwrap();
    advance_minutes(3).await;
    settle().await;
    assert_eq!(h.channel.count(), 1, "nothing before minute 5");
    advance_minutes(1).await;
    settle().await;
    assert_eq!(h.channel.count(), 2, "the next page at minute 5");
    advance_minutes(5).await;
    settle().await;
    assert_eq!(
        h.channel.count(),
        3,
        "and the one after at minute 10: {:?}",
        pages(&h)
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn escalation_keeps_its_pace_when_the_wall_clock_jumps_forward() {
    escalation_with_a_jump(HOUR_MS).await;
}

#[tokio::test(start_paused = true)]
async fn escalation_keeps_its_pace_when_the_wall_clock_jumps_back() {
    escalation_with_a_jump(-HOUR_MS).await;
}

fn policy_with_ack_timeout() -> EscalationPolicy {
    EscalationPolicy {
        name: "default".into(),
        steps: vec![EscalationStep {
            delay: Duration::from_secs(60),
            targets: vec![Target::Channel("console".into())],
        }],
        repeat: 0,
        ack_timeout: Some(Duration::from_secs(30 * 60)),
    }
}

async fn snooze_with_a_jump(jump_ms: i64) {
    let config = SystemConfig {
        policy: policy_with_ack_timeout(),
        ..SystemConfig::default()
    };
    let h = start(config).await;
    let id = open_incident(&h.system, "Snoozed").await;
    settle().await;
    h.system
        .acknowledge(id, Attribution::new("bob", Interface::Cli))
        .await
        .unwrap();
    advance_minutes(10).await;
    h.clock.jump(jump_ms);
    advance_minutes(19).await;
    settle().await;
    let live = h.system.live_incident(id).await.unwrap();
    assert_eq!(live.status, IncidentStatus::Acknowledged, "still snoozed");
    advance_minutes(1).await;
    settle().await;
    let live = h.system.live_incident(id).await.unwrap();
    assert_eq!(
        live.status,
        IncidentStatus::Triggered,
        "the acknowledge expired 30 minutes after it was given"
    );
    assert_eq!(h.channel.count(), 2, "and the escalation paged again");
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_acknowledge_expires_on_time_when_the_wall_clock_jumps_forward() {
    snooze_with_a_jump(HOUR_MS).await;
}

#[tokio::test(start_paused = true)]
async fn an_acknowledge_expires_on_time_when_the_wall_clock_jumps_back() {
    snooze_with_a_jump(-HOUR_MS).await;
}

#[tokio::test(start_paused = true)]
async fn an_alert_ends_at_its_ends_at_when_the_wall_clock_jumps_back() {
    let h = start(SystemConfig::default()).await;
    let mut a = alert("Ending", AlertStatus::Firing);
    a.ends_at = Some(T0.plus(Duration::from_secs(10 * 60)));
    let id = h.system.ingest(a).await.unwrap().incident_id.unwrap();
    advance_minutes(2).await;
    h.clock.jump(-HOUR_MS);
    advance_minutes(7).await;
    settle().await;
    assert!(h.system.live_incident(id).await.is_some(), "still open");
    advance_minutes(1).await;
    settle().await;
    let stored = h.store.get_incident(id).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        IncidentStatus::Resolved,
        "resolved when its endsAt came, 10 minutes in"
    );
    h.system.shutdown().await;
}

async fn heartbeat_with_a_jump(jump_ms: i64) {
    let config = SystemConfig {
        heartbeats: vec![HeartbeatMonitor {
            name: "nightly".into(),
            service: "batch".into(),
            interval: Duration::from_secs(10 * 60),
            grace: Duration::from_secs(2 * 60),
        }],
        ..SystemConfig::default()
    };
    let h = start(config).await;
    settle().await;
    h.system.ping_heartbeat("nightly").await.unwrap();
    advance_minutes(1).await;
    h.clock.jump(jump_ms);
    // The deadline is 12 minutes after the ping.
    advance_minutes(10).await;
    settle().await;
    assert_eq!(h.channel.count(), 0, "no miss before minute 12");
    advance_minutes(1).await;
    settle().await;
    assert_eq!(h.channel.count(), 1, "the miss pages at minute 12");
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_misses_on_time_when_the_wall_clock_jumps_forward() {
    heartbeat_with_a_jump(HOUR_MS).await;
}

#[tokio::test(start_paused = true)]
async fn a_heartbeat_misses_on_time_when_the_wall_clock_jumps_back() {
    heartbeat_with_a_jump(-HOUR_MS).await;
}
