//! Whether the store takes writes right now, as the last commit and the
//! last probe saw it.
//!
//! The persistence actor records the outcome of every commit; a probe task
//! (started with the system, every `store_probe_interval`) pings the store
//! so the state also changes while no write comes in: readiness goes false
//! when PostgreSQL stops with nobody ingesting, and true again when it is
//! back, with nobody needing to try first. `/readyz` answers from it, so a
//! load balancer stops sending to a node whose database is gone. Writes
//! still go to the store while it is down (each one is the real test of
//! whether it is back) and fail there, so the contract stays "2xx only
//! after the commit".

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use crate::ports::{SharedStore, StoreError};
use crate::time::{Clock, SharedClock, Timestamp};

/// Since when the store is down, and why.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StoreDown {
    pub since: Timestamp,
    pub error: String,
}

/// What the last write said, under one lock (taken once per commit).
#[derive(Debug, Default)]
struct Health {
    /// `None` while the store is up.
    down: Option<StoreDown>,
    /// When a write last succeeded (tokio's clock): the probe writes only
    /// when nothing else did within its interval.
    last_ok: Option<tokio::time::Instant>,
}

#[derive(Debug, Default)]
pub struct StoreHealth {
    state: Mutex<Health>,
}

impl StoreHealth {
    fn state(&self) -> std::sync::MutexGuard<'_, Health> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a commit's or a probe's outcome. Only `Unavailable` means
    /// the store is down: a rejected write (an invariant) or a corrupt
    /// snapshot is that write's problem, not the store's. The clock is read
    /// only when the store goes down (to say since when).
    pub fn record(&self, result: &Result<(), StoreError>, clock: &dyn Clock) {
        let mut state = self.state();
        match result {
            Ok(()) => {
                state.last_ok = Some(tokio::time::Instant::now());
                if let Some(was) = state.down.take() {
                    tracing::warn!(since = %was.since, "store available again");
                }
            }
            Err(StoreError::Unavailable(why)) => match state.down.as_mut() {
                Some(d) => d.error.clone_from(why),
                None => {
                    tracing::error!(error = %why, "store unavailable");
                    state.down = Some(StoreDown {
                        since: clock.now(),
                        error: why.clone(),
                    });
                }
            },
            Err(_) => {}
        }
    }

    /// Whether the store is up and a write succeeded within `within`.
    fn up_and_wrote_within(&self, within: Duration) -> bool {
        let state = self.state();
        state.down.is_none() && state.last_ok.is_some_and(|at| at.elapsed() < within)
    }

    pub fn is_up(&self) -> bool {
        self.state().down.is_none()
    }

    /// `None` while the store is up.
    pub fn down(&self) -> Option<StoreDown> {
        self.state().down.clone()
    }
}

/// Pings the store every `every` and records the outcome, until the future
/// is dropped. Only when no write succeeded within the interval: under load
/// the group commits already say the store is up, and on SQLite a ping
/// would queue for the write lock behind them (back-to-back commits can
/// starve it for seconds). A ping may take up to five intervals (at least
/// 5 s) before it counts as a failure: a busy store is not a down one. A
/// server that is gone fails the ping at once (refused) or within the
/// pool's acquire timeout; a failed commit says so without waiting.
pub(crate) async fn probe(
    health: &StoreHealth,
    store: SharedStore,
    clock: SharedClock,
    every: Duration,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if health.up_and_wrote_within(every) {
            continue;
        }
        let limit = (every * 5).max(Duration::from_secs(5));
        let result = match tokio::time::timeout(limit, store.ping()).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Unavailable(format!(
                "no answer to a ping within {limit:?}"
            ))),
        };
        health.record(&result, &*clock);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct At(i64);
    impl Clock for At {
        fn now(&self) -> Timestamp {
            Timestamp(self.0)
        }
    }

    #[test]
    fn down_on_unavailable_up_on_success_and_since_is_kept() {
        let h = StoreHealth::default();
        assert!(h.is_up());
        h.record(&Err(StoreError::Rejected("dup".into())), &At(1));
        assert!(h.is_up(), "a rejected write is not an outage");
        h.record(&Err(StoreError::Unavailable("refused".into())), &At(2));
        h.record(&Err(StoreError::Unavailable("timed out".into())), &At(3));
        assert_eq!(
            h.down(),
            Some(StoreDown {
                since: Timestamp(2),
                error: "timed out".into()
            })
        );
        h.record(&Ok(()), &At(4));
        assert!(h.is_up());
        assert_eq!(h.down(), None);
        assert!(h.up_and_wrote_within(Duration::from_secs(1)));
    }
}
