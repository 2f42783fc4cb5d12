//! The webhook channel against a real HTTP receiver: an axum server on
//! 127.0.0.1:0 started by the test, which records every request and
//! answers what the test scripted. The signature is checked twice: with an
//! HMAC computed here independently of lim's code, and with
//! `verify_signature`, the function receivers are told to use.

mod channel_fixtures;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use channel_fixtures::{ack_update, page, LINK};
use hmac::{Hmac, Mac};
use incident_actors::domain::Recipient;
use incident_actors::ports::{Channel, ChannelError};
use lim::channels::webhook::{verify_signature, WebhookBody, WebhookChannel, WebhookConfig};
use serde_json::{json, Value};
use sha2::Sha256;

/// One scripted answer: status, headers, and how long to wait first.
#[derive(Clone)]
struct Answer {
    status: u16,
    headers: Vec<(&'static str, &'static str)>,
    delay: Duration,
}

fn answer(status: u16) -> Answer {
    Answer {
        status,
        headers: vec![],
        delay: Duration::ZERO,
    }
}

#[derive(Default)]
struct Receiver {
    requests: Mutex<Vec<(HeaderMap, Bytes)>>,
    /// Answers in order; 200 once they run out.
    script: Mutex<VecDeque<Answer>>,
}

async fn hook(State(r): State<Arc<Receiver>>, headers: HeaderMap, body: Bytes) -> Response {
    r.requests.lock().unwrap().push((headers, body));
    let a = r.script.lock().unwrap().pop_front().unwrap_or(answer(200));
    tokio::time::sleep(a.delay).await;
    let mut response =
        (StatusCode::from_u16(a.status).unwrap(), "receiver says so").into_response();
    for (k, v) in a.headers {
        response.headers_mut().insert(k, v.parse().unwrap());
    }
    response
}

/// Starts a receiver answering `script`; returns it and its URL.
async fn receiver(script: Vec<Answer>) -> (Arc<Receiver>, String) {
    let state = Arc::new(Receiver {
        script: Mutex::new(script.into()),
        ..Default::default()
    });
    let app = Router::new()
        .route("/hook", post(hook))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, url)
}

fn channel(url: &str, secret: Option<&str>, timeout: Duration) -> WebhookChannel {
    WebhookChannel::new(WebhookConfig {
        name: "ops".into(),
        url: url.into(),
        secret: secret.map(str::to_string),
        timeout,
    })
    .unwrap()
}

fn ops() -> Recipient {
    Recipient::Webhook { name: "ops".into() }
}

/// HMAC-SHA256 over `timestamp.body`, written here without lim's code.
fn independent_signature(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name)
        .unwrap_or_else(|| panic!("no {name} header"))
        .to_str()
        .unwrap()
}

#[tokio::test]
async fn a_signed_page_and_update() {
    let (rx, url) = receiver(vec![]).await;
    let secret = "whsec_test";
    let ch = channel(&url, Some(secret), Duration::from_secs(5));
    assert_eq!(ch.name(), "webhook:ops");

    let page = page(ops());
    let delivered = ch.deliver(&page).await.expect("delivered");
    assert_eq!(delivered.external_ref, None);
    let update = ack_update(ops(), None);
    ch.deliver(&update).await.expect("delivered");

    let requests = rx.requests.lock().unwrap().clone();
    assert_eq!(requests.len(), 2);

    // The page: headers.
    let (h, body) = &requests[0];
    assert_eq!(header(h, "content-type"), "application/json");
    assert_eq!(header(h, "idempotency-key"), page.key.0);
    assert_eq!(header(h, "x-lim-event"), "incident.triggered");
    let timestamp = header(h, "x-lim-timestamp");
    let sent: u64 = timestamp.parse().expect("Unix seconds");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(sent) < 60, "timestamp {sent} vs now {now}");
    let signature = header(h, "x-lim-signature");
    assert_eq!(signature, independent_signature(secret, timestamp, body));
    assert!(verify_signature(secret, timestamp, body, signature));
    assert!(!verify_signature("wrong", timestamp, body, signature));
    let mut tampered = body.to_vec();
    tampered[0] = b' ';
    assert!(!verify_signature(secret, timestamp, &tampered, signature));

    // The page: body, exactly.
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(
        v,
        json!({
            "version": "1",
            "event": "incident.triggered",
            "incident": {
                "id": 42,
                "title": "HighLatency",
                "status": "triggered",
                "severity": "critical",
                "service": "chat",
                "labels": {
                    "alertname": "HighLatency",
                    "env": "prod",
                    "model": "gpt-4o",
                    "provider": "openai",
                    "tenant": "acme"
                },
                "annotations": {
                    "summary": "p99 latency of gpt-4o is 7.2s",
                    "description": "p99 > 5s for 10m & rising",
                    "runbook_url": "https://runbooks.example.com/llm-latency"
                },
                "created_at": "2024-05-01T12:00:00.000Z",
                "acknowledged_by": null,
                "acknowledged_at": null,
                "resolved_by": null,
                "resolved_at": null,
                "link": LINK
            },
            "page": {"step": 0, "repeat": 0, "target": "user:alice"},
            "by": null,
            "via": null,
            "delivery_key": page.key.0,
            "sent_at": "2024-05-01T12:00:01.000Z"
        })
    );
    // And it reads back as the documented type.
    let typed: WebhookBody = serde_json::from_slice(body).unwrap();
    assert_eq!(typed, WebhookBody::of(&page).unwrap());

    // The update.
    let (h, body) = &requests[1];
    assert_eq!(header(h, "idempotency-key"), update.key.0);
    assert_eq!(header(h, "x-lim-event"), "incident.acknowledged");
    let timestamp = header(h, "x-lim-timestamp");
    assert!(verify_signature(
        secret,
        timestamp,
        body,
        header(h, "x-lim-signature")
    ));
    let v: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(v["event"], "incident.acknowledged");
    assert_eq!(v["by"], "alice");
    assert_eq!(v["via"], "slack");
    assert_eq!(v["page"], Value::Null);
    assert_eq!(v["incident"]["status"], "acknowledged");
    assert_eq!(v["incident"]["acknowledged_by"], "alice");
    assert_eq!(v["incident"]["acknowledged_at"], "2024-05-01T12:02:00.000Z");
    assert_eq!(v["delivery_key"], update.key.0);
}

#[tokio::test]
async fn without_a_secret_there_is_no_signature() {
    let (rx, url) = receiver(vec![]).await;
    channel(&url, None, Duration::from_secs(5))
        .deliver(&page(ops()))
        .await
        .unwrap();
    let requests = rx.requests.lock().unwrap();
    assert!(requests[0].0.get("x-lim-signature").is_none());
    assert!(requests[0].0.get("x-lim-timestamp").is_some());
}

#[tokio::test]
async fn a_5xx_fails_and_the_retry_is_delivered() {
    let (rx, url) = receiver(vec![answer(500)]).await;
    let ch = channel(&url, Some("s"), Duration::from_secs(5));
    let n = page(ops());
    let err = ch.deliver(&n).await.unwrap_err();
    assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
    assert!(err.to_string().contains("500"), "{err}");
    assert!(
        !err.to_string().contains("127.0.0.1"),
        "no URL in errors: {err}"
    );
    ch.deliver(&n).await.expect("the retry is delivered");
    let requests = rx.requests.lock().unwrap();
    assert_eq!(requests.len(), 2);
    assert_eq!(
        header(&requests[0].0, "idempotency-key"),
        header(&requests[1].0, "idempotency-key"),
        "a retry carries the same idempotency key"
    );
}

#[tokio::test]
async fn statuses_are_classified() {
    let (_rx, url) = receiver(vec![
        answer(400),
        answer(404),
        answer(302),
        answer(408),
        answer(503),
        Answer {
            status: 429,
            headers: vec![("retry-after", "7")],
            delay: Duration::ZERO,
        },
        answer(429),
        answer(204),
    ])
    .await;
    let ch = channel(&url, None, Duration::from_secs(5));
    let n = page(ops());
    for _ in 0..3 {
        let err = ch.deliver(&n).await.unwrap_err();
        assert!(matches!(err, ChannelError::Refused { .. }), "{err}");
    }
    for _ in 0..2 {
        let err = ch.deliver(&n).await.unwrap_err();
        assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
    }
    match ch.deliver(&n).await.unwrap_err() {
        ChannelError::RateLimited { retry_after, .. } => {
            assert_eq!(retry_after, Duration::from_secs(7))
        }
        other => panic!("{other}"),
    }
    assert!(matches!(
        ch.deliver(&n).await.unwrap_err(),
        ChannelError::RateLimited { .. }
    ));
    ch.deliver(&n).await.expect("204 is delivered");
}

#[tokio::test]
async fn a_hanging_receiver_fails_within_the_timeout() {
    let (rx, url) = receiver(vec![Answer {
        status: 200,
        headers: vec![],
        delay: Duration::from_secs(60),
    }])
    .await;
    let ch = channel(&url, None, Duration::from_millis(500));
    let start = Instant::now();
    let err = ch.deliver(&page(ops())).await.unwrap_err();
    let took = start.elapsed();
    assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert!(took >= Duration::from_millis(400), "took {took:?}");
    assert_eq!(
        rx.requests.lock().unwrap().len(),
        1,
        "it did reach the receiver"
    );
}

#[tokio::test]
async fn nobody_listening_fails() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = channel(
        &format!("http://127.0.0.1:{port}/hook"),
        None,
        Duration::from_secs(2),
    )
    .deliver(&page(ops()))
    .await
    .unwrap_err();
    assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
}
