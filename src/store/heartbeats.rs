//! Heartbeat monitor states in SQL, for both backends: one row per monitor
//! name (`migrations/*/0005_heartbeats.sql`), upserted whole. The statements
//! differ only in their parameter markers, so each backend keeps its own
//! text; the row shape and its conversion live here.

use incident_actors::domain::HeartbeatState;
use incident_actors::time::Timestamp;

/// `name, last_ping_ms, deadline_ms, missed`, as selected.
pub(crate) type HeartbeatRow = (String, Option<i64>, i64, bool);

pub(crate) const SELECT_SQL: &str =
    "SELECT name, last_ping_ms, deadline_ms, missed FROM heartbeats";

/// The states in name order, by bytes (as the in-memory store has them):
/// sorted here rather than by `ORDER BY`, whose order follows the
/// database's collation.
pub(crate) fn from_rows(mut rows: Vec<HeartbeatRow>) -> Vec<(String, HeartbeatState)> {
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows.into_iter()
        .map(|(name, last_ping, deadline, missed)| {
            (
                name,
                HeartbeatState {
                    last_ping: last_ping.map(Timestamp),
                    deadline: Timestamp(deadline),
                    missed,
                },
            )
        })
        .collect()
}

/// `updated_at`: the store's own wall clock (informational; the monitor's
/// deadline never depends on it).
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
