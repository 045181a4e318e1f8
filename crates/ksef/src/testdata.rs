//! Test data (TEST environment and local simulators only): `client.testdata()?`.

use ksef_model::api;
use ksef_model::ids::{Nip, Pesel};

use crate::client::KsefClient;
use crate::error::Result;

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

/// Test-data endpoints. Obtained from [`KsefClient::testdata`], which refuses DEMO and
/// PRODUCTION before any network call.
#[derive(Debug)]
pub struct TestData<'a> {
    client: &'a KsefClient,
}

impl<'a> TestData<'a> {
    pub(crate) fn new(client: &'a KsefClient) -> Self {
        Self { client }
    }

    /// Creates a test person (`POST /testdata/person`) linked to `nip`.
    pub async fn create_person(&self, nip: &Nip, pesel: &Pesel, description: &str) -> Result<()> {
        let body = api::PersonCreateRequest {
            created_date: None,
            description: description.to_owned(),
            is_bailiff: false,
            is_deceased: None,
            nip: nip.clone(),
            pesel: pesel.clone(),
        };
        self.client
            .transport()
            .testdata_create_person(&body)
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
        let (kind, value) = match subject {
            TestSubject::Nip(n) => (api::TestDataAuthorizedIdentifierType::Nip, n.to_string()),
            TestSubject::Pesel(p) => (api::TestDataAuthorizedIdentifierType::Pesel, p.to_string()),
            TestSubject::Fingerprint(f) => (
                api::TestDataAuthorizedIdentifierType::Fingerprint,
                f.clone(),
            ),
        };
        let body = api::TestDataPermissionsGrantRequest {
            authorized_identifier: api::TestDataAuthorizedIdentifier {
                r#type: kind,
                value,
            },
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
}
