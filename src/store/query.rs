//! The incident list as SQL: one `SELECT` built from an [`IncidentQuery`]
//! for either backend, every value a bound parameter (the SQL text only
//! ever holds column names, operators and parameter markers).
//!
//! The statement is shaped for the indexes of
//! `migrations/*/0003_list_indexes.sql`:
//!
//! * `ORDER BY <key> DESC, id DESC` (or both `ASC`), `<key>` being
//!   `created_at` or `updated_at`, so a btree on `(…, <key>, id)` yields the
//!   rows in order and the `LIMIT` stops the scan;
//! * the cursor (keyset) as `<key> <= ? AND (<key> < ? OR id < ?)`: the
//!   first term is a range the index seeks to, the second drops the rows of
//!   the cursor's own instant up to its id; no `OFFSET`;
//! * `status = 'open'` as `status <> 'resolved'`, literally the predicate
//!   of the partial index of open incidents;
//! * labels either drive the scan from `incident_labels` (a table the
//!   store keeps on both backends, ordered by label then `created_at`, and
//!   by label then `updated_at` in its second index) or are checked per row
//!   of an incident index: on PostgreSQL as `labels @> ?::jsonb`, on SQLite
//!   with an `EXISTS` over `json_each(labels)`; see [`label_driven`] for
//!   which. Key and value are bound either way, so any key is safe (quotes,
//!   dots, `$`).

use incident_actors::domain::IncidentStatus;
use incident_actors::ports::{IncidentQuery, StatusFilter, StoreError};

/// The parameter marker syntax of a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `?1`, `?2`, …
    Sqlite,
    /// `$1`, `$2`, …
    Postgres,
}

/// A bound value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Param {
    Int(i64),
    Text(String),
}

/// A statement and its parameters, in parameter marker order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ListSql {
    pub sql: String,
    pub params: Vec<Param>,
}

struct Builder {
    dialect: Dialect,
    params: Vec<Param>,
    conditions: Vec<String>,
}

impl Builder {
    /// Binds `param`, returning its parameter marker.
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        let n = self.params.len();
        match self.dialect {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }

    fn text(&mut self, value: &str) -> String {
        self.bind(Param::Text(value.to_string()))
    }

    fn int(&mut self, value: i64) -> String {
        self.bind(Param::Int(value))
    }
}

fn out_of_range(what: &str) -> StoreError {
    StoreError::Rejected(format!("{what} is out of range"))
}

/// Whether `query` is read from the label index (`incident_labels`,
/// ordered by `created_at` and, in its second index, by `updated_at` within
/// a label) rather than from an incident index. Which side is smaller is
/// decided by the domain, not by statistics (lim never runs `ANALYZE` on
/// SQLite, and PostgreSQL's guesses about a JSON label are rough): open
/// incidents are few (each is a live actor) while resolved ones pile up
/// forever, so a list of open, triggered or acknowledged incidents scans
/// those in order and checks labels on each, and a list of resolved (or
/// all) incidents with a label scans the first label's entries in order and
/// checks the rest on each (nearly every one passes the status check).
fn label_driven(query: &IncidentQuery) -> bool {
    !query.labels.is_empty()
        && matches!(
            query.status,
            None | Some(StatusFilter::Is(IncidentStatus::Resolved))
        )
}

/// The `SELECT id, last_seen, seen_count, state FROM incidents …` of `query`.
pub(crate) fn list_sql(query: &IncidentQuery, dialect: Dialect) -> Result<ListSql, StoreError> {
    query.check_cursor()?;
    let mut b = Builder {
        dialect,
        params: Vec::new(),
        conditions: Vec::new(),
    };
    let label_driven = label_driven(query);
    // The sort key and id columns the ranges and the order apply to: the
    // label index's own copies when it drives the scan.
    let (key, id_col, from, checked_labels) = if label_driven {
        let (k, v) = &query.labels[0];
        let (k, v) = (b.text(k), b.text(v));
        b.conditions.push(format!("l.key = {k} AND l.value = {v}"));
        (
            if query.sort.by_updated() {
                "l.updated_at"
            } else {
                "l.created_at"
            },
            "l.incident_id",
            match dialect {
                // CROSS JOIN: SQLite keeps the written order, label index outside.
                Dialect::Sqlite => {
                    "incident_labels AS l CROSS JOIN incidents ON incidents.id = l.incident_id"
                }
                // PostgreSQL has no CROSS JOIN … ON; with the order and the
                // LIMIT on the label index's columns, its planner walks that
                // index and looks each incident up by id.
                Dialect::Postgres => {
                    "incident_labels AS l JOIN incidents ON incidents.id = l.incident_id"
                }
            },
            match dialect {
                // The driving label is checked on the row too: the label
                // index only ever adds candidates.
                Dialect::Sqlite => &query.labels[..],
                // Not on PostgreSQL: there `labels @> …` is a guess to the
                // planner (a fixed 0.1 %), which then expects to walk every
                // entry of the label for a page and starts parallel workers
                // (milliseconds) for it. The label index is exact: written in
                // the incident's own transaction, and labels never change.
                Dialect::Postgres => &query.labels[1..],
            },
        )
    } else if query.sort.by_updated() {
        (
            "incidents.updated_at",
            "incidents.id",
            "incidents",
            &query.labels[..],
        )
    } else {
        (
            "incidents.created_at",
            "incidents.id",
            "incidents",
            &query.labels[..],
        )
    };
    match query.status {
        None => {}
        Some(StatusFilter::Is(status)) => {
            let p = b.text(status.as_str());
            b.conditions.push(format!("incidents.status = {p}"));
        }
        // A constant, not a parameter: the partial index's own predicate.
        Some(StatusFilter::Open) => {
            debug_assert_eq!(IncidentStatus::Resolved.as_str(), "resolved");
            b.conditions
                .push("incidents.status <> 'resolved'".to_string());
        }
    }
    if let Some(service) = &query.service {
        let p = b.text(service);
        b.conditions.push(format!("incidents.service = {p}"));
    }
    if let Some(severity) = &query.severity {
        let p = b.text(severity);
        b.conditions.push(format!("incidents.severity = {p}"));
    }
    for (k, v) in checked_labels {
        let condition = match dialect {
            Dialect::Postgres => {
                let object = serde_json::json!({ k: v }).to_string();
                let p = b.text(&object);
                format!("incidents.labels @> {p}::jsonb")
            }
            // Scanning an incident index (open incidents): first a point
            // lookup in the label index by the sort key and id, which the
            // scanned index holds, so SQLite reads the incident's row (and
            // parses its labels) only for the incidents that pass it; then
            // the check on the row's own labels.
            Dialect::Sqlite if !label_driven => {
                let by = if query.sort.by_updated() {
                    "updated_at"
                } else {
                    "created_at"
                };
                let k = b.text(k);
                let v = b.text(v);
                format!(
                    "EXISTS (SELECT 1 FROM incident_labels AS m WHERE m.key = {k} \
                     AND m.value = {v} AND m.{by} = incidents.{by} \
                     AND m.incident_id = incidents.id) \
                     AND EXISTS (SELECT 1 FROM json_each(incidents.labels) AS j \
                     WHERE j.key = {k} AND j.value = {v})"
                )
            }
            Dialect::Sqlite => {
                let k = b.text(k);
                let v = b.text(v);
                format!(
                    "EXISTS (SELECT 1 FROM json_each(incidents.labels) AS j \
                     WHERE j.key = {k} AND j.value = {v})"
                )
            }
        };
        b.conditions.push(condition);
    }
    // since/until are on created_at, which the label index also holds.
    let created = if label_driven {
        "l.created_at"
    } else {
        "incidents.created_at"
    };
    if let Some(since) = query.since {
        let p = b.int(since.as_millis());
        b.conditions.push(format!("{created} >= {p}"));
    }
    if let Some(until) = query.until {
        let p = b.int(until.as_millis());
        b.conditions.push(format!("{created} < {p}"));
    }
    let (dir, cmp, cmp_eq) = if query.sort.descending() {
        ("DESC", "<", "<=")
    } else {
        ("ASC", ">", ">=")
    };
    if let Some(cursor) = query.after {
        let id = i64::try_from(cursor.id.0).map_err(|_| out_of_range("cursor id"))?;
        let at = b.int(cursor.at.as_millis());
        let id = b.int(id);
        b.conditions.push(format!(
            "{key} {cmp_eq} {at} AND ({key} {cmp} {at} OR {id_col} {cmp} {id})"
        ));
    }
    let limit = b.int(i64::from(query.limit));
    let mut sql = format!(
        "SELECT incidents.id, incidents.last_seen, incidents.seen_count, incidents.state \
         FROM {from}"
    );
    if !b.conditions.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&b.conditions.join(" AND "));
    }
    sql.push_str(&format!(
        " ORDER BY {key} {dir}, {id_col} {dir} LIMIT {limit}"
    ));
    Ok(ListSql {
        sql,
        params: b.params,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_actors::domain::IncidentId;
    use incident_actors::ports::{Cursor, IncidentSort};
    use incident_actors::time::Timestamp;

    const SELECT: &str = "SELECT incidents.id, incidents.last_seen, incidents.seen_count, \
                          incidents.state FROM ";

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn default_query_is_newest_first() {
        let s = list_sql(&IncidentQuery::default(), Dialect::Sqlite).unwrap();
        assert_eq!(
            s.sql,
            format!(
                "{SELECT}incidents ORDER BY incidents.created_at DESC, incidents.id DESC LIMIT ?1"
            )
        );
        assert_eq!(s.params, [Param::Int(100)]);
    }

    #[test]
    fn every_value_is_bound() {
        let hostile = "x' OR '1'='1";
        let q = IncidentQuery {
            status: Some(StatusFilter::Open),
            service: Some(hostile.into()),
            severity: Some("critical".into()),
            labels: labels(&[("mo\"del", hostile)]),
            since: Some(Timestamp(10)),
            until: Some(Timestamp(20)),
            sort: IncidentSort::UpdatedDesc,
            after: Some(Cursor {
                sort: IncidentSort::UpdatedDesc,
                at: Timestamp(15),
                id: IncidentId(7),
            }),
            limit: 51,
        };
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let s = list_sql(&q, dialect).unwrap();
            assert!(!s.sql.contains(hostile), "{}", s.sql);
            assert!(!s.sql.contains("mo\"del"), "{}", s.sql);
            assert!(
                s.sql.contains("incidents.status <> 'resolved'"),
                "{}",
                s.sql
            );
            assert!(
                s.sql
                    .ends_with(" ORDER BY incidents.updated_at DESC, incidents.id DESC LIMIT ?9")
                    || s.sql.ends_with(
                        " ORDER BY incidents.updated_at DESC, incidents.id DESC LIMIT $8"
                    ),
                "{}",
                s.sql
            );
        }
        let pg = list_sql(&q, Dialect::Postgres).unwrap();
        assert!(
            pg.sql.contains("incidents.labels @> $3::jsonb"),
            "{}",
            pg.sql
        );
        assert_eq!(
            pg.params[2],
            Param::Text(r#"{"mo\"del":"x' OR '1'='1"}"#.into())
        );
        assert!(pg.sql.contains(
            "incidents.updated_at <= $6 AND (incidents.updated_at < $6 OR incidents.id < $7)"
        ));
    }

    #[test]
    fn ascending_cursor_and_mismatched_sort() {
        let mut q = IncidentQuery {
            sort: IncidentSort::CreatedAsc,
            after: Some(Cursor {
                sort: IncidentSort::CreatedAsc,
                at: Timestamp(5),
                id: IncidentId(3),
            }),
            limit: 2,
            ..IncidentQuery::default()
        };
        let s = list_sql(&q, Dialect::Sqlite).unwrap();
        assert!(
            s.sql.ends_with(
                "WHERE incidents.created_at >= ?1 AND (incidents.created_at > ?1 \
                 OR incidents.id > ?2) \
                 ORDER BY incidents.created_at ASC, incidents.id ASC LIMIT ?3"
            ),
            "{}",
            s.sql
        );
        q.sort = IncidentSort::CreatedDesc;
        assert!(matches!(
            list_sql(&q, Dialect::Sqlite),
            Err(StoreError::Rejected(_))
        ));
    }

    #[test]
    fn resolved_labels_are_read_from_the_label_index() {
        let q = IncidentQuery {
            status: Some(StatusFilter::Is(IncidentStatus::Resolved)),
            labels: labels(&[("model", "gpt-4o"), ("provider", "openai")]),
            since: Some(Timestamp(1)),
            after: Some(Cursor {
                sort: IncidentSort::CreatedDesc,
                at: Timestamp(9),
                id: IncidentId(4),
            }),
            limit: 51,
            ..IncidentQuery::default()
        };
        let s = list_sql(&q, Dialect::Sqlite).unwrap();
        assert_eq!(
            s.sql,
            format!(
                "{SELECT}incident_labels AS l CROSS JOIN incidents ON incidents.id = l.incident_id \
                 WHERE l.key = ?1 AND l.value = ?2 AND incidents.status = ?3 \
                 AND EXISTS (SELECT 1 FROM json_each(incidents.labels) AS j \
                 WHERE j.key = ?4 AND j.value = ?5) \
                 AND EXISTS (SELECT 1 FROM json_each(incidents.labels) AS j \
                 WHERE j.key = ?6 AND j.value = ?7) AND l.created_at >= ?8 \
                 AND l.created_at <= ?9 AND (l.created_at < ?9 OR l.incident_id < ?10) \
                 ORDER BY l.created_at DESC, l.incident_id DESC LIMIT ?11"
            )
        );
        // Open incidents are few: scanned, labels checked on each.
        for status in [
            StatusFilter::Open,
            StatusFilter::Is(IncidentStatus::Triggered),
        ] {
            let open = IncidentQuery {
                status: Some(status),
                ..q.clone()
            };
            let s = list_sql(&open, Dialect::Sqlite).unwrap();
            assert!(s.sql.contains("FROM incidents WHERE"), "{}", s.sql);
        }
        // In updated order: the label index's updated_at (its second
        // index); since/until still on its created_at.
        let updated = IncidentQuery {
            sort: IncidentSort::UpdatedDesc,
            after: Some(Cursor {
                sort: IncidentSort::UpdatedDesc,
                at: Timestamp(9),
                id: IncidentId(4),
            }),
            ..q.clone()
        };
        let s = list_sql(&updated, Dialect::Sqlite).unwrap();
        assert!(
            s.sql.contains(
                "l.created_at >= ?8 AND l.updated_at <= ?9 \
                 AND (l.updated_at < ?9 OR l.incident_id < ?10) \
                 ORDER BY l.updated_at DESC, l.incident_id DESC LIMIT ?11"
            ),
            "{}",
            s.sql
        );
        // PostgreSQL: the same label index, joined (no CROSS JOIN … ON),
        // only the other labels checked with `@>`.
        let s = list_sql(&q, Dialect::Postgres).unwrap();
        assert_eq!(
            s.sql,
            format!(
                "{SELECT}incident_labels AS l JOIN incidents ON incidents.id = l.incident_id \
                 WHERE l.key = $1 AND l.value = $2 AND incidents.status = $3 \
                 AND incidents.labels @> $4::jsonb \
                 AND l.created_at >= $5 \
                 AND l.created_at <= $6 AND (l.created_at < $6 OR l.incident_id < $7) \
                 ORDER BY l.created_at DESC, l.incident_id DESC LIMIT $8"
            )
        );
        // Open incidents, in either order: scanned from an incident index;
        // SQLite looks each label up in the label index by the sort key
        // and id before it reads the row.
        let open = IncidentQuery {
            status: Some(StatusFilter::Open),
            ..updated.clone()
        };
        let s = list_sql(&open, Dialect::Postgres).unwrap();
        assert!(s.sql.contains("FROM incidents WHERE"), "{}", s.sql);
        assert!(!s.sql.contains("incident_labels"), "{}", s.sql);
        let s = list_sql(&open, Dialect::Sqlite).unwrap();
        assert!(s.sql.contains("FROM incidents WHERE"), "{}", s.sql);
        assert!(
            s.sql.contains(
                "EXISTS (SELECT 1 FROM incident_labels AS m WHERE m.key = ?1 \
                 AND m.value = ?2 AND m.updated_at = incidents.updated_at \
                 AND m.incident_id = incidents.id) \
                 AND EXISTS (SELECT 1 FROM json_each(incidents.labels) AS j \
                 WHERE j.key = ?1 AND j.value = ?2)"
            ),
            "{}",
            s.sql
        );
    }
}
