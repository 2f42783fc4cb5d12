-- Incidents whose rows in incident_labels may be behind their snapshot.
-- A group commit names each incident it writes here (one small B-tree)
-- instead of writing its label rows; the label index catches up in
-- transactions of its own, which delete the names they caught up
-- (src/store/label_backlog.rs). A name commits with its incident and leaves
-- with its label rows, so after a crash the names left say what is behind.
CREATE TABLE incident_labels_backlog (
    incident_id INTEGER PRIMARY KEY
);
