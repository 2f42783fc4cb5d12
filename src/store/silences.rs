//! Silences and silenced alerts in SQL, for both backends: the whole silence
//! is kept as JSON in `body` (its matchers are re-validated when read), with
//! its window in columns for ordering. Silenced alerts are kept once per
//! (silence, fingerprint), so a re-sent silenced alert writes nothing.

use incident_actors::domain::{Alert, Silence, SilenceId};
use incident_actors::ports::StoreError;
use incident_actors::time::Timestamp;

pub(crate) fn silence_body(s: &Silence) -> Result<String, StoreError> {
    serde_json::to_string(s).map_err(|e| StoreError::Rejected(format!("silence as JSON: {e}")))
}

pub(crate) fn silence_from_body(body: &str) -> Result<Silence, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Unavailable(format!("stored silence cannot be read: {e}")))
}

/// The silences that can be read; one that cannot (written by a future
/// version, or damaged) is logged and skipped rather than making every
/// silence, and the router's start, fail with it.
pub(crate) fn readable(rows: &[(String,)]) -> Vec<Silence> {
    rows.iter()
        .filter_map(|(body,)| match silence_from_body(body) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::error!(error = %e, "skipping a stored silence that cannot be read");
                None
            }
        })
        .collect()
}

pub(crate) fn alert_body(a: &Alert) -> Result<String, StoreError> {
    serde_json::to_string(a).map_err(|e| StoreError::Rejected(format!("alert as JSON: {e}")))
}

pub(crate) fn db_id(id: SilenceId) -> Result<i64, StoreError> {
    i64::try_from(id.0)
        .map_err(|_| StoreError::Rejected(format!("silence id {id} is out of range")))
}

pub(crate) fn millis(t: Timestamp) -> i64 {
    t.as_millis()
}
