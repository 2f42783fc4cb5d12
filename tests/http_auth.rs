//! Services, integration keys and API tokens end to end: a config file's
//! `[[services]]` and `[[api_tokens]]`, read by `lim::config`, guarding
//! `app(state)` over a real SQLite store.

mod support;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::console::ConsoleChannel;
use incident_actors::time::SystemClock;
use incident_actors::{spawn_system, SystemConfig, SystemDeps};
use lim::auth::SecretDigest;
use lim::config::{parse_file, resolve, Overrides};
use lim::http::{app, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

const LLM_KEY: &str = "llm-gateway-key-0123456789";
const DB_KEY: &str = "database-key-0123456789";
const ALICE: &str = "alice-token-secret";
const DASH: &str = "dashboard-token-secret";

fn config_text() -> String {
    format!(
        r#"
[[services]]
name = "llm-gateway"
integration_keys = ["{LLM_KEY}"]
labels = {{ team = "ml", env = "prod" }}

[[services]]
name = "database"
integration_keys = ["{db}"]

[[api_tokens]]
user = "alice"
token_sha256 = "{alice}"
scopes = ["read", "write"]

[[api_tokens]]
user = "dashboard"
token_sha256 = "{dash}"
scopes = ["read"]
"#,
        db = SecretDigest::of(DB_KEY).to_config_string(),
        alice = SecretDigest::of(ALICE).to_config_string(),
        dash = SecretDigest::of(DASH).to_config_string(),
    )
}

struct Harness {
    _dir: tempfile::TempDir,
    state: AppState,
}

async fn harness() -> Harness {
    let settings = parse_file(&config_text()).expect("valid config");
    let config = resolve(settings, &Overrides::default()).unwrap();
    let (dir, url) = support::temp_sqlite_url();
    let store = lim::store::open_store(&url).await.unwrap();
    let system = spawn_system(
        SystemConfig::default(),
        SystemDeps {
            store,
            clock: Arc::new(SystemClock),
            channels: vec![Arc::<ConsoleChannel>::default()],
        },
    )
    .await
    .unwrap();
    let state = AppState::ready(system).with_access(config.access);
    Harness { _dir: dir, state }
}

struct Reply {
    status: StatusCode,
    body: Value,
    www_authenticate: Option<String>,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
}

async fn send(h: &Harness, method: Method, uri: &str, bearer: Option<&str>, body: Value) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = if body.is_null() {
        Body::empty()
    } else {
        request = request.header(header::CONTENT_TYPE, "application/json");
        Body::from(body.to_string())
    };
    let response = app(h.state.clone())
        .oneshot(request.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let www_authenticate = response
        .headers()
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_string());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    Reply {
        status,
        body,
        www_authenticate,
    }
}

fn labels() -> Value {
    json!({"alertname": "HighLatency", "model": "gpt-4o", "env": "staging"})
}

/// One request per ingest format, carrying the same alert.
fn ingest_requests() -> Vec<(&'static str, Value)> {
    vec![
        ("/v1/alerts", json!({"labels": labels()})),
        ("/api/v2/alerts", json!([{"labels": labels()}])),
        (
            "/v1/integrations/alertmanager",
            json!({"version": "4", "groupKey": "{}:{alertname=\"HighLatency\"}",
                   "status": "firing", "receiver": "lim", "groupLabels": {},
                   "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
                   "alerts": [{"status": "firing", "labels": labels(), "annotations": {},
                               "startsAt": "2026-11-23T10:00:00Z"}]}),
        ),
    ]
}

fn pagerduty(routing_key: &str) -> Value {
    json!({"routing_key": routing_key, "event_action": "trigger", "dedup_key": "pd-1",
           "payload": {"summary": "GPU node down", "source": "gpu-7", "severity": "critical"}})
}

async fn all_incidents(h: &Harness) -> Vec<Value> {
    let r = send(h, Method::GET, "/v1/incidents", Some(ALICE), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["incidents"].as_array().unwrap().clone()
}

#[tokio::test]
async fn ingest_without_a_valid_key_is_401_and_stores_nothing() {
    let h = harness().await;
    for (uri, body) in ingest_requests() {
        for key in [None, Some("wrong-key-0123456789"), Some(ALICE)] {
            let r = send(&h, Method::POST, uri, key, body.clone()).await;
            assert_eq!(
                r.status,
                StatusCode::UNAUTHORIZED,
                "{uri} {key:?}: {}",
                r.body
            );
            assert_eq!(r.code(), "unauthorized");
            assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"));
        }
    }
    let r = send(
        &h,
        Method::POST,
        "/v2/enqueue",
        None,
        pagerduty("nope-0123456789"),
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{}", r.body);
    assert!(r.body.to_string().contains("routing_key"), "{}", r.body);
    // A malformed event is still PagerDuty's 400, key or not.
    let r = send(
        &h,
        Method::POST,
        "/v2/enqueue",
        None,
        json!({"event_action": "trigger"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["status"], "invalid event");
    assert!(all_incidents(&h).await.is_empty(), "nothing stored");
}

#[tokio::test]
async fn a_key_names_the_service_and_adds_its_labels() {
    let h = harness().await;
    for (uri, body) in ingest_requests() {
        let r = send(&h, Method::POST, uri, Some(LLM_KEY), body).await;
        assert!(r.status.is_success(), "{uri}: {} {}", r.status, r.body);
    }
    let r = send(&h, Method::POST, "/v2/enqueue", None, pagerduty(DB_KEY)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let incidents = all_incidents(&h).await;
    // /v1/alerts and /api/v2/alerts share a fingerprint; the webhook groups by
    // groupKey; PagerDuty by dedup_key.
    assert_eq!(incidents.len(), 3, "{incidents:#?}");
    let r = send(
        &h,
        Method::GET,
        "/v1/incidents?service=llm-gateway",
        Some(DASH),
        Value::Null,
    )
    .await;
    let llm = r.body["incidents"].as_array().unwrap();
    assert_eq!(llm.len(), 2, "{}", r.body);
    let id = llm[0]["id"].as_u64().unwrap();
    let detail = send(
        &h,
        Method::GET,
        &format!("/v1/incidents/{id}"),
        Some(DASH),
        Value::Null,
    )
    .await;
    let alert_labels = &detail.body["alerts"][0]["labels"];
    assert_eq!(alert_labels["service"], "llm-gateway");
    assert_eq!(alert_labels["team"], "ml", "service label added");
    assert_eq!(alert_labels["env"], "staging", "the alert's own label wins");
    let r = send(
        &h,
        Method::GET,
        "/v1/incidents?service=database",
        Some(DASH),
        Value::Null,
    )
    .await;
    assert_eq!(r.body["incidents"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn tokens_scopes_and_attribution() {
    let h = harness().await;
    let r = send(
        &h,
        Method::POST,
        "/v1/alerts",
        Some(LLM_KEY),
        json!({"labels": labels()}),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let id = r.body["results"][0]["incident_id"].as_u64().unwrap();
    let ack = format!("/v1/incidents/{id}/acknowledge");

    for token in [None, Some("not-a-token"), Some(LLM_KEY)] {
        let r = send(&h, Method::GET, "/v1/incidents", token, Value::Null).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(r.code(), "unauthorized");
        let r = send(&h, Method::POST, &ack, token, Value::Null).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    // Read scope reads but cannot act.
    let r = send(&h, Method::GET, "/v1/silences", Some(DASH), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = send(&h, Method::POST, &ack, Some(DASH), Value::Null).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "forbidden");
    let r = send(
        &h,
        Method::POST,
        "/v1/silences",
        Some(DASH),
        json!({"matchers": ["alertname=X"], "for": "1h", "comment": "c"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &h,
        Method::GET,
        &format!("/v1/incidents/{id}"),
        Some(DASH),
        Value::Null,
    )
    .await;
    assert_eq!(r.body["status"], "triggered", "nothing changed");

    // Write scope acts, attributed to the token's user whatever the body says.
    let r = send(
        &h,
        Method::POST,
        &ack,
        Some(ALICE),
        json!({"by": "mallory"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["acknowledged_by"], "alice");
    let r = send(
        &h,
        Method::POST,
        &format!("/v1/incidents/{id}/notes"),
        Some(ALICE),
        json!({"text": "looking"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let t = send(
        &h,
        Method::GET,
        &format!("/v1/incidents/{id}/timeline"),
        Some(DASH),
        Value::Null,
    )
    .await;
    let text = t.body.to_string();
    assert!(text.contains("\"alice\""), "{text}");
    assert!(!text.contains("mallory"), "{text}");
    let r = send(
        &h,
        Method::POST,
        "/v1/silences",
        Some(ALICE),
        json!({"matchers": ["alertname=X"], "for": "1h", "comment": "c", "created_by": "mallory"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["created_by"], "alice");

    // Probes stay open.
    let r = send(&h, Method::GET, "/healthz", None, Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn dedup_keys_are_scoped_to_the_service_of_the_key() {
    let h = harness().await;
    let r = send(&h, Method::POST, "/v2/enqueue", None, pagerduty(DB_KEY)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        r.body["dedup_key"], "pd-1",
        "the sender's own key comes back"
    );
    let resolve =
        |key: &str| json!({"routing_key": key, "event_action": "resolve", "dedup_key": "pd-1"});
    // Another service's key: accepted as PagerDuty does, but touches nothing.
    let r = send(&h, Method::POST, "/v2/enqueue", None, resolve(LLM_KEY)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let open = all_incidents(&h).await;
    assert_eq!(open.len(), 1);
    assert_eq!(
        open[0]["status"], "triggered",
        "service B's key cannot resolve A's incident"
    );
    let r = send(&h, Method::POST, "/v2/enqueue", None, resolve(DB_KEY)).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    assert_eq!(all_incidents(&h).await[0]["status"], "resolved");
}

/// The actor tree takes the API's tokens: read to look, write to restart;
/// and no secret of the config ever shows in it.
#[tokio::test]
async fn the_actor_tree_needs_tokens_and_shows_no_secret() {
    let h = harness().await;
    let r = send(
        &h,
        Method::POST,
        "/v1/alerts",
        Some(LLM_KEY),
        json!({"labels": labels()}),
    )
    .await;
    let id = r.body["results"][0]["incident_id"].as_u64().unwrap();
    let restart = format!("/v1/actors/incident-{id}/restart");
    for token in [None, Some("not-a-token"), Some(LLM_KEY)] {
        let r = send(&h, Method::GET, "/v1/actors", token, Value::Null).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
        let r = send(&h, Method::POST, &restart, token, Value::Null).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{token:?}");
    }
    let r = send(&h, Method::GET, "/v1/actors", Some(DASH), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    let tree = r.body.to_string();
    assert!(tree.contains(&format!("\"incident {id}\"")), "{tree}");
    let r = send(&h, Method::POST, &restart, Some(DASH), Value::Null).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(&h, Method::POST, &restart, Some(ALICE), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["state"]["restarts"], json!(1));

    let full = send(
        &h,
        Method::GET,
        &format!("/v1/actors/incident-{id}"),
        Some(DASH),
        Value::Null,
    )
    .await;
    assert_eq!(full.status, StatusCode::OK);
    for answer in [tree, full.body.to_string()] {
        for secret in [LLM_KEY, DB_KEY, ALICE, DASH] {
            assert!(!answer.contains(secret), "{secret} in {answer}");
        }
    }
}
