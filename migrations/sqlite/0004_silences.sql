-- Silences (Alertmanager matchers; the whole silence as JSON in `body`) and
-- the alerts they silenced: such an alert opens no incident and pages no one,
-- but is kept here, once per silence and alert fingerprint.
CREATE TABLE silences (
    id         INTEGER PRIMARY KEY,
    starts_at  BIGINT  NOT NULL,
    ends_at    BIGINT  NOT NULL,
    created_at BIGINT  NOT NULL,
    body       TEXT    NOT NULL
);
CREATE INDEX silences_ends_at ON silences (ends_at);

CREATE TABLE silenced_alerts (
    silence_id  BIGINT NOT NULL REFERENCES silences (id),
    fingerprint TEXT   NOT NULL,
    received_at BIGINT NOT NULL,
    body        TEXT   NOT NULL,
    PRIMARY KEY (silence_id, fingerprint)
);
