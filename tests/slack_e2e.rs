//! Acknowledge from Slack end to end, through the real binary: a config
//! with a Slack channel (pointed at a local stand-in for the Slack Web API,
//! with a signing secret) on a one-step policy. An alert pages Slack with
//! the buttons; the test takes the Acknowledge button's `value` from the
//! posted blocks and sends lim the `block_actions` interaction Slack would
//! send for a click on it, form-encoded and signed. Wrongly signed and
//! stale copies are refused (401) and change nothing; the correctly signed
//! one acknowledges the incident as the mapped lim user (`alice`) via
//! `slack`, and lim edits the page (`chat.update` with its channel and ts).
//!
//! The signature is computed here independently (hmac/sha2/hex over
//! `v0:{ts}:{body}`), not with lim's own signer, so a bug shared by both
//! sides cannot hide.
//!
//! That an acknowledge stops the escalation timer (the issue's "its
//! escalation timer no longer fires", which needs a paused clock) is
//! covered at actor level by `actors/tests/escalation.rs`
//! (`acknowledge_stops_the_escalation`, and the pages queued behind a slow
//! channel being dropped after an acknowledge); a real process has a real
//! clock. Here the step's delay is 30 min, so no second page is expected
//! in the test's lifetime either way.
//!
//! Waiting is for real network deliveries of a real process, polled with a
//! generous deadline; no assertion depends on how fast they are.

mod lim_process;
mod stand_ins;
mod support;

use std::path::Path;
use std::time::Duration;

use hmac::{Hmac, Mac};
use lim_process::LimProcess;
use reqwest::StatusCode;
use serde_json::{json, Value};
use sha2::Sha256;
use stand_ins::{eventually, BOT_TOKEN, CHANNEL_ID};

const SIGNING_SECRET: &str = "test-signing-secret";
fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Slack's request signature: `v0=` + hex HMAC-SHA256 of `v0:{ts}:{body}`.
fn slack_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

/// The button with `action_id` in the message's blocks, and its block's id.
fn button<'a>(message: &'a Value, action_id: &str) -> (&'a Value, &'a str) {
    let blocks = message["blocks"]
        .as_array()
        .unwrap_or_else(|| panic!("no blocks in {message}"));
    for block in blocks {
        let Some(elements) = block["elements"].as_array() else {
            continue;
        };
        if let Some(b) = elements.iter().find(|e| e["action_id"] == action_id) {
            return (b, block["block_id"].as_str().unwrap_or(""));
        }
    }
    panic!("no {action_id} button in {message}");
}

/// Posts `body` to `/v1/slack/interactions` with the given headers.
async fn post_interaction(
    http: &reqwest::Client,
    server: &LimProcess,
    body: &str,
    timestamp: &str,
    signature: &str,
) -> (StatusCode, String) {
    let r = http
        .post(server.url("/v1/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", timestamp)
        .header("x-slack-signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn incident(http: &reqwest::Client, server: &LimProcess, id: u64) -> Value {
    http.get(server.url(&format!("/v1/incidents/{id}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_click_on_the_pages_acknowledge_button_acknowledges_and_edits_the_page() {
    let (received, base) = stand_ins::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lim.toml");
    std::fs::write(
        &config,
        format!(
            r##"
[channels.slack]
bot_token = "{BOT_TOKEN}"
default_channel = "#oncall"
api_url = "{base}/api/"
signing_secret = "{SIGNING_SECRET}"

[[users]]
name = "alice"
email = "alice@example.com"
slack_user_id = "U0ALICE"

[escalation]
[[escalation.steps]]
delay = "30m"
targets = ["slack"]
"##
        ),
    )
    .unwrap();
    let (_db, url) = support::temp_sqlite_url();
    let server = LimProcess::start(binary(), &url, Some(&config)).await;
    let http = reqwest::Client::new();

    let posted: Value = http
        .post(server.url("/v1/alerts"))
        .json(&json!({"labels": {"alertname": "HighLatency", "service": "chat", "severity": "critical"},
                      "annotations": {"summary": "p99 7s"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = posted["results"][0]["incident_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("no incident: {posted}"));

    // The page: chat.postMessage with the buttons.
    let (method, page) = eventually("the Slack page", || {
        received.slack.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(method, "chat.postMessage");
    assert_eq!(page["channel"], "#oncall");
    let page_ts = "1700000000.000001";
    let (ack, block_id) = button(&page, "lim_ack");
    let value = ack["value"]
        .as_str()
        .unwrap_or_else(|| panic!("the Acknowledge button has no value: {ack}"));
    let value_json: Value = serde_json::from_str(value).unwrap();
    assert_eq!(value_json["incident_id"], id, "{value}");

    // The interaction Slack sends for a click on that button.
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice", "name": "alice", "team_id": "T0TEAM"},
        "api_app_id": "A0LIM",
        "token": "deprecated-verification-token",
        "team": {"id": "T0TEAM", "domain": "example"},
        "container": {"type": "message", "message_ts": page_ts, "channel_id": CHANNEL_ID,
                      "is_ephemeral": false},
        "trigger_id": "1234567890.0987654321.abcdef",
        "channel": {"id": CHANNEL_ID, "name": "oncall"},
        "message": {"type": "message", "ts": page_ts, "text": page["text"],
                    "blocks": page["blocks"]},
        "response_url": format!("{base}/actions/T0TEAM/1234/abcd"),
        "actions": [{
            "type": "button",
            "action_id": "lim_ack",
            "block_id": block_id,
            "text": ack["text"],
            "value": value,
            "action_ts": "1700000100.123456",
        }],
    });
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish();

    // A wrong signature, a stale timestamp, a missing signature: refused,
    // and nothing changes.
    let ts = now().to_string();
    let stale = (now() - 6 * 60).to_string();
    let refused = [
        (
            "wrong secret",
            ts.clone(),
            slack_signature("not-the-signing-secret", &ts, &body),
        ),
        (
            "signed for another body",
            ts.clone(),
            slack_signature(SIGNING_SECRET, &ts, &body.replace("U0ALICE", "U0MALLORY")),
        ),
        (
            "stale timestamp",
            stale.clone(),
            slack_signature(SIGNING_SECRET, &stale, &body),
        ),
        ("malformed", ts.clone(), "v0=not-hex".to_string()),
    ];
    for (what, timestamp, signature) in &refused {
        let (status, answer) = post_interaction(&http, &server, &body, timestamp, signature).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}: {answer}");
    }
    // Give a wrongly accepted click time to show (its chat.update would be
    // sent within milliseconds).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let i = incident(&http, &server, id).await;
    assert_eq!(i["status"], "triggered", "nothing changed: {i}");
    assert!(i["acknowledged_by"].is_null(), "{i}");
    assert!(
        received.calls("chat.update").is_empty(),
        "no chat.update after refused clicks"
    );

    // The correctly signed click: 200 (empty), acknowledged as alice via
    // slack.
    let ts = now().to_string();
    let (status, answer) = post_interaction(
        &http,
        &server,
        &body,
        &ts,
        &slack_signature(SIGNING_SECRET, &ts, &body),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer, "", "done: an empty 200");
    let i = incident(&http, &server, id).await;
    assert_eq!(i["status"], "acknowledged", "{i}");
    assert_eq!(i["acknowledged_by"], "alice", "{i}");
    // The escalation timer is disarmed: no next step is due (that it then
    // never fires is shown on the paused clock in actors/tests/escalation.rs).
    assert!(i["escalation"]["next_at"].is_null(), "{i}");
    let acks: Vec<&Value> = i["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "acknowledged")
        .collect();
    assert_eq!(acks.len(), 1, "{i}");
    assert_eq!(acks[0]["by"], "alice", "{i}");
    assert_eq!(acks[0]["via"], "slack", "{i}");

    // lim edits the page: chat.update on the page's channel and ts.
    let update = eventually("the chat.update", || {
        received.calls("chat.update").first().cloned()
    })
    .await;
    assert_eq!(update["channel"], CHANNEL_ID, "{update}");
    assert_eq!(update["ts"], page_ts, "the page's own message: {update}");
    let text = update.to_string();
    assert!(text.contains("alice"), "{text}");
    assert!(
        !text.contains("lim_ack"),
        "no Acknowledge button once acknowledged: {text}"
    );
    assert!(
        text.contains("lim_resolve"),
        "Resolve still makes sense: {text}"
    );

    // The same click again (a retry of a request Slack saw no answer to):
    // 200, acted on once, and no second page.
    let ts = now().to_string();
    let r = http
        .post(server.url("/v1/slack/interactions"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-slack-request-timestamp", &ts)
        .header(
            "x-slack-signature",
            slack_signature(SIGNING_SECRET, &ts, &body),
        )
        .header("x-slack-retry-num", "1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let i = incident(&http, &server, id).await;
    let acks = i["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "acknowledged")
        .count();
    assert_eq!(acks, 1, "a retry acts once: {i}");
    assert_eq!(received.calls("chat.postMessage").len(), 1, "one page only");
    server.kill9().await;
}
