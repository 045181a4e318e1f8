//! The transport over real HTTP against a local wiremock server: headers, success codes, both
//! error formats, 429 handling, retries, pacing, presigned URLs and downloads. Sleeping goes
//! through a `ManualClock`, so no test waits for real.

// Test helpers outside #[test] fns may unwrap too: a failure is a test failure.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use ksef_model::api;
use ksef_model::ids::{KsefNumber, ReferenceNumber};
use ksef_model::operations::{ListSessionsQuery, ListTokensQuery};
use ksef_transport::{
    AccessToken, AuthenticationToken, Error, ErrorFormat, ExceptionCode, ForbiddenReason,
    ManualClock, PresignedUpload, RefreshToken, RetryPolicy, Transport,
};
use sha2::{Digest, Sha256};
use wiremock::matchers::{body_bytes, header, header_exists, method, path, query_param};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const REF: &str = "20250625-SO-2C3E6C8000-B675CF5D68-07";
const INV_REF: &str = "20250625-EE-319D7EE000-B67F415CDC-2C";

fn reference() -> ReferenceNumber {
    REF.parse().unwrap()
}

fn setup(server: &MockServer) -> (Transport, ManualClock) {
    let clock = ManualClock::new();
    let t = Transport::builder_for_url(&format!("{}/v2", server.uri()))
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    (t, clock)
}

fn challenge_json() -> serde_json::Value {
    serde_json::json!({
        "challenge": "20250514-CR-226FB7B000-3ACF9BE4C0-10",
        "timestamp": "2025-07-11T12:23:56.0154302+00:00",
        "timestampMs": 1752236636015i64,
        "clientIp": "127.0.0.1"
    })
}

fn no_auth_header(req: &Request) -> bool {
    !req.headers.contains_key("authorization")
}

fn sha_b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(Sha256::digest(bytes))
}

fn send_invoice_request() -> api::SendInvoiceRequest {
    serde_json::from_value(serde_json::json!({
        "invoiceHash": "EbrK4cOSjW4hEpJaHU71YXSOZZmqP5++dK9nLgTzgV4=",
        "invoiceSize": 6480,
        "encryptedInvoiceHash": "miYb1z3Ljw5VucTZslv3Tlt+V/EK1V8Q8evD8HMQ0dc=",
        "encryptedInvoiceSize": 6496,
        "encryptedInvoiceContent": "AAAA",
        "offlineMode": false
    }))
    .unwrap()
}

#[tokio::test]
async fn public_call_sends_standard_headers_and_no_authorization() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/auth/challenge"))
        .and(header("x-error-format", "problem-details"))
        .and(header(
            "user-agent",
            concat!("ksef-rs/", env!("CARGO_PKG_VERSION")),
        ))
        .and(no_auth_header)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(challenge_json())
                .insert_header(
                    "x-system-warning",
                    "[W1]: Planned maintenance | [W2]: Old schema",
                ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let r = t.auth_challenge().await.unwrap();
    assert_eq!(r.timestamp_ms, 1752236636015);
    assert_eq!(r.warnings.len(), 2);
    assert_eq!(r.warnings[0].code, "W1");
    assert_eq!(r.warnings[1].message, "Old schema");
}

#[tokio::test]
async fn tokens_go_where_due() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/auth/{REF}")))
        .and(header("authorization", "Bearer op-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "startDate": "2025-07-11T12:23:56+00:00",
            "authenticationMethod": "Token",
            "authenticationMethodInfo": {"category": "Token", "code": "token", "displayName": "Token KSeF"},
            "status": {"code": 200, "description": "Uwierzytelnianie zakończone sukcesem"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/auth/token/refresh"))
        .and(header("authorization", "Bearer refresh-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "accessToken": {"token": "new-access", "validUntil": "2025-07-11T12:38:56+00:00"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/v2/auth/sessions/current"))
        .and(header_exists("authorization"))
        .respond_with(ResponseTemplate::new(204))
        .expect(2)
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let status = t
        .auth_status(&AuthenticationToken::new("op-token"), &reference())
        .await
        .unwrap();
    assert_eq!(status.status.code, 200);
    let refreshed = t
        .refresh_access_token(&RefreshToken::new("refresh-token"))
        .await
        .unwrap();
    assert_eq!(refreshed.access_token.token, "new-access");
    t.revoke_current_auth_session(&AccessToken::new("a"))
        .await
        .unwrap();
    t.revoke_current_auth_session(&RefreshToken::new("r"))
        .await
        .unwrap();
}

#[tokio::test]
async fn query_arrays_repeat_and_continuation_token_is_a_header() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/sessions"))
        .and(query_param("sessionType", "Online"))
        .and(header("x-continuation-token", "next-page"))
        .and(header("authorization", "Bearer acc"))
        .and(|req: &Request| {
            let statuses: Vec<_> = req
                .url
                .query_pairs()
                .filter(|(k, _)| k == "statuses")
                .map(|(_, v)| v.into_owned())
                .collect();
            statuses == ["InProgress", "Succeeded"]
        })
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"sessions": []})))
        .expect(1)
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let query = ListSessionsQuery {
        page_size: None,
        session_type: api::SessionType::Online,
        reference_number: None,
        date_created_from: None,
        date_created_to: None,
        date_closed_from: None,
        date_closed_to: None,
        date_modified_from: None,
        date_modified_to: None,
        statuses: vec![
            api::CommonSessionStatus::InProgress,
            api::CommonSessionStatus::Succeeded,
        ],
    };
    let r = t
        .list_sessions(&AccessToken::new("acc"), &query, Some("next-page"))
        .await
        .unwrap();
    assert!(r.sessions.is_empty() && r.continuation_token.is_none());
}

#[tokio::test]
async fn xml_body_for_xades_and_exact_success_codes() {
    let server = MockServer::start().await;
    let signed = b"<?xml version=\"1.0\" encoding=\"utf-8\"?><AuthTokenRequest/>".to_vec();
    Mock::given(method("POST"))
        .and(path("/v2/auth/xades-signature"))
        .and(header("content-type", "application/xml"))
        .and(query_param("verifyCertificateChain", "true"))
        .and(body_bytes(signed.clone()))
        .respond_with(ResponseTemplate::new(202).set_body_json(serde_json::json!({
            "referenceNumber": "20250514-AU-2DFC46C000-3AC6D5877F-D4",
            "authenticationToken": {"token": "op", "validUntil": "2025-07-11T12:38:56+00:00"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    // A server that answers 200 where KSeF documents 201.
    Mock::given(method("POST"))
        .and(path("/v2/sessions/online"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({})))
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let q = ksef_model::operations::AuthXadesSignatureQuery {
        verify_certificate_chain: Some(true),
    };
    let r = t.auth_xades_signature(&q, signed).await.unwrap();
    assert_eq!(r.authentication_token.token, "op");

    let body: api::OpenOnlineSessionRequest = serde_json::from_value(serde_json::json!({
        "formCode": {"systemCode": "FA (3)", "schemaVersion": "1-0E", "value": "FA"},
        "encryption": {"encryptedSymmetricKey": "AAAA", "initializationVector": "AAAAAAAAAAAAAAAAAAAAAA=="}
    }))
    .unwrap();
    let e = t
        .open_online_session(&AccessToken::new("a"), &body)
        .await
        .unwrap_err();
    assert!(
        matches!(
            e,
            Error::UnexpectedStatus {
                expected: 201,
                actual: 200,
                ..
            }
        ),
        "{e}"
    );
}

#[tokio::test]
async fn no_content_and_empty_200_are_not_parsed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/sessions/online/{REF}/close")))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/testdata/rate-limits/production"))
        .respond_with(ResponseTemplate::new(200))
        .expect(1)
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let a = AccessToken::new("a");
    t.close_online_session(&a, &reference()).await.unwrap();
    t.testdata_set_production_rate_limits(&a).await.unwrap();
}

#[tokio::test]
async fn legacy_and_problem_details_errors() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/sessions/online/{REF}/invoices")))
        .respond_with(ResponseTemplate::new(400).set_body_json(serde_json::json!({
            "exception": {"exceptionDetailList": [{"exceptionCode": 21180, "exceptionDescription": "Status sesji nie pozwala na wykonanie operacji.", "details": ["Sesja zamknięta."]}],
            "serviceCode": "00-trace-01", "referenceNumber": REF, "timestamp": "2025-10-11T12:23:56.0154302"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/sessions/{REF}")))
        .respond_with(
            ResponseTemplate::new(403)
                .insert_header("content-type", "application/problem+json")
                .set_body_string(r#"{"title":"Forbidden","status":403,"detail":"Brak uprawnień.","reasonCode":"missing-permissions","security":{"requiredAnyOfPermissions":["InvoiceWrite","Introspection"],"presentPermissions":["InvoiceRead"]},"traceId":"tr-1","timestamp":"2025-07-11T12:23:56Z"}"#),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let a = AccessToken::new("a");
    let e = t
        .send_invoice(&a, &reference(), &send_invoice_request())
        .await
        .unwrap_err();
    assert!(e.has_code(ExceptionCode::SessionStatusConflict), "{e}");
    assert_eq!(e.status(), Some(400));
    let api = e.api_error().unwrap();
    assert_eq!(api.format, ErrorFormat::LegacyException);
    assert_eq!(api.trace_id.as_deref(), Some("00-trace-01"));
    assert!(e.to_string().contains("open a new session"), "{e}");

    let e = t.session_status(&a, &reference()).await.unwrap_err();
    let api = e.api_error().unwrap();
    assert_eq!(api.format, ErrorFormat::ProblemDetails);
    assert_eq!(api.reason, Some(ForbiddenReason::MissingPermissions));
    assert_eq!(
        api.required_any_of_permissions,
        ["InvoiceWrite", "Introspection"]
    );
    assert_eq!(api.present_permissions, ["InvoiceRead"]);
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn html_error_page_is_kept_raw() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/rate-limits"))
        .respond_with(
            ResponseTemplate::new(404)
                .set_body_raw("<html><body>Not Found</body></html>", "text/html"),
        )
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let e = t.rate_limits(&AccessToken::new("a")).await.unwrap_err();
    let api = e.api_error().unwrap();
    assert_eq!(api.format, ErrorFormat::Unrecognised);
    assert_eq!(
        api.raw_body.as_deref(),
        Some("<html><body>Not Found</body></html>")
    );
}

#[tokio::test]
async fn rate_limit_with_retry_after_is_honoured() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/sessions/online/{REF}/invoices")))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "30")
                .set_body_json(serde_json::json!({"status": {"code": 429, "description": "Too Many Requests", "details": ["Spróbuj ponownie po 30 sekundach."]}})),
        )
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/sessions/online/{REF}/invoices")))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(serde_json::json!({"referenceNumber": INV_REF})),
        )
        .expect(1)
        .mount(&server)
        .await;
    let (t, clock) = setup(&server);
    // 429 means "not processed": even sending an invoice is repeated.
    let r = t
        .send_invoice(
            &AccessToken::new("a"),
            &reference(),
            &send_invoice_request(),
        )
        .await
        .unwrap();
    assert_eq!(r.reference_number.as_str(), INV_REF);
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(30)]);
}

#[tokio::test]
async fn rate_limit_without_retry_after_backs_off_and_budget_ends_in_rate_limited() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/limits/context"))
        .respond_with(ResponseTemplate::new(429).set_body_raw(
            r#"{"title":"Too Many Requests","status":429,"instance":"/limits/context","detail":"Przekroczono limit.","timestamp":"2025-07-11T12:23:56Z","traceId":"t"}"#,
            "application/problem+json",
        ))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/v2/limits/subject"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "50"))
        .mount(&server)
        .await;
    let (t, clock) = setup(&server);
    let a = AccessToken::new("a");
    let e = t.context_limits(&a).await.unwrap_err();
    assert!(
        matches!(
            e,
            Error::RateLimited {
                retry_after: None,
                ..
            }
        ),
        "{e}"
    );
    // No Retry-After: exponential backoff until the retry count (10) is used up.
    let sleeps = clock.sleeps();
    assert_eq!(sleeps.len(), 10, "{sleeps:?}");
    let p = RetryPolicy::default();
    for (i, s) in sleeps.iter().enumerate() {
        let n = i as u32 + 1;
        assert!(
            *s >= p.backoff(n, 0.0) && *s <= p.backoff(n, 1.0),
            "sleep {n}: {s:?}"
        );
    }
    assert!(clock.total_slept() <= Duration::from_secs(120));
    assert!(e.to_string().contains("slow down"));

    // Retry-After 50 s with a 120 s budget: two waits, then RateLimited.
    let before = clock.sleeps().len();
    let e = t.subject_limits(&a).await.unwrap_err();
    assert!(
        matches!(e, Error::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(50)),
        "{e}"
    );
    assert_eq!(
        clock.sleeps()[before..],
        [Duration::from_secs(50), Duration::from_secs(50)]
    );
    assert!(e.is_retryable());
}

#[tokio::test]
async fn server_errors_retry_gets_but_never_sends() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/sessions/{REF}/invoices/{INV_REF}")))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(2)
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/sessions/{REF}/invoices/{INV_REF}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({
            "ordinalNumber": 1, "referenceNumber": INV_REF, "invoicingDate": "2025-07-11T12:23:56+00:00",
            "status": {"code": 200, "description": "Sukces"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/sessions/online/{REF}/invoices")))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let (t, clock) = setup(&server);
    let a = AccessToken::new("a");
    let inv: ReferenceNumber = INV_REF.parse().unwrap();
    let r = t
        .session_invoice_status(&a, &reference(), &inv)
        .await
        .unwrap();
    assert_eq!(r.status.code, 200);
    assert_eq!(clock.sleeps().len(), 2);
    let e = t
        .send_invoice(&a, &reference(), &send_invoice_request())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert_eq!(clock.sleeps().len(), 2, "a failed send is not repeated");
}

#[tokio::test]
async fn ambiguous_redeem_is_its_own_error() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v2/auth/token/redeem"))
        .respond_with(ResponseTemplate::new(502))
        .expect(1)
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let e = t
        .redeem_tokens(&AuthenticationToken::new("op"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RedeemOutcomeUnknown { .. }), "{e}");
    assert_eq!(e.status(), Some(502));
    assert!(!e.is_retryable());
}

#[tokio::test]
async fn timeouts_are_typed_and_retried_for_gets_only() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/certificates/limits"))
        .respond_with(ResponseTemplate::new(200).set_delay(Duration::from_secs(5)))
        .expect(2)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let t = Transport::builder_for_url(&format!("{}/v2", server.uri()))
        .clock(Arc::new(clock.clone()))
        .timeout(Duration::from_millis(200))
        .retry_policy(RetryPolicy {
            max_attempts: 2,
            ..RetryPolicy::default()
        })
        .build()
        .unwrap();
    let e = t
        .certificate_limits(&AccessToken::new("a"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(e.is_retryable());
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // Bind and drop a listener to get a port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t = Transport::builder_for_url(&format!("http://127.0.0.1:{port}/v2"))
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
    let e = t.auth_challenge().await.unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    assert!(
        !e.to_string().contains(&port.to_string()),
        "no URL in messages: {e}"
    );
}

#[tokio::test]
async fn pacing_spaces_calls_per_group() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v2/tokens"))
        .respond_with(ResponseTemplate::new(200).set_body_json(serde_json::json!({"tokens": []})))
        .expect(12)
        .mount(&server)
        .await;
    let clock = ManualClock::new();
    let t = Transport::builder_for_url(&format!("{}/v2", server.uri()))
        .clock(Arc::new(clock.clone()))
        .pacing(true)
        .build()
        .unwrap();
    let a = AccessToken::new("a");
    let q = ListTokensQuery {
        status: vec![],
        description: None,
        author_identifier: None,
        author_identifier_type: None,
        page_size: None,
    };
    for _ in 0..12 {
        t.list_tokens(&a, &q, None).await.unwrap();
    }
    // `other` group: 10/s, 30/min — the 11th call waits for the next second.
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(1)]);
}

#[tokio::test]
async fn xml_download_verifies_meta_hash() {
    let server = MockServer::start().await;
    let xml = b"<?xml version=\"1.0\"?><Faktura/>".to_vec();
    let ksef: KsefNumber = "5265877635-20250626-010080DD2B5E-26".parse().unwrap();
    Mock::given(method("GET"))
        .and(path(format!("/v2/invoices/ksef/{ksef}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(xml.clone(), "application/xml")
                .insert_header("x-ms-meta-hash", sha_b64(&xml).as_str()),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(format!("/v2/invoices/ksef/{ksef}")))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(xml.clone(), "application/xml")
                .insert_header("x-ms-meta-hash", sha_b64(b"other").as_str()),
        )
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let a = AccessToken::new("a");
    let doc = t.download_invoice(&a, &ksef).await.unwrap();
    assert_eq!(doc.bytes.as_ref(), xml.as_slice());
    assert_eq!(doc.hash.as_deref(), Some(sha_b64(&xml).as_str()));
    let e = t.download_invoice(&a, &ksef).await.unwrap_err();
    assert!(matches!(e, Error::HashMismatch { .. }), "{e}");
}

#[tokio::test]
async fn presigned_upload_sends_exact_headers_and_no_authorization() {
    let server = MockServer::start().await;
    let part = vec![7u8; 100_000];
    Mock::given(method("PUT"))
        .and(path("/storage/00/ref/batch-parts/1"))
        .and(query_param("sig", "SECRET"))
        .and(header("x-ms-blob-type", "BlockBlob"))
        .and(header("content-length", "100000"))
        .and(no_auth_header)
        .and(|req: &Request| !req.headers.contains_key("x-error-format"))
        .and(body_bytes(part.clone()))
        .respond_with(ResponseTemplate::new(201))
        .expect(2)
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let target = PresignedUpload {
        method: "PUT".into(),
        url: format!(
            "{}/storage/00/ref/batch-parts/1?sv=2025&sig=SECRET",
            server.uri()
        ),
        headers: vec![("x-ms-blob-type".into(), "BlockBlob".into())],
    };
    t.upload_part(&target, part.clone().into()).await.unwrap();
    t.upload_part_from_reader(
        &target,
        std::io::Cursor::new(part.clone()),
        part.len() as u64,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn presigned_upload_errors_do_not_leak_the_signature() {
    let server = MockServer::start().await;
    Mock::given(method("PUT"))
        .respond_with(ResponseTemplate::new(403).set_body_raw(
            "<?xml version=\"1.0\"?><Error><Code>AuthenticationFailed</Code></Error>",
            "application/xml",
        ))
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let target = PresignedUpload {
        method: "PUT".into(),
        url: format!("{}/blob?sig=SECRET", server.uri()),
        headers: vec![],
    };
    let e = t
        .upload_part(&target, vec![1, 2, 3].into())
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(403));
    assert!(!e.to_string().contains("SECRET"), "{e}");
    assert!(e.to_string().contains("AuthenticationFailed"), "{e}");
}

#[tokio::test]
async fn presigned_download_checks_hash_and_refuses_html() {
    let server = MockServer::start().await;
    let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    Mock::given(method("GET"))
        .and(path("/export/part1"))
        .and(no_auth_header)
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(data.clone(), "application/octet-stream")
                .insert_header("x-ms-meta-hash", sha_b64(&data).as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/export/bad"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_raw(data.clone(), "application/octet-stream")
                .insert_header("x-ms-meta-hash", sha_b64(b"x").as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/export/html"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            "<!DOCTYPE html><html><body>Sign in</body></html>",
            "text/html",
        ))
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let (bytes, info) = t
        .download(&format!("{}/export/part1?sig=S", server.uri()))
        .await
        .unwrap();
    assert_eq!(bytes.as_ref(), data.as_slice());
    assert_eq!(info.length, data.len() as u64);
    assert_eq!(info.announced_hash.as_deref(), Some(info.sha256.as_str()));

    let mut sink = Vec::new();
    let e = t
        .download_to(&format!("{}/export/bad", server.uri()), &mut sink)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::HashMismatch { .. }), "{e}");

    let e = t
        .download(&format!("{}/export/html", server.uri()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::NotBinary { .. }), "{e}");
}

#[tokio::test]
async fn export_part_download_checks_the_declared_hash() {
    let server = MockServer::start().await;
    let data = vec![42u8; 5000];
    Mock::given(method("GET"))
        .and(path("/export/part-1"))
        .and(no_auth_header)
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(data.clone(), "application/octet-stream"),
        )
        .mount(&server)
        .await;
    let (t, _) = setup(&server);
    let part = |hash: String| -> api::InvoicePackagePart {
        serde_json::from_value(serde_json::json!({
            "ordinalNumber": 1, "partName": "part-1.zip.aes", "method": "GET",
            "url": format!("{}/export/part-1?sig=S", server.uri()),
            "partSize": 4990, "partHash": sha_b64(b"plain"),
            "encryptedPartSize": 5000, "encryptedPartHash": hash,
            "expirationDate": "2025-07-11T12:23:56+00:00"
        }))
        .unwrap()
    };
    let mut sink = Vec::new();
    let info = t
        .download_export_part(&part(sha_b64(&data)), &mut sink)
        .await
        .unwrap();
    assert_eq!(sink, data);
    assert_eq!(info.length, 5000);
    let e = t
        .download_export_part(&part(sha_b64(b"something else")), &mut Vec::new())
        .await
        .unwrap_err();
    assert!(matches!(e, Error::HashMismatch { .. }), "{e}");
}

#[tokio::test]
async fn retry_after_as_http_date() {
    let server = MockServer::start().await;
    // ManualClock's wall clock starts at 2026-01-01T00:00:00Z.
    Mock::given(method("POST"))
        .and(path("/v2/auth/challenge"))
        .respond_with(
            ResponseTemplate::new(429)
                .insert_header("retry-after", "Thu, 01 Jan 2026 00:00:20 GMT"),
        )
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path("/v2/auth/challenge"))
        .respond_with(ResponseTemplate::new(200).set_body_json(challenge_json()))
        .mount(&server)
        .await;
    let (t, clock) = setup(&server);
    t.auth_challenge().await.unwrap();
    assert_eq!(clock.sleeps(), vec![Duration::from_secs(20)]);
}

#[tokio::test]
async fn a_token_that_cannot_be_a_header_is_refused_without_echo() {
    let server = MockServer::start().await;
    let (t, _) = setup(&server);
    let e = t
        .rate_limits(&AccessToken::new("secret\nvalue"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Request { .. }), "{e}");
    assert!(!e.to_string().contains("secret"), "{e}");
}

#[tokio::test]
async fn pre_serialised_json_bodies_are_sent_as_given() {
    let server = MockServer::start().await;
    // The exact bytes the caller built: key order and spacing differ from serde's, so a match
    // proves nothing re-serialised them.
    let body = br#"{"invoiceSize":6480, "invoiceHash":"EbrK4cOSjW4hEpJaHU71YXSOZZmqP5++dK9nLgTzgV4=","encryptedInvoiceSize":6496,"encryptedInvoiceHash":"miYb1z3Ljw5VucTZslv3Tlt+V/EK1V8Q8evD8HMQ0dc=","encryptedInvoiceContent":"AAAA"}"#;
    Mock::given(method("POST"))
        .and(path(format!("/v2/sessions/online/{REF}/invoices")))
        .and(header("authorization", "Bearer a"))
        .and(header("content-type", "application/json"))
        .and(body_bytes(body.to_vec()))
        .respond_with(
            ResponseTemplate::new(202)
                .set_body_json(serde_json::json!({"referenceNumber": INV_REF})),
        )
        .expect(2)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(path(format!("/v2/sessions/online/{REF}/invoices")))
        .and(header("content-type", "application/json"))
        .and(body_bytes(b"{not json".to_vec()))
        .respond_with(ResponseTemplate::new(500))
        .expect(1)
        .mount(&server)
        .await;
    let (t, clock) = setup(&server);
    let a = AccessToken::new("a");
    // The typed call with an already-serialised body: decoded like `send_invoice`.
    let r = t
        .send_invoice_json(&a, &reference(), bytes::Bytes::from_static(body))
        .await
        .unwrap();
    assert_eq!(r.reference_number.as_ref(), INV_REF);
    // The raw escape hatch with `RequestBody::JsonBytes`.
    let endpoint = ksef_transport::Endpoint::from_operation(
        ksef_model::operations::OperationId::SendInvoice.spec(),
    );
    let raw = t
        .call::<()>(
            endpoint,
            &[REF],
            Vec::new(),
            Transport::bearer_of(&a),
            ksef_transport::RequestBody::JsonBytes(bytes::Bytes::from_static(body)),
        )
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&raw.value).unwrap();
    assert_eq!(v["referenceNumber"], INV_REF);
    // Same retry class as `send_invoice`: a failed send is never repeated.
    let e = t
        .send_invoice_json(&a, &reference(), bytes::Bytes::from_static(b"{not json"))
        .await
        .unwrap_err();
    assert_eq!(e.status(), Some(500));
    assert!(clock.sleeps().is_empty(), "a failed send is not repeated");
}
