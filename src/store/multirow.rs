//! Multi-row statements for SQLite: a group commit writes each kind of row
//! with a few `INSERT … VALUES (…), (…), …` statements instead of one
//! statement per row. sqlx runs every SQLite statement as a round trip to
//! the connection's worker thread, and under the mixed load those round
//! trips (five or six per state change) were most of a commit's time.
//!
//! SQLite has no arrays to `UNNEST` (what the PostgreSQL store does), so
//! the statement text depends on the number of rows. To keep the texts few
//! (sqlx prepares and caches each one), a batch of rows is cut into chunks
//! whose sizes are powers of two, largest first, at most [`MAX_ROWS`]: 23
//! rows are written as 16 + 4 + 2 + 1, 300 as 128 + 128 + 32 + 8 + 4. So
//! each statement kind has at most eight texts, built once, and a batch of
//! n rows takes at most n / 128 + 8 statements. Rows keep their order
//! (SQLite inserts a `VALUES` list in order, so `AUTOINCREMENT`-style ids
//! follow the batch).

use std::sync::OnceLock;

/// Most rows in one statement (16 columns × 128 is 2,048 parameters, far
/// under SQLite's limit of 32,766).
pub(crate) const MAX_ROWS: usize = 128;

/// One text per chunk size: 1, 2, 4, …, `MAX_ROWS`.
const SIZES: usize = MAX_ROWS.trailing_zeros() as usize + 1;

/// A statement of the form `head (?, …), (?, …), … tail`, one `(?, …)`
/// group of `columns` parameters per row.
pub(crate) struct MultiRow {
    head: &'static str,
    columns: usize,
    tail: &'static str,
    texts: OnceLock<Vec<String>>,
}

impl MultiRow {
    pub(crate) const fn new(head: &'static str, columns: usize, tail: &'static str) -> Self {
        MultiRow {
            head,
            columns,
            tail,
            texts: OnceLock::new(),
        }
    }

    fn build(&self, rows: usize) -> String {
        let group = format!("({})", vec!["?"; self.columns].join(", "));
        let values = vec![group.as_str(); rows].join(", ");
        format!("{}{values}{}", self.head, self.tail)
    }

    /// The text for `rows` rows, a chunk size [`chunks`] yields.
    ///
    /// # Panics
    /// If `rows` is not a power of two up to [`MAX_ROWS`] (a bug here, not
    /// a condition of the data).
    pub(crate) fn sql(&self, rows: usize) -> &str {
        assert!(
            rows.is_power_of_two() && rows <= MAX_ROWS,
            "chunk of {rows} rows"
        );
        let texts = self
            .texts
            .get_or_init(|| (0..SIZES).map(|i| self.build(1 << i)).collect());
        &texts[rows.trailing_zeros() as usize]
    }
}

/// `rows` cut into chunks of power-of-two sizes, largest first, in order.
pub(crate) fn chunks<T>(rows: &[T]) -> Chunks<'_, T> {
    Chunks { rest: rows }
}

pub(crate) struct Chunks<'a, T> {
    rest: &'a [T],
}

impl<'a, T> Iterator for Chunks<'a, T> {
    type Item = &'a [T];

    fn next(&mut self) -> Option<&'a [T]> {
        if self.rest.is_empty() {
            return None;
        }
        let n = self.rest.len().min(MAX_ROWS);
        // The largest power of two not above n.
        let size = 1 << (usize::BITS - 1 - n.leading_zeros());
        let (chunk, rest) = self.rest.split_at(size);
        self.rest = rest;
        Some(chunk)
    }
}

/// Snapshots, inserted or written over the stored row (the counters of
/// repeats only move forward).
pub(crate) static INCIDENTS: MultiRow = MultiRow::new(
    "INSERT INTO incidents (id, fingerprint, status, title, severity, service, labels, \
     alert_count, seen_count, created_at, updated_at, last_seen, resolved_at, version, state) \
     VALUES ",
    15,
    " ON CONFLICT (id) DO UPDATE SET \
     fingerprint = excluded.fingerprint, status = excluded.status, title = excluded.title, \
     severity = excluded.severity, service = excluded.service, labels = excluded.labels, \
     alert_count = excluded.alert_count, \
     seen_count = MAX(incidents.seen_count, excluded.seen_count), \
     created_at = excluded.created_at, updated_at = excluded.updated_at, \
     last_seen = MAX(incidents.last_seen, excluded.last_seen), \
     resolved_at = excluded.resolved_at, version = excluded.version, state = excluded.state",
);

/// Timeline events.
pub(crate) static EVENTS: MultiRow = MultiRow::new(
    "INSERT INTO incident_events (incident_id, seq, at, kind, body) VALUES ",
    5,
    "",
);

/// Received alerts that changed state.
pub(crate) static ALERTS: MultiRow = MultiRow::new(
    "INSERT INTO alerts (incident_id, fingerprint, status, source, dedup_key, labels, \
     annotations, starts_at, ends_at, received_at, extra) VALUES ",
    11,
    "",
);

/// Repeat counters (`id, last_seen, seen_count, version, state`): the
/// counters only move forward, and a refreshed snapshot replaces only the
/// version it was taken from (`version` NULL: none).
pub(crate) static TOUCHES: MultiRow = MultiRow::new(
    "WITH t(id, last_seen, seen_count, version, state) AS (VALUES ",
    5,
    ") UPDATE incidents SET last_seen = MAX(incidents.last_seen, t.last_seen), \
     seen_count = MAX(incidents.seen_count, t.seen_count), \
     state = CASE WHEN incidents.version = t.version THEN t.state ELSE incidents.state END \
     FROM t WHERE incidents.id = t.id",
);

/// Delivery log rows; a key already in the log is left as it is.
pub(crate) static DELIVERIES: MultiRow = MultiRow::new(
    "INSERT INTO notifications (key, incident_id, event, recipient, transport, status, \
     attempts, last_error, external_ref, created_at, updated_at) VALUES ",
    11,
    " ON CONFLICT (key) DO NOTHING",
);

/// Delivery log rows moved forward by attempts (`id, status, attempts,
/// last_error, external_ref, updated_at`).
pub(crate) static ATTEMPTS: MultiRow = MultiRow::new(
    "WITH t(id, status, attempts, last_error, external_ref, updated_at) AS (VALUES ",
    6,
    ") UPDATE notifications SET status = t.status, attempts = t.attempts, \
     last_error = t.last_error, external_ref = t.external_ref, updated_at = t.updated_at \
     FROM t WHERE notifications.id = t.id",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_in_order() {
        for n in 0..=700usize {
            let rows: Vec<usize> = (0..n).collect();
            let parts: Vec<&[usize]> = chunks(&rows).collect();
            assert!(parts
                .iter()
                .all(|c| c.len().is_power_of_two() && c.len() <= MAX_ROWS));
            assert!(parts.windows(2).all(|w| w[0].len() >= w[1].len()));
            assert_eq!(parts.concat(), rows, "{n} rows");
            assert!(parts.len() <= n / MAX_ROWS + SIZES);
        }
        let sizes: Vec<usize> = chunks(&[0; 23]).map(<[_]>::len).collect();
        assert_eq!(sizes, [16, 4, 2, 1]);
    }

    #[test]
    fn texts_have_one_group_per_row() {
        let s = EVENTS.sql(4);
        assert_eq!(s.matches("(?, ?, ?, ?, ?)").count(), 4);
        assert_eq!(s.matches('?').count(), 20);
        assert!(INCIDENTS.sql(1).starts_with("INSERT INTO incidents"));
        assert_eq!(INCIDENTS.sql(128).matches('?').count(), 15 * 128);
        assert!(TOUCHES
            .sql(2)
            .contains("(?, ?, ?, ?, ?), (?, ?, ?, ?, ?)) UPDATE"));
    }

    #[test]
    #[should_panic(expected = "chunk of 3 rows")]
    fn other_sizes_are_a_bug() {
        let _ = EVENTS.sql(3);
    }
}
