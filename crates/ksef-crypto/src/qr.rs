//! KSeF QR-code links (ksef-api.md §11): KOD I, the invoice verification link every invoice
//! carries, and KOD II, the issuer-certificate link of offline invoices with its signature.
//!
//! Only the URLs and signatures are built here; rendering QR images is the SDK's job.
//!
//! - KOD I: `{qrBase}/invoice/{sellerNip}/{DD-MM-YYYY}/{SHA-256 of the invoice, Base64URL}`
//! - KOD II: `{qrBase}/certificate/{contextType}/{contextValue}/{sellerNip}/{certSerialHex}/{hash}/{signature}`
//!   where the signature (Base64URL) is over the URL without `https://` and without the signature
//!   segment: RSA-PSS SHA-256 (MGF1-SHA-256, salt 32) or ECDSA P-256 SHA-256 as raw r‖s.

use time::Date;

use crate::cert::Certificate;
use crate::hash::{base64url, decode_base64url};
use crate::keys::{PrivateKey, PublicKey, SignatureScheme};
use crate::{Error, Result};

/// The KSeF context type in a KOD II link (the authentication context of the issuer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ContextType {
    /// A NIP context.
    Nip,
    /// An internal identifier (`NIP-5digits`).
    InternalId,
    /// An EU VAT number context.
    NipVatUe,
    /// A Peppol provider.
    PeppolId,
}

impl ContextType {
    /// The path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nip => "Nip",
            Self::InternalId => "InternalId",
            Self::NipVatUe => "NipVatUe",
            Self::PeppolId => "PeppolId",
        }
    }
}

fn check_nip(nip: &str) -> Result<()> {
    if nip.len() == 10 && nip.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "seller NIP must be 10 digits, got {nip:?}"
        )))
    }
}

fn check_segment(what: &str, s: &str) -> Result<()> {
    if s.is_empty()
        || s.bytes()
            .any(|b| b == b'/' || b == b'?' || b == b'#' || b <= b' ' || b >= 0x7f)
    {
        Err(Error::InvalidInput(format!(
            "{what} {s:?} cannot be a URL path segment"
        )))
    } else {
        Ok(())
    }
}

fn base(qr_base: &str) -> &str {
    qr_base.trim_end_matches('/')
}

/// KOD I: the invoice verification link for an invoice with SHA-256 `invoice_hash` (of the exact
/// XML bytes sent), issued (`P_1`) on `issue_date` by `seller_nip`.
///
/// ```
/// # use ksef_crypto::qr;
/// let hash = ksef_crypto::hash::decode_base64url("UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE", "h")?;
/// let url = qr::invoice_url(
///     "https://qr-test.ksef.mf.gov.pl",
///     "1111111111",
///     time::macros::date!(2026 - 02 - 01),
///     &<[u8; 32]>::try_from(hash.as_slice())?,
/// )?;
/// assert_eq!(url, "https://qr-test.ksef.mf.gov.pl/invoice/1111111111/01-02-2026/UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn invoice_url(
    qr_base: &str,
    seller_nip: &str,
    issue_date: Date,
    invoice_hash: &[u8; 32],
) -> Result<String> {
    check_nip(seller_nip)?;
    Ok(format!(
        "{}/invoice/{}/{:02}-{:02}-{:04}/{}",
        base(qr_base),
        seller_nip,
        issue_date.day(),
        u8::from(issue_date.month()),
        issue_date.year(),
        base64url(invoice_hash)
    ))
}

/// KOD I from the invoice XML bytes (hashes them).
pub fn invoice_url_for_xml(
    qr_base: &str,
    seller_nip: &str,
    issue_date: Date,
    xml: &[u8],
) -> Result<String> {
    invoice_url(qr_base, seller_nip, issue_date, &crate::hash::sha256(xml))
}

/// The parts of a KOD II link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateLink {
    /// The full URL, signature included: what goes into the QR code.
    pub url: String,
    /// The string that was signed (the URL without scheme and signature segment).
    pub signed_string: String,
    /// The raw signature bytes.
    pub signature: Vec<u8>,
}

/// The data of a KOD II link, before signing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertificateLinkData<'a> {
    /// QR base URL, e.g. `https://qr-test.ksef.mf.gov.pl`.
    pub qr_base: &'a str,
    /// The issuer's context type.
    pub context_type: ContextType,
    /// The issuer's context identifier value.
    pub context_value: &'a str,
    /// The seller's NIP.
    pub seller_nip: &'a str,
    /// Serial number of the KSeF **Offline** certificate, uppercase hex (e.g. `01F20A5D352AE590`).
    pub certificate_serial: &'a str,
    /// SHA-256 of the invoice XML.
    pub invoice_hash: [u8; 32],
}

impl CertificateLinkData<'_> {
    /// The URL without signature segment (with the scheme).
    pub fn unsigned_url(&self) -> Result<String> {
        check_segment("context value", self.context_value)?;
        check_nip(self.seller_nip)?;
        if self.certificate_serial.is_empty()
            || !self
                .certificate_serial
                .bytes()
                .all(|b| b.is_ascii_hexdigit())
        {
            return Err(Error::InvalidInput(format!(
                "certificate serial must be hex, got {:?}",
                self.certificate_serial
            )));
        }
        Ok(format!(
            "{}/certificate/{}/{}/{}/{}/{}",
            base(self.qr_base),
            self.context_type.as_str(),
            self.context_value,
            self.seller_nip,
            self.certificate_serial.to_ascii_uppercase(),
            base64url(&self.invoice_hash)
        ))
    }

    /// The string to sign: [`CertificateLinkData::unsigned_url`] without `https://` (or
    /// `http://`) and without a trailing `/`.
    pub fn signed_string(&self) -> Result<String> {
        Ok(strip_scheme(&self.unsigned_url()?)
            .trim_end_matches('/')
            .to_owned())
    }

    /// Signs with the private key of the Offline certificate: RSA-PSS (SHA-256, MGF1-SHA-256,
    /// salt 32) for RSA, ECDSA P-256 SHA-256 as 64-byte r‖s for EC.
    pub fn sign(&self, key: &PrivateKey) -> Result<CertificateLink> {
        let scheme = match key {
            PrivateKey::Rsa(_) => SignatureScheme::RsaPssSha256,
            PrivateKey::P256(_) => SignatureScheme::EcdsaP256Sha256P1363,
        };
        let unsigned = self.unsigned_url()?;
        let signed_string = strip_scheme(&unsigned).trim_end_matches('/').to_owned();
        let signature = key.sign(scheme, signed_string.as_bytes())?;
        Ok(CertificateLink {
            url: format!(
                "{}/{}",
                unsigned.trim_end_matches('/'),
                base64url(&signature)
            ),
            signed_string,
            signature,
        })
    }
}

fn strip_scheme(url: &str) -> &str {
    url.strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url)
}

/// KOD II for an Offline certificate and its key: checks that they match, takes the serial from
/// the certificate and signs.
pub fn certificate_url(
    qr_base: &str,
    context_type: ContextType,
    context_value: &str,
    seller_nip: &str,
    offline_certificate: &Certificate,
    key: &PrivateKey,
    invoice_hash: &[u8; 32],
) -> Result<CertificateLink> {
    key.check_matches(offline_certificate)?;
    let serial = offline_certificate.serial_hex();
    CertificateLinkData {
        qr_base,
        context_type,
        context_value,
        seller_nip,
        certificate_serial: &serial,
        invoice_hash: *invoice_hash,
    }
    .sign(key)
}

/// Verifies a KOD II URL's signature with the Offline certificate's public key (the simulator's
/// side). RSA keys are checked with PSS; P-256 keys accept P1363 (r‖s) and DER signatures.
pub fn verify_certificate_url(url: &str, public_key: &PublicKey) -> Result<()> {
    let url = url.trim_end_matches('/');
    let (unsigned, sig_b64) = url
        .rsplit_once('/')
        .ok_or_else(|| Error::InvalidInput("not a KOD II URL".into()))?;
    if !strip_scheme(unsigned).contains("/certificate/") {
        return Err(Error::InvalidInput(
            "not a KOD II URL (no /certificate/ segment)".into(),
        ));
    }
    let sig = decode_base64url(sig_b64, "KOD II signature")?;
    let signed = strip_scheme(unsigned).as_bytes();
    match public_key {
        PublicKey::Rsa(_) => public_key.verify(SignatureScheme::RsaPssSha256, signed, &sig),
        PublicKey::P256(_) => {
            if sig.len() == 64 {
                public_key.verify(SignatureScheme::EcdsaP256Sha256P1363, signed, &sig)
            } else {
                public_key.verify(SignatureScheme::EcdsaP256Sha256Der, signed, &sig)
            }
        }
    }
}
