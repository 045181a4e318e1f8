//! Online sessions beyond the happy path, against the in-process simulator: a session saved to
//! JSON and resumed by a new process-like client (restored from `SavedAuth`), and the scoped
//! `with_online` closing its session when the body panics or the future is cancelled.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use std::sync::Mutex;
use std::time::Duration;

use futures_util::FutureExt as _;
use ksef::model::{ContextIdentifier, FormCode, InvoiceTemplate, Nip, ReferenceNumber};
use ksef::secrecy::ExposeSecret;
use ksef::{AuthenticatedClient, Error, KsefClient, PollOptions, SavedAuth, SavedOnlineSession};

const NIP: &str = "5265877635";
const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

fn invoice(number: &str) -> Vec<u8> {
    let today = time::OffsetDateTime::now_utc().date();
    InvoiceTemplate::new(TEMPLATE)
        .fill([("nip", NIP), ("invoice_number", number)])
        .unwrap()
        .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"))
        .into_bytes()
}

fn client(base: &str) -> KsefClient {
    KsefClient::builder_for_url(base)
        .poll_options(PollOptions {
            initial_delay: Duration::from_millis(10),
            ..Default::default()
        })
        .build()
        .unwrap()
}

async fn sim() -> checked::CheckedSim {
    ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start_checked()
        .await
        .unwrap()
}

async fn login(client: &KsefClient) -> AuthenticatedClient {
    let nip: Nip = NIP.parse().unwrap();
    client
        .auth()
        .test_certificate(
            &ksef::TestIdentity::Seal {
                name: "ksef-rs sessions".into(),
                nip: NIP.into(),
            },
            ContextIdentifier::Nip(nip),
        )
        .await
        .unwrap()
}

/// The session's status code as KSeF reports it, polled until it leaves 100 (open) or
/// `limit` rounds passed (the background close of a cancelled scope takes a moment).
async fn status_after_close(auth: &AuthenticatedClient, session: &ReferenceNumber) -> i32 {
    let mut code = 100;
    for _ in 0..500 {
        let s = auth.sessions().status(session).await.unwrap();
        code = s.status.code;
        if !matches!(code, 100 | 150 | 170) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_session_is_resumed_by_a_restored_client() {
    let sim = sim().await;
    // "Process" one: log in, open, send, save both states as JSON, drop everything.
    let (auth_json, session_json, first_number) = {
        let first = client(&sim.base_url());
        let auth = login(&first).await;
        let session = auth.sessions().open_online().await.unwrap();
        let accepted = session
            .send_invoice(invoice("RESUME/1"))
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
        let saved = session.save();
        let debug = format!("{saved:?}");
        assert!(
            !debug.contains(saved.symmetric_key.expose_secret()),
            "the key stays out of Debug: {debug}"
        );
        let auth_json = serde_json::to_string(&auth.save().await).unwrap();
        let session_json = serde_json::to_string(&saved).unwrap();
        (auth_json, session_json, accepted.ksef_number)
    };

    // "Process" two: a new client, the login restored, the session resumed.
    let second = client(&sim.base_url());
    let auth = second
        .auth()
        .restore(serde_json::from_str::<SavedAuth>(&auth_json).unwrap())
        .unwrap();
    let saved: SavedOnlineSession = serde_json::from_str(&session_json).unwrap();
    let reference = saved.reference_number.clone();

    // Refused, before any call: another environment, or a session past its validUntil.
    let elsewhere = client("http://127.0.0.1:9/v2");
    let other = elsewhere
        .auth()
        .restore(serde_json::from_str::<SavedAuth>(&auth_json).unwrap());
    assert!(other.is_err(), "the login belongs to the simulator too");
    match ksef::AuthenticatedClient::clone(&auth)
        .sessions()
        .resume_online(SavedOnlineSession {
            api_base_url: "http://127.0.0.1:9/v2".into(),
            ..saved.clone()
        }) {
        Err(Error::SavedSessionOtherEnvironment { saved, client, .. }) => {
            assert_eq!(saved, "http://127.0.0.1:9/v2");
            assert_eq!(client, sim.base_url());
        }
        other => panic!("expected SavedSessionOtherEnvironment, got {other:?}"),
    }
    let mut expired = saved.clone();
    expired.valid_until = (time::OffsetDateTime::now_utc() - time::Duration::seconds(1)).into();
    assert!(matches!(
        auth.sessions().resume_online(expired),
        Err(Error::SessionExpired { .. })
    ));

    let session = auth.sessions().resume_online(saved).unwrap();
    assert_eq!(session.reference_number(), &reference);
    let accepted = session
        .send_invoice(invoice("RESUME/2"))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert_ne!(accepted.ksef_number, first_number);
    // The invoice was encrypted with the session's original key: KSeF decrypted it.
    let upo = session
        .upo_by_ksef_number(&accepted.ksef_number)
        .await
        .unwrap();
    assert!(upo.invoice("FA/GRQMB-RESUME/2/05/2025").is_some());
    let closed = session.close().await.unwrap();
    assert_eq!(closed.successful_invoice_count(), 2);
    assert_eq!(closed.failed_invoice_count(), 0);
    let pages = closed.fetch_upo().await.unwrap();
    let listed: Vec<_> = pages
        .iter()
        .flat_map(|p| p.upo.documents.iter().map(|d| d.ksef_number.clone()))
        .collect();
    assert!(listed.contains(&first_number), "{listed:?}");
    assert!(listed.contains(&accepted.ksef_number), "{listed:?}");
    sim.shutdown().await;
}

/// The body panics inside a runtime of its own that ends right after: only a close made before
/// the panic went on can have reached KSeF (a background close would never run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_online_closes_the_session_when_the_body_panics() {
    let sim = sim().await;
    let base = sim.base_url();
    let (reference, outcome) = tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let opened: Mutex<Option<ReferenceNumber>> = Mutex::default();
        let outcome = rt.block_on(async {
            let client = client(&base);
            let auth = login(&client).await;
            std::panic::AssertUnwindSafe(auth.sessions().with_online(FormCode::Fa3, async |s| {
                *opened.lock().unwrap() = Some(s.reference_number().clone());
                s.send_invoice(invoice("PANIC/1")).await?.wait().await?;
                if s.reference_number().as_str().is_empty() {
                    return Ok(());
                }
                panic!("the body panics after one accepted invoice");
            }))
            .catch_unwind()
            .await
        });
        drop(rt);
        (opened.into_inner().unwrap().unwrap(), outcome)
    })
    .await
    .unwrap();
    let payload = outcome.expect_err("the panic goes on after the clean-up");
    assert_eq!(
        payload.downcast_ref::<&str>(),
        Some(&"the body panics after one accepted invoice")
    );
    // Closed before the panic went on: processed, with its one invoice.
    let auth = login(&client(&sim.base_url())).await;
    let status = auth.sessions().status(&reference).await.unwrap();
    assert_eq!(status.status.code, 200, "{:?}", status.status);
    assert_eq!(status.successful_invoice_count, Some(1));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_online_closes_the_session_when_cancelled() {
    let sim = sim().await;
    let client = client(&sim.base_url());
    let auth = login(&client).await;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn({
        let auth = auth.clone();
        async move {
            auth.sessions()
                .with_online(FormCode::Fa3, async move |s| {
                    s.send_invoice(invoice("CANCEL/1")).await?.wait().await?;
                    started_tx
                        .send(s.reference_number().clone())
                        .expect("the test waits");
                    // Never finishes on its own: the task is aborted here.
                    std::future::pending::<ksef::Result<()>>().await
                })
                .await
        }
    });
    let reference = started_rx.await.unwrap();
    assert_eq!(
        auth.sessions()
            .status(&reference)
            .await
            .unwrap()
            .status
            .code,
        100,
        "open while the body runs"
    );
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    // The drop guard sent the close from a background task: KSeF processes the session.
    assert_eq!(status_after_close(&auth, &reference).await, 200);
    let status = auth.sessions().status(&reference).await.unwrap();
    assert_eq!(status.successful_invoice_count, Some(1));
    sim.shutdown().await;
}
