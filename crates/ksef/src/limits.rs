//! Limits and the smaller read-only areas: effective context, subject and API rate limits
//! (`client.limits()`), the session list (`client.session_list(…)`) and the public Peppol
//! provider registry (`KsefClient::peppol_providers`).

use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use ksef_model::api;
use ksef_model::operations::{ListSessionsQuery, QueryPeppolProvidersQuery};

use crate::auth::AuthenticatedClient;
use crate::client::KsefClient;
use crate::error::{Error, Result};
use crate::paging::continuation_pages;

/// Effective limits of the authenticated context and subject. Obtained from
/// [`AuthenticatedClient::limits`].
#[derive(Debug, Clone, Copy)]
pub struct Limits<'a> {
    auth: &'a AuthenticatedClient,
}

impl AuthenticatedClient {
    /// Effective limits: session limits of the context, certificate limits of the subject, API
    /// rate limits.
    pub fn limits(&self) -> Limits<'_> {
        Limits { auth: self }
    }

    /// Online or batch sessions of the context matching `query`, page after page
    /// (`GET /sessions`, newest first). `query.page_size` defaults to 100.
    pub fn session_list(
        &self,
        query: ListSessionsQuery,
    ) -> impl Stream<Item = Result<api::SessionsQueryResponseItem>> + Send + '_ {
        let mut query = query;
        query.page_size = query.page_size.or(Some(100));
        continuation_pages(move |continuation| {
            let query = query.clone();
            async move {
                let t = self.client().transport();
                let query = &query;
                let page = self
                    .call(|token| {
                        let continuation = continuation.clone();
                        async move {
                            t.list_sessions(&token, query, continuation.as_deref())
                                .await
                        }
                    })
                    .await?
                    .into_value();
                Ok((page.sessions, page.continuation_token))
            }
        })
    }
}

impl Limits<'_> {
    /// Invoice size and count limits of online and batch sessions (`GET /limits/context`).
    pub async fn context(&self) -> Result<api::EffectiveContextLimits> {
        let t = self.auth.client().transport();
        Ok(self
            .auth
            .call(|token| async move { t.context_limits(&token).await })
            .await?
            .into_value())
    }

    /// Enrollment and certificate limits of the subject (`GET /limits/subject`).
    pub async fn subject(&self) -> Result<api::EffectiveSubjectLimits> {
        let t = self.auth.client().transport();
        Ok(self
            .auth
            .call(|token| async move { t.subject_limits(&token).await })
            .await?
            .into_value())
    }

    /// Requests per second, minute and hour for every rate-limit group (`GET /rate-limits`).
    pub async fn rate_limits(&self) -> Result<api::EffectiveApiRateLimits> {
        let t = self.auth.client().transport();
        Ok(self
            .auth
            .call(|token| async move { t.rate_limits(&token).await })
            .await?
            .into_value())
    }
}

impl KsefClient {
    /// The registered Peppol service providers, page after page (`GET /peppol/query`; public,
    /// no authentication; newest first).
    pub fn peppol_providers(&self) -> impl Stream<Item = Result<api::PeppolProvider>> + Send + '_ {
        const PAGE: u32 = 100;
        stream::try_unfold(Some(0u32), move |state| async move {
            let Some(offset) = state else {
                return Ok(None);
            };
            let q = QueryPeppolProvidersQuery {
                page_offset: Some(offset),
                page_size: Some(PAGE),
            };
            let page = self
                .transport()
                .query_peppol_providers(&q)
                .await?
                .into_value();
            let next = page.has_more.then_some(offset + 1);
            Ok::<_, Error>(Some((page.peppol_providers, next)))
        })
        .map_ok(|items| stream::iter(items.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }
}
