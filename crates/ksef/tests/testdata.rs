//! Test data against the in-process simulator: every anonymous `/testdata` endpoint through the
//! SDK, and the temporal scope that removes what it created — also when its body fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use ksef::crypto::cert::PersonId;
use ksef::model::api::{SubjectType, TestDataPermissionType};
use ksef::model::{ContextIdentifier, Environment, Nip, Pesel};
use ksef::{Error, KsefClient, NewTestSubject, TestIdentity, TestSubject};

const COMPANY: &str = "5265877635";
const GROUP: &str = "7010002139";
const MEMBER: &str = "1111111111";
const PESEL: &str = "44051401359";

async fn sim() -> (checked::CheckedSim, KsefClient) {
    let sim = ksef_sim::Simulator::builder()
        .seed(11)
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    (sim, client)
}

fn person() -> TestIdentity {
    TestIdentity::Person {
        given_name: "Jan".into(),
        surname: "Testowy".into(),
        id: PersonId::Pesel(PESEL.into()),
    }
}

/// Authenticates the PESEL person in the company's context; `Ok(())` or the failure status code.
async fn person_login(client: &KsefClient) -> Result<(), i32> {
    let ctx = ContextIdentifier::Nip(COMPANY.parse().unwrap());
    match client.auth().test_certificate(&person(), ctx).await {
        Ok(_) => Ok(()),
        Err(Error::AuthenticationFailed(s)) => Err(s.code),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_permissions_work_inside_and_are_revoked_after() {
    let (sim, client) = sim().await;
    let company: Nip = COMPANY.parse().unwrap();
    let pesel: Pesel = PESEL.parse().unwrap();
    assert_eq!(person_login(&client).await, Err(415), "no permission yet");

    let td = client.testdata().unwrap();
    let inside = td
        .temporal(async |t| {
            t.grant_permissions(
                &company,
                &TestSubject::Pesel(pesel.clone()),
                &[TestDataPermissionType::InvoiceWrite],
            )
            .await?;
            assert_eq!(t.pending(), 1);
            Ok(person_login(&client).await)
        })
        .await
        .unwrap();
    assert_eq!(inside, Ok(()), "the granted permission lets the person in");
    assert_eq!(
        person_login(&client).await,
        Err(415),
        "the scope revoked the permission"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_cleans_up_in_reverse_order_when_the_body_fails() {
    let (sim, client) = sim().await;
    let company: Nip = COMPANY.parse().unwrap();
    let pesel: Pesel = PESEL.parse().unwrap();
    let ctx = ContextIdentifier::Nip(company.clone());
    let td = client.testdata().unwrap();
    let result: ksef::Result<()> = td
        .temporal(async |t| {
            // Person first, then a permission for them, then a block: undone block → permission →
            // person, so every removal finds what it removes.
            t.create_person(&company, &pesel, "ksef-rs temporal person")
                .await?;
            t.grant_permissions(
                &company,
                &TestSubject::Pesel(pesel.clone()),
                &[TestDataPermissionType::InvoiceRead],
            )
            .await?;
            t.block_context(&ctx).await?;
            assert_eq!(t.pending(), 3);
            assert_eq!(person_login(&client).await, Err(480), "context blocked");
            // The body fails: a duplicate person is refused by KSeF.
            t.create_person(&company, &pesel, "ksef-rs temporal person")
                .await?;
            unreachable!("a second person with the same NIP must be refused");
        })
        .await;
    assert!(result.is_err(), "the body's error is returned");
    // Cleaned up: the context is unblocked, the person and the permission are gone, so the same
    // person can be created again.
    let seal = TestIdentity::Seal {
        name: "ksef-rs".into(),
        nip: COMPANY.into(),
    };
    client
        .auth()
        .test_certificate(&seal, ctx.clone())
        .await
        .expect("unblocked after the scope");
    assert_eq!(person_login(&client).await, Err(415));
    td.create_person(&company, &pesel, "ksef-rs temporal person again")
        .await
        .expect("the person was removed at clean-up");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_attachments_and_explicit_cleanup() {
    let (sim, client) = sim().await;
    let group: Nip = GROUP.parse().unwrap();
    let member: Nip = MEMBER.parse().unwrap();
    let td = client.testdata().unwrap();
    let subject = NewTestSubject {
        nip: group.clone(),
        subject_type: SubjectType::VatGroup,
        description: "ksef-rs VAT group".into(),
        subunits: vec![(member.clone(), "ksef-rs group member".into())],
    };
    let rec = td.recorder();
    rec.create_subject(&subject).await.unwrap();
    rec.enable_attachments(&group).await.unwrap();
    // A second creation of the same subject is refused while it exists.
    assert!(td.create_subject(&subject).await.is_err());
    assert_eq!(rec.pending(), 2);
    let failures = rec.cleanup().await;
    assert!(failures.is_empty(), "{failures:?}");
    // Removed: it can be created again (and removed without the recorder).
    td.create_subject(&subject).await.unwrap();
    td.remove_subject(&group).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn test_data_is_refused_outside_test_before_any_call() {
    for env in [Environment::Demo, Environment::Production] {
        let client = KsefClient::new(env).unwrap();
        match client.testdata() {
            Err(Error::TestOnly { .. }) => {}
            other => panic!("expected TestOnly, got {other:?}"),
        }
    }
}

/// A reverse proxy in front of the simulator that records `METHOD /path` of every `/testdata`
/// request it forwards, in the order they arrive.
async fn recording_proxy(
    sim: &ksef_sim::SimulatorHandle,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::body::Body;
    use axum::extract::Request;
    let log: std::sync::Arc<std::sync::Mutex<Vec<String>>> = std::sync::Arc::default();
    let upstream = format!("http://{}", sim.local_addr());
    let http = reqwest::Client::new();
    let seen = log.clone();
    let app = axum::Router::new().fallback(move |req: Request| {
        let (http, upstream, seen) = (http.clone(), upstream.clone(), seen.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let path = parts.uri.path_and_query().unwrap().as_str().to_owned();
            if parts.uri.path().contains("/testdata/") {
                seen.lock()
                    .unwrap()
                    .push(format!("{} {}", parts.method, parts.uri.path()));
            }
            let mut forward = http.request(parts.method.clone(), format!("{upstream}{path}"));
            for (name, value) in &parts.headers {
                if name != axum::http::header::HOST {
                    forward = forward.header(name, value);
                }
            }
            let answer = forward.body(body).send().await.unwrap();
            let mut out = axum::response::Response::builder().status(answer.status());
            for (name, value) in answer.headers() {
                if name != axum::http::header::TRANSFER_ENCODING {
                    out = out.header(name, value);
                }
            }
            out.body(Body::from(answer.bytes().await.unwrap())).unwrap()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v2"), log)
}

async fn owner(client: &KsefClient) -> ksef::AuthenticatedClient {
    let seal = TestIdentity::Seal {
        name: "ksef-rs".into(),
        nip: COMPANY.into(),
    };
    let ctx = ContextIdentifier::Nip(COMPANY.parse().unwrap());
    client.auth().test_certificate(&seal, ctx).await.unwrap()
}

fn session_limits(max_invoices: u32) -> ksef::model::api::SetSessionLimitsRequest {
    serde_json::from_value(serde_json::json!({
        "onlineSession": {"maxInvoiceSizeInMB": 1, "maxInvoiceWithAttachmentSizeInMB": 2, "maxInvoices": max_invoices},
        "batchSession": {"maxInvoiceSizeInMB": 1, "maxInvoiceWithAttachmentSizeInMB": 2, "maxInvoices": max_invoices},
    }))
    .unwrap()
}

/// The effective rate limits with `invoiceSend.perSecond` set to `per_second`.
async fn rate_limits(
    auth: &ksef::AuthenticatedClient,
    per_second: i64,
) -> ksef::model::api::SetRateLimitsRequest {
    let mut limits = serde_json::to_value(auth.limits().rate_limits().await.unwrap()).unwrap();
    limits["invoiceSend"]["perSecond"] = per_second.into();
    serde_json::from_value(serde_json::json!({ "rateLimits": limits })).unwrap()
}

/// The undo calls go out newest first — observed on the wire — and the overrides (session
/// limits, rate limits) are back at their defaults afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_undoes_every_step_newest_first_including_overrides() {
    let (sim, _) = sim().await;
    let (proxy, log) = recording_proxy(&sim).await;
    let client = KsefClient::builder_for_url(&proxy).build().unwrap();
    let company: Nip = COMPANY.parse().unwrap();
    let pesel: Pesel = PESEL.parse().unwrap();
    let auth = owner(&client).await;
    let default_limits = auth.limits().context().await.unwrap();
    let default_rates = auth.limits().rate_limits().await.unwrap();
    let td = client.testdata().unwrap();
    td.temporal(async |t| {
        t.create_person(&company, &pesel, "ksef-rs temporal person")
            .await?;
        t.grant_permissions(
            &company,
            &TestSubject::Pesel(pesel.clone()),
            &[TestDataPermissionType::InvoiceRead],
        )
        .await?;
        t.set_session_limits(&auth, &session_limits(7)).await?;
        t.set_rate_limits(&auth, &rate_limits(&auth, 3).await)
            .await?;
        let limits = auth.limits().context().await?;
        assert_eq!(limits.online_session.max_invoices, 7);
        assert_eq!(
            auth.limits().rate_limits().await?.invoice_send.per_second,
            3
        );
        t.block_context(&ContextIdentifier::Nip(company.clone()))
            .await?;
        assert_eq!(t.pending(), 5);
        Ok(())
    })
    .await
    .unwrap();
    let calls = log.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "POST /v2/testdata/person",
            "POST /v2/testdata/permissions",
            "POST /v2/testdata/limits/context/session",
            "POST /v2/testdata/rate-limits",
            "POST /v2/testdata/context/block",
            // Clean-up, newest first:
            "POST /v2/testdata/context/unblock",
            "DELETE /v2/testdata/rate-limits",
            "DELETE /v2/testdata/limits/context/session",
            "POST /v2/testdata/permissions/revoke",
            "POST /v2/testdata/person/remove",
        ]
    );
    assert_eq!(auth.limits().context().await.unwrap(), default_limits);
    assert_eq!(auth.limits().rate_limits().await.unwrap(), default_rates);
    sim.shutdown().await;
}

/// One undo step fails (the simulator answers 500 once, the client does not retry): the steps
/// after it still run, and `temporal` reports the failure although the body succeeded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_clean_up_step_is_reported_and_the_rest_still_run() {
    use ksef::model::operations::OperationId;
    use ksef_sim::faults::{FaultPlan, FaultRule, Phase};
    let (sim, _) = sim().await;
    let client = KsefClient::builder_for_url(&sim.base_url())
        .retry_policy(ksef::transport::RetryPolicy::none())
        .build()
        .unwrap();
    let company: Nip = COMPANY.parse().unwrap();
    let pesel: Pesel = PESEL.parse().unwrap();
    let auth = owner(&client).await;
    let default_limits = auth.limits().context().await.unwrap();
    let td = client.testdata().unwrap();
    let result = td
        .temporal(async |t| {
            t.create_person(&company, &pesel, "ksef-rs temporal person")
                .await?;
            t.grant_permissions(
                &company,
                &TestSubject::Pesel(pesel.clone()),
                &[TestDataPermissionType::InvoiceWrite],
            )
            .await?;
            t.set_session_limits(&auth, &session_limits(5)).await?;
            // The revoke (second undo step of three) will fail.
            sim.set_faults(
                FaultPlan::new(1).rule(
                    FaultRule::operation(OperationId::TestdataRevokePermissions)
                        .status(500, 1.0, Phase::Before)
                        .limit(1),
                ),
            );
            Ok("the body's value")
        })
        .await;
    match result {
        Err(Error::TestDataCleanup(failures)) => {
            assert_eq!(failures.len(), 1, "{failures:?}");
            assert_eq!(failures[0].http_status(), Some(500), "{}", failures[0]);
        }
        other => panic!("expected TestDataCleanup, got {other:?}"),
    }
    assert_eq!(sim.fault_counters().status_before, 1);
    sim.clear_faults();
    // The steps before and after the failed one ran: limits back to default, person removed.
    assert_eq!(auth.limits().context().await.unwrap(), default_limits);
    td.create_person(&company, &pesel, "ksef-rs temporal person again")
        .await
        .expect("the person was removed although the revoke before it failed");
    // The failed step left its permission behind: the person still logs in.
    assert_eq!(person_login(&client).await, Ok(()));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_cleans_up_when_the_body_panics() {
    use futures_util::FutureExt as _;
    let (sim, client) = sim().await;
    let company: Nip = COMPANY.parse().unwrap();
    let pesel: Pesel = PESEL.parse().unwrap();
    let td = client.testdata().unwrap();
    let outcome = std::panic::AssertUnwindSafe(td.temporal(async |t| {
        t.grant_permissions(
            &company,
            &TestSubject::Pesel(pesel.clone()),
            &[TestDataPermissionType::InvoiceWrite],
        )
        .await?;
        assert_eq!(person_login(&client).await, Ok(()));
        if t.pending() == 1 {
            panic!("the body panics with a permission granted");
        }
        Ok(())
    }))
    .catch_unwind()
    .await;
    assert!(outcome.is_err(), "the panic goes on after the clean-up");
    assert_eq!(
        person_login(&client).await,
        Err(415),
        "revoked before the panic went on"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_cleans_up_in_the_background_when_cancelled() {
    let (sim, client) = sim().await;
    let company: Nip = COMPANY.parse().unwrap();
    let pesel: Pesel = PESEL.parse().unwrap();
    let (granted_tx, granted_rx) = tokio::sync::oneshot::channel();
    let td = client.testdata().unwrap();
    let scope = td.temporal(async |t| {
        t.grant_permissions(
            &company,
            &TestSubject::Pesel(pesel.clone()),
            &[TestDataPermissionType::InvoiceWrite],
        )
        .await?;
        granted_tx.send(()).unwrap();
        std::future::pending::<ksef::Result<()>>().await
    });
    // The scope future is dropped (cancelled) as soon as the other branch finishes.
    tokio::select! {
        _ = scope => unreachable!("the body never finishes"),
        () = async {
            granted_rx.await.unwrap();
            assert_eq!(person_login(&client).await, Ok(()), "granted while the body runs");
        } => {}
    }
    // The revoke runs from a background task: wait (bounded) until the login is refused.
    let mut refused = None;
    for _ in 0..500 {
        if let Err(code) = person_login(&client).await {
            refused = Some(code);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        refused,
        Some(415),
        "the background clean-up revoked the permission"
    );
    sim.shutdown().await;
}
