//! Property-based fuzzing of every input parser: arbitrary JSON (nested,
//! with hostile strings: non-ASCII, control characters, huge numbers) and
//! arbitrary text never make a parser panic; each answers a value or an
//! error. Bounded by the case count below so `.ci/run` stays fast; raise it
//! locally with `PROPTEST_CASES=100000 cargo test --test parser_fuzz`.
//!
//! proptest rather than cargo-fuzz: cargo-fuzz needs a nightly toolchain,
//! which these machines cannot install.

use std::time::Duration;

use incident_actors::domain::Matcher;
use incident_actors::time::Timestamp;
use lim::http::{alertmanager, alerts, incidents, pagerduty, prometheus};
use proptest::prelude::*;
use serde_json::{Map, Value};

const NOW: Timestamp = Timestamp(1_800_000_000_000);

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        // Strings that look like what the parsers expect.
        prop_oneof![
            Just("firing"),
            Just("resolved"),
            Just("trigger"),
            Just("acknowledge"),
            Just("critical"),
            Just("0001-01-01T00:00:00Z"),
            Just("2026-11-23T03:52:01.252Z"),
            Just("9999-12-31T23:59:59Z"),
            Just("alertname"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

/// JSON objects that use the field names the parsers look for, so the
/// fuzzer gets past the first `missing field` check.
fn json() -> impl Strategy<Value = Value> {
    let keys = prop_oneof![
        Just("labels"),
        Just("annotations"),
        Just("status"),
        Just("startsAt"),
        Just("endsAt"),
        Just("starts_at"),
        Just("ends_at"),
        Just("alerts"),
        Just("groupKey"),
        Just("version"),
        Just("generatorURL"),
        Just("dedup_key"),
        Just("routing_key"),
        Just("event_action"),
        Just("payload"),
        Just("summary"),
        Just("source"),
        Just("severity"),
        Just("links"),
        Just("images"),
        Just("custom_details"),
        Just("alertname"),
        Just("fingerprint"),
    ]
    .prop_map(str::to_string);
    let key = prop_oneof![keys, any::<String>()];
    leaf().prop_recursive(4, 64, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(2_000)
    ))]

    #[test]
    fn native_alerts_never_panic(body in json()) {
        let _ = alerts::parse_alert_request(body, NOW);
    }

    #[test]
    fn prometheus_push_never_panics(body in json()) {
        let _ = prometheus::parse_postable_alerts(body, NOW, Duration::from_secs(300));
    }

    #[test]
    fn alertmanager_webhook_never_panics(body in json()) {
        let _ = alertmanager::parse_webhook(body, NOW);
    }

    #[test]
    fn pagerduty_events_never_panic(body in json()) {
        let _ = pagerduty::parse_event(body, NOW, || "k".repeat(32));
    }

    #[test]
    fn matchers_never_panic(text in any::<String>(), op in prop_oneof![Just("="), Just("!="), Just("=~"), Just("!~")]) {
        let _ = Matcher::parse(&text);
        let _ = Matcher::parse(&format!("name{op}{text}"));
    }

    #[test]
    fn list_queries_never_panic(params in prop::collection::vec((any::<String>(), any::<String>()), 0..6)) {
        let _ = incidents::parse_list_query(&params);
    }

    #[test]
    fn config_files_never_panic(text in any::<String>()) {
        let _ = lim::config::parse_file(&text);
    }
}
