//! The HTTP API end to end without a socket: `app(state)` driven with
//! `tower::ServiceExt::oneshot`, over a real SQLite store in a temporary folder.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::console::ConsoleChannel;
use incident_actors::domain::{
    Alert, AlertStatus, Attribution, EscalationPolicy, Fingerprint, Incident, IncidentId,
    Interface, Labels,
};
use incident_actors::memory_store::MemoryStore;
use incident_actors::ports::{IncidentWrite, SharedStore, WriteBatch};
use incident_actors::time::{SystemClock, Timestamp};
use incident_actors::{spawn_system, System, SystemConfig, SystemDeps};
use lim::http::{app, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Harness {
    _dir: tempfile::TempDir,
    system: System,
    state: AppState,
}

async fn start(store: SharedStore) -> System {
    spawn_system(
        SystemConfig::default(),
        SystemDeps {
            store,
            clock: Arc::new(SystemClock),
            channels: vec![Arc::<ConsoleChannel>::default()],
        },
    )
    .await
    .expect("spawn system")
}

async fn harness() -> Harness {
    let (dir, url) = support::temp_sqlite_url();
    let store = lim::store::open_store(&url)
        .await
        .expect("open sqlite store");
    let system = start(store).await;
    Harness {
        _dir: dir,
        state: AppState::ready(system.clone()),
        system,
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

async fn send(
    state: &AppState,
    method: Method,
    uri: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(ct) = content_type {
        request = request.header(header::CONTENT_TYPE, ct);
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or_else(|e| {
            panic!(
                "{uri}: response is not JSON ({e}): {}",
                String::from_utf8_lossy(&bytes)
            )
        })
    };
    Reply {
        status,
        headers,
        body,
    }
}

async fn get(state: &AppState, uri: &str) -> Reply {
    send(state, Method::GET, uri, None, Vec::new()).await
}

async fn post_json(state: &AppState, uri: &str, body: Value) -> Reply {
    send(
        state,
        Method::POST,
        uri,
        Some("application/json"),
        body.to_string().into_bytes(),
    )
    .await
}

fn high_latency() -> Value {
    json!({
        "labels": {"alertname": "HighLatency", "model": "gpt-4o", "service": "chat", "severity": "critical"},
        "annotations": {"summary": "p99 latency 4.2s"}
    })
}

fn fingerprint(labels: Value) -> String {
    let labels: Labels = serde_json::from_value(labels).unwrap();
    Fingerprint::of_labels(&labels).to_string()
}

async fn incident_count(state: &AppState) -> usize {
    let r = get(state, "/v1/incidents").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["incidents"].as_array().unwrap().len()
}

#[tokio::test]
async fn alert_to_incident_lifecycle() {
    let h = harness().await;
    let s = &h.state;

    let r = post_json(s, "/v1/alerts", high_latency()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let first = &r.body["results"][0];
    assert_eq!(first["action"], "created");
    assert_eq!(
        first["fingerprint"],
        fingerprint(high_latency()["labels"].clone())
    );
    let id = first["incident_id"].as_u64().expect("incident id");

    // The same alert again joins the same incident and changes nothing.
    let r = post_json(s, "/v1/alerts", high_latency()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let again = &r.body["results"][0];
    assert!(
        matches!(again["action"].as_str(), Some("unchanged" | "joined")),
        "{again}"
    );
    assert_eq!(again["incident_id"].as_u64(), Some(id));

    let r = get(s, "/v1/incidents?status=triggered").await;
    assert_eq!(r.status, StatusCode::OK);
    let list = r.body["incidents"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{}", r.body);
    let view = &list[0];
    assert_eq!(view["id"].as_u64(), Some(id));
    assert_eq!(view["status"], "triggered");
    assert_eq!(view["title"], "p99 latency 4.2s");
    assert_eq!(view["service"], "chat");
    assert_eq!(view["severity"], "critical");
    assert_eq!(view["alert_count"], 1);
    assert!(view["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(view["escalation"].is_object());
    assert_eq!(incident_count(s).await, 1);
    let r = get(s, "/v1/incidents?status=acknowledged").await;
    assert_eq!(r.body["incidents"].as_array().unwrap().len(), 0);

    let r = get(s, &format!("/v1/incidents/{id}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"].as_u64(), Some(id));
    let alerts = r.body["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1, "a repeat is not a row: {}", r.body);
    assert_eq!(alerts[0]["labels"]["alertname"], "HighLatency");
    assert_eq!(alerts[0]["source"], "native");
    let timeline = r.body["timeline"].as_array().unwrap();
    assert_eq!(timeline[0]["type"], "triggered", "{}", r.body);

    let r = post_json(
        s,
        &format!("/v1/incidents/{id}/acknowledge"),
        json!({"by": "alice"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "acknowledged");
    assert_eq!(r.body["acknowledged_by"], "alice");
    assert!(r.body["acknowledged_at"].is_string());

    let r = get(s, "/v1/incidents?status=open").await;
    assert_eq!(r.body["incidents"][0]["status"], "acknowledged");
    let r = get(s, &format!("/v1/incidents/{id}")).await;
    let kinds: Vec<_> = r.body["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap().to_string())
        .collect();
    assert!(kinds.contains(&"acknowledged".to_string()), "{kinds:?}");

    // Resolve with an empty body: attributed to "api".
    let r = send(
        s,
        Method::POST,
        &format!("/v1/incidents/{id}/resolve"),
        None,
        Vec::new(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "resolved");
    assert_eq!(r.body["resolved_by"], "api");

    let r = post_json(
        s,
        &format!("/v1/incidents/{id}/acknowledge"),
        json!({"by": "bob"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "conflict");
    let r = post_json(s, &format!("/v1/incidents/{id}/resolve"), json!({})).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);

    let r = get(s, "/v1/incidents?status=resolved&limit=10").await;
    assert_eq!(r.body["incidents"].as_array().unwrap().len(), 1);

    h.system.shutdown().await;
}

#[tokio::test]
async fn unknown_and_invalid_ids() {
    let h = harness().await;
    let s = &h.state;
    for uri in [
        "/v1/incidents/999",
        "/v1/incidents/999/acknowledge",
        "/v1/incidents/999/resolve",
    ] {
        let r = if uri.ends_with("999") {
            get(s, uri).await
        } else {
            post_json(s, uri, json!({})).await
        };
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.body);
        assert_eq!(r.code(), "not_found");
    }
    let r = get(s, "/v1/incidents/abc").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "invalid_parameter");
    let r = post_json(s, "/v1/incidents/abc/acknowledge", json!({})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    for uri in [
        "/v1/incidents?status=closed",
        "/v1/incidents?limit=0",
        "/v1/incidents?limit=1001",
        "/v1/incidents?limit=x",
    ] {
        let r = get(s, uri).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(r.code(), "invalid_parameter", "{uri}");
    }
    h.system.shutdown().await;
}

#[tokio::test]
async fn bad_requests_are_json_errors_and_store_nothing() {
    let h = harness().await;
    let s = &h.state;

    let r = send(
        s,
        Method::POST,
        "/v1/alerts",
        Some("application/json"),
        b"{\"labels\":".to_vec(),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_json"),
        "{}",
        r.body
    );

    let body = high_latency().to_string().into_bytes();
    let r = send(
        s,
        Method::POST,
        "/v1/alerts",
        Some("text/plain"),
        body.clone(),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let r = send(s, Method::POST, "/v1/alerts", None, body).await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // Valid JSON just over 1 MiB.
    let big = json!({"labels": {"a": "1"}, "annotations": {"blob": "x".repeat(1 << 20)}});
    let r = post_json(s, "/v1/alerts", big).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    );

    let r = post_json(
        s,
        "/v1/alerts",
        json!({"annotations": {"summary": "no labels"}}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    assert!(
        r.message().contains("missing field `labels`"),
        "{}",
        r.message()
    );

    let r = post_json(s, "/v1/alerts", json!({"labels": {}})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    assert!(
        r.message().contains("labels") && r.message().contains("alert 0"),
        "{}",
        r.message()
    );

    // One bad alert in a batch rejects the whole batch, before anything is ingested.
    let r = post_json(
        s,
        "/v1/alerts",
        json!({"alerts": [high_latency(), {"labels": {}}]}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.message().contains("alert 1") && r.message().contains("labels"),
        "{}",
        r.message()
    );

    let r = post_json(
        s,
        "/v1/alerts",
        json!({"labels": {"a": "1"}, "status": "burning"}),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );

    assert_eq!(
        incident_count(s).await,
        0,
        "a bad request must store nothing"
    );

    // Command bodies: wrong shape, empty actor, wrong type.
    let r = post_json(s, "/v1/alerts", high_latency()).await;
    let id = r.body["results"][0]["incident_id"].as_u64().unwrap();
    let ack = format!("/v1/incidents/{id}/acknowledge");
    let r = post_json(s, &ack, json!({"by": ""})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    let r = post_json(s, &ack, json!({"by": 5})).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_body")
    );
    let r = send(
        s,
        Method::POST,
        &ack,
        Some("text/plain"),
        b"by=alice".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let r = get(s, "/v1/incidents").await;
    assert_eq!(
        r.body["incidents"][0]["status"], "triggered",
        "rejected commands change nothing"
    );

    // Unknown routes and wrong methods answer JSON too.
    let r = get(s, "/v1/nope").await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
    let r = get(s, "/v1/alerts").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    );
    let r = send(s, Method::DELETE, "/v1/incidents", None, Vec::new()).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);

    h.system.shutdown().await;
}

#[tokio::test]
async fn not_ready_until_the_system_is_set() {
    let state = AppState::new();
    let r = get(&state, "/healthz").await;
    assert_eq!(r.status, StatusCode::OK);
    let r = get(&state, "/readyz").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    );
    let r = get(&state, "/v1/incidents").await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    );
    // Not ready wins over a bad body: nothing is read before the system is up.
    let r = send(
        &state,
        Method::POST,
        "/v1/alerts",
        Some("application/json"),
        b"{".to_vec(),
    )
    .await;
    assert_eq!(r.code(), "not_ready");
    let r = post_json(&state, "/v1/incidents/1/acknowledge", json!({})).await;
    assert_eq!(r.code(), "not_ready");

    let (_dir, url) = support::temp_sqlite_url();
    let system = start(lim::store::open_store(&url).await.unwrap()).await;
    assert!(state.set_system(system.clone()).is_ok());
    let r = get(&state, "/readyz").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"status": "ready"}));
    let r = get(&state, "/v1/incidents").await;
    assert_eq!(r.status, StatusCode::OK);

    // A stopped system is not ready either.
    system.shutdown().await;
    let r = get(&state, "/readyz").await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn batch_results_follow_input_order() {
    let h = harness().await;
    let s = &h.state;
    let alerts = json!([
        {"labels": {"alertname": "A", "model": "gpt-4o"}},
        {"labels": {"alertname": "B", "model": "claude"}},
        {"labels": {"alertname": "A", "model": "gpt-4o"}},
        {"labels": {"alertname": "C"}, "dedup_key": "group-1"},
        {"labels": {"alertname": "D"}, "dedup_key": "group-1"},
        {"labels": {"alertname": "B", "model": "claude"}, "status": "resolved"},
    ]);
    let r = post_json(s, "/v1/alerts", json!({"alerts": alerts})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 6);
    for (i, result) in results.iter().enumerate() {
        assert_eq!(
            result["fingerprint"],
            fingerprint(alerts[i]["labels"].clone()),
            "result {i}"
        );
    }
    let actions: Vec<_> = results
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "created",
            "created",
            "unchanged",
            "created",
            "joined",
            "resolved"
        ]
    );
    let ids: Vec<_> = results
        .iter()
        .map(|r| r["incident_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids[0], ids[2]);
    assert_eq!(ids[3], ids[4]);
    assert_eq!(ids[1], ids[5]);
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[0], ids[3]);

    let r = get(s, "/v1/incidents?status=open").await;
    assert_eq!(r.body["incidents"].as_array().unwrap().len(), 2);
    let r = get(s, &format!("/v1/incidents/{}", ids[3])).await;
    assert_eq!(r.body["alert_count"], 2);
    h.system.shutdown().await;
}

#[tokio::test]
async fn overload_and_store_failure_answer_503_with_retry_after() {
    let h = harness().await;
    let s = &h.state;
    let all = s.try_reserve_ingest(usize::MAX).unwrap();
    let r = post_json(s, "/v1/alerts", high_latency()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "overloaded")
    );
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    drop(all);
    let r = post_json(s, "/v1/alerts", high_latency()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    h.system.shutdown().await;

    // A store that refuses writes: 503 `unavailable`, nothing acknowledged.
    let store = Arc::new(MemoryStore::new());
    let system = start(store.clone()).await;
    let state = AppState::ready(system.clone());
    store.set_failing(true);
    let r = post_json(&state, "/v1/alerts", high_latency()).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
        "{}",
        r.body
    );
    assert_eq!(r.headers[header::RETRY_AFTER], "1");
    store.set_failing(false);
    let r = post_json(&state, "/v1/alerts", high_latency()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["results"][0]["action"], "created");
    system.shutdown().await;
}

// ------------------------------------------------------ the incident list

/// What happens to a seeded incident after it opens, and when.
enum Then {
    Acknowledged(&'static str),
    Resolved(&'static str),
}

fn at(rfc3339: &str) -> Timestamp {
    Timestamp::parse_rfc3339(rfc3339).expect("RFC 3339")
}

/// The writes of incident `id`: opened at `created` for an alert with
/// `labels` (plus a unique alertname), then acknowledged or resolved (an
/// open seed without an acknowledge would page at once on start).
fn seed(id: u64, labels: &[(&str, &str)], created: &str, then: Then) -> Vec<IncidentWrite> {
    let mut all: Labels = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.insert("alertname".into(), format!("Seeded{id}"));
    let alert = Alert {
        labels: all,
        annotations: Labels::new(),
        status: AlertStatus::Firing,
        starts_at: at(created),
        ends_at: None,
        source: "native".into(),
        dedup_key: None,
        extra: None,
    };
    let policy = EscalationPolicy::default_console();
    let write = |incident: &mut Incident, change: incident_actors::domain::Change, when| {
        incident.bump_version();
        IncidentWrite {
            incident: incident.clone(),
            events: change.events,
            alerts: change.alerts,
            received_at: when,
            deliveries: Vec::new(),
        }
    };
    let (mut incident, change) = Incident::open(IncidentId(id), alert, &policy, at(created));
    let mut writes = vec![write(&mut incident, change, at(created))];
    let by = Attribution::new("seed", Interface::Api);
    match then {
        Then::Acknowledged(when) => {
            let change = incident.acknowledge(by, &policy, at(when)).unwrap();
            writes.push(write(&mut incident, change, at(when)));
        }
        Then::Resolved(when) => {
            let change = incident.resolve(by, at(when)).unwrap();
            writes.push(write(&mut incident, change, at(when)));
        }
    }
    writes
}

/// A harness whose store holds `writes` before the system starts.
async fn seeded_harness(writes: Vec<Vec<IncidentWrite>>) -> Harness {
    let (dir, url) = support::temp_sqlite_url();
    let store = lim::store::open_store(&url)
        .await
        .expect("open sqlite store");
    store
        .commit(&WriteBatch {
            incidents: writes.concat(),
            touches: Vec::new(),
            attempts: Vec::new(),
        })
        .await
        .expect("seed");
    let system = start(store).await;
    Harness {
        _dir: dir,
        state: AppState::ready(system.clone()),
        system,
    }
}

/// The ids of a list answer, checking it is a 200 with `next_cursor`.
async fn listed(state: &AppState, uri: &str) -> (Vec<u64>, Option<String>) {
    let r = get(state, uri).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    let ids = r.body["incidents"]
        .as_array()
        .unwrap_or_else(|| panic!("{uri}: {}", r.body))
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    let next = &r.body["next_cursor"];
    assert!(next.is_null() || next.is_string(), "{uri}: {}", r.body);
    (ids, next.as_str().map(str::to_string))
}

#[tokio::test]
async fn incident_list_filters() {
    let h = seeded_harness(vec![
        seed(
            1,
            &[
                ("model", "gpt-4o"),
                ("provider", "openai"),
                ("service", "chat"),
                ("severity", "critical"),
            ],
            "2025-01-01T00:00:01Z",
            Then::Acknowledged("2025-01-01T00:00:10Z"),
        ),
        seed(
            2,
            &[
                ("model", "gpt-4o"),
                ("provider", "azure"),
                ("service", "chat"),
                ("severity", "warning"),
            ],
            "2025-01-01T00:00:02Z",
            Then::Resolved("2025-01-01T00:00:20Z"),
        ),
        seed(
            3,
            &[
                ("model", "claude"),
                ("provider", "anthropic"),
                ("service", "search"),
                ("severity", "critical"),
            ],
            "2025-01-01T00:00:03Z",
            Then::Acknowledged("2025-01-01T00:00:30Z"),
        ),
        seed(
            4,
            &[
                ("model", "gpt-4o"),
                ("provider", "openai"),
                ("service", "search"),
            ],
            "2025-01-01T00:00:04Z",
            Then::Resolved("2025-01-01T00:00:05Z"),
        ),
    ])
    .await;
    let s = &h.state;
    // Incident 5, live: created now, gpt-4o, chat, critical, no provider.
    let r = post_json(s, "/v1/alerts", high_latency()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["results"][0]["incident_id"], 5);

    for (uri, expected) in [
        ("/v1/incidents", vec![5, 4, 3, 2, 1]),
        ("/v1/incidents?status=open", vec![5, 3, 1]),
        ("/v1/incidents?status=triggered", vec![5]),
        (
            "/v1/incidents?status=acknowledged&label=model=gpt-4o",
            vec![1],
        ),
        ("/v1/incidents?label=model%3Dgpt-4o", vec![5, 4, 2, 1]),
        (
            "/v1/incidents?label=model=gpt-4o&label=provider=openai",
            vec![4, 1],
        ),
        (
            "/v1/incidents?label=model=gpt-4o&label=model=claude",
            vec![],
        ),
        ("/v1/incidents?label=tenant=acme", vec![]),
        ("/v1/incidents?service=search", vec![4, 3]),
        ("/v1/incidents?service=chat&status=resolved", vec![2]),
        ("/v1/incidents?severity=critical", vec![5, 3, 1]),
        (
            "/v1/incidents?since=2025-01-01T00:00:02Z&until=2025-01-01T00:00:04Z",
            vec![3, 2],
        ),
        (
            "/v1/incidents?since=2025-01-01T01:00:02%2B01:00&until=2025-01-01T00:00:04.000Z",
            vec![3, 2],
        ),
        ("/v1/incidents?until=2025-01-01T00:00:02Z", vec![1]),
        ("/v1/incidents?sort=created_asc&status=open", vec![1, 3, 5]),
        ("/v1/incidents?sort=created_desc", vec![5, 4, 3, 2, 1]),
        // 5 changed now; then 3 (:30), 2 (:20), 1 (:10), 4 (:05).
        ("/v1/incidents?sort=updated_desc", vec![5, 3, 2, 1, 4]),
        (
            "/v1/incidents?sort=updated_desc&label=model=gpt-4o&status=resolved",
            vec![2, 4],
        ),
    ] {
        let (ids, next) = listed(s, uri).await;
        assert_eq!(ids, expected, "{uri}");
        assert_eq!(next, None, "{uri}: a single page");
    }
    let r = get(s, "/v1/incidents?service=search").await;
    assert_eq!(r.body["incidents"][0]["service"], "search");
    assert_eq!(r.body["incidents"][0]["labels"]["model"], "gpt-4o");
    h.system.shutdown().await;
}

#[tokio::test]
async fn incident_list_pages_with_next_cursor() {
    // Seven resolved incidents, some sharing a creation second; even ids
    // are gpt-4o.
    let created = [
        "2025-01-01T00:00:01Z",
        "2025-01-01T00:00:01Z",
        "2025-01-01T00:00:02Z",
        "2025-01-01T00:00:03Z",
        "2025-01-01T00:00:03Z",
        "2025-01-01T00:00:03Z",
        "2025-01-01T00:00:04Z",
    ];
    let writes = (1..=7u64)
        .map(|id| {
            let model = if id % 2 == 0 { "gpt-4o" } else { "claude" };
            seed(
                id,
                &[("model", model)],
                created[id as usize - 1],
                Then::Resolved("2025-01-02T00:00:00Z"),
            )
        })
        .collect();
    let h = seeded_harness(writes).await;
    let s = &h.state;

    for (base, expected) in [
        ("/v1/incidents?limit=3", vec![7, 6, 5, 4, 3, 2, 1]),
        (
            "/v1/incidents?limit=3&sort=created_asc&status=resolved",
            vec![1, 2, 3, 4, 5, 6, 7],
        ),
    ] {
        let (p1, c1) = listed(s, base).await;
        let c1 = c1.expect("a second page");
        let (p2, c2) = listed(s, &format!("{base}&cursor={c1}")).await;
        let c2 = c2.expect("a third page");
        let (p3, c3) = listed(s, &format!("{base}&cursor={c2}")).await;
        assert_eq!((p1.len(), p2.len(), p3.len()), (3, 3, 1), "{base}");
        assert_eq!(c3, None, "{base}: the last page");
        assert_eq!([p1, p2, p3].concat(), expected, "{base}");
    }

    // A filtered list that ends exactly on a page boundary: no empty page.
    let base = "/v1/incidents?status=resolved&label=model=gpt-4o&limit=2";
    let (p1, c1) = listed(s, base).await;
    assert_eq!(p1, [6, 4]);
    let (p2, c2) = listed(s, &format!("{base}&cursor={}", c1.unwrap())).await;
    assert_eq!((p2, c2), (vec![2], None));
    let (all, none) = listed(s, "/v1/incidents?label=model=gpt-4o&limit=3").await;
    assert_eq!((all, none), (vec![6, 4, 2], None));

    // A cursor only works with the sort it was made for.
    let (_, c) = listed(s, "/v1/incidents?limit=1").await;
    let c = c.unwrap();
    let r = get(
        s,
        &format!("/v1/incidents?limit=1&sort=created_asc&cursor={c}"),
    )
    .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_parameter")
    );
    assert!(r.message().contains("`cursor`"), "{}", r.message());

    // An incident arriving between pages does not shift the pages.
    let (p1, c1) = listed(s, "/v1/incidents?limit=3").await;
    let r = post_json(s, "/v1/alerts", high_latency()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let (p2, _) = listed(s, &format!("/v1/incidents?limit=3&cursor={}", c1.unwrap())).await;
    assert_eq!([p1, p2].concat(), [7, 6, 5, 4, 3, 2]);
    h.system.shutdown().await;
}

#[tokio::test]
async fn incident_list_bad_parameters_name_the_parameter() {
    let h = harness().await;
    let s = &h.state;
    let other_sort = {
        let r = post_json(s, "/v1/alerts", high_latency()).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let r = post_json(s, "/v1/alerts", json!({"labels": {"alertname": "Other"}})).await;
        assert_eq!(r.status, StatusCode::ACCEPTED);
        let (_, c) = listed(s, "/v1/incidents?limit=1&sort=updated_desc").await;
        c.expect("two incidents, pages of one")
    };
    for (uri, name) in [
        ("/v1/incidents?status=closed", "status"),
        ("/v1/incidents?status=open&status=resolved", "status"),
        ("/v1/incidents?limit=0", "limit"),
        ("/v1/incidents?limit=1001", "limit"),
        ("/v1/incidents?limit=x", "limit"),
        ("/v1/incidents?sort=newest", "sort"),
        ("/v1/incidents?since=yesterday", "since"),
        ("/v1/incidents?until=2025-01-01", "until"),
        (
            "/v1/incidents?since=2025-01-02T00:00:00Z&until=2025-01-01T00:00:00Z",
            "until",
        ),
        ("/v1/incidents?label=model", "label"),
        ("/v1/incidents?label=model=", "label"),
        ("/v1/incidents?label==gpt-4o", "label"),
        ("/v1/incidents?service=", "service"),
        ("/v1/incidents?severity=", "severity"),
        ("/v1/incidents?cursor=zz", "cursor"),
        ("/v1/incidents?cursor=", "cursor"),
        (
            "/v1/incidents?cursor=10000000000000000000000000000000000",
            "cursor",
        ),
        ("/v1/incidents?labels=model=gpt-4o", "labels"),
    ] {
        let r = get(s, uri).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_parameter"),
            "{uri}: {}",
            r.body
        );
        assert!(
            r.message().contains(&format!("`{name}`")),
            "{uri}: {}",
            r.message()
        );
    }
    let r = get(s, &format!("/v1/incidents?cursor={other_sort}")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.message().contains("updated_desc"), "{}", r.message());
    let (ids, _) = listed(
        s,
        &format!("/v1/incidents?sort=updated_desc&limit=1&cursor={other_sort}"),
    )
    .await;
    assert_eq!(ids.len(), 1);
    h.system.shutdown().await;
}

#[tokio::test]
async fn oversized_alerts_are_refused_by_every_ingest_path_and_store_nothing() {
    let h = harness().await;
    let many: serde_json::Map<String, Value> =
        (0..10_000).map(|i| (format!("l{i}"), json!("v"))).collect();
    let huge = "x".repeat(10 << 20);
    let cases = [
        ("/v1/alerts", json!({"labels": many})),
        (
            "/api/v2/alerts",
            json!([{"labels": {"alertname": "Big", "summary": huge}}]),
        ),
    ];
    for (uri, body) in cases {
        let bytes = serde_json::to_vec(&body).unwrap();
        let r = send(&h.state, Method::POST, uri, Some("application/json"), bytes).await;
        assert!(r.status.is_client_error(), "{uri}: {}", r.status);
        assert!(
            !r.message().is_empty() || r.status == StatusCode::PAYLOAD_TOO_LARGE,
            "{uri}"
        );
    }
    // Within the body limit but over the label limits: a 400 naming the label.
    let r = post_json(
        &h.state,
        "/v1/alerts",
        json!({"labels": {"alertname": "Big", "value": "y".repeat(5000)}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        r.message().contains("labels.value is 5000 bytes"),
        "{}",
        r.message()
    );
    let r = post_json(&h.state, "/v1/alerts", json!({"labels": many_labels(100)})).await;
    assert!(r.message().contains("100 labels"), "{}", r.message());
    let list = get(&h.state, "/v1/incidents").await;
    assert_eq!(
        list.body["incidents"].as_array().unwrap().len(),
        0,
        "nothing stored"
    );
}

fn many_labels(n: usize) -> Value {
    (0..n)
        .map(|i| (format!("l{i}"), json!("v")))
        .collect::<serde_json::Map<String, Value>>()
        .into()
}

#[tokio::test]
async fn non_utf8_bodies_are_malformed_json_on_every_ingest_path() {
    let h = harness().await;
    for uri in [
        "/v1/alerts",
        "/api/v2/alerts",
        "/v1/integrations/alertmanager",
        "/v2/enqueue",
    ] {
        let body = b"{\"labels\":{\"a\":\"\xff\xfe\"}}".to_vec();
        let r = send(&h.state, Method::POST, uri, Some("application/json"), body).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        let text = r.body.to_string();
        assert!(text.contains("malformed JSON"), "{uri}: {text}");
    }
    let list = get(&h.state, "/v1/incidents").await;
    assert_eq!(list.body["incidents"].as_array().unwrap().len(), 0);
}
