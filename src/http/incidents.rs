//! The incidents REST API: list, get (with alerts and timeline),
//! acknowledge, resolve.
//!
//! Reads go straight to the store (`System::store`); commands go through the
//! actor system, which commits before answering. [`IncidentView`] is the one
//! JSON shape of an incident; query and path parsing are pure functions.

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query};
use axum::Json;
use incident_actors::domain::{
    Attribution, EscalationState, Fingerprint, Incident, IncidentId, IncidentStatus, Interface,
    Labels,
};
use incident_actors::messages::CommandError;
use incident_actors::ports::{Cursor, IncidentQuery, IncidentSort, StatusFilter, StoredAlert};
use incident_actors::time::Timestamp;
use incident_actors::System;
use serde::{Deserialize, Serialize};
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::Required;
use utoipa::{IntoParams, ToSchema};

use super::auth::{CanRead, CanWrite};
use super::error::ErrorBody;
use super::openapi::{BodyErrors, TokenErrors, Unavailable};
use super::timeline::TimelineEntry;
use super::via::Via;
use super::{ApiError, OptionalJson, Ready};

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 1000;
/// Who acted when a command names nobody.
pub const DEFAULT_ACTOR: &str = "api";

/// An incident as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct IncidentView {
    pub id: IncidentId,
    /// The first alert's `summary` annotation, else its `alertname`, else
    /// its fingerprint.
    pub title: String,
    pub status: IncidentStatus,
    /// The first alert's `severity` label.
    #[schema(required = true)]
    pub severity: Option<String>,
    /// The first alert's `service` label (the service of its integration
    /// key), else `default`.
    pub service: String,
    /// The first alert's labels.
    #[schema(value_type = BTreeMap<String, String>)]
    pub labels: Labels,
    /// The incident key: of the dedup key, else of the labels.
    pub fingerprint: Fingerprint,
    /// Distinct alerts (label sets) in the incident.
    pub alert_count: usize,
    /// Alert deliveries deduplicated into it.
    pub seen_count: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_seen: Timestamp,
    #[schema(required = true)]
    pub acknowledged_at: Option<Timestamp>,
    #[schema(required = true)]
    pub acknowledged_by: Option<String>,
    #[schema(required = true)]
    pub resolved_at: Option<Timestamp>,
    #[schema(required = true)]
    pub resolved_by: Option<String>,
    pub escalation: EscalationState,
    /// When an acknowledgement (or a snooze) runs out and the incident is
    /// triggered again.
    #[schema(required = true)]
    pub ack_expires_at: Option<Timestamp>,
}

impl From<&Incident> for IncidentView {
    fn from(i: &Incident) -> Self {
        IncidentView {
            id: i.id,
            title: i.title.clone(),
            status: i.status,
            severity: i.severity.clone(),
            service: i.service.clone(),
            labels: i.labels.clone(),
            fingerprint: i.fingerprint,
            alert_count: i.alerts.len(),
            seen_count: i.seen_count,
            created_at: i.created_at,
            updated_at: i.updated_at,
            last_seen: i.last_seen,
            acknowledged_at: i.acknowledged.as_ref().map(|(at, _)| *at),
            acknowledged_by: i.acknowledged.as_ref().map(|(_, a)| a.by.clone()),
            resolved_at: i.resolved.as_ref().map(|(at, _)| *at),
            resolved_by: i.resolved.as_ref().map(|(_, a)| a.by.clone()),
            escalation: i.escalation.clone(),
            ack_expires_at: i.ack_expires_at,
        }
    }
}

/// One incident with its alert rows and timeline.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IncidentDetail {
    #[serde(flatten)]
    pub incident: IncidentView,
    pub alerts: Vec<StoredAlert>,
    /// Events and deliveries, oldest first.
    pub timeline: Vec<TimelineEntry>,
}

/// A page of the incident list. `next_cursor` is `null` on the last page;
/// otherwise pass it back as `cursor` (with the same filters and sort) for
/// the next page.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct IncidentList {
    pub incidents: Vec<IncidentView>,
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// The optional body of acknowledge, resolve and escalate.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandBody {
    /// Who acts (default `api`; not blank). With API tokens, the token's
    /// user whatever is given.
    #[schema(example = "alice")]
    pub by: Option<String>,
}

/// Documents the parameters of every incident command: the `{id}` path
/// segment ([`parse_incident_id`]) and the `X-Lim-Interface` header
/// ([`Via`]). Written by hand: a header is optional, not `null`.
pub struct CommandParams;

impl IntoParams for CommandParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let id = ParameterBuilder::new()
            .name("id")
            .parameter_in(ParameterIn::Path)
            .required(Required::True)
            .description(Some("The incident's id, a positive integer"))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(1)),
            ))
            .build();
        let via = ParameterBuilder::new()
            .name("X-Lim-Interface")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Which interface the command came through, for the timeline: \
                 `cli` or `web`; anything else (or none) is `api`",
            ))
            .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
            .build();
        vec![id, via]
    }
}

/// The raw `{id}` path segment, with a JSON error if it cannot be decoded.
pub(crate) type IdSegment = Result<Path<String>, PathRejection>;

pub(crate) fn id_segment(segment: IdSegment) -> Result<String, ApiError> {
    segment
        .map(|Path(id)| id)
        .map_err(|e| ApiError::InvalidParameter(e.body_text()))
}

/// List incidents
///
/// A page of incidents, filtered and sorted; every filter given must
/// match. Keyset paging: pass `next_cursor` back as `cursor` (with the same
/// filters and sort) for the next page, so incidents arriving meanwhile do
/// not shift pages.
#[utoipa::path(
    get,
    path = "/v1/incidents",
    operation_id = "list_incidents",
    tag = "incidents",
    params(ListParams),
    responses(
        (status = 200, description = "A page of incidents", body = IncidentList),
        (status = 400, description = "`invalid_parameter`, naming it: a bad value, an unknown \
            parameter, or one other than `label` given twice", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn list(
    _: CanRead,
    Ready(system): Ready,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<IncidentList>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::InvalidParameter(e.body_text()))?;
    let query = parse_list_query(&params)?;
    // One more than the page: whether it comes back says if there is a next page.
    let ask = IncidentQuery {
        limit: query.limit + 1,
        ..query.clone()
    };
    let mut incidents = system.store().list_incidents(&ask).await?;
    let page = query.limit as usize;
    let next_cursor = if incidents.len() > page {
        incidents.truncate(page);
        incidents
            .last()
            .map(|last| Cursor::after(last, query.sort).encode())
    } else {
        None
    };
    Ok(Json(IncidentList {
        incidents: incidents.iter().map(IncidentView::from).collect(),
        next_cursor,
    }))
}

/// Read an incident
///
/// The incident with its alert rows and its timeline.
#[utoipa::path(
    get,
    path = "/v1/incidents/{id}",
    operation_id = "get_incident",
    tag = "incidents",
    params(("id" = u64, Path, description = "The incident's id, a positive integer", minimum = 1)),
    responses(
        (status = 200, description = "The incident", body = IncidentDetail),
        (status = 400, description = "`invalid_parameter`: not a positive integer",
            body = ErrorBody),
        (status = 404, description = "`not_found`: no such incident", body = ErrorBody),
        TokenErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn get(
    _: CanRead,
    Ready(system): Ready,
    id: IdSegment,
) -> Result<Json<IncidentDetail>, ApiError> {
    let id = parse_incident_id(&id_segment(id)?)?;
    let store = system.store();
    let incident = store.get_incident(id).await?.ok_or_else(|| not_found(id))?;
    let alerts = store.alerts(id).await?;
    let timeline = super::timeline::merge(store.timeline(id).await?, &store.deliveries(id).await?);
    Ok(Json(IncidentDetail {
        incident: IncidentView::from(&incident),
        alerts,
        timeline,
    }))
}

/// Acknowledge an incident
///
/// Stops its escalation: someone is on it.
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/acknowledge",
    operation_id = "acknowledge_incident",
    tag = "incidents",
    params(CommandParams),
    request_body(content = ref("#/components/schemas/CommandBody"), description = "Optional: who acknowledges"),
    responses(
        (status = 200, description = "The incident, acknowledged", body = IncidentView),
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
pub async fn acknowledge(
    CanWrite(caller): CanWrite,
    Ready(system): Ready,
    Via(via): Via,
    id: IdSegment,
    OptionalJson(body): OptionalJson<CommandBody>,
) -> Result<Json<IncidentView>, ApiError> {
    let by = caller.attribute(body.and_then(|b| b.by));
    let (id, by) = parse_command(&id_segment(id)?, by, via)?;
    let result = system.acknowledge(id, by).await;
    command_answer(&system, id, result).await
}

/// Resolve an incident
#[utoipa::path(
    post,
    path = "/v1/incidents/{id}/resolve",
    operation_id = "resolve_incident",
    tag = "incidents",
    params(CommandParams),
    request_body(content = ref("#/components/schemas/CommandBody"), description = "Optional: who resolves"),
    responses(
        (status = 200, description = "The incident, resolved", body = IncidentView),
        (status = 400, description = "`invalid_parameter` (the id), or `invalid_json` / \
            `invalid_body` (the body)", body = ErrorBody),
        (status = 404, description = "`not_found`: no such incident", body = ErrorBody),
        (status = 409, description = "`conflict`: the incident is already resolved",
            body = ErrorBody),
        TokenErrors,
        BodyErrors,
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn resolve(
    CanWrite(caller): CanWrite,
    Ready(system): Ready,
    Via(via): Via,
    id: IdSegment,
    OptionalJson(body): OptionalJson<CommandBody>,
) -> Result<Json<IncidentView>, ApiError> {
    let by = caller.attribute(body.and_then(|b| b.by));
    let (id, by) = parse_command(&id_segment(id)?, by, via)?;
    let result = system.resolve(id, by).await;
    command_answer(&system, id, result).await
}

fn not_found(id: IncidentId) -> ApiError {
    ApiError::NotFound(format!("incident {id} not found"))
}

/// The answer to a command. A `NotFound` from the system (no live actor) is
/// checked against the store: a resolved incident is a conflict, not missing.
pub(crate) async fn command_answer(
    system: &System,
    id: IncidentId,
    result: Result<Incident, CommandError>,
) -> Result<Json<IncidentView>, ApiError> {
    match result {
        Ok(incident) => Ok(Json(IncidentView::from(&incident))),
        Err(CommandError::NotFound(_)) => match system.store().get_incident(id).await? {
            Some(i) if i.status == IncidentStatus::Resolved => Err(ApiError::Conflict(format!(
                "incident {id} is already resolved"
            ))),
            _ => Err(not_found(id)),
        },
        Err(e) => Err(e.into()),
    }
}

/// Parses an incident id from the path: a positive integer.
pub fn parse_incident_id(raw: &str) -> Result<IncidentId, ApiError> {
    match raw.parse::<u64>() {
        Ok(n) if n > 0 => Ok(IncidentId(n)),
        _ => Err(ApiError::InvalidParameter(format!(
            "incident id must be a positive integer, got {raw:?}"
        ))),
    }
}

/// The id and attribution of a command: who (`by`, default `api`) and
/// through which interface (`via`, from the `X-Lim-Interface` header).
pub fn parse_command(
    raw_id: &str,
    by: Option<String>,
    via: Interface,
) -> Result<(IncidentId, Attribution), ApiError> {
    let id = parse_incident_id(raw_id)?;
    let by = match by {
        None => DEFAULT_ACTOR.to_string(),
        Some(by) if by.trim().is_empty() => {
            return Err(ApiError::InvalidBody("`by` must not be empty".into()))
        }
        Some(by) => by.trim().to_string(),
    };
    Ok((id, Attribution::new(by, via)))
}

/// Documents the query parameters of `GET /v1/incidents`, which
/// [`parse_list_query`] reads by hand (to refuse unknown and repeated
/// parameters, naming them); not used to parse. A test keeps its names
/// those of [`LIST_PARAMETERS`].
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `open` is triggered or acknowledged.
    #[param(inline)]
    pub status: Option<ListStatus>,
    /// The service, exactly.
    #[param(min_length = 1)]
    pub service: Option<String>,
    /// The `severity` label, exactly.
    #[param(min_length = 1)]
    pub severity: Option<String>,
    /// `name=value`, split at the first `=`, neither side empty
    /// (`label=model=gpt-4o`). Repeatable: every label must match.
    #[param(style = Form, explode, example = json!(["model=gpt-4o"]))]
    pub label: Option<Vec<String>>,
    /// Created at or after, RFC 3339 (send `+` as `%2B`).
    #[param(inline)]
    pub since: Option<Timestamp>,
    /// Created before, RFC 3339 (send `+` as `%2B`); after `since`.
    #[param(inline)]
    pub until: Option<Timestamp>,
    /// Default `created_desc`. Under `updated_desc` an incident that
    /// changes while you page moves to the front and may be skipped.
    #[param(inline)]
    pub sort: Option<ListSort>,
    /// The `next_cursor` of the previous page, with the same filters and sort.
    pub cursor: Option<String>,
    /// The page size.
    #[param(minimum = 1, maximum = 1000, default = 50)]
    pub limit: Option<u32>,
}

/// The `status` filter of the incident list (documentation of
/// [`ListParams`]).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(description = "An incident status, or `open` (triggered or acknowledged)")]
pub enum ListStatus {
    Triggered,
    Acknowledged,
    Resolved,
    Open,
}

/// The order of the incident list (documentation of [`ListParams`]).
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(
    description = "`created_desc` (newest first), `created_asc` (oldest first) or \
    `updated_desc` (most recently changed first); ties broken by id"
)]
pub enum ListSort {
    CreatedDesc,
    CreatedAsc,
    UpdatedDesc,
}

/// The query parameters of the incident list.
pub const LIST_PARAMETERS: [&str; 9] = [
    "status", "service", "severity", "label", "since", "until", "sort", "limit", "cursor",
];

fn invalid(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::InvalidParameter(format!("invalid `{name}` {value:?}: expected {expected}"))
}

/// Parses the list's query parameters: `status`, `service`, `severity`,
/// `label=key=value` (repeatable: all must match), `since`/`until`
/// (RFC 3339, on `created_at`; since inclusive, until exclusive), `sort`,
/// `limit` and `cursor`. Unknown parameters are rejected so a typo does not
/// silently list everything, and so is any other parameter given twice.
/// Every error names its parameter.
pub fn parse_list_query(params: &[(String, String)]) -> Result<IncidentQuery, ApiError> {
    let mut query = IncidentQuery {
        limit: DEFAULT_LIMIT,
        ..IncidentQuery::default()
    };
    let mut cursor = None;
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in params {
        let name = name.as_str();
        if name != "label" {
            if seen.contains(&name) {
                return Err(ApiError::InvalidParameter(format!(
                    "`{name}` is given more than once"
                )));
            }
            seen.push(name);
        }
        match name {
            "status" => query.status = Some(parse_status_filter(value)?),
            "service" => query.service = Some(non_empty(name, value)?),
            "severity" => query.severity = Some(non_empty(name, value)?),
            "label" => query.labels.push(parse_label(value)?),
            "since" => query.since = Some(parse_instant(name, value)?),
            "until" => query.until = Some(parse_instant(name, value)?),
            "sort" => {
                query.sort = IncidentSort::parse(value).ok_or_else(|| {
                    invalid(name, value, "created_desc, created_asc or updated_desc")
                })?
            }
            "limit" => query.limit = parse_limit(value)?,
            "cursor" => cursor = Some(value.as_str()),
            other => {
                return Err(ApiError::InvalidParameter(format!(
                    "unknown query parameter `{other}`: expected one of {}",
                    LIST_PARAMETERS.join(", ")
                )))
            }
        }
    }
    if let (Some(since), Some(until)) = (query.since, query.until) {
        if until <= since {
            return Err(ApiError::InvalidParameter(format!(
                "invalid `until` {until}: it must be after `since` {since}"
            )));
        }
    }
    if let Some(token) = cursor {
        let c = Cursor::decode(token)
            .map_err(|e| ApiError::InvalidParameter(format!("invalid `cursor` {token:?}: {e}")))?;
        if c.sort != query.sort {
            return Err(ApiError::InvalidParameter(format!(
                "invalid `cursor`: it was made for sort={}, not sort={}",
                c.sort.as_str(),
                query.sort.as_str()
            )));
        }
        query.after = Some(c);
    }
    Ok(query)
}

fn parse_status_filter(value: &str) -> Result<StatusFilter, ApiError> {
    if value == "open" {
        return Ok(StatusFilter::Open);
    }
    IncidentStatus::parse(value)
        .map(StatusFilter::Is)
        .ok_or_else(|| invalid("status", value, "triggered, acknowledged, resolved or open"))
}

fn non_empty(name: &str, value: &str) -> Result<String, ApiError> {
    if value.is_empty() {
        return Err(invalid(name, value, "a non-empty value"));
    }
    Ok(value.to_string())
}

/// `key=value`, split at the first `=`; neither side empty.
fn parse_label(value: &str) -> Result<(String, String), ApiError> {
    match value.split_once('=') {
        Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(invalid(
            "label",
            value,
            "key=value with a non-empty key and value, e.g. label=model=gpt-4o",
        )),
    }
}

/// RFC 3339. A `+` of an offset sent unencoded arrives as a space; it is
/// read back as `+`.
fn parse_instant(name: &str, value: &str) -> Result<Timestamp, ApiError> {
    Timestamp::parse_rfc3339(value)
        .or_else(|e| match value.rsplit_once(' ') {
            Some((head, offset)) => Timestamp::parse_rfc3339(&format!("{head}+{offset}")),
            None => Err(e),
        })
        .map_err(|_| {
            invalid(
                name,
                value,
                "an RFC 3339 instant, e.g. 2026-01-01T00:00:00Z",
            )
        })
}

fn parse_limit(value: &str) -> Result<u32, ApiError> {
    match value.parse::<u32>() {
        Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        _ => Err(invalid(
            "limit",
            value,
            &format!("an integer from 1 to {MAX_LIMIT}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_actors::domain::{Alert, AlertStatus, EscalationPolicy};

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn list_query_defaults_and_filters() {
        let q = parse_list_query(&params(&[])).unwrap();
        assert_eq!(
            q,
            IncidentQuery {
                limit: DEFAULT_LIMIT,
                ..IncidentQuery::default()
            }
        );
        assert_eq!(q.sort, IncidentSort::CreatedDesc);
        let q = parse_list_query(&params(&[("status", "open"), ("limit", "1000")])).unwrap();
        assert_eq!((q.status, q.limit), (Some(StatusFilter::Open), 1000));
        let q = parse_list_query(&params(&[("status", "acknowledged")])).unwrap();
        assert_eq!(
            q.status,
            Some(StatusFilter::Is(IncidentStatus::Acknowledged))
        );
        let q = parse_list_query(&params(&[
            ("service", "chat"),
            ("severity", "critical"),
            ("label", "model=gpt-4o"),
            ("label", "provider=openai"),
            ("label", "expr=a=b"),
            ("since", "2026-01-01T00:00:00Z"),
            // An unencoded `+` of an offset arrives as a space.
            ("until", "2026-01-02T01:00:00 01:00"),
            ("sort", "updated_desc"),
        ]))
        .unwrap();
        assert_eq!(q.service.as_deref(), Some("chat"));
        assert_eq!(q.severity.as_deref(), Some("critical"));
        assert_eq!(
            q.labels,
            [
                ("model".to_string(), "gpt-4o".to_string()),
                ("provider".to_string(), "openai".to_string()),
                ("expr".to_string(), "a=b".to_string()),
            ]
        );
        assert_eq!(q.since, Some(Timestamp(1_767_225_600_000)));
        assert_eq!(q.until, Some(Timestamp(1_767_225_600_000 + 86_400_000)));
        assert_eq!(q.sort, IncidentSort::UpdatedDesc);
    }

    #[test]
    fn cursors_round_trip_and_must_match_the_sort() {
        for sort in IncidentSort::ALL {
            let c = Cursor {
                sort,
                at: Timestamp(-5),
                id: IncidentId(i64::MAX as u64),
            };
            let token = c.encode();
            assert_eq!(token.len(), 34);
            assert_eq!(Cursor::decode(&token), Ok(c));
            let q =
                parse_list_query(&params(&[("cursor", &token), ("sort", sort.as_str())])).unwrap();
            assert_eq!(q.after, Some(c));
        }
        let token = Cursor {
            sort: IncidentSort::CreatedAsc,
            at: Timestamp(1),
            id: IncidentId(1),
        }
        .encode();
        let e = parse_list_query(&params(&[("cursor", &token)])).unwrap_err();
        assert_eq!(e.code(), "invalid_parameter");
        assert!(e.to_string().contains("`cursor`"), "{e}");
        assert!(e.to_string().contains("created_asc"), "{e}");
        let too_big = format!("11{}{}", "0".repeat(16), "8".repeat(16));
        for bad in [
            "",
            "zz",
            "xyz",
            &token[..32],
            &format!("{token}00"),
            &token.to_uppercase(),
            &format!("ff{}", &token[2..]),
            &too_big,
        ] {
            let e = parse_list_query(&params(&[("cursor", bad)])).unwrap_err();
            assert!(e.to_string().contains("`cursor`"), "{bad}: {e}");
        }
    }

    #[test]
    fn list_query_rejects_bad_values_naming_the_parameter() {
        for (bad, name) in [
            (params(&[("status", "closed")]), "status"),
            (params(&[("limit", "0")]), "limit"),
            (params(&[("limit", "1001")]), "limit"),
            (params(&[("limit", "ten")]), "limit"),
            (params(&[("limit", "-1")]), "limit"),
            (params(&[("state", "open")]), "state"),
            (params(&[("service", "")]), "service"),
            (params(&[("severity", "")]), "severity"),
            (params(&[("label", "model")]), "label"),
            (params(&[("label", "=x")]), "label"),
            (params(&[("label", "model=")]), "label"),
            (params(&[("since", "yesterday")]), "since"),
            (params(&[("until", "2026-01-01")]), "until"),
            (
                params(&[
                    ("since", "2026-01-02T00:00:00Z"),
                    ("until", "2026-01-01T00:00:00Z"),
                ]),
                "until",
            ),
            (params(&[("sort", "newest")]), "sort"),
            (
                params(&[("status", "open"), ("status", "resolved")]),
                "status",
            ),
            (params(&[("cursor", "nope")]), "cursor"),
        ] {
            let e = parse_list_query(&bad).unwrap_err();
            assert_eq!(e.code(), "invalid_parameter", "{bad:?}");
            assert!(e.to_string().contains(&format!("`{name}`")), "{bad:?}: {e}");
        }
    }

    /// The enum values of a documented schema.
    fn schema_enum<T: utoipa::PartialSchema>() -> Vec<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        serde_json::from_value(schema["enum"].clone()).unwrap()
    }

    #[test]
    fn documented_parameters_are_the_parsed_ones() {
        let mut documented: Vec<String> = ListParams::into_params(|| None)
            .into_iter()
            .map(|p| p.name)
            .collect();
        documented.sort();
        let mut parsed = LIST_PARAMETERS.map(String::from).to_vec();
        parsed.sort();
        assert_eq!(documented, parsed);
        let statuses = schema_enum::<ListStatus>();
        assert_eq!(statuses.len(), 4);
        for status in statuses {
            assert!(
                parse_list_query(&params(&[("status", &status)])).is_ok(),
                "{status}"
            );
        }
        let sorts = schema_enum::<ListSort>();
        let all: Vec<_> = IncidentSort::ALL.iter().map(|s| s.as_str()).collect();
        assert_eq!(sorts, all);
    }

    #[test]
    fn incident_ids() {
        assert_eq!(parse_incident_id("42").unwrap(), IncidentId(42));
        assert!(parse_incident_id("0").is_err());
        assert!(parse_incident_id("abc").is_err());
        assert!(parse_incident_id("-3").is_err());
    }

    #[test]
    fn command_attribution() {
        let (id, by) = parse_command("7", None, Interface::Api).unwrap();
        assert_eq!(
            (id, by.by.as_str(), by.via),
            (IncidentId(7), "api", Interface::Api)
        );
        let (_, by) = parse_command("7", Some(" alice ".into()), Interface::Cli).unwrap();
        assert_eq!((by.by.as_str(), by.via), ("alice", Interface::Cli));
        assert!(parse_command("7", Some(" ".into()), Interface::Api).is_err());
        assert!(parse_command("x", None, Interface::Api).is_err());
    }

    #[test]
    fn view_json_shape() {
        let alert = Alert {
            labels: [("alertname".to_string(), "A".to_string())].into(),
            annotations: Labels::new(),
            status: AlertStatus::Firing,
            starts_at: Timestamp(0),
            ends_at: None,
            source: "native".into(),
            dedup_key: None,
            extra: None,
        };
        let policy = EscalationPolicy::default_console();
        let (mut i, _) = Incident::open(IncidentId(3), alert, &policy, Timestamp(0));
        i.acknowledge(
            Attribution::new("alice", Interface::Api),
            &policy,
            Timestamp(1000),
        )
        .unwrap();
        let v = serde_json::to_value(IncidentView::from(&i)).unwrap();
        assert_eq!(v["id"], 3);
        assert_eq!(v["status"], "acknowledged");
        assert_eq!(v["acknowledged_by"], "alice");
        assert_eq!(v["acknowledged_at"], "1970-01-01T00:00:01.000Z");
        assert_eq!(v["resolved_at"], serde_json::Value::Null);
        assert_eq!(v["alert_count"], 1);
        assert_eq!(v["escalation"]["next_at"], serde_json::Value::Null);
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        for k in [
            "id",
            "title",
            "status",
            "severity",
            "service",
            "labels",
            "fingerprint",
            "alert_count",
            "seen_count",
            "created_at",
            "updated_at",
            "last_seen",
            "acknowledged_at",
            "acknowledged_by",
            "resolved_at",
            "resolved_by",
            "escalation",
            "ack_expires_at",
        ] {
            assert!(keys.contains(&k.to_string()), "{k}");
        }
        assert_eq!(keys.len(), 18);
    }
}
