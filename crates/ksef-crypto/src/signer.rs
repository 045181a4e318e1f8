//! Pluggable signers for XAdES: anything that can produce a `SignatureValue` for a certificate.
//!
//! [`Signer`] is the seam for keys that never enter this process (an HSM, a smart card with a
//! qualified seal, a remote signing service): implement `sign` by sending the bytes there.
//! [`InMemorySigner`] is the built-in implementation for an RSA or P-256 key held in memory.
//!
//! ```no_run
//! use ksef_crypto::signer::{Signer, SignerError, SignatureAlgorithm};
//!
//! /// A signer whose key lives in a hardware token.
//! struct TokenSigner { cert_der: Vec<u8> }
//!
//! impl Signer for TokenSigner {
//!     fn algorithm(&self) -> SignatureAlgorithm { SignatureAlgorithm::EcdsaP256Sha256 }
//!     fn certificate_der(&self) -> &[u8] { &self.cert_der }
//!     fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError> {
//!         // Hash `data` with SHA-256, let the token sign the digest, return raw r||s (64 bytes).
//!         Err(SignerError::Failed("token not present".into()))
//!     }
//! }
//! ```

use crate::cert::Certificate;
use crate::keys::{PrivateKey, PublicKey};
use sha2::{Digest, Sha256};

/// A signature algorithm we can sign with, identified by its XMLDSig URI.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`http://www.w3.org/2001/04/xmldsig-more#rsa-sha256`): the
    /// RSA default, accepted by KSeF.
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt
    /// (`http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1`). Opt-in: KSeF has rejected PSS
    /// XAdES from some clients.
    RsaPssSha256,
    /// ECDSA on P-256 with SHA-256 (`http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256`); the
    /// signature value is raw `r || s` (64 bytes), not DER.
    EcdsaP256Sha256,
}

impl SignatureAlgorithm {
    /// The XMLDSig `SignatureMethod` URI.
    pub fn uri(&self) -> &'static str {
        match self {
            SignatureAlgorithm::RsaPkcs1Sha256 => {
                "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
            }
            SignatureAlgorithm::RsaPssSha256 => {
                "http://www.w3.org/2007/05/xmldsig-more#sha256-rsa-MGF1"
            }
            SignatureAlgorithm::EcdsaP256Sha256 => {
                "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
            }
        }
    }
}

/// Why a signer could not be built or could not sign.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignerError {
    /// The private key does not belong to the certificate.
    #[error(
        "the private key does not match the certificate's public key; use the key the certificate was issued for"
    )]
    KeyMismatch,
    /// The certificate could not be parsed.
    #[error("invalid signer certificate: {0}")]
    InvalidCertificate(String),
    /// The key cannot be used with the requested algorithm (e.g. PSS with an EC key).
    #[error("unsupported key/algorithm combination: {0}")]
    Unsupported(String),
    /// The signing operation itself failed (device error, remote service error...).
    #[error("signing failed: {0}")]
    Failed(String),
}

/// Something that signs XMLDSig `SignedInfo` for one certificate.
///
/// `sign` receives the exact canonical `SignedInfo` bytes (hash them with the algorithm's digest)
/// and returns the final `SignatureValue` bytes: the RSA signature, or raw `r || s` for ECDSA.
pub trait Signer: Send + Sync {
    /// The signature algorithm.
    fn algorithm(&self) -> SignatureAlgorithm;
    /// The signer's X.509 certificate, DER-encoded (goes into `ds:KeyInfo` and the XAdES
    /// `SigningCertificate`).
    fn certificate_der(&self) -> &[u8];
    /// Signs `data_to_be_signed`.
    fn sign(&self, data_to_be_signed: &[u8]) -> Result<Vec<u8>, SignerError>;
}

/// A signer with an RSA or P-256 private key in process memory.
pub struct InMemorySigner {
    key: PrivateKey,
    certificate: Certificate,
    algorithm: SignatureAlgorithm,
}

impl std::fmt::Debug for InMemorySigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InMemorySigner")
            .field("algorithm", &self.algorithm)
            .field("certificate", &self.certificate)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl InMemorySigner {
    /// A signer for `key` and its `certificate`: RSA keys sign with PKCS#1 v1.5 SHA-256, P-256
    /// keys with ECDSA SHA-256. Fails with [`SignerError::KeyMismatch`] if the key is not the
    /// certificate's.
    pub fn new(key: PrivateKey, certificate: Certificate) -> Result<Self, SignerError> {
        let algorithm = check_key_matches(&key, &certificate)?;
        Ok(InMemorySigner {
            key,
            certificate,
            algorithm,
        })
    }

    /// Like [`InMemorySigner::new`] with a DER certificate.
    pub fn from_der(key: PrivateKey, certificate_der: &[u8]) -> Result<Self, SignerError> {
        let cert = Certificate::from_der(certificate_der)
            .map_err(|e| SignerError::InvalidCertificate(e.to_string()))?;
        Self::new(key, cert)
    }

    /// Switches an RSA signer to RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32). Opt-in: prefer
    /// PKCS#1 v1.5 for KSeF.
    pub fn with_rsa_pss(mut self) -> Result<Self, SignerError> {
        match self.key {
            PrivateKey::Rsa(_) => {
                self.algorithm = SignatureAlgorithm::RsaPssSha256;
                Ok(self)
            }
            _ => Err(SignerError::Unsupported(
                "RSA-PSS needs an RSA key".to_owned(),
            )),
        }
    }

    /// The signer's certificate.
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }
}

/// Checks that `key` belongs to `certificate`; returns the default algorithm for the key.
fn check_key_matches(
    key: &PrivateKey,
    certificate: &Certificate,
) -> Result<SignatureAlgorithm, SignerError> {
    let cert_key = certificate
        .public_key()
        .map_err(|e| SignerError::InvalidCertificate(e.to_string()))?;
    let (own, algorithm) = match key {
        PrivateKey::Rsa(k) => (
            PublicKey::Rsa(k.to_public_key()),
            SignatureAlgorithm::RsaPkcs1Sha256,
        ),
        PrivateKey::P256(k) => (
            PublicKey::P256(*k.verifying_key()),
            SignatureAlgorithm::EcdsaP256Sha256,
        ),
        #[allow(unreachable_patterns)] // PrivateKey is non_exhaustive
        _ => {
            return Err(SignerError::Unsupported(
                "only RSA and P-256 keys can sign XAdES".into(),
            ));
        }
    };
    if own != cert_key {
        return Err(SignerError::KeyMismatch);
    }
    Ok(algorithm)
}

impl Signer for InMemorySigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn certificate_der(&self) -> &[u8] {
        self.certificate.der()
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError> {
        match (&self.key, self.algorithm) {
            (PrivateKey::Rsa(k), SignatureAlgorithm::RsaPkcs1Sha256) => {
                let hash = Sha256::digest(data);
                k.sign(rsa::pkcs1v15::Pkcs1v15Sign::new::<Sha256>(), &hash)
                    .map_err(|e| SignerError::Failed(e.to_string()))
            }
            (PrivateKey::Rsa(k), SignatureAlgorithm::RsaPssSha256) => {
                let hash = Sha256::digest(data);
                k.sign_with_rng(
                    &mut rand::rngs::SysRng,
                    rsa::pss::Pss::<Sha256>::new(),
                    &hash,
                )
                .map_err(|e| SignerError::Failed(e.to_string()))
            }
            (PrivateKey::P256(k), SignatureAlgorithm::EcdsaP256Sha256) => {
                use p256::ecdsa::signature::Signer as _;
                let sig: p256::ecdsa::Signature = k
                    .try_sign(data)
                    .map_err(|e| SignerError::Failed(e.to_string()))?;
                Ok(sig.to_bytes().to_vec())
            }
            _ => Err(SignerError::Unsupported(format!(
                "{:?} with this key",
                self.algorithm
            ))),
        }
    }
}

/// A signer backed by aws-lc-rs (feature `aws-lc`): the same keys as [`InMemorySigner`], signed
/// by AWS-LC's assembly-optimized RSA and P-256 (several times faster than the pure-Rust
/// default for RSA).
#[cfg(feature = "aws-lc")]
pub struct AwsLcSigner {
    key: AwsLcKey,
    certificate: Certificate,
    algorithm: SignatureAlgorithm,
    rng: aws_lc_rs::rand::SystemRandom,
}

#[cfg(feature = "aws-lc")]
enum AwsLcKey {
    Rsa(aws_lc_rs::signature::RsaKeyPair),
    Ec(aws_lc_rs::signature::EcdsaKeyPair),
}

#[cfg(feature = "aws-lc")]
impl std::fmt::Debug for AwsLcSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsLcSigner")
            .field("algorithm", &self.algorithm)
            .field("certificate", &self.certificate)
            .field("key", &"<redacted>")
            .finish()
    }
}

#[cfg(feature = "aws-lc")]
impl AwsLcSigner {
    /// A signer for `key` and its `certificate` (RSA: PKCS#1 v1.5 SHA-256; P-256: ECDSA
    /// SHA-256, raw r||s). Fails with [`SignerError::KeyMismatch`] if the key is not the
    /// certificate's.
    pub fn new(key: &PrivateKey, certificate: Certificate) -> Result<Self, SignerError> {
        let algorithm = check_key_matches(key, &certificate)?;
        let der = key
            .to_pkcs8_der()
            .map_err(|e| SignerError::Unsupported(e.to_string()))?;
        let rejected = |e: aws_lc_rs::error::KeyRejected| SignerError::Unsupported(e.to_string());
        let key = match key {
            PrivateKey::Rsa(_) => {
                AwsLcKey::Rsa(aws_lc_rs::signature::RsaKeyPair::from_pkcs8(&der).map_err(rejected)?)
            }
            _ => AwsLcKey::Ec(
                aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
                    &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &der,
                )
                .map_err(rejected)?,
            ),
        };
        Ok(AwsLcSigner {
            key,
            certificate,
            algorithm,
            rng: aws_lc_rs::rand::SystemRandom::new(),
        })
    }

    /// Switches an RSA signer to RSASSA-PSS (SHA-256, MGF1-SHA-256, salt 32).
    pub fn with_rsa_pss(mut self) -> Result<Self, SignerError> {
        match self.key {
            AwsLcKey::Rsa(_) => {
                self.algorithm = SignatureAlgorithm::RsaPssSha256;
                Ok(self)
            }
            AwsLcKey::Ec(_) => Err(SignerError::Unsupported("RSA-PSS needs an RSA key".into())),
        }
    }
}

#[cfg(feature = "aws-lc")]
impl Signer for AwsLcSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.algorithm
    }

    fn certificate_der(&self) -> &[u8] {
        self.certificate.der()
    }

    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError> {
        let failed = |_| SignerError::Failed("aws-lc signing failed".into());
        match &self.key {
            AwsLcKey::Rsa(k) => {
                let padding: &'static dyn aws_lc_rs::signature::RsaEncoding =
                    if self.algorithm == SignatureAlgorithm::RsaPssSha256 {
                        &aws_lc_rs::signature::RSA_PSS_SHA256
                    } else {
                        &aws_lc_rs::signature::RSA_PKCS1_SHA256
                    };
                let mut sig = vec![0; k.public_modulus_len()];
                k.sign(padding, &self.rng, data, &mut sig).map_err(failed)?;
                Ok(sig)
            }
            AwsLcKey::Ec(k) => Ok(k.sign(&self.rng, data).map_err(failed)?.as_ref().to_vec()),
        }
    }
}
