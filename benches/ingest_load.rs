//! End-to-end ingest load benchmark, lim against Prometheus Alertmanager side
//! by side in one run, on Prometheus' push endpoint `POST /api/v2/alerts`
//! (an array of Alertmanager API v2 "postable alerts": labels, annotations,
//! `startsAt`, `endsAt`; the same bytes go to both servers).
//!
//! Targets (`LIM_BENCH_TARGETS`, default all three):
//!
//! * `lim-sqlite`: the release `lim serve` (`env!("CARGO_BIN_EXE_lim")`, which
//!   `cargo bench` builds) on a fresh SQLite file (WAL, fsynced before each
//!   answer: `src/store/group_sync.rs`);
//! * `lim-postgres`: the same on a fresh database on `TEST_DATABASE_URL`
//!   (dropped afterwards);
//! * `alertmanager`: `/usr/bin/prometheus-alertmanager` (Debian's
//!   `prometheus-alertmanager`, 0.25 on Debian 12), started here with a
//!   minimal config (one receiver that sends nothing), its own storage
//!   folder, a free loopback port and clustering off; in memory only.
//!   Without the binary its rows say how to install it.
//!
//! Every lim 2xx is durable (the alert and its incident change committed
//! before the answer); nothing here changes that: lim runs on its defaults.
//!
//! Modes (`LIM_BENCH_MODES`, default all four). Each (target, mode) gets a
//! fresh server and store: the 5,000 fingerprints are created first (in
//! batches of 100), then the mode's own load runs for a 2 s warm-up and
//! for the measured `LIM_BENCH_SECONDS`:
//!
//! * `single`: closed loop, N connections, each POSTing one alert per
//!   request over the 5,000 fingerprints (all repeats of open incidents
//!   after the warm-up, which is the steady state of a Prometheus push);
//! * `batch`: the same with 100 alerts per request (alerts/s counts
//!   alerts; latency is per request);
//! * `mixed`: one alert per request, chosen in stated proportions
//!   (`LIM_BENCH_MIX`, default `80,10,10`): a repeat of one of the 5,000,
//!   a new fingerprint (a new incident), or a resolve (`endsAt` in the past)
//!   of a fingerprint this connection created earlier; the counts sent are
//!   printed;
//! * `rate`: open loop at a fixed offered rate (`LIM_BENCH_RATE`, default
//!   10,000 alerts/s, one alert per request): request k is due at
//!   start + k/rate whatever the answers, taken by whichever of the N
//!   connections is free, and its latency runs from its due time, not from
//!   when it was sent, so a stalled server is charged for the requests
//!   that queued behind it (no coordinated omission). `lag` is how late
//!   requests left (tokio's timer is 1 ms coarse, so about 1 ms at the
//!   median, plus queueing behind busy connections) and `service` the time
//!   from the send to the answer; both are printed besides.
//!
//! The load generator is a minimal HTTP/1.1 client on keep-alive TCP
//! connections (one request in flight per connection, `TCP_NODELAY`), so it
//! takes little of the two cores it shares with the server. Each line
//! reports alerts/s of 2xx answers, errors, latency p50/p99/p99.9/max
//! (client side), the server's RSS and peak RSS from `/proc`, the CPU the
//! server and the generator used over the measured window (100 % = one
//! core), and the 1-minute load average when the row started; for lim
//! also its group commits over the window from `/metrics` (commits/s,
//! writes per commit, mean commit time). The end is
//! a table with lim's throughput as a ratio of Alertmanager's, and the
//! targets of issue 8 checked.
//!
//! Run: `cargo bench --bench ingest_load`
//! (`apt-get install -y prometheus-alertmanager` first for the side by side.)
//! Knobs (environment): `LIM_BENCH_TARGETS`
//! (`lim-sqlite,lim-postgres,alertmanager`), `LIM_BENCH_MODES`
//! (`single,batch,mixed,rate`), `LIM_BENCH_SECONDS` (10),
//! `LIM_BENCH_CONNECTIONS` (32), `LIM_BENCH_FINGERPRINTS` (5000),
//! `LIM_BENCH_RATE` (10000), `LIM_BENCH_BATCH` (100), `LIM_BENCH_MIX`
//! (`repeat,new,resolved` percentages, `80,10,10`), `LIM_BENCH_RATE_MIXED`
//! (`1`: `rate` offers the `mixed` proportions, so the server's CPU at a
//! fixed load compares two builds better than a closed loop's
//! throughput does), `LIM_BENCH_LIM` (a lim binary to run instead of this
//! build's, for A/B runs), `LIM_BENCH_BACKENDS`
//! (`sqlite,postgres`: the lim targets when `LIM_BENCH_TARGETS` is unset),
//! `LIM_BENCH_ALERTMANAGER` (its binary), `TEST_DATABASE_URL` (the
//! PostgreSQL server; a fresh database is created on it).

#[path = "../tests/lim_process/mod.rs"]
mod lim_process;
mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use incident_actors::time::Timestamp;
use lim_process::LimProcess;
use measure::{env_or, ms, percentile, rss_kib};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

const ENDPOINT: &str = "/api/v2/alerts";
const DEFAULT_ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

// ---------------------------------------------------------------- client

/// One keep-alive HTTP/1.1 connection with one request in flight:
/// writes the request in one `write_all`, reads the head, then the body by
/// `Content-Length` or chunked encoding. Reconnects after an error or a
/// `Connection: close`.
struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    head: Vec<u8>,
    request: Vec<u8>,
    buf: Vec<u8>,
}

impl Conn {
    fn new(addr: SocketAddr) -> Conn {
        Conn {
            addr,
            stream: None,
            head: format!(
                "POST {ENDPOINT} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n"
            )
            .into_bytes(),
            request: Vec::with_capacity(64 * 1024),
            buf: Vec::with_capacity(8 * 1024),
        }
    }

    /// POSTs `body` to [`ENDPOINT`]; the response's status code.
    async fn post(&mut self, body: &[u8]) -> io::Result<u16> {
        let result = self.exchange(body).await;
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    async fn exchange(&mut self, body: &[u8]) -> io::Result<u16> {
        if self.stream.is_none() {
            let s = TcpStream::connect(self.addr).await?;
            s.set_nodelay(true)?;
            self.stream = Some(s);
            self.buf.clear();
        }
        self.request.clear();
        self.request.extend_from_slice(&self.head);
        self.request
            .extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        self.request.extend_from_slice(body);
        let stream = self.stream.as_mut().expect("connected");
        stream.write_all(&self.request).await?;

        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i + 4;
            }
            read_more(stream, &mut self.buf).await?;
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .map_err(|_| bad("response head is not UTF-8"))?;
        let status: u16 = head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status code"))?;
        let (mut length, mut chunked, mut close) = (None, false, false);
        for line in head.split("\r\n").skip(1) {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse::<usize>().ok();
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = value.eq_ignore_ascii_case("chunked");
            } else if name.eq_ignore_ascii_case("connection") {
                close = value.eq_ignore_ascii_case("close");
            }
        }
        self.buf.drain(..head_end);
        if chunked {
            loop {
                let line_end = loop {
                    if let Some(i) = find(&self.buf, b"\r\n") {
                        break i;
                    }
                    read_more(stream, &mut self.buf).await?;
                };
                let size_text =
                    std::str::from_utf8(&self.buf[..line_end]).map_err(|_| bad("chunk size"))?;
                let size = usize::from_str_radix(size_text.split(';').next().unwrap().trim(), 16)
                    .map_err(|_| bad("chunk size"))?;
                if size == 0 {
                    // Trailers (none expected) end with an empty line.
                    while find(&self.buf[line_end..], b"\r\n\r\n").is_none() {
                        read_more(stream, &mut self.buf).await?;
                    }
                    let end = line_end + find(&self.buf[line_end..], b"\r\n\r\n").unwrap() + 4;
                    self.buf.drain(..end);
                    break;
                }
                let need = line_end + 2 + size + 2;
                while self.buf.len() < need {
                    read_more(stream, &mut self.buf).await?;
                }
                self.buf.drain(..need);
            }
        } else if let Some(length) = length {
            while self.buf.len() < length {
                read_more(stream, &mut self.buf).await?;
            }
            self.buf.drain(..length);
        } else if status >= 200 && status != 204 && status != 304 {
            // No length: the body runs to the end of the connection.
            while stream.read_buf(&mut self.buf).await? > 0 {}
            close = true;
        }
        if close {
            self.stream = None;
        }
        Ok(status)
    }
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> io::Result<()> {
    buf.reserve(8 * 1024);
    if stream.read_buf(buf).await? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "server closed the connection",
        ));
    }
    Ok(())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn bad(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

// ---------------------------------------------------------------- load

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Single,
    Batch,
    Mixed,
    Rate,
}

impl Mode {
    fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "single" => Mode::Single,
            "batch" => Mode::Batch,
            "mixed" => Mode::Mixed,
            "rate" => Mode::Rate,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Mode::Single => "single",
            Mode::Batch => "batch",
            Mode::Mixed => "mixed",
            Mode::Rate => "rate",
        }
    }
}

#[derive(Clone, Debug)]
struct Knobs {
    seconds: u64,
    connections: usize,
    fingerprints: usize,
    rate: u64,
    batch: usize,
    /// Percentages of repeat, new and resolved alerts in `mixed`.
    mix: [u32; 3],
    /// `rate` offers the `mixed` proportions instead of repeats only.
    rate_mixed: bool,
}

impl Knobs {
    fn from_env() -> Knobs {
        let mix: Vec<u32> = std::env::var("LIM_BENCH_MIX")
            .unwrap_or_else(|_| "80,10,10".into())
            .split(',')
            .filter_map(|p| p.trim().parse().ok())
            .collect();
        let mix = match mix[..] {
            [repeat, new, resolved] if repeat + new + resolved == 100 => [repeat, new, resolved],
            _ => panic!("LIM_BENCH_MIX is three percentages adding up to 100: repeat,new,resolved"),
        };
        Knobs {
            seconds: env_or("LIM_BENCH_SECONDS", 10),
            connections: env_or("LIM_BENCH_CONNECTIONS", 32).max(1),
            fingerprints: env_or("LIM_BENCH_FINGERPRINTS", 5_000).max(1),
            rate: env_or("LIM_BENCH_RATE", 10_000).max(1),
            batch: env_or("LIM_BENCH_BATCH", 100).max(1),
            mix,
            rate_mixed: env_or("LIM_BENCH_RATE_MIXED", 0) != 0,
        }
    }
}

/// The timestamps every body of one (target, mode) run carries, fixed for
/// the run so a repeat is byte-identical: it started a minute ago and is
/// firing for an hour (or resolved a second ago).
#[derive(Clone)]
struct Times {
    starts: String,
    firing_ends: String,
    resolved_ends: String,
}

impl Times {
    fn now() -> Times {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis() as i64;
        let at = |offset_ms: i64| Timestamp(now + offset_ms).to_rfc3339();
        Times {
            starts: at(-60_000),
            firing_ends: at(3_600_000),
            resolved_ends: at(-1_000),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Repeat,
    New,
    Resolved,
}

/// What one connection needs to produce its next body.
struct Generator {
    mode: Mode,
    knobs: Knobs,
    times: Arc<Times>,
    /// The next index of this connection (it takes c, c + N, c + 2N, …).
    i: usize,
    step: usize,
    rng: u64,
    /// Fingerprints this connection created (mixed mode), oldest first.
    created: VecDeque<u64>,
    next_new: Arc<AtomicU64>,
    counts: [u64; 3],
    /// The kind of the last body written (an index of `counts`).
    last: usize,
}

impl Generator {
    fn new(
        mode: Mode,
        knobs: &Knobs,
        times: Arc<Times>,
        c: usize,
        next_new: Arc<AtomicU64>,
    ) -> Self {
        let step = match mode {
            Mode::Batch => knobs.connections * knobs.batch,
            _ => knobs.connections,
        };
        Generator {
            mode,
            i: match mode {
                Mode::Batch => c * knobs.batch,
                _ => c,
            },
            step,
            knobs: knobs.clone(),
            times,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (c as u64 + 1).wrapping_mul(0xBF58_476D_1CE4_E5B9),
            created: VecDeque::new(),
            next_new,
            counts: [0; 3],
            last: 0,
        }
    }

    /// One of the fingerprints, spread so consecutive indexes hit
    /// different incidents (2654435761 is odd and prime to 5^k, so the first
    /// `fingerprints` indexes cover them all when that is 5,000).
    fn spread(&self, i: usize) -> usize {
        (i.wrapping_mul(2_654_435_761)) % self.knobs.fingerprints
    }

    fn random_percent(&mut self) -> u32 {
        // xorshift64*
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        (self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as u32 % 100
    }

    /// Writes the next request body; the number of alerts in it.
    fn next(&mut self, body: &mut Vec<u8>) -> usize {
        body.clear();
        body.push(b'[');
        // The open loop offers either kind of load (`LIM_BENCH_RATE_MIXED`).
        let mode = match self.mode {
            Mode::Rate if self.knobs.rate_mixed => Mode::Mixed,
            mode => mode,
        };
        let alerts = match mode {
            Mode::Single | Mode::Rate => {
                let n = self.spread(self.i);
                self.i += self.step;
                alert(body, &n.to_string(), &self.times, false);
                self.counts[0] += 1;
                1
            }
            Mode::Batch => {
                for k in 0..self.knobs.batch {
                    if k > 0 {
                        body.push(b',');
                    }
                    let n = self.spread(self.i + k);
                    alert(body, &n.to_string(), &self.times, false);
                }
                self.i += self.step;
                self.counts[0] += self.knobs.batch as u64;
                self.knobs.batch
            }
            Mode::Mixed => {
                let r = self.random_percent();
                let [repeat, new, _] = self.knobs.mix;
                let kind = if r < repeat {
                    Kind::Repeat
                } else if r < repeat + new {
                    Kind::New
                } else if self.created.is_empty() {
                    Kind::Repeat
                } else {
                    Kind::Resolved
                };
                self.last = kind as usize;
                match kind {
                    Kind::Repeat => {
                        let n = self.spread(self.i);
                        self.i += self.step;
                        alert(body, &n.to_string(), &self.times, false);
                        self.counts[0] += 1;
                    }
                    Kind::New => {
                        let id = self.next_new.fetch_add(1, Ordering::Relaxed);
                        self.created.push_back(id);
                        alert(body, &format!("new-{id}"), &self.times, false);
                        self.counts[1] += 1;
                    }
                    Kind::Resolved => {
                        let id = self.created.pop_front().expect("not empty");
                        alert(body, &format!("new-{id}"), &self.times, true);
                        self.counts[2] += 1;
                    }
                }
                1
            }
        };
        body.push(b']');
        alerts
    }
}

/// Appends one postable alert, as Prometheus sends it.
fn alert(body: &mut Vec<u8>, n: &str, times: &Times, resolved: bool) {
    let ends = if resolved {
        &times.resolved_ends
    } else {
        &times.firing_ends
    };
    body.extend_from_slice(
        format!(
            r#"{{"labels":{{"alertname":"HighLatency","service":"chat","model":"gpt-4o","severity":"critical","n":"{n}"}},"annotations":{{"summary":"p99 latency 4.2s"}},"startsAt":"{}","endsAt":"{ends}"}}"#,
            times.starts
        )
        .as_bytes(),
    );
}

#[derive(Default)]
struct Report {
    requests: u64,
    alerts: u64,
    errors: u64,
    /// Alerts due (rate mode) but not sent before the run's hard end.
    unsent: u64,
    elapsed: Duration,
    latencies: Vec<Duration>,
    /// Rate mode: from the due time to the send, and from the send to the answer.
    lags: Vec<Duration>,
    service: Vec<Duration>,
    counts: [u64; 3],
    /// Mixed mode: latencies by kind (repeat, new, resolved).
    by_kind: [Vec<Duration>; 3],
}

impl Report {
    fn merge(&mut self, other: Report) {
        self.requests += other.requests;
        self.alerts += other.alerts;
        self.errors += other.errors;
        self.unsent += other.unsent;
        self.latencies.extend(other.latencies);
        self.lags.extend(other.lags);
        self.service.extend(other.service);
        for (k, latencies) in other.by_kind.into_iter().enumerate() {
            self.counts[k] += other.counts[k];
            self.by_kind[k].extend(latencies);
        }
    }
}

/// Closed loop: every connection sends its next request when the previous
/// answer arrives, for `duration`.
async fn closed_loop(
    addr: SocketAddr,
    mode: Mode,
    knobs: &Knobs,
    times: Arc<Times>,
    next_new: Arc<AtomicU64>,
    duration: Duration,
) -> Report {
    let start = Instant::now();
    let until = start + duration;
    let mut tasks = Vec::new();
    for c in 0..knobs.connections {
        let mut generator = Generator::new(mode, knobs, times.clone(), c, next_new.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut body = Vec::with_capacity(64 * 1024);
            let mut r = Report {
                latencies: Vec::with_capacity(200_000),
                ..Report::default()
            };
            while Instant::now() < until {
                let alerts = generator.next(&mut body);
                let t = Instant::now();
                match conn.post(&body).await {
                    Ok(status) if (200..300).contains(&status) => {
                        let latency = t.elapsed();
                        r.latencies.push(latency);
                        if mode == Mode::Mixed {
                            r.by_kind[generator.last].push(latency);
                        }
                        r.requests += 1;
                        r.alerts += alerts as u64;
                    }
                    _ => r.errors += 1,
                }
            }
            r.counts = generator.counts;
            r
        }));
    }
    let mut report = Report::default();
    for t in tasks {
        report.merge(t.await.expect("load task"));
    }
    report.elapsed = start.elapsed();
    report
}

/// Open loop: request k is due at start + k / rate; a free connection takes
/// the next due request, waits for its time and sends it; latency runs from
/// the due time. Requests still unsent a second after the run's end are
/// counted, not sent.
async fn open_loop(
    addr: SocketAddr,
    knobs: &Knobs,
    times: Arc<Times>,
    next_new: Arc<AtomicU64>,
    duration: Duration,
) -> Report {
    let start = Instant::now();
    let total = knobs.rate * duration.as_secs().max(1);
    let period = 1.0 / knobs.rate as f64;
    let hard_end = start + duration + Duration::from_secs(1);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..knobs.connections {
        let mut generator = Generator::new(Mode::Rate, knobs, times.clone(), c, next_new.clone());
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut body = Vec::with_capacity(1024);
            let mut r = Report {
                latencies: Vec::with_capacity(200_000),
                lags: Vec::with_capacity(200_000),
                service: Vec::with_capacity(200_000),
                ..Report::default()
            };
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= total {
                    break;
                }
                let due = start + Duration::from_secs_f64(k as f64 * period);
                if Instant::now() > hard_end {
                    r.unsent += 1;
                    continue;
                }
                tokio::time::sleep_until(due.into()).await;
                let alerts = generator.next(&mut body);
                let sent = Instant::now();
                match conn.post(&body).await {
                    Ok(status) if (200..300).contains(&status) => {
                        r.latencies.push(due.elapsed());
                        r.lags.push(sent.saturating_duration_since(due));
                        r.service.push(sent.elapsed());
                        r.requests += 1;
                        r.alerts += alerts as u64;
                    }
                    _ => r.errors += 1,
                }
            }
            r.counts = generator.counts;
            r
        }));
    }
    let mut report = Report::default();
    for t in tasks {
        report.merge(t.await.expect("load task"));
    }
    report.elapsed = start.elapsed();
    report
}

/// Creates every one of the fingerprints (firing), in batches over the
/// connections; panics if the server refuses.
async fn prime(addr: SocketAddr, knobs: &Knobs, times: &Times) {
    let chunks: Vec<Vec<usize>> = (0..knobs.fingerprints)
        .collect::<Vec<_>>()
        .chunks(100)
        .map(<[usize]>::to_vec)
        .collect();
    let chunks = Arc::new(std::sync::Mutex::new(chunks));
    let mut tasks = Vec::new();
    for _ in 0..knobs.connections.min(8) {
        let chunks = chunks.clone();
        let times = times.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            let mut body = Vec::new();
            loop {
                let Some(chunk) = chunks.lock().unwrap().pop() else {
                    break;
                };
                body.clear();
                body.push(b'[');
                for (k, n) in chunk.iter().enumerate() {
                    if k > 0 {
                        body.push(b',');
                    }
                    alert(&mut body, &n.to_string(), &times, false);
                }
                body.push(b']');
                let status = conn.post(&body).await.expect("prime request");
                assert!((200..300).contains(&status), "prime answered {status}");
            }
        }));
    }
    for t in tasks {
        t.await.expect("prime task");
    }
}

// ---------------------------------------------------------------- servers

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    LimSqlite,
    LimPostgres,
    Alertmanager,
}

impl Target {
    fn parse(s: &str) -> Option<Target> {
        Some(match s {
            "lim-sqlite" => Target::LimSqlite,
            "lim-postgres" => Target::LimPostgres,
            "alertmanager" => Target::Alertmanager,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Target::LimSqlite => "lim-sqlite",
            Target::LimPostgres => "lim-postgres",
            Target::Alertmanager => "alertmanager",
        }
    }
}

/// A running server under test; dropping it kills it.
enum Server {
    Lim {
        process: LimProcess,
        _dir: Option<tempfile::TempDir>,
        postgres: Option<String>,
    },
    Alertmanager {
        child: Child,
        _dir: tempfile::TempDir,
    },
}

fn alertmanager_binary() -> PathBuf {
    std::env::var_os("LIM_BENCH_ALERTMANAGER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ALERTMANAGER))
}

impl Server {
    /// Starts a fresh server; `Err` says why it cannot (Alertmanager missing).
    async fn start(target: Target) -> Result<(Server, SocketAddr), String> {
        // Another build of lim beside this one's (A/B runs).
        let lim = std::env::var_os("LIM_BENCH_LIM")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_lim")));
        let lim = lim.as_path();
        let server = match target {
            Target::LimSqlite => {
                let (dir, url) = support::temp_sqlite_url();
                Server::Lim {
                    process: LimProcess::start(lim, &url, None).await,
                    _dir: Some(dir),
                    postgres: None,
                }
            }
            Target::LimPostgres => {
                let url = support::fresh_postgres_url().await;
                Server::Lim {
                    process: LimProcess::start(lim, &url, None).await,
                    _dir: None,
                    postgres: Some(url),
                }
            }
            Target::Alertmanager => return start_alertmanager().await,
        };
        let Server::Lim { process, .. } = &server else {
            unreachable!()
        };
        let addr = process
            .base
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| format!("lim's address {}: {e}", process.base))?;
        Ok((server, addr))
    }

    fn pid(&self) -> u32 {
        match self {
            Server::Lim { process, .. } => process.pid(),
            Server::Alertmanager { child, .. } => child.id(),
        }
        .expect("server running")
    }

    async fn stop(self) {
        match self {
            Server::Lim {
                process, postgres, ..
            } => {
                process.kill9().await;
                if let Some(url) = postgres {
                    drop_postgres_database(&url).await;
                }
            }
            Server::Alertmanager { mut child, _dir } => {
                let _ = child.start_kill();
                let _ = child.wait().await;
            }
        }
    }
}

async fn start_alertmanager() -> Result<(Server, SocketAddr), String> {
    let binary = alertmanager_binary();
    if !binary.exists() {
        return Err(format!(
            "{} not found: install Debian's prometheus-alertmanager \
             (apt-get install -y prometheus-alertmanager)",
            binary.display()
        ));
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(
        &config,
        "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n",
    )
    .map_err(|e| e.to_string())?;
    let storage = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| e.to_string())?
        .port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let child = Command::new(&binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--storage.path={}", storage.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--cluster.listen-address=")
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
    let server = Server::Alertmanager { child, _dir: dir };
    let client = reqwest::Client::new();
    let ready = format!("http://{addr}/-/ready");
    for _ in 0..300 {
        if let Ok(r) = client.get(&ready).send().await {
            if r.status().is_success() {
                return Ok((server, addr));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
    Err("alertmanager did not become ready within 30 s".into())
}

async fn drop_postgres_database(url: &str) {
    use sqlx::Connection;
    let name = url
        .split('?')
        .next()
        .and_then(|u| u.rsplit('/').next())
        .unwrap_or_default()
        .to_string();
    let server = support::test_database_url();
    if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

// ---------------------------------------------------------------- measure

/// CPU time (user + system) a process has used, from `/proc/<pid>/stat`.
fn cpu_time(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the `(comm)`, which may hold spaces: state is field 3,
    // utime and stime are fields 14 and 15.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // In clock ticks, USER_HZ, which is 100 on Linux whatever the kernel's HZ.
    Duration::from_secs_f64((ticks(11) + ticks(12)) as f64 / 100.0)
}

/// lim's group-commit counters from `/metrics`: commits, writes and
/// seconds spent committing (zeros for a server without them).
async fn commit_counters(addr: SocketAddr) -> [f64; 3] {
    let text = match reqwest::get(format!("http://{addr}/metrics")).await {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    [
        value("lim_persistence_commit_seconds_count "),
        value("lim_persistence_batch_size_sum "),
        value("lim_persistence_commit_seconds_sum "),
    ]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".into())
}

/// One measured (target, mode).
struct Row {
    target: Target,
    mode: Mode,
    alerts_per_s: f64,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    errors: u64,
    unsent: u64,
    rss_mib: f64,
}

async fn run(target: Target, mode: Mode, knobs: &Knobs) -> Result<Row, String> {
    let load1 = load_average();
    let (server, addr) = Server::start(target).await?;
    let pid = server.pid();
    let times = Arc::new(Times::now());
    let next_new = Arc::new(AtomicU64::new(0));
    prime(addr, knobs, &times).await;
    let load = |duration| {
        let (times, next_new) = (times.clone(), next_new.clone());
        async move {
            match mode {
                Mode::Rate => open_loop(addr, knobs, times, next_new, duration).await,
                _ => closed_loop(addr, mode, knobs, times, next_new, duration).await,
            }
        }
    };
    load(Duration::from_secs(2)).await;
    let is_lim = target != Target::Alertmanager;
    let commits0 = if is_lim {
        commit_counters(addr).await
    } else {
        [0.0; 3]
    };
    let (server_cpu0, client_cpu0) = (cpu_time(&pid.to_string()), cpu_time("self"));
    let mut r = load(Duration::from_secs(knobs.seconds)).await;
    let server_cpu = cpu_time(&pid.to_string()).saturating_sub(server_cpu0);
    let client_cpu = cpu_time("self").saturating_sub(client_cpu0);
    let commits1 = if is_lim {
        commit_counters(addr).await
    } else {
        [0.0; 3]
    };
    let (rss, hwm) = rss_kib(pid);
    server.stop().await;

    r.latencies.sort_unstable();
    r.lags.sort_unstable();
    r.service.sort_unstable();
    let secs = r.elapsed.as_secs_f64();
    let alerts_per_s = r.alerts as f64 / secs;
    let per_request = match mode {
        Mode::Batch => knobs.batch,
        _ => 1,
    };
    let mut line = format!(
        "ingest_load target={} mode={} endpoint={ENDPOINT} connections={} fingerprints={} \
         alerts_per_request={per_request} seconds={} alerts_per_s={alerts_per_s:.0} \
         requests={} alerts={} errors={} p50_ms={:.2} p99_ms={:.2} p999_ms={:.2} max_ms={:.2} \
         rss_mib={:.1} peak_rss_mib={:.1} server_cpu_pct={:.0} client_cpu_pct={:.0} load1={load1}",
        target.name(),
        mode.name(),
        knobs.connections,
        knobs.fingerprints,
        knobs.seconds,
        r.requests,
        r.alerts,
        r.errors,
        ms(percentile(&r.latencies, 0.50)),
        ms(percentile(&r.latencies, 0.99)),
        ms(percentile(&r.latencies, 0.999)),
        ms(r.latencies.last().copied().unwrap_or_default()),
        rss as f64 / 1024.0,
        hwm as f64 / 1024.0,
        server_cpu.as_secs_f64() / secs * 100.0,
        client_cpu.as_secs_f64() / secs * 100.0,
    );
    if is_lim {
        let [commits, writes, seconds] = [0, 1, 2].map(|i| commits1[i] - commits0[i]);
        line.push_str(&format!(
            " commits_per_s={:.0} writes_per_commit={:.1} commit_ms={:.2}",
            commits / secs,
            writes / commits.max(1.0),
            seconds * 1000.0 / commits.max(1.0),
        ));
    }
    if mode == Mode::Mixed || (mode == Mode::Rate && knobs.rate_mixed) {
        line.push_str(&format!(
            " mix={}/{}/{} repeat={} new={} resolved={}",
            knobs.mix[0], knobs.mix[1], knobs.mix[2], r.counts[0], r.counts[1], r.counts[2]
        ));
        for (name, latencies) in ["repeat", "new", "resolved"].iter().zip(&mut r.by_kind) {
            if latencies.is_empty() {
                continue;
            }
            latencies.sort_unstable();
            let mean = latencies.iter().sum::<Duration>() / latencies.len() as u32;
            line.push_str(&format!(
                " {name}_mean_ms={:.2} {name}_p50_ms={:.2} {name}_p99_ms={:.2}",
                ms(mean),
                ms(percentile(latencies, 0.50)),
                ms(percentile(latencies, 0.99)),
            ));
        }
    }
    if mode == Mode::Rate {
        line.push_str(&format!(
            " offered_per_s={} unsent={} lag_p50_ms={:.2} lag_p99_ms={:.2} \
             service_p50_ms={:.2} service_p99_ms={:.2}",
            knobs.rate,
            r.unsent,
            ms(percentile(&r.lags, 0.50)),
            ms(percentile(&r.lags, 0.99)),
            ms(percentile(&r.service, 0.50)),
            ms(percentile(&r.service, 0.99)),
        ));
    }
    println!("{line}");
    Ok(Row {
        target,
        mode,
        alerts_per_s,
        p50: percentile(&r.latencies, 0.50),
        p99: percentile(&r.latencies, 0.99),
        p999: percentile(&r.latencies, 0.999),
        errors: r.errors,
        unsent: r.unsent,
        rss_mib: rss as f64 / 1024.0,
    })
}

fn summary(rows: &[Row], modes: &[Mode], knobs: &Knobs) {
    println!();
    println!(
        "| mode | target | alerts/s | p50 | p99 | p99.9 | errors | RSS | lim / alertmanager |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    let find = |t: Target, m: Mode| rows.iter().find(|r| r.target == t && r.mode == m);
    for &mode in modes {
        let am = find(Target::Alertmanager, mode);
        for r in rows.iter().filter(|r| r.mode == mode) {
            let ratio = match (r.target, am) {
                // Both are offered the same rate: compare latencies there.
                (_, _) if mode == Mode::Rate => "".to_string(),
                (Target::Alertmanager, _) | (_, None) => "".to_string(),
                (_, Some(am)) => format!("{:.2}", r.alerts_per_s / am.alerts_per_s),
            };
            println!(
                "| {} | {} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms | {} | {:.0} MiB | {ratio} |",
                mode.name(),
                r.target.name(),
                r.alerts_per_s,
                ms(r.p50),
                ms(r.p99),
                ms(r.p999),
                r.errors + r.unsent,
                r.rss_mib,
            );
        }
    }
    println!();
    let verdict = |met: bool| if met { "met" } else { "NOT met" };
    // Issue 8: SQLite at least as fast as Alertmanager on the same load,
    // PostgreSQL at least half as fast, in every closed-loop mode.
    for mode in [Mode::Single, Mode::Batch, Mode::Mixed] {
        let Some(am) = find(Target::Alertmanager, mode) else {
            continue;
        };
        for (target, floor) in [(Target::LimSqlite, 1.0), (Target::LimPostgres, 0.5)] {
            let Some(r) = find(target, mode) else {
                continue;
            };
            let ratio = r.alerts_per_s / am.alerts_per_s;
            println!(
                "target: {} {m} >= {floor} x alertmanager {m}: {} ({:.0} vs {:.0} alerts/s, ratio {ratio:.2})",
                target.name(),
                verdict(ratio >= floor && r.errors == 0 && am.errors == 0),
                r.alerts_per_s,
                am.alerts_per_s,
                m = mode.name(),
            );
        }
    }
    for r in rows.iter().filter(|r| r.mode == Mode::Rate) {
        let kept_up = r.alerts_per_s >= 0.98 * knobs.rate as f64 && r.errors == 0 && r.unsent == 0;
        println!(
            "target: {} p99 < 10 ms at {} alerts/s offered{}: {} (p99 {:.2} ms, achieved {:.0}/s, errors {}, unsent {})",
            r.target.name(),
            knobs.rate,
            if knobs.rate_mixed { " (mixed proportions)" } else { "" },
            verdict(kept_up && r.p99 < Duration::from_millis(10)),
            ms(r.p99),
            r.alerts_per_s,
            r.errors,
            r.unsent
        );
    }
}

fn list<T>(var: &str, default: &str, parse: impl Fn(&str) -> Option<T>, names: &str) -> Vec<T> {
    std::env::var(var)
        .unwrap_or_else(|_| default.to_string())
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .filter_map(|s| {
            let parsed = parse(s);
            if parsed.is_none() {
                eprintln!("{var}: unknown {s:?} ({names})");
            }
            parsed
        })
        .collect()
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing here.
    let knobs = Knobs::from_env();
    let default_targets = std::env::var("LIM_BENCH_BACKENDS")
        .unwrap_or_else(|_| "sqlite,postgres".into())
        .split(',')
        .map(|b| format!("lim-{}", b.trim()))
        .chain(["alertmanager".to_string()])
        .collect::<Vec<_>>()
        .join(",");
    let targets = list(
        "LIM_BENCH_TARGETS",
        &default_targets,
        Target::parse,
        "lim-sqlite, lim-postgres, alertmanager",
    );
    let modes = list(
        "LIM_BENCH_MODES",
        "single,batch,mixed,rate",
        Mode::parse,
        "single, batch, mixed, rate",
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut rows = Vec::new();
        for &mode in &modes {
            for &target in &targets {
                match run(target, mode, &knobs).await {
                    Ok(row) => rows.push(row),
                    Err(why) => println!(
                        "ingest_load target={} mode={} skipped: {why}",
                        target.name(),
                        mode.name()
                    ),
                }
            }
        }
        summary(&rows, &modes, &knobs);
    });
}
