//! No secret lim is given ever shows in what it writes or answers (issue 9).
//!
//! The real `lim` binary runs with every secret it knows set to a distinct
//! random string: API tokens (read and write scopes), integration keys (one
//! written in the clear, one as its digest; also PagerDuty's
//! `routing_key`), the Slack bot token and signing secret, the SMTP user's
//! password, a webhook URL with a token in its query string and the webhook
//! signing secret, a second webhook URL with a user and password (HTTP basic
//! auth), the database password (PostgreSQL URL, in the user info or as the
//! `password` query parameter), a token in the OTLP endpoints' query string
//! and two in `OTEL_EXPORTER_OTLP_HEADERS`. Three runs:
//!
//! * the config file, `RUST_LOG=trace`, text logs;
//! * the config file, `RUST_LOG=debug`, `LIM_LOG_FORMAT=json`;
//! * no file, the quick-start variables (`LIM_SMTP_URL` with user and
//!   password, `LIM_SLACK_*`, `LIM_WEBHOOK_URL` + `LIM_WEBHOOK_SECRET`),
//!   `RUST_LOG=trace`.
//!
//! Everything lim talks to is a local stand-in that fails first: Slack
//! answers HTTP 500, then `ok: false`, then posts; each webhook answers 500,
//! then 200; the OTLP receiver 500, then 200; the SMTP server offers AUTH and,
//! connection by connection, answers AUTH PLAIN with 535, AUTH LOGIN with
//! 535, resets the connection after AUTH, hangs after AUTH, resets before
//! greeting. The traffic: alerts on every ingest path (with the right key, a
//! wrong one, none, an API token instead of a key), a heartbeat ping, the
//! operator API with no token, a wrong one, an integration key, the read
//! token (a write refused 403) and the write token, Slack clicks and `/lim`
//! with a bad and a good signature, the CLI (`LIM_TOKEN` right and wrong,
//! `--help`), `check-config`. Pages go to every channel, fail, are retried
//! and (email) given up, so the errors are logged.
//!
//! Then no secret may appear, in any of these forms, in lim's stdout and
//! stderr, the CLI's output, `/v1/actors`, `/metrics`, the incidents, their
//! timelines (delivery errors included) and the heartbeats: verbatim, its
//! random core alone, percent-encoded, form-encoded, base64 (standard and
//! URL-safe, at each of the three alignments inside a longer base64 text, so
//! also inside `\0user\0password` of SMTP AUTH PLAIN and `user:password` of
//! HTTP basic auth, which are also looked for whole). The stand-ins check
//! that each secret was really used (the bot token sent, AUTH PLAIN carrying
//! exactly the encoding looked for, the webhook signature valid, …), and the
//! captured output must hold the delivery failures of every channel (and,
//! at trace and debug, reqwest's, sqlx's and slack-morphism's lines), so the
//! test cannot pass by capturing nothing.
//!
//! A fourth test: an OTLP endpoint with credentials in its user info, which
//! the exporter's HTTP client would log and never send, is refused at start
//! without the error showing them.

mod lim_process;
mod support;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use hmac::{Hmac, Mac};
use lim::auth::SecretDigest;
use lim_process::{LimProcess, Output};
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

fn random_hex(bytes: usize) -> String {
    let mut b = vec![0u8; bytes];
    getrandom::getrandom(&mut b).expect("OS randomness");
    hex::encode(b)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---- the secrets and the forms they must not take ---------------------------

/// One secret: its name (for messages), its text and its random core.
struct Secret {
    name: &'static str,
    text: String,
    core: String,
}

impl Secret {
    fn new(name: &'static str, prefix: &str, suffix: &str) -> Secret {
        let core = random_hex(20);
        Secret {
            name,
            text: format!("{prefix}{core}{suffix}"),
            core,
        }
    }
}

struct Secrets {
    write_token: Secret,
    read_token: Secret,
    key_clear: Secret,
    key_digest: Secret,
    bot_token: Secret,
    signing_secret: Secret,
    smtp_password: Secret,
    hook_token: Secret,
    hook_secret: Secret,
    hook_password: Secret,
    db_password: Secret,
    otlp_password: Secret,
    otlp_query: Secret,
    otlp_token: Secret,
    otlp_key: Secret,
    /// Not a secret lim holds: the CLI is given it as a wrong `LIM_TOKEN`.
    wrong_token: Secret,
    smtp_user: String,
    hook_user: String,
    otlp_user: String,
}

impl Secrets {
    fn new() -> Secrets {
        Secrets {
            write_token: Secret::new("write API token", "limw_", ""),
            read_token: Secret::new("read API token", "limr_", ""),
            key_clear: Secret::new("clear-text integration key", "ikey_", ""),
            key_digest: Secret::new("digest integration key", "ikey_", ""),
            bot_token: Secret::new("Slack bot token", "xoxb-", ""),
            signing_secret: Secret::new("Slack signing secret", "", ""),
            // Characters a URL must encode, and none JSON escapes.
            smtp_password: Secret::new("SMTP password", "p+w/", "=@:% !"),
            hook_token: Secret::new("webhook URL token", "tok", ""),
            hook_secret: Secret::new("webhook signing secret", "whsec_", ""),
            hook_password: Secret::new("webhook basic-auth password", "hp", "-~"),
            db_password: Secret::new("database password", "db", ""),
            otlp_password: Secret::new("OTLP endpoint password", "op", ""),
            otlp_query: Secret::new("OTLP endpoint query token", "oq", ""),
            otlp_token: Secret::new("OTLP authorization header", "otlp_", ""),
            otlp_key: Secret::new("OTLP api key header", "otlpk_", ""),
            wrong_token: Secret::new("wrong LIM_TOKEN", "limx_", ""),
            smtp_user: format!("smtpuser{}", random_hex(4)),
            hook_user: format!("hookuser{}", random_hex(4)),
            otlp_user: format!("otlpuser{}", random_hex(4)),
        }
    }

    fn all(&self) -> Vec<&Secret> {
        vec![
            &self.write_token,
            &self.read_token,
            &self.key_clear,
            &self.key_digest,
            &self.bot_token,
            &self.signing_secret,
            &self.smtp_password,
            &self.hook_token,
            &self.hook_secret,
            &self.hook_password,
            &self.db_password,
            &self.otlp_password,
            &self.otlp_query,
            &self.otlp_token,
            &self.otlp_key,
            &self.wrong_token,
        ]
    }

    /// Every text that would give a secret away, with what it is.
    fn needles(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for s in self.all() {
            out.extend(forms(&s.text).into_iter().map(|f| (s.name.to_string(), f)));
            out.push((format!("{} (random core)", s.name), s.core.clone()));
        }
        let pairs = [
            (&self.smtp_user, &self.smtp_password, "SMTP credentials"),
            (&self.hook_user, &self.hook_password, "webhook basic auth"),
            (&self.otlp_user, &self.otlp_password, "OTLP user info"),
        ];
        for (user, password, what) in pairs {
            for whole in [
                format!("\0{user}\0{}", password.text),
                format!("{user}:{}", password.text),
                format!("{user}\0{}", password.text),
            ] {
                for alphabet in [STANDARD, URL_SAFE] {
                    for pad in [true, false] {
                        out.push((
                            format!("{what}, base64 whole"),
                            base64(whole.as_bytes(), alphabet, pad),
                        ));
                    }
                }
            }
        }
        out
    }
}

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const URL_SAFE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64(bytes: &[u8], alphabet: &[u8; 64], pad: bool) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(alphabet[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// `secret` verbatim, percent- and form-encoded, and base64 in both
/// alphabets at each alignment: for a prefix of k bytes (k = 0, 1, 2), the
/// characters that depend on the secret's bytes alone, which any base64
/// text with the secret inside (`\0user\0password`, `user:password`)
/// contains at one of the three alignments.
fn forms(secret: &str) -> Vec<String> {
    let mut out = vec![
        secret.to_string(),
        percent_encoding::utf8_percent_encode(secret, percent_encoding::NON_ALPHANUMERIC)
            .to_string(),
        url::form_urlencoded::byte_serialize(secret.as_bytes()).collect(),
    ];
    for alphabet in [STANDARD, URL_SAFE] {
        for k in 0..3 {
            let mut bytes = vec![0u8; k];
            bytes.extend_from_slice(secret.as_bytes());
            let encoded = base64(&bytes, alphabet, false);
            let start = if k == 0 { 0 } else { 4 };
            let end = bytes.len() / 3 * 4;
            out.push(encoded[start..end].to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

// ---- the HTTP stand-ins: Slack, webhooks, OTLP --------------------------------

/// A post to a webhook.
#[derive(Clone, Debug)]
struct HookPost {
    name: String,
    /// The `token` query parameter.
    token: Option<String>,
    authorization: Option<String>,
    /// `X-Lim-Signature` verifies with the webhook secret.
    signed: bool,
    /// What the stand-in answered.
    status: u16,
}

#[derive(Default)]
struct Far {
    /// Slack Web API calls: (method, Authorization header, status answered).
    slack: Mutex<Vec<(String, String, u16)>>,
    hooks: Mutex<Vec<HookPost>>,
    /// OTLP exports: (the request's headers and, as `?token`, the query's
    /// token, status answered).
    otlp: Mutex<Vec<(HashMap<String, String>, u16)>>,
    hook_secret: String,
}

fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

async fn slack_api(
    State(far): State<Arc<Far>>,
    UrlPath(method): UrlPath<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let auth = header(&headers, "authorization").unwrap_or_default();
    let mut calls = far.slack.lock().unwrap();
    let n = calls.len();
    let (status, answer) = match n {
        0 => (500, "Slack is having trouble".into_response()),
        1 => (
            200,
            Json(json!({"ok": false, "error": "internal_error"})).into_response(),
        ),
        _ => {
            let ts = match method.as_str() {
                "chat.update" => body["ts"].clone(),
                _ => json!(format!("1700000000.{:06}", n + 1)),
            };
            (
                200,
                Json(json!({"ok": true, "channel": "C0ONCALL", "ts": ts,
                            "message": {"ts": ts, "text": body["text"], "type": "message"}}))
                .into_response(),
            )
        }
    };
    calls.push((method, auth, status));
    let mut response = answer;
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

async fn hook(
    State(far): State<Arc<Far>>,
    UrlPath(name): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, &'static str) {
    let signed = match (
        header(&headers, "x-lim-timestamp"),
        header(&headers, "x-lim-signature"),
    ) {
        (Some(ts), Some(sig)) => {
            lim::channels::webhook::verify_signature(&far.hook_secret, &ts, &body, &sig)
        }
        _ => false,
    };
    let mut hooks = far.hooks.lock().unwrap();
    let first = !hooks.iter().any(|h| h.name == name);
    let status = if first { 500 } else { 200 };
    hooks.push(HookPost {
        name,
        token: query.get("token").cloned(),
        authorization: header(&headers, "authorization"),
        signed,
        status,
    });
    if first {
        (StatusCode::INTERNAL_SERVER_ERROR, "receiver down")
    } else {
        (StatusCode::OK, "ok")
    }
}

async fn otlp(
    State(far): State<Arc<Far>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> StatusCode {
    let mut headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    if let Some(token) = query.get("token") {
        headers.insert("?token".into(), token.clone());
    }
    let mut calls = far.otlp.lock().unwrap();
    let status = if calls.is_empty() { 500 } else { 200 };
    calls.push((headers, status));
    StatusCode::from_u16(status).unwrap()
}

async fn response_url() -> Json<Value> {
    Json(json!({"ok": true}))
}

async fn start_far(hook_secret: &str) -> (Arc<Far>, String) {
    let far = Arc::new(Far {
        hook_secret: hook_secret.to_string(),
        ..Far::default()
    });
    let app = Router::new()
        .route("/api/{method}", post(slack_api))
        .route("/hook/{name}", post(hook))
        .route("/v1/traces", post(otlp))
        .route("/actions/{id}", post(response_url))
        .with_state(far.clone());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (far, base)
}

// ---- the SMTP stand-in ---------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SmtpCase {
    /// Offers AUTH PLAIN LOGIN; answers AUTH with 535.
    Plain535,
    /// Offers AUTH LOGIN only; takes user and password, answers 535.
    Login535,
    /// Takes AUTH PLAIN's credentials, then resets the connection.
    ResetAfterAuth,
    /// Takes AUTH PLAIN's credentials, then never answers.
    HangAfterAuth,
    /// Resets the connection before greeting.
    Refuse,
}

#[derive(Default)]
struct Smtp {
    connections: AtomicUsize,
    cases: Vec<SmtpCase>,
    /// The credentials received: AUTH PLAIN's argument, AUTH LOGIN's lines.
    plain: Mutex<Vec<String>>,
    login: Mutex<Vec<String>>,
    seen: Mutex<Vec<SmtpCase>>,
    hung: Mutex<Vec<TcpStream>>,
}

async fn start_smtp(cases: Vec<SmtpCase>) -> (Arc<Smtp>, u16) {
    let smtp = Arc::new(Smtp {
        cases,
        ..Smtp::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = smtp.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let n = server.connections.fetch_add(1, Ordering::SeqCst);
            let case = *server.cases.get(n).unwrap_or(&SmtpCase::Plain535);
            server.seen.lock().unwrap().push(case);
            let server = server.clone();
            tokio::spawn(async move {
                let _ = smtp_session(&server, stream, case).await;
            });
        }
    });
    (smtp, port)
}

/// Closes with a RST (linger 0: the drop does not block).
#[allow(deprecated)]
fn reset(stream: TcpStream) {
    let _ = stream.set_linger(Some(Duration::ZERO));
    drop(stream);
}

async fn smtp_session(smtp: &Smtp, stream: TcpStream, case: SmtpCase) -> std::io::Result<()> {
    if case == SmtpCase::Refuse {
        reset(stream);
        return Ok(());
    }
    let mut stream = BufReader::new(stream);
    stream.write_all(b"220 smtp.test ESMTP\r\n").await?;
    let mut line = String::new();
    loop {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_string();
        let upper = command.to_ascii_uppercase();
        if upper.starts_with("EHLO") {
            let auth = if case == SmtpCase::Login535 {
                "AUTH LOGIN"
            } else {
                "AUTH PLAIN LOGIN"
            };
            stream
                .write_all(format!("250-smtp.test\r\n250-{auth}\r\n250 8BITMIME\r\n").as_bytes())
                .await?;
        } else if upper.starts_with("HELO") {
            stream.write_all(b"250 smtp.test\r\n").await?;
        } else if upper.starts_with("AUTH PLAIN") {
            let mut argument = command[10..].trim().to_string();
            if argument.is_empty() {
                stream.write_all(b"334 \r\n").await?;
                line.clear();
                stream.read_line(&mut line).await?;
                argument = line.trim_end().to_string();
            }
            smtp.plain.lock().unwrap().push(argument);
            match case {
                SmtpCase::ResetAfterAuth => {
                    reset(stream.into_inner());
                    return Ok(());
                }
                SmtpCase::HangAfterAuth => {
                    smtp.hung.lock().unwrap().push(stream.into_inner());
                    return Ok(());
                }
                _ => {
                    stream
                        .write_all(b"535 5.7.8 Authentication credentials invalid\r\n")
                        .await?
                }
            }
        } else if upper.starts_with("AUTH LOGIN") {
            for prompt in ["334 VXNlcm5hbWU6\r\n", "334 UGFzc3dvcmQ6\r\n"] {
                stream.write_all(prompt.as_bytes()).await?;
                line.clear();
                stream.read_line(&mut line).await?;
                smtp.login.lock().unwrap().push(line.trim_end().to_string());
            }
            stream
                .write_all(b"535 5.7.8 Authentication credentials invalid\r\n")
                .await?;
        } else if upper.starts_with("QUIT") {
            stream.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            stream.write_all(b"503 5.5.1 send AUTH first\r\n").await?;
        }
    }
}

// ---- one run ---------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The config file; the database password in the URL's user info.
    FileText,
    /// The config file; the password as `?password=`; JSON logs.
    FileJson,
    /// No file: the quick-start environment variables.
    QuickStart,
}

impl Mode {
    fn file(self) -> bool {
        self != Mode::QuickStart
    }
}

/// `postgres://user@host/db` with `password` in the user info or the query.
fn with_password(url: &str, password: &str, in_query: bool) -> String {
    if in_query {
        let sep = if url.contains('?') { '&' } else { '?' };
        return format!("{url}{sep}password={password}");
    }
    let (scheme, rest) = url.split_once("://").expect("a URL");
    match rest.split_once('@') {
        Some((user, host)) => format!(
            "{scheme}://{}:{password}@{host}",
            user.split(':').next().unwrap()
        ),
        None => format!("{scheme}://postgres:{password}@{rest}"),
    }
}

fn config_file(s: &Secrets, base: &str, smtp_port: u16) -> String {
    let hook_base = base.trim_start_matches("http://");
    format!(
        r##"
public_url = "http://lim.test"

[[users]]
name = "alice"
email = "alice@example.com"
slack_user_id = "U0ALICE"

[channels.slack]
bot_token = "{bot}"
default_channel = "#oncall"
api_url = "{base}/api/"
signing_secret = "{signing}"
timeout = "3s"

[channels.email]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
username = "{smtp_user}"
password = "{smtp_password}"
from = "lim <lim@example.com>"
to = ["oncall@example.com"]
timeout = "1s"

[[channels.webhooks]]
name = "ops"
url = "{base}/hook/ops?token={hook_token}"
secret = "{hook_secret}"
timeout = "3s"

[[channels.webhooks]]
name = "basic"
url = "http://{hook_user}:{hook_password}@{hook_base}/hook/basic"
timeout = "3s"

[escalation]
repeat = 0
[[escalation.steps]]
delay = "30m"
targets = ["console", "slack", "email", "ops", "basic", "user:alice"]

[[services]]
name = "llm"
integration_keys = ["{key_clear}", "{key_digest}"]

[[api_tokens]]
user = "alice"
token_sha256 = "{write}"
scopes = ["read", "write"]

[[api_tokens]]
user = "dashboard"
token_sha256 = "{read}"
scopes = ["read"]

[[heartbeats]]
name = "nightly"
service = "llm"
interval = "1h"
"##,
        bot = s.bot_token.text,
        signing = s.signing_secret.text,
        smtp_user = s.smtp_user,
        smtp_password = s.smtp_password.text,
        hook_token = s.hook_token.text,
        hook_secret = s.hook_secret.text,
        hook_user = s.hook_user,
        hook_password = s.hook_password.text,
        key_clear = s.key_clear.text,
        key_digest = SecretDigest::of(&s.key_digest.text).to_config_string(),
        write = SecretDigest::of(&s.write_token.text).to_config_string(),
        read = SecretDigest::of(&s.read_token.text).to_config_string(),
    )
}

/// What the run saw besides lim's output: API answers and CLI output.
#[derive(Default)]
struct Seen {
    texts: Vec<(String, String)>,
}

impl Seen {
    fn keep(&mut self, what: impl Into<String>, text: impl Into<String>) {
        self.texts.push((what.into(), text.into()));
    }
}

struct Run<'a> {
    mode: Mode,
    lim: &'a LimProcess,
    http: reqwest::Client,
    seen: Seen,
}

impl Run<'_> {
    async fn send(
        &mut self,
        method: reqwest::Method,
        path: &str,
        bearer: Option<&str>,
        body: Option<Value>,
    ) -> (u16, String) {
        let mut request = self.http.request(method.clone(), self.lim.url(path));
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        self.seen.keep(format!("{method} {path}"), text.clone());
        (status, text)
    }

    /// `want` when lim authenticates (file runs); the quick start is open.
    fn expect(&self, what: &str, status: u16, want: u16, body: &str) {
        if self.mode.file() {
            assert_eq!(status, want, "{what}: {body}");
        } else {
            assert!(status < 300, "{what} (open quick start): {status} {body}");
        }
    }

    async fn alert(&mut self, path: &str, key: Option<&str>, body: Value) -> (u16, String) {
        self.send(reqwest::Method::POST, path, key, Some(body))
            .await
    }

    async fn slack(&mut self, path: &str, body: &str, secret: &str) -> (u16, String) {
        let ts = now().to_string();
        let signature = slack_signature(secret, &ts, body);
        let response = self
            .http
            .post(self.lim.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-slack-request-timestamp", &ts)
            .header("x-slack-signature", signature)
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        self.seen.keep(format!("POST {path}"), text.clone());
        (status, text)
    }

    async fn cli(&mut self, args: &[&str], token: Option<&str>) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(binary());
        cmd.args(args)
            .env("LIM_SERVER", &self.lim.base)
            .env("RUST_LOG", "trace")
            .env("USER", "carol")
            .env_remove("LIM_TOKEN");
        if let Some(token) = token {
            cmd.env("LIM_TOKEN", token);
        }
        let out = cmd.output().await.expect("run the CLI");
        self.seen.keep(
            format!("lim {}", args.join(" ")),
            format!(
                "{}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        );
        out
    }
}

/// Slack's request signature, computed here as Slack does: `v0=` + hex
/// HMAC-SHA256 of `v0:{ts}:{body}`.
fn slack_signature(secret: &str, timestamp: &str, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("v0:{timestamp}:{body}").as_bytes());
    format!("v0={}", hex::encode(mac.finalize().into_bytes()))
}

fn click_body(base: &str, incident: u64) -> String {
    let payload = json!({
        "type": "block_actions",
        "user": {"id": "U0ALICE", "username": "alice"},
        "trigger_id": "1234.5678.abcd",
        "response_url": format!("{base}/actions/1"),
        "actions": [{"action_id": "lim_ack", "block_id": "lim_actions", "type": "button",
                     "value": format!("{{\"incident_id\":{incident}}}"),
                     "action_ts": format!("1700000100.{incident:06}")}],
    });
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("payload", &payload.to_string())
        .finish()
}

fn command_body(text: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("command", "/lim")
        .append_pair("user_id", "U0ALICE")
        .append_pair("text", text)
        .finish()
}

fn incident_id(answer: &str) -> u64 {
    let v: Value = serde_json::from_str(answer).unwrap_or(Value::Null);
    v["results"][0]["incident_id"]
        .as_u64()
        .or_else(|| v["incident_id"].as_u64())
        .unwrap_or_else(|| panic!("no incident id in {answer}"))
}

fn labels(name: &str) -> Value {
    json!({"alertname": name, "severity": "critical", "model": "gpt-4o"})
}

/// Waits until `f` holds, at most 60 s; panics with `what` and the state.
async fn until(what: &str, mut f: impl FnMut() -> Result<(), String>) {
    let mut last = String::new();
    for _ in 0..600 {
        match f() {
            Ok(()) => return,
            Err(why) => last = why,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}: {last}");
}

fn lines_with(output: &Output, all: &[&str]) -> usize {
    output
        .lock()
        .unwrap()
        .iter()
        .filter(|l| all.iter().all(|w| l.contains(w)))
        .count()
}

async fn run(mode: Mode) {
    let s = Secrets::new();
    let (far, base) = start_far(&s.hook_secret.text).await;
    let mut cases = vec![
        SmtpCase::Plain535,
        SmtpCase::Login535,
        SmtpCase::ResetAfterAuth,
        SmtpCase::HangAfterAuth,
        SmtpCase::Refuse,
    ];
    if mode == Mode::QuickStart {
        // The quick start has email's default 30 s timeout.
        cases.retain(|c| *c != SmtpCase::HangAfterAuth);
    }
    let (smtp, smtp_port) = start_smtp(cases.clone()).await;
    let dir = tempfile::tempdir().unwrap();
    let config_path: PathBuf = dir.path().join("lim.toml");
    std::fs::write(&config_path, config_file(&s, &base, smtp_port)).unwrap();
    let database_url = with_password(
        &support::fresh_postgres_url().await,
        &s.db_password.text,
        mode == Mode::FileJson,
    );
    // The exporter takes the signal's own endpoint as it is; lim looks at
    // (and logs) the general one.
    let otlp_endpoint = format!("{base}/?token={}", s.otlp_query.text);
    let otlp_traces_endpoint = format!("{base}/v1/traces?token={}", s.otlp_query.text);
    let otlp_headers = format!(
        "authorization=Bearer {},x-api-key={}",
        s.otlp_token.text, s.otlp_key.text
    );
    let smtp_url = format!(
        "smtp://{}:{}@127.0.0.1:{smtp_port}?from=lim@example.com&to=oncall@example.com",
        s.smtp_user,
        percent_encoding::utf8_percent_encode(
            &s.smtp_password.text,
            percent_encoding::NON_ALPHANUMERIC
        )
    );
    let slack_api = format!("{base}/api/");
    let hook_url = format!("{base}/hook/webhook?token={}", s.hook_token.text);
    let mut env: Vec<(&str, &str)> = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", &otlp_endpoint),
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &otlp_traces_endpoint),
        ("OTEL_EXPORTER_OTLP_HEADERS", &otlp_headers),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    match mode {
        Mode::FileText => env.push(("RUST_LOG", "trace")),
        Mode::FileJson => {
            env.push(("RUST_LOG", "debug"));
            env.push(("LIM_LOG_FORMAT", "json"));
        }
        Mode::QuickStart => env.extend([
            ("RUST_LOG", "trace"),
            ("LIM_SLACK_BOT_TOKEN", s.bot_token.text.as_str()),
            ("LIM_SLACK_CHANNEL", "#oncall"),
            ("LIM_SLACK_API_URL", slack_api.as_str()),
            ("LIM_SLACK_SIGNING_SECRET", s.signing_secret.text.as_str()),
            ("LIM_SMTP_URL", smtp_url.as_str()),
            ("LIM_WEBHOOK_URL", hook_url.as_str()),
            ("LIM_WEBHOOK_SECRET", s.hook_secret.text.as_str()),
        ]),
    }
    let output: Output = Arc::default();
    let lim = LimProcess::start_capturing(
        binary(),
        &database_url,
        mode.file().then_some(config_path.as_path()),
        &env,
        output.clone(),
    )
    .await;
    let mut r = Run {
        mode,
        lim: &lim,
        http: reqwest::Client::new(),
        seen: Seen::default(),
    };
    let (key, key2) = (s.key_clear.text.clone(), s.key_digest.text.clone());
    let (read, write) = (s.read_token.text.clone(), s.write_token.text.clone());

    // Ingest: refused without a valid key, then on every path with one.
    for bad in [None, Some(s.wrong_token.text.as_str()), Some(read.as_str())] {
        let (status, body) = r
            .alert("/v1/alerts", bad, json!({"labels": labels("Refused")}))
            .await;
        r.expect("ingest with a bad key", status, 401, &body);
    }
    let mut ids = Vec::new();
    let (status, body) = r
        .alert(
            "/v1/alerts",
            Some(&key),
            json!({"labels": labels("SecretsA")}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    ids.push(incident_id(&body));
    let (status, body) = r
        .alert(
            "/api/v2/alerts",
            Some(&key2),
            json!([{"labels": labels("SecretsB")}]),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let (status, body) = r
        .alert(
            "/v1/integrations/alertmanager",
            Some(&key),
            json!({"version": "4", "groupKey": "{}:{alertname=\"SecretsC\"}",
                   "status": "firing", "receiver": "lim", "groupLabels": {},
                   "commonLabels": {}, "commonAnnotations": {}, "externalURL": "",
                   "alerts": [{"status": "firing", "labels": labels("SecretsC"),
                               "annotations": {}, "startsAt": "2026-11-23T10:00:00Z"}]}),
        )
        .await;
    assert!(status < 300, "{status} {body}");
    let pagerduty = |routing_key: &str| {
        json!({"routing_key": routing_key, "event_action": "trigger", "dedup_key": "pd-1",
               "payload": {"summary": "GPU node down", "source": "gpu-7", "severity": "critical"}})
    };
    let (status, body) = r
        .alert("/v2/enqueue", None, pagerduty(&s.wrong_token.text))
        .await;
    r.expect("PagerDuty with a wrong routing_key", status, 401, &body);
    let (status, body) = r.alert("/v2/enqueue", None, pagerduty(&key2)).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = r
        .alert(
            "/v1/alerts",
            Some(&key2),
            json!({"labels": labels("SecretsE")}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    ids.push(incident_id(&body));
    if mode.file() {
        let (status, body) = r
            .send(
                reqwest::Method::POST,
                "/v1/heartbeats/nightly",
                Some(&key),
                None,
            )
            .await;
        assert!(status < 300, "heartbeat ping: {status} {body}");
    }

    // The operator API: no token, a wrong one, a key, read, write.
    for bad in [None, Some(s.wrong_token.text.as_str()), Some(key.as_str())] {
        let (status, body) = r
            .send(reqwest::Method::GET, "/v1/incidents", bad, None)
            .await;
        r.expect("the API with a bad token", status, 401, &body);
    }
    let (status, body) = r
        .send(reqwest::Method::GET, "/v1/incidents", Some(&read), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let listed: Value = serde_json::from_str(&body).unwrap();
    let all_ids: Vec<u64> = listed["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_u64())
        .collect();
    assert!(all_ids.len() >= 5, "{body}");
    let ack = format!("/v1/incidents/{}/acknowledge", ids[0]);
    let (status, body) = r
        .send(reqwest::Method::POST, &ack, Some(&read), Some(json!({})))
        .await;
    r.expect("a write with the read token", status, 403, &body);
    if mode.file() {
        let (status, body) = r
            .send(reqwest::Method::POST, &ack, Some(&write), Some(json!({})))
            .await;
        assert_eq!(status, 200, "{body}");
    }

    // Slack: a bad signature, then good ones.
    let click = click_body(&base, ids[1]);
    let (status, body) = r
        .slack("/v1/slack/interactions", &click, &s.wrong_token.text)
        .await;
    assert_eq!(status, 401, "a click signed with the wrong secret: {body}");
    let (status, body) = r
        .slack(
            "/v1/slack/commands",
            &command_body("list"),
            "not-the-secret",
        )
        .await;
    assert_eq!(
        status, 401,
        "a command signed with the wrong secret: {body}"
    );
    let (status, body) = r
        .slack("/v1/slack/interactions", &click, &s.signing_secret.text)
        .await;
    assert_eq!(status, 200, "a signed click: {body}");
    let third = all_ids.iter().copied().find(|i| !ids.contains(i)).unwrap();
    let (status, body) = r
        .slack(
            "/v1/slack/commands",
            &command_body(&format!("resolve {third}")),
            &s.signing_secret.text,
        )
        .await;
    assert_eq!(status, 200, "a signed /lim: {body}");

    // The CLI, which reads its token from LIM_TOKEN.
    let out = r.cli(&["incidents", "list"], Some(&read)).await;
    assert!(out.status.success(), "{out:?}");
    let out = r
        .cli(&["incidents", "list"], Some(&s.wrong_token.text))
        .await;
    assert_eq!(out.status.success(), !mode.file(), "{out:?}");
    let id = all_ids.iter().copied().find(|i| *i != ids[0]).unwrap();
    let out = r.cli(&["ack", &id.to_string()], Some(&write)).await;
    assert!(out.status.success(), "{out:?}");
    let out = r.cli(&["actors"], Some(&read)).await;
    assert!(out.status.success(), "{out:?}");
    let out = r.cli(&["incidents", "list", "--help"], Some(&write)).await;
    assert!(out.status.success(), "{out:?}");
    if mode.file() {
        let path = config_path.display().to_string();
        let out = r.cli(&["check-config", &path], None).await;
        assert!(out.status.success(), "{out:?}");
    }

    // Every channel fails first, is retried, and gets through (email is
    // given up: 535 is permanent).
    let hooks = if mode.file() {
        vec!["ops", "basic"]
    } else {
        vec!["webhook"]
    };
    // The stand-in answers the first OTLP export 500 on purpose; a second
    // export needs spans ended after it, and the cases above may all have
    // gone out in that first batch. Once it arrived, re-send an alert.
    until("the first OTLP export", || {
        if far.otlp.lock().unwrap().is_empty() {
            return Err("none yet".into());
        }
        Ok(())
    })
    .await;
    let (status, body) = r
        .alert(
            "/v1/alerts",
            Some(&key2),
            json!({"labels": labels("SecretsE")}),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    until("the far ends to see every case", || {
        let slack = far.slack.lock().unwrap().clone();
        if !slack
            .iter()
            .any(|c| c.2 == 200 && c.0 == "chat.postMessage")
            || !slack.iter().any(|c| c.2 == 200 && c.0 == "chat.update")
        {
            return Err(format!("Slack: {slack:?}"));
        }
        let got = far.hooks.lock().unwrap().clone();
        for name in &hooks {
            let codes: Vec<u16> = got
                .iter()
                .filter(|h| h.name == *name)
                .map(|h| h.status)
                .collect();
            if !(codes.contains(&500) && codes.contains(&200)) {
                return Err(format!("webhook {name}: {codes:?}"));
            }
        }
        let seen = smtp.seen.lock().unwrap();
        if cases.iter().any(|c| !seen.contains(c)) {
            return Err(format!("SMTP cases seen: {seen:?}"));
        }
        if smtp.login.lock().unwrap().len() < 2 {
            return Err("no AUTH LOGIN password yet".into());
        }
        let exports = far.otlp.lock().unwrap().len();
        if exports < 2 {
            return Err(format!("fewer than two OTLP exports: {exports}"));
        }
        Ok(())
    })
    .await;
    let mut channels = vec!["slack".to_string(), "email".to_string()];
    channels.extend(hooks.iter().map(|h| format!("webhook:{h}")));
    until("lim to log every channel's failures", || {
        for channel in &channels {
            if lines_with(&output, &["delivery failed; will retry", channel]) == 0 {
                return Err(format!("no retry logged for {channel}"));
            }
        }
        if lines_with(&output, &["delivery failed; giving up", "email", "535"]) == 0 {
            return Err("no email given up with 535".into());
        }
        if mode.file()
            && lines_with(&output, &["delivery failed", "email", "no answer within"]) == 0
        {
            return Err("no email attempt timed out".into());
        }
        Ok(())
    })
    .await;

    // What the API shows: the actor tree, metrics, incidents, timelines
    // (with their delivery errors), heartbeats.
    let (status, tree) = r
        .send(reqwest::Method::GET, "/v1/actors", Some(&read), None)
        .await;
    assert_eq!(status, 200, "{tree}");
    for id in &all_ids {
        for path in [
            format!("/v1/incidents/{id}"),
            format!("/v1/incidents/{id}/timeline"),
            format!("/v1/actors/incident-{id}"),
        ] {
            let (status, body) = r.send(reqwest::Method::GET, &path, Some(&read), None).await;
            assert!(
                status == 200 || path.contains("actors"),
                "{path}: {status} {body}"
            );
        }
    }
    let (status, metrics) = r
        .send(reqwest::Method::GET, "/metrics", Some(&read), None)
        .await;
    assert_eq!(status, 200, "{metrics}");
    let (status, _) = r
        .send(reqwest::Method::GET, "/v1/heartbeats", Some(&read), None)
        .await;
    assert_eq!(status, 200);
    let timelines: String = r
        .seen
        .texts
        .iter()
        .filter(|(what, _)| what.ends_with("/timeline"))
        .map(|(_, t)| t.as_str())
        .collect();
    assert!(
        timelines.contains("535") && timelines.contains("\"error\""),
        "the timelines show the delivery errors: {timelines}"
    );
    assert!(tree.contains("notifier_worker"), "{tree}");

    // Each secret was really in use: the far ends got them.
    let slack = far.slack.lock().unwrap().clone();
    assert!(slack
        .iter()
        .all(|c| c.1 == format!("Bearer {}", s.bot_token.text)));
    let got = far.hooks.lock().unwrap().clone();
    for h in got.iter() {
        match h.name.as_str() {
            "basic" => {
                let want = format!(
                    "Basic {}",
                    base64(
                        format!("{}:{}", s.hook_user, s.hook_password.text).as_bytes(),
                        STANDARD,
                        true
                    )
                );
                assert_eq!(
                    h.authorization.as_deref(),
                    Some(want.as_str()),
                    "basic auth sent"
                );
            }
            _ => {
                assert_eq!(h.token.as_deref(), Some(s.hook_token.text.as_str()));
                assert!(h.signed, "the webhook signature verifies with the secret");
            }
        }
    }
    let plain = smtp.plain.lock().unwrap().clone();
    let want = base64(
        format!("\0{}\0{}", s.smtp_user, s.smtp_password.text).as_bytes(),
        STANDARD,
        true,
    );
    assert!(
        !plain.is_empty() && plain.iter().all(|p| *p == want),
        "AUTH PLAIN carries the password: {plain:?}"
    );
    let login = smtp.login.lock().unwrap().clone();
    assert_eq!(
        login[1],
        base64(s.smtp_password.text.as_bytes(), STANDARD, true),
        "AUTH LOGIN sends the password"
    );
    let otlp = far.otlp.lock().unwrap().clone();
    assert!(
        otlp.iter().all(|(h, _)| h.get("authorization")
            == Some(&format!("Bearer {}", s.otlp_token.text))
            && h.get("x-api-key") == Some(&s.otlp_key.text)
            && h.get("?token") == Some(&s.otlp_query.text)),
        "the OTLP headers are sent: {:?}",
        otlp[0].0
    );
    // The forms looked for below are the ones on the wire.
    let caught = |text: &str, secret: &Secret| forms(&secret.text).iter().any(|f| text.contains(f));
    assert!(
        caught(&plain[0], &s.smtp_password),
        "AUTH PLAIN: {}",
        plain[0]
    );
    assert!(
        caught(&login[1], &s.smtp_password),
        "AUTH LOGIN: {}",
        login[1]
    );
    assert!(caught(&smtp_url, &s.smtp_password), "{smtp_url}");
    if mode.file() {
        let basic = got
            .iter()
            .find_map(|h| h.authorization.clone())
            .expect("a basic auth header");
        assert!(caught(&basic, &s.hook_password), "{basic}");
    }

    let Run { seen, .. } = r;
    lim.kill9().await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let lines = output.lock().unwrap().clone();

    // The output is not trivial.
    let count = |what: &str| lines.iter().filter(|l| l.contains(what)).count();
    eprintln!(
        "captured {} lines: {} delivery retries, {} given up, {} delivered, {} SMTP \
         connections ({:?})",
        lines.len(),
        count("delivery failed; will retry"),
        count("delivery failed; giving up"),
        count("delivered"),
        smtp.connections.load(Ordering::SeqCst),
        smtp.seen.lock().unwrap(),
    );
    assert!(lines.len() > 200, "only {} lines", lines.len());
    assert!(
        lines.iter().any(|l| l.contains("refused a Slack request")),
        "the bad signature is logged"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("exporting traces over OTLP/HTTP")),
        "the OTLP export is logged"
    );
    // Third-party libraries' debug and trace lines are there too.
    for target in ["reqwest", "sqlx", "slack_morphism"] {
        assert!(
            lines.iter().any(|l| l.contains(target)),
            "no {target} line in the output"
        );
    }
    if mode == Mode::FileJson {
        for line in lines.iter().filter(|l| !l.starts_with("lim listening on ")) {
            let v: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
            assert!(v["level"].is_string(), "{line}");
        }
    }

    // And no secret in any form, anywhere.
    let mut places: Vec<(String, String)> = vec![("lim's output".into(), lines.join("\n"))];
    places.extend(seen.texts);
    assert_no_leak(&s, &places);
}

/// Fails listing every line of `places` (what, text) that holds a form of
/// a secret.
fn assert_no_leak(s: &Secrets, places: &[(String, String)]) {
    let mut leaks = Vec::new();
    for (what, needle) in s.needles() {
        for (place, text) in places {
            let lines: Vec<&str> = text.lines().filter(|l| l.contains(&needle)).collect();
            for line in lines.iter().take(3) {
                leaks.push(format!("{what} as {needle:?} in {place}: {line}"));
            }
            if lines.len() > 3 {
                leaks.push(format!(
                    "{what} as {needle:?} in {place}: {} more lines",
                    lines.len() - 3
                ));
            }
        }
    }
    leaks.sort();
    leaks.dedup();
    assert!(
        leaks.is_empty(),
        "{} leaks:\n{}",
        leaks.len(),
        leaks.join("\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_trace_text_logs_or_the_api() {
    run(Mode::FileText).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_debug_json_logs_or_the_api() {
    run(Mode::FileJson).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_of_the_quick_start_environment_in_trace_logs() {
    run(Mode::QuickStart).await;
}

/// An OTLP endpoint with credentials in its user info is refused at start,
/// naming the variable and not the credentials: the exporter never sends
/// them (its HTTP client takes the URL as it is, without turning user info
/// into basic auth), and that client logs the URL (reqwest's `starting new
/// connection` at debug, hyper-util's connection pool at trace).
#[tokio::test]
async fn an_otlp_endpoint_with_credentials_is_refused_without_showing_them() {
    let s = Secrets::new();
    let (_db, url) = support::temp_sqlite_url();
    let with_credentials = format!(
        "http://{}:{}@127.0.0.1:9",
        s.otlp_user, s.otlp_password.text
    );
    for var in [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ] {
        let mut cmd = tokio::process::Command::new(binary());
        cmd.arg("serve")
            .env("LIM_LISTEN", "127.0.0.1:0")
            .env("LIM_DATABASE_URL", &url)
            .env("RUST_LOG", "trace")
            .env_remove("LIM_CONFIG")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
            .env(var, &with_credentials)
            .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(30), cmd.output())
            .await
            .unwrap_or_else(|_| panic!("lim did not refuse {var} with user info"))
            .unwrap();
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.status.success(), "{var}: {text}");
        assert!(
            text.contains(var) && text.contains("OTEL_EXPORTER_OTLP_HEADERS"),
            "the error names {var} and says where credentials go: {text}"
        );
        assert_no_leak(&s, &[(format!("lim's output ({var})"), text)]);
    }
}
