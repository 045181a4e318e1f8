#![doc = include_str!("../README.md")]

mod error;
#[rustfmt::skip]
mod generated;
mod rt;
mod validate;
mod xml;

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
pub use validate::{Rule, date_in_poland, poland_offset};

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
        use xml::Tok;
        let xml = xml.strip_prefix('\u{feff}').unwrap_or(xml);
        let mut r = rt::Reader::new(xml);
        // prolog: declaration, comments, processing instructions and whitespace up to the root
        let tag = loop {
            let tag = match r.next()? {
                Tok::Start(t) => t,
                Tok::Decl | Tok::Skip => continue,
                Tok::Text(t) if xml::is_xml_ws(t) => continue,
                Tok::DocType => {
                    return Err(Error::Xml(
                        "a DTD (<!DOCTYPE …>) is not allowed in an invoice".to_owned(),
                    ));
                }
                Tok::Eof => return Err(Error::Xml("the document has no root element".into())),
                _ => return Err(Error::Xml("text before the root element".to_owned())),
            };
            let root = tag.local.to_owned();
            match &tag.ns {
                rt::Ns::Fa if root == "Faktura" => break tag,
                rt::Ns::Other(ns) if &**ns == FA2_NS => {
                    return Err(Error::WrongDocument(WrongDocument::Fa2));
                }
                rt::Ns::Other(ns) if &**ns == FA_RR_NS => {
                    return Err(Error::WrongDocument(WrongDocument::FaRr));
                }
                rt::Ns::Other(ns) if ns.starts_with("urn:oasis:names:specification:ubl:") => {
                    return Err(Error::WrongDocument(WrongDocument::Pef { root }));
                }
                ns => {
                    let namespace = match ns {
                        rt::Ns::Fa => NAMESPACE.to_owned(),
                        rt::Ns::Other(ns) => ns.to_string(),
                        rt::Ns::None => String::new(),
                    };
                    return Err(Error::WrongDocument(WrongDocument::Other {
                        namespace,
                        root,
                    }));
                }
            }
        };
        let f = Faktura::from_node(rt::Node::new(&mut r, tag))?;
        // epilogue: nothing but comments, processing instructions and whitespace
        loop {
            match r.next()? {
                Tok::Eof => return Ok(f),
                Tok::Skip => {}
                Tok::Text(t) if xml::is_xml_ws(t) => {}
                _ => {
                    return Err(Error::Xml(
                        "content after the root element (one document, one root)".to_owned(),
                    ));
                }
            }
        }
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

#[cfg(test)]
mod tests {
    #[test]
    fn currency_codes_are_ksef_models_and_match_the_schema() {
        let mut api: Vec<&str> = ksef_model::api::CurrencyCode::KNOWN
            .iter()
            .map(|c| c.as_str())
            .collect();
        let mut xsd: Vec<&str> = crate::generated::TKODWALUTY_VALUES.split(' ').collect();
        api.sort_unstable();
        xsd.sort_unstable();
        assert_eq!(api, xsd);
    }
}
