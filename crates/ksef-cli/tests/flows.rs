//! The `ksef` binary against an in-process simulator over real HTTP: profiles, login kinds,
//! send, status, UPO, certificates, QR codes, and the bad-input paths with their exit codes.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may unwrap

use std::path::{Path, PathBuf};

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::{CheckedSim, StartChecked};

use assert_cmd::Command;
use predicates::prelude::*;
use serde_json::Value;

/// The Ministry's FA(3) template with `#nip#` and `#invoice_number#` placeholders.
const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

/// A simulator on its own runtime, a config dir, and a NIP; dropped at the end of a test.
struct Env {
    /// Dropped first (fields drop in order), while its runtime still runs: fails the test if
    /// any response did not match the spec.
    _sim: CheckedSim,
    _rt: tokio::runtime::Runtime,
    url: String,
    config: tempfile::TempDir,
    nip: String,
}

impl Env {
    fn start() -> Self {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let sim = rt
            .block_on(ksef_sim::Simulator::builder().start_checked())
            .unwrap();
        let url = sim.base_url();
        let nip = ksef_model::Nip::random(&mut rand::rng()).to_string();
        Self {
            _sim: sim,
            _rt: rt,
            url,
            config: tempfile::tempdir().unwrap(),
            nip,
        }
    }

    /// `ksef` pointed at the simulator (KSEF_ENV; `--env` overrides it) with the config dir set and no ambient KSEF_* variables.
    fn ksef(&self) -> Command {
        let mut c = Command::cargo_bin("ksef").unwrap();
        c.env_remove("KSEF_ENV")
            .env_remove("KSEF_PROFILE")
            .env_remove("KSEF_TOKEN")
            .env("KSEF_CONFIG_DIR", self.config.path())
            .env("KSEF_ENV", &self.url);
        c
    }

    fn login_test_certificate(&self, profile: &str) {
        self.ksef()
            .args(["auth", "login", "--test-certificate", "--nip", &self.nip])
            .args(["--profile", profile])
            .assert()
            .success();
    }

    fn invoice(&self, dir: &Path, number: &str) -> PathBuf {
        let today = time::OffsetDateTime::now_utc().date();
        let xml = TEMPLATE
            .replace("#nip#", &self.nip)
            .replace("#invoice_number#", number)
            .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"));
        let path = dir.join(format!("{number}.xml"));
        std::fs::write(&path, xml).unwrap();
        path
    }
}

fn json(out: &std::process::Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn login_status_refresh_logout_with_a_test_certificate() {
    let env = Env::start();
    let out = env
        .ksef()
        .args([
            "--json",
            "auth",
            "login",
            "--test-certificate",
            "--nip",
            &env.nip,
        ])
        .assert()
        .success()
        .get_output()
        .clone();
    let v = json(&out);
    assert_eq!(v["profile"], "default");
    assert_eq!(v["nip"], env.nip.as_str());
    assert_eq!(v["method"], "test-certificate");
    assert_eq!(v["env"], env.url.as_str());

    // The profile file holds the tokens and is private.
    let file = env.config.path().join("profiles/default.json");
    let saved: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(saved["auth"]["refreshToken"].as_str().unwrap().len() > 20);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "profile mode {mode:o}");
    }

    let v = json(
        env.ksef()
            .args(["--json", "auth", "status"])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["active"], true);
    let before = v["accessValidUntil"].as_str().unwrap().to_owned();

    std::thread::sleep(std::time::Duration::from_millis(1100));
    let v = json(
        env.ksef()
            .args(["--json", "auth", "refresh"])
            .assert()
            .success()
            .get_output(),
    );
    assert_ne!(
        v["accessValidUntil"].as_str().unwrap(),
        before,
        "refreshed and saved"
    );

    let v = json(
        env.ksef()
            .args(["--json", "auth", "list"])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["profiles"][0]["profile"], "default");

    let v = json(
        env.ksef()
            .args(["--json", "auth", "logout"])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["revoked"], true);
    assert!(!file.exists());
    env.ksef()
        .args(["auth", "status"])
        .assert()
        .code(4)
        .stderr(predicate::str::contains("ksef auth login"));
}

#[test]
fn cert_test_then_xades_login_send_status_upo() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let cert = dir.path().join("cert.pem");
    let key = dir.path().join("key.pem");
    env.ksef()
        .args(["cert", "test", "--nip", &env.nip, "--cert-out"])
        .arg(&cert)
        .arg("--key-out")
        .arg(&key)
        .assert()
        .success();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    env.ksef()
        .args([
            "auth",
            "login",
            "--nip",
            &env.nip,
            "--profile",
            "seal",
            "--cert",
        ])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .assert()
        .success()
        .stdout(predicate::str::contains("xades"));

    let a = env.invoice(dir.path(), "CLI-1");
    let b = env.invoice(dir.path(), "CLI-2");
    let upo_dir = dir.path().join("upo");
    let out = env
        .ksef()
        .args(["--json", "--profile", "seal", "send", "--upo-dir"])
        .arg(&upo_dir)
        .arg(&a)
        .arg(&b)
        .assert()
        .success()
        .get_output()
        .clone();
    let v = json(&out);
    assert_eq!(v["accepted"], 2);
    assert_eq!(v["failed"], 0);
    let session = v["sessionReferenceNumber"].as_str().unwrap().to_owned();
    let first = &v["invoices"][0];
    let ksef_number = first["ksefNumber"].as_str().unwrap().to_owned();
    let invoice_ref = first["referenceNumber"].as_str().unwrap().to_owned();
    assert!(ksef_number.starts_with(&env.nip));
    let upo = std::fs::read_to_string(first["upo"].as_str().unwrap()).unwrap();
    assert!(upo.contains(&ksef_number));
    assert_eq!(v["sessionUpo"].as_array().unwrap().len(), 1);

    // Session status and invoice status.
    let v = json(
        env.ksef()
            .args(["--json", "--profile", "seal", "status", &session])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["status"]["code"], 200);
    assert_eq!(v["successfulInvoiceCount"], 2);
    env.ksef()
        .args([
            "--profile",
            "seal",
            "status",
            &session,
            "--invoice",
            &invoice_ref,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(&ksef_number));

    // UPO by KSeF number to stdout, by reference to a file, the session UPO to a directory.
    env.ksef()
        .args([
            "--profile",
            "seal",
            "upo",
            "--session",
            &session,
            "--ksef-number",
            &ksef_number,
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains(&ksef_number));
    let by_ref = dir.path().join("by-ref.xml");
    env.ksef()
        .args([
            "--profile",
            "seal",
            "upo",
            "--session",
            &session,
            "--invoice",
            &invoice_ref,
            "-o",
        ])
        .arg(&by_ref)
        .assert()
        .success();
    assert!(
        std::fs::read_to_string(&by_ref)
            .unwrap()
            .contains(&ksef_number)
    );
    let v = json(
        env.ksef()
            .args([
                "--json",
                "--profile",
                "seal",
                "upo",
                "--session",
                &session,
                "-o",
            ])
            .arg(dir.path().join("session-upo"))
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["files"].as_array().unwrap().len(), 1);

    // KOD I for the accepted invoice, NIP and date read from the XML.
    let svg = dir.path().join("kod1.svg");
    let v = json(
        env.ksef()
            .args([
                "--json",
                "qr",
                "invoice",
                "--ksef-number",
                &ksef_number,
                "-o",
            ])
            .arg(&svg)
            .arg(&a)
            .assert()
            .success()
            .get_output(),
    );
    let url = v["url"].as_str().unwrap();
    assert!(url.contains(&format!("/invoice/{}/", env.nip)), "{url}");
    assert!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .contains(&ksef_number)
    );
}

#[test]
fn a_rejected_invoice_exits_1_and_reports_the_file() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, "<Faktura>not FA(3)</Faktura>").unwrap();
    let out = env
        .ksef()
        .args(["--json", "send"])
        .arg(&bad)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let v = json(&out);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["invoices"][0]["ok"], false);
    assert!(String::from_utf8_lossy(&out.stderr).contains("rejected"));
}

#[test]
fn token_is_read_from_the_environment_or_stdin() {
    let env = Env::start();
    // No token anywhere: exit 3 before any network call.
    env.ksef()
        .args(["auth", "login", "--token", "--nip", &env.nip])
        .write_stdin("")
        .assert()
        .code(3)
        .stderr(predicate::str::contains("KSEF_TOKEN"));
    // A token KSeF does not know: authentication fails (exit 1), nothing saved.
    env.ksef()
        .args(["auth", "login", "--token", "--nip", &env.nip])
        .write_stdin("20251010-EC-0000000000-0000000000-00|nip-5265877635|0000\n")
        .assert()
        .failure()
        .stderr(predicate::str::starts_with("ksef: "));
    assert!(!env.config.path().join("profiles/default.json").exists());
}

#[test]
fn cert_csr_for_a_person_and_a_seal() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let v = json(
        env.ksef()
            .current_dir(dir.path())
            .args([
                "--json",
                "cert",
                "csr",
                "--given-name",
                "Jan",
                "--surname",
                "Kowalski",
                "--pesel",
                "80010112340",
            ])
            .assert()
            .success()
            .get_output(),
    );
    assert!(v["subject"].as_str().unwrap().contains("PNOPL-80010112340"));
    let csr = std::fs::read_to_string(dir.path().join("ksef.csr")).unwrap();
    assert!(csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"));
    // Reusing a key: no new key file.
    let v = json(
        env.ksef()
            .current_dir(dir.path())
            .args([
                "--json",
                "cert",
                "csr",
                "--nip",
                &env.nip,
                "--key",
                "ksef-key.pem",
                "--out",
                "seal.csr",
            ])
            .assert()
            .success()
            .get_output(),
    );
    assert!(v["key"].is_null());
    assert!(
        v["subject"]
            .as_str()
            .unwrap()
            .contains(&format!("VATPL-{}", env.nip))
    );
}

#[test]
fn bad_input_gives_one_line_and_a_documented_exit_code() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let one_line = |out: &std::process::Output| {
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("ksef: "), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    };

    // Unknown profile: 4.
    let out = env
        .ksef()
        .args([
            "--profile",
            "nobody",
            "status",
            "20250626-SO-2F14610000-242991F8C9-B4",
        ])
        .assert()
        .code(4)
        .get_output()
        .clone();
    one_line(&out);
    // Invalid profile name: 3.
    env.ksef()
        .args(["--profile", "../x", "auth", "status"])
        .assert()
        .code(3);
    // Invalid NIP: 3.
    let out = env
        .ksef()
        .args(["auth", "login", "--test-certificate", "--nip", "123"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    one_line(&out);
    // Missing certificate file: 3.
    let out = env
        .ksef()
        .args([
            "auth",
            "login",
            "--nip",
            &env.nip,
            "--cert",
            "/no/such/cert.pem",
            "--key",
            "/no/such/key.pem",
        ])
        .assert()
        .code(3)
        .get_output()
        .clone();
    one_line(&out);
    // Unreadable (garbage) key: 3.
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("k.pem");
    env.ksef()
        .args(["cert", "test", "--nip", &env.nip, "--cert-out"])
        .arg(&cert)
        .arg("--key-out")
        .arg(&key)
        .assert()
        .success();
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    )
    .unwrap();
    let out = env
        .ksef()
        .args(["auth", "login", "--nip", &env.nip, "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(&garbage)
        .assert()
        .code(3)
        .get_output()
        .clone();
    one_line(&out);
    // Keys and bundles of ksef-crypto's tests (password test1234).
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../ksef-crypto/tests/data");
    // Wrong PKCS#12 password: 3.
    let out = env
        .ksef()
        .env("P12_PW", "definitely-wrong")
        .args([
            "auth",
            "login",
            "--nip",
            &env.nip,
            "--key-password-env",
            "P12_PW",
            "--pkcs12",
        ])
        .arg(data.join("p256-personal.p12"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("password"))
        .get_output()
        .clone();
    one_line(&out);
    // Encrypted key without a password: 3, naming the flag to use.
    let out = env
        .ksef()
        .args(["auth", "login", "--nip", &env.nip, "--cert"])
        .arg(&cert)
        .arg("--key")
        .arg(data.join("p256.pkcs8.enc.pem"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--key-password-env"))
        .get_output()
        .clone();
    one_line(&out);
    // Wrong key password: 3.
    env.ksef()
        .env("KEY_PW", "wrong")
        .args([
            "auth",
            "login",
            "--nip",
            &env.nip,
            "--key-password-env",
            "KEY_PW",
            "--cert",
        ])
        .arg(&cert)
        .arg("--key")
        .arg(data.join("p256.pkcs8.enc.pem"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("wrong password"));
    // Right password, but the key is not the certificate's: 3.
    env.ksef()
        .env("KEY_PW", "test1234")
        .args([
            "auth",
            "login",
            "--nip",
            &env.nip,
            "--key-password-env",
            "KEY_PW",
            "--cert",
        ])
        .arg(&cert)
        .arg("--key")
        .arg(data.join("p256.pkcs8.enc.pem"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("does not match"));
    // Missing invoice file: 3, before a login is even needed.
    env.login_test_certificate("default");
    let out = env
        .ksef()
        .args(["send", "/no/such/invoice.xml"])
        .assert()
        .code(3)
        .get_output()
        .clone();
    one_line(&out);
    // Password variable not set: 3.
    env.ksef()
        .args([
            "auth",
            "login",
            "--nip",
            &env.nip,
            "--key-password-env",
            "KSEF_CLI_NO_SUCH_VAR",
            "--cert",
        ])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("KSEF_CLI_NO_SUCH_VAR"));
    // Test certificate on production: refused before any network call, 3.
    env.ksef()
        .args([
            "--env",
            "prod",
            "--profile",
            "p",
            "auth",
            "login",
            "--test-certificate",
            "--nip",
            &env.nip,
        ])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("TEST"));
    // Using a profile against another environment: 4.
    env.ksef()
        .args(["--env", "prod", "auth", "status"])
        .assert()
        .code(4);
}

#[test]
fn server_down_exits_5() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("ksef")
        .unwrap()
        .env("KSEF_CONFIG_DIR", config.path())
        .args([
            "--env",
            &format!("http://127.0.0.1:{port}/v2"),
            "auth",
            "login",
            "--test-certificate",
            "--nip",
            "5265877635",
        ])
        .assert()
        .code(5)
        .get_output()
        .clone();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("could not connect"), "{err}");
}

#[test]
fn qr_codes_kod1_and_kod2_as_svg_and_png() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    let invoice = env.invoice(dir.path(), "QR-1");
    // KOD I for an offline invoice (no KSeF number yet), PNG, on TEST's QR host.
    let png = dir.path().join("kod1.png");
    let v = json(
        env.ksef()
            .args([
                "--json", "--env", "test", "qr", "invoice", "--format", "png", "-o",
            ])
            .arg(&png)
            .arg(&invoice)
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["code"], "KOD I");
    let url = v["url"].as_str().unwrap();
    assert!(
        url.starts_with(&format!(
            "https://qr-test.ksef.mf.gov.pl/invoice/{}/",
            env.nip
        )),
        "{url}"
    );
    assert!(
        std::fs::read(&png)
            .unwrap()
            .starts_with(b"\x89PNG\r\n\x1a\n")
    );

    // KOD II signed with an (here: self-signed) offline certificate's key.
    let cert = dir.path().join("offline.pem");
    let key = dir.path().join("offline-key.pem");
    env.ksef()
        .args(["cert", "test", "--nip", &env.nip, "--cert-out"])
        .arg(&cert)
        .arg("--key-out")
        .arg(&key)
        .assert()
        .success();
    let svg = dir.path().join("kod2.svg");
    let v = json(
        env.ksef()
            .args(["--json", "--env", "test", "qr", "cert", "--cert"])
            .arg(&cert)
            .arg("--key")
            .arg(&key)
            .arg("-o")
            .arg(&svg)
            .arg(&invoice)
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["code"], "KOD II");
    let url = v["url"].as_str().unwrap();
    assert!(
        url.starts_with("https://qr-test.ksef.mf.gov.pl/certificate/Nip/"),
        "{url}"
    );
    assert!(
        std::fs::read_to_string(&svg)
            .unwrap()
            .contains(">CERTYFIKAT</text>")
    );

    // An invoice without the fields and no flags: 3, saying which flag to give.
    let bare = dir.path().join("bare.xml");
    std::fs::write(&bare, "<Faktura/>").unwrap();
    env.ksef()
        .args(["qr", "invoice"])
        .arg(&bare)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--nip"));
}

#[test]
fn send_batch_with_no_valid_invoice_reports_each_file_after_445() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let bad: Vec<PathBuf> = (1..=2)
        .map(|i| {
            let p = dir.path().join(format!("bad-{i}.xml"));
            std::fs::write(&p, format!("<Faktura>not FA(3) {i}</Faktura>")).unwrap();
            p
        })
        .collect();
    let out = env
        .ksef()
        .args(["--json", "send", "--batch"])
        .args(&bad)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let v = json(&out);
    assert_eq!(v["accepted"], 0, "{v}");
    assert_eq!(v["failed"], 2, "{v}");
    let invoices = v["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 2);
    for (item, file) in invoices.iter().zip(&bad) {
        assert_eq!(item["file"], file.display().to_string());
        assert_eq!(item["ok"], false);
        assert!(item["error"].as_str().unwrap().contains("430"), "{item}");
    }
}

#[test]
fn send_batch_reports_each_file_and_saves_upos() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| env.invoice(dir.path(), &format!("B-{i}")))
        .collect();
    let bad = dir.path().join("bad.xml");
    std::fs::write(&bad, "<Faktura>not FA(3)</Faktura>").unwrap();
    let upo_dir = dir.path().join("upo");
    let out = env
        .ksef()
        .args([
            "--json",
            "send",
            "--batch",
            "--compression",
            "tar-gz",
            "--upo-dir",
        ])
        .arg(&upo_dir)
        .args(&files)
        .arg(&bad)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let v = json(&out);
    assert_eq!(v["batch"], true);
    assert_eq!(v["accepted"], 3);
    assert_eq!(v["failed"], 1);
    let invoices = v["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 4);
    for (item, file) in invoices.iter().zip(&files) {
        assert_eq!(item["file"], file.display().to_string());
        let k = item["ksefNumber"].as_str().unwrap();
        let upo = std::fs::read_to_string(item["upo"].as_str().unwrap()).unwrap();
        assert!(upo.contains(k));
    }
    assert_eq!(invoices[3]["ok"], false);
    assert!(
        invoices[3]["error"].as_str().unwrap().contains("430"),
        "{}",
        invoices[3]
    );
    assert_eq!(v["sessionUpo"].as_array().unwrap().len(), 1);

    // All good: exit 0; a missing file: exit 3 before anything is sent.
    env.ksef()
        .args(["send", "--batch"])
        .arg(env.invoice(dir.path(), "B-4"))
        .assert()
        .success()
        .stdout(predicate::str::contains("1 accepted, 0 failed"));
    env.ksef()
        .args(["send", "--batch", "/no/such.xml"])
        .assert()
        .code(3);
}

#[test]
fn query_and_download_what_was_sent() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| env.invoice(dir.path(), &format!("Q-{i}")))
        .collect();
    let v = json(
        env.ksef()
            .args(["--json", "send"])
            .args(&files)
            .assert()
            .success()
            .get_output(),
    );
    let sent: Vec<String> = v["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap().to_owned())
        .collect();
    // The simulator stores invoices permanently 100 ms after acceptance.
    std::thread::sleep(std::time::Duration::from_millis(300));

    // Every page (10 per page): all three, as the seller.
    let v = json(
        env.ksef()
            .args([
                "--json",
                "query",
                "--subject",
                "seller",
                "--page-size",
                "10",
                "--all",
            ])
            .assert()
            .success()
            .get_output(),
    );
    let mut found: Vec<String> = v["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap().to_owned())
        .collect();
    found.sort();
    let mut expected = sent.clone();
    expected.sort();
    assert_eq!(found, expected);
    assert_eq!(v["hasMore"], false);
    assert!(v["permanentStorageHwmDate"].is_string(), "{v}");

    // A filter: one invoice number (P_2 as KSeF reports it), newest first, issue-date range
    // given as a date.
    let p2 = v["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["ksefNumber"] == sent[1].as_str())
        .unwrap()["invoiceNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    let today = time::OffsetDateTime::now_utc().date().to_string();
    let v = json(
        env.ksef()
            .args([
                "--json",
                "query",
                "--subject",
                "seller",
                "--invoice-number",
                &p2,
            ])
            .args(["--date-type", "issue", "--from", &today, "--order", "desc"])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["invoices"].as_array().unwrap().len(), 1);
    assert_eq!(v["invoices"][0]["ksefNumber"], sent[1].as_str());
    // As the buyer: none of them (the template's buyer is another NIP).
    let v = json(
        env.ksef()
            .args(["--json", "query", "--subject", "buyer"])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["invoices"].as_array().unwrap().len(), 0);

    // Download: one to stdout, all to a directory.
    env.ksef()
        .args(["download", &sent[0]])
        .assert()
        .success()
        .stdout(predicate::str::contains("Q-1"));
    let out = dir.path().join("downloaded");
    let v = json(
        env.ksef()
            .args(["--json", "download", "-o"])
            .arg(&out)
            .args(&sent)
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["files"].as_array().unwrap().len(), 3);
    let back = std::fs::read(out.join(format!("{}.xml", sent[2]))).unwrap();
    assert_eq!(back, std::fs::read(&files[2]).unwrap(), "the XML as sent");

    // Bad input: a date that is not one (3), an unknown KSeF number (1, KSeF's 21164).
    env.ksef()
        .args(["query", "--from", "yesterday"])
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--from"));
    env.ksef()
        .args(["download", "5265877635-20250826-0100001AF629-AF"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains("21164"));
}

#[test]
fn sim_serve_as_a_child_process_until_sigterm() {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ksef"))
        .args(["sim", "serve", "--bind", "127.0.0.1:0", "--seed", "7"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    let url = url.trim().to_owned();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with("/v2"),
        "{url}"
    );
    let config = tempfile::tempdir().unwrap();
    let nip = ksef_model::Nip::random(&mut rand::rng()).to_string();
    let login = Command::cargo_bin("ksef")
        .unwrap()
        .env("KSEF_CONFIG_DIR", config.path())
        .args([
            "--env",
            &url,
            "auth",
            "login",
            "--test-certificate",
            "--nip",
            &nip,
        ])
        .output()
        .unwrap();
    // Stop the server whatever the login did, then check both.
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        login.status.success(),
        "{}",
        String::from_utf8_lossy(&login.stderr)
    );
    assert!(status.success(), "sim serve ended with {status}");
}

/// `ksef sim serve --state-dir DIR` as a child process; returns it and its base URL.
fn serve_state_dir(dir: &Path) -> (std::process::Child, String) {
    use std::io::BufRead as _;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ksef"))
        .args(["sim", "serve", "--bind", "127.0.0.1:0", "--state-dir"])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut url = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut url)
        .unwrap();
    (child, url.trim().to_owned())
}

fn stop(mut child: std::process::Child) {
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(child.wait().unwrap().success());
}

#[test]
fn sim_serve_with_a_state_dir_keeps_an_invoice_across_runs() {
    let state = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    let config = tempfile::tempdir().unwrap();
    let nip = ksef_model::Nip::random(&mut rand::rng()).to_string();
    let ksef = |url: &str| {
        let mut c = Command::cargo_bin("ksef").unwrap();
        c.env_remove("KSEF_ENV")
            .env_remove("KSEF_PROFILE")
            .env_remove("KSEF_TOKEN")
            .env("KSEF_CONFIG_DIR", config.path())
            .env("KSEF_ENV", url);
        c
    };
    let today = time::OffsetDateTime::now_utc().date();
    let file = work.path().join("KEEP-1.xml");
    std::fs::write(
        &file,
        TEMPLATE
            .replace("#nip#", &nip)
            .replace("#invoice_number#", "KEEP-1")
            .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>")),
    )
    .unwrap();

    let (child, url) = serve_state_dir(state.path());
    ksef(&url)
        .args(["auth", "login", "--test-certificate", "--nip", &nip])
        .assert()
        .success();
    let sent = ksef(&url)
        .args(["--json", "send"])
        .arg(&file)
        .output()
        .unwrap();
    stop(child);
    let v = json(&sent);
    let number = v["invoices"][0]["ksefNumber"].as_str().unwrap().to_owned();

    // A second run on the same directory (another port): the invoice is there, byte for byte.
    let (child, url) = serve_state_dir(state.path());
    ksef(&url)
        .args(["auth", "login", "--test-certificate", "--nip", &nip])
        .assert()
        .success();
    let out = work.path().join("back");
    let got = ksef(&url)
        .args(["--json", "download", "-o"])
        .arg(&out)
        .arg(&number)
        .output()
        .unwrap();
    stop(child);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    let back = std::fs::read(out.join(format!("{number}.xml"))).unwrap();
    assert_eq!(back, std::fs::read(&file).unwrap());
}

#[test]
fn token_generate_then_log_in_with_it_list_and_revoke() {
    let env = Env::start();
    env.login_test_certificate("owner");
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("token.txt");
    let v = json(
        env.ksef()
            .args(["--json", "--profile", "owner", "token", "generate"])
            .args([
                "--description",
                "CLI test reader",
                "--permission",
                "invoice-read",
            ])
            .args(["--permission", "invoice-write", "--out"])
            .arg(&secret)
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["status"], "Active");
    assert!(v.get("token").is_none(), "the secret went to the file only");
    let reference = v["referenceNumber"].as_str().unwrap().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&secret).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let token = std::fs::read_to_string(&secret).unwrap();

    // Log in with it from stdin, then from the environment; send with the token's login.
    env.ksef()
        .args([
            "auth",
            "login",
            "--token",
            "--nip",
            &env.nip,
            "--profile",
            "bot",
        ])
        .write_stdin(format!("{token}\n"))
        .assert()
        .success()
        .stdout(predicate::str::contains("(token)"));
    env.ksef()
        .env("MY_TOKEN", &token)
        .args(["auth", "login", "--token", "--token-env", "MY_TOKEN"])
        .args(["--nip", &env.nip, "--profile", "bot"])
        .assert()
        .success();
    let invoice = env.invoice(dir.path(), "T-1");
    env.ksef()
        .args(["--profile", "bot", "send"])
        .arg(&invoice)
        .assert()
        .success();

    let v = json(
        env.ksef()
            .args([
                "--json",
                "--profile",
                "owner",
                "token",
                "list",
                "--status",
                "active",
            ])
            .assert()
            .success()
            .get_output(),
    );
    assert!(
        v["tokens"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["referenceNumber"] == reference.as_str()),
        "{v}"
    );
    env.ksef()
        .args(["--profile", "owner", "token", "revoke", &reference])
        .assert()
        .success();
    env.ksef()
        .args(["--profile", "owner", "token", "status", &reference])
        .assert()
        .success()
        .stdout(predicate::str::contains("Revok"));
    // A revoked token no longer logs in (KSeF status 450): exit 1.
    env.ksef()
        .args([
            "auth",
            "login",
            "--token",
            "--nip",
            &env.nip,
            "--profile",
            "bot2",
        ])
        .write_stdin(token)
        .assert()
        .code(1)
        .stderr(predicate::str::contains("450"));
}

#[test]
fn export_unpacks_the_invoices_and_metadata() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (1..=3)
        .map(|i| env.invoice(dir.path(), &format!("E-{i}")))
        .collect();
    let v = json(
        env.ksef()
            .args(["--json", "send"])
            .args(&files)
            .assert()
            .success()
            .get_output(),
    );
    let sent: Vec<String> = v["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap().to_owned())
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(300));

    let out = dir.path().join("export");
    let v = json(
        env.ksef()
            .args([
                "--json",
                "export",
                "--subject",
                "seller",
                "--up-to-hwm",
                "-o",
            ])
            .arg(&out)
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["invoiceCount"], 3, "{v}");
    assert_eq!(v["isTruncated"], false);
    for (k, file) in sent.iter().zip(&files) {
        let got = std::fs::read(out.join(format!("{k}.xml"))).unwrap();
        assert_eq!(got, std::fs::read(file).unwrap(), "{k} as sent");
    }
    let meta: Value =
        serde_json::from_slice(&std::fs::read(out.join("_metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["invoices"].as_array().unwrap().len(), 3);

    // Metadata only.
    let only = dir.path().join("meta");
    env.ksef()
        .args(["export", "--subject", "seller", "--only-metadata", "-o"])
        .arg(&only)
        .assert()
        .success();
    let names: Vec<String> = std::fs::read_dir(&only)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["_metadata.json"]);
}

#[test]
fn sync_is_incremental_and_restartable() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let send = |names: &[&str]| -> Vec<String> {
        let files: Vec<PathBuf> = names.iter().map(|n| env.invoice(dir.path(), n)).collect();
        let v = json(
            env.ksef()
                .args(["--json", "send"])
                .args(&files)
                .assert()
                .success()
                .get_output(),
        );
        // The simulator stores invoices permanently 100 ms after acceptance.
        std::thread::sleep(std::time::Duration::from_millis(300));
        v["invoices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["ksefNumber"].as_str().unwrap().to_owned())
            .collect()
    };
    let synced = dir.path().join("mirror");
    let run = || -> Value {
        json(
            env.ksef()
                .args(["--json", "sync", "--subject", "seller"])
                .arg(&synced)
                .assert()
                .success()
                .get_output(),
        )
    };
    let on_disk = || -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(synced.join("seller"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(".xml").map(str::to_owned))
            .collect();
        names.sort();
        names
    };

    let mut sent = send(&["S-1", "S-2"]);
    let v = run();
    assert_eq!(v["subjects"][0]["newInvoices"], 2, "{v}");
    let first_from = v["subjects"][0]["nextFrom"].as_str().unwrap().to_owned();

    // Nothing new: nothing downloaded again, the position holds.
    let v = run();
    assert_eq!(v["subjects"][0]["newInvoices"], 0, "{v}");

    sent.extend(send(&["S-3"]));
    let v = run();
    assert_eq!(v["subjects"][0]["newInvoices"], 1, "{v}");
    assert_ne!(v["subjects"][0]["nextFrom"], first_from.as_str());
    sent.sort();
    assert_eq!(on_disk(), sent);

    // Restart from scratch after losing the state: everything again, nothing duplicated.
    std::fs::remove_file(synced.join(".ksef-sync.json")).unwrap();
    std::fs::remove_dir_all(synced.join(".ksef-sync")).unwrap();
    let v = run();
    assert_eq!(v["subjects"][0]["newInvoices"], 0, "{v}");
    assert_eq!(on_disk(), sent);

    // Another login's state is refused: 3.
    let other = Env::start();
    other.login_test_certificate("default");
    other
        .ksef()
        .args(["sync", "--subject", "seller"])
        .arg(&synced)
        .assert()
        .code(3)
        .stderr(predicate::str::contains("another directory"));
}

#[test]
fn sync_from_a_position_older_than_three_months_completes() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let file = env.invoice(dir.path(), "OLD-1");
    let v = json(
        env.ksef()
            .args(["--json", "send"])
            .arg(&file)
            .assert()
            .success()
            .get_output(),
    );
    let ksef_number = v["invoices"][0]["ksefNumber"].as_str().unwrap().to_owned();
    std::thread::sleep(std::time::Duration::from_millis(300));
    // A saved position 200 days back, written by hand in the SDK checkpoint layout: one query
    // window may span at most 3 months, so the sync must cut it into several.
    let synced = dir.path().join("mirror");
    std::fs::create_dir_all(synced.join(".ksef-sync")).unwrap();
    let old = time::OffsetDateTime::now_utc() - time::Duration::days(200);
    let old = old
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    std::fs::write(
        synced.join(".ksef-sync/seller.json"),
        format!(r#"{{"from":"{old}","handledAtFrom":[]}}"#),
    )
    .unwrap();
    let v = json(
        env.ksef()
            .args(["--json", "sync", "--subject", "seller"])
            .arg(&synced)
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["subjects"][0]["newInvoices"], 1, "{v}");
    assert!(synced.join(format!("seller/{ksef_number}.xml")).exists());
    // The position moved to this month.
    let next = v["subjects"][0]["nextFrom"].as_str().unwrap();
    let next =
        time::OffsetDateTime::parse(next, &time::format_description::well_known::Rfc3339).unwrap();
    assert!(
        time::OffsetDateTime::now_utc() - next < time::Duration::days(1),
        "{v}"
    );
}

#[test]
fn permission_grant_lets_a_person_log_in_until_revoked() {
    let env = Env::start();
    env.login_test_certificate("owner");
    let dir = tempfile::tempdir().unwrap();
    let pesel = ksef_model::Pesel::random(&mut rand::rng()).to_string();
    let (cert, key) = (dir.path().join("jan.pem"), dir.path().join("jan.key"));
    env.ksef()
        .args([
            "cert",
            "test",
            "--given-name",
            "Jan",
            "--surname",
            "Kowalski",
            "--pesel",
            &pesel,
        ])
        .arg("--cert-out")
        .arg(&cert)
        .arg("--key-out")
        .arg(&key)
        .assert()
        .success();
    let login = |expect_ok: bool| {
        let mut c = env.ksef();
        c.args([
            "auth",
            "login",
            "--nip",
            &env.nip,
            "--profile",
            "jan",
            "--cert",
        ])
        .arg(&cert)
        .arg("--key")
        .arg(&key);
        if expect_ok {
            c.assert().success();
        } else {
            // No permissions in the context: KSeF ends the login with 415.
            c.assert().code(1).stderr(predicate::str::contains("415"));
        }
    };
    login(false);

    env.ksef()
        .args([
            "--profile",
            "owner",
            "permission",
            "grant",
            "--pesel",
            &pesel,
        ])
        .args(["--first-name", "Jan", "--last-name", "Kowalski"])
        .args([
            "--permission",
            "invoice-read",
            "--permission",
            "invoice-write",
        ])
        .args(["--description", "bookkeeping"])
        .assert()
        .success();
    login(true);

    let v = json(
        env.ksef()
            .args([
                "--json",
                "--profile",
                "owner",
                "permission",
                "list",
                "--granted",
            ])
            .assert()
            .success()
            .get_output(),
    );
    let ids: Vec<String> = v["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["authorizedIdentifier"]["value"] == pesel.as_str())
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 2, "{v}");
    for id in &ids {
        env.ksef()
            .args(["--profile", "owner", "permission", "revoke", id])
            .assert()
            .success();
    }
    login(false);
    // A grant without a subject: usage error; a bad PESEL: 3.
    env.ksef()
        .args([
            "--profile",
            "owner",
            "permission",
            "grant",
            "--pesel",
            "123",
        ])
        .args([
            "--first-name",
            "J",
            "--last-name",
            "K",
            "--permission",
            "invoice-read",
        ])
        .args(["--description", "bookkeeping"])
        .assert()
        .code(3);
}

#[test]
fn sim_serve_tls_certificate_is_trusted_with_ca_cert() {
    use std::io::BufRead as _;
    // No --tls-cert-out: the certificate goes to the temporary directory and its path is printed.
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("ksef"))
        .args(["sim", "serve", "--bind", "127.0.0.1:0", "--tls"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Both pipes stay open until the server has stopped (it writes to them when stopping).
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut note = String::new();
    stderr.read_line(&mut note).unwrap();
    let mut url = String::new();
    stdout.read_line(&mut url).unwrap();
    let url = url.trim().to_owned();
    let pem = note
        .strip_prefix("TLS certificate written to ")
        .and_then(|rest| rest.split(';').next())
        .map(PathBuf::from);

    let config = tempfile::tempdir().unwrap();
    let nip = ksef_model::Nip::random(&mut rand::rng()).to_string();
    let ksef = || {
        let mut c = Command::cargo_bin("ksef").unwrap();
        c.env_remove("KSEF_ENV")
            .env_remove("KSEF_PROFILE")
            .env_remove("KSEF_CA_CERT")
            .env("KSEF_CONFIG_DIR", config.path())
            .args(["--env", &url]);
        c
    };
    let login = ["auth", "login", "--test-certificate", "--nip", &nip];
    // Untrusted: exit 5, one line that says how to trust it.
    let untrusted = ksef().args(login).output().unwrap();
    // Trusted with --ca-cert (or KSEF_CA_CERT): log in, send, UPO.
    let mut trusted = Vec::new();
    let dir = tempfile::tempdir().unwrap();
    if let Some(pem) = &pem {
        trusted.push(
            ksef()
                .arg("--ca-cert")
                .arg(pem)
                .args(login)
                .output()
                .unwrap(),
        );
        let invoice = dir.path().join("fv.xml");
        let today = time::OffsetDateTime::now_utc().date();
        std::fs::write(
            &invoice,
            TEMPLATE
                .replace("#nip#", &nip)
                .replace("#invoice_number#", "FV/TLS/1")
                .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>")),
        )
        .unwrap();
        trusted.push(
            ksef()
                .env("KSEF_CA_CERT", pem)
                .args(["--json", "send", "--upo-dir"])
                .arg(dir.path().join("upo"))
                .arg(&invoice)
                .output()
                .unwrap(),
        );
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    drop((stdout, stderr));
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let pem = pem.unwrap_or_else(|| panic!("no certificate path in {note:?}"));
    let text = std::fs::read_to_string(&pem).unwrap();
    let _ = std::fs::remove_file(&pem);
    assert!(text.starts_with("-----BEGIN CERTIFICATE-----"));
    assert!(status.success(), "sim serve ended with {status}");

    let err = String::from_utf8_lossy(&untrusted.stderr);
    assert_eq!(untrusted.status.code(), Some(5), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ksef: ") && err.contains("--ca-cert"),
        "{err}"
    );
    for out in &trusted {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let v = json(&trusted[1]);
    assert_eq!(v["accepted"], 1);
    let k = v["invoices"][0]["ksefNumber"].as_str().unwrap();
    assert!(k.starts_with(&nip), "{k}");
    assert!(
        std::fs::read_to_string(v["invoices"][0]["upo"].as_str().unwrap())
            .unwrap()
            .contains(k)
    );
}

#[test]
fn cert_enroll_issues_a_ksef_certificate_that_logs_in() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("ksef.pem"), dir.path().join("ksef.key"));
    let v = json(
        env.ksef()
            .args([
                "--json",
                "cert",
                "enroll",
                "--name",
                "CLI test seal",
                "--cert-out",
            ])
            .arg(&cert)
            .arg("--key-out")
            .arg(&key)
            .assert()
            .success()
            .get_output(),
    );
    assert!(
        v["subject"]
            .as_str()
            .unwrap()
            .contains(&format!("VATPL-{}", env.nip)),
        "{v}"
    );
    env.ksef()
        .args([
            "auth",
            "login",
            "--nip",
            &env.nip,
            "--profile",
            "ksef-cert",
            "--cert",
        ])
        .arg(&cert)
        .arg("--key")
        .arg(&key)
        .assert()
        .success();
    // A too-short name: refused before any network call (as KSeF would), exit 3, one line.
    let out = env
        .ksef()
        .args(["cert", "enroll", "--name", "x", "--cert-out"])
        .arg(dir.path().join("x.pem"))
        .arg("--key-out")
        .arg(dir.path().join("x.key"))
        .assert()
        .code(3)
        .stderr(predicate::str::contains("--name"))
        .get_output()
        .clone();
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 1);
}

#[test]
fn collective_identifier_create_list_invoices_of_invoice() {
    let env = Env::start();
    env.login_test_certificate("default");
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<PathBuf> = (1..=2)
        .map(|i| env.invoice(dir.path(), &format!("IZ-{i}")))
        .collect();
    let v = json(
        env.ksef()
            .args(["--json", "send"])
            .args(&files)
            .assert()
            .success()
            .get_output(),
    );
    let sent: Vec<String> = v["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap().to_owned())
        .collect();

    // KSeF takes only invoices in permanent storage (the simulator stores them ~100 ms after
    // acceptance): ask again while it answers 71001, as a client must.
    let create = || {
        env.ksef()
            .args([
                "--json",
                "collective",
                "create",
                "--description",
                "one transfer",
            ])
            .arg(&sent[0])
            .arg(format!("{}=1230.50:PLN", sent[1]))
            .output()
            .unwrap()
    };
    let mut out = create();
    for _ in 0..50 {
        if out.status.success() || !String::from_utf8_lossy(&out.stderr).contains("71001") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        out = create();
    }
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v = json(&out);
    let id = v["collectiveIdentifier"].as_str().unwrap().to_owned();
    assert!(id.starts_with(&format!("{}-IZ", env.nip)), "{id}");
    assert_eq!(v["invoices"].as_array().unwrap().len(), 2);

    // Offline check of the number (no profile, no network).
    let v = json(
        Command::cargo_bin("ksef")
            .unwrap()
            .args(["--json", "collective", "validate", &id])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["valid"], true);
    assert_eq!(v["sellerNip"], env.nip.as_str());

    // Listed in the context, created here, with two invoices.
    let v = json(
        env.ksef()
            .args(["--json", "collective", "list", "--created-here"])
            .assert()
            .success()
            .get_output(),
    );
    let items = v["collectiveIdentifiers"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{v}");
    assert_eq!(items[0]["collectiveIdentifierNumber"], id.as_str());
    assert_eq!(items[0]["invoiceCount"], 2);
    assert_eq!(items[0]["createdInCurrentContext"], true);

    // Its invoices, with the payment given for the second.
    let v = json(
        env.ksef()
            .args(["--json", "collective", "invoices", &id])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["collectiveIdentifier"], id.as_str());
    let invoices = v["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 2, "{v}");
    let second = invoices
        .iter()
        .find(|i| i["ksefNumber"] == sent[1].as_str())
        .unwrap();
    assert_eq!(second["payment"]["amount"], 1230.5);
    assert_eq!(second["payment"]["currency"], "PLN");
    assert_eq!(second["description"], "one transfer");
    assert_eq!(second["detailsHidden"], false);

    // The identifiers of one invoice.
    let v = json(
        env.ksef()
            .args(["--json", "collective", "of-invoice", &sent[0]])
            .assert()
            .success()
            .get_output(),
    );
    assert_eq!(v["ksefNumber"], sent[0].as_str());
    assert_eq!(
        v["collectiveIdentifiers"][0]["collectiveIdentifierNumber"],
        id.as_str()
    );

    // Bad input: 3, one line, before any network call.
    for args in [
        vec!["collective", "create", "not-a-ksef-number"],
        vec!["collective", "create", &format!("{}=abc", sent[0])],
        vec!["collective", "create", &format!("{}=10:zloty", sent[0])],
        vec![
            "collective",
            "invoices",
            "1111111111-IZ202607-65ED02180000-E8",
        ],
        vec![
            "collective",
            "validate",
            "1111111111-IZ202607-65ED02180000-E8",
        ],
        vec!["collective", "list", "--from", "yesterday"],
    ] {
        let out = env.ksef().args(&args).assert().code(3).get_output().clone();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ksef: "), "{args:?}: {err}");
    }
}

#[test]
fn more_bad_input_one_line_each_with_its_exit_code() {
    let env = Env::start();
    let dir = tempfile::tempdir().unwrap();
    // One line starting "ksef: ", no panic and no backtrace even with RUST_BACKTRACE set.
    let check = |args: &[&str], code: i32, extra: &[&std::ffi::OsStr], needle: &str| {
        let out = env
            .ksef()
            .env("RUST_BACKTRACE", "1")
            .args(args)
            .args(extra)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("ksef: "), "{args:?}: {err}");
        assert!(
            !err.contains("panicked") && !err.contains("backtrace"),
            "{err}"
        );
        assert!(err.contains(needle), "{args:?}: {needle:?} not in {err}");
    };
    let nip = env.nip.clone();
    let login = |rest: &[&str]| -> Vec<String> {
        ["auth", "login", "--nip", &nip]
            .iter()
            .chain(rest)
            .map(|s| s.to_string())
            .collect()
    };
    let garbage = dir.path().join("garbage.bin");
    std::fs::write(&garbage, b"this is not a key, a bundle or a certificate").unwrap();
    let g = garbage.as_os_str();

    // Unknown environment name: 3.
    check(&["--env", "staging", "auth", "status"], 3, &[], "--env");
    // PKCS#12: missing file, not a PKCS#12 bundle: 3.
    check(
        &s(&login(&["--pkcs12", "/no/such/bundle.p12"])),
        3,
        &[],
        "--pkcs12",
    );
    check(&s(&login(&["--pkcs12"])), 3, &[g], "--pkcs12");
    // A key "file" that is a directory: 3.
    let cert = dir.path().join("c.pem");
    let key = dir.path().join("k.pem");
    env.ksef()
        .args(["cert", "test", "--nip", &env.nip, "--cert-out"])
        .arg(&cert)
        .arg("--key-out")
        .arg(&key)
        .assert()
        .success();
    check(
        &s(&login(&["--key", "/tmp", "--cert"])),
        3,
        &[cert.as_os_str()],
        "--key",
    );
    // A certificate that is not one: 3.
    check(
        &s(&login(&["--cert"])),
        3,
        &[g, std::ffi::OsStr::new("--key"), key.as_os_str()],
        "--cert",
    );
    // Invalid NIPs outside login: 3.
    check(&["cert", "test", "--nip", "1234567890"], 3, &[], "--nip");
    check(&["nip", "validate", "abc"], 3, &[], "NIP");
    // --ca-cert missing or not a certificate: 3, before any network call.
    check(
        &s(&login(&[
            "--test-certificate",
            "--ca-cert",
            "/no/such/ca.pem",
        ])),
        3,
        &[],
        "--ca-cert",
    );
    check(
        &s(&login(&["--test-certificate", "--ca-cert"])),
        3,
        &[g],
        "--ca-cert",
    );

    env.login_test_certificate("default");
    // Malformed reference numbers: 3.
    check(&["status", "not-a-reference"], 3, &[], "SESSION");
    check(
        &["upo", "--session", "not-a-reference"],
        3,
        &[],
        "--session",
    );
    // A batch with a missing file: 3.
    check(
        &["send", "--batch", "/no/such/invoice.xml"],
        3,
        &[],
        "/no/such/invoice.xml",
    );

    // A damaged profile: 4, saying how to log in again.
    let profile = env.config.path().join("profiles/default.json");
    let saved = std::fs::read(&profile).unwrap();
    std::fs::write(&profile, b"{ not json").unwrap();
    check(&["auth", "status"], 4, &[], "ksef auth login");

    // The profile's server is down: 5 (a port nothing listens on).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moved = String::from_utf8(saved)
        .unwrap()
        .replace(&env.url, &format!("http://127.0.0.1:{port}/v2"));
    std::fs::write(&profile, moved).unwrap();
    let invoice = env.invoice(dir.path(), "DOWN-1");
    let out = env
        .ksef()
        .env_remove("KSEF_ENV")
        .env("RUST_BACKTRACE", "1")
        .arg("send")
        .arg(&invoice)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("could not connect"), "{err}");
}

fn s(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}
