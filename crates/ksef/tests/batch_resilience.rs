//! A batch of 10 000 invoices against a simulator that injects faults on every route the batch
//! path uses: opening the session, uploading the parts, closing, the session status and the
//! per-invoice listing — 5xx before and after the simulator handled the request, dropped
//! connections on both sides, and 429s with `Retry-After`. The batch must end with every
//! invoice accounted for exactly once (accepted with a unique KSeF number, or rejected with its
//! reason), none lost, none stored twice, and no other batch session holding any invoice.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

#[path = "../examples/batch.rs"]
#[allow(dead_code)]
mod example;

use std::collections::HashSet;
use std::time::Duration;

use futures_util::TryStreamExt;
use ksef::batch::{BatchBuilder, BatchInvoice};
use ksef::crypto::encryption::SessionKey;
use ksef::model::Nip;
use ksef::model::api::SessionType;
use ksef::model::operations::{ListSessionsQuery, OperationId};
use ksef::transport::RetryPolicy;
use ksef::{BatchSendOptions, KsefClient, PollOptions};
use ksef_sim::faults::{FaultPlan, FaultRule, Phase};

const NIP: &str = "5265877635";
const OTHER_NIP: &str = "7010002139";
const N: usize = 10_000;

/// A client that retries generously and quickly (the faults are frequent, the server local).
fn client(base: &str) -> KsefClient {
    KsefClient::builder_for_url(base)
        .pacing(false)
        .retry_policy(RetryPolicy {
            max_attempts: 8,
            base_delay: Duration::from_millis(2),
            max_delay: Duration::from_millis(20),
            rate_limit_budget: Duration::from_secs(30),
            max_rate_limit_retries: 20,
        })
        .poll_options(PollOptions {
            initial_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
            timeout: Duration::from_secs(120),
        })
        .build()
        .unwrap()
}

/// Every kind of fault on every batch route. Opening and closing happen once per batch, so
/// their rules fault on each of the first few attempts (rates adding up to 1, with a limit);
/// the frequent routes fault at random.
fn fault_plan() -> FaultPlan {
    let every_kind = |rule: FaultRule, limit: u64| {
        rule.status(503, 0.2, Phase::Before)
            .status(500, 0.2, Phase::After)
            .drop_connection(0.2, Phase::Before)
            .drop_connection(0.2, Phase::After)
            .rate_limit(0.2, 1)
            .limit(limit)
    };
    FaultPlan::new(SEED)
        .rule(every_kind(
            FaultRule::operation(OperationId::OpenBatchSession),
            4,
        ))
        .rule(every_kind(
            FaultRule::operation(OperationId::CloseBatchSession),
            4,
        ))
        .rule(
            FaultRule::path_prefix("/storage/batch/")
                .status(503, 0.08, Phase::Before)
                .status(500, 0.08, Phase::After)
                .drop_connection(0.08, Phase::Before)
                .drop_connection(0.08, Phase::After)
                .rate_limit(0.04, 1),
        )
        .rule(
            FaultRule::operation(OperationId::SessionStatus)
                .and_operation(OperationId::ListSessionInvoices)
                .status(502, 0.05, Phase::Before)
                .status(503, 0.05, Phase::After)
                .drop_connection(0.05, Phase::Before)
                .drop_connection(0.05, Phase::After)
                .rate_limit(0.01, 1),
        )
}

/// The seed of the fault draws. Only requests a rule matches draw, and here they come in a
/// fixed order: the opens (the first four fault, whatever the kind; the fifth succeeds), the
/// part uploads (however they interleave, the draws needed until every part is stored are the
/// same sequence), then each close followed by the session status the SDK reads after a close
/// with an unknown outcome (until a close is carried out), then the polling and listing. So the
/// faults of open, upload and close are fixed by the seed: with 9426 the opens get a drop
/// before, a 500 after, a drop after and a 429; the uploads a drop after, three 503s before and
/// a 500 after; the closes a 503 before, then a drop after — for an archive of 9 to 19 parts
/// except 14 (this one has 13). Changing the plan or the seed: check that it still holds.
const SEED: u64 = 9426;

/// The per-rule counters of the simulator's fault report.
async fn per_rule(sim: &ksef_sim::SimulatorHandle) -> Vec<serde_json::Value> {
    let report: serde_json::Value =
        reqwest::get(format!("http://{}/__sim/faults", sim.local_addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    report["perRule"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_of_10000_with_faults_accounts_for_each_invoice_exactly_once() {
    let started = std::time::Instant::now();
    let sim = ksef_sim::Simulator::builder()
        .seed(5)
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap();
    let client = client(&sim.base_url());
    let nip: Nip = NIP.parse().unwrap();
    let other: Nip = OTHER_NIP.parse().unwrap();
    let auth = example::login(&client, &nip).await.unwrap();

    // Every 500th invoice names another seller: KSeF rejects it (410) and says why.
    let expect_rejected = |i: usize| i % 500 == 499;
    let invoices: Vec<BatchInvoice> = (0..N)
        .map(|i| {
            let seller = if expect_rejected(i) { &other } else { &nip };
            let xml = example::invoice_xml(seller, &format!("BR/{i}")).unwrap();
            BatchInvoice::bytes(format!("br-{i:05}.xml"), xml)
        })
        .collect();
    let key = SessionKey::generate().unwrap();
    let package = {
        let key = key.clone();
        tokio::task::spawn_blocking(move || {
            BatchBuilder::new(key)
                .max_part_size(1_500_000)
                .build(invoices)
        })
        .await
        .unwrap()
        .unwrap()
    };
    let parts = package.parts().len();
    assert!(parts >= 6, "{parts} parts: too few to exercise the upload");
    eprintln!(
        "packed {N} invoices into {parts} parts ({} B) after {:.1?}",
        package.file_size(),
        started.elapsed()
    );

    sim.set_faults(fault_plan());
    let options = BatchSendOptions {
        concurrency: 4,
        part_retries: 12, // more than the upload faults of this seed: no part can run out
        ..BatchSendOptions::default()
    };
    let outcome = auth
        .sessions()
        .send_batch(&package, &key, &options)
        .await
        .unwrap();
    let rules = per_rule(&sim).await;
    let counters = sim.fault_counters();
    sim.clear_faults();
    eprintln!(
        "sent after {:.1?}; faults injected: {counters:?}",
        started.elapsed()
    );

    // Our side of the books: one result per input, in input order, each decided.
    assert_eq!(outcome.invoices.len(), N);
    let mut numbers = HashSet::new();
    let mut rejected = 0;
    for (i, (result, packed)) in outcome.invoices.iter().zip(package.invoices()).enumerate() {
        assert_eq!(result.name, packed.name, "results come in input order");
        assert_eq!(result.hash, packed.hash);
        match &result.outcome {
            Some(Ok(k)) => {
                assert!(!expect_rejected(i), "{}: accepted", result.name);
                assert!(
                    numbers.insert(k.to_string()),
                    "{}: KSeF number repeated",
                    result.name
                );
            }
            Some(Err(f)) => {
                assert!(expect_rejected(i), "{}: {f}", result.name);
                assert_eq!(f.code, 410, "{}: {f}", result.name);
                assert!(!f.details.is_empty(), "a rejection carries its reason");
                rejected += 1;
            }
            None => panic!("{}: not reported by KSeF (lost)", result.name),
        }
    }
    assert_eq!(rejected, N / 500);
    assert_eq!(numbers.len(), N - N / 500);
    assert_eq!(
        outcome.session.successful_invoice_count() as usize,
        N - N / 500
    );
    assert_eq!(outcome.session.failed_invoice_count() as usize, N / 500);

    // KSeF's side: the session holds each packed invoice exactly once, and any session opened
    // by an open whose answer was lost holds none.
    let listed: Vec<_> = outcome.session.invoices().try_collect().await.unwrap();
    assert_eq!(listed.len(), N, "no invoice stored twice, none missing");
    let theirs: HashSet<String> = listed
        .iter()
        .filter_map(|s| s.invoice_hash.as_ref().map(|h| h.to_string()))
        .collect();
    let ours: HashSet<String> = package
        .invoices()
        .iter()
        .map(|p| p.hash.to_string())
        .collect();
    assert_eq!(ours.len(), N);
    assert_eq!(ours, theirs);
    let sessions: Vec<_> = auth
        .session_list(ListSessionsQuery::new(SessionType::Batch))
        .try_collect()
        .await
        .unwrap();
    for s in &sessions {
        if s.reference_number != *outcome.session.reference_number() {
            assert_eq!(
                s.total_invoice_count, 0,
                "another batch session holds invoices"
            );
        }
    }

    // Every kind of fault happened, and every route had faults on both sides of handling.
    let faulted = |rule: &serde_json::Value, kind: &str| rule[kind].as_u64().unwrap_or(0);
    let routes = ["open", "close", "upload", "status+list"];
    for (rule, route) in rules.iter().zip(routes) {
        eprintln!("{route}: {rule}");
    }
    for (rule, route) in rules.iter().zip(routes) {
        let before = faulted(rule, "statusBefore") + faulted(rule, "droppedBefore");
        let after = faulted(rule, "statusAfter") + faulted(rule, "droppedAfter");
        assert!(before > 0, "{route}: no fault before handling: {rule}");
        assert!(after > 0, "{route}: no fault after handling: {rule}");
    }
    assert!(
        counters.status_before > 0 && counters.status_after > 0,
        "{counters:?}"
    );
    assert!(
        counters.dropped_before > 0 && counters.dropped_after > 0,
        "{counters:?}"
    );
    assert!(counters.rate_limited > 0, "{counters:?}");
    eprintln!("done after {:.1?}", started.elapsed());
    sim.shutdown().await;
}
