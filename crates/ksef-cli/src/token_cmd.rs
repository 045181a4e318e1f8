//! `ksef token generate|list|status|revoke`: KSeF tokens of the logged-in context, through the
//! SDK's authenticated transport.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};
use futures_util::TryStreamExt;
use ksef::model::ReferenceNumber;
use ksef::model::api::TokenPermissionType;
use ksef::model::operations::ListTokensQuery;
use ksef::secrecy::ExposeSecret;
use serde_json::json;

use crate::Global;
use crate::error::{CliError, sdk};
use crate::send_cmd::with_login;

/// `ksef token …`.
#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Generate a token with a fixed permission set; it is printed (or written) once.
    Generate {
        /// What the token is for (5–256 characters).
        #[arg(long)]
        description: String,
        /// A permission of the token (repeatable).
        #[arg(long = "permission", value_enum, required = true)]
        permissions: Vec<Permission>,
        /// Write the token to this file (mode 0600) instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Return at once instead of waiting until the token is Active.
        #[arg(long)]
        no_wait: bool,
    },
    /// List the context's tokens.
    List {
        /// Only tokens with this status (repeatable): pending, active, revoking, revoked, failed.
        #[arg(long)]
        status: Vec<String>,
        /// Only tokens whose description contains this (3 characters or more).
        #[arg(long)]
        description: Option<String>,
    },
    /// One token's status.
    Status {
        /// The token's reference number.
        reference: String,
    },
    /// Revoke a token.
    Revoke {
        /// The token's reference number.
        reference: String,
    },
}

/// Permissions a KSeF token can carry.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Permission {
    /// Read invoices.
    InvoiceRead,
    /// Send invoices.
    InvoiceWrite,
    /// Read permissions.
    CredentialsRead,
    /// Manage permissions.
    CredentialsManage,
    /// Manage subunits.
    SubunitManage,
    /// Enforcement operations.
    EnforcementOperations,
    /// Introspection (session and UPO lookups).
    Introspection,
}

impl Permission {
    fn api(self) -> TokenPermissionType {
        match self {
            Permission::InvoiceRead => TokenPermissionType::InvoiceRead,
            Permission::InvoiceWrite => TokenPermissionType::InvoiceWrite,
            Permission::CredentialsRead => TokenPermissionType::CredentialsRead,
            Permission::CredentialsManage => TokenPermissionType::CredentialsManage,
            Permission::SubunitManage => TokenPermissionType::SubunitManage,
            Permission::EnforcementOperations => TokenPermissionType::EnforcementOperations,
            Permission::Introspection => TokenPermissionType::Introspection,
        }
    }
}

fn parse_ref(s: &str) -> Result<ReferenceNumber, CliError> {
    s.parse::<ReferenceNumber>()
        .map_err(|e| CliError::invalid(format!("token reference {s:?}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, CliError> {
    serde_json::to_value(v).map_err(|e| CliError::failed(format!("cannot write JSON: {e}")))
}

/// Runs `ksef token …`.
pub async fn run(command: TokenCommand, g: Global) -> Result<(), CliError> {
    let json_out = g.json;
    match command {
        TokenCommand::Generate {
            description,
            permissions,
            out,
            no_wait,
        } => {
            let len = description.chars().count();
            if !(5..=256).contains(&len) {
                return Err(CliError::invalid(format!(
                    "--description must have 5 to 256 characters, not {len}"
                )));
            }
            let permissions: Vec<TokenPermissionType> =
                permissions.iter().map(|p| p.api()).collect();
            with_login(&g, async |li| {
                let tokens = li.auth.tokens();
                let generated = tokens
                    .generate(&description, &permissions)
                    .await
                    .map_err(sdk("generating the token"))?;
                let reference = generated.reference_number;
                let secret = generated.token.expose_secret();
                // Save the secret before anything else can fail: KSeF shows it only once.
                if let Some(path) = &out {
                    crate::profile::write_private(path, secret.as_bytes())?;
                }
                let mut status = "Pending".to_owned();
                if !no_wait {
                    match tokens.wait_active(&reference).await {
                        Ok(s) => status = to_json(&s.status)?.as_str().unwrap_or("").to_owned(),
                        // Reported below, after the output, with the status it ended in.
                        Err(ksef::Error::TokenNotActive { status: ended, .. }) => {
                            status = ended.split(':').next().unwrap_or("Failed").to_owned();
                        }
                        Err(e) => {
                            return Err(CliError::failed(format!(
                                "token {reference}: {e}; check it later with `ksef token status {reference}`"
                            )));
                        }
                    }
                }
                if json_out {
                    let mut v = json!({"referenceNumber": reference.to_string(), "status": status});
                    match &out {
                        Some(p) => v["file"] = json!(p.display().to_string()),
                        None => v["token"] = json!(secret),
                    }
                    println!("{v}");
                } else {
                    match &out {
                        Some(p) => println!("token {reference} ({status}) written to {}", p.display()),
                        None => println!("{secret}"),
                    }
                    eprintln!("token {reference}: {status}; KSeF shows it only once — store it now");
                }
                if status != "Active" && status != "Pending" {
                    return Err(CliError::failed(format!(
                        "token {reference} failed to activate: generate a new one"
                    )));
                }
                Ok(())
            })
            .await
        }
        TokenCommand::List {
            status,
            description,
        } => {
            let statuses = status
                .iter()
                .map(|s| {
                    let mut c = s.chars();
                    let cap = c
                        .next()
                        .map(|f| {
                            f.to_uppercase()
                                .chain(c.map(|x| x.to_ascii_lowercase()))
                                .collect::<String>()
                        })
                        .unwrap_or_default();
                    serde_json::from_value(json!(cap)).map_err(|_| {
                        CliError::invalid(format!(
                            "--status {s}: use pending, active, revoking, revoked or failed"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            with_login(&g, async |li| {
                let q = ListTokensQuery {
                    status: statuses,
                    description,
                    author_identifier: None,
                    author_identifier_type: None,
                    page_size: Some(100),
                };
                let items: Vec<_> = li
                    .auth
                    .tokens()
                    .list(q)
                    .try_collect()
                    .await
                    .map_err(sdk("listing tokens"))?;
                if json_out {
                    println!("{}", json!({ "tokens": to_json(&items)? }));
                } else {
                    for i in &items {
                        println!(
                            "{}  {}  {}",
                            i.reference_number,
                            to_json(&i.status)?.as_str().unwrap_or(""),
                            i.description
                        );
                    }
                }
                Ok(())
            })
            .await
        }
        TokenCommand::Status { reference } => {
            let r = parse_ref(&reference)?;
            with_login(&g, async |li| {
                let s = li
                    .auth
                    .tokens()
                    .status(&r)
                    .await
                    .map_err(sdk("checking the token status"))?;
                if json_out {
                    println!("{}", to_json(&s)?);
                } else {
                    println!(
                        "{}  {}  {}",
                        s.reference_number,
                        to_json(&s.status)?.as_str().unwrap_or(""),
                        s.description
                    );
                }
                Ok(())
            })
            .await
        }
        TokenCommand::Revoke { reference } => {
            let r = parse_ref(&reference)?;
            with_login(&g, async |li| {
                li.auth
                    .tokens()
                    .revoke(&r)
                    .await
                    .map_err(sdk("revoking the token"))?;
                if json_out {
                    println!(
                        "{}",
                        json!({"referenceNumber": r.to_string(), "revoked": true})
                    );
                } else {
                    println!("token {r} revoked");
                }
                Ok(())
            })
            .await
        }
    }
}
