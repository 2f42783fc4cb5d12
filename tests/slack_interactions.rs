//! Slack's requests to lim through the router (`app(state)`, oneshot):
//! signed button clicks act on the incident as the mapped lim user via
//! `slack`; a wrong signature or a stale timestamp is 401 and changes
//! nothing; a click that no longer applies gets an ephemeral note; a retry
//! acts once; unmapped users act as `slack:<id>` or are refused; `/lim`.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::console::ConsoleChannel;
use incident_actors::memory_store::MemoryStore;
use incident_actors::time::SystemClock;
use incident_actors::{spawn_system, SystemConfig, SystemDeps};
use lim::http::{app, AppState};
use lim::slack::signature::sign;
use lim::slack::{SlackSettings, UnmappedUsers};
use serde_json::{json, Value};
use tower::ServiceExt;

const SECRET: &str = "test-signing-secret";

async fn state(unmapped: UnmappedUsers) -> AppState {
    let system = spawn_system(
        SystemConfig::default(),
        SystemDeps {
            store: Arc::new(MemoryStore::default()),
            clock: Arc::new(SystemClock),
            channels: vec![Arc::<ConsoleChannel>::default()],
        },
    )
    .await
    .unwrap();
    let users = BTreeMap::from([("UALICE".to_string(), "alice".to_string())]);
    AppState::ready(system).with_slack(SlackSettings::new(SECRET, users, unmapped))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

struct Answer {
    status: StatusCode,
    body: Value,
}

async fn send(state: &AppState, request: Request<Body>) -> Answer {
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap()
    };
    Answer { status, body }
}

/// A Slack request to `path` with `body`, signed at `ts` with `secret`.
fn slack_request(
    path: &str,
    body: &str,
    secret: &str,
    ts: i64,
    retry: Option<u32>,
) -> Request<Body> {
    let ts = ts.to_string();
    let mut builder = Request::post(path)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sign(secret, &ts, body.as_bytes()));
    if let Some(n) = retry {
        builder = builder.header("x-slack-retry-num", n.to_string());
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

fn click_body(user: &str, action_id: &str, incident: u64, action_ts: &str) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": user, "username": user.to_lowercase()},
        "trigger_id": format!("trigger-{action_ts}"),
        "actions": [{"action_id": action_id, "block_id": "lim_actions", "type": "button",
                     "value": format!("{{\"incident_id\":{incident}}}"), "action_ts": action_ts}],
    });
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

fn command_body(user: &str, text: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("command", "/lim")
        .append_pair("user_id", user)
        .append_pair("text", text)
        .finish()
}

async fn click(state: &AppState, user: &str, action: &str, incident: u64, ts: &str) -> Answer {
    let body = click_body(user, action, incident, ts);
    send(
        state,
        slack_request("/v1/slack/interactions", &body, SECRET, now(), None),
    )
    .await
}

async fn command(state: &AppState, user: &str, text: &str) -> Answer {
    let body = command_body(user, text);
    send(
        state,
        slack_request("/v1/slack/commands", &body, SECRET, now(), None),
    )
    .await
}

async fn open_incident(state: &AppState, name: &str) -> u64 {
    let alert = json!({"labels": {"alertname": name, "service": "chat"},
                       "annotations": {"summary": format!("{name} is on fire")}});
    let a = send(
        state,
        Request::post("/v1/alerts")
            .header("content-type", "application/json")
            .body(Body::from(alert.to_string()))
            .unwrap(),
    )
    .await;
    assert!(a.status.is_success(), "{}", a.body);
    let list = send(
        state,
        Request::get("/v1/incidents").body(Body::empty()).unwrap(),
    )
    .await;
    list.body["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["labels"]["alertname"] == name)
        .unwrap()["id"]
        .as_u64()
        .unwrap()
}

async fn incident(state: &AppState, id: u64) -> Value {
    send(
        state,
        Request::get(format!("/v1/incidents/{id}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await
    .body
}

fn events<'a>(incident: &'a Value, kind: &str) -> Vec<&'a Value> {
    incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == kind)
        .collect()
}

#[tokio::test]
async fn a_signed_click_acknowledges_as_the_mapped_user_via_slack() {
    let state = state(UnmappedUsers::Act).await;
    let id = open_incident(&state, "HighLatency").await;
    let a = click(&state, "UALICE", "lim_ack", id, "1700000000.000001").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.body, Value::Null, "done: an empty 200");
    let i = incident(&state, id).await;
    assert_eq!(i["status"], "acknowledged");
    assert_eq!(i["acknowledged_by"], "alice");
    let acks = events(&i, "acknowledged");
    assert_eq!(acks.len(), 1, "{i}");
    assert_eq!(acks[0]["by"], "alice");
    assert_eq!(acks[0]["via"], "slack");

    // Resolve and snooze buttons.
    let other = open_incident(&state, "Other").await;
    let a = click(
        &state,
        "UALICE",
        "lim_snooze_30m",
        other,
        "1700000000.000002",
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let i = incident(&state, other).await;
    assert_eq!(i["status"], "acknowledged");
    assert_eq!(events(&i, "snoozed").len(), 1, "{i}");
    let a = click(&state, "UALICE", "lim_resolve", other, "1700000000.000003").await;
    assert_eq!(a.status, StatusCode::OK);
    let i = incident(&state, other).await;
    assert_eq!(i["status"], "resolved");
    assert_eq!(i["resolved_by"], "alice");
}

#[tokio::test]
async fn wrong_signatures_and_stale_timestamps_change_nothing() {
    let state = state(UnmappedUsers::Act).await;
    let id = open_incident(&state, "HighLatency").await;
    let body = click_body("UALICE", "lim_ack", id, "1.1");
    let cases = [
        (
            "wrong secret",
            slack_request(
                "/v1/slack/interactions",
                &body,
                "not-the-secret",
                now(),
                None,
            ),
        ),
        (
            "stale",
            slack_request("/v1/slack/interactions", &body, SECRET, now() - 301, None),
        ),
        (
            "future",
            slack_request("/v1/slack/interactions", &body, SECRET, now() + 301, None),
        ),
        (
            "no signature",
            Request::post("/v1/slack/interactions")
                .header("x-slack-request-timestamp", now().to_string())
                .body(Body::from(body.clone()))
                .unwrap(),
        ),
    ];
    for (what, request) in cases {
        let a = send(&state, request).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{what}: {}", a.body);
        assert_eq!(a.body["error"]["code"], "unauthorized", "{what}");
    }
    // A tampered body: signed for another incident, sent for this one.
    let ts = now().to_string();
    let signed = click_body("UALICE", "lim_ack", id + 1, "1.2");
    let request = Request::post("/v1/slack/interactions")
        .header("x-slack-request-timestamp", &ts)
        .header("x-slack-signature", sign(SECRET, &ts, signed.as_bytes()))
        .body(Body::from(click_body("UALICE", "lim_ack", id, "1.2")))
        .unwrap();
    assert_eq!(send(&state, request).await.status, StatusCode::UNAUTHORIZED);
    let command = command_body("UALICE", &format!("ack {id}"));
    let a = send(
        &state,
        slack_request("/v1/slack/commands", &command, "nope", now(), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);

    let i = incident(&state, id).await;
    assert_eq!(i["status"], "triggered", "nothing changed: {i}");
    assert!(events(&i, "acknowledged").is_empty());
}

#[tokio::test]
async fn a_click_that_no_longer_applies_gets_an_ephemeral_note() {
    let state = state(UnmappedUsers::Act).await;
    let id = open_incident(&state, "HighLatency").await;
    assert_eq!(
        click(&state, "UALICE", "lim_ack", id, "2.1").await.status,
        StatusCode::OK
    );
    let a = click(&state, "UBOB", "lim_ack", id, "2.2").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["response_type"], "ephemeral");
    assert_eq!(a.body["replace_original"], false);
    let text = a.body["text"].as_str().unwrap();
    assert!(text.contains("already acknowledged by alice"), "{text}");
    assert_eq!(
        click(&state, "UALICE", "lim_resolve", id, "2.3")
            .await
            .status,
        StatusCode::OK
    );
    for action in ["lim_ack", "lim_resolve", "lim_snooze_4h"] {
        let a = click(&state, "UBOB", action, id, &format!("2.4.{action}")).await;
        assert_eq!(a.status, StatusCode::OK);
        let text = a.body["text"].as_str().unwrap();
        assert!(
            text.contains("already resolved by alice"),
            "{action}: {text}"
        );
    }
    let i = incident(&state, id).await;
    assert_eq!(events(&i, "acknowledged").len(), 1);
    assert_eq!(events(&i, "resolved").len(), 1);
    assert!(events(&i, "snoozed").is_empty());
}

#[tokio::test]
async fn slack_retries_act_once() {
    let state = state(UnmappedUsers::Act).await;
    let id = open_incident(&state, "HighLatency").await;
    let body = click_body("UALICE", "lim_snooze_30m", id, "3.1");
    let first = send(
        &state,
        slack_request("/v1/slack/interactions", &body, SECRET, now(), None),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK);
    for n in 1..=3 {
        let retry = send(
            &state,
            slack_request("/v1/slack/interactions", &body, SECRET, now(), Some(n)),
        )
        .await;
        assert_eq!(retry.status, StatusCode::OK, "retry {n}");
    }
    let i = incident(&state, id).await;
    assert_eq!(events(&i, "snoozed").len(), 1, "one snooze: {i}");

    // A retried acknowledge: the incident is already acknowledged.
    let other = open_incident(&state, "Other").await;
    let body = click_body("UALICE", "lim_ack", other, "3.2");
    for n in [None, Some(1), Some(2)] {
        let a = send(
            &state,
            slack_request("/v1/slack/interactions", &body, SECRET, now(), n),
        )
        .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    assert_eq!(
        events(&incident(&state, other).await, "acknowledged").len(),
        1
    );
}

#[tokio::test]
async fn unmapped_users_act_as_slack_id_or_are_refused() {
    let state_act = state(UnmappedUsers::Act).await;
    let id = open_incident(&state_act, "HighLatency").await;
    assert_eq!(
        click(&state_act, "U0STRANGER", "lim_ack", id, "4.1")
            .await
            .status,
        StatusCode::OK
    );
    let i = incident(&state_act, id).await;
    assert_eq!(i["acknowledged_by"], "slack:U0STRANGER");

    let state_refuse = state(UnmappedUsers::Refuse).await;
    let id = open_incident(&state_refuse, "HighLatency").await;
    let a = click(&state_refuse, "U0STRANGER", "lim_ack", id, "4.2").await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.body["response_type"], "ephemeral");
    assert!(
        a.body["text"].as_str().unwrap().contains("not linked"),
        "{}",
        a.body
    );
    assert_eq!(incident(&state_refuse, id).await["status"], "triggered");
    let a = command(&state_refuse, "U0STRANGER", &format!("resolve {id}")).await;
    assert!(
        a.body["text"].as_str().unwrap().contains("not linked"),
        "{}",
        a.body
    );
    assert_eq!(incident(&state_refuse, id).await["status"], "triggered");
    // The mapped user still acts.
    assert_eq!(
        click(&state_refuse, "UALICE", "lim_ack", id, "4.3")
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        incident(&state_refuse, id).await["acknowledged_by"],
        "alice"
    );
}

#[tokio::test]
async fn the_lim_slash_command() {
    let state = state(UnmappedUsers::Act).await;
    let a = open_incident(&state, "HighLatency").await;
    let b = open_incident(&state, "Errors").await;

    let list = command(&state, "UALICE", "list").await;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["response_type"], "ephemeral");
    let text = list.body["text"].as_str().unwrap();
    assert!(
        text.contains(&format!("#{a} HighLatency is on fire")),
        "{text}"
    );
    assert!(text.contains(&format!("#{b} Errors is on fire")), "{text}");

    let r = command(&state, "UALICE", &format!("ack {a}")).await;
    assert_eq!(
        r.body["text"],
        format!("Incident #{a} acknowledged by alice")
    );
    let r = command(&state, "UALICE", &format!("ack {a}")).await;
    assert!(r.body["text"]
        .as_str()
        .unwrap()
        .contains("already acknowledged by alice"));
    let r = command(&state, "UALICE", &format!("snooze {b} 30m")).await;
    assert_eq!(
        r.body["text"],
        format!("Incident #{b} snoozed for 30m by alice")
    );
    let r = command(&state, "UALICE", &format!("resolve {a}")).await;
    assert_eq!(r.body["text"], format!("Incident #{a} resolved by alice"));
    let i = incident(&state, a).await;
    assert_eq!(i["status"], "resolved");
    assert_eq!(events(&i, "resolved")[0]["via"], "slack");

    let list = command(&state, "UALICE", "list").await;
    let text = list.body["text"].as_str().unwrap();
    assert!(!text.contains(&format!("#{a} ")), "{text}");
    assert!(text.contains(&format!("#{b} ")), "{text}");

    let r = command(&state, "UALICE", "oncall").await;
    assert_eq!(r.body["text"], "No schedules are configured");
    for bad in ["dance", "ack", "snooze 1", "ack x"] {
        let r = command(&state, "UALICE", bad).await;
        assert_eq!(r.status, StatusCode::OK, "{bad}");
        assert!(!r.body["text"].as_str().unwrap().is_empty(), "{bad}");
    }
    let r = command(&state, "UALICE", "ack 999").await;
    assert_eq!(r.body["text"], "Incident #999 does not exist");
    let r = command(&state, "UALICE", "").await;
    assert!(r.body["text"].as_str().unwrap().starts_with("Usage"));
}

#[tokio::test]
async fn without_a_signing_secret_the_routes_are_not_found() {
    let state = AppState::new();
    let body = click_body("UALICE", "lim_ack", 1, "5.1");
    for path in ["/v1/slack/interactions", "/v1/slack/commands"] {
        let a = send(&state, slack_request(path, &body, SECRET, now(), None)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert!(a.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signing_secret"));
    }
}

/// Slack shows nothing of a `block_actions` answer's body: the note also
/// goes to the payload's `response_url` (here a local stand-in).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_note_is_posted_to_the_response_url() {
    use axum::routing::post;
    let received: Arc<std::sync::Mutex<Vec<Value>>> = Arc::default();
    let sink = received.clone();
    let stand_in = axum::Router::new().route(
        "/actions/1",
        post(move |axum::Json(v): axum::Json<Value>| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let response_url = format!("http://{}/actions/1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, stand_in).await.unwrap() });

    let state = state(UnmappedUsers::Act).await;
    let id = open_incident(&state, "HighLatency").await;
    assert_eq!(
        click(&state, "UALICE", "lim_ack", id, "9.1").await.status,
        StatusCode::OK
    );
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "UBOB"},
        "trigger_id": "trigger-9.2",
        "response_url": response_url,
        "actions": [{"action_id": "lim_ack", "block_id": "lim_actions", "type": "button",
                     "value": format!("{{\"incident_id\":{id}}}"), "action_ts": "9.2"}],
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();
    let a = send(
        &state,
        slack_request("/v1/slack/interactions", &body, SECRET, now(), None),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    let mut note = None;
    for _ in 0..100 {
        note = received.lock().unwrap().first().cloned();
        if note.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let note = note.expect("the note reached the response_url");
    assert_eq!(note["response_type"], "ephemeral");
    assert_eq!(note["replace_original"], false);
    assert!(note["text"]
        .as_str()
        .unwrap()
        .contains("already acknowledged by alice"));
}
