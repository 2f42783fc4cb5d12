//! The people side of the config: `[[users]]`, `[[teams]]`,
//! `[[schedules]]`, `[[escalation_policies]]` and the `[[routes]]` that pick
//! a service by labels. Parsed with spans like the rest of the file; every
//! reference (a team member, a rotation participant, a policy target, a
//! service's policy, a route's service) is checked against what the file
//! defines, and a dangling one is reported at the reference.
//!
//! ```toml
//! [[users]]
//! name = "alice"
//! email = "alice@example.com"
//! slack_user_id = "U012ABCDEF"
//! time_zone = "Europe/Berlin"
//!
//! [[teams]]
//! name = "ml-platform"
//! members = ["alice", "bob"]
//!
//! [[schedules]]
//! name = "primary"
//! time_zone = "Europe/Berlin"
//! [[schedules.rotations]]
//! participants = ["alice", "bob"]
//! shift = "1w"            # whole hours, days or weeks: 12h, 1d, 1w
//! handoff = "09:00"       # local time of the hand-off
//! start = "2026-11-02"    # local date of the first shift
//! [[schedules.overrides]]
//! user = "carol"
//! start = "2026-12-24T00:00:00+01:00"
//! end = "2026-12-27T00:00:00+01:00"
//!
//! [[escalation_policies]]
//! name = "llm-critical"
//! repeat = 2
//! ack_timeout = "30m"
//! [[escalation_policies.steps]]
//! delay = "5m"
//! targets = ["schedule:primary", "channel:slack"]
//!
//! [[routes]]              # first match wins; no match: the alert's own
//! matchers = ["model=~gpt.*"]    # `service` label, else `default`
//! service = "llm-gateway"
//! ```

use std::collections::BTreeSet;

use incident_actors::domain::schedule::{
    parse_handoff, parse_shift, parse_time_zone, Override, Rotation, Schedule, Team, User,
};
use incident_actors::domain::{Matcher, Target};
use incident_actors::time::Timestamp;
use serde::Deserialize;
use toml::Spanned;

use super::Checker;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    name: Spanned<String>,
    email: Option<Spanned<String>>,
    slack_user_id: Option<Spanned<String>>,
    time_zone: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTeam {
    name: Spanned<String>,
    members: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchedule {
    name: Spanned<String>,
    time_zone: Spanned<String>,
    rotations: Spanned<Vec<RawRotation>>,
    #[serde(default)]
    overrides: Vec<RawOverride>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRotation {
    name: Option<String>,
    participants: Spanned<Vec<Spanned<String>>>,
    shift: Spanned<String>,
    handoff: Spanned<String>,
    start: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOverride {
    user: Spanned<String>,
    start: Spanned<String>,
    end: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRoute {
    matchers: Spanned<Vec<Spanned<String>>>,
    service: Spanned<String>,
}

/// A routing rule: alerts matching every matcher belong to `service`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub matchers: Vec<Matcher>,
    pub service: String,
}

/// A name that must be unique within its kind.
fn unique(
    checker: &mut Checker<'_>,
    seen: &mut BTreeSet<String>,
    kind: &str,
    name: &Spanned<String>,
) -> bool {
    let n = name.get_ref();
    if n.trim().is_empty() {
        checker.check::<()>(name.span(), Err(format!("{kind} name must not be empty")));
        return false;
    }
    if !seen.insert(n.clone()) {
        checker.check::<()>(name.span(), Err(format!("{kind} {n:?} is defined twice")));
        return false;
    }
    true
}

pub(super) fn build_users(checker: &mut Checker<'_>, raw: Vec<RawUser>) -> Vec<User> {
    let mut seen = BTreeSet::new();
    let mut users = Vec::new();
    for u in raw {
        if !unique(checker, &mut seen, "user", &u.name) {
            continue;
        }
        if let Some(email) = &u.email {
            let ok =
                email.get_ref().contains('@') && !email.get_ref().contains(char::is_whitespace);
            checker.check(
                email.span(),
                if ok {
                    Ok(())
                } else {
                    Err(format!("invalid email address {:?}", email.get_ref()))
                },
            );
        }
        if let Some(tz) = &u.time_zone {
            checker.check(
                tz.span(),
                parse_time_zone(tz.get_ref()).map_err(|e| e.to_string()),
            );
        }
        users.push(User {
            name: u.name.into_inner(),
            email: u.email.map(Spanned::into_inner),
            slack_user_id: u.slack_user_id.map(Spanned::into_inner),
            time_zone: u.time_zone.map(Spanned::into_inner),
        });
    }
    users
}

fn check_user(checker: &mut Checker<'_>, users: &[User], name: &Spanned<String>) {
    if !users.iter().any(|u| &u.name == name.get_ref()) {
        checker.check::<()>(
            name.span(),
            Err(format!(
                "unknown user {:?}: not in [[users]]",
                name.get_ref()
            )),
        );
    }
}

pub(super) fn build_teams(
    checker: &mut Checker<'_>,
    raw: Vec<RawTeam>,
    users: &[User],
) -> Vec<Team> {
    let mut seen = BTreeSet::new();
    let mut teams = Vec::new();
    for t in raw {
        if !unique(checker, &mut seen, "team", &t.name) {
            continue;
        }
        if t.members.get_ref().is_empty() {
            checker.check::<()>(
                t.members.span(),
                Err("a team needs at least one member".into()),
            );
        }
        for m in t.members.get_ref() {
            check_user(checker, users, m);
        }
        teams.push(Team {
            name: t.name.into_inner(),
            members: t
                .members
                .into_inner()
                .into_iter()
                .map(Spanned::into_inner)
                .collect(),
        });
    }
    teams
}

fn timestamp(text: &str) -> Result<Timestamp, String> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| Timestamp(t.timestamp_millis()))
        .map_err(|e| format!("invalid time {text:?}: {e} (expected RFC 3339, e.g. \"2026-12-24T00:00:00+01:00\")"))
}

pub(super) fn build_schedules(
    checker: &mut Checker<'_>,
    raw: Vec<RawSchedule>,
    users: &[User],
) -> Vec<Schedule> {
    let mut seen = BTreeSet::new();
    let mut schedules = Vec::new();
    for s in raw {
        let named = unique(checker, &mut seen, "schedule", &s.name);
        let before = checker.items.len();
        let tz = checker.check(
            s.time_zone.span(),
            parse_time_zone(s.time_zone.get_ref()).map_err(|e| e.to_string()),
        );
        if s.rotations.get_ref().is_empty() {
            checker.check::<()>(
                s.rotations.span(),
                Err("a schedule needs at least one rotation".into()),
            );
        }
        let mut rotations = Vec::new();
        for r in s.rotations.into_inner() {
            if r.participants.get_ref().is_empty() {
                checker.check::<()>(
                    r.participants.span(),
                    Err("a rotation needs at least one participant".into()),
                );
            }
            for p in r.participants.get_ref() {
                check_user(checker, users, p);
            }
            let shift = checker.check(
                r.shift.span(),
                parse_shift(r.shift.get_ref()).map_err(|e| e.to_string()),
            );
            let handoff = checker.check(
                r.handoff.span(),
                parse_handoff(r.handoff.get_ref()).map_err(|e| e.to_string()),
            );
            let start = checker.check(
                r.start.span(),
                chrono::NaiveDate::parse_from_str(r.start.get_ref(), "%Y-%m-%d").map_err(|e| {
                    format!(
                        "invalid date {:?}: {e} (expected YYYY-MM-DD)",
                        r.start.get_ref()
                    )
                }),
            );
            if let (Some(shift), Some(handoff), Some(start)) = (shift, handoff, start) {
                rotations.push(Rotation {
                    name: r.name,
                    participants: r
                        .participants
                        .into_inner()
                        .into_iter()
                        .map(Spanned::into_inner)
                        .collect(),
                    shift,
                    handoff,
                    start,
                });
            }
        }
        let mut overrides = Vec::new();
        for o in s.overrides {
            check_user(checker, users, &o.user);
            let start = checker.check(o.start.span(), timestamp(o.start.get_ref()));
            let end = checker.check(o.end.span(), timestamp(o.end.get_ref()));
            if let (Some(start), Some(end)) = (start, end) {
                if end <= start {
                    checker.check::<()>(
                        o.end.span(),
                        Err("an override must end after it starts".into()),
                    );
                }
                overrides.push(Override {
                    user: o.user.into_inner(),
                    start,
                    end,
                });
            }
        }
        if let (true, Some(time_zone), true) = (named, tz, checker.items.len() == before) {
            schedules.push(Schedule {
                name: s.name.into_inner(),
                time_zone,
                rotations,
                overrides,
            });
        }
    }
    schedules
}

/// What policy targets may name.
pub(super) struct KnownTargets<'a> {
    pub users: &'a [User],
    pub teams: &'a [Team],
    pub schedules: &'a [Schedule],
    pub channels: &'a [String],
}

impl KnownTargets<'_> {
    /// Parses a target (`user:alice`, `schedule:primary`, `team:ml`,
    /// `channel:slack`, or a bare channel name) and checks that it exists.
    pub fn parse(&self, text: &str) -> Result<Target, String> {
        let target = Target::parse(text)?;
        let known = match &target {
            Target::User(n) => self.users.iter().any(|u| &u.name == n),
            Target::Team(n) => self.teams.iter().any(|t| &t.name == n),
            Target::Schedule(n) => self.schedules.iter().any(|s| &s.name == n),
            Target::Channel(n) => self.channels.iter().any(|c| c == n),
        };
        if known {
            return self.reachable(&target).map(|()| target);
        }
        Err(match target {
            Target::Channel(n) => format!(
                "unknown channel {n:?}: configured channels are {}",
                self.channels.join(", ")
            ),
            other => format!("unknown target {other}: not defined in this file"),
        })
    }
}

impl KnownTargets<'_> {
    /// Whether lim has a channel for one of the user's contact methods.
    fn user_reachable(&self, name: &str) -> bool {
        let has = |c: &str| self.channels.iter().any(|x| x == c);
        self.users.iter().any(|u| {
            u.name == name
                && ((u.email.is_some() && has("email"))
                    || (u.slack_user_id.is_some() && has("slack")))
        })
    }

    /// A target that can never reach anyone is a mistake to report now,
    /// not an incident that pages nobody later.
    fn reachable(&self, target: &Target) -> Result<(), String> {
        let how = "a user is paged by email (needs [channels.email]) or Slack DM (needs \
                   [channels.slack] and their slack_user_id)";
        let ok = match target {
            Target::Channel(_) => true,
            Target::User(n) => self.user_reachable(n),
            Target::Team(n) => self
                .teams
                .iter()
                .filter(|t| &t.name == n)
                .flat_map(|t| &t.members)
                .any(|m| self.user_reachable(m)),
            Target::Schedule(n) => self
                .schedules
                .iter()
                .filter(|s| &s.name == n)
                .flat_map(|s| {
                    s.rotations
                        .iter()
                        .flat_map(|r| r.participants.iter())
                        .chain(s.overrides.iter().map(|o| &o.user))
                })
                .any(|m| self.user_reachable(m)),
        };
        if ok {
            Ok(())
        } else {
            Err(format!("target {target} can reach nobody: {how}"))
        }
    }
}

pub(super) fn build_routes(
    checker: &mut Checker<'_>,
    raw: Vec<RawRoute>,
    services: &[crate::auth::Service],
) -> Vec<Route> {
    let mut routes = Vec::new();
    for r in raw {
        let before = checker.items.len();
        if r.matchers.get_ref().is_empty() {
            checker.check::<()>(
                r.matchers.span(),
                Err("a route needs at least one matcher".into()),
            );
        }
        let mut matchers = Vec::new();
        for m in r.matchers.into_inner() {
            if let Some(m) = checker.check(
                m.span(),
                Matcher::parse(m.get_ref()).map_err(|e| e.to_string()),
            ) {
                matchers.push(m);
            }
        }
        let service = r.service.get_ref();
        let known =
            service == crate::auth::DEFAULT_SERVICE || services.iter().any(|s| &s.name == service);
        if !known {
            checker.check::<()>(
                r.service.span(),
                Err(format!("unknown service {service:?}: not in [[services]]")),
            );
        }
        if checker.items.len() == before {
            routes.push(Route {
                matchers,
                service: r.service.into_inner(),
            });
        }
    }
    routes
}
