//! `GET /metrics`: the system's Prometheus metrics in the text exposition
//! format (`text/plain; version=0.0.4`), and the HTTP side's own metrics.
//!
//! * The core's metrics (`incident_actors::metrics::CoreMetrics`) live in a
//!   registry of the system's own; [`HttpMetrics`] are made with the
//!   [`AppState`] (so requests answered before the system is up are timed
//!   too) and registered in that same registry once the system is set, so
//!   one scrape returns everything.
//! * [`observe_ingest`], a middleware, times every request to an ingest
//!   endpoint (`lim_ingest_request_seconds{source}`, by endpoint: native,
//!   prometheus, alertmanager, pagerduty, heartbeat) and counts a request
//!   refused whole as `lim_ingest_alerts_total{result="rejected"}`: a 4xx
//!   (bad body, over a limit, bad key), or 503 `overloaded` / `not_ready`.
//!   Once per request, not per alert: a refused body may not even parse
//!   into alerts. Alerts that were routed are counted by the core, one by
//!   one, with their result (`error` included), so nothing counts twice.
//! * `lim_ingest_in_flight_permits` (in-flight ingest slots in use) is read
//!   off the semaphore when scraped.
//! * `lim_runtime_alive_tasks` (tasks alive on the tokio runtime that serves
//!   the scrape, lim's one runtime: every actor, timer, connection) and, on
//!   Linux, `lim_process_open_fds` (entries of `/proc/self/fd`) are read when
//!   scraped: what a leak of tasks or descriptors shows up in (the soak
//!   benchmark, `benches/soak.rs`, watches both).
//!
//! Access: `/metrics` is an operator read, so it follows the operator API's
//! rule: open while no API token is configured, a token with the `read`
//! scope once any is (Prometheus sends one with `authorization` in its
//! scrape config). Label values name services and channels, which the
//! read endpoints guard too.

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use incident_actors::domain::heartbeat::HEARTBEAT_SOURCE;
use prometheus::{HistogramOpts, HistogramVec, IntGauge, Registry, TextEncoder};
use tokio::time::Instant;

use super::auth::CanRead;
use super::error::{ErrorBody, ErrorCode};
use super::openapi::{TokenErrors, Unavailable};
use super::{alertmanager, alerts, pagerduty, prometheus as prom_push, ApiError, AppState, Ready};

/// The content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Request latency buckets (seconds): 0.5 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The HTTP side's metrics.
pub struct HttpMetrics {
    /// `lim_ingest_request_seconds{source}`.
    ingest_duration: HistogramVec,
    /// `lim_ingest_in_flight_permits`.
    in_flight: IntGauge,
    /// `lim_runtime_alive_tasks`.
    alive_tasks: IntGauge,
    /// `lim_process_open_fds` (Linux only: read from `/proc/self/fd`).
    open_fds: Option<IntGauge>,
}

impl HttpMetrics {
    pub fn new() -> Self {
        // The names and labels are constants, valid by construction: these
        // constructors fail only on invalid ones.
        let ingest_duration = HistogramVec::new(
            HistogramOpts::new(
                "lim_ingest_request_seconds",
                "Duration of ingest requests, from arrival to answer, by source endpoint",
            )
            .buckets(BUCKETS.to_vec()),
            &["source"],
        )
        .expect("a valid histogram");
        let in_flight = IntGauge::new(
            "lim_ingest_in_flight_permits",
            "In-flight ingest slots in use (alerts being ingested now)",
        )
        .expect("a valid gauge");
        let alive_tasks = IntGauge::new(
            "lim_runtime_alive_tasks",
            "Tasks alive on the tokio runtime (actors, timers, connections), when scraped",
        )
        .expect("a valid gauge");
        let open_fds = cfg!(target_os = "linux").then(|| {
            IntGauge::new(
                "lim_process_open_fds",
                "File descriptors the process has open, when scraped",
            )
            .expect("a valid gauge")
        });
        HttpMetrics {
            ingest_duration,
            in_flight,
            alive_tasks,
            open_fds,
        }
    }

    /// Registers these metrics in `registry` (the system's).
    pub fn register(&self, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(self.ingest_duration.clone()))?;
        registry.register(Box::new(self.in_flight.clone()))?;
        registry.register(Box::new(self.alive_tasks.clone()))?;
        if let Some(open_fds) = &self.open_fds {
            registry.register(Box::new(open_fds.clone()))?;
        }
        Ok(())
    }

    /// Sets the gauges read at scrape time from the process itself.
    fn sample_process(&self) {
        let alive = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        self.alive_tasks.set(alive as i64);
        if let Some(gauge) = &self.open_fds {
            if let Some(n) = open_fds() {
                gauge.set(n as i64);
            }
        }
    }
}

/// Open file descriptors of this process: the entries of `/proc/self/fd`,
/// less the one the listing itself holds open; `None` when it cannot be read.
fn open_fds() -> Option<usize> {
    let entries = std::fs::read_dir("/proc/self/fd").ok()?;
    Some(entries.count().saturating_sub(1))
}

impl Default for HttpMetrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The ingest source of a request, by endpoint; `None` for other routes.
fn ingest_source(method: &Method, path: &str) -> Option<&'static str> {
    if method != Method::POST {
        return None;
    }
    match path {
        "/v1/alerts" => Some(alerts::SOURCE),
        "/api/v2/alerts" => Some(prom_push::SOURCE),
        "/v1/integrations/alertmanager" => Some(alertmanager::SOURCE),
        "/v2/enqueue" => Some(pagerduty::SOURCE),
        p if p.starts_with("/v1/heartbeats/") => Some(HEARTBEAT_SOURCE),
        _ => None,
    }
}

/// Whether an ingest answer refused the request whole: nothing of it was
/// routed (a failure after routing is the core's `error`).
fn refused(response: &Response) -> bool {
    let status = response.status();
    if status.is_client_error() {
        return true;
    }
    status == StatusCode::SERVICE_UNAVAILABLE
        && response
            .extensions()
            .get::<ErrorCode>()
            .is_some_and(|c| matches!(c.0, "overloaded" | "not_ready"))
}

/// Middleware: times ingest requests and counts the refused ones.
pub async fn observe_ingest(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let Some(source) = ingest_source(request.method(), request.uri().path()) else {
        return next.run(request).await;
    };
    let started = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .ingest_duration
        .with_label_values(&[source])
        .observe(started.elapsed().as_secs_f64());
    if refused(&response) {
        // The system's counter; before there is a system nothing is
        // counted (and nothing can be scraped either).
        if let Some(system) = state.system.get() {
            system.metrics().count_rejected(source);
        }
    }
    response
}

/// Prometheus metrics
///
/// Every metric of lim in the Prometheus text exposition format (0.0.4):
/// ingest results and latency, open incidents, notifications and delivery
/// latency, actor restarts, group commits, queue depths and overdue
/// escalations. Needs a `read` token once API tokens are configured.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = "metrics",
    responses(
        (status = 200, description = "The metrics", content_type = "text/plain; version=0.0.4",
            body = String),
        TokenErrors,
        (status = 500, description = "`internal`: the metrics could not be encoded",
            body = ErrorBody),
        Unavailable,
    ),
    security(("api_token" = [])),
)]
pub async fn metrics(
    _: CanRead,
    Ready(system): Ready,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    let used = state
        .max_in_flight
        .saturating_sub(state.ingest_permits.available_permits());
    state.metrics.in_flight.set(used as i64);
    state.metrics.sample_process();
    let families = system.gather_metrics();
    let text = TextEncoder::new()
        .encode_to_string(&families)
        .map_err(|e| ApiError::Internal(format!("cannot encode the metrics: {e}")))?;
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_by_endpoint() {
        assert_eq!(ingest_source(&Method::POST, "/v1/alerts"), Some("native"));
        assert_eq!(
            ingest_source(&Method::POST, "/api/v2/alerts"),
            Some("prometheus")
        );
        assert_eq!(
            ingest_source(&Method::POST, "/v1/integrations/alertmanager"),
            Some("alertmanager")
        );
        assert_eq!(
            ingest_source(&Method::POST, "/v2/enqueue"),
            Some("pagerduty")
        );
        assert_eq!(
            ingest_source(&Method::POST, "/v1/heartbeats/nightly"),
            Some("heartbeat")
        );
        assert_eq!(ingest_source(&Method::GET, "/v1/alerts"), None);
        assert_eq!(
            ingest_source(&Method::POST, "/v1/incidents/1/acknowledge"),
            None
        );
    }

    #[test]
    fn a_refusal_is_a_client_error_or_an_overload() {
        let error = |e: ApiError| e.into_response();
        assert!(refused(&error(ApiError::InvalidBody("x".into()))));
        assert!(refused(&error(ApiError::Unauthorized("x".into()))));
        assert!(refused(&error(ApiError::Overloaded)));
        assert!(refused(&error(ApiError::NotReady)));
        assert!(!refused(&error(ApiError::Unavailable("store down".into()))));
        assert!(!refused(&StatusCode::ACCEPTED.into_response()));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn open_fds_are_read_from_proc() {
        // Other tests of this binary open and close files concurrently, so
        // only that the count is read and positive is stable to assert.
        assert!(open_fds().expect("/proc/self/fd") > 0);
    }
}
