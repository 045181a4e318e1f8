//! The simulator's state. Everything lives in one [`State`] behind a mutex; records are plain data
//! (no handles, no closures) so that a persistent store (SQLite under `--state-dir`) can later
//! load and save them as they are.

use std::collections::HashMap;
use std::net::Ipv4Addr;

use ksef_crypto::encryption::SessionKey;
use ksef_model::form::FormCode;
use time::OffsetDateTime;

use crate::ids::IdRng;
use crate::tracked::{Area, Keyed, Rows};

/// `(type, value)` of a context or subject identifier, e.g. `("Nip", "5265877635")`.
pub(crate) type Ident = (String, String);

/// A status object `{code, description, details?}`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Status {
    pub code: i32,
    pub description: String,
    pub details: Vec<String>,
}

impl Status {
    pub fn new(code: i32, description: &str) -> Self {
        Status {
            code,
            description: description.to_owned(),
            details: Vec::new(),
        }
    }

    pub fn with_detail(mut self, d: impl Into<String>) -> Self {
        self.details.push(d.into());
        self
    }

    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({"code": self.code, "description": self.description});
        if !self.details.is_empty() {
            v["details"] = serde_json::json!(self.details);
        }
        v
    }
}

/// An issued challenge.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Challenge {
    pub created: OffsetDateTime,
    pub timestamp_ms: i64,
    pub used: bool,
}

/// How the subject authenticated (the spec's `AuthenticationMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum AuthMethod {
    QualifiedSeal,
    QualifiedSignature,
    /// A KSeF certificate issued by the simulator's CA.
    InternalCertificate,
    /// A Peppol service provider's certificate (a `PeppolId` context).
    PeppolSignature,
    Token,
}

impl AuthMethod {
    pub fn legacy_name(self) -> &'static str {
        match self {
            AuthMethod::QualifiedSeal => "QualifiedSeal",
            AuthMethod::QualifiedSignature => "QualifiedSignature",
            AuthMethod::InternalCertificate => "InternalCertificate",
            AuthMethod::PeppolSignature => "PeppolSignature",
            AuthMethod::Token => "Token",
        }
    }

    /// `authenticationMethodInfo`. The spec's only example is the seal's
    /// (`XadesSignature`, `xades.qualified-seal`, "Pieczęć kwalifikowana"); Inferred: the other
    /// codes follow its `category.kebab-name` pattern and the display names are the
    /// descriptions of the `AuthenticationMethod` enum.
    pub fn info(self) -> serde_json::Value {
        let (category, code, name) = match self {
            AuthMethod::QualifiedSeal => (
                "XadesSignature",
                "xades.qualified-seal",
                "Pieczęć kwalifikowana",
            ),
            AuthMethod::QualifiedSignature => (
                "XadesSignature",
                "xades.qualified-signature",
                "Podpis kwalifikowany",
            ),
            AuthMethod::InternalCertificate => (
                "XadesSignature",
                "xades.internal-certificate",
                "Certyfikat KSeF",
            ),
            AuthMethod::PeppolSignature => (
                "XadesSignature",
                "xades.peppol-signature",
                "Podpis dostawcy usług Peppol",
            ),
            AuthMethod::Token => ("Token", "token.ksef", "Token KSeF"),
        };
        serde_json::json!({"category": category, "code": code, "displayName": name})
    }
}

/// An authentication operation (`AU` reference) and the tokens issued from it.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct AuthOp {
    pub reference: String,
    pub started: OffsetDateTime,
    pub method: AuthMethod,
    pub context: Ident,
    pub subject: Ident,
    pub status: Status,
    pub redeemed: bool,
    /// The refresh token's `jti` (tokens are invalidated by revoking the operation).
    pub refresh_jti: Option<String>,
    pub refresh_valid_until: Option<OffsetDateTime>,
    pub last_refresh: Option<OffsetDateTime>,
    pub revoked: bool,
    /// SHA-256 (Base64) of the signed authentication document, for UPOs.
    pub document_hash: String,
    /// The KSeF token used (token authentication), for UPOs and token visibility.
    pub token_ref: Option<String>,
    /// The token's fixed permission set (token authentication).
    pub token_permissions: Option<Vec<String>>,
    /// The authorization policy's allowed IPv4 addresses as inclusive ranges (single
    /// addresses, ranges and masks alike); `None`: any address. Access and refresh tokens of
    /// this operation are refused (403 `ip-not-allowed`) from any other address.
    #[serde(default)]
    pub allowed_ips: Option<Vec<(Ipv4Addr, Ipv4Addr)>>,
}

/// A KSeF token (only its hash is kept).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct KsefToken {
    pub reference: String,
    pub secret_hash: String,
    pub author: Ident,
    pub context: Ident,
    pub description: String,
    pub permissions: Vec<String>,
    pub created: OffsetDateTime,
    pub last_use: Option<OffsetDateTime>,
    /// `Pending`, `Active`, `Revoking`, `Revoked` or `Failed`.
    pub status: String,
}

/// A person created by `/testdata/person`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Person {
    pub nip: String,
    pub pesel: String,
    #[allow(dead_code)] // EnforcementOperations is a later slice
    pub is_bailiff: bool,
    pub is_deceased: bool,
}

/// A subject created by `/testdata/subject`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Subject {
    pub nip: String,
    #[allow(dead_code)] // subject roles are a later slice
    pub subject_type: String,
    pub subunits: Vec<String>,
}

/// One granted permission.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Grant {
    pub context: Ident,
    pub subject: Ident,
    pub permission: String,
    /// Id, kind, author, description, details… (permissions.rs).
    pub meta: crate::permissions::GrantMeta,
}

/// An invoice sent in a session.
/// `xml` and `upo` are stored beside the record (persist.rs), not in its JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Invoice {
    pub ordinal: u32,
    pub reference: String,
    pub invoice_hash: String,
    pub received: OffsetDateTime,
    pub status: Status,
    pub extensions: Option<serde_json::Value>,
    pub ksef_number: Option<String>,
    pub invoice_number: Option<String>,
    pub issue_date: Option<time::Date>,
    pub seller_nip: Option<String>,
    pub acquisition: Option<OffsetDateTime>,
    pub permanent_storage: Option<OffsetDateTime>,
    pub offline: bool,
    /// The decrypted XML (kept from receipt, so that a restart under `--state-dir` can finish
    /// processing an acknowledged invoice; served only once accepted).
    #[serde(skip)]
    pub xml: Option<Vec<u8>>,
    /// The signed invoice UPO.
    #[serde(skip)]
    pub upo: Option<Vec<u8>>,
    /// Download token of the invoice UPO.
    pub upo_token: Option<String>,
    /// The file name inside the batch archive (`invoiceFileName`; batch sessions only).
    pub file_name: Option<String>,
    /// A technical correction (ksef-api.md §11.4): `hashOfCorrectedInvoice`, the SHA-256
    /// (Base64) of the rejected offline invoice this one corrects. Absent in records written
    /// before it existed (`serde(default)`), so no schema version change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corrects: Option<String>,
}

/// One page of a session UPO.
/// `xml` is stored beside the record (persist.rs).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct UpoPage {
    pub reference: String,
    #[serde(skip)]
    pub xml: Vec<u8>,
    pub token: String,
}

/// An online or batch session. `invoices` and `upo_pages` are stored as rows of their own
/// (persist.rs), not in the session's JSON.
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct Session {
    pub reference: String,
    pub form: FormCode,
    /// `None` when the wrapped key did not unwrap (session status 415).
    #[serde(with = "crate::persist::session_key")]
    pub key: Option<SessionKey>,
    pub status: Status,
    pub created: OffsetDateTime,
    pub updated: OffsetDateTime,
    pub valid_until: OffsetDateTime,
    pub auth_ref: String,
    pub context: Ident,
    /// Who opened the session.
    pub subject: Ident,
    #[serde(skip)]
    pub invoices: Rows<Invoice>,
    #[serde(skip)]
    pub upo_pages: Vec<UpoPage>,
    /// `Some` for a batch session: the declared archive and its uploaded parts.
    pub batch: Option<crate::batch::BatchData>,
}

/// Where a presigned download URL points.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) enum Download {
    InvoiceUpo { session: String, ordinal: u32 },
    SessionUpo { session: String, page: usize },
}

/// All state.
pub(crate) struct State {
    pub rng: IdRng,
    pub challenges: Keyed<Challenge>,
    pub auths: Keyed<AuthOp>,
    pub persons: Area<Vec<Person>>,
    pub subjects: Area<Vec<Subject>>,
    pub grants: Area<Vec<Grant>>,
    pub tokens: Area<Vec<KsefToken>>,
    /// NIP → (attachments allowed, revocation date).
    pub attachments: Area<HashMap<String, (bool, Option<String>)>>,
    /// Contexts whose authentication is blocked (auth status 480).
    pub blocked: Area<Vec<Ident>>,
    pub sessions: Keyed<Session>,
    /// KSeF number → (session reference, invoice ordinal).
    pub by_ksef_number: HashMap<String, (String, u32)>,
    /// (seller NIP, RodzajFaktury, P_2) → (KSeF number, session reference).
    pub duplicates: HashMap<(String, String, String), (String, String)>,
    /// Presigned download token → resource (with expiry).
    pub downloads: HashMap<String, (Download, OffsetDateTime)>,
    /// KSeF certificates, limit overrides, Peppol providers (certificates.rs).
    pub certs: Area<crate::certificates::CertState>,
    /// Invoice retrieval: metadata cache, exports and their parts.
    pub retrieval: Area<crate::invoices::RetrievalState>,
    /// Permission operations and entity roles (permissions.rs).
    pub perm: Area<crate::permissions::PermState>,
    /// Collective identifiers (collective.rs).
    pub collective: Area<crate::collective::CollectiveState>,
}

impl State {
    pub fn new(seed: Option<u64>) -> Self {
        State {
            rng: IdRng::new(seed),
            challenges: Keyed::default(),
            auths: Keyed::default(),
            persons: Area::new(Vec::new()),
            subjects: Area::new(Vec::new()),
            grants: Area::new(Vec::new()),
            tokens: Area::new(Vec::new()),
            attachments: Area::new(HashMap::new()),
            blocked: Area::new(Vec::new()),
            sessions: Keyed::default(),
            by_ksef_number: HashMap::new(),
            duplicates: HashMap::new(),
            downloads: HashMap::new(),
            certs: Area::new(Default::default()),
            retrieval: Area::new(Default::default()),
            perm: Area::new(Default::default()),
            collective: Area::new(Default::default()),
        }
    }

    /// Whether `subject` owns `context`: the same NIP, or a PESEL linked to the NIP by
    /// `/testdata/person`.
    pub fn is_owner(&self, context: &Ident, subject: &Ident) -> bool {
        if context.0 != "Nip" {
            return false;
        }
        match subject.0.as_str() {
            "Nip" => subject.1 == context.1,
            "Pesel" => self
                .persons
                .iter()
                .any(|p| p.pesel == subject.1 && p.nip == context.1),
            _ => false,
        }
    }

    /// The permissions `subject` holds in `context`: the owner holds all but `VatUeManage`,
    /// plus every grant that applies (see `permissions::effective`).
    pub fn permissions(&self, context: &Ident, subject: &Ident) -> Vec<String> {
        crate::permissions::effective(self, context, subject)
    }
}
