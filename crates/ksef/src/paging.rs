//! Auto-paging over KSeF's `continuationToken` lists.

use std::future::Future;

use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt, stream};

use crate::error::{Error, Result};

/// One page fetcher (given the continuation token, `None` for the first page; returning the
/// rows and the next token) → a stream of rows, page after page until the token is absent or
/// empty.
pub(crate) fn continuation_pages<'a, T, F, Fut>(fetch: F) -> BoxStream<'a, Result<T>>
where
    T: Send + 'a,
    F: Fn(Option<String>) -> Fut + Send + 'a,
    Fut: Future<Output = Result<(Vec<T>, Option<String>)>> + Send + 'a,
{
    stream::try_unfold((fetch, Some(None::<String>)), |(fetch, state)| async move {
        let Some(continuation) = state else {
            return Ok(None);
        };
        let (rows, next) = fetch(continuation).await?;
        let next = next.filter(|c| !c.is_empty()).map(Some);
        Ok::<_, Error>(Some((rows, (fetch, next))))
    })
    .map_ok(|rows| stream::iter(rows.into_iter().map(Ok)))
    .try_flatten()
    .boxed()
}
