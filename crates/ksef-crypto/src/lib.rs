#![doc = include_str!("../README.md")]

pub mod c14n;
pub mod cert;
pub mod csr;
pub mod encryption;
pub mod hash;
pub mod keys;
pub mod public_key;
pub mod qr;
pub mod signer;
pub mod xades;

/// The error type of the keys, certificates, CSR, encryption, public-key and QR modules.
mod error {
    /// A `Result` with this crate's [`Error`].
    pub type Result<T, E = Error> = std::result::Result<T, E>;

    /// What went wrong while loading keys or certificates, encrypting, decrypting or signing.
    ///
    /// Every variant says what was wrong with the input; none carries secret material.
    #[derive(Debug, thiserror::Error)]
    #[non_exhaustive]
    pub enum Error {
        /// A certificate could not be parsed (bad PEM armour, bad DER, trailing bytes...).
        #[error("invalid certificate: {0}; supply an X.509 certificate as PEM or DER")]
        InvalidCertificate(String),
        /// A private key could not be parsed.
        #[error("invalid private key: {0}; supply PKCS#8, PKCS#1 (RSA) or SEC1 (EC) as PEM or DER")]
        InvalidKey(String),
        /// An encrypted key or PKCS#12 bundle was opened with the wrong password.
        #[error("wrong password for the {0}")]
        WrongPassword(&'static str),
        /// A key is encrypted but no password was given.
        #[error("the private key is encrypted: a password is required")]
        PasswordRequired,
        /// A PKCS#12 (.p12/.pfx) bundle is malformed or lacks a key or certificate.
        #[error("invalid PKCS#12 bundle: {0}")]
        InvalidPkcs12(String),
        /// The key or signature algorithm is not one KSeF uses (RSA 2048+ or ECDSA P-256).
        #[error("unsupported algorithm: {0}; KSeF accepts RSA (2048 bits or more) and ECDSA P-256")]
        UnsupportedAlgorithm(String),
        /// The private key does not belong to the certificate.
        #[error("the private key does not match the certificate's public key")]
        KeyMismatch,
        /// A CSR (PKCS#10) could not be parsed, built or verified.
        #[error("invalid certificate request: {0}")]
        InvalidCsr(String),
        /// A signature did not verify.
        #[error("signature verification failed: {0}")]
        BadSignature(String),
        /// Base64 input could not be decoded.
        #[error("invalid Base64 in {what}: {reason}")]
        Base64 {
            /// Which field held the Base64.
            what: &'static str,
            /// Why decoding failed.
            reason: String,
        },
        /// An AES key or IV has the wrong length.
        #[error("invalid {what} length: expected {expected} bytes, got {actual}")]
        InvalidLength {
            /// Which value (key, IV, ...).
            what: &'static str,
            /// The required length.
            expected: usize,
            /// The length given.
            actual: usize,
        },
        /// Decryption failed: ciphertext truncated (not a multiple of 16 bytes), bad padding, or a wrong key/IV.
        #[error(
            "decryption failed: {0}; check the key, the IV and that the ciphertext is complete"
        )]
        Decrypt(String),
        /// RSA-OAEP encryption or decryption failed.
        #[error("RSA-OAEP {0}")]
        Oaep(String),
        /// No MF public-key certificate fits the requested usage now.
        #[error(
            "no valid MF public-key certificate for usage {0}; refetch /security/public-key-certificates"
        )]
        NoSuitablePublicKey(String),
        /// Signing failed.
        #[error("signing failed: {0}")]
        Sign(String),
        /// Input/output error in a streaming encryptor or decryptor.
        #[error("I/O error: {0}")]
        Io(#[from] std::io::Error),
        /// Invalid argument (e.g. a NIP that is not 10 digits, an empty name).
        #[error("invalid input: {0}")]
        InvalidInput(String),
    }
}
pub use error::{Error, Result};

pub use der;
pub use p256;
pub use rsa;
pub use x509_cert;
