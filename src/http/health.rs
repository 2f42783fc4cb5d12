//! Liveness and readiness probes.
//!
//! `/healthz` answers 200 as soon as the listener is bound: the process is
//! alive. `/readyz` answers 200 only once the actor system is running (the
//! store is open and open incidents are rehydrated) and while its store
//! takes writes; 503 `not_ready` before that and after the system has
//! stopped, 503 `store_unavailable` while the last commit or the last
//! probe of the store failed (PostgreSQL stopped, the SQLite disk full or
//! read-only), so a load balancer sends traffic only to a node that can
//! commit it. It turns 200 again by itself when the store is back.

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
/// rehydrated) and its store takes writes; 503 `not_ready` before that and
/// after it stopped, 503 `store_unavailable` while the store is down.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready for traffic", body = Health,
            example = json!({"status": "ready"})),
        (status = 503, description = "`not_ready`: starting or stopped; `store_unavailable`: the store takes no writes", body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if let Some(down) = state.system()?.store_down() {
        return Err(ApiError::StoreUnavailable {
            since: down.since.to_rfc3339(),
            error: down.error,
        });
    }
    Ok(Json(Health { status: "ready" }))
}
