-- Indexes of the incident list (GET /v1/incidents; src/store/query.rs).
-- Keep in step with migrations/sqlite/0003_list_indexes.sql.
--
-- Every list is ordered by (created_at, id) or (updated_at, id), newest or
-- oldest first, and paged by keyset (`created_at <= $n AND (created_at < $n
-- OR id < $m)`), so each index ends with the sort key and id: the rows come
-- out in order, the cursor is a seek, and LIMIT stops the scan. A btree
-- serves both directions. Label filters (`labels @> '{"k":"v"}'`) use the
-- GIN index `incidents_labels` of 0001 when the planner finds them more
-- selective than the ordered scan; severity is checked on the rows.

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
