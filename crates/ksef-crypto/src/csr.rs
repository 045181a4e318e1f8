//! PKCS#10 certificate signing requests for KSeF certificate enrollment: building one from the DN
//! data of `GET /certificates/enrollments/data`, and parsing + verifying one (the simulator).

use der::{Decode as _, Encode as _};
use x509_cert::name::Name;
use x509_cert::request::{CertReq, CertReqInfo};

use crate::cert::DistinguishedName;
use crate::keys::{PrivateKey, PublicKey};
use crate::{Error, Result};

/// A PKCS#10 certificate request with its exact DER.
#[derive(Clone)]
pub struct CertificateRequest {
    der: Vec<u8>,
    inner: CertReq,
}

impl std::fmt::Debug for CertificateRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertificateRequest")
            .field("subject", &self.subject())
            .finish()
    }
}

impl CertificateRequest {
    /// Builds and signs a CSR whose subject is exactly `dn` (the attributes KSeF returned, nothing
    /// added) for `key` (RSA: sha256WithRSAEncryption; P-256: ecdsa-with-SHA256). No attributes
    /// or extension requests are included.
    pub fn new(dn: &DistinguishedName, key: &PrivateKey) -> Result<Self> {
        Self::with_name(dn.to_name()?, key)
    }

    /// Builds and signs a CSR for an arbitrary subject name.
    pub fn with_name(subject: Name, key: &PrivateKey) -> Result<Self> {
        let (scheme, algorithm) = key.x509_scheme();
        let spki_der = key.public_key().to_spki_der()?;
        let public_key = spki::SubjectPublicKeyInfoOwned::from_der(&spki_der)
            .map_err(|e| Error::InvalidCsr(format!("bad public key: {e}")))?;
        let info = CertReqInfo {
            version: x509_cert::request::Version::V1,
            subject,
            public_key,
            attributes: Default::default(),
        };
        let tbs = info
            .to_der()
            .map_err(|e| Error::InvalidCsr(format!("cannot encode: {e}")))?;
        let sig = key.sign(scheme, &tbs)?;
        let signature = der::asn1::BitString::from_bytes(&sig)
            .map_err(|e| Error::InvalidCsr(format!("cannot encode signature: {e}")))?;
        let inner = CertReq {
            info,
            algorithm,
            signature,
        };
        let der = inner
            .to_der()
            .map_err(|e| Error::InvalidCsr(format!("cannot encode: {e}")))?;
        Ok(Self { der, inner })
    }

    /// Parses a DER CSR (does not verify it; see [`CertificateRequest::verify`]).
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let inner =
            CertReq::from_der(der).map_err(|e| Error::InvalidCsr(format!("bad DER: {e}")))?;
        Ok(Self {
            der: der.to_vec(),
            inner,
        })
    }

    /// Parses Base64 of the DER (the `csr` field of `POST /certificates/enrollments`).
    pub fn from_base64(b64: &str) -> Result<Self> {
        Self::from_der(&crate::hash::decode_base64(b64.trim(), "csr")?)
    }

    /// Parses a PEM `CERTIFICATE REQUEST` block.
    pub fn from_pem(pem: &[u8]) -> Result<Self> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| Error::InvalidCsr("PEM input is not UTF-8".into()))?;
        for (label, der) in crate::cert::pem_blocks(text)? {
            if label == "CERTIFICATE REQUEST" || label == "NEW CERTIFICATE REQUEST" {
                return Self::from_der(&der);
            }
        }
        Err(Error::InvalidCsr(
            "no CERTIFICATE REQUEST block in the PEM input".into(),
        ))
    }

    /// The exact DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }

    /// Base64 of the DER (what KSeF's `csr` field carries).
    pub fn to_base64(&self) -> String {
        crate::hash::base64(&self.der)
    }

    /// PEM (`-----BEGIN CERTIFICATE REQUEST-----`).
    pub fn to_pem(&self) -> String {
        crate::cert::pem_encode("CERTIFICATE REQUEST", &self.der)
    }

    /// The subject name structure.
    pub fn subject_name(&self) -> &Name {
        &self.inner.info.subject
    }

    /// The subject as an RFC 4514 string.
    pub fn subject(&self) -> String {
        crate::cert::rfc4514(&self.inner.info.subject)
    }

    /// The subject's attributes as (dotted OID, string value) pairs, in certificate order (for
    /// comparing with the enrollment data).
    pub fn subject_attributes(&self) -> Vec<(String, String)> {
        self.inner
            .info
            .subject
            .iter()
            .map(|atv| {
                (
                    atv.oid.to_string(),
                    crate::cert::atv_string(atv).unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The public key (RSA or P-256; other algorithms give [`Error::UnsupportedAlgorithm`]).
    pub fn public_key(&self) -> Result<PublicKey> {
        let der = self
            .inner
            .info
            .public_key
            .to_der()
            .map_err(|e| Error::InvalidCsr(format!("cannot encode the public key: {e}")))?;
        PublicKey::from_spki_der(&der)
    }

    /// Issues a certificate for this request (the simulator's enrollment): verifies the CSR's
    /// signature, then signs its subject and public key with the CA key.
    pub fn issue(
        &self,
        ca_key: &PrivateKey,
        ca_cert: &crate::cert::Certificate,
        opts: &crate::cert::IssueOptions,
    ) -> Result<crate::cert::Certificate> {
        self.verify()?;
        crate::cert::issue(
            ca_key,
            ca_cert,
            self.subject_name(),
            &self.public_key()?,
            opts,
        )
    }

    /// Verifies the self-signature (SHA-256 with RSA PKCS#1 v1.5 or RSA-PSS, or ECDSA P-256).
    pub fn verify(&self) -> Result<()> {
        let tbs = self
            .inner
            .info
            .to_der()
            .map_err(|e| Error::InvalidCsr(format!("cannot encode: {e}")))?;
        let sig = self
            .inner
            .signature
            .as_bytes()
            .ok_or_else(|| Error::InvalidCsr("signature has unused bits".into()))?;
        self.public_key()?
            .verify_x509(&self.inner.algorithm, &tbs, sig)
    }
}
