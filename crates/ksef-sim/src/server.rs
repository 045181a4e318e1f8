//! The HTTP server: builder, handle, and the dispatcher that matches every request against the
//! operation catalogue (`ksef_model::operations`), checks the bearer token and permissions the
//! catalogue prescribes, and calls the operation's handler.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State as AxState};
use axum::http::{HeaderMap, HeaderValue, Method as HttpMethod, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ksef_model::operations::{Bearer, Method, OPERATIONS, Operation, OperationId};
use serde::de::DeserializeOwned;
use serde_json::Value;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::clock::{Clock, SystemClock};
use crate::error::{ApiError, json_response};
use crate::jwt::{self, Claims, TokenError, TokenKind};
use crate::keys::SimKeys;
use crate::state::{Ident, State};

/// The default request body limit (bytes): an invoice is at most 1 MB (3 MB with attachments)
/// before encryption and Base64, so 16 MiB leaves room for every JSON request.
pub const DEFAULT_BODY_LIMIT: usize = 16 * 1024 * 1024;

/// Operations the simulator implements; every other catalogue operation answers 501.
pub const IMPLEMENTED_OPERATIONS: &[OperationId] = &[
    OperationId::AuthChallenge,
    OperationId::AuthXadesSignature,
    OperationId::AuthKsefToken,
    OperationId::AuthStatus,
    OperationId::RedeemTokens,
    OperationId::RefreshAccessToken,
    OperationId::ListAuthSessions,
    OperationId::RevokeCurrentAuthSession,
    OperationId::RevokeAuthSession,
    OperationId::PublicKeyCertificates,
    OperationId::OpenOnlineSession,
    OperationId::SendInvoice,
    OperationId::CloseOnlineSession,
    OperationId::SessionStatus,
    OperationId::ListSessionInvoices,
    OperationId::SessionInvoiceStatus,
    OperationId::ListFailedSessionInvoices,
    OperationId::InvoiceUpoByKsefNumber,
    OperationId::InvoiceUpoByReference,
    OperationId::SessionUpo,
    OperationId::DownloadInvoice,
    OperationId::TestdataCreateSubject,
    OperationId::TestdataRemoveSubject,
    OperationId::TestdataCreatePerson,
    OperationId::TestdataRemovePerson,
    OperationId::TestdataGrantPermissions,
    OperationId::TestdataRevokePermissions,
    OperationId::GenerateToken,
    OperationId::ListTokens,
    OperationId::TokenStatus,
    OperationId::RevokeToken,
    OperationId::ContextLimits,
    OperationId::SubjectLimits,
    OperationId::RateLimits,
    OperationId::AttachmentPermissionStatus,
    OperationId::TestdataEnableAttachments,
    OperationId::TestdataRevokeAttachments,
    OperationId::TestdataBlockContext,
    OperationId::TestdataUnblockContext,
    OperationId::ListSessions,
    // Batch sessions (batch.rs):
    OperationId::OpenBatchSession,
    OperationId::CloseBatchSession,
    // Invoice retrieval: metadata query, exports (invoices.rs):
    OperationId::QueryInvoiceMetadata,
    OperationId::StartInvoiceExport,
    OperationId::InvoiceExportStatus,
    // Permissions (permissions.rs):
    OperationId::GrantPersonPermissions,
    OperationId::GrantEntityPermissions,
    OperationId::GrantAuthorizationPermissions,
    OperationId::GrantIndirectPermissions,
    OperationId::GrantSubunitPermissions,
    OperationId::GrantEuEntityAdministrationPermissions,
    OperationId::GrantEuEntityRepresentativePermissions,
    OperationId::RevokeCommonPermission,
    OperationId::RevokeAuthorizationPermission,
    OperationId::PermissionOperationStatus,
    OperationId::QueryPersonalPermissions,
    OperationId::QueryPersonPermissions,
    OperationId::QuerySubunitPermissions,
    OperationId::QueryEntityPermissions,
    OperationId::QueryEntityRoles,
    OperationId::QuerySubordinateEntityRoles,
    OperationId::QueryAuthorizationPermissions,
    OperationId::QueryEuEntityPermissions,
    // KSeF certificates (certificates.rs):
    OperationId::CertificateLimits,
    OperationId::CertificateEnrollmentData,
    OperationId::EnrollCertificate,
    OperationId::CertificateEnrollmentStatus,
    OperationId::RetrieveCertificates,
    OperationId::RevokeCertificate,
    OperationId::QueryCertificates,
    OperationId::TestdataUpdateCertificate,
    OperationId::TestdataSetCertificateLimits,
    OperationId::TestdataResetCertificateLimits,
    OperationId::TestdataSetSessionLimits,
    OperationId::TestdataResetSessionLimits,
    OperationId::TestdataSetRateLimits,
    OperationId::TestdataResetRateLimits,
    // Collective identifiers (collective.rs):
    OperationId::CreateCollectiveIdentifier,
    OperationId::QueryCollectiveIdentifiers,
    OperationId::CollectiveIdentifierInvoices,
    OperationId::CollectiveIdentifiersByKsefNumber,
    OperationId::TestdataSetProductionRateLimits,
    OperationId::QueryPeppolProviders,
];

/// Failure to start the simulator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SimError {
    /// The listen address could not be bound.
    #[error("cannot bind {addr}: {source}; choose another address or port")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The built-in keys could not be loaded (a corrupted build).
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyLoadError),
    /// The TLS certificate or configuration could not be made (`tls()`).
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The state directory could not be opened or read (`state_dir()`).
    #[error(transparent)]
    StateDir(#[from] crate::persist::StateDirError),
}

/// Timing knobs (all durations are measured on the simulator's [`Clock`]).
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub body_limit: usize,
    /// Scheme and host written into presigned URLs, e.g. `http://127.0.0.1:8787`.
    pub public_origin: String,
    /// The environment name written into UPOs.
    pub receiving_entity: String,
    /// Retrieval limits (rows per metadata filter set, invoices per export package, bytes per
    /// export part); KSeF's values unless a test lowers them.
    pub retrieval: crate::invoices::RetrievalLimits,
    /// How long a closed batch session waits before processing (tests only; zero).
    pub batch_delay: std::time::Duration,
}

/// Shared by every request.
pub(crate) struct Inner {
    pub state: Mutex<State>,
    pub keys: SimKeys,
    pub clock: Arc<dyn Clock>,
    pub config: Config,
    pub jwt_secret: [u8; 32],
    /// `None` when rate limits are switched off.
    pub limiter: Option<Mutex<crate::limits::RateLimiter>>,
    /// Injected faults (faults.rs).
    pub faults: crate::faults::FaultInjector,
    /// The state directory's database (`None`: state in memory only).
    pub persist: Option<crate::persist::Persist>,
    /// Response validation against the spec (`None`: off).
    #[cfg(feature = "validate-responses")]
    pub response_check: Option<crate::respcheck::ResponseCheck>,
    /// Trace ids (`serviceCode`, `traceId`) come from a generator of their own: drawing them
    /// from the state's generator would make every request, polls included, shift the
    /// reference and KSeF numbers that `--seed` promises to reproduce.
    pub trace_ids: Mutex<crate::ids::IdRng>,
}

impl Inner {
    /// Locks the state (a panicked holder cannot leave it half-written in a way we care about:
    /// every mutation is a single insert or field update, so the poison flag is ignored).
    pub fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// The entry point: `Simulator::builder()…start().await`.
#[derive(Debug, Clone, Copy)]
pub struct Simulator;

impl Simulator {
    /// A builder with defaults: `127.0.0.1:0`, system clock, random ids.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            seed: None,
            public_url: None,
            clock: Arc::new(SystemClock),
            body_limit: DEFAULT_BODY_LIMIT,
            rate_limits: true,
            faults: crate::faults::FaultPlan::default(),
            tls: false,
            retrieval: crate::invoices::RetrievalLimits::default(),
            batch_delay: std::time::Duration::ZERO,
            state_dir: None,
            #[cfg(feature = "validate-responses")]
            validate_responses: false,
            prune_every: Some(crate::prune::TICK),
        }
    }
}

/// Configures and starts a simulator.
pub struct SimulatorBuilder {
    bind: SocketAddr,
    seed: Option<u64>,
    public_url: Option<String>,
    clock: Arc<dyn Clock>,
    body_limit: usize,
    rate_limits: bool,
    faults: crate::faults::FaultPlan,
    tls: bool,
    retrieval: crate::invoices::RetrievalLimits,
    batch_delay: std::time::Duration,
    state_dir: Option<std::path::PathBuf>,
    #[cfg(feature = "validate-responses")]
    validate_responses: bool,
    prune_every: Option<std::time::Duration>,
}

impl std::fmt::Debug for SimulatorBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorBuilder")
            .field("bind", &self.bind)
            .field("seed", &self.seed)
            .field("public_url", &self.public_url)
            .field("body_limit", &self.body_limit)
            .field("rate_limits", &self.rate_limits)
            .field("state_dir", &self.state_dir)
            .field("prune_every", &self.prune_every)
            .finish_non_exhaustive()
    }
}

impl SimulatorBuilder {
    /// The address to listen on (default `127.0.0.1:0`, a free port).
    pub fn bind(mut self, addr: SocketAddr) -> Self {
        self.bind = addr;
        self
    }

    /// Seeds the generator of reference numbers and KSeF numbers (reproducible runs).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Scheme and host (`https://ksef.local:8443`) written into presigned URLs and UPO links
    /// instead of the bound address.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into().trim_end_matches('/').to_owned());
        self
    }

    /// The clock (tests pass a [`crate::ManualClock`] to expire things without waiting).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Largest accepted request body in bytes (default [`DEFAULT_BODY_LIMIT`]).
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// Enforces KSeF's API rate limits (default on): per group, context and IP, sliding windows
    /// of 1 s / 1 min / 1 h, 429 with `Retry-After`. Switch off for load tests and for tests
    /// that poll fast.
    pub fn rate_limits(mut self, on: bool) -> Self {
        self.rate_limits = on;
        self
    }

    /// Lowers KSeF's retrieval limits so tests can reach them with few invoices: `rows` per
    /// metadata filter set and invoices per export package (KSeF: 10 000), `part_bytes` per
    /// export part (KSeF: 50 MB).
    #[doc(hidden)]
    pub fn retrieval_limits_for_tests(mut self, rows: usize, part_bytes: usize) -> Self {
        self.retrieval = crate::invoices::RetrievalLimits {
            rows: rows.max(1),
            part_bytes: part_bytes.max(1),
            ..self.retrieval
        };
        self
    }

    /// Keeps every export in progress (status 100) for `delay` of real time before its
    /// package is built, so tests can reach the limit of running exports (21182).
    #[doc(hidden)]
    pub fn export_delay_for_tests(mut self, delay: std::time::Duration) -> Self {
        self.retrieval.export_delay = delay;
        self
    }

    /// Keeps every closed batch session in processing (status 150) for `delay` of real time
    /// before its archive is verified, so tests can stop the simulator in between.
    #[doc(hidden)]
    pub fn batch_delay_for_tests(mut self, delay: std::time::Duration) -> Self {
        self.batch_delay = delay;
        self
    }

    /// Injects faults (latency, 5xx, 429, dropped connections) as `plan` says; see
    /// [`crate::faults`]. Replaceable at run time with [`SimulatorHandle::set_faults`] or `PUT
    /// /__sim/faults`.
    pub fn faults(mut self, plan: crate::faults::FaultPlan) -> Self {
        self.faults = plan;
        self
    }

    /// Serves HTTPS with a self-signed certificate generated at start for `localhost`,
    /// `127.0.0.1`, `::1`, the bound address and the `public_url` host; clients trust
    /// [`SimulatorHandle::tls_certificate_pem`]. Base URL and presigned links use `https://`.
    pub fn tls(mut self) -> Self {
        self.tls = true;
        self
    }

    /// Keeps the state in an SQLite database in `dir` (created if missing) instead of memory
    /// only: keys, subjects, permissions, tokens, sessions, invoices with their UPOs, exports and
    /// certificates survive a restart, and every change a response acknowledges is committed
    /// before the response is sent. See the crate README, "Persistence".
    pub fn state_dir(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.state_dir = Some(dir.into());
        self
    }

    /// Checks every response to a catalogue operation against `spec/open-api.json` (the schema
    /// for that operation, status and media type) and records what does not match; read them
    /// with [`SimulatorHandle::response_violations`]. For test suites: each response is
    /// buffered and validated before it is sent. Feature `validate-responses`.
    #[cfg(feature = "validate-responses")]
    pub fn validate_responses(mut self, on: bool) -> Self {
        self.validate_responses = on;
        self
    }

    /// How often (real time) expired challenges, authentication operations and idle
    /// rate-limit counters are dropped from memory (default every second; see
    /// [`crate::Purged`]). `None`: only when [`SimulatorHandle::purge_expired`] is called, for
    /// tests that assert on what a purge on a [`crate::ManualClock`] removes.
    pub fn prune_every(mut self, every: Option<std::time::Duration>) -> Self {
        self.prune_every = every.filter(|d| !d.is_zero());
        self
    }

    /// Binds and starts serving in the background on the current Tokio runtime.
    pub async fn start(self) -> Result<SimulatorHandle, SimError> {
        let listener = tokio::net::TcpListener::bind(self.bind)
            .await
            .map_err(|source| SimError::Bind {
                addr: self.bind,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| SimError::Bind {
            addr: self.bind,
            source,
        })?;
        let scheme = if self.tls { "https" } else { "http" };
        let tls = if self.tls {
            let mut hosts = vec!["localhost".to_owned(), "127.0.0.1".into(), "::1".into()];
            if !addr.ip().is_unspecified() {
                hosts.push(addr.ip().to_string());
            }
            if let Some(host) = self.public_url.as_deref().and_then(url_host) {
                hosts.push(host);
            }
            hosts.sort();
            hosts.dedup();
            Some(crate::tls::TlsMaterial::generate(hosts)?)
        } else {
            None
        };
        let origin = self
            .public_url
            .clone()
            .unwrap_or_else(|| format!("{scheme}://{addr}"));
        let mut secret = [0u8; 32];
        // The secret only guards the simulator's own tokens; an OS RNG failure leaves it
        // seeded from the id generator rather than aborting.
        if getrandom::fill(&mut secret).is_err() {
            crate::ids::IdRng::new(self.seed).fill(&mut secret);
        }
        let keys = SimKeys::builtin()?;
        let (state, persist, new_secret) = match &self.state_dir {
            None => (State::new(self.seed), None, false),
            Some(dir) => {
                let (persist, loaded) = crate::persist::open(dir, self.seed, self.clock.now())?;
                for (usage, cert, key) in &loaded.keys {
                    keys.restore(usage, cert, key).map_err(|message| {
                        crate::persist::StateDirError::Corrupt {
                            path: dir.join(crate::persist::DB_FILE),
                            what: format!("key {usage}"),
                            message,
                        }
                    })?;
                }
                let new_secret = match loaded.jwt_secret {
                    Some(s) => {
                        secret = s;
                        false
                    }
                    None => true,
                };
                (loaded.state, Some(persist), new_secret)
            }
        };
        let inner = Arc::new(Inner {
            state: Mutex::new(state),
            keys,
            clock: self.clock,
            config: Config {
                body_limit: self.body_limit,
                public_origin: origin,
                // The v4-3 XSD fixes this value (TEST's examples add " - środowisko testowe
                // (TE)", which the schema rejects); the schema is our oracle.
                receiving_entity: "Ministerstwo Finansów".into(),
                retrieval: self.retrieval,
                batch_delay: self.batch_delay,
            },
            jwt_secret: secret,
            limiter: self
                .rate_limits
                .then(|| Mutex::new(crate::limits::RateLimiter::default())),
            faults: crate::faults::FaultInjector::new(self.faults),
            persist,
            #[cfg(feature = "validate-responses")]
            response_check: self
                .validate_responses
                .then(crate::respcheck::ResponseCheck::default),
            trace_ids: Mutex::new(crate::ids::IdRng::new(self.seed.map(|s| !s))),
        });
        if let Some(p) = &inner.persist {
            let store = |message: String| crate::persist::StateDirError::Database {
                path: self
                    .state_dir
                    .clone()
                    .unwrap_or_default()
                    .join(crate::persist::DB_FILE),
                message,
            };
            if new_secret {
                p.store_secret(&inner.jwt_secret).await.map_err(store)?;
            }
            p.prime(&mut inner.state(), &inner.keys);
            crate::persist::resume(&inner);
            p.flush(&inner).await.map_err(store)?;
        }
        // The periodic tick. Asynchronous processing (invoice verification, session UPOs,
        // exports) changes the state between requests: under a state directory it is persisted
        // on a short tick. Every `prune_every` what expired is dropped (prune.rs).
        let weak = Arc::downgrade(&inner);
        let prune_every = self.prune_every;
        let period = match (&inner.persist, prune_every) {
            (Some(_), _) => Some(std::time::Duration::from_millis(100)),
            (None, every) => every,
        };
        if let Some(period) = period {
            tokio::spawn(async move {
                let mut last_purge = tokio::time::Instant::now();
                loop {
                    tokio::time::sleep(period).await;
                    let Some(inner) = weak.upgrade() else { break };
                    if let Some(every) = prune_every
                        && last_purge.elapsed() >= every
                    {
                        crate::prune::purge(&inner, inner.now());
                        last_purge = tokio::time::Instant::now();
                    }
                    if let Some(p) = &inner.persist
                        && (p.is_closed() || p.flush(&inner).await.is_err())
                    {
                        break;
                    }
                }
            });
        }
        let app = axum::Router::new()
            .fallback(dispatch)
            .with_state(inner.clone());
        let listener = crate::tls::SimListener::new(listener, tls.as_ref()).map_err(|source| {
            SimError::Bind {
                addr: self.bind,
                source,
            }
        })?;
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(
                listener,
                app.into_make_service_with_connect_info::<crate::tls::Conn>(),
            )
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
        });
        Ok(SimulatorHandle {
            addr,
            scheme,
            tls_cert_pem: tls.map(|t| t.cert_pem),
            shutdown: Some(tx),
            task: Some(task),
            inner,
        })
    }
}

/// A running simulator. Dropping it stops the server too (without waiting).
#[derive(Debug)]
pub struct SimulatorHandle {
    addr: SocketAddr,
    scheme: &'static str,
    tls_cert_pem: Option<String>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inner(<simulator state>)")
    }
}

impl SimulatorHandle {
    /// The API base URL, `http://127.0.0.1:PORT/v2` (`https://…` with [`SimulatorBuilder::tls`]).
    pub fn base_url(&self) -> String {
        format!("{}://{}/v2", self.scheme, self.addr)
    }

    /// The PEM of the generated server certificate when serving HTTPS, for clients to trust.
    pub fn tls_certificate_pem(&self) -> Option<&str> {
        self.tls_cert_pem.as_deref()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Replaces the fault plan (counters start again from zero).
    pub fn set_faults(&self, plan: crate::faults::FaultPlan) {
        self.inner.faults.set(plan);
    }

    /// Stops injecting faults.
    pub fn clear_faults(&self) {
        self.inner.faults.set(crate::faults::FaultPlan::default());
    }

    /// What was injected since the plan was set.
    pub fn fault_counters(&self) -> crate::faults::FaultCounters {
        self.inner.faults.counters()
    }

    /// Rotates the simulator's published key for `usage` (as `POST /__sim/keys/rotate` does):
    /// a new RSA key pair and certificate are listed by `/security/public-key-certificates`, and
    /// the old `publicKeyId` is answered with 21470. Returns the new `publicKeyId`.
    pub async fn rotate_key(
        &self,
        usage: crate::keys::KeyUsage,
    ) -> Result<String, crate::keys::KeyRotationError> {
        crate::keys::rotate_async(self.inner.clone(), usage).await
    }

    /// The responses that did not match the spec so far (empty when validation is off).
    #[cfg(feature = "validate-responses")]
    pub fn response_violations(&self) -> Vec<crate::respcheck::ResponseViolation> {
        self.inner
            .response_check
            .as_ref()
            .map(|c| c.violations())
            .unwrap_or_default()
    }

    /// The (operation, status) pairs answered so far with their counts (empty when validation
    /// is off).
    #[cfg(feature = "validate-responses")]
    pub fn covered_responses(&self) -> std::collections::BTreeMap<(OperationId, u16), u64> {
        self.inner
            .response_check
            .as_ref()
            .map(|c| c.covered())
            .unwrap_or_default()
    }

    /// Tests only: records `challenge` (a `CR` reference number) as issued now and unused, as
    /// if `POST /auth/challenge` had just returned it, so that an `AuthTokenRequest` signed in
    /// advance for that fixed challenge (e.g. by an independent XAdES signer) can be submitted.
    /// Each submission uses it up; plant it again for the next. Combine with a
    /// [`crate::ManualClock`] set to when the signing certificate is valid. Also `POST
    /// /__sim/challenges` with `{"challenge": "…"}`. Returns the challenge's `timestampMs`.
    #[doc(hidden)]
    pub fn plant_challenge_for_tests(&self, challenge: &str) -> Result<i64, String> {
        crate::auth::plant_challenge(&self.inner, challenge)
    }

    /// Runs the housekeeping of the periodic tick now (see [`SimulatorBuilder::prune_every`]): drops
    /// challenges, authentication operations and rate-limit counters that expired on the
    /// simulator's clock (see [`crate::Purged`]). For tests on a [`crate::ManualClock`].
    pub fn purge_expired(&self) -> crate::Purged {
        crate::prune::purge(&self.inner, self.inner.now())
    }

    /// Stops accepting connections, lets in-flight requests finish, and waits for the server.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        if let Some(p) = &self.inner.persist {
            // What background work changed since the last request; then this handle's
            // database is closed to writes (a new simulator may open the same directory).
            let _ = p.flush(&self.inner).await;
            p.close();
        }
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Dispatch

/// One API request, matched to its catalogue operation.
pub(crate) struct Req {
    pub op: &'static Operation,
    /// Path parameters in template order.
    pub params: Vec<String>,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub client_ip: IpAddr,
    pub now: OffsetDateTime,
    /// The verified bearer token, if the operation takes one.
    pub claims: Option<Claims>,
    /// The authenticated context/subject and their permissions (access/refresh tokens).
    pub caller: Option<Caller>,
}

/// Who is calling (from an access or refresh token).
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub auth_ref: String,
    pub context: Ident,
    pub subject: Ident,
    pub permissions: Vec<String>,
}

impl Req {
    pub fn param(&self, i: usize) -> &str {
        self.params.get(i).map(String::as_str).unwrap_or("")
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Parses the JSON body into `T`; malformed JSON or a schema mismatch is 400 21405 with the
    /// parser's message.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if let Some(ct) = self.headers.get(header::CONTENT_TYPE) {
            let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
            if !ct.starts_with("application/json") && !ct.contains("+json") {
                return Err(ApiError::UnsupportedMediaType(format!(
                    "Nieobsługiwany typ treści '{ct}'; oczekiwano application/json."
                )));
            }
        }
        serde_json::from_slice(&self.body)
            .map_err(|e| ApiError::validation(format!("Nieprawidłowe dane JSON: {e}")))
    }

    pub fn caller(&self) -> Result<&Caller, ApiError> {
        self.caller
            .as_ref()
            .ok_or_else(|| ApiError::Unauthorized("Wymagane jest uwierzytelnienie.".into()))
    }
}

fn match_template(template: &str, path: &str) -> Option<(usize, Vec<String>)> {
    let t: Vec<&str> = template.trim_matches('/').split('/').collect();
    let p: Vec<&str> = path.trim_matches('/').split('/').collect();
    if t.len() != p.len() {
        return None;
    }
    let mut literal = 0;
    let mut params = Vec::new();
    for (ts, ps) in t.iter().zip(&p) {
        if ts.starts_with('{') {
            if ps.is_empty() {
                return None;
            }
            params.push(percent_decode(ps));
        } else if ts == ps {
            literal += 1;
        } else {
            return None;
        }
    }
    Some((literal, params))
}

/// Finds the operation for a method and a path relative to `/v2`; the template with the most
/// literal segments wins (`/auth/sessions` over `/auth/{referenceNumber}`).
pub(crate) fn route(method: Method, path: &str) -> Option<(&'static Operation, Vec<String>)> {
    OPERATIONS
        .iter()
        .filter(|op| op.method == method)
        .filter_map(|op| match_template(op.path, path).map(|(score, p)| (score, op, p)))
        .max_by_key(|(score, _, _)| *score)
        .map(|(_, op, p)| (op, p))
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) =
                u8::from_str_radix(std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("zz"), 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(if b[i] == b'+' { b' ' } else { b[i] });
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn parse_query(q: Option<&str>) -> Vec<(String, String)> {
    q.unwrap_or("")
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

async fn dispatch(
    AxState(inner): AxState<Arc<Inner>>,
    ConnectInfo(conn): ConnectInfo<crate::tls::Conn>,
    request: Request,
) -> Response {
    let response = dispatch_request(&inner, conn, request).await;
    // Under --state-dir nothing is answered before what it changed is committed.
    if let Some(p) = &inner.persist
        && let Err(e) = p.flush(&inner).await
    {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "application/json",
            &serde_json::json!({"exception": {"exceptionDetailList": [{
                "exceptionCode": 0,
                "exceptionDescription": format!("The simulator could not store its state: {e}"),
            }]}}),
        );
    }
    response
}

async fn dispatch_request(
    inner: &Arc<Inner>,
    conn: crate::tls::Conn,
    request: Request,
) -> Response {
    if request.uri().path().starts_with("/__sim/") {
        return crate::faults::admin(inner, request).await;
    }
    let peer = conn.peer;
    let injection = inner.faults.decide(
        operation_name(request.method(), request.uri().path()),
        request.uri().path(),
    );
    if !injection.latency.is_zero() {
        tokio::time::sleep(injection.latency).await;
    }
    let now = inner.now();
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let problem = parts
        .headers
        .get("x-error-format")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("problem-details"));
    let warning = parts.headers.get("x-test-system-warning").cloned();
    let trace = inner
        .trace_ids
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .hex32();
    if let Some(r) = crate::faults::inject(injection, crate::faults::Phase::Before, &conn, problem)
    {
        return r;
    }
    #[cfg(feature = "validate-responses")]
    let checked =
        (inner.response_check.as_ref()).and_then(|c| Some((c, c.operation(&parts.method, &path)?)));
    let result = handle(inner, parts, body, peer.ip(), now, &path).await;
    let mut response = match result {
        Ok(r) => r,
        Err(e) => e.render(problem, &path, now, &trace),
    };
    #[cfg(feature = "validate-responses")]
    if let Some((check, op)) = checked {
        response = check.inspect(op, response).await;
    }
    if let Some(r) = crate::faults::inject(injection, crate::faults::Phase::After, &conn, problem) {
        return r;
    }
    if let Some(w) = warning {
        response.headers_mut().insert("x-system-warning", w);
    }
    response
}

async fn handle(
    inner: &Arc<Inner>,
    parts: axum::http::request::Parts,
    body: Body,
    client_ip: IpAddr,
    now: OffsetDateTime,
    path: &str,
) -> Result<Response, ApiError> {
    if let Some(rest) = path.strip_prefix("/storage/") {
        if parts.method == HttpMethod::PUT
            && let Some(part) = rest.strip_prefix("batch/")
        {
            return crate::batch::upload_part(inner, part, &parts.headers, body, now).await;
        }
        if parts.method != HttpMethod::GET {
            return Err(ApiError::NotFound);
        }
        if let Some(token) = rest.strip_prefix("export/") {
            return crate::invoices::export_part_download(inner, token, now);
        }
        return crate::sessions::presigned_download(inner, rest, now);
    }
    let Some(api_path) = path.strip_prefix("/v2") else {
        return Err(ApiError::NotFound);
    };
    let method = match parts.method {
        HttpMethod::GET => Method::Get,
        HttpMethod::POST => Method::Post,
        HttpMethod::PUT => Method::Put,
        HttpMethod::DELETE => Method::Delete,
        _ => return Err(ApiError::NotFound),
    };
    let (op, params) = route(method, api_path).ok_or(ApiError::NotFound)?;
    let body = axum::body::to_bytes(body, inner.config.body_limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(inner.config.body_limit))?;
    let mut req = Req {
        op,
        params,
        query: parse_query(parts.uri.query()),
        headers: parts.headers,
        body,
        client_ip,
        now,
        claims: None,
        caller: None,
    };
    if !IMPLEMENTED_OPERATIONS.contains(&op.id) {
        return Err(ApiError::NotImplemented(op.name));
    }
    authenticate(inner, &mut req)?;
    if !op.required_permissions.is_empty()
        && let Some(caller) = &req.caller
        && !op
            .required_permissions
            .iter()
            .any(|p| caller.permissions.iter().any(|h| h == p))
    {
        return Err(ApiError::missing_permissions(
            op.required_permissions,
            &caller.permissions,
        ));
    }
    if let Some(limiter) = &inner.limiter {
        let context = req.caller.as_ref().map(|c| c.context.1.as_str());
        limiter
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .check(op, context, req.client_ip, now)
            .map_err(ApiError::TooManyRequests)?;
    }
    match op.id {
        OperationId::AuthChallenge => crate::auth::challenge(inner, &req),
        OperationId::AuthXadesSignature => crate::auth::xades_signature(inner, &req),
        OperationId::AuthKsefToken => crate::auth::ksef_token(inner, &req),
        OperationId::AuthStatus => crate::auth::status(inner, &req),
        OperationId::RedeemTokens => crate::auth::redeem(inner, &req),
        OperationId::RefreshAccessToken => crate::auth::refresh(inner, &req),
        OperationId::ListAuthSessions => crate::auth::list_sessions(inner, &req),
        OperationId::RevokeCurrentAuthSession => crate::auth::revoke_current(inner, &req),
        OperationId::RevokeAuthSession => crate::auth::revoke(inner, &req),
        OperationId::PublicKeyCertificates => Ok(json_ok(
            StatusCode::OK,
            &inner.keys.public_key_certificates(),
        )),
        OperationId::OpenOnlineSession => crate::sessions::open_online(inner, &req),
        OperationId::SendInvoice => crate::sessions::send_invoice(inner, &req),
        OperationId::CloseOnlineSession => crate::sessions::close_online(inner, &req),
        OperationId::SessionStatus => crate::sessions::session_status(inner, &req),
        OperationId::ListSessionInvoices => crate::sessions::list_invoices(inner, &req, false),
        OperationId::ListFailedSessionInvoices => crate::sessions::list_invoices(inner, &req, true),
        OperationId::SessionInvoiceStatus => crate::sessions::invoice_status(inner, &req),
        OperationId::InvoiceUpoByKsefNumber => crate::sessions::invoice_upo_by_ksef(inner, &req),
        OperationId::InvoiceUpoByReference => crate::sessions::invoice_upo_by_ref(inner, &req),
        OperationId::SessionUpo => crate::sessions::session_upo(inner, &req),
        OperationId::DownloadInvoice => crate::invoices::download_invoice(inner, &req),
        OperationId::TestdataCreateSubject => crate::testdata::create_subject(inner, &req),
        OperationId::TestdataRemoveSubject => crate::testdata::remove_subject(inner, &req),
        OperationId::TestdataCreatePerson => crate::testdata::create_person(inner, &req),
        OperationId::TestdataRemovePerson => crate::testdata::remove_person(inner, &req),
        OperationId::TestdataGrantPermissions => crate::testdata::grant(inner, &req),
        OperationId::TestdataRevokePermissions => crate::testdata::revoke(inner, &req),
        OperationId::GenerateToken => crate::tokens::generate(inner, &req),
        OperationId::ListTokens => crate::tokens::list(inner, &req),
        OperationId::TokenStatus => crate::tokens::status(inner, &req),
        OperationId::RevokeToken => crate::tokens::revoke(inner, &req),
        OperationId::ContextLimits => crate::misc::context_limits(inner, &req),
        OperationId::SubjectLimits => crate::misc::subject_limits(inner, &req),
        OperationId::RateLimits => crate::misc::rate_limits(inner, &req),
        OperationId::AttachmentPermissionStatus => crate::misc::attachment_status(inner, &req),
        OperationId::TestdataEnableAttachments => crate::misc::enable_attachments(inner, &req),
        OperationId::TestdataRevokeAttachments => crate::misc::revoke_attachments(inner, &req),
        OperationId::TestdataBlockContext => crate::misc::block(inner, &req),
        OperationId::TestdataUnblockContext => crate::misc::unblock(inner, &req),
        OperationId::ListSessions => crate::misc::list_sessions(inner, &req),
        // Each area module answers its own operations and `None` for the rest.
        _ => crate::batch::handle(inner, &req)
            .or_else(|| crate::invoices::handle(inner, &req))
            .or_else(|| crate::permissions::handle(inner, &req))
            .or_else(|| crate::certificates::handle(inner, &req))
            .or_else(|| crate::collective::handle(inner, &req))
            .unwrap_or(Err(ApiError::NotImplemented(op.name))),
    }
}

/// The host of `scheme://host[:port][/…]` (IPv6 brackets removed).
fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    (!host.is_empty()).then(|| host.to_owned())
}

/// The catalogue name of the operation a request is for (for fault rules).
fn operation_name(method: &HttpMethod, path: &str) -> Option<&'static str> {
    let method = match *method {
        HttpMethod::GET => Method::Get,
        HttpMethod::POST => Method::Post,
        HttpMethod::PUT => Method::Put,
        HttpMethod::DELETE => Method::Delete,
        _ => return None,
    };
    route(method, path.strip_prefix("/v2")?).map(|(op, _)| op.name)
}

/// Checks the bearer token the operation requires and fills `claims` / `caller`.
fn authenticate(inner: &Inner, req: &mut Req) -> Result<(), ApiError> {
    let allowed: &[TokenKind] = match req.op.bearer {
        Bearer::None => return Ok(()),
        Bearer::AuthenticationToken => &[TokenKind::Operation],
        Bearer::RefreshToken => &[TokenKind::Refresh],
        Bearer::AccessToken => &[TokenKind::Access],
        Bearer::AccessOrRefreshToken => &[TokenKind::Access, TokenKind::Refresh],
    };
    let unauthorized = |m: &str| ApiError::Unauthorized(m.to_owned());
    let token = req
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| unauthorized("Wymagane jest uwierzytelnienie."))?;
    let claims = jwt::verify(&inner.jwt_secret, token, req.now.unix_timestamp()).map_err(|e| {
        unauthorized(match e {
            TokenError::Expired => "Token wygasł.",
            TokenError::Malformed | TokenError::BadSignature => "Nieprawidłowy token.",
        })
    })?;
    if !allowed.contains(&claims.kind) {
        return Err(unauthorized("Nieprawidłowy typ tokenu dla tej operacji."));
    }
    if claims.kind != TokenKind::Operation {
        let st = inner.state();
        let auth = st
            .auths
            .get(&claims.auth_ref)
            .ok_or_else(|| unauthorized("Nieprawidłowy token."))?;
        if claims.kind == TokenKind::Refresh {
            // KSeF answers 21304 to a refresh after the auth session was revoked.
            if auth.revoked {
                return Err(ApiError::bad(
                    21304,
                    [format!(
                        "Uwierzytelnienie {} zostało unieważnione.",
                        auth.reference
                    )],
                ));
            }
            if auth.refresh_jti.as_deref() != Some(claims.jti.as_str()) {
                return Err(unauthorized("Token odświeżający został unieważniony."));
            }
        }
        // The authorization policy given at authentication binds its access and refresh
        // tokens to the allowed addresses (ksef-api.md §20 item 29; `security.clientIp` per the
        // spec's ForbiddenProblemDetails).
        if let Some(ranges) = &auth.allowed_ips
            && !crate::auth::ip_allowed(ranges, req.client_ip)
        {
            return Err(ApiError::Forbidden {
                reason_code: "ip-not-allowed",
                detail:
                    "Żądanie pochodzi z adresu IP innego niż wskazany podczas uwierzytelnienia."
                        .into(),
                security: serde_json::json!({"clientIp": req.client_ip.to_string()}),
            });
        }
        let permissions = match &auth.token_permissions {
            // A KSeF token carries a fixed set, still bounded by what its author holds now.
            Some(set) => {
                let held = st.permissions(&auth.context, &auth.subject);
                set.iter().filter(|p| held.contains(p)).cloned().collect()
            }
            None => st.permissions(&auth.context, &auth.subject),
        };
        req.caller = Some(Caller {
            auth_ref: auth.reference.clone(),
            context: auth.context.clone(),
            subject: auth.subject.clone(),
            permissions,
        });
    }
    req.claims = Some(claims);
    Ok(())
}

/// A JSON success response.
pub(crate) fn json_ok(status: StatusCode, body: &Value) -> Response {
    json_response(status, "application/json", body)
}

/// An empty success response (204, or the empty 200 of `/testdata`).
pub(crate) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// An XML success response with `x-ms-meta-hash`.
pub(crate) fn xml_ok(bytes: Vec<u8>) -> Response {
    let hash = ksef_crypto::hash::sha256_base64(&bytes);
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    if let Ok(v) = HeaderValue::from_str(&hash) {
        h.insert("x-ms-meta-hash", v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_public_urls() {
        assert_eq!(
            url_host("https://ksef.local:8443").as_deref(),
            Some("ksef.local")
        );
        assert_eq!(url_host("http://10.0.0.5/x").as_deref(), Some("10.0.0.5"));
        assert_eq!(url_host("https://[::1]:8443").as_deref(), Some("::1"));
        assert_eq!(url_host("nonsense"), None);
    }

    #[test]
    fn routing_prefers_literals() {
        let (op, p) = route(Method::Get, "/auth/sessions").unwrap();
        assert_eq!(op.id, OperationId::ListAuthSessions);
        assert!(p.is_empty());
        let (op, p) = route(Method::Get, "/auth/20250101-AU-0000000000-0000000000-00").unwrap();
        assert_eq!(op.id, OperationId::AuthStatus);
        assert_eq!(p, ["20250101-AU-0000000000-0000000000-00"]);
        assert!(route(Method::Get, "/nope").is_none());
        assert!(route(Method::Get, "/auth/").is_none());
        let (op, _) = route(Method::Post, "/sessions/online").unwrap();
        assert_eq!(op.id, OperationId::OpenOnlineSession);
    }

    #[test]
    fn every_operation_routes_to_itself() {
        for op in OPERATIONS {
            let path = op
                .path
                .split('/')
                .map(|s| if s.starts_with('{') { "X1" } else { s })
                .collect::<Vec<_>>()
                .join("/");
            let (found, _) = route(op.method, &path).unwrap();
            assert_eq!(found.id, op.id, "{}", op.path);
        }
    }
}
