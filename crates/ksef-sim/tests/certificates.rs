//! KSeF certificates over HTTP: limits, enrollment data, CSR enrollment (100 → 200), retrieve,
//! query, XAdES authentication with the issued certificate, Offline certificates refused for
//! authentication but good for KOD II, revocation, the failure codes; limit overrides and
//! Peppol providers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

mod common;

use std::time::Duration;

use common::*;
use ksef_crypto::cert::{Certificate, DistinguishedName};
use ksef_crypto::csr::CertificateRequest;
use ksef_crypto::keys::{KeyKind, PrivateKey};
use ksef_crypto::signer::InMemorySigner;
use ksef_model::auth_request::{AuthTokenRequest, ContextIdentifier, SubjectIdentifierType};
use ksef_model::operations::OperationId;
use serde_json::{Value, json};

fn dn_from(data: &Value) -> DistinguishedName {
    let opt = |k: &str| data[k].as_str().map(str::to_owned);
    DistinguishedName {
        common_name: data["commonName"].as_str().unwrap().to_owned(),
        country_name: data["countryName"].as_str().unwrap().to_owned(),
        given_name: opt("givenName"),
        surname: opt("surname"),
        serial_number: opt("serialNumber"),
        unique_identifier: opt("uniqueIdentifier"),
        organization_name: opt("organizationName"),
        organization_identifier: opt("organizationIdentifier"),
    }
}

async fn enroll(api: &Api, access: &str, csr: &CertificateRequest, name: &str, kind: &str) -> Resp {
    api.call(
        OperationId::EnrollCertificate,
        &[],
        Some(access),
        Body::Json(
            json!({"certificateName": name, "certificateType": kind, "csr": csr.to_base64()}),
        ),
    )
    .await
}

/// Polls an enrollment until it leaves 100.
async fn enrollment_final(api: &Api, access: &str, reference: &str) -> Value {
    for _ in 0..500 {
        let r = api
            .call(
                OperationId::CertificateEnrollmentStatus,
                &[reference],
                Some(access),
                Body::None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        if r.json["status"]["code"] != 100 {
            return r.json;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("enrollment stayed 100");
}

/// Enrolls a certificate for `key`; returns (serial, certificate).
async fn issue(
    api: &Api,
    access: &str,
    key: &PrivateKey,
    name: &str,
    kind: &str,
) -> (String, Certificate) {
    let data = api
        .call(
            OperationId::CertificateEnrollmentData,
            &[],
            Some(access),
            Body::None,
        )
        .await;
    assert_eq!(data.status, 200, "{:?}", data.json);
    let csr = CertificateRequest::new(&dn_from(&data.json), key).unwrap();
    let r = enroll(api, access, &csr, name, kind).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let st = enrollment_final(api, access, r.json["referenceNumber"].as_str().unwrap()).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let serial = st["certificateSerialNumber"].as_str().unwrap().to_owned();
    let r = api
        .call(
            OperationId::RetrieveCertificates,
            &[],
            Some(access),
            Body::Json(json!({"certificateSerialNumbers": [serial]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let item = &r.json["certificates"][0];
    assert_eq!(item["certificateType"], kind);
    assert_eq!(item["certificateName"], name);
    let cert = Certificate::from_base64_der(item["certificate"].as_str().unwrap()).unwrap();
    assert_eq!(cert.serial_hex(), serial);
    (serial, cert)
}

/// Submits a XAdES login with `signer` and returns the final auth status object.
async fn xades_status(api: &Api, signer: &InMemorySigner, query: &str) -> Value {
    let xml = api
        .signed_request(signer, NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    let r = api.submit_xades(xml, query).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let op = r.json["authenticationToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    api.auth_status(&reference, &op).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_lifecycle_and_authentication() {
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    let get = |op| api.call(op, &[], Some(&access), Body::None);

    let r = get(OperationId::CertificateLimits).await;
    assert_eq!(r.json["canRequest"], true);
    assert_eq!(
        r.json["certificate"],
        json!({"limit": 100, "remaining": 100})
    );
    assert_eq!(r.json["enrollment"]["limit"], 300);

    // The enrollment data are the seal certificate's subject.
    let data = get(OperationId::CertificateEnrollmentData).await.json;
    assert_eq!(data["organizationIdentifier"], format!("VATPL-{NIP}"));
    assert_eq!(data["countryName"], "PL");
    assert!(data.get("givenName").is_none());

    // Enroll an Authentication certificate (P-256), then log in with it, also with
    // verifyCertificateChain=true (it chains to the simulator's CA, not self-signed).
    let key = PrivateKey::generate(KeyKind::P256).unwrap();
    let (serial, cert) = issue(
        &api,
        &access,
        &key,
        "Certyfikat logowania",
        "Authentication",
    )
    .await;
    assert!(!cert.is_self_issued());
    assert_eq!(
        cert.subject_attribute("2.5.4.97").unwrap(),
        format!("VATPL-{NIP}")
    );
    let ksef_signer = InMemorySigner::new(key, cert.clone()).unwrap();
    let st = xades_status(&api, &ksef_signer, "").await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    // KSeF reports a KSeF-certificate login as InternalCertificate, not as the seal its subject
    // attributes resemble.
    assert_eq!(st["authenticationMethod"], "InternalCertificate", "{st}");
    assert_eq!(
        st["authenticationMethodInfo"],
        json!({"category": "XadesSignature", "code": "xades.internal-certificate",
               "displayName": "Certyfikat KSeF"})
    );
    let st = xades_status(&api, &seal, "").await;
    assert_eq!(st["authenticationMethod"], "QualifiedSeal", "{st}");
    assert_eq!(
        st["authenticationMethodInfo"]["code"],
        "xades.qualified-seal"
    );
    let st = xades_status(&api, &ksef_signer, "?verifyCertificateChain=true").await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let (access2, _, _) = api.login(&ksef_signer, NIP).await;
    // …and the certificate shows as used.
    let r = api
        .call(
            OperationId::QueryCertificates,
            &[],
            Some(&access2),
            Body::Json(json!({"certificateSerialNumber": serial})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let item = &r.json["certificates"][0];
    assert_eq!(item["status"], "Active");
    assert_eq!(item["type"], "Authentication");
    assert_eq!(
        item["subjectIdentifier"],
        json!({"type": "Nip", "value": NIP})
    );
    assert!(item["lastUseDate"].is_string());

    // An Offline certificate (RSA) cannot authenticate, but signs KOD II links that verify
    // with the issued certificate's key.
    let rsa = PrivateKey::from_pem(
        &std::fs::read(format!(
            "{}/../../fixtures/xades/xmlsec1cli-rsa-personal.key.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        None,
    )
    .unwrap();
    let (offline_serial, offline) =
        issue(&api, &access, &rsa, "Certyfikat offline", "Offline").await;
    let st = xades_status(
        &api,
        &InMemorySigner::new(rsa, offline.clone()).unwrap(),
        "",
    )
    .await;
    assert_eq!(st["status"]["code"], 460, "{st}");
    let rsa = PrivateKey::from_pem(
        &std::fs::read(format!(
            "{}/../../fixtures/xades/xmlsec1cli-rsa-personal.key.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        None,
    )
    .unwrap();
    let link = ksef_crypto::qr::certificate_url(
        "https://qr-test.ksef.mf.gov.pl",
        ksef_crypto::qr::ContextType::Nip,
        NIP,
        NIP,
        &offline,
        &rsa,
        &[7u8; 32],
    )
    .unwrap();
    assert!(link.url.contains(&offline_serial));
    ksef_crypto::qr::verify_certificate_url(&link.url, &offline.public_key().unwrap()).unwrap();

    // Query: filters, paging, order (requestDate desc).
    let q = |body: Value, query: &'static str| {
        api.call_q(
            OperationId::QueryCertificates,
            &[],
            query,
            Some(&access),
            Body::Json(body),
            &[],
        )
    };
    let r = q(json!({}), "").await;
    assert_eq!(r.json["certificates"].as_array().unwrap().len(), 2);
    assert_eq!(r.json["hasMore"], false);
    let r = q(json!({"type": "Offline"}), "").await;
    assert_eq!(
        r.json["certificates"][0]["certificateSerialNumber"],
        offline_serial.as_str()
    );
    let r = q(json!({"name": "LOGOWANIA"}), "").await;
    assert_eq!(
        r.json["certificates"][0]["certificateSerialNumber"],
        serial.as_str()
    );
    let r = q(json!({}), "?pageSize=9").await;
    assert_eq!((r.status, r.code()), (400, 21405));
    let r = q(json!({"certificateSerialNumber": "nothex"}), "").await;
    assert_eq!((r.status, r.code()), (400, 21405));

    // Revoke: 204, then the status is Revoked, a second revoke is 25009, login fails (460).
    let r = api
        .call(
            OperationId::RevokeCertificate,
            &[&serial],
            Some(&access),
            Body::Json(json!({"revocationReason": "Superseded"})),
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    let r = q(json!({"status": "Revoked"}), "").await;
    assert_eq!(
        r.json["certificates"][0]["certificateSerialNumber"],
        serial.as_str()
    );
    let r = api
        .call(
            OperationId::RevokeCertificate,
            &[&serial],
            Some(&access),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 25009));
    let r = api
        .call(
            OperationId::RevokeCertificate,
            &["0123456789ABCDEF"],
            Some(&access),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 25008));
    let st = xades_status(&api, &ksef_signer, "").await;
    assert_eq!(st["status"]["code"], 460, "{st}");

    // Test data: expire the Offline certificate.
    let r = api
        .call(
            OperationId::TestdataUpdateCertificate,
            &[&offline_serial],
            Some(&access),
            Body::Json(json!({"validTo": "2020-01-01T00:00:00Z"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = q(json!({"status": "Expired"}), "").await;
    assert_eq!(
        r.json["certificates"][0]["certificateSerialNumber"],
        offline_serial.as_str()
    );
    let r = get(OperationId::CertificateLimits).await;
    assert_eq!(r.json["certificate"]["remaining"], 100);
    assert_eq!(r.json["enrollment"]["remaining"], 298);

    // The simulator checked each of these responses against the spec.
    assert!(sim.covered_responses().values().sum::<u64>() > 20);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_failures_and_limits() {
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-ec-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    let data = api
        .call(
            OperationId::CertificateEnrollmentData,
            &[],
            Some(&access),
            Body::None,
        )
        .await
        .json;
    let key = PrivateKey::generate(KeyKind::P256).unwrap();

    // A DN that differs from the enrollment data: 25003.
    let mut dn = dn_from(&data);
    dn.common_name = "Someone else".into();
    let csr = CertificateRequest::new(&dn, &key).unwrap();
    let r = enroll(&api, &access, &csr, "Zly podmiot", "Authentication").await;
    assert_eq!((r.status, r.code()), (400, 25003));
    // Not a CSR: 25004. A bad name: 21405.
    let r = api
        .call(
            OperationId::EnrollCertificate,
            &[],
            Some(&access),
            Body::Json(json!({"certificateName": "Certyfikat", "certificateType": "Authentication", "csr": "AAAA"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 25004));
    let good = CertificateRequest::new(&dn_from(&data), &key).unwrap();
    let r = enroll(&api, &access, &good, "zle/imie", "Authentication").await;
    assert_eq!((r.status, r.code()), (400, 21405));
    // A tampered CSR signature: 25004.
    let mut der = good.der().to_vec();
    let last = der.len() - 3;
    der[last] ^= 0x55;
    let r = api
        .call(
            OperationId::EnrollCertificate,
            &[],
            Some(&access),
            Body::Json(
                json!({"certificateName": "Certyfikat", "certificateType": "Authentication",
                              "csr": ksef_crypto::hash::base64(&der)}),
            ),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 25004));

    // Certificate limit lowered to one through test data: the second enrollment is 25007.
    let r = api
        .call(
            OperationId::TestdataSetCertificateLimits,
            &[],
            Some(&access),
            Body::Json(
                json!({"subjectIdentifierType": "Nip", "certificate": {"maxCertificates": 1}}),
            ),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = api
        .call(OperationId::SubjectLimits, &[], Some(&access), Body::None)
        .await;
    assert_eq!(r.json["certificate"]["maxCertificates"], 1);
    let r = enroll(&api, &access, &good, "Pierwszy", "Authentication").await;
    assert_eq!(r.status, 202);
    let st = enrollment_final(&api, &access, r.json["referenceNumber"].as_str().unwrap()).await;
    assert_eq!(st["status"]["code"], 200);
    let r = api
        .call(
            OperationId::CertificateLimits,
            &[],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.json["canRequest"], false);
    let r = enroll(&api, &access, &good, "Drugi", "Offline").await;
    assert_eq!((r.status, r.code()), (400, 25007));
    let r = api
        .call(
            OperationId::TestdataResetCertificateLimits,
            &[],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);

    // The same public key enrolled by another subject: accepted, then rejected (400).
    let other_key = PrivateKey::generate(KeyKind::P256).unwrap();
    let other = InMemorySigner::new(
        other_key.clone(),
        ksef_crypto::cert::test_seal(&other_key, "Inna Firma", OTHER_NIP).unwrap(),
    )
    .unwrap();
    let (other_access, _, _) = api.login(&other, OTHER_NIP).await;
    let other_data = api
        .call(
            OperationId::CertificateEnrollmentData,
            &[],
            Some(&other_access),
            Body::None,
        )
        .await
        .json;
    let csr = CertificateRequest::new(&dn_from(&other_data), &key).unwrap();
    let r = enroll(&api, &other_access, &csr, "Cudzy klucz", "Authentication").await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let st = enrollment_final(&api, &other_access, &reference).await;
    assert_eq!(st["status"]["code"], 400, "{st}");
    assert!(st.get("certificateSerialNumber").is_none());
    // Another subject's enrollment is not visible: 25005.
    let r = api
        .call(
            OperationId::CertificateEnrollmentStatus,
            &[&reference],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 25005));

    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_authenticated_callers_cannot_enroll_or_revoke() {
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    // Generate a token, wait until Active, authenticate with it.
    let r = api
        .call(
            OperationId::GenerateToken,
            &[],
            Some(&access),
            Body::Json(json!({"permissions": ["InvoiceRead"], "description": "token testowy"})),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let token = r.json["token"].as_str().unwrap().to_owned();
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    for _ in 0..500 {
        let s = api
            .call(
                OperationId::TokenStatus,
                &[&reference],
                Some(&access),
                Body::None,
            )
            .await;
        if s.json["status"] == "Active" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (pk, id) = api.mf_key("KsefTokenEncryption").await;
    let ch = api.challenge().await;
    let encrypted = ksef_crypto::encryption::encrypt_ksef_token(
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
                "encryptedToken": encrypted,
                "publicKeyId": id,
            })),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let op = r.json["authenticationToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let st = api
        .auth_status(r.json["referenceNumber"].as_str().unwrap(), &op)
        .await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    let token_access = r.json["accessToken"]["token"].as_str().unwrap().to_owned();

    let r = api
        .call(
            OperationId::CertificateEnrollmentData,
            &[],
            Some(&token_access),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 25001));
    let key = PrivateKey::generate(KeyKind::P256).unwrap();
    let dn = DistinguishedName::seal("Firma", NIP, "Firma").unwrap();
    let csr = CertificateRequest::new(&dn, &key).unwrap();
    let r = enroll(&api, &token_access, &csr, "Z tokenu", "Authentication").await;
    assert_eq!((r.status, r.code()), (400, 25002));
    let r = api
        .call(
            OperationId::RevokeCertificate,
            &["0123456789ABCDEF"],
            Some(&token_access),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["reasonCode"], "auth-method-not-allowed");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limit_overrides_and_peppol_providers() {
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    let call = |op, body| api.call(op, &[], Some(&access), body);

    // Session limits: override, read back, invalid values, reset.
    let limits =
        json!({"maxInvoiceSizeInMB": 2, "maxInvoiceWithAttachmentSizeInMB": 4, "maxInvoices": 50});
    let r = call(
        OperationId::TestdataSetSessionLimits,
        Body::Json(json!({"onlineSession": limits, "batchSession": limits})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = call(OperationId::ContextLimits, Body::None).await;
    assert_eq!(r.json["onlineSession"]["maxInvoices"], 50);
    let bad =
        json!({"maxInvoiceSizeInMB": 9, "maxInvoiceWithAttachmentSizeInMB": 4, "maxInvoices": 50});
    let r = call(
        OperationId::TestdataSetSessionLimits,
        Body::Json(json!({"onlineSession": bad, "batchSession": limits})),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    call(OperationId::TestdataResetSessionLimits, Body::None).await;
    let r = call(OperationId::ContextLimits, Body::None).await;
    assert_eq!(r.json["onlineSession"]["maxInvoices"], 10000);

    // Rate limits: override every group, read back, production profile restores defaults.
    let groups = [
        "onlineSession",
        "batchSession",
        "invoiceSend",
        "invoiceStatus",
        "sessionList",
        "sessionInvoiceList",
        "sessionMisc",
        "invoiceMetadata",
        "invoiceExport",
        "invoiceExportStatus",
        "invoiceDownload",
        "collectiveIdentifier",
        "other",
    ];
    let mut rl = serde_json::Map::new();
    for g in groups {
        rl.insert(
            g.into(),
            json!({"perSecond": 1, "perMinute": 2, "perHour": 3}),
        );
    }
    let r = call(
        OperationId::TestdataSetRateLimits,
        Body::Json(json!({"rateLimits": rl})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = call(OperationId::RateLimits, Body::None).await;
    assert_eq!(
        r.json["invoiceSend"],
        json!({"perSecond": 1, "perMinute": 2, "perHour": 3})
    );
    let r = call(OperationId::TestdataSetProductionRateLimits, Body::None).await;
    assert_eq!(r.status, 200);
    let r = call(OperationId::RateLimits, Body::None).await;
    assert_eq!(r.json["other"]["perSecond"], 10);

    // Peppol: empty at first; a provider registers by signing in with its certificate in a
    // PeppolId context.
    let r = api
        .call(OperationId::QueryPeppolProviders, &[], None, Body::None)
        .await;
    assert_eq!(r.json, json!({"peppolProviders": [], "hasMore": false}));
    let ch = api.challenge().await;
    let req = AuthTokenRequest::builder(
        ch["challenge"].as_str().unwrap().parse().unwrap(),
        ContextIdentifier::PeppolId("PPL123456".parse().unwrap()),
    )
    .build()
    .unwrap();
    let xml = ksef_crypto::xades::sign(&req.to_xml().unwrap(), &seal).unwrap();
    let r = api.submit_xades(xml, "").await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    // A provider's login in its PeppolId context is a Peppol signature.
    let st = api
        .auth_status(
            r.json["referenceNumber"].as_str().unwrap(),
            r.json["authenticationToken"]["token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["authenticationMethod"], "PeppolSignature", "{st}");
    assert_eq!(st["authenticationMethodInfo"]["category"], "XadesSignature");
    let r = api
        .call_q(
            OperationId::QueryPeppolProviders,
            &[],
            "?pageSize=10&pageOffset=0",
            None,
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.json["peppolProviders"][0]["id"], "PPL123456");
    let r = api
        .call_q(
            OperationId::QueryPeppolProviders,
            &[],
            "?pageSize=5",
            None,
            Body::None,
            &[],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_overrides_are_enforced() {
    let sim = ksef_sim::Simulator::builder()
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    let mut rl = serde_json::Map::new();
    for g in [
        "onlineSession",
        "batchSession",
        "invoiceSend",
        "invoiceStatus",
        "sessionList",
        "sessionInvoiceList",
        "sessionMisc",
        "invoiceMetadata",
        "invoiceExport",
        "invoiceExportStatus",
        "invoiceDownload",
        "collectiveIdentifier",
        "other",
    ] {
        rl.insert(
            g.into(),
            json!({"perSecond": 2, "perMinute": 100, "perHour": 1000}),
        );
    }
    let r = api
        .call(
            OperationId::TestdataSetRateLimits,
            &[],
            Some(&access),
            Body::Json(json!({"rateLimits": rl})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            api.call(OperationId::ContextLimits, &[], Some(&access), Body::None)
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 429]);
    // The production profile restores the catalogue's values (10/s for this group).
    let r = api
        .call(
            OperationId::TestdataSetProductionRateLimits,
            &[],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = api
        .call(OperationId::ContextLimits, &[], Some(&access), Body::None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // The low override again, then DELETE /testdata/rate-limits restores the defaults.
    let r = api
        .call(
            OperationId::TestdataSetRateLimits,
            &[],
            Some(&access),
            Body::Json(json!({"rateLimits": rl})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = api
        .call(
            OperationId::TestdataResetRateLimits,
            &[],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(
            api.call(OperationId::ContextLimits, &[], Some(&access), Body::None)
                .await
                .status,
        );
    }
    assert_eq!(statuses, [200, 200, 200]);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rsa_authentication_certificate_for_a_person_logs_in() {
    let (sim, api) = start().await;
    // A personal (TINPL) EC certificate enrolls an RSA-2048 Authentication certificate.
    let person = signer("xmlsec1cli-ec-personal");
    let (access, _, _) = api.login(&person, NIP).await;
    let data = api
        .call(
            OperationId::CertificateEnrollmentData,
            &[],
            Some(&access),
            Body::None,
        )
        .await
        .json;
    assert_eq!(data["serialNumber"], format!("TINPL-{NIP}"));
    assert!(data["givenName"].is_string() && data["surname"].is_string());
    let rsa = PrivateKey::from_pem(
        &std::fs::read(format!(
            "{}/../../fixtures/xades/xmlsec1cli-rsa-seal.key.pem",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap(),
        None,
    )
    .unwrap();
    let (_, cert) = issue(&api, &access, &rsa, "Logowanie RSA", "Authentication").await;
    let st = xades_status(&api, &InMemorySigner::new(rsa, cert).unwrap(), "").await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enrollment_status_retention_and_certificate_expiry_on_a_manual_clock() {
    let clock = ksef_sim::ManualClock::starting_now();
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    let key = PrivateKey::generate(KeyKind::P256).unwrap();
    let data = api
        .call(
            OperationId::CertificateEnrollmentData,
            &[],
            Some(&access),
            Body::None,
        )
        .await
        .json;
    let csr = CertificateRequest::new(&dn_from(&data), &key).unwrap();
    let r = enroll(&api, &access, &csr, "Na dwa lata", "Authentication").await;
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let st = enrollment_final(&api, &access, &reference).await;
    let serial = st["certificateSerialNumber"].as_str().unwrap().to_owned();
    let r = api
        .call(
            OperationId::RetrieveCertificates,
            &[],
            Some(&access),
            Body::Json(json!({"certificateSerialNumbers": [serial]})),
        )
        .await;
    let cert =
        Certificate::from_base64_der(r.json["certificates"][0]["certificate"].as_str().unwrap())
            .unwrap();
    let ksef_signer = InMemorySigner::new(key, cert).unwrap();

    // 31 days later the enrollment status is gone (410); the certificate still logs in.
    clock.advance(time::Duration::days(31));
    let (access, _, _) = api.login(&seal, NIP).await;
    let r = api
        .call(
            OperationId::CertificateEnrollmentStatus,
            &[&reference],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 410, "{:?}", r.json);
    let st = xades_status(&api, &ksef_signer, "").await;
    assert_eq!(st["status"]["code"], 200, "{st}");

    // Two years on it has expired: listed as Expired, refused at login (460).
    clock.advance(time::Duration::days(731));
    let r = api
        .call(
            OperationId::QueryCertificates,
            &[],
            Some(&access),
            Body::Json(json!({"status": "Expired"})),
        )
        .await;
    assert_eq!(r.status, 401, "the access token expired with the clock");
    let (access, _, _) = api.login(&seal, NIP).await;
    let r = api
        .call(
            OperationId::QueryCertificates,
            &[],
            Some(&access),
            Body::Json(json!({"status": "Expired"})),
        )
        .await;
    assert_eq!(
        r.json["certificates"][0]["certificateSerialNumber"],
        serial.as_str()
    );
    let st = xades_status(&api, &ksef_signer, "").await;
    assert_eq!(st["status"]["code"], 460, "{st}");
    sim.shutdown().await;
}
