//! Logins a user makes with their own credentials — certificate and key files, a PKCS#12 bundle
//! — against the in-process simulator, and the 24 h MF public-key refresh (`public_key_ttl`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use std::time::Duration;

use ksef::crypto::keys::{KeyKind, PrivateKey};
use ksef::model::operations::OperationId;
use ksef::model::{ContextIdentifier, Nip};
use ksef::{AuthenticatedClient, KsefClient, PollOptions};
use ksef_sim::faults::{FaultPlan, FaultRule};

const NIP: &str = "5265877635";

async fn sim() -> checked::CheckedSim {
    ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap()
}

fn builder(base: &str) -> ksef::KsefClientBuilder {
    KsefClient::builder_for_url(base).poll_options(PollOptions {
        initial_delay: Duration::from_millis(10),
        ..Default::default()
    })
}

fn context() -> ContextIdentifier {
    ContextIdentifier::Nip(NIP.parse::<Nip>().unwrap())
}

/// A fresh key and a self-signed seal certificate for the NIP (what a company's seal holds).
fn seal(kind: KeyKind) -> (PrivateKey, ksef::crypto::cert::Certificate) {
    let key = PrivateKey::generate(kind).unwrap();
    let cert = ksef::crypto::cert::test_seal(&key, "ksef-rs login", NIP).unwrap();
    (key, cert)
}

/// The login works: an authenticated call succeeds and lists this login as the current one.
async fn assert_logged_in(auth: &AuthenticatedClient) {
    use futures_util::TryStreamExt as _;
    let sessions: Vec<_> = auth.auth_sessions().try_collect().await.unwrap();
    let current: Vec<_> = sessions
        .iter()
        .filter(|s| s.is_current == Some(true))
        .collect();
    assert_eq!(current.len(), 1, "{sessions:?}");
    assert_eq!(&current[0].reference_number, auth.reference_number());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xades_files_logs_in_with_pem_and_der_files() {
    let sim = sim().await;
    let client = builder(&sim.base_url()).build().unwrap();
    let dir = tempfile::tempdir().unwrap();

    // PEM certificate and PKCS#8 PEM key (P-256).
    let (key, cert) = seal(KeyKind::P256);
    let (cert_pem, key_pem) = (dir.path().join("seal.pem"), dir.path().join("seal.key"));
    std::fs::write(&cert_pem, cert.to_pem()).unwrap();
    std::fs::write(&key_pem, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let auth = client
        .auth()
        .xades_files(&cert_pem, &key_pem, None, context())
        .await
        .unwrap();
    assert_logged_in(&auth).await;

    // DER certificate and PKCS#8 DER key (RSA).
    let (key, cert) = seal(KeyKind::Rsa2048);
    let (cert_der, key_der) = (dir.path().join("seal.cer"), dir.path().join("seal.der"));
    std::fs::write(&cert_der, cert.der()).unwrap();
    std::fs::write(&key_der, key.to_pkcs8_der().unwrap().as_slice()).unwrap();
    let auth = client
        .auth()
        .xades_files(&cert_der, &key_der, None, context())
        .await
        .unwrap();
    assert_logged_in(&auth).await;

    // A key that does not belong to the certificate is refused before any call; a missing
    // file names its path.
    let err = client
        .auth()
        .xades_files(&cert_pem, &key_der, None, context())
        .await
        .unwrap_err();
    assert!(matches!(err, ksef::Error::Signer(_)), "{err}");
    let missing = dir.path().join("missing.pem");
    let err = client
        .auth()
        .xades_files(&missing, &key_pem, None, context())
        .await
        .unwrap_err();
    assert!(matches!(err, ksef::Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.pem"), "{err}");
    sim.shutdown().await;
}

/// A PKCS#12 bundle written the way CA tools write one (PBES2/AES-256, HMAC-SHA256 MAC).
fn pkcs12(key: &PrivateKey, cert: &ksef::crypto::cert::Certificate, password: &str) -> Vec<u8> {
    let chain = p12_keystore::PrivateKeyChain::new(
        b"ksef-rs".to_vec(),
        p12_keystore::PrivateKey::from_der(&key.to_pkcs8_der().unwrap()).unwrap(),
        [p12_keystore::Certificate::from_der(cert.der()).unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("seal", p12_keystore::KeyStoreEntry::PrivateKeyChain(chain));
    store.writer(password).write().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn xades_pkcs12_logs_in_with_a_bundle() {
    let sim = sim().await;
    let client = builder(&sim.base_url()).build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    for kind in [KeyKind::P256, KeyKind::Rsa2048] {
        let (key, cert) = seal(kind);
        let path = dir.path().join(format!("seal-{kind:?}.p12"));
        std::fs::write(&path, pkcs12(&key, &cert, "test1234")).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let auth = client
            .auth()
            .xades_pkcs12(&bytes, "test1234", context())
            .await
            .unwrap();
        assert_logged_in(&auth).await;
        let err = client
            .auth()
            .xades_pkcs12(&bytes, "wrong", context())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("password"), "{err}");
    }
    sim.shutdown().await;
}

/// How many requests of each operation the simulator saw, from its fault report (the rules
/// inject nothing; they only count what they match).
async fn counted(sim: &ksef_sim::SimulatorHandle) -> (u64, u64) {
    let report: serde_json::Value =
        reqwest::get(format!("http://{}/__sim/faults", sim.local_addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    let matched = |i: usize| report["perRule"][i]["matched"].as_u64().unwrap();
    (matched(0), matched(1))
}

fn counting_plan() -> FaultPlan {
    FaultPlan::new(1)
        .rule(FaultRule::operation(OperationId::PublicKeyCertificates))
        .rule(FaultRule::operation(OperationId::OpenOnlineSession))
}

/// Opens a session before and after the simulator rotates its symmetric key; returns the
/// counted key fetches and session opens.
async fn open_around_a_rotation(
    client: &KsefClient,
    sim: &ksef_sim::SimulatorHandle,
) -> (u64, u64) {
    let auth = client
        .auth()
        .test_certificate(
            &ksef::TestIdentity::Seal {
                name: "ksef-rs keys".into(),
                nip: NIP.into(),
            },
            context(),
        )
        .await
        .unwrap();
    sim.set_faults(counting_plan());
    let first = auth.sessions().open_online().await.unwrap();
    assert_eq!(counted(sim).await, (1, 1));
    sim.rotate_key(ksef_sim::KeyUsage::SymmetricKeyEncryption)
        .await
        .unwrap();
    let second = auth.sessions().open_online().await.unwrap();
    let counts = counted(sim).await;
    sim.clear_faults();
    assert_ne!(first.reference_number(), second.reference_number());
    counts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_public_keys_are_fetched_again_before_use() {
    let sim = sim().await;
    // TTL zero: the cached keys are always stale, so the rotated key is fetched before the
    // second open — one open request, no 21470.
    let fresh = builder(&sim.base_url())
        .public_key_ttl(Duration::ZERO)
        .build()
        .unwrap();
    assert_eq!(
        open_around_a_rotation(&fresh, &sim).await,
        (2, 2),
        "a second fetch of the keys and a single open"
    );
    // Baseline, the default 24 h TTL: the cached (rotated-out) key is used, KSeF answers 21470,
    // the keys are fetched again and the open repeated.
    let cached = builder(&sim.base_url()).build().unwrap();
    assert_eq!(
        open_around_a_rotation(&cached, &sim).await,
        (2, 3),
        "the stale key costs a refused open"
    );
    sim.shutdown().await;
}
