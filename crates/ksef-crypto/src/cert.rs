//! X.509 certificates: parsing (PEM/DER), names as RFC 4514 strings, serial numbers, validity,
//! fingerprints and public keys; self-signed test certificates and CA-issued certificates.

use std::fmt::Write as _;

use der::{Decode, Encode};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::name::Name;

use crate::keys::{PrivateKey, PublicKey};
use crate::{Error, Result};

/// A parsed X.509 certificate together with its exact DER bytes.
///
/// Cheap accessors for everything KSeF needs: subject and issuer as RFC 4514 strings (attributes
/// without a standard short name, such as `organizationIdentifier`, are written with their dotted
/// OID: `2.5.4.97=VATPL-1234567890`), the serial number, validity, the SHA-256 fingerprint and the
/// public key.
#[derive(Clone)]
pub struct Certificate {
    der: Vec<u8>,
    inner: x509_cert::Certificate,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certificate")
            .field("subject", &self.subject())
            .field("issuer", &self.issuer())
            .field("serial", &self.serial_hex())
            .finish()
    }
}

impl PartialEq for Certificate {
    fn eq(&self, other: &Self) -> bool {
        self.der == other.der
    }
}
impl Eq for Certificate {}

impl Certificate {
    /// Parses a DER-encoded certificate (the whole input must be one certificate).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let inner = x509_cert::Certificate::from_der(der)
            .map_err(|e| Error::InvalidCertificate(format!("bad DER: {e}")))?;
        Ok(Self {
            der: der.to_vec(),
            inner,
        })
    }

    /// Parses the first `CERTIFICATE` block of a PEM document.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let mut all = Self::chain_from_pem(pem)?;
        if all.is_empty() {
            return Err(Error::InvalidCertificate(
                "no CERTIFICATE block in the PEM input".into(),
            ));
        }
        Ok(all.swap_remove(0))
    }

    /// Parses every `CERTIFICATE` block of a PEM document (other blocks, such as keys, are skipped).
    pub fn chain_from_pem(pem: &[u8]) -> Result<Vec<Self>> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| Error::InvalidCertificate("PEM input is not UTF-8".into()))?;
        let mut out = Vec::new();
        for (label, der) in pem_blocks(text)? {
            if label == "CERTIFICATE" {
                out.push(Self::from_der(&der)?);
            }
        }
        Ok(out)
    }

    /// Parses PEM or DER, whichever the input is.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self> {
        if bytes.first() == Some(&0x30) {
            Self::from_der(bytes)
        } else {
            Self::from_pem(bytes)
        }
    }

    /// Parses a certificate given as Base64 of its DER (as KSeF's JSON fields carry it).
    pub fn from_base64_der(b64: &str) -> Result<Self> {
        let der = crate::hash::decode_base64(b64.trim(), "certificate")?;
        Self::from_der(&der)
    }

    /// Wraps an already parsed x509-cert certificate.
    pub fn from_x509(inner: x509_cert::Certificate) -> Result<Self> {
        let der = inner
            .to_der()
            .map_err(|e| Error::InvalidCertificate(format!("cannot encode: {e}")))?;
        Ok(Self { der, inner })
    }

    /// The exact DER bytes of the certificate.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// The certificate as PEM (`-----BEGIN CERTIFICATE-----`, 64-column Base64, LF line ends).
    pub fn to_pem(&self) -> String {
        pem_encode("CERTIFICATE", &self.der)
    }

    /// The certificate as Base64 of its DER (the form KSeF's JSON and `ds:X509Certificate` use).
    pub fn to_base64(&self) -> String {
        crate::hash::base64(&self.der)
    }

    /// The parsed x509-cert structure, for anything not covered here.
    pub fn x509(&self) -> &x509_cert::Certificate {
        &self.inner
    }

    /// The subject as an RFC 4514 string (most specific attribute first), e.g.
    /// `CN=Firma,2.5.4.97=VATPL-1234567890,O=Firma sp. z o.o.,C=PL`.
    pub fn subject(&self) -> String {
        rfc4514(self.inner.tbs_certificate().subject())
    }

    /// The issuer as an RFC 4514 string (see [`Certificate::subject`]).
    pub fn issuer(&self) -> String {
        rfc4514(self.inner.tbs_certificate().issuer())
    }

    /// The subject name structure.
    pub fn subject_name(&self) -> &Name {
        self.inner.tbs_certificate().subject()
    }

    /// The issuer name structure.
    pub fn issuer_name(&self) -> &Name {
        self.inner.tbs_certificate().issuer()
    }

    /// The first value of a subject attribute by OID (e.g. `2.5.4.5` serialNumber), as a string.
    pub fn subject_attribute(&self, oid: &str) -> Option<String> {
        name_attribute(self.subject_name(), oid)
    }

    /// The serial number's DER content octets, big-endian, as encoded (with a leading zero
    /// octet when the first byte's top bit is set).
    pub fn serial_bytes(&self) -> &[u8] {
        self.inner.tbs_certificate().serial_number().as_bytes()
    }

    /// The serial number as the X.509 structure (for DER encoding, e.g. XAdES
    /// `IssuerSerialV2`).
    pub fn serial_number(&self) -> &x509_cert::serial_number::SerialNumber {
        self.inner.tbs_certificate().serial_number()
    }

    /// The serial number as uppercase hex of its DER content octets, exactly as encoded: a
    /// leading `00` octet (DER adds one when the top bit of the first byte is set) is kept, and
    /// so is the `01` of `01F20A5D352AE590`. This is KSeF's `certificateSerialNumber` /
    /// `certSerial` form (the form .NET's `X509Certificate2.SerialNumber` gives); `openssl x509
    /// -serial` differs only for a top-bit-set serial, which it prints without the `00`.
    pub fn serial_hex(&self) -> String {
        let b = self.serial_bytes();
        let mut s = String::with_capacity(b.len() * 2);
        for byte in b {
            let _ = write!(s, "{byte:02X}");
        }
        if s.is_empty() {
            s.push_str("00");
        }
        s
    }

    /// The serial number in decimal (the form of XAdES `X509SerialNumber`).
    pub fn serial_decimal(&self) -> String {
        bytes_to_decimal(strip_leading_zeros(self.serial_bytes()))
    }

    /// Start of validity (`notBefore`).
    pub fn not_before(&self) -> OffsetDateTime {
        to_offset(&self.inner.tbs_certificate().validity().not_before)
    }

    /// End of validity (`notAfter`).
    pub fn not_after(&self) -> OffsetDateTime {
        to_offset(&self.inner.tbs_certificate().validity().not_after)
    }

    /// Whether `at` lies within the validity period (inclusive).
    pub fn is_valid_at(&self, at: OffsetDateTime) -> bool {
        self.not_before() <= at && at <= self.not_after()
    }

    /// SHA-256 of the DER bytes.
    pub fn sha256(&self) -> [u8; 32] {
        Sha256::digest(&self.der).into()
    }

    /// SHA-256 fingerprint as uppercase hex without separators (KSeF's `certificateFingerprint`).
    pub fn fingerprint_sha256_hex(&self) -> String {
        let mut s = String::with_capacity(64);
        for byte in self.sha256() {
            let _ = write!(s, "{byte:02X}");
        }
        s
    }

    /// The DER of the SubjectPublicKeyInfo.
    pub fn spki_der(&self) -> Result<Vec<u8>> {
        self.inner
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| Error::InvalidCertificate(format!("cannot encode the public key: {e}")))
    }

    /// The public key (RSA or P-256).
    pub fn public_key(&self) -> Result<PublicKey> {
        PublicKey::from_spki_der(&self.spki_der()?)
    }

    /// Checks this certificate's signature with `issuer`'s public key (pass `self` for a
    /// self-signed certificate). Supports SHA-256 with RSA PKCS#1 v1.5 or ECDSA P-256.
    pub fn verify_signed_by(&self, issuer: &Certificate) -> Result<()> {
        let tbs = self
            .inner
            .tbs_certificate()
            .to_der()
            .map_err(|e| Error::InvalidCertificate(format!("cannot encode: {e}")))?;
        let sig = self
            .inner
            .signature()
            .as_bytes()
            .ok_or_else(|| Error::InvalidCertificate("signature has unused bits".into()))?;
        issuer
            .public_key()?
            .verify_x509(self.inner.signature_algorithm(), &tbs, sig)
    }

    /// Whether subject and issuer are the same name (a self-issued, usually self-signed certificate).
    pub fn is_self_issued(&self) -> bool {
        self.subject_name() == self.issuer_name()
    }
}

fn to_offset(t: &x509_cert::time::Time) -> OffsetDateTime {
    let secs = t.to_unix_duration().as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(i64::MAX))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

fn strip_leading_zeros(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&x| x == 0).count();
    &b[n..]
}

/// Big-endian unsigned bytes to a decimal string (schoolbook division; serials are ≤ 20 bytes).
fn bytes_to_decimal(bytes: &[u8]) -> String {
    let mut num: Vec<u8> = bytes.to_vec();
    let mut digits = Vec::new();
    while num.iter().any(|&d| d != 0) {
        let mut rem: u32 = 0;
        for d in num.iter_mut() {
            let cur = (rem << 8) | u32::from(*d);
            *d = (cur / 10) as u8;
            rem = cur % 10;
        }
        digits.push(b'0' + rem as u8);
    }
    if digits.is_empty() {
        return "0".into();
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// The short names RFC 4514 §3 defines; every other attribute is written with its dotted OID.
const SHORT_NAMES: &[(&str, &str)] = &[
    ("2.5.4.3", "CN"),
    ("2.5.4.7", "L"),
    ("2.5.4.8", "ST"),
    ("2.5.4.10", "O"),
    ("2.5.4.11", "OU"),
    ("2.5.4.6", "C"),
    ("2.5.4.9", "STREET"),
    ("0.9.2342.19200300.100.1.25", "DC"),
    ("0.9.2342.19200300.100.1.1", "UID"),
];

/// Formats a name per RFC 4514: RDNs in reverse order, `+` between multi-valued RDN members,
/// standard short names where RFC 4514 defines them, dotted OIDs otherwise; string values
/// escaped, non-string values as `#hex` of their DER.
pub fn rfc4514(name: &Name) -> String {
    let mut out = String::new();
    let rdns: Vec<_> = name.iter_rdn().collect();
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, atv) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            write_atv(&mut out, atv);
        }
    }
    out
}

fn write_atv(out: &mut String, atv: &AttributeTypeAndValue) {
    let oid = atv.oid.to_string();
    match SHORT_NAMES.iter().find(|(o, _)| *o == oid) {
        Some((_, short)) => out.push_str(short),
        None => out.push_str(&oid),
    }
    out.push('=');
    match atv_string(atv) {
        Some(v) => escape_value(out, &v),
        None => {
            out.push('#');
            if let Ok(der) = atv.value.to_der() {
                for b in der {
                    let _ = write!(out, "{b:02x}");
                }
            }
        }
    }
}

fn escape_value(out: &mut String, v: &str) {
    let n = v.chars().count();
    for (i, c) in v.chars().enumerate() {
        match c {
            '#' if i == 0 => out.push_str("\\#"),
            ' ' if i == 0 || i + 1 == n => out.push_str("\\ "),
            '"' | '+' | ',' | ';' | '<' | '>' | '\\' | '=' => {
                out.push('\\');
                out.push(c);
            }
            '\0' => out.push_str("\\00"),
            _ => out.push(c),
        }
    }
}

/// Decodes a DirectoryString-like attribute value to text.
pub(crate) fn atv_string(atv: &AttributeTypeAndValue) -> Option<String> {
    use der::{Tag, Tagged as _};
    let v = &atv.value;
    let bytes = v.value();
    match v.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String | Tag::VisibleString => {
            std::str::from_utf8(bytes).ok().map(str::to_owned)
        }
        // T61 in practice holds Latin-1.
        Tag::TeletexString => Some(bytes.iter().map(|&b| char::from(b)).collect()),
        Tag::BmpString => {
            if !bytes.len().is_multiple_of(2) {
                return None;
            }
            let units: Vec<u16> = bytes
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16(&units).ok()
        }
        _ => None,
    }
}

fn name_attribute(name: &Name, oid: &str) -> Option<String> {
    name.iter()
        .find(|atv| atv.oid.to_string() == oid)
        .and_then(atv_string)
}

/// Splits a PEM document into `(label, der)` blocks. Text outside blocks is ignored.
pub(crate) fn pem_blocks(text: &str) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let line = line.trim();
        let Some(label) = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut b64 = String::new();
        let mut closed = false;
        let mut headers = false;
        for l in lines.by_ref() {
            let l = l.trim();
            if l == end {
                closed = true;
                break;
            }
            if l.contains(':') {
                // RFC 1421 headers (legacy encrypted PEM): note and skip.
                headers = true;
                continue;
            }
            b64.push_str(l);
        }
        if !closed {
            return Err(Error::InvalidCertificate(format!(
                "PEM block {label} has no END line"
            )));
        }
        if headers {
            return Err(Error::InvalidKey(format!(
                "PEM block {label} uses legacy RFC 1421 encryption headers; convert it to PKCS#8 \
                 (openssl pkcs8 -topk8)"
            )));
        }
        let der = crate::hash::decode_base64(&b64, "PEM body")?;
        out.push((label.to_owned(), der));
    }
    Ok(out)
}

/// Encodes DER as PEM with the given label (64-column lines, LF).
pub(crate) fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = crate::hash::base64(der);
    let mut s = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    let _ = writeln!(s, "-----BEGIN {label}-----");
    for chunk in b64.as_bytes().chunks(64) {
        s.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        s.push('\n');
    }
    let _ = writeln!(s, "-----END {label}-----");
    s
}

// ---------------------------------------------------------------------------------------------
// Distinguished names and certificate issuance

/// The subject attributes KSeF uses (and `GET /certificates/enrollments/data` returns), written in
/// a fixed order. Empty optional fields are left out.
///
/// Encoding: `countryName` and `serialNumber` as PrintableString (when printable), the rest as
/// UTF8String; `uniqueIdentifier` (2.5.4.45) is written as a UTF8String of the text KSeF gives.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DistinguishedName {
    /// commonName (2.5.4.3), required.
    pub common_name: String,
    /// countryName (2.5.4.6), two letters, required.
    pub country_name: String,
    /// givenName (2.5.4.42).
    pub given_name: Option<String>,
    /// surname (2.5.4.4).
    pub surname: Option<String>,
    /// serialNumber (2.5.4.5), e.g. `TINPL-1234567890` or `PNOPL-80010112345`.
    pub serial_number: Option<String>,
    /// uniqueIdentifier (2.5.4.45).
    pub unique_identifier: Option<String>,
    /// organizationName (2.5.4.10).
    pub organization_name: Option<String>,
    /// organizationIdentifier (2.5.4.97), e.g. `VATPL-1234567890`.
    pub organization_identifier: Option<String>,
}

/// A person's identifier in a personal certificate's `serialNumber`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersonId {
    /// A NIP (10 digits): `TINPL-<NIP>`.
    Nip(String),
    /// A PESEL (11 digits): `PNOPL-<PESEL>`.
    Pesel(String),
}

fn digits(s: &str, n: usize, what: &str) -> Result<()> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{what} must be {n} digits, got {s:?}"
        )))
    }
}

impl DistinguishedName {
    /// A personal (signature) certificate subject: givenName, surname, serialNumber
    /// (`TINPL-<NIP>` or `PNOPL-<PESEL>`), commonName, `C=PL`.
    pub fn personal(
        given_name: &str,
        surname: &str,
        id: PersonId,
        common_name: &str,
    ) -> Result<Self> {
        let serial = match id {
            PersonId::Nip(n) => {
                digits(&n, 10, "NIP")?;
                format!("TINPL-{n}")
            }
            PersonId::Pesel(p) => {
                digits(&p, 11, "PESEL")?;
                format!("PNOPL-{p}")
            }
        };
        Ok(Self {
            common_name: common_name.to_owned(),
            country_name: "PL".into(),
            given_name: Some(given_name.to_owned()),
            surname: Some(surname.to_owned()),
            serial_number: Some(serial),
            ..Self::default()
        })
    }

    /// A seal (organisation) certificate subject: organizationName, organizationIdentifier
    /// `VATPL-<NIP>`, commonName, `C=PL`.
    pub fn seal(organization_name: &str, nip: &str, common_name: &str) -> Result<Self> {
        digits(nip, 10, "NIP")?;
        Ok(Self {
            common_name: common_name.to_owned(),
            country_name: "PL".into(),
            organization_name: Some(organization_name.to_owned()),
            organization_identifier: Some(format!("VATPL-{nip}")),
            ..Self::default()
        })
    }

    /// The X.501 name. RDN order (first to last): C, CN, serialNumber, surname, givenName,
    /// uniqueIdentifier, organizationIdentifier, O — so that the RFC 4514 string reads like the
    /// reference test certificates (`2.5.4.42=Jan,2.5.4.4=Kowalski,2.5.4.5=TINPL-…,CN=…,C=PL`).
    pub fn to_name(&self) -> Result<Name> {
        if self.common_name.trim().is_empty() {
            return Err(Error::InvalidInput("commonName must not be empty".into()));
        }
        if self.country_name.len() != 2
            || !self.country_name.bytes().all(|b| b.is_ascii_uppercase())
        {
            return Err(Error::InvalidInput(format!(
                "countryName must be two capital letters, got {:?}",
                self.country_name
            )));
        }
        let attrs: [(&str, Option<&str>); 8] = [
            ("2.5.4.6", Some(self.country_name.as_str())),
            ("2.5.4.3", Some(self.common_name.as_str())),
            ("2.5.4.5", self.serial_number.as_deref()),
            ("2.5.4.4", self.surname.as_deref()),
            ("2.5.4.42", self.given_name.as_deref()),
            ("2.5.4.45", self.unique_identifier.as_deref()),
            ("2.5.4.97", self.organization_identifier.as_deref()),
            ("2.5.4.10", self.organization_name.as_deref()),
        ];
        let mut seq = x509_cert::name::RdnSequence::default();
        for (oid, value) in attrs {
            let Some(value) = value.filter(|v| !v.is_empty()) else {
                continue;
            };
            let oid = const_oid::ObjectIdentifier::new(oid)
                .map_err(|e| Error::InvalidInput(format!("bad OID {oid}: {e}")))?;
            let printable = value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" '()+,-./:=?".contains(&b));
            let tag = if (oid.to_string() == "2.5.4.6" || oid.to_string() == "2.5.4.5") && printable
            {
                der::Tag::PrintableString
            } else {
                der::Tag::Utf8String
            };
            let any = der::Any::new(tag, value.as_bytes())
                .map_err(|e| Error::InvalidInput(format!("cannot encode {oid}: {e}")))?;
            let mut rdn = x509_cert::name::RelativeDistinguishedName::default();
            rdn.insert(AttributeTypeAndValue { oid, value: any })
                .map_err(|e| Error::InvalidInput(format!("cannot encode {oid}: {e}")))?;
            seq.push(rdn);
        }
        // Name has no public constructor without x509-cert's `hazmat` feature: go through DER.
        let der = seq
            .to_der()
            .map_err(|e| Error::InvalidInput(format!("cannot encode name: {e}")))?;
        Name::from_der(&der).map_err(|e| Error::InvalidInput(format!("cannot encode name: {e}")))
    }
}

/// What a certificate is for; sets the keyUsage and basicConstraints extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertificateUse {
    /// Signing (XAdES, KSeF `Authentication` certificates): keyUsage digitalSignature.
    DigitalSignature,
    /// Non-repudiation (KSeF `Offline` certificates for KOD II): keyUsage nonRepudiation.
    NonRepudiation,
    /// Both digitalSignature and nonRepudiation (typical of qualified certificates).
    SignatureAndNonRepudiation,
    /// A certification authority (the simulator's issuer): keyCertSign, cRLSign, CA:true.
    Ca,
}

/// Options for issuing a certificate.
#[derive(Clone, Debug)]
pub struct IssueOptions {
    /// Start of validity.
    pub not_before: OffsetDateTime,
    /// End of validity.
    pub not_after: OffsetDateTime,
    /// Serial number bytes (big-endian, positive); random 8 bytes when `None`.
    pub serial: Option<Vec<u8>>,
    /// The intended use.
    pub usage: CertificateUse,
}

impl IssueOptions {
    /// KSeF's test-certificate defaults: valid from one hour ago for two years, random serial,
    /// digitalSignature (and nonRepudiation).
    pub fn test_defaults() -> Self {
        let now = OffsetDateTime::now_utc();
        Self {
            not_before: now - time::Duration::hours(1),
            not_after: now + time::Duration::days(730),
            serial: None,
            usage: CertificateUse::SignatureAndNonRepudiation,
        }
    }
}

/// A self-signed test certificate (accepted by KSeF TEST only) for `subject`, signed with `key`
/// (RSA: sha256WithRSAEncryption; P-256: ecdsa-with-SHA256).
pub fn self_signed(
    key: &PrivateKey,
    subject: &DistinguishedName,
    opts: &IssueOptions,
) -> Result<Certificate> {
    let name = subject.to_name()?;
    issue_inner(key, name.clone(), name, &key.public_key(), opts)
}

/// A self-signed personal test certificate (see [`DistinguishedName::personal`]) with
/// [`IssueOptions::test_defaults`].
pub fn test_personal(
    key: &PrivateKey,
    given_name: &str,
    surname: &str,
    id: PersonId,
) -> Result<Certificate> {
    let cn = format!("{given_name} {surname}");
    let dn = DistinguishedName::personal(given_name, surname, id, &cn)?;
    self_signed(key, &dn, &IssueOptions::test_defaults())
}

/// A self-signed seal test certificate (see [`DistinguishedName::seal`]) with
/// [`IssueOptions::test_defaults`].
pub fn test_seal(key: &PrivateKey, organization_name: &str, nip: &str) -> Result<Certificate> {
    let dn = DistinguishedName::seal(organization_name, nip, organization_name)?;
    self_signed(key, &dn, &IssueOptions::test_defaults())
}

/// Issues a certificate for `subject` / `subject_key`, signed by the CA (`ca_key`, `ca_cert`).
/// The simulator uses this to turn CSRs into KSeF certificates. Fails with
/// [`Error::KeyMismatch`] if `ca_key` does not belong to `ca_cert`.
pub fn issue(
    ca_key: &PrivateKey,
    ca_cert: &Certificate,
    subject: &Name,
    subject_key: &PublicKey,
    opts: &IssueOptions,
) -> Result<Certificate> {
    ca_key.check_matches(ca_cert)?;
    issue_inner(
        ca_key,
        ca_cert.subject_name().clone(),
        subject.clone(),
        subject_key,
        opts,
    )
}

fn issue_inner(
    signer_key: &PrivateKey,
    issuer: Name,
    subject: Name,
    subject_key: &PublicKey,
    opts: &IssueOptions,
) -> Result<Certificate> {
    use x509_cert::builder::{Builder as _, CertificateBuilder};
    if opts.not_after <= opts.not_before {
        return Err(Error::InvalidInput(
            "notAfter must be later than notBefore".into(),
        ));
    }
    let serial_bytes = match &opts.serial {
        Some(b) => b.clone(),
        None => {
            let mut b = vec![0u8; 8];
            getrandom::fill(&mut b)
                .map_err(|e| Error::InvalidInput(format!("system random generator failed: {e}")))?;
            b[0] &= 0x7f;
            b[0] |= 0x01; // positive, and no leading zero so the length stays 8
            b
        }
    };
    let serial = x509_cert::serial_number::SerialNumber::new(&serial_bytes)
        .map_err(|e| Error::InvalidInput(format!("bad serial number: {e}")))?;
    let to_time = |t: OffsetDateTime| {
        x509_cert::time::Time::try_from(std::time::SystemTime::from(t))
            .map_err(|e| Error::InvalidInput(format!("bad validity time: {e}")))
    };
    let validity =
        x509_cert::time::Validity::new(to_time(opts.not_before)?, to_time(opts.not_after)?);
    let spki_der = subject_key.to_spki_der()?;
    let spki = spki::SubjectPublicKeyInfoOwned::from_der(&spki_der)
        .map_err(|e| Error::InvalidInput(format!("bad public key: {e}")))?;
    let profile = Profile {
        issuer,
        subject,
        usage: opts.usage,
    };
    let builder = CertificateBuilder::new(profile, serial, validity, spki)
        .map_err(|e| Error::InvalidInput(format!("cannot build certificate: {e}")))?;
    let signer = X509Signer::new(signer_key)?;
    let cert = builder
        .build::<_, RawSignature>(&signer)
        .map_err(|e| Error::Sign(format!("cannot sign certificate: {e}")))?;
    Certificate::from_x509(cert)
}

struct Profile {
    issuer: Name,
    subject: Name,
    usage: CertificateUse,
}

impl x509_cert::builder::profile::BuilderProfile for Profile {
    fn get_issuer(&self, _subject: &Name) -> Name {
        self.issuer.clone()
    }

    fn get_subject(&self) -> Name {
        self.subject.clone()
    }

    fn build_extensions(
        &self,
        spk: spki::SubjectPublicKeyInfoRef<'_>,
        issuer_spk: spki::SubjectPublicKeyInfoRef<'_>,
        tbs: &x509_cert::TbsCertificate,
    ) -> x509_cert::builder::Result<Vec<x509_cert::ext::Extension>> {
        use x509_cert::ext::ToExtension as _;
        use x509_cert::ext::pkix::{
            AuthorityKeyIdentifier, BasicConstraints, KeyUsage, KeyUsages, SubjectKeyIdentifier,
        };
        let mut exts = Vec::new();
        let ca = self.usage == CertificateUse::Ca;
        exts.push(
            BasicConstraints {
                ca,
                path_len_constraint: None,
            }
            .to_extension(tbs.subject(), &exts)?,
        );
        let ku = match self.usage {
            CertificateUse::DigitalSignature => KeyUsages::DigitalSignature.into(),
            CertificateUse::NonRepudiation => KeyUsages::NonRepudiation.into(),
            CertificateUse::SignatureAndNonRepudiation => {
                KeyUsages::DigitalSignature | KeyUsages::NonRepudiation
            }
            CertificateUse::Ca => KeyUsages::KeyCertSign | KeyUsages::CRLSign,
        };
        exts.push(KeyUsage(ku).to_extension(tbs.subject(), &exts)?);
        let ski = SubjectKeyIdentifier::try_from(spk)?;
        exts.push(ski.to_extension(tbs.subject(), &exts)?);
        let aki = SubjectKeyIdentifier::try_from(issuer_spk)?;
        exts.push(
            AuthorityKeyIdentifier {
                key_identifier: Some(aki.0),
                ..Default::default()
            }
            .to_extension(tbs.subject(), &exts)?,
        );
        Ok(exts)
    }
}

/// Adapts a [`PrivateKey`] to the `signature` traits the x509-cert builders want, for both key
/// types at once.
pub(crate) struct X509Signer<'a> {
    key: &'a PrivateKey,
    spki: Vec<u8>,
}

impl<'a> X509Signer<'a> {
    pub(crate) fn new(key: &'a PrivateKey) -> Result<Self> {
        Ok(Self {
            key,
            spki: key.public_key().to_spki_der()?,
        })
    }
}

#[derive(Clone)]
pub(crate) struct SpkiBytes(Vec<u8>);

impl spki::EncodePublicKey for SpkiBytes {
    fn to_public_key_der(&self) -> spki::Result<der::Document> {
        Ok(der::Document::try_from(self.0.as_slice())?)
    }
}

impl signature::Keypair for X509Signer<'_> {
    type VerifyingKey = SpkiBytes;
    fn verifying_key(&self) -> SpkiBytes {
        SpkiBytes(self.spki.clone())
    }
}

impl spki::DynSignatureAlgorithmIdentifier for X509Signer<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<spki::AlgorithmIdentifierOwned> {
        Ok(self.key.x509_scheme().1)
    }
}

pub(crate) struct RawSignature(Vec<u8>);

impl spki::SignatureBitStringEncoding for RawSignature {
    fn to_bitstring(&self) -> der::Result<der::asn1::BitString> {
        der::asn1::BitString::from_bytes(&self.0)
    }
}

impl signature::Signer<RawSignature> for X509Signer<'_> {
    fn try_sign(&self, msg: &[u8]) -> std::result::Result<RawSignature, signature::Error> {
        self.key
            .sign(self.key.x509_scheme().0, msg)
            .map(RawSignature)
            .map_err(|_| signature::Error::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_conversion() {
        assert_eq!(bytes_to_decimal(&[]), "0");
        assert_eq!(bytes_to_decimal(&[0x01, 0x00]), "256");
        assert_eq!(
            bytes_to_decimal(&[0x01, 0xF2, 0x0A, 0x5D, 0x35, 0x2A, 0xE5, 0x90]),
            u64::from_str_radix("01F20A5D352AE590", 16)
                .unwrap()
                .to_string()
        );
    }

    #[test]
    fn escaping() {
        let mut s = String::new();
        escape_value(&mut s, " a,b+c ");
        assert_eq!(s, "\\ a\\,b\\+c\\ ");
    }
}
