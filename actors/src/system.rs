//! Wiring: `spawn_system` starts the root supervisor (which starts
//! persistence, the notifier pool, the router, which rehydrates every open
//! incident, and then the heartbeat monitors) and returns the `System`
//! handle the server talks to.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use tokio::sync::watch;

use crate::domain::{
    Alert, Attribution, Directory, EscalationPolicy, Fingerprint, HeartbeatMonitor,
    HeartbeatStatus, Incident, IncidentId, MatcherError, RestartPolicy, Silence, SilenceId,
};
use crate::messages::{
    CommandError, CommandReply, HeartbeatError, HeartbeatMsg, IncidentCommand, IncidentMsg,
    IngestError, IngestOutcome, KeyedAlert, RouterMsg,
};
use crate::ports::{Channel, SharedStore, StoreError};
use crate::supervisor::{RootArgs, RootSupervisor};
use crate::time::SharedClock;

#[derive(Clone, Debug)]
pub struct SystemConfig {
    /// The escalation policy every incident follows.
    pub policy: EscalationPolicy,
    /// Restart intensity of every supervisor.
    pub restart: RestartPolicy,
    /// Most incident writes in one group commit.
    pub max_batch: usize,
    /// How long repeat counters may wait in memory before being written.
    pub touch_flush_interval: Duration,
    /// How often the store is pinged for readiness (`store_health`).
    pub store_probe_interval: Duration,
    /// How long a caller waits for the system before giving up (503).
    pub call_timeout: Duration,
    /// Heartbeat monitors (dead man's switches), one actor each.
    pub heartbeats: Vec<HeartbeatMonitor>,
    /// Named escalation policies besides `policy` (the default).
    pub policies: BTreeMap<String, EscalationPolicy>,
    /// Which policy each service follows (by name); others follow `policy`.
    pub service_policies: BTreeMap<String, String>,
    /// Users, teams, schedules and channels that policy targets name.
    pub directory: Directory,
    /// Retries and concurrency of the channel workers.
    pub notifier: crate::notifier::NotifierSettings,
    /// lim's public base URL (`https://lim.example.com`), for links in
    /// notifications; none when unset.
    pub public_url: Option<String>,
}

impl SystemConfig {
    /// The policy named `name`: the default policy for its own name and
    /// for names no longer configured (a snapshot outliving a config change).
    pub fn policy_named(&self, name: &str) -> &EscalationPolicy {
        self.policies.get(name).unwrap_or(&self.policy)
    }

    /// The services whose policy pages `user`: a step targets them by name,
    /// through a team they are in, or through a schedule they take part in
    /// (on call now or not). `default` stands for every service without a
    /// policy of its own.
    pub fn services_paging(&self, user: &str) -> Vec<String> {
        use crate::domain::Target;
        let d = &self.directory;
        let reaches = |policy: &EscalationPolicy| {
            policy
                .steps
                .iter()
                .flat_map(|s| &s.targets)
                .any(|t| match t {
                    Target::User(u) => u == user,
                    Target::Team(team) => d
                        .teams
                        .get(team)
                        .is_some_and(|m| m.iter().any(|m| m == user)),
                    Target::Schedule(s) => d.schedules.get(s).is_some_and(|s| {
                        s.rotations
                            .iter()
                            .any(|r| r.participants.iter().any(|p| p == user))
                            || s.overrides.iter().any(|o| o.user == user)
                    }),
                    Target::Channel(_) => false,
                })
        };
        let mut services: Vec<String> = self
            .service_policies
            .iter()
            .filter(|(_, policy)| reaches(self.policy_named(policy)))
            .map(|(service, _)| service.clone())
            .collect();
        if reaches(&self.policy) {
            services.push("default".to_string());
        }
        services
    }

    /// The policy a new incident of `service` follows.
    pub fn policy_for_service(&self, service: &str) -> &EscalationPolicy {
        match self.service_policies.get(service) {
            Some(name) => self.policy_named(name),
            None => &self.policy,
        }
    }
}

impl Default for SystemConfig {
    fn default() -> Self {
        SystemConfig {
            policy: EscalationPolicy::default_console(),
            restart: RestartPolicy::default(),
            max_batch: 1024,
            touch_flush_interval: Duration::from_secs(1),
            store_probe_interval: Duration::from_secs(1),
            call_timeout: Duration::from_secs(10),
            heartbeats: Vec::new(),
            policies: BTreeMap::new(),
            service_policies: BTreeMap::new(),
            directory: Directory::default(),
            public_url: None,
            notifier: crate::notifier::NotifierSettings::default(),
        }
    }
}

pub struct SystemDeps {
    pub store: SharedStore,
    pub clock: SharedClock,
    pub channels: Vec<Arc<dyn Channel>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SilenceError {
    #[error(transparent)]
    Invalid(#[from] MatcherError),
    #[error("silence {0} not found")]
    NotFound(SilenceId),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("incident system unavailable: {0}")]
    Unavailable(String),
}

#[derive(Debug, thiserror::Error)]
pub enum SystemError {
    #[error("the actor system failed to start: {0}")]
    Spawn(String),
}

/// Registered actor names are global to the process; each system gets its
/// own prefix so several systems (tests) can run side by side.
#[derive(Clone, Debug)]
pub struct Names {
    prefix: String,
}

impl Names {
    pub(crate) fn next() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Names {
            prefix: format!("lim{}", NEXT.fetch_add(1, Ordering::Relaxed)),
        }
    }

    pub fn root(&self) -> String {
        self.prefix.clone()
    }
    pub fn router(&self) -> String {
        format!("{}/router", self.prefix)
    }
    pub fn persistence(&self) -> String {
        format!("{}/persistence", self.prefix)
    }
    pub fn notifier(&self) -> String {
        format!("{}/notifier-pool", self.prefix)
    }
    pub fn heartbeats(&self) -> String {
        format!("{}/heartbeats", self.prefix)
    }
    /// The actor of heartbeat monitor `name`: `heartbeat:<name>`.
    pub fn heartbeat(&self, name: &str) -> String {
        format!("{}/heartbeat:{name}", self.prefix)
    }

    pub fn lookup<M: ractor::Message>(name: &str) -> Option<ActorRef<M>> {
        ractor::registry::where_is(name).map(ActorRef::from)
    }
}

/// What every actor of one system shares.
pub struct CoreContext {
    pub names: Names,
    pub config: SystemConfig,
    pub store: SharedStore,
    pub clock: SharedClock,
    /// This system's metrics (and its Prometheus registry).
    pub metrics: Arc<crate::metrics::CoreMetrics>,
    /// The persistence actor's commits as it publishes them (inspection).
    pub commit_watch: crate::inspect::CommitWatch,
    /// Whether the store takes writes (readiness).
    pub store_health: crate::store_health::StoreHealth,
    /// Every incident actor's timers, on one driver task.
    pub incident_timers: crate::timer_queue::TimerQueue<crate::incident::IncidentTimer>,
}

fn router(ctx: &CoreContext) -> Result<ActorRef<RouterMsg>, String> {
    Names::lookup(&ctx.names.router()).ok_or_else(|| "the router is not running".to_string())
}

/// Routes one alert through the router and answers once its effect is
/// committed: `System::ingest`, also used by the heartbeat monitors so a
/// miss has the contract of any alert. Its result is counted
/// (`lim_ingest_alerts_total`) under the alert's source.
pub(crate) async fn route(ctx: &CoreContext, alert: Alert) -> Result<IngestOutcome, IngestError> {
    let source = alert.source.clone();
    let result = route_uncounted(ctx, alert).await;
    ctx.metrics.count_ingest(&source, &result);
    result
}

async fn route_uncounted(ctx: &CoreContext, alert: Alert) -> Result<IngestOutcome, IngestError> {
    let router = router(ctx).map_err(IngestError::Unavailable)?;
    // The caller's span (the HTTP handler's `ingest` span) goes along, so
    // the incident actor's commit and notifier hand-off are inside it.
    let span = tracing::Span::current();
    match router
        .call(
            |reply| RouterMsg::Ingest { alert, reply, span },
            Some(ctx.config.call_timeout),
        )
        .await
    {
        Ok(CallResult::Success(result)) => result,
        Ok(CallResult::Timeout) => Err(IngestError::Unavailable("timed out".into())),
        Ok(CallResult::SenderError) => Err(IngestError::Unavailable(
            "the incident stopped before answering".into(),
        )),
        Err(e) => Err(IngestError::Unavailable(e.to_string())),
    }
}

/// Routes a request's alerts and answers once every alert's effect is
/// committed: [`System::ingest_batch`].
///
/// `System::ingest` per alert costs a router call each (and the caller a
/// task per incident key to keep alerts of different incidents
/// concurrent); here each alert's incident key is hashed once, the router
/// gets one [`RouterMsg::IngestBatch`] and fans the alerts out to their
/// incident actors itself, in input order. Alerts of one incident are
/// applied one after another in that order (one actor's mailbox), alerts
/// of different incidents concurrently (different actors, their commits
/// grouped by the persistence actor). Each alert has its own reply port;
/// they are awaited in input order, each for at most `call_timeout`.
///
/// The answer is `Ok` with one outcome per alert, in input order, only
/// once every alert has answered `Ok` (its change committed); otherwise
/// the first error in input order, as soon as it is seen (the alerts
/// after it may or may not have been applied: the sender retries the
/// whole request, and a re-sent alert is a repeat). Each result seen is
/// counted in `lim_ingest_alerts_total` under its alert's source, like
/// `System::ingest`'s.
pub(crate) async fn ingest_batch(
    ctx: &CoreContext,
    alerts: Vec<Alert>,
) -> Result<Vec<IngestOutcome>, IngestError> {
    let router = router(ctx).map_err(IngestError::Unavailable)?;
    let mut tally = SourceTally::default();
    let mut keyed = Vec::with_capacity(alerts.len());
    let mut waiting = Vec::with_capacity(alerts.len());
    for alert in alerts {
        tally.push_source(&alert.source);
        let (tx, rx) = ractor::concurrency::oneshot();
        waiting.push(rx);
        keyed.push(KeyedAlert {
            key: alert.incident_key(),
            alert,
            reply: tx.into(),
        });
    }
    let msg = RouterMsg::IngestBatch {
        alerts: keyed,
        span: tracing::Span::current(),
    };
    if router.cast(msg).is_err() {
        return Err(IngestError::Unavailable("the router is not running".into()));
    }
    let mut outcomes = Vec::with_capacity(waiting.len());
    let mut failed = None;
    for rx in waiting {
        let result = match tokio::time::timeout(ctx.config.call_timeout, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(IngestError::Unavailable(
                "the incident stopped before answering".into(),
            )),
            Err(_) => Err(IngestError::Unavailable("timed out".into())),
        };
        tally.count(&result);
        match result {
            Ok(outcome) => outcomes.push(outcome),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
    }
    tally.publish(&ctx.metrics);
    match failed {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

/// `lim_ingest_alerts_total` increments of a batch, added once per
/// (source, result) rather than once per alert. Sources come in runs
/// (a request's alerts share one).
#[derive(Default)]
struct SourceTally {
    /// (source, how many alerts in a row have it).
    runs: Vec<(String, usize)>,
    /// The result of each alert answered so far, in input order.
    results: Vec<&'static str>,
}

impl SourceTally {
    fn push_source(&mut self, source: &str) {
        match self.runs.last_mut() {
            Some((s, n)) if s == source => *n += 1,
            _ => self.runs.push((source.to_string(), 1)),
        }
    }

    fn count(&mut self, result: &Result<IngestOutcome, IngestError>) {
        self.results.push(crate::metrics::ingest_result(result));
    }

    fn publish(&self, metrics: &crate::metrics::CoreMetrics) {
        let mut results = self.results.iter();
        for (source, n) in &self.runs {
            let mut counts: Vec<(&'static str, u64)> = Vec::new();
            for name in results.by_ref().take(*n) {
                match counts.iter_mut().find(|(c, _)| c == name) {
                    Some((_, count)) => *count += 1,
                    None => counts.push((name, 1)),
                }
            }
            for (name, count) in counts {
                metrics
                    .ingest_alerts
                    .with_label_values(&[source.as_str(), name])
                    .inc_by(count);
            }
        }
    }
}

/// Sends a command to the router and waits for the incident it changed.
pub(crate) async fn call_router(
    ctx: &CoreContext,
    msg: impl FnOnce(CommandReply) -> RouterMsg,
) -> Result<Incident, CommandError> {
    let router = router(ctx).map_err(CommandError::Unavailable)?;
    match router.call(msg, Some(ctx.config.call_timeout)).await {
        Ok(CallResult::Success(result)) => result,
        Ok(CallResult::Timeout) => Err(CommandError::Unavailable("timed out".into())),
        Ok(CallResult::SenderError) => Err(CommandError::Unavailable(
            "the incident stopped before answering".into(),
        )),
        Err(e) => Err(CommandError::Unavailable(e.to_string())),
    }
}

/// The handle to a running system. Cheap to clone.
#[derive(Clone)]
pub struct System {
    pub(crate) ctx: Arc<CoreContext>,
    root: ActorRef<crate::messages::SupervisorMsg>,
    stopped: watch::Receiver<bool>,
    silences_lock: Arc<tokio::sync::Mutex<()>>,
}

pub async fn spawn_system(config: SystemConfig, deps: SystemDeps) -> Result<System, SystemError> {
    config
        .policy
        .validate()
        .map_err(|e| SystemError::Spawn(e.to_string()))?;
    HeartbeatMonitor::validate_all(&config.heartbeats)
        .map_err(|e| SystemError::Spawn(e.to_string()))?;
    let metrics =
        crate::metrics::CoreMetrics::new().map_err(|e| SystemError::Spawn(e.to_string()))?;
    let ctx = Arc::new(CoreContext {
        names: Names::next(),
        config,
        store: deps.store,
        clock: deps.clock,
        metrics: Arc::new(metrics),
        commit_watch: Default::default(),
        store_health: Default::default(),
        incident_timers: crate::timer_queue::TimerQueue::start(),
    });
    let (root, handle) = Actor::spawn(
        Some(ctx.names.root()),
        RootSupervisor,
        RootArgs {
            ctx: ctx.clone(),
            channels: deps.channels,
        },
    )
    .await
    .map_err(|e| SystemError::Spawn(e.to_string()))?;
    let (tx, stopped) = watch::channel(false);
    tokio::spawn(async move {
        let _ = handle.await;
        let _ = tx.send(true);
    });
    // The store probe lives as long as the system.
    let (probe_ctx, mut probe_stopped) = (ctx.clone(), stopped.clone());
    tokio::spawn(async move {
        let c = &probe_ctx;
        tokio::select! {
            _ = crate::store_health::probe(&c.store_health, c.store.clone(), c.clock.clone(), c.config.store_probe_interval) => {}
            _ = probe_stopped.wait_for(|stopped| *stopped) => {}
        }
    });
    Ok(System {
        ctx,
        root,
        stopped,
        silences_lock: Arc::default(),
    })
}

impl System {
    pub fn store(&self) -> &SharedStore {
        &self.ctx.store
    }

    pub fn config(&self) -> &SystemConfig {
        &self.ctx.config
    }

    /// This system's metrics; its registry takes the server's own too.
    /// Since when, and why, the store does not take writes; `None` while it does.
    pub fn store_down(&self) -> Option<crate::store_health::StoreDown> {
        self.ctx.store_health.down()
    }

    pub fn metrics(&self) -> &Arc<crate::metrics::CoreMetrics> {
        &self.ctx.metrics
    }

    /// Every metric family of this system, as of the system's clock.
    pub fn gather_metrics(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.ctx.metrics.gather(self.ctx.clock.now())
    }

    fn router(&self) -> Result<ActorRef<RouterMsg>, String> {
        router(&self.ctx)
    }

    /// Routes one alert and answers once its effect is committed.
    pub async fn ingest(&self, alert: Alert) -> Result<IngestOutcome, IngestError> {
        route(&self.ctx, alert).await
    }

    /// Routes a request's alerts through the router as one message and
    /// answers once every alert's effect is committed: the outcomes in
    /// input order, or the first error. See [`ingest_batch`].
    pub async fn ingest_batch(
        &self,
        alerts: Vec<Alert>,
    ) -> Result<Vec<IngestOutcome>, IngestError> {
        ingest_batch(&self.ctx, alerts).await
    }

    async fn command(
        &self,
        id: IncidentId,
        command: IncidentCommand,
    ) -> Result<Incident, CommandError> {
        self.call_router(|reply| RouterMsg::Command { id, command, reply })
            .await
    }

    async fn command_by_key(
        &self,
        dedup_key: &str,
        command: IncidentCommand,
    ) -> Result<Incident, CommandError> {
        let key = Fingerprint::of_dedup_key(dedup_key);
        self.call_router(|reply| RouterMsg::CommandByKey {
            key,
            command,
            reply,
        })
        .await
    }

    async fn call_router(
        &self,
        msg: impl FnOnce(CommandReply) -> RouterMsg,
    ) -> Result<Incident, CommandError> {
        call_router(&self.ctx, msg).await
    }

    /// Acknowledges the open incident whose dedup key is `dedup_key`.
    pub async fn acknowledge_by_key(
        &self,
        dedup_key: &str,
        by: Attribution,
    ) -> Result<Incident, CommandError> {
        self.command_by_key(dedup_key, IncidentCommand::Acknowledge(by))
            .await
    }

    /// Resolves the open incident whose dedup key is `dedup_key`.
    pub async fn resolve_by_key(
        &self,
        dedup_key: &str,
        by: Attribution,
    ) -> Result<Incident, CommandError> {
        self.command_by_key(dedup_key, IncidentCommand::Resolve(by))
            .await
    }

    pub async fn acknowledge(
        &self,
        id: IncidentId,
        by: Attribution,
    ) -> Result<Incident, CommandError> {
        self.command(id, IncidentCommand::Acknowledge(by)).await
    }

    pub async fn resolve(&self, id: IncidentId, by: Attribution) -> Result<Incident, CommandError> {
        self.command(id, IncidentCommand::Resolve(by)).await
    }

    /// Acknowledged for `duration`, then triggered again with its escalation restarted.
    pub async fn snooze(
        &self,
        id: IncidentId,
        by: Attribution,
        duration: Duration,
    ) -> Result<Incident, CommandError> {
        self.command(id, IncidentCommand::Snooze(by, duration))
            .await
    }

    /// Fires the next escalation step now.
    pub async fn escalate(
        &self,
        id: IncidentId,
        by: Attribution,
    ) -> Result<Incident, CommandError> {
        self.command(id, IncidentCommand::Escalate(by)).await
    }

    /// Adds a note to the timeline (resolved incidents included).
    pub async fn add_note(
        &self,
        id: IncidentId,
        by: Attribution,
        text: String,
    ) -> Result<Incident, CommandError> {
        self.command(id, IncidentCommand::Note(by, text)).await
    }

    /// Creates a silence (its id is assigned here), stores it, and hands the
    /// router the new set. Silence writes are serialised by a lock: they are
    /// rare and the id allocation must not race.
    pub async fn create_silence(&self, mut silence: Silence) -> Result<Silence, SilenceError> {
        let _guard = self.silences_lock.lock().await;
        silence.validate()?;
        let mut all = self.ctx.store.list_silences().await?;
        silence.id = SilenceId(all.iter().map(|s| s.id.0).max().unwrap_or(0) + 1);
        self.ctx.store.save_silence(&silence).await?;
        all.insert(0, silence.clone());
        self.publish_silences(all);
        Ok(silence)
    }

    /// Every silence, newest first.
    pub async fn list_silences(&self) -> Result<Vec<Silence>, SilenceError> {
        Ok(self.ctx.store.list_silences().await?)
    }

    /// Ends a silence now. Alerts it kept quiet are not paged retroactively:
    /// only an alert that fires (or is re-sent) after this opens an incident.
    pub async fn expire_silence(&self, id: SilenceId) -> Result<Silence, SilenceError> {
        let _guard = self.silences_lock.lock().await;
        let mut all = self.ctx.store.list_silences().await?;
        let silence = all
            .iter_mut()
            .find(|s| s.id == id)
            .ok_or(SilenceError::NotFound(id))?;
        silence.expire(self.ctx.clock.now());
        let silence = silence.clone();
        self.ctx.store.save_silence(&silence).await?;
        self.publish_silences(all);
        Ok(silence)
    }

    /// Hands the router the silences as now stored (the caller holds the
    /// silences lock, so `all` is current). The silence is already saved: a
    /// router that cannot be told now (restarting) loads them from the store
    /// when it starts, so this only logs.
    fn publish_silences(&self, all: Vec<Silence>) {
        let published = self.router().and_then(|r| {
            r.cast(RouterMsg::SetSilences(all))
                .map_err(|e| e.to_string())
        });
        if let Err(e) = published {
            tracing::warn!(error = %e, "silence saved but not yet handed to the router");
        }
    }

    /// Records a ping of heartbeat monitor `name` and answers its status
    /// once the new deadline is committed. A monitor that was missed is
    /// back: its incident is resolved (right after the answer).
    pub async fn ping_heartbeat(&self, name: &str) -> Result<HeartbeatStatus, HeartbeatError> {
        if !self.ctx.config.heartbeats.iter().any(|m| m.name == name) {
            return Err(HeartbeatError::Unknown(name.to_string()));
        }
        let actor = Names::lookup::<HeartbeatMsg>(&self.ctx.names.heartbeat(name))
            .ok_or_else(|| HeartbeatError::Unavailable("the monitor is restarting".into()))?;
        match actor
            .call(HeartbeatMsg::Ping, Some(self.ctx.config.call_timeout))
            .await
        {
            Ok(CallResult::Success(result)) => result,
            Ok(CallResult::Timeout) => Err(HeartbeatError::Unavailable("timed out".into())),
            Ok(CallResult::SenderError) => Err(HeartbeatError::Unavailable(
                "the monitor stopped before answering".into(),
            )),
            Err(e) => Err(HeartbeatError::Unavailable(e.to_string())),
        }
    }

    /// The status of every configured monitor, in config order, as its
    /// actor holds it. The monitors are asked concurrently; one that does
    /// not answer within the call timeout (restarting) is left out, with a
    /// warning in the log.
    pub async fn heartbeats(&self) -> Vec<HeartbeatStatus> {
        let timeout = self.ctx.config.call_timeout;
        let mut calls = tokio::task::JoinSet::new();
        for (index, monitor) in self.ctx.config.heartbeats.iter().enumerate() {
            let actor = Names::lookup::<HeartbeatMsg>(&self.ctx.names.heartbeat(&monitor.name));
            let name = monitor.name.clone();
            calls.spawn(async move {
                let answer = match actor {
                    Some(a) => match a.call(HeartbeatMsg::Status, Some(timeout)).await {
                        Ok(CallResult::Success(status)) => Some(status),
                        _ => None,
                    },
                    None => None,
                };
                if answer.is_none() {
                    tracing::warn!(heartbeat = %name, "heartbeat monitor did not answer");
                }
                (index, answer)
            });
        }
        let mut out: Vec<(usize, HeartbeatStatus)> = calls
            .join_all()
            .await
            .into_iter()
            .filter_map(|(i, s)| s.map(|s| (i, s)))
            .collect();
        out.sort_by_key(|(i, _)| *i);
        out.into_iter().map(|(_, s)| s).collect()
    }

    /// Number of open incidents in the router's index.
    pub async fn open_count(&self) -> Result<usize, IngestError> {
        let router = self.router().map_err(IngestError::Unavailable)?;
        ractor::call_t!(router, RouterMsg::IndexSize, 5_000)
            .map_err(|e| IngestError::Unavailable(e.to_string()))
    }

    /// The live incident actor for `id`, if one is running (test and
    /// inspection aid: gives the in-memory state including repeat counts).
    pub async fn live_incident(&self, id: IncidentId) -> Option<Incident> {
        let router = self.router().ok()?;
        let actor: ActorRef<IncidentMsg> =
            ractor::call_t!(router, RouterMsg::Lookup, 5_000, id).ok()??;
        ractor::call_t!(actor, IncidentMsg::Get, 5_000).ok()?
    }

    /// The notifier's worker for `transport` (`console`, `email`, `slack`,
    /// `webhook:<name>`) as it is now; `None` if no channel serves it or the
    /// worker did not answer within the call timeout.
    pub async fn channel_worker(&self, transport: &str) -> Option<crate::notifier::WorkerStatus> {
        crate::notifier::worker_status(&self.ctx, transport).await
    }

    /// The live actor tree: every actor with its observable state, and one
    /// page of the router's incidents (`page`). Each actor is asked with a
    /// timeout; one that does not answer shows as `unresponsive`.
    pub async fn actor_tree(&self, page: &crate::inspect::ChildQuery) -> crate::inspect::ActorNode {
        crate::inspect::tree(&self.ctx, &self.root.get_cell(), page).await
    }

    /// One actor in full, by its id (`0.42`, a worker's `0.17/w2`) or as
    /// `incident-<id>`; `None` if no such actor is running.
    pub async fn actor(
        &self,
        wanted: &crate::inspect::ActorSelector,
    ) -> Option<crate::inspect::ActorNode> {
        crate::inspect::find(&self.ctx, &self.root.get_cell(), wanted).await
    }

    /// Stops open incident `id`'s actor and starts it again from its
    /// committed snapshot (an operator's action); answers the new actor's node.
    pub async fn restart_incident_actor(
        &self,
        id: IncidentId,
    ) -> Result<crate::inspect::ActorNode, CommandError> {
        let router = self.router().map_err(CommandError::Unavailable)?;
        let actor = match router
            .call(
                |r| RouterMsg::Restart(id, r),
                Some(self.ctx.config.call_timeout),
            )
            .await
        {
            Ok(CallResult::Success(result)) => result?,
            Ok(CallResult::Timeout) => return Err(CommandError::Unavailable("timed out".into())),
            _ => return Err(CommandError::Unavailable("the router stopped".into())),
        };
        Ok(crate::inspect::incident(id, &actor, true).await)
    }

    /// The router's actor id (it changes when the root restarts the router).
    pub fn router_id(&self) -> Option<ractor::ActorId> {
        self.router().ok().map(|r| r.get_id())
    }

    /// Whether the root supervisor is still running.
    pub fn is_running(&self) -> bool {
        !*self.stopped.borrow()
    }

    /// Resolves when the root supervisor has stopped (shutdown, or restart
    /// intensity exceeded at the top: the process should exit).
    pub async fn stopped(&self) {
        let mut rx = self.stopped.clone();
        let _ = rx.wait_for(|s| *s).await;
    }

    /// Stops every actor (pending timers are aborted) and waits for it.
    pub async fn shutdown(&self) {
        self.root.stop(None);
        self.stopped().await;
    }
}

#[cfg(test)]
mod services_paging_tests {
    use super::*;
    use crate::domain::{Contact, EscalationStep, Target};

    #[test]
    fn a_user_is_paged_by_the_services_whose_policy_reaches_them() {
        let policy = |name: &str, targets: Vec<Target>| EscalationPolicy {
            name: name.into(),
            steps: vec![EscalationStep {
                delay: Duration::from_secs(60),
                targets,
            }],
            repeat: 0,
            ack_timeout: None,
        };
        let mut config = SystemConfig::default();
        config
            .directory
            .users
            .insert("alice".into(), Contact::default());
        config
            .directory
            .teams
            .insert("ml".into(), vec!["alice".into()]);
        config.policies.insert(
            "direct".into(),
            policy("direct", vec![Target::User("alice".into())]),
        );
        config.policies.insert(
            "team".into(),
            policy("team", vec![Target::Team("ml".into())]),
        );
        config.policies.insert(
            "other".into(),
            policy("other", vec![Target::User("bob".into())]),
        );
        for (service, p) in [("gateway", "direct"), ("evals", "team"), ("db", "other")] {
            config.service_policies.insert(service.into(), p.into());
        }
        assert_eq!(config.services_paging("alice"), vec!["evals", "gateway"]);
        assert!(config.services_paging("carol").is_empty());
        config.policy = policy("default", vec![Target::User("carol".into())]);
        assert_eq!(config.services_paging("carol"), vec!["default"]);
    }
}
