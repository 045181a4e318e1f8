//! Scenarios of scenarios.md not covered by an area's own test file, through the SDK against the
//! in-process simulator over HTTP (see docs/scenarios-coverage.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use futures_util::TryStreamExt;
use ksef::model::{ContextIdentifier, Nip};
use ksef::{Error, KsefClient, TestIdentity};

const NIP: &str = "5265877635";

fn attachment_invoice(number: &str) -> Vec<u8> {
    include_str!("../../../fixtures/invoices/invoice-template-fa-3-with-attachment.xml")
        .replace("#nip#", NIP)
        .replace("#invoice_number#", number)
        .into_bytes()
}

/// §6.34 (C `SendInvoiceWithAttachment`, `…WithoutGrantedPermission_ShouldRejectAllInvoices`)
/// and the attachment case of §2.17: an invoice with an attachment (`Zalacznik`) is rejected
/// with 415 while the seller has no attachment consent, and accepted once test data enables it;
/// the permission status shows the consent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attachment_invoices_need_the_attachment_consent() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .poll_options(ksef::PollOptions {
            initial_delay: std::time::Duration::from_millis(10),
            ..Default::default()
        })
        .build()
        .unwrap();
    let nip: Nip = NIP.parse().unwrap();
    let auth = client
        .auth()
        .test_certificate(
            &TestIdentity::Seal {
                name: "Firma Testowa".into(),
                nip: NIP.into(),
            },
            ContextIdentifier::Nip(nip.clone()),
        )
        .await
        .unwrap();

    // No consent: rejected with 415, the session ends with it in the failed list.
    let status = auth.permissions().attachment_status().await.unwrap();
    assert_eq!(status.is_attachment_allowed, Some(false));
    let session = auth.sessions().open_online().await.unwrap();
    let sent = session
        .send_invoice(attachment_invoice("ZAL/1"))
        .await
        .unwrap();
    let err = sent.wait().await.unwrap_err();
    assert!(matches!(err, Error::InvoiceRejected { .. }), "{err}");
    assert_eq!(err.status_code(), Some(415), "{err}");
    let failed: Vec<_> = session.failed_invoices().try_collect().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status.code, 415);
    let closed = session.close().await;
    // Nothing was accepted: KSeF ends the session with 445.
    let err = closed.unwrap_err();
    assert_eq!(err.status_code(), Some(445), "{err}");

    // With the consent the same kind of invoice is accepted.
    let td = client.testdata().unwrap();
    td.enable_attachments(&nip).await.unwrap();
    let status = auth.permissions().attachment_status().await.unwrap();
    assert_eq!(status.is_attachment_allowed, Some(true));
    let session = auth.sessions().open_online().await.unwrap();
    let accepted = session
        .send_invoice(attachment_invoice("ZAL/2"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(accepted.status.status.code, 200);
    let closed = session.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);
    assert_eq!(closed.failed_invoice_count(), 0);

    // Revoked again: refused again.
    td.revoke_attachments(&nip, None).await.unwrap();
    let session = auth.sessions().open_online().await.unwrap();
    let err = session
        .send_invoice(attachment_invoice("ZAL/3"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(415), "{err}");
    drop(session);
    sim.shutdown().await;
}
