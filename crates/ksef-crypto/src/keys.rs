//! Private keys (in progress: loaders for PEM/DER/PKCS#8/PKCS#1/SEC1/PKCS#12 land here).

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
