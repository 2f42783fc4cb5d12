//! The `[channels]` table and the quick-start environment variables: which
//! transports lim pages through, and the channel names policy targets use.
//!
//! ```toml
//! [channels.slack]               # target: "slack" (its default channel)
//! bot_token = "xoxb-…"
//! default_channel = "#oncall"
//! api_url = "https://slack.com/api/"   # optional
//! timeout = "15s"                # one API call (default 15s)
//!
//! [channels.email]               # target: "email" (every `to` address);
//! host = "smtp.example.com"      # users with an email are paged through it
//! port = 587
//! tls = "starttls"               # none | starttls | tls
//! username = "lim"
//! password = "…"
//! from = "lim@example.com"
//! to = ["oncall@example.com"]
//! timeout = "30s"                # one attempt, connect to reply (default 30s)
//!
//! [[channels.webhooks]]          # target: its name
//! name = "ops-bridge"
//! url = "https://ops.example.com/lim"
//! secret = "…"                   # signs X-Lim-Signature
//! timeout = "10s"                # one attempt (default 10s)
//! ```
//!
//! With no config file, a channel configured through the environment joins
//! the default policy's steps (so `LIM_SLACK_BOT_TOKEN=… LIM_SLACK_CHANNEL=#oncall
//! lim serve` pages Slack with no file at all): `LIM_SLACK_BOT_TOKEN` +
//! `LIM_SLACK_CHANNEL` (+ `LIM_SLACK_API_URL`); `LIM_SMTP_URL` +
//! `LIM_EMAIL_TO` + `LIM_EMAIL_FROM`; `LIM_WEBHOOK_URL` (+ `LIM_WEBHOOK_SECRET`).

use std::collections::BTreeMap;
use std::sync::Arc;

use incident_actors::console::ConsoleChannel;
use incident_actors::domain::Recipient;
use incident_actors::ports::Channel;
use serde::Deserialize;
use toml::Spanned;

use super::{Checker, ConfigError};
use crate::channels::email::{EmailChannel, EmailConfig};
use crate::channels::slack::{SlackChannel, SlackConfig};
use crate::channels::webhook::{WebhookChannel, WebhookConfig};
use crate::channels::ChannelConfigError;

/// The channel names that are not webhooks.
const RESERVED: &[&str] = &["console", "slack", "email"];

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawChannels {
    slack: Option<Spanned<SlackConfig>>,
    email: Option<Spanned<EmailConfig>>,
    #[serde(default)]
    webhooks: Vec<Spanned<WebhookConfig>>,
}

/// The configured transports besides the console.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChannelSettings {
    pub slack: Option<SlackConfig>,
    pub email: Option<EmailConfig>,
    pub webhooks: Vec<WebhookConfig>,
}

impl ChannelSettings {
    /// Every channel name a policy target may use, `console` first.
    pub fn names(&self) -> Vec<String> {
        let mut names = vec!["console".to_string()];
        if self.slack.is_some() {
            names.push("slack".into());
        }
        if self.email.is_some() {
            names.push("email".into());
        }
        names.extend(self.webhooks.iter().map(|w| w.name.clone()));
        names
    }

    /// Channel name → what a target naming it reaches.
    pub fn recipients(&self) -> BTreeMap<String, Vec<Recipient>> {
        let mut map = BTreeMap::from([("console".to_string(), vec![Recipient::Console])]);
        if let Some(slack) = &self.slack {
            map.insert(
                "slack".into(),
                vec![Recipient::SlackChannel {
                    channel: slack.default_channel.clone(),
                }],
            );
        }
        if let Some(email) = &self.email {
            let to = email
                .to
                .iter()
                .map(|a| Recipient::Email {
                    user: a.clone(),
                    address: a.clone(),
                })
                .collect();
            map.insert("email".into(), to);
        }
        for w in &self.webhooks {
            map.insert(
                w.name.clone(),
                vec![Recipient::Webhook {
                    name: w.name.clone(),
                }],
            );
        }
        map
    }

    /// The channel instances the notifier pool runs, the console first.
    pub fn build(&self) -> Result<Vec<Arc<dyn Channel>>, ChannelConfigError> {
        let mut out: Vec<Arc<dyn Channel>> = vec![Arc::new(ConsoleChannel)];
        if let Some(slack) = &self.slack {
            out.push(Arc::new(SlackChannel::new(slack.clone())?));
        }
        if let Some(email) = &self.email {
            out.push(Arc::new(EmailChannel::new(email.clone())?));
        }
        for w in &self.webhooks {
            out.push(Arc::new(WebhookChannel::new(w.clone())?));
        }
        Ok(out)
    }

    /// Channels from the quick-start environment (`var` reads one variable).
    pub fn from_env(var: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let var = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let env_error = |var: &'static str, message: String| ConfigError::Env { var, message };
        let mut settings = ChannelSettings::default();
        match (var("LIM_SLACK_BOT_TOKEN"), var("LIM_SLACK_CHANNEL")) {
            (Some(token), Some(channel)) => {
                let mut slack = SlackConfig::new(token, channel);
                if let Some(url) = var("LIM_SLACK_API_URL") {
                    slack.api_url = url;
                }
                settings.slack = Some(slack);
            }
            (Some(_), None) => {
                return Err(env_error(
                    "LIM_SLACK_CHANNEL",
                    "LIM_SLACK_BOT_TOKEN is set: also set the channel to page, e.g. #oncall".into(),
                ))
            }
            (None, Some(_)) => {
                return Err(env_error(
                    "LIM_SLACK_BOT_TOKEN",
                    "LIM_SLACK_CHANNEL is set: also set the bot token (xoxb-…)".into(),
                ))
            }
            (None, None) => {}
        }
        if let Some(url) = var("LIM_SMTP_URL") {
            let mut email = EmailConfig::from_url(&url)
                .map_err(|e| env_error("LIM_SMTP_URL", e.to_string()))?;
            if let Some(from) = var("LIM_EMAIL_FROM") {
                email.from = from;
            }
            if let Some(to) = var("LIM_EMAIL_TO") {
                email.to = to
                    .split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect();
            }
            if email.to.is_empty() {
                return Err(env_error(
                    "LIM_EMAIL_TO",
                    "LIM_SMTP_URL is set: also set who to email (comma-separated)".into(),
                ));
            }
            EmailChannel::new(email.clone())
                .map_err(|e| env_error("LIM_SMTP_URL", e.to_string()))?;
            settings.email = Some(email);
        }
        if let Some(url) = var("LIM_WEBHOOK_URL") {
            let webhook = WebhookConfig {
                name: "webhook".into(),
                url,
                secret: var("LIM_WEBHOOK_SECRET"),
                timeout: WebhookConfig::DEFAULT_TIMEOUT,
            };
            WebhookChannel::new(webhook.clone())
                .map_err(|e| env_error("LIM_WEBHOOK_URL", e.to_string()))?;
            settings.webhooks.push(webhook);
        }
        Ok(settings)
    }
}

pub(super) fn build_channels(
    checker: &mut Checker<'_>,
    raw: Option<RawChannels>,
) -> ChannelSettings {
    let raw = raw.unwrap_or_default();
    let mut settings = ChannelSettings::default();
    if let Some(slack) = raw.slack {
        let span = slack.span();
        let slack = slack.into_inner();
        if checker
            .check(
                span,
                SlackChannel::new(slack.clone())
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            )
            .is_some()
        {
            settings.slack = Some(slack);
        }
    }
    if let Some(email) = raw.email {
        let span = email.span();
        let email = email.into_inner();
        if checker
            .check(
                span,
                EmailChannel::new(email.clone())
                    .map(|_| ())
                    .map_err(|e| e.to_string()),
            )
            .is_some()
        {
            settings.email = Some(email);
        }
    }
    for w in raw.webhooks {
        let span = w.span();
        let w = w.into_inner();
        let checked = if RESERVED.contains(&w.name.as_str()) {
            Err(format!(
                "webhook name {:?} is reserved for a built-in channel",
                w.name
            ))
        } else if settings.webhooks.iter().any(|x| x.name == w.name) {
            Err(format!("webhook {:?} is defined twice", w.name))
        } else {
            WebhookChannel::new(w.clone())
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        if checker.check(span, checked).is_some() {
            settings.webhooks.push(w);
        }
    }
    settings
}
