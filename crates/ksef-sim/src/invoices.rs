//! Invoice retrieval: metadata queries and exports.

use std::sync::Arc;

use axum::response::Response;

use crate::error::ApiError;
use crate::server::{Inner, Req};

/// Handles this area's operations; `None` for any other operation (the dispatcher then tries the
/// next area).
pub(crate) fn handle(inner: &Arc<Inner>, req: &Req) -> Option<Result<Response, ApiError>> {
    let _ = (inner, req);
    None
}
