//! Saving an open online session and resuming it after a restart: [`SavedOnlineSession`],
//! [`OnlineSession::save`] and [`Sessions::resume_online`].

use ksef_crypto::encryption::SessionKey;
use ksef_model::FormCode;
use ksef_model::ids::ReferenceNumber;
use secrecy::{ExposeSecret, SecretString};
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::session::{OnlineSession, Sessions};

/// What [`OnlineSession::save`] returns: enough to go on sending in the same session after a
/// restart (with [`Sessions::resume_online`] on an authenticated client, e.g. one restored from a
/// [`crate::SavedAuth`]).
///
/// **Sensitive.** It holds the session's AES-256 key and IV, which decrypt every invoice sent in
/// the session: serialised, they are in clear (Base64), so store it as you would a password or a
/// private key (file mode 0600, a secret store), and delete it once the session is closed. In
/// memory both are [`SecretString`]s, wiped on drop; `Debug` leaves them out.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedOnlineSession {
    /// The API base URL the session was opened on; [`Sessions::resume_online`] refuses another.
    pub api_base_url: String,
    /// The session reference number.
    pub reference_number: ReferenceNumber,
    /// The session's form code.
    pub form_code: FormCode,
    /// When KSeF closes the session on its own; a session past it is not resumed.
    pub valid_until: ksef_model::DateTime,
    /// The session's AES-256 key, Base64 (secret).
    #[serde(with = "crate::auth::secret")]
    pub symmetric_key: SecretString,
    /// The session's AES initialization vector, Base64 (secret).
    #[serde(with = "crate::auth::secret")]
    pub initialization_vector: SecretString,
}

impl std::fmt::Debug for SavedOnlineSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedOnlineSession")
            .field("api_base_url", &self.api_base_url)
            .field("reference_number", &self.reference_number)
            .field("form_code", &self.form_code)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl OnlineSession {
    /// The state to store so the session can be resumed after a restart
    /// ([`Sessions::resume_online`]). No network call. The result holds the session key: see
    /// [`SavedOnlineSession`] on storing it.
    pub fn save(&self) -> SavedOnlineSession {
        let key = self.key();
        SavedOnlineSession {
            api_base_url: self.auth().client().environment().api_base_url().to_owned(),
            reference_number: self.reference_number().clone(),
            form_code: self.form_code().clone(),
            valid_until: self.valid_until(),
            symmetric_key: SecretString::from(ksef_crypto::hash::base64(key.key_bytes())),
            initialization_vector: SecretString::from(key.iv_base64()),
        }
    }
}

impl Sessions<'_> {
    /// Resumes an online session saved with [`OnlineSession::save`], on this authenticated
    /// client (which may be a new one, e.g. restored from a [`crate::SavedAuth`]). No network
    /// call.
    ///
    /// Refused with [`Error::SavedSessionOtherEnvironment`] when the session was opened on
    /// another API base URL, and with [`Error::SessionExpired`] when it is past its
    /// `validUntil`. A session closed in the meantime is not detected here: KSeF refuses the
    /// next send.
    pub fn resume_online(&self, saved: SavedOnlineSession) -> Result<OnlineSession> {
        let client_url = self.auth().client().environment().api_base_url();
        if saved.api_base_url != client_url {
            return Err(Error::SavedSessionOtherEnvironment {
                reference: saved.reference_number.to_string(),
                saved: saved.api_base_url,
                client: client_url.to_owned(),
            });
        }
        if saved.valid_until.as_offset_date_time() <= time::OffsetDateTime::now_utc() {
            return Err(Error::SessionExpired {
                reference: saved.reference_number.to_string(),
                valid_until: saved.valid_until,
            });
        }
        let key = Zeroizing::new(ksef_crypto::hash::decode_base64(
            saved.symmetric_key.expose_secret(),
            "symmetricKey",
        )?);
        let iv = ksef_crypto::hash::decode_base64(
            saved.initialization_vector.expose_secret(),
            "initializationVector",
        )?;
        let key = SessionKey::from_parts(&key, &iv)?;
        Ok(OnlineSession::from_parts(
            self.auth().clone(),
            saved.reference_number,
            key,
            saved.form_code,
            saved.valid_until,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn saved(url: &str, valid_until: time::OffsetDateTime) -> SavedOnlineSession {
        let key = SessionKey::from_parts(&[7; 32], &[9; 16]).unwrap();
        SavedOnlineSession {
            api_base_url: url.into(),
            reference_number: "20250626-SO-2F14610000-242991F8C9-B4".parse().unwrap(),
            form_code: FormCode::Fa3,
            valid_until: ksef_model::DateTime::from(valid_until),
            symmetric_key: SecretString::from(ksef_crypto::hash::base64(key.key_bytes())),
            initialization_vector: SecretString::from(key.iv_base64()),
        }
    }

    /// The JSON round-trips, `Debug` shows no key material, and a resume checks the URL and
    /// the expiry before anything else.
    #[test]
    fn saved_session_round_trips_redacts_and_is_checked() {
        let url = "http://127.0.0.1:9/v2";
        let later = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
        let s = saved(url, later);
        let key_b64 = s.symmetric_key.expose_secret().to_owned();
        let iv_b64 = s.initialization_vector.expose_secret().to_owned();
        let debug = format!("{s:?}");
        assert!(
            !debug.contains(&key_b64) && !debug.contains(&iv_b64),
            "{debug}"
        );
        assert!(debug.contains("20250626-SO-2F14610000-242991F8C9-B4"));
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["symmetricKey"], key_b64.as_str());
        assert_eq!(json["initializationVector"], iv_b64.as_str());
        assert_eq!(json["apiBaseUrl"], url);
        let back: SavedOnlineSession = serde_json::from_value(json).unwrap();
        assert_eq!(back.symmetric_key.expose_secret(), key_b64);
        assert_eq!(back.form_code, FormCode::Fa3);

        let client = crate::KsefClient::builder_for_url(url).build().unwrap();
        let auth = crate::AuthenticatedClient::for_tests(client);
        let resumed = auth.sessions().resume_online(back).unwrap();
        assert_eq!(resumed.key().key_bytes(), &[7; 32]);
        assert_eq!(resumed.key().iv(), &[9; 16]);
        assert_eq!(resumed.save().symmetric_key.expose_secret(), key_b64);

        let other = auth
            .sessions()
            .resume_online(saved("http://127.0.0.1:10/v2", later))
            .unwrap_err();
        assert!(
            matches!(&other, Error::SavedSessionOtherEnvironment { saved, .. } if saved == "http://127.0.0.1:10/v2"),
            "{other}"
        );
        let earlier = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
        let expired = auth
            .sessions()
            .resume_online(saved(url, earlier))
            .unwrap_err();
        assert!(matches!(expired, Error::SessionExpired { .. }), "{expired}");
        let mut bad = saved(url, later);
        bad.symmetric_key = SecretString::from("AAAA".to_owned());
        assert!(auth.sessions().resume_online(bad).is_err());
    }
}
