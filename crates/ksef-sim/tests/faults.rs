//! Fault injection over HTTP: 5xx and dropped connections before and after handling (the state
//! shows which), 429 with Retry-After, latency, the admin endpoint and its counters, seeded
//! reproducibility.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{Api, Body, NIP, StartChecked, invoice, signer};
use ksef_model::operations::OperationId;
use ksef_sim::faults::{FaultCounters, FaultPlan, FaultRule, Phase};
use serde_json::{Value, json};

/// The server's origin (`http://127.0.0.1:PORT`).
fn origin(sim: &ksef_sim::SimulatorHandle) -> String {
    format!("http://{}", sim.local_addr())
}

async fn set_plan(http: &reqwest::Client, origin: &str, plan: &FaultPlan) {
    let r = http
        .put(format!("{origin}/__sim/faults"))
        .json(plan)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

async fn counters(http: &reqwest::Client, origin: &str) -> FaultCounters {
    let v: Value = http
        .get(format!("{origin}/__sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    serde_json::from_value(v["counters"].clone()).unwrap()
}

/// Sends an invoice with a raw request (the common client panics on transport errors).
async fn raw_send(
    api: &Api,
    access: &str,
    session: &str,
    key: &ksef_crypto::encryption::SessionKey,
    xml: &[u8],
) -> Result<(u16, Value, reqwest::header::HeaderMap), reqwest::Error> {
    let e = key.encrypt_invoice(xml);
    let r = api
        .http
        .post(format!("{}/sessions/online/{session}/invoices", api.base))
        .bearer_auth(access)
        .json(&json!({
            "invoiceHash": e.invoice_hash.as_str(),
            "invoiceSize": e.invoice_size,
            "encryptedInvoiceHash": e.encrypted_invoice_hash.as_str(),
            "encryptedInvoiceSize": e.encrypted_invoice_size,
            "encryptedInvoiceContent": e.ciphertext_base64(),
        }))
        .send()
        .await?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body = r.bytes().await?;
    Ok((
        status,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
        headers,
    ))
}

async fn invoice_count(api: &Api, access: &str, session: &str) -> usize {
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
    r.json["invoices"].as_array().unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faults_before_leave_state_untouched_and_after_keep_it() {
    let (sim, api) = common::start().await;
    let http = reqwest::Client::new();
    let origin = origin(&sim);
    let (access, _, _) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    let (session, key) = api.open_session(&access).await;
    let send_rule = || FaultRule::operation(OperationId::SendInvoice);

    // 503 before handling: nothing stored.
    set_plan(
        &http,
        &origin,
        &FaultPlan::new(1).rule(send_rule().status(503, 1.0, Phase::Before)),
    )
    .await;
    let (status, body, _) = raw_send(&api, &access, &session, &key, &invoice(NIP, "F/1"))
        .await
        .unwrap();
    assert_eq!(status, 503);
    assert_eq!(body["status"], 503);
    assert_eq!(invoice_count(&api, &access, &session).await, 0);

    // 502 after handling: the invoice is stored, only the answer is lost.
    set_plan(
        &http,
        &origin,
        &FaultPlan::new(1).rule(send_rule().status(502, 1.0, Phase::After)),
    )
    .await;
    let (status, _, _) = raw_send(&api, &access, &session, &key, &invoice(NIP, "F/1"))
        .await
        .unwrap();
    assert_eq!(status, 502);
    assert_eq!(invoice_count(&api, &access, &session).await, 1);

    // Dropped before handling: a transport error, nothing stored.
    set_plan(
        &http,
        &origin,
        &FaultPlan::new(1).rule(send_rule().drop_connection(1.0, Phase::Before)),
    )
    .await;
    let e = raw_send(&api, &access, &session, &key, &invoice(NIP, "F/2"))
        .await
        .unwrap_err();
    assert!(!e.is_status() && !e.is_connect(), "{e:?}");
    assert_eq!(invoice_count(&api, &access, &session).await, 1);

    // Dropped after handling: a transport error, but the invoice is stored.
    set_plan(
        &http,
        &origin,
        &FaultPlan::new(1).rule(send_rule().drop_connection(1.0, Phase::After)),
    )
    .await;
    raw_send(&api, &access, &session, &key, &invoice(NIP, "F/2"))
        .await
        .unwrap_err();
    assert_eq!(invoice_count(&api, &access, &session).await, 2);

    // 429 with Retry-After, in the legacy format (and problem+json when asked).
    set_plan(
        &http,
        &origin,
        &FaultPlan::new(1).rule(send_rule().rate_limit(1.0, 3)),
    )
    .await;
    let (status, body, headers) = raw_send(&api, &access, &session, &key, &invoice(NIP, "F/3"))
        .await
        .unwrap();
    assert_eq!(status, 429);
    assert_eq!(headers["retry-after"], "3");
    assert_eq!(body["status"]["code"], 429);
    assert_eq!(invoice_count(&api, &access, &session).await, 2);
    let c = counters(&http, &origin).await;
    assert_eq!((c.matched, c.rate_limited, c.total()), (1, 1, 1));

    // Latency only: the call succeeds and is counted as delayed; other operations untouched.
    set_plan(
        &http,
        &origin,
        &FaultPlan::new(1).rule(
            FaultRule::operation(OperationId::SessionStatus)
                .latency(std::time::Duration::from_millis(20)),
        ),
    )
    .await;
    let r = api
        .call(
            OperationId::SessionStatus,
            &[&session],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(invoice_count(&api, &access, &session).await, 2);
    let c = counters(&http, &origin).await;
    assert_eq!((c.matched, c.delayed, c.total()), (1, 1, 0));
    assert_eq!(sim.fault_counters(), c);

    // The stored invoices were processed normally: F/1 and F/2 accepted exactly once.
    sim.clear_faults();
    let list = api
        .call_q(
            OperationId::ListSessionInvoices,
            &[&session],
            "?pageSize=100",
            Some(&access),
            Body::None,
            &[],
        )
        .await;
    for inv in list.json["invoices"].as_array().unwrap() {
        let st = api
            .invoice_final(&access, &session, inv["referenceNumber"].as_str().unwrap())
            .await;
        assert_eq!(st["status"]["code"], 200, "{st}");
    }
    // Resending F/1 (as a client that took the 502 for "not stored" would) is a duplicate.
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "F/1"))
        .await;
    assert_eq!(r.status, 202);
    let st = api
        .invoice_final(
            &access,
            &session,
            r.json["referenceNumber"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["status"]["code"], 440);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builder_plan_admin_endpoint_and_seeded_reproducibility() {
    let plan = FaultPlan::new(99).rule(
        FaultRule::path_prefix("/v2/security/")
            .status(500, 0.3, Phase::Before)
            .status(503, 0.2, Phase::Before),
    );
    let run = |plan: FaultPlan| async move {
        let sim = ksef_sim::Simulator::builder()
            .rate_limits(false)
            .faults(plan)
            .start_checked()
            .await
            .unwrap();
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _ in 0..40 {
            let r = http
                .get(format!(
                    "{}/security/public-key-certificates",
                    sim.base_url()
                ))
                .send()
                .await
                .unwrap();
            statuses.push(r.status().as_u16());
        }
        // Other paths are not affected.
        let r = http
            .post(format!("{}/auth/challenge", sim.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        (sim, statuses)
    };
    let (sim, a) = run(plan.clone()).await;
    let (_sim2, b) = run(plan.clone()).await;
    assert_eq!(a, b, "same seed, same requests: same faults");
    assert!(
        a.contains(&500) && a.contains(&503) && a.contains(&200),
        "{a:?}"
    );
    let http = reqwest::Client::new();
    let origin = origin(&sim);
    let report: Value = http
        .get(format!("{origin}/__sim/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(report["plan"]["seed"], 99);
    let injected = a.iter().filter(|s| **s != 200).count() as u64;
    assert_eq!(report["counters"]["matched"], 40);
    assert_eq!(
        report["counters"]["statusBefore"].as_u64().unwrap(),
        injected
    );

    // Bad plans are refused with a reason; unknown admin paths are 404.
    for bad in [
        json!({"rules": [{"faults": [{"kind": "status", "status": 404, "rate": 0.5}]}]}),
        json!({"rules": [{"faults": [{"kind": "drop", "rate": 1.5}]}]}),
        json!({"rules": [{"operation": "send_invoice"}]}),
    ] {
        let r = http
            .put(format!("{origin}/__sim/faults"))
            .json(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let v: Value = r.json().await.unwrap();
        assert!(!v["error"].as_str().unwrap().is_empty());
    }
    let r = http
        .get(format!("{origin}/__sim/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // DELETE: no faults any more.
    let r = http
        .delete(format!("{origin}/__sim/faults"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    for _ in 0..10 {
        let r = http
            .get(format!(
                "{}/security/public-key-certificates",
                sim.base_url()
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    assert_eq!(sim.fault_counters(), FaultCounters::default());
}
