//! `lim actors`: the live actor tree (the JSON of `GET /v1/actors`) drawn
//! for a terminal, with box-drawing lines, one line per actor: its name,
//! kind, status (coloured) and a one-line summary of its state (queued
//! writes, channel figures, an incident's step and armed timers as
//! countdowns). Pure: it takes the JSON and returns the text, so it is
//! tested without a server or a terminal.

use std::fmt::Write as _;

use serde_json::Value;

/// How the tree is drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DrawOptions {
    /// ANSI colours (a terminal that is not `NO_COLOR`).
    pub color: bool,
}

const RESET: &str = "\x1b[0m";

/// The colour of a status: healthy green, waiting yellow, broken red.
fn color_of(status: &str) -> &'static str {
    match status {
        "running" | "up" => "\x1b[32m",
        "acknowledged" | "busy" | "starting" | "stopping" | "draining" | "waiting" | "opening" => {
            "\x1b[33m"
        }
        "triggered" | "unresponsive" | "stopped" | "missed" => "\x1b[31m",
        _ => "\x1b[37m",
    }
}

fn paint(text: &str, status: &str, opts: DrawOptions) -> String {
    if opts.color {
        format!("{}{text}{RESET}", color_of(status))
    } else {
        text.to_string()
    }
}

fn dim(text: &str, opts: DrawOptions) -> String {
    if opts.color {
        format!("\x1b[2m{text}{RESET}")
    } else {
        text.to_string()
    }
}

/// `4m59s`, `2h05m`, `850ms`; `overdue 3s` for a deadline passed.
pub fn countdown(ms: i64) -> String {
    if ms < 0 {
        return format!("overdue {}", countdown(-ms));
    }
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..=59 => format!("{s}s"),
        60..=3599 => format!("{}m{:02}s", s / 60, s % 60),
        3600..=86_399 => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
        _ => format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600),
    }
}

fn num(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::Number(n) => n.to_string(),
        _ => "-".into(),
    }
}

/// One line about a node's state, by kind.
fn summary(kind: &str, s: &Value) -> String {
    if s.is_null() {
        return "no answer".into();
    }
    match kind {
        "persistence" => {
            let commit = s["last_commit_ms"]
                .as_f64()
                .map_or("-".into(), |ms| format!("{ms:.1} ms"));
            let mut line = format!(
                "queued {} writes · last batch {} · last commit {commit} · {} commits, {} failed",
                num(s, "queued_writes"),
                num(s, "last_batch_size"),
                num(s, "commits"),
                num(s, "failed_commits"),
            );
            let c = &s["committing"];
            if c.is_object() {
                let _ = write!(
                    line,
                    " · committing {} writes, {} touches for {}",
                    num(c, "writes"),
                    num(c, "touches"),
                    countdown(c["for_ms"].as_i64().unwrap_or(0))
                );
            }
            line
        }
        "notifier_pool" => {
            let channels: Vec<&str> = s["channels"]
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            format!("channels: {}", channels.join(", "))
        }
        "factory" => format!(
            "{} workers · {} jobs queued",
            num(s, "workers"),
            num(s, "queued_jobs")
        ),
        "notifier_worker" => {
            let mut line = format!(
                "in flight {} · queued {} · retrying {} · delivered {} · failed {}",
                num(s, "in_flight"),
                num(s, "queued"),
                num(s, "retrying"),
                num(s, "delivered"),
                num(s, "failed"),
            );
            if let Some(at) = s["next_retry"].as_str() {
                let _ = write!(line, " · next retry {at}");
            }
            line
        }
        "router" => {
            let mut line = format!(
                "{} open ({} triggered, {} acknowledged) · next id {} · {} silences · {} restarts",
                num(s, "index_size"),
                num(s, "triggered"),
                num(s, "acknowledged"),
                num(s, "next_id"),
                num(s, "silences"),
                num(s, "incident_restarts"),
            );
            // Incidents whose actor kept failing: no actor, so no child line.
            for q in s["quarantined"].as_array().into_iter().flatten() {
                let what = if q["waiting_for_store"].as_bool() == Some(true) {
                    "RESTARTING (store unavailable)"
                } else {
                    "QUARANTINED"
                };
                let _ = write!(
                    line,
                    " · {what} incident-{} ({} failures: {})",
                    num(q, "incident_id"),
                    num(q, "failures"),
                    q["error"].as_str().unwrap_or("-"),
                );
            }
            line
        }
        "incident" => {
            let mut line = format!(
                "{} · step {} pass {}",
                s["title"].as_str().unwrap_or("-"),
                num(s, "step"),
                num(s, "repeat"),
            );
            let alerts = s["alerts"].as_u64().unwrap_or(0);
            let _ = write!(
                line,
                " · {alerts} alert{} · seen {}",
                if alerts == 1 { "" } else { "s" },
                num(s, "seen_count")
            );
            for t in s["timers"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let kind = t["kind"].as_str().unwrap_or("timer");
                let ms = t["in_ms"].as_i64().unwrap_or(0);
                let _ = write!(line, " · {kind} in {}", countdown(ms));
            }
            if s["restarts"].as_u64().unwrap_or(0) > 0 {
                let _ = write!(line, " · restarted {}×", num(s, "restarts"));
            }
            line
        }
        "supervisor" => format!(
            "{} children · at most {} restarts in {} ms",
            num(s, "children"),
            num(&s["restart_policy"], "max_restarts"),
            num(&s["restart_policy"], "within_ms"),
        ),
        "scheduler" => format!(
            "{} heartbeat monitors · {} recent restarts",
            num(s, "monitors"),
            num(s, "recent_restarts")
        ),
        "heartbeat" => format!(
            "{} · deadline {}",
            s["status"].as_str().unwrap_or("-"),
            s["deadline"].as_str().unwrap_or("-")
        ),
        _ => String::new(),
    }
}

/// The status shown: an incident's own status, else the actor's.
fn shown_status(node: &Value) -> &str {
    let actor = node["status"].as_str().unwrap_or("?");
    if node["kind"] == "incident" && actor == "running" {
        node["state"]["status"].as_str().unwrap_or(actor)
    } else {
        actor
    }
}

fn draw_node(
    node: &Value,
    prefix: &str,
    last: bool,
    root: bool,
    opts: DrawOptions,
    out: &mut String,
) {
    let branch = match (root, last) {
        (true, _) => "",
        (false, true) => "└── ",
        (false, false) => "├── ",
    };
    let kind = node["kind"].as_str().unwrap_or("?");
    let status = shown_status(node);
    let _ = writeln!(
        out,
        "{prefix}{branch}{} {} {} {} {}",
        node["name"].as_str().unwrap_or("?"),
        dim(kind, opts),
        paint(status, status, opts),
        dim(node["id"].as_str().unwrap_or(""), opts),
        summary(kind, &node["state"]),
    );
    let child_prefix = match (root, last) {
        (true, _) => prefix.to_string(),
        (false, true) => format!("{prefix}    "),
        (false, false) => format!("{prefix}│   "),
    };
    let children = node["children"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let total = node["children_total"].as_u64().unwrap_or(0) as usize;
    let more = total.saturating_sub(children.len());
    let cursor = node["next_cursor"].as_str();
    for (i, c) in children.iter().enumerate() {
        let is_last = i + 1 == children.len() && more == 0 && cursor.is_none();
        draw_node(c, &child_prefix, is_last, false, opts, out);
    }
    if more > 0 || cursor.is_some() {
        let next = cursor.map_or(String::new(), |c| format!(" (next page: --cursor {c})"));
        let _ = writeln!(
            out,
            "{child_prefix}└── {}",
            dim(&format!("… {more} more{next}"), opts)
        );
    }
}

/// One actor (`GET /v1/actors/{id}`) and what it holds of its children.
pub fn draw_one(node: &Value, opts: DrawOptions) -> String {
    let mut out = String::new();
    draw_node(node, "", true, true, opts, &mut out);
    out
}

/// The whole answer of `GET /v1/actors` as text.
pub fn draw(answer: &Value, opts: DrawOptions) -> String {
    let mut out = String::new();
    match &answer["tree"] {
        Value::Null => out.push_str("no actor matches\n"),
        tree => draw_node(tree, "", true, true, opts, &mut out),
    }
    let _ = writeln!(
        out,
        "{}",
        dim(
            &format!(
                "{} actors shown · gathered in {:.1} ms",
                num(answer, "actors"),
                answer["took_ms"].as_f64().unwrap_or(0.0)
            ),
            opts
        )
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample() -> Value {
        json!({
            "tree": {
                "id": "0.0", "name": "lim", "kind": "supervisor", "status": "running",
                "state": {"children": 2, "restart_policy": {"max_restarts": 3, "within_ms": 10000}},
                "children_total": 2, "next_cursor": null,
                "children": [
                    {"id": "0.1", "name": "persistence", "kind": "persistence", "status": "unresponsive",
                     "state": null, "children": [], "children_total": 0, "next_cursor": null},
                    {"id": "0.5", "name": "router", "kind": "router", "status": "running",
                     "state": {"index_size": 3, "triggered": 2, "acknowledged": 1, "next_id": 4,
                               "silences": 0, "incident_restarts": 0},
                     "children_total": 3, "next_cursor": "7",
                     "children": [
                        {"id": "0.7", "name": "incident 7", "kind": "incident", "status": "running",
                         "state": {"status": "triggered", "title": "HighLatency", "step": 1, "repeat": 0,
                                   "alerts": 2, "seen_count": 9, "restarts": 1,
                                   "timers": [{"kind": "escalation", "deadline": "x", "in_ms": 299_500}]},
                         "children": [], "children_total": 0, "next_cursor": null}
                     ]}
                ]
            },
            "actors": 4, "took_ms": 1.25
        })
    }

    #[test]
    fn draws_box_lines_and_summaries() {
        let text = draw(&sample(), DrawOptions::default());
        let expected = "\
lim supervisor running 0.0 2 children · at most 3 restarts in 10000 ms
├── persistence persistence unresponsive 0.1 no answer
└── router router running 0.5 3 open (2 triggered, 1 acknowledged) · next id 4 · 0 silences · 0 restarts
    ├── incident 7 incident triggered 0.7 HighLatency · step 1 pass 0 · 2 alerts · seen 9 · escalation in 4m59s · restarted 1×
    └── … 2 more (next page: --cursor 7)
4 actors shown · gathered in 1.2 ms
";
        assert_eq!(text, expected);
    }

    #[test]
    fn colours_follow_status() {
        let text = draw(&sample(), DrawOptions { color: true });
        assert!(text.contains("\x1b[31munresponsive\x1b[0m"));
        assert!(text.contains("\x1b[31mtriggered\x1b[0m"));
        assert!(text.contains("\x1b[32mrunning\x1b[0m"));
        let busy = json!({"tree": {"id": "0.1", "name": "persistence", "kind": "persistence",
            "status": "busy", "children": [], "children_total": 0, "next_cursor": null,
            "state": {"queued_writes": 3, "last_batch_size": 12, "last_commit_ms": 1.5, "commits": 9,
                      "failed_commits": 0, "committing": {"writes": 12, "touches": 5000, "for_ms": 740}}},
            "actors": 1, "took_ms": 50.0});
        let text = draw(&busy, DrawOptions { color: true });
        assert!(text.contains("\x1b[33mbusy\x1b[0m"), "{text}");
        assert!(
            text.contains("committing 12 writes, 5000 touches for 740ms"),
            "{text}"
        );
        assert!(!draw(&sample(), DrawOptions::default()).contains('\x1b'));
    }

    #[test]
    fn countdowns() {
        assert_eq!(countdown(850), "850ms");
        assert_eq!(countdown(59_999), "59s");
        assert_eq!(countdown(299_500), "4m59s");
        assert_eq!(countdown(7_500_000), "2h05m");
        assert_eq!(countdown(-3_000), "overdue 3s");
        assert_eq!(countdown(90_000_000), "1d01h");
    }

    #[test]
    fn nothing_matching_says_so() {
        let text = draw(
            &json!({"tree": null, "actors": 0, "took_ms": 0.1}),
            DrawOptions::default(),
        );
        assert!(text.starts_with("no actor matches\n"));
    }
}
