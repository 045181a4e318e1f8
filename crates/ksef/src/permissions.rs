//! Permissions: `auth.permissions()`.
//!
//! Every grant and revoke of KSeF is asynchronous: the call returns a [`PermissionOperation`]
//! whose [`wait`](PermissionOperation::wait) polls `GET /permissions/operations/{ref}` until the
//! operation ends (200, or [`Error::PermissionOperationFailed`] with KSeF's status 400/410/420/
//! 430/440/450/500/550). Every query is an auto-paging stream (offset paging, 100 rows a page).
//!
//! The request and result types are the API's own ([`ksef_model::api`]): every field KSeF
//! defines is there. [`person_by_identifier`] and [`person_by_fingerprint`] build the
//! `subjectDetails` KSeF has required since 2025-12-19.
//!
//! ```no_run
//! # async fn demo(auth: ksef::AuthenticatedClient) -> ksef::Result<()> {
//! use futures_util::TryStreamExt;
//! use ksef::model::api;
//! use ksef::permissions::{person_by_identifier, persons_query};
//!
//! let perms = auth.permissions();
//! perms
//!     .grant_persons(&api::PersonPermissionsGrantRequest {
//!         subject_identifier: api::PersonPermissionsSubjectIdentifier {
//!             r#type: api::PersonPermissionsSubjectIdentifierType::Pesel,
//!             value: "90010112345".into(),
//!         },
//!         permissions: vec![api::PersonPermissionType::InvoiceWrite],
//!         description: "Księgowa: wystawianie faktur".into(),
//!         subject_details: person_by_identifier("Anna", "Nowak"),
//!     })
//!     .await?
//!     .wait()
//!     .await?;
//! let granted: Vec<api::PersonPermission> = perms
//!     .persons(persons_query(api::PersonPermissionsQueryType::PermissionsInCurrentContext))
//!     .try_collect()
//!     .await?;
//! for p in &granted {
//!     perms.revoke(p.id.as_str()).await?.wait().await?;
//! }
//! # Ok(()) }
//! ```

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt, stream};
use ksef_model::api;
use ksef_model::ids::ReferenceNumber;
use ksef_model::operations as ops;
use ksef_transport::{AccessToken, Response};

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result, StatusFailure};

/// Rows asked for per page (KSeF allows 10–100).
const PAGE_SIZE: u32 = 100;

impl AuthenticatedClient {
    /// Permissions: grants, revokes, queries and roles.
    pub fn permissions(&self) -> Permissions<'_> {
        Permissions { auth: self }
    }
}

/// `subjectDetails` of a person identified by NIP or PESEL (`PersonByIdentifier`).
pub fn person_by_identifier(
    first_name: impl Into<String>,
    last_name: impl Into<String>,
) -> api::PersonPermissionSubjectDetails {
    api::PersonPermissionSubjectDetails {
        subject_details_type: api::PersonPermissionSubjectDetailsType::PersonByIdentifier,
        person_by_id: Some(api::PersonDetails {
            first_name: first_name.into(),
            last_name: last_name.into(),
        }),
        person_by_fp_with_id: None,
        person_by_fp_no_id: None,
    }
}

/// `subjectDetails` of a person identified by a certificate fingerprint whose certificate also
/// carries a NIP or PESEL (`PersonByFingerprintWithIdentifier`).
pub fn person_by_fingerprint(
    first_name: impl Into<String>,
    last_name: impl Into<String>,
    identifier: api::PersonIdentifier,
) -> api::PersonPermissionSubjectDetails {
    api::PersonPermissionSubjectDetails {
        subject_details_type:
            api::PersonPermissionSubjectDetailsType::PersonByFingerprintWithIdentifier,
        person_by_id: None,
        person_by_fp_with_id: Some(api::PersonByFingerprintWithIdentifierDetails {
            first_name: first_name.into(),
            last_name: last_name.into(),
            identifier,
        }),
        person_by_fp_no_id: None,
    }
}

/// A persons query (`PermissionsInCurrentContext`: every permission valid in the current
/// context; `PermissionsGrantedInCurrentContext`: those the caller granted in it) with no other
/// filter.
pub fn persons_query(
    query_type: api::PersonPermissionsQueryType,
) -> api::PersonPermissionsQueryRequest {
    api::PersonPermissionsQueryRequest {
        author_identifier: None,
        authorized_identifier: None,
        context_identifier: None,
        permission_state: None,
        permission_types: None,
        query_type,
        target_identifier: None,
    }
}

/// An authorization query (`Granted` by the current context or `Received` by it) with no other
/// filter.
pub fn authorizations_query(
    query_type: api::QueryType,
) -> api::EntityAuthorizationPermissionsQueryRequest {
    api::EntityAuthorizationPermissionsQueryRequest {
        authorized_identifier: None,
        authorizing_identifier: None,
        permission_types: None,
        query_type,
    }
}

/// Permission operations and queries. Obtained from [`AuthenticatedClient::permissions`].
#[derive(Debug, Clone, Copy)]
pub struct Permissions<'a> {
    auth: &'a AuthenticatedClient,
}

/// A grant or revoke KSeF accepted (202); [`wait`](Self::wait) for its outcome.
#[derive(Debug, Clone)]
#[must_use = "the operation runs asynchronously: wait() for it to know whether it succeeded"]
pub struct PermissionOperation<'a> {
    auth: &'a AuthenticatedClient,
    reference: ReferenceNumber,
}

fn check_description(description: &str) -> Result<()> {
    let n = description.chars().count();
    if (5..=256).contains(&n) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "a permission description must have 5–256 characters, this one has {n}"
        )))
    }
}

fn check_not_empty<T>(list: &[T], what: &str) -> Result<()> {
    if list.is_empty() {
        Err(Error::InvalidInput(format!(
            "{what}: name at least one permission to grant"
        )))
    } else {
        Ok(())
    }
}

/// Checks an identifier whose kind has a checksum or a fixed form (NIP, PESEL, internal id,
/// NIP-VAT UE) before anything is sent: KSeF would refuse it with 21405 after a round trip.
/// Other kinds (certificate fingerprints, "all partners") pass unchecked.
fn check_identifier(field: &str, kind: &str, value: &str) -> Result<()> {
    use ksef_model::{InternalId, Nip, NipVatUe, Pesel};
    let checked = match kind {
        "Nip" => value.parse::<Nip>().map(drop),
        "Pesel" => value.parse::<Pesel>().map(drop),
        "InternalId" => value.parse::<InternalId>().map(drop),
        "NipVatUe" => value.parse::<NipVatUe>().map(drop),
        _ => Ok(()),
    };
    checked.map_err(|e| Error::InvalidInput(format!("{field}: {e}")))
}

fn check_permission_id(id: &str) -> Result<()> {
    if id.chars().count() == 36 {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "a permission id has 36 characters (take it from a query result), got {id:?}"
        )))
    }
}

/// One page fetcher → a stream of rows, page after page until `hasMore` is false.
fn pages<'a, T, F, Fut>(fetch: F) -> BoxStream<'a, Result<T>>
where
    T: Send + 'a,
    F: Fn(u32) -> Fut + Send + 'a,
    Fut: Future<Output = Result<(Vec<T>, bool)>> + Send + 'a,
{
    stream::try_unfold((fetch, Some(0u32)), |(fetch, next)| async move {
        let Some(offset) = next else {
            return Ok(None);
        };
        let (rows, has_more) = fetch(offset).await?;
        let next = (has_more && !rows.is_empty()).then(|| offset + 1);
        Ok::<_, Error>(Some((rows, (fetch, next))))
    })
    .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}

/// Implements one paged query method: `$call(token, query, body)` on the transport, `$rows`
/// the field holding the rows.
macro_rules! paged_query {
    ($self:ident, $filter:ident, $query:ident, $call:ident, $rows:ident) => {{
        let auth = $self.auth;
        pages(move |offset| {
            let filter = $filter.clone();
            async move {
                let q = ops::$query {
                    page_offset: Some(offset),
                    page_size: Some(PAGE_SIZE),
                };
                let r = auth
                    .call(|t| {
                        let (q, filter) = (q.clone(), filter.clone());
                        async move { auth.client().transport().$call(&t, &q, &filter).await }
                    })
                    .await?
                    .into_value();
                Ok((r.$rows, r.has_more))
            }
        })
    }};
}

impl<'a> Permissions<'a> {
    /// Sends one grant or revoke (replayed once after a 401 that a token refresh cures) and
    /// returns the operation to wait for.
    async fn submit<F, Fut>(&self, call: F) -> Result<PermissionOperation<'a>>
    where
        F: FnMut(AccessToken) -> Fut,
        Fut: Future<Output = ksef_transport::Result<Response<api::PermissionsOperationResponse>>>,
    {
        let r = self.auth.call(call).await?.into_value();
        Ok(self.operation(r))
    }

    fn operation(&self, r: api::PermissionsOperationResponse) -> PermissionOperation<'a> {
        PermissionOperation {
            auth: self.auth,
            reference: r.reference_number,
        }
    }

    /// Grants a person (NIP, PESEL or certificate fingerprint) permissions to work in the
    /// current context (`POST /permissions/persons/grants`; needs `CredentialsManage`).
    /// `EnforcementOperations` only in an enforcement authority's or court bailiff's context.
    pub async fn grant_persons(
        &self,
        request: &api::PersonPermissionsGrantRequest,
    ) -> Result<PermissionOperation<'a>> {
        check_description(&request.description)?;
        check_not_empty(&request.permissions, "grant_persons")?;
        let subject = &request.subject_identifier;
        check_identifier("subjectIdentifier", subject.r#type.as_str(), &subject.value)?;
        let t = self.auth.client().transport();
        self.submit(|token| async move { t.grant_person_permissions(&token, request).await })
            .await
    }

    /// Grants another entity (NIP) invoice permissions in the current context, each optionally
    /// delegable (`POST /permissions/entities/grants`).
    pub async fn grant_entities(
        &self,
        request: &api::EntityPermissionsGrantRequest,
    ) -> Result<PermissionOperation<'a>> {
        check_description(&request.description)?;
        check_not_empty(&request.permissions, "grant_entities")?;
        let subject = &request.subject_identifier;
        check_identifier("subjectIdentifier", subject.r#type.as_str(), &subject.value)?;
        let t = self.auth.client().transport();
        self.submit(|token| async move { t.grant_entity_permissions(&token, request).await })
            .await
    }

    /// Grants an entity authorization: self-invoicing, RR invoicing, tax representative or PEF
    /// invoicing (`POST /permissions/authorizations/grants`).
    pub async fn grant_authorization(
        &self,
        request: &api::EntityAuthorizationPermissionsGrantRequest,
    ) -> Result<PermissionOperation<'a>> {
        check_description(&request.description)?;
        let subject = &request.subject_identifier;
        check_identifier("subjectIdentifier", subject.r#type.as_str(), &subject.value)?;
        let t = self.auth.client().transport();
        self.submit(|token| async move { t.grant_authorization_permissions(&token, request).await })
            .await
    }

    /// Grants invoice permissions indirectly, for one client (selective: the client must have
    /// granted the current context the permission with `canDelegate`) or for all partners
    /// (general) (`POST /permissions/indirect/grants`).
    pub async fn grant_indirect(
        &self,
        request: &api::IndirectPermissionsGrantRequest,
    ) -> Result<PermissionOperation<'a>> {
        check_description(&request.description)?;
        check_not_empty(&request.permissions, "grant_indirect")?;
        let subject = &request.subject_identifier;
        check_identifier("subjectIdentifier", subject.r#type.as_str(), &subject.value)?;
        if let Some(target) = &request.target_identifier
            && let Some(value) = &target.value
        {
            check_identifier("targetIdentifier", target.r#type.as_str(), value)?;
        }
        let t = self.auth.client().transport();
        self.submit(|token| async move { t.grant_indirect_permissions(&token, request).await })
            .await
    }

    /// Makes someone the administrator (`CredentialsManage`) of a subunit: an internal unit
    /// (`InternalId`, created if new) or a subordinate entity's NIP
    /// (`POST /permissions/subunits/grants`; needs `SubunitManage`).
    pub async fn grant_subunit_admin(
        &self,
        request: &api::SubunitPermissionsGrantRequest,
    ) -> Result<PermissionOperation<'a>> {
        check_description(&request.description)?;
        let (subject, context) = (&request.subject_identifier, &request.context_identifier);
        check_identifier("subjectIdentifier", subject.r#type.as_str(), &subject.value)?;
        check_identifier("contextIdentifier", context.r#type.as_str(), &context.value)?;
        let t = self.auth.client().transport();
        self.submit(|token| async move { t.grant_subunit_permissions(&token, request).await })
            .await
    }

    /// Makes a certificate fingerprint the administrator of an EU entity, creating the
    /// `NipVatUe` context (`POST /permissions/eu-entities/administration/grants`).
    pub async fn grant_eu_entity_admin(
        &self,
        request: &api::EuEntityAdministrationPermissionsGrantRequest,
    ) -> Result<PermissionOperation<'a>> {
        check_description(&request.description)?;
        let t = self.auth.client().transport();
        self.submit(|token| async move {
            t.grant_eu_entity_administration_permissions(&token, request)
                .await
        })
        .await
    }

    /// Grants an EU entity's representative invoice permissions, in the `NipVatUe` context
    /// (`POST /permissions/eu-entities/grants`; needs `VatUeManage`).
    pub async fn grant_eu_entity_representative(
        &self,
        request: &api::EuEntityPermissionsGrantRequest,
    ) -> Result<PermissionOperation<'a>> {
        check_description(&request.description)?;
        check_not_empty(&request.permissions, "grant_eu_entity_representative")?;
        let t = self.auth.client().transport();
        self.submit(|token| async move {
            t.grant_eu_entity_representative_permissions(&token, request)
                .await
        })
        .await
    }

    /// Revokes a permission by its id from a query result
    /// (`DELETE /permissions/common/grants/{id}`). Entity authorizations are revoked with
    /// [`revoke_authorization`](Self::revoke_authorization).
    pub async fn revoke(&self, permission_id: &str) -> Result<PermissionOperation<'a>> {
        check_permission_id(permission_id)?;
        let t = self.auth.client().transport();
        self.submit(|token| async move { t.revoke_common_permission(&token, permission_id).await })
            .await
    }

    /// Revokes an entity authorization (`DELETE /permissions/authorizations/grants/{id}`).
    pub async fn revoke_authorization(
        &self,
        permission_id: &str,
    ) -> Result<PermissionOperation<'a>> {
        check_permission_id(permission_id)?;
        let t = self.auth.client().transport();
        self.submit(|token| async move {
            t.revoke_authorization_permission(&token, permission_id)
                .await
        })
        .await
    }

    /// A handle on an operation started earlier (e.g. by another process).
    pub fn operation_by_reference(&self, reference: ReferenceNumber) -> PermissionOperation<'a> {
        PermissionOperation {
            auth: self.auth,
            reference,
        }
    }

    /// Whether the current context may issue invoices with attachments
    /// (`GET /permissions/attachments/status`).
    pub async fn attachment_status(&self) -> Result<api::CheckAttachmentPermissionStatusResponse> {
        let auth = self.auth;
        Ok(auth
            .call(|t| async move {
                auth.client()
                    .transport()
                    .attachment_permission_status(&t)
                    .await
            })
            .await?
            .into_value())
    }

    /// The caller's own permissions in the current context
    /// (`POST /permissions/query/personal/grants`).
    pub fn personal(
        &self,
        filter: api::PersonalPermissionsQueryRequest,
    ) -> BoxStream<'a, Result<api::PersonalPermission>> {
        paged_query!(
            self,
            filter,
            QueryPersonalPermissionsQuery,
            query_personal_permissions,
            permissions
        )
    }

    /// Permissions of persons and entities: valid in the current context, or granted in it by
    /// the caller (`POST /permissions/query/persons/grants`; see [`persons_query`]).
    pub fn persons(
        &self,
        filter: api::PersonPermissionsQueryRequest,
    ) -> BoxStream<'a, Result<api::PersonPermission>> {
        paged_query!(
            self,
            filter,
            QueryPersonPermissionsQuery,
            query_person_permissions,
            permissions
        )
    }

    /// Administrators of subunits granted from the current context
    /// (`POST /permissions/query/subunits/grants`).
    pub fn subunits(
        &self,
        filter: api::SubunitPermissionsQueryRequest,
    ) -> BoxStream<'a, Result<api::SubunitPermission>> {
        paged_query!(
            self,
            filter,
            QuerySubunitPermissionsQuery,
            query_subunit_permissions,
            permissions
        )
    }

    /// Invoice permissions other entities granted the current context
    /// (`POST /permissions/query/entities/grants`).
    pub fn entities(
        &self,
        filter: api::EntityPermissionsQueryRequest,
    ) -> BoxStream<'a, Result<api::EntityPermissionItem>> {
        paged_query!(
            self,
            filter,
            QueryEntityPermissionsQuery,
            query_entity_permissions,
            permissions
        )
    }

    /// Subordinate entities (JST units, VAT group members) of the current context
    /// (`POST /permissions/query/subordinate-entities/roles`).
    pub fn subordinate_entities(
        &self,
        filter: api::SubordinateEntityRolesQueryRequest,
    ) -> BoxStream<'a, Result<api::SubordinateEntityRole>> {
        paged_query!(
            self,
            filter,
            QuerySubordinateEntityRolesQuery,
            query_subordinate_entity_roles,
            roles
        )
    }

    /// Entity authorizations granted or received by the current context
    /// (`POST /permissions/query/authorizations/grants`; see [`authorizations_query`]).
    pub fn authorizations(
        &self,
        filter: api::EntityAuthorizationPermissionsQueryRequest,
    ) -> BoxStream<'a, Result<api::EntityAuthorizationGrant>> {
        paged_query!(
            self,
            filter,
            QueryAuthorizationPermissionsQuery,
            query_authorization_permissions,
            authorization_grants
        )
    }

    /// EU entity administrators (NIP context) or administrators and representatives
    /// (`NipVatUe` context) (`POST /permissions/query/eu-entities/grants`).
    pub fn eu_entities(
        &self,
        filter: api::EuEntityPermissionsQueryRequest,
    ) -> BoxStream<'a, Result<api::EuEntityPermission>> {
        paged_query!(
            self,
            filter,
            QueryEuEntityPermissionsQuery,
            query_eu_entity_permissions,
            permissions
        )
    }

    /// The roles of the current context's entity (`GET /permissions/query/entities/roles`).
    pub fn entity_roles(&self) -> BoxStream<'a, Result<api::EntityRole>> {
        let auth = self.auth;
        pages(move |offset| async move {
            let q = ops::QueryEntityRolesQuery {
                page_offset: Some(offset),
                page_size: Some(PAGE_SIZE),
            };
            let r = auth
                .call(|t| {
                    let q = q.clone();
                    async move { auth.client().transport().query_entity_roles(&t, &q).await }
                })
                .await?
                .into_value();
            Ok((r.roles, r.has_more))
        })
    }
}

impl PermissionOperation<'_> {
    /// The operation's reference number.
    pub fn reference_number(&self) -> &ReferenceNumber {
        &self.reference
    }

    /// The current status (`GET /permissions/operations/{ref}`): 100 while running.
    pub async fn status(&self) -> Result<api::StatusInfo> {
        let auth = self.auth;
        let reference = &self.reference;
        Ok(auth
            .call(|t| async move {
                auth.client()
                    .transport()
                    .permission_operation_status(&t, reference)
                    .await
            })
            .await?
            .into_value()
            .status)
    }

    /// Polls until the operation ends (client's [`PollOptions`](crate::PollOptions)): `Ok` on
    /// 200, [`Error::PermissionOperationFailed`] on a failure status.
    pub async fn wait(&self) -> Result<()> {
        let poll = *self.auth.client().poll_options();
        let status = poll
            .poll("a permission operation", || async {
                let s = self.status().await?;
                Ok((s.code >= 200).then_some(s))
            })
            .await?;
        if status.code == 200 {
            Ok(())
        } else {
            Err(Error::PermissionOperationFailed {
                reference: self.reference.as_str().to_owned(),
                status: StatusFailure {
                    code: status.code,
                    description: status.description,
                    details: status.details.unwrap_or_default(),
                },
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_are_checked_before_any_call() {
        assert!(check_description("abcd").is_err());
        assert!(check_description("abcde").is_ok());
        assert!(check_description(&"x".repeat(257)).is_err());
        assert!(check_permission_id("short").is_err());
        assert!(check_permission_id(&"a".repeat(36)).is_ok());
        assert!(check_not_empty::<u8>(&[], "grant").is_err());
    }

    #[tokio::test]
    async fn pages_follow_has_more() {
        let s = pages(|offset| async move {
            Ok::<_, Error>(match offset {
                0 => (vec![1, 2], true),
                1 => (vec![3], false),
                _ => (vec![99], false),
            })
        });
        let all: Vec<i32> = s.try_collect().await.unwrap_or_default();
        assert_eq!(all, [1, 2, 3]);
    }
}
