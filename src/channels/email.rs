//! The `email` channel: pages and their updates by SMTP.
//!
//! Decisions:
//!
//! * **lettre's async SMTP transport on tokio**, TLS by rustls (ring,
//!   webpki roots: the same stack as reqwest, no OpenSSL). Three modes
//!   ([`TlsMode`]): plain SMTP (a local relay, tests), STARTTLS (required,
//!   never opportunistic: a server that does not offer it is refused before
//!   credentials go out) and implicit TLS (SMTPS). Credentials over plain
//!   SMTP are refused at start unless the server is on this machine.
//!   One connection per message, no pool: lettre's pool must be built and
//!   dropped inside a tokio runtime (which `check-config` has not), and at
//!   paging rates a fresh connection costs nothing and is never stale.
//! * **Threading.** Every message of incident 42 carries
//!   `References: <lim-incident-42@DOMAIN>`, a root id that is never sent
//!   as a message itself, so mail clients group the whole incident even if
//!   its page failed. A page's own `Message-ID` is
//!   `<lim-incident-42-HASH@DOMAIN>` (HASH = the first 16 hex digits of
//!   SHA-256 of the delivery key), deterministic so a retried page carries
//!   the same id and a receiver can drop the duplicate; it is returned as the
//!   delivery's external reference. An update replies to it:
//!   `In-Reply-To: <the page's id>` (or the root id when the page was never
//!   delivered), `References: <root> <page>`, subject `Re: ` + the page's
//!   subject. The subject stays the page's (`TRIGGERED`) on purpose: Gmail
//!   and others only thread replies whose subject matches, so the new state
//!   is the first line of the body, not the subject.
//! * **Bodies**: `multipart/alternative` with a plain-text and an HTML part
//!   holding the same facts: title, what changed (updates), status,
//!   severity, service, labels (model, provider, tenant first), the
//!   summary / description / runbook annotations, and the incident link
//!   when lim knows its public URL. Everything from alerts is escaped in the
//!   HTML part. `Auto-Submitted: auto-generated` (RFC 3834) keeps
//!   vacation responders quiet.
//! * **Who**: a [`Recipient::Email`] is sent to its address; any other
//!   recipient handed to this channel (a target naming the `email` channel
//!   as a whole) goes to [`EmailConfig::to`].
//! * **Failures**: an SMTP 5xx (unknown mailbox, authentication refused,
//!   message rejected) and a client-side impossibility (STARTTLS required
//!   but not offered, no common AUTH mechanism) are `Refused`; 4xx,
//!   connection (refused, reset), TLS and timeout errors are `Failed` and
//!   retried.
//! * **Timeout**: one attempt as a whole (connecting, TLS, every SMTP
//!   command, the message) is bounded by [`EmailConfig::timeout`] (default
//!   [`EmailConfig::DEFAULT_TIMEOUT`], 30 s); running out is `Failed`. Not
//!   left to lettre: its async transport applies its `timeout` to the TCP
//!   connect only, so a server that accepts and never greets (or stops
//!   answering after `RCPT`) would hold the attempt, and one of the email
//!   worker's in-flight slots, forever.
//! * **Configuration**: [`EmailConfig`] (the `[channels.email]` table), or
//!   [`EmailConfig::from_url`] for the quick-start `LIM_SMTP_URL`.

use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use incident_actors::domain::{IncidentSummary, NotificationEvent, Recipient};
use incident_actors::ports::{Channel, ChannelError, Delivered, Notification};

use super::{
    change_line, human_time, ordered_labels, severity_or_unknown, status_word, ChannelConfigError,
    SHOWN_ANNOTATIONS,
};

const CHANNEL: &str = "email";

/// How the SMTP connection is protected.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain SMTP (a relay on localhost or a trusted network). Default
    /// port 25.
    None,
    /// Connect in plain text, then upgrade with STARTTLS, which the server
    /// must offer. Default port 587.
    #[default]
    StartTls,
    /// TLS from the first byte (SMTPS). Default port 465.
    Tls,
}

impl TlsMode {
    /// The port this mode uses when none is given.
    pub fn default_port(self) -> u16 {
        match self {
            TlsMode::None => 25,
            TlsMode::StartTls => 587,
            TlsMode::Tls => 465,
        }
    }
}

/// How lim sends email.
///
/// Deserializes from a TOML table (`tls` is `"none"`, `"starttls"` (the
/// default) or `"tls"`; `to` defaults to empty; `timeout` is text such as
/// `"30s"`, default [`EmailConfig::DEFAULT_TIMEOUT`]); not `Serialize`, so
/// the password cannot be dumped by accident.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// The SMTP server's host name (also the name its certificate must
    /// carry when TLS is used).
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub tls: TlsMode,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, `lim@example.com` or `lim <lim@example.com>`. Its domain
    /// is the right-hand side of every `Message-ID`.
    pub from: String,
    /// Where notifications go whose recipient carries no address (a policy
    /// target naming the `email` channel as a whole). May be empty.
    #[serde(default)]
    pub to: Vec<String>,
    /// How long one attempt may take, from connecting to the server's
    /// answer to the message. More than zero.
    #[serde(
        default = "EmailConfig::default_timeout",
        deserialize_with = "super::duration_text"
    )]
    pub timeout: Duration,
}

impl std::fmt::Debug for EmailConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("from", &self.from)
            .field("to", &self.to)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl EmailConfig {
    /// The default bound of one attempt.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

    fn default_timeout() -> Duration {
        Self::DEFAULT_TIMEOUT
    }

    /// Reads the quick-start form `LIM_SMTP_URL`:
    ///
    /// * `smtp://host[:port]`: plain SMTP, port 25;
    /// * `smtp+starttls://[user:pass@]host[:port]`: STARTTLS, port 587;
    /// * `smtps://[user:pass@]host[:port]`: implicit TLS, port 465.
    ///
    /// User and password are percent-decoded (`%40` for `@` in a user
    /// name). Query parameters: `from=ADDRESS` and `to=ADDRESS` (repeatable,
    /// or comma-separated). Without `from`, the sender is the user name if it
    /// is an address, else `lim@HOST`.
    pub fn from_url(input: &str) -> Result<EmailConfig, ChannelConfigError> {
        let bad = |message: String| ChannelConfigError::InvalidUrl {
            what: "SMTP (LIM_SMTP_URL)",
            message,
        };
        let url = url::Url::parse(input).map_err(|e| bad(e.to_string()))?;
        let tls = match url.scheme() {
            "smtp" => TlsMode::None,
            "smtp+starttls" => TlsMode::StartTls,
            "smtps" => TlsMode::Tls,
            other => {
                return Err(bad(format!(
                    "scheme {other:?}: expected smtp, smtp+starttls or smtps"
                )))
            }
        };
        let host = match url.host() {
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            Some(host) => host.to_string(),
            None => return Err(bad("no host".into())),
        };
        if host.is_empty() {
            return Err(bad("no host".into()));
        }
        let decode = |s: &str| -> Result<String, ChannelConfigError> {
            percent_encoding::percent_decode_str(s)
                .decode_utf8()
                .map(|s| s.into_owned())
                .map_err(|_| bad("credentials are not UTF-8 once percent-decoded".into()))
        };
        let username = match url.username() {
            "" => None,
            u => Some(decode(u)?),
        };
        let password = url.password().map(decode).transpose()?;
        let mut from = None;
        let mut to = Vec::new();
        for (k, v) in url.query_pairs() {
            match k.as_ref() {
                "from" => from = Some(v.into_owned()),
                "to" => to.extend(
                    v.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string),
                ),
                other => return Err(bad(format!("unknown parameter {other:?}"))),
            }
        }
        let from = from
            .or_else(|| username.clone().filter(|u| u.contains('@')))
            .unwrap_or_else(|| format!("lim@{host}"));
        Ok(EmailConfig {
            port: url.port().unwrap_or(tls.default_port()),
            host,
            tls,
            username,
            password,
            from,
            to,
            timeout: Self::DEFAULT_TIMEOUT,
        })
    }
}

/// The `email` channel.
#[derive(Clone)]
pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    timeout: Duration,
    from: Mailbox,
    domain: String,
    to: Vec<Mailbox>,
}

impl std::fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmailChannel")
            .field("from", &self.from.to_string())
            .finish_non_exhaustive()
    }
}

/// Whether `host` is this machine (where plain-text credentials stay).
fn is_loopback(host: &str) -> bool {
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn parse_mailbox(address: &str) -> Result<Mailbox, ChannelConfigError> {
    address
        .parse::<Mailbox>()
        .map_err(|e| ChannelConfigError::InvalidAddress {
            address: address.to_string(),
            message: e.to_string(),
        })
}

impl EmailChannel {
    /// Checks the configuration (addresses, host, TLS) and sets up the
    /// transport. Connects to nothing, needs no runtime: an unreachable
    /// server shows up as `Failed` deliveries, retried.
    pub fn new(config: EmailConfig) -> Result<Self, ChannelConfigError> {
        if config.host.trim().is_empty() {
            return Err(ChannelConfigError::Invalid {
                what: "email host",
                message: "empty".into(),
            });
        }
        if config.port == 0 {
            return Err(ChannelConfigError::Invalid {
                what: "email port",
                message: "0".into(),
            });
        }
        if config.timeout.is_zero() {
            return Err(ChannelConfigError::Invalid {
                what: "email timeout",
                message: "must be more than 0".into(),
            });
        }
        if config.tls == TlsMode::None && config.username.is_some() && !is_loopback(&config.host) {
            return Err(ChannelConfigError::Invalid {
                what: "email tls",
                message: format!(
                    "credentials would cross the network to {} in clear text: \
                     use tls = \"starttls\" or \"tls\" (smtp+starttls:// or smtps://)",
                    config.host
                ),
            });
        }
        let from = parse_mailbox(&config.from)?;
        let domain = from.email.domain().to_string();
        let to = config
            .to
            .iter()
            .map(|a| parse_mailbox(a))
            .collect::<Result<Vec<_>, _>>()?;
        let tls_params = || {
            TlsParameters::new(config.host.clone()).map_err(|e| ChannelConfigError::Transport {
                channel: CHANNEL,
                message: e.to_string(),
            })
        };
        let tls = match config.tls {
            TlsMode::None => Tls::None,
            TlsMode::StartTls => Tls::Required(tls_params()?),
            TlsMode::Tls => Tls::Wrapper(tls_params()?),
        };
        let mut builder =
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.as_str())
                .port(config.port)
                .tls(tls)
                // lettre bounds the TCP connect with it; `deliver` bounds
                // the rest.
                .timeout(Some(config.timeout));
        if let Some(user) = &config.username {
            builder = builder.credentials(Credentials::new(
                user.clone(),
                config.password.clone().unwrap_or_default(),
            ));
        }
        Ok(EmailChannel {
            transport: builder.build(),
            timeout: config.timeout,
            from,
            domain,
            to,
        })
    }

    /// `<lim-incident-42@DOMAIN>`: the thread root every message of the
    /// incident references.
    fn root_id(&self, incident: &IncidentSummary) -> String {
        format!("<lim-incident-{}@{}>", incident.id, self.domain)
    }

    /// `<lim-incident-42-HASH@DOMAIN>`: this delivery's own id, the same on
    /// every attempt.
    fn message_id(&self, n: &Notification) -> String {
        let hash = Sha256::digest(n.key.0.as_bytes());
        format!(
            "<lim-incident-{}-{}@{}>",
            n.incident.id,
            &hex::encode(hash)[..16],
            self.domain
        )
    }

    /// Builds the message for `n` (without sending it); its `Message-ID`
    /// is returned with it.
    pub fn message(&self, n: &Notification) -> Result<(Message, String), ChannelError> {
        let refused = |message: String| ChannelError::Refused {
            channel: CHANNEL.into(),
            message,
        };
        let recipients: Vec<Mailbox> = match &n.recipient {
            Recipient::Email { address, .. } => vec![address
                .parse::<Mailbox>()
                .map_err(|e| refused(format!("invalid address {address:?}: {e}")))?],
            _ => self.to.clone(),
        };
        if recipients.is_empty() {
            return Err(refused(format!(
                "no email address for {} (set [channels.email] to)",
                n.recipient
            )));
        }
        let root = self.root_id(&n.incident);
        let id = self.message_id(n);
        let page_subject = subject(&n.incident, n.event.is_page());
        let mut builder = Message::builder()
            .from(self.from.clone())
            .message_id(Some(id.clone()))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("Auto-Submitted"),
                "auto-generated".into(),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("X-Lim-Incident"),
                n.incident.id.to_string(),
            ));
        for to in recipients {
            builder = builder.to(to);
        }
        builder = if n.event.is_page() {
            builder.subject(page_subject).references(root)
        } else {
            let parent = n.thread.clone().unwrap_or_else(|| root.clone());
            let references = if parent == root {
                root
            } else {
                format!("{root} {parent}")
            };
            builder
                .subject(format!("Re: {page_subject}"))
                .in_reply_to(parent)
                .references(references)
        };
        let message = builder
            .multipart(MultiPart::alternative_plain_html(
                plain_body(n),
                html_body(n),
            ))
            .map_err(|e| refused(format!("cannot build the message: {e}")))?;
        Ok((message, id))
    }
}

#[async_trait]
impl Channel for EmailChannel {
    fn name(&self) -> &str {
        CHANNEL
    }

    async fn deliver(&self, n: &Notification) -> Result<Delivered, ChannelError> {
        let (message, id) = self.message(n)?;
        match tokio::time::timeout(self.timeout, self.transport.send(message)).await {
            Ok(Ok(_)) => Ok(Delivered {
                external_ref: Some(id),
            }),
            Ok(Err(e)) => Err(classify(&e)),
            Err(_) => Err(ChannelError::Failed {
                channel: CHANNEL.into(),
                message: format!("no answer within {:?}", self.timeout),
            }),
        }
    }
}

/// SMTP 5xx and client-side impossibilities will not pass; the rest may.
fn classify(e: &lettre::transport::smtp::Error) -> ChannelError {
    let message = e.to_string();
    if e.is_permanent() || e.is_client() {
        ChannelError::Refused {
            channel: CHANNEL.into(),
            message,
        }
    } else {
        ChannelError::Failed {
            channel: CHANNEL.into(),
            message,
        }
    }
}

/// `[lim] #42 TRIGGERED critical: HighLatency (chat)`. A page says the
/// incident's status; an update reuses what its page said (`TRIGGERED`) so
/// that `Re: ` + this threads with it.
pub fn subject(incident: &IncidentSummary, page: bool) -> String {
    let status = if page {
        status_word(incident.status)
    } else {
        "TRIGGERED".to_string()
    };
    let severity = incident
        .severity
        .as_deref()
        .map(|s| format!(" {s}"))
        .unwrap_or_default();
    let title: String = incident.title.chars().filter(|c| !c.is_control()).collect();
    format!(
        "[lim] #{} {status}{severity}: {title} ({})",
        incident.id, incident.service
    )
}

fn page_line(n: &Notification) -> Option<String> {
    match &n.event {
        NotificationEvent::Page {
            step,
            repeat,
            target,
        } => Some(format!(
            "You are paged by escalation step {} (pass {}) as {target}.",
            step + 1,
            repeat + 1
        )),
        NotificationEvent::Update { .. } => None,
    }
}

/// The plain-text part.
pub fn plain_body(n: &Notification) -> String {
    let i = &n.incident;
    let mut out = String::new();
    if let Some(change) = change_line(i, &n.event, Some(n.at)) {
        out.push_str(&change);
        out.push_str("\n\n");
    }
    out.push_str(&format!("#{} {}\n", i.id, i.title));
    out.push_str(&"=".repeat(40));
    out.push('\n');
    out.push_str(&format!("Status:    {}\n", i.status.as_str()));
    out.push_str(&format!("Severity:  {}\n", severity_or_unknown(i)));
    out.push_str(&format!("Service:   {}\n", i.service));
    out.push_str(&format!("Started:   {}\n", human_time(i.created_at)));
    if let Some((at, by)) = &i.acknowledged {
        out.push_str(&format!("Acked:     by {by} at {}\n", human_time(*at)));
    }
    if let Some((at, by)) = &i.resolved {
        out.push_str(&format!("Resolved:  by {by} at {}\n", human_time(*at)));
    }
    let labels = ordered_labels(&i.labels);
    if !labels.is_empty() {
        out.push_str("\nLabels:\n");
        for (k, v) in labels {
            out.push_str(&format!("  {k} = {v}\n"));
        }
    }
    for (key, name) in SHOWN_ANNOTATIONS {
        if let Some(v) = i.annotations.get(key) {
            out.push_str(&format!("\n{name}: {v}\n"));
        }
    }
    if let Some(link) = &n.link {
        out.push_str(&format!("\nOpen the incident: {link}\n"));
    }
    out.push_str("\n-- \n");
    if let Some(line) = page_line(n) {
        out.push_str(&line);
        out.push('\n');
    }
    out.push_str("Sent by lim, the incident manager.\n");
    out
}

/// The HTML part: the same facts as [`plain_body`], escaped.
pub fn html_body(n: &Notification) -> String {
    let i = &n.incident;
    let mut out = String::from("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n");
    if let Some(change) = change_line(i, &n.event, Some(n.at)) {
        out.push_str(&format!("<p><strong>{}</strong></p>\n", escape(&change)));
    }
    out.push_str(&format!(
        "<h2>#{} {}</h2>\n<table>\n",
        i.id,
        escape(&i.title)
    ));
    let mut row = |k: &str, v: &str| {
        out.push_str(&format!(
            "<tr><th align=\"left\">{}</th><td>{}</td></tr>\n",
            escape(k),
            escape(v)
        ));
    };
    row("Status", i.status.as_str());
    row("Severity", severity_or_unknown(i));
    row("Service", &i.service);
    row("Started", &human_time(i.created_at));
    if let Some((at, by)) = &i.acknowledged {
        row("Acknowledged", &format!("by {by} at {}", human_time(*at)));
    }
    if let Some((at, by)) = &i.resolved {
        row("Resolved", &format!("by {by} at {}", human_time(*at)));
    }
    out.push_str("</table>\n");
    let labels = ordered_labels(&i.labels);
    if !labels.is_empty() {
        out.push_str("<h3>Labels</h3>\n<ul>\n");
        for (k, v) in labels {
            out.push_str(&format!(
                "<li><code>{}</code> = <code>{}</code></li>\n",
                escape(k),
                escape(v)
            ));
        }
        out.push_str("</ul>\n");
    }
    for (key, name) in SHOWN_ANNOTATIONS {
        if let Some(v) = i.annotations.get(key) {
            let value = if key == "runbook_url" && is_http_url(v) {
                format!("<a href=\"{0}\">{0}</a>", escape(v))
            } else {
                escape(v)
            };
            out.push_str(&format!("<p><strong>{name}:</strong> {value}</p>\n"));
        }
    }
    if let Some(link) = &n.link {
        out.push_str(&format!(
            "<p><a href=\"{}\">Open the incident in lim</a></p>\n",
            escape(link)
        ));
    }
    out.push_str("<hr>\n<p style=\"color: #666\"><small>");
    if let Some(line) = page_line(n) {
        out.push_str(&escape(&line));
        out.push_str("<br>\n");
    }
    out.push_str("Sent by lim, the incident manager.</small></p>\n</body></html>\n");
    out
}

fn is_http_url(s: &str) -> bool {
    s.starts_with("https://") || s.starts_with("http://")
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_forms() {
        let c = EmailConfig::from_url("smtp://127.0.0.1:2525").unwrap();
        assert_eq!(
            (c.host.as_str(), c.port, c.tls),
            ("127.0.0.1", 2525, TlsMode::None)
        );
        assert_eq!(c.username, None);
        assert_eq!(c.from, "lim@127.0.0.1");

        let c = EmailConfig::from_url("smtps://alerts%40example.com:p%2Fss%3Aw@mail.example.com")
            .unwrap();
        assert_eq!((c.port, c.tls), (465, TlsMode::Tls));
        assert_eq!(c.username.as_deref(), Some("alerts@example.com"));
        assert_eq!(c.password.as_deref(), Some("p/ss:w"));
        assert_eq!(c.from, "alerts@example.com");

        let c = EmailConfig::from_url(
            "smtp+starttls://u:p@smtp.example.com?from=lim%40example.com&to=a@x.org,b@x.org",
        )
        .unwrap();
        assert_eq!((c.port, c.tls), (587, TlsMode::StartTls));
        assert_eq!(c.from, "lim@example.com");
        assert_eq!(c.to, vec!["a@x.org", "b@x.org"]);

        assert!(EmailConfig::from_url("http://x").is_err());
        let clear = EmailConfig::from_url("smtp://u:p@mail.example.com").unwrap();
        assert!(
            EmailChannel::new(clear).is_err(),
            "credentials in clear text"
        );
        let local = EmailConfig::from_url("smtp://u:p@127.0.0.1:2525").unwrap();
        assert!(EmailChannel::new(local).is_ok());
        assert!(EmailConfig::from_url("smtp://h?nope=1").is_err());
        assert!(!format!("{c:?}").contains("\"p\""), "password redacted");
    }

    #[test]
    fn timeout_is_text_with_a_default_and_not_zero() {
        let table = |extra: &str| {
            format!("host = \"127.0.0.1\"\nport = 2525\nfrom = \"lim@example.com\"\n{extra}")
        };
        let c: EmailConfig = toml::from_str(&table("")).unwrap();
        assert_eq!(c.timeout, EmailConfig::DEFAULT_TIMEOUT);
        let c: EmailConfig = toml::from_str(&table("timeout = \"500ms\"")).unwrap();
        assert_eq!(c.timeout, Duration::from_millis(500));
        assert!(toml::from_str::<EmailConfig>(&table("timeout = \"soon\"")).is_err());
        let zero: EmailConfig = toml::from_str(&table("timeout = \"0s\"")).unwrap();
        assert!(EmailChannel::new(zero).is_err());
        assert_eq!(
            EmailConfig::from_url("smtp://127.0.0.1").unwrap().timeout,
            EmailConfig::DEFAULT_TIMEOUT
        );
    }

    #[test]
    fn tls_mode_names() {
        for (mode, name) in [
            (TlsMode::None, "\"none\""),
            (TlsMode::StartTls, "\"starttls\""),
            (TlsMode::Tls, "\"tls\""),
        ] {
            assert_eq!(serde_json::to_string(&mode).unwrap(), name);
        }
    }

    #[test]
    fn escapes_html() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
