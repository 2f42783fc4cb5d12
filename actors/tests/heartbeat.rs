//! Heartbeat monitors on tokio's paused clock: a monitor never pinged opens
//! an incident after interval + grace, pings keep it quiet, a ping after a
//! miss resolves it, the deadline survives a restart (and one passed while
//! down fires once at start), a miss is retried while the store is down,
//! a crashed monitor is restarted from its stored state.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use incident_actors::domain::{
    HeartbeatHealth, HeartbeatMonitor, HeartbeatState, Incident, IncidentStatus, Interface,
};
use incident_actors::heartbeat::HEARTBEAT_RETRY;
use incident_actors::memory_store::MemoryStore;
use incident_actors::ports::IncidentQuery;
use incident_actors::time::Timestamp;
use incident_actors::{HeartbeatError, SystemConfig};

const MIN: u64 = 60;

/// Interval 10 minutes, grace 2: due 12 minutes after the last ping.
fn monitor(name: &str) -> HeartbeatMonitor {
    HeartbeatMonitor {
        name: name.into(),
        service: "storage".into(),
        interval: Duration::from_secs(10 * MIN),
        grace: Duration::from_secs(2 * MIN),
    }
}

fn config(monitors: Vec<HeartbeatMonitor>) -> SystemConfig {
    SystemConfig {
        heartbeats: monitors,
        ..SystemConfig::default()
    }
}

fn at_min(m: i64) -> Timestamp {
    Timestamp(T0.0 + m * 60_000)
}

async fn advance(d: Duration) {
    tokio::time::sleep(d).await;
    settle().await;
}

/// 1 ms after `T0 + m` minutes: where [`until_min`] leaves the clock.
fn just_after(m: i64) -> Timestamp {
    at_min(m).plus(Duration::from_millis(1))
}

/// Moves virtual time to `T0 + m` minutes (the test's clock started at
/// T0), then 1 ms more for the actors to handle what was due at `m`.
async fn until_min(clock: &TestClock, m: i64) {
    use incident_actors::time::Clock;
    let now = clock.now();
    let target = at_min(m);
    assert!(target >= now, "time only moves forward");
    advance(target.remaining_from(now)).await;
}

/// Every incident in the store, oldest first.
async fn incidents(store: &MemoryStore) -> Vec<Incident> {
    let mut all = store
        .list_incidents(&IncidentQuery {
            limit: 1000,
            ..IncidentQuery::default()
        })
        .await
        .unwrap();
    all.reverse();
    all
}

async fn stored(store: &MemoryStore, name: &str) -> Option<HeartbeatState> {
    store
        .load_heartbeats()
        .await
        .unwrap()
        .into_iter()
        .find_map(|(n, s)| (n == name).then_some(s))
}

async fn alert_rows(store: &MemoryStore, incident: &Incident) -> usize {
    store.alerts(incident.id).await.unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn never_pinged_opens_an_incident_after_interval_plus_grace() {
    let h = start(config(vec![monitor("nightly-backup")])).await;
    let status = &h.system.heartbeats().await[0];
    assert_eq!(status.status, HeartbeatHealth::Waiting);
    assert_eq!(status.deadline, at_min(12));
    assert_eq!(
        stored(&h.store, "nightly-backup").await,
        Some(HeartbeatState {
            last_ping: None,
            deadline: at_min(12),
            missed: false
        }),
        "a new monitor's first deadline is saved at once"
    );

    advance(Duration::from_secs(12 * MIN - 1)).await;
    assert!(
        incidents(&h.store).await.is_empty(),
        "nothing before 12 minutes"
    );
    advance(Duration::from_secs(1)).await;

    let all = incidents(&h.store).await;
    assert_eq!(all.len(), 1);
    let incident = &all[0];
    assert_eq!(incident.status, IncidentStatus::Triggered);
    assert_eq!(incident.title, "Heartbeat nightly-backup missed");
    assert_eq!(incident.service, "storage");
    assert_eq!(incident.severity.as_deref(), Some("critical"));
    assert_eq!(&incident.labels["alertname"], "HeartbeatMissed");
    assert_eq!(&incident.labels["heartbeat"], "nightly-backup");
    let alert = &h.store.alerts(incident.id).await.unwrap()[0];
    assert_eq!(alert.alert.source, "heartbeat");
    assert_eq!(
        alert.alert.dedup_key.as_deref(),
        Some("heartbeat:nightly-backup")
    );
    assert!(alert.alert.annotations["description"].contains("never seen"));
    assert!(h.channel.count() >= 1, "the miss pages like any incident");

    let status = &h.system.heartbeats().await[0];
    assert_eq!(status.status, HeartbeatHealth::Missed);
    assert!(stored(&h.store, "nightly-backup").await.unwrap().missed);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pings_before_the_deadline_keep_it_quiet() {
    let h = start(config(vec![monitor("etl")])).await;
    for minute in [10, 21, 32, 43] {
        until_min(&h.clock, minute).await;
        let status = h.system.ping_heartbeat("etl").await.unwrap();
        assert_eq!(status.status, HeartbeatHealth::Up);
        assert_eq!(status.last_ping, Some(just_after(minute)));
        assert_eq!(status.deadline, just_after(minute + 12));
        assert_eq!(status.interval_seconds, 600);
        assert_eq!(status.grace_seconds, 120);
    }
    until_min(&h.clock, 54).await;
    assert!(incidents(&h.store).await.is_empty());
    assert_eq!(
        stored(&h.store, "etl").await.unwrap().deadline,
        just_after(55),
        "the ping's deadline is stored"
    );
    until_min(&h.clock, 56).await;
    assert_eq!(incidents(&h.store).await.len(), 1, "then missed");
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_ping_after_a_miss_resolves_its_incident() {
    let h = start(config(vec![monitor("etl")])).await;
    until_min(&h.clock, 13).await;
    let id = incidents(&h.store).await[0].id;

    let status = h.system.ping_heartbeat("etl").await.unwrap();
    assert_eq!(status.status, HeartbeatHealth::Up);
    let state = stored(&h.store, "etl").await.unwrap();
    assert!(!state.missed, "committed before the answer");
    assert_eq!(state.last_ping, Some(just_after(13)));
    settle().await;

    let incident = h.store.get_incident(id).await.unwrap().unwrap();
    assert_eq!(incident.status, IncidentStatus::Resolved);
    let (_, by) = incident.resolved.as_ref().unwrap();
    assert_eq!(by.via, Interface::Alert);
    assert_eq!(
        timeline_names(&h.store, id).await,
        ["triggered", "notified", "alert_resolved", "resolved"]
    );
    assert_eq!(h.system.open_count().await.unwrap(), 0);

    // Up again; the next miss is a new outage, a new incident.
    until_min(&h.clock, 26).await;
    let all = incidents(&h.store).await;
    assert_eq!(all.len(), 2);
    assert_eq!(all[1].status, IncidentStatus::Triggered);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_missed_monitor_opens_one_incident_however_long_it_stays_missed() {
    let h = start(config(vec![monitor("etl")])).await;
    until_min(&h.clock, 13).await;
    until_min(&h.clock, 13 + 10 * 12).await;
    let all = incidents(&h.store).await;
    assert_eq!(all.len(), 1);
    assert_eq!(alert_rows(&h.store, &all[0]).await, 1, "the miss sent once");
    assert_eq!(
        h.system.heartbeats().await[0].status,
        HeartbeatHealth::Missed
    );
    h.system.shutdown().await;

    // A restart while missed sends nothing again.
    let h = start_on(config(vec![monitor("etl")]), h.store, h.clock).await;
    until_min(&h.clock, 200).await;
    let all = incidents(&h.store).await;
    assert_eq!(all.len(), 1);
    assert_eq!(alert_rows(&h.store, &all[0]).await, 1);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_keeps_the_stored_deadline() {
    let h = start(config(vec![monitor("etl")])).await;
    until_min(&h.clock, 5).await;
    h.system.ping_heartbeat("etl").await.unwrap(); // due at 17
    h.system.shutdown().await;

    until_min(&h.clock, 8).await;
    let h = start_on(config(vec![monitor("etl")]), h.store, h.clock).await;
    let status = &h.system.heartbeats().await[0];
    assert_eq!(status.deadline, just_after(17), "not a fresh period from 8");
    assert_eq!(status.status, HeartbeatHealth::Up);
    advance(just_after(17).remaining_from(just_after(8)) - Duration::from_secs(1)).await;
    assert!(incidents(&h.store).await.is_empty());
    advance(Duration::from_secs(1)).await;
    assert_eq!(
        incidents(&h.store).await.len(),
        1,
        "fired at the stored deadline"
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_keeps_the_first_deadline_of_a_monitor_never_pinged() {
    let h = start(config(vec![monitor("etl")])).await; // due at 12
    until_min(&h.clock, 5).await;
    h.system.shutdown().await;
    until_min(&h.clock, 6).await;
    let h = start_on(config(vec![monitor("etl")]), h.store, h.clock).await;
    assert_eq!(h.system.heartbeats().await[0].deadline, at_min(12));
    assert_eq!(
        h.system.heartbeats().await[0].status,
        HeartbeatHealth::Waiting
    );
    until_min(&h.clock, 12).await;
    assert_eq!(incidents(&h.store).await.len(), 1);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_deadline_passed_while_down_fires_once_at_start() {
    let h = start(config(vec![monitor("etl")])).await;
    until_min(&h.clock, 1).await;
    h.system.ping_heartbeat("etl").await.unwrap(); // due at 13
    until_min(&h.clock, 2).await;
    h.system.shutdown().await;

    // Down for an hour: five intervals missed, one miss.
    until_min(&h.clock, 62).await;
    let h = start_on(config(vec![monitor("etl")]), h.store, h.clock).await;
    settle().await;
    let all = incidents(&h.store).await;
    assert_eq!(all.len(), 1, "fired at start");
    assert_eq!(all[0].created_at, just_after(62));
    let alert = &h.store.alerts(all[0].id).await.unwrap()[0];
    assert_eq!(
        alert.alert.starts_at,
        just_after(13),
        "missed since the deadline"
    );
    assert!(
        alert.alert.annotations["description"].contains(&format!("last seen at {}", just_after(1)))
    );
    assert_eq!(
        h.system.heartbeats().await[0].status,
        HeartbeatHealth::Missed
    );
    until_min(&h.clock, 180).await;
    let all = incidents(&h.store).await;
    assert_eq!(all.len(), 1);
    assert_eq!(alert_rows(&h.store, &all[0]).await, 1);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn pinging_an_unknown_monitor_is_an_error() {
    let h = start(config(vec![monitor("etl")])).await;
    match h.system.ping_heartbeat("nope").await {
        Err(HeartbeatError::Unknown(name)) => assert_eq!(name, "nope"),
        other => panic!("expected Unknown, got {other:?}"),
    }
    // Without any monitor configured too.
    let empty = start(SystemConfig::default()).await;
    assert!(matches!(
        empty.system.ping_heartbeat("etl").await,
        Err(HeartbeatError::Unknown(_))
    ));
    assert!(empty.system.heartbeats().await.is_empty());
    assert!(
        empty.store.load_heartbeats().await.unwrap().is_empty(),
        "nothing configured, nothing stored"
    );
    empty.system.shutdown().await;
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn statuses_come_in_config_order() {
    let hourly = HeartbeatMonitor {
        interval: Duration::from_secs(60 * MIN),
        ..monitor("mid")
    };
    let monitors = vec![monitor("zeta"), monitor("alpha"), hourly];
    let h = start(config(monitors)).await;
    until_min(&h.clock, 11).await;
    h.system.ping_heartbeat("alpha").await.unwrap();
    until_min(&h.clock, 12).await;
    let got: Vec<_> = h
        .system
        .heartbeats()
        .await
        .into_iter()
        .map(|s| (s.name, s.status.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("zeta".to_string(), "missed"),
            ("alpha".to_string(), "up"),
            ("mid".to_string(), "waiting"),
        ]
    );
    let json = serde_json::to_value(&h.system.heartbeats().await[1]).unwrap();
    assert_eq!(json["status"], "up");
    assert_eq!(json["last_ping"], just_after(11).to_rfc3339());
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn invalid_or_duplicate_monitors_refuse_to_start() {
    for monitors in [
        vec![monitor("etl"), monitor("etl")],
        vec![monitor("has space")],
        vec![HeartbeatMonitor {
            interval: Duration::ZERO,
            ..monitor("etl")
        }],
    ] {
        let result = incident_actors::spawn_system(
            config(monitors),
            incident_actors::SystemDeps {
                store: Arc::new(MemoryStore::new()),
                clock: TestClock::new(),
                channels: Vec::new(),
            },
        )
        .await;
        assert!(result.is_err());
    }
}

#[tokio::test(start_paused = true)]
async fn a_miss_is_retried_while_the_store_is_down() {
    let h = start(config(vec![monitor("etl")])).await;
    until_min(&h.clock, 11).await;
    h.store.set_failing(true);
    assert!(
        matches!(
            h.system.ping_heartbeat("etl").await,
            Err(HeartbeatError::Store(_))
        ),
        "a ping not committed is an error"
    );
    until_min(&h.clock, 15).await;
    assert_eq!(
        h.system.heartbeats().await[0].status,
        HeartbeatHealth::Waiting,
        "the failed ping moved nothing; the miss could not be sent"
    );
    h.store.set_failing(false);
    assert!(incidents(&h.store).await.is_empty());
    advance(HEARTBEAT_RETRY).await;
    let all = incidents(&h.store).await;
    assert_eq!(all.len(), 1, "sent by the retry");
    assert!(stored(&h.store, "etl").await.unwrap().missed);
    until_min(&h.clock, 60).await;
    assert_eq!(incidents(&h.store).await.len(), 1);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_recovery_is_retried_until_it_is_committed() {
    let memory = Arc::new(MemoryStore::new());
    let store = memory.clone();
    let clock = TestClock::new();
    let system = incident_actors::spawn_system(
        config(vec![monitor("etl")]),
        incident_actors::SystemDeps {
            store: store.clone(),
            clock: clock.clone(),
            channels: Vec::new(),
        },
    )
    .await
    .unwrap();
    until_min(&clock, 13).await;
    let id = incidents(&memory).await[0].id;

    store.set_failing_commits(true);
    let status = system.ping_heartbeat("etl").await.unwrap();
    assert_eq!(status.status, HeartbeatHealth::Up, "the ping is recorded");
    settle().await;
    assert_eq!(
        memory.get_incident(id).await.unwrap().unwrap().status,
        IncidentStatus::Triggered,
        "the recovery could not be committed"
    );
    store.set_failing_commits(false);
    advance(HEARTBEAT_RETRY).await;
    assert_eq!(
        memory.get_incident(id).await.unwrap().unwrap().status,
        IncidentStatus::Resolved,
        "resolved by the retry"
    );
    assert_eq!(incidents(&memory).await.len(), 1);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_service_changed_while_missed_still_resolves_the_incident() {
    let h = start(config(vec![monitor("etl")])).await;
    until_min(&h.clock, 13).await;
    let id = incidents(&h.store).await[0].id;
    h.system.shutdown().await;

    let moved = HeartbeatMonitor {
        service: "backups".into(),
        ..monitor("etl")
    };
    let h = start_on(config(vec![moved]), h.store, h.clock).await;
    settle().await;
    assert_eq!(incidents(&h.store).await.len(), 1, "still the same miss");
    h.system.ping_heartbeat("etl").await.unwrap();
    settle().await;
    assert_eq!(
        h.store.get_incident(id).await.unwrap().unwrap().status,
        IncidentStatus::Resolved,
        "other labels, the same dedup key: resolved by its key"
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_longer_interval_configured_while_missed_resolves_at_start() {
    let h = start(config(vec![monitor("etl")])).await;
    until_min(&h.clock, 1).await;
    h.system.ping_heartbeat("etl").await.unwrap(); // due at 13
    until_min(&h.clock, 14).await;
    let id = incidents(&h.store).await[0].id;
    h.system.shutdown().await;

    let hourly = HeartbeatMonitor {
        interval: Duration::from_secs(60 * MIN),
        ..monitor("etl")
    };
    let h = start_on(config(vec![hourly]), h.store, h.clock).await;
    settle().await;
    let status = &h.system.heartbeats().await[0];
    assert_eq!(status.status, HeartbeatHealth::Up);
    assert_eq!(status.deadline, just_after(1 + 62));
    assert_eq!(
        h.store.get_incident(id).await.unwrap().unwrap().status,
        IncidentStatus::Resolved,
        "not missed under the new interval"
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn stored_rows_of_monitors_no_longer_configured_are_ignored() {
    let store = Arc::new(MemoryStore::new());
    let gone = HeartbeatState {
        last_ping: None,
        deadline: T0,
        missed: false,
    };
    store.save_heartbeat("retired", &gone).await.unwrap();
    let h = start_on(config(vec![monitor("etl")]), store, TestClock::new()).await;
    until_min(&h.clock, 5).await;
    assert!(incidents(&h.store).await.is_empty());
    assert_eq!(h.system.heartbeats().await.len(), 1);
    assert_eq!(stored(&h.store, "retired").await, Some(gone), "kept");
    h.system.shutdown().await;
}

fn registered_as(name: &str) -> Option<ractor::ActorId> {
    let suffix = format!("/heartbeat:{name}");
    ractor::registry::registered()
        .into_iter()
        .find(|n| n.ends_with(&suffix))
        .and_then(ractor::registry::where_is)
        .map(|cell| cell.get_id())
}

#[tokio::test(start_paused = true)]
async fn a_crashed_monitor_restarts_from_its_stored_state() {
    let h = start(config(vec![monitor("crashy-monitor")])).await;
    let before = registered_as("crashy-monitor").expect("a named actor");
    until_min(&h.clock, 1).await;
    h.system.ping_heartbeat("crashy-monitor").await.unwrap(); // due at 13
    until_min(&h.clock, 2).await;

    h.clock.panic_next(1);
    assert!(matches!(
        h.system.ping_heartbeat("crashy-monitor").await,
        Err(HeartbeatError::Unavailable(_))
    ));
    settle().await;
    let after = registered_as("crashy-monitor").expect("restarted");
    assert_ne!(before, after);
    let status = &h.system.heartbeats().await[0];
    assert_eq!(status.last_ping, Some(just_after(1)), "from the store");
    assert_eq!(status.deadline, just_after(13));
    until_min(&h.clock, 12).await;
    assert!(incidents(&h.store).await.is_empty());
    until_min(&h.clock, 14).await;
    assert_eq!(incidents(&h.store).await.len(), 1, "its timer re-armed");
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn beyond_its_restart_intensity_the_heartbeat_supervisor_is_restarted_by_the_root() {
    let config = SystemConfig {
        restart: incident_actors::domain::RestartPolicy {
            max_restarts: 1,
            within: Duration::from_secs(60),
        },
        ..config(vec![monitor("twice-crashing")])
    };
    let h = start(config).await;
    until_min(&h.clock, 1).await;
    h.system.ping_heartbeat("twice-crashing").await.unwrap(); // due at 13
    let crash = || async {
        h.clock.panic_next(1);
        assert!(h.system.ping_heartbeat("twice-crashing").await.is_err());
        settle().await;
    };
    let first = registered_as("twice-crashing").unwrap();
    crash().await; // restarted by the heartbeat supervisor
    let second = registered_as("twice-crashing").expect("restarted");
    assert_ne!(first, second);
    crash().await; // over the limit: the supervisor fails, the root restarts it
    settle().await;
    assert!(h.system.is_running());
    let third = registered_as("twice-crashing").expect("restarted with its supervisor");
    assert_ne!(second, third);
    assert_eq!(h.system.heartbeats().await[0].deadline, just_after(13));
    until_min(&h.clock, 14).await;
    assert_eq!(incidents(&h.store).await.len(), 1);
    h.system.shutdown().await;
}
