//! Technical correction of offline invoices (ksef-api.md §11.4, scenarios.md §4.25) and the
//! semantic verification that rejects with 450: over raw HTTP, every answer checked against the
//! spec by `common::Api`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use ksef_crypto::encryption::SessionKey;
use ksef_crypto::keys::{KeyKind, PrivateKey};
use ksef_crypto::signer::InMemorySigner;
use ksef_model::operations::OperationId;
use serde_json::{Value, json};

/// The invoice `number` for `NIP`, issued on `date`.
fn invoice_on(number: &str, date: time::Date) -> Vec<u8> {
    let today = time::OffsetDateTime::now_utc().date();
    String::from_utf8(invoice(NIP, number))
        .unwrap()
        .replace(
            &format!("<P_1>{today}</P_1>"),
            &format!("<P_1>{date}</P_1>"),
        )
        .into_bytes()
}

/// Two days after today in Poland: later than any acceptance date of this test run.
fn future() -> time::Date {
    ksef_fa::date_in_poland(time::OffsetDateTime::now_utc()) + time::Duration::days(2)
}

/// The seller's seal (VATPL-5265877635).
fn seal() -> InMemorySigner {
    signer("xmlsec1cli-rsa-seal")
}

fn today() -> time::Date {
    time::OffsetDateTime::now_utc().date()
}

fn sha256(xml: &[u8]) -> String {
    ksef_crypto::hash::sha256_base64(xml)
}

/// Sends `xml` with `offlineMode` and an optional `hashOfCorrectedInvoice`.
async fn send_with(
    api: &Api,
    access: &str,
    session: &str,
    key: &SessionKey,
    xml: &[u8],
    offline: bool,
    corrects: Option<&str>,
) -> Resp {
    let e = key.encrypt_invoice(xml);
    let mut body = json!({
        "invoiceHash": e.invoice_hash.as_str(),
        "invoiceSize": e.invoice_size,
        "encryptedInvoiceHash": e.encrypted_invoice_hash.as_str(),
        "encryptedInvoiceSize": e.encrypted_invoice_size,
        "encryptedInvoiceContent": e.ciphertext_base64(),
        "offlineMode": offline,
    });
    if let Some(h) = corrects {
        body["hashOfCorrectedInvoice"] = json!(h);
    }
    api.call(
        OperationId::SendInvoice,
        &[session],
        Some(access),
        Body::Json(body),
    )
    .await
}

/// Sends and waits for the final status.
async fn settle(
    api: &Api,
    access: &str,
    session: &str,
    key: &SessionKey,
    xml: &[u8],
    offline: bool,
    corrects: Option<&str>,
) -> Value {
    let r = send_with(api, access, session, key, xml, offline, corrects).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    api.invoice_final(access, session, r.json["referenceNumber"].as_str().unwrap())
        .await
}

/// The exception code and first detail of a 400.
fn refusal(r: &Resp) -> (i64, String) {
    assert_eq!(r.status, 400, "{:?}", r.json);
    let d = &r.json["exception"]["exceptionDetailList"][0];
    (
        d["exceptionCode"].as_i64().unwrap(),
        d["details"][0].as_str().unwrap_or_default().to_owned(),
    )
}

/// The seller's invoice metadata (`Subject1`) by KSeF number, once stored permanently.
async fn metadata_of(api: &Api, access: &str, ksef: &str) -> Value {
    let from = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    for _ in 0..100 {
        let r = api
            .call_q(
                OperationId::QueryInvoiceMetadata,
                &[],
                "",
                Some(access),
                Body::Json(json!({"subjectType": "Subject1", "ksefNumber": ksef,
                    "dateRange": {"dateType": "Invoicing", "from": from}})),
                &[],
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        if let Some(m) = r.json["invoices"].as_array().unwrap().first() {
            return m.clone();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{ksef} never appeared in the metadata query");
}

/// §4.25 in one session: an offline invoice dated in the future is rejected semantically
/// (450); its technical correction gets a KSeF number, is Offline and its metadata names the
/// original's hash; a second correction is 21166; correcting an accepted invoice is 21167.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_offline_invoice_corrected_in_the_same_session() {
    let (sim, api) = start().await;
    let (access, _, _) = api.login(&seal(), NIP).await;
    let (session, key) = api.open_session(&access).await;

    let original = invoice_on("TC/1", future());
    let st = settle(&api, &access, &session, &key, &original, true, None).await;
    assert_eq!(st["status"]["code"], 450, "{st}");
    assert_eq!(
        st["status"]["description"],
        "Błąd weryfikacji semantyki dokumentu faktury"
    );
    let detail = st["status"]["details"][0].as_str().unwrap();
    assert!(
        detail.contains("P_1") && detail.contains(&future().to_string()),
        "{detail}"
    );
    assert!(st.get("ksefNumber").is_none(), "{st}");
    let original_hash = st["invoiceHash"].as_str().unwrap().to_owned();
    assert_eq!(original_hash, sha256(&original));

    // The correction: the same invoice, issued today, naming the original's hash.
    let corrected = invoice_on("TC/1", today());
    let st = settle(
        &api,
        &access,
        &session,
        &key,
        &corrected,
        true,
        Some(&original_hash),
    )
    .await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    assert_eq!(st["invoicingMode"], "Offline", "{st}");
    let ksef = st["ksefNumber"].as_str().unwrap().to_owned();
    let meta = metadata_of(&api, &access, &ksef).await;
    assert_eq!(
        meta["hashOfCorrectedInvoice"],
        original_hash.as_str(),
        "{meta}"
    );
    assert_eq!(meta["invoiceHash"], sha256(&corrected).as_str(), "{meta}");
    assert_eq!(meta["invoicingMode"], "Offline", "{meta}");

    // Only one successful correction per original.
    let again = invoice_on("TC/1-bis", today());
    let r = send_with(
        &api,
        &access,
        &session,
        &key,
        &again,
        true,
        Some(&original_hash),
    )
    .await;
    let (code, detail) = refusal(&r);
    assert_eq!(code, 21166, "{detail}");
    assert!(detail.contains("korektę techniczną"), "{detail}");

    // An accepted invoice (here: the correction itself) cannot be corrected.
    let r = send_with(
        &api,
        &access,
        &session,
        &key,
        &invoice_on("TC/1-ter", today()),
        true,
        Some(&sha256(&corrected)),
    )
    .await;
    let (code, detail) = refusal(&r);
    assert_eq!(code, 21167, "{detail}");
    assert!(detail.contains("prawidłowo przetworzonej"), "{detail}");

    // An invoice without a correction has no link in its metadata.
    let st = settle(
        &api,
        &access,
        &session,
        &key,
        &invoice(NIP, "TC/2"),
        false,
        None,
    )
    .await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let meta = metadata_of(&api, &access, st["ksefNumber"].as_str().unwrap()).await;
    assert!(meta.get("hashOfCorrectedInvoice").is_none(), "{meta}");
    sim.shutdown().await;
}

/// §4.25 across sessions: the original rejected in a closed session is corrected in another
/// one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_offline_invoice_corrected_in_another_session() {
    let (sim, api) = start().await;
    let (access, _, _) = api.login(&seal(), NIP).await;
    let (first, key) = api.open_session(&access).await;
    let original = invoice_on("TC/3", future());
    let st = settle(&api, &access, &first, &key, &original, true, None).await;
    assert_eq!(st["status"]["code"], 450, "{st}");
    let r = api
        .call(
            OperationId::CloseOnlineSession,
            &[&first],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    // Nothing accepted: the first session ends with 445.
    let s = api.session_final(&access, &first).await;
    assert_eq!(s["status"]["code"], 445, "{s}");

    let (second, key2) = api.open_session(&access).await;
    let st = settle(
        &api,
        &access,
        &second,
        &key2,
        &invoice_on("TC/3", today()),
        true,
        Some(&sha256(&original)),
    )
    .await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let meta = metadata_of(&api, &access, st["ksefNumber"].as_str().unwrap()).await;
    assert_eq!(meta["hashOfCorrectedInvoice"], sha256(&original).as_str());
    sim.shutdown().await;
}

/// The refusals at sending: no `offlineMode` (21405), a hash no invoice of the context has
/// (21405), an original sent online (21167), an original rejected for missing permissions (410 →
/// 21167), an original of another context (21405); and a correction that is itself rejected
/// leaves the original open to another one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_that_are_refused() {
    let (sim, api) = start().await;
    let (access, _, _) = api.login(&seal(), NIP).await;
    let (session, key) = api.open_session(&access).await;
    let fixed = invoice_on("TC/4", today());

    let original = invoice_on("TC/4", future());
    let st = settle(&api, &access, &session, &key, &original, true, None).await;
    assert_eq!(st["status"]["code"], 450, "{st}");
    let hash = sha256(&original);

    let r = send_with(&api, &access, &session, &key, &fixed, false, Some(&hash)).await;
    let (code, detail) = refusal(&r);
    assert_eq!(code, 21405, "{detail}");
    assert!(detail.contains("offlineMode"), "{detail}");

    let unknown = sha256(b"never sent");
    let r = send_with(&api, &access, &session, &key, &fixed, true, Some(&unknown)).await;
    let (code, detail) = refusal(&r);
    assert_eq!(code, 21405, "{detail}");
    assert!(detail.contains(&unknown), "{detail}");

    // Rejected, but sent as an online invoice: not a technical correction's case.
    let online = invoice_on("TC/5", future());
    let st = settle(&api, &access, &session, &key, &online, false, None).await;
    assert_eq!(st["status"]["code"], 450, "{st}");
    let r = send_with(
        &api,
        &access,
        &session,
        &key,
        &invoice_on("TC/5", today()),
        true,
        Some(&sha256(&online)),
    )
    .await;
    let (code, detail) = refusal(&r);
    assert_eq!(code, 21167, "{detail}");
    assert!(detail.contains("trybie offline"), "{detail}");

    // Rejected for the seller: another NIP than the context (410) cannot be corrected.
    let foreign = invoice(OTHER_NIP, "TC/6");
    let st = settle(&api, &access, &session, &key, &foreign, true, None).await;
    assert_eq!(st["status"]["code"], 410, "{st}");
    let r = send_with(
        &api,
        &access,
        &session,
        &key,
        &fixed,
        true,
        Some(&sha256(&foreign)),
    )
    .await;
    let (code, detail) = refusal(&r);
    assert_eq!(code, 21167, "{detail}");
    assert!(detail.contains("410"), "{detail}");

    // Another context does not see this context's rejected invoice.
    let other_key = PrivateKey::generate(KeyKind::P256).unwrap();
    let other = InMemorySigner::new(
        other_key.clone(),
        ksef_crypto::cert::test_seal(&other_key, "Inna Firma", OTHER_NIP).unwrap(),
    )
    .unwrap();
    let (other_access, _, _) = api.login(&other, OTHER_NIP).await;
    let (other_session, other_key) = api.open_session(&other_access).await;
    let r = send_with(
        &api,
        &other_access,
        &other_session,
        &other_key,
        &invoice(OTHER_NIP, "TC/4"),
        true,
        Some(&hash),
    )
    .await;
    assert_eq!(refusal(&r).0, 21405);

    // A correction that fails itself (still in the future) does not use up the original.
    let st = settle(
        &api,
        &access,
        &session,
        &key,
        &invoice_on("TC/4-a", future()),
        true,
        Some(&hash),
    )
    .await;
    assert_eq!(st["status"]["code"], 450, "{st}");
    let st = settle(&api, &access, &session, &key, &fixed, true, Some(&hash)).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    sim.shutdown().await;
}

/// The original and its correction survive a restart under `--state-dir`: after the restart a
/// rejected original can still be corrected, and the link (metadata, 21166) is still there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrections_survive_a_restart() {
    let dir = std::env::temp_dir().join(format!(
        "ksef-sim-techcorr-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    let start_in = |dir: std::path::PathBuf| async move {
        let sim = ksef_sim::Simulator::builder()
            .rate_limits(false)
            .state_dir(dir)
            .start_checked()
            .await
            .unwrap();
        let api = Api::new(sim.base_url());
        (sim, api)
    };
    let original = invoice_on("TC/7", future());
    let hash = sha256(&original);
    {
        let (sim, api) = start_in(dir.clone()).await;
        let (access, _, _) = api.login(&seal(), NIP).await;
        let (session, key) = api.open_session(&access).await;
        let st = settle(&api, &access, &session, &key, &original, true, None).await;
        assert_eq!(st["status"]["code"], 450, "{st}");
        sim.shutdown().await;
    }
    let ksef = {
        let (sim, api) = start_in(dir.clone()).await;
        let (access, _, _) = api.login(&seal(), NIP).await;
        let (session, key) = api.open_session(&access).await;
        let st = settle(
            &api,
            &access,
            &session,
            &key,
            &invoice_on("TC/7", today()),
            true,
            Some(&hash),
        )
        .await;
        assert_eq!(st["status"]["code"], 200, "{st}");
        sim.shutdown().await;
        st["ksefNumber"].as_str().unwrap().to_owned()
    };
    let (sim, api) = start_in(dir.clone()).await;
    let (access, _, _) = api.login(&seal(), NIP).await;
    let meta = metadata_of(&api, &access, &ksef).await;
    assert_eq!(meta["hashOfCorrectedInvoice"], hash.as_str(), "{meta}");
    let (session, key) = api.open_session(&access).await;
    let r = send_with(
        &api,
        &access,
        &session,
        &key,
        &invoice_on("TC/7-bis", today()),
        true,
        Some(&hash),
    )
    .await;
    assert_eq!(refusal(&r).0, 21166);
    sim.shutdown().await;
    std::fs::remove_dir_all(&dir).unwrap();
}
