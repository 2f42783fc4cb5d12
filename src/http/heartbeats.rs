//! Heartbeat monitors (dead-man's switches) over HTTP.
//!
//! * `POST /v1/heartbeats/{name}`: the monitored job says it is alive. It
//!   authenticates with an integration key of the monitor's service (no key
//!   while ingest is open), like the job's alerts would: the job is a sender,
//!   not an operator. Answers the monitor's status once the new deadline is
//!   committed; 503 (retry) if it could not be.
//! * `GET /v1/heartbeats`, `GET /v1/heartbeats/{name}`: every monitor's (or
//!   one monitor's) status, with the read scope.
//!
//! The monitors themselves are actors in the core (`incident_actors::heartbeat`);
//! a miss opens an `alertname=HeartbeatMissed` incident through the normal
//! ingest path and the next ping resolves it.

use axum::extract::State;
use axum::http::request::Parts;
use axum::Json;
use incident_actors::{HeartbeatError, HeartbeatStatus};
use serde::Serialize;
use utoipa::ToSchema;

use super::auth::{service_for_key, CanRead};
use super::error::ErrorBody;
use super::incidents::{id_segment, IdSegment};
use super::openapi::{TokenErrors, Unavailable};
use super::{ApiError, AppState, Ready};

impl From<HeartbeatError> for ApiError {
    fn from(e: HeartbeatError) -> Self {
        match e {
            HeartbeatError::Unknown(_) => ApiError::NotFound(e.to_string()),
            HeartbeatError::Store(store) => store.into(),
            HeartbeatError::Unavailable(_) => ApiError::Unavailable(e.to_string()),
        }
    }
}

/// The bearer key of a ping, checked against the monitor's service.
pub struct PingKey(Option<String>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for PingKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        Ok(PingKey(
            super::auth::bearer(&parts.headers).map(str::to_string),
        ))
    }
}

/// Ping a heartbeat
///
/// The monitored job says it is alive: the monitor's next deadline is
/// committed, and an open `HeartbeatMissed` incident is resolved. Needs an
/// integration key of the monitor's service.
#[utoipa::path(
    post,
    path = "/v1/heartbeats/{name}",
    operation_id = "ping_heartbeat",
    tag = "heartbeats",
    params(("name" = String, Path, description = "The monitor's name")),
    responses(
        (status = 200, description = "The monitor, with its new deadline", body = HeartbeatStatus),
        (status = 400, description = "`invalid_parameter`: the name cannot be decoded",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: no integration key, not a valid one, \
            or one of another service than the monitor's", body = ErrorBody),
        (status = 404, description = "`not_found`: no monitor of that name", body = ErrorBody),
        Unavailable,
    ),
    security(("integration_key" = [])),
)]
pub async fn ping(
    PingKey(key): PingKey,
    State(state): State<AppState>,
    Ready(system): Ready,
    name: IdSegment,
) -> Result<Json<HeartbeatStatus>, ApiError> {
    let name = id_segment(name)?;
    // The key first: strangers learn nothing, not even which names exist.
    let service = service_for_key(state.access(), key.as_deref())?;
    let monitor = system
        .config()
        .heartbeats
        .iter()
        .find(|m| m.name == name)
        .ok_or_else(|| HeartbeatError::Unknown(name.clone()))?;
    // A key of another service is as wrong as no key: it does not vouch
    // for this job.
    if let Some(service) = service {
        if service.name != monitor.service {
            return Err(ApiError::Unauthorized(format!(
                "the integration key is not one of service {:?}, which heartbeat {name:?} belongs to",
                monitor.service
            )));
        }
    }
    Ok(Json(system.ping_heartbeat(&name).await?))
}

/// Every heartbeat monitor.
#[derive(Debug, Serialize, ToSchema)]
pub struct HeartbeatList {
    pub heartbeats: Vec<HeartbeatStatus>,
}

/// List heartbeat monitors
///
/// Every monitor with its status (`up`, `missed`, `waiting`).
#[utoipa::path(
    get,
    path = "/v1/heartbeats",
    operation_id = "list_heartbeats",
    tag = "heartbeats",
    responses(
        (status = 200, description = "Every monitor", body = HeartbeatList),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn list(_: CanRead, Ready(system): Ready) -> Json<HeartbeatList> {
    Json(HeartbeatList {
        heartbeats: system.heartbeats().await,
    })
}

/// Read a heartbeat monitor
#[utoipa::path(
    get,
    path = "/v1/heartbeats/{name}",
    operation_id = "get_heartbeat",
    tag = "heartbeats",
    params(("name" = String, Path, description = "The monitor's name")),
    responses(
        (status = 200, description = "The monitor", body = HeartbeatStatus),
        (status = 400, description = "`invalid_parameter`: the name cannot be decoded",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no monitor of that name", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn get(
    _: CanRead,
    Ready(system): Ready,
    name: IdSegment,
) -> Result<Json<HeartbeatStatus>, ApiError> {
    let name = id_segment(name)?;
    system
        .heartbeats()
        .await
        .into_iter()
        .find(|h| h.name == name)
        .map(Json)
        .ok_or_else(|| HeartbeatError::Unknown(name).into())
}
