-- The incident list at a million incidents (benches/list_query.rs;
-- src/store/query.rs). Keep in step with migrations/postgres/0007_list_updated.sql.
--
-- 0003 ordered every filter by created_at; under sort=updated_desc a status
-- or a label filter had no index in that order, so SQLite sorted every
-- resolved incident (or scanned the whole updated order) for one page.

-- status=triggered|acknowledged|resolved, sort=updated_desc.
CREATE INDEX incidents_status_updated ON incidents (status, updated_at, id);

-- status=open, sort=updated_desc: the open incidents (few) in updated order.
CREATE INDEX incidents_open_updated ON incidents (updated_at, id)
    WHERE status <> 'resolved';

-- label=K=V, sort=updated_desc: the label index also holds each incident's
-- updated_at, in its own order. Labels and created_at never change but
-- updated_at does, so the store's commit moves it on the rows of every
-- incident it writes, in the same transaction and the same statement that
-- adds the rows of a new incident (an upsert); touches (repeats) do not
-- change updated_at.
ALTER TABLE incident_labels ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;

UPDATE incident_labels
    SET updated_at = (SELECT i.updated_at FROM incidents AS i WHERE i.id = incident_labels.incident_id);

CREATE INDEX incident_labels_updated ON incident_labels (key, value, updated_at, incident_id);
