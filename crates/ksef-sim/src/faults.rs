//! Fault injection for resilience tests: added latency, 5xx answers, forced 429s and dropped
//! connections, per operation or path prefix, drawn from a seeded generator so a run with the
//! same requests in the same order injects the same faults.
//!
//! A fault happens either **before** the request is handled (nothing changes; the client may
//! safely repeat) or **after** it was handled (the state changed — an invoice was stored, a
//! session closed — and only the answer is lost: the case clients get wrong). Faults never
//! touch the state themselves.
//!
//! Set a [`FaultPlan`] with [`SimulatorBuilder::faults`](crate::SimulatorBuilder::faults), with
//! [`SimulatorHandle::set_faults`](crate::SimulatorHandle::set_faults), or over HTTP outside
//! `/v2`: `PUT /__sim/faults` (the plan as JSON), `DELETE /__sim/faults` (no faults), `GET
//! /__sim/faults` (the plan and the [`FaultCounters`] of what was injected).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ksef_model::operations::OperationId;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::error::json_response;
use crate::ids::IdRng;
use crate::server::Inner;

/// When a fault strikes relative to handling the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Instead of handling the request: the state is untouched.
    #[default]
    Before,
    /// After handling it: the state changed, the answer is lost or replaced.
    After,
}

/// What goes wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum FaultKind {
    /// An HTTP 5xx (500, 502, 503 or 504) with a problem+json body.
    #[serde(rename_all = "camelCase")]
    Status {
        /// The status code (500–599).
        status: u16,
    },
    /// 429 with `Retry-After` (always *before* handling, as KSeF rejects before processing).
    #[serde(rename_all = "camelCase")]
    RateLimit {
        /// The `Retry-After` value in seconds.
        retry_after_seconds: u64,
    },
    /// The connection is closed without any response.
    Drop,
}

/// One fault with its probability. (Unknown fields cannot be refused here: serde's `flatten`
/// and `deny_unknown_fields` do not combine.)
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Fault {
    /// What goes wrong.
    #[serde(flatten)]
    pub kind: FaultKind,
    /// Probability per matching request, `0.0..=1.0`. The faults of a rule share one draw, so
    /// their rates add up (at most 1 in all).
    pub rate: f64,
    /// Before or after handling (ignored for rate limits, which are always before).
    #[serde(default)]
    pub phase: Phase,
}

/// Faults for a set of requests.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultRule {
    /// Operation names (snake_case, as in `ksef_model::operations`, e.g. `send_invoice`); empty
    /// means any.
    #[serde(default)]
    pub operations: Vec<String>,
    /// A prefix of the request path (e.g. `/v2/sessions/`, `/storage/`); `None` means any.
    #[serde(default)]
    pub path_prefix: Option<String>,
    /// Latency added to every matching request, in milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// The faults and their rates.
    #[serde(default)]
    pub faults: Vec<Fault>,
    /// Inject at most this many faults with this rule (latency not counted); `None`: no limit.
    #[serde(default)]
    pub limit: Option<u64>,
}

impl FaultRule {
    /// A rule for one operation.
    pub fn operation(op: OperationId) -> Self {
        Self::default().and_operation(op)
    }

    /// A rule for every request whose path starts with `prefix` (e.g. `/v2/sessions/`).
    pub fn path_prefix(prefix: impl Into<String>) -> Self {
        FaultRule {
            path_prefix: Some(prefix.into()),
            ..Self::default()
        }
    }

    /// A rule for every request (under `/v2` and `/storage`).
    pub fn any() -> Self {
        Self::default()
    }

    /// Also applies to `op`.
    pub fn and_operation(mut self, op: OperationId) -> Self {
        self.operations.push(op.name().to_owned());
        self
    }

    /// Adds latency to every matching request.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Answers `status` (5xx) with probability `rate`, before or after handling.
    pub fn status(mut self, status: u16, rate: f64, phase: Phase) -> Self {
        self.faults.push(Fault {
            kind: FaultKind::Status { status },
            rate,
            phase,
        });
        self
    }

    /// Answers 429 with `Retry-After: retry_after_seconds` with probability `rate`.
    pub fn rate_limit(mut self, rate: f64, retry_after_seconds: u64) -> Self {
        self.faults.push(Fault {
            kind: FaultKind::RateLimit {
                retry_after_seconds,
            },
            rate,
            phase: Phase::Before,
        });
        self
    }

    /// Closes the connection without a response with probability `rate`.
    pub fn drop_connection(mut self, rate: f64, phase: Phase) -> Self {
        self.faults.push(Fault {
            kind: FaultKind::Drop,
            rate,
            phase,
        });
        self
    }

    /// Injects at most `n` faults with this rule.
    pub fn limit(mut self, n: u64) -> Self {
        self.limit = Some(n);
        self
    }

    fn matches(&self, operation: Option<&str>, path: &str) -> bool {
        let op_ok = self.operations.is_empty()
            || operation.is_some_and(|o| self.operations.iter().any(|r| r == o));
        let path_ok = self
            .path_prefix
            .as_deref()
            .is_none_or(|p| path.starts_with(p));
        op_ok && path_ok
    }
}

/// Which faults to inject: the first rule that matches a request applies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FaultPlan {
    /// Seed of the generator that decides which requests fail.
    #[serde(default)]
    pub seed: u64,
    /// The rules, in order.
    #[serde(default)]
    pub rules: Vec<FaultRule>,
}

impl FaultPlan {
    /// An empty plan with this seed.
    pub fn new(seed: u64) -> Self {
        FaultPlan {
            seed,
            rules: Vec::new(),
        }
    }

    /// Appends a rule.
    pub fn rule(mut self, rule: FaultRule) -> Self {
        self.rules.push(rule);
        self
    }

    /// Checks rates (each in `0..=1`, at most 1 per rule) and statuses (500–599).
    pub fn validate(&self) -> Result<(), String> {
        for (i, r) in self.rules.iter().enumerate() {
            let mut sum = 0.0;
            for f in &r.faults {
                if !(0.0..=1.0).contains(&f.rate) {
                    return Err(format!("rule {i}: rate {} is not within 0..=1", f.rate));
                }
                sum += f.rate;
                if let FaultKind::Status { status } = f.kind
                    && !(500..=599).contains(&status)
                {
                    return Err(format!("rule {i}: status {status} is not a 5xx"));
                }
            }
            if sum > 1.0 + 1e-9 {
                return Err(format!("rule {i}: the rates add up to {sum} (> 1)"));
            }
        }
        Ok(())
    }
}

/// What was injected since the plan was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultCounters {
    /// Requests a rule matched.
    pub matched: u64,
    /// Requests delayed.
    pub delayed: u64,
    /// 5xx answered instead of handling.
    pub status_before: u64,
    /// 5xx answered after handling (the real answer lost).
    pub status_after: u64,
    /// 429s.
    pub rate_limited: u64,
    /// Connections dropped instead of handling.
    pub dropped_before: u64,
    /// Connections dropped after handling.
    pub dropped_after: u64,
}

impl FaultCounters {
    /// All faults injected (latency not counted).
    pub fn total(&self) -> u64 {
        self.status_before
            + self.status_after
            + self.rate_limited
            + self.dropped_before
            + self.dropped_after
    }
}

/// The decision for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Injection {
    pub latency: Duration,
    pub fault: Option<(FaultKind, Phase)>,
}

struct Active {
    plan: FaultPlan,
    rng: IdRng,
    counters: FaultCounters,
    per_rule: Vec<FaultCounters>,
}

/// The simulator's injector.
pub(crate) struct FaultInjector {
    active: Mutex<Active>,
}

impl FaultInjector {
    pub fn new(plan: FaultPlan) -> Self {
        FaultInjector {
            active: Mutex::new(Active::from(plan)),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Active> {
        // Every update is a counter bump or a whole replacement: a poisoned lock holds
        // consistent data.
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn set(&self, plan: FaultPlan) {
        *self.lock() = Active::from(plan);
    }

    pub fn counters(&self) -> FaultCounters {
        self.lock().counters
    }

    /// Draws the faults of one request.
    pub fn decide(&self, operation: Option<&str>, path: &str) -> Injection {
        let mut a = self.lock();
        if a.plan.rules.is_empty() {
            return Injection::default();
        }
        let Some(i) = a.plan.rules.iter().position(|r| r.matches(operation, path)) else {
            return Injection::default();
        };
        let draw = (a.rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        let rule = &a.plan.rules[i];
        let latency = Duration::from_millis(rule.latency_ms);
        let exhausted = rule
            .limit
            .is_some_and(|l| a.per_rule.get(i).map_or(0, FaultCounters::total) >= l);
        let mut fault = None;
        if !exhausted {
            let mut acc = 0.0;
            for f in &rule.faults {
                acc += f.rate;
                if draw < acc {
                    let phase = match f.kind {
                        FaultKind::RateLimit { .. } => Phase::Before,
                        _ => f.phase,
                    };
                    fault = Some((f.kind, phase));
                    break;
                }
            }
        }
        let bump = |c: &mut FaultCounters| {
            c.matched += 1;
            if !latency.is_zero() {
                c.delayed += 1;
            }
            match fault {
                Some((FaultKind::Status { .. }, Phase::Before)) => c.status_before += 1,
                Some((FaultKind::Status { .. }, Phase::After)) => c.status_after += 1,
                Some((FaultKind::RateLimit { .. }, _)) => c.rate_limited += 1,
                Some((FaultKind::Drop, Phase::Before)) => c.dropped_before += 1,
                Some((FaultKind::Drop, Phase::After)) => c.dropped_after += 1,
                None => {}
            }
        };
        bump(&mut a.counters);
        if let Some(c) = a.per_rule.get_mut(i) {
            bump(c);
        }
        Injection { latency, fault }
    }

    /// `GET /__sim/faults` body.
    pub fn report(&self) -> serde_json::Value {
        let a = self.lock();
        json!({"plan": a.plan, "counters": a.counters, "perRule": a.per_rule})
    }
}

impl From<FaultPlan> for Active {
    fn from(plan: FaultPlan) -> Self {
        Active {
            rng: IdRng::new(Some(plan.seed)),
            per_rule: vec![FaultCounters::default(); plan.rules.len()],
            counters: FaultCounters::default(),
            plan,
        }
    }
}

/// The injected answer for `phase`, if the request drew a fault there. A dropped connection
/// kills `conn` and returns a response that is never written.
pub(crate) fn inject(
    injection: Injection,
    phase: Phase,
    conn: &crate::tls::Conn,
    problem: bool,
) -> Option<Response> {
    let (kind, at) = injection.fault?;
    if at != phase {
        return None;
    }
    Some(match kind {
        FaultKind::Status { status } => status_response(status),
        FaultKind::RateLimit {
            retry_after_seconds,
        } => rate_limit_response(retry_after_seconds, problem),
        FaultKind::Drop => {
            conn.kill();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    })
}

/// The admin routes outside `/v2`: `GET|PUT|DELETE /__sim/faults`, `POST /__sim/keys/rotate`,
/// `POST /__sim/challenges` (tests: plant a fixed challenge, see
/// [`crate::SimulatorHandle::plant_challenge_for_tests`]).
pub(crate) async fn admin(inner: &Arc<Inner>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let bad = |msg: String| {
        json_response(
            StatusCode::BAD_REQUEST,
            "application/json",
            &json!({"error": msg}),
        )
    };
    let Ok(body) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return bad("the body is larger than 1 MiB".into());
    };
    match (&parts.method, parts.uri.path()) {
        (&Method::GET, "/__sim/faults") => {
            json_response(StatusCode::OK, "application/json", &inner.faults.report())
        }
        (&Method::PUT, "/__sim/faults") => {
            let plan: FaultPlan = match serde_json::from_slice(&body) {
                Ok(p) => p,
                Err(e) => return bad(format!("not a fault plan: {e}")),
            };
            if let Err(e) = plan.validate() {
                return bad(e);
            }
            inner.faults.set(plan);
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::DELETE, "/__sim/faults") => {
            inner.faults.set(FaultPlan::default());
            StatusCode::NO_CONTENT.into_response()
        }
        (&Method::POST, "/__sim/keys/rotate") => crate::keys::admin_rotate(inner, &body).await,
        (&Method::POST, "/__sim/challenges") => {
            let v: serde_json::Value = match serde_json::from_slice(&body) {
                Ok(v) => v,
                Err(e) => return bad(format!("expected {{\"challenge\": \"…\"}}: {e}")),
            };
            let Some(challenge) = v["challenge"].as_str() else {
                return bad("expected {\"challenge\": \"…\"}".into());
            };
            match crate::auth::plant_challenge(inner, challenge) {
                Ok(ms) => json_response(
                    StatusCode::OK,
                    "application/json",
                    &json!({"challenge": challenge, "timestampMs": ms}),
                ),
                Err(e) => bad(e),
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The answer of an injected 5xx.
pub(crate) fn status_response(status: u16) -> Response {
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
    json_response(
        code,
        "application/problem+json",
        &json!({"title": code.canonical_reason().unwrap_or("Server Error"), "status": status,
                "detail": "Usługa chwilowo niedostępna (błąd wstrzyknięty przez ksef-sim)."}),
    )
}

/// The answer of an injected 429 (legacy format unless the caller asked for problem details).
pub(crate) fn rate_limit_response(retry_after: u64, problem: bool) -> Response {
    let detail = format!("Przekroczono limit żądań. Spróbuj ponownie po {retry_after} sekundach.");
    let mut r = if problem {
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            "application/problem+json",
            &json!({"title": "Too Many Requests", "status": 429, "detail": detail}),
        )
    } else {
        json_response(
            StatusCode::TOO_MANY_REQUESTS,
            "application/json",
            &json!({"status": {"code": 429, "description": "Too Many Requests",
                               "details": [detail]}}),
        )
    };
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_json_round_trip_and_validation() {
        let plan = FaultPlan::new(7).rule(
            FaultRule::operation(OperationId::SendInvoice)
                .latency(Duration::from_millis(3))
                .status(503, 0.1, Phase::After)
                .rate_limit(0.1, 1)
                .drop_connection(0.1, Phase::Before),
        );
        let v = serde_json::to_value(&plan).unwrap();
        assert_eq!(v["rules"][0]["operations"][0], "send_invoice");
        assert_eq!(v["rules"][0]["faults"][0]["kind"], "status");
        assert_eq!(v["rules"][0]["faults"][0]["phase"], "after");
        assert_eq!(v["rules"][0]["faults"][1]["retryAfterSeconds"], 1);
        let back: FaultPlan = serde_json::from_value(v).unwrap();
        assert_eq!(back, plan);
        assert!(plan.validate().is_ok());
        let bad = FaultPlan::new(1).rule(FaultRule::any().status(404, 0.5, Phase::Before));
        assert!(bad.validate().unwrap_err().contains("5xx"));
        let bad = FaultPlan::new(1).rule(
            FaultRule::any()
                .status(500, 0.6, Phase::Before)
                .drop_connection(0.6, Phase::After),
        );
        assert!(bad.validate().unwrap_err().contains("add up"));
        let typo: Result<FaultPlan, _> =
            serde_json::from_str(r#"{"rules":[{"operation":["send_invoice"]}]}"#);
        assert!(typo.is_err(), "unknown fields are refused");
    }

    #[test]
    fn same_seed_same_faults_and_rates_hold() {
        let plan = FaultPlan::new(42).rule(
            FaultRule::operation(OperationId::SendInvoice)
                .status(500, 0.2, Phase::Before)
                .drop_connection(0.1, Phase::After),
        );
        let run = || {
            let f = FaultInjector::new(plan.clone());
            (0..2000)
                .map(|_| f.decide(Some("send_invoice"), "/v2/x").fault)
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run());
        let status = a
            .iter()
            .filter(|f| matches!(f, Some((FaultKind::Status { status: 500 }, Phase::Before))))
            .count();
        let drops = a
            .iter()
            .filter(|f| matches!(f, Some((FaultKind::Drop, Phase::After))))
            .count();
        assert!((300..500).contains(&status), "{status}");
        assert!((120..280).contains(&drops), "{drops}");
    }

    #[test]
    fn first_matching_rule_applies_and_limits_count() {
        let f = FaultInjector::new(
            FaultPlan::new(1)
                .rule(FaultRule::path_prefix("/storage/").status(502, 1.0, Phase::Before))
                .rule(
                    FaultRule::operation(OperationId::SessionStatus)
                        .rate_limit(1.0, 2)
                        .limit(2),
                ),
        );
        assert_eq!(
            f.decide(None, "/storage/x").fault,
            Some((FaultKind::Status { status: 502 }, Phase::Before))
        );
        assert_eq!(f.decide(Some("send_invoice"), "/v2/y").fault, None);
        for _ in 0..2 {
            assert!(f.decide(Some("session_status"), "/v2/s").fault.is_some());
        }
        assert_eq!(f.decide(Some("session_status"), "/v2/s").fault, None);
        let c = f.counters();
        assert_eq!((c.matched, c.rate_limited, c.status_before), (4, 2, 1));
        f.set(FaultPlan::default());
        assert_eq!(f.counters(), FaultCounters::default());
        assert_eq!(f.decide(None, "/storage/x"), Injection::default());
    }
}
