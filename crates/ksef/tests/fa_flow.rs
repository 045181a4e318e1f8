//! Typed FA(3) invoices over HTTP against the in-process simulator (the `send_fa` example's
//! flow): KSeF numbers and UPO entries tied back to the invoice number (`P_2`), online and in a
//! batch.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

#[path = "../examples/send_fa.rs"]
#[allow(dead_code)]
mod example;

use ksef::KsefClient;
use ksef::model::Nip;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_invoices_tie_back_to_their_numbers() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    let nip: Nip = "5265877635".parse().unwrap();
    let out = example::typed_flow(&client, &nip, "FV/1/2026", &["FV/2/2026", "FV 3"])
        .await
        .unwrap();
    let online = &out.online["FV/1/2026"];
    assert_eq!(online.seller_nip(), nip);
    assert_eq!(out.online_upo_invoice_number.as_deref(), Some("FV/1/2026"));
    assert_eq!(out.batch.len(), 2, "{:?}", out.batch);
    for (p2, r) in &out.batch {
        assert_eq!(r.as_ref().unwrap().seller_nip(), nip, "{p2}");
    }
    sim.shutdown().await;
}
