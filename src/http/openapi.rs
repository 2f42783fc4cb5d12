//! The OpenAPI 3.1 document of the whole HTTP API, served at
//! `GET /v1/openapi.json` and generated from the code.
//!
//! Design: one source for both the router and the document.
//!
//! * Every handler carries `#[utoipa::path(...)]`: its method and path, tag,
//!   summary and description (its doc comment), parameters, request body,
//!   every answer with its status and schema, and its security requirement
//!   (`api_token` for the operator API, `integration_key` for ingest and
//!   heartbeat pings, `slack_signature` for Slack's requests).
//! * [`api_router`] registers the handlers with utoipa-axum's `routes!`,
//!   which reads the method and path from that same annotation: a route
//!   exists exactly when its operation is documented, so the router and the
//!   document cannot drift. [`super::app`] builds every route through it.
//! * Schemas are the code's own: `ToSchema` is derived on the request and
//!   answer types of `src/http` and, behind the core's `openapi` feature, on
//!   the core types the API shows (serde's `rename_all`, `tag`, `flatten` and
//!   `deny_unknown_fields` are read by the derive), with hand-written schemas
//!   for the two types whose JSON is not their Rust field (`Timestamp`: an
//!   RFC 3339 string, `Fingerprint`: 16 hex digits). Errors are the
//!   [`ErrorBody`] that `ApiError` itself serialises. Bodies parsed by hand
//!   from a `serde_json::Value` (Alertmanager's webhook, PagerDuty's event,
//!   the native alert-or-batch) are described by types next to their parser.
//! * The answers every handler of a kind shares (a bad credential, an
//!   unusable body, a server that cannot commit) are [`TokenErrors`],
//!   [`KeyErrors`], [`BodyErrors`] and [`Unavailable`].
//!
//! `tests/openapi.rs` keeps it honest: every documented operation is routed
//! (and answers something other than the router's fallback), undocumented
//! paths are not, every operation has a 2xx answer, every `$ref` resolves
//! and every operation that needs a credential says so.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::http::header;
use axum::response::{IntoResponse, Response};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::incidents::CommandBody;
use super::{
    actors, alertmanager, alerts, health, heartbeats, incident_actions, incidents, metrics, oncall,
    pagerduty, prometheus, silences, slack, AppState,
};

/// The security scheme of the operator API: an API token with the read or
/// write scope.
pub const API_TOKEN: &str = "api_token";
/// The security scheme of ingest and heartbeat pings: a service's
/// integration key.
pub const INTEGRATION_KEY: &str = "integration_key";
/// The security scheme of Slack's requests: Slack's own request signature.
pub const SLACK_SIGNATURE: &str = "slack_signature";

/// The document's root: info, tags, the error schema and, through
/// [`SecuritySchemes`], the two bearer schemes. The operations are added by
/// [`api_router`].
#[derive(OpenApi)]
#[openapi(
    info(
        title = "lim",
        version = env!("CARGO_PKG_VERSION"),
        description = "lim, an on-call incident manager: alerts in (native, Prometheus, \
            Alertmanager/Grafana webhook, PagerDuty Events v2), incidents out, with \
            escalation, silences and heartbeat monitors.\n\n\
            Every error of lim's own is `{\"error\":{\"code\",\"message\"}}` (`ErrorBody`). \
            An unknown path is 404 `not_found`, a known path with another method 405 \
            `method_not_allowed`.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "ingest", description = "Alerts in: lim's own format and the formats of \
            Prometheus, Alertmanager/Grafana and PagerDuty. Authenticated with a service's \
            integration key (PagerDuty: its `routing_key`)."),
        (name = "incidents", description = "Incidents: list, read, and act on them."),
        (name = "silences", description = "Silences: alerts they match open no incident and page nobody."),
        (name = "heartbeats", description = "Heartbeat monitors (dead-man's switches)."),
        (name = "oncall", description = "Who is on call, per schedule."),
        (name = "actors", description = "The live actor tree: every actor's observable state."),
        (name = "slack", description = "Slack's requests to lim (button clicks, the `/lim` \
            slash command), signed by Slack with the app's signing secret."),
        (name = "health", description = "Liveness and readiness probes."),
        (name = "metrics", description = "Prometheus metrics."),
        (name = "meta", description = "This document."),
    ),
    // `CommandBody` is the optional body of the incident commands, which
    // refer to it by name (an `Option<_>` body would also allow `null`).
    components(schemas(ErrorBody, CommandBody, incident_actors::inspect::ActorKind)),
    modifiers(&SecuritySchemes),
)]
pub struct ApiDoc;

/// Adds the `api_token` and `integration_key` bearer schemes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            API_TOKEN,
            bearer(
                "An API token (`[[api_tokens]]` in the config; `lim token new`), as \
                 `Authorization: Bearer <token>`. Reads need the `read` scope, actions \
                 `write`; an action is attributed to the token's user. While no token \
                 is configured the API is open and needs none.",
            ),
        );
        components.add_security_scheme(
            INTEGRATION_KEY,
            bearer(
                "An integration key of a service (`[[services]]` in the config), as \
                 `Authorization: Bearer <key>`: the alerts are stamped with that service. \
                 A heartbeat ping needs a key of the monitor's service. While no key is \
                 configured ingest is open and needs none.",
            ),
        );
        components.add_security_scheme(
            SLACK_SIGNATURE,
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                "X-Slack-Signature",
                "Slack's request signature: `v0=` + hex HMAC-SHA256 of \
                 `v0:{X-Slack-Request-Timestamp}:{raw body}` with the Slack app's signing \
                 secret (`[channels.slack] signing_secret`). A timestamp more than 5 minutes \
                 from now is refused. Never an API token.",
            ))),
        );
    }
}

/// Every route of the API, each registered from its handler's
/// `#[utoipa::path]`, with the document they make up.
///
/// One `routes!` per path: utoipa-axum 0.2 registers every handler of a
/// `routes!` on every path named in it, so handlers of different paths must
/// not share one.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(openapi_json))
        .routes(routes!(alerts::post_alerts))
        .routes(routes!(prometheus::post_alerts))
        .routes(routes!(alertmanager::post_webhook))
        .routes(routes!(pagerduty::enqueue))
        .routes(routes!(incidents::list))
        .routes(routes!(incidents::get))
        .routes(routes!(incidents::acknowledge))
        .routes(routes!(incidents::resolve))
        .routes(routes!(incident_actions::snooze))
        .routes(routes!(incident_actions::escalate))
        .routes(routes!(incident_actions::add_note))
        .routes(routes!(incident_actions::timeline))
        .routes(routes!(silences::list, silences::create))
        .routes(routes!(silences::delete))
        .routes(routes!(silences::expire))
        .routes(routes!(oncall::oncall))
        .routes(routes!(heartbeats::list))
        .routes(routes!(heartbeats::get, heartbeats::ping))
        .routes(routes!(slack::interactions))
        .routes(routes!(slack::commands))
        .routes(routes!(actors::tree))
        .routes(routes!(actors::get))
        .routes(routes!(actors::restart))
        .routes(routes!(metrics::metrics))
}

/// The OpenAPI document of the whole API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    api_router().into_openapi()
}

/// The document as served: built once.
fn document() -> &'static str {
    static DOCUMENT: OnceLock<String> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        openapi()
            .to_json()
            .expect("the OpenAPI document serialises")
    })
}

/// This OpenAPI document
///
/// The whole HTTP API as an OpenAPI 3.1 document, generated from the code.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "get_openapi_document",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object,
        content_type = "application/json")),
)]
pub async fn openapi_json() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], document()).into_response()
}

/// An error answer with the [`ErrorBody`] schema.
fn error_response(description: &str) -> ResponseBuilder {
    ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name(ErrorBody::name())))
            .build(),
    )
}

fn responses<const N: usize>(
    items: [(&str, ResponseBuilder); N],
) -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
    items
        .into_iter()
        .map(|(status, r)| (status.to_string(), RefOr::T(r.build())))
        .collect()
}

/// 401 and 403 of the operator API ([`API_TOKEN`]).
pub struct TokenErrors;

impl IntoResponses for TokenErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let www_authenticate = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some("`Bearer`"))
            .build();
        responses([
            (
                "401",
                error_response("`unauthorized`: no API token, or not a valid one")
                    .header("WWW-Authenticate", www_authenticate),
            ),
            (
                "403",
                error_response("`forbidden`: the token lacks the scope (`read` or `write`)"),
            ),
        ])
    }
}

/// 401 of ingest and heartbeat pings ([`INTEGRATION_KEY`]).
pub struct KeyErrors;

impl IntoResponses for KeyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let www_authenticate = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::String))
            .description(Some("`Bearer`"))
            .build();
        responses([(
            "401",
            error_response("`unauthorized`: no integration key, or not a valid one")
                .header("WWW-Authenticate", www_authenticate),
        )])
    }
}

/// 413 and 415 of every handler with a JSON body.
pub struct BodyErrors;

impl IntoResponses for BodyErrors {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        responses([
            (
                "413",
                error_response("`payload_too_large`: the body is over 1 MiB"),
            ),
            (
                "415",
                error_response(
                    "`unsupported_media_type`: a body without `Content-Type: application/json`",
                ),
            ),
        ])
    }
}

/// 503 of every handler that needs the incident system.
pub struct Unavailable;

impl IntoResponses for Unavailable {
    fn responses() -> BTreeMap<String, RefOr<utoipa::openapi::Response>> {
        let retry_after = HeaderBuilder::new()
            .schema(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("Seconds to wait before retrying"))
            .build();
        responses([(
            "503",
            error_response(
                "`not_ready` (starting or stopped), `unavailable` (the store failed) or \
                 `overloaded` (too many alerts in flight): nothing was committed; retry",
            )
            .header("Retry-After", retry_after),
        )])
    }
}
