-- Heartbeat monitors (dead man's switches): one row per monitor name, its
-- durable state (incident_actors::domain::HeartbeatState), upserted by the
-- monitor's actor on every ping and miss. Rows of monitors no longer
-- configured are kept and ignored. Times are milliseconds since the Unix
-- epoch (UTC); `updated_at` is the store's own clock, for people only.
CREATE TABLE heartbeats (
    name         TEXT    PRIMARY KEY,
    last_ping_ms BIGINT  NULL,
    deadline_ms  BIGINT  NOT NULL,
    missed       BOOLEAN NOT NULL CHECK (missed IN (0, 1)),
    updated_at   BIGINT  NOT NULL
);
