//! Scenarios of scenarios.md not covered by an area's own test file, through the SDK against the
//! in-process simulator over HTTP (see docs/scenarios-coverage.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

mod common;
use common::checked::StartChecked;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;

use futures_util::TryStreamExt;
use ksef::crypto::signer::{InMemorySigner, SignatureAlgorithm, Signer, SignerError};
use ksef::crypto::xades::XadesError;
use ksef::model::api::{CommonSessionStatus, SessionType};
use ksef::model::operations::ListSessionsQuery;
use ksef::model::{ContextIdentifier, Nip, ReferenceNumber};
use ksef::{Error, KsefClient, TestIdentity};

const NIP: &str = "5265877635";
const OTHER_NIP: &str = "7010002139";

fn invoice(seller: &str, number: &str) -> Vec<u8> {
    include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml")
        .replace("#nip#", seller)
        .replace("#invoice_number#", number)
        .into_bytes()
}

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

/// §1.10 (J `searchSessionsByStatuses`): the session list filtered by several statuses at once
/// returns exactly the sessions in any of them — succeeded (an accepted invoice), failed (every
/// invoice rejected: 445), cancelled (closed with no invoice: 440) and still in progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_list_filters_by_several_statuses() {
    let (sim, client) = common::sim().await;
    let auth = common::owner(&client, NIP).await;
    let sessions = auth.sessions();

    let succeeded = sessions.open_online().await.unwrap();
    let succeeded_ref = succeeded.reference_number().clone();
    succeeded
        .send_invoice(invoice(NIP, "LS/1"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    succeeded.close().await.unwrap();

    let failed = sessions.open_online().await.unwrap();
    let failed_ref = failed.reference_number().clone();
    let err = failed
        .send_invoice(invoice(OTHER_NIP, "LS/2"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(410), "{err}");
    let err = failed.close().await.unwrap_err();
    assert_eq!(err.status_code(), Some(445), "{err}");

    let cancelled = sessions.open_online().await.unwrap();
    let cancelled_ref = cancelled.reference_number().clone();
    let err = cancelled.close().await.unwrap_err();
    assert_eq!(err.status_code(), Some(440), "{err}");

    let open = sessions.open_online().await.unwrap();
    let open_ref = open.reference_number().clone();

    let list = |statuses: Vec<CommonSessionStatus>| {
        let auth = &auth;
        async move {
            let mut q = ListSessionsQuery::new(SessionType::Online);
            q.statuses = statuses;
            let mut refs: Vec<ReferenceNumber> = auth
                .session_list(q)
                .map_ok(|s| s.reference_number)
                .try_collect()
                .await
                .unwrap();
            refs.sort();
            refs
        }
    };
    let sorted = |mut v: Vec<ReferenceNumber>| {
        v.sort();
        v
    };
    use CommonSessionStatus::*;
    assert_eq!(
        list(vec![Succeeded, Failed]).await,
        sorted(vec![succeeded_ref.clone(), failed_ref.clone()])
    );
    assert_eq!(
        list(vec![InProgress, Cancelled]).await,
        sorted(vec![open_ref.clone(), cancelled_ref.clone()])
    );
    assert_eq!(
        list(vec![Failed, Cancelled, InProgress]).await,
        sorted(vec![
            failed_ref.clone(),
            cancelled_ref.clone(),
            open_ref.clone()
        ])
    );
    let everything = sorted(vec![succeeded_ref, failed_ref, cancelled_ref, open_ref]);
    assert_eq!(
        list(vec![Succeeded, Failed, Cancelled, InProgress]).await,
        everything
    );
    assert_eq!(list(vec![]).await, everything);
    drop(open);
    sim.shutdown().await;
}

type SignRequest = (Vec<u8>, mpsc::Sender<Result<Vec<u8>, String>>);

/// A signer whose private key never enters this process's signing code: it lives in a separate
/// "device" thread (a stand-in for an HSM, a smart card or a cloud KMS with a non-exportable
/// key) that only answers signing requests. The `Signer` the SDK gets holds the certificate and
/// a channel, nothing else.
struct RemoteSigner {
    certificate: Vec<u8>,
    requests: mpsc::Sender<SignRequest>,
    calls: AtomicUsize,
}

impl RemoteSigner {
    /// Starts the device with a fresh P-256 key and a TEST seal certificate for `nip`; the
    /// device stops after `budget` signatures (a removed card).
    fn start(nip: &str, budget: usize) -> Self {
        let (requests, device) = mpsc::channel::<SignRequest>();
        let (cert_tx, cert_rx) = mpsc::channel();
        let nip = nip.to_owned();
        std::thread::spawn(move || {
            let key = ksef::crypto::keys::PrivateKey::generate(ksef::crypto::keys::KeyKind::P256)
                .unwrap();
            let cert = ksef::crypto::cert::test_seal(&key, "Firma HSM", &nip).unwrap();
            cert_tx.send(cert.der().to_vec()).unwrap();
            let signer = InMemorySigner::new(key, cert).unwrap();
            for (data, reply) in device.iter().take(budget) {
                let _ = reply.send(signer.sign(&data).map_err(|e| e.to_string()));
            }
        });
        RemoteSigner {
            certificate: cert_rx.recv().unwrap(),
            requests,
            calls: AtomicUsize::new(0),
        }
    }
}

impl Signer for RemoteSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        SignatureAlgorithm::EcdsaP256Sha256
    }
    fn certificate_der(&self) -> &[u8] {
        &self.certificate
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let (reply, answer) = mpsc::channel();
        let unavailable = |_| SignerError::Failed("the signing device is not available".into());
        self.requests
            .send((data.to_vec(), reply))
            .map_err(unavailable)?;
        answer
            .recv()
            .map_err(|_| SignerError::Failed("the signing device is not available".into()))?
            .map_err(SignerError::Failed)
    }
}

/// §1.3 (J `signExportableKeysTest`, the non-exportable half): a login signed by a custom
/// [`Signer`] whose key stays in a remote device. The SDK asks it for exactly one signature, KSeF
/// accepts the XAdES it yields as the seal's (`QualifiedSeal`), and the tokens work. When the
/// device fails the login ends with the signer's typed error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_through_a_remote_signer_with_a_non_exportable_key() {
    let (sim, client) = common::sim().await;
    let remote = RemoteSigner::start(NIP, 1);
    let context = ContextIdentifier::Nip(NIP.parse().unwrap());
    let auth = client.auth().xades(&remote, context.clone()).await.unwrap();
    assert_eq!(remote.calls.load(Ordering::SeqCst), 1);
    let current: Vec<_> = auth.auth_sessions().try_collect().await.unwrap();
    let current = current.iter().find(|s| s.is_current == Some(true)).unwrap();
    assert_eq!(&current.reference_number, auth.reference_number());
    assert_eq!(current.status.code, 200);
    assert_eq!(
        current.authentication_method_info.code,
        "xades.qualified-seal"
    );
    // The access token is the seal's: it may open a session in the NIP context.
    let session = auth.sessions().open_online().await.unwrap();
    session.close().await.unwrap_err();

    // The device has used its budget (a card pulled out): the login fails with the signer error.
    let err = client.auth().xades(&remote, context).await.unwrap_err();
    assert!(
        matches!(
            err,
            Error::Xades(XadesError::Signer(SignerError::Failed(_)))
        ),
        "{err:?}"
    );
    assert_eq!(remote.calls.load(Ordering::SeqCst), 2);
    sim.shutdown().await;
}

/// §5.27 (J `queryInvoiceWithAttachmentAndWithout`): an export that includes an invoice with an
/// attachment carries its XML with the `Zalacznik` and `hasAttachment` in `_metadata.json`; the
/// `hasAttachment` filter exports only the invoices with (true) or without (false) one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_with_and_without_the_attachment_filter() {
    let (sim, client) = common::sim().await;
    let nip: Nip = NIP.parse().unwrap();
    client
        .testdata()
        .unwrap()
        .enable_attachments(&nip)
        .await
        .unwrap();
    let auth = common::owner(&client, NIP).await;
    let from =
        ksef::model::DateTime::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(5));
    let session = auth.sessions().open_online().await.unwrap();
    let with = session
        .send_invoice(attachment_invoice("EXP/ZAL"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap()
        .ksef_number;
    let without = session
        .send_invoice(invoice(NIP, "EXP/BEZ"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap()
        .ksef_number;
    session.close().await.unwrap();

    let export = |has_attachment: Option<bool>| {
        let auth = &auth;
        async move {
            let mut f = serde_json::json!({
                "subjectType": "Subject1",
                "dateRange": {"dateType": "Invoicing", "from": from.to_string()},
            });
            if let Some(a) = has_attachment {
                f["hasAttachment"] = a.into();
            }
            let filters: ksef::model::api::InvoiceQueryFilters = serde_json::from_value(f).unwrap();
            // Accepted invoices are exported once stored permanently (shortly after acceptance).
            for _ in 0..100 {
                let package = auth
                    .invoices()
                    .export(filters.clone(), ksef::ExportOptions::default())
                    .await
                    .unwrap();
                assert!(!package.info().is_truncated);
                let items: Vec<ksef::ExportedInvoice> = package
                    .invoices()
                    .await
                    .unwrap()
                    .try_collect()
                    .await
                    .unwrap();
                let want = if has_attachment.is_some() { 1 } else { 2 };
                if items.len() >= want {
                    return items;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("the export never held the invoices");
        }
    };
    let has_zalacznik = |item: &ksef::ExportedInvoice| {
        let xml = item.xml.as_ref().unwrap();
        std::str::from_utf8(xml).unwrap().contains("<Zalacznik>")
    };

    let all = export(None).await;
    assert_eq!(all.len(), 2);
    let find =
        |k: &ksef::model::KsefNumber| all.iter().find(|i| &i.metadata.ksef_number == k).unwrap();
    assert!(find(&with).metadata.has_attachment);
    assert!(has_zalacznik(find(&with)));
    assert!(!find(&without).metadata.has_attachment);
    assert!(!has_zalacznik(find(&without)));

    let only_with = export(Some(true)).await;
    assert_eq!(only_with.len(), 1);
    assert_eq!(only_with[0].metadata.ksef_number, with);
    assert!(has_zalacznik(&only_with[0]));
    let only_without = export(Some(false)).await;
    assert_eq!(only_without.len(), 1);
    assert_eq!(only_without[0].metadata.ksef_number, without);
    sim.shutdown().await;
}
