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
