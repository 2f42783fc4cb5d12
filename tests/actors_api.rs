//! The live actor tree end to end: the real `lim serve` (SQLite and
//! PostgreSQL), `GET /v1/actors` with its filters and pages, one actor in
//! full, an operator's restart of an incident actor, the errors, and
//! `lim actors` drawing the same tree in the terminal.

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
        .env_remove("LIM_TOKEN")
        .output()
        .await
        .expect("run lim")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

async fn get(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.get(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn post(http: &reqwest::Client, url: String) -> (u16, Value) {
    let r = http.post(url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn child<'a>(node: &'a Value, kind: &str) -> &'a Value {
    node["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} child in {node}"))
}

async fn the_tree_and_its_actions(database_url: &str) {
    let server = LimProcess::start(binary(), database_url, None).await;
    let http = reqwest::Client::new();
    for name in ["A", "B", "C"] {
        http.post(server.url("/v1/alerts"))
            .json(&json!({"labels": {"alertname": name, "service": "chat"}}))
            .send()
            .await
            .unwrap()
            .error_for_status()
            .unwrap();
    }
    http.post(server.url("/v1/incidents/2/acknowledge"))
        .json(&json!({"by": "alice"}))
        .send()
        .await
        .unwrap()
        .error_for_status()
        .unwrap();

    let (status, v) = get(&http, server.url("/v1/actors")).await;
    assert_eq!(status, 200, "{v}");
    let tree = &v["tree"];
    assert_eq!(tree["kind"], "supervisor");
    let router = child(tree, "router");
    assert_eq!(router["state"]["index_size"], json!(3));
    assert_eq!(router["state"]["acknowledged"], json!(1));
    let incidents = router["children"].as_array().unwrap();
    assert_eq!(incidents.len(), 3);
    assert_eq!(incidents[1]["state"]["status"], "acknowledged");
    assert_eq!(incidents[0]["state"]["timers"][0]["kind"], "escalation");
    assert!(
        child(tree, "persistence")["state"]["commits"]
            .as_u64()
            .unwrap()
            >= 4
    );
    let worker = child(
        child(child(tree, "notifier_pool"), "factory"),
        "notifier_worker",
    );
    assert_eq!(worker["state"]["channel"], "console");
    assert_eq!(v["actors"].as_u64().unwrap(), 1 + 1 + 3 + 1 + 3 + 1);

    // Filters keep the path from the root.
    let (_, v) = get(
        &http,
        server.url("/v1/actors?kind=incident&status=acknowledged"),
    )
    .await;
    let router = child(&v["tree"], "router");
    let names: Vec<&str> = router["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["incident 2"]);
    assert_eq!(v["actors"], json!(3));
    // Pages of incidents.
    let (_, v) = get(&http, server.url("/v1/actors?kind=incident&limit=2")).await;
    let router = child(&v["tree"], "router");
    assert_eq!(router["children"].as_array().unwrap().len(), 2);
    assert_eq!(router["next_cursor"], "2");
    let (_, v) = get(
        &http,
        server.url("/v1/actors?kind=incident&limit=2&cursor=2"),
    )
    .await;
    let router = child(&v["tree"], "router");
    assert_eq!(router["children"][0]["name"], "incident 3");
    assert_eq!(router["next_cursor"], Value::Null);

    // One actor in full, by incident or by actor id.
    let (status, one) = get(&http, server.url("/v1/actors/incident-1")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["state"]["incident"]["title"], "A");
    let actor_id = one["id"].as_str().unwrap().to_string();
    let (_, same) = get(&http, server.url(&format!("/v1/actors/{actor_id}"))).await;
    assert_eq!(same["state"]["incident_id"], json!(1));

    // An operator's restart: a new actor, the same state and timers.
    let (status, restarted) =
        post(&http, server.url(&format!("/v1/actors/{actor_id}/restart"))).await;
    assert_eq!(status, 200, "{restarted}");
    assert_ne!(restarted["id"], json!(actor_id));
    assert_eq!(restarted["state"]["restarts"], json!(1));
    assert_eq!(
        restarted["state"]["timers"][0]["deadline"],
        one["state"]["timers"][0]["deadline"]
    );
    let (status, _) = get(&http, server.url(&format!("/v1/actors/{actor_id}"))).await;
    assert_eq!(status, 404, "the old actor is gone");
    // It still works: an acknowledge reaches the new actor.
    let r = http
        .post(server.url("/v1/incidents/1/acknowledge"))
        .json(&json!({"by": "bob"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Errors in lim's shape.
    let persistence = child(tree, "persistence")["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, e) = post(
        &http,
        server.url(&format!("/v1/actors/{persistence}/restart")),
    )
    .await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (409, Some("conflict"))
    );
    let (status, e) = get(&http, server.url("/v1/actors?kind=nope")).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    let (status, e) = get(&http, server.url("/v1/actors?limit=5000")).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (400, Some("invalid_parameter"))
    );
    let (status, e) = get(&http, server.url("/v1/actors/0.999999")).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = get(&http, server.url("/v1/actors/router")).await;
    assert_eq!(status, 400);

    // The terminal view of the same tree.
    let base = server.base.clone();
    let out = lim(&base, &["actors", "--color", "never"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = stdout(&out);
    assert!(text.starts_with("lim supervisor running"), "{text}");
    assert!(
        text.contains("├── persistence persistence running"),
        "{text}"
    );
    assert!(
        text.contains("│   ├── incident 1 incident acknowledged"),
        "{text}"
    );
    assert!(
        text.contains("│   └── incident 3 incident triggered"),
        "{text}"
    );
    assert!(text.contains("escalation in 4m"), "{text}");
    assert!(!text.contains('\x1b'), "no colour when asked");
    let out = lim(
        &base,
        &["actors", "--kind", "incident", "--status", "triggered"],
    )
    .await;
    let text = stdout(&out);
    assert!(
        text.contains("incident 3") && !text.contains("incident 1 "),
        "{text}"
    );
    assert!(!text.contains("persistence"), "{text}");
    let out = lim(&base, &["actors", "--color", "always", "--limit", "1"]).await;
    let text = stdout(&out);
    assert!(text.contains("\x1b[33macknowledged\x1b[0m"), "{text}");
    assert!(text.contains("… 2 more (next page: --cursor 1)"), "{text}");
    let out = lim(&base, &["actors", "restart", "incident-3"]).await;
    assert!(
        stdout(&out).starts_with("restarted: incident 3 incident triggered"),
        "{}",
        stdout(&out)
    );
    let out = lim(&base, &["actors", "--json"]).await;
    let v: Value = serde_json::from_slice(&out.stdout).expect("--json is the API's JSON");
    assert_eq!(child(&v["tree"], "router")["state"]["index_size"], json!(3));
    let out = lim(&base, &["actors", "--kind", "nope"]).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("lim: kind: \"nope\" is not one of"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_tree_on_sqlite() {
    let (_dir, url) = support::temp_sqlite_url();
    the_tree_and_its_actions(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actor_tree_on_postgres() {
    the_tree_and_its_actions(&support::fresh_postgres_url().await).await;
}
