//! Storage: the sqlx implementations of the core's `Store` port.
//!
//! One schema design, two backends, chosen by the database URL:
//!
//! * `sqlite:` / `sqlite://path` / `sqlite::memory:` → [`SqliteStore`] (the
//!   embedded default, `sqlite://./data/lim.db`, WAL, each write's WAL
//!   frames fsynced before it is answered: [`group_sync`]);
//! * `postgres://` / `postgresql://` → [`PostgresStore`].
//!
//! [`open_store`] creates what is missing (the SQLite file and its folder, the
//! PostgreSQL database), runs the migrations in `migrations/<backend>/` and
//! returns the store behind the port. Backend-neutral code lives in
//! [`plan`] (a `WriteBatch` turned into rows, once), [`query`] (an incident
//! list query turned into SQL with bound parameters), [`decode`] (rows
//! turned back into domain values, sqlx errors into `StoreError`) and
//! [`deliveries`] (the delivery log's rows, and attempts applied to them).

mod decode;
mod deliveries;
mod group_sync;
mod heartbeats;
mod journal_probe;
mod label_backlog;
mod plan;
pub mod postgres;
mod query;
mod silences;
pub mod sqlite;
mod sqlite_allocator;
mod sqlite_batch;
mod sqlite_wal;
mod sqlite_wal_gather;
mod sqlite_writer;

use std::path::PathBuf;
use std::sync::Arc;

use incident_actors::ports::SharedStore;

pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;

/// Which backend a database URL selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The backend selected by `url`'s scheme: `sqlite:` (with or without
    /// `//`) or `postgres://` / `postgresql://`.
    pub fn from_url(url: &str) -> Result<Backend, StoreOpenError> {
        let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
        match scheme {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" if url[scheme.len()..].starts_with("://") => {
                Ok(Backend::Postgres)
            }
            _ => Err(StoreOpenError::UnsupportedScheme {
                // Only the scheme: the rest of a URL may hold a password.
                scheme: scheme.chars().take(32).collect(),
            }),
        }
    }
}

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum StoreOpenError {
    #[error(
        "unsupported database URL scheme {scheme:?}: expected sqlite:… (e.g. sqlite://./data/lim.db) \
         or postgres://…"
    )]
    UnsupportedScheme { scheme: String },
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] sqlx::Error),
    #[error("cannot create the folder {} for the SQLite database: {source}", path.display())]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot create the PostgreSQL database {name:?}: {source}")]
    CreateDatabase { name: String, source: sqlx::Error },
    #[error("cannot connect to the database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("cannot migrate the database schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot flush the database's write-ahead log: {0}")]
    Sync(String),
    #[error("cannot open the SQLite writer connection: {0}")]
    Writer(String),
}

/// Opens (creating if missing) and migrates the store `url` names.
pub async fn open_store(url: &str) -> Result<SharedStore, StoreOpenError> {
    Ok(match Backend::from_url(url)? {
        Backend::Sqlite => Arc::new(SqliteStore::open(url).await?),
        Backend::Postgres => Arc::new(PostgresStore::open(url).await?),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_selects_the_backend() {
        for url in ["sqlite://./data/lim.db", "sqlite:lim.db", "sqlite::memory:"] {
            assert_eq!(Backend::from_url(url).unwrap(), Backend::Sqlite, "{url}");
        }
        for url in [
            "postgres://u@h/db",
            "postgresql://u:p@h:5432/db?sslmode=disable",
        ] {
            assert_eq!(Backend::from_url(url).unwrap(), Backend::Postgres, "{url}");
        }
        for url in [
            "mysql://u:secret@h/db",
            "",
            "data/lim.db",
            "postgres:db",
            "SQLITE://x.db",
        ] {
            let err = Backend::from_url(url).unwrap_err();
            assert!(
                matches!(err, StoreOpenError::UnsupportedScheme { .. }),
                "{url}"
            );
            assert!(!err.to_string().contains("secret"));
        }
    }
}
