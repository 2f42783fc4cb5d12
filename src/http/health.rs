//! Liveness and readiness probes.
//!
//! `/healthz` answers 200 as soon as the listener is bound: the process is
//! alive. `/readyz` answers 200 only once the actor system is running (the
//! store is open and open incidents are rehydrated), 503 `not_ready` before
//! that and after the system has stopped, so a load balancer sends traffic
//! only to a node that can commit it.

use axum::extract::State;
use axum::Json;
use serde_json::{json, Value};

use super::{ApiError, AppState};

pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    state.system()?;
    Ok(Json(json!({"status": "ready"})))
}
