//! Logging: one `tracing` subscriber for the whole process.
//!
//! Human-readable lines by default, one JSON object per line when
//! `LIM_LOG_FORMAT=json`; the filter comes from `RUST_LOG` and defaults to
//! `info`. Logs go to stderr: stdout carries only the `lim listening on …`
//! line, which scripts and tests read.

use tracing_subscriber::filter::{EnvFilter, LevelFilter};

/// The environment variable that selects the log format.
pub const LOG_FORMAT_VAR: &str = "LIM_LOG_FORMAT";

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

/// Installs the global subscriber from `LIM_LOG_FORMAT` and `RUST_LOG`.
pub fn init() -> Result<(), TelemetryError> {
    let format = LogFormat::parse(std::env::var(LOG_FORMAT_VAR).ok().as_deref())?;
    let filter = EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .from_env()
        .map_err(|e| TelemetryError::Filter(e.to_string()))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.map_err(|_| TelemetryError::AlreadyInstalled)
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
}
