//! Invoice retrieval over HTTP: download by KSeF number (visibility, 21164), the metadata query
//! (filters, subject types, paging, sorting, the 3-month rule, HWM and 21183, truncation) and
//! exports (encrypted Zip/TarGz packages with `_metadata.json`, presigned parts, 415, 420,
//! truncation, several parts). Every JSON response is checked against the spec's schema.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

mod common;

use std::io::Read as _;
use std::time::Duration;

use common::*;
use ksef_crypto::encryption::SessionKey;
use ksef_model::operations::OperationId;
use ksef_sim::Clock as _;
use serde_json::{Value, json};

/// Sends `xmls` in one session as the seller `NIP` and returns their KSeF numbers.
async fn send_all(api: &Api, access: &str, xmls: &[Vec<u8>]) -> Vec<String> {
    let (session, key) = api.open_session(access).await;
    let mut refs = Vec::new();
    for x in xmls {
        let r = api.send(access, &session, &key, x).await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        refs.push(r.json["referenceNumber"].as_str().unwrap().to_owned());
    }
    let mut out = Vec::new();
    for r in refs {
        let st = api.invoice_final(access, &session, &r).await;
        assert_eq!(st["status"]["code"], 200, "{st}");
        out.push(st["ksefNumber"].as_str().unwrap().to_owned());
    }
    // Let the permanent-storage dates pass.
    tokio::time::sleep(Duration::from_millis(150)).await;
    out
}

fn since() -> String {
    let t = time::OffsetDateTime::now_utc() - time::Duration::hours(1);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

fn filters(subject: &str, date_type: &str) -> Value {
    json!({"subjectType": subject, "dateRange": {"dateType": date_type, "from": since()}})
}

async fn query(api: &Api, access: &str, q: &str, body: Value) -> Resp {
    api.call_q(
        OperationId::QueryInvoiceMetadata,
        &[],
        q,
        Some(access),
        Body::Json(body),
        &[],
    )
    .await
}

fn numbers(r: &Resp) -> Vec<String> {
    r.json["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap().to_owned())
        .collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn assert_ascending(r: &Resp) {
    let dates: Vec<time::OffsetDateTime> = r.json["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            time::OffsetDateTime::parse(
                i["permanentStorageDate"].as_str().unwrap(),
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap()
        })
        .collect();
    assert!(dates.windows(2).all(|w| w[0] <= w[1]), "{dates:?}");
}

fn with_buyer(xml: Vec<u8>, buyer: &str) -> Vec<u8> {
    String::from_utf8(xml)
        .unwrap()
        .replacen("<NIP>1111111111</NIP>", &format!("<NIP>{buyer}</NIP>"), 1)
        .into_bytes()
}

fn with_authorized(xml: Vec<u8>, nip: &str) -> Vec<u8> {
    let pu = format!(
        "<PodmiotUpowazniony><DaneIdentyfikacyjne><NIP>{nip}</NIP><Nazwa>Komornik</Nazwa></DaneIdentyfikacyjne><Adres><KodKraju>PL</KodKraju><AdresL1>ul. Sądowa 1</AdresL1></Adres><RolaPU>2</RolaPU></PodmiotUpowazniony>"
    );
    String::from_utf8(xml)
        .unwrap()
        .replacen("<Fa>", &format!("{pu}<Fa>"), 1)
        .into_bytes()
}

fn with_subject3(xml: Vec<u8>, nip: &str) -> Vec<u8> {
    let p3 = format!(
        "<Podmiot3><DaneIdentyfikacyjne><NIP>{nip}</NIP><Nazwa>Odbiorca</Nazwa></DaneIdentyfikacyjne><Rola>2</Rola></Podmiot3>"
    );
    String::from_utf8(xml)
        .unwrap()
        .replacen("<Fa>", &format!("{p3}<Fa>"), 1)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_query_filters_visibility_and_download() {
    let (sim, api) = start().await;
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let ks = send_all(
        &api,
        &access,
        &[
            invoice(NIP, "Q/1"),
            with_buyer(invoice(NIP, "Q/2"), OTHER_NIP),
            with_subject3(invoice(NIP, "Q/3"), OTHER_NIP),
        ],
    )
    .await;

    // Seller view, ascending by permanent storage, with the HWM.
    let r = query(&api, &access, "", filters("Subject1", "PermanentStorage")).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(sorted(numbers(&r)), sorted(ks.clone()));
    assert_ascending(&r);
    // From here on `ks` is in permanent-storage order; `sent` keeps the send order.
    let sent = ks;
    let ks = numbers(&r);
    assert_eq!(r.json["hasMore"], false);
    assert_eq!(r.json["isTruncated"], false);
    assert!(r.json["permanentStorageHwmDate"].is_string());
    let first = &r.json["invoices"][0];
    assert_eq!(first["seller"]["nip"], NIP);
    assert_eq!(first["buyer"]["identifier"]["type"], "Nip");
    assert_eq!(first["grossAmount"], 53.63);
    assert_eq!(first["netAmount"], 43.6);
    assert_eq!(first["vatAmount"], 10.03);
    assert_eq!(first["currency"], "PLN");
    assert_eq!(first["invoiceType"], "Vat");
    assert_eq!(first["formCode"]["systemCode"], "FA (3)");
    assert_eq!(first["invoicingMode"], "Online");
    let third = r.json["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["ksefNumber"] == sent[2].as_str())
        .unwrap();
    assert_eq!(third["thirdSubjects"][0]["role"], 2);
    // Other date types carry no HWM.
    let r = query(&api, &access, "", filters("Subject1", "Invoicing")).await;
    assert_eq!(numbers(&r).len(), 3);
    assert!(r.json.get("permanentStorageHwmDate").is_none());
    let mut issue = filters("Subject1", "Issue");
    issue["dateRange"]["from"] = json!(format!(
        "{}T00:00:00",
        time::OffsetDateTime::now_utc().date()
    ));
    let r = query(&api, &access, "", issue).await;
    assert_eq!(numbers(&r).len(), 3, "{:?}", r.json);

    // Descending.
    let r = query(
        &api,
        &access,
        "?sortOrder=Desc",
        filters("Subject1", "PermanentStorage"),
    )
    .await;
    let mut rev = ks.clone();
    rev.reverse();
    assert_eq!(numbers(&r), rev);

    // Filters, each narrowing to the expected rows.
    let cases: Vec<(Value, Vec<&String>)> = vec![
        (json!({"ksefNumber": ks[1]}), vec![&ks[1]]),
        (
            json!({"invoiceNumber": "FA/GRQMB-Q/3/05/2025"}),
            vec![&sent[2]],
        ),
        (json!({"sellerNip": NIP}), ks.iter().collect()),
        (json!({"sellerNip": OTHER_NIP}), vec![]),
        (
            json!({"buyerIdentifier": {"type": "Nip", "value": OTHER_NIP}}),
            vec![&sent[1]],
        ),
        (json!({"buyerIdentifier": {"type": "None"}}), vec![]),
        (
            json!({"amount": {"type": "Brutto", "from": 53.0, "to": 54.0}}),
            ks.iter().collect(),
        ),
        (json!({"amount": {"type": "Vat", "from": 11.0}}), vec![]),
        (
            json!({"amount": {"type": "Netto", "to": 43.6}}),
            ks.iter().collect(),
        ),
        (json!({"currencyCodes": ["EUR"]}), vec![]),
        (
            json!({"currencyCodes": ["EUR", "PLN"]}),
            ks.iter().collect(),
        ),
        (json!({"invoiceTypes": ["Kor"]}), vec![]),
        (json!({"invoiceTypes": ["Vat"]}), ks.iter().collect()),
        (json!({"formType": "FA"}), ks.iter().collect()),
        (json!({"formType": "FA_RR"}), vec![]),
        (json!({"invoicingMode": "Offline"}), vec![]),
        (json!({"hasAttachment": true}), vec![]),
        (json!({"isSelfInvoicing": false}), ks.iter().collect()),
    ];
    for (extra, want) in cases {
        let mut body = filters("Subject1", "PermanentStorage");
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = query(&api, &access, "", body).await;
        assert_eq!(r.status, 200, "{extra}: {:?}", r.json);
        let want: Vec<String> = want.into_iter().cloned().collect();
        assert_eq!(numbers(&r), want, "{extra}");
    }

    // An invoice with an attachment (the seller has the consent), issued on an earlier day (so
    // marked Offline).
    let r = api
        .call(
            OperationId::TestdataEnableAttachments,
            &[],
            None,
            Body::Json(json!({"nip": NIP})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let with_attachment = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/invoices/invoice-template-fa-3-with-attachment.xml"
    ))
    .unwrap()
    .replace("#nip#", NIP)
    .replace("#invoice_number#", "Q/4");
    let k45 = send_all(
        &api,
        &access,
        &[
            with_attachment.into_bytes(),
            with_authorized(invoice(NIP, "Q/5"), OTHER_NIP),
        ],
    )
    .await;
    let k4 = vec![k45[0].clone()];
    for extra in [
        json!({"hasAttachment": true}),
        json!({"invoicingMode": "Offline"}),
    ] {
        let mut body = filters("Subject1", "PermanentStorage");
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let r = query(&api, &access, "", body).await;
        assert_eq!(numbers(&r), k4, "{extra}");
        assert_eq!(r.json["invoices"][0]["hasAttachment"], true);
        assert_eq!(r.json["invoices"][0]["invoicingMode"], "Offline");
    }

    // Validation: page size, sort order, 3-month range, unknown enums, restrict beyond HWM.
    let body = filters("Subject1", "PermanentStorage");
    for q in ["?pageSize=5", "?pageSize=251", "?sortOrder=Sideways"] {
        let r = query(&api, &access, q, body.clone()).await;
        assert_eq!((r.status, r.code()), (400, 21405), "{q}");
    }
    let mut long = body.clone();
    long["dateRange"] = json!({"dateType": "Invoicing", "from": "2026-01-01T00:00:00Z", "to": "2026-04-02T00:00:00Z"});
    assert_eq!(query(&api, &access, "", long).await.code(), 21405);
    let mut bad = body.clone();
    bad["subjectType"] = json!("Subject9");
    assert_eq!(query(&api, &access, "", bad).await.code(), 21405);
    let mut future = body.clone();
    future["dateRange"]["from"] = json!("2099-01-01T00:00:00Z");
    future["dateRange"]["to"] = json!("2099-02-01T00:00:00Z");
    future["dateRange"]["restrictToPermanentStorageHwmDate"] = json!(true);
    let r = query(&api, &access, "", future).await;
    assert_eq!((r.status, r.code()), (400, 21183));

    // The buyer's and third subject's contexts see their own invoices.
    api.testdata_grant(OTHER_NIP, ("Nip", NIP), &["InvoiceRead"])
        .await;
    let (other, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), OTHER_NIP).await;
    let r = query(&api, &other, "", filters("Subject2", "PermanentStorage")).await;
    assert_eq!(numbers(&r), vec![sent[1].clone()]);
    let r = query(&api, &other, "", filters("Subject3", "PermanentStorage")).await;
    assert_eq!(numbers(&r), vec![sent[2].clone()]);
    let r = query(&api, &other, "", filters("Subject1", "PermanentStorage")).await;
    assert!(numbers(&r).is_empty());
    let r = query(
        &api,
        &other,
        "",
        filters("SubjectAuthorized", "PermanentStorage"),
    )
    .await;
    assert_eq!(numbers(&r), vec![k45[1].clone()]);
    assert_eq!(r.json["invoices"][0]["authorizedSubject"]["role"], 2);

    // Download: the seller and the buyer get the XML with its hash; others 21164.
    let r = api
        .call(
            OperationId::DownloadInvoice,
            &[&sent[1]],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-ms-meta-hash").unwrap(),
        ksef_crypto::hash::sha256_base64(&r.body)
    );
    assert_eq!(r.body, with_buyer(invoice(NIP, "Q/2"), OTHER_NIP));
    let r = api
        .call(
            OperationId::DownloadInvoice,
            &[&sent[1]],
            Some(&other),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    let r = api
        .call(
            OperationId::DownloadInvoice,
            &[&sent[0]],
            Some(&other),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21164));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_and_truncation() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .retrieval_limits_for_tests(15, 50_000_000)
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let xmls: Vec<Vec<u8>> = (0..23).map(|i| invoice(NIP, &format!("P/{i}"))).collect();
    let ks = send_all(&api, &access, &xmls).await;
    let body = filters("Subject1", "PermanentStorage");
    let p0 = query(&api, &access, "?pageSize=10&pageOffset=0", body.clone()).await;
    assert_eq!(
        (p0.json["hasMore"].clone(), p0.json["isTruncated"].clone()),
        (json!(true), json!(false))
    );
    let p1 = query(&api, &access, "?pageSize=10&pageOffset=1", body.clone()).await;
    // The cap (15) is reached on the second page: truncated, more exist.
    assert_eq!(numbers(&p1).len(), 5);
    assert_eq!(
        (p1.json["hasMore"].clone(), p1.json["isTruncated"].clone()),
        (json!(true), json!(true))
    );
    assert_ascending(&p0);
    assert_ascending(&p1);
    let mut got: Vec<String> = numbers(&p0);
    got.extend(numbers(&p1));
    let unique: std::collections::BTreeSet<&String> = got.iter().collect();
    assert_eq!(unique.len(), 15);
    assert!(got.iter().all(|k| ks.contains(k)));
    sim.shutdown().await;
}

/// Polls an export until it leaves 100.
async fn export_final(api: &Api, access: &str, reference: &str) -> Value {
    // A deadline, not a count of polls: on a loaded runner an export takes seconds.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while std::time::Instant::now() < deadline {
        let r = api
            .call(
                OperationId::InvoiceExportStatus,
                &[reference],
                Some(access),
                Body::None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        if r.json["status"]["code"] != 100 {
            return r.json;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("export stayed in progress");
}

async fn start_export(api: &Api, access: &str, key: &SessionKey, body: Value) -> Resp {
    let (pk, id) = api.mf_key("SymmetricKeyEncryption").await;
    let info = key.encryption_info(&pk, Some(&id)).unwrap();
    let mut b = json!({
        "encryption": {
            "encryptedSymmetricKey": info.encrypted_symmetric_key,
            "initializationVector": info.initialization_vector,
            "publicKeyId": id,
        },
    });
    for (k, v) in body.as_object().unwrap() {
        b[k] = v.clone();
    }
    api.call(
        OperationId::StartInvoiceExport,
        &[],
        Some(access),
        Body::Json(b),
    )
    .await
}

/// Downloads, verifies and decrypts every part, then concatenates them.
async fn package(api: &Api, key: &SessionKey, status: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for part in status["package"]["parts"].as_array().unwrap() {
        let r = api
            .http
            .get(part["url"].as_str().unwrap())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let enc = r.bytes().await.unwrap();
        assert_eq!(
            ksef_crypto::hash::sha256_base64(&enc),
            part["encryptedPartHash"].as_str().unwrap()
        );
        assert_eq!(
            enc.len() as u64,
            part["encryptedPartSize"].as_u64().unwrap()
        );
        let plain = key.decrypt(&enc).unwrap();
        assert_eq!(
            ksef_crypto::hash::sha256_base64(&plain),
            part["partHash"].as_str().unwrap()
        );
        out.extend_from_slice(&plain);
    }
    out
}

fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut v = Vec::new();
            f.read_to_end(&mut v).unwrap();
            (f.name().unwrap().to_string(), v)
        })
        .collect()
}

fn untar(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut t = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    t.entries()
        .unwrap()
        .map(|e| {
            let mut e = e.unwrap();
            let name = e.path().unwrap().to_string_lossy().into_owned();
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (name, v)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_zip_targz_metadata_only_truncated_and_failures() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .retrieval_limits_for_tests(4, 4096)
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let xmls: Vec<Vec<u8>> = (0..6).map(|i| invoice(NIP, &format!("E/{i}"))).collect();
    let sent = send_all(&api, &access, &xmls).await;
    let key = SessionKey::generate().unwrap();
    // The first 4 in permanent-storage order (the query is capped at 4 too).
    let r = query(
        &api,
        &access,
        "?pageSize=10",
        filters("Subject1", "PermanentStorage"),
    )
    .await;
    let ks = numbers(&r);
    assert_eq!(ks.len(), 4);

    // Zip, truncated at 4 invoices, split into 4 KB parts.
    let mut f = filters("Subject1", "PermanentStorage");
    f["dateRange"]["restrictToPermanentStorageHwmDate"] = json!(true);
    let r = start_export(&api, &access, &key, json!({"filters": f})).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let st = export_final(&api, &access, r.json["referenceNumber"].as_str().unwrap()).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let p = &st["package"];
    assert_eq!(p["invoiceCount"], 4);
    assert_eq!(p["isTruncated"], true);
    assert!(p["lastPermanentStorageDate"].is_string());
    assert!(p["permanentStorageHwmDate"].is_string());
    assert!(p["parts"].as_array().unwrap().len() > 1, "{p}");
    let files = unzip(&package(&api, &key, &st).await);
    let meta: Value =
        serde_json::from_slice(&files.iter().find(|(n, _)| n == "_metadata.json").unwrap().1)
            .unwrap();
    let listed: Vec<&str> = meta["invoices"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap())
        .collect();
    assert_eq!(
        listed,
        ks[..4].iter().map(String::as_str).collect::<Vec<_>>()
    );
    for k in &ks {
        let (_, xml) = files
            .iter()
            .find(|(n, _)| *n == format!("{k}.xml"))
            .unwrap();
        let i = sent.iter().position(|s| s == k).unwrap();
        assert_eq!(xml, &xmls[i]);
    }

    // TarGz from the last date: the remaining invoices (the boundary one again).
    let mut f2 = f.clone();
    f2["dateRange"]["from"] = p["lastPermanentStorageDate"].clone();
    let r = start_export(
        &api,
        &access,
        &key,
        json!({"filters": f2, "compressionType": "TarGz"}),
    )
    .await;
    let st = export_final(&api, &access, r.json["referenceNumber"].as_str().unwrap()).await;
    assert_eq!(st["package"]["isTruncated"], false);
    let files = untar(&package(&api, &key, &st).await);
    let mut names: Vec<String> = files.iter().map(|(n, _)| n.clone()).collect();
    names.sort();
    let mut want: Vec<String> = sent
        .iter()
        .filter(|k| !ks[..3].contains(k))
        .map(|k| format!("{k}.xml"))
        .collect();
    want.push("_metadata.json".into());
    want.sort();
    assert_eq!(names, want);

    // Other date types: truncated packages name their own last date; no HWM.
    for (date_type, field) in [
        ("Invoicing", "lastInvoicingDate"),
        ("Issue", "lastIssueDate"),
    ] {
        let mut f3 = filters("Subject1", date_type);
        if date_type == "Issue" {
            f3["dateRange"]["from"] = json!(format!(
                "{}T00:00:00Z",
                time::OffsetDateTime::now_utc().date()
            ));
        }
        let r = start_export(&api, &access, &key, json!({"filters": f3})).await;
        let st = export_final(&api, &access, r.json["referenceNumber"].as_str().unwrap()).await;
        let p = &st["package"];
        assert_eq!(p["isTruncated"], true, "{date_type}: {st}");
        assert!(p[field].is_string(), "{date_type}: {p}");
        assert!(p.get("permanentStorageHwmDate").is_none());
    }

    // Metadata only.
    let r = start_export(
        &api,
        &access,
        &key,
        json!({"filters": f2, "onlyMetadata": true}),
    )
    .await;
    let st = export_final(&api, &access, r.json["referenceNumber"].as_str().unwrap()).await;
    let files = unzip(&package(&api, &key, &st).await);
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "_metadata.json");

    // A key that does not unwrap: 415. A range past the HWM with the restrict flag: 420.
    let mut bad = json!({"filters": f.clone()});
    bad["encryption"] = json!({
        "encryptedSymmetricKey": ksef_model::Base64Bytes::from(vec![1u8; 256]).to_base64(),
        "initializationVector": "AAAAAAAAAAAAAAAAAAAAAA==",
    });
    let r = api
        .call(
            OperationId::StartInvoiceExport,
            &[],
            Some(&access),
            Body::Json(bad),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let st = export_final(&api, &access, r.json["referenceNumber"].as_str().unwrap()).await;
    assert_eq!(st["status"]["code"], 415);
    let mut late = f.clone();
    late["dateRange"]["from"] = json!("2099-01-01T00:00:00Z");
    late["dateRange"]["to"] = json!("2099-02-01T00:00:00Z");
    let r = start_export(&api, &access, &key, json!({"filters": late})).await;
    let st = export_final(&api, &access, r.json["referenceNumber"].as_str().unwrap()).await;
    assert_eq!(st["status"]["code"], 420);
    // Unknown export: 21175. A wrong part URL: 403.
    let r = api
        .call(
            OperationId::InvoiceExportStatus,
            &["20250101-EH-0000000000-0000000000-00"],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21175));
    let r = api
        .http
        .get(format!(
            "{}/storage/export/nope",
            sim.base_url().trim_end_matches("/v2")
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_yet_stored_invoices_and_export_expiry_on_a_manual_clock() {
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
    let (session, key) = api.open_session(&access).await;
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "M/1"))
        .await;
    let st = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    let k = st["ksefNumber"].as_str().unwrap().to_owned();
    let from = (clock.now() - time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({"subjectType": "Subject1", "dateRange": {"dateType": "PermanentStorage", "from": from}});

    // The clock stands still: the invoice has its KSeF number but is not stored permanently
    // yet — the download answers 21165 and the query does not list it (the HWM stays below it).
    let r = api
        .call(
            OperationId::DownloadInvoice,
            &[&k],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21165));
    let r = query(&api, &access, "", body.clone()).await;
    assert!(numbers(&r).is_empty());
    let hwm = r.json["permanentStorageHwmDate"]
        .as_str()
        .unwrap()
        .to_owned();
    clock.advance(time::Duration::seconds(1));
    let r = query(&api, &access, "", body.clone()).await;
    assert_eq!(numbers(&r), vec![k.clone()]);
    assert!(r.json["permanentStorageHwmDate"].as_str().unwrap() > hwm.as_str());
    let r = api
        .call(
            OperationId::DownloadInvoice,
            &[&k],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);

    // An export's package expires (210, no package); its status is gone after 7 days (410).
    let export_key = SessionKey::generate().unwrap();
    let r = start_export(&api, &access, &export_key, json!({"filters": body})).await;
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let st = export_final(&api, &access, &reference).await;
    assert_eq!(st["status"]["code"], 200);
    assert!(st["packageExpirationDate"].is_string());
    clock.advance(time::Duration::days(4));
    let (access, _, _) = api.login(&seal, NIP).await;
    let st = export_final(&api, &access, &reference).await;
    assert_eq!(st["status"]["code"], 210, "{st}");
    assert!(st.get("package").is_none());
    clock.advance(time::Duration::days(4));
    let (access, _, _) = api.login(&seal, NIP).await;
    let r = api
        .call(
            OperationId::InvoiceExportStatus,
            &[&reference],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 410);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_ten_running_exports_per_context() {
    // Exports stay in progress for a minute, so ten of them are running at once.
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .export_delay_for_tests(Duration::from_secs(60))
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    let key = SessionKey::generate().unwrap();
    let body = json!({"filters": filters("Subject1", "Invoicing")});
    let mut refs = Vec::new();
    for _ in 0..10 {
        let r = start_export(&api, &access, &key, body.clone()).await;
        assert_eq!(r.status, 201, "{:?}", r.json);
        refs.push(r.json["referenceNumber"].as_str().unwrap().to_owned());
    }
    for r in &refs {
        let st = api
            .call(
                OperationId::InvoiceExportStatus,
                &[r],
                Some(&access),
                Body::None,
            )
            .await;
        assert_eq!(st.json["status"]["code"], 100, "{:?}", st.json);
    }
    // The eleventh is refused with 21182, in both error formats.
    let r = start_export(&api, &access, &key, body.clone()).await;
    assert_eq!((r.status, r.code()), (400, 21182), "{:?}", r.json);
    let detail = r.json["exception"]["exceptionDetailList"][0]["details"][0]
        .as_str()
        .unwrap();
    assert!(detail.contains("10"), "{detail}");
    let mut problem = Api::new(sim.base_url());
    problem
        .headers
        .push(("X-Error-Format", "problem-details".into()));
    let r = start_export(&problem, &access, &key, body.clone()).await;
    assert_eq!(r.status, 400);
    assert!(r.content_type().starts_with("application/problem+json"));
    assert_eq!(r.code(), 21182);

    // The limit is per context: another context may still export.
    api.testdata_grant(OTHER_NIP, ("Nip", NIP), &["InvoiceRead"])
        .await;
    let (other, _, _) = api.login(&seal, OTHER_NIP).await;
    let r = start_export(&api, &other, &key, body.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    sim.shutdown().await;
}

/// A fixture template with its placeholders filled for the seller `nip`.
fn template(name: &str, nip: &str, number: &str) -> Vec<u8> {
    std::fs::read_to_string(format!(
        "{}/../../fixtures/invoices/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
    .replace("#nip#", nip)
    .replace("#supplier_nip#", &format!("PL{nip}"))
    .replace("#buyer_nip#", OTHER_NIP)
    .replace("#invoice_number#", number)
    .replace("#issue_date#", "2026-01-15")
    .replace("#due_date#", "2026-02-15")
    .replace("#buyer_reference#", "REF-1")
    .replace("#compliant#", "")
    .replace("#extended#", "")
    .replace("#iban#", "PL61109010140000071219812874")
    .replace("#ksef_number#", "5265877635-20260115-0100001AF629-AF")
    .into_bytes()
}

/// Opens an online session for a form code; returns (reference, key).
async fn open_form(api: &Api, access: &str, form: Value) -> (String, SessionKey) {
    let (pk, id) = api.mf_key("SymmetricKeyEncryption").await;
    let key = SessionKey::generate().unwrap();
    let info = key.encryption_info(&pk, Some(&id)).unwrap();
    let r = api
        .call(
            OperationId::OpenOnlineSession,
            &[],
            Some(access),
            Body::Json(json!({
                "formCode": form,
                "encryption": {
                    "encryptedSymmetricKey": info.encrypted_symmetric_key,
                    "initializationVector": info.initialization_vector,
                    "publicKeyId": info.public_key_id,
                },
            })),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    (r.json["referenceNumber"].as_str().unwrap().to_owned(), key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fa2_fa_rr_pef_and_pef_kor_are_verified_online() {
    let (sim, api) = start().await;
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let fa2 = |n: &str| template("invoice-template-fa-2.xml", NIP, n);
    let rr = |n: &str| template("invoice-template-fa-rr-1.xml", NIP, n);
    let pef = |n: &str| template("invoice-template-fa-3-pef.xml", NIP, n);
    let kor = |n: &str| template("invoice-template-fa-3-pef-correction.xml", NIP, n);
    let edit = |xml: Vec<u8>, from: &str, to: &str| {
        let s = String::from_utf8(xml).unwrap();
        assert!(s.contains(from), "{from}");
        s.replacen(from, to, 1).into_bytes()
    };
    // (form code, a valid document, invalid ones with a word their 430 detail names)
    type Case<'a> = (Value, Vec<u8>, Vec<(Vec<u8>, &'a str)>);
    let cases: Vec<Case<'_>> = vec![
        (
            json!({"systemCode": "FA (2)", "schemaVersion": "1-0E", "value": "FA"}),
            fa2("F2/1"),
            vec![
                (
                    edit(
                        fa2("F2/2"),
                        "<WariantFormularza>2<",
                        "<WariantFormularza>3<",
                    ),
                    "WariantFormularza",
                ),
                (edit(fa2("F2/3"), "<Fa>", "<Nieznany/><Fa>"), "Fa"),
                (
                    edit(
                        fa2("F2/4"),
                        "2025-05-27T12:07:41.197234Z",
                        "2021-05-27T12:07:41Z",
                    ),
                    "DataWytworzeniaFa",
                ),
                // The FA(3) template is not an FA(2) document (namespace and form code).
                (invoice(NIP, "F2/5"), "FA (2)"),
                // Deep in the document: an amount with three decimal places (fractionDigits=2).
                (
                    edit(fa2("F2/6"), "<P_13_1>35260.63<", "<P_13_1>35260.634<"),
                    "Fa/P_13_1: wartość '35260.634' narusza ograniczenie fractionDigits=2",
                ),
            ],
        ),
        (
            json!({"systemCode": "FA_RR (1)", "schemaVersion": "1-1E", "value": "FA_RR"}),
            rr("RR/1"),
            vec![
                (
                    edit(
                        rr("RR/2"),
                        "<P_4B>2026-02-23</P_4B>",
                        "<P_4B>2026-02-31</P_4B>",
                    ),
                    "P_4B",
                ),
                (
                    edit(rr("RR/3"), "<Podmiot2>", "<Podmiot2/><Podmiot2>"),
                    "Podmiot2",
                ),
                (
                    edit(
                        rr("RR/4"),
                        "<KodFormularza kodSystemowy=\"FA_RR (1)\" wersjaSchemy=\"1-1E\">FA_RR<",
                        "<KodFormularza kodSystemowy=\"FA_RR (1)\" wersjaSchemy=\"1-1E\">RR<",
                    ),
                    "KodFormularza",
                ),
                // A row's unit price that is no number (second row).
                (
                    edit(
                        rr("RR/5"),
                        "<P_7>2.50</P_7>\n\t\t\t<P_8>1250.00",
                        "<P_7>dwa</P_7>\n\t\t\t<P_8>1250.00",
                    ),
                    "FakturaRRWiersz[2]/P_7",
                ),
            ],
        ),
        (
            json!({"systemCode": "PEF (3)", "schemaVersion": "2-1", "value": "PEF"}),
            pef("PEF/1"),
            vec![
                (
                    edit(
                        pef("PEF/2"),
                        "<cbc:InvoiceTypeCode>380<",
                        "<cbc:InvoiceTypeCode>X<",
                    ),
                    "InvoiceTypeCode",
                ),
                (
                    edit(
                        pef("PEF/3"),
                        "<cac:LegalMonetaryTotal>",
                        "<cac:LegalMonetaryTotalX>",
                    ),
                    "XML",
                ),
                (
                    edit(
                        pef("PEF/4"),
                        "<cbc:DocumentCurrencyCode>EUR<",
                        "<cbc:DocumentCurrencyCode>eur<",
                    ),
                    "DocumentCurrencyCode",
                ),
                // An invoice line's amount without its required currency.
                (
                    edit(
                        pef("PEF/5"),
                        "<cbc:LineExtensionAmount currencyID=\"EUR\">4000.00<",
                        "<cbc:LineExtensionAmount>4000.00<",
                    ),
                    "InvoiceLine[1]/LineExtensionAmount: brak wymaganego atrybutu 'currencyID'",
                ),
                // An element UBL does not know inside an invoice line.
                (
                    edit(
                        pef("PEF/6"),
                        "<cac:InvoiceLine>",
                        "<cac:InvoiceLine><cbc:Obcy>1</cbc:Obcy>",
                    ),
                    "nieoczekiwany element 'Obcy'",
                ),
            ],
        ),
        (
            json!({"systemCode": "PEF_KOR (3)", "schemaVersion": "2-1", "value": "PEF"}),
            kor("KOR/1"),
            vec![
                (
                    edit(
                        kor("KOR/2"),
                        "<cbc:CreditNoteTypeCode>381<",
                        "<cbc:CreditNoteTypeCode><",
                    ),
                    "CreditNoteTypeCode",
                ),
                // A UBL Invoice in a credit-note session.
                (pef("KOR/3"), "CreditNote"),
                // A credit-note line without its required ID.
                (
                    edit(
                        kor("KOR/4"),
                        "<cac:CreditNoteLine>\n\t\t<!--  pozycje faktury / Invoice lines   -->\n\t\t<cbc:ID>1</cbc:ID>",
                        "<cac:CreditNoteLine>\n\t\t<cbc:Note>1</cbc:Note>",
                    ),
                    "CreditNoteLine: nieoczekiwany element 'Note'; oczekiwano: ID",
                ),
            ],
        ),
    ];
    for (form, valid, invalid) in cases {
        let (session, key) = open_form(&api, &access, form.clone()).await;
        let r = api.send(&access, &session, &key, &valid).await;
        assert_eq!(r.status, 202, "{form}: {:?}", r.json);
        let st = api
            .invoice_final(
                &access,
                &session,
                r.json["referenceNumber"].as_str().unwrap(),
            )
            .await;
        assert_eq!(st["status"]["code"], 200, "{form}: {st}");
        let ksef = st["ksefNumber"].as_str().unwrap().to_owned();
        for (xml, word) in invalid {
            let r = api.send(&access, &session, &key, &xml).await;
            assert_eq!(r.status, 202, "{form}: {:?}", r.json);
            let st = api
                .invoice_final(
                    &access,
                    &session,
                    r.json["referenceNumber"].as_str().unwrap(),
                )
                .await;
            assert_eq!(st["status"]["code"], 430, "{form} {word}: {st}");
            let detail = st["status"]["details"][0].as_str().unwrap();
            assert!(detail.contains(word), "{form}: {detail} lacks {word}");
        }
        // The accepted document is downloadable and listed with its form's invoice type.
        tokio::time::sleep(Duration::from_millis(150)).await;
        let r = api
            .call(
                OperationId::DownloadInvoice,
                &[&ksef],
                Some(&access),
                Body::None,
            )
            .await;
        assert_eq!(r.status, 200, "{form}: {:?}", r.json);
        assert_eq!(r.body, valid);
        let mut f = filters("Subject1", "PermanentStorage");
        f["formType"] = form["value"].clone();
        let r = query(&api, &access, "", f).await;
        assert!(numbers(&r).contains(&ksef), "{form}: {:?}", r.json);
    }
    // A PEF document embedding an attachment needs the consent like an FA one (415).
    let (session, key) = open_form(
        &api,
        &access,
        json!({"systemCode": "PEF (3)", "schemaVersion": "2-1", "value": "PEF"}),
    )
    .await;
    let xml = template(
        "invoice-template-fa-3-pef-with-attachment.xml",
        NIP,
        "PEF/9",
    );
    let r = api.send(&access, &session, &key, &xml).await;
    let st = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["status"]["code"], 415, "{st}");
    sim.shutdown().await;
}
