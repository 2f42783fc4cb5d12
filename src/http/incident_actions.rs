//! The incident actions beyond acknowledge and resolve: snooze, escalate
//! now, notes, and the timeline on its own.
//!
//! Each handler parses its body (pure functions below), calls one `System`
//! command and answers with the incident in its new state, exactly like
//! acknowledge and resolve in `incidents.rs`, whose helpers it shares. The
//! incident's own actor applies the command, so a snooze racing an
//! escalation step has one order; a note on a resolved incident (no actor)
//! is committed by the router.

use std::time::Duration;

use axum::http::StatusCode;
use axum::Json;
use incident_actors::domain::IncidentId;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{CanRead, CanWrite};
use super::error::ErrorBody;
use super::incidents::{
    command_answer, id_segment, parse_command, CommandBody, CommandParams, IdSegment, IncidentView,
};
use super::openapi::{BodyErrors, TokenErrors, Unavailable};
use super::timeline::{merge, TimelineEntry};
use super::via::Via;
use super::{ApiError, OptionalJson, Ready};

/// Longest snooze accepted: a week. Longer is "resolve it", not "snooze it".
pub const MAX_SNOOZE: Duration = Duration::from_secs(7 * 24 * 3600);
/// Longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 10_000;

/// How long to snooze, and who does.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SnoozeBody {
    /// Required: a duration from 1s to 7d, such as `30m` or `4h`.
    #[serde(rename = "for")]
    #[schema(required = true, value_type = String, example = "30m")]
    pub duration: Option<String>,
    /// Who snoozes (default `api`; not blank). With API tokens, the
    /// token's user whatever is given.
    pub by: Option<String>,
}

/// A note, and who writes it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// Required: not blank (trimmed), at most 10 000 characters.
    #[schema(required = true, value_type = String, example = "rolled back the deploy")]
    pub text: Option<String>,
    /// Who writes it (default `api`; not blank). With API tokens, the
    /// token's user whatever is given.
    pub by: Option<String>,
}

/// An incident's timeline, oldest event first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TimelineAnswer {
    pub incident_id: IncidentId,
    /// Events and deliveries, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// `{"for":"30m"}`: a positive humantime duration of at most a week.
pub fn parse_snooze(body: Option<SnoozeBody>) -> Result<(Duration, Option<String>), ApiError> {
    let body = body.unwrap_or_default();
    let raw = body
        .duration
        .ok_or_else(|| ApiError::InvalidBody("missing field `for` (e.g. \"30m\")".into()))?;
    let d = humantime::parse_duration(raw.trim())
        .map_err(|e| ApiError::InvalidBody(format!("`for`: invalid duration {raw:?}: {e}")))?;
    if d.is_zero() || d > MAX_SNOOZE {
        return Err(ApiError::InvalidBody(format!(
            "`for` must be between 1s and 7d, got {raw:?}"
        )));
    }
    Ok((d, body.by))
}

/// `{"text":"…"}`: non-empty, at most `MAX_NOTE_CHARS` characters.
pub fn parse_note(body: Option<NoteBody>) -> Result<(String, Option<String>), ApiError> {
    let body = body.unwrap_or_default();
    let text = body.text.unwrap_or_default();
    let text = text.trim();
    if text.is_empty() {
        return Err(ApiError::InvalidBody(
            "`text` must be a non-empty string".into(),
        ));
    }
    if text.chars().count() > MAX_NOTE_CHARS {
        return Err(ApiError::InvalidBody(format!(
            "`text` is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    Ok((text.to_string(), body.by))
}

/// Snooze an incident
///
/// Acknowledged until then, then triggered again with its escalation
/// restarted.
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/snooze",
    operation_id = "snooze_incident",
    tag = "incidents",
    params(CommandParams),
    request_body = SnoozeBody,
    responses(
        (status = 200, description = "The incident, snoozed", body = IncidentView),
        (status = 400, description = "`invalid_parameter` (the id), or `invalid_json` / \
            `invalid_body` (the body)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such incident", body = ErrorBody),
        (status = 409, description = "`conflict`: the incident is resolved", body = ErrorBody),
        TokenErrors,
        BodyErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn snooze(
    CanWrite(caller): CanWrite,
    Ready(system): Ready,
    Via(via): Via,
    id: IdSegment,
    OptionalJson(body): OptionalJson<SnoozeBody>,
) -> Result<Json<IncidentView>, ApiError> {
    let (duration, by) = parse_snooze(body)?;
    let (id, by) = parse_command(&id_segment(id)?, caller.attribute(by), via)?;
    let result = system.snooze(id, by, duration).await;
    command_answer(&system, id, result).await
}

/// Escalate an incident now
///
/// The next escalation step fires now; an acknowledged incident is
/// triggered again.
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/escalate",
    operation_id = "escalate_incident",
    tag = "incidents",
    params(CommandParams),
    request_body(content = ref("#/components/schemas/CommandBody"), description = "Optional: who escalates"),
    responses(
        (status = 200, description = "The incident, escalated", body = IncidentView),
        (status = 400, description = "`invalid_parameter` (the id), or `invalid_json` / \
            `invalid_body` (the body)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such incident", body = ErrorBody),
        (status = 409, description = "`conflict`: the incident is resolved", body = ErrorBody),
        TokenErrors,
        BodyErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn escalate(
    CanWrite(caller): CanWrite,
    Ready(system): Ready,
    Via(via): Via,
    id: IdSegment,
    OptionalJson(body): OptionalJson<CommandBody>,
) -> Result<Json<IncidentView>, ApiError> {
    let by = caller.attribute(body.and_then(|b| b.by));
    let (id, by) = parse_command(&id_segment(id)?, by, via)?;
    let result = system.escalate(id, by).await;
    command_answer(&system, id, result).await
}

/// Add a note to an incident
///
/// Resolved incidents take notes too.
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/notes",
    operation_id = "add_incident_note",
    tag = "incidents",
    params(CommandParams),
    request_body = NoteBody,
    responses(
        (status = 201, description = "The note is committed; the incident", body = IncidentView),
        (status = 400, description = "`invalid_parameter` (the id), or `invalid_json` / \
            `invalid_body` (the body)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such incident", body = ErrorBody),
        TokenErrors,
        BodyErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn add_note(
    CanWrite(caller): CanWrite,
    Ready(system): Ready,
    Via(via): Via,
    id: IdSegment,
    OptionalJson(body): OptionalJson<NoteBody>,
) -> Result<(StatusCode, Json<IncidentView>), ApiError> {
    let (text, by) = parse_note(body)?;
    let (id, by) = parse_command(&id_segment(id)?, caller.attribute(by), via)?;
    let result = system.add_note(id, by, text).await;
    let view = command_answer(&system, id, result).await?;
    Ok((StatusCode::CREATED, view))
}

/// Read an incident's timeline
#[utoipa::path(
    get,
    path = "/v1/incidents/{id}/timeline",
    operation_id = "get_incident_timeline",
    tag = "incidents",
    params(("id" = u64, Path, description = "The incident's id, a positive integer", minimum = 1)),
    responses(
        (status = 200, description = "The timeline", body = TimelineAnswer),
        (status = 400, description = "`invalid_parameter`: not a positive integer",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such incident", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn timeline(
    _: CanRead,
    Ready(system): Ready,
    id: IdSegment,
) -> Result<Json<TimelineAnswer>, ApiError> {
    let id = super::incidents::parse_incident_id(&id_segment(id)?)?;
    if system.store().get_incident(id).await?.is_none() {
        return Err(ApiError::NotFound(format!("incident {id} not found")));
    }
    let events = system.store().timeline(id).await?;
    let deliveries = system.store().deliveries(id).await?;
    let timeline = merge(events, &deliveries);
    Ok(Json(TimelineAnswer {
        incident_id: id,
        timeline,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snooze_durations() {
        let body = |d: &str| {
            Some(SnoozeBody {
                duration: Some(d.into()),
                by: None,
            })
        };
        assert_eq!(
            parse_snooze(body("30m")).unwrap().0,
            Duration::from_secs(1800)
        );
        assert_eq!(
            parse_snooze(body("4h")).unwrap().0,
            Duration::from_secs(4 * 3600)
        );
        for bad in ["0s", "8d", "soon", ""] {
            assert!(parse_snooze(body(bad)).is_err(), "{bad}");
        }
        assert!(parse_snooze(None).is_err(), "`for` is required");
    }

    #[test]
    fn notes_are_trimmed_and_bounded() {
        let body = |t: &str| {
            Some(NoteBody {
                text: Some(t.into()),
                by: Some("bob".into()),
            })
        };
        assert_eq!(parse_note(body("  looking  ")).unwrap().0, "looking");
        assert!(parse_note(body("   ")).is_err());
        assert!(parse_note(body(&"x".repeat(MAX_NOTE_CHARS + 1))).is_err());
        assert!(parse_note(None).is_err());
    }
}
