//! The incident list (`GET /v1/incidents`) at 1,000,000 stored incidents:
//! latency of one page of 50, filtered by status and a label, first page and
//! a deep page, newest created and most recently updated first, on SQLite and
//! PostgreSQL.
//!
//! How:
//!
//! * Seed: each backend gets a fresh database (a SQLite file in a temporary
//!   folder; a new database on the PostgreSQL server) opened with
//!   `SqliteStore::open` / `PostgresStore::open`, so the schema is the one the
//!   store's own migrations make. N incidents (`LIM_BENCH_ROWS`) are built
//!   with the domain (`Incident::open`, then `acknowledge` / `resolve`),
//!   spread over a year, ids in creation order, and written through the
//!   store's own group commit (`Store::commit`, 5,000 incidents a batch): the
//!   rows, their postcard snapshots and SQLite's label index
//!   (`incident_labels`) exactly as lim writes them. Timeline events and
//!   alert rows are left out (the list never reads them). About 3 % stay open
//!   (most of the last week's, a few stale older ones); labels are
//!   `alertname`, `metric`, `model` (16, `gpt-4o` ~20 %), `provider` (of the
//!   model), `tenant` (2,000, Zipf: `acme` ~12 %, `globex` ~0.25 %),
//!   `service` (30), `severity`, `region`. PostgreSQL then gets the
//!   `VACUUM ANALYZE` its autovacuum would run after such an insert; SQLite
//!   none (lim never runs `ANALYZE`).
//! * Measure: every shape is asked the way the HTTP handler asks it
//!   (`Store::list_incidents` with `limit` 51, one more than the page, to
//!   know if there is a next page), the deep page with the cursor of the
//!   page before it (`Cursor::after` of its 50th row, as `next_cursor` is
//!   made), reached by walking the pages. After a warm-up (100 runs),
//!   `LIM_BENCH_ITERS` (1,000) timed runs, one at a time; p50, p99, p99.9 and
//!   max per shape. A shape stops early after `LIM_BENCH_SHAPE_SECS` (60)
//!   of timed runs (and its warm-up after a quarter of that): the `runs`
//!   column says how many were timed. Each shape's plan is printed (SQLite `EXPLAIN QUERY
//!   PLAN`, PostgreSQL `EXPLAIN (ANALYZE, BUFFERS)`).
//!
//! Run: `cargo bench --bench list_query`
//! Knobs: `LIM_BENCH_ROWS` (1000000), `LIM_BENCH_BACKENDS`
//! (`sqlite,postgres`), `LIM_BENCH_ITERS` (1000), `LIM_BENCH_DEEP_PAGE`
//! (100), `LIM_BENCH_SHAPE_SECS` (60), `TEST_DATABASE_URL` (the PostgreSQL server, default
//! `postgres://postgres@127.0.0.1:5432/test`), `LIM_BENCH_PLANS` (`0` to not
//! print the plans).

mod measure;
#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use incident_actors::domain::{
    Alert, AlertStatus, Attribution, EscalationPolicy, Fingerprint, Incident, IncidentId,
    IncidentStatus, Interface, Labels,
};
use incident_actors::ports::{
    Cursor, IncidentQuery, IncidentSort, IncidentWrite, StatusFilter, Store, WriteBatch,
};
use incident_actors::time::Timestamp;
use lim::store::{PostgresStore, SqliteStore};
use measure::{env_or, ms, percentile};

const PAGE: u32 = 50;
const BATCH: usize = 5_000;
const WARMUP: usize = 100;
const MINUTE: i64 = 60_000;
const DAY: i64 = 24 * 60 * MINUTE;
/// The newest incident's creation: 2025-06-01T00:00:00Z.
const END: i64 = 1_748_736_000_000;
const SPAN: i64 = 365 * DAY;
/// Incidents created in the last week: mostly still open.
const RECENT: i64 = 7 * DAY;

/// splitmix64: deterministic, so every run seeds the same rows.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Index into `weights`, drawn by weight.
    fn weighted(&mut self, weights: &[u64]) -> usize {
        let total: u64 = weights.iter().sum();
        let mut r = self.below(total);
        for (i, w) in weights.iter().enumerate() {
            if r < *w {
                return i;
            }
            r -= w;
        }
        weights.len() - 1
    }
}

/// (model, provider, weight).
const MODELS: &[(&str, &str, u64)] = &[
    ("gpt-4o", "openai", 20),
    ("gpt-4o-mini", "openai", 15),
    ("claude-sonnet-4", "anthropic", 10),
    ("gpt-4.1", "openai", 8),
    ("claude-haiku-3.5", "anthropic", 6),
    ("gemini-2.5-pro", "google", 6),
    ("gemini-2.5-flash", "google", 5),
    ("llama-3.1-70b", "meta", 5),
    ("llama-3.1-8b", "meta", 4),
    ("o3", "openai", 4),
    ("text-embedding-3-large", "openai", 4),
    ("claude-opus-4", "anthropic", 3),
    ("mistral-large", "mistral", 3),
    ("deepseek-v3", "deepseek", 3),
    ("mixtral-8x22b", "mistral", 2),
    ("command-r-plus", "cohere", 2),
];

/// (alertname, metric).
const ALERTS: &[(&str, &str)] = &[
    ("HighLatencyP99", "latency"),
    ("TimeToFirstTokenHigh", "latency"),
    ("ErrorRateHigh", "error_rate"),
    ("RateLimited429", "error_rate"),
    ("ProviderTimeouts", "error_rate"),
    ("CostBudgetBurn", "cost"),
    ("TokenUsageSpike", "token_usage"),
    ("ContextOverflow", "token_usage"),
    ("HallucinationRateHigh", "hallucination_rate"),
    ("RefusalRateHigh", "refusal_rate"),
    ("EvalScoreDrop", "eval_score"),
    ("EvalRegression", "eval_score"),
];
const ALERT_WEIGHTS: &[u64] = &[20, 8, 18, 10, 6, 5, 8, 3, 5, 5, 7, 5];

const TENANTS: usize = 2_000;
/// Named tenants at these Zipf ranks; the rest are `tenant-NNNN`.
const NAMED_TENANTS: &[(usize, &str)] = &[(0, "acme"), (49, "globex")];

const SERVICES: &[&str] = &[
    "chat",
    "search",
    "copilot",
    "summarize",
    "embeddings",
    "gateway",
    "agents",
    "rag",
    "voice",
    "translate",
    "moderation",
    "evals",
    "billing",
    "support-bot",
    "code-review",
    "ingest",
    "reranker",
    "vision",
    "batch",
    "playground",
    "sql-assistant",
    "email-drafts",
    "classifier",
    "extract",
    "notebook",
    "docs-qa",
    "sales-assist",
    "tts",
    "stt",
    "router",
];
const REGIONS: &[(&str, u64)] = &[
    ("us-east-1", 40),
    ("us-west-2", 20),
    ("eu-west-1", 20),
    ("eu-central-1", 10),
    ("ap-southeast-1", 10),
];
const SEVERITIES: &[(&str, u64)] = &[("critical", 15), ("warning", 60), ("info", 25)];

fn tenant_name(rank: usize) -> String {
    NAMED_TENANTS
        .iter()
        .find(|(r, _)| *r == rank)
        .map(|(_, name)| name.to_string())
        .unwrap_or_else(|| format!("tenant-{rank:04}"))
}

/// Zipf (s = 1) weights of the tenants, scaled to integers.
fn tenant_weights() -> Vec<u64> {
    (1..=TENANTS as u64).map(|k| 1_000_000_000 / k).collect()
}

fn api(who: &str) -> Attribution {
    Attribution::new(who, Interface::Api)
}

struct Seeder {
    rng: Rng,
    policy: EscalationPolicy,
    tenant_weights: Vec<u64>,
    model_weights: Vec<u64>,
    open_fingerprints: HashSet<Fingerprint>,
    rows: u64,
}

impl Seeder {
    fn new(rows: u64) -> Self {
        Seeder {
            rng: Rng(0x5eed_0f11_5700),
            policy: EscalationPolicy::default_console(),
            tenant_weights: tenant_weights(),
            model_weights: MODELS.iter().map(|m| m.2).collect(),
            open_fingerprints: HashSet::new(),
            rows,
        }
    }

    fn labels(&mut self) -> Labels {
        let (model, provider, _) = MODELS[self.rng.weighted(&self.model_weights)];
        let (alertname, metric) = ALERTS[self.rng.weighted(ALERT_WEIGHTS)];
        let tenant = tenant_name(self.rng.weighted(&self.tenant_weights));
        let service = SERVICES[self.rng.below(SERVICES.len() as u64) as usize];
        let region = REGIONS[self
            .rng
            .weighted(&REGIONS.iter().map(|r| r.1).collect::<Vec<_>>())]
        .0;
        let severity = SEVERITIES[self
            .rng
            .weighted(&SEVERITIES.iter().map(|s| s.1).collect::<Vec<_>>())]
        .0;
        [
            ("alertname", alertname.to_string()),
            ("metric", metric.to_string()),
            ("model", model.to_string()),
            ("provider", provider.to_string()),
            ("region", region.to_string()),
            ("service", service.to_string()),
            ("severity", severity.to_string()),
            ("tenant", tenant),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Incident `n` (0-based; id `n + 1`), in its final state.
    fn incident(&mut self, n: u64) -> Incident {
        let created =
            END - SPAN + (n as i64 * SPAN) / self.rows as i64 + self.rng.below(1000) as i64;
        let labels = self.labels();
        let alert = Alert {
            annotations: [(
                "summary".to_string(),
                format!(
                    "{} {} on {} for {}",
                    &labels["alertname"], &labels["metric"], &labels["model"], &labels["tenant"]
                ),
            )]
            .into(),
            labels,
            status: AlertStatus::Firing,
            starts_at: Timestamp(created - MINUTE),
            ends_at: None,
            source: "prometheus".into(),
            dedup_key: None,
            extra: None,
        };
        let (mut incident, _) =
            Incident::open(IncidentId(n + 1), alert, &self.policy, Timestamp(created));
        incident.bump_version();
        let p_open = if created > END - RECENT { 0.7 } else { 0.017 };
        let open = self.rng.chance(p_open) && self.open_fingerprints.insert(incident.fingerprint);
        let acked = self.rng.chance(if open { 0.4 } else { 0.7 });
        let mut at = created;
        if acked {
            at += MINUTE + self.rng.below(30 * MINUTE as u64) as i64;
            incident
                .acknowledge(api("alice"), &self.policy, Timestamp(at))
                .expect("acknowledge an open incident");
            incident.bump_version();
        }
        if !open {
            at += 5 * MINUTE + self.rng.below(12 * 60 * MINUTE as u64) as i64;
            incident
                .resolve(api("bob"), Timestamp(at))
                .expect("resolve an open incident");
            incident.bump_version();
        }
        incident
    }
}

/// Seeds `rows` incidents through the store's own commit.
async fn seed(store: &dyn Store, rows: u64) {
    let started = Instant::now();
    let mut seeder = Seeder::new(rows);
    let mut n = 0;
    let mut open = 0u64;
    while n < rows {
        let mut batch = WriteBatch {
            incidents: Vec::with_capacity(BATCH),
            touches: Vec::new(),
            attempts: Vec::new(),
        };
        while batch.incidents.len() < BATCH && n < rows {
            let incident = seeder.incident(n);
            open += u64::from(incident.status.is_open());
            batch.incidents.push(IncidentWrite {
                received_at: incident.updated_at,
                incident,
                events: Vec::new(),
                alerts: Vec::new(),
                deliveries: Vec::new(),
            });
            n += 1;
        }
        store.commit(&batch).await.expect("seed commit");
        if n % 100_000 == 0 {
            eprintln!("  seeded {n} incidents ({:.0?})", started.elapsed());
        }
    }
    eprintln!(
        "  seeded {rows} incidents, {open} open ({:.1} %), in {:.1?}",
        open as f64 * 100.0 / rows as f64,
        started.elapsed()
    );
}

/// One query shape: how HTTP would ask it, and as the store is asked.
struct Shape {
    http: &'static str,
    query: IncidentQuery,
}

fn shapes() -> Vec<Shape> {
    let q = |status: StatusFilter, label: (&str, &str), sort: IncidentSort| IncidentQuery {
        status: Some(status),
        labels: vec![(label.0.to_string(), label.1.to_string())],
        sort,
        limit: PAGE + 1,
        ..IncidentQuery::default()
    };
    let open = StatusFilter::Open;
    let resolved = StatusFilter::Is(IncidentStatus::Resolved);
    let created = IncidentSort::CreatedDesc;
    let updated = IncidentSort::UpdatedDesc;
    vec![
        Shape {
            http: "status=open&label=model=gpt-4o",
            query: q(open, ("model", "gpt-4o"), created),
        },
        Shape {
            http: "status=open&label=model=gpt-4o&sort=updated_desc",
            query: q(open, ("model", "gpt-4o"), updated),
        },
        Shape {
            http: "status=resolved&label=tenant=acme",
            query: q(resolved, ("tenant", "acme"), created),
        },
        Shape {
            http: "status=resolved&label=tenant=acme&sort=updated_desc",
            query: q(resolved, ("tenant", "acme"), updated),
        },
        Shape {
            http: "status=resolved&label=tenant=globex",
            query: q(resolved, ("tenant", "globex"), created),
        },
        Shape {
            http: "status=resolved&label=tenant=globex&sort=updated_desc",
            query: q(resolved, ("tenant", "globex"), updated),
        },
    ]
}

/// The query of page `page` (1-based) of `shape`, walking the pages before
/// it with their cursors, and that page's row count.
async fn page_query(store: &dyn Store, shape: &IncidentQuery, page: u32) -> (IncidentQuery, u32) {
    let mut q = shape.clone();
    for n in 1..=page {
        let rows = store.list_incidents(&q).await.expect("walk pages");
        if n == page || rows.len() <= PAGE as usize {
            return (q, n);
        }
        q.after = Some(Cursor::after(&rows[PAGE as usize - 1], q.sort));
    }
    (q, page)
}

struct Figures {
    shape: String,
    page: u32,
    rows: usize,
    runs: usize,
    p50: Duration,
    p99: Duration,
    p999: Duration,
    max: Duration,
}

/// Warm-up, then `iters` timed runs of `q`, one at a time; each phase
/// stops early once it has taken `budget` (a plan that takes a second a
/// page would otherwise hold the machine for hours), so `lat.len()` is the
/// number of runs actually timed.
async fn time(
    store: &dyn Store,
    q: &IncidentQuery,
    iters: usize,
    budget: Duration,
) -> (usize, Vec<Duration>) {
    let mut rows = 0;
    let started = Instant::now();
    for _ in 0..WARMUP {
        rows = store.list_incidents(q).await.expect("list").len();
        if started.elapsed() > budget / 4 {
            break;
        }
    }
    let mut lat = Vec::with_capacity(iters);
    let started = Instant::now();
    for _ in 0..iters {
        let t = Instant::now();
        let page = store.list_incidents(q).await.expect("list");
        lat.push(t.elapsed());
        std::hint::black_box(page);
        if started.elapsed() > budget {
            break;
        }
    }
    lat.sort_unstable();
    (rows.min(PAGE as usize), lat)
}

/// The store under test, with its backend's plan of a list query.
enum Under {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl Under {
    fn name(&self) -> &'static str {
        match self {
            Under::Sqlite(_) => "sqlite",
            Under::Postgres(_) => "postgres",
        }
    }

    fn store(&self) -> &dyn Store {
        match self {
            Under::Sqlite(s) => s,
            Under::Postgres(s) => s,
        }
    }

    async fn explain(&self, q: &IncidentQuery) -> String {
        match self {
            Under::Sqlite(s) => s.explain_list(q).await,
            Under::Postgres(s) => s.explain_list(q).await,
        }
        .expect("explain")
    }
}

async fn run(under: &Under) -> Vec<Figures> {
    let backend = under.name();
    let store = under.store();
    let iters: usize = env_or("LIM_BENCH_ITERS", 1000);
    let budget = Duration::from_secs(env_or("LIM_BENCH_SHAPE_SECS", 60));
    let deep: u32 = env_or("LIM_BENCH_DEEP_PAGE", 100);
    let plans = std::env::var("LIM_BENCH_PLANS").map_or(true, |v| v != "0");
    let mut figures = Vec::new();
    for shape in shapes() {
        for page in [1, deep] {
            let (q, page) = page_query(store, &shape.query, page).await;
            if plans {
                eprintln!(
                    "--- {backend} {} page {page}\n{}",
                    shape.http,
                    under.explain(&q).await
                );
            }
            let (rows, lat) = time(store, &q, iters, budget).await;
            let f = Figures {
                shape: shape.http.to_string(),
                page,
                rows,
                runs: lat.len(),
                p50: percentile(&lat, 0.50),
                p99: percentile(&lat, 0.99),
                p999: percentile(&lat, 0.999),
                max: *lat.last().unwrap_or(&Duration::ZERO),
            };
            eprintln!(
                "  {backend} {} page {page}: {rows} rows, {} runs, p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms",
                f.shape,
                f.runs,
                ms(f.p50),
                ms(f.p99),
                ms(f.p999)
            );
            figures.push(f);
        }
    }
    figures
}

fn report(backend: &str, rows: u64, figures: &[Figures]) {
    println!("\n{backend}, {rows} incidents, pages of {PAGE}:\n");
    println!("| query | page | rows | runs | p50 ms | p99 ms | p99.9 ms | max ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for f in figures {
        println!(
            "| `{}` | {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} |",
            f.shape,
            f.page,
            f.rows,
            f.runs,
            ms(f.p50),
            ms(f.p99),
            ms(f.p999),
            ms(f.max)
        );
    }
}

async fn sqlite(rows: u64) {
    let (_dir, url) = support::temp_sqlite_url();
    let store = SqliteStore::open(&url).await.expect("open SQLite store");
    eprintln!("sqlite: seeding {url}");
    seed(&store, rows).await;
    let under = Under::Sqlite(store);
    let figures = run(&under).await;
    report("SQLite", rows, &figures);
    if let Under::Sqlite(store) = under {
        store.close().await;
    }
}

async fn postgres(rows: u64) {
    let url = support::fresh_postgres_url().await;
    let store = PostgresStore::open(&url)
        .await
        .expect("open PostgreSQL store");
    eprintln!("postgres: seeding a fresh database");
    seed(&store, rows).await;
    let t = Instant::now();
    sqlx::query("VACUUM ANALYZE")
        .execute(store.pool())
        .await
        .expect("vacuum analyze");
    eprintln!("  VACUUM ANALYZE in {:.1?}", t.elapsed());
    let under = Under::Postgres(store);
    let figures = run(&under).await;
    report("PostgreSQL", rows, &figures);
    if let Under::Postgres(store) = under {
        store.close().await;
    }
    drop_database(&url).await;
}

/// Drops the benchmark's database (it holds a million rows).
async fn drop_database(url: &str) {
    use sqlx::Connection;
    let Some(name) = url
        .rsplit_once('/')
        .map(|(_, db)| db.split('?').next().unwrap_or(db).to_string())
    else {
        return;
    };
    let server = support::test_database_url();
    if let Ok(mut conn) = sqlx::PgConnection::connect(&server).await {
        let _ = sqlx::raw_sql(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
            .execute(&mut conn)
            .await;
        let _ = conn.close().await;
    }
}

fn main() {
    let rows: u64 = env_or("LIM_BENCH_ROWS", 1_000_000);
    let backends = std::env::var("LIM_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        for backend in backends.split(',').map(str::trim).filter(|b| !b.is_empty()) {
            match backend {
                "sqlite" => sqlite(rows).await,
                "postgres" => postgres(rows).await,
                other => eprintln!("unknown backend {other:?} (sqlite, postgres)"),
            }
        }
    });
}
