//! The live actor tree over HTTP: `GET /v1/actors` (the whole tree, one
//! page of incidents), `GET /v1/actors/{id}` (one actor in full) and
//! `POST /v1/actors/{id}/restart` (an incident actor started again from its
//! snapshot). The gathering is the core's (`incident_actors::inspect`):
//! every actor answers an inspect message with a timeout, so a stuck actor
//! shows as `unresponsive` instead of hanging the answer, and no lock is
//! shared with ingest.

use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use axum::Json;
use incident_actors::domain::{IncidentId, IncidentStatus};
use incident_actors::inspect::{
    prune, ActorKind, ActorNode, ActorSelector, ChildQuery, DEFAULT_PAGE, MAX_PAGE,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::{CanRead, CanWrite};
use super::error::ErrorBody;
use super::incidents::{id_segment, IdSegment};
use super::openapi::{TokenErrors, Unavailable};
use super::{ApiError, Ready};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TreeParams {
    /// Only actors of this kind (and the ancestors leading to them):
    /// supervisor, persistence, notifier_pool, factory, notifier_worker,
    /// router, incident, scheduler, heartbeat.
    pub kind: Option<String>,
    /// Only actors with this status: an actor status (`running`,
    /// `unresponsive`, …) or an incident's (`triggered`, `acknowledged`).
    pub status: Option<String>,
    /// Incidents per page, 0–1000 (default 100).
    pub limit: Option<usize>,
    /// The router's `next_cursor` from the previous page.
    pub cursor: Option<String>,
}

/// The live actor tree.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActorTree {
    pub tree: Option<ActorNode>,
    /// Actors in this answer.
    pub actors: usize,
    /// How long gathering it took.
    pub took_ms: f64,
}

/// The page the router is asked for, from the query parameters.
fn child_query(p: &TreeParams) -> Result<ChildQuery, ApiError> {
    let limit = p.limit.unwrap_or(DEFAULT_PAGE);
    if limit > MAX_PAGE {
        return Err(ApiError::InvalidParameter(format!(
            "limit: {limit} is over the maximum of {MAX_PAGE}"
        )));
    }
    let after = p
        .cursor
        .as_deref()
        .map(|c| {
            c.parse::<u64>().map(IncidentId).map_err(|_| {
                ApiError::InvalidParameter(format!("cursor: {c:?} is not a cursor lim gave"))
            })
        })
        .transpose()?;
    let status = match p.status.as_deref() {
        Some("triggered") => Some(IncidentStatus::Triggered),
        Some("acknowledged") => Some(IncidentStatus::Acknowledged),
        _ => None,
    };
    // An actor-status filter (`unresponsive`) says nothing of incidents: the
    // page is taken unfiltered and pruned after.
    Ok(ChildQuery {
        after,
        limit,
        status,
    })
}

fn parse_kind(kind: Option<&str>) -> Result<Option<ActorKind>, ApiError> {
    kind.map(|k| {
        ActorKind::parse(k).ok_or_else(|| {
            let all: Vec<&str> = ActorKind::ALL.iter().map(|k| k.as_str()).collect();
            ApiError::InvalidParameter(format!("kind: {k:?} is not one of {}", all.join(", ")))
        })
    })
    .transpose()
}

/// The live actor tree
///
/// Every actor of the running system with its observable state: the root
/// supervisor, persistence (queued writes, last batch, commit time), the
/// notifier pool and its channel workers (in flight, failures, next retry),
/// the router (index size, counts by status) and one page of its incident
/// actors (status, step, armed timers with deadlines, alert count,
/// restarts), and the heartbeat monitors. Each actor is asked with a
/// timeout; one that does not answer is `unresponsive`.
#[utoipa::path(
    get,
    path = "/v1/actors",
    operation_id = "actor_tree",
    tag = "actors",
    params(TreeParams),
    responses(
        (status = 200, description = "The tree (`tree` is null when a filter matches nothing)",
            body = ActorTree),
        (status = 400, description = "`invalid_parameter`, naming it", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn tree(
    _: CanRead,
    Ready(system): Ready,
    params: Result<Query<TreeParams>, QueryRejection>,
) -> Result<Json<ActorTree>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let page = child_query(&params)?;
    let kind = parse_kind(params.kind.as_deref())?;
    let started = Instant::now();
    let whole = system.actor_tree(&page).await;
    let tree = prune(whole, kind, params.status.as_deref());
    Ok(Json(ActorTree {
        actors: tree.as_ref().map_or(0, ActorNode::count),
        tree,
        took_ms: started.elapsed().as_secs_f64() * 1e3,
    }))
}

fn selector(id: IdSegment) -> Result<ActorSelector, ApiError> {
    let id = id_segment(id)?;
    ActorSelector::parse(&id).ok_or_else(|| {
        ApiError::InvalidParameter(format!(
            "id: {id:?} is neither an actor id (0.42) nor incident-<id>"
        ))
    })
}

/// One actor in full
///
/// By its actor id (`0.42`; a channel worker `0.17/w2`) or, for an open
/// incident's actor, `incident-<id>`. An incident comes with the whole
/// incident as its actor holds it (`state.incident`); the router with its
/// first page of incidents.
#[utoipa::path(
    get,
    path = "/v1/actors/{id}",
    operation_id = "get_actor",
    tag = "actors",
    params(("id" = String, Path, description = "An actor id (`0.42`) or `incident-<id>`")),
    responses(
        (status = 200, description = "The actor", body = ActorNode),
        (status = 400, description = "`invalid_parameter`: not an actor id", body = ErrorBody),
        (status = 404, description = "`not_found`: no such actor is running", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn get(
    _: CanRead,
    Ready(system): Ready,
    id: IdSegment,
) -> Result<Json<ActorNode>, ApiError> {
    let wanted = selector(id)?;
    system
        .actor(&wanted)
        .await
        .map(Json)
        .ok_or_else(|| ApiError::NotFound("no such actor is running".into()))
}

/// Restart an incident actor
///
/// Stops the actor of an open incident (after the message in hand) and
/// starts it again from its last committed snapshot, re-arming its timers:
/// what a crash and a supervisor restart would do, on demand. Only incident
/// actors can be restarted this way.
#[utoipa::path(
    post,
    path = "/v1/actors/{id}/restart",
    operation_id = "restart_actor",
    tag = "actors",
    params(("id" = String, Path, description = "An incident actor's id (`0.42`) or `incident-<id>`")),
    responses(
        (status = 200, description = "The new actor", body = ActorNode),
        (status = 400, description = "`invalid_parameter`: not an actor id", body = ErrorBody),
        (status = 404, description = "`not_found`: no such actor is running", body = ErrorBody),
        (status = 409, description = "`conflict`: the actor is not an incident's", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn restart(
    _: CanWrite,
    Ready(system): Ready,
    id: IdSegment,
) -> Result<Json<ActorNode>, ApiError> {
    let wanted = selector(id)?;
    let incident = match &wanted {
        ActorSelector::Incident(id) => *id,
        ActorSelector::Id(_) => {
            let node = system
                .actor(&wanted)
                .await
                .ok_or_else(|| ApiError::NotFound("no such actor is running".into()))?;
            if node.kind != ActorKind::Incident {
                return Err(ApiError::Conflict(format!(
                    "{} is a {} actor: only incident actors can be restarted",
                    node.id,
                    node.kind.as_str()
                )));
            }
            node.state
                .get("incident_id")
                .and_then(serde_json::Value::as_u64)
                .map(IncidentId)
                .ok_or_else(|| ApiError::NotFound("the incident is not open".into()))?
        }
    };
    let node = system
        .restart_incident_actor(incident)
        .await
        .map_err(|e| match e {
            incident_actors::messages::CommandError::NotFound(id) => {
                ApiError::NotFound(format!("incident {id} has no running actor (not open)"))
            }
            other => other.into(),
        })?;
    Ok(Json(node))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters() {
        let q = child_query(&TreeParams::default()).unwrap();
        assert_eq!(q.limit, DEFAULT_PAGE);
        let q = child_query(&TreeParams {
            status: Some("acknowledged".into()),
            cursor: Some("41".into()),
            limit: Some(5),
            ..TreeParams::default()
        })
        .unwrap();
        assert_eq!(q.status, Some(IncidentStatus::Acknowledged));
        assert_eq!(q.after, Some(IncidentId(41)));
        let e = child_query(&TreeParams {
            limit: Some(5000),
            ..TreeParams::default()
        })
        .unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
        assert!(parse_kind(Some("routr"))
            .unwrap_err()
            .to_string()
            .contains("router"));
        assert_eq!(
            parse_kind(Some("incident")).unwrap(),
            Some(ActorKind::Incident)
        );
    }
}
