//! Silences over HTTP: create, list, expire. Matchers are Alertmanager's
//! (`alertname=X`, `model=~gpt.*`, `env!=prod`, `team!~a|b`), given as
//! strings or as `{"name","op","value"}` objects; the window is `starts_at`
//! (default now) and either `ends_at` or `for` ("2h").

use axum::http::StatusCode;
use axum::Json;
use incident_actors::domain::{MatchOp, Matcher, Silence, SilenceId, SilenceState};
use incident_actors::system::SilenceError;
use incident_actors::time::{Clock, SystemClock, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{CanRead, CanWrite};
use super::error::ErrorBody;
use super::incidents::{id_segment, IdSegment};
use super::openapi::{BodyErrors, TokenErrors, Unavailable};
use super::{ApiError, ApiJson, Ready};

impl From<SilenceError> for ApiError {
    fn from(e: SilenceError) -> Self {
        match e {
            SilenceError::Invalid(m) => ApiError::InvalidBody(m.to_string()),
            SilenceError::NotFound(id) => ApiError::NotFound(format!("silence {id} not found")),
            SilenceError::Store(s) => s.into(),
            SilenceError::Unavailable(m) => ApiError::Unavailable(m),
        }
    }
}

/// A matcher: Alertmanager's text form (`alertname=X`, `model=~gpt.*`,
/// `env!=prod`, `team!~a|b`) or its parts. Regexes are anchored; an absent
/// label matches as the empty string.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MatcherInput {
    #[schema(example = "model=~gpt.*")]
    Text(String),
    Parts {
        name: String,
        op: MatchOp,
        value: String,
    },
}

/// A new silence: matchers, a window, and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"matchers": ["alertname=HighLatency", "model=~gpt.*"], "for": "2h",
    "comment": "provider incident, tracked upstream", "created_by": "alice"}))]
pub struct NewSilence {
    /// At least one; together they must not match every alert.
    pub matchers: Vec<MatcherInput>,
    /// Default now.
    pub starts_at: Option<Timestamp>,
    /// Give `ends_at` or `for`, not both; the end must be in the future.
    pub ends_at: Option<Timestamp>,
    /// How long from `starts_at`, a duration such as `2h` or `30m`.
    #[serde(rename = "for")]
    #[schema(example = "2h")]
    pub duration: Option<String>,
    /// Default `api`; with API tokens, the token's user whatever is given.
    pub created_by: Option<String>,
    /// Required, not blank: shown to whoever wonders why nothing pages.
    #[schema(required = true, value_type = String, min_length = 1)]
    pub comment: Option<String>,
}

/// A silence as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceView {
    pub id: SilenceId,
    /// In Alertmanager's text form.
    pub matchers: Vec<String>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    pub created_at: Timestamp,
    pub state: SilenceState,
}

impl SilenceView {
    fn of(s: &Silence, now: Timestamp) -> Self {
        SilenceView {
            id: s.id,
            matchers: s.matchers.iter().map(ToString::to_string).collect(),
            starts_at: s.starts_at,
            ends_at: s.ends_at,
            created_by: s.created_by.clone(),
            comment: s.comment.clone(),
            created_at: s.created_at,
            state: s.state(now),
        }
    }
}

/// Turns a request into a silence (id assigned later), naming what is wrong.
pub fn parse_new_silence(body: NewSilence, now: Timestamp) -> Result<Silence, ApiError> {
    let invalid = |m: String| ApiError::InvalidBody(m);
    let matchers = body
        .matchers
        .into_iter()
        .enumerate()
        .map(|(i, m)| {
            match m {
                MatcherInput::Text(t) => Matcher::parse(&t),
                MatcherInput::Parts { name, op, value } => Matcher::new(name, op, value),
            }
            .map_err(|e| invalid(format!("matchers[{i}]: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let starts_at = body.starts_at.unwrap_or(now);
    let ends_at = match (body.ends_at, body.duration) {
        (Some(_), Some(_)) => return Err(invalid("give `ends_at` or `for`, not both".into())),
        (Some(end), None) => end,
        (None, Some(d)) => starts_at.plus(
            humantime::parse_duration(d.trim())
                .map_err(|e| invalid(format!("`for`: invalid duration {d:?}: {e}")))?,
        ),
        (None, None) => return Err(invalid("missing `ends_at` or `for` (e.g. \"2h\")".into())),
    };
    let comment = body.comment.unwrap_or_default().trim().to_string();
    if comment.is_empty() {
        return Err(invalid(
            "`comment` must say why (it is shown to whoever wonders why nothing pages)".into(),
        ));
    }
    let created_by = body
        .created_by
        .unwrap_or_else(|| "api".into())
        .trim()
        .to_string();
    let silence = Silence {
        id: SilenceId(0),
        matchers,
        starts_at,
        ends_at,
        created_by,
        comment,
        created_at: now,
    };
    silence.validate().map_err(|e| invalid(e.to_string()))?;
    if silence.ends_at <= now {
        return Err(invalid(
            "the silence would already be over: `ends_at` is in the past".into(),
        ));
    }
    Ok(silence)
}

/// Create a silence
///
/// Alerts the silence matches while it is active open no incident and
/// page nobody.
#[utoipa::path(
    post,
    path = "/v1/silences",
    operation_id = "create_silence",
    tag = "silences",
    request_body = NewSilence,
    responses(
        (status = 201, description = "The silence is committed", body = SilenceView),
        (status = 400, description = "`invalid_json`, or `invalid_body` saying what is wrong \
            (a matcher, the window, no comment)", body = ErrorBody),
        TokenErrors,
        BodyErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn create(
    CanWrite(caller): CanWrite,
    Ready(system): Ready,
    ApiJson(mut body): ApiJson<NewSilence>,
) -> Result<(StatusCode, Json<SilenceView>), ApiError> {
    body.created_by = caller.attribute(body.created_by);
    let now = SystemClock.now();
    let silence = system.create_silence(parse_new_silence(body, now)?).await?;
    Ok((StatusCode::CREATED, Json(SilenceView::of(&silence, now))))
}

/// Every silence, with its state now.
#[derive(Debug, Serialize, ToSchema)]
pub struct SilenceList {
    pub silences: Vec<SilenceView>,
}

/// List silences
///
/// Every silence, pending, active or expired.
#[utoipa::path(
    get,
    path = "/v1/silences",
    operation_id = "list_silences",
    tag = "silences",
    responses(
        (status = 200, description = "Every silence", body = SilenceList),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn list(_: CanRead, Ready(system): Ready) -> Result<Json<SilenceList>, ApiError> {
    let now = SystemClock.now();
    let silences = system.list_silences().await?;
    Ok(Json(SilenceList {
        silences: silences.iter().map(|s| SilenceView::of(s, now)).collect(),
    }))
}

/// Expire a silence
///
/// It ends now; alerts it matched are no longer silenced.
#[utoipa::path(
    post,
    path = "/v1/silences/{id}/expire",
    operation_id = "expire_silence",
    tag = "silences",
    params(("id" = u64, Path, description = "The silence's id, a positive integer", minimum = 1)),
    responses(
        (status = 200, description = "The silence, expired", body = SilenceView),
        (status = 400, description = "`invalid_parameter`: not a positive integer",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such silence", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn expire(
    caller: CanWrite,
    ready: Ready,
    id: IdSegment,
) -> Result<Json<SilenceView>, ApiError> {
    expire_silence(caller, ready, id).await
}

/// Expire a silence (`DELETE`)
///
/// The same as `POST /v1/silences/{id}/expire`: the silence ends now (it
/// is kept, expired).
#[utoipa::path(
    delete,
    path = "/v1/silences/{id}",
    operation_id = "delete_silence",
    tag = "silences",
    params(("id" = u64, Path, description = "The silence's id, a positive integer", minimum = 1)),
    responses(
        (status = 200, description = "The silence, expired", body = SilenceView),
        (status = 400, description = "`invalid_parameter`: not a positive integer",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such silence", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn delete(
    caller: CanWrite,
    ready: Ready,
    id: IdSegment,
) -> Result<Json<SilenceView>, ApiError> {
    expire_silence(caller, ready, id).await
}

async fn expire_silence(
    _: CanWrite,
    Ready(system): Ready,
    id: IdSegment,
) -> Result<Json<SilenceView>, ApiError> {
    let raw = id_segment(id)?;
    let id = raw
        .parse::<u64>()
        .ok()
        .filter(|n| *n > 0)
        .map(SilenceId)
        .ok_or_else(|| {
            ApiError::InvalidParameter(format!(
                "silence id must be a positive integer, got {raw:?}"
            ))
        })?;
    let silence = system.expire_silence(id).await?;
    Ok(Json(SilenceView::of(&silence, SystemClock.now())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> NewSilence {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn parses_strings_objects_and_windows() {
        let now = Timestamp(1_000_000);
        let s = parse_new_silence(
            body(serde_json::json!({
                "matchers": ["alertname=X", {"name": "model", "op": "=~", "value": "gpt.*"}],
                "for": "2h", "comment": "deploy", "created_by": "alice"
            })),
            now,
        )
        .unwrap();
        assert_eq!(s.matchers.len(), 2);
        assert_eq!(s.ends_at, Timestamp(1_000_000 + 7_200_000));
        assert_eq!(s.created_by, "alice");
    }

    #[test]
    fn refuses_what_would_confuse_an_on_call_engineer() {
        let now = Timestamp(1_000_000);
        for (json, why) in [
            (
                serde_json::json!({"matchers": ["alertname=X"], "comment": "c"}),
                "no end",
            ),
            (
                serde_json::json!({"matchers": ["alertname=X"], "for": "1h"}),
                "no comment",
            ),
            (
                serde_json::json!({"matchers": [], "for": "1h", "comment": "c"}),
                "no matcher",
            ),
            (
                serde_json::json!({"matchers": ["x=~.*"], "for": "1h", "comment": "c"}),
                "matches everything",
            ),
            (
                serde_json::json!({"matchers": ["x=~("], "for": "1h", "comment": "c"}),
                "bad regex",
            ),
            (
                serde_json::json!({"matchers": ["novalue"], "for": "1h", "comment": "c"}),
                "no operator",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "for": "soon", "comment": "c"}),
                "bad duration",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "for": "9000y", "comment": "c"}),
                "past year 9999",
            ),
            (
                serde_json::json!({"matchers": ["a=b"], "starts_at": "1969-12-31T00:00:00Z", "ends_at": "1970-01-01T00:00:01Z", "comment": "c"}),
                "already over",
            ),
        ] {
            assert!(parse_new_silence(body(json), now).is_err(), "{why}");
        }
    }
}
