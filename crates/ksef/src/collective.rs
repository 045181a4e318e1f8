//! Collective identifiers (`client.collective_identifiers()`, KSeF API 2.7.0): one number
//! `NIP-IZRRRRMM-FFFFFFFFFFFF-FF` for up to 500 invoices of one seller, e.g. to pay them with
//! a single transfer. Create one, list the context's identifiers, the invoices of one, and the
//! identifiers an invoice belongs to (all lists are auto-paging streams).

use std::fmt;
use std::str::FromStr;

use futures_util::Stream;
use ksef_model::api;
use ksef_model::ids::{KsefNumber, Nip, crc8};
use ksef_model::operations::{
    CollectiveIdentifierInvoicesQuery, CollectiveIdentifiersByKsefNumberQuery,
    QueryCollectiveIdentifiersQuery,
};

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result};
use crate::paging::continuation_pages;

/// Invoices per collective identifier (KSeF's limit).
pub const MAX_COLLECTIVE_INVOICES: usize = 500;
/// Page size the streams ask for (KSeF's maximum).
const PAGE: u32 = 200;

/// A collective identifier `NIP-IZRRRRMM-FFFFFFFFFFFF-FF`: the seller's NIP, `IZ`, year and
/// month of creation, 12 uppercase hex digits and a CRC-8 (polynomial 0x07, init 0) of the
/// first 32 characters, checked on parsing.
///
/// ```
/// use ksef::collective::CollectiveIdentifier;
/// let id: CollectiveIdentifier = "1111111111-IZ202607-65ED02180000-E7".parse()?;
/// assert_eq!(id.seller_nip().as_str(), "1111111111");
/// assert_eq!((id.year(), id.month()), (2026, 7));
/// assert!("1111111111-IZ202607-65ED02180000-E8".parse::<CollectiveIdentifier>().is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CollectiveIdentifier {
    text: String,
    seller: Nip,
}

impl CollectiveIdentifier {
    /// The identifier as text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The seller's NIP (its first ten digits).
    pub fn seller_nip(&self) -> Nip {
        self.seller.clone()
    }

    /// The year of creation.
    pub fn year(&self) -> u16 {
        self.text[13..17].parse().unwrap_or(0)
    }

    /// The month of creation (1–12).
    pub fn month(&self) -> u8 {
        self.text[17..19].parse().unwrap_or(0)
    }

    /// The CRC-8 check digits (two uppercase hex digits).
    pub fn checksum(&self) -> &str {
        &self.text[33..]
    }
}

impl FromStr for CollectiveIdentifier {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::InvalidInput(format!(
                "'{s}' is not a collective identifier (NIP-IZRRRRMM-FFFFFFFFFFFF-FF): {why}"
            ))
        };
        let b = s.as_bytes();
        if b.len() != 35 {
            return Err(bad(&format!("it has {} characters, not 35", b.len())));
        }
        let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
        let hex = |r: std::ops::Range<usize>| {
            b[r].iter()
                .all(|c| c.is_ascii_digit() || (b'A'..=b'F').contains(c))
        };
        let seller = match Nip::parse_lenient(s.get(..10).unwrap_or("")) {
            Ok(n) if digits(0..10) => n,
            _ => return Err(bad("it does not start with a 10-digit NIP")),
        };
        if b[10..13] != *b"-IZ" || !digits(13..19) || b[19] != b'-' || b[32] != b'-' {
            return Err(bad(
                "expected NIP-IZ, six digits of year and month, then '-'",
            ));
        }
        let month: u8 = s[17..19].parse().unwrap_or(0);
        if !(1..=12).contains(&month) {
            return Err(bad("the month must be 01-12"));
        }
        if !hex(20..32) || !hex(33..35) {
            return Err(bad(
                "the technical part and checksum are uppercase hex digits",
            ));
        }
        let want = format!("{:02X}", crc8(&b[..32]));
        if want.as_bytes() != &b[33..] {
            return Err(bad(&format!("wrong CRC-8 checksum (expected {want})")));
        }
        Ok(CollectiveIdentifier {
            text: s.to_owned(),
            seller,
        })
    }
}

impl fmt::Display for CollectiveIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl AsRef<str> for CollectiveIdentifier {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

/// Collective identifiers of the authenticated context. Obtained from
/// [`AuthenticatedClient::collective_identifiers`].
#[derive(Debug, Clone, Copy)]
pub struct CollectiveIdentifiers<'a> {
    auth: &'a AuthenticatedClient,
}

impl AuthenticatedClient {
    /// Collective identifiers: create, query, the invoices of one, those of an invoice.
    pub fn collective_identifiers(&self) -> CollectiveIdentifiers<'_> {
        CollectiveIdentifiers { auth: self }
    }
}

impl CollectiveIdentifiers<'_> {
    /// Creates a collective identifier for `invoices` (`POST /collective-identifiers` → 201).
    /// Checked before any network call: 1 to 500 invoices, no KSeF number twice. KSeF requires
    /// one seller for all (21405), invoices the context can see (71001), and at most 132
    /// identifiers per invoice in a context (71002).
    pub async fn create(
        &self,
        invoices: &[api::CollectiveIdentifierInvoice],
    ) -> Result<CollectiveIdentifier> {
        if invoices.is_empty() || invoices.len() > MAX_COLLECTIVE_INVOICES {
            return Err(Error::InvalidInput(format!(
                "a collective identifier takes 1 to {MAX_COLLECTIVE_INVOICES} invoices, not {}",
                invoices.len()
            )));
        }
        for (i, inv) in invoices.iter().enumerate() {
            if invoices[..i]
                .iter()
                .any(|o| o.ksef_number == inv.ksef_number)
            {
                return Err(Error::InvalidInput(format!(
                    "invoice {} is listed twice",
                    inv.ksef_number
                )));
            }
        }
        let body = api::GenerateCollectiveIdentifierRequest {
            invoices: invoices.to_vec(),
        };
        let t = self.auth.client().transport();
        let body = &body;
        let r = self
            .auth
            .call(|token| async move { t.create_collective_identifier(&token, body).await })
            .await?
            .into_value();
        r.collective_identifier_number.parse()
    }

    /// The identifiers matching `filter`, newest first, page after page
    /// (`POST /collective-identifiers/query`): those created in the context and, for a NIP
    /// context, those for invoices it sold. The date window may span at most 100 days.
    pub fn query(
        &self,
        filter: api::CollectiveIdentifiersQueryRequest,
    ) -> impl Stream<Item = Result<api::CollectiveIdentifiersQueryResponseItem>> + Send + '_ {
        let q = QueryCollectiveIdentifiersQuery {
            page_size: Some(PAGE),
        };
        let auth = self.auth;
        continuation_pages(move |continuation| {
            let (q, filter) = (q.clone(), filter.clone());
            async move {
                let t = auth.client().transport();
                let (q, filter) = (&q, &filter);
                let page = auth
                    .call(|token| {
                        let c = continuation.clone();
                        async move {
                            t.query_collective_identifiers(&token, q, c.as_deref(), filter)
                                .await
                        }
                    })
                    .await?
                    .into_value();
                Ok((page.collective_identifiers, page.continuation_token))
            }
        })
    }

    /// The invoices of `id`, by KSeF number descending
    /// (`GET /collective-identifiers/{id}/invoices`). Payment amount and currency are shown
    /// only to the creating context and the invoice's parties; others see `details_hidden`.
    pub fn invoices<'s>(
        &'s self,
        id: &'s CollectiveIdentifier,
    ) -> impl Stream<Item = Result<api::CollectiveIdentifierInvoicesQueryResponseItem>> + Send + 's
    {
        let q = CollectiveIdentifierInvoicesQuery {
            page_size: Some(PAGE),
        };
        let auth = self.auth;
        continuation_pages(move |continuation| {
            let q = q.clone();
            async move {
                let t = auth.client().transport();
                let q = &q;
                let page = auth
                    .call(|token| {
                        let c = continuation.clone();
                        async move {
                            t.collective_identifier_invoices(&token, id.as_str(), q, c.as_deref())
                                .await
                        }
                    })
                    .await?
                    .into_value();
                Ok((page.invoices, page.continuation_token))
            }
        })
    }

    /// The identifiers `ksef_number` belongs to, newest first
    /// (`GET /collective-identifiers/ksef/{ksefNumber}`).
    pub fn by_ksef_number<'s>(
        &'s self,
        ksef_number: &'s KsefNumber,
    ) -> impl Stream<Item = Result<api::CollectiveIdentifiersByKsefNumberQueryResponseItem>> + Send + 's
    {
        let q = CollectiveIdentifiersByKsefNumberQuery {
            page_size: Some(PAGE),
        };
        let auth = self.auth;
        continuation_pages(move |continuation| {
            let q = q.clone();
            async move {
                let t = auth.client().transport();
                let q = &q;
                let page = auth
                    .call(|token| {
                        let c = continuation.clone();
                        async move {
                            t.collective_identifiers_by_ksef_number(
                                &token,
                                ksef_number,
                                q,
                                c.as_deref(),
                            )
                            .await
                        }
                    })
                    .await?
                    .into_value();
                Ok((page.collective_identifiers, page.continuation_token))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects() {
        let id: CollectiveIdentifier = "1111111111-IZ202607-65ED02180000-E7".parse().unwrap();
        assert_eq!(id.checksum(), "E7");
        assert_eq!(id.to_string(), "1111111111-IZ202607-65ED02180000-E7");
        for bad in [
            "",
            "1111111111-IZ202607-65ED02180000-E8",
            "1111111111-IZ202607-65ed02180000-E7",
            "1111111111-XY202607-65ED02180000-E7",
            "1111111111-IZ202613-65ED02180000-E7",
            "1111111111-IZ202607-65ED02180000-E7x",
            "ąąąąą-IZ202607-65ED02180000-E7",
        ] {
            let e = bad.parse::<CollectiveIdentifier>().unwrap_err();
            assert!(matches!(e, Error::InvalidInput(_)), "{bad}: {e}");
        }
    }
}
