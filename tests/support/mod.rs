//! Helpers shared by the integration tests (`mod support;`): where the test
//! databases are, a brand-new PostgreSQL database per test, a SQLite file in
//! a temporary folder.
//!
//! PostgreSQL tests never skip silently: without `TEST_DATABASE_URL` they use
//! `postgres://postgres@127.0.0.1:5432/test` and fail if it is not there.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::{Connection, PgConnection};

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The PostgreSQL server the tests use: `TEST_DATABASE_URL`, else the local
/// default.
pub fn test_database_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_TEST_DATABASE_URL.to_string())
}

/// A database name no other test (in this process or another) uses:
/// `lim_test_<pid>_<counter>_<nanos>`.
pub fn unique_database_name() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("lim_test_{}_{n}_{nanos}", std::process::id())
}

/// `url` with its database replaced by `name` (query parameters kept).
pub fn postgres_url_with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map(|i| i + 3).unwrap_or(0);
    let server = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{name}?{query}"),
        None => format!("{server}/{name}"),
    }
}

/// The URL of a database on the test server that does not exist yet.
pub fn missing_postgres_url() -> String {
    postgres_url_with_database(&test_database_url(), &unique_database_name())
}

/// Creates a brand-new, empty database on the test server and returns its URL.
pub async fn fresh_postgres_url() -> String {
    let server = test_database_url();
    let name = unique_database_name();
    let mut conn = PgConnection::connect(&server)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL test server {server} unreachable: {e}"));
    sqlx::raw_sql(&format!("CREATE DATABASE \"{name}\""))
        .execute(&mut conn)
        .await
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    let _ = conn.close().await;
    postgres_url_with_database(&server, &name)
}

/// A SQLite database file in a fresh temporary folder (not created yet).
/// Keep the `TempDir`: dropping it deletes the folder.
pub fn temp_sqlite_url() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!("sqlite://{}", dir.path().join("lim.db").display());
    (dir, url)
}
pub mod private_postgres;

/// A core system over a new SQLite file, paging lim's console: what the
/// HTTP tests run `lim::http::app` on without a socket. Keep the folder
/// as long as the system.
pub async fn sqlite_system() -> (tempfile::TempDir, incident_actors::System) {
    let (dir, url) = temp_sqlite_url();
    let store = lim::store::open_store(&url)
        .await
        .expect("open sqlite store");
    let system = incident_actors::spawn_system(
        incident_actors::SystemConfig::default(),
        incident_actors::SystemDeps {
            store,
            clock: std::sync::Arc::new(incident_actors::time::SystemClock),
            channels: vec![std::sync::Arc::<incident_actors::console::ConsoleChannel>::default()],
        },
    )
    .await
    .expect("spawn system");
    (dir, system)
}
