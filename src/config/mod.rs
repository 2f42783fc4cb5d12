//! Server configuration: defaults, an optional TOML file, environment overrides.
//!
//! Precedence, lowest first: built-in defaults, the file (`--config FILE` or
//! `LIM_CONFIG`), then the environment (`LIM_LISTEN`, `LIM_DATABASE_URL`,
//! `LIM_RESOLVE_TIMEOUT`).
//!
//! The file is parsed in two passes. Serde (with `deny_unknown_fields`) checks
//! the shape and keeps the byte span of every value (`toml::Spanned`); then
//! pure validation functions check meanings (socket address, database scheme,
//! durations, channel names, the escalation policy) and report every problem
//! with the span of the offending value. [`Diagnostic`] turns spans into
//! `LINE:COL`, which is what `lim check-config` prints and what `lim serve`
//! reports when it refuses a file.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! database_url = "sqlite://./data/lim.db"
//! resolve_timeout = "5m"   # a pushed Prometheus alert without endsAt
//!                          # resolves after this long without a re-send
//!
//! [escalation]
//! repeat = 2
//! ack_timeout = "30m"
//!
//! [[escalation.steps]]
//! delay = "5m"
//! targets = ["console"]
//! ```

mod channels;
mod oncall;

pub use channels::ChannelSettings;
pub use oncall::Route;

use crate::auth::{self, Access, ApiToken, Scope, SecretDigest, Service};
use crate::http::limits::AlertLimits;
use incident_actors::domain::schedule::{Schedule, Team, User};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use incident_actors::domain::{EscalationPolicy, EscalationStep, HeartbeatMonitor};
use serde::Deserialize;
use toml::Spanned;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://./data/lim.db";
/// The name of the policy built from the `[escalation]` table.
pub const POLICY_NAME: &str = "default";
/// How long a pushed alert without `endsAt` stays firing without a re-send
/// (Alertmanager's `resolve_timeout`, same default).
pub const DEFAULT_RESOLVE_TIMEOUT: Duration = Duration::from_secs(5 * 60);
/// The environment variable that overrides `resolve_timeout`.
pub const RESOLVE_TIMEOUT_ENV: &str = "LIM_RESOLVE_TIMEOUT";

/// The resolved configuration `lim serve` runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub escalation: EscalationPolicy,
    pub resolve_timeout: Duration,
    pub limits: AlertLimits,
    /// `[auth] allow_unauthenticated`: the operator's explicit consent to
    /// listen beyond loopback with nothing authenticating requests.
    pub allow_unauthenticated: bool,
    /// `[[services]]` and `[[api_tokens]]`.
    pub access: Access,
    /// `[[heartbeats]]`: dead-man's switches.
    pub heartbeats: Vec<HeartbeatMonitor>,
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub schedules: Vec<Schedule>,
    /// `[[escalation_policies]]`: named policies besides `escalation`.
    pub policies: Vec<EscalationPolicy>,
    /// `[[routes]]`: label matchers → service, first match wins.
    pub routes: Vec<Route>,
    /// lim's public base URL, for links in notifications.
    pub public_url: Option<String>,
    /// `[channels]`, or the quick-start environment without a file.
    pub channels: ChannelSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: DEFAULT_LISTEN
                .parse()
                .expect("the default listen address is valid"),
            database_url: DEFAULT_DATABASE_URL.to_string(),
            escalation: EscalationPolicy::default_console(),
            resolve_timeout: DEFAULT_RESOLVE_TIMEOUT,
            limits: AlertLimits::default(),
            allow_unauthenticated: false,
            access: Access::default(),
            heartbeats: Vec::new(),
            users: Vec::new(),
            teams: Vec::new(),
            schedules: Vec::new(),
            policies: Vec::new(),
            routes: Vec::new(),
            public_url: None,
            channels: ChannelSettings::default(),
        }
    }
}

impl Config {
    /// The core's configuration: policies, which service follows which,
    /// the directory policy targets resolve through, heartbeat monitors.
    pub fn system_config(&self) -> incident_actors::SystemConfig {
        use incident_actors::domain::{Contact, Directory};
        let mut directory = Directory::default();
        for u in &self.users {
            directory.users.insert(
                u.name.clone(),
                Contact {
                    email: u.email.clone(),
                    slack_user_id: u.slack_user_id.clone(),
                },
            );
        }
        for t in &self.teams {
            directory.teams.insert(t.name.clone(), t.members.clone());
        }
        for s in &self.schedules {
            directory.schedules.insert(s.name.clone(), s.clone());
        }
        directory.channels = self.channels.recipients();
        directory.email_enabled = self.channels.email.is_some();
        directory.slack_enabled = self.channels.slack.is_some();
        incident_actors::SystemConfig {
            policy: self.escalation.clone(),
            policies: self
                .policies
                .iter()
                .map(|p| (p.name.clone(), p.clone()))
                .collect(),
            service_policies: self
                .access
                .services()
                .iter()
                .map(|s| (s.name.clone(), s.escalation_policy.clone()))
                .collect(),
            directory,
            heartbeats: self.heartbeats.clone(),
            public_url: self.public_url.clone(),
            ..incident_actors::SystemConfig::default()
        }
    }
}

/// Values taken from the environment (or the equivalent command-line flags);
/// they win over the file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overrides {
    pub listen: Option<String>,
    pub database_url: Option<String>,
}

/// What a valid file sets; `None` keeps the default.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSettings {
    pub listen: Option<SocketAddr>,
    pub database_url: Option<String>,
    pub escalation: Option<EscalationPolicy>,
    pub resolve_timeout: Option<Duration>,
    pub limits: Option<AlertLimits>,
    pub allow_unauthenticated: Option<bool>,
    pub services: Vec<Service>,
    pub api_tokens: Vec<ApiToken>,
    pub heartbeats: Vec<HeartbeatMonitor>,
    pub users: Vec<User>,
    pub teams: Vec<Team>,
    pub schedules: Vec<Schedule>,
    pub policies: Vec<EscalationPolicy>,
    pub routes: Vec<Route>,
    pub public_url: Option<String>,
    pub channels: ChannelSettings,
}

/// One problem in a config file, located at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    /// Locates `span` (byte offsets into `text`); no span means the start of the file.
    pub fn at(text: &str, span: Option<Range<usize>>, message: impl Into<String>) -> Self {
        let (line, column) = line_col(text, span.map_or(0, |s| s.start));
        Diagnostic {
            line,
            column,
            message: message.into(),
        }
    }

    /// `FILE:LINE:COL: message`.
    pub fn render(&self, file: &Path) -> String {
        format!(
            "{}:{}:{}: {}",
            file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

/// The diagnostics of one file, rendered one per line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostics {
    pub file: PathBuf,
    pub items: Vec<Diagnostic>,
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.items.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(&d.render(&self.file))?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file:\n{0}")]
    Invalid(Diagnostics),
    #[error("invalid {var}: {message}")]
    Env { var: &'static str, message: String },
    #[error("{0}")]
    Unsafe(String),
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// Parses a listen address (`IP:PORT`).
pub fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("invalid listen address {s:?}: expected IP:PORT, e.g. \"127.0.0.1:8080\"")
    })
}

/// Checks that a database URL names a backend lim has: `sqlite:` or `postgres:`.
pub fn check_database_url(url: &str) -> Result<(), String> {
    match url.split_once(':') {
        Some(("sqlite" | "postgres" | "postgresql", _)) => Ok(()),
        Some((scheme, _)) if !scheme.is_empty() => Err(format!(
            "unknown database scheme {scheme:?} in database_url: expected sqlite: or postgres:"
        )),
        _ => Err(format!(
            "invalid database_url {url:?}: expected a URL starting with sqlite: or postgres:"
        )),
    }
}

/// Parses a humantime duration such as `"5m"` or `"1h 30m"`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e} (expected e.g. \"30s\", \"5m\", \"1h\")"))
}

/// Parses `resolve_timeout`: a duration greater than zero.
pub fn parse_resolve_timeout(s: &str) -> Result<Duration, String> {
    match parse_duration(s)? {
        d if d.is_zero() => Err(format!(
            "invalid resolve_timeout {s:?}: must be greater than zero"
        )),
        d => Ok(d),
    }
}

// ---- the file as written, with spans ------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    listen: Option<Spanned<String>>,
    database_url: Option<Spanned<String>>,
    resolve_timeout: Option<Spanned<String>>,
    escalation: Option<Spanned<RawEscalation>>,
    limits: Option<Spanned<AlertLimits>>,
    auth: Option<RawAuth>,
    #[serde(default)]
    services: Vec<RawService>,
    #[serde(default)]
    api_tokens: Vec<RawToken>,
    #[serde(default)]
    heartbeats: Vec<RawHeartbeat>,
    public_url: Option<Spanned<String>>,
    #[serde(default)]
    users: Vec<oncall::RawUser>,
    #[serde(default)]
    teams: Vec<oncall::RawTeam>,
    #[serde(default)]
    schedules: Vec<oncall::RawSchedule>,
    #[serde(default)]
    escalation_policies: Vec<Spanned<RawEscalation>>,
    #[serde(default)]
    routes: Vec<oncall::RawRoute>,
    channels: Option<channels::RawChannels>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHeartbeat {
    name: Spanned<String>,
    service: Option<Spanned<String>>,
    interval: Spanned<String>,
    grace: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawService {
    name: Spanned<String>,
    #[serde(default)]
    integration_keys: Vec<Spanned<String>>,
    escalation_policy: Option<Spanned<String>>,
    #[serde(default)]
    labels: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    user: Spanned<String>,
    token_sha256: Spanned<String>,
    scopes: Spanned<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAuth {
    allow_unauthenticated: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEscalation {
    /// Required in `[[escalation_policies]]`; `[escalation]` is `default`.
    name: Option<Spanned<String>>,
    #[serde(default)]
    repeat: u32,
    ack_timeout: Option<Spanned<String>>,
    steps: Spanned<Vec<RawStep>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    delay: Spanned<String>,
    targets: Spanned<Vec<Spanned<String>>>,
}

/// Collects the problems of one file; `check` records a failed validation at
/// the span of the value it was about.
struct Checker<'a> {
    text: &'a str,
    items: Vec<Diagnostic>,
}

impl Checker<'_> {
    fn check<T>(&mut self, span: Range<usize>, result: Result<T, String>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(message) => {
                self.items
                    .push(Diagnostic::at(self.text, Some(span), message));
                None
            }
        }
    }
}

/// Parses and validates a config file's text. Returns every problem found
/// (a syntax or shape error stops at the first one, as TOML parsing does).
pub fn parse_file(text: &str) -> Result<FileSettings, Vec<Diagnostic>> {
    let raw: RawFile = toml::from_str(text)
        .map_err(|e| vec![Diagnostic::at(text, e.span(), e.message().trim_end())])?;
    let mut checker = Checker {
        text,
        items: Vec::new(),
    };
    let listen = raw
        .listen
        .and_then(|l| checker.check(l.span(), parse_listen(l.get_ref())));
    let database_url = raw.database_url.and_then(|u| {
        let span = u.span();
        let url = u.into_inner();
        checker.check(span, check_database_url(&url)).map(|()| url)
    });
    let resolve_timeout = raw
        .resolve_timeout
        .and_then(|t| checker.check(t.span(), parse_resolve_timeout(t.get_ref())));
    let users = oncall::build_users(&mut checker, raw.users);
    let teams = oncall::build_teams(&mut checker, raw.teams, &users);
    let schedules = oncall::build_schedules(&mut checker, raw.schedules, &users);
    let channel_settings = channels::build_channels(&mut checker, raw.channels);
    let channel_names = channel_settings.names();
    let known = oncall::KnownTargets {
        users: &users,
        teams: &teams,
        schedules: &schedules,
        channels: &channel_names,
    };
    let escalation = raw
        .escalation
        .and_then(|e| build_policy(&mut checker, e, &known, false));
    let mut policies: Vec<EscalationPolicy> = Vec::new();
    for p in raw.escalation_policies {
        if let Some(policy) = build_policy(&mut checker, p, &known, true) {
            policies.push(policy);
        }
    }
    let public_url = raw.public_url.and_then(|u| {
        let span = u.span();
        let url = u.into_inner();
        let ok = url.starts_with("http://") || url.starts_with("https://");
        checker
            .check(
                span,
                if ok {
                    Ok(())
                } else {
                    Err(format!(
                        "invalid public_url {url:?}: expected http(s)://host[/path]"
                    ))
                },
            )
            .map(|()| url.trim_end_matches('/').to_string())
    });
    let limits = raw.limits.and_then(|l| {
        let span = l.span();
        let limits = l.into_inner();
        checker.check(span, limits.validate()).map(|()| limits)
    });
    let policy_names: Vec<&str> = std::iter::once(POLICY_NAME)
        .chain(policies.iter().map(|p| p.name.as_str()))
        .collect();
    let services = build_services(&mut checker, raw.services, &policy_names);
    let routes = oncall::build_routes(&mut checker, raw.routes, &services);
    let api_tokens = build_tokens(&mut checker, raw.api_tokens);
    let heartbeats = build_heartbeats(&mut checker, raw.heartbeats, &services);
    if checker.items.is_empty() {
        Ok(FileSettings {
            listen,
            database_url,
            escalation,
            resolve_timeout,
            limits,
            allow_unauthenticated: raw.auth.and_then(|a| a.allow_unauthenticated),
            services,
            api_tokens,
            heartbeats,
            users,
            teams,
            schedules,
            policies,
            routes,
            public_url,
            channels: channel_settings,
        })
    } else {
        Err(checker.items)
    }
}

/// Builds one policy: `[escalation]` (named `default`, no `name` key) or
/// an entry of `[[escalation_policies]]` (`named`: a `name` is required).
fn build_policy(
    checker: &mut Checker<'_>,
    raw: Spanned<RawEscalation>,
    known: &oncall::KnownTargets<'_>,
    named: bool,
) -> Option<EscalationPolicy> {
    let table_span = raw.span();
    let raw = raw.into_inner();
    let before = checker.items.len();
    let name = match (named, raw.name) {
        (false, None) => POLICY_NAME.to_string(),
        (false, Some(n)) => {
            checker.check::<()>(
                n.span(),
                Err("[escalation] is the `default` policy; name other policies in [[escalation_policies]]".into()),
            );
            return None;
        }
        (true, None) => {
            checker.check::<()>(
                table_span,
                Err("a policy in [[escalation_policies]] needs a `name`".into()),
            );
            return None;
        }
        (true, Some(n)) if n.get_ref() == POLICY_NAME => {
            checker.check::<()>(
                n.span(),
                Err("the `default` policy is the [escalation] table; pick another name".into()),
            );
            return None;
        }
        (true, Some(n)) => n.into_inner(),
    };
    let ack_timeout = raw
        .ack_timeout
        .and_then(|t| checker.check(t.span(), parse_duration(t.get_ref())));
    let steps_span = raw.steps.span();
    let mut steps = Vec::new();
    for step in raw.steps.into_inner() {
        let delay = checker.check(step.delay.span(), parse_duration(step.delay.get_ref()));
        let mut targets = Vec::new();
        for target in step.targets.into_inner() {
            if let Some(t) = checker.check(target.span(), known.parse(target.get_ref())) {
                targets.push(t);
            }
        }
        if let Some(delay) = delay {
            steps.push(EscalationStep { delay, targets });
        }
    }
    if checker.items.len() > before {
        return None;
    }
    let policy = EscalationPolicy {
        name,
        steps,
        repeat: raw.repeat,
        ack_timeout,
    };
    let span = if policy.steps.is_empty() {
        steps_span
    } else {
        table_span
    };
    checker.check(span, policy.validate().map_err(|e| e.to_string()))?;
    Some(policy)
}

/// A service name: what incidents are filtered by and routed on.
pub fn check_service_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid service name {name:?}: use 1 to 128 letters, digits, '-', '_' or '.'"
        ))
    }
}

/// A label name as Prometheus allows it: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn check_label_name(name: &str) -> Result<(), String> {
    let mut chars = name.chars();
    let valid = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "invalid label name {name:?}: expected [a-zA-Z_][a-zA-Z0-9_]*"
        ))
    }
}

fn build_services(
    checker: &mut Checker<'_>,
    raw: Vec<RawService>,
    policy_names: &[&str],
) -> Vec<Service> {
    let mut names = HashSet::new();
    let mut keys: Vec<SecretDigest> = Vec::new();
    let mut services = Vec::new();
    for s in raw {
        let name_span = s.name.span();
        let name = s.name.into_inner();
        if checker
            .check(name_span.clone(), check_service_name(&name))
            .is_some()
            && !names.insert(name.clone())
        {
            checker.check::<()>(name_span, Err(format!("service {name:?} is defined twice")));
        }
        let mut integration_keys = Vec::new();
        for key in s.integration_keys {
            let span = key.span();
            let Some(digest) =
                checker.check(span.clone(), auth::parse_integration_key(key.get_ref()))
            else {
                continue;
            };
            if keys.contains(&digest) {
                checker.check::<()>(
                    span,
                    Err("this integration key is used twice: a key must name one service".into()),
                );
            } else {
                keys.push(digest);
                integration_keys.push(digest);
            }
        }
        let escalation_policy = match s.escalation_policy {
            Some(p) => {
                let span = p.span();
                let p = p.into_inner();
                let known = if policy_names.contains(&p.as_str()) {
                    Ok(())
                } else {
                    Err(format!(
                        "unknown escalation policy {p:?}: the policies are {}",
                        policy_names.join(", ")
                    ))
                };
                checker.check(span, known);
                p
            }
            None => POLICY_NAME.to_string(),
        };
        let mut labels = BTreeMap::new();
        for (k, v) in s.labels {
            let span = k.span();
            let k = k.into_inner();
            let checked = check_label_name(&k).and_then(|()| {
                if k == "service" {
                    Err("label `service` is the service's name; it cannot be set here".into())
                } else {
                    Ok(())
                }
            });
            if checker.check(span, checked).is_some() {
                labels.insert(k, v.into_inner());
            }
        }
        services.push(Service {
            name,
            integration_keys,
            escalation_policy,
            labels,
        });
    }
    services
}

fn build_tokens(checker: &mut Checker<'_>, raw: Vec<RawToken>) -> Vec<ApiToken> {
    let mut tokens: Vec<ApiToken> = Vec::new();
    for t in raw {
        let user_span = t.user.span();
        let user = t.user.into_inner();
        if user.trim().is_empty() {
            checker.check::<()>(user_span, Err("`user` must not be empty".into()));
        }
        let digest_span = t.token_sha256.span();
        let digest = checker.check(
            digest_span.clone(),
            SecretDigest::parse(t.token_sha256.get_ref()),
        );
        if digest.is_some_and(|d| tokens.iter().any(|t| t.digest == d)) {
            checker.check::<()>(digest_span, Err("this token digest is used twice".into()));
        }
        let scopes_span = t.scopes.span();
        let mut scopes = Vec::new();
        for scope in t.scopes.into_inner() {
            if let Some(s) = checker.check(scope.span(), Scope::parse(scope.get_ref())) {
                scopes.push(s);
            }
        }
        if scopes.is_empty() {
            checker.check::<()>(
                scopes_span,
                Err("a token needs at least one scope: \"read\", \"write\"".into()),
            );
        }
        if let Some(digest) = digest {
            scopes.sort();
            scopes.dedup();
            tokens.push(ApiToken {
                user: user.trim().to_string(),
                digest,
                scopes,
            });
        }
    }
    tokens
}

fn build_heartbeats(
    checker: &mut Checker<'_>,
    raw: Vec<RawHeartbeat>,
    services: &[Service],
) -> Vec<HeartbeatMonitor> {
    let mut monitors: Vec<HeartbeatMonitor> = Vec::new();
    for h in raw {
        let name_span = h.name.span();
        let service = match h.service {
            Some(s) => {
                let span = s.span();
                let s = s.into_inner();
                // With services configured, a monitor must belong to one of
                // them: its pings are checked against that service's keys.
                if !services.is_empty() && !services.iter().any(|x| x.name == s) {
                    checker.check::<()>(
                        span,
                        Err(format!("unknown service {s:?}: not in [[services]]")),
                    );
                }
                s
            }
            None if services.is_empty() => auth::DEFAULT_SERVICE.to_string(),
            None => {
                checker.check::<()>(
                    name_span.clone(),
                    Err("`service` is required when [[services]] are configured".into()),
                );
                continue;
            }
        };
        let interval = checker.check(h.interval.span(), parse_duration(h.interval.get_ref()));
        let grace = match h.grace {
            Some(g) => checker.check(g.span(), parse_duration(g.get_ref())),
            None => Some(Duration::ZERO),
        };
        let (Some(interval), Some(grace)) = (interval, grace) else {
            continue;
        };
        let monitor = HeartbeatMonitor {
            name: h.name.into_inner(),
            service,
            interval,
            grace,
        };
        let checked = monitor
            .validate()
            .map_err(|e| e.to_string())
            .and_then(|()| {
                if monitors.iter().any(|m| m.name == monitor.name) {
                    Err(format!("heartbeat {:?} is defined twice", monitor.name))
                } else {
                    Ok(())
                }
            });
        if checker.check(name_span, checked).is_some() {
            monitors.push(monitor);
        }
    }
    monitors
}

/// Reads and validates a config file.
pub fn read_file(path: &Path) -> Result<FileSettings, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file(&text).map_err(|items| {
        ConfigError::Invalid(Diagnostics {
            file: path.to_path_buf(),
            items,
        })
    })
}

/// Layers defaults, the file's settings and the overrides.
pub fn resolve(file: FileSettings, overrides: &Overrides) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    if let Some(listen) = file.listen {
        config.listen = listen;
    }
    if let Some(url) = file.database_url {
        config.database_url = url;
    }
    if let Some(policy) = file.escalation {
        config.escalation = policy;
    }
    if let Some(timeout) = file.resolve_timeout {
        config.resolve_timeout = timeout;
    }
    if let Some(limits) = file.limits {
        config.limits = limits;
    }
    if let Some(allow) = file.allow_unauthenticated {
        config.allow_unauthenticated = allow;
    }
    config.access = Access::new(file.services, file.api_tokens);
    config.heartbeats = file.heartbeats;
    config.users = file.users;
    config.teams = file.teams;
    config.schedules = file.schedules;
    config.policies = file.policies;
    config.routes = file.routes;
    config.public_url = file.public_url;
    config.channels = file.channels;
    if let Some(listen) = &overrides.listen {
        config.listen = parse_listen(listen).map_err(|message| ConfigError::Env {
            var: "LIM_LISTEN",
            message,
        })?;
    }
    if let Some(url) = &overrides.database_url {
        check_database_url(url).map_err(|message| ConfigError::Env {
            var: "LIM_DATABASE_URL",
            message,
        })?;
        config.database_url = url.clone();
    }
    Ok(config)
}

/// Applies `LIM_RESOLVE_TIMEOUT` (its value, if set and not blank) to `config`.
pub fn apply_resolve_timeout_env(
    config: &mut Config,
    value: Option<&str>,
) -> Result<(), ConfigError> {
    if let Some(value) = value.filter(|v| !v.trim().is_empty()) {
        config.resolve_timeout =
            parse_resolve_timeout(value.trim()).map_err(|message| ConfigError::Env {
                var: RESOLVE_TIMEOUT_ENV,
                message,
            })?;
    }
    Ok(())
}

/// The configuration `lim serve` runs with: the optional file, then the
/// overrides, then `LIM_RESOLVE_TIMEOUT` (read here: it has no flag).
pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let settings = match file {
        Some(path) => read_file(path)?,
        None => FileSettings::default(),
    };
    let mut config = resolve(settings, overrides)?;
    if file.is_none() {
        let env = ChannelSettings::from_env(|name| std::env::var(name).ok())?;
        apply_env_channels(&mut config, env);
    }
    let env = std::env::var(RESOLVE_TIMEOUT_ENV).ok();
    apply_resolve_timeout_env(&mut config, env.as_deref())?;
    let env = std::env::var(SLACK_SIGNING_SECRET_ENV).ok();
    apply_slack_signing_secret_env(&mut config, env.as_deref())?;
    check_exposure(&config)?;
    Ok(config)
}

/// The environment variable that sets (and overrides) `[channels.slack]
/// signing_secret`.
pub const SLACK_SIGNING_SECRET_ENV: &str = "LIM_SLACK_SIGNING_SECRET";

/// Applies `LIM_SLACK_SIGNING_SECRET` (if set and not blank) to the Slack
/// channel; an error when Slack is not configured, since the secret alone
/// would take clicks on messages lim can never post.
pub fn apply_slack_signing_secret_env(
    config: &mut Config,
    value: Option<&str>,
) -> Result<(), ConfigError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(());
    };
    match config.channels.slack.as_mut() {
        Some(slack) => {
            slack.signing_secret = Some(value.to_string());
            Ok(())
        }
        None => Err(ConfigError::Env {
            var: SLACK_SIGNING_SECRET_ENV,
            message: "Slack is not configured: set [channels.slack] (or LIM_SLACK_BOT_TOKEN \
                      and LIM_SLACK_CHANNEL) too"
                .into(),
        }),
    }
}

/// With no config file, channels configured through the environment join
/// every step of the default policy (next to the console).
pub fn apply_env_channels(config: &mut Config, channels: ChannelSettings) {
    use incident_actors::domain::Target;
    let names = channels.names();
    for step in &mut config.escalation.steps {
        for name in &names {
            let target = Target::Channel(name.clone());
            if !step.targets.contains(&target) {
                step.targets.push(target);
            }
        }
    }
    config.channels = channels;
}

/// Refuses to listen beyond loopback while a door is open, unless the
/// operator said so (`[auth] allow_unauthenticated = true`): ingest with no
/// integration key configured, or the operator API with no API token.
/// Either alone is enough for a stranger to page people or silence alerts.
pub fn check_exposure(config: &Config) -> Result<(), ConfigError> {
    if config.listen.ip().is_loopback() || config.allow_unauthenticated {
        return Ok(());
    }
    let access = &config.access;
    let open = match (access.ingest_is_open(), access.api_is_open()) {
        (false, false) => return Ok(()),
        (true, true) => {
            "no integration keys and no API tokens are configured, so anyone who \
                         can reach that address could post alerts and acknowledge incidents"
        }
        (true, false) => {
            "no service has an integration key, so anyone who can reach that \
                          address could post alerts"
        }
        (false, true) => {
            "no API tokens are configured, so anyone who can reach that address \
                          could acknowledge, resolve and silence incidents"
        }
    };
    Err(ConfigError::Unsafe(format!(
        "refusing to listen on {} without authentication: {open}. Configure `[[services]]` \
         with `integration_keys` and `[[api_tokens]]` (`lim token new` makes them), listen on \
         a loopback address (the default 127.0.0.1:8080, e.g. behind an authenticating \
         proxy), or set `[auth] allow_unauthenticated = true` if this network is trusted",
        config.listen
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<(usize, usize, String)> {
        parse_file(text)
            .unwrap_err()
            .into_iter()
            .map(|d| (d.line, d.column, d.message))
            .collect()
    }

    #[test]
    fn empty_file_keeps_defaults() {
        let s = parse_file("").unwrap();
        assert_eq!(s, FileSettings::default());
        assert_eq!(
            resolve(s, &Overrides::default()).unwrap(),
            Config::default()
        );
    }

    #[test]
    fn full_file_builds_a_policy() {
        let text = r#"
listen = "0.0.0.0:9000"
database_url = "postgres://lim@db/lim"

[escalation]
repeat = 2
ack_timeout = "30m"

[[escalation.steps]]
delay = "5m"
targets = ["console"]

[[escalation.steps]]
delay = "1h 30m"
targets = ["console"]
"#;
        let s = parse_file(text).unwrap();
        assert_eq!(s.listen, Some("0.0.0.0:9000".parse().unwrap()));
        assert_eq!(s.database_url.as_deref(), Some("postgres://lim@db/lim"));
        let p = s.escalation.unwrap();
        assert_eq!(p.name, "default");
        assert_eq!(p.repeat, 2);
        assert_eq!(p.ack_timeout, Some(Duration::from_secs(30 * 60)));
        assert_eq!(p.steps.len(), 2);
        assert_eq!(p.steps[1].delay, Duration::from_secs(90 * 60));
        assert_eq!(
            p.steps[0].targets,
            vec![incident_actors::domain::Target::Channel("console".into())]
        );
    }

    #[test]
    fn unknown_key_is_located() {
        let e = errors("listen = \"127.0.0.1:1\"\nlisten_addr = \"x\"\n");
        assert_eq!(e.len(), 1);
        assert_eq!((e[0].0, e[0].1), (2, 1));
        assert!(e[0].2.contains("listen_addr"), "{}", e[0].2);
    }

    #[test]
    fn every_semantic_error_is_reported_at_its_value() {
        let text = "listen = \"nowhere\"\ndatabase_url = \"mysql://x\"\n[escalation]\nack_timeout = \"soon\"\n[[escalation.steps]]\ndelay = \"5 parsecs\"\ntargets = [\"console\", \"pager\"]\n";
        let e = errors(text);
        let at: Vec<_> = e.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(at, vec![(1, 10), (2, 16), (4, 15), (6, 9), (7, 23)]);
        assert!(e[0].2.contains("listen address"));
        assert!(e[1].2.contains("\"mysql\""));
        assert!(e[2].2.contains("duration"));
        assert!(e[4].2.contains("unknown channel \"pager\""));
    }

    #[test]
    fn policy_validation_errors_are_reported() {
        let e = errors("[escalation]\nsteps = []\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, 2);
        assert!(e[0].2.contains("no steps"), "{}", e[0].2);
        let e = errors("[escalation]\nrepeat = 1\n[[escalation.steps]]\ndelay = \"0s\"\ntargets = [\"console\"]\n");
        assert!(e[0].2.contains("zero delay"), "{}", e[0].2);
        let e = errors("[escalation]\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = []\n");
        assert!(e[0].2.contains("no targets"), "{}", e[0].2);
    }

    #[test]
    fn syntax_and_type_errors_are_located() {
        let e = errors("listen = 8080\n");
        assert_eq!(e[0].0, 1);
        let e = errors("\n\nlisten = \n");
        assert_eq!(e[0].0, 3);
        let e = errors("[escalation]\nrepeat = -1\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = [\"console\"]\n");
        assert_eq!(e[0].0, 2);
    }

    #[test]
    fn env_wins_over_file_and_is_validated() {
        let file =
            parse_file("listen = \"127.0.0.1:1\"\ndatabase_url = \"sqlite::memory:\"\n").unwrap();
        let c = resolve(
            file.clone(),
            &Overrides {
                listen: Some("127.0.0.1:0".into()),
                database_url: None,
            },
        )
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:0".parse().unwrap());
        assert_eq!(c.database_url, "sqlite::memory:");
        let err = resolve(
            file,
            &Overrides {
                listen: None,
                database_url: Some("redis://x".into()),
            },
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Env {
                var: "LIM_DATABASE_URL",
                ..
            }
        ));
    }

    #[test]
    fn non_loopback_needs_explicit_consent() {
        let mut c = Config::default();
        assert!(check_exposure(&c).is_ok(), "loopback by default");
        c.listen = "0.0.0.0:8080".parse().unwrap();
        let err = check_exposure(&c).unwrap_err().to_string();
        assert!(
            err.starts_with("refusing to listen on 0.0.0.0:8080 without authentication"),
            "{err}"
        );
        let s = parse_file("listen = \"0.0.0.0:8080\"\n[auth]\nallow_unauthenticated = true\n")
            .unwrap();
        let c = resolve(s, &Overrides::default()).unwrap();
        assert!(check_exposure(&c).is_ok());
        c.listen.ip().is_unspecified().then_some(()).unwrap();
        assert!(
            parse_file("[auth]\nallow = true\n").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn services_and_tokens() {
        let alice = SecretDigest::of("alice-secret");
        let text = format!(
            r#"
[[services]]
name = "llm-gateway"
integration_keys = ["a-long-enough-clear-key", "{key}"]
escalation_policy = "default"
labels = {{ team = "ml" }}

[[services]]
name = "batch"

[[api_tokens]]
user = "alice"
token_sha256 = "{alice}"
scopes = ["write", "read", "read"]
"#,
            key = SecretDigest::of("other-key").to_config_string(),
            alice = alice.to_config_string(),
        );
        let s = parse_file(&text).unwrap();
        assert_eq!(s.services.len(), 2);
        assert_eq!(s.services[0].integration_keys.len(), 2);
        assert_eq!(s.services[0].labels["team"], "ml");
        assert_eq!(s.services[1].escalation_policy, "default");
        assert_eq!(s.api_tokens[0].scopes, vec![Scope::Read, Scope::Write]);
        let c = resolve(s, &Overrides::default()).unwrap();
        assert_eq!(
            c.access
                .service_for_key("a-long-enough-clear-key")
                .unwrap()
                .name,
            "llm-gateway"
        );
        assert_eq!(
            c.access.service_for_key("other-key").unwrap().name,
            "llm-gateway"
        );
        assert_eq!(c.access.token("alice-secret").unwrap().user, "alice");
    }

    #[test]
    fn bad_services_and_tokens_are_located() {
        let text = r#"[[services]]
name = "bad name"
integration_keys = ["short", "same-key-0123456789", "same-key-0123456789"]
escalation_policy = "night"
labels = { "0x" = "y", service = "z" }

[[api_tokens]]
user = ""
token_sha256 = "not-hex"
scopes = ["admin"]
"#;
        let e = errors(text);
        let at: Vec<_> = e.iter().map(|(l, c, _)| (*l, *c)).collect();
        assert_eq!(
            at,
            vec![
                (2, 8),
                (3, 21),
                (3, 53),
                (4, 21),
                (5, 12),
                (5, 24),
                (8, 8),
                (9, 16),
                (10, 11),
                (10, 10)
            ],
            "{e:#?}"
        );
        assert!(e[0].2.contains("invalid service name"));
        assert!(e[1].2.contains("too short"));
        assert!(e[2].2.contains("used twice"));
        assert!(e[3]
            .2
            .contains("unknown escalation policy \"night\": the policies are default"));
        assert!(e[4].2.contains("invalid label name"));
        assert!(e[5].2.contains("`service`"));
        assert!(e[7].2.contains("SHA-256"));
        assert!(e[8].2.contains("unknown scope"));
        let dup = "[[services]]\nname = \"a\"\n[[services]]\nname = \"a\"\n";
        assert!(errors(dup)[0].2.contains("defined twice"));
    }

    #[test]
    fn exposure_needs_keys_and_tokens() {
        let digest = SecretDigest::of("t").to_config_string();
        let keys = "[[services]]\nname = \"s\"\nintegration_keys = [\"a-long-enough-clear-key\"]\n";
        let tokens = format!(
            "[[api_tokens]]\nuser = \"a\"\ntoken_sha256 = \"{digest}\"\nscopes = [\"read\"]\n"
        );
        let exposed = |text: &str| {
            let mut c = resolve(parse_file(text).unwrap(), &Overrides::default()).unwrap();
            c.listen = "0.0.0.0:8080".parse().unwrap();
            check_exposure(&c).map_err(|e| e.to_string())
        };
        let e = exposed(keys).unwrap_err();
        assert!(e.contains("no API tokens"), "{e}");
        let e = exposed(&tokens).unwrap_err();
        assert!(e.contains("no service has an integration key"), "{e}");
        assert!(exposed(&format!("{keys}{tokens}")).is_ok());
    }

    const ONCALL: &str = r#"
public_url = "https://lim.example.com/"

[channels.email]
host = "127.0.0.1"
port = 2525
tls = "none"
from = "lim@example.com"

[[users]]
name = "alice"
email = "alice@example.com"
slack_user_id = "U1"
time_zone = "Europe/Berlin"

[[users]]
name = "bob"
email = "bob@example.com"

[[teams]]
name = "ml"
members = ["alice", "bob"]

[[schedules]]
name = "primary"
time_zone = "Europe/Berlin"
[[schedules.rotations]]
participants = ["alice", "bob"]
shift = "1w"
handoff = "09:00"
start = "2026-11-02"
[[schedules.overrides]]
user = "bob"
start = "2026-12-24T00:00:00+01:00"
end = "2026-12-27T00:00:00+01:00"

[[escalation_policies]]
name = "llm"
repeat = 1
[[escalation_policies.steps]]
delay = "5m"
targets = ["schedule:primary", "console"]
[[escalation_policies.steps]]
delay = "10m"
targets = ["team:ml", "user:alice"]

[[services]]
name = "gateway"
escalation_policy = "llm"

[[routes]]
matchers = ["model=~gpt.*"]
service = "gateway"
"#;

    #[test]
    fn users_teams_schedules_policies_and_routes() {
        let s = parse_file(ONCALL).unwrap();
        assert_eq!(s.public_url.as_deref(), Some("https://lim.example.com"));
        assert_eq!(s.users.len(), 2);
        assert_eq!(s.teams[0].members, vec!["alice", "bob"]);
        let primary = &s.schedules[0];
        assert_eq!(primary.time_zone.name(), "Europe/Berlin");
        assert_eq!(primary.overrides.len(), 1);
        let p = &s.policies[0];
        assert_eq!(p.name, "llm");
        use incident_actors::domain::Target;
        assert_eq!(
            p.steps[0].targets,
            vec![
                Target::Schedule("primary".into()),
                Target::Channel("console".into())
            ]
        );
        assert_eq!(
            p.steps[1].targets,
            vec![Target::Team("ml".into()), Target::User("alice".into())]
        );
        assert_eq!(s.services[0].escalation_policy, "llm");
        assert_eq!(s.routes[0].service, "gateway");
        let c = resolve(s, &Overrides::default()).unwrap();
        assert_eq!(c.schedules.len(), 1);
    }

    #[test]
    fn dangling_references_are_located() {
        let text = r#"[[users]]
name = "alice"
email = "not an address"

[[teams]]
name = "ml"
members = ["alice", "zed"]

[[schedules]]
name = "primary"
time_zone = "Mars/Olympus"
[[schedules.rotations]]
participants = ["yan"]
shift = "3x"
handoff = "25:00"
start = "2026-13-01"

[[escalation_policies]]
name = "p"
[[escalation_policies.steps]]
delay = "5m"
targets = ["schedule:secondary", "user:alice", "pager", "crew:x"]

[[services]]
name = "s"
escalation_policy = "q"

[[routes]]
matchers = ["model=~("]
service = "nope"
"#;
        let e = errors(text);
        let lines: Vec<usize> = e.iter().map(|(l, _, _)| *l).collect();
        assert_eq!(
            lines,
            vec![3, 7, 11, 13, 14, 15, 16, 22, 22, 22, 22, 26, 29, 30],
            "{e:#?}"
        );
        let all = e
            .iter()
            .map(|(_, _, m)| m.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        for needle in [
            "invalid email address",
            "unknown user \"zed\"",
            "Mars/Olympus",
            "unknown user \"yan\"",
            "unknown target schedule:secondary",
            "unknown channel \"pager\"",
            "target user:alice can reach nobody",
            "unknown kind \"crew\"",
            "unknown escalation policy \"q\"",
            "unknown service \"nope\"",
        ] {
            assert!(all.contains(needle), "missing {needle:?} in:\n{all}");
        }
    }

    #[test]
    fn channels_table_names_policy_targets() {
        let text = r##"
[channels.slack]
bot_token = "xoxb-1"
default_channel = "#oncall"

[channels.email]
host = "127.0.0.1"
port = 2525
tls = "none"
from = "lim@example.com"
to = ["oncall@example.com"]

[[channels.webhooks]]
name = "ops"
url = "http://127.0.0.1:9/hook"
secret = "s"

[escalation]
[[escalation.steps]]
delay = "5m"
targets = ["slack", "channel:email", "ops", "console"]
"##;
        let s = parse_file(text).unwrap();
        assert_eq!(s.channels.names(), vec!["console", "slack", "email", "ops"]);
        let c = resolve(s, &Overrides::default()).unwrap();
        let sys = c.system_config();
        assert!(sys.directory.email_enabled && sys.directory.slack_enabled);
        assert_eq!(sys.directory.channels.len(), 4);
        let e = errors("[[channels.webhooks]]\nname = \"slack\"\nurl = \"http://x\"\n");
        assert!(e[0].2.contains("reserved"), "{e:?}");
        let e =
            errors("[escalation]\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = [\"slack\"]\n");
        assert!(e[0].2.contains("unknown channel \"slack\""), "{e:?}");
        assert!(
            parse_file(
                "[channels.slack]\nbot_token = \"x\"\ndefault_channel = \"#a\"\ncolour = 1\n"
            )
            .is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn quick_start_channels_from_the_environment_join_the_default_policy() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                vars.iter()
                    .find(|(k, _)| *k == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        let channels = ChannelSettings::from_env(env(&[
            ("LIM_SLACK_BOT_TOKEN", "xoxb-9"),
            ("LIM_SLACK_CHANNEL", "#oncall"),
            ("LIM_SLACK_API_URL", "http://127.0.0.1:1/api/"),
            ("LIM_SMTP_URL", "smtp://127.0.0.1:2525"),
            ("LIM_EMAIL_TO", "a@example.com, b@example.com"),
            ("LIM_EMAIL_FROM", "lim@example.com"),
            ("LIM_WEBHOOK_URL", "http://127.0.0.1:2/hook"),
            ("LIM_WEBHOOK_SECRET", "s3cret"),
        ]))
        .unwrap();
        assert_eq!(
            channels.slack.as_ref().unwrap().api_url,
            "http://127.0.0.1:1/api/"
        );
        assert_eq!(channels.email.as_ref().unwrap().to.len(), 2);
        assert_eq!(channels.webhooks[0].secret.as_deref(), Some("s3cret"));
        let mut c = Config::default();
        apply_env_channels(&mut c, channels);
        let targets: Vec<String> = c.escalation.steps[0]
            .targets
            .iter()
            .map(|t| t.to_string())
            .collect();
        assert_eq!(
            targets,
            vec![
                "channel:console",
                "channel:slack",
                "channel:email",
                "channel:webhook"
            ]
        );
        let e = ChannelSettings::from_env(env(&[("LIM_SLACK_BOT_TOKEN", "xoxb-9")])).unwrap_err();
        assert!(e.to_string().contains("LIM_SLACK_CHANNEL"), "{e}");
        let e = ChannelSettings::from_env(env(&[("LIM_SMTP_URL", "smtp://h:25")])).unwrap_err();
        assert!(e.to_string().contains("LIM_EMAIL_TO"), "{e}");
        assert_eq!(
            ChannelSettings::from_env(env(&[])).unwrap(),
            ChannelSettings::default()
        );
    }

    #[test]
    fn limits_from_the_file() {
        let s = parse_file("[limits]\nmax_labels = 10\n").unwrap();
        assert_eq!(s.limits.unwrap().max_labels, 10);
        assert_eq!(
            s.limits.unwrap().max_label_value_bytes,
            4096,
            "others keep their defaults"
        );
        let errors = parse_file("\n[limits]\nmax_labels = 0\n").unwrap_err();
        assert_eq!(errors[0].line, 2);
        assert!(errors[0]
            .message
            .contains("limits.max_labels must be at least 1"));
        assert!(
            parse_file("[limits]\nmax_lables = 3\n").is_err(),
            "unknown keys are errors"
        );
    }

    #[test]
    fn resolve_timeout_from_file_and_env() {
        let s = parse_file("resolve_timeout = \"90s\"\n").unwrap();
        assert_eq!(s.resolve_timeout, Some(Duration::from_secs(90)));
        let mut c = resolve(s, &Overrides::default()).unwrap();
        assert_eq!(c.resolve_timeout, Duration::from_secs(90));
        assert_eq!(
            Config::default().resolve_timeout,
            Duration::from_secs(5 * 60)
        );
        apply_resolve_timeout_env(&mut c, None).unwrap();
        apply_resolve_timeout_env(&mut c, Some(" ")).unwrap();
        assert_eq!(c.resolve_timeout, Duration::from_secs(90));
        apply_resolve_timeout_env(&mut c, Some("10m")).unwrap();
        assert_eq!(c.resolve_timeout, Duration::from_secs(600));
        let err = apply_resolve_timeout_env(&mut c, Some("soon")).unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Env {
                var: "LIM_RESOLVE_TIMEOUT",
                ..
            }
        ));
        let e = errors("listen = \"127.0.0.1:1\"\nresolve_timeout = \"0s\"\n");
        assert_eq!((e[0].0, e[0].1), (2, 19));
        assert!(e[0].2.contains("greater than zero"), "{}", e[0].2);
        let e = errors("resolve_timeout = \"5 parsecs\"\n");
        assert_eq!((e[0].0, e[0].1), (1, 19));
        assert!(e[0].2.contains("duration"), "{}", e[0].2);
    }

    #[test]
    fn database_schemes() {
        assert!(check_database_url("sqlite://./data/lim.db").is_ok());
        assert!(check_database_url("sqlite::memory:").is_ok());
        assert!(check_database_url("postgres://u@h/db").is_ok());
        assert!(check_database_url("postgresql://u@h/db").is_ok());
        assert!(check_database_url("mysql://u@h/db").is_err());
        assert!(check_database_url("lim.db").is_err());
    }

    #[test]
    fn line_col_counts_characters() {
        assert_eq!(line_col("abc", 0), (1, 1));
        assert_eq!(line_col("a\nbc", 3), (2, 2));
        assert_eq!(line_col("é = 1", 3), (1, 3));
        assert_eq!(line_col("ab", 99), (1, 3));
    }

    #[test]
    fn diagnostics_render_file_line_col() {
        let d = Diagnostic::at("x\ny", Some(2..3), "bad");
        assert_eq!(d.render(Path::new("lim.toml")), "lim.toml:2:1: bad");
    }
}
