//! Ports: the traits through which the core talks to the outside world.
//! `src/` implements them for real (sqlx, SMTP, Slack, …); core tests use
//! the in-memory implementations in `memory_store.rs` and `console.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::codec::CodecError;
use crate::domain::{
    Alert, AttemptOutcome, Delivery, DeliveryKey, Fingerprint, HeartbeatState, Incident,
    IncidentId, IncidentStatus, Silence, SilenceId, TimelineEvent,
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
    /// Deliveries this change causes, written pending in the same
    /// transaction (a key already in the log is left as it is).
    pub deliveries: Vec<Delivery>,
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
    /// Delivery attempts' outcomes, applied to the delivery log after the
    /// incident writes (as `Store::record_attempts` does: a key not in the
    /// log is skipped). In the batch's own transaction on a one-writer
    /// store, so a cycle of the persistence actor costs one fsync, not two;
    /// empty on one that takes concurrent writes
    /// ([`Store::takes_concurrent_writes`]), where they go beside it.
    pub attempts: Vec<AttemptRecord>,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty() && self.touches.is_empty() && self.attempts.is_empty()
    }
}

/// Status filter of an incident list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Is(IncidentStatus),
    /// Triggered or acknowledged.
    Open,
}

impl StatusFilter {
    pub fn matches(self, status: IncidentStatus) -> bool {
        match self {
            StatusFilter::Is(s) => s == status,
            StatusFilter::Open => status.is_open(),
        }
    }
}

/// The order of an incident list. Every order ends with the incident id
/// (in the same direction), so it is total and pages never overlap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum IncidentSort {
    /// Newest first: `created_at` descending, then id descending.
    #[default]
    CreatedDesc,
    /// Oldest first: `created_at` ascending, then id ascending.
    CreatedAsc,
    /// Most recently changed first: `updated_at` descending, then id
    /// descending. `updated_at` moves when an incident changes, so paging
    /// is not a snapshot (as with any keyset paging on a mutable key): an
    /// incident that changes between two pages jumps to the front, so it
    /// is skipped if it was not listed yet; if its `updated_at` went
    /// backwards (a clock stepped back) it may be listed twice.
    UpdatedDesc,
}

impl IncidentSort {
    pub const ALL: [IncidentSort; 3] = [
        IncidentSort::CreatedDesc,
        IncidentSort::CreatedAsc,
        IncidentSort::UpdatedDesc,
    ];

    /// The API name: `created_desc`, `created_asc`, `updated_desc`.
    pub fn as_str(self) -> &'static str {
        match self {
            IncidentSort::CreatedDesc => "created_desc",
            IncidentSort::CreatedAsc => "created_asc",
            IncidentSort::UpdatedDesc => "updated_desc",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sort| sort.as_str() == s)
    }

    pub fn descending(self) -> bool {
        !matches!(self, IncidentSort::CreatedAsc)
    }

    /// Whether the key is `updated_at` (else `created_at`).
    pub fn by_updated(self) -> bool {
        matches!(self, IncidentSort::UpdatedDesc)
    }

    /// The incident's sort key: `(created_at or updated_at, id)`.
    pub fn key(self, incident: &Incident) -> (Timestamp, IncidentId) {
        let at = if self.by_updated() {
            incident.updated_at
        } else {
            incident.created_at
        };
        (at, incident.id)
    }

    /// `a` before `b` in this order.
    pub fn compare(self, a: &Incident, b: &Incident) -> std::cmp::Ordering {
        let ord = self.key(a).cmp(&self.key(b));
        if self.descending() {
            ord.reverse()
        } else {
            ord
        }
    }

    fn tag(self) -> u8 {
        match self {
            IncidentSort::CreatedDesc => 1,
            IncidentSort::CreatedAsc => 2,
            IncidentSort::UpdatedDesc => 3,
        }
    }
}

/// Where a page ends: the sort key of its last incident. The next page is
/// the incidents strictly after it in the same sort (keyset paging), so
/// incidents arriving between two pages neither shift nor repeat rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// The sort the cursor was made for; it means nothing in another.
    pub sort: IncidentSort,
    /// `created_at` or `updated_at` of the last incident, per `sort`.
    pub at: Timestamp,
    pub id: IncidentId,
}

/// Why a cursor token cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CursorError {
    #[error("malformed cursor: pass back the `next_cursor` of a previous page unchanged")]
    Malformed,
}

/// Version and sort in one byte: high nibble the token format, low nibble
/// the sort.
const CURSOR_FORMAT: u8 = 0x10;
/// Format byte, then `at` and `id` as big-endian 64-bit integers.
const CURSOR_BYTES: usize = 17;

impl Cursor {
    /// The cursor after `incident` in `sort`.
    pub fn after(incident: &Incident, sort: IncidentSort) -> Cursor {
        let (at, id) = sort.key(incident);
        Cursor { sort, at, id }
    }

    /// Whether `incident` comes strictly after the cursor in its sort.
    pub fn admits(&self, incident: &Incident) -> bool {
        let key = self.sort.key(incident);
        if self.sort.descending() {
            key < (self.at, self.id)
        } else {
            key > (self.at, self.id)
        }
    }

    /// The opaque token clients pass back: 34 lower-case hex digits.
    pub fn encode(&self) -> String {
        let mut bytes = Vec::with_capacity(CURSOR_BYTES);
        bytes.push(CURSOR_FORMAT | self.sort.tag());
        bytes.extend_from_slice(&self.at.as_millis().to_be_bytes());
        bytes.extend_from_slice(&self.id.0.to_be_bytes());
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Reads a token made by [`Cursor::encode`]. Ids above `i64::MAX`
    /// (which no store holds) are malformed too.
    pub fn decode(token: &str) -> Result<Cursor, CursorError> {
        let raw = token.as_bytes();
        if raw.len() != CURSOR_BYTES * 2 {
            return Err(CursorError::Malformed);
        }
        let mut bytes = [0u8; CURSOR_BYTES];
        for (byte, pair) in bytes.iter_mut().zip(raw.chunks_exact(2)) {
            let hex = |c: u8| match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(CursorError::Malformed),
            };
            *byte = hex(pair[0])? << 4 | hex(pair[1])?;
        }
        let sort = IncidentSort::ALL
            .into_iter()
            .find(|s| CURSOR_FORMAT | s.tag() == bytes[0])
            .ok_or(CursorError::Malformed)?;
        let mut at = [0u8; 8];
        at.copy_from_slice(&bytes[1..9]);
        let mut id = [0u8; 8];
        id.copy_from_slice(&bytes[9..17]);
        let id = u64::from_be_bytes(id);
        if i64::try_from(id).is_err() {
            return Err(CursorError::Malformed);
        }
        Ok(Cursor {
            sort,
            at: Timestamp(i64::from_be_bytes(at)),
            id: IncidentId(id),
        })
    }
}

/// A page of the incident list: filters (all must match), an order, and
/// where to start. Every store answers the same query with the same
/// incidents in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentQuery {
    pub status: Option<StatusFilter>,
    /// The incident's service, exactly.
    pub service: Option<String>,
    /// The incident's severity, exactly (incidents without one never match).
    pub severity: Option<String>,
    /// Label `key = value` pairs, all of which the incident's labels must
    /// hold (a key given twice with two values matches nothing).
    pub labels: Vec<(String, String)>,
    /// Created at or after this instant (inclusive).
    pub since: Option<Timestamp>,
    /// Created before this instant (exclusive).
    pub until: Option<Timestamp>,
    pub sort: IncidentSort,
    /// Only incidents after this cursor, which must have been made for
    /// `sort` (a store refuses a mismatch as `Rejected`).
    pub after: Option<Cursor>,
    /// At most this many.
    pub limit: u32,
}

impl Default for IncidentQuery {
    fn default() -> Self {
        IncidentQuery {
            status: None,
            service: None,
            severity: None,
            labels: Vec::new(),
            since: None,
            until: None,
            sort: IncidentSort::default(),
            after: None,
            limit: 100,
        }
    }
}

impl IncidentQuery {
    /// Whether `incident` passes every filter and comes after the cursor:
    /// the reference semantics the SQL stores implement with indexes.
    pub fn matches(&self, incident: &Incident) -> bool {
        self.status.is_none_or(|s| s.matches(incident.status))
            && self.service.as_ref().is_none_or(|s| *s == incident.service)
            && self
                .severity
                .as_ref()
                .is_none_or(|s| incident.severity.as_ref() == Some(s))
            && self
                .labels
                .iter()
                .all(|(k, v)| incident.labels.get(k) == Some(v))
            && self.since.is_none_or(|t| incident.created_at >= t)
            && self.until.is_none_or(|t| incident.created_at < t)
            && self.after.as_ref().is_none_or(|c| c.admits(incident))
    }

    /// A cursor made for another sort.
    pub fn check_cursor(&self) -> Result<(), StoreError> {
        match self.after {
            Some(c) if c.sort != self.sort => Err(StoreError::Rejected(format!(
                "cursor made for sort {} used with sort {}",
                c.sort.as_str(),
                self.sort.as_str()
            ))),
            _ => Ok(()),
        }
    }
}

/// An alert row as stored: what was received, for which incident, when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StoredAlert {
    pub incident_id: IncidentId,
    pub fingerprint: Fingerprint,
    pub received_at: Timestamp,
    #[serde(flatten)]
    pub alert: Alert,
}

/// A commit's durability, awaited apart from the commit itself
/// ([`Store::commit_pipelined`]): `Ok` once the commit would survive a
/// crash or a power cut.
pub type Durability =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), StoreError>> + Send + 'static>>;

/// The persistence port. Implementations must make `commit` atomic: all of
/// the batch or none of it.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Commits a batch in one transaction, durably: when this returns `Ok`
    /// the batch survives a crash or a power cut. An error means it is not
    /// known to be durable: nothing of it was written, or (a store that
    /// syncs after its transaction, SQLite) the sync failed after it was,
    /// and then the store refuses every later write until restarted.
    async fn commit(&self, batch: &WriteBatch) -> Result<(), StoreError>;
    /// Commits a batch like [`commit`](Store::commit), but may return as
    /// soon as the transaction is written and visible to readers, with the
    /// wait for its durability (a WAL flush) handed back to the caller. The
    /// persistence actor writes the next batch while the last one is
    /// flushed, and answers nobody before its [`Durability`] is `Ok`; so the
    /// writer is not idle during the flush, and durability is what it was.
    /// An error here means what it means for `commit`. The default is
    /// `commit` itself, durable on return (both stores use it).
    async fn commit_pipelined(&self, batch: &WriteBatch) -> Result<Durability, StoreError> {
        self.commit(batch).await?;
        Ok(Box::pin(std::future::ready(Ok(()))))
    }
    /// Whether two write transactions may run at once (a server with row
    /// locks), so delivery attempts can be recorded in a transaction of
    /// their own beside the group commits instead of inside them. `false`
    /// for a database with one writer (SQLite), where a second transaction
    /// would only queue behind the first.
    fn takes_concurrent_writes(&self) -> bool {
        false
    }
    /// Every triggered or acknowledged incident, to rehydrate on start.
    async fn load_open_incidents(&self) -> Result<Vec<Incident>, StoreError>;
    /// The highest incident id ever committed.
    async fn max_incident_id(&self) -> Result<Option<IncidentId>, StoreError>;
    async fn get_incident(&self, id: IncidentId) -> Result<Option<Incident>, StoreError>;
    /// A page of incidents: those matching `query` ([`IncidentQuery::matches`]),
    /// in `query.sort`, after `query.after`, at most `query.limit`.
    ///
    /// Keyset paging: the next page is asked with
    /// `after: Some(Cursor::after(last, sort))`, never an offset, so a deep
    /// page costs what the first one does, and incidents that arrive
    /// between two pages do not shift or repeat rows. With the created
    /// sorts that holds for changes too (`created_at` never moves); with
    /// `UpdatedDesc` an incident that changes between two pages moves (see
    /// [`IncidentSort::UpdatedDesc`]). To know whether there is a next
    /// page, ask for one more than the page size.
    async fn list_incidents(&self, query: &IncidentQuery) -> Result<Vec<Incident>, StoreError>;
    /// The incident's timeline, oldest first.
    async fn timeline(&self, id: IncidentId) -> Result<Vec<TimelineEvent>, StoreError>;
    /// The alert rows of an incident, oldest first.
    async fn alerts(&self, id: IncidentId) -> Result<Vec<StoredAlert>, StoreError>;
    /// Whether the backend takes a write now: commits one tiny write of its
    /// own, so a full or read-only disk fails it as well as a server that
    /// is gone (readiness, `store_health`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// Inserts or replaces a silence (expiring one is saving it with an earlier end).
    async fn save_silence(&self, silence: &Silence) -> Result<(), StoreError>;
    /// Every silence, newest first.
    async fn list_silences(&self) -> Result<Vec<Silence>, StoreError>;
    /// Records an alert that a silence kept from opening an incident; once
    /// per (silence, alert fingerprint): a re-send writes nothing new.
    async fn record_silenced(
        &self,
        silence: SilenceId,
        alert: &Alert,
        received_at: Timestamp,
    ) -> Result<(), StoreError>;
    /// The stored state of every heartbeat monitor ever saved, by monitor
    /// name, in name order. Rows of monitors no longer configured are
    /// returned too (the caller ignores them; nothing deletes them).
    async fn load_heartbeats(&self) -> Result<Vec<(String, HeartbeatState)>, StoreError>;
    /// Inserts or replaces the state of heartbeat monitor `name`, durably
    /// (committed when this returns `Ok`).
    async fn save_heartbeat(&self, name: &str, state: &HeartbeatState) -> Result<(), StoreError>;
    /// Records one delivery attempt's outcome on its row of the delivery
    /// log (attempts + 1, status, error, external reference). A key that
    /// is not in the log is an error (`Rejected`).
    async fn record_attempt(
        &self,
        key: &DeliveryKey,
        outcome: &AttemptOutcome,
        at: Timestamp,
    ) -> Result<(), StoreError>;
    /// Records many attempts in one transaction (the persistence actor
    /// groups the notifier's outcomes, so a busy channel costs one commit
    /// per batch, not per delivery). Attempts on keys not in the log are
    /// skipped, not an error: one stray key must not lose the others.
    async fn record_attempts(&self, attempts: &[AttemptRecord]) -> Result<(), StoreError> {
        for a in attempts {
            match self.record_attempt(&a.key, &a.outcome, a.at).await {
                Ok(()) | Err(StoreError::Rejected(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    /// Every delivery still pending, oldest first: what a restart sends again.
    async fn pending_deliveries(&self) -> Result<Vec<Delivery>, StoreError>;
    /// An incident's deliveries, oldest first (the timeline shows them;
    /// updates find the page they follow up).
    async fn deliveries(&self, incident: IncidentId) -> Result<Vec<Delivery>, StoreError>;
}

pub type SharedStore = Arc<dyn Store>;

pub use crate::domain::delivery::Notification;

/// One delivery attempt's outcome, on its way to the delivery log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    pub key: DeliveryKey,
    pub outcome: AttemptOutcome,
    pub at: Timestamp,
}

/// A channel's send rate: `per_second` on average, bursts of `burst`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    pub per_second: f64,
    pub burst: u32,
}

/// The default for channels that name none (webhooks, the console): high
/// enough not to be the bottleneck of an alert storm (the delivery
/// benchmark sends 1,000 pages a second), low enough that a runaway loop
/// cannot flood a receiver without bound.
impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_second: 2000.0,
            burst: 2000,
        }
    }
}

/// What a channel reports of a successful delivery.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delivered {
    /// The channel's reference of what it sent (Slack `channel:ts`, an
    /// email's `Message-ID`), stored so later updates land on it.
    pub external_ref: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// Failed in a way that may pass: timeouts, resets, 5xx. Retried.
    #[error("channel {channel} failed: {message}")]
    Failed { channel: String, message: String },
    /// Refused for good (bad credentials, unknown recipient, a 4xx that
    /// will not change): not retried.
    #[error("channel {channel} refused the delivery: {message}")]
    Refused { channel: String, message: String },
    /// The far end asked us to slow down (HTTP 429 with `Retry-After`).
    #[error("channel {channel} is rate limited; retry in {retry_after:?}")]
    RateLimited {
        channel: String,
        retry_after: std::time::Duration,
    },
}

impl ChannelError {
    /// Whether another attempt may succeed.
    pub fn is_retryable(&self) -> bool {
        !matches!(self, ChannelError::Refused { .. })
    }
}

/// A notification transport: the console, email, a webhook, Slack. The
/// notifier pool runs one worker per transport ([`Channel::name`] matches
/// [`crate::domain::Recipient::transport`]).
#[async_trait]
pub trait Channel: Send + Sync + 'static {
    fn name(&self) -> &str;
    /// How fast lim may send through this channel (the far end's limits).
    fn rate_limit(&self) -> RateLimit {
        RateLimit::default()
    }
    /// Delivers one notification (a page, or an update of an earlier page
    /// when `notification.thread` is set). One attempt; the pool retries.
    async fn deliver(&self, notification: &Notification) -> Result<Delivered, ChannelError>;
}
