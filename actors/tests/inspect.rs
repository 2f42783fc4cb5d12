//! The live actor tree: every actor answers with its observable state, the
//! router pages its incidents by keyset with counts by status, a stuck
//! actor shows as unresponsive without holding the answer up, and an
//! operator's restart brings an incident back from its snapshot with its
//! timers.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use incident_actors::domain::{AlertStatus, Attribution, IncidentId, Interface};
use incident_actors::inspect::{ActorKind, ActorNode, ActorSelector, ChildQuery, INSPECT_TIMEOUT};
use incident_actors::time::Timestamp;
use incident_actors::SystemConfig;
use serde_json::json;

fn page(limit: usize) -> ChildQuery {
    ChildQuery {
        limit,
        ..ChildQuery::default()
    }
}

fn child(node: &ActorNode, kind: ActorKind) -> &ActorNode {
    node.children
        .iter()
        .find(|c| c.kind == kind)
        .unwrap_or_else(|| panic!("no {kind:?} under {}", node.name))
}

fn incident_ids(router: &ActorNode) -> Vec<u64> {
    router
        .children
        .iter()
        .map(|c| c.state["incident_id"].as_u64().expect("incident_id"))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_tree_shows_every_actor_with_its_state() {
    let h = start(SystemConfig::default()).await;
    let a = open_incident(&h.system, "A").await;
    let b = open_incident(&h.system, "B").await;
    h.system
        .ingest(alert("A", AlertStatus::Firing))
        .await
        .unwrap();
    h.system
        .acknowledge(b, Attribution::new("alice", Interface::Api))
        .await
        .unwrap();
    settle().await;

    let tree = h.system.actor_tree(&page(100)).await;
    assert_eq!(
        (tree.kind, tree.name.as_str()),
        (ActorKind::Supervisor, "lim")
    );
    assert_eq!(tree.status, "running");
    let kinds: Vec<ActorKind> = tree.children.iter().map(|c| c.kind).collect();
    assert_eq!(
        kinds,
        [
            ActorKind::Persistence,
            ActorKind::NotifierPool,
            ActorKind::Router,
            ActorKind::Scheduler
        ]
    );

    let persistence = child(&tree, ActorKind::Persistence);
    assert!(persistence.state["commits"].as_u64().unwrap() >= 3);
    assert_eq!(persistence.state["queued_writes"], json!(0));
    assert!(persistence.state["last_commit_ms"].is_number());

    let pool = child(&tree, ActorKind::NotifierPool);
    assert_eq!(pool.state["channels"], json!(["console"]));
    let factory = child(pool, ActorKind::Factory);
    let worker = child(factory, ActorKind::NotifierWorker);
    assert_eq!(worker.id, format!("{}/w0", factory.id));
    assert_eq!(worker.state["channel"], json!("console"));
    assert_eq!(
        worker.state["delivered"],
        json!(3),
        "a page per incident and B's acknowledged update"
    );
    assert_eq!(worker.state["next_retry"], json!(null));

    let router = child(&tree, ActorKind::Router);
    assert_eq!(router.state["index_size"], json!(2));
    assert_eq!(router.state["triggered"], json!(1));
    assert_eq!(router.state["acknowledged"], json!(1));
    assert_eq!(router.children_total, 2);
    assert_eq!(router.next_cursor, None);
    assert_eq!(incident_ids(router), [a.0, b.0]);

    let triggered = &router.children[0];
    assert_eq!(triggered.kind, ActorKind::Incident);
    assert_eq!(triggered.name, format!("incident {a}"));
    assert_eq!(triggered.state["status"], json!("triggered"));
    assert_eq!(triggered.state["alerts"], json!(1));
    assert_eq!(triggered.state["seen_count"], json!(2), "the repeat counts");
    assert_eq!(triggered.state["restarts"], json!(0));
    // The default policy: step 0 fired at T0, the next pass is due at T0 + 5 min.
    let timers = triggered.state["timers"].as_array().unwrap();
    assert_eq!(timers.len(), 1, "{timers:?}");
    assert_eq!(timers[0]["kind"], json!("escalation"));
    let deadline = Timestamp::parse_rfc3339(timers[0]["deadline"].as_str().unwrap()).unwrap();
    assert_eq!(deadline, T0.plus(Duration::from_secs(300)));
    let in_ms = timers[0]["in_ms"].as_i64().unwrap();
    assert!((299_000..=300_000).contains(&in_ms), "{in_ms}");

    let acked = &router.children[1];
    assert_eq!(acked.state["status"], json!("acknowledged"));
    assert_eq!(
        acked.state["timers"],
        json!([]),
        "an acknowledge disarms escalation"
    );

    assert_eq!(tree.count(), 1 + 1 + 3 + 3 + 1);
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_router_pages_its_incidents_by_keyset_and_filters_by_status() {
    let h = start(SystemConfig::default()).await;
    let mut opened = Vec::new();
    for n in 0..25 {
        opened.push(open_incident(&h.system, &format!("A{n}")).await);
    }
    for id in opened.iter().step_by(5) {
        h.system
            .acknowledge(*id, Attribution::new("alice", Interface::Api))
            .await
            .unwrap();
    }
    settle().await;

    let mut seen = Vec::new();
    let mut query = page(10);
    loop {
        let tree = h.system.actor_tree(&query).await;
        let router = child(&tree, ActorKind::Router);
        assert_eq!(router.children_total, 25);
        assert!(router.children.len() <= 10);
        seen.extend(incident_ids(router));
        match &router.next_cursor {
            Some(c) => query.after = Some(IncidentId(c.parse().unwrap())),
            None => break,
        }
    }
    assert_eq!(
        seen,
        opened.iter().map(|i| i.0).collect::<Vec<_>>(),
        "every incident once, in order"
    );

    let acked = h
        .system
        .actor_tree(&ChildQuery {
            status: Some(incident_actors::domain::IncidentStatus::Acknowledged),
            ..page(100)
        })
        .await;
    let router = child(&acked, ActorKind::Router);
    assert_eq!(router.children_total, 5);
    assert_eq!(router.state["acknowledged"], json!(5));
    assert!(router
        .children
        .iter()
        .all(|c| c.state["status"] == json!("acknowledged")));

    // A resolve leaves the index and the counts.
    h.system
        .resolve(opened[0], Attribution::new("alice", Interface::Api))
        .await
        .unwrap();
    settle().await;
    let tree = h.system.actor_tree(&page(0)).await;
    let router = child(&tree, ActorKind::Router);
    assert_eq!(router.state["index_size"], json!(24));
    assert_eq!(router.state["acknowledged"], json!(4));
    assert!(router.children.is_empty(), "limit 0: summary only");
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_stuck_actor_is_unresponsive_and_a_committing_one_busy() {
    let h = start(SystemConfig::default()).await;
    let a = open_incident(&h.system, "A").await;
    let b = open_incident(&h.system, "B").await;
    settle().await;

    // The database stalls: B's acknowledge waits in its commit, and with
    // it B's actor and the persistence actor.
    h.store.set_commit_delay(Some(Duration::from_secs(600)));
    let system = h.system.clone();
    let stuck = tokio::spawn(async move {
        system
            .acknowledge(b, Attribution::new("alice", Interface::Api))
            .await
    });
    settle().await;

    let started = tokio::time::Instant::now();
    let tree = h.system.actor_tree(&page(100)).await;
    assert!(
        started.elapsed() <= INSPECT_TIMEOUT + Duration::from_millis(100),
        "one timeout, not one per stuck actor: {:?}",
        started.elapsed()
    );
    // Persistence is inside the stalled commit: shown from what it
    // published, not waited for.
    let persistence = child(&tree, ActorKind::Persistence);
    assert_eq!(persistence.status, "busy");
    assert_eq!(persistence.state["committing"]["writes"], json!(1));
    assert!(
        persistence.state["commits"].as_u64().unwrap() >= 2,
        "the last figures"
    );
    let router = child(&tree, ActorKind::Router);
    assert_eq!(router.status, "running");
    let by_id: Vec<(String, String)> = router
        .children
        .iter()
        .map(|c| (c.name.clone(), c.status.clone()))
        .collect();
    assert_eq!(
        by_id,
        [
            (format!("incident {a}"), "running".to_string()),
            (format!("incident {b}"), "unresponsive".to_string())
        ]
    );
    h.store.set_commit_delay(None);
    tokio::time::sleep(Duration::from_secs(600)).await;
    // The caller gave up (its call timeout); the commit went through.
    assert!(stuck.await.unwrap().is_err());
    let b_now = h.system.live_incident(b).await.expect("open");
    assert_eq!(
        b_now.status,
        incident_actors::domain::IncidentStatus::Acknowledged
    );
    let tree = h.system.actor_tree(&page(100)).await;
    assert_eq!(child(&tree, ActorKind::Persistence).status, "running");
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_operator_restart_brings_the_incident_back_with_its_timers() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    let other = open_incident(&h.system, "B").await;
    settle().await;
    advance_minutes(1).await;

    let before = h
        .system
        .actor(&ActorSelector::Incident(id))
        .await
        .expect("running");
    assert_eq!(before.state["incident"]["id"], json!(id.0), "in full");
    let after = h
        .system
        .restart_incident_actor(id)
        .await
        .expect("restarted");
    assert_ne!(after.id, before.id, "a new actor");
    assert_eq!(after.state["restarts"], json!(1));
    assert_eq!(
        after.state["timers"][0]["deadline"],
        before.state["timers"][0]["deadline"]
    );
    assert_eq!(after.state["seen_count"], before.state["seen_count"]);

    // Found by its new actor id; the old one is gone.
    let by_id = h
        .system
        .actor(&ActorSelector::Id(after.id.clone()))
        .await
        .expect("found by actor id");
    assert_eq!(by_id.state["incident_id"], json!(id.0));
    assert!(h
        .system
        .actor(&ActorSelector::Id(before.id.clone()))
        .await
        .is_none());

    // An alert for it joins it (no duplicate incident), and its re-armed
    // escalation fires on time, with the untouched incident's.
    let again = h
        .system
        .ingest(alert("A", AlertStatus::Firing))
        .await
        .unwrap();
    assert_eq!(again.incident_id, Some(id));
    let pages = h.channel.count();
    advance_minutes(4).await;
    settle().await;
    assert_eq!(
        h.channel.count(),
        pages + 2,
        "both step timers fired at minute 5"
    );
    let ids: BTreeSet<IncidentId> = h
        .channel
        .delivered
        .lock()
        .unwrap()
        .iter()
        .skip(pages)
        .map(|(_, n)| n.incident.id)
        .collect();
    assert_eq!(ids, [id, other].into_iter().collect());

    assert!(h
        .system
        .restart_incident_actor(IncidentId(99))
        .await
        .is_err());
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_crashed_incident_shows_its_restart() {
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "A").await;
    settle().await;
    h.clock.panic_next(1);
    let _ = h
        .system
        .acknowledge(id, Attribution::new("alice", Interface::Api))
        .await;
    settle().await;
    let node = h
        .system
        .actor(&ActorSelector::Incident(id))
        .await
        .expect("restarted");
    assert_eq!(node.state["restarts"], json!(1));
    let tree = h.system.actor_tree(&page(10)).await;
    assert_eq!(
        child(&tree, ActorKind::Router).state["incident_restarts"],
        json!(1)
    );
    h.system.shutdown().await;
}
