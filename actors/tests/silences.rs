//! Silences through the router: a silenced alert opens no incident and
//! pages no one; expiring the silence does not page retroactively; only an
//! alert that fires afterwards opens an incident.

mod common;

use common::*;
use incident_actors::domain::{AlertStatus, IngestAction, Matcher, Silence, SilenceId};
use incident_actors::time::Timestamp;
use incident_actors::SystemConfig;

fn silence(matchers: &[&str], minutes: i64) -> Silence {
    Silence {
        id: SilenceId(0),
        matchers: matchers
            .iter()
            .map(|m| Matcher::parse(m).unwrap())
            .collect(),
        starts_at: T0,
        ends_at: Timestamp(T0.0 + minutes * 60_000),
        created_by: "alice".into(),
        comment: "deploying the gateway".into(),
        created_at: T0,
    }
}

#[tokio::test(start_paused = true)]
async fn a_silenced_alert_pages_no_one_and_expiry_is_not_retroactive() {
    let h = start(SystemConfig::default()).await;
    let s = h
        .system
        .create_silence(silence(&["alertname=Noisy", "model=~gpt.*"], 120))
        .await
        .unwrap();
    assert_eq!(s.id, SilenceId(1));

    let out = h
        .system
        .ingest(alert("Noisy", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(
        (out.action, out.incident_id),
        (IngestAction::Silenced, None)
    );
    let again = h
        .system
        .ingest(alert("Noisy", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(again.action, IngestAction::Silenced);
    let other = h
        .system
        .ingest(alert("Other", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(
        other.action,
        IngestAction::Created,
        "not matched by the silence"
    );
    settle().await;
    assert_eq!(h.channel.count(), 1, "only the unsilenced alert paged");

    advance_minutes(10).await;
    h.system.expire_silence(s.id).await.unwrap();
    advance_minutes(1).await;
    assert_eq!(
        h.channel.count(),
        3,
        "only Other's escalation: nothing retroactive"
    );
    let listed = h.system.list_silences().await.unwrap();
    let ended = listed[0].ends_at.0 - T0.0;
    assert!(
        (600_000..600_100).contains(&ended),
        "ended when expired: {ended} ms"
    );

    let after = h
        .system
        .ingest(alert("Noisy", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(
        after.action,
        IngestAction::Created,
        "fires after the silence ended"
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn silences_survive_a_restart_and_bad_ones_are_refused() {
    let h = start(SystemConfig::default()).await;
    h.system
        .create_silence(silence(&["alertname=Noisy"], 60))
        .await
        .unwrap();
    assert!(
        h.system
            .create_silence(silence(&["x=~.*"], 60))
            .await
            .is_err(),
        "would silence everything"
    );
    assert!(
        h.system
            .create_silence(silence(&["alertname=X"], 0))
            .await
            .is_err(),
        "ends before it starts"
    );
    h.system.shutdown().await;
    let h2 = start_on(SystemConfig::default(), h.store.clone(), h.clock.clone()).await;
    let out = h2
        .system
        .ingest(alert("Noisy", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(out.action, IngestAction::Silenced);
    h2.system.shutdown().await;
}
