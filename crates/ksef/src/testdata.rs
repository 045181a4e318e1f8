//! Test data (TEST environment and local simulators only): `client.testdata()?`.
//!
//! Every `/testdata` endpoint of KSeF ("dane testowe"), plus [`TestData::temporal`]: a scope that
//! records what it created or changed and undoes it again, in reverse order, when the scope ends —
//! also when the body fails, panics or is cancelled. The authenticated overrides (session,
//! certificate and API limits; a KSeF certificate's validity) hang off
//! [`AuthenticatedClient::test_overrides`]; [`TemporalTestData`] records the limit overrides
//! too (a certificate's validity cannot be restored, see there).

use std::sync::Mutex;

use ksef_model::api;
use ksef_model::auth_request::ContextIdentifier;
use ksef_model::ids::{Nip, Pesel};

use crate::auth::AuthenticatedClient;
use crate::client::KsefClient;
use crate::error::{Error, Result};

/// Who receives test permissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TestSubject {
    /// A NIP (a company, or a seal certificate with `VATPL-<nip>`).
    Nip(Nip),
    /// A PESEL (a person).
    Pesel(Pesel),
    /// A certificate fingerprint (SHA-256, hex).
    Fingerprint(String),
}

impl TestSubject {
    fn to_api(&self) -> api::TestDataAuthorizedIdentifier {
        let (kind, value) = match self {
            TestSubject::Nip(n) => (api::TestDataAuthorizedIdentifierType::Nip, n.to_string()),
            TestSubject::Pesel(p) => (api::TestDataAuthorizedIdentifierType::Pesel, p.to_string()),
            TestSubject::Fingerprint(f) => (
                api::TestDataAuthorizedIdentifierType::Fingerprint,
                f.clone(),
            ),
        };
        api::TestDataAuthorizedIdentifier {
            r#type: kind,
            value,
        }
    }
}

/// A test subject to create with [`TestData::create_subject`] (`POST /testdata/subject`).
#[derive(Clone, Debug)]
pub struct NewTestSubject {
    /// The subject's NIP.
    pub nip: Nip,
    /// What kind of subject: a VAT group, a local government unit (JST) or an enforcement
    /// authority ("organ egzekucyjny").
    pub subject_type: api::SubjectType,
    /// A description (5–256 characters).
    pub description: String,
    /// Subunits (members of a VAT group, JST units): NIP and description.
    pub subunits: Vec<(Nip, String)>,
}

/// A test person to create with [`TestData::create_person_with`] (`POST /testdata/person`).
#[derive(Clone, Debug)]
pub struct NewTestPerson {
    /// The person's NIP.
    pub nip: Nip,
    /// The person's PESEL (linked to the NIP).
    pub pesel: Pesel,
    /// A description (5–256 characters).
    pub description: String,
    /// A court bailiff ("komornik sądowy").
    pub is_bailiff: bool,
    /// A deceased person (for inheritance scenarios).
    pub is_deceased: bool,
}

/// Test-data endpoints. Obtained from [`KsefClient::testdata`], which refuses DEMO and
/// PRODUCTION before any network call.
#[derive(Debug, Clone, Copy)]
pub struct TestData<'a> {
    client: &'a KsefClient,
}

fn context_api(context: &ContextIdentifier) -> api::TestDataAuthenticationContextIdentifier {
    use api::TestDataAuthenticationContextIdentifierType as T;
    let (kind, value) = match context {
        ContextIdentifier::Nip(n) => (T::Nip, n.to_string()),
        ContextIdentifier::InternalId(i) => (T::InternalId, i.to_string()),
        ContextIdentifier::NipVatUe(v) => (T::NipVatUe, v.to_string()),
        ContextIdentifier::PeppolId(p) => (T::PeppolId, p.to_string()),
    };
    api::TestDataAuthenticationContextIdentifier {
        r#type: kind,
        value,
    }
}

impl<'a> TestData<'a> {
    pub(crate) fn new(client: &'a KsefClient) -> Self {
        Self { client }
    }

    /// Creates a test subject (`POST /testdata/subject`): a VAT group, JST or enforcement
    /// authority with its subunits.
    pub async fn create_subject(&self, subject: &NewTestSubject) -> Result<()> {
        let body = api::SubjectCreateRequest {
            created_date: None,
            description: subject.description.clone(),
            subject_nip: subject.nip.clone(),
            subject_type: subject.subject_type.clone(),
            subunits: (!subject.subunits.is_empty()).then(|| {
                subject
                    .subunits
                    .iter()
                    .map(|(nip, description)| api::Subunit {
                        description: description.clone(),
                        subject_nip: nip.clone(),
                    })
                    .collect()
            }),
        };
        self.client
            .transport()
            .testdata_create_subject(&body)
            .await?;
        Ok(())
    }

    /// Removes a test subject (`POST /testdata/subject/remove`).
    pub async fn remove_subject(&self, nip: &Nip) -> Result<()> {
        let body = api::SubjectRemoveRequest {
            subject_nip: nip.clone(),
        };
        self.client
            .transport()
            .testdata_remove_subject(&body)
            .await?;
        Ok(())
    }

    /// Creates a test person (`POST /testdata/person`) linked to `nip`.
    pub async fn create_person(&self, nip: &Nip, pesel: &Pesel, description: &str) -> Result<()> {
        self.create_person_with(&NewTestPerson {
            nip: nip.clone(),
            pesel: pesel.clone(),
            description: description.to_owned(),
            is_bailiff: false,
            is_deceased: false,
        })
        .await
    }

    /// Creates a test person with every option (bailiff, deceased).
    pub async fn create_person_with(&self, person: &NewTestPerson) -> Result<()> {
        let body = api::PersonCreateRequest {
            created_date: None,
            description: person.description.clone(),
            is_bailiff: person.is_bailiff,
            is_deceased: person.is_deceased.then_some(true),
            nip: person.nip.clone(),
            pesel: person.pesel.clone(),
        };
        self.client
            .transport()
            .testdata_create_person(&body)
            .await?;
        Ok(())
    }

    /// Removes a test person (`POST /testdata/person/remove`) by NIP.
    pub async fn remove_person(&self, nip: &Nip) -> Result<()> {
        let body = api::PersonRemoveRequest { nip: nip.clone() };
        self.client
            .transport()
            .testdata_remove_person(&body)
            .await?;
        Ok(())
    }

    /// Grants `permissions` in the context of `context` to `subject`
    /// (`POST /testdata/permissions`).
    pub async fn grant_permissions(
        &self,
        context: &Nip,
        subject: &TestSubject,
        permissions: &[api::TestDataPermissionType],
    ) -> Result<()> {
        let body = api::TestDataPermissionsGrantRequest {
            authorized_identifier: subject.to_api(),
            context_identifier: api::TestDataContextIdentifier {
                r#type: api::TestDataContextIdentifierType::Nip,
                value: context.to_string(),
            },
            permissions: permissions
                .iter()
                .map(|p| api::TestDataPermission {
                    description: format!("ksef-rs test permission {}", p.as_str()),
                    permission_type: p.clone(),
                })
                .collect(),
        };
        self.client
            .transport()
            .testdata_grant_permissions(&body)
            .await?;
        Ok(())
    }

    /// Revokes every test permission `subject` holds in `context`
    /// (`POST /testdata/permissions/revoke`).
    pub async fn revoke_permissions(&self, context: &Nip, subject: &TestSubject) -> Result<()> {
        let body = api::TestDataPermissionsRevokeRequest {
            authorized_identifier: subject.to_api(),
            context_identifier: api::TestDataContextIdentifier {
                r#type: api::TestDataContextIdentifierType::Nip,
                value: context.to_string(),
            },
        };
        self.client
            .transport()
            .testdata_revoke_permissions(&body)
            .await?;
        Ok(())
    }

    /// Lets `nip` send invoices with attachments ("faktura z załącznikiem",
    /// `POST /testdata/attachment`).
    pub async fn enable_attachments(&self, nip: &Nip) -> Result<()> {
        let body = api::AttachmentPermissionGrantRequest { nip: nip.clone() };
        self.client
            .transport()
            .testdata_enable_attachments(&body)
            .await?;
        Ok(())
    }

    /// Withdraws the attachment consent of `nip`, effective `end_date` (today when `None`)
    /// (`POST /testdata/attachment/revoke`).
    pub async fn revoke_attachments(&self, nip: &Nip, end_date: Option<time::Date>) -> Result<()> {
        let body = api::AttachmentPermissionRevokeRequest {
            expected_end_date: end_date,
            nip: nip.clone(),
        };
        self.client
            .transport()
            .testdata_revoke_attachments(&body)
            .await?;
        Ok(())
    }

    /// Blocks authentication in `context` (`POST /testdata/context/block`): authentications
    /// then end with status 480.
    pub async fn block_context(&self, context: &ContextIdentifier) -> Result<()> {
        let body = api::BlockContextAuthenticationRequest {
            context_identifier: Some(context_api(context)),
        };
        self.client
            .transport()
            .testdata_block_context(&body)
            .await?;
        Ok(())
    }

    /// Unblocks authentication in `context` (`POST /testdata/context/unblock`).
    pub async fn unblock_context(&self, context: &ContextIdentifier) -> Result<()> {
        let body = api::UnblockContextAuthenticationRequest {
            context_identifier: Some(context_api(context)),
        };
        self.client
            .transport()
            .testdata_unblock_context(&body)
            .await?;
        Ok(())
    }

    /// A recorder for a test's data: everything created or changed through it is undone by
    /// [`TemporalTestData::cleanup`] (or, best effort, when it is dropped). Prefer
    /// [`TestData::temporal`], which always cleans up and reports failed steps.
    pub fn recorder(&self) -> TemporalTestData<'a> {
        TemporalTestData {
            data: *self,
            undo: Mutex::new(Vec::new()),
        }
    }

    /// Runs `body` with a [`TemporalTestData`] and then undoes what it recorded, newest first,
    /// whether `body` succeeded, failed or panicked (a panic goes on after the clean-up). Every
    /// step is attempted; each failed one is logged with `tracing::warn!`. Returns `body`'s
    /// error if it failed, else [`Error::TestDataCleanup`] with the failed steps if any, else
    /// `body`'s value.
    ///
    /// Cancellation: if the returned future is dropped before it finishes, the steps not yet
    /// undone are undone by a task spawned on the current tokio runtime (see
    /// [`TemporalTestData`]'s `Drop`): best effort, and only while that runtime runs.
    ///
    /// ```no_run
    /// # async fn f(client: ksef::KsefClient) -> ksef::Result<()> {
    /// use ksef::model::{Nip, api::TestDataPermissionType};
    /// use ksef::TestSubject;
    /// let company: Nip = "5265877635".parse()?;
    /// let accountant: Nip = "7010002137".parse()?;
    /// client.testdata()?.temporal(async |t| {
    ///     t.grant_permissions(&company, &TestSubject::Nip(accountant.clone()),
    ///         &[TestDataPermissionType::InvoiceRead]).await?;
    ///     // … the test …
    ///     Ok(())
    /// }).await?; // the permission is revoked again here
    /// # Ok(()) }
    /// ```
    pub async fn temporal<T>(
        &self,
        body: impl AsyncFnOnce(&TemporalTestData<'a>) -> Result<T>,
    ) -> Result<T> {
        use futures_util::FutureExt as _;
        let recorder = self.recorder();
        let out = std::panic::AssertUnwindSafe(body(&recorder))
            .catch_unwind()
            .await;
        let failures = recorder.cleanup().await;
        if !failures.is_empty() {
            tracing::warn!(
                failures = failures.len(),
                "test-data clean-up left some data behind"
            );
        }
        match out {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(Err(e)) => Err(e),
            Ok(Ok(_)) if !failures.is_empty() => Err(Error::TestDataCleanup(failures)),
            Ok(Ok(v)) => Ok(v),
        }
    }
}

/// One thing a [`TemporalTestData`] created or changed, and how to undo it.
#[derive(Debug, Clone)]
enum Undo {
    Subject(Nip),
    Person(Nip),
    Permissions(Nip, TestSubject),
    Attachments(Nip),
    Block(ContextIdentifier),
    SessionLimits(AuthenticatedClient),
    CertificateLimits(AuthenticatedClient),
    RateLimits(AuthenticatedClient),
}

impl Undo {
    async fn run(&self, data: TestData<'_>) -> Result<()> {
        match self {
            Undo::Subject(nip) => data.remove_subject(nip).await,
            Undo::Person(nip) => data.remove_person(nip).await,
            Undo::Permissions(ctx, subject) => data.revoke_permissions(ctx, subject).await,
            Undo::Attachments(nip) => data.revoke_attachments(nip, None).await,
            Undo::Block(ctx) => data.unblock_context(ctx).await,
            Undo::SessionLimits(auth) => auth.test_overrides()?.reset_session_limits().await,
            Undo::CertificateLimits(auth) => {
                auth.test_overrides()?.reset_certificate_limits().await
            }
            Undo::RateLimits(auth) => auth.test_overrides()?.reset_rate_limits().await,
        }
    }
}

/// Undoes `steps` (oldest first in the list) newest first; every step is attempted, the
/// failures are logged and returned.
async fn undo_all(data: TestData<'_>, steps: Vec<Undo>) -> Vec<Error> {
    let mut failures = Vec::new();
    for step in steps.into_iter().rev() {
        if let Err(e) = step.run(data).await {
            tracing::warn!(step = ?step, error = %e, "test-data clean-up step failed");
            failures.push(e);
        }
    }
    failures
}

/// Test data that is undone again at the end of a scope ("temporal" test data, as in the Python
/// `ksef2` client's `client.testdata.temporal()`). Created by [`TestData::temporal`] or
/// [`TestData::recorder`].
///
/// A KSeF certificate's validity ([`TestOverrides::set_certificate_valid_to`]) is not offered
/// here: KSeF only lets it move earlier (a `validTo` later than the current one is refused) and
/// has no endpoint restoring it, so the change cannot be undone. Shorten the validity of a
/// certificate issued for the test only.
///
/// Dropped with steps still recorded (a cancelled `temporal`, a recorder whose
/// [`TemporalTestData::cleanup`] was never called or was itself cancelled), it undoes them from
/// a task spawned on the current tokio runtime, newest first, logging failures. That is best
/// effort: nothing reports the outcome, the task runs only while the runtime does (a test's
/// runtime ending right after the drop may stop it half-way), and outside a runtime the data is
/// left in KSeF with a warning.
#[derive(Debug)]
pub struct TemporalTestData<'a> {
    data: TestData<'a>,
    undo: Mutex<Vec<Undo>>,
}

impl TemporalTestData<'_> {
    fn record(&self, undo: Undo) {
        self.undo
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(undo);
    }

    fn pop(&self) -> Option<Undo> {
        self.undo.lock().unwrap_or_else(|p| p.into_inner()).pop()
    }

    /// The plain test-data endpoints (nothing recorded).
    pub fn untracked(&self) -> TestData<'_> {
        self.data
    }

    /// [`TestData::create_subject`], removed at clean-up.
    pub async fn create_subject(&self, subject: &NewTestSubject) -> Result<()> {
        self.data.create_subject(subject).await?;
        self.record(Undo::Subject(subject.nip.clone()));
        Ok(())
    }

    /// [`TestData::create_person`], removed at clean-up.
    pub async fn create_person(&self, nip: &Nip, pesel: &Pesel, description: &str) -> Result<()> {
        self.data.create_person(nip, pesel, description).await?;
        self.record(Undo::Person(nip.clone()));
        Ok(())
    }

    /// [`TestData::create_person_with`], removed at clean-up.
    pub async fn create_person_with(&self, person: &NewTestPerson) -> Result<()> {
        self.data.create_person_with(person).await?;
        self.record(Undo::Person(person.nip.clone()));
        Ok(())
    }

    /// [`TestData::grant_permissions`], revoked at clean-up.
    pub async fn grant_permissions(
        &self,
        context: &Nip,
        subject: &TestSubject,
        permissions: &[api::TestDataPermissionType],
    ) -> Result<()> {
        self.data
            .grant_permissions(context, subject, permissions)
            .await?;
        self.record(Undo::Permissions(context.clone(), subject.clone()));
        Ok(())
    }

    /// [`TestData::enable_attachments`], revoked at clean-up.
    pub async fn enable_attachments(&self, nip: &Nip) -> Result<()> {
        self.data.enable_attachments(nip).await?;
        self.record(Undo::Attachments(nip.clone()));
        Ok(())
    }

    /// [`TestData::block_context`], unblocked at clean-up.
    pub async fn block_context(&self, context: &ContextIdentifier) -> Result<()> {
        self.data.block_context(context).await?;
        self.record(Undo::Block(context.clone()));
        Ok(())
    }

    /// [`TestOverrides::set_session_limits`] for `auth`'s context; the default limits are
    /// restored at clean-up (`DELETE /testdata/limits/context/session`).
    pub async fn set_session_limits(
        &self,
        auth: &AuthenticatedClient,
        limits: &api::SetSessionLimitsRequest,
    ) -> Result<()> {
        auth.test_overrides()?.set_session_limits(limits).await?;
        self.record(Undo::SessionLimits(auth.clone()));
        Ok(())
    }

    /// [`TestOverrides::set_certificate_limits`] for `auth`'s subject; the defaults are restored
    /// at clean-up (`DELETE /testdata/limits/subject/certificate`).
    pub async fn set_certificate_limits(
        &self,
        auth: &AuthenticatedClient,
        limits: &api::SetSubjectLimitsRequest,
    ) -> Result<()> {
        auth.test_overrides()?
            .set_certificate_limits(limits)
            .await?;
        self.record(Undo::CertificateLimits(auth.clone()));
        Ok(())
    }

    /// [`TestOverrides::set_rate_limits`] for `auth`'s context; the default rate limits are
    /// restored at clean-up (`DELETE /testdata/rate-limits`).
    pub async fn set_rate_limits(
        &self,
        auth: &AuthenticatedClient,
        limits: &api::SetRateLimitsRequest,
    ) -> Result<()> {
        auth.test_overrides()?.set_rate_limits(limits).await?;
        self.record(Undo::RateLimits(auth.clone()));
        Ok(())
    }

    /// [`TestOverrides::set_production_rate_limits`] for `auth`'s context; the default rate
    /// limits are restored at clean-up (`DELETE /testdata/rate-limits`).
    pub async fn set_production_rate_limits(&self, auth: &AuthenticatedClient) -> Result<()> {
        auth.test_overrides()?.set_production_rate_limits().await?;
        self.record(Undo::RateLimits(auth.clone()));
        Ok(())
    }

    /// How many recorded steps are waiting for clean-up.
    pub fn pending(&self) -> usize {
        self.undo.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Undoes everything recorded, newest first. Every step is attempted; the failures are
    /// logged and returned (newest first). If this future is dropped half-way, the steps not
    /// yet undone are left to `Drop` (see [`TemporalTestData`]).
    pub async fn cleanup(self) -> Vec<Error> {
        let mut failures = Vec::new();
        while let Some(step) = self.pop() {
            if let Err(e) = step.run(self.data).await {
                tracing::warn!(step = ?step, error = %e, "test-data clean-up step failed");
                failures.push(e);
            }
        }
        failures
    }
}

impl Drop for TemporalTestData<'_> {
    fn drop(&mut self) {
        let steps = std::mem::take(&mut *self.undo.lock().unwrap_or_else(|p| p.into_inner()));
        if steps.is_empty() {
            return;
        }
        let left = steps.len();
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                left,
                "TemporalTestData dropped outside a tokio runtime: its test data stays in KSeF"
            );
            return;
        };
        tracing::warn!(
            left,
            "TemporalTestData dropped before its clean-up: undoing in the background"
        );
        let client = self.data.client.clone();
        runtime.spawn(async move {
            let failures = undo_all(TestData::new(&client), steps).await;
            if !failures.is_empty() {
                tracing::warn!(
                    failures = failures.len(),
                    "background test-data clean-up left some data behind"
                );
            }
        });
    }
}

/// Test-only overrides of the authenticated context's limits and of KSeF certificates
/// (`/testdata/limits`, `/testdata/rate-limits`, `/testdata/certificates`). Obtained from
/// [`AuthenticatedClient::test_overrides`].
#[derive(Debug, Clone, Copy)]
pub struct TestOverrides<'a> {
    auth: &'a AuthenticatedClient,
}

impl AuthenticatedClient {
    /// Test-only overrides of limits and certificate validity; refuses DEMO and PRODUCTION
    /// before any network call.
    pub fn test_overrides(&self) -> Result<TestOverrides<'_>> {
        self.client().require_test("test limit overrides")?;
        Ok(TestOverrides { auth: self })
    }
}

impl TestOverrides<'_> {
    /// Sets the online and batch session limits of the current context
    /// (`POST /testdata/limits/context/session`).
    pub async fn set_session_limits(&self, limits: &api::SetSessionLimitsRequest) -> Result<()> {
        let t = self.auth.client().transport();
        self.auth
            .call(|token| async move { t.testdata_set_session_limits(&token, limits).await })
            .await?;
        Ok(())
    }

    /// Restores the default session limits (`DELETE /testdata/limits/context/session`).
    pub async fn reset_session_limits(&self) -> Result<()> {
        let t = self.auth.client().transport();
        self.auth
            .call(|token| async move { t.testdata_reset_session_limits(&token).await })
            .await?;
        Ok(())
    }

    /// Sets the certificate and enrollment limits of the current subject
    /// (`POST /testdata/limits/subject/certificate`).
    pub async fn set_certificate_limits(
        &self,
        limits: &api::SetSubjectLimitsRequest,
    ) -> Result<()> {
        let t = self.auth.client().transport();
        self.auth
            .call(|token| async move { t.testdata_set_certificate_limits(&token, limits).await })
            .await?;
        Ok(())
    }

    /// Restores the default certificate limits (`DELETE /testdata/limits/subject/certificate`).
    pub async fn reset_certificate_limits(&self) -> Result<()> {
        let t = self.auth.client().transport();
        self.auth
            .call(|token| async move { t.testdata_reset_certificate_limits(&token).await })
            .await?;
        Ok(())
    }

    /// Sets the API rate limits of the current context (`POST /testdata/rate-limits`).
    pub async fn set_rate_limits(&self, limits: &api::SetRateLimitsRequest) -> Result<()> {
        let t = self.auth.client().transport();
        self.auth
            .call(|token| async move { t.testdata_set_rate_limits(&token, limits).await })
            .await?;
        Ok(())
    }

    /// Restores the default API rate limits (`DELETE /testdata/rate-limits`).
    pub async fn reset_rate_limits(&self) -> Result<()> {
        let t = self.auth.client().transport();
        self.auth
            .call(|token| async move { t.testdata_reset_rate_limits(&token).await })
            .await?;
        Ok(())
    }

    /// Switches the context to the production rate limits
    /// (`POST /testdata/rate-limits/production`), to test a client's pacing as it will run.
    pub async fn set_production_rate_limits(&self) -> Result<()> {
        let t = self.auth.client().transport();
        self.auth
            .call(|token| async move { t.testdata_set_production_rate_limits(&token).await })
            .await?;
        Ok(())
    }

    /// Changes when a KSeF certificate expires (`PUT /testdata/certificates/{serialNumber}`), to
    /// test expiry handling.
    pub async fn set_certificate_valid_to(
        &self,
        serial_number: &str,
        valid_to: ksef_model::DateTime,
    ) -> Result<()> {
        let t = self.auth.client().transport();
        let body = api::TestDataUpdateCertificateRequest { valid_to };
        let body = &body;
        self.auth
            .call(|token| async move {
                t.testdata_update_certificate(&token, serial_number, body)
                    .await
            })
            .await?;
        Ok(())
    }
}
