//! Property-based fuzzing of every parser that takes outside input:
//! arbitrary JSON (nested, with hostile strings: non-ASCII, control
//! characters, huge numbers), arbitrary text and bytes never make a parser
//! panic; each answers a value or an error. Bounded by the case count below
//! so `.ci/run` stays fast; raise it locally with
//! `PROPTEST_CASES=100000 cargo test --test parser_fuzz`.
//!
//! Covered: the ingest bodies (native `/v1/alerts`, Prometheus push,
//! Alertmanager and Grafana webhook, PagerDuty Events v2), the size limits
//! applied to them; Slack's interaction and slash command form bodies, the
//! `/lim` text, button values, and Slack's signature headers; lim's own
//! webhook signature (`verify_signature`, which receivers run on what they
//! are sent); the operator API's bodies and parameters (silences and their
//! matchers, snooze, note, command attribution, incident ids, list
//! queries, `X-Lim-Interface`); durations, timestamps, fingerprints and
//! targets; config files, both arbitrary text and mutations of
//! `examples/lim.toml` (so validation, not only TOML syntax, is reached);
//! configured digests, integration keys and scopes. (A heartbeat ping has
//! no body: its name is looked up among the configured monitors.)
//!
//! proptest rather than cargo-fuzz: cargo-fuzz needs a nightly toolchain,
//! which these machines cannot install.

use std::time::Duration;

use incident_actors::domain::{Fingerprint, Interface, Matcher, Target};
use incident_actors::time::Timestamp;
use lim::http::incident_actions::{NoteBody, SnoozeBody};
use lim::http::limits::AlertLimits;
use lim::http::silences::NewSilence;
use lim::http::{
    alertmanager, alerts, incident_actions, incidents, pagerduty, prometheus, silences,
};
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
            Just(""),
            Just("30m"),
            Just("0s"),
            Just("7d 1s"),
            Just("99999999999999999999h"),
            Just("model=~gpt.*"),
            Just("=~"),
            Just("block_actions"),
            Just("lim_ack"),
            Just("lim_snooze_4h"),
            Just("{\"incident_id\":1}"),
            Just("{\"incident_id\":18446744073709551615}"),
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
        // The operator API's bodies.
        Just("matchers"),
        Just("for"),
        Just("comment"),
        Just("created_by"),
        Just("name"),
        Just("op"),
        Just("value"),
        Just("by"),
        Just("text"),
        // Slack's interaction payload.
        Just("type"),
        Just("actions"),
        Just("action_id"),
        Just("action_ts"),
        Just("user"),
        Just("id"),
        Just("trigger_id"),
        Just("response_url"),
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

/// `PROPTEST_CASES`, else `default`.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(default)
}

/// The size limits every ingest path applies, at their defaults and at
/// their tightest (so every refusal is reached).
fn check_limits(alerts: &[incident_actors::domain::Alert]) {
    let _ = AlertLimits::default().check(alerts);
    let tight = AlertLimits {
        max_labels: 1,
        max_annotations: 1,
        max_name_bytes: 1,
        max_label_value_bytes: 1,
        max_annotation_value_bytes: 1,
    };
    let _ = tight.check(alerts);
}

/// A form body (`k=v&…`, url-encoded) from fields Slack sends and any others.
fn form(fields: Vec<(String, String)>) -> Vec<u8> {
    url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish()
        .into_bytes()
}

/// Words `/lim` knows, numbers and durations, or anything.
fn slash_word() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "ack",
            "ACK",
            "acknowledge",
            "resolve",
            "snooze",
            "list",
            "oncall",
            "help",
            "42",
            "#42",
            "0",
            "-1",
            "18446744073709551616",
            "30m",
            "0s",
            "8d",
            "1y",
            "99999999999999999999h",
        ])
        .prop_map(str::to_string),
        any::<String>(),
    ]
}

/// Timestamp header text near `now`, or anything.
fn unix_seconds(now: i64) -> impl Strategy<Value = String> {
    prop_oneof![
        (-400i64..400).prop_map(move |d| now.saturating_add(d).to_string()),
        any::<i64>().prop_map(|t| t.to_string()),
        Just(format!(" {now} ")),
        Just(format!("+{now}")),
        any::<String>(),
    ]
}

/// `examples/lim.toml`: every key lim's config has.
const EXAMPLE_CONFIG: &str = include_str!("../examples/lim.toml");

/// Text a mutated config value may get: what some key somewhere expects
/// (durations, dates, times, zones, targets, matchers, URLs, addresses,
/// digests, names the example uses), or anything.
fn config_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(vec![
            "", "5m", "0s", "1d", "1w", "12h", "36h", "99999999999999999999h", "-5m", "soon",
            "0h", "0d", "1h", "100000w", "1.5h", "24h",
            "2026-11-02", "2026-02-30", "0000-01-01", "9999-12-31", "09:00", "24:00", "23:59:60",
            "2026-12-24T00:00:00+01:00", "2026-12-24T00:00:00Z", "Europe/Berlin", "Mars/Olympus",
            "UTC", "user:alice", "team:ml-platform", "schedule:primary", "channel:slack",
            "console", "ops-bridge", "user:", "pager:x", "model=~gpt.*|claude.*", "env!=dev",
            "a=~(", "=", "sqlite://./data/lim.db", "postgres://postgres@127.0.0.1/lim",
            "mysql://x", "127.0.0.1:8080", "0.0.0.0:0", "[::1]:8080", "localhost:99999",
            "https://lim.example.com", "not a url", "alice@example.com", "lim <lim@example.com>",
            "@", "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
            "sha256:zz", "short", "a-clear-text-key-of-16+-chars", "read", "write", "admin",
            "starttls", "tls", "none", "act", "refuse", "alice", "bob", "carol", "primary",
            "default", "llm-gateway", "llm-critical", "ml-platform", "a/b", "#oncall",
        ])
        .prop_map(str::to_string),
        1 => any::<String>(),
    ]
}

/// Any TOML value (a value of the wrong type, a table where a string goes).
fn toml_value() -> impl Strategy<Value = toml::Value> {
    let leaf = prop_oneof![
        3 => config_text().prop_map(toml::Value::String),
        1 => any::<i64>().prop_map(toml::Value::Integer),
        1 => any::<bool>().prop_map(toml::Value::Boolean),
        1 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(toml::Value::Float),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(toml::Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}", inner, 0..3)
                .prop_map(|m| toml::Value::Table(m.into_iter().collect())),
        ]
    })
}

#[derive(Clone, Debug)]
enum Mutation {
    /// Set the value at the `n`th path (modulo how many there are): to a
    /// value of the same type (text, integer, boolean) unless `retype`,
    /// then to `other`.
    Set {
        n: usize,
        text: String,
        int: i64,
        retype: bool,
        other: toml::Value,
    },
    /// Remove the key or array element at the `n`th path.
    Remove(usize),
    /// Copy the element at the `n`th path next to itself (a repeated name).
    Duplicate(usize),
    /// Add an unknown key to the table at the `n`th path.
    Add(usize, String, toml::Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        6 => (
            any::<usize>(),
            config_text(),
            prop_oneof![any::<i64>(), prop::sample::select(vec![0i64, 1, -1, 3, 65_536, 1 << 32])],
            prop::bool::weighted(0.1),
            toml_value(),
        )
            .prop_map(|(n, text, int, retype, other)| Mutation::Set { n, text, int, retype, other }),
        2 => any::<usize>().prop_map(Mutation::Remove),
        2 => any::<usize>().prop_map(Mutation::Duplicate),
        1 => (any::<usize>(), "[a-z_]{1,12}", toml_value())
            .prop_map(|(n, k, v)| Mutation::Add(n, k, v)),
    ]
}

#[derive(Clone, Debug)]
enum Step {
    Key(String),
    Index(usize),
}

/// Every path in the document, parents before children.
fn paths(value: &toml::Value, prefix: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(prefix.clone());
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                prefix.push(Step::Key(k.clone()));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        toml::Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                prefix.push(Step::Index(i));
                paths(v, prefix, out);
                prefix.pop();
            }
        }
        _ => {}
    }
}

fn at<'a>(value: &'a mut toml::Value, path: &[Step]) -> Option<&'a mut toml::Value> {
    path.iter().try_fold(value, |v, step| match (v, step) {
        (toml::Value::Table(t), Step::Key(k)) => t.get_mut(k),
        (toml::Value::Array(a), Step::Index(i)) => a.get_mut(*i),
        _ => None,
    })
}

fn mutate(doc: &mut toml::Value, m: Mutation) {
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    all.remove(0); // the document itself stays a table
    let pick = |n: usize| all[n % all.len()].clone();
    match m {
        Mutation::Set {
            n,
            text,
            int,
            retype,
            other,
        } => {
            if let Some(slot) = at(doc, &pick(n)) {
                *slot = match slot {
                    _ if retype => other,
                    toml::Value::String(_) => toml::Value::String(text),
                    toml::Value::Integer(_) => toml::Value::Integer(int),
                    toml::Value::Boolean(b) => toml::Value::Boolean(!*b),
                    _ => return,
                };
            }
        }
        Mutation::Remove(n) | Mutation::Duplicate(n) => {
            let path = pick(n);
            let Some((last, parent)) = path.split_last() else {
                return;
            };
            let duplicate = matches!(m, Mutation::Duplicate(_));
            match (at(doc, parent), last) {
                (Some(toml::Value::Table(t)), Step::Key(k)) if !duplicate => {
                    t.remove(k);
                }
                (Some(toml::Value::Array(a)), Step::Index(i)) => {
                    if duplicate {
                        let copy = a[*i].clone();
                        a.insert(*i, copy);
                    } else {
                        a.remove(*i);
                    }
                }
                _ => {}
            }
        }
        Mutation::Add(n, k, v) => {
            if let Some(toml::Value::Table(t)) = at(doc, &pick(n)) {
                t.insert(k, v);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(2_000)))]

    #[test]
    fn native_alerts_never_panic(body in json()) {
        if let Ok(alerts) = alerts::parse_alert_request(body, NOW) {
            check_limits(&alerts);
        }
    }

    #[test]
    fn prometheus_push_never_panics(body in json()) {
        if let Ok(alerts) = prometheus::parse_postable_alerts(body, NOW, Duration::from_secs(300)) {
            check_limits(&alerts);
        }
    }

    #[test]
    fn alertmanager_webhook_never_panics(body in json()) {
        if let Ok(n) = alertmanager::parse_webhook(body, NOW) {
            check_limits(&n.alerts);
        }
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

    #[test]
    fn slack_slash_commands_never_panic(
        words in prop::collection::vec(slash_word(), 0..5),
        separator in prop::sample::select(vec![" ", "  ", "\t", "\u{a0}", "\n"]),
        raw in any::<Vec<u8>>(),
        user in prop::option::of(any::<String>()),
    ) {
        let text = words.join(separator);
        let _ = lim::slack::parse_slash_command(&text);
        let _ = lim::slack::parse_slash_request(&raw);
        let mut fields = vec![("text".to_string(), text)];
        if let Some(u) = user {
            fields.push(("user_id".into(), u));
        }
        let _ = lim::slack::parse_slash_request(&form(fields));
    }

    #[test]
    fn slack_signature_timestamps_never_panic(
        now in prop::sample::select(vec![0i64, 1_800_000_000, i64::MAX, i64::MIN]),
        ts in prop::sample::select(vec![0i64, 1_800_000_000, i64::MAX, i64::MIN]).prop_flat_map(unix_seconds),
    ) {
        let _ = lim::slack::signature::verify("s", Some(&ts), Some("v0=00"), b"", now);
    }

    #[test]
    fn durations_and_small_values_never_panic(text in prop_oneof![slash_word(), any::<String>()]) {
        let _ = lim::config::parse_duration(&text);
        let _ = lim::config::parse_resolve_timeout(&text);
        let _ = lim::config::parse_listen(&text);
        let _ = Timestamp::parse_rfc3339(&text);
        let _ = text.parse::<Fingerprint>();
        let _ = Target::parse(&text);
        let _ = incident_actors::domain::IncidentStatus::parse(&text);
        let _ = lim::auth::SecretDigest::parse(&text);
        let _ = lim::auth::parse_integration_key(&text);
        let _ = lim::auth::Scope::parse(&text);
    }

    #[test]
    fn silence_bodies_of_the_right_shape_never_panic(
        matchers in prop::collection::vec(prop_oneof![
            any::<String>().prop_map(Value::String),
            (any::<String>(), prop::sample::select(vec!["=", "!=", "=~", "!~", "~"]), any::<String>())
                .prop_map(|(n, op, v)| serde_json::json!({"name": n, "op": op, "value": v})),
        ], 0..4),
        starts in prop::option::of(leaf()),
        ends in prop::option::of(leaf()),
        duration in prop::option::of(slash_word()),
        comment in prop::option::of(any::<String>()),
    ) {
        let mut body = serde_json::json!({"matchers": matchers});
        if let Some(v) = starts { body["starts_at"] = v; }
        if let Some(v) = ends { body["ends_at"] = v; }
        if let Some(v) = duration { body["for"] = Value::String(v); }
        if let Some(v) = comment { body["comment"] = Value::String(v); }
        if let Ok(new) = serde_json::from_value::<NewSilence>(body) {
            let _ = silences::parse_new_silence(new, NOW);
        }
    }
}

proptest! {
    // Bodies built from whole JSON documents, or whole configs validated
    // (regexes, schedules): dearer cases, fewer of them.
    #![proptest_config(ProptestConfig::with_cases(cases(500)))]

    #[test]
    fn slack_interactions_never_panic(
        payload in json(),
        raw in any::<Vec<u8>>(),
        extra in prop::collection::vec((any::<String>(), any::<String>()), 0..3),
    ) {
        let _ = lim::slack::parse_interaction(&raw);
        let mut fields = vec![("payload".to_string(), payload.to_string())];
        fields.extend(extra);
        let _ = lim::slack::parse_interaction(&form(fields));
    }

    #[test]
    fn slack_block_actions_never_panic(
        action_id in prop_oneof![
            prop::sample::select(vec!["lim_ack", "lim_resolve", "lim_snooze_30m", "lim_snooze_4h"])
                .prop_map(str::to_string),
            any::<String>(),
        ],
        value in prop_oneof![json().prop_map(|v| v.to_string()), any::<String>()],
        user in prop::option::of(json()),
        trigger in prop::option::of(any::<String>()),
    ) {
        // A payload of the shape Slack sends, so the parser gets past `type`.
        let mut payload = serde_json::json!({
            "type": "block_actions",
            "actions": [{"action_id": action_id, "value": value, "action_ts": "1.2"}],
            "response_url": "https://hooks.slack.com/x",
        });
        payload["user"] = user.unwrap_or_else(|| serde_json::json!({"id": "U1"}));
        if let Some(t) = trigger {
            payload["trigger_id"] = Value::String(t);
        }
        let _ = lim::slack::parse_interaction(&form(vec![("payload".into(), payload.to_string())]));
        let _ = lim::channels::slack::parse_action(&action_id, &value);
    }

    /// Any headers are refused or accepted without a panic; a request
    /// signed with the secret at a fresh timestamp is accepted, and one
    /// byte changed in its body is refused.
    #[test]
    fn slack_signatures_never_panic(
        secret in any::<String>(),
        now in any::<i64>(),
        timestamp in prop::option::of(any::<String>()),
        signature in prop::option::of(prop_oneof![
            any::<String>(),
            "v0=[0-9a-f]{0,70}",
            Just("v0=".to_string()),
        ]),
        body in any::<Vec<u8>>(),
        skew in -300i64..=300,
    ) {
        use lim::slack::signature::{sign, verify};
        let _ = verify(&secret, timestamp.as_deref(), signature.as_deref(), &body, now);
        let at = now.saturating_sub(skew);
        if at.checked_add(skew) == Some(now) {
            let ts = at.to_string();
            let good = sign(&secret, &ts, &body);
            prop_assert_eq!(verify(&secret, Some(&ts), Some(&good), &body, now), Ok(()));
            let mut changed = body.clone();
            match changed.first_mut() {
                Some(b) => *b ^= 1,
                None => changed.push(b'x'),
            }
            prop_assert!(verify(&secret, Some(&ts), Some(&good), &changed, now).is_err());
        }
    }

    /// What a webhook receiver runs on what it is sent: any header is
    /// refused without a panic; lim's own signature verifies.
    #[test]
    fn webhook_signatures_never_panic(
        secret in any::<String>(),
        timestamp in any::<String>(),
        body in any::<Vec<u8>>(),
        header in prop_oneof![any::<String>(), "sha256=[0-9a-fA-F]{0,70}"],
    ) {
        use lim::channels::webhook::{sign, verify_signature};
        let _ = verify_signature(&secret, &timestamp, &body, &header);
        let good = sign(&secret, &timestamp, &body);
        prop_assert!(verify_signature(&secret, &timestamp, &body, &good));
        prop_assert!(!verify_signature(&secret, &timestamp, &[body.as_slice(), b"x"].concat(), &good));
    }

    #[test]
    fn silence_bodies_never_panic(body in json(), now in any::<i64>()) {
        if let Ok(new) = serde_json::from_value::<NewSilence>(body) {
            let _ = silences::parse_new_silence(new, Timestamp(now));
        }
    }

    #[test]
    fn incident_action_bodies_never_panic(
        body in json(),
        duration in prop::option::of(slash_word()),
        text in prop::option::of(any::<String>()),
        by in prop::option::of(any::<String>()),
        raw_id in prop_oneof![slash_word(), any::<String>()],
        via in prop::option::of(prop_oneof![
            prop::sample::select(vec!["cli", "CLI", " web ", "api", "slack"]).prop_map(str::to_string),
            any::<String>(),
        ]),
    ) {
        if let Ok(b) = serde_json::from_value::<SnoozeBody>(body.clone()) {
            let _ = incident_actions::parse_snooze(Some(b));
        }
        if let Ok(b) = serde_json::from_value::<NoteBody>(body.clone()) {
            let _ = incident_actions::parse_note(Some(b));
        }
        if let Ok(b) = serde_json::from_value::<incidents::CommandBody>(body) {
            let _ = incidents::parse_command(&raw_id, b.by, Interface::Api);
        }
        let _ = incident_actions::parse_snooze(Some(SnoozeBody { duration, by: by.clone() }));
        let _ = incident_actions::parse_note(Some(NoteBody { text, by: by.clone() }));
        let _ = incident_actions::parse_snooze(None);
        let _ = incidents::parse_incident_id(&raw_id);
        let _ = incidents::parse_command(&raw_id, by, lim::http::via::interface_of(via.as_deref()));
    }

    /// `examples/lim.toml` with a few values changed, keys removed,
    /// entries repeated or unknown keys added: validation answers settings
    /// or diagnostics inside the text, never a panic.
    #[test]
    fn mutated_config_files_never_panic(mutations in prop::collection::vec(mutation(), 1..6)) {
        let mut doc = toml::Value::Table(EXAMPLE_CONFIG.parse::<toml::Table>().unwrap());
        for m in mutations {
            mutate(&mut doc, m);
        }
        let toml::Value::Table(table) = doc else { unreachable!() };
        let Ok(text) = toml::to_string(&table) else { return Ok(()) };
        if let Err(diagnostics) = lim::config::parse_file(&text) {
            let lines = text.lines().count().max(1);
            for d in diagnostics {
                prop_assert!(d.line >= 1 && d.line <= lines + 1, "{d:?} outside {lines} lines");
            }
        }
    }
}

#[test]
fn the_example_config_is_valid() {
    // The mutations above start from a file that passes.
    assert!(lim::config::parse_file(EXAMPLE_CONFIG).is_ok());
}
