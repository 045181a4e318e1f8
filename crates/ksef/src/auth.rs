//! Authentication ([`Auth`]) and the authenticated handle ([`AuthenticatedClient`]) that keeps
//! its access token fresh.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ksef_crypto::cert::{Certificate, PersonId};
use ksef_crypto::keys::{KeyBundle, KeyKind, PrivateKey};
use ksef_crypto::public_key::KeyUsage;
use ksef_crypto::signer::{InMemorySigner, Signer};
use ksef_model::api;
use ksef_model::auth_request::{
    AllowedIps, AuthTokenRequest, ContextIdentifier, SubjectIdentifierType,
};
use ksef_model::ids::ReferenceNumber;
use ksef_model::operations::AuthXadesSignatureQuery;
use ksef_transport::{AccessToken, AuthenticationToken, RefreshToken};
use secrecy::{ExposeSecret, SecretString};
use time::OffsetDateTime;

use crate::client::KsefClient;
use crate::error::{Error, Result, StatusFailure};

/// Refresh the access token when it has less than this left.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// Options of XAdES authentication.
#[derive(Clone, Debug, Default)]
pub struct XadesOptions {
    /// How KSeF identifies the subject (default: from the certificate subject).
    pub subject_identifier_type: SubjectIdentifierType,
    /// `verifyCertificateChain=true`: check the chain and OCSP/CRL even on TEST.
    pub verify_certificate_chain: Option<bool>,
    /// Restrict the tokens to these client IPs.
    pub allowed_ips: Option<AllowedIps>,
}

/// Who the generated test certificate names (see [`Auth::test_certificate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestIdentity {
    /// A company seal: `organizationIdentifier = VATPL-<nip>`.
    Seal {
        /// Organisation name.
        name: String,
        /// The NIP.
        nip: String,
    },
    /// A person: `serialNumber = TINPL-<nip>` or `PNOPL-<pesel>`.
    Person {
        /// Given name.
        given_name: String,
        /// Surname.
        surname: String,
        /// NIP or PESEL.
        id: PersonId,
    },
}

/// A generated TEST certificate with its key, as a ready signer.
pub fn test_signer(identity: &TestIdentity) -> Result<InMemorySigner> {
    let key = PrivateKey::generate(KeyKind::P256)?;
    let cert = match identity {
        TestIdentity::Seal { name, nip } => ksef_crypto::cert::test_seal(&key, name, nip)?,
        TestIdentity::Person {
            given_name,
            surname,
            id,
        } => ksef_crypto::cert::test_personal(&key, given_name, surname, id.clone())?,
    };
    Ok(InMemorySigner::new(key, cert)?)
}

/// Authentication: `client.auth()`.
#[derive(Debug)]
pub struct Auth<'a> {
    client: &'a KsefClient,
}

impl<'a> Auth<'a> {
    pub(crate) fn new(client: &'a KsefClient) -> Self {
        Self { client }
    }

    /// XAdES authentication with any [`Signer`] (HSM, smart card, in-memory key).
    pub async fn xades(
        &self,
        signer: &dyn Signer,
        context: ContextIdentifier,
    ) -> Result<AuthenticatedClient> {
        self.xades_with(signer, context, &XadesOptions::default())
            .await
    }

    /// XAdES authentication with options.
    pub async fn xades_with(
        &self,
        signer: &dyn Signer,
        context: ContextIdentifier,
        options: &XadesOptions,
    ) -> Result<AuthenticatedClient> {
        let t = self.client.transport();
        let challenge = t.auth_challenge().await?.into_value();
        let challenge: ReferenceNumber = challenge.challenge.0.parse()?;
        let request = AuthTokenRequest::builder(challenge, context)
            .subject_identifier_type(options.subject_identifier_type)
            .allowed_ips(options.allowed_ips.clone())
            .build()?;
        let signed = ksef_crypto::xades::sign(&request.to_xml()?, signer)?;
        let query = AuthXadesSignatureQuery {
            verify_certificate_chain: options.verify_certificate_chain,
        };
        let init = t.auth_xades_signature(&query, signed).await?.into_value();
        self.finish(init).await
    }

    /// XAdES authentication with a certificate and private key read from files (PEM or DER;
    /// `password` for an encrypted key).
    pub async fn xades_files(
        &self,
        certificate: impl AsRef<Path>,
        key: impl AsRef<Path>,
        password: Option<&str>,
        context: ContextIdentifier,
    ) -> Result<AuthenticatedClient> {
        let read = |p: &Path| {
            std::fs::read(p).map_err(|e| Error::io(format!("reading {}", p.display()), e))
        };
        let cert = Certificate::from_pem_or_der(&read(certificate.as_ref())?)?;
        let key = PrivateKey::from_pem_or_der(&read(key.as_ref())?, password)?;
        let signer = InMemorySigner::new(key, cert)?;
        self.xades(&signer, context).await
    }

    /// XAdES authentication with a PKCS#12 (.p12/.pfx) bundle.
    pub async fn xades_pkcs12(
        &self,
        pkcs12: &[u8],
        password: &str,
        context: ContextIdentifier,
    ) -> Result<AuthenticatedClient> {
        let bundle = KeyBundle::from_pkcs12(pkcs12, password)?;
        let signer = InMemorySigner::new(bundle.key, bundle.certificate)?;
        self.xades(&signer, context).await
    }

    /// TEST only: generates a self-signed certificate for `identity` and authenticates with it.
    /// Refused (before any network call) on DEMO and PRODUCTION, which reject self-signed
    /// certificates.
    pub async fn test_certificate(
        &self,
        identity: &TestIdentity,
        context: ContextIdentifier,
    ) -> Result<AuthenticatedClient> {
        self.client
            .require_test("authentication with a self-signed test certificate")?;
        let signer = test_signer(identity)?;
        self.xades(&signer, context).await
    }

    /// Authentication with a KSeF token (encrypted with the MF `KsefTokenEncryption` key).
    pub async fn ksef_token(
        &self,
        token: &SecretString,
        context: ContextIdentifier,
    ) -> Result<AuthenticatedClient> {
        let t = self.client.transport();
        let context = &context;
        let init = self
            .client
            .with_public_key(KeyUsage::KsefTokenEncryption, |key| async move {
                let challenge = t.auth_challenge().await?.into_value();
                let encrypted = ksef_crypto::encryption::encrypt_ksef_token(
                    token.expose_secret(),
                    challenge.timestamp_ms,
                    key.public_key(),
                )?;
                let body = api::InitTokenAuthenticationRequest {
                    authorization_policy: None,
                    challenge: challenge.challenge,
                    context_identifier: context.into(),
                    encrypted_token: ksef_model::Base64Bytes::from_base64(&encrypted)
                        .map_err(|e| Error::InvalidInput(e.to_string()))?,
                    public_key_id: ksef_model::Base64Bytes::from_base64(key.public_key_id()).ok(),
                };
                Ok(t.auth_ksef_token(&body).await?.into_value())
            })
            .await?;
        self.finish(init).await
    }

    /// Restores a saved authentication (see [`AuthenticatedClient::save`]) without a new login.
    pub fn restore(&self, saved: SavedAuth) -> Result<AuthenticatedClient> {
        if saved.api_base_url != self.client.environment().api_base_url() {
            return Err(Error::SavedStateUnusable(format!(
                "it was made for {}, the client points at {}",
                saved.api_base_url,
                self.client.environment().api_base_url()
            )));
        }
        if saved.refresh_valid_until <= OffsetDateTime::now_utc() {
            return Err(Error::SavedStateUnusable(
                "the refresh token has expired".into(),
            ));
        }
        Ok(AuthenticatedClient::from_parts(
            self.client.clone(),
            saved.reference_number,
            Tokens {
                access: AccessToken::new(saved.access_token.expose_secret()),
                access_valid_until: saved.access_valid_until,
                refresh: RefreshToken::new(saved.refresh_token.expose_secret()),
                refresh_valid_until: saved.refresh_valid_until,
                generation: 0,
            },
        ))
    }

    /// Polls the authentication status until it is final, then redeems the tokens (once).
    async fn finish(&self, init: api::AuthenticationInitResponse) -> Result<AuthenticatedClient> {
        let t = self.client.transport();
        let op_token = AuthenticationToken::new(init.authentication_token.token);
        let reference = init.reference_number;
        let status = self
            .client
            .poll_options()
            .poll("the authentication status", || async {
                let s = t.auth_status(&op_token, &reference).await?.into_value();
                Ok((s.status.code != 100).then_some(s.status))
            })
            .await?;
        if status.code != 200 {
            return Err(Error::AuthenticationFailed(StatusFailure {
                code: status.code,
                description: status.description,
                details: status.details.unwrap_or_default(),
            }));
        }
        let tokens = t.redeem_tokens(&op_token).await?.into_value();
        Ok(AuthenticatedClient::from_parts(
            self.client.clone(),
            reference,
            Tokens {
                access: AccessToken::new(tokens.access_token.token),
                access_valid_until: tokens.access_token.valid_until.as_offset_date_time(),
                refresh: RefreshToken::new(tokens.refresh_token.token),
                refresh_valid_until: tokens.refresh_token.valid_until.as_offset_date_time(),
                generation: 0,
            },
        ))
    }
}

#[derive(Clone)]
struct Tokens {
    access: AccessToken,
    access_valid_until: OffsetDateTime,
    refresh: RefreshToken,
    refresh_valid_until: OffsetDateTime,
    /// Bumped by every refresh, so concurrent tasks refresh once.
    generation: u64,
}

struct TokenState {
    reference: ReferenceNumber,
    tokens: tokio::sync::RwLock<Tokens>,
    refresh_lock: tokio::sync::Mutex<()>,
}

/// An authenticated client: the access token is refreshed before it expires (one refresh at a
/// time across tasks) and a request that got 401 is replayed once after a refresh.
///
/// Cheap to clone; clones share the tokens. `Debug` never shows tokens.
#[derive(Clone)]
pub struct AuthenticatedClient {
    client: KsefClient,
    state: Arc<TokenState>,
}

impl std::fmt::Debug for AuthenticatedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthenticatedClient")
            .field("reference", &self.state.reference)
            .finish_non_exhaustive()
    }
}

/// What [`AuthenticatedClient::save`] returns: enough to continue after a restart.
///
/// It holds the tokens in clear when serialised: store it as you would a password. `Debug`
/// redacts them.
#[derive(Clone, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SavedAuth {
    /// The API base URL it belongs to.
    pub api_base_url: String,
    /// The authentication operation's reference number.
    pub reference_number: ReferenceNumber,
    /// The access token.
    #[serde(with = "secret")]
    pub access_token: SecretString,
    /// When the access token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub access_valid_until: OffsetDateTime,
    /// The refresh token.
    #[serde(with = "secret")]
    pub refresh_token: SecretString,
    /// When the refresh token expires.
    #[serde(with = "time::serde::rfc3339")]
    pub refresh_valid_until: OffsetDateTime,
}

impl std::fmt::Debug for SavedAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SavedAuth")
            .field("api_base_url", &self.api_base_url)
            .field("reference_number", &self.reference_number)
            .field("access_valid_until", &self.access_valid_until)
            .field("refresh_valid_until", &self.refresh_valid_until)
            .finish_non_exhaustive()
    }
}

pub(crate) mod secret {
    use secrecy::{ExposeSecret, SecretString};
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(s: &SecretString, ser: S) -> Result<S::Ok, S::Error> {
        ser.serialize_str(s.expose_secret())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<SecretString, D::Error> {
        Ok(SecretString::from(String::deserialize(de)?))
    }
}

impl AuthenticatedClient {
    fn from_parts(client: KsefClient, reference: ReferenceNumber, tokens: Tokens) -> Self {
        Self {
            client,
            state: Arc::new(TokenState {
                reference,
                tokens: tokio::sync::RwLock::new(tokens),
                refresh_lock: tokio::sync::Mutex::new(()),
            }),
        }
    }

    /// A handle with made-up tokens (unit tests of flows that need no real login).
    #[cfg(test)]
    pub(crate) fn for_tests(client: KsefClient) -> Self {
        let later = OffsetDateTime::now_utc() + time::Duration::hours(1);
        Self::from_parts(
            client,
            "20250626-SO-2F14610000-242991F8C9-B4"
                .parse()
                .unwrap_or_else(|_| unreachable!("a valid reference number")),
            Tokens {
                access: AccessToken::new("access"),
                access_valid_until: later,
                refresh: RefreshToken::new("refresh"),
                refresh_valid_until: later,
                generation: 0,
            },
        )
    }

    /// The underlying client.
    pub fn client(&self) -> &KsefClient {
        &self.client
    }

    /// The authentication operation's reference number.
    pub fn reference_number(&self) -> &ReferenceNumber {
        &self.state.reference
    }

    /// A valid access token, refreshed first when it expires within a minute.
    pub async fn access_token(&self) -> Result<AccessToken> {
        Ok(self.current().await?.0)
    }

    /// When the current access token expires.
    pub async fn access_valid_until(&self) -> OffsetDateTime {
        self.state.tokens.read().await.access_valid_until
    }

    async fn current(&self) -> Result<(AccessToken, u64)> {
        let (token, until, generation) = {
            let t = self.state.tokens.read().await;
            (t.access.clone(), t.access_valid_until, t.generation)
        };
        if until - OffsetDateTime::now_utc() > REFRESH_MARGIN {
            return Ok((token, generation));
        }
        self.refresh_from(generation).await
    }

    /// Refreshes the access token now (unless another task already did since `generation`).
    async fn refresh_from(&self, generation: u64) -> Result<(AccessToken, u64)> {
        let _one_at_a_time = self.state.refresh_lock.lock().await;
        let refresh = {
            let t = self.state.tokens.read().await;
            if t.generation != generation {
                return Ok((t.access.clone(), t.generation));
            }
            if t.refresh_valid_until <= OffsetDateTime::now_utc() {
                return Err(Error::SavedStateUnusable(
                    "the refresh token has expired".into(),
                ));
            }
            t.refresh.clone()
        };
        tracing::debug!("refreshing the KSeF access token");
        let r = self
            .client
            .transport()
            .refresh_access_token(&refresh)
            .await?
            .into_value();
        let mut t = self.state.tokens.write().await;
        t.access = AccessToken::new(r.access_token.token);
        t.access_valid_until = r.access_token.valid_until.as_offset_date_time();
        t.generation += 1;
        Ok((t.access.clone(), t.generation))
    }

    /// Refreshes the access token now.
    pub async fn refresh(&self) -> Result<()> {
        let generation = self.state.tokens.read().await.generation;
        self.refresh_from(generation).await.map(|_| ())
    }

    /// Runs `call` with a valid access token; after a 401 it refreshes the token and replays the
    /// call once. Use it for raw transport calls.
    pub async fn call<T, F, Fut>(&self, mut call: F) -> Result<T>
    where
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = ksef_transport::Result<T>>,
    {
        let (token, generation) = self.current().await?;
        match call(token).await {
            Err(e) if e.status() == Some(401) => {
                tracing::info!("401 from KSeF: refreshing the access token and replaying once");
                let (token, _) = self.refresh_from(generation).await?;
                Ok(call(token).await?)
            }
            other => Ok(other?),
        }
    }

    /// The state to store so a restart needs no new login (see [`Auth::restore`]).
    pub async fn save(&self) -> SavedAuth {
        let t = self.state.tokens.read().await;
        SavedAuth {
            api_base_url: self.client.environment().api_base_url().to_owned(),
            reference_number: self.state.reference.clone(),
            access_token: SecretString::from(t.access.expose_secret().to_owned()),
            access_valid_until: t.access_valid_until,
            refresh_token: SecretString::from(t.refresh.expose_secret().to_owned()),
            refresh_valid_until: t.refresh_valid_until,
        }
    }

    /// Revokes this authentication session (`DELETE /auth/sessions/current`); its tokens stop
    /// working.
    pub async fn revoke(self) -> Result<()> {
        let refresh = self.state.tokens.read().await.refresh.clone();
        self.client
            .transport()
            .revoke_current_auth_session(&refresh)
            .await?;
        Ok(())
    }

    /// The active authentication sessions of the context, page after page
    /// (`GET /auth/sessions`); the current one has `isCurrent`.
    pub fn auth_sessions(
        &self,
    ) -> impl futures_util::Stream<Item = Result<api::AuthenticationListItem>> + Send + '_ {
        crate::paging::continuation_pages(move |continuation| async move {
            let page = self
                .call(|t| {
                    let continuation = continuation.clone();
                    async move {
                        let q = ksef_model::operations::ListAuthSessionsQuery {
                            page_size: Some(100),
                        };
                        self.client
                            .transport()
                            .list_auth_sessions(&t, &q, continuation.as_deref())
                            .await
                    }
                })
                .await?
                .into_value();
            Ok((page.items, page.continuation_token))
        })
    }

    /// Online sessions.
    pub fn sessions(&self) -> crate::session::Sessions<'_> {
        crate::session::Sessions::new(self)
    }

    /// Marks the access token as expired (tests of the refresh path).
    #[doc(hidden)]
    pub async fn expire_access_token_for_tests(&self, token: Option<&str>) {
        let mut t = self.state.tokens.write().await;
        t.access_valid_until = OffsetDateTime::now_utc();
        if let Some(token) = token {
            t.access = AccessToken::new(token);
            t.access_valid_until = OffsetDateTime::now_utc() + time::Duration::hours(1);
        }
    }
}
