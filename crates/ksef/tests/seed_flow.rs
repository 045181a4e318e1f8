//! Runs the `send_invoice` example's seed flow against the in-process simulator, then checks the
//! pieces the flow does not: token refresh, the 401 replay, save/restore, revoke, test-only
//! guards and typed invoice failures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

#[path = "../examples/send_invoice.rs"]
#[allow(dead_code)]
mod example;

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use example::{Login, invoice_xml, seed_flow};
use ksef::model::{ContextIdentifier, Environment, Nip};
use ksef::secrecy::ExposeSecret;
use ksef::{Error, KsefClient, TestIdentity};

const NIP: &str = "5265877635";

async fn sim() -> (checked::CheckedSim, KsefClient) {
    let sim = ksef_sim::Simulator::builder()
        .seed(7)
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    (sim, client)
}

fn seal(nip: &Nip) -> TestIdentity {
    TestIdentity::Seal {
        name: "ksef-rs test".into(),
        nip: nip.to_string(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_seed_flow_against_the_simulator() {
    let (sim, client) = sim().await;
    let nip: Nip = NIP.parse().unwrap();
    let out = seed_flow(&client, &nip, Login::TestCertificate, "SEED/1")
        .await
        .unwrap();
    assert_eq!(out.ksef_number.seller_nip(), nip);
    assert_eq!(out.accepted, 1);
    assert!(out.session_upo_pages >= 1);
    let upo = ksef::model::Upo::parse(&out.invoice_upo).unwrap();
    assert_eq!(upo.documents[0].ksef_number, out.ksef_number);
    ksef::crypto::xades::verify(&out.invoice_upo).unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_refresh_replay_save_restore_and_revoke() {
    let (sim, client) = sim().await;
    let nip: Nip = NIP.parse().unwrap();
    let ctx = ContextIdentifier::Nip(nip.clone());
    let auth = client
        .auth()
        .test_certificate(&seal(&nip), ctx)
        .await
        .unwrap();
    let first = auth
        .access_token()
        .await
        .unwrap()
        .expose_secret()
        .to_owned();

    // Near expiry: concurrent tasks refresh exactly once and all get the new token.
    auth.expire_access_token_for_tests(None).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let a = auth.clone();
            tokio::spawn(async move { a.access_token().await.unwrap().expose_secret().to_owned() })
        })
        .collect();
    let mut tokens = Vec::new();
    for t in tasks {
        tokens.push(t.await.unwrap());
    }
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "one refresh shared by all tasks"
    );
    assert_ne!(tokens[0], first);

    // A 401 (a bad access token) is cured by one refresh and the call replayed.
    auth.expire_access_token_for_tests(Some("not-a-valid-token"))
        .await;
    let session = auth.sessions().open_online().await.unwrap();

    // Save and restore: the restored handle works without a new login.
    let saved = auth.save().await;
    let json = serde_json::to_string(&saved).unwrap();
    assert!(!format!("{saved:?}").contains(saved.access_token.expose_secret()));
    let restored = client
        .auth()
        .restore(serde_json::from_str(&json).unwrap())
        .unwrap();
    let st = restored
        .sessions()
        .status(session.reference_number())
        .await
        .unwrap();
    assert_eq!(st.status.code, 100);
    // Restoring into another environment is refused.
    let other = KsefClient::builder_for_url("http://127.0.0.1:1/v2")
        .build()
        .unwrap();
    assert!(matches!(
        other.auth().restore(serde_json::from_str(&json).unwrap()),
        Err(Error::SavedStateUnusable(_))
    ));

    // A rejected invoice (seller NIP ≠ context) is a typed failure with its status code.
    let other_nip: Nip = "7010002139".parse().unwrap();
    let sent = session
        .send_invoice(invoice_xml(&other_nip, "X/1").unwrap())
        .await
        .unwrap();
    let err = sent.wait().await.unwrap_err();
    assert!(matches!(err, Error::InvoiceRejected { .. }), "{err}");
    assert_eq!(err.status_code(), Some(410));
    // Bad input is refused before any call.
    assert!(matches!(
        session.send_invoice(b"\xEF\xBB\xBF<x/>").await,
        Err(Error::InvalidInput(_))
    ));
    let (_, closed) = auth
        .sessions()
        .with_online(ksef::model::FormCode::Fa3, async |s| {
            s.send_invoice(invoice_xml(&nip, "SCOPED/1").unwrap())
                .await?
                .wait()
                .await
        })
        .await
        .unwrap();
    assert_eq!(closed.successful_invoice_count(), 1);
    use futures_util::TryStreamExt;
    let failed: Vec<_> = session.failed_invoices().try_collect().await.unwrap();
    assert_eq!(failed.len(), 1);
    drop(session);

    // The active auth sessions list the current one.
    let listed: Vec<_> = auth.auth_sessions().try_collect().await.unwrap();
    assert!(
        listed
            .iter()
            .any(|i| &i.reference_number == auth.reference_number() && i.is_current == Some(true))
    );

    // Revoke: the tokens stop working.
    let probe = restored.clone();
    auth.revoke().await.unwrap();
    let err = probe.refresh().await.unwrap_err();
    // KSeF answers 400 21304 ("authentication revoked") or 401.
    assert!(matches!(err.http_status(), Some(400 | 401)), "{err}");
    assert!(!err.is_retryable());
    sim.shutdown().await;
}

#[tokio::test]
async fn test_only_helpers_refuse_demo_and_production() {
    for env in [Environment::Demo, Environment::Production] {
        let client = KsefClient::new(env).unwrap();
        let nip: Nip = NIP.parse().unwrap();
        let err = client
            .auth()
            .test_certificate(&seal(&nip), ContextIdentifier::Nip(nip.clone()))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::TestOnly { .. }), "{err}");
        assert!(matches!(client.testdata(), Err(Error::TestOnly { .. })));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_public_key_is_refetched_after_21470() {
    use ksef::crypto::cert::Certificate;
    use ksef::crypto::public_key::{KeyUsage, MfPublicKey};
    let (sim, client) = sim().await;
    let nip: Nip = NIP.parse().unwrap();
    let auth = client
        .auth()
        .test_certificate(&seal(&nip), ContextIdentifier::Nip(nip.clone()))
        .await
        .unwrap();
    // A key KSeF does not know (a fixture RSA certificate) sits in the cache.
    let pem = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/xades/xmlsec1cli-rsa-seal.cert.pem"
    ))
    .unwrap();
    let now = time::OffsetDateTime::now_utc();
    let stale = MfPublicKey::new(
        Certificate::from_pem(&pem).unwrap(),
        vec![KeyUsage::SymmetricKeyEncryption],
        now - time::Duration::days(1),
        now + time::Duration::days(1),
    )
    .unwrap();
    let stale_id = stale.public_key_id().to_owned();
    client.replace_public_keys_for_tests(vec![stale]).await;
    // Opening a session gets 21470, refetches the keys and succeeds with the real key.
    let session = auth.sessions().open_online().await.unwrap();
    let fresh = client
        .public_key(&KeyUsage::SymmetricKeyEncryption)
        .await
        .unwrap();
    assert_ne!(fresh.public_key_id(), stale_id);
    let sent = session
        .send_invoice(invoice_xml(&nip, "KEY/1").unwrap())
        .await
        .unwrap();
    sent.wait().await.unwrap();
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scoped_session_closes_when_the_body_fails_and_upo_by_reference_matches() {
    let (sim, client) = sim().await;
    let nip: Nip = NIP.parse().unwrap();
    let auth = client
        .auth()
        .test_certificate(&seal(&nip), ContextIdentifier::Nip(nip.clone()))
        .await
        .unwrap();
    let mut seen = None;
    let err = auth
        .sessions()
        .with_online(ksef::model::FormCode::Fa3, async |s| {
            let sent = s.send_invoice(invoice_xml(&nip, "BODY/1").unwrap()).await?;
            let accepted = sent.wait().await?;
            let by_ref = sent.upo().await?;
            let by_number = s.upo_by_ksef_number(&accepted.ksef_number).await?;
            assert_eq!(by_ref.bytes, by_number.bytes);
            assert_eq!(by_ref.upo.documents[0].ksef_number, accepted.ksef_number);
            seen = Some(s.reference_number().clone());
            Err::<(), _>(Error::InvalidInput("the body failed".into()))
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("the body failed"));
    // The session was closed anyway and processed.
    let status = auth.sessions().status(&seen.unwrap()).await.unwrap();
    assert_eq!(status.status.code, 200);
    assert_eq!(status.successful_invoice_count, Some(1));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ksef_token_fails_with_typed_status_450() {
    let (sim, client) = sim().await;
    let nip: Nip = NIP.parse().unwrap();
    // Encrypted with the MF KsefTokenEncryption key and accepted for processing; KSeF then
    // finds no such token and the status ends as 450.
    let token = ksef::secrecy::SecretString::from(
        "20250626-EC-2F14610000-242991F8C9-B4|nip-5265877635|0123456789abcdef0123456789abcdef",
    );
    let err = client
        .auth()
        .ksef_token(&token, ContextIdentifier::Nip(nip))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AuthenticationFailed(_)), "{err}");
    assert_eq!(err.status_code(), Some(450));
    sim.shutdown().await;
}
