#![doc = include_str!("../README.md")]

mod error;
#[rustfmt::skip]
mod generated;
mod rt;
mod validate;

pub mod builder;

/// The complete FA(3) model, generated from the official schema (`schemat_FA(3)_v1-0E.xsd`).
///
/// Struct and field names follow the schema: each field's documentation starts with its XML
/// name (`P_13_1`, `NrWierszaFa`, …) followed by the Ministry's description.
pub mod model {
    pub use crate::generated::*;
    pub use crate::rt::XsdDateTime;
}

pub use error::{Error, FieldPath, Problem, Segment, ValueError, ValueErrorKind, WrongDocument};
pub use generated::{Faktura, NAMESPACE};
pub use rt::XsdDateTime;
pub use rust_decimal::Decimal;
pub use time;
pub use validate::Rule;

use rt::XmlElement as _;

impl model::TNrNip {
    /// The NIP as `ksef_model`'s identifier, checking its check digit as well.
    pub fn to_nip(&self) -> Result<ksef_model::ids::Nip, ksef_model::ids::IdError> {
        ksef_model::ids::Nip::new(self.as_str())
    }
}

impl TryFrom<&ksef_model::ids::Nip> for model::TNrNip {
    type Error = ValueError;
    fn try_from(nip: &ksef_model::ids::Nip) -> Result<Self, ValueError> {
        Self::new(nip.as_str())
    }
}

const FA2_NS: &str = "http://crd.gov.pl/wzor/2023/06/29/12648/";
const FA_RR_NS: &str = "http://crd.gov.pl/wzor/2026/03/06/14189/";

impl Faktura {
    /// Parses an FA(3) invoice from XML text.
    ///
    /// Checks the root element and namespace (FA(2), FA_RR and PEF documents are refused with
    /// [`Error::WrongDocument`]) and every schema rule the model encodes: element order,
    /// required and repeated elements, and each value's restrictions. Errors name the field path.
    pub fn from_xml(xml: &str) -> Result<Self, Error> {
        let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
        let doc = roxmltree::Document::parse(xml).map_err(|e| Error::Xml(e.to_string()))?;
        let root = doc.root_element();
        let tn = root.tag_name();
        match (tn.namespace(), tn.name()) {
            (Some(NAMESPACE), "Faktura") => {}
            (Some(FA2_NS), _) => return Err(Error::WrongDocument(WrongDocument::Fa2)),
            (Some(FA_RR_NS), _) => return Err(Error::WrongDocument(WrongDocument::FaRr)),
            (Some(ns), name) if ns.starts_with("urn:oasis:names:specification:ubl:") => {
                return Err(Error::WrongDocument(WrongDocument::Pef {
                    root: name.to_owned(),
                }));
            }
            (ns, name) => {
                return Err(Error::WrongDocument(WrongDocument::Other {
                    namespace: ns.unwrap_or("").to_owned(),
                    root: name.to_owned(),
                }));
            }
        }
        Faktura::from_node(root)
    }

    /// Parses an FA(3) invoice from bytes (UTF-8, with or without BOM).
    pub fn from_slice(bytes: &[u8]) -> Result<Self, Error> {
        let s = std::str::from_utf8(bytes).map_err(|e| Error::Xml(format!("not UTF-8: {e}")))?;
        Self::from_xml(s)
    }

    /// Writes the invoice as FA(3) XML: UTF-8 without BOM, an XML declaration, the FA(3)
    /// default namespace plus the official `etd` and `xsi` prefixes, no processing instructions.
    ///
    /// The model keeps every value valid by construction, but repetition counts of a model
    /// built in code are only checked by [`Faktura::validate`]: call it before sending.
    pub fn to_xml(&self) -> String {
        let mut w = rt::Writer::with_capacity(8192);
        w.out()
            .push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write_node("Faktura", &mut w);
        w.into_string()
    }
}
