//! `POST /v1/alerts`: lim's native ingest format.
//!
//! The body is one alert object or `{"alerts":[…]}`. The whole request is
//! parsed and validated first ([`parse_alert_request`], pure); only then is
//! anything ingested, so a bad request never changes stored data. Alerts go
//! to `System::ingest`: alerts of different incidents concurrently, alerts
//! sharing an incident key one after another in input order
//! ([`group_by_incident_key`]). The answer is 202 only once every alert's
//! effect is committed; results are in input order.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use incident_actors::domain::{Alert, AlertStatus, Labels};
use incident_actors::messages::{IngestError, IngestOutcome};
use incident_actors::time::{Clock, SystemClock, Timestamp};
use incident_actors::System;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::task::JoinSet;
use utoipa::ToSchema;

use super::auth::IngestService;
use super::error::ErrorBody;
use super::openapi::{BodyErrors, KeyErrors, Unavailable};
use super::{ApiError, ApiJson, AppState, Ready};

/// The `source` of alerts received here.
pub const SOURCE: &str = "native";

/// One alert as a sender writes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"labels": {"alertname": "HighLatency", "model": "gpt-4o"},
    "annotations": {"summary": "p99 latency over 2s"}}))]
pub struct NativeAlert {
    /// The alert's identity; not empty, no empty names.
    #[schema(value_type = BTreeMap<String, String>)]
    pub labels: Labels,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    pub annotations: Labels,
    /// `firing` unless given.
    #[serde(default = "firing")]
    #[schema(default = "firing")]
    pub status: AlertStatus,
    /// Now unless given; `startsAt` is accepted too.
    #[serde(default, alias = "startsAt")]
    pub starts_at: Option<Timestamp>,
    /// When a firing alert resolves by itself without a re-send; `endsAt`
    /// is accepted too.
    #[serde(default, alias = "endsAt")]
    pub ends_at: Option<Timestamp>,
    /// When given (not empty), it rather than the labels decides the
    /// incident the alert joins.
    #[serde(default)]
    pub dedup_key: Option<String>,
}

/// Documents the accepted body of `POST /v1/alerts`, which
/// [`parse_alert_request`] reads by hand from a `serde_json::Value` (so its
/// errors name the alert's index): one alert, or a batch. Not used to parse.
#[derive(ToSchema)]
#[serde(untagged)]
#[schema(
    description = "One alert, or `{\"alerts\":[…]}` with at least one (a bare \
    array is not accepted)"
)]
pub enum NativeAlertRequest {
    One(NativeAlert),
    Batch(NativeAlertBatch),
}

/// Several alerts at once (documentation only, like [`NativeAlertRequest`]).
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(description = "Several alerts; nothing may stand next to `alerts`")]
pub struct NativeAlertBatch {
    /// At least one.
    #[schema(min_items = 1)]
    pub alerts: Vec<NativeAlert>,
}

fn firing() -> AlertStatus {
    AlertStatus::Firing
}

/// The outcome of every alert, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct IngestResponse {
    pub results: Vec<IngestOutcome>,
}

/// Ingest alerts (lim's own format)
///
/// One alert object or `{"alerts":[…]}`. The whole request is checked
/// first (a bad one stores nothing); the answer comes once every alert's
/// effect is committed, with one result per alert in input order.
#[utoipa::path(
    post,
    path = "/v1/alerts",
    operation_id = "ingest_alerts",
    tag = "ingest",
    request_body = NativeAlertRequest,
    responses(
        (status = 202, description = "Every alert's effect is committed", body = IngestResponse,
            example = json!({"results": [{"fingerprint": "04269496f970fd8a", "incident_id": 7,
                "action": "created"}]})),
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
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    let mut alerts = parse_alert_request(body, SystemClock.now())?;
    service.stamp(&mut alerts);
    let _permit = state.admit(&alerts)?;
    let results = ingest_all(&system, alerts).await?;
    Ok((StatusCode::ACCEPTED, Json(IngestResponse { results })))
}

/// Turns a request body into alerts, or says what is wrong with it (naming
/// the alert's index). `now` is the `starts_at` of alerts that give none.
pub fn parse_alert_request(body: Value, now: Timestamp) -> Result<Vec<Alert>, ApiError> {
    let items = match body {
        Value::Object(mut map) if map.contains_key("alerts") => {
            if let Some(extra) = map.keys().find(|k| *k != "alerts") {
                return Err(ApiError::InvalidBody(format!(
                    "unknown field `{extra}` next to `alerts`"
                )));
            }
            match map.remove("alerts") {
                Some(Value::Array(items)) => items,
                _ => {
                    return Err(ApiError::InvalidBody(
                        "`alerts` must be an array of alert objects".into(),
                    ))
                }
            }
        }
        object @ Value::Object(_) => vec![object],
        _ => {
            return Err(ApiError::InvalidBody(
                "expected an alert object or {\"alerts\":[…]}".into(),
            ))
        }
    };
    if items.is_empty() {
        return Err(ApiError::InvalidBody("`alerts` must not be empty".into()));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| parse_alert(index, item, now))
        .collect()
}

fn parse_alert(index: usize, item: Value, now: Timestamp) -> Result<Alert, ApiError> {
    let native: NativeAlert = serde_path_to_error::deserialize(item).map_err(|e| {
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        if path == "." {
            ApiError::InvalidBody(format!("alert {index}: {message}"))
        } else {
            ApiError::InvalidBody(format!("alert {index}: {path}: {message}"))
        }
    })?;
    let invalid = |what: &str| ApiError::InvalidBody(format!("alert {index}: {what}"));
    if native.labels.is_empty() {
        return Err(invalid("`labels` must not be empty"));
    }
    if native.labels.keys().any(String::is_empty) {
        return Err(invalid("label names in `labels` must not be empty"));
    }
    if native.dedup_key.as_deref() == Some("") {
        return Err(invalid("`dedup_key` must not be empty"));
    }
    Ok(Alert {
        labels: native.labels,
        annotations: native.annotations,
        status: native.status,
        starts_at: native.starts_at.unwrap_or(now),
        ends_at: native.ends_at,
        source: SOURCE.to_string(),
        dedup_key: native.dedup_key,
        extra: None,
    })
}

/// Indices of `alerts` grouped by incident key, each group in input order,
/// groups in order of first appearance. Alerts of one group must be applied
/// one after another; different groups are independent.
pub fn group_by_incident_key(alerts: &[Alert]) -> Vec<Vec<usize>> {
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_key = HashMap::new();
    for (i, alert) in alerts.iter().enumerate() {
        let g = *by_key.entry(alert.incident_key()).or_insert_with(|| {
            groups.push(Vec::new());
            groups.len() - 1
        });
        groups[g].push(i);
    }
    groups
}

/// Ingests one alert inside its own `ingest` span (source, fingerprint,
/// then the incident and what the alert did to it). The span travels with
/// the alert to the incident actor, whose commit and notifier hand-off are
/// its children: one trace per alert, from here to the notification.
async fn ingest_one(system: &System, alert: Alert) -> Result<IngestOutcome, IngestError> {
    use tracing::field::Empty;
    use tracing::Instrument;
    let span = tracing::info_span!(
        "ingest",
        source = %alert.source,
        fingerprint = %alert.fingerprint(),
        incident_id = Empty,
        action = Empty,
    );
    // The incident actor records `incident_id` as soon as it has the alert.
    let result = system.ingest(alert).instrument(span.clone()).await;
    span.record("action", incident_actors::metrics::ingest_result(&result));
    result
}

/// Ingests every alert; answers in input order once all are committed.
pub(crate) async fn ingest_all(
    system: &System,
    alerts: Vec<Alert>,
) -> Result<Vec<IngestOutcome>, ApiError> {
    if alerts.len() == 1 {
        let alert = alerts.into_iter().next().expect("one alert");
        return Ok(vec![ingest_one(system, alert).await?]);
    }
    let count = alerts.len();
    let groups = group_by_incident_key(&alerts);
    let mut slots: Vec<Option<Alert>> = alerts.into_iter().map(Some).collect();
    let mut tasks = JoinSet::new();
    for group in groups {
        let items: Vec<(usize, Alert)> = group
            .into_iter()
            .filter_map(|i| slots[i].take().map(|a| (i, a)))
            .collect();
        let system = system.clone();
        tasks.spawn(async move {
            let mut out = Vec::with_capacity(items.len());
            for (i, alert) in items {
                out.push((i, ingest_one(&system, alert).await?));
            }
            Ok::<_, IngestError>(out)
        });
    }
    let mut results: Vec<Option<IngestOutcome>> = vec![None; count];
    while let Some(joined) = tasks.join_next().await {
        let outcomes =
            joined.map_err(|e| ApiError::Internal(format!("ingest task failed: {e}")))??;
        for (i, outcome) in outcomes {
            results[i] = Some(outcome);
        }
    }
    results
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| ApiError::Internal("an alert got no ingest result".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn err(body: Value) -> String {
        let e = parse_alert_request(body, NOW).unwrap_err();
        assert_eq!(e.code(), "invalid_body");
        e.to_string()
    }

    #[test]
    fn single_alert_with_defaults() {
        let alerts = parse_alert_request(json!({"labels": {"alertname": "A"}}), NOW).unwrap();
        assert_eq!(alerts.len(), 1);
        let a = &alerts[0];
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.starts_at, NOW);
        assert_eq!(a.ends_at, None);
        assert_eq!(a.source, "native");
        assert!(a.annotations.is_empty());
        assert_eq!(a.dedup_key, None);
    }

    #[test]
    fn batch_with_both_timestamp_spellings() {
        let alerts = parse_alert_request(
            json!({"alerts": [
                {"labels": {"a": "1"}, "status": "resolved", "startsAt": "2024-01-02T03:04:05Z",
                 "endsAt": "2024-01-02T04:04:05Z", "annotations": {"summary": "s"}},
                {"labels": {"a": "2"}, "starts_at": "2024-01-02T03:04:05+01:00", "dedup_key": "k"}
            ]}),
            NOW,
        )
        .unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(alerts[0].status, AlertStatus::Resolved);
        assert_eq!(
            alerts[0].starts_at,
            Timestamp::parse_rfc3339("2024-01-02T03:04:05Z").unwrap()
        );
        assert!(alerts[0].ends_at.is_some());
        assert_eq!(
            alerts[1].starts_at,
            Timestamp::parse_rfc3339("2024-01-02T02:04:05Z").unwrap()
        );
        assert_eq!(alerts[1].dedup_key.as_deref(), Some("k"));
    }

    #[test]
    fn errors_name_the_field_and_the_alert() {
        assert_eq!(
            err(json!({"annotations": {}})),
            "alert 0: missing field `labels`"
        );
        assert_eq!(
            err(json!({"alerts": [{"labels": {"a": "1"}}, {"labels": {}}]})),
            "alert 1: `labels` must not be empty"
        );
        assert_eq!(
            err(json!({"alerts": [{"labels": {"a": "1"}}, {}]})),
            "alert 1: missing field `labels`"
        );
        assert!(err(json!({"labels": {"a": 1}})).starts_with("alert 0: labels.a: invalid type"));
        assert!(err(json!({"labels": {"a": "1"}, "status": "open"})).contains("status"));
        assert!(err(json!({"labels": {"a": "1"}, "starts_at": "yesterday"})).contains("starts_at"));
        assert!(err(json!({"labels": {"a": "1"}, "lables": {}})).contains("unknown field `lables`"));
        assert!(err(json!({"labels": {"a": "1"}, "dedup_key": ""})).contains("dedup_key"));
    }

    #[test]
    fn request_shape_errors() {
        assert_eq!(err(json!({"alerts": []})), "`alerts` must not be empty");
        assert!(err(json!({"alerts": {}})).contains("must be an array"));
        assert!(err(json!({"alerts": [], "extra": 1})).contains("`extra`"));
        assert!(err(json!([{"labels": {"a": "1"}}])).contains("expected an alert object"));
        assert!(err(json!("x")).contains("expected an alert object"));
    }

    #[test]
    fn groups_keep_input_order_per_incident_key() {
        let body = json!({"alerts": [
            {"labels": {"a": "1"}},
            {"labels": {"a": "2"}},
            {"labels": {"a": "1"}, "status": "resolved"},
            {"labels": {"b": "x"}, "dedup_key": "k"},
            {"labels": {"b": "y"}, "dedup_key": "k"},
        ]});
        let alerts = parse_alert_request(body, NOW).unwrap();
        assert_eq!(
            group_by_incident_key(&alerts),
            vec![vec![0, 2], vec![1], vec![3, 4]]
        );
    }
}
