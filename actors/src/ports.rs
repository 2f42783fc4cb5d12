//! Ports: the traits through which the core talks to the outside world.
//! `src/` implements them for real (sqlx, SMTP, Slack, …); core tests use
//! the in-memory implementations in `memory_store.rs` and `console.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::codec::CodecError;
use crate::domain::{
    Alert, Fingerprint, Incident, IncidentId, IncidentStatus, Labels, Target, TimelineEvent,
};
use crate::time::Timestamp;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or refused the write; nothing was committed.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A snapshot in the store cannot be decoded.
    #[error("snapshot of incident {id} cannot be decoded: {source}")]
    Corrupt { id: IncidentId, source: CodecError },
    /// The write broke a store invariant (for example a second open incident
    /// for one fingerprint); the whole batch was rolled back.
    #[error("store rejected the write: {0}")]
    Rejected(String),
}

/// One incident's committed change: its new snapshot plus the rows it adds.
#[derive(Clone, Debug)]
pub struct IncidentWrite {
    pub incident: Incident,
    pub events: Vec<TimelineEvent>,
    /// Alerts received that changed state, recorded as rows.
    pub alerts: Vec<Alert>,
    pub received_at: Timestamp,
}

/// Repeats seen since the last commit, written with a later batch rather
/// than as rows: `last_seen` and `seen_count` move, and when a repeat
/// refreshed something a restart needs (an alert's `ends_at`, which decides
/// when it expires) the refreshed snapshot comes along. The store writes a
/// snapshot only over the same `version`, so it never overwrites a newer
/// committed change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Touch {
    pub id: IncidentId,
    pub last_seen: Timestamp,
    pub seen_count: u64,
    pub snapshot: Option<Box<Incident>>,
}

impl Touch {
    /// Folds a later touch of the same incident into this one.
    pub fn merge(&mut self, later: Touch) {
        self.last_seen = self.last_seen.max(later.last_seen);
        self.seen_count = self.seen_count.max(later.seen_count);
        let newer = match (&self.snapshot, &later.snapshot) {
            (_, None) => false,
            (None, Some(_)) => true,
            (Some(a), Some(b)) => (b.version, b.seen_count) >= (a.version, a.seen_count),
        };
        if newer {
            self.snapshot = later.snapshot;
        }
    }
}

/// Everything one group commit writes, in one transaction.
#[derive(Clone, Debug, Default)]
pub struct WriteBatch {
    pub incidents: Vec<IncidentWrite>,
    pub touches: Vec<Touch>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty() && self.touches.is_empty()
    }
}

/// Status filter of an incident list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Is(IncidentStatus),
    /// Triggered or acknowledged.
    Open,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentQuery {
    pub status: Option<StatusFilter>,
    /// Newest first, at most this many.
    pub limit: u32,
}

impl Default for IncidentQuery {
    fn default() -> Self {
        IncidentQuery {
            status: None,
            limit: 100,
        }
    }
}

/// An alert row as stored: what was received, for which incident, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredAlert {
    pub incident_id: IncidentId,
    pub fingerprint: Fingerprint,
    pub received_at: Timestamp,
    #[serde(flatten)]
    pub alert: Alert,
}

/// The persistence port. Implementations must make `commit` atomic: all of
/// the batch or none of it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits a batch in one transaction.
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;
    /// Every triggered or acknowledged incident, to rehydrate on start.
    async fn load_open_incidents(&self) -> Result<Vec<Incident>, StoreError>;
    /// The highest incident id ever committed.
    async fn max_incident_id(&self) -> Result<Option<IncidentId>, StoreError>;
    async fn get_incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError>;
    async fn list_incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError>;
    /// The incident's timeline, oldest first.
    async fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEvent>, StoreError>;
    /// The alert rows of an incident, oldest first.
    async fn alerts(&self, id: IncidentId) -> Result<Vec<StoredAlert>, StoreError>;
    /// Cheap liveness check of the backend.
    async fn ping(&self) -> Result<(), StoreError>;
}

pub type SharedStore = Arc<dyn Store>;

/// What a channel is asked to deliver: one escalation step to one target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notification {
    pub incident_id: IncidentId,
    pub title: String,
    pub status: IncidentStatus,
    pub severity: Option<String>,
    pub service: String,
    pub labels: Labels,
    pub step: usize,
    pub repeat: u32,
    pub target: Target,
    pub at: Timestamp,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("channel {channel} failed: {message}")]
    Failed { channel: String, message: String },
}

/// A notification transport (console now; email, webhook and Slack later).
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    fn name(&self) -> &str;
    async fn deliver(&self, notification: &Notification) -> Result<(), ChannelError>;
}
