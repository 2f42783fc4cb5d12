//! The live actor tree as data: what an operator sees at `GET /v1/actors`,
//! in `lim actors` and in the web console.
//!
//! Every actor answers an inspect message with its own observable state
//! (plain data, serialised to JSON); nothing here takes a lock another actor
//! needs. The tree is gathered top-down: the root supervisor, then each of
//! its children by kind, each asked with [`INSPECT_TIMEOUT`]; one that does
//! not answer in time shows as `unresponsive` instead of holding up the
//! answer. Incident actors can number 100,000, so the router hands out one
//! page of them at a time ([`ChildQuery`]: a keyset cursor on the incident
//! id, an optional status filter it applies from its own index) with
//! summaries of the whole (counts by status), and only the actors on that
//! page are asked, concurrently. The router answers from its index in one
//! short handler, so ingest is never held up behind an inspection.
//!
//! Ids are ractor's actor ids (`0.42`). Channel workers are addressed
//! through their factory (`<factory id>/w<index>`): a factory worker does
//! not know its own actor id. An incident's actor can also be named
//! `incident-<id>`.

use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{ActorCell, ActorRef, ActorStatus, RpcReplyPort};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::domain::{IncidentId, IncidentStatus};
use crate::messages::{
    HeartbeatMsg, IncidentMsg, NotifierMsg, PersistenceMsg, RouterMsg, SupervisorMsg,
};
use crate::system::{CoreContext, Names};
use crate::time::Timestamp;

/// How long one actor may take to answer before it shows as unresponsive.
pub const INSPECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Incident children per page unless asked otherwise.
pub const DEFAULT_PAGE: usize = 100;
/// The largest page of incident children.
pub const MAX_PAGE: usize = 1000;

/// What an actor is, for display and filters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// The root supervisor.
    Supervisor,
    Persistence,
    /// The front of the notifier pool.
    NotifierPool,
    /// The ractor factory that owns the channel workers.
    Factory,
    NotifierWorker,
    /// The dedup index; supervises the incidents.
    Router,
    Incident,
    /// The supervisor of the periodic jobs (heartbeat monitors).
    Scheduler,
    Heartbeat,
}

impl ActorKind {
    pub const ALL: [ActorKind; 9] = [
        ActorKind::Supervisor,
        ActorKind::Persistence,
        ActorKind::NotifierPool,
        ActorKind::Factory,
        ActorKind::NotifierWorker,
        ActorKind::Router,
        ActorKind::Incident,
        ActorKind::Scheduler,
        ActorKind::Heartbeat,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActorKind::Supervisor => "supervisor",
            ActorKind::Persistence => "persistence",
            ActorKind::NotifierPool => "notifier_pool",
            ActorKind::Factory => "factory",
            ActorKind::NotifierWorker => "notifier_worker",
            ActorKind::Router => "router",
            ActorKind::Incident => "incident",
            ActorKind::Scheduler => "scheduler",
            ActorKind::Heartbeat => "heartbeat",
        }
    }

    pub fn parse(s: &str) -> Option<ActorKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// One actor of the tree.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(no_recursion))]
pub struct ActorNode {
    /// ractor's actor id (`0.42`); `<factory id>/w<n>` for a channel worker.
    pub id: String,
    pub name: String,
    pub kind: ActorKind,
    /// The actor's lifecycle: `running`, `starting`, `stopping`, `stopped`,
    /// or `unresponsive` (it did not answer within the inspect timeout).
    pub status: String,
    /// Its observable state, by kind (an incident's status is `state.status`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub state: Value,
    pub children: Vec<ActorNode>,
    /// How many children it has in all (for the router: the open incidents
    /// matching the status filter, of which `children` is one page).
    pub children_total: usize,
    /// Pass back as `cursor` for the next page of children; `null` on the last.
    pub next_cursor: Option<String>,
    /// How long the actor took to answer its inspect message (`null`: not
    /// asked, or no answer): a busy actor shows here first.
    pub answer_ms: Option<f64>,
}

impl ActorNode {
    /// This node and its descendants.
    pub fn count(&self) -> usize {
        1 + self.children.iter().map(ActorNode::count).sum::<usize>()
    }

    /// The status a filter matches: the actor's, or for an incident also
    /// its incident status (`triggered`, `acknowledged`).
    fn matches_status(&self, wanted: &str) -> bool {
        self.status == wanted || self.state.get("status").and_then(Value::as_str) == Some(wanted)
    }
}

/// Keeps the nodes matching `kind` and `status` (both when both are
/// given) and the ancestors that lead to them, so a filtered tree still
/// reads from the root. `None` when nothing matches.
pub fn prune(node: ActorNode, kind: Option<ActorKind>, status: Option<&str>) -> Option<ActorNode> {
    let matches =
        kind.is_none_or(|k| node.kind == k) && status.is_none_or(|s| node.matches_status(s));
    let ActorNode {
        children,
        children_total,
        ..
    } = node.clone();
    let before = children.len();
    let kept: Vec<ActorNode> = children
        .into_iter()
        .filter_map(|c| prune(c, kind, status))
        .collect();
    if !matches && kept.is_empty() {
        return None;
    }
    Some(ActorNode {
        // Children the filter dropped are not "more on another page".
        children_total: children_total - (before - kept.len()),
        children: kept,
        ..node
    })
}

/// What the router is asked for: a page of its incident children.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChildQuery {
    /// Incidents with an id above this one (the previous page's last).
    pub after: Option<IncidentId>,
    /// At most this many.
    pub limit: usize,
    /// Only incidents of this status.
    pub status: Option<IncidentStatus>,
}

/// An incident child on the router's page.
pub struct IncidentChild {
    pub id: IncidentId,
    pub actor: ActorRef<IncidentMsg>,
}

/// The router's own observable state.
#[derive(Clone, Debug, Serialize)]
pub struct RouterView {
    /// Open incidents in the dedup index.
    pub index_size: usize,
    pub triggered: usize,
    pub acknowledged: usize,
    /// The id the next incident gets.
    pub next_id: u64,
    /// Silences active or pending.
    pub silences: usize,
    /// Incident actors restarted after a failure since the router started.
    pub incident_restarts: u64,
    /// Incidents whose actor failed beyond the restart intensity.
    pub quarantined: Vec<QuarantinedView>,
}

/// An incident the router stopped restarting (see `router`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct QuarantinedView {
    pub incident_id: IncidentId,
    /// Failures within the restart window that got it quarantined.
    pub failures: usize,
    pub since: Timestamp,
    /// The last failure's error.
    pub error: String,
    /// Not quarantined for good: its actor failed while the store was
    /// down, and the router brings it back once the snapshot can be read.
    pub waiting_for_store: bool,
}

pub struct RouterPage {
    pub view: RouterView,
    pub children: Vec<IncidentChild>,
    /// Open incidents matching the page's status filter.
    pub matching: usize,
    pub next_cursor: Option<IncidentId>,
}

/// An armed timer of an incident.
#[derive(Clone, Debug, Serialize)]
pub struct TimerView {
    /// `escalation`, `ack_expiry` or `alert_expiry`.
    pub kind: &'static str,
    pub deadline: Timestamp,
    /// Milliseconds from now to the deadline (negative: overdue).
    pub in_ms: i64,
}

/// An incident actor's observable state.
#[derive(Clone, Debug, Serialize)]
pub struct IncidentView {
    pub incident_id: Option<IncidentId>,
    /// `triggered`, `acknowledged`, `resolved`; `opening` before the first
    /// alert is committed.
    pub status: &'static str,
    pub title: Option<String>,
    pub service: Option<String>,
    pub severity: Option<String>,
    pub policy: Option<String>,
    /// The escalation step that fires next (from 0) and the pass over the policy.
    pub step: Option<usize>,
    pub repeat: Option<u32>,
    pub exhausted: bool,
    pub timers: Vec<TimerView>,
    /// Distinct alerts in the incident, and deliveries received (repeats included).
    pub alerts: usize,
    pub seen_count: u64,
    pub last_seen: Option<Timestamp>,
    /// Times this incident's actor was restarted (after failures or by an operator).
    pub restarts: u32,
    /// Resolved: waiting for the router to retire it.
    pub closing: bool,
    pub version: u64,
}

/// The persistence actor's observable state.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PersistenceView {
    /// Incident writes waiting for the next group commit, and their callers.
    pub queued_writes: usize,
    pub queued_callers: usize,
    /// Repeat counters and delivery attempts waiting to be written.
    pub queued_touches: usize,
    pub queued_attempts: usize,
    pub last_batch_size: usize,
    pub last_commit_ms: Option<f64>,
    pub last_commit_at: Option<Timestamp>,
    pub commits: u64,
    pub failed_commits: u64,
    /// The group commit under way (only when the tree was answered from
    /// what the actor published, its status then `busy`).
    pub committing: Option<CommitView>,
}

/// A group commit under way, as the persistence actor publishes it.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct CommitView {
    pub since: Timestamp,
    pub for_ms: i64,
    pub writes: usize,
    pub touches: usize,
}

/// The commit under way (started, writes, touches) and the last figures.
type Published = (Option<(Timestamp, usize, usize)>, Option<PersistenceView>);

/// What the persistence actor publishes around each group commit, so the
/// tree can show it while it is inside a long commit (its mailbox waits
/// meanwhile, so an inspect message would wait too): the commit under way
/// and the figures as of the last one. Written twice per batch, read only
/// by inspection; the lock is never held across an await.
#[derive(Debug, Default)]
pub struct CommitWatch {
    inner: std::sync::Mutex<Published>,
}

impl CommitWatch {
    pub(crate) fn started(&self, at: Timestamp, writes: usize, touches: usize) {
        if let Ok(mut g) = self.inner.lock() {
            g.0 = Some((at, writes, touches));
        }
    }

    pub(crate) fn finished(&self, view: PersistenceView) {
        if let Ok(mut g) = self.inner.lock() {
            *g = (None, Some(view));
        }
    }

    /// What to show of an actor that did not answer at once: the last
    /// published figures, with the commit under way if one is. `None` when
    /// it is not committing and has not finished a commit within the
    /// inspect timeout either: then it may be stuck, and it is asked again.
    fn busy_view(&self, now: Timestamp) -> Option<PersistenceView> {
        let g = self.inner.lock().ok()?;
        match g.0 {
            Some((since, writes, touches)) => {
                let mut view = g.1.clone().unwrap_or_default();
                view.committing = Some(CommitView {
                    since,
                    for_ms: now.as_millis() - since.as_millis(),
                    writes,
                    touches,
                });
                Some(view)
            }
            None => {
                // Between commits, working through its mailbox (a burst of
                // writes and repeat counters queued during the last commit).
                let view = g.1.clone()?;
                let fresh = view.last_commit_at.is_some_and(|at| {
                    now.as_millis() - at.as_millis() <= INSPECT_TIMEOUT.as_millis() as i64
                });
                fresh.then_some(view)
            }
        }
    }
}

/// How long the tree waits for the persistence actor before showing what
/// it published: it is then inside a commit, or working through the
/// mailbox that filled during one, and its answer would come only after.
const PERSISTENCE_ASK: Duration = Duration::from_millis(50);

/// The notifier pool's observable state.
#[derive(Clone, Debug, Serialize)]
pub struct PoolView {
    /// The transports served, in worker order (worker `n` serves `channels[n]`).
    pub channels: Vec<String>,
}

/// Asks one actor, bounded by the inspect timeout.
async fn ask<M, T>(actor: &ActorRef<M>, msg: impl FnOnce(RpcReplyPort<T>) -> M) -> Option<T>
where
    M: ractor::Message,
    T: Send + 'static,
{
    match actor.call(msg, Some(INSPECT_TIMEOUT)).await {
        Ok(CallResult::Success(v)) => Some(v),
        _ => None,
    }
}

fn lifecycle(cell: &ActorCell, answered: bool) -> String {
    match cell.get_status() {
        ActorStatus::Running if !answered => "unresponsive".into(),
        ActorStatus::Unstarted => "unstarted".into(),
        ActorStatus::Starting => "starting".into(),
        ActorStatus::Running => "running".into(),
        ActorStatus::Upgrading => "upgrading".into(),
        ActorStatus::Draining => "draining".into(),
        ActorStatus::Stopping => "stopping".into(),
        ActorStatus::Stopped => "stopped".into(),
    }
}

fn leaf(cell: &ActorCell, name: &str, kind: ActorKind, state: Option<Value>) -> ActorNode {
    leaf_asked(cell, name, kind, state, None)
}

/// A node for an actor asked at `asked` (its answer time is recorded).
fn leaf_asked(
    cell: &ActorCell,
    name: &str,
    kind: ActorKind,
    state: Option<Value>,
    asked: Option<Instant>,
) -> ActorNode {
    let answer_ms = asked
        .filter(|_| state.is_some())
        .map(|t| (t.elapsed().as_secs_f64() * 1e6).round() / 1e3);
    ActorNode {
        answer_ms,
        id: cell.get_id().to_string(),
        name: name.to_string(),
        kind,
        status: lifecycle(cell, state.is_some()),
        state: state.unwrap_or(Value::Null),
        children: Vec::new(),
        children_total: 0,
        next_cursor: None,
    }
}

fn to_json<T: Serialize>(v: T) -> Value {
    serde_json::to_value(v).unwrap_or(Value::Null)
}

/// The registered name without the system's prefix (`router`).
fn short_name(names: &Names, cell: &ActorCell) -> Option<String> {
    let name = cell.get_name()?;
    let prefix = format!("{}/", names.root());
    name.strip_prefix(&prefix).map(str::to_string)
}

/// The whole tree under `root`, with one page of incidents.
pub(crate) async fn tree(ctx: &CoreContext, root: &ActorCell, page: &ChildQuery) -> ActorNode {
    let root_ref: ActorRef<SupervisorMsg> = root.clone().into();
    let asked = Instant::now();
    let state = ask(&root_ref, SupervisorMsg::Inspect).await;
    let mut node = leaf_asked(root, "lim", ActorKind::Supervisor, state, Some(asked));
    let order = |n: &Option<String>| match n.as_deref() {
        Some("persistence") => 0,
        Some("notifier-pool") => 1,
        Some("router") => 2,
        Some("heartbeats") => 3,
        _ => 4,
    };
    let mut children: Vec<(Option<String>, ActorCell)> = root
        .get_children()
        .into_iter()
        .map(|c| (short_name(&ctx.names, &c), c))
        .collect();
    children.sort_by_key(|(n, _)| order(n));
    // The children are asked concurrently: one slow actor costs one timeout.
    let nodes = futures::future::join_all(
        children
            .iter()
            .map(|(name, cell)| child(ctx, name.as_deref(), cell, page)),
    )
    .await;
    node.children_total = nodes.len();
    node.children = nodes;
    node
}

async fn child(
    ctx: &CoreContext,
    name: Option<&str>,
    cell: &ActorCell,
    page: &ChildQuery,
) -> ActorNode {
    match name {
        Some("persistence") => persistence(ctx, cell).await,
        Some("notifier-pool") => pool(ctx, cell).await,
        Some("router") => router(cell, page).await,
        Some("heartbeats") => heartbeats(cell).await,
        other => leaf(
            cell,
            other.unwrap_or("unnamed"),
            ActorKind::Supervisor,
            None,
        ),
    }
}

/// The persistence actor: asked, and if it is inside a commit, shown from
/// what it published (`busy`) rather than waited for.
async fn persistence(ctx: &CoreContext, cell: &ActorCell) -> ActorNode {
    let actor: ActorRef<PersistenceMsg> = cell.clone().into();
    let asked = Instant::now();
    if let Ok(CallResult::Success(state)) = actor
        .call(PersistenceMsg::Inspect, Some(PERSISTENCE_ASK))
        .await
    {
        let kind = ActorKind::Persistence;
        return leaf_asked(cell, "persistence", kind, Some(state), Some(asked));
    }
    if let Some(view) = ctx.commit_watch.busy_view(ctx.clock.now()) {
        let mut node = leaf(
            cell,
            "persistence",
            ActorKind::Persistence,
            Some(to_json(view)),
        );
        node.status = "busy".into();
        return node;
    }
    // Not committing and not answering: give it the whole timeout.
    let state = ask(&actor, PersistenceMsg::Inspect).await;
    leaf_asked(
        cell,
        "persistence",
        ActorKind::Persistence,
        state,
        Some(asked),
    )
}

async fn pool(ctx: &CoreContext, cell: &ActorCell) -> ActorNode {
    let actor: ActorRef<NotifierMsg> = cell.clone().into();
    let asked = Instant::now();
    let view = ask(&actor, NotifierMsg::Inspect).await;
    let mut node = leaf_asked(
        cell,
        "notifier-pool",
        ActorKind::NotifierPool,
        view.as_ref().map(to_json),
        Some(asked),
    );
    let factory_name = crate::notifier::factory_name(&ctx.names);
    let Some(factory) = cell
        .get_children()
        .into_iter()
        .find(|c| c.get_name().as_deref() == Some(factory_name.as_str()))
    else {
        return node;
    };
    let channels = view.map(|v| v.channels).unwrap_or_default();
    let statuses = futures::future::join_all(
        channels
            .iter()
            .map(|t| crate::notifier::worker_status_within(ctx, t, INSPECT_TIMEOUT)),
    )
    .await;
    let mut workers = Vec::with_capacity(channels.len());
    for (wid, (transport, status)) in channels.iter().zip(statuses).enumerate() {
        workers.push(ActorNode {
            id: format!("{}/w{wid}", factory.get_id()),
            name: format!("worker {transport}"),
            kind: ActorKind::NotifierWorker,
            status: if status.is_some() {
                "running"
            } else {
                "unresponsive"
            }
            .into(),
            state: status.map(to_json).unwrap_or(Value::Null),
            children: Vec::new(),
            children_total: 0,
            next_cursor: None,
            answer_ms: None,
        });
    }
    let queue = crate::notifier::factory_queue_depth(ctx).await;
    let mut factory_node = leaf(
        &factory,
        "workers",
        ActorKind::Factory,
        queue.map(|q| serde_json::json!({ "queued_jobs": q, "workers": channels.len() })),
    );
    factory_node.children_total = workers.len();
    factory_node.children = workers;
    node.children_total = 1;
    node.children = vec![factory_node];
    node
}

async fn router(cell: &ActorCell, page: &ChildQuery) -> ActorNode {
    let actor: ActorRef<RouterMsg> = cell.clone().into();
    let asked = Instant::now();
    let Some(answer) = ask(&actor, |r| RouterMsg::Inspect(page.clone(), r)).await else {
        return leaf(cell, "router", ActorKind::Router, None);
    };
    let mut node = leaf_asked(
        cell,
        "router",
        ActorKind::Router,
        Some(to_json(&answer.view)),
        Some(asked),
    );
    let mut calls = tokio::task::JoinSet::new();
    for (i, child) in answer.children.into_iter().enumerate() {
        calls.spawn(async move { (i, incident(child.id, &child.actor, false).await) });
    }
    let mut incidents: Vec<(usize, ActorNode)> = calls.join_all().await;
    incidents.sort_by_key(|(i, _)| *i);
    node.children = incidents.into_iter().map(|(_, n)| n).collect();
    node.children_total = answer.matching;
    node.next_cursor = answer.next_cursor.map(|id| id.0.to_string());
    node
}

/// One incident actor's node.
pub(crate) async fn incident(
    id: IncidentId,
    actor: &ActorRef<IncidentMsg>,
    full: bool,
) -> ActorNode {
    let asked = Instant::now();
    let state = ask(actor, |reply| IncidentMsg::Inspect { full, reply }).await;
    leaf_asked(
        &actor.get_cell(),
        &format!("incident {id}"),
        ActorKind::Incident,
        state,
        Some(asked),
    )
}

async fn heartbeats(cell: &ActorCell) -> ActorNode {
    let actor: ActorRef<SupervisorMsg> = cell.clone().into();
    let asked = Instant::now();
    let state = ask(&actor, SupervisorMsg::Inspect).await;
    let mut node = leaf_asked(cell, "heartbeats", ActorKind::Scheduler, state, Some(asked));
    let mut monitors = Vec::new();
    for c in cell.get_children() {
        let monitor: ActorRef<HeartbeatMsg> = c.clone().into();
        let asked = Instant::now();
        let status = ask(&monitor, HeartbeatMsg::Status).await;
        let name = status
            .as_ref()
            .map(|s| format!("heartbeat {}", s.name))
            .unwrap_or_else(|| "heartbeat".into());
        monitors.push(leaf_asked(
            &c,
            &name,
            ActorKind::Heartbeat,
            status.map(to_json),
            Some(asked),
        ));
    }
    monitors.sort_by(|a, b| a.name.cmp(&b.name));
    node.children_total = monitors.len();
    node.children = monitors;
    node
}

/// How an operator names one actor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActorSelector {
    /// `incident-42`: the actor of open incident 42.
    Incident(IncidentId),
    /// `0.42` (or a worker's `0.17/w2`).
    Id(String),
}

impl ActorSelector {
    pub fn parse(s: &str) -> Option<ActorSelector> {
        if let Some(n) = s.strip_prefix("incident-") {
            return n
                .parse()
                .ok()
                .map(|n| ActorSelector::Incident(IncidentId(n)));
        }
        let plain = s.split('/').next()?;
        let (node, pid) = plain.split_once('.')?;
        (node.parse::<u64>().is_ok() && pid.parse::<u64>().is_ok())
            .then(|| ActorSelector::Id(s.to_string()))
    }

    /// The ractor id of a local actor named by `0.N`.
    fn local_id(id: &str) -> Option<ractor::ActorId> {
        let pid = id.strip_prefix("0.")?.parse().ok()?;
        Some(ractor::ActorId::Local(pid))
    }
}

/// Finds the node `wanted` names, searching the tree without incidents
/// first, then the router's index. Incidents come in full.
pub(crate) async fn find(
    ctx: &CoreContext,
    root: &ActorCell,
    wanted: &ActorSelector,
) -> Option<ActorNode> {
    let router_ref = Names::lookup::<RouterMsg>(&ctx.names.router());
    let incident_id = match wanted {
        ActorSelector::Incident(id) => *id,
        ActorSelector::Id(id) => {
            // Most ids asked for are incidents': the router's index answers
            // those at once, without gathering the rest of the tree.
            let of_actor = match (ActorSelector::local_id(id), &router_ref) {
                (Some(actor_id), Some(router)) => {
                    ask(router, |r| RouterMsg::IncidentOfActor(actor_id, r))
                        .await
                        .flatten()
                }
                _ => None,
            };
            match of_actor {
                Some(incident_id) => incident_id,
                None => return find_in_skeleton(ctx, root, id).await,
            }
        }
    };
    let router = router_ref?;
    let actor = ask(&router, |r| RouterMsg::Lookup(incident_id, r))
        .await
        .flatten()?;
    Some(incident(incident_id, &actor, true).await)
}

/// An actor other than an incident's, found in the tree without incidents;
/// the router in full comes with its first page of incidents.
async fn find_in_skeleton(ctx: &CoreContext, root: &ActorCell, id: &str) -> Option<ActorNode> {
    let skeleton = tree(ctx, root, &ChildQuery::default()).await;
    let found = search(&skeleton, id)?;
    if found.kind == ActorKind::Router {
        let cell = root
            .get_children()
            .into_iter()
            .find(|c| c.get_id().to_string() == id)?;
        let first_page = ChildQuery {
            limit: DEFAULT_PAGE,
            ..ChildQuery::default()
        };
        return Some(router(&cell, &first_page).await);
    }
    Some(found.clone())
}

fn search<'a>(node: &'a ActorNode, id: &str) -> Option<&'a ActorNode> {
    if node.id == id {
        return Some(node);
    }
    node.children.iter().find_map(|c| search(c, id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn node(
        id: &str,
        kind: ActorKind,
        status: &str,
        state: Value,
        children: Vec<ActorNode>,
    ) -> ActorNode {
        ActorNode {
            id: id.into(),
            name: id.into(),
            kind,
            status: status.into(),
            state,
            children_total: children.len(),
            children,
            next_cursor: None,
            answer_ms: None,
        }
    }

    fn sample() -> ActorNode {
        let incidents = vec![
            node(
                "0.10",
                ActorKind::Incident,
                "running",
                json!({"status": "triggered"}),
                vec![],
            ),
            node(
                "0.11",
                ActorKind::Incident,
                "running",
                json!({"status": "acknowledged"}),
                vec![],
            ),
            node(
                "0.12",
                ActorKind::Incident,
                "unresponsive",
                Value::Null,
                vec![],
            ),
        ];
        node(
            "0.1",
            ActorKind::Supervisor,
            "running",
            Value::Null,
            vec![
                node("0.2", ActorKind::Persistence, "running", json!({}), vec![]),
                node("0.3", ActorKind::Router, "running", json!({}), incidents),
            ],
        )
    }

    fn ids(n: &ActorNode) -> Vec<String> {
        let mut out = vec![n.id.clone()];
        for c in &n.children {
            out.extend(ids(c));
        }
        out
    }

    #[test]
    fn prune_keeps_matches_and_their_ancestors() {
        let t = prune(sample(), Some(ActorKind::Incident), None).unwrap();
        assert_eq!(ids(&t), ["0.1", "0.3", "0.10", "0.11", "0.12"]);
        let t = prune(sample(), None, Some("acknowledged")).unwrap();
        assert_eq!(ids(&t), ["0.1", "0.3", "0.11"]);
        let t = prune(sample(), None, Some("unresponsive")).unwrap();
        assert_eq!(ids(&t), ["0.1", "0.3", "0.12"]);
        let t = prune(sample(), Some(ActorKind::Persistence), Some("running")).unwrap();
        assert_eq!(ids(&t), ["0.1", "0.2"]);
        assert!(prune(sample(), Some(ActorKind::Heartbeat), None).is_none());
        assert_eq!(prune(sample(), None, None).unwrap(), sample());
        let t = prune(sample(), None, Some("acknowledged")).unwrap();
        assert_eq!(
            t.children_total, 1,
            "the dropped persistence is not counted"
        );
        assert_eq!(t.children[0].children_total, 1);
    }

    #[test]
    fn selectors() {
        assert_eq!(
            ActorSelector::parse("incident-42"),
            Some(ActorSelector::Incident(IncidentId(42)))
        );
        assert_eq!(
            ActorSelector::parse("0.17"),
            Some(ActorSelector::Id("0.17".into()))
        );
        assert_eq!(
            ActorSelector::parse("0.17/w2"),
            Some(ActorSelector::Id("0.17/w2".into()))
        );
        assert_eq!(ActorSelector::parse("router"), None);
        assert_eq!(ActorSelector::parse("incident-x"), None);
        assert_eq!(
            ActorSelector::local_id("0.9"),
            Some(ractor::ActorId::Local(9))
        );
        assert!(ActorSelector::parse("..").is_none());
    }

    #[test]
    fn kinds_round_trip() {
        for k in ActorKind::ALL {
            assert_eq!(ActorKind::parse(k.as_str()), Some(k));
            assert_eq!(to_json(k), json!(k.as_str()));
        }
    }
}
