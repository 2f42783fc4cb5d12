//! SQLite's group commit as statements of fixed text: each kind of row of a
//! batch goes in as one JSON array parameter, read back with `json_each`
//! and `->>`, and the state snapshots (binary) as one blob of them all that
//! each row takes its slice of (`substr` on a blob counts bytes).
//!
//! The text never changes with the batch's shape, so sqlx keeps it prepared
//! on the writer connection (`persistent`), and a commit parses no SQL. It
//! was one multi-row `VALUES` statement per chunk of rows, a text for every
//! shape of batch, parsed and compiled on every commit: `sqlite3Prepare`
//! was 8 % of lim's samples under the mixed ingest load, a fifth of the
//! SQLite threads' time (BENCHMARKS.md, fifth session); with this text the
//! mean commit under that load went from 5.45 to 3.4-3.8 ms.
//!
//! A commit is still two round trips to the connection's thread ([`HEAD`]
//! then [`TAIL`]): the first writes the batch and reads the delivery rows
//! its attempts apply to, the second writes those and commits.

use std::sync::LazyLock;

use serde::Serialize;
use sqlx::sqlite::SqliteArguments;
use sqlx::Arguments;

use incident_actors::ports::StoreError;

use super::deliveries::{self, DeliveryRow};
use super::plan::{IncidentRow, Plan};

/// A batch's snapshots, inserted or written over. Its parameters (and
/// those of every statement of [`HEAD`]) are positional, bound in the order
/// they appear ([`head_args`]): sqlx numbers `?` across the statements of a
/// text in turn, and does not bind `?N` past a gap in one statement's
/// numbers.
/// Resolved snapshots go first: they free fingerprints that open ones of
/// the same batch may take.
///
/// An incident's fingerprint, title, severity, service, labels and
/// `created_at` are fixed when it opens (`Incident::open`), so a row written
/// over keeps its own: SQLite rewrites the entries of every index whose
/// columns an `UPDATE` sets, equal or not, and two of the list indexes
/// (`incidents_created`, `incidents_service_created`) are on those columns
/// alone. The counters of repeats only move forward.
const UPSERT_INCIDENTS: &str =
    "INSERT INTO incidents (id, fingerprint, status, title, severity, service, labels, \
alert_count, seen_count, created_at, updated_at, last_seen, resolved_at, version, state) \
SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10, \
r->>11, r->>12, r->>13, substr(?, r->>14, r->>15) \
FROM (SELECT value AS r FROM json_each(?) ORDER BY key) WHERE true \
ON CONFLICT (id) DO UPDATE SET status = excluded.status, alert_count = excluded.alert_count, \
seen_count = MAX(incidents.seen_count, excluded.seen_count), updated_at = excluded.updated_at, \
last_seen = MAX(incidents.last_seen, excluded.last_seen), resolved_at = excluded.resolved_at, \
version = excluded.version, state = excluded.state";

/// The label index, events, alerts, touches and deliveries. Events, alerts
/// and deliveries go in in batch order (`ORDER BY key`, the array index):
/// alert ids follow it, and of a delivery key given twice the first row
/// stays, as a key already in the log does (`DO NOTHING`: a replayed
/// commit never pages twice). A refreshed snapshot only replaces the one it
/// was taken from.
const ROWS: &str = "INSERT INTO incident_labels (key, value, created_at, incident_id, updated_at) \
SELECT l.key, l.value, i.created_at, i.id, i.updated_at \
FROM json_each(?) AS w CROSS JOIN incidents AS i CROSS JOIN json_each(i.labels) AS l \
WHERE i.id = w.value \
ON CONFLICT (key, value, created_at, incident_id) DO UPDATE \
SET updated_at = excluded.updated_at WHERE incident_labels.updated_at <> excluded.updated_at;
INSERT INTO incident_events (incident_id, seq, at, kind, body) \
SELECT r->>0, r->>1, r->>2, r->>3, r->>4 FROM (SELECT value AS r FROM json_each(?) ORDER BY key);
INSERT INTO alerts (incident_id, fingerprint, status, source, dedup_key, labels, annotations, \
starts_at, ends_at, received_at, extra) \
SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10 \
FROM (SELECT value AS r FROM json_each(?) ORDER BY key);
WITH t(id, last_seen, seen_count, version, state) AS MATERIALIZED \
(SELECT r->>0, r->>1, r->>2, r->>3, \
CASE WHEN r->>3 IS NULL THEN NULL ELSE substr(?, r->>4, r->>5) END \
FROM (SELECT value AS r FROM json_each(?))) \
UPDATE incidents SET last_seen = MAX(incidents.last_seen, t.last_seen), \
seen_count = MAX(incidents.seen_count, t.seen_count), \
state = CASE WHEN incidents.version = t.version THEN t.state ELSE incidents.state END \
FROM t WHERE incidents.id = t.id;
INSERT INTO notifications (key, incident_id, event, recipient, transport, status, attempts, \
last_error, external_ref, created_at, updated_at) \
SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5, r->>6, r->>7, r->>8, r->>9, r->>10 \
FROM (SELECT value AS r FROM json_each(?) ORDER BY key) WHERE true \
ON CONFLICT (key) DO NOTHING";

/// The text of the first round trip: `BEGIN IMMEDIATE`, the resolved then
/// the open snapshots, the other rows, and the read of the attempts'
/// delivery rows.
pub(crate) static HEAD: LazyLock<String> = LazyLock::new(|| {
    format!(
        "BEGIN IMMEDIATE;\n{UPSERT_INCIDENTS};\n{UPSERT_INCIDENTS};\n{ROWS};\n{} \
         WHERE key IN (SELECT value FROM json_each(?))",
        deliveries::SELECT_SQL
    )
});

/// The delivery rows the attempts changed (the one parameter, a JSON array of
/// `[id, status, attempts, last_error, external_ref, updated_at]`), then
/// `COMMIT`.
pub(crate) const TAIL: &str = "WITH t(id, status, attempts, last_error, external_ref, updated_at) \
AS MATERIALIZED (SELECT r->>0, r->>1, r->>2, r->>3, r->>4, r->>5 \
FROM (SELECT value AS r FROM json_each(?))) \
UPDATE notifications SET status = t.status, attempts = t.attempts, last_error = t.last_error, \
external_ref = t.external_ref, updated_at = t.updated_at FROM t WHERE notifications.id = t.id;
COMMIT";

/// A blob of states, for [`slice`]. It begins with one byte no row takes:
/// SQLite's `substr` of a zero-length blob is NULL, not an empty blob, so
/// a batch whose states were all empty would write NULLs.
fn states(capacity: usize) -> Vec<u8> {
    let mut states = Vec::with_capacity(capacity + 1);
    states.push(0);
    states
}

/// A row's slice of a blob of states: `substr`'s 1-based start and length.
fn slice(states: &mut Vec<u8>, state: &[u8]) -> (usize, usize) {
    let start = states.len() + 1;
    states.extend_from_slice(state);
    (start, state.len())
}

fn json<T: Serialize>(rows: &T, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(rows).map_err(|e| StoreError::Rejected(format!("{what} as JSON: {e}")))
}

fn add<'q, T>(args: &mut SqliteArguments<'q>, value: T) -> Result<(), StoreError>
where
    T: sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + 'q,
{
    args.add(value)
        .map_err(|e| StoreError::Rejected(format!("a value cannot be bound: {e}")))
}

type IncidentJson<'a> = (
    i64,
    &'a str,
    &'static str,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    i64,
    i64,
    i64,
    i64,
    i64,
    Option<i64>,
    i64,
    usize,
    usize,
);

/// Snapshot rows as JSON tuples, and the blob of their states.
fn incidents(rows: &[IncidentRow]) -> (Vec<IncidentJson<'_>>, Vec<u8>) {
    let mut states = states(rows.iter().map(|r| r.state.len()).sum());
    let json = rows
        .iter()
        .map(|r| {
            let (start, len) = slice(&mut states, &r.state);
            (
                r.id,
                r.fingerprint.as_str(),
                r.status,
                r.title.as_str(),
                r.severity.as_deref(),
                r.service.as_str(),
                r.labels.as_str(),
                r.alert_count,
                r.seen_count,
                r.created_at,
                r.updated_at,
                r.last_seen,
                r.resolved_at,
                r.version,
                start,
                len,
            )
        })
        .collect();
    (json, states)
}

/// The parameters of [`HEAD`] for `plan`, and `attempt_keys` (the keys of
/// the batch's attempts, each once).
pub(crate) fn head_args(
    plan: &Plan,
    attempt_keys: &[&str],
) -> Result<SqliteArguments<'static>, StoreError> {
    let (resolved, open) = plan.incidents.split_at(plan.resolved_count());
    let (resolved, resolved_states) = incidents(resolved);
    let (open, open_states) = incidents(open);
    let ids: Vec<i64> = plan.incidents.iter().map(|r| r.id).collect();
    let events: Vec<_> = plan
        .events
        .iter()
        .map(|e| (e.incident_id, e.seq, e.at, e.kind, e.body.as_str()))
        .collect();
    let alerts: Vec<_> = plan
        .alerts
        .iter()
        .map(|a| {
            (
                a.incident_id,
                a.fingerprint.as_str(),
                a.status,
                a.source.as_str(),
                a.dedup_key.as_deref(),
                a.labels.as_str(),
                a.annotations.as_str(),
                a.starts_at,
                a.ends_at,
                a.received_at,
                a.extra.as_deref(),
            )
        })
        .collect();
    let mut touch_states = states(0);
    let touches: Vec<_> = plan
        .touches
        .iter()
        .map(|t| match &t.snapshot {
            Some((version, state)) => {
                let (start, len) = slice(&mut touch_states, state);
                (t.id, t.last_seen, t.seen_count, Some(*version), start, len)
            }
            None => (t.id, t.last_seen, t.seen_count, None, 0, 0),
        })
        .collect();
    let deliveries: Vec<_> = plan
        .deliveries
        .iter()
        .map(|d| {
            (
                d.key.as_str(),
                d.incident_id,
                d.event.as_str(),
                d.recipient.as_str(),
                d.transport.as_str(),
                d.status,
                d.attempts,
                d.last_error.as_deref(),
                d.external_ref.as_deref(),
                d.created_at,
                d.updated_at,
            )
        })
        .collect();

    let mut args = SqliteArguments::default();
    add(&mut args, resolved_states)?;
    add(&mut args, json(&resolved, "incidents")?)?;
    add(&mut args, open_states)?;
    add(&mut args, json(&open, "incidents")?)?;
    add(&mut args, json(&ids, "incident ids")?)?;
    add(&mut args, json(&events, "events")?)?;
    add(&mut args, json(&alerts, "alerts")?)?;
    add(&mut args, touch_states)?;
    add(&mut args, json(&touches, "touches")?)?;
    add(&mut args, json(&deliveries, "deliveries")?)?;
    add(&mut args, json(&attempt_keys, "delivery keys")?)?;
    Ok(args)
}

/// The parameter of [`TAIL`]: the delivery rows `changed`, by id.
pub(crate) fn tail_args(
    changed: &[(i64, DeliveryRow)],
) -> Result<SqliteArguments<'static>, StoreError> {
    let rows: Vec<_> = changed
        .iter()
        .map(|(id, r)| {
            (
                id,
                r.status,
                r.attempts,
                r.last_error.as_deref(),
                r.external_ref.as_deref(),
                r.updated_at,
            )
        })
        .collect();
    let mut args = SqliteArguments::default();
    add(&mut args, json(&rows, "delivery attempts")?)?;
    Ok(args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_parameter_is_bound_once() {
        let head = head_args(&Plan::default(), &[]).unwrap();
        assert_eq!(HEAD.matches('?').count(), head.len());
        let tail = tail_args(&[]).unwrap();
        assert_eq!(TAIL.matches('?').count(), tail.len());
        assert!(!HEAD.contains("?1"), "numbered parameters: {}", *HEAD);
    }
}
