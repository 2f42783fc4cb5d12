//! The router: the dedup index (incident key → open incident) and the
//! supervisor of every incident actor.
//!
//! On start it rehydrates: it loads every open incident from the store and
//! respawns its actor, which re-arms its timers. It then routes each alert
//! to the actor of its open incident, or spawns a new incident actor. It
//! never waits on an incident: requests are forwarded with their reply port.
//!
//! Supervision: an incident that stops normally (resolved, retired) is
//! forgotten; one that fails is restarted from its last committed snapshot,
//! at most `restart.max_restarts` times in `restart.within` per incident.
//! Beyond that the failure is the incident's own (a snapshot or an alert
//! that makes its actor panic every time), so the router quarantines it
//! rather than fail itself: escalating to the root would restart the router
//! and rehydrate every incident, and with the poison incident back the
//! loop would take the whole process down within minutes. A quarantined
//! incident has no actor; alerts and commands for it are refused with 503
//! (nothing accepted is lost: senders retry), its timeline gets a note
//! saying why, `lim_incidents_quarantined` and the router's node in the
//! actor tree show it with its last error and an error is logged. Every
//! other incident keeps running. An operator's restart
//! (`POST /v1/actors/incident-N/restart`) brings it back from its snapshot
//! with a fresh restart allowance. An incident whose actor fails while the
//! store is down (its snapshot cannot be read) keeps its key the same way,
//! refused with "restarting", and the router brings it back by itself once
//! the store answers (retrying every `RESPAWN_RETRY`): failing the router
//! there would have the root rehydrate everything from that same store.
//! The router itself still fails on its own errors (a store it cannot read
//! at start), which the root handles.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::domain::{
    Alert, AlertStatus, Attribution, Fingerprint, Incident, IncidentId, IncidentStatus,
    IngestAction, Interface, RestartIntensity, Silence, SilenceId, SilenceState, TransitionError,
};
use crate::incident::{commit, IncidentActor, IncidentArgs};
use crate::inspect::{ChildQuery, IncidentChild, QuarantinedView, RouterPage, RouterView};
use crate::messages::{
    CommandError, IncidentCommand, IncidentMsg, IngestError, IngestOutcome, IngestReply,
    KeyedAlert, PersistenceMsg, RouterMsg,
};
use crate::system::{CoreContext, Names};
use crate::time::Timestamp;

pub struct RouterActor;

struct Entry {
    id: IncidentId,
    actor: ActorRef<IncidentMsg>,
}

/// An open incident as the router knows it. Ordered by id, so the actor
/// tree pages through 100,000 of them by keyset without sorting.
struct Open {
    actor: ActorRef<IncidentMsg>,
    key: Fingerprint,
    status: IncidentStatus,
    /// Times its actor was started again (failures, operator restarts).
    restarts: u32,
}

pub struct RouterState {
    ctx: Arc<CoreContext>,
    by_key: HashMap<Fingerprint, Entry>,
    by_id: BTreeMap<IncidentId, Open>,
    by_actor: HashMap<ActorId, (IncidentId, Fingerprint)>,
    restarts: HashMap<IncidentId, RestartIntensity>,
    next_id: u64,
    /// Silences not yet expired; consulted only when an alert would open an incident.
    silences: Vec<Silence>,
    /// Open incidents by status (the tree's summary, kept as they change).
    acknowledged: usize,
    /// Incident actors restarted after a failure since this router started.
    failure_restarts: u64,
    /// Incidents whose actor failed beyond the restart intensity, by key
    /// (alerts for them are refused, not routed to a new incident).
    quarantined: HashMap<Fingerprint, QuarantinedView>,
}

/// The refusal an alert or a command for a quarantined incident gets.
fn quarantined_refusal(q: &QuarantinedView) -> String {
    if q.waiting_for_store {
        return format!(
            "incident {} is restarting: its snapshot cannot be read ({}); retry shortly",
            q.incident_id, q.error
        );
    }
    format!(
        "incident {} is quarantined: its actor failed {} times in a row ({}); nothing for it \
         is accepted until an operator restarts it (POST /v1/actors/incident-{}/restart)",
        q.incident_id, q.failures, q.error, q.incident_id.0
    )
}

impl RouterState {
    fn insert(
        &mut self,
        id: IncidentId,
        key: Fingerprint,
        actor: ActorRef<IncidentMsg>,
        status: IncidentStatus,
        restarts: u32,
    ) {
        self.by_actor.insert(actor.get_id(), (id, key));
        if status == IncidentStatus::Acknowledged {
            self.acknowledged += 1;
        }
        self.by_id.insert(
            id,
            Open {
                actor: actor.clone(),
                key,
                status,
                restarts,
            },
        );
        self.by_key.insert(key, Entry { id, actor });
    }

    /// Drops an incident from the index (not from `by_actor`: that goes when
    /// the actor has actually stopped).
    fn remove(&mut self, id: IncidentId, key: Fingerprint) -> Option<Open> {
        if self.by_key.get(&key).is_some_and(|e| e.id == id) {
            self.by_key.remove(&key);
        }
        let open = self.by_id.remove(&id)?;
        if open.status == IncidentStatus::Acknowledged {
            self.acknowledged -= 1;
        }
        Some(open)
    }

    fn set_status(&mut self, id: IncidentId, status: IncidentStatus) {
        let Some(open) = self.by_id.get_mut(&id) else {
            return;
        };
        let was = std::mem::replace(&mut open.status, status) == IncidentStatus::Acknowledged;
        let is = status == IncidentStatus::Acknowledged;
        if was && !is {
            self.acknowledged -= 1;
        } else if is && !was {
            self.acknowledged += 1;
        }
    }

    /// The router's part of the actor tree: its figures and one page of incidents.
    fn page(&self, q: &ChildQuery) -> RouterPage {
        let from = q
            .after
            .map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
        let mut matching = self
            .by_id
            .range((from, std::ops::Bound::Unbounded))
            .filter(|(_, o)| q.status.is_none_or(|s| o.status == s));
        let children: Vec<IncidentChild> = matching
            .by_ref()
            .take(q.limit)
            .map(|(id, o)| IncidentChild {
                id: *id,
                actor: o.actor.clone(),
            })
            .collect();
        let more = matching.next().is_some();
        let open = self.by_id.len();
        let view = RouterView {
            index_size: open,
            triggered: open - self.acknowledged,
            acknowledged: self.acknowledged,
            next_id: self.next_id,
            silences: self.silences.len(),
            incident_restarts: self.failure_restarts,
            quarantined: {
                let mut q: Vec<QuarantinedView> = self.quarantined.values().cloned().collect();
                q.sort_by_key(|q| q.incident_id);
                q
            },
        };
        let matching = match q.status {
            None => open,
            Some(IncidentStatus::Acknowledged) => self.acknowledged,
            Some(IncidentStatus::Triggered) => open - self.acknowledged,
            Some(IncidentStatus::Resolved) => 0,
        };
        RouterPage {
            next_cursor: more.then(|| children.last().map(|c| c.id)).flatten(),
            view,
            children,
            matching,
        }
    }

    fn quarantined_by_id(&self, id: IncidentId) -> Option<(&Fingerprint, &QuarantinedView)> {
        self.quarantined.iter().find(|(_, q)| q.incident_id == id)
    }

    fn allocate_id(&mut self) -> IncidentId {
        let id = IncidentId(self.next_id);
        self.next_id += 1;
        id
    }
}

async fn spawn_incident(
    myself: &ActorRef<RouterMsg>,
    ctx: &Arc<CoreContext>,
    id: IncidentId,
    key: Fingerprint,
    incident: Option<Incident>,
    restarts: u32,
) -> Result<ActorRef<IncidentMsg>, ActorProcessingErr> {
    let args = IncidentArgs {
        id,
        key,
        incident,
        restarts,
        ctx: ctx.clone(),
    };
    let (actor, _) = Actor::spawn_linked(None, IncidentActor, args, myself.get_cell()).await?;
    Ok(actor)
}

/// The silences still worth checking: active or pending.
fn live_silences(silences: Vec<Silence>, now: Timestamp) -> Vec<Silence> {
    silences
        .into_iter()
        .filter(|s| s.state(now) != SilenceState::Expired)
        .collect()
}

/// Answers `Silenced` for an alert a silence kept from opening an incident,
/// once it is recorded. The store keeps one row per (silence, alert), so a
/// re-send writes nothing new; the write runs off the router's loop.
fn record_silenced(
    state: &RouterState,
    silence: SilenceId,
    alert: Alert,
    reply: crate::messages::IngestReply,
    now: Timestamp,
) {
    let outcome = IngestOutcome {
        fingerprint: alert.fingerprint(),
        incident_id: None,
        action: IngestAction::Silenced,
    };
    let store = state.ctx.store.clone();
    tokio::spawn(async move {
        let result = store.record_silenced(silence, &alert, now).await;
        let _ = reply.send(result.map(|()| outcome).map_err(IngestError::from));
    });
}

async fn command_on_closed(
    ctx: &CoreContext,
    id: IncidentId,
    command: IncidentCommand,
) -> Result<Incident, CommandError> {
    let mut incident = ctx
        .store
        .get_incident(id)
        .await?
        .ok_or(CommandError::NotFound(id))?;
    if !matches!(command, IncidentCommand::Note(..)) {
        return Err(TransitionError::AlreadyResolved(id).into());
    }
    let change = command.apply(&mut incident, &ctx.config.policy, ctx.clock.now())?;
    incident.bump_version();
    commit(ctx, &incident, &change, Vec::new()).await?;
    Ok(incident)
}

/// Stops restarting an incident whose actor keeps failing (see the module
/// header) and writes why on its timeline. The note is committed off the
/// router's loop, by a task: if what poisons the incident also breaks
/// that, only the task fails.
fn quarantine(state: &mut RouterState, id: IncidentId, key: Fingerprint, error: String) {
    let failures = state.ctx.config.restart.max_restarts + 1;
    state.remove(id, key);
    state.restarts.remove(&id);
    let q = QuarantinedView {
        incident_id: id,
        failures,
        since: state.ctx.clock.now(),
        error,
        waiting_for_store: false,
    };
    tracing::error!(
        incident_id = id.0,
        failures,
        error = %q.error,
        "incident actor keeps failing: quarantined; its alerts and commands are refused until an operator restarts it"
    );
    state.ctx.metrics.quarantined.inc();
    let text = format!(
        "lim quarantined this incident: its actor failed {failures} times within {:?} (last \
         error: {}). No escalation runs and its alerts are refused (503) until an operator \
         restarts it: lim actors restart incident-{}",
        state.ctx.config.restart.within, q.error, id.0
    );
    state.quarantined.insert(key, q);
    let ctx = state.ctx.clone();
    tokio::spawn(async move {
        let by = Attribution::new("lim", Interface::System);
        if let Err(e) = command_on_closed(&ctx, id, IncidentCommand::Note(by, text)).await {
            tracing::error!(incident_id = id.0, error = %e, "cannot record the quarantine on the timeline");
        }
    });
}

/// An operator's restart of one incident actor: it is stopped (after the
/// message in hand, so no commit is cut short), its writes still queued
/// in the persistence actor are committed, and a new actor starts from the
/// snapshot just read, re-arming its timers. The router waits for the old
/// actor's current message only (one commit at most): ingest resumes at
/// once. The index keeps the incident meanwhile, so an alert arriving
/// during the restart cannot open a duplicate; it waits in the router's
/// mailbox and goes to the new actor.
async fn restart(
    myself: &ActorRef<RouterMsg>,
    state: &mut RouterState,
    id: IncidentId,
) -> Result<ActorRef<IncidentMsg>, CommandError> {
    if let Some((&key, _)) = state.quarantined_by_id(id) {
        return restart_quarantined(myself, state, id, key).await;
    }
    let Some(open) = state.by_id.get(&id) else {
        return Err(CommandError::NotFound(id));
    };
    let (old, key, restarts) = (open.actor.clone(), open.key, open.restarts + 1);
    state.by_actor.remove(&old.get_id());
    old.stop_and_wait(
        Some("restarted by an operator".into()),
        Some(state.ctx.config.call_timeout),
    )
    .await
    .map_err(|e| CommandError::Unavailable(format!("the incident actor did not stop: {e}")))?;
    if let Some(persistence) = Names::lookup::<PersistenceMsg>(&state.ctx.names.persistence()) {
        match persistence.call(PersistenceMsg::Sync, None).await {
            Ok(ractor::rpc::CallResult::Success(r)) => r?,
            _ => {
                return Err(CommandError::Unavailable(
                    "the persistence actor stopped".into(),
                ))
            }
        }
    }
    let snapshot = state.ctx.store.get_incident(id).await?;
    let open_status = snapshot.as_ref().map(|s| s.status).filter(|s| s.is_open());
    state.remove(id, key);
    let Some(status) = open_status else {
        // Resolved by its last message: nothing to bring back.
        return Err(CommandError::NotFound(id));
    };
    let actor = spawn_incident(myself, &state.ctx, id, key, snapshot, restarts)
        .await
        .map_err(|e| CommandError::Unavailable(format!("cannot start incident actor: {e}")))?;
    state.insert(id, key, actor.clone(), status, restarts);
    tracing::warn!(
        incident_id = id.0,
        "incident actor restarted by an operator"
    );
    Ok(actor)
}

fn forget_quarantined(state: &mut RouterState, key: Fingerprint) {
    if let Some(q) = state.quarantined.remove(&key) {
        if !q.waiting_for_store {
            state.ctx.metrics.quarantined.dec();
        }
    }
}

/// How long an incident whose snapshot could not be read waits before the
/// router tries again.
const RESPAWN_RETRY: std::time::Duration = std::time::Duration::from_secs(1);

/// An operator's restart of a quarantined incident (or the router's own
/// retry of one waiting for the store): a new actor from its snapshot,
/// with a fresh restart allowance.
async fn restart_quarantined(
    myself: &ActorRef<RouterMsg>,
    state: &mut RouterState,
    id: IncidentId,
    key: Fingerprint,
) -> Result<ActorRef<IncidentMsg>, CommandError> {
    let snapshot = state.ctx.store.get_incident(id).await?;
    let Some(status) = snapshot.as_ref().map(|s| s.status).filter(|s| s.is_open()) else {
        forget_quarantined(state, key);
        return Err(CommandError::NotFound(id));
    };
    let actor = spawn_incident(myself, &state.ctx, id, key, snapshot, 0)
        .await
        .map_err(|e| CommandError::Unavailable(format!("cannot start incident actor: {e}")))?;
    forget_quarantined(state, key);
    state.insert(id, key, actor.clone(), status, 0);
    tracing::warn!(
        incident_id = id.0,
        "quarantined incident restarted by an operator"
    );
    Ok(actor)
}

/// Routes one alert whose incident key is `key` (computed once by the
/// sender): to its open incident's actor, to a new incident, or answered
/// here (quarantined, a resolve for nothing open, silenced).
async fn route_alert(
    myself: &ActorRef<RouterMsg>,
    state: &mut RouterState,
    key: Fingerprint,
    alert: Alert,
    reply: IngestReply,
    span: tracing::Span,
) {
    if let Some(q) = state.quarantined.get(&key) {
        let _ = reply.send(Err(IngestError::Unavailable(quarantined_refusal(q))));
        return;
    }
    let msg = IncidentMsg::Ingest { alert, reply, span };
    if let Some(entry) = state.by_key.get(&key) {
        // A retired incident leaves the index before it stops, so
        // a failed send means the actor failed: its restart from
        // the snapshot is on its way; the sender should retry.
        if let Err(ractor::MessagingErr::SendErr(IncidentMsg::Ingest { reply, .. })) =
            entry.actor.cast(msg)
        {
            let _ = reply.send(Err(IngestError::Unavailable(
                "the incident is restarting".into(),
            )));
        }
        return;
    }
    let IncidentMsg::Ingest { alert, reply, span } = msg else {
        return;
    };
    if alert.status == AlertStatus::Resolved {
        // A resolve for nothing open: nothing to open or change.
        let _ = reply.send(Ok(IngestOutcome {
            fingerprint: alert.fingerprint(),
            incident_id: None,
            action: IngestAction::Unchanged,
        }));
        return;
    }
    let now = state.ctx.clock.now();
    if let Some(silence) = state
        .silences
        .iter()
        .find(|s| s.silences(&alert.labels, now))
        .map(|s| s.id)
    {
        record_silenced(state, silence, alert, reply, now);
        return;
    }
    let id = state.allocate_id();
    match spawn_incident(myself, &state.ctx, id, key, None, 0).await {
        Ok(actor) => {
            state.insert(id, key, actor.clone(), IncidentStatus::Triggered, 0);
            let _ = actor.cast(IncidentMsg::Ingest { alert, reply, span });
        }
        Err(e) => {
            let _ = reply.send(Err(IngestError::Unavailable(format!(
                "cannot start incident actor: {e}"
            ))));
        }
    }
}

impl Actor for RouterActor {
    type Msg = RouterMsg;
    type State = RouterState;
    type Arguments = Arc<CoreContext>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        ctx: Arc<CoreContext>,
    ) -> Result<Self::State, ActorProcessingErr> {
        // Writes queued by incident actors of a previous router (killed with
        // it) must be in the store before it is read.
        if let Some(persistence) = Names::lookup::<PersistenceMsg>(&ctx.names.persistence()) {
            match persistence.call(PersistenceMsg::Sync, None).await? {
                ractor::rpc::CallResult::Success(r) => r?,
                _ => return Err("the persistence actor stopped during rehydration".into()),
            }
        }
        let open = ctx.store.load_open_incidents().await?;
        let silences = ctx.store.list_silences().await?;
        let max_id = ctx.store.max_incident_id().await?;
        let mut state = RouterState {
            ctx: ctx.clone(),
            by_key: HashMap::with_capacity(open.len()),
            by_id: BTreeMap::new(),
            by_actor: HashMap::with_capacity(open.len()),
            restarts: HashMap::new(),
            next_id: max_id.map_or(1, |id| id.0 + 1),
            silences: live_silences(silences, ctx.clock.now()),
            acknowledged: 0,
            failure_restarts: 0,
            quarantined: HashMap::new(),
        };
        let count = open.len();
        for incident in open {
            let (id, key, status) = (incident.id, incident.fingerprint, incident.status);
            let actor = spawn_incident(&myself, &ctx, id, key, Some(incident), 0).await?;
            state.insert(id, key, actor, status, 0);
        }
        tracing::info!(
            open_incidents = count,
            next_id = state.next_id,
            "router rehydrated"
        );
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            RouterMsg::Ingest { alert, reply, span } => {
                let key = alert.incident_key();
                route_alert(&myself, state, key, alert, reply, span).await;
            }
            RouterMsg::IngestBatch { alerts, span } => {
                // In input order: alerts of one incident reach its actor's
                // mailbox in the order sent, and the actor applies them one
                // after another; a first alert opening an incident is in
                // the index before the next of its key is routed.
                for KeyedAlert { key, alert, reply } in alerts {
                    route_alert(&myself, state, key, alert, reply, span.clone()).await;
                }
            }
            RouterMsg::Command { id, command, reply } => {
                if let Some((_, q)) = state.quarantined_by_id(id) {
                    let _ = reply.send(Err(CommandError::Unavailable(quarantined_refusal(q))));
                    return Ok(());
                }
                if let Some(open) = state.by_id.get(&id) {
                    if let Err(ractor::MessagingErr::SendErr(IncidentMsg::Command {
                        reply, ..
                    })) = open.actor.cast(IncidentMsg::Command { command, reply })
                    {
                        let _ = reply.send(Err(CommandError::Unavailable(
                            "the incident is restarting".into(),
                        )));
                    }
                    return Ok(());
                }
                // Not open: answer from the store without holding up routing.
                // A resolved incident has no actor; the only command it
                // takes is a note, committed here directly.
                let ctx = state.ctx.clone();
                tokio::spawn(async move {
                    let _ = reply.send(command_on_closed(&ctx, id, command).await);
                });
            }
            RouterMsg::CommandByKey {
                key,
                command,
                reply,
            } => match state.by_key.get(&key) {
                None if state.quarantined.contains_key(&key) => {
                    let why = quarantined_refusal(&state.quarantined[&key]);
                    let _ = reply.send(Err(CommandError::Unavailable(why)));
                }
                Some(entry) => {
                    if let Err(ractor::MessagingErr::SendErr(IncidentMsg::Command {
                        reply, ..
                    })) = entry.actor.cast(IncidentMsg::Command { command, reply })
                    {
                        let _ = reply.send(Err(CommandError::Unavailable(
                            "the incident is restarting".into(),
                        )));
                    }
                }
                None => {
                    let _ = reply.send(Err(CommandError::NoOpenIncident(key)));
                }
            },
            RouterMsg::Closed { id, key } => {
                if let Some(open) = state.remove(id, key) {
                    // Messages already queued to it are handled before this.
                    let _ = open.actor.cast(IncidentMsg::Retire);
                }
            }
            RouterMsg::SetSilences(silences) => {
                state.silences = live_silences(silences, state.ctx.clock.now());
            }
            RouterMsg::IndexSize(reply) => {
                let _ = reply.send(state.by_id.len());
            }
            RouterMsg::Lookup(id, reply) => {
                let _ = reply.send(state.by_id.get(&id).map(|o| o.actor.clone()));
            }
            RouterMsg::StatusChanged { id, status } => state.set_status(id, status),
            RouterMsg::Inspect(query, reply) => {
                let _ = reply.send(state.page(&query));
            }
            RouterMsg::IncidentOfActor(actor, reply) => {
                let found = state.by_actor.get(&actor).map(|(id, _)| *id).filter(|id| {
                    state
                        .by_id
                        .get(id)
                        .is_some_and(|o| o.actor.get_id() == actor)
                });
                let _ = reply.send(found);
            }
            RouterMsg::Restart(id, reply) => {
                let _ = reply.send(restart(&myself, state, id).await);
            }
            RouterMsg::Respawn(id) => {
                let Some((&key, q)) = state.quarantined_by_id(id) else {
                    return Ok(());
                };
                if !q.waiting_for_store {
                    return Ok(());
                }
                if let Err(e) = restart_quarantined(&myself, state, id, key).await {
                    if let Some(q) = state.quarantined.get_mut(&key) {
                        q.error = e.to_string();
                        myself.send_after(RESPAWN_RETRY, move || RouterMsg::Respawn(id));
                    }
                } else {
                    tracing::warn!(
                        incident_id = id.0,
                        "incident actor restarted from its snapshot"
                    );
                    state.ctx.metrics.count_restart("incident");
                }
            }
        }
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
                if let Some((id, key)) = state.by_actor.remove(&cell.get_id()) {
                    if state
                        .by_id
                        .get(&id)
                        .is_some_and(|o| o.actor.get_id() == cell.get_id())
                    {
                        state.remove(id, key);
                    }
                    state.restarts.remove(&id);
                }
            }
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some((id, key)) = state.by_actor.remove(&cell.get_id()) else {
                    return Ok(());
                };
                tracing::error!(incident_id = id.0, error = %err, "incident actor failed");
                let allowed = state
                    .restarts
                    .entry(id)
                    .or_default()
                    .allow(state.ctx.config.restart, tokio::time::Instant::now());
                if !allowed {
                    let error = err.to_string();
                    quarantine(state, id, key, error);
                    return Ok(());
                }
                let restarts = state.remove(id, key).map_or(0, |o| o.restarts) + 1;
                state.failure_restarts += 1;
                // Restart from the last committed snapshot, with its timers.
                let snapshot = match state.ctx.store.get_incident(id).await {
                    Ok(snapshot) => snapshot,
                    Err(e) => {
                        // The store is down: failing the router would have
                        // the root rehydrate everything from that same
                        // store. The incident keeps its key (no duplicate
                        // opens meanwhile) and comes back when it answers.
                        tracing::warn!(incident_id = id.0, error = %e, "incident actor failed and its snapshot cannot be read; retrying");
                        state.quarantined.insert(
                            key,
                            QuarantinedView {
                                incident_id: id,
                                failures: 1,
                                since: state.ctx.clock.now(),
                                error: e.to_string(),
                                waiting_for_store: true,
                            },
                        );
                        myself.send_after(RESPAWN_RETRY, move || RouterMsg::Respawn(id));
                        return Ok(());
                    }
                };
                match snapshot {
                    Some(snapshot) if snapshot.status.is_open() => {
                        let status = snapshot.status;
                        let actor =
                            spawn_incident(&myself, &state.ctx, id, key, Some(snapshot), restarts)
                                .await?;
                        state.insert(id, key, actor, status, restarts);
                        state.ctx.metrics.count_restart("incident");
                        tracing::warn!(
                            incident_id = id.0,
                            "incident actor restarted from its snapshot"
                        );
                    }
                    // Never committed, or resolved: nothing to bring back.
                    _ => {}
                }
            }
            _ => {}
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "router_quarantine_tests.rs"]
mod quarantine_tests;
