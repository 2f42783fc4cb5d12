-- Indexes of the incident list (GET /v1/incidents; src/store/query.rs).
-- Keep in step with migrations/postgres/0003_list_indexes.sql.
--
-- Every list is ordered by (created_at, id) or (updated_at, id), newest or
-- oldest first, and paged by keyset (`created_at <= ? AND (created_at < ?
-- OR id < ?)`), so each index ends with the sort key and id: the rows come
-- out in order, the cursor is a seek, and LIMIT stops the scan. A btree
-- serves both directions. Filters without an index of their own (severity;
-- status and labels under updated_desc; labels within open incidents,
-- which are few) are checked on the rows the index yields.
--
-- The one table here that PostgreSQL does not have, `incident_labels`, is
-- an index SQLite cannot express (see below); the schemas otherwise stay
-- the same.

-- (status, id DESC) served the old newest-first-by-id list; superseded.
DROP INDEX incidents_status_id;

-- No filter, and since/until alone.
CREATE INDEX incidents_created ON incidents (created_at, id);

-- status=triggered|acknowledged|resolved, with or without since/until.
CREATE INDEX incidents_status_created ON incidents (status, created_at, id);

-- status=open: written `status <> 'resolved'`, this index's own predicate,
-- so the open incidents come out in created order without a sort.
CREATE INDEX incidents_open_created ON incidents (created_at, id)
    WHERE status <> 'resolved';

-- service=…
CREATE INDEX incidents_service_created ON incidents (service, created_at, id);

-- sort=updated_desc.
CREATE INDEX incidents_updated ON incidents (updated_at, id);

-- Label filters (label=model=gpt-4o). SQLite cannot index inside a JSON
-- column, so the labels of every incident are also rows here, ordered like
-- the list: one label's incidents come out newest (or oldest) first, and a
-- cursor is a seek. PostgreSQL has its GIN index on `labels` instead.
-- The store adds the rows of every incident a batch writes, in the same
-- transaction, with one statement (`INSERT OR IGNORE … json_each`); labels
-- are set when an incident opens and never change. (Triggers would keep it
-- too, but any trigger on `incidents` made each upsert much slower.)
CREATE TABLE incident_labels (
    key         TEXT    NOT NULL,
    value       TEXT    NOT NULL,
    created_at  INTEGER NOT NULL,
    incident_id INTEGER NOT NULL,
    PRIMARY KEY (key, value, created_at, incident_id)
) WITHOUT ROWID;

INSERT INTO incident_labels (key, value, created_at, incident_id)
    SELECT j.key, j.value, i.created_at, i.id
    FROM incidents AS i, json_each(i.labels) AS j;
