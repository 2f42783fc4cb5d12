//! The email channel against a real SMTP server: aiosmtpd (Debian package
//! `python3-aiosmtpd`, installed by .ci/run), started by the test on a free
//! port of 127.0.0.1 with its `Mailbox` handler, which stores every message
//! it accepts in a maildir. The test sends through `EmailChannel`, then
//! parses the stored messages and checks what a mail client would see:
//! subject, sender and recipient, both bodies, and the threading headers.
//!
//! Never skipped: without aiosmtpd the test fails and says how to install it.
//! SMTP reply classification (5xx refused, 4xx retried) is checked against a
//! scripted SMTP responder in the test, since aiosmtpd accepts everything.

mod channel_fixtures;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use channel_fixtures::{ack_update, page, resolve_update, LINK};
use incident_actors::domain::Recipient;
use incident_actors::ports::{Channel, ChannelError};
use lim::channels::email::{EmailChannel, EmailConfig, TlsMode};
use mailparse::{MailHeaderMap, ParsedMail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// A python with aiosmtpd: the system one (where the Debian package puts
/// it) first, then whatever `python3` is on the PATH.
fn python_with_aiosmtpd() -> String {
    for python in ["/usr/bin/python3", "python3"] {
        let ok = Command::new(python)
            .args(["-c", "import aiosmtpd"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if ok {
            return python.to_string();
        }
    }
    panic!(
        "aiosmtpd is not installed: `apt-get install -y python3-aiosmtpd` \
         (.ci/run does it); the email channel test needs a real SMTP server"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An aiosmtpd process storing what it receives in `maildir`; killed on drop.
struct Smtpd {
    child: Child,
    port: u16,
    maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Smtpd {
    async fn start() -> Smtpd {
        let python = python_with_aiosmtpd();
        let dir = tempfile::tempdir().unwrap();
        // The Mailbox handler creates the maildir; it must not exist yet.
        let maildir = dir.path().join("maildir");
        let port = free_port();
        let mut child = Command::new(&python)
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start aiosmtpd");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                child.stderr.take().unwrap().read_to_string(&mut err).ok();
                panic!("aiosmtpd exited ({status}): {err}");
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd did not listen on {port}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Smtpd {
            child,
            port,
            maildir,
            _dir: dir,
        }
    }

    /// The raw messages stored, waiting until there are `n`.
    async fn messages(&self, n: usize) -> Vec<Vec<u8>> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let files = list(&self.maildir.join("new"));
            if files.len() >= n {
                return files.iter().map(|f| std::fs::read(f).unwrap()).collect();
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} messages, found {}",
                files.len()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn list(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    out.sort();
    out
}

impl Drop for Smtpd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn config(port: u16) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port,
        tls: TlsMode::None,
        username: None,
        password: None,
        from: "lim <lim@example.com>".into(),
        to: vec![],
        timeout: EmailConfig::DEFAULT_TIMEOUT,
    }
}

fn alice() -> Recipient {
    Recipient::Email {
        user: "alice".into(),
        address: "alice@example.com".into(),
    }
}

fn header(mail: &ParsedMail, name: &str) -> String {
    mail.headers
        .get_first_value(name)
        .unwrap_or_else(|| panic!("no {name} header"))
}

/// The text/plain and text/html parts of a multipart/alternative message.
fn bodies(mail: &ParsedMail) -> (String, String) {
    assert_eq!(mail.ctype.mimetype, "multipart/alternative");
    let part = |mime: &str| {
        mail.subparts
            .iter()
            .find(|p| p.ctype.mimetype == mime)
            .unwrap_or_else(|| panic!("no {mime} part"))
            .get_body()
            .unwrap()
    };
    (part("text/plain"), part("text/html"))
}

fn is_message_id(id: &str) -> bool {
    let Some(hash) = id
        .strip_prefix("<lim-incident-42-")
        .and_then(|rest| rest.strip_suffix("@example.com>"))
    else {
        return false;
    };
    hash.len() == 16 && hash.chars().all(|c| c.is_ascii_hexdigit())
}

#[tokio::test]
async fn page_then_update_thread_together() {
    let smtpd = Smtpd::start().await;
    let channel = EmailChannel::new(config(smtpd.port)).unwrap();
    assert_eq!(channel.name(), "email");

    let page = page(alice());
    let delivered = channel.deliver(&page).await.expect("page delivered");
    let page_id = delivered.external_ref.expect("the page's Message-ID");
    assert!(is_message_id(&page_id), "{page_id}");

    let update = ack_update(alice(), Some(page_id.clone()));
    let delivered = channel.deliver(&update).await.expect("update delivered");
    let update_id = delivered.external_ref.unwrap();
    assert!(is_message_id(&update_id), "{update_id}");
    assert_ne!(update_id, page_id);

    let raw = smtpd.messages(2).await;
    let mails: Vec<ParsedMail> = raw
        .iter()
        .map(|r| mailparse::parse_mail(r).unwrap())
        .collect();
    let find = |id: &str| {
        mails
            .iter()
            .find(|m| header(m, "Message-ID") == id)
            .unwrap_or_else(|| panic!("no message {id}"))
    };

    // The page.
    let m = find(&page_id);
    assert_eq!(
        header(m, "Subject"),
        "[lim] #42 TRIGGERED critical: HighLatency (chat)"
    );
    assert!(
        header(m, "From").contains("<lim@example.com>"),
        "{}",
        header(m, "From")
    );
    assert_eq!(header(m, "To"), "alice@example.com");
    assert_eq!(
        header(m, "X-RcptTo"),
        "alice@example.com",
        "the SMTP envelope"
    );
    assert_eq!(header(m, "X-MailFrom"), "lim@example.com");
    assert_eq!(header(m, "References"), "<lim-incident-42@example.com>");
    assert!(m.headers.get_first_value("In-Reply-To").is_none());
    assert_eq!(header(m, "Auto-Submitted"), "auto-generated");
    let (plain, html) = bodies(m);
    for needle in [
        "#42 HighLatency",
        "Status:    triggered",
        "Severity:  critical",
        "Service:   chat",
        "model = gpt-4o",
        "Summary: p99 latency of gpt-4o is 7.2s",
        "Description: p99 > 5s for 10m & rising",
        "Runbook: https://runbooks.example.com/llm-latency",
        &format!("Open the incident: {LINK}"),
        "escalation step 1 (pass 1) as user:alice",
    ] {
        assert!(
            plain.contains(needle),
            "plain body lacks {needle:?}:\n{plain}"
        );
    }
    let order: Vec<usize> = ["model =", "provider =", "tenant =", "alertname =", "env ="]
        .iter()
        .map(|l| plain.find(l).unwrap_or_else(|| panic!("no {l}")))
        .collect();
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "label order: {plain}"
    );
    for needle in [
        "<h2>#42 HighLatency</h2>",
        "<td>critical</td>",
        "<td>chat</td>",
        "<code>model</code> = <code>gpt-4o</code>",
        "p99 &gt; 5s for 10m &amp; rising",
        "<a href=\"https://runbooks.example.com/llm-latency\">",
        &format!("<a href=\"{LINK}\">"),
    ] {
        assert!(html.contains(needle), "HTML body lacks {needle:?}:\n{html}");
    }
    assert!(!html.contains("p99 > 5s"), "alert text is escaped in HTML");

    // The update: a reply in the page's thread.
    let m = find(&update_id);
    assert_eq!(
        header(m, "Subject"),
        "Re: [lim] #42 TRIGGERED critical: HighLatency (chat)"
    );
    assert_eq!(header(m, "To"), "alice@example.com");
    assert_eq!(header(m, "In-Reply-To"), page_id);
    let references = header(m, "References");
    let references: Vec<&str> = references.split_whitespace().collect();
    assert_eq!(
        references,
        vec!["<lim-incident-42@example.com>", page_id.as_str()]
    );
    let (plain, html) = bodies(m);
    assert!(
        plain.starts_with("Acknowledged by alice (via slack) at 2024-05-01 12:02:00 UTC\n"),
        "{plain}"
    );
    assert!(plain.contains("Status:    acknowledged"), "{plain}");
    assert!(
        plain.contains("Acked:     by alice at 2024-05-01 12:02:00 UTC"),
        "{plain}"
    );
    assert!(
        html.contains(
            "<strong>Acknowledged by alice (via slack) at 2024-05-01 12:02:00 UTC</strong>"
        ),
        "{html}"
    );
}

#[tokio::test]
async fn an_update_without_a_delivered_page_replies_to_the_thread_root() {
    let smtpd = Smtpd::start().await;
    let channel = EmailChannel::new(config(smtpd.port)).unwrap();
    let update = resolve_update(alice(), None);
    let id = channel
        .deliver(&update)
        .await
        .unwrap()
        .external_ref
        .unwrap();

    let raw = smtpd.messages(1).await;
    let m = mailparse::parse_mail(&raw[0]).unwrap();
    assert_eq!(header(&m, "Message-ID"), id);
    assert_eq!(header(&m, "In-Reply-To"), "<lim-incident-42@example.com>");
    assert_eq!(header(&m, "References"), "<lim-incident-42@example.com>");
    let (plain, html) = bodies(&m);
    assert!(
        plain.starts_with("Resolved by bob (via api) at 2024-05-01 12:03:00 UTC\n"),
        "{plain}"
    );
    assert!(
        !plain.contains("Open the incident"),
        "no link without public_url"
    );
    assert!(!html.contains("Open the incident"));
}

#[tokio::test]
async fn a_recipient_without_an_address_goes_to_the_configured_list() {
    let smtpd = Smtpd::start().await;
    let channel = EmailChannel::new(EmailConfig {
        to: vec!["oncall@example.com".into(), "Ops <ops@example.com>".into()],
        ..config(smtpd.port)
    })
    .unwrap();
    channel.deliver(&page(Recipient::Console)).await.unwrap();
    let raw = smtpd.messages(1).await;
    let m = mailparse::parse_mail(&raw[0]).unwrap();
    let to = header(&m, "To");
    assert!(
        to.contains("oncall@example.com") && to.contains("ops@example.com"),
        "{to}"
    );

    // Without a list, there is nobody to send it to: refused, not retried.
    let channel = EmailChannel::new(config(smtpd.port)).unwrap();
    let err = channel
        .deliver(&page(Recipient::Console))
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Refused { .. }), "{err}");
}

#[tokio::test]
async fn no_server_is_a_retryable_failure() {
    let channel = EmailChannel::new(config(free_port())).unwrap();
    let err = channel.deliver(&page(alice())).await.unwrap_err();
    assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
}

/// An SMTP server that accepts the session and answers `RCPT TO` with
/// `rcpt_reply`.
async fn scripted_smtp(rcpt_reply: &'static str) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 scripted ESMTP\r\n").await.ok();
                while let Ok(Some(line)) = lines.next_line().await {
                    let verb = line
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_ascii_uppercase();
                    let reply = match verb.as_str() {
                        "EHLO" | "HELO" => "250 scripted",
                        "RCPT" => rcpt_reply,
                        "QUIT" => "221 bye",
                        _ => "250 ok",
                    };
                    write
                        .write_all(format!("{reply}\r\n").as_bytes())
                        .await
                        .ok();
                    if verb == "QUIT" {
                        return;
                    }
                }
            });
        }
    });
    port
}

#[tokio::test]
async fn smtp_5xx_is_refused_and_4xx_is_retried() {
    let port = scripted_smtp("550 5.1.1 no such mailbox").await;
    let err = EmailChannel::new(config(port))
        .unwrap()
        .deliver(&page(alice()))
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Refused { .. }), "{err}");
    assert!(err.to_string().contains("no such mailbox"), "{err}");

    let port = scripted_smtp("451 4.3.0 try again later").await;
    let err = EmailChannel::new(config(port))
        .unwrap()
        .deliver(&page(alice()))
        .await
        .unwrap_err();
    assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
}

/// Outside any runtime, as `lim check-config` builds it.
#[test]
fn config_is_checked_without_a_runtime() {
    EmailChannel::new(config(25)).expect("a good config");
    assert!(EmailChannel::new(EmailConfig {
        from: "not an address".into(),
        ..config(25)
    })
    .is_err());
    assert!(EmailChannel::new(EmailConfig {
        to: vec!["nope".into()],
        ..config(25)
    })
    .is_err());
}
