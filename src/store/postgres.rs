//! The PostgreSQL store (`postgres://…`).
//!
//! Opening creates the database when it does not exist (through the
//! server's `postgres` database). A group commit writes each kind of row with
//! one statement whatever the batch size: the rows go in as arrays and
//! `UNNEST` turns them back into a table, so the statement text is fixed,
//! prepared once and cached by sqlx. JSON columns are JSONB, sent and read as
//! text (`::jsonb` / `::text`). A commit also keeps `incident_labels`, the
//! label index of the incident list (labels in the list's two orders, which
//! the GIN index on `labels` cannot give).

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use incident_actors::domain::{
    Alert, AttemptOutcome, Delivery, DeliveryKey, HeartbeatState, Incident, IncidentId, Silence,
    SilenceId, TimelineEvent,
};
use incident_actors::ports::{
    AttemptRecord, IncidentQuery, Store, StoreError, StoredAlert, WriteBatch,
};
use incident_actors::time::Timestamp;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Connection, PgConnection, Postgres, Transaction};

use super::decode::{self, store_error, AlertColumns};
use super::deliveries::{self, DeliveryColumns};
use super::heartbeats;
use super::plan::{plan, IncidentRow, Plan};
use super::query::{list_sql, Dialect, Param};
use super::silences;
use super::StoreOpenError;

const POOL_SIZE: u32 = 8;
/// How long a commit waits for a connection. While PostgreSQL is down
/// sqlx keeps retrying the connect until this passes, and the writes
/// queued behind that commit wait with it: 3 s bounds how long an alert
/// waits for its 503 (tests/fault_store.rs), far above a healthy connect.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// A pooled connection idle at least this long is pinged before it is
/// handed out (a server restarted meanwhile left it dead).
const PING_WHEN_IDLE: Duration = Duration::from_secs(1);

/// `invalid_catalog_name`: the database does not exist.
const UNKNOWN_DATABASE: &str = "3D000";
/// `duplicate_database`: someone created it first.
const DUPLICATE_DATABASE: &str = "42P04";
/// `unique_violation`: two concurrent `CREATE DATABASE` of one name can also
/// collide on the catalog's unique index.
const UNIQUE_VIOLATION: &str = "23505";

fn db_code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// `name` as a quoted SQL identifier.
fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Creates database `name` on the server `options` point at, connecting to
/// its `postgres` database. Already existing is fine.
async fn create_database(options: &PgConnectOptions, name: &str) -> Result<(), StoreOpenError> {
    let failed = |source| StoreOpenError::CreateDatabase {
        name: name.to_string(),
        source,
    };
    let mut conn = PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .map_err(failed)?;
    let created = sqlx::raw_sql(&format!("CREATE DATABASE {}", quote_ident(name)))
        .execute(&mut conn)
        .await;
    // Best effort: the connection is dropped either way.
    let _ = conn.close().await;
    match created {
        Ok(_) => {
            tracing::info!(database = name, "created PostgreSQL database");
            Ok(())
        }
        Err(e)
            if matches!(
                db_code(&e).as_deref(),
                Some(DUPLICATE_DATABASE | UNIQUE_VIOLATION)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(failed(e)),
    }
}

#[derive(Clone, Debug)]
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects to `url`, creating its database if missing, and runs the
    /// migrations.
    pub async fn open(url: &str) -> Result<Self, StoreOpenError> {
        let options = PgConnectOptions::from_str(url).map_err(StoreOpenError::InvalidUrl)?;
        let pool_options = || {
            PgPoolOptions::new()
                .max_connections(POOL_SIZE)
                .acquire_timeout(ACQUIRE_TIMEOUT)
                // sqlx's own test pings every connection it hands out: a
                // round trip to the server in front of every group commit
                // and every read (the server's process shares the machine's
                // cores). Only a connection idle for a while is pinged; one
                // back from use moments ago was pinged on its way back
                // (sqlx does that on every release). Mixed ingest load:
                // +8-15 % (BENCHMARKS.md, seventh session).
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_WHEN_IDLE {
                            conn.ping().await?;
                        }
                        Ok(true)
                    })
                })
        };
        let pool = match pool_options().connect_with(options.clone()).await {
            Ok(pool) => pool,
            Err(e) if db_code(&e).as_deref() == Some(UNKNOWN_DATABASE) => {
                let name = options
                    .get_database()
                    .map(str::to_string)
                    .unwrap_or_else(|| options.get_username().to_string());
                create_database(&options, &name).await?;
                pool_options()
                    .connect_with(options)
                    .await
                    .map_err(StoreOpenError::Connect)?
            }
            Err(e) => return Err(StoreOpenError::Connect(e)),
        };
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        Ok(PostgresStore { pool })
    }

    /// The connection pool, for tables outside the `Store` port.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Closes every connection (waits for those in use).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// The incident list statement of `query` (as [`Store::list_incidents`]
    /// runs it: unnamed, planned with its values) and PostgreSQL's
    /// `EXPLAIN (ANALYZE, BUFFERS)` of it, which runs it: what
    /// `benches/list_query.rs` prints to show how each query shape is served.
    pub async fn explain_list(&self, query: &IncidentQuery) -> Result<String, StoreError> {
        let list = list_sql(query, Dialect::Postgres)?;
        let sql = format!("EXPLAIN (ANALYZE, BUFFERS) {}", list.sql);
        let mut q = sqlx::query_as::<_, (String,)>(&sql).persistent(false);
        for param in &list.params {
            q = match param {
                Param::Int(v) => q.bind(*v),
                Param::Text(v) => q.bind(v.as_str()),
            };
        }
        let rows = q.fetch_all(&self.pool).await.map_err(store_error)?;
        let mut out = format!("{}\n", list.sql);
        for (line,) in rows {
            out.push_str(&line);
            out.push('\n');
        }
        Ok(out)
    }

    async fn upsert(
        tx: &mut Transaction<'static, Postgres>,
        rows: &[IncidentRow],
    ) -> Result<(), sqlx::Error> {
        if rows.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO incidents (id, fingerprint, status, title, severity, service, labels, \
             alert_count, seen_count, created_at, updated_at, last_seen, resolved_at, version, state) \
             SELECT id, fingerprint, status, title, severity, service, labels::jsonb, \
             alert_count, seen_count, created_at, updated_at, last_seen, resolved_at, version, state \
             FROM UNNEST($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
             $7::text[], $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::bigint[], \
             $13::bigint[], $14::bigint[], $15::bytea[]) \
             AS t(id, fingerprint, status, title, severity, service, labels, alert_count, seen_count, \
             created_at, updated_at, last_seen, resolved_at, version, state) \
             ON CONFLICT (id) DO UPDATE SET \
             fingerprint = EXCLUDED.fingerprint, status = EXCLUDED.status, title = EXCLUDED.title, \
             severity = EXCLUDED.severity, service = EXCLUDED.service, labels = EXCLUDED.labels, \
             alert_count = EXCLUDED.alert_count, \
             seen_count = GREATEST(incidents.seen_count, EXCLUDED.seen_count), \
             created_at = EXCLUDED.created_at, updated_at = EXCLUDED.updated_at, \
             last_seen = GREATEST(incidents.last_seen, EXCLUDED.last_seen), \
             resolved_at = EXCLUDED.resolved_at, version = EXCLUDED.version, state = EXCLUDED.state",
        )
        .bind(rows.iter().map(|r| r.id).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.fingerprint.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.status).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.title.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.severity.as_deref()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.service.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.labels.as_str()).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.alert_count).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.seen_count).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.updated_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.last_seen).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.resolved_at).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.version).collect::<Vec<_>>())
        .bind(rows.iter().map(|r| r.state.as_slice()).collect::<Vec<_>>())
        .execute(&mut **tx)
        .await?;
        Ok(())
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

    async fn write(
        tx: &mut Transaction<'static, Postgres>,
        plan: &Plan,
    ) -> Result<(), sqlx::Error> {
        // Resolved snapshots first: they free fingerprints that open ones
        // of the same batch may take (see `plan`).
        let (resolved, open) = plan.incidents.split_at(plan.resolved_count());
        Self::upsert(tx, resolved).await?;
        Self::upsert(tx, open).await?;
        Self::write_rows(tx, plan).await
    }

    /// Everything else a batch writes, after its snapshots, in one
    /// statement (one round trip, where it was five): the label index, the
    /// events, the alerts, the repeat counters and the delivery log, each a
    /// data-modifying `WITH` over its arrays. They touch different tables
    /// (the counters, rows of `incidents` already upserted by an earlier
    /// statement), so running in one snapshot changes nothing; a kind with
    /// no rows is an empty array. Foreign keys are checked at the end of
    /// the statement, against the snapshots written before it.
    async fn write_rows(
        tx: &mut Transaction<'static, Postgres>,
        plan: &Plan,
    ) -> Result<(), sqlx::Error> {
        let (i, e, a, t, d) = (
            &plan.incidents,
            &plan.events,
            &plan.alerts,
            &plan.touches,
            &plan.deliveries,
        );
        if i.is_empty() && e.is_empty() && a.is_empty() && t.is_empty() && d.is_empty() {
            return Ok(());
        }
        sqlx::query(WRITE_ROWS_SQL)
            // The label index (0007_list_updated.sql): rows for the labels
            // of every incident written; an incident already indexed adds
            // nothing, its rows only take its new `updated_at` (labels and
            // `created_at` never change).
            .bind(i.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.created_at).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.updated_at).collect::<Vec<_>>())
            .bind(i.iter().map(|r| r.labels.as_str()).collect::<Vec<_>>())
            .bind(e.iter().map(|r| r.incident_id).collect::<Vec<_>>())
            .bind(e.iter().map(|r| r.seq).collect::<Vec<_>>())
            .bind(e.iter().map(|r| r.at).collect::<Vec<_>>())
            .bind(e.iter().map(|r| r.kind).collect::<Vec<_>>())
            .bind(e.iter().map(|r| r.body.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.incident_id).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.fingerprint.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.status).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.source.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.dedup_key.as_deref()).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.labels.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.annotations.as_str()).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.starts_at).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.ends_at).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.received_at).collect::<Vec<_>>())
            .bind(a.iter().map(|r| r.extra.as_deref()).collect::<Vec<_>>())
            .bind(t.iter().map(|r| r.id).collect::<Vec<_>>())
            .bind(t.iter().map(|r| r.last_seen).collect::<Vec<_>>())
            .bind(t.iter().map(|r| r.seen_count).collect::<Vec<_>>())
            .bind(
                t.iter()
                    .map(|r| r.snapshot.as_ref().map(|s| s.0))
                    .collect::<Vec<_>>(),
            )
            .bind(
                t.iter()
                    .map(|r| r.snapshot.as_ref().map(|s| s.1.as_slice()))
                    .collect::<Vec<_>>(),
            )
            .bind(d.iter().map(|r| r.key.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|r| r.incident_id).collect::<Vec<_>>())
            .bind(d.iter().map(|r| r.event.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|r| r.recipient.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|r| r.transport.as_str()).collect::<Vec<_>>())
            .bind(d.iter().map(|r| r.status).collect::<Vec<_>>())
            .bind(d.iter().map(|r| r.attempts).collect::<Vec<_>>())
            .bind(
                d.iter()
                    .map(|r| r.last_error.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                d.iter()
                    .map(|r| r.external_ref.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(d.iter().map(|r| r.created_at).collect::<Vec<_>>())
            .bind(d.iter().map(|r| r.updated_at).collect::<Vec<_>>())
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

/// [`PostgresStore::write_rows`]'s statement. Alert and delivery ids follow
/// the batch order (`WITH ORDINALITY` … `ORDER BY n`); a delivery key
/// already in the log is left as it is (a replayed commit never pages
/// twice); a refreshed snapshot only replaces the one it was taken from.
const WRITE_ROWS_SQL: &str = "\
WITH labels AS (\
 INSERT INTO incident_labels (key, value, created_at, incident_id, updated_at) \
 SELECT l.key, l.value, t.created_at, t.id, t.updated_at \
 FROM UNNEST($1::bigint[], $2::bigint[], $3::bigint[], $4::text[]) \
 AS t(id, created_at, updated_at, labels) \
 CROSS JOIN LATERAL jsonb_each_text(t.labels::jsonb) AS l \
 ON CONFLICT (key, value, created_at, incident_id) DO UPDATE \
 SET updated_at = EXCLUDED.updated_at \
 WHERE incident_labels.updated_at <> EXCLUDED.updated_at), \
events AS (\
 INSERT INTO incident_events (incident_id, seq, at, kind, body) \
 SELECT incident_id, seq, at, kind, body::jsonb \
 FROM UNNEST($5::bigint[], $6::int[], $7::bigint[], $8::text[], $9::text[]) \
 AS t(incident_id, seq, at, kind, body)), \
alerts AS (\
 INSERT INTO alerts (incident_id, fingerprint, status, source, dedup_key, labels, \
 annotations, starts_at, ends_at, received_at, extra) \
 SELECT incident_id, fingerprint, status, source, dedup_key, labels::jsonb, \
 annotations::jsonb, starts_at, ends_at, received_at, extra \
 FROM UNNEST($10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], \
 $16::text[], $17::bigint[], $18::bigint[], $19::bigint[], $20::text[]) WITH ORDINALITY \
 AS t(incident_id, fingerprint, status, source, dedup_key, labels, annotations, \
 starts_at, ends_at, received_at, extra, n) ORDER BY n), \
touches AS (\
 UPDATE incidents AS i SET last_seen = GREATEST(i.last_seen, t.last_seen), \
 seen_count = GREATEST(i.seen_count, t.seen_count), \
 state = CASE WHEN i.version = t.version THEN t.state ELSE i.state END \
 FROM UNNEST($21::bigint[], $22::bigint[], $23::bigint[], $24::bigint[], $25::bytea[]) \
 AS t(id, last_seen, seen_count, version, state) \
 WHERE i.id = t.id), \
deliveries AS (\
 INSERT INTO notifications (key, incident_id, event, recipient, transport, status, \
 attempts, last_error, external_ref, created_at, updated_at) \
 SELECT key, incident_id, event, recipient, transport, status, attempts, last_error, \
 external_ref, created_at, updated_at \
 FROM UNNEST($26::text[], $27::bigint[], $28::text[], $29::text[], $30::text[], $31::text[], \
 $32::int[], $33::text[], $34::text[], $35::bigint[], $36::bigint[]) WITH ORDINALITY \
 AS t(key, incident_id, event, recipient, transport, status, attempts, last_error, \
 external_ref, created_at, updated_at, n) ORDER BY n \
 ON CONFLICT (key) DO NOTHING) \
SELECT 1";

fn db_id(id: IncidentId) -> Result<i64, StoreError> {
    i64::try_from(id.0)
        .map_err(|_| StoreError::Rejected(format!("incident id {id} is out of range")))
}

#[async_trait]
impl Store for PostgresStore {
    /// With `synchronous_commit` on (the server's default): durable when
    /// `COMMIT` returns. (Committing with it off and flushing after, as the
    /// SQLite store does, was measured at +4 % under the mixed load and
    /// needs the flush on the very server session that committed: after a
    /// server crash, a flush on a reconnected session would confirm a
    /// commit the crash lost. Not worth that.)
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let plan = plan(batch)?;
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        // On error the transaction is dropped, which rolls it back.
        Self::write(&mut tx, &plan).await.map_err(store_error)?;
        apply_attempts(&mut tx, &batch.attempts).await?;
        tx.commit().await.map_err(store_error)
    }

    /// Delivery attempts update rows committed earlier (a page is sent only
    /// once its row is), in id order (`apply_attempts`), while group commits
    /// insert rows of their own: the two never wait on each other's locks.
    fn takes_concurrent_writes(&self) -> bool {
        true
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
            sqlx::query_as("SELECT id, last_seen, seen_count, state FROM incidents WHERE id = $1")
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
        let list = list_sql(query, Dialect::Postgres)?;
        // Unnamed statement, planned with the actual values every time: the
        // planner then sees how selective a status or a label really is
        // (a generic plan of a cached statement would guess).
        let mut q = sqlx::query_as(&list.sql).persistent(false);
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
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT body::text FROM incident_events WHERE incident_id = $1 ORDER BY seq",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.iter().map(|(body,)| decode::event(id, body)).collect()
    }

    async fn alerts(&self, id: IncidentId) -> Result<Vec<StoredAlert>, StoreError> {
        let rows: Vec<AlertColumns> = sqlx::query_as(
            "SELECT incident_id, fingerprint, status, source, dedup_key, labels::text, \
             annotations::text, starts_at, ends_at, received_at, extra \
             FROM alerts WHERE incident_id = $1 ORDER BY id",
        )
        .bind(db_id(id)?)
        .fetch_all(&self.pool)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(decode::alert).collect()
    }

    async fn ping(&self) -> Result<(), StoreError> {
        let now = chrono::Utc::now().timestamp_millis();
        sqlx::query(
            "INSERT INTO store_probe (id, at) VALUES (1, $1) \
             ON CONFLICT (id) DO UPDATE SET at = excluded.at",
        )
        .bind(now)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(store_error)
    }

    async fn save_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO silences (id, starts_at, ends_at, created_at, body) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (id) DO UPDATE SET starts_at = excluded.starts_at, \
             ends_at = excluded.ends_at, body = excluded.body",
        )
        .bind(silences::db_id(silence.id)?)
        .bind(silences::millis(silence.starts_at))
        .bind(silences::millis(silence.ends_at))
        .bind(silences::millis(silence.created_at))
        .bind(silences::silence_body(silence)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(store_error)
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
        sqlx::query(
            "INSERT INTO silenced_alerts (silence_id, fingerprint, received_at, body) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(silences::db_id(silence)?)
        .bind(alert.fingerprint().to_string())
        .bind(received_at.as_millis())
        .bind(silences::alert_body(alert)?)
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(store_error)
    }

    async fn load_heartbeats(&self) -> Result<Vec<(String, HeartbeatState)>, StoreError> {
        let rows: Vec<heartbeats::HeartbeatRow> = sqlx::query_as(heartbeats::SELECT_SQL)
            .fetch_all(&self.pool)
            .await
            .map_err(store_error)?;
        Ok(heartbeats::from_rows(rows))
    }

    async fn save_heartbeat(&self, name: &str, state: &HeartbeatState) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO heartbeats (name, last_ping_ms, deadline_ms, missed, updated_at) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET last_ping_ms = excluded.last_ping_ms, \
             deadline_ms = excluded.deadline_ms, missed = excluded.missed, \
             updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(state.last_ping.map(Timestamp::as_millis))
        .bind(state.deadline.as_millis())
        .bind(state.missed)
        .bind(heartbeats::now_ms())
        .execute(&self.pool)
        .await
        .map(|_| ())
        .map_err(store_error)
    }

    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        outcome: &AttemptOutcome,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        // Read, apply `Delivery::record`, write back, in one transaction.
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        apply_attempt(&mut tx, key, outcome, at).await?;
        tx.commit().await.map_err(store_error)
    }

    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await.map_err(store_error)?;
        apply_attempts(&mut tx, attempts).await?;
        tx.commit().await.map_err(store_error)
    }

    async fn pending_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries_where("status = 'pending'", None).await
    }

    async fn deliveries(&self, incident: IncidentId) -> Result<Vec<Delivery>, StoreError> {
        self.deliveries_where("incident_id = $1", Some(db_id(incident)?))
            .await
    }
}

/// Applies delivery attempts inside `tx` (`deliveries::recorded_all`): one
/// statement reads and locks the rows of their keys, one writes back those
/// that changed. One on a key not in the log is skipped (with a warning),
/// not an error: it must not lose the others.
async fn apply_attempts(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    attempts: &[AttemptRecord],
) -> Result<(), StoreError> {
    if attempts.is_empty() {
        return Ok(());
    }
    // Locked in id order, so two transactions never wait on each other.
    let sql = format!(
        "{} WHERE key = ANY($1) ORDER BY id FOR UPDATE",
        deliveries::SELECT_SQL
    );
    let rows: Vec<DeliveryColumns> = sqlx::query_as(&sql)
        .bind(deliveries::keys(attempts))
        .fetch_all(&mut **tx)
        .await
        .map_err(store_error)?;
    let changed = deliveries::recorded_all(rows, attempts)?;
    if changed.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "UPDATE notifications AS n SET status = t.status, attempts = t.attempts, \
         last_error = t.last_error, external_ref = t.external_ref, updated_at = t.updated_at \
         FROM UNNEST($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[]) \
         AS t(id, status, attempts, last_error, external_ref, updated_at) \
         WHERE n.id = t.id",
    )
    .bind(changed.iter().map(|(id, _)| *id).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.status).collect::<Vec<_>>())
    .bind(changed.iter().map(|(_, r)| r.attempts).collect::<Vec<_>>())
    .bind(
        changed
            .iter()
            .map(|(_, r)| r.last_error.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        changed
            .iter()
            .map(|(_, r)| r.external_ref.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(
        changed
            .iter()
            .map(|(_, r)| r.updated_at)
            .collect::<Vec<_>>(),
    )
    .execute(&mut **tx)
    .await
    .map_err(store_error)?;
    Ok(())
}

/// One attempt inside a transaction: the row read (locked where the
/// backend needs it), `Delivery::record` applied, the row written back.
/// An unknown key is `Rejected`.
async fn apply_attempt(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    key: &DeliveryKey,
    outcome: &AttemptOutcome,
    at: Timestamp,
) -> Result<(), StoreError> {
    let sql = format!("{} WHERE key = $1 FOR UPDATE", deliveries::SELECT_SQL);
    let row: Option<DeliveryColumns> = sqlx::query_as(&sql)
        .bind(&key.0)
        .fetch_optional(&mut **tx)
        .await
        .map_err(store_error)?;
    let row = row.ok_or_else(|| deliveries::unknown(key))?;
    if let Some((id, r)) = deliveries::recorded(row, outcome, at)? {
        sqlx::query(
            "UPDATE notifications SET status = $1, attempts = $2, last_error = $3, \
             external_ref = $4, updated_at = $5 WHERE id = $6",
        )
        .bind(r.status)
        .bind(r.attempts)
        .bind(&r.last_error)
        .bind(&r.external_ref)
        .bind(r.updated_at)
        .bind(id)
        .execute(&mut **tx)
        .await
        .map_err(store_error)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::quote_ident;

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("lim"), "\"lim\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
