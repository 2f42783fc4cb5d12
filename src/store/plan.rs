//! The write plan: a `WriteBatch` turned into database rows once, the same
//! way for every backend, before any statement runs.
//!
//! Planning also fixes the order of the writes so that both backends accept
//! exactly the same batches:
//!
//! * several writes of one incident in a batch collapse into the newest
//!   snapshot (highest `version`, the later one on a tie); all their events
//!   and alerts are kept;
//! * resolved snapshots are written before open ones, so an incident resolved
//!   and a new one opened for the same fingerprint in one batch do not trip
//!   the "one open incident per fingerprint" index;
//! * touches of one incident collapse into their maximum;
//! * deliveries are written after the incidents they belong to, in batch
//!   order; a key given twice in one batch keeps its first row (as a key
//!   already in the log does: `ON CONFLICT DO NOTHING`).

use std::collections::{BTreeMap, HashMap, HashSet};

use incident_actors::codec::encode_incident;
use incident_actors::domain::{IncidentStatus, Labels};
use incident_actors::ports::{StoreError, Touch, WriteBatch};

use super::deliveries::{self, DeliveryRow};

pub(crate) struct IncidentRow {
    pub id: i64,
    pub fingerprint: String,
    pub status: &'static str,
    pub title: String,
    pub severity: Option<String>,
    pub service: String,
    pub labels: String,
    pub alert_count: i64,
    pub seen_count: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub last_seen: i64,
    pub resolved_at: Option<i64>,
    pub version: i64,
    pub state: Vec<u8>,
}

pub(crate) struct EventRow {
    pub incident_id: i64,
    pub seq: i32,
    pub at: i64,
    pub kind: &'static str,
    pub body: String,
}

pub(crate) struct AlertRow {
    pub incident_id: i64,
    pub fingerprint: String,
    pub status: &'static str,
    pub source: String,
    pub dedup_key: Option<String>,
    pub labels: String,
    pub annotations: String,
    pub starts_at: i64,
    pub ends_at: Option<i64>,
    pub received_at: i64,
    pub extra: Option<String>,
}

pub(crate) struct TouchRow {
    pub id: i64,
    pub last_seen: i64,
    pub seen_count: i64,
    /// A refreshed snapshot, written only over the same version: its
    /// `(version, state)`.
    pub snapshot: Option<(i64, Vec<u8>)>,
}

/// The rows of one batch, in the order they are to be written.
#[derive(Default)]
pub(crate) struct Plan {
    /// Resolved snapshots first, then open ones.
    pub incidents: Vec<IncidentRow>,
    pub events: Vec<EventRow>,
    pub alerts: Vec<AlertRow>,
    /// One per incident, by id.
    pub touches: Vec<TouchRow>,
    /// Delivery log rows, inserted unless their key is already there.
    pub deliveries: Vec<DeliveryRow>,
}

impl Plan {
    /// How many of `incidents` are resolved (they come first).
    pub fn resolved_count(&self) -> usize {
        self.incidents
            .iter()
            .take_while(|r| r.status == IncidentStatus::Resolved.as_str())
            .count()
    }
}

fn int<T: TryInto<i64>>(value: T, what: &str) -> Result<i64, StoreError> {
    value
        .try_into()
        .map_err(|_| StoreError::Rejected(format!("{what} does not fit in a 64-bit integer")))
}

fn json(labels: &Labels) -> Result<String, StoreError> {
    serde_json::to_string(labels).map_err(|e| StoreError::Rejected(format!("labels as JSON: {e}")))
}

pub(crate) fn plan(batch: &WriteBatch) -> Result<Plan, StoreError> {
    // Newest snapshot per incident id.
    let mut newest: HashMap<u64, usize> = HashMap::with_capacity(batch.incidents.len());
    for (i, write) in batch.incidents.iter().enumerate() {
        let id = write.incident.id.0;
        match newest.get(&id) {
            Some(&j) if batch.incidents[j].incident.version > write.incident.version => {}
            _ => {
                newest.insert(id, i);
            }
        }
    }
    let mut chosen: Vec<usize> = newest.into_values().collect();
    chosen.sort_unstable();

    let mut incidents = Vec::with_capacity(chosen.len());
    for &i in &chosen {
        let inc = &batch.incidents[i].incident;
        let state = encode_incident(inc).map_err(|e| {
            StoreError::Rejected(format!(
                "snapshot of incident {} cannot be encoded: {e}",
                inc.id
            ))
        })?;
        incidents.push(IncidentRow {
            id: int(inc.id.0, "incident id")?,
            fingerprint: inc.fingerprint.to_string(),
            status: inc.status.as_str(),
            title: inc.title.clone(),
            severity: inc.severity.clone(),
            service: inc.service.clone(),
            labels: json(&inc.labels)?,
            alert_count: int(inc.alert_count(), "alert count")?,
            seen_count: int(inc.seen_count, "seen count")?,
            created_at: inc.created_at.as_millis(),
            updated_at: inc.updated_at.as_millis(),
            last_seen: inc.last_seen.as_millis(),
            resolved_at: inc.resolved.as_ref().map(|(at, _)| at.as_millis()),
            version: int(inc.version, "incident version")?,
            state,
        });
    }
    // Stable: keeps batch order within each group.
    incidents.sort_by_key(|r| r.status != IncidentStatus::Resolved.as_str());

    let mut events = Vec::new();
    let mut alerts = Vec::new();
    let mut delivery_rows = Vec::new();
    let mut delivery_keys = HashSet::new();
    for write in &batch.incidents {
        let incident_id = int(write.incident.id.0, "incident id")?;
        for event in &write.events {
            events.push(EventRow {
                incident_id,
                seq: i32::try_from(event.seq).map_err(|_| {
                    StoreError::Rejected(format!("event seq {} does not fit in 32 bits", event.seq))
                })?,
                at: event.at.as_millis(),
                kind: event.kind.name(),
                body: serde_json::to_string(event)
                    .map_err(|e| StoreError::Rejected(format!("timeline event as JSON: {e}")))?,
            });
        }
        for alert in &write.alerts {
            alerts.push(AlertRow {
                incident_id,
                fingerprint: alert.fingerprint().to_string(),
                status: alert.status.as_str(),
                source: alert.source.clone(),
                dedup_key: alert.dedup_key.clone(),
                labels: json(&alert.labels)?,
                annotations: json(&alert.annotations)?,
                starts_at: alert.starts_at.as_millis(),
                ends_at: alert.ends_at.map(|t| t.as_millis()),
                received_at: write.received_at.as_millis(),
                extra: alert.extra.clone(),
            });
        }
        for d in &write.deliveries {
            if delivery_keys.insert(&d.key) {
                delivery_rows.push(deliveries::row(d)?);
            }
        }
    }

    let mut touched: BTreeMap<u64, Touch> = BTreeMap::new();
    for t in &batch.touches {
        match touched.entry(t.id.0) {
            std::collections::btree_map::Entry::Occupied(mut e) => e.get_mut().merge(t.clone()),
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(t.clone());
            }
        }
    }
    let touches = touched
        .into_values()
        .map(|t| {
            let snapshot = match &t.snapshot {
                Some(incident) => Some((
                    int(incident.version, "version")?,
                    encode_incident(incident)
                        .map_err(|source| StoreError::Corrupt { id: t.id, source })?,
                )),
                None => None,
            };
            Ok(TouchRow {
                id: int(t.id.0, "incident id")?,
                last_seen: t.last_seen.as_millis(),
                seen_count: int(t.seen_count, "seen count")?,
                snapshot,
            })
        })
        .collect::<Result<_, StoreError>>()?;

    Ok(Plan {
        incidents,
        events,
        alerts,
        touches,
        deliveries: delivery_rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use incident_actors::domain::{
        Alert, AlertStatus, Attribution, EscalationPolicy, Incident, IncidentId, Interface,
    };
    use incident_actors::ports::{IncidentWrite, Touch};
    use incident_actors::time::Timestamp;

    fn write(id: u64, name: &str) -> IncidentWrite {
        let alert = Alert {
            labels: [("alertname".to_string(), name.to_string())].into(),
            annotations: Labels::new(),
            status: AlertStatus::Firing,
            starts_at: Timestamp(1),
            ends_at: None,
            source: "native".into(),
            dedup_key: None,
            extra: None,
        };
        let (mut incident, change) = Incident::open(
            IncidentId(id),
            alert,
            &EscalationPolicy::default_console(),
            Timestamp(10),
        );
        incident.bump_version();
        IncidentWrite {
            incident,
            events: change.events,
            alerts: change.alerts,
            received_at: Timestamp(10),
            deliveries: Vec::new(),
        }
    }

    #[test]
    fn newest_snapshot_wins_and_resolved_come_first() {
        let first = write(1, "A");
        let mut second = first.clone();
        let change = second
            .incident
            .resolve(Attribution::new("alice", Interface::Api), Timestamp(20))
            .unwrap();
        second.incident.bump_version();
        second.events = change.events;
        second.alerts.clear();
        let other = write(2, "A");
        let batch = WriteBatch {
            incidents: vec![first, other, second],
            touches: vec![
                Touch {
                    id: IncidentId(2),
                    last_seen: Timestamp(50),
                    seen_count: 3,
                    snapshot: None,
                },
                Touch {
                    id: IncidentId(2),
                    last_seen: Timestamp(40),
                    seen_count: 7,
                    snapshot: None,
                },
            ],
            attempts: Vec::new(),
        };
        let plan = plan(&batch).unwrap();
        let ids: Vec<_> = plan.incidents.iter().map(|r| (r.id, r.status)).collect();
        assert_eq!(ids, [(1, "resolved"), (2, "triggered")]);
        assert_eq!(plan.resolved_count(), 1);
        assert_eq!(plan.events.len(), 3);
        assert_eq!(plan.alerts.len(), 2);
        assert_eq!(plan.touches.len(), 1);
        assert_eq!(
            (plan.touches[0].last_seen, plan.touches[0].seen_count),
            (50, 7)
        );
    }
}
