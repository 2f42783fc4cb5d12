//! Local stand-ins for what lim talks to in the end-to-end tests, on one
//! axum server on 127.0.0.1:0:
//!
//! * `/api/{method}`: the Slack Web API, answering like Slack (the channel
//!   id [`CHANNEL_ID`], a `ts`, and the `message` slack-morphism reads) and
//!   checking the bot token [`BOT_TOKEN`];
//! * `/hook`: a webhook receiver that verifies `X-Lim-Signature` with
//!   [`WEBHOOK_SECRET`];
//! * `/actions/{id}`: an interaction's `response_url`.
//!
//! Everything received is recorded in [`Received`]; [`eventually`] polls it.
#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};

pub const BOT_TOKEN: &str = "xoxb-e2e";
/// The channel id the Slack stand-in answers `chat.postMessage` with.
pub const CHANNEL_ID: &str = "C0ONCALL";
pub const WEBHOOK_SECRET: &str = "e2e-webhook-secret";

#[derive(Default)]
pub struct Received {
    /// Slack Web API calls: (method, JSON body).
    pub slack: Mutex<Vec<(String, Value)>>,
    /// Webhook bodies, signature verified.
    pub webhook: Mutex<Vec<Value>>,
    /// Posts to an interaction's `response_url`.
    pub responses: Mutex<Vec<Value>>,
}

impl Received {
    /// The bodies of the Slack calls of one method, in order.
    pub fn calls(&self, method: &str) -> Vec<Value> {
        self.slack
            .lock()
            .unwrap()
            .iter()
            .filter(|(m, _)| m == method)
            .map(|(_, body)| body.clone())
            .collect()
    }
}

async fn slack_api(
    State(r): State<Arc<Received>>,
    UrlPath(method): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Json<Value> {
    assert_eq!(
        headers.get("authorization").unwrap().to_str().unwrap(),
        format!("Bearer {BOT_TOKEN}")
    );
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut calls = r.slack.lock().unwrap();
    let ts = match method.as_str() {
        "chat.update" => body["ts"].clone(),
        _ => json!(format!("1700000000.{:06}", calls.len() + 1)),
    };
    let text = body["text"].clone();
    calls.push((method, body));
    Json(json!({"ok": true, "channel": CHANNEL_ID, "ts": ts,
                "message": {"ts": ts, "text": text, "type": "message"}}))
}

async fn webhook(State(r): State<Arc<Received>>, headers: HeaderMap, body: Bytes) -> &'static str {
    let timestamp = headers["x-lim-timestamp"].to_str().unwrap();
    let signature = headers["x-lim-signature"].to_str().unwrap();
    assert!(
        lim::channels::webhook::verify_signature(WEBHOOK_SECRET, timestamp, &body, signature),
        "bad signature"
    );
    r.webhook
        .lock()
        .unwrap()
        .push(serde_json::from_slice(&body).unwrap());
    "ok"
}

async fn response_url(State(r): State<Arc<Received>>, body: Bytes) -> Json<Value> {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    r.responses.lock().unwrap().push(body);
    Json(json!({"ok": true}))
}

/// Starts the stand-ins; returns what they record and their base URL.
pub async fn start() -> (Arc<Received>, String) {
    let received = Arc::new(Received::default());
    let app = Router::new()
        .route("/api/{method}", post(slack_api))
        .route("/hook", post(webhook))
        .route("/actions/{id}", post(response_url))
        .with_state(received.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (received, base)
}

/// Polls `f` until it returns `Some`, for at most 30 s.
pub async fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..300 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}
