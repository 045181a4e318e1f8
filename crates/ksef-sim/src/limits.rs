//! API rate limits (ksef-api.md §15.1): sliding windows of 1 s, 1 min and 1 h per (rate-limit
//! group, context, client IP), with the per-operation values of the catalogue's `x-rate-limits`.
//! Every endpoint of the `other` group has its own counter; unauthenticated endpoints count per
//! IP. A breach answers 429 with `Retry-After` (whole seconds until the window frees a slot).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use ksef_model::operations::{Operation, RateLimitGroup};
use time::{Duration, OffsetDateTime};

/// The counter an operation's requests land in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    /// The group, or the operation name for the `other` group (separate counters).
    bucket: String,
    /// The context value (`-` for unauthenticated calls).
    context: String,
    ip: IpAddr,
}

/// A breach: which window and how long to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Breach {
    /// Requests allowed in the window.
    pub limit: u32,
    /// `"sekundę"`, `"minutę"` or `"godzinę"`.
    pub window: &'static str,
    /// Seconds until a request would be accepted again.
    pub retry_after: u64,
}

/// All counters of one simulator.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    hits: HashMap<Key, VecDeque<OffsetDateTime>>,
    /// Context value → group name (`onlineSession`, …, `other`) → (per s, per min, per h), set
    /// by `/testdata/rate-limits`.
    overrides: HashMap<String, HashMap<String, (u32, u32, u32)>>,
}

impl RateLimiter {
    /// Replaces the overrides of `context` (an empty map restores the catalogue values).
    pub fn set_overrides(&mut self, context: &str, groups: HashMap<String, (u32, u32, u32)>) {
        if groups.is_empty() {
            self.overrides.remove(context);
        } else {
            self.overrides.insert(context.to_owned(), groups);
        }
    }

    /// Drops the requests older than the longest window (1 h) and the counters left empty;
    /// returns how many counters were dropped.
    pub fn purge(&mut self, now: OffsetDateTime) -> usize {
        let before = self.hits.len();
        self.hits.retain(|_, q| {
            while q.front().is_some_and(|t| now - *t >= Duration::HOUR) {
                q.pop_front();
            }
            !q.is_empty()
        });
        before - self.hits.len()
    }

    /// Records a request of `op` at `now`, or reports the breached window (the request is then
    /// not counted).
    pub fn check(
        &mut self,
        op: &Operation,
        context: Option<&str>,
        ip: IpAddr,
        now: OffsetDateTime,
    ) -> Result<(), Breach> {
        let bucket = match op.rate_limit.group {
            RateLimitGroup::Other => format!("other:{}", op.name),
            g => format!("{g:?}"),
        };
        let key = Key {
            bucket,
            context: context.unwrap_or("-").to_owned(),
            ip,
        };
        let (mut s, mut m, mut h) = (
            op.rate_limit.per_second,
            op.rate_limit.per_minute,
            op.rate_limit.per_hour,
        );
        if let Some(name) = crate::misc::group_name(op.rate_limit.group)
            && let Some(&(os, om, oh)) = context
                .and_then(|c| self.overrides.get(c))
                .and_then(|g| g.get(name))
        {
            (s, m, h) = (Some(os), Some(om), Some(oh));
        }
        let q = self.hits.entry(key).or_default();
        while q.front().is_some_and(|t| now - *t >= Duration::HOUR) {
            q.pop_front();
        }
        let windows = [
            (s, Duration::SECOND, "sekundę"),
            (m, Duration::MINUTE, "minutę"),
            (h, Duration::HOUR, "godzinę"),
        ];
        for (limit, span, name) in windows {
            let Some(limit) = limit else { continue };
            let inside: Vec<&OffsetDateTime> = q.iter().filter(|t| now - **t < span).collect();
            if inside.len() >= limit as usize {
                // The oldest request inside the window leaves it at `oldest + span` (a limit
                // of 0, possible through the test overrides, blocks for the whole window).
                let free_at = match inside.len().checked_sub(limit as usize) {
                    Some(i) if limit > 0 => *inside[i] + span,
                    _ => now + span,
                };
                let wait = (free_at - now).whole_milliseconds().max(1);
                return Err(Breach {
                    limit,
                    window: name,
                    retry_after: (wait as u64).div_ceil(1000),
                });
            }
        }
        q.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ksef_model::operations::OperationId;

    #[test]
    fn sliding_windows_and_retry_after() {
        let op = OperationId::OpenOnlineSession.spec(); // 10/s, 30/min, 120/h
        let ip: IpAddr = [127, 0, 0, 1].into();
        let mut rl = RateLimiter::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20000);
        for _ in 0..10 {
            rl.check(op, Some("ctx"), ip, t0).unwrap();
        }
        let b = rl.check(op, Some("ctx"), ip, t0).unwrap_err();
        assert_eq!((b.limit, b.window, b.retry_after), (10, "sekundę", 1));
        // Another context has its own counter.
        rl.check(op, Some("other"), ip, t0).unwrap();
        // The per-minute window: 30 requests in the first three seconds, then wait.
        for s in 1..3 {
            for _ in 0..10 {
                rl.check(op, Some("ctx"), ip, t0 + Duration::seconds(s))
                    .unwrap();
            }
        }
        let b = rl
            .check(op, Some("ctx"), ip, t0 + Duration::seconds(3))
            .unwrap_err();
        assert_eq!((b.limit, b.window, b.retry_after), (30, "minutę", 57));
        rl.check(op, Some("ctx"), ip, t0 + Duration::seconds(60))
            .unwrap();
    }

    #[test]
    fn purge_drops_counters_idle_for_an_hour() {
        let op = OperationId::OpenOnlineSession.spec();
        let ip: IpAddr = [127, 0, 0, 1].into();
        let mut rl = RateLimiter::default();
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20000);
        rl.check(op, Some("a"), ip, t0).unwrap();
        rl.check(op, Some("b"), ip, t0 + Duration::minutes(30))
            .unwrap();
        assert_eq!(rl.purge(t0 + Duration::minutes(59)), 0);
        assert_eq!(rl.purge(t0 + Duration::HOUR), 1);
        assert_eq!(rl.hits.len(), 1);
        assert_eq!(rl.purge(t0 + Duration::minutes(90)), 1);
        assert!(rl.hits.is_empty());
    }

    #[test]
    fn other_group_counts_per_operation() {
        let a = OperationId::TestdataBlockContext.spec();
        let b = OperationId::TestdataUnblockContext.spec();
        assert_eq!(a.rate_limit.group, RateLimitGroup::Other);
        let ip: IpAddr = [127, 0, 0, 1].into();
        let mut rl = RateLimiter::default();
        let t0 = OffsetDateTime::UNIX_EPOCH;
        for _ in 0..a.rate_limit.per_second.unwrap() {
            rl.check(a, None, ip, t0).unwrap();
        }
        assert!(rl.check(a, None, ip, t0).is_err());
        rl.check(b, None, ip, t0).unwrap();
    }
}
