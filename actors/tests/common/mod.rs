//! Shared fixtures for the core's actor tests: an in-memory store, a clock
//! that follows tokio's paused time (and can be told to panic, to crash an
//! incident actor on purpose, or to jump, as a wall clock set by hand or by
//! NTP does), and a channel that records what it delivered.
#![allow(dead_code)]

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use incident_actors::domain::{Alert, AlertStatus, IncidentId, Labels, NotificationEvent};
use incident_actors::memory_store::MemoryStore;
#[allow(unused_imports)]
pub use incident_actors::ports::Store;
use incident_actors::ports::{Channel, ChannelError, Delivered, Notification};
use incident_actors::time::{Clock, Timestamp, TokioClock};
use incident_actors::{spawn_system, System, SystemConfig, SystemDeps};

pub const T0: Timestamp = Timestamp(1_800_000_000_000);

/// Tokio-derived wall clock; `panic_next(n)` makes the next `n` reads
/// panic; `jump(ms)` moves it (and only it: tokio's clock, which timers run
/// on, does not jump).
pub struct TestClock {
    inner: TokioClock,
    panics: AtomicUsize,
    offset_ms: AtomicI64,
}

impl TestClock {
    pub fn new() -> Arc<Self> {
        Arc::new(TestClock {
            inner: TokioClock::starting_at(T0),
            panics: AtomicUsize::new(0),
            offset_ms: AtomicI64::new(0),
        })
    }

    /// Sets the wall clock forward (positive) or back (negative).
    pub fn jump(&self, ms: i64) {
        self.offset_ms.fetch_add(ms, Ordering::SeqCst);
    }

    pub fn panic_next(&self, n: usize) {
        self.panics.store(n, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> Timestamp {
        if self
            .panics
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            panic!("injected fault: clock read panicked");
        }
        Timestamp(self.inner.now().0 + self.offset_ms.load(Ordering::SeqCst))
    }
}

/// A channel named `console` that records every page it delivered with its
/// time (`delivered`), and the updates (acknowledged, resolved…) apart.
#[derive(Default)]
pub struct RecordingChannel {
    pub delivered: Mutex<Vec<(Timestamp, Notification)>>,
    pub updates: Mutex<Vec<(Timestamp, Notification)>>,
    /// How long each delivery takes (a slow channel), on tokio's clock.
    pub latency: Duration,
}

impl RecordingChannel {
    pub fn minutes_since_t0(&self) -> Vec<i64> {
        self.delivered
            .lock()
            .unwrap()
            .iter()
            .map(|(at, _)| (at.0 - T0.0) / 60_000)
            .collect()
    }

    pub fn count(&self) -> usize {
        self.delivered.lock().unwrap().len()
    }
}

#[async_trait]
impl Channel for RecordingChannel {
    fn name(&self) -> &str {
        "console"
    }
    async fn deliver(&self, n: &Notification) -> Result<Delivered, ChannelError> {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
        let log = if n.event.is_page() {
            &self.delivered
        } else {
            &self.updates
        };
        log.lock().unwrap().push((n.at, n.clone()));
        Ok(Delivered::default())
    }
}

/// The step and repeat a page notification is about.
pub fn step_of(n: &Notification) -> (usize, u32) {
    match &n.event {
        NotificationEvent::Page { step, repeat, .. } => (*step, *repeat),
        other => panic!("not a page: {other:?}"),
    }
}

pub struct Harness {
    pub system: System,
    pub store: Arc<MemoryStore>,
    pub clock: Arc<TestClock>,
    pub channel: Arc<RecordingChannel>,
}

pub async fn start(config: SystemConfig) -> Harness {
    start_on(config, Arc::new(MemoryStore::new()), TestClock::new()).await
}

pub async fn start_on(
    config: SystemConfig,
    store: Arc<MemoryStore>,
    clock: Arc<TestClock>,
) -> Harness {
    start_with_channel(config, store, clock, RecordingChannel::default()).await
}

pub async fn start_with_channel(
    config: SystemConfig,
    store: Arc<MemoryStore>,
    clock: Arc<TestClock>,
    channel: RecordingChannel,
) -> Harness {
    let channel = Arc::new(channel);
    let system = spawn_system(
        config,
        SystemDeps {
            store: store.clone(),
            clock: clock.clone(),
            channels: vec![channel.clone()],
        },
    )
    .await
    .expect("system starts");
    Harness {
        system,
        store,
        clock,
        channel,
    }
}

pub fn alert(name: &str, status: AlertStatus) -> Alert {
    let mut labels = Labels::new();
    labels.insert("alertname".into(), name.into());
    labels.insert("service".into(), "chat".into());
    labels.insert("model".into(), "gpt-4o".into());
    Alert {
        labels,
        annotations: Labels::new(),
        status,
        starts_at: T0,
        ends_at: None,
        source: "native".into(),
        dedup_key: None,
        extra: None,
    }
}

/// Lets the actors process what is queued (virtual time moves 1 ms).
pub async fn settle() {
    tokio::time::sleep(Duration::from_millis(1)).await;
}

pub async fn advance_minutes(m: u64) {
    tokio::time::sleep(Duration::from_secs(m * 60)).await;
}

/// Ingests a firing alert named `name` and returns its incident's id.
pub async fn open_incident(system: &System, name: &str) -> IncidentId {
    system
        .ingest(alert(name, AlertStatus::Firing))
        .await
        .expect("ingest")
        .incident_id
        .expect("an incident")
}

/// The names of an incident's timeline events, oldest first.
pub async fn timeline_names(store: &MemoryStore, id: IncidentId) -> Vec<&'static str> {
    store
        .timeline(id)
        .await
        .expect("timeline")
        .iter()
        .map(|e| e.kind.name())
        .collect()
}
