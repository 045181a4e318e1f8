//! KSeF tokens: log in with a XAdES signature, generate a token and wait until it is active,
//! log in with the token, list tokens, revoke it — after which logging in with it fails.
//!
//! Against an embedded simulator:
//!     cargo run -p ksef --example tokens -- --sim     (or KSEF_SIM=1)
//! Against TEST (a self-signed seal certificate is generated for the NIP):
//!     KSEF_ENV=test KSEF_NIP=1234567890 cargo run -p ksef --example tokens

// An example talks to its user on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use futures_util::TryStreamExt;
use ksef::model::api::TokenPermissionType;
use ksef::model::operations::ListTokensQuery;
use ksef::model::{ContextIdentifier, Environment, Nip};
use ksef::{Error, KsefClient, TestIdentity};

/// What the flow saw.
#[derive(Debug)]
pub struct TokenRun {
    /// The token's reference number.
    pub reference: String,
    /// Tokens listed while it was active.
    pub listed: usize,
    /// The failure of the login attempted after the revocation.
    pub after_revoke: Error,
}

/// The token flow for `nip`.
pub async fn token_flow(
    client: &KsefClient,
    nip: &Nip,
) -> Result<TokenRun, Box<dyn std::error::Error + Send + Sync>> {
    let ctx = ContextIdentifier::Nip(nip.clone());
    let identity = TestIdentity::Seal {
        name: "ksef-rs example".into(),
        nip: nip.to_string(),
    };
    let auth = client
        .auth()
        .test_certificate(&identity, ctx.clone())
        .await?;
    let tokens = auth.tokens();

    let token = tokens
        .generate_active(
            "ksef-rs example token",
            &[
                TokenPermissionType::InvoiceRead,
                TokenPermissionType::InvoiceWrite,
            ],
        )
        .await?;
    println!(
        "token {} is active (store its secret now)",
        token.reference_number
    );

    let with_token = client.auth().ksef_token(&token.token, ctx.clone()).await?;
    println!(
        "logged in with the token: {}",
        with_token.reference_number()
    );

    let listed: Vec<_> = tokens
        .list(ListTokensQuery::default())
        .try_collect()
        .await?;
    for t in &listed {
        println!("  {} {} {:?}", t.reference_number, t.status, t.description);
    }

    tokens.revoke(&token.reference_number).await?;
    let status = tokens.status(&token.reference_number).await?;
    println!("revoked: status {}", status.status);
    let Err(after_revoke) = client.auth().ksef_token(&token.token, ctx).await else {
        return Err("a revoked token still authenticated".into());
    };
    println!("login with the revoked token fails: {after_revoke}");
    Ok(TokenRun {
        reference: token.reference_number.to_string(),
        listed: listed.len(),
        after_revoke,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    run(std::env::args().skip(1).collect(), |name| {
        std::env::var(name)
    })
    .await
}

/// The example as `main` runs it: `args` are the command-line arguments after the program name,
/// `var` reads an environment variable (`std::env::var` in `main`; the tests pass their own).
pub async fn run(
    args: Vec<String>,
    var: impl Fn(&str) -> Result<String, std::env::VarError>,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let use_sim = args.iter().any(|a| a == "--sim") || var("KSEF_SIM").is_ok_and(|v| v == "1");
    if use_sim {
        let sim = ksef_sim::Simulator::builder().start().await?;
        println!("simulator at {}", sim.base_url());
        let client = KsefClient::builder_for_url(&sim.base_url()).build()?;
        token_flow(&client, &"5265877635".parse()?).await?;
        sim.shutdown().await;
    } else {
        let env: Environment = var("KSEF_ENV").unwrap_or_else(|_| "test".into()).parse()?;
        let nip: Nip = var("KSEF_NIP")
            .map_err(|_| "set KSEF_NIP (or run with --sim)")?
            .parse()?;
        token_flow(&KsefClient::new(env)?, &nip).await?;
    }
    Ok(())
}
