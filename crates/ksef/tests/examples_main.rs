//! Every example end to end as a user runs it: `main`'s wiring (`--sim`, `KSEF_SIM`, `KSEF_ENV`,
//! `KSEF_NIP`, the certificate files, output directories) through each example's `run(args, env)`,
//! which `main` calls with the real arguments and `std::env::var`. The other test files call the
//! examples' flow functions and check their results in detail; here the point is the entry.
#![allow(clippy::unwrap_used, clippy::expect_used)]
// `offline_qr` and `sync` include `send_invoice` and `download_export` themselves, as their
// binaries do; here those two are also loaded on their own, to run their `run`.
#![allow(clippy::duplicate_mod)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use std::collections::HashMap;
use std::env::VarError;

use ksef::model::operations::OperationId;
use ksef_sim::faults::{FaultPlan, FaultRule};

#[path = "../examples/batch.rs"]
#[allow(dead_code)]
mod batch;
#[path = "../examples/certificate_enrollment.rs"]
#[allow(dead_code)]
mod certificate_enrollment;
#[path = "../examples/download_export.rs"]
#[allow(dead_code)]
mod download_export;
#[path = "../examples/offline_qr.rs"]
#[allow(dead_code)]
mod offline_qr;
#[path = "../examples/permissions.rs"]
#[allow(dead_code)]
mod permissions;
#[path = "../examples/send_fa.rs"]
#[allow(dead_code)]
mod send_fa;
#[path = "../examples/send_invoice.rs"]
#[allow(dead_code)]
mod send_invoice;
#[path = "../examples/sync.rs"]
#[allow(dead_code)]
mod sync;
#[path = "../examples/tokens.rs"]
#[allow(dead_code)]
mod tokens;

const NIP: &str = "5265877635";

/// An environment holding exactly `vars`.
fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Result<String, VarError> + use<> {
    let vars: HashMap<String, String> = vars
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    move |name| vars.get(name).cloned().ok_or(VarError::NotPresent)
}

fn args(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| (*s).to_owned()).collect()
}

fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_invoice_runs_with_sim_flag_and_with_ksef_sim() {
    send_invoice::run(args(&["--sim"]), env(&[])).await.unwrap();
    send_invoice::run(args(&[]), env(&[("KSEF_SIM", "1")]))
        .await
        .unwrap();
}

/// `KSEF_ENV` pointing at a simulator the test started, with the user's own certificate and key
/// files (`KSEF_CERT`, `KSEF_KEY`): the example signs in with them and sends one invoice there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_invoice_runs_against_ksef_env_with_certificate_files() {
    let sim = ksef_sim::Simulator::builder()
        .start_checked()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let key = ksef::crypto::keys::PrivateKey::generate(ksef::crypto::keys::KeyKind::P256).unwrap();
    let cert = ksef::crypto::cert::test_seal(&key, "ksef-rs example", NIP).unwrap();
    let (cert_path, key_path) = (dir.path().join("seal.pem"), dir.path().join("seal.key"));
    std::fs::write(&cert_path, cert.to_pem()).unwrap();
    std::fs::write(&key_path, key.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    sim.set_faults(
        FaultPlan::new(1)
            .rule(FaultRule::operation(OperationId::AuthXadesSignature))
            .rule(FaultRule::operation(OperationId::SendInvoice)),
    );
    let base = sim.base_url();
    send_invoice::run(
        args(&[]),
        env(&[
            ("KSEF_ENV", &base),
            ("KSEF_NIP", NIP),
            ("KSEF_CERT", cert_path.to_str().unwrap()),
            ("KSEF_KEY", key_path.to_str().unwrap()),
        ]),
    )
    .await
    .unwrap();
    // The requests reached the test's simulator: one login, one invoice.
    let report: serde_json::Value =
        reqwest::get(format!("http://{}/__sim/faults", sim.local_addr()))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    assert_eq!(report["perRule"][0]["matched"], 1, "{report}");
    assert_eq!(report["perRule"][1]["matched"], 1, "{report}");
    sim.shutdown().await;
}

/// Without `--sim` and without `KSEF_NIP` each example stops before any network call and says
/// what to set.
#[tokio::test]
async fn examples_without_sim_ask_for_their_settings() {
    let none = || env(&[]);
    let errors = [
        send_invoice::run(args(&[]), none())
            .await
            .unwrap_err()
            .to_string(),
        batch::run(args(&[]), none()).await.unwrap_err().to_string(),
        download_export::run(args(&[]), none())
            .await
            .unwrap_err()
            .to_string(),
        permissions::run(args(&[]), none())
            .await
            .unwrap_err()
            .to_string(),
        sync::run(args(&[]), none()).await.unwrap_err().to_string(),
        tokens::run(args(&[]), none())
            .await
            .unwrap_err()
            .to_string(),
    ];
    for e in errors {
        assert!(e.contains("set KSEF_NIP"), "{e}");
    }
    let out = tempfile::tempdir().unwrap();
    let out_env = || env(&[("KSEF_OUT", out.path().to_str().unwrap())]);
    for e in [
        certificate_enrollment::run(args(&[]), out_env())
            .await
            .unwrap_err()
            .to_string(),
        offline_qr::run(args(&[]), out_env())
            .await
            .unwrap_err()
            .to_string(),
    ] {
        assert!(e.contains("set KSEF_NIP"), "{e}");
    }
    // A KSEF_ENV that is no environment is refused as such.
    let e = tokens::run(
        args(&[]),
        env(&[("KSEF_ENV", "nowhere"), ("KSEF_NIP", NIP)]),
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("nowhere"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_runs_with_sim() {
    batch::run(args(&["--sim", "5"]), env(&[])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_enrollment_runs_with_sim() {
    let out = tempfile::tempdir().unwrap();
    certificate_enrollment::run(
        args(&["--sim"]),
        env(&[("KSEF_OUT", out.path().to_str().unwrap())]),
    )
    .await
    .unwrap();
    let written = files(out.path());
    for f in ["auth.cert.pem", "auth.key.pem"] {
        assert!(written.iter().any(|w| w == f), "{written:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_export_runs_with_sim() {
    download_export::run(args(&["--sim"]), env(&[]))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_qr_runs_with_sim() {
    let out = tempfile::tempdir().unwrap();
    offline_qr::run(
        args(&[]),
        env(&[
            ("KSEF_SIM", "1"),
            ("KSEF_OUT", out.path().to_str().unwrap()),
        ]),
    )
    .await
    .unwrap();
    assert_eq!(
        files(out.path()),
        ["kod1-offline.svg", "kod1.svg", "kod2.svg"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_runs_with_sim() {
    permissions::run(args(&["--sim"]), env(&[])).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_fa_runs() {
    send_fa::run().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_runs_with_sim_into_the_given_directory() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("invoices");
    sync::run(args(&["--sim", target.to_str().unwrap()]), env(&[]))
        .await
        .unwrap();
    let xml = files(&target)
        .into_iter()
        .filter(|f| f.ends_with(".xml"))
        .count();
    assert_eq!(xml, 3, "the three invoices the example sends first");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_runs_with_sim() {
    tokens::run(args(&["--sim"]), env(&[])).await.unwrap();
}
