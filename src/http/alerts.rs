//! `POST /v1/alerts`: lim's native ingest format.
//!
//! The body is one alert object or `{"alerts":[…]}`. The whole request is
//! parsed and validated first ([`decode_alert_request`], pure: straight
//! from the bytes into typed alerts); only then is anything ingested, so a
//! bad request never changes stored data. One alert goes to
//! `System::ingest`, more to `System::ingest_batch` ([`ingest_all`]): one
//! router message for the request, alerts of different incidents applied
//! concurrently, alerts sharing an incident key one after another in input
//! order. The answer is 202 only once every alert's effect is committed;
//! results are in input order.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::Json;
use incident_actors::domain::{Alert, AlertStatus, IngestAction, Labels};
use incident_actors::messages::{IngestError, IngestOutcome};
use incident_actors::time::{Clock, SystemClock, Timestamp};
use incident_actors::System;
use serde::de::value::MapAccessDeserializer;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::auth::IngestService;
use super::error::ErrorBody;
use super::openapi::{BodyErrors, KeyErrors, Unavailable};
use super::{decode_json, is_json_content_type, ApiError, AppState, Ready, BODY_LIMIT};

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
/// [`decode_alert_request`] reads by hand (so its errors name the alert's
/// index): one alert, or a batch. Not used to parse.
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
    JsonBytes(body): JsonBytes,
) -> Result<(StatusCode, Json<IngestResponse>), ApiError> {
    let mut alerts = decode_alert_request(&body, SystemClock.now())?;
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
    to_alert(index, native, now)
}

/// Checks one deserialised alert (the `index`th) and makes it an [`Alert`].
fn to_alert(index: usize, native: NativeAlert, now: Timestamp) -> Result<Alert, ApiError> {
    let invalid = |what: &str| ApiError::InvalidBody(format!("alert {index}: {what}"));
    if native.labels.is_empty() {
        return Err(invalid("`labels` must not be empty"));
    }
    if native.labels.iter().any(|(name, _)| name.is_empty()) {
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

/// [`parse_alert_request`] straight from the body's bytes: deserialised
/// once into [`NativeAlert`]s, without a `serde_json::Value` in between.
/// A body that does not deserialise that way (any error, or a shape it
/// does not take: an empty batch, a field next to `alerts`) is read again
/// by [`parse_alert_request`] through a `Value`, so a bad request gets
/// exactly its answer: `invalid_json` for a syntax error anywhere, else
/// `invalid_body` naming the alert's index and the field.
pub fn decode_alert_request(bytes: &[u8], now: Timestamp) -> Result<Vec<Alert>, ApiError> {
    match serde_json::from_slice::<NativeBody>(bytes) {
        Ok(NativeBody(items)) if !items.is_empty() => items
            .into_iter()
            .enumerate()
            .map(|(index, native)| to_alert(index, native, now))
            .collect(),
        _ => parse_alert_request(decode_json::<Value>(bytes)?, now),
    }
}

/// The alerts of a native body, deserialised in one pass: `{"alerts":[…]}`
/// when `alerts` is the first key (and the only one), else one alert.
struct NativeBody(Vec<NativeAlert>);

impl<'de> Deserialize<'de> for NativeBody {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(NativeBodyVisitor)
    }
}

struct NativeBodyVisitor;

impl<'de> Visitor<'de> for NativeBodyVisitor {
    type Value = NativeBody;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an alert object or {\"alerts\":[…]}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NativeBody, A::Error> {
        let Some(first) = map.next_key::<String>()? else {
            return Err(A::Error::custom("no fields"));
        };
        if first == "alerts" {
            let alerts: Vec<NativeAlert> = map.next_value()?;
            if map.next_key::<IgnoredAny>()?.is_some() {
                return Err(A::Error::custom("a field next to `alerts`"));
            }
            return Ok(NativeBody(alerts));
        }
        let rest = FirstKeyThen {
            first: Some(first),
            map,
        };
        NativeAlert::deserialize(MapAccessDeserializer::new(rest)).map(|a| NativeBody(vec![a]))
    }
}

/// A map whose first key was already read: gives it back, then the rest.
struct FirstKeyThen<A> {
    first: Option<String>,
    map: A,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for FirstKeyThen<A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        match self.first.take() {
            Some(key) => seed
                .deserialize(IntoDeserializer::<A::Error>::into_deserializer(key))
                .map(Some),
            None => self.map.next_key_seed(seed),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

/// A JSON body as its bytes, checked like [`ApiJson`](super::ApiJson)'s
/// (415 unless the content type is JSON, 413 over the body limit), for
/// the ingest handlers that deserialise it themselves, in one pass.
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        Bytes::from_request(req, state)
            .await
            .map(JsonBytes)
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge(BODY_LIMIT)
                } else {
                    ApiError::BodyRead(rejection.body_text())
                }
            })
    }
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
///
/// One alert goes through `System::ingest` in its own `ingest` span. More
/// go to the router as one message (`System::ingest_batch`: each alert's
/// incident key hashed once, alerts of one incident applied in input
/// order, different incidents concurrently), inside one `ingest_batch`
/// span for the request (source, how many alerts, then how many of them
/// created, joined or resolved an incident); the incident actors' commits
/// are its children.
pub(crate) async fn ingest_all(
    system: &System,
    alerts: Vec<Alert>,
) -> Result<Vec<IngestOutcome>, ApiError> {
    use tracing::field::Empty;
    use tracing::Instrument;
    if alerts.len() == 1 {
        let alert = alerts.into_iter().next().expect("one alert");
        return Ok(vec![ingest_one(system, alert).await?]);
    }
    let span = tracing::info_span!(
        "ingest_batch",
        source = alerts.first().map_or("", |a| a.source.as_str()),
        alerts = alerts.len(),
        created = Empty,
        joined = Empty,
        resolved = Empty,
    );
    let outcomes = system.ingest_batch(alerts).instrument(span.clone()).await?;
    if !span.is_disabled() {
        let count = |action| outcomes.iter().filter(|o| o.action == action).count();
        span.record("created", count(IngestAction::Created));
        span.record("joined", count(IngestAction::Joined));
        span.record("resolved", count(IngestAction::Resolved));
    }
    Ok(outcomes)
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

    /// The one-pass decoder and the `Value` path agree on `body`: the same
    /// alerts, or the same error (code and message).
    fn agree(body: &str) {
        let once = decode_alert_request(body.as_bytes(), NOW);
        let twice = decode_json::<Value>(body.as_bytes()).and_then(|v| parse_alert_request(v, NOW));
        crate::http::error::assert_same_outcome(body, once, twice);
    }

    #[test]
    fn decoding_the_bytes_once_answers_as_the_value_path() {
        for body in [
            r#"{"labels":{"a":"1"}}"#,
            r#"{"annotations":{"s":"x"},"labels":{"a":"1"},"startsAt":"2024-01-02T03:04:05Z"}"#,
            r#"{"alerts":[{"labels":{"a":"1"}},{"labels":{"b":"2"},"dedup_key":"k","status":"resolved"}]}"#,
            r#"{"labels":{"a":"1","a":"2"}}"#,
            r#"{"labels":{"a":"1"},"labels":{"b":"2"}}"#,
            r#"{"alerts":[]}"#,
            r#"{"alerts":[{"labels":{"a":"1"}}],"x":1}"#,
            r#"{"x":1,"alerts":[{"labels":{"a":"1"}}]}"#,
            r#"{"labels":{"a":"1"},"alerts":[]}"#,
            r#"{"alerts":{}}"#,
            r#"{"alerts":[{"labels":{"a":"1"}},{"labels":{"a":1}}]}"#,
            r#"{"alerts":[{"labels":{"a":"1"}},{"labels":{}}]}"#,
            r#"{"alerts":[{"labels":{"a":"1"}},{"labels":{"a":"1"},"lables":{}}]}"#,
            r#"{"labels":{"a":"1"},"starts_at":"yesterday"}"#,
            r#"{"labels":{"":"1"}}"#,
            r#"{"labels":{"a":"1"},"dedup_key":""}"#,
            r#"{}"#,
            r#"[]"#,
            r#""x""#,
            r#"{"alerts":[{"labels":{"a":"1"}}"#,
            r#"{"labels":{"a":"1"}} x"#,
            r#"{"alerts":[{"status":"open"}],"#,
        ] {
            agree(body);
        }
    }

    #[test]
    fn well_formed_bodies_decode_in_one_pass() {
        let one: NativeBody =
            serde_json::from_str(r#"{"labels":{"a":"1"},"status":"resolved"}"#).expect("one alert");
        assert_eq!(one.0.len(), 1);
        assert_eq!(one.0[0].status, AlertStatus::Resolved);
        let batch: NativeBody =
            serde_json::from_str(r#"{"alerts":[{"labels":{"a":"1"}},{"labels":{"a":"2"}}]}"#)
                .expect("a batch");
        assert_eq!(batch.0.len(), 2);
        // Shapes it leaves to the `Value` path.
        assert!(serde_json::from_str::<NativeBody>(r#"{"x":1,"alerts":[]}"#).is_err());
        assert!(serde_json::from_str::<NativeBody>(r#"{"alerts":[],"x":1}"#).is_err());
        assert!(serde_json::from_str::<NativeBody>("{}").is_err());
    }
}
