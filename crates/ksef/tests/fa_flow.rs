//! Typed FA(3) invoices over HTTP against the in-process simulator (the `send_fa` example's
//! flow): KSeF numbers and UPO entries tied back to the invoice number (`P_2`), online and in a
//! batch.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

#[path = "../examples/send_fa.rs"]
#[allow(dead_code)]
mod example;

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use ksef::KsefClient;
use ksef::model::Nip;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_invoices_tie_back_to_their_numbers() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start_checked()
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

/// `send_fa` validates first: an invoice whose total disagrees with its lines is refused with
/// the ksef-fa errors and nothing reaches KSeF; `send_fa_unchecked` sends it anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_fa_refuses_an_invalid_invoice_before_sending() {
    use futures_util::TryStreamExt;

    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    let nip: Nip = "5265877635".parse().unwrap();
    let auth = client
        .auth()
        .test_certificate(
            &ksef::TestIdentity::Seal {
                name: "ksef-rs validation".into(),
                nip: nip.to_string(),
            },
            ksef::model::ContextIdentifier::Nip(nip.clone()),
        )
        .await
        .unwrap();
    let mut invoice = example::build_invoice(&nip, "FV/7/2026").unwrap();
    invoice.fa.p_15 = "1.00".parse().unwrap();
    let session = auth.sessions().open_online().await.unwrap();

    let err = session.send_fa(&invoice).await.unwrap_err();
    let ksef::Error::FaInvalid {
        invoice_number,
        errors,
    } = &err
    else {
        panic!("not FaInvalid: {err:?}");
    };
    assert_eq!(invoice_number, "FV/7/2026");
    let paths: Vec<String> = errors
        .iter()
        .map(|e| e.path().unwrap().to_string())
        .collect();
    assert_eq!(paths, ["Fa/P_15"], "{errors:?}");
    let shown = err.to_string();
    assert!(
        shown.contains("FV/7/2026")
            && shown.contains("Fa/P_15: is 1.00")
            && shown.contains("send_fa_unchecked"),
        "{shown}"
    );
    let same = session
        .send_fa_with(&invoice, &ksef::SendOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(same, ksef::Error::FaInvalid { .. }), "{same:?}");
    let listed: Vec<_> = session.invoices().try_collect().await.unwrap();
    assert!(listed.is_empty(), "nothing may have been sent: {listed:?}");

    // the caller's opt-out: KSeF receives it
    let sent = session
        .send_fa_unchecked(&invoice, &ksef::SendOptions::default())
        .await
        .unwrap();
    assert_eq!(sent.invoice_number(), Some("FV/7/2026"));
    let listed: Vec<_> = session.invoices().try_collect().await.unwrap();
    assert_eq!(listed.len(), 1, "{listed:?}");
    sim.shutdown().await;
}
