//! XAdES-BES / BASELINE-B enveloped signatures: [`sign`] for any XML document (KSeF uses it for
//! `AuthTokenRequest`) and [`verify`] for signatures made by us or by other KSeF clients.
//!
//! The signature we write:
//! - `ds:Signature Id=…` appended as the last child of the root element; the rest of the input
//!   bytes (XML declaration, whitespace, formatting) are kept exactly;
//! - `SignedInfo` canonicalized with exclusive c14n; a `Reference URI=""` with the
//!   enveloped-signature and exclusive c14n transforms; a `Reference` to the `SignedProperties`
//!   (`Type="http://uri.etsi.org/01903#SignedProperties"`) with an explicit exclusive c14n
//!   transform (a reference without one is verified with inclusive C14N 1.0 by everyone else);
//!   SHA-256 digests;
//! - `ds:KeyInfo/ds:X509Data/ds:X509Certificate`;
//! - `xades:QualifyingProperties/SignedProperties/SignedSignatureProperties` with `SigningTime`
//!   and `SigningCertificate` (SHA-256 `CertDigest`, `IssuerSerial` with an RFC 4514 issuer name
//!   and a decimal serial number), or with [`SignOptions::with_signing_certificate_v2`]
//!   `SigningCertificateV2` (`CertDigest` and `IssuerSerialV2`, the Base64 DER `IssuerSerial`).
//!   Verification checks `IssuerSerial` and `IssuerSerialV2` when present.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use ksef_crypto::{cert::Certificate, keys::PrivateKey, signer::InMemorySigner, xades};
//! # let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/xades/");
//! # let key_pem = std::fs::read(format!("{dir}xmlsec1cli-ec-seal.key.pem"))?;
//! # let cert_pem = std::fs::read(format!("{dir}xmlsec1cli-ec-seal.cert.pem"))?;
//! let key = PrivateKey::from_pem(&key_pem, None)?;
//! let cert = Certificate::from_pem(&cert_pem)?;
//! let signer = InMemorySigner::new(key, cert)?;
//! let request = br#"<AuthTokenRequest xmlns="http://ksef.mf.gov.pl/auth/token/2.0"><Challenge>20250604-CR-461EA5B000-537A6BA15D-D7</Challenge><ContextIdentifier><Nip>5265877635</Nip></ContextIdentifier><SubjectIdentifierType>certificateSubject</SubjectIdentifierType></AuthTokenRequest>"#;
//! let signed = xades::sign(request, &signer)?;
//! let verified = xades::verify(&signed)?;
//! assert_eq!(verified.certificate().der(), signer.certificate().der());
//! # Ok(()) }
//! ```

use std::sync::Arc;

use base64::Engine as _;
use roxmltree::{Document, Node, NodeId};
use sha2::Digest as _;
use time::OffsetDateTime;

use crate::c14n::{self, Algorithm, Method, Options};
use crate::cert::Certificate;
use crate::keys::PublicKey;
use crate::signer::{Signer, SignerError};

/// The XMLDSig namespace.
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// The XAdES 1.3.2 namespace.
pub const XADES_NS: &str = "http://uri.etsi.org/01903/v1.3.2#";
/// The `Type` of a reference to `SignedProperties`.
pub const SIGNED_PROPERTIES_TYPE: &str = "http://uri.etsi.org/01903#SignedProperties";

const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const XPATH: &str = "http://www.w3.org/TR/1999/REC-xpath-19991116";
const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const SHA256_URI: &str = "http://www.w3.org/2001/04/xmlenc#sha256";

// ---------------------------------------------------------------------------------------------
// Errors

/// A XAdES signing or verification failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum XadesError {
    /// The document is not well-formed XML, is not UTF-8, or uses a DTD (KSeF 9101).
    #[error("invalid XML document: {0}")]
    InvalidDocument(String),
    /// The document has no `ds:Signature` (KSeF 9102).
    #[error("the document has no ds:Signature; sign it first")]
    NoSignature,
    /// The document has more than one `ds:Signature`, anywhere (KSeF 9103).
    #[error("the document has {0} ds:Signature elements; exactly one is allowed")]
    TooManySignatures(usize),
    /// The signature is invalid (KSeF 9105); the reason says which check failed.
    #[error("invalid signature: {0}")]
    InvalidSignature(#[from] InvalidSignature),
    /// The document cannot be signed as given (already signed, Id clash, not UTF-8...).
    #[error("cannot sign this document: {0}")]
    CannotSign(String),
    /// The signer failed.
    #[error(transparent)]
    Signer(#[from] SignerError),
}

impl XadesError {
    /// The KSeF exception code this failure maps to: 9101 invalid document, 9102 no signature,
    /// 9103 too many signatures, 9105 invalid signature; `None` for signing-side errors.
    pub fn ksef_code(&self) -> Option<u16> {
        match self {
            XadesError::InvalidDocument(_) => Some(9101),
            XadesError::NoSignature => Some(9102),
            XadesError::TooManySignatures(_) => Some(9103),
            XadesError::InvalidSignature(_) => Some(9105),
            XadesError::CannotSign(_) | XadesError::Signer(_) => None,
        }
    }
}

/// Which signature check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidSignature {
    /// A required element or attribute is missing or malformed.
    #[error("malformed signature: {0}")]
    Malformed(String),
    /// An algorithm (c14n, transform, digest, signature) we do not accept.
    #[error("unsupported algorithm {0}")]
    UnsupportedAlgorithm(String),
    /// A reference points outside the document (detached signatures are not accepted).
    #[error(
        "reference to {0:?} is not a same-document reference (detached signatures are not accepted)"
    )]
    ExternalReference(String),
    /// A same-document reference target is missing or ambiguous.
    #[error("reference target {0:?} not found or not unique")]
    ReferenceTarget(String),
    /// A reference digest does not match: the signed content was changed.
    #[error("digest mismatch for reference {0:?}: the signed content was changed")]
    DigestMismatch(String),
    /// No reference covers the document itself.
    #[error("no reference covers the signed document")]
    DocumentNotSigned,
    /// Base64 content could not be decoded.
    #[error("invalid Base64 in {0}")]
    Base64(&'static str),
    /// No usable certificate in `ds:KeyInfo`.
    #[error("no signer certificate: {0}")]
    Certificate(String),
    /// The `SignatureValue` does not verify with the certificate's key.
    #[error("SignatureValue does not verify with the certificate's public key")]
    SignatureMismatch,
    /// The XAdES `SignedProperties` are missing or not referenced from `SignedInfo`.
    #[error("XAdES SignedProperties: {0}")]
    SignedProperties(String),
    /// The XAdES `SigningCertificate` does not identify the `KeyInfo` certificate.
    #[error("XAdES SigningCertificate does not match the KeyInfo certificate: {0}")]
    SigningCertificate(String),
}

fn malformed(s: impl Into<String>) -> XadesError {
    XadesError::InvalidSignature(InvalidSignature::Malformed(s.into()))
}

// ---------------------------------------------------------------------------------------------
// Signing

/// Where `SigningTime` comes from (tests inject a fixed time).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

/// The system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that always returns the same time.
#[derive(Debug, Clone, Copy)]
pub struct FixedClock(pub OffsetDateTime);

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
    }
}

/// Options for [`sign_with`].
#[derive(Clone)]
pub struct SignOptions {
    /// The source of `SigningTime`.
    pub clock: Arc<dyn Clock>,
    /// The `Id` of `ds:Signature` (must not clash with an Id in the document).
    pub signature_id: String,
    /// The `Id` of `xades:SignedProperties`.
    pub signed_properties_id: String,
    /// Write `SigningCertificateV2` with `IssuerSerialV2` (XAdES 1.4.1, as ETSI EN 319 132
    /// BASELINE-B asks) instead of `SigningCertificate` with `IssuerSerial` (the default, which
    /// is what KSeF's own examples and reference clients send).
    pub signing_certificate_v2: bool,
}

impl std::fmt::Debug for SignOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignOptions")
            .field("signature_id", &self.signature_id)
            .field("signed_properties_id", &self.signed_properties_id)
            .field("signing_certificate_v2", &self.signing_certificate_v2)
            .finish_non_exhaustive()
    }
}

impl Default for SignOptions {
    fn default() -> Self {
        SignOptions {
            clock: Arc::new(SystemClock),
            signature_id: "Signature".to_owned(),
            signed_properties_id: "SignedProperties".to_owned(),
            signing_certificate_v2: false,
        }
    }
}

impl SignOptions {
    /// Uses `clock` for `SigningTime`.
    pub fn with_clock(mut self, clock: impl Clock + 'static) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Writes `SigningCertificateV2` / `IssuerSerialV2` (see [`SignOptions::signing_certificate_v2`]).
    pub fn with_signing_certificate_v2(mut self) -> Self {
        self.signing_certificate_v2 = true;
        self
    }
}

/// Signs `document` (UTF-8 XML bytes) with an enveloped XAdES-BES signature, using the system
/// clock. Returns the exact bytes to send.
pub fn sign(document: &[u8], signer: &dyn Signer) -> Result<Vec<u8>, XadesError> {
    sign_with(document, signer, &SignOptions::default())
}

/// Signs `document` with an enveloped XAdES-BES signature (see the module docs for the layout).
pub fn sign_with(
    document: &[u8],
    signer: &dyn Signer,
    opts: &SignOptions,
) -> Result<Vec<u8>, XadesError> {
    let text = std::str::from_utf8(document)
        .map_err(|e| XadesError::CannotSign(format!("the document is not UTF-8: {e}")))?;
    // A byte-order mark is kept in the output but is not part of the parsed text.
    let bom = if text.starts_with('\u{feff}') { 3 } else { 0 };
    let (bom_bytes, document) = document.split_at(bom);
    let text = &text[bom..];
    let doc = c14n::parse(text).map_err(|e| XadesError::InvalidDocument(e.to_string()))?;
    for id in [&opts.signature_id, &opts.signed_properties_id] {
        if !is_ncname(id) {
            return Err(XadesError::CannotSign(format!("{id:?} is not a valid Id")));
        }
    }
    if doc.descendants().any(|n| is_ds(n, "Signature")) {
        return Err(XadesError::CannotSign(
            "the document already has a ds:Signature (KSeF accepts exactly one)".into(),
        ));
    }
    if doc.descendants().any(|n| {
        n.attributes().any(|a| {
            is_id_attr(&a)
                && (a.value() == opts.signature_id || a.value() == opts.signed_properties_id)
        })
    }) {
        return Err(XadesError::CannotSign(
            "the document already uses the signature's Id values; choose others in SignOptions"
                .into(),
        ));
    }

    let cert_der = signer.certificate_der();
    let cert = Certificate::from_der(cert_der)
        .map_err(|e| SignerError::InvalidCertificate(e.to_string()))?;

    // Reference 1: the document, enveloped-signature + exclusive c14n. The signature is not in
    // the document yet and we insert it without surrounding whitespace, so canonicalizing the
    // input gives the same bytes as the transform chain over the signed output.
    let doc_digest = sha256_b64(&c14n::canonicalize(
        doc.root(),
        &Options::new(Method::EXCLUSIVE),
    ));

    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = Parts {
        sig_id: &opts.signature_id,
        sp_id: &opts.signed_properties_id,
        signing_time: format_time(opts.clock.now()),
        cert_digest: b64.encode(sha2::Sha256::digest(cert_der)),
        issuer: cert.issuer(),
        serial: cert.serial_decimal(),
        issuer_serial_v2: if opts.signing_certificate_v2 {
            let der = issuer_serial_v2_der(&cert)
                .map_err(|e| SignerError::InvalidCertificate(format!("IssuerSerialV2: {e}")))?;
            Some(b64.encode(der))
        } else {
            None
        },
        alg: signer.algorithm().uri(),
        doc_digest,
        sp_digest: String::new(),
    };
    let mut buf = String::with_capacity(2048 + cert_der.len() * 2);
    parts.signed_properties(&mut buf, true);
    parts.sp_digest = sha256_b64(buf.as_bytes());
    buf.clear();
    parts.signed_info(&mut buf, true);
    let signature_value = b64.encode(signer.sign(buf.as_bytes())?);

    // The serialized signature: the same templates without the namespace declarations that
    // exclusive c14n pushes down (they are declared once on ds:Signature / QualifyingProperties).
    buf.clear();
    buf.push_str("<ds:Signature xmlns:ds=\"");
    buf.push_str(DS_NS);
    buf.push_str("\" Id=\"");
    buf.push_str(parts.sig_id);
    buf.push_str("\">");
    parts.signed_info(&mut buf, false);
    buf.push_str("<ds:SignatureValue>");
    buf.push_str(&signature_value);
    buf.push_str("</ds:SignatureValue><ds:KeyInfo><ds:X509Data><ds:X509Certificate>");
    buf.push_str(&b64.encode(cert_der));
    buf.push_str("</ds:X509Certificate></ds:X509Data></ds:KeyInfo><ds:Object><xades:QualifyingProperties xmlns:xades=\"");
    buf.push_str(XADES_NS);
    buf.push_str("\" Target=\"#");
    buf.push_str(parts.sig_id);
    buf.push_str("\">");
    parts.signed_properties(&mut buf, false);
    buf.push_str("</xades:QualifyingProperties></ds:Object></ds:Signature>");

    // Splice it in before the root's end tag (or turn `<root/>` into `<root>…</root>`).
    let root = doc.root_element();
    let range = root.range();
    let element_src = &text[range.clone()];
    let mut out = Vec::with_capacity(bom + document.len() + buf.len() + 16);
    out.extend_from_slice(bom_bytes);
    if element_src.ends_with("/>") {
        out.extend_from_slice(&document[..range.end - 2]);
        out.push(b'>');
        out.extend_from_slice(buf.as_bytes());
        out.extend_from_slice(b"</");
        out.extend_from_slice(c14n::element_qname(root).as_bytes());
        out.push(b'>');
        out.extend_from_slice(&document[range.end..]);
    } else {
        let end_tag = element_src
            .rfind("</")
            .ok_or_else(|| XadesError::InvalidDocument("root element has no end tag".into()))?;
        let at = range.start + end_tag;
        out.extend_from_slice(&document[..at]);
        out.extend_from_slice(buf.as_bytes());
        out.extend_from_slice(&document[at..]);
    }
    Ok(out)
}

struct Parts<'a> {
    sig_id: &'a str,
    sp_id: &'a str,
    signing_time: String,
    cert_digest: String,
    issuer: String,
    serial: String,
    /// Base64 `IssuerSerialV2`: when set, `SigningCertificateV2` is written.
    issuer_serial_v2: Option<String>,
    alg: &'static str,
    doc_digest: String,
    sp_digest: String,
}

impl Parts<'_> {
    /// `SignedInfo`; with `canonical` it is exactly its exclusive c14n form.
    fn signed_info(&self, o: &mut String, canonical: bool) {
        o.push_str("<ds:SignedInfo");
        if canonical {
            o.push_str(" xmlns:ds=\"");
            o.push_str(DS_NS);
            o.push('"');
        }
        o.push_str("><ds:CanonicalizationMethod Algorithm=\"");
        o.push_str(EXC_C14N);
        o.push_str("\"></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"");
        o.push_str(self.alg);
        o.push_str("\"></ds:SignatureMethod><ds:Reference URI=\"\"><ds:Transforms><ds:Transform Algorithm=\"");
        o.push_str(ENVELOPED);
        o.push_str("\"></ds:Transform><ds:Transform Algorithm=\"");
        o.push_str(EXC_C14N);
        o.push_str("\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"");
        o.push_str(SHA256_URI);
        o.push_str("\"></ds:DigestMethod><ds:DigestValue>");
        o.push_str(&self.doc_digest);
        o.push_str("</ds:DigestValue></ds:Reference><ds:Reference Type=\"");
        o.push_str(SIGNED_PROPERTIES_TYPE);
        o.push_str("\" URI=\"#");
        o.push_str(self.sp_id);
        o.push_str("\"><ds:Transforms><ds:Transform Algorithm=\"");
        o.push_str(EXC_C14N);
        o.push_str("\"></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"");
        o.push_str(SHA256_URI);
        o.push_str("\"></ds:DigestMethod><ds:DigestValue>");
        o.push_str(&self.sp_digest);
        o.push_str("</ds:DigestValue></ds:Reference></ds:SignedInfo>");
    }

    /// `SignedProperties`; with `canonical` it is exactly its exclusive c14n form (the `ds`
    /// namespace is pushed down to every `ds:` element, `xades` declared on the apex).
    fn signed_properties(&self, o: &mut String, canonical: bool) {
        let ds = if canonical {
            " xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\""
        } else {
            ""
        };
        o.push_str("<xades:SignedProperties");
        if canonical {
            o.push_str(" xmlns:xades=\"");
            o.push_str(XADES_NS);
            o.push('"');
        }
        o.push_str(" Id=\"");
        o.push_str(self.sp_id);
        o.push_str("\"><xades:SignedSignatureProperties><xades:SigningTime>");
        o.push_str(&self.signing_time);
        let v2 = self.issuer_serial_v2.is_some();
        o.push_str(if v2 {
            "</xades:SigningTime><xades:SigningCertificateV2><xades:Cert><xades:CertDigest><ds:DigestMethod"
        } else {
            "</xades:SigningTime><xades:SigningCertificate><xades:Cert><xades:CertDigest><ds:DigestMethod"
        });
        o.push_str(ds);
        o.push_str(" Algorithm=\"");
        o.push_str(SHA256_URI);
        o.push_str("\"></ds:DigestMethod><ds:DigestValue");
        o.push_str(ds);
        o.push('>');
        o.push_str(&self.cert_digest);
        if let Some(is) = &self.issuer_serial_v2 {
            o.push_str("</ds:DigestValue></xades:CertDigest><xades:IssuerSerialV2>");
            o.push_str(is);
            o.push_str("</xades:IssuerSerialV2></xades:Cert></xades:SigningCertificateV2></xades:SignedSignatureProperties></xades:SignedProperties>");
            return;
        }
        o.push_str("</ds:DigestValue></xades:CertDigest><xades:IssuerSerial><ds:X509IssuerName");
        o.push_str(ds);
        o.push('>');
        push_escaped_text(o, &self.issuer);
        o.push_str("</ds:X509IssuerName><ds:X509SerialNumber");
        o.push_str(ds);
        o.push('>');
        o.push_str(&self.serial);
        o.push_str("</ds:X509SerialNumber></xades:IssuerSerial></xades:Cert></xades:SigningCertificate></xades:SignedSignatureProperties></xades:SignedProperties>");
    }
}

fn push_escaped_text(o: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '\r' => o.push_str("&#xD;"),
            c => o.push(c),
        }
    }
}

fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn sha256_b64(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(data))
}

fn is_ncname(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

// ---------------------------------------------------------------------------------------------
// Verification

/// A verified XAdES signature.
#[derive(Debug, Clone)]
pub struct VerifiedSignature {
    certificate: Certificate,
    signing_time: Option<OffsetDateTime>,
    signature_method: String,
}

impl VerifiedSignature {
    /// The signer's certificate (from `ds:KeyInfo`, matched by the XAdES `CertDigest`).
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }
    /// The XAdES `SigningTime`, if present.
    pub fn signing_time(&self) -> Option<OffsetDateTime> {
        self.signing_time
    }
    /// The `SignatureMethod` URI.
    pub fn signature_method(&self) -> &str {
        &self.signature_method
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Sha1,
    Sha256,
    Sha384,
    Sha512,
}

impl Hash {
    fn from_digest_uri(uri: &str) -> Option<Hash> {
        Some(match uri {
            "http://www.w3.org/2000/09/xmldsig#sha1" => Hash::Sha1,
            "http://www.w3.org/2001/04/xmlenc#sha256" => Hash::Sha256,
            "http://www.w3.org/2001/04/xmldsig-more#sha384" => Hash::Sha384,
            "http://www.w3.org/2001/04/xmlenc#sha512" => Hash::Sha512,
            _ => return None,
        })
    }

    fn digest(self, data: &[u8]) -> Vec<u8> {
        match self {
            Hash::Sha1 => sha1::Sha1::digest(data).to_vec(),
            Hash::Sha256 => sha2::Sha256::digest(data).to_vec(),
            Hash::Sha384 => sha2::Sha384::digest(data).to_vec(),
            Hash::Sha512 => sha2::Sha512::digest(data).to_vec(),
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum SigAlg {
    RsaPkcs1(Hash),
    RsaPss(Hash),
    Ecdsa(Hash),
}

impl SigAlg {
    fn from_uri(uri: &str) -> Option<SigAlg> {
        Some(match uri {
            "http://www.w3.org/2000/09/xmldsig#rsa-sha1" => SigAlg::RsaPkcs1(Hash::Sha1),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256" => SigAlg::RsaPkcs1(Hash::Sha256),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384" => SigAlg::RsaPkcs1(Hash::Sha384),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512" => SigAlg::RsaPkcs1(Hash::Sha512),
            "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1" => {
                SigAlg::RsaPss(Hash::Sha256)
            }
            "http://www.w3.org/2007/05/xmldsig-more#sha384-rsa-MGF1" => {
                SigAlg::RsaPss(Hash::Sha384)
            }
            "http://www.w3.org/2007/05/xmldsig-more#sha512-rsa-MGF1" => {
                SigAlg::RsaPss(Hash::Sha512)
            }
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256" => SigAlg::Ecdsa(Hash::Sha256),
            _ => return None,
        })
    }

    fn hash(self) -> Hash {
        match self {
            SigAlg::RsaPkcs1(h) | SigAlg::RsaPss(h) | SigAlg::Ecdsa(h) => h,
        }
    }
}

fn is_ds(n: Node<'_, '_>, local: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(DS_NS) && n.tag_name().name() == local
}

fn is_xades(n: Node<'_, '_>, local: &str) -> bool {
    n.is_element() && n.tag_name().namespace() == Some(XADES_NS) && n.tag_name().name() == local
}

fn is_id_attr(a: &roxmltree::Attribute<'_, '_>) -> bool {
    match a.namespace() {
        None => matches!(a.name(), "Id" | "ID" | "id"),
        Some("http://www.w3.org/XML/1998/namespace") => a.name() == "id",
        Some(_) => false,
    }
}

fn child<'a, 'd>(n: Node<'a, 'd>, pred: impl Fn(Node<'a, 'd>) -> bool) -> Option<Node<'a, 'd>> {
    n.children().find(|c| pred(*c))
}

fn req_child<'a, 'd>(n: Node<'a, 'd>, local: &'static str) -> Result<Node<'a, 'd>, XadesError> {
    child(n, |c| is_ds(c, local))
        .ok_or_else(|| malformed(format!("ds:{} has no ds:{local}", n.tag_name().name())))
}

fn decode_b64(text: &str, what: &'static str) -> Result<Vec<u8>, XadesError> {
    let clean: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(clean.as_bytes())
        .map_err(|_| XadesError::InvalidSignature(InvalidSignature::Base64(what)))
}

fn element_text<'a>(n: Node<'a, '_>) -> String {
    n.children()
        .filter(|c| c.is_text())
        .filter_map(|c| c.text())
        .collect()
}

/// Finds the unique element whose Id (`Id`, `ID`, `id` or `xml:id`) is `id`.
fn find_by_id<'a, 'd>(doc: &'a Document<'d>, id: &str) -> Result<Node<'a, 'd>, XadesError> {
    let mut found = doc
        .descendants()
        .filter(|n| n.is_element() && n.attributes().any(|a| is_id_attr(&a) && a.value() == id));
    match (found.next(), found.next()) {
        (Some(n), None) => Ok(n),
        _ => Err(InvalidSignature::ReferenceTarget(format!("#{id}")).into()),
    }
}

/// Verifies the one enveloped (or enveloping) XAdES signature in `document`: every reference
/// digest, the `SignatureValue` with the `KeyInfo` certificate's key, the presence of a reference
/// to the XAdES `SignedProperties`, and that `SigningCertificate`/`SigningCertificateV2`
/// identifies that certificate. It does not check certificate trust or validity dates.
pub fn verify(document: &[u8]) -> Result<VerifiedSignature, XadesError> {
    let text = std::str::from_utf8(document)
        .map_err(|e| XadesError::InvalidDocument(format!("not UTF-8: {e}")))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let doc = c14n::parse(text).map_err(|e| XadesError::InvalidDocument(e.to_string()))?;

    let mut sigs = doc.descendants().filter(|n| is_ds(*n, "Signature"));
    let sig = sigs.next().ok_or(XadesError::NoSignature)?;
    let extra = sigs.count();
    if extra > 0 {
        return Err(XadesError::TooManySignatures(extra + 1));
    }

    let signed_info = child(sig, |c| c.is_element())
        .filter(|c| is_ds(*c, "SignedInfo"))
        .ok_or_else(|| malformed("the first child of ds:Signature must be ds:SignedInfo"))?;

    // SignedInfo's canonicalization and signature methods.
    let cm = req_child(signed_info, "CanonicalizationMethod")?;
    let cm_uri = cm.attribute("Algorithm").unwrap_or("");
    let si_method = Method::from_uri(cm_uri)
        .ok_or_else(|| InvalidSignature::UnsupportedAlgorithm(format!("c14n {cm_uri:?}")))?;
    let si_prefixes = inclusive_prefixes(cm);
    let sm_uri = req_child(signed_info, "SignatureMethod")?
        .attribute("Algorithm")
        .unwrap_or("");
    let sig_alg = SigAlg::from_uri(sm_uri)
        .ok_or_else(|| InvalidSignature::UnsupportedAlgorithm(format!("signature {sm_uri:?}")))?;

    // References.
    let refs: Vec<Node<'_, '_>> = signed_info
        .children()
        .filter(|c| is_ds(*c, "Reference"))
        .collect();
    if refs.is_empty() {
        return Err(malformed("ds:SignedInfo has no ds:Reference"));
    }
    let root_el = doc.root_element();
    let mut covers_document = false;
    let mut referenced: Vec<NodeId> = Vec::new();
    for r in &refs {
        let target = check_reference(&doc, sig, *r)?;
        let covers = target == doc.root().id()
            || target == root_el.id()
            || (root_el.id() == sig.id()
                && doc
                    .get_node(target)
                    .is_some_and(|t| is_ds(t, "Object") && t.parent() == Some(sig)));
        covers_document |= covers;
        referenced.push(target);
    }
    if !covers_document {
        return Err(InvalidSignature::DocumentNotSigned.into());
    }

    // XAdES SignedProperties must exist and be referenced.
    let qp = sig
        .children()
        .filter(|c| is_ds(*c, "Object"))
        .flat_map(|o| o.children())
        .find(|c| is_xades(*c, "QualifyingProperties"))
        .ok_or_else(|| {
            InvalidSignature::SignedProperties("no xades:QualifyingProperties in ds:Object".into())
        })?;
    if let (Some(target), Some(sig_id)) = (qp.attribute("Target"), sig.attribute("Id"))
        && target.strip_prefix('#') != Some(sig_id)
    {
        return Err(InvalidSignature::SignedProperties(format!(
            "QualifyingProperties Target {target:?} is not this signature"
        ))
        .into());
    }
    let sp = child(qp, |c| is_xades(c, "SignedProperties"))
        .ok_or_else(|| InvalidSignature::SignedProperties("no xades:SignedProperties".into()))?;
    if !referenced.contains(&sp.id()) {
        return Err(InvalidSignature::SignedProperties(
            "SignedInfo has no Reference to the SignedProperties".into(),
        )
        .into());
    }
    let ssp = child(sp, |c| is_xades(c, "SignedSignatureProperties")).ok_or_else(|| {
        InvalidSignature::SignedProperties("no xades:SignedSignatureProperties".into())
    })?;

    // Certificates in KeyInfo.
    let key_info = child(sig, |c| is_ds(c, "KeyInfo"))
        .ok_or_else(|| InvalidSignature::Certificate("ds:Signature has no ds:KeyInfo".into()))?;
    let mut certs = Vec::new();
    for xc in key_info
        .children()
        .filter(|c| is_ds(*c, "X509Data"))
        .flat_map(|d| d.children())
        .filter(|c| is_ds(*c, "X509Certificate"))
    {
        let der = decode_b64(&element_text(xc), "X509Certificate")?;
        let cert = Certificate::from_der(&der)
            .map_err(|e| InvalidSignature::Certificate(format!("bad X509Certificate: {e}")))?;
        certs.push(cert);
    }
    if certs.is_empty() {
        return Err(InvalidSignature::Certificate(
            "ds:KeyInfo has no ds:X509Data/ds:X509Certificate".into(),
        )
        .into());
    }
    let certificate = signing_certificate(ssp, &certs)?;

    // The signature value over the canonical SignedInfo.
    let prefixes: Vec<&str> = si_prefixes.iter().map(String::as_str).collect();
    let si_bytes = c14n::canonicalize(
        signed_info,
        &Options::new(si_method).with_inclusive_prefixes(&prefixes),
    );
    let sv = decode_b64(
        &element_text(req_child(sig, "SignatureValue")?),
        "SignatureValue",
    )?;
    check_signature_value(&certificate, sig_alg, &si_bytes, &sv)?;

    let signing_time = match child(ssp, |c| is_xades(c, "SigningTime")) {
        Some(st) => {
            let s = element_text(st);
            Some(
                OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339)
                    .map_err(|_| {
                        InvalidSignature::SignedProperties(format!(
                            "SigningTime {s:?} is not a date-time"
                        ))
                    })?,
            )
        }
        None => None,
    };

    Ok(VerifiedSignature {
        certificate,
        signing_time,
        signature_method: sm_uri.to_owned(),
    })
}

fn inclusive_prefixes(method_el: Node<'_, '_>) -> Vec<String> {
    method_el
        .children()
        .find(|c| {
            c.is_element()
                && c.tag_name().namespace() == Some(EXC_C14N)
                && c.tag_name().name() == "InclusiveNamespaces"
        })
        .and_then(|n| n.attribute("PrefixList"))
        .map(|l| l.split_ascii_whitespace().map(str::to_owned).collect())
        .unwrap_or_default()
}

/// Checks one reference's digest; returns the node it covers.
fn check_reference(
    doc: &Document<'_>,
    sig: Node<'_, '_>,
    r: Node<'_, '_>,
) -> Result<NodeId, XadesError> {
    let uri = r
        .attribute("URI")
        .ok_or_else(|| InvalidSignature::ExternalReference("(no URI)".into()))?;
    // Dereference: "" is the whole document without comments; "#xpointer(/)" keeps comments.
    let (target, keep_comments) = if uri.is_empty() {
        (doc.root(), false)
    } else if uri == "#xpointer(/)" {
        (doc.root(), true)
    } else if let Some(frag) = uri.strip_prefix('#') {
        let id = frag
            .strip_prefix("xpointer(id('")
            .and_then(|s| s.strip_suffix("'))"))
            .map(|id| (id, true))
            .unwrap_or((frag, false));
        (find_by_id(doc, id.0)?, id.1)
    } else {
        return Err(InvalidSignature::ExternalReference(uri.to_owned()).into());
    };

    let mut exclude: Vec<NodeId> = Vec::new();
    let mut method: Option<Method> = None;
    let mut prefixes: Vec<String> = Vec::new();
    if let Some(transforms) = child(r, |c| is_ds(c, "Transforms")) {
        for t in transforms.children().filter(|c| c.is_element()) {
            if !is_ds(t, "Transform") {
                return Err(malformed("unexpected element in ds:Transforms"));
            }
            if method.is_some() {
                return Err(InvalidSignature::UnsupportedAlgorithm(
                    "a transform after canonicalization".into(),
                )
                .into());
            }
            let alg = t.attribute("Algorithm").unwrap_or("");
            if alg == ENVELOPED {
                exclude.push(sig.id());
            } else if alg == XPATH {
                let xp = child(t, |c| is_ds(c, "XPath"))
                    .ok_or_else(|| malformed("XPath transform without ds:XPath"))?;
                let expr: String = element_text(xp)
                    .chars()
                    .filter(|c| !c.is_whitespace())
                    .collect();
                let ok = expr
                    .strip_prefix("not(ancestor-or-self::")
                    .and_then(|s| s.strip_suffix(":Signature)"))
                    .is_some_and(|p| xp.lookup_namespace_uri(Some(p)) == Some(DS_NS));
                if !ok {
                    return Err(InvalidSignature::UnsupportedAlgorithm(format!(
                        "XPath transform {expr:?} (only not(ancestor-or-self::ds:Signature))"
                    ))
                    .into());
                }
                exclude.push(sig.id());
            } else if let Some(m) = Method::from_uri(alg) {
                method = Some(m);
                prefixes = inclusive_prefixes(t);
            } else {
                return Err(
                    InvalidSignature::UnsupportedAlgorithm(format!("transform {alg:?}")).into(),
                );
            }
        }
    }
    // Without an explicit c14n transform the node-set becomes octets by inclusive C14N 1.0.
    let m = method.unwrap_or(Method::new(Algorithm::Inclusive10, keep_comments));
    let m = Method::new(m.algorithm, m.with_comments && keep_comments);
    let prefix_refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
    let bytes = c14n::canonicalize(
        target,
        &Options::new(m)
            .excluding(&exclude)
            .with_inclusive_prefixes(&prefix_refs),
    );

    let dm = req_child(r, "DigestMethod")?
        .attribute("Algorithm")
        .unwrap_or("");
    let hash = Hash::from_digest_uri(dm)
        .ok_or_else(|| InvalidSignature::UnsupportedAlgorithm(format!("digest {dm:?}")))?;
    let want = decode_b64(&element_text(req_child(r, "DigestValue")?), "DigestValue")?;
    if hash.digest(&bytes) != want {
        return Err(InvalidSignature::DigestMismatch(uri.to_owned()).into());
    }
    Ok(target.id())
}

/// Picks the KeyInfo certificate that the XAdES SigningCertificate(V2) identifies.
fn signing_certificate(
    ssp: Node<'_, '_>,
    certs: &[Certificate],
) -> Result<Certificate, XadesError> {
    let sc = child(ssp, |c| {
        is_xades(c, "SigningCertificate") || is_xades(c, "SigningCertificateV2")
    })
    .ok_or_else(|| {
        InvalidSignature::SigningCertificate("no SigningCertificate or SigningCertificateV2".into())
    })?;
    let bad = |s: &str| XadesError::from(InvalidSignature::SigningCertificate(s.to_owned()));
    for c in sc.children().filter(|c| is_xades(*c, "Cert")) {
        let cd = child(c, |n| is_xades(n, "CertDigest"))
            .ok_or_else(|| bad("Cert without CertDigest"))?;
        let dm = req_child(cd, "DigestMethod")?
            .attribute("Algorithm")
            .unwrap_or("");
        let hash = Hash::from_digest_uri(dm)
            .ok_or_else(|| InvalidSignature::UnsupportedAlgorithm(format!("digest {dm:?}")))?;
        let want = decode_b64(&element_text(req_child(cd, "DigestValue")?), "CertDigest")?;
        let Some(cert) = certs.iter().find(|k| hash.digest(k.der()) == want) else {
            continue;
        };
        if let Some(is) = child(c, |n| is_xades(n, "IssuerSerial")) {
            check_issuer_serial(is, cert)?;
        }
        if let Some(is) = child(c, |n| is_xades(n, "IssuerSerialV2")) {
            check_issuer_serial_v2(&element_text(is), cert)?;
        }
        return Ok(cert.clone());
    }
    Err(bad("no CertDigest matches a ds:X509Certificate in KeyInfo"))
}

fn check_issuer_serial(is: Node<'_, '_>, cert: &Certificate) -> Result<(), XadesError> {
    let bad = |s: String| XadesError::from(InvalidSignature::SigningCertificate(s));
    if let Some(sn) = child(is, |c| is_ds(c, "X509SerialNumber")) {
        let s = element_text(sn);
        let s = s.trim();
        let norm = s.trim_start_matches('0');
        let norm = if norm.is_empty() { "0" } else { norm };
        if norm != cert.serial_decimal() {
            return Err(bad(format!(
                "IssuerSerial serial {s} is not the certificate's {}",
                cert.serial_decimal()
            )));
        }
    }
    if let Some(name) = child(is, |c| is_ds(c, "X509IssuerName")) {
        let s = element_text(name);
        if let Some(parsed) = dn::parse(&s) {
            let ours = dn::from_name(cert.issuer_name());
            if !dn::same(&parsed, &ours) {
                return Err(bad(format!(
                    "IssuerSerial issuer {s:?} is not the certificate's issuer {:?}",
                    cert.issuer()
                )));
            }
        }
    }
    Ok(())
}

/// The DER `IssuerSerial` of RFC 5035 (ESS) that XAdES 1.4.1's `IssuerSerialV2` carries in
/// Base64: `SEQUENCE { issuer GeneralNames, serialNumber CertificateSerialNumber }`, with the
/// issuer as a `directoryName`.
fn issuer_serial_v2_der(cert: &Certificate) -> Result<Vec<u8>, der::Error> {
    use der::Encode as _;
    use x509_cert::ext::pkix::name::GeneralName;
    let names = vec![GeneralName::DirectoryName(cert.issuer_name().clone())];
    let mut body = names.to_der()?;
    body.extend_from_slice(&cert.serial_number().to_der()?);
    der::asn1::Any::new(der::Tag::Sequence, body)?.to_der()
}

/// Checks an `IssuerSerialV2` against the certificate: the serial number (as encoded) and a
/// `directoryName` equal to its issuer must both be there.
fn check_issuer_serial_v2(text: &str, cert: &Certificate) -> Result<(), XadesError> {
    use der::Reader as _;
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::serial_number::SerialNumber;
    let bad = |s: String| XadesError::from(InvalidSignature::SigningCertificate(s));
    let bytes = decode_b64(text, "IssuerSerialV2")?;
    let parsed = der::SliceReader::new(&bytes).and_then(|mut r| {
        let v = r.sequence(|seq| {
            let names: Vec<GeneralName> = seq.decode()?;
            let serial: SerialNumber = seq.decode()?;
            // issuerUID (optional) identifies nothing we check.
            let rest = seq.remaining_len();
            seq.drain(rest)?;
            Ok::<_, der::Error>((names, serial))
        })?;
        r.finish()?;
        Ok(v)
    });
    let (names, serial) =
        parsed.map_err(|e| bad(format!("IssuerSerialV2 is not a DER IssuerSerial: {e}")))?;
    if serial.as_bytes() != cert.serial_bytes() {
        return Err(bad(format!(
            "IssuerSerialV2 serial {} is not the certificate's {}",
            serial
                .as_bytes()
                .iter()
                .map(|b| format!("{b:02X}"))
                .collect::<String>(),
            cert.serial_hex()
        )));
    }
    let ours = dn::from_name(cert.issuer_name());
    let issuer_ok = names.iter().any(|g| match g {
        GeneralName::DirectoryName(n) => dn::same(&dn::from_name(n), &ours),
        _ => false,
    });
    if !issuer_ok {
        return Err(bad(format!(
            "IssuerSerialV2 does not name the certificate's issuer {:?}",
            cert.issuer()
        )));
    }
    Ok(())
}

fn check_signature_value(
    cert: &Certificate,
    alg: SigAlg,
    signed_info: &[u8],
    sv: &[u8],
) -> Result<(), XadesError> {
    let key = cert
        .public_key()
        .map_err(|e| InvalidSignature::Certificate(e.to_string()))?;
    if let PublicKey::Rsa(k) = &key {
        use rsa::traits::PublicKeyParts as _;
        if k.size() < 256 {
            return Err(InvalidSignature::Certificate(format!(
                "RSA key of {} bits; KSeF requires at least 2048",
                k.size() * 8
            ))
            .into());
        }
    }
    let hashed = alg.hash().digest(signed_info);
    let ok = match (key, alg) {
        (PublicKey::Rsa(k), SigAlg::RsaPkcs1(h)) => {
            let scheme = match h {
                Hash::Sha1 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha1::Sha1>(),
                Hash::Sha256 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha2::Sha256>(),
                Hash::Sha384 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha2::Sha384>(),
                Hash::Sha512 => rsa::pkcs1v15::Pkcs1v15Sign::new::<sha2::Sha512>(),
            };
            k.verify(scheme, &hashed, sv).is_ok()
        }
        (PublicKey::Rsa(k), SigAlg::RsaPss(h)) => match h {
            Hash::Sha256 => k.verify(pss::<sha2::Sha256>(), &hashed, sv).is_ok(),
            Hash::Sha384 => k.verify(pss::<sha2::Sha384>(), &hashed, sv).is_ok(),
            Hash::Sha512 => k.verify(pss::<sha2::Sha512>(), &hashed, sv).is_ok(),
            Hash::Sha1 => false,
        },
        (PublicKey::P256(k), SigAlg::Ecdsa(_)) => {
            use p256::ecdsa::signature::hazmat::PrehashVerifier as _;
            // XMLDSig mandates raw r||s; tolerate DER from non-conforming signers.
            let sig = if sv.len() == 64 {
                p256::ecdsa::Signature::from_slice(sv).ok()
            } else if sv.first() == Some(&0x30) {
                p256::ecdsa::Signature::from_der(sv).ok()
            } else {
                None
            };
            sig.is_some_and(|s| k.verify_prehash(&hashed, &s).is_ok())
        }
        (_, alg) => {
            return Err(InvalidSignature::UnsupportedAlgorithm(format!(
                "{alg:?} with the certificate's key type"
            ))
            .into());
        }
    };
    if ok {
        Ok(())
    } else {
        Err(InvalidSignature::SignatureMismatch.into())
    }
}

fn pss<D: sha2::Digest + sha2::digest::FixedOutputReset>() -> rsa::pss::Pss<D> {
    // Salt length auto-detected (XMLDSig PSS without RSAPSSParams uses the hash length, but be
    // liberal in what we accept).
    rsa::pss::Pss {
        blinded: false,
        digest: D::new(),
        salt_len: None,
    }
}

/// Distinguished-name strings as written in `X509IssuerName` (RFC 4514, RFC 2253 and .NET
/// styles), compared as names rather than strings.
mod dn {
    use x509_cert::name::Name;

    /// (OID in dotted form, value) pairs.
    pub(super) type Dn = Vec<(String, String)>;

    fn oid_for(key: &str) -> Option<&'static str> {
        let k = key.trim().to_ascii_uppercase();
        let k = k.strip_prefix("OID.").unwrap_or(&k).to_owned();
        if k.chars().all(|c| c.is_ascii_digit() || c == '.') && !k.is_empty() {
            return KNOWN
                .iter()
                .find(|(o, _)| *o == k)
                .map(|(o, _)| *o)
                .or(Some("")); // a dotted OID: handled by caller
        }
        KNOWN
            .iter()
            .find(|(_, names)| names.split('|').any(|n| n == k))
            .map(|(o, _)| *o)
    }

    const KNOWN: &[(&str, &str)] = &[
        ("2.5.4.3", "CN|COMMONNAME"),
        ("2.5.4.6", "C|COUNTRYNAME"),
        ("2.5.4.7", "L|LOCALITYNAME"),
        ("2.5.4.8", "ST|S|STATEORPROVINCENAME"),
        ("2.5.4.10", "O|ORGANIZATIONNAME"),
        ("2.5.4.11", "OU|ORGANIZATIONALUNITNAME"),
        ("2.5.4.9", "STREET|STREETADDRESS"),
        ("0.9.2342.19200300.100.1.25", "DC|DOMAINCOMPONENT"),
        ("0.9.2342.19200300.100.1.1", "UID|USERID"),
        ("2.5.4.4", "SN|SURNAME"),
        ("2.5.4.42", "G|GN|GIVENNAME"),
        ("2.5.4.5", "SERIALNUMBER"),
        ("2.5.4.12", "T|TITLE"),
        ("2.5.4.97", "ORGANIZATIONIDENTIFIER"),
        ("1.2.840.113549.1.9.1", "E|EMAIL|EMAILADDRESS"),
    ];

    /// Parses a DN string; `None` when it uses an attribute name we do not know or a
    /// `#hex` value (then only the serial number is compared).
    pub(super) fn parse(s: &str) -> Option<Dn> {
        let mut out = Vec::new();
        let mut chars = s.chars().peekable();
        loop {
            // type
            let mut key = String::new();
            for c in chars.by_ref() {
                if c == '=' {
                    break;
                }
                key.push(c);
            }
            let key = key.trim().to_owned();
            if key.is_empty() {
                break;
            }
            let oid = match oid_for(&key)? {
                "" => key
                    .trim_start_matches("OID.")
                    .trim_start_matches("oid.")
                    .to_owned(),
                o => o.to_owned(),
            };
            // value
            while chars.peek() == Some(&' ') {
                chars.next();
            }
            let mut val = String::new();
            if chars.peek() == Some(&'#') {
                return None;
            }
            if chars.peek() == Some(&'"') {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => val.push(chars.next()?),
                        c => val.push(c),
                    }
                }
                for c in chars.by_ref() {
                    if c == ',' || c == '+' || c == ';' {
                        break;
                    }
                }
            } else {
                let mut pending_space = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        ',' | '+' | ';' => break,
                        '\\' => {
                            let n = chars.next()?;
                            if n.is_ascii_hexdigit() {
                                // \hh: a UTF-8 byte; collect consecutive escapes.
                                let m = chars.next()?;
                                let b = u8::from_str_radix(&format!("{n}{m}"), 16).ok()?;
                                let mut bytes = vec![b];
                                while chars.peek() == Some(&'\\') {
                                    let mut look = chars.clone();
                                    look.next();
                                    match (look.next(), look.next()) {
                                        (Some(a), Some(b2))
                                            if a.is_ascii_hexdigit() && b2.is_ascii_hexdigit() =>
                                        {
                                            bytes.push(
                                                u8::from_str_radix(&format!("{a}{b2}"), 16).ok()?,
                                            );
                                            chars = look;
                                        }
                                        _ => break,
                                    }
                                }
                                val.push_str(&pending_space);
                                pending_space.clear();
                                val.push_str(&String::from_utf8(bytes).ok()?);
                            } else {
                                val.push_str(&pending_space);
                                pending_space.clear();
                                val.push(n);
                            }
                        }
                        ' ' => pending_space.push(' '),
                        c => {
                            val.push_str(&pending_space);
                            pending_space.clear();
                            val.push(c);
                        }
                    }
                }
            }
            out.push((oid, val));
            if chars.peek().is_none() {
                break;
            }
        }
        if out.is_empty() { None } else { Some(out) }
    }

    pub(super) fn from_name(name: &Name) -> Dn {
        name.iter()
            .map(|atv| {
                (
                    atv.oid.to_string(),
                    crate::cert::atv_string(atv).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// Same attributes and values, in any order (signers disagree on RDN order), values
    /// compared case-insensitively after trimming (caseIgnoreMatch).
    pub(super) fn same(a: &Dn, b: &Dn) -> bool {
        let norm = |d: &Dn| {
            let mut v: Vec<(String, String)> = d
                .iter()
                .map(|(o, s)| (o.clone(), s.trim().to_lowercase()))
                .collect();
            v.sort();
            v
        };
        norm(a) == norm(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_cert(name: &str) -> Certificate {
        let p = format!("{}/../../fixtures/xades/{name}", env!("CARGO_MANIFEST_DIR"));
        Certificate::from_pem(&std::fs::read(p).unwrap()).unwrap()
    }

    #[test]
    fn issuer_serial_v2_identifies_exactly_its_certificate() {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD;
        let a = fixture_cert("xmlsec1cli-ec-personal.cert.pem");
        let b = fixture_cert("xmlsec1cli-rsa-seal.cert.pem");
        let v2 = b64.encode(issuer_serial_v2_der(&a).unwrap());
        check_issuer_serial_v2(&v2, &a).unwrap();
        let e = check_issuer_serial_v2(&v2, &b).unwrap_err().to_string();
        assert!(e.contains("IssuerSerialV2 serial"), "{e}");
        // Same serial, another issuer.
        let der = issuer_serial_v2_der(&a).unwrap();
        let mut other = der.clone();
        let at = other.windows(6).position(|w| w == b"TINPL-").unwrap() + 6;
        other[at] = if other[at] == b'5' { b'6' } else { b'5' };
        let e = check_issuer_serial_v2(&b64.encode(&other), &a)
            .unwrap_err()
            .to_string();
        assert!(e.contains("issuer"), "{e}");
        // Truncated, trailing garbage, not Base64.
        for bad in [
            &der[..der.len() - 1],
            &[der.as_slice(), b"\x00"].concat()[..],
        ] {
            assert!(check_issuer_serial_v2(&b64.encode(bad), &a).is_err());
        }
        assert!(check_issuer_serial_v2("!!", &a).is_err());
    }

    #[test]
    fn dn_parsing_styles() {
        let want = vec![
            ("2.5.4.6".to_owned(), "PL".to_owned()),
            ("2.5.4.3".to_owned(), "Firma, a \"b\"".to_owned()),
            ("2.5.4.97".to_owned(), "VATPL-5265877635".to_owned()),
            ("2.5.4.10".to_owned(), "Żółw".to_owned()),
        ];
        for s in [
            r#"C=PL,CN=Firma\, a \"b\",2.5.4.97=VATPL-5265877635,O=Żółw"#,
            r#"C=PL, CN="Firma, a \"b\"", OID.2.5.4.97=VATPL-5265877635, O=\C5\BB\C3\B3\C5\82w"#,
            r#"O=Żółw,organizationIdentifier=VATPL-5265877635,CN=Firma\, a \"b\",C=PL"#,
        ] {
            let got = dn::parse(s).unwrap();
            assert!(dn::same(&got, &want), "{s}: {got:?}");
        }
        assert!(dn::parse("CN=#0403616263").is_none());
        assert!(dn::parse("FOO=bar").is_none());
    }

    #[test]
    fn time_format() {
        let t = OffsetDateTime::from_unix_timestamp(1_764_037_043).unwrap();
        assert_eq!(format_time(t), "2025-11-25T02:17:23Z");
    }

    #[test]
    fn ksef_codes() {
        assert_eq!(XadesError::NoSignature.ksef_code(), Some(9102));
        assert_eq!(XadesError::TooManySignatures(2).ksef_code(), Some(9103));
        assert_eq!(
            XadesError::from(InvalidSignature::SignatureMismatch).ksef_code(),
            Some(9105)
        );
        assert_eq!(
            XadesError::InvalidDocument("x".into()).ksef_code(),
            Some(9101)
        );
    }
}
