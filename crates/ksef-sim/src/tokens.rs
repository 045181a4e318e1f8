//! KSeF tokens (ksef-api.md §13): generate (Pending → Active), list with filters and paging,
//! status, revoke. The token string is `{reference}|{contextType}-{contextValue}|{64 hex}`; only
//! its SHA-256 is kept.

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use ksef_model::api::GenerateTokenRequest;
use ksef_model::ids::ReferenceType;
use serde_json::{Value, json};

use crate::auth::{continuation, page_size};
use crate::error::ApiError;
use crate::ids::rfc3339;
use crate::server::{Inner, Req, empty, json_ok};
use crate::state::{KsefToken, State};

fn token_json(t: &KsefToken) -> Value {
    let mut v = json!({
        "referenceNumber": t.reference,
        "authorIdentifier": {"type": t.author.0, "value": t.author.1},
        "contextIdentifier": {"type": t.context.0, "value": t.context.1},
        "description": t.description,
        "requestedPermissions": t.permissions,
        "dateCreated": rfc3339(t.created),
        "status": t.status,
    });
    if let Some(u) = t.last_use {
        v["lastUseDate"] = json!(rfc3339(u));
    }
    v
}

pub(crate) fn generate(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let body: GenerateTokenRequest = req.json()?;
    let n = body.description.chars().count();
    if !(5..=256).contains(&n) {
        return Err(ApiError::validation(format!(
            "'description' must be between 5 and 256 characters. You entered {n} characters."
        )));
    }
    if body.permissions.is_empty() {
        return Err(ApiError::validation("'permissions' must not be empty."));
    }
    if caller.context.0 != "Nip" && caller.context.0 != "InternalId" {
        return Err(ApiError::bad(
            26002,
            [format!(
                "Bieżący typ kontekstu: {}. Dozwolone typy kontekstu: Nip, InternalId.",
                caller.context.0
            )],
        ));
    }
    let requested: Vec<String> = body
        .permissions
        .iter()
        .map(|p| p.as_str().to_owned())
        .collect();
    let missing: Vec<&String> = requested
        .iter()
        .filter(|p| !caller.permissions.contains(p))
        .collect();
    if !missing.is_empty() {
        return Err(ApiError::bad(
            26001,
            [format!(
                "Brakujące uprawnienia: {}.",
                missing
                    .iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
        ));
    }
    let now = req.now;
    let mut st = inner.state();
    let reference = st.rng.reference(now, ReferenceType::KsefToken);
    let mut secret = [0u8; 32];
    if getrandom::fill(&mut secret).is_err() {
        st.rng.fill(&mut secret);
    }
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let ctx_type = match caller.context.0.as_str() {
        "Nip" => "nip",
        _ => "internalId",
    };
    let token = format!("{reference}|{ctx_type}-{}|{hex}", caller.context.1);
    st.tokens.push(KsefToken {
        reference: reference.clone(),
        secret_hash: ksef_crypto::hash::sha256_base64(token.as_bytes()),
        author: caller.subject.clone(),
        context: caller.context.clone(),
        description: body.description,
        permissions: requested,
        created: now,
        last_use: None,
        status: "Pending".into(),
    });
    drop(st);
    let task_inner = inner.clone();
    let task_ref = reference.clone();
    tokio::spawn(async move {
        let mut st = task_inner.state();
        if let Some(t) = st
            .tokens
            .iter_mut()
            .find(|t| t.reference == task_ref && t.status == "Pending")
        {
            t.status = "Active".into();
        }
    });
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &json!({"referenceNumber": reference, "token": token}),
    ))
}

/// Whether the caller may see/revoke `t`: `CredentialsManage`/`CredentialsRead` see every token
/// of the context; others only tokens they authored, or, when authenticated with a KSeF token,
/// only that token.
fn visible(st: &State, req: &Req, t: &KsefToken, manage_only: bool) -> bool {
    let Some(c) = &req.caller else { return false };
    if t.context != c.context {
        return false;
    }
    let privileged = c
        .permissions
        .iter()
        .any(|p| p == "CredentialsManage" || (!manage_only && p == "CredentialsRead"));
    let used_token = st
        .auths
        .get(&c.auth_ref)
        .and_then(|a| a.token_ref.as_deref());
    match used_token {
        // A caller authenticated with a KSeF token sees (and may revoke) only that token,
        // unless it holds a credentials permission (tokeny-ksef.md; one token cannot revoke
        // another).
        Some(own) => privileged || own == t.reference,
        None => privileged || t.author == c.subject,
    }
}

pub(crate) fn list(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    req.caller()?;
    let size = page_size(req, 10, 10, 100)?;
    let offset = continuation(req)?;
    let statuses: Vec<&str> = req
        .query
        .iter()
        .filter(|(k, _)| k == "status")
        .map(|(_, v)| v.as_str())
        .collect();
    let description = req.query("description").map(str::to_lowercase);
    let author = req.query("authorIdentifier");
    let author_type = req.query("authorIdentifierType");
    for (name, v) in [
        ("description", &description.as_deref()),
        ("authorIdentifier", &author),
    ] {
        if let Some(v) = v
            && v.chars().count() < 3
        {
            return Err(ApiError::validation(format!(
                "'{name}' must be at least 3 characters."
            )));
        }
    }
    let st = inner.state();
    let mut items: Vec<&KsefToken> = st
        .tokens
        .iter()
        .filter(|t| visible(&st, req, t, false))
        .filter(|t| statuses.is_empty() || statuses.contains(&t.status.as_str()))
        .filter(|t| {
            description
                .as_deref()
                .is_none_or(|d| t.description.to_lowercase().contains(d))
        })
        .filter(|t| author.is_none_or(|a| t.author.1.contains(a)))
        .filter(|t| author_type.is_none_or(|a| t.author.0 == a))
        .collect();
    items.sort_by(|a, b| {
        b.created
            .cmp(&a.created)
            .then(a.reference.cmp(&b.reference))
    });
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(size)
        .map(|t| token_json(t))
        .collect();
    let mut v = json!({"tokens": page});
    if offset + size < items.len() {
        v["continuationToken"] = json!(format!("ofs-{}", offset + size));
    }
    Ok(json_ok(StatusCode::OK, &v))
}

fn not_found(r: &str) -> ApiError {
    ApiError::validation(format!(
        "Token KSeF o numerze referencyjnym {r} nie istnieje."
    ))
}

pub(crate) fn status(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let r = req.param(0);
    let st = inner.state();
    let t = st
        .tokens
        .iter()
        .find(|t| t.reference == r && visible(&st, req, t, false))
        .ok_or_else(|| not_found(r))?;
    Ok(json_ok(StatusCode::OK, &token_json(t)))
}

pub(crate) fn revoke(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let r = req.param(0);
    let mut st = inner.state();
    let allowed = st
        .tokens
        .iter()
        .any(|t| t.reference == r && visible(&st, req, t, true));
    if !allowed {
        return Err(not_found(r));
    }
    if let Some(t) = st.tokens.iter_mut().find(|t| t.reference == r) {
        t.status = "Revoked".into();
    }
    Ok(empty(StatusCode::NO_CONTENT))
}

/// An active token that matched: (reference, author, permissions).
pub(crate) type TokenMatch = (String, crate::state::Ident, Vec<String>);

/// Looks up a presented token string: `Ok((reference, author, permissions))` when active.
pub(crate) fn authenticate(
    st: &mut State,
    token: &str,
    context: &(String, String),
    now: time::OffsetDateTime,
) -> Result<TokenMatch, &'static str> {
    let hash = ksef_crypto::hash::sha256_base64(token.as_bytes());
    let t = st
        .tokens
        .iter_mut()
        .find(|t| t.secret_hash == hash)
        .ok_or("Nieprawidłowy token")?;
    match t.status.as_str() {
        "Active" => {}
        "Revoked" | "Revoking" => return Err("Token unieważniony"),
        _ => return Err("Token nieaktywny"),
    }
    if &t.context != context {
        return Err("Nieprawidłowy token");
    }
    t.last_use = Some(now);
    Ok((t.reference.clone(), t.author.clone(), t.permissions.clone()))
}
