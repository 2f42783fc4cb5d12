-- lim schema, PostgreSQL flavour. Keep in step with migrations/sqlite/0001_init.sql:
-- same tables, same columns, same meaning.
--
-- Timestamps are BIGINT milliseconds since the Unix epoch (UTC).
-- Fingerprints are TEXT, 16 lower-case hex digits.
-- JSON (labels, annotations, event bodies) is stored as JSONB.

-- One row per incident: queryable columns plus the full snapshot in `state`
-- (incident_actors::codec). `last_seen` and `seen_count` are also moved by
-- touches (repeats) without rewriting the snapshot; readers take the max of
-- column and snapshot.
CREATE TABLE incidents (
    id          BIGINT  PRIMARY KEY,
    fingerprint TEXT    NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN ('triggered', 'acknowledged', 'resolved')),
    title       TEXT    NOT NULL,
    severity    TEXT    NULL,
    service     TEXT    NOT NULL,
    labels      JSONB   NOT NULL,
    alert_count BIGINT  NOT NULL,
    seen_count  BIGINT  NOT NULL,
    created_at  BIGINT  NOT NULL,
    updated_at  BIGINT  NOT NULL,
    last_seen   BIGINT  NOT NULL,
    resolved_at BIGINT  NULL,
    version     BIGINT  NOT NULL,
    state       BYTEA   NOT NULL
);

-- The database itself refuses two open incidents for one fingerprint.
CREATE UNIQUE INDEX incidents_open_fingerprint
    ON incidents (fingerprint) WHERE status <> 'resolved';

-- Listing by status, newest first (listing without a filter uses the primary key).
CREATE INDEX incidents_status_id ON incidents (status, id DESC);

-- Label queries (`labels @> '{"model":"gpt-4o"}'`).
CREATE INDEX incidents_labels ON incidents USING GIN (labels);

-- The timeline: one row per event, ordered by `seq` within an incident.
CREATE TABLE incident_events (
    incident_id BIGINT  NOT NULL REFERENCES incidents (id),
    seq         INTEGER NOT NULL,
    at          BIGINT  NOT NULL,
    kind        TEXT    NOT NULL,
    body        JSONB   NOT NULL,               -- JSON of the TimelineEvent
    PRIMARY KEY (incident_id, seq)
);

-- Alerts received that changed an incident's state.
CREATE TABLE alerts (
    id          BIGSERIAL PRIMARY KEY,
    incident_id BIGINT  NOT NULL REFERENCES incidents (id),
    fingerprint TEXT    NOT NULL,               -- the alert's own (label set) fingerprint
    status      TEXT    NOT NULL CHECK (status IN ('firing', 'resolved')),
    source      TEXT    NOT NULL,
    dedup_key   TEXT    NULL,
    labels      JSONB   NOT NULL,
    annotations JSONB   NOT NULL,
    starts_at   BIGINT  NOT NULL,
    ends_at     BIGINT  NULL,
    received_at BIGINT  NOT NULL
);

CREATE INDEX alerts_incident_id ON alerts (incident_id, id);
