//! The SQLite store: the embedded default (`sqlite://./data/lim.db`).
//!
//! WAL journal; every write's WAL frames are fsynced before the write is
//! answered (a committed batch survives a power cut, so an ingest answered
//! 2xx is durable): a group commit's on the writer thread right after its
//! transaction, the store's other writes by a flush they share, after
//! theirs (`synchronous=NORMAL` plus [`WalFlush`], in `sqlite_wal`; see
//! `group_sync`). The writer connection writes a commit's WAL frames in
//! one write (`sqlite_wal_gather`). A 5 s busy timeout, foreign keys
//! on. A small pool: reads run concurrently, writes come from the single
//! persistence actor and take the write lock up front (`BEGIN IMMEDIATE`).
//! `sqlite::memory:` gives a private in-memory database on one connection,
//! for quick tests. The store also keeps `incident_labels`, the label index
//! of the incident list that SQLite cannot build inside a JSON column (its
//! rows carry each incident's `created_at` and `updated_at`, the list's two
//! orders), a little behind the commits and caught up before any list that
//! reads it (`label_backlog`). Writes run on a writer connection of their own, a `rusqlite`
//! connection owned by a thread (`sqlite_writer`): a group commit is one
//! job there, prepared statements run row by row (`sqlite_batch`). Reads
//! go through sqlx's pool. The WAL is checkpointed every 500 ms on a
//! connection of the pool rather than inside a commit (`sqlite_wal`).

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use incident_actors::domain::{
    Alert, AttemptOutcome, Delivery, DeliveryKey, HeartbeatState, Incident, IncidentId, Silence,
    SilenceId, TimelineEvent,
};
use incident_actors::ports::{
    AttemptRecord, Durability, IncidentQuery, Store, StoreError, StoredAlert, WriteBatch,
};
use incident_actors::time::Timestamp;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::decode::{self, store_error, AlertColumns};
use super::deliveries::{self, DeliveryColumns};
use super::heartbeats;
use super::label_backlog;
use super::plan::{plan, Plan};
use super::query::{list_sql, Dialect, Param};
use super::silences;
use super::sqlite_batch as batch;
use super::sqlite_wal::{AfterJob, Checkpointer, WalFlush, WAL_AUTOCHECKPOINT_PAGES};
use super::sqlite_writer::{self as writer, Writer, WriterOptions};
use super::StoreOpenError;

/// The store probe's write (`Store::ping`).
const PROBE_SQL: &str = "INSERT INTO store_probe (id, at) VALUES (1, ?1) \
     ON CONFLICT (id) DO UPDATE SET at = excluded.at";

/// Connections of a file database's pool.
const POOL_SIZE: u32 = 4;
/// The writer connection's page cache (`PRAGMA cache_size`, negative: KiB):
/// the interior pages of every B-tree a commit touches, and the leaves new
/// rows go to, stay in it between commits.
const WRITER_CACHE_KIB: i64 = -8192;
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a `sqlite:` URL names an in-memory database.
fn is_memory(url: &str) -> bool {
    let rest = url
        .get("sqlite:".len()..)
        .unwrap_or("")
        .trim_start_matches("//");
    let (db, params) = rest.split_once('?').unwrap_or((rest, ""));
    db == ":memory:" || params.split('&').any(|p| p == "mode=memory")
}

#[derive(Clone, Debug)]
pub struct SqliteStore {
    /// Reads.
    pool: SqlitePool,
    /// Writes: one connection of its own on a file database (the same pool
    /// as `pool` in memory). In WAL mode a connection drops its whole page
    /// cache when it finds that another connection wrote since its last
    /// transaction; with group commits spread over the pool, every commit
    /// began cold and read the B-tree pages it needed back from the OS
    /// (`readDbPage` was 4 % of lim's samples under the mixed load).
    /// Outside sqlx's pool (`sqlite_writer`).
    writes: Arc<Writer>,
    /// The WAL checkpoint task of a file database, stopped with the last
    /// clone of the store.
    _checkpointer: Option<Arc<Checkpointer>>,
    /// The label index's catch-up task (`label_backlog`), stopped with the
    /// last clone of the store or by [`SqliteStore::close`].
    labels: Arc<LabelCatchUp>,
    /// What the label index has caught up with.
    label_commits: Arc<LabelCommits>,
    /// A file database's WAL flush: on the writer thread after a group
    /// commit, shared by the other writes after theirs (`group_sync`).
    wal: Option<Arc<WalFlush>>,
}

/// Runs `work` on the writer connection, unless writes are refused; on a
/// file database guarded by its WAL flush (`WalFlush::guarded`).
async fn run_on_writer<T, F>(
    writes: &Writer,
    wal: Option<Arc<WalFlush>>,
    after: AfterJob,
    work: F,
) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
{
    if let Some(e) = wal.as_ref().and_then(|w| w.refusal()) {
        return Err(e);
    }
    writes
        .run(move |conn| match wal {
            None => work(conn),
            Some(wal) => wal.guarded(conn, after, work),
        })
        .await
}

/// Catches the label index up with every incident named in its backlog,
/// a writer job per [`label_backlog::CHUNK`] of them, so that group commits
/// go between the jobs of a long backlog. Nothing to do (no writer job)
/// when no commit returned since the last catch-up that emptied it.
async fn catch_up_labels(
    writes: &Writer,
    wal: Option<Arc<WalFlush>>,
    commits: &LabelCommits,
) -> Result<(), StoreError> {
    let named = commits.named.load(Ordering::SeqCst);
    if commits.caught_up.load(Ordering::SeqCst) == named + 1 {
        return Ok(());
    }
    while run_on_writer(
        writes,
        wal.clone(),
        AfterJob::Probe,
        label_backlog::catch_up_chunk,
    )
    .await?
    {}
    // Every commit counted in `named` had returned, names written, before
    // this catch-up began, so it caught them up.
    commits.caught_up.fetch_max(named + 1, Ordering::SeqCst);
    Ok(())
}

/// Which commits the label index has caught up with: `named` counts the
/// commits that returned (each may have named incidents in the backlog),
/// `caught_up` is one more than the count the latest catch-up that emptied
/// the backlog started from, and 0 (unknown) until one has: the backlog
/// may hold names from before a restart.
#[derive(Debug, Default)]
struct LabelCommits {
    named: AtomicU64,
    caught_up: AtomicU64,
}

/// Catches the label index up every [`label_backlog::CATCH_UP_EVERY`],
/// so that its backlog stays short and a list query seldom waits for one.
#[derive(Debug)]
struct LabelCatchUp(tokio::task::JoinHandle<()>);

impl LabelCatchUp {
    fn start(writes: Arc<Writer>, wal: Option<Arc<WalFlush>>, commits: Arc<LabelCommits>) -> Self {
        LabelCatchUp(tokio::spawn(async move {
            let mut every = tokio::time::interval(label_backlog::CATCH_UP_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut failing = false;
            loop {
                every.tick().await;
                match catch_up_labels(&writes, wal.clone(), &commits).await {
                    Ok(()) => failing = false,
                    // Said once per spell of failures: the store's health
                    // and the commits report the disk.
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "the label index could not catch up; retried");
                    }
                    Err(_) => {}
                }
            }
        }))
    }
}

impl Drop for LabelCatchUp {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl SqliteStore {
    /// Opens the database at `url`, creating the file and its folder if
    /// missing, and runs the migrations.
    pub async fn open(url: &str) -> Result<Self, StoreOpenError> {
        super::sqlite_allocator::install();
        let options = SqliteConnectOptions::from_str(url)
            .map_err(StoreOpenError::InvalidUrl)?
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let database = options.get_filename().to_path_buf();
        let memory = is_memory(url);
        let pool = if memory {
            // An in-memory database lives as long as a connection to it:
            // one connection, never closed.
            SqlitePoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(options)
                .await
        } else {
            let path = options.get_filename().to_path_buf();
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|source| StoreOpenError::CreateDir {
                    path: dir.to_path_buf(),
                    source,
                })?;
            }
            let options = options
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // Commits sync nothing; `WalFlush` syncs the WAL after them,
                // before anyone is answered.
                .synchronous(SqliteSynchronous::Normal)
                .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string());
            // Reads only (writes have a connection of their own). No ping
            // before handing out a connection: a connection to a local
            // file does not go stale, and the ping is one more round trip
            // to its worker thread in front of every read.
            SqlitePoolOptions::new()
                .max_connections(POOL_SIZE)
                .test_before_acquire(false)
                .connect_with(options)
                .await
        }
        .map_err(StoreOpenError::Connect)?;
        let writes = Arc::new(if memory {
            Writer::Shared(pool.clone())
        } else {
            // Kept open for good so that its page cache stays warm.
            Writer::open(WriterOptions {
                path: database.clone(),
                busy_timeout: BUSY_TIMEOUT,
                cache_size: WRITER_CACHE_KIB,
                wal_autocheckpoint: WAL_AUTOCHECKPOINT_PAGES,
            })
            .map_err(|e| StoreOpenError::Writer(e.to_string()))?
        });
        sqlx::migrate!("./migrations/sqlite").run(&pool).await?;
        let (wal, checkpointer) = if memory {
            (None, None)
        } else {
            // A write first, so that the WAL exists wherever SQLite put it.
            sqlx::query(PROBE_SQL)
                .bind(chrono::Utc::now().timestamp_millis())
                .execute(&pool)
                .await
                .map_err(StoreOpenError::Connect)?;
            let wal = Arc::new(WalFlush::new(&database)?);
            let checkpointer = Checkpointer::start(pool.clone(), wal.clone());
            (Some(wal), Some(Arc::new(checkpointer)))
        };
        let label_commits = Arc::new(LabelCommits::default());
        let labels = Arc::new(LabelCatchUp::start(
            writes.clone(),
            wal.clone(),
            label_commits.clone(),
        ));
        let store = SqliteStore {
            writes,
            wal,
            pool,
            _checkpointer: checkpointer,
            labels,
            label_commits,
        };
        // The migrations' own commits, synced like any write.
        store
            .flushed()
            .await
            .map_err(|e| StoreOpenError::Sync(e.to_string()))?;
        Ok(store)
    }

    /// Runs `work` on the writer connection, unless writes are refused
    /// (once a WAL flush or a checkpoint has failed: `group_sync`).
    async fn on_writer<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    {
        run_on_writer(&self.writes, self.wal.clone(), AfterJob::Probe, work).await
    }

    /// One statement on the writer connection, answered once durable.
    async fn write<P>(&self, sql: &'static str, params: P) -> Result<(), StoreError>
    where
        P: rusqlite::Params + Send + 'static,
    {
        self.on_writer(move |conn| {
            conn.prepare_cached(sql)
                .and_then(|mut s| s.execute(params))
                .map_err(writer::store_error)
        })
        .await?;
        self.flushed().await
    }

    /// Resolves once every write that returned before this call is durable
    /// (at once for an in-memory database).
    fn durability(&self) -> Durability {
        match &self.wal {
            Some(wal) => wal.clone().durable(),
            None => Box::pin(std::future::ready(Ok(()))),
        }
    }

    /// Waits for the WAL flush of the writes that returned so far.
    async fn flushed(&self) -> Result<(), StoreError> {
        self.durability().await
    }

    /// The read pool, for tables outside the `Store` port. A write through
    /// it bypasses the writer connection and is not flushed (`WalFlush`)
    /// before it returns.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        // Before the writer closes: a catch-up would open it again.
        self.labels.0.abort();
        self.writes.close().await;
        self.pool.close().await;
    }

    /// The incident list statement of `query` (as [`Store::list_incidents`]
    /// runs it) and SQLite's `EXPLAIN QUERY PLAN` of it, one line per plan
    /// step, indented under its parent: what `benches/list_query.rs` prints
    /// to show which index serves each query shape.
    pub async fn explain_list(&self, query: &IncidentQuery) -> Result<String, StoreError> {
        let list = list_sql(query, Dialect::Sqlite)?;
        let sql = format!("EXPLAIN QUERY PLAN {}", list.sql);
        let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql);
        for param in &list.params {
            q = match param {
                Param::Int(v) => q.bind(*v),
                Param::Text(v) => q.bind(v.as_str()),
            };
        }
        let rows = q.fetch_all(&self.pool).await.map_err(store_error)?;
        let mut depth: std::collections::HashMap<i64, usize> = std::collections::HashMap::new();
        let mut out = format!("{}\n", list.sql);
        for (id, parent, _, detail) in rows {
            let d = depth.get(&parent).map_or(0, |d| d + 1);
            depth.insert(id, d);
            out.push_str(&format!("{}{detail}\n", "  ".repeat(d)));
        }
        Ok(out)
    }

    async fn deliveries_where(
        &self,
        filter: &str,
        incident: Option<i64>,
    ) -> Result<Vec<Delivery>, StoreError> {
        let sql = format!("{} WHERE {filter} ORDER BY id", deliveries::SELECT_SQL);
        let mut q = sqlx::query_as::<_, DeliveryColumns>(&sql);
        if let Some(id) = incident {
            q = q.bind(id);
        }
        let rows = q.fetch_all(&self.pool).await.map_err(store_error)?;
        Ok(deliveries::readable(rows))
    }
}

fn db_id(id: IncidentId) -> Result<i64, StoreError> {
    i64::try_from(id.0)
        .map_err(|_| StoreError::Rejected(format!("incident id {id} is out of range")))
}

#[async_trait]
impl Store for SqliteStore {
    /// Durable when the writer job returns: a file database's WAL is synced
    /// on the writer thread right after the commit
    /// (`AfterJob::Sync`), so `commit_pipelined` is the
    /// default, this.
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let plan = plan(batch)?;
        let attempts = batch.attempts.clone();
        run_on_writer(
            &self.writes,
            self.wal.clone(),
            AfterJob::Sync,
            move |conn| batch::commit(conn, &plan, &attempts),
        )
        .await?;
        // Counted once written (and before anyone is answered): a label
        // list from here on catches the index up with it.
        self.label_commits.named.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn load_open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        let rows = sqlx::query_as(
            "SELECT id, last_seen, seen_count, state FROM incidents \
             WHERE status <> 'resolved' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        decode::incidents(rows)
    }

    async fn max_incident_id(&self) -> Result<Option<IncidentId>, StoreError> {
        let (max,): (Option<i64>,) = sqlx::query_as("SELECT MAX(id) FROM incidents")
            .fetch_one(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(max.and_then(|id| u64::try_from(id).ok()).map(IncidentId))
    }

    async fn get_incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        let row: Option<(i64, i64, i64, Vec<u8>)> =
            sqlx::query_as("SELECT id, last_seen, seen_count, state FROM incidents WHERE id = ?1")
                .bind(db_id(id)?)
                .fetch_optional(&self.pool)
                .await
                .map_err(store_error)?;
        row.map(|(id, last_seen, seen_count, state)| {
            decode::incident(id, last_seen, seen_count, &state)
        })
        .transpose()
    }

    async fn list_incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        let list = list_sql(query, Dialect::Sqlite)?;
        // A label filter reads the label index, whichever way the query
        // goes (`query.rs`): caught up first with every commit so far.
        if !query.labels.is_empty() {
            catch_up_labels(&self.writes, self.wal.clone(), &self.label_commits).await?;
        }
        let mut q = sqlx::query_as(&list.sql);
        for param in &list.params {
            q = match param {
                Param::Int(v) => q.bind(*v),
                Param::Text(v) => q.bind(v.as_str()),
            };
        }
        let rows = q.fetch_all(&self.pool).await.map_err(store_error)?;
        decode::incidents(rows)
    }

    async fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEvent>, StoreError> {
        let id = db_id(id)?;
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT body FROM incident_events WHERE incident_id = ?1 ORDER BY seq")
                .bind(id)
                .fetch_all(&self.pool)
                .await
                .map_err(store_error)?;
        rows.iter().map(|(body,)| decode::event(id, body)).collect()
    }

    async fn alerts(&self, id: IncidentId) -> Result<Vec<StoredAlert>, StoreError> {
        let rows: Vec<AlertColumns> = sqlx::query_as(
            "SELECT incident_id, fingerprint, status, source, dedup_key, labels, annotations, \
             starts_at, ends_at, received_at, extra FROM alerts WHERE incident_id = ?1 ORDER BY id",
        )
        .bind(db_id(id)?)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(decode::alert).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp_millis();
        self.write(PROBE_SQL, (now,)).await
    }

    async fn save_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO silences (id, starts_at, ends_at, created_at, body) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO UPDATE SET starts_at = excluded.starts_at, \
             ends_at = excluded.ends_at, body = excluded.body",
            (
                silences::db_id(silence.id)?,
                silences::millis(silence.starts_at),
                silences::millis(silence.ends_at),
                silences::millis(silence.created_at),
                silences::silence_body(silence)?,
            ),
        )
        .await
    }

    async fn list_silences(&self) -> Result<Vec<Silence>, StoreError> {
        let rows: Vec<(String,)> = sqlx::query_as("SELECT body FROM silences ORDER BY id DESC")
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(silences::readable(&rows))
    }

    async fn record_silenced(
        &self,
        silence: SilenceId,
        alert: &Alert,
        received_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO silenced_alerts (silence_id, fingerprint, received_at, body) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT DO NOTHING",
            (
                silences::db_id(silence)?,
                alert.fingerprint().to_string(),
                received_at.as_millis(),
                silences::alert_body(alert)?,
            ),
        )
        .await
    }

    async fn load_heartbeats(&self) -> Result<Vec<(String, HeartbeatState)>, StoreError> {
        let rows: Vec<heartbeats::HeartbeatRow> = sqlx::query_as(heartbeats::SELECT_SQL)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(heartbeats::from_rows(rows))
    }

    async fn save_heartbeat(&self, name: &str, state: &HeartbeatState) -> Result<(), StoreError> {
        self.write(
            "INSERT INTO heartbeats (name, last_ping_ms, deadline_ms, missed, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (name) DO UPDATE SET last_ping_ms = excluded.last_ping_ms, \
             deadline_ms = excluded.deadline_ms, missed = excluded.missed, \
             updated_at = excluded.updated_at",
            (
                name.to_string(),
                state.last_ping.map(Timestamp::as_millis),
                state.deadline.as_millis(),
                state.missed,
                heartbeats::now_ms(),
            ),
        )
        .await
    }

    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        outcome: &AttemptOutcome,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        // Read, apply `Delivery::record`, write back, in one transaction.
        let (key, outcome) = (key.clone(), outcome.clone());
        self.on_writer(move |conn| batch::record_attempt(conn, &key, &outcome, at))
            .await?;
        self.flushed().await
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        // A group commit of attempts alone.
        let attempts = attempts.to_vec();
        self.on_writer(move |conn| batch::commit(conn, &Plan::default(), &attempts))
            .await?;
        self.flushed().await
    }

    async fn pending_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries_where("status = 'pending'", None).await
    }

    async fn deliveries(&self, incident: IncidentId) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries_where("incident_id = ?1", Some(db_id(incident)?))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::is_memory;

    #[test]
    fn memory_urls() {
        assert!(is_memory("sqlite::memory:"));
        assert!(is_memory("sqlite://:memory:"));
        assert!(is_memory("sqlite://?mode=memory&cache=private"));
        assert!(!is_memory("sqlite://./data/lim.db"));
        assert!(!is_memory("sqlite:lim.db?mode=rwc"));
    }
}
