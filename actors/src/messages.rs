//! Every message the actors exchange, as plain data, and the reply types.
//!
//! Calls carry an `RpcReplyPort`; a port travels with its request when an
//! actor forwards it (router → incident → caller), so nobody in the middle
//! waits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use ractor::{ActorRef, RpcReplyPort};
use serde::Serialize;

use crate::domain::{
    Alert, Attribution, Change, EscalationPolicy, Fingerprint, HeartbeatStatus, Incident,
    IncidentId, IngestAction, Silence, TransitionError,
};
use crate::domain::{Delivery, IncidentSummary};
use crate::ports::{StoreError, Touch, WriteBatch};
use crate::time::Timestamp;

/// The answer to one ingested alert.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct IngestOutcome {
    /// The alert's own fingerprint (its label set).
    pub fingerprint: Fingerprint,
    /// The incident it went to; `None` when a resolved alert matched no open incident.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub incident_id: Option<IncidentId>,
    pub action: IngestAction,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Nothing was committed; the sender should retry.
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("incident system unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("incident {0} not found")]
    NotFound(IncidentId),
    #[error("no open incident has key {0}")]
    NoOpenIncident(Fingerprint),
    #[error(transparent)]
    Transition(#[from] TransitionError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("incident system unavailable: {0}")]
    Unavailable(String),
}

/// Why a heartbeat ping was not recorded.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    /// No monitor of that name is configured (HTTP 404).
    #[error("no heartbeat monitor is named {0:?}")]
    Unknown(String),
    /// The store refused or could not be reached: the ping was not recorded
    /// and the deadline did not move; the sender should retry.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The monitor's actor did not answer (restarting, or the system is
    /// stopping); the ping may or may not have been recorded.
    #[error("heartbeat monitor unavailable: {0}")]
    Unavailable(String),
}

pub type IngestReply = RpcReplyPort<Result<IngestOutcome, IngestError>>;
pub type CommandReply = RpcReplyPort<Result<Incident, CommandError>>;

/// An operator's action on one incident.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncidentCommand {
    Acknowledge(Attribution),
    Resolve(Attribution),
    /// Acknowledged for this long, then triggered again.
    Snooze(Attribution, std::time::Duration),
    /// Fire the next escalation step now.
    Escalate(Attribution),
    Note(Attribution, String),
}

impl IncidentCommand {
    /// Applies the command to `incident` at `now`: the domain operation it names.
    pub fn apply(
        self,
        incident: &mut Incident,
        policy: &EscalationPolicy,
        now: Timestamp,
    ) -> Result<Change, TransitionError> {
        match self {
            IncidentCommand::Acknowledge(by) => incident.acknowledge(by, policy, now),
            IncidentCommand::Resolve(by) => incident.resolve(by, now),
            IncidentCommand::Snooze(by, d) => incident.snooze(by, d, now),
            IncidentCommand::Escalate(by) => incident.escalate_now(by, now),
            IncidentCommand::Note(by, text) => Ok(incident.add_note(by, text, now)),
        }
    }
}

/// One alert of a [`RouterMsg::IngestBatch`]: its incident key, computed
/// once by the sender (`Alert::incident_key`), and its own reply port.
pub struct KeyedAlert {
    pub key: Fingerprint,
    pub alert: Alert,
    pub reply: IngestReply,
}

pub enum RouterMsg {
    /// Route an alert to its open incident, opening one if none. `span` is
    /// the caller's (the HTTP handler's `ingest` span): the incident actor
    /// works inside it.
    Ingest {
        alert: Alert,
        reply: IngestReply,
        span: tracing::Span,
    },
    /// Route a request's alerts (`System::ingest_batch`), each to its
    /// incident as `Ingest` would, in input order. Every alert has its own
    /// reply port; `span` is the caller's one span for the whole batch.
    IngestBatch {
        alerts: Vec<KeyedAlert>,
        span: tracing::Span,
    },
    /// Run a command on an open incident.
    Command {
        id: IncidentId,
        command: IncidentCommand,
        reply: CommandReply,
    },
    /// Run a command on the open incident with this incident key (a
    /// sender's dedup key: PagerDuty's acknowledge and resolve events).
    CommandByKey {
        key: Fingerprint,
        command: IncidentCommand,
        reply: CommandReply,
    },
    /// An incident resolved (or never got created): drop it from the index.
    /// The router answers with `IncidentMsg::Retire`.
    Closed { id: IncidentId, key: Fingerprint },
    /// The silences now in the store (after one was created or expired).
    SetSilences(Vec<Silence>),
    /// The current index size (open incidents).
    IndexSize(RpcReplyPort<usize>),
    /// The actor of an open incident, if running.
    Lookup(IncidentId, RpcReplyPort<Option<ActorRef<IncidentMsg>>>),
    /// An incident's status changed (acknowledged, triggered again): the
    /// router keeps it so the actor tree can be filtered and counted
    /// without asking every incident.
    StatusChanged {
        id: IncidentId,
        status: crate::domain::IncidentStatus,
    },
    /// The router's observable state and one page of its incident children.
    Inspect(
        crate::inspect::ChildQuery,
        RpcReplyPort<crate::inspect::RouterPage>,
    ),
    /// The open incident run by the actor with this id, if any.
    IncidentOfActor(ractor::ActorId, RpcReplyPort<Option<IncidentId>>),
    /// Stop an open incident's actor and start it again from its committed
    /// snapshot (an operator action). Answers with the new actor.
    Restart(
        IncidentId,
        RpcReplyPort<Result<ActorRef<IncidentMsg>, CommandError>>,
    ),
    /// The router's own retry: bring back an incident whose actor failed
    /// while its snapshot could not be read (the store down).
    Respawn(IncidentId),
}

/// Asks a supervisor (the root, the heartbeat monitors' supervisor) for
/// its observable state.
pub enum SupervisorMsg {
    Inspect(RpcReplyPort<serde_json::Value>),
}

/// Which of an incident's timers fired. `generation` tells a timer armed
/// before the last re-arm (stale, ignored) from the current one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerKind {
    Escalation,
    AckExpiry,
    /// The earliest `ends_at` of a firing alert.
    AlertExpiry,
}

impl TimerKind {
    pub const ALL: [TimerKind; 3] = [
        TimerKind::Escalation,
        TimerKind::AckExpiry,
        TimerKind::AlertExpiry,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TimerKind::Escalation => "escalation",
            TimerKind::AckExpiry => "ack_expiry",
            TimerKind::AlertExpiry => "alert_expiry",
        }
    }
}

pub enum IncidentMsg {
    Ingest {
        alert: Alert,
        reply: IngestReply,
        /// The caller's span, carried from `RouterMsg::Ingest`.
        span: tracing::Span,
    },
    Command {
        command: IncidentCommand,
        reply: CommandReply,
    },
    Timer {
        kind: TimerKind,
        generation: u64,
    },
    /// The router dropped this incident from its index: stop.
    Retire,
    /// The incident as the actor holds it now (including uncommitted repeat counts).
    Get(RpcReplyPort<Option<Incident>>),
    /// The actor's observable state (`inspect::IncidentView`); `full` adds
    /// the whole incident as held in memory.
    Inspect {
        full: bool,
        reply: RpcReplyPort<serde_json::Value>,
    },
}

pub enum HeartbeatMsg {
    /// A ping: the new deadline is committed before the answer.
    Ping(RpcReplyPort<Result<HeartbeatStatus, HeartbeatError>>),
    /// The monitor's observable state (as held in memory).
    Status(RpcReplyPort<HeartbeatStatus>),
    /// The monitor's timer (deadline or retry). `generation` tells the
    /// current timer from one replaced since (stale, ignored).
    Timer { generation: u64 },
}

pub enum PersistenceMsg {
    /// Commit this batch (grouped with whatever else is pending) and answer after the commit.
    Write {
        batch: WriteBatch,
        reply: RpcReplyPort<Result<(), StoreError>>,
    },
    /// Record a repeat; written with a later batch.
    Touch(Touch),
    /// Record a delivery attempt; written with the next group commit (or,
    /// on a store that takes concurrent writers, in a transaction of its
    /// own beside it).
    Attempt(crate::ports::AttemptRecord),
    /// The write of delivery attempts on their own of that `generation`
    /// has ended; what it failed to write is queued again.
    AttemptsRecorded { generation: u64 },
    /// The pause after a failed write of delivery attempts is over: try
    /// again.
    RecordAttempts,
    /// Commit whatever is pending now.
    Flush,
    /// The repeat counters' interval is up: commit them (with whatever
    /// else is pending).
    FlushTouches,
    /// Commit everything queued before this message, then answer. The
    /// router sends it before rehydrating, so writes of incident actors that
    /// were killed with the previous router are in the store before it reads.
    Sync(RpcReplyPort<Result<(), StoreError>>),
    /// The actor's observable state (`inspect::PersistenceView`).
    Inspect(RpcReplyPort<serde_json::Value>),
}

/// A recorded delivery on its way to a channel. A page carries its
/// incident's "still paging" flag: the incident clears it when an
/// acknowledge or resolve is committed, so pages still queued behind a slow
/// channel are dropped (and recorded as cancelled) instead of paging
/// someone about an incident already handled. Updates carry none: they are
/// always wanted.
#[derive(Clone)]
pub struct Outgoing {
    pub delivery: Delivery,
    pub incident: IncidentSummary,
    pub still_wanted: Option<Arc<AtomicBool>>,
    /// Read back from the delivery log (pending at a start): its incident
    /// may have pages this process never saw.
    pub from_log: bool,
}

impl Outgoing {
    pub fn is_wanted(&self) -> bool {
        self.still_wanted
            .as_ref()
            .is_none_or(|w| w.load(Ordering::Acquire))
    }
}

pub enum NotifierMsg {
    /// Deliveries already recorded pending in the delivery log.
    Send(Vec<Outgoing>),
    /// The pool's observable state: the transports it serves, in worker order.
    Inspect(RpcReplyPort<crate::inspect::PoolView>),
}
