//! Slack's requests to lim: button clicks (`POST /v1/slack/interactions`)
//! and the `/lim` slash command (`POST /v1/slack/commands`).
//!
//! * **Authentication** is Slack's request signature, not an API token:
//!   every request is checked ([`crate::slack::signature`]) over its raw
//!   body before anything is parsed; a missing or wrong signature, or a
//!   timestamp more than 5 minutes away, is 401 and nothing changes. With
//!   no signing secret configured both routes answer 404 `not_found`
//!   (the Slack app is not set up), so a stray request cannot act.
//! * **A click** (`block_actions` on lim's buttons) acknowledges, resolves
//!   or snoozes the incident through the actor system, attributed to the
//!   Slack user's lim user (`[[users]] slack_user_id`), else `slack:<id>`
//!   (or refused, `unmapped_users = "refuse"`), via `slack`. The answer is
//!   an empty 200 as soon as the command is committed; the message itself
//!   is edited by lim's own update delivery (`chat.update`), which every
//!   committed change produces. A click that no longer applies (already
//!   acknowledged, already resolved) answers 200 with an ephemeral note.
//! * **Retries**: Slack re-sends a request it had no answer to within 3 s
//!   (`X-Slack-Retry-Num`). A click is identified by its user, `action_ts`
//!   and trigger id ([`RecentClicks`]): one already taken is answered 200
//!   and not acted on again.
//! * **`/lim`** answers with an ephemeral message: `ack ID`, `resolve ID`,
//!   `snooze ID 30m`, `list` (every open incident: lim does not know which
//!   services a user looks after), `oncall`.

use std::collections::{HashSet, VecDeque};
use std::fmt::Write as _;
use std::sync::Mutex;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use incident_actors::domain::schedule::on_call_shift;
use incident_actors::domain::{Attribution, Incident, IncidentStatus, Interface};
use incident_actors::messages::CommandError;
use incident_actors::ports::{IncidentQuery, StatusFilter};
use incident_actors::time::{Clock, SystemClock};
use incident_actors::System;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::openapi::Unavailable;
use super::{read_body, ApiError, AppState};
use crate::channels::human_time;
use crate::channels::slack::{SlackAction, SlackActionKind};
use crate::slack::signature::{self, SIGNATURE_HEADER, TIMESTAMP_HEADER};
use crate::slack::{
    duration_word, parse_interaction, parse_slash_command, parse_slash_request, SlackSettings,
    SlashCommand, SLASH_USAGE,
};

/// Slack's retry counter header.
pub const RETRY_HEADER: &str = "x-slack-retry-num";
/// How many clicks [`RecentClicks`] remembers.
const REMEMBERED_CLICKS: usize = 10_000;
/// At most this many incidents in `/lim list`.
const LIST_LIMIT: u32 = 20;

/// An ephemeral message: shown only to the user who clicked or typed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"response_type": "ephemeral", "replace_original": false,
    "text": "Incident #4 is already acknowledged by alice"}))]
pub struct SlackReply {
    /// Always `ephemeral`.
    pub response_type: &'static str,
    /// Always `false`: the page keeps showing the incident.
    pub replace_original: bool,
    pub text: String,
}

impl SlackReply {
    pub fn ephemeral(text: impl Into<String>) -> Self {
        SlackReply {
            response_type: "ephemeral",
            replace_original: false,
            text: text.into(),
        }
    }
}

impl IntoResponse for SlackReply {
    fn into_response(self) -> Response {
        Json(self).into_response()
    }
}

/// Slack shows nothing a `block_actions` answer's body says: a note for the
/// user goes to the payload's `response_url` (signed by Slack with the
/// rest of the payload, so it is Slack's own URL). Sent after the answer,
/// in its own task: the click is answered at once whatever Slack's side
/// does, and a failure only loses the note.
fn post_to_response_url(url: String, reply: SlackReply) {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(5))
                .build()
                .unwrap_or_default()
        })
        .clone();
    tokio::spawn(async move {
        match client.post(&url).json(&reply).send().await {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => tracing::warn!(
                status = r.status().as_u16(),
                "Slack refused an ephemeral note"
            ),
            Err(e) => {
                tracing::warn!(error = %e.without_url(), "cannot send an ephemeral note to Slack")
            }
        }
    });
}

/// The clicks already acted on, the most recent [`REMEMBERED_CLICKS`].
#[derive(Debug, Default)]
pub struct RecentClicks {
    inner: Mutex<(VecDeque<String>, HashSet<String>)>,
}

impl RecentClicks {
    /// Claims a click: `false` if it was already claimed.
    pub fn claim(&self, id: &str) -> bool {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (order, seen) = &mut *guard;
        if !seen.insert(id.to_string()) {
            return false;
        }
        order.push_back(id.to_string());
        if order.len() > REMEMBERED_CLICKS {
            if let Some(old) = order.pop_front() {
                seen.remove(&old);
            }
        }
        true
    }

    /// Gives a claim back (the action failed: a retry should try again).
    pub fn release(&self, id: &str) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (order, seen) = &mut *guard;
        seen.remove(id);
        order.retain(|x| x != id);
    }
}

/// The Slack settings, the verified raw body and the running system; or
/// 404 (Slack not set up), 401 (signature) or 503 (not ready).
async fn verified(
    state: &AppState,
    request: Request,
) -> Result<(SlackSettings, HeaderMap, Vec<u8>, System), ApiError> {
    let Some(settings) = state.slack().cloned() else {
        return Err(ApiError::NotFound(
            "the Slack app is not configured: set [channels.slack] signing_secret \
             (or LIM_SLACK_SIGNING_SECRET)"
                .into(),
        ));
    };
    let headers = request.headers().clone();
    let body = read_body(request, state).await?;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let now = SystemClock.now().0.div_euclid(1000);
    signature::verify(
        settings.signing_secret(),
        header(TIMESTAMP_HEADER),
        header(SIGNATURE_HEADER),
        &body,
        now,
    )
    .map_err(|e| {
        tracing::warn!(error = %e, "refused a Slack request");
        ApiError::Unauthorized(e.to_string())
    })?;
    let system = state.system()?.clone();
    Ok((settings, headers, body.to_vec(), system))
}

/// Slack button clicks
///
/// Slack's interactivity request (`payload=` JSON, form-encoded), signed
/// with the app's signing secret. Lim's buttons (`lim_ack`, `lim_resolve`,
/// `lim_snooze_30m`, `lim_snooze_4h`) act on the incident as the clicking
/// user; the page is then edited through `chat.update`. Other interactions
/// are answered 200 and ignored.
#[utoipa::path(
    post,
    path = "/v1/slack/interactions",
    operation_id = "slack_interactions",
    tag = "slack",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "`payload=<JSON>`, as Slack sends it"),
    responses(
        (status = 200, description = "Done (empty body), or an ephemeral note: the click no \
            longer applies, or the Slack user may not act", body = SlackReply),
        (status = 400, description = "`invalid_body`: no `payload`, or not JSON", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid `X-Slack-Signature`, or a \
            timestamp more than 5 minutes away; nothing changed", body = ErrorBody),
        (status = 404, description = "`not_found`: no Slack signing secret is configured",
            body = ErrorBody),
        Unavailable,
    ),
    security(("slack_signature" = [])),
)]
pub async fn interactions(
    State(state): State<AppState>,
    request: Request,
) -> Result<Response, ApiError> {
    let (settings, headers, body, system) = verified(&state, request).await?;
    let Some(click) = parse_interaction(&body).map_err(ApiError::InvalidBody)? else {
        return Ok(StatusCode::OK.into_response());
    };
    let retry = headers.get(RETRY_HEADER).and_then(|v| v.to_str().ok());
    if !state.slack_clicks.claim(&click.click_id) {
        tracing::info!(click = %click.click_id, retry, "Slack click already taken");
        return Ok(StatusCode::OK.into_response());
    }
    let outcome = act(&system, &settings, &click.user_id, click.action).await;
    match outcome {
        Ok(Outcome::Done(_)) => Ok(StatusCode::OK.into_response()),
        Ok(Outcome::Note(text)) => {
            let reply = SlackReply::ephemeral(text);
            if let Some(url) = click.response_url {
                post_to_response_url(url, reply.clone());
            }
            Ok(reply.into_response())
        }
        Err(e) => {
            state.slack_clicks.release(&click.click_id);
            Err(e)
        }
    }
}

/// The `/lim` slash command
///
/// Slack's slash command request (form-encoded `user_id`, `text`, …),
/// signed with the app's signing secret: `ack ID`, `resolve ID`,
/// `snooze ID 30m`, `list`, `oncall`. Always answers with an ephemeral
/// message.
#[utoipa::path(
    post,
    path = "/v1/slack/commands",
    operation_id = "slack_commands",
    tag = "slack",
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "The slash command's fields, as Slack sends them"),
    responses(
        (status = 200, description = "What happened, or what went wrong, for the user",
            body = SlackReply),
        (status = 400, description = "`invalid_body`: no `user_id`", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no valid `X-Slack-Signature`, or a \
            timestamp more than 5 minutes away; nothing changed", body = ErrorBody),
        (status = 404, description = "`not_found`: no Slack signing secret is configured",
            body = ErrorBody),
        Unavailable,
    ),
    security(("slack_signature" = [])),
)]
pub async fn commands(
    State(state): State<AppState>,
    request: Request,
) -> Result<SlackReply, ApiError> {
    let (settings, _headers, body, system) = verified(&state, request).await?;
    let slash = parse_slash_request(&body).map_err(ApiError::InvalidBody)?;
    let command = match parse_slash_command(&slash.text) {
        Ok(command) => command,
        Err(message) => return Ok(SlackReply::ephemeral(message)),
    };
    let text = match command {
        SlashCommand::Help => SLASH_USAGE.to_string(),
        SlashCommand::List => {
            let user = settings.actor(&slash.user_id);
            list(&system, user.as_deref()).await?
        }
        SlashCommand::OnCall => oncall(&system),
        SlashCommand::Act(action) => match act(&system, &settings, &slash.user_id, action).await? {
            Outcome::Done(text) | Outcome::Note(text) => text,
        },
    };
    Ok(SlackReply::ephemeral(text))
}

/// What an action came to: done (with a line saying so), or a note why not.
enum Outcome {
    Done(String),
    Note(String),
}

/// Acts on an incident for a Slack user.
async fn act(
    system: &System,
    settings: &SlackSettings,
    slack_user: &str,
    action: SlackAction,
) -> Result<Outcome, ApiError> {
    let Some(actor) = settings.actor(slack_user) else {
        return Ok(Outcome::Note(format!(
            "Your Slack account ({slack_user}) is not linked to a lim user: ask for \
             `slack_user_id = \"{slack_user}\"` on your [[users]] entry"
        )));
    };
    let id = action.incident_id;
    let Some(current) = system.store().get_incident(id).await? else {
        return Ok(Outcome::Note(format!("Incident #{id} does not exist")));
    };
    if let Some(note) = no_longer_applies(&current, action.kind) {
        return Ok(Outcome::Note(note));
    }
    let by = Attribution::new(actor.clone(), Interface::Slack);
    let result = match action.kind {
        SlackActionKind::Acknowledge => system.acknowledge(id, by).await,
        SlackActionKind::Resolve => system.resolve(id, by).await,
        SlackActionKind::Snooze(d) => system.snooze(id, by, d).await,
    };
    match result {
        Ok(_) => Ok(Outcome::Done(match action.kind {
            SlackActionKind::Acknowledge => format!("Incident #{id} acknowledged by {actor}"),
            SlackActionKind::Resolve => format!("Incident #{id} resolved by {actor}"),
            SlackActionKind::Snooze(d) => {
                format!("Incident #{id} snoozed for {} by {actor}", duration_word(d))
            }
        })),
        // Resolved meanwhile (no live actor, or the actor refused).
        Err(CommandError::NotFound(_) | CommandError::Transition(_)) => {
            let now = system.store().get_incident(id).await?;
            Ok(Outcome::Note(
                now.as_ref()
                    .and_then(|i| no_longer_applies(i, action.kind))
                    .unwrap_or_else(|| format!("Incident #{id} does not exist")),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// Why `kind` no longer applies to `incident`, if it does not.
fn no_longer_applies(incident: &Incident, kind: SlackActionKind) -> Option<String> {
    let id = incident.id;
    match (incident.status, kind) {
        (IncidentStatus::Resolved, _) => Some(match &incident.resolved {
            Some((at, by)) => format!(
                "Incident #{id} is already resolved by {} at {}",
                by.by,
                human_time(*at)
            ),
            None => format!("Incident #{id} is already resolved"),
        }),
        (IncidentStatus::Acknowledged, SlackActionKind::Acknowledge) => {
            Some(match &incident.acknowledged {
                Some((at, by)) => format!(
                    "Incident #{id} is already acknowledged by {} at {}",
                    by.by,
                    human_time(*at)
                ),
                None => format!("Incident #{id} is already acknowledged"),
            })
        }
        _ => None,
    }
}

/// Open incidents read when filtering by the user's services.
const LIST_SCAN: u32 = 1000;

/// `/lim list`: the open incidents of the services whose policies page the
/// user (every service when none does, or the user is not mapped), newest
/// first.
async fn list(system: &System, user: Option<&str>) -> Result<String, ApiError> {
    let config = system.config();
    let services = user.map(|u| config.services_paging(u)).unwrap_or_default();
    let mine = !services.is_empty();
    let query = IncidentQuery {
        status: Some(StatusFilter::Open),
        limit: if mine { LIST_SCAN } else { LIST_LIMIT + 1 },
        ..IncidentQuery::default()
    };
    let mut incidents = system.store().list_incidents(&query).await?;
    if mine {
        let policy_of_its_own = |s: &str| config.service_policies.contains_key(s);
        incidents.retain(|i| {
            services.contains(&i.service)
                || (!policy_of_its_own(&i.service) && services.iter().any(|s| s == "default"))
        });
    }
    if incidents.is_empty() {
        return Ok(if mine {
            format!(
                "No open incidents in your services ({})",
                services.join(", ")
            )
        } else {
            "No open incidents".into()
        });
    }
    let more = incidents.len() > LIST_LIMIT as usize;
    incidents.truncate(LIST_LIMIT as usize);
    let mut text = if mine {
        format!("Open incidents of your services ({}):", services.join(", "))
    } else {
        String::from("Open incidents (every service: no policy pages you):")
    };
    for i in &incidents {
        let _ = write!(
            text,
            "\n• #{} {} — {} ({}, {})",
            i.id,
            crate::slack::escape(&i.title),
            crate::channels::status_word(i.status),
            crate::slack::escape(&i.service),
            i.severity.as_deref().unwrap_or("no severity"),
        );
    }
    if more {
        let _ = write!(text, "\n… and more: `lim incidents list --status open`");
    }
    Ok(text)
}

/// `/lim oncall`: who is on call now, per schedule.
fn oncall(system: &System) -> String {
    let directory = &system.config().directory;
    if directory.schedules.is_empty() {
        return "No schedules are configured".into();
    }
    let now = SystemClock.now();
    let mut text = String::from("On call now:");
    for schedule in directory.schedules.values() {
        let shift = on_call_shift(schedule, now);
        let who = if shift.users.is_empty() {
            "nobody".to_string()
        } else {
            shift
                .users
                .iter()
                .map(|name| {
                    match directory
                        .users
                        .get(name)
                        .and_then(|c| c.slack_user_id.as_ref())
                    {
                        Some(slack) => format!("{name} (<@{slack}>)"),
                        None => name.clone(),
                    }
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let until = shift
            .end
            .map(|t| format!(" until {}", human_time(t)))
            .unwrap_or_default();
        let _ = write!(text, "\n• *{}*: {who}{until}", schedule.name);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clicks_are_claimed_once() {
        let clicks = RecentClicks::default();
        assert!(clicks.claim("a"));
        assert!(!clicks.claim("a"));
        clicks.release("a");
        assert!(clicks.claim("a"));
        for i in 0..REMEMBERED_CLICKS {
            assert!(clicks.claim(&i.to_string()));
        }
        assert!(clicks.claim("a"), "the oldest is forgotten");
    }
}
