//! The normalised alert every ingest format is turned into.

use serde::{Deserialize, Serialize};

use super::fingerprint::Fingerprint;
use crate::time::Timestamp;

/// Label and annotation sets: sorted by name, which the fingerprint relies
/// on and which makes JSON output stable; compact (`super::labels`).
pub use super::labels::Labels;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    Firing,
    Resolved,
}

impl AlertStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Firing => "firing",
            AlertStatus::Resolved => "resolved",
        }
    }
}

/// One alert as received, whatever the format it came in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Alert {
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, String>))]
    pub labels: Labels,
    #[cfg_attr(feature = "openapi", schema(value_type = std::collections::BTreeMap<String, String>))]
    pub annotations: Labels,
    pub status: AlertStatus,
    pub starts_at: Timestamp,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub ends_at: Option<Timestamp>,
    /// Which ingest path produced it (`native`, `prometheus`, `alertmanager`, `pagerduty`, …).
    pub source: String,
    /// A sender-chosen deduplication key; when present it, not the labels,
    /// decides which incident the alert joins.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub dedup_key: Option<String>,
    /// Source-specific fields kept verbatim, as JSON object text
    /// (Prometheus' `generatorURL`, Grafana's extras, PagerDuty's `links`,
    /// `images`, `custom_details`, …). Text rather than a JSON value so the
    /// snapshot codec (postcard, not self-describing) can carry it.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub extra: Option<String>,
}

impl Alert {
    /// The alert's own identity inside an incident: always its label set.
    pub fn fingerprint(&self) -> Fingerprint {
        Fingerprint::of_labels(&self.labels)
    }

    /// The key that decides which incident this alert belongs to: the dedup
    /// key when the sender gave one, else the label fingerprint.
    pub fn incident_key(&self) -> Fingerprint {
        match &self.dedup_key {
            Some(key) => Fingerprint::of_dedup_key(key),
            None => self.fingerprint(),
        }
    }

    /// Two deliveries are the same alert in the same state when their labels
    /// and status match. Timestamps are refreshed on every Prometheus re-send,
    /// and annotations often carry the current value (`p99 is {{ $value }}`),
    /// so neither counts: counting them would turn every re-send into a row.
    pub fn same_state(&self, other: &Alert) -> bool {
        self.status == other.status && self.labels == other.labels
    }

    /// A short human title: the `summary` annotation, else `alertname`, else
    /// the fingerprint.
    pub fn title(&self) -> String {
        self.annotations
            .get("summary")
            .or_else(|| self.labels.get("alertname"))
            .map(str::to_owned)
            .unwrap_or_else(|| format!("alert {}", self.fingerprint()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(labels: &[(&str, &str)], dedup: Option<&str>) -> Alert {
        Alert {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: Labels::new(),
            status: AlertStatus::Firing,
            starts_at: Timestamp(0),
            ends_at: None,
            source: "native".into(),
            dedup_key: dedup.map(str::to_string),
            extra: None,
        }
    }

    #[test]
    fn dedup_key_decides_the_incident_but_not_the_alert_identity() {
        let a = alert(&[("alertname", "A")], Some("group-1"));
        let b = alert(&[("alertname", "B")], Some("group-1"));
        assert_eq!(a.incident_key(), b.incident_key());
        assert_ne!(a.fingerprint(), b.fingerprint());
        let c = alert(&[("alertname", "A")], None);
        assert_eq!(c.incident_key(), c.fingerprint());
    }

    #[test]
    fn title_prefers_summary_then_alertname() {
        let mut a = alert(&[("alertname", "HighLatency")], None);
        assert_eq!(a.title(), "HighLatency");
        a.annotations.insert("summary".into(), "p99 4.2s".into());
        assert_eq!(a.title(), "p99 4.2s");
    }

    #[test]
    fn refreshed_timestamps_and_values_are_still_the_same_state() {
        let a = alert(&[("alertname", "A")], None);
        let mut b = a.clone();
        b.ends_at = Some(Timestamp(99));
        b.starts_at = Timestamp(5);
        b.annotations.insert("summary".into(), "value 42".into());
        assert!(a.same_state(&b));
        b.status = AlertStatus::Resolved;
        assert!(!a.same_state(&b));
    }
}
