//! Housekeeping for a long-running simulator: what can no longer be used is dropped from
//! memory on a periodic tick, so that the state does not grow with every challenge, login and
//! request.
//!
//! - challenges older than their lifetime (10 min; a late submission answers 21111 either way);
//! - authentication operations whose every token has expired: the operation token (45 min),
//!   and for a redeemed operation the refresh token (7 days) plus the last access token it
//!   could have issued (15 min). Operations a session names are kept (its UPOs cite them);
//! - rate-limit counters with no request inside the longest window (1 h).

use time::OffsetDateTime;

use crate::auth::{ACCESS_TOKEN_TTL, CHALLENGE_TTL, OPERATION_TOKEN_TTL};
use crate::server::Inner;
use crate::state::AuthOp;

/// How often the tick runs (real time; expiry itself is judged on the simulator's clock).
pub(crate) const TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// What one purge removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Purged {
    /// Expired challenges.
    pub challenges: usize,
    /// Authentication operations none of whose tokens is valid any more.
    pub auth_operations: usize,
    /// Rate-limit counters with no request in the last hour.
    pub rate_limit_counters: usize,
}

/// Until when a token of `op` can still be presented.
fn last_use(op: &AuthOp) -> OffsetDateTime {
    let operation = op.started + OPERATION_TOKEN_TTL;
    match op.refresh_valid_until {
        Some(refresh) if op.redeemed => operation.max(refresh + ACCESS_TOKEN_TTL),
        _ => operation,
    }
}

/// Drops what expired before `now`.
pub(crate) fn purge(inner: &Inner, now: OffsetDateTime) -> Purged {
    let mut purged = Purged::default();
    {
        let mut st = inner.state();
        let before = st.challenges.len();
        st.challenges
            .retain(|_, c| now <= c.created + CHALLENGE_TTL);
        purged.challenges = before - st.challenges.len();
        let cited: std::collections::HashSet<String> =
            st.sessions.values().map(|s| s.auth_ref.clone()).collect();
        let before = st.auths.len();
        st.auths
            .retain(|r, op| now <= last_use(op) || cited.contains(r));
        purged.auth_operations = before - st.auths.len();
    }
    if let Some(limiter) = &inner.limiter {
        purged.rate_limit_counters = limiter.lock().unwrap_or_else(|p| p.into_inner()).purge(now);
    }
    purged
}
