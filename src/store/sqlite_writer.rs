//! The SQLite store's writer: where every write runs, as a synchronous job
//! on a `rusqlite` connection.
//!
//! A file database's writer is a thread of its own that owns its own
//! connection (`lim-sqlite-writer`); jobs reach it over a channel and are
//! run one at a time, in order, each answered on a oneshot. It was an sqlx
//! connection, on which a statement is a round trip to the connection's
//! worker thread and every statement's result and row another message
//! back: a group commit woke the task driving it some fifteen times (the
//! commit thread switched 4,662 times a second for ~300 commits under the
//! mixed ingest load, and sqlx's worker was preempted 4,350 times a
//! second: BENCHMARKS.md, ninth session). Here a whole commit is one job:
//! one wake of this thread, one of the task that waits for the answer.
//! Its statements are prepared once and kept (`prepare_cached`).
//!
//! An in-memory database lives on its pool's one connection, which the
//! reads share, so there a job borrows that connection's handle from sqlx
//! (`lock_handle`) and runs on the calling task; an in-memory database is
//! for tests and quick tries, and such a job is short.
//!
//! After a failed job a transaction left open is rolled back; if that fails
//! too, the connection is closed (which rolls it back) and the next job
//! opens a fresh one: on a full or failing disk lim writes again once the
//! disk has room (tests/fault_store.rs).

use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use incident_actors::ports::StoreError;
use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::SqlitePool;

/// Statements a writer connection keeps prepared: a group commit's ten
/// and the few other writes, with room to spare.
const PREPARED_STATEMENTS: usize = 32;

/// A job for the writer: given the connection, or why there is none.
type Job = Box<dyn FnOnce(Result<&Connection, StoreError>) + Send>;

/// What the writer thread is sent.
pub(super) enum Command {
    Run(Job),
    /// Close the connection (a later job opens it again); answered once closed.
    Close(tokio::sync::oneshot::Sender<()>),
}

/// How a file database's writer connection is opened.
#[derive(Clone, Debug)]
pub(super) struct WriterOptions {
    pub path: PathBuf,
    pub busy_timeout: Duration,
    /// `PRAGMA cache_size` (negative: KiB).
    pub cache_size: i64,
    pub wal_autocheckpoint: u32,
}

impl WriterOptions {
    fn open(&self) -> Result<Connection, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // Its WAL writes gathered, a commit's frames one write
        // (`sqlite_wal_gather`); the read pool stays on SQLite's default VFS.
        super::sqlite_wal_gather::register().map_err(StoreError::Unavailable)?;
        let conn =
            Connection::open_with_flags_and_vfs(&self.path, flags, super::sqlite_wal_gather::NAME)
                .map_err(store_error)?;
        conn.busy_timeout(self.busy_timeout).map_err(store_error)?;
        conn.set_prepared_statement_cache_capacity(PREPARED_STATEMENTS);
        // The pool's connections made the file a WAL database already (the
        // journal mode is kept in the file); the rest is per connection.
        // Commits sync nothing (`synchronous=NORMAL`, which the WAL's
        // gathered writes also rely on: `sqlite_wal_gather`): the store's
        // `WalFlush` syncs the WAL after them, outside the write lock,
        // before anyone is answered. Statement journals in memory: nearly
        // every statement of a group commit needs one (a write that may
        // abort), and past 64 KiB they spilled to a temporary file. Only
        // here: on the read pool it would also keep every large sort in
        // memory.
        conn.execute_batch(&format!(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; \
             PRAGMA wal_autocheckpoint = {}; PRAGMA cache_size = {}; PRAGMA temp_store = MEMORY;",
            self.wal_autocheckpoint, self.cache_size
        ))
        .map_err(store_error)?;
        Ok(conn)
    }
}

/// Where the store's writes run.
#[derive(Debug)]
pub(super) enum Writer {
    /// A file database: the writer thread's queue of jobs.
    Own(mpsc::Sender<Command>),
    /// An in-memory database: the pool's one connection is the database.
    Shared(SqlitePool),
}

impl Writer {
    /// Opens the connection now, so that a database that cannot be written
    /// is found at start and not at the first commit, and starts its
    /// thread.
    pub(super) fn open(options: WriterOptions) -> std::io::Result<Writer> {
        let first = options
            .open()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        let (jobs, queue) = mpsc::channel::<Command>();
        std::thread::Builder::new()
            .name("lim-sqlite-writer".into())
            .spawn(move || {
                let mut conn = Some(first);
                // Ends when the store drops its sender.
                while let Ok(command) = queue.recv() {
                    let job = match command {
                        Command::Run(job) => job,
                        Command::Close(answer) => {
                            drop(conn.take());
                            let _ = answer.send(());
                            continue;
                        }
                    };
                    if conn.is_none() {
                        match options.open() {
                            Ok(c) => conn = Some(c),
                            Err(e) => {
                                job(Err(e));
                                continue;
                            }
                        }
                    }
                    let Some(c) = conn.as_ref() else { continue };
                    // A job that panics fails alone (its caller is told, its
                    // answer dropped): the thread and later writes go on, on
                    // a fresh connection.
                    let ran = std::panic::catch_unwind(AssertUnwindSafe(|| job(Ok(c))));
                    if ran.is_err() || !settle(c) {
                        conn = None;
                    } else {
                        super::sqlite_wal_gather::drop_uncommitted(c);
                    }
                }
            })?;
        Ok(Writer::Own(jobs))
    }

    /// Runs `work` on the writer connection, after the jobs before it.
    pub(super) async fn run<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match self {
            Writer::Own(jobs) => {
                let (answer, answered) = tokio::sync::oneshot::channel();
                let job: Job = Box::new(move |conn| {
                    let _ = answer.send(conn.and_then(work));
                });
                jobs.send(Command::Run(job)).map_err(|_| closed())?;
                answered.await.map_err(|_| {
                    StoreError::Unavailable("the SQLite write failed without an answer".into())
                })?
            }
            Writer::Shared(pool) => {
                let mut conn = pool.acquire().await.map_err(super::decode::store_error)?;
                let mut handle = conn
                    .lock_handle()
                    .await
                    .map_err(super::decode::store_error)?;
                // SAFETY: the handle is sqlx's open connection, locked out of
                // its worker thread until `handle` drops, after `borrowed`
                // (which does not close a handle it does not own).
                let borrowed = unsafe { Connection::from_handle(handle.as_raw_handle().as_ptr()) }
                    .map_err(store_error)?;
                let result = work(&borrowed);
                // An in-memory database's one connection is the database: it
                // is never closed, whatever `settle` finds.
                settle(&borrowed);
                drop(borrowed);
                drop(handle);
                result
            }
        }
    }

    /// Closes the connection, after the jobs before this.
    pub(super) async fn close(&self) {
        match self {
            Writer::Own(jobs) => {
                let (answer, answered) = tokio::sync::oneshot::channel::<()>();
                if jobs.send(Command::Close(answer)).is_ok() {
                    let _ = answered.await;
                }
            }
            Writer::Shared(pool) => pool.close().await,
        }
    }
}

/// After a job: a transaction it left open (it failed halfway) is rolled
/// back. False when that failed too: the connection is to be closed, which
/// rolls it back.
fn settle(conn: &Connection) -> bool {
    conn.is_autocommit() || conn.execute_batch("ROLLBACK").is_ok()
}

fn closed() -> StoreError {
    StoreError::Unavailable("the SQLite writer thread stopped".into())
}

/// A writer's error as the store's: a constraint the data broke is the
/// caller's (`Rejected`), anything else the database's (`Unavailable`).
pub(super) fn store_error(e: rusqlite::Error) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, message)
            if f.code == rusqlite::ErrorCode::ConstraintViolation =>
        {
            StoreError::Rejected(message.clone().unwrap_or_else(|| e.to_string()))
        }
        _ => StoreError::Unavailable(e.to_string()),
    }
}
