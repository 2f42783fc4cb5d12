//! Logging and tracing: one `tracing` subscriber for the whole process.
//!
//! * Logs: human-readable lines by default, one JSON object per line when
//!   `LIM_LOG_FORMAT=json`; the filter comes from `RUST_LOG` and defaults to
//!   `info`. Logs go to stderr: stdout carries only the `lim listening on …`
//!   line, which scripts and tests read.
//! * Traces: when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, lim's spans are also
//!   exported over OTLP/HTTP (protobuf) to `<endpoint>/v1/traces`, with
//!   `service.name = lim`, through a batch processor (the standard
//!   `OTEL_BSP_*` and `OTEL_EXPORTER_OTLP_*` variables apply). Each alert
//!   has an `ingest` span (source, fingerprint, incident_id, action) from
//!   the HTTP handler to the incident actor, with the `commit` and the
//!   `notify` hand-off as its children.
//!
//! The endpoint is logged at start without its user info and query (either
//! may carry credentials); `OTEL_EXPORTER_OTLP_HEADERS` is never logged.
//! An endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) with user info is refused at start:
//! the exporter's HTTP client never sends it (it takes the URL as it is, it
//! does not turn user info into basic auth) but logs the URL with it
//! (reqwest's `starting new connection` at debug, hyper-util's connection
//! pool at trace). Credentials go in `OTEL_EXPORTER_OTLP_HEADERS`
//! (`authorization=Basic …`), which is sent and never logged.
//!
//! The exporter has a filter of its own, independent of `RUST_LOG`: lim's
//! own spans at `info` and above are exported even when the logs are quiet
//! (`RUST_LOG=warn`), since a trace backend and a log reader want different
//! amounts. [`Telemetry::shutdown`] flushes what the batch processor still
//! holds; `main` calls it when `serve` returns (SIGTERM included).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::Level;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, Registry};

/// The environment variable that selects the log format.
pub const LOG_FORMAT_VAR: &str = "LIM_LOG_FORMAT";
/// The standard OpenTelemetry variable; set, it turns the OTLP export on.
pub const OTLP_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The standard variable of the traces endpoint; it wins over
/// [`OTLP_ENDPOINT_VAR`] for where spans go.
pub const OTLP_TRACES_ENDPOINT_VAR: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The `service.name` of lim's spans.
pub const SERVICE_NAME: &str = "lim";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid {LOG_FORMAT_VAR} {0:?}: expected `text` or `json`")]
    Format(String),
    #[error("invalid RUST_LOG: {0}")]
    Filter(String),
    #[error("a global tracing subscriber is already installed")]
    AlreadyInstalled,
    #[error("cannot set up the OTLP exporter ({OTLP_ENDPOINT_VAR}): {0}")]
    Exporter(String),
    #[error(
        "{0} has credentials in its user info, which the exporter does not send and its \
         HTTP client logs: remove them and set OTEL_EXPORTER_OTLP_HEADERS instead \
         (e.g. authorization=Basic <base64 of user:password>)"
    )]
    EndpointCredentials(&'static str),
    #[error("the OTLP exporter did not shut down cleanly: {0}")]
    Shutdown(String),
}

impl LogFormat {
    /// Parses the value of `LIM_LOG_FORMAT`; unset or empty is `Text`.
    pub fn parse(value: Option<&str>) -> Result<Self, TelemetryError> {
        match value.map(str::trim) {
            None | Some("") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("text") => Ok(LogFormat::Text),
            Some(v) if v.eq_ignore_ascii_case("json") => Ok(LogFormat::Json),
            Some(v) => Err(TelemetryError::Format(v.to_string())),
        }
    }
}

/// What [`init`] installed; keep it until the process ends and call
/// [`Telemetry::shutdown`] then.
#[must_use = "call `shutdown` before exiting, or buffered spans are lost"]
pub struct Telemetry {
    tracer_provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported over OTLP.
    pub fn exports_traces(&self) -> bool {
        self.tracer_provider.is_some()
    }

    /// Exports the spans still buffered and stops the exporter. It blocks
    /// (the batch processor's thread sends them, bounded by the exporter's
    /// timeout), so it runs on tokio's blocking pool.
    pub async fn shutdown(self) -> Result<(), TelemetryError> {
        let Some(provider) = self.tracer_provider else {
            return Ok(());
        };
        tokio::task::spawn_blocking(move || provider.shutdown())
            .await
            .map_err(|e| TelemetryError::Shutdown(e.to_string()))?
            .map_err(|e| TelemetryError::Shutdown(e.to_string()))
    }
}

/// The OTLP endpoint from the environment, if export is wanted.
fn otlp_endpoint() -> Option<String> {
    std::env::var(OTLP_ENDPOINT_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The tracer provider exporting to the configured endpoint. The exporter
/// reads the endpoint (and headers, timeout) from the standard variables;
/// the batch processor its `OTEL_BSP_*` settings.
fn tracer_provider() -> Result<SdkTracerProvider, TelemetryError> {
    for var in [OTLP_ENDPOINT_VAR, OTLP_TRACES_ENDPOINT_VAR] {
        if std::env::var(var).is_ok_and(|v| has_user_info(&v)) {
            return Err(TelemetryError::EndpointCredentials(var));
        }
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .build()
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
    Ok(SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(SERVICE_NAME).build())
        .with_batch_exporter(exporter)
        .build())
}

/// Which spans are exported: lim's own (server and core), `info` and above.
fn export_filter() -> Targets {
    Targets::new()
        .with_target("lim", Level::INFO)
        .with_target("incident_actors", Level::INFO)
}

/// Whether an endpoint holds user info; a malformed one with an `@`
/// anywhere counts (a password with an unencoded `/` or `?` makes the URL
/// malformed).
fn has_user_info(endpoint: &str) -> bool {
    match url::Url::parse(endpoint.trim()) {
        Ok(url) => !url.username().is_empty() || url.password().is_some(),
        Err(_) => endpoint.contains('@'),
    }
}

/// The endpoint as it may be logged: user info and query (credentials, when
/// a collector takes them there) replaced by `***`.
fn redacted_endpoint(endpoint: &str) -> String {
    let Ok(mut url) = url::Url::parse(endpoint.trim()) else {
        return "<not a URL>".into();
    };
    if !url.username().is_empty() || url.password().is_some() {
        let _ = url.set_password(None);
        let _ = url.set_username("***");
    }
    if url.query().is_some() {
        url.set_query(Some("***"));
    }
    url.set_fragment(None);
    url.to_string()
}

/// Installs the global subscriber from `LIM_LOG_FORMAT`, `RUST_LOG` and
/// `OTEL_EXPORTER_OTLP_ENDPOINT`.
pub fn init() -> Result<Telemetry, TelemetryError> {
    let format = LogFormat::parse(std::env::var(LOG_FORMAT_VAR).ok().as_deref())?;
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()
        .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let logs: Box<dyn Layer<Registry> + Send + Sync> = match format {
        LogFormat::Text => Box::new(tracing_subscriber::fmt::layer().with_writer(std::io::stderr)),
        LogFormat::Json => Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .with_writer(std::io::stderr),
        ),
    };
    let tracer_provider = otlp_endpoint().map(|_| tracer_provider()).transpose()?;
    let export = tracer_provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer(SERVICE_NAME))
            .with_filter(export_filter())
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(export)
        .try_init()
        .map_err(|_| TelemetryError::AlreadyInstalled)?;
    if let Some(endpoint) = otlp_endpoint() {
        let endpoint = redacted_endpoint(&endpoint);
        tracing::info!(%endpoint, "exporting traces over OTLP/HTTP");
    }
    Ok(Telemetry { tracer_provider })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_values() {
        assert_eq!(LogFormat::parse(None).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("")).unwrap(), LogFormat::Text);
        assert_eq!(LogFormat::parse(Some("JSON")).unwrap(), LogFormat::Json);
        assert_eq!(LogFormat::parse(Some("text")).unwrap(), LogFormat::Text);
        assert!(LogFormat::parse(Some("xml")).is_err());
    }

    #[test]
    fn endpoints_with_user_info_are_told_apart() {
        assert!(has_user_info("https://user:s3cret@otlp.example.com"));
        assert!(has_user_info(
            "https://t0ken@otlp.example.com:4318/v1/traces"
        ));
        assert!(has_user_info("https://user:s3/cr?t@otlp.example.com"));
        assert!(!has_user_info("https://otlp.example.com:4318/v1/traces"));
        assert!(!has_user_info("http://127.0.0.1:4318?owner=a@b"));
    }

    #[test]
    fn the_logged_endpoint_has_no_credentials() {
        assert_eq!(
            redacted_endpoint("https://user:s3cret@otlp.example.com:4318/x?api_key=k3y#f"),
            "https://***@otlp.example.com:4318/x?***"
        );
        assert_eq!(
            redacted_endpoint("https://t0ken@otlp.example.com"),
            "https://***@otlp.example.com/"
        );
        assert_eq!(
            redacted_endpoint("http://127.0.0.1:4318"),
            "http://127.0.0.1:4318/"
        );
        assert_eq!(redacted_endpoint("not a url s3cret"), "<not a URL>");
    }

    #[test]
    fn only_lims_own_spans_are_exported() {
        let filter = export_filter();
        assert!(filter.would_enable("lim::http::alerts", &Level::INFO));
        assert!(filter.would_enable("incident_actors::incident", &Level::INFO));
        assert!(!filter.would_enable("incident_actors::incident", &Level::DEBUG));
        assert!(!filter.would_enable("sqlx::query", &Level::INFO));
    }
}
