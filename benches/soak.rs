//! Soak benchmark: the release `lim serve` under 30 minutes of steady mixed
//! load, sampled every 10 s, to show that memory stays flat and that open
//! file descriptors, tokio tasks and OS threads do not grow (issue 9).
//!
//! Target (`LIM_SOAK_TARGET`): `lim-sqlite` (default: a fresh SQLite file,
//! WAL, fsynced before each answer) or `lim-postgres` (a fresh database on
//! `TEST_DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432`,
//! dropped afterwards). lim runs on its defaults (the default policy pages
//! the console channel at once, then every 5 minutes, 3 repeats): every 2xx
//! is durable, as in production.
//!
//! Load, open loop at a fixed rate (`LIM_SOAK_RATE`, default 1,000
//! alerts/s, one Prometheus postable alert per `POST /api/v2/alerts`):
//! request k is due at start + k / rate whatever the answers, taken by
//! whichever of `LIM_SOAK_CONNECTIONS` (16) keep-alive connections is free,
//! and its latency runs from its due time (no coordinated omission). The
//! fingerprints are a bounded space (`LIM_SOAK_FINGERPRINTS`, 2,000),
//! split between the connections so each fingerprint's alerts go in order
//! on one connection. Each request picks one of its connection's
//! fingerprints at random and sends what a monitor would:
//!
//! * not firing (as the generator knows it): a firing alert, which opens a
//!   new incident;
//! * firing, one of the short-lived 90 %: a resolve (`endsAt` in the past)
//!   with probability 1/9, else a repeat. At equilibrium 90 % of them are
//!   open and news ≈ resolves ≈ 9 % of the requests; an incident lives
//!   ~18 s on average;
//! * firing, one of the long-lived 10 % (fingerprint index ≡ 0 mod 10):
//!   a repeat until it has been firing 300–420 s (fixed per fingerprint),
//!   then a resolve. These live past the default policy's 5-minute step, so
//!   their escalation timers fire and re-page while the soak runs.
//!
//! So incidents are opened and resolved continuously (~90 new incidents/s,
//! ~165,000 over 30 minutes, all kept in the store) while the number open
//! stays at a steady ~1,800 from the first minute on: whatever grows
//! with time is not the working set. An operator works alongside, on its own
//! connection: every 2 s it lists the triggered incidents (newest first and
//! oldest first in turn) and acknowledges the first (`POST
//! /v1/incidents/{id}/acknowledge`; 404/409 when it resolved meanwhile are
//! counted apart, not as errors), every 5 s it lists the open ones and reads
//! one incident and its timeline, every 10 s it reads the actor tree
//! (`GET /v1/actors`), every 30 s a page of resolved incidents.
//!
//! Every 10 s a sample: the server's RSS and OS threads (`/proc/PID/status`
//! `VmRSS`, `Threads`), open fds (entries of `/proc/PID/fd`), tokio tasks
//! alive (`lim_runtime_alive_tasks` from `/metrics`), open incidents (the
//! sum of `lim_open_incidents`), the window's alerts/s of 2xx answers,
//! latency p50/p99/max, errors, the operator's requests, the server's CPU
//! (100 % = one core) and the 1-minute load average. A row is printed per
//! sample and every sample written to `target/soak/soak-<target>.csv`.
//!
//! The summary compares the first 5 minutes with the last 5, fits a line
//! (least squares) to each of RSS, fds, tasks and threads over the last 20
//! minutes (slope per hour), and fails (exit 1) when
//!
//! * **RSS grows more than 10 %** from the 10-minute mark to the end (the
//!   mean of the samples in the minute around minute 10 against the mean of
//!   the last minute's). By minute 10 the open set, the store's caches and
//!   the allocator's arenas have long reached their steady size (the open
//!   set does in the first minute); what moves RSS afterwards in a healthy
//!   process is fragmentation and the allocator returning or not returning
//!   pages, a few percent. A leak tied to the work does not hide under 10 %:
//!   between minute 10 and 30 lim creates ~110,000 incidents and answers
//!   ~1.2 million requests, so 10 % of a ~60 MiB process (6 MiB) is
//!   ~55 bytes kept per incident created or ~5 bytes per request.
//! * **fds grow by more than 10** over the same span (means again). The
//!   process holds a fixed set (listener, epoll/eventfds, the database
//!   files or connections, 16 + 2 client connections, stdio); a reconnect
//!   of a client connection or a file briefly open elsewhere moves that by
//!   one or two. A per-request or per-incident leak adds thousands.
//! * **tokio tasks grow by more than 5 % + 100** (means). Tasks are mostly
//!   incident actors and their timers, so they follow the open count, which
//!   fluctuates by a few percent around its equilibrium (binomial:
//!   ~1,800 ± ~15 short-lived open, the long-lived ones turn over in
//!   waves); connections and in-flight requests add a few dozen. A task
//!   leaked per 100 incidents created (~1,100) or per 1,000 requests
//!   (~1,200) is over the bound.
//! * **OS threads grow by more than 16** (means): tokio's workers are
//!   fixed; its blocking pool grows with demand and shrinks after 10 s idle;
//!   sqlx runs each SQLite connection (a pool of up to four) on a thread of
//!   its own; 16 is room for a burst of blocking work, a thread per anything
//!   would pass it.
//! * any ingest request fails, or the achieved rate is under 95 % of the
//!   offered one (then the samples measured a backlog, not a steady state).
//!
//! With `LIM_SOAK_SECS` shorter than 30 minutes, the windows scale with
//! it: "5 minutes" is a sixth of the run, "minute 10" a third of it, "the
//! last 20 minutes" two thirds, "a minute" a thirtieth (at least one sample).
//!
//! Run: `cargo bench --bench soak` (30 minutes). Knobs (environment):
//! `LIM_SOAK_TARGET` (`lim-sqlite`, `lim-postgres`), `LIM_SOAK_SECS` (1800),
//! `LIM_SOAK_RATE` (1000), `LIM_SOAK_CONNECTIONS` (16),
//! `LIM_SOAK_FINGERPRINTS` (2000), `LIM_SOAK_SAMPLE_SECS` (10),
//! `TEST_DATABASE_URL`.

#[path = "../tests/lim_process/mod.rs"]
mod lim_process;
mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use incident_actors::time::Timestamp;
use lim_process::LimProcess;
use measure::{env_or, ms, percentile, rss_kib};

/// Fraction of fingerprints that are long-lived: index ≡ 0 mod this.
const LONG_LIVED_EVERY: usize = 10;
/// A short-lived firing fingerprint resolves with probability 1 / this.
const RESOLVE_ONE_IN: u64 = 9;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    LimSqlite,
    LimPostgres,
}

impl Target {
    fn from_env() -> Target {
        match std::env::var("LIM_SOAK_TARGET").as_deref() {
            Err(_) | Ok("") | Ok("lim-sqlite") => Target::LimSqlite,
            Ok("lim-postgres") => Target::LimPostgres,
            Ok(other) => panic!("LIM_SOAK_TARGET={other:?}: lim-sqlite or lim-postgres"),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Target::LimSqlite => "lim-sqlite",
            Target::LimPostgres => "lim-postgres",
        }
    }
}

#[derive(Clone)]
struct Knobs {
    secs: u64,
    rate: u64,
    connections: usize,
    fingerprints: usize,
    sample_secs: u64,
}

impl Knobs {
    fn from_env() -> Knobs {
        let connections = env_or("LIM_SOAK_CONNECTIONS", 16usize).max(1);
        Knobs {
            secs: env_or("LIM_SOAK_SECS", 1800u64).max(1),
            rate: env_or("LIM_SOAK_RATE", 1000u64).max(1),
            connections,
            fingerprints: env_or("LIM_SOAK_FINGERPRINTS", 2000usize).max(connections),
            sample_secs: env_or("LIM_SOAK_SAMPLE_SECS", 10u64).max(1),
        }
    }
}

// ---------------------------------------------------------------- load

/// The timestamps every body carries, fixed for the run so that a repeat is
/// byte-identical: started a minute before the run, firing until an hour
/// after its end, or resolved a second before it started.
struct Times {
    starts: String,
    firing_ends: String,
    resolved_ends: String,
}

impl Times {
    fn for_run(secs: u64) -> Times {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64;
        let at = |offset_ms: i64| Timestamp(now + offset_ms).to_rfc3339();
        Times {
            starts: at(-60_000),
            firing_ends: at((secs as i64 + 3_600) * 1000),
            resolved_ends: at(-1_000),
        }
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Repeat = 0,
    New = 1,
    Resolve = 2,
}

/// One connection's share of the fingerprints (global index `c + k·N`)
/// and what it knows of them: since when each is firing, if it is.
struct Generator {
    first: usize,
    step: usize,
    firing_since: Vec<Option<Instant>>,
    rng: u64,
}

impl Generator {
    fn new(c: usize, knobs: &Knobs) -> Generator {
        let count = (knobs.fingerprints - c).div_ceil(knobs.connections);
        Generator {
            first: c,
            step: knobs.connections,
            firing_since: vec![None; count],
            rng: 0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The next alert of this connection into `body`; what it is.
    fn next(&mut self, body: &mut Vec<u8>, times: &Times) -> Kind {
        let local = (self.random() % self.firing_since.len() as u64) as usize;
        let n = self.first + local * self.step;
        let now = Instant::now();
        let roll = self.random();
        let kind = match self.firing_since[local] {
            None => Kind::New,
            Some(since) if n % LONG_LIVED_EVERY == 0 => {
                // 300–420 s, fixed per fingerprint.
                let life = Duration::from_secs(300 + (n as u64 * 7_919) % 121);
                if now.duration_since(since) >= life {
                    Kind::Resolve
                } else {
                    Kind::Repeat
                }
            }
            Some(_) if roll % RESOLVE_ONE_IN == 0 => Kind::Resolve,
            Some(_) => Kind::Repeat,
        };
        self.firing_since[local] = match kind {
            Kind::New => Some(now),
            Kind::Repeat => self.firing_since[local],
            Kind::Resolve => None,
        };
        let ends = match kind {
            Kind::Resolve => &times.resolved_ends,
            _ => &times.firing_ends,
        };
        body.clear();
        body.extend_from_slice(
            format!(
                r#"[{{"labels":{{"alertname":"HighLatency","service":"chat","model":"gpt-4o","severity":"critical","n":"{n}"}},"annotations":{{"summary":"p99 latency 4.2s"}},"startsAt":"{}","endsAt":"{ends}"}}]"#,
                times.starts
            )
            .as_bytes(),
        );
        kind
    }
}

/// What happened since the last sample; the sampler swaps it out.
#[derive(Default)]
struct Window {
    latencies: Vec<Duration>,
    ok: u64,
    errors: u64,
    kinds: [u64; 3],
    ops: u64,
    op_conflicts: u64,
    op_errors: u64,
    op_latencies: Vec<Duration>,
}

/// Open loop over `knobs.connections` tasks until `end`.
async fn drive(
    base: String,
    knobs: Knobs,
    times: Arc<Times>,
    window: Arc<Mutex<Window>>,
    start: Instant,
    end: Instant,
) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(knobs.connections)
        .tcp_nodelay(true)
        .build()
        .expect("client");
    let url = format!("{base}/api/v2/alerts");
    let next = Arc::new(AtomicU64::new(0));
    let period = 1.0 / knobs.rate as f64;
    let mut tasks = Vec::new();
    for c in 0..knobs.connections {
        let (client, url, next, times, window) = (
            client.clone(),
            url.clone(),
            next.clone(),
            times.clone(),
            window.clone(),
        );
        let mut generator = Generator::new(c, &knobs);
        tasks.push(tokio::spawn(async move {
            let mut body = Vec::with_capacity(512);
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let due = start + Duration::from_secs_f64(k as f64 * period);
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let kind = generator.next(&mut body, &times);
                let result = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await;
                let ok = match result {
                    Ok(r) => {
                        let ok = r.status().is_success();
                        // Read the (empty) body so the connection is reused.
                        let _ = r.bytes().await;
                        ok
                    }
                    Err(_) => false,
                };
                let latency = due.elapsed();
                let mut w = window.lock().unwrap();
                if ok {
                    w.ok += 1;
                    w.latencies.push(latency);
                    w.kinds[kind as usize] += 1;
                } else {
                    w.errors += 1;
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("load task");
    }
}

/// The operator: lists, acknowledges, reads an incident, its timeline and
/// the actor tree, on its own connection, until `end`.
async fn operate(base: String, window: Arc<Mutex<Window>>, end: Instant) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut second: u64 = 0;
    let record = |status: Option<reqwest::StatusCode>, took: Duration| {
        let mut w = window.lock().unwrap();
        w.ops += 1;
        w.op_latencies.push(took);
        match status {
            Some(s) if s.is_success() => {}
            Some(s) if s.as_u16() == 404 || s.as_u16() == 409 => w.op_conflicts += 1,
            _ => w.op_errors += 1,
        }
    };
    // One GET; its JSON body when it answered 2xx.
    let get = |path: String| {
        let client = client.clone();
        let url = format!("{base}{path}");
        async move {
            let t = Instant::now();
            match client.get(&url).send().await {
                Ok(r) => {
                    let status = r.status();
                    let body = r.json::<serde_json::Value>().await.ok();
                    (
                        Some(status),
                        t.elapsed(),
                        body.filter(|_| status.is_success()),
                    )
                }
                Err(_) => (None, t.elapsed(), None),
            }
        }
    };
    let first_id = |list: &Option<serde_json::Value>| {
        list.as_ref()
            .and_then(|l| l["incidents"].get(0))
            .and_then(|i| i["id"].as_u64())
    };
    while Instant::now() < end {
        tick.tick().await;
        second += 1;
        if second % 2 == 0 {
            let sort = if second % 4 == 0 {
                "created_desc"
            } else {
                "created_asc"
            };
            let (status, took, list) = get(format!(
                "/v1/incidents?status=triggered&limit=20&sort={sort}"
            ))
            .await;
            record(status, took);
            if let Some(id) = first_id(&list) {
                let t = Instant::now();
                let r = client
                    .post(format!("{base}/v1/incidents/{id}/acknowledge"))
                    .json(&serde_json::json!({"by": "soak-operator"}))
                    .send()
                    .await;
                let status = match r {
                    Ok(r) => {
                        let s = r.status();
                        let _ = r.bytes().await;
                        Some(s)
                    }
                    Err(_) => None,
                };
                record(status, t.elapsed());
            }
        }
        if second % 5 == 0 {
            let (status, took, list) = get("/v1/incidents?status=open&limit=50".into()).await;
            record(status, took);
            if let Some(id) = first_id(&list) {
                let (status, took, _) = get(format!("/v1/incidents/{id}")).await;
                record(status, took);
                let (status, took, _) = get(format!("/v1/incidents/{id}/timeline")).await;
                record(status, took);
            }
        }
        if second % 10 == 0 {
            let (status, took, _) = get("/v1/actors".into()).await;
            record(status, took);
        }
        if second % 30 == 0 {
            let (status, took, _) = get("/v1/incidents?status=resolved&limit=50".into()).await;
            record(status, took);
        }
    }
}

// ---------------------------------------------------------------- sample

#[derive(Clone, Default)]
struct Sample {
    t_s: f64,
    rss_mib: f64,
    fds: f64,
    threads: f64,
    tasks: f64,
    open_incidents: f64,
    alerts_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: u64,
    new: u64,
    resolved: u64,
    repeats: u64,
    ops: u64,
    op_conflicts: u64,
    op_errors: u64,
    op_p99_ms: f64,
    server_cpu_pct: f64,
    load1: f64,
}

const CSV_HEADER: &str = "t_s,rss_mib,fds,threads,tasks,open_incidents,alerts_per_s,p50_ms,\
p99_ms,max_ms,errors,new,resolved,repeats,ops,op_conflicts,op_errors,op_p99_ms,server_cpu_pct,load1";

impl Sample {
    fn csv(&self) -> String {
        format!(
            "{:.0},{:.1},{:.0},{:.0},{:.0},{:.0},{:.1},{:.3},{:.3},{:.3},{},{},{},{},{},{},{},{:.3},{:.1},{:.2}",
            self.t_s,
            self.rss_mib,
            self.fds,
            self.threads,
            self.tasks,
            self.open_incidents,
            self.alerts_per_s,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.errors,
            self.new,
            self.resolved,
            self.repeats,
            self.ops,
            self.op_conflicts,
            self.op_errors,
            self.op_p99_ms,
            self.server_cpu_pct,
            self.load1
        )
    }

    fn row(&self) -> String {
        format!(
            "| {:>5.0} | {:>7.1} | {:>4.0} | {:>3.0} | {:>6.0} | {:>5.0} | {:>7.1} | {:>6.2} | {:>7.2} | {:>7.1} | {:>3} | {:>4}/{:>4}/{:>5} | {:>3}/{:>2}/{:>2} | {:>4.0} | {:>4.2} |",
            self.t_s,
            self.rss_mib,
            self.fds,
            self.threads,
            self.tasks,
            self.open_incidents,
            self.alerts_per_s,
            self.p50_ms,
            self.p99_ms,
            self.max_ms,
            self.errors,
            self.new,
            self.resolved,
            self.repeats,
            self.ops,
            self.op_conflicts,
            self.op_errors,
            self.server_cpu_pct,
            self.load1
        )
    }
}

const TABLE_HEADER: &str = "|   t s | RSS MiB |  fds | thr |  tasks |  open | alerts/s | p50 ms |  p99 ms |  max ms | err | new/resolved/repeat | ops/404-409/err | cpu% | load1 |\n\
|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|";

fn proc_status_field(pid: u32, name: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(name))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0)
}

fn open_fds(pid: u32) -> f64 {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count() as f64)
        .unwrap_or(0.0)
}

/// CPU time (user + system) of a process, from `/proc/<pid>/stat`.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime, in USER_HZ (100 on Linux).
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / 100.0)
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(0.0)
}

/// Tokio tasks alive and open incidents (summed over status and service),
/// from one scrape of `/metrics`.
async fn scrape(client: &reqwest::Client, base: &str) -> (f64, f64) {
    let text = match client.get(format!("{base}/metrics")).send().await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let (mut tasks, mut open) = (f64::NAN, 0.0);
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        let Ok(value) = value.parse::<f64>() else {
            continue;
        };
        let name = series.split('{').next().unwrap_or(series);
        match name {
            "lim_runtime_alive_tasks" => tasks = value,
            "lim_open_incidents" => open += value,
            _ => {}
        }
    }
    (tasks, open)
}

// ---------------------------------------------------------------- summary

fn mean(samples: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    if samples.is_empty() {
        return f64::NAN;
    }
    samples.iter().map(|s| f(s)).sum::<f64>() / samples.len() as f64
}

/// Least-squares slope of `f` against time, per hour.
fn slope_per_hour(samples: &[&Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let n = samples.len() as f64;
    if n < 2.0 {
        return f64::NAN;
    }
    let mt = mean(samples, |s| s.t_s);
    let my = mean(samples, &f);
    let (mut num, mut den) = (0.0, 0.0);
    for s in samples {
        num += (s.t_s - mt) * (f(s) - my);
        den += (s.t_s - mt) * (s.t_s - mt);
    }
    num / den * 3600.0
}

fn in_range(samples: &[Sample], from: f64, to: f64) -> Vec<&Sample> {
    samples
        .iter()
        .filter(|s| s.t_s > from && s.t_s <= to)
        .collect()
}

/// Prints the summary; whether every criterion held.
fn summary(samples: &[Sample], knobs: &Knobs, totals: &Totals) -> bool {
    let secs = knobs.secs as f64;
    let step = knobs.sample_secs as f64;
    let fifth = secs / 6.0; // "5 minutes" of 30
    let minute = (secs / 30.0).max(step); // at least one sample
    let mark = secs / 3.0; // "minute 10" of 30
    let last_t = samples.last().map_or(0.0, |s| s.t_s);
    let first = in_range(samples, 0.0, fifth);
    let last = in_range(samples, last_t - fifth, last_t);
    let at_mark = in_range(samples, mark - minute / 2.0, mark + minute / 2.0);
    let at_end = in_range(samples, last_t - minute, last_t);
    let tail = in_range(samples, mark, last_t);

    println!();
    println!(
        "soak summary: {} s, offered {}/s, {} fingerprints, {} connections",
        knobs.secs, knobs.rate, knobs.fingerprints, knobs.connections
    );
    println!(
        "| figure | first {:.0} min | last {:.0} min | at min {:.0} | last {:.1} min | slope over the last {:.0} min, per hour |",
        fifth / 60.0,
        fifth / 60.0,
        mark / 60.0,
        minute / 60.0,
        (last_t - mark) / 60.0
    );
    println!("|---|---:|---:|---:|---:|---:|");
    type Figure = (&'static str, fn(&Sample) -> f64);
    let figures: [Figure; 8] = [
        ("RSS MiB", |s| s.rss_mib),
        ("open fds", |s| s.fds),
        ("tokio tasks", |s| s.tasks),
        ("OS threads", |s| s.threads),
        ("open incidents", |s| s.open_incidents),
        ("alerts/s", |s| s.alerts_per_s),
        ("p99 ms (window)", |s| s.p99_ms),
        ("server CPU %", |s| s.server_cpu_pct),
    ];
    for (name, f) in figures {
        println!(
            "| {name} | {:.1} | {:.1} | {:.1} | {:.1} | {:+.2} |",
            mean(&first, f),
            mean(&last, f),
            mean(&at_mark, f),
            mean(&at_end, f),
            slope_per_hour(&tail, f),
        );
    }
    let mut all: Vec<Duration> = totals.latencies.clone();
    all.sort_unstable();
    let mut ops: Vec<Duration> = totals.op_latencies.clone();
    ops.sort_unstable();
    let achieved = totals.ok as f64 / totals.elapsed.as_secs_f64();
    println!(
        "whole run: {} alerts ok ({achieved:.1}/s of {} offered), {} errors, new {} / resolved {} / repeat {}, \
         p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms; operator {} requests \
         (404/409 {}, errors {}, p99 {:.1} ms); peak RSS {:.1} MiB",
        totals.ok,
        knobs.rate,
        totals.errors,
        totals.kinds[1],
        totals.kinds[2],
        totals.kinds[0],
        ms(percentile(&all, 0.50)),
        ms(percentile(&all, 0.99)),
        ms(percentile(&all, 0.999)),
        ms(all.last().copied().unwrap_or_default()),
        totals.ops,
        totals.op_conflicts,
        totals.op_errors,
        ms(percentile(&ops, 0.99)),
        totals.peak_rss_mib,
    );

    let rss = (mean(&at_mark, |s| s.rss_mib), mean(&at_end, |s| s.rss_mib));
    let fds = (mean(&at_mark, |s| s.fds), mean(&at_end, |s| s.fds));
    let tasks = (mean(&at_mark, |s| s.tasks), mean(&at_end, |s| s.tasks));
    let threads = (mean(&at_mark, |s| s.threads), mean(&at_end, |s| s.threads));
    let task_bound = tasks.0 * 0.05 + 100.0;
    let checks = [
        (
            format!(
                "RSS from minute {:.0} to the end: {:.1} -> {:.1} MiB ({:+.1} %), bound +10 %",
                mark / 60.0,
                rss.0,
                rss.1,
                (rss.1 / rss.0 - 1.0) * 100.0
            ),
            rss.1 <= rss.0 * 1.10,
        ),
        (
            format!(
                "open fds: {:.1} -> {:.1} ({:+.1}), bound +10",
                fds.0,
                fds.1,
                fds.1 - fds.0
            ),
            fds.1 - fds.0 <= 10.0,
        ),
        (
            format!(
                "tokio tasks: {:.0} -> {:.0} ({:+.0}), bound +{task_bound:.0} (5 % + 100)",
                tasks.0,
                tasks.1,
                tasks.1 - tasks.0
            ),
            tasks.1.is_finite() && tasks.1 - tasks.0 <= task_bound,
        ),
        (
            format!(
                "OS threads: {:.1} -> {:.1} ({:+.1}), bound +16",
                threads.0,
                threads.1,
                threads.1 - threads.0
            ),
            threads.1 - threads.0 <= 16.0,
        ),
        (
            format!(
                "ingest: {} errors, {achieved:.1} alerts/s of {} offered (bound: 0 errors, >= 95 %)",
                totals.errors, knobs.rate
            ),
            totals.errors == 0 && achieved >= 0.95 * knobs.rate as f64,
        ),
    ];
    let mut pass = true;
    for (what, ok) in &checks {
        println!("{} {what}", if *ok { "ok  " } else { "FAIL" });
        pass &= ok;
    }
    println!("soak {}", if pass { "PASSED" } else { "FAILED" });
    pass
}

#[derive(Default)]
struct Totals {
    ok: u64,
    errors: u64,
    kinds: [u64; 3],
    ops: u64,
    op_conflicts: u64,
    op_errors: u64,
    latencies: Vec<Duration>,
    op_latencies: Vec<Duration>,
    elapsed: Duration,
    peak_rss_mib: f64,
}

// ---------------------------------------------------------------- main

async fn drop_postgres_database(url: &str) {
    use sqlx::Connection;
    let name = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    if let Ok(mut conn) = sqlx::PgConnection::connect(&support::test_database_url()).await {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

fn csv_path(target: Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("soak")
        .join(format!("soak-{}.csv", target.name()))
}

async fn soak(target: Target, knobs: Knobs) -> bool {
    let lim = Path::new(env!("CARGO_BIN_EXE_lim"));
    let (_dir, url, postgres) = match target {
        Target::LimSqlite => {
            let (dir, url) = support::temp_sqlite_url();
            (Some(dir), url, None)
        }
        Target::LimPostgres => {
            let url = support::fresh_postgres_url().await;
            (None, url.clone(), Some(url))
        }
    };
    let process = LimProcess::start(lim, &url, None).await;
    let pid = process.pid().expect("lim running");
    let base = process.base.clone();
    println!(
        "soak target={} pid={pid} base={base} secs={} rate={} connections={} fingerprints={} \
         sample_secs={} csv={}",
        target.name(),
        knobs.secs,
        knobs.rate,
        knobs.connections,
        knobs.fingerprints,
        knobs.sample_secs,
        csv_path(target).display()
    );
    let path = csv_path(target);
    std::fs::create_dir_all(path.parent().unwrap()).expect("target/soak");
    let mut csv = std::fs::File::create(&path).expect("create the CSV");
    writeln!(csv, "{CSV_HEADER}").expect("write the CSV");

    let times = Arc::new(Times::for_run(knobs.secs));
    let window = Arc::new(Mutex::new(Window::default()));
    let start = Instant::now();
    let end = start + Duration::from_secs(knobs.secs);
    let load = tokio::spawn(drive(
        base.clone(),
        knobs.clone(),
        times,
        window.clone(),
        start,
        end,
    ));
    let operator = tokio::spawn(operate(base.clone(), window.clone(), end));

    let scraper = reqwest::Client::new();
    let mut samples: Vec<Sample> = Vec::new();
    let mut totals = Totals::default();
    println!("{TABLE_HEADER}");
    let mut cpu0 = cpu_time(pid);
    let mut t0 = start;
    let mut k = 1;
    loop {
        let at = start + Duration::from_secs(knobs.sample_secs * k);
        // A sample at the very end would see the load's connections closing.
        if at >= end {
            break;
        }
        tokio::time::sleep_until(at.into()).await;
        k += 1;
        let now = Instant::now();
        let w = std::mem::take(&mut *window.lock().unwrap());
        let cpu = cpu_time(pid);
        let (tasks, open_incidents) = scrape(&scraper, &base).await;
        let (rss, hwm) = rss_kib(pid);
        let elapsed = now.duration_since(t0).as_secs_f64();
        let mut latencies = w.latencies;
        latencies.sort_unstable();
        let mut op_latencies = w.op_latencies;
        op_latencies.sort_unstable();
        let sample = Sample {
            t_s: now.duration_since(start).as_secs_f64().round(),
            rss_mib: rss as f64 / 1024.0,
            fds: open_fds(pid),
            threads: proc_status_field(pid, "Threads:"),
            tasks,
            open_incidents,
            alerts_per_s: w.ok as f64 / elapsed,
            p50_ms: ms(percentile(&latencies, 0.50)),
            p99_ms: ms(percentile(&latencies, 0.99)),
            max_ms: ms(latencies.last().copied().unwrap_or_default()),
            errors: w.errors,
            new: w.kinds[Kind::New as usize],
            resolved: w.kinds[Kind::Resolve as usize],
            repeats: w.kinds[Kind::Repeat as usize],
            ops: w.ops,
            op_conflicts: w.op_conflicts,
            op_errors: w.op_errors,
            op_p99_ms: ms(percentile(&op_latencies, 0.99)),
            server_cpu_pct: cpu.saturating_sub(cpu0).as_secs_f64() / elapsed * 100.0,
            load1: load1(),
        };
        cpu0 = cpu;
        t0 = now;
        println!("{}", sample.row());
        writeln!(csv, "{}", sample.csv()).expect("write the CSV");
        totals.ok += w.ok;
        totals.errors += w.errors;
        for (total, n) in totals.kinds.iter_mut().zip(w.kinds) {
            *total += n;
        }
        totals.ops += w.ops;
        totals.op_conflicts += w.op_conflicts;
        totals.op_errors += w.op_errors;
        totals.latencies.extend(latencies);
        totals.op_latencies.extend(op_latencies);
        totals.peak_rss_mib = hwm as f64 / 1024.0;
        samples.push(sample);
    }
    load.await.expect("load");
    operator.await.expect("operator");
    // What the last partial window held (requests due before the end that
    // answered after the last sample) counts in the totals.
    let w = std::mem::take(&mut *window.lock().unwrap());
    totals.ok += w.ok;
    totals.errors += w.errors;
    for (total, n) in totals.kinds.iter_mut().zip(w.kinds) {
        *total += n;
    }
    totals.latencies.extend(w.latencies);
    totals.elapsed = start.elapsed();
    csv.flush().expect("write the CSV");
    process.kill9().await;
    if let Some(url) = postgres {
        drop_postgres_database(&url).await;
    }
    println!("samples written to {}", path.display());
    summary(&samples, &knobs, &totals)
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    let target = Target::from_env();
    let knobs = Knobs::from_env();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let pass = rt.block_on(soak(target, knobs));
    if !pass {
        std::process::exit(1);
    }
}
