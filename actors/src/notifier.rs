//! The notifier pool: one worker actor per channel, so a slow or dead
//! channel never blocks another, and incident actors only ever `cast` to it
//! (an incident never waits on a channel).
//!
//! A worker delivers its notifications one at a time, retrying a failed
//! delivery with exponential backoff (bounded attempts). A worker that
//! crashes is restarted under the pool's restart intensity.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use crate::domain::{RestartIntensity, Target};
use crate::messages::{NotifierMsg, Page};
use crate::ports::Channel;
use crate::system::CoreContext;

/// Attempts per notification and the first backoff (doubled each retry).
const MAX_ATTEMPTS: u32 = 4;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);

pub struct NotifierPool;

pub struct NotifierArgs {
    pub ctx: Arc<CoreContext>,
    pub channels: Vec<Arc<dyn Channel>>,
}

pub struct NotifierState {
    ctx: Arc<CoreContext>,
    channels: HashMap<String, Arc<dyn Channel>>,
    workers: HashMap<String, ActorRef<Page>>,
    restarts: HashMap<String, RestartIntensity>,
}

async fn spawn_worker(
    pool: &ActorRef<NotifierMsg>,
    channel: Arc<dyn Channel>,
) -> Result<ActorRef<Page>, ActorProcessingErr> {
    let (worker, _) = Actor::spawn_linked(None, ChannelWorker, channel, pool.get_cell()).await?;
    Ok(worker)
}

impl Actor for NotifierPool {
    type Msg = NotifierMsg;
    type State = NotifierState;
    type Arguments = NotifierArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: NotifierArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let mut channels = HashMap::new();
        let mut workers = HashMap::new();
        for channel in args.channels {
            let name = channel.name().to_string();
            workers.insert(name.clone(), spawn_worker(&myself, channel.clone()).await?);
            channels.insert(name, channel);
        }
        Ok(NotifierState {
            ctx: args.ctx,
            channels,
            workers,
            restarts: HashMap::new(),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let NotifierMsg::Deliver(page) = msg;
        let Target::Channel(name) = page.notification.target.clone();
        let incident_id = page.notification.incident_id.0;
        match state.workers.get(&name) {
            Some(worker) => {
                if let Err(e) = worker.cast(page) {
                    tracing::error!(channel = %name, error = %e, "channel worker unavailable; notification dropped");
                }
            }
            None => {
                tracing::error!(channel = %name, incident_id, "no such channel; notification dropped")
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
            SupervisionEvent::ActorFailed(cell, err) => {
                let Some(name) = state
                    .workers
                    .iter()
                    .find(|(_, w)| w.get_id() == cell.get_id())
                    .map(|(n, _)| n.clone())
                else {
                    return Ok(());
                };
                tracing::error!(channel = %name, error = %err, "channel worker failed");
                let allowed = state
                    .restarts
                    .entry(name.clone())
                    .or_default()
                    .allow(state.ctx.config.restart, tokio::time::Instant::now());
                if !allowed {
                    return Err(
                        format!("channel worker {name} exceeded its restart intensity").into(),
                    );
                }
                let channel = state.channels[&name].clone();
                let worker = spawn_worker(&myself, channel).await?;
                state.workers.insert(name, worker);
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.workers.retain(|_, w| w.get_id() != cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}

/// Delivers one channel's notifications, in order, with bounded retries.
pub struct ChannelWorker;

impl Actor for ChannelWorker {
    type Msg = Page;
    type State = Arc<dyn Channel>;
    type Arguments = Arc<dyn Channel>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        channel: Arc<dyn Channel>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(channel)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        page: Page,
        channel: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let n = &page.notification;
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=MAX_ATTEMPTS {
            if !page.is_wanted() {
                tracing::info!(
                    channel = channel.name(),
                    incident_id = n.incident_id.0,
                    "page dropped: the incident was acknowledged or resolved meanwhile"
                );
                return Ok(());
            }
            match channel.deliver(n).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < MAX_ATTEMPTS => {
                    tracing::warn!(channel = channel.name(), incident_id = n.incident_id.0, attempt, error = %e, "delivery failed; retrying");
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                Err(e) => {
                    tracing::error!(channel = channel.name(), incident_id = n.incident_id.0, attempt, error = %e, "delivery failed; giving up");
                }
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
        _event: ractor::SupervisionEvent,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}
