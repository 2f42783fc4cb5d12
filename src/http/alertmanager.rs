//! `POST /v1/integrations/alertmanager`: Alertmanager's webhook (message
//! version 4) and Grafana's, which has the same shape plus a few fields.
//!
//! The body is one notification for one Alertmanager *group*:
//! `{version, groupKey, status, receiver, groupLabels, commonLabels,
//! commonAnnotations, externalURL, alerts:[{status, labels, annotations,
//! startsAt, endsAt, generatorURL, fingerprint}], truncatedAlerts}`.
//! `groupKey`, `status` and `alerts` are required, and each alert's `status`
//! and non-empty `labels`; everything else is optional, and fields lim does
//! not know are kept, not rejected (Grafana adds fields over time).
//!
//! Mapping to [`Alert`]: one incident per group.
//!
//! * Every alert gets `dedup_key = groupKey`, so the whole group is one
//!   incident; each alert keeps its own label set (its identity inside the
//!   incident).
//! * `source` is `grafana` when the body has Grafana's top-level fields
//!   (`orgId`, `title`, `state`, `message`), else `alertmanager`.
//! * `status` is the alert's own, except that a group whose `status` is
//!   `resolved` resolves every alert in it (the incident resolves once all
//!   its alerts are). Alertmanager sends resolves itself (`send_resolved`),
//!   so firing alerts get `ends_at: None` (no expiry); a resolved alert ends
//!   at its `endsAt`, or now.
//! * `startsAt` absent or Go's zero time (`0001-01-01T00:00:00Z`, which
//!   Alertmanager sends for "no time") → now.
//! * `extra` is a JSON object: the alert's `generatorURL` (when not empty)
//!   and `fingerprint`, every other field of the alert verbatim (Grafana's
//!   `silenceURL`, `dashboardURL`, `panelURL`, `imageURL`, `values`,
//!   `valueString`, …), and the group's `externalURL`, `receiver` and unknown
//!   top-level fields (Grafana's `orgId`, `state`), except Grafana's `title`
//!   and `message`: the rendered notification text, large and repeated for
//!   every alert. An alert's own field wins over a group field of the same
//!   name.
//! * `truncatedAlerts` (alerts Alertmanager left out over `max_alerts`) is
//!   logged; lim cannot ingest what it was not sent.
//!
//! As with the native format, the whole body is parsed first
//! ([`parse_webhook`], pure) and a bad one is a 400 naming the field; then
//! the alerts are ingested with `alerts::ingest_all` and the answer
//! is `200 {"status":"ok","results":[…]}` once all are committed.
//! Authentication is not handled here.

use axum::extract::State;
use axum::Json;
use incident_actors::domain::{Alert, AlertStatus, Labels};
use incident_actors::messages::IngestOutcome;
use incident_actors::time::{Clock, SystemClock, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::alerts::ingest_all;
use super::auth::IngestService;
use super::error::ErrorBody;
use super::openapi::{BodyErrors, KeyErrors, Unavailable};
use super::{ApiError, ApiJson, AppState, Ready};

pub const SOURCE: &str = "alertmanager";
pub const GRAFANA_SOURCE: &str = "grafana";

/// Top-level fields only Grafana sends: their presence makes the source `grafana`.
const GRAFANA_FIELDS: &[&str] = &["orgId", "title", "state", "message"];
/// Most bytes of group-level extra fields kept (they are copied into each alert).
pub const MAX_GROUP_EXTRA_BYTES: usize = 8 * 1024;
/// Most bytes of group-level extras over all alerts of one request.
pub const MAX_GROUP_EXTRA_TOTAL_BYTES: usize = 1024 * 1024;

/// Top-level fields that are not kept in `extra`.
const GROUP_FIELDS_DROPPED: &[&str] = &[
    "version",
    "groupKey",
    "status",
    "groupLabels",
    "commonLabels",
    "commonAnnotations",
    "alerts",
    "truncatedAlerts",
    "title",
    "message",
];
/// Alert fields mapped onto [`Alert`] itself; every other one goes to `extra`.
const ALERT_FIELDS_MAPPED: &[&str] = &["status", "labels", "annotations", "startsAt", "endsAt"];

/// Go's zero `time.Time` (`0001-01-01T00:00:00Z`) in Unix milliseconds.
pub const GO_ZERO_TIME: Timestamp = Timestamp(-62_135_596_800_000);

/// A timestamp, with Go's zero time (or anything before it) read as absent.
pub fn go_time(t: Option<Timestamp>) -> Option<Timestamp> {
    t.filter(|t| *t > GO_ZERO_TIME)
}

/// A deserialisation error of the `index`th `what` as `invalid_body`:
/// `alert 2: labels.a: invalid type …`.
pub(crate) fn indexed_error(
    what: &str,
    index: usize,
    e: serde_path_to_error::Error<serde_json::Error>,
) -> ApiError {
    let path = e.path().to_string();
    let message = e.into_inner().to_string();
    if path == "." {
        ApiError::InvalidBody(format!("{what} {index}: {message}"))
    } else {
        ApiError::InvalidBody(format!("{what} {index}: {path}: {message}"))
    }
}

/// The group-level fields lim reads; the others are read from the raw object.
#[derive(Debug, Deserialize)]
struct Group {
    #[serde(rename = "groupKey")]
    group_key: String,
    status: AlertStatus,
    #[serde(default, rename = "truncatedAlerts")]
    truncated_alerts: u64,
}

/// The alert fields mapped onto [`Alert`].
///
/// In the document: one alert of a webhook notification. Every other field
/// (`generatorURL`, `fingerprint`, Grafana's `silenceURL`, `dashboardURL`,
/// `values`, …) is kept verbatim in the alert's `extra`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(
    as = AlertmanagerAlert,
    description = "One alert of a webhook notification. Every other field (`generatorURL`, \
        `fingerprint`, Grafana's `silenceURL`, `dashboardURL`, `values`, …) is kept verbatim \
        in the alert's `extra`."
)]
pub struct WebhookAlert {
    /// Overridden by the group's `status` when that is `resolved`.
    status: AlertStatus,
    /// Not empty, no empty names.
    #[schema(value_type = BTreeMap<String, String>)]
    labels: Labels,
    #[serde(default)]
    #[schema(value_type = BTreeMap<String, String>)]
    annotations: Labels,
    /// Absent or Go's zero time (`0001-01-01T00:00:00Z`): now.
    #[serde(default, rename = "startsAt")]
    starts_at: Option<Timestamp>,
    /// Read for resolved alerts only (absent or zero: now).
    #[serde(default, rename = "endsAt")]
    ends_at: Option<Timestamp>,
}

/// Documents the accepted body of `POST /v1/integrations/alertmanager`:
/// [`parse_webhook`] reads it by hand from a `serde_json::Value` (to keep
/// the fields it does not know), so this type only describes it.
///
/// One notification of one Alertmanager group (webhook message version 4),
/// or Grafana's (the same plus `orgId`, `title`, `state`, `message`). Fields
/// not listed are kept in every alert's `extra`.
#[derive(ToSchema)]
#[schema(
    as = AlertmanagerWebhook,
    description = "One notification of one Alertmanager group (webhook message version 4), or \
        Grafana's (the same plus `orgId`, `title`, `state`, `message`): the group is one \
        incident. Top-level fields other than those listed are kept in every alert's `extra`, \
        except Grafana's `title` and `message`."
)]
#[serde(rename_all = "camelCase")]
pub struct WebhookBody {
    /// `4` from Alertmanager, `1` from Grafana; not checked.
    pub version: Option<String>,
    /// The group: every alert of it joins one incident. Not empty.
    #[schema(min_length = 1)]
    pub group_key: String,
    /// `resolved` resolves every alert of the group.
    pub status: AlertStatus,
    /// Kept in `extra`.
    pub receiver: Option<String>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub group_labels: Option<Labels>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub common_labels: Option<Labels>,
    #[schema(value_type = Option<BTreeMap<String, String>>)]
    pub common_annotations: Option<Labels>,
    /// Kept in `extra`.
    #[serde(rename = "externalURL")]
    pub external_url: Option<String>,
    pub alerts: Vec<WebhookAlert>,
    /// Alerts Alertmanager left out over `max_alerts` (logged).
    pub truncated_alerts: Option<u64>,
}

/// What every alert of one notification shares.
struct GroupContext {
    group_key: String,
    resolved: bool,
    source: &'static str,
    /// The group's fields kept in every alert's `extra`.
    extra: Map<String, Value>,
}

/// A parsed notification.
#[derive(Debug)]
pub struct Notification {
    pub alerts: Vec<Alert>,
    /// Alerts Alertmanager left out of the message (`max_alerts`).
    pub truncated_alerts: u64,
}

/// `{"status":"ok"}` with the outcome of every alert, in input order.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookResponse {
    /// Always `ok`.
    #[schema(value_type = String, example = "ok")]
    pub status: &'static str,
    pub results: Vec<IngestOutcome>,
}

/// Alertmanager's (and Grafana's) webhook
///
/// One notification of one alert group: the group is one incident (its
/// `groupKey` is every alert's dedup key), each alert keeping its own
/// labels. Answers once every alert's effect is committed.
#[utoipa::path(
    post,
    path = "/v1/integrations/alertmanager",
    operation_id = "ingest_alertmanager_webhook",
    tag = "ingest",
    request_body = WebhookBody,
    responses(
        (status = 200, description = "Every alert's effect is committed", body = WebhookResponse),
        (status = 400, description = "`invalid_json`, or `invalid_body` naming the field \
            (also an alert over a size limit); nothing was ingested", body = ErrorBody),
        KeyErrors,
        BodyErrors,
        Unavailable,
    ),
    security(("integration_key" = [])),
)]
pub async fn post_webhook(
    service: IngestService,
    Ready(system): Ready,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<WebhookResponse>, ApiError> {
    let mut notification = parse_webhook(body, SystemClock.now())?;
    service.stamp(&mut notification.alerts);
    if notification.truncated_alerts > 0 {
        tracing::warn!(
            truncated = notification.truncated_alerts,
            "an Alertmanager notification left out alerts (max_alerts)"
        );
    }
    let results = if notification.alerts.is_empty() {
        Vec::new()
    } else {
        let _permit = state.admit(&notification.alerts)?;
        ingest_all(&system, notification.alerts).await?
    };
    Ok(Json(WebhookResponse {
        status: "ok",
        results,
    }))
}

/// Turns a webhook body into alerts (see the module header), or says what is
/// wrong with it. `now` stands in for absent times.
pub fn parse_webhook(body: Value, now: Timestamp) -> Result<Notification, ApiError> {
    let Value::Object(mut fields) = body else {
        return Err(ApiError::InvalidBody(
            "expected an Alertmanager webhook object".into(),
        ));
    };
    let items = match fields.remove("alerts") {
        Some(Value::Array(items)) => items,
        Some(_) => {
            return Err(ApiError::InvalidBody(
                "`alerts` must be an array of alert objects".into(),
            ))
        }
        None => return Err(ApiError::InvalidBody("missing field `alerts`".into())),
    };
    let group: Group = serde_path_to_error::deserialize(&fields).map_err(|e| {
        let path = e.path().to_string();
        super::json_error(&path, e.into_inner())
    })?;
    if group.group_key.is_empty() {
        return Err(ApiError::InvalidBody("`groupKey` must not be empty".into()));
    }
    let mut extra = fields;
    let source = if GRAFANA_FIELDS.iter().any(|f| extra.contains_key(*f)) {
        GRAFANA_SOURCE
    } else {
        SOURCE
    };
    extra.retain(|key, _| !GROUP_FIELDS_DROPPED.contains(&key.as_str()));
    // The group's fields are copied into every alert: bound the copy, or a
    // large unknown field times many alerts would multiply the body in memory.
    let group_bytes = Value::Object(extra.clone()).to_string().len();
    if group_bytes > MAX_GROUP_EXTRA_BYTES
        || group_bytes.saturating_mul(items.len()) > MAX_GROUP_EXTRA_TOTAL_BYTES
    {
        return Err(ApiError::InvalidBody(format!(
            "the group's extra top-level fields are {group_bytes} bytes for {} alerts; \
             at most {MAX_GROUP_EXTRA_BYTES} bytes, and {MAX_GROUP_EXTRA_TOTAL_BYTES} bytes \
             copied over all alerts",
            items.len()
        )));
    }
    let context = GroupContext {
        group_key: group.group_key,
        resolved: group.status == AlertStatus::Resolved,
        source,
        extra,
    };
    let alerts = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| to_alert(&context, index, item, now))
        .collect::<Result<_, _>>()?;
    Ok(Notification {
        alerts,
        truncated_alerts: group.truncated_alerts,
    })
}

/// One alert of the group to an [`Alert`], or what is wrong with it.
fn to_alert(
    group: &GroupContext,
    index: usize,
    item: Value,
    now: Timestamp,
) -> Result<Alert, ApiError> {
    let invalid = |what: &str| ApiError::InvalidBody(format!("alert {index}: {what}"));
    let Value::Object(fields) = item else {
        return Err(invalid("expected an alert object"));
    };
    let parsed: WebhookAlert =
        serde_path_to_error::deserialize(&fields).map_err(|e| indexed_error("alert", index, e))?;
    if parsed.labels.is_empty() {
        return Err(invalid("`labels` must not be empty"));
    }
    if parsed.labels.iter().any(|(name, _)| name.is_empty()) {
        return Err(invalid("label names in `labels` must not be empty"));
    }
    let status = if group.resolved {
        AlertStatus::Resolved
    } else {
        parsed.status
    };
    let ends_at = match status {
        AlertStatus::Firing => None,
        AlertStatus::Resolved => Some(go_time(parsed.ends_at).unwrap_or(now)),
    };
    let mut extra = group.extra.clone();
    for (key, value) in fields {
        let mapped = ALERT_FIELDS_MAPPED.contains(&key.as_str());
        let blank_url = key == "generatorURL" && value.as_str() == Some("");
        if !mapped && !blank_url {
            extra.insert(key, value);
        }
    }
    Ok(Alert {
        labels: parsed.labels,
        annotations: parsed.annotations,
        status,
        starts_at: go_time(parsed.starts_at).unwrap_or(now),
        ends_at,
        source: group.source.to_string(),
        dedup_key: Some(group.group_key.clone()),
        extra: (!extra.is_empty()).then(|| Value::Object(extra).to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: Timestamp = Timestamp(1_700_000_000_000);

    fn body() -> Value {
        json!({
            "receiver": "hook", "status": "firing", "version": "4",
            "groupKey": "{}:{alertname=\"A\"}", "truncatedAlerts": 0,
            "groupLabels": {"alertname": "A"}, "commonLabels": {"alertname": "A"},
            "commonAnnotations": {}, "externalURL": "http://am:9093",
            "alerts": [
                {"status": "firing", "labels": {"alertname": "A", "instance": "1"},
                 "annotations": {"summary": "s"}, "startsAt": "2024-01-02T03:04:05Z",
                 "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prom/graph",
                 "fingerprint": "04269496f970fd8a"},
                {"status": "resolved", "labels": {"alertname": "A", "instance": "2"},
                 "startsAt": "0001-01-01T00:00:00Z", "endsAt": "2024-01-02T03:14:05Z",
                 "generatorURL": "", "fingerprint": "054efce66158e33d"}
            ]
        })
    }

    fn extra(alert: &Alert) -> Value {
        serde_json::from_str(alert.extra.as_deref().expect("extra")).unwrap()
    }

    fn err(body: Value) -> String {
        let e = parse_webhook(body, NOW).unwrap_err();
        assert_eq!(e.code(), "invalid_body");
        e.to_string()
    }

    #[test]
    fn a_group_is_one_dedup_key() {
        let n = parse_webhook(body(), NOW).unwrap();
        assert_eq!(n.truncated_alerts, 0);
        let [a, b] = &n.alerts[..] else {
            panic!("two alerts")
        };
        for alert in [a, b] {
            assert_eq!(alert.dedup_key.as_deref(), Some("{}:{alertname=\"A\"}"));
            assert_eq!(alert.source, "alertmanager");
        }
        assert_eq!(a.incident_key(), b.incident_key());
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.status, AlertStatus::Firing);
        assert_eq!(a.ends_at, None);
        assert_eq!(
            a.starts_at,
            Timestamp::parse_rfc3339("2024-01-02T03:04:05Z").unwrap()
        );
        assert_eq!(&a.annotations["summary"], "s");
        assert_eq!(
            extra(a),
            json!({"generatorURL": "http://prom/graph", "fingerprint": "04269496f970fd8a",
                   "externalURL": "http://am:9093", "receiver": "hook"})
        );
        assert_eq!(b.status, AlertStatus::Resolved);
        assert_eq!(b.starts_at, NOW, "Go's zero time is no time");
        assert_eq!(
            b.ends_at,
            Some(Timestamp::parse_rfc3339("2024-01-02T03:14:05Z").unwrap())
        );
        assert!(extra(b).get("generatorURL").is_none(), "blank URL dropped");
    }

    #[test]
    fn a_resolved_group_resolves_every_alert() {
        let mut body = body();
        body["status"] = json!("resolved");
        let n = parse_webhook(body, NOW).unwrap();
        assert!(n
            .alerts
            .iter()
            .all(|a| a.status == AlertStatus::Resolved && a.ends_at.is_some()));
        assert_eq!(n.alerts[0].ends_at, Some(NOW), "zero endsAt: now");
    }

    #[test]
    fn grafana_extras_are_kept() {
        let mut body = body();
        body["version"] = json!("1");
        body["orgId"] = json!(1);
        body["state"] = json!("alerting");
        body["title"] = json!("[FIRING:1] A");
        body["message"] = json!("long text");
        body["alerts"][0]["silenceURL"] = json!("http://grafana/silence");
        body["alerts"][0]["values"] = json!({"B": 42.5});
        body["alerts"][0]["valueString"] = json!("[ var='B' value=42.5 ]");
        body["alerts"][0]["somethingNew"] = json!([1, 2]);
        let n = parse_webhook(body, NOW).unwrap();
        let a = &n.alerts[0];
        assert_eq!(a.source, "grafana");
        let x = extra(a);
        assert_eq!(x["silenceURL"], "http://grafana/silence");
        assert_eq!(x["values"], json!({"B": 42.5}));
        assert_eq!(x["valueString"], "[ var='B' value=42.5 ]");
        assert_eq!(x["somethingNew"], json!([1, 2]));
        assert_eq!(x["orgId"], 1);
        assert_eq!(x["state"], "alerting");
        assert!(x.get("title").is_none() && x.get("message").is_none());
    }

    #[test]
    fn bad_bodies_name_the_field() {
        let mut b = body();
        b.as_object_mut().unwrap().remove("groupKey");
        assert_eq!(err(b), "missing field `groupKey`");
        let mut b = body();
        b.as_object_mut().unwrap().remove("alerts");
        assert_eq!(err(b), "missing field `alerts`");
        let mut b = body();
        b["alerts"] = json!({});
        assert!(err(b).contains("`alerts` must be an array"));
        let mut b = body();
        b["groupKey"] = json!("");
        assert!(err(b).contains("groupKey"));
        let mut b = body();
        b["status"] = json!("pending");
        assert!(err(b).starts_with("status: unknown variant"));
        let mut b = body();
        b["alerts"][1].as_object_mut().unwrap().remove("labels");
        assert_eq!(err(b), "alert 1: missing field `labels`");
        let mut b = body();
        b["alerts"][0]["labels"] = json!({});
        assert_eq!(err(b), "alert 0: `labels` must not be empty");
        let mut b = body();
        b["alerts"][0]["startsAt"] = json!("yesterday");
        assert!(err(b).starts_with("alert 0: startsAt:"));
        let mut b = body();
        b["alerts"][1] = json!("x");
        assert_eq!(err(b), "alert 1: expected an alert object");
        assert!(err(json!([])).contains("expected an Alertmanager webhook object"));
    }

    #[test]
    fn go_zero_time_is_absent() {
        let zero = Timestamp::parse_rfc3339("0001-01-01T00:00:00Z").unwrap();
        assert_eq!(zero, GO_ZERO_TIME);
        assert_eq!(go_time(Some(zero)), None);
        assert_eq!(go_time(Some(NOW)), Some(NOW));
        assert_eq!(go_time(None), None);
    }

    #[test]
    fn large_group_extras_are_refused_not_multiplied() {
        let mut b = body();
        b["pad"] = json!("x".repeat(MAX_GROUP_EXTRA_BYTES + 1));
        assert!(err(b).contains("extra top-level fields"));
        // Small extras times many alerts, over the total budget.
        let mut b = body();
        b["pad"] = json!("x".repeat(4000));
        let alert = json!({"status": "firing", "labels": {"a": "1"}});
        b["alerts"] = Value::Array(vec![alert; 400]);
        assert!(err(b).contains("copied over all alerts"));
        let mut b = body();
        b["note"] = json!("small");
        assert!(parse_webhook(b, NOW).is_ok(), "ordinary extras are kept");
    }
}
