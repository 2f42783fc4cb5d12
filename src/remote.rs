//! The CLI's commands that talk to a running server (`lim incidents`,
//! `lim ack`, `lim resolve`, `lim snooze`, `lim escalate`, `lim note`):
//! one API call each through [`crate::client::ApiClient`], printed as a
//! table for people or, with `--json`, as the server's JSON for scripts.

use std::fmt::Write as _;

use reqwest::Method;
use serde_json::{json, Value};

use crate::cli::{
    ActionArgs, ActorsArgs, ActorsCommand, IncidentsArgs, IncidentsCommand, NoteArgs, OncallArgs,
    Remote, SilenceArgs, SilenceCommand, SnoozeArgs,
};
use crate::client::{ApiClient, ClientError};

fn client(remote: &Remote) -> Result<ApiClient, ClientError> {
    ApiClient::new(&remote.server, remote.token.clone())
}

fn render(remote: &Remote, value: &Value, table: impl FnOnce(&Value) -> String) -> String {
    if remote.json {
        serde_json::to_string_pretty(value).unwrap_or_default()
    } else {
        table(value)
    }
}

/// Whether `lim actors` colours its output.
fn colours(choice: &str) -> Result<bool, ClientError> {
    use std::io::IsTerminal;
    match choice {
        "always" => Ok(true),
        "never" => Ok(false),
        "auto" => Ok(std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()),
        other => Err(ClientError::Usage(format!(
            "--color {other:?}: expected auto, always or never"
        ))),
    }
}

/// `lim actors` once: the tree, one actor (`show`) or a restart.
pub async fn actors(args: &ActorsArgs) -> Result<String, ClientError> {
    let api = client(&args.remote)?;
    let opts = crate::tree_view::DrawOptions {
        color: colours(&args.color)?,
    };
    let one = |v: &Value| crate::tree_view::draw_one(v, opts);
    match &args.command {
        Some(ActorsCommand::Show { id }) => {
            let v = api
                .request(Method::GET, &format!("/v1/actors/{id}"), &[], None)
                .await?;
            // The text view is the one line; the state in full is JSON's.
            Ok(render(&args.remote, &v, |v| {
                format!(
                    "{}{}\n",
                    one(v),
                    serde_json::to_string_pretty(&v["state"]).unwrap_or_default()
                )
            }))
        }
        Some(ActorsCommand::Restart { id }) => {
            let v = api
                .request(Method::POST, &format!("/v1/actors/{id}/restart"), &[], None)
                .await?;
            Ok(render(&args.remote, &v, |v| {
                format!("restarted: {}", one(v))
            }))
        }
        None => {
            let v = actor_tree(&api, args).await?;
            Ok(render(&args.remote, &v, |v| {
                crate::tree_view::draw(v, opts)
            }))
        }
    }
}

async fn actor_tree(api: &ApiClient, args: &ActorsArgs) -> Result<Value, ClientError> {
    let mut query = vec![("limit", args.limit.to_string())];
    for (key, value) in [
        ("kind", &args.kind),
        ("status", &args.status),
        ("cursor", &args.cursor),
    ] {
        if let Some(v) = value {
            query.push((key, v.clone()));
        }
    }
    api.request(Method::GET, "/v1/actors", &query, None).await
}

/// `lim actors --watch`: redraws the tree every `every` seconds, in place,
/// until interrupted. A failed fetch is shown and retried, not fatal: the
/// server restarting is exactly when an operator watches.
pub async fn watch_actors(args: &ActorsArgs, every: f64) -> Result<(), ClientError> {
    if !(every.is_finite() && every >= 0.1) {
        return Err(ClientError::Usage(format!(
            "--watch {every}: expected an interval of at least 0.1 seconds"
        )));
    }
    let api = client(&args.remote)?;
    let opts = crate::tree_view::DrawOptions {
        color: colours(&args.color)?,
    };
    let mut tick = tokio::time::interval(std::time::Duration::from_secs_f64(every));
    loop {
        tick.tick().await;
        let body = match actor_tree(&api, args).await {
            Ok(v) if args.remote.json => serde_json::to_string_pretty(&v).unwrap_or_default(),
            Ok(v) => crate::tree_view::draw(&v, opts),
            Err(e) => format!("lim: {e} (retrying every {every}s)\n"),
        };
        // Clear the screen and draw from the top. A closed stdout (the
        // reader went away: `| head`) ends the watch.
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if write!(out, "\x1b[2J\x1b[H{body}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return Ok(());
        }
    }
}

pub async fn incidents(args: &IncidentsArgs) -> Result<String, ClientError> {
    let api = client(&args.remote)?;
    match &args.command {
        IncidentsCommand::List { status, limit } => {
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = status {
                query.push(("status", s.clone()));
            }
            let v = api
                .request(Method::GET, "/v1/incidents", &query, None)
                .await?;
            Ok(render(&args.remote, &v, incident_table))
        }
        IncidentsCommand::Show { id } => {
            let v = api
                .request(Method::GET, &format!("/v1/incidents/{id}"), &[], None)
                .await?;
            Ok(render(&args.remote, &v, incident_detail))
        }
    }
}

async fn act(remote: &Remote, id: u64, action: &str, body: Value) -> Result<String, ClientError> {
    let v = client(remote)?
        .request(
            Method::POST,
            &format!("/v1/incidents/{id}/{action}"),
            &[],
            Some(body),
        )
        .await?;
    Ok(render(remote, &v, |v| {
        format!("incident {} is {}\n", text(&v["id"]), text(&v["status"]))
    }))
}

pub async fn ack(a: &ActionArgs) -> Result<String, ClientError> {
    act(&a.remote, a.id, "acknowledge", json!({ "by": a.by })).await
}

pub async fn resolve(a: &ActionArgs) -> Result<String, ClientError> {
    act(&a.remote, a.id, "resolve", json!({ "by": a.by })).await
}

pub async fn escalate(a: &ActionArgs) -> Result<String, ClientError> {
    act(&a.remote, a.id, "escalate", json!({ "by": a.by })).await
}

pub async fn snooze(a: &SnoozeArgs) -> Result<String, ClientError> {
    act(
        &a.remote,
        a.id,
        "snooze",
        json!({ "for": a.duration, "by": a.by }),
    )
    .await
}

pub async fn note(a: &NoteArgs) -> Result<String, ClientError> {
    act(
        &a.remote,
        a.id,
        "notes",
        json!({ "text": a.text, "by": a.by }),
    )
    .await
}

pub async fn silence(args: &SilenceArgs) -> Result<String, ClientError> {
    let api = client(&args.remote)?;
    let v = match &args.command {
        SilenceCommand::Add {
            matchers,
            duration,
            comment,
            by,
        } => {
            let body = json!({"matchers": matchers, "for": duration, "comment": comment, "created_by": by});
            api.request(Method::POST, "/v1/silences", &[], Some(body))
                .await?
        }
        SilenceCommand::List => {
            let v = api.request(Method::GET, "/v1/silences", &[], None).await?;
            return Ok(render(&args.remote, &v, silence_table));
        }
        SilenceCommand::Expire { id } => {
            api.request(
                Method::POST,
                &format!("/v1/silences/{id}/expire"),
                &[],
                None,
            )
            .await?
        }
    };
    Ok(render(&args.remote, &v, |v| {
        format!(
            "silence {} is {} until {}\n",
            text(&v["id"]),
            text(&v["state"]),
            text(&v["ends_at"])
        )
    }))
}

/// `lim oncall`: every schedule with who is on call and until when.
pub async fn oncall(args: &OncallArgs) -> Result<String, ClientError> {
    let query: Vec<(&str, String)> = args.at.iter().map(|at| ("at", at.clone())).collect();
    let v = client(&args.remote)?
        .request(Method::GET, "/v1/oncall", &query, None)
        .await?;
    Ok(render(&args.remote, &v, oncall_table))
}

fn oncall_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["schedules"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let users = s["users"]
                .as_array()
                .map(|u| {
                    u.iter()
                        .map(|u| text(&u["name"]))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .filter(|u| !u.is_empty())
                .unwrap_or_else(|| "nobody".to_string());
            vec![
                text(&s["schedule"]),
                users,
                text(&s["until"]),
                text(&s["source"]),
                text(&s["time_zone"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no schedules configured\n".to_string();
    }
    table(
        &["SCHEDULE", "ON CALL", "UNTIL", "SOURCE", "TIME ZONE"],
        &rows,
    )
}

fn silence_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["silences"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            let matchers = s["matchers"]
                .as_array()
                .map(|m| m.iter().map(text).collect::<Vec<_>>().join(" "))
                .unwrap_or_default();
            vec![
                text(&s["id"]),
                text(&s["state"]),
                text(&s["ends_at"]),
                text(&s["created_by"]),
                matchers,
                text(&s["comment"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no silences\n".to_string();
    }
    table(&["ID", "STATE", "ENDS", "BY", "MATCHERS", "COMMENT"], &rows)
}

/// A JSON scalar as plain text (strings unquoted, null as `-`).
fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Left-aligned columns, widths from the widest cell; the last column is free.
fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let last = cells.len().saturating_sub(1);
        for (i, cell) in cells.iter().enumerate() {
            if i == last {
                out.push_str(cell);
            } else {
                let _ = write!(out, "{cell:<width$}  ", width = widths[i]);
            }
        }
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

fn incident_table(v: &Value) -> String {
    let rows: Vec<Vec<String>> = v["incidents"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|i| {
            vec![
                text(&i["id"]),
                text(&i["status"]),
                text(&i["severity"]),
                text(&i["service"]),
                text(&i["alert_count"]),
                text(&i["created_at"]),
                text(&i["title"]),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "no incidents\n".to_string();
    }
    table(
        &[
            "ID", "STATUS", "SEVERITY", "SERVICE", "ALERTS", "CREATED", "TITLE",
        ],
        &rows,
    )
}

fn incident_detail(v: &Value) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "incident {}: {}", text(&v["id"]), text(&v["title"]));
    for key in [
        "status",
        "severity",
        "service",
        "created_at",
        "updated_at",
        "acknowledged_by",
        "resolved_by",
    ] {
        let _ = writeln!(out, "  {key:<16}{}", text(&v[key]));
    }
    let labels = v["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", text(v)))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let _ = writeln!(out, "  {:<16}{labels}", "labels");
    let _ = writeln!(
        out,
        "  {:<16}{}",
        "next step at",
        text(&v["escalation"]["next_at"])
    );
    let _ = writeln!(out, "\ntimeline:");
    for e in v["timeline"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let who = match (&e["by"], &e["via"]) {
            (Value::String(by), Value::String(via)) => format!(" by {by} via {via}"),
            _ => String::new(),
        };
        let extra = match e["type"].as_str() {
            Some("note_added") => format!(": {}", text(&e["text"])),
            Some("snoozed") => format!(" until {}", text(&e["until"])),
            Some("notified") => format!(" step {} repeat {}", text(&e["step"]), text(&e["repeat"])),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "  {}  {}{who}{extra}",
            text(&e["at"]),
            text(&e["type"])
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_keep_the_last_column_free() {
        let t = table(
            &["ID", "TITLE"],
            &[
                vec!["1".into(), "a long title".into()],
                vec!["22".into(), "x".into()],
            ],
        );
        assert_eq!(t, "ID  TITLE\n1   a long title\n22  x\n");
    }

    #[test]
    fn empty_list_says_so() {
        assert_eq!(incident_table(&json!({"incidents": []})), "no incidents\n");
    }

    #[test]
    fn detail_shows_timeline_attribution() {
        let v = json!({
            "id": 3, "title": "p99 latency", "status": "acknowledged", "labels": {"model": "gpt-4o"},
            "escalation": {"next_at": null},
            "timeline": [{"at": "2026-01-01T00:00:00.000Z", "type": "acknowledged", "by": "alice", "via": "cli"}]
        });
        let out = incident_detail(&v);
        assert!(out.contains("incident 3: p99 latency"));
        assert!(out.contains("model=gpt-4o"));
        assert!(out.contains("acknowledged by alice via cli"));
    }
}
