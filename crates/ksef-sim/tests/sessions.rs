//! Online-session rules over HTTP: key unwrap (415), publicKeyId (21470), IV length, size and hash
//! mismatches (21402/21403), decryption (435), XML rules (430), seller vs context (410),
//! duplicates (440), failed lists, 440/445 at close, session isolation between contexts.

mod common;

use common::*;
use ksef_crypto::encryption::SessionKey;
use ksef_model::operations::OperationId;
use serde_json::json;

fn fa3_open(key: &str, iv: &str, pkid: Option<&str>) -> serde_json::Value {
    let mut v = json!({
        "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
        "encryption": {"encryptedSymmetricKey": key, "initializationVector": iv},
    });
    if let Some(p) = pkid {
        v["encryption"]["publicKeyId"] = json!(p);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_rules() {
    let (sim, api) = start().await;
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let (pk, id) = api.mf_key("SymmetricKeyEncryption").await;
    let (_, token_id) = api.mf_key("KsefTokenEncryption").await;
    let key = SessionKey::generate().unwrap();
    let info = key.encryption_info(&pk, None).unwrap();
    let open = |body| {
        api.call(
            OperationId::OpenOnlineSession,
            &[],
            Some(&access),
            Body::Json(body),
        )
    };

    // The token key's id is not the symmetric key's: 21470.
    let r = open(fa3_open(
        &info.encrypted_symmetric_key,
        &info.initialization_vector,
        Some(&token_id),
    ))
    .await;
    assert_eq!((r.status, r.code()), (400, 21470));
    // Unknown form code: 21405.
    let mut body = fa3_open(
        &info.encrypted_symmetric_key,
        &info.initialization_vector,
        Some(&id),
    );
    body["formCode"]["systemCode"] = json!("FA (9)");
    let r = open(body).await;
    assert_eq!((r.status, r.code()), (400, 21405));
    // A 12-byte IV: 21405.
    let r = open(fa3_open(
        &info.encrypted_symmetric_key,
        "AAAAAAAAAAAAAAAA",
        Some(&id),
    ))
    .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    // A key that does not unwrap: 201, then session status 415 and sends refused with 21180.
    let r = open(fa3_open("AAAA", &info.initialization_vector, None)).await;
    assert_eq!(r.status, 201);
    let bad = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let st = api
        .call(
            OperationId::SessionStatus,
            &[&bad],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(st.json["status"]["code"], 415);
    let r = api.send(&access, &bad, &key, &invoice(NIP, "X-1")).await;
    assert_eq!((r.status, r.code()), (400, 21180));
    // Unknown session: 21173.
    let r = api
        .call(
            OperationId::SessionStatus,
            &["20250101-SO-0000000000-0000000000-00"],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21173));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_rules_statuses_and_close_outcomes() {
    let (sim, api) = start().await;
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let (session, key) = api.open_session(&access).await;
    let xml = invoice(NIP, "R-1");
    let e = key.encrypt_invoice(&xml);
    let sref = [session.as_str()];
    let send_raw = |body| {
        api.call(
            OperationId::SendInvoice,
            &sref,
            Some(&access),
            Body::Json(body),
        )
    };
    let good = json!({
        "invoiceHash": e.invoice_hash.as_str(),
        "invoiceSize": e.invoice_size,
        "encryptedInvoiceHash": e.encrypted_invoice_hash.as_str(),
        "encryptedInvoiceSize": e.encrypted_invoice_size,
        "encryptedInvoiceContent": e.ciphertext_base64(),
    });
    // Sizes and hashes.
    let mut b = good.clone();
    b["encryptedInvoiceSize"] = json!(e.encrypted_invoice_size + 16);
    assert_eq!(send_raw(b).await.code(), 21402);
    let mut b = good.clone();
    b["invoiceSize"] = json!(e.invoice_size + 1);
    assert_eq!(send_raw(b).await.code(), 21402);
    let mut b = good.clone();
    b["encryptedInvoiceHash"] = json!(e.invoice_hash.as_str());
    assert_eq!(send_raw(b).await.code(), 21403);
    let mut b = good.clone();
    b["invoiceHash"] = json!(e.encrypted_invoice_hash.as_str());
    assert_eq!(send_raw(b).await.code(), 21403);

    // Accepted, then a duplicate (440 with extensions).
    let r = send_raw(good.clone()).await;
    assert_eq!(r.status, 202);
    let first = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let ok = api.invoice_final(&access, &session, &first).await;
    assert_eq!(ok["status"]["code"], 200);
    let r = send_raw(good).await;
    let dup = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(dup["status"]["code"], 440, "{dup}");
    assert_eq!(
        dup["status"]["extensions"]["originalKsefNumber"],
        ok["ksefNumber"]
    );
    assert_eq!(
        dup["status"]["extensions"]["originalSessionReferenceNumber"],
        session.as_str()
    );

    // Ciphertext made with another key: 435.
    let other = SessionKey::generate().unwrap();
    let r = api
        .send(&access, &session, &other, &invoice(NIP, "R-2"))
        .await;
    let st = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    // Another key may still unpad by chance (1/256); then the plaintext hash check answers.
    assert!(st["status"]["code"] == 435 || r.status == 400, "{st}");

    // XML rules: BOM, processing instruction, wrong form: 430.
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(invoice(NIP, "R-3"));
    let pi = String::from_utf8(invoice(NIP, "R-4"))
        .unwrap()
        .replacen("<Faktura", "<?xml-stylesheet href=\"x.xsl\"?><Faktura", 1)
        .into_bytes();
    let fa2 = String::from_utf8(invoice(NIP, "R-5"))
        .unwrap()
        .replace(
            "http://crd.gov.pl/wzor/2025/06/25/13775/",
            "http://crd.gov.pl/wzor/2023/06/29/12648/",
        )
        .into_bytes();
    for bad in [bom, pi, fa2, b"<Faktura/>".to_vec()] {
        let r = api.send(&access, &session, &key, &bad).await;
        assert_eq!(r.status, 202);
        let st = api
            .invoice_final(
                &access,
                &session,
                r.json["referenceNumber"].as_str().unwrap(),
            )
            .await;
        assert_eq!(st["status"]["code"], 430, "{st}");
    }
    // Seller NIP other than the context: 410.
    let r = api
        .send(&access, &session, &key, &invoice(OTHER_NIP, "R-6"))
        .await;
    let st = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["status"]["code"], 410, "{st}");
    // An invoice issued yesterday is marked Offline.
    let yesterday = time::OffsetDateTime::now_utc()
        .date()
        .previous_day()
        .unwrap();
    let old = String::from_utf8(invoice(NIP, "R-7"))
        .unwrap()
        .replace(
            &format!("<P_1>{}</P_1>", time::OffsetDateTime::now_utc().date()),
            &format!("<P_1>{yesterday}</P_1>"),
        )
        .into_bytes();
    let r = api.send(&access, &session, &key, &old).await;
    let st = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["invoicingMode"], "Offline", "{st}");

    // Two more accepted invoices, so the list spans two pages of 10.
    for n in ["R-8", "R-9"] {
        let r = api.send(&access, &session, &key, &invoice(NIP, n)).await;
        let st = api
            .invoice_final(
                &access,
                &session,
                r.json["referenceNumber"].as_str().unwrap(),
            )
            .await;
        assert_eq!(st["status"]["code"], 200, "{st}");
    }

    // Lists: the failed list holds exactly the failures, paged with a continuation token.
    let r = api
        .call_q(
            OperationId::ListFailedSessionInvoices,
            &[&session],
            "?pageSize=10",
            Some(&access),
            Body::None,
            &[],
        )
        .await;
    let failed = r.json["invoices"].as_array().unwrap();
    assert!(failed.len() >= 6, "{}", failed.len());
    assert!(
        failed
            .iter()
            .all(|i| i["status"]["code"].as_i64().unwrap() >= 400)
    );
    let r = api
        .call_q(
            OperationId::ListSessionInvoices,
            &[&session],
            "?pageSize=10",
            Some(&access),
            Body::None,
            &[],
        )
        .await;
    let token = r.json["continuationToken"].as_str().unwrap().to_owned();
    let r = api
        .call_q(
            OperationId::ListSessionInvoices,
            &[&session],
            "?pageSize=10",
            Some(&access),
            Body::None,
            &[("x-continuation-token", &token)],
        )
        .await;
    assert!(!r.json["invoices"].as_array().unwrap().is_empty());
    let r = api
        .call_q(
            OperationId::ListSessionInvoices,
            &[&session],
            "",
            Some(&access),
            Body::None,
            &[("x-continuation-token", "garbage")],
        )
        .await;
    assert_eq!(r.code(), 21418);
    let r = api
        .call_q(
            OperationId::ListSessionInvoices,
            &[&session],
            "?pageSize=5",
            Some(&access),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.code(), 21405);

    // Another context cannot see the session.
    api.testdata_grant(OTHER_NIP, ("Nip", NIP), &["InvoiceWrite"])
        .await;
    let (other_access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), OTHER_NIP).await;
    let r = api
        .call(
            OperationId::SessionStatus,
            &[&session],
            Some(&other_access),
            Body::None,
        )
        .await;
    assert_eq!(r.code(), 21173);

    // Close: 200 with UPO (some invoices succeeded); empty session: 440; all failed: 445.
    let r = api
        .call(
            OperationId::CloseOnlineSession,
            &[&session],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .call(
            OperationId::CloseOnlineSession,
            &[&session],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.code(), 21180);
    assert_eq!(
        api.session_final(&access, &session).await["status"]["code"],
        200
    );

    let (empty, _) = api.open_session(&access).await;
    api.call(
        OperationId::CloseOnlineSession,
        &[&empty],
        Some(&access),
        Body::None,
    )
    .await;
    let st = api.session_final(&access, &empty).await;
    assert_eq!(st["status"]["code"], 440, "{st}");
    assert!(st.get("upo").is_none());

    let (all_bad, k2) = api.open_session(&access).await;
    let r = api.send(&access, &all_bad, &k2, b"<Faktura/>").await;
    api.invoice_final(
        &access,
        &all_bad,
        r.json["referenceNumber"].as_str().unwrap(),
    )
    .await;
    api.call(
        OperationId::CloseOnlineSession,
        &[&all_bad],
        Some(&access),
        Body::None,
    )
    .await;
    let st = api.session_final(&access, &all_bad).await;
    assert_eq!(st["status"]["code"], 445, "{st}");
    assert_eq!(st["failedInvoiceCount"], 1);

    // UPO and invoice lookups that do not exist.
    let r = api
        .call(
            OperationId::DownloadInvoice,
            &["5265877635-20250101-000000000000-00"],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.code(), 21164);
    let r = api
        .call(
            OperationId::SessionUpo,
            &[&all_bad, "20250101-EU-0000000000-0000000000-00"],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.code(), 21178);
    let expired = reqwest::get(format!(
        "{}/storage/upo/nope",
        sim.base_url().trim_end_matches("/v2")
    ))
    .await
    .unwrap();
    assert_eq!(expired.status(), 403);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn who_may_close_and_automatic_expiry() {
    let clock = ksef_sim::ManualClock::starting_now();
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    // Owner: the seal of NIP. Authorised subject: the personal certificate's fingerprint.
    let (owner, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let personal = signer("xmlsec1cli-ec-personal");
    let fp = personal.certificate().fingerprint_sha256_hex();
    api.testdata_grant(NIP, ("Fingerprint", &fp), &["InvoiceWrite"])
        .await;
    let xml = api
        .signed_request(
            &personal,
            NIP,
            ksef_model::auth_request::SubjectIdentifierType::CertificateFingerprint,
        )
        .await;
    let r = api.submit_xades(xml, "").await;
    let op = r.json["authenticationToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let st = api
        .auth_status(r.json["referenceNumber"].as_str().unwrap(), &op)
        .await;
    assert_eq!(st["status"]["code"], 200);
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    let delegate = r.json["accessToken"]["token"].as_str().unwrap().to_owned();

    // The delegate cannot close the owner's session; the owner can close the delegate's.
    let (owners, _) = api.open_session(&owner).await;
    let r = api
        .call(
            OperationId::CloseOnlineSession,
            &[&owners],
            Some(&delegate),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 403);
    let (delegates, _) = api.open_session(&delegate).await;
    let r = api
        .call(
            OperationId::CloseOnlineSession,
            &[&delegates],
            Some(&owner),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204);
    // Without Introspection the delegate lists only its own sessions.
    let r = api
        .call_q(
            OperationId::ListSessions,
            &[],
            "?sessionType=Online",
            Some(&delegate),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.json["sessions"].as_array().unwrap().len(), 1);

    // After 12 h an untouched session closes itself (no invoices: 440).
    clock.advance(time::Duration::hours(12));
    let (fresh_owner, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let st = api
        .call(
            OperationId::SessionStatus,
            &[&owners],
            Some(&fresh_owner),
            Body::None,
        )
        .await;
    assert_eq!(st.json["status"]["code"], 440, "{:?}", st.json);
    sim.shutdown().await;
}
