//! Scenario §4.25 (J/C `invoiceTechnicalCorrection`,
//! `shouldSuccessfullyProcessTechnicalCorrectionInDifferentSession`) through the SDK against the
//! in-process simulator over HTTP: an offline invoice rejected semantically (450, an issue date in
//! the future) is re-sent as a technical correction — in the same session, in another session,
//! and for an original rejected in a batch — gets a KSeF number and is linked to the original's
//! hash in its metadata; 21166 and 21167 come back as typed errors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

mod common;

use common::{owner, sim};
use futures_util::TryStreamExt;
use ksef::batch::{BatchBuilder, BatchInvoice};
use ksef::crypto::encryption::SessionKey;
use ksef::model::api::{InvoiceMetadata, InvoiceQueryFilters};
use ksef::model::ids::{KsefNumber, Sha256Base64};
use ksef::{
    AuthenticatedClient, BatchSendOptions, CorrectionRefusal, Error, ExceptionCode, SendOptions,
};

const NIP: &str = "5265877635";

/// The FA(3) template for `NIP`, numbered `number`, issued on `date`.
fn invoice(number: &str, date: time::Date) -> Vec<u8> {
    include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml")
        .replace("#nip#", NIP)
        .replace("#invoice_number#", number)
        .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{date}</P_1>"))
        .into_bytes()
}

fn today() -> time::Date {
    ksef::fa::date_in_poland(time::OffsetDateTime::now_utc())
}

/// Two days after today in Poland: later than any acceptance date of this test run (the
/// official tests use the same fault).
fn future() -> time::Date {
    today() + time::Duration::days(2)
}

fn sha256(xml: &[u8]) -> Sha256Base64 {
    ksef::crypto::hash::sha256_id(xml)
}

fn offline() -> SendOptions {
    SendOptions {
        offline_mode: true,
        ..SendOptions::default()
    }
}

/// The seller's metadata row of `ksef` (retried until it is stored permanently).
async fn metadata(auth: &AuthenticatedClient, ksef: &KsefNumber) -> InvoiceMetadata {
    let from = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let filters: InvoiceQueryFilters = serde_json::from_value(serde_json::json!({
        "subjectType": "Subject1",
        "ksefNumber": ksef.to_string(),
        "dateRange": {"dateType": "Invoicing", "from": from},
    }))
    .unwrap();
    for _ in 0..100 {
        let rows: Vec<InvoiceMetadata> = auth
            .invoices()
            .query(filters.clone())
            .try_collect()
            .await
            .unwrap();
        if let Some(row) = rows.into_iter().next() {
            return row;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("{ksef} never appeared in the metadata query");
}

/// The refusal of a technical correction, checked to be typed all the way.
fn refusal(err: &Error) -> CorrectionRefusal {
    let Error::TechnicalCorrectionRefused {
        reason,
        original_hash,
        ..
    } = err
    else {
        panic!("not TechnicalCorrectionRefused: {err:?}");
    };
    assert_eq!(err.ksef_code(), Some(reason.code()), "{err}");
    assert_eq!(err.http_status(), Some(400), "{err}");
    assert!(!err.is_retryable(), "{err}");
    assert!(err.to_string().contains(original_hash.as_str()), "{err}");
    *reason
}

/// §4.25 in one session, then the refusals: a second correction of the same original (21166),
/// a correction of an accepted invoice (21167), and a "correction" identical to the original
/// (refused before sending).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_offline_invoice_is_corrected_in_the_same_session() {
    let (sim, client) = sim().await;
    let auth = owner(&client, NIP).await;
    let session = auth.sessions().open_online().await.unwrap();

    let original = invoice("KT/1", future());
    let sent = session
        .send_invoice_with(&original, &offline())
        .await
        .unwrap();
    let err = sent.wait().await.unwrap_err();
    assert_eq!(err.status_code(), Some(450), "{err}");
    let Error::InvoiceRejected { status, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        status.description,
        "Błąd weryfikacji semantyki dokumentu faktury"
    );
    assert!(status.details.iter().any(|d| d.contains("P_1")), "{status}");
    let rejected = session
        .invoice_status(sent.reference_number())
        .await
        .unwrap();
    assert_eq!(rejected.invoice_hash.as_ref(), Some(&sha256(&original)));

    // The same invoice with the fault fixed (issued today), as a technical correction.
    let fixed = invoice("KT/1", today());
    let accepted = session
        .send_technical_correction(&original, &fixed)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(accepted.status.status.code, 200);
    let row = metadata(&auth, &accepted.ksef_number).await;
    assert_eq!(row.hash_of_corrected_invoice, Some(sha256(&original)));
    assert_eq!(row.invoice_hash, sha256(&fixed));
    assert_eq!(row.invoicing_mode.as_str(), "Offline");

    // One successful correction per original: 21166, typed.
    let err = session
        .send_technical_correction(&original, invoice("KT/1b", today()))
        .await
        .unwrap_err();
    assert_eq!(refusal(&err), CorrectionRefusal::AlreadyCorrected);
    assert_eq!(
        err.ksef_code(),
        Some(ExceptionCode::TechnicalCorrectionUnavailable)
    );

    // An accepted invoice cannot be corrected technically: 21167, typed.
    let err = session
        .send_technical_correction(&fixed, invoice("KT/1c", today()))
        .await
        .unwrap_err();
    assert_eq!(refusal(&err), CorrectionRefusal::NotCorrectable);
    assert_eq!(
        err.ksef_code(),
        Some(ExceptionCode::TechnicalCorrectionNotAllowed)
    );

    // Re-sending the original unchanged is not a correction: refused locally.
    let err = session
        .send_technical_correction(&original, &original)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err:?}");

    // Two rejected, one accepted, nothing else reached KSeF.
    let listed: Vec<_> = session.invoices().try_collect().await.unwrap();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let closed = session.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);
    assert_eq!(closed.failed_invoice_count(), 1);
    sim.shutdown().await;
}

/// §4.25 across sessions: the original rejected in a closed online session, and one rejected in
/// a batch session declared offline, are each corrected in a new online session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_offline_invoices_are_corrected_in_another_session() {
    let (sim, client) = sim().await;
    let auth = owner(&client, NIP).await;

    let original = invoice("KT/2", future());
    let first = auth.sessions().open_online().await.unwrap();
    let err = first
        .send_invoice_with(&original, &offline())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(450), "{err}");
    // Nothing was accepted there: KSeF ends the session with 445.
    assert_eq!(first.close().await.unwrap_err().status_code(), Some(445));

    // A batch session declared offline: one invoice accepted, one dated in the future (450).
    let in_batch = invoice("KT/3", future());
    let key = SessionKey::generate().unwrap();
    let package = BatchBuilder::new(key.clone())
        .build(vec![
            BatchInvoice::bytes("ok.xml", invoice("KT/4", today())),
            BatchInvoice::bytes("future.xml", in_batch.clone()),
        ])
        .unwrap();
    let outcome = auth
        .sessions()
        .send_batch(
            &package,
            &key,
            &BatchSendOptions {
                offline_mode: true,
                ..BatchSendOptions::default()
            },
        )
        .await
        .unwrap();
    let future_result = outcome
        .invoices
        .iter()
        .find(|i| i.name == "future.xml")
        .unwrap();
    match &future_result.outcome {
        Some(Err(f)) => assert_eq!(f.code, 450, "{f}"),
        other => panic!("{other:?}"),
    }

    let second = auth.sessions().open_online().await.unwrap();
    for (original, fixed) in [
        (&original, invoice("KT/2", today())),
        (&in_batch, invoice("KT/3", today())),
    ] {
        // Only the hash is at hand this time (e.g. from the rejected status).
        let accepted = second
            .send_technical_correction_of(&sha256(original), &fixed)
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        let row = metadata(&auth, &accepted.ksef_number).await;
        assert_eq!(row.hash_of_corrected_invoice, Some(sha256(original)));
    }
    let closed = second.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 2);
    // A plain send carries no link.
    let plain = auth.sessions().open_online().await.unwrap();
    let accepted = plain
        .send_invoice(invoice("KT/5", today()))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let row = metadata(&auth, &accepted.ksef_number).await;
    assert_eq!(row.hash_of_corrected_invoice, None);
    plain.close().await.unwrap();
    sim.shutdown().await;
}
