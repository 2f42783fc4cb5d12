//! `IncidentActor`: one per open incident. It owns the incident's state and
//! its timers (next escalation step, ack expiry), and it is the only writer
//! of that incident, so an acknowledge racing a resolve or an escalation
//! step has exactly one order.
//!
//! Every handler applies a domain operation to a copy of the incident,
//! commits the resulting change through the persistence actor, and only
//! then keeps the copy and answers. A failed commit leaves memory as it was
//! and the caller gets the error: nothing is acknowledged that is not stored.
//!
//! Deadlines are absolute wall-clock instants (in the snapshot); the timers
//! are entries in the system's `TimerQueue` derived from them (one driver
//! task for every incident, not a task per timer: `crate::timer_queue`),
//! re-armed after every change and cancelled when dropped. A timer that fires checks its generation, so
//! a timer replaced by a later one is ignored. A fired timer's domain
//! operation runs at the timer's own "now" (the wall time it was armed at
//! plus tokio's elapsed time), so a wall clock that jumped meanwhile
//! neither postpones nor hurries it (`crate::time`).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tracing::Instrument;

use crate::domain::delivery::plan_deliveries;
use crate::domain::incident::service_of;
use crate::domain::{
    Change, Deadlines, Delivery, Fingerprint, Incident, IncidentId, IncidentStatus,
    IncidentSummary, IngestAction,
};
use crate::inspect::{IncidentView, TimerView};
use crate::messages::{
    CommandError, IncidentMsg, IngestError, IngestOutcome, NotifierMsg, Outgoing, PersistenceMsg,
    RouterMsg, TimerKind,
};
use crate::metrics::{BoardSlot, IncidentBoard};
use crate::ports::{IncidentWrite, StoreError, Touch, WriteBatch};
use crate::system::{CoreContext, Names};
use crate::time::Timestamp;
use crate::timer_queue::{Fire, QueuedTimer};

/// How long to wait before retrying a timer whose commit failed.
const TIMER_RETRY: Duration = Duration::from_secs(1);

pub struct IncidentActor;

pub struct IncidentArgs {
    pub id: IncidentId,
    /// The incident key (dedup key or label fingerprint) it is indexed by.
    pub key: Fingerprint,
    /// `Some` when rehydrated or restarted from a snapshot; `None` for a new
    /// incident, which exists once its first alert is committed.
    pub incident: Option<Incident>,
    /// Times this incident's actor was started again before this one.
    pub restarts: u32,
    pub ctx: Arc<CoreContext>,
}

struct ArmedTimer {
    deadline: Timestamp,
    /// The wall clock and tokio's clock when it was armed: when it fires,
    /// "now" is the first plus the second's elapsed time, so a wall clock
    /// that jumped meanwhile does not change what the timer meant.
    armed_at: (Timestamp, tokio::time::Instant),
    generation: u64,
    /// Dropping it (a replaced slot, a dropped state, a killed actor)
    /// cancels the timer.
    _queued: QueuedTimer<IncidentTimer>,
}

/// What an incident's timer does when due: tell the actor which timer of
/// which generation fired. It checks the generation, so a timer that fires
/// just as it is replaced is ignored.
pub struct IncidentTimer {
    actor: ActorRef<IncidentMsg>,
    kind: TimerKind,
    generation: u64,
}

impl Fire for IncidentTimer {
    fn fire(self) {
        // A stopped actor has nothing left to time.
        let _ = self.actor.cast(IncidentMsg::Timer {
            kind: self.kind,
            generation: self.generation,
        });
    }
}

impl ArmedTimer {
    /// The wall clock as it would read now had it not jumped since the
    /// timer was armed. Its deadline was the wall time then plus a
    /// duration; tokio's clock (monotonic) says how much of it went by.
    /// Moved back, the wall clock would postpone an escalation by the
    /// jump; moved forward, it would fire every later step at once.
    fn now(&self) -> Timestamp {
        let (wall, mono) = self.armed_at;
        wall.plus(mono.elapsed())
    }
}

pub struct IncidentState {
    id: IncidentId,
    key: Fingerprint,
    incident: Option<Incident>,
    /// Resolved (or never created): the router was told; alerts that still
    /// arrive are sent back to the router to open a new incident.
    closing: bool,
    /// One slot per `TimerKind`, indexed by `TimerKind::index`. Boxed:
    /// most incidents have one of the three armed, and this state lives
    /// as long as the incident (72 bytes per empty slot otherwise).
    timers: [Option<Box<ArmedTimer>>; 3],
    generation: u64,
    /// Cleared when an acknowledge or resolve commits; travels with each page.
    paging: Arc<AtomicBool>,
    restarts: u32,
    /// This incident on the metrics' board (open incidents, overdue
    /// escalations); withdrawn when the state is dropped.
    board: BoardSlot,
    ctx: Arc<CoreContext>,
}

fn wanted(deadlines: &Deadlines, kind: TimerKind) -> Option<Timestamp> {
    match kind {
        TimerKind::Escalation => deadlines.escalation,
        TimerKind::AckExpiry => deadlines.ack_expiry,
        TimerKind::AlertExpiry => deadlines.alert_expiry,
    }
}

impl IncidentState {
    fn abort_timers(&mut self) {
        // Dropping an armed timer cancels it.
        self.timers = Default::default();
    }

    fn arm(
        &mut self,
        myself: &ActorRef<IncidentMsg>,
        kind: TimerKind,
        deadline: Timestamp,
        now: Timestamp,
    ) {
        self.generation += 1;
        let generation = self.generation;
        let armed_at = tokio::time::Instant::now();
        let queued = self.ctx.incident_timers.arm(
            armed_at + deadline.remaining_from(now),
            IncidentTimer {
                actor: myself.clone(),
                kind,
                generation,
            },
        );
        // Replacing the slot drops (cancels) the previous timer.
        self.timers[kind.index()] = Some(Box::new(ArmedTimer {
            deadline,
            armed_at: (now, armed_at),
            generation,
            _queued: queued,
        }));
    }

    /// Makes the armed timers match the incident's deadlines, computed at
    /// `now` (the wall clock, or a fired timer's own `now`).
    fn rearm(&mut self, myself: &ActorRef<IncidentMsg>, now: Timestamp) {
        let deadlines = self
            .incident
            .as_ref()
            .map(|i| i.deadlines())
            .unwrap_or_default();
        for kind in TimerKind::ALL {
            let armed = self.timers[kind.index()].as_ref().map(|t| t.deadline);
            match (armed, wanted(&deadlines, kind)) {
                (a, w) if a == w => {}
                // Alert expiry moves later on every Prometheus re-send: keep
                // the earlier timer; when it fires it finds nothing expired
                // and arms the new deadline. One timer per window, not per re-send.
                (Some(a), Some(w)) if kind == TimerKind::AlertExpiry && a < w => {}
                (_, Some(w)) => self.arm(myself, kind, w, now),
                (_, None) => self.timers[kind.index()] = None,
            }
        }
        // Every change re-arms: the board follows the committed state.
        if let Some(incident) = &self.incident {
            self.board.publish(incident);
        }
    }

    /// What the actor tree shows of this incident.
    fn view(&self) -> IncidentView {
        let now = self.ctx.clock.now();
        let i = self.incident.as_ref();
        let timers = TimerKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let t = self.timers[kind.index()].as_ref()?;
                Some(TimerView {
                    kind: kind.as_str(),
                    deadline: t.deadline,
                    in_ms: t.deadline.as_millis() - now.as_millis(),
                })
            })
            .collect();
        IncidentView {
            incident_id: Some(self.id),
            status: i.map_or("opening", |i| i.status.as_str()),
            title: i.map(|i| i.title.clone()),
            service: i.map(|i| i.service.clone()),
            severity: i.and_then(|i| i.severity.clone()),
            policy: i.map(|i| i.policy.clone()),
            step: i.map(|i| i.escalation.step),
            repeat: i.map(|i| i.escalation.repeat),
            exhausted: i.is_some_and(|i| i.escalation.exhausted),
            timers,
            alerts: i.map_or(0, |i| i.alerts.len()),
            seen_count: i.map_or(0, |i| i.seen_count),
            last_seen: i.map(|i| i.last_seen),
            restarts: self.restarts,
            closing: self.closing,
            version: i.map_or(0, |i| i.version),
        }
    }

    fn timer_is_current(&self, kind: TimerKind, generation: u64) -> bool {
        self.timers[kind.index()]
            .as_ref()
            .is_some_and(|t| t.generation == generation)
    }

    /// Tells the router this incident is done; it answers with `Retire`.
    fn close(&mut self) {
        if !self.closing {
            self.closing = true;
            if let Some(router) = Names::lookup::<RouterMsg>(&self.ctx.names.router()) {
                let _ = router.cast(RouterMsg::Closed {
                    id: self.id,
                    key: self.key,
                });
            }
        }
    }
}

/// Commits one incident's change through the persistence actor and waits for it.
pub(crate) async fn commit(
    ctx: &CoreContext,
    incident: &Incident,
    change: &Change,
    deliveries: Vec<Delivery>,
) -> Result<(), StoreError> {
    let persistence = Names::lookup::<PersistenceMsg>(&ctx.names.persistence())
        .ok_or_else(|| StoreError::Unavailable("the persistence actor is not running".into()))?;
    let batch = WriteBatch {
        incidents: vec![IncidentWrite {
            incident: incident.clone(),
            events: change.events.clone(),
            alerts: change.alerts.clone(),
            received_at: ctx.clock.now(),
            deliveries,
        }],
        touches: Vec::new(),
        attempts: Vec::new(),
    };
    // No timeout here, on purpose: a write given up on would still commit
    // later, and memory would no longer match the store. The HTTP caller has
    // its own timeout (503, which never claims "not committed").
    // A span of its own: inside an ingest, a child of the `ingest` span.
    let span = tracing::info_span!("commit", incident_id = incident.id.0 as i64);
    match persistence
        .call(|reply| PersistenceMsg::Write { batch, reply }, None)
        .instrument(span)
        .await
    {
        Ok(CallResult::Success(r)) => r,
        Ok(CallResult::Timeout) => Err(StoreError::Unavailable("commit timed out".into())),
        Ok(CallResult::SenderError) | Err(_) => Err(StoreError::Unavailable(
            "the persistence actor stopped".into(),
        )),
    }
}

/// Commits `next` (the incident after `change`) and, on success, makes it
/// the actor's state, re-arms timers and sends the notifications it fired.
async fn commit_and_apply(
    myself: &ActorRef<IncidentMsg>,
    state: &mut IncidentState,
    mut next: Incident,
    change: Change,
    now: Timestamp,
) -> Result<(), StoreError> {
    if change.is_empty() {
        state.incident = Some(next);
        return Ok(());
    }
    next.bump_version();
    let paged_before = state
        .incident
        .as_ref()
        .map(|i| i.paged.clone())
        .unwrap_or_default();
    let deliveries = plan_deliveries(&next, &paged_before, &change, now);
    commit(&state.ctx, &next, &change, deliveries.clone()).await?;
    if next.status == IncidentStatus::Triggered {
        if !state.paging.load(Ordering::Acquire) {
            // Re-triggered: pages queued before the acknowledge stay dropped.
            state.paging = Arc::new(AtomicBool::new(true));
        }
    } else {
        state.paging.store(false, Ordering::Release);
    }
    for e in &change.events {
        if let crate::domain::EventKind::NobodyToNotify { step, repeat, .. } = &e.kind {
            tracing::warn!(
                incident_id = next.id.0,
                step,
                repeat,
                "an escalation step reached nobody (no one on call, or no contact method lim can use)"
            );
        }
    }
    notify(&state.ctx, &next, deliveries, &state.paging);
    let resolved = next.status == IncidentStatus::Resolved;
    let was = state.incident.as_ref().map(|i| i.status);
    if !resolved && was.is_some_and(|s| s != next.status) {
        // The router keeps each open incident's status for the actor tree.
        if let Some(router) = Names::lookup::<RouterMsg>(&state.ctx.names.router()) {
            let _ = router.cast(RouterMsg::StatusChanged {
                id: next.id,
                status: next.status,
            });
        }
    }
    state.incident = Some(next);
    state.rearm(myself, now);
    if resolved {
        state.close();
    }
    Ok(())
}

/// Records a repeat with the persistence actor (no answer awaited). When
/// the repeat moved an alert's expiry, the refreshed snapshot goes along, so
/// a restart does not expire an alert that is still being re-sent.
fn touch(state: &IncidentState, expiry_before: Option<Timestamp>) {
    let (Some(i), Some(p)) = (
        &state.incident,
        Names::lookup::<PersistenceMsg>(&state.ctx.names.persistence()),
    ) else {
        return;
    };
    let moved = i.deadlines().alert_expiry != expiry_before;
    let _ = p.cast(PersistenceMsg::Touch(Touch {
        id: i.id,
        last_seen: i.last_seen,
        seen_count: i.seen_count,
        snapshot: moved.then(|| Box::new(i.clone())),
    }));
}

/// Hands the deliveries just committed to the notifier pool (a cast: the
/// incident never waits on a channel). If the pool is down they stay
/// pending in the delivery log and are sent when it restarts.
fn notify(
    ctx: &CoreContext,
    incident: &Incident,
    deliveries: Vec<Delivery>,
    paging: &Arc<AtomicBool>,
) {
    if deliveries.is_empty() {
        return;
    }
    let _span = tracing::info_span!(
        "notify",
        incident_id = incident.id.0 as i64,
        deliveries = deliveries.len()
    )
    .entered();
    let Some(pool) = Names::lookup::<NotifierMsg>(&ctx.names.notifier()) else {
        tracing::error!(
            incident_id = incident.id.0,
            "notifier pool not running; deliveries stay pending"
        );
        return;
    };
    let summary = IncidentSummary::of(incident);
    let outgoing = deliveries
        .into_iter()
        .map(|delivery| Outgoing {
            still_wanted: delivery.event.is_page().then(|| paging.clone()),
            incident: summary.clone(),
            delivery,
            from_log: false,
        })
        .collect();
    let _ = pool.cast(NotifierMsg::Send(outgoing));
}

impl Actor for IncidentActor {
    type Msg = IncidentMsg;
    type State = IncidentState;
    type Arguments = IncidentArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: IncidentArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(IncidentState {
            board: IncidentBoard::slot(&args.ctx.metrics, args.id),
            id: args.id,
            key: args.key,
            incident: args.incident,
            closing: false,
            timers: [None, None, None],
            generation: 0,
            paging: Arc::new(AtomicBool::new(true)),
            restarts: args.restarts,
            ctx: args.ctx,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Re-arm what the snapshot had; a deadline already past fires at once.
        let now = state.ctx.clock.now();
        state.rearm(&myself, now);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.abort_timers();
        Ok(())
    }

    /// Boxed on purpose: ractor keeps each actor's message loop in one
    /// future laid out for the largest state any handler can be in, for the
    /// actor's whole life, so an idle incident would carry ~2.4 KiB of
    /// handler state it is not using (x 100,000 open incidents). The box
    /// exists only while a message is being handled.
    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Box::pin(handle_message(myself, msg, state)).await
    }

    /// This actor supervises no one. Overridden anyway, as every actor here
    /// does, so ractor's default (stop when any linked child stops) can
    /// never apply by accident.
    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        _event: ractor::SupervisionEvent,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}

/// What [`IncidentActor`] does with one message (see its `handle`).
async fn handle_message(
    myself: ActorRef<IncidentMsg>,
    msg: IncidentMsg,
    state: &mut IncidentState,
) -> Result<(), ActorProcessingErr> {
    #[cfg(test)]
    poison::check(&state.ctx.names.root(), state.id);
    match msg {
        IncidentMsg::Ingest { alert, reply, span } => {
            if state.closing {
                // Resolved meanwhile: the router opens a new incident.
                if let Some(router) = Names::lookup::<RouterMsg>(&state.ctx.names.router()) {
                    let _ = router.cast(RouterMsg::Ingest { alert, reply, span });
                }
                return Ok(());
            }
            // As i64: OpenTelemetry has no unsigned integers (a u64 would
            // be exported as a string).
            span.record("incident_id", state.id.0 as i64);
            let now = state.ctx.clock.now();
            let fingerprint = alert.fingerprint();
            // An identical re-send (most of the traffic under load) changes
            // no state: applied in place, without a copy of the incident and
            // with nothing to commit; its count and last_seen are written
            // with the next touch flush.
            if let Some(current) = state
                .incident
                .as_mut()
                .filter(|i| i.is_plain_repeat(&alert))
            {
                let expiry_before = current.deadlines().alert_expiry;
                let applied = current.apply_alert(alert, now);
                debug_assert!(
                    matches!(&applied, Ok((IngestAction::Unchanged, c)) if c.is_empty()),
                    "a plain repeat changed state: {applied:?}"
                );
                state.rearm(&myself, now);
                touch(state, expiry_before);
                let _ = reply.send(Ok(IngestOutcome {
                    fingerprint,
                    incident_id: Some(state.id),
                    action: IngestAction::Unchanged,
                }));
                return Ok(());
            }
            let (next, action, change) = match &state.incident {
                None => {
                    let config = &state.ctx.config;
                    let policy = config.policy_for_service(&service_of(&alert.labels));
                    let (mut i, mut c) = Incident::open(state.id, alert, policy, now);
                    // The first step is due at once: fire it in the
                    // creation's commit rather than in a second one.
                    c.merge(i.fire_escalation_to(policy, now, &config.directory));
                    (i, IngestAction::Created, c)
                }
                Some(current) => {
                    let mut next = current.clone();
                    match next.apply_alert(alert, now) {
                        Ok((action, change)) => (next, action, change),
                        Err(e) => {
                            // Unreachable while not closing; answer rather than panic.
                            let _ = reply.send(Err(IngestError::Unavailable(e.to_string())));
                            return Ok(());
                        }
                    }
                }
            };
            let repeat = change.is_empty();
            let expiry_before = state
                .incident
                .as_ref()
                .and_then(|i| i.deadlines().alert_expiry);
            let result = commit_and_apply(&myself, state, next, change, now)
                .instrument(span)
                .await;
            if repeat {
                state.rearm(&myself, now);
                touch(state, expiry_before);
            }
            let created_failed = result.is_err() && state.incident.is_none();
            let _ = reply.send(
                result
                    .map(|()| IngestOutcome {
                        fingerprint,
                        incident_id: Some(state.id),
                        action,
                    })
                    .map_err(IngestError::from),
            );
            if created_failed {
                // The incident was not stored (or, after a WAL flush that
                // failed, is in doubt: the store then refuses every write
                // until a restart, which reads back what is there): give
                // its index slot back.
                state.close();
            }
        }
        IncidentMsg::Command { command, reply } => {
            let Some(current) = &state.incident else {
                let _ = reply.send(Err(CommandError::NotFound(state.id)));
                return Ok(());
            };
            let mut next = current.clone();
            let now = state.ctx.clock.now();
            let config = &state.ctx.config;
            let change = command
                .apply(&mut next, config.policy_named(&current.policy), now)
                .map(|mut change| {
                    // Escalate-now makes the next step due at once: fire it
                    // in the same commit.
                    let policy = config.policy_named(&current.policy);
                    change.merge(next.fire_escalation_to(policy, now, &config.directory));
                    change
                });
            let result = match change {
                Err(e) => Err(CommandError::from(e)),
                Ok(change) => commit_and_apply(&myself, state, next, change, now)
                    .await
                    .map_err(CommandError::from)
                    .and_then(|()| {
                        state
                            .incident
                            .clone()
                            .ok_or(CommandError::NotFound(state.id))
                    }),
            };
            let _ = reply.send(result);
        }
        IncidentMsg::Timer { kind, generation } => {
            if !state.timer_is_current(kind, generation) {
                return Ok(());
            }
            // Forget the timer that just fired (the queue dropped it); its
            // deadline came on tokio's clock, whatever the wall clock did.
            let Some(fired) = state.timers[kind.index()].take() else {
                return Ok(());
            };
            let now = fired.now();
            let Some(current) = &state.incident else {
                return Ok(());
            };
            let mut next = current.clone();
            let change = match kind {
                TimerKind::Escalation => {
                    let config = &state.ctx.config;
                    let policy = config.policy_named(&next.policy).clone();
                    next.fire_escalation_to(&policy, now, &config.directory)
                }
                TimerKind::AckExpiry => next.expire_ack(now),
                TimerKind::AlertExpiry => next.expire_alerts(now),
            };
            if let Err(e) = commit_and_apply(&myself, state, next, change, now).await {
                // The step did not happen; try again shortly rather than drop it.
                tracing::warn!(incident_id = state.id.0, error = %e, "timer commit failed; retrying");
                state.arm(&myself, kind, now.plus(TIMER_RETRY), now);
            } else {
                // Whatever the step left due (nothing changed: the same
                // deadline again) is armed from the timer's own "now".
                state.rearm(&myself, now);
            }
        }
        IncidentMsg::Retire => myself.stop(None),
        IncidentMsg::Get(reply) => {
            let _ = reply.send(state.incident.clone());
        }
        IncidentMsg::Inspect { full, reply } => {
            let mut view = serde_json::to_value(state.view()).unwrap_or_default();
            if full {
                view["incident"] = serde_json::to_value(&state.incident).unwrap_or_default();
            }
            let _ = reply.send(view);
        }
    }
    Ok(())
}

/// Fault injection for the core's own unit tests (compiled only there):
/// incidents whose actor panics on every message, as a snapshot or an
/// alert that trips a bug would make it (`router`'s quarantine tests).
#[cfg(test)]
pub(crate) mod poison {
    use std::collections::BTreeSet;
    use std::sync::Mutex;

    use crate::domain::IncidentId;

    /// (the system's root name, incident id): tests run side by side.
    static POISONED: Mutex<BTreeSet<(String, u64)>> = Mutex::new(BTreeSet::new());

    pub fn set(system: &str, id: IncidentId, poisoned: bool) {
        let mut p = POISONED.lock().unwrap();
        if poisoned {
            p.insert((system.to_string(), id.0));
        } else {
            p.remove(&(system.to_string(), id.0));
        }
    }

    pub fn check(system: &str, id: IncidentId) {
        if POISONED
            .lock()
            .unwrap()
            .contains(&(system.to_string(), id.0))
        {
            panic!("injected fault: incident {id} is poisoned");
        }
    }
}
