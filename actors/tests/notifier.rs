//! The notifier pool on tokio's paused clock, with the in-memory store and
//! scripted channels: pages are recorded pending in the commit that fires
//! them and moved forward by the pool (delivered, retried with backoff,
//! failed, cancelled); a slow channel never delays another, each being
//! served by a factory worker of its own; a restart sends what is still
//! pending and nothing already delivered, and so does a crashed worker's
//! replacement; updates land on the page they follow up; the rate limit
//! spaces sends.

mod common;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use incident_actors::domain::{
    AlertStatus, Attribution, Delivery, DeliveryKey, DeliveryStatus, EscalationPolicy,
    EscalationStep, IncidentId, Interface, NotificationEvent, Recipient, RestartPolicy, Target,
};
use incident_actors::memory_store::MemoryStore;
use incident_actors::notifier::NotifierSettings;
use incident_actors::ports::{Channel, ChannelError, Delivered, Notification, RateLimit};
use incident_actors::time::Timestamp;
use incident_actors::{spawn_system, System, SystemConfig, SystemDeps};

// ---------------------------------------------------------------- fixtures

/// What one attempt of a scripted channel does.
#[derive(Clone, Copy, Debug)]
enum Attempt {
    Deliver,
    /// A failure that may pass (retried).
    Fail,
    /// Refused for good (not retried).
    Refuse,
}

/// A channel that follows a script: the first attempts do what `script`
/// says, later ones what `then` says. It records every call with its time
/// (the notification's `at`, on the test clock) and what it delivered;
/// pages delivered get `page_ref` as their external reference.
struct Scripted {
    name: String,
    script: Mutex<VecDeque<Attempt>>,
    then: Attempt,
    latency: Duration,
    rate_limit: Option<RateLimit>,
    page_ref: Option<String>,
    calls: Mutex<Vec<(Timestamp, Notification)>>,
    delivered: Mutex<Vec<(Timestamp, Notification)>>,
}

impl Scripted {
    fn new(name: &str) -> Self {
        Scripted {
            name: name.to_string(),
            script: Mutex::new(VecDeque::new()),
            then: Attempt::Deliver,
            latency: Duration::ZERO,
            rate_limit: None,
            page_ref: None,
            calls: Mutex::new(Vec::new()),
            delivered: Mutex::new(Vec::new()),
        }
    }

    fn script(self, first: &[Attempt], then: Attempt) -> Self {
        Scripted {
            script: Mutex::new(first.iter().copied().collect()),
            then,
            ..self
        }
    }

    fn slow(self, latency: Duration) -> Self {
        Scripted { latency, ..self }
    }

    fn limited(self, limit: RateLimit) -> Self {
        Scripted {
            rate_limit: Some(limit),
            ..self
        }
    }

    fn with_page_ref(self, r: &str) -> Self {
        Scripted {
            page_ref: Some(r.to_string()),
            ..self
        }
    }

    fn calls(&self) -> Vec<(Timestamp, Notification)> {
        self.calls.lock().unwrap().clone()
    }

    fn delivered(&self) -> Vec<(Timestamp, Notification)> {
        self.delivered.lock().unwrap().clone()
    }

    /// Milliseconds since T0 of every call.
    fn call_times(&self) -> Vec<i64> {
        self.calls().iter().map(|(at, _)| at.0 - T0.0).collect()
    }
}

#[async_trait]
impl Channel for Scripted {
    fn name(&self) -> &str {
        &self.name
    }

    fn rate_limit(&self) -> RateLimit {
        self.rate_limit.unwrap_or_default()
    }

    async fn deliver(&self, n: &Notification) -> Result<Delivered, ChannelError> {
        self.calls.lock().unwrap().push((n.at, n.clone()));
        let attempt = self.script.lock().unwrap().pop_front().unwrap_or(self.then);
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let channel = self.name.clone();
        match attempt {
            Attempt::Deliver => {
                self.delivered.lock().unwrap().push((n.at, n.clone()));
                Ok(Delivered {
                    external_ref: self.page_ref.clone().filter(|_| n.event.is_page()),
                })
            }
            Attempt::Fail => Err(ChannelError::Failed {
                channel,
                message: "HTTP 503".into(),
            }),
            Attempt::Refuse => Err(ChannelError::Refused {
                channel,
                message: "HTTP 404 no such channel".into(),
            }),
        }
    }
}

/// One step, fired once, paging `targets`: exactly one page per target
/// and incident, whatever time the test lets pass.
fn one_page(targets: &[&str]) -> EscalationPolicy {
    EscalationPolicy {
        name: "default".into(),
        steps: vec![EscalationStep {
            delay: Duration::from_secs(5 * 60),
            targets: targets
                .iter()
                .map(|t| Target::Channel(t.to_string()))
                .collect(),
        }],
        repeat: 0,
        ack_timeout: None,
    }
}

fn hook() -> Recipient {
    Recipient::Webhook {
        name: "hook".into(),
    }
}

/// The single-page policy to `targets`, with a `hook` channel (a webhook,
/// delivered by the channel named `webhook:hook`) besides `console`.
fn config(targets: &[&str]) -> SystemConfig {
    let mut config = SystemConfig {
        policy: one_page(targets),
        ..SystemConfig::default()
    };
    config
        .directory
        .channels
        .insert("hook".into(), vec![hook()]);
    config
}

fn settings(max_attempts: u32, max_in_flight: usize) -> NotifierSettings {
    NotifierSettings {
        max_attempts,
        max_in_flight,
        ..NotifierSettings::default()
    }
}

async fn spawn(
    config: SystemConfig,
    store: &Arc<MemoryStore>,
    clock: &Arc<TestClock>,
    channels: &[&Arc<Scripted>],
) -> System {
    spawn_system(
        config,
        SystemDeps {
            store: store.clone(),
            clock: clock.clone(),
            channels: channels
                .iter()
                .map(|c| (*c).clone() as Arc<dyn Channel>)
                .collect(),
        },
    )
    .await
    .expect("system starts")
}

/// The key of the first page of incident `id` to `to` through `target`:
/// keyed by the seq of its step's `notified` event.
async fn page_key(
    store: &MemoryStore,
    id: IncidentId,
    target: &str,
    to: &Recipient,
) -> DeliveryKey {
    let seq = store
        .timeline(id)
        .await
        .expect("timeline")
        .iter()
        .find(|e| e.kind.name() == "notified")
        .expect("a notified event")
        .seq;
    DeliveryKey::page_fired(id, seq, 0, 0, &Target::Channel(target.into()), to)
}

async fn rows(store: &MemoryStore, id: IncidentId) -> Vec<Delivery> {
    store.deliveries(id).await.expect("deliveries")
}

async fn row(store: &MemoryStore, key: &DeliveryKey) -> Delivery {
    let id = IncidentId(key.0.split('/').next().unwrap().parse().unwrap());
    rows(store, id)
        .await
        .into_iter()
        .find(|d| &d.key == key)
        .unwrap_or_else(|| panic!("no delivery {key}"))
}

fn alice() -> Attribution {
    Attribution::new("alice", Interface::Api)
}

async fn sleep_secs(s: u64) {
    tokio::time::sleep(Duration::from_secs(s)).await;
}

// ------------------------------------------------------------------ tests

#[tokio::test(start_paused = true)]
async fn a_page_is_recorded_pending_in_its_commit_then_delivered() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(
        Scripted::new("console")
            .slow(Duration::from_secs(2))
            .with_page_ref("msg-1"),
    );
    let system = spawn(config(&["console"]), &store, &clock, &[&console]).await;

    let id = open_incident(&system, "Down").await;
    // The ingest is answered once its commit is done: one commit, which
    // holds the incident and its page, pending while the channel sends.
    assert_eq!(
        store.commits(),
        1,
        "one commit for the incident and its page"
    );
    let key = page_key(&store, id, "console", &Recipient::Console).await;
    let pending = rows(&store, id).await;
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0].key, key);
    assert_eq!(
        (pending[0].status, pending[0].attempts),
        (DeliveryStatus::Pending, 0)
    );
    assert_eq!(pending[0].recipient, Recipient::Console);
    assert!(pending[0].event.is_page());
    assert_eq!(store.pending_deliveries().await.unwrap().len(), 1);

    sleep_secs(3).await;
    let d = row(&store, &key).await;
    assert_eq!(
        (d.status, d.attempts, d.external_ref.as_deref()),
        (DeliveryStatus::Delivered, 1, Some("msg-1"))
    );
    assert_eq!(d.updated_at, T0.plus(Duration::from_secs(2)));
    assert!(store.pending_deliveries().await.unwrap().is_empty());
    let sent = console.delivered();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].1.key, key);
    assert_eq!(sent[0].1.incident.id, id);
    assert_eq!(sent[0].1.thread, None);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_channel_is_retried_with_backoff_until_delivered() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(
        Scripted::new("console").script(&[Attempt::Fail, Attempt::Fail], Attempt::Deliver),
    );
    let system = spawn(config(&["console"]), &store, &clock, &[&console]).await;
    let id = open_incident(&system, "Flaky").await;
    settle().await;
    let key = page_key(&store, id, "console", &Recipient::Console).await;
    let d = row(&store, &key).await;
    assert_eq!(
        (d.status, d.attempts, d.last_error.is_some()),
        (DeliveryStatus::Pending, 1, true),
        "a failure that will be retried stays pending"
    );

    sleep_secs(10).await;
    let d = row(&store, &key).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 3));
    assert!(
        d.last_error
            .as_deref()
            .is_some_and(|e| e.contains("HTTP 503")),
        "{d:?}"
    );
    // First retry after 0.5-1 s (the first backoff, with jitter), the
    // second 1-2 s after it (doubled).
    let t = console.call_times();
    assert_eq!(t.len(), 3, "{t:?}");
    assert_eq!(t[0], 0);
    assert!((500..=1_000).contains(&(t[1] - t[0])), "{t:?}");
    assert!((1_000..=2_000).contains(&(t[2] - t[1])), "{t:?}");
    assert_eq!(console.delivered().len(), 1);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_channel_that_always_fails_is_given_up_after_max_attempts() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console").script(&[], Attempt::Fail));
    let config = SystemConfig {
        notifier: settings(4, 8),
        ..config(&["console"])
    };
    let system = spawn(config, &store, &clock, &[&console]).await;
    let id = open_incident(&system, "Dead").await;
    sleep_secs(60).await;
    let d = row(
        &store,
        &page_key(&store, id, "console", &Recipient::Console).await,
    )
    .await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 4));
    assert!(d.last_error.is_some());
    assert!(store.pending_deliveries().await.unwrap().is_empty());
    advance_minutes(60).await;
    assert_eq!(console.calls().len(), 4, "nothing after giving up");
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_refused_delivery_is_not_retried() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console").script(&[Attempt::Refuse], Attempt::Deliver));
    let system = spawn(config(&["console"]), &store, &clock, &[&console]).await;
    let id = open_incident(&system, "Refused").await;
    advance_minutes(10).await;
    let d = row(
        &store,
        &page_key(&store, id, "console", &Recipient::Console).await,
    )
    .await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Failed, 1));
    assert!(
        d.last_error.as_deref().is_some_and(|e| e.contains("404")),
        "{d:?}"
    );
    assert_eq!(console.calls().len(), 1, "a refusal is final");
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_slow_channel_does_not_delay_another() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console").slow(Duration::from_secs(10 * 60)));
    let webhook = Arc::new(Scripted::new("webhook:hook"));
    // One send at a time per channel: only a worker of its own lets the
    // webhook go while the console is busy.
    let config = SystemConfig {
        notifier: settings(5, 1),
        ..config(&["console", "hook"])
    };
    let system = spawn(config, &store, &clock, &[&console, &webhook]).await;
    let id = open_incident(&system, "Both").await;
    settle().await;
    let to_hook = page_key(&store, id, "hook", &hook()).await;
    let to_console = page_key(&store, id, "console", &Recipient::Console).await;
    assert_eq!(
        webhook
            .delivered()
            .iter()
            .map(|(at, n)| (*at, n.key.clone()))
            .collect::<Vec<_>>(),
        [(T0, to_hook.clone())],
        "the webhook is paged at once"
    );
    assert_eq!(
        row(&store, &to_hook).await.status,
        DeliveryStatus::Delivered
    );
    assert_eq!(
        row(&store, &to_console).await.status,
        DeliveryStatus::Pending
    );
    assert_eq!(console.calls().len(), 1, "the console send is under way");

    advance_minutes(10).await;
    settle().await;
    assert_eq!(
        row(&store, &to_console).await.status,
        DeliveryStatus::Delivered
    );
    assert_eq!(console.delivered().len(), 1);
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_acknowledge_cancels_a_page_still_queued() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console").slow(Duration::from_secs(60)));
    // One send at a time: B's page queues behind A's.
    let config = SystemConfig {
        notifier: settings(5, 1),
        ..config(&["console"])
    };
    let system = spawn(config, &store, &clock, &[&console]).await;
    let a = open_incident(&system, "A").await;
    let b = open_incident(&system, "B").await;
    settle().await;
    let b_page = page_key(&store, b, "console", &Recipient::Console).await;
    assert_eq!(row(&store, &b_page).await.status, DeliveryStatus::Pending);
    system.acknowledge(b, alice()).await.unwrap();
    advance_minutes(5).await;

    let b_row = row(&store, &b_page).await;
    assert_eq!(
        (b_row.status, b_row.attempts),
        (DeliveryStatus::Cancelled, 0),
        "acknowledged before its page went out"
    );
    let a_row = row(
        &store,
        &page_key(&store, a, "console", &Recipient::Console).await,
    )
    .await;
    assert_eq!(a_row.status, DeliveryStatus::Delivered);
    let pages: Vec<_> = console
        .calls()
        .iter()
        .filter(|(_, n)| n.event.is_page())
        .map(|(_, n)| n.incident.id)
        .collect();
    assert_eq!(pages, [a], "B's page was never sent");
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_restart_sends_what_is_pending_and_nothing_delivered() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    // The console never finishes before the shutdown: its page stays pending.
    let console = Arc::new(Scripted::new("console").slow(Duration::from_secs(3_600)));
    let webhook = Arc::new(Scripted::new("webhook:hook"));
    let system = spawn(
        config(&["console", "hook"]),
        &store,
        &clock,
        &[&console, &webhook],
    )
    .await;
    let id = open_incident(&system, "Restart").await;
    settle().await;
    let to_hook = page_key(&store, id, "hook", &hook()).await;
    let to_console = page_key(&store, id, "console", &Recipient::Console).await;
    assert_eq!(
        row(&store, &to_hook).await.status,
        DeliveryStatus::Delivered
    );
    assert_eq!(
        row(&store, &to_console).await.status,
        DeliveryStatus::Pending
    );
    system.shutdown().await;
    sleep_secs(30).await;

    let console2 = Arc::new(Scripted::new("console"));
    let webhook2 = Arc::new(Scripted::new("webhook:hook"));
    let system = spawn(
        config(&["console", "hook"]),
        &store,
        &clock,
        &[&console2, &webhook2],
    )
    .await;
    settle().await;
    let sent: Vec<_> = console2
        .delivered()
        .iter()
        .map(|(_, n)| n.key.clone())
        .collect();
    assert_eq!(sent.len(), 1, "the pending page is sent again: {sent:?}");
    assert_eq!(sent[0], to_console);
    assert!(
        webhook2.calls().is_empty(),
        "a delivered page is not sent again"
    );
    let d = row(&store, &to_console).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
    assert!(store.pending_deliveries().await.unwrap().is_empty());
    advance_minutes(30).await;
    assert_eq!(console2.calls().len(), 1);
    assert!(webhook2.calls().is_empty());
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn an_acknowledge_updates_the_page_in_its_thread() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console").with_page_ref("ref-1"));
    let system = spawn(config(&["console"]), &store, &clock, &[&console]).await;
    let id = open_incident(&system, "Threaded").await;
    settle().await;
    let page = row(
        &store,
        &page_key(&store, id, "console", &Recipient::Console).await,
    )
    .await;
    assert_eq!(page.external_ref.as_deref(), Some("ref-1"));

    sleep_secs(30).await;
    system.acknowledge(id, alice()).await.unwrap();
    settle().await;
    let all = rows(&store, id).await;
    assert_eq!(all.len(), 2, "{all:?}");
    let update = &all[1];
    let ack_seq = store
        .timeline(id)
        .await
        .unwrap()
        .iter()
        .find(|e| e.kind.name() == "acknowledged")
        .expect("acknowledged event")
        .seq;
    assert_eq!(
        update.key,
        DeliveryKey::update(id, ack_seq, &Recipient::Console)
    );
    assert_eq!(update.recipient, Recipient::Console);
    assert_eq!(
        (update.status, update.attempts),
        (DeliveryStatus::Delivered, 1)
    );
    assert_eq!(update.external_ref, None, "only pages get a reference here");

    let delivered = console.delivered();
    assert_eq!(delivered.len(), 2);
    let (at, n) = &delivered[1];
    assert!(at.0 - T0.0 >= 30_000, "sent after the acknowledge");
    assert_eq!(n.key, update.key);
    assert_eq!(n.recipient, Recipient::Console);
    assert_eq!(
        n.event,
        NotificationEvent::Update {
            change: "acknowledged".into(),
            by: Some("alice".into()),
            via: Some(Interface::Api),
        }
    );
    assert_eq!(n.thread.as_deref(), Some("ref-1"), "lands on the page");
    assert_eq!(
        n.incident.acknowledged.as_ref().map(|(_, by)| by.as_str()),
        Some("alice"),
        "the incident as it is now"
    );
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_rate_limit_spaces_deliveries() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console").limited(RateLimit {
        per_second: 1.0,
        burst: 1,
    }));
    let system = spawn(config(&["console"]), &store, &clock, &[&console]).await;
    let mut ids = Vec::new();
    for name in ["R1", "R2", "R3", "R4"] {
        ids.push(open_incident(&system, name).await);
    }
    settle().await;
    assert_eq!(console.calls().len(), 1, "a burst of one");
    sleep_secs(10).await;
    let t = console.call_times();
    assert_eq!(t.len(), 4, "{t:?}");
    assert_eq!(t[0], 0);
    for pair in t.windows(2) {
        let gap = pair[1] - pair[0];
        assert!((990..=1_100).contains(&gap), "one a second: {t:?}");
    }
    for id in ids {
        let d = row(
            &store,
            &page_key(&store, id, "console", &Recipient::Console).await,
        )
        .await;
        assert_eq!(d.status, DeliveryStatus::Delivered);
    }
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn the_default_console_pages_like_before() {
    // The common RecordingChannel (`console`) sees one page per step and
    // the acknowledge as an update.
    let h = start(SystemConfig::default()).await;
    let id = open_incident(&h.system, "Legacy").await;
    settle().await;
    h.system.acknowledge(id, alice()).await.unwrap();
    settle().await;
    assert_eq!(h.channel.count(), 1);
    assert_eq!(h.channel.updates.lock().unwrap().len(), 1);
    assert_eq!(
        h.system
            .ingest(alert("Legacy", AlertStatus::Firing))
            .await
            .unwrap()
            .incident_id,
        Some(id)
    );
    h.system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_page_after_an_ack_timeout_is_a_delivery_of_its_own() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console"));
    let mut config = config(&["console"]);
    config.policy.ack_timeout = Some(Duration::from_secs(10 * 60));
    let system = spawn(config, &store, &clock, &[&console]).await;
    let id = open_incident(&system, "Again").await;
    settle().await;
    system.acknowledge(id, alice()).await.unwrap();
    advance_minutes(11).await;
    settle().await;
    let pages: Vec<_> = rows(&store, id)
        .await
        .into_iter()
        .filter(|d| d.event.is_page())
        .collect();
    assert_eq!(
        console
            .delivered()
            .iter()
            .filter(|(_, n)| n.event.is_page())
            .count(),
        2,
        "paged again when the acknowledge timed out"
    );
    assert_eq!(pages.len(), 2, "each page is in the log: {pages:#?}");
    assert!(pages.iter().all(|d| d.status == DeliveryStatus::Delivered));
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn a_page_fired_while_the_pool_starts_is_sent_once() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let step = || EscalationStep {
        delay: Duration::from_secs(5 * 60),
        targets: vec![Target::Channel("console".into())],
    };
    let config = SystemConfig {
        policy: EscalationPolicy {
            name: "default".into(),
            steps: vec![step(), step()],
            repeat: 0,
            ack_timeout: None,
        },
        ..SystemConfig::default()
    };
    let console = Arc::new(Scripted::new("console"));
    let system = spawn(config.clone(), &store, &clock, &[&console]).await;
    let id = open_incident(&system, "Overdue").await;
    settle().await;
    assert_eq!(console.delivered().len(), 1);
    system.shutdown().await;

    // Down past the second step: it fires as soon as the incident is back,
    // while the pool is still reading what the last run left pending.
    advance_minutes(12).await;
    let console2 = Arc::new(Scripted::new("console"));
    let system = spawn_system(
        config,
        SystemDeps {
            store: {
                store.set_pending_read_delay(Some(Duration::from_secs(2)));
                store.clone()
            },
            clock: clock.clone(),
            channels: vec![console2.clone()],
        },
    )
    .await
    .expect("system starts");
    sleep_secs(10).await;
    let keys: Vec<_> = console2
        .calls()
        .iter()
        .map(|(_, n)| n.key.0.clone())
        .collect();
    assert_eq!(keys.len(), 1, "the overdue step is paged once: {keys:?}");
    let pages: Vec<_> = rows(&store, id).await;
    assert_eq!(pages.len(), 2);
    assert!(pages.iter().all(|d| d.status == DeliveryStatus::Delivered));
    system.shutdown().await;
}

#[tokio::test(start_paused = true)]
async fn each_channel_is_served_by_a_factory_worker_of_its_own() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console").slow(Duration::from_secs(10 * 60)));
    let webhook = Arc::new(Scripted::new("webhook:hook"));
    let config = SystemConfig {
        notifier: settings(5, 1),
        ..config(&["console", "hook"])
    };
    let system = spawn(config, &store, &clock, &[&console, &webhook]).await;
    open_incident(&system, "Both").await;
    settle().await;

    // Each is asked through the factory, with a job keyed by its transport:
    // the console's worker answers while its send is still under way.
    let on_console = system
        .channel_worker("console")
        .await
        .expect("console worker");
    let on_hook = system
        .channel_worker("webhook:hook")
        .await
        .expect("webhook worker");
    assert_eq!(on_console.channel, "console");
    assert_eq!(on_hook.channel, "webhook:hook");
    assert_ne!(
        on_console.worker, on_hook.worker,
        "two channels never share a worker"
    );
    assert_eq!(
        (on_console.in_flight, on_console.delivered),
        (1, 0),
        "{on_console:?}"
    );
    assert_eq!(
        (on_hook.in_flight, on_hook.delivered),
        (0, 1),
        "{on_hook:?}"
    );
    assert_eq!(
        system.channel_worker("slack").await,
        None,
        "no channel, no worker"
    );
    system.shutdown().await;
}

/// What the worker of `transport` has delivered since it started.
async fn delivered_by(system: &System, transport: &str) -> u64 {
    system
        .channel_worker(transport)
        .await
        .unwrap_or_else(|| panic!("no worker for {transport}"))
        .delivered
}

#[tokio::test(start_paused = true)]
async fn a_crashed_channel_worker_is_restarted_and_sends_what_it_held() {
    let store = Arc::new(MemoryStore::new());
    let clock = TestClock::new();
    let console = Arc::new(Scripted::new("console").slow(Duration::from_secs(10)));
    let webhook = Arc::new(Scripted::new("webhook:hook"));
    let config = SystemConfig {
        restart: RestartPolicy {
            max_restarts: 1,
            within: Duration::from_secs(60),
        },
        ..config(&["console", "hook"])
    };
    let system = spawn(config, &store, &clock, &[&console, &webhook]).await;
    let id = open_incident(&system, "Crash").await;
    settle().await;
    let to_console = page_key(&store, id, "console", &Recipient::Console).await;
    let console_worker = system.channel_worker("console").await.unwrap().worker;
    assert_eq!(delivered_by(&system, "webhook:hook").await, 1);

    // The console's answer comes back at 10 s; recording it reads the
    // clock, which panics: the worker dies with the page in hand, and the
    // factory replaces it.
    clock.panic_next(1);
    sleep_secs(11).await;
    let sent: Vec<_> = console.calls().iter().map(|(_, n)| n.key.clone()).collect();
    assert_eq!(
        sent,
        [to_console.clone(), to_console.clone()],
        "the replacement sends the page it held again"
    );
    let d = row(&store, &to_console).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0));
    let back = system.channel_worker("console").await.unwrap();
    assert_eq!(back.worker, console_worker, "the same worker index");
    assert_eq!((back.in_flight, back.delivered), (1, 0), "{back:?}");
    assert_eq!(
        delivered_by(&system, "webhook:hook").await,
        1,
        "the other channel's worker was left alone"
    );

    // A second death within the minute exceeds the restart intensity: the
    // factory fails, the pool with it, and the root starts a new pool,
    // which sends what is pending.
    clock.panic_next(1);
    sleep_secs(10).await;
    settle().await;
    assert!(system.is_running());
    assert_eq!(
        delivered_by(&system, "webhook:hook").await,
        0,
        "a new pool, new workers"
    );
    sleep_secs(11).await;
    let d = row(&store, &to_console).await;
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Delivered, 1));
    assert_eq!(console.calls().len(), 3);
    assert_eq!(
        webhook.calls().len(),
        1,
        "a delivered page is not sent again"
    );
    assert!(store.pending_deliveries().await.unwrap().is_empty());
    system.shutdown().await;
}
