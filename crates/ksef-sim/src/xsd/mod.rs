//! A small XML Schema 1.0 validator for the invoice forms whose schemas the simulator has no
//! typed model of (FA(2), FA_RR(1), PEF(3), PEF_KOR(3)).
//!
//! The official XSDs (embedded from `spec/`) are compiled once, on first use, into a grammar:
//! element declarations, complex types (sequence/choice content models with occurrence bounds,
//! simple and complex content derived by extension or restriction, attributes, wildcards with
//! their namespace constraint and `processContents`) and simple types (restriction facets,
//! unions, lists, the built-in types these schemas use). Content models are matched without
//! backtracking: XSD's Unique Particle Attribution guarantees that the next child element
//! selects at most one particle, so each particle decides from its FIRST set whether it takes
//! the next child. Patterns are translated to the `regex` crate (see `pattern`).
//!
//! Not supported (the embedded schemas do not use them; compiling one fails): `xsd:all`,
//! `xsd:group`, `xsd:attributeGroup`, identity constraints, substitution groups, and
//! `xsi:type` / `xsi:nil` in documents (rejected).

mod compile;
mod pattern;
#[cfg(test)]
mod tests;
mod validate;
mod value;

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use ksef_model::form::FormCode;

pub(crate) use value::WhiteSpace;
use value::{Builtin, Value};

/// The XML Schema namespace.
const XS: &str = "http://www.w3.org/2001/XMLSchema";
/// The XML Schema instance namespace.
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// A compiled schema: what validation needs and nothing of the XSD documents.
#[derive(Debug, Default)]
pub(crate) struct Schema {
    /// Global element declarations by (namespace, local name).
    globals: HashMap<(String, String), usize>,
    /// Global attribute declarations (for strict and lax attribute wildcards).
    global_attrs: HashMap<(String, String), AttrUse>,
    elems: Vec<ElementDecl>,
    complex: Vec<ComplexType>,
    simple: Vec<SimpleType>,
    /// Element names interned as symbols, by namespace then local name.
    syms: HashMap<String, HashMap<String, u32>>,
    /// Local names of the symbols, for messages.
    sym_names: Vec<String>,
}

#[derive(Debug, Clone)]
struct ElementDecl {
    sym: u32,
    ty: TypeRef,
    /// The fixed value, as its value-space key.
    fixed: Option<String>,
    is_abstract: bool,
}

#[derive(Debug, Clone, Copy)]
enum TypeRef {
    Simple(usize),
    Complex(usize),
    /// `xsd:anyType`: any attributes and content, known elements inside validated (lax).
    Any,
}

#[derive(Debug, Clone)]
struct AttrUse {
    ns: String,
    name: String,
    required: bool,
    prohibited: bool,
    ty: usize,
    /// The fixed value, as its value-space key.
    fixed: Option<String>,
}

#[derive(Debug, Clone)]
struct ComplexType {
    attrs: Vec<AttrUse>,
    any_attr: Option<Wildcard>,
    content: Content,
    is_abstract: bool,
}

#[derive(Debug, Clone)]
enum Content {
    Empty,
    Simple(usize),
    Elements { particle: Particle, mixed: bool },
}

#[derive(Debug, Clone)]
struct Particle {
    min: u32,
    max: u32,
    term: Term,
    /// Whether the term itself matches the empty sequence.
    term_nullable: bool,
    /// Symbols that can start the term (sorted).
    first: Vec<u32>,
    /// Wildcards that can start the term.
    first_any: Vec<Wildcard>,
}

#[derive(Debug, Clone)]
enum Term {
    Element(usize),
    Any(Wildcard),
    Seq(Vec<Particle>),
    Choice(Vec<Particle>),
}

#[derive(Debug, Clone, PartialEq)]
struct Wildcard {
    ns: NsSet,
    process: Process,
}

#[derive(Debug, Clone, PartialEq)]
enum NsSet {
    Any,
    /// `##other`: any namespace but this one, and not unqualified names.
    Not(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Process {
    Strict,
    Lax,
    Skip,
}

impl Wildcard {
    fn allows(&self, ns: &str) -> bool {
        match &self.ns {
            NsSet::Any => true,
            NsSet::Not(t) => !ns.is_empty() && ns != t,
            NsSet::List(l) => l.iter().any(|n| n == ns),
        }
    }
}

#[derive(Debug, Clone)]
struct SimpleType {
    /// The type's name (or its base's) for messages.
    name: String,
    variety: Variety,
    ws: WhiteSpace,
    facets: Facets,
    /// Derived from `xsd:ID` (values unique in a document).
    is_id: bool,
}

#[derive(Debug, Clone)]
enum Variety {
    Atomic(Builtin),
    List(usize),
    Union(Vec<usize>),
}

#[derive(Debug, Clone, Default)]
struct Facets {
    /// One entry per derivation step that lists values: (the values, their value-space keys).
    enums: Vec<(Vec<String>, HashSet<String>)>,
    /// One entry per derivation step with patterns: a value must match one of each step's.
    patterns: Vec<Vec<(String, regex::Regex)>>,
    length: Option<usize>,
    min_length: Option<usize>,
    max_length: Option<usize>,
    total_digits: Option<usize>,
    fraction_digits: Option<usize>,
    min_inclusive: Vec<(String, Value)>,
    max_inclusive: Vec<(String, Value)>,
    min_exclusive: Vec<(String, Value)>,
    max_exclusive: Vec<(String, Value)>,
}

/// The FA base schemas, imported by http URL (mapped to these files by their last segment).
const FA_BASE: [(&str, &str); 3] = [
    (
        "StrukturyDanych_v10-0E.xsd",
        include_str!("../../../../spec/fa/StrukturyDanych_v10-0E.xsd"),
    ),
    (
        "ElementarneTypyDanych_v10-0E.xsd",
        include_str!("../../../../spec/fa/ElementarneTypyDanych_v10-0E.xsd"),
    ),
    (
        "KodyKrajow_v10-0E.xsd",
        include_str!("../../../../spec/fa/KodyKrajow_v10-0E.xsd"),
    ),
];

const FA2: (&str, &str) = (
    "schemat_FA(2)_v1-0E.xsd",
    include_str!("../../../../spec/fa/schemat_FA(2)_v1-0E.xsd"),
);
const FA_RR: (&str, &str) = (
    "schemat_FA_RR(1)_v1-1E.xsd",
    include_str!("../../../../spec/fa/schemat_FA_RR(1)_v1-1E.xsd"),
);

macro_rules! pef_files {
    ($($name:literal),* $(,)?) => {
        [$(($name, include_str!(concat!("../../../../spec/pef/", $name)))),*]
    };
}

/// The UBL 2.1 modules and Polish extensions PEF(3) and PEF_KOR(3) import (`./bazowe/...`).
const PEF_BASE: [(&str, &str); 17] = pef_files!(
    "20241206_PEFPL-CommonAggregateComponents-2.1-v1.4.34.xsd",
    "20241206_PEFPL-CommonBasicComponents-2.1-v1.4.34.xsd",
    "CCTS_CCT_SchemaModule-2.1.xsd",
    "UBL-CommonAggregateComponents-2.1.xsd",
    "UBL-CommonBasicComponents-2.1.xsd",
    "UBL-CommonExtensionComponents-2.1.xsd",
    "UBL-CommonSignatureComponents-2.1.xsd",
    "UBL-ExtensionContentDataType-2.1.xsd",
    "UBL-QualifiedDataTypes-2.1.xsd",
    "UBL-SignatureAggregateComponents-2.1.xsd",
    "UBL-SignatureBasicComponents-2.1.xsd",
    "UBL-UnqualifiedDataTypes-2.1.xsd",
    "UBL-XAdESv132-2.1.xsd",
    "UBL-XAdESv141-2.1.xsd",
    "UBL-xmldsig-core-schema-2.1.xsd",
    "commontypes.xsd",
    "isotypes.xsd",
);
const PEF: (&str, &str) = (
    "Schemat_PEF(3)_v2-1.xsd",
    include_str!("../../../../spec/pef/Schemat_PEF(3)_v2-1.xsd"),
);
const PEF_KOR: (&str, &str) = (
    "Schemat_PEF_KOR(3)_v2-1.xsd",
    include_str!("../../../../spec/pef/Schemat_PEF_KOR(3)_v2-1.xsd"),
);

/// Which embedded schema validates a form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    Fa2,
    FaRr1,
    Pef3,
    PefKor3,
}

impl Form {
    /// The embedded schema of a session's form, if the engine validates it.
    pub(crate) fn of(form: &FormCode) -> Option<Form> {
        Some(match form {
            FormCode::Fa2 => Form::Fa2,
            FormCode::FaRr1 => Form::FaRr1,
            FormCode::Pef3 => Form::Pef3,
            FormCode::PefKor3 => Form::PefKor3,
            _ => return None,
        })
    }

    /// The compiled schema (compiled on first use; `Err` if it does not compile, a defect the
    /// unit tests catch).
    pub(crate) fn schema(self) -> Result<&'static Schema, String> {
        static CELLS: [OnceLock<Result<Schema, String>>; 4] = [
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
            OnceLock::new(),
        ];
        let (i, main, base): (usize, (&str, &str), &[(&str, &str)]) = match self {
            Form::Fa2 => (0, FA2, &FA_BASE),
            Form::FaRr1 => (1, FA_RR, &FA_BASE),
            Form::Pef3 => (2, PEF, &PEF_BASE),
            Form::PefKor3 => (3, PEF_KOR, &PEF_BASE),
        };
        CELLS[i]
            .get_or_init(|| {
                let mut files = vec![main];
                files.extend_from_slice(base);
                compile::compile(&files)
            })
            .as_ref()
            .map_err(|e| format!("wewnętrzny błąd kompilacji schematu {}: {e}", main.0))
    }
}
