//! `POST /api/v2/alerts`: Prometheus' push, the Alertmanager API v2
//! "postable alerts", so a Prometheus server can point its
//! `alerting.alertmanagers` (api_version v2) straight at lim.
//!
//! The body is a JSON array of alerts:
//! `{labels, annotations?, startsAt?, endsAt?, generatorURL?}`. Unknown fields
//! are ignored (Prometheus may add some); `labels` is required and must not
//! be empty.
//!
//! Mapping to [`Alert`], with Alertmanager's semantics:
//!
//! * `labels`, `annotations` as they are; `source` is `prometheus`; no
//!   `dedup_key`: the label fingerprint decides the incident, as in
//!   Alertmanager.
//! * `endsAt` at or before now: the alert arrives `resolved` (ending at
//!   `endsAt`). A later `endsAt`: `firing` with `ends_at = endsAt`; no
//!   `endsAt`: `firing` with `ends_at = now + resolve_timeout` (config
//!   `resolve_timeout`, default 5 minutes). Prometheus re-sends every firing
//!   alert with a refreshed `endsAt`; the core resolves a firing alert whose
//!   `ends_at` passes without a re-send extending it.
//! * `startsAt` absent: now, or `endsAt` when that is earlier (a resolved
//!   alert never starts after it ended). `endsAt` before `startsAt` is
//!   invalid, as in Alertmanager.
//! * Go's zero time (`0001-01-01T00:00:00Z`) counts as absent, for both.
//! * `extra` is `{"generatorURL": …}` when the alert carries a non-empty one.
//!
//! The whole request is parsed first ([`decode_postable_alerts`], pure:
//! straight from the bytes into [`PostableAlert`]s, with
//! [`parse_postable_alerts`]' answer for a body that does not parse); a bad
//! alert rejects the request with 400 and nothing ingested (Prometheus logs
//! the message). Then the alerts are ingested with
//! `alerts::ingest_all` (per-incident order kept), and the answer is
//! **200 with an empty body**, as Alertmanager's, once every alert's effect
//! is committed. An empty array is a 200 that ingests nothing.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use incident_actors::domain::{Alert, AlertStatus, Labels};
use incident_actors::time::{Clock, SystemClock, Timestamp};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::alertmanager::{go_time, indexed_error};
use super::alerts::{ingest_all, JsonBytes};
use super::auth::IngestService;
use super::error::ErrorBody;
use super::openapi::{BodyErrors, KeyErrors, Unavailable};
use super::{decode_json, ApiError, AppState, Ready};

/// The `source` of alerts received here.
pub const SOURCE: &str = "prometheus";

/// One alert as Prometheus posts it (Alertmanager API v2 "postable
/// alert"). Unknown fields are ignored.
#[derive(Debug, Deserialize, ToSchema)]
pub struct PostableAlert {
    /// Not empty, no empty names.
    #[schema(value_type = BTreeMap<String, String>)]
    pub labels: Labels,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub annotations: Labels,
    /// Absent (or Go's zero time): now, or `endsAt` when earlier.
    #[serde(default, rename = "startsAt")]
    pub starts_at: Option<Timestamp>,
    /// At or before now: the alert is resolved. Later: firing until then
    /// unless re-sent. Absent (or Go's zero time): firing for the resolve
    /// timeout (default 5 minutes).
    #[serde(default, rename = "endsAt")]
    pub ends_at: Option<Timestamp>,
    /// Kept in the alert's `extra` when not empty.
    #[serde(default, rename = "generatorURL")]
    pub generator_url: Option<String>,
}

/// Prometheus' push (Alertmanager API v2)
///
/// A JSON array of postable alerts, as Prometheus sends to an Alertmanager
/// (`alerting.alertmanagers` with `api_version: v2`). Answers 200 with an
/// empty body, like Alertmanager, once every alert's effect is committed;
/// an empty array ingests nothing.
#[utoipa::path(
    post,
    path = "/api/v2/alerts",
    operation_id = "ingest_prometheus_alerts",
    tag = "ingest",
    request_body = Vec<PostableAlert>,
    responses(
        (status = 200, description = "Every alert's effect is committed (empty body)"),
        (status = 400, description = "`invalid_json`, or `invalid_body` naming the alert and \
            the field (also an alert over a size limit); nothing was ingested", body = ErrorBody),
        KeyErrors,
        BodyErrors,
        Unavailable,
    ),
    security(("integration_key" = [])),
)]
pub async fn post_alerts(
    service: IngestService,
    Ready(system): Ready,
    State(state): State<AppState>,
    JsonBytes(body): JsonBytes,
) -> Result<StatusCode, ApiError> {
    let mut alerts = decode_postable_alerts(&body, SystemClock.now(), state.resolve_timeout())?;
    service.stamp(&mut alerts);
    if !alerts.is_empty() {
        let _permit = state.admit(&alerts)?;
        ingest_all(&system, alerts).await?;
    }
    Ok(StatusCode::OK)
}

/// [`parse_postable_alerts`] straight from the body's bytes: deserialised
/// once into [`PostableAlert`]s, without a `serde_json::Value` in between
/// (the hot path: Prometheus sends its alerts in batches). A body that does
/// not deserialise that way is read again by [`parse_postable_alerts`]
/// through a `Value`, so a bad request gets exactly its answer:
/// `invalid_json` for a syntax error anywhere, else `invalid_body` naming
/// the alert's index and the field. (One difference in what is accepted:
/// a string inside an unknown field is skipped, not checked for lone
/// surrogate escapes or invalid UTF-8; Alertmanager takes those too.)
pub fn decode_postable_alerts(
    bytes: &[u8],
    now: Timestamp,
    resolve_timeout: Duration,
) -> Result<Vec<Alert>, ApiError> {
    match serde_json::from_slice::<Vec<PostableAlert>>(bytes) {
        Ok(posted) => posted
            .into_iter()
            .enumerate()
            .map(|(index, posted)| {
                to_alert(posted, now, resolve_timeout)
                    .map_err(|what| ApiError::InvalidBody(format!("alert {index}: {what}")))
            })
            .collect(),
        Err(_) => parse_postable_alerts(decode_json::<Value>(bytes)?, now, resolve_timeout),
    }
}

/// Turns a request body (an array of postable alerts) into alerts, or says
/// what is wrong with it, naming the alert's index.
pub fn parse_postable_alerts(
    body: Value,
    now: Timestamp,
    resolve_timeout: Duration,
) -> Result<Vec<Alert>, ApiError> {
    let Value::Array(items) = body else {
        return Err(ApiError::InvalidBody(
            "expected a JSON array of alerts".into(),
        ));
    };
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let posted: PostableAlert = serde_path_to_error::deserialize(item)
                .map_err(|e| indexed_error("alert", index, e))?;
            to_alert(posted, now, resolve_timeout)
                .map_err(|what| ApiError::InvalidBody(format!("alert {index}: {what}")))
        })
        .collect()
}

/// One postable alert to an [`Alert`] (Alertmanager's rules, see the module
/// header), or what is wrong with it.
pub fn to_alert(
    posted: PostableAlert,
    now: Timestamp,
    resolve_timeout: Duration,
) -> Result<Alert, String> {
    if posted.labels.is_empty() {
        return Err("`labels` must not be empty".into());
    }
    if posted.labels.iter().any(|(name, _)| name.is_empty()) {
        return Err("label names in `labels` must not be empty".into());
    }
    let ends = go_time(posted.ends_at);
    let starts_at = match go_time(posted.starts_at) {
        Some(t) => t,
        None => ends.map_or(now, |e| e.min(now)),
    };
    if let Some(ends) = ends {
        if ends < starts_at {
            return Err(format!(
                "`endsAt` ({ends}) is before `startsAt` ({starts_at})"
            ));
        }
    }
    let (status, ends_at) = match ends {
        Some(ends) if ends <= now => (AlertStatus::Resolved, ends),
        Some(ends) => (AlertStatus::Firing, ends),
        None => (AlertStatus::Firing, now.plus(resolve_timeout)),
    };
    let extra = posted
        .generator_url
        .filter(|url| !url.is_empty())
        .map(|url| serde_json::json!({ "generatorURL": url }).to_string());
    Ok(Alert {
        labels: posted.labels,
        annotations: posted.annotations,
        status,
        starts_at,
        ends_at: Some(ends_at),
        source: SOURCE.to_string(),
        dedup_key: None,
        extra,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);
    const TIMEOUT: Duration = Duration::from_secs(300);

    fn at(offset_secs: i64) -> String {
        Timestamp(NOW.0 + offset_secs * 1000).to_rfc3339()
    }

    fn parse(body: Value) -> Result<Vec<Alert>, ApiError> {
        parse_postable_alerts(body, NOW, TIMEOUT)
    }

    fn err(body: Value) -> String {
        let e = parse(body).unwrap_err();
        assert_eq!(e.code(), "invalid_body");
        e.to_string()
    }

    #[test]
    fn future_ends_at_is_firing_until_then() {
        let alerts = parse(json!([{
            "labels": {"alertname": "A"}, "annotations": {"summary": "s"},
            "startsAt": at(-60), "endsAt": at(240),
            "generatorURL": "http://prom/graph?g0.expr=up"
        }]))
        .unwrap();
        let a = &alerts[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.starts_at, Timestamp(NOW.0 - 60_000));
        assert_eq!(a.ends_at, Some(Timestamp(NOW.0 + 240_000)));
        assert_eq!(a.source, "prometheus");
        assert_eq!(a.dedup_key, None);
        assert_eq!(&a.annotations["summary"], "s");
        let extra: Value = serde_json::from_str(a.extra.as_deref().unwrap()).unwrap();
        assert_eq!(
            extra,
            json!({"generatorURL": "http://prom/graph?g0.expr=up"})
        );
    }

    #[test]
    fn past_or_present_ends_at_is_resolved() {
        for ends in [at(-1), at(0)] {
            let alerts = parse(json!([{"labels": {"a": "1"}, "endsAt": ends}])).unwrap();
            assert_eq!(alerts[0].status, AlertStatus::Resolved);
            assert!(alerts[0].starts_at <= alerts[0].ends_at.unwrap());
        }
    }

    #[test]
    fn absent_times_use_now_and_the_resolve_timeout() {
        let alerts = parse(json!([{"labels": {"a": "1"}}])).unwrap();
        let a = &alerts[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.starts_at, NOW);
        assert_eq!(a.ends_at, Some(NOW.plus(TIMEOUT)));
        assert_eq!(a.extra, None);
        // Go's zero time is "absent"; an empty generatorURL is not kept.
        let alerts = parse(
            json!([{"labels": {"a": "1"}, "startsAt": "0001-01-01T00:00:00Z",
            "endsAt": "0001-01-01T00:00:00Z", "generatorURL": ""}]),
        )
        .unwrap();
        assert_eq!(alerts[0].starts_at, NOW);
        assert_eq!(alerts[0].ends_at, Some(NOW.plus(TIMEOUT)));
        assert_eq!(alerts[0].extra, None);
    }

    #[test]
    fn unknown_fields_are_ignored_and_empty_is_fine() {
        assert!(parse(json!([])).unwrap().is_empty());
        let alerts = parse(json!([{"labels": {"a": "1"}, "future": {"x": 1}}])).unwrap();
        assert_eq!(alerts.len(), 1);
    }

    #[test]
    fn invalid_alerts_are_named() {
        assert_eq!(
            err(json!({"labels": {"a": "1"}})),
            "expected a JSON array of alerts"
        );
        assert_eq!(
            err(json!([{"labels": {"a": "1"}}, {"annotations": {}}])),
            "alert 1: missing field `labels`"
        );
        assert_eq!(
            err(json!([{"labels": {}}])),
            "alert 0: `labels` must not be empty"
        );
        assert!(err(json!([{"labels": {"": "x"}}])).contains("label names"));
        assert!(err(json!([{"labels": {"a": 1}}])).starts_with("alert 0: labels.a: invalid type"));
        assert!(err(json!([{"labels": {"a": "1"}, "endsAt": "soon"}])).contains("endsAt"));
        assert!(
            err(json!([{"labels": {"a": "1"}, "startsAt": at(10), "endsAt": at(5)}]))
                .contains("before `startsAt`")
        );
    }

    #[test]
    fn decoding_the_bytes_once_answers_as_the_value_path() {
        for body in [
            r#"[{"labels":{"a":"1"},"annotations":{"s":"x"},"startsAt":"2023-11-14T22:12:20Z","generatorURL":"http://p"}]"#,
            r#"[{"labels":{"a":"1"},"endsAt":"2000-01-01T00:00:00Z"},{"labels":{"b":"2"},"future":[1,{"x":null}]}]"#,
            r#"[{"labels":{"a":"1"},"labels":{"b":"2"}}]"#,
            r#"[]"#,
            r#"{"labels":{"a":"1"}}"#,
            r#"[{"labels":{"a":"1"}},{"annotations":{}}]"#,
            r#"[{"labels":{}}]"#,
            r#"[{"labels":{"":"x"}}]"#,
            r#"[{"labels":{"a":1}}]"#,
            r#"[{"labels":{"a":"1"},"endsAt":"soon"}]"#,
            r#"[{"labels":{"a":"1"},"startsAt":"2023-11-14T22:13:30Z","endsAt":"2023-11-14T22:13:25Z"}]"#,
            r#"[{"labels":{"a":"1"}}"#,
            r#"[{"labels":{"a":"1"}}] ]"#,
            r#"[{"labels":{"a":2}},{"labels":"#,
            r#"7"#,
        ] {
            let once = decode_postable_alerts(body.as_bytes(), NOW, TIMEOUT);
            let twice = decode_json::<Value>(body.as_bytes()).and_then(parse);
            crate::http::error::assert_same_outcome(body, once, twice);
        }
    }
}
