//! Alert expiry (Alertmanager's semantics): a firing alert whose `ends_at`
//! passes without a re-send resolves; a re-send that moves `ends_at` is a
//! repeat (no row) whose refreshed deadline still survives a restart.

mod common;

use std::time::Duration;

use common::*;
use incident_actors::domain::{AlertStatus, IncidentStatus, IngestAction};
use incident_actors::time::Timestamp;
use incident_actors::SystemConfig;

fn expiring(minutes: i64) -> incident_actors::domain::Alert {
    let mut a = alert("Expiring", AlertStatus::Firing);
    a.source = "prometheus".into();
    a.ends_at = Some(Timestamp(T0.0 + minutes * 60_000));
    a
}

#[tokio::test(start_paused = true)]
async fn an_alert_no_longer_resent_resolves_when_its_ends_at_passes() {
    let h = start(SystemConfig::default()).await;
    let id = h
        .system
        .ingest(expiring(4))
        .await
        .unwrap()
        .incident_id
        .unwrap();
    advance_minutes(3).await;
    // Re-sent at minute 3 with a later ends_at: a repeat, no new row.
    let again = h.system.ingest(expiring(7)).await.unwrap();
    assert_eq!(again.action, IngestAction::Unchanged);
    advance_minutes(3).await;
    settle().await;
    let live = h
        .system
        .live_incident(id)
        .await
        .expect("still open at minute 6");
    assert_eq!(live.status, IncidentStatus::Triggered);
    advance_minutes(2).await;
    settle().await;
    let stored = h.store.get_incident(id).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        IncidentStatus::Resolved,
        "resolved at minute 7"
    );
    let names = timeline_names(&h.store, id).await;
    assert_eq!(names.last().copied(), Some("resolved"));
    assert!(names.contains(&"alert_expired"));
    assert_eq!(
        h.store.alerts(id).await.unwrap().len(),
        1,
        "the re-send wrote no row"
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_refreshed_ends_at_survives_a_restart() {
    let h = start(SystemConfig::default()).await;
    let id = h
        .system
        .ingest(expiring(4))
        .await
        .unwrap()
        .incident_id
        .unwrap();
    advance_minutes(3).await;
    h.system.ingest(expiring(10)).await.unwrap();
    // The repeat's refreshed snapshot is written with a later batch.
    tokio::time::sleep(Duration::from_secs(2)).await;
    h.system.shutdown().await;

    advance_minutes(2).await; // minute 5: past the first ends_at, before the refreshed one
    let h2 = start_on(SystemConfig::default(), h.store.clone(), h.clock.clone()).await;
    settle().await;
    let live = h2
        .system
        .live_incident(id)
        .await
        .expect("not expired by the restart");
    assert_eq!(live.status, IncidentStatus::Triggered);
    advance_minutes(5).await;
    settle().await;
    let stored = h2.store.get_incident(id).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        IncidentStatus::Resolved,
        "expired at the refreshed minute 10"
    );
    h2.system.shutdown().await;
}
