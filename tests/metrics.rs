//! `GET /metrics` through `app(state)` over a real SQLite store: scraped
//! before and after traffic (alerts ingested, a repeat, a refused request,
//! an acknowledge, the deliveries they cause), the exposition text parsed
//! and the values compared; and `/metrics` guarded like the operator API's
//! reads once tokens are configured.

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::console::ConsoleChannel;
use incident_actors::time::SystemClock;
use incident_actors::{spawn_system, System, SystemConfig, SystemDeps};
use lim::auth::{Access, ApiToken, Scope, SecretDigest};
use lim::http::{app, AppState};
use serde_json::json;
use tower::ServiceExt;

async fn system() -> (tempfile::TempDir, System) {
    let (dir, url) = support::temp_sqlite_url();
    let store = lim::store::open_store(&url).await.expect("sqlite store");
    let system = spawn_system(
        SystemConfig::default(),
        SystemDeps {
            store,
            clock: Arc::new(SystemClock),
            channels: vec![Arc::<ConsoleChannel>::default()],
        },
    )
    .await
    .expect("spawn system");
    (dir, system)
}

async fn send(
    state: &AppState,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<serde_json::Value>,
) -> (StatusCode, String, String) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = match body {
        Some(json) => {
            request = request.header(header::CONTENT_TYPE, "application/json");
            Body::from(json.to_string())
        }
        None => Body::empty(),
    };
    let response = app(state.clone())
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        content_type,
        String::from_utf8(bytes.to_vec()).unwrap(),
    )
}

/// One scrape: `name{k="v",…}` → value, for every sample line.
#[derive(Debug)]
struct Scrape(BTreeMap<String, f64>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = BTreeMap::new();
        for line in text.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not a sample line: {line:?}"));
            let value: f64 = value
                .parse()
                .unwrap_or_else(|e| panic!("{line:?}: bad value ({e})"));
            samples.insert(series.to_string(), value);
        }
        Scrape(samples)
    }

    /// The sample of `name` whose labels include every one of `labels`; 0
    /// when there is none (a counter never incremented has no series).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let matching: Vec<f64> = self
            .0
            .iter()
            .filter(|(series, _)| {
                let (n, rest) = series.split_once('{').unwrap_or((series, ""));
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
            })
            .map(|(_, v)| *v)
            .collect();
        assert!(
            matching.len() <= 1,
            "{name} {labels:?} matches several series"
        );
        matching.first().copied().unwrap_or(0.0)
    }
}

async fn scrape(state: &AppState, token: Option<&str>) -> Scrape {
    let (status, content_type, body) = send(state, Method::GET, "/metrics", token, None).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(content_type, "text/plain; version=0.0.4");
    Scrape::parse(&body)
}

#[tokio::test]
async fn metrics_move_with_ingest_acknowledge_and_delivery() {
    let (_dir, system) = system().await;
    let state = AppState::ready(system.clone());

    let before = scrape(&state, None).await;
    let created = [("source", "native"), ("result", "created")];
    assert_eq!(before.get("lim_ingest_alerts_total", &created), 0.0);
    assert_eq!(before.get("lim_open_incidents", &[]), 0.0);
    assert_eq!(before.get("lim_escalations_overdue", &[]), 0.0);
    assert_eq!(before.get("lim_ingest_in_flight_permits", &[]), 0.0);
    // Read off the process when scraped: the system's actors are tasks on
    // this test's runtime, and a process has descriptors open.
    assert!(
        before.get("lim_runtime_alive_tasks", &[]) > 0.0,
        "{before:?}"
    );
    if cfg!(target_os = "linux") {
        assert!(before.get("lim_process_open_fds", &[]) > 0.0, "{before:?}");
    }
    assert_eq!(
        before.get("lim_ingest_request_seconds_count", &[("source", "native")]),
        0.0
    );

    // Two new incidents in one request, a repeat of one, a refused request.
    let (status, _, body) = send(
        &state,
        Method::POST,
        "/v1/alerts",
        None,
        Some(json!({"alerts": [
            {"labels": {"alertname": "HighLatency", "model": "gpt-4o"}},
            {"labels": {"alertname": "ErrorRate", "model": "gpt-4o"}},
        ]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let first: serde_json::Value = serde_json::from_str(&body).unwrap();
    let id = first["results"][0]["incident_id"].as_u64().unwrap();
    let (status, _, _) = send(
        &state,
        Method::POST,
        "/v1/alerts",
        None,
        Some(json!({"labels": {"alertname": "HighLatency", "model": "gpt-4o"}})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, _, _) = send(
        &state,
        Method::POST,
        "/v1/alerts",
        None,
        Some(json!({"labels": {}})),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The first one acknowledged.
    let (status, _, body) = send(
        &state,
        Method::POST,
        &format!("/v1/incidents/{id}/acknowledge"),
        None,
        Some(json!({"by": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // Deliveries are asynchronous (the incident casts them to the notifier
    // after its commit): wait, bounded, for the two pages and the
    // acknowledgement's update to be delivered.
    let delivered = [("channel", "console"), ("result", "delivered")];
    let mut after = scrape(&state, None).await;
    for _ in 0..500 {
        if after.get("lim_notifications_total", &delivered) >= 3.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
        after = scrape(&state, None).await;
    }

    assert_eq!(after.get("lim_ingest_alerts_total", &created), 2.0);
    assert_eq!(
        after.get(
            "lim_ingest_alerts_total",
            &[("source", "native"), ("result", "unchanged")]
        ),
        1.0
    );
    assert_eq!(
        after.get(
            "lim_ingest_alerts_total",
            &[("source", "native"), ("result", "rejected")]
        ),
        1.0
    );
    assert_eq!(
        after.get(
            "lim_ingest_alerts_total",
            &[("source", "native"), ("result", "error")]
        ),
        0.0
    );
    assert_eq!(
        after.get("lim_ingest_request_seconds_count", &[("source", "native")]),
        3.0,
        "every ingest request is timed, the refused one too"
    );
    assert_eq!(
        after.get(
            "lim_open_incidents",
            &[("status", "triggered"), ("service", "default")]
        ),
        1.0
    );
    assert_eq!(
        after.get(
            "lim_open_incidents",
            &[("status", "acknowledged"), ("service", "default")]
        ),
        1.0
    );
    assert_eq!(after.get("lim_notifications_total", &delivered), 3.0);
    assert_eq!(
        after.get(
            "lim_notifications_total",
            &[("channel", "console"), ("result", "failed")]
        ),
        0.0
    );
    assert_eq!(
        after.get(
            "lim_notification_delivery_seconds_count",
            &[("channel", "console")]
        ),
        3.0
    );
    // Writes: two creations and the acknowledge at least (the repeat is a
    // counter flushed later). The two creations of one request are
    // ingested concurrently and may share a group commit: two commits at
    // least, three writes at least.
    assert!(after.get("lim_persistence_batch_size_count", &[]) >= 2.0);
    assert!(after.get("lim_persistence_batch_size_sum", &[]) >= 3.0);
    assert!(after.get("lim_persistence_commit_seconds_count", &[]) >= 2.0);
    assert_eq!(after.get("lim_escalations_overdue", &[]), 0.0);
    assert_eq!(after.get("lim_ingest_in_flight_permits", &[]), 0.0);
    assert_eq!(
        after.get(
            "lim_notifier_deliveries",
            &[("channel", "console"), ("state", "queued")]
        ),
        0.0
    );
    assert_eq!(
        after.get("lim_actor_restarts_total", &[("kind", "incident")]),
        0.0
    );

    // Resolving the acknowledged one leaves one open incident.
    let (status, _, _) = send(
        &state,
        Method::POST,
        &format!("/v1/incidents/{id}/resolve"),
        None,
        Some(json!({"by": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let last = scrape(&state, None).await;
    assert_eq!(
        last.get(
            "lim_open_incidents",
            &[("status", "acknowledged"), ("service", "default")]
        ),
        0.0
    );
    assert_eq!(
        last.get(
            "lim_open_incidents",
            &[("status", "triggered"), ("service", "default")]
        ),
        1.0
    );
    system.shutdown().await;
}

#[tokio::test]
async fn metrics_need_a_read_token_once_tokens_are_configured() {
    const READER: &str = "reader-token-secret";
    let (_dir, system) = system().await;
    let access = Access::new(
        Vec::new(),
        vec![ApiToken {
            user: "prometheus".into(),
            digest: SecretDigest::of(READER),
            scopes: vec![Scope::Read],
        }],
    );
    let state = AppState::ready(system.clone()).with_access(access);
    let (status, _, body) = send(&state, Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, _, _) = send(&state, Method::GET, "/metrics", Some("wrong"), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let with_token = scrape(&state, Some(READER)).await;
    assert_eq!(with_token.get("lim_escalations_overdue", &[]), 0.0);
    // `/healthz` stays open.
    let (status, _, _) = send(&state, Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    system.shutdown().await;
}

#[tokio::test]
async fn metrics_answer_503_until_the_system_runs() {
    let state = AppState::new();
    let (status, _, body) = send(&state, Method::GET, "/metrics", None, None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.contains("not_ready"), "{body}");
}
