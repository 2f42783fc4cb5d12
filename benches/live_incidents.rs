//! Many live incidents: starts the real release `lim serve`, opens N
//! incidents (default 100,000; each its own actor with an armed escalation
//! timer) through batched `POST /v1/alerts`, then reports
//!
//! * the server's RSS and bytes per open incident;
//! * `GET /v1/actors` (the live tree, one page of 100 incidents) latency
//!   percentiles while an ingest load runs, and the ingest latency with and
//!   without the tree being polled (inspection must not stall ingest);
//! * the restart: kill -9, start again, time until `/readyz` (every open
//!   incident rehydrated, its actor respawned and its timers re-armed).
//!
//! Run: `cargo bench --bench live_incidents`
//! Knobs: `LIM_BENCH_INCIDENTS` (100000), `LIM_BENCH_BACKENDS`
//! (`sqlite,postgres`), `TEST_DATABASE_URL`.

#[path = "../tests/lim_process/mod.rs"]
mod lim_process;
mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lim_process::LimProcess;
use measure::{env_or, ms, percentile, rss_kib};

fn binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_lim"))
}

fn alert(n: usize) -> String {
    format!(
        r#"{{"labels":{{"alertname":"HighLatency","service":"chat","model":"gpt-4o","severity":"critical","n":"{n}"}},"annotations":{{"summary":"p99 latency 4.2s"}}}}"#
    )
}

/// Opens incidents `0..count` in batches of 100 alerts over 4 connections.
async fn open_incidents(base: &str, count: usize) -> Duration {
    let started = Instant::now();
    let url = format!("{base}/v1/alerts");
    let connections = 4;
    let batches: Vec<usize> = (0..count).step_by(100).collect();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let url = url.clone();
        let mine: Vec<usize> = batches
            .iter()
            .copied()
            .skip(c)
            .step_by(connections)
            .collect();
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            for first in mine {
                let alerts: Vec<String> = (first..(first + 100).min(count)).map(alert).collect();
                let body = format!(r#"{{"alerts":[{}]}}"#, alerts.join(","));
                loop {
                    let r = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().is_success() => break,
                        // 429/503 under load: back off and send the batch again.
                        _ => tokio::time::sleep(Duration::from_millis(50)).await,
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    started.elapsed()
}

/// Repeats of the first 5,000 incidents over 16 connections until `stop`;
/// the latency of each answer.
async fn ingest_load(base: String, stop: Arc<AtomicBool>) -> Vec<Duration> {
    let url = format!("{base}/v1/alerts");
    let mut tasks = Vec::new();
    for c in 0..16 {
        let (url, stop) = (url.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::builder()
                .pool_max_idle_per_host(1)
                .build()
                .unwrap();
            let mut latencies = Vec::new();
            let mut i = c;
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(alert(i % 5_000))
                    .send()
                    .await;
                if let Ok(r) = r {
                    if r.status().is_success() {
                        let _ = r.bytes().await;
                        latencies.push(t.elapsed());
                    }
                }
                i += 16;
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    all.sort_unstable();
    all
}

/// The slowest-answering actor of a tree answer: (kind, answer_ms).
fn slowest(node: &serde_json::Value) -> (String, f64) {
    let own = (
        node["kind"].as_str().unwrap_or("?").to_string(),
        node["answer_ms"].as_f64().unwrap_or(0.0),
    );
    node["children"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(slowest)
        .fold(own, |a, b| if b.1 > a.1 { b } else { a })
}

async fn poll_tree(base: &str, n: usize) -> (Vec<Duration>, u64) {
    let client = reqwest::Client::new();
    let mut latencies = Vec::with_capacity(n);
    let mut actors = 0;
    let mut slow: std::collections::BTreeMap<String, usize> = Default::default();
    for _ in 0..n {
        let t = Instant::now();
        let v: serde_json::Value = client
            .get(format!("{base}/v1/actors?limit=100"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let took = t.elapsed();
        latencies.push(took);
        actors = v["actors"].as_u64().unwrap_or(0);
        if took > Duration::from_millis(50) {
            let (kind, ms) = slowest(&v["tree"]);
            *slow
                .entry(format!("{kind}(~{:.0}ms)", (ms / 50.0).round() * 50.0))
                .or_default() += 1;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    latencies.sort_unstable();
    if !slow.is_empty() {
        // Which actor answered last in the slow answers (a diagnosis aid).
        println!("live_incidents tree answers over 50 ms, slowest actor: {slow:?}");
    }
    (latencies, actors)
}

async fn run(backend: &str, database_url: &str) {
    let count: usize = env_or("LIM_BENCH_INCIDENTS", 100_000);
    let lim = LimProcess::start(binary(), database_url, None).await;
    let pid = lim.pid().unwrap();
    let (idle_rss, _) = rss_kib(pid);
    let took = open_incidents(&lim.base, count).await;
    // Let the last commits and touches settle before reading memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (rss, hwm) = rss_kib(pid);
    let per_incident = (rss.saturating_sub(idle_rss) * 1024) as f64 / count as f64;
    println!(
        "live_incidents backend={backend} incidents={count} open_s={:.1} creates_per_s={:.0} \
         idle_rss_mib={:.1} rss_mib={:.1} peak_rss_mib={:.1} bytes_per_incident={per_incident:.0}",
        took.as_secs_f64(),
        count as f64 / took.as_secs_f64(),
        idle_rss as f64 / 1024.0,
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );

    // Ingest alone, then ingest while the tree is polled.
    for polled in [false, true] {
        let stop = Arc::new(AtomicBool::new(false));
        let load = tokio::spawn(ingest_load(lim.base.clone(), stop.clone()));
        let tree = if polled {
            Some(poll_tree(&lim.base, 200).await)
        } else {
            tokio::time::sleep(Duration::from_secs(5)).await;
            None
        };
        stop.store(true, Ordering::Relaxed);
        let ingest = load.await.unwrap();
        print!(
            "live_incidents backend={backend} tree_polled={polled} ingest_ok={} ingest_p50_ms={:.2} ingest_p99_ms={:.2} ingest_p999_ms={:.2}",
            ingest.len(),
            ms(percentile(&ingest, 0.5)),
            ms(percentile(&ingest, 0.99)),
            ms(percentile(&ingest, 0.999)),
        );
        match tree {
            Some((t, actors)) => println!(
                " tree_requests={} tree_actors={actors} tree_p50_ms={:.2} tree_p99_ms={:.2} tree_max_ms={:.2}",
                t.len(),
                ms(percentile(&t, 0.5)),
                ms(percentile(&t, 0.99)),
                ms(t.last().copied().unwrap_or_default()),
            ),
            None => println!(),
        }
    }

    lim.kill9().await;
    let started = Instant::now();
    let again = LimProcess::start(binary(), database_url, None).await;
    let ready = started.elapsed();
    let v: serde_json::Value = reqwest::get(again.url("/v1/actors?limit=0"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let router = v["tree"]["children"]
        .as_array()
        .and_then(|c| c.iter().find(|n| n["kind"] == "router"))
        .cloned()
        .unwrap_or_default();
    println!(
        "live_incidents backend={backend} restart_to_ready_s={:.2} rehydrated={} rss_after_restart_mib={:.1}",
        ready.as_secs_f64(),
        router["state"]["index_size"],
        rss_kib(again.pid().unwrap()).0 as f64 / 1024.0,
    );
    again.kill9().await;
}

fn main() {
    let backends = std::env::var("LIM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        for backend in backends.split(',') {
            match backend.trim() {
                "sqlite" => {
                    let (_dir, url) = support::temp_sqlite_url();
                    run("sqlite", &url).await;
                }
                "postgres" => run("postgres", &support::fresh_postgres_url().await).await,
                other => eprintln!("unknown backend {other:?} (sqlite, postgres)"),
            }
        }
    });
}
