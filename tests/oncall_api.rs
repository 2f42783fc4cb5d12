//! Who is on call, through the API (`GET /v1/oncall`) and the CLI
//! (`lim oncall`), for schedules read from a config file: a weekly rotation
//! in Europe/Berlin with an override, asked about fixed instants (`at=`), so
//! the answers do not depend on today's date.

mod lim_process;
mod support;

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use incident_actors::console::ConsoleChannel;
use incident_actors::memory_store::MemoryStore;
use incident_actors::time::SystemClock;
use incident_actors::{spawn_system, SystemDeps};
use lim::config::{parse_file, resolve, Overrides};
use lim::http::{app, AppState};
use lim_process::LimProcess;
use serde_json::Value;
use tower::ServiceExt;

const CONFIG: &str = r#"
[[users]]
name = "alice"
email = "alice@example.com"

[[users]]
name = "bob"
slack_user_id = "U0BOB"

[[users]]
name = "carol"

[[schedules]]
name = "primary"
time_zone = "Europe/Berlin"
[[schedules.rotations]]
participants = ["alice", "bob"]
shift = "1w"
handoff = "09:00"
start = "2026-11-02"
[[schedules.overrides]]
user = "carol"
start = "2026-11-20T12:00:00+01:00"
end = "2026-11-21T12:00:00+01:00"

[[schedules]]
name = "later"
time_zone = "UTC"
[[schedules.rotations]]
participants = ["bob"]
shift = "1d"
handoff = "00:00"
start = "2030-01-01"
"#;

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    let response = app(state.clone())
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

#[tokio::test]
async fn the_api_answers_per_schedule_with_until_and_source() {
    let config = resolve(parse_file(CONFIG).unwrap(), &Overrides::default()).unwrap();
    let system = spawn_system(
        config.system_config(),
        SystemDeps {
            store: Arc::new(MemoryStore::default()),
            clock: Arc::new(SystemClock),
            channels: vec![Arc::<ConsoleChannel>::default()],
        },
    )
    .await
    .unwrap();
    let state = AppState::ready(system);

    // Week 1 (from Monday 2 November 09:00 Berlin) is alice's.
    let (status, v) = get(&state, "/v1/oncall?at=2026-11-04T10:00:00Z").await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let primary = &v["schedules"][1];
    assert_eq!(primary["schedule"], "primary");
    assert_eq!(primary["users"][0]["name"], "alice");
    assert_eq!(primary["users"][0]["email"], "alice@example.com");
    assert_eq!(
        primary["until"], "2026-11-09T08:00:00.000Z",
        "Monday 09:00 CET"
    );
    assert_eq!(primary["source"], "rotation 0");
    // Week 2 is bob's, except during carol's override.
    let (_, v) = get(&state, "/v1/oncall?at=2026-11-10T10:00:00Z").await;
    assert_eq!(v["schedules"][1]["users"][0]["name"], "bob");
    assert_eq!(v["schedules"][1]["users"][0]["slack_user_id"], "U0BOB");
    let (_, v) = get(&state, "/v1/oncall?at=2026-11-20T12:00:00%2B01:00").await;
    assert_eq!(v["schedules"][1]["users"][0]["name"], "carol");
    assert_eq!(v["schedules"][1]["source"], "override");
    // A rotation that has not started: nobody.
    assert_eq!(v["schedules"][0]["schedule"], "later");
    assert_eq!(v["schedules"][0]["users"], Value::Array(vec![]));
    assert_eq!(v["schedules"][0]["source"], "nobody");

    let (status, v) = get(&state, "/v1/oncall?at=yesterday").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["error"]["code"], "invalid_parameter");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lim_oncall_draws_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lim.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let (_db, url) = support::temp_sqlite_url();
    let lim = Path::new(env!("CARGO_BIN_EXE_lim"));
    let server = LimProcess::start(lim, &url, Some(&config)).await;
    let out = tokio::process::Command::new(lim)
        .args(["oncall", "--at", "2026-11-10T10:00:00Z"])
        .env("LIM_SERVER", &server.base)
        .env_remove("LIM_TOKEN")
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let table = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("SCHEDULE"), "{table}");
    let primary = lines.iter().find(|l| l.starts_with("primary")).unwrap();
    assert!(primary.contains("bob"), "{table}");
    assert!(primary.contains("Europe/Berlin"), "{table}");
    let later = lines.iter().find(|l| l.starts_with("later")).unwrap();
    assert!(later.contains("nobody"), "{table}");
}
