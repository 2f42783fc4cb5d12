//! The notifier pool: one worker actor per transport (the console, email,
//! Slack, each webhook), so a slow or dead channel never delays another,
//! and incident actors only ever `cast` to it (an incident never waits on
//! a channel).
//!
//! Everything it sends is already in the delivery log, recorded *pending*
//! in the commit that caused it. The pool only moves rows forward:
//! delivered (with the channel's reference, for later updates), failed
//! after the bounded retries, or cancelled (a page whose incident was
//! acknowledged or resolved before it went out). What is still pending when
//! the process dies is sent again when the pool starts: at-least-once, and
//! never twice on purpose.
//!
//! A worker never awaits the network in its handler. It starts up to
//! `max_in_flight` sends as tasks and hears back with a message; a failure
//! is retried after an exponential backoff with jitter (`send_after`, so
//! other deliveries keep flowing meanwhile), up to `max_attempts`. A token
//! bucket per worker enforces the channel's rate limit
//! ([`Channel::rate_limit`]); what exceeds it waits in the worker's queue.
//!
//! Why not ractor's `factory`: its key routing spreads keys over a fixed
//! set of workers by hash, so two channels could share a worker and a slow
//! one would hold up the other, which is the one thing this pool exists to
//! prevent. A worker per transport, supervised here, is the same shape
//! with that guarantee.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;
use std::time::Duration;

use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use serde::Serialize;

use crate::domain::{
    AttemptOutcome, Delivery, DeliveryStatus, IncidentSummary, Notification, NotificationEvent,
    RestartIntensity,
};
use crate::messages::{NotifierMsg, Outgoing};
use crate::ports::{Channel, ChannelError, Delivered, RateLimit};
use crate::system::CoreContext;

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
            max_attempts: 5,
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

pub struct NotifierPool;

pub struct NotifierArgs {
    pub ctx: Arc<CoreContext>,
    pub channels: Vec<Arc<dyn Channel>>,
}

pub struct NotifierState {
    ctx: Arc<CoreContext>,
    channels: HashMap<String, Arc<dyn Channel>>,
    workers: HashMap<String, ActorRef<WorkerMsg>>,
    restarts: HashMap<String, RestartIntensity>,
}

async fn spawn_worker(
    pool: &ActorRef<NotifierMsg>,
    ctx: &Arc<CoreContext>,
    channel: Arc<dyn Channel>,
) -> Result<ActorRef<WorkerMsg>, ActorProcessingErr> {
    let args = WorkerArgs {
        ctx: ctx.clone(),
        channel,
    };
    let (worker, _) = Actor::spawn_linked(None, ChannelWorker, args, pool.get_cell()).await?;
    Ok(worker)
}

impl NotifierState {
    fn route(&self, outgoing: Outgoing) {
        let transport = outgoing.delivery.recipient.transport();
        match self.workers.get(&transport) {
            Some(worker) => {
                if let Err(e) = worker.cast(WorkerMsg::Send(Box::new(outgoing))) {
                    // Stays pending in the log: sent again at the next start.
                    tracing::error!(channel = %transport, error = %e, "channel worker unavailable");
                }
            }
            None => {
                // Config validation refuses targets of unknown channels; a
                // snapshot outliving a config change can still name one.
                let ctx = self.ctx.clone();
                tokio::spawn(async move {
                    let outcome = AttemptOutcome::Failed {
                        error: format!("no channel {transport:?} is configured"),
                        last: true,
                    };
                    record(&ctx, &outgoing.delivery, &outcome).await;
                });
            }
        }
    }
}

/// Loads what is still pending in the log, with each incident as it is now.
async fn pending(ctx: &CoreContext, transport: Option<&str>) -> Vec<Outgoing> {
    let rows = match ctx.store.pending_deliveries().await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "cannot read pending deliveries; they stay pending");
            return Vec::new();
        }
    };
    let mut summaries: HashMap<u64, Option<IncidentSummary>> = HashMap::new();
    let mut out = Vec::new();
    for delivery in rows {
        if transport.is_some_and(|t| t != delivery.recipient.transport()) {
            continue;
        }
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
        let wanted = !delivery.event.is_page()
            || incident.status == crate::domain::IncidentStatus::Triggered;
        out.push(Outgoing {
            still_wanted: Some(Arc::new(std::sync::atomic::AtomicBool::new(wanted)))
                .filter(|_| delivery.event.is_page()),
            incident,
            delivery,
        });
    }
    out
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
            let worker = spawn_worker(&myself, &args.ctx, channel.clone()).await?;
            workers.insert(name.clone(), worker);
            channels.insert(name, channel);
        }
        let state = NotifierState {
            ctx: args.ctx,
            channels,
            workers,
            restarts: HashMap::new(),
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
        let NotifierMsg::Send(outgoing) = msg;
        for o in outgoing {
            state.route(o);
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
                let worker = spawn_worker(&myself, &state.ctx, channel).await?;
                state.workers.insert(name.clone(), worker);
                // What the failed worker held is still pending in the log.
                for outgoing in pending(&state.ctx, Some(&name)).await {
                    state.route(outgoing);
                }
            }
            SupervisionEvent::ActorTerminated(cell, _, _) => {
                state.workers.retain(|_, w| w.get_id() != cell.get_id());
            }
            _ => {}
        }
        Ok(())
    }
}

/// Records an attempt in the delivery log. A failure to record leaves the
/// row pending: it is sent again after a restart (at-least-once).
async fn record(ctx: &CoreContext, delivery: &Delivery, outcome: &AttemptOutcome) {
    if let Err(e) = ctx
        .store
        .record_attempt(&delivery.key, outcome, ctx.clock.now())
        .await
    {
        tracing::warn!(key = %delivery.key, error = %e, "cannot record a delivery attempt");
    }
}

/// What a channel worker handles.
pub enum WorkerMsg {
    Send(Box<Outgoing>),
    /// A send task finished.
    Done {
        item: Box<Outgoing>,
        attempt: u32,
        result: Result<Delivered, ChannelError>,
    },
    /// A backoff elapsed: attempt `attempt` of `item` may go.
    Retry {
        item: Box<Outgoing>,
        attempt: u32,
    },
    /// An update whose page to the same recipient is still being sent:
    /// held back (not an attempt) so it edits that page instead of
    /// arriving beside it.
    Deferred {
        item: Box<Outgoing>,
        attempt: u32,
    },
    /// An update about a page its recipient never got: recorded cancelled.
    Dropped,
    /// The rate limiter has a token again.
    Tick,
    /// The worker's observable state.
    Inspect(ractor::RpcReplyPort<WorkerStatus>),
}

/// A channel worker's observable state.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WorkerStatus {
    pub channel: String,
    pub queued: usize,
    pub in_flight: usize,
    pub retrying: usize,
    pub delivered: u64,
    pub failed: u64,
}

pub struct WorkerArgs {
    ctx: Arc<CoreContext>,
    channel: Arc<dyn Channel>,
}

/// A token bucket: `rate` tokens a second, at most `burst` saved up.
struct Bucket {
    limit: RateLimit,
    tokens: f64,
    at: tokio::time::Instant,
}

impl Bucket {
    fn new(limit: RateLimit) -> Self {
        Bucket {
            tokens: f64::from(limit.burst),
            limit,
            at: tokio::time::Instant::now(),
        }
    }

    /// Takes a token, or says how long until one is available.
    fn take(&mut self) -> Result<(), Duration> {
        let now = tokio::time::Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.tokens =
            (self.tokens + elapsed * self.limit.per_second).min(f64::from(self.limit.burst));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            let wait = (1.0 - self.tokens) / self.limit.per_second;
            Err(Duration::from_secs_f64(wait.max(0.001)))
        }
    }
}

pub struct WorkerState {
    ctx: Arc<CoreContext>,
    channel: Arc<dyn Channel>,
    queue: VecDeque<(Outgoing, u32)>,
    in_flight: usize,
    retrying: usize,
    bucket: Bucket,
    tick_armed: bool,
    delivered: u64,
    failed: u64,
    jitter: RandomState,
}

/// Delivers one transport's notifications.
pub struct ChannelWorker;

impl WorkerState {
    /// Starts as many queued sends as the concurrency bound and the rate
    /// limit allow.
    fn pump(&mut self, myself: &ActorRef<WorkerMsg>) {
        let max = self.ctx.config.notifier.max_in_flight.max(1);
        while self.in_flight < max {
            let Some((item, attempt)) = self.queue.pop_front() else {
                return;
            };
            if !item.is_wanted() {
                let ctx = self.ctx.clone();
                tokio::spawn(async move {
                    record(&ctx, &item.delivery, &AttemptOutcome::Cancelled).await;
                });
                continue;
            }
            if let Err(wait) = self.bucket.take() {
                self.queue.push_front((item, attempt));
                if !self.tick_armed {
                    self.tick_armed = true;
                    myself.send_after(wait, || WorkerMsg::Tick);
                }
                return;
            }
            self.in_flight += 1;
            self.start(myself, item, attempt);
        }
    }

    fn start(&self, myself: &ActorRef<WorkerMsg>, item: Outgoing, attempt: u32) {
        let ctx = self.ctx.clone();
        let channel = self.channel.clone();
        let me = myself.clone();
        tokio::spawn(async move {
            let notification = match notification_for(&ctx, &item).await {
                Prepared::Send(n) => n,
                Prepared::Wait => {
                    let _ = me.cast(WorkerMsg::Deferred {
                        item: Box::new(item),
                        attempt,
                    });
                    return;
                }
                Prepared::Moot => {
                    record(&ctx, &item.delivery, &AttemptOutcome::Cancelled).await;
                    let _ = me.cast(WorkerMsg::Dropped);
                    return;
                }
            };
            let result = channel.deliver(&notification).await;
            let _ = me.cast(WorkerMsg::Done {
                item: Box::new(item),
                attempt,
                result,
            });
        });
    }

    async fn finish(
        &mut self,
        myself: &ActorRef<WorkerMsg>,
        item: Outgoing,
        attempt: u32,
        result: Result<Delivered, ChannelError>,
    ) {
        self.in_flight -= 1;
        let max = self.ctx.config.notifier.max_attempts.max(1);
        let name = self.channel.name().to_string();
        let incident_id = item.delivery.incident_id.0;
        let outcome = match result {
            Ok(delivered) => {
                self.delivered += 1;
                tracing::debug!(channel = %name, incident_id, key = %item.delivery.key, "delivered");
                AttemptOutcome::Delivered {
                    external_ref: delivered.external_ref,
                }
            }
            Err(e) => {
                let last = attempt >= max || !e.is_retryable();
                if last {
                    self.failed += 1;
                    tracing::error!(channel = %name, incident_id, attempt, error = %e, "delivery failed; giving up");
                } else {
                    let wait = match &e {
                        ChannelError::RateLimited { retry_after, .. } => *retry_after,
                        _ => {
                            let seed = self.jitter.hash_one((&item.delivery.key, attempt));
                            self.ctx.config.notifier.backoff(attempt + 1, seed)
                        }
                    };
                    tracing::warn!(channel = %name, incident_id, attempt, error = %e, retry_in = ?wait, "delivery failed; will retry");
                    self.retrying += 1;
                    let next = Box::new(item.clone());
                    myself.send_after(wait, move || WorkerMsg::Retry {
                        item: next,
                        attempt: attempt + 1,
                    });
                }
                AttemptOutcome::Failed {
                    error: e.to_string(),
                    last,
                }
            }
        };
        record(&self.ctx, &item.delivery, &outcome).await;
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            channel: self.channel.name().to_string(),
            queued: self.queue.len(),
            in_flight: self.in_flight,
            retrying: self.retrying,
            delivered: self.delivered,
            failed: self.failed,
        }
    }
}

/// How long an update waits between looks at a page still being sent to
/// its recipient, and for how long in all before it goes out on its own.
const UPDATE_WAIT_STEP: Duration = Duration::from_millis(250);
const UPDATE_WAIT_MAX: Duration = Duration::from_secs(120);

/// The notification a channel is handed for `item`: for an update, with
/// the reference of the page it follows up (same recipient), so Slack edits
/// that message and email replies in its thread. `None` while that page is
/// still pending (an acknowledge can overtake the page it answers): the
/// caller tries again shortly, for up to [`UPDATE_WAIT_MAX`].
enum Prepared {
    Send(Box<Notification>),
    /// The page this update follows up is still being sent.
    Wait,
    /// Every page to this recipient was cancelled or failed: an update
    /// about it would be news of a page they never saw.
    Moot,
}

async fn notification_for(ctx: &CoreContext, item: &Outgoing) -> Prepared {
    let d = &item.delivery;
    let now = ctx.clock.now();
    let thread = match &d.event {
        NotificationEvent::Page { .. } => None,
        NotificationEvent::Update { .. } => match ctx.store.deliveries(d.incident_id).await {
            Ok(rows) => {
                let pages: Vec<Delivery> = rows
                    .into_iter()
                    .filter(|r| r.event.is_page() && r.recipient == d.recipient)
                    .collect();
                let waited = now.0.saturating_sub(d.created_at.0);
                let page_in_flight = pages.iter().any(|r| r.status == DeliveryStatus::Pending);
                if page_in_flight && (waited as u128) < UPDATE_WAIT_MAX.as_millis() {
                    return Prepared::Wait;
                }
                let never_reached = !pages.is_empty()
                    && pages.iter().all(|r| {
                        matches!(r.status, DeliveryStatus::Cancelled | DeliveryStatus::Failed)
                    });
                if never_reached {
                    return Prepared::Moot;
                }
                pages
                    .into_iter()
                    .filter(|r| r.status == DeliveryStatus::Delivered)
                    .find_map(|r| r.external_ref)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the page an update follows up");
                None
            }
        },
    };
    Prepared::Send(Box::new(Notification {
        key: d.key.clone(),
        incident: item.incident.clone(),
        event: d.event.clone(),
        recipient: d.recipient.clone(),
        thread,
        link: ctx
            .config
            .public_url
            .as_ref()
            .map(|base| format!("{}/incidents/{}", base.trim_end_matches('/'), d.incident_id)),
        at: now,
    }))
}

impl Actor for ChannelWorker {
    type Msg = WorkerMsg;
    type State = WorkerState;
    type Arguments = WorkerArgs;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        args: WorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(WorkerState {
            bucket: Bucket::new(args.channel.rate_limit()),
            ctx: args.ctx,
            channel: args.channel,
            queue: VecDeque::new(),
            in_flight: 0,
            retrying: 0,
            tick_armed: false,
            delivered: 0,
            failed: 0,
            jitter: RandomState::new(),
        })
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            WorkerMsg::Send(item) => state.queue.push_back((*item, 1)),
            WorkerMsg::Retry { item, attempt } => {
                state.retrying -= 1;
                state.queue.push_back((*item, attempt));
            }
            WorkerMsg::Done {
                item,
                attempt,
                result,
            } => state.finish(&myself, *item, attempt, result).await,
            WorkerMsg::Tick => state.tick_armed = false,
            WorkerMsg::Dropped => state.in_flight -= 1,
            WorkerMsg::Deferred { item, attempt } => {
                state.in_flight -= 1;
                state.retrying += 1;
                myself.send_after(UPDATE_WAIT_STEP, move || WorkerMsg::Retry { item, attempt });
            }
            WorkerMsg::Inspect(reply) => {
                let _ = reply.send(state.status());
                return Ok(());
            }
        }
        state.pump(&myself);
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
}
