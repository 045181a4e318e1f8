//! Errors: one type for the crate, every schema or rule violation naming the field path.

use std::borrow::Cow;
use std::fmt;

/// Why a single value (text of an element or attribute) breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{value}\" {kind}")]
pub struct ValueError {
    value: String,
    kind: ValueErrorKind,
}

impl ValueError {
    /// A value error for `value` (shortened to 80 characters for display).
    pub fn new(value: &str, kind: ValueErrorKind) -> Self {
        let value = match value.char_indices().nth(80) {
            Some((i, _)) => format!("{}…", &value[..i]),
            None => value.to_owned(),
        };
        Self { value, kind }
    }
    /// The offending value (possibly shortened).
    pub fn value(&self) -> &str {
        &self.value
    }
    /// What is wrong with it.
    pub fn kind(&self) -> &ValueErrorKind {
        &self.kind
    }
}

/// The restriction a value breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ValueErrorKind {
    /// Shorter than `minLength`.
    #[error("is shorter than {min} characters")]
    TooShort {
        /// Minimum length.
        min: usize,
    },
    /// Longer than `maxLength`.
    #[error("is longer than {max} characters")]
    TooLong {
        /// Maximum length.
        max: usize,
    },
    /// Does not match the schema's `pattern`.
    #[error("does not match the pattern `{pattern}`")]
    Pattern {
        /// The XSD pattern.
        pattern: &'static str,
    },
    /// Not one of the enumerated values.
    #[error("is not {what}")]
    NotAllowed {
        /// What was expected, e.g. "a VAT rate".
        what: &'static str,
    },
    /// Contains a character XML cannot carry (a control character).
    #[error("contains a control character that XML cannot carry")]
    InvalidChar,
    /// Not a decimal number.
    #[error("is not a decimal number (use digits and an optional `.`, e.g. 123.45)")]
    NotDecimal,
    /// Too many significant digits (`totalDigits`).
    #[error("has more than {max} digits")]
    TooManyDigits {
        /// Allowed digits.
        max: u32,
    },
    /// Too many digits after the decimal point (`fractionDigits`).
    #[error("has more than {max} digits after the decimal point")]
    TooManyFractionDigits {
        /// Allowed fraction digits.
        max: u32,
    },
    /// Too many digits before the decimal point (the schema's pattern).
    #[error("has more than {max} digits before the decimal point")]
    TooManyIntegerDigits {
        /// Allowed integer digits.
        max: u32,
    },
    /// Below the minimum.
    #[error("is below the minimum {min}")]
    TooSmall {
        /// The minimum, as text.
        min: String,
    },
    /// Above the maximum.
    #[error("is above the maximum {max}")]
    TooLarge {
        /// The maximum, as text.
        max: String,
    },
    /// Not an integer.
    #[error("is not an integer")]
    NotInteger,
    /// Not a date.
    #[error("is not a date (YYYY-MM-DD)")]
    NotDate,
    /// Not a date-time.
    #[error("is not a date-time (YYYY-MM-DDThh:mm:ss, optional fraction and zone)")]
    NotDateTime,
}

/// One step of a field path: an element (or `@attribute`) name and, for repeated elements, its
/// 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Element name as in the schema (`FaWiersz`), or `@name` for an attribute.
    pub name: Cow<'static, str>,
    /// 1-based index among repeated siblings.
    pub index: Option<usize>,
}

/// Where in the invoice a problem is, relative to the root `Faktura`, e.g. `Fa/FaWiersz[3]/P_12`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FieldPath(pub Vec<Segment>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("Faktura");
        }
        for (i, s) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            f.write_str(&s.name)?;
            if let Some(n) = s.index {
                write!(f, "[{n}]")?;
            }
        }
        Ok(())
    }
}

/// What is wrong at a [`FieldPath`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A required element is absent.
    #[error("required element is missing{}", found_note(.found))]
    Missing {
        /// The element found in its place, if any.
        found: Option<String>,
    },
    /// None of the alternatives of a choice is present.
    #[error("expected one of {}{}", .expected.join(", "), found_note(.found))]
    ExpectedOneOf {
        /// Element names that may start the choice.
        expected: Vec<&'static str>,
        /// The element found instead, if any.
        found: Option<String>,
    },
    /// An element the schema does not allow here (or out of order).
    #[error("unexpected element `{found}` (not allowed here or out of order)")]
    Unexpected {
        /// Its name (`{namespace}name` when in a foreign namespace).
        found: String,
    },
    /// More repetitions than `maxOccurs`.
    #[error("{found} occurrences, at most {max} allowed")]
    TooMany {
        /// Allowed maximum.
        max: usize,
        /// Found.
        found: usize,
    },
    /// Fewer repetitions than `minOccurs`.
    #[error("{found} occurrences, at least {min} required")]
    TooFew {
        /// Required minimum.
        min: usize,
        /// Found.
        found: usize,
    },
    /// A value breaks its simple type.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// Text where only elements are allowed.
    #[error("text is not allowed here, only elements")]
    Text,
    /// Child elements where a plain value is expected.
    #[error("child elements are not allowed here, only text")]
    ChildElements,
    /// An attribute the schema does not declare.
    #[error("attribute `{name}` is not allowed here")]
    Attribute {
        /// The attribute.
        name: String,
    },
    /// A required attribute is absent.
    #[error("required attribute is missing")]
    MissingAttribute,
    /// An element with a `fixed` value holds another value.
    #[error("must be \"{expected}\" (fixed by the schema), found \"{found}\"")]
    Fixed {
        /// The fixed value.
        expected: &'static str,
        /// The value found.
        found: String,
    },
    /// A business rule checked before sending (see [`crate::Rule`]).
    #[error(transparent)]
    Rule(#[from] crate::Rule),
}

fn found_note(found: &Option<String>) -> String {
    match found {
        Some(f) => format!(" (found `{f}`)"),
        None => String::new(),
    }
}

/// The error type of this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not well-formed XML (or not UTF-8).
    #[error("not well-formed XML: {0}")]
    Xml(String),
    /// Well-formed XML, but not an FA(3) invoice (another namespace or root element).
    #[error("{0}")]
    WrongDocument(WrongDocument),
    /// The document breaks the FA(3) schema or a rule, at `path`.
    #[error("{path}: {problem}")]
    Invalid {
        /// Where.
        path: FieldPath,
        /// What.
        problem: Problem,
    },
}

/// A document of another kind than FA(3).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WrongDocument {
    /// An FA(2) invoice (namespace `http://crd.gov.pl/wzor/2023/06/29/12648/`).
    #[error("this is an FA(2) invoice; ksef-fa reads and writes FA(3) (namespace {ns}) only", ns = crate::NAMESPACE)]
    Fa2,
    /// An FA_RR invoice (VAT RR farmer invoices).
    #[error("this is an FA_RR invoice; ksef-fa reads and writes FA(3) only")]
    FaRr,
    /// A PEF (UBL / Peppol) document.
    #[error("this is a PEF (UBL) document `{root}`; ksef-fa reads and writes FA(3) only")]
    Pef {
        /// Root element local name (Invoice, CreditNote).
        root: String,
    },
    /// Anything else.
    #[error("root element is `{{{namespace}}}{root}`, expected `Faktura` in namespace {ns}", ns = crate::NAMESPACE)]
    Other {
        /// Root namespace ("" when none).
        namespace: String,
        /// Root local name.
        root: String,
    },
}

impl Error {
    pub(crate) fn invalid(problem: Problem) -> Self {
        Self::Invalid {
            path: FieldPath::default(),
            problem,
        }
    }
    /// Prefixes the path with one segment (used while unwinding out of nested elements).
    pub(crate) fn at(mut self, name: &'static str, index: Option<usize>) -> Self {
        if let Self::Invalid { path, .. } = &mut self {
            path.0.insert(
                0,
                Segment {
                    name: Cow::Borrowed(name),
                    index,
                },
            );
        }
        self
    }
    /// The field path, for schema and rule errors.
    pub fn path(&self) -> Option<&FieldPath> {
        match self {
            Self::Invalid { path, .. } => Some(path),
            _ => None,
        }
    }
    /// The problem, for schema and rule errors.
    pub fn problem(&self) -> Option<&Problem> {
        match self {
            Self::Invalid { problem, .. } => Some(problem),
            _ => None,
        }
    }
}
