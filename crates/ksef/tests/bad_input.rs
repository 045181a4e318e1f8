//! Issue #6 "Bad input": invalid inputs — a bad NIP, XML that is not UTF-8, an oversized
//! invoice, test data or a test certificate against DEMO/PRODUCTION — are refused with typed
//! errors **before any network call**. Each check proves that no request was made: against the
//! in-process simulator, a fault rule with no faults counts every request it sees; against the
//! real environments' URLs, a proxy listener counts every connection the client opens.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ksef::crypto::cert::PersonId;
use ksef::crypto::encryption::SessionKey;
use ksef::model::api;
use ksef::model::environment::Environment;
use ksef::model::{ContextIdentifier, Nip};
use ksef::permissions::person_by_identifier;
use ksef::{
    AuthenticatedClient, Error, KsefClient, MAX_INVOICE_SIZE, PreparedInvoice, SendOptions,
    TestIdentity,
};
use ksef_sim::faults::{FaultPlan, FaultRule};

const NIP: &str = "5265877635";
/// Ten digits whose checksum is wrong (the last digit should be 5).
const BAD_NIP: &str = "5265877636";

fn invoice(number: &str) -> Vec<u8> {
    include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml")
        .replace("#nip#", NIP)
        .replace("#invoice_number#", number)
        .into_bytes()
}

async fn sim_and_login() -> (checked::CheckedSim, KsefClient, AuthenticatedClient) {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .poll_options(ksef::PollOptions {
            initial_delay: std::time::Duration::from_millis(10),
            ..Default::default()
        })
        .build()
        .unwrap();
    let auth = client
        .auth()
        .test_certificate(
            &TestIdentity::Seal {
                name: "Firma Testowa".into(),
                nip: NIP.into(),
            },
            ContextIdentifier::Nip(NIP.parse().unwrap()),
        )
        .await
        .unwrap();
    (sim, client, auth)
}

/// From now on every request the simulator receives is counted (a rule with no faults).
fn count_requests(sim: &ksef_sim::SimulatorHandle) {
    sim.set_faults(FaultPlan::new(0).rule(FaultRule::any()));
}

fn requests(sim: &ksef_sim::SimulatorHandle) -> u64 {
    sim.fault_counters().matched
}

fn invalid_input(r: Result<impl std::fmt::Debug, Error>, mentions: &str) {
    match r {
        Err(Error::InvalidInput(m)) => assert!(m.contains(mentions), "{m:?} lacks {mentions:?}"),
        other => panic!("expected InvalidInput mentioning {mentions:?}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_invoice_bytes_never_reach_the_network() {
    let (sim, _client, auth) = sim_and_login().await;
    let session = auth.sessions().open_online().await.unwrap();
    count_requests(&sim);

    // Not UTF-8 (an ISO-8859-2 "ł" in an otherwise good invoice).
    let mut latin2 = invoice("BAD/1");
    let at = latin2.windows(5).position(|w| w == b"<P_2>").unwrap() + 5;
    latin2.insert(at, 0xB3);
    invalid_input(session.send_invoice(&latin2).await, "not UTF-8");
    // A UTF-8 BOM, an empty file.
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend(invoice("BAD/2"));
    invalid_input(session.send_invoice(&bom).await, "BOM");
    invalid_input(session.send_invoice(b"").await, "empty");
    // Over KSeF's size limit, also as an offline send and a technical correction.
    // (Trailing whitespace after the root element is well-formed XML.)
    let mut big = invoice("BAD/3");
    big.resize(MAX_INVOICE_SIZE + 1, b' ');
    invalid_input(session.send_invoice(&big).await, "at most 1 MB");
    let correction = SendOptions {
        offline_mode: true,
        hash_of_corrected_invoice: Some(ksef::model::ids::Sha256Base64::from_digest([1; 32])),
    };
    invalid_input(session.send_invoice_with(&big, &correction).await, "bytes");
    // The sans-IO helper refuses the same inputs.
    let key = SessionKey::generate().unwrap();
    invalid_input(
        PreparedInvoice::new(&key, &latin2, &SendOptions::default()),
        "offset",
    );
    assert_eq!(
        requests(&sim),
        0,
        "a refused invoice must not cause a request"
    );

    // The counter does count: a good invoice is one request (the send).
    let sent = session.send_invoice(invoice("GOOD/1")).await.unwrap();
    assert_eq!(requests(&sim), 1);
    sent.wait().await.unwrap();
    session.close().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_nips_never_reach_the_network() {
    let (sim, client, auth) = sim_and_login().await;
    count_requests(&sim);

    // The typed identifier refuses a bad checksum: no client call can even be written with it.
    let e = BAD_NIP.parse::<Nip>().unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");

    // A test certificate for a malformed NIP.
    for bad in ["123", "52658776350", "52658A7635"] {
        let r = client
            .auth()
            .test_certificate(
                &TestIdentity::Seal {
                    name: "Firma Testowa".into(),
                    nip: bad.into(),
                },
                ContextIdentifier::Nip(NIP.parse().unwrap()),
            )
            .await;
        assert!(r.is_err(), "{bad}");
        let r = client
            .auth()
            .test_certificate(
                &TestIdentity::Person {
                    given_name: "Anna".into(),
                    surname: "Nowak".into(),
                    id: PersonId::Nip(bad.into()),
                },
                ContextIdentifier::Nip(NIP.parse().unwrap()),
            )
            .await;
        assert!(r.is_err(), "{bad}");
    }

    // A permission grant naming a bad NIP, in every grant that takes one.
    let grant = |value: &str| api::PersonPermissionsGrantRequest {
        subject_identifier: api::PersonPermissionsSubjectIdentifier {
            r#type: api::PersonPermissionsSubjectIdentifierType::Nip,
            value: value.into(),
        },
        permissions: vec![api::PersonPermissionType::InvoiceRead],
        description: "Odczyt faktur".into(),
        subject_details: person_by_identifier("Jan", "Kowalski"),
    };
    for bad in [BAD_NIP, "123", ""] {
        invalid_input(auth.permissions().grant_persons(&grant(bad)).await, "NIP");
    }
    assert_eq!(requests(&sim), 0, "a bad NIP must not cause a request");

    // The counter does count: a good grant is one request, then the operation status polls.
    auth.permissions()
        .grant_persons(&grant("7010002139"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(requests(&sim) >= 2);
    sim.shutdown().await;
}

/// A local listener posing as an HTTP proxy: counts the connections the client opens and
/// closes each at once, so any request through it fails fast.
async fn counting_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            drop(socket);
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_data_and_test_certificates_are_refused_outside_test_before_any_connection() {
    let (proxy, connections) = counting_proxy().await;
    for env in [Environment::Demo, Environment::Production] {
        let http = reqwest::Client::builder()
            .proxy(reqwest::Proxy::all(&proxy).unwrap())
            .build()
            .unwrap();
        let client = KsefClient::builder(env.clone())
            .http_client(http)
            .retry_policy(ksef::transport::RetryPolicy::none())
            .build()
            .unwrap();
        assert!(
            matches!(client.testdata(), Err(Error::TestOnly { .. })),
            "{env:?}"
        );
        let e = client
            .auth()
            .test_certificate(
                &TestIdentity::Seal {
                    name: "Firma Testowa".into(),
                    nip: NIP.into(),
                },
                ContextIdentifier::Nip(NIP.parse().unwrap()),
            )
            .await
            .unwrap_err();
        assert!(matches!(e, Error::TestOnly { .. }), "{env:?}: {e}");
        assert_eq!(connections.load(Ordering::SeqCst), 0, "{env:?}");

        // The proxy does see what a real call would do: one connection, then a typed error.
        let before = connections.load(Ordering::SeqCst);
        let e = client.transport().auth_challenge().await.unwrap_err();
        assert!(e.status().is_none(), "{e}");
        assert!(connections.load(Ordering::SeqCst) > before, "{env:?}");
        connections.store(0, Ordering::SeqCst);
    }
}

#[test]
fn a_batch_with_an_invalid_invoice_is_refused_while_packing() {
    use ksef::batch::{BatchBuilder, BatchInvoice};
    let key = SessionKey::generate().unwrap();
    let mut latin2 = invoice("BAD/1");
    latin2.push(0xB3);
    let e = BatchBuilder::new(key)
        .build([
            BatchInvoice::bytes("good.xml", invoice("GOOD/1")),
            BatchInvoice::bytes("latin2.xml", latin2),
        ])
        .unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::InvalidInput(_)), "{e}");
    assert!(
        text.contains("latin2.xml") && text.contains("UTF-8"),
        "{text}"
    );
}
