//! The `slack` channel: pages as Block Kit messages with action buttons,
//! edited in place as the incident changes.
//!
//! Decisions:
//!
//! * **slack-morphism** for the Web API calls and the Block Kit model
//!   types, on its hyper connector. Its connector takes a custom API base
//!   URL (`with_slack_api_url`), which is how [`SlackConfig::api_url`]
//!   points the tests at a local stand-in; we build the connector ourselves
//!   because slack-morphism's own constructor is HTTPS-only
//!   (`https_or_http`, rustls with ring and webpki roots like the rest of
//!   lim). It has no request timeout, so each call, connecting included,
//!   is bounded here by [`SlackConfig::timeout`] (default
//!   [`SlackConfig::DEFAULT_TIMEOUT`], 15 s; running out is `Failed`); its
//!   own rate controller is off, the notifier pool rate-limits
//!   ([`Channel::rate_limit`]: 1 message per second, bursts of 10, Slack's
//!   `chat.postMessage` tier).
//! * **A page** is `chat.postMessage` to the recipient: a Slack channel
//!   (`#oncall` or an id) or, for a person, their Slack user id (Slack
//!   opens the DM). A recipient with no Slack address (a target naming the
//!   `slack` channel as a whole) goes to [`SlackConfig::default_channel`].
//!   The delivery's external reference is `CHANNEL_ID:TS` from Slack's
//!   answer (the channel *id*, which `chat.update` requires even when the
//!   page was posted to `#name` or a user id).
//! * **An update** is `chat.update` of that message, so the channel keeps
//!   one message per incident showing where it stands ("Acknowledged by
//!   alice at …") with only the buttons that still apply: triggered → all
//!   four; acknowledged or snoozed → Resolve, Snooze 30m, Snooze 4h;
//!   resolved → none. Without a page to edit (never delivered, or Slack says
//!   `message_not_found` / `cant_update_message`), the update is posted as a
//!   new message.
//! * **Buttons** ([`blocks`], pure, shared with the interaction handler that
//!   rebuilds the message for a `response_url`): `action_id` says what
//!   ([`ACTION_ACK`], [`ACTION_RESOLVE`], [`ACTION_SNOOZE_30M`],
//!   [`ACTION_SNOOZE_4H`]) and `value` which incident, as JSON
//!   `{"incident_id":42}`; [`parse_action`] reads them back. The actions
//!   block's `block_id` is `lim_actions`.
//! * **Errors**: Slack answers 200 with `{"ok":false,"error":CODE}`.
//!   `ratelimited` (and HTTP 429) is `RateLimited` with `Retry-After`;
//!   codes that no retry fixes ([`REFUSED_CODES`]: bad or revoked token,
//!   unknown channel, bot not in the channel, deactivated account, missing
//!   scope, invalid blocks…) are `Refused`; the rest, timeouts, connection
//!   errors, 408 and 5xx are `Failed` and retried. Other HTTP 4xx (a wrong
//!   `api_url`) are `Refused`. The token never appears in errors.
//! * **Text**: user-provided values are escaped for mrkdwn (`&`, `<`, `>`),
//!   and cut to Block Kit's limits (header 150 characters, section text
//!   3000, field 2000). `text` is the plain fallback notifications show.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use hyper_rustls::HttpsConnectorBuilder;
use serde::Deserialize;
use slack_morphism::api::{SlackApiChatPostMessageRequest, SlackApiChatUpdateRequest};
use slack_morphism::blocks::{
    SlackActionBlockElement, SlackActionsBlock, SlackBlock, SlackBlockButtonElement,
    SlackBlockButtonStyle, SlackBlockId, SlackBlockMarkDownText, SlackBlockPlainText,
    SlackBlockText, SlackContextBlock, SlackContextBlockElement, SlackHeaderBlock,
    SlackSectionBlock,
};
use slack_morphism::errors::SlackClientError;
use slack_morphism::hyper_tokio::{SlackClientHyperConnector, SlackClientHyperHttpsConnector};
use slack_morphism::{
    SlackActionId, SlackApiToken, SlackApiTokenValue, SlackChannelId, SlackClient,
    SlackMessageContent, SlackTs,
};

use incident_actors::domain::{
    IncidentId, IncidentStatus, IncidentSummary, NotificationEvent, Recipient,
};
use incident_actors::ports::{Channel, ChannelError, Delivered, Notification, RateLimit};

use super::{
    change_line, human_time, ordered_labels, severity_or_unknown, status_word, truncate,
    ChannelConfigError,
};

const CHANNEL: &str = "slack";

/// How lim talks to Slack.
///
/// Deserializes from a TOML table (`api_url` defaults to
/// [`SlackConfig::DEFAULT_API_URL`]; `timeout` is text such as `"15s"`,
/// default [`SlackConfig::DEFAULT_TIMEOUT`]); not `Serialize`, so the token
/// cannot be dumped by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    /// The bot token, `xoxb-…` (scopes: `chat:write`, `im:write` for
    /// DMs, `chat:write.public` to post in channels the bot has not joined).
    pub bot_token: String,
    /// Where pages go whose recipient names no Slack channel or user.
    pub default_channel: String,
    /// The Web API base URL, `https://slack.com/api/`; tests point it at a
    /// local stand-in.
    #[serde(default = "SlackConfig::default_api_url")]
    pub api_url: String,
    /// The app's signing secret (Basic Information → App Credentials):
    /// with it, lim takes button clicks and `/lim` on
    /// `/v1/slack/interactions` and `/v1/slack/commands`, verifying every
    /// request's `X-Slack-Signature`. `LIM_SLACK_SIGNING_SECRET` wins.
    #[serde(default)]
    pub signing_secret: Option<String>,
    /// What a click from a Slack user with no `[[users]]` `slack_user_id`
    /// does: `act` as `slack:<id>` (default) or `refuse`.
    #[serde(default)]
    pub unmapped_users: crate::slack::UnmappedUsers,
    /// How long one Web API call may take, connecting included. More than
    /// zero.
    #[serde(
        default = "SlackConfig::default_timeout",
        deserialize_with = "super::duration_text"
    )]
    pub timeout: Duration,
}

impl SlackConfig {
    pub const DEFAULT_API_URL: &'static str = "https://slack.com/api/";
    /// The default bound of one Web API call.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(15);

    /// A configuration with the default API URL.
    pub fn new(bot_token: impl Into<String>, default_channel: impl Into<String>) -> Self {
        SlackConfig {
            bot_token: bot_token.into(),
            default_channel: default_channel.into(),
            api_url: Self::DEFAULT_API_URL.into(),
            signing_secret: None,
            unmapped_users: Default::default(),
            timeout: Self::DEFAULT_TIMEOUT,
        }
    }

    fn default_api_url() -> String {
        Self::DEFAULT_API_URL.into()
    }

    fn default_timeout() -> Duration {
        Self::DEFAULT_TIMEOUT
    }
}

impl std::fmt::Debug for SlackConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackConfig")
            .field("bot_token", &"<redacted>")
            .field("default_channel", &self.default_channel)
            .field("api_url", &self.api_url)
            .field(
                "signing_secret",
                &self.signing_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("unmapped_users", &self.unmapped_users)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// How long to wait after `ratelimited` without a usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(10);

/// `action_id` of the Acknowledge button.
pub const ACTION_ACK: &str = "lim_ack";
/// `action_id` of the Resolve button.
pub const ACTION_RESOLVE: &str = "lim_resolve";
/// `action_id` of the Snooze 30m button.
pub const ACTION_SNOOZE_30M: &str = "lim_snooze_30m";
/// `action_id` of the Snooze 4h button.
pub const ACTION_SNOOZE_4H: &str = "lim_snooze_4h";
/// `block_id` of the actions block.
pub const ACTIONS_BLOCK_ID: &str = "lim_actions";

/// Slack error codes no retry will fix.
pub const REFUSED_CODES: &[&str] = &[
    "invalid_auth",
    "not_authed",
    "account_inactive",
    "token_revoked",
    "token_expired",
    "no_permission",
    "missing_scope",
    "not_allowed_token_type",
    "ekm_access_denied",
    "channel_not_found",
    "not_in_channel",
    "is_archived",
    "user_not_found",
    "user_not_visible",
    "cannot_dm_bot",
    "restricted_action",
    "invalid_blocks",
    "invalid_blocks_format",
    "invalid_arguments",
    "msg_too_long",
    "no_text",
    "too_many_attachments",
];

/// What a button asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlackActionKind {
    Acknowledge,
    Resolve,
    /// Acknowledge for this long, then trigger again.
    Snooze(Duration),
}

/// A button click, read back from its `action_id` and `value`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlackAction {
    pub incident_id: IncidentId,
    pub kind: SlackActionKind,
}

#[derive(serde::Serialize, Deserialize)]
struct ButtonValue {
    incident_id: u64,
}

/// Reads a clicked button of [`blocks`]: its `action_id` and `value`.
/// `None` for a button lim did not make.
pub fn parse_action(action_id: &str, value: &str) -> Option<SlackAction> {
    let kind = match action_id {
        ACTION_ACK => SlackActionKind::Acknowledge,
        ACTION_RESOLVE => SlackActionKind::Resolve,
        ACTION_SNOOZE_30M => SlackActionKind::Snooze(Duration::from_secs(30 * 60)),
        ACTION_SNOOZE_4H => SlackActionKind::Snooze(Duration::from_secs(4 * 3600)),
        _ => return None,
    };
    let value: ButtonValue = serde_json::from_str(value).ok()?;
    Some(SlackAction {
        incident_id: IncidentId(value.incident_id),
        kind,
    })
}

/// Escapes text for Slack mrkdwn (`&`, `<`, `>`; the rest is shown as is).
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn mrkdwn(text: String) -> SlackBlockText {
    SlackBlockText::MarkDown(SlackBlockMarkDownText::new(text))
}

fn status_emoji(status: IncidentStatus) -> &'static str {
    match status {
        IncidentStatus::Triggered => ":red_circle:",
        IncidentStatus::Acknowledged => ":large_yellow_circle:",
        IncidentStatus::Resolved => ":white_check_mark:",
    }
}

fn button(
    label: &str,
    action_id: &str,
    incident: IncidentId,
    style: Option<SlackBlockButtonStyle>,
) -> SlackActionBlockElement {
    let value = serde_json::to_string(&ButtonValue {
        incident_id: incident.0,
    })
    .unwrap_or_default();
    SlackActionBlockElement::Button(
        SlackBlockButtonElement::new(label.into())
            .with_action_id(SlackActionId(action_id.into()))
            .with_value(value)
            .opt_style(style),
    )
}

/// The buttons that make sense in `status`.
fn buttons(incident: &IncidentSummary) -> Vec<SlackActionBlockElement> {
    let id = incident.id;
    let snoozes = [
        button("Snooze 30m", ACTION_SNOOZE_30M, id, None),
        button("Snooze 4h", ACTION_SNOOZE_4H, id, None),
    ];
    match incident.status {
        IncidentStatus::Triggered => {
            let mut out = vec![
                button(
                    "Acknowledge",
                    ACTION_ACK,
                    id,
                    Some(SlackBlockButtonStyle::Primary),
                ),
                button("Resolve", ACTION_RESOLVE, id, None),
            ];
            out.extend(snoozes);
            out
        }
        IncidentStatus::Acknowledged => {
            let mut out = vec![button(
                "Resolve",
                ACTION_RESOLVE,
                id,
                Some(SlackBlockButtonStyle::Primary),
            )];
            out.extend(snoozes);
            out
        }
        IncidentStatus::Resolved => Vec::new(),
    }
}

/// The Block Kit message of an incident: a header with the status and
/// title; for an update, what changed; a section with severity, service,
/// status and start; the labels (model, provider, tenant first); the
/// summary and runbook annotations; the link to the incident when `link`
/// is given; the buttons that still apply. Pure: the same input gives the
/// same blocks, so an interaction handler can rebuild the message.
pub fn blocks(
    incident: &IncidentSummary,
    link: Option<&str>,
    event: &NotificationEvent,
) -> Vec<SlackBlock> {
    let i = incident;
    let mut out: Vec<SlackBlock> = Vec::new();
    let header = format!("{} #{} {}", status_emoji(i.status), i.id, i.title);
    out.push(
        SlackHeaderBlock::new(
            SlackBlockPlainText::new(truncate(&header, 150))
                .with_emoji(true)
                .into(),
        )
        .into(),
    );
    if let Some(change) = change_line(i, event, None) {
        out.push(
            SlackSectionBlock::new()
                .with_text(mrkdwn(truncate(
                    &format!("*{}*", escape_mrkdwn(&change)),
                    3000,
                )))
                .into(),
        );
    }
    let field = |name: &str, value: &str| {
        mrkdwn(truncate(
            &format!("*{name}*\n{}", escape_mrkdwn(value)),
            2000,
        ))
    };
    let mut fields = vec![
        field("Severity", severity_or_unknown(i)),
        field("Service", &i.service),
        field("Status", &status_word(i.status)),
        field("Started", &human_time(i.created_at)),
    ];
    if let Some((at, by)) = &i.acknowledged {
        fields.push(field(
            "Acknowledged",
            &format!("by {by} at {}", human_time(*at)),
        ));
    }
    if let Some((at, by)) = &i.resolved {
        fields.push(field(
            "Resolved",
            &format!("by {by} at {}", human_time(*at)),
        ));
    }
    out.push(SlackSectionBlock::new().with_fields(fields).into());
    let labels = ordered_labels(&i.labels);
    if !labels.is_empty() {
        let text = labels
            .iter()
            .map(|(k, v)| format!("`{}`: {}", escape_mrkdwn(k), escape_mrkdwn(v)))
            .collect::<Vec<_>>()
            .join("  ·  ");
        out.push(
            SlackSectionBlock::new()
                .with_text(mrkdwn(truncate(&format!("*Labels*\n{text}"), 3000)))
                .into(),
        );
    }
    let mut notes = Vec::new();
    if let Some(summary) = i.annotations.get("summary") {
        notes.push(format!("*Summary*\n{}", escape_mrkdwn(summary)));
    }
    if let Some(runbook) = i.annotations.get("runbook_url") {
        if runbook.starts_with("https://") || runbook.starts_with("http://") {
            notes.push(format!("<{}|Runbook>", escape_mrkdwn(runbook)));
        } else {
            notes.push(format!("*Runbook*\n{}", escape_mrkdwn(runbook)));
        }
    }
    if let Some(link) = link {
        notes.push(format!(
            "<{}|View incident #{} in lim>",
            escape_mrkdwn(link),
            i.id
        ));
    }
    if !notes.is_empty() {
        out.push(
            SlackSectionBlock::new()
                .with_text(mrkdwn(truncate(&notes.join("\n"), 3000)))
                .into(),
        );
    }
    let buttons = buttons(i);
    if !buttons.is_empty() {
        out.push(
            SlackActionsBlock::new(buttons)
                .with_block_id(SlackBlockId(ACTIONS_BLOCK_ID.into()))
                .into(),
        );
    }
    if let NotificationEvent::Page {
        step,
        repeat,
        target,
    } = event
    {
        out.push(
            SlackContextBlock::new(vec![SlackContextBlockElement::MarkDown(
                SlackBlockMarkDownText::new(escape_mrkdwn(&format!(
                    "lim · escalation step {} (pass {}) · {target}",
                    step + 1,
                    repeat + 1
                ))),
            )])
            .into(),
        );
    }
    out
}

/// The plain `text` of the message: what notifications and screen readers
/// show. `[TRIGGERED] #42 critical: HighLatency (chat)`, then what changed.
pub fn fallback_text(incident: &IncidentSummary, event: &NotificationEvent) -> String {
    let severity = incident
        .severity
        .as_deref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    let mut text = format!(
        "[{}] #{}{severity}: {} ({})",
        status_word(incident.status),
        incident.id,
        incident.title,
        incident.service
    );
    if let Some(change) = change_line(incident, event, None) {
        text.push_str(" — ");
        text.push_str(&change);
    }
    escape_mrkdwn(&truncate(&text, 3000))
}

type Client = SlackClient<SlackClientHyperHttpsConnector>;

/// The `slack` channel.
#[derive(Clone)]
pub struct SlackChannel {
    client: Arc<Client>,
    token: SlackApiToken,
    default_channel: String,
    timeout: Duration,
}

impl std::fmt::Debug for SlackChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackChannel")
            .field("default_channel", &self.default_channel)
            .finish_non_exhaustive()
    }
}

fn failed(message: String) -> ChannelError {
    ChannelError::Failed {
        channel: CHANNEL.into(),
        message,
    }
}

fn refused(message: String) -> ChannelError {
    ChannelError::Refused {
        channel: CHANNEL.into(),
        message,
    }
}

/// Slack's answer, classified for the notifier pool.
fn classify(e: SlackClientError) -> ChannelError {
    match e {
        SlackClientError::ApiError(api) => {
            let code = api.code.as_str();
            let message = format!("Slack API error: {code}");
            if code == "ratelimited" || code == "rate_limited" {
                ChannelError::RateLimited {
                    channel: CHANNEL.into(),
                    retry_after: DEFAULT_RETRY_AFTER,
                }
            } else if REFUSED_CODES.contains(&code) {
                refused(message)
            } else {
                failed(message)
            }
        }
        SlackClientError::RateLimitError(r) => ChannelError::RateLimited {
            channel: CHANNEL.into(),
            retry_after: r.retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
        },
        SlackClientError::HttpError(h) => {
            let status = h.status_code;
            let message = format!("Slack answered HTTP {status}");
            if status.as_u16() == 408 || status.is_server_error() || !status.is_client_error() {
                failed(message)
            } else {
                refused(message)
            }
        }
        SlackClientError::ProtocolError(p) => {
            failed(format!("Slack's answer cannot be read: {}", p.json_error))
        }
        other => failed(format!(
            "cannot reach Slack: {}",
            one_line(&other.to_string())
        )),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Codes of a `chat.update` whose message cannot be edited: post anew.
const UPDATE_FALLBACK_CODES: &[&str] = &[
    "message_not_found",
    "cant_update_message",
    "edit_window_closed",
];

impl SlackChannel {
    /// Checks the configuration and sets up the client. Calls nothing: a bad
    /// token shows up as `Refused` deliveries.
    pub fn new(config: SlackConfig) -> Result<Self, ChannelConfigError> {
        if config.bot_token.trim().is_empty() {
            return Err(ChannelConfigError::Invalid {
                what: "Slack bot_token",
                message: "empty".into(),
            });
        }
        if config.default_channel.trim().is_empty() {
            return Err(ChannelConfigError::Invalid {
                what: "Slack default_channel",
                message: "empty".into(),
            });
        }
        if config
            .signing_secret
            .as_ref()
            .is_some_and(|s| s.trim().is_empty())
        {
            // Anyone can sign with an empty key.
            return Err(ChannelConfigError::Invalid {
                what: "Slack signing_secret",
                message: "empty (leave it out to take no clicks from Slack)".into(),
            });
        }
        if config.timeout.is_zero() {
            return Err(ChannelConfigError::Invalid {
                what: "Slack timeout",
                message: "must be more than 0".into(),
            });
        }
        let api_url =
            url::Url::parse(&config.api_url).map_err(|e| ChannelConfigError::InvalidUrl {
                what: "Slack api_url",
                message: e.to_string(),
            })?;
        if !matches!(api_url.scheme(), "http" | "https") || api_url.host_str().is_none() {
            return Err(ChannelConfigError::InvalidUrl {
                what: "Slack api_url",
                message: "expected an http:// or https:// URL".into(),
            });
        }
        let https = HttpsConnectorBuilder::new()
            .with_webpki_roots()
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .build();
        // slack-morphism joins base and method with a `/`.
        let connector = SlackClientHyperConnector::with_connector(https)
            .with_slack_api_url(config.api_url.trim_end_matches('/'));
        Ok(SlackChannel {
            client: Arc::new(SlackClient::new(connector)),
            token: SlackApiToken::new(SlackApiTokenValue(config.bot_token)),
            default_channel: config.default_channel,
            timeout: config.timeout,
        })
    }

    /// Where a page to `recipient` is posted: a channel, or a user id (a DM).
    fn destination<'a>(&'a self, recipient: &'a Recipient) -> &'a str {
        match recipient {
            Recipient::SlackChannel { channel } if !channel.is_empty() => channel,
            Recipient::SlackUser { slack_user_id, .. } if !slack_user_id.is_empty() => {
                slack_user_id
            }
            _ => &self.default_channel,
        }
    }

    fn content(n: &Notification) -> SlackMessageContent {
        SlackMessageContent::new()
            .with_text(fallback_text(&n.incident, &n.event))
            .with_blocks(blocks(&n.incident, n.link.as_deref(), &n.event))
    }

    async fn post(&self, n: &Notification) -> Result<Delivered, ChannelError> {
        let request = SlackApiChatPostMessageRequest::new(
            SlackChannelId(self.destination(&n.recipient).to_string()),
            Self::content(n),
        )
        .with_unfurl_links(false)
        .with_unfurl_media(false);
        let session = self.client.open_session(&self.token);
        let response = tokio::time::timeout(self.timeout, session.chat_post_message(&request))
            .await
            .map_err(|_| {
                failed(format!(
                    "chat.postMessage: no answer within {:?}",
                    self.timeout
                ))
            })?
            .map_err(classify)?;
        Ok(Delivered {
            external_ref: Some(format!("{}:{}", response.channel.0, response.ts.0)),
        })
    }

    /// Edits the page `thread` (`CHANNEL_ID:TS`). `Ok(None)` when Slack says
    /// that message cannot be edited.
    async fn update(
        &self,
        n: &Notification,
        channel: &str,
        ts: &str,
    ) -> Result<Option<Delivered>, ChannelError> {
        let request = SlackApiChatUpdateRequest::new(
            SlackChannelId(channel.to_string()),
            Self::content(n),
            SlackTs(ts.to_string()),
        );
        let session = self.client.open_session(&self.token);
        let result = tokio::time::timeout(self.timeout, session.chat_update(&request))
            .await
            .map_err(|_| failed(format!("chat.update: no answer within {:?}", self.timeout)))?;
        match result {
            Ok(response) => Ok(Some(Delivered {
                external_ref: Some(format!("{}:{}", response.channel.0, response.ts.0)),
            })),
            Err(SlackClientError::ApiError(api))
                if UPDATE_FALLBACK_CODES.contains(&api.code.as_str()) =>
            {
                tracing::info!(
                    target: "lim::notify",
                    channel = CHANNEL,
                    incident_id = n.incident.id.0,
                    code = %api.code,
                    "the page cannot be edited; posting the update as a new message"
                );
                Ok(None)
            }
            Err(e) => Err(classify(e)),
        }
    }
}

#[async_trait]
impl Channel for SlackChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    fn rate_limit(&self) -> RateLimit {
        RateLimit {
            per_second: 1.0,
            burst: 10,
        }
    }

    async fn deliver(&self, n: &Notification) -> Result<Delivered, ChannelError> {
        if !n.event.is_page() {
            if let Some((channel, ts)) = n.thread.as_deref().and_then(|t| t.split_once(':')) {
                if !channel.is_empty() && !ts.is_empty() {
                    if let Some(done) = self.update(n, channel, ts).await? {
                        return Ok(done);
                    }
                }
            }
        }
        self.post(n).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_round_trip() {
        assert_eq!(
            parse_action(ACTION_SNOOZE_4H, r#"{"incident_id":42}"#),
            Some(SlackAction {
                incident_id: IncidentId(42),
                kind: SlackActionKind::Snooze(Duration::from_secs(4 * 3600)),
            })
        );
        assert_eq!(
            parse_action(ACTION_ACK, r#"{"incident_id":7}"#).map(|a| a.kind),
            Some(SlackActionKind::Acknowledge)
        );
        assert_eq!(parse_action("other", r#"{"incident_id":7}"#), None);
        assert_eq!(parse_action(ACTION_ACK, "7"), None);
    }

    #[test]
    fn escapes() {
        assert_eq!(escape_mrkdwn("a<b>&c"), "a&lt;b&gt;&amp;c");
    }

    #[test]
    fn rejects_bad_config() {
        assert!(SlackChannel::new(SlackConfig::new("xoxb-1", "#oncall")).is_ok());
        assert!(SlackChannel::new(SlackConfig::new("", "#oncall")).is_err());
        assert!(SlackChannel::new(SlackConfig::new("xoxb-1", "")).is_err());
        let mut c = SlackConfig::new("xoxb-1", "#oncall");
        c.api_url = "ftp://x".into();
        assert!(SlackChannel::new(c).is_err());
        let mut c = SlackConfig::new("xoxb-1", "#oncall");
        c.timeout = Duration::ZERO;
        assert!(SlackChannel::new(c).is_err());
    }

    #[test]
    fn timeout_is_text_with_a_default() {
        let table = "bot_token = \"xoxb-1\"\ndefault_channel = \"#oncall\"\n";
        let c: SlackConfig = toml::from_str(table).unwrap();
        assert_eq!(c.timeout, SlackConfig::DEFAULT_TIMEOUT);
        let c: SlackConfig = toml::from_str(&format!("{table}timeout = \"500ms\"")).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert!(toml::from_str::<SlackConfig>(&format!("{table}timeout = 5")).is_err());
    }
}
