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

// ---------------------------------------------------------------------------------------------
// Every other area survives a restart, and interrupted work is resumed.

const OFFICE_NIP: &str = "3333333333";
const SUB_NIP: &str = "5554443334";
const OTHER_PESEL: &str = "85020212343";

fn person_signer(pesel: &str) -> ksef_crypto::signer::InMemorySigner {
    use ksef_crypto::keys::{KeyKind, PrivateKey};
    let key = PrivateKey::generate(KeyKind::P256).unwrap();
    let cert = ksef_crypto::cert::test_personal(
        &key,
        "Jan",
        "Kowalski",
        ksef_crypto::cert::PersonId::Pesel(pesel.to_owned()),
    )
    .unwrap();
    ksef_crypto::signer::InMemorySigner::new(key, cert).unwrap()
}

/// Logs in with `signer` in `ctx`; returns the final auth status and, on 200, the access token.
async fn try_login(
    api: &Api,
    signer: &ksef_crypto::signer::InMemorySigner,
    ctx: ksef_model::auth_request::ContextIdentifier,
) -> (Value, Option<String>) {
    use ksef_model::auth_request::{AuthTokenRequest, SubjectIdentifierType};
    let ch = api.challenge().await;
    let req = AuthTokenRequest::builder(ch["challenge"].as_str().unwrap().parse().unwrap(), ctx)
        .subject_identifier_type(SubjectIdentifierType::CertificateSubject)
        .build()
        .unwrap();
    let xml = ksef_crypto::xades::sign(&req.to_xml().unwrap(), signer).unwrap();
    let r = api.submit_xades(xml, "").await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let op = r.json["authenticationToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let st = api
        .auth_status(r.json["referenceNumber"].as_str().unwrap(), &op)
        .await;
    if st["status"]["code"] != 200 {
        return (st, None);
    }
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access = r.json["accessToken"]["token"].as_str().unwrap().to_owned();
    (st, Some(access))
}

fn nip_ctx(nip: &str) -> ksef_model::auth_request::ContextIdentifier {
    ksef_model::auth_request::ContextIdentifier::Nip(nip.parse().unwrap())
}

/// Polls `op` on `reference` until its `status.code` leaves 100; returns the whole answer.
async fn final_of(api: &Api, access: &str, op: OperationId, reference: &str) -> Value {
    for _ in 0..1000 {
        let r = api.call(op, &[reference], Some(access), Body::None).await;
        assert_eq!(r.status, 200, "{op:?}: {:?}", r.json);
        if r.json["status"]["code"] != 100 {
            return r.json;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{op:?} {reference} stayed 100");
}

/// Enrolls an authentication certificate for `key`; returns (enrollment reference, serial).
async fn enroll(api: &Api, access: &str, key: &ksef_crypto::keys::PrivateKey) -> (String, String) {
    let data = api
        .call(
            OperationId::CertificateEnrollmentData,
            &[],
            Some(access),
            Body::None,
        )
        .await;
    assert_eq!(data.status, 200, "{:?}", data.json);
    let d = &data.json;
    let opt = |k: &str| d[k].as_str().map(str::to_owned);
    let dn = ksef_crypto::cert::DistinguishedName {
        common_name: d["commonName"].as_str().unwrap().to_owned(),
        country_name: d["countryName"].as_str().unwrap().to_owned(),
        given_name: opt("givenName"),
        surname: opt("surname"),
        serial_number: opt("serialNumber"),
        unique_identifier: opt("uniqueIdentifier"),
        organization_name: opt("organizationName"),
        organization_identifier: opt("organizationIdentifier"),
    };
    let csr = ksef_crypto::csr::CertificateRequest::new(&dn, key).unwrap();
    let r = api
        .call(
            OperationId::EnrollCertificate,
            &[],
            Some(access),
            Body::Json(json!({"certificateName": "po restarcie",
                "certificateType": "Authentication", "csr": csr.to_base64()})),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let st = final_of(
        api,
        access,
        OperationId::CertificateEnrollmentStatus,
        &reference,
    )
    .await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let serial = st["certificateSerialNumber"].as_str().unwrap().to_owned();
    (reference, serial)
}

async fn retrieve_cert(api: &Api, access: &str, serial: &str) -> ksef_crypto::cert::Certificate {
    let r = api
        .call(
            OperationId::RetrieveCertificates,
            &[],
            Some(access),
            Body::Json(json!({"certificateSerialNumbers": [serial]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    ksef_crypto::cert::Certificate::from_base64_der(
        r.json["certificates"][0]["certificate"].as_str().unwrap(),
    )
    .unwrap()
}

async fn start_export(
    api: &Api,
    access: &str,
    key: &ksef_crypto::encryption::SessionKey,
) -> String {
    let (pk, id) = api.mf_key("SymmetricKeyEncryption").await;
    let info = key.encryption_info(&pk, Some(&id)).unwrap();
    let from = (time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let r = api
        .call(
            OperationId::StartInvoiceExport,
            &[],
            Some(access),
            Body::Json(json!({
                "encryption": {"encryptedSymmetricKey": info.encrypted_symmetric_key,
                    "initializationVector": info.initialization_vector, "publicKeyId": id},
                "filters": {"subjectType": "Subject1",
                    "dateRange": {"dateType": "PermanentStorage", "from": from}},
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    r.json["referenceNumber"].as_str().unwrap().to_owned()
}

/// Downloads and decrypts every part of a finished export.
async fn export_package(
    api: &Api,
    key: &ksef_crypto::encryption::SessionKey,
    status: &Value,
) -> Vec<u8> {
    let mut out = Vec::new();
    for part in status["package"]["parts"].as_array().unwrap() {
        let r = api
            .http
            .get(part["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        out.extend(key.decrypt(&r.bytes().await.unwrap()).unwrap());
    }
    out
}

/// A Zip of `invoices`, encrypted in one part, and the body that opens its batch session.
fn batch_of(
    invoices: &[(String, Vec<u8>)],
    key: &ksef_crypto::encryption::SessionKey,
    mf: &(ksef_crypto::keys::PublicKey, String),
) -> (Value, Vec<u8>) {
    use std::io::Write as _;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (name, bytes) in invoices {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    let archive = zip.finish().unwrap().into_inner();
    let part = key.encrypt(&archive);
    let info = key.encryption_info(&mf.0, Some(&mf.1)).unwrap();
    let h = ksef_crypto::hash::sha256_base64;
    let body = json!({
        "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
        "batchFile": {"fileSize": archive.len(), "fileHash": h(&archive), "compressionType": "Zip",
            "fileParts": [{"ordinalNumber": 1, "fileSize": part.len(), "fileHash": h(&part)}]},
        "encryption": {"encryptedSymmetricKey": info.encrypted_symmetric_key,
            "initializationVector": info.initialization_vector,
            "publicKeyId": info.public_key_id},
    });
    (body, part)
}

/// Opens a batch session, uploads its part and closes it; returns the session reference.
async fn open_upload_close(api: &Api, access: &str, invoices: &[(String, Vec<u8>)]) -> String {
    let key = ksef_crypto::encryption::SessionKey::generate().unwrap();
    let mf = api.mf_key("SymmetricKeyEncryption").await;
    let (body, part) = batch_of(invoices, &key, &mf);
    let r = api
        .call(
            OperationId::OpenBatchSession,
            &[],
            Some(access),
            Body::Json(body),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let session = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let req = &r.json["partUploadRequests"][0];
    let mut rb = api.http.put(req["url"].as_str().unwrap());
    for (k, v) in req["headers"].as_object().unwrap() {
        rb = rb.header(k.as_str(), v.as_str().unwrap());
    }
    assert_eq!(rb.body(part).send().await.unwrap().status(), 201);
    let r = api
        .call(
            OperationId::CloseBatchSession,
            &[&session],
            Some(access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 204, "{:?}", r.json);
    session
}

/// KSeF numbers of a session's invoices, in ordinal order.
async fn session_invoices(api: &Api, access: &str, session: &str) -> Vec<String> {
    let r = api
        .call_q(
            OperationId::ListSessionInvoices,
            &[session],
            "?pageSize=100",
            Some(access),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    r.json["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap_or_default().to_owned())
        .collect()
}

async fn session_upo_page(api: &Api, access: &str, session: &str, status: &Value) -> Vec<u8> {
    let page = status["upo"]["pages"][0]["referenceNumber"]
        .as_str()
        .unwrap();
    let r = api
        .call(
            OperationId::SessionUpo,
            &[session, page],
            Some(access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    r.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_area_survives_a_restart() {
    let dir = temp_dir("areas");
    let (sim, api) = start_in(&dir).await;
    let seal = signer("xmlsec1cli-rsa-seal");

    // Test data: a person of NIP, a local government with a subunit, attachment consent, the
    // context's session limits.
    api.testdata_person(NIP, PESEL).await;
    let r = api
        .call(
            OperationId::TestdataCreateSubject,
            &[],
            None,
            Body::Json(json!({"subjectNip": OFFICE_NIP, "subjectType": "JST",
                "description": "Gmina testowa",
                "subunits": [{"subjectNip": SUB_NIP, "description": "Szkoła"}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = api
        .call(
            OperationId::TestdataEnableAttachments,
            &[],
            None,
            Body::Json(json!({"nip": NIP})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let (access, _, _) = api.login(&seal, NIP).await;
    let limits = json!({"maxInvoiceSizeInMB": 2, "maxInvoiceWithAttachmentSizeInMB": 4,
        "maxInvoices": 50});
    let r = api
        .call(
            OperationId::TestdataSetSessionLimits,
            &[],
            Some(&access),
            Body::Json(json!({"onlineSession": limits, "batchSession": limits})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);

    // A permission grant and its operation.
    let r = api
        .call(
            OperationId::GrantPersonPermissions,
            &[],
            Some(&access),
            Body::Json(json!({
                "subjectIdentifier": {"type": "Pesel", "value": OTHER_PESEL},
                "permissions": ["InvoiceRead"],
                "description": "Księgowa",
                "subjectDetails": {"subjectDetailsType": "PersonByIdentifier",
                    "personById": {"firstName": "Anna", "lastName": "Nowak"}},
            })),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let grant_op = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let st = final_of(
        &api,
        &access,
        OperationId::PermissionOperationStatus,
        &grant_op,
    )
    .await;
    assert_eq!(st["status"]["code"], 200, "{st}");

    // A KSeF certificate.
    let cert_key =
        ksef_crypto::keys::PrivateKey::generate(ksef_crypto::keys::KeyKind::P256).unwrap();
    let (enrollment, serial) = enroll(&api, &access, &cert_key).await;
    let cert_before = retrieve_cert(&api, &access, &serial).await;

    // A Peppol provider (registered by its first login in a PeppolId context).
    let (st, _) = try_login(
        &api,
        &seal,
        ksef_model::auth_request::ContextIdentifier::PeppolId("PPL123456".parse().unwrap()),
    )
    .await;
    assert_eq!(st["status"]["code"], 200, "{st}");

    // An accepted invoice, a collective identifier for it and a finished export.
    let (session, key) = api.open_session(&access).await;
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "AREA-1"))
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
    let ksef = st["ksefNumber"].as_str().unwrap().to_owned();
    // (Once the invoice is in permanent storage.)
    download(&api, &access, &ksef).await;
    let r = api
        .call(
            OperationId::CreateCollectiveIdentifier,
            &[],
            Some(&access),
            Body::Json(json!({"invoices": [{"ksefNumber": ksef, "description": "raty"}]})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let collective = r.json["collectiveIdentifierNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    let export_key = ksef_crypto::encryption::SessionKey::generate().unwrap();
    let export = start_export(&api, &access, &export_key).await;
    let export_before = final_of(&api, &access, OperationId::InvoiceExportStatus, &export).await;
    assert_eq!(export_before["status"]["code"], 200, "{export_before}");
    assert_eq!(export_before["package"]["invoiceCount"], 1);
    let package_before = export_package(&api, &export_key, &export_before).await;

    // A finished batch session.
    let batch = open_upload_close(
        &api,
        &access,
        &[
            ("a.xml".into(), invoice(NIP, "AREA-B1")),
            ("b.xml".into(), invoice(NIP, "AREA-B2")),
        ],
    )
    .await;
    let batch_before = api.session_final(&access, &batch).await;
    assert_eq!(batch_before["status"]["code"], 200, "{batch_before}");
    assert_eq!(batch_before["successfulInvoiceCount"], 2);
    let batch_numbers = session_invoices(&api, &access, &batch).await;
    let batch_upo = session_upo_page(&api, &access, &batch, &batch_before).await;
    sim.shutdown().await;

    // Second run on the same directory.
    let (sim, api) = start_in(&dir).await;
    // Test data: the person logs in as the owner of NIP; the local government's roles; the
    // attachment consent; the limits.
    let (st, _) = try_login(&api, &person_signer(PESEL), nip_ctx(NIP)).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let (_, jst) = try_login(&api, &signer_for_nip(OFFICE_NIP), nip_ctx(OFFICE_NIP)).await;
    let roles = api
        .call(
            OperationId::QueryEntityRoles,
            &[],
            jst.as_deref(),
            Body::None,
        )
        .await;
    assert_eq!(roles.status, 200, "{:?}", roles.json);
    assert_eq!(roles.json["roles"][0]["role"], "LocalGovernmentUnit");
    let get = |op| api.call(op, &[], Some(&access), Body::None);
    let r = get(OperationId::AttachmentPermissionStatus).await;
    assert_eq!(r.json["isAttachmentAllowed"], true, "{:?}", r.json);
    let r = get(OperationId::ContextLimits).await;
    assert_eq!(r.json["onlineSession"]["maxInvoices"], 50, "{:?}", r.json);

    // The grant: its operation status, the grant in a query, and its effect.
    let st = api
        .call(
            OperationId::PermissionOperationStatus,
            &[&grant_op],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(st.json["status"]["code"], 200, "{:?}", st.json);
    let r = api
        .call_q(
            OperationId::QueryPersonPermissions,
            &[],
            "?pageSize=100",
            Some(&access),
            Body::Json(json!({"queryType": "PermissionsInCurrentContext",
                "authorizedIdentifier": {"type": "Pesel", "value": OTHER_PESEL}})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let perms = r.json["permissions"].as_array().unwrap();
    assert_eq!(perms.len(), 1, "{:?}", r.json);
    assert_eq!(perms[0]["permissionScope"], "InvoiceRead");
    let (st, _) = try_login(&api, &person_signer(OTHER_PESEL), nip_ctx(NIP)).await;
    assert_eq!(st["status"]["code"], 200, "{st}");

    // The certificate: its enrollment, the same certificate, and it still logs in.
    let st = api
        .call(
            OperationId::CertificateEnrollmentStatus,
            &[&enrollment],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(st.json["certificateSerialNumber"], serial.as_str());
    let cert_after = retrieve_cert(&api, &access, &serial).await;
    assert_eq!(cert_after.der(), cert_before.der());
    let issued = ksef_crypto::signer::InMemorySigner::new(cert_key, cert_after).unwrap();
    let (st, _) = try_login(&api, &issued, nip_ctx(NIP)).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    assert_eq!(st["authenticationMethod"], "InternalCertificate", "{st}");

    // The Peppol provider.
    let r = api
        .call(OperationId::QueryPeppolProviders, &[], None, Body::None)
        .await;
    assert_eq!(
        r.json["peppolProviders"][0]["id"], "PPL123456",
        "{:?}",
        r.json
    );

    // The collective identifier.
    let r = api
        .call(
            OperationId::CollectiveIdentifierInvoices,
            &[&collective],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(r.json["invoices"][0]["ksefNumber"], ksef.as_str());

    // The export: same status, and its package is still downloadable, byte for byte.
    let export_after = api
        .call(
            OperationId::InvoiceExportStatus,
            &[&export],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(export_after.json["status"]["code"], 200);
    // (The part URLs carry the new port; the package is the same.)
    for k in ["invoiceCount", "size", "permanentStorageHwmDate"] {
        assert_eq!(
            export_after.json["package"][k], export_before["package"][k],
            "{k}"
        );
    }
    assert_eq!(
        export_after.json["package"]["parts"][0]["encryptedPartHash"],
        export_before["package"]["parts"][0]["encryptedPartHash"]
    );
    assert_eq!(
        export_package(&api, &export_key, &export_after.json).await,
        package_before
    );

    // The batch session: its status, its invoices and its UPO.
    let r = api
        .call(
            OperationId::SessionStatus,
            &[&batch],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.json["status"]["code"], 200);
    assert_eq!(r.json["successfulInvoiceCount"], 2);
    assert_eq!(session_invoices(&api, &access, &batch).await, batch_numbers);
    assert_eq!(
        session_upo_page(&api, &access, &batch, &r.json).await,
        batch_upo
    );
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A seal for `nip` (a fresh key; the simulator trusts any test seal).
fn signer_for_nip(nip: &str) -> ksef_crypto::signer::InMemorySigner {
    use ksef_crypto::keys::{KeyKind, PrivateKey};
    let key = PrivateKey::generate(KeyKind::P256).unwrap();
    let cert = ksef_crypto::cert::test_seal(&key, "Gmina Testowa", nip).unwrap();
    ksef_crypto::signer::InMemorySigner::new(key, cert).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_before_processing_resumes_the_batch_and_the_export() {
    let dir = temp_dir("resume");
    // First run: batch processing and export building wait longer than the run lasts.
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .state_dir(&dir)
        .batch_delay_for_tests(Duration::from_secs(3600))
        .export_delay_for_tests(Duration::from_secs(3600))
        .start()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let (session, key) = api.open_session(&access).await;
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "RESUME-1"))
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
    let ksef = st["ksefNumber"].as_str().unwrap().to_owned();
    download(&api, &access, &ksef).await;
    let batch = open_upload_close(
        &api,
        &access,
        &[
            ("a.xml".into(), invoice(NIP, "RESUME-B1")),
            ("b.xml".into(), invoice(NIP, "RESUME-B2")),
            ("c.xml".into(), invoice(NIP, "RESUME-B3")),
        ],
    )
    .await;
    let export_key = ksef_crypto::encryption::SessionKey::generate().unwrap();
    let export = start_export(&api, &access, &export_key).await;
    // Both are acknowledged and still in progress when the simulator stops.
    let r = api
        .call(
            OperationId::SessionStatus,
            &[&batch],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.json["status"]["code"], 150, "{:?}", r.json);
    let r = api
        .call(
            OperationId::InvoiceExportStatus,
            &[&export],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.json["status"]["code"], 100, "{:?}", r.json);
    sim.shutdown().await;

    // Second run (no delays): both finish.
    let (sim, api) = start_in(&dir).await;
    let done = api.session_final(&access, &batch).await;
    assert_eq!(done["status"]["code"], 200, "{done}");
    assert_eq!(done["successfulInvoiceCount"], 3);
    let numbers = session_invoices(&api, &access, &batch).await;
    assert_eq!(numbers.len(), 3);
    assert!(numbers.iter().all(|n| n.starts_with(NIP)), "{numbers:?}");
    assert!(
        !session_upo_page(&api, &access, &batch, &done)
            .await
            .is_empty()
    );
    let st = final_of(&api, &access, OperationId::InvoiceExportStatus, &export).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    assert_eq!(st["package"]["invoiceCount"], 1, "{st}");
    let package = export_package(&api, &export_key, &st).await;
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(package)).unwrap();
    assert!(z.by_name(&format!("{ksef}.xml")).is_ok());
    sim.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}
