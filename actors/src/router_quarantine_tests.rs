//! The router's quarantine, on tokio's paused clock: an incident whose
//! actor panics on every message (`incident::poison`, compiled into these
//! unit tests only) is restarted up to the restart intensity, then
//! quarantined; the router, every other incident and their timers keep
//! working, and an operator's restart brings it back.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;

use crate::domain::{
    Alert, AlertStatus, Attribution, IncidentId, IncidentStatus, Interface, Labels, RestartPolicy,
};
use crate::incident::poison;
use crate::inspect::{ActorKind, ChildQuery};
use crate::memory_store::MemoryStore;
use crate::messages::{CommandError, IngestError};
use crate::ports::{Channel, ChannelError, Delivered, Notification, Store};
use crate::time::{Timestamp, TokioClock};
use crate::{spawn_system, System, SystemConfig, SystemDeps};

const T0: Timestamp = Timestamp(1_800_000_000_000);

/// Pages delivered, by incident.
#[derive(Default)]
struct Pages(Mutex<Vec<IncidentId>>);

impl Pages {
    fn of(&self, id: IncidentId) -> usize {
        self.0.lock().unwrap().iter().filter(|i| **i == id).count()
    }
}

#[async_trait]
impl Channel for Pages {
    fn name(&self) -> &str {
        "console"
    }
    async fn deliver(&self, n: &Notification) -> Result<Delivered, ChannelError> {
        if n.event.is_page() {
            self.0.lock().unwrap().push(n.incident.id);
        }
        Ok(Delivered::default())
    }
}

fn alert(name: &str) -> Alert {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), name.into());
    labels.insert("service".into(), "chat".into());
    Alert {
        labels,
        annotations: Labels::new(),
        status: AlertStatus::Firing,
        starts_at: T0,
        ends_at: None,
        source: "native".into(),
        dedup_key: None,
        extra: None,
    }
}

async fn minutes(m: u64) {
    tokio::time::sleep(Duration::from_secs(m * 60)).await;
}

async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

async fn open(system: &System, name: &str) -> IncidentId {
    system
        .ingest(alert(name))
        .await
        .unwrap()
        .incident_id
        .unwrap()
}

/// A system on a memory store and the test clock, paging `Pages`.
async fn start(config: SystemConfig) -> (System, Arc<MemoryStore>, Arc<Pages>) {
    let store = Arc::new(MemoryStore::new());
    let pages = Arc::new(Pages::default());
    let system = spawn_system(
        config,
        SystemDeps {
            store: store.clone(),
            clock: Arc::new(TokioClock::starting_at(T0)),
            channels: vec![pages.clone()],
        },
    )
    .await
    .unwrap();
    (system, store, pages)
}

fn router_state(tree: &crate::inspect::ActorNode) -> serde_json::Value {
    tree.children
        .iter()
        .find(|c| c.kind == ActorKind::Router)
        .expect("a router")
        .state
        .clone()
}

#[tokio::test(start_paused = true)]
async fn an_incident_that_panics_on_every_message_is_quarantined_and_nothing_else_stops() {
    let (system, store, pages) = start(SystemConfig {
        restart: RestartPolicy {
            max_restarts: 2,
            within: Duration::from_secs(60),
        },
        ..SystemConfig::default()
    })
    .await;
    let root = system.ctx.names.root();
    let poisoned = open(&system, "Poisoned").await;
    let healthy = open(&system, "Healthy").await;
    settle().await;
    assert_eq!((pages.of(poisoned), pages.of(healthy)), (1, 1));
    let router = system.router_id();

    poison::set(&root, poisoned, true);
    // Each alert crashes the actor; the router restarts it from its
    // snapshot twice, and the third failure quarantines it.
    for _ in 0..3 {
        let r = system.ingest(alert("Poisoned")).await;
        assert!(
            r.is_err(),
            "a crashing incident acknowledges nothing: {r:?}"
        );
        settle().await;
    }
    assert_eq!(system.router_id(), router, "the router did not fail");
    assert!(system.is_running());
    assert!(system.live_incident(poisoned).await.is_none(), "no actor");

    // Visible: refused with a reason, counted, in the tree, on the timeline.
    match system.ingest(alert("Poisoned")).await {
        Err(IngestError::Unavailable(why)) => {
            assert!(why.contains("quarantined"), "{why}");
            assert!(why.contains("poisoned"), "the last error is given: {why}");
        }
        other => panic!("refused while quarantined: {other:?}"),
    }
    let by = Attribution::new("alice", Interface::Api);
    assert!(matches!(
        system.acknowledge(poisoned, by.clone()).await,
        Err(CommandError::Unavailable(why)) if why.contains("quarantined")
    ));
    assert_eq!(system.metrics().quarantined.get(), 1);
    let tree = system.actor_tree(&ChildQuery::default()).await;
    let q = &router_state(&tree)["quarantined"];
    assert_eq!(q[0]["incident_id"], poisoned.0, "{q}");
    assert_eq!(q[0]["failures"], 3, "{q}");
    let timeline = store.timeline(poisoned).await.unwrap();
    let note = timeline
        .iter()
        .find(|e| e.kind.name() == "note_added")
        .expect("the quarantine is on the timeline");
    assert!(format!("{:?}", note.kind).contains("quarantined"));
    // The store still has it open: it is not resolved nor lost.
    let stored = store.get_incident(poisoned).await.unwrap().unwrap();
    assert_eq!(stored.status, IncidentStatus::Triggered);

    // Everything else keeps working: the healthy incident escalates on
    // time, takes commands, and new alerts open new incidents.
    minutes(5).await;
    settle().await;
    assert_eq!(
        pages.of(healthy),
        2,
        "the healthy incident's step at minute 5"
    );
    system.acknowledge(healthy, by.clone()).await.unwrap();
    let new = open(&system, "Fresh").await;
    assert_ne!(new, poisoned);
    assert_eq!(pages.of(poisoned), 1, "no escalation runs for it");

    // Fixed (here: no longer poisoned), an operator restarts it.
    poison::set(&root, poisoned, false);
    system.restart_incident_actor(poisoned).await.unwrap();
    assert_eq!(system.metrics().quarantined.get(), 0);
    let joined = system.ingest(alert("Poisoned")).await.unwrap();
    assert_eq!(
        joined.incident_id,
        Some(poisoned),
        "back, and alerts join it"
    );
    settle().await;
    assert!(
        pages.of(poisoned) >= 2,
        "its overdue escalation step fires again"
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_incident_that_fails_while_the_store_is_down_comes_back_when_it_answers() {
    let (system, store, _pages) = start(SystemConfig::default()).await;
    let root = system.ctx.names.root();
    let id = open(&system, "Unlucky").await;
    settle().await;
    let router = system.router_id();

    // It crashes while its snapshot cannot be read.
    store.set_failing(true);
    poison::set(&root, id, true);
    assert!(system.ingest(alert("Unlucky")).await.is_err());
    settle().await;
    poison::set(&root, id, false);
    assert_eq!(system.router_id(), router, "the router did not fail");
    assert!(system.is_running());
    match system.ingest(alert("Unlucky")).await {
        Err(IngestError::Unavailable(why)) => assert!(why.contains("restarting"), "{why}"),
        other => panic!("refused while its snapshot cannot be read: {other:?}"),
    }
    assert_eq!(system.metrics().quarantined.get(), 0, "not quarantined");

    // The store answers again: the router brings it back by itself.
    store.set_failing(false);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        system.live_incident(id).await.is_some(),
        "back from its snapshot"
    );
    let joined = system.ingest(alert("Unlucky")).await.unwrap();
    assert_eq!(joined.incident_id, Some(id), "no duplicate was opened");
    system.shutdown().await;
}
