//! A channel worker: a factory worker that delivers one transport's
//! notifications.

use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::factory::{FactoryMessage, Job, Worker, WorkerId};
use ractor::{ActorCell, ActorProcessingErr, RpcReplyPort, SupervisionEvent};
use serde::Serialize;

use super::pages_seen::{PageSeen, PagesSeen};
use super::{pending, record, refuse_unserved, FactoryHandle, Transport};
use crate::domain::{AttemptOutcome, DeliveryKey, DeliveryStatus, Notification, NotificationEvent};
use crate::messages::Outgoing;
use crate::ports::{Channel, ChannelError, Delivered, RateLimit};
use crate::system::CoreContext;
use crate::time::Timestamp;

/// What a channel worker handles: the factory's job message, every job
/// keyed by the worker's transport. [`ChannelJob::Send`] and
/// [`ChannelJob::Inspect`] come from outside; the others are the worker's
/// own follow-ups, dispatched back to the factory by its send tasks and
/// timers, and carry the incarnation of the worker they are for (a worker
/// ignores those of the one it replaced).
pub enum ChannelJob {
    /// A delivery recorded pending in the log: send it.
    Send(Box<Outgoing>),
    /// A send task finished.
    Done {
        worker: u64,
        item: Box<Outgoing>,
        attempt: u32,
        result: Result<Delivered, ChannelError>,
    },
    /// A backoff elapsed: attempt `attempt` of `item` may go.
    Retry {
        worker: u64,
        item: Box<Outgoing>,
        attempt: u32,
    },
    /// An update whose page to the same recipient is still being sent:
    /// held back (not an attempt) so it edits that page instead of
    /// arriving beside it.
    Deferred {
        worker: u64,
        item: Box<Outgoing>,
        attempt: u32,
    },
    /// An update about a page its recipient never got: recorded cancelled.
    Dropped { worker: u64, item: Box<Outgoing> },
    /// The rate limiter has a token again.
    Tick { worker: u64 },
    /// The worker's observable state.
    Inspect(RpcReplyPort<WorkerStatus>),
}

impl ChannelJob {
    /// The incarnation a follow-up is for; `None` for jobs from outside.
    fn incarnation(&self) -> Option<u64> {
        match self {
            ChannelJob::Send(_) | ChannelJob::Inspect(_) => None,
            ChannelJob::Done { worker, .. }
            | ChannelJob::Retry { worker, .. }
            | ChannelJob::Deferred { worker, .. }
            | ChannelJob::Dropped { worker, .. }
            | ChannelJob::Tick { worker } => Some(*worker),
        }
    }
}

/// A channel worker's observable state.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct WorkerStatus {
    pub channel: String,
    /// The factory's index of the worker (one per channel).
    pub worker: WorkerId,
    pub queued: usize,
    pub in_flight: usize,
    pub retrying: usize,
    pub delivered: u64,
    pub failed: u64,
    /// The earliest retry after a failure that is waiting.
    pub next_retry: Option<Timestamp>,
    /// The last error the channel answered (ever), for operators.
    pub last_error: Option<String>,
}

/// What the factory's worker builder hands a worker it starts.
pub struct WorkerArgs {
    pub(super) ctx: Arc<CoreContext>,
    pub(super) channel: Arc<dyn Channel>,
    /// It replaces a worker that died: what that one held is reloaded.
    pub(super) replaces: bool,
    /// The channel's restart intensity is exceeded: refuse to start.
    pub(super) over_limit: bool,
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
    wid: WorkerId,
    incarnation: u64,
    replaces: bool,
    queue: VecDeque<(Outgoing, u32)>,
    /// The deliveries in this worker's hands (queued, in flight, waiting
    /// for a retry), by key: one is never taken twice.
    held: HashSet<DeliveryKey>,
    in_flight: usize,
    retrying: usize,
    bucket: Bucket,
    tick_armed: bool,
    delivered: u64,
    failed: u64,
    /// When each delivery waiting for a retry (after a failure) goes again.
    retry_due: HashMap<DeliveryKey, Timestamp>,
    last_error: Option<String>,
    jitter: RandomState,
    /// The pages this worker took in hand, for the updates that follow them.
    pages: PagesSeen,
}

/// Delivers one transport's notifications: a worker of the factory.
pub struct ChannelWorker;

/// Incarnations of workers, unique in the process.
static INCARNATIONS: AtomicU64 = AtomicU64::new(1);

impl WorkerState {
    fn transport(&self) -> Transport {
        self.channel.name().to_string()
    }

    /// A follow-up of this worker, as a job of the factory: keyed by the
    /// transport, so it comes back here.
    fn job(&self, msg: ChannelJob) -> FactoryMessage<Transport, ChannelJob> {
        FactoryMessage::Dispatch(Job::new(self.transport(), msg))
    }

    /// Takes a delivery in hand, unless it already is.
    fn accept(&mut self, item: Outgoing) {
        if self.held.insert(item.delivery.key.clone()) {
            self.pages.taken(&item);
            self.queue.push_back((item, 1));
        } else {
            tracing::debug!(channel = %self.channel.name(), key = %item.delivery.key, "already in hand");
        }
    }

    /// Starts as many queued sends as the concurrency bound and the rate
    /// limit allow.
    fn pump(&mut self, factory: &FactoryHandle) {
        let max = self.ctx.config.notifier.max_in_flight.max(1);
        while self.in_flight < max {
            let Some((item, attempt)) = self.queue.pop_front() else {
                return;
            };
            if !item.is_wanted() {
                self.held.remove(&item.delivery.key);
                self.pages.settled(&item, DeliveryStatus::Cancelled, None);
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
                    let tick = self.job(ChannelJob::Tick {
                        worker: self.incarnation,
                    });
                    factory.send_after(wait, move || tick);
                }
                return;
            }
            self.in_flight += 1;
            self.start(factory, item, attempt);
        }
    }

    fn start(&self, factory: &FactoryHandle, item: Outgoing, attempt: u32) {
        let ctx = self.ctx.clone();
        let channel = self.channel.clone();
        let factory = factory.clone();
        let transport = self.transport();
        let worker = self.incarnation;
        let known = match &item.delivery.event {
            NotificationEvent::Update { .. } => self.pages.answer(&item),
            NotificationEvent::Page { .. } => None,
        };
        tokio::spawn(async move {
            let follow_up = match notification_for(&ctx, &item, known).await {
                Prepared::Send(notification) => {
                    let result = channel.deliver(&notification).await;
                    ChannelJob::Done {
                        worker,
                        item: Box::new(item),
                        attempt,
                        result,
                    }
                }
                Prepared::Wait => ChannelJob::Deferred {
                    worker,
                    item: Box::new(item),
                    attempt,
                },
                Prepared::Moot => {
                    record(&ctx, &item.delivery, &AttemptOutcome::Cancelled).await;
                    ChannelJob::Dropped {
                        worker,
                        item: Box::new(item),
                    }
                }
            };
            // The factory gone, the worker is too: the row stays pending.
            let _ = factory.dispatch(transport, follow_up);
        });
    }

    async fn finish(
        &mut self,
        factory: &FactoryHandle,
        item: Outgoing,
        attempt: u32,
        result: Result<Delivered, ChannelError>,
    ) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let max = self.ctx.config.notifier.max_attempts.max(1);
        let name = self.channel.name().to_string();
        let incident_id = item.delivery.incident_id.0;
        let outcome = match result {
            Ok(delivered) => {
                self.delivered += 1;
                self.held.remove(&item.delivery.key);
                self.pages.settled(
                    &item,
                    DeliveryStatus::Delivered,
                    delivered.external_ref.as_deref(),
                );
                tracing::debug!(channel = %name, incident_id, key = %item.delivery.key, "delivered");
                AttemptOutcome::Delivered {
                    external_ref: delivered.external_ref,
                }
            }
            Err(e) => {
                // A 429 is the far end pacing us, not a failure: it does
                // not use up an attempt.
                // (Pages only: they stop being wanted once the incident is
                // handled; an update paced forever would never end.)
                let rate_limited =
                    matches!(e, ChannelError::RateLimited { .. }) && item.delivery.event.is_page();
                let last = (attempt >= max && !rate_limited) || !e.is_retryable();
                self.last_error = Some(e.to_string());
                if last {
                    self.failed += 1;
                    self.held.remove(&item.delivery.key);
                    self.pages.settled(&item, DeliveryStatus::Failed, None);
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
                    self.retry_due
                        .insert(item.delivery.key.clone(), self.ctx.clock.now().plus(wait));
                    let retry = self.job(ChannelJob::Retry {
                        worker: self.incarnation,
                        item: Box::new(item.clone()),
                        attempt: if rate_limited { attempt } else { attempt + 1 },
                    });
                    factory.send_after(wait, move || retry);
                }
                AttemptOutcome::Failed {
                    error: e.to_string(),
                    last,
                }
            }
        };
        record(&self.ctx, &item.delivery, &outcome).await;
    }

    /// Sets this channel's depth gauges (`lim_notifier_deliveries`).
    fn publish_depth(&self) {
        self.ctx.metrics.set_notifier_depth(
            self.channel.name(),
            self.queue.len(),
            self.in_flight,
            self.retrying,
        );
    }

    fn status(&self) -> WorkerStatus {
        WorkerStatus {
            channel: self.channel.name().to_string(),
            worker: self.wid,
            queued: self.queue.len(),
            in_flight: self.in_flight,
            retrying: self.retrying,
            delivered: self.delivered,
            failed: self.failed,
            next_retry: self.retry_due.values().min().copied(),
            last_error: self.last_error.clone(),
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

/// `known`: the pages of the update's recipient as this worker saw them
/// (`PagesSeen::answer`); `None`: read from the delivery log.
async fn notification_for(
    ctx: &CoreContext,
    item: &Outgoing,
    known: Option<Vec<PageSeen>>,
) -> Prepared {
    let d = &item.delivery;
    let now = ctx.clock.now();
    let thread = match &d.event {
        NotificationEvent::Page { .. } => None,
        NotificationEvent::Update { .. } => {
            let pages = match known {
                Some(pages) => pages,
                None => match ctx.store.deliveries(d.incident_id).await {
                    Ok(rows) => rows
                        .into_iter()
                        .filter(|r| r.event.is_page() && r.recipient == d.recipient)
                        .map(|r| PageSeen {
                            key: r.key,
                            recipient: r.recipient,
                            status: r.status,
                            external_ref: r.external_ref,
                        })
                        .collect(),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot read the page an update follows up");
                        Vec::new()
                    }
                },
            };
            let waited = now.0.saturating_sub(d.created_at.0);
            match follow_up(&pages, Duration::from_millis(waited.max(0).unsigned_abs())) {
                Ok(thread) => thread,
                Err(prepared) => return prepared,
            }
        }
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

/// What an update does about its recipient's pages (oldest first), having
/// waited `waited` since it was recorded: it follows up the first one
/// delivered (`Ok`: its reference, if any), waits for one still being sent,
/// or is moot when every one was cancelled or failed.
fn follow_up(pages: &[PageSeen], waited: Duration) -> Result<Option<String>, Prepared> {
    let page_in_flight = pages.iter().any(|p| p.status == DeliveryStatus::Pending);
    if page_in_flight && waited < UPDATE_WAIT_MAX {
        return Err(Prepared::Wait);
    }
    let never_reached = !pages.is_empty()
        && pages
            .iter()
            .all(|p| matches!(p.status, DeliveryStatus::Cancelled | DeliveryStatus::Failed));
    if never_reached {
        return Err(Prepared::Moot);
    }
    Ok(pages
        .iter()
        .filter(|p| p.status == DeliveryStatus::Delivered)
        .find_map(|p| p.external_ref.clone()))
}

impl Worker for ChannelWorker {
    type Key = Transport;
    type Message = ChannelJob;
    type Arguments = WorkerArgs;
    type State = WorkerState;

    async fn pre_start(
        &self,
        wid: WorkerId,
        _factory: &FactoryHandle,
        args: WorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        if args.over_limit {
            // Fails the factory's replacement of this worker, and so the
            // factory, and so the pool: the escalation.
            return Err(format!(
                "channel worker {} exceeded its restart intensity",
                args.channel.name()
            )
            .into());
        }
        let since = args.ctx.clock.now();
        Ok(WorkerState {
            bucket: Bucket::new(args.channel.rate_limit()),
            ctx: args.ctx,
            channel: args.channel,
            wid,
            incarnation: INCARNATIONS.fetch_add(1, Ordering::Relaxed),
            replaces: args.replaces,
            queue: VecDeque::new(),
            held: HashSet::new(),
            in_flight: 0,
            retrying: 0,
            tick_armed: false,
            delivered: 0,
            failed: 0,
            retry_due: HashMap::new(),
            last_error: None,
            jitter: RandomState::new(),
            pages: PagesSeen::new(since),
        })
    }

    /// A replacement takes in hand what its channel has pending in the log:
    /// what the worker it replaces held. (In `post_start`, so the factory
    /// and the other channels do not wait on the read.)
    async fn post_start(
        &self,
        _wid: WorkerId,
        factory: &FactoryHandle,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if state.replaces {
            let held = pending(&state.ctx, Some(&state.transport())).await;
            tracing::info!(
                channel = %state.channel.name(),
                deliveries = held.len(),
                "a restarted channel worker sends what is pending"
            );
            for outgoing in held {
                state.accept(outgoing);
            }
            state.pump(factory);
        }
        state.publish_depth();
        Ok(())
    }

    async fn handle(
        &self,
        _wid: WorkerId,
        factory: &FactoryHandle,
        Job { key, msg, .. }: Job<Transport, ChannelJob>,
        state: &mut Self::State,
    ) -> Result<Transport, ActorProcessingErr> {
        if msg.incarnation().is_some_and(|w| w != state.incarnation) {
            // A follow-up for the worker this one replaced: its delivery is
            // still pending in the log, and this one reloaded it.
            return Ok(key);
        }
        match msg {
            ChannelJob::Send(item) if key != state.channel.name() => {
                // Only through a job keyed wrong: the pool routes by the table.
                refuse_unserved(&state.ctx, *item, &key);
                return Ok(key);
            }
            ChannelJob::Send(item) => state.accept(*item),
            ChannelJob::Retry { item, attempt, .. } => {
                state.retrying = state.retrying.saturating_sub(1);
                state.retry_due.remove(&item.delivery.key);
                state.queue.push_back((*item, attempt));
            }
            ChannelJob::Done {
                item,
                attempt,
                result,
                ..
            } => state.finish(factory, *item, attempt, result).await,
            ChannelJob::Tick { .. } => state.tick_armed = false,
            ChannelJob::Dropped { item, .. } => {
                state.in_flight = state.in_flight.saturating_sub(1);
                state.held.remove(&item.delivery.key);
                state.pages.settled(&item, DeliveryStatus::Cancelled, None);
            }
            ChannelJob::Deferred { item, attempt, .. } => {
                state.in_flight = state.in_flight.saturating_sub(1);
                state.retrying += 1;
                let retry = state.job(ChannelJob::Retry {
                    worker: state.incarnation,
                    item,
                    attempt,
                });
                factory.send_after(UPDATE_WAIT_STEP, move || retry);
            }
            ChannelJob::Inspect(reply) => {
                let _ = reply.send(state.status());
                return Ok(key);
            }
        }
        state.pump(factory);
        state.publish_depth();
        Ok(key)
    }

    /// This worker supervises no one. Overridden anyway, as every actor here
    /// does, so the default (stop when any linked child stops) can never
    /// apply by accident.
    async fn handle_supervisor_evt(
        &self,
        _myself: ActorCell,
        _event: SupervisionEvent,
        _state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        Ok(())
    }
}
