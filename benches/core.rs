//! Criterion benchmarks of the core: fingerprint, router lookup, one
//! state-machine step, snapshot encode/decode, and one repeat alert routed
//! through the real actors (router → incident actor → reply) on an
//! in-memory store. Run: `cargo bench --bench core`.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use incident_actors::codec::{decode_incident, encode_incident};
use incident_actors::console::ConsoleChannel;
use incident_actors::domain::{
    Alert, AlertStatus, Attribution, EscalationPolicy, Fingerprint, Incident, IncidentId,
    Interface, Labels,
};
use incident_actors::memory_store::MemoryStore;
use incident_actors::time::{SystemClock, Timestamp};
use incident_actors::{spawn_system, SystemConfig, SystemDeps};

fn alert(i: u64) -> Alert {
    let labels: Labels = [
        ("alertname", "HighLatency".to_string()),
        ("service", "chat".to_string()),
        ("model", "gpt-4o".to_string()),
        ("provider", "openai".to_string()),
        ("severity", "critical".to_string()),
        ("instance", format!("gw-{i}")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    Alert {
        labels,
        annotations: [("summary".to_string(), "p99 latency 4.2s".to_string())].into(),
        status: AlertStatus::Firing,
        starts_at: Timestamp(1_800_000_000_000),
        ends_at: None,
        source: "native".into(),
        dedup_key: None,
        extra: None,
    }
}

fn incident() -> Incident {
    let policy = EscalationPolicy::default_console();
    let (mut i, _) = Incident::open(
        IncidentId(1),
        alert(1),
        &policy,
        Timestamp(1_800_000_000_000),
    );
    i.fire_escalation(&policy, Timestamp(1_800_000_000_000));
    i
}

fn domain(c: &mut Criterion) {
    let a = alert(7);
    c.bench_function("fingerprint/6_labels", |b| {
        b.iter(|| black_box(&a).fingerprint())
    });

    let index: HashMap<Fingerprint, IncidentId> = (0..100_000u64)
        .map(|i| (alert(i).fingerprint(), IncidentId(i)))
        .collect();
    let probe = alert(54_321).fingerprint();
    c.bench_function("router/index_lookup_100k", |b| {
        b.iter(|| index.get(black_box(&probe)))
    });

    let policy = EscalationPolicy::default_console();
    let base = incident();
    c.bench_function("state_machine/repeat_alert", |b| {
        b.iter_batched(
            || base.clone(),
            |mut i| i.apply_alert(alert(1), Timestamp(1_800_000_001_000)),
            BatchSize::SmallInput,
        )
    });
    c.bench_function("state_machine/acknowledge", |b| {
        b.iter_batched(
            || base.clone(),
            |mut i| {
                i.acknowledge(
                    Attribution::new("alice", Interface::Api),
                    &policy,
                    Timestamp(1_800_000_001_000),
                )
            },
            BatchSize::SmallInput,
        )
    });

    let bytes = encode_incident(&base).unwrap();
    let mut g = c.benchmark_group("snapshot");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function("encode", |b| {
        b.iter(|| encode_incident(black_box(&base)).unwrap())
    });
    g.bench_function("decode", |b| {
        b.iter(|| decode_incident(black_box(&bytes)).unwrap())
    });
    g.finish();
}

fn actors(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let system = rt.block_on(async {
        let system = spawn_system(
            SystemConfig::default(),
            SystemDeps {
                store: Arc::new(MemoryStore::new()),
                clock: Arc::new(SystemClock),
                channels: vec![Arc::new(ConsoleChannel)],
            },
        )
        .await
        .unwrap();
        system.ingest(alert(1)).await.unwrap();
        system
    });
    c.bench_function("actors/ingest_repeat_alert", |b| {
        b.to_async(&rt)
            .iter(|| async { system.ingest(alert(1)).await.unwrap() })
    });
    rt.block_on(system.shutdown());
}

criterion_group!(benches, domain, actors);
criterion_main!(benches);
