//! Size limits on what an alert may carry, checked at the one place every
//! ingest path passes before anything is ingested ([`super::AppState::admit`]).
//! A request over a limit is refused whole with a 400 naming the alert and
//! the label; nothing of it is stored.
//!
//! Defaults (configurable in the `[limits]` table of the config file):
//! 64 labels and 64 annotations per alert, label names up to 256 bytes,
//! label values up to 4 KiB, annotation values up to 64 KiB. The request
//! body itself is capped at 1 MiB before any of this runs.

use incident_actors::domain::{Alert, Labels};
use serde::Deserialize;

use super::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertLimits {
    pub max_labels: usize,
    pub max_annotations: usize,
    pub max_name_bytes: usize,
    pub max_label_value_bytes: usize,
    pub max_annotation_value_bytes: usize,
}

impl Default for AlertLimits {
    fn default() -> Self {
        AlertLimits {
            max_labels: 64,
            max_annotations: 64,
            max_name_bytes: 256,
            max_label_value_bytes: 4 * 1024,
            max_annotation_value_bytes: 64 * 1024,
        }
    }
}

impl AlertLimits {
    /// Every limit must be at least 1.
    pub fn validate(&self) -> Result<(), String> {
        let all = [
            ("max_labels", self.max_labels),
            ("max_annotations", self.max_annotations),
            ("max_name_bytes", self.max_name_bytes),
            ("max_label_value_bytes", self.max_label_value_bytes),
            (
                "max_annotation_value_bytes",
                self.max_annotation_value_bytes,
            ),
        ];
        match all.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("limits.{name} must be at least 1")),
            None => Ok(()),
        }
    }

    fn check_set(
        &self,
        index: usize,
        what: &str,
        set: &Labels,
        max_count: usize,
        max_value: usize,
    ) -> Result<(), ApiError> {
        if set.len() > max_count {
            return Err(ApiError::InvalidBody(format!(
                "alert {index}: {} {what}, more than the limit of {max_count}",
                set.len()
            )));
        }
        for (name, value) in set {
            if name.len() > self.max_name_bytes {
                let shown: String = name.chars().take(40).collect();
                return Err(ApiError::InvalidBody(format!(
                    "alert {index}: {what} name {shown:?}… is {} bytes, over the limit of {}",
                    name.len(),
                    self.max_name_bytes
                )));
            }
            if value.len() > max_value {
                return Err(ApiError::InvalidBody(format!(
                    "alert {index}: {what}.{name} is {} bytes, over the limit of {max_value}",
                    value.len()
                )));
            }
        }
        Ok(())
    }

    /// Checks every alert of a request; the first problem names its alert.
    pub fn check(&self, alerts: &[Alert]) -> Result<(), ApiError> {
        for (i, a) in alerts.iter().enumerate() {
            self.check_set(
                i,
                "labels",
                &a.labels,
                self.max_labels,
                self.max_label_value_bytes,
            )?;
            self.check_set(
                i,
                "annotations",
                &a.annotations,
                self.max_annotations,
                self.max_annotation_value_bytes,
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_actors::domain::AlertStatus;
    use incident_actors::time::Timestamp;

    fn alert(labels: Labels) -> Alert {
        Alert {
            labels,
            annotations: Labels::new(),
            status: AlertStatus::Firing,
            starts_at: Timestamp(0),
            ends_at: None,
            source: "native".into(),
            dedup_key: None,
            extra: None,
        }
    }

    #[test]
    fn ten_thousand_labels_and_a_10_mb_value_are_refused_by_name() {
        let limits = AlertLimits::default();
        let many: Labels = (0..10_000)
            .map(|i| (format!("l{i}"), "v".to_string()))
            .collect();
        let err = limits.check(&[alert(many)]).unwrap_err().to_string();
        assert!(err.contains("10000 labels"), "{err}");
        let big: Labels = [("summary".to_string(), "x".repeat(10 << 20))].into();
        let err = limits
            .check(&[alert(Labels::new()), alert(big)])
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("alert 1: labels.summary is 10485760 bytes"),
            "{err}"
        );
        let ok: Labels = [("alertname".to_string(), "A".to_string())].into();
        assert!(limits.check(&[alert(ok)]).is_ok());
    }

    #[test]
    fn zero_limits_are_invalid() {
        let limits = AlertLimits {
            max_labels: 0,
            ..AlertLimits::default()
        };
        assert_eq!(
            limits.validate().unwrap_err(),
            "limits.max_labels must be at least 1"
        );
    }
}
