//! `ksef permission grant|list|revoke`: persons' permissions in the logged-in context, through
//! the SDK's permissions handler (grants and revokes wait for KSeF's asynchronous operation).

use clap::{Subcommand, ValueEnum};
use futures_util::TryStreamExt as _;
use ksef::model::api::{PersonPermissionsGrantRequest, PersonPermissionsQueryType};
use serde_json::{Value, json};

use crate::Global;
use crate::error::{CliError, sdk};
use crate::send_cmd::with_login;

/// `ksef permission …`.
#[derive(Subcommand, Debug)]
pub enum PermissionCommand {
    /// Grant a person (by NIP or PESEL) permissions in the current context; waits until KSeF
    /// has applied it.
    Grant {
        /// The person's NIP.
        #[arg(long, required_unless_present = "pesel", conflicts_with = "pesel")]
        nip: Option<String>,
        /// The person's PESEL.
        #[arg(long)]
        pesel: Option<String>,
        /// Given name.
        #[arg(long)]
        first_name: String,
        /// Surname.
        #[arg(long)]
        last_name: String,
        /// A permission (repeatable).
        #[arg(long = "permission", value_enum, required = true)]
        permissions: Vec<PersonPermission>,
        /// Why (5–256 characters).
        #[arg(long)]
        description: String,
    },
    /// List permissions valid in the current context (--granted: those granted in it by you).
    List {
        /// Only the permissions you granted in this context.
        #[arg(long)]
        granted: bool,
    },
    /// Revoke a permission by the id `ksef permission list` shows; waits until applied.
    Revoke {
        /// The permission id.
        id: String,
    },
}

/// Person permissions.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum PersonPermission {
    /// Read invoices.
    InvoiceRead,
    /// Send invoices.
    InvoiceWrite,
    /// Read permissions.
    CredentialsRead,
    /// Manage permissions.
    CredentialsManage,
    /// Introspection.
    Introspection,
    /// Manage subunits.
    SubunitManage,
    /// Enforcement operations (enforcement authorities and court bailiffs only).
    EnforcementOperations,
}

impl PersonPermission {
    fn api(self) -> &'static str {
        match self {
            PersonPermission::InvoiceRead => "InvoiceRead",
            PersonPermission::InvoiceWrite => "InvoiceWrite",
            PersonPermission::CredentialsRead => "CredentialsRead",
            PersonPermission::CredentialsManage => "CredentialsManage",
            PersonPermission::Introspection => "Introspection",
            PersonPermission::SubunitManage => "SubunitManage",
            PersonPermission::EnforcementOperations => "EnforcementOperations",
        }
    }
}

/// Runs `ksef permission …`.
pub async fn run(command: PermissionCommand, g: Global) -> Result<(), CliError> {
    let json_out = g.json;
    match command {
        PermissionCommand::Grant {
            nip,
            pesel,
            first_name,
            last_name,
            permissions,
            description,
        } => {
            let subject = match (&nip, &pesel) {
                (Some(n), _) => {
                    json!({"type": "Nip", "value": crate::profile::parse_nip("--nip", n)?.as_str()})
                }
                (None, Some(p)) => {
                    let p = p
                        .parse::<ksef::model::Pesel>()
                        .map_err(|e| CliError::invalid(format!("--pesel: {e}")))?;
                    json!({"type": "Pesel", "value": p.as_str()})
                }
                (None, None) => return Err(CliError::invalid("give --nip or --pesel")),
            };
            let details = serde_json::to_value(ksef::permissions::person_by_identifier(
                first_name, last_name,
            ))
            .map_err(|e| CliError::failed(format!("subject details: {e}")))?;
            let request: PersonPermissionsGrantRequest = serde_json::from_value(json!({
                "subjectIdentifier": subject,
                "permissions": permissions.iter().map(|p| p.api()).collect::<Vec<_>>(),
                "description": description,
                "subjectDetails": details,
            }))
            .map_err(|e| CliError::invalid(format!("grant: {e}")))?;
            with_login(&g, async |li| {
                let op = li
                    .auth
                    .permissions()
                    .grant_persons(&request)
                    .await
                    .map_err(sdk("granting the permissions"))?;
                op.wait().await.map_err(sdk("applying the grant"))?;
                let reference = op.reference_number().to_string();
                if json_out {
                    println!("{}", json!({"referenceNumber": reference, "granted": true}));
                } else {
                    println!("granted (operation {reference})");
                }
                Ok(())
            })
            .await
        }
        PermissionCommand::List { granted } => {
            let query_type = if granted {
                PersonPermissionsQueryType::PermissionsGrantedInCurrentContext
            } else {
                PersonPermissionsQueryType::PermissionsInCurrentContext
            };
            with_login(&g, async |li| {
                let items: Vec<_> = li
                    .auth
                    .permissions()
                    .persons(ksef::permissions::persons_query(query_type))
                    .try_collect()
                    .await
                    .map_err(sdk("listing permissions"))?;
                let items = serde_json::to_value(&items)
                    .map_err(|e| CliError::failed(format!("cannot write JSON: {e}")))?;
                if json_out {
                    println!("{}", json!({ "permissions": items }));
                } else {
                    let s = |v: &Value| v.as_str().map(str::to_owned).unwrap_or_default();
                    for p in items.as_array().into_iter().flatten() {
                        println!(
                            "{}  {} {}  {}  {}",
                            s(&p["id"]),
                            s(&p["authorizedIdentifier"]["type"]),
                            s(&p["authorizedIdentifier"]["value"]),
                            s(&p["permissionScope"]),
                            s(&p["permissionState"]),
                        );
                    }
                }
                Ok(())
            })
            .await
        }
        PermissionCommand::Revoke { id } => {
            with_login(&g, async |li| {
                let op = li
                    .auth
                    .permissions()
                    .revoke(&id)
                    .await
                    .map_err(sdk("revoking the permission"))?;
                op.wait().await.map_err(sdk("applying the revocation"))?;
                if json_out {
                    println!("{}", json!({"id": id, "revoked": true}));
                } else {
                    println!("permission {id} revoked");
                }
                Ok(())
            })
            .await
        }
    }
}
