//! The seed flow end to end over real HTTP: test data → self-signed certificate → XAdES auth →
//! redeem → online FA(3) session → encrypted send → KSeF number → UPOs → close → session UPO.

// `xmllint_upo` is a test helper outside #[test]: it may panic and print.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

mod common;

use common::*;
use ksef_model::ids::KsefNumber;
use ksef_model::operations::OperationId;

fn oracles_required() -> bool {
    std::env::var("KSEF_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

/// Validates a UPO with xmllint against spec/upo/upo-v4-3.xsd, with `ds:Signature` removed (the
/// XSD has no place for it). Skips (with a note) when xmllint is missing, unless oracles are
/// required.
fn xmllint_upo(xml: &[u8]) {
    let text = std::str::from_utf8(xml).unwrap();
    let start = text.find("<ds:Signature").expect("UPO is signed");
    let end = text.rfind("</ds:Signature>").unwrap() + "</ds:Signature>".len();
    let unsigned = format!("{}{}", &text[..start], &text[end..]);
    let dir = std::env::temp_dir().join(format!("ksef-sim-upo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("upo-{}.xml", xml.len()));
    std::fs::write(&file, unsigned).unwrap();
    let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/upo/upo-v4-3.xsd");
    match std::process::Command::new("xmllint")
        .args(["--nonet", "--noout", "--schema", xsd])
        .arg(&file)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "xmllint rejected the UPO: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => {
            assert!(!oracles_required(), "xmllint is required: {e}");
            eprintln!("note: xmllint not found ({e}); UPO XSD check skipped");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_end_to_end() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .seed(5)
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());

    // Test data: a person linked to the NIP, and an explicit ZAW-FA grant for the seal.
    api.testdata_person(NIP, PESEL).await;
    api.testdata_grant(NIP, ("Nip", NIP), &["InvoiceWrite", "InvoiceRead"])
        .await;

    // XAdES authentication with a self-signed seal certificate (VATPL-5265877635).
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, refresh, auth_ref) = api.login(&seal, NIP).await;

    // Refresh works and gives a usable access token.
    let r = api
        .call(
            OperationId::RefreshAccessToken,
            &[],
            Some(&refresh),
            common::Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    let access2 = r.json["accessToken"]["token"].as_str().unwrap().to_owned();

    // Online FA(3) session and an encrypted invoice.
    let (session, key) = api.open_session(&access2).await;
    let xml = invoice(NIP, "SEED-1");
    let r = api.send(&access, &session, &key, &xml).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let inv_ref = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let st = api.invoice_final(&access, &session, &inv_ref).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    let ksef: KsefNumber = st["ksefNumber"].as_str().unwrap().parse().unwrap();
    assert_eq!(ksef.seller_nip().as_str(), NIP);
    assert_eq!(st["invoicingMode"], "Online");
    assert!(st["acquisitionDate"].is_string() && st["permanentStorageDate"].is_string());

    // Invoice UPO: by KSeF number, by reference, and through the presigned URL (no bearer).
    let by_ksef = api
        .call(
            OperationId::InvoiceUpoByKsefNumber,
            &[&session, ksef.as_str()],
            Some(&access),
            common::Body::None,
        )
        .await;
    assert_eq!(by_ksef.status, 200);
    assert!(by_ksef.content_type().starts_with("application/xml"));
    let by_ref = api
        .call(
            OperationId::InvoiceUpoByReference,
            &[&session, &inv_ref],
            Some(&access),
            common::Body::None,
        )
        .await;
    assert_eq!(by_ref.body, by_ksef.body);
    let url = st["upoDownloadUrl"].as_str().unwrap();
    let dl = reqwest::get(url).await.unwrap();
    assert_eq!(dl.status(), 200);
    let hash = dl.headers()["x-ms-meta-hash"].to_str().unwrap().to_owned();
    let upo = dl.bytes().await.unwrap();
    assert_eq!(hash, ksef_crypto::hash::sha256_base64(&upo));
    assert_eq!(&upo[..], &by_ksef.body[..]);
    let parsed = ksef_model::upo::Upo::parse(&upo).unwrap();
    assert_eq!(parsed.documents.len(), 1);
    assert_eq!(parsed.documents[0].ksef_number, ksef);
    assert!(parsed.has_signature);
    let verified = ksef_crypto::xades::verify(&upo).unwrap();
    assert!(verified.certificate().subject().contains("ksef-sim"));
    xmllint_upo(&upo);

    // The invoice itself, with x-ms-meta-hash. Like KSeF, the simulator answers 21165 until the
    // invoice is in permanent storage (shortly after acceptance); a client asks again.
    let mut inv = None;
    for _ in 0..100 {
        let r = api
            .call(
                OperationId::DownloadInvoice,
                &[ksef.as_str()],
                Some(&access),
                common::Body::None,
            )
            .await;
        if r.status == 400 && String::from_utf8_lossy(&r.body).contains("21165") {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        inv = Some(r);
        break;
    }
    let inv = inv.expect("the invoice reached permanent storage within 5 s");
    assert_eq!(inv.status, 200);
    assert_eq!(inv.body, xml);
    assert_eq!(
        inv.header("x-ms-meta-hash").unwrap(),
        ksef_crypto::hash::sha256_base64(&xml)
    );

    // Session lists.
    let list = api
        .call(
            OperationId::ListSessionInvoices,
            &[&session],
            Some(&access),
            common::Body::None,
        )
        .await;
    assert_eq!(list.json["invoices"].as_array().unwrap().len(), 1);
    let failed = api
        .call(
            OperationId::ListFailedSessionInvoices,
            &[&session],
            Some(&access),
            common::Body::None,
        )
        .await;
    assert!(failed.json["invoices"].as_array().unwrap().is_empty());

    // Close → 170 → 200 with a session UPO page.
    let r = api
        .call(
            OperationId::CloseOnlineSession,
            &[&session],
            Some(&access),
            common::Body::None,
        )
        .await;
    assert_eq!(r.status, 204);
    assert!(r.body.is_empty());
    let st = api.session_final(&access, &session).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    assert_eq!(st["invoiceCount"], 1);
    assert_eq!(st["successfulInvoiceCount"], 1);
    let page = &st["upo"]["pages"][0];
    let page_ref = page["referenceNumber"].as_str().unwrap();
    let r = api
        .call(
            OperationId::SessionUpo,
            &[&session, page_ref],
            Some(&access),
            common::Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    let session_upo = ksef_model::upo::Upo::parse(&r.body).unwrap();
    assert_eq!(session_upo.page.unwrap().total_documents, 1);
    assert_eq!(session_upo.session_reference_number.as_str(), session);
    ksef_crypto::xades::verify(&r.body).unwrap();
    xmllint_upo(&r.body);
    let dl = reqwest::get(page["downloadUrl"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(dl.status(), 200);
    assert!(dl.headers().contains_key("x-ms-meta-hash"));

    // Sending to a closed session: 21180.
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "SEED-2"))
        .await;
    assert_eq!((r.status, r.code()), (400, 21180));

    // Auth sessions: the current one is listed.
    let r = api
        .call(
            OperationId::ListAuthSessions,
            &[],
            Some(&access),
            common::Body::None,
        )
        .await;
    let items = r.json["items"].as_array().unwrap();
    assert!(
        items
            .iter()
            .any(|i| i["referenceNumber"] == auth_ref.as_str() && i["isCurrent"] == true)
    );

    // The simulator checked each of these responses against the spec.
    assert!(sim.covered_responses().values().sum::<u64>() >= 10);
    sim.shutdown().await;
}
