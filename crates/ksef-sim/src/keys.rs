//! The simulator's own key pairs: `KsefTokenEncryption` and `SymmetricKeyEncryption` (served by
//! `GET /security/public-key-certificates`) and the key that signs UPOs.
//!
//! The keys are committed fixtures (`keys/*.pem`, RSA-2048, self-signed, made with OpenSSL):
//! generating RSA keys at start-up would cost seconds per simulator in tests.

use ksef_crypto::cert::Certificate;
use ksef_crypto::keys::PrivateKey;
use ksef_crypto::signer::InMemorySigner;
use serde_json::{Value, json};

use crate::ids::rfc3339;

/// One published key pair.
pub(crate) struct PublishedKey {
    pub usage: &'static str,
    pub cert: Certificate,
    pub key: PrivateKey,
    /// Base64(SHA-256(certificate DER)).
    pub certificate_id: String,
    /// Base64(SHA-256(SubjectPublicKeyInfo DER)).
    pub public_key_id: String,
}

/// All keys of one simulator.
pub(crate) struct SimKeys {
    pub token: PublishedKey,
    pub symmetric: PublishedKey,
    pub upo_signer: InMemorySigner,
}

/// Why the built-in keys could not be loaded (only if the committed fixtures are corrupted).
#[derive(Debug, thiserror::Error)]
#[error("built-in simulator key {0}: {1}")]
pub struct KeyLoadError(&'static str, String);

fn load(
    usage: &'static str,
    cert_pem: &[u8],
    key_pem: &[u8],
) -> Result<PublishedKey, KeyLoadError> {
    let cert = Certificate::from_pem(cert_pem).map_err(|e| KeyLoadError(usage, e.to_string()))?;
    let key =
        PrivateKey::from_pem(key_pem, None).map_err(|e| KeyLoadError(usage, e.to_string()))?;
    let spki = cert
        .spki_der()
        .map_err(|e| KeyLoadError(usage, e.to_string()))?;
    Ok(PublishedKey {
        usage,
        certificate_id: ksef_crypto::hash::sha256_base64(cert.der()),
        public_key_id: ksef_crypto::hash::sha256_base64(&spki),
        cert,
        key,
    })
}

impl SimKeys {
    pub fn builtin() -> Result<Self, KeyLoadError> {
        let upo_cert = Certificate::from_pem(include_bytes!("../keys/upo.cert.pem"))
            .map_err(|e| KeyLoadError("upo", e.to_string()))?;
        let upo_key = PrivateKey::from_pem(include_bytes!("../keys/upo.key.pem"), None)
            .map_err(|e| KeyLoadError("upo", e.to_string()))?;
        Ok(SimKeys {
            token: load(
                "KsefTokenEncryption",
                include_bytes!("../keys/token.cert.pem"),
                include_bytes!("../keys/token.key.pem"),
            )?,
            symmetric: load(
                "SymmetricKeyEncryption",
                include_bytes!("../keys/symmetric.cert.pem"),
                include_bytes!("../keys/symmetric.key.pem"),
            )?,
            upo_signer: InMemorySigner::new(upo_key, upo_cert)
                .map_err(|e| KeyLoadError("upo", e.to_string()))?,
        })
    }

    /// The `PublicKeyCertificate` list.
    pub fn public_key_certificates(&self) -> Value {
        Value::Array(
            [&self.token, &self.symmetric]
                .iter()
                .map(|k| {
                    json!({
                        "certificate": k.cert.to_base64(),
                        "certificateId": k.certificate_id,
                        "publicKeyId": k.public_key_id,
                        "validFrom": rfc3339(k.cert.not_before()),
                        "validTo": rfc3339(k.cert.not_after()),
                        "usage": [k.usage],
                    })
                })
                .collect(),
        )
    }

    /// Checks an optional `publicKeyId` against the key expected for `usage`: `Err(())` means
    /// 21470 (unknown, or a key of the other usage).
    pub fn check_public_key_id(key: &PublishedKey, id: Option<&str>) -> Result<(), ()> {
        match id {
            None => Ok(()),
            Some(id) if id == key.public_key_id => Ok(()),
            Some(_) => Err(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_keys_load_and_match() {
        let k = SimKeys::builtin().unwrap();
        assert!(k.token.key.matches(&k.token.cert));
        assert!(k.symmetric.key.matches(&k.symmetric.cert));
        assert_ne!(k.token.public_key_id, k.symmetric.public_key_id);
        assert_eq!(k.token.public_key_id.len(), 44);
    }
}
