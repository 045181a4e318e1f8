//! The Ministry of Finance's public-key certificates (`GET /security/public-key-certificates`):
//! parsing, choice by usage and validity, and the `publicKeyId` / `certificateId` values.
//!
//! This module takes plain values so that the crate needs no HTTP types; the SDK converts the API
//! type into [`MfPublicKeyEntry`].

use time::OffsetDateTime;

use crate::cert::Certificate;
use crate::keys::PublicKey;
use crate::{Error, Result};

/// What an MF key may be used for (`usage[]` in the API).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyUsage {
    /// Encrypting a KSeF token for `POST /auth/ksef-token`.
    KsefTokenEncryption,
    /// Wrapping the AES key of sessions and exports.
    SymmetricKeyEncryption,
    /// A value this SDK does not know yet (KSeF adds values; we keep and ignore them).
    Unknown(String),
}

impl KeyUsage {
    /// Parses the API string.
    pub fn parse(s: &str) -> Self {
        match s {
            "KsefTokenEncryption" => Self::KsefTokenEncryption,
            "SymmetricKeyEncryption" => Self::SymmetricKeyEncryption,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// The API string.
    pub fn as_str(&self) -> &str {
        match self {
            Self::KsefTokenEncryption => "KsefTokenEncryption",
            Self::SymmetricKeyEncryption => "SymmetricKeyEncryption",
            Self::Unknown(s) => s,
        }
    }
}

/// One entry of the API's list, as plain values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MfPublicKeyEntry {
    /// `certificate`: Base64 of the certificate DER (no PEM armour).
    pub certificate_base64: String,
    /// `usage`.
    pub usage: Vec<KeyUsage>,
    /// `validFrom`.
    pub valid_from: OffsetDateTime,
    /// `validTo`.
    pub valid_to: OffsetDateTime,
}

/// A parsed MF public-key certificate, ready for OAEP.
#[derive(Clone, Debug)]
pub struct MfPublicKey {
    certificate: Certificate,
    public_key: PublicKey,
    usage: Vec<KeyUsage>,
    valid_from: OffsetDateTime,
    valid_to: OffsetDateTime,
    public_key_id: String,
    certificate_id: String,
}

impl MfPublicKey {
    /// Parses an entry: decodes and parses the certificate, extracts the RSA key and computes the
    /// identifiers.
    pub fn from_entry(entry: &MfPublicKeyEntry) -> Result<Self> {
        let certificate = Certificate::from_base64_der(&entry.certificate_base64)?;
        Self::new(
            certificate,
            entry.usage.clone(),
            entry.valid_from,
            entry.valid_to,
        )
    }

    /// Builds from an already parsed certificate.
    pub fn new(
        certificate: Certificate,
        usage: Vec<KeyUsage>,
        valid_from: OffsetDateTime,
        valid_to: OffsetDateTime,
    ) -> Result<Self> {
        let public_key = certificate.public_key()?;
        let public_key_id = public_key_id(&certificate)?;
        let certificate_id = certificate_id(&certificate);
        Ok(Self {
            certificate,
            public_key,
            usage,
            valid_from,
            valid_to,
            public_key_id,
            certificate_id,
        })
    }

    /// The certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    /// The public key (RSA for every key KSeF publishes today).
    pub fn public_key(&self) -> &PublicKey {
        &self.public_key
    }

    /// The usages.
    pub fn usage(&self) -> &[KeyUsage] {
        &self.usage
    }

    /// `validFrom` as listed.
    pub fn valid_from(&self) -> OffsetDateTime {
        self.valid_from
    }

    /// `validTo` as listed.
    pub fn valid_to(&self) -> OffsetDateTime {
        self.valid_to
    }

    /// `publicKeyId` = Base64(SHA-256(SubjectPublicKeyInfo DER)), 44 characters.
    pub fn public_key_id(&self) -> &str {
        &self.public_key_id
    }

    /// `certificateId` = Base64(SHA-256(certificate DER)).
    pub fn certificate_id(&self) -> &str {
        &self.certificate_id
    }

    /// Whether the key has `usage` and is valid at `at` (inclusive bounds).
    pub fn usable_for(&self, usage: &KeyUsage, at: OffsetDateTime) -> bool {
        self.usage.contains(usage) && self.valid_from <= at && at <= self.valid_to
    }
}

/// `publicKeyId` of a certificate: Base64(SHA-256(SubjectPublicKeyInfo DER)).
pub fn public_key_id(cert: &Certificate) -> Result<String> {
    Ok(crate::hash::sha256_base64(&cert.spki_der()?))
}

/// `certificateId` of a certificate: Base64(SHA-256(certificate DER)).
pub fn certificate_id(cert: &Certificate) -> String {
    crate::hash::sha256_base64(cert.der())
}

/// Parses every entry; entries that do not parse are skipped (one bad certificate must not stop
/// the client), and their errors returned beside the good keys.
pub fn parse_all(entries: &[MfPublicKeyEntry]) -> (Vec<MfPublicKey>, Vec<Error>) {
    let mut ok = Vec::new();
    let mut bad = Vec::new();
    for e in entries {
        match MfPublicKey::from_entry(e) {
            Ok(k) => ok.push(k),
            Err(err) => bad.push(err),
        }
    }
    (ok, bad)
}

/// Chooses the key for `usage` per KSeF's rule: it has the usage, is valid at `at`, and among
/// those has the latest `validFrom`.
pub fn select<'a>(
    keys: &'a [MfPublicKey],
    usage: &KeyUsage,
    at: OffsetDateTime,
) -> Result<&'a MfPublicKey> {
    keys.iter()
        .filter(|k| k.usable_for(usage, at))
        .max_by_key(|k| k.valid_from)
        .ok_or_else(|| Error::NoSuitablePublicKey(usage.as_str().to_owned()))
}
