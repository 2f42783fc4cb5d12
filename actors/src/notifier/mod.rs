//! The notifier pool: a ractor [`Factory`] whose workers are keyed by
//! channel, one per transport (the console, email, Slack, each webhook), so
//! a slow or dead channel never delays another, and incident actors only
//! ever `cast` to it (an incident never waits on a channel).
//!
//! Everything it sends is already in the delivery log, recorded *pending*
//! in the commit that caused it. The pool only moves rows forward:
//! delivered (with the channel's reference, for later updates), failed
//! after the bounded retries, or cancelled (a page whose incident was
//! acknowledged or resolved before it went out). What is still pending when
//! the process dies is sent again when the pool starts: at-least-once, and
//! never twice on purpose.
//!
//! ## Shape
//!
//! - [`NotifierPool`] (registered as `names.notifier()`) is what incidents
//!   cast [`NotifierMsg::Send`](crate::messages::NotifierMsg) to. It owns
//!   the factory (a linked child), routes each delivery to it as a job
//!   keyed by its transport
//!   ([`Recipient::transport`](crate::domain::Recipient::transport)), records a delivery
//!   to a transport no channel serves as failed, and sends what the last
//!   run left pending before the router starts.
//! - The factory ([`ChannelFactory`], registered as
//!   `<names.notifier()>/workers`) runs one [`ChannelWorker`] per configured
//!   channel. Its routing is [`CustomRouting`] with a [`ChannelTable`]: a
//!   fixed table, built from the channel list, that maps each transport to
//!   its own worker index (the factory has exactly as many workers as there
//!   are channels, and is never resized). No two channels ever share a
//!   worker: that is the isolation guarantee, which ractor's default key
//!   hashing (keys spread over the workers by hash) would not give.
//! - Every message of a worker is a job of the factory, keyed by the
//!   worker's transport ([`ChannelJob`]): the sends, and the worker's own
//!   follow-ups (a send finished, a backoff elapsed, the rate limiter has a
//!   token again), which its tasks and timers dispatch back to the factory,
//!   so the table routes them to the same worker.
//!
//! ## Workers
//!
//! A worker never awaits the network in its handler. It starts up to
//! `max_in_flight` sends as tasks and hears back with a job; a failure is
//! retried after an exponential backoff with jitter (`send_after`, so other
//! deliveries keep flowing meanwhile), up to `max_attempts`. A token bucket
//! per worker enforces the channel's rate limit ([`Channel::rate_limit`]);
//! what exceeds it waits in the worker's queue. The factory hands a worker
//! one job at a time; since no handler waits on a channel, that costs a
//! channel nothing, and another channel's worker is a different actor.
//!
//! Factory settings: nothing is discarded
//! ([`DiscardSettings::None`](ractor::factory::DiscardSettings)), so each
//! worker's queue in the factory is unbounded. That is acceptable here
//! because everything a job carries is already durable in the delivery
//! log: a discarded job would not be lost, only left pending until the next
//! start, and a bound would turn a burst into exactly that delay. With
//! [`CustomRouting`] the factory queues nothing itself (jobs wait in the
//! queue of their worker), so its own queue ([`DefaultQueue`]) stays empty.
//! No dead man's switch either: no handler waits on anything but the store.
//!
//! ## Restarts
//!
//! A worker that dies is replaced by the factory itself (its supervision),
//! with the same index, so the table still holds. The replacement reloads
//! the deliveries of its transport still pending in the log (what the dead
//! one held), and a worker ignores jobs of the one it replaced (each worker
//! has an incarnation number that its follow-ups carry). A delivery already
//! in a worker's hands is not taken twice (the factory keeps the jobs still
//! queued for a dead worker, which the reload also reads). The restart
//! intensity is bounded per channel in the factory's worker builder: past
//! [`SystemConfig::restart`](crate::SystemConfig), the replacement refuses
//! to start, which fails the factory, which fails the pool, which the root
//! supervisor restarts under its own intensity (sending what is pending).

mod pages_seen;
mod pool;
mod worker;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::factory::queues::DefaultQueue;
use ractor::factory::routing::{CustomHashFunction, CustomRouting};
use ractor::factory::{Factory, FactoryMessage, FactoryRef, WorkerId};
use ractor::rpc::CallResult;

use crate::domain::{AttemptOutcome, Delivery, IncidentStatus, IncidentSummary};
use crate::messages::Outgoing;
use crate::ports::Channel;
use crate::system::{CoreContext, Names};

pub use pool::{NotifierArgs, NotifierPool, NotifierState};
pub use worker::{ChannelJob, ChannelWorker, WorkerArgs, WorkerState, WorkerStatus};

/// Retry and concurrency settings of every channel worker.
#[derive(Clone, Debug, PartialEq)]
pub struct NotifierSettings {
    /// Attempts per delivery, the first included.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled for each later one.
    pub first_backoff: Duration,
    pub max_backoff: Duration,
    /// Sends in flight at once per channel.
    pub max_in_flight: usize,
}

impl Default for NotifierSettings {
    fn default() -> Self {
        NotifierSettings {
            // 1 s doubling to 60 s: ten attempts span about three minutes,
            // long enough to ride out a channel's short outage.
            max_attempts: 10,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            max_in_flight: 8,
        }
    }
}

impl NotifierSettings {
    /// The wait before attempt `next_attempt` (2 = the first retry): an
    /// exponential backoff with "equal jitter", between half and all of it,
    /// so a burst of failures does not retry in lockstep.
    pub fn backoff(&self, next_attempt: u32, seed: u64) -> Duration {
        let exp = next_attempt.saturating_sub(2).min(20);
        let full = self
            .first_backoff
            .saturating_mul(1 << exp)
            .min(self.max_backoff);
        let half = full / 2;
        let spread = half.as_millis() as u64;
        let jitter = if spread == 0 { 0 } else { seed % (spread + 1) };
        half + Duration::from_millis(jitter)
    }
}

/// A job's key: the transport of the channel that delivers it
/// ([`Recipient::transport`](crate::domain::Recipient::transport),
/// [`Channel::name`]).
pub type Transport = String;

/// The factory of channel workers.
pub type ChannelFactory = Factory<
    Transport,
    ChannelJob,
    WorkerArgs,
    ChannelWorker,
    CustomRouting<Transport, ChannelJob, ChannelTable>,
    DefaultQueue<Transport, ChannelJob>,
>;

/// A reference to the factory: jobs are dispatched to it.
pub type FactoryHandle = FactoryRef<Transport, ChannelJob>;

/// The factory's routing: worker `i` serves the `i`-th configured channel
/// and no other. Fixed when the pool starts, like the factory's size.
#[derive(Clone)]
pub struct ChannelTable {
    workers: HashMap<Transport, WorkerId>,
}

impl ChannelTable {
    /// The table of `channels`, in order. Names are unique (the pool drops
    /// duplicates before building it).
    fn new(channels: &[Arc<dyn Channel>]) -> Self {
        ChannelTable {
            workers: channels
                .iter()
                .enumerate()
                .map(|(wid, c)| (c.name().to_string(), wid))
                .collect(),
        }
    }

    fn serves(&self, transport: &str) -> bool {
        self.workers.contains_key(transport)
    }

    /// The transports in worker order.
    fn transports(&self) -> Vec<Transport> {
        let mut all: Vec<(WorkerId, Transport)> =
            self.workers.iter().map(|(t, w)| (*w, t.clone())).collect();
        all.sort();
        all.into_iter().map(|(_, t)| t).collect()
    }
}

impl CustomHashFunction<Transport> for ChannelTable {
    /// The worker of `transport`. A transport no channel serves never
    /// reaches the factory (the pool records it failed first); were one to,
    /// it would land on worker 0, which refuses a job not its own.
    fn hash(&self, transport: &Transport, worker_count: usize) -> usize {
        let wid = self.workers.get(transport).copied().unwrap_or(0);
        debug_assert!(wid < worker_count.max(1), "the factory is never resized");
        wid
    }
}

/// The name the factory is registered under.
pub(crate) fn factory_name(names: &Names) -> String {
    format!("{}/workers", names.notifier())
}

/// The state of the worker that serves `transport`, asked through the
/// factory (an [`ChannelJob::Inspect`] job keyed like that channel's
/// deliveries, answered once the worker is done with the job in hand).
/// `None` when no channel serves `transport`, the pool is restarting, or
/// the worker did not answer within the call timeout.
pub(crate) async fn worker_status(ctx: &CoreContext, transport: &str) -> Option<WorkerStatus> {
    worker_status_within(ctx, transport, ctx.config.call_timeout).await
}

/// [`worker_status`] with its own timeout.
pub(crate) async fn worker_status_within(
    ctx: &CoreContext,
    transport: &str,
    timeout: Duration,
) -> Option<WorkerStatus> {
    let factory =
        Names::lookup::<FactoryMessage<Transport, ChannelJob>>(&factory_name(&ctx.names))?;
    match factory
        .call_job(transport.to_string(), ChannelJob::Inspect, Some(timeout))
        .await
    {
        Ok(CallResult::Success(status)) if status.channel == transport => Some(status),
        _ => None,
    }
}

/// Jobs waiting in the factory's queue (not yet taken by a worker).
pub(crate) async fn factory_queue_depth(ctx: &CoreContext) -> Option<usize> {
    let factory =
        Names::lookup::<FactoryMessage<Transport, ChannelJob>>(&factory_name(&ctx.names))?;
    match factory
        .queue_depth(Some(crate::inspect::INSPECT_TIMEOUT))
        .await
    {
        Ok(CallResult::Success(depth)) => Some(depth),
        _ => None,
    }
}

/// Incidents with pending deliveries read one query each; more are read in
/// one query of every open incident.
const ONE_BY_ONE_MAX: usize = 64;

/// Loads what is still pending in the log (of one transport, or all), with
/// each incident as it is now.
async fn pending(ctx: &CoreContext, transport: Option<&str>) -> Vec<Outgoing> {
    let rows = match ctx.store.pending_deliveries().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot read pending deliveries; they stay pending");
            return Vec::new();
        }
    };
    let mut summaries: HashMap<u64, Option<IncidentSummary>> = HashMap::new();
    // After a crash under load thousands of pages can be pending (the log
    // records them as they go out); reading their incidents one query each
    // held the start for seconds (50,000 pending: 2-3 s on SQLite). Past a
    // few, one read of every open incident covers them; a resolved one
    // (whose updates are still pending) is read on its own below.
    let rows: Vec<Delivery> = rows
        .into_iter()
        .filter(|d| transport.is_none_or(|t| t == d.recipient.transport()))
        .collect();
    let distinct: std::collections::HashSet<u64> = rows.iter().map(|d| d.incident_id.0).collect();
    if distinct.len() > ONE_BY_ONE_MAX {
        match ctx.store.load_open_incidents().await {
            Ok(open) => summaries.extend(
                open.iter()
                    .filter(|i| distinct.contains(&i.id.0))
                    .map(|i| (i.id.0, Some(IncidentSummary::of(i)))),
            ),
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the open incidents at once; one by one")
            }
        }
    }
    let mut out = Vec::new();
    for delivery in rows {
        let id = delivery.incident_id;
        if let std::collections::hash_map::Entry::Vacant(slot) = summaries.entry(id.0) {
            let summary = match ctx.store.get_incident(id).await {
                Ok(Some(i)) => Some(IncidentSummary::of(&i)),
                _ => None,
            };
            slot.insert(summary);
        }
        let Some(incident) = summaries[&id.0].clone() else {
            continue;
        };
        // A page about an incident no longer triggered is not worth sending
        // any more; updates always are.
        let wanted = !delivery.event.is_page() || incident.status == IncidentStatus::Triggered;
        out.push(Outgoing {
            still_wanted: Some(Arc::new(std::sync::atomic::AtomicBool::new(wanted)))
                .filter(|_| delivery.event.is_page()),
            incident,
            delivery,
            from_log: true,
        });
    }
    out
}

/// Records an attempt in the delivery log, through the persistence actor's
/// group commit (one transaction per batch of outcomes, not per delivery).
/// A failure to record leaves the row pending: it is sent again after a
/// restart (at-least-once).
async fn record(ctx: &CoreContext, delivery: &Delivery, outcome: &AttemptOutcome) {
    let attempt = crate::ports::AttemptRecord {
        key: delivery.key.clone(),
        outcome: outcome.clone(),
        at: ctx.clock.now(),
    };
    // Every outcome passes here, so this is where they are counted.
    ctx.metrics.count_attempt(
        &delivery.recipient.transport(),
        outcome,
        delivery.created_at,
        attempt.at,
    );
    let persistence =
        crate::system::Names::lookup::<crate::messages::PersistenceMsg>(&ctx.names.persistence());
    let attempt = match persistence {
        Some(p) => match p.cast(crate::messages::PersistenceMsg::Attempt(attempt)) {
            Ok(()) => return,
            Err(ractor::MessagingErr::SendErr(crate::messages::PersistenceMsg::Attempt(a))) => a,
            Err(_) => return,
        },
        None => attempt,
    };
    // The persistence actor is restarting: write it directly.
    if let Err(e) = ctx
        .store
        .record_attempt(&attempt.key, &attempt.outcome, attempt.at)
        .await
    {
        tracing::warn!(key = %delivery.key, error = %e, "cannot record a delivery attempt");
    }
}

/// Records a delivery to a transport no channel serves as failed, for good.
/// Config validation refuses targets of unknown channels; a snapshot
/// outliving a config change can still name one.
fn refuse_unserved(ctx: &Arc<CoreContext>, outgoing: Outgoing, transport: &str) {
    let ctx = ctx.clone();
    let outcome = AttemptOutcome::Failed {
        error: format!("no channel {transport:?} is configured"),
        last: true,
    };
    tokio::spawn(async move {
        record(&ctx, &outgoing.delivery, &outcome).await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let s = NotifierSettings::default();
        for seed in [0, 7, 123_456, u64::MAX] {
            let second = s.backoff(2, seed);
            assert!(second >= Duration::from_millis(500) && second <= Duration::from_secs(1));
            let third = s.backoff(3, seed);
            assert!(third >= Duration::from_secs(1) && third <= Duration::from_secs(2));
            let late = s.backoff(30, seed);
            assert!(late >= Duration::from_secs(30) && late <= Duration::from_secs(60));
        }
        assert_ne!(s.backoff(4, 1), s.backoff(4, 2), "jitter spreads retries");
    }

    struct Named(&'static str);

    #[async_trait::async_trait]
    impl Channel for Named {
        fn name(&self) -> &str {
            self.0
        }
        async fn deliver(
            &self,
            _: &crate::ports::Notification,
        ) -> Result<crate::ports::Delivered, crate::ports::ChannelError> {
            Ok(Default::default())
        }
    }

    #[test]
    fn each_channel_has_a_worker_of_its_own() {
        let names = ["console", "email", "slack", "webhook:ops", "webhook:dev"];
        let channels: Vec<Arc<dyn Channel>> = names
            .iter()
            .map(|n| Arc::new(Named(n)) as Arc<dyn Channel>)
            .collect();
        let table = ChannelTable::new(&channels);
        let workers: Vec<usize> = names
            .iter()
            .map(|n| table.hash(&n.to_string(), names.len()))
            .collect();
        assert_eq!(workers, [0, 1, 2, 3, 4], "one worker each, in order");
        assert!(table.serves("webhook:ops"));
        assert!(!table.serves("webhook:nope"));
    }
}
