//! The SQLite store's writer connection, held outside sqlx's pool.
//!
//! Every write of a file database goes through one connection of its own
//! (its page cache stays warm: `SqliteStore`). It was a pool of one, and
//! sqlx pings a connection each time it goes back to a pool
//! (`PoolConnection`'s `return_to_pool`, whatever the pool's options): a
//! round trip to the connection's worker thread after every group commit,
//! and the next commit's acquire waited for it, on the one path every
//! state change takes in turn. A connection to a local file does not go
//! stale, so here it is a plain `SqliteConnection` behind an async mutex,
//! opened with the store and again after one was discarded.
//!
//! A write that failed as `Unavailable` (a full or failing disk) may leave
//! sqlx's connection believing it is still inside a transaction, so such a
//! connection is discarded (`close_on_drop`) and the next write opens a
//! fresh one (`WriterConn::discard_after_failure`). An in-memory database
//! is its pool's one connection, so there the writer is that pool's, and
//! it is never discarded.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use incident_actors::ports::StoreError;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqlitePool};
use sqlx::{ConnectOptions, Connection, Sqlite};
use tokio::sync::{Mutex, OwnedMutexGuard};

/// Where the store's writes go.
#[derive(Clone, Debug)]
pub(super) enum Writer {
    /// A file database: one connection of its own, never pinged.
    Own {
        slot: Arc<Mutex<Option<SqliteConnection>>>,
        /// Boxed: the options are large, and a pool handle is one pointer.
        options: Box<SqliteConnectOptions>,
    },
    /// An in-memory database: the pool's one connection is the database.
    Shared(SqlitePool),
}

/// The writer connection while one write holds it.
pub(super) enum WriterConn {
    Own {
        guard: OwnedMutexGuard<Option<SqliteConnection>>,
        discard: bool,
    },
    Shared(PoolConnection<Sqlite>),
}

impl Writer {
    /// Opens the connection now, so that a database that cannot be written
    /// is found at start and not at the first commit.
    pub(super) async fn open(options: SqliteConnectOptions) -> Result<Writer, sqlx::Error> {
        let conn = options.connect().await?;
        Ok(Writer::Own {
            slot: Arc::new(Mutex::new(Some(conn))),
            options: Box::new(options),
        })
    }

    /// The connection, once no other write holds it; a discarded one is
    /// opened again first.
    pub(super) async fn acquire(&self) -> Result<WriterConn, sqlx::Error> {
        match self {
            Writer::Own { slot, options } => {
                let mut guard = slot.clone().lock_owned().await;
                if guard.is_none() {
                    *guard = Some(options.connect().await?);
                }
                Ok(WriterConn::Own {
                    guard,
                    discard: false,
                })
            }
            Writer::Shared(pool) => Ok(WriterConn::Shared(pool.acquire().await?)),
        }
    }

    /// Closes the connection once the write holding it is done.
    pub(super) async fn close(&self) {
        match self {
            Writer::Own { slot, .. } => {
                if let Some(conn) = slot.lock().await.take() {
                    let _ = conn.close().await;
                }
            }
            Writer::Shared(pool) => pool.close().await,
        }
    }
}

impl WriterConn {
    /// After a failed write the connection is closed instead of going back
    /// for the next write. On a full or failing disk (SQLITE_FULL,
    /// SQLITE_IOERR) SQLite rolls the transaction back by itself; sqlx's
    /// rollback on drop then fails, and its connection keeps believing it
    /// is inside a transaction, refusing every later BEGIN ("attempted to
    /// call begin_with at non-zero transaction depth") for good: lim would
    /// never recover once the disk had room again (tests/fault_store.rs). A
    /// fresh connection has no such memory; closing one with a transaction
    /// still open rolls it back. A rejected write (a constraint) is rolled
    /// back normally and keeps its connection, and an in-memory database's
    /// one connection is never closed ([`WriterConn::close_on_drop`]).
    pub(super) fn discard_after_failure<T>(&mut self, result: &Result<T, StoreError>) {
        if matches!(result, Err(StoreError::Unavailable(_))) {
            self.close_on_drop();
        }
    }

    /// Closes the connection when this write lets go of it, instead of
    /// keeping it for the next (which opens a fresh one). Not an in-memory
    /// database's: closing its one connection would drop the database.
    pub(super) fn close_on_drop(&mut self) {
        if let WriterConn::Own { discard, .. } = self {
            *discard = true;
        }
    }
}

impl Drop for WriterConn {
    fn drop(&mut self) {
        if let WriterConn::Own {
            guard,
            discard: true,
        } = self
        {
            // Dropping a connection ends its worker thread, which closes the
            // database handle and so rolls back a transaction left open.
            guard.take();
        }
    }
}

impl Deref for WriterConn {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        match self {
            WriterConn::Own { guard, .. } => guard
                .as_ref()
                .expect("an acquired writer holds a connection until dropped"),
            WriterConn::Shared(conn) => conn,
        }
    }
}

impl DerefMut for WriterConn {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        match self {
            WriterConn::Own { guard, .. } => guard
                .as_mut()
                .expect("an acquired writer holds a connection until dropped"),
            WriterConn::Shared(conn) => conn,
        }
    }
}
