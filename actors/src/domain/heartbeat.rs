//! Heartbeat monitors (dead man's switches): a job that should ping lim at
//! least every `interval` opens an incident when a ping is more than
//! `interval + grace` late, and resolves it when pings return.
//!
//! Pure logic, like the rest of `domain/`: the monitor as configured, its
//! durable state, the transitions (ping, deadline passed, restored after a
//! restart or a config change) and the alerts a miss and a recovery send.
//! The `HeartbeatActor` (`crate::heartbeat`) owns the timer and the I/O.
//!
//! Decisions:
//!
//! * The deadline is an absolute wall-clock instant and it is what the store
//!   keeps, like an incident's deadlines: a restarted monitor fires at the
//!   stored deadline, not a fresh interval after the restart.
//! * A deadline passed while lim was down fires once, at start, not once
//!   per interval missed: a monitor is either up or missed, and a miss is one
//!   incident until the next ping.
//! * The miss and the recovery carry the dedup key `heartbeat:<name>`, so
//!   they reach the same incident whatever the labels (the `service` of a
//!   monitor may change in the config between the two).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::alert::{Alert, AlertStatus, Labels};
use crate::time::Timestamp;

/// The `alertname` of every heartbeat miss.
pub const HEARTBEAT_ALERTNAME: &str = "HeartbeatMissed";
/// The `source` of the alerts a heartbeat monitor sends.
pub const HEARTBEAT_SOURCE: &str = "heartbeat";
/// Longest monitor name, in bytes.
pub const MAX_HEARTBEAT_NAME: usize = 128;

/// One configured monitor (`[[heartbeats]]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatMonitor {
    /// Unique; the `{name}` of `POST /v1/heartbeats/{name}`.
    pub name: String,
    /// The `service` label of the incident a miss opens.
    pub service: String,
    /// How often the job is expected to ping.
    pub interval: Duration,
    /// How late a ping may be before it counts as missed.
    pub grace: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HeartbeatConfigError {
    #[error(
        "heartbeat name {0:?} is invalid: 1 to {MAX_HEARTBEAT_NAME} characters, \
         letters, digits, '-', '_' or '.'"
    )]
    InvalidName(String),
    #[error("heartbeat {0:?}: the interval must be longer than zero")]
    ZeroInterval(String),
    #[error("heartbeat {0:?} is configured twice")]
    Duplicate(String),
}

impl HeartbeatMonitor {
    /// How long after a ping (or after the monitor is first seen) the next
    /// one may arrive before it is missed: `interval + grace`.
    pub fn period(&self) -> Duration {
        self.interval.saturating_add(self.grace)
    }

    /// The dedup key of the incident a miss opens.
    pub fn dedup_key(&self) -> String {
        format!("heartbeat:{}", self.name)
    }

    /// The name goes into a URL path segment and into a registered actor
    /// name, so it is kept to characters that need no escaping anywhere.
    pub fn validate(&self) -> Result<(), HeartbeatConfigError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= MAX_HEARTBEAT_NAME
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(HeartbeatConfigError::InvalidName(self.name.clone()));
        }
        if self.interval.is_zero() {
            return Err(HeartbeatConfigError::ZeroInterval(self.name.clone()));
        }
        Ok(())
    }

    /// Validates every monitor and checks that no name is used twice.
    pub fn validate_all(monitors: &[HeartbeatMonitor]) -> Result<(), HeartbeatConfigError> {
        let mut seen = std::collections::HashSet::new();
        for m in monitors {
            m.validate()?;
            if !seen.insert(m.name.as_str()) {
                return Err(HeartbeatConfigError::Duplicate(m.name.clone()));
            }
        }
        Ok(())
    }

    fn labels(&self) -> Labels {
        [
            ("alertname", HEARTBEAT_ALERTNAME),
            ("heartbeat", self.name.as_str()),
            ("service", self.service.as_str()),
            ("severity", "critical"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    fn alert(&self, status: AlertStatus, annotations: Labels, starts_at: Timestamp) -> Alert {
        Alert {
            labels: self.labels(),
            annotations,
            status,
            starts_at,
            ends_at: None,
            source: HEARTBEAT_SOURCE.to_string(),
            dedup_key: Some(self.dedup_key()),
            extra: None,
        }
    }

    fn last_seen(state: &HeartbeatState) -> String {
        match state.last_ping {
            Some(at) => format!("last seen at {at}"),
            None => "never seen since lim started watching it".to_string(),
        }
    }

    /// The alert a miss sends: firing since the deadline that passed.
    pub fn missed_alert(&self, state: &HeartbeatState) -> Alert {
        let annotations = annotations(
            format!("Heartbeat {} missed", self.name),
            format!(
                "Heartbeat monitor {} (service {}) expected a ping every {} (grace {}) \
                 and got none by {}; {}.",
                self.name,
                self.service,
                human(self.interval),
                human(self.grace),
                state.deadline,
                Self::last_seen(state),
            ),
        );
        self.alert(AlertStatus::Firing, annotations, state.deadline)
    }

    /// The alert that resolves the miss: the same labels and dedup key,
    /// status resolved. `state` is the state after the ping.
    pub fn recovered_alert(&self, state: &HeartbeatState) -> Alert {
        let annotations = annotations(
            format!("Heartbeat {} is back", self.name),
            format!(
                "Heartbeat monitor {} (service {}) pinged again; {}.",
                self.name,
                self.service,
                Self::last_seen(state),
            ),
        );
        let at = state.last_ping.unwrap_or(state.deadline);
        let mut alert = self.alert(AlertStatus::Resolved, annotations, at);
        alert.ends_at = Some(at);
        alert
    }
}

fn annotations(summary: String, description: String) -> Labels {
    let mut a = Labels::new();
    a.insert("summary".into(), summary);
    a.insert("description".into(), description);
    a
}

/// `1h30m`, `5m`, `45s`, `0s`, `250ms`: for people, not for parsing (a
/// sub-second part is shown only under a second).
pub fn human(d: Duration) -> String {
    let secs = d.as_secs();
    if secs == 0 {
        return if d.is_zero() {
            "0s".to_string()
        } else {
            format!("{}ms", d.as_millis())
        };
    }
    [
        (secs / 86_400, 'd'),
        (secs / 3_600 % 24, 'h'),
        (secs / 60 % 60, 'm'),
        (secs % 60, 's'),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, unit)| format!("{n}{unit}"))
    .collect()
}

/// A monitor's durable state: what the store keeps per monitor name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeartbeatState {
    /// The last ping received; `None` until the first one.
    pub last_ping: Option<Timestamp>,
    /// When the monitor counts as missed if no ping came.
    pub deadline: Timestamp,
    /// The deadline passed and the miss was sent; cleared by a ping.
    pub missed: bool,
}

/// What a ping asks of the actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum PingEffect {
    /// The monitor was up (or waiting): nothing beyond the new deadline.
    Nothing,
    /// The monitor was missed: the incident is to be resolved.
    ResolveMiss,
}

/// What a passed deadline asks of the actor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[must_use]
pub enum DeadlineEffect {
    /// The deadline is still ahead (a timer fired early: the clock moved
    /// back); nothing changes.
    NotYet,
    /// Newly missed: the incident is to be opened.
    OpenMiss,
    /// Already missed: nothing more to send.
    AlreadyMissed,
}

impl HeartbeatState {
    /// A monitor never seen before: its first ping is due a period from now.
    pub fn initial(monitor: &HeartbeatMonitor, now: Timestamp) -> Self {
        HeartbeatState {
            last_ping: None,
            deadline: now.plus(monitor.period()),
            missed: false,
        }
    }

    /// The stored state under the monitor as configured now (its interval
    /// or grace may have changed): the deadline is recomputed from the last
    /// ping. Without a ping to count from, the stored deadline is kept,
    /// brought forward only if the new period would end sooner. A miss
    /// stays missed while the deadline is behind `now`; a deadline moved
    /// ahead of `now` (a longer period) makes the monitor up again, and the
    /// actor then resolves the miss.
    pub fn restored(stored: HeartbeatState, monitor: &HeartbeatMonitor, now: Timestamp) -> Self {
        let deadline = match stored.last_ping {
            Some(at) => at.plus(monitor.period()),
            None => stored.deadline.min(now.plus(monitor.period())),
        };
        HeartbeatState {
            last_ping: stored.last_ping,
            deadline,
            missed: stored.missed && deadline <= now,
        }
    }

    /// A ping at `now`: the next one is due a period later.
    pub fn ping(&mut self, monitor: &HeartbeatMonitor, now: Timestamp) -> PingEffect {
        let was_missed = self.missed;
        self.last_ping = Some(now);
        self.deadline = now.plus(monitor.period());
        self.missed = false;
        if was_missed {
            PingEffect::ResolveMiss
        } else {
            PingEffect::Nothing
        }
    }

    /// The monitor's timer fired at `now`.
    pub fn deadline_passed(&mut self, now: Timestamp) -> DeadlineEffect {
        if now < self.deadline {
            DeadlineEffect::NotYet
        } else if self.missed {
            DeadlineEffect::AlreadyMissed
        } else {
            self.missed = true;
            DeadlineEffect::OpenMiss
        }
    }

    /// Whether the deadline is due at `now` and not yet sent as a miss.
    pub fn is_due(&self, now: Timestamp) -> bool {
        !self.missed && self.deadline <= now
    }

    pub fn health(&self) -> HeartbeatHealth {
        match (self.missed, self.last_ping) {
            (true, _) => HeartbeatHealth::Missed,
            (false, Some(_)) => HeartbeatHealth::Up,
            (false, None) => HeartbeatHealth::Waiting,
        }
    }
}

/// A monitor's health as the API shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum HeartbeatHealth {
    /// Pinged, and the deadline is ahead.
    Up,
    /// The deadline passed without a ping; an incident was opened.
    Missed,
    /// Never pinged yet, and the first deadline is ahead.
    Waiting,
}

impl HeartbeatHealth {
    pub fn as_str(self) -> &'static str {
        match self {
            HeartbeatHealth::Up => "up",
            HeartbeatHealth::Missed => "missed",
            HeartbeatHealth::Waiting => "waiting",
        }
    }
}

/// A monitor as the API and the CLI show it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HeartbeatStatus {
    pub name: String,
    pub service: String,
    /// Whole seconds (a sub-second part is dropped).
    pub interval_seconds: u64,
    pub grace_seconds: u64,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_ping: Option<Timestamp>,
    pub deadline: Timestamp,
    /// `up`, `missed` or `waiting`.
    pub status: HeartbeatHealth,
}

impl HeartbeatStatus {
    pub fn of(monitor: &HeartbeatMonitor, state: &HeartbeatState) -> Self {
        HeartbeatStatus {
            name: monitor.name.clone(),
            service: monitor.service.clone(),
            interval_seconds: monitor.interval.as_secs(),
            grace_seconds: monitor.grace.as_secs(),
            last_ping: state.last_ping,
            deadline: state.deadline,
            status: state.health(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: u64 = 60;

    fn monitor() -> HeartbeatMonitor {
        HeartbeatMonitor {
            name: "nightly-backup".into(),
            service: "storage".into(),
            interval: Duration::from_secs(10 * MIN),
            grace: Duration::from_secs(2 * MIN),
        }
    }

    fn at_min(m: i64) -> Timestamp {
        Timestamp(m * 60_000)
    }

    #[test]
    fn never_seen_is_due_one_period_from_now() {
        let s = HeartbeatState::initial(&monitor(), at_min(5));
        assert_eq!(s.deadline, at_min(17));
        assert_eq!(s.last_ping, None);
        assert!(!s.missed);
        assert_eq!(s.health(), HeartbeatHealth::Waiting);
        assert!(!s.is_due(at_min(16)));
        assert!(s.is_due(at_min(17)));
    }

    #[test]
    fn ping_moves_the_deadline_and_says_when_a_miss_resolves() {
        let m = monitor();
        let mut s = HeartbeatState::initial(&m, at_min(0));
        assert_eq!(s.ping(&m, at_min(3)), PingEffect::Nothing);
        assert_eq!(s.deadline, at_min(15));
        assert_eq!(s.last_ping, Some(at_min(3)));
        assert_eq!(s.health(), HeartbeatHealth::Up);
        assert_eq!(s.deadline_passed(at_min(15)), DeadlineEffect::OpenMiss);
        assert_eq!(s.health(), HeartbeatHealth::Missed);
        assert_eq!(s.ping(&m, at_min(40)), PingEffect::ResolveMiss);
        assert!(!s.missed);
        assert_eq!(s.deadline, at_min(52));
    }

    #[test]
    fn a_deadline_fires_once_and_never_early() {
        let m = monitor();
        let mut s = HeartbeatState::initial(&m, at_min(0));
        assert_eq!(s.deadline_passed(at_min(11)), DeadlineEffect::NotYet);
        assert!(!s.missed);
        assert_eq!(s.deadline_passed(at_min(12)), DeadlineEffect::OpenMiss);
        assert_eq!(s.deadline_passed(at_min(24)), DeadlineEffect::AlreadyMissed);
        assert_eq!(
            s.deadline_passed(at_min(500)),
            DeadlineEffect::AlreadyMissed
        );
        assert!(!s.is_due(at_min(500)), "a miss is sent once");
    }

    #[test]
    fn restored_keeps_the_deadline_under_the_same_config() {
        let m = monitor();
        let mut s = HeartbeatState::initial(&m, at_min(0));
        let _ = s.ping(&m, at_min(4));
        assert_eq!(HeartbeatState::restored(s, &m, at_min(9)), s);
        // Passed while down: restored as due (fires once at start).
        let r = HeartbeatState::restored(s, &m, at_min(100));
        assert_eq!(r, s);
        assert!(r.is_due(at_min(100)));
        // Never pinged: the stored deadline stays.
        let fresh = HeartbeatState::initial(&m, at_min(0));
        assert_eq!(HeartbeatState::restored(fresh, &m, at_min(5)), fresh);
    }

    #[test]
    fn restored_recomputes_the_deadline_when_the_period_changed() {
        let m = monitor();
        let mut s = HeartbeatState::initial(&m, at_min(0));
        let _ = s.ping(&m, at_min(4));
        let longer = HeartbeatMonitor {
            interval: Duration::from_secs(60 * MIN),
            ..monitor()
        };
        assert_eq!(
            HeartbeatState::restored(s, &longer, at_min(5)).deadline,
            at_min(66)
        );
        // Missed under the old period, up again under the longer one.
        assert_eq!(s.deadline_passed(at_min(16)), DeadlineEffect::OpenMiss);
        let r = HeartbeatState::restored(s, &longer, at_min(20));
        assert!(!r.missed);
        assert_eq!(r.deadline, at_min(66));
        // Still missed under a shorter one.
        let shorter = HeartbeatMonitor {
            interval: Duration::from_secs(MIN),
            ..monitor()
        };
        assert!(HeartbeatState::restored(s, &shorter, at_min(20)).missed);
        // Never pinged: brought forward by a shorter period, never pushed back.
        let fresh = HeartbeatState::initial(&longer, at_min(0));
        assert_eq!(
            HeartbeatState::restored(fresh, &shorter, at_min(1)).deadline,
            at_min(4)
        );
        let fresh = HeartbeatState::initial(&shorter, at_min(0));
        assert_eq!(
            HeartbeatState::restored(fresh, &longer, at_min(1)).deadline,
            at_min(3)
        );
    }

    #[test]
    fn miss_and_recovery_alerts_share_labels_and_dedup_key() {
        let m = monitor();
        let mut s = HeartbeatState::initial(&m, at_min(0));
        let _ = s.ping(&m, at_min(1));
        let _ = s.deadline_passed(at_min(13));
        let missed = m.missed_alert(&s);
        assert_eq!(missed.status, AlertStatus::Firing);
        assert_eq!(missed.source, "heartbeat");
        assert_eq!(
            missed.dedup_key.as_deref(),
            Some("heartbeat:nightly-backup")
        );
        assert_eq!(&missed.labels["alertname"], "HeartbeatMissed");
        assert_eq!(&missed.labels["heartbeat"], "nightly-backup");
        assert_eq!(&missed.labels["service"], "storage");
        assert_eq!(&missed.labels["severity"], "critical");
        assert_eq!(missed.starts_at, at_min(13));
        assert_eq!(missed.title(), "Heartbeat nightly-backup missed");
        let description = &missed.annotations["description"];
        assert!(description.contains("nightly-backup"), "{description}");
        assert!(
            description.contains(&format!("last seen at {}", at_min(1))),
            "{description}"
        );
        assert!(
            description.contains("every 10m (grace 2m)"),
            "{description}"
        );

        let _ = s.ping(&m, at_min(30));
        let back = m.recovered_alert(&s);
        assert_eq!(back.status, AlertStatus::Resolved);
        assert_eq!(back.labels, missed.labels);
        assert_eq!(back.fingerprint(), missed.fingerprint());
        assert_eq!(back.incident_key(), missed.incident_key());
        assert_eq!(back.ends_at, Some(at_min(30)));

        // A service changed in between: another label set, the same incident.
        let moved = HeartbeatMonitor {
            service: "backups".into(),
            ..monitor()
        };
        assert_eq!(
            moved.recovered_alert(&s).incident_key(),
            missed.incident_key()
        );
    }

    #[test]
    fn never_seen_miss_says_so() {
        let m = monitor();
        let s = HeartbeatState::initial(&m, at_min(0));
        let d = &m.missed_alert(&s).annotations["description"];
        assert!(d.contains("never seen"), "{d}");
    }

    #[test]
    fn validation() {
        assert!(monitor().validate().is_ok());
        for bad in ["", "a b", "a/b", "é", &"x".repeat(129)] {
            let m = HeartbeatMonitor {
                name: bad.to_string(),
                ..monitor()
            };
            assert!(
                matches!(m.validate(), Err(HeartbeatConfigError::InvalidName(_))),
                "{bad:?}"
            );
        }
        let zero = HeartbeatMonitor {
            interval: Duration::ZERO,
            ..monitor()
        };
        assert_eq!(
            zero.validate(),
            Err(HeartbeatConfigError::ZeroInterval("nightly-backup".into()))
        );
        assert_eq!(
            HeartbeatMonitor::validate_all(&[monitor(), monitor()]),
            Err(HeartbeatConfigError::Duplicate("nightly-backup".into()))
        );
        let other = HeartbeatMonitor {
            name: "other.job_1".into(),
            ..monitor()
        };
        assert!(HeartbeatMonitor::validate_all(&[monitor(), other]).is_ok());
    }

    #[test]
    fn human_durations() {
        assert_eq!(human(Duration::ZERO), "0s");
        assert_eq!(human(Duration::from_millis(250)), "250ms");
        assert_eq!(human(Duration::from_secs(45)), "45s");
        assert_eq!(human(Duration::from_secs(300)), "5m");
        assert_eq!(human(Duration::from_secs(5400)), "1h30m");
        assert_eq!(human(Duration::from_secs(86_400 + 61)), "1d1m1s");
    }

    #[test]
    fn status_json_shape() {
        let m = monitor();
        let mut s = HeartbeatState::initial(&m, Timestamp(0));
        let status = HeartbeatStatus::of(&m, &s);
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            serde_json::json!({
                "name": "nightly-backup",
                "service": "storage",
                "interval_seconds": 600,
                "grace_seconds": 120,
                "last_ping": null,
                "deadline": "1970-01-01T00:12:00.000Z",
                "status": "waiting",
            })
        );
        let _ = s.ping(&m, Timestamp(60_000));
        assert_eq!(HeartbeatStatus::of(&m, &s).status.as_str(), "up");
        let _ = s.deadline_passed(Timestamp(60_000 * 13));
        assert_eq!(HeartbeatStatus::of(&m, &s).status.as_str(), "missed");
    }
}
