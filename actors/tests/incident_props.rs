//! Property tests of the incident state machine (`domain::incident`,
//! `domain::policy`): random escalation policies, random sequences of
//! operations (alerts firing and resolving over a few fingerprints, with and
//! without `ends_at`; acknowledge, snooze, escalate, resolve, note; the three
//! timers; time moving forward by random amounts), applied the way the
//! incident actor applies them (a command is followed by the escalation
//! step it made due, in the same change; an empty change is kept without a
//! commit; every other change bumps the version).
//!
//! Two drivers: `any_sequence…` fires the timers whenever the sequence says
//! (early, late, twice), `timers_fired_on_time…` fires every deadline the
//! moment it is due, as the actor's timers do. After every step the
//! incident is checked against a small reference model (status, alert
//! states, ack expiry, steps fired since the escalation last started) and
//! against these invariants (`Sim::check`, `Sim::keep`, `Sim::check_fired`):
//!
//! * the status goes with its fields: triggered has no `acknowledged` and
//!   no `resolved`, acknowledged has `acknowledged`, resolved has
//!   `resolved`; `ack_expires_at` only while acknowledged; a pending step
//!   only while triggered, and then exactly when not exhausted;
//! * the escalation position lies inside the policy and counts the steps
//!   fired since it started; exhausted ⇔ every step of every pass fired;
//!   a fired step's next deadline is between now and now + its delay
//!   (late timers never page in a burst);
//! * an open incident has a firing alert; one resolved by its alerts has
//!   none; a resolved incident refuses everything but a note
//!   (`TransitionError`, unchanged);
//! * events are numbered on from `next_seq`, at now, never back in time;
//!   one version per non-empty change; an empty change changes nothing
//!   (for an alert: nothing but what a repeat refreshes in memory);
//! * `is_plain_repeat` ⇔ `apply_alert` answers `Unchanged` with nothing to
//!   commit, and the in-place fast path equals the apply on a copy;
//! * the snapshot codec gives back the same incident and deadlines;
//! * timers fired on time: every due deadline changes something (none
//!   would fire in a loop), the firings at one instant end, and afterwards
//!   every deadline lies after the last event.

use std::collections::BTreeMap;
use std::time::Duration;

use incident_actors::codec::{decode_incident, encode_incident};
use incident_actors::domain::{
    Alert, AlertStatus, Attribution, Change, Directory, EscalationPolicy, EscalationStep,
    EventKind, Fingerprint, Incident, IncidentId, IncidentStatus, IngestAction, Interface, Labels,
    Recipient, Target, TimelineEvent, TransitionError,
};
use incident_actors::messages::IncidentCommand;
use incident_actors::time::Timestamp;
use proptest::prelude::*;

const T0: Timestamp = Timestamp(1_800_000_000_000);
const SEC: i64 = 1_000;
const MIN: i64 = 60 * SEC;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------- inputs

fn delay() -> impl Strategy<Value = Duration> {
    prop::sample::select(vec![0, SEC, MIN, 5 * MIN, 30 * MIN])
        .prop_map(|ms| Duration::from_millis(ms as u64))
}

/// `console` reaches the console; `void` is a channel nobody configured, so
/// a step of only `void` reaches nobody (and is passed at once).
fn targets() -> impl Strategy<Value = Vec<Target>> {
    prop::sample::select(vec![
        vec!["console"],
        vec!["void"],
        vec!["void", "console"],
        vec!["console", "console"],
    ])
    .prop_map(|names| {
        names
            .into_iter()
            .map(|n| Target::Channel(n.to_string()))
            .collect()
    })
}

/// Policies as config validation lets them through.
fn policy() -> impl Strategy<Value = EscalationPolicy> {
    (
        prop::collection::vec(
            (delay(), targets()).prop_map(|(delay, targets)| EscalationStep { delay, targets }),
            1..=3,
        ),
        0u32..=3,
        prop::option::of(prop::sample::select(vec![0, MIN, 30 * MIN])),
    )
        .prop_map(|(steps, repeat, ack)| EscalationPolicy {
            name: "p".into(),
            steps,
            repeat,
            ack_timeout: ack.map(|ms| Duration::from_millis(ms as u64)),
        })
        .prop_filter("valid policy", |p| p.validate().is_ok())
}

#[derive(Clone, Debug)]
enum Op {
    /// Time moves forward by this many ms.
    Advance(i64),
    /// Alert `which` (0..3) arrives firing or resolved; `ends_in` sets
    /// `ends_at` relative to now (negative: already past); `value` is a
    /// changing annotation (a repeat's refreshed value).
    Alert {
        which: usize,
        firing: bool,
        ends_in: Option<i64>,
        value: u8,
    },
    Acknowledge,
    Snooze(Duration),
    Escalate,
    Resolve,
    Note,
    FireEscalation,
    ExpireAck,
    ExpireAlerts,
}

fn op() -> impl Strategy<Value = Op> {
    let advance = prop_oneof![
        Just(0i64),
        1i64..2 * SEC,
        prop::sample::select(vec![SEC, MIN, 5 * MIN, 30 * MIN]),
        0i64..3 * 60 * MIN,
    ];
    prop_oneof![
        6 => advance.prop_map(Op::Advance),
        10 => (
            0usize..3,
            prop::bool::weighted(0.7),
            prop::option::weighted(
                0.3,
                prop_oneof![-MIN..0i64, 0i64..MIN, Just(0i64), MIN..60 * MIN]
            ),
            0u8..3,
        )
            .prop_map(|(which, firing, ends_in, value)| Op::Alert {
                which,
                firing,
                ends_in,
                value,
            }),
        3 => Just(Op::Acknowledge),
        2 => prop::sample::select(vec![0, SEC, 30 * MIN, 4 * 60 * MIN])
            .prop_map(|ms| Op::Snooze(Duration::from_millis(ms as u64))),
        2 => Just(Op::Escalate),
        1 => Just(Op::Resolve),
        1 => Just(Op::Note),
        3 => Just(Op::FireEscalation),
        2 => Just(Op::ExpireAck),
        2 => Just(Op::ExpireAlerts),
    ]
}

fn alert_of(
    which: usize,
    firing: bool,
    ends_at: Option<Timestamp>,
    value: u8,
    now: Timestamp,
) -> Alert {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), format!("A{which}"));
    labels.insert("service".into(), "chat".into());
    let mut annotations = Labels::new();
    annotations.insert("value".into(), value.to_string());
    Alert {
        labels,
        annotations,
        status: if firing {
            AlertStatus::Firing
        } else {
            AlertStatus::Resolved
        },
        starts_at: now,
        ends_at,
        source: "native".into(),
        dedup_key: Some("group".into()),
        extra: None,
    }
}

fn directory() -> Directory {
    Directory::default()
}

fn by() -> Attribution {
    Attribution::new("alice", Interface::Api)
}

// ---------------------------------------------------------------- model

/// What the incident should be, as plainly as it can be said.
#[derive(Clone, Debug)]
struct Model {
    status: IncidentStatus,
    /// Alert fingerprint → (firing, ends_at).
    alerts: BTreeMap<Fingerprint, (bool, Option<Timestamp>)>,
    ack_until: Option<Timestamp>,
    /// Steps fired since the escalation last (re)started.
    fired: usize,
    /// Steps in a whole escalation: steps × (repeat + 1).
    total: usize,
}

impl Model {
    fn exhausted(&self) -> bool {
        self.fired == self.total
    }
}

// ---------------------------------------------------------------- driver

struct Sim {
    policy: EscalationPolicy,
    directory: Directory,
    incident: Incident,
    model: Model,
    timeline: Vec<TimelineEvent>,
    now: Timestamp,
    /// Non-empty changes so far (each one a commit, each one a version).
    commits: u64,
    /// Alert deliveries accepted, and the stray resolves among them.
    deliveries: u64,
    strays: u64,
    last_delivery: Timestamp,
}

/// Which part of an incident an empty change may still touch.
#[derive(Clone, Copy, PartialEq)]
enum EmptyMay {
    /// Nothing at all.
    Nothing,
    /// What a repeat refreshes in memory: counters, `last_seen`, the held
    /// alert's annotations and `ends_at`.
    RepeatFields,
}

/// The incident without what a repeat refreshes.
fn without_repeat_fields(i: &Incident) -> Incident {
    let mut i = i.clone();
    i.last_seen = Timestamp(0);
    i.seen_count = 0;
    for e in i.alerts.values_mut() {
        e.last_seen = Timestamp(0);
        e.count = 0;
        e.alert.annotations.clear();
        e.alert.ends_at = None;
    }
    i
}

impl Sim {
    fn open(policy: EscalationPolicy) -> Result<Self, TestCaseError> {
        let now = T0;
        let directory = directory();
        let first = alert_of(0, true, None, 0, now);
        let fp = first.fingerprint();
        let (mut incident, mut change) = Incident::open(IncidentId(1), first, &policy, now);
        // The creation's commit carries the first step (the actor does this).
        let fired = incident.fire_escalation_to(&policy, now, &directory);
        change.merge(fired);
        prop_assert!(!change.is_empty());
        incident.bump_version();
        let total = policy.steps.len() * (policy.repeat as usize + 1);
        let mut sim = Sim {
            model: Model {
                status: IncidentStatus::Triggered,
                alerts: BTreeMap::from([(fp, (true, None))]),
                ack_until: None,
                fired: 0,
                total,
            },
            policy,
            directory,
            timeline: change.events.clone(),
            incident,
            now,
            commits: 1,
            deliveries: 1,
            strays: 0,
            last_delivery: now,
        };
        prop_assert_eq!(sim.timeline[0].seq, 0);
        prop_assert_eq!(sim.timeline[0].kind.name(), "triggered");
        sim.check_fired(&change, now)?;
        sim.check()?;
        Ok(sim)
    }

    /// Keeps `next` after `change` as the actor would: an empty change is
    /// kept as it is (nothing committed), any other is committed and bumps
    /// the version. Checks what a change must look like.
    fn keep(
        &mut self,
        mut next: Incident,
        change: &Change,
        empty_may: EmptyMay,
    ) -> Result<(), TestCaseError> {
        let before = &self.incident;
        if change.is_empty() {
            match empty_may {
                EmptyMay::Nothing => {
                    prop_assert_eq!(&next, before, "an empty change changed state")
                }
                EmptyMay::RepeatFields => prop_assert_eq!(
                    without_repeat_fields(&next),
                    without_repeat_fields(before),
                    "an empty change changed more than a repeat refreshes"
                ),
            }
        } else {
            next.bump_version();
            self.commits += 1;
            // Events are numbered on from the incident's counter, at now.
            for (k, e) in change.events.iter().enumerate() {
                prop_assert_eq!(e.seq, before.next_seq + k as u32);
                prop_assert_eq!(e.at, self.now);
            }
            prop_assert_eq!(next.next_seq, before.next_seq + change.events.len() as u32);
            prop_assert_eq!(next.version, before.version + 1);
            // Every alert row is an alert the incident now holds as recorded.
            for a in &change.alerts {
                let held = next.alerts.get(&a.fingerprint());
                prop_assert!(held.is_some_and(|e| e.alert.same_state(a)));
            }
            self.timeline.extend(change.events.iter().cloned());
        }
        self.incident = next;
        Ok(())
    }

    /// What an escalation firing must look like: the steps fired match the
    /// events, the model's position moves on, and the next deadline is
    /// never in the past nor further than the fired step's delay.
    fn check_fired(&mut self, change: &Change, now: Timestamp) -> Result<(), TestCaseError> {
        let pages = change
            .events
            .iter()
            .filter(|e| {
                matches!(
                    e.kind,
                    EventKind::Notified { .. } | EventKind::NobodyToNotify { .. }
                )
            })
            .count();
        prop_assert_eq!(pages, change.fired.len());
        let exhausted_events = change
            .events
            .iter()
            .filter(|e| e.kind == EventKind::EscalationExhausted)
            .count();
        for f in &change.fired {
            // The position the model expects this firing to be.
            let steps = self.policy.steps.len();
            prop_assert!(!self.model.exhausted(), "a step fired after exhaustion");
            prop_assert_eq!(f.step, self.model.fired % steps);
            prop_assert_eq!(f.repeat as usize, self.model.fired / steps);
            prop_assert_eq!(&f.targets, &self.policy.steps[f.step].targets);
            // Console is reached through `console`; `void` reaches nobody.
            let reaches = f
                .targets
                .iter()
                .any(|t| *t == Target::Channel("console".into()));
            let expected: Vec<Recipient> = if reaches {
                vec![Recipient::Console]
            } else {
                vec![]
            };
            let got: Vec<Recipient> = f.recipients.iter().map(|(_, r)| r.clone()).collect();
            prop_assert_eq!(got, expected, "recipients deduplicated, console once");
            self.model.fired += 1;
        }
        prop_assert_eq!(
            exhausted_events,
            usize::from(!change.fired.is_empty() && self.model.exhausted())
        );
        if let Some(last) = change.fired.last() {
            prop_assert_eq!(self.incident.escalation.next_at, last.next_at);
            if let Some(next) = last.next_at {
                let delay = self.policy.steps[last.step].delay;
                // A whole pass that reached nobody waits at least
                // NOBODY_RETRY, however short the last step's delay.
                let whole_pass_nobody = change.fired.len() == self.policy.steps.len()
                    && change.fired.iter().all(|f| f.recipients.is_empty());
                let wait = if whole_pass_nobody {
                    delay.max(incident_actors::domain::incident::NOBODY_RETRY)
                } else {
                    delay
                };
                prop_assert!(
                    next >= now && next <= now.plus(wait),
                    "next step at {next:?}, fired at {now:?} with delay {delay:?}"
                );
            }
            // A run of nobody-steps stops after a whole pass at most.
            prop_assert!(change.fired.len() <= self.policy.steps.len());
            for f in &change.fired[..change.fired.len() - 1] {
                prop_assert!(
                    f.recipients.is_empty(),
                    "only a step reaching nobody is passed"
                );
            }
        }
        Ok(())
    }

    fn fire_escalation(&mut self) -> Result<Change, TestCaseError> {
        let mut next = self.incident.clone();
        let change = next.fire_escalation_to(&self.policy, self.now, &self.directory);
        if self.model.status != IncidentStatus::Triggered {
            prop_assert!(
                change.is_empty(),
                "escalation fired while {:?}",
                self.model.status
            );
        }
        self.keep(next, &change, EmptyMay::Nothing)?;
        self.check_fired(&change, self.now)?;
        Ok(change)
    }

    fn expire_ack(&mut self) -> Result<Change, TestCaseError> {
        let mut next = self.incident.clone();
        let change = next.expire_ack(self.now);
        let due = self.model.status == IncidentStatus::Acknowledged
            && self.model.ack_until.is_some_and(|t| t <= self.now);
        prop_assert_eq!(!change.is_empty(), due);
        if due {
            self.model.status = IncidentStatus::Triggered;
            self.model.ack_until = None;
            self.model.fired = 0;
            let names: Vec<_> = change.events.iter().map(|e| e.kind.name()).collect();
            prop_assert_eq!(names, vec!["ack_expired"]);
            prop_assert_eq!(next.escalation.next_at, Some(self.now));
        }
        self.keep(next, &change, EmptyMay::Nothing)?;
        Ok(change)
    }

    fn expire_alerts(&mut self) -> Result<Change, TestCaseError> {
        let mut next = self.incident.clone();
        let change = next.expire_alerts(self.now);
        let mut expired = 0;
        if self.model.status.is_open() {
            for (firing, ends_at) in self.model.alerts.values_mut() {
                if *firing && ends_at.is_some_and(|t| t <= self.now) {
                    *firing = false;
                    expired += 1;
                }
            }
            if expired > 0 && self.model.alerts.values().all(|(f, _)| !f) {
                self.model.status = IncidentStatus::Resolved;
                self.model.ack_until = None;
            }
        }
        let names: Vec<_> = change.events.iter().map(|e| e.kind.name()).collect();
        prop_assert_eq!(
            names.iter().filter(|n| **n == "alert_expired").count(),
            expired
        );
        prop_assert_eq!(
            names.contains(&"resolved"),
            expired > 0 && self.model.status == IncidentStatus::Resolved
        );
        self.keep(next, &change, EmptyMay::Nothing)?;
        Ok(change)
    }

    fn alert(
        &mut self,
        which: usize,
        firing: bool,
        ends_in: Option<i64>,
        value: u8,
    ) -> Result<(), TestCaseError> {
        let ends_at = ends_in.map(|d| Timestamp(self.now.0 + d));
        let a = alert_of(which, firing, ends_at, value, self.now);
        let fp = a.fingerprint();
        // The actor's fast path: a plain repeat is applied in place.
        let plain = self.incident.is_plain_repeat(&a);
        let mut next = self.incident.clone();
        let result = next.apply_alert(a, self.now);
        // is_plain_repeat ⇔ apply_alert answers Unchanged with nothing to commit.
        let unchanged = matches!(&result, Ok((IngestAction::Unchanged, c)) if c.is_empty());
        prop_assert_eq!(
            plain,
            unchanged,
            "is_plain_repeat disagrees with apply_alert: {:?}",
            result
        );
        if plain {
            let mut in_place = self.incident.clone();
            let applied =
                in_place.apply_alert(alert_of(which, firing, ends_at, value, self.now), self.now);
            prop_assert!(matches!(applied, Ok((IngestAction::Unchanged, _))));
            prop_assert_eq!(&in_place, &next, "the fast path and the slow path differ");
        }
        // The model's answer.
        let expected = if self.model.status == IncidentStatus::Resolved {
            None
        } else {
            Some(match self.model.alerts.get_mut(&fp) {
                None if !firing => {
                    self.strays += 1;
                    IngestAction::Unchanged
                }
                None => {
                    self.model.alerts.insert(fp, (true, ends_at));
                    IngestAction::Joined
                }
                Some(held) if held.0 == firing => {
                    held.1 = ends_at;
                    IngestAction::Unchanged
                }
                Some(held) => {
                    *held = (firing, ends_at);
                    if !firing && self.model.alerts.values().all(|(f, _)| !f) {
                        self.model.status = IncidentStatus::Resolved;
                        self.model.ack_until = None;
                        IngestAction::Resolved
                    } else {
                        IngestAction::Joined
                    }
                }
            })
        };
        match (result, expected) {
            (Err(e), None) => {
                prop_assert_eq!(e, TransitionError::AlreadyResolved(IncidentId(1)));
                prop_assert_eq!(
                    &next,
                    &self.incident,
                    "a refused alert changed the incident"
                );
            }
            (Ok((action, change)), Some(want)) => {
                prop_assert_eq!(action, want);
                prop_assert_eq!(change.is_empty(), action == IngestAction::Unchanged);
                prop_assert!(change.fired.is_empty(), "an alert fires no step by itself");
                self.deliveries += 1;
                self.last_delivery = self.now;
                self.keep(next, &change, EmptyMay::RepeatFields)?;
            }
            (got, want) => prop_assert!(false, "apply_alert answered {got:?}, the model {want:?}"),
        }
        Ok(())
    }

    /// An operator's command, followed (in the same change) by the step it
    /// made due, as the actor runs it.
    fn command(&mut self, command: IncidentCommand) -> Result<(), TestCaseError> {
        let mut next = self.incident.clone();
        let name = match &command {
            IncidentCommand::Acknowledge(_) => "acknowledged",
            IncidentCommand::Resolve(_) => "resolved",
            IncidentCommand::Snooze(..) => "snoozed",
            IncidentCommand::Escalate(_) => "escalated",
            IncidentCommand::Note(..) => "note_added",
        };
        // The model's answer: `None` refused, `Some(changes)`.
        let was = self.model.status;
        let mut model = self.model.clone();
        let expect_change = match (&command, was) {
            (IncidentCommand::Note(..), _) => Some(true),
            (_, IncidentStatus::Resolved) => None,
            (IncidentCommand::Acknowledge(_), IncidentStatus::Acknowledged) => Some(false),
            (IncidentCommand::Acknowledge(_), _) => {
                model.status = IncidentStatus::Acknowledged;
                model.ack_until = self.policy.ack_timeout.map(|t| self.now.plus(t));
                Some(true)
            }
            (IncidentCommand::Snooze(_, d), _) => {
                model.status = IncidentStatus::Acknowledged;
                model.ack_until = Some(self.now.plus(*d));
                Some(true)
            }
            (IncidentCommand::Escalate(_), _) => {
                model.status = IncidentStatus::Triggered;
                model.ack_until = None;
                if model.exhausted() {
                    model.fired = 0;
                }
                Some(true)
            }
            (IncidentCommand::Resolve(_), _) => {
                model.status = IncidentStatus::Resolved;
                model.ack_until = None;
                Some(true)
            }
        };
        let result = command.apply(&mut next, &self.policy, self.now);
        match (result, expect_change) {
            (Err(e), None) => {
                prop_assert_eq!(e, TransitionError::AlreadyResolved(IncidentId(1)));
                prop_assert_eq!(
                    &next,
                    &self.incident,
                    "a refused command changed the incident"
                );
            }
            (Ok(mut change), Some(changes)) => {
                prop_assert_eq!(!change.is_empty(), changes);
                if changes {
                    prop_assert_eq!(change.events.len(), 1);
                    prop_assert_eq!(change.events[0].kind.name(), name);
                }
                self.model = model;
                let command_events = change.events.len();
                change.merge(next.fire_escalation_to(&self.policy, self.now, &self.directory));
                if self.model.status != IncidentStatus::Triggered {
                    prop_assert_eq!(change.events.len(), command_events);
                }
                if name == "escalated" {
                    prop_assert!(!change.fired.is_empty(), "escalate-now fired nothing");
                }
                self.keep(next, &change, EmptyMay::Nothing)?;
                self.check_fired(&change, self.now)?;
            }
            (got, want) => {
                prop_assert!(
                    false,
                    "{name}: the command answered {got:?}, the model {want:?}"
                )
            }
        }
        Ok(())
    }

    /// Fires every deadline already due, in the order the actor's timers
    /// would, until none is. Each due deadline must change something (one
    /// that did not would be re-armed in the past and fire forever), and
    /// the run must end.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        let bound = 2 * self.model.total + self.model.alerts.len() + 4;
        for _ in 0..bound {
            let d = self.incident.deadlines();
            let now = self.now;
            let due = |t: Option<Timestamp>| t.is_some_and(|t| t <= now);
            let change = if due(d.escalation) {
                self.fire_escalation()?
            } else if due(d.ack_expiry) {
                self.expire_ack()?
            } else if due(d.alert_expiry) {
                self.expire_alerts()?
            } else {
                return Ok(());
            };
            prop_assert!(!change.is_empty(), "a due deadline fired nothing: {d:?}");
            self.check()?;
        }
        prop_assert!(
            false,
            "timers still due after {bound} firings at {:?}",
            self.now
        );
        Ok(())
    }

    /// Moves time to `now + by`; with `on_time`, every deadline on the way
    /// fires at its own instant first.
    fn advance(&mut self, by: i64, on_time: bool) -> Result<(), TestCaseError> {
        let target = Timestamp(self.now.0 + by);
        if on_time {
            loop {
                let d = self.incident.deadlines();
                let next = [d.escalation, d.ack_expiry, d.alert_expiry]
                    .into_iter()
                    .flatten()
                    .min();
                match next {
                    Some(at) if at <= target => {
                        self.now = self.now.max(at);
                        self.drain()?;
                    }
                    _ => break,
                }
            }
        }
        self.now = target;
        Ok(())
    }

    fn step(&mut self, op: Op, on_time: bool) -> Result<(), TestCaseError> {
        match op {
            Op::Advance(ms) => self.advance(ms, on_time)?,
            Op::Alert {
                which,
                firing,
                ends_in,
                value,
            } => self.alert(which, firing, ends_in, value)?,
            Op::Acknowledge => self.command(IncidentCommand::Acknowledge(by()))?,
            Op::Snooze(d) => self.command(IncidentCommand::Snooze(by(), d))?,
            Op::Escalate => self.command(IncidentCommand::Escalate(by()))?,
            Op::Resolve => self.command(IncidentCommand::Resolve(by()))?,
            Op::Note => self.command(IncidentCommand::Note(by(), "n".into()))?,
            Op::FireEscalation => {
                self.fire_escalation()?;
            }
            Op::ExpireAck => {
                self.expire_ack()?;
            }
            Op::ExpireAlerts => {
                self.expire_alerts()?;
            }
        }
        self.check()?;
        if on_time {
            self.drain()?;
            // Nothing is left overdue: every deadline lies ahead of the
            // last thing that happened.
            let d = self.incident.deadlines();
            for t in [d.escalation, d.ack_expiry, d.alert_expiry]
                .into_iter()
                .flatten()
            {
                prop_assert!(t > self.now, "deadline {t:?} overdue at {:?}", self.now);
                prop_assert!(t > self.incident.updated_at);
            }
        }
        Ok(())
    }

    /// The invariants, after every step.
    fn check(&self) -> Result<(), TestCaseError> {
        let i = &self.incident;
        let m = &self.model;
        let p = &self.policy;

        // The reference model.
        prop_assert_eq!(i.status, m.status, "status differs from the model");
        let held: BTreeMap<Fingerprint, (bool, Option<Timestamp>)> = i
            .alerts
            .iter()
            .map(|(fp, e)| {
                (
                    *fp,
                    (e.alert.status == AlertStatus::Firing, e.alert.ends_at),
                )
            })
            .collect();
        prop_assert_eq!(&held, &m.alerts, "alerts differ from the model");
        prop_assert_eq!(i.ack_expires_at, m.ack_until);

        // Status and the fields that go with it.
        match i.status {
            IncidentStatus::Triggered => {
                prop_assert!(i.acknowledged.is_none());
                prop_assert!(i.resolved.is_none());
            }
            IncidentStatus::Acknowledged => {
                prop_assert!(i.acknowledged.is_some());
                prop_assert!(i.resolved.is_none());
            }
            IncidentStatus::Resolved => {
                prop_assert!(i.resolved.is_some());
                prop_assert!(i.ack_expires_at.is_none());
            }
        }
        if i.ack_expires_at.is_some() {
            prop_assert_eq!(i.status, IncidentStatus::Acknowledged);
        }

        // Escalation state within the policy; exhausted ⇔ every pass done.
        let e = &i.escalation;
        prop_assert!(
            e.step < p.steps.len(),
            "step {} of {}",
            e.step,
            p.steps.len()
        );
        prop_assert!(e.repeat <= p.repeat);
        prop_assert_eq!(
            e.exhausted,
            m.exhausted(),
            "exhausted after {} of {} steps",
            m.fired,
            m.total
        );
        if e.exhausted {
            prop_assert_eq!((e.step, e.repeat), (p.steps.len() - 1, p.repeat));
            prop_assert!(e.next_at.is_none());
        } else {
            prop_assert_eq!(e.step, m.fired % p.steps.len());
            prop_assert_eq!(e.repeat as usize, m.fired / p.steps.len());
        }
        match i.status {
            IncidentStatus::Triggered => prop_assert_eq!(e.next_at.is_none(), e.exhausted),
            _ => prop_assert!(e.next_at.is_none(), "a pending step while {:?}", i.status),
        }

        // The deadlines the actor arms follow the status.
        let d = i.deadlines();
        prop_assert_eq!(
            d.escalation.is_some(),
            i.status == IncidentStatus::Triggered && !e.exhausted
        );
        prop_assert_eq!(d.ack_expiry, i.ack_expires_at);
        let firing_ends = i
            .alerts
            .values()
            .filter(|e| e.alert.status == AlertStatus::Firing)
            .filter_map(|e| e.alert.ends_at)
            .min();
        prop_assert_eq!(
            d.alert_expiry,
            if i.status.is_open() {
                firing_ends
            } else {
                None
            }
        );

        // Alert-driven resolution: open ⇒ something still fires; resolved
        // by the alerts ⇒ none does.
        let any_firing = i
            .alerts
            .values()
            .any(|e| e.alert.status == AlertStatus::Firing);
        if i.status.is_open() {
            prop_assert!(any_firing, "open with every alert resolved");
        }
        if let Some((_, by)) = &i.resolved {
            if by.via == Interface::Alert {
                prop_assert!(!any_firing, "resolved by the alerts while one fires");
            }
        }

        // Timeline: numbered 0.., times never go back, updated_at is the last.
        prop_assert_eq!(i.next_seq as usize, self.timeline.len());
        for (k, ev) in self.timeline.iter().enumerate() {
            prop_assert_eq!(ev.seq as usize, k);
        }
        prop_assert!(self.timeline.windows(2).all(|w| w[0].at <= w[1].at));
        prop_assert_eq!(Some(i.updated_at), self.timeline.last().map(|e| e.at));
        prop_assert_eq!(i.created_at, T0);
        let resolved_events = self
            .timeline
            .iter()
            .filter(|e| matches!(e.kind, EventKind::Resolved { .. }))
            .count();
        prop_assert_eq!(
            resolved_events,
            usize::from(i.status == IncidentStatus::Resolved)
        );
        if let Some(last) = self
            .timeline
            .iter()
            .rev()
            .find(|e| !matches!(e.kind, EventKind::NoteAdded { .. }))
        {
            if i.status == IncidentStatus::Resolved {
                prop_assert_eq!(last.kind.name(), "resolved", "a transition after resolved");
            }
        }

        // One version per commit; repeat counters add up.
        prop_assert_eq!(i.version, self.commits);
        prop_assert_eq!(i.seen_count, self.deliveries);
        let counted: u64 = i.alerts.values().map(|e| e.count).sum();
        prop_assert_eq!(counted + self.strays, i.seen_count);
        prop_assert_eq!(i.last_seen, self.last_delivery);

        // Everyone paged is remembered.
        let notified = self
            .timeline
            .iter()
            .any(|e| matches!(e.kind, EventKind::Notified { .. }));
        let paged: Vec<_> = i.paged.iter().cloned().collect();
        prop_assert_eq!(
            paged,
            if notified {
                vec![Recipient::Console]
            } else {
                vec![]
            }
        );

        // A snapshot brings back exactly this incident and its timers.
        let back = decode_incident(&encode_incident(i).unwrap()).unwrap();
        prop_assert_eq!(&back, i);
        prop_assert_eq!(back.deadlines(), d);
        Ok(())
    }
}

fn run(policy: EscalationPolicy, ops: Vec<Op>, on_time: bool) -> Result<(), TestCaseError> {
    let mut sim = Sim::open(policy)?;
    if on_time {
        sim.drain()?;
    }
    for op in ops {
        let resolved = sim.incident.status == IncidentStatus::Resolved;
        let before = sim.incident.clone();
        sim.step(op.clone(), on_time)?;
        if resolved {
            // A resolved incident takes notes and nothing else.
            let mut after = sim.incident.clone();
            if matches!(op, Op::Note) {
                prop_assert_eq!(after.next_seq, before.next_seq + 1);
                after.next_seq = before.next_seq;
                after.updated_at = before.updated_at;
                after.version = before.version;
            }
            prop_assert_eq!(after, before, "a resolved incident changed on {:?}", op);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    /// Timers fired whenever the sequence says: early (nothing happens),
    /// late (after downtime), twice.
    #[test]
    fn any_sequence_keeps_the_invariants(
        policy in policy(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        run(policy, ops, false)?;
    }

    /// Every deadline fired the moment it is due, as the actor's timers do:
    /// nothing is ever left overdue, and no due timer fires in a loop.
    #[test]
    fn timers_fired_on_time_leave_nothing_overdue(
        policy in policy(),
        ops in prop::collection::vec(op(), 1..80),
    ) {
        run(policy, ops, true)?;
    }

    /// A snapshot can outlive a config change: its escalation position may
    /// then lie beyond the policy it is now walked with. Nothing panics,
    /// and the first step fired brings the position back inside the policy.
    #[test]
    fn a_policy_changed_under_an_incident_never_panics(
        policies in prop::collection::vec(policy(), 2..4),
        ops in prop::collection::vec((op(), 0usize..4), 1..60),
    ) {
        let directory = directory();
        let mut now = T0;
        let (mut i, _) = Incident::open(IncidentId(1), alert_of(0, true, None, 0, now), &policies[0], now);
        for (op, which) in ops {
            let policy = &policies[which % policies.len()];
            let fired = match op {
                Op::Advance(ms) => {
                    now = Timestamp(now.0 + ms);
                    Change::default()
                }
                Op::Alert { which, firing, ends_in, value } => {
                    let ends_at = ends_in.map(|d| Timestamp(now.0 + d));
                    let _ = i.apply_alert(alert_of(which, firing, ends_at, value, now), now);
                    Change::default()
                }
                Op::Acknowledge => {
                    let _ = i.acknowledge(by(), policy, now);
                    Change::default()
                }
                Op::Snooze(d) => {
                    let _ = i.snooze(by(), d, now);
                    Change::default()
                }
                Op::Escalate => {
                    let _ = i.escalate_now(by(), now);
                    i.fire_escalation_to(policy, now, &directory)
                }
                Op::Resolve => {
                    let _ = i.resolve(by(), now);
                    Change::default()
                }
                Op::Note => i.add_note(by(), "n".into(), now),
                Op::FireEscalation => i.fire_escalation_to(policy, now, &directory),
                Op::ExpireAck => i.expire_ack(now),
                Op::ExpireAlerts => i.expire_alerts(now),
            };
            if !fired.fired.is_empty() {
                // (An exhausted escalation keeps the step it ended on.)
                if !i.escalation.exhausted {
                    prop_assert!(i.escalation.step < policy.steps.len());
                }
                for f in &fired.fired {
                    prop_assert!(f.step < policy.steps.len());
                }
            }
            if i.status != IncidentStatus::Triggered {
                prop_assert!(i.deadlines().escalation.is_none());
            }
        }
    }
}
