//! SQLite's label index (`incident_labels`) kept behind the group commits
//! and caught up in transactions of its own.
//!
//! Why: the label index is the list's, derived from each incident's labels
//! and its two sort keys, and it was most of what a state change wrote.
//! Under the mixed ingest load its two B-trees took 25.7 of a group
//! commit's 61 WAL frames (42 %; frames of a WAL counted by the B-tree
//! their page belongs to, BENCHMARKS.md "Eleventh session"): each incident
//! has a row per label in each of them, a resolve moves every one of them
//! (`updated_at`), and rows of unrelated incidents sit on different pages,
//! so every commit rewrote a page per label row. Written for many incidents
//! at once, the rows of one label share pages.
//!
//! How: a group commit names each incident it writes in
//! `incident_labels_backlog` ([`NAME`]; a B-tree of a few pages). A
//! catch-up ([`catch_up_chunk`], one transaction) writes the label rows of
//! the first [`CHUNK`] incidents named there from their stored rows, as
//! the commit used to, and deletes those names. The store runs catch-ups
//! every [`CATCH_UP_EVERY`] and, so that a list never misses an incident
//! already answered for, before every list query with a label filter (every
//! such query reads the label index, `query.rs`), which it skips when no
//! commit returned since the last catch-up that emptied the backlog
//! (`sqlite.rs`, `LabelCommits`).
//!
//! Nothing is lost on a crash: a name commits with its incident's snapshot,
//! and leaves in the transaction that writes the label rows, so the names
//! left after a restart are exactly the incidents whose label rows are
//! behind; the next catch-up writes them. PostgreSQL keeps its label index
//! in the commit (`postgres.rs`): there the commit is one statement, and
//! its rows cost a round trip less than a second transaction would.

use std::time::Duration;

use incident_actors::ports::StoreError;
use rusqlite::Connection;

use super::sqlite_writer::store_error;

/// How often the store catches the label index up without being asked.
pub(super) const CATCH_UP_EVERY: Duration = Duration::from_millis(250);

/// Most incidents one catch-up transaction takes, so that a long backlog
/// (after a restart, or a seeded database) is written in jobs the group
/// commits can go between.
pub(super) const CHUNK: i64 = 1_000;

/// A group commit's name for an incident it wrote.
pub(super) const NAME: &str =
    "INSERT INTO incident_labels_backlog (incident_id) VALUES (?1) ON CONFLICT DO NOTHING";

/// The label rows of the first `?1` named incidents, from their stored
/// labels and sort keys (`WHERE true`: SQLite's parser needs a `WHERE`
/// between a join and an upsert's `ON CONFLICT`).
const ROWS: &str = "INSERT INTO incident_labels (key, value, created_at, incident_id, updated_at) \
SELECT l.key, l.value, i.created_at, i.id, i.updated_at \
FROM (SELECT incident_id FROM incident_labels_backlog ORDER BY incident_id LIMIT ?1) AS b \
JOIN incidents AS i ON i.id = b.incident_id CROSS JOIN json_each(i.labels) AS l WHERE true \
ON CONFLICT (key, value, created_at, incident_id) DO UPDATE \
SET updated_at = excluded.updated_at WHERE incident_labels.updated_at <> excluded.updated_at";

/// The same names, caught up.
const CAUGHT_UP: &str = "DELETE FROM incident_labels_backlog WHERE incident_id IN \
(SELECT incident_id FROM incident_labels_backlog ORDER BY incident_id LIMIT ?1)";

/// One catch-up transaction: the label rows of up to [`CHUNK`] named
/// incidents written and their names deleted. Whether names are left.
pub(super) fn catch_up_chunk(conn: &Connection) -> Result<bool, StoreError> {
    let run = |sql: &str| -> rusqlite::Result<usize> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([CHUNK]))
    };
    // Read first, outside a write transaction: an empty backlog (an idle
    // lim, most lists) costs no write lock and no WAL frame.
    let named: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM incident_labels_backlog)")
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(store_error)?;
    if !named {
        return Ok(false);
    }
    conn.execute_batch("BEGIN IMMEDIATE").map_err(store_error)?;
    // Within one transaction both statements see the same first names.
    run(ROWS).map_err(store_error)?;
    let caught_up = run(CAUGHT_UP).map_err(store_error)?;
    conn.execute_batch("COMMIT").map_err(store_error)?;
    Ok(caught_up as i64 == CHUNK)
}
