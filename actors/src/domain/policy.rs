//! Escalation policies and the pure arithmetic of walking through one.
//!
//! A policy is an ordered list of steps, PagerDuty style: when a step is
//! reached its targets are notified at once, and `delay` is how long that step
//! waits for an acknowledge before the next step is reached. After the last
//! step the policy starts again from the first while repeats remain, so the
//! default policy (one `console` step, 5 minute delay, 3 repeats) notifies at
//! 0, 5, 10 and 15 minutes and then stops.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Who or what a step notifies: a user (through their contact methods), a
/// schedule (whoever is on call when the step fires), a team (every
/// member), or a configured channel as a whole. Resolved into recipients by
/// `domain::directory` at the instant the step fires.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Target {
    Channel(String),
    User(String),
    Schedule(String),
    Team(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Channel(name) => write!(f, "channel:{name}"),
            Target::User(name) => write!(f, "user:{name}"),
            Target::Schedule(name) => write!(f, "schedule:{name}"),
            Target::Team(name) => write!(f, "team:{name}"),
        }
    }
}

impl Target {
    /// Parses `kind:name` (`user:alice`, `schedule:primary`, `team:ml`,
    /// `channel:slack`); a bare name is a channel.
    pub fn parse(text: &str) -> Result<Target, String> {
        let (kind, name) = text.split_once(':').unwrap_or(("channel", text));
        if name.is_empty() {
            return Err(format!("target {text:?} names nothing"));
        }
        let name = name.to_string();
        Ok(match kind {
            "channel" => Target::Channel(name),
            "user" => Target::User(name),
            "schedule" => Target::Schedule(name),
            "team" => Target::Team(name),
            other => {
                return Err(format!(
                    "target {text:?}: unknown kind {other:?}; expected user:, schedule:, team: or channel:"
                ))
            }
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationStep {
    /// How long this step waits for an acknowledge before escalating.
    #[serde(with = "duration_millis")]
    pub delay: Duration,
    pub targets: Vec<Target>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EscalationPolicy {
    pub name: String,
    pub steps: Vec<EscalationStep>,
    /// How many times the whole list of steps is walked again after the first pass.
    pub repeat: u32,
    /// When set, an acknowledge expires after this long and the incident is
    /// triggered again with its escalation restarted.
    #[serde(default, with = "opt_duration_millis")]
    pub ack_timeout: Option<Duration>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PolicyError {
    #[error("escalation policy {0:?} has no steps")]
    NoSteps(String),
    #[error("escalation policy {policy:?} step {step} has no targets")]
    NoTargets { policy: String, step: usize },
    #[error("escalation policy {policy:?} step {step} has a zero delay; only a policy's last pass may end, a zero delay would page in a loop")]
    ZeroDelayLoop { policy: String, step: usize },
}

impl EscalationPolicy {
    /// The policy used when nothing is configured: notify `console` at once,
    /// then every 5 minutes, 3 repeats, until acknowledged.
    pub fn default_console() -> Self {
        EscalationPolicy {
            name: "default".into(),
            steps: vec![EscalationStep {
                delay: Duration::from_secs(5 * 60),
                targets: vec![Target::Channel("console".into())],
            }],
            repeat: 3,
            ack_timeout: None,
        }
    }

    pub fn validate(&self) -> Result<(), PolicyError> {
        if self.steps.is_empty() {
            return Err(PolicyError::NoSteps(self.name.clone()));
        }
        for (i, step) in self.steps.iter().enumerate() {
            if step.targets.is_empty() {
                return Err(PolicyError::NoTargets {
                    policy: self.name.clone(),
                    step: i,
                });
            }
        }
        let total: Duration = self.steps.iter().map(|s| s.delay).sum();
        if total.is_zero() && self.repeat > 0 {
            return Err(PolicyError::ZeroDelayLoop {
                policy: self.name.clone(),
                step: 0,
            });
        }
        Ok(())
    }
}

/// Where an incident stands in its policy. Stored in the snapshot.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationState {
    /// The step that fires at `next_at`.
    pub step: usize,
    /// Which pass through the steps (0 = first pass).
    pub repeat: u32,
    /// Absolute deadline of the next step; `None` when nothing is pending
    /// (acknowledged, resolved, or the policy is exhausted).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_at: Option<Timestamp>,
    /// Set once the last step of the last repeat fired.
    pub exhausted: bool,
}

/// What firing a due step produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepFired {
    pub step: usize,
    pub repeat: u32,
    pub targets: Vec<Target>,
    pub next_at: Option<Timestamp>,
    /// The targets' recipients at the instant the step fired (filled by
    /// `Incident::fire_escalation_to`; empty from `fire_due` alone).
    pub recipients: Vec<(Target, crate::domain::Recipient)>,
}

impl EscalationState {
    /// A fresh escalation whose first step is due at `at`.
    pub fn starting(at: Timestamp) -> Self {
        EscalationState {
            step: 0,
            repeat: 0,
            next_at: Some(at),
            exhausted: false,
        }
    }

    /// Stops everything pending (acknowledge, resolve).
    pub fn halt(&mut self) {
        self.next_at = None;
    }

    /// Fires the pending step if it is due at `now`: returns its targets and
    /// moves to the following step (or repeat, or exhaustion).
    ///
    /// The next deadline is measured from the step's own deadline, not from
    /// `now`, so a slightly late timer does not shift every later step. When
    /// that deadline has already passed too (a restart after downtime), the
    /// next step is due a full `delay` from now: the missed steps collapse
    /// into the one firing now instead of paging in a burst.
    pub fn fire_due(&mut self, policy: &EscalationPolicy, now: Timestamp) -> Option<StepFired> {
        let due = self.next_at?;
        if due > now || policy.steps.is_empty() {
            return None;
        }
        let step_index = self.step.min(policy.steps.len() - 1);
        let step = &policy.steps[step_index];
        let fired_repeat = self.repeat;
        let on_schedule = due.plus(step.delay);
        let next_deadline = if on_schedule > now {
            on_schedule
        } else {
            now.plus(step.delay)
        };
        if step_index + 1 < policy.steps.len() {
            self.step = step_index + 1;
            self.next_at = Some(next_deadline);
        } else if self.repeat < policy.repeat {
            self.step = 0;
            self.repeat += 1;
            self.next_at = Some(next_deadline);
        } else {
            self.next_at = None;
            self.exhausted = true;
        }
        Some(StepFired {
            step: step_index,
            repeat: fired_repeat,
            targets: step.targets.clone(),
            next_at: self.next_at,
            recipients: Vec::new(),
        })
    }
}

mod duration_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_millis)
    }
}

mod opt_duration_millis {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&(d.as_millis() as u64)),
            None => s.serialize_none(),
        }
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|o| o.map(Duration::from_millis))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn two_step() -> EscalationPolicy {
        EscalationPolicy {
            name: "p".into(),
            steps: vec![
                EscalationStep {
                    delay: Duration::from_secs(60),
                    targets: vec![Target::Channel("a".into())],
                },
                EscalationStep {
                    delay: Duration::from_secs(120),
                    targets: vec![Target::Channel("b".into())],
                },
            ],
            repeat: 1,
            ack_timeout: None,
        }
    }

    #[test]
    fn default_policy_notifies_four_times_five_minutes_apart() {
        let p = EscalationPolicy::default_console();
        p.validate().unwrap();
        let mut s = EscalationState::starting(Timestamp(0));
        let mut fired_at = vec![];
        let mut now = Timestamp(0);
        while let Some(at) = s.next_at {
            now = at;
            let f = s.fire_due(&p, now).unwrap();
            assert_eq!(f.targets, vec![Target::Channel("console".into())]);
            fired_at.push(now.0 / MIN);
        }
        assert_eq!(fired_at, vec![0, 5, 10, 15]);
        assert!(s.exhausted);
        assert_eq!(s.fire_due(&p, now), None);
    }

    #[test]
    fn steps_then_repeat_then_exhausted() {
        let p = two_step();
        let mut s = EscalationState::starting(Timestamp(0));
        let a = s.fire_due(&p, Timestamp(0)).unwrap();
        assert_eq!((a.step, a.repeat, a.next_at), (0, 0, Some(Timestamp(MIN))));
        assert_eq!(s.fire_due(&p, Timestamp(MIN - 1)), None, "not due yet");
        let b = s.fire_due(&p, Timestamp(MIN)).unwrap();
        assert_eq!(
            (b.step, b.repeat, b.next_at),
            (1, 0, Some(Timestamp(3 * MIN)))
        );
        let c = s.fire_due(&p, Timestamp(3 * MIN)).unwrap();
        assert_eq!((c.step, c.repeat), (0, 1));
        let d = s.fire_due(&p, Timestamp(4 * MIN)).unwrap();
        assert_eq!((d.step, d.repeat, d.next_at), (1, 1, None));
        assert!(s.exhausted);
    }

    #[test]
    fn late_firing_keeps_schedule_but_never_bursts() {
        let p = two_step();
        let mut s = EscalationState::starting(Timestamp(0));
        // Fired 30 s late: the next step keeps its original deadline.
        let a = s.fire_due(&p, Timestamp(30_000)).unwrap();
        assert_eq!(a.next_at, Some(Timestamp(MIN)));
        // Fired an hour late (downtime): the next step is a full delay away,
        // not in the past (which would page in a burst).
        let b = s.fire_due(&p, Timestamp(60 * MIN)).unwrap();
        assert_eq!(b.next_at, Some(Timestamp(62 * MIN)));
    }

    #[test]
    fn halt_stops_everything() {
        let p = two_step();
        let mut s = EscalationState::starting(Timestamp(0));
        s.halt();
        assert_eq!(s.fire_due(&p, Timestamp(10 * MIN)), None);
    }

    #[test]
    fn validation_rejects_empty_and_zero_loops() {
        let mut p = two_step();
        p.steps[0].targets.clear();
        assert!(matches!(
            p.validate(),
            Err(PolicyError::NoTargets { step: 0, .. })
        ));
        let mut p = two_step();
        p.steps.iter_mut().for_each(|s| s.delay = Duration::ZERO);
        assert!(matches!(
            p.validate(),
            Err(PolicyError::ZeroDelayLoop { .. })
        ));
        p.repeat = 0;
        assert!(p.validate().is_ok());
        p.steps.clear();
        assert!(matches!(p.validate(), Err(PolicyError::NoSteps(_))));
    }
}
