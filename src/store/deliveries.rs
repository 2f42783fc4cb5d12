//! The delivery log in SQL, for both backends (`notifications`,
//! `migrations/*/0006_notifications.sql`): rows are inserted with the commit
//! that causes them (see `plan`), a key already present left as it is, and
//! moved forward by `record_attempt`, which reads the row, applies
//! [`Delivery::record`] (the one definition of what an attempt does) and
//! writes it back in one transaction. The statements differ only in their
//! parameter markers and locking, so each backend keeps its own text; the
//! row shape and its conversion live here.

use incident_actors::domain::{
    AttemptOutcome, Delivery, DeliveryKey, DeliveryStatus, IncidentId, NotificationEvent, Recipient,
};
use std::collections::{HashMap, HashSet};

use incident_actors::ports::{AttemptRecord, StoreError};
use incident_actors::time::Timestamp;

/// A row of `notifications`, as written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct DeliveryRow {
    pub key: String,
    pub incident_id: i64,
    pub event: String,
    pub recipient: String,
    pub transport: String,
    pub status: &'static str,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub external_ref: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The columns selected by [`SELECT_SQL`], in order.
pub(crate) type DeliveryColumns = (
    i64,
    String,
    i64,
    String,
    String,
    String,
    i32,
    Option<String>,
    Option<String>,
    i64,
    i64,
);

/// Every column a [`Delivery`] is read from; callers add `WHERE` and `ORDER BY id`.
pub(crate) const SELECT_SQL: &str = "SELECT id, key, incident_id, event, recipient, status, \
     attempts, last_error, external_ref, created_at, updated_at FROM notifications";

fn rejected(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Rejected(format!("{what}: {e}"))
}

fn invalid(what: String) -> StoreError {
    StoreError::Unavailable(format!("invalid stored delivery: {what}"))
}

/// The row `d` is written as.
pub(crate) fn row(d: &Delivery) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        key: d.key.0.clone(),
        incident_id: i64::try_from(d.incident_id.0)
            .map_err(|_| rejected("delivery incident id", d.incident_id))?,
        event: serde_json::to_string(&d.event)
            .map_err(|e| rejected("delivery event as JSON", e))?,
        recipient: serde_json::to_string(&d.recipient)
            .map_err(|e| rejected("delivery recipient as JSON", e))?,
        transport: d.recipient.transport(),
        status: d.status.as_str(),
        attempts: i32::try_from(d.attempts)
            .map_err(|_| rejected("delivery attempts", d.attempts))?,
        last_error: d.last_error.clone(),
        external_ref: d.external_ref.clone(),
        created_at: d.created_at.as_millis(),
        updated_at: d.updated_at.as_millis(),
    })
}

/// A selected row back to a delivery, with its `id`.
pub(crate) fn delivery(columns: DeliveryColumns) -> Result<(i64, Delivery), StoreError> {
    let (
        id,
        key,
        incident_id,
        event,
        recipient,
        status,
        attempts,
        last_error,
        external_ref,
        created_at,
        updated_at,
    ) = columns;
    let event: NotificationEvent =
        serde_json::from_str(&event).map_err(|e| invalid(format!("{key}: event: {e}")))?;
    let recipient: Recipient =
        serde_json::from_str(&recipient).map_err(|e| invalid(format!("{key}: recipient: {e}")))?;
    let status = DeliveryStatus::parse(&status)
        .ok_or_else(|| invalid(format!("{key}: status {status:?}")))?;
    let incident_id = u64::try_from(incident_id)
        .map(IncidentId)
        .map_err(|_| invalid(format!("{key}: incident id {incident_id}")))?;
    Ok((
        id,
        Delivery {
            key: DeliveryKey(key),
            incident_id,
            event,
            recipient,
            status,
            attempts: u32::try_from(attempts).unwrap_or(0),
            last_error,
            external_ref,
            created_at: Timestamp(created_at),
            updated_at: Timestamp(updated_at),
        },
    ))
}

/// The deliveries that can be read, in the rows' order; one that cannot
/// (written by a later version, or damaged) is logged and skipped rather
/// than keeping every other delivery from being sent.
pub(crate) fn readable(rows: Vec<DeliveryColumns>) -> Vec<Delivery> {
    rows.into_iter()
        .filter_map(|columns| match delivery(columns) {
            Ok((_, d)) => Some(d),
            Err(e) => {
                tracing::error!(error = %e, "skipping a stored delivery that cannot be read");
                None
            }
        })
        .collect()
}

/// The attempt applied to the stored row `columns` (`None` when the row
/// does not change: it is no longer pending). Returns the row's `id` and
/// its new values.
pub(crate) fn recorded(
    columns: DeliveryColumns,
    outcome: &AttemptOutcome,
    at: Timestamp,
) -> Result<Option<(i64, DeliveryRow)>, StoreError> {
    let (id, before) = delivery(columns)?;
    let mut after = before.clone();
    after.record(outcome, at);
    if after == before {
        return Ok(None);
    }
    Ok(Some((id, row(&after)?)))
}

/// The error for a key that is not in the log.
pub(crate) fn unknown(key: &DeliveryKey) -> StoreError {
    StoreError::Rejected(format!("no delivery {key}"))
}

/// The distinct keys of `attempts`, in first-seen order: the rows a batch
/// of attempts reads.
pub(crate) fn keys(attempts: &[AttemptRecord]) -> Vec<&str> {
    let mut seen = HashSet::with_capacity(attempts.len());
    attempts
        .iter()
        .map(|a| a.key.0.as_str())
        .filter(|k| seen.insert(*k))
        .collect()
}

/// A batch of attempts applied to the stored rows of their keys (`rows`,
/// in any order), as applying them one at a time would: in order, several
/// on one key one after the other, each through [`Delivery::record`]; an
/// attempt on a key not in the log is skipped with a warning (as
/// [`skip_unknown_key`]). Returns the rows that changed, by id, with their
/// new values: one read and one write per batch instead of two statements
/// per attempt.
pub(crate) fn recorded_all(
    rows: Vec<DeliveryColumns>,
    attempts: &[AttemptRecord],
) -> Result<Vec<(i64, DeliveryRow)>, StoreError> {
    let mut stored: HashMap<String, (i64, Delivery, Delivery)> = HashMap::with_capacity(rows.len());
    for columns in rows {
        let (id, d) = delivery(columns)?;
        stored.insert(d.key.0.clone(), (id, d.clone(), d));
    }
    for a in attempts {
        match stored.get_mut(&a.key.0) {
            Some((_, _, after)) => after.record(&a.outcome, a.at),
            None => skip_unknown_key(Err(unknown(&a.key)))?,
        }
    }
    let mut changed: Vec<(i64, DeliveryRow)> = stored
        .into_values()
        .filter(|(_, before, after)| after != before)
        .map(|(id, _, after)| Ok((id, row(&after)?)))
        .collect::<Result<_, StoreError>>()?;
    changed.sort_unstable_by_key(|(id, _)| *id);
    Ok(changed)
}

/// One attempt's result, as a batch of attempts takes it: an attempt on a
/// key not in the log (`Rejected`) is skipped with a warning, not an error,
/// so one stray key does not lose the others (both backends).
pub(crate) fn skip_unknown_key(result: Result<(), StoreError>) -> Result<(), StoreError> {
    match result {
        Err(StoreError::Rejected(why)) => {
            tracing::warn!(error = %why, "delivery attempt for an unknown key skipped");
            Ok(())
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_actors::domain::Target;

    fn pending() -> Delivery {
        let target = Target::Channel("hook".into());
        let to = Recipient::Webhook {
            name: "hook".into(),
        };
        Delivery::pending(
            DeliveryKey::page_fired(IncidentId(3), 1, 0, 0, &target, &to),
            IncidentId(3),
            NotificationEvent::Page {
                step: 0,
                repeat: 0,
                target,
            },
            to,
            Timestamp(10),
        )
    }

    fn columns(id: i64, r: DeliveryRow) -> DeliveryColumns {
        (
            id,
            r.key,
            r.incident_id,
            r.event,
            r.recipient,
            r.status.to_string(),
            r.attempts,
            r.last_error,
            r.external_ref,
            r.created_at,
            r.updated_at,
        )
    }

    #[test]
    fn rows_round_trip() {
        let d = pending();
        let r = row(&d).unwrap();
        assert_eq!(r.transport, "webhook:hook");
        assert_eq!(r.status, "pending");
        assert_eq!(delivery(columns(7, r)).unwrap(), (7, d));
    }

    #[test]
    fn attempts_follow_the_domain() {
        let d = pending();
        let failed = AttemptOutcome::Failed {
            error: "boom".into(),
            last: false,
        };
        let (id, r) = recorded(columns(1, row(&d).unwrap()), &failed, Timestamp(20))
            .unwrap()
            .expect("a pending row changes");
        assert_eq!(id, 1);
        assert_eq!(
            (r.status, r.attempts, r.last_error.as_deref(), r.updated_at),
            ("pending", 1, Some("boom"), 20)
        );
        let mut done = d.clone();
        done.record(&AttemptOutcome::Cancelled, Timestamp(30));
        assert_eq!(
            recorded(columns(1, row(&done).unwrap()), &failed, Timestamp(40)).unwrap(),
            None,
            "a row no longer pending keeps its final state"
        );
    }

    /// A batch applies its attempts as one at a time would: in order on
    /// one key, an unknown key skipped, an unchanged row not written.
    #[test]
    fn a_batch_of_attempts_applies_each_in_order() {
        let d = pending();
        let mut settled = pending();
        settled.key = DeliveryKey("settled".into());
        settled.record(&AttemptOutcome::Cancelled, Timestamp(5));
        let failed = AttemptOutcome::Failed {
            error: "boom".into(),
            last: false,
        };
        let delivered = AttemptOutcome::Delivered {
            external_ref: Some("ts-1".into()),
        };
        let record = |key: &DeliveryKey, outcome: &AttemptOutcome, at: i64| AttemptRecord {
            key: key.clone(),
            outcome: outcome.clone(),
            at: Timestamp(at),
        };
        let attempts = [
            record(&d.key, &failed, 20),
            record(&DeliveryKey("nowhere".into()), &failed, 21),
            record(&settled.key, &failed, 22),
            record(&d.key, &delivered, 23),
            record(&d.key, &failed, 24),
        ];
        assert_eq!(keys(&attempts), [d.key.0.as_str(), "nowhere", "settled"]);
        let rows = vec![
            columns(9, row(&settled).unwrap()),
            columns(4, row(&d).unwrap()),
        ];
        let mut expected = d.clone();
        for a in attempts.iter().filter(|a| a.key == d.key) {
            expected.record(&a.outcome, a.at);
        }
        assert_eq!(
            recorded_all(rows, &attempts).unwrap(),
            [(4, row(&expected).unwrap())]
        );
    }

    #[test]
    fn unreadable_rows_are_skipped() {
        let mut bad = columns(2, row(&pending()).unwrap());
        bad.4 = "{\"kind\":\"pigeon\"}".into();
        let good = columns(3, row(&pending()).unwrap());
        assert_eq!(readable(vec![bad, good]), vec![pending()]);
    }
}
