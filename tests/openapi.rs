//! The OpenAPI document (`GET /v1/openapi.json`) against the router it is
//! generated with.
//!
//! The routes are registered from the handlers' `#[utoipa::path]`
//! annotations (`lim::http::openapi::api_router`), so they cannot drift by
//! construction; these tests check that construction end to end:
//!
//! 1. the document is OpenAPI 3.1 with exactly the expected operations;
//! 2. every documented (path, method) is answered by `app(state)` with
//!    something other than the router's fallbacks (404 "no such route",
//!    405), and undocumented paths and methods do hit them;
//! 3. every operation has a 2xx answer and every `$ref` resolves;
//! 4. every operation that needs a credential declares its scheme.

use std::collections::BTreeSet;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use lim::http::{app, AppState};
use serde_json::Value;
use tower::ServiceExt;

/// Every operation of the API: (path, method).
const OPERATIONS: &[(&str, &str)] = &[
    ("/healthz", "get"),
    ("/readyz", "get"),
    ("/v1/openapi.json", "get"),
    ("/v1/alerts", "post"),
    ("/api/v2/alerts", "post"),
    ("/v1/integrations/alertmanager", "post"),
    ("/v2/enqueue", "post"),
    ("/v1/incidents", "get"),
    ("/v1/incidents/{id}", "get"),
    ("/v1/incidents/{id}/acknowledge", "post"),
    ("/v1/incidents/{id}/resolve", "post"),
    ("/v1/incidents/{id}/snooze", "post"),
    ("/v1/incidents/{id}/escalate", "post"),
    ("/v1/incidents/{id}/notes", "post"),
    ("/v1/incidents/{id}/timeline", "get"),
    ("/v1/silences", "get"),
    ("/v1/silences", "post"),
    ("/v1/silences/{id}", "delete"),
    ("/v1/silences/{id}/expire", "post"),
    ("/v1/heartbeats", "get"),
    ("/v1/oncall", "get"),
    ("/v1/heartbeats/{name}", "get"),
    ("/v1/heartbeats/{name}", "post"),
    ("/v1/slack/interactions", "post"),
    ("/v1/slack/commands", "post"),
    ("/v1/actors", "get"),
    ("/v1/actors/{id}", "get"),
    ("/v1/actors/{id}/restart", "post"),
    ("/metrics", "get"),
];

/// Operations anyone may call.
const PUBLIC: &[&str] = &["/healthz", "/readyz", "/v1/openapi.json"];

const HTTP_METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The document as `app` serves it.
async fn served_document() -> Value {
    let response = app(AppState::new())
        .oneshot(
            Request::get("/v1/openapi.json")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "application/json",
        "served as JSON"
    );
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&bytes).expect("the document is JSON")
}

/// Every (path, method, operation) of a document.
fn operations(doc: &Value) -> Vec<(String, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, operation) in item.as_object().expect("path item") {
            if HTTP_METHODS.contains(&method.as_str()) {
                out.push((path.clone(), method.clone(), operation.clone()));
            }
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_openapi_3_1_with_every_route() {
    let doc = served_document().await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "lim");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let documented: BTreeSet<(String, String)> = operations(&doc)
        .into_iter()
        .map(|(path, method, _)| (path, method))
        .collect();
    let expected: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|(p, m)| (p.to_string(), m.to_string()))
        .collect();
    assert_eq!(documented, expected);
    // The served document is the generated one.
    let generated = serde_json::to_value(lim::http::openapi::openapi()).unwrap();
    assert_eq!(doc, generated);
    // Every operation is tagged with a declared tag, and summarised.
    let tags: BTreeSet<&str> = doc["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    let mut operation_ids = BTreeSet::new();
    for (path, method, operation) in operations(&doc) {
        let id = operation["operationId"].as_str().expect("an operationId");
        assert!(
            operation_ids.insert(id.to_string()),
            "{method} {path}: operationId {id} is not unique"
        );
        let op_tags = operation["tags"].as_array().expect("tags");
        assert!(!op_tags.is_empty(), "{method} {path} has no tag");
        for tag in op_tags {
            assert!(
                tags.contains(tag.as_str().unwrap()),
                "{method} {path}: undeclared tag {tag}"
            );
        }
        assert!(
            operation["summary"].as_str().is_some_and(|s| !s.is_empty()),
            "{method} {path} has no summary"
        );
    }
    // The incident list documents every query parameter the parser takes.
    let list_params: BTreeSet<&str> = doc["paths"]["/v1/incidents"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["in"] == "query")
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        list_params,
        BTreeSet::from(lim::http::incidents::LIST_PARAMETERS)
    );
}

/// Whether a response is one of the router's own: the fallback (404
/// "no such route") or 405.
async fn is_router_fallback(response: axum::response::Response) -> bool {
    let status = response.status();
    if status == StatusCode::METHOD_NOT_ALLOWED {
        return true;
    }
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    status == StatusCode::NOT_FOUND
        && body["error"]["code"] == "not_found"
        && body["error"]["message"] == "no such route"
}

fn concrete(path: &str) -> String {
    path.replace("{id}", "1").replace("{name}", "1")
}

async fn send(method: &str, uri: &str) -> axum::response::Response {
    let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
    app(AppState::new())
        .oneshot(
            Request::builder()
                .method(method)
                .uri(uri)
                .header("content-type", "application/json")
                .body(Body::from("{}"))
                .unwrap(),
        )
        .await
        .unwrap()
}

#[tokio::test]
async fn every_documented_operation_is_routed_and_nothing_else() {
    let doc = served_document().await;
    for (path, method, _) in operations(&doc) {
        let uri = concrete(&path);
        let response = send(&method, &uri).await;
        let status = response.status();
        assert!(
            !is_router_fallback(response).await,
            "{method} {uri} is documented but not routed ({status})"
        );
    }
    // Undocumented paths reach the fallback (`/` and `/console/…` are the
    // web console, `src/http/console.rs`: routed, but not API operations)…
    for (method, uri) in [
        ("get", "/index.html"),
        ("get", "/console/nope.js"),
        ("get", "/v1"),
        ("get", "/v1/nope"),
        ("post", "/v1/incident"),
        ("get", "/v1/incidents/1/bogus"),
        ("post", "/v1/silences/1/unexpire"),
        ("get", "/v2/openapi.json"),
        ("get", "/v1/heartbeats/a/b"),
    ] {
        assert!(
            is_router_fallback(send(method, uri).await).await,
            "{method} {uri} is routed but not documented"
        );
    }
    // …and so do undocumented methods of documented paths.
    for (path, _) in OPERATIONS {
        let item = &doc["paths"][*path];
        for method in ["get", "post", "put", "delete", "patch"] {
            if item.get(method).is_none() {
                let uri = concrete(path);
                let response = send(method, &uri).await;
                assert_eq!(
                    response.status(),
                    StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri} is routed but not documented"
                );
            }
        }
    }
}

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[tokio::test]
async fn every_operation_succeeds_somehow_and_every_ref_resolves() {
    let doc = served_document().await;
    for (path, method, operation) in operations(&doc) {
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} has no 2xx answer"
        );
        // Every error answer of lim's own is an ErrorBody (PagerDuty's 400
        // is PagerDuty's shape).
        for (status, response) in responses {
            if status.starts_with('4') || status.starts_with('5') {
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                let pagerduty_invalid = path == "/v2/enqueue" && status == "400";
                let expected = if pagerduty_invalid {
                    "#/components/schemas/PagerDutyInvalidEvent"
                } else {
                    "#/components/schemas/ErrorBody"
                };
                assert_eq!(schema, expected, "{method} {path} {status}");
            }
        }
    }
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(all.len() > 20, "the document uses references");
    for r in all {
        let name = r
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{r} is not a component schema"));
        assert!(
            doc["components"]["schemas"].get(name).is_some(),
            "{r} does not resolve"
        );
    }
    // The error body is the one `ApiError` serialises.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    assert_eq!(error["required"], serde_json::json!(["error"]));
    let detail = &doc["components"]["schemas"]["ErrorDetail"];
    assert_eq!(detail["required"], serde_json::json!(["code", "message"]));
}

#[tokio::test]
async fn every_operation_that_needs_a_credential_says_which() {
    let doc = served_document().await;
    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    for name in ["api_token", "integration_key"] {
        assert_eq!(schemes[name]["type"], "http", "{name}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{name}");
    }
    // Slack signs its requests; they carry no API token.
    assert_eq!(schemes["slack_signature"]["type"], "apiKey");
    assert_eq!(schemes["slack_signature"]["in"], "header");
    assert_eq!(schemes["slack_signature"]["name"], "X-Slack-Signature");
    assert!(
        doc.get("security").is_none(),
        "no document-wide requirement"
    );
    for (path, method, operation) in operations(&doc) {
        let security = operation.get("security");
        if PUBLIC.contains(&path.as_str()) {
            assert!(security.is_none(), "{method} {path} is public");
            continue;
        }
        if path == "/v2/enqueue" {
            // PagerDuty's credential is the body's `routing_key`, which a
            // security scheme cannot name: it is a required body field.
            assert!(security.is_none(), "{method} {path}");
            let body = &operation["requestBody"]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(body, "#/components/schemas/PagerDutyEvent");
            let event = &doc["components"]["schemas"]["PagerDutyEvent"];
            let required = event["required"].as_array().unwrap();
            assert!(required.contains(&Value::from("routing_key")));
            continue;
        }
        let requirements = security
            .and_then(Value::as_array)
            .unwrap_or_else(|| panic!("{method} {path} declares no security"));
        assert!(!requirements.is_empty(), "{method} {path}");
        let expected = if path.starts_with("/v1/incidents")
            || path.starts_with("/v1/silences")
            || path == "/v1/oncall"
            || path.starts_with("/v1/actors")
            || path == "/metrics"
            || (path.starts_with("/v1/heartbeats") && method == "get")
        {
            "api_token"
        } else if path.starts_with("/v1/slack/") {
            "slack_signature"
        } else {
            "integration_key"
        };
        for requirement in requirements {
            let names: Vec<&String> = requirement.as_object().unwrap().keys().collect();
            assert_eq!(names, [expected], "{method} {path}");
        }
    }
}
