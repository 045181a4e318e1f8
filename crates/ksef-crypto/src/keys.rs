//! Private and public keys: loaders for PEM/DER in PKCS#8 (plain and encrypted), PKCS#1 (RSA) and
//! SEC1 (EC), PKCS#12 (.p12/.pfx) bundles, and the key–certificate match check.
//!
//! Private keys are zeroized on drop (by `rsa` and `p256`) and never shown by `Debug`; every
//! intermediate DER buffer holding secret material is wrapped in [`Zeroizing`].

use der::Decode as _;
use pkcs8::{DecodePrivateKey as _, EncodePrivateKey as _};
use zeroize::Zeroizing;

use crate::cert::Certificate;
use crate::{Error, Result};

const RSA_OID: const_oid::ObjectIdentifier = const_oid::db::rfc5912::RSA_ENCRYPTION;
const EC_OID: const_oid::ObjectIdentifier = const_oid::db::rfc5912::ID_EC_PUBLIC_KEY;
const P256_OID: const_oid::ObjectIdentifier = const_oid::db::rfc5912::SECP_256_R_1;

/// A private key held in process memory: RSA (2048+ bits) or ECDSA P-256.
///
/// Keys kept elsewhere (HSM, smart card, remote signing service) plug in through
/// [`crate::signer::Signer`] instead, without the key in this process.
#[non_exhaustive]
pub enum PrivateKey {
    /// An RSA private key.
    Rsa(Box<rsa::PrivateKey>),
    /// An ECDSA private key on curve P-256 (secp256r1).
    P256(p256::ecdsa::SigningKey),
}

impl std::fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PrivateKey::Rsa(_) => f.write_str("PrivateKey::Rsa(<redacted>)"),
            PrivateKey::P256(_) => f.write_str("PrivateKey::P256(<redacted>)"),
        }
    }
}

/// A public key: RSA or ECDSA P-256.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PublicKey {
    /// An RSA public key.
    Rsa(rsa::PublicKey),
    /// An ECDSA P-256 public key.
    P256(p256::ecdsa::VerifyingKey),
}

impl PublicKey {
    /// Parses a DER SubjectPublicKeyInfo holding an RSA or P-256 key.
    pub fn from_spki_der(der: &[u8]) -> crate::Result<Self> {
        use der::Decode;
        use rsa::pkcs8::DecodePublicKey as _;
        let spki = spki::SubjectPublicKeyInfoRef::from_der(der)
            .map_err(|e| crate::Error::InvalidCertificate(format!("bad public key: {e}")))?;
        let alg = spki.algorithm.oid;
        if alg == const_oid::db::rfc5912::RSA_ENCRYPTION {
            let k = rsa::PublicKey::from_public_key_der(der).map_err(|e| {
                crate::Error::InvalidCertificate(format!("bad RSA public key: {e}"))
            })?;
            Ok(Self::Rsa(k))
        } else if alg == const_oid::db::rfc5912::ID_EC_PUBLIC_KEY {
            let k = p256::PublicKey::from_public_key_der(der).map_err(|e| {
                crate::Error::UnsupportedAlgorithm(format!("EC key that is not P-256 ({e})"))
            })?;
            Ok(Self::P256(p256::ecdsa::VerifyingKey::from(k)))
        } else {
            Err(crate::Error::UnsupportedAlgorithm(format!(
                "public key algorithm {alg}"
            )))
        }
    }

    /// The DER SubjectPublicKeyInfo of this key.
    pub fn to_spki_der(&self) -> crate::Result<Vec<u8>> {
        use rsa::pkcs8::EncodePublicKey as _;
        let doc = match self {
            PublicKey::Rsa(k) => k.to_public_key_der(),
            PublicKey::P256(k) => p256::PublicKey::from(k).to_public_key_der(),
        };
        doc.map(|d| d.as_bytes().to_vec())
            .map_err(|e| crate::Error::InvalidInput(format!("cannot encode public key: {e}")))
    }
}

impl PrivateKey {
    /// Reads a private key from PEM: `PRIVATE KEY` (PKCS#8), `ENCRYPTED PRIVATE KEY` (PKCS#8 with
    /// PBES2; needs `password`), `RSA PRIVATE KEY` (PKCS#1) or `EC PRIVATE KEY` (SEC1). Other blocks
    /// in the document (certificates, EC parameters) are skipped; the first key is taken.
    pub fn from_pem(pem: &[u8], password: Option<&str>) -> Result<Self> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| Error::InvalidKey("PEM input is not UTF-8".into()))?;
        let blocks = crate::cert::pem_blocks(text)?;
        for (label, der) in blocks {
            let der = Zeroizing::new(der);
            match label.as_str() {
                "PRIVATE KEY" => return Self::from_pkcs8_der(&der),
                "ENCRYPTED PRIVATE KEY" => {
                    let pw = password.ok_or(Error::PasswordRequired)?;
                    return Self::from_encrypted_pkcs8_der(&der, pw);
                }
                "RSA PRIVATE KEY" => return Self::from_pkcs1_der(&der),
                "EC PRIVATE KEY" => return Self::from_sec1_der(&der),
                _ => {}
            }
        }
        Err(Error::InvalidKey(
            "no PRIVATE KEY, ENCRYPTED PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY block".into(),
        ))
    }

    /// Reads a DER private key in any supported form: PKCS#8, encrypted PKCS#8 (needs `password`),
    /// PKCS#1 or SEC1.
    pub fn from_der(der: &[u8], password: Option<&str>) -> Result<Self> {
        if pkcs8::PrivateKeyInfoRef::from_der(der).is_ok() {
            return Self::from_pkcs8_der(der);
        }
        if pkcs8::EncryptedPrivateKeyInfoRef::from_der(der).is_ok() {
            let pw = password.ok_or(Error::PasswordRequired)?;
            return Self::from_encrypted_pkcs8_der(der, pw);
        }
        match Self::from_pkcs1_der(der) {
            Ok(k) => return Ok(k),
            Err(e @ Error::UnsupportedAlgorithm(_)) => return Err(e),
            Err(_) => {}
        }
        if sec1::EcPrivateKey::from_der(der).is_ok() {
            return Self::from_sec1_der(der);
        }
        Err(Error::InvalidKey(
            "DER is not PKCS#8, encrypted PKCS#8, PKCS#1 or SEC1".into(),
        ))
    }

    /// Reads PEM or DER, whichever the input is.
    pub fn from_pem_or_der(bytes: &[u8], password: Option<&str>) -> Result<Self> {
        if bytes.first() == Some(&0x30) {
            Self::from_der(bytes, password)
        } else {
            Self::from_pem(bytes, password)
        }
    }

    /// Reads an unencrypted PKCS#8 `PrivateKeyInfo` (RSA or P-256).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self> {
        let info = pkcs8::PrivateKeyInfoRef::from_der(der)
            .map_err(|e| Error::InvalidKey(format!("bad PKCS#8: {e}")))?;
        let alg = info.algorithm.oid;
        if alg == RSA_OID {
            let k = rsa::PrivateKey::from_pkcs8_der(der)
                .map_err(|e| Error::InvalidKey(format!("bad RSA key: {e}")))?;
            Self::rsa(k)
        } else if alg == EC_OID {
            let curve = info.algorithm.parameters_oid().ok();
            if curve != Some(P256_OID) {
                return Err(Error::UnsupportedAlgorithm(match curve {
                    Some(c) => format!("EC curve {c}"),
                    None => "EC key without a named curve".into(),
                }));
            }
            let k = p256::SecretKey::from_pkcs8_der(der)
                .map_err(|e| Error::InvalidKey(format!("bad P-256 key: {e}")))?;
            Ok(Self::P256(p256::ecdsa::SigningKey::from(k)))
        } else {
            Err(Error::UnsupportedAlgorithm(format!(
                "private key algorithm {alg}"
            )))
        }
    }

    /// Reads a PKCS#8 `EncryptedPrivateKeyInfo` (PBES2 with PBKDF2 or scrypt and AES-CBC).
    pub fn from_encrypted_pkcs8_der(der: &[u8], password: &str) -> Result<Self> {
        let info = pkcs8::EncryptedPrivateKeyInfoRef::from_der(der)
            .map_err(|e| Error::InvalidKey(format!("bad encrypted PKCS#8: {e}")))?;
        let doc = info.decrypt(password).map_err(|e| match e {
            pkcs8::Error::EncryptedPrivateKey(pkcs8::pkcs5::Error::DecryptFailed) => {
                Error::WrongPassword("encrypted private key")
            }
            pkcs8::Error::EncryptedPrivateKey(other) => Error::UnsupportedAlgorithm(format!(
                "key encryption scheme ({other}); re-encrypt with PBES2/AES-256-CBC"
            )),
            other => Error::InvalidKey(format!("bad encrypted PKCS#8: {other}")),
        })?;
        // A wrong password can also decrypt to garbage with valid-looking padding.
        Self::from_pkcs8_der(doc.as_bytes()).map_err(|e| match e {
            Error::InvalidKey(_) => Error::WrongPassword("encrypted private key"),
            other => other,
        })
    }

    /// Reads a PKCS#1 `RSAPrivateKey`.
    pub fn from_pkcs1_der(der: &[u8]) -> Result<Self> {
        use pkcs1::DecodeRsaPrivateKey as _;
        let k = rsa::PrivateKey::from_pkcs1_der(der)
            .map_err(|e| Error::InvalidKey(format!("bad PKCS#1 RSA key: {e}")))?;
        Self::rsa(k)
    }

    /// Reads a SEC1 `ECPrivateKey` (must be on P-256).
    pub fn from_sec1_der(der: &[u8]) -> Result<Self> {
        let parsed = sec1::EcPrivateKey::from_der(der)
            .map_err(|e| Error::InvalidKey(format!("bad SEC1 EC key: {e}")))?;
        if let Some(params) = parsed.parameters {
            match params.named_curve() {
                Some(c) if c == P256_OID => {}
                Some(c) => return Err(Error::UnsupportedAlgorithm(format!("EC curve {c}"))),
                None => {
                    return Err(Error::UnsupportedAlgorithm(
                        "EC key without a named curve".into(),
                    ));
                }
            }
        }
        let k = p256::SecretKey::from_sec1_der(der)
            .map_err(|e| Error::InvalidKey(format!("bad P-256 key: {e}")))?;
        Ok(Self::P256(p256::ecdsa::SigningKey::from(k)))
    }

    fn rsa(k: rsa::PrivateKey) -> Result<Self> {
        use rsa::traits::PublicKeyParts as _;
        let bits = k.size() * 8;
        if bits < 2048 {
            return Err(Error::UnsupportedAlgorithm(format!(
                "RSA key of {bits} bits"
            )));
        }
        Ok(Self::Rsa(Box::new(k)))
    }

    /// The key as unencrypted PKCS#8 DER (zeroized when dropped).
    pub fn to_pkcs8_der(&self) -> Result<Zeroizing<Vec<u8>>> {
        let doc = match self {
            PrivateKey::Rsa(k) => k.to_pkcs8_der(),
            PrivateKey::P256(k) => p256::SecretKey::from(k).to_pkcs8_der(),
        }
        .map_err(|e| Error::InvalidKey(format!("cannot encode the key: {e}")))?;
        Ok(Zeroizing::new(doc.as_bytes().to_vec()))
    }

    /// The key as unencrypted PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, zeroized when dropped).
    pub fn to_pkcs8_pem(&self) -> Result<Zeroizing<String>> {
        let der = self.to_pkcs8_der()?;
        Ok(Zeroizing::new(crate::cert::pem_encode("PRIVATE KEY", &der)))
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        match self {
            PrivateKey::Rsa(k) => PublicKey::Rsa(k.to_public_key()),
            PrivateKey::P256(k) => PublicKey::P256(*k.verifying_key()),
        }
    }

    /// Whether this key belongs to `cert` (the certificate's public key equals ours).
    pub fn matches(&self, cert: &Certificate) -> bool {
        cert.public_key().is_ok_and(|pk| pk == self.public_key())
    }

    /// Errors with [`Error::KeyMismatch`] unless this key belongs to `cert`.
    pub fn check_matches(&self, cert: &Certificate) -> Result<()> {
        if self.matches(cert) {
            Ok(())
        } else {
            Err(Error::KeyMismatch)
        }
    }

    /// A short name of the algorithm: `"RSA"` or `"P-256"`.
    pub fn algorithm(&self) -> &'static str {
        match self {
            PrivateKey::Rsa(_) => "RSA",
            PrivateKey::P256(_) => "P-256",
        }
    }

    /// Generates a fresh key: RSA-2048 or P-256. RSA generation takes up to a few seconds.
    pub fn generate(kind: KeyKind) -> Result<Self> {
        match kind {
            KeyKind::Rsa2048 => {
                let k = rsa::PrivateKey::new(&mut getrandom::SysRng, 2048)
                    .map_err(|e| Error::InvalidKey(format!("RSA key generation failed: {e}")))?;
                Ok(Self::Rsa(Box::new(k)))
            }
            KeyKind::P256 => {
                let mut bytes = Zeroizing::new([0u8; 32]);
                loop {
                    getrandom::fill(bytes.as_mut()).map_err(|e| {
                        Error::InvalidKey(format!("system random generator failed: {e}"))
                    })?;
                    if let Ok(k) = p256::ecdsa::SigningKey::from_slice(bytes.as_ref()) {
                        return Ok(Self::P256(k));
                    }
                }
            }
        }
    }
}

impl Clone for PrivateKey {
    fn clone(&self) -> Self {
        match self {
            PrivateKey::Rsa(k) => PrivateKey::Rsa(k.clone()),
            PrivateKey::P256(k) => PrivateKey::P256(k.clone()),
        }
    }
}

/// Which kind of key to generate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyKind {
    /// RSA with a 2048-bit modulus.
    Rsa2048,
    /// ECDSA on P-256 (the kind KSeF recommends for its own certificates).
    P256,
}

/// A private key together with its certificate and any further chain certificates, as read from a
/// PKCS#12 (.p12/.pfx) bundle.
#[derive(Debug, Clone)]
pub struct KeyBundle {
    /// The private key.
    pub key: PrivateKey,
    /// The certificate belonging to the key.
    pub certificate: Certificate,
    /// Other certificates in the bundle (intermediate and root CAs), in bundle order.
    pub chain: Vec<Certificate>,
}

impl KeyBundle {
    /// Opens a PKCS#12 bundle (as issued by qualified CAs or written by `openssl pkcs12 -export`,
    /// modern PBES2/AES or legacy 3DES/RC2). The certificate is the one whose public key matches
    /// the (first) private key.
    pub fn from_pkcs12(data: &[u8], password: &str) -> Result<Self> {
        use p12_keystore::error::Error as P12;
        let archive =
            p12_keystore::Pkcs12Archive::from_pkcs12(data, password).map_err(|e| match e {
                P12::MacError(_) | P12::UnpadError => Error::WrongPassword("PKCS#12 bundle"),
                P12::Pkcs5Error(m) if m.to_ascii_lowercase().contains("decrypt") => {
                    Error::WrongPassword("PKCS#12 bundle")
                }
                P12::UnsupportedEncryptionScheme | P12::UnsupportedMacAlgorithm => {
                    Error::UnsupportedAlgorithm(format!("PKCS#12 protection ({e})"))
                }
                other => Error::InvalidPkcs12(other.to_string()),
            })?;
        let bag = archive
            .keys
            .first()
            .ok_or_else(|| Error::InvalidPkcs12("no private key in the bundle".into()))?;
        let key = PrivateKey::from_pkcs8_der(bag.key.as_der())?;
        let mut certs = Vec::with_capacity(archive.certs.len());
        for c in &archive.certs {
            certs.push(Certificate::from_der(c.cert.as_der())?);
        }
        let pos = certs.iter().position(|c| key.matches(c)).ok_or_else(|| {
            if certs.is_empty() {
                Error::InvalidPkcs12("no certificate in the bundle".into())
            } else {
                Error::KeyMismatch
            }
        })?;
        let certificate = certs.remove(pos);
        Ok(Self {
            key,
            certificate,
            chain: certs,
        })
    }

    /// Pairs a key with its certificate, checking that they match.
    pub fn new(key: PrivateKey, certificate: Certificate) -> Result<Self> {
        key.check_matches(&certificate)?;
        Ok(Self {
            key,
            certificate,
            chain: Vec::new(),
        })
    }
}

/// How a signature is computed; see [`PrivateKey::sign`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureScheme {
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`sha256WithRSAEncryption`).
    RsaPkcs1Sha256,
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt (KOD II).
    RsaPssSha256,
    /// ECDSA P-256 with SHA-256, DER-encoded (X.509, CSRs).
    EcdsaP256Sha256Der,
    /// ECDSA P-256 with SHA-256 as raw r‖s, 64 bytes (IEEE P1363: XMLDSig, KOD II).
    EcdsaP256Sha256P1363,
}

impl PrivateKey {
    /// Signs `message` (hashing it with SHA-256) with `scheme`, which must fit the key type.
    pub fn sign(&self, scheme: SignatureScheme, message: &[u8]) -> Result<Vec<u8>> {
        use sha2::{Digest, Sha256};
        use signature::Signer as _;
        match (self, scheme) {
            (PrivateKey::Rsa(k), SignatureScheme::RsaPkcs1Sha256) => {
                let digest = Sha256::digest(message);
                k.sign(rsa::Pkcs1v15Sign::new::<Sha256>(), &digest)
                    .map_err(|e| Error::Sign(format!("RSA PKCS#1 v1.5: {e}")))
            }
            (PrivateKey::Rsa(k), SignatureScheme::RsaPssSha256) => {
                let digest = Sha256::digest(message);
                k.sign_with_rng(
                    &mut getrandom::SysRng,
                    rsa::pss::Pss::<Sha256>::new_with_salt(32),
                    &digest,
                )
                .map_err(|e| Error::Sign(format!("RSA-PSS: {e}")))
            }
            (PrivateKey::P256(k), SignatureScheme::EcdsaP256Sha256Der) => {
                let sig: p256::ecdsa::Signature = k
                    .try_sign(message)
                    .map_err(|e| Error::Sign(format!("ECDSA: {e}")))?;
                Ok(sig.to_der().as_bytes().to_vec())
            }
            (PrivateKey::P256(k), SignatureScheme::EcdsaP256Sha256P1363) => {
                let sig: p256::ecdsa::Signature = k
                    .try_sign(message)
                    .map_err(|e| Error::Sign(format!("ECDSA: {e}")))?;
                Ok(sig.to_bytes().to_vec())
            }
            (k, s) => Err(Error::UnsupportedAlgorithm(format!(
                "signature scheme {s:?} with a {} key",
                k.algorithm()
            ))),
        }
    }

    /// The scheme this key uses for X.509 certificates and CSRs (PKCS#1 v1.5 for RSA, DER ECDSA
    /// for P-256) and its AlgorithmIdentifier.
    pub(crate) fn x509_scheme(&self) -> (SignatureScheme, spki::AlgorithmIdentifierOwned) {
        match self {
            PrivateKey::Rsa(_) => (
                SignatureScheme::RsaPkcs1Sha256,
                spki::AlgorithmIdentifierOwned {
                    oid: const_oid::db::rfc5912::SHA_256_WITH_RSA_ENCRYPTION,
                    parameters: Some(der::asn1::Null.into()),
                },
            ),
            PrivateKey::P256(_) => (
                SignatureScheme::EcdsaP256Sha256Der,
                spki::AlgorithmIdentifierOwned {
                    oid: const_oid::db::rfc5912::ECDSA_WITH_SHA_256,
                    parameters: None,
                },
            ),
        }
    }
}

impl PublicKey {
    /// Verifies `signature` over `message` (SHA-256) with `scheme`.
    pub fn verify(&self, scheme: SignatureScheme, message: &[u8], signature: &[u8]) -> Result<()> {
        use sha2::{Digest, Sha256};
        use signature::Verifier as _;
        let bad = |e: &dyn std::fmt::Display| Error::BadSignature(e.to_string());
        match (self, scheme) {
            (PublicKey::Rsa(k), SignatureScheme::RsaPkcs1Sha256) => k
                .verify(
                    rsa::Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(message),
                    signature,
                )
                .map_err(|e| bad(&e)),
            (PublicKey::Rsa(k), SignatureScheme::RsaPssSha256) => k
                .verify(
                    rsa::pss::Pss::<Sha256>::new_with_salt(32),
                    &Sha256::digest(message),
                    signature,
                )
                .map_err(|e| bad(&e)),
            (PublicKey::P256(k), SignatureScheme::EcdsaP256Sha256Der) => {
                let sig = p256::ecdsa::DerSignature::try_from(signature).map_err(|e| bad(&e))?;
                k.verify(message, &sig).map_err(|e| bad(&e))
            }
            (PublicKey::P256(k), SignatureScheme::EcdsaP256Sha256P1363) => {
                let sig = p256::ecdsa::Signature::from_slice(signature).map_err(|e| bad(&e))?;
                k.verify(message, &sig).map_err(|e| bad(&e))
            }
            (_, s) => Err(Error::UnsupportedAlgorithm(format!(
                "signature scheme {s:?} for this key type"
            ))),
        }
    }

    /// Verifies an X.509/PKCS#10 signature given its AlgorithmIdentifier OID (SHA-256 with RSA
    /// PKCS#1 v1.5, RSA-PSS with SHA-256, or ECDSA with SHA-256).
    pub(crate) fn verify_x509(
        &self,
        alg: &spki::AlgorithmIdentifierOwned,
        message: &[u8],
        signature: &[u8],
    ) -> Result<()> {
        use const_oid::db::rfc5912;
        let scheme = if alg.oid == rfc5912::SHA_256_WITH_RSA_ENCRYPTION {
            SignatureScheme::RsaPkcs1Sha256
        } else if alg.oid == rfc5912::ID_RSASSA_PSS {
            SignatureScheme::RsaPssSha256
        } else if alg.oid == rfc5912::ECDSA_WITH_SHA_256 {
            SignatureScheme::EcdsaP256Sha256Der
        } else {
            return Err(Error::UnsupportedAlgorithm(format!(
                "signature algorithm {}",
                alg.oid
            )));
        };
        self.verify(scheme, message, signature)
    }
}
