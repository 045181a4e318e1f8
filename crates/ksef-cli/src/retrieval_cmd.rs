//! `ksef download` and `ksef query`: invoices from KSeF by KSeF number, and metadata queries with
//! the filters as flags.
//!
//! Both run on the SDK's `auth.invoices()`: downloads checked against KSeF's hash, and the
//! metadata stream (`--all`) that moves past KSeF's 10 000-row truncation.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use futures_util::TryStreamExt;
use ksef::invoices::QueryOptions;
use ksef::model::KsefNumber;
use ksef::model::api::{InvoiceQueryFilters, SortOrder};
use ksef::model::operations::QueryInvoiceMetadataQuery;
use serde_json::{Value, json};

use crate::Global;
use crate::error::{CliError, sdk};
use crate::send_cmd::{with_login, write_file};

/// `ksef download N…`.
#[derive(Args, Debug)]
pub struct DownloadArgs {
    /// KSeF numbers of the invoices.
    #[arg(required = true)]
    pub ksef_numbers: Vec<String>,
    /// Directory for `<ksefNumber>.xml` files (default: stdout for one invoice, the current
    /// directory for several).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

/// Whose invoices a query looks at.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Subject {
    /// Invoices the context issued (Subject1).
    Seller,
    /// Invoices the context received (Subject2).
    Buyer,
    /// Invoices naming the context as a third party (Subject3).
    ThirdParty,
    /// Invoices where the context is the authorised subject (SubjectAuthorized).
    Authorized,
}

/// Which date the range applies to.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum DateType {
    /// The issue date (P_1).
    Issue,
    /// When KSeF accepted the invoice.
    Invoicing,
    /// When it was stored permanently (use this for incremental sync).
    Storage,
}

/// Sort order.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Order {
    /// Oldest first.
    Asc,
    /// Newest first.
    Desc,
}

/// Invoicing mode filter.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mode {
    /// Sent online.
    Online,
    /// Issued offline.
    Offline,
}

/// The filters of `ksef query` and `ksef export`.
#[derive(Args, Debug)]
pub struct FilterArgs {
    /// Whose invoices.
    #[arg(long, value_enum, default_value_t = Subject::Buyer)]
    pub subject: Subject,
    /// Which date --from/--to apply to.
    #[arg(long, value_enum, default_value_t = DateType::Storage)]
    pub date_type: DateType,
    /// Start of the range: YYYY-MM-DD (Warsaw time) or an RFC 3339 date-time (default: 30 days
    /// ago). KSeF allows at most 3 months.
    #[arg(long)]
    pub from: Option<String>,
    /// End of the range (default: now).
    #[arg(long)]
    pub to: Option<String>,
    /// Exact KSeF number.
    #[arg(long)]
    pub ksef_number: Option<String>,
    /// Exact invoice number (P_2).
    #[arg(long)]
    pub invoice_number: Option<String>,
    /// Seller NIP.
    #[arg(long)]
    pub seller_nip: Option<String>,
    /// Buyer NIP.
    #[arg(long)]
    pub buyer_nip: Option<String>,
    /// Smallest gross amount.
    #[arg(long)]
    pub min_gross: Option<f64>,
    /// Largest gross amount.
    #[arg(long)]
    pub max_gross: Option<f64>,
    /// Currency code (repeatable), e.g. PLN.
    #[arg(long = "currency")]
    pub currencies: Vec<String>,
    /// Online or offline invoices only.
    #[arg(long, value_enum)]
    pub mode: Option<Mode>,
    /// Only invoices with (true) or without (false) attachments.
    #[arg(long)]
    pub has_attachment: Option<bool>,
}

/// `ksef query`: invoice metadata with filters.
#[derive(Args, Debug)]
pub struct QueryArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    /// Sort order of the date.
    #[arg(long, value_enum, default_value_t = Order::Asc)]
    pub order: Order,
    /// Rows per page (10–250).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(10..=250))]
    pub page_size: u32,
    /// Follow every page (otherwise: the first page only).
    #[arg(long)]
    pub all: bool,
}

/// `ksef download`.
pub async fn download(args: DownloadArgs, g: Global) -> Result<(), CliError> {
    let numbers = args
        .ksef_numbers
        .iter()
        .map(|n| {
            n.parse::<KsefNumber>()
                .map_err(|e| CliError::invalid(format!("{n}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let to_stdout = numbers.len() == 1 && args.out.is_none() && !g.json;
    let dir = args.out.clone().unwrap_or_else(|| PathBuf::from("."));
    if !to_stdout {
        std::fs::create_dir_all(&dir).map_err(|e| CliError::io("create the directory", &dir, e))?;
    }
    let json = g.json;
    with_login(&g, async |li| {
        let invoices = li.auth.invoices();
        let mut written = Vec::new();
        for n in &numbers {
            // The SDK checks the hash and waits while KSeF answers "not downloadable yet".
            let doc = invoices
                .download(n)
                .await
                .map_err(|e| CliError::sdk(&format!("downloading {n}"), e))?;
            if to_stdout {
                use std::io::Write as _;
                std::io::stdout()
                    .write_all(&doc.xml)
                    .map_err(|e| CliError::failed(format!("cannot write to stdout: {e}")))?;
                return Ok(());
            }
            let path = dir.join(format!("{n}.xml"));
            write_file(&path, &doc.xml)?;
            written.push(path);
        }
        if json {
            let files: Vec<_> = written.iter().map(|p| p.display().to_string()).collect();
            println!("{}", json!({ "files": files }));
        } else {
            for p in written {
                println!("{}", p.display());
            }
        }
        Ok(())
    })
    .await
}

/// A date-time for the filters: RFC 3339 as given, or a date as Warsaw midnight (offset-less
/// values are Warsaw time in KSeF).
pub(crate) fn date_time(flag: &str, s: &str) -> Result<String, CliError> {
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    if time::OffsetDateTime::parse(s, rfc3339).is_ok() {
        return Ok(s.to_owned());
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, format)
        .map(|d| format!("{d}T00:00:00"))
        .map_err(|_| {
            CliError::invalid(format!(
                "{flag} {s:?}: want YYYY-MM-DD or an RFC 3339 date-time"
            ))
        })
}

pub(crate) fn filters(a: &FilterArgs) -> Result<InvoiceQueryFilters, CliError> {
    let from = match &a.from {
        Some(f) => date_time("--from", f)?,
        None => {
            let d = time::OffsetDateTime::now_utc().date() - time::Duration::days(30);
            format!("{d}T00:00:00")
        }
    };
    let mut range = json!({
        "dateType": match a.date_type {
            DateType::Issue => "Issue",
            DateType::Invoicing => "Invoicing",
            DateType::Storage => "PermanentStorage",
        },
        "from": from,
    });
    if let Some(to) = &a.to {
        range["to"] = Value::String(date_time("--to", to)?);
    }
    let mut f = json!({
        "subjectType": match a.subject {
            Subject::Seller => "Subject1",
            Subject::Buyer => "Subject2",
            Subject::ThirdParty => "Subject3",
            Subject::Authorized => "SubjectAuthorized",
        },
        "dateRange": range,
    });
    if let Some(k) = &a.ksef_number {
        k.parse::<KsefNumber>()
            .map_err(|e| CliError::invalid(format!("--ksef-number: {e}")))?;
        f["ksefNumber"] = json!(k);
    }
    if let Some(n) = &a.invoice_number {
        f["invoiceNumber"] = json!(n);
    }
    if let Some(n) = &a.seller_nip {
        f["sellerNip"] = json!(crate::profile::parse_nip("--seller-nip", n)?.as_str());
    }
    if let Some(n) = &a.buyer_nip {
        let nip = crate::profile::parse_nip("--buyer-nip", n)?;
        f["buyerIdentifier"] = json!({"type": "Nip", "value": nip.as_str()});
    }
    if a.min_gross.is_some() || a.max_gross.is_some() {
        let mut amount = json!({"type": "Brutto"});
        if let Some(v) = a.min_gross {
            amount["from"] = json!(v);
        }
        if let Some(v) = a.max_gross {
            amount["to"] = json!(v);
        }
        f["amount"] = amount;
    }
    if !a.currencies.is_empty() {
        let codes: Vec<String> = a.currencies.iter().map(|c| c.to_uppercase()).collect();
        f["currencyCodes"] = json!(codes);
    }
    if let Some(m) = a.mode {
        f["invoicingMode"] = json!(match m {
            Mode::Online => "Online",
            Mode::Offline => "Offline",
        });
    }
    if let Some(h) = a.has_attachment {
        f["hasAttachment"] = json!(h);
    }
    serde_json::from_value(f).map_err(|e| CliError::invalid(format!("query filters: {e}")))
}

/// `ksef query`.
pub async fn query(args: QueryArgs, g: Global) -> Result<(), CliError> {
    let filters = filters(&args.filter)?;
    let json_out = g.json;
    with_login(&g, async |li| {
        let invoices = li.auth.invoices();
        let sort_order = match args.order {
            Order::Asc => SortOrder::Asc,
            Order::Desc => SortOrder::Desc,
        };
        let (rows, has_more, truncated, hwm): (Vec<Value>, bool, bool, Option<Value>) = if args.all
        {
            // KSeF's HWM as of the start (the stream yields rows only): one small page first.
            let first = QueryInvoiceMetadataQuery {
                page_offset: Some(0),
                page_size: Some(10),
                sort_order: Some(sort_order.clone()),
            };
            let hwm = invoices
                .query_page(&filters, &first)
                .await
                .map_err(sdk("querying invoice metadata"))?
                .permanent_storage_hwm_date
                .map(|d| Value::String(d.to_string()));
            // The SDK's stream pages on, moves the window past a truncation at 10 000 rows
            // and returns each invoice once.
            let all: Vec<_> = invoices
                .query_with(
                    filters.clone(),
                    QueryOptions {
                        page_size: args.page_size,
                        sort_order,
                    },
                )
                .try_collect()
                .await
                .map_err(sdk("querying invoice metadata"))?;
            let rows = all
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| CliError::failed(format!("cannot read the rows: {e}")))?;
            (rows, false, false, hwm)
        } else {
            let q = QueryInvoiceMetadataQuery {
                page_offset: Some(0),
                page_size: Some(args.page_size),
                sort_order: Some(sort_order),
            };
            let page = invoices
                .query_page(&filters, &q)
                .await
                .map_err(sdk("querying invoice metadata"))?;
            let page = serde_json::to_value(&page)
                .map_err(|e| CliError::failed(format!("cannot read the page: {e}")))?;
            (
                page["invoices"].as_array().cloned().unwrap_or_default(),
                page["hasMore"].as_bool().unwrap_or(false),
                page["isTruncated"].as_bool().unwrap_or(false),
                page.get("permanentStorageHwmDate").cloned(),
            )
        };
        if json_out {
            let mut out = json!({
                "invoices": rows,
                "hasMore": has_more,
                "isTruncated": truncated,
            });
            if let Some(h) = hwm {
                out["permanentStorageHwmDate"] = h;
            }
            println!("{out}");
        } else {
            for r in &rows {
                let s = |v: &Value| {
                    v.as_str()
                        .map(str::to_owned)
                        .unwrap_or_else(|| v.to_string())
                };
                println!(
                    "{}  {}  {}  seller {}  buyer {}  gross {} {}",
                    s(&r["ksefNumber"]),
                    s(&r["issueDate"]),
                    s(&r["invoiceNumber"]),
                    s(&r["seller"]["nip"]),
                    s(&r["buyer"]["identifier"]["value"]),
                    s(&r["grossAmount"]),
                    s(&r["currency"]),
                );
            }
            eprintln!(
                "{} invoice(s){}",
                rows.len(),
                if has_more { "; more pages: --all" } else { "" }
            );
        }
        Ok(())
    })
    .await
}
