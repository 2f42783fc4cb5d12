//! The HTTP API (axum): the router, its shared state and the extractors every
//! handler uses.
//!
//! * [`app`] builds the whole router from an [`AppState`]; the server binds it
//!   to a socket, tests drive it directly with `tower::ServiceExt::oneshot`.
//! * [`AppState`] holds the readiness cell (empty until the actor system is
//!   up: the listener is bound first, so `/healthz` answers while the store
//!   is still being opened) and the ingest semaphore that bounds in-flight
//!   alerts (DESIGN.md: mailboxes are unbounded, so back-pressure is here).
//! * [`Ready`] is the first extractor of every `/v1` handler: it answers
//!   503 `not_ready` before the body is even read while the system is down.
//! * [`ApiJson`] / [`OptionalJson`] read JSON bodies with lim's own error
//!   mapping (415, 413, `invalid_json`, `invalid_body`) instead of axum's
//!   plain-text rejections.
//!
//! Handlers live in [`alerts`], [`incidents`], [`health`] and [`metrics`]
//! (`/metrics`, and the ingest timing middleware); the other
//! ingest formats in [`prometheus`] (Prometheus' push, Alertmanager API v2),
//! [`alertmanager`] (Alertmanager's and Grafana's webhook) and [`pagerduty`]
//! (PagerDuty Events API v2); errors in [`error`].
//!
//! Routes are not listed here: each handler's `#[utoipa::path]` names its
//! method and path, and [`openapi::api_router`] registers them from those
//! annotations, which also make the OpenAPI document served at
//! `/v1/openapi.json` (see [`openapi`]).

pub mod actors;
pub mod alertmanager;
pub mod alerts;
pub mod auth;
pub mod console;
pub mod error;
pub mod health;
pub mod heartbeats;
pub mod incident_actions;
pub mod incidents;
pub mod limits;
pub mod metrics;
pub mod oncall;
pub mod openapi;
pub mod pagerduty;
pub mod prometheus;
pub mod silences;
pub mod slack;
pub mod timeline;
pub mod via;

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::Router;
use incident_actors::System;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub use crate::config::DEFAULT_RESOLVE_TIMEOUT;
pub use error::ApiError;

/// Largest accepted request body.
pub const BODY_LIMIT: usize = 1 << 20;
/// Default bound on alerts being ingested at once.
pub const DEFAULT_MAX_IN_FLIGHT_INGEST: usize = 4096;

/// What every handler shares. Cheap to clone: one reference count (axum
/// clones the state for every extractor and middleware of a request; as
/// seven `Arc`s its clones and drops were about 1 % of lim's samples under
/// the mixed ingest load).
#[derive(Clone)]
pub struct AppState(Arc<AppStateParts>);

/// [`AppState`]'s fields, reached through it (`Deref`); its builder
/// methods change them before the state is shared.
#[derive(Clone)]
pub struct AppStateParts {
    system: Arc<OnceLock<System>>,
    ingest_permits: Arc<Semaphore>,
    max_in_flight: usize,
    resolve_timeout: Duration,
    limits: limits::AlertLimits,
    access: Arc<crate::auth::Access>,
    routes: Arc<Vec<crate::config::Route>>,
    /// The Slack app (signing secret, user map); `None`: the Slack routes
    /// answer 404.
    slack: Option<Arc<crate::slack::SlackSettings>>,
    /// Clicks already taken, so Slack's retries act once.
    slack_clicks: Arc<slack::RecentClicks>,
    /// The HTTP side's metrics, registered in the system's registry by
    /// [`AppState::set_system`].
    metrics: Arc<metrics::HttpMetrics>,
}

impl std::ops::Deref for AppState {
    type Target = AppStateParts;

    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// For the builder methods: a state not yet shared is changed in place, a
/// shared one copied first (its clones keep what they had).
impl std::ops::DerefMut for AppState {
    fn deref_mut(&mut self) -> &mut AppStateParts {
        Arc::make_mut(&mut self.0)
    }
}

impl Default for AppState {
    fn default() -> Self {
        Self::new()
    }
}

impl AppState {
    /// A state that is not ready yet: set the system with [`AppState::set_system`].
    pub fn new() -> Self {
        Self::with_max_in_flight(DEFAULT_MAX_IN_FLIGHT_INGEST)
    }

    /// Like [`AppState::new`] with a different bound on in-flight alerts.
    pub fn with_max_in_flight(max: usize) -> Self {
        let max = max.clamp(1, Semaphore::MAX_PERMITS);
        AppState(Arc::new(AppStateParts {
            system: Arc::new(OnceLock::new()),
            ingest_permits: Arc::new(Semaphore::new(max)),
            max_in_flight: max,
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            limits: limits::AlertLimits::default(),
            access: Arc::default(),
            routes: Arc::default(),
            slack: None,
            slack_clicks: Arc::default(),
            metrics: Arc::default(),
        }))
    }

    /// This state with the Slack app: `/v1/slack/interactions` and
    /// `/v1/slack/commands` verify requests with its signing secret.
    pub fn with_slack(mut self, settings: crate::slack::SlackSettings) -> Self {
        self.slack = Some(Arc::new(settings));
        self
    }

    pub fn slack(&self) -> Option<&crate::slack::SlackSettings> {
        self.slack.as_deref()
    }

    /// This state with services, integration keys and API tokens.
    pub fn with_access(mut self, access: crate::auth::Access) -> Self {
        self.access = Arc::new(access);
        self
    }

    pub fn access(&self) -> &crate::auth::Access {
        &self.access
    }

    /// This state with routing rules (`[[routes]]`).
    pub fn with_routes(mut self, routes: Vec<crate::config::Route>) -> Self {
        self.routes = Arc::new(routes);
        self
    }

    pub fn routes(&self) -> Arc<Vec<crate::config::Route>> {
        self.routes.clone()
    }

    /// This state with a different resolve timeout: how long a pushed
    /// Prometheus alert without `endsAt` stays firing without a re-send.
    pub fn with_limits(mut self, limits: limits::AlertLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Admits a request's alerts: checks them against the size limits, then
    /// reserves their in-flight slots. Every ingest path calls this before
    /// ingesting anything, so a refused request stores nothing.
    pub fn admit(
        &self,
        alerts: &[incident_actors::domain::Alert],
    ) -> Result<OwnedSemaphorePermit, ApiError> {
        self.limits.check(alerts)?;
        self.try_reserve_ingest(alerts.len())
    }

    pub fn with_resolve_timeout(mut self, timeout: Duration) -> Self {
        self.resolve_timeout = timeout;
        self
    }

    /// See [`AppState::with_resolve_timeout`]; 5 minutes unless configured.
    pub fn resolve_timeout(&self) -> Duration {
        self.resolve_timeout
    }

    /// A state that is ready at once (tests, embedding).
    pub fn ready(system: System) -> Self {
        let state = Self::new();
        let _ = state.set_system(system);
        state
    }

    /// Makes the state ready. Fails (giving the system back) if it already was.
    pub fn set_system(&self, system: System) -> Result<(), System> {
        let registry = system.metrics().registry().clone();
        self.system.set(system)?;
        if let Err(e) = self.metrics.register(&registry) {
            // Only if another state already registered its HTTP metrics in
            // this system's registry: that state's are served instead.
            tracing::warn!(error = %e, "HTTP metrics not registered");
        }
        Ok(())
    }

    /// The running system, or `NotReady`: not started yet, or stopped.
    pub fn system(&self) -> Result<&System, ApiError> {
        match self.system.get() {
            Some(system) if system.is_running() => Ok(system),
            _ => Err(ApiError::NotReady),
        }
    }

    pub fn is_ready(&self) -> bool {
        self.system().is_ok()
    }

    /// Reserves room for `alerts` alerts (capped at the whole bound, so any
    /// batch can get in when the server is idle), or `Overloaded`.
    pub fn try_reserve_ingest(&self, alerts: usize) -> Result<OwnedSemaphorePermit, ApiError> {
        let n = alerts.clamp(1, self.max_in_flight) as u32;
        self.ingest_permits
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| ApiError::Overloaded)
    }
}

/// The whole HTTP API: every route comes from [`openapi::api_router`], so
/// each is an operation of the OpenAPI document (`/v1/openapi.json`
/// included); the web console's page and assets ([`console`]) are merged
/// in besides, not being API operations.
pub fn app(state: AppState) -> Router {
    let (router, _document) = openapi::api_router().split_for_parts();
    router
        .merge(console::router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            metrics::observe_ingest,
        ))
        .layer(middleware::from_fn(log_request))
        .with_state(state)
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".into())
}

async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

async fn log_request(request: Request, next: Next) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    tracing::debug!(
        %method,
        path,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    response
}

/// The running system; rejects with 503 `not_ready` otherwise.
pub struct Ready(pub System);

impl FromRequestParts<AppState> for Ready {
    type Rejection = ApiError;

    async fn from_request_parts(_parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.system().cloned().map(Ready)
    }
}

/// A JSON body (required), with lim's error mapping.
pub struct ApiJson<T>(pub T);

/// A JSON body that may be absent: an empty body is `None`.
pub struct OptionalJson<T>(pub Option<T>);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json_content_type(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = read_body(req, state).await?;
        decode_json(&bytes).map(ApiJson)
    }
}

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json_content_type(req.headers());
        let bytes = read_body(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(None));
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        decode_json(&bytes).map(|v| OptionalJson(Some(v)))
    }
}

/// Reads the body under the `DefaultBodyLimit`.
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state).await.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(BODY_LIMIT)
        } else {
            ApiError::BodyRead(rejection.body_text())
        }
    })
}

/// `application/json` or `application/<anything>+json`, parameters ignored.
pub fn is_json_content_type(headers: &HeaderMap) -> bool {
    let Some(value) = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    // Compared without a lower-cased copy: this runs on every ingest.
    let essence = value.split(';').next().unwrap_or("").trim();
    match essence.split_once('/') {
        Some((kind, sub)) if kind.eq_ignore_ascii_case("application") => {
            let sub = sub.as_bytes();
            sub.eq_ignore_ascii_case(b"json")
                || sub.len() >= 5 && sub[sub.len() - 5..].eq_ignore_ascii_case(b"+json")
        }
        _ => false,
    }
}

/// Decodes a JSON body: a syntax error is `invalid_json`; JSON of the wrong
/// shape is `invalid_body`, its message prefixed with the path of the
/// offending field (`alerts[2].labels: invalid type …`).
pub fn decode_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        json_error(&path, e.into_inner())
    })?;
    de.end().map_err(|e| json_error(".", e))?;
    Ok(value)
}

/// Maps a serde_json error (found at `path`) to `invalid_json` / `invalid_body`.
pub fn json_error(path: &str, e: serde_json::Error) -> ApiError {
    use serde_json::error::Category;
    match e.classify() {
        Category::Data => {
            let full = e.to_string();
            let position = format!(" at line {} column {}", e.line(), e.column());
            let message = full.strip_suffix(&position).unwrap_or(&full);
            if path.is_empty() || path == "." {
                ApiError::InvalidBody(message.to_string())
            } else {
                ApiError::InvalidBody(format!("{path}: {message}"))
            }
        }
        Category::Syntax | Category::Eof | Category::Io => ApiError::InvalidJson(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde::Deserialize;

    fn headers(ct: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
        h
    }

    #[test]
    fn json_content_types() {
        assert!(is_json_content_type(&headers("application/json")));
        assert!(is_json_content_type(&headers(
            "Application/JSON; charset=utf-8"
        )));
        assert!(is_json_content_type(&headers("application/vnd.lim+json")));
        assert!(is_json_content_type(&headers("APPLICATION/VND.LIM+JSON")));
        assert!(!is_json_content_type(&headers("text/plain")));
        assert!(!is_json_content_type(&headers("text/json")));
        assert!(!is_json_content_type(&headers("application/json5")));
        assert!(!is_json_content_type(&headers("application/jsonp")));
        assert!(!is_json_content_type(&HeaderMap::new()));
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        by: String,
        items: Vec<Item>,
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct Item {
        n: u32,
    }

    #[test]
    fn decode_distinguishes_syntax_from_shape() {
        let e = decode_json::<Body>(b"{\"by\":").unwrap_err();
        assert_eq!(e.code(), "invalid_json");
        let e = decode_json::<Body>(br#"{"by":"a","items":[]} x"#).unwrap_err();
        assert_eq!(e.code(), "invalid_json");
        let e = decode_json::<Body>(b"{\"items\":[]}").unwrap_err();
        assert_eq!(e.code(), "invalid_body");
        assert_eq!(e.to_string(), "missing field `by`");
        let e = decode_json::<Body>(br#"{"by":"a","items":[{"n":1},{"n":"x"}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "items[1].n: invalid type: string \"x\", expected u32"
        );
        assert!(decode_json::<Body>(br#"{"by":"a","items":[]}"#).is_ok());
    }

    #[test]
    fn ingest_reservation_is_bounded() {
        let state = AppState::with_max_in_flight(3);
        let a = state.try_reserve_ingest(2).unwrap();
        assert!(matches!(
            state.try_reserve_ingest(2),
            Err(ApiError::Overloaded)
        ));
        drop(a);
        // A batch larger than the bound still gets in when idle.
        let b = state.try_reserve_ingest(10).unwrap();
        assert!(state.try_reserve_ingest(1).is_err());
        drop(b);
        assert!(state.try_reserve_ingest(1).is_ok());
    }

    #[test]
    fn not_ready_until_a_system_is_set() {
        let state = AppState::new();
        assert!(!state.is_ready());
        assert!(matches!(state.system(), Err(ApiError::NotReady)));
    }
}
