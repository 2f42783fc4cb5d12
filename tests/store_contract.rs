//! The `Store` contract: one suite of generic checks, run against every
//! backend — SQLite on a temporary file, SQLite in memory and PostgreSQL on a
//! brand-new database per test; the incident list, heartbeat and delivery
//! log checks also on the core's in-memory store, whose `IncidentQuery::matches`
//! and `Delivery::record` are the reference — plus the backend-specific checks
//! of opening (files, folders and databases created when missing, pragmas,
//! unknown schemes, undecodable snapshots).

mod support;

use incident_actors::domain::delivery::plan_deliveries;
use incident_actors::domain::{
    Alert, AlertStatus, AttemptOutcome, Attribution, Change, Delivery, DeliveryKey, DeliveryStatus,
    EscalationPolicy, HeartbeatState, Incident, IncidentId, IncidentStatus, Interface, Labels,
    NotificationEvent, Recipient, Target, TimelineEvent,
};
use incident_actors::memory_store::MemoryStore;
use incident_actors::ports::{
    AttemptRecord, Cursor, IncidentQuery, IncidentSort, IncidentWrite, SharedStore, StatusFilter,
    StoreError, Touch, WriteBatch,
};
use incident_actors::time::Timestamp;
use lim::store::{open_store, PostgresStore, SqliteStore, StoreOpenError};

const T0: i64 = 1_700_000_000_000;

// ---------------------------------------------------------------- fixtures

/// A store under test, its URL (to open it again) and whatever must live as
/// long as it (the temporary folder of a SQLite file).
struct Fixture {
    store: SharedStore,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

async fn sqlite_file() -> Fixture {
    let (dir, url) = support::temp_sqlite_url();
    let store = open_store(&url).await.expect("open SQLite file store");
    Fixture {
        store,
        url,
        _dir: Some(dir),
    }
}

/// The core's in-memory store: the reference the SQL stores must agree
/// with (it runs the list checks only).
async fn memory() -> Fixture {
    Fixture {
        store: std::sync::Arc::new(MemoryStore::new()),
        url: String::new(),
        _dir: None,
    }
}

async fn sqlite_memory() -> Fixture {
    let url = "sqlite::memory:".to_string();
    let store = open_store(&url).await.expect("open SQLite memory store");
    Fixture {
        store,
        url,
        _dir: None,
    }
}

async fn postgres() -> Fixture {
    let url = support::fresh_postgres_url().await;
    let store = open_store(&url).await.expect("open PostgreSQL store");
    Fixture {
        store,
        url,
        _dir: None,
    }
}

// ----------------------------------------------------------- domain helpers

fn policy() -> EscalationPolicy {
    EscalationPolicy::default_console()
}

fn api(who: &str) -> Attribution {
    Attribution::new(who, Interface::Api)
}

fn alert(name: &str, status: AlertStatus) -> Alert {
    let labels: Labels = [
        ("alertname", name),
        ("model", "gpt-4o"),
        ("service", "chat"),
        ("severity", "critical"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    Alert {
        labels,
        annotations: [("summary".to_string(), format!("{name} is bad"))].into(),
        status,
        starts_at: Timestamp(T0 - 60_000),
        ends_at: None,
        source: "native".into(),
        dedup_key: None,
        extra: None,
    }
}

/// The write that commits `change`: the incident's version is bumped, as
/// the persistence actor does for every committed change.
fn committed(incident: &mut Incident, change: Change, at: i64) -> IncidentWrite {
    incident.bump_version();
    IncidentWrite {
        incident: incident.clone(),
        events: change.events,
        alerts: change.alerts,
        received_at: Timestamp(at),
        deliveries: Vec::new(),
    }
}

/// Opens incident `id` for `alert` at `at`: the incident and its first write.
fn open_with(id: u64, alert: Alert, at: i64) -> (Incident, IncidentWrite) {
    let (mut incident, change) = Incident::open(IncidentId(id), alert, &policy(), Timestamp(at));
    let write = committed(&mut incident, change, at);
    (incident, write)
}

fn open(id: u64, name: &str, at: i64) -> (Incident, IncidentWrite) {
    open_with(id, alert(name, AlertStatus::Firing), at)
}

fn acknowledge(incident: &mut Incident, at: i64) -> IncidentWrite {
    let change = incident
        .acknowledge(api("alice"), &policy(), Timestamp(at))
        .expect("acknowledge");
    committed(incident, change, at)
}

fn resolve(incident: &mut Incident, at: i64) -> IncidentWrite {
    let change = incident
        .resolve(api("bob"), Timestamp(at))
        .expect("resolve");
    committed(incident, change, at)
}

fn escalate(incident: &mut Incident, at: i64) -> IncidentWrite {
    let change = incident.fire_escalation(&policy(), Timestamp(at));
    assert!(!change.is_empty(), "a step was due");
    committed(incident, change, at)
}

fn batch(writes: Vec<IncidentWrite>) -> WriteBatch {
    WriteBatch {
        incidents: writes,
        touches: Vec::new(),
        attempts: Vec::new(),
    }
}

fn touches(touches: Vec<Touch>) -> WriteBatch {
    WriteBatch {
        incidents: Vec::new(),
        touches,
        attempts: Vec::new(),
    }
}

async fn commit(store: &SharedStore, writes: Vec<IncidentWrite>) {
    store.commit(&batch(writes)).await.expect("commit");
}

async fn get(store: &SharedStore, id: u64) -> Option<Incident> {
    store
        .get_incident(IncidentId(id))
        .await
        .expect("get_incident")
}

async fn list(store: &SharedStore, status: Option<StatusFilter>, limit: u32) -> Vec<u64> {
    query(
        store,
        IncidentQuery {
            status,
            limit,
            ..IncidentQuery::default()
        },
    )
    .await
}

async fn query(store: &SharedStore, q: IncidentQuery) -> Vec<u64> {
    store
        .list_incidents(&q)
        .await
        .unwrap_or_else(|e| panic!("list_incidents {q:?}: {e}"))
        .into_iter()
        .map(|i| i.id.0)
        .collect()
}

async fn open_ids(store: &SharedStore) -> Vec<u64> {
    let mut ids: Vec<u64> = store
        .load_open_incidents()
        .await
        .expect("load_open_incidents")
        .into_iter()
        .map(|i| i.id.0)
        .collect();
    ids.sort_unstable();
    ids
}

// ------------------------------------------------------------ the contract

async fn round_trip(f: Fixture) {
    let store = f.store;
    store.ping().await.expect("ping");
    assert_eq!(get(&store, 1).await, None);
    assert!(store.timeline(IncidentId(1)).await.unwrap().is_empty());
    assert!(store.alerts(IncidentId(1)).await.unwrap().is_empty());
    store
        .commit(&WriteBatch::default())
        .await
        .expect("empty batch");

    let (mut incident, write) = open(1, "HighLatency", T0);
    commit(&store, vec![write]).await;
    assert_eq!(get(&store, 1).await.as_ref(), Some(&incident));

    let write = escalate(&mut incident, T0);
    commit(&store, vec![write]).await;
    let write = acknowledge(&mut incident, T0 + 1_000);
    commit(&store, vec![write]).await;
    let stored = get(&store, 1).await.expect("stored");
    assert_eq!(stored, incident);
    assert_eq!(stored.status, IncidentStatus::Acknowledged);
    assert_eq!(stored.version, 3);
    assert_eq!(get(&store, 2).await, None);
}

async fn timeline_in_order(f: Fixture) {
    let store = f.store;
    let (mut incident, first) = open(7, "ErrorRate", T0);
    let mut expected: Vec<TimelineEvent> = first.events.clone();
    commit(&store, vec![first]).await;

    // Several writes of one incident in one batch: every event is kept, the
    // newest snapshot wins.
    let mut writes = Vec::new();
    for w in [
        escalate(&mut incident, T0),
        acknowledge(&mut incident, T0 + 2_000),
        resolve(&mut incident, T0 + 3_000),
    ] {
        expected.extend(w.events.iter().cloned());
        writes.push(w);
    }
    commit(&store, writes).await;

    let timeline = store.timeline(IncidentId(7)).await.expect("timeline");
    assert_eq!(timeline, expected);
    let seqs: Vec<u32> = timeline.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, [0, 1, 2, 3]);
    let kinds: Vec<&str> = timeline.iter().map(|e| e.kind.name()).collect();
    assert_eq!(kinds, ["triggered", "notified", "acknowledged", "resolved"]);
    assert_eq!(get(&store, 7).await.as_ref(), Some(&incident));
    assert!(store.timeline(IncidentId(8)).await.unwrap().is_empty());
}

async fn alert_rows(f: Fixture) {
    let store = f.store;
    let mut first = alert("A", AlertStatus::Firing);
    first.ends_at = Some(Timestamp(T0 + 300_000));
    let (mut incident, write) = open_with(3, first.clone(), T0);
    commit(&store, vec![write]).await;

    let mut second = alert("B", AlertStatus::Firing);
    second.source = "pagerduty".into();
    second.dedup_key = Some("srv01/mysql".into());
    second.annotations = Labels::new();
    let (_, change) = incident
        .apply_alert(second.clone(), Timestamp(T0 + 10))
        .expect("join");
    let w2 = committed(&mut incident, change, T0 + 10);
    let resolved_a = alert("A", AlertStatus::Resolved);
    let (_, change) = incident
        .apply_alert(resolved_a.clone(), Timestamp(T0 + 20))
        .expect("resolve A");
    let w3 = committed(&mut incident, change, T0 + 20);
    commit(&store, vec![w2, w3]).await;
    let (_, other) = open(4, "Other", T0);
    commit(&store, vec![other]).await;

    let rows = store.alerts(IncidentId(3)).await.expect("alerts");
    let got: Vec<_> = rows
        .iter()
        .map(|r| (r.incident_id, r.fingerprint, r.received_at, r.alert.clone()))
        .collect();
    assert_eq!(
        got,
        [
            (IncidentId(3), first.fingerprint(), Timestamp(T0), first),
            (
                IncidentId(3),
                second.fingerprint(),
                Timestamp(T0 + 10),
                second
            ),
            (
                IncidentId(3),
                resolved_a.fingerprint(),
                Timestamp(T0 + 20),
                resolved_a
            ),
        ]
    );
    assert_eq!(store.alerts(IncidentId(4)).await.unwrap().len(), 1);
    assert!(store.alerts(IncidentId(5)).await.unwrap().is_empty());
}

/// Incidents 1..=5: triggered, acknowledged, resolved, triggered, resolved.
async fn five_incidents(store: &SharedStore) {
    let mut writes = Vec::new();
    for id in 1..=5u64 {
        let (mut incident, w) = open(id, &format!("Alert{id}"), T0 + id as i64);
        writes.push(w);
        match id {
            2 => writes.push(acknowledge(&mut incident, T0 + 100)),
            3 | 5 => writes.push(resolve(&mut incident, T0 + 100)),
            _ => {}
        }
    }
    commit(store, writes).await;
}

async fn list_filters(f: Fixture) {
    let store = f.store;
    assert!(list(&store, None, 100).await.is_empty());
    five_incidents(&store).await;
    use IncidentStatus::*;
    assert_eq!(list(&store, None, 100).await, [5, 4, 3, 2, 1]);
    assert_eq!(list(&store, None, 2).await, [5, 4]);
    assert_eq!(list(&store, None, 0).await, Vec::<u64>::new());
    assert_eq!(
        list(&store, Some(StatusFilter::Is(Triggered)), 100).await,
        [4, 1]
    );
    assert_eq!(
        list(&store, Some(StatusFilter::Is(Acknowledged)), 100).await,
        [2]
    );
    assert_eq!(
        list(&store, Some(StatusFilter::Is(Resolved)), 100).await,
        [5, 3]
    );
    assert_eq!(list(&store, Some(StatusFilter::Is(Resolved)), 1).await, [5]);
    assert_eq!(list(&store, Some(StatusFilter::Open), 100).await, [4, 2, 1]);
    assert_eq!(list(&store, Some(StatusFilter::Open), 2).await, [4, 2]);
    let listed = store
        .list_incidents(&IncidentQuery::default())
        .await
        .unwrap();
    assert!(listed.iter().all(|i| i.version >= 1));
    assert_eq!(listed[0].status, Resolved);
}

async fn open_incidents_and_max_id(f: Fixture) {
    let store = f.store;
    assert_eq!(store.max_incident_id().await.unwrap(), None);
    assert!(store.load_open_incidents().await.unwrap().is_empty());
    five_incidents(&store).await;
    assert_eq!(open_ids(&store).await, [1, 2, 4]);
    let loaded = store.load_open_incidents().await.unwrap();
    assert!(loaded.iter().all(|i| i.status.is_open()));
    assert_eq!(store.max_incident_id().await.unwrap(), Some(IncidentId(5)));
    // A resolved incident still counts for the highest id.
    let (mut six, w) = open(6, "Six", T0);
    let r = resolve(&mut six, T0 + 1);
    commit(&store, vec![w, r]).await;
    assert_eq!(store.max_incident_id().await.unwrap(), Some(IncidentId(6)));
    assert_eq!(open_ids(&store).await, [1, 2, 4]);
}

async fn touches_raise_last_seen_and_count(f: Fixture) {
    let store = f.store;
    let (mut incident, w) = open(1, "Flappy", T0);
    commit(&store, vec![w]).await;

    let touch = |last_seen: i64, seen_count: u64| Touch {
        id: IncidentId(1),
        last_seen: Timestamp(last_seen),
        seen_count,
        snapshot: None,
    };
    store
        .commit(&touches(vec![touch(T0 + 100, 5), touch(T0 + 50, 9)]))
        .await
        .expect("touch");
    let got = get(&store, 1).await.unwrap();
    assert_eq!((got.last_seen, got.seen_count), (Timestamp(T0 + 100), 9));
    let mut expected = incident.clone();
    expected.last_seen = Timestamp(T0 + 100);
    expected.seen_count = 9;
    assert_eq!(got, expected, "only last_seen and seen_count move");
    let loaded = store.load_open_incidents().await.unwrap();
    assert_eq!(loaded, [expected.clone()]);
    let listed = store
        .list_incidents(&IncidentQuery::default())
        .await
        .unwrap();
    assert_eq!(listed, [expected.clone()]);

    // Older values never lower them.
    store
        .commit(&touches(vec![touch(T0 + 10, 2)]))
        .await
        .unwrap();
    assert_eq!(get(&store, 1).await.unwrap(), expected);

    // Nor does a later snapshot that has not seen the touches.
    let w = acknowledge(&mut incident, T0 + 20);
    commit(&store, vec![w]).await;
    let got = get(&store, 1).await.unwrap();
    assert_eq!(got.status, IncidentStatus::Acknowledged);
    assert_eq!((got.last_seen, got.seen_count), (Timestamp(T0 + 100), 9));

    // A snapshot ahead of the touches wins; touches and writes share a batch.
    incident.last_seen = Timestamp(T0 + 500);
    incident.seen_count = 20;
    let (_, w2) = open(2, "Other", T0 + 500);
    let w = WriteBatch {
        incidents: vec![committed(&mut incident, Change::default(), T0 + 500), w2],
        touches: vec![
            touch(T0 + 400, 15),
            Touch {
                id: IncidentId(2),
                last_seen: Timestamp(T0 + 600),
                seen_count: 4,
                snapshot: None,
            },
        ],
        attempts: Vec::new(),
    };
    store.commit(&w).await.unwrap();
    assert_eq!(get(&store, 1).await.unwrap(), incident);
    let two = get(&store, 2).await.unwrap();
    assert_eq!((two.last_seen, two.seen_count), (Timestamp(T0 + 600), 4));
}

/// A touch may carry a refreshed snapshot (an alert's `ends_at` moved by a
/// re-send); it replaces the stored one only if taken from that same
/// version, never a newer committed change.
async fn touch_snapshot_replaces_only_its_own_version(f: Fixture) {
    let store = f.store;
    let (mut incident, w) = open(1, "Refreshed", T0);
    commit(&store, vec![w]).await;

    let mut refreshed = incident.clone();
    let entry = refreshed.alerts.values_mut().next().unwrap();
    entry.alert.ends_at = Some(Timestamp(T0 + 240_000));
    refreshed.seen_count += 1;
    let touch = |snapshot: &Incident| Touch {
        id: IncidentId(1),
        last_seen: Timestamp(T0 + 60_000),
        seen_count: snapshot.seen_count,
        snapshot: Some(Box::new(snapshot.clone())),
    };
    store
        .commit(&touches(vec![touch(&refreshed)]))
        .await
        .expect("touch");
    let got = get(&store, 1).await.unwrap();
    assert_eq!(
        got.alerts.values().next().unwrap().alert.ends_at,
        Some(Timestamp(T0 + 240_000)),
        "the refreshed snapshot was written"
    );

    // A committed change (version + 1), then a stale touch of the old version.
    let ack = acknowledge(&mut incident, T0 + 70_000);
    commit(&store, vec![ack]).await;
    store
        .commit(&touches(vec![touch(&refreshed)]))
        .await
        .expect("stale touch");
    let got = get(&store, 1).await.unwrap();
    assert_eq!(
        got.status,
        IncidentStatus::Acknowledged,
        "a stale snapshot never overwrites"
    );
    assert_eq!(got.version, incident.version);
}

async fn silences_are_saved_listed_and_recorded_once(f: Fixture) {
    use incident_actors::domain::{Matcher, Silence, SilenceId};
    let store = f.store;
    let mut silence = Silence {
        id: SilenceId(1),
        matchers: vec![Matcher::parse("model=~gpt.*").unwrap()],
        starts_at: Timestamp(T0),
        ends_at: Timestamp(T0 + 3_600_000),
        created_by: "alice".into(),
        comment: "deploy".into(),
        created_at: Timestamp(T0),
    };
    store.save_silence(&silence).await.unwrap();
    let mut second = silence.clone();
    second.id = SilenceId(2);
    store.save_silence(&second).await.unwrap();
    silence.expire(Timestamp(T0 + 60_000));
    store.save_silence(&silence).await.unwrap();
    let listed = store.list_silences().await.unwrap();
    assert_eq!(
        listed,
        [second, silence.clone()],
        "newest first, the expiry saved"
    );
    let a = alert("Noisy", AlertStatus::Firing);
    store
        .record_silenced(silence.id, &a, Timestamp(T0))
        .await
        .unwrap();
    store
        .record_silenced(silence.id, &a, Timestamp(T0 + 1))
        .await
        .unwrap();
}

async fn duplicate_open_fingerprint_rolls_back_the_batch(f: Fixture) {
    let store = f.store;
    let (first, w) = open(1, "Dup", T0);
    commit(&store, vec![w]).await;

    let (mut ok, w_ok) = open(2, "Fine", T0 + 1);
    let w_ok_ack = acknowledge(&mut ok, T0 + 2);
    let (_, w_dup) = open(3, "Dup", T0 + 3);
    assert_eq!(
        w_dup.incident.fingerprint, first.fingerprint,
        "same labels, same fingerprint"
    );
    let bad = WriteBatch {
        incidents: vec![w_ok, w_ok_ack, w_dup],
        touches: vec![Touch {
            id: IncidentId(1),
            last_seen: Timestamp(T0 + 9_000),
            seen_count: 42,
            snapshot: None,
        }],
        attempts: Vec::new(),
    };
    match store.commit(&bad).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!("expected Rejected, got {other:?}"),
    }
    // Nothing of the batch is visible.
    assert_eq!(get(&store, 2).await, None);
    assert_eq!(get(&store, 3).await, None);
    assert!(store.timeline(IncidentId(2)).await.unwrap().is_empty());
    assert!(store.alerts(IncidentId(2)).await.unwrap().is_empty());
    assert!(store.alerts(IncidentId(3)).await.unwrap().is_empty());
    assert_eq!(
        get(&store, 1).await.as_ref(),
        Some(&first),
        "touch rolled back"
    );
    assert_eq!(store.max_incident_id().await.unwrap(), Some(IncidentId(1)));
    assert_eq!(open_ids(&store).await, [1]);

    // The store still works, and a duplicate event seq is refused too.
    let (_, w) = open(4, "After", T0 + 4);
    commit(&store, vec![w.clone()]).await;
    let mut again = w;
    again.alerts.clear();
    assert!(matches!(
        store.commit(&batch(vec![again])).await,
        Err(StoreError::Rejected(_))
    ));
    assert_eq!(store.timeline(IncidentId(4)).await.unwrap().len(), 1);
}

async fn resolved_incident_frees_its_fingerprint(f: Fixture) {
    let store = f.store;
    let (mut one, w) = open(1, "Recurring", T0);
    commit(&store, vec![w]).await;
    let w = resolve(&mut one, T0 + 1);
    commit(&store, vec![w]).await;

    let (mut two, w) = open(2, "Recurring", T0 + 2);
    assert_eq!(two.fingerprint, one.fingerprint);
    commit(&store, vec![w]).await;

    // In one batch, even with the new incident written first: the resolve
    // of the old one is applied before.
    let (three, w3) = open(3, "Recurring", T0 + 4);
    let r2 = resolve(&mut two, T0 + 3);
    commit(&store, vec![w3, r2]).await;

    assert_eq!(open_ids(&store).await, [3]);
    assert_eq!(get(&store, 3).await.as_ref(), Some(&three));
    assert_eq!(
        get(&store, 2).await.unwrap().status,
        IncidentStatus::Resolved
    );
    assert_eq!(
        list(&store, Some(StatusFilter::Is(IncidentStatus::Resolved)), 10).await,
        [2, 1]
    );
}

async fn large_batch(f: Fixture) {
    let store = f.store;
    const N: u64 = 1_500;
    let mut writes = Vec::new();
    let mut incidents = Vec::new();
    for id in 1..=N {
        let (mut incident, w) = open(id, &format!("Load{id}"), T0 + id as i64);
        writes.push(w);
        if id % 3 == 0 {
            writes.push(escalate(&mut incident, T0 + id as i64));
        }
        incidents.push(incident);
    }
    let touched = (1..=N)
        .step_by(2)
        .map(|id| Touch {
            id: IncidentId(id),
            last_seen: Timestamp(T0 + 10_000),
            seen_count: 2,
            snapshot: None,
        })
        .collect();
    store
        .commit(&WriteBatch {
            incidents: writes,
            touches: touched,
            attempts: Vec::new(),
        })
        .await
        .expect("large batch");
    let loaded = store.load_open_incidents().await.unwrap();
    assert_eq!(loaded.len(), N as usize);
    assert_eq!(store.max_incident_id().await.unwrap(), Some(IncidentId(N)));
    for id in [1, 2, 3, N] {
        let got = get(&store, id).await.unwrap();
        let mut expected = incidents[id as usize - 1].clone();
        if id % 2 == 1 {
            expected.last_seen = Timestamp(T0 + 10_000);
            expected.seen_count = 2;
        }
        assert_eq!(got, expected);
        let events = store.timeline(IncidentId(id)).await.unwrap().len();
        assert_eq!(events, if id % 3 == 0 { 2 } else { 1 });
        assert_eq!(store.alerts(IncidentId(id)).await.unwrap().len(), 1);
    }
}

/// Durable backends: dropped and opened again, the store has everything.
async fn survives_reopen(f: Fixture) {
    let Fixture { store, url, _dir } = f;
    let (mut one, w1) = open(1, "Persist", T0);
    let (mut two, w2) = open(2, "Persist2", T0);
    let r2 = resolve(&mut two, T0 + 5);
    commit(&store, vec![w1, w2, r2]).await;
    store
        .commit(&touches(vec![Touch {
            id: IncidentId(1),
            last_seen: Timestamp(T0 + 77),
            seen_count: 3,
            snapshot: None,
        }]))
        .await
        .unwrap();
    let timeline = store.timeline(IncidentId(2)).await.unwrap();
    let alerts = store.alerts(IncidentId(1)).await.unwrap();
    drop(store);

    let store = open_store(&url).await.expect("reopen");
    one.last_seen = Timestamp(T0 + 77);
    one.seen_count = 3;
    assert_eq!(get(&store, 1).await.as_ref(), Some(&one));
    assert_eq!(get(&store, 2).await.as_ref(), Some(&two));
    assert_eq!(store.load_open_incidents().await.unwrap(), [one]);
    assert_eq!(store.max_incident_id().await.unwrap(), Some(IncidentId(2)));
    assert_eq!(store.timeline(IncidentId(2)).await.unwrap(), timeline);
    assert_eq!(store.alerts(IncidentId(1)).await.unwrap(), alerts);
    // Migrations are not applied twice; the store still takes writes.
    let (_, w3) = open(3, "AfterReopen", T0 + 10);
    commit(&store, vec![w3]).await;
    assert_eq!(list(&store, None, 10).await, [3, 2, 1]);
}

// ------------------------------------------------- heartbeat monitor states

fn heartbeat(last_ping: Option<i64>, deadline: i64, missed: bool) -> HeartbeatState {
    HeartbeatState {
        last_ping: last_ping.map(Timestamp),
        deadline: Timestamp(deadline),
        missed,
    }
}

/// Saved states come back by name, in byte order of the name (whatever
/// the database's collation); a second save of a name replaces the first.
async fn heartbeats_saved_loaded_and_upserted(f: Fixture) {
    let store = f.store;
    assert!(store.load_heartbeats().await.unwrap().is_empty());
    let waiting = heartbeat(None, T0 + 720_000, false);
    let missed = heartbeat(Some(T0), T0 + 720_000, true);
    let up = heartbeat(Some(T0 + 5), T0 + 720_005, false);
    store.save_heartbeat("a_job", &waiting).await.unwrap();
    store.save_heartbeat("B-job", &missed).await.unwrap();
    store.save_heartbeat("a.job", &up).await.unwrap();
    assert_eq!(
        store.load_heartbeats().await.unwrap(),
        [
            ("B-job".to_string(), missed),
            ("a.job".to_string(), up),
            ("a_job".to_string(), waiting),
        ]
    );
    // Upserts: pinged, then missed, then pinged again.
    let pinged = heartbeat(Some(T0 + 60_000), T0 + 780_000, false);
    store.save_heartbeat("a_job", &pinged).await.unwrap();
    let back = heartbeat(Some(T0 + 90_000), T0 + 810_000, false);
    store.save_heartbeat("B-job", &back).await.unwrap();
    let all = store.load_heartbeats().await.unwrap();
    assert_eq!(all.len(), 3, "one row per name");
    assert_eq!(all[0], ("B-job".to_string(), back));
    assert_eq!(all[2], ("a_job".to_string(), pinged));
    let gone = heartbeat(Some(T0 + 60_000), T0 + 780_000, true);
    store.save_heartbeat("a_job", &gone).await.unwrap();
    assert_eq!(
        store.load_heartbeats().await.unwrap()[2],
        ("a_job".to_string(), gone)
    );
}

/// Durable backends: the states are there after a reopen.
async fn heartbeats_survive_reopen(f: Fixture) {
    let Fixture { store, url, _dir } = f;
    let missed = heartbeat(Some(T0), T0 + 720_000, true);
    let waiting = heartbeat(None, T0 + 60_000, false);
    store.save_heartbeat("nightly", &missed).await.unwrap();
    store.save_heartbeat("hourly", &waiting).await.unwrap();
    drop(store);
    let store = open_store(&url).await.expect("reopen");
    assert_eq!(
        store.load_heartbeats().await.unwrap(),
        [
            ("hourly".to_string(), waiting),
            ("nightly".to_string(), missed)
        ]
    );
}

// ------------------------------------------------------- the delivery log

fn hook() -> Recipient {
    Recipient::Webhook {
        name: "hook".into(),
    }
}

/// A pending page of step 0 of `incident` to `to`, recorded at `at`.
fn page_to(incident: &Incident, repeat: u32, to: Recipient, at: i64) -> Delivery {
    let target = Target::Channel("ops".into());
    Delivery::pending(
        DeliveryKey::page_fired(incident.id, 1, 0, repeat, &target, &to),
        incident.id,
        NotificationEvent::Page {
            step: 0,
            repeat,
            target,
        },
        to,
        Timestamp(at),
    )
}

/// `write` carrying `deliveries`.
fn with(mut write: IncidentWrite, deliveries: Vec<Delivery>) -> IncidentWrite {
    write.deliveries = deliveries;
    write
}

async fn deliveries_of(store: &SharedStore, id: u64) -> Vec<Delivery> {
    store.deliveries(IncidentId(id)).await.expect("deliveries")
}

async fn pending(store: &SharedStore) -> Vec<Delivery> {
    store
        .pending_deliveries()
        .await
        .expect("pending_deliveries")
}

fn keys(deliveries: &[Delivery]) -> Vec<&str> {
    deliveries.iter().map(|d| d.key.0.as_str()).collect()
}

/// Deliveries committed with their incident's changes are pending, come
/// back exactly as written, oldest first (the order of the commits, then
/// of the batch), and `deliveries(incident)` lists that incident's only.
async fn deliveries_written_pending_with_their_commit(f: Fixture) {
    let store = f.store;
    assert!(pending(&store).await.is_empty());
    assert!(deliveries_of(&store, 1).await.is_empty());

    // Incident 1 opens and its first step pages the console (planned as
    // the incident actor plans it), plus a webhook.
    let (mut one, open1) = open(1, "Paged", T0);
    let change = one.fire_escalation(&policy(), Timestamp(T0));
    let console_page = plan_deliveries(&one, &Default::default(), &change, Timestamp(T0));
    assert_eq!(console_page.len(), 1, "{console_page:?}");
    assert_eq!(console_page[0].recipient, Recipient::Console);
    let hook_page = page_to(&one, 0, hook(), T0);
    let fired = committed(&mut one, change, T0);
    let first = [console_page[0].clone(), hook_page.clone()];
    commit(&store, vec![open1, with(fired, first.to_vec())]).await;

    // Incident 2, in a later commit.
    let (two, open2) = open(2, "Other", T0 + 1);
    let other = page_to(&two, 0, Recipient::Console, T0 + 1);
    commit(&store, vec![with(open2, vec![other.clone()])]).await;

    // Incident 1 acknowledged: an update to everyone it paged.
    let paged_before = one.paged.clone();
    let change = one
        .acknowledge(api("alice"), &policy(), Timestamp(T0 + 2))
        .expect("acknowledge");
    let updates = plan_deliveries(&one, &paged_before, &change, Timestamp(T0 + 2));
    assert_eq!(updates.len(), 1, "the console was paged: {updates:?}");
    assert!(!updates[0].event.is_page());
    let ack = committed(&mut one, change, T0 + 2);
    commit(&store, vec![with(ack, updates.clone())]).await;

    let all = pending(&store).await;
    let expected = [
        console_page[0].clone(),
        hook_page.clone(),
        other.clone(),
        updates[0].clone(),
    ];
    assert_eq!(all, expected, "as written, oldest first");
    assert!(all
        .iter()
        .all(|d| d.status == DeliveryStatus::Pending && d.attempts == 0));
    assert_eq!(
        deliveries_of(&store, 1).await,
        [console_page[0].clone(), hook_page, updates[0].clone()]
    );
    assert_eq!(deliveries_of(&store, 2).await, [other]);
    assert!(deliveries_of(&store, 3).await.is_empty());
}

/// A key already in the log is left as it is, whatever a later commit
/// carries (a replayed commit never pages twice); a key given twice in one
/// batch keeps its first row.
async fn delivery_keys_are_inserted_once(f: Fixture) {
    let store = f.store;
    let (mut one, w) = open(1, "Once", T0);
    let a = page_to(&one, 0, Recipient::Console, T0);
    let b = page_to(&one, 0, hook(), T0);
    commit(&store, vec![with(w, vec![a.clone(), b.clone()])]).await;
    store
        .record_attempt(
            &a.key,
            &AttemptOutcome::Failed {
                error: "timeout".into(),
                last: false,
            },
            Timestamp(T0 + 5),
        )
        .await
        .expect("record_attempt");
    store
        .record_attempt(
            &b.key,
            &AttemptOutcome::Delivered {
                external_ref: Some("ref-b".into()),
            },
            Timestamp(T0 + 6),
        )
        .await
        .expect("record_attempt");
    let before = deliveries_of(&store, 1).await;
    assert_eq!(
        before
            .iter()
            .map(|d| (d.status, d.attempts))
            .collect::<Vec<_>>(),
        [(DeliveryStatus::Pending, 1), (DeliveryStatus::Delivered, 1)]
    );

    // The same keys again, written anew (pending, later), with a new one
    // given twice in the batch.
    let again_a = page_to(&one, 0, Recipient::Console, T0 + 10);
    let again_b = page_to(&one, 0, hook(), T0 + 10);
    let c = page_to(&one, 1, Recipient::Console, T0 + 10);
    let mut c_later = c.clone();
    c_later.created_at = Timestamp(T0 + 11);
    c_later.updated_at = Timestamp(T0 + 11);
    let w = acknowledge(&mut one, T0 + 10);
    commit(
        &store,
        vec![with(w, vec![again_a, c.clone(), again_b, c_later])],
    )
    .await;

    let after = deliveries_of(&store, 1).await;
    assert_eq!(after[..2], before[..], "rows already there are unchanged");
    assert_eq!(
        &after[2..],
        std::slice::from_ref(&c),
        "the first of a key given twice"
    );
    assert_eq!(
        keys(&pending(&store).await),
        [a.key.0.as_str(), c.key.0.as_str()]
    );
}

/// `record_attempt` applies exactly `Delivery::record`: checked against the
/// domain's own result after every attempt.
async fn record_attempt_follows_the_domain(f: Fixture) {
    let store = f.store;
    let (incident, w) = open(1, "Attempts", T0);
    let rows: Vec<Delivery> = [
        Recipient::Console,
        hook(),
        Recipient::SlackChannel {
            channel: "#oncall".into(),
        },
        Recipient::Email {
            user: "alice".into(),
            address: "alice@example.com".into(),
        },
    ]
    .into_iter()
    .map(|to| page_to(&incident, 0, to, T0))
    .collect();
    commit(&store, vec![with(w, rows.clone())]).await;
    let mut expected = rows.clone();

    let failed = |error: &str, last: bool| AttemptOutcome::Failed {
        error: error.into(),
        last,
    };
    let delivered = |r: Option<&str>| AttemptOutcome::Delivered {
        external_ref: r.map(str::to_string),
    };
    // (row, outcome): failed twice then delivered, later attempts change
    // nothing; failed for good; cancelled; delivered without a reference.
    let attempts = [
        (0, failed("connection reset", false)),
        (0, failed("HTTP 503", false)),
        (1, failed("HTTP 401", true)),
        (0, delivered(Some("ref-1"))),
        (2, AttemptOutcome::Cancelled),
        (3, delivered(None)),
        (0, failed("late duplicate", true)),
        (0, AttemptOutcome::Cancelled),
        (1, delivered(Some("too late"))),
        (2, delivered(Some("too late"))),
        (3, failed("late duplicate", false)),
    ];
    for (n, (row, outcome)) in attempts.iter().enumerate() {
        let at = Timestamp(T0 + 1_000 * (n as i64 + 1));
        store
            .record_attempt(&rows[*row].key, outcome, at)
            .await
            .unwrap_or_else(|e| panic!("record_attempt {outcome:?}: {e}"));
        expected[*row].record(outcome, at);
        assert_eq!(
            deliveries_of(&store, 1).await,
            expected,
            "after {outcome:?} on row {row}"
        );
        if n == 1 {
            let d = &expected[0];
            assert_eq!(
                (d.status, d.attempts, d.last_error.as_deref()),
                (DeliveryStatus::Pending, 2, Some("HTTP 503")),
                "a failure that will be retried stays pending"
            );
        }
    }
    let by_row: Vec<_> = expected
        .iter()
        .map(|d| (d.status, d.attempts, d.external_ref.as_deref()))
        .collect();
    assert_eq!(
        by_row,
        [
            (DeliveryStatus::Delivered, 3, Some("ref-1")),
            (DeliveryStatus::Failed, 1, None),
            (DeliveryStatus::Cancelled, 0, None),
            (DeliveryStatus::Delivered, 1, None),
        ]
    );
    assert_eq!(expected[0].last_error.as_deref(), Some("HTTP 503"));
    assert_eq!(expected[0].updated_at, Timestamp(T0 + 4_000));
    assert!(pending(&store).await.is_empty());

    let unknown = DeliveryKey("1/page/9/9/channel:ops/console".into());
    for outcome in [
        delivered(None),
        failed("x", true),
        AttemptOutcome::Cancelled,
    ] {
        match store
            .record_attempt(&unknown, &outcome, Timestamp(T0))
            .await
        {
            Err(StoreError::Rejected(_)) => {}
            other => panic!("unknown key: expected Rejected, got {other:?}"),
        }
    }
    assert_eq!(deliveries_of(&store, 1).await, expected, "nothing written");
}

/// Delivery attempts ride in a group commit's own transaction: applied
/// with it (an unknown key skipped, as `record_attempts` does), and rolled
/// back with it when the store refuses the batch.
async fn attempts_commit_with_their_batch(f: Fixture) {
    let store = f.store;
    let (first, w) = open(1, "Attempted", T0);
    let page = page_to(&first, 0, Recipient::Console, T0);
    commit(&store, vec![with(w, vec![page.clone()])]).await;
    let attempt = |key: &DeliveryKey, outcome: AttemptOutcome, at: i64| AttemptRecord {
        key: key.clone(),
        outcome,
        at: Timestamp(at),
    };
    let delivered = AttemptOutcome::Delivered {
        external_ref: Some("ref-1".into()),
    };

    // Refused (a second open incident for one fingerprint): its attempts
    // are not applied either.
    let (dup, w_dup) = open(2, "Attempted", T0 + 1);
    assert_eq!(dup.fingerprint, first.fingerprint);
    let mut bad = batch(vec![w_dup]);
    bad.attempts = vec![attempt(&page.key, delivered.clone(), T0 + 2)];
    match store.commit(&bad).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(pending(&store).await, std::slice::from_ref(&page));

    // With a write, and alone (no incident write at all).
    let (other, w_other) = open(3, "Other", T0 + 3);
    let other_page = page_to(&other, 0, Recipient::Console, T0 + 3);
    store
        .commit(&WriteBatch {
            incidents: vec![with(w_other, vec![other_page.clone()])],
            touches: Vec::new(),
            attempts: vec![
                attempt(&page.key, delivered.clone(), T0 + 4),
                attempt(
                    &DeliveryKey("1/page/9/9/channel:ops/console".into()),
                    delivered.clone(),
                    T0 + 4,
                ),
            ],
        })
        .await
        .expect("a batch with attempts, one on an unknown key");
    let mut expected = page.clone();
    expected.record(&delivered, Timestamp(T0 + 4));
    assert_eq!(deliveries_of(&store, 1).await, vec![expected]);
    store
        .commit(&WriteBatch {
            attempts: vec![attempt(&other_page.key, AttemptOutcome::Cancelled, T0 + 5)],
            ..WriteBatch::default()
        })
        .await
        .expect("attempts alone");
    let mut cancelled = other_page.clone();
    cancelled.record(&AttemptOutcome::Cancelled, Timestamp(T0 + 5));
    assert_eq!(deliveries_of(&store, 3).await, vec![cancelled]);
    assert!(pending(&store).await.is_empty());
}

/// A batch the store refuses writes none of its deliveries, and does not
/// burn their keys.
async fn rejected_batch_writes_no_deliveries(f: Fixture) {
    let store = f.store;
    let (first, w) = open(1, "Dup", T0);
    let kept = page_to(&first, 0, Recipient::Console, T0);
    commit(&store, vec![with(w, vec![kept.clone()])]).await;

    let (ok, w_ok) = open(2, "Fine", T0 + 1);
    let (dup, w_dup) = open(3, "Dup", T0 + 2);
    assert_eq!(dup.fingerprint, first.fingerprint);
    let ok_page = page_to(&ok, 0, Recipient::Console, T0 + 1);
    let dup_page = page_to(&dup, 0, Recipient::Console, T0 + 2);
    let bad = batch(vec![
        with(w_ok.clone(), vec![ok_page.clone()]),
        with(w_dup, vec![dup_page]),
    ]);
    match store.commit(&bad).await {
        Err(StoreError::Rejected(_)) => {}
        other => panic!("expected Rejected, got {other:?}"),
    }
    assert_eq!(pending(&store).await, std::slice::from_ref(&kept));
    assert!(deliveries_of(&store, 2).await.is_empty());
    assert!(deliveries_of(&store, 3).await.is_empty());
    assert!(matches!(
        store
            .record_attempt(&ok_page.key, &AttemptOutcome::Cancelled, Timestamp(T0 + 3))
            .await,
        Err(StoreError::Rejected(_))
    ));

    // Committed on its own, the same write and its delivery go in.
    commit(&store, vec![with(w_ok, vec![ok_page.clone()])]).await;
    assert_eq!(pending(&store).await, [kept, ok_page]);
}

/// Durable backends: the log, and attempts recorded on it, survive a reopen.
async fn deliveries_survive_reopen(f: Fixture) {
    let Fixture { store, url, _dir } = f;
    let (one, w) = open(1, "Persist", T0);
    let sent = page_to(&one, 0, Recipient::Console, T0);
    let queued = page_to(&one, 0, hook(), T0);
    commit(&store, vec![with(w, vec![sent.clone(), queued.clone()])]).await;
    let outcome = AttemptOutcome::Delivered {
        external_ref: Some("ref-1".into()),
    };
    store
        .record_attempt(&sent.key, &outcome, Timestamp(T0 + 1))
        .await
        .unwrap();
    let before = deliveries_of(&store, 1).await;
    drop(store);

    let store = open_store(&url).await.expect("reopen");
    assert_eq!(deliveries_of(&store, 1).await, before);
    assert_eq!(pending(&store).await, [queued]);
}

// ------------------------------------------------- the list: filters, sorts, pages

/// Opens incident `id` at `at` for an alert with exactly `labels` plus a
/// unique `alertname` (so every incident has its own fingerprint).
fn open_labeled(id: u64, labels: &[(&str, &str)], at: i64) -> (Incident, IncidentWrite) {
    let mut a = alert("unused", AlertStatus::Firing);
    a.labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    a.labels.insert("alertname".into(), format!("Alert{id}"));
    open_with(id, a, at)
}

fn labels_of(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Eight incidents with varied services, severities and labels. Created at
/// T0+id, except 8 which shares T0+7 with 7. 2 is acknowledged at T0+50,
/// 3 and 5 resolved at T0+60 and T0+70 (their `updated_at`).
async fn eight_incidents(store: &SharedStore) {
    type Spec<'a> = (u64, &'a [(&'a str, &'a str)], i64);
    let specs: [Spec; 8] = [
        (
            1,
            &[
                ("service", "chat"),
                ("severity", "critical"),
                ("model", "gpt-4o"),
                ("provider", "openai"),
            ],
            1,
        ),
        (
            2,
            &[
                ("service", "chat"),
                ("severity", "warning"),
                ("model", "gpt-4o"),
                ("provider", "azure"),
            ],
            2,
        ),
        (
            3,
            &[
                ("service", "search"),
                ("severity", "critical"),
                ("model", "claude"),
                ("provider", "anthropic"),
            ],
            3,
        ),
        (
            4,
            &[
                ("service", "chat"),
                ("model", "gpt-4o"),
                ("provider", "openai"),
                ("we\"ird.key\\", "va'l\"ue"),
            ],
            4,
        ),
        (
            5,
            &[
                ("service", "search"),
                ("severity", "critical"),
                ("model", "gpt-4o"),
                ("provider", "openai"),
            ],
            5,
        ),
        (6, &[("model", "llama")], 6),
        (
            7,
            &[
                ("service", "chat"),
                ("severity", "critical"),
                ("model", "gpt-4o"),
                ("provider", "openai"),
                ("$.model", "claude"),
            ],
            7,
        ),
        (
            8,
            &[
                ("service", "chat"),
                ("severity", "critical"),
                ("model", "gpt-4o"),
                ("provider", "openai"),
            ],
            7,
        ),
    ];
    let mut writes = Vec::new();
    for (id, l, at) in specs {
        let (mut incident, w) = open_labeled(id, l, T0 + at);
        writes.push(w);
        match id {
            2 => writes.push(acknowledge(&mut incident, T0 + 50)),
            3 => writes.push(resolve(&mut incident, T0 + 60)),
            5 => writes.push(resolve(&mut incident, T0 + 70)),
            _ => {}
        }
    }
    commit(store, writes).await;
}

fn q() -> IncidentQuery {
    IncidentQuery::default()
}

async fn list_by_service_severity_labels_and_time(f: Fixture) {
    let store = f.store;
    eight_incidents(&store).await;
    use IncidentStatus::*;
    let service = |s: &str| IncidentQuery {
        service: Some(s.into()),
        ..q()
    };
    let label = |pairs: &[(&str, &str)]| IncidentQuery {
        labels: labels_of(pairs),
        ..q()
    };
    let at = |ms: i64| Some(Timestamp(T0 + ms));
    let cases: Vec<(IncidentQuery, Vec<u64>)> = vec![
        (q(), vec![8, 7, 6, 5, 4, 3, 2, 1]),
        (service("chat"), vec![8, 7, 4, 2, 1]),
        (service("default"), vec![6]),
        (service("nope"), vec![]),
        (
            IncidentQuery {
                severity: Some("critical".into()),
                ..q()
            },
            vec![8, 7, 5, 3, 1],
        ),
        (label(&[("model", "gpt-4o")]), vec![8, 7, 5, 4, 2, 1]),
        (
            label(&[("model", "gpt-4o"), ("provider", "openai")]),
            vec![8, 7, 5, 4, 1],
        ),
        (
            IncidentQuery {
                status: Some(StatusFilter::Is(Triggered)),
                ..label(&[("model", "gpt-4o"), ("provider", "openai")])
            },
            vec![8, 7, 4, 1],
        ),
        (
            IncidentQuery {
                status: Some(StatusFilter::Open),
                service: Some("chat".into()),
                severity: Some("critical".into()),
                ..q()
            },
            vec![8, 7, 1],
        ),
        (
            IncidentQuery {
                status: Some(StatusFilter::Is(Resolved)),
                ..label(&[("model", "gpt-4o")])
            },
            vec![5],
        ),
        // Keys and values are data, never SQL or JSON paths.
        (label(&[("we\"ird.key\\", "va'l\"ue")]), vec![4]),
        (label(&[("$.model", "claude")]), vec![7]),
        (label(&[("model", "claude")]), vec![3]),
        (label(&[("model", "x' OR '1'='1")]), vec![]),
        // All must match: one key with two values matches nothing.
        (label(&[("model", "gpt-4o"), ("model", "claude")]), vec![]),
        (label(&[("nosuch", "x")]), vec![]),
        (label(&[("model", "GPT-4O")]), vec![]),
        // since inclusive, until exclusive, on created_at.
        (
            IncidentQuery {
                since: at(4),
                ..q()
            },
            vec![8, 7, 6, 5, 4],
        ),
        (
            IncidentQuery {
                until: at(4),
                ..q()
            },
            vec![3, 2, 1],
        ),
        (
            IncidentQuery {
                since: at(3),
                until: at(7),
                ..q()
            },
            vec![6, 5, 4, 3],
        ),
        (
            IncidentQuery {
                since: at(7),
                ..q()
            },
            vec![8, 7],
        ),
        (
            IncidentQuery {
                service: Some("chat".into()),
                since: at(2),
                until: at(5),
                sort: IncidentSort::CreatedAsc,
                ..q()
            },
            vec![2, 4],
        ),
        (
            IncidentQuery {
                limit: 2,
                ..label(&[("provider", "openai")])
            },
            vec![8, 7],
        ),
    ];
    for (query_, expected) in cases {
        assert_eq!(query(&store, query_.clone()).await, expected, "{query_:?}");
    }
}

async fn list_sorts(f: Fixture) {
    let store = f.store;
    eight_incidents(&store).await;
    let sorted = |sort| IncidentQuery { sort, ..q() };
    assert_eq!(
        query(&store, sorted(IncidentSort::CreatedDesc)).await,
        [8, 7, 6, 5, 4, 3, 2, 1]
    );
    assert_eq!(
        query(&store, sorted(IncidentSort::CreatedAsc)).await,
        [1, 2, 3, 4, 5, 6, 7, 8]
    );
    // updated_at: 5 (T0+70), 3 (T0+60), 2 (T0+50), then creation times;
    // 7 and 8 tie on T0+7, the id breaks it.
    assert_eq!(
        query(&store, sorted(IncidentSort::UpdatedDesc)).await,
        [5, 3, 2, 8, 7, 6, 4, 1]
    );
    assert_eq!(
        query(
            &store,
            IncidentQuery {
                status: Some(StatusFilter::Open),
                limit: 3,
                ..sorted(IncidentSort::UpdatedDesc)
            }
        )
        .await,
        [2, 8, 7]
    );
    // A cursor made for another sort is refused, not misread.
    let one = get(&store, 1).await.unwrap();
    let mismatched = IncidentQuery {
        after: Some(Cursor::after(&one, IncidentSort::CreatedAsc)),
        ..q()
    };
    assert!(matches!(
        store.list_incidents(&mismatched).await,
        Err(StoreError::Rejected(_))
    ));
}

/// Walks every page of `q` at `page` incidents a page: each page's ids.
async fn pages(store: &SharedStore, mut q: IncidentQuery, page: u32) -> Vec<Vec<u64>> {
    q.limit = page;
    let mut out = Vec::new();
    loop {
        let got = store.list_incidents(&q).await.expect("page");
        assert!(got.len() <= page as usize);
        let Some(last) = got.last() else { break };
        q.after = Some(Cursor::after(last, q.sort));
        let full = got.len() == page as usize;
        out.push(got.iter().map(|i| i.id.0).collect());
        if !full {
            break;
        }
        assert!(out.len() <= 100, "paging does not end");
    }
    out
}

fn no_duplicates(ids: &[u64]) {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), ids.len(), "duplicates in {ids:?}");
}

/// 30 incidents, three per millisecond of `created_at`; even ids are
/// gpt-4o, odd ones claude; every 4th resolved, every 5th (not 4th)
/// acknowledged, at distinct instants.
async fn thirty_incidents(store: &SharedStore) {
    let mut writes = Vec::new();
    for id in 1..=30u64 {
        let model = if id % 2 == 0 { "gpt-4o" } else { "claude" };
        let (mut incident, w) = open_labeled(id, &[("model", model)], T0 + (id / 3) as i64);
        writes.push(w);
        if id % 4 == 0 {
            writes.push(resolve(&mut incident, T0 + 1_000 + id as i64));
        } else if id % 5 == 0 {
            writes.push(acknowledge(&mut incident, T0 + 500 + id as i64));
        }
    }
    commit(store, writes).await;
}

async fn list_pages_cover_everything_once(f: Fixture) {
    let store = f.store;
    thirty_incidents(&store).await;
    let filters = [
        q(),
        IncidentQuery {
            status: Some(StatusFilter::Open),
            labels: labels_of(&[("model", "gpt-4o")]),
            ..q()
        },
        IncidentQuery {
            status: Some(StatusFilter::Is(IncidentStatus::Resolved)),
            ..q()
        },
        IncidentQuery {
            since: Some(Timestamp(T0 + 2)),
            until: Some(Timestamp(T0 + 9)),
            ..q()
        },
    ];
    for filter in filters {
        for sort in IncidentSort::ALL {
            let all_q = IncidentQuery {
                sort,
                limit: 1_000,
                ..filter.clone()
            };
            let all = query(&store, all_q.clone()).await;
            assert!(!all.is_empty(), "{all_q:?}");
            for page in [1, 4, 7, 1_000] {
                let got = pages(&store, all_q.clone(), page).await;
                let flat: Vec<u64> = got.iter().flatten().copied().collect();
                assert_eq!(flat, all, "{sort:?} page {page} of {filter:?}: {got:?}");
                no_duplicates(&flat);
                let (last, full) = got.split_last().expect("one page at least");
                assert!(full.iter().all(|p| p.len() == page as usize));
                assert!(!last.is_empty());
            }
        }
    }
    // The page after the last one is empty.
    let newest = get(&store, 30).await.unwrap();
    let past_the_end = IncidentQuery {
        sort: IncidentSort::CreatedAsc,
        after: Some(Cursor::after(&newest, IncidentSort::CreatedAsc)),
        ..q()
    };
    assert!(query(&store, past_the_end).await.is_empty());
}

/// New incidents arriving between pages neither shift nor repeat rows:
/// newest-first paging goes on with the older ones; oldest-first paging
/// reaches the new ones in their place.
async fn list_pages_stable_when_incidents_arrive(f: Fixture) {
    let store = f.store;
    thirty_incidents(&store).await;
    let mut next_id = 100;
    for sort in [IncidentSort::CreatedDesc, IncidentSort::CreatedAsc] {
        let base = IncidentQuery {
            sort,
            limit: 1_000,
            ..q()
        };
        let before = query(&store, base.clone()).await;
        let mut page_q = IncidentQuery { limit: 7, ..base };
        let mut seen = Vec::new();
        let mut arrived = Vec::new();
        loop {
            let got = store.list_incidents(&page_q).await.unwrap();
            seen.extend(got.iter().map(|i| i.id.0));
            let Some(last) = got.last() else { break };
            let cursor = Cursor::after(last, sort);
            page_q.after = Some(cursor);
            // Between pages: a new incident in the cursor's own millisecond
            // (a higher id), one newer than everything, and a change to an
            // older incident.
            let (_, a) = open_labeled(next_id, &[("model", "new")], cursor.at.as_millis());
            let (_, b) = open_labeled(next_id + 1, &[("model", "new")], T0 + next_id as i64);
            arrived.extend([next_id, next_id + 1]);
            next_id += 2;
            let mut writes = vec![a, b];
            let mut oldest = get(&store, 1 + seen.len() as u64 % 30).await.unwrap();
            if oldest.status.is_open() {
                writes.push(resolve(&mut oldest, T0 + 5_000 + next_id as i64));
            }
            commit(&store, writes).await;
            if got.len() < 7 {
                break;
            }
        }
        no_duplicates(&seen);
        let old: Vec<u64> = seen
            .iter()
            .copied()
            .filter(|id| before.contains(id))
            .collect();
        assert_eq!(old, before, "{sort:?}: no gap, no shift");
        let new: Vec<u64> = seen
            .iter()
            .copied()
            .filter(|id| !before.contains(id))
            .collect();
        match sort {
            // Everything that arrived is newer than (or ties with, at a
            // higher id) the cursor: behind a newest-first reader.
            IncidentSort::CreatedDesc => assert!(new.is_empty(), "{new:?}"),
            // Ahead of an oldest-first reader: listed, each once, in order.
            _ => {
                assert!(new.iter().all(|id| arrived.contains(id)), "{new:?}");
                assert!(!new.is_empty());
                let all = query(
                    &store,
                    IncidentQuery {
                        sort,
                        limit: 1_000,
                        ..q()
                    },
                )
                .await;
                let listed_in_order: Vec<u64> =
                    all.iter().copied().filter(|id| seen.contains(id)).collect();
                assert_eq!(seen, listed_in_order);
            }
        }
    }
}

/// With `updated_desc`, an incident changed between two pages moves to the
/// front: one already listed is not listed again; one not yet listed is
/// skipped (the documented cost of keyset paging on a mutable key).
async fn list_pages_by_updated_when_incidents_change(f: Fixture) {
    let store = f.store;
    let mut incidents = Vec::new();
    let mut writes = Vec::new();
    for id in 1..=10u64 {
        let (incident, w) = open_labeled(id, &[("model", "gpt-4o")], T0 + id as i64);
        incidents.push(incident);
        writes.push(w);
    }
    commit(&store, writes).await;
    let mut page_q = IncidentQuery {
        sort: IncidentSort::UpdatedDesc,
        limit: 4,
        ..q()
    };
    let first = store.list_incidents(&page_q).await.unwrap();
    let first_ids: Vec<u64> = first.iter().map(|i| i.id.0).collect();
    assert_eq!(first_ids, [10, 9, 8, 7]);
    page_q.after = Some(Cursor::after(first.last().unwrap(), page_q.sort));
    // 9 was listed, 2 was not: both change now.
    let a = acknowledge(&mut incidents[8], T0 + 100);
    let b = acknowledge(&mut incidents[1], T0 + 101);
    commit(&store, vec![a, b]).await;
    let rest: Vec<u64> = pages(&store, page_q, 4).await.concat();
    assert_eq!(rest, [6, 5, 4, 3, 1]);
    let fresh = query(
        &store,
        IncidentQuery {
            sort: IncidentSort::UpdatedDesc,
            ..q()
        },
    )
    .await;
    assert_eq!(fresh, [2, 9, 10, 8, 7, 6, 5, 4, 3, 1]);
}

/// One `#[tokio::test]` per (backend, check). `durable` checks need a store
/// that outlives its connections, so they skip the in-memory SQLite;
/// `lists` and `everywhere` checks also run on the core's in-memory store.
macro_rules! contract {
    (
        all: [$($all:ident),* $(,)?],
        durable: [$($durable:ident),* $(,)?],
        lists: [$($lists:ident),* $(,)?],
        everywhere: [$($everywhere:ident),* $(,)?] $(,)?
    ) => {
        mod sqlite_file {
            $( #[tokio::test] async fn $all() { super::$all(super::sqlite_file().await).await } )*
            $( #[tokio::test] async fn $durable() { super::$durable(super::sqlite_file().await).await } )*
            $( #[tokio::test] async fn $lists() { super::$lists(super::sqlite_file().await).await } )*
            $( #[tokio::test] async fn $everywhere() { super::$everywhere(super::sqlite_file().await).await } )*
        }
        mod sqlite_memory {
            $( #[tokio::test] async fn $all() { super::$all(super::sqlite_memory().await).await } )*
            $( #[tokio::test] async fn $lists() { super::$lists(super::sqlite_memory().await).await } )*
            $( #[tokio::test] async fn $everywhere() { super::$everywhere(super::sqlite_memory().await).await } )*
        }
        mod postgres {
            $( #[tokio::test] async fn $all() { super::$all(super::postgres().await).await } )*
            $( #[tokio::test] async fn $durable() { super::$durable(super::postgres().await).await } )*
            $( #[tokio::test] async fn $lists() { super::$lists(super::postgres().await).await } )*
            $( #[tokio::test] async fn $everywhere() { super::$everywhere(super::postgres().await).await } )*
        }
        mod memory {
            $( #[tokio::test] async fn $lists() { super::$lists(super::memory().await).await } )*
            $( #[tokio::test] async fn $everywhere() { super::$everywhere(super::memory().await).await } )*
        }
    };
}

contract! {
    all: [
        round_trip,
        timeline_in_order,
        alert_rows,
        open_incidents_and_max_id,
        touches_raise_last_seen_and_count,
        touch_snapshot_replaces_only_its_own_version,
        silences_are_saved_listed_and_recorded_once,
        duplicate_open_fingerprint_rolls_back_the_batch,
        resolved_incident_frees_its_fingerprint,
        large_batch,
    ],
    durable: [survives_reopen, heartbeats_survive_reopen, deliveries_survive_reopen],
    // The incident list, also on the core's in-memory store (the reference).
    lists: [
        list_filters,
        list_by_service_severity_labels_and_time,
        list_sorts,
        list_pages_cover_everything_once,
        list_pages_stable_when_incidents_arrive,
        list_pages_by_updated_when_incidents_change,
    ],
    // Also on the core's in-memory store, which the actor tests run on.
    everywhere: [
        heartbeats_saved_loaded_and_upserted,
        deliveries_written_pending_with_their_commit,
        delivery_keys_are_inserted_once,
        record_attempt_follows_the_domain,
        rejected_batch_writes_no_deliveries,
        attempts_commit_with_their_batch,
    ],
}

// ------------------------------------------------- opening, per backend

#[tokio::test]
async fn sqlite_creates_the_file_and_its_folders() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nested").join("deeper").join("lim.db");
    assert!(!path.parent().unwrap().exists());
    let url = format!("sqlite://{}", path.display());
    let store = SqliteStore::open(&url).await.expect("open");
    assert!(path.is_file());

    let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let (sync,): (i64,) = sqlx::query_as("PRAGMA synchronous")
        .fetch_one(store.pool())
        .await
        .unwrap();
    // NORMAL: a commit does not sync the WAL itself; the store syncs it
    // after the commit, outside the write lock, before the write is
    // answered (src/store/group_sync.rs). Durability is FULL's.
    assert_eq!(sync, 1, "synchronous=NORMAL");
    let (fk,): (i64,) = sqlx::query_as("PRAGMA foreign_keys")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(fk, 1);
    let (busy,): (i64,) = sqlx::query_as("PRAGMA busy_timeout")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(busy, 5_000);
    store.close().await;
}

#[tokio::test]
async fn sqlite_relative_url_like_the_default() {
    // `sqlite://./data/lim.db` is relative to the working directory; use a
    // relative path to a temporary folder (under target/ when it is below
    // the working directory) without changing directory.
    let cwd = std::env::current_dir().unwrap();
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let dir = match dir.path().strip_prefix(&cwd) {
        Ok(_) => dir,
        Err(_) => tempfile::tempdir_in(".").unwrap(),
    };
    let relative = dir.path().strip_prefix(&cwd).unwrap().display().to_string();
    let url = format!("sqlite://./{relative}/data/lim.db");
    let store = open_store(&url).await.expect("open relative");
    store.ping().await.unwrap();
    assert!(dir.path().join("data").join("lim.db").is_file());
}

#[tokio::test]
async fn postgres_creates_a_missing_database() {
    let url = support::missing_postgres_url();
    // Two at once: both find it missing, one creates it, both succeed.
    let (a, b) = tokio::join!(open_store(&url), open_store(&url));
    let (a, b) = (a.expect("first open"), b.expect("second open"));
    let (incident, w) = open(1, "Fresh", T0);
    commit(&a, vec![w]).await;
    assert_eq!(get(&b, 1).await.as_ref(), Some(&incident));
    drop((a, b));
    let again = PostgresStore::open(&url).await.expect("open existing");
    assert_eq!(
        again.pool().connect_options().get_database(),
        Some(url.rsplit('/').next().unwrap())
    );
    again.close().await;
}

#[tokio::test]
async fn unknown_schemes_are_refused() {
    for url in [
        "mysql://root:secret@localhost/lim",
        "lim.db",
        "redis://x",
        "",
    ] {
        match open_store(url).await {
            Err(e @ StoreOpenError::UnsupportedScheme { .. }) => {
                let message = e.to_string();
                assert!(message.contains("sqlite"), "{message}");
                assert!(!message.contains("secret"), "{message}");
            }
            Err(other) => panic!("{url}: expected UnsupportedScheme, got {other}"),
            Ok(_) => panic!("{url}: opened"),
        }
    }
}

/// SQLite's label index (`incident_labels`): one row per label of every
/// incident, however many times the incident is written, and only a list
/// of candidates (each is checked against the incident's own labels).
#[tokio::test]
async fn sqlite_label_index_follows_the_incidents() {
    let (_dir, url) = support::temp_sqlite_url();
    let store = SqliteStore::open(&url).await.unwrap();
    let shared: SharedStore = std::sync::Arc::new(store.clone());
    eight_incidents(&shared).await;
    // Written again (an update, not an insert): no second set of rows.
    let mut one = get(&shared, 1).await.unwrap();
    let w = resolve(&mut one, T0 + 90);
    commit(&shared, vec![w]).await;
    let count = |sql: &'static str| {
        let pool = store.pool().clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
            n
        }
    };
    let resolved_gpt = IncidentQuery {
        status: Some(StatusFilter::Is(IncidentStatus::Resolved)),
        labels: labels_of(&[("model", "gpt-4o")]),
        ..IncidentQuery::default()
    };
    assert_eq!(query(&shared, resolved_gpt.clone()).await, [5, 1]);
    // Counted after that list, which caught the index up (`label_backlog`).
    assert_eq!(count("SELECT COUNT(*) FROM incident_labels").await, 38);
    assert_eq!(
        count("SELECT COUNT(*) FROM incidents, json_each(incidents.labels)").await,
        38
    );
    // A row of the label index that no longer holds is not a match.
    sqlx::query("UPDATE incidents SET labels = '{\"model\":\"claude\"}' WHERE id = 5")
        .execute(store.pool())
        .await
        .unwrap();
    assert_eq!(query(&shared, resolved_gpt).await, [1]);
    // Reopened (the migration is not run twice), the store indexes new ones.
    drop(shared);
    store.close().await;
    let shared = open_store(&url).await.unwrap();
    let (_, w) = open_labeled(9, &[("model", "gpt-4o")], T0 + 100);
    commit(&shared, vec![w]).await;
    let gpt = IncidentQuery {
        labels: labels_of(&[("model", "gpt-4o")]),
        ..IncidentQuery::default()
    };
    assert_eq!(query(&shared, gpt).await, [9, 8, 7, 4, 2, 1]);
}

#[tokio::test]
async fn sqlite_undecodable_snapshot_is_corrupt() {
    let (_dir, url) = support::temp_sqlite_url();
    let store = SqliteStore::open(&url).await.unwrap();
    let shared: SharedStore = std::sync::Arc::new(store.clone());
    let (_, w) = open(1, "Broken", T0);
    commit(&shared, vec![w]).await;
    sqlx::query("UPDATE incidents SET state = ?1 WHERE id = 1")
        .bind(vec![99u8, 1, 2])
        .execute(store.pool())
        .await
        .unwrap();
    assert_corrupt(&shared).await;
}

#[tokio::test]
async fn postgres_undecodable_snapshot_is_corrupt() {
    let url = support::fresh_postgres_url().await;
    let store = PostgresStore::open(&url).await.unwrap();
    let shared: SharedStore = std::sync::Arc::new(store.clone());
    let (_, w) = open(1, "Broken", T0);
    commit(&shared, vec![w]).await;
    sqlx::query("UPDATE incidents SET state = $1 WHERE id = 1")
        .bind(vec![99u8, 1, 2])
        .execute(store.pool())
        .await
        .unwrap();
    assert_corrupt(&shared).await;
}

async fn assert_corrupt(store: &SharedStore) {
    for result in [
        store.get_incident(IncidentId(1)).await.map(|_| ()),
        store.load_open_incidents().await.map(|_| ()),
        store
            .list_incidents(&IncidentQuery::default())
            .await
            .map(|_| ()),
    ] {
        match result {
            Err(StoreError::Corrupt { id, .. }) => assert_eq!(id, IncidentId(1)),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }
}

#[test]
fn postgres_urls_get_their_database_replaced() {
    use support::postgres_url_with_database as with;
    assert_eq!(
        with("postgres://u@h:5432/test", "x"),
        "postgres://u@h:5432/x"
    );
    assert_eq!(
        with("postgres://u:p@h/test?sslmode=disable", "x"),
        "postgres://u:p@h/x?sslmode=disable"
    );
    assert_eq!(with("postgres://h", "x"), "postgres://h/x");
}

/// SQLite checkpoints its WAL off the commit path: a commit's own
/// auto-checkpoint is only a backstop (4,096 pages), and a task of the
/// store copies the WAL into the database file within a few 500 ms
/// intervals of the last commit.
#[tokio::test]
async fn sqlite_checkpoints_the_wal_in_the_background() {
    let (dir, url) = support::temp_sqlite_url();
    let store = SqliteStore::open(&url).await.unwrap();
    let shared: SharedStore = std::sync::Arc::new(store.clone());
    let (pages,): (i64,) = sqlx::query_as("PRAGMA wal_autocheckpoint")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(pages, 4_096);
    for id in 1..=50 {
        let (_, w) = open(id, &format!("Wal{id}"), T0 + id as i64);
        commit(&shared, vec![w]).await;
    }
    // Every page of the database is in its file once a checkpoint ran
    // (before, the new ones are only in the WAL).
    let file = dir.path().join("lim.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (count,): (i64,) = sqlx::query_as("PRAGMA page_count")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let (size,): (i64,) = sqlx::query_as("PRAGMA page_size")
            .fetch_one(store.pool())
            .await
            .unwrap();
        let on_disk = std::fs::metadata(&file).unwrap().len();
        if on_disk == (count * size) as u64 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "WAL not checkpointed: {on_disk} bytes in the file, {count} pages of {size}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(open_ids(&shared).await.len(), 50);
}

/// Rows of SQLite's label index and of its backlog (`label_backlog`).
async fn label_rows(store: &SqliteStore) -> (i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM incident_labels), \
         (SELECT count(*) FROM incident_labels_backlog)",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
}

/// SQLite's label index follows the commits in transactions of its own: a
/// task of the store catches it up within a few 250 ms intervals with no
/// list asking, and a resolve's new `updated_at` reaches it the same way.
#[tokio::test]
async fn sqlite_label_index_catches_up_in_the_background() {
    let (_dir, url) = support::temp_sqlite_url();
    let store = SqliteStore::open(&url).await.unwrap();
    let shared: SharedStore = std::sync::Arc::new(store.clone());
    let mut incidents = Vec::new();
    for id in 1..=20 {
        let (incident, w) = open_labeled(id, &[("model", "gpt-4o")], T0 + id as i64);
        commit(&shared, vec![w]).await;
        incidents.push(incident);
    }
    // Two labels each (`alertname` and `model`), nothing left named.
    let caught_up = || {
        let store = store.clone();
        async move { label_rows(&store).await == (40, 0) }
    };
    within_10s("the label index caught up", caught_up).await;
    let w = resolve(&mut incidents[4], T0 + 1_000);
    commit(&shared, vec![w]).await;
    within_10s("the resolve's updated_at in the label index", || {
        let store = store.clone();
        async move {
            let (moved,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM incident_labels WHERE incident_id = 5 AND updated_at = ?1",
            )
            .bind(T0 + 1_000)
            .fetch_one(store.pool())
            .await
            .unwrap();
            moved == 2
        }
    })
    .await;
    within_10s("the label index caught up", caught_up).await;
}

/// Polls `check` every 50 ms until it holds; fails naming `what` after 10 s
/// (a background task's work, not a speed: the interval is 250 ms).
async fn within_10s<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !check().await {
        assert!(
            std::time::Instant::now() < deadline,
            "not within 10 s: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// What a crash between a commit and its label catch-up leaves (the
/// incident named in the backlog, its label rows not written) is caught up
/// after a restart, and before the first list with a label filter: the
/// list finds the incident, by either order.
#[tokio::test]
async fn sqlite_label_backlog_left_by_a_crash_is_caught_up_before_a_list() {
    let (_dir, url) = support::temp_sqlite_url();
    {
        let store = SqliteStore::open(&url).await.unwrap();
        let shared: SharedStore = std::sync::Arc::new(store.clone());
        for id in 1..=3 {
            let (_, w) = open_labeled(id, &[("tenant", "acme")], T0 + id as i64);
            commit(&shared, vec![w]).await;
        }
        // Caught up (a list asks for it), then put back as a crash leaves it.
        let acme = IncidentQuery {
            labels: labels_of(&[("tenant", "acme")]),
            ..q()
        };
        assert_eq!(query(&shared, acme).await, vec![3, 2, 1]);
        sqlx::query(
            "DELETE FROM incident_labels WHERE incident_id = 2; \
             INSERT INTO incident_labels_backlog (incident_id) VALUES (2);",
        )
        .execute(store.pool())
        .await
        .unwrap();
        store.close().await;
    }
    let store = SqliteStore::open(&url).await.unwrap();
    let shared: SharedStore = std::sync::Arc::new(store.clone());
    for sort in [IncidentSort::CreatedDesc, IncidentSort::UpdatedDesc] {
        for status in [None, Some(StatusFilter::Open)] {
            let acme = IncidentQuery {
                labels: labels_of(&[("tenant", "acme")]),
                status,
                sort,
                ..q()
            };
            assert_eq!(
                query(&shared, acme).await,
                vec![3, 2, 1],
                "{sort:?} {status:?}"
            );
        }
    }
    assert_eq!(label_rows(&store).await, (6, 0));
}
