//! When to repeat a call: a pure decision function with exhaustive tests.
//!
//! Rules (ksef-api.md §15, §18, §20):
//! - **429** — KSeF rejected the call before processing it, so *every* operation may be repeated:
//!   wait `Retry-After` (seconds or an HTTP date; exponential backoff when absent) while the total
//!   rate-limit waiting stays within [`RetryPolicy::rate_limit_budget`]; then stop (the caller
//!   returns [`Error::RateLimited`](crate::Error::RateLimited)).
//! - **5xx, timeouts, broken connections** — repeated only for operations where a second
//!   request cannot create a second object ([`RetryClass::Idempotent`]: every GET and an
//!   explicit list of POST/DELETE calls), with exponential backoff and jitter, at most
//!   [`RetryPolicy::max_attempts`] attempts in all. Never for sending an invoice, opening or
//!   closing a session, starting exports, granting permissions or generating tokens: the server
//!   may have carried them out and lost only the answer (the facade reconciles an invoice send
//!   by looking the invoice up in its session).
//! - **A connection that could not be established** — the request never left, so every
//!   operation is repeated (within [`RetryPolicy::max_attempts`]), redeem included.
//! - **Redeem** ([`RetryClass::RedeemOnce`]) is never repeated; an ambiguous failure becomes
//!   [`Error::RedeemOutcomeUnknown`](crate::Error::RedeemOutcomeUnknown).
//! - Anything else (2xx, other 4xx, decode errors) stops.

use std::time::Duration;

/// How an operation may be repeated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryClass {
    /// Repeating cannot create a second object (GETs, queries, the challenge, revokes of a
    /// named object, test-data setters).
    Idempotent,
    /// Repeating may create a second object or a second side effect.
    NotIdempotent,
    /// `POST /auth/token/redeem`: works exactly once.
    RedeemOnce,
}

/// POST/PUT/DELETE operations that are safe to repeat (method, path template).
const SAFE_NON_GET: &[(&str, &str)] = &[
    ("POST", "/auth/challenge"),
    // The refresh token is not rotated: refreshing twice only yields two access tokens.
    ("POST", "/auth/token/refresh"),
    ("POST", "/invoices/query/metadata"),
    ("POST", "/permissions/query/personal/grants"),
    ("POST", "/permissions/query/persons/grants"),
    ("POST", "/permissions/query/subunits/grants"),
    ("POST", "/permissions/query/entities/grants"),
    ("POST", "/permissions/query/subordinate-entities/roles"),
    ("POST", "/permissions/query/authorizations/grants"),
    ("POST", "/permissions/query/eu-entities/grants"),
    ("POST", "/certificates/retrieve"),
    ("POST", "/certificates/query"),
    ("POST", "/collective-identifiers/query"),
    ("DELETE", "/auth/sessions/current"),
    ("DELETE", "/auth/sessions/{referenceNumber}"),
    ("DELETE", "/tokens/{referenceNumber}"),
    ("POST", "/testdata/limits/context/session"),
    ("DELETE", "/testdata/limits/context/session"),
    ("POST", "/testdata/limits/subject/certificate"),
    ("DELETE", "/testdata/limits/subject/certificate"),
    ("POST", "/testdata/rate-limits"),
    ("DELETE", "/testdata/rate-limits"),
    ("POST", "/testdata/rate-limits/production"),
];

/// The retry class of an operation, from its HTTP method and path template.
pub fn retry_class(method: &str, path: &str) -> RetryClass {
    if method.eq_ignore_ascii_case("GET") {
        return RetryClass::Idempotent;
    }
    if method.eq_ignore_ascii_case("POST") && path == "/auth/token/redeem" {
        return RetryClass::RedeemOnce;
    }
    if SAFE_NON_GET
        .iter()
        .any(|(m, p)| m.eq_ignore_ascii_case(method) && *p == path)
    {
        RetryClass::Idempotent
    } else {
        RetryClass::NotIdempotent
    }
}

/// What happened on one attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The server answered with this status (and `Retry-After`, when present and parseable).
    Status {
        /// HTTP status.
        status: u16,
        /// Parsed `Retry-After`.
        retry_after: Option<Duration>,
    },
    /// No answer within the timeout (the request may have been processed).
    Timeout,
    /// No connection could be established (the request was not sent).
    Connect,
    /// The connection failed after the request was (maybe) sent.
    Transport,
}

/// The decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Do not repeat; report the outcome.
    Stop,
    /// Sleep this long, then repeat.
    RetryAfter(Duration),
}

/// The state of one call's attempts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Attempt {
    /// The attempt that just finished, from 1.
    pub number: u32,
    /// Time already spent waiting for 429s in this call.
    pub rate_limit_waited: Duration,
    /// A uniform random number in `[0, 1)` for jitter (tests pass a fixed one).
    pub jitter: f64,
}

/// Retry tuning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (first one included) for 5xx, timeouts and connection failures of
    /// idempotent operations. 1 disables those retries.
    pub max_attempts: u32,
    /// First backoff delay; doubles with every attempt.
    pub base_delay: Duration,
    /// Upper bound of one backoff delay.
    pub max_delay: Duration,
    /// Total time one call may spend waiting out 429s. Zero disables 429 retries.
    pub rate_limit_budget: Duration,
    /// Upper bound of the number of 429 retries of one call (guards against `Retry-After: 0`).
    pub max_rate_limit_retries: u32,
}

impl Default for RetryPolicy {
    /// 3 attempts, 500 ms base delay capped at 10 s; up to 2 minutes and 10 retries of 429 waiting.
    fn default() -> Self {
        Self {
            max_attempts: 3,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            rate_limit_budget: Duration::from_secs(120),
            max_rate_limit_retries: 10,
        }
    }
}

impl RetryPolicy {
    /// Never repeat anything (429s included).
    pub fn none() -> Self {
        Self {
            max_attempts: 1,
            rate_limit_budget: Duration::ZERO,
            max_rate_limit_retries: 0,
            ..Self::default()
        }
    }

    /// Exponential backoff with "equal jitter": half the delay fixed, half random.
    pub fn backoff(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(20);
        let full = self
            .base_delay
            .saturating_mul(1u32 << exp)
            .min(self.max_delay);
        let jitter = if jitter.is_nan() {
            0.0
        } else {
            jitter.clamp(0.0, 1.0)
        };
        full / 2 + full.div_f64(2.0).mul_f64(jitter)
    }

    /// The decision for one finished attempt. Pure: same inputs, same answer.
    pub fn decide(&self, class: RetryClass, outcome: &Outcome, attempt: &Attempt) -> Decision {
        match *outcome {
            Outcome::Status {
                status: 429,
                retry_after,
            } => {
                if attempt.number > self.max_rate_limit_retries {
                    return Decision::Stop;
                }
                let wait =
                    retry_after.unwrap_or_else(|| self.backoff(attempt.number, attempt.jitter));
                if attempt.rate_limit_waited.saturating_add(wait) > self.rate_limit_budget {
                    Decision::Stop
                } else {
                    Decision::RetryAfter(wait)
                }
            }
            Outcome::Status {
                status,
                retry_after,
            } if (500..=599).contains(&status) => self.transient(class, attempt, retry_after),
            Outcome::Status { .. } => Decision::Stop,
            // Nothing was sent: repeating cannot do anything twice.
            Outcome::Connect => self.transient(RetryClass::Idempotent, attempt, None),
            Outcome::Timeout | Outcome::Transport => self.transient(class, attempt, None),
        }
    }

    fn transient(
        &self,
        class: RetryClass,
        attempt: &Attempt,
        retry_after: Option<Duration>,
    ) -> Decision {
        if class != RetryClass::Idempotent || attempt.number >= self.max_attempts {
            return Decision::Stop;
        }
        let backoff = self.backoff(attempt.number, attempt.jitter);
        // A 503 Retry-After is honoured when it is longer, within the same cap.
        let wait = match retry_after {
            Some(ra) if ra > backoff => ra.min(self.max_delay),
            _ => backoff,
        };
        Decision::RetryAfter(wait)
    }
}

/// A random number in `[0, 1)` for jitter. Uses the randomly seeded std hasher: jitter only has
/// to decorrelate clients, not be unpredictable, and this avoids a dependency.
pub(crate) fn jitter() -> f64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;
    const MS: fn(u64) -> Duration = Duration::from_millis;

    fn at(number: u32) -> Attempt {
        Attempt {
            number,
            rate_limit_waited: Duration::ZERO,
            jitter: 0.0,
        }
    }

    fn st(status: u16) -> Outcome {
        Outcome::Status {
            status,
            retry_after: None,
        }
    }

    const ALL_CLASSES: [RetryClass; 3] = [
        RetryClass::Idempotent,
        RetryClass::NotIdempotent,
        RetryClass::RedeemOnce,
    ];

    #[test]
    fn classes_of_operations() {
        use RetryClass::*;
        let cases = [
            ("GET", "/auth/{referenceNumber}", Idempotent),
            ("GET", "/sessions", Idempotent),
            ("get", "/invoices/ksef/{ksefNumber}", Idempotent),
            ("POST", "/auth/challenge", Idempotent),
            ("POST", "/auth/token/refresh", Idempotent),
            ("POST", "/invoices/query/metadata", Idempotent),
            ("POST", "/permissions/query/persons/grants", Idempotent),
            ("POST", "/certificates/query", Idempotent),
            ("POST", "/collective-identifiers/query", Idempotent),
            ("DELETE", "/tokens/{referenceNumber}", Idempotent),
            ("DELETE", "/auth/sessions/current", Idempotent),
            ("POST", "/auth/token/redeem", RedeemOnce),
            ("POST", "/auth/xades-signature", NotIdempotent),
            ("POST", "/auth/ksef-token", NotIdempotent),
            ("POST", "/sessions/online", NotIdempotent),
            ("POST", "/sessions/batch", NotIdempotent),
            (
                "POST",
                "/sessions/online/{referenceNumber}/invoices",
                NotIdempotent,
            ),
            (
                "POST",
                "/sessions/online/{referenceNumber}/close",
                NotIdempotent,
            ),
            ("POST", "/invoices/exports", NotIdempotent),
            ("POST", "/tokens", NotIdempotent),
            ("POST", "/permissions/persons/grants", NotIdempotent),
            (
                "DELETE",
                "/permissions/common/grants/{permissionId}",
                NotIdempotent,
            ),
            ("POST", "/certificates/enrollments", NotIdempotent),
            ("POST", "/collective-identifiers", NotIdempotent),
            (
                "PUT",
                "/testdata/certificates/{serialNumber}",
                NotIdempotent,
            ),
            ("POST", "/testdata/subject", NotIdempotent),
        ];
        for (m, p, want) in cases {
            assert_eq!(retry_class(m, p), want, "{m} {p}");
        }
    }

    #[test]
    fn success_and_client_errors_stop() {
        let p = RetryPolicy::default();
        for class in ALL_CLASSES {
            for status in [
                200, 201, 202, 204, 301, 400, 401, 403, 404, 409, 410, 413, 422,
            ] {
                assert_eq!(
                    p.decide(class, &st(status), &at(1)),
                    Decision::Stop,
                    "{status} {class:?}"
                );
            }
        }
    }

    #[test]
    fn server_errors_retry_only_idempotent() {
        let p = RetryPolicy::default();
        for status in [500, 502, 503, 504, 599] {
            assert_eq!(
                p.decide(RetryClass::Idempotent, &st(status), &at(1)),
                Decision::RetryAfter(MS(250))
            );
            assert_eq!(
                p.decide(RetryClass::Idempotent, &st(status), &at(2)),
                Decision::RetryAfter(MS(500))
            );
            assert_eq!(
                p.decide(RetryClass::Idempotent, &st(status), &at(3)),
                Decision::Stop,
                "max_attempts"
            );
            assert_eq!(
                p.decide(RetryClass::NotIdempotent, &st(status), &at(1)),
                Decision::Stop
            );
            assert_eq!(
                p.decide(RetryClass::RedeemOnce, &st(status), &at(1)),
                Decision::Stop
            );
        }
    }

    #[test]
    fn unsent_requests_retry_for_every_class() {
        let p = RetryPolicy::default();
        for class in ALL_CLASSES {
            assert_eq!(
                p.decide(class, &Outcome::Connect, &at(1)),
                Decision::RetryAfter(MS(250)),
                "{class:?}"
            );
            assert_eq!(
                p.decide(class, &Outcome::Connect, &at(3)),
                Decision::Stop,
                "max_attempts"
            );
        }
        assert_eq!(
            RetryPolicy::none().decide(RetryClass::NotIdempotent, &Outcome::Connect, &at(1)),
            Decision::Stop
        );
    }

    #[test]
    fn transport_failures_retry_only_idempotent() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.decide(RetryClass::Idempotent, &Outcome::Connect, &at(1)),
            Decision::RetryAfter(_)
        ));
        for o in [Outcome::Timeout, Outcome::Transport] {
            assert!(matches!(
                p.decide(RetryClass::Idempotent, &o, &at(1)),
                Decision::RetryAfter(_)
            ));
            assert_eq!(p.decide(RetryClass::Idempotent, &o, &at(3)), Decision::Stop);
            assert_eq!(
                p.decide(RetryClass::NotIdempotent, &o, &at(1)),
                Decision::Stop
            );
            assert_eq!(p.decide(RetryClass::RedeemOnce, &o, &at(1)), Decision::Stop);
        }
    }

    #[test]
    fn service_unavailable_retry_after_is_honoured_within_cap() {
        let p = RetryPolicy::default();
        let o = Outcome::Status {
            status: 503,
            retry_after: Some(S(5)),
        };
        assert_eq!(
            p.decide(RetryClass::Idempotent, &o, &at(1)),
            Decision::RetryAfter(S(5))
        );
        let o = Outcome::Status {
            status: 503,
            retry_after: Some(S(600)),
        };
        assert_eq!(
            p.decide(RetryClass::Idempotent, &o, &at(1)),
            Decision::RetryAfter(S(10))
        );
        let o = Outcome::Status {
            status: 503,
            retry_after: Some(MS(1)),
        };
        assert_eq!(
            p.decide(RetryClass::Idempotent, &o, &at(1)),
            Decision::RetryAfter(MS(250))
        );
    }

    #[test]
    fn rate_limit_honours_retry_after_for_every_class() {
        let p = RetryPolicy::default();
        let o = Outcome::Status {
            status: 429,
            retry_after: Some(S(30)),
        };
        for class in ALL_CLASSES {
            assert_eq!(
                p.decide(class, &o, &at(1)),
                Decision::RetryAfter(S(30)),
                "{class:?}"
            );
            // Attempt count for 5xx does not limit 429s.
            assert_eq!(
                p.decide(class, &o, &at(5)),
                Decision::RetryAfter(S(30)),
                "{class:?}"
            );
        }
    }

    #[test]
    fn rate_limit_budget_and_count() {
        let p = RetryPolicy::default(); // budget 120 s, 10 retries
        let o = Outcome::Status {
            status: 429,
            retry_after: Some(S(30)),
        };
        let mut a = at(1);
        a.rate_limit_waited = S(90);
        assert_eq!(
            p.decide(RetryClass::NotIdempotent, &o, &a),
            Decision::RetryAfter(S(30))
        );
        a.rate_limit_waited = S(91);
        assert_eq!(p.decide(RetryClass::NotIdempotent, &o, &a), Decision::Stop);
        let o = Outcome::Status {
            status: 429,
            retry_after: Some(S(121)),
        };
        assert_eq!(p.decide(RetryClass::Idempotent, &o, &at(1)), Decision::Stop);
        let o = Outcome::Status {
            status: 429,
            retry_after: Some(Duration::ZERO),
        };
        assert_eq!(
            p.decide(RetryClass::Idempotent, &o, &at(10)),
            Decision::RetryAfter(Duration::ZERO)
        );
        assert_eq!(
            p.decide(RetryClass::Idempotent, &o, &at(11)),
            Decision::Stop
        );
    }

    #[test]
    fn rate_limit_without_retry_after_backs_off() {
        let p = RetryPolicy::default();
        let o = st(429);
        assert_eq!(
            p.decide(RetryClass::NotIdempotent, &o, &at(1)),
            Decision::RetryAfter(MS(250))
        );
        assert_eq!(
            p.decide(RetryClass::NotIdempotent, &o, &at(2)),
            Decision::RetryAfter(MS(500))
        );
        assert_eq!(
            p.decide(RetryClass::NotIdempotent, &o, &at(3)),
            Decision::RetryAfter(S(1))
        );
        let mut a = at(3);
        a.jitter = 0.5;
        assert_eq!(
            p.decide(RetryClass::NotIdempotent, &o, &a),
            Decision::RetryAfter(MS(1500))
        );
    }

    #[test]
    fn none_policy_never_retries() {
        let p = RetryPolicy::none();
        for class in ALL_CLASSES {
            for o in [
                st(429),
                st(500),
                Outcome::Timeout,
                Outcome::Connect,
                Outcome::Transport,
            ] {
                assert_eq!(p.decide(class, &o, &at(1)), Decision::Stop, "{o:?}");
            }
        }
    }

    #[test]
    fn backoff_grows_caps_and_jitters() {
        let p = RetryPolicy::default();
        assert_eq!(p.backoff(1, 0.0), MS(250));
        assert!(p.backoff(1, 0.999_999) < MS(500) && p.backoff(1, 0.999_999) > MS(499));
        assert_eq!(p.backoff(4, 0.0), S(2));
        assert_eq!(p.backoff(10, 0.0), S(5));
        assert_eq!(p.backoff(10, 1.0), S(10));
        assert_eq!(p.backoff(u32::MAX, 1.0), S(10));
        assert_eq!(p.backoff(0, 0.0), MS(250));
        assert_eq!(p.backoff(1, -1.0), MS(250));
        assert_eq!(p.backoff(1, f64::NAN), MS(250));
    }

    #[test]
    fn jitter_is_in_range() {
        for _ in 0..1000 {
            let j = jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }
}
