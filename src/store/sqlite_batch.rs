//! SQLite's group commit: a [`Plan`] written in one transaction on the
//! writer connection, a prepared statement per kind of row run once per
//! row, synchronously (`sqlite_writer` runs it as one job).
//!
//! The statements' text never changes with the batch's shape, so each is
//! prepared once per connection and kept (`prepare_cached`): compiling SQL
//! per commit was 8 % of lim's samples under the mixed ingest load
//! (BENCHMARKS.md, fifth session). Through sqlx a commit was a few large
//! statements fed JSON arrays (`json_each`), to keep its round trips to
//! sqlx's worker thread few; here a statement costs no round trip, so rows
//! are bound as they are, with no JSON built in Rust and parsed in SQLite.

use std::sync::LazyLock;

use incident_actors::domain::{AttemptOutcome, DeliveryKey};
use incident_actors::ports::{AttemptRecord, StoreError};
use incident_actors::time::Timestamp;
use rusqlite::{params, Connection, OptionalExtension};

use super::deliveries::{self, DeliveryColumns, DeliveryRow};
use super::label_backlog;
use super::plan::Plan;
use super::sqlite_writer::store_error;

/// A snapshot, inserted or written over.
///
/// An incident's fingerprint, title, severity, service, labels and
/// `created_at` are fixed when it opens (`Incident::open`), so a row written
/// over keeps its own: SQLite rewrites the entries of every index whose
/// columns an `UPDATE` sets, equal or not, and two of the list indexes
/// (`incidents_created`, `incidents_service_created`) are on those columns
/// alone. The counters of repeats only move forward.
const UPSERT_INCIDENT: &str = "INSERT INTO incidents (id, fingerprint, status, title, severity, \
service, labels, alert_count, seen_count, created_at, updated_at, last_seen, resolved_at, version, \
state) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
ON CONFLICT (id) DO UPDATE SET status = excluded.status, alert_count = excluded.alert_count, \
seen_count = MAX(incidents.seen_count, excluded.seen_count), updated_at = excluded.updated_at, \
last_seen = MAX(incidents.last_seen, excluded.last_seen), resolved_at = excluded.resolved_at, \
version = excluded.version, state = excluded.state";

const EVENT: &str =
    "INSERT INTO incident_events (incident_id, seq, at, kind, body) VALUES (?1, ?2, ?3, ?4, ?5)";

const ALERT: &str = "INSERT INTO alerts (incident_id, fingerprint, status, source, dedup_key, \
labels, annotations, starts_at, ends_at, received_at, extra) \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// A repeat's counters; a refreshed snapshot only replaces the one it was
/// taken from (a NULL version matches none).
const TOUCH: &str = "UPDATE incidents SET last_seen = MAX(last_seen, ?2), \
seen_count = MAX(seen_count, ?3), \
state = CASE WHEN version = ?4 THEN ?5 ELSE state END WHERE id = ?1";

/// Of a delivery key given twice the first row stays, as a key already in
/// the log does (`DO NOTHING`: a replayed commit never pages twice).
const DELIVERY: &str = "INSERT INTO notifications (key, incident_id, event, recipient, transport, \
status, attempts, last_error, external_ref, created_at, updated_at) \
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) ON CONFLICT (key) DO NOTHING";

/// A delivery row by its key.
static DELIVERY_BY_KEY: LazyLock<String> =
    LazyLock::new(|| format!("{} WHERE key = ?1", deliveries::SELECT_SQL));

const ATTEMPTED: &str = "UPDATE notifications SET status = ?2, attempts = ?3, last_error = ?4, \
external_ref = ?5, updated_at = ?6 WHERE id = ?1";

/// Writes `plan` and records `attempts` in one transaction.
pub(super) fn commit(
    conn: &Connection,
    plan: &Plan,
    attempts: &[AttemptRecord],
) -> Result<(), StoreError> {
    transaction(conn, || {
        write_rows(conn, plan).map_err(store_error)?;
        if !attempts.is_empty() {
            let mut stored = Vec::with_capacity(attempts.len());
            for key in deliveries::keys(attempts) {
                stored.extend(delivery_by_key(conn, key).map_err(store_error)?);
            }
            let changed = deliveries::recorded_all(stored, attempts)?;
            write_attempts(conn, &changed).map_err(store_error)?;
        }
        Ok(())
    })
}

/// One attempt in a transaction of its own: the row read,
/// `Delivery::record` applied, the row written back. An unknown key is
/// `Rejected` (a batch of attempts skips it instead: [`commit`]).
pub(super) fn record_attempt(
    conn: &Connection,
    key: &DeliveryKey,
    outcome: &AttemptOutcome,
    at: Timestamp,
) -> Result<(), StoreError> {
    transaction(conn, || {
        let row = delivery_by_key(conn, &key.0)
            .map_err(store_error)?
            .ok_or_else(|| deliveries::unknown(key))?;
        if let Some(changed) = deliveries::recorded(row, outcome, at)? {
            write_attempts(conn, &[changed]).map_err(store_error)?;
        }
        Ok(())
    })
}

/// `work` between `BEGIN IMMEDIATE` (the write lock up front) and
/// `COMMIT`. On an error the transaction is left open; the writer rolls it
/// back after the job (`sqlite_writer`).
fn transaction(
    conn: &Connection,
    work: impl FnOnce() -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let run = |sql: &str| {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map_err(store_error)
    };
    run("BEGIN IMMEDIATE")?;
    work()?;
    run("COMMIT")?;
    Ok(())
}

fn write_rows(conn: &Connection, plan: &Plan) -> rusqlite::Result<()> {
    // Resolved snapshots first (the plan's order): they free fingerprints
    // that open ones of the same batch may take.
    let mut upsert = conn.prepare_cached(UPSERT_INCIDENT)?;
    for r in &plan.incidents {
        upsert.execute(params![
            r.id,
            r.fingerprint,
            r.status,
            r.title,
            r.severity,
            r.service,
            r.labels,
            r.alert_count,
            r.seen_count,
            r.created_at,
            r.updated_at,
            r.last_seen,
            r.resolved_at,
            r.version,
            r.state,
        ])?;
    }
    // Their label rows follow in a catch-up of their own (`label_backlog`).
    let mut named = conn.prepare_cached(label_backlog::NAME)?;
    for r in &plan.incidents {
        named.execute([r.id])?;
    }
    let mut event = conn.prepare_cached(EVENT)?;
    for e in &plan.events {
        event.execute(params![e.incident_id, e.seq, e.at, e.kind, e.body])?;
    }
    let mut alert = conn.prepare_cached(ALERT)?;
    for a in &plan.alerts {
        alert.execute(params![
            a.incident_id,
            a.fingerprint,
            a.status,
            a.source,
            a.dedup_key,
            a.labels,
            a.annotations,
            a.starts_at,
            a.ends_at,
            a.received_at,
            a.extra,
        ])?;
    }
    let mut touch = conn.prepare_cached(TOUCH)?;
    for t in &plan.touches {
        let (version, state) = match &t.snapshot {
            Some((version, state)) => (Some(*version), Some(state.as_slice())),
            None => (None, None),
        };
        touch.execute(params![t.id, t.last_seen, t.seen_count, version, state])?;
    }
    let mut delivery = conn.prepare_cached(DELIVERY)?;
    for d in &plan.deliveries {
        delivery.execute(params![
            d.key,
            d.incident_id,
            d.event,
            d.recipient,
            d.transport,
            d.status,
            d.attempts,
            d.last_error,
            d.external_ref,
            d.created_at,
            d.updated_at,
        ])?;
    }
    Ok(())
}

/// The delivery row of `key`, as it is in this transaction (rows the
/// batch itself inserted included).
fn delivery_by_key(conn: &Connection, key: &str) -> rusqlite::Result<Option<DeliveryColumns>> {
    conn.prepare_cached(&DELIVERY_BY_KEY)?
        .query_row([key], delivery_columns)
        .optional()
}

/// A row of `deliveries::SELECT_SQL`.
fn delivery_columns(row: &rusqlite::Row<'_>) -> rusqlite::Result<DeliveryColumns> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
        row.get(9)?,
        row.get(10)?,
    ))
}

/// The delivery rows the attempts changed, by id.
fn write_attempts(conn: &Connection, changed: &[(i64, DeliveryRow)]) -> rusqlite::Result<()> {
    let mut update = conn.prepare_cached(ATTEMPTED)?;
    for (id, r) in changed {
        update.execute(params![
            id,
            r.status,
            r.attempts,
            r.last_error,
            r.external_ref,
            r.updated_at,
        ])?;
    }
    Ok(())
}
