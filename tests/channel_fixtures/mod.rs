//! Notifications shared by the channel tests (`mod channel_fixtures;` in
//! tests/channel_email.rs, channel_webhook.rs, channel_slack.rs,
//! channel_faults.rs): incident 42, an LLM latency alert, paged and then
//! acknowledged.

#![allow(dead_code)]

use incident_actors::domain::{
    DeliveryKey, IncidentId, IncidentStatus, IncidentSummary, Interface, Labels, Notification,
    NotificationEvent, Recipient, Target,
};
use incident_actors::time::Timestamp;

/// 2024-05-01T12:00:00Z
pub const CREATED_MS: i64 = 1_714_564_800_000;
/// Two minutes later.
pub const ACKED_MS: i64 = CREATED_MS + 120_000;
pub const LINK: &str = "https://lim.example.com/incidents/42";

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Incident 42, triggered.
pub fn incident() -> IncidentSummary {
    IncidentSummary {
        id: IncidentId(42),
        title: "HighLatency".into(),
        status: IncidentStatus::Triggered,
        severity: Some("critical".into()),
        service: "chat".into(),
        labels: labels(&[
            ("alertname", "HighLatency"),
            ("env", "prod"),
            ("model", "gpt-4o"),
            ("provider", "openai"),
            ("tenant", "acme"),
        ]),
        annotations: labels(&[
            ("summary", "p99 latency of gpt-4o is 7.2s"),
            ("description", "p99 > 5s for 10m & rising"),
            ("runbook_url", "https://runbooks.example.com/llm-latency"),
        ]),
        created_at: Timestamp(CREATED_MS),
        acknowledged: None,
        resolved: None,
    }
}

/// Incident 42 after alice acknowledged it.
pub fn acknowledged() -> IncidentSummary {
    IncidentSummary {
        status: IncidentStatus::Acknowledged,
        acknowledged: Some((Timestamp(ACKED_MS), "alice".into())),
        ..incident()
    }
}

/// Incident 42 after bob resolved it.
pub fn resolved() -> IncidentSummary {
    IncidentSummary {
        status: IncidentStatus::Resolved,
        resolved: Some((Timestamp(ACKED_MS + 60_000), "bob".into())),
        ..acknowledged()
    }
}

/// The first step's page of incident 42 to `to` (target `user:alice`).
pub fn page(to: Recipient) -> Notification {
    let target = Target::User("alice".into());
    Notification {
        key: DeliveryKey::page_fired(IncidentId(42), 1, 0, 0, &target, &to),
        incident: incident(),
        event: NotificationEvent::Page {
            step: 0,
            repeat: 0,
            target,
        },
        recipient: to,
        thread: None,
        link: Some(LINK.into()),
        at: Timestamp(CREATED_MS + 1_000),
    }
}

/// The update "acknowledged by alice via Slack" to `to`, following up
/// `thread`.
pub fn ack_update(to: Recipient, thread: Option<String>) -> Notification {
    Notification {
        key: DeliveryKey::update(IncidentId(42), 3, &to),
        incident: acknowledged(),
        event: NotificationEvent::Update {
            change: "acknowledged".into(),
            by: Some("alice".into()),
            via: Some(Interface::Slack),
        },
        recipient: to,
        thread,
        link: Some(LINK.into()),
        at: Timestamp(ACKED_MS + 500),
    }
}

/// The update "resolved by bob via the API" to `to`, following up `thread`.
pub fn resolve_update(to: Recipient, thread: Option<String>) -> Notification {
    Notification {
        key: DeliveryKey::update(IncidentId(42), 5, &to),
        incident: resolved(),
        event: NotificationEvent::Update {
            change: "resolved".into(),
            by: Some("bob".into()),
            via: Some(Interface::Api),
        },
        recipient: to,
        thread,
        link: None,
        at: Timestamp(ACKED_MS + 61_000),
    }
}
