-- The store probe's one row (incident_actors::store_health): every second
-- lim writes it in a transaction of its own, so readiness sees a full or
-- read-only disk, not only a server that answers. `at` is milliseconds
-- since the Unix epoch (UTC), for people only.
CREATE TABLE store_probe (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    at BIGINT  NOT NULL
);
