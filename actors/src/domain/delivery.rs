//! Deliveries: who a page or an update goes to, and the delivery log that
//! makes notifications at-least-once and never twice on purpose.
//!
//! * A [`Recipient`] is a policy target resolved at the instant a step
//!   fired: a channel as a whole (a Slack channel, a webhook, the console)
//!   or a person through one contact method (email, a Slack DM). Its
//!   [`Recipient::transport`] names the channel worker that delivers it.
//! * A [`Delivery`] is one row of the delivery log (`notifications` table).
//!   Rows are created **pending, in the same commit as the incident change
//!   that causes them** (the step that fired, the acknowledge), so a crash
//!   between the commit and the send loses nothing: at start every pending
//!   row is sent again. A row's [`DeliveryKey`] is its idempotency key
//!   (incident, the step's `notified` event, step, repeat, target, recipient
//!   for a page; incident, event sequence, recipient for an update):
//!   inserting a key twice is a no-op, so a replayed commit never pages twice.
//! * A [`Notification`] is what a channel is handed: the incident as it is
//!   now, what happened ([`NotificationEvent`]), the recipient, and for an
//!   update the reference of the message it updates (a Slack `channel:ts`,
//!   an email `Message-ID`), so updates land on the original page.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::alert::Labels;
use super::incident::{Incident, IncidentId, IncidentStatus, Interface};
use super::policy::Target;
use crate::time::Timestamp;

/// Where one delivery goes.
///
/// In JSON (the API, the delivery log) it is internally tagged:
/// `{"kind": "email", "user": "alice", "address": "…"}`. Internally tagged
/// enums cannot be read back by non-self-describing formats such as the
/// postcard snapshot codec (`Incident::paged` holds recipients), so those get
/// serde's default, externally tagged shape ([`RecipientCompact`]).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Recipient {
    /// lim's own log (the default policy's channel).
    Console,
    /// A configured webhook, by name.
    Webhook { name: String },
    /// A Slack channel (`#oncall` or a channel id).
    SlackChannel { channel: String },
    /// A person, by direct message.
    SlackUser { user: String, slack_user_id: String },
    /// A person, by email.
    Email { user: String, address: String },
}

/// [`Recipient`] in human-readable formats (JSON).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Recipient", tag = "kind", rename_all = "snake_case")]
enum RecipientTagged {
    Console,
    Webhook { name: String },
    SlackChannel { channel: String },
    SlackUser { user: String, slack_user_id: String },
    Email { user: String, address: String },
}

/// [`Recipient`] in compact formats (the postcard snapshot).
#[derive(Serialize, Deserialize)]
#[serde(remote = "Recipient", rename_all = "snake_case")]
enum RecipientCompact {
    Console,
    Webhook { name: String },
    SlackChannel { channel: String },
    SlackUser { user: String, slack_user_id: String },
    Email { user: String, address: String },
}

impl Serialize for Recipient {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            RecipientTagged::serialize(self, serializer)
        } else {
            RecipientCompact::serialize(self, serializer)
        }
    }
}

impl<'de> Deserialize<'de> for Recipient {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            RecipientTagged::deserialize(deserializer)
        } else {
            RecipientCompact::deserialize(deserializer)
        }
    }
}

impl Recipient {
    /// The channel worker that delivers to this recipient: `console`,
    /// `slack`, `email`, or `webhook:<name>`.
    pub fn transport(&self) -> String {
        match self {
            Recipient::Console => "console".into(),
            Recipient::Webhook { name } => format!("webhook:{name}"),
            Recipient::SlackChannel { .. } | Recipient::SlackUser { .. } => "slack".into(),
            Recipient::Email { .. } => "email".into(),
        }
    }

    /// The person this reaches, if it is a person.
    pub fn user(&self) -> Option<&str> {
        match self {
            Recipient::SlackUser { user, .. } | Recipient::Email { user, .. } => Some(user),
            _ => None,
        }
    }
}

impl fmt::Display for Recipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Recipient::Console => f.write_str("console"),
            Recipient::Webhook { name } => write!(f, "webhook:{name}"),
            Recipient::SlackChannel { channel } => write!(f, "slack:{channel}"),
            Recipient::SlackUser { user, .. } => write!(f, "slack-dm:{user}"),
            Recipient::Email { address, .. } => write!(f, "email:{address}"),
        }
    }
}

/// The idempotency key of a delivery (unique in the delivery log).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeliveryKey(pub String);

impl DeliveryKey {
    /// A page: one firing of a step (its `notified` timeline event `seq`)
    /// to one recipient of one target. The event makes each firing a key of
    /// its own: an escalation that starts over (an acknowledge that timed
    /// out, a snooze that ended, escalate-now once exhausted) fires step 0
    /// of pass 0 again, and that page is a delivery of its own, not the
    /// first page again.
    pub fn page_fired(
        incident: IncidentId,
        seq: u32,
        step: usize,
        repeat: u32,
        target: &Target,
        to: &Recipient,
    ) -> Self {
        DeliveryKey(format!(
            "{incident}/page/{seq}/{step}/{repeat}/{target}/{to}"
        ))
    }

    /// An update (acknowledged, resolved, …) caused by timeline event `seq`.
    pub fn update(incident: IncidentId, seq: u32, to: &Recipient) -> Self {
        DeliveryKey(format!("{incident}/update/{seq}/{to}"))
    }
}

impl fmt::Display for DeliveryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a notification is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NotificationEvent {
    /// An escalation step paging someone.
    Page {
        step: usize,
        repeat: u32,
        target: Target,
    },
    /// The incident changed after it was paged: the page's recipients are
    /// told (Slack edits its message, email replies in the thread).
    Update {
        /// `acknowledged`, `resolved`, `snoozed`, `retriggered`, `escalated`.
        change: String,
        by: Option<String>,
        via: Option<Interface>,
    },
}

impl NotificationEvent {
    pub fn is_page(&self) -> bool {
        matches!(self, NotificationEvent::Page { .. })
    }
}

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Recorded, not (yet) confirmed delivered: sent again after a restart.
    Pending,
    Delivered,
    /// Given up after the bounded retries, or refused for good.
    Failed,
    /// Dropped unsent because it no longer mattered (a page whose incident
    /// was acknowledged or resolved before it went out).
    Cancelled,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => DeliveryStatus::Pending,
            "delivered" => DeliveryStatus::Delivered,
            "failed" => DeliveryStatus::Failed,
            "cancelled" => DeliveryStatus::Cancelled,
            _ => return None,
        })
    }
}

/// One row of the delivery log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub key: DeliveryKey,
    pub incident_id: IncidentId,
    pub event: NotificationEvent,
    pub recipient: Recipient,
    pub status: DeliveryStatus,
    /// Attempts made so far.
    pub attempts: u32,
    pub last_error: Option<String>,
    /// The channel's reference of what it sent (Slack `channel:ts`, email
    /// `Message-ID`), for later updates.
    pub external_ref: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Delivery {
    /// A new pending row.
    pub fn pending(
        key: DeliveryKey,
        incident_id: IncidentId,
        event: NotificationEvent,
        recipient: Recipient,
        at: Timestamp,
    ) -> Self {
        Delivery {
            key,
            incident_id,
            event,
            recipient,
            status: DeliveryStatus::Pending,
            attempts: 0,
            last_error: None,
            external_ref: None,
            created_at: at,
            updated_at: at,
        }
    }
}

/// The outcome of one attempt, as the delivery log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered {
        external_ref: Option<String>,
    },
    /// Failed; `last` when no retry will follow.
    Failed {
        error: String,
        last: bool,
    },
    Cancelled,
}

impl Delivery {
    /// Applies one attempt's outcome: what every store records. A row that
    /// is no longer pending keeps its final status (a late duplicate attempt
    /// cannot turn `delivered` into `failed`).
    pub fn record(&mut self, outcome: &AttemptOutcome, at: Timestamp) {
        if self.status != DeliveryStatus::Pending {
            return;
        }
        self.updated_at = at;
        match outcome {
            AttemptOutcome::Delivered { external_ref } => {
                self.attempts += 1;
                self.status = DeliveryStatus::Delivered;
                self.external_ref = external_ref.clone();
            }
            AttemptOutcome::Failed { error, last } => {
                self.attempts += 1;
                self.last_error = Some(error.clone());
                if *last {
                    self.status = DeliveryStatus::Failed;
                }
            }
            AttemptOutcome::Cancelled => self.status = DeliveryStatus::Cancelled,
        }
    }
}

/// The incident as a channel shows it: the state at the time of sending.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentSummary {
    pub id: IncidentId,
    pub title: String,
    pub status: IncidentStatus,
    pub severity: Option<String>,
    pub service: String,
    pub labels: Labels,
    /// The first alert's annotations (summary, description, runbook_url…).
    pub annotations: Labels,
    pub created_at: Timestamp,
    pub acknowledged: Option<(Timestamp, String)>,
    pub resolved: Option<(Timestamp, String)>,
}

impl IncidentSummary {
    pub fn of(i: &Incident) -> Self {
        IncidentSummary {
            id: i.id,
            title: i.title.clone(),
            status: i.status,
            severity: i.severity.clone(),
            service: i.service.clone(),
            labels: i.labels.clone(),
            annotations: i
                .alerts
                .values()
                .next()
                .map(|a| a.alert.annotations.clone())
                .unwrap_or_default(),
            created_at: i.created_at,
            acknowledged: i.acknowledged.as_ref().map(|(at, a)| (*at, a.by.clone())),
            resolved: i.resolved.as_ref().map(|(at, a)| (*at, a.by.clone())),
        }
    }
}

/// What a channel is handed for one delivery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub key: DeliveryKey,
    pub incident: IncidentSummary,
    pub event: NotificationEvent,
    pub recipient: Recipient,
    /// For an update: the external reference of the page it follows up
    /// (same recipient), when that page was delivered.
    pub thread: Option<String>,
    /// A link to the incident in lim's web console, when `public_url` is set.
    pub link: Option<String>,
    pub at: Timestamp,
}

/// The deliveries a committed change causes, written pending with it:
/// a page per recipient of every step that fired, and an update per
/// recipient paged before this change for every event people must hear
/// about (acknowledged, resolved, snoozed, re-triggered, escalated).
/// `paged_before` is the incident's `paged` set before the change.
pub fn plan_deliveries(
    incident: &Incident,
    paged_before: &super::recipient_set::RecipientSet,
    change: &super::incident::Change,
    now: Timestamp,
) -> Vec<Delivery> {
    use super::incident::EventKind;
    let mut out = Vec::new();
    for fired in &change.fired {
        // The firing's own `notified` event: a step fires once per pass,
        // so (step, repeat) names it within one change. A step that reached
        // someone always has one; `next_seq` (no event has it yet) stands
        // in should one be missing.
        let seq = change
            .events
            .iter()
            .find_map(|e| match &e.kind {
                EventKind::Notified { step, repeat, .. }
                    if *step == fired.step && *repeat == fired.repeat =>
                {
                    Some(e.seq)
                }
                _ => None,
            })
            .unwrap_or(incident.next_seq);
        for (target, to) in &fired.recipients {
            out.push(Delivery::pending(
                DeliveryKey::page_fired(incident.id, seq, fired.step, fired.repeat, target, to),
                incident.id,
                NotificationEvent::Page {
                    step: fired.step,
                    repeat: fired.repeat,
                    target: target.clone(),
                },
                to.clone(),
                now,
            ));
        }
    }
    for event in &change.events {
        let (what, by, via) = match &event.kind {
            EventKind::Acknowledged { by, via } => ("acknowledged", Some(by), Some(*via)),
            EventKind::Resolved { by, via } => ("resolved", Some(by), Some(*via)),
            EventKind::Snoozed { by, via, .. } => ("snoozed", Some(by), Some(*via)),
            EventKind::Escalated { by, via } => ("escalated", Some(by), Some(*via)),
            EventKind::AckExpired => ("retriggered", None, None),
            _ => continue,
        };
        for to in paged_before {
            out.push(Delivery::pending(
                DeliveryKey::update(incident.id, event.seq, to),
                incident.id,
                NotificationEvent::Update {
                    change: what.to_string(),
                    by: by.cloned(),
                    via,
                },
                to.clone(),
                now,
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_and_distinct() {
        let id = IncidentId(7);
        let t = Target::Channel("ops".into());
        let a = Recipient::SlackChannel {
            channel: "#oncall".into(),
        };
        let b = Recipient::Email {
            user: "alice".into(),
            address: "alice@example.com".into(),
        };
        assert_eq!(
            DeliveryKey::page_fired(id, 3, 0, 1, &t, &a).0,
            "7/page/3/0/1/channel:ops/slack:#oncall"
        );
        assert_ne!(
            DeliveryKey::page_fired(id, 3, 0, 1, &t, &a),
            DeliveryKey::page_fired(id, 3, 0, 1, &t, &b)
        );
        assert_ne!(
            DeliveryKey::page_fired(id, 3, 0, 1, &t, &a),
            DeliveryKey::page_fired(id, 3, 0, 2, &t, &a)
        );
        assert_eq!(
            DeliveryKey::update(id, 4, &b).0,
            "7/update/4/email:alice@example.com"
        );
    }

    #[test]
    fn each_firing_of_a_step_is_a_page_of_its_own() {
        let id = IncidentId(7);
        let t = Target::Channel("ops".into());
        let to = Recipient::Console;
        assert_eq!(
            DeliveryKey::page_fired(id, 3, 0, 0, &t, &to).0,
            "7/page/3/0/0/channel:ops/console"
        );
        // An escalation that starts over fires step 0 of pass 0 again.
        assert_ne!(
            DeliveryKey::page_fired(id, 3, 0, 0, &t, &to),
            DeliveryKey::page_fired(id, 9, 0, 0, &t, &to)
        );
    }

    #[test]
    fn recipients_round_trip_in_json_and_postcard() {
        let all = [
            Recipient::Console,
            Recipient::Webhook { name: "ops".into() },
            Recipient::SlackChannel {
                channel: "#oncall".into(),
            },
            Recipient::SlackUser {
                user: "a".into(),
                slack_user_id: "U1".into(),
            },
            Recipient::Email {
                user: "a".into(),
                address: "a@example.com".into(),
            },
        ];
        for r in &all {
            let json = serde_json::to_string(r).unwrap();
            assert_eq!(&serde_json::from_str::<Recipient>(&json).unwrap(), r);
            let bytes = postcard::to_allocvec(r).unwrap();
            assert_eq!(&postcard::from_bytes::<Recipient>(&bytes).unwrap(), r);
        }
        assert_eq!(
            serde_json::to_value(&all[4]).unwrap(),
            serde_json::json!({"kind": "email", "user": "a", "address": "a@example.com"})
        );
        assert_eq!(
            serde_json::to_string(&Recipient::Console).unwrap(),
            r#"{"kind":"console"}"#
        );
    }

    use crate::domain::directory::{Contact, Directory};
    use crate::domain::incident::{Attribution, EventKind};
    use crate::domain::policy::{EscalationPolicy, EscalationStep};
    use crate::domain::{Alert, AlertStatus};
    use std::time::Duration;

    fn policy() -> EscalationPolicy {
        let step = |targets: Vec<Target>| EscalationStep {
            delay: Duration::from_secs(300),
            targets,
        };
        EscalationPolicy {
            name: "p".into(),
            steps: vec![
                step(vec![Target::User("ghost".into())]),
                step(vec![
                    Target::User("alice".into()),
                    Target::Channel("console".into()),
                ]),
            ],
            repeat: 0,
            ack_timeout: None,
        }
    }

    fn directory() -> Directory {
        let mut d = Directory {
            email_enabled: true,
            ..Directory::default()
        };
        d.users.insert(
            "alice".into(),
            Contact {
                email: Some("alice@example.com".into()),
                slack_user_id: None,
            },
        );
        // A user with no usable contact method resolves to nobody.
        d.users.insert("ghost".into(), Contact::default());
        d
    }

    fn open() -> Incident {
        let alert = Alert {
            labels: [("alertname".to_string(), "Down".to_string())].into(),
            annotations: Labels::new(),
            status: AlertStatus::Firing,
            starts_at: Timestamp(0),
            ends_at: None,
            source: "native".into(),
            dedup_key: None,
            extra: None,
        };
        Incident::open(IncidentId(1), alert, &policy(), Timestamp(0)).0
    }

    #[test]
    fn a_step_reaching_nobody_is_noted_and_passed_at_once() {
        let mut i = open();
        let change = i.fire_escalation_to(&policy(), Timestamp(0), &directory());
        let kinds: Vec<&str> = change.events.iter().map(|e| e.kind.name()).collect();
        assert_eq!(
            kinds,
            vec!["nobody_to_notify", "notified", "escalation_exhausted"]
        );
        assert_eq!(change.fired.len(), 2);
        assert!(change.fired[0].recipients.is_empty());
        assert_eq!(
            change.fired[1].recipients.len(),
            2,
            "alice by email + console"
        );
        assert_eq!(i.paged.len(), 2);
        let pages = plan_deliveries(&i, &Default::default(), &change, Timestamp(0));
        assert_eq!(pages.len(), 2);
        assert!(pages.iter().all(|d| d.status == DeliveryStatus::Pending));
        assert_eq!(
            pages[0].key.0,
            "1/page/2/1/0/user:alice/email:alice@example.com"
        );
    }

    #[test]
    fn a_policy_reaching_nobody_at_all_ends() {
        let mut d = directory();
        d.channels.clear();
        d.users.clear();
        let mut i = open();
        let change = i.fire_escalation_to(&policy(), Timestamp(0), &d);
        let kinds: Vec<&str> = change.events.iter().map(|e| e.kind.name()).collect();
        assert_eq!(
            kinds,
            vec![
                "nobody_to_notify",
                "nobody_to_notify",
                "escalation_exhausted"
            ]
        );
        assert!(i.escalation.exhausted);
        assert!(plan_deliveries(&i, &Default::default(), &change, Timestamp(0)).is_empty());
    }

    #[test]
    fn a_pass_reaching_nobody_waits_instead_of_burning_every_repeat() {
        let mut d = directory();
        d.channels.clear();
        d.users.clear();
        let mut p = policy();
        p.repeat = 1000;
        let mut i = open();
        let change = i.fire_escalation_to(&p, Timestamp(0), &d);
        assert_eq!(change.events.len(), 2, "one pass: two steps noted");
        assert!(!i.escalation.exhausted);
        assert_eq!(
            i.escalation.next_at,
            Some(Timestamp(300_000)),
            "waits the delay"
        );
    }

    #[test]
    fn a_pass_of_zero_delay_steps_reaching_nobody_still_waits() {
        let mut d = directory();
        d.channels.clear();
        d.users.clear();
        let mut p = policy();
        p.repeat = 3;
        p.steps[1].delay = Duration::ZERO;
        let mut i = open();
        let change = i.fire_escalation_to(&p, Timestamp(0), &d);
        assert_eq!(change.events.len(), 2, "one pass: two steps noted");
        assert_eq!(
            i.escalation.next_at,
            Some(Timestamp(60_000)),
            "at least NOBODY_RETRY, not at once"
        );
        // Due at once it would fire again: it is not due.
        let again = i.fire_escalation_to(&p, Timestamp(0), &d);
        assert!(again.events.is_empty(), "no burst of passes");
    }

    #[test]
    fn a_person_reached_through_two_targets_of_a_step_is_paged_once() {
        let mut p = policy();
        p.steps[0].targets = vec![Target::User("alice".into()), Target::Team("ml".into())];
        let mut d = directory();
        d.teams.insert("ml".into(), vec!["alice".into()]);
        let mut i = open();
        let change = i.fire_escalation_to(&p, Timestamp(0), &d);
        assert_eq!(change.fired[0].recipients.len(), 1);
    }

    #[test]
    fn changes_after_a_page_update_everyone_paged() {
        let mut i = open();
        i.fire_escalation_to(&policy(), Timestamp(0), &directory());
        let before = i.paged.clone();
        let change = i
            .acknowledge(
                Attribution::new("bob", crate::domain::Interface::Slack),
                &policy(),
                Timestamp(5),
            )
            .unwrap();
        let updates = plan_deliveries(&i, &before, &change, Timestamp(5));
        assert_eq!(updates.len(), 2);
        let seq = change.events[0].seq;
        assert!(matches!(
            change.events[0].kind,
            EventKind::Acknowledged { .. }
        ));
        for u in &updates {
            assert!(u.key.0.starts_with(&format!("1/update/{seq}/")));
            assert_eq!(
                u.event,
                NotificationEvent::Update {
                    change: "acknowledged".into(),
                    by: Some("bob".into()),
                    via: Some(crate::domain::Interface::Slack),
                }
            );
        }
        // A note changes nothing anyone was paged about.
        let before = i.paged.clone();
        let note = i.add_note(
            Attribution::new("bob", crate::domain::Interface::Api),
            "x".into(),
            Timestamp(6),
        );
        assert!(plan_deliveries(&i, &before, &note, Timestamp(6)).is_empty());
    }

    #[test]
    fn recording_attempts() {
        let mut d = Delivery::pending(
            DeliveryKey("k".into()),
            IncidentId(1),
            NotificationEvent::Page {
                step: 0,
                repeat: 0,
                target: Target::Channel("console".into()),
            },
            Recipient::Console,
            Timestamp(0),
        );
        d.record(
            &AttemptOutcome::Failed {
                error: "500".into(),
                last: false,
            },
            Timestamp(1),
        );
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 1));
        d.record(
            &AttemptOutcome::Delivered {
                external_ref: Some("C1:1.2".into()),
            },
            Timestamp(2),
        );
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 2));
        d.record(
            &AttemptOutcome::Failed {
                error: "late".into(),
                last: true,
            },
            Timestamp(3),
        );
        assert_eq!(d.status, DeliveryStatus::Delivered, "final states stay");
        assert_eq!(d.external_ref.as_deref(), Some("C1:1.2"));
    }

    #[test]
    fn transports() {
        assert_eq!(Recipient::Console.transport(), "console");
        assert_eq!(
            Recipient::Webhook { name: "ops".into() }.transport(),
            "webhook:ops"
        );
        assert_eq!(
            Recipient::SlackUser {
                user: "a".into(),
                slack_user_id: "U1".into()
            }
            .transport(),
            "slack"
        );
        assert_eq!(
            DeliveryStatus::parse("failed"),
            Some(DeliveryStatus::Failed)
        );
        assert_eq!(DeliveryStatus::parse("nope"), None);
    }
}
