//! A file database's WAL, made durable and kept short: [`WalFlush`] syncs
//! the WAL on the writer thread right after each group commit
//! ([`AfterJob::Sync`]) and, for the store's other writes,
//! after the writes that returned before it (shared by all of them,
//! `group_sync`); it refuses every later write once a sync, a
//! checkpoint or the file system's journal has failed, and guards each
//! writer job with that refusal; [`Checkpointer`] copies the WAL into the
//! database file every [`CHECKPOINT_EVERY`] on a connection of the read
//! pool, off the commit path. Part of the SQLite store (`sqlite`), which
//! opens both for a file database (an in-memory one has neither).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use incident_actors::ports::{Durability, StoreError};
use sqlx::sqlite::SqlitePool;

use super::group_sync::GroupSync;
use super::journal_probe::JournalProbe;
use super::StoreOpenError;

/// Whether the file system holding `file` is mounted read-only now.
fn read_only(file: &std::fs::File) -> std::io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: `fstatvfs` writes into the zeroed struct it is given and
    // reads the descriptor, which `file` keeps open for the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstatvfs(file.as_raw_fd(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(stat.f_flag & libc::ST_RDONLY != 0)
}

/// SQLITE_IOERR and its extended codes (the low byte is 10): the disk
/// failed a read, write or sync.
fn is_io_error(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db
            .code()
            .and_then(|c| c.parse::<i64>().ok())
            .is_some_and(|c| c & 0xff == 10),
        sqlx::Error::Io(_) => true,
        _ => false,
    }
}

/// The fsync of a file database's WAL, shared by the commits that returned
/// before it began. The database runs `synchronous=NORMAL`: a commit writes
/// its WAL frames and releases the write lock without syncing them; this
/// syncs them afterwards, and nobody is answered before it has. That is the
/// only difference between `NORMAL` and `FULL` in WAL mode (checkpoints
/// sync the WAL before and the database after, in both), so a write
/// answered is as durable as under `FULL`; only writes not yet answered
/// can be lost to a power cut, which `FULL` allows too.
#[derive(Debug)]
pub(super) struct WalFlush {
    /// `<database>-wal`, the database's path resolved (SQLite follows a
    /// symbolic link to the database and keeps its WAL beside the target).
    path: PathBuf,
    group: GroupSync,
    /// The WAL file last synced, kept open, and the first flush failure:
    /// flushes run one at a time under this lock (the group flush on the
    /// blocking pool, a group commit's on the writer thread).
    file: std::sync::Mutex<HeldWal>,
    /// Proves, after each flush and checkpoint, that the file system's
    /// journal was still alive (`journal_probe`).
    probe: std::sync::Mutex<JournalProbe>,
}

/// What follows a writer job ([`WalFlush::guarded`]).
#[derive(Debug, Clone, Copy)]
pub(super) enum AfterJob {
    /// The journal probe: a commit may have checkpointed the WAL itself
    /// (past `WAL_AUTOCHECKPOINT_PAGES`), and the next one would start the
    /// WAL over on top of frames whose copy in the database file a false
    /// sync may have lost. So a dead journal is found before the next job,
    /// which is then refused (`journal_probe`). The job's writes are made
    /// durable by a flush shared with others after it (`group_sync`).
    Probe,
    /// The WAL synced here, on the writer thread, right after the job
    /// (that sync probes the journal too): a group commit, answered once
    /// durable when it returns. A flush on the blocking pool after the job
    /// cost a wake-up of a pool thread and of the task waiting for it per
    /// commit, and the commit's callers waited in the flushes' queue; with
    /// a commit's frames in one write (`sqlite_wal_gather`) the writer has
    /// the time for the sync (BENCHMARKS.md, thirteenth session: 10 % less
    /// CPU at a fixed mixed load, the same p99). The store's other writes
    /// (repeat counters, the label index, single statements) keep the
    /// shared flush.
    Sync,
}

#[derive(Debug, Default)]
struct HeldWal {
    file: Option<std::fs::File>,
    /// Set by a flush that failed, and every later flush fails with it: the
    /// kernel reports a failed writeback once, so a flush right after could
    /// succeed over pages the failed one lost, before the store is
    /// poisoned by whoever waited on the failed one.
    failed: Option<String>,
}

impl WalFlush {
    pub(super) fn new(database: &Path) -> Result<Self, StoreOpenError> {
        let database = std::fs::canonicalize(database).map_err(|e| {
            StoreOpenError::Sync(format!("cannot resolve {}: {e}", database.display()))
        })?;
        let mut wal = database.clone().into_os_string();
        wal.push("-wal");
        let path = PathBuf::from(wal);
        // The store wrote its probe row just before, through the pool's open
        // connections: the WAL is there now. If it is not, it is not where
        // this looks, and a flush would sync nothing.
        if !path.exists() {
            return Err(StoreOpenError::Sync(format!(
                "the write-ahead log is not at {}",
                path.display()
            )));
        }
        let folder = database.parent().unwrap_or(Path::new("/"));
        let probe = JournalProbe::open(folder).map_err(|e| {
            StoreOpenError::Sync(format!(
                "cannot create the journal probe's file in {}: {e}",
                folder.display()
            ))
        })?;
        Ok(WalFlush {
            path,
            group: GroupSync::default(),
            file: std::sync::Mutex::new(HeldWal::default()),
            probe: std::sync::Mutex::new(probe),
        })
    }

    /// Resolves once every write that returned before this call is on
    /// disk (the ticket is taken here, not when the future is first
    /// polled).
    pub(super) fn durable(self: Arc<Self>) -> Durability {
        let ticket = self.group.ticket();
        Box::pin(async move {
            let this = self.clone();
            self.group
                .durable(ticket, move || async move {
                    tokio::task::spawn_blocking(move || this.sync())
                        .await
                        .map_err(|e| e.to_string())?
                })
                .await
        })
    }

    /// fdatasync of the WAL through a descriptor kept open (so it also
    /// sees a writeback error that happened since it was opened). SQLite
    /// deletes the WAL when its last connection closes and creates it anew:
    /// when the file at the path is no longer the one held (another inode,
    /// or the held one unlinked: an inode number can be reused), the new
    /// one is opened and its folder synced, so that its name is on disk too.
    fn sync(&self) -> Result<(), String> {
        let mut held = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &held.failed {
            return Err(e.clone());
        }
        let synced = self.sync_held(&mut held.file);
        if let Err(e) = &synced {
            held.failed = Some(e.clone());
        }
        synced
    }

    /// [`Self::sync`] with the file's lock held.
    fn sync_held(&self, held: &mut Option<std::fs::File>) -> Result<(), String> {
        use std::os::unix::fs::MetadataExt;
        let failed = |what: &Path, e: std::io::Error| format!("{}: {e}", what.display());
        let at_path = match std::fs::metadata(&self.path) {
            Ok(m) => m,
            // No WAL: its last connection closed, which checkpointed it into
            // the database file, synced that, and deleted it.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return self.journal_alive("the checkpoint of the WAL's last close")
            }
            Err(e) => return Err(failed(&self.path, e)),
        };
        let current = match held.as_ref() {
            Some(f) => f
                .metadata()
                .map(|m| m.ino() == at_path.ino() && m.nlink() > 0)
                .map_err(|e| failed(&self.path, e))?,
            None => false,
        };
        if !current {
            let file = std::fs::File::open(&self.path).map_err(|e| failed(&self.path, e))?;
            let dir = self
                .path
                .parent()
                .filter(|d| !d.as_os_str().is_empty())
                .unwrap_or(Path::new("."));
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| failed(dir, e))?;
            *held = Some(file);
        }
        let Some(file) = held.as_ref() else {
            return Ok(());
        };
        file.sync_data().map_err(|e| failed(&self.path, e))?;
        // Older kernels answer an fsync on an ext4 that went read-only after
        // an error (`errors=remount-ro`) with success, writing nothing: the
        // frames written just before may be gone. So a flush that finds
        // the file system read-only afterwards has proved nothing. Newer
        // ones (6.x) keep that state inside ext4, where `statvfs` does not
        // see it, and may answer success in the moment before it: the
        // journal probe covers both (tests/fault_store.rs caught an
        // acknowledged write lost on Linux 6.18 that way).
        if read_only(file).map_err(|e| failed(&self.path, e))? {
            return Err(format!(
                "{}: the file system is read-only now",
                self.path.display()
            ));
        }
        self.journal_alive("the WAL flush")
    }

    /// The file system's journal was alive after the flush or checkpoint
    /// that just returned (`journal_probe`: ext4 may answer an fsync with
    /// success in the moment between aborting its journal and turning
    /// read-only, for data the aborted transaction made part of the file).
    fn journal_alive(&self, after: &str) -> Result<(), String> {
        self.probe
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(after)
    }

    /// Why writes are refused (a flush, a checkpoint or the journal
    /// failed), if they are.
    pub(super) fn refusal(&self) -> Option<StoreError> {
        self.group.poisoned()
    }

    /// Runs one writer job, refused if the store was poisoned while it
    /// waited in the writer's queue, then what `after` says; a failure of
    /// that fails the job.
    pub(super) fn guarded<T>(
        &self,
        conn: &rusqlite::Connection,
        after: AfterJob,
        work: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if let Some(e) = self.group.poisoned() {
            return Err(e);
        }
        let done = work(conn)?;
        match after {
            AfterJob::Probe => self
                .refuse_unless_journal_alive("a commit")
                .map_err(StoreError::Unavailable)?,
            AfterJob::Sync => {
                // Taken after the commit returned and before the sync
                // starts, as a shared flush's waiters take theirs: the sync
                // covers it.
                let covered = self.group.ticket();
                self.sync().map_err(|e| self.group.flush_failed(&e))?;
                self.group.synced_up_to(covered);
            }
        }
        Ok(done)
    }

    /// [`Self::journal_alive`] after a commit or a checkpoint, outside a
    /// flush: a dead journal poisons the store here (a failed flush poisons
    /// it in `group_sync`).
    fn refuse_unless_journal_alive(&self, after: &str) -> Result<(), String> {
        self.journal_alive(after).inspect_err(|e| {
            tracing::error!(error = %e, "the file system failed under {after}");
            self.group
                .poison(format!("{e}; writes are refused until lim is restarted"));
        })
    }

    /// A checkpoint's write or sync of the database failed: the same doubt
    /// as a failed flush (`group_sync`), so the same refusal.
    fn checkpoint_failed(&self, error: &str) {
        self.group.poison(format!(
            "a WAL checkpoint failed to write the database file ({error})"
        ));
    }
}

/// How often the WAL is checkpointed, off the commit path.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// A commit checkpoints the WAL itself only past this many pages (16 MiB
/// of 4 KiB pages): a backstop should the checkpoint task fall behind.
/// SQLite's default is 1,000 pages, which under load put a checkpoint (a
/// write of the pages to the database file and an fsync of it) inside one
/// commit in a few, and every caller waiting on that commit waited for it.
pub(super) const WAL_AUTOCHECKPOINT_PAGES: u32 = 4_096;

/// Checkpoints the WAL of a file database every [`CHECKPOINT_EVERY`] on a
/// connection of its own (`PRAGMA wal_checkpoint(PASSIVE)`: it copies what
/// it can without waiting on readers or the writer, so commits go on
/// meanwhile; the WAL starts over from its beginning once everything in it
/// is in the database). Durability does not depend on it: a commit is
/// durable once its WAL frames are synced.
#[derive(Debug)]
pub(super) struct Checkpointer(tokio::task::JoinHandle<()>);

impl Checkpointer {
    pub(super) fn start(pool: SqlitePool, wal: Arc<WalFlush>) -> Self {
        Checkpointer(tokio::spawn(async move {
            let mut every = tokio::time::interval(CHECKPOINT_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // What the last checkpoint found: the WAL's frames, the frames
            // checkpointed, and the commits written by then. A checkpoint
            // that finds all three unchanged copied nothing (a WAL started
            // over and refilled to the same count took commits).
            let mut last = (0, 0, 0);
            loop {
                every.tick().await;
                if pool.is_closed() {
                    return;
                }
                // A read transaction held on a connection of its own from
                // before the checkpoint until its probe is answered: SQLite
                // starts the WAL over only when no reader uses it, so no
                // commit can overwrite frames whose copy a false sync lost
                // before the probe has found the journal dead. (A reader
                // that began with the WAL all checkpointed uses none of it;
                // then the checkpoint copies nothing, and syncs nothing.)
                let mut hold = match pool.begin().await {
                    Ok(hold) => hold,
                    Err(sqlx::Error::PoolClosed) => return,
                    Err(e) => {
                        tracing::debug!(error = %e, "WAL checkpoint skipped; retried");
                        continue;
                    }
                };
                if let Err(e) = sqlx::query("SELECT 1 FROM store_probe LIMIT 1")
                    .fetch_optional(&mut *hold)
                    .await
                {
                    tracing::debug!(error = %e, "WAL checkpoint skipped; retried");
                    continue;
                }
                let done: Result<(i64, i64, i64), sqlx::Error> =
                    sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
                        .fetch_one(&pool)
                        .await;
                let settled = Self::settle(&wal, done, &mut last).await;
                let _ = hold.rollback().await;
                if settled.is_break() {
                    return;
                }
            }
        }))
    }

    /// What a checkpoint's outcome means: probed if it copied frames, the
    /// store poisoned if its write or its probe failed; `Break` when the
    /// pool or the runtime is closing.
    async fn settle(
        wal: &Arc<WalFlush>,
        done: Result<(i64, i64, i64), sqlx::Error>,
        last: &mut (i64, i64, u64),
    ) -> std::ops::ControlFlow<()> {
        use std::ops::ControlFlow;
        match done {
            // A checkpoint that copied frames synced the database file; that
            // sync can have been answered falsely as the flush's can, and the
            // WAL then starts over on top of frames the database file does
            // not hold. (Probed only then: an idle lim changes nothing on
            // disk.)
            Ok((_, log, checkpointed)) => {
                let now = (log, checkpointed, wal.group.committed());
                if checkpointed == 0 || now == *last {
                    *last = now;
                    return ControlFlow::Continue(());
                }
                *last = now;
                let probed = wal.clone();
                let alive = tokio::task::spawn_blocking(move || {
                    probed.refuse_unless_journal_alive("a WAL checkpoint")
                })
                .await;
                // Poisoned already if the probe failed; a join error is the
                // runtime shutting down.
                if alive.is_err() {
                    return ControlFlow::Break(());
                }
            }
            Err(sqlx::Error::PoolClosed) => return ControlFlow::Break(()),
            Err(e) if is_io_error(&e) => {
                tracing::error!(error = %e, "WAL checkpoint failed to write the database file");
                wal.checkpoint_failed(&e.to_string());
            }
            Err(e) => tracing::debug!(error = %e, "WAL checkpoint failed; retried"),
        }
        ControlFlow::Continue(())
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.0.abort();
    }
}
