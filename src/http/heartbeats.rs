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

use super::auth::{service_for_key, CanRead};
use super::incidents::{id_segment, IdSegment};
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

pub async fn ping(
    PingKey(key): PingKey,
    State(state): State<AppState>,
    Ready(system): Ready,
    name: IdSegment,
) -> Result<Json<HeartbeatStatus>, ApiError> {
    let name = id_segment(name)?;
    // The key first: strangers learn nothing, not even which names exist.
    let service = service_for_key(state.access(), key.as_deref())?.0;
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

#[derive(Debug, Serialize)]
pub struct HeartbeatList {
    pub heartbeats: Vec<HeartbeatStatus>,
}

pub async fn list(_: CanRead, Ready(system): Ready) -> Json<HeartbeatList> {
    Json(HeartbeatList {
        heartbeats: system.heartbeats().await,
    })
}

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
