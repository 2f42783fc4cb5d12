//! The foreign ingest formats end to end, with the payloads real servers sent
//! (`tests/samples/`, see its README): Prometheus' push (`POST
//! /api/v2/alerts`), Alertmanager's and Grafana's webhook (`POST
//! /v1/integrations/alertmanager`) and PagerDuty Events API v2 (`POST
//! /v2/enqueue`). `app(state)` is driven with `tower::ServiceExt::oneshot`
//! over a real SQLite store in a temporary folder.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::time::{Clock, SystemClock, Timestamp};
use incident_actors::System;
use lim::http::{app, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

const PROMETHEUS_SAMPLE: &str = include_str!("samples/prometheus_push_v2.json");
const WEBHOOK_SAMPLE: &str = include_str!("samples/alertmanager_webhook_v4.json");
const PAGERDUTY_SAMPLE: &str = include_str!("samples/alertmanager_pagerduty_v2.json");

const RESOLVE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

struct Harness {
    _dir: tempfile::TempDir,
    system: System,
    state: AppState,
}

async fn harness() -> Harness {
    let (dir, system) = support::sqlite_system().await;
    Harness {
        _dir: dir,
        state: AppState::ready(system.clone()).with_resolve_timeout(RESOLVE_TIMEOUT),
        system,
    }
}

struct Reply {
    status: StatusCode,
    /// The raw body, for answers that must be empty.
    raw: Vec<u8>,
    body: Value,
}

async fn send(
    state: &AppState,
    method: Method,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app(state.clone())
        .oneshot(request.body(Body::from(body)).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let raw = response
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).unwrap_or_else(|e| {
            panic!(
                "{uri}: response is not JSON ({e}): {}",
                String::from_utf8_lossy(&raw)
            )
        })
    };
    Reply { status, raw, body }
}

async fn post_json(state: &AppState, uri: &str, body: &Value) -> Reply {
    post_raw(state, uri, body.to_string().into_bytes()).await
}

async fn post_raw(state: &AppState, uri: &str, body: Vec<u8>) -> Reply {
    send(
        state,
        Method::POST,
        uri,
        &[(header::CONTENT_TYPE.as_str(), "application/json")],
        body,
    )
    .await
}

async fn get(state: &AppState, uri: &str) -> Value {
    let r = send(state, Method::GET, uri, &[], Vec::new()).await;
    assert_eq!(r.status, StatusCode::OK, "{uri}: {}", r.body);
    r.body
}

/// Every incident, newest first.
async fn incidents(state: &AppState) -> Vec<Value> {
    get(state, "/v1/incidents").await["incidents"]
        .as_array()
        .expect("an incident list")
        .clone()
}

/// The only incident there is, with its alerts and timeline.
async fn only_incident(state: &AppState) -> Value {
    let list = incidents(state).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let id = list[0]["id"].as_u64().expect("an id");
    get(state, &format!("/v1/incidents/{id}")).await
}

fn sample(text: &str) -> Value {
    serde_json::from_str(text).expect("the sample is JSON")
}

fn at(offset: i64) -> String {
    Timestamp(SystemClock.now().0 + offset * 1000).to_rfc3339()
}

fn extra(alert: &Value) -> Value {
    serde_json::from_str(alert["extra"].as_str().expect("extra is JSON text"))
        .expect("extra is a JSON object")
}

fn assert_error(r: &Reply, status: StatusCode, code: &str, mentions: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    assert_eq!(r.body["error"]["code"], code, "{}", r.body);
    let message = r.body["error"]["message"].as_str().unwrap_or("");
    assert!(
        message.contains(mentions),
        "{message:?} should mention {mentions:?}"
    );
}

// ---- Prometheus push ----------------------------------------------------

#[tokio::test]
async fn prometheus_sample_as_captured_reads_resolved() {
    let h = harness().await;
    let r = post_raw(
        &h.state,
        "/api/v2/alerts",
        PROMETHEUS_SAMPLE.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.raw.is_empty(), "Alertmanager answers with an empty body");
    // Its endsAt has passed: a resolve of nothing open opens nothing.
    assert!(incidents(&h.state).await.is_empty());
    h.system.shutdown().await;
}

#[tokio::test]
async fn prometheus_sample_shifted_to_now_fires_and_resends_join() {
    let h = harness().await;
    let mut body = sample(PROMETHEUS_SAMPLE);
    body[0]["startsAt"] = json!(at(-60));
    body[0]["endsAt"] = json!(at(240));
    let r = post_json(&h.state, "/api/v2/alerts", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.raw.is_empty());

    let incident = only_incident(&h.state).await;
    assert_eq!(incident["status"], "triggered");
    assert_eq!(incident["title"], "error rate above 5%");
    let alerts = incident["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 1);
    let alert = &alerts[0];
    assert_eq!(alert["source"], "prometheus");
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["dedup_key"], Value::Null);
    assert_eq!(alert["labels"]["alertname"], "LLMErrorRateHigh");
    assert_eq!(alert["ends_at"], body[0]["endsAt"]);
    assert_eq!(
        extra(alert),
        json!({"generatorURL": "http://vm:59079/graph?g0.expr=vector%281%29&g0.tab=1"})
    );

    // Prometheus re-sends with a later endsAt: same incident, no new row.
    body[0]["endsAt"] = json!(at(300));
    let r = post_json(&h.state, "/api/v2/alerts", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let again = only_incident(&h.state).await;
    assert_eq!(again["id"], incident["id"]);
    assert_eq!(again["alerts"].as_array().unwrap().len(), 1, "{again}");

    // Then it stops firing: endsAt now in the past resolves the incident.
    body[0]["endsAt"] = json!(at(-1));
    let r = post_json(&h.state, "/api/v2/alerts", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(only_incident(&h.state).await["status"], "resolved");
    h.system.shutdown().await;
}

#[tokio::test]
async fn prometheus_alert_without_ends_at_gets_the_resolve_timeout() {
    let h = harness().await;
    let before = SystemClock.now();
    let body = json!([{"labels": {"alertname": "NoEnd", "model": "gpt-4o"}}]);
    let r = post_json(&h.state, "/api/v2/alerts", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = SystemClock.now();
    let incident = only_incident(&h.state).await;
    let alert = &incident["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["extra"], Value::Null);
    let ends = Timestamp::parse_rfc3339(alert["ends_at"].as_str().expect("ends_at")).unwrap();
    assert!(
        ends >= before.plus(RESOLVE_TIMEOUT) && ends <= after.plus(RESOLVE_TIMEOUT),
        "{ends} is now + the resolve timeout"
    );
    let starts = Timestamp::parse_rfc3339(alert["starts_at"].as_str().unwrap()).unwrap();
    assert!(starts >= before && starts <= after);
    h.system.shutdown().await;
}

#[tokio::test]
async fn prometheus_bad_requests() {
    let h = harness().await;
    let s = &h.state;
    let r = post_json(s, "/api/v2/alerts", &json!([])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(r.raw.is_empty());

    let r = post_json(
        s,
        "/api/v2/alerts",
        &json!([{"labels": {"a": "1"}}, {"annotations": {"summary": "x"}}]),
    )
    .await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "invalid_body",
        "alert 1: missing field `labels`",
    );
    let r = post_json(s, "/api/v2/alerts", &json!([{"labels": {}}])).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body", "`labels`");
    let r = post_json(s, "/api/v2/alerts", &json!({"labels": {"a": "1"}})).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body", "array");
    let r = post_raw(s, "/api/v2/alerts", b"[{\"labels\":".to_vec()).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json", "");
    let r = send(
        s,
        Method::POST,
        "/api/v2/alerts",
        &[("content-type", "text/plain")],
        b"[]".to_vec(),
    )
    .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "",
    );
    // A rejected request ingests nothing, not even its valid alerts.
    assert!(incidents(s).await.is_empty());
    h.system.shutdown().await;
}

// ---- Alertmanager / Grafana webhook ----------------------------------------

async fn post_webhook(state: &AppState, body: &Value) -> Reply {
    send(
        state,
        Method::POST,
        "/v1/integrations/alertmanager",
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer am-test-key"),
        ],
        body.to_string().into_bytes(),
    )
    .await
}

#[tokio::test]
async fn alertmanager_group_is_one_incident_and_resolves_with_it() {
    let h = harness().await;
    let body = sample(WEBHOOK_SAMPLE);
    let r = post_webhook(&h.state, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "ok");
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2, "{}", r.body);
    assert_eq!(results[0]["action"], "created");
    assert_eq!(results[1]["action"], "joined");
    assert_eq!(results[0]["incident_id"], results[1]["incident_id"]);

    let incident = only_incident(&h.state).await;
    assert_eq!(incident["status"], "triggered");
    assert_eq!(incident["alert_count"], 2);
    let alerts = incident["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    for alert in alerts {
        assert_eq!(alert["source"], "alertmanager");
        assert_eq!(alert["dedup_key"], body["groupKey"]);
        assert_eq!(alert["status"], "firing");
        assert_eq!(alert["ends_at"], Value::Null, "{alert}");
        let x = extra(alert);
        assert_eq!(x["externalURL"], "http://vm:53143");
        assert_eq!(x["receiver"], "hook");
    }
    let gw1 = alerts
        .iter()
        .find(|a| a["labels"]["instance"] == "gw-1")
        .expect("gw-1");
    assert_eq!(
        extra(gw1)["generatorURL"],
        "http://prometheus.example/graph"
    );
    assert_eq!(extra(gw1)["fingerprint"], "04269496f970fd8a");
    assert_eq!(
        gw1["annotations"]["runbook_url"],
        "https://runbooks.example/llm-latency"
    );

    // The same group resolved (send_resolved: true).
    let mut resolved = body.clone();
    resolved["status"] = json!("resolved");
    for alert in resolved["alerts"].as_array_mut().unwrap() {
        alert["status"] = json!("resolved");
        alert["endsAt"] = json!(at(0));
    }
    let r = post_webhook(&h.state, &resolved).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let results = r.body["results"].as_array().unwrap();
    assert_eq!(results[0]["action"], "joined");
    assert_eq!(results[1]["action"], "resolved");
    let incident = only_incident(&h.state).await;
    assert_eq!(incident["status"], "resolved", "{incident}");
    h.system.shutdown().await;
}

#[tokio::test]
async fn alertmanager_resolved_group_status_resolves_every_alert() {
    let h = harness().await;
    let body = sample(WEBHOOK_SAMPLE);
    let r = post_webhook(&h.state, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Group status resolved, alerts still marked firing: all resolve.
    let mut resolved = body.clone();
    resolved["status"] = json!("resolved");
    let r = post_webhook(&h.state, &resolved).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(only_incident(&h.state).await["status"], "resolved");
    h.system.shutdown().await;
}

#[tokio::test]
async fn grafana_webhook_is_accepted_with_its_extras() {
    let h = harness().await;
    let mut body = sample(WEBHOOK_SAMPLE);
    body["version"] = json!("1");
    body["orgId"] = json!(1);
    body["state"] = json!("alerting");
    body["title"] = json!("[FIRING:2] LLMHighLatency");
    body["message"] = json!("**Firing**\n\nValue: B=4.2");
    body["futureGroupField"] = json!({"x": 1});
    for alert in body["alerts"].as_array_mut().unwrap() {
        alert["silenceURL"] = json!("http://grafana/alerting/silence/new");
        alert["dashboardURL"] = json!("http://grafana/d/abc");
        alert["panelURL"] = json!("http://grafana/d/abc?viewPanel=2");
        alert["values"] = json!({"B": 4.2});
        alert["valueString"] = json!("[ var='B' labels={} value=4.2 ]");
        alert["futureAlertField"] = json!(true);
    }
    let r = post_webhook(&h.state, &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let incident = only_incident(&h.state).await;
    let alert = &incident["alerts"][0];
    assert_eq!(alert["source"], "grafana");
    let x = extra(alert);
    assert_eq!(x["silenceURL"], "http://grafana/alerting/silence/new");
    assert_eq!(x["dashboardURL"], "http://grafana/d/abc");
    assert_eq!(x["panelURL"], "http://grafana/d/abc?viewPanel=2");
    assert_eq!(x["values"], json!({"B": 4.2}));
    assert_eq!(x["valueString"], "[ var='B' labels={} value=4.2 ]");
    assert_eq!(x["futureAlertField"], true);
    assert_eq!(x["futureGroupField"], json!({"x": 1}));
    assert_eq!(x["orgId"], 1);
    h.system.shutdown().await;
}

#[tokio::test]
async fn alertmanager_bad_requests_name_the_field() {
    let h = harness().await;
    let s = &h.state;
    for field in ["groupKey", "alerts", "status"] {
        let mut body = sample(WEBHOOK_SAMPLE);
        body.as_object_mut().unwrap().remove(field);
        let r = post_webhook(s, &body).await;
        assert_error(&r, StatusCode::BAD_REQUEST, "invalid_body", field);
    }
    let mut body = sample(WEBHOOK_SAMPLE);
    body["alerts"][1].as_object_mut().unwrap().remove("labels");
    let r = post_webhook(s, &body).await;
    assert_error(
        &r,
        StatusCode::BAD_REQUEST,
        "invalid_body",
        "alert 1: missing field `labels`",
    );
    let r = post_raw(s, "/v1/integrations/alertmanager", b"{".to_vec()).await;
    assert_error(&r, StatusCode::BAD_REQUEST, "invalid_json", "");
    assert!(incidents(s).await.is_empty());
    h.system.shutdown().await;
}

// ---- PagerDuty Events API v2 -------------------------------------------------

async fn enqueue(state: &AppState, body: &Value) -> Reply {
    post_json(state, "/v2/enqueue", body).await
}

fn assert_accepted(r: &Reply, dedup_key: &str) {
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(
        r.body,
        json!({"status": "success", "message": "Event processed", "dedup_key": dedup_key})
    );
}

fn assert_invalid_event(r: &Reply, mentions: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["status"], "invalid event", "{}", r.body);
    assert_eq!(r.body["message"], "Event object is invalid");
    let errors = r.body["errors"].as_array().expect("errors");
    assert!(
        errors
            .iter()
            .any(|e| e.as_str().unwrap_or("").contains(mentions)),
        "{errors:?} should mention {mentions:?}"
    );
}

#[tokio::test]
async fn pagerduty_trigger_repeat_acknowledge_resolve() {
    let h = harness().await;
    let s = &h.state;
    let trigger = sample(PAGERDUTY_SAMPLE);
    let key = trigger["dedup_key"].as_str().unwrap().to_string();

    let r = enqueue(s, &trigger).await;
    assert_accepted(&r, &key);
    let incident = only_incident(s).await;
    assert_eq!(incident["status"], "triggered");
    assert_eq!(
        incident["title"],
        "[FIRING:2] LLMHighLatency (gpt-4o openai chat critical)"
    );
    assert_eq!(incident["severity"], "error");
    let alert = &incident["alerts"][0];
    assert_eq!(alert["source"], "pagerduty");
    assert_eq!(alert["dedup_key"], key);
    assert_eq!(
        alert["labels"],
        json!({"source": "Alertmanager", "severity": "error"})
    );
    let x = extra(alert);
    assert_eq!(x["custom_details"]["num_firing"], "2");
    assert_eq!(x["client"], "Alertmanager");
    assert_eq!(x["client_url"], "http://vm:53143/#/alerts?receiver=pd");
    assert!(
        !alert.to_string().contains("pd-test-key"),
        "the routing key is a credential"
    );

    // The same event again: the same incident, no new alert row.
    let r = enqueue(s, &trigger).await;
    assert_accepted(&r, &key);
    let again = only_incident(s).await;
    assert_eq!(again["id"], incident["id"]);
    assert_eq!(again["alerts"].as_array().unwrap().len(), 1);

    let mut acknowledge = trigger.clone();
    acknowledge["event_action"] = json!("acknowledge");
    let r = enqueue(s, &acknowledge).await;
    assert_accepted(&r, &key);
    let acked = only_incident(s).await;
    assert_eq!(acked["status"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], "Alertmanager");

    let resolve =
        json!({"routing_key": "pd-test-key", "event_action": "resolve", "dedup_key": key});
    let r = enqueue(s, &resolve).await;
    assert_accepted(&r, &key);
    let resolved = only_incident(s).await;
    assert_eq!(resolved["status"], "resolved");
    assert_eq!(resolved["resolved_by"], "pagerduty");

    // Nothing open with that key any more: still a success, as at PagerDuty.
    let r = enqueue(s, &resolve).await;
    assert_accepted(&r, &key);
    let r = enqueue(s, &acknowledge).await;
    assert_accepted(&r, &key);
    assert_eq!(incidents(s).await.len(), 1);
    h.system.shutdown().await;
}

#[tokio::test]
async fn pagerduty_trigger_without_dedup_key_gets_one() {
    let h = harness().await;
    let s = &h.state;
    let mut trigger = sample(PAGERDUTY_SAMPLE);
    trigger.as_object_mut().unwrap().remove("dedup_key");
    let r = enqueue(s, &trigger).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let key = r.body["dedup_key"]
        .as_str()
        .expect("a dedup key")
        .to_string();
    assert_eq!(key.len(), 32);
    assert!(key.chars().all(|c| c.is_ascii_hexdigit()), "{key}");
    assert_eq!(only_incident(s).await["alerts"][0]["dedup_key"], key);

    // A second trigger without a key is a different incident.
    let r = enqueue(s, &trigger).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_ne!(r.body["dedup_key"], key);
    assert_eq!(incidents(s).await.len(), 2);

    let resolve = json!({"routing_key": "k", "event_action": "resolve", "dedup_key": key});
    assert_accepted(&enqueue(s, &resolve).await, &key);
    let list = incidents(s).await;
    let statuses: Vec<_> = list.iter().map(|i| i["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, vec!["triggered", "resolved"], "newest first");
    h.system.shutdown().await;
}

#[tokio::test]
async fn pagerduty_invalid_events_answer_in_pagerdutys_shape() {
    let h = harness().await;
    let s = &h.state;
    let valid = sample(PAGERDUTY_SAMPLE);
    let with = |path: &[&str], value: Value| {
        let mut body = valid.clone();
        let (last, parents) = path.split_last().unwrap();
        let mut target = &mut body;
        for p in parents {
            target = &mut target[*p];
        }
        match value {
            Value::Null => {
                target.as_object_mut().unwrap().remove(*last);
            }
            v => target[*last] = v,
        }
        body
    };
    let cases = [
        (with(&["routing_key"], Value::Null), "'routing_key'"),
        (with(&["routing_key"], json!("")), "'routing_key'"),
        (with(&["event_action"], Value::Null), "'event_action'"),
        (
            with(&["event_action"], json!("page")),
            "'event_action' is invalid",
        ),
        (with(&["payload"], Value::Null), "'payload'"),
        (
            with(&["payload", "summary"], Value::Null),
            "'payload.summary'",
        ),
        (
            with(&["payload", "source"], Value::Null),
            "'payload.source'",
        ),
        (
            with(&["payload", "severity"], Value::Null),
            "'payload.severity'",
        ),
        (
            with(&["payload", "severity"], json!("fatal")),
            "'payload.severity' is invalid",
        ),
        (
            with(&["payload", "timestamp"], json!("noon")),
            "'payload.timestamp'",
        ),
        (with(&["dedup_key"], json!(42)), "'dedup_key'"),
        (
            json!({"routing_key": "k", "event_action": "resolve"}),
            "'dedup_key' is missing",
        ),
        (
            json!({"routing_key": "k", "event_action": "acknowledge", "dedup_key": ""}),
            "'dedup_key' is missing",
        ),
        (json!(["not", "an", "object"]), "JSON object"),
    ];
    for (body, mentions) in &cases {
        let r = enqueue(s, body).await;
        assert_invalid_event(&r, mentions);
    }
    // Several problems at once are all listed.
    let r = enqueue(
        s,
        &json!({"event_action": "trigger", "payload": {"severity": "x"}}),
    )
    .await;
    assert_invalid_event(&r, "'routing_key'");
    assert_eq!(r.body["errors"].as_array().unwrap().len(), 4, "{}", r.body);
    // Not JSON at all.
    let r = post_raw(s, "/v2/enqueue", b"{\"routing_key\":".to_vec()).await;
    assert_invalid_event(&r, "malformed JSON");
    // Transport errors keep lim's own shape.
    let r = send(
        s,
        Method::POST,
        "/v2/enqueue",
        &[("content-type", "text/plain")],
        b"{}".to_vec(),
    )
    .await;
    assert_error(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
        "",
    );
    assert!(incidents(s).await.is_empty());
    h.system.shutdown().await;
}

#[tokio::test]
async fn not_ready_is_503_with_retry_after_on_every_format() {
    let state = AppState::new();
    for (uri, body) in [
        ("/api/v2/alerts", sample(PROMETHEUS_SAMPLE)),
        ("/v1/integrations/alertmanager", sample(WEBHOOK_SAMPLE)),
        ("/v2/enqueue", sample(PAGERDUTY_SAMPLE)),
    ] {
        let request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        let response = app(state.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{uri}");
        assert!(
            response.headers().contains_key(header::RETRY_AFTER),
            "{uri}"
        );
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(body["error"]["code"], "not_ready", "{uri}");
    }
}
