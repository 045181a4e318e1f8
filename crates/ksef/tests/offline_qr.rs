//! The `offline_qr` example end to end against the in-process simulator: an Offline KSeF
//! certificate, KOD I and KOD II for an invoice issued offline, the offline send, and the images.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

#[path = "../examples/offline_qr.rs"]
#[allow(dead_code)]
mod example;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_invoice_with_both_codes_then_sent_offline() {
    let sim = ksef_sim::Simulator::builder()
        .seed(5)
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap();
    let client = ksef::KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    let nip: ksef::model::Nip = "5265877635".parse().unwrap();
    let out = tempfile::tempdir().unwrap();
    let run = example::offline_flow(&client, &nip, out.path())
        .await
        .unwrap();

    assert!(
        run.kod1_url.contains("/invoice/5265877635/"),
        "{}",
        run.kod1_url
    );
    assert!(
        run.kod2_url
            .contains("/certificate/Nip/5265877635/5265877635/"),
        "{}",
        run.kod2_url
    );
    assert_eq!(run.ksef_number.seller_nip(), nip);
    assert_eq!(
        run.invoicing_mode,
        Some(ksef::model::api::InvoicingMode::Offline),
        "sent with offlineMode, KSeF records the invoice as offline"
    );
    let offline = std::fs::read_to_string(out.path().join("kod1-offline.svg")).unwrap();
    assert!(offline.contains(">OFFLINE</text>"));
    let kod2 = std::fs::read_to_string(out.path().join("kod2.svg")).unwrap();
    assert!(kod2.contains(">CERTYFIKAT</text>"));
    let labelled = std::fs::read_to_string(out.path().join("kod1.svg")).unwrap();
    assert!(labelled.contains(&format!(">{}</text>", run.ksef_number.as_str())));
    sim.shutdown().await;
}
