//! The CLI against a live server: `lim incidents`, `ack`, `snooze`, `note`,
//! `escalate`, `resolve` run as the real binary against a real `lim serve`,
//! tables for people, `--json` for scripts, one-line errors.

mod lim_process;
mod support;

use std::path::Path;
use std::process::Output;

use lim_process::LimProcess;
use serde_json::{json, Value};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

async fn lim(server: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(binary())
        .args(args)
        .env("LIM_SERVER", server)
        .env("USER", "carol")
        .env_remove("LIM_TOKEN")
        .output()
        .await
        .expect("run lim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[tokio::test]
async fn unreachable_server_keeps_the_password_of_its_url() {
    let o = lim("http://ops:hunter2@127.0.0.1:9", &["incidents", "list"]).await;
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(!err.contains("hunter2"), "{err}");
    assert!(
        err.starts_with("lim: cannot reach the lim server at http://ops:***@127.0.0.1:9"),
        "{err}"
    );
}

#[tokio::test]
async fn help_does_not_show_the_server_url() {
    let o = lim(
        "http://ops:hunter2@127.0.0.1:9",
        &["incidents", "list", "--help"],
    )
    .await;
    assert!(o.status.success(), "{}", stderr(&o));
    let help = stdout(&o);
    assert!(help.contains("LIM_SERVER"), "{help}");
    assert!(!help.contains("hunter2"), "{help}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_drives_a_live_server() {
    let (_dir, url) = support::temp_sqlite_url();
    let server = LimProcess::start(binary(), &url, None).await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    http.post(server.url("/v1/alerts"))
        .json(&json!({"labels": {"alertname": "HighLatency", "service": "chat", "model": "gpt-4o", "severity": "critical"},
                      "annotations": {"summary": "p99 latency 4.2s"}}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let list = lim(&base, &["incidents", "list"]).await;
    assert!(list.status.success(), "{}", stderr(&list));
    let out = stdout(&list);
    assert!(out.starts_with("ID  STATUS"), "{out}");
    assert!(
        out.contains("triggered") && out.contains("p99 latency 4.2s"),
        "{out}"
    );

    let ack = lim(&base, &["ack", "1"]).await;
    assert!(ack.status.success(), "{}", stderr(&ack));
    assert_eq!(stdout(&ack), "incident 1 is acknowledged\n");
    let snooze = lim(&base, &["snooze", "1", "30m", "--by", "bob"]).await;
    assert!(snooze.status.success(), "{}", stderr(&snooze));
    let note = lim(&base, &["note", "1", "rolled back the deploy"]).await;
    assert!(note.status.success(), "{}", stderr(&note));
    let escalate = lim(&base, &["escalate", "1"]).await;
    assert_eq!(stdout(&escalate), "incident 1 is triggered\n");

    let show = lim(&base, &["incidents", "show", "1", "--json"]).await;
    let v: Value = serde_json::from_slice(&show.stdout).expect("--json prints JSON");
    let timeline: Vec<(String, String, String)> = v["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["via"].is_string())
        .map(|e| {
            (
                e["type"].as_str().unwrap().to_string(),
                e["by"].as_str().unwrap().to_string(),
                e["via"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let expected = [
        ("acknowledged", "cli:carol", "cli"),
        ("snoozed", "bob", "cli"),
        ("note_added", "cli:carol", "cli"),
        ("escalated", "cli:carol", "cli"),
    ]
    .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()));
    assert_eq!(
        timeline, expected,
        "every action is attributed to who and through the CLI"
    );

    let table = stdout(&lim(&base, &["incidents", "show", "1"]).await);
    assert!(
        table.contains("note_added by cli:carol via cli: rolled back the deploy"),
        "{table}"
    );

    let resolve = lim(&base, &["resolve", "1"]).await;
    assert!(resolve.status.success());
    let again = lim(&base, &["ack", "1"]).await;
    assert!(!again.status.success());
    assert_eq!(
        stderr(&again).trim(),
        "lim: incident 1 is already resolved (409 Conflict)"
    );
    let missing = lim(&base, &["incidents", "show", "99"]).await;
    assert!(!missing.status.success());
    assert_eq!(stderr(&missing).lines().count(), 1);
    assert!(stderr(&missing).contains("not found"));
    server.kill9().await;
}

#[tokio::test]
async fn unreachable_server_is_one_clear_line() {
    let o = lim("http://127.0.0.1:9", &["incidents", "list"]).await;
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("lim: cannot reach the lim server at http://127.0.0.1:9"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silences_from_the_cli_keep_alerts_quiet() {
    let (_dir, url) = support::temp_sqlite_url();
    let server = LimProcess::start(binary(), &url, None).await;
    let base = server.base.clone();
    let add = lim(
        &base,
        &[
            "silence",
            "add",
            "alertname=Noisy",
            "model=~gpt.*",
            "--for",
            "2h",
            "--comment",
            "gateway deploy",
        ],
    )
    .await;
    assert!(add.status.success(), "{}", stderr(&add));
    assert!(
        stdout(&add).starts_with("silence 1 is active until "),
        "{}",
        stdout(&add)
    );

    let http = reqwest::Client::new();
    let post = |name: &'static str| {
        let http = http.clone();
        let url = server.url("/v1/alerts");
        async move {
            let v: Value = http
                .post(url)
                .json(&json!({"labels": {"alertname": name, "model": "gpt-4o"}}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["results"][0]["action"].as_str().unwrap().to_string()
        }
    };
    assert_eq!(post("Noisy").await, "silenced");
    assert_eq!(post("Other").await, "created");

    let list = stdout(&lim(&base, &["silence", "list"]).await);
    assert!(
        list.contains("alertname=Noisy model=~gpt.*") && list.contains("gateway deploy"),
        "{list}"
    );
    let bad = lim(
        &base,
        &[
            "silence",
            "add",
            "x=~.*",
            "--for",
            "1h",
            "--comment",
            "oops",
        ],
    )
    .await;
    assert!(!bad.status.success());
    assert!(
        stderr(&bad).contains("silence everything"),
        "{}",
        stderr(&bad)
    );

    let expire = lim(&base, &["silence", "expire", "1"]).await;
    assert!(
        stdout(&expire).starts_with("silence 1 is expired"),
        "{}",
        stdout(&expire)
    );
    assert_eq!(
        post("Noisy").await,
        "created",
        "fires again once the silence ended"
    );
    let incidents: Value = http
        .get(server.url("/v1/incidents"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        incidents["incidents"].as_array().unwrap().len(),
        2,
        "the silenced alert opened none"
    );
    server.kill9().await;
}

/// `lim token new` makes the config lines; a server using them refuses the
/// CLI without the token (one clear line) and attributes actions to its user.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_lim_token_new_guard_the_cli() {
    let made = lim("http://unused", &["token", "new", "--user", "dana"]).await;
    assert!(made.status.success(), "{}", stderr(&made));
    let out = stdout(&made);
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("the secret is printed")
        .to_string();
    let token_lines: String = out
        .lines()
        .skip_while(|l| *l != "[[api_tokens]]")
        .take(4)
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        !token_lines.contains(&secret),
        "only the digest goes in the file"
    );
    let key = "cli-test-integration-key-0001";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lim.toml");
    std::fs::write(
        &config,
        format!(
            "{token_lines}\n[[services]]\nname = \"gateway\"\nintegration_keys = [\"{key}\"]\n"
        ),
    )
    .unwrap();
    let checked = lim("http://unused", &["check-config", config.to_str().unwrap()]).await;
    assert!(checked.status.success(), "{}", stderr(&checked));

    let (_db, url) = support::temp_sqlite_url();
    let server = LimProcess::start(binary(), &url, Some(&config)).await;
    let base = server.base.clone();
    let http = reqwest::Client::new();
    let posted: Value = http
        .post(server.url("/v1/alerts"))
        .bearer_auth(key)
        .json(&json!({"labels": {"alertname": "Down"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = posted["results"][0]["incident_id"]
        .as_u64()
        .unwrap()
        .to_string();

    let refused = lim(&base, &["incidents", "list"]).await;
    assert!(!refused.status.success());
    let err = stderr(&refused);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("API token is required"), "{err}");
    let wrong = lim(&base, &["ack", &id, "--token", "lim_wrong"]).await;
    assert!(stderr(&wrong).contains("not valid"), "{}", stderr(&wrong));

    let ack = lim(&base, &["ack", &id, "--token", &secret, "--json"]).await;
    assert!(ack.status.success(), "{}", stderr(&ack));
    let v: Value = serde_json::from_str(&stdout(&ack)).unwrap();
    assert_eq!(v["acknowledged_by"], "dana", "the token's user, not $USER");
}
