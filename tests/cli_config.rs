//! The real `lim` binary: `check-config` on temporary files, and `serve`
//! started on port 0 (address read from stdout), probed, and stopped with
//! SIGTERM.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};

const LIM: &str = env!("CARGO_BIN_EXE_lim");

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn check(path: &Path) -> Output {
    Command::new(LIM)
        .arg("check-config")
        .arg(path)
        .output()
        .expect("run lim check-config")
}

/// Runs `check-config` on `text`, expects failure and returns stderr.
fn check_fails(text: &str) -> (PathBuf, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "lim.toml", text);
    let out = check(&path);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        !out.status.success(),
        "expected failure for:\n{text}\nstderr: {stderr}"
    );
    (path, stderr, dir)
}

fn assert_error_at(text: &str, line: usize, needle: &str) {
    let (path, stderr, _dir) = check_fails(text);
    let prefix = format!("{}:{line}:", path.display());
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(needle)),
        "expected an error at line {line} mentioning {needle:?}, got:\n{stderr}"
    );
}

#[test]
fn valid_file_is_ok() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "lim.toml",
        r#"# lim configuration
listen = "127.0.0.1:9090"
database_url = "postgres://lim@localhost/lim"

[escalation]
repeat = 2
ack_timeout = "30m"

[[escalation.steps]]
delay = "5m"
targets = ["console"]

[[escalation.steps]]
delay = "15m"
targets = ["console"]
"#,
    );
    let out = check(&path);
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        format!("{}: ok\n", path.display())
    );

    let empty = write(dir.path(), "empty.toml", "");
    assert!(check(&empty).status.success());
}

/// `examples/lim.toml` uses every key lim reads; it must stay valid.
#[test]
fn the_example_config_is_valid() {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lim.toml");
    let out = check(&example);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every top-level table and array of tables the config knows appears.
    let text = std::fs::read_to_string(&example).unwrap();
    for key in [
        "listen",
        "database_url",
        "resolve_timeout",
        "public_url",
        "[auth]",
        "[limits]",
        "[[users]]",
        "[[teams]]",
        "[[schedules]]",
        "[[schedules.rotations]]",
        "[[schedules.overrides]]",
        "[channels.slack]",
        "[channels.email]",
        "[[channels.webhooks]]",
        "[escalation]",
        "[[escalation.steps]]",
        "[[escalation_policies]]",
        "[[services]]",
        "[[routes]]",
        "[[api_tokens]]",
        "[[heartbeats]]",
    ] {
        assert!(text.contains(key), "examples/lim.toml lacks {key}");
    }
}

#[test]
fn unknown_key_names_its_line() {
    assert_error_at(
        "listen = \"127.0.0.1:8080\"\n\nlisten_address = \"x\"\n",
        3,
        "listen_address",
    );
    assert_error_at(
        "[escalation]\nrepeat = 1\nretries = 3\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = [\"console\"]\n",
        3,
        "retries",
    );
    assert_error_at(
        "[escalation]\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = [\"console\"]\nwait = \"1m\"\n",
        5,
        "wait",
    );
}

#[test]
fn bad_values_name_their_lines() {
    assert_error_at(
        "[escalation]\n[[escalation.steps]]\ndelay = \"5 fortnights\"\ntargets = [\"console\"]\n",
        3,
        "duration",
    );
    assert_error_at(
        "[escalation]\nack_timeout = \"soon\"\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = [\"console\"]\n",
        2,
        "duration",
    );
    assert_error_at(
        "[escalation]\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = [\"console\"]\n\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = [\n  \"console\",\n  \"slack\",\n]\n",
        10,
        "unknown channel \"slack\"",
    );
    assert_error_at("# comment\nlisten = \"localhost\"\n", 2, "listen address");
    assert_error_at("database_url = \"mysql://root@db/lim\"\n", 1, "mysql");
    assert_error_at("listen = 8080\n", 1, "");
    assert_error_at(
        "listen = \"127.0.0.1:8080\"\nlisten = \"127.0.0.1:8081\"\n",
        2,
        "",
    );
}

#[test]
fn every_semantic_error_is_printed_with_line_and_column() {
    let (path, stderr, _dir) = check_fails(
        "listen = \"nowhere\"\ndatabase_url = \"redis://x\"\n[escalation]\n[[escalation.steps]]\ndelay = \"eventually\"\ntargets = [\"pager\"]\n",
    );
    let lines: Vec<_> = stderr.lines().collect();
    let p = path.display();
    assert_eq!(lines.len(), 4, "{stderr}");
    assert!(lines[0].starts_with(&format!("{p}:1:10: ")), "{stderr}");
    assert!(lines[1].starts_with(&format!("{p}:2:16: ")), "{stderr}");
    assert!(lines[2].starts_with(&format!("{p}:5:9: ")), "{stderr}");
    assert!(lines[3].starts_with(&format!("{p}:6:12: ")), "{stderr}");
}

#[test]
fn missing_file_fails() {
    let dir = tempfile::tempdir().unwrap();
    let out = check(&dir.path().join("absent.toml"));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("absent.toml"));
}

#[test]
fn serve_refuses_an_invalid_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "lim.toml", "listen = \"nowhere\"\n");
    let out = Command::new(LIM)
        .arg("serve")
        .env("LIM_CONFIG", &path)
        .env_remove("LIM_LISTEN")
        .env_remove("LIM_DATABASE_URL")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("{}:1:10:", path.display())),
        "{stderr}"
    );

    let out = Command::new(LIM)
        .arg("serve")
        .env_remove("LIM_CONFIG")
        .env("LIM_LISTEN", "127.0.0.1:0")
        .env("LIM_DATABASE_URL", "mysql://db/lim")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LIM_DATABASE_URL"));
}

#[test]
fn serve_refuses_a_non_loopback_address_without_consent() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/lim.db", dir.path().display());
    let out = Command::new(LIM)
        .arg("serve")
        .env_remove("LIM_CONFIG")
        .env("LIM_LISTEN", "0.0.0.0:0")
        .env("LIM_DATABASE_URL", &db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without authentication"),
        "{stderr}"
    );
    assert!(
        stderr.contains("allow_unauthenticated"),
        "says how to consent: {stderr}"
    );
    assert!(out.stdout.is_empty(), "nothing was bound");
}

/// `lim serve` on port 0: prints its address, answers the probes, becomes
/// ready on a SQLite store, serves the API, and exits 0 on SIGTERM.
#[tokio::test]
async fn serve_starts_and_stops_on_sigterm() {
    let (_dir, url) = support::temp_sqlite_url();
    let config_dir = tempfile::tempdir().unwrap();
    // The file's listen address is overridden by LIM_LISTEN (env wins).
    let config = write(
        config_dir.path(),
        "lim.toml",
        "listen = \"127.0.0.1:1\"\n[escalation]\n[[escalation.steps]]\ndelay = \"1m\"\ntargets = [\"console\"]\n",
    );
    let mut child = tokio::process::Command::new(LIM)
        .arg("serve")
        .env("LIM_LISTEN", "127.0.0.1:0")
        .env("LIM_DATABASE_URL", &url)
        .env("LIM_CONFIG", &config)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("lim prints its address")
        .unwrap()
        .expect("a line");
    let base = line
        .strip_prefix("lim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    assert!(
        base.starts_with("http://127.0.0.1:") && !base.ends_with(":0"),
        "{base}"
    );

    let client = reqwest::Client::new();
    let health = client.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let mut ready = false;
    for _ in 0..300 {
        let r = client.get(format!("{base}/readyz")).send().await.unwrap();
        if r.status() == 200 {
            ready = true;
            break;
        }
        assert_eq!(r.status(), 503);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "lim did not become ready");

    let r = client
        .post(format!("{base}/v1/alerts"))
        .json(&serde_json::json!({"labels": {"alertname": "Smoke"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(30), child.wait())
        .await
        .expect("lim exits after SIGTERM")
        .unwrap();
    assert!(status.success(), "exit status {status:?}");
}
