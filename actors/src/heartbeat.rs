//! Heartbeat monitors: the `heartbeats` supervisor and one
//! `HeartbeatActor` per configured monitor (`heartbeat:<name>` in the actor
//! tree), each owning its deadline timer.
//!
//! A monitor is pinged (`POST /v1/heartbeats/{name}`); a ping that does not
//! come by the deadline (`interval + grace` after the last one) opens an
//! incident (`alertname=HeartbeatMissed`), the next ping resolves it. The
//! transitions are pure (`domain::heartbeat`); this file does the I/O.
//!
//! Durability, and the choices made:
//!
//! * The state (last ping, deadline, missed) is written straight through the
//!   store (`Store::save_heartbeat`, one upsert), not through the
//!   persistence actor: pings are low-rate, a heartbeat row is never part of
//!   an incident's transaction, and group commit would buy nothing. Silences
//!   are written the same way.
//! * A ping is answered once its new deadline is committed; a failed commit
//!   answers the error and changes nothing (not even in memory).
//! * A miss goes through the normal ingest path (router, incident actor,
//!   persistence), so it has the same contract as any alert; only then is
//!   `missed` saved. A crash in between re-sends the miss at restart, which
//!   the dedup key folds into the incident already open. If the ingest or
//!   the save fails (store down), a short retry timer tries again: a miss is
//!   never dropped.
//! * The recovery is sent after the ping's commit (the ping does not wait on
//!   the router); it is retried on the same timer if it fails. On start, a
//!   monitor that is up sends it once more, a no-op unless a resolve was
//!   lost (a crash between the ping's commit and the resolve, or a longer
//!   interval configured while missed).
//! * A deadline already past at start fires once, at once. While missed
//!   there is no timer: nothing is due until the next ping.
//! * One timer slot per monitor (the earlier of the deadline and a pending
//!   retry), a `send_after` handle with a generation so a replaced timer
//!   that fires anyway is ignored; aborted when replaced or dropped.
//!
//! Supervision: the `heartbeats` supervisor (a child of the root, started
//! after the router has rehydrated, so a miss at start finds it ready) loads
//! every stored state once and spawns the monitors. A monitor that fails is
//! restarted from its stored state, under the restart-intensity limit per
//! monitor; beyond it the supervisor fails and the root restarts it (which
//! reloads every monitor). Stored rows of monitors no longer configured are
//! ignored, not deleted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::domain::{
    Attribution, DeadlineEffect, Fingerprint, HeartbeatMonitor, HeartbeatState, HeartbeatStatus,
    IngestAction, Interface, PingEffect, RestartIntensity,
};
use crate::messages::{CommandError, HeartbeatMsg, IncidentCommand, RouterMsg, SupervisorMsg};
use crate::system::{call_router, route, CoreContext};
use crate::time::Timestamp;

/// How long to wait before retrying a miss, a save or a recovery that failed.
pub const HEARTBEAT_RETRY: Duration = Duration::from_secs(5);

/// A pending `send_after`; aborting it cancels the timer.
type TimerHandle = JoinHandle<Result<(), ractor::MessagingErr<HeartbeatMsg>>>;

// ------------------------------------------------------------- supervisor

pub struct HeartbeatSupervisor;

pub struct HeartbeatSupervisorState {
    ctx: Arc<CoreContext>,
    /// Running monitor actors → index in `ctx.config.heartbeats`.
    children: HashMap<ActorId, usize>,
    restarts: HashMap<usize, RestartIntensity>,
}

async fn spawn_monitor(
    supervisor: ActorCell,
    state: &mut HeartbeatSupervisorState,
    index: usize,
    stored: Option<HeartbeatState>,
) -> Result<(), ActorProcessingErr> {
    let monitor = state.ctx.config.heartbeats[index].clone();
    let name = state.ctx.names.heartbeat(&monitor.name);
    // A monitor of a previous supervisor (which failed: ractor kills its
    // children, asynchronously) may still hold the name for a moment.
    if let Some(stale) = ractor::registry::where_is(name.clone()) {
        let _ = stale
            .kill_and_wait(Some(state.ctx.config.call_timeout))
            .await;
    }
    let args = HeartbeatArgs {
        monitor,
        stored,
        ctx: state.ctx.clone(),
    };
    let (actor, _) = Actor::spawn_linked(Some(name), HeartbeatActor, args, supervisor).await?;
    state.children.insert(actor.get_id(), index);
    Ok(())
}

impl Actor for HeartbeatSupervisor {
    type Msg = SupervisorMsg;
    type State = HeartbeatSupervisorState;
    type Arguments = Arc<CoreContext>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Arc<CoreContext>,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = HeartbeatSupervisorState {
            ctx: ctx.clone(),
            children: HashMap::new(),
            restarts: HashMap::new(),
        };
        if ctx.config.heartbeats.is_empty() {
            // Nothing configured: not even a read of the store.
            return Ok(state);
        }
        let stored: HashMap<String, HeartbeatState> =
            ctx.store.load_heartbeats().await?.into_iter().collect();
        for (index, monitor) in ctx.config.heartbeats.iter().enumerate() {
            let found = stored.get(&monitor.name).copied();
            if let Err(e) = spawn_monitor(myself.get_cell(), &mut state, index, found).await {
                myself.stop_children(None);
                return Err(e);
            }
        }
        tracing::info!(
            monitors = ctx.config.heartbeats.len(),
            "heartbeat monitors started"
        );
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Let a monitor finish what it is doing (an ingest, a save) rather
        // than kill it mid-way.
        myself
            .stop_children_and_wait(None, Some(state.ctx.config.call_timeout))
            .await;
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisorMsg::Inspect(reply) = msg;
        let recent: usize = state.restarts.values().map(RestartIntensity::recent).sum();
        let _ = reply.send(serde_json::json!({
            "monitors": state.children.len(),
            "configured": state.ctx.config.heartbeats.len(),
            "recent_restarts": recent,
        }));
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.children.remove(&cell.get_id());
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(index) = state.children.remove(&cell.get_id()) else {
                    return Ok(());
                };
                let name = state.ctx.config.heartbeats[index].name.clone();
                tracing::error!(heartbeat = %name, error = %err, "heartbeat monitor failed");
                let allowed = state
                    .restarts
                    .entry(index)
                    .or_default()
                    .allow(state.ctx.config.restart, tokio::time::Instant::now());
                if !allowed {
                    return Err(format!(
                        "heartbeat {name} failed more than {} times in {:?}; escalating",
                        state.ctx.config.restart.max_restarts, state.ctx.config.restart.within
                    )
                    .into());
                }
                // Restart from the stored state: what memory held beyond it
                // (a miss sent but not yet saved) is re-sent, deduplicated.
                let stored = state
                    .ctx
                    .store
                    .load_heartbeats()
                    .await?
                    .into_iter()
                    .find_map(|(n, s)| (n == name).then_some(s));
                spawn_monitor(myself.get_cell(), state, index, stored).await?;
                state.ctx.metrics.count_restart("heartbeat");
                tracing::warn!(heartbeat = %name, "heartbeat monitor restarted from its stored state");
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------- monitor

pub struct HeartbeatActor;

pub struct HeartbeatArgs {
    pub monitor: HeartbeatMonitor,
    /// The stored state, if this monitor was ever saved.
    pub stored: Option<HeartbeatState>,
    pub ctx: Arc<CoreContext>,
}

struct ArmedTimer {
    generation: u64,
    /// The wall clock and tokio's clock when it was armed (see `now`).
    armed_at: (Timestamp, tokio::time::Instant),
    handle: TimerHandle,
}

impl ArmedTimer {
    /// The wall clock as it would read now had it not jumped since the
    /// timer was armed: a clock moved back must not postpone a miss, one
    /// moved forward must not declare a miss early.
    fn now(&self) -> Timestamp {
        let (wall, mono) = self.armed_at;
        wall.plus(mono.elapsed())
    }
}

/// A replaced or dropped timer is cancelled (the state is dropped even when
/// the actor is killed, without `post_stop`).
impl Drop for ArmedTimer {
    fn drop(&mut self) {
        self.handle.abort();
    }
}

pub struct HeartbeatActorState {
    monitor: HeartbeatMonitor,
    /// The state as the monitor sees it. Ahead of the store only while
    /// `unsaved`: a miss that was sent but whose save failed.
    state: HeartbeatState,
    unsaved: bool,
    /// A recovery that must still be sent.
    resolve_pending: bool,
    /// When to retry what failed, if anything did.
    retry_at: Option<Timestamp>,
    timer: Option<ArmedTimer>,
    generation: u64,
    ctx: Arc<CoreContext>,
}

impl HeartbeatActorState {
    fn status(&self) -> HeartbeatStatus {
        HeartbeatStatus::of(&self.monitor, &self.state)
    }

    /// The next instant something is due: the deadline (unless already
    /// missed) or a retry, whichever is earlier. A deadline already due
    /// whose miss could not be sent waits for the retry (else it would
    /// fire again at once, in a loop).
    fn next_wake(&self, now: Timestamp) -> Option<Timestamp> {
        let deadline = (!self.state.missed).then_some(self.state.deadline);
        match (deadline, self.retry_at) {
            (Some(d), Some(r)) if d <= now => Some(r),
            (Some(d), Some(r)) => Some(d.min(r)),
            (d, r) => d.or(r),
        }
    }

    /// Replaces the timer with one for `next_wake` (or none), computed at
    /// `now` (the wall clock, or a fired timer's own `now`).
    fn rearm(&mut self, myself: &ActorRef<HeartbeatMsg>, now: Timestamp) {
        let Some(at) = self.next_wake(now) else {
            self.timer = None;
            return;
        };
        self.generation += 1;
        let generation = self.generation;
        let delay = at.remaining_from(now);
        let handle = myself.send_after(delay, move || HeartbeatMsg::Timer { generation });
        // Replacing the slot drops (aborts) the previous timer.
        self.timer = Some(ArmedTimer {
            generation,
            armed_at: (now, tokio::time::Instant::now()),
            handle,
        });
    }

    fn retry_later(&mut self, now: Timestamp) {
        let at = now.plus(HEARTBEAT_RETRY);
        self.retry_at = Some(self.retry_at.map_or(at, |r| r.min(at)));
    }

    /// Sends the recovery. A recovery whose labels no longer match the
    /// alert the incident holds (the monitor's `service` changed in the
    /// config since the miss) reaches the incident through the dedup key
    /// but resolves nothing; the incident is then resolved by its key.
    async fn send_recovery(&self) -> Result<(), String> {
        let alert = self.monitor.recovered_alert(&self.state);
        let key: Fingerprint = alert.incident_key();
        let outcome = route(&self.ctx, alert).await.map_err(|e| e.to_string())?;
        let open_left = outcome.action == IngestAction::Unchanged && outcome.incident_id.is_some();
        if !open_left {
            return Ok(());
        }
        let by = Attribution::new(format!("heartbeat:{}", self.monitor.name), Interface::Alert);
        match call_router(&self.ctx, |reply| RouterMsg::CommandByKey {
            key,
            command: IncidentCommand::Resolve(by),
            reply,
        })
        .await
        {
            // Resolved meanwhile by someone else: nothing left to do.
            Ok(_) | Err(CommandError::NoOpenIncident(_) | CommandError::Transition(_)) => Ok(()),
            Err(e) => Err(e.to_string()),
        }
    }

    /// Does whatever is due at `now`: a pending recovery, a passed deadline
    /// (the miss is sent once), a pending save. What fails is retried later.
    async fn run_due(&mut self, now: Timestamp) {
        self.retry_at = None;
        if self.resolve_pending {
            match self.send_recovery().await {
                Ok(()) => self.resolve_pending = false,
                Err(e) => {
                    tracing::warn!(heartbeat = %self.monitor.name, error = %e, "heartbeat recovery not sent; retrying");
                    self.retry_later(now);
                }
            }
        }
        let mut next = self.state;
        if next.deadline_passed(now) == DeadlineEffect::OpenMiss {
            let alert = self.monitor.missed_alert(&next);
            match route(&self.ctx, alert).await {
                Ok(outcome) => {
                    tracing::warn!(
                        heartbeat = %self.monitor.name,
                        deadline = %next.deadline,
                        incident_id = ?outcome.incident_id.map(|i| i.0),
                        "heartbeat missed"
                    );
                    self.state = next;
                    self.unsaved = true;
                }
                Err(e) => {
                    tracing::warn!(heartbeat = %self.monitor.name, error = %e, "heartbeat miss not sent; retrying");
                    self.retry_later(now);
                }
            }
        }
        if self.unsaved {
            match self
                .ctx
                .store
                .save_heartbeat(&self.monitor.name, &self.state)
                .await
            {
                Ok(()) => self.unsaved = false,
                Err(e) => {
                    tracing::warn!(heartbeat = %self.monitor.name, error = %e, "heartbeat state not saved; retrying");
                    self.retry_later(now);
                }
            }
        }
    }
}

impl Actor for HeartbeatActor {
    type Msg = HeartbeatMsg;
    type State = HeartbeatActorState;
    type Arguments = HeartbeatArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: HeartbeatArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let now = args.ctx.clock.now();
        let seen_before = args.stored.is_some();
        let (state, unsaved) = match args.stored {
            Some(stored) => {
                let state = HeartbeatState::restored(stored, &args.monitor, now);
                (state, state != stored)
            }
            // Never seen: saved at once (in `post_start`), so its first
            // deadline survives a restart.
            None => (HeartbeatState::initial(&args.monitor, now), true),
        };
        Ok(HeartbeatActorState {
            // Up at start: make sure no miss of it is left open.
            resolve_pending: seen_before && !state.missed && !state.is_due(now),
            monitor: args.monitor,
            state,
            unsaved,
            retry_at: None,
            timer: None,
            generation: 0,
            ctx: args.ctx,
        })
    }

    async fn post_start(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Save a new state, resolve what must be, fire a deadline passed
        // while down (once), then arm the timer.
        let now = state.ctx.clock.now();
        state.run_due(now).await;
        state.rearm(&myself, now);
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.timer = None;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            HeartbeatMsg::Ping(reply) => {
                let now = state.ctx.clock.now();
                let mut next = state.state;
                let effect = next.ping(&state.monitor, now);
                if let Err(e) = state
                    .ctx
                    .store
                    .save_heartbeat(&state.monitor.name, &next)
                    .await
                {
                    // Not recorded: memory stays as it was, and so does the timer.
                    let _ = reply.send(Err(e.into()));
                    return Ok(());
                }
                state.state = next;
                state.unsaved = false;
                if effect == PingEffect::ResolveMiss {
                    state.resolve_pending = true;
                    tracing::info!(heartbeat = %state.monitor.name, "heartbeat back");
                }
                let _ = reply.send(Ok(state.status()));
                if state.resolve_pending {
                    state.run_due(now).await;
                }
                state.rearm(&myself, now);
            }
            HeartbeatMsg::Status(reply) => {
                let _ = reply.send(state.status());
            }
            HeartbeatMsg::Timer { generation } => {
                if state.timer.as_ref().map(|t| t.generation) != Some(generation) {
                    return Ok(());
                }
                // Forget the timer that just fired (its task is done); its
                // time came on tokio's clock, whatever the wall clock did.
                let Some(fired) = state.timer.take() else {
                    return Ok(());
                };
                let now = fired.now();
                state.run_due(now).await;
                state.rearm(&myself, now);
            }
        }
        Ok(())
    }

    /// This actor supervises no one. Overridden anyway, as every actor here
    /// does, so ractor's default (stop when any linked child stops) can
    /// never apply by accident.
    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        _event: SupervisionEvent,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}
