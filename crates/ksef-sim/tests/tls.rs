//! `--tls` / `SimulatorBuilder::tls()`: HTTPS with a certificate generated at start, trusted by
//! a reqwest client through the PEM the handle gives; the whole send flow works over it and the
//! presigned UPO links are `https://`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use common::{Api, NIP, StartChecked, invoice, signer};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_generated_certificate() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .tls()
        .start_checked()
        .await
        .unwrap();
    let base = sim.base_url();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let pem = sim.tls_certificate_pem().unwrap();
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    // Without trusting the certificate, the handshake fails.
    let untrusting = reqwest::Client::new();
    let e = untrusting
        .post(format!("{base}/auth/challenge"))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect() || e.is_request(), "{e:?}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = format!("http://{}/v2/auth/challenge", sim.local_addr());
    assert!(untrusting.post(plain).send().await.is_err());

    // Trusting it (and it alone), the whole flow works over HTTPS, `localhost` included.
    let http = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = http
        .post(format!(
            "https://localhost:{}/v2/auth/challenge",
            sim.local_addr().port()
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let api = Api {
        base: base.clone(),
        http: http.clone(),
        headers: Vec::new(),
        validated: Arc::new(AtomicUsize::new(0)),
    };
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let (session, key) = api.open_session(&access).await;
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "TLS/1"))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let st = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let upo_url = st["upoDownloadUrl"].as_str().unwrap();
    assert!(upo_url.starts_with("https://"), "{upo_url}");
    let upo = http.get(upo_url).send().await.unwrap();
    assert_eq!(upo.status(), 200);
    assert!(upo.headers().contains_key("x-ms-meta-hash"));
    sim.shutdown().await;
}
