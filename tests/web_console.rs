//! The web console (`GET /`, `src/http/console.rs`) in a real browser:
//! Debian's headless Chromium driven through its chromedriver (WebDriver,
//! with the `fantoccini` client), against the real `lim` binary on SQLite.
//!
//! * `clicking_acknowledge_changes_the_row_and_the_actor_tree`: the list
//!   filters by label; a click on Acknowledge makes the row acknowledged and
//!   the incident's node in the live actor tree acknowledged without its
//!   escalation timer; the API shows the acknowledge came `via` web; the
//!   incident page shows it on the timeline; Resolve there removes the node
//!   from the tree; countdowns tick; tree nodes collapse and expand.
//! * `with_api_tokens_the_page_asks_for_one_and_acts_as_its_user`: a 401
//!   shows the token box; with the token the list loads and Snooze 30m acts
//!   as the token's user; a wrong token brings the box back.
//!
//! Screenshots of each step are kept in
//! `target/test-artifacts/web_console/` (`$CARGO_TARGET_DIR` if set).
//! Without `/usr/bin/chromium` and `/usr/bin/chromedriver` these tests fail
//! and say what to install (`.ci/run` installs them); they never skip.
//!
//! Every wait polls the DOM with a bounded timeout; a timeout saves a
//! `failed-*.png` screenshot and prints the page's text.

mod lim_process;
mod support;

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use lim_process::LimProcess;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long any one thing may take to show up in the page.
const WAIT: Duration = Duration::from_secs(20);

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

/// Where the screenshots go.
fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("test-artifacts").join("web_console");
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver, its browser session, and the browser's fresh profile.
struct Browser {
    client: Client,
    _driver: Child,
    _profile: tempfile::TempDir,
}

async fn start_browser() -> Browser {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the web console tests drive a real headless Chromium. \
             Install Debian's `chromium` and `chromium-driver` packages \
             (apt-get install -y chromium chromium-driver; .ci/run installs them). \
             Missing: {package}"
        );
    }
    let port = free_port();
    let driver = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start chromedriver");
    let url = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let started = Instant::now();
    loop {
        if let Ok(r) = http.get(format!("{url}/status")).send().await {
            if r.status().is_success() {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "chromedriver did not answer on {url} within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let profile = tempfile::tempdir().unwrap();
    let capabilities = json!({
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": CHROMIUM,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1400,900",
                format!("--user-data-dir={}", profile.path().display()),
            ],
        },
    });
    let Value::Object(capabilities) = capabilities else {
        unreachable!()
    };
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&url)
        .await
        .expect("a Chromium session through chromedriver");
    Browser {
        client,
        _driver: driver,
        _profile: profile,
    }
}

/// Runs `test` with a browser, and always ends the browser session (so no
/// Chromium outlives the test), then passes the test's panic on.
async fn with_browser<F, Fut>(test: F)
where
    F: FnOnce(Client) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let browser = start_browser().await;
    let outcome = tokio::spawn(test(browser.client.clone())).await;
    let _ = browser.client.clone().close().await;
    drop(browser);
    if let Err(e) = outcome {
        match e.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            Err(e) => panic!("the test task failed: {e}"),
        }
    }
}

async fn screenshot(client: &Client, name: &str) -> PathBuf {
    let png = client.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = artifacts_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).unwrap();
    path
}

fn truthy(v: &Value) -> bool {
    !matches!(v, Value::Null | Value::Bool(false))
        && v.as_str() != Some("")
        && v.as_i64() != Some(0)
}

/// Polls `script` (a JS function body that `return`s) until it returns
/// something truthy, which is returned; on timeout saves a screenshot and
/// fails with the page's text.
async fn wait_for(client: &Client, what: &str, script: &str) -> Value {
    let started = Instant::now();
    loop {
        let last = match client.execute(script, vec![]).await {
            Ok(v) if truthy(&v) => return v,
            Ok(v) => v,
            Err(e) => Value::String(format!("script error: {e}")),
        };
        if started.elapsed() > WAIT {
            let slug: String = what
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
            let shot = screenshot(client, &format!("failed-{slug}")).await;
            let text = client
                .execute("return document.body.innerText", vec![])
                .await
                .unwrap_or_default();
            panic!(
                "timed out after {WAIT:?} waiting for {what} (last: {last}); screenshot {}; \
                 page text:\n{}",
                shot.display(),
                text.as_str().unwrap_or_default()
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Clicks the element `css` names. The page re-renders live views (the
/// tree every 2 s), so an element found may be replaced before the click
/// lands: a stale element is looked up again, for up to 5 s.
async fn click(client: &Client, css: &str) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let element = client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        match element.click().await {
            Ok(()) => return,
            Err(e) if e.to_string().contains("stale") && std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("click {css}: {e}"),
        }
    }
}

async fn text_of(client: &Client, what: &str, css: &str) -> String {
    let script = format!(
        "const e = document.querySelector({}); return e ? e.textContent : null;",
        json!(css)
    );
    wait_for(client, what, &script)
        .await
        .as_str()
        .unwrap()
        .to_string()
}

/// Waits until the text of `css` is no longer `before`: a countdown ticks.
async fn wait_ticking(client: &Client, what: &str, css: &str) {
    let before = text_of(client, what, css).await;
    let script = format!(
        "const e = document.querySelector({}); return !!e && e.textContent !== {};",
        json!(css),
        json!(before)
    );
    wait_for(client, &format!("{what} to tick from {before:?}"), &script).await;
}

async fn post_alert(http: &reqwest::Client, lim: &LimProcess, alert: Value) -> u64 {
    let answer: Value = http
        .post(lim.url("/v1/alerts"))
        .json(&alert)
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["results"][0]["incident_id"]
        .as_u64()
        .unwrap_or_else(|| panic!("an incident: {answer}"))
}

fn row(id: u64) -> String {
    format!("#incident-rows tr[data-incident-id=\"{id}\"]")
}

fn node(id: u64) -> String {
    format!("#tree li[data-kind=\"incident\"][data-incident-id=\"{id}\"]")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clicking_acknowledge_changes_the_row_and_the_actor_tree() {
    let (_db, url) = support::temp_sqlite_url();
    let lim = LimProcess::start(binary(), &url, None).await;
    let http = reqwest::Client::new();
    let chat = post_alert(
        &http,
        &lim,
        json!({"labels": {"alertname": "HighLatency", "service": "chat", "model": "gpt-4o",
                          "provider": "openai", "severity": "critical"},
               "annotations": {"summary": "p99 latency of gpt-4o is 4.2s"}}),
    )
    .await;
    let gateway = post_alert(
        &http,
        &lim,
        json!({"labels": {"alertname": "ErrorRate", "service": "gateway", "model": "claude",
                          "provider": "anthropic", "severity": "warning"},
               "annotations": {"summary": "5xx rate 7% on claude"}}),
    )
    .await;
    let base = lim.base.clone();

    with_browser(move |c| async move {
        c.goto(&format!("{base}/")).await.unwrap();
        // The list: both open incidents, triggered, with live countdowns.
        for id in [chat, gateway] {
            wait_for(
                &c,
                &format!("INC-{id} listed as triggered"),
                &format!(
                    "const r = document.querySelector({}); return !!r && r.dataset.status === 'triggered';",
                    json!(row(id))
                ),
            )
            .await;
        }
        let title = text_of(&c, "the chat row's title", &format!("{} td.title", row(chat))).await;
        assert_eq!(title, "p99 latency of gpt-4o is 4.2s");
        wait_ticking(
            &c,
            "the chat row's escalation countdown",
            &format!("{} [data-timer-kind=\"escalation\"]", row(chat)),
        )
        .await;
        screenshot(&c, "01-list-before").await;

        // Filter by label: only the matching incident is left.
        let labels = c.find(Locator::Css("#filters input[name=\"labels\"]")).await.unwrap();
        labels.send_keys("model=claude").await.unwrap();
        click(&c, "#filters button[type=\"submit\"]").await;
        wait_for(
            &c,
            "the label filter to leave only the gateway incident",
            &format!(
                "const ids = [...document.querySelectorAll('#incident-rows tr')].map(r => r.dataset.incidentId); \
                 return location.hash.includes('label=model%3Dclaude') && ids.length === 1 && ids[0] === '{gateway}';"
            ),
        )
        .await;
        click(&c, "#filters a.quiet-link").await; // Reset
        wait_for(
            &c,
            "both incidents listed again",
            "return document.querySelectorAll('#incident-rows tr').length === 2;",
        )
        .await;

        // The actor tree before: the chat incident's actor is triggered,
        // with its escalation timer counting down.
        click(&c, "a[data-nav=\"actors\"]").await;
        wait_for(
            &c,
            "the chat incident's node, triggered, with an escalation timer",
            &format!(
                "const n = document.querySelector({}); \
                 return !!n && n.dataset.incidentStatus === 'triggered' && n.dataset.status === 'running' \
                 && !!n.querySelector('.timer[data-timer-kind=\"escalation\"]');",
                json!(node(chat))
            ),
        )
        .await;
        wait_ticking(
            &c,
            "the tree's escalation countdown",
            &format!("{} .timer[data-timer-kind=\"escalation\"] .countdown", node(chat)),
        )
        .await;
        for kind in ["supervisor", "router", "persistence", "notifier_pool"] {
            wait_for(
                &c,
                &format!("a {kind} node"),
                &format!("return !!document.querySelector('#tree li[data-kind=\"{kind}\"]');"),
            )
            .await;
        }
        screenshot(&c, "02-tree-before").await;

        // Collapse the router: its incidents are hidden; expand: back.
        let router_toggle = "#tree li[data-kind=\"router\"] > .node-row > button.toggle";
        click(&c, router_toggle).await;
        wait_for(
            &c,
            "the router collapsed",
            &format!(
                "const r = document.querySelector('#tree li[data-kind=\"router\"]'); \
                 return r.classList.contains('collapsed') && !document.querySelector({});",
                json!(node(chat))
            ),
        )
        .await;
        // Still collapsed after a few polls (the state survives redraws).
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let still: Value = c
            .execute(&format!("return !document.querySelector({});", json!(node(chat))), vec![])
            .await
            .unwrap();
        assert_eq!(still, json!(true), "the router stays collapsed across polls");
        click(&c, router_toggle).await;
        wait_for(
            &c,
            "the router expanded",
            &format!("return !!document.querySelector({});", json!(node(chat))),
        )
        .await;

        // Acknowledge with a click in the list.
        click(&c, "a[data-nav=\"incidents\"]").await;
        let ack = format!("{} button[data-action=\"acknowledge\"]", row(chat));
        wait_for(
            &c,
            "an enabled Acknowledge button",
            &format!("const b = document.querySelector({}); return !!b && !b.disabled;", json!(ack)),
        )
        .await;
        click(&c, &ack).await;
        wait_for(
            &c,
            "the chat row acknowledged",
            &format!(
                "const r = document.querySelector({}); \
                 return !!r && r.dataset.status === 'acknowledged' \
                 && r.querySelector('.badge').textContent === 'acknowledged' \
                 && r.querySelector('button[data-action=\"acknowledge\"]').disabled;",
                json!(row(chat))
            ),
        )
        .await;
        let gateway_status: Value = c
            .execute(
                &format!("return document.querySelector({}).dataset.status;", json!(row(gateway))),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(gateway_status, json!("triggered"), "only the clicked incident changed");
        screenshot(&c, "03-list-after-ack").await;

        // The tree after: acknowledged, its escalation timer gone.
        click(&c, "a[data-nav=\"actors\"]").await;
        wait_for(
            &c,
            "the chat incident's node acknowledged without an escalation timer",
            &format!(
                "const n = document.querySelector({}); \
                 return !!n && n.dataset.incidentStatus === 'acknowledged' \
                 && !n.querySelector('.timer[data-timer-kind=\"escalation\"]');",
                json!(node(chat))
            ),
        )
        .await;
        wait_for(
            &c,
            "the gateway incident still triggered in the tree",
            &format!(
                "const n = document.querySelector({}); return !!n && n.dataset.incidentStatus === 'triggered';",
                json!(node(gateway))
            ),
        )
        .await;
        screenshot(&c, "04-tree-after-ack").await;

        // The incident page, reached from the tree: the acknowledge is on
        // the timeline, via web.
        click(&c, &format!("{} a[href=\"#/incidents/{chat}\"]", node(chat))).await;
        wait_for(
            &c,
            "the acknowledge on the incident's timeline, via web",
            "return !!document.querySelector('#timeline tr[data-type=\"acknowledged\"][data-via=\"web\"]') \
             && document.querySelector('.inc-title').dataset.status === 'acknowledged';",
        )
        .await;
        let heading = text_of(&c, "the incident's heading", ".inc-title h1").await;
        assert_eq!(heading, "p99 latency of gpt-4o is 4.2s");
        screenshot(&c, "05-incident").await;

        // Resolve from the incident page: its actor leaves the tree.
        click(&c, "#incident-head button[data-action=\"resolve\"]").await;
        wait_for(
            &c,
            "the incident page showing resolved",
            "const t = document.querySelector('.inc-title'); return !!t && t.dataset.status === 'resolved' \
             && !!document.querySelector('#timeline tr[data-type=\"resolved\"][data-via=\"web\"]');",
        )
        .await;
        screenshot(&c, "06-incident-resolved").await;
        click(&c, "a[data-nav=\"actors\"]").await;
        wait_for(
            &c,
            "the resolved incident's node gone, the other still there",
            &format!(
                "return !document.querySelector({}) && !!document.querySelector({});",
                json!(node(chat)),
                json!(node(gateway))
            ),
        )
        .await;
        screenshot(&c, "07-tree-after-resolve").await;
    })
    .await;

    // The API agrees, and says the changes came through the web console.
    let incident: Value = http
        .get(lim.url(&format!("/v1/incidents/{chat}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(incident["status"], "resolved", "{incident}");
    let events: Vec<&Value> = incident["timeline"].as_array().unwrap().iter().collect();
    for kind in ["acknowledged", "resolved"] {
        let event = events
            .iter()
            .find(|e| e["type"] == kind)
            .unwrap_or_else(|| panic!("a {kind} event: {incident}"));
        assert_eq!(event["via"], "web", "{event}");
        assert_eq!(event["by"], "web", "no tokens: the console names itself");
    }
    assert_eq!(incident["acknowledged_by"], "web", "{incident}");
    let other: Value = http
        .get(lim.url(&format!("/v1/incidents/{gateway}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(other["status"], "triggered", "{other}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_api_tokens_the_page_asks_for_one_and_acts_as_its_user() {
    let secret = "lim-web-console-test-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lim.toml");
    std::fs::write(
        &config,
        format!(
            "[[api_tokens]]\nuser = \"alice\"\ntoken_sha256 = \"{}\"\nscopes = [\"read\", \"write\"]\n",
            lim::auth::SecretDigest::of(secret).to_config_string()
        ),
    )
    .unwrap();
    let (_db, url) = support::temp_sqlite_url();
    let lim = LimProcess::start(binary(), &url, Some(&config)).await;
    let http = reqwest::Client::new();
    let id = post_alert(
        &http,
        &lim,
        json!({"labels": {"alertname": "TokenUsage", "service": "billing", "tenant": "acme",
                          "metric": "token_usage", "severity": "warning"},
               "annotations": {"summary": "acme used 3x its daily tokens"}}),
    )
    .await;
    let unauthorized = http.get(lim.url("/v1/incidents")).send().await.unwrap();
    assert_eq!(unauthorized.status(), 401, "the API needs the token");
    let base = lim.base.clone();

    with_browser(move |c| async move {
        // The page loads without a token (it holds no data); its first API
        // call is refused, so it asks for one and lists nothing.
        c.goto(&format!("{base}/")).await.unwrap();
        wait_for(
            &c,
            "the token box after a 401",
            "const f = document.querySelector('#token-form'); \
             return !f.hidden && document.querySelector('#token-msg').textContent.includes('401');",
        )
        .await;
        let rows: Value = c
            .execute("return document.querySelectorAll('#incident-rows tr').length;", vec![])
            .await
            .unwrap();
        assert_eq!(rows, json!(0));
        screenshot(&c, "10-token-box").await;

        // A wrong token is refused and the box says so.
        c.find(Locator::Css("#token-input")).await.unwrap().send_keys("not-the-token").await.unwrap();
        click(&c, "#token-save").await;
        wait_for(
            &c,
            "the token box saying the token was refused",
            "const f = document.querySelector('#token-form'); \
             return !f.hidden && document.querySelector('#token-msg').textContent.includes('refused');",
        )
        .await;

        // The right token: the box goes, the incident is listed.
        c.find(Locator::Css("#token-input")).await.unwrap().send_keys(secret).await.unwrap();
        click(&c, "#token-save").await;
        wait_for(
            &c,
            "the incident listed with the token",
            &format!(
                "return document.querySelector('#token-form').hidden && \
                 !!document.querySelector({}) && sessionStorage.getItem('lim.token') === {};",
                json!(row(id)),
                json!(secret)
            ),
        )
        .await;

        // Snooze 30m acts, as the token's user.
        click(&c, &format!("{} button[data-action=\"snooze-30m\"]", row(id))).await;
        wait_for(
            &c,
            "the row snoozed (acknowledged, re-triggering later)",
            &format!(
                "const r = document.querySelector({}); return !!r && r.dataset.status === 'acknowledged' \
                 && !!r.querySelector('[data-timer-kind=\"ack_expiry\"]');",
                json!(row(id))
            ),
        )
        .await;
        screenshot(&c, "11-with-token-snoozed").await;

        // The tree loads with the token too; the snooze is an ack expiry timer.
        click(&c, "a[data-nav=\"actors\"]").await;
        wait_for(
            &c,
            "the snoozed incident's node with its ack expiry timer",
            &format!(
                "const n = document.querySelector({}); return !!n && n.dataset.incidentStatus === 'acknowledged' \
                 && !!n.querySelector('.timer[data-timer-kind=\"ack_expiry\"]') \
                 && !n.querySelector('.timer[data-timer-kind=\"escalation\"]');",
                json!(node(id))
            ),
        )
        .await;
        screenshot(&c, "12-tree-with-token").await;
    })
    .await;

    let incident: Value = http
        .get(lim.url(&format!("/v1/incidents/{id}")))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(incident["status"], "acknowledged", "{incident}");
    assert_eq!(incident["acknowledged_by"], "alice", "{incident}");
    let until = chrono::DateTime::parse_from_rfc3339(incident["ack_expires_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono::Utc);
    let left = until - chrono::Utc::now();
    assert!(
        left > chrono::Duration::minutes(28) && left <= chrono::Duration::minutes(30),
        "snoozed for 30 minutes: {left}"
    );
    let snoozed = incident["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "snoozed")
        .unwrap_or_else(|| panic!("a snoozed event: {incident}"));
    assert_eq!(snoozed["by"], "alice");
    assert_eq!(snoozed["via"], "web");
}
