//! Invoice templates: XML text with `#placeholder#` tokens filled from a map, values XML-escaped.
//!
//! A placeholder is `#name#` with `name` matching `[A-Za-z_][A-Za-z0-9_]*`, where the character
//! before the opening `#` and the one after the closing `#` are not ASCII letters or digits. The
//! boundary rule keeps literal text such as the Peppol `CustomizationID`
//! `urn:cen.eu:en16931:2017#compliant#urn:fdc:…` (in the PEF templates) from being taken for a
//! placeholder, while `FA/GRQMB-#invoice_number#/05/2025` still is one.
//!
//! ```
//! use ksef_model::template::InvoiceTemplate;
//! let t = InvoiceTemplate::new("<NIP>#nip#</NIP><P_2>#invoice_number#</P_2>");
//! assert_eq!(t.placeholders(), ["invoice_number", "nip"]);
//! let xml = t.fill([("nip", "5265877635"), ("invoice_number", "FA/1 & 2")])?;
//! assert_eq!(xml, "<NIP>5265877635</NIP><P_2>FA/1 &amp; 2</P_2>");
//! let err = t.fill([("nip", "5265877635")]).unwrap_err();
//! assert_eq!(err.to_string(), "template placeholders left unfilled: #invoice_number#");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeSet, HashMap};

/// Errors filling a template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    /// Some placeholders had no value; all of them are listed (sorted, without `#`).
    #[error("template placeholders left unfilled: {}", .0.iter().map(|p| format!("#{p}#")).collect::<Vec<_>>().join(", "))]
    Unfilled(Vec<String>),
    /// A value contains a character XML 1.0 does not allow (escaping cannot help).
    #[error(
        "value for #{placeholder}# contains U+{code:04X}, which XML 1.0 does not allow in documents"
    )]
    InvalidChar {
        /// The placeholder name.
        placeholder: String,
        /// The offending code point.
        code: u32,
    },
    /// The template bytes are not UTF-8.
    #[error("invoice template is not UTF-8: {0}")]
    NotUtf8(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(std::ops::Range<usize>),
    Placeholder(std::ops::Range<usize>),
}

/// A parsed invoice template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceTemplate {
    text: String,
    segments: Vec<Segment>,
}

fn is_name_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn xml_char_allowed(c: char) -> bool {
    matches!(c, '\u{9}' | '\u{A}' | '\u{D}' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

impl InvoiceTemplate {
    /// Parses a template from text.
    pub fn new(text: impl Into<String>) -> Self {
        let text = text.into();
        let b = text.as_bytes();
        let mut segments = Vec::new();
        let mut lit_start = 0;
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'#' && (i == 0 || !b[i - 1].is_ascii_alphanumeric()) {
                let name_start = i + 1;
                let mut j = name_start;
                if j < b.len() && is_name_start(b[j]) {
                    while j < b.len() && is_name_char(b[j]) {
                        j += 1;
                    }
                    let closes = j < b.len() && b[j] == b'#';
                    let bounded = j + 1 >= b.len() || !b[j + 1].is_ascii_alphanumeric();
                    if closes && bounded {
                        if lit_start < i {
                            segments.push(Segment::Literal(lit_start..i));
                        }
                        segments.push(Segment::Placeholder(name_start..j));
                        i = j + 1;
                        lit_start = i;
                        continue;
                    }
                }
            }
            i += 1;
        }
        if lit_start < b.len() {
            segments.push(Segment::Literal(lit_start..b.len()));
        }
        InvoiceTemplate { text, segments }
    }

    /// Parses a template from UTF-8 bytes (a leading BOM is kept as is).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TemplateError> {
        std::str::from_utf8(bytes)
            .map(Self::new)
            .map_err(|e| TemplateError::NotUtf8(e.to_string()))
    }

    /// The template text.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The distinct placeholder names (without `#`), sorted.
    pub fn placeholders(&self) -> Vec<&str> {
        self.segments
            .iter()
            .filter_map(|s| match s {
                Segment::Placeholder(r) => Some(&self.text[r.clone()]),
                Segment::Literal(_) => None,
            })
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect()
    }

    /// Fills every placeholder from `values` (XML-escaping `&`, `<`, `>`, `"` and `'`, so values
    /// are safe in text and attributes). Keys that are not placeholders are ignored. Fails with
    /// the full list of placeholders that had no value.
    pub fn fill<K, V, I>(&self, values: I) -> Result<String, TemplateError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let map: HashMap<String, String> = values
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), v.as_ref().to_owned()))
            .collect();
        self.fill_map(&map)
    }

    /// [`fill`](Self::fill) with a ready map.
    pub fn fill_map(&self, values: &HashMap<String, String>) -> Result<String, TemplateError> {
        let missing: BTreeSet<&str> = self
            .placeholders()
            .into_iter()
            .filter(|p| !values.contains_key(*p))
            .collect();
        if !missing.is_empty() {
            return Err(TemplateError::Unfilled(
                missing.into_iter().map(str::to_owned).collect(),
            ));
        }
        let mut out = String::with_capacity(self.text.len() + 64);
        for seg in &self.segments {
            match seg {
                Segment::Literal(r) => out.push_str(&self.text[r.clone()]),
                Segment::Placeholder(r) => {
                    let name = &self.text[r.clone()];
                    let value = values.get(name).map(String::as_str).unwrap_or_default();
                    if let Some(c) = value.chars().find(|c| !xml_char_allowed(*c)) {
                        return Err(TemplateError::InvalidChar {
                            placeholder: name.to_owned(),
                            code: u32::from(c),
                        });
                    }
                    out.push_str(&quick_xml::escape::escape(value));
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries() {
        let t = InvoiceTemplate::new(
            "urn:x:2017#compliant#urn:y:3.0#extended#urn:z &#60;1 #a##b# -#c#/ #9# # ## #d e#",
        );
        assert_eq!(t.placeholders(), ["a", "b", "c"]);
        let out = t.fill([("a", "1"), ("b", "2"), ("c", "<3>")]).unwrap();
        assert_eq!(
            out,
            "urn:x:2017#compliant#urn:y:3.0#extended#urn:z &#60;1 12 -&lt;3&gt;/ #9# # ## #d e#"
        );
    }

    #[test]
    fn edges_and_errors() {
        assert_eq!(InvoiceTemplate::new("#x#").placeholders(), ["x"]);
        assert_eq!(InvoiceTemplate::new("").placeholders(), Vec::<&str>::new());
        assert_eq!(InvoiceTemplate::new("#").fill([("a", "b")]).unwrap(), "#");
        let t = InvoiceTemplate::new("<a b=\"#v#\">#w#</a>");
        assert_eq!(
            t.fill([("v", "\"'"), ("w", "ok"), ("unused", "x")])
                .unwrap(),
            "<a b=\"&quot;&apos;\">ok</a>"
        );
        assert_eq!(
            t.fill(Vec::<(String, String)>::new()).unwrap_err(),
            TemplateError::Unfilled(vec!["v".into(), "w".into()])
        );
        let e = t.fill([("v", "\u{1}"), ("w", "")]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "value for #v# contains U+0001, which XML 1.0 does not allow in documents"
        );
        assert!(InvoiceTemplate::from_bytes(&[0xff]).is_err());
    }
}
