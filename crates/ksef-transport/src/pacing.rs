//! Proactive, client-side pacing per KSeF rate-limit group.
//!
//! KSeF counts calls per (context, IP) in sliding windows of 1 s, 1 min and 1 h and escalates
//! penalties for clients that keep hitting 429 (ksef-api.md §15.1). The [`Pacer`] keeps, per
//! rate-limit key, the send times of recent calls and delays a call until all three windows have
//! room. Keys: the group name for grouped endpoints (`onlineSession`, `invoiceSend`, …, and the
//! shared `public` 60/s limit); the operation name for `other` endpoints, which KSeF counts
//! separately.
//!
//! Calls reserve their slot before waiting, so concurrent callers queue in order. One pacer
//! assumes all calls of its transport share one context; use one transport per context.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;

/// The limits of one rate-limit key. `None` means no limit in that window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Calls per sliding second.
    pub per_second: Option<u32>,
    /// Calls per sliding minute.
    pub per_minute: Option<u32>,
    /// Calls per sliding hour.
    pub per_hour: Option<u32>,
}

impl Limits {
    fn windows(&self) -> [(Duration, Option<u32>); 3] {
        [
            (Duration::from_secs(1), self.per_second),
            (Duration::from_secs(60), self.per_minute),
            (Duration::from_secs(3600), self.per_hour),
        ]
    }
}

/// A client-side limiter over sliding windows, keyed by rate-limit group.
#[derive(Debug)]
pub struct Pacer {
    clock: Arc<dyn Clock>,
    history: Mutex<HashMap<String, VecDeque<Duration>>>,
}

impl Pacer {
    /// A pacer reading time from `clock`.
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            history: Mutex::new(HashMap::new()),
        }
    }

    /// Reserves the next free slot for `key` and returns how long to wait before sending.
    pub fn reserve(&self, key: &str, limits: &Limits) -> Duration {
        let now = self.clock.now();
        let mut map = match self.history.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let history = map.entry(key.to_owned()).or_default();
        // Forget what no window can see any more.
        let horizon = limits
            .windows()
            .iter()
            .filter(|(_, n)| n.is_some())
            .map(|(w, _)| *w)
            .max()
            .unwrap_or(Duration::ZERO);
        if let Some(cutoff) = now.checked_sub(horizon) {
            while history.front().is_some_and(|t| *t <= cutoff) {
                history.pop_front();
            }
        }
        // Slots are handed out in order, so the history stays sorted.
        let mut at = history.back().copied().unwrap_or(Duration::ZERO).max(now);
        for (window, limit) in limits.windows() {
            let Some(limit) = limit else { continue };
            let limit = limit.max(1) as usize;
            if history.len() >= limit {
                // The call `limit` places back must have left the window.
                let oldest_in_window = history[history.len() - limit];
                at = at.max(oldest_in_window + window);
            }
        }
        history.push_back(at);
        at - now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    const fn lim(s: u32, m: u32, h: u32) -> Limits {
        Limits {
            per_second: Some(s),
            per_minute: Some(m),
            per_hour: Some(h),
        }
    }

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn per_second_window() {
        let clock = ManualClock::new();
        let p = Pacer::new(Arc::new(clock.clone()));
        let l = Limits {
            per_second: Some(3),
            per_minute: None,
            per_hour: None,
        };
        let waits: Vec<f64> = (0..7).map(|_| secs(p.reserve("k", &l))).collect();
        assert_eq!(waits, vec![0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 2.0]);
    }

    #[test]
    fn per_minute_and_hour_windows() {
        let clock = ManualClock::new();
        let p = Pacer::new(Arc::new(clock.clone()));
        let l = lim(10, 20, 60); // batchSession
        let mut waits = Vec::new();
        for _ in 0..61 {
            let w = p.reserve("batchSession", &l);
            waits.push(w);
        }
        // 10 at t=0, 10 at t=1, then the minute window is full until t=60.
        assert!(waits[..10].iter().all(|w| w.is_zero()));
        assert!(waits[10..20].iter().all(|w| *w == Duration::from_secs(1)));
        assert_eq!(waits[20], Duration::from_secs(60));
        // The hour window: call 61 must wait for call 1 to leave the hour.
        assert_eq!(waits[60], Duration::from_secs(3600));
    }

    #[test]
    fn waits_shrink_as_time_passes_and_keys_are_separate() {
        let clock = ManualClock::new();
        let p = Pacer::new(Arc::new(clock.clone()));
        let l = Limits {
            per_second: Some(1),
            per_minute: None,
            per_hour: None,
        };
        assert!(p.reserve("a", &l).is_zero());
        assert_eq!(p.reserve("a", &l), Duration::from_secs(1));
        assert!(
            p.reserve("b", &l).is_zero(),
            "other key has its own counter"
        );
        clock.advance(Duration::from_millis(1500));
        // Slots at 0 and 1 s are used; the next one is at 2 s, 0.5 s from now.
        assert_eq!(p.reserve("a", &l), Duration::from_millis(500));
        clock.advance(Duration::from_secs(10));
        assert!(p.reserve("a", &l).is_zero());
    }

    #[test]
    fn no_limits_never_wait_and_history_is_pruned() {
        let clock = ManualClock::new();
        let p = Pacer::new(Arc::new(clock.clone()));
        let none = Limits {
            per_second: None,
            per_minute: None,
            per_hour: None,
        };
        for _ in 0..100 {
            assert!(p.reserve("x", &none).is_zero());
        }
        let l = Limits {
            per_second: Some(60),
            per_minute: None,
            per_hour: None,
        };
        for _ in 0..1000 {
            p.reserve("public", &l);
            clock.advance(Duration::from_millis(100));
        }
        let len = p.history.lock().unwrap()["public"].len();
        assert!(len <= 20, "history kept {len}");
    }

    #[test]
    fn early_calls_are_not_forgotten() {
        // Calls at t=0 still count in the minute window after the clock moved.
        let clock = ManualClock::new();
        let p = Pacer::new(Arc::new(clock.clone()));
        let l = lim(10, 12, 100);
        for _ in 0..10 {
            assert!(p.reserve("k", &l).is_zero());
        }
        clock.advance(Duration::from_secs(1));
        assert!(p.reserve("k", &l).is_zero());
        assert!(p.reserve("k", &l).is_zero());
        assert_eq!(p.reserve("k", &l), Duration::from_secs(59));
    }

    #[test]
    fn zero_limit_is_treated_as_one() {
        let clock = ManualClock::new();
        let p = Pacer::new(Arc::new(clock.clone()));
        let l = Limits {
            per_second: Some(0),
            per_minute: None,
            per_hour: None,
        };
        assert!(p.reserve("z", &l).is_zero());
        assert_eq!(p.reserve("z", &l), Duration::from_secs(1));
    }
}
