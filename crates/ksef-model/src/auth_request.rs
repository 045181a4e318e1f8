//! The unsigned `AuthTokenRequest` XML document (ksef-api.md §4.2): a builder that writes the exact
//! bytes to be XAdES-signed, and a parser (used by the simulator) that checks the namespace.
//!
//! ```
//! use ksef_model::auth_request::{AuthTokenRequest, ContextIdentifier, SubjectIdentifierType};
//! use ksef_model::ids::Nip;
//!
//! let req = AuthTokenRequest::builder(
//!     "20250604-CR-461EA5B000-537A6BA15D-D7".parse()?,
//!     ContextIdentifier::Nip(Nip::new("5265877635")?),
//! )
//! .subject_identifier_type(SubjectIdentifierType::CertificateSubject)
//! .build()?;
//! let xml = req.to_xml()?;
//! assert_eq!(
//!     String::from_utf8(xml.clone())?,
//!     "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
//!      <AuthTokenRequest xmlns=\"http://ksef.mf.gov.pl/auth/token/2.0\">\
//!      <Challenge>20250604-CR-461EA5B000-537A6BA15D-D7</Challenge>\
//!      <ContextIdentifier><Nip>5265877635</Nip></ContextIdentifier>\
//!      <SubjectIdentifierType>certificateSubject</SubjectIdentifierType>\
//!      </AuthTokenRequest>"
//! );
//! assert_eq!(AuthTokenRequest::parse(&xml)?, req);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::ids::{IdError, InternalId, Nip, NipVatUe, PeppolId, ReferenceNumber, ReferenceType};
use crate::upo::dom::{self, Element, XMLDSIG_NS};

/// Maximum number of entries of each kind in `AllowedIps` (XSD `maxOccurs="10"`).
pub const MAX_ALLOWED_IPS_PER_KIND: usize = 10;

/// Errors building, writing or parsing an `AuthTokenRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuthRequestError {
    /// The challenge is not an authentication challenge (`…-CR-…`).
    #[error(
        "challenge {0} has type code {1}, expected CR: pass the challenge returned by POST /auth/challenge"
    )]
    NotAChallenge(String, String),
    /// More than 10 entries of one kind in `AllowedIps`.
    #[error("AuthorizationPolicy allows at most 10 {kind} entries, got {count}")]
    TooManyIps {
        /// `Ip4Address`, `Ip4Range` or `Ip4Mask`.
        kind: &'static str,
        /// Number given.
        count: usize,
    },
    /// An IPv4 address, range or mask is malformed.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidIp {
        /// `Ip4Address`, `Ip4Range` or `Ip4Mask`.
        kind: &'static str,
        /// The rejected text.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// An identifier inside the document is invalid.
    #[error("invalid {element}: {source}")]
    Identifier {
        /// Element name.
        element: &'static str,
        /// The identifier error.
        source: IdError,
    },
    /// The document is not well-formed XML.
    #[error("AuthTokenRequest is not well-formed XML: {0}")]
    Xml(String),
    /// The root element or its namespace is wrong.
    #[error(
        "expected root element AuthTokenRequest in namespace http://ksef.mf.gov.pl/auth/token/2.0 or …/2.1, found {0}"
    )]
    WrongRoot(String),
    /// The document structure does not follow the schema.
    #[error("AuthTokenRequest does not match the schema: {0}")]
    Structure(String),
    /// Writing the XML failed (cannot happen when writing to memory).
    #[error("writing AuthTokenRequest XML failed: {0}")]
    Write(String),
}

/// The schema (namespace) version of the document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum AuthSchemaVersion {
    /// `http://ksef.mf.gov.pl/auth/token/2.0` — what the reference clients send; the default.
    #[default]
    V2_0,
    /// `http://ksef.mf.gov.pl/auth/token/2.1` — accepted since API 2.5.0 (stricter IPv4 patterns).
    V2_1,
}

impl AuthSchemaVersion {
    /// The XML namespace of this version.
    pub fn namespace(self) -> &'static str {
        match self {
            AuthSchemaVersion::V2_0 => "http://ksef.mf.gov.pl/auth/token/2.0",
            AuthSchemaVersion::V2_1 => "http://ksef.mf.gov.pl/auth/token/2.1",
        }
    }

    /// The version for a namespace URI, if it is one of ours.
    pub fn from_namespace(ns: &str) -> Option<Self> {
        [AuthSchemaVersion::V2_0, AuthSchemaVersion::V2_1]
            .into_iter()
            .find(|v| v.namespace() == ns)
    }
}

/// The context the client authenticates into.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ContextIdentifier {
    /// A taxpayer identified by NIP.
    Nip(Nip),
    /// A subunit identified by its internal ID.
    InternalId(InternalId),
    /// A composite NIP + EU VAT context.
    NipVatUe(NipVatUe),
    /// A Peppol service provider.
    PeppolId(PeppolId),
}

impl ContextIdentifier {
    /// The XML element name (`Nip`, `InternalId`, `NipVatUe`, `PeppolId`), which is also the JSON
    /// `type` of the API's `AuthenticationContextIdentifier`.
    pub fn element_name(&self) -> &'static str {
        match self {
            ContextIdentifier::Nip(_) => "Nip",
            ContextIdentifier::InternalId(_) => "InternalId",
            ContextIdentifier::NipVatUe(_) => "NipVatUe",
            ContextIdentifier::PeppolId(_) => "PeppolId",
        }
    }

    /// The identifier value.
    pub fn value(&self) -> &str {
        match self {
            ContextIdentifier::Nip(v) => v.as_str(),
            ContextIdentifier::InternalId(v) => v.as_str(),
            ContextIdentifier::NipVatUe(v) => v.as_str(),
            ContextIdentifier::PeppolId(v) => v.as_str(),
        }
    }

    /// Parses `value` as the identifier kind named by `element`. NIP checksums and internal-ID
    /// check digits are not verified (the XSD patterns are the check; KSeF TEST accepts bad NIP
    /// checksums).
    pub fn from_parts(element: &str, value: &str) -> Result<Self, AuthRequestError> {
        let id = |element: &'static str| {
            move |source: IdError| AuthRequestError::Identifier { element, source }
        };
        Ok(match element {
            "Nip" => ContextIdentifier::Nip(Nip::parse_lenient(value).map_err(id("Nip"))?),
            "InternalId" => ContextIdentifier::InternalId(
                InternalId::parse_lenient(value).map_err(id("InternalId"))?,
            ),
            "NipVatUe" => ContextIdentifier::NipVatUe(value.parse().map_err(id("NipVatUe"))?),
            "PeppolId" => ContextIdentifier::PeppolId(value.parse().map_err(id("PeppolId"))?),
            other => {
                return Err(AuthRequestError::Structure(format!(
                    "ContextIdentifier must contain Nip, InternalId, NipVatUe or PeppolId, found {other}"
                )));
            }
        })
    }
}

impl From<&ContextIdentifier> for crate::api::AuthenticationContextIdentifier {
    fn from(c: &ContextIdentifier) -> Self {
        use crate::api::AuthenticationContextIdentifierType as T;
        crate::api::AuthenticationContextIdentifier {
            r#type: match c {
                ContextIdentifier::Nip(_) => T::Nip,
                ContextIdentifier::InternalId(_) => T::InternalId,
                ContextIdentifier::NipVatUe(_) => T::NipVatUe,
                ContextIdentifier::PeppolId(_) => T::PeppolId,
            },
            value: c.value().to_owned(),
        }
    }
}

impl TryFrom<&crate::api::AuthenticationContextIdentifier> for ContextIdentifier {
    type Error = AuthRequestError;
    /// Validates the API's `{type, value}` pair (unknown types are an error).
    fn try_from(a: &crate::api::AuthenticationContextIdentifier) -> Result<Self, Self::Error> {
        ContextIdentifier::from_parts(a.r#type.as_str(), &a.value)
    }
}

/// How KSeF identifies the authenticating subject from the signing certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SubjectIdentifierType {
    /// `certificateSubject`: NIP/PESEL from the certificate subject.
    #[default]
    CertificateSubject,
    /// `certificateFingerprint`: the SHA-256 fingerprint of the certificate.
    CertificateFingerprint,
}

impl SubjectIdentifierType {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            SubjectIdentifierType::CertificateSubject => "certificateSubject",
            SubjectIdentifierType::CertificateFingerprint => "certificateFingerprint",
        }
    }
}

/// An inclusive IPv4 range `a.b.c.d-e.f.g.h` (start ≤ end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ip4Range {
    start: Ipv4Addr,
    end: Ipv4Addr,
}

impl Ip4Range {
    /// A range; fails if `start > end`.
    pub fn new(start: Ipv4Addr, end: Ipv4Addr) -> Result<Self, AuthRequestError> {
        if start > end {
            return Err(AuthRequestError::InvalidIp {
                kind: "Ip4Range",
                value: format!("{start}-{end}"),
                reason: "the first address is greater than the last",
            });
        }
        Ok(Ip4Range { start, end })
    }
    /// First address.
    pub fn start(&self) -> Ipv4Addr {
        self.start
    }
    /// Last address (inclusive).
    pub fn end(&self) -> Ipv4Addr {
        self.end
    }
    /// Whether `ip` lies in the range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        self.start <= ip && ip <= self.end
    }
}

impl fmt::Display for Ip4Range {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.start, self.end)
    }
}

fn parse_ip(kind: &'static str, whole: &str, part: &str) -> Result<Ipv4Addr, AuthRequestError> {
    // std rejects leading zeros and out-of-range octets, matching the XSD pattern.
    part.parse().map_err(|_| AuthRequestError::InvalidIp {
        kind,
        value: whole.to_owned(),
        reason: "not a dotted-quad IPv4 address (four decimal octets 0-255, no leading zeros)",
    })
}

impl FromStr for Ip4Range {
    type Err = AuthRequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (a, b) = s
            .split_once('-')
            .ok_or_else(|| AuthRequestError::InvalidIp {
                kind: "Ip4Range",
                value: s.to_owned(),
                reason: "expected two addresses separated by '-'",
            })?;
        Ip4Range::new(parse_ip("Ip4Range", s, a)?, parse_ip("Ip4Range", s, b)?)
    }
}

/// An IPv4 network `a.b.c.d/nn` (prefix length 0–32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ip4Mask {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ip4Mask {
    /// A network; fails if `prefix > 32`. The address is kept as given (host bits are allowed,
    /// as in the XSD).
    pub fn new(addr: Ipv4Addr, prefix: u8) -> Result<Self, AuthRequestError> {
        if prefix > 32 {
            return Err(AuthRequestError::InvalidIp {
                kind: "Ip4Mask",
                value: format!("{addr}/{prefix}"),
                reason: "prefix length must be 0-32",
            });
        }
        Ok(Ip4Mask { addr, prefix })
    }
    /// The address part.
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }
    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    /// Whether `ip` lies in the network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(self.prefix))
            .unwrap_or(0);
        (u32::from(ip) & mask) == (u32::from(self.addr) & mask)
    }
}

impl fmt::Display for Ip4Mask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl FromStr for Ip4Mask {
    type Err = AuthRequestError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| AuthRequestError::InvalidIp {
            kind: "Ip4Mask",
            value: s.to_owned(),
            reason,
        };
        let (a, p) = s
            .split_once('/')
            .ok_or_else(|| bad("expected address/prefix-length"))?;
        let ok_digits = !p.is_empty()
            && p.len() <= 2
            && p.bytes().all(|b| b.is_ascii_digit())
            && !(p.len() == 2 && p.starts_with('0'));
        let prefix: u8 = if ok_digits { p.parse().ok() } else { None }
            .ok_or_else(|| bad("prefix length must be 0-32 without leading zeros"))?;
        Ip4Mask::new(parse_ip("Ip4Mask", s, a)?, prefix)
    }
}

/// `AuthorizationPolicy/AllowedIps`: the IPv4 addresses the issued tokens may be used from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct AllowedIps {
    /// Single addresses (`Ip4Address`, ≤ 10).
    pub ip4_addresses: Vec<Ipv4Addr>,
    /// Inclusive ranges (`Ip4Range`, ≤ 10).
    pub ip4_ranges: Vec<Ip4Range>,
    /// Networks (`Ip4Mask`, ≤ 10).
    pub ip4_masks: Vec<Ip4Mask>,
}

impl AllowedIps {
    fn validate(&self) -> Result<(), AuthRequestError> {
        for (kind, count) in [
            ("Ip4Address", self.ip4_addresses.len()),
            ("Ip4Range", self.ip4_ranges.len()),
            ("Ip4Mask", self.ip4_masks.len()),
        ] {
            if count > MAX_ALLOWED_IPS_PER_KIND {
                return Err(AuthRequestError::TooManyIps { kind, count });
            }
        }
        Ok(())
    }

    /// Whether `ip` is allowed by any entry.
    pub fn allows(&self, ip: Ipv4Addr) -> bool {
        self.ip4_addresses.contains(&ip)
            || self.ip4_ranges.iter().any(|r| r.contains(ip))
            || self.ip4_masks.iter().any(|m| m.contains(ip))
    }
}

/// The unsigned `AuthTokenRequest` document.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthTokenRequest {
    /// Namespace version.
    pub version: AuthSchemaVersion,
    /// The challenge from `POST /auth/challenge` (type code `CR`).
    pub challenge: ReferenceNumber,
    /// The context to authenticate into.
    pub context: ContextIdentifier,
    /// How the subject is identified from the certificate.
    pub subject_identifier_type: SubjectIdentifierType,
    /// Optional IP restriction for the issued tokens.
    pub allowed_ips: Option<AllowedIps>,
}

/// Builder for [`AuthTokenRequest`]; see [`AuthTokenRequest::builder`].
#[derive(Debug, Clone)]
pub struct AuthTokenRequestBuilder {
    req: AuthTokenRequest,
}

impl AuthTokenRequestBuilder {
    /// Sets the schema version (default 2.0).
    pub fn version(mut self, version: AuthSchemaVersion) -> Self {
        self.req.version = version;
        self
    }
    /// Sets the subject identifier type (default `certificateSubject`).
    pub fn subject_identifier_type(mut self, t: SubjectIdentifierType) -> Self {
        self.req.subject_identifier_type = t;
        self
    }
    /// Allows a single IPv4 address (adds an `AuthorizationPolicy`).
    pub fn allow_ip(mut self, ip: Ipv4Addr) -> Self {
        self.policy().ip4_addresses.push(ip);
        self
    }
    /// Allows an IPv4 range.
    pub fn allow_range(mut self, range: Ip4Range) -> Self {
        self.policy().ip4_ranges.push(range);
        self
    }
    /// Allows an IPv4 network.
    pub fn allow_mask(mut self, mask: Ip4Mask) -> Self {
        self.policy().ip4_masks.push(mask);
        self
    }
    /// Replaces the whole IP policy (`None` removes `AuthorizationPolicy`).
    pub fn allowed_ips(mut self, ips: Option<AllowedIps>) -> Self {
        self.req.allowed_ips = ips;
        self
    }
    fn policy(&mut self) -> &mut AllowedIps {
        self.req.allowed_ips.get_or_insert_with(AllowedIps::default)
    }
    /// Validates and returns the request.
    pub fn build(self) -> Result<AuthTokenRequest, AuthRequestError> {
        self.req.validate()?;
        Ok(self.req)
    }
}

fn write_err(e: impl fmt::Display) -> AuthRequestError {
    AuthRequestError::Write(e.to_string())
}

impl AuthTokenRequest {
    /// Starts a builder with the two required values.
    pub fn builder(
        challenge: ReferenceNumber,
        context: ContextIdentifier,
    ) -> AuthTokenRequestBuilder {
        AuthTokenRequestBuilder {
            req: AuthTokenRequest {
                version: AuthSchemaVersion::default(),
                challenge,
                context,
                subject_identifier_type: SubjectIdentifierType::default(),
                allowed_ips: None,
            },
        }
    }

    /// Checks the challenge type and the IP list sizes.
    pub fn validate(&self) -> Result<(), AuthRequestError> {
        let t = self.challenge.type_code();
        if t != ReferenceType::Challenge {
            return Err(AuthRequestError::NotAChallenge(
                self.challenge.to_string(),
                t.code().to_owned(),
            ));
        }
        if let Some(ips) = &self.allowed_ips {
            ips.validate()?;
        }
        Ok(())
    }

    /// Writes the document: `<?xml version="1.0" encoding="utf-8"?>`, the root with a default
    /// namespace, no whitespace between elements. These are the bytes to sign.
    pub fn to_xml(&self) -> Result<Vec<u8>, AuthRequestError> {
        self.validate()?;
        let mut w = Writer::new(Vec::with_capacity(512));
        w.write_event(Event::Decl(BytesDecl::new("1.0", Some("utf-8"), None)))
            .map_err(write_err)?;
        let mut root = BytesStart::new("AuthTokenRequest");
        root.push_attribute(("xmlns", self.version.namespace()));
        w.write_event(Event::Start(root)).map_err(write_err)?;
        let leaf =
            |w: &mut Writer<Vec<u8>>, name: &str, text: &str| -> Result<(), AuthRequestError> {
                w.write_event(Event::Start(BytesStart::new(name)))
                    .map_err(write_err)?;
                w.write_event(Event::Text(BytesText::new(text)))
                    .map_err(write_err)?;
                w.write_event(Event::End(BytesEnd::new(name)))
                    .map_err(write_err)
            };
        let open = |w: &mut Writer<Vec<u8>>, name: &str| {
            w.write_event(Event::Start(BytesStart::new(name)))
                .map_err(write_err)
        };
        let close = |w: &mut Writer<Vec<u8>>, name: &str| {
            w.write_event(Event::End(BytesEnd::new(name)))
                .map_err(write_err)
        };
        leaf(&mut w, "Challenge", self.challenge.as_str())?;
        open(&mut w, "ContextIdentifier")?;
        leaf(&mut w, self.context.element_name(), self.context.value())?;
        close(&mut w, "ContextIdentifier")?;
        leaf(
            &mut w,
            "SubjectIdentifierType",
            self.subject_identifier_type.as_str(),
        )?;
        if let Some(ips) = &self.allowed_ips {
            open(&mut w, "AuthorizationPolicy")?;
            open(&mut w, "AllowedIps")?;
            for ip in &ips.ip4_addresses {
                leaf(&mut w, "Ip4Address", &ip.to_string())?;
            }
            for r in &ips.ip4_ranges {
                leaf(&mut w, "Ip4Range", &r.to_string())?;
            }
            for m in &ips.ip4_masks {
                leaf(&mut w, "Ip4Mask", &m.to_string())?;
            }
            close(&mut w, "AllowedIps")?;
            close(&mut w, "AuthorizationPolicy")?;
        }
        close(&mut w, "AuthTokenRequest")?;
        Ok(w.into_inner())
    }

    /// Parses a (possibly signed) `AuthTokenRequest`. The root must be `AuthTokenRequest` in the
    /// 2.0 or 2.1 namespace and every child in the same namespace, in schema order; a
    /// `ds:Signature` child is skipped (verify it separately). The context NIP is checked against
    /// the pattern only (KSeF TEST accepts bad NIP checksums).
    pub fn parse(xml: &[u8]) -> Result<Self, AuthRequestError> {
        let root = dom::parse(xml).map_err(AuthRequestError::Xml)?;
        let version = match (&root.ns, root.local.as_str()) {
            (Some(ns), "AuthTokenRequest") => AuthSchemaVersion::from_namespace(ns),
            _ => None,
        }
        .ok_or_else(|| AuthRequestError::WrongRoot(root.qname()))?;
        let ns = version.namespace();
        let structure = |m: String| AuthRequestError::Structure(m);

        let mut children = root
            .children
            .iter()
            .filter(|c| c.ns.as_deref() != Some(XMLDSIG_NS))
            .peekable();
        if let Some(t) = non_space(&root) {
            return Err(structure(format!(
                "unexpected text {t:?} in AuthTokenRequest"
            )));
        }
        let mut expect = |name: &str| -> Result<&Element, AuthRequestError> {
            match children.next() {
                Some(c) if c.is(ns, name) => Ok(c),
                Some(c) => Err(structure(format!("expected {name}, found {}", c.qname()))),
                None => Err(structure(format!("missing {name}"))),
            }
        };

        let ch = expect("Challenge")?;
        let challenge: ReferenceNumber =
            leaf_text(ch, true)?
                .parse()
                .map_err(|source| AuthRequestError::Identifier {
                    element: "Challenge",
                    source,
                })?;

        let ctx = expect("ContextIdentifier")?;
        if let Some(t) = non_space(ctx) {
            return Err(structure(format!(
                "unexpected text {t:?} in ContextIdentifier"
            )));
        }
        let [inner] = ctx.children.as_slice() else {
            return Err(structure(format!(
                "ContextIdentifier must have exactly one child, found {}",
                ctx.children.len()
            )));
        };
        if inner.ns.as_deref() != Some(ns) {
            return Err(structure(format!("unexpected element {}", inner.qname())));
        }
        let context = ContextIdentifier::from_parts(&inner.local, leaf_text(inner, false)?)?;

        let sit = expect("SubjectIdentifierType")?;
        let subject_identifier_type = match leaf_text(sit, true)? {
            "certificateSubject" => SubjectIdentifierType::CertificateSubject,
            "certificateFingerprint" => SubjectIdentifierType::CertificateFingerprint,
            other => {
                return Err(structure(format!(
                    "SubjectIdentifierType must be certificateSubject or certificateFingerprint, found {other:?}"
                )));
            }
        };

        let allowed_ips = match children.next() {
            None => None,
            Some(p) if p.is(ns, "AuthorizationPolicy") => Some(parse_policy(p, ns)?),
            Some(c) => return Err(structure(format!("unexpected element {}", c.qname()))),
        };
        if let Some(c) = children.next() {
            return Err(structure(format!("unexpected element {}", c.qname())));
        }
        let req = AuthTokenRequest {
            version,
            challenge,
            context,
            subject_identifier_type,
            allowed_ips,
        };
        req.validate()?;
        Ok(req)
    }
}

fn non_space(el: &Element) -> Option<&str> {
    let t = el.text.trim();
    (!t.is_empty()).then_some(t)
}

/// Text of a leaf element; `token` trims XML whitespace (xsd:token), otherwise exact.
fn leaf_text(el: &Element, token: bool) -> Result<&str, AuthRequestError> {
    if let Some(c) = el.children.first() {
        return Err(AuthRequestError::Structure(format!(
            "{} must contain only text, found element {}",
            el.local,
            c.qname()
        )));
    }
    Ok(if token {
        el.text.trim_matches([' ', '\t', '\r', '\n'])
    } else {
        el.text.as_str()
    })
}

fn parse_policy(p: &Element, ns: &str) -> Result<AllowedIps, AuthRequestError> {
    let structure = AuthRequestError::Structure;
    let [allowed] = p.children.as_slice() else {
        return Err(structure(
            "AuthorizationPolicy must contain exactly one AllowedIps".into(),
        ));
    };
    if !allowed.is(ns, "AllowedIps") || non_space(p).is_some() {
        return Err(structure(format!(
            "unexpected content {} in AuthorizationPolicy",
            allowed.qname()
        )));
    }
    if let Some(t) = non_space(allowed) {
        return Err(structure(format!("unexpected text {t:?} in AllowedIps")));
    }
    let mut ips = AllowedIps::default();
    // Sequence order: addresses, then ranges, then masks.
    let mut stage = 0;
    for c in &allowed.children {
        let this = match (c.ns.as_deref() == Some(ns), c.local.as_str()) {
            (true, "Ip4Address") => 0,
            (true, "Ip4Range") => 1,
            (true, "Ip4Mask") => 2,
            _ => {
                return Err(structure(format!(
                    "unexpected element {} in AllowedIps",
                    c.qname()
                )));
            }
        };
        if this < stage {
            return Err(structure(format!(
                "{} is out of order: AllowedIps lists Ip4Address, then Ip4Range, then Ip4Mask",
                c.local
            )));
        }
        stage = this;
        let text = leaf_text(c, true)?;
        match this {
            0 => ips.ip4_addresses.push(parse_ip("Ip4Address", text, text)?),
            1 => ips.ip4_ranges.push(text.parse()?),
            _ => ips.ip4_masks.push(text.parse()?),
        }
    }
    ips.validate()?;
    Ok(ips)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn challenge() -> ReferenceNumber {
        "20250604-CR-461EA5B000-537A6BA15D-D7".parse().unwrap()
    }

    #[test]
    fn api_context_conversion() {
        let c = ContextIdentifier::NipVatUe("5265877635-ATU12345678".parse().unwrap());
        let api = crate::api::AuthenticationContextIdentifier::from(&c);
        assert_eq!(
            serde_json::to_value(&api).unwrap(),
            serde_json::json!({"type": "NipVatUe", "value": "5265877635-ATU12345678"})
        );
        assert_eq!(ContextIdentifier::try_from(&api).unwrap(), c);
        let bad: crate::api::AuthenticationContextIdentifier =
            serde_json::from_value(serde_json::json!({"type": "Pesel", "value": "1"})).unwrap();
        assert!(ContextIdentifier::try_from(&bad).is_err());
    }

    #[test]
    fn ip_parsing() {
        assert!("10.0.0.1-10.0.0.9".parse::<Ip4Range>().is_ok());
        assert!("10.0.0.9-10.0.0.1".parse::<Ip4Range>().is_err());
        assert!("10.0.0.01-10.0.0.9".parse::<Ip4Range>().is_err());
        assert!("10.0.0.1".parse::<Ip4Range>().is_err());
        let m: Ip4Mask = "192.168.0.0/16".parse().unwrap();
        assert!(m.contains("192.168.44.1".parse().unwrap()));
        assert!(!m.contains("192.169.0.1".parse().unwrap()));
        let all: Ip4Mask = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        for bad in [
            "1.2.3.4/33",
            "1.2.3.4/",
            "1.2.3.4/01",
            "1.2.3/8",
            "1.2.3.4/x",
            "1.2.3.4",
        ] {
            assert!(bad.parse::<Ip4Mask>().is_err(), "{bad}");
        }
    }

    #[test]
    fn too_many_and_wrong_challenge() {
        let mut b = AuthTokenRequest::builder(
            challenge(),
            ContextIdentifier::Nip(Nip::new("5265877635").unwrap()),
        );
        for i in 0..11u8 {
            b = b.allow_ip(Ipv4Addr::new(10, 0, 0, i));
        }
        let e = b.build().unwrap_err();
        assert_eq!(
            e.to_string(),
            "AuthorizationPolicy allows at most 10 Ip4Address entries, got 11"
        );
        let e = AuthTokenRequest::builder(
            "20250604-AU-461EA5B000-537A6BA15D-D7".parse().unwrap(),
            ContextIdentifier::Nip(Nip::new("5265877635").unwrap()),
        )
        .build()
        .unwrap_err();
        assert!(matches!(e, AuthRequestError::NotAChallenge(..)));
    }
}
