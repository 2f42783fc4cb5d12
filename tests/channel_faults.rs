//! Fault tests of the notification channels: SMTP, webhook and Slack
//! endpoints that hang, reset the connection or refuse, as real servers on
//! 127.0.0.1 (nothing of lim's is mocked), against the real `lim` binary
//! (tests/lim_process) with its real channels, notifier pool and store.
//!
//! An [`Endpoint`] is one faulty far end whose [`Mode`] the test switches:
//!
//! * `Hang`: the TCP connection is accepted and everything the client sends
//!   is read (an HTTP request whole), and nothing is ever answered (an SMTP
//!   server never greets); `HangAfterRcpt`: an SMTP server that greets and
//!   answers up to `MAIL`, then never answers `RCPT`.
//! * `Reset`: the connection is accepted (for HTTP, the request head read)
//!   and reset with a TCP RST (`SO_LINGER` 0, then closed).
//! * transient refusals: HTTP 500 (for Slack with `{"ok":false,"error":
//!   "internal_error"}` as its body), Slack's HTTP 200 `{"ok":false,"error":
//!   "internal_error"}`, SMTP 451 to `RCPT`, SMTP 421 as the greeting;
//!   permanent ones: webhook 400, Slack `channel_not_found`, SMTP 550.
//! * `Healthy`: the endpoint takes what it is sent and records it.
//!
//! HTTP endpoints answer `Connection: close`, so every attempt is a fresh
//! connection and the fault in force when it connects is the one it meets.
//!
//! What is checked, per channel and fault: one attempt fails (within the
//! configured timeout for a hang: the channels' `timeout` keys, 500 ms
//! here, not their 10-30 s defaults), the delivery log says it is retrying
//! with the error, the next attempt comes only after the backoff (at least
//! half the first backoff of 1 s after the failure), and once the endpoint
//! recovers the page is delivered, with its failed attempts counted; a
//! permanent refusal is one attempt, recorded failed, never retried. And at
//! system level: with Slack, SMTP and one webhook hanging, ingest and
//! acknowledge answer at once, a healthy webhook is paged while the others
//! still hang, `/v1/actors` shows the faulty workers retrying with their
//! last error, a page made moot by the acknowledge is cancelled rather than
//! sent late, and after recovery the other pages are delivered.
//!
//! Timing: every wait polls with a generous deadline ([`PATIENCE`]). The
//! only bounds on durations are lower bounds lim's code guarantees (a
//! timeout does not fire early, a backoff is at least half its nominal
//! value), upper bounds many times what they take (`< 1 s` for an answer
//! lim gives without a network round trip; a hang failing well before the
//! channels' default timeouts), and one ordering with seconds of margin
//! (the healthy webhook's pages arrive before a 4 s timeout expires).

mod channel_fixtures;
mod lim_process;
mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use incident_actors::domain::Recipient;
use incident_actors::ports::{Channel, ChannelError};
use lim::channels::email::{EmailChannel, EmailConfig, TlsMode};
use lim::channels::slack::{SlackChannel, SlackConfig};
use lim::channels::webhook::{WebhookChannel, WebhookConfig};
use lim_process::LimProcess;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

/// How long any awaited outcome may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);
/// The channels' `timeout` in the per-channel tests.
const TIMEOUT: Duration = Duration::from_millis(500);
/// Half the notifier's first backoff (1 s, with equal jitter): no retry
/// comes sooner after a failure. Less a little, for clock granularity.
const MIN_BACKOFF: Duration = Duration::from_millis(450);
/// An answer lim gives from memory and its store, without waiting on the
/// network, comes well within this.
const PROMPT: Duration = Duration::from_secs(1);

// ---- faulty endpoints ---------------------------------------------------

/// Which far end an [`Endpoint`] plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Webhook,
    Slack,
    Email,
}

/// What an endpoint does with the next connection (see the module header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Hang,
    /// SMTP only.
    HangAfterRcpt,
    Reset,
    /// HTTP 500 (Slack: with its `internal_error` JSON body).
    Http500,
    /// Slack only: HTTP 200 `{"ok":false,"error":"internal_error"}`.
    SlackInternalError,
    /// SMTP only: `451` to `RCPT`.
    Smtp451,
    /// SMTP only: `421` as the greeting.
    Smtp421,
    /// Webhook 400, Slack `channel_not_found`, SMTP 550 to `RCPT`.
    Permanent,
    Healthy,
}

/// One accepted connection.
#[derive(Clone, Debug)]
struct Connection {
    at: Instant,
    mode: Mode,
    /// When the client closed a connection held open (`Hang*`).
    closed: Option<Instant>,
}

/// Something the endpoint took in `Healthy` mode.
#[derive(Clone, Debug)]
struct Got {
    at: Instant,
    incident: u64,
    /// Webhook: the event (`incident.triggered`…); Slack: the method
    /// (`chat.postMessage`…); email: `page` or `update` (a reply).
    what: String,
}

struct Endpoint {
    kind: Kind,
    addr: SocketAddr,
    mode: Mutex<Mode>,
    connections: Mutex<Vec<Connection>>,
    got: Mutex<Vec<Got>>,
}

impl Endpoint {
    /// Starts an endpoint of `kind` on 127.0.0.1:0 in `mode`.
    async fn start(kind: Kind, mode: Mode) -> Arc<Endpoint> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = Arc::new(Endpoint {
            kind,
            addr: listener.local_addr().unwrap(),
            mode: Mutex::new(mode),
            connections: Mutex::new(Vec::new()),
            got: Mutex::new(Vec::new()),
        });
        match kind {
            Kind::Webhook | Kind::Slack => {
                let app = Router::new()
                    .route("/hook", post(webhook))
                    .route("/api/{method}", post(slack_api))
                    .layer(axum::middleware::map_response(close_after))
                    .with_state(endpoint.clone());
                let listener = FaultyListener {
                    inner: listener,
                    endpoint: endpoint.clone(),
                };
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            }
            Kind::Email => {
                let endpoint = endpoint.clone();
                tokio::spawn(async move {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let (index, mode) = endpoint.connected();
                        tokio::spawn(smtp_session(endpoint.clone(), stream, index, mode));
                    }
                });
            }
        }
        endpoint
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn mode(&self) -> Mode {
        *self.mode.lock().unwrap()
    }

    /// Records a new connection; its index and the mode it meets.
    fn connected(&self) -> (usize, Mode) {
        let mode = self.mode();
        let mut all = self.connections.lock().unwrap();
        all.push(Connection {
            at: Instant::now(),
            mode,
            closed: None,
        });
        (all.len() - 1, mode)
    }

    fn closed(&self, index: usize) {
        self.connections.lock().unwrap()[index].closed = Some(Instant::now());
    }

    fn connections(&self) -> Vec<Connection> {
        self.connections.lock().unwrap().clone()
    }

    fn took(&self, incident: u64, what: &str) {
        self.got.lock().unwrap().push(Got {
            at: Instant::now(),
            incident,
            what: what.to_string(),
        });
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    /// When the page of `incident` arrived, if it did.
    fn page_of(&self, incident: u64) -> Option<Instant> {
        let page = match self.kind {
            Kind::Webhook => "incident.triggered",
            Kind::Slack => "chat.postMessage",
            Kind::Email => "page",
        };
        self.got()
            .iter()
            .find(|g| g.incident == incident && g.what == page)
            .map(|g| g.at)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// Hands axum only the connections the endpoint's mode lets through; hangs
/// and resets are played here, below HTTP.
struct FaultyListener {
    inner: TcpListener,
    endpoint: Arc<Endpoint>,
}

impl axum::serve::Listener for FaultyListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        loop {
            let Ok((mut stream, addr)) = self.inner.accept().await else {
                continue;
            };
            match self.endpoint.connected() {
                (index, Mode::Hang) => {
                    tokio::spawn(hold(self.endpoint.clone(), stream, index));
                }
                (_, Mode::Reset) => {
                    tokio::spawn(async move {
                        read_request_head(&mut stream).await;
                        reset(stream);
                    });
                }
                _ => return (stream, addr),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

/// Reads until the end of an HTTP request's head (or the client stops).
async fn read_request_head(stream: &mut TcpStream) {
    let mut head = Vec::new();
    let mut chunk = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Reads whatever comes and answers nothing, until the client gives up.
async fn hold(endpoint: Arc<Endpoint>, mut stream: impl AsyncReadExt + Unpin, index: usize) {
    let mut chunk = [0u8; 4096];
    while let Ok(n) = stream.read(&mut chunk).await {
        if n == 0 {
            break;
        }
    }
    endpoint.closed(index);
}

/// Closes with a TCP RST rather than a FIN.
fn reset(stream: TcpStream) {
    stream.set_zero_linger().expect("SO_LINGER 0");
    drop(stream);
}

async fn close_after(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn webhook(State(e): State<Arc<Endpoint>>, body: Bytes) -> Response {
    match e.mode() {
        Mode::Http500 => (StatusCode::INTERNAL_SERVER_ERROR, "receiver down").into_response(),
        Mode::Permanent => (StatusCode::BAD_REQUEST, "no such hook").into_response(),
        Mode::Healthy => {
            let v: Value = serde_json::from_slice(&body).unwrap();
            e.took(
                v["incident"]["id"].as_u64().unwrap(),
                v["event"].as_str().unwrap(),
            );
            "ok".into_response()
        }
        // Switched to a fault below HTTP on a connection taken before.
        other => never_answered(other).await,
    }
}

async fn slack_api(
    State(e): State<Arc<Endpoint>>,
    UrlPath(method): UrlPath<String>,
    body: Bytes,
) -> Response {
    let internal_error = json!({"ok": false, "error": "internal_error"});
    match e.mode() {
        Mode::Http500 => (StatusCode::INTERNAL_SERVER_ERROR, Json(internal_error)).into_response(),
        Mode::SlackInternalError => Json(internal_error).into_response(),
        Mode::Permanent => Json(json!({"ok": false, "error": "channel_not_found"})).into_response(),
        Mode::Healthy => {
            let v: Value = serde_json::from_slice(&body).unwrap();
            let text = v["text"].as_str().unwrap_or_default();
            e.took(incident_in_slack_text(text), &method);
            let ts = match method.as_str() {
                "chat.update" => v["ts"].clone(),
                _ => json!(format!("1700000000.{:06}", e.got().len())),
            };
            Json(json!({"ok": true, "channel": "C0ONCALL", "ts": ts,
                        "message": {"ts": ts, "text": text, "type": "message"}}))
            .into_response()
        }
        other => never_answered(other).await,
    }
}

async fn never_answered(mode: Mode) -> Response {
    assert!(
        matches!(mode, Mode::Hang | Mode::Reset),
        "{mode:?} is not an HTTP fault"
    );
    std::future::pending().await
}

/// The incident of a Slack message's fallback text, `[TRIGGERED] #7…`.
fn incident_in_slack_text(text: &str) -> u64 {
    let digits: String = text
        .split_once('#')
        .map(|(_, rest)| rest.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("no incident in {text:?}"))
}

/// One SMTP session in `mode`.
async fn smtp_session(endpoint: Arc<Endpoint>, stream: TcpStream, index: usize, mode: Mode) {
    match mode {
        Mode::Hang => return hold(endpoint, stream, index).await,
        Mode::Reset => return reset(stream),
        _ => {}
    }
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    if mode == Mode::Smtp421 {
        let _ = write
            .write_all(b"421 4.3.2 faults.test service not available, try later\r\n")
            .await;
        return;
    }
    let _ = write.write_all(b"220 faults.test ESMTP\r\n").await;
    while let Ok(Some(line)) = lines.next_line().await {
        let verb = line
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_ascii_uppercase();
        let reply = match verb.as_str() {
            "EHLO" | "HELO" => "250 faults.test",
            "RCPT" => match mode {
                Mode::HangAfterRcpt => {
                    while let Ok(Some(_)) = lines.next_line().await {}
                    endpoint.closed(index);
                    return;
                }
                Mode::Smtp451 => "451 4.3.0 mailbox busy, try again later",
                Mode::Permanent => "550 5.1.1 no such mailbox",
                _ => "250 2.1.5 ok",
            },
            "DATA" => {
                let _ = write.write_all(b"354 go ahead\r\n").await;
                let mut message = Vec::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if line == "." {
                        break;
                    }
                    message.push(line);
                }
                let incident = message
                    .iter()
                    .find_map(|l| l.strip_prefix("X-Lim-Incident: "))
                    .and_then(|id| id.trim().parse().ok())
                    .expect("an X-Lim-Incident header");
                let reply = message.iter().any(|l| l.starts_with("In-Reply-To:"));
                endpoint.took(incident, if reply { "update" } else { "page" });
                "250 2.0.0 queued"
            }
            "QUIT" => {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
            _ => "250 ok",
        };
        let _ = write.write_all(format!("{reply}\r\n").as_bytes()).await;
    }
}

// ---- lim, configured to page the endpoints -------------------------------

impl Kind {
    /// The transport of its channel (`channel` on the timeline).
    fn transport(self) -> &'static str {
        match self {
            Kind::Webhook => "webhook:ops",
            Kind::Slack => "slack",
            Kind::Email => "email",
        }
    }

    /// Its channel's config table (a webhook called `name`), pointing at
    /// `endpoint`.
    fn config(self, endpoint: &Endpoint, name: &str, timeout: Duration) -> String {
        let timeout = humantime::format_duration(timeout);
        match self {
            Kind::Webhook => format!(
                "[[channels.webhooks]]\nname = \"{name}\"\nurl = \"{}/hook\"\ntimeout = \"{timeout}\"\n",
                endpoint.url()
            ),
            Kind::Slack => format!(
                "[channels.slack]\nbot_token = \"xoxb-faults\"\ndefault_channel = \"#oncall\"\n\
                 api_url = \"{}/api/\"\ntimeout = \"{timeout}\"\n",
                endpoint.url()
            ),
            Kind::Email => format!(
                "[channels.email]\nhost = \"127.0.0.1\"\nport = {}\ntls = \"none\"\n\
                 from = \"lim@example.com\"\nto = [\"oncall@example.com\"]\ntimeout = \"{timeout}\"\n",
                endpoint.addr.port()
            ),
        }
    }

    /// The policy target naming its channel.
    fn target(self) -> &'static str {
        match self {
            Kind::Webhook => "ops",
            Kind::Slack => "slack",
            Kind::Email => "email",
        }
    }

    /// The channel itself, for a single attempt outside lim.
    fn channel(self, endpoint: &Endpoint, timeout: Duration) -> Box<dyn Channel> {
        match self {
            Kind::Webhook => Box::new(
                WebhookChannel::new(WebhookConfig {
                    name: "ops".into(),
                    url: format!("{}/hook", endpoint.url()),
                    secret: None,
                    timeout,
                })
                .unwrap(),
            ),
            Kind::Slack => Box::new(
                SlackChannel::new(SlackConfig {
                    api_url: format!("{}/api/", endpoint.url()),
                    timeout,
                    ..SlackConfig::new("xoxb-faults", "#oncall")
                })
                .unwrap(),
            ),
            Kind::Email => Box::new(
                EmailChannel::new(EmailConfig {
                    host: "127.0.0.1".into(),
                    port: endpoint.addr.port(),
                    tls: TlsMode::None,
                    username: None,
                    password: None,
                    from: "lim@example.com".into(),
                    to: vec![],
                    timeout,
                })
                .unwrap(),
            ),
        }
    }

    fn recipient(self) -> Recipient {
        match self {
            Kind::Webhook => Recipient::Webhook { name: "ops".into() },
            Kind::Slack => Recipient::SlackChannel {
                channel: "#oncall".into(),
            },
            Kind::Email => Recipient::Email {
                user: "oncall".into(),
                address: "oncall@example.com".into(),
            },
        }
    }
}

/// A one-step policy paging `targets` (its delay is long: no second step
/// fires during a test).
fn policy(targets: &[&str]) -> String {
    let targets: Vec<String> = targets.iter().map(|t| format!("{t:?}")).collect();
    format!(
        "[escalation]\n[[escalation.steps]]\ndelay = \"30m\"\ntargets = [{}]\n",
        targets.join(", ")
    )
}

struct Lim {
    process: LimProcess,
    http: reqwest::Client,
    _config: tempfile::TempDir,
    _db: tempfile::TempDir,
}

impl Lim {
    async fn start(config: &str) -> Lim {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("lim.toml");
        std::fs::write(&file, config).unwrap();
        let (db, url) = support::temp_sqlite_url();
        let process = LimProcess::start(binary(), &url, Some(&file)).await;
        Lim {
            process,
            http: reqwest::Client::new(),
            _config: dir,
            _db: db,
        }
    }

    /// Posts a firing alert; its incident and how long lim took to answer.
    async fn alert(&self, name: &str) -> (u64, Duration) {
        let start = Instant::now();
        let r = self
            .http
            .post(self.process.url("/v1/alerts"))
            .json(&json!({"labels": {"alertname": name, "severity": "critical"}}))
            .send()
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(r.status(), StatusCode::ACCEPTED);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["results"][0]["action"], "created", "{v}");
        (v["results"][0]["incident_id"].as_u64().unwrap(), took)
    }

    /// Acknowledges through the API; how long lim took to answer.
    async fn acknowledge(&self, id: u64) -> Duration {
        let start = Instant::now();
        let r = self
            .http
            .post(self.process.url(&format!("/v1/incidents/{id}/acknowledge")))
            .json(&json!({"by": "alice"}))
            .send()
            .await
            .unwrap();
        let took = start.elapsed();
        assert_eq!(r.status(), StatusCode::OK, "{}", r.text().await.unwrap());
        took
    }

    async fn get(&self, path: &str) -> Value {
        let r = self.http.get(self.process.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "GET {path}");
        r.json().await.unwrap()
    }

    /// The incident's deliveries through `transport`, from its timeline.
    async fn deliveries(&self, id: u64, transport: &str) -> Vec<Value> {
        let v = self.get(&format!("/v1/incidents/{id}/timeline")).await;
        v["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["channel"] == transport)
            .cloned()
            .collect()
    }

    /// The incident's page through `transport` once it has become `kind`
    /// (`delivery_retrying`, `delivered`…) on the timeline.
    async fn page_becomes(&self, id: u64, transport: &str, kind: &str) -> Value {
        until(
            &format!("incident {id}'s page through {transport} to be {kind}"),
            || async {
                self.deliveries(id, transport)
                    .await
                    .into_iter()
                    .find(|d| d["notification"] == "page" && d["type"] == kind)
            },
        )
        .await
    }

    /// The state of the channel worker of `transport`, from `/v1/actors`.
    async fn worker(&self, transport: &str) -> Value {
        let v = self.get("/v1/actors?kind=notifier_worker").await;
        let mut found = None;
        visit(&v["tree"], &mut |node| {
            if node["kind"] == "notifier_worker" && node["state"]["channel"] == transport {
                assert_eq!(node["status"], "running", "{node}");
                found = Some(node["state"].clone());
            }
        });
        found.unwrap_or_else(|| panic!("no worker for {transport} in {v}"))
    }
}

fn visit(node: &Value, f: &mut impl FnMut(&Value)) {
    f(node);
    for child in node["children"].as_array().into_iter().flatten() {
        visit(child, f);
    }
}

/// Polls `f` until it gives `Some`, for at most [`PATIENCE`].
async fn until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn error_of(delivery: &Value) -> &str {
    delivery["error"]
        .as_str()
        .unwrap_or_else(|| panic!("no error recorded: {delivery}"))
}

fn says_any(error: &str, any_of: &[&str]) -> bool {
    let error = error.to_ascii_lowercase();
    any_of
        .iter()
        .any(|s| error.contains(&s.to_ascii_lowercase()))
}

// ---- one channel, one fault ------------------------------------------------

/// What the error of an attempt that met `mode` says (one of these).
fn expected_error(kind: Kind, mode: Mode) -> &'static [&'static str] {
    match (kind, mode) {
        (_, Mode::Hang | Mode::HangAfterRcpt) => &["no answer within 500ms"],
        (_, Mode::Reset) => &["reset", "closed", "broken pipe", "incomplete"],
        (Kind::Slack, Mode::Http500) => &["HTTP 500"],
        (_, Mode::Http500) => &["500"],
        (_, Mode::SlackInternalError) => &["internal_error"],
        (_, Mode::Smtp451) => &["try again later"],
        (_, Mode::Smtp421) => &["service not available"],
        (Kind::Webhook, Mode::Permanent) => &["400"],
        (Kind::Slack, Mode::Permanent) => &["channel_not_found"],
        (Kind::Email, Mode::Permanent) => &["no such mailbox"],
        (_, Mode::Healthy) => unreachable!("not a fault"),
    }
}

/// lim pages `kind` while its endpoint has `fault`: the attempt fails, is
/// retried after a backoff, and the page is delivered once the endpoint
/// recovers, the failed attempts on record.
async fn retried_until_delivered(kind: Kind, fault: Mode) {
    let endpoint = Endpoint::start(kind, fault).await;
    let lim = Lim::start(&format!(
        "{}\n{}",
        kind.config(&endpoint, "ops", TIMEOUT),
        policy(&[kind.target()])
    ))
    .await;
    let transport = kind.transport();
    let expected = expected_error(kind, fault);
    let (id, _) = lim.alert("ChannelFault").await;

    // The first attempt failed, for the reason the fault gives, and the
    // delivery is pending again, for a retry.
    let retrying = lim.page_becomes(id, transport, "delivery_retrying").await;
    assert!(
        says_any(error_of(&retrying), expected),
        "{kind:?} {fault:?}: {retrying}"
    );
    // It is retried while the fault lasts.
    until("a second attempt", || async {
        (endpoint.connections().len() >= 2).then_some(())
    })
    .await;
    let worker = lim.worker(transport).await;
    assert!(
        says_any(worker["last_error"].as_str().unwrap_or_default(), expected),
        "{worker}"
    );
    assert_eq!(
        (&worker["delivered"], &worker["failed"]),
        (&json!(0), &json!(0))
    );

    endpoint.set(Mode::Healthy);
    until("the page at the recovered endpoint", || async {
        endpoint.page_of(id)
    })
    .await;
    let delivered = lim.page_becomes(id, transport, "delivered").await;
    let connections = endpoint.connections();
    let faulty = connections.iter().filter(|c| c.mode == fault).count();
    assert!(faulty >= 2, "{connections:?}");
    assert_eq!(connections.last().unwrap().mode, Mode::Healthy);
    assert_eq!(
        delivered["attempts"].as_u64().unwrap() as usize,
        connections.len(),
        "one connection per attempt, every attempt counted: {delivered}"
    );
    assert!(
        says_any(error_of(&delivered), expected),
        "the last failure stays on record: {delivered}"
    );
    assert_eq!(
        endpoint.got().len(),
        1,
        "delivered once: {:?}",
        endpoint.got()
    );

    // Each retry waited for its backoff after the attempt before had
    // failed: for a hang, once the timeout had run out (and well before
    // the channels' default timeouts, 10 s and more).
    for pair in connections.windows(2) {
        let gap = pair[1].at - pair[0].at;
        let hangs = matches!(pair[0].mode, Mode::Hang | Mode::HangAfterRcpt);
        let least = if hangs {
            TIMEOUT + MIN_BACKOFF - Duration::from_millis(100)
        } else {
            MIN_BACKOFF
        };
        assert!(
            gap >= least,
            "{kind:?} {fault:?}: retried {gap:?} after the attempt before"
        );
        if hangs {
            assert!(
                gap < Duration::from_secs(9),
                "{kind:?}: a hang held an attempt {gap:?}"
            );
        }
    }
    let worker = lim.worker(transport).await;
    assert_eq!(worker["delivered"], 1, "{worker}");
    assert_eq!(worker["retrying"], 0, "{worker}");
}

/// lim pages `kind` while its endpoint refuses for good: one attempt,
/// recorded failed, never retried.
async fn refused_for_good(kind: Kind) {
    let endpoint = Endpoint::start(kind, Mode::Permanent).await;
    let lim = Lim::start(&format!(
        "{}\n{}",
        kind.config(&endpoint, "ops", TIMEOUT),
        policy(&[kind.target()])
    ))
    .await;
    let transport = kind.transport();
    let (id, _) = lim.alert("ChannelRefuses").await;
    let failed = lim.page_becomes(id, transport, "delivery_failed").await;
    assert_eq!(failed["attempts"], 1, "{failed}");
    assert!(
        says_any(error_of(&failed), expected_error(kind, Mode::Permanent)),
        "{failed}"
    );
    // `delivery_failed` is final: the worker gave up on it, nothing waits.
    let worker = lim.worker(transport).await;
    assert_eq!(
        (
            &worker["failed"],
            &worker["retrying"],
            &worker["next_retry"]
        ),
        (&json!(1), &json!(0), &Value::Null),
        "{worker}"
    );
    assert_eq!(endpoint.connections().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_hang_is_retried_until_delivered() {
    retried_until_delivered(Kind::Webhook, Mode::Hang).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_reset_is_retried_until_delivered() {
    retried_until_delivered(Kind::Webhook, Mode::Reset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_500_is_retried_until_delivered() {
    retried_until_delivered(Kind::Webhook, Mode::Http500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_400_is_not_retried() {
    refused_for_good(Kind::Webhook).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_hang_is_retried_until_delivered() {
    retried_until_delivered(Kind::Slack, Mode::Hang).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_reset_is_retried_until_delivered() {
    retried_until_delivered(Kind::Slack, Mode::Reset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_http_500_is_retried_until_delivered() {
    retried_until_delivered(Kind::Slack, Mode::Http500).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_internal_error_is_retried_until_delivered() {
    retried_until_delivered(Kind::Slack, Mode::SlackInternalError).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_channel_not_found_is_not_retried() {
    refused_for_good(Kind::Slack).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_silent_server_is_retried_until_delivered() {
    retried_until_delivered(Kind::Email, Mode::Hang).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_hang_after_rcpt_is_retried_until_delivered() {
    retried_until_delivered(Kind::Email, Mode::HangAfterRcpt).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_reset_is_retried_until_delivered() {
    retried_until_delivered(Kind::Email, Mode::Reset).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_451_is_retried_until_delivered() {
    retried_until_delivered(Kind::Email, Mode::Smtp451).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_421_greeting_is_retried_until_delivered() {
    retried_until_delivered(Kind::Email, Mode::Smtp421).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smtp_550_is_not_retried() {
    refused_for_good(Kind::Email).await;
}

// ---- one attempt against a hang, outside lim --------------------------------

/// One attempt of `kind`'s channel against an endpoint in `mode` fails
/// (retryably) once its timeout has run out, not sooner and not much
/// later, and lets go of the connection.
async fn a_hang_fails_the_attempt_within_its_timeout(kind: Kind, mode: Mode) {
    let endpoint = Endpoint::start(kind, mode).await;
    let channel = kind.channel(&endpoint, TIMEOUT);
    let notification = channel_fixtures::page(kind.recipient());
    let start = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(20), channel.deliver(&notification))
        .await
        .unwrap_or_else(|_| {
            panic!("{kind:?} {mode:?}: no outcome after 20 s, with a timeout of {TIMEOUT:?}")
        });
    let took = start.elapsed();
    let err = outcome.expect_err("nothing was answered");
    assert!(matches!(err, ChannelError::Failed { .. }), "{err}");
    assert!(err.is_retryable(), "{err}");
    assert!(err.to_string().contains("no answer within 500ms"), "{err}");
    assert!(took >= TIMEOUT, "gave up after {took:?}");
    assert!(took < TIMEOUT + Duration::from_secs(5), "took {took:?}");
    until("the client to let go of the held connection", || async {
        let c = endpoint.connections();
        (c.len() == 1 && c[0].closed.is_some()).then_some(())
    })
    .await;
}

/// The regression test of the SMTP hang: lettre's async transport bounds
/// only the TCP connect with its `timeout`, so before the email channel
/// bounded the attempt itself, a server that never greeted held it (and an
/// in-flight slot of the email worker) forever.
#[tokio::test]
async fn smtp_silent_server_fails_the_attempt_within_its_timeout() {
    a_hang_fails_the_attempt_within_its_timeout(Kind::Email, Mode::Hang).await;
}

#[tokio::test]
async fn smtp_hang_after_rcpt_fails_the_attempt_within_its_timeout() {
    a_hang_fails_the_attempt_within_its_timeout(Kind::Email, Mode::HangAfterRcpt).await;
}

#[tokio::test]
async fn slack_hang_fails_the_attempt_within_its_timeout() {
    a_hang_fails_the_attempt_within_its_timeout(Kind::Slack, Mode::Hang).await;
}

#[tokio::test]
async fn webhook_hang_fails_the_attempt_within_its_timeout() {
    a_hang_fails_the_attempt_within_its_timeout(Kind::Webhook, Mode::Hang).await;
}

// ---- the whole system, three channels hanging --------------------------------

/// Slack, SMTP and one webhook hang (for 4 s an attempt); a second webhook
/// is healthy. Nothing that does not go through a channel waits for one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_channels_hold_up_neither_ingest_nor_acknowledge_nor_another_channel() {
    const HANG_TIMEOUT: Duration = Duration::from_secs(4);
    let slack = Endpoint::start(Kind::Slack, Mode::Hang).await;
    let email = Endpoint::start(Kind::Email, Mode::Hang).await;
    let bad = Endpoint::start(Kind::Webhook, Mode::Hang).await;
    let good = Endpoint::start(Kind::Webhook, Mode::Healthy).await;
    let lim = Lim::start(
        &[
            Kind::Slack.config(&slack, "", HANG_TIMEOUT),
            Kind::Email.config(&email, "", HANG_TIMEOUT),
            Kind::Webhook.config(&bad, "bad", HANG_TIMEOUT),
            Kind::Webhook.config(&good, "good", HANG_TIMEOUT),
            policy(&["slack", "email", "bad", "good"]),
        ]
        .join("\n"),
    )
    .await;
    let faulty = [("slack", &slack), ("email", &email), ("webhook:bad", &bad)];
    let timeout_error = ["no answer within 4s"];

    // (1) Ingest answers at once, also while every faulty channel holds an
    // attempt open.
    let (a, took) = lim.alert("A").await;
    assert!(took < PROMPT, "ingest took {took:?}");
    until("every faulty endpoint to hold a connection", || async {
        faulty
            .iter()
            .all(|(_, e)| !e.connections().is_empty())
            .then_some(())
    })
    .await;
    let mut ids = vec![a];
    for name in ["B", "C"] {
        let (id, took) = lim.alert(name).await;
        assert!(took < PROMPT, "ingest took {took:?} while channels hang");
        ids.push(id);
    }
    let (b, c) = (ids[1], ids[2]);

    // (2) The healthy webhook is paged for all three, while the faulty
    // endpoints still hold their first attempts (none has timed out yet).
    let mut paged = Vec::new();
    for &id in &ids {
        paged.push(until("the healthy webhook's page", || async { good.page_of(id) }).await);
    }
    let last_page = *paged.iter().max().unwrap();
    for (transport, endpoint) in &faulty {
        let first = &endpoint.connections()[0];
        assert_eq!(first.mode, Mode::Hang);
        assert!(
            first.closed.is_none_or(|closed| closed > last_page),
            "{transport}'s first attempt gave up before the healthy webhook was paged"
        );
    }

    // (3) An acknowledge answers at once while the channels hang; the
    // healthy webhook hears of it.
    let took = lim.acknowledge(a).await;
    assert!(
        took < PROMPT,
        "acknowledge took {took:?} while channels hang"
    );
    let incident = lim.get(&format!("/v1/incidents/{a}")).await;
    assert_eq!(incident["status"], "acknowledged", "{incident}");
    until("the healthy webhook's acknowledged event", || async {
        good.got()
            .iter()
            .any(|g| g.incident == a && g.what == "incident.acknowledged")
            .then_some(())
    })
    .await;

    // (4) The live tree: the faulty workers wait to retry, with the
    // timeout as their last error; the healthy one delivered everything.
    for (transport, _) in &faulty {
        let worker = until(&format!("{transport}'s worker to be retrying"), || async {
            let w = lim.worker(transport).await;
            let retrying = w["retrying"].as_u64().unwrap() >= 1;
            let error = says_any(w["last_error"].as_str().unwrap_or_default(), &timeout_error);
            (retrying && error).then_some(w)
        })
        .await;
        assert_eq!(worker["delivered"], 0, "{worker}");
        assert!(!worker["next_retry"].is_null(), "{worker}");
    }
    let healthy = lim.worker("webhook:good").await;
    assert_eq!(
        healthy["delivered"], 4,
        "three pages, one update: {healthy}"
    );
    assert_eq!(
        (
            &healthy["failed"],
            &healthy["retrying"],
            &healthy["last_error"]
        ),
        (&json!(0), &json!(0), &Value::Null),
        "{healthy}"
    );

    // The delivery log: B's pages through the faulty channels are retrying,
    // with the timeout; through the healthy one, delivered at once.
    for (transport, _) in &faulty {
        let d = lim.page_becomes(b, transport, "delivery_retrying").await;
        assert!(says_any(error_of(&d), &timeout_error), "{d}");
    }
    let d = lim.page_becomes(b, "webhook:good", "delivered").await;
    assert_eq!(d["attempts"], 1, "{d}");

    // A's pages through the faulty channels, made moot by the acknowledge,
    // are cancelled at their next turn rather than sent late.
    for (transport, _) in &faulty {
        lim.page_becomes(a, transport, "delivery_cancelled").await;
    }

    // (5) The endpoints recover: B's and C's pages are delivered, their
    // failed attempts on record; A's never are.
    for (_, endpoint) in &faulty {
        endpoint.set(Mode::Healthy);
    }
    for (transport, endpoint) in &faulty {
        for id in [b, c] {
            until(&format!("incident {id}'s page at {transport}"), || async {
                endpoint.page_of(id)
            })
            .await;
            let d = lim.page_becomes(id, transport, "delivered").await;
            assert!(d["attempts"].as_u64().unwrap() >= 2, "{d}");
            assert!(says_any(error_of(&d), &timeout_error), "{d}");
        }
    }
    for (transport, endpoint) in &faulty {
        // Everything A had queued for this channel (its page, the update
        // about the acknowledge) ends cancelled, none of it sent.
        until(
            &format!("incident {a}'s {transport} deliveries to be cancelled"),
            || async {
                let all = lim.deliveries(a, transport).await;
                all.iter()
                    .all(|d| d["type"] == "delivery_cancelled")
                    .then_some(())
            },
        )
        .await;
        let got = endpoint.got();
        assert!(
            got.iter().all(|g| g.incident != a),
            "{transport} got incident {a}'s: {got:?}"
        );
        let worker = lim.worker(transport).await;
        assert_eq!(worker["delivered"], 2, "{transport}: {worker}");
        assert_eq!(worker["failed"], 0, "{transport}: {worker}");
    }
}
