//! `--state-dir`: what a client observed survives a restart (in process), and an acknowledged
//! invoice survives SIGKILL of the `ksef-sim` binary.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use common::*;
use ksef_model::operations::OperationId;
use serde_json::{Value, json};

/// A fresh directory under the system temp dir (removed at the end of a passing test).
fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "ksef-sim-state-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn start_in(dir: &std::path::Path) -> (CheckedSim, Api) {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .state_dir(dir)
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    (sim, api)
}

/// Downloads an invoice by KSeF number, asking again while it answers 21165.
async fn download(api: &Api, access: &str, ksef: &str) -> Resp {
    for _ in 0..100 {
        let r = api
            .call(
                OperationId::DownloadInvoice,
                &[ksef],
                Some(access),
                Body::None,
            )
            .await;
        if r.status == 400 && String::from_utf8_lossy(&r.body).contains("21165") {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        return r;
    }
    panic!("the invoice never reached permanent storage");
}

async fn upo_by_ksef(api: &Api, access: &str, session: &str, ksef: &str) -> Resp {
    api.call(
        OperationId::InvoiceUpoByKsefNumber,
        &[session, ksef],
        Some(access),
        Body::None,
    )
    .await
}

async fn metadata(api: &Api, access: &str) -> Vec<String> {
    let from = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = api
        .call_q(
            OperationId::QueryInvoiceMetadata,
            &[],
            "",
            Some(access),
            Body::Json(json!({"subjectType": "Subject1",
                "dateRange": {"dateType": "PermanentStorage", "from": from}})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap().to_owned())
        .collect()
}

/// Logs in with a KSeF token; returns the auth status and the operation token.
async fn token_login(api: &Api, token: &str) -> (Value, String) {
    let (pk, id) = api.mf_key("KsefTokenEncryption").await;
    let ch = api.challenge().await;
    let enc = ksef_crypto::encryption::encrypt_ksef_token(
        token,
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_survives_a_restart() {
    let dir = temp_dir("restart");

    // First run: test data, XAdES login, a KSeF token, a session with one accepted invoice.
    let (sim, api) = start_in(&dir).await;
    api.testdata_person(NIP, PESEL).await;
    api.testdata_grant(NIP, ("Nip", NIP), &["InvoiceWrite", "InvoiceRead"])
        .await;
    let (access, refresh, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let r = api
        .call(
            OperationId::GenerateToken,
            &[],
            Some(&access),
            Body::Json(json!({"permissions": ["InvoiceWrite", "InvoiceRead"],
                "description": "przed restartem"})),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let ksef_token = r.json["token"].as_str().unwrap().to_owned();
    let (session, key) = api.open_session(&access).await;
    let xml = invoice(NIP, "STATE-1");
    let r = api.send(&access, &session, &key, &xml).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let inv_ref = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let st = api.invoice_final(&access, &session, &inv_ref).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let ksef = st["ksefNumber"].as_str().unwrap().to_owned();
    let upo_before = upo_by_ksef(&api, &access, &session, &ksef).await;
    assert_eq!(upo_before.status, 200);
    let inv_before = download(&api, &access, &ksef).await;
    assert_eq!(inv_before.status, 200);
    assert_eq!(inv_before.body, xml);
    let (pk_before, _) = api.mf_key("SymmetricKeyEncryption").await;
    sim.shutdown().await;

    // Second run on the same directory (another port).
    let (sim, api) = start_in(&dir).await;
    // The old access token still works: same invoice bytes, same signed UPO, same status.
    let inv_after = download(&api, &access, &ksef).await;
    assert_eq!(inv_after.status, 200, "{:?}", inv_after.json);
    assert_eq!(inv_after.body, inv_before.body);
    assert_eq!(
        inv_after.header("x-ms-meta-hash"),
        inv_before.header("x-ms-meta-hash")
    );
    let upo_after = upo_by_ksef(&api, &access, &session, &ksef).await;
    assert_eq!(upo_after.status, 200);
    assert_eq!(upo_after.body, upo_before.body, "the UPO is byte-identical");
    let st_after = api.invoice_final(&access, &session, &inv_ref).await;
    assert_eq!(st_after["ksefNumber"], st["ksefNumber"]);
    assert_eq!(st_after["acquisitionDate"], st["acquisitionDate"]);
    assert_eq!(st_after["permanentStorageDate"], st["permanentStorageDate"]);
    // The metadata query finds it.
    assert!(metadata(&api, &access).await.contains(&ksef));
    // The published key is the same one.
    let (pk_after, _) = api.mf_key("SymmetricKeyEncryption").await;
    assert_eq!(
        pk_after.to_spki_der().unwrap(),
        pk_before.to_spki_der().unwrap()
    );
    // The refresh token still refreshes.
    let r = api
        .call(
            OperationId::RefreshAccessToken,
            &[],
            Some(&refresh),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access2 = r.json["accessToken"]["token"].as_str().unwrap().to_owned();
    // The session opened before the restart still takes invoices (its key was kept); a new
    // invoice gets a new KSeF number, and a resend of the same one is a duplicate (440).
    let r = api
        .send(&access2, &session, &key, &invoice(NIP, "STATE-2"))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let st2 = api
        .invoice_final(
            &access2,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st2["status"]["code"], 200, "{st2}");
    assert_ne!(st2["ksefNumber"], st["ksefNumber"]);
    assert_eq!(st2["ordinalNumber"], 2);
    let r = api.send(&access2, &session, &key, &xml).await;
    let dup = api
        .invoice_final(
            &access2,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(dup["status"]["code"], 440, "{dup}");
    // The KSeF token issued before the restart still authenticates.
    let (auth, op) = token_login(&api, &ksef_token).await;
    assert_eq!(auth["status"]["code"], 200, "{auth}");
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    // Closing gives a session UPO listing both accepted invoices; it too survives a restart.
    let r = api
        .call(
            OperationId::CloseOnlineSession,
            &[&session],
            Some(&access2),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    let closed = api.session_final(&access2, &session).await;
    assert_eq!(closed["status"]["code"], 200, "{closed}");
    assert_eq!(closed["successfulInvoiceCount"], 2);
    let page = closed["upo"]["pages"][0]["referenceNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    let page_before = api
        .call(
            OperationId::SessionUpo,
            &[&session, &page],
            Some(&access2),
            Body::None,
        )
        .await;
    assert_eq!(page_before.status, 200);
    sim.shutdown().await;

    let (sim, api) = start_in(&dir).await;
    let page_after = api
        .call(
            OperationId::SessionUpo,
            &[&session, &page],
            Some(&access2),
            Body::None,
        )
        .await;
    assert_eq!(page_after.status, 200);
    assert_eq!(page_after.body, page_before.body);
    let mut listed = metadata(&api, &access2).await;
    listed.sort();
    let mut expected = vec![ksef.clone(), st2["ksefNumber"].as_str().unwrap().to_owned()];
    expected.sort();
    assert_eq!(listed, expected);
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_schema_is_refused() {
    let dir = temp_dir("schema");
    let (sim, _) = start_in(&dir).await;
    sim.shutdown().await;
    // Pretend a newer simulator wrote the database.
    let conn = rusqlite::Connection::open(dir.join("ksef-sim.sqlite3")).unwrap();
    conn.execute(
        "UPDATE meta SET value = CAST('99' AS BLOB) WHERE key = 'schema_version'",
        [],
    )
    .unwrap();
    drop(conn);
    let err = ksef_sim::Simulator::builder()
        .state_dir(&dir)
        .start_checked()
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("schema version 99") && msg.contains("newer"),
        "{msg}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Reads `ksef-sim listening on URL` from the child's stdout.
fn spawn_sim(dir: &std::path::Path) -> (std::process::Child, String) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ksef-sim"))
        .args(["--bind", "127.0.0.1:0", "--no-rate-limits", "--state-dir"])
        .arg(dir)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("ksef-sim listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_invoice() {
    let dir = temp_dir("kill");
    let (mut child, url) = spawn_sim(&dir);
    let api = Api::new(url);
    api.testdata_grant(NIP, ("Nip", NIP), &["InvoiceWrite", "InvoiceRead"])
        .await;
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let (session, key) = api.open_session(&access).await;
    // Sends from four tasks at once; the child is killed right after the 40th acknowledgment,
    // while other sends are in flight.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let api = std::sync::Arc::new(api);
    let key = std::sync::Arc::new(key);
    let mut tasks = Vec::new();
    for t in 0..4 {
        let (api, key, tx, access, session) = (
            api.clone(),
            key.clone(),
            tx.clone(),
            access.clone(),
            session.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for i in 0..1000 {
                let xml = invoice(NIP, &format!("KILL-{t}-{i}"));
                let e = key.encrypt_invoice(&xml);
                let client = reqwest::Client::new();
                let r = client
                    .post(format!("{}/sessions/online/{session}/invoices", api.base))
                    .bearer_auth(&access)
                    .json(&json!({
                        "invoiceHash": e.invoice_hash.as_str(),
                        "invoiceSize": e.invoice_size,
                        "encryptedInvoiceHash": e.encrypted_invoice_hash.as_str(),
                        "encryptedInvoiceSize": e.encrypted_invoice_size,
                        "encryptedInvoiceContent": e.ciphertext_base64(),
                    }))
                    .send()
                    .await;
                let Ok(r) = r else { return };
                if r.status() != 202 {
                    return;
                }
                let Ok(v) = r.json::<Value>().await else {
                    return;
                };
                if tx
                    .send(v["referenceNumber"].as_str().unwrap().to_owned())
                    .is_err()
                {
                    return;
                }
            }
        }));
    }
    drop(tx);
    let mut acked = Vec::new();
    while let Some(r) = rx.recv().await {
        acked.push(r);
        if acked.len() == 40 {
            child.kill().unwrap(); // SIGKILL
            break;
        }
    }
    let _ = child.wait();
    // Acknowledgments that arrived before the process died also count.
    while let Ok(r) = rx.try_recv() {
        acked.push(r);
    }
    for t in tasks {
        let _ = t.await;
    }
    while let Ok(r) = rx.try_recv() {
        acked.push(r);
    }
    assert!(acked.len() >= 40);

    // Restart: every acknowledged invoice is there and is processed to a KSeF number.
    let (mut child, url) = spawn_sim(&dir);
    let api = Api::new(url);
    let mut numbers = std::collections::HashSet::new();
    for r in &acked {
        let st = api.invoice_final(&access, &session, r).await;
        assert_eq!(st["status"]["code"], 200, "{r}: {st}");
        assert!(numbers.insert(st["ksefNumber"].as_str().unwrap().to_owned()));
    }
    child.kill().unwrap();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
