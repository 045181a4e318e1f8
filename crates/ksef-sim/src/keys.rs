//! The simulator's own key pairs: `KsefTokenEncryption` and `SymmetricKeyEncryption` (served by
//! `GET /security/public-key-certificates`) and the key that signs UPOs.
//!
//! The keys are committed fixtures (`keys/*.pem`, RSA-2048, self-signed, made with OpenSSL):
//! generating RSA keys at start-up would cost seconds per simulator in tests. Tests can rotate
//! the two published keys ([`SimulatorHandle::rotate_key`](crate::SimulatorHandle::rotate_key),
//! `POST /__sim/keys/rotate`); a rotated key is generated then.

use std::ops::Deref;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use axum::http::StatusCode;
use axum::response::Response;
use ksef_crypto::cert::Certificate;
use ksef_crypto::keys::PrivateKey;
use ksef_crypto::signer::InMemorySigner;
use serde_json::{Value, json};

use crate::error::json_response;
use crate::ids::rfc3339;
use crate::server::Inner;

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
    pub token: KeySlot,
    pub symmetric: KeySlot,
    pub upo_signer: InMemorySigner,
}

/// How many times one usage's key can be rotated in the life of one simulator.
pub const MAX_ROTATIONS: usize = 32;

/// The current key of one usage. Rotation publishes a new key; the old one is withdrawn at once
/// (KSeF's emergency rotation: no longer listed, its `publicKeyId` answered with 21470).
///
/// Readers get a plain `&PublishedKey` (`inner.keys.symmetric.key`) without locking: rotated keys
/// go into write-once slots that live as long as the simulator, and rotation only moves the
/// index of the current one.
pub(crate) struct KeySlot {
    first: PublishedKey,
    rotated: Vec<OnceLock<PublishedKey>>,
    current: AtomicUsize,
    rotating: Mutex<()>,
}

impl KeySlot {
    fn new(first: PublishedKey) -> Self {
        KeySlot {
            first,
            rotated: (0..MAX_ROTATIONS).map(|_| OnceLock::new()).collect(),
            current: AtomicUsize::new(0),
            rotating: Mutex::new(()),
        }
    }

    /// Publishes `key` as the current one; the previous key is withdrawn.
    fn publish(&self, key: PublishedKey) -> Result<(), KeyRotationError> {
        let _guard = self.rotating.lock().unwrap_or_else(|p| p.into_inner());
        let next = self.current.load(Ordering::Acquire);
        let slot = self
            .rotated
            .get(next)
            .ok_or(KeyRotationError::TooMany(MAX_ROTATIONS))?;
        slot.set(key)
            .map_err(|_| KeyRotationError::Failed("key slot already used".into()))?;
        self.current.store(next + 1, Ordering::Release);
        Ok(())
    }
}

impl KeySlot {
    /// Whether the current key is a rotated one (not the built-in fixture).
    pub fn is_rotated(&self) -> bool {
        self.current.load(Ordering::Acquire) > 0
    }
}

impl Deref for KeySlot {
    type Target = PublishedKey;

    fn deref(&self) -> &PublishedKey {
        match self.current.load(Ordering::Acquire) {
            0 => &self.first,
            n => self
                .rotated
                .get(n - 1)
                .and_then(OnceLock::get)
                .unwrap_or(&self.first),
        }
    }
}

/// Which published key to rotate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyUsage {
    /// The key that wraps session and export AES keys.
    SymmetricKeyEncryption,
    /// The key that encrypts KSeF tokens for `/auth/ksef-token`.
    KsefTokenEncryption,
}

impl KeyUsage {
    fn as_str(self) -> &'static str {
        match self {
            KeyUsage::SymmetricKeyEncryption => "SymmetricKeyEncryption",
            KeyUsage::KsefTokenEncryption => "KsefTokenEncryption",
        }
    }
}

/// Why a key rotation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyRotationError {
    /// The simulator rotated this usage's key too often; restart it.
    #[error("a key can be rotated at most {0} times per simulator run; restart the simulator")]
    TooMany(usize),
    /// Generating the key or its certificate failed.
    #[error("generating the new key failed: {0}")]
    Failed(String),
}

/// Generates a new RSA-2048 key pair for `usage` with a self-signed certificate valid from `now`
/// (so it is the one with the latest `validFrom`) for two years.
fn generate(usage: KeyUsage, now: time::OffsetDateTime) -> Result<PublishedKey, KeyRotationError> {
    use ksef_crypto::cert::{CertificateUse, DistinguishedName, IssueOptions};
    let fail = |e: ksef_crypto::Error| KeyRotationError::Failed(e.to_string());
    let key = PrivateKey::generate(ksef_crypto::keys::KeyKind::Rsa2048).map_err(fail)?;
    let dn = DistinguishedName {
        common_name: "Ministerstwo Finansów".into(),
        country_name: "PL".into(),
        organization_name: Some(format!("ksef-sim {}", usage.as_str())),
        ..DistinguishedName::default()
    };
    let cert = ksef_crypto::cert::self_signed(
        &key,
        &dn,
        &IssueOptions {
            not_before: now,
            not_after: now + time::Duration::days(730),
            serial: None,
            usage: CertificateUse::DigitalSignature,
        },
    )
    .map_err(fail)?;
    published(usage.as_str(), cert, key).map_err(|e| KeyRotationError::Failed(e.to_string()))
}

impl SimKeys {
    /// Generates and publishes a new key for `usage`; returns its `publicKeyId`. Takes up to a
    /// second or two (RSA key generation): call it off the async threads.
    pub fn rotate(
        &self,
        usage: KeyUsage,
        now: time::OffsetDateTime,
    ) -> Result<String, KeyRotationError> {
        let key = generate(usage, now)?;
        let id = key.public_key_id.clone();
        match usage {
            KeyUsage::SymmetricKeyEncryption => self.symmetric.publish(key)?,
            KeyUsage::KsefTokenEncryption => self.token.publish(key)?,
        }
        Ok(id)
    }
}

/// `POST /__sim/keys/rotate` with an optional body `{"usage": "SymmetricKeyEncryption" |
/// "KsefTokenEncryption"}` (default the symmetric key): 200 `{"usage", "publicKeyId"}`.
pub(crate) async fn admin_rotate(inner: &Arc<Inner>, body: &[u8]) -> Response {
    let answer = |status: StatusCode, v: Value| json_response(status, "application/json", &v);
    let usage = if body.iter().all(u8::is_ascii_whitespace) {
        KeyUsage::SymmetricKeyEncryption
    } else {
        let v: Value = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => return answer(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
        };
        match v["usage"].as_str() {
            None | Some("SymmetricKeyEncryption") => KeyUsage::SymmetricKeyEncryption,
            Some("KsefTokenEncryption") => KeyUsage::KsefTokenEncryption,
            Some(other) => {
                return answer(
                    StatusCode::BAD_REQUEST,
                    json!({"error": format!("unknown usage {other}; use SymmetricKeyEncryption or KsefTokenEncryption")}),
                );
            }
        }
    };
    match rotate_async(inner.clone(), usage).await {
        Ok(id) => answer(
            StatusCode::OK,
            json!({"usage": usage.as_str(), "publicKeyId": id}),
        ),
        Err(e) => answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({"error": e.to_string()}),
        ),
    }
}

/// Rotates on a blocking thread.
pub(crate) async fn rotate_async(
    inner: Arc<Inner>,
    usage: KeyUsage,
) -> Result<String, KeyRotationError> {
    tokio::task::spawn_blocking(move || {
        let now = inner.now();
        let id = inner.keys.rotate(usage, now)?;
        Ok(id)
    })
    .await
    .map_err(|e| KeyRotationError::Failed(e.to_string()))?
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
    published(usage, cert, key)
}

fn published(
    usage: &'static str,
    cert: Certificate,
    key: PrivateKey,
) -> Result<PublishedKey, KeyLoadError> {
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
            token: KeySlot::new(load(
                "KsefTokenEncryption",
                include_bytes!("../keys/token.cert.pem"),
                include_bytes!("../keys/token.key.pem"),
            )?),
            symmetric: KeySlot::new(load(
                "SymmetricKeyEncryption",
                include_bytes!("../keys/symmetric.cert.pem"),
                include_bytes!("../keys/symmetric.key.pem"),
            )?),
            upo_signer: InMemorySigner::new(upo_key, upo_cert)
                .map_err(|e| KeyLoadError("upo", e.to_string()))?,
        })
    }

    /// Publishes a rotated key read back from a state directory (`usage` as stored).
    pub fn restore(&self, usage: &str, cert_der: &[u8], key_der: &[u8]) -> Result<(), String> {
        let cert = Certificate::from_der(cert_der).map_err(|e| e.to_string())?;
        let key = PrivateKey::from_der(key_der, None).map_err(|e| e.to_string())?;
        let (slot, name) = match usage {
            "KsefTokenEncryption" => (&self.token, "KsefTokenEncryption"),
            "SymmetricKeyEncryption" => (&self.symmetric, "SymmetricKeyEncryption"),
            other => return Err(format!("unknown key usage {other}")),
        };
        let key = published(name, cert, key).map_err(|e| e.to_string())?;
        slot.publish(key).map_err(|e| e.to_string())
    }

    /// The `PublicKeyCertificate` list.
    pub fn public_key_certificates(&self) -> Value {
        Value::Array(
            [&*self.token, &*self.symmetric]
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
    fn rotation_withdraws_the_old_key() {
        let k = SimKeys::builtin().unwrap();
        let old = k.symmetric.public_key_id.clone();
        let token = k.token.public_key_id.clone();
        let id = k
            .rotate(
                KeyUsage::SymmetricKeyEncryption,
                time::OffsetDateTime::now_utc(),
            )
            .unwrap();
        assert_ne!(id, old);
        assert_eq!(k.symmetric.public_key_id, id);
        assert!(k.symmetric.key.matches(&k.symmetric.cert));
        assert!(SimKeys::check_public_key_id(&k.symmetric, Some(&old)).is_err());
        assert!(SimKeys::check_public_key_id(&k.symmetric, Some(&id)).is_ok());
        assert_eq!(k.token.public_key_id, token, "the other usage is untouched");
        let list = k.public_key_certificates();
        assert_eq!(list.as_array().unwrap().len(), 2);
        assert!(list.to_string().contains(&id) && !list.to_string().contains(&old));
    }

    #[test]
    fn builtin_keys_load_and_match() {
        let k = SimKeys::builtin().unwrap();
        assert!(k.token.key.matches(&k.token.cert));
        assert!(k.symmetric.key.matches(&k.symmetric.cert));
        assert_ne!(k.token.public_key_id, k.symmetric.public_key_id);
        assert_eq!(k.token.public_key_id.len(), 44);
    }
}
