//! `ksef collective create|list|invoices|of-invoice|validate`: collective identifiers
//! ("identyfikatory zbiorcze", KSeF API 2.7.0) — one number `NIP-IZRRRRMM-FFFFFFFFFFFF-FF` for up
//! to 500 invoices of one seller, e.g. to pay them with one transfer. Through the SDK's
//! `collective_identifiers()` handler.

use clap::Subcommand;
use futures_util::TryStreamExt as _;
use ksef::collective::{CollectiveIdentifier, MAX_COLLECTIVE_INVOICES};
use ksef::model::KsefNumber;
use ksef::model::api::{
    CollectiveIdentifierInvoice, CollectiveIdentifierInvoicePayment,
    CollectiveIdentifiersQueryRequest, CurrencyCode,
};
use ksef::model::datetime::DateTime;
use serde_json::json;

use crate::Global;
use crate::error::{CliError, sdk};
use crate::send_cmd::with_login;

/// `ksef collective …`.
#[derive(Subcommand, Debug)]
pub enum CollectiveCommand {
    /// Create a collective identifier for invoices of one seller (1 to 500).
    Create {
        /// The invoices: KSEF_NUMBER, or KSEF_NUMBER=AMOUNT[:CURRENCY] to state the amount to pay
        /// (currency PLN unless given).
        #[arg(required = true, value_name = "INVOICE")]
        invoices: Vec<String>,
        /// A description stored with each invoice of the identifier (at most 512 characters).
        #[arg(long)]
        description: Option<String>,
    },
    /// List the collective identifiers of the context (created in it or, for a NIP context,
    /// for invoices it sold), newest first.
    List {
        /// Created on or after (YYYY-MM-DD or RFC 3339; default 30 days ago). KSeF allows a
        /// window of at most 100 days.
        #[arg(long)]
        from: Option<String>,
        /// Created before (YYYY-MM-DD or RFC 3339; default now).
        #[arg(long)]
        to: Option<String>,
        /// Only this identifier.
        #[arg(long)]
        id: Option<String>,
        /// Only those created in the logged-in context.
        #[arg(long)]
        created_here: bool,
        /// Only those with at least this many invoices.
        #[arg(long)]
        min_invoices: Option<u32>,
        /// Only those with at most this many invoices.
        #[arg(long)]
        max_invoices: Option<u32>,
    },
    /// The invoices of a collective identifier.
    Invoices {
        /// The collective identifier.
        id: String,
    },
    /// The collective identifiers an invoice belongs to.
    OfInvoice {
        /// The invoice's KSeF number.
        ksef_number: String,
    },
    /// Check a collective identifier's format and CRC-8 checksum (offline).
    Validate {
        /// The collective identifier (35 characters).
        id: String,
    },
}

fn parse_id(s: &str) -> Result<CollectiveIdentifier, CliError> {
    s.parse::<CollectiveIdentifier>()
        .map_err(|e| CliError::invalid(e.to_string()))
}

fn parse_ksef_number(s: &str) -> Result<KsefNumber, CliError> {
    s.parse::<KsefNumber>()
        .map_err(|e| CliError::invalid(format!("{s:?}: {e}")))
}

/// `KSEF_NUMBER[=AMOUNT[:CURRENCY]]`.
fn parse_invoice(
    s: &str,
    description: Option<&str>,
) -> Result<CollectiveIdentifierInvoice, CliError> {
    let (number, payment) = match s.split_once('=') {
        None => (s, None),
        Some((number, pay)) => {
            let (amount, currency) = pay.split_once(':').unwrap_or((pay, "PLN"));
            let bad = |why: &str| {
                CliError::invalid(format!(
                    "{s:?}: {why} (want KSEF_NUMBER=AMOUNT or KSEF_NUMBER=AMOUNT:CURRENCY, e.g. =1230.50:PLN)"
                ))
            };
            let amount: f64 = amount
                .parse()
                .ok()
                .filter(|a: &f64| a.is_finite() && *a >= 0.0)
                .ok_or_else(|| bad("the amount is not a non-negative number"))?;
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad("the currency is not a 3-letter ISO code"));
            }
            let currency: CurrencyCode = serde_json::from_value(json!(currency))
                .map_err(|e| bad(&format!("the currency: {e}")))?;
            (
                number,
                Some(CollectiveIdentifierInvoicePayment { amount, currency }),
            )
        }
    };
    Ok(CollectiveIdentifierInvoice {
        description: description.map(str::to_owned),
        ksef_number: parse_ksef_number(number)?,
        payment,
    })
}

fn date_time(flag: &str, s: &str) -> Result<DateTime, CliError> {
    let text = crate::retrieval_cmd::date_time(flag, s)?;
    DateTime::parse(&text).map_err(|e| CliError::invalid(format!("{flag} {s:?}: {e}")))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<serde_json::Value, CliError> {
    serde_json::to_value(v).map_err(|e| CliError::failed(format!("cannot write JSON: {e}")))
}

/// `ksef collective validate`: offline, no runtime.
pub fn validate(id: &str, json_out: bool) -> Result<(), CliError> {
    match id.parse::<CollectiveIdentifier>() {
        Ok(c) => {
            if json_out {
                println!(
                    "{}",
                    json!({
                        "collectiveIdentifier": c.as_str(),
                        "valid": true,
                        "sellerNip": c.seller_nip().as_str(),
                        "year": c.year(),
                        "month": c.month(),
                    })
                );
            } else {
                println!(
                    "{c}: valid collective identifier (seller NIP {}, {}-{:02})",
                    c.seller_nip(),
                    c.year(),
                    c.month()
                );
            }
            Ok(())
        }
        Err(e) => {
            if json_out {
                println!(
                    "{}",
                    json!({"collectiveIdentifier": id, "valid": false, "error": e.to_string()})
                );
            }
            Err(CliError::invalid(e.to_string()))
        }
    }
}

/// Runs the online `ksef collective …` commands.
pub async fn run(command: CollectiveCommand, g: Global) -> Result<(), CliError> {
    let json_out = g.json;
    match command {
        CollectiveCommand::Validate { id } => validate(&id, json_out),
        CollectiveCommand::Create {
            invoices,
            description,
        } => {
            if let Some(d) = &description
                && d.chars().count() > 512
            {
                return Err(CliError::invalid(
                    "--description has more than 512 characters",
                ));
            }
            if invoices.len() > MAX_COLLECTIVE_INVOICES {
                return Err(CliError::invalid(format!(
                    "a collective identifier takes at most {MAX_COLLECTIVE_INVOICES} invoices, not {}",
                    invoices.len()
                )));
            }
            let invoices = invoices
                .iter()
                .map(|s| parse_invoice(s, description.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            with_login(&g, async |li| {
                let id = li
                    .auth
                    .collective_identifiers()
                    .create(&invoices)
                    .await
                    .map_err(sdk("creating the collective identifier"))?;
                if json_out {
                    println!(
                        "{}",
                        json!({
                            "collectiveIdentifier": id.as_str(),
                            "invoices": invoices.iter().map(|i| i.ksef_number.to_string()).collect::<Vec<_>>(),
                        })
                    );
                } else {
                    println!("{id}");
                }
                Ok(())
            })
            .await
        }
        CollectiveCommand::List {
            from,
            to,
            id,
            created_here,
            min_invoices,
            max_invoices,
        } => {
            let from = match &from {
                Some(f) => date_time("--from", f)?,
                None => DateTime::new(time::OffsetDateTime::now_utc() - time::Duration::days(30)),
            };
            let to = match &to {
                Some(t) => date_time("--to", t)?,
                None => DateTime::now_utc(),
            };
            let id = id.as_deref().map(parse_id).transpose()?;
            let to_i32 = |flag: &str, v: Option<u32>| {
                v.map(|n| {
                    i32::try_from(n).map_err(|_| CliError::invalid(format!("{flag} is too large")))
                })
                .transpose()
            };
            let filter = CollectiveIdentifiersQueryRequest {
                collective_identifier_number: id.map(|i| i.to_string()),
                created_in_current_context: created_here.then_some(true),
                date_created_from: from,
                date_created_to: to,
                invoice_count_from: to_i32("--min-invoices", min_invoices)?,
                invoice_count_to: to_i32("--max-invoices", max_invoices)?,
            };
            with_login(&g, async |li| {
                let items: Vec<_> = li
                    .auth
                    .collective_identifiers()
                    .query(filter.clone())
                    .try_collect()
                    .await
                    .map_err(sdk("listing collective identifiers"))?;
                if json_out {
                    println!("{}", json!({ "collectiveIdentifiers": to_json(&items)? }));
                } else {
                    for i in &items {
                        println!(
                            "{}  {} invoice(s)  created {}{}",
                            i.collective_identifier_number,
                            i.invoice_count,
                            i.date_created,
                            if i.created_in_current_context {
                                " (here)"
                            } else {
                                ""
                            }
                        );
                    }
                    if items.is_empty() {
                        eprintln!("no collective identifiers created from {from} to {to}");
                    }
                }
                Ok(())
            })
            .await
        }
        CollectiveCommand::Invoices { id } => {
            let id = parse_id(&id)?;
            with_login(&g, async |li| {
                let handler = li.auth.collective_identifiers();
                let items: Vec<_> = handler
                    .invoices(&id)
                    .try_collect()
                    .await
                    .map_err(sdk("listing the invoices of the collective identifier"))?;
                if json_out {
                    println!(
                        "{}",
                        json!({"collectiveIdentifier": id.as_str(), "invoices": to_json(&items)?})
                    );
                } else {
                    for i in &items {
                        let pay = match (&i.payment, i.details_hidden) {
                            (_, true) => "  (details hidden)".to_owned(),
                            (Some(p), false) => format!("  {:.2} {}", p.amount, p.currency),
                            (None, false) => String::new(),
                        };
                        let desc = i
                            .description
                            .as_deref()
                            .map(|d| format!("  {d}"))
                            .unwrap_or_default();
                        println!("{}{pay}{desc}", i.ksef_number);
                    }
                }
                Ok(())
            })
            .await
        }
        CollectiveCommand::OfInvoice { ksef_number } => {
            let k = parse_ksef_number(&ksef_number)?;
            with_login(&g, async |li| {
                let handler = li.auth.collective_identifiers();
                let items: Vec<_> = handler
                    .by_ksef_number(&k)
                    .try_collect()
                    .await
                    .map_err(sdk("listing the collective identifiers of the invoice"))?;
                if json_out {
                    println!(
                        "{}",
                        json!({"ksefNumber": k.as_str(), "collectiveIdentifiers": to_json(&items)?})
                    );
                } else {
                    for i in &items {
                        println!(
                            "{}  created {}{}",
                            i.collective_identifier_number,
                            i.date_created,
                            if i.created_in_current_context {
                                " (here)"
                            } else {
                                ""
                            }
                        );
                    }
                }
                Ok(())
            })
            .await
        }
    }
}
