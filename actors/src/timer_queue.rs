//! `TimerQueue`: one task and one ordered map for the timers of every
//! incident, instead of a tokio task per armed timer.
//!
//! ractor's `send_after` spawns a task per timer: its header, its `Sleep`
//! (a tokio timer entry) and the closure, about 580 bytes that live as long
//! as the timer, which for an escalation step is minutes. With 100,000 open
//! incidents (issue 8's memory target) that alone is some 60 MB. Here a
//! timer is one entry in a `BTreeMap` keyed by (deadline, sequence), about
//! 50 bytes plus its share of a node, and one driver task sleeps until the
//! earliest deadline.
//!
//! The driver runs on tokio's clock like `send_after` did, so the paused
//! clock of the tests drives it the same way. Arming returns a
//! [`QueuedTimer`]; dropping it cancels the timer (removes its entry), as
//! aborting `send_after`'s join handle did. What fires is a [`Fire`] value,
//! called outside the lock; for an incident it casts `IncidentMsg::Timer`
//! to the actor, which checks the timer's generation as before, so a timer
//! that fires just as it is replaced is ignored there.
//!
//! The driver stops when the queue (owned by the system's `CoreContext`)
//! is dropped, so a test that starts many systems on one runtime does not
//! keep their drivers.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;
use tokio::time::Instant;

/// What a timer does when it is due. Called on the driver task, outside
/// the queue's lock: it must not block (a ractor `cast` does not).
pub trait Fire: Send + 'static {
    fn fire(self);
}

type Key = (Instant, u64);

struct Entries<T> {
    due: BTreeMap<Key, T>,
    next_seq: u64,
    closed: bool,
}

struct Shared<T> {
    entries: Mutex<Entries<T>>,
    /// Wakes the driver: a timer earlier than the one it sleeps for was
    /// armed, or the queue closed.
    wake: Notify,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, Entries<T>> {
        // A panic while holding the lock cannot leave the map half-updated
        // (every critical section is one insert, remove or pop), so a
        // poisoned lock is still consistent.
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The timers of one system. Not `Clone`: its owner's drop stops the driver.
pub struct TimerQueue<T: Fire> {
    shared: Arc<Shared<T>>,
}

/// An armed timer; dropping it cancels it.
pub struct QueuedTimer<T: Fire> {
    shared: Arc<Shared<T>>,
    key: Key,
}

impl<T: Fire> TimerQueue<T> {
    /// A queue and its driver task, on the current tokio runtime.
    pub fn start() -> Self {
        let shared = Arc::new(Shared {
            entries: Mutex::new(Entries {
                due: BTreeMap::new(),
                next_seq: 0,
                closed: false,
            }),
            wake: Notify::new(),
        });
        tokio::spawn(drive(shared.clone()));
        Self { shared }
    }

    /// Arms a timer that fires `what` at `at` on tokio's clock.
    pub fn arm(&self, at: Instant, what: T) -> QueuedTimer<T> {
        let mut entries = self.shared.lock();
        let key = (at, entries.next_seq);
        entries.next_seq += 1;
        let earliest = entries.due.first_key_value().is_none_or(|(k, _)| key < *k);
        entries.due.insert(key, what);
        drop(entries);
        if earliest {
            // `notify_one` keeps a permit when the driver is not waiting
            // yet, so a wake between its check and its wait is not lost.
            self.shared.wake.notify_one();
        }
        QueuedTimer {
            shared: self.shared.clone(),
            key,
        }
    }

    /// Timers armed and not yet fired or cancelled.
    pub fn len(&self) -> usize {
        self.shared.lock().due.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<T: Fire> Drop for TimerQueue<T> {
    fn drop(&mut self) {
        let mut entries = self.shared.lock();
        entries.closed = true;
        // What is still armed will not fire: drop it now rather than with
        // the last handle.
        entries.due.clear();
        drop(entries);
        self.shared.wake.notify_one();
    }
}

impl<T: Fire> Drop for QueuedTimer<T> {
    fn drop(&mut self) {
        // Gone already when it fired; removing is then a no-op.
        self.shared.lock().due.remove(&self.key);
    }
}

/// Pops every due timer, fires them, and sleeps until the next deadline or
/// a wake.
async fn drive<T: Fire>(shared: Arc<Shared<T>>) {
    let mut fired = Vec::new();
    loop {
        let next = {
            let mut entries = shared.lock();
            if entries.closed {
                return;
            }
            let now = Instant::now();
            while let Some(entry) = entries.due.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                fired.push(entry.remove());
            }
            entries.due.first_key_value().map(|(k, _)| k.0)
        };
        for what in fired.drain(..) {
            what.fire();
        }
        match next {
            Some(at) => {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = shared.wake.notified() => {}
                }
            }
            None => shared.wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::mpsc;

    struct Record(mpsc::UnboundedSender<u32>, u32);

    impl Fire for Record {
        fn fire(self) {
            let _ = self.0.send(self.1);
        }
    }

    async fn settle() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn fires_in_deadline_order_at_its_time() {
        let q = TimerQueue::start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        let _b = q.arm(t0 + Duration::from_secs(20), Record(tx.clone(), 2));
        let _a = q.arm(t0 + Duration::from_secs(10), Record(tx.clone(), 1));
        let _c = q.arm(t0 + Duration::from_secs(20), Record(tx.clone(), 3));
        tokio::time::sleep(Duration::from_millis(9_999)).await;
        assert!(rx.try_recv().is_err(), "nothing before 10 s");
        tokio::time::sleep(Duration::from_millis(2)).await;
        assert_eq!(rx.try_recv(), Ok(1));
        assert!(rx.try_recv().is_err());
        tokio::time::sleep(Duration::from_secs(10)).await;
        // Same deadline: the order they were armed in.
        assert_eq!(rx.try_recv(), Ok(2));
        assert_eq!(rx.try_recv(), Ok(3));
        assert!(q.is_empty(), "fired timers leave the queue");
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_timer_armed_while_the_driver_sleeps_wakes_it() {
        let q = TimerQueue::start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        let _late = q.arm(t0 + Duration::from_secs(3_600), Record(tx.clone(), 1));
        settle().await;
        let _soon = q.arm(
            Instant::now() + Duration::from_secs(5),
            Record(tx.clone(), 2),
        );
        tokio::time::sleep(Duration::from_millis(5_001)).await;
        assert_eq!(rx.try_recv(), Ok(2));
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_dropped_timer_never_fires() {
        let q = TimerQueue::start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let t0 = Instant::now();
        let first = q.arm(t0 + Duration::from_secs(1), Record(tx.clone(), 1));
        let _second = q.arm(t0 + Duration::from_secs(2), Record(tx.clone(), 2));
        drop(first);
        assert_eq!(q.len(), 1);
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(rx.try_recv(), Ok(2));
        assert!(rx.try_recv().is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn a_deadline_in_the_past_fires_at_once() {
        let q = TimerQueue::start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        tokio::time::sleep(Duration::from_secs(10)).await;
        let _t = q.arm(Instant::now() - Duration::from_secs(5), Record(tx, 7));
        settle().await;
        assert_eq!(rx.try_recv(), Ok(7));
    }

    #[tokio::test(start_paused = true)]
    async fn dropping_the_queue_stops_the_driver_and_its_timers() {
        let q = TimerQueue::start();
        let (tx, mut rx) = mpsc::unbounded_channel();
        let handle = q.arm(Instant::now() + Duration::from_secs(1), Record(tx, 1));
        let weak = Arc::downgrade(&q.shared);
        drop(q);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(rx.try_recv().is_err(), "a closed queue fires nothing");
        // Only the outstanding handle keeps the shared part: the driver
        // task has returned and dropped its reference.
        assert_eq!(weak.strong_count(), 1);
        drop(handle);
        assert_eq!(weak.strong_count(), 0);
    }
}
