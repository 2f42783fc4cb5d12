-- The incident list at a million incidents (benches/list_query.rs;
-- src/store/query.rs). Keep in step with migrations/sqlite/0007_list_updated.sql.
--
-- 0003 ordered every filter by created_at; under sort=updated_desc a status
-- filter had no index in that order. And the GIN index on `labels` finds
-- the incidents of a label in no order: a list of resolved incidents with
-- a common label (tenant=acme: 100,000+ of them) read all its entries and
-- sorted, or walked the whole created order checking the label on each row,
-- whichever the planner guessed cheaper.

-- status=triggered|acknowledged|resolved, sort=updated_desc.
CREATE INDEX incidents_status_updated ON incidents (status, updated_at, id);

-- status=open, sort=updated_desc: the open incidents (few) in updated order.
CREATE INDEX incidents_open_updated ON incidents (updated_at, id)
    WHERE status <> 'resolved';

-- Label filters: the label index SQLite has had since 0003, here too. One
-- row per label of every incident, ordered like the list in both sorts: one
-- label's incidents come out newest created (primary key) or most recently
-- updated (incident_labels_updated) first, and a cursor is a seek. The
-- store's commit keeps it in the transaction that writes the incidents (one
-- upsert for the batch: rows of a new incident added, updated_at moved on
-- those of a changed one); labels and created_at never change. The GIN index
-- stays, for the other labels of a query with several.
CREATE TABLE incident_labels (
    key         TEXT   NOT NULL,
    value       TEXT   NOT NULL,
    created_at  BIGINT NOT NULL,
    incident_id BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    PRIMARY KEY (key, value, created_at, incident_id)
);

INSERT INTO incident_labels (key, value, created_at, incident_id, updated_at)
    SELECT j.key, j.value, i.created_at, i.id, i.updated_at
    FROM incidents AS i, jsonb_each_text(i.labels) AS j;

CREATE INDEX incident_labels_updated ON incident_labels (key, value, updated_at, incident_id);
