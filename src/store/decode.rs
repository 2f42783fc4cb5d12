//! The read side shared by both backends: stored rows turned back into
//! domain values, and sqlx errors turned into the port's `StoreError`.

use incident_actors::codec::decode_incident;
use incident_actors::domain::{
    Alert, AlertStatus, Fingerprint, Incident, IncidentId, Labels, TimelineEvent,
};
use incident_actors::ports::{StoreError, StoredAlert};
use incident_actors::time::Timestamp;
use sqlx::error::ErrorKind;

/// Constraint violations (and values the database refuses) are `Rejected`;
/// everything else (connection, I/O, pool, lock timeouts, …) is `Unavailable`.
pub(crate) fn store_error(e: sqlx::Error) -> StoreError {
    if let sqlx::Error::Database(db) = &e {
        let constraint = matches!(
            db.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        );
        // PostgreSQL class 22: data exception (a value the column refuses).
        let data = db
            .code()
            .is_some_and(|c| c.len() == 5 && c.starts_with("22"))
            && db
                .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
                .is_some();
        if constraint || data {
            return StoreError::Rejected(db.message().to_string());
        }
    }
    StoreError::Unavailable(e.to_string())
}

fn invalid(what: String) -> StoreError {
    StoreError::Unavailable(format!("invalid stored row: {what}"))
}

fn incident_id(id: i64) -> Result<IncidentId, StoreError> {
    u64::try_from(id)
        .map(IncidentId)
        .map_err(|_| invalid(format!("negative incident id {id}")))
}

fn count(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// The incident's snapshot, with `last_seen` and `seen_count` raised to the
/// row's columns, which touches move without rewriting the snapshot.
pub(crate) fn incident(
    id: i64,
    last_seen: i64,
    seen_count: i64,
    state: &[u8],
) -> Result<Incident, StoreError> {
    let id = incident_id(id)?;
    let mut incident =
        decode_incident(state).map_err(|source| StoreError::Corrupt { id, source })?;
    incident.last_seen = incident.last_seen.max(Timestamp(last_seen));
    incident.seen_count = incident.seen_count.max(count(seen_count));
    Ok(incident)
}

/// `(id, last_seen, seen_count, state)` rows to incidents.
pub(crate) fn incidents(rows: Vec<(i64, i64, i64, Vec<u8>)>) -> Result<Vec<Incident>, StoreError> {
    rows.into_iter()
        .map(|(id, last_seen, seen_count, state)| incident(id, last_seen, seen_count, &state))
        .collect()
}

pub(crate) fn event(incident_id: i64, body: &str) -> Result<TimelineEvent, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| invalid(format!("timeline event of incident {incident_id}: {e}")))
}

fn labels(json: &str, what: &str) -> Result<Labels, StoreError> {
    serde_json::from_str(json).map_err(|e| invalid(format!("alert {what}: {e}")))
}

/// An `alerts` row, columns in this order: incident_id, fingerprint, status,
/// source, dedup_key, labels, annotations, starts_at, ends_at, received_at, extra.
pub(crate) type AlertColumns = (
    i64,
    String,
    String,
    String,
    Option<String>,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    Option<String>,
);

pub(crate) fn alert(row: AlertColumns) -> Result<StoredAlert, StoreError> {
    let (
        incident,
        fingerprint,
        status,
        source,
        dedup_key,
        label_json,
        annotation_json,
        starts_at,
        ends_at,
        received_at,
        extra,
    ) = row;
    let status = match status.as_str() {
        "firing" => AlertStatus::Firing,
        "resolved" => AlertStatus::Resolved,
        other => return Err(invalid(format!("alert status {other:?}"))),
    };
    let fingerprint: Fingerprint = fingerprint
        .parse()
        .map_err(|e| invalid(format!("alert fingerprint: {e}")))?;
    Ok(StoredAlert {
        incident_id: incident_id(incident)?,
        fingerprint,
        received_at: Timestamp(received_at),
        alert: Alert {
            labels: labels(&label_json, "labels")?,
            annotations: labels(&annotation_json, "annotations")?,
            status,
            starts_at: Timestamp(starts_at),
            ends_at: ends_at.map(Timestamp),
            source,
            dedup_key,
            extra,
        },
    })
}
