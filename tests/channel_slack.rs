//! The Slack channel against a stand-in for the Slack Web API: an axum
//! server on 127.0.0.1:0 started by the test, answering `chat.postMessage`
//! and `chat.update` the way Slack does (HTTP 200 with `"ok"`, or the
//! scripted error) and recording each call. The channel's `api_url` points
//! at it, the way a deployment could point at a proxy.

mod channel_fixtures;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use channel_fixtures::{ack_update, acknowledged, incident, page, resolve_update, LINK};
use incident_actors::domain::{IncidentId, NotificationEvent, Recipient};
use incident_actors::ports::{Channel, ChannelError};
use lim::channels::slack::{
    blocks, parse_action, SlackActionKind, SlackChannel, SlackConfig, ACTION_ACK, ACTION_RESOLVE,
    ACTION_SNOOZE_30M, ACTION_SNOOZE_4H,
};
use serde_json::{json, Value};

const TOKEN: &str = "xoxb-test-token";

struct Call {
    method: String,
    authorization: String,
    body: Value,
}

/// A scripted answer: status, headers, JSON body.
type Answer = (u16, Vec<(&'static str, &'static str)>, Value);

#[derive(Default)]
struct FakeSlack {
    calls: Mutex<Vec<Call>>,
    script: Mutex<VecDeque<Answer>>,
    ts: AtomicU64,
}

async fn api(
    State(s): State<Arc<FakeSlack>>,
    Path(method): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let authorization = headers
        .get("authorization")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    s.calls.lock().unwrap().push(Call {
        method: method.clone(),
        authorization,
        body: body.clone(),
    });
    let (status, extra, answer) = match s.script.lock().unwrap().pop_front() {
        Some(scripted) => scripted,
        None => (200, vec![], default_answer(&s, &method, &body)),
    };
    let mut response = (StatusCode::from_u16(status).unwrap(), axum::Json(answer)).into_response();
    for (k, v) in extra {
        response.headers_mut().insert(k, v.parse().unwrap());
    }
    response
}

/// What Slack answers a successful call: the channel *id* (a DM's `D…`
/// for a user id), and the message's `ts`.
fn default_answer(s: &FakeSlack, method: &str, body: &Value) -> Value {
    let asked = body["channel"].as_str().unwrap_or_default();
    let channel = if asked.starts_with('U') {
        "D0DM".to_string()
    } else if asked.starts_with('#') {
        "C0123".to_string()
    } else {
        asked.to_string()
    };
    match method {
        "chat.postMessage" => {
            let ts = format!(
                "1714564801.{:06}",
                s.ts.fetch_add(1, Ordering::Relaxed) + 100
            );
            json!({"ok": true, "channel": channel, "ts": ts,
                   "message": {"ts": ts, "text": body["text"], "type": "message"}})
        }
        "chat.update" => json!({"ok": true, "channel": channel, "ts": body["ts"],
                                "text": body["text"], "message": {"text": body["text"]}}),
        _ => json!({"ok": false, "error": "unknown_method"}),
    }
}

async fn fake_slack(script: Vec<Answer>) -> (Arc<FakeSlack>, SlackChannel) {
    let state = Arc::new(FakeSlack {
        script: Mutex::new(script.into()),
        ..Default::default()
    });
    let app = Router::new()
        .route("/api/{method}", post(api))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api_url = format!("http://{}/api/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let channel = SlackChannel::new(SlackConfig {
        bot_token: TOKEN.into(),
        default_channel: "#incidents".into(),
        api_url,
        ..SlackConfig::new(TOKEN, "#incidents")
    })
    .unwrap();
    (state, channel)
}

fn oncall() -> Recipient {
    Recipient::SlackChannel {
        channel: "#oncall".into(),
    }
}

/// The `action_id`s of the actions block's buttons, each checked to carry
/// incident 42 in its `value`.
fn buttons(blocks: &Value) -> Vec<String> {
    let actions: Vec<&Value> = blocks
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "actions")
        .collect();
    assert!(actions.len() <= 1, "one actions block at most");
    let Some(actions) = actions.first() else {
        return vec![];
    };
    actions["elements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(e["type"], "button");
            let id = e["action_id"].as_str().unwrap().to_string();
            let value = e["value"].as_str().unwrap();
            assert_eq!(
                serde_json::from_str::<Value>(value).unwrap(),
                json!({"incident_id": 42})
            );
            let action = parse_action(&id, value).expect("a lim button");
            assert_eq!(action.incident_id, IncidentId(42));
            id
        })
        .collect()
}

/// Every text of the blocks, joined: what a reader sees.
fn all_text(blocks: &Value) -> String {
    let mut out = String::new();
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Object(m) => {
                if let Some(Value::String(t)) = m.get("text") {
                    out.push_str(t);
                    out.push('\n');
                }
                m.values().for_each(|v| walk(v, out));
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(blocks, &mut out);
    out
}

#[tokio::test]
async fn a_page_with_buttons_then_updates_in_place() {
    let (slack, channel) = fake_slack(vec![]).await;
    assert_eq!(channel.name(), "slack");
    let limit = channel.rate_limit();
    assert_eq!((limit.per_second, limit.burst), (1.0, 10));

    // The page.
    let delivered = channel.deliver(&page(oncall())).await.expect("posted");
    let thread = delivered.external_ref.expect("channel:ts");
    assert_eq!(thread, "C0123:1714564801.000100");
    {
        let calls = slack.calls.lock().unwrap();
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(call.method, "chat.postMessage");
        assert_eq!(call.authorization, format!("Bearer {TOKEN}"));
        assert_eq!(call.body["channel"], "#oncall");
        let text = call.body["text"].as_str().unwrap();
        assert_eq!(text, "[TRIGGERED] #42 critical: HighLatency (chat)");
        let blocks = &call.body["blocks"];
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["type"], "plain_text");
        assert!(blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .contains("#42 HighLatency"));
        assert_eq!(
            buttons(blocks),
            vec![
                ACTION_ACK,
                ACTION_RESOLVE,
                ACTION_SNOOZE_30M,
                ACTION_SNOOZE_4H
            ]
        );
        let labels: Vec<&str> = blocks
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .filter(|t| t.starts_with("*Labels*"))
            .collect();
        let labels = labels.first().expect("a labels section");
        let at = |l: &str| {
            labels
                .find(l)
                .unwrap_or_else(|| panic!("no {l} in {labels}"))
        };
        assert!(at("`model`: gpt-4o") < at("`provider`: openai"));
        assert!(at("`provider`: openai") < at("`tenant`: acme"));
        assert!(at("`tenant`: acme") < at("`alertname`: HighLatency"));
        let shown = all_text(blocks);
        for needle in [
            "*Severity*\ncritical",
            "*Service*\nchat",
            "*Status*\nTRIGGERED",
            "p99 latency of gpt-4o is 7.2s",
            &format!("<{LINK}|View incident #42 in lim>"),
            "<https://runbooks.example.com/llm-latency|Runbook>",
            "Acknowledge",
            "Snooze 30m",
        ] {
            assert!(shown.contains(needle), "blocks lack {needle:?}:\n{shown}");
        }
    }

    // Acknowledged: the same message, edited; no Acknowledge button.
    let delivered = channel
        .deliver(&ack_update(oncall(), Some(thread.clone())))
        .await
        .expect("updated");
    assert_eq!(delivered.external_ref.as_deref(), Some(thread.as_str()));
    {
        let calls = slack.calls.lock().unwrap();
        assert_eq!(calls.len(), 2);
        let call = &calls[1];
        assert_eq!(call.method, "chat.update");
        assert_eq!(call.authorization, format!("Bearer {TOKEN}"));
        assert_eq!(call.body["channel"], "C0123");
        assert_eq!(call.body["ts"], "1714564801.000100");
        let shown = all_text(&call.body["blocks"]);
        assert!(
            shown.contains("*Acknowledged by alice (via slack) at 2024-05-01 12:02:00 UTC*"),
            "{shown}"
        );
        assert!(shown.contains("*Status*\nACKNOWLEDGED"), "{shown}");
        assert!(call.body["text"]
            .as_str()
            .unwrap()
            .contains("Acknowledged by alice"));
        assert_eq!(
            buttons(&call.body["blocks"]),
            vec![ACTION_RESOLVE, ACTION_SNOOZE_30M, ACTION_SNOOZE_4H]
        );
    }

    // Resolved: edited again, no buttons left.
    channel
        .deliver(&resolve_update(oncall(), Some(thread.clone())))
        .await
        .expect("updated");
    let calls = slack.calls.lock().unwrap();
    let call = &calls[2];
    assert_eq!(call.method, "chat.update");
    assert_eq!(
        (call.body["channel"].as_str(), call.body["ts"].as_str()),
        (Some("C0123"), Some("1714564801.000100"))
    );
    let shown = all_text(&call.body["blocks"]);
    assert!(
        shown.contains("Resolved by bob (via api) at 2024-05-01 12:03:00 UTC"),
        "{shown}"
    );
    assert!(buttons(&call.body["blocks"]).is_empty());
}

#[tokio::test]
async fn a_person_is_paged_by_direct_message() {
    let (slack, channel) = fake_slack(vec![]).await;
    let alice = Recipient::SlackUser {
        user: "alice".into(),
        slack_user_id: "U0ALICE".into(),
    };
    let thread = channel
        .deliver(&page(alice.clone()))
        .await
        .unwrap()
        .external_ref
        .unwrap();
    assert_eq!(thread, "D0DM:1714564801.000100", "the DM's channel id");
    channel
        .deliver(&ack_update(alice, Some(thread)))
        .await
        .unwrap();
    let calls = slack.calls.lock().unwrap();
    assert_eq!(calls[0].body["channel"], "U0ALICE");
    assert_eq!(calls[1].method, "chat.update");
    assert_eq!(calls[1].body["channel"], "D0DM");
}

#[tokio::test]
async fn an_update_without_a_page_is_posted() {
    let (slack, channel) = fake_slack(vec![]).await;
    let delivered = channel.deliver(&ack_update(oncall(), None)).await.unwrap();
    assert_eq!(
        delivered.external_ref.as_deref(),
        Some("C0123:1714564801.000100")
    );
    // A recipient with no Slack address goes to the default channel.
    channel.deliver(&page(Recipient::Console)).await.unwrap();
    let calls = slack.calls.lock().unwrap();
    assert_eq!(calls[0].method, "chat.postMessage");
    assert!(all_text(&calls[0].body["blocks"]).contains("Acknowledged by alice"));
    assert_eq!(calls[1].body["channel"], "#incidents");
}

#[tokio::test]
async fn a_page_that_cannot_be_edited_gets_a_new_message() {
    let (slack, channel) = fake_slack(vec![(
        200,
        vec![],
        json!({"ok": false, "error": "message_not_found"}),
    )])
    .await;
    let delivered = channel
        .deliver(&ack_update(oncall(), Some("C0123:1.2".into())))
        .await
        .unwrap();
    assert_eq!(
        delivered.external_ref.as_deref(),
        Some("C0123:1714564801.000100")
    );
    let calls = slack.calls.lock().unwrap();
    let methods: Vec<&str> = calls.iter().map(|c| c.method.as_str()).collect();
    assert_eq!(methods, vec!["chat.update", "chat.postMessage"]);
}

#[tokio::test]
async fn errors_are_classified() {
    let not_ok = |code: &str| (200, vec![], json!({"ok": false, "error": code}));
    let (_slack, channel) = fake_slack(vec![
        not_ok("invalid_auth"),
        not_ok("channel_not_found"),
        not_ok("not_in_channel"),
        not_ok("account_inactive"),
        (
            429,
            vec![("retry-after", "3")],
            json!({"ok": false, "error": "ratelimited"}),
        ),
        not_ok("internal_error"),
        (500, vec![], json!({"ok": false})),
    ])
    .await;
    let n = page(oncall());
    for code in [
        "invalid_auth",
        "channel_not_found",
        "not_in_channel",
        "account_inactive",
    ] {
        let err = channel.deliver(&n).await.unwrap_err();
        assert!(matches!(err, ChannelError::Refused { .. }), "{code}: {err}");
        assert!(err.to_string().contains(code), "{err}");
        assert!(!err.to_string().contains(TOKEN), "no token in errors");
    }
    match channel.deliver(&n).await.unwrap_err() {
        ChannelError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(3))
        }
        other => panic!("expected RateLimited, got {other}"),
    }
    for _ in 0..2 {
        let err = channel.deliver(&n).await.unwrap_err();
        assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
    }
    channel.deliver(&n).await.expect("then Slack is fine again");
}

#[tokio::test]
async fn slack_down_is_a_retryable_failure() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let channel = SlackChannel::new(SlackConfig {
        bot_token: TOKEN.into(),
        default_channel: "#incidents".into(),
        api_url: format!("http://127.0.0.1:{port}/api/"),
        ..SlackConfig::new(TOKEN, "#incidents")
    })
    .unwrap();
    let err = channel.deliver(&page(oncall())).await.unwrap_err();
    assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
}

#[test]
fn the_block_builder_is_pure_and_reusable() {
    let event = NotificationEvent::Update {
        change: "acknowledged".into(),
        by: Some("alice".into()),
        via: None,
    };
    let a = serde_json::to_value(blocks(&acknowledged(), None, &event)).unwrap();
    let b = serde_json::to_value(blocks(&acknowledged(), None, &event)).unwrap();
    assert_eq!(a, b);
    assert!(
        !all_text(&a).contains("View incident"),
        "no link without one"
    );
    assert_eq!(
        buttons(&a),
        vec![ACTION_RESOLVE, ACTION_SNOOZE_30M, ACTION_SNOOZE_4H]
    );
    let page_blocks = serde_json::to_value(blocks(
        &incident(),
        Some(LINK),
        &NotificationEvent::Page {
            step: 1,
            repeat: 0,
            target: incident_actors::domain::Target::Schedule("primary".into()),
        },
    ))
    .unwrap();
    assert!(all_text(&page_blocks).contains("escalation step 2 (pass 1) · schedule:primary"));
    assert_eq!(
        parse_action(ACTION_SNOOZE_30M, r#"{"incident_id":42}"#).map(|a| a.kind),
        Some(SlackActionKind::Snooze(Duration::from_secs(1800)))
    );
}
