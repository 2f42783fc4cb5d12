//! Crash test: the real `lim` binary, several concurrent clients, kill -9
//! in the middle of the load, restart, then check the durability contract:
//! every alert answered 2xx is stored, no fingerprint has two open
//! incidents, and the pending escalation timers are re-armed and fire.
//! Run against SQLite and PostgreSQL, at two loads: 8 clients over 300
//! fingerprints, and the ingest benchmark's shape (32 connections over 5,000
//! fingerprints, killed once 2,000 alerts were acknowledged), one alert per
//! request and in batches of 100 (the benchmark's batch mode, the router's
//! one-message batch path), so speed is never bought with an answer before
//! the commit.

mod lim_process;
mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lim_process::LimProcess;
use serde_json::{json, Value};

/// How hard the load is: concurrent clients, distinct fingerprints, and
/// how many acknowledged alerts before the kill.
#[derive(Clone, Copy)]
struct Load {
    clients: usize,
    fingerprints: usize,
    kill_after: usize,
    /// Open incidents whose re-armed timers are checked (all when smaller).
    timer_sample: usize,
    /// Alerts per request: 1, or a batch (`{"alerts": [...]}`).
    per_request: usize,
}

const LIGHT: Load = Load {
    clients: 8,
    fingerprints: 300,
    kill_after: 400,
    timer_sample: usize::MAX,
    per_request: 1,
};

/// `benches/ingest_load.rs`'s shape.
const BENCHMARK: Load = Load {
    clients: 32,
    fingerprints: 5_000,
    kill_after: 2_000,
    timer_sample: 200,
    per_request: 1,
};

/// The benchmark's batch mode: 100 alerts per request.
const BENCHMARK_BATCH: Load = Load {
    clients: 32,
    fingerprints: 5_000,
    kill_after: 5_000,
    timer_sample: 200,
    per_request: 100,
};

/// Every open incident, page by page.
async fn all_open(client: &reqwest::Client, lim: &LimProcess) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = lim.url("/v1/incidents?status=open&limit=1000");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client.get(url).send().await.unwrap().json().await.unwrap();
        out.extend(page["incidents"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return out,
        }
    }
}

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

/// A policy whose steps are short, so that re-armed timers visibly fire
/// within the test; repeats keep a timer pending on every open incident.
fn write_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("lim.toml");
    std::fs::write(
        &path,
        r#"
[escalation]
repeat = 50

[[escalation.steps]]
delay = "2s"
targets = ["console"]
"#,
    )
    .unwrap();
    path
}

async fn crash_and_recover(database_url: &str, load: Load) {
    let Load {
        clients: client_count,
        fingerprints,
        kill_after,
        timer_sample,
        per_request,
    } = load;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path());
    let lim = LimProcess::start(binary(), database_url, Some(&config)).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(client_count)
        .build()
        .unwrap();

    // (alert fingerprint, incident id) of every alert answered 2xx.
    let acked: Arc<Mutex<Vec<(String, u64)>>> = Arc::default();
    let sent = Arc::new(AtomicUsize::new(0));
    let mut clients = Vec::new();
    for c in 0..client_count {
        let (client, acked, sent, url) = (
            client.clone(),
            acked.clone(),
            sent.clone(),
            lim.url("/v1/alerts"),
        );
        clients.push(tokio::spawn(async move {
            for i in 0.. {
                let alerts: Vec<Value> = (0..per_request)
                    .map(|k| {
                        let n = (c * 7919 + (i * per_request + k) * 13) % fingerprints;
                        json!({"labels": {"alertname": "CrashTest", "n": n.to_string(), "service": "chat"}})
                    })
                    .collect();
                let body = match per_request {
                    1 => alerts[0].clone(),
                    _ => json!({ "alerts": alerts }),
                };
                sent.fetch_add(per_request, Ordering::Relaxed);
                let Ok(resp) = client.post(&url).json(&body).send().await else { break };
                if !resp.status().is_success() {
                    continue;
                }
                let Ok(v) = resp.json::<Value>().await else { break };
                let results = v["results"].as_array().unwrap();
                assert_eq!(results.len(), per_request, "one result per alert: {v}");
                let mut acked = acked.lock().unwrap();
                for r in results {
                    let fp = r["fingerprint"].as_str().unwrap().to_string();
                    acked.push((fp, r["incident_id"].as_u64().unwrap()));
                }
            }
        }));
    }
    // Kill in the middle of the load, once a good number were acknowledged
    // (waiting up to 60 s: a loaded machine is slower, not wrong).
    for _ in 0..6000 {
        if acked.lock().unwrap().len() >= kill_after {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    lim.kill9().await;
    for c in clients {
        c.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= kill_after,
        "load ran: {} acknowledged",
        acked.len()
    );
    assert!(
        sent.load(Ordering::Relaxed) > acked.len(),
        "killed mid-load, with requests in flight"
    );

    let restarted_at = chrono::Utc::now();
    let lim = LimProcess::start(binary(), database_url, Some(&config)).await;

    // Every acknowledged alert is stored, in the incident it was acknowledged with.
    lim_process::assert_acknowledged_alerts_stored(&client, &lim, acked.iter().cloned()).await;
    let by_incident: BTreeSet<u64> = acked.iter().map(|(_, id)| *id).collect();

    // No fingerprint has two open incidents.
    let open = all_open(&client, &lim).await;
    let mut seen = BTreeSet::new();
    for i in &open {
        assert!(
            seen.insert(i["fingerprint"].as_str().unwrap().to_string()),
            "two open incidents for {}",
            i["fingerprint"]
        );
    }
    assert!(
        open.len() >= by_incident.len(),
        "every acknowledged incident is still open"
    );

    // The same alert joins the same incident after the restart.
    let (fp0, id0) = &acked[0];
    let n0 = open
        .iter()
        .find(|i| i["id"].as_u64() == Some(*id0))
        .map(|i| i["labels"]["n"].as_str().unwrap().to_string())
        .unwrap();
    let again: Value = client
        .post(lim.url("/v1/alerts"))
        .json(&json!({"labels": {"alertname": "CrashTest", "n": n0, "service": "chat"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["results"][0]["incident_id"].as_u64(), Some(*id0));
    assert_eq!(
        again["results"][0]["fingerprint"].as_str(),
        Some(fp0.as_str())
    );

    // Pending timers were re-armed: every open incident escalates again after the restart.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut waiting: BTreeSet<u64> = open
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .take(timer_sample)
        .collect();
    while !waiting.is_empty() && tokio::time::Instant::now() < deadline {
        let mut still = BTreeSet::new();
        for id in &waiting {
            let v: Value = client
                .get(lim.url(&format!("/v1/incidents/{id}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let fired_after_restart = v["timeline"].as_array().unwrap().iter().any(|e| {
                e["type"] == "notified"
                    && chrono::DateTime::parse_from_rfc3339(e["at"].as_str().unwrap()).unwrap()
                        > restarted_at
            });
            if !fired_after_restart {
                still.insert(*id);
            }
        }
        waiting = still;
        if !waiting.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(
        waiting.is_empty(),
        "incidents whose timers did not fire after the restart: {waiting:?}"
    );
    lim.kill9().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_load_loses_nothing_sqlite() {
    let (_dir, url) = support::temp_sqlite_url();
    crash_and_recover(&url, LIGHT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_mid_load_loses_nothing_postgres() {
    let url = support::fresh_postgres_url().await;
    crash_and_recover(&url, LIGHT).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_under_the_benchmarks_load_loses_nothing_sqlite() {
    let (_dir, url) = support::temp_sqlite_url();
    crash_and_recover(&url, BENCHMARK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_under_the_benchmarks_load_loses_nothing_postgres() {
    let url = support::fresh_postgres_url().await;
    crash_and_recover(&url, BENCHMARK).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_under_the_benchmarks_batch_load_loses_nothing_sqlite() {
    let (_dir, url) = support::temp_sqlite_url();
    crash_and_recover(&url, BENCHMARK_BATCH).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_under_the_benchmarks_batch_load_loses_nothing_postgres() {
    let url = support::fresh_postgres_url().await;
    crash_and_recover(&url, BENCHMARK_BATCH).await;
}
