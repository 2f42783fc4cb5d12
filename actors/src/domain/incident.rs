//! The incident state machine: triggered → acknowledged → resolved, with a
//! timeline event for every transition.
//!
//! Every operation mutates an `Incident` and returns a `Change` describing
//! what must be persisted (events, alert rows) and what must be sent
//! (notifications). The actor applies operations to a copy, commits the
//! change, and only then keeps the copy, so memory never runs ahead of the store.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::alert::{Alert, AlertStatus, Labels};
use super::alert_map::AlertMap;
use super::directory::{Directory, ResolveTargets};
use super::fingerprint::Fingerprint;
use super::policy::{EscalationPolicy, EscalationState, StepFired, Target};
use super::recipient_set::RecipientSet;
use crate::time::Timestamp;

/// The least wait after a whole pass of the policy reached nobody, before
/// it is tried again (someone may have come on call meanwhile).
pub const NOBODY_RETRY: std::time::Duration = std::time::Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct IncidentId(pub u64);

impl fmt::Display for IncidentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum IncidentStatus {
    Triggered,
    Acknowledged,
    Resolved,
}

impl IncidentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentStatus::Triggered => "triggered",
            IncidentStatus::Acknowledged => "acknowledged",
            IncidentStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "triggered" => Some(IncidentStatus::Triggered),
            "acknowledged" => Some(IncidentStatus::Acknowledged),
            "resolved" => Some(IncidentStatus::Resolved),
            _ => None,
        }
    }

    /// Open incidents are the ones alerts deduplicate into.
    pub fn is_open(self) -> bool {
        self != IncidentStatus::Resolved
    }
}

/// Through which interface an action came.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Interface {
    Api,
    Cli,
    Slack,
    Web,
    /// The alerts themselves (every alert of the incident resolved).
    Alert,
    /// lim's own timers.
    System,
}

/// Who did something, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attribution {
    pub by: String,
    pub via: Interface,
}

impl Attribution {
    pub fn new(by: impl Into<String>, via: Interface) -> Self {
        Attribution { by: by.into(), via }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    Triggered {
        alert: Fingerprint,
    },
    AlertAdded {
        alert: Fingerprint,
    },
    AlertRefired {
        alert: Fingerprint,
    },
    AlertResolved {
        alert: Fingerprint,
    },
    /// A firing alert's `ends_at` passed without a re-send extending it.
    AlertExpired {
        alert: Fingerprint,
    },
    Acknowledged {
        by: String,
        via: Interface,
    },
    AckExpired,
    /// Acknowledged until `until`, then triggered again with its escalation restarted.
    Snoozed {
        by: String,
        via: Interface,
        until: Timestamp,
    },
    /// Someone asked for the next escalation step now.
    Escalated {
        by: String,
        via: Interface,
    },
    NoteAdded {
        by: String,
        via: Interface,
        text: String,
    },
    Resolved {
        by: String,
        via: Interface,
    },
    Notified {
        step: usize,
        repeat: u32,
        targets: Vec<Target>,
    },
    EscalationExhausted,
    /// A step whose targets resolved to nobody (no one on call, no contact
    /// method lim can use): passed at once instead of waited out.
    NobodyToNotify {
        step: usize,
        repeat: u32,
        targets: Vec<Target>,
    },
}

impl EventKind {
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::Triggered { .. } => "triggered",
            EventKind::AlertAdded { .. } => "alert_added",
            EventKind::AlertRefired { .. } => "alert_refired",
            EventKind::AlertResolved { .. } => "alert_resolved",
            EventKind::AlertExpired { .. } => "alert_expired",
            EventKind::Acknowledged { .. } => "acknowledged",
            EventKind::AckExpired => "ack_expired",
            EventKind::Snoozed { .. } => "snoozed",
            EventKind::Escalated { .. } => "escalated",
            EventKind::NoteAdded { .. } => "note_added",
            EventKind::Resolved { .. } => "resolved",
            EventKind::Notified { .. } => "notified",
            EventKind::EscalationExhausted => "escalation_exhausted",
            EventKind::NobodyToNotify { .. } => "nobody_to_notify",
        }
    }
}

/// One entry of an incident's timeline. `seq` orders events within an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TimelineEvent {
    pub seq: u32,
    pub at: Timestamp,
    #[serde(flatten)]
    pub kind: EventKind,
}

/// An alert held by an incident, with what lim saw of it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertEntry {
    pub alert: Alert,
    pub first_seen: Timestamp,
    pub last_seen: Timestamp,
    /// Deliveries received, repeats included.
    pub count: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incident {
    pub id: IncidentId,
    /// `fingerprint`, `title`, `severity`, `service`, `labels` and
    /// `created_at` are fixed by [`Incident::open`] and never change after
    /// it: the SQLite store leaves those columns alone when it writes a
    /// snapshot over its row (`src/store/sqlite_batch.rs`).
    pub fingerprint: Fingerprint,
    pub title: String,
    pub status: IncidentStatus,
    pub severity: Option<String>,
    pub service: String,
    pub labels: Labels,
    pub policy: String,
    /// By fingerprint, sorted (`super::alert_map`: a vector, not a B-tree
    /// whose leaf holds room for 11 where most incidents hold one).
    pub alerts: AlertMap,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub acknowledged: Option<(Timestamp, Attribution)>,
    pub resolved: Option<(Timestamp, Attribution)>,
    pub escalation: EscalationState,
    pub ack_expires_at: Option<Timestamp>,
    pub last_seen: Timestamp,
    /// Alert deliveries received, repeats included.
    pub seen_count: u64,
    /// Bumped by every committed change; the store keeps it for optimistic checks.
    pub version: u64,
    pub next_seq: u32,
    /// Everyone and everything paged so far: told of later changes
    /// (acknowledged, resolved…) so no page is left stale.
    pub paged: RecipientSet,
}

/// What an operation changed: to persist, then to act on.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Change {
    pub events: Vec<TimelineEvent>,
    /// Alerts to record as received (only those that changed state).
    pub alerts: Vec<Alert>,
    /// Escalation steps that fired: their targets are to be notified.
    pub fired: Vec<StepFired>,
}

impl Change {
    /// Appends a later change made to the same incident.
    pub fn merge(&mut self, later: Change) {
        self.events.extend(later.events);
        self.alerts.extend(later.alerts);
        self.fired.extend(later.fired);
    }

    /// A change with nothing to persist: no new row, no new snapshot.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty() && self.alerts.is_empty() && self.fired.is_empty()
    }
}

/// What an alert did to the incident it was routed to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum IngestAction {
    Created,
    Joined,
    Resolved,
    Unchanged,
    /// A silence kept it from opening an incident: recorded, pages no one.
    Silenced,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("incident {0} is already resolved")]
    AlreadyResolved(IncidentId),
}

/// Which service an alert belongs to until routing rules exist: its
/// `service` label, else `default`.
pub fn service_of(labels: &Labels) -> String {
    labels.get("service").unwrap_or("default").to_string()
}

impl Incident {
    /// Opens an incident for `alert`. Its first escalation step is due at once.
    pub fn open(
        id: IncidentId,
        alert: Alert,
        policy: &EscalationPolicy,
        now: Timestamp,
    ) -> (Self, Change) {
        let key = alert.incident_key();
        let fp = alert.fingerprint();
        let mut incident = Incident {
            id,
            fingerprint: key,
            title: alert.title(),
            status: IncidentStatus::Triggered,
            severity: alert.labels.get("severity").map(str::to_owned),
            service: service_of(&alert.labels),
            labels: alert.labels.clone(),
            policy: policy.name.clone(),
            alerts: AlertMap::new(),
            created_at: now,
            updated_at: now,
            acknowledged: None,
            resolved: None,
            escalation: EscalationState::starting(now),
            ack_expires_at: None,
            last_seen: now,
            seen_count: 1,
            version: 0,
            next_seq: 0,
            paged: RecipientSet::new(),
        };
        incident.alerts.insert(
            fp,
            Box::new(AlertEntry {
                alert: alert.clone(),
                first_seen: now,
                last_seen: now,
                count: 1,
            }),
        );
        let mut change = Change {
            alerts: vec![alert],
            ..Change::default()
        };
        incident.record(&mut change, now, EventKind::Triggered { alert: fp });
        (incident, change)
    }

    fn record(&mut self, change: &mut Change, now: Timestamp, kind: EventKind) {
        change.events.push(TimelineEvent {
            seq: self.next_seq,
            at: now,
            kind,
        });
        self.next_seq += 1;
        self.updated_at = now;
    }

    /// Marks a committed change: bumps the version. Called by whoever
    /// persists the change, once per non-empty change.
    pub fn bump_version(&mut self) {
        self.version += 1;
    }

    /// Applies one received alert that was routed to this incident.
    /// Whether `alert` is a re-send that changes no state: what
    /// [`Incident::apply_alert`] answers `Unchanged` with nothing to commit.
    /// Lets the actor apply it in place instead of on a copy.
    pub fn is_plain_repeat(&self, alert: &Alert) -> bool {
        if self.status == IncidentStatus::Resolved {
            return false;
        }
        match self.alerts.get(&alert.fingerprint()) {
            Some(entry) => entry.alert.same_state(alert),
            None => alert.status == AlertStatus::Resolved,
        }
    }

    pub fn apply_alert(
        &mut self,
        alert: Alert,
        now: Timestamp,
    ) -> Result<(IngestAction, Change), TransitionError> {
        if self.status == IncidentStatus::Resolved {
            return Err(TransitionError::AlreadyResolved(self.id));
        }
        let fp = alert.fingerprint();
        self.last_seen = now;
        self.seen_count += 1;
        let mut change = Change::default();
        let Some(entry) = self.alerts.get_mut(&fp) else {
            if alert.status == AlertStatus::Resolved {
                // Nothing held to resolve: a late or stray resolve.
                return Ok((IngestAction::Unchanged, change));
            }
            self.alerts.insert(
                fp,
                Box::new(AlertEntry {
                    alert: alert.clone(),
                    first_seen: now,
                    last_seen: now,
                    count: 1,
                }),
            );
            change.alerts.push(alert);
            self.record(&mut change, now, EventKind::AlertAdded { alert: fp });
            return Ok((IngestAction::Joined, change));
        };
        entry.last_seen = now;
        entry.count += 1;
        if entry.alert.same_state(&alert) {
            // A repeat: refresh what a re-send refreshes, in memory only.
            entry.alert.annotations = alert.annotations;
            entry.alert.ends_at = alert.ends_at;
            return Ok((IngestAction::Unchanged, change));
        }
        let new_status = alert.status;
        entry.alert = alert.clone();
        change.alerts.push(alert);
        match new_status {
            AlertStatus::Firing => {
                self.record(&mut change, now, EventKind::AlertRefired { alert: fp });
                Ok((IngestAction::Joined, change))
            }
            AlertStatus::Resolved => {
                self.record(&mut change, now, EventKind::AlertResolved { alert: fp });
                let all_resolved = self
                    .alerts
                    .values()
                    .all(|e| e.alert.status == AlertStatus::Resolved);
                if all_resolved {
                    self.close(
                        &mut change,
                        Attribution::new("alerts", Interface::Alert),
                        now,
                    );
                    Ok((IngestAction::Resolved, change))
                } else {
                    Ok((IngestAction::Joined, change))
                }
            }
        }
    }

    /// Acknowledges: escalation stops; an ack timeout, if the policy has
    /// one, arms the ack expiry. Acknowledging an acknowledged incident
    /// changes nothing.
    pub fn acknowledge(
        &mut self,
        by: Attribution,
        policy: &EscalationPolicy,
        now: Timestamp,
    ) -> Result<Change, TransitionError> {
        let mut change = Change::default();
        match self.status {
            IncidentStatus::Resolved => Err(TransitionError::AlreadyResolved(self.id)),
            IncidentStatus::Acknowledged => Ok(change),
            IncidentStatus::Triggered => {
                self.status = IncidentStatus::Acknowledged;
                self.escalation.halt();
                self.ack_expires_at = policy.ack_timeout.map(|t| now.plus(t));
                self.record(
                    &mut change,
                    now,
                    EventKind::Acknowledged {
                        by: by.by.clone(),
                        via: by.via,
                    },
                );
                self.acknowledged = Some((now, by));
                Ok(change)
            }
        }
    }

    /// Snoozes for `duration`: the incident is acknowledged until then, and
    /// when the snooze expires it is triggered again with its escalation
    /// restarted (the ack-expiry timer). Snoozing again moves the expiry.
    pub fn snooze(
        &mut self,
        by: Attribution,
        duration: std::time::Duration,
        now: Timestamp,
    ) -> Result<Change, TransitionError> {
        if self.status == IncidentStatus::Resolved {
            return Err(TransitionError::AlreadyResolved(self.id));
        }
        let until = now.plus(duration);
        let mut change = Change::default();
        self.status = IncidentStatus::Acknowledged;
        self.escalation.halt();
        self.ack_expires_at = Some(until);
        self.record(
            &mut change,
            now,
            EventKind::Snoozed {
                by: by.by.clone(),
                via: by.via,
                until,
            },
        );
        self.acknowledged = Some((now, by));
        Ok(change)
    }

    /// Escalates now: the next step fires at once. An acknowledged incident
    /// is triggered again (someone decided it needs more people); an
    /// exhausted policy starts over from its first step.
    pub fn escalate_now(
        &mut self,
        by: Attribution,
        now: Timestamp,
    ) -> Result<Change, TransitionError> {
        if self.status == IncidentStatus::Resolved {
            return Err(TransitionError::AlreadyResolved(self.id));
        }
        let mut change = Change::default();
        self.status = IncidentStatus::Triggered;
        self.acknowledged = None;
        self.ack_expires_at = None;
        if self.escalation.exhausted {
            self.escalation = super::policy::EscalationState::starting(now);
        } else {
            self.escalation.next_at = Some(now);
        }
        self.record(
            &mut change,
            now,
            EventKind::Escalated {
                by: by.by,
                via: by.via,
            },
        );
        Ok(change)
    }

    /// Adds a note to the timeline; allowed in every state, resolved included
    /// (post-incident notes).
    pub fn add_note(&mut self, by: Attribution, text: String, now: Timestamp) -> Change {
        let mut change = Change::default();
        self.record(
            &mut change,
            now,
            EventKind::NoteAdded {
                by: by.by,
                via: by.via,
                text,
            },
        );
        change
    }

    pub fn resolve(&mut self, by: Attribution, now: Timestamp) -> Result<Change, TransitionError> {
        if self.status == IncidentStatus::Resolved {
            return Err(TransitionError::AlreadyResolved(self.id));
        }
        let mut change = Change::default();
        self.close(&mut change, by, now);
        Ok(change)
    }

    fn close(&mut self, change: &mut Change, by: Attribution, now: Timestamp) {
        self.status = IncidentStatus::Resolved;
        self.escalation.halt();
        self.ack_expires_at = None;
        self.record(
            change,
            now,
            EventKind::Resolved {
                by: by.by.clone(),
                via: by.via,
            },
        );
        self.resolved = Some((now, by));
    }

    /// Fires the escalation step due at `now`, if any, with only the
    /// default directory (the `console` channel). See [`Self::fire_escalation_to`].
    pub fn fire_escalation(&mut self, policy: &EscalationPolicy, now: Timestamp) -> Change {
        self.fire_escalation_to(policy, now, &Directory::default())
    }

    /// Fires the escalation step due at `now`, if any, resolving its targets
    /// through `directory` at `now`. A step that reaches nobody is recorded
    /// (`nobody_to_notify`) and passed at once: the next step fires in the
    /// same change, and so on until someone is paged or the policy is
    /// exhausted (bounded: every firing moves the policy forward).
    pub fn fire_escalation_to(
        &mut self,
        policy: &EscalationPolicy,
        now: Timestamp,
        directory: &dyn ResolveTargets,
    ) -> Change {
        let mut change = Change::default();
        if self.status != IncidentStatus::Triggered {
            return change;
        }
        // Steps passed in a row because they reached nobody: after a whole
        // pass of them, stop and wait for the step's delay (someone may come
        // on call), rather than burn through every repeat at once.
        let mut passed = 0;
        while let Some(mut fired) = self.escalation.fire_due(policy, now) {
            for target in &fired.targets {
                for r in directory.recipients(target, now) {
                    // A person reached through two targets of one step
                    // (their schedule and their team) is paged once.
                    if !fired.recipients.iter().any(|(_, seen)| *seen == r) {
                        fired.recipients.push((target.clone(), r));
                    }
                }
            }
            let nobody = fired.recipients.is_empty();
            let event = if nobody {
                EventKind::NobodyToNotify {
                    step: fired.step,
                    repeat: fired.repeat,
                    targets: fired.targets.clone(),
                }
            } else {
                EventKind::Notified {
                    step: fired.step,
                    repeat: fired.repeat,
                    targets: fired.targets.clone(),
                }
            };
            self.record(&mut change, now, event);
            self.paged
                .extend(fired.recipients.iter().map(|(_, r)| r.clone()));
            let exhausted = self.escalation.exhausted;
            if exhausted {
                self.record(&mut change, now, EventKind::EscalationExhausted);
            }
            change.fired.push(fired);
            if !nobody || exhausted {
                break;
            }
            passed += 1;
            if passed >= policy.steps.len() {
                // The wait is the last step's delay, but never less than
                // `NOBODY_RETRY`: with a zero delay the timer would be due
                // at once and the next passes would follow in a burst.
                let floor = now.plus(NOBODY_RETRY);
                if self.escalation.next_at.is_some_and(|at| at < floor) {
                    self.escalation.next_at = Some(floor);
                    if let Some(last) = change.fired.last_mut() {
                        last.next_at = Some(floor);
                    }
                }
                break;
            }
            self.escalation.next_at = Some(now);
        }
        change
    }

    /// Expires an acknowledge whose timeout passed: the incident is
    /// triggered again and its escalation starts over, first step due now.
    pub fn expire_ack(&mut self, now: Timestamp) -> Change {
        let mut change = Change::default();
        match self.ack_expires_at {
            Some(at) if self.status == IncidentStatus::Acknowledged && at <= now => {
                self.status = IncidentStatus::Triggered;
                self.ack_expires_at = None;
                self.acknowledged = None;
                self.escalation = EscalationState::starting(now);
                self.record(&mut change, now, EventKind::AckExpired);
            }
            _ => {}
        }
        change
    }

    /// Resolves every firing alert whose `ends_at` has passed (Alertmanager's
    /// semantics: an alert that is no longer re-sent resolves when its
    /// `endsAt` passes), and the incident with them once none still fires.
    pub fn expire_alerts(&mut self, now: Timestamp) -> Change {
        let mut change = Change::default();
        if self.status == IncidentStatus::Resolved {
            return change;
        }
        let expired: Vec<Fingerprint> = self
            .alerts
            .iter()
            .filter(|(_, e)| {
                e.alert.status == AlertStatus::Firing && e.alert.ends_at.is_some_and(|t| t <= now)
            })
            .map(|(fp, _)| *fp)
            .collect();
        for fp in expired {
            if let Some(entry) = self.alerts.get_mut(&fp) {
                entry.alert.status = AlertStatus::Resolved;
            }
            self.record(&mut change, now, EventKind::AlertExpired { alert: fp });
        }
        if !change.is_empty()
            && self
                .alerts
                .values()
                .all(|e| e.alert.status == AlertStatus::Resolved)
        {
            self.close(
                &mut change,
                Attribution::new("alerts", Interface::Alert),
                now,
            );
        }
        change
    }

    /// The absolute deadlines the incident's actor must have armed.
    pub fn deadlines(&self) -> Deadlines {
        Deadlines {
            escalation: match self.status {
                IncidentStatus::Triggered => self.escalation.next_at,
                _ => None,
            },
            ack_expiry: match self.status {
                IncidentStatus::Acknowledged => self.ack_expires_at,
                _ => None,
            },
            alert_expiry: if self.status.is_open() {
                self.alerts
                    .values()
                    .filter(|e| e.alert.status == AlertStatus::Firing)
                    .filter_map(|e| e.alert.ends_at)
                    .min()
            } else {
                None
            },
        }
    }

    pub fn alert_count(&self) -> usize {
        self.alerts.len()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadlines {
    pub escalation: Option<Timestamp>,
    pub ack_expiry: Option<Timestamp>,
    /// The earliest `ends_at` of a firing alert.
    pub alert_expiry: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn alert(name: &str, status: AlertStatus) -> Alert {
        let mut labels = Labels::new();
        labels.insert("alertname".into(), name.into());
        labels.insert("service".into(), "chat".into());
        labels.insert("severity".into(), "critical".into());
        Alert {
            labels,
            annotations: Labels::new(),
            status,
            starts_at: Timestamp(0),
            ends_at: None,
            source: "native".into(),
            dedup_key: Some("group".into()),
            extra: None,
        }
    }

    fn open() -> Incident {
        Incident::open(
            IncidentId(1),
            alert("A", AlertStatus::Firing),
            &EscalationPolicy::default_console(),
            Timestamp(0),
        )
        .0
    }

    fn api(who: &str) -> Attribution {
        Attribution::new(who, Interface::Api)
    }

    /// `is_plain_repeat` says exactly when `apply_alert` changes nothing.
    #[test]
    fn a_plain_repeat_is_what_apply_alert_leaves_unchanged() {
        let mut annotated = alert("A", AlertStatus::Firing);
        annotated
            .annotations
            .insert("summary".into(), "now 5s".into());
        let cases = [
            ("identical re-send", alert("A", AlertStatus::Firing), true),
            ("new annotations only", annotated, true),
            (
                "a second alert joins",
                alert("B", AlertStatus::Firing),
                false,
            ),
            (
                "its alert resolves",
                alert("A", AlertStatus::Resolved),
                false,
            ),
            ("a stray resolve", alert("C", AlertStatus::Resolved), true),
        ];
        for (what, a, expected) in cases {
            let mut i = open();
            assert_eq!(i.is_plain_repeat(&a), expected, "{what}");
            let (action, change) = i.apply_alert(a, Timestamp(5)).unwrap();
            let unchanged = action == IngestAction::Unchanged && change.is_empty();
            assert_eq!(unchanged, expected, "{what}: {action:?}");
        }
        let mut resolved = open();
        resolved
            .apply_alert(alert("A", AlertStatus::Resolved), Timestamp(5))
            .unwrap();
        assert!(!resolved.is_plain_repeat(&alert("A", AlertStatus::Firing)));
    }

    #[test]
    fn open_records_triggered_and_takes_service_and_severity_from_labels() {
        let (i, change) = Incident::open(
            IncidentId(7),
            alert("A", AlertStatus::Firing),
            &EscalationPolicy::default_console(),
            Timestamp(10),
        );
        assert_eq!(i.status, IncidentStatus::Triggered);
        assert_eq!(i.service, "chat");
        assert_eq!(i.severity.as_deref(), Some("critical"));
        assert_eq!(i.deadlines().escalation, Some(Timestamp(10)));
        assert_eq!(change.events.len(), 1);
        assert_eq!(change.events[0].kind.name(), "triggered");
        assert_eq!(change.alerts.len(), 1);
    }

    #[test]
    fn repeat_changes_nothing_persistent() {
        let mut i = open();
        let (action, change) = i
            .apply_alert(alert("A", AlertStatus::Firing), Timestamp(5))
            .unwrap();
        assert_eq!(action, IngestAction::Unchanged);
        assert!(change.is_empty());
        assert_eq!(i.seen_count, 2);
        assert_eq!(i.last_seen, Timestamp(5));
        assert_eq!(i.alerts.values().next().unwrap().count, 2);
        assert_eq!(i.next_seq, 1, "no event for a repeat");
    }

    #[test]
    fn incident_resolves_only_when_every_alert_is_resolved() {
        let mut i = open();
        let (a, _) = i
            .apply_alert(alert("B", AlertStatus::Firing), Timestamp(1))
            .unwrap();
        assert_eq!(a, IngestAction::Joined);
        let (a, _) = i
            .apply_alert(alert("A", AlertStatus::Resolved), Timestamp(2))
            .unwrap();
        assert_eq!(a, IngestAction::Joined);
        assert_eq!(i.status, IncidentStatus::Triggered);
        let (a, c) = i
            .apply_alert(alert("B", AlertStatus::Resolved), Timestamp(3))
            .unwrap();
        assert_eq!(a, IngestAction::Resolved);
        assert_eq!(i.status, IncidentStatus::Resolved);
        assert_eq!(i.deadlines(), Deadlines::default());
        let names: Vec<_> = c.events.iter().map(|e| e.kind.name()).collect();
        assert_eq!(names, ["alert_resolved", "resolved"]);
        assert!(i
            .apply_alert(alert("A", AlertStatus::Firing), Timestamp(4))
            .is_err());
    }

    #[test]
    fn stray_resolve_is_unchanged_and_refire_is_recorded() {
        let mut i = open();
        let (a, c) = i
            .apply_alert(alert("Z", AlertStatus::Resolved), Timestamp(1))
            .unwrap();
        assert_eq!((a, c.is_empty()), (IngestAction::Unchanged, true));
        i.apply_alert(alert("B", AlertStatus::Firing), Timestamp(1))
            .unwrap();
        i.apply_alert(alert("B", AlertStatus::Resolved), Timestamp(2))
            .unwrap();
        let (a, c) = i
            .apply_alert(alert("B", AlertStatus::Firing), Timestamp(3))
            .unwrap();
        assert_eq!(a, IngestAction::Joined);
        assert_eq!(c.events[0].kind.name(), "alert_refired");
    }

    #[test]
    fn acknowledge_stops_escalation_and_is_idempotent() {
        let mut i = open();
        let c = i
            .acknowledge(
                api("alice"),
                &EscalationPolicy::default_console(),
                Timestamp(1),
            )
            .unwrap();
        assert_eq!(c.events.len(), 1);
        assert_eq!(i.status, IncidentStatus::Acknowledged);
        assert_eq!(i.deadlines(), Deadlines::default());
        let again = i
            .acknowledge(
                api("bob"),
                &EscalationPolicy::default_console(),
                Timestamp(2),
            )
            .unwrap();
        assert!(again.is_empty());
        assert_eq!(i.acknowledged.as_ref().unwrap().1.by, "alice");
    }

    #[test]
    fn acknowledging_a_resolved_incident_is_illegal() {
        let mut i = open();
        i.resolve(api("alice"), Timestamp(1)).unwrap();
        assert_eq!(
            i.acknowledge(
                api("bob"),
                &EscalationPolicy::default_console(),
                Timestamp(2)
            ),
            Err(TransitionError::AlreadyResolved(IncidentId(1)))
        );
        assert!(i.resolve(api("bob"), Timestamp(2)).is_err());
    }

    #[test]
    fn ack_timeout_retriggers_and_restarts_escalation() {
        let mut policy = EscalationPolicy::default_console();
        policy.ack_timeout = Some(Duration::from_secs(60));
        let mut i = open();
        i.fire_escalation(&policy, Timestamp(0));
        i.acknowledge(api("alice"), &policy, Timestamp(1000))
            .unwrap();
        assert_eq!(i.deadlines().ack_expiry, Some(Timestamp(61_000)));
        assert!(i.expire_ack(Timestamp(60_999)).is_empty(), "not yet");
        let c = i.expire_ack(Timestamp(61_000));
        assert_eq!(c.events[0].kind.name(), "ack_expired");
        assert_eq!(i.status, IncidentStatus::Triggered);
        assert_eq!(i.escalation.step, 0);
        assert_eq!(i.escalation.repeat, 0);
        assert_eq!(i.deadlines().escalation, Some(Timestamp(61_000)));
    }

    #[test]
    fn escalation_fires_only_while_triggered() {
        let policy = EscalationPolicy::default_console();
        let mut i = open();
        let c = i.fire_escalation(&policy, Timestamp(0));
        assert_eq!(c.fired.len(), 1);
        assert_eq!(c.events[0].kind.name(), "notified");
        i.acknowledge(api("a"), &policy, Timestamp(1)).unwrap();
        assert!(i
            .fire_escalation(&policy, Timestamp(10 * 60_000))
            .is_empty());
    }

    #[test]
    fn alerts_expire_at_their_ends_at_unless_extended() {
        let mut a = alert("A", AlertStatus::Firing);
        a.ends_at = Some(Timestamp(100));
        let policy = EscalationPolicy::default_console();
        let (mut i, _) = Incident::open(IncidentId(1), a.clone(), &policy, Timestamp(0));
        let mut b = alert("B", AlertStatus::Firing);
        b.ends_at = Some(Timestamp(300));
        i.apply_alert(b, Timestamp(1)).unwrap();
        assert_eq!(i.deadlines().alert_expiry, Some(Timestamp(100)));
        // A re-send extends A: a repeat, in memory, that moves the deadline.
        a.ends_at = Some(Timestamp(500));
        let (action, change) = i.apply_alert(a, Timestamp(50)).unwrap();
        assert_eq!((action, change.is_empty()), (IngestAction::Unchanged, true));
        assert_eq!(i.deadlines().alert_expiry, Some(Timestamp(300)));
        assert!(i.expire_alerts(Timestamp(299)).is_empty());
        let c = i.expire_alerts(Timestamp(300));
        let names: Vec<_> = c.events.iter().map(|e| e.kind.name()).collect();
        assert_eq!(names, ["alert_expired"]);
        assert_eq!(i.status, IncidentStatus::Triggered, "A still fires");
        let c = i.expire_alerts(Timestamp(500));
        let names: Vec<_> = c.events.iter().map(|e| e.kind.name()).collect();
        assert_eq!(names, ["alert_expired", "resolved"]);
        assert_eq!(i.status, IncidentStatus::Resolved);
        assert_eq!(i.deadlines(), Deadlines::default());
    }

    #[test]
    fn snooze_acknowledges_until_then_retriggers() {
        let policy = EscalationPolicy::default_console();
        let mut i = open();
        i.fire_escalation(&policy, Timestamp(0));
        let c = i
            .snooze(api("alice"), Duration::from_secs(1800), Timestamp(1000))
            .unwrap();
        assert_eq!(c.events[0].kind.name(), "snoozed");
        assert_eq!(i.status, IncidentStatus::Acknowledged);
        assert_eq!(i.deadlines().ack_expiry, Some(Timestamp(1_801_000)));
        assert_eq!(i.deadlines().escalation, None);
        i.expire_ack(Timestamp(1_801_000));
        assert_eq!(i.status, IncidentStatus::Triggered);
        assert_eq!(i.deadlines().escalation, Some(Timestamp(1_801_000)));
        i.resolve(api("a"), Timestamp(2_000_000)).unwrap();
        assert!(i
            .snooze(api("a"), Duration::from_secs(1), Timestamp(2_000_001))
            .is_err());
    }

    #[test]
    fn escalate_now_fires_the_next_step_at_once() {
        let policy = EscalationPolicy::default_console();
        let mut i = open();
        i.fire_escalation(&policy, Timestamp(0));
        assert_eq!(i.deadlines().escalation, Some(Timestamp(300_000)));
        i.acknowledge(api("a"), &policy, Timestamp(10)).unwrap();
        let c = i.escalate_now(api("boss"), Timestamp(20)).unwrap();
        assert_eq!(c.events[0].kind.name(), "escalated");
        assert_eq!(i.status, IncidentStatus::Triggered);
        assert_eq!(i.deadlines().escalation, Some(Timestamp(20)));
        let fired = i.fire_escalation(&policy, Timestamp(20));
        assert_eq!(
            fired.fired[0].repeat, 1,
            "the next step, not the first again"
        );
    }

    #[test]
    fn notes_are_allowed_in_every_state() {
        let mut i = open();
        i.resolve(api("a"), Timestamp(1)).unwrap();
        let c = i.add_note(api("bob"), "root cause: bad deploy".into(), Timestamp(2));
        assert_eq!(c.events[0].kind.name(), "note_added");
        assert_eq!(i.status, IncidentStatus::Resolved);
    }

    #[test]
    fn event_json_shape() {
        let e = TimelineEvent {
            seq: 3,
            at: Timestamp(0),
            kind: EventKind::Acknowledged {
                by: "alice".into(),
                via: Interface::Api,
            },
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"seq":3,"at":"1970-01-01T00:00:00.000Z","type":"acknowledged","by":"alice","via":"api"})
        );
    }
}
