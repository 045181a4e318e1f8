//! Online invoice sends per second against an in-process simulator (rate limits off, 8
//! concurrent sessions, 64 requests in flight), with a same-run baseline: the same number of
//! concurrent `POST /auth/challenge` round trips (HTTP + dispatch cost without invoice work).
//! Report the ratio send/challenge, not absolute numbers.
//!
//! Each send case is measured two ways: `…_202` stops the timer when all 64 requests were
//! answered 202 (the simulator verifies invoices on spawned tasks, after that), `…_accepted`
//! when the sessions report all 64 invoices processed successfully (`GET /sessions/{ref}`:
//! `successfulInvoiceCount`; a failed invoice aborts the bench). Before every batch, untimed,
//! the previous batches are waited for until accepted, so no batch inherits a verification
//! backlog. Throughput is in invoices, so both read as sends/s.
//!
//! `…_state_dir` sends the same way to a second simulator that keeps its state in a temporary
//! `--state-dir` (SQLite, every acknowledged invoice committed before the 202): compare it with
//! the in-memory case of the same run.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::cell::RefCell;
use std::time::Duration;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use ksef_crypto::encryption::SessionKey;
use ksef_model::auth_request::{AuthTokenRequest, ContextIdentifier};
use serde_json::{Value, json};

const NIP: &str = "5265877635";
const SESSIONS: usize = 8;
const IN_FLIGHT: usize = 64;

struct Fixture {
    base: String,
    http: reqwest::Client,
    access: String,
    sessions: Vec<(String, SessionKey)>,
    template: String,
}

async fn setup(state_dir: Option<&std::path::Path>) -> (ksef_sim::SimulatorHandle, Fixture) {
    let mut builder = ksef_sim::Simulator::builder().rate_limits(false);
    if let Some(dir) = state_dir {
        builder = builder.state_dir(dir);
    }
    let sim = builder.start().await.unwrap();
    let base = sim.base_url();
    let http = reqwest::Client::new();
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../");
    let key = ksef_crypto::keys::PrivateKey::from_pem(
        &std::fs::read(format!("{dir}fixtures/xades/xmlsec1cli-rsa-seal.key.pem")).unwrap(),
        None,
    )
    .unwrap();
    let cert = ksef_crypto::cert::Certificate::from_pem(
        &std::fs::read(format!("{dir}fixtures/xades/xmlsec1cli-rsa-seal.cert.pem")).unwrap(),
    )
    .unwrap();
    let signer = ksef_crypto::signer::InMemorySigner::new(key, cert).unwrap();
    let ch: Value = http
        .post(format!("{base}/auth/challenge"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let req = AuthTokenRequest::builder(
        ch["challenge"].as_str().unwrap().parse().unwrap(),
        ContextIdentifier::Nip(NIP.parse().unwrap()),
    )
    .build()
    .unwrap();
    let signed = ksef_crypto::xades::sign(&req.to_xml().unwrap(), &signer).unwrap();
    let r: Value = http
        .post(format!("{base}/auth/xades-signature"))
        .header("content-type", "application/xml")
        .body(signed)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let op = r["authenticationToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let auth_ref = r["referenceNumber"].as_str().unwrap().to_owned();
    loop {
        let st: Value = http
            .get(format!("{base}/auth/{auth_ref}"))
            .bearer_auth(&op)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if st["status"]["code"] == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let t: Value = http
        .post(format!("{base}/auth/token/redeem"))
        .bearer_auth(&op)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access = t["accessToken"]["token"].as_str().unwrap().to_owned();
    let keys: Value = http
        .get(format!("{base}/security/public-key-certificates"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let sym = keys
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["usage"][0] == "SymmetricKeyEncryption")
        .unwrap();
    let pk = ksef_crypto::cert::Certificate::from_base64_der(sym["certificate"].as_str().unwrap())
        .unwrap()
        .public_key()
        .unwrap();
    let mut sessions = Vec::new();
    for _ in 0..SESSIONS {
        let key = SessionKey::generate().unwrap();
        let info = key.encryption_info(&pk, None).unwrap();
        let r: Value = http
            .post(format!("{base}/sessions/online"))
            .bearer_auth(&access)
            .json(&json!({
                "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
                "encryption": {"encryptedSymmetricKey": info.encrypted_symmetric_key,
                               "initializationVector": info.initialization_vector},
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        sessions.push((r["referenceNumber"].as_str().unwrap().to_owned(), key));
    }
    let today = time::OffsetDateTime::now_utc().date();
    let template =
        std::fs::read_to_string(format!("{dir}fixtures/invoices/invoice-template-fa-3.xml"))
            .unwrap()
            .replace("#nip#", NIP)
            .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"));
    (
        sim,
        Fixture {
            base,
            http,
            access,
            sessions,
            template,
        },
    )
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (_sim, fx) = rt.block_on(setup(None));
    let dir = std::env::temp_dir().join(format!("ksef-sim-bench-state-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (_sim_db, fx_db) = rt.block_on(setup(Some(&dir)));
    let mut counter = 0u64;
    let mut group = c.benchmark_group("online");
    group.throughput(Throughput::Elements(IN_FLIGHT as u64));
    group.sample_size(20);
    group.bench_function("baseline_challenge_x64", |b| {
        b.iter(|| {
            rt.block_on(async {
                let futs = (0..IN_FLIGHT)
                    .map(|_| fx.http.post(format!("{}/auth/challenge", fx.base)).send());
                for r in futures_join(futs).await {
                    assert_eq!(r.unwrap().status(), 200);
                }
            })
        })
    });
    let cases = [
        ("send_invoice_x64", &fx, RefCell::new(vec![0u64; SESSIONS])),
        (
            "send_invoice_x64_state_dir",
            &fx_db,
            RefCell::new(vec![0u64; SESSIONS]),
        ),
    ];
    for (name, fx, sent) in &cases {
        for accepted in [false, true] {
            let id = format!("{name}_{}", if accepted { "accepted" } else { "202" });
            group.bench_function(id, |b| {
                b.iter_batched(
                    || {
                        // Untimed: what earlier batches sent is accepted; then unique invoice
                        // numbers, encrypted per session.
                        let want = sent.borrow().clone();
                        rt.block_on(wait_accepted(fx, &want));
                        let mut sent = sent.borrow_mut();
                        (0..IN_FLIGHT)
                            .map(|i| {
                                counter += 1;
                                sent[i % SESSIONS] += 1;
                                let (sref, key) = &fx.sessions[i % SESSIONS];
                                let xml = fx
                                    .template
                                    .replace("#invoice_number#", &format!("B{counter}"));
                                let e = key.encrypt_invoice(xml.as_bytes());
                                (
                                    sref.clone(),
                                    json!({
                                        "invoiceHash": e.invoice_hash.as_str(),
                                        "invoiceSize": e.invoice_size,
                                        "encryptedInvoiceHash": e.encrypted_invoice_hash.as_str(),
                                        "encryptedInvoiceSize": e.encrypted_invoice_size,
                                        "encryptedInvoiceContent": e.ciphertext_base64(),
                                    }),
                                )
                            })
                            .collect::<Vec<_>>()
                    },
                    |batch| {
                        rt.block_on(async {
                            let futs = batch.iter().map(|(sref, body)| {
                                fx.http
                                    .post(format!("{}/sessions/online/{sref}/invoices", fx.base))
                                    .bearer_auth(&fx.access)
                                    .json(body)
                                    .send()
                            });
                            for r in futures_join(futs).await {
                                assert_eq!(r.unwrap().status(), 202);
                            }
                            if accepted {
                                let want = sent.borrow().clone();
                                wait_accepted(fx, &want).await;
                            }
                        })
                    },
                    BatchSize::SmallInput,
                )
            });
        }
    }
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Waits until every session reports at least `sent[i]` invoices processed successfully (and
/// none failed).
async fn wait_accepted(fx: &Fixture, sent: &[u64]) {
    for ((sref, _), &want) in fx.sessions.iter().zip(sent) {
        loop {
            let st: Value = fx
                .http
                .get(format!("{}/sessions/{sref}", fx.base))
                .bearer_auth(&fx.access)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(st["failedInvoiceCount"].as_u64().unwrap_or(0), 0, "{st}");
            if st["successfulInvoiceCount"].as_u64().unwrap_or(0) >= want {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// Runs all futures concurrently on the runtime (spawned so they use both cores).
async fn futures_join<F, T>(futs: impl Iterator<Item = F>) -> Vec<T>
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

criterion_group!(benches, bench);
criterion_main!(benches);
