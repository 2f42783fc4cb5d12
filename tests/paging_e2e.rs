//! Paging end to end through the real binary: a config with a Slack
//! channel (pointed at a local stand-in for the Slack Web API) and a signed
//! webhook (a local receiver that checks the signature) on the default
//! policy. An alert pages both; an acknowledge made through the API updates
//! the same Slack message (`chat.update` with the page's `ts`) and sends the
//! webhook an `incident.acknowledged` event; the deliveries appear on the
//! incident's timeline. After kill -9 and a restart, nothing delivered is
//! sent again.
//!
//! Waiting here is for real network deliveries of a real process, polled
//! with a generous deadline; no assertion depends on how fast they are.

mod lim_process;
mod stand_ins;
mod support;

use std::path::Path;
use std::time::Duration;

use lim_process::LimProcess;
use serde_json::{json, Value};
use stand_ins::{eventually, BOT_TOKEN, CHANNEL_ID, WEBHOOK_SECRET};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_slack_and_a_webhook_then_updates_both_on_acknowledge() {
    let (received, base) = stand_ins::start().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lim.toml");
    std::fs::write(
        &config,
        format!(
            r##"
public_url = "https://lim.example.com"

[channels.slack]
bot_token = "{BOT_TOKEN}"
default_channel = "#oncall"
api_url = "{base}/api/"

[[channels.webhooks]]
name = "ops"
url = "{base}/hook"
secret = "{WEBHOOK_SECRET}"

[escalation]
[[escalation.steps]]
delay = "30m"
targets = ["slack", "ops"]
"##
        ),
    )
    .unwrap();
    let (_db, url) = support::temp_sqlite_url();
    let server = LimProcess::start(binary(), &url, Some(&config)).await;
    let http = reqwest::Client::new();
    let posted: Value = http
        .post(server.url("/v1/alerts"))
        .json(&json!({"labels": {"alertname": "HighLatency", "model": "gpt-4o", "severity": "critical"},
                      "annotations": {"summary": "p99 7s"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = posted["results"][0]["incident_id"].as_u64().unwrap();

    // The page: a Slack message with the buttons, and a signed webhook.
    let (method, message) = eventually("the Slack page", || {
        received.slack.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(method, "chat.postMessage");
    assert_eq!(message["channel"], "#oncall");
    let text = message.to_string();
    for action in ["lim_ack", "lim_resolve", "lim_snooze_30m", "lim_snooze_4h"] {
        assert!(text.contains(action), "{action} button missing: {text}");
    }
    assert!(
        text.contains(&format!("{{\\\"incident_id\\\":{id}}}")),
        "{text}"
    );
    let page = eventually("the webhook page", || {
        received.webhook.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(page["event"], "incident.triggered");
    assert_eq!(page["incident"]["id"], id);
    assert_eq!(
        page["incident"]["link"],
        format!("https://lim.example.com/incidents/{id}")
    );

    // An acknowledge made elsewhere (the API) updates the same message.
    let ack = http
        .post(server.url(&format!("/v1/incidents/{id}/acknowledge")))
        .json(&json!({"by": "alice"}))
        .send()
        .await
        .unwrap();
    assert!(ack.status().is_success());
    let (method, update) = eventually("the Slack update", || {
        received.slack.lock().unwrap().get(1).cloned()
    })
    .await;
    assert_eq!(method, "chat.update");
    assert_eq!(update["channel"], CHANNEL_ID);
    assert_eq!(update["ts"], "1700000000.000001", "the page's own message");
    let text = update.to_string();
    assert!(text.contains("alice"), "{text}");
    assert!(
        !text.contains("lim_ack"),
        "no Acknowledge button once acknowledged"
    );
    let hook_update = eventually("the webhook update", || {
        received.webhook.lock().unwrap().get(1).cloned()
    })
    .await;
    assert_eq!(hook_update["event"], "incident.acknowledged");
    assert_eq!(hook_update["by"], "alice");

    // The deliveries are on the timeline (recorded just after each send).
    let mut delivered = Vec::new();
    for _ in 0..300 {
        let timeline: Value = http
            .get(server.url(&format!("/v1/incidents/{id}/timeline")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        delivered = timeline["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["type"] == "delivered")
            .map(|e| e["recipient"].as_str().unwrap().to_string())
            .collect();
        if delivered.len() >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    delivered.sort();
    assert_eq!(
        delivered,
        [
            "slack:#oncall",
            "slack:#oncall",
            "webhook:ops",
            "webhook:ops"
        ],
        "two pages and two updates delivered"
    );

    // Crash and restart: what was delivered is not sent again. A new alert
    // is paged after whatever the restart re-sends (pending rows go first),
    // so once its page arrives, a duplicate would have arrived too.
    let (slack_before, hooks_before) = (
        received.slack.lock().unwrap().len(),
        received.webhook.lock().unwrap().len(),
    );
    server.kill9().await;
    let server = LimProcess::start(binary(), &url, Some(&config)).await;
    http.post(server.url("/v1/alerts"))
        .json(&json!({"labels": {"alertname": "Other"}}))
        .send()
        .await
        .unwrap();
    eventually("the second incident's pages", || {
        let hooks = received.webhook.lock().unwrap();
        (hooks.len() > hooks_before).then_some(())
    })
    .await;
    let hooks = received.webhook.lock().unwrap();
    let new: Vec<&Value> = hooks[hooks_before..].iter().collect();
    assert!(
        new.iter().all(|h| h["incident"]["id"] != id),
        "incident {id} paged again after the restart: {new:#?}"
    );
    let slack = received.slack.lock().unwrap();
    assert!(slack[slack_before..]
        .iter()
        .all(|(m, _)| m == "chat.postMessage"));
}

/// The quick start: no config file, a Slack channel and a webhook from the
/// environment join the default policy and are paged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quick_start_channels_from_the_environment_are_paged() {
    let (received, base) = stand_ins::start().await;
    let (_db, url) = support::temp_sqlite_url();
    let slack_api = format!("{base}/api/");
    let hook = format!("{base}/hook");
    let server = LimProcess::start_with_env(
        binary(),
        &url,
        None,
        &[
            ("LIM_SLACK_BOT_TOKEN", BOT_TOKEN),
            ("LIM_SLACK_CHANNEL", "#oncall"),
            ("LIM_SLACK_API_URL", &slack_api),
            ("LIM_WEBHOOK_URL", &hook),
            ("LIM_WEBHOOK_SECRET", WEBHOOK_SECRET),
        ],
    )
    .await;
    let r = reqwest::Client::new()
        .post(server.url("/v1/alerts"))
        .json(&json!({"labels": {"alertname": "QuickStart"}}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let (method, message) = eventually("the Slack page", || {
        received.slack.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(method, "chat.postMessage");
    assert_eq!(message["channel"], "#oncall");
    let page = eventually("the webhook page", || {
        received.webhook.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(page["event"], "incident.triggered");
    assert_eq!(page["page"]["target"], "channel:webhook");
}
