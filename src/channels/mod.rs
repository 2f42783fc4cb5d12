//! The real notification channels: implementations of the core's
//! [`Channel`](incident_actors::ports::Channel) port that leave the process.
//!
//! * [`email`]: SMTP through lettre (plain, STARTTLS or implicit TLS).
//!   Pages and their updates thread together by `Message-ID`,
//!   `In-Reply-To` and `References`. Transport name `email`.
//! * [`webhook`]: a signed, versioned JSON `POST` through reqwest, one
//!   channel per configured webhook. Transport name `webhook:<name>`.
//! * [`slack`]: Slack's Web API through slack-morphism: a Block Kit message
//!   with Acknowledge / Resolve / Snooze buttons, edited in place
//!   (`chat.update`) as the incident changes. Transport name `slack`.
//!
//! The `console` channel lives in the core (`incident_actors::console`), as
//! it needs nothing from outside.
//!
//! Every channel makes **one attempt** per [`deliver`] call, bounded as a
//! whole (connecting included) by its configured `timeout` (webhooks 10 s,
//! Slack 15 s, email 30 s by default), so a far end that accepts and never
//! answers costs one attempt, not a worker's in-flight slot for good. It
//! classifies its failure for the notifier pool, which owns retries,
//! backoff and rate limiting: `Failed` (may pass: timeouts, connection
//! errors and resets, 5xx, SMTP 4xx), `Refused` (will not pass: bad
//! credentials, unknown recipient, a 4xx that will not change) and
//! `RateLimited` (the far end said when to come back). Error messages never
//! carry secrets (tokens, passwords, webhook URLs, which often embed a
//! token, are left out).
//!
//! The presentation helpers shared by the channels are here:
//! [`ordered_labels`] (LLM labels first) and [`change_line`] (what an
//! update says happened).
//!
//! [`deliver`]: incident_actors::ports::Channel::deliver

pub mod email;
pub mod slack;
pub mod webhook;

use incident_actors::domain::{IncidentStatus, IncidentSummary, Labels, NotificationEvent};
use incident_actors::time::Timestamp;

/// A channel's configuration cannot work; reported when the channel is
/// built (at start or by `check-config`), never at the first page.
#[derive(Debug, thiserror::Error)]
pub enum ChannelConfigError {
    /// A URL (`LIM_SMTP_URL`, a webhook URL, the Slack API URL) does not
    /// parse or has the wrong scheme.
    #[error("invalid URL for {what}: {message}")]
    InvalidUrl { what: &'static str, message: String },
    /// An email address (the sender, a default recipient) does not parse.
    #[error("invalid email address {address:?}: {message}")]
    InvalidAddress { address: String, message: String },
    /// A required value is empty or out of range.
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
    /// The transport cannot be built (the TLS setup failed).
    #[error("cannot set up the {channel} channel: {message}")]
    Transport {
        channel: &'static str,
        message: String,
    },
}

/// Reads a duration written as text (`"10s"`, `"500ms"`, `"1m 30s"`): the
/// channels' `timeout` keys.
pub(crate) fn duration_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::time::Duration, D::Error> {
    let s = <String as serde::Deserialize>::deserialize(d)?;
    humantime::parse_duration(&s).map_err(serde::de::Error::custom)
}

/// Labels that LLM alerts carry, shown first (in this order) by every
/// channel; the rest follow in name order.
pub const LEADING_LABELS: [&str; 3] = ["model", "provider", "tenant"];

/// The labels in display order: [`LEADING_LABELS`] first (those present),
/// then the others by name.
pub fn ordered_labels(labels: &Labels) -> Vec<(&str, &str)> {
    let mut out: Vec<(&str, &str)> = LEADING_LABELS
        .iter()
        .filter_map(|k| labels.get_key_value(k))
        .collect();
    out.extend(labels.iter().filter(|(k, _)| !LEADING_LABELS.contains(k)));
    out
}

/// The annotations shown, in this order, with their display names.
pub const SHOWN_ANNOTATIONS: [(&str, &str); 3] = [
    ("summary", "Summary"),
    ("description", "Description"),
    ("runbook_url", "Runbook"),
];

/// The upper-case status word of subjects and headers (`TRIGGERED`, …).
pub fn status_word(status: IncidentStatus) -> String {
    status.as_str().to_ascii_uppercase()
}

/// What happened, in one line, for an update ("Acknowledged by alice at
/// 2024-05-01 12:00:00 UTC"); `None` for a page. The instant is the one the
/// incident records (acknowledged, resolved) when there is one, else `at`
/// (when lim sent the notification).
pub fn change_line(
    incident: &IncidentSummary,
    event: &NotificationEvent,
    at: Option<Timestamp>,
) -> Option<String> {
    let NotificationEvent::Update { change, by, via } = event else {
        return None;
    };
    let (verb, recorded) = match change.as_str() {
        "acknowledged" => ("Acknowledged", incident.acknowledged.as_ref().map(|a| a.0)),
        "resolved" => ("Resolved", incident.resolved.as_ref().map(|r| r.0)),
        "snoozed" => ("Snoozed", None),
        "escalated" => ("Escalated", None),
        "retriggered" => ("Re-triggered: the acknowledgement expired", None),
        _ => ("Changed", None),
    };
    let mut line = if verb == "Changed" {
        format!("Changed: {change}")
    } else {
        verb.to_string()
    };
    if let Some(by) = by {
        line.push_str(" by ");
        line.push_str(by);
    }
    if let Some(via) = via {
        let via = serde_json::to_value(via)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        if !via.is_empty() {
            line.push_str(&format!(" (via {via})"));
        }
    }
    if let Some(t) = recorded.or(at) {
        line.push_str(" at ");
        line.push_str(&human_time(t));
    }
    Some(line)
}

/// `2024-05-01 12:00:00 UTC`: the instant as people read it in a message.
pub fn human_time(t: Timestamp) -> String {
    t.to_datetime().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The incident's severity, or `unknown` when the alert had none.
pub(crate) fn severity_or_unknown(incident: &IncidentSummary) -> &str {
    incident.severity.as_deref().unwrap_or("unknown")
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llm_labels_come_first() {
        let labels: Labels = [
            ("alertname", "HighLatency"),
            ("tenant", "acme"),
            ("model", "gpt-4o"),
            ("env", "prod"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            ordered_labels(&labels),
            vec![
                ("model", "gpt-4o"),
                ("tenant", "acme"),
                ("alertname", "HighLatency"),
                ("env", "prod"),
            ]
        );
    }

    #[test]
    fn truncates_on_characters() {
        assert_eq!(truncate("héllo", 10), "héllo");
        assert_eq!(truncate("héllo", 3), "hé…");
    }
}
