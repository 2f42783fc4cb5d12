//! Silences: Alertmanager's label matchers (`=`, `!=`, `=~`, `!~`) with a
//! start, an end, a creator and a comment. Pure: parsing, matching, and
//! whether a silence is in force at an instant.
//!
//! Semantics follow Alertmanager: a regex matcher is anchored at both ends
//! (`model=~gpt.*` matches `gpt-4o`, not `my-gpt`); a label that is absent
//! has the empty value, so `team!=infra` matches an alert with no `team`
//! label and `team=` matches only alerts without one; a silence matches an
//! alert when every one of its matchers does.

use std::fmt;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::alert::Labels;
use crate::time::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum MatchOp {
    #[serde(rename = "=")]
    Equal,
    #[serde(rename = "!=")]
    NotEqual,
    #[serde(rename = "=~")]
    Regex,
    #[serde(rename = "!~")]
    NotRegex,
}

impl MatchOp {
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MatcherError {
    #[error("matcher {0:?} has no operator: expected name=value, name!=value, name=~regex or name!~regex")]
    NoOperator(String),
    #[error("matcher {0:?} has an empty label name")]
    EmptyName(String),
    #[error("matcher {matcher:?}: invalid regex: {reason}")]
    BadRegex { matcher: String, reason: String },
    #[error("a silence needs at least one matcher")]
    NoMatchers,
    #[error("a silence needs at least one matcher that does not match the empty string, or it would silence everything")]
    MatchesEverything,
    #[error("a silence must end after it starts")]
    EndsBeforeStart,
    #[error("a silence must end before the year 10000")]
    TooFar,
}

/// One `name op value` matcher. The compiled regex is rebuilt on decode.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(try_from = "MatcherSpec", into = "MatcherSpec")]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct MatcherSpec {
    name: String,
    op: MatchOp,
    value: String,
}

impl TryFrom<MatcherSpec> for Matcher {
    type Error = MatcherError;
    fn try_from(s: MatcherSpec) -> Result<Self, MatcherError> {
        Matcher::new(s.name, s.op, s.value)
    }
}

impl From<Matcher> for MatcherSpec {
    fn from(m: Matcher) -> Self {
        MatcherSpec {
            name: m.name,
            op: m.op,
            value: m.value,
        }
    }
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.name, self.op.as_str(), self.value)
    }
}

impl Matcher {
    pub fn new(name: String, op: MatchOp, value: String) -> Result<Self, MatcherError> {
        let shown = || format!("{name}{}{value}", op.as_str());
        if name.trim().is_empty() {
            return Err(MatcherError::EmptyName(shown()));
        }
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$")).map_err(|e| MatcherError::BadRegex {
                    matcher: shown(),
                    reason: e.to_string(),
                })?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name,
            op,
            value,
            regex,
        })
    }

    /// Parses `name=value`, `name!=value`, `name=~regex`, `name!~regex`.
    /// Surrounding double quotes on the value are removed (`name="x"`).
    pub fn parse(s: &str) -> Result<Self, MatcherError> {
        let s = s.trim();
        let (at, op, len) = ["!~", "=~", "!=", "="]
            .iter()
            .filter_map(|token| s.find(token).map(|at| (at, *token)))
            .min_by_key(|(at, token)| (*at, std::cmp::Reverse(token.len())))
            .map(|(at, token)| {
                let op = match token {
                    "!~" => MatchOp::NotRegex,
                    "=~" => MatchOp::Regex,
                    "!=" => MatchOp::NotEqual,
                    _ => MatchOp::Equal,
                };
                (at, op, token.len())
            })
            .ok_or_else(|| MatcherError::NoOperator(s.to_string()))?;
        let name = s[..at].trim().to_string();
        let raw = s[at + len..].trim();
        let value = raw
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(raw)
            .to_string();
        Matcher::new(name, op, value)
    }

    fn matches_value(&self, value: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => value == self.value,
            (MatchOp::NotEqual, _) => value != self.value,
            (MatchOp::Regex, Some(r)) => r.is_match(value),
            (MatchOp::NotRegex, Some(r)) => !r.is_match(value),
            (_, None) => false,
        }
    }

    /// Whether the labels satisfy this matcher (an absent label is "").
    pub fn matches(&self, labels: &Labels) -> bool {
        self.matches_value(labels.get(&self.name).unwrap_or(""))
    }
}

/// The latest end a silence may have: 9999-12-31T23:59:59.999Z. RFC 3339
/// has no later years, so a later instant could not be written and read back.
pub const LATEST_END: Timestamp = Timestamp(253_402_300_799_999);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(transparent)]
pub struct SilenceId(pub u64);

impl fmt::Display for SilenceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: SilenceId,
    pub matchers: Vec<Matcher>,
    pub starts_at: Timestamp,
    pub ends_at: Timestamp,
    pub created_by: String,
    pub comment: String,
    pub created_at: Timestamp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum SilenceState {
    Pending,
    Active,
    Expired,
}

impl Silence {
    /// Checks what makes a silence unusable: no matchers, matchers that
    /// would silence every alert, an end before the start.
    pub fn validate(&self) -> Result<(), MatcherError> {
        if self.matchers.is_empty() {
            return Err(MatcherError::NoMatchers);
        }
        if self.matchers.iter().all(|m| m.matches_value("")) {
            return Err(MatcherError::MatchesEverything);
        }
        if self.ends_at <= self.starts_at {
            return Err(MatcherError::EndsBeforeStart);
        }
        if self.ends_at > LATEST_END {
            return Err(MatcherError::TooFar);
        }
        Ok(())
    }

    pub fn state(&self, now: Timestamp) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }

    /// Whether this silence silences `labels` at `now`.
    pub fn silences(&self, labels: &Labels, now: Timestamp) -> bool {
        self.state(now) == SilenceState::Active && self.matchers.iter().all(|m| m.matches(labels))
    }

    /// Ends the silence at `now` (if it has not ended already).
    pub fn expire(&mut self, now: Timestamp) {
        if self.ends_at > now {
            self.ends_at = now.max(self.starts_at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn silence(matchers: &[&str]) -> Silence {
        Silence {
            id: SilenceId(1),
            matchers: matchers
                .iter()
                .map(|m| Matcher::parse(m).unwrap())
                .collect(),
            starts_at: Timestamp(100),
            ends_at: Timestamp(200),
            created_by: "alice".into(),
            comment: "deploy".into(),
            created_at: Timestamp(90),
        }
    }

    #[test]
    fn parses_every_operator() {
        let m = |s: &str| {
            let m = Matcher::parse(s).unwrap();
            (m.name, m.op, m.value)
        };
        assert_eq!(
            m("alertname=X"),
            ("alertname".into(), MatchOp::Equal, "X".into())
        );
        assert_eq!(
            m("model=~gpt.*"),
            ("model".into(), MatchOp::Regex, "gpt.*".into())
        );
        assert_eq!(
            m("env!=prod"),
            ("env".into(), MatchOp::NotEqual, "prod".into())
        );
        assert_eq!(
            m("team!~infra|sre"),
            ("team".into(), MatchOp::NotRegex, "infra|sre".into())
        );
        assert_eq!(
            m(r#"summary="a=b""#),
            ("summary".into(), MatchOp::Equal, "a=b".into())
        );
        assert_eq!(Matcher::parse("x=~a").unwrap().to_string(), "x=~a");
        assert!(matches!(
            Matcher::parse("novalue"),
            Err(MatcherError::NoOperator(_))
        ));
        assert!(matches!(
            Matcher::parse("=x"),
            Err(MatcherError::EmptyName(_))
        ));
        assert!(matches!(
            Matcher::parse("x=~("),
            Err(MatcherError::BadRegex { .. })
        ));
    }

    #[test]
    fn matching_follows_alertmanager() {
        let l = labels(&[("alertname", "HighLatency"), ("model", "gpt-4o")]);
        let yes = |s: &str| Matcher::parse(s).unwrap().matches(&l);
        assert!(yes("alertname=HighLatency"));
        assert!(yes("model=~gpt.*"));
        assert!(!yes("model=~gpt"), "anchored");
        assert!(!yes("model=~4o"), "anchored at the start too");
        assert!(yes("model!~claude.*"));
        assert!(yes("team!=infra"), "absent label is empty");
        assert!(yes("team="), "absent label equals empty");
        assert!(!yes("model!=gpt-4o"));
    }

    #[test]
    fn active_only_between_start_and_end_and_all_matchers_must_match() {
        let s = silence(&["alertname=HighLatency", "model=~gpt.*"]);
        let hit = labels(&[("alertname", "HighLatency"), ("model", "gpt-4o")]);
        let miss = labels(&[("alertname", "HighLatency"), ("model", "claude")]);
        assert!(!s.silences(&hit, Timestamp(99)), "pending");
        assert!(s.silences(&hit, Timestamp(100)));
        assert!(!s.silences(&miss, Timestamp(150)));
        assert!(!s.silences(&hit, Timestamp(200)), "expired at ends_at");
        assert_eq!(s.state(Timestamp(50)), SilenceState::Pending);
        let mut s = s;
        s.expire(Timestamp(150));
        assert_eq!(s.state(Timestamp(150)), SilenceState::Expired);
    }

    #[test]
    fn validation() {
        assert!(silence(&["alertname=X"]).validate().is_ok());
        assert_eq!(silence(&[]).validate(), Err(MatcherError::NoMatchers));
        assert_eq!(
            silence(&["x=~.*"]).validate(),
            Err(MatcherError::MatchesEverything)
        );
        let mut s = silence(&["alertname=X"]);
        s.ends_at = s.starts_at;
        assert_eq!(s.validate(), Err(MatcherError::EndsBeforeStart));
        s.ends_at = Timestamp(LATEST_END.0 + 1);
        assert_eq!(s.validate(), Err(MatcherError::TooFar));
        s.ends_at = LATEST_END;
        assert!(s.validate().is_ok());
        assert_eq!(
            serde_json::from_str::<Timestamp>(&serde_json::to_string(&LATEST_END).unwrap())
                .unwrap(),
            LATEST_END,
            "the latest end round-trips through JSON"
        );
    }

    #[test]
    fn json_round_trip_rebuilds_the_regex() {
        let s = silence(&["model=~gpt.*"]);
        let json = serde_json::to_string(&s).unwrap();
        assert!(json.contains(r#""op":"=~""#), "{json}");
        let back: Silence = serde_json::from_str(&json).unwrap();
        assert!(back.silences(&labels(&[("model", "gpt-4o")]), Timestamp(150)));
        assert!(serde_json::from_str::<Matcher>(r#"{"name":"x","op":"=~","value":"("}"#).is_err());
    }
}
