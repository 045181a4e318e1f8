//! scenarios.md §6 (special invoice types) through the SDK against the in-process simulator over
//! HTTP, step by step as the Ministry's clients test them: FA_RR(1) sent by the purchaser with
//! the supplier's `RRInvoicing` authorisation (J `sendingFaRrInvoiceWithGrantPermission`),
//! self-invoicing by the buyer with the seller's `SelfInvoicing` authorisation (J
//! `selfInvoicingIntegrationTest`), PEF and PEF_KOR sent by a Peppol provider the seller
//! authorised (J `pefInvoiceE2ETest`, `pefAttachmentInvoiceWithCorrectionE2ETest`), and FA(3)
//! with diacritics and emoji (C `Fa3XsdValidationE2ETests`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

mod common;
use std::time::Duration;

use common::{nip, owner, sim};
use futures_util::TryStreamExt;
use ksef::model::api::{self, InvoiceMetadata};
use ksef::model::{ContextIdentifier, FormCode, PeppolId};
use ksef::permissions::authorizations_query;
use ksef::{AuthenticatedClient, Error, TestIdentity};

/// The seller / supplier (Podmiot1), who grants the authorisations.
const SELLER: &str = "5265877635";
/// The buyer / purchaser (Podmiot2), who issues on the seller's behalf once authorised.
const BUYER: &str = "7010002139";
/// A Peppol service provider's identifier and the NIP on its seal.
const PROVIDER: &str = "PPL123456";
const PROVIDER_NIP: &str = "1112223303";

fn fixture(name: &str) -> String {
    std::fs::read_to_string(format!(
        "{}/../../fixtures/invoices/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// The FA_RR(1) template: the supplier (a flat-rate farmer) is `SELLER`, the purchaser who
/// issues the VAT RR invoice is `BUYER`.
fn rr_invoice(number: &str) -> Vec<u8> {
    fixture("invoice-template-fa-rr-1.xml")
        .replace("#nip#", SELLER)
        .replace("#buyer_nip#", BUYER)
        .replace("#invoice_number#", number)
        .into_bytes()
}

/// The FA(3) template with `seller` as Podmiot1 and `BUYER` as Podmiot2; `self_billing` sets
/// the `P_17` annotation (samofakturowanie).
fn fa3_invoice(seller: &str, number: &str, self_billing: bool) -> Vec<u8> {
    let xml = fixture("invoice-template-fa-3.xml")
        .replace("#nip#", seller)
        .replace("#invoice_number#", number)
        .replace("<NIP>1111111111</NIP>", &format!("<NIP>{BUYER}</NIP>"));
    let xml = if self_billing {
        xml.replacen("<P_17>2</P_17>", "<P_17>1</P_17>", 1)
    } else {
        xml
    };
    xml.into_bytes()
}

/// A PEF template filled for `SELLER` as the supplier.
fn pef(name: &str, number: &str, corrected: &str) -> Vec<u8> {
    fixture(name)
        .replace("#supplier_nip#", &format!("PL{SELLER}"))
        .replace("#nip#", SELLER)
        .replace("#buyer_nip#", &format!("PL{BUYER}"))
        .replace("#buyer_reference#", "REF-1")
        .replace("#invoice_number#", number)
        .replace("#issue_date#", "2026-01-15")
        .replace("#due_date#", "2026-02-15")
        .replace("#compliant#", "")
        .replace("#extended#", "")
        .replace("#iban#", "PL61109010140000071219812874")
        .replace("#ksef_number#", corrected)
        .into_bytes()
}

fn authorization(
    subject: api::EntityAuthorizationPermissionsSubjectIdentifierType,
    value: &str,
    permission: api::EntityAuthorizationPermissionType,
) -> api::EntityAuthorizationPermissionsGrantRequest {
    api::EntityAuthorizationPermissionsGrantRequest {
        subject_identifier: api::EntityAuthorizationPermissionsSubjectIdentifier {
            r#type: subject,
            value: value.into(),
        },
        permission,
        description: "Uprawnienie podmiotowe (test)".into(),
        subject_details: api::EntityDetails {
            full_name: "Podmiot Testowy".into(),
        },
    }
}

/// The invoices `auth`'s context sees as `subject` (filters by form when given), polled until
/// `expected` are permanently stored (KSeF stores them shortly after accepting them).
async fn seen_as(
    auth: &AuthenticatedClient,
    subject: &str,
    form: Option<&str>,
    expected: usize,
) -> Vec<InvoiceMetadata> {
    let from = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    let mut filters = serde_json::json!({
        "subjectType": subject,
        "dateRange": {"dateType": "Invoicing", "from": ksef::model::DateTime::new(from).to_string()},
    });
    if let Some(f) = form {
        filters["formType"] = f.into();
    }
    let filters: api::InvoiceQueryFilters = serde_json::from_value(filters).unwrap();
    for _ in 0..100 {
        let rows: Vec<InvoiceMetadata> = auth
            .invoices()
            .query(filters.clone())
            .try_collect()
            .await
            .unwrap();
        if rows.len() >= expected {
            return rows;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{subject} did not see {expected} invoice(s)");
}

/// §6.31: the purchaser issuing a VAT RR invoice for a flat-rate farmer needs the farmer's
/// `RRInvoicing` authorisation. Without it KSeF refuses the invoice (410, the session ends 445);
/// with it the FA_RR(1) invoice gets a KSeF number of the farmer, an invoice UPO and a session
/// UPO, and the purchaser finds it as Subject2 with form FA_RR. Revoked: refused again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fa_rr_is_sent_by_the_purchaser_with_the_rr_invoicing_authorisation() {
    let (sim, client) = sim().await;
    let farmer = owner(&client, SELLER).await;
    let purchaser = owner(&client, BUYER).await;

    // No authorisation: refused like any invoice of another seller.
    let session = purchaser
        .sessions()
        .open_online_with(FormCode::FaRr1)
        .await
        .unwrap();
    let err = session
        .send_invoice(rr_invoice("RR/1"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvoiceRejected { .. }), "{err}");
    assert_eq!(err.status_code(), Some(410), "{err}");
    let err = session.close().await.unwrap_err();
    assert_eq!(err.status_code(), Some(445), "{err}");

    // The farmer authorises the purchaser; the grant is listed both ways.
    farmer
        .permissions()
        .grant_authorization(&authorization(
            api::EntityAuthorizationPermissionsSubjectIdentifierType::Nip,
            BUYER,
            api::EntityAuthorizationPermissionType::RRInvoicing,
        ))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let granted: Vec<api::EntityAuthorizationGrant> = farmer
        .permissions()
        .authorizations(authorizations_query(api::QueryType::Granted))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(granted.len(), 1);
    assert_eq!(
        granted[0].authorization_scope,
        api::InvoicePermissionType::RRInvoicing
    );
    assert_eq!(granted[0].authorized_entity_identifier.value, BUYER);

    // The purchaser logs in again and sends the FA_RR(1) invoice in an FA_RR session.
    let purchaser = owner(&client, BUYER).await;
    let session = purchaser
        .sessions()
        .open_online_with(FormCode::FaRr1)
        .await
        .unwrap();
    assert_eq!(session.form_code(), &FormCode::FaRr1);
    let sent = session.send_invoice(rr_invoice("RR/2")).await.unwrap();
    let accepted = sent.wait().await.unwrap();
    assert_eq!(accepted.status.status.code, 200);
    assert_eq!(accepted.invoice_number.as_deref(), Some("RR/2"));
    // The KSeF number carries the seller's (the farmer's) NIP, not the sender's.
    assert_eq!(accepted.ksef_number.seller_nip(), nip(SELLER));
    let upo = sent.upo().await.unwrap();
    ksef::crypto::xades::verify(&upo.bytes).unwrap();
    assert_eq!(upo.upo.form_system_code, "FA_RR (1)");
    let doc = upo.invoice("RR/2").unwrap();
    assert_eq!(doc.ksef_number, accepted.ksef_number);
    assert_eq!(doc.seller_nip, nip(SELLER));
    assert_eq!(&doc.invoice_hash, sent.invoice_hash());
    let closed = session.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);
    assert_eq!(closed.failed_invoice_count(), 0);
    let pages = closed.fetch_upo().await.unwrap();
    assert_eq!(pages.len(), 1);
    assert_eq!(pages[0].upo.documents.len(), 1);
    assert_eq!(pages[0].upo.documents[0].ksef_number, accepted.ksef_number);

    // The purchaser finds it as the buyer, with the RR form and invoice type; so does the farmer
    // as the seller.
    let rows = seen_as(&purchaser, "Subject2", Some("FA_RR"), 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].ksef_number, accepted.ksef_number);
    assert_eq!(rows[0].invoice_type, api::InvoiceType::VatRr);
    assert_eq!(rows[0].form_code.system_code, "FA_RR (1)");
    assert_eq!(rows[0].seller.nip.as_str(), SELLER);
    let rows = seen_as(&farmer, "Subject1", None, 1).await;
    assert_eq!(rows[0].ksef_number, accepted.ksef_number);

    // An RR authorisation is no self-invoicing one: an FA(3) invoice of the farmer is refused.
    let session = purchaser.sessions().open_online().await.unwrap();
    let err = session
        .send_invoice(fa3_invoice(SELLER, "FA/RR-1", false))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(410), "{err}");
    drop(session);

    // Revoked: refused again.
    farmer
        .permissions()
        .revoke_authorization(granted[0].id.as_str())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let session = purchaser
        .sessions()
        .open_online_with(FormCode::FaRr1)
        .await
        .unwrap();
    let err = session
        .send_invoice(rr_invoice("RR/3"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(410), "{err}");
    drop(session);
    sim.shutdown().await;
}

/// §6.32: the buyer, authorised by the seller (`SelfInvoicing`), issues an invoice in which the
/// seller is Podmiot1: accepted, with a KSeF number of the seller, marked `isSelfInvoicing`, and
/// found by the seller as Subject1. Without the authorisation: 410.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn self_invoicing_by_the_buyer_with_the_sellers_authorisation() {
    let (sim, client) = sim().await;
    let seller = owner(&client, SELLER).await;
    let buyer = owner(&client, BUYER).await;

    let session = buyer.sessions().open_online().await.unwrap();
    let err = session
        .send_invoice(fa3_invoice(SELLER, "SF/1", true))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvoiceRejected { .. }), "{err}");
    assert_eq!(err.status_code(), Some(410), "{err}");
    let failed: Vec<_> = session.failed_invoices().try_collect().await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].status.code, 410);
    drop(session);

    seller
        .permissions()
        .grant_authorization(&authorization(
            api::EntityAuthorizationPermissionsSubjectIdentifierType::Nip,
            BUYER,
            api::EntityAuthorizationPermissionType::SelfInvoicing,
        ))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let received: Vec<api::EntityAuthorizationGrant> = buyer
        .permissions()
        .authorizations(authorizations_query(api::QueryType::Received))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].authorization_scope,
        api::InvoicePermissionType::SelfInvoicing
    );

    let buyer = owner(&client, BUYER).await;
    let session = buyer.sessions().open_online().await.unwrap();
    let sent = session
        .send_invoice(fa3_invoice(SELLER, "SF/2", true))
        .await
        .unwrap();
    let accepted = sent.wait().await.unwrap();
    assert_eq!(accepted.ksef_number.seller_nip(), nip(SELLER));
    // A self-invoicing authorisation covers FA documents only, not VAT RR ones.
    let rr = buyer
        .sessions()
        .open_online_with(FormCode::FaRr1)
        .await
        .unwrap();
    let err = rr
        .send_invoice(rr_invoice("RR/9"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(410), "{err}");
    drop(rr);
    let closed = session.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);

    // The seller finds it as Subject1, marked as self-invoicing; the self-invoicing filter finds
    // it, the opposite filter does not.
    let rows = seen_as(&seller, "Subject1", None, 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].ksef_number, accepted.ksef_number);
    assert!(rows[0].is_self_invoicing);
    assert_eq!(rows[0].seller.nip.as_str(), SELLER);
    let buyer_rows = seen_as(&buyer, "Subject2", None, 1).await;
    assert_eq!(buyer_rows[0].ksef_number, accepted.ksef_number);
    assert!(buyer_rows[0].is_self_invoicing);
    let from =
        ksef::model::DateTime::new(time::OffsetDateTime::now_utc() - time::Duration::hours(1));
    for (flag, expected) in [(true, 1), (false, 0)] {
        let filters: api::InvoiceQueryFilters = serde_json::from_value(serde_json::json!({
            "subjectType": "Subject1",
            "dateRange": {"dateType": "Invoicing", "from": from.to_string()},
            "isSelfInvoicing": flag,
        }))
        .unwrap();
        let rows: Vec<_> = seller
            .invoices()
            .query(filters)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(rows.len(), expected, "isSelfInvoicing={flag}");
    }
    sim.shutdown().await;
}

/// §6.33: a Peppol provider registers by its first login in its `PeppolId` context and is then
/// listed; the seller grants it `PefInvoicing`; the provider sends a PEF invoice and a PEF_KOR
/// correction of it in PEF sessions (KSeF numbers of the seller, UPOs). A PEF invoice with an
/// attachment needs the seller's attachment consent (415 without it). Without the grant the
/// provider's PEF invoice is refused (410).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peppol_provider_registers_is_authorised_and_sends_pef_and_pef_kor() {
    let (sim, client) = sim().await;
    let seller = owner(&client, SELLER).await;
    let providers: Vec<_> = client.peppol_providers().try_collect().await.unwrap();
    assert!(providers.is_empty());

    // Auto-registration: the provider's first login in its PeppolId context.
    let peppol: PeppolId = PROVIDER.parse().unwrap();
    let provider = client
        .auth()
        .test_certificate(
            &TestIdentity::Seal {
                name: "Dostawca Peppol".into(),
                nip: PROVIDER_NIP.into(),
            },
            ContextIdentifier::PeppolId(peppol.clone()),
        )
        .await
        .unwrap();
    let providers: Vec<_> = client.peppol_providers().try_collect().await.unwrap();
    assert_eq!(providers.len(), 1);
    assert_eq!(providers[0].id.as_str(), PROVIDER);
    assert_eq!(providers[0].name, "Dostawca Peppol");

    // Not authorised yet: the seller's PEF invoice is refused.
    let session = provider
        .sessions()
        .open_online_with(FormCode::Pef3)
        .await
        .unwrap();
    let err = session
        .send_invoice(pef("invoice-template-fa-3-pef.xml", "PEF/0", ""))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(410), "{err}");
    drop(session);

    seller
        .permissions()
        .grant_authorization(&authorization(
            api::EntityAuthorizationPermissionsSubjectIdentifierType::PeppolId,
            PROVIDER,
            api::EntityAuthorizationPermissionType::PefInvoicing,
        ))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();

    // The PEF invoice.
    let session = provider
        .sessions()
        .open_online_with(FormCode::Pef3)
        .await
        .unwrap();
    let sent = session
        .send_invoice(pef("invoice-template-fa-3-pef.xml", "PEF/1", ""))
        .await
        .unwrap();
    let invoice = sent.wait().await.unwrap();
    assert_eq!(invoice.ksef_number.seller_nip(), nip(SELLER));
    let upo = sent.upo().await.unwrap();
    assert_eq!(upo.upo.form_system_code, "PEF (3)");
    assert_eq!(
        upo.invoice("PEF/1").unwrap().ksef_number,
        invoice.ksef_number
    );
    // With an attachment: no consent yet → 415.
    let err = session
        .send_invoice(pef(
            "invoice-template-fa-3-pef-with-attachment.xml",
            "PEF/2",
            "",
        ))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(415), "{err}");
    let closed = session.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);
    assert_eq!(closed.failed_invoice_count(), 1);

    // With the seller's consent the attachment invoice is accepted.
    client
        .testdata()
        .unwrap()
        .enable_attachments(&nip(SELLER))
        .await
        .unwrap();
    let session = provider
        .sessions()
        .open_online_with(FormCode::Pef3)
        .await
        .unwrap();
    let with_attachment = session
        .send_invoice(pef(
            "invoice-template-fa-3-pef-with-attachment.xml",
            "PEF/3",
            "",
        ))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(with_attachment.ksef_number.seller_nip(), nip(SELLER));
    session.close().await.unwrap();

    // The correction of the first invoice in a PEF_KOR session.
    let session = provider
        .sessions()
        .open_online_with(FormCode::PefKor3)
        .await
        .unwrap();
    let sent = session
        .send_invoice(pef(
            "invoice-template-fa-3-pef-correction.xml",
            "KOR/1",
            invoice.ksef_number.as_str(),
        ))
        .await
        .unwrap();
    let correction = sent.wait().await.unwrap();
    assert_eq!(correction.ksef_number.seller_nip(), nip(SELLER));
    assert_ne!(correction.ksef_number, invoice.ksef_number);
    let upo = sent.upo().await.unwrap();
    assert_eq!(upo.upo.form_system_code, "PEF_KOR (3)");
    let closed = session.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);

    // The seller sees all three as Subject1 with their PEF invoice types and attachment flags.
    let rows = seen_as(&seller, "Subject1", Some("PEF"), 3).await;
    let row = |k: &ksef::model::KsefNumber| rows.iter().find(|r| &r.ksef_number == k).unwrap();
    assert_eq!(
        row(&invoice.ksef_number).invoice_type,
        api::InvoiceType::VatPef
    );
    assert!(!row(&invoice.ksef_number).has_attachment);
    assert!(row(&with_attachment.ksef_number).has_attachment);
    assert_eq!(
        row(&correction.ksef_number).invoice_type,
        api::InvoiceType::KorPef
    );
    sim.shutdown().await;
}

/// §6.35: an FA(3) invoice whose names and line descriptions carry Polish diacritics and emoji
/// (characters outside the Basic Multilingual Plane) passes KSeF's schema verification and comes
/// back byte for byte, the buyer's name intact in the metadata; an invoice that breaks the schema
/// (a VAT rate outside `TStawkaPodatku`) is rejected with 430 naming the element.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fa3_with_diacritics_and_emoji_is_accepted_and_an_invalid_one_rejected() {
    let (sim, client) = sim().await;
    let seller = owner(&client, SELLER).await;
    let buyer_name = "Zażółć gęślą jaźń – ŁÓDŹ Śródmieście 😀🚀";
    let xml = String::from_utf8(fa3_invoice(SELLER, "EMOJI/1", false))
        .unwrap()
        .replace("F.H.U. Jan Kowalski", buyer_name)
        .replace(
            "Razem za energię czynną",
            "Energia czynna ⚡ — zużycie źródłowe 🔋",
        )
        .into_bytes();
    assert!(std::str::from_utf8(&xml).unwrap().contains('😀'));
    let invalid = String::from_utf8(fa3_invoice(SELLER, "EMOJI/2", false))
        .unwrap()
        .replacen("<P_12>23</P_12>", "<P_12>24</P_12>", 1)
        .into_bytes();

    let session = seller.sessions().open_online().await.unwrap();
    let accepted = session
        .send_invoice(&xml)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_eq!(accepted.status.status.code, 200);
    let err = session
        .send_invoice(&invalid)
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    let Error::InvoiceRejected { status, .. } = &err else {
        panic!("{err}")
    };
    assert_eq!(status.code, 430, "{err}");
    assert!(status.details.iter().any(|d| d.contains("P_12")), "{err}");
    let closed = session.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);
    assert_eq!(closed.failed_invoice_count(), 1);

    // Stored as sent: the same bytes (and hash) come back, and the metadata keeps the name.
    let doc = seller
        .invoices()
        .download(&accepted.ksef_number)
        .await
        .unwrap();
    assert_eq!(doc.xml.as_ref(), xml.as_slice());
    let rows = seen_as(&seller, "Subject1", None, 1).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].buyer.name.as_deref(), Some(buyer_name));
    sim.shutdown().await;
}
