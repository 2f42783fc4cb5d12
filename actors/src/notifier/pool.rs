//! The pool's front: the actor incidents cast to, and the factory it owns.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::factory::queues::DefaultQueue;
use ractor::factory::routing::CustomRouting;
use ractor::factory::{DiscardSettings, FactoryArguments, WorkerBuilder, WorkerId};
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};

use super::worker::{ChannelJob, ChannelWorker, WorkerArgs};
use super::{factory_name, pending, refuse_unserved, ChannelFactory, ChannelTable, FactoryHandle};
use crate::domain::RestartIntensity;
use crate::messages::{NotifierMsg, Outgoing};
use crate::ports::Channel;
use crate::system::CoreContext;

/// The notifier pool, registered as `names.notifier()`.
pub struct NotifierPool;

pub struct NotifierArgs {
    pub ctx: Arc<CoreContext>,
    pub channels: Vec<Arc<dyn Channel>>,
}

pub struct NotifierState {
    ctx: Arc<CoreContext>,
    factory: FactoryHandle,
    table: ChannelTable,
}

impl NotifierState {
    /// Hands a delivery to the worker of its transport, through the
    /// factory; one to a transport no channel serves is recorded failed.
    fn route(&self, outgoing: Outgoing) {
        let transport = outgoing.delivery.recipient.transport();
        if !self.table.serves(&transport) {
            refuse_unserved(&self.ctx, outgoing, &transport);
            return;
        }
        let job = ChannelJob::Send(Box::new(outgoing));
        if let Err(e) = self.factory.dispatch(transport.clone(), job) {
            // Stays pending in the log: sent again at the next start.
            tracing::error!(channel = %transport, error = %e, "channel workers unavailable");
        }
    }
}

/// The channels, one per transport. Were two to share a name, the last
/// one configured serves it (as a map by name would).
fn unique(channels: Vec<Arc<dyn Channel>>) -> Vec<Arc<dyn Channel>> {
    let mut index: HashMap<String, usize> = HashMap::new();
    let mut out: Vec<Arc<dyn Channel>> = Vec::new();
    for channel in channels {
        match index.get(channel.name()) {
            Some(&i) => {
                tracing::warn!(channel = %channel.name(), "two channels of one name; the last one serves it");
                out[i] = channel;
            }
            None => {
                index.insert(channel.name().to_string(), out.len());
                out.push(channel);
            }
        }
    }
    out
}

/// Builds the factory's workers: worker `wid` delivers through
/// `channels[wid]`. A second build of the same `wid` is the factory
/// replacing a worker that died: the replacement reloads what its channel
/// has pending, and past the restart intensity it refuses to start.
struct ChannelWorkers {
    ctx: Arc<CoreContext>,
    channels: Vec<Arc<dyn Channel>>,
    started: Vec<bool>,
    restarts: Vec<RestartIntensity>,
}

impl WorkerBuilder<ChannelWorker, WorkerArgs> for ChannelWorkers {
    fn build(&mut self, wid: WorkerId) -> (ChannelWorker, WorkerArgs) {
        let channel = self.channels[wid].clone();
        let replaces = std::mem::replace(&mut self.started[wid], true);
        let over_limit = replaces
            && !self.restarts[wid].allow(self.ctx.config.restart, tokio::time::Instant::now());
        if replaces && !over_limit {
            self.ctx.metrics.count_restart("channel_worker");
            tracing::warn!(channel = %channel.name(), "restarting a channel worker");
        }
        let args = WorkerArgs {
            ctx: self.ctx.clone(),
            channel,
            replaces,
            over_limit,
        };
        (ChannelWorker, args)
    }
}

/// Starts the factory of channel workers, linked to the pool.
async fn spawn_factory(
    pool: &ActorRef<NotifierMsg>,
    ctx: &Arc<CoreContext>,
    channels: Vec<Arc<dyn Channel>>,
    table: ChannelTable,
) -> Result<FactoryHandle, ActorProcessingErr> {
    let name = factory_name(&ctx.names);
    // The factory of a pool that failed stops with it; should it still be
    // registered (being killed), wait for it so the name is free.
    if let Some(previous) = ractor::registry::where_is(name.clone()) {
        let _ = previous
            .stop_and_wait(None, Some(Duration::from_secs(5)))
            .await;
    }
    let workers = channels.len();
    let builder = ChannelWorkers {
        ctx: ctx.clone(),
        started: vec![false; workers],
        restarts: vec![RestartIntensity::default(); workers],
        channels,
    };
    let args = FactoryArguments::builder()
        .worker_builder(Box::new(builder))
        .num_initial_workers(workers)
        .router(CustomRouting::new(table))
        .queue(DefaultQueue::default())
        .discard_settings(DiscardSettings::None)
        .build();
    let (factory, _) =
        Actor::spawn_linked(Some(name), ChannelFactory::default(), args, pool.get_cell()).await?;
    Ok(factory)
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
        let channels = unique(args.channels);
        let table = ChannelTable::new(&channels);
        let factory = spawn_factory(&myself, &args.ctx, channels, table.clone()).await?;
        let state = NotifierState {
            ctx: args.ctx,
            factory,
            table,
        };
        // Read in `pre_start`, not `post_start`: the supervisor starts the
        // router (whose incidents commit and cast new deliveries) only once
        // this returns, so a row committed by this run is never both read
        // here and cast to the pool (which would send it twice).
        let resend = pending(&state.ctx, None).await;
        if !resend.is_empty() {
            tracing::info!(
                deliveries = resend.len(),
                "sending deliveries left pending by the last run"
            );
        }
        for outgoing in resend {
            state.route(outgoing);
        }
        Ok(state)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            NotifierMsg::Send(outgoing) => {
                for o in outgoing {
                    state.route(o);
                }
            }
            NotifierMsg::Inspect(reply) => {
                let _ = reply.send(crate::inspect::PoolView {
                    channels: state.table.transports(),
                });
            }
        }
        Ok(())
    }

    /// The factory restarts its workers itself; it only stops when one
    /// exceeded its restart intensity (or could not be spawned again). The
    /// pool then fails too, and the root supervisor restarts it.
    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(cell, err) if cell.get_id() == state.factory.get_id() => {
                Err(format!("the channel workers failed: {err}").into())
            }
            SupervisionEvent::ActorTerminated(cell, _, reason)
                if cell.get_id() == state.factory.get_id() =>
            {
                Err(format!("the channel workers stopped: {reason:?}").into())
            }
            _ => Ok(()),
        }
    }
}
