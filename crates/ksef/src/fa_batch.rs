//! Typed FA(3) invoices in the batch path: archive names made from the invoice number (`P_2`)
//! and the way back from KSeF's per-invoice results to it.
//!
//! (The online path needs no helper: [`OnlineSession::send_fa`](crate::OnlineSession::send_fa)
//! keeps `P_2` on its result.)

use std::collections::HashMap;

use ksef_fa::Faktura;

use crate::batch::BatchInvoice;
use crate::batch_session::{BatchInvoiceResult, BatchOutcome};

/// KSeF's `invoiceFileName` holds at most 128 characters.
const MAX_FILE_NAME: usize = 128;
/// Room left for a `~NNNNNN` suffix that makes a repeated name unique.
const SUFFIX_ROOM: usize = 8;

/// The archive file name for an invoice number: ASCII letters, digits, `-`, `_` and `.` are
/// kept, anything else (the `/` of `FV/1/2026`, spaces, letters with diacritics) becomes `_`,
/// and `.xml` is appended; at most 128 characters.
///
/// ```
/// assert_eq!(ksef::fa_file_name("FV/1/2026"), "FV_1_2026.xml");
/// ```
pub fn fa_file_name(invoice_number: &str) -> String {
    let mut stem = stem(invoice_number);
    stem.truncate(MAX_FILE_NAME - ".xml".len());
    stem + ".xml"
}

fn stem(invoice_number: &str) -> String {
    let mut s: String = invoice_number
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() {
        s.push_str("invoice");
    }
    s
}

/// One typed invoice as a batch entry named by [`fa_file_name`] (the XML is written now).
/// Several invoices with the same number would share a name: collect them in a [`FaBatch`].
impl From<&Faktura> for BatchInvoice {
    fn from(invoice: &Faktura) -> Self {
        BatchInvoice::bytes(
            fa_file_name(invoice.fa.p_2.as_str()),
            invoice.to_xml().into_bytes(),
        )
    }
}

/// Typed invoices for one batch, remembering which archive name holds which invoice number
/// (`P_2`), so KSeF's per-invoice results ([`BatchOutcome`]) can be read by invoice number.
///
/// ```
/// use ksef::batch::{BatchBuilder, BatchInvoice};
/// use ksef::crypto::encryption::SessionKey;
/// use ksef::fa::builder::{Address, Buyer, InvoiceBuilder, Line, Seller, VatRate};
/// use ksef::fa::Decimal;
/// use ksef::FaBatch;
///
/// let invoice = |number: &str| {
///     InvoiceBuilder::vat(number, time::macros::date!(2026 - 02 - 01))
///         .seller(Seller::new("5261040828", "Sprzedawca", Address::pl("ul. Prosta 1", "00-001 Warszawa")))
///         .buyer(Buyer::nip("7740001454", "Nabywca"))
///         .line(Line::new("Usługa", Decimal::ONE, Decimal::from(100), VatRate::V23))
///         .build()
/// };
/// let batch = FaBatch::new(&[invoice("FV/1/2026")?, invoice("FV/2/2026")?]);
/// assert_eq!(batch.invoice_number("FV_2_2026.xml"), Some("FV/2/2026"));
/// let package = BatchBuilder::new(SessionKey::generate()?).build(batch.invoices())?;
/// assert_eq!(package.invoices().len(), 2);
/// // after `auth.sessions().send_batch(&package, &key, &options)`:
/// // for (p2, result) in batch.results(&outcome) { … result.outcome … }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct FaBatch {
    invoices: Vec<BatchInvoice>,
    /// `P_2` of each invoice, in input order.
    numbers: Vec<String>,
    /// Archive name → index.
    by_name: HashMap<String, usize>,
}

impl FaBatch {
    /// The invoices, in this order.
    pub fn new<'a>(invoices: impl IntoIterator<Item = &'a Faktura>) -> Self {
        let mut batch = Self::default();
        for invoice in invoices {
            batch.push(invoice);
        }
        batch
    }

    /// Adds an invoice (its XML is written now); returns its archive name: [`fa_file_name`],
    /// with `~2`, `~3`, … before `.xml` when another invoice of the batch has the same number.
    pub fn push(&mut self, invoice: &Faktura) -> &str {
        let number = invoice.fa.p_2.as_str();
        let mut stem = stem(number);
        stem.truncate(MAX_FILE_NAME - ".xml".len() - SUFFIX_ROOM);
        let mut name = format!("{stem}.xml");
        let mut n = 1;
        while self.by_name.contains_key(&name) {
            n += 1;
            name = format!("{stem}~{n}.xml");
        }
        let index = self.invoices.len();
        self.by_name.insert(name.clone(), index);
        self.numbers.push(number.to_owned());
        self.invoices
            .push(BatchInvoice::bytes(name, invoice.to_xml().into_bytes()));
        self.invoices[index].name()
    }

    /// How many invoices.
    pub fn len(&self) -> usize {
        self.invoices.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.invoices.is_empty()
    }

    /// The batch entries, for [`BatchBuilder::build`](crate::batch::BatchBuilder::build)
    /// (copies: the batch keeps its own to map results back).
    pub fn invoices(&self) -> impl Iterator<Item = BatchInvoice> + '_ {
        self.invoices.iter().cloned()
    }

    /// The invoice number (`P_2`) of the invoice packed under `file_name` (KSeF's
    /// `invoiceFileName`, [`BatchInvoiceResult::name`]).
    pub fn invoice_number(&self, file_name: &str) -> Option<&str> {
        self.by_name
            .get(file_name)
            .map(|&i| self.numbers[i].as_str())
    }

    /// Each result of a batch sent from these invoices with its invoice number (`P_2`), in
    /// the outcome's order; results under names this batch did not pack are left out.
    pub fn results<'a>(
        &'a self,
        outcome: &'a BatchOutcome,
    ) -> impl Iterator<Item = (&'a str, &'a BatchInvoiceResult)> + 'a {
        outcome
            .invoices
            .iter()
            .filter_map(|r| Some((self.invoice_number(&r.name)?, r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invoice(number: &str) -> Faktura {
        let xml = include_str!("../../ksef-fa/tests/data/minimal.xml")
            .replace("<P_2>FV/1/2026</P_2>", &format!("<P_2>{number}</P_2>"));
        Faktura::from_xml(&xml).expect("test invoice parses")
    }

    #[test]
    fn file_names_from_invoice_numbers() {
        assert_eq!(fa_file_name("FV/1/2026"), "FV_1_2026.xml");
        assert_eq!(fa_file_name("Fa 1ą.x-y_z"), "Fa_1_.x-y_z.xml");
        assert_eq!(fa_file_name(""), "invoice.xml");
        assert_eq!(fa_file_name(&"x".repeat(256)).len(), MAX_FILE_NAME);
        let b = BatchInvoice::from(&invoice("A/1"));
        assert_eq!(b.name(), "A_1.xml");
    }

    #[test]
    fn repeated_numbers_get_unique_names_and_map_back() {
        let long = "L".repeat(256);
        let invoices = [
            invoice("FV/1"),
            invoice("FV_1"),
            invoice("FV/1"),
            invoice(&long),
            invoice(&long),
        ];
        let batch = FaBatch::new(&invoices);
        let names: Vec<String> = batch.invoices().map(|i| i.name().to_owned()).collect();
        assert_eq!(names[..3], ["FV_1.xml", "FV_1~2.xml", "FV_1~3.xml"]);
        assert!(names.iter().all(|n| n.len() <= MAX_FILE_NAME));
        assert_ne!(names[3], names[4]);
        assert_eq!(batch.invoice_number("FV_1~2.xml"), Some("FV_1"));
        assert_eq!(batch.invoice_number("FV_1~3.xml"), Some("FV/1"));
        assert_eq!(batch.invoice_number(&names[4]), Some(long.as_str()));
        assert_eq!(batch.invoice_number("other.xml"), None);
        assert_eq!(batch.len(), 5);
    }
}
