//! [`Base64Bytes`]: binary data carried as standard padded Base64 in JSON (`format: byte`).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that travel as standard (RFC 4648 §4, padded) Base64 in JSON — encrypted keys, IVs,
/// certificates, CSRs.
///
/// `Debug` shows only the length: these fields often carry key material.
///
/// ```
/// use ksef_model::bytes::Base64Bytes;
/// let b = Base64Bytes::from_base64("AAEC")?;
/// assert_eq!(b.as_slice(), &[0, 1, 2]);
/// assert_eq!(b.to_base64(), "AAEC");
/// assert_eq!(format!("{b:?}"), "Base64Bytes(3 bytes)");
/// # Ok::<(), ksef_model::bytes::Base64Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Base64Bytes(Vec<u8>);

impl Base64Bytes {
    /// Wraps raw bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// Decodes standard padded Base64.
    pub fn from_base64(encoded: &str) -> Result<Self, Base64Error> {
        STANDARD.decode(encoded).map(Self).map_err(|e| Base64Error {
            detail: e.to_string(),
            len: encoded.len(),
        })
    }

    /// Encodes as standard padded Base64.
    pub fn to_base64(&self) -> String {
        STANDARD.encode(&self.0)
    }

    /// The raw bytes.
    pub fn as_slice(&self) -> &[u8] {
        &self.0
    }

    /// The raw bytes, owned.
    pub fn into_vec(self) -> Vec<u8> {
        self.0
    }

    /// Number of raw bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are no bytes.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Base64Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Base64Bytes({} bytes)", self.0.len())
    }
}

impl From<Vec<u8>> for Base64Bytes {
    fn from(value: Vec<u8>) -> Self {
        Self(value)
    }
}

impl From<&[u8]> for Base64Bytes {
    fn from(value: &[u8]) -> Self {
        Self(value.to_vec())
    }
}

impl From<Base64Bytes> for Vec<u8> {
    fn from(value: Base64Bytes) -> Self {
        value.0
    }
}

impl AsRef<[u8]> for Base64Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Base64Bytes {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_base64())
    }
}

impl<'de> Deserialize<'de> for Base64Bytes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::from_base64(&s).map_err(serde::de::Error::custom)
    }
}

/// A string that is not standard padded Base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid Base64 ({len} characters): {detail}; expected standard Base64 with `=` padding (alphabet A-Z a-z 0-9 + /)"
)]
pub struct Base64Error {
    detail: String,
    len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip() {
        let b: Base64Bytes = serde_json::from_str("\"aGVsbG8=\"").unwrap();
        assert_eq!(b.as_slice(), b"hello");
        assert_eq!(serde_json::to_string(&b).unwrap(), "\"aGVsbG8=\"");
    }

    #[test]
    fn rejects_url_safe_and_unpadded() {
        assert!(Base64Bytes::from_base64("aGVsbG8").is_err());
        assert!(Base64Bytes::from_base64("-_-_").is_err());
        let err = Base64Bytes::from_base64("a$").unwrap_err().to_string();
        assert!(err.contains("expected standard Base64"), "{err}");
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = Base64Bytes::from_base64(&s);
        }

        #[test]
        fn round_trips(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..100)) {
            let b = Base64Bytes::new(bytes);
            proptest::prop_assert_eq!(Base64Bytes::from_base64(&b.to_base64()).unwrap(), b);
        }
    }

    #[test]
    fn debug_hides_content() {
        let b = Base64Bytes::new(vec![1, 2, 3, 4]);
        assert_eq!(format!("{b:?}"), "Base64Bytes(4 bytes)");
    }
}
