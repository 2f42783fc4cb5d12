//! `lim`, the server: everything around the core crate `incident_actors`.
//!
//! * [`auth`]: services with integration keys, API tokens with scopes,
//!   compared in constant time.
//! * [`channels`]: the notification channels that leave the process:
//!   email (SMTP), signed webhooks, Slack (Block Kit with action buttons).
//! * [`cli`]: the `lim` command line (`serve`, `check-config`, and the
//!   commands that act on a running server, run by [`remote`] through
//!   [`client`], a small client of the HTTP API).
//! * [`config`]: defaults, the TOML file, environment overrides; validation
//!   with `FILE:LINE:COL` diagnostics.
//! * [`server`]: `serve` binds the listener, starts the actor system (retrying
//!   while the database is down) and shuts down gracefully.
//! * [`http`]: the axum API (`app(state)`), its errors and handlers.
//! * [`slack`]: lim as a Slack app: signed button clicks and the `/lim`
//!   slash command (the handlers are in `http::slack`).
//! * [`store`]: the sqlx implementations of the core's `Store` port
//!   (SQLite and PostgreSQL), chosen by URL.
//! * [`telemetry`]: logging (text or JSON) via tracing.
//! * [`tree_view`]: the live actor tree drawn for a terminal (`lim actors`).
//! * [`telemetry`]: logging (text or JSON) via tracing, and OTLP export of
//!   the spans when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.
//!
//! Dependency direction: this crate depends on `incident_actors`, never the
//! reverse. `main.rs` only parses the command line and calls in here.

pub mod auth;
pub mod channels;
pub mod cli;
pub mod client;
pub mod config;
pub mod http;
pub mod remote;
pub mod server;
pub mod slack;
pub mod store;
pub mod telemetry;
pub mod tree_view;
