//! UPO v4-3 (Urzędowe Poświadczenie Odbioru, the official receipt): a typed parser for invoice and
//! session UPOs and a writer (the simulator's UPO model).
//!
//! Namespace `http://upo.schematy.mf.gov.pl/KSeF/v4-3`, root `Potwierdzenie`
//! (`spec/upo/upo-v4-3.xsd`). The parser checks the root namespace (quick-xml does not) and skips
//! the `ds:Signature` MF adds; verify that signature separately.
//!
//! ```
//! use ksef_model::upo::{Upo, UpoKind};
//! let xml = include_bytes!(concat!(
//!     env!("CARGO_MANIFEST_DIR"),
//!     "/../../spec/upo/examples/upo-faktura-kontekst-id-nip.xml"
//! ));
//! let upo = Upo::parse(xml)?;
//! assert_eq!(upo.kind(), UpoKind::Invoice);
//! assert_eq!(upo.documents[0].ksef_number.as_str(), "5265877635-20250916-0200A0D6723E-C2");
//! assert_eq!(Upo::parse(&upo.to_xml()?)?, upo);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime};

use crate::auth_request::ContextIdentifier;
use crate::form::{FormCode, KNOWN_FORM_CODES};
use crate::ids::{IdError, InternalId, KsefNumber, Nip, ReferenceNumber, Sha256Base64};
use dom::{Element, XMLDSIG_NS};

/// The UPO v4-3 namespace.
pub const UPO_NAMESPACE: &str = "http://upo.schematy.mf.gov.pl/KSeF/v4-3";

/// Most documents one UPO (page) lists.
pub const MAX_DOCUMENTS_PER_UPO: usize = 10_000;

/// The `NazwaPodmiotuPrzyjmujacego` KSeF writes in each environment (custom environments get the
/// TEST name, as the simulator imitates TEST).
///
/// Note: the XSD fixes this element to `"Ministerstwo Finansów"` (the production value), so UPOs
/// from TEST and DEMO, whose names carry an environment suffix, do not validate against
/// `upo-v4-3.xsd`; use the production name when XSD validity matters more than fidelity.
pub fn receiving_entity_name(env: &crate::environment::Environment) -> &'static str {
    use crate::environment::Environment;
    match env {
        Environment::Production => "Ministerstwo Finansów",
        Environment::Demo => "Ministerstwo Finansów - środowisko przedprodukcyjne (TR)",
        _ => "Ministerstwo Finansów - środowisko testowe (TE)",
    }
}

/// Errors parsing or writing a UPO.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UpoError {
    /// The document is not well-formed XML.
    #[error("UPO is not well-formed XML: {0}")]
    Xml(String),
    /// The root element is not `{…/KSeF/v4-3}Potwierdzenie`.
    #[error(
        "expected a UPO v4-3 root element Potwierdzenie in namespace http://upo.schematy.mf.gov.pl/KSeF/v4-3, found {0}"
    )]
    WrongRoot(String),
    /// A required element is missing.
    #[error("UPO element {0} is missing")]
    Missing(String),
    /// An element is present where the schema does not allow it.
    #[error("UPO element {0} is not allowed here")]
    Unexpected(String),
    /// An element's value is invalid.
    #[error("UPO element {element} has invalid value {value:?}: {reason}")]
    InvalidValue {
        /// Element path, e.g. `Dokument[2]/DataWystawieniaFaktury`.
        element: String,
        /// The value found.
        value: String,
        /// What is wrong.
        reason: String,
    },
    /// Writing failed (cannot happen when writing to memory).
    #[error("writing UPO XML failed: {0}")]
    Write(String),
}

/// Whether the UPO confirms one invoice or (a page of) a whole session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UpoKind {
    /// Per-invoice UPO (no `OpisPotwierdzenia`).
    Invoice,
    /// Session UPO page (with `OpisPotwierdzenia`).
    Session,
}

/// How the session was authenticated (`Uwierzytelnienie`, after `IdKontekstu`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpoAuthProof {
    /// `NumerReferencyjnyTokenaKSeF`: a KSeF token was used.
    KsefTokenReference(ReferenceNumber),
    /// `SkrotDokumentuUwierzytelniajacego`: hash of the signed authentication document.
    AuthDocumentHash(Sha256Base64),
}

/// `Uwierzytelnienie`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpoAuthentication {
    /// `IdKontekstu` (`Nip`, `IdWewnetrzny`, `IdZlozonyVatUE` or `IdDostawcyUslugPeppol`).
    pub context: ContextIdentifier,
    /// Token reference or authentication document hash.
    pub proof: UpoAuthProof,
}

/// `OpisPotwierdzenia`: paging of a session UPO.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UpoPage {
    /// `Strona`: this page's number (1-based).
    pub page: u32,
    /// `LiczbaStron`: number of pages.
    pub page_count: u32,
    /// `ZakresDokumentowOd`: ordinal of the first document on this page.
    pub documents_from: u32,
    /// `ZakresDokumentowDo`: ordinal of the last document on this page.
    pub documents_to: u32,
    /// `CalkowitaLiczbaDokumentow`: documents in the whole session.
    pub total_documents: u32,
}

/// `TrybWysylki`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SendingMode {
    /// `Online`.
    Online,
    /// `Offline`.
    Offline,
}

impl SendingMode {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            SendingMode::Online => "Online",
            SendingMode::Offline => "Offline",
        }
    }
}

/// One confirmed invoice (`Dokument`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UpoDocument {
    /// `NipSprzedawcy` (pattern-checked only).
    pub seller_nip: Nip,
    /// `NumerKSeFDokumentu`.
    pub ksef_number: KsefNumber,
    /// `NumerFaktury`: the invoice's own number (`P_2`).
    pub invoice_number: String,
    /// `DataWystawieniaFaktury`: issue date (`P_1`).
    pub issue_date: Date,
    /// `DataPrzeslaniaDokumentu`: when the invoice was received.
    pub sent_at: OffsetDateTime,
    /// `DataNadaniaNumeruKSeF`: when the KSeF number was assigned.
    pub ksef_number_assigned_at: OffsetDateTime,
    /// `SkrotDokumentu`: SHA-256 of the invoice.
    pub invoice_hash: Sha256Base64,
    /// `TrybWysylki`.
    pub sending_mode: SendingMode,
}

/// A parsed UPO v4-3 document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Upo {
    /// `@wersjaSchemy`, if present.
    pub schema_version: Option<String>,
    /// `NazwaPodmiotuPrzyjmujacego` (e.g. "Ministerstwo Finansów - środowisko testowe (TE)").
    pub receiving_entity: String,
    /// `NumerReferencyjnySesji`.
    pub session_reference_number: ReferenceNumber,
    /// `Uwierzytelnienie`.
    pub authentication: UpoAuthentication,
    /// `OpisPotwierdzenia` (session UPOs only).
    pub page: Option<UpoPage>,
    /// `NazwaStrukturyLogicznej`, e.g. `Schemat_FA(3)_v1-0E.xsd`.
    pub logical_structure_name: String,
    /// `KodFormularza`, e.g. `FA (3)`.
    pub form_system_code: String,
    /// The confirmed invoices (1–10 000).
    pub documents: Vec<UpoDocument>,
    /// Whether a `ds:Signature` element was present (it is not verified here).
    pub has_signature: bool,
}

fn invalid(element: impl Into<String>, value: &str, reason: impl fmt::Display) -> UpoError {
    UpoError::InvalidValue {
        element: element.into(),
        value: value.to_owned(),
        reason: reason.to_string(),
    }
}

/// xsd:token value: surrounding XML whitespace removed.
fn token(el: &Element, path: &str) -> Result<String, UpoError> {
    if let Some(c) = el.children.first() {
        return Err(UpoError::Unexpected(format!("{path}/{}", c.qname())));
    }
    Ok(el
        .text
        .split([' ', '\t', '\r', '\n'])
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join(" "))
}

/// The element children of `el` in the UPO namespace, skipping `ds:Signature`; anything else is
/// an error. Text other than whitespace is an error.
fn upo_children<'a>(el: &'a Element, path: &str) -> Result<Vec<&'a Element>, UpoError> {
    if !el.text.trim().is_empty() {
        return Err(UpoError::Unexpected(format!("{path}/text()")));
    }
    let mut out = Vec::new();
    for c in &el.children {
        match c.ns.as_deref() {
            Some(UPO_NAMESPACE) => out.push(c),
            Some(XMLDSIG_NS) if c.local == "Signature" => {}
            _ => return Err(UpoError::Unexpected(format!("{path}/{}", c.qname()))),
        }
    }
    Ok(out)
}

/// Walks children in schema order.
struct Seq<'a> {
    items: std::iter::Peekable<std::vec::IntoIter<&'a Element>>,
    path: String,
}

impl<'a> Seq<'a> {
    fn new(el: &'a Element, path: &str) -> Result<Self, UpoError> {
        Ok(Seq {
            items: upo_children(el, path)?.into_iter().peekable(),
            path: path.to_owned(),
        })
    }
    fn p(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.path)
        }
    }
    fn optional(&mut self, name: &str) -> Option<&'a Element> {
        self.items.next_if(|e| e.local == name)
    }
    fn required(&mut self, name: &str) -> Result<&'a Element, UpoError> {
        match self.items.next() {
            Some(e) if e.local == name => Ok(e),
            Some(e) => Err(UpoError::Unexpected(format!(
                "{} (expected {name})",
                self.p(&e.local)
            ))),
            None => Err(UpoError::Missing(self.p(name))),
        }
    }
    fn text(&mut self, name: &str) -> Result<String, UpoError> {
        let el = self.required(name)?;
        token(el, &self.p(name))
    }
    fn parsed<T>(
        &mut self,
        name: &str,
        f: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, UpoError> {
        let v = self.text(name)?;
        f(&v).map_err(|reason| invalid(self.p(name), &v, reason))
    }
    fn end(mut self) -> Result<(), UpoError> {
        match self.items.next() {
            Some(e) => Err(UpoError::Unexpected(self.p(&e.local))),
            None => Ok(()),
        }
    }
}

fn id<T>(r: Result<T, IdError>) -> Result<T, String> {
    r.map_err(|e| e.to_string())
}

fn positive(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(0) => Err("must be a positive integer".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(format!("not a positive integer: {e}")),
    }
}

fn datetime(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s, &Rfc3339)
        .map_err(|e| format!("not an RFC 3339 date-time with offset: {e}"))
}

fn date(s: &str) -> Result<Date, String> {
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| format!("not a YYYY-MM-DD date: {e}"))
}

impl Upo {
    /// Parses a UPO v4-3 document (UTF-8). Identifiers inside are checked against their patterns
    /// (NIP checksums and internal-ID check digits are not verified; KSeF numbers' CRC is).
    pub fn parse(xml: &[u8]) -> Result<Self, UpoError> {
        let root = dom::parse(xml).map_err(UpoError::Xml)?;
        if !root.is(UPO_NAMESPACE, "Potwierdzenie") {
            return Err(UpoError::WrongRoot(root.qname()));
        }
        let has_signature = root
            .children
            .iter()
            .any(|c| c.ns.as_deref() == Some(XMLDSIG_NS) && c.local == "Signature");
        let mut seq = Seq::new(&root, "")?;
        let receiving_entity = seq.text("NazwaPodmiotuPrzyjmujacego")?;
        let session_reference_number = seq.parsed("NumerReferencyjnySesji", |s| id(s.parse()))?;

        let auth = seq.required("Uwierzytelnienie")?;
        let mut a = Seq::new(auth, "Uwierzytelnienie")?;
        let ctx_el = a.required("IdKontekstu")?;
        let ctx_children = upo_children(ctx_el, "Uwierzytelnienie/IdKontekstu")?;
        let [ctx] = ctx_children.as_slice() else {
            return Err(UpoError::Missing(
                "Uwierzytelnienie/IdKontekstu/(Nip|IdWewnetrzny|IdZlozonyVatUE|IdDostawcyUslugPeppol)"
                    .into(),
            ));
        };
        let ctx_path = format!("Uwierzytelnienie/IdKontekstu/{}", ctx.local);
        let ctx_value = token(ctx, &ctx_path)?;
        let context = match ctx.local.as_str() {
            "Nip" => Nip::parse_lenient(&ctx_value).map(ContextIdentifier::Nip),
            "IdWewnetrzny" => {
                InternalId::parse_lenient(&ctx_value).map(ContextIdentifier::InternalId)
            }
            "IdZlozonyVatUE" => ctx_value.parse().map(ContextIdentifier::NipVatUe),
            "IdDostawcyUslugPeppol" => ctx_value.parse().map(ContextIdentifier::PeppolId),
            _ => return Err(UpoError::Unexpected(ctx_path)),
        }
        .map_err(|e| invalid(&ctx_path, &ctx_value, e))?;
        let proof = if let Some(el) = a.optional("NumerReferencyjnyTokenaKSeF") {
            let p = "Uwierzytelnienie/NumerReferencyjnyTokenaKSeF";
            let v = token(el, p)?;
            UpoAuthProof::KsefTokenReference(v.parse().map_err(|e| invalid(p, &v, e))?)
        } else {
            UpoAuthProof::AuthDocumentHash(
                a.parsed("SkrotDokumentuUwierzytelniajacego", |s| id(s.parse()))?,
            )
        };
        a.end()?;

        let page = match seq.optional("OpisPotwierdzenia") {
            None => None,
            Some(el) => {
                let mut o = Seq::new(el, "OpisPotwierdzenia")?;
                let page = UpoPage {
                    page: o.parsed("Strona", positive)?,
                    page_count: o.parsed("LiczbaStron", positive)?,
                    documents_from: o.parsed("ZakresDokumentowOd", positive)?,
                    documents_to: o.parsed("ZakresDokumentowDo", positive)?,
                    total_documents: o.parsed("CalkowitaLiczbaDokumentow", positive)?,
                };
                o.end()?;
                Some(page)
            }
        };
        let logical_structure_name = seq.text("NazwaStrukturyLogicznej")?;
        let form_system_code = seq.text("KodFormularza")?;

        let mut documents = Vec::new();
        while let Some(el) = seq.optional("Dokument") {
            if documents.len() == MAX_DOCUMENTS_PER_UPO {
                return Err(UpoError::Unexpected(format!(
                    "Dokument[{}] (a UPO lists at most {MAX_DOCUMENTS_PER_UPO})",
                    documents.len() + 1
                )));
            }
            let path = format!("Dokument[{}]", documents.len() + 1);
            let mut d = Seq::new(el, &path)?;
            documents.push(UpoDocument {
                seller_nip: d.parsed("NipSprzedawcy", |s| id(Nip::parse_lenient(s)))?,
                ksef_number: d.parsed("NumerKSeFDokumentu", |s| id(s.parse()))?,
                invoice_number: d.parsed("NumerFaktury", |s| {
                    if s.is_empty() || s.chars().count() > 256 {
                        Err("must have 1-256 characters".to_string())
                    } else {
                        Ok(s.to_owned())
                    }
                })?,
                issue_date: d.parsed("DataWystawieniaFaktury", date)?,
                sent_at: d.parsed("DataPrzeslaniaDokumentu", datetime)?,
                ksef_number_assigned_at: d.parsed("DataNadaniaNumeruKSeF", datetime)?,
                invoice_hash: d.parsed("SkrotDokumentu", |s| id(s.parse()))?,
                sending_mode: d.parsed("TrybWysylki", |s| match s {
                    "Online" => Ok(SendingMode::Online),
                    "Offline" => Ok(SendingMode::Offline),
                    _ => Err("must be Online or Offline".to_string()),
                })?,
            });
            d.end()?;
        }
        if documents.is_empty() {
            return Err(UpoError::Missing("Dokument".into()));
        }
        seq.end()?;
        Ok(Upo {
            schema_version: root.attr("wersjaSchemy").map(str::to_owned),
            receiving_entity,
            session_reference_number,
            authentication: UpoAuthentication { context, proof },
            page,
            logical_structure_name,
            form_system_code,
            documents,
            has_signature,
        })
    }

    /// Invoice UPO or session UPO page.
    pub fn kind(&self) -> UpoKind {
        if self.page.is_some() {
            UpoKind::Session
        } else {
            UpoKind::Invoice
        }
    }

    /// The known form whose logical structure name and system code match, if any.
    pub fn form_code(&self) -> Option<FormCode> {
        KNOWN_FORM_CODES
            .iter()
            .find(|f| {
                f.logical_structure_name() == self.logical_structure_name
                    && f.system_code() == self.form_system_code
            })
            .cloned()
    }

    /// Writes the UPO (unsigned, no indentation) with the v4-3 default namespace. `has_signature`
    /// is ignored: sign the output separately.
    pub fn to_xml(&self) -> Result<Vec<u8>, UpoError> {
        let mut w = UpoWriter(Writer::new(Vec::with_capacity(2048)));
        w.event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))?;
        let mut root = BytesStart::new("Potwierdzenie");
        root.push_attribute(("xmlns", UPO_NAMESPACE));
        if let Some(v) = &self.schema_version {
            root.push_attribute(("wersjaSchemy", v.as_str()));
        }
        w.event(Event::Start(root))?;
        w.leaf("NazwaPodmiotuPrzyjmujacego", &self.receiving_entity)?;
        w.leaf(
            "NumerReferencyjnySesji",
            self.session_reference_number.as_str(),
        )?;
        w.open("Uwierzytelnienie")?;
        w.open("IdKontekstu")?;
        let ctx = &self.authentication.context;
        let ctx_name = match ctx {
            ContextIdentifier::Nip(_) => "Nip",
            ContextIdentifier::InternalId(_) => "IdWewnetrzny",
            ContextIdentifier::NipVatUe(_) => "IdZlozonyVatUE",
            ContextIdentifier::PeppolId(_) => "IdDostawcyUslugPeppol",
        };
        w.leaf(ctx_name, ctx.value())?;
        w.close("IdKontekstu")?;
        match &self.authentication.proof {
            UpoAuthProof::KsefTokenReference(r) => {
                w.leaf("NumerReferencyjnyTokenaKSeF", r.as_str())?
            }
            UpoAuthProof::AuthDocumentHash(h) => {
                w.leaf("SkrotDokumentuUwierzytelniajacego", h.as_str())?
            }
        }
        w.close("Uwierzytelnienie")?;
        if let Some(p) = &self.page {
            w.open("OpisPotwierdzenia")?;
            w.leaf("Strona", &p.page.to_string())?;
            w.leaf("LiczbaStron", &p.page_count.to_string())?;
            w.leaf("ZakresDokumentowOd", &p.documents_from.to_string())?;
            w.leaf("ZakresDokumentowDo", &p.documents_to.to_string())?;
            w.leaf("CalkowitaLiczbaDokumentow", &p.total_documents.to_string())?;
            w.close("OpisPotwierdzenia")?;
        }
        w.leaf("NazwaStrukturyLogicznej", &self.logical_structure_name)?;
        w.leaf("KodFormularza", &self.form_system_code)?;
        for d in &self.documents {
            w.open("Dokument")?;
            w.leaf("NipSprzedawcy", d.seller_nip.as_str())?;
            w.leaf("NumerKSeFDokumentu", d.ksef_number.as_str())?;
            w.leaf("NumerFaktury", &d.invoice_number)?;
            w.leaf("DataWystawieniaFaktury", &d.issue_date.to_string())?;
            w.leaf("DataPrzeslaniaDokumentu", &fmt_dt(d.sent_at)?)?;
            w.leaf("DataNadaniaNumeruKSeF", &fmt_dt(d.ksef_number_assigned_at)?)?;
            w.leaf("SkrotDokumentu", d.invoice_hash.as_str())?;
            w.leaf("TrybWysylki", d.sending_mode.as_str())?;
            w.close("Dokument")?;
        }
        w.close("Potwierdzenie")?;
        Ok(w.0.into_inner())
    }
}

fn fmt_dt(t: OffsetDateTime) -> Result<String, UpoError> {
    t.format(&Rfc3339)
        .map_err(|e| UpoError::Write(e.to_string()))
}

struct UpoWriter(Writer<Vec<u8>>);

impl UpoWriter {
    fn event(&mut self, e: Event<'_>) -> Result<(), UpoError> {
        self.0
            .write_event(e)
            .map_err(|e| UpoError::Write(e.to_string()))
    }
    fn open(&mut self, name: &str) -> Result<(), UpoError> {
        self.event(Event::Start(BytesStart::new(name)))
    }
    fn close(&mut self, name: &str) -> Result<(), UpoError> {
        self.event(Event::End(BytesEnd::new(name)))
    }
    fn leaf(&mut self, name: &str, text: &str) -> Result<(), UpoError> {
        self.open(name)?;
        self.event(Event::Text(BytesText::new(text)))?;
        self.close(name)
    }
}

/// A tiny namespace-resolved element tree built from quick-xml's `NsReader`, shared by the UPO and
/// AuthTokenRequest parsers. quick-xml's serde layer matches names by local name only, so a
/// document in a foreign namespace would deserialize silently; this tree keeps every element's
/// resolved namespace so the parsers can check it.
pub(crate) mod dom {
    use quick_xml::events::Event;
    use quick_xml::name::ResolveResult;
    use quick_xml::reader::NsReader;

    /// Deepest nesting accepted (the documents we parse are a few levels deep; the limit keeps
    /// hostile input from exhausting the stack when the tree is dropped).
    const MAX_DEPTH: usize = 64;

    /// XML Digital Signature namespace (`ds:Signature` elements are skipped by callers).
    pub(crate) const XMLDSIG_NS: &str = "http://www.w3.org/2000/09/xmldsig#";

    /// One element.
    #[derive(Debug, Clone, Default)]
    pub(crate) struct Element {
        /// Resolved namespace URI (`None` when unbound).
        pub ns: Option<String>,
        /// Local name.
        pub local: String,
        /// Attributes other than namespace declarations: (namespace, local name, value).
        pub attrs: Vec<(Option<String>, String, String)>,
        /// Child elements in document order.
        pub children: Vec<Element>,
        /// Concatenated character data directly inside this element.
        pub text: String,
    }

    impl Element {
        /// `{ns}local` for messages.
        pub fn qname(&self) -> String {
            match &self.ns {
                Some(ns) => format!("{{{ns}}}{}", self.local),
                None => self.local.clone(),
            }
        }

        /// Whether the element is `{ns}local`.
        pub fn is(&self, ns: &str, local: &str) -> bool {
            self.ns.as_deref() == Some(ns) && self.local == local
        }

        /// Attribute value by local name (unqualified attributes only).
        pub fn attr(&self, local: &str) -> Option<&str> {
            self.attrs
                .iter()
                .find(|(ns, l, _)| ns.is_none() && l == local)
                .map(|(_, _, v)| v.as_str())
        }
    }

    fn resolved_ns(r: ResolveResult<'_>) -> Result<Option<String>, String> {
        match r {
            ResolveResult::Bound(ns) => Ok(Some(ns.as_ref().to_owned())),
            ResolveResult::Unbound => Ok(None),
            ResolveResult::Unknown(p) => Err(format!("undeclared namespace prefix {p:?}")),
        }
    }

    fn start_element(
        reader: &NsReader<&[u8]>,
        ns: Option<String>,
        e: &quick_xml::events::BytesStart<'_>,
    ) -> Result<Element, String> {
        let mut el = Element {
            ns,
            local: e.local_name().as_ref().to_owned(),
            ..Element::default()
        };
        for a in e.attributes() {
            let a = a.map_err(|e| format!("bad attribute: {e}"))?;
            let key = a.key;
            if key.as_ref() == "xmlns" || key.as_ref().starts_with("xmlns:") {
                continue;
            }
            let (ans, local) = reader.resolver().resolve_attribute(key);
            let value = a
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| format!("bad attribute value: {e}"))?;
            el.attrs.push((
                resolved_ns(ans)?,
                local.as_ref().to_owned(),
                value.into_owned(),
            ));
        }
        Ok(el)
    }

    fn general_ref(name: &str) -> Result<char, String> {
        Ok(match name {
            "lt" => '<',
            "gt" => '>',
            "amp" => '&',
            "apos" => '\'',
            "quot" => '"',
            n => {
                let c = n.strip_prefix('#').and_then(|num| {
                    match num.strip_prefix('x') {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => num.parse::<u32>().ok(),
                    }
                    .and_then(char::from_u32)
                });
                match c {
                    Some(c) if c != '\0' => c,
                    _ => return Err(format!("unknown entity or character reference &{n};")),
                }
            }
        })
    }

    /// Parses a whole UTF-8 document into its root element. Rejects DTDs, undeclared prefixes,
    /// unknown entities, mismatched tags, text outside the root and nesting deeper than 64.
    pub(crate) fn parse(bytes: &[u8]) -> Result<Element, String> {
        let text = std::str::from_utf8(bytes).map_err(|e| format!("document is not UTF-8: {e}"))?;
        let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
        let mut reader = NsReader::from_reader(text.as_bytes());
        let mut stack: Vec<Element> = Vec::new();
        let mut root: Option<Element> = None;
        loop {
            let (ns, ev) = match reader.read_resolved_event() {
                Ok((ns, ev)) => (resolved_ns(ns), ev),
                Err(e) => {
                    return Err(format!(
                        "malformed XML at byte {}: {e}",
                        reader.error_position()
                    ));
                }
            };
            match ev {
                Event::Start(e) => {
                    if root.is_some() {
                        return Err("content after the root element".into());
                    }
                    if stack.len() >= MAX_DEPTH {
                        return Err(format!("elements nested deeper than {MAX_DEPTH}"));
                    }
                    let el = start_element(&reader, ns?, &e)?;
                    stack.push(el);
                }
                Event::Empty(e) => {
                    if root.is_some() {
                        return Err("content after the root element".into());
                    }
                    let el = start_element(&reader, ns?, &e)?;
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::End(_) => {
                    let Some(el) = stack.pop() else {
                        return Err("unexpected end tag".into());
                    };
                    match stack.last_mut() {
                        Some(parent) => parent.children.push(el),
                        None => root = Some(el),
                    }
                }
                Event::Text(t) => {
                    let s = t.xml10_content();
                    match stack.last_mut() {
                        Some(el) => el.text.push_str(&s),
                        None if s.trim().is_empty() => {}
                        None => return Err("text outside the root element".into()),
                    }
                }
                Event::CData(c) => match stack.last_mut() {
                    Some(el) => el.text.push_str(&c.xml10_content()),
                    None => return Err("CDATA outside the root element".into()),
                },
                Event::GeneralRef(r) => {
                    let c = general_ref(&r)?;
                    match stack.last_mut() {
                        Some(el) => el.text.push(c),
                        None => return Err("entity reference outside the root element".into()),
                    }
                }
                Event::DocType(_) => return Err("DOCTYPE declarations are not allowed".into()),
                Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
                Event::Eof => break,
            }
        }
        if !stack.is_empty() {
            return Err("document ended before the root element was closed".into());
        }
        root.ok_or_else(|| "document has no root element".to_string())
    }
}
