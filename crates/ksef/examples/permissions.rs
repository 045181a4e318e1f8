//! Permissions, end to end: the owner of a NIP grants an employee (PESEL) the right to issue and
//! read invoices, waits for the operation, lists the grants, the employee logs in and sees its own
//! permissions, then the owner revokes everything and lists again.
//!
//! ```text
//! cargo run -p ksef --example permissions -- --sim      # against an embedded simulator
//! KSEF_NIP=… KSEF_PESEL=… cargo run -p ksef --example permissions   # against TEST
//! ```
//! (On TEST the example authenticates with self-signed test certificates for both persons.)

// An example reports what it does on the console.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use futures_util::TryStreamExt;
use ksef::crypto::cert::PersonId;
use ksef::model::api;
use ksef::model::{ContextIdentifier, Environment, Nip, Pesel};
use ksef::permissions::{person_by_identifier, persons_query};
use ksef::{KsefClient, TestIdentity};

/// What the flow observed.
#[derive(Debug)]
pub struct FlowOutcome {
    /// Permissions listed after the grant.
    pub granted: Vec<api::PersonPermission>,
    /// The employee's own permissions after logging in.
    pub personal: Vec<api::PersonalPermission>,
    /// Permissions listed for the employee after the revokes.
    pub left_after_revoke: usize,
}

/// Grant → wait → search → employee login → revoke → search.
pub async fn permissions_flow(
    client: &KsefClient,
    nip: &Nip,
    pesel: &Pesel,
) -> Result<FlowOutcome, Box<dyn std::error::Error>> {
    let context = ContextIdentifier::Nip(nip.clone());
    let owner = client
        .auth()
        .test_certificate(
            &TestIdentity::Seal {
                name: "Właściciel".into(),
                nip: nip.to_string(),
            },
            context.clone(),
        )
        .await?;
    let perms = owner.permissions();

    // Grant and wait for the operation (a failure would be Error::PermissionOperationFailed).
    let op = perms
        .grant_persons(&api::PersonPermissionsGrantRequest {
            subject_identifier: api::PersonPermissionsSubjectIdentifier {
                r#type: api::PersonPermissionsSubjectIdentifierType::Pesel,
                value: pesel.to_string(),
            },
            permissions: vec![
                api::PersonPermissionType::InvoiceWrite,
                api::PersonPermissionType::InvoiceRead,
            ],
            description: "Księgowa: wystawianie i odczyt faktur".into(),
            subject_details: person_by_identifier("Anna", "Nowak"),
        })
        .await?;
    println!("grant operation {}", op.reference_number());
    op.wait().await?;

    // Search: who holds what for this PESEL.
    let mut filter = persons_query(api::PersonPermissionsQueryType::PermissionsInCurrentContext);
    filter.authorized_identifier = Some(api::PersonPermissionsAuthorizedIdentifier {
        r#type: api::PersonPermissionsAuthorizedIdentifierType::Pesel,
        value: pesel.to_string(),
    });
    let granted: Vec<api::PersonPermission> = perms.persons(filter.clone()).try_collect().await?;
    for p in &granted {
        println!(
            "  {} {} (id {})",
            p.permission_scope.as_str(),
            p.description,
            p.id.as_str()
        );
    }

    // The employee logs in to the owner's context and sees its own permissions.
    let employee = client
        .auth()
        .test_certificate(
            &TestIdentity::Person {
                given_name: "Anna".into(),
                surname: "Nowak".into(),
                id: PersonId::Pesel(pesel.to_string()),
            },
            context,
        )
        .await?;
    let personal: Vec<api::PersonalPermission> = employee
        .permissions()
        .personal(api::PersonalPermissionsQueryRequest::default())
        .try_collect()
        .await?;
    println!("the employee holds {} permissions", personal.len());

    // Revoke everything granted, then search again.
    for p in &granted {
        perms.revoke(p.id.as_str()).await?.wait().await?;
    }
    let left: Vec<api::PersonPermission> = perms.persons(filter).try_collect().await?;
    println!("after revoking: {} permissions", left.len());
    Ok(FlowOutcome {
        granted,
        personal,
        left_after_revoke: left.len(),
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
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
) -> Result<(), Box<dyn std::error::Error>> {
    let use_sim = args.iter().any(|a| a == "--sim") || var("KSEF_SIM").is_ok_and(|v| v == "1");
    if use_sim {
        let sim = ksef_sim::Simulator::builder().start().await?;
        println!("simulator at {}", sim.base_url());
        let client = KsefClient::builder_for_url(&sim.base_url()).build()?;
        permissions_flow(&client, &"5265877635".parse()?, &"90010112349".parse()?).await?;
        sim.shutdown().await;
        return Ok(());
    }
    let env: Environment = var("KSEF_ENV").unwrap_or_else(|_| "test".into()).parse()?;
    let nip: Nip = var("KSEF_NIP")
        .map_err(|_| "set KSEF_NIP and KSEF_PESEL (or run with --sim)")?
        .parse()?;
    let pesel: Pesel = var("KSEF_PESEL")
        .map_err(|_| "set KSEF_PESEL (or run with --sim)")?
        .parse()?;
    let client = KsefClient::new(env)?;
    permissions_flow(&client, &nip, &pesel).await?;
    Ok(())
}
