//! The SDK against a simulator that injects faults: 5xx and dropped connections both before
//! and after the simulator handled a request, and 429s with `Retry-After`. An online run of
//! 1 000 invoices must end with every invoice accounted for exactly once — accepted with a KSeF
//! number or rejected with its reason — none sent twice (a second copy would be a 440
//! duplicate and a second entry in the session) and none lost.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt, stream};
use ksef::model::operations::OperationId;
use ksef::model::{ContextIdentifier, InvoiceTemplate, Nip};
use ksef::transport::RetryPolicy;
use ksef::{Error, KsefClient, PollOptions, TestIdentity};
use ksef_sim::faults::{FaultPlan, FaultRule, Phase};

const NIP: &str = "5265877635";
const OTHER_NIP: &str = "7010002139";
const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

fn invoice(nip: &str, number: &str) -> Vec<u8> {
    let today = time::OffsetDateTime::now_utc().date();
    InvoiceTemplate::new(TEMPLATE)
        .fill([("nip", nip), ("invoice_number", number)])
        .unwrap()
        .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"))
        .into_bytes()
}

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
        // Polling less often leaves the simulator's CPU to the sends.
        .poll_options(PollOptions {
            initial_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(100),
            timeout: Duration::from_secs(60),
        })
        .build()
        .unwrap()
}

fn fault_plan() -> FaultPlan {
    FaultPlan::new(2026)
        .rule(
            FaultRule::operation(OperationId::SendInvoice)
                .status(503, 0.02, Phase::Before)
                .status(500, 0.02, Phase::After)
                .drop_connection(0.015, Phase::Before)
                .drop_connection(0.02, Phase::After)
                .rate_limit(0.015, 1),
        )
        .rule(
            FaultRule::operation(OperationId::SessionInvoiceStatus)
                .and_operation(OperationId::ListSessionInvoices)
                .and_operation(OperationId::SessionStatus)
                .status(502, 0.02, Phase::Before)
                .status(503, 0.01, Phase::After)
                .drop_connection(0.01, Phase::After)
                .rate_limit(0.005, 1),
        )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_run_of_1000_invoices_with_faults_accounts_for_each_exactly_once() {
    const N: usize = 1000;
    let sim = ksef_sim::Simulator::builder()
        .seed(11)
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap();
    let client = client(&sim.base_url());
    let nip: Nip = NIP.parse().unwrap();
    let auth = client
        .auth()
        .test_certificate(
            &TestIdentity::Seal {
                name: "ksef-rs resilience".into(),
                nip: NIP.into(),
            },
            ContextIdentifier::Nip(nip),
        )
        .await
        .unwrap();
    let session = auth.sessions().open_online().await.unwrap();
    sim.set_faults(fault_plan());

    // Every 100th invoice names another seller: KSeF rejects it (410), and that must be
    // reported as its outcome, once.
    let expect_rejected = |i: usize| i % 100 == 99;
    let session_ref = &session;
    let outcomes: Vec<_> = stream::iter(0..N)
        .map(|i| async move {
            let seller = if expect_rejected(i) { OTHER_NIP } else { NIP };
            let xml = invoice(seller, &format!("RES/{i}"));
            let hash = ksef::crypto::hash::sha256_base64(&xml);
            let result = match session_ref.send_invoice(&xml).await {
                Ok(sent) => sent.wait().await,
                Err(e) => Err(e),
            };
            (i, hash, result)
        })
        .buffer_unordered(24)
        .collect()
        .await;

    let mut accepted = HashMap::new();
    let mut rejected = HashMap::new();
    let mut errors = Vec::new();
    for (i, hash, result) in outcomes {
        match result {
            Ok(a) => {
                assert!(
                    accepted
                        .insert(i, (hash, a.ksef_number.to_string()))
                        .is_none(),
                    "invoice {i} accepted twice"
                );
            }
            Err(Error::InvoiceRejected { status, .. }) => {
                rejected.insert(i, (hash, status.code, status.details.join("; ")));
            }
            Err(e) => errors.push(format!("invoice {i}: {e}")),
        }
    }
    let counters = sim.fault_counters();
    eprintln!("faults injected: {counters:?}");
    assert!(errors.is_empty(), "the SDK gave up on: {errors:#?}");
    let duplicates: Vec<_> = rejected.iter().filter(|(_, r)| r.1 == 440).collect();
    assert!(duplicates.is_empty(), "sent twice: {duplicates:#?}");
    for (i, (_, code, details)) in &rejected {
        assert!(
            expect_rejected(*i),
            "invoice {i} rejected: {code} {details}"
        );
        assert_eq!(*code, 410, "invoice {i}: {details}");
        assert!(!details.is_empty(), "a rejection carries its reason");
    }
    assert_eq!(
        accepted.len() + rejected.len(),
        N,
        "every invoice has an outcome"
    );
    assert_eq!(rejected.len(), N / 100);
    let numbers: HashSet<_> = accepted.values().map(|(_, k)| k.clone()).collect();
    assert_eq!(numbers.len(), accepted.len(), "KSeF numbers are unique");
    // Every kind of fault happened, on both sides of handling.
    assert!(
        counters.status_before > 0 && counters.status_after > 0,
        "{counters:?}"
    );
    assert!(
        counters.dropped_before > 0 && counters.dropped_after > 0,
        "{counters:?}"
    );
    assert!(counters.rate_limited > 0, "{counters:?}");

    // Closing while the answer to the close gets lost: the SDK finds the session closed.
    sim.set_faults(FaultPlan::new(5).rule(
        FaultRule::operation(OperationId::CloseOnlineSession).status(503, 1.0, Phase::After),
    ));
    let closed = session.close().await.unwrap();
    assert_eq!(sim.fault_counters().status_after, 1);
    sim.clear_faults();
    // KSeF's side of the books: the session holds exactly one entry per invoice.
    assert_eq!(closed.successful_invoice_count() as usize, accepted.len());
    assert_eq!(closed.failed_invoice_count() as usize, rejected.len());
    let listed: Vec<_> = closed.invoices().try_collect().await.unwrap();
    assert_eq!(listed.len(), N, "no invoice stored twice, none missing");
    let ours: HashSet<_> = accepted
        .values()
        .map(|(h, _)| h.clone())
        .chain(rejected.values().map(|(h, _, _)| h.clone()))
        .collect();
    let theirs: HashSet<_> = listed
        .iter()
        .filter_map(|inv| inv.invoice_hash.as_ref().map(|h| h.to_string()))
        .collect();
    assert_eq!(ours.len(), N);
    assert_eq!(ours, theirs);
    sim.shutdown().await;
}

/// KSeF rotates its `SymmetricKeyEncryption` key (the emergency kind: the old one is withdrawn
/// at once). A client that cached the old key gets 21470 when it opens a session, refetches the
/// keys and retries once — the session opens and works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_refetches_keys_after_a_rotation_and_retries_once() {
    use ksef::crypto::public_key::KeyUsage;
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap();
    let client = client(&sim.base_url());
    let nip: Nip = NIP.parse().unwrap();
    let auth = client
        .auth()
        .test_certificate(
            &TestIdentity::Seal {
                name: "ksef-rs rotation".into(),
                nip: NIP.into(),
            },
            ContextIdentifier::Nip(nip),
        )
        .await
        .unwrap();
    // The first session caches the MF keys.
    let first = auth.sessions().open_online().await.unwrap();
    let old = client
        .public_key(&KeyUsage::SymmetricKeyEncryption)
        .await
        .unwrap();

    let new_id = sim
        .rotate_key(ksef_sim::KeyUsage::SymmetricKeyEncryption)
        .await
        .unwrap();
    assert_ne!(new_id, old.public_key_id());
    // The cache still holds the old key: the open is refused with 21470 once, then retried.
    assert_eq!(
        client
            .public_key(&KeyUsage::SymmetricKeyEncryption)
            .await
            .unwrap()
            .public_key_id(),
        old.public_key_id()
    );
    let second = auth.sessions().open_online().await.unwrap();
    assert_eq!(
        client
            .public_key(&KeyUsage::SymmetricKeyEncryption)
            .await
            .unwrap()
            .public_key_id(),
        new_id,
        "the keys were refetched"
    );
    let sent = second.send_invoice(invoice(NIP, "ROT/1")).await.unwrap();
    sent.wait().await.unwrap();
    // A close refused before handling (503, once): the session is still open, closed again.
    sim.set_faults(
        FaultPlan::new(3).rule(
            FaultRule::operation(OperationId::CloseOnlineSession)
                .status(503, 1.0, Phase::Before)
                .limit(1),
        ),
    );
    second.close().await.unwrap();
    assert_eq!(sim.fault_counters().status_before, 1);
    sim.clear_faults();

    // A session opened before the rotation keeps its AES key and still works.
    let sent = first.send_invoice(invoice(NIP, "ROT/2")).await.unwrap();
    sent.wait().await.unwrap();
    first.close().await.unwrap();

    // Over the admin endpoint too: the token key rotates, the symmetric one stays.
    let http = reqwest::Client::new();
    let r = http
        .post(format!("http://{}/__sim/keys/rotate", sim.local_addr()))
        .body(r#"{"usage": "KsefTokenEncryption"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["usage"], "KsefTokenEncryption");
    let listed: serde_json::Value = http
        .get(format!(
            "{}/security/public-key-certificates",
            sim.base_url()
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<_> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["publicKeyId"].as_str().unwrap().to_owned())
        .collect();
    assert!(ids.contains(&new_id) && ids.contains(&v["publicKeyId"].as_str().unwrap().to_owned()));
    assert_eq!(ids.len(), 2);
    sim.shutdown().await;
}
