//! KSeF certificates, limits, session listing and Peppol through the SDK against the in-process
//! simulator: the `certificate_enrollment` example end to end (enroll, log in with the KSeF
//! certificate, Offline certificate and KOD II, query, revoke), then the failure paths.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

#[path = "../examples/certificate_enrollment.rs"]
#[allow(dead_code)]
mod example;

use futures_util::TryStreamExt;
use ksef::crypto::keys::{KeyKind, PrivateKey};
use ksef::model::api::{
    CertificateListItemStatus, KsefCertificateType, QueryCertificatesRequest, SessionType,
};
use ksef::model::operations::ListSessionsQuery;
use ksef::model::{ContextIdentifier, Nip};
use ksef::{EnrollmentRequest, Error, KsefClient, TestIdentity};

const NIP: &str = "5265877635";

async fn sim() -> (checked::CheckedSim, KsefClient) {
    let sim = ksef_sim::Simulator::builder()
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    (sim, client)
}

fn seal(nip: &str) -> TestIdentity {
    TestIdentity::Seal {
        name: "ksef-rs test".into(),
        nip: nip.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_enrollment_flow_against_the_simulator() {
    let (sim, client) = sim().await;
    let out = tempfile::tempdir().unwrap();
    let nip: Nip = NIP.parse().unwrap();
    let run = example::enrollment_flow(&client, &nip, out.path())
        .await
        .unwrap();
    assert_eq!(run.listed, 2);
    assert!(run.kod2_url.contains(&run.offline_serial));
    assert!(out.path().join("auth.cert.pem").exists());

    // The revoked Authentication certificate no longer logs in.
    let key = PrivateKey::from_pem(
        &std::fs::read(out.path().join("auth.key.pem")).unwrap(),
        None,
    )
    .unwrap();
    let cert = ksef::crypto::cert::Certificate::from_pem(
        &std::fs::read(out.path().join("auth.cert.pem")).unwrap(),
    )
    .unwrap();
    assert_eq!(cert.serial_hex(), run.authentication_serial);
    let signer = ksef::crypto::signer::InMemorySigner::new(key, cert).unwrap();
    let err = client
        .auth()
        .xades(&signer, ContextIdentifier::Nip(nip))
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(460), "{err}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_certificates_limits_and_failures() {
    let (sim, client) = sim().await;
    let ctx = ContextIdentifier::Nip(NIP.parse().unwrap());
    let auth = client
        .auth()
        .test_certificate(&seal(NIP), ctx.clone())
        .await
        .unwrap();
    let certs = auth.certificates();

    // Bad names are refused before any call.
    let key = PrivateKey::generate(KeyKind::P256).unwrap();
    let err = certs
        .obtain(
            &EnrollmentRequest::new("no", KsefCertificateType::Offline),
            &key,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");

    // An Offline certificate cannot log in (460).
    let offline = certs
        .obtain(
            &EnrollmentRequest::new("Offline 1", KsefCertificateType::Offline),
            &key,
        )
        .await
        .unwrap();
    assert_eq!(offline.certificate_type, KsefCertificateType::Offline);
    let err = client
        .auth()
        .xades(&offline.signer(key.clone()).unwrap(), ctx.clone())
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(460), "{err}");

    // Another subject enrolling the same public key: EnrollmentFailed with status 400.
    let other = client
        .auth()
        .test_certificate(
            &seal("7010002139"),
            ContextIdentifier::Nip("7010002139".parse().unwrap()),
        )
        .await
        .unwrap();
    let err = other
        .certificates()
        .obtain(
            &EnrollmentRequest::new("Cudzy klucz", KsefCertificateType::Authentication),
            &key,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::EnrollmentFailed { .. }), "{err}");
    assert_eq!(err.status_code(), Some(400));

    // Limits: subject limits and the certificate limit through test overrides → 25007.
    let subject = auth.limits().subject().await.unwrap();
    assert_eq!(subject.certificate.unwrap().max_certificates, Some(100));
    let limits: ksef::model::api::SetSubjectLimitsRequest = serde_json::from_value(
        serde_json::json!({"subjectIdentifierType": "Nip", "certificate": {"maxCertificates": 1}}),
    )
    .unwrap();
    auth.test_overrides()
        .unwrap()
        .set_certificate_limits(&limits)
        .await
        .unwrap();
    let l = certs.limits().await.unwrap();
    assert!(!l.can_request);
    let err = certs
        .obtain(
            &EnrollmentRequest::new("Za duzo", KsefCertificateType::Authentication),
            &PrivateKey::generate(KeyKind::P256).unwrap(),
        )
        .await
        .unwrap_err();
    assert_eq!(err.ksef_code().map(|c| c.code()), Some(25007), "{err}");

    // Query by status; revoke twice → 25009.
    let active: Vec<_> = certs
        .query(QueryCertificatesRequest {
            status: Some(CertificateListItemStatus::Active),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(active.len(), 1);
    certs.revoke(&offline.serial_number, None).await.unwrap();
    let err = certs
        .revoke(&offline.serial_number, None)
        .await
        .unwrap_err();
    assert_eq!(err.ksef_code().map(|c| c.code()), Some(25009), "{err}");

    // Context limits, rate limits, session list, Peppol.
    let ctx_limits = auth.limits().context().await.unwrap();
    assert_eq!(ctx_limits.online_session.max_invoices, 10000);
    let rl = auth.limits().rate_limits().await.unwrap();
    assert_eq!(rl.other.per_second, 10);
    let session = auth.sessions().open_online().await.unwrap();
    let listed: Vec<_> = auth
        .session_list(ListSessionsQuery::new(SessionType::Online))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(&listed[0].reference_number, session.reference_number());
    let providers: Vec<_> = client.peppol_providers().try_collect().await.unwrap();
    assert!(providers.is_empty());
    sim.shutdown().await;
}
