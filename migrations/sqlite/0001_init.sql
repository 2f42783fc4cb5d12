-- lim schema, SQLite flavour. Keep in step with migrations/postgres/0001_init.sql:
-- same tables, same columns, same meaning.
--
-- Timestamps are INTEGER milliseconds since the Unix epoch (UTC).
-- Fingerprints are TEXT, 16 lower-case hex digits.
-- JSON (labels, annotations, event bodies) is stored as TEXT.

-- One row per incident: queryable columns plus the full snapshot in `state`
-- (incident_actors::codec). `last_seen` and `seen_count` are also moved by
-- touches (repeats) without rewriting the snapshot; readers take the max of
-- column and snapshot.
CREATE TABLE incidents (
    id          INTEGER PRIMARY KEY,            -- 64-bit; the rowid alias
    fingerprint TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('triggered', 'acknowledged', 'resolved')),
    title       TEXT    NOT NULL,
    severity    TEXT    NULL,
    service     TEXT    NOT NULL,
    labels      TEXT    NOT NULL,               -- JSON object
    alert_count INTEGER NOT NULL,
    seen_count  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    last_seen   INTEGER NOT NULL,
    resolved_at INTEGER NULL,
    version     INTEGER NOT NULL,
    state       BLOB    NOT NULL
);

-- The database itself refuses two open incidents for one fingerprint.
CREATE UNIQUE INDEX incidents_open_fingerprint
    ON incidents (fingerprint) WHERE status <> 'resolved';

-- Listing by status, newest first (listing without a filter uses the primary key).
CREATE INDEX incidents_status_id ON incidents (status, id DESC);

-- The timeline: one row per event, ordered by `seq` within an incident.
CREATE TABLE incident_events (
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    seq         INTEGER NOT NULL,
    at          INTEGER NOT NULL,
    kind        TEXT    NOT NULL,
    body        TEXT    NOT NULL,               -- JSON of the TimelineEvent
    PRIMARY KEY (incident_id, seq)
) WITHOUT ROWID;

-- Alerts received that changed an incident's state.
CREATE TABLE alerts (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    incident_id INTEGER NOT NULL REFERENCES incidents (id),
    fingerprint TEXT    NOT NULL,               -- the alert's own (label set) fingerprint
    status      TEXT    NOT NULL CHECK (status IN ('firing', 'resolved')),
    source      TEXT    NOT NULL,
    dedup_key   TEXT    NULL,
    labels      TEXT    NOT NULL,               -- JSON object
    annotations TEXT    NOT NULL,               -- JSON object
    starts_at   INTEGER NOT NULL,
    ends_at     INTEGER NULL,
    received_at INTEGER NOT NULL
);

CREATE INDEX alerts_incident_id ON alerts (incident_id, id);
