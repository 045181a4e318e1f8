//! The seed flow through `ksef::blocking` from a plain `#[test]`: the test thread has no async
//! runtime of its own (the simulator runs on another thread with its own). Run with
//! `cargo test -p ksef --features blocking --test blocking`.
#![cfg(feature = "blocking")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use std::sync::mpsc;

use futures_util::TryStreamExt;
use ksef::blocking::Runtime;
use ksef::model::api::TestDataPermissionType;
use ksef::model::{ContextIdentifier, InvoiceTemplate, Nip, Pesel, Upo};
use ksef::{KsefClient, TestIdentity, TestSubject};

const NIP: &str = "5265877635";
const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

/// Starts the simulator on its own thread and runtime; returns its base URL and a sender that
/// stops it.
fn simulator() -> (String, mpsc::Sender<()>, std::thread::JoinHandle<()>) {
    let (url_tx, url_rx) = mpsc::channel();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        rt.block_on(async {
            let sim = ksef_sim::Simulator::builder()
                .start_checked()
                .await
                .unwrap();
            url_tx.send(sim.base_url()).unwrap();
            tokio::task::spawn_blocking(move || stop_rx.recv())
                .await
                .unwrap()
                .ok();
            sim.shutdown().await;
        });
    });
    (url_rx.recv().unwrap(), stop_tx, thread)
}

#[test]
fn seed_flow_without_a_runtime_in_the_test() {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "the test thread has no runtime"
    );
    let (url, stop, sim_thread) = simulator();
    let rt = Runtime::new().unwrap();
    let client = KsefClient::builder_for_url(&url).build().unwrap();
    let nip: Nip = NIP.parse().unwrap();

    // Test data: a person for the NIP and explicit permissions.
    let testdata = client.testdata().unwrap();
    let pesel: Pesel = "90010112349".parse().unwrap();
    rt.block_on(testdata.create_person(&nip, &pesel, "ksef-rs blocking"))
        .unwrap();
    rt.block_on(testdata.grant_permissions(
        &nip,
        &TestSubject::Nip(nip.clone()),
        &[
            TestDataPermissionType::InvoiceWrite,
            TestDataPermissionType::InvoiceRead,
        ],
    ))
    .unwrap();

    // Test certificate → XAdES authentication → online session → send → KSeF number → UPO →
    // close.
    let identity = TestIdentity::Seal {
        name: "ksef-rs blocking".into(),
        nip: NIP.into(),
    };
    let auth = rt
        .block_on(
            client
                .auth()
                .test_certificate(&identity, ContextIdentifier::Nip(nip.clone())),
        )
        .unwrap();
    let session = rt.block_on(auth.sessions().open_online()).unwrap();
    let today = time::OffsetDateTime::now_utc().date();
    let xml = InvoiceTemplate::new(TEMPLATE)
        .fill([("nip", NIP), ("invoice_number", "BLOCK/1")])
        .unwrap()
        .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"));
    let sent = rt.block_on(session.send_invoice(xml)).unwrap();
    let accepted = rt.block_on(sent.wait()).unwrap();
    assert_eq!(accepted.ksef_number.seller_nip(), nip);
    let upo = rt
        .block_on(session.upo_by_ksef_number(&accepted.ksef_number))
        .unwrap();
    let parsed = Upo::parse(&upo.bytes).unwrap();
    assert_eq!(parsed.documents[0].ksef_number, accepted.ksef_number);
    let closed = rt.block_on(session.close()).unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);
    let pages = rt.block_on(closed.fetch_upo()).unwrap();
    assert!(!pages.is_empty());

    // Auto-paging streams as iterators.
    let listed: Vec<_> = rt
        .iter(closed.invoices())
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].ksef_number.as_ref(), Some(&accepted.ksef_number));
    let again: Vec<_> = rt.block_on(closed.invoices().try_collect()).unwrap();
    assert_eq!(again.len(), 1);

    // Inside an async runtime the blocking facade refuses to start.
    let inner = tokio::runtime::Runtime::new().unwrap();
    let refused = inner.block_on(async { Runtime::new().err() });
    assert!(matches!(refused, Some(ksef::Error::InvalidInput(_))));

    stop.send(()).unwrap();
    sim_thread.join().unwrap();
}
