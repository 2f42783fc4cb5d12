//! End-to-end ingest load benchmark: starts the real `lim` binary (release
//! build) on SQLite and on PostgreSQL, drives it with N concurrent
//! connections each POSTing one alert per request to `/v1/alerts` over
//! 5,000 distinct fingerprints, and reports alerts/s, latency percentiles
//! and the server's memory.
//!
//! Run: `cargo bench --bench ingest_load`
//! Knobs (environment): `LIM_BENCH_SECONDS` (default 10),
//! `LIM_BENCH_CONNECTIONS` (32), `LIM_BENCH_FINGERPRINTS` (5000),
//! `LIM_BENCH_BACKENDS` (`sqlite,postgres`), `TEST_DATABASE_URL` (the
//! PostgreSQL server; a fresh database is created on it).

#[path = "../tests/lim_process/mod.rs"]
mod lim_process;
mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use lim_process::LimProcess;
use measure::{env_or, percentile, rss_kib};

struct Report {
    ok: usize,
    errors: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
}

async fn drive(base: &str, connections: usize, fingerprints: usize, duration: Duration) -> Report {
    let url = format!("{base}/v1/alerts");
    let until = Instant::now() + duration;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..connections {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            // One client per connection: one keep-alive connection each.
            let client = reqwest::Client::builder().pool_max_idle_per_host(1).build().unwrap();
            let mut latencies = Vec::with_capacity(100_000);
            let (mut ok, mut errors) = (0usize, 0usize);
            let mut i = c;
            while Instant::now() < until {
                let n = (i * 2_654_435_761usize) % fingerprints;
                i += connections;
                let body = format!(
                    r#"{{"labels":{{"alertname":"HighLatency","service":"chat","model":"gpt-4o","severity":"critical","n":"{n}"}},"annotations":{{"summary":"p99 latency 4.2s"}}}}"#
                );
                let t = Instant::now();
                let r = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await;
                match r {
                    Ok(resp) if resp.status().is_success() => {
                        let _ = resp.bytes().await;
                        latencies.push(t.elapsed());
                        ok += 1;
                    }
                    _ => errors += 1,
                }
            }
            (ok, errors, latencies)
        }));
    }
    let mut report = Report {
        ok: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Vec::new(),
    };
    for t in tasks {
        let (ok, errors, lat) = t.await.unwrap();
        report.ok += ok;
        report.errors += errors;
        report.latencies.extend(lat);
    }
    report.elapsed = start.elapsed();
    report.latencies.sort_unstable();
    report
}

async fn run(backend: &str, database_url: &str) {
    let seconds: u64 = env_or("LIM_BENCH_SECONDS", 10);
    let connections: usize = env_or("LIM_BENCH_CONNECTIONS", 32);
    let fingerprints: usize = env_or("LIM_BENCH_FINGERPRINTS", 5_000);
    let lim = LimProcess::start(Path::new(env!("CARGO_BIN_EXE_lim")), database_url, None).await;
    let pid = lim.pid().unwrap();
    // Warm-up: creates the incidents, so the measured run mixes repeats and joins as in production.
    drive(&lim.base, connections, fingerprints, Duration::from_secs(2)).await;
    let r = drive(
        &lim.base,
        connections,
        fingerprints,
        Duration::from_secs(seconds),
    )
    .await;
    let (rss, hwm) = rss_kib(pid);
    let ms = measure::ms;
    println!(
        "ingest_load backend={backend} connections={connections} fingerprints={fingerprints} seconds={seconds} \
         alerts_per_s={:.0} ok={} errors={} p50_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} rss_mib={:.1} peak_rss_mib={:.1}",
        r.ok as f64 / r.elapsed.as_secs_f64(),
        r.ok,
        r.errors,
        ms(percentile(&r.latencies, 0.50)),
        ms(percentile(&r.latencies, 0.99)),
        ms(percentile(&r.latencies, 0.999)),
        ms(r.latencies.last().copied().unwrap_or_default()),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
    );
    lim.kill9().await;
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
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
                "postgres" => {
                    let url = support::fresh_postgres_url().await;
                    run("postgres", &url).await;
                }
                other => eprintln!("unknown backend {other:?} (sqlite, postgres)"),
            }
        }
    });
}
