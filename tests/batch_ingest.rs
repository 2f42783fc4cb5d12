//! Batch ingest (`System::ingest_batch`: one router message per request,
//! the body deserialised once from its bytes) end to end through the HTTP
//! API, over a real SQLite store: results in input order with repeated
//! incident keys, every alert committed before the answer, counted in
//! the metrics, and a malformed element named by its index and field.

mod support;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::System;
use lim::http::{app, AppState};
use serde_json::{json, Value};
use tower::ServiceExt;

struct Harness {
    _dir: tempfile::TempDir,
    system: System,
    state: AppState,
}

async fn harness() -> Harness {
    let (dir, system) = support::sqlite_system().await;
    Harness {
        _dir: dir,
        state: AppState::ready(system.clone()),
        system,
    }
}

async fn send(state: &AppState, method: Method, uri: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status();
    let raw = response.into_body().collect().await.unwrap().to_bytes();
    let body = if raw.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&raw).expect("a JSON answer")
    };
    (status, body)
}

async fn post(state: &AppState, uri: &str, body: &Value) -> (StatusCode, Value) {
    send(state, Method::POST, uri, body.to_string().into_bytes()).await
}

fn actions(body: &Value) -> Vec<(String, Option<i64>)> {
    body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["action"].as_str().unwrap().to_string(),
                r["incident_id"].as_i64(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_batch_with_repeated_keys_answers_in_input_order() {
    let h = harness().await;
    let a = json!({"alertname": "A", "service": "chat"});
    let b = json!({"alertname": "B", "service": "chat"});
    let (status, body) = post(
        &h.state,
        "/v1/alerts",
        &json!({"alerts": [
            {"labels": a},
            {"labels": b},
            {"labels": a, "annotations": {"summary": "again"}},
            {"labels": a, "status": "resolved"},
            {"labels": b},
            {"labels": a},
            {"labels": {"alertname": "C"}, "status": "resolved"},
            {"labels": {"alertname": "D"}, "dedup_key": "shared"},
            {"labels": {"alertname": "E"}, "dedup_key": "shared"},
        ]}),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let got = actions(&body);
    let (ia, ib) = (got[0].1.unwrap(), got[1].1.unwrap());
    assert_ne!(ia, ib);
    assert_eq!(got[0].0, "created");
    assert_eq!(got[1].0, "created");
    assert_eq!(got[2], ("unchanged".into(), Some(ia)), "a repeat of A");
    assert_eq!(got[3], ("resolved".into(), Some(ia)), "A resolved");
    assert_eq!(got[4], ("unchanged".into(), Some(ib)), "a repeat of B");
    // A fired again after its incident resolved: a new incident.
    assert_eq!(got[5].0, "created");
    let ia2 = got[5].1.unwrap();
    assert!(ia2 != ia && ia2 != ib);
    // A resolve for nothing open changes nothing.
    assert_eq!(got[6], ("unchanged".into(), None));
    // One dedup key, two label sets: one incident.
    assert_eq!(got[7].0, "created");
    assert_eq!(got[8], ("joined".into(), got[7].1));
    // The fingerprints are each alert's own, in input order.
    let fingerprints: Vec<&str> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["fingerprint"].as_str().unwrap())
        .collect();
    assert_eq!(fingerprints[0], fingerprints[2]);
    assert_eq!(fingerprints[1], fingerprints[4]);
    assert_ne!(fingerprints[7], fingerprints[8]);

    // Committed before the answer: the store has every change.
    let first = h
        .system
        .store()
        .get_incident(incident_actors::domain::IncidentId(ia as u64))
        .await
        .unwrap()
        .expect("incident A stored");
    assert_eq!(
        first.status,
        incident_actors::domain::IncidentStatus::Resolved
    );
    let second = h
        .system
        .store()
        .get_incident(incident_actors::domain::IncidentId(ia2 as u64))
        .await
        .unwrap()
        .expect("incident A, again, stored");
    assert!(second.status.is_open());
}

#[tokio::test]
async fn a_large_prometheus_batch_is_committed_and_counted() {
    let h = harness().await;
    // 300 alerts over 60 label sets, each seen five times, interleaved.
    let batch: Vec<Value> = (0..300)
        .map(|i| json!({"labels": {"alertname": "Load", "instance": format!("i{}", i % 60)}}))
        .collect();
    let (status, body) = post(&h.state, "/api/v2/alerts", &Value::Array(batch.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(h.system.open_count().await.unwrap(), 60);
    // Again: repeats of open incidents only.
    let (status, _) = post(&h.state, "/api/v2/alerts", &Value::Array(batch)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(h.system.open_count().await.unwrap(), 60);
    let counted = |result: &str| -> f64 {
        h.system
            .gather_metrics()
            .iter()
            .filter(|f| f.name() == "lim_ingest_alerts_total")
            .flat_map(|f| f.get_metric())
            .filter(|m| {
                let labels = m.get_label();
                labels
                    .iter()
                    .any(|l| l.name() == "source" && l.value() == "prometheus")
                    && labels
                        .iter()
                        .any(|l| l.name() == "result" && l.value() == result)
            })
            .map(|m| m.get_counter().get_value())
            .sum()
    };
    assert_eq!(counted("created"), 60.0);
    assert_eq!(counted("unchanged"), 540.0);
}

#[tokio::test]
async fn a_malformed_element_is_named_by_index_and_field() {
    let h = harness().await;
    let s = &h.state;
    let error = |body: &Value| {
        (
            body["error"]["code"].as_str().unwrap().to_string(),
            body["error"]["message"].as_str().unwrap().to_string(),
        )
    };
    let (status, body) = post(
        s,
        "/api/v2/alerts",
        &json!([{"labels": {"a": "1"}}, {"labels": {"a": "1"}}, {"labels": {"a": 7}}]),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(
        error(&body),
        (
            "invalid_body".into(),
            "alert 2: labels.a: invalid type: integer `7`, expected a string".into()
        )
    );
    let (status, body) = post(
        s,
        "/v1/alerts",
        &json!({"alerts": [{"labels": {"a": "1"}}, {"labels": {"a": "1"}, "status": "open"}]}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (code, message) = error(&body);
    assert_eq!(code, "invalid_body");
    assert!(
        message.starts_with("alert 1: status: unknown variant `open`"),
        "{message}"
    );
    // `alerts` not first: still a batch with a field next to it.
    let (status, body) = post(s, "/v1/alerts", &json!({"extra": 1, "alerts": []})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body).1, "unknown field `extra` next to `alerts`");
    // A syntax error after a good element is invalid JSON, not a shape error.
    let (status, body) = send(
        s,
        Method::POST,
        "/api/v2/alerts",
        br#"[{"labels":{"a":"1"}},{"labels":{"a":"#.to_vec(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error(&body).0, "invalid_json");
    // Nothing of a refused request was ingested.
    assert_eq!(h.system.open_count().await.unwrap(), 0);
}
