//! `POST /v2/enqueue`: the PagerDuty Events API v2, so anything that can
//! page PagerDuty (Alertmanager's `pagerduty_configs`, Grafana, Datadog,
//! scripts) can page lim instead by pointing its URL here.
//!
//! The body is one event: `{routing_key, event_action, dedup_key?,
//! payload:{summary, source, severity, timestamp?, component?, group?,
//! class?, custom_details?}, links?, images?, client?, client_url?}`.
//!
//! * `routing_key` must be a non-empty string. PagerDuty wants 32 characters;
//!   lim takes any length (Alertmanager's examples use short keys). It is a
//!   credential: it is never stored.
//! * `trigger` needs `payload.summary`, `payload.source` and
//!   `payload.severity` (`critical`, `error`, `warning` or `info`). Without a
//!   `dedup_key` lim makes one (32 hex digits) and returns it, as PagerDuty
//!   does; a `dedup_key` is at most 255 characters.
//! * `acknowledge` and `resolve` need a `dedup_key`; they act on the open
//!   incident with that key (`System::acknowledge_by_key` /
//!   `resolve_by_key`), attributed to `client` (else `pagerduty`) through the
//!   API. No open incident with that key is still a success, as at
//!   PagerDuty; their `payload` is ignored.
//!
//! Mapping of a trigger to [`Alert`]:
//!
//! | Alert | from |
//! |---|---|
//! | `labels` | `source`, `severity`, and `component`, `group`, `class` when given (all from `payload`) |
//! | `annotations` | `summary` (cut to 1024 characters, as PagerDuty does) |
//! | `dedup_key` | the event's `dedup_key` (or the generated one): repeats join one incident |
//! | `status`, `ends_at` | `firing`, none (a `resolve` event ends it) |
//! | `starts_at` | `payload.timestamp` (RFC 3339), else now |
//! | `source` | `pagerduty` |
//! | `extra` | JSON object of `custom_details`, `links`, `images`, `client`, `client_url` (those present) |
//!
//! Answers: `202 {"status":"success","message":"Event processed",
//! "dedup_key":…}` once the effect is committed. A malformed or invalid
//! event is PagerDuty's `400 {"status":"invalid event","message":"Event
//! object is invalid","errors":[…]}`, one message per problem (every problem
//! is reported, not only the first). Other failures keep lim's
//! `{"error":{"code","message"}}` shape: 415, 413, and 503 with
//! `Retry-After` when nothing could be committed.

use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use incident_actors::domain::{
    Alert, AlertStatus, Attribution, Interface, Labels, TransitionError,
};
use incident_actors::messages::CommandError;
use incident_actors::time::{Clock, SystemClock, Timestamp};
use incident_actors::System;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::alerts::ingest_all;
use super::auth::service_for_routing_key;
use super::error::ErrorBody;
use super::openapi::{BodyErrors, Unavailable};
use super::{ApiError, ApiJson, AppState, Ready};

/// The `source` of alerts received here.
pub const SOURCE: &str = "pagerduty";
/// Who acknowledges or resolves when the event names no `client`.
pub const DEFAULT_ACTOR: &str = "pagerduty";
/// The severities PagerDuty accepts.
pub const SEVERITIES: &[&str] = &["critical", "error", "warning", "info"];
/// PagerDuty cuts summaries to this many characters.
pub const SUMMARY_MAX_CHARS: usize = 1024;
/// The longest `dedup_key` PagerDuty accepts.
pub const DEDUP_KEY_MAX_CHARS: usize = 255;

/// A valid event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The alert to ingest; its `dedup_key` is always set.
    Trigger(Alert),
    Acknowledge {
        dedup_key: String,
        by: String,
    },
    Resolve {
        dedup_key: String,
        by: String,
    },
}

impl Event {
    pub fn dedup_key(&self) -> &str {
        match self {
            Event::Trigger(alert) => alert.dedup_key.as_deref().unwrap_or_default(),
            Event::Acknowledge { dedup_key, .. } | Event::Resolve { dedup_key, .. } => dedup_key,
        }
    }
}

/// Why an event was not processed.
#[derive(Debug, thiserror::Error)]
pub enum EnqueueError {
    /// The event is malformed or invalid: PagerDuty's 400 answer.
    #[error("Event object is invalid: {}", .0.join("; "))]
    Invalid(Vec<String>),
    /// Anything else: lim's own answer.
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// PagerDuty's answer to a malformed or invalid event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = PagerDutyInvalidEvent)]
pub struct InvalidEvent {
    /// Always `invalid event`.
    #[schema(value_type = String, example = "invalid event")]
    pub status: &'static str,
    /// Always `Event object is invalid`.
    #[schema(value_type = String, example = "Event object is invalid")]
    pub message: &'static str,
    /// Every problem, one message each.
    #[schema(example = json!(["'payload.summary' is missing or blank"]))]
    pub errors: Vec<String>,
}

impl IntoResponse for EnqueueError {
    fn into_response(self) -> Response {
        match self {
            EnqueueError::Invalid(errors) => (
                StatusCode::BAD_REQUEST,
                Json(InvalidEvent {
                    status: "invalid event",
                    message: "Event object is invalid",
                    errors,
                }),
            )
                .into_response(),
            EnqueueError::Api(e) => e.into_response(),
        }
    }
}

/// PagerDuty's answer to a processed event.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = PagerDutyAccepted)]
pub struct EnqueueResponse {
    /// Always `success`.
    #[schema(value_type = String, example = "success")]
    pub status: &'static str,
    /// Always `Event processed`.
    #[schema(value_type = String, example = "Event processed")]
    pub message: &'static str,
    /// The event's, or the one made for a trigger without one.
    pub dedup_key: String,
}

/// Documents the accepted body of `POST /v2/enqueue`: [`parse_event`]
/// reads it by hand from a `serde_json::Value` (to report every problem at
/// once, as PagerDuty does), so this type only describes it.
///
/// A PagerDuty Events API v2 event.
#[derive(ToSchema)]
#[schema(
    as = PagerDutyEvent,
    description = "A PagerDuty Events API v2 event. Its `routing_key` is the credential."
)]
pub struct EventBody {
    /// The credential: an integration key of a service (any length, not
    /// empty). Never stored.
    #[schema(min_length = 1)]
    pub routing_key: String,
    pub event_action: EventAction,
    /// Required to acknowledge or resolve. A trigger without one gets a
    /// new one (32 hex digits), returned in the answer.
    #[schema(min_length = 1, max_length = 255)]
    pub dedup_key: Option<String>,
    /// Required to trigger; ignored otherwise.
    pub payload: Option<EventPayload>,
    /// Kept in the alert's `extra`.
    pub links: Option<Vec<Value>>,
    /// Kept in the alert's `extra`.
    pub images: Option<Vec<Value>>,
    /// Who acknowledges or resolves (default `pagerduty`); kept in `extra`.
    pub client: Option<String>,
    /// Kept in `extra`.
    pub client_url: Option<String>,
}

/// What an event does (documentation of [`EventBody`]).
#[derive(ToSchema)]
#[schema(as = PagerDutyEventAction, description = "What the event does")]
#[serde(rename_all = "lowercase")]
pub enum EventAction {
    /// Opens an incident, or joins the open one with the same `dedup_key`.
    Trigger,
    /// Acknowledges the open incident with the `dedup_key` (none open: still a success).
    Acknowledge,
    /// Resolves the open incident with the `dedup_key` (none open: still a success).
    Resolve,
}

/// A trigger's alert (documentation of [`EventBody`]).
#[derive(ToSchema)]
#[schema(as = PagerDutyPayload, description = "The alert of a `trigger`")]
pub struct EventPayload {
    /// The `summary` annotation, cut to 1024 characters.
    #[schema(min_length = 1)]
    pub summary: String,
    /// The `source` label.
    #[schema(min_length = 1)]
    pub source: String,
    /// The `severity` label.
    pub severity: EventSeverity,
    /// When it started (default now).
    pub timestamp: Option<Timestamp>,
    /// The `component` label.
    pub component: Option<String>,
    /// The `group` label.
    pub group: Option<String>,
    /// The `class` label.
    pub class: Option<String>,
    /// Kept in the alert's `extra`.
    pub custom_details: Option<Value>,
}

/// PagerDuty's severities (documentation of [`EventPayload`]; the parser
/// checks [`SEVERITIES`]).
#[derive(ToSchema)]
#[schema(as = PagerDutySeverity, description = "PagerDuty's severities")]
#[serde(rename_all = "lowercase")]
pub enum EventSeverity {
    Critical,
    Error,
    Warning,
    Info,
}

/// PagerDuty Events API v2
///
/// One event: `trigger`, `acknowledge` or `resolve`, by `dedup_key`. Point
/// anything that pages PagerDuty here. Authenticated by the body's
/// `routing_key` (an integration key), not by a header. A malformed or
/// invalid event is PagerDuty's 400 listing every problem; other failures
/// are lim's own errors.
#[utoipa::path(
    post,
    path = "/v2/enqueue",
    operation_id = "pagerduty_enqueue",
    tag = "ingest",
    request_body = EventBody,
    responses(
        (status = 202, description = "The event's effect is committed", body = EnqueueResponse),
        (status = 400, description = "The event is malformed or invalid; nothing was done",
            body = InvalidEvent),
        (status = 401, description = "`unauthorized`: the `routing_key` is not a valid \
            integration key", body = ErrorBody),
        BodyErrors,
        Unavailable,
    ),
)]
pub async fn enqueue(
    Ready(system): Ready,
    State(state): State<AppState>,
    body: Result<ApiJson<Value>, ApiError>,
) -> Result<(StatusCode, Json<EnqueueResponse>), EnqueueError> {
    let ApiJson(body) = body.map_err(body_error)?;
    let routing_key = body
        .get("routing_key")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let mut event =
        parse_event(body, SystemClock.now(), new_dedup_key).map_err(EnqueueError::Invalid)?;
    // Checked after the shape, so a malformed event keeps PagerDuty's 400.
    let service = service_for_routing_key(&state, &routing_key)?;
    // The sender's own key is what it gets back, whatever lim keys on.
    let dedup_key = event.dedup_key().to_string();
    match &mut event {
        Event::Trigger(alert) => service.stamp(std::slice::from_mut(alert)),
        Event::Acknowledge { dedup_key, .. } | Event::Resolve { dedup_key, .. } => {
            if let Some(s) = &service.service {
                *dedup_key = super::auth::scoped_dedup_key(s, dedup_key);
            }
        }
    }
    process(&system, &state, event).await.map_err(body_error)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(EnqueueResponse {
            status: "success",
            message: "Event processed",
            dedup_key,
        }),
    ))
}

/// A body that is not JSON is an invalid event; other body errors (415,
/// 413, an unreadable body) keep lim's answer.
fn body_error(e: ApiError) -> EnqueueError {
    match e {
        ApiError::InvalidJson(_) | ApiError::InvalidBody(_) => {
            EnqueueError::Invalid(vec![e.to_string()])
        }
        other => EnqueueError::Api(other),
    }
}

/// Applies a valid event; returns once its effect is committed.
async fn process(system: &System, state: &AppState, event: Event) -> Result<(), ApiError> {
    let outcome = match event {
        Event::Trigger(alert) => {
            let _permit = state.admit(std::slice::from_ref(&alert))?;
            ingest_all(system, vec![alert]).await?;
            return Ok(());
        }
        Event::Acknowledge { dedup_key, by } => {
            system
                .acknowledge_by_key(&dedup_key, Attribution::new(by, Interface::Api))
                .await
        }
        Event::Resolve { dedup_key, by } => {
            system
                .resolve_by_key(&dedup_key, Attribution::new(by, Interface::Api))
                .await
        }
    };
    match outcome {
        // PagerDuty accepts acknowledges and resolves of nothing open.
        Ok(_)
        | Err(CommandError::NoOpenIncident(_))
        | Err(CommandError::Transition(TransitionError::AlreadyResolved(_))) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A fresh dedup key: 32 hex digits from the system clock, a process-wide
/// counter and the process id, mixed by two randomly keyed hashers.
pub fn new_dedup_key() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let half = |salt: u8| RandomState::new().hash_one((salt, nanos, n, std::process::id()));
    format!("{:016x}{:016x}", half(0), half(1))
}

enum Action {
    Trigger,
    Acknowledge,
    Resolve,
}

/// Checks an event and turns it into an [`Event`], or lists every problem
/// (PagerDuty's `errors`). `now` is the start of a trigger without
/// `payload.timestamp`; `new_key` makes the dedup key of a trigger without one.
pub fn parse_event(
    body: Value,
    now: Timestamp,
    new_key: impl FnOnce() -> String,
) -> Result<Event, Vec<String>> {
    let Value::Object(mut event) = body else {
        return Err(vec!["the event must be a JSON object".into()]);
    };
    let mut errors = Vec::new();
    required_text(&event, "routing_key", "routing_key", &mut errors);
    let action = match text(&event, "event_action") {
        Ok(Some("trigger")) => Some(Action::Trigger),
        Ok(Some("acknowledge")) => Some(Action::Acknowledge),
        Ok(Some("resolve")) => Some(Action::Resolve),
        Ok(None) => {
            errors.push("'event_action' is missing or blank".into());
            None
        }
        Ok(Some(_)) | Err(()) => {
            errors.push(
                "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)".into(),
            );
            None
        }
    };
    let dedup_key = optional_text(&event, "dedup_key", "dedup_key", &mut errors);
    if dedup_key
        .as_ref()
        .is_some_and(|k| k.chars().count() > DEDUP_KEY_MAX_CHARS)
    {
        errors.push(format!(
            "'dedup_key' is too long (at most {DEDUP_KEY_MAX_CHARS} characters)"
        ));
    }
    let client = optional_text(&event, "client", "client", &mut errors);
    optional_text(&event, "client_url", "client_url", &mut errors);
    for key in ["links", "images"] {
        if !matches!(event.get(key), None | Some(Value::Null | Value::Array(_))) {
            errors.push(format!("'{key}' must be an array"));
        }
    }
    let by = client.unwrap_or_else(|| DEFAULT_ACTOR.to_string());
    // Every `None` below has added its reason to `errors`.
    let parsed = match action {
        Some(Action::Trigger) => trigger_alert(&event, now, &mut errors).map(|mut alert| {
            alert.dedup_key = Some(dedup_key.unwrap_or_else(new_key));
            alert.extra = extra(&mut event);
            Event::Trigger(alert)
        }),
        Some(Action::Acknowledge) => required_key(dedup_key, &mut errors)
            .map(|dedup_key| Event::Acknowledge { dedup_key, by }),
        Some(Action::Resolve) => {
            required_key(dedup_key, &mut errors).map(|dedup_key| Event::Resolve { dedup_key, by })
        }
        None => None,
    };
    match parsed {
        Some(event) if errors.is_empty() => Ok(event),
        _ => Err(errors),
    }
}

/// The dedup key an acknowledge or resolve needs.
fn required_key(dedup_key: Option<String>, errors: &mut Vec<String>) -> Option<String> {
    if dedup_key.is_none() {
        errors.push("'dedup_key' is missing or blank (required to acknowledge or resolve)".into());
    }
    dedup_key
}

/// The alert of a trigger (without its dedup key and extra), or `None`
/// with the problems added to `errors`.
fn trigger_alert(
    event: &Map<String, Value>,
    now: Timestamp,
    errors: &mut Vec<String>,
) -> Option<Alert> {
    let payload = match event.get("payload") {
        Some(Value::Object(payload)) => payload,
        None | Some(Value::Null) => {
            errors.push("'payload' is missing".into());
            return None;
        }
        Some(_) => {
            errors.push("'payload' must be an object".into());
            return None;
        }
    };
    let before = errors.len();
    let summary = required_text(payload, "summary", "payload.summary", errors);
    let source = required_text(payload, "source", "payload.source", errors);
    let severity = match text(payload, "severity") {
        Ok(Some(s)) if SEVERITIES.contains(&s) => Some(s.to_string()),
        Ok(None) => {
            errors.push("'payload.severity' is missing or blank".into());
            None
        }
        Ok(Some(_)) | Err(()) => {
            errors.push(format!(
                "'payload.severity' is invalid (must be one of: {})",
                SEVERITIES.join(", ")
            ));
            None
        }
    };
    let starts_at = match optional_text(payload, "timestamp", "payload.timestamp", errors) {
        Some(t) => Timestamp::parse_rfc3339(&t)
            .map_err(|_| {
                errors.push(format!(
                    "'payload.timestamp' is invalid ({t:?} is not an ISO 8601 date-time)"
                ))
            })
            .ok(),
        None => Some(now),
    };
    let mut labels = Labels::new();
    for key in ["component", "group", "class"] {
        if let Some(value) = optional_text(payload, key, &format!("payload.{key}"), errors) {
            labels.insert(key.to_string(), value);
        }
    }
    if errors.len() > before {
        return None;
    }
    let (summary, source, severity, starts_at) = (summary?, source?, severity?, starts_at?);
    labels.insert("source".into(), source);
    labels.insert("severity".into(), severity);
    let summary: String = summary.chars().take(SUMMARY_MAX_CHARS).collect();
    Some(Alert {
        labels,
        annotations: Labels::from([("summary".to_string(), summary)]),
        status: AlertStatus::Firing,
        starts_at,
        ends_at: None,
        source: SOURCE.to_string(),
        dedup_key: None,
        extra: None,
    })
}

/// The fields kept verbatim in a trigger's `extra` (never `routing_key`).
fn extra(event: &mut Map<String, Value>) -> Option<String> {
    let mut kept = Map::new();
    if let Some(details) = event
        .get_mut("payload")
        .and_then(Value::as_object_mut)
        .and_then(|p| p.remove("custom_details"))
    {
        kept.insert("custom_details".into(), details);
    }
    for key in ["links", "images", "client", "client_url"] {
        if let Some(value) = event.remove(key) {
            kept.insert(key.into(), value);
        }
    }
    kept.retain(|_, v| !v.is_null());
    (!kept.is_empty()).then(|| Value::Object(kept).to_string())
}

/// `Ok(None)`: absent, null or blank; `Err`: not a string.
fn text<'a>(map: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, ()> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(()),
    }
}

fn optional_text(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Vec<String>,
) -> Option<String> {
    match text(map, key) {
        Ok(value) => value.map(str::to_string),
        Err(()) => {
            errors.push(format!("'{path}' must be a string"));
            None
        }
    }
}

fn required_text(
    map: &Map<String, Value>,
    key: &str,
    path: &str,
    errors: &mut Vec<String>,
) -> Option<String> {
    match text(map, key) {
        Ok(Some(value)) => Some(value.to_string()),
        Ok(None) => {
            errors.push(format!("'{path}' is missing or blank"));
            None
        }
        Err(()) => {
            errors.push(format!("'{path}' must be a string"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn parse(body: Value) -> Result<Event, Vec<String>> {
        parse_event(body, NOW, || "generated".to_string())
    }

    fn trigger() -> Value {
        json!({
            "routing_key": "pd-test-key",
            "event_action": "trigger",
            "dedup_key": "k1",
            "payload": {
                "summary": "p99 latency 4.2s", "source": "gw-1", "severity": "error",
                "component": "chat", "group": "llm", "class": "latency",
                "timestamp": "2024-01-02T03:04:05.000+00:00",
                "custom_details": {"num_firing": "2"}
            },
            "links": [{"href": "http://runbook", "text": "runbook"}],
            "images": [],
            "client": "Alertmanager",
            "client_url": "http://am:9093"
        })
    }

    #[test]
    fn trigger_maps_to_an_alert() {
        let Ok(Event::Trigger(alert)) = parse(trigger()) else {
            panic!("a trigger")
        };
        assert_eq!(alert.dedup_key.as_deref(), Some("k1"));
        assert_eq!(alert.source, "pagerduty");
        assert_eq!(alert.status, AlertStatus::Firing);
        assert_eq!(alert.ends_at, None);
        assert_eq!(
            alert.starts_at,
            Timestamp::parse_rfc3339("2024-01-02T03:04:05Z").unwrap()
        );
        let labels: Vec<String> = alert
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert_eq!(
            labels,
            [
                "class=latency",
                "component=chat",
                "group=llm",
                "severity=error",
                "source=gw-1"
            ]
        );
        assert_eq!(&alert.annotations["summary"], "p99 latency 4.2s");
        let extra: Value = serde_json::from_str(alert.extra.as_deref().unwrap()).unwrap();
        assert_eq!(
            extra,
            json!({"custom_details": {"num_firing": "2"},
                   "links": [{"href": "http://runbook", "text": "runbook"}], "images": [],
                   "client": "Alertmanager", "client_url": "http://am:9093"})
        );
        assert!(!alert.extra.unwrap().contains("pd-test-key"));
    }

    #[test]
    fn minimal_trigger_gets_a_generated_key() {
        let body = json!({"routing_key": "r", "event_action": "trigger",
            "payload": {"summary": "s", "source": "x", "severity": "info"}});
        let Ok(Event::Trigger(alert)) = parse(body) else {
            panic!("a trigger")
        };
        assert_eq!(alert.dedup_key.as_deref(), Some("generated"));
        assert_eq!(alert.starts_at, NOW);
        assert_eq!(alert.extra, None);
        assert_eq!(alert.labels.len(), 2);
        let long = "x".repeat(2000);
        let body = json!({"routing_key": "r", "event_action": "trigger", "dedup_key": "",
            "payload": {"summary": long, "source": "x", "severity": "info"}});
        let Ok(Event::Trigger(alert)) = parse(body) else {
            panic!("a trigger")
        };
        assert_eq!(alert.annotations["summary"].len(), SUMMARY_MAX_CHARS);
        assert_eq!(alert.dedup_key.as_deref(), Some("generated"), "blank key");
    }

    #[test]
    fn acknowledge_and_resolve_need_a_dedup_key() {
        let body = json!({"routing_key": "r", "event_action": "resolve", "dedup_key": "k"});
        assert_eq!(
            parse(body),
            Ok(Event::Resolve {
                dedup_key: "k".into(),
                by: "pagerduty".into()
            })
        );
        let body = json!({"routing_key": "r", "event_action": "acknowledge", "dedup_key": "k",
            "client": "Grafana", "payload": "ignored"});
        assert_eq!(
            parse(body),
            Ok(Event::Acknowledge {
                dedup_key: "k".into(),
                by: "Grafana".into()
            })
        );
        let errors = parse(json!({"routing_key": "r", "event_action": "resolve"})).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].starts_with("'dedup_key' is missing"),
            "{errors:?}"
        );
    }

    #[test]
    fn every_problem_is_listed() {
        let errors = parse(json!({"event_action": "page", "dedup_key": 5})).unwrap_err();
        assert_eq!(
            errors,
            vec![
                "'routing_key' is missing or blank",
                "'event_action' is invalid (must be one of: trigger, acknowledge, resolve)",
                "'dedup_key' must be a string",
            ]
        );
        let errors = parse(json!({"routing_key": "r", "event_action": "trigger",
            "payload": {"summary": " ", "source": 3, "severity": "fatal", "timestamp": "noon"},
            "links": {}}))
        .unwrap_err();
        assert_eq!(
            errors,
            vec![
                "'links' must be an array",
                "'payload.summary' is missing or blank",
                "'payload.source' must be a string",
                "'payload.severity' is invalid (must be one of: critical, error, warning, info)",
                "'payload.timestamp' is invalid (\"noon\" is not an ISO 8601 date-time)",
            ]
        );
        assert_eq!(
            parse(json!({"routing_key": "r", "event_action": "trigger"})).unwrap_err(),
            vec!["'payload' is missing"]
        );
        assert_eq!(
            parse(json!({"routing_key": "r"})).unwrap_err(),
            vec!["'event_action' is missing or blank"]
        );
        let mut long = trigger();
        long["dedup_key"] = json!("k".repeat(256));
        assert!(parse(long).unwrap_err()[0].contains("too long"));
        assert_eq!(
            parse(json!([])).unwrap_err(),
            vec!["the event must be a JSON object"]
        );
    }

    #[test]
    fn documented_severities_are_the_accepted_ones() {
        let schema =
            serde_json::to_value(<EventSeverity as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["enum"], json!(SEVERITIES));
    }

    #[test]
    fn generated_keys_are_32_hex_and_distinct() {
        let a = new_dedup_key();
        let b = new_dedup_key();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
