//! Invoice form codes (`formCode` of session-open requests and invoice metadata).
//!
//! The wire shape is the API's `FormCode` schema `{"systemCode", "schemaVersion", "value"}`; note
//! the **space** in `systemCode` (`"FA (3)"`).
//!
//! ```
//! use ksef_model::form::FormCode;
//! let json = serde_json::to_string(&FormCode::Fa3)?;
//! assert_eq!(json, r#"{"systemCode":"FA (3)","schemaVersion":"1-0E","value":"FA"}"#);
//! assert_eq!(serde_json::from_str::<FormCode>(&json)?, FormCode::Fa3);
//! assert!(!FormCode::Pef3.batch_allowed());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A KSeF invoice form (schema) code.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FormCode {
    /// FA(2), `schemat_FA(2)_v1-0E.xsd` (accepted on TEST only).
    Fa2,
    /// FA(3), `schemat_FA(3)_v1-0E.xsd` — the current structured invoice.
    Fa3,
    /// FA_RR(1), `schemat_FA_RR(1)_v1-1E.xsd` — VAT RR invoices (flat-rate farmers).
    FaRr1,
    /// PEF(3), `Schemat_PEF(3)_v2-1.xsd` — Peppol UBL invoice (online sessions only).
    Pef3,
    /// PEF_KOR(3), `Schemat_PEF_KOR(3)_v2-1.xsd` — Peppol UBL credit note (online sessions only).
    PefKor3,
    /// A form code this version of the library does not know (KSeF adds forms over time).
    Other {
        /// `systemCode` as sent by KSeF.
        system_code: String,
        /// `schemaVersion` as sent by KSeF.
        schema_version: String,
        /// `value` as sent by KSeF.
        value: String,
    },
}

/// The known forms, in the order of the API documentation.
pub const KNOWN_FORM_CODES: [FormCode; 5] = [
    FormCode::Fa2,
    FormCode::Fa3,
    FormCode::FaRr1,
    FormCode::Pef3,
    FormCode::PefKor3,
];

impl FormCode {
    /// Resolves the three wire strings to a known form, or [`FormCode::Other`].
    pub fn from_parts(system_code: &str, schema_version: &str, value: &str) -> Self {
        KNOWN_FORM_CODES
            .iter()
            .find(|f| {
                f.system_code() == system_code
                    && f.schema_version() == schema_version
                    && f.value() == value
            })
            .cloned()
            .unwrap_or_else(|| FormCode::Other {
                system_code: system_code.to_owned(),
                schema_version: schema_version.to_owned(),
                value: value.to_owned(),
            })
    }

    /// `systemCode`, e.g. `"FA (3)"` (with the space).
    pub fn system_code(&self) -> &str {
        match self {
            FormCode::Fa2 => "FA (2)",
            FormCode::Fa3 => "FA (3)",
            FormCode::FaRr1 => "FA_RR (1)",
            FormCode::Pef3 => "PEF (3)",
            FormCode::PefKor3 => "PEF_KOR (3)",
            FormCode::Other { system_code, .. } => system_code,
        }
    }

    /// `schemaVersion`, e.g. `"1-0E"`.
    pub fn schema_version(&self) -> &str {
        match self {
            FormCode::Fa2 | FormCode::Fa3 => "1-0E",
            FormCode::FaRr1 => "1-1E",
            FormCode::Pef3 | FormCode::PefKor3 => "2-1",
            FormCode::Other { schema_version, .. } => schema_version,
        }
    }

    /// `value`, e.g. `"FA"` (`"FA_RR"` for FA_RR(1) since API 2.3.0).
    pub fn value(&self) -> &str {
        match self {
            FormCode::Fa2 | FormCode::Fa3 => "FA",
            FormCode::FaRr1 => "FA_RR",
            FormCode::Pef3 | FormCode::PefKor3 => "PEF",
            FormCode::Other { value, .. } => value,
        }
    }

    /// Namespace of the invoice document's root element (`None` for unknown forms).
    pub fn namespace(&self) -> Option<&'static str> {
        Some(match self {
            FormCode::Fa2 => "http://crd.gov.pl/wzor/2023/06/29/12648/",
            FormCode::Fa3 => "http://crd.gov.pl/wzor/2025/06/25/13775/",
            FormCode::FaRr1 => "http://crd.gov.pl/wzor/2026/03/06/14189/",
            FormCode::Pef3 => "urn:oasis:names:specification:ubl:schema:xsd:Invoice-2",
            FormCode::PefKor3 => "urn:oasis:names:specification:ubl:schema:xsd:CreditNote-2",
            FormCode::Other { .. } => return None,
        })
    }

    /// Local name of the invoice document's root element (`None` for unknown forms).
    pub fn root_element(&self) -> Option<&'static str> {
        Some(match self {
            FormCode::Fa2 | FormCode::Fa3 | FormCode::FaRr1 => "Faktura",
            FormCode::Pef3 => "Invoice",
            FormCode::PefKor3 => "CreditNote",
            FormCode::Other { .. } => return None,
        })
    }

    /// Whether the form may be sent in an online (interactive) session. FA(2) only on TEST.
    pub fn online_allowed(&self) -> bool {
        !matches!(self, FormCode::Other { .. })
    }

    /// Whether the form may be sent in a batch session (PEF forms are online-only).
    pub fn batch_allowed(&self) -> bool {
        matches!(self, FormCode::Fa2 | FormCode::Fa3 | FormCode::FaRr1)
    }

    /// The logical structure name KSeF writes into UPOs (`NazwaStrukturyLogicznej`), e.g.
    /// `Schemat_FA(3)_v1-0E.xsd`: `systemCode` without the space.
    pub fn logical_structure_name(&self) -> String {
        format!(
            "Schemat_{}_v{}.xsd",
            self.system_code().replace(' ', ""),
            self.schema_version()
        )
    }

    /// Finds the known form whose root element is `{namespace}local_name` (e.g. to detect the
    /// form of an invoice document).
    pub fn from_root(namespace: &str, local_name: &str) -> Option<Self> {
        KNOWN_FORM_CODES
            .iter()
            .find(|f| f.namespace() == Some(namespace) && f.root_element() == Some(local_name))
            .cloned()
    }
}

impl fmt::Display for FormCode {
    /// Writes the `systemCode`, e.g. `FA (3)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.system_code())
    }
}

/// An unrecognised form code string given to [`FormCode::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown form code {0:?}: expected one of FA(2), FA(3), FA_RR(1), PEF(3), PEF_KOR(3) (the space before the parenthesis is optional)"
)]
pub struct UnknownFormCode(pub String);

impl FromStr for FormCode {
    type Err = UnknownFormCode;
    /// Parses a known form from its `systemCode`, with or without the space (`"FA (3)"`, `"FA(3)"`),
    /// case-insensitively.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let norm: String = s
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        KNOWN_FORM_CODES
            .iter()
            .find(|f| f.system_code().replace(' ', "") == norm)
            .cloned()
            .ok_or_else(|| UnknownFormCode(s.to_owned()))
    }
}

impl From<FormCode> for crate::api::FormCode {
    fn from(f: FormCode) -> Self {
        crate::api::FormCode {
            schema_version: f.schema_version().to_owned(),
            system_code: f.system_code().to_owned(),
            value: f.value().to_owned(),
        }
    }
}

impl From<&crate::api::FormCode> for FormCode {
    fn from(f: &crate::api::FormCode) -> Self {
        FormCode::from_parts(&f.system_code, &f.schema_version, &f.value)
    }
}

impl From<crate::api::FormCode> for FormCode {
    fn from(f: crate::api::FormCode) -> Self {
        FormCode::from(&f)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<S> {
    system_code: S,
    schema_version: S,
    value: S,
}

impl Serialize for FormCode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Wire {
            system_code: self.system_code(),
            schema_version: self.schema_version(),
            value: self.value(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for FormCode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let w = Wire::<String>::deserialize(d)?;
        Ok(FormCode::from_parts(
            &w.system_code,
            &w.schema_version,
            &w.value,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings() {
        let rows = [
            (FormCode::Fa2, "FA (2)", "1-0E", "FA", true),
            (FormCode::Fa3, "FA (3)", "1-0E", "FA", true),
            (FormCode::FaRr1, "FA_RR (1)", "1-1E", "FA_RR", true),
            (FormCode::Pef3, "PEF (3)", "2-1", "PEF", false),
            (FormCode::PefKor3, "PEF_KOR (3)", "2-1", "PEF", false),
        ];
        for (f, sc, sv, v, batch) in rows {
            assert_eq!(f.system_code(), sc);
            assert_eq!(f.schema_version(), sv);
            assert_eq!(f.value(), v);
            assert_eq!(f.batch_allowed(), batch);
            assert!(f.online_allowed());
            assert_eq!(FormCode::from_parts(sc, sv, v), f);
            assert_eq!(sc.parse::<FormCode>().unwrap(), f);
            assert_eq!(sc.replace(' ', "").parse::<FormCode>().unwrap(), f);
            let json = serde_json::to_value(&f).unwrap();
            assert_eq!(
                json,
                serde_json::json!({"systemCode": sc, "schemaVersion": sv, "value": v})
            );
            let back: FormCode = serde_json::from_value(json.clone()).unwrap();
            assert_eq!(back, f);
            let api: crate::api::FormCode = serde_json::from_value(json).unwrap();
            assert_eq!(FormCode::from(&api), f);
            assert_eq!(crate::api::FormCode::from(f.clone()), api);
            let ns = f.namespace().unwrap();
            assert_eq!(FormCode::from_root(ns, f.root_element().unwrap()), Some(f));
        }
        assert_eq!(
            FormCode::Fa3.logical_structure_name(),
            "Schemat_FA(3)_v1-0E.xsd"
        );
        assert_eq!(
            FormCode::PefKor3.logical_structure_name(),
            "Schemat_PEF_KOR(3)_v2-1.xsd"
        );
    }

    #[test]
    fn unknown_forms_are_kept() {
        let json =
            serde_json::json!({"systemCode": "FA (4)", "schemaVersion": "1-0E", "value": "FA"});
        let f: FormCode = serde_json::from_value(json.clone()).unwrap();
        assert!(matches!(f, FormCode::Other { .. }));
        assert!(!f.online_allowed() && !f.batch_allowed());
        assert_eq!(serde_json::to_value(&f).unwrap(), json);
        let e = "FA(4)".parse::<FormCode>().unwrap_err();
        assert!(e.to_string().contains("FA(4)"));
        // Extra properties are ignored (forward compatibility).
        let f: FormCode = serde_json::from_str(
            r#"{"systemCode":"FA (3)","schemaVersion":"1-0E","value":"FA","x":1}"#,
        )
        .unwrap();
        assert_eq!(f, FormCode::Fa3);
    }

    #[test]
    fn namespaces_match_the_xsds() {
        for (f, file) in [
            (FormCode::Fa2, "fa/schemat_FA(2)_v1-0E.xsd"),
            (FormCode::Fa3, "fa/schemat_FA(3)_v1-0E.xsd"),
            (FormCode::FaRr1, "fa/schemat_FA_RR(1)_v1-1E.xsd"),
            (FormCode::Pef3, "pef/Schemat_PEF(3)_v2-1.xsd"),
            (FormCode::PefKor3, "pef/Schemat_PEF_KOR(3)_v2-1.xsd"),
        ] {
            let path = format!("{}/../../spec/{file}", env!("CARGO_MANIFEST_DIR"));
            let xsd = std::fs::read_to_string(&path).unwrap();
            let tns = format!("targetNamespace=\"{}\"", f.namespace().unwrap());
            assert!(xsd.contains(&tns), "{path} lacks {tns}");
        }
    }
}
