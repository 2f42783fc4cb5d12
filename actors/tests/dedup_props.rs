//! Property tests of deduplication: the incident key an alert maps to
//! (`Alert::incident_key`, `domain::fingerprint`), and the router's dedup
//! index driven through the real system (memory store, tokio's paused
//! clock; the harness of `common`).
//!
//! The key: deterministic, independent of the order labels came in, equal
//! to the frozen algorithm written out independently here, blind to
//! everything but the labels (or the dedup key, when the sender gives one:
//! then the labels do not count either).
//!
//! The index: random sequences of batches of alerts (firing and resolved,
//! over a few label sets, with and without a dedup key; a batch is sent
//! concurrently, its alerts having distinct keys so their order does not
//! matter), acknowledgements, resolves by id and by dedup key, and time
//! passing. After every step: no key has two open incidents; every firing
//! alert is in exactly the one open incident of its key; the answers, the
//! store and a reference model agree; and the router's index (its page of
//! the actor tree, its counts, the live actors) agrees with the store.

mod common;

use std::collections::{BTreeMap, BTreeSet};

use common::*;
use incident_actors::domain::{
    Alert, AlertStatus, Attribution, Fingerprint, Incident, IncidentId, IncidentStatus,
    IngestAction, Interface, Labels,
};
use incident_actors::inspect::{ActorKind, ActorNode, ChildQuery};
use incident_actors::messages::CommandError;
use incident_actors::time::Timestamp;
use incident_actors::SystemConfig;
use proptest::prelude::*;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------- the key itself

/// Label names and values, often colliding, sometimes anything at all.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec!["alertname", "service", "model", "a", "ab", "b", ""])
            .prop_map(str::to_string),
        any::<String>(),
    ]
}

fn label_pairs() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::btree_map(text(), text(), 0..6)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>())
}

fn alert_with(labels: Labels) -> Alert {
    Alert {
        labels,
        annotations: Labels::new(),
        status: AlertStatus::Firing,
        starts_at: Timestamp(0),
        ends_at: None,
        source: "native".into(),
        dedup_key: None,
        extra: None,
    }
}

/// The documented algorithm (`domain::fingerprint`), written out again:
/// 64-bit FNV-1a over each label sorted by name, name 0xFF value 0xFF; a
/// dedup key is 0xFE then its bytes.
fn reference_fnv(pairs: &[(String, String)], dedup: Option<&str>) -> u64 {
    let mut h: u64 = 0xcbf29ce484222325;
    let mut byte = |b: u8| {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100000001b3);
    };
    match dedup {
        Some(key) => {
            byte(0xfe);
            key.bytes().for_each(&mut byte);
        }
        None => {
            let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            for (name, value) in sorted {
                name.bytes().for_each(&mut byte);
                byte(0xff);
                value.bytes().for_each(&mut byte);
                byte(0xff);
            }
        }
    }
    h
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    /// The same labels, in whatever order they were inserted, give the same
    /// key and fingerprint, every time; and it is the documented FNV-1a.
    #[test]
    fn the_key_ignores_label_order_and_is_the_documented_hash(
        (pairs, shuffled) in label_pairs().prop_flat_map(|p| (Just(p.clone()), Just(p).prop_shuffle())),
    ) {
        let a = alert_with(pairs.iter().cloned().collect());
        let mut labels = Labels::new();
        for (k, v) in shuffled.iter().rev() {
            labels.insert(k.clone(), v.clone());
        }
        let b = alert_with(labels);
        prop_assert_eq!(a.incident_key(), b.incident_key());
        prop_assert_eq!(a.incident_key(), a.clone().incident_key());
        prop_assert_eq!(a.fingerprint(), b.fingerprint());
        prop_assert_eq!(a.incident_key(), a.fingerprint(), "no dedup key: the labels decide");
        prop_assert_eq!(a.fingerprint().0, reference_fnv(&pairs, None));
        // Written and read back as 16 hex digits.
        let text = a.fingerprint().to_string();
        prop_assert_eq!(text.len(), 16);
        prop_assert_eq!(text.parse::<Fingerprint>().unwrap(), a.fingerprint());
    }

    /// Only the labels decide the key: annotations, status, times, source
    /// and the source's extras do not. With a dedup key only the key
    /// decides: alerts with any labels at all share it.
    #[test]
    fn the_key_depends_on_labels_or_the_dedup_key_alone(
        pairs in label_pairs(),
        other in label_pairs(),
        annotations in label_pairs(),
        resolved in any::<bool>(),
        starts in any::<i64>(),
        ends in prop::option::of(any::<i64>()),
        source in text(),
        extra in prop::option::of(text()),
        dedup in text(),
    ) {
        let plain = alert_with(pairs.iter().cloned().collect());
        let mut varied = plain.clone();
        varied.annotations = annotations.into_iter().collect();
        varied.status = if resolved { AlertStatus::Resolved } else { AlertStatus::Firing };
        varied.starts_at = Timestamp(starts);
        varied.ends_at = ends.map(Timestamp);
        varied.source = source;
        varied.extra = extra;
        prop_assert_eq!(plain.incident_key(), varied.incident_key());
        prop_assert_eq!(plain.fingerprint(), varied.fingerprint());

        let mut grouped = plain.clone();
        grouped.dedup_key = Some(dedup.clone());
        let mut other_labels = varied.clone();
        other_labels.labels = other.iter().cloned().collect();
        other_labels.dedup_key = Some(dedup.clone());
        prop_assert_eq!(grouped.incident_key(), other_labels.incident_key());
        prop_assert_eq!(grouped.incident_key(), Fingerprint::of_dedup_key(&dedup));
        prop_assert_eq!(grouped.incident_key().0, reference_fnv(&[], Some(&dedup)));
        // The alert keeps its own identity inside the incident.
        prop_assert_eq!(grouped.fingerprint(), plain.fingerprint());
        if other != pairs {
            prop_assert_ne!(
                other_labels.fingerprint(), grouped.fingerprint(),
                "different label sets, one fingerprint (a 64-bit collision?)"
            );
            let mut ungrouped = other_labels.clone();
            ungrouped.dedup_key = None;
            prop_assert_ne!(
                ungrouped.incident_key(), plain.incident_key(),
                "different label sets, one key (a 64-bit collision?)"
            );
        }
    }
}

// ------------------------------------------------- the index, for real

/// One alert of the universe: label set `which` (3 names × 2 instances),
/// in group `group` (a dedup key) or none.
#[derive(Clone, Copy, Debug)]
struct Send {
    which: u8,
    group: Option<u8>,
    firing: bool,
    /// A changing annotation: repeats still dedup.
    value: u8,
}

impl Send {
    fn alert(self) -> Alert {
        let mut labels = Labels::new();
        labels.insert("alertname".into(), format!("A{}", self.which % 3));
        labels.insert("instance".into(), format!("i{}", self.which / 3));
        labels.insert("service".into(), "chat".into());
        let mut annotations = Labels::new();
        annotations.insert("value".into(), self.value.to_string());
        Alert {
            labels,
            annotations,
            status: if self.firing {
                AlertStatus::Firing
            } else {
                AlertStatus::Resolved
            },
            starts_at: T0,
            ends_at: None,
            source: "native".into(),
            dedup_key: self.group.map(group_name),
            extra: None,
        }
    }
}

fn group_name(g: u8) -> String {
    format!("g{g}")
}

#[derive(Clone, Debug)]
enum Op {
    /// Sent concurrently; their keys are distinct.
    Batch(Vec<Send>),
    /// The `n`th open incident (by id, modulo how many are open).
    Acknowledge(usize),
    Resolve(usize),
    /// PagerDuty's way: by the sender's dedup key.
    AcknowledgeByKey(u8),
    ResolveByKey(u8),
    /// Minutes pass (escalation steps fire meanwhile; the default policy
    /// pages every 5 minutes). Kept short: every second of virtual time
    /// wakes the system's periodic jobs.
    Advance(u64),
}

fn send() -> impl Strategy<Value = Send> {
    (
        0u8..6,
        prop::option::weighted(0.5, 0u8..2),
        prop::bool::weighted(0.65),
        0u8..3,
    )
        .prop_map(|(which, group, firing, value)| Send {
            which,
            group,
            firing,
            value,
        })
}

fn batch() -> impl Strategy<Value = Vec<Send>> {
    prop::collection::vec(send(), 1..=4).prop_map(|sends| {
        let mut keys = BTreeSet::new();
        sends
            .into_iter()
            .filter(|s| keys.insert(s.alert().incident_key()))
            .collect()
    })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => batch().prop_map(Op::Batch),
        1 => any::<usize>().prop_map(Op::Acknowledge),
        1 => any::<usize>().prop_map(Op::Resolve),
        1 => (0u8..2).prop_map(Op::AcknowledgeByKey),
        1 => (0u8..2).prop_map(Op::ResolveByKey),
        1 => prop::sample::select(vec![0u64, 1, 5]).prop_map(Op::Advance),
    ]
}

/// An open incident as the model has it.
#[derive(Clone, Debug)]
struct OpenModel {
    id: IncidentId,
    status: IncidentStatus,
    /// Alert fingerprint → firing.
    alerts: BTreeMap<Fingerprint, bool>,
}

#[derive(Default, Debug)]
struct Model {
    /// Incident key → its open incident.
    open: BTreeMap<Fingerprint, OpenModel>,
    closed: BTreeSet<IncidentId>,
    max_id: u64,
}

impl Model {
    fn nth_open(&self, n: usize) -> Option<(Fingerprint, IncidentId)> {
        let mut ids: Vec<(IncidentId, Fingerprint)> =
            self.open.iter().map(|(k, o)| (o.id, *k)).collect();
        ids.sort();
        (!ids.is_empty()).then(|| {
            let (id, key) = ids[n % ids.len()];
            (key, id)
        })
    }

    fn close(&mut self, key: Fingerprint) {
        if let Some(o) = self.open.remove(&key) {
            self.closed.insert(o.id);
        }
    }
}

fn by() -> Attribution {
    Attribution::new("alice", Interface::Api)
}

/// What the model expects an alert to do; updates it. `Created` leaves the
/// id to the caller (the order of a concurrent batch decides it).
fn expect_send(model: &mut Model, alert: &Alert) -> (IngestAction, Option<IncidentId>) {
    let key = alert.incident_key();
    let fp = alert.fingerprint();
    let firing = alert.status == AlertStatus::Firing;
    let Some(open) = model.open.get_mut(&key) else {
        return if firing {
            (IngestAction::Created, None)
        } else {
            (IngestAction::Unchanged, None)
        };
    };
    let id = open.id;
    let action = match open.alerts.get(&fp) {
        None if !firing => IngestAction::Unchanged,
        Some(held) if *held == firing => IngestAction::Unchanged,
        _ => {
            open.alerts.insert(fp, firing);
            if open.alerts.values().all(|f| !f) {
                model.close(key);
                IngestAction::Resolved
            } else {
                IngestAction::Joined
            }
        }
    };
    (action, Some(id))
}

fn router_node(tree: &ActorNode) -> Option<&ActorNode> {
    tree.children.iter().find(|c| c.kind == ActorKind::Router)
}

/// The invariants, once the system has settled.
async fn check(h: &Harness, model: &Model) -> Result<(), TestCaseError> {
    let open: Vec<Incident> = h.store.load_open_incidents().await.unwrap();
    // One open incident per key, and each holds only alerts of its key.
    let mut keys = BTreeSet::new();
    for i in &open {
        prop_assert!(
            keys.insert(i.fingerprint),
            "two open incidents for key {}",
            i.fingerprint
        );
        for e in i.alerts.values() {
            prop_assert_eq!(e.alert.incident_key(), i.fingerprint);
        }
        prop_assert!(
            i.alerts
                .values()
                .any(|e| e.alert.status == AlertStatus::Firing),
            "incident {} is open with no firing alert",
            i.id
        );
    }
    // Every alert the model has firing is in exactly one open incident:
    // the one of its key.
    for (key, o) in &model.open {
        for (fp, firing) in &o.alerts {
            if !firing {
                continue;
            }
            let holders: Vec<_> = open
                .iter()
                .filter(|i| {
                    i.alerts.get(fp).is_some_and(|e| {
                        e.alert.status == AlertStatus::Firing && e.alert.incident_key() == *key
                    })
                })
                .map(|i| i.id)
                .collect();
            prop_assert_eq!(holders, vec![o.id], "firing alert {} of key {}", fp, key);
        }
    }
    // The store is the model.
    let stored: BTreeMap<Fingerprint, (IncidentId, IncidentStatus, BTreeMap<Fingerprint, bool>)> =
        open.iter()
            .map(|i| {
                let alerts = i
                    .alerts
                    .iter()
                    .map(|(fp, e)| (*fp, e.alert.status == AlertStatus::Firing))
                    .collect();
                (i.fingerprint, (i.id, i.status, alerts))
            })
            .collect();
    let modelled: BTreeMap<_, _> = model
        .open
        .iter()
        .map(|(k, o)| (*k, (o.id, o.status, o.alerts.clone())))
        .collect();
    prop_assert_eq!(&stored, &modelled, "the store differs from the model");
    for id in &model.closed {
        let i = h.store.get_incident(*id).await.unwrap();
        prop_assert_eq!(i.map(|i| i.status), Some(IncidentStatus::Resolved));
        prop_assert!(
            h.system.live_incident(*id).await.is_none(),
            "incident {} resolved but live",
            id
        );
    }
    // The router's index is the store's open set.
    prop_assert_eq!(h.system.open_count().await.unwrap(), open.len());
    let tree = h
        .system
        .actor_tree(&ChildQuery {
            limit: 1000,
            ..ChildQuery::default()
        })
        .await;
    let router = router_node(&tree).expect("the router is in the tree");
    let mut by_id: Vec<(u64, String)> = open
        .iter()
        .map(|i| (i.id.0, i.status.as_str().to_string()))
        .collect();
    by_id.sort();
    let children: Vec<(u64, String)> = router
        .children
        .iter()
        .map(|c| {
            (
                c.state["incident_id"].as_u64().unwrap_or(0),
                c.state["status"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    prop_assert_eq!(
        &children,
        &by_id,
        "the router's page differs from the store"
    );
    prop_assert_eq!(router.children_total, open.len());
    prop_assert_eq!(router.state["index_size"].as_u64(), Some(open.len() as u64));
    let acknowledged = open
        .iter()
        .filter(|i| i.status == IncidentStatus::Acknowledged)
        .count();
    prop_assert_eq!(
        router.state["acknowledged"].as_u64(),
        Some(acknowledged as u64)
    );
    // Each live actor holds what the store has (bar repeat counters).
    for i in &open {
        let live = h.system.live_incident(i.id).await;
        prop_assert!(
            live.is_some(),
            "incident {} open in the store, no actor",
            i.id
        );
        let live = live.unwrap();
        prop_assert_eq!(live.version, i.version);
        prop_assert_eq!(live.status, i.status);
        prop_assert_eq!(live.fingerprint, i.fingerprint);
        let statuses = |x: &Incident| -> Vec<(Fingerprint, AlertStatus)> {
            x.alerts
                .iter()
                .map(|(fp, e)| (*fp, e.alert.status))
                .collect()
        };
        prop_assert_eq!(statuses(&live), statuses(i));
    }
    Ok(())
}

async fn step(h: &Harness, model: &mut Model, op: Op) -> Result<(), TestCaseError> {
    match op {
        Op::Batch(sends) => {
            let alerts: Vec<Alert> = sends.iter().map(|s| s.alert()).collect();
            let answers = futures::future::join_all(alerts.iter().map(|a| {
                let system = h.system.clone();
                let a = a.clone();
                async move { system.ingest(a).await }
            }))
            .await;
            let mut created = BTreeSet::new();
            for (alert, answer) in alerts.iter().zip(answers) {
                let answer = answer.map_err(|e| TestCaseError::fail(format!("ingest: {e}")))?;
                let (action, id) = expect_send(model, alert);
                prop_assert_eq!(answer.action, action, "{:?}", alert.labels);
                prop_assert_eq!(answer.fingerprint, alert.fingerprint());
                match id {
                    Some(id) => prop_assert_eq!(answer.incident_id, Some(id)),
                    None if action == IngestAction::Created => {
                        let id = answer.incident_id.expect("a created incident has an id");
                        prop_assert!(id.0 > model.max_id, "id {} reused", id);
                        prop_assert!(created.insert(id));
                        model.open.insert(
                            alert.incident_key(),
                            OpenModel {
                                id,
                                status: IncidentStatus::Triggered,
                                alerts: BTreeMap::from([(alert.fingerprint(), true)]),
                            },
                        );
                    }
                    None => prop_assert_eq!(answer.incident_id, None),
                }
            }
            if let Some(max) = created.iter().max() {
                model.max_id = max.0;
            }
        }
        Op::Acknowledge(n) => {
            if let Some((key, id)) = model.nth_open(n) {
                let i = h.system.acknowledge(id, by()).await.unwrap();
                prop_assert_eq!(i.status, IncidentStatus::Acknowledged);
                model.open.get_mut(&key).unwrap().status = IncidentStatus::Acknowledged;
            }
        }
        Op::Resolve(n) => {
            if let Some((key, id)) = model.nth_open(n) {
                let i = h.system.resolve(id, by()).await.unwrap();
                prop_assert_eq!(i.status, IncidentStatus::Resolved);
                model.close(key);
            }
        }
        Op::AcknowledgeByKey(g) | Op::ResolveByKey(g) => {
            let resolve = matches!(op, Op::ResolveByKey(_));
            let name = group_name(g);
            let key = Fingerprint::of_dedup_key(&name);
            let answer = if resolve {
                h.system.resolve_by_key(&name, by()).await
            } else {
                h.system.acknowledge_by_key(&name, by()).await
            };
            match (answer, model.open.get_mut(&key)) {
                (Ok(i), Some(o)) => {
                    prop_assert_eq!(i.id, o.id);
                    if resolve {
                        model.close(key);
                    } else {
                        o.status = IncidentStatus::Acknowledged;
                    }
                }
                (Err(CommandError::NoOpenIncident(k)), None) => prop_assert_eq!(k, key),
                (got, want) => {
                    prop_assert!(false, "by key {name}: {got:?}, the model has {want:?}")
                }
            }
        }
        Op::Advance(minutes) => advance_minutes(minutes).await,
    }
    settle().await;
    check(h, model).await
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    rt.block_on(async {
        let h = start(SystemConfig::default()).await;
        let mut model = Model::default();
        let mut result = Ok(());
        for op in ops {
            result = step(&h, &mut model, op).await;
            if result.is_err() {
                break;
            }
        }
        h.system.shutdown().await;
        result
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(64)))]

    #[test]
    fn one_open_incident_per_key_and_the_index_agrees_with_the_store(
        ops in prop::collection::vec(op(), 1..30),
    ) {
        run(ops)?;
    }
}

#[test]
fn the_reference_hash_matches_the_pinned_vectors() {
    // Guards the reference itself (`domain::fingerprint`'s pinned vectors).
    let pairs = vec![
        ("name".to_string(), "garland, briggs".to_string()),
        ("fear".to_string(), "love is not enough".to_string()),
    ];
    assert_eq!(reference_fnv(&pairs, None), 5799056148416392346);
    assert_eq!(
        format!("{:016x}", reference_fnv(&[], Some("srv01/mysql"))),
        "84a78725c01b0320"
    );
}
