//! The timeline as the API shows it: the incident's own events merged with
//! its deliveries from the delivery log, oldest first, so an operator sees
//! "step 1 fired", "paged alice by email", "Slack failed, retrying",
//! "acknowledged by bob" in one list.
//!
//! Deliveries are not incident events (they are written by the notifier
//! pool, not by the incident's actor, and keep changing after the incident
//! is resolved), so they are merged at read time rather than stored twice.

use incident_actors::domain::{Delivery, DeliveryStatus, NotificationEvent, TimelineEvent};
use incident_actors::time::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;

/// A delivery as a timeline entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct DeliveryEntry {
    /// The last attempt (or when it was recorded, before any attempt).
    pub at: Timestamp,
    /// `delivered`, `delivery_failed` (given up), `delivery_retrying` (an
    /// attempt failed, another will follow), `delivery_pending` (not tried
    /// yet) or `delivery_cancelled` (a page made moot by an acknowledge).
    #[serde(rename = "type")]
    pub kind: String,
    /// `page` or `update`.
    pub notification: String,
    /// For a page: its step and pass; for an update: what changed.
    pub detail: String,
    /// Who or where: `email:alice@example.com`, `slack:#oncall`, `webhook:ops`.
    pub recipient: String,
    /// The channel worker that delivers it.
    pub channel: String,
    pub attempts: u32,
    pub error: Option<String>,
    /// The delivery's idempotency key.
    pub key: String,
}

impl DeliveryEntry {
    pub fn of(d: &Delivery) -> Self {
        let kind = match d.status {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "delivery_failed",
            DeliveryStatus::Cancelled => "delivery_cancelled",
            DeliveryStatus::Pending if d.attempts > 0 => "delivery_retrying",
            DeliveryStatus::Pending => "delivery_pending",
        };
        let (notification, detail) = match &d.event {
            NotificationEvent::Page {
                step,
                repeat,
                target,
            } => ("page", format!("step {step}, pass {repeat}, {target}")),
            NotificationEvent::Update { change, .. } => ("update", change.clone()),
        };
        DeliveryEntry {
            at: d.updated_at,
            kind: kind.to_string(),
            notification: notification.to_string(),
            detail,
            recipient: d.recipient.to_string(),
            channel: d.recipient.transport(),
            attempts: d.attempts,
            error: d.last_error.clone(),
            key: d.key.0.clone(),
        }
    }
}

/// One entry of the timeline the API shows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum TimelineEntry {
    Event(TimelineEvent),
    Delivery(DeliveryEntry),
}

impl TimelineEntry {
    fn at(&self) -> Timestamp {
        match self {
            TimelineEntry::Event(e) => e.at,
            TimelineEntry::Delivery(d) => d.at,
        }
    }
}

/// Events and deliveries, oldest first; at the same instant the event
/// (the cause) comes before the delivery. Stable otherwise.
pub fn merge(events: Vec<TimelineEvent>, deliveries: &[Delivery]) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> = events.into_iter().map(TimelineEntry::Event).collect();
    entries.extend(
        deliveries
            .iter()
            .map(|d| TimelineEntry::Delivery(DeliveryEntry::of(d))),
    );
    entries.sort_by_key(|e| (e.at(), matches!(e, TimelineEntry::Delivery(_))));
    entries
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_actors::domain::{
        AttemptOutcome, DeliveryKey, EventKind, IncidentId, Recipient, Target,
    };

    #[test]
    fn deliveries_interleave_with_events_by_time() {
        let event = |seq, at| TimelineEvent {
            seq,
            at: Timestamp(at),
            kind: EventKind::AckExpired,
        };
        let mut page = Delivery::pending(
            DeliveryKey("1/page/0/0/channel:ops/webhook:ops".into()),
            IncidentId(1),
            NotificationEvent::Page {
                step: 0,
                repeat: 0,
                target: Target::Channel("ops".into()),
            },
            Recipient::Webhook { name: "ops".into() },
            Timestamp(10),
        );
        page.record(
            &AttemptOutcome::Failed {
                error: "HTTP 500".into(),
                last: false,
            },
            Timestamp(10),
        );
        let merged = merge(vec![event(0, 10), event(1, 20)], &[page]);
        let kinds: Vec<String> = merged
            .iter()
            .map(|e| match e {
                TimelineEntry::Event(e) => e.kind.name().to_string(),
                TimelineEntry::Delivery(d) => d.kind.clone(),
            })
            .collect();
        assert_eq!(kinds, ["ack_expired", "delivery_retrying", "ack_expired"]);
        let TimelineEntry::Delivery(d) = &merged[1] else {
            panic!()
        };
        assert_eq!(d.recipient, "webhook:ops");
        assert_eq!(d.detail, "step 0, pass 0, channel:ops");
        assert_eq!(d.error.as_deref(), Some("HTTP 500"));
    }
}
