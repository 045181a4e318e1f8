//! KSeF tokens through the SDK against the in-process simulator: the `tokens` example end to end
//! (generate, wait Active, log in with the token, list, revoke, login then fails with 450), and
//! the rules around it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

#[path = "../examples/tokens.rs"]
#[allow(dead_code)]
mod example;

use futures_util::TryStreamExt;
use ksef::model::api::{AuthenticationTokenStatus, TokenPermissionType};
use ksef::model::operations::ListTokensQuery;
use ksef::model::{ContextIdentifier, Nip};
use ksef::{Error, KsefClient, TestIdentity};

const NIP: &str = "5265877635";

async fn sim() -> (checked::CheckedSim, KsefClient) {
    let sim = ksef_sim::Simulator::builder()
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    (sim, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_token_flow_against_the_simulator() {
    let (sim, client) = sim().await;
    let nip: Nip = NIP.parse().unwrap();
    let run = example::token_flow(&client, &nip).await.unwrap();
    assert_eq!(run.listed, 1);
    assert_eq!(
        run.after_revoke.status_code(),
        Some(450),
        "{}",
        run.after_revoke
    );
    assert!(matches!(run.after_revoke, Error::AuthenticationFailed(_)));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_rules() {
    let (sim, client) = sim().await;
    let ctx = ContextIdentifier::Nip(NIP.parse().unwrap());
    let identity = TestIdentity::Seal {
        name: "ksef-rs test".into(),
        nip: NIP.into(),
    };
    let auth = client
        .auth()
        .test_certificate(&identity, ctx.clone())
        .await
        .unwrap();
    let tokens = auth.tokens();

    // Refused locally: short description, no permissions.
    let err = tokens
        .generate("abc", &[TokenPermissionType::InvoiceRead])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = tokens.generate("bez uprawnień", &[]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    // The secret never shows in Debug.
    let a = tokens
        .generate_active("token do odczytu", &[TokenPermissionType::InvoiceRead])
        .await
        .unwrap();
    let b = tokens
        .generate_active("token do wysyłki", &[TokenPermissionType::InvoiceWrite])
        .await
        .unwrap();
    use ksef::secrecy::ExposeSecret;
    assert!(!format!("{a:?}").contains(a.token.expose_secret()));
    let st = tokens.status(&a.reference_number).await.unwrap();
    assert_eq!(st.status, AuthenticationTokenStatus::Active);
    assert_eq!(st.requested_permissions, [TokenPermissionType::InvoiceRead]);

    // Filters and paging.
    let found: Vec<_> = tokens
        .list(ListTokensQuery {
            description: Some("WYSYŁKI".into()),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].reference_number, b.reference_number);
    let all: Vec<_> = tokens
        .list(ListTokensQuery {
            page_size: Some(10),
            ..Default::default()
        })
        .try_collect()
        .await
        .unwrap();
    assert_eq!(all.len(), 2);

    // Logged in with token A (InvoiceRead only): it sees itself, cannot revoke B, can revoke
    // itself; KSeF certificates are out of reach (25001).
    let with_a = client
        .auth()
        .ksef_token(&a.token, ctx.clone())
        .await
        .unwrap();
    let own: Vec<_> = with_a
        .tokens()
        .list(ListTokensQuery::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(own.len(), 1);
    assert!(with_a.tokens().revoke(&b.reference_number).await.is_err());
    let err = with_a.certificates().enrollment_data().await.unwrap_err();
    assert_eq!(err.ksef_code().map(|c| c.code()), Some(25001), "{err}");
    with_a.tokens().revoke(&a.reference_number).await.unwrap();
    let st = tokens.status(&a.reference_number).await.unwrap();
    assert_eq!(st.status, AuthenticationTokenStatus::Revoked);
    let err = client.auth().ksef_token(&a.token, ctx).await.unwrap_err();
    assert_eq!(err.status_code(), Some(450), "{err}");
    sim.shutdown().await;
}
