//! `GET /v1/oncall`: who is on call now (or `?at=` an RFC 3339 instant) for
//! every schedule, and until when that holds. The answer is the pure
//! on-call resolver of the core (`domain::schedule::on_call_shift`) applied
//! to the configured schedules: the same function escalation steps use.

use axum::extract::Query;
use axum::Json;
use incident_actors::domain::schedule::{on_call_shift, OnCallSource};
use incident_actors::time::{Clock, SystemClock, Timestamp};
use serde::{Deserialize, Serialize};

use utoipa::ToSchema;

use super::auth::CanRead;
use super::error::ErrorBody;
use super::openapi::{TokenErrors, Unavailable};
use super::{ApiError, Ready};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OnCallQuery {
    /// The instant to ask about (RFC 3339); now when absent.
    pub at: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct OnCallUser {
    pub name: String,
    pub email: Option<String>,
    pub slack_user_id: Option<String>,
}

#[derive(Debug, Serialize, PartialEq, Eq, ToSchema)]
pub struct ScheduleOnCall {
    pub schedule: String,
    pub time_zone: String,
    /// Nobody when empty: the step targeting this schedule pages no one.
    pub users: Vec<OnCallUser>,
    /// When this answer started and stops holding (`null`: open-ended).
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
    /// `rotation` (with its layer), `override`, or `nobody`.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct OnCallAnswer {
    pub at: Timestamp,
    pub schedules: Vec<ScheduleOnCall>,
}

fn parse_at(at: Option<&str>) -> Result<Timestamp, ApiError> {
    match at {
        None => Ok(SystemClock.now()),
        Some(text) => chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Timestamp(t.timestamp_millis()))
            .map_err(|e| {
                ApiError::InvalidParameter(format!(
                    "at: invalid time {text:?}: {e} (expected RFC 3339; send + as %2B)"
                ))
            }),
    }
}

/// Who is on call now (or at `at`) for every schedule.
#[utoipa::path(
    get,
    path = "/v1/oncall",
    operation_id = "oncall",
    tag = "oncall",
    params(OnCallQuery),
    responses(
        (status = 200, description = "Every schedule with who is on call and until when",
            body = OnCallAnswer),
        (status = 400, description = "`invalid_parameter`: `at` is not RFC 3339",
            body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn oncall(
    _: CanRead,
    Ready(system): Ready,
    query: Result<Query<OnCallQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<OnCallAnswer>, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let at = parse_at(query.at.as_deref())?;
    let directory = &system.config().directory;
    let schedules = directory
        .schedules
        .values()
        .map(|schedule| {
            let answer = on_call_shift(schedule, at);
            let users = answer
                .users
                .iter()
                .map(|name| {
                    let contact = directory.users.get(name);
                    OnCallUser {
                        name: name.clone(),
                        email: contact.and_then(|c| c.email.clone()),
                        slack_user_id: contact.and_then(|c| c.slack_user_id.clone()),
                    }
                })
                .collect();
            ScheduleOnCall {
                schedule: schedule.name.clone(),
                time_zone: schedule.time_zone.name().to_string(),
                users,
                since: answer.start,
                until: answer.end,
                source: match answer.source {
                    OnCallSource::Override { .. } => "override".into(),
                    OnCallSource::Rotation { layer } => format!("rotation {layer}"),
                    OnCallSource::Nobody => "nobody".into(),
                },
            }
        })
        .collect();
    Ok(Json(OnCallAnswer { at, schedules }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_parameter() {
        assert_eq!(
            parse_at(Some("2026-11-23T09:00:00+01:00")).unwrap(),
            Timestamp(1_795_420_800_000)
        );
        let e = parse_at(Some("tomorrow")).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
        assert!(parse_at(None).is_ok());
    }
}
