//! Liveness and readiness probes.
//!
//! `/healthz` answers 200 as soon as the listener is bound: the process is
//! alive. `/readyz` answers 200 only once the actor system is running (the
//! store is open and open incidents are rehydrated), 503 `not_ready` before
//! that and after the system has stopped, so a load balancer sends traffic
//! only to a node that can commit it.

use axum::extract::State;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::error::ErrorBody;
use super::{ApiError, AppState};

/// A probe's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct Health {
    /// `ok` (alive) or `ready` (ready for traffic).
    #[schema(value_type = String, example = "ok")]
    pub status: &'static str,
}

/// Liveness
///
/// 200 as soon as the process listens, ready or not.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "health",
    responses((status = 200, description = "The process is alive", body = Health,
        example = json!({"status": "ok"}))),
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness
///
/// 200 once the actor system runs (the store is open, open incidents are
/// rehydrated); 503 `not_ready` before that and after it stopped.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready for traffic", body = Health,
            example = json!({"status": "ready"})),
        (status = 503, description = "`not_ready`: starting or stopped", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    state.system()?;
    Ok(Json(Health { status: "ready" }))
}
