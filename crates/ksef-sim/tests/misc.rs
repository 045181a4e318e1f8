//! Limits, rate-limit values, attachment consent, context blocking (480) and `GET /sessions`.

mod common;

use common::*;
use ksef_model::auth_request::SubjectIdentifierType;
use ksef_model::operations::OperationId;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_attachments_blocking_and_session_list() {
    let (sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    let get = |op| api.call(op, &[], Some(&access), Body::None);

    let r = get(OperationId::ContextLimits).await;
    assert_eq!(r.json["onlineSession"]["maxInvoices"], 10000);
    let r = get(OperationId::SubjectLimits).await;
    assert_eq!(r.json["certificate"]["maxCertificates"], 100);
    let r = get(OperationId::RateLimits).await;
    let send = OperationId::SendInvoice.spec().rate_limit;
    assert_eq!(r.json["invoiceSend"]["perHour"], send.per_hour.unwrap());
    assert_eq!(r.json["other"]["perSecond"], 10);

    // Attachment consent.
    let r = get(OperationId::AttachmentPermissionStatus).await;
    assert_eq!(r.json["isAttachmentAllowed"], false);
    let r = api
        .call(
            OperationId::TestdataEnableAttachments,
            &[],
            None,
            Body::Json(json!({"nip": NIP})),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        get(OperationId::AttachmentPermissionStatus).await.json["isAttachmentAllowed"],
        true
    );
    api.call(
        OperationId::TestdataRevokeAttachments,
        &[],
        None,
        Body::Json(json!({"nip": NIP, "expectedEndDate": "2030-01-01"})),
    )
    .await;
    let r = get(OperationId::AttachmentPermissionStatus).await;
    assert_eq!(r.json["isAttachmentAllowed"], false);
    assert!(
        r.json["revokedDate"]
            .as_str()
            .unwrap()
            .starts_with("2030-01-01T00:00:00")
    );

    // GET /sessions: sessionType is required; the open session is listed and filtered.
    let (session, _) = api.open_session(&access).await;
    let r = get(OperationId::ListSessions).await;
    assert_eq!((r.status, r.code()), (400, 21405));
    let list = |q: &'static str| {
        api.call_q(
            OperationId::ListSessions,
            &[],
            q,
            Some(&access),
            Body::None,
            &[],
        )
    };
    let r = list("?sessionType=Online").await;
    assert_eq!(r.json["sessions"][0]["referenceNumber"], session.as_str());
    assert_eq!(r.json["sessions"][0]["totalInvoiceCount"], 0);
    let r = list("?sessionType=Online&statuses=Succeeded&statuses=Failed").await;
    assert!(r.json["sessions"].as_array().unwrap().is_empty());
    let r = list("?sessionType=Online&statuses=InProgress").await;
    assert_eq!(r.json["sessions"].as_array().unwrap().len(), 1);
    let r = list("?sessionType=Batch").await;
    assert!(r.json["sessions"].as_array().unwrap().is_empty());

    // Blocking a context: authentication ends with 480 until unblocked.
    let block = json!({"contextIdentifier": {"type": "Nip", "value": NIP}});
    let r = api
        .call(
            OperationId::TestdataBlockContext,
            &[],
            None,
            Body::Json(block.clone()),
        )
        .await;
    assert_eq!(r.status, 200);
    let xml = api
        .signed_request(&seal, NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    let r = api.submit_xades(xml, "").await;
    let st = api
        .auth_status(
            r.json["referenceNumber"].as_str().unwrap(),
            r.json["authenticationToken"]["token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["status"]["code"], 480, "{st}");
    api.call(
        OperationId::TestdataUnblockContext,
        &[],
        None,
        Body::Json(block),
    )
    .await;
    api.login(&seal, NIP).await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_url_goes_into_presigned_links() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .public_url("https://ksef.local:8443/")
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let (session, key) = api.open_session(&access).await;
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "PUB-1"))
        .await;
    let st = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    let url = st["upoDownloadUrl"].as_str().unwrap();
    assert!(
        url.starts_with("https://ksef.local:8443/storage/upo/"),
        "{url}"
    );
    // The same path on the real listener serves it.
    let local = url.replace(
        "https://ksef.local:8443",
        sim.base_url().trim_end_matches("/v2"),
    );
    assert_eq!(reqwest::get(local).await.unwrap().status(), 200);
    sim.shutdown().await;
}

/// `validate_responses(true)` checks and records every answer to a catalogue operation —
/// successes, KSeF errors in both formats and gateway errors — and nothing when off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_are_checked_and_recorded_only_when_asked() {
    let (sim, api) = start().await;
    api.challenge().await;
    let r = api
        .call(
            OperationId::AuthStatus,
            &["nope"],
            Some("garbage"),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 401);
    let r = api
        .call(
            OperationId::OpenOnlineSession,
            &[],
            None,
            Body::Raw("text/plain", b"x".to_vec()),
        )
        .await;
    assert!(r.status >= 400, "{}", r.status);
    // Not an operation: not recorded.
    let raw = reqwest::get(format!("{}/nope", sim.base_url()))
        .await
        .unwrap();
    assert_eq!(raw.status(), 404);
    let covered = sim.covered_responses();
    assert_eq!(covered.get(&(OperationId::AuthChallenge, 200)), Some(&1));
    assert_eq!(covered.get(&(OperationId::AuthStatus, 401)), Some(&1));
    assert!(
        covered
            .keys()
            .any(|(op, _)| *op == OperationId::OpenOnlineSession)
    );
    assert_eq!(covered.values().sum::<u64>(), 3, "{covered:?}");
    assert!(sim.response_violations().is_empty());

    let plain = ksef_sim::Simulator::builder().start().await.unwrap();
    Api::new(plain.base_url()).challenge().await;
    assert!(plain.covered_responses().is_empty());
    assert!(plain.response_violations().is_empty());
}
