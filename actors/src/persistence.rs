//! The persistence actor: the one writer. It gathers concurrent writes into
//! one transaction (group commit), so durability costs one fsync per batch,
//! not per alert.
//!
//! How batches form: a `Write` is queued and, if no flush is pending, a
//! `Flush` is sent to self. Writes that arrive before that `Flush` is handled
//! join the batch; writes that arrive while a commit is in flight wait in the
//! mailbox and form the next batch. So under load batches grow by themselves,
//! and when idle a write is committed at once: the wait is bounded by one
//! commit in flight, the size by `max_batch`. Callers get their answer only
//! after their batch is committed (or failed: then nothing of it was).
//!
//! Repeats (`Touch`) carry no answer; they are merged per incident and
//! written with the next batch, or after `touch_flush_interval` when idle.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use ractor::concurrency::JoinHandle;

/// A pending `send_after`; aborting it cancels the timer.
type TimerHandle = JoinHandle<Result<(), ractor::MessagingErr<PersistenceMsg>>>;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};

use crate::domain::IncidentId;
use crate::messages::PersistenceMsg;
use crate::ports::{Store, StoreError, Touch, WriteBatch};
use crate::system::CoreContext;

pub struct PersistenceActor;

pub struct PersistenceState {
    ctx: Arc<CoreContext>,
    pending: WriteBatch,
    waiters: Vec<RpcReplyPort<Result<(), StoreError>>>,
    touches: HashMap<IncidentId, Touch>,
    flush_queued: bool,
    touch_timer: Option<TimerHandle>,
    /// Observable figures: size of the last batch and commits so far.
    pub last_batch: usize,
    pub commits: u64,
}

/// Merges a repeat into the pending ones: the latest `last_seen` and the
/// highest count win, so order of arrival does not matter.
fn merge_touch(touches: &mut HashMap<IncidentId, Touch>, t: Touch) {
    touches
        .entry(t.id)
        .and_modify(|e| {
            e.last_seen = e.last_seen.max(t.last_seen);
            e.seen_count = e.seen_count.max(t.seen_count);
        })
        .or_insert(t);
}

/// A waiter gets its own copy of a batch failure.
fn failure_for_waiter(e: &StoreError) -> StoreError {
    match e {
        StoreError::Rejected(m) => StoreError::Rejected(m.clone()),
        other => StoreError::Unavailable(other.to_string()),
    }
}

impl PersistenceState {
    async fn flush(&mut self, store: &dyn Store) {
        self.flush_queued = false;
        if let Some(t) = self.touch_timer.take() {
            t.abort();
        }
        let mut batch = std::mem::take(&mut self.pending);
        let touches: Vec<Touch> = self.touches.drain().map(|(_, t)| t).collect();
        batch.touches = touches;
        let waiters = std::mem::take(&mut self.waiters);
        if batch.is_empty() {
            return;
        }
        let size = batch.incidents.len();
        let result = store.commit(&batch).await;
        match &result {
            Ok(()) => {
                self.last_batch = size;
                self.commits += 1;
            }
            Err(e) => {
                tracing::warn!(error = %e, writes = size, "group commit failed");
                // Repeat counters are harmless to retry with the next batch.
                for t in batch.touches {
                    merge_touch(&mut self.touches, t);
                }
            }
        }
        for w in waiters {
            let _ = w.send(match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(failure_for_waiter(e)),
            });
        }
    }
}

impl Actor for PersistenceActor {
    type Msg = PersistenceMsg;
    type State = PersistenceState;
    type Arguments = Arc<CoreContext>;

    async fn pre_start(
        &self,
        _myself: ActorRef<Self::Msg>,
        ctx: Arc<CoreContext>,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(PersistenceState {
            ctx,
            pending: WriteBatch::default(),
            waiters: Vec::new(),
            touches: HashMap::new(),
            flush_queued: false,
            touch_timer: None,
            last_batch: 0,
            commits: 0,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(t) = state.touch_timer.take() {
            t.abort();
        }
        // Write what is pending rather than drop it: a clean stop loses nothing.
        let store = state.ctx.store.clone();
        state.flush(store.as_ref()).await;
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        msg: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match msg {
            PersistenceMsg::Write { batch, reply } => {
                state.pending.incidents.extend(batch.incidents);
                for t in batch.touches {
                    merge_touch(&mut state.touches, t);
                }
                state.waiters.push(reply);
                if state.pending.incidents.len() >= state.ctx.config.max_batch {
                    let store = state.ctx.store.clone();
                    state.flush(store.as_ref()).await;
                } else if !state.flush_queued {
                    state.flush_queued = true;
                    myself.cast(PersistenceMsg::Flush)?;
                }
            }
            PersistenceMsg::Touch(t) => {
                merge_touch(&mut state.touches, t);
                if state.touch_timer.is_none() && !state.flush_queued {
                    let every: Duration = state.ctx.config.touch_flush_interval;
                    state.touch_timer = Some(myself.send_after(every, || PersistenceMsg::Flush));
                }
            }
            PersistenceMsg::Flush => {
                let store = state.ctx.store.clone();
                state.flush(store.as_ref()).await;
            }
        }
        Ok(())
    }
}
