//! Alert to first delivery: starts the real `lim` binary (release build)
//! with one webhook channel on its default policy, posts new alerts at a
//! fixed rate (open loop: one request every 1/rate s whatever the answers),
//! each opening an incident whose first step pages the webhook, and measures
//! from just before the POST to the instant a local receiver (an axum server
//! in this process) gets the page: ingest, commit, escalation, delivery log,
//! notifier and the HTTP call, end to end.
//!
//! Run: `cargo bench --bench delivery_latency`
//! Knobs (environment): `LIM_BENCH_RATE` (alerts/s, default 1000),
//! `LIM_BENCH_SECONDS` (default 20), `LIM_BENCH_BACKENDS`
//! (`sqlite,postgres`), `TEST_DATABASE_URL`.

#[path = "../tests/lim_process/mod.rs"]
mod lim_process;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use axum::Router;
use lim_process::LimProcess;
use serde_json::{json, Value};

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

/// When each incident's first page arrived.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

async fn receive(State(arrivals): State<Arrivals>, body: Bytes) -> &'static str {
    let now = Instant::now();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if body["event"] == "incident.triggered" {
        if let Some(id) = body["incident"]["id"].as_u64() {
            arrivals.lock().unwrap().entry(id).or_insert(now);
        }
    }
    "ok"
}

async fn receiver() -> (Arrivals, String) {
    let arrivals = Arrivals::default();
    let app = Router::new()
        .route("/hook", post(receive))
        .with_state(arrivals.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (arrivals, url)
}

async fn run(backend: &str, database_url: &str, rate: u64, seconds: u64) {
    let (arrivals, hook) = receiver().await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("lim.toml");
    std::fs::write(
        &config,
        format!(
            "[[channels.webhooks]]\nname = \"bench\"\nurl = \"{hook}\"\n\n\
             [escalation]\n[[escalation.steps]]\ndelay = \"1h\"\ntargets = [\"bench\"]\n"
        ),
    )
    .unwrap();
    let lim = LimProcess::start(
        Path::new(env!("CARGO_BIN_EXE_lim")),
        database_url,
        Some(&config),
    )
    .await;
    let url = lim.url("/v1/alerts");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let sent: Arc<Mutex<HashMap<u64, Instant>>> = Arc::default();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let total = rate * seconds;
    let period = Duration::from_secs_f64(1.0 / rate as f64);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..total {
        // Open loop: request n leaves at started + n * period.
        let due = started + period.mul_f64(n as f64);
        tokio::time::sleep_until(due.into()).await;
        let (http, url, sent, errors) = (http.clone(), url.clone(), sent.clone(), errors.clone());
        tasks.spawn(async move {
            let t0 = Instant::now();
            let body = json!({"labels": {"alertname": "DeliveryBench", "n": n.to_string()}});
            match http.post(&url).json(&body).send().await {
                Ok(r) if r.status().is_success() => {
                    let v: Value = r.json().await.unwrap_or(Value::Null);
                    if let Some(id) = v["results"][0]["incident_id"].as_u64() {
                        sent.lock().unwrap().insert(id, t0);
                    }
                }
                _ => {
                    errors.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let offered = started.elapsed();
    // Let the last pages arrive (bounded).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let done = arrivals.lock().unwrap().len() >= sent.lock().unwrap().len();
        if done || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    lim.kill9().await;
    let sent = sent.lock().unwrap();
    let arrivals = arrivals.lock().unwrap();
    let mut latencies: Vec<Duration> = sent
        .iter()
        .filter_map(|(id, t0)| arrivals.get(id).map(|t1| t1.duration_since(*t0)))
        .collect();
    latencies.sort();
    let missing = sent.len() - latencies.len();
    println!(
        "{backend}: offered {rate}/s for {:.1} s: {} alerts accepted ({} errors), {} pages received ({} missing); \
         alert→first delivery p50 {:.1} ms, p99 {:.1} ms, p99.9 {:.1} ms, max {:.1} ms",
        offered.as_secs_f64(),
        sent.len(),
        errors.load(std::sync::atomic::Ordering::Relaxed),
        latencies.len(),
        missing,
        percentile(&latencies, 0.50).as_secs_f64() * 1e3,
        percentile(&latencies, 0.99).as_secs_f64() * 1e3,
        percentile(&latencies, 0.999).as_secs_f64() * 1e3,
        latencies.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
    );
}

fn main() {
    let rate: u64 = env_or("LIM_BENCH_RATE", 1000);
    let seconds: u64 = env_or("LIM_BENCH_SECONDS", 20);
    let backends = std::env::var("LIM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        for backend in backends.split(',').map(str::trim) {
            match backend {
                "sqlite" => {
                    let (_dir, url) = support::temp_sqlite_url();
                    run("SQLite", &url, rate, seconds).await;
                }
                "postgres" => {
                    let url = support::fresh_postgres_url().await;
                    run("PostgreSQL", &url, rate, seconds).await;
                }
                other => eprintln!("unknown backend {other:?}"),
            }
        }
    });
}
