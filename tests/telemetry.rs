//! Telemetry of the real binary: spans exported over OTLP/HTTP to a local
//! receiver started here, and `LIM_LOG_FORMAT=json` logs.
//!
//! The receiver is an axum server on 127.0.0.1 taking `POST /v1/traces`
//! and decoding each body as an OTLP `ExportTraceServiceRequest` (the
//! protobuf types of opentelemetry-proto). lim is stopped with SIGTERM,
//! which flushes its batch processor, so the test asserts once the process
//! has exited: no waiting on export timers.

mod lim_process;
mod support;

use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use lim_process::LimProcess;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

type Received = Arc<Mutex<Vec<ExportTraceServiceRequest>>>;

/// A local OTLP/HTTP trace receiver; returns its base URL.
async fn otlp_receiver(received: Received) -> String {
    async fn traces(State(received): State<Received>, body: Bytes) -> StatusCode {
        match ExportTraceServiceRequest::decode(body) {
            Ok(request) => {
                received.lock().unwrap().push(request);
                StatusCode::OK
            }
            Err(_) => StatusCode::BAD_REQUEST,
        }
    }
    let app = Router::new()
        .route("/v1/traces", post(traces))
        .with_state(received);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

/// SIGTERM, then the exit (bounded).
async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().expect("running");
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("lim exits after SIGTERM")
        .expect("wait")
}

fn attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| v.value.as_ref())
}

fn string(attributes: &[KeyValue], key: &str) -> Option<String> {
    match attribute(attributes, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int(attributes: &[KeyValue], key: &str) -> Option<i64> {
    match attribute(attributes, key)? {
        AnyValue::IntValue(i) => Some(*i),
        _ => None,
    }
}

#[tokio::test]
async fn an_ingested_alert_is_exported_as_an_ingest_span_with_its_commit_and_notify() {
    let received: Received = Arc::default();
    let endpoint = otlp_receiver(received.clone()).await;
    let (_dir, url) = support::temp_sqlite_url();
    let mut lim = LimProcess::start_with_env(
        binary(),
        &url,
        None,
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;
    let response = reqwest::Client::new()
        .post(lim.url("/v1/alerts"))
        .json(&json!({"labels": {"alertname": "HighLatency", "model": "gpt-4o"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    let fingerprint = body["results"][0]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    let incident_id = body["results"][0]["incident_id"].as_i64().unwrap();
    assert!(terminate(&mut lim.child).await.success());

    let requests = received.lock().unwrap();
    assert!(!requests.is_empty(), "lim exported nothing");
    let mut spans: Vec<&Span> = Vec::new();
    for request in requests.iter() {
        for resource_spans in &request.resource_spans {
            let resource = resource_spans.resource.as_ref().expect("a resource");
            assert_eq!(
                string(&resource.attributes, "service.name").as_deref(),
                Some("lim")
            );
            for scope in &resource_spans.scope_spans {
                spans.extend(scope.spans.iter());
            }
        }
    }
    let ingest: Vec<&&Span> = spans.iter().filter(|s| s.name == "ingest").collect();
    assert_eq!(ingest.len(), 1, "one alert, one ingest span");
    let ingest = ingest[0];
    assert_eq!(
        string(&ingest.attributes, "source").as_deref(),
        Some("native")
    );
    assert_eq!(
        string(&ingest.attributes, "fingerprint").as_deref(),
        Some(fingerprint.as_str())
    );
    assert_eq!(
        int(&ingest.attributes, "incident_id"),
        Some(incident_id),
        "{:?}",
        ingest.attributes
    );
    assert_eq!(
        ingest
            .attributes
            .iter()
            .filter(|kv| kv.key == "incident_id")
            .count(),
        1,
        "recorded once"
    );
    assert_eq!(
        string(&ingest.attributes, "action").as_deref(),
        Some("created")
    );
    assert!(ingest.parent_span_id.is_empty(), "a trace of its own");
    // The actor-side work is inside it: the commit and the notifier hand-off.
    for child in ["commit", "notify"] {
        let span = spans
            .iter()
            .find(|s| s.name == child && s.parent_span_id == ingest.span_id)
            .unwrap_or_else(|| panic!("no {child} span under the ingest span"));
        assert_eq!(span.trace_id, ingest.trace_id);
        assert_eq!(int(&span.attributes, "incident_id"), Some(incident_id));
    }
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_on_stderr() {
    let (_dir, url) = support::temp_sqlite_url();
    let mut child = Command::new(binary())
        .arg("serve")
        .env("LIM_LISTEN", "127.0.0.1:0")
        .env("LIM_DATABASE_URL", &url)
        .env("LIM_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .env_remove("LIM_CONFIG")
        .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn lim");
    // Drain stderr from the start, so lim never blocks on a full pipe.
    let mut stderr = child.stderr.take().unwrap();
    let logs = tokio::spawn(async move {
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.unwrap();
        text
    });
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = stdout
            .next_line()
            .await
            .unwrap()
            .expect("lim prints its address");
        if let Some(addr) = line.strip_prefix("lim listening on ") {
            break addr.trim().to_string();
        }
    };
    let client = reqwest::Client::new();
    let mut ready = false;
    for _ in 0..600 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            if r.status().is_success() {
                ready = true;
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "lim became ready");
    // Some traffic between start and stop.
    let response = client
        .post(format!("{base}/v1/alerts"))
        .json(&json!({"labels": {"alertname": "A"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    assert!(terminate(&mut child).await.success());

    let text = logs.await.unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 4, "start, ready, shutdown at least:\n{text}");
    let objects: Vec<Value> = lines
        .iter()
        .map(|line| {
            let value: Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}"));
            assert!(value.is_object(), "not an object: {line:?}");
            assert!(value["timestamp"].is_string(), "{line:?}");
            assert!(value["level"].is_string(), "{line:?}");
            value
        })
        .collect();
    let messages: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["fields"]["message"].as_str())
        .collect();
    for expected in ["listening", "ready", "stopped"] {
        assert!(
            messages.contains(&expected),
            "no {expected:?} line in {messages:?}"
        );
    }
    let listening = objects
        .iter()
        .find(|o| o["fields"]["message"] == "listening")
        .unwrap();
    assert_eq!(listening["level"], "INFO");
    assert_eq!(
        listening["fields"]["addr"].as_str(),
        base.strip_prefix("http://")
    );
}
