//! The root supervisor (`lim`): starts persistence, the notifier pool, the
//! router and the heartbeat monitors, in that order (the router's
//! rehydration needs the first two; a heartbeat missed at start needs the
//! router ready), and restarts whichever fails, under a restart-intensity
//! limit. Beyond the limit it fails itself: the process cannot keep its
//! promises any more and should exit so its own supervisor (systemd,
//! Kubernetes) restarts it. It stops them in the reverse order.

use std::collections::HashMap;
use std::sync::Arc;

use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::domain::RestartIntensity;
use crate::heartbeat::HeartbeatSupervisor;
use crate::messages::SupervisorMsg;
use crate::notifier::{NotifierArgs, NotifierPool};
use crate::persistence::PersistenceActor;
use crate::ports::Channel;
use crate::router::RouterActor;
use crate::system::CoreContext;

pub struct RootSupervisor;

pub struct RootArgs {
    pub ctx: Arc<CoreContext>,
    pub channels: Vec<Arc<dyn Channel>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Child {
    Persistence,
    Notifier,
    Router,
    Heartbeats,
}

impl Child {
    /// Its `kind` label in `lim_actor_restarts_total`.
    fn kind(self) -> &'static str {
        match self {
            Child::Persistence => "persistence",
            Child::Notifier => "notifier",
            Child::Router => "router",
            Child::Heartbeats => "heartbeats",
        }
    }
}

pub struct RootState {
    ctx: Arc<CoreContext>,
    channels: Vec<Arc<dyn Channel>>,
    children: HashMap<ractor::ActorId, Child>,
    restarts: HashMap<Child, RestartIntensity>,
}

async fn start_child(
    child: Child,
    supervisor: ActorCell,
    state: &mut RootState,
) -> Result<(), ActorProcessingErr> {
    let names = &state.ctx.names;
    let cell = match child {
        Child::Persistence => Actor::spawn_linked(
            Some(names.persistence()),
            PersistenceActor,
            state.ctx.clone(),
            supervisor,
        )
        .await?
        .0
        .get_cell(),
        Child::Notifier => {
            let args = NotifierArgs {
                ctx: state.ctx.clone(),
                channels: state.channels.clone(),
            };
            Actor::spawn_linked(Some(names.notifier()), NotifierPool, args, supervisor)
                .await?
                .0
                .get_cell()
        }
        Child::Router => Actor::spawn_linked(
            Some(names.router()),
            RouterActor,
            state.ctx.clone(),
            supervisor,
        )
        .await?
        .0
        .get_cell(),
        Child::Heartbeats => Actor::spawn_linked(
            Some(names.heartbeats()),
            HeartbeatSupervisor,
            state.ctx.clone(),
            supervisor,
        )
        .await?
        .0
        .get_cell(),
    };
    state.children.insert(cell.get_id(), child);
    Ok(())
}

impl RootState {
    /// What the actor tree shows of the root: its children and their restarts.
    fn view(&self) -> serde_json::Value {
        let mut restarts: Vec<(String, serde_json::Value)> = self
            .restarts
            .iter()
            .map(|(c, r)| (format!("{c:?}").to_lowercase(), r.recent().into()))
            .collect();
        restarts.sort_by(|a, b| a.0.cmp(&b.0));
        serde_json::json!({
            "children": self.children.len(),
            "restart_policy": {
                "max_restarts": self.ctx.config.restart.max_restarts,
                "within_ms": self.ctx.config.restart.within.as_millis() as u64,
            },
            "recent_restarts": restarts.into_iter().collect::<serde_json::Map<_, _>>(),
        })
    }
}

impl Actor for RootSupervisor {
    type Msg = SupervisorMsg;
    type State = RootState;
    type Arguments = RootArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: RootArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut state = RootState {
            ctx: args.ctx,
            channels: args.channels,
            children: HashMap::new(),
            restarts: HashMap::new(),
        };
        for child in [
            Child::Persistence,
            Child::Notifier,
            Child::Router,
            Child::Heartbeats,
        ] {
            if let Err(e) = start_child(child, myself.get_cell(), &mut state).await {
                myself.stop_children(None);
                return Err(e);
            }
        }
        Ok(state)
    }

    async fn post_stop(
        &self,
        myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        // Stop the heartbeat monitors (they ingest through the router), then
        // the router (and its incidents), so nothing writes after
        // persistence has flushed and stopped.
        for wanted in [
            Child::Heartbeats,
            Child::Router,
            Child::Notifier,
            Child::Persistence,
        ] {
            for cell in myself.get_children() {
                if state.children.get(&cell.get_id()) == Some(&wanted) {
                    let _ = cell.stop_and_wait(None, None).await;
                }
            }
        }
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let SupervisorMsg::Inspect(reply) = msg;
        let _ = reply.send(state.view());
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
                let Some(child) = state.children.remove(&cell.get_id()) else {
                    return Ok(());
                };
                tracing::error!(child = ?child, error = %err, "supervised actor failed");
                let allowed = state
                    .restarts
                    .entry(child)
                    .or_default()
                    .allow(state.ctx.config.restart, tokio::time::Instant::now());
                if !allowed {
                    return Err(format!(
                        "{child:?} exceeded its restart intensity; the system stops"
                    )
                    .into());
                }
                start_child(child, myself.get_cell(), state).await?;
                state.ctx.metrics.count_restart(child.kind());
                tracing::warn!(child = ?child, "supervised actor restarted");
            }
            _ => {}
        }
        Ok(())
    }
}
