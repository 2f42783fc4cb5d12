-- The delivery log (incident_actors::domain::Delivery): one row per page or
-- update to one recipient. Rows are inserted `pending` in the same
-- transaction as the incident change that causes them, keyed by their
-- idempotency key (a key already present is left as it is), and moved
-- forward by the notifier: delivered, failed, or cancelled. What is still
-- pending at start is sent again. Keep in step with
-- migrations/postgres/0006_notifications.sql.
--
-- `id` orders the rows (oldest first); `event` and `recipient` are JSON of
-- NotificationEvent and Recipient; `transport` (Recipient::transport) is
-- there for people reading the table. Times are milliseconds since the Unix
-- epoch (UTC).
CREATE TABLE notifications (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    key          TEXT    NOT NULL UNIQUE,
    incident_id  INTEGER NOT NULL REFERENCES incidents (id),
    event        TEXT    NOT NULL,
    recipient    TEXT    NOT NULL,
    transport    TEXT    NOT NULL,
    status       TEXT    NOT NULL
        CHECK (status IN ('pending', 'delivered', 'failed', 'cancelled')),
    attempts     INTEGER NOT NULL CHECK (attempts >= 0),
    last_error   TEXT    NULL,
    external_ref TEXT    NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
);

-- An incident's deliveries, oldest first.
CREATE INDEX notifications_incident ON notifications (incident_id, id);

-- What is still pending, oldest first (what a restart sends again).
CREATE INDEX notifications_pending ON notifications (id) WHERE status = 'pending';
