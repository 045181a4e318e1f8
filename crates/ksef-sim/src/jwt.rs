//! JWT-shaped bearer tokens (HS256 with a per-simulator secret) carrying the claim sets seen in
//! the KSeF examples (ksef-api.md §4.1) plus the simulator's own `jti` and operation reference.
//!
//! HMAC-SHA256 is written out here (RFC 2104, a dozen lines over `sha2`) rather than pulling in a
//! JWT stack: the simulator needs only HS256 sign/verify of its own tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The three token kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Authentication operation token (`GET /auth/{ref}`, redeem).
    Operation,
    /// Access token.
    Access,
    /// Refresh token.
    Refresh,
}

impl TokenKind {
    fn claim(self) -> &'static str {
        match self {
            TokenKind::Operation => "OperationToken",
            TokenKind::Access => "ContextToken",
            TokenKind::Refresh => "RefreshToken",
        }
    }
}

/// What a verified token says.
#[derive(Debug, Clone)]
pub(crate) struct Claims {
    pub kind: TokenKind,
    /// The authentication operation's reference number.
    pub auth_ref: String,
    /// Unique token id.
    pub jti: String,
    /// Expiry (Unix seconds).
    #[allow(dead_code)] // read by the unit tests; rate limits will key on it
    pub exp: i64,
}

fn hmac_sha256(key: &[u8; 32], data: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    k[..32].copy_from_slice(key);
    let mut ipad = [0x36u8; 64];
    let mut opad = [0x5cu8; 64];
    for i in 0..64 {
        ipad[i] ^= k[i];
        opad[i] ^= k[i];
    }
    let inner = Sha256::new()
        .chain_update(ipad)
        .chain_update(data)
        .finalize();
    Sha256::new()
        .chain_update(opad)
        .chain_update(inner)
        .finalize()
        .into()
}

/// Issues a token. `extra` claims (context, subject...) are merged in.
pub(crate) fn issue(
    secret: &[u8; 32],
    kind: TokenKind,
    auth_ref: &str,
    jti: &str,
    iat: i64,
    exp: i64,
    extra: Value,
) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut claims = json!({
        "token-type": kind.claim(),
        "operation-reference-number": auth_ref,
        "jti": jti,
        "iat": iat,
        "exp": exp,
        "iss": "ksef-sim",
        "aud": "ksef-sim",
    });
    if let (Some(c), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        c.extend(extra);
    }
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap_or_default());
    let signing_input = format!("{header}.{payload}");
    let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, signing_input.as_bytes()));
    format!("{signing_input}.{sig}")
}

/// Why a token was refused (rendered as 401 problem details).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum TokenError {
    Malformed,
    BadSignature,
    Expired,
}

/// Verifies signature and expiry against `now` (Unix seconds).
pub(crate) fn verify(secret: &[u8; 32], token: &str, now: i64) -> Result<Claims, TokenError> {
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed);
    };
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|_| TokenError::Malformed)?;
    let expected = hmac_sha256(secret, format!("{h}.{p}").as_bytes());
    // Constant-time comparison.
    if sig.len() != 32 || sig.iter().zip(expected).fold(0u8, |a, (x, y)| a | (x ^ y)) != 0 {
        return Err(TokenError::BadSignature);
    }
    let payload = URL_SAFE_NO_PAD
        .decode(p)
        .map_err(|_| TokenError::Malformed)?;
    let v: Value = serde_json::from_slice(&payload).map_err(|_| TokenError::Malformed)?;
    let kind = match v["token-type"].as_str() {
        Some("OperationToken") => TokenKind::Operation,
        Some("ContextToken") => TokenKind::Access,
        Some("RefreshToken") => TokenKind::Refresh,
        _ => return Err(TokenError::Malformed),
    };
    let exp = v["exp"].as_i64().ok_or(TokenError::Malformed)?;
    if now >= exp {
        return Err(TokenError::Expired);
    }
    Ok(Claims {
        kind,
        auth_ref: v["operation-reference-number"]
            .as_str()
            .ok_or(TokenError::Malformed)?
            .to_owned(),
        jti: v["jti"].as_str().ok_or(TokenError::Malformed)?.to_owned(),
        exp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_rfc4231_case2_prefix_key() {
        // RFC 4231 test case 2 uses a 4-byte key "Jefe"; zero-padding to 32 bytes gives the same
        // HMAC because keys shorter than the block are zero-padded anyway.
        let mut key = [0u8; 32];
        key[..4].copy_from_slice(b"Jefe");
        let mac = hmac_sha256(&key, b"what do ya want for nothing?");
        let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn round_trip_expiry_and_tamper() {
        let s = [7u8; 32];
        let t = issue(
            &s,
            TokenKind::Access,
            "ref",
            "j1",
            100,
            200,
            json!({"a": 1}),
        );
        let c = verify(&s, &t, 150).unwrap();
        assert_eq!(
            (c.kind, c.auth_ref.as_str(), c.exp),
            (TokenKind::Access, "ref", 200)
        );
        assert_eq!(verify(&s, &t, 200).unwrap_err(), TokenError::Expired);
        assert_eq!(
            verify(&[8u8; 32], &t, 150).unwrap_err(),
            TokenError::BadSignature
        );
        assert_eq!(verify(&s, "abc", 150).unwrap_err(), TokenError::Malformed);
    }
}
