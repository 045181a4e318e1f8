//! SHA-256 in the encodings KSeF uses, and Base64 helpers.
//!
//! API fields (`invoiceHash`, `fileHash`, ...) carry SHA-256 as **padded standard Base64** (44
//! characters); QR links carry it as **unpadded Base64URL** (43 characters).

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use sha2::{Digest, Sha256};

use crate::{Error, Result};

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// SHA-256 of `data` as padded standard Base64 (the form of KSeF API hash fields).
pub fn sha256_base64(data: &[u8]) -> String {
    base64(&sha256(data))
}

/// SHA-256 of `data` as the model's [`ksef_model::ids::Sha256Base64`] (for API request types).
pub fn sha256_id(data: &[u8]) -> ksef_model::ids::Sha256Base64 {
    ksef_model::ids::Sha256Base64::from_digest(sha256(data))
}

/// SHA-256 of `data` as unpadded Base64URL (the form used in QR links).
pub fn sha256_base64url(data: &[u8]) -> String {
    base64url(&sha256(data))
}

/// Standard padded Base64.
pub fn base64(data: &[u8]) -> String {
    STANDARD.encode(data)
}

/// Unpadded Base64URL (RFC 4648 §5).
pub fn base64url(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// Decodes standard padded Base64, naming `what` in the error.
pub fn decode_base64(s: &str, what: &'static str) -> Result<Vec<u8>> {
    STANDARD.decode(s).map_err(|e| Error::Base64 {
        what,
        reason: e.to_string(),
    })
}

/// Decodes unpadded Base64URL, naming `what` in the error.
pub fn decode_base64url(s: &str, what: &'static str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).map_err(|e| Error::Base64 {
        what,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // SHA-256("abc"), FIPS 180-2.
        assert_eq!(
            sha256_base64(b"abc"),
            "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0="
        );
        assert_eq!(
            sha256_base64url(b"abc"),
            "ungWv48Bz-pBQUDeXa4iI7ADYaOWF3qctBD_YfIAFa0"
        );
        assert_eq!(sha256_id(b"abc").as_str(), sha256_base64(b"abc"));
        assert_eq!(sha256_id(b"abc").to_base64url(), sha256_base64url(b"abc"));
        assert!(decode_base64("AAA", "x").is_err());
        assert!(decode_base64url("AA==", "x").is_err());
    }
}
