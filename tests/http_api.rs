//! The HTTP API end to end without a socket: `app(state)` driven with
//! `tower::ServiceExt::oneshot`, over a real SQLite store in a temporary folder.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::console::ConsoleChannel;
use incident_actors::domain::{Fingerprint, Labels};
use incident_actors::memory_store::MemoryStore;
use incident_actors::ports::SharedStore;
use incident_actors::time::SystemClock;
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
