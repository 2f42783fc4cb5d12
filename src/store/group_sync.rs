//! Group sync: writes whose WAL flush runs after the transaction and is
//! shared by every write that returned before it started.
//!
//! Why: SQLite's store writes everything on one writer thread, and its
//! writes other than group commits (repeat counters, the label index's
//! catch-up, single statements) need not hold that thread for an fsync.
//! Such a write is written without the flush, takes a ticket, and waits
//! until one flush started after it has completed; one flush covers every
//! write that returned before it began, so concurrent waiters share it.
//! A group commit syncs on the writer thread instead, right after its
//! transaction (`sqlite_wal::AfterJob::Sync`), and marks its ticket
//! synced ([`GroupSync::synced_up_to`]): the flush was a wake-up of a
//! pool thread and of the task waiting for it per commit, and at a fixed
//! mixed load the sync on the writer costs 10 % less CPU for the same p99
//! (BENCHMARKS.md, thirteenth session; it used to hold the writer too long
//! before a commit's WAL frames went out in one write, twelfth session).
//!
//! A flush that fails poisons the store: after a failed fsync the kernel
//! may have dropped the dirty pages it could not write (and marked them
//! clean), so a later flush that succeeds proves nothing about them. Every
//! later wait, and every write, fails with the first error until lim is
//! restarted and the database recovers from what is on disk (as PostgreSQL
//! does: it stops on a failed fsync). The writes of the failed flush were
//! visible meanwhile and may well be on disk: their callers were told the
//! store is unavailable, not that nothing was written, and nothing is
//! written after them until the restart reads back what is there.
//!
//! Used by the SQLite store only. PostgreSQL commits durably itself: a flush
//! after the commit would have to run on the very server session that
//! committed, or a server crash in between would go unnoticed.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use incident_actors::ports::StoreError;

#[derive(Debug, Default)]
pub(crate) struct GroupSync {
    /// Tickets handed out: commits written, counted as they return.
    committed: AtomicU64,
    /// Every ticket up to this one is durable.
    synced: AtomicU64,
    /// One flush at a time; waiters queue here, and each finds out on its
    /// turn whether a flush that ran meanwhile covered it.
    flushing: tokio::sync::Mutex<()>,
    poisoned: Mutex<Option<String>>,
}

impl GroupSync {
    /// A ticket for a commit that has just returned (written, not yet
    /// flushed).
    pub fn ticket(&self) -> u64 {
        self.committed.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Tickets handed out so far: commits written.
    pub fn committed(&self) -> u64 {
        self.committed.load(Ordering::SeqCst)
    }

    /// Why writes are refused, after a flush failed.
    pub fn poisoned(&self) -> Option<StoreError> {
        let why = self.poisoned.lock().unwrap_or_else(|e| e.into_inner());
        why.as_ref().map(|w| StoreError::Unavailable(w.clone()))
    }

    /// Refuses every later write with `why` (something other than a flush
    /// found the disk failing).
    pub fn poison(&self, why: String) {
        let mut poisoned = self.poisoned.lock().unwrap_or_else(|p| p.into_inner());
        poisoned.get_or_insert(why);
    }

    /// Resolves once `ticket` is durable: at once if a flush that started
    /// after it already completed, else after the next one, run by the
    /// first waiter whose turn it is.
    pub async fn durable<F, Fut>(&self, ticket: u64, flush: F) -> Result<(), StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        if self.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        let _turn = self.flushing.lock().await;
        if let Some(e) = self.poisoned() {
            return Err(e);
        }
        if self.synced.load(Ordering::SeqCst) >= ticket {
            return Ok(());
        }
        // Everything written before the flush starts is covered by it.
        let covered = self.committed.load(Ordering::SeqCst);
        match flush().await {
            Ok(()) => {
                self.synced.fetch_max(covered, Ordering::SeqCst);
                Ok(())
            }
            Err(e) => Err(self.flush_failed(&e)),
        }
    }

    /// A flush run by its caller (not queued here) covered every ticket up
    /// to `covered`, taken before it started.
    pub fn synced_up_to(&self, covered: u64) {
        self.synced.fetch_max(covered, Ordering::SeqCst);
    }

    /// A flush failed with `e`: every later write is refused; the error
    /// its waiters get.
    pub fn flush_failed(&self, e: &str) -> StoreError {
        let why = format!(
            "flushing the write-ahead log failed ({e}); writes are refused until lim is \
             restarted, because what was written since the last successful flush may not \
             be on disk"
        );
        tracing::error!(error = %e, "write-ahead log flush failed; the store refuses writes until restarted");
        self.poison(why.clone());
        StoreError::Unavailable(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::sync::Arc;

    /// Waiters that queue behind a flush share the next one; a ticket
    /// handed out after a flush started is not covered by it.
    #[tokio::test]
    async fn one_flush_covers_every_commit_before_it() {
        let sync = Arc::new(GroupSync::default());
        let flushes = Arc::new(AtomicUsize::new(0));
        let gate = Arc::new(tokio::sync::Semaphore::new(0));
        let flush = |flushes: Arc<AtomicUsize>, gate: Arc<tokio::sync::Semaphore>| {
            move || async move {
                gate.acquire().await.unwrap().forget();
                flushes.fetch_add(1, Ordering::SeqCst);
                Ok(())
            }
        };
        let first = sync.ticket();
        let waiter = {
            let (sync, f) = (sync.clone(), flush(flushes.clone(), gate.clone()));
            tokio::spawn(async move { sync.durable(first, f).await })
        };
        // The first flush is under way (blocked on the gate); three more
        // commits return meanwhile and wait.
        tokio::task::yield_now().await;
        let later: Vec<u64> = (0..3).map(|_| sync.ticket()).collect();
        let waiters: Vec<_> = later
            .iter()
            .map(|&t| {
                let (sync, f) = (sync.clone(), flush(flushes.clone(), gate.clone()));
                tokio::spawn(async move { sync.durable(t, f).await })
            })
            .collect();
        gate.add_permits(1);
        waiter.await.unwrap().unwrap();
        // The first flush may or may not have seen the later tickets (they
        // may have been taken before it read the count); at most one more
        // flush is needed for all three.
        gate.add_permits(1);
        for w in waiters {
            w.await.unwrap().unwrap();
        }
        let n = flushes.load(Ordering::SeqCst);
        assert!((1..=2).contains(&n), "{n} flushes for 4 commits");
        // Already durable: no flush at all.
        sync.durable(later[0], || async { Err("not called".to_string()) })
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_failed_flush_poisons_every_later_wait() {
        let sync = GroupSync::default();
        let t = sync.ticket();
        let err = sync
            .durable(t, || async { Err("EIO".to_string()) })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("EIO"), "{err}");
        let t2 = sync.ticket();
        let again = sync.durable(t2, || async { Ok(()) }).await.unwrap_err();
        assert!(again.to_string().contains("restarted"), "{again}");
        assert!(sync.poisoned().is_some());
    }
}
