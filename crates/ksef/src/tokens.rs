//! KSeF tokens (`client.tokens()`): generate, wait until active, status, a paging list and
//! revocation. A KSeF token is a long-lived secret that authenticates like a signature, with a
//! fixed permission set; use it with [`crate::Auth::ksef_token`].

use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use ksef_model::api::{self, AuthenticationTokenStatus, TokenPermissionType};
use ksef_model::ids::ReferenceNumber;
use ksef_model::operations::ListTokensQuery;
use secrecy::SecretString;

use crate::auth::AuthenticatedClient;
use crate::error::{Error, Result};

/// KSeF tokens of the authenticated context. Obtained from [`AuthenticatedClient::tokens`].
#[derive(Debug, Clone, Copy)]
pub struct Tokens<'a> {
    auth: &'a AuthenticatedClient,
}

impl AuthenticatedClient {
    /// KSeF tokens: generate, wait until active, list, status, revoke.
    pub fn tokens(&self) -> Tokens<'_> {
        Tokens { auth: self }
    }
}

/// A newly generated token. KSeF returns the secret only once: store it now. `Debug` redacts it.
#[derive(Debug, Clone)]
pub struct GeneratedToken {
    /// The token's reference number (for status, listing and revocation).
    pub reference_number: ReferenceNumber,
    /// The token itself.
    pub token: SecretString,
}

impl Tokens<'_> {
    /// Generates a token with `permissions` (`POST /tokens` → 202). It starts `Pending`; see
    /// [`Tokens::wait_active`]. Checked before any network call: a description of 5–256
    /// characters and at least one permission. KSeF refuses permissions the caller does not hold
    /// (26001) and contexts other than `Nip`/`InternalId` (26002).
    pub async fn generate(
        &self,
        description: &str,
        permissions: &[TokenPermissionType],
    ) -> Result<GeneratedToken> {
        let n = description.chars().count();
        if !(5..=256).contains(&n) {
            return Err(Error::InvalidInput(format!(
                "token description must have 5 to 256 characters, it has {n}"
            )));
        }
        if permissions.is_empty() {
            return Err(Error::InvalidInput(
                "a KSeF token needs at least one permission".into(),
            ));
        }
        let body = api::GenerateTokenRequest {
            description: description.to_owned(),
            permissions: permissions.to_vec(),
        };
        let t = self.auth.client().transport();
        let body = &body;
        let r = self
            .auth
            .call(|token| async move { t.generate_token(&token, body).await })
            .await?
            .into_value();
        Ok(GeneratedToken {
            reference_number: r.reference_number,
            token: SecretString::from(r.token),
        })
    }

    /// Generates a token and waits until it is `Active` (ready for authentication).
    pub async fn generate_active(
        &self,
        description: &str,
        permissions: &[TokenPermissionType],
    ) -> Result<GeneratedToken> {
        let token = self.generate(description, permissions).await?;
        self.wait_active(&token.reference_number).await?;
        Ok(token)
    }

    /// The token's status and metadata (`GET /tokens/{referenceNumber}`).
    pub async fn status(&self, reference: &ReferenceNumber) -> Result<api::TokenStatusResponse> {
        let t = self.auth.client().transport();
        Ok(self
            .auth
            .call(|token| async move { t.token_status(&token, reference).await })
            .await?
            .into_value())
    }

    /// Polls until the token leaves `Pending`: its status when `Active`, otherwise
    /// [`Error::TokenNotActive`] (`Failed`: generate a new one).
    pub async fn wait_active(
        &self,
        reference: &ReferenceNumber,
    ) -> Result<api::TokenStatusResponse> {
        let status = self
            .auth
            .client()
            .poll_options()
            .poll("the KSeF token to become active", || async {
                let s = self.status(reference).await?;
                Ok((s.status != AuthenticationTokenStatus::Pending).then_some(s))
            })
            .await?;
        if status.status == AuthenticationTokenStatus::Active {
            Ok(status)
        } else {
            let mut detail = status.status.to_string();
            if let Some(d) = status.status_details.as_ref().filter(|d| !d.is_empty()) {
                detail = format!("{detail}: {}", d.join("; "));
            }
            Err(Error::TokenNotActive {
                reference: reference.to_string(),
                status: detail,
            })
        }
    }

    /// The tokens matching `query` that the caller may see, page after page (`GET /tokens`;
    /// with `CredentialsManage`/`CredentialsRead` every token of the context, otherwise the
    /// caller's own). `query.page_size` defaults to 100.
    pub fn list(
        &self,
        query: ListTokensQuery,
    ) -> impl Stream<Item = Result<api::QueryTokensResponseItem>> + Send + '_ {
        let mut query = query;
        query.page_size = query.page_size.or(Some(100));
        stream::try_unfold(Some(None::<String>), move |state| {
            let query = query.clone();
            async move {
                let Some(continuation) = state else {
                    return Ok(None);
                };
                let t = self.auth.client().transport();
                let query = &query;
                let page = self
                    .auth
                    .call(|token| {
                        let continuation = continuation.clone();
                        async move { t.list_tokens(&token, query, continuation.as_deref()).await }
                    })
                    .await?
                    .into_value();
                let next = page.continuation_token.filter(|c| !c.is_empty()).map(Some);
                Ok::<_, Error>(Some((page.tokens, next)))
            }
        })
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    /// Revokes a token (`DELETE /tokens/{referenceNumber}` → 204); authentication with it then
    /// fails (status 450). With `CredentialsManage` any token of the context, otherwise only
    /// one's own (a token may revoke itself).
    pub async fn revoke(&self, reference: &ReferenceNumber) -> Result<()> {
        let t = self.auth.client().transport();
        self.auth
            .call(|token| async move { t.revoke_token(&token, reference).await })
            .await?;
        Ok(())
    }
}
