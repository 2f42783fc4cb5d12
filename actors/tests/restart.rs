//! Rehydration and supervision: a new system on the same store brings back
//! every open incident with its timers; a crashed incident actor comes back
//! from its snapshot; beyond the restart intensity it is quarantined (the
//! router and every other incident keep running).

mod common;

use std::time::Duration;

use common::*;
use incident_actors::domain::{
    AlertStatus, Attribution, IncidentStatus, IngestAction, Interface, RestartPolicy,
};
use incident_actors::messages::CommandError;
use incident_actors::SystemConfig;

#[tokio::test(start_paused = true)]
async fn restart_brings_back_incidents_and_their_timers() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    let acked = open_incident(&h.system, "B").await;
    settle().await;
    h.system
        .acknowledge(acked, Attribution::new("alice", Interface::Api))
        .await
        .unwrap();
    assert_eq!(h.channel.minutes_since_t0(), vec![0, 0]);
    h.system.shutdown().await;

    // "Down" for 2 minutes, then a new system on the same store and clock.
    advance_minutes(2).await;
    let h2 = start_on(SystemConfig::default(), h.store.clone(), h.clock.clone()).await;
    assert_eq!(h2.system.open_count().await.unwrap(), 2);
    advance_minutes(2).await;
    settle().await;
    assert!(
        h2.channel.minutes_since_t0().is_empty(),
        "nothing due before minute 5"
    );
    advance_minutes(1).await;
    settle().await;
    assert_eq!(
        h2.channel.minutes_since_t0(),
        vec![5],
        "the re-armed timer of A fired on time; B stays acknowledged"
    );
    assert_eq!(h2.channel.delivered.lock().unwrap()[0].1.incident.id, id);

    // The same alert joins the same incident after the restart.
    let again = h2
        .system
        .ingest(alert("A", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(
        (again.incident_id, again.action),
        (Some(id), IngestAction::Unchanged)
    );
    // New incidents get new ids.
    let c = h2
        .system
        .ingest(alert("C", AlertStatus::Firing))
        .await
        .unwrap();
    assert!(c.incident_id.unwrap().0 > acked.0);
    h2.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_deadline_that_passed_while_down_fires_at_once() {
    let h = start(SystemConfig::default()).await;
    h.system
        .ingest(alert("A", AlertStatus::Firing))
        .await
        .unwrap();
    settle().await;
    h.system.shutdown().await;
    advance_minutes(12).await;
    let h2 = start_on(SystemConfig::default(), h.store.clone(), h.clock.clone()).await;
    settle().await;
    assert_eq!(
        h2.channel.minutes_since_t0(),
        vec![12],
        "the missed step fires once, at once"
    );
    advance_minutes(5).await;
    settle().await;
    assert_eq!(h2.channel.minutes_since_t0(), vec![12, 17]);
    h2.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_panicking_incident_comes_back_from_its_snapshot_with_its_timers() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    let other = open_incident(&h.system, "B").await;
    settle().await;
    advance_minutes(1).await;

    h.clock.panic_next(1);
    let crashed = h
        .system
        .acknowledge(id, Attribution::new("alice", Interface::Api))
        .await;
    assert!(
        crashed.is_err(),
        "the crashing call gets an error, not a fake success"
    );
    settle().await;

    let back = h.system.live_incident(id).await.expect("restarted");
    assert_eq!(back.status, IncidentStatus::Triggered);
    assert_eq!(
        h.system.open_count().await.unwrap(),
        2,
        "the other incident was untouched"
    );
    let before = h.channel.count();
    advance_minutes(4).await;
    settle().await;
    assert_eq!(
        h.channel.count(),
        before + 2,
        "both step-2 timers fire at minute 5, the restarted one included"
    );
    // And it works normally afterwards.
    let acked = h
        .system
        .acknowledge(id, Attribution::new("alice", Interface::Api))
        .await
        .unwrap();
    assert_eq!(acked.status, IncidentStatus::Acknowledged);
    assert!(h.system.live_incident(other).await.is_some());
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn beyond_the_restart_intensity_the_incident_is_quarantined_not_the_router() {
    let config = SystemConfig {
        restart: RestartPolicy {
            max_restarts: 1,
            within: Duration::from_secs(60),
        },
        ..SystemConfig::default()
    };
    let h = start(config).await;
    let id = open_incident(&h.system, "A").await;
    let other = open_incident(&h.system, "B").await;
    settle().await;
    let router_before = h.system.router_id().unwrap();
    let crash = || async {
        h.clock.panic_next(1);
        let _ = h
            .system
            .acknowledge(id, Attribution::new("x", Interface::Api))
            .await;
        settle().await;
    };

    crash().await; // restart 1 of the incident: allowed
    assert!(h.system.live_incident(id).await.is_some(), "restarted");
    crash().await; // failure 2 within the window: quarantined
    assert_eq!(
        h.system.router_id(),
        Some(router_before),
        "the router keeps running"
    );
    assert!(h.system.is_running());
    assert!(
        h.system.live_incident(id).await.is_none(),
        "no actor runs it"
    );
    assert!(
        h.system.live_incident(other).await.is_some(),
        "the others do"
    );
    let refused = h
        .system
        .acknowledge(id, Attribution::new("x", Interface::Api))
        .await;
    assert!(
        matches!(&refused, Err(CommandError::Unavailable(why)) if why.contains("quarantined")),
        "{refused:?}"
    );
    // An operator's restart brings it back, with its allowance renewed.
    h.system.restart_incident_actor(id).await.unwrap();
    crash().await;
    assert!(
        h.system.live_incident(id).await.is_some(),
        "restarted again"
    );
    h.system.shutdown().await;
}
