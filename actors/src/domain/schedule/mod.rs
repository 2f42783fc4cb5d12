//! On-call schedules: who is on call at an instant, as a pure function of the
//! schedule and the instant.
//!
//! Users, teams and schedules are plain data (loaded from the config); this
//! module only answers questions about them and never reads a clock. The rules,
//! each of which an on-call engineer can rely on:
//!
//! - **Shifts.** A rotation hands the pager through its `participants` in
//!   order: shift `k` (counting from 0) goes to `participants[k % n]`, and
//!   shift 0 begins at the local date `start` at the local time `handoff`,
//!   both read in the schedule's time zone. Every shift is half-open,
//!   `[start, end)`: at the exact hand-off instant the next person is on call.
//!   Participants may repeat (`[alice, bob, alice, carol]`).
//! - **Calendar shifts.** A shift length that is a whole number of days
//!   (`1d`, `7d`, `1w`, also `24h`, `48h`) is counted on the local calendar:
//!   shift `k` begins at `start + k * days` at `handoff`, local time. A daily
//!   hand-off at 09:00 stays at 09:00 on the wall clock across DST, so the
//!   shift containing the change lasts 23 h or 25 h (23.5 h or 24.5 h on Lord
//!   Howe Island).
//! - **Elapsed shifts.** Any other length (`12h`, `8h`, `36h`) is elapsed
//!   time from the first hand-off: shifts are exactly that many hours long,
//!   so after a DST change the hand-offs move on the wall clock (a 12 h
//!   rotation handing off at 09:00/21:00 in winter hands off at 10:00/22:00
//!   in summer). This is the only rule under which every shift has the same
//!   length and no one works an extra hour; use whole days to pin the wall
//!   clock instead.
//! - **Local times that do not happen or happen twice.** A hand-off is the
//!   first instant at which the wall clock reads the hand-off time or later.
//!   In the spring-forward gap (02:30 on a day clocks jump 02:00 -> 03:00)
//!   that is the jump itself, 03:00 local; in the fall-back overlap (01:30 on
//!   a day clocks go 02:00 -> 01:00) it is the earlier 01:30, and the second
//!   01:30 is not a hand-off. One definition covers both cases, keeps
//!   hand-offs in order and never hands off twice for one date.
//! - **Before the start** (before shift 0 begins) a rotation has nobody on
//!   call.
//! - **Layers.** A schedule's rotations are layers, PagerDuty style: the
//!   last rotation that has someone on call wins. Rotations have no
//!   restrictions (yet), so a layer has someone from its first hand-off on,
//!   and a later layer shadows the earlier ones from then on: layering is how
//!   a new rotation takes over from a date.
//! - **Overrides** sit on top of every layer: during `[start, end)` the
//!   override's user is on call whatever the rotations say. When several
//!   overrides overlap, the one later in the list (created last) wins. An
//!   override whose end is not after its start never applies (and fails
//!   validation).
//! - **The answer** is a list of user names: one name, or none when no layer
//!   has started and no override applies. [`on_call_shift`] also returns the
//!   interval around the instant during which that answer holds (the winning
//!   shift or override, cut by the next override or layer boundary), so the
//!   API can say "until when".
//! - Instants so far away that chrono cannot represent their date (hundreds
//!   of thousands of years) have nobody on call; nothing here panics.
//!
//! Zone rules come from the IANA database compiled into chrono-tz (release
//! 2025b in chrono-tz 0.10.4): a government changing its DST rules reaches
//! lim with a chrono-tz update, not at run time.
//!
//! Escalation steps will target users, teams and schedules; a schedule target
//! resolves to [`on_call_at`] the instant the step fires.

mod local;
mod oncall;
mod rotation;
mod shift;

pub use chrono_tz::Tz;
pub use oncall::{on_call_at, on_call_shift, OnCall, OnCallSource};
pub use rotation::{nth_shift, rotation_start, shift_at, Shift};
pub use shift::{parse_handoff, parse_shift, parse_time_zone, ShiftLength};

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};

use crate::time::Timestamp;

/// Someone who can be paged. Referenced everywhere else by `name`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub slack_user_id: Option<String>,
    /// The user's own IANA time zone, for display; schedules use their own.
    #[serde(default)]
    pub time_zone: Option<String>,
}

impl User {
    /// Checks the time zone, when given, is a known IANA name.
    pub fn validate(&self) -> Result<(), ScheduleError> {
        match &self.time_zone {
            Some(tz) => parse_time_zone(tz).map(|_| ()),
            None => Ok(()),
        }
    }
}

/// A named group of users; an escalation step targeting a team pages all of
/// its members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub name: String,
    pub members: Vec<String>,
}

impl Team {
    pub fn validate(&self, known_users: &dyn Fn(&str) -> bool) -> Result<(), ScheduleError> {
        if self.members.is_empty() {
            return Err(ScheduleError::NoMembers {
                team: self.name.clone(),
            });
        }
        match self.members.iter().find(|m| !known_users(m)) {
            Some(user) => Err(ScheduleError::UnknownMember {
                team: self.name.clone(),
                user: user.clone(),
            }),
            None => Ok(()),
        }
    }
}

/// Rotations (layers, the last one wins) and overrides (on top, the last one
/// wins), all read in one time zone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schedule {
    pub name: String,
    /// Serialised as its IANA name, `"Europe/Berlin"`.
    pub time_zone: Tz,
    pub rotations: Vec<Rotation>,
    #[serde(default)]
    pub overrides: Vec<Override>,
}

/// Participants taking turns in shifts of one length.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    #[serde(default)]
    pub name: Option<String>,
    /// User names, in the order they take their shifts.
    pub participants: Vec<String>,
    /// Serialised as `"1w"`, `"1d"`, `"12h"`.
    pub shift: ShiftLength,
    /// Local time of day of the hand-off, serialised as `"09:00"`.
    #[serde(with = "shift::handoff_serde")]
    pub handoff: NaiveTime,
    /// Local date on which the first participant's first shift begins (at
    /// `handoff`).
    pub start: NaiveDate,
}

/// `user` is on call during `[start, end)` whatever the rotations say.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Override {
    pub user: String,
    pub start: Timestamp,
    pub end: Timestamp,
}

impl Override {
    /// Whether the override applies at `at` (half-open: not at `end`).
    pub fn contains(&self, at: Timestamp) -> bool {
        self.start <= at && at < self.end
    }
}

#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum ScheduleError {
    #[error("unknown time zone {0:?}: expected an IANA name such as \"Europe/Berlin\" or \"UTC\"")]
    UnknownTimeZone(String),
    #[error("invalid shift length {0:?}: expected a positive whole number of hours, days or weeks such as \"12h\", \"1d\" or \"1w\"")]
    InvalidShift(String),
    #[error("invalid hand-off time {0:?}: expected a local time of day such as \"09:00\"")]
    InvalidHandoff(String),
    #[error("schedule {schedule:?} rotation {rotation} has no participants")]
    NoParticipants { schedule: String, rotation: usize },
    #[error("schedule {schedule:?} rotation {rotation} has a zero shift length")]
    ZeroShift { schedule: String, rotation: usize },
    #[error(
        "schedule {schedule:?} override {index} ends at {end}, not after it starts at {start}"
    )]
    EmptyOverride {
        schedule: String,
        index: usize,
        start: Timestamp,
        end: Timestamp,
    },
    #[error("schedule {schedule:?} refers to unknown user {user:?}")]
    UnknownUser { schedule: String, user: String },
    #[error("team {team:?} has no members")]
    NoMembers { team: String },
    #[error("team {team:?} refers to unknown user {user:?}")]
    UnknownMember { team: String, user: String },
}

impl Schedule {
    /// Checks every rotation can hand off and every name is a known user.
    /// A schedule without rotations is valid: only its overrides page.
    pub fn validate(&self, known_users: &dyn Fn(&str) -> bool) -> Result<(), ScheduleError> {
        let unknown = |user: &str| ScheduleError::UnknownUser {
            schedule: self.name.clone(),
            user: user.to_string(),
        };
        for (i, rotation) in self.rotations.iter().enumerate() {
            if rotation.participants.is_empty() {
                return Err(ScheduleError::NoParticipants {
                    schedule: self.name.clone(),
                    rotation: i,
                });
            }
            if rotation.shift.is_zero() {
                return Err(ScheduleError::ZeroShift {
                    schedule: self.name.clone(),
                    rotation: i,
                });
            }
            if let Some(user) = rotation.participants.iter().find(|p| !known_users(p)) {
                return Err(unknown(user));
            }
        }
        for (i, o) in self.overrides.iter().enumerate() {
            if o.end <= o.start {
                return Err(ScheduleError::EmptyOverride {
                    schedule: self.name.clone(),
                    index: i,
                    start: o.start,
                    end: o.end,
                });
            }
            if !known_users(&o.user) {
                return Err(unknown(&o.user));
            }
        }
        Ok(())
    }
}

/// One hour in milliseconds, the unit of shift lengths.
const HOUR_MS: i64 = 3_600_000;

#[cfg(test)]
pub(crate) mod testing {
    use super::*;

    /// An instant from RFC 3339, for readable tests.
    pub fn ts(s: &str) -> Timestamp {
        Timestamp::parse_rfc3339(s).unwrap()
    }

    pub fn rotation(participants: &[&str], shift: &str, handoff: &str, start: &str) -> Rotation {
        Rotation {
            name: None,
            participants: participants.iter().map(|p| p.to_string()).collect(),
            shift: parse_shift(shift).unwrap(),
            handoff: parse_handoff(handoff).unwrap(),
            start: start.parse().unwrap(),
        }
    }

    pub fn schedule(tz: &str, rotations: Vec<Rotation>, overrides: Vec<Override>) -> Schedule {
        Schedule {
            name: "primary".into(),
            time_zone: parse_time_zone(tz).unwrap(),
            rotations,
            overrides,
        }
    }

    pub fn over(user: &str, start: &str, end: &str) -> Override {
        Override {
            user: user.into(),
            start: ts(start),
            end: ts(end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    fn known(name: &str) -> bool {
        ["alice", "bob", "carol"].contains(&name)
    }

    #[test]
    fn a_valid_schedule_passes() {
        let s = schedule(
            "Europe/Berlin",
            vec![rotation(&["alice", "bob"], "1w", "09:00", "2024-01-01")],
            vec![over(
                "carol",
                "2024-01-02T00:00:00Z",
                "2024-01-03T00:00:00Z",
            )],
        );
        assert_eq!(s.validate(&known), Ok(()));
        // No rotations at all is allowed: only overrides page.
        assert_eq!(schedule("UTC", vec![], vec![]).validate(&known), Ok(()));
    }

    #[test]
    fn validation_names_the_problem() {
        let mut s = schedule(
            "UTC",
            vec![rotation(&["alice"], "1d", "09:00", "2024-01-01")],
            vec![],
        );
        s.rotations[0].participants.clear();
        assert_eq!(
            s.validate(&known),
            Err(ScheduleError::NoParticipants {
                schedule: "primary".into(),
                rotation: 0
            })
        );
        s.rotations[0].participants = vec!["alice".into(), "mallory".into()];
        assert_eq!(
            s.validate(&known),
            Err(ScheduleError::UnknownUser {
                schedule: "primary".into(),
                user: "mallory".into()
            })
        );
        s.rotations[0].participants = vec!["alice".into()];
        s.rotations[0].shift = ShiftLength::hours(0);
        assert_eq!(
            s.validate(&known),
            Err(ScheduleError::ZeroShift {
                schedule: "primary".into(),
                rotation: 0
            })
        );
        s.rotations[0].shift = ShiftLength::days(1);
        s.overrides = vec![over("bob", "2024-01-02T00:00:00Z", "2024-01-02T00:00:00Z")];
        assert!(matches!(
            s.validate(&known),
            Err(ScheduleError::EmptyOverride { index: 0, .. })
        ));
        s.overrides = vec![over("eve", "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z")];
        assert_eq!(
            s.validate(&known),
            Err(ScheduleError::UnknownUser {
                schedule: "primary".into(),
                user: "eve".into()
            })
        );
    }

    #[test]
    fn team_validation() {
        let mut team = Team {
            name: "sre".into(),
            members: vec![],
        };
        assert_eq!(
            team.validate(&known),
            Err(ScheduleError::NoMembers { team: "sre".into() })
        );
        team.members = vec!["alice".into(), "zed".into()];
        assert_eq!(
            team.validate(&known),
            Err(ScheduleError::UnknownMember {
                team: "sre".into(),
                user: "zed".into()
            })
        );
        team.members.pop();
        assert_eq!(team.validate(&known), Ok(()));
    }

    #[test]
    fn user_time_zone_must_be_iana() {
        let mut user = User {
            name: "alice".into(),
            email: Some("alice@example.com".into()),
            slack_user_id: Some("U123".into()),
            time_zone: Some("Europe/Berlin".into()),
        };
        assert_eq!(user.validate(), Ok(()));
        user.time_zone = Some("CEST+2".into());
        assert_eq!(
            user.validate(),
            Err(ScheduleError::UnknownTimeZone("CEST+2".into()))
        );
    }

    #[test]
    fn json_uses_config_notation_and_postcard_round_trips() {
        let s = schedule(
            "Europe/Berlin",
            vec![rotation(&["alice", "bob"], "1w", "09:00", "2024-01-01")],
            vec![over(
                "carol",
                "2024-01-02T00:00:00Z",
                "2024-01-03T00:00:00Z",
            )],
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["time_zone"], "Europe/Berlin");
        assert_eq!(json["rotations"][0]["shift"], "1w");
        assert_eq!(json["rotations"][0]["handoff"], "09:00");
        assert_eq!(json["rotations"][0]["start"], "2024-01-01");
        assert_eq!(json["overrides"][0]["start"], "2024-01-02T00:00:00.000Z");
        assert_eq!(serde_json::from_value::<Schedule>(json).unwrap(), s);

        let bytes = postcard::to_allocvec(&s).unwrap();
        assert_eq!(postcard::from_bytes::<Schedule>(&bytes).unwrap(), s);
    }

    #[test]
    fn config_shaped_json_deserialises() {
        let s: Schedule = serde_json::from_str(
            r#"{"name": "db", "time_zone": "America/New_York",
                "rotations": [{"participants": ["alice"], "shift": "12h",
                               "handoff": "08:30", "start": "2024-03-01"}]}"#,
        )
        .unwrap();
        assert_eq!(s.time_zone, Tz::America__New_York);
        assert_eq!(s.rotations[0].shift, ShiftLength::hours(12));
        assert!(s.overrides.is_empty());
        let bad = serde_json::from_str::<Schedule>(
            r#"{"name": "db", "time_zone": "Mars/Olympus", "rotations": []}"#,
        );
        assert!(bad.is_err());
        let bad = serde_json::from_str::<Rotation>(
            r#"{"participants": ["a"], "shift": "0h", "handoff": "08:30", "start": "2024-03-01"}"#,
        );
        assert!(bad.is_err());
    }
}
