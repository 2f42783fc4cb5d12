//! An in-memory `Store` for unit tests of the core and for benchmarks of
//! the actor layer alone. Not durable; the server never uses it.
//!
//! It enforces the same invariant as the SQL schema (one open incident per
//! fingerprint) and can be told to fail, so tests can exercise the error paths.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;

use crate::codec::{decode_incident, encode_incident};
use crate::domain::{
    Alert, AttemptOutcome, Delivery, DeliveryKey, Fingerprint, HeartbeatState, Incident,
    IncidentId, Silence, SilenceId, TimelineEvent,
};
use crate::ports::{IncidentQuery, Store, StoreError, StoredAlert, WriteBatch};
use crate::time::Timestamp;

#[derive(Default)]
struct Tables {
    /// Snapshots go through the real codec, as in the SQL stores.
    incidents: BTreeMap<IncidentId, Vec<u8>>,
    touches: BTreeMap<IncidentId, (i64, u64)>,
    events: BTreeMap<IncidentId, Vec<TimelineEvent>>,
    alerts: BTreeMap<IncidentId, Vec<StoredAlert>>,
    /// Open incidents by fingerprint and back: the invariant's index.
    open_by_fp: HashMap<Fingerprint, IncidentId>,
    open_fp_of: HashMap<IncidentId, Fingerprint>,
    silences: BTreeMap<SilenceId, Silence>,
    silenced: BTreeMap<(SilenceId, Fingerprint), Alert>,
    heartbeats: BTreeMap<String, HeartbeatState>,
    /// The delivery log, by key, with its insertion order.
    deliveries: HashMap<DeliveryKey, (u64, Delivery)>,
    delivery_seq: u64,
}

#[derive(Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
    fail: AtomicBool,
    fail_commits: AtomicBool,
    pending_read_delay: Mutex<Option<std::time::Duration>>,
    commit_delay: Mutex<Option<std::time::Duration>>,
    commits: AtomicU64,
    /// Repeat counters of each successful commit that had any.
    touch_commits: Mutex<Vec<usize>>,
    /// What `takes_concurrent_writes` answers (as PostgreSQL does).
    concurrent_writes: AtomicBool,
    /// Delivery attempts of each successful commit that had any.
    attempt_commits: Mutex<Vec<usize>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// While set, every call fails with `StoreError::Unavailable`.
    pub fn set_failing(&self, failing: bool) {
        self.fail.store(failing, Ordering::SeqCst);
    }

    /// While set, commits fail (`Unavailable`); reads still work.
    pub fn set_failing_commits(&self, failing: bool) {
        self.fail_commits.store(failing, Ordering::SeqCst);
    }

    /// Makes `pending_deliveries` take this long (on tokio's clock), to
    /// widen races with the notifier's start-up read.
    pub fn set_pending_read_delay(&self, delay: Option<std::time::Duration>) {
        *self.pending_read_delay.lock().expect("memory store lock") = delay;
    }

    /// Makes every commit take this long first (on tokio's clock): a
    /// stalled database, with the persistence actor and the incident
    /// waiting on it busy meanwhile.
    pub fn set_commit_delay(&self, delay: Option<std::time::Duration>) {
        *self.commit_delay.lock().expect("memory store lock") = delay;
    }

    /// Answers `takes_concurrent_writes` with this (`false` by default).
    pub fn set_concurrent_writes(&self, concurrent: bool) {
        self.concurrent_writes.store(concurrent, Ordering::SeqCst);
    }

    /// How many delivery attempts each successful commit that had any
    /// carried, in order.
    pub fn attempts_per_commit(&self) -> Vec<usize> {
        self.attempt_commits
            .lock()
            .expect("memory store lock")
            .clone()
    }

    /// Number of successful commits (each one a transaction).
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::SeqCst)
    }

    /// How many repeat counters each successful commit that had any
    /// carried, in commit order.
    pub fn touches_per_commit(&self) -> Vec<usize> {
        self.touch_commits
            .lock()
            .expect("memory store lock")
            .clone()
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.fail.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("memory store set to fail".into()))
        } else {
            Ok(())
        }
    }

    fn decode(t: &Tables, id: IncidentId, bytes: &[u8]) -> Result<Incident, StoreError> {
        let mut i = decode_incident(bytes).map_err(|source| StoreError::Corrupt { id, source })?;
        if let Some((last_seen, count)) = t.touches.get(&id) {
            i.last_seen.0 = i.last_seen.0.max(*last_seen);
            i.seen_count = i.seen_count.max(*count);
        }
        Ok(i)
    }
}

#[async_trait]
impl Store for MemoryStore {
    fn takes_concurrent_writes(&self) -> bool {
        self.concurrent_writes.load(Ordering::SeqCst)
    }

    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let delay = *self.commit_delay.lock().expect("memory store lock");
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.check()?;
        if self.fail_commits.load(Ordering::SeqCst) {
            return Err(StoreError::Unavailable("commits set to fail".into()));
        }
        let mut t = self.tables.lock().expect("memory store lock");
        // Check the invariant for the whole batch before writing anything,
        // on an overlay of the open-fingerprint index (O(batch), not O(store)).
        let mut owner: HashMap<Fingerprint, Option<IncidentId>> = HashMap::new();
        let mut fp_of: HashMap<IncidentId, Option<Fingerprint>> = HashMap::new();
        for w in &batch.incidents {
            let id = w.incident.id;
            let previous = match fp_of.get(&id) {
                Some(fp) => *fp,
                None => t.open_fp_of.get(&id).copied(),
            };
            if let Some(fp) = previous {
                owner.insert(fp, None);
                fp_of.insert(id, None);
            }
            if w.incident.status.is_open() {
                let fp = w.incident.fingerprint;
                let holder = match owner.get(&fp) {
                    Some(h) => *h,
                    None => t.open_by_fp.get(&fp).copied(),
                };
                if let Some(other) = holder.filter(|other| *other != id) {
                    return Err(StoreError::Rejected(format!(
                        "fingerprint {fp} already has open incident {other}"
                    )));
                }
                owner.insert(fp, Some(id));
                fp_of.insert(id, Some(fp));
            }
        }
        for (fp, holder) in owner {
            match holder {
                Some(id) => t.open_by_fp.insert(fp, id),
                None => t.open_by_fp.remove(&fp),
            };
        }
        for (id, fp) in fp_of {
            match fp {
                Some(fp) => t.open_fp_of.insert(id, fp),
                None => t.open_fp_of.remove(&id),
            };
        }
        for w in &batch.incidents {
            let bytes = encode_incident(&w.incident).map_err(|source| StoreError::Corrupt {
                id: w.incident.id,
                source,
            })?;
            t.incidents.insert(w.incident.id, bytes);
            t.events
                .entry(w.incident.id)
                .or_default()
                .extend(w.events.iter().cloned());
            t.alerts
                .entry(w.incident.id)
                .or_default()
                .extend(w.alerts.iter().map(|a| StoredAlert {
                    incident_id: w.incident.id,
                    fingerprint: a.fingerprint(),
                    received_at: w.received_at,
                    alert: a.clone(),
                }));
        }
        for d in batch.incidents.iter().flat_map(|w| &w.deliveries) {
            if !t.deliveries.contains_key(&d.key) {
                t.delivery_seq += 1;
                let seq = t.delivery_seq;
                t.deliveries.insert(d.key.clone(), (seq, d.clone()));
            }
        }
        for touch in &batch.touches {
            if let (Some(snapshot), Some(stored)) = (&touch.snapshot, t.incidents.get(&touch.id)) {
                let same_version =
                    decode_incident(stored).is_ok_and(|s| s.version == snapshot.version);
                if same_version {
                    let bytes =
                        encode_incident(snapshot).map_err(|source| StoreError::Corrupt {
                            id: touch.id,
                            source,
                        })?;
                    t.incidents.insert(touch.id, bytes);
                }
            }
            if t.incidents.contains_key(&touch.id) {
                let e = t.touches.entry(touch.id).or_insert((0, 0));
                e.0 = e.0.max(touch.last_seen.0);
                e.1 = e.1.max(touch.seen_count);
            }
        }
        // As `record_attempts`: a key not in the log is skipped.
        for a in &batch.attempts {
            if let Some((_, d)) = t.deliveries.get_mut(&a.key) {
                d.record(&a.outcome, a.at);
            }
        }
        if !batch.touches.is_empty() {
            self.touch_commits
                .lock()
                .expect("memory store lock")
                .push(batch.touches.len());
        }
        if !batch.attempts.is_empty() {
            self.attempt_commits
                .lock()
                .expect("memory store lock")
                .push(batch.attempts.len());
        }
        self.commits.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    async fn load_open_incidents(&self) -> Result<Vec<Incident>, StoreError> {
        self.check()?;
        let t = self.tables.lock().expect("memory store lock");
        let mut out = Vec::new();
        for (id, bytes) in &t.incidents {
            let i = Self::decode(&t, *id, bytes)?;
            if i.status.is_open() {
                out.push(i);
            }
        }
        Ok(out)
    }

    async fn max_incident_id(&self) -> Result<Option<IncidentId>, StoreError> {
        self.check()?;
        Ok(self
            .tables
            .lock()
            .expect("memory store lock")
            .incidents
            .keys()
            .next_back()
            .copied())
    }

    async fn get_incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError> {
        self.check()?;
        let t = self.tables.lock().expect("memory store lock");
        t.incidents
            .get(&id)
            .map(|b| Self::decode(&t, id, b))
            .transpose()
    }

    async fn list_incidents(&self, q: &IncidentQuery) -> Result<Vec<Incident>, StoreError> {
        self.check()?;
        q.check_cursor()?;
        let t = self.tables.lock().expect("memory store lock");
        let mut out = Vec::new();
        for (id, bytes) in &t.incidents {
            let i = Self::decode(&t, *id, bytes)?;
            if q.matches(&i) {
                out.push(i);
            }
        }
        out.sort_by(|a, b| q.sort.compare(a, b));
        out.truncate(usize::try_from(q.limit).unwrap_or(usize::MAX));
        Ok(out)
    }

    async fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEvent>, StoreError> {
        self.check()?;
        Ok(self
            .tables
            .lock()
            .expect("memory store lock")
            .events
            .get(&id)
            .cloned()
            .unwrap_or_default())
    }

    async fn alerts(&self, id: IncidentId) -> Result<Vec<StoredAlert>, StoreError> {
        self.check()?;
        Ok(self
            .tables
            .lock()
            .expect("memory store lock")
            .alerts
            .get(&id)
            .cloned()
            .unwrap_or_default())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.check()
    }

    async fn save_silence(&self, silence: &Silence) -> Result<(), StoreError> {
        self.check()?;
        let mut t = self.tables.lock().expect("memory store lock");
        t.silences.insert(silence.id, silence.clone());
        Ok(())
    }

    async fn list_silences(&self) -> Result<Vec<Silence>, StoreError> {
        self.check()?;
        let t = self.tables.lock().expect("memory store lock");
        Ok(t.silences.values().rev().cloned().collect())
    }

    async fn record_silenced(
        &self,
        silence: SilenceId,
        alert: &Alert,
        _received_at: Timestamp,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut t = self.tables.lock().expect("memory store lock");
        t.silenced
            .entry((silence, alert.fingerprint()))
            .or_insert_with(|| alert.clone());
        Ok(())
    }

    async fn load_heartbeats(&self) -> Result<Vec<(String, HeartbeatState)>, StoreError> {
        self.check()?;
        let t = self.tables.lock().expect("memory store lock");
        Ok(t.heartbeats
            .iter()
            .map(|(name, state)| (name.clone(), *state))
            .collect())
    }

    async fn save_heartbeat(&self, name: &str, state: &HeartbeatState) -> Result<(), StoreError> {
        self.check()?;
        let mut t = self.tables.lock().expect("memory store lock");
        t.heartbeats.insert(name.to_string(), *state);
        Ok(())
    }

    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        outcome: &AttemptOutcome,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.check()?;
        let mut t = self.tables.lock().expect("memory store lock");
        match t.deliveries.get_mut(key) {
            Some((_, d)) => {
                d.record(outcome, at);
                Ok(())
            }
            None => Err(StoreError::Rejected(format!("no delivery {key}"))),
        }
    }

    async fn pending_deliveries(&self) -> Result<Vec<Delivery>, StoreError> {
        let delay = *self.pending_read_delay.lock().expect("memory store lock");
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        self.check()?;
        let t = self.tables.lock().expect("memory store lock");
        let mut rows: Vec<_> = t
            .deliveries
            .values()
            .filter(|(_, d)| d.status == crate::domain::DeliveryStatus::Pending)
            .collect();
        rows.sort_by_key(|(seq, _)| *seq);
        Ok(rows.into_iter().map(|(_, d)| d.clone()).collect())
    }

    async fn deliveries(&self, incident: IncidentId) -> Result<Vec<Delivery>, StoreError> {
        self.check()?;
        let t = self.tables.lock().expect("memory store lock");
        let mut rows: Vec<_> = t
            .deliveries
            .values()
            .filter(|(_, d)| d.incident_id == incident)
            .collect();
        rows.sort_by_key(|(seq, _)| *seq);
        Ok(rows.into_iter().map(|(_, d)| d.clone()).collect())
    }
}
