//! Authentication over HTTP: challenges, XAdES checks, permissions (415), redeem once, token
//! expiry on an injected clock, refresh, auth-session listing and revocation, KSeF-token checks.

// `submit` is a helper outside #[test] and may panic.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ksef_model::auth_request::SubjectIdentifierType;
use ksef_model::operations::OperationId;
use serde_json::json;
use time::Duration;

async fn submit(api: &Api, xml: Vec<u8>, query: &str) -> (String, String) {
    let r = api.submit_xades(xml, query).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    (
        r.json["referenceNumber"].as_str().unwrap().to_owned(),
        r.json["authenticationToken"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn challenge_rules_and_signature_errors() {
    let clock = ksef_sim::ManualClock::starting_now();
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let seal = signer("xmlsec1cli-rsa-seal");

    let ch = api.challenge().await;
    let c = ch["challenge"].as_str().unwrap();
    assert!(
        regex::Regex::new(r"^\d{8}-CR-[0-9A-F]{10}-[0-9A-F]{10}-[0-9A-F]{2}$")
            .unwrap()
            .is_match(c)
    );
    assert_eq!(ch["clientIp"], "127.0.0.1");
    assert!(ch["timestampMs"].as_i64().unwrap() > 1_700_000_000_000);

    // A challenge is single use.
    let xml = api
        .signed_request(&seal, NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    submit(&api, xml.clone(), "").await;
    let r = api.submit_xades(xml, "").await;
    assert_eq!((r.status, r.code()), (400, 21111));

    // ... and lives 10 minutes.
    let xml = api
        .signed_request(&seal, NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    clock.advance(Duration::minutes(11));
    let r = api.submit_xades(xml, "").await;
    assert_eq!((r.status, r.code()), (400, 21111));

    // Tampered content: 9105; unsigned: 9102; two signatures: 9103.
    let xml = api
        .signed_request(&seal, NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    let tampered = String::from_utf8(xml.clone()).unwrap().replace(
        &format!("<Nip>{NIP}</Nip>"),
        &format!("<Nip>{OTHER_NIP}</Nip>"),
    );
    let r = api.submit_xades(tampered.into_bytes(), "").await;
    assert_eq!((r.status, r.code()), (400, 9105), "{:?}", r.json);
    let unsigned = br#"<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.0"><Challenge>20250604-CR-461EA5B000-537A6BA15D-D7</Challenge><ContextIdentifier><Nip>5265877635</Nip></ContextIdentifier><SubjectIdentifierType>certificateSubject</SubjectIdentifierType></AuthTokenRequest>"#;
    let r = api.submit_xades(unsigned.to_vec(), "").await;
    assert_eq!((r.status, r.code()), (400, 9102));
    let twice = ksef_crypto::xades::sign(&xml, &seal);
    if let Ok(twice) = twice {
        let r = api.submit_xades(twice, "").await;
        assert_eq!((r.status, r.code()), (400, 9103));
    }

    // Independent signers' fixtures: valid signatures, but their challenge is unknown → 21111.
    let fixture = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/xades/signxml-rsa-seal.xml"
    ))
    .unwrap();
    let r = api.submit_xades(fixture, "").await;
    assert_eq!((r.status, r.code()), (400, 21111));

    // Wrong content type.
    let r = api
        .call(
            OperationId::AuthXadesSignature,
            &[],
            None,
            Body::Raw("application/json", b"{}".to_vec()),
        )
        .await;
    assert_eq!(r.status, 415);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_redeem_refresh_expiry_and_revocation() {
    let clock = ksef_sim::ManualClock::starting_now();
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let seal = signer("xmlsec1cli-rsa-seal");

    // The seal (VATPL-NIP) owns its NIP context: 200, redeem once.
    let xml = api
        .signed_request(&seal, NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    let (reference, op) = submit(&api, xml, "").await;
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["status"]["code"], 200);
    assert_eq!(st["authenticationMethod"], "QualifiedSeal");
    assert_eq!(st["authenticationMethodInfo"]["category"], "XadesSignature");
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    assert_eq!(r.status, 200);
    let access = r.json["accessToken"]["token"].as_str().unwrap().to_owned();
    let refresh = r.json["refreshToken"]["token"].as_str().unwrap().to_owned();
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    assert_eq!((r.status, r.code()), (400, 21301));
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["isTokenRedeemed"], true);

    // Tokens are typed: the access token does not open /auth/{ref}, the operation token does
    // not list sessions.
    let r = api
        .call(
            OperationId::AuthStatus,
            &[&reference],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = api
        .call(OperationId::ListAuthSessions, &[], Some(&op), Body::None)
        .await;
    assert_eq!(r.status, 401);

    // The access token expires (401 problem details); refresh gives a new one.
    clock.advance(Duration::minutes(16));
    let r = api
        .call(
            OperationId::ListAuthSessions,
            &[],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 401);
    assert!(r.content_type().starts_with("application/problem+json"));
    let r = api
        .call(
            OperationId::RefreshAccessToken,
            &[],
            Some(&refresh),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    let access2 = r.json["accessToken"]["token"].as_str().unwrap().to_owned();
    let r = api
        .call(
            OperationId::ListAuthSessions,
            &[],
            Some(&access2),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json["items"][0]["isCurrent"], true);
    assert!(r.json["items"][0]["lastTokenRefreshDate"].is_string());

    // A second login; revoke it by reference, then revoke the current one: refresh → 21304.
    let (a2, r2, ref2) = api.login(&seal, NIP).await;
    let r = api
        .call(OperationId::ListAuthSessions, &[], Some(&a2), Body::None)
        .await;
    assert_eq!(r.json["items"].as_array().unwrap().len(), 2);
    let r = api
        .call(
            OperationId::RevokeAuthSession,
            &[&ref2],
            Some(&access2),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .call(OperationId::RefreshAccessToken, &[], Some(&r2), Body::None)
        .await;
    assert_eq!((r.status, r.code()), (400, 21304));
    let r = api
        .call(
            OperationId::RevokeCurrentAuthSession,
            &[],
            Some(&refresh),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204);
    let r = api
        .call(
            OperationId::RefreshAccessToken,
            &[],
            Some(&refresh),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21304));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_decide_415_and_chain_check_460() {
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");

    // No permission in another NIP's context: 415, and redeem is refused.
    let xml = api
        .signed_request(&seal, OTHER_NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    let (reference, op) = submit(&api, xml, "").await;
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["status"]["code"], 415, "{st}");
    assert_eq!(st["status"]["details"][0], "Brak przypisanych uprawnień");
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    assert_eq!((r.status, r.code()), (400, 21301));

    // A ZAW-FA grant makes it 200.
    api.testdata_grant(OTHER_NIP, ("Nip", NIP), &["InvoiceRead"])
        .await;
    let (access, _, _) = api.login(&seal, OTHER_NIP).await;

    // ... but InvoiceRead alone cannot open a session: 403 missing-permissions.
    let (pk, id) = api.mf_key("SymmetricKeyEncryption").await;
    let key = ksef_crypto::encryption::SessionKey::generate().unwrap();
    let info = key.encryption_info(&pk, Some(&id)).unwrap();
    let r = api
        .call(
            OperationId::OpenOnlineSession,
            &[],
            Some(&access),
            Body::Json(json!({
                "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
                "encryption": {"encryptedSymmetricKey": info.encrypted_symmetric_key,
                               "initializationVector": info.initialization_vector},
            })),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["reasonCode"], "missing-permissions");
    assert!(
        r.json["security"]["requiredAnyOfPermissions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p == "InvoiceWrite")
    );

    // Revoking the grant makes the next login 415 again.
    let r = api
        .call(
            OperationId::TestdataRevokePermissions,
            &[],
            None,
            Body::Json(json!({
                "contextIdentifier": {"type": "Nip", "value": OTHER_NIP},
                "authorizedIdentifier": {"type": "nip", "value": NIP},
            })),
        )
        .await;
    assert_eq!(r.status, 200);
    let xml = api
        .signed_request(&seal, OTHER_NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    let (reference, op) = submit(&api, xml, "").await;
    assert_eq!(
        api.auth_status(&reference, &op).await["status"]["code"],
        415
    );

    // A person (PESEL) linked to the NIP by /testdata/person owns the context; the personal
    // certificate here carries TINPL-NIP, so check the fingerprint path instead: no grant → 415,
    // a grant to the fingerprint → 200.
    let personal = signer("xmlsec1cli-ec-personal");
    let fp = personal.certificate().fingerprint_sha256_hex();
    let xml = api
        .signed_request(
            &personal,
            OTHER_NIP,
            SubjectIdentifierType::CertificateFingerprint,
        )
        .await;
    let (reference, op) = submit(&api, xml, "").await;
    assert_eq!(
        api.auth_status(&reference, &op).await["status"]["code"],
        415
    );
    api.testdata_grant(OTHER_NIP, ("Fingerprint", &fp), &["InvoiceWrite"])
        .await;
    let xml = api
        .signed_request(
            &personal,
            OTHER_NIP,
            SubjectIdentifierType::CertificateFingerprint,
        )
        .await;
    let (reference, op) = submit(&api, xml, "").await;
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["status"]["code"], 200, "{st}");

    // verifyCertificateChain=true rejects self-signed certificates (460).
    let xml = api
        .signed_request(&seal, NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    let (reference, op) = submit(&api, xml, "?verifyCertificateChain=true").await;
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["status"]["code"], 460, "{st}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ksef_token_submission_is_checked() {
    let (sim, api) = start().await;
    let (pk, id) = api.mf_key("KsefTokenEncryption").await;
    let (_, sym_id) = api.mf_key("SymmetricKeyEncryption").await;
    let ch = api.challenge().await;
    let ts = ch["timestampMs"].as_i64().unwrap();
    let token = format!(
        "20251010-EC-1DCE3E3000-12ECB5B36E-45|nip-{NIP}|{}",
        "ab".repeat(32)
    );
    let enc = ksef_crypto::encryption::encrypt_ksef_token(&token, ts, &pk).unwrap();
    let body = |challenge: &str, pkid: &str| {
        json!({
            "challenge": challenge,
            "contextIdentifier": {"type": "Nip", "value": NIP},
            "encryptedToken": enc,
            "publicKeyId": pkid,
        })
    };
    // The other usage's key id: 21470.
    let r = api
        .call(
            OperationId::AuthKsefToken,
            &[],
            None,
            Body::Json(body(ch["challenge"].as_str().unwrap(), &sym_id)),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21470));
    let r = api
        .call(
            OperationId::AuthKsefToken,
            &[],
            None,
            Body::Json(body(ch["challenge"].as_str().unwrap(), &id)),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let op = r.json["authenticationToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    // No KSeF token is known to the simulator yet: 450.
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["status"]["code"], 450, "{st}");
    assert_eq!(st["authenticationMethod"], "Token");
    // Unknown challenge: 21111.
    let r = api
        .call(
            OperationId::AuthKsefToken,
            &[],
            None,
            Body::Json(body("20250101-CR-0000000000-0000000000-00", &id)),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21111));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ksef_token_lifecycle_and_token_authentication() {
    let (sim, api) = start().await;
    let api = &api;
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;

    let generate = |perms: serde_json::Value, bearer: String| async move {
        api.call(
            OperationId::GenerateToken,
            &[],
            Some(&bearer),
            Body::Json(json!({"permissions": perms, "description": "token testowy"})),
        )
        .await
    };
    let r = generate(json!(["InvoiceWrite", "InvoiceRead"]), access.clone()).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let token = r.json["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with(&format!("{reference}|nip-{NIP}|")));
    // Pending → Active.
    let mut status = String::new();
    for _ in 0..200 {
        let r = api
            .call(
                OperationId::TokenStatus,
                &[&reference],
                Some(&access),
                Body::None,
            )
            .await;
        status = r.json["status"].as_str().unwrap().to_owned();
        if status == "Active" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(status, "Active");
    let r = api
        .call_q(
            OperationId::ListTokens,
            &[],
            "?status=Active&description=testowy",
            Some(&access),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.json["tokens"].as_array().unwrap().len(), 1);
    let r = api
        .call_q(
            OperationId::ListTokens,
            &[],
            "?status=Revoked",
            Some(&access),
            Body::None,
            &[],
        )
        .await;
    assert!(r.json["tokens"].as_array().unwrap().is_empty());

    // Authenticate with the token.
    let token_login = |token: String| async move {
        let (pk, id) = api.mf_key("KsefTokenEncryption").await;
        let ch = api.challenge().await;
        let enc = ksef_crypto::encryption::encrypt_ksef_token(
            &token,
            ch["timestampMs"].as_i64().unwrap(),
            &pk,
        )
        .unwrap();
        let r = api
            .call(
                OperationId::AuthKsefToken,
                &[],
                None,
                Body::Json(json!({
                    "challenge": ch["challenge"],
                    "contextIdentifier": {"type": "Nip", "value": NIP},
                    "encryptedToken": enc,
                    "publicKeyId": id,
                })),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
        let op = r.json["authenticationToken"]["token"]
            .as_str()
            .unwrap()
            .to_owned();
        (api.auth_status(&reference, &op).await, op)
    };
    let (st, op) = token_login(token.clone()).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    let token_access = r.json["accessToken"]["token"].as_str().unwrap().to_owned();

    // The token's permissions bound the session: it can send invoices; the UPO names the token.
    let (session, key) = api.open_session(&token_access).await;
    let r = api
        .send(&token_access, &session, &key, &invoice(NIP, "TOK-1"))
        .await;
    let inv = api
        .invoice_final(
            &token_access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(inv["status"]["code"], 200, "{inv}");
    let upo = reqwest::get(inv["upoDownloadUrl"].as_str().unwrap())
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let upo = ksef_model::upo::Upo::parse(&upo).unwrap();
    assert_eq!(
        upo.authentication.proof,
        ksef_model::upo::UpoAuthProof::KsefTokenReference(reference.parse().unwrap())
    );
    // ... but cannot mint a token with CredentialsManage it does not carry: 26001.
    let r = generate(json!(["CredentialsManage"]), token_access.clone()).await;
    assert_eq!((r.status, r.code()), (400, 26001));

    // An active token encrypted with another time than the challenge's timestampMs: 450
    // "Nieprawidłowy czas tokena" (the challenge itself is valid and gets used up).
    let (pk, id) = api.mf_key("KsefTokenEncryption").await;
    let ch = api.challenge().await;
    let ts = ch["timestampMs"].as_i64().unwrap();
    let enc = ksef_crypto::encryption::encrypt_ksef_token(&token, ts - 1, &pk).unwrap();
    let r = api
        .call(
            OperationId::AuthKsefToken,
            &[],
            None,
            Body::Json(json!({
                "challenge": ch["challenge"],
                "contextIdentifier": {"type": "Nip", "value": NIP},
                "encryptedToken": enc,
                "publicKeyId": id,
            })),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let st = api
        .auth_status(
            r.json["referenceNumber"].as_str().unwrap(),
            r.json["authenticationToken"]["token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["status"]["code"], 450, "{st}");
    assert_eq!(st["status"]["details"][0], "Nieprawidłowy czas tokena");
    // The same token with the right time still works (the token itself was fine).
    let (st, _) = token_login(token.clone()).await;
    assert_eq!(st["status"]["code"], 200, "{st}");

    // Revoked: token authentication ends in 450.
    let r = api
        .call(
            OperationId::RevokeToken,
            &[&reference],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204);
    let (st, _) = token_login(token).await;
    assert_eq!(st["status"]["code"], 450, "{st}");
    assert_eq!(st["status"]["details"][0], "Token unieważniony");
    sim.shutdown().await;
}

/// The PEF template for the seller `nip`.
fn pef_invoice(nip: &str, number: &str) -> Vec<u8> {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/invoices/invoice-template-fa-3-pef.xml"
    ))
    .unwrap()
    .replace("#supplier_nip#", &format!("PL{nip}"))
    .replace("#buyer_nip#", OTHER_NIP)
    .replace("#invoice_number#", number)
    .replace("#issue_date#", "2026-01-15")
    .replace("#due_date#", "2026-02-15")
    .replace("#buyer_reference#", "REF-1")
    .replace("#compliant#", "")
    .replace("#iban#", "PL61109010140000071219812874")
    .into_bytes()
}

/// Opens an online session of `form` (systemCode, schemaVersion, value); the raw response and
/// the session key.
async fn open_online(
    api: &Api,
    access: &str,
    form: (&str, &str, &str),
) -> (Resp, ksef_crypto::encryption::SessionKey) {
    let (pk, id) = api.mf_key("SymmetricKeyEncryption").await;
    let key = ksef_crypto::encryption::SessionKey::generate().unwrap();
    let info = key.encryption_info(&pk, Some(&id)).unwrap();
    let r = api
        .call(
            OperationId::OpenOnlineSession,
            &[],
            Some(access),
            Body::Json(json!({
                "formCode": {"systemCode": form.0, "schemaVersion": form.1, "value": form.2},
                "encryption": {
                    "encryptedSymmetricKey": info.encrypted_symmetric_key,
                    "initializationVector": info.initialization_vector,
                    "publicKeyId": info.public_key_id,
                },
            })),
        )
        .await;
    (r, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peppol_provider_sends_pef_only_for_sellers_that_authorised_it() {
    use ksef_model::auth_request::{AuthTokenRequest, ContextIdentifier};
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");
    let (seller, _, _) = api.login(&seal, NIP).await;

    // The provider signs in to its PeppolId context with its certificate: PeppolSignature,
    // and it may send PEF invoices there.
    let provider_id = "PPL654321";
    let ch = api.challenge().await;
    let req = AuthTokenRequest::builder(
        ch["challenge"].as_str().unwrap().parse().unwrap(),
        ContextIdentifier::PeppolId(provider_id.parse().unwrap()),
    )
    .build()
    .unwrap();
    let xml = ksef_crypto::xades::sign(&req.to_xml().unwrap(), &signer("xmlsec1cli-ec-personal"))
        .unwrap();
    let (reference, op) = submit(&api, xml, "").await;
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    assert_eq!(st["authenticationMethod"], "PeppolSignature");
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let provider = r.json["accessToken"]["token"].as_str().unwrap().to_owned();

    // PefInvoiceWrite covers PEF sessions only: FA(3) and batch are refused (403).
    let (r, _) = open_online(&api, &provider, ("FA (3)", "1-0E", "FA")).await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(r.json["reasonCode"], "missing-permissions");
    let r = api
        .call(
            OperationId::OpenBatchSession,
            &[],
            Some(&provider),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);

    // Without the seller's PefInvoicing authorization a PEF invoice for it is 410.
    let (r, key) = open_online(&api, &provider, ("PEF (3)", "2-1", "PEF")).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let session = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let send = |number: &'static str| {
        let (api, provider, session, key) = (&api, &provider, &session, &key);
        async move {
            let r = api
                .send(provider, session, key, &pef_invoice(NIP, number))
                .await;
            assert_eq!(r.status, 202, "{:?}", r.json);
            api.invoice_final(
                provider,
                session,
                r.json["referenceNumber"].as_str().unwrap(),
            )
            .await
        }
    };
    let st = send("PEF/1").await;
    assert_eq!(st["status"]["code"], 410, "{st}");

    // The seller authorises the provider; now the provider's PEF invoice is accepted.
    let r = api
        .call(
            OperationId::GrantAuthorizationPermissions,
            &[],
            Some(&seller),
            Body::Json(json!({
                "subjectIdentifier": {"type": "PeppolId", "value": provider_id},
                "permission": "PefInvoicing",
                "description": "Dostawca usług Peppol",
                "subjectDetails": {"fullName": "Dostawca Peppol Sp. z o.o."},
            })),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let op_ref = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let mut code = 100;
    for _ in 0..500 {
        let r = api
            .call(
                OperationId::PermissionOperationStatus,
                &[&op_ref],
                Some(&seller),
                Body::None,
            )
            .await;
        code = r.json["status"]["code"].as_i64().unwrap();
        if code != 100 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert_eq!(code, 200);
    let st = send("PEF/2").await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    // …but not for another seller that did not authorise it.
    let r = api
        .send(&provider, &session, &key, &pef_invoice(OTHER_NIP, "PEF/3"))
        .await;
    let st = api
        .invoice_final(
            &provider,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["status"]["code"], 410, "{st}");
    sim.shutdown().await;
}

/// Redeems the tokens of a finished operation: (access, refresh).
async fn redeem(api: &Api, reference: &str, op: &str) -> (String, String) {
    let st = api.auth_status(reference, op).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(op), Body::None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    (
        r.json["accessToken"]["token"].as_str().unwrap().to_owned(),
        r.json["refreshToken"]["token"].as_str().unwrap().to_owned(),
    )
}

/// `GET /auth/sessions` with `access`: the status, and the problem body of a 403.
async fn use_access(api: &Api, access: &str) -> (u16, serde_json::Value) {
    let r = api
        .call(OperationId::ListAuthSessions, &[], Some(access), Body::None)
        .await;
    (r.status, r.json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_policy_binds_tokens_to_allowed_ips() {
    use ksef_model::auth_request::{AuthTokenRequest, ContextIdentifier};
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");
    // The client's address as the simulator sees it (tests call over loopback).
    let client_ip = api.challenge().await["clientIp"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(client_ip, "127.0.0.1");

    let xades_login = |policy: &'static str| {
        let (api, seal) = (&api, &seal);
        async move {
            let ch = api.challenge().await;
            let mut b = AuthTokenRequest::builder(
                ch["challenge"].as_str().unwrap().parse().unwrap(),
                ContextIdentifier::Nip(NIP.parse().unwrap()),
            );
            for entry in policy.split_whitespace() {
                b = if entry.contains('/') {
                    b.allow_mask(entry.parse().unwrap())
                } else if entry.contains('-') {
                    b.allow_range(entry.parse().unwrap())
                } else {
                    b.allow_ip(entry.parse().unwrap())
                };
            }
            let xml =
                ksef_crypto::xades::sign(&b.build().unwrap().to_xml().unwrap(), seal).unwrap();
            let (reference, op) = submit(api, xml, "").await;
            // The operation token is not bound: status and redeem work from anywhere.
            redeem(api, &reference, &op).await
        }
    };

    // AllowedIps 10.0.0.1, calls from 127.0.0.1: 403 ip-not-allowed with the caller's address,
    // for the access token and for the refresh token alike.
    let (access, refresh) = xades_login("10.0.0.1").await;
    let (status, body) = use_access(&api, &access).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["reasonCode"], "ip-not-allowed");
    assert_eq!(body["security"]["clientIp"], client_ip.as_str());
    assert_eq!(
        body["detail"],
        "Żądanie pochodzi z adresu IP innego niż wskazany podczas uwierzytelnienia."
    );
    let r = api
        .call(
            OperationId::RefreshAccessToken,
            &[],
            Some(&refresh),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.json);
    assert_eq!(r.json["reasonCode"], "ip-not-allowed");
    // A call that needs permissions is refused for the address, not for permissions.
    let r = api
        .call(OperationId::ListTokens, &[], Some(&access), Body::None)
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["reasonCode"], "ip-not-allowed");

    // Policies that allow 127.0.0.1: the address itself, a range, a mask (host bits ignored),
    // or any one entry of several.
    for policy in [
        "127.0.0.1",
        "127.0.0.0-127.0.0.5",
        "127.9.9.9/8",
        "10.0.0.1 192.168.0.0-192.168.0.255 127.0.0.1/32",
    ] {
        let (access, refresh) = xades_login(policy).await;
        let (status, body) = use_access(&api, &access).await;
        assert_eq!(status, 200, "{policy}: {body}");
        let r = api
            .call(
                OperationId::RefreshAccessToken,
                &[],
                Some(&refresh),
                Body::None,
            )
            .await;
        assert_eq!(r.status, 200, "{policy}: {:?}", r.json);
    }
    // …and policies that do not: a range ending just below, a network next to it.
    for policy in ["126.0.0.0-127.0.0.0", "127.0.0.2/31", "128.0.0.0/1"] {
        let (access, _) = xades_login(policy).await;
        let (status, body) = use_access(&api, &access).await;
        assert_eq!(status, 403, "{policy}: {body}");
        assert_eq!(body["reasonCode"], "ip-not-allowed", "{policy}");
    }

    // The KSeF-token JSON `authorizationPolicy` binds the same way.
    let (owner, _) = xades_login("").await;
    let r = api
        .call(
            OperationId::GenerateToken,
            &[],
            Some(&owner),
            Body::Json(json!({"permissions": ["InvoiceRead"], "description": "token IP"})),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let token_ref = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let token = r.json["token"].as_str().unwrap().to_owned();
    let mut active = false;
    for _ in 0..200 {
        let r = api
            .call(
                OperationId::TokenStatus,
                &[&token_ref],
                Some(&owner),
                Body::None,
            )
            .await;
        if r.json["status"] == "Active" {
            active = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(active);
    let (pk, id) = api.mf_key("KsefTokenEncryption").await;
    let token_login = |policy: serde_json::Value| {
        let (api, pk, id, token) = (&api, &pk, &id, &token);
        async move {
            let ch = api.challenge().await;
            let enc = ksef_crypto::encryption::encrypt_ksef_token(
                token,
                ch["timestampMs"].as_i64().unwrap(),
                pk,
            )
            .unwrap();
            api.call(
                OperationId::AuthKsefToken,
                &[],
                None,
                Body::Json(json!({
                    "challenge": ch["challenge"],
                    "contextIdentifier": {"type": "Nip", "value": NIP},
                    "encryptedToken": enc,
                    "publicKeyId": id,
                    "authorizationPolicy": policy,
                })),
            )
            .await
        }
    };
    for (policy, allowed) in [
        (json!({"allowedIps": {"ip4Masks": ["10.0.0.0/8"]}}), false),
        (
            json!({"allowedIps": {"ip4Addresses": ["10.0.0.1"], "ip4Ranges": ["127.0.0.1-127.0.0.1"]}}),
            true,
        ),
        (json!({"allowedIps": {"ip4Addresses": ["127.0.0.1"]}}), true),
        // No address listed: no restriction.
        (json!({"allowedIps": null}), true),
    ] {
        let r = token_login(policy.clone()).await;
        assert_eq!(r.status, 202, "{policy}: {:?}", r.json);
        let (access, _) = redeem(
            &api,
            r.json["referenceNumber"].as_str().unwrap(),
            r.json["authenticationToken"]["token"].as_str().unwrap(),
        )
        .await;
        let (status, body) = use_access(&api, &access).await;
        if allowed {
            assert_eq!(status, 200, "{policy}: {body}");
        } else {
            assert_eq!(status, 403, "{policy}: {body}");
            assert_eq!(body["reasonCode"], "ip-not-allowed");
        }
    }
    // Entries outside the spec's patterns or more than 10 of a kind: 21405.
    let eleven: Vec<String> = (1..=11).map(|i| format!("10.0.0.{i}")).collect();
    for policy in [
        json!({"allowedIps": {"ip4Addresses": ["127.0.0.01"]}}),
        json!({"allowedIps": {"ip4Ranges": ["127.0.0.5-127.0.0.1"]}}),
        json!({"allowedIps": {"ip4Masks": ["127.0.0.0/33"]}}),
        json!({"allowedIps": {"ip4Addresses": eleven}}),
    ] {
        let r = token_login(policy.clone()).await;
        assert_eq!((r.status, r.code()), (400, 21405), "{policy}: {:?}", r.json);
    }
    sim.shutdown().await;
}
