//! The directory: users, teams, schedules and channels by name, and the
//! pure resolution of a policy [`Target`] into [`Recipient`]s at an instant.
//!
//! * `user:NAME` → each contact method the user has *and* lim can use: an
//!   email address when an email channel is configured, a Slack user id
//!   when Slack is. A user with neither is nobody.
//! * `team:NAME` → every member, as users.
//! * `schedule:NAME` → whoever is on call at that instant, as users
//!   (`domain::schedule::on_call_at`).
//! * `channel:NAME` → the configured channel's recipient (`console`, a
//!   Slack channel, a webhook).
//!
//! Recipients are deduplicated in order, so a user reached both directly and
//! through a team is paged once. Unknown names resolve to nobody: config
//! validation refuses them, and a snapshot that outlived a config change
//! must not crash its incident.

use std::collections::BTreeMap;

use super::delivery::Recipient;
use super::policy::Target;
use crate::time::Timestamp;

/// How lim reaches one person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<String>,
    pub slack_user_id: Option<String>,
}

/// Resolves targets into recipients at an instant.
pub trait ResolveTargets: Send + Sync {
    fn recipients(&self, target: &Target, at: Timestamp) -> Vec<Recipient>;
}

/// Users, teams, schedules and channels, as configured.
#[derive(Clone, Debug, PartialEq)]
pub struct Directory {
    pub users: BTreeMap<String, Contact>,
    pub teams: BTreeMap<String, Vec<String>>,
    pub schedules: BTreeMap<String, super::schedule::Schedule>,
    /// Channel name → what it reaches (the email channel: each configured
    /// address).
    pub channels: BTreeMap<String, Vec<Recipient>>,
    /// Whether email / Slack delivery is configured (a user's address is
    /// only a recipient when it is).
    pub email_enabled: bool,
    pub slack_enabled: bool,
}

impl Default for Directory {
    /// Only the `console` channel: what a fresh `lim serve` has.
    fn default() -> Self {
        Directory {
            users: BTreeMap::new(),
            teams: BTreeMap::new(),
            schedules: BTreeMap::new(),
            channels: BTreeMap::from([("console".to_string(), vec![Recipient::Console])]),
            email_enabled: false,
            slack_enabled: false,
        }
    }
}

impl Directory {
    fn user_recipients(&self, name: &str, out: &mut Vec<Recipient>) {
        let Some(contact) = self.users.get(name) else {
            return;
        };
        if self.email_enabled {
            if let Some(address) = &contact.email {
                out.push(Recipient::Email {
                    user: name.to_string(),
                    address: address.clone(),
                });
            }
        }
        if self.slack_enabled {
            if let Some(id) = &contact.slack_user_id {
                out.push(Recipient::SlackUser {
                    user: name.to_string(),
                    slack_user_id: id.clone(),
                });
            }
        }
    }
}

impl ResolveTargets for Directory {
    fn recipients(&self, target: &Target, at: Timestamp) -> Vec<Recipient> {
        let mut out = Vec::new();
        match target {
            Target::Channel(name) => {
                out.extend(self.channels.get(name).into_iter().flatten().cloned())
            }
            Target::User(name) => self.user_recipients(name, &mut out),
            Target::Team(name) => {
                for member in self.teams.get(name).into_iter().flatten() {
                    self.user_recipients(member, &mut out);
                }
            }
            Target::Schedule(name) => {
                if let Some(schedule) = self.schedules.get(name) {
                    for user in super::schedule::on_call_at(schedule, at) {
                        self.user_recipients(&user, &mut out);
                    }
                }
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        out.retain(|r| seen.insert(r.clone()));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn directory() -> Directory {
        let mut d = Directory::default();
        d.users.insert(
            "alice".into(),
            Contact {
                email: Some("alice@example.com".into()),
                slack_user_id: Some("U1".into()),
            },
        );
        d.users.insert(
            "bob".into(),
            Contact {
                email: Some("bob@example.com".into()),
                slack_user_id: None,
            },
        );
        d.users.insert("carol".into(), Contact::default());
        d.teams.insert(
            "ml".into(),
            vec!["alice".into(), "bob".into(), "alice".into()],
        );
        d.email_enabled = true;
        d
    }

    #[test]
    fn users_are_reached_through_enabled_methods_only() {
        let mut d = directory();
        let alice = d.recipients(&Target::User("alice".into()), Timestamp(0));
        assert_eq!(
            alice,
            vec![Recipient::Email {
                user: "alice".into(),
                address: "alice@example.com".into()
            }],
            "Slack is not configured"
        );
        d.slack_enabled = true;
        assert_eq!(
            d.recipients(&Target::User("alice".into()), Timestamp(0))
                .len(),
            2
        );
        assert!(d
            .recipients(&Target::User("carol".into()), Timestamp(0))
            .is_empty());
        assert!(d
            .recipients(&Target::User("nobody".into()), Timestamp(0))
            .is_empty());
    }

    #[test]
    fn teams_dedupe_and_channels_map() {
        let d = directory();
        let team = d.recipients(&Target::Team("ml".into()), Timestamp(0));
        assert_eq!(team.len(), 2, "{team:?}");
        assert_eq!(
            d.recipients(&Target::Channel("console".into()), Timestamp(0)),
            vec![Recipient::Console]
        );
        assert!(d
            .recipients(&Target::Channel("pager".into()), Timestamp(0))
            .is_empty());
        assert!(d
            .recipients(&Target::Schedule("none".into()), Timestamp(0))
            .is_empty());
    }
}
