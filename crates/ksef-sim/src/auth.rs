//! Authentication (ksef-api.md §4): challenges, XAdES and KSeF-token submissions, the
//! asynchronous operation status, redeem, refresh and auth-session management.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::http::{StatusCode, header};
use axum::response::Response;
use ksef_model::api::InitTokenAuthenticationRequest;
use ksef_model::auth_request::{
    AllowedIps, AuthTokenRequest, Ip4Mask, Ip4Range, MAX_ALLOWED_IPS_PER_KIND,
    SubjectIdentifierType,
};
use ksef_model::ids::ReferenceType;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::error::ApiError;
use crate::ids::rfc3339;
use crate::jwt::{self, TokenKind};
use crate::keys::SimKeys;
use crate::server::{Inner, Req, empty, json_ok};
use crate::state::{AuthMethod, AuthOp, Challenge, Ident, Status};

/// Challenge lifetime.
pub(crate) const CHALLENGE_TTL: Duration = Duration::minutes(10);
/// Authentication operation token lifetime (the spec's example JWT: 2700 s).
pub(crate) const OPERATION_TOKEN_TTL: Duration = Duration::seconds(2700);
/// Access token lifetime (the spec's example JWT: 900 s).
pub(crate) const ACCESS_TOKEN_TTL: Duration = Duration::minutes(15);
/// Refresh token lifetime.
pub(crate) const REFRESH_TOKEN_TTL: Duration = Duration::days(7);

pub(crate) fn challenge(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let now = req.now;
    let ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut st = inner.state();
    let reference = st.rng.reference(now, ReferenceType::Challenge);
    st.challenges.insert(
        reference.clone(),
        Challenge {
            created: now,
            timestamp_ms: ms,
            used: false,
        },
    );
    Ok(json_ok(
        StatusCode::OK,
        &json!({
            "challenge": reference,
            "timestamp": rfc3339(now),
            "timestampMs": ms,
            "clientIp": req.client_ip.to_string(),
        }),
    ))
}

/// Tests only ([`crate::SimulatorHandle::plant_challenge_for_tests`], `POST
/// /__sim/challenges`): records `challenge` as issued now and unused, replacing an earlier
/// record of the same value, so that documents signed in advance for a fixed challenge (the
/// independent signers' fixtures) can be submitted. Returns the challenge's `timestampMs`.
pub(crate) fn plant_challenge(inner: &Inner, challenge: &str) -> Result<i64, String> {
    let parsed: ksef_model::ids::ReferenceNumber = challenge
        .parse()
        .map_err(|e| format!("{challenge:?} is not a reference number: {e}"))?;
    if parsed.type_code() != ReferenceType::Challenge {
        return Err(format!("{challenge:?} is not a challenge (type CR)"));
    }
    let now = inner.now();
    let ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    inner.state().challenges.insert(
        parsed.as_str().to_owned(),
        Challenge {
            created: now,
            timestamp_ms: ms,
            used: false,
        },
    );
    Ok(ms)
}

/// Takes a challenge: known, unused and fresh, else 21111.
fn take_challenge(inner: &Inner, challenge: &str, now: OffsetDateTime) -> Result<i64, ApiError> {
    let mut st = inner.state();
    let bad = |d: &str| ApiError::bad(21111, [d.to_owned()]);
    let c = st
        .challenges
        .get_mut(challenge)
        .ok_or_else(|| bad("Wyzwanie autoryzacyjne nie istnieje."))?;
    if c.used {
        return Err(bad("Wyzwanie autoryzacyjne zostało już wykorzystane."));
    }
    if now > c.created + CHALLENGE_TTL {
        return Err(bad("Wyzwanie autoryzacyjne wygasło."));
    }
    c.used = true;
    Ok(c.timestamp_ms)
}

/// The subject a certificate identifies: `(Nip|Pesel, value, seal?)`.
fn certificate_subject(cert: &ksef_crypto::cert::Certificate) -> Option<(Ident, bool)> {
    fn digits_after(s: &str, prefixes: &[&str], n: usize) -> Option<String> {
        let upper = s.to_ascii_uppercase();
        let start = prefixes
            .iter()
            .find_map(|p| upper.find(p).map(|i| i + p.len()))?;
        let rest = &s[start..];
        let first = rest.find(|c: char| c.is_ascii_digit())?;
        let digits: String = rest[first..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        (digits.len() == n).then_some(digits)
    }
    if let Some(org) = cert.subject_attribute("2.5.4.97")
        && let Some(nip) = digits_after(&org, &["VATPL"], 10)
    {
        return Some((("Nip".into(), nip), true));
    }
    if let Some(serial) = cert.subject_attribute("2.5.4.5") {
        if let Some(pesel) = digits_after(&serial, &["PNOPL", "PESEL"], 11) {
            return Some((("Pesel".into(), pesel), false));
        }
        if let Some(nip) = digits_after(&serial, &["TINPL", "NIP"], 10) {
            return Some((("Nip".into(), nip), false));
        }
    }
    None
}

pub(crate) fn xades_signature(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    if let Some(ct) = req.headers.get(header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        if !ct.contains("xml") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Nieobsługiwany typ treści '{ct}'; oczekiwano application/xml."
            )));
        }
    }
    let body = &req.body;
    if body.is_empty() {
        return Err(ApiError::bad(21001, ["Pusta treść żądania.".to_owned()]));
    }
    if std::str::from_utf8(body).is_err() {
        return Err(ApiError::bad(
            21217,
            ["Dokument nie jest poprawnie zakodowany w UTF-8.".to_owned()],
        ));
    }
    let verified = ksef_crypto::xades::verify(body).map_err(|e| {
        let code = e.ksef_code().map(i32::from).unwrap_or(9105);
        ApiError::bad(code, [e.to_string()])
    })?;
    let request =
        AuthTokenRequest::parse(body).map_err(|e| ApiError::bad(21401, [e.to_string()]))?;
    take_challenge(inner, request.challenge.as_str(), req.now)?;

    let cert = verified.certificate();
    let (subject, method) = match request.subject_identifier_type {
        SubjectIdentifierType::CertificateFingerprint => (
            ("Fingerprint".to_owned(), cert.fingerprint_sha256_hex()),
            AuthMethod::QualifiedSignature,
        ),
        _ => match certificate_subject(cert) {
            Some((id, true)) => (id, AuthMethod::QualifiedSeal),
            Some((id, false)) => (id, AuthMethod::QualifiedSignature),
            None => {
                return Err(ApiError::bad(
                    21115,
                    [
                        "Certyfikat nie zawiera identyfikatora podmiotu (NIP lub PESEL)."
                            .to_owned(),
                    ],
                ));
            }
        },
    };
    let context: Ident = (
        request.context.element_name().to_owned(),
        request.context.value().to_owned(),
    );
    let chain_requested = req
        .query("verifyCertificateChain")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let cert_failure = if !cert.is_valid_at(req.now) {
        Some("Nieważny certyfikat")
    } else if chain_requested && cert.is_self_issued() {
        Some("Niezaufany łańcuch certyfikatów")
    } else {
        None
    };
    let doc_hash = ksef_crypto::hash::sha256_base64(body);
    let checked = crate::certificates::on_xades_auth(inner, cert, &context, &doc_hash, req.now);
    let cert_failure = cert_failure.or(checked.failure);
    // A KSeF certificate reports `InternalCertificate`; a provider signing in to its `PeppolId`
    // context `PeppolSignature` (ksef-api.md §17); otherwise the kind the subject attributes
    // tell (seal or personal signature).
    let method = if checked.ksef_certificate {
        AuthMethod::InternalCertificate
    } else if context.0 == "PeppolId" {
        AuthMethod::PeppolSignature
    } else {
        method
    };
    start_operation(
        inner,
        req,
        context,
        subject,
        method,
        OpExtras {
            document_hash: doc_hash,
            token: None,
            allowed_ips: request.allowed_ips.as_ref().and_then(policy_ranges),
        },
        move |_| {
            cert_failure.map(|d| {
                Status::new(
                    460,
                    "Uwierzytelnianie zakończone niepowodzeniem z powodu błędu certyfikatu",
                )
                .with_detail(d)
            })
        },
    )
}

pub(crate) fn ksef_token(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let body: InitTokenAuthenticationRequest = req.json()?;
    let pkid = body.public_key_id.as_ref().map(|b| b.to_base64());
    SimKeys::check_public_key_id(&inner.keys.token, pkid.as_deref()).map_err(|()| {
        ApiError::bad(
            21470,
            [format!("publicKeyId {}", pkid.clone().unwrap_or_default())],
        )
    })?;
    let allowed_ips = json_policy(body.authorization_policy.as_ref())?;
    let ts = take_challenge(inner, body.challenge.0.as_str(), req.now)?;
    let context: Ident = (
        body.context_identifier.r#type.as_str().to_owned(),
        body.context_identifier.value.clone(),
    );
    let decrypted = ksef_crypto::encryption::decrypt_ksef_token(
        &body.encrypted_token.to_base64(),
        &inner.keys.token.key,
    );
    let found = match decrypted {
        Err(_) => Err("Nieprawidłowy token"),
        Ok((_, t)) if t != ts => Err("Nieprawidłowy czas tokena"),
        Ok((token, _)) => {
            crate::tokens::authenticate(&mut inner.state(), token.as_str(), &context, req.now)
        }
    };
    let (subject, token) = match &found {
        Ok((r, author, perms)) => (author.clone(), Some((r.clone(), perms.clone()))),
        Err(_) => (("Nip".to_owned(), String::new()), None),
    };
    let failure = found.err();
    start_operation(
        inner,
        req,
        context,
        subject,
        AuthMethod::Token,
        OpExtras {
            document_hash: String::new(),
            token,
            allowed_ips,
        },
        move |_| {
            failure.map(|f| {
                Status::new(
                    450,
                    "Uwierzytelnianie zakończone niepowodzeniem z powodu błędnego tokenu",
                )
                .with_detail(f)
            })
        },
    )
}

/// The allowed addresses of an authorization policy as inclusive ranges (a mask's host bits
/// are ignored, as `Ip4Mask::contains` does); `None` when the policy lists no address.
/// Inferred: an `AllowedIps` without entries restricts nothing (the docs only describe a
/// policy that lists addresses).
fn policy_ranges(ips: &AllowedIps) -> Option<Vec<(Ipv4Addr, Ipv4Addr)>> {
    let mut ranges: Vec<(Ipv4Addr, Ipv4Addr)> =
        ips.ip4_addresses.iter().map(|a| (*a, *a)).collect();
    ranges.extend(ips.ip4_ranges.iter().map(|r| (r.start(), r.end())));
    ranges.extend(ips.ip4_masks.iter().map(|m| {
        let mask = u32::MAX
            .checked_shl(32 - u32::from(m.prefix()))
            .unwrap_or(0);
        let net = u32::from(m.addr()) & mask;
        (Ipv4Addr::from(net), Ipv4Addr::from(net | !mask))
    }));
    (!ranges.is_empty()).then_some(ranges)
}

/// The JSON `authorizationPolicy` of `POST /auth/ksef-token`, checked like the XSD checks the
/// XML one (the spec's patterns, at most 10 entries of each kind): 21405 otherwise.
fn json_policy(
    policy: Option<&ksef_model::api::AuthorizationPolicy>,
) -> Result<Option<Vec<(Ipv4Addr, Ipv4Addr)>>, ApiError> {
    let Some(allowed) = policy.and_then(|p| p.allowed_ips.as_ref()) else {
        return Ok(None);
    };
    fn parse_all<T>(
        name: &str,
        items: Option<&Vec<String>>,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<Vec<T>, ApiError> {
        let items = items.map(Vec::as_slice).unwrap_or_default();
        if items.len() > MAX_ALLOWED_IPS_PER_KIND {
            return Err(ApiError::validation(format!(
                "authorizationPolicy.allowedIps.{name}: at most {MAX_ALLOWED_IPS_PER_KIND} entries, got {}.",
                items.len()
            )));
        }
        items
            .iter()
            .map(|s| {
                parse(s).ok_or_else(|| {
                    ApiError::validation(format!(
                        "authorizationPolicy.allowedIps.{name}: '{s}' is not a valid value."
                    ))
                })
            })
            .collect()
    }
    let ips = AllowedIps {
        ip4_addresses: parse_all("ip4Addresses", allowed.ip4_addresses.as_ref(), |s| {
            s.parse::<Ipv4Addr>().ok()
        })?,
        ip4_ranges: parse_all("ip4Ranges", allowed.ip4_ranges.as_ref(), |s| {
            s.parse::<Ip4Range>().ok()
        })?,
        ip4_masks: parse_all("ip4Masks", allowed.ip4_masks.as_ref(), |s| {
            s.parse::<Ip4Mask>().ok()
        })?,
    };
    Ok(policy_ranges(&ips))
}

/// Whether `ip` may use the tokens of an operation whose policy allows `ranges` (IPv4 only;
/// an IPv4-mapped IPv6 peer counts as its IPv4 address).
pub(crate) fn ip_allowed(ranges: &[(Ipv4Addr, Ipv4Addr)], ip: IpAddr) -> bool {
    let v4 = match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(a) => match a.to_ipv4_mapped() {
            Some(a) => a,
            None => return false,
        },
    };
    ranges.iter().any(|(start, end)| *start <= v4 && v4 <= *end)
}

/// What an authentication method adds to the operation record.
struct OpExtras {
    /// SHA-256 (Base64) of the signed document (XAdES), for UPOs.
    document_hash: String,
    /// The KSeF token used and its permission set (token authentication).
    token: Option<(String, Vec<String>)>,
    /// The authorization policy (see [`AuthOp::allowed_ips`]).
    allowed_ips: Option<Vec<(Ipv4Addr, Ipv4Addr)>>,
}

/// Records a new authentication operation (status 100), finishes it in the background and
/// answers 202 with the operation token. `failure` may decide a failed outcome up front.
fn start_operation(
    inner: &Arc<Inner>,
    req: &Req,
    context: Ident,
    subject: Ident,
    method: AuthMethod,
    OpExtras {
        document_hash,
        token,
        allowed_ips,
    }: OpExtras,
    failure: impl FnOnce(&AuthOp) -> Option<Status> + Send + 'static,
) -> Result<Response, ApiError> {
    let now = req.now;
    let (reference, jti) = {
        let mut st = inner.state();
        let reference = st.rng.reference(now, ReferenceType::Authentication);
        let jti = st.rng.hex32();
        st.auths.insert(
            reference.clone(),
            AuthOp {
                reference: reference.clone(),
                started: now,
                method,
                context,
                subject,
                status: Status::new(100, "Uwierzytelnianie w toku"),
                redeemed: false,
                refresh_jti: None,
                refresh_valid_until: None,
                last_refresh: None,
                revoked: false,
                document_hash,
                token_ref: token.as_ref().map(|t| t.0.clone()),
                token_permissions: token.map(|t| t.1),
                allowed_ips,
            },
        );
        (reference, jti)
    };
    let until = now + OPERATION_TOKEN_TTL;
    let token = jwt::issue(
        &inner.jwt_secret,
        TokenKind::Operation,
        &reference,
        &jti,
        now.unix_timestamp(),
        until.unix_timestamp(),
        json!({}),
    );
    let task_inner = inner.clone();
    let task_ref = reference.clone();
    tokio::spawn(async move {
        let mut st = task_inner.state();
        let Some(op) = st.auths.get(&task_ref).cloned() else {
            return;
        };
        let blocked = st.blocked.contains(&op.context);
        let outcome = failure(&op).unwrap_or_else(|| {
            if blocked {
                return Status::new(480, "Uwierzytelnienie zablokowane").with_detail(
                    "Podejrzenie incydentu bezpieczeństwa. Skontaktuj się z Ministerstwem Finansów przez formularz zgłoszeniowy.",
                );
            }
            let deceased = st
                .persons
                .iter()
                .any(|p| p.is_deceased && p.pesel == op.subject.1 && op.subject.0 == "Pesel");
            if deceased {
                Status::new(470, "Uwierzytelnianie zakończone niepowodzeniem")
                    .with_detail("Próba wykorzystania metod autoryzacyjnych osoby zmarłej")
            } else if op.token_permissions.is_none()
                && st.permissions(&op.context, &op.subject).is_empty()
            {
                Status::new(415, "Uwierzytelnianie zakończone niepowodzeniem")
                    .with_detail("Brak przypisanych uprawnień")
            } else {
                Status::new(200, "Uwierzytelnianie zakończone sukcesem")
            }
        });
        if let Some(op) = st.auths.get_mut(&task_ref) {
            op.status = outcome;
        }
    });
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &json!({
            "referenceNumber": reference,
            "authenticationToken": {"token": token, "validUntil": rfc3339(until)},
        }),
    ))
}

fn op_json(op: &AuthOp) -> Value {
    let mut v = json!({
        "startDate": rfc3339(op.started),
        "authenticationMethod": op.method.legacy_name(),
        "authenticationMethodInfo": op.method.info(),
        "status": op.status.to_json(),
    });
    if op.status.code == 200 {
        v["isTokenRedeemed"] = json!(op.redeemed);
    }
    if let Some(t) = op.last_refresh {
        v["lastTokenRefreshDate"] = json!(rfc3339(t));
    }
    if let Some(t) = op.refresh_valid_until {
        v["refreshTokenValidUntil"] = json!(rfc3339(t));
    }
    v
}

/// The operation the operation token belongs to; the path reference must match it (21304).
fn own_operation(req: &Req, path_ref: Option<&str>) -> Result<String, ApiError> {
    let claims = req
        .claims
        .as_ref()
        .ok_or_else(|| ApiError::Unauthorized("Wymagane jest uwierzytelnienie.".into()))?;
    if let Some(p) = path_ref
        && p != claims.auth_ref
    {
        return Err(ApiError::bad(
            21304,
            [format!(
                "Operacja uwierzytelnienia {p} nie została znaleziona."
            )],
        ));
    }
    Ok(claims.auth_ref.clone())
}

pub(crate) fn status(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let r = own_operation(req, Some(req.param(0)))?;
    let st = inner.state();
    let op = st
        .auths
        .get(&r)
        .ok_or_else(|| ApiError::bad(21304, [format!("Operacja {r} nie istnieje.")]))?;
    Ok(json_ok(StatusCode::OK, &op_json(op)))
}

fn issue_access(
    inner: &Inner,
    op: &AuthOp,
    jti: &str,
    now: OffsetDateTime,
) -> (String, OffsetDateTime) {
    let until = now + ACCESS_TOKEN_TTL;
    let token = jwt::issue(
        &inner.jwt_secret,
        TokenKind::Access,
        &op.reference,
        jti,
        now.unix_timestamp(),
        until.unix_timestamp(),
        json!({
            "context-identifier-type": op.context.0,
            "context-identifier-value": op.context.1,
            "authentication-method": op.method.legacy_name(),
            "subject-details": json!({"SubjectIdentifier": {"Type": op.subject.0, "Value": op.subject.1}}).to_string(),
        }),
    );
    (token, until)
}

pub(crate) fn redeem(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let r = own_operation(req, None)?;
    let now = req.now;
    let mut st = inner.state();
    let access_jti = st.rng.hex32();
    let refresh_jti = st.rng.hex32();
    let op = st
        .auths
        .get_mut(&r)
        .ok_or_else(|| ApiError::bad(21304, [format!("Operacja {r} nie istnieje.")]))?;
    if op.redeemed {
        return Err(ApiError::bad(
            21301,
            [format!(
                "Tokeny dla operacji uwierzytelniania {r} zostały już pobrane."
            )],
        ));
    }
    if op.status.code != 200 {
        return Err(ApiError::bad(
            21301,
            [format!(
                "Status operacji uwierzytelniania {r} ({}) nie pozwala na pobranie tokenów.",
                op.status.code
            )],
        ));
    }
    op.redeemed = true;
    let refresh_until = now + REFRESH_TOKEN_TTL;
    op.refresh_jti = Some(refresh_jti.clone());
    op.refresh_valid_until = Some(refresh_until);
    let op = op.clone();
    drop(st);
    let (access, access_until) = issue_access(inner, &op, &access_jti, now);
    let refresh = jwt::issue(
        &inner.jwt_secret,
        TokenKind::Refresh,
        &op.reference,
        &refresh_jti,
        now.unix_timestamp(),
        refresh_until.unix_timestamp(),
        json!({}),
    );
    Ok(json_ok(
        StatusCode::OK,
        &json!({
            "accessToken": {"token": access, "validUntil": rfc3339(access_until)},
            "refreshToken": {"token": refresh, "validUntil": rfc3339(refresh_until)},
        }),
    ))
}

pub(crate) fn refresh(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let now = req.now;
    let mut st = inner.state();
    let jti = st.rng.hex32();
    let op = st
        .auths
        .get_mut(&caller.auth_ref)
        .ok_or_else(|| ApiError::bad(21304, ["Operacja nie istnieje.".to_owned()]))?;
    op.last_refresh = Some(now);
    let op = op.clone();
    drop(st);
    let (access, until) = issue_access(inner, &op, &jti, now);
    Ok(json_ok(
        StatusCode::OK,
        &json!({"accessToken": {"token": access, "validUntil": rfc3339(until)}}),
    ))
}

pub(crate) fn list_sessions(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let page_size = page_size(req, 10, 10, 100)?;
    let offset = continuation(req)?;
    let st = inner.state();
    let mut items: Vec<&AuthOp> = st
        .auths
        .values()
        .filter(|a| a.context == caller.context && a.redeemed && !a.revoked)
        .collect();
    items.sort_by(|a, b| {
        b.started
            .cmp(&a.started)
            .then(a.reference.cmp(&b.reference))
    });
    let page: Vec<Value> = items
        .iter()
        .skip(offset)
        .take(page_size)
        .map(|a| {
            let mut v = op_json(a);
            v["referenceNumber"] = json!(a.reference);
            v["isCurrent"] = json!(a.reference == caller.auth_ref);
            v
        })
        .collect();
    let mut body = json!({"items": page});
    if offset + page_size < items.len() {
        body["continuationToken"] = json!(format!("ofs-{}", offset + page_size));
    }
    Ok(json_ok(StatusCode::OK, &body))
}

/// `pageSize` query parameter within `[min, max]` (21405 outside).
pub(crate) fn page_size(
    req: &Req,
    default: usize,
    min: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match req.query("pageSize") {
        None => Ok(default),
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(ApiError::validation(format!(
                "'pageSize' must be between {min} and {max}. You entered {v}."
            ))),
        },
    }
}

/// The `x-continuation-token` request header (the simulator's tokens are `ofs-N`; others 21418).
pub(crate) fn continuation(req: &Req) -> Result<usize, ApiError> {
    match req.headers.get("x-continuation-token") {
        None => Ok(0),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.strip_prefix("ofs-"))
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| ApiError::bad(21418, ["Nieprawidłowy token kontynuacji.".to_owned()])),
    }
}

fn revoke_op(inner: &Inner, reference: &str, context: &Ident) -> Result<(), ApiError> {
    let mut st = inner.state();
    match st.auths.get_mut(reference) {
        Some(op) if &op.context == context => {
            op.revoked = true;
            op.refresh_jti = None;
            op.status = Status::new(425, "Uwierzytelnienie unieważnione").with_detail(
                "Uwierzytelnienie i powiązane refresh tokeny zostały unieważnione przez użytkownika",
            );
            Ok(())
        }
        _ => Err(ApiError::bad(
            21304,
            [format!("Sesja uwierzytelnienia {reference} nie istnieje.")],
        )),
    }
}

pub(crate) fn revoke_current(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    revoke_op(inner, &caller.auth_ref, &caller.context)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

pub(crate) fn revoke(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    revoke_op(inner, req.param(0), &caller.context)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_ranges_cover_addresses_ranges_and_masks() {
        let ips = AllowedIps {
            ip4_addresses: vec![Ipv4Addr::new(10, 0, 0, 1)],
            ip4_ranges: vec!["192.168.1.10-192.168.1.20".parse().unwrap()],
            ip4_masks: vec![
                "172.16.5.5/16".parse().unwrap(),
                "0.0.0.0/0".parse().unwrap(),
            ],
        };
        let r = policy_ranges(&ips).unwrap();
        assert_eq!(
            r[0],
            (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(
            r[2],
            (
                Ipv4Addr::new(172, 16, 0, 0),
                Ipv4Addr::new(172, 16, 255, 255)
            )
        );
        assert_eq!(r[3], (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST));
        assert!(policy_ranges(&AllowedIps::default()).is_none());
        let only = |s: &str| {
            policy_ranges(&AllowedIps {
                ip4_masks: vec![s.parse().unwrap()],
                ..AllowedIps::default()
            })
            .unwrap()
        };
        let local: IpAddr = [127, 0, 0, 1].into();
        assert!(ip_allowed(&only("127.0.0.1/32"), local));
        assert!(!ip_allowed(&only("127.0.0.2/32"), local));
        // IPv6: only an IPv4-mapped peer can match an IPv4 policy.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(ip_allowed(&only("127.0.0.0/8"), mapped));
        let v6: IpAddr = "::1".parse().unwrap();
        assert!(!ip_allowed(&only("0.0.0.0/0"), v6));
    }

    #[test]
    fn subjects_from_fixture_certificates() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/xades/");
        let seal = ksef_crypto::cert::Certificate::from_pem(
            &std::fs::read(format!("{dir}xmlsec1cli-rsa-seal.cert.pem")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            certificate_subject(&seal),
            Some((("Nip".to_owned(), "5265877635".to_owned()), true))
        );
        let personal = ksef_crypto::cert::Certificate::from_pem(
            &std::fs::read(format!("{dir}xmlsec1cli-ec-personal.cert.pem")).unwrap(),
        )
        .unwrap();
        assert_eq!(
            certificate_subject(&personal),
            Some((("Nip".to_owned(), "5265877635".to_owned()), false))
        );
    }
}
