//! Deduplication through the router: same fingerprint → same open incident;
//! repeats write no rows; a resolved incident frees its fingerprint.

mod common;

use common::*;
use incident_actors::domain::{AlertStatus, Attribution, IncidentStatus, IngestAction, Interface};
use incident_actors::SystemConfig;

#[tokio::test(start_paused = true)]
async fn same_alert_joins_the_same_incident_and_repeats_write_no_rows() {
    let h = start(SystemConfig::default()).await;
    let first = h
        .system
        .ingest(alert("A", AlertStatus::Firing))
        .await
        .unwrap();
    settle().await;
    let commits_after_create = h.store.commits();
    for _ in 0..50 {
        let again = h
            .system
            .ingest(alert("A", AlertStatus::Firing))
            .await
            .unwrap();
        assert_eq!(again.action, IngestAction::Unchanged);
        assert_eq!(again.incident_id, first.incident_id);
    }
    settle().await;
    let id = first.incident_id.unwrap();
    assert_eq!(
        h.store.alerts(id).await.unwrap().len(),
        1,
        "one alert row, not one per repeat"
    );
    assert_eq!(h.system.live_incident(id).await.unwrap().seen_count, 51);
    // The repeat counters reach the store with a later (touch) batch.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert!(h.store.commits() <= commits_after_create + 1);
    assert_eq!(
        h.store.get_incident(id).await.unwrap().unwrap().seen_count,
        51
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn resolve_needs_every_alert_and_frees_the_fingerprint() {
    let h = start(SystemConfig::default()).await;
    let mut a = alert("A", AlertStatus::Firing);
    a.dedup_key = Some("group-1".into());
    let mut b = alert("B", AlertStatus::Firing);
    b.dedup_key = Some("group-1".into());
    let first = h.system.ingest(a.clone()).await.unwrap();
    let joined = h.system.ingest(b.clone()).await.unwrap();
    assert_eq!(joined.action, IngestAction::Joined);
    assert_eq!(joined.incident_id, first.incident_id);

    a.status = AlertStatus::Resolved;
    assert_eq!(
        h.system.ingest(a.clone()).await.unwrap().action,
        IngestAction::Joined
    );
    b.status = AlertStatus::Resolved;
    assert_eq!(
        h.system.ingest(b.clone()).await.unwrap().action,
        IngestAction::Resolved
    );
    settle().await;
    assert_eq!(h.system.open_count().await.unwrap(), 0);

    // A resolve for nothing open opens nothing.
    let stray = h.system.ingest(a.clone()).await.unwrap();
    assert_eq!(
        (stray.action, stray.incident_id),
        (IngestAction::Unchanged, None)
    );

    a.status = AlertStatus::Firing;
    let reopened = h.system.ingest(a).await.unwrap();
    assert_eq!(reopened.action, IngestAction::Created);
    assert_ne!(reopened.incident_id, first.incident_id);
    let old = h
        .store
        .get_incident(first.incident_id.unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(old.status, IncidentStatus::Resolved);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn concurrent_alerts_for_one_fingerprint_make_one_incident() {
    let h = start(SystemConfig::default()).await;
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let s = h.system.clone();
        tasks.push(tokio::spawn(async move {
            s.ingest(alert("Same", AlertStatus::Firing)).await.unwrap()
        }));
    }
    let mut ids = std::collections::BTreeSet::new();
    let mut created = 0;
    for t in tasks {
        let out = t.await.unwrap();
        ids.insert(out.incident_id);
        created += usize::from(out.action == IngestAction::Created);
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(created, 1);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn commands_on_unknown_and_resolved_incidents() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    let by = || Attribution::new("alice", Interface::Api);
    h.system.resolve(id, by()).await.unwrap();
    settle().await;
    let err = h.system.acknowledge(id, by()).await.unwrap_err();
    assert!(err.to_string().contains("already resolved"), "{err}");
    let err = h
        .system
        .acknowledge(incident_actors::domain::IncidentId(999), by())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("not found"), "{err}");
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_commit_answers_an_error_and_changes_nothing() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    settle().await;
    h.store.set_failing(true);
    assert!(h
        .system
        .ingest(alert("New", AlertStatus::Firing))
        .await
        .is_err());
    let err = h
        .system
        .acknowledge(id, Attribution::new("a", Interface::Api))
        .await;
    assert!(err.is_err());
    h.store.set_failing(false);
    let live = h.system.live_incident(id).await.unwrap();
    assert_eq!(
        live.status,
        IncidentStatus::Triggered,
        "memory did not run ahead of the store"
    );
    // The failed creation gave its fingerprint back: the next one creates.
    let out = h
        .system
        .ingest(alert("New", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(out.action, IngestAction::Created);
    h.system.shutdown().await;
}
