//! Restart intensity, OTP style: at most `max_restarts` restarts within
//! `within`; one more and the supervisor gives up and escalates to its parent.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestartPolicy {
    pub max_restarts: usize,
    pub within: Duration,
}

impl Default for RestartPolicy {
    fn default() -> Self {
        RestartPolicy {
            max_restarts: 3,
            within: Duration::from_secs(10),
        }
    }
}

/// The restarts one supervisor made of one child, in a sliding window.
/// Uses tokio's monotonic clock: wall-clock jumps must not reset it.
#[derive(Clone, Debug, Default)]
pub struct RestartIntensity {
    recent: VecDeque<Instant>,
}

impl RestartIntensity {
    /// Records a failure at `now`. `true`: restart allowed. `false`: the
    /// limit is exceeded and the supervisor must escalate.
    pub fn allow(&mut self, policy: RestartPolicy, now: Instant) -> bool {
        while let Some(first) = self.recent.front() {
            if now.duration_since(*first) > policy.within {
                self.recent.pop_front();
            } else {
                break;
            }
        }
        if self.recent.len() >= policy.max_restarts {
            return false;
        }
        self.recent.push_back(now);
        true
    }

    pub fn recent(&self) -> usize {
        self.recent.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_n_in_window_then_refuses_then_forgets() {
        let p = RestartPolicy {
            max_restarts: 2,
            within: Duration::from_secs(10),
        };
        let t0 = Instant::now();
        let mut r = RestartIntensity::default();
        assert!(r.allow(p, t0));
        assert!(r.allow(p, t0 + Duration::from_secs(1)));
        assert!(!r.allow(p, t0 + Duration::from_secs(2)));
        // Once the window has slid past the old restarts, allowed again.
        assert!(r.allow(p, t0 + Duration::from_secs(12)));
        assert_eq!(r.recent(), 1);
    }
}
