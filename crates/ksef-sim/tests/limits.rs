//! Context session limits over HTTP (ksef-api.md §15.2, scenarios.md §8 49): the
//! `/testdata/limits/context/session` override changes what online sessions enforce (invoice
//! count 21155, declared size 21405, invoice size 430) and `DELETE` restores the defaults; the
//! attachment consent (`/testdata/attachment`) decides invoices with a `Zalacznik` (415).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

mod common;

use common::*;
use ksef_model::operations::OperationId;
use serde_json::{Value, json};

/// The FA(3) template with an attachment (`Zalacznik`), filled for `nip`.
fn attachment_invoice(nip: &str, number: &str) -> Vec<u8> {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/invoices/invoice-template-fa-3-with-attachment.xml"
    ))
    .unwrap()
    .replace("#nip#", nip)
    .replace("#invoice_number#", number)
    .into_bytes()
}

/// An otherwise valid invoice grown past `bytes` by a comment (no attachment).
fn padded_invoice(nip: &str, number: &str, bytes: usize) -> Vec<u8> {
    let mut xml = invoice(nip, number);
    let pad = format!("<!--{}-->", "x".repeat(bytes));
    xml.extend_from_slice(pad.as_bytes());
    xml
}

fn limits(size: i64, with_attachment: i64, count: i64) -> Value {
    json!({"maxInvoiceSizeInMB": size, "maxInvoiceWithAttachmentSizeInMB": with_attachment,
           "maxInvoices": count})
}

async fn set_limits(api: &Api, access: &str, online: Value, batch: Value) {
    let r = api
        .call(
            OperationId::TestdataSetSessionLimits,
            &[],
            Some(access),
            Body::Json(json!({"onlineSession": online, "batchSession": batch})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
}

/// Sends `xml` and waits for the invoice's final status object.
async fn send_final(
    api: &Api,
    access: &str,
    session: &str,
    key: &ksef_crypto::encryption::SessionKey,
    xml: &[u8],
) -> Value {
    let r = api.send(access, session, key, xml).await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    api.invoice_final(access, session, &reference).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn online_session_limits_follow_the_override_and_restore() {
    let (sim, api) = start().await;
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;

    // Two invoices per session, no invoice without an attachment may exceed 0 MB (so none
    // passes), 1 MB with one.
    set_limits(&api, &access, limits(0, 1, 2), limits(1, 3, 10_000)).await;
    let r = api
        .call(OperationId::ContextLimits, &[], Some(&access), Body::None)
        .await;
    assert_eq!(r.json["onlineSession"], limits(0, 1, 2));
    assert_eq!(r.json["batchSession"], limits(1, 3, 10_000));

    let (session, key) = api.open_session(&access).await;
    let st = send_final(&api, &access, &session, &key, &invoice(NIP, "LIM/1")).await;
    assert_eq!(st["status"]["code"], 430, "{st}");
    assert!(
        st["status"]["details"][0]
            .as_str()
            .unwrap()
            .contains("0 MB"),
        "{st}"
    );
    // A declared size above both limits is refused at once (input validation).
    let big = padded_invoice(NIP, "LIM/2", 1_000_001);
    let r = api.send(&access, &session, &key, &big).await;
    assert_eq!((r.status, r.code()), (400, 21405), "{:?}", r.json);
    // An invoice with an attachment fits the 1 MB limit but has no consent: 415.
    let st = send_final(
        &api,
        &access,
        &session,
        &key,
        &attachment_invoice(NIP, "LIM/3"),
    )
    .await;
    assert_eq!(st["status"]["code"], 415, "{st}");
    assert_eq!(
        st["status"]["description"],
        "Brak możliwości wysyłania faktury z załącznikiem"
    );
    // The third invoice is over the session's count: 21155 naming the limit.
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "LIM/4"))
        .await;
    assert_eq!((r.status, r.code()), (400, 21155), "{:?}", r.json);
    let detail = r.json["exception"]["exceptionDetailList"][0]["details"][0]
        .as_str()
        .unwrap();
    assert!(
        detail.contains(&session) && detail.ends_with(" 2."),
        "{detail}"
    );

    // Restoring the defaults: the same invoices pass (with consent for the attachment), and
    // a 1.5 MB invoice without an attachment is over the default 1 MB (430).
    let r = api
        .call(
            OperationId::TestdataResetSessionLimits,
            &[],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let r = api
        .call(OperationId::ContextLimits, &[], Some(&access), Body::None)
        .await;
    assert_eq!(r.json["onlineSession"], limits(1, 3, 10_000));
    let r = api
        .call(
            OperationId::TestdataEnableAttachments,
            &[],
            None,
            Body::Json(json!({"nip": NIP})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let (session, key) = api.open_session(&access).await;
    for xml in [invoice(NIP, "LIM/1"), attachment_invoice(NIP, "LIM/3")] {
        let st = send_final(&api, &access, &session, &key, &xml).await;
        assert_eq!(st["status"]["code"], 200, "{st}");
    }
    let st = send_final(
        &api,
        &access,
        &session,
        &key,
        &padded_invoice(NIP, "LIM/5", 1_500_000),
    )
    .await;
    assert_eq!(st["status"]["code"], 430, "{st}");
    assert!(
        st["status"]["details"][0]
            .as_str()
            .unwrap()
            .contains("1 MB"),
        "{st}"
    );
    // A larger limit lets the same 1.5 MB invoice through.
    set_limits(&api, &access, limits(2, 3, 10_000), limits(1, 3, 10_000)).await;
    let st = send_final(
        &api,
        &access,
        &session,
        &key,
        &padded_invoice(NIP, "LIM/6", 1_500_000),
    )
    .await;
    assert_eq!(st["status"]["code"], 200, "{st}");

    // Revoking the consent makes attachments 415 again.
    let r = api
        .call(
            OperationId::TestdataRevokeAttachments,
            &[],
            None,
            Body::Json(json!({"nip": NIP})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let st = send_final(
        &api,
        &access,
        &session,
        &key,
        &attachment_invoice(NIP, "LIM/7"),
    )
    .await;
    assert_eq!(st["status"]["code"], 415, "{st}");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_limit_overrides_are_per_context_and_validated() {
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    api.testdata_grant(OTHER_NIP, ("Nip", NIP), &["InvoiceWrite"])
        .await;
    let (other, _, _) = api.login(&seal, OTHER_NIP).await;

    set_limits(&api, &access, limits(1, 3, 0), limits(1, 3, 0)).await;
    // maxInvoices 0: no invoice at all in this context's sessions…
    let (session, key) = api.open_session(&access).await;
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "CTX/1"))
        .await;
    assert_eq!((r.status, r.code()), (400, 21155), "{:?}", r.json);
    // …while another context keeps the defaults.
    let r = api
        .call(OperationId::ContextLimits, &[], Some(&other), Body::None)
        .await;
    assert_eq!(r.json["onlineSession"]["maxInvoices"], 10_000);
    let (session, key) = api.open_session(&other).await;
    let r = api
        .send(&other, &session, &key, &invoice(OTHER_NIP, "CTX/1"))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);

    // Out-of-range and missing values are 21405 and change nothing.
    for bad in [
        json!({"onlineSession": limits(6, 3, 10), "batchSession": limits(1, 3, 10)}),
        json!({"onlineSession": limits(1, 11, 10), "batchSession": limits(1, 3, 10)}),
        json!({"onlineSession": limits(1, 3, 100_001), "batchSession": limits(1, 3, 10)}),
        json!({"onlineSession": limits(1, 3, -1), "batchSession": limits(1, 3, 10)}),
        json!({"onlineSession": limits(1, 3, 10)}),
    ] {
        let r = api
            .call(
                OperationId::TestdataSetSessionLimits,
                &[],
                Some(&access),
                Body::Json(bad.clone()),
            )
            .await;
        assert_eq!((r.status, r.code()), (400, 21405), "{bad}: {:?}", r.json);
    }
    let r = api
        .call(OperationId::ContextLimits, &[], Some(&access), Body::None)
        .await;
    assert_eq!(r.json["onlineSession"]["maxInvoices"], 0);
    sim.shutdown().await;
}
