//! The `webhook:<name>` channels: a signed, versioned JSON `POST` per
//! notification, for anything that can receive HTTP (a chat bot, a
//! ticketing system, an automation).
//!
//! Decisions:
//!
//! * **The body is [`WebhookBody`]**: the serde types in this file are the
//!   one definition of the format (documented in the README section
//!   "Webhook payload", which describes exactly these types). Every key is
//!   always present (`null` when it does not apply), so receivers can use a
//!   fixed schema. `version` is `"1"`: adding keys is not a new version,
//!   changing or removing one is.
//! * **Signature**: with a secret configured, `X-Lim-Signature:
//!   sha256=HEX(HMAC-SHA256(secret, TIMESTAMP + "." + BODY))` where
//!   TIMESTAMP is the `X-Lim-Timestamp` header (Unix seconds) and BODY the
//!   exact bytes sent. Signing the timestamp lets receivers refuse replays
//!   (reject timestamps more than a few minutes off). [`verify_signature`]
//!   is the receiver side, constant-time, shared with our tests.
//! * **Idempotency**: `Idempotency-Key` is the delivery key, the same on
//!   every retry of one delivery (lim delivers at least once), so a
//!   receiver can drop duplicates.
//! * **Outcomes**: 2xx is delivered; 429 is `RateLimited` (honouring
//!   `Retry-After`, seconds or an HTTP date); 408, 5xx, timeouts and
//!   connection errors are `Failed` (retried); any other status, redirects
//!   included (they are not followed: a `POST` must not silently turn into
//!   a `GET` elsewhere), is `Refused`. Error messages never include the URL,
//!   which often embeds a token.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, CONTENT_TYPE, RETRY_AFTER};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use incident_actors::domain::{
    IncidentId, IncidentStatus, IncidentSummary, Interface, Labels, NotificationEvent,
};
use incident_actors::ports::{Channel, ChannelError, Delivered, Notification};
use incident_actors::time::Timestamp;

use super::ChannelConfigError;

/// One configured webhook.
///
/// Deserializes from a TOML table (`name`, `url`, optional `secret`,
/// optional `timeout` as text such as `"10s"`, default
/// [`WebhookConfig::DEFAULT_TIMEOUT`]); not `Serialize`, so a secret cannot
/// be dumped by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The webhook's name: its transport is `webhook:<name>`, the name
    /// policy targets use.
    pub name: String,
    /// Where to `POST` (`http://` or `https://`).
    pub url: String,
    /// The HMAC key of `X-Lim-Signature`; no signature without one.
    pub secret: Option<String>,
    /// How long one attempt may take, connection included.
    #[serde(
        default = "WebhookConfig::default_timeout",
        deserialize_with = "super::duration_text"
    )]
    pub timeout: Duration,
}

impl WebhookConfig {
    /// The default timeout of one attempt.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    fn default_timeout() -> Duration {
        Self::DEFAULT_TIMEOUT
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("name", &self.name)
            .field("url", &"<redacted>")
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// The version of [`WebhookBody`].
pub const WEBHOOK_VERSION: &str = "1";

/// What a webhook receives: the JSON body of every `POST`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookBody {
    /// Always `"1"` for this format.
    pub version: String,
    pub event: WebhookEvent,
    /// The incident as it is at the time of sending.
    pub incident: WebhookIncident,
    /// For `incident.triggered`: which escalation step paged whom; `null`
    /// otherwise.
    pub page: Option<WebhookPage>,
    /// For the other events: who made the change (`null` for
    /// `incident.retriggered`, which lim's timer causes, and for pages).
    pub by: Option<String>,
    /// Through which interface the change came: `api`, `cli`, `slack`,
    /// `web`, `alert` (the alerts resolved), `system` (lim's timers);
    /// `null` for pages.
    pub via: Option<Interface>,
    /// The delivery's idempotency key, also the `Idempotency-Key` header:
    /// the same on every retry of this delivery.
    pub delivery_key: String,
    /// When lim sent this, RFC 3339 UTC with milliseconds.
    pub sent_at: Timestamp,
}

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WebhookEvent {
    /// An escalation step paged this webhook (the first page and every
    /// later step or repeat; `page` says which).
    #[serde(rename = "incident.triggered")]
    Triggered,
    #[serde(rename = "incident.acknowledged")]
    Acknowledged,
    #[serde(rename = "incident.resolved")]
    Resolved,
    /// Acknowledged for a limited time: when it ends, the incident
    /// re-triggers.
    #[serde(rename = "incident.snoozed")]
    Snoozed,
    /// An acknowledgement (or snooze) expired: the incident is triggered
    /// again and its escalation starts over.
    #[serde(rename = "incident.retriggered")]
    Retriggered,
    /// Someone escalated by hand: the next step fires now.
    #[serde(rename = "incident.escalated")]
    Escalated,
}

impl WebhookEvent {
    /// The event of a notification; `None` for an update kind this format
    /// does not know.
    pub fn of(event: &NotificationEvent) -> Option<Self> {
        Some(match event {
            NotificationEvent::Page { .. } => WebhookEvent::Triggered,
            NotificationEvent::Update { change, .. } => match change.as_str() {
                "acknowledged" => WebhookEvent::Acknowledged,
                "resolved" => WebhookEvent::Resolved,
                "snoozed" => WebhookEvent::Snoozed,
                "retriggered" => WebhookEvent::Retriggered,
                "escalated" => WebhookEvent::Escalated,
                _ => return None,
            },
        })
    }

    /// `incident.triggered`, …
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEvent::Triggered => "incident.triggered",
            WebhookEvent::Acknowledged => "incident.acknowledged",
            WebhookEvent::Resolved => "incident.resolved",
            WebhookEvent::Snoozed => "incident.snoozed",
            WebhookEvent::Retriggered => "incident.retriggered",
            WebhookEvent::Escalated => "incident.escalated",
        }
    }
}

/// The incident in a [`WebhookBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookIncident {
    pub id: IncidentId,
    pub title: String,
    /// `triggered`, `acknowledged` or `resolved`.
    pub status: IncidentStatus,
    pub severity: Option<String>,
    pub service: String,
    pub labels: Labels,
    /// The first alert's annotations (`summary`, `description`,
    /// `runbook_url`, …).
    pub annotations: Labels,
    pub created_at: Timestamp,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Timestamp>,
    pub resolved_by: Option<String>,
    pub resolved_at: Option<Timestamp>,
    /// The incident in lim's web console, when lim's `public_url` is set.
    pub link: Option<String>,
}

/// The escalation step of a page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookPage {
    /// Index of the step in the escalation policy, from 0.
    pub step: usize,
    /// Which pass over the policy, from 0 (policies may repeat).
    pub repeat: u32,
    /// The step's target that resolved to this webhook, as written in the
    /// policy: `channel:NAME`, `user:NAME`, `schedule:NAME`, `team:NAME`.
    pub target: String,
}

impl WebhookBody {
    /// The body for `n`; `None` for an update kind this format does not
    /// know.
    pub fn of(n: &Notification) -> Option<WebhookBody> {
        let event = WebhookEvent::of(&n.event)?;
        let i = &n.incident;
        let (page, by, via) = match &n.event {
            NotificationEvent::Page {
                step,
                repeat,
                target,
            } => (
                Some(WebhookPage {
                    step: *step,
                    repeat: *repeat,
                    target: target.to_string(),
                }),
                None,
                None,
            ),
            NotificationEvent::Update { by, via, .. } => (None, by.clone(), *via),
        };
        Some(WebhookBody {
            version: WEBHOOK_VERSION.to_string(),
            event,
            incident: incident(i, n.link.clone()),
            page,
            by,
            via,
            delivery_key: n.key.0.clone(),
            sent_at: n.at,
        })
    }
}

fn incident(i: &IncidentSummary, link: Option<String>) -> WebhookIncident {
    WebhookIncident {
        id: i.id,
        title: i.title.clone(),
        status: i.status,
        severity: i.severity.clone(),
        service: i.service.clone(),
        labels: i.labels.clone(),
        annotations: i.annotations.clone(),
        created_at: i.created_at,
        acknowledged_by: i.acknowledged.as_ref().map(|(_, by)| by.clone()),
        acknowledged_at: i.acknowledged.as_ref().map(|(at, _)| *at),
        resolved_by: i.resolved.as_ref().map(|(_, by)| by.clone()),
        resolved_at: i.resolved.as_ref().map(|(at, _)| *at),
        link,
    }
}

type HmacSha256 = Hmac<Sha256>;

/// `sha256=HEX`: the `X-Lim-Signature` of `body` sent at `timestamp` (the
/// `X-Lim-Timestamp` header's text).
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `header` (an `X-Lim-Signature` value) is the signature of `body`
/// sent at `timestamp` (the `X-Lim-Timestamp` value) under `secret`.
/// Constant-time in the signature; a malformed header is `false`. It does
/// not judge the timestamp's age: receivers should also reject timestamps
/// more than about five minutes from their clock (replays).
pub fn verify_signature(secret: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.trim().strip_prefix("sha256=") else {
        return false;
    };
    let Ok(given) = hex::decode(hex_sig) else {
        return false;
    };
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let expected = mac.finalize().into_bytes();
    given.len() == expected.len() && bool::from(expected.as_slice().ct_eq(&given))
}

/// A `webhook:<name>` channel.
#[derive(Clone)]
pub struct WebhookChannel {
    channel: String,
    url: reqwest::Url,
    secret: Option<String>,
    timeout: Duration,
    client: reqwest::Client,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("channel", &self.channel)
            .finish_non_exhaustive()
    }
}

/// How long to wait after a 429 that gave no usable `Retry-After`.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// At most this much of an error response's body goes into the error.
const ERROR_BODY_CHARS: usize = 200;

impl WebhookChannel {
    /// Checks the configuration and builds the HTTP client.
    pub fn new(config: WebhookConfig) -> Result<Self, ChannelConfigError> {
        if config.name.trim().is_empty() {
            return Err(ChannelConfigError::Invalid {
                what: "webhook name",
                message: "empty".into(),
            });
        }
        let url = reqwest::Url::parse(&config.url).map_err(|e| ChannelConfigError::InvalidUrl {
            what: "webhook",
            message: format!("webhook {:?}: {e}", config.name),
        })?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ChannelConfigError::InvalidUrl {
                what: "webhook",
                message: format!(
                    "webhook {:?}: expected an http:// or https:// URL",
                    config.name
                ),
            });
        }
        if config.timeout.is_zero() {
            return Err(ChannelConfigError::Invalid {
                what: "webhook timeout",
                message: format!("webhook {:?}: must be more than 0", config.name),
            });
        }
        if config.secret.as_deref() == Some("") {
            return Err(ChannelConfigError::Invalid {
                what: "webhook secret",
                message: format!(
                    "webhook {:?}: empty (omit it for no signature)",
                    config.name
                ),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("lim/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ChannelConfigError::Transport {
                channel: "webhook",
                message: e.to_string(),
            })?;
        Ok(WebhookChannel {
            channel: format!("webhook:{}", config.name),
            url,
            secret: config.secret,
            timeout: config.timeout,
            client,
        })
    }

    fn failed(&self, message: String) -> ChannelError {
        ChannelError::Failed {
            channel: self.channel.clone(),
            message,
        }
    }

    fn refused(&self, message: String) -> ChannelError {
        ChannelError::Refused {
            channel: self.channel.clone(),
            message,
        }
    }
}

#[async_trait]
impl Channel for WebhookChannel {
    fn name(&self) -> &str {
        &self.channel
    }

    async fn deliver(&self, n: &Notification) -> Result<Delivered, ChannelError> {
        let body = WebhookBody::of(n)
            .ok_or_else(|| self.refused(format!("unknown event {:?}", n.event)))?;
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| self.refused(format!("cannot encode the body: {e}")))?;
        let timestamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
            .to_string();
        let mut request = self
            .client
            .post(self.url.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("X-Lim-Event", body.event.as_str())
            .header("X-Lim-Timestamp", &timestamp)
            .header("Idempotency-Key", &body.delivery_key);
        if let Some(secret) = &self.secret {
            request = request.header("X-Lim-Signature", sign(secret, &timestamp, &bytes));
        }
        let response = match request.body(bytes).send().await {
            Ok(r) => r,
            Err(e) if e.is_timeout() => {
                return Err(self.failed(format!("no answer within {:?}", self.timeout)))
            }
            Err(e) => return Err(self.failed(error_chain(&e.without_url()))),
        };
        let status = response.status();
        if status.is_success() {
            return Ok(Delivered { external_ref: None });
        }
        let retry_after = retry_after(response.headers());
        let text = response.text().await.unwrap_or_default();
        let snippet = super::truncate(text.trim(), ERROR_BODY_CHARS);
        let message = if snippet.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("HTTP {status}: {snippet}")
        };
        Err(match status {
            StatusCode::TOO_MANY_REQUESTS => ChannelError::RateLimited {
                channel: self.channel.clone(),
                retry_after: retry_after.unwrap_or(DEFAULT_RETRY_AFTER),
            },
            StatusCode::REQUEST_TIMEOUT => self.failed(message),
            s if s.is_server_error() => self.failed(message),
            _ => self.refused(message),
        })
    }
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let now = chrono::Utc::now();
    Some(
        (at.with_timezone(&chrono::Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// An error and its causes, `: `-separated (reqwest's own message is terse).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_round_trip() {
        let sig = sign("s3cret", "1700000000", b"{\"a\":1}");
        assert!(sig.starts_with("sha256="));
        assert_eq!(sig.len(), 7 + 64);
        assert!(verify_signature("s3cret", "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify_signature("other", "1700000000", b"{\"a\":1}", &sig));
        assert!(!verify_signature(
            "s3cret",
            "1700000001",
            b"{\"a\":1}",
            &sig
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            b"{\"a\":2}",
            &sig
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            b"{\"a\":1}",
            "sha256=zz"
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            b"{\"a\":1}",
            &sig[7..]
        ));
        assert!(!verify_signature(
            "s3cret",
            "1700000000",
            b"{\"a\":1}",
            &sig[..20]
        ));
    }

    #[test]
    fn retry_after_forms() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            RETRY_AFTER,
            "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), Some(Duration::ZERO));
    }

    #[test]
    fn rejects_bad_config() {
        let ok = WebhookConfig {
            name: "ops".into(),
            url: "https://example.com/hook".into(),
            secret: None,
            timeout: WebhookConfig::DEFAULT_TIMEOUT,
        };
        assert_eq!(
            WebhookChannel::new(ok.clone()).unwrap().name(),
            "webhook:ops"
        );
        for bad in [
            WebhookConfig {
                url: "ftp://example.com".into(),
                ..ok.clone()
            },
            WebhookConfig {
                name: " ".into(),
                ..ok.clone()
            },
            WebhookConfig {
                timeout: Duration::ZERO,
                ..ok.clone()
            },
            WebhookConfig {
                secret: Some(String::new()),
                ..ok.clone()
            },
        ] {
            assert!(WebhookChannel::new(bad).is_err());
        }
    }
}
