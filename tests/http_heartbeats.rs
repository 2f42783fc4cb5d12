//! Heartbeat monitors through the HTTP API, configured from TOML: pings
//! need a key of the monitor's service; a missed deadline opens a
//! `HeartbeatMissed` incident and the next ping resolves it.
//!
//! On tokio's paused clock with the in-memory store (the store never waits
//! on a blocking thread, so auto-advancing time cannot overtake it); the
//! SQLite and PostgreSQL heartbeat rows are covered by `store_contract`.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::console::ConsoleChannel;
use incident_actors::memory_store::MemoryStore;
use incident_actors::time::{Clock, TokioClock};
use incident_actors::{spawn_system, SystemConfig, SystemDeps};
use lim::config::{parse_file, resolve, Overrides};
use lim::http::{app, AppState};
use serde_json::Value;
use tower::ServiceExt;

const EVAL_KEY: &str = "eval-pipeline-key-0123456789";
const OTHER_KEY: &str = "other-service-key-0123456789";

async fn state() -> AppState {
    let text = format!(
        r#"
[[services]]
name = "evals"
integration_keys = ["{EVAL_KEY}"]

[[services]]
name = "other"
integration_keys = ["{OTHER_KEY}"]

[[heartbeats]]
name = "nightly-eval"
service = "evals"
interval = "1h"
grace = "10m"
"#
    );
    let config = resolve(parse_file(&text).unwrap(), &Overrides::default()).unwrap();
    let system = spawn_system(
        SystemConfig {
            heartbeats: config.heartbeats.clone(),
            ..SystemConfig::default()
        },
        SystemDeps {
            store: Arc::new(MemoryStore::default()),
            clock: Arc::new(TokioClock::starting_at(
                incident_actors::time::SystemClock.now(),
            )),
            channels: vec![Arc::<ConsoleChannel>::default()],
        },
    )
    .await
    .unwrap();
    AppState::ready(system).with_access(config.access)
}

async fn send(
    state: &AppState,
    method: Method,
    uri: &str,
    key: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(key) = key {
        request = request.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

async fn heartbeat_incidents(state: &AppState) -> Vec<Value> {
    let (status, body) = send(
        state,
        Method::GET,
        "/v1/incidents?label=alertname=HeartbeatMissed",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["incidents"].as_array().unwrap().clone()
}

async fn pass(d: Duration) {
    tokio::time::sleep(d).await;
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn pings_need_the_services_key_and_a_miss_opens_then_resolves_an_incident() {
    let state = state().await;
    let ping = "/v1/heartbeats/nightly-eval";
    for key in [None, Some("wrong-key-0123456789"), Some(OTHER_KEY)] {
        let (status, body) = send(&state, Method::POST, ping, key).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{key:?}: {body}");
    }
    let (status, _) = send(&state, Method::POST, "/v1/heartbeats/nope", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "strangers learn no names");
    let (status, _) = send(&state, Method::POST, "/v1/heartbeats/nope", Some(EVAL_KEY)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = send(&state, Method::POST, ping, Some(EVAL_KEY)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "up");
    assert_eq!(body["interval_seconds"], 3600);

    // Quiet while pings come in time.
    pass(Duration::from_secs(65 * 60)).await;
    send(&state, Method::POST, ping, Some(EVAL_KEY)).await;
    assert!(heartbeat_incidents(&state).await.is_empty());

    // Missed: 1h + 10m after the last ping, one incident.
    pass(Duration::from_secs(71 * 60)).await;
    let open = heartbeat_incidents(&state).await;
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0]["status"], "triggered");
    assert_eq!(open[0]["service"], "evals");
    let (_, listed) = send(&state, Method::GET, "/v1/heartbeats", None).await;
    assert_eq!(listed["heartbeats"][0]["status"], "missed", "{listed}");

    // The ping returns: resolved.
    let (status, body) = send(&state, Method::POST, ping, Some(EVAL_KEY)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "up");
    pass(Duration::from_secs(1)).await;
    let after = heartbeat_incidents(&state).await;
    assert_eq!(after.len(), 1);
    assert_eq!(after[0]["status"], "resolved", "{after:#?}");
}
