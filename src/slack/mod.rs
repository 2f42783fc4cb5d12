//! lim as a Slack app: what Slack sends to lim (button clicks and the
//! `/lim` slash command), as opposed to [`crate::channels::slack`], which
//! is what lim sends to Slack.
//!
//! * [`signature`]: Slack's request signing (`X-Slack-Signature`), checked
//!   on every request before anything else is read.
//! * [`SlackSettings`]: what the HTTP layer needs: the signing secret, the
//!   Slack user id → lim user map (`[[users]] slack_user_id`) and what to do
//!   with a Slack user who is not in it ([`UnmappedUsers`]).
//! * [`parse_interaction`] and [`parse_slash_command`]: pure parsers of the
//!   two request kinds; the handlers are in `crate::http::slack`.

pub mod signature;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use crate::channels::slack::{parse_action, SlackAction, SlackActionKind};

/// What a click or command from a Slack user with no `[[users]]` entry
/// (`slack_user_id`) does: `act` as `slack:<id>`, or be `refuse`d.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnmappedUsers {
    #[default]
    Act,
    Refuse,
}

/// The Slack app settings of the HTTP layer.
#[derive(Clone, PartialEq, Eq)]
pub struct SlackSettings {
    signing_secret: String,
    /// Slack user id → lim user name.
    users: BTreeMap<String, String>,
    unmapped: UnmappedUsers,
}

impl std::fmt::Debug for SlackSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackSettings")
            .field("signing_secret", &"<redacted>")
            .field("users", &self.users)
            .field("unmapped", &self.unmapped)
            .finish()
    }
}

impl SlackSettings {
    pub fn new(
        signing_secret: impl Into<String>,
        users: BTreeMap<String, String>,
        unmapped: UnmappedUsers,
    ) -> Self {
        SlackSettings {
            signing_secret: signing_secret.into(),
            users,
            unmapped,
        }
    }

    /// From the resolved config: `None` unless `[channels.slack]` has a
    /// signing secret (file or `LIM_SLACK_SIGNING_SECRET`).
    pub fn from_config(config: &crate::config::Config) -> Option<Self> {
        let slack = config.channels.slack.as_ref()?;
        let secret = slack
            .signing_secret
            .clone()
            .filter(|s| !s.trim().is_empty())?;
        let users = config
            .users
            .iter()
            .filter_map(|u| Some((u.slack_user_id.clone()?, u.name.clone())))
            .collect();
        Some(SlackSettings::new(secret, users, slack.unmapped_users))
    }

    pub fn signing_secret(&self) -> &str {
        &self.signing_secret
    }

    /// Who a Slack user acts as: their lim user, else `slack:<id>`; `None`
    /// when unmapped users are refused.
    pub fn actor(&self, slack_user_id: &str) -> Option<String> {
        match self.users.get(slack_user_id) {
            Some(name) => Some(name.clone()),
            None if self.unmapped == UnmappedUsers::Act => Some(format!("slack:{slack_user_id}")),
            None => None,
        }
    }
}

/// A `block_actions` interaction: who clicked which of lim's buttons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interaction {
    pub user_id: String,
    pub action: SlackAction,
    /// Unique per click (Slack's `action_ts`, with the trigger id): the
    /// same on a retry.
    pub click_id: String,
    pub response_url: Option<String>,
}

#[derive(Deserialize)]
struct RawInteraction {
    #[serde(rename = "type")]
    kind: String,
    user: RawUser,
    #[serde(default)]
    trigger_id: Option<String>,
    #[serde(default)]
    response_url: Option<String>,
    #[serde(default)]
    actions: Vec<RawAction>,
}

#[derive(Deserialize)]
struct RawUser {
    id: String,
}

#[derive(Deserialize)]
struct RawAction {
    action_id: String,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    action_ts: Option<String>,
}

/// Reads an interaction request's form body (`payload=<JSON>`). `Ok(None)`
/// for an interaction lim does not handle (another type, another app's
/// button), which is answered 200 and ignored.
pub fn parse_interaction(form_body: &[u8]) -> Result<Option<Interaction>, String> {
    let payload = url::form_urlencoded::parse(form_body)
        .find(|(k, _)| k == "payload")
        .map(|(_, v)| v.into_owned())
        .ok_or("the form has no `payload` field")?;
    let raw: RawInteraction =
        serde_json::from_str(&payload).map_err(|e| format!("payload: {e}"))?;
    if raw.kind != "block_actions" {
        return Ok(None);
    }
    let Some(action) = raw.actions.first() else {
        return Ok(None);
    };
    let Some(parsed) = parse_action(&action.action_id, action.value.as_deref().unwrap_or(""))
    else {
        return Ok(None);
    };
    let click_id = format!(
        "{}:{}:{}",
        raw.user.id,
        action.action_ts.as_deref().unwrap_or(""),
        raw.trigger_id.as_deref().unwrap_or("")
    );
    Ok(Some(Interaction {
        user_id: raw.user.id,
        action: parsed,
        click_id,
        response_url: raw.response_url,
    }))
}

/// A `/lim` slash command request: who typed what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SlashRequest {
    pub user_id: String,
    pub text: String,
}

/// Reads a slash command's form body (`user_id`, `text`, …).
pub fn parse_slash_request(form_body: &[u8]) -> Result<SlashRequest, String> {
    let mut user_id = None;
    let mut text = String::new();
    for (k, v) in url::form_urlencoded::parse(form_body) {
        match k.as_ref() {
            "user_id" => user_id = Some(v.into_owned()),
            "text" => text = v.into_owned(),
            _ => {}
        }
    }
    Ok(SlashRequest {
        user_id: user_id.ok_or("the form has no `user_id` field")?,
        text,
    })
}

/// What `/lim …` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SlashCommand {
    /// `ack ID`, `resolve ID`, `snooze ID 30m`.
    Act(SlackAction),
    /// `list`: open incidents.
    List,
    /// `oncall`: who is on call for every schedule.
    OnCall,
    /// `help`, or nothing.
    Help,
}

/// The usage text of `/lim`.
pub const SLASH_USAGE: &str = "Usage: `/lim ack ID`, `/lim resolve ID`, `/lim snooze ID 30m`, \
    `/lim list` (open incidents), `/lim oncall` (who is on call)";

/// Parses the text after `/lim`. The error is a message for the user.
pub fn parse_slash_command(text: &str) -> Result<SlashCommand, String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let id = |word: Option<&&str>| -> Result<incident_actors::domain::IncidentId, String> {
        let raw = word.ok_or_else(|| format!("which incident? {SLASH_USAGE}"))?;
        match raw.trim_start_matches('#').parse::<u64>() {
            Ok(n) if n > 0 => Ok(incident_actors::domain::IncidentId(n)),
            _ => Err(format!(
                "{raw:?} is not an incident id (a positive integer)"
            )),
        }
    };
    let act = |kind, words: &[&str]| -> Result<SlashCommand, String> {
        Ok(SlashCommand::Act(SlackAction {
            incident_id: id(words.get(1))?,
            kind,
        }))
    };
    let Some(verb) = words.first() else {
        return Ok(SlashCommand::Help);
    };
    let verb = verb.to_ascii_lowercase();
    let expect_len = |n: usize| {
        if words.len() > n {
            Err(format!("too many words after `{verb}`. {SLASH_USAGE}"))
        } else {
            Ok(())
        }
    };
    match verb.as_str() {
        "ack" | "acknowledge" => {
            expect_len(2)?;
            act(SlackActionKind::Acknowledge, &words)
        }
        "resolve" => {
            expect_len(2)?;
            act(SlackActionKind::Resolve, &words)
        }
        "snooze" => {
            expect_len(3)?;
            let raw = words.get(2).ok_or_else(|| {
                format!(
                    "for how long? e.g. `/lim snooze {} 30m`",
                    words.get(1).unwrap_or(&"ID")
                )
            })?;
            let d = humantime::parse_duration(raw)
                .map_err(|e| format!("{raw:?} is not a duration: {e}"))?;
            if d.is_zero() || d > crate::http::incident_actions::MAX_SNOOZE {
                return Err(format!("a snooze is between 1s and 7d, got {raw:?}"));
            }
            act(SlackActionKind::Snooze(d), &words)
        }
        "list" => expect_len(1).map(|()| SlashCommand::List),
        "oncall" | "on-call" => expect_len(1).map(|()| SlashCommand::OnCall),
        "help" => Ok(SlashCommand::Help),
        other => Err(format!("unknown command `{other}`. {SLASH_USAGE}")),
    }
}

/// Escapes text for Slack mrkdwn.
pub fn escape(s: &str) -> String {
    crate::channels::slack::escape_mrkdwn(s)
}

/// A short human form of a snooze duration (`30m`, `4h`).
pub fn duration_word(d: Duration) -> String {
    humantime::format_duration(d).to_string().replace(' ', "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_actors::domain::IncidentId;

    fn form(payload: &serde_json::Value) -> Vec<u8> {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("payload", &payload.to_string())
            .finish()
            .into_bytes()
    }

    #[test]
    fn block_actions_of_lims_buttons() {
        let p = serde_json::json!({
            "type": "block_actions",
            "user": {"id": "U1", "username": "alice"},
            "trigger_id": "t1",
            "response_url": "https://hooks.slack.com/actions/x",
            "actions": [{"action_id": "lim_snooze_4h", "block_id": "lim_actions",
                         "value": "{\"incident_id\":7}", "type": "button", "action_ts": "1.2"}]
        });
        let i = parse_interaction(&form(&p)).unwrap().unwrap();
        assert_eq!(i.user_id, "U1");
        assert_eq!(i.action.incident_id, IncidentId(7));
        assert_eq!(
            i.action.kind,
            SlackActionKind::Snooze(Duration::from_secs(4 * 3600))
        );
        assert_eq!(i.click_id, "U1:1.2:t1");
        let other = serde_json::json!({"type": "view_submission", "user": {"id": "U1"}});
        assert_eq!(parse_interaction(&form(&other)).unwrap(), None);
        let foreign = serde_json::json!({"type": "block_actions", "user": {"id": "U1"},
            "actions": [{"action_id": "other_app", "value": "x"}]});
        assert_eq!(parse_interaction(&form(&foreign)).unwrap(), None);
        assert!(parse_interaction(b"nothing=here").is_err());
        assert!(parse_interaction(b"payload=%7Bnot").is_err());
    }

    #[test]
    fn slash_commands() {
        let act = |id, kind| {
            Ok(SlashCommand::Act(SlackAction {
                incident_id: IncidentId(id),
                kind,
            }))
        };
        assert_eq!(
            parse_slash_command("ack 4"),
            act(4, SlackActionKind::Acknowledge)
        );
        assert_eq!(
            parse_slash_command(" Resolve #12 "),
            act(12, SlackActionKind::Resolve)
        );
        assert_eq!(
            parse_slash_command("snooze 3 30m"),
            act(3, SlackActionKind::Snooze(Duration::from_secs(1800)))
        );
        assert_eq!(parse_slash_command("list"), Ok(SlashCommand::List));
        assert_eq!(parse_slash_command("oncall"), Ok(SlashCommand::OnCall));
        assert_eq!(parse_slash_command(""), Ok(SlashCommand::Help));
        for bad in [
            "ack",
            "ack 0",
            "ack x",
            "ack 1 2",
            "snooze 3",
            "snooze 3 soon",
            "snooze 3 9d",
            "dance",
        ] {
            assert!(parse_slash_command(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unmapped_users_act_or_are_refused() {
        let users = BTreeMap::from([("U1".to_string(), "alice".to_string())]);
        let act = SlackSettings::new("s", users.clone(), UnmappedUsers::Act);
        assert_eq!(act.actor("U1").as_deref(), Some("alice"));
        assert_eq!(act.actor("U9").as_deref(), Some("slack:U9"));
        let refuse = SlackSettings::new("s", users, UnmappedUsers::Refuse);
        assert_eq!(refuse.actor("U1").as_deref(), Some("alice"));
        assert_eq!(refuse.actor("U9"), None);
        assert!(!format!("{refuse:?}").contains("\"s\""));
    }

    #[test]
    fn settings_from_the_config_and_the_environment() {
        use crate::config::{apply_slack_signing_secret_env, parse_file, resolve, Overrides};
        let text = r##"
[[users]]
name = "alice"
slack_user_id = "UALICE"

[channels.slack]
bot_token = "xoxb-1"
default_channel = "#oncall"
signing_secret = "from-file"
unmapped_users = "refuse"
"##;
        let mut config = resolve(parse_file(text).unwrap(), &Overrides::default()).unwrap();
        let settings = SlackSettings::from_config(&config).unwrap();
        assert_eq!(settings.signing_secret(), "from-file");
        assert_eq!(settings.actor("UALICE").as_deref(), Some("alice"));
        assert_eq!(settings.actor("U9"), None);
        let slack = config.channels.slack.as_ref().unwrap();
        assert!(!format!("{slack:?}").contains("from-file"));
        apply_slack_signing_secret_env(&mut config, Some("from-env")).unwrap();
        let settings = SlackSettings::from_config(&config).unwrap();
        assert_eq!(settings.signing_secret(), "from-env");

        let text = "[channels.slack]\nbot_token = \"x\"\ndefault_channel = \"#a\"\n";
        let config = resolve(parse_file(text).unwrap(), &Overrides::default()).unwrap();
        assert_eq!(
            SlackSettings::from_config(&config),
            None,
            "no secret, no Slack app"
        );
        let bad = format!("{text}signing_secret = \" \"\n");
        assert!(parse_file(&bad).is_err(), "an empty secret is refused");
        let bad = format!("{text}unmapped_users = \"ignore\"\n");
        assert!(parse_file(&bad).is_err());

        let mut bare = crate::config::Config::default();
        assert!(apply_slack_signing_secret_env(&mut bare, Some("s")).is_err());
        assert!(apply_slack_signing_secret_env(&mut bare, Some(" ")).is_ok());
    }
}
