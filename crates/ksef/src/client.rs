//! [`KsefClient`]: configuration, the MF public-key cache and the entry points to each area.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ksef_crypto::public_key::{KeyUsage, MfPublicKey, MfPublicKeyEntry};
use ksef_model::Environment;
use ksef_transport::{ExceptionCode, RetryPolicy, Transport, TransportBuilder};

use crate::error::{Error, Result};

/// How often and how long the SDK polls asynchronous KSeF operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PollOptions {
    /// First delay between two status requests.
    pub initial_delay: Duration,
    /// Upper bound of the delay (it grows by half each round).
    pub max_delay: Duration,
    /// Give up after this long with [`Error::PollTimeout`].
    pub timeout: Duration,
}

impl Default for PollOptions {
    /// 200 ms growing to 5 s, for at most 5 minutes.
    fn default() -> Self {
        Self {
            initial_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            timeout: Duration::from_secs(300),
        }
    }
}

impl PollOptions {
    /// Polls `step` until it returns `Some`, sleeping with backoff; times out with
    /// [`Error::PollTimeout`] naming `what`.
    pub(crate) async fn poll<T, F, Fut>(&self, what: &'static str, mut step: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>>>,
    {
        let start = Instant::now();
        let mut delay = self.initial_delay;
        loop {
            if let Some(v) = step().await? {
                return Ok(v);
            }
            if start.elapsed() + delay > self.timeout {
                return Err(Error::PollTimeout {
                    what,
                    seconds: self.timeout.as_secs(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay + delay / 2).min(self.max_delay);
        }
    }
}

/// Builder of a [`KsefClient`].
#[derive(Debug)]
pub struct KsefClientBuilder {
    environment: Environment,
    transport: TransportBuilder,
    poll: PollOptions,
    key_ttl: Duration,
}

impl KsefClientBuilder {
    /// Timeout of one API call (default 30 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.transport = self.transport.timeout(timeout);
        self
    }

    /// Timeout of one presigned upload or download (default 30 min).
    pub fn transfer_timeout(mut self, timeout: Duration) -> Self {
        self.transport = self.transport.transfer_timeout(timeout);
        self
    }

    /// Retry policy: attempts for 5xx/timeouts and the 429 budget (default
    /// [`RetryPolicy::default`]; [`RetryPolicy::none`] disables retries).
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.transport = self.transport.retry_policy(policy);
        self
    }

    /// Client-side pacing under KSeF's rate limits (on for TEST/DEMO/PRODUCTION, off for a URL).
    pub fn pacing(mut self, on: bool) -> Self {
        self.transport = self.transport.pacing(on);
        self
    }

    /// Uses your `reqwest::Client` (proxies, roots, …); the SDK still sets its own headers.
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.transport = self.transport.client(client);
        self
    }

    /// Also trusts the certificates of this PEM bundle as TLS roots (beside the system's): a
    /// private CA, or the self-signed certificate `ksef sim serve --tls` writes. Checked by
    /// [`Self::build`]; ignored with [`Self::http_client`].
    pub fn add_root_certificate_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.transport = self.transport.add_root_certificate_pem(pem);
        self
    }

    /// Appended to the `User-Agent` (your product and version).
    pub fn user_agent_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.transport = self.transport.user_agent_suffix(suffix);
        self
    }

    /// Polling of asynchronous operations (authentication, invoice and session status).
    pub fn poll_options(mut self, poll: PollOptions) -> Self {
        self.poll = poll;
        self
    }

    /// How long fetched MF public keys are trusted before they are fetched again (default 24 h).
    pub fn public_key_ttl(mut self, ttl: Duration) -> Self {
        self.key_ttl = ttl;
        self
    }

    /// Builds the client. No network call is made (the app starts while KSeF is down).
    pub fn build(self) -> Result<KsefClient> {
        Ok(KsefClient {
            inner: Arc::new(Inner {
                environment: self.environment,
                transport: self.transport.build()?,
                poll: self.poll,
                key_ttl: self.key_ttl,
                keys: tokio::sync::Mutex::new(None),
            }),
        })
    }
}

/// The entry point: a KSeF environment, its transport and the MF public-key cache.
///
/// Cheap to clone (clones share connections, pacing and the key cache); `Send + Sync`.
#[derive(Clone, Debug)]
pub struct KsefClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    environment: Environment,
    transport: Transport,
    poll: PollOptions,
    key_ttl: Duration,
    keys: tokio::sync::Mutex<Option<(Instant, Arc<Vec<MfPublicKey>>)>>,
}

impl KsefClient {
    /// A client for an environment with default settings.
    pub fn new(environment: Environment) -> Result<Self> {
        Self::builder(environment).build()
    }

    /// A builder for an environment.
    pub fn builder(environment: Environment) -> KsefClientBuilder {
        let transport = Transport::builder(&environment);
        KsefClientBuilder {
            environment,
            transport,
            poll: PollOptions::default(),
            key_ttl: Duration::from_secs(24 * 3600),
        }
    }

    /// A builder for any API base URL (e.g. a local simulator `http://127.0.0.1:PORT/v2`); QR
    /// links use the TEST QR host. The environment counts as a simulator: test data and test
    /// certificates are allowed.
    pub fn builder_for_url(base_url: &str) -> KsefClientBuilder {
        let environment = Environment::custom(base_url, Environment::Test.qr_base_url());
        Self::builder(environment)
    }

    /// The environment.
    pub fn environment(&self) -> &Environment {
        &self.inner.environment
    }

    /// The raw transport: one typed method per KSeF operation (the escape hatch).
    pub fn transport(&self) -> &Transport {
        &self.inner.transport
    }

    /// Polling settings.
    pub fn poll_options(&self) -> &PollOptions {
        &self.inner.poll
    }

    /// Authentication (XAdES, test certificate, KSeF token).
    pub fn auth(&self) -> crate::auth::Auth<'_> {
        crate::auth::Auth::new(self)
    }

    /// Test data (TEST and local simulators only).
    pub fn testdata(&self) -> Result<crate::testdata::TestData<'_>> {
        self.require_test("test data")?;
        Ok(crate::testdata::TestData::new(self))
    }

    /// Fails with [`Error::TestOnly`] unless the client points at TEST or a custom URL.
    pub(crate) fn require_test(&self, operation: &'static str) -> Result<()> {
        match &self.inner.environment {
            Environment::Test | Environment::Custom { .. } => Ok(()),
            other => Err(Error::TestOnly {
                operation,
                environment: other.name(),
            }),
        }
    }

    /// The MF public keys, fetched on first use and again after the TTL (or when `force`).
    async fn keys(&self, force: bool) -> Result<Arc<Vec<MfPublicKey>>> {
        let mut guard = self.inner.keys.lock().await;
        if !force
            && let Some((at, keys)) = guard.as_ref()
            && at.elapsed() < self.inner.key_ttl
        {
            return Ok(keys.clone());
        }
        let list = self
            .inner
            .transport
            .public_key_certificates()
            .await?
            .into_value();
        let entries: Vec<MfPublicKeyEntry> = list
            .iter()
            .map(|c| MfPublicKeyEntry {
                certificate_base64: c.certificate.to_base64(),
                usage: c
                    .usage
                    .iter()
                    .map(|u| KeyUsage::parse(u.as_str()))
                    .collect(),
                valid_from: c.valid_from.as_offset_date_time(),
                valid_to: c.valid_to.as_offset_date_time(),
            })
            .collect();
        let (keys, bad) = ksef_crypto::public_key::parse_all(&entries);
        for e in bad {
            tracing::warn!(error = %e, "skipping an MF public-key certificate that does not parse");
        }
        let keys = Arc::new(keys);
        *guard = Some((Instant::now(), keys.clone()));
        Ok(keys)
    }

    /// The MF public key for `usage` (cached; see [`KsefClientBuilder::public_key_ttl`]).
    pub async fn public_key(&self, usage: &KeyUsage) -> Result<MfPublicKey> {
        let keys = self.keys(false).await?;
        let now = time::OffsetDateTime::now_utc();
        match ksef_crypto::public_key::select(&keys, usage, now) {
            Ok(k) => Ok(k.clone()),
            // No fitting key in the cache: a rotation may have happened; fetch once more.
            Err(_) => {
                let keys = self.keys(true).await?;
                Ok(ksef_crypto::public_key::select(&keys, usage, now)?.clone())
            }
        }
    }

    /// Replaces the cached MF keys (tests of the 21470 path).
    #[doc(hidden)]
    pub async fn replace_public_keys_for_tests(&self, keys: Vec<MfPublicKey>) {
        *self.inner.keys.lock().await = Some((Instant::now(), Arc::new(keys)));
    }

    /// Runs `call` with the MF key for `usage`; on 400 21470 (unknown public key id) refetches
    /// the keys and runs it once more with the new key.
    pub(crate) async fn with_public_key<T, F, Fut>(&self, usage: KeyUsage, mut call: F) -> Result<T>
    where
        F: FnMut(MfPublicKey) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let key = self.public_key(&usage).await?;
        match call(key).await {
            Err(Error::Transport(e)) if e.has_code(ExceptionCode::UnknownPublicKey) => {
                tracing::info!("KSeF rejected the public key id (21470): refetching MF keys");
                let keys = self.keys(true).await?;
                let key = ksef_crypto::public_key::select(
                    &keys,
                    &usage,
                    time::OffsetDateTime::now_utc(),
                )?
                .clone();
                call(key).await
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_sync_clone() {
        fn check<T: Send + Sync + Clone>() {}
        check::<KsefClient>();
    }

    #[test]
    fn builds_without_network_and_guards_test_only() {
        let c = KsefClient::builder(Environment::Production)
            .timeout(Duration::from_secs(5))
            .pacing(false)
            .retry_policy(RetryPolicy::none())
            .build()
            .unwrap();
        assert!(matches!(
            c.testdata().err(),
            Some(Error::TestOnly {
                environment: "prod",
                ..
            })
        ));
        let c = KsefClient::builder_for_url("http://127.0.0.1:9/v2")
            .build()
            .unwrap();
        assert!(c.testdata().is_ok());
        assert_eq!(c.transport().base_url().as_str(), "http://127.0.0.1:9/v2");
    }

    #[tokio::test]
    async fn poll_times_out() {
        let p = PollOptions {
            initial_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
            timeout: Duration::from_millis(20),
        };
        let r: Result<()> = p.poll("nothing", || async { Ok(None) }).await;
        assert!(matches!(
            r,
            Err(Error::PollTimeout {
                what: "nothing",
                ..
            })
        ));
        let mut n = 0;
        let r = p
            .poll("three", || {
                n += 1;
                let v = (n == 3).then_some(n);
                async move { Ok(v) }
            })
            .await
            .unwrap();
        assert_eq!(r, 3);
    }
}
