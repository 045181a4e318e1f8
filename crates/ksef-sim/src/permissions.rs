//! Permissions (ksef-api.md §12): the seven grants, the two revokes, their asynchronous operation
//! status, the eight queries and the effective permission set every protected endpoint checks.
//!
//! A grant or revoke is validated synchronously (schema-level problems are 400 21405); the
//! business checks (roles, delegation chains, identifier relations) run in the operation, which
//! is 100 when accepted and then ends with 200 or one of KSeF's failure codes (410, 430, 440,
//! 450, 400). A grant takes effect when its operation succeeds.

use std::collections::HashMap;
use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::Response;
use ksef_model::ids::{InternalId, Nip, NipVatUe, PeppolId, Pesel, ReferenceType};
use ksef_model::operations::OperationId;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::ids::rfc3339;
use crate::server::{Caller, Inner, Req, json_ok};
use crate::state::{Grant, Ident, State, Status};

/// How long KSeF keeps a permission operation's status (then 410 Gone).
const OPERATION_RETENTION: time::Duration = time::Duration::days(30);

/// The permissions of a context's owner (all but `VatUeManage`).
const OWNER_PERMISSIONS: &[&str] = &[
    "InvoiceWrite",
    "InvoiceRead",
    "CredentialsManage",
    "CredentialsRead",
    "Introspection",
    "SubunitManage",
];

/// What kind of grant a [`Grant`] is (which endpoint made it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub(crate) enum Kind {
    /// `/testdata/permissions` (ZAW-FA).
    #[default]
    TestData,
    /// `/permissions/persons/grants`.
    Person,
    /// `/permissions/entities/grants`: `context` granted `subject` (a NIP) invoice handling.
    Entity,
    /// `/permissions/authorizations/grants`: self-invoicing, RR, tax representative, PEF.
    Authorization,
    /// `/permissions/indirect/grants`: granted in the intermediary's context (`granted_in`) for
    /// `target` (a client, or all partners).
    Indirect,
    /// `/permissions/subunits/grants`: `CredentialsManage` in a subunit's context.
    Subunit,
    /// `/permissions/eu-entities/administration/grants`.
    EuAdmin,
    /// `/permissions/eu-entities/grants`.
    EuRep,
}

/// Everything a grant carries beyond `(context, subject, permission)`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct GrantMeta {
    /// The permission id (36 characters), used by queries and revokes.
    pub id: String,
    pub kind: Kind,
    /// The context the grant was made in (the parent for subunits and EU entities).
    pub granted_in: Ident,
    /// Who granted it (`("System", "")` for test data).
    pub author: Ident,
    pub description: String,
    pub can_delegate: bool,
    /// Indirect grants: the client (`Nip`/`InternalId`) or `("AllPartners", "")`.
    pub target: Option<Ident>,
    /// `subjectPersonDetails` as the queries return it.
    pub person_details: Option<Value>,
    /// `subjectEntityDetails` as the queries return it.
    pub entity_details: Option<Value>,
    /// EU entity administration: `(euEntityName, euEntityDetails)`.
    pub eu_entity: Option<(String, Value)>,
    pub subunit_name: Option<String>,
    pub start: Option<OffsetDateTime>,
}

/// A role of an entity (from `/testdata/subject` and `/testdata/person`).
/// Read back through `persist::RoleRepr` (the role name is a `&'static str`).
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Role {
    pub nip: String,
    pub role: &'static str,
    pub parent: Option<String>,
    pub description: String,
    pub start: OffsetDateTime,
}

/// A permission operation (`EG` reference).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Operation {
    pub context: Ident,
    pub created: OffsetDateTime,
    pub status: Status,
}

/// This area's state (one field of [`State`]).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub(crate) struct PermState {
    pub operations: HashMap<String, Operation>,
    pub roles: Vec<Role>,
}

/// A fresh permission id: 36 characters, UUID-shaped.
pub(crate) fn new_id(st: &mut State) -> String {
    let h = st.rng.hex32();
    format!(
        "{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

fn has_role(st: &State, nip: &str, roles: &[&str]) -> bool {
    st.perm
        .roles
        .iter()
        .any(|r| r.nip == nip && roles.contains(&r.role))
}

/// Whether an indirect grant's chain is complete for `client`: the client granted the
/// intermediary `permission` with the right to delegate it.
fn chain_complete(st: &State, intermediary: &Ident, client: &Ident, permission: &str) -> bool {
    let client_nip = match client.0.as_str() {
        "Nip" => client.1.clone(),
        "InternalId" => client.1.get(..10).unwrap_or_default().to_owned(),
        _ => return false,
    };
    st.grants.iter().any(|e| {
        e.meta.kind == Kind::Entity
            && e.context == ("Nip".to_owned(), client_nip.clone())
            && &e.subject == intermediary
            && e.permission == permission
            && e.meta.can_delegate
    })
}

/// The permissions `subject` holds in `context`: owner rights, direct grants of every kind,
/// invoice permissions granted to the entity the subject owns, and indirect grants whose
/// delegation chain is complete.
pub(crate) fn effective(st: &State, context: &Ident, subject: &Ident) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if st.is_owner(context, subject) {
        out.extend(OWNER_PERMISSIONS.iter().map(|s| (*s).to_owned()));
        if has_role(st, &context.1, &["EnforcementAuthority", "CourtBailiff"]) {
            out.push("EnforcementOperations".into());
        }
    }
    // A Peppol service provider (registered by its first certificate login in its `PeppolId`
    // context) may send PEF invoices there (ksef-api.md §17). Inferred: on TEST anyone signing
    // in to a `PeppolId` context is that provider, so every subject there holds it.
    if context.0 == "PeppolId" && st.certs.peppol.iter().any(|p| p.id == context.1) {
        out.push("PefInvoiceWrite".into());
    }
    for g in &st.grants {
        let applies = match g.meta.kind {
            Kind::TestData | Kind::Person | Kind::Subunit | Kind::EuAdmin | Kind::EuRep => {
                &g.context == context && &g.subject == subject
            }
            Kind::Entity => {
                &g.context == context && (&g.subject == subject || st.is_owner(&g.subject, subject))
            }
            Kind::Authorization => false,
            Kind::Indirect => {
                &g.subject == subject
                    && match &g.meta.target {
                        Some(t) if t.0 == "AllPartners" => true,
                        Some(t) => t == context,
                        None => true,
                    }
                    && chain_complete(st, &g.meta.granted_in, context, &g.permission)
            }
        };
        if applies {
            out.push(g.permission.clone());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Handles this area's operations; `None` for any other operation (the dispatcher then tries the
/// next area).
pub(crate) fn handle(inner: &Arc<Inner>, req: &Req) -> Option<Result<Response, ApiError>> {
    let r = match req.op.id {
        OperationId::GrantPersonPermissions => grant_persons(inner, req),
        OperationId::GrantEntityPermissions => grant_entities(inner, req),
        OperationId::GrantAuthorizationPermissions => grant_authorization(inner, req),
        OperationId::GrantIndirectPermissions => grant_indirect(inner, req),
        OperationId::GrantSubunitPermissions => grant_subunit(inner, req),
        OperationId::GrantEuEntityAdministrationPermissions => grant_eu_admin(inner, req),
        OperationId::GrantEuEntityRepresentativePermissions => grant_eu_rep(inner, req),
        OperationId::RevokeCommonPermission => revoke(inner, req, false),
        OperationId::RevokeAuthorizationPermission => revoke(inner, req, true),
        OperationId::PermissionOperationStatus => operation_status(inner, req),
        OperationId::QueryPersonalPermissions => query_personal(inner, req),
        OperationId::QueryPersonPermissions => query_persons(inner, req),
        OperationId::QuerySubunitPermissions => query_subunits(inner, req),
        OperationId::QueryEntityPermissions => query_entities(inner, req),
        OperationId::QueryEntityRoles => query_roles(inner, req),
        OperationId::QuerySubordinateEntityRoles => query_subordinates(inner, req),
        OperationId::QueryAuthorizationPermissions => query_authorizations(inner, req),
        OperationId::QueryEuEntityPermissions => query_eu(inner, req),
        _ => return None,
    };
    Some(r)
}

// ---------------------------------------------------------------------------------------------
// Request validation helpers (KSeF answers 400 21405 with the validator's message).

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::validation(msg)
}

/// The JSON body as an object (an empty body counts as `{}` for the queries).
fn body(req: &Req) -> Result<Value, ApiError> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let v: Value = req.json()?;
    if !v.is_object() {
        return Err(bad("The request body must be a JSON object."));
    }
    Ok(v)
}

/// A present, non-null member.
fn opt<'a>(v: &'a Value, field: &str) -> Option<&'a Value> {
    v.get(field).filter(|x| !x.is_null())
}

fn required<'a>(v: &'a Value, field: &str) -> Result<&'a Value, ApiError> {
    opt(v, field).ok_or_else(|| bad(format!("'{field}' is required.")))
}

fn string(v: &Value, field: &str, min: usize, max: usize) -> Result<String, ApiError> {
    let s = required(v, field)?
        .as_str()
        .ok_or_else(|| bad(format!("'{field}' must be a string.")))?;
    let n = s.chars().count();
    if n < min || n > max {
        return Err(bad(format!(
            "'{field}' must be between {min} and {max} characters. You entered {n} characters."
        )));
    }
    Ok(s.to_owned())
}

fn description(v: &Value) -> Result<String, ApiError> {
    string(v, "description", 5, 256)
}

/// Checks an identifier value against its type's format; returns the canonical value.
fn check_value(kind: &str, value: &str, field: &str) -> Result<String, ApiError> {
    let err = |e: ksef_model::IdError| bad(format!("'{field}.value': {e}"));
    Ok(match kind {
        "Nip" => Nip::parse_lenient(value).map_err(err)?.as_str().to_owned(),
        "Pesel" => Pesel::parse_lenient(value)
            .map_err(err)?
            .as_str()
            .to_owned(),
        "InternalId" => value
            .parse::<InternalId>()
            .map_err(err)?
            .as_str()
            .to_owned(),
        "NipVatUe" => value.parse::<NipVatUe>().map_err(err)?.as_str().to_owned(),
        "PeppolId" => value.parse::<PeppolId>().map_err(err)?.as_str().to_owned(),
        "Fingerprint" => {
            if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad(format!(
                    "'{field}.value' must be a SHA-256 fingerprint (64 hexadecimal characters)."
                )));
            }
            value.to_ascii_uppercase()
        }
        _ => value.to_owned(),
    })
}

/// An identifier object `{type, value}` whose type is one of `allowed` (`AllPartners` and
/// `System` take no value).
fn ident(v: &Value, field: &str, allowed: &[&str]) -> Result<Ident, ApiError> {
    let o = required(v, field)?;
    let kind = o
        .get("type")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("'{field}.type' is required.")))?;
    if !allowed.contains(&kind) {
        return Err(bad(format!(
            "'{field}.type' has a range of values which does not include '{kind}'; expected one of {allowed:?}."
        )));
    }
    if kind == "AllPartners" || kind == "System" {
        return Ok((kind.to_owned(), String::new()));
    }
    let value = o
        .get("value")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("'{field}.value' is required.")))?;
    Ok((kind.to_owned(), check_value(kind, value, field)?))
}

fn opt_ident(v: &Value, field: &str, allowed: &[&str]) -> Result<Option<Ident>, ApiError> {
    match opt(v, field) {
        None => Ok(None),
        Some(_) => ident(v, field, allowed).map(Some),
    }
}

/// A non-empty list of distinct enum values from `allowed`.
fn enum_list(v: &Value, field: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    let list = required(v, field)?
        .as_array()
        .ok_or_else(|| bad(format!("'{field}' must be an array.")))?;
    if list.is_empty() {
        return Err(bad(format!("'{field}' must not be empty.")));
    }
    let mut out: Vec<String> = Vec::new();
    for x in list {
        let s = x
            .as_str()
            .ok_or_else(|| bad(format!("'{field}' must contain strings.")))?;
        if !allowed.contains(&s) {
            return Err(bad(format!(
                "'{field}' has a range of values which does not include '{s}'."
            )));
        }
        if out.iter().any(|o| o == s) {
            return Err(bad(format!(
                "'{field}': each value may occur only once ('{s}')."
            )));
        }
        out.push(s.to_owned());
    }
    Ok(out)
}

/// An optional filter list of enum values.
fn opt_enum_list(v: &Value, field: &str, allowed: &[&str]) -> Result<Vec<String>, ApiError> {
    match opt(v, field) {
        None => Ok(Vec::new()),
        Some(a) if a.as_array().is_some_and(Vec::is_empty) => Ok(Vec::new()),
        Some(_) => enum_list(v, field, allowed),
    }
}

fn one_of(v: &Value, field: &str, allowed: &[&str]) -> Result<String, ApiError> {
    let s = required(v, field)?
        .as_str()
        .ok_or_else(|| bad(format!("'{field}' must be a string.")))?;
    if !allowed.contains(&s) {
        return Err(bad(format!(
            "'{field}' has a range of values which does not include '{s}'."
        )));
    }
    Ok(s.to_owned())
}

fn id_json(i: &Ident) -> Value {
    if i.1.is_empty() {
        json!({"type": i.0})
    } else {
        json!({"type": i.0, "value": i.1})
    }
}

/// `{firstName, lastName}` of a person's details (2–30 and 2–81 characters).
fn names(v: &Value, field: &str) -> Result<(String, String), ApiError> {
    let o = required(v, field)?;
    Ok((
        string(o, "firstName", 2, 30)?,
        string(o, "lastName", 2, 81)?,
    ))
}

/// Validates a person's `subjectDetails` against the subject identifier's type and returns the
/// `subjectPersonDetails` / `subjectEntityDetails` the queries show.
fn person_details(v: &Value, subject: &Ident) -> Result<(Option<Value>, Option<Value>), ApiError> {
    let d = required(v, "subjectDetails")?;
    let kind = one_of(
        d,
        "subjectDetailsType",
        &[
            "PersonByIdentifier",
            "PersonByFingerprintWithIdentifier",
            "PersonByFingerprintWithoutIdentifier",
            "EntityByFingerprint",
        ],
    )?;
    let fingerprint = subject.0 == "Fingerprint";
    let mismatch = || {
        bad(format!(
            "'subjectDetails.subjectDetailsType' {kind} does not fit a subject identified by {}.",
            subject.0
        ))
    };
    match kind.as_str() {
        "PersonByIdentifier" => {
            if fingerprint {
                return Err(mismatch());
            }
            let (first, last) = names(d, "personById")?;
            Ok((
                Some(
                    json!({"subjectDetailsType": kind, "firstName": first, "lastName": last,
                            "personIdentifier": id_json(subject)}),
                ),
                None,
            ))
        }
        "PersonByFingerprintWithIdentifier" => {
            if !fingerprint {
                return Err(mismatch());
            }
            let (first, last) = names(d, "personByFpWithId")?;
            let id = ident(
                required(d, "personByFpWithId")?,
                "identifier",
                &["Pesel", "Nip"],
            )?;
            Ok((
                Some(
                    json!({"subjectDetailsType": kind, "firstName": first, "lastName": last,
                            "personIdentifier": id_json(&id)}),
                ),
                None,
            ))
        }
        "PersonByFingerprintWithoutIdentifier" => {
            if !fingerprint {
                return Err(mismatch());
            }
            let (first, last) = names(d, "personByFpNoId")?;
            let o = required(d, "personByFpNoId")?;
            let birth = string(o, "birthDate", 10, 10)?;
            if time::Date::parse(&birth, &time::format_description::well_known::Iso8601::DATE)
                .is_err()
            {
                return Err(bad(
                    "'personByFpNoId.birthDate' must be a date (YYYY-MM-DD).",
                ));
            }
            let doc = required(o, "idDocument")?;
            let country = string(doc, "country", 2, 2)?;
            if !country.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(bad(
                    "'idDocument.country' must be an ISO 3166-1 alpha-2 code (2 capital letters).",
                ));
            }
            Ok((
                Some(
                    json!({"subjectDetailsType": kind, "firstName": first, "lastName": last,
                            "birthDate": birth,
                            "idDocument": {"type": string(doc, "type", 1, 20)?,
                                           "number": string(doc, "number", 1, 20)?,
                                           "country": country}}),
                ),
                None,
            ))
        }
        _ => {
            if !fingerprint {
                return Err(mismatch());
            }
            let o = required(d, "entityByFp")?;
            Ok((
                None,
                Some(json!({"subjectDetailsType": "EntityByFingerprint",
                            "fullName": string(o, "fullName", 1, 100)?,
                            "address": string(o, "address", 1, 512)?})),
            ))
        }
    }
}

/// `subjectDetails: {fullName}` of an entity grant.
fn entity_details(v: &Value) -> Result<Value, ApiError> {
    let d = required(v, "subjectDetails")?;
    Ok(json!({"subjectDetailsType": "EntityByIdentifier",
              "fullName": string(d, "fullName", 5, 90)?}))
}

// ---------------------------------------------------------------------------------------------
// Operations

/// What an operation does once accepted.
enum Action {
    Grant(Vec<Grant>),
    Revoke { id: String, authorization: bool },
}

/// A grant skeleton made in the caller's context (`start` is set when the operation runs).
fn grant(caller: &Caller, kind: Kind, context: Ident, subject: Ident) -> Grant {
    Grant {
        context,
        subject,
        permission: String::new(),
        meta: GrantMeta {
            id: String::new(),
            kind,
            granted_in: caller.context.clone(),
            author: caller.subject.clone(),
            ..GrantMeta::default()
        },
    }
}

/// One grant per permission, each with a fresh id.
fn per_permission(st: &mut State, base: &Grant, perms: &[(String, bool)]) -> Vec<Grant> {
    perms
        .iter()
        .map(|(p, delegate)| {
            let mut g = base.clone();
            g.permission = p.clone();
            g.meta.can_delegate = *delegate;
            g.meta.id = new_id(st);
            g
        })
        .collect()
}

/// Registers the operation (status 100) and runs it in the background; answers 202.
fn start(inner: &Arc<Inner>, req: &Req, action: Action) -> Result<Response, ApiError> {
    let caller = req.caller()?.clone();
    let now = req.now;
    let reference = {
        let mut st = inner.state();
        let reference = st.rng.reference(now, ReferenceType::PermissionOperation);
        st.perm.operations.insert(
            reference.clone(),
            Operation {
                context: caller.context.clone(),
                created: now,
                status: Status::new(100, "Operacja przyjęta do realizacji"),
            },
        );
        reference
    };
    let task_inner = inner.clone();
    let task_ref = reference.clone();
    tokio::spawn(async move {
        let mut st = task_inner.state();
        let status = execute(&mut st, &caller, action, now);
        if let Some(op) = st.perm.operations.get_mut(&task_ref) {
            op.status = status;
        }
    });
    Ok(json_ok(
        StatusCode::ACCEPTED,
        &json!({"referenceNumber": reference}),
    ))
}

fn failure(code: i32, detail: impl Into<String>) -> Status {
    let description = match code {
        410 => "Podane identyfikatory są niezgodne lub pozostają w niewłaściwej relacji",
        420 => "Użyte poświadczenia nie mają uprawnień do wykonania tej operacji",
        430 => "Kontekst identyfikatora nie odpowiada wymaganej roli lub uprawnieniom",
        440 => "Operacja niedozwolona dla wskazanych powiązań identyfikatorów",
        450 => "Operacja niedozwolona dla wskazanego identyfikatora lub jego typu",
        _ => "Operacja zakończona niepowodzeniem",
    };
    Status::new(code, description).with_detail(detail)
}

/// The business checks of an operation, then its effect. Runs under the state lock.
fn execute(st: &mut State, caller: &Caller, action: Action, now: OffsetDateTime) -> Status {
    match action {
        Action::Grant(grants) => {
            if let Some(first) = grants.first()
                && let Err(s) = check_grant(st, caller, first, &grants)
            {
                return s;
            }
            for mut g in grants {
                g.meta.start = Some(now);
                let exists = st.grants.iter().any(|e| {
                    e.context == g.context
                        && e.subject == g.subject
                        && e.permission == g.permission
                        && e.meta.kind == g.meta.kind
                        && e.meta.target == g.meta.target
                        && e.meta.granted_in == g.meta.granted_in
                });
                if exists {
                    // Granting again refreshes the description and delegation flag.
                    if let Some(e) = st.grants.iter_mut().find(|e| {
                        e.context == g.context
                            && e.subject == g.subject
                            && e.permission == g.permission
                            && e.meta.kind == g.meta.kind
                            && e.meta.target == g.meta.target
                    }) {
                        e.meta.description = g.meta.description.clone();
                        e.meta.can_delegate = g.meta.can_delegate;
                    }
                } else {
                    st.grants.push(g);
                }
            }
            Status::new(200, "Operacja zakończona sukcesem")
        }
        Action::Revoke { id, authorization } => {
            let Some(pos) = st.grants.iter().position(|g| g.meta.id == id) else {
                return failure(400, format!("Uprawnienie {id} nie istnieje."));
            };
            let g = &st.grants[pos];
            if g.meta.kind == Kind::TestData {
                return failure(
                    450,
                    "Uprawnienia nadane przez /testdata odbiera się przez /testdata/permissions/revoke.",
                );
            }
            if authorization != (g.meta.kind == Kind::Authorization) {
                return failure(
                    450,
                    if authorization {
                        format!(
                            "Uprawnienie {id} nie jest uprawnieniem podmiotowym; użyj DELETE /permissions/common/grants/{id}."
                        )
                    } else {
                        format!(
                            "Uprawnienie {id} jest uprawnieniem podmiotowym; użyj DELETE /permissions/authorizations/grants/{id}."
                        )
                    },
                );
            }
            // Revocable from the context it was granted in, or (EU representatives) from the
            // EU entity's context by its administrator.
            let allowed = g.meta.granted_in == caller.context || g.context == caller.context;
            if !allowed {
                return failure(400, format!("Uprawnienie {id} nie istnieje."));
            }
            st.grants.remove(pos);
            Status::new(200, "Operacja zakończona sukcesem")
        }
    }
}

fn check_grant(st: &State, caller: &Caller, first: &Grant, all: &[Grant]) -> Result<(), Status> {
    let ctx = &caller.context;
    match first.meta.kind {
        Kind::Person => {
            if all.iter().any(|g| g.permission == "EnforcementOperations")
                && !has_role(st, &ctx.1, &["EnforcementAuthority", "CourtBailiff"])
            {
                return Err(failure(
                    430,
                    "Uprawnienie EnforcementOperations można nadać wyłącznie w kontekście organu egzekucyjnego lub komornika sądowego.",
                ));
            }
        }
        Kind::Entity | Kind::Authorization => {
            if &first.subject == ctx {
                return Err(failure(
                    440,
                    "Podmiot nie może nadać uprawnienia samemu sobie.",
                ));
            }
        }
        Kind::Indirect => {
            if ctx.0 != "Nip" {
                return Err(failure(
                    430,
                    "Uprawnienia pośrednie nadaje się w kontekście NIP pośrednika.",
                ));
            }
            if let Some(t) = &first.meta.target
                && t.0 != "AllPartners"
            {
                for g in all {
                    if !chain_complete(st, ctx, t, &g.permission) {
                        return Err(failure(
                            440,
                            format!(
                                "Klient {} nie nadał podmiotowi {} uprawnienia {} z prawem do dalszego przekazywania.",
                                t.1, ctx.1, g.permission
                            ),
                        ));
                    }
                }
            }
        }
        Kind::Subunit => {
            let sub = &first.context;
            if sub.0 == "InternalId" {
                if sub.1.get(..10) != Some(ctx.1.as_str()) {
                    return Err(failure(
                        410,
                        format!(
                            "Identyfikator wewnętrzny {} nie należy do podmiotu {}.",
                            sub.1, ctx.1
                        ),
                    ));
                }
            } else {
                let parent = st.perm.roles.iter().any(|r| {
                    r.nip == sub.1
                        && r.parent.as_deref() == Some(ctx.1.as_str())
                        && matches!(r.role, "LocalGovernmentSubUnit" | "VatGroupSubUnit")
                });
                if !parent {
                    return Err(failure(
                        430,
                        format!(
                            "Podmiot {} nie jest podmiotem nadrzędnym (JST lub grupa VAT) dla {}.",
                            ctx.1, sub.1
                        ),
                    ));
                }
            }
        }
        Kind::EuAdmin => {
            if ctx.0 != "Nip" || first.context.1.get(..10) != Some(ctx.1.as_str()) {
                return Err(failure(
                    410,
                    format!(
                        "Kontekst złożony {} nie zaczyna się od NIP kontekstu {}.",
                        first.context.1, ctx.1
                    ),
                ));
            }
        }
        Kind::EuRep => {
            if ctx.0 != "NipVatUe" {
                return Err(failure(
                    430,
                    "Reprezentantów podmiotu unijnego nadaje się w kontekście złożonym NIP-VAT UE.",
                ));
            }
        }
        Kind::TestData => {}
    }
    Ok(())
}

const PERSON_PERMISSIONS: &[&str] = &[
    "CredentialsManage",
    "CredentialsRead",
    "InvoiceWrite",
    "InvoiceRead",
    "Introspection",
    "SubunitManage",
    "EnforcementOperations",
    "CollectiveIdentifierManage",
];

fn grant_persons(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let subject = ident(&v, "subjectIdentifier", &["Nip", "Pesel", "Fingerprint"])?;
    let perms = enum_list(&v, "permissions", PERSON_PERMISSIONS)?;
    let description = description(&v)?;
    let (person, entity) = person_details(&v, &subject)?;
    if entity.is_some() {
        return Err(bad(
            "'subjectDetails.subjectDetailsType' EntityByFingerprint is not allowed for persons.",
        ));
    }
    let mut st = inner.state();
    let mut base = grant(caller, Kind::Person, caller.context.clone(), subject);
    base.meta.description = description;
    base.meta.person_details = person;
    let perms: Vec<(String, bool)> = perms.into_iter().map(|p| (p, false)).collect();
    let grants = per_permission(&mut st, &base, &perms);
    drop(st);
    start(inner, req, Action::Grant(grants))
}

fn grant_entities(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let subject = ident(&v, "subjectIdentifier", &["Nip"])?;
    let list = required(&v, "permissions")?
        .as_array()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| bad("'permissions' must be a non-empty array."))?;
    let mut perms: Vec<(String, bool)> = Vec::new();
    for p in list {
        let t = one_of(p, "type", &["InvoiceWrite", "InvoiceRead"])?;
        if perms.iter().any(|(x, _)| *x == t) {
            return Err(bad(format!(
                "'permissions': each value may occur only once ('{t}')."
            )));
        }
        let delegate = match opt(p, "canDelegate") {
            None => false,
            Some(b) => b
                .as_bool()
                .ok_or_else(|| bad("'canDelegate' must be a boolean."))?,
        };
        perms.push((t, delegate));
    }
    let description = description(&v)?;
    let details = entity_details(&v)?;
    let mut st = inner.state();
    let mut base = grant(caller, Kind::Entity, caller.context.clone(), subject);
    base.meta.description = description;
    base.meta.entity_details = Some(details);
    let grants = per_permission(&mut st, &base, &perms);
    drop(st);
    start(inner, req, Action::Grant(grants))
}

fn grant_authorization(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let subject = ident(&v, "subjectIdentifier", &["Nip", "PeppolId"])?;
    let permission = one_of(
        &v,
        "permission",
        &[
            "SelfInvoicing",
            "RRInvoicing",
            "TaxRepresentative",
            "PefInvoicing",
        ],
    )?;
    if subject.0 == "PeppolId" && permission != "PefInvoicing" {
        return Err(bad(
            "A Peppol provider (PeppolId) can only receive the PefInvoicing authorization.",
        ));
    }
    let description = description(&v)?;
    let details = entity_details(&v)?;
    let mut st = inner.state();
    let mut base = grant(caller, Kind::Authorization, caller.context.clone(), subject);
    base.meta.description = description;
    base.meta.entity_details = Some(details);
    let grants = per_permission(&mut st, &base, &[(permission, false)]);
    drop(st);
    start(inner, req, Action::Grant(grants))
}

fn grant_indirect(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let subject = ident(&v, "subjectIdentifier", &["Nip", "Pesel", "Fingerprint"])?;
    let target = opt_ident(
        &v,
        "targetIdentifier",
        &["Nip", "AllPartners", "InternalId"],
    )?
    .unwrap_or_else(|| ("AllPartners".to_owned(), String::new()));
    let perms = enum_list(&v, "permissions", &["InvoiceRead", "InvoiceWrite"])?;
    let description = description(&v)?;
    let (person, entity) = person_details(&v, &subject)?;
    if entity.is_some() {
        return Err(bad(
            "'subjectDetails.subjectDetailsType' EntityByFingerprint is not allowed here.",
        ));
    }
    let mut st = inner.state();
    let mut base = grant(caller, Kind::Indirect, caller.context.clone(), subject);
    base.meta.description = description;
    base.meta.person_details = person;
    base.meta.target = Some(target);
    let perms: Vec<(String, bool)> = perms.into_iter().map(|p| (p, false)).collect();
    let grants = per_permission(&mut st, &base, &perms);
    drop(st);
    start(inner, req, Action::Grant(grants))
}

fn grant_subunit(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let subject = ident(&v, "subjectIdentifier", &["Nip", "Pesel", "Fingerprint"])?;
    let context = ident(&v, "contextIdentifier", &["InternalId", "Nip"])?;
    let description = description(&v)?;
    let name = match opt(&v, "subunitName") {
        None => None,
        Some(_) => Some(string(&v, "subunitName", 5, 256)?),
    };
    if context.0 == "InternalId" && name.is_none() {
        return Err(bad(
            "'subunitName' is required when the subunit is identified by an InternalId.",
        ));
    }
    let (person, entity) = person_details(&v, &subject)?;
    let mut st = inner.state();
    let mut base = grant(caller, Kind::Subunit, context, subject);
    base.meta.description = description;
    base.meta.person_details = person;
    base.meta.entity_details = entity;
    base.meta.subunit_name = name;
    let grants = per_permission(&mut st, &base, &[("CredentialsManage".into(), false)]);
    drop(st);
    start(inner, req, Action::Grant(grants))
}

fn grant_eu_admin(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let subject = ident(&v, "subjectIdentifier", &["Fingerprint"])?;
    let context = ident(&v, "contextIdentifier", &["NipVatUe"])?;
    let description = description(&v)?;
    let name = string(&v, "euEntityName", 5, 256)?;
    let eu = required(&v, "euEntityDetails")?;
    let eu = json!({"fullName": string(eu, "fullName", 1, 100)?,
                    "address": string(eu, "address", 1, 512)?});
    let (person, entity) = person_details(&v, &subject)?;
    let mut st = inner.state();
    let mut base = grant(caller, Kind::EuAdmin, context, subject);
    base.meta.description = description;
    base.meta.person_details = person;
    base.meta.entity_details = entity;
    base.meta.eu_entity = Some((name, eu));
    let perms: Vec<(String, bool)> = [
        "VatUeManage",
        "InvoiceWrite",
        "InvoiceRead",
        "Introspection",
    ]
    .iter()
    .map(|p| ((*p).to_owned(), false))
    .collect();
    let grants = per_permission(&mut st, &base, &perms);
    drop(st);
    start(inner, req, Action::Grant(grants))
}

fn grant_eu_rep(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let subject = ident(&v, "subjectIdentifier", &["Fingerprint"])?;
    let perms = enum_list(&v, "permissions", &["InvoiceWrite", "InvoiceRead"])?;
    let description = description(&v)?;
    let (person, entity) = person_details(&v, &subject)?;
    let mut st = inner.state();
    // The EU entity's name and details come from its administration grant.
    let eu = st
        .grants
        .iter()
        .find(|g| g.meta.kind == Kind::EuAdmin && g.context == caller.context)
        .and_then(|g| g.meta.eu_entity.clone());
    let mut base = grant(caller, Kind::EuRep, caller.context.clone(), subject);
    base.meta.description = description;
    base.meta.person_details = person;
    base.meta.entity_details = entity;
    base.meta.eu_entity = eu;
    let perms: Vec<(String, bool)> = perms.into_iter().map(|p| (p, false)).collect();
    let grants = per_permission(&mut st, &base, &perms);
    drop(st);
    start(inner, req, Action::Grant(grants))
}

fn revoke(inner: &Arc<Inner>, req: &Req, authorization: bool) -> Result<Response, ApiError> {
    let id = req.param(0).to_owned();
    if id.chars().count() != 36 {
        return Err(bad(format!(
            "'permissionId' must be 36 characters long. You entered {} characters.",
            id.chars().count()
        )));
    }
    start(inner, req, Action::Revoke { id, authorization })
}

fn operation_status(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let reference = req.param(0);
    let st = inner.state();
    let op = st
        .perm
        .operations
        .get(reference)
        .filter(|op| op.context == caller.context)
        .ok_or_else(|| {
            ApiError::bad(
                21405,
                [format!(
                    "Operacja o numerze referencyjnym {reference} nie istnieje."
                )],
            )
        })?;
    if req.now - op.created > OPERATION_RETENTION {
        return Err(ApiError::Gone(format!(
            "Status operacji {reference} był dostępny przez 30 dni i został usunięty."
        )));
    }
    Ok(json_ok(
        StatusCode::OK,
        &json!({"status": op.status.to_json()}),
    ))
}

// ---------------------------------------------------------------------------------------------
// Queries

/// `(pageOffset, pageSize)`: offset ≥ 0 (default 0), size 10–100 (default 10).
fn paging(req: &Req) -> Result<(usize, usize), ApiError> {
    let num = |name: &str, default: usize| -> Result<usize, ApiError> {
        match req.query(name) {
            None | Some("") => Ok(default),
            Some(s) => s
                .parse::<usize>()
                .map_err(|_| bad(format!("'{name}' must be a non-negative integer."))),
        }
    };
    let offset = num("pageOffset", 0)?;
    let size = num("pageSize", 10)?;
    if !(10..=100).contains(&size) {
        return Err(bad(format!(
            "'pageSize' must be between 10 and 100. You entered {size}."
        )));
    }
    Ok((offset, size))
}

/// Sorts (startDate Desc, id Asc) and cuts one page; returns the page and `hasMore`.
fn page(
    req: &Req,
    mut rows: Vec<(OffsetDateTime, String, Value)>,
) -> Result<(Vec<Value>, bool), ApiError> {
    let (offset, size) = paging(req)?;
    rows.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    let start = offset.saturating_mul(size);
    let has_more = rows.len() > start.saturating_add(size);
    Ok((
        rows.into_iter()
            .skip(start)
            .take(size)
            .map(|r| r.2)
            .collect(),
        has_more,
    ))
}

fn start_of(g: &Grant) -> OffsetDateTime {
    g.meta.start.unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `Active`, or `Inactive` for an indirect grant whose delegation chain is broken.
fn state_of(st: &State, g: &Grant) -> &'static str {
    match (&g.meta.kind, &g.meta.target) {
        (Kind::Indirect, Some(t)) if t.0 != "AllPartners" => {
            if chain_complete(st, &g.meta.granted_in, t, &g.permission) {
                "Active"
            } else {
                "Inactive"
            }
        }
        _ => "Active",
    }
}

fn author_json(g: &Grant) -> Value {
    if g.meta.author.0 == "System" {
        json!({"type": "System"})
    } else {
        id_json(&g.meta.author)
    }
}

/// The fields a row of the personal and the persons query share.
fn person_row(st: &State, g: &Grant, shown: Option<&Ident>) -> Value {
    let mut o = json!({
        "id": g.meta.id,
        "permissionScope": g.permission,
        "description": g.meta.description,
        "permissionState": state_of(st, g),
        "startDate": rfc3339(start_of(g)),
        "canDelegate": g.meta.can_delegate,
    });
    if let Some(c) = shown {
        o["contextIdentifier"] = id_json(c);
    }
    if let Some(t) = &g.meta.target {
        o["targetIdentifier"] = id_json(t);
    }
    insert_details(&mut o, g);
    o
}

fn insert_details(o: &mut Value, g: &Grant) {
    if let Some(p) = &g.meta.person_details {
        o["subjectPersonDetails"] = p.clone();
    }
    if let Some(e) = &g.meta.entity_details {
        o["subjectEntityDetails"] = e.clone();
    }
}

/// Common filters of the personal and persons queries.
struct PersonFilter {
    context: Option<Ident>,
    target: Option<Ident>,
    types: Vec<String>,
    state: Option<String>,
}

impl PersonFilter {
    fn parse(v: &Value, scopes: &[&str]) -> Result<Self, ApiError> {
        Ok(PersonFilter {
            context: opt_ident(v, "contextIdentifier", &["Nip", "InternalId"])?,
            target: opt_ident(v, "targetIdentifier", &["Nip", "AllPartners", "InternalId"])?,
            types: opt_enum_list(v, "permissionTypes", scopes)?,
            state: match opt(v, "permissionState") {
                None => None,
                Some(_) => Some(one_of(v, "permissionState", &["Active", "Inactive"])?),
            },
        })
    }

    fn matches(&self, st: &State, g: &Grant, context: Option<&Ident>) -> bool {
        (self.context.is_none() || self.context.as_ref() == context)
            && (self.target.is_none() || self.target == g.meta.target)
            && (self.types.is_empty() || self.types.contains(&g.permission))
            && self.state.as_deref().is_none_or(|s| s == state_of(st, g))
    }
}

/// The context a person-permission row shows (`Nip`/`InternalId` only).
fn shown_context(g: &Grant) -> Option<Ident> {
    let c = match g.meta.kind {
        Kind::Indirect => g.meta.target.clone().filter(|t| t.0 != "AllPartners"),
        _ => Some(g.context.clone()),
    }?;
    matches!(c.0.as_str(), "Nip" | "InternalId").then_some(c)
}

fn query_personal(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let scopes = [PERSON_PERMISSIONS, &["VatUeManage"]].concat();
    let filter = PersonFilter::parse(&v, &scopes)?;
    let st = inner.state();
    let ctx = &caller.context;
    let owner = st.is_owner(ctx, &caller.subject);
    let mut rows = Vec::new();
    for g in &st.grants {
        let mine = match g.meta.kind {
            Kind::TestData | Kind::Person | Kind::Subunit | Kind::EuAdmin | Kind::EuRep => {
                &g.context == ctx && g.subject == caller.subject
            }
            Kind::Indirect => {
                g.subject == caller.subject
                    && (&g.meta.granted_in == ctx
                        || g.meta.target.as_ref() == Some(ctx)
                        || g.meta.target.as_ref().is_some_and(|t| t.0 == "AllPartners"))
            }
            // Invoice permissions another entity granted the caller's entity, seen by its owner.
            Kind::Entity => owner && &g.subject == ctx,
            Kind::Authorization => false,
        };
        let shown = shown_context(g);
        if !mine || !filter.matches(&st, g, shown.as_ref()) {
            continue;
        }
        let mut o = person_row(&st, g, shown.as_ref());
        if matches!(g.subject.0.as_str(), "Nip" | "Pesel" | "Fingerprint") {
            o["authorizedIdentifier"] = id_json(&g.subject);
        }
        rows.push((start_of(g), g.meta.id.clone(), o));
    }
    let (permissions, has_more) = page(req, rows)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"permissions": permissions, "hasMore": has_more}),
    ))
}

fn query_persons(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let query_type = one_of(
        &v,
        "queryType",
        &[
            "PermissionsInCurrentContext",
            "PermissionsGrantedInCurrentContext",
        ],
    )?;
    let filter = PersonFilter::parse(&v, PERSON_PERMISSIONS)?;
    let author = opt_ident(
        &v,
        "authorIdentifier",
        &["Nip", "Pesel", "Fingerprint", "System"],
    )?;
    let authorized = opt_ident(&v, "authorizedIdentifier", &["Nip", "Pesel", "Fingerprint"])?;
    let st = inner.state();
    let ctx = &caller.context;
    let mut rows = Vec::new();
    for g in &st.grants {
        if !PERSON_PERMISSIONS.contains(&g.permission.as_str()) {
            continue;
        }
        let listed = if query_type == "PermissionsInCurrentContext" {
            match g.meta.kind {
                Kind::TestData | Kind::Person | Kind::Subunit | Kind::Entity => &g.context == ctx,
                Kind::Indirect => &g.meta.granted_in == ctx,
                _ => false,
            }
        } else {
            matches!(
                g.meta.kind,
                Kind::Person | Kind::Subunit | Kind::Indirect | Kind::Entity
            ) && &g.meta.granted_in == ctx
                && g.meta.author == caller.subject
        };
        let shown = shown_context(g);
        if !listed
            || !filter.matches(&st, g, shown.as_ref())
            || author.as_ref().is_some_and(|a| {
                if a.0 == "System" {
                    g.meta.author.0 != "System"
                } else {
                    a != &g.meta.author
                }
            })
            || authorized.as_ref().is_some_and(|a| a != &g.subject)
            || !matches!(g.subject.0.as_str(), "Nip" | "Pesel" | "Fingerprint")
        {
            continue;
        }
        let mut o = person_row(&st, g, shown.as_ref());
        o["authorizedIdentifier"] = id_json(&g.subject);
        o["authorIdentifier"] = author_json(g);
        rows.push((start_of(g), g.meta.id.clone(), o));
    }
    let (permissions, has_more) = page(req, rows)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"permissions": permissions, "hasMore": has_more}),
    ))
}

fn query_subunits(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let subunit = opt_ident(&v, "subunitIdentifier", &["InternalId", "Nip"])?;
    let st = inner.state();
    let mut rows = Vec::new();
    for g in st.grants.iter().filter(|g| {
        g.meta.kind == Kind::Subunit
            && g.meta.granted_in == caller.context
            && subunit.as_ref().is_none_or(|s| s == &g.context)
    }) {
        let mut o = json!({
            "id": g.meta.id,
            "authorizedIdentifier": id_json(&g.subject),
            "subunitIdentifier": id_json(&g.context),
            "authorIdentifier": id_json(&g.meta.author),
            "permissionScope": g.permission,
            "description": g.meta.description,
            "startDate": rfc3339(start_of(g)),
        });
        if let Some(p) = &g.meta.person_details {
            o["subjectPersonDetails"] = p.clone();
        }
        if let Some(n) = &g.meta.subunit_name {
            o["subunitName"] = json!(n);
        }
        rows.push((start_of(g), g.meta.id.clone(), o));
    }
    let (permissions, has_more) = page(req, rows)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"permissions": permissions, "hasMore": has_more}),
    ))
}

fn query_entities(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let context = opt_ident(&v, "contextIdentifier", &["Nip", "InternalId"])?;
    let st = inner.state();
    let mut rows = Vec::new();
    for g in st.grants.iter().filter(|g| {
        g.meta.kind == Kind::Entity
            && g.subject == caller.context
            && context.as_ref().is_none_or(|c| c == &g.context)
    }) {
        let o = json!({
            "id": g.meta.id,
            "contextIdentifier": id_json(&g.context),
            "permissionScope": g.permission,
            "description": g.meta.description,
            "startDate": rfc3339(start_of(g)),
            "canDelegate": g.meta.can_delegate,
        });
        rows.push((start_of(g), g.meta.id.clone(), o));
    }
    let (permissions, has_more) = page(req, rows)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"permissions": permissions, "hasMore": has_more}),
    ))
}

fn query_roles(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let st = inner.state();
    let mut rows = Vec::new();
    for (i, r) in st
        .perm
        .roles
        .iter()
        .enumerate()
        .filter(|(_, r)| caller.context.0 == "Nip" && r.nip == caller.context.1)
    {
        let mut o = json!({
            "role": r.role,
            "description": r.description,
            "startDate": rfc3339(r.start),
        });
        if let Some(p) = &r.parent {
            o["parentEntityIdentifier"] = json!({"type": "Nip", "value": p});
        }
        rows.push((r.start, format!("{i:08}"), o));
    }
    let (roles, has_more) = page(req, rows)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"roles": roles, "hasMore": has_more}),
    ))
}

fn query_subordinates(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let sub = opt_ident(&v, "subordinateEntityIdentifier", &["Nip"])?;
    let st = inner.state();
    let mut rows = Vec::new();
    for (i, r) in st.perm.roles.iter().enumerate().filter(|(_, r)| {
        r.parent.as_deref() == Some(caller.context.1.as_str())
            && caller.context.0 == "Nip"
            && sub.as_ref().is_none_or(|s| s.1 == r.nip)
    }) {
        let o = json!({
            "subordinateEntityIdentifier": {"type": "Nip", "value": r.nip},
            "role": r.role,
            "description": r.description,
            "startDate": rfc3339(r.start),
        });
        rows.push((r.start, format!("{i:08}"), o));
    }
    let (roles, has_more) = page(req, rows)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"roles": roles, "hasMore": has_more}),
    ))
}

fn query_authorizations(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let query_type = one_of(&v, "queryType", &["Granted", "Received"])?;
    let authorizing = opt_ident(&v, "authorizingIdentifier", &["Nip"])?;
    let authorized = opt_ident(&v, "authorizedIdentifier", &["Nip", "PeppolId"])?;
    let types = opt_enum_list(
        &v,
        "permissionTypes",
        &[
            "SelfInvoicing",
            "TaxRepresentative",
            "RRInvoicing",
            "PefInvoicing",
        ],
    )?;
    let st = inner.state();
    let mut rows = Vec::new();
    for g in st.grants.iter().filter(|g| {
        g.meta.kind == Kind::Authorization
            && if query_type == "Granted" {
                g.context == caller.context
            } else {
                g.subject == caller.context
            }
            && authorizing.as_ref().is_none_or(|a| a == &g.context)
            && authorized.as_ref().is_none_or(|a| a == &g.subject)
            && (types.is_empty() || types.contains(&g.permission))
    }) {
        let mut o = json!({
            "id": g.meta.id,
            "authorizedEntityIdentifier": id_json(&g.subject),
            "authorizingEntityIdentifier": id_json(&g.context),
            "authorizationScope": g.permission,
            "description": g.meta.description,
            "startDate": rfc3339(start_of(g)),
        });
        if matches!(g.meta.author.0.as_str(), "Nip" | "Pesel" | "Fingerprint") {
            o["authorIdentifier"] = id_json(&g.meta.author);
        }
        if let Some(e) = &g.meta.entity_details {
            o["subjectEntityDetails"] = e.clone();
        }
        rows.push((start_of(g), g.meta.id.clone(), o));
    }
    let (grants, has_more) = page(req, rows)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"authorizationGrants": grants, "hasMore": has_more}),
    ))
}

fn query_eu(inner: &Arc<Inner>, req: &Req) -> Result<Response, ApiError> {
    let caller = req.caller()?;
    let v = body(req)?;
    let vat_ue = match opt(&v, "vatUeIdentifier") {
        None => None,
        Some(_) => Some(string(&v, "vatUeIdentifier", 4, 16)?),
    };
    let fingerprint = match opt(&v, "authorizedFingerprintIdentifier") {
        None => None,
        Some(_) => Some(string(&v, "authorizedFingerprintIdentifier", 1, 64)?.to_ascii_uppercase()),
    };
    let types = opt_enum_list(
        &v,
        "permissionTypes",
        &[
            "VatUeManage",
            "InvoiceWrite",
            "InvoiceRead",
            "Introspection",
        ],
    )?;
    let st = inner.state();
    let ctx = &caller.context;
    let mut rows = Vec::new();
    for g in st.grants.iter().filter(|g| {
        let visible = match ctx.0.as_str() {
            // A NIP context sees the administrators of its EU entities.
            "Nip" => g.meta.kind == Kind::EuAdmin && &g.meta.granted_in == ctx,
            // The EU entity's own context sees its administrators and representatives.
            "NipVatUe" => matches!(g.meta.kind, Kind::EuAdmin | Kind::EuRep) && &g.context == ctx,
            _ => false,
        };
        visible
            && vat_ue
                .as_deref()
                .is_none_or(|u| g.context.1.get(11..) == Some(u))
            && fingerprint
                .as_deref()
                .is_none_or(|f| g.subject.1.contains(f))
            && (types.is_empty() || types.contains(&g.permission))
    }) {
        let (name, details) = g
            .meta
            .eu_entity
            .clone()
            .unwrap_or_else(|| (g.context.1.clone(), Value::Null));
        let mut o = json!({
            "id": g.meta.id,
            "authorIdentifier": id_json(&g.meta.author),
            "vatUeIdentifier": g.context.1.get(11..).unwrap_or_default(),
            "euEntityName": name,
            "authorizedFingerprintIdentifier": g.subject.1,
            "permissionScope": g.permission,
            "description": g.meta.description,
            "startDate": rfc3339(start_of(g)),
        });
        if !details.is_null() {
            o["euEntityDetails"] = details;
        }
        insert_details(&mut o, g);
        rows.push((start_of(g), g.meta.id.clone(), o));
    }
    let (permissions, has_more) = page(req, rows)?;
    Ok(json_ok(
        StatusCode::OK,
        &json!({"permissions": permissions, "hasMore": has_more}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_ids_are_36_characters() {
        let mut st = State::new(Some(3));
        let id = new_id(&mut st);
        assert_eq!(id.len(), 36);
        assert_eq!(id.matches('-').count(), 4);
        assert_ne!(id, new_id(&mut st));
    }

    #[test]
    fn indirect_grants_need_a_complete_chain() {
        let mut st = State::new(Some(1));
        let client: Ident = ("Nip".into(), "7010002139".into());
        let office: Ident = ("Nip".into(), "5265877635".into());
        let person: Ident = ("Pesel".into(), "90010112345".into());
        let indirect = Grant {
            context: office.clone(),
            subject: person.clone(),
            permission: "InvoiceWrite".into(),
            meta: GrantMeta {
                id: "i".into(),
                kind: Kind::Indirect,
                granted_in: office.clone(),
                target: Some(client.clone()),
                ..GrantMeta::default()
            },
        };
        st.grants.push(indirect);
        assert!(effective(&st, &client, &person).is_empty());
        st.grants.push(Grant {
            context: client.clone(),
            subject: office.clone(),
            permission: "InvoiceWrite".into(),
            meta: GrantMeta {
                id: "e".into(),
                kind: Kind::Entity,
                granted_in: client.clone(),
                can_delegate: false,
                ..GrantMeta::default()
            },
        });
        assert!(effective(&st, &client, &person).is_empty(), "not delegable");
        st.grants[1].meta.can_delegate = true;
        assert_eq!(effective(&st, &client, &person), ["InvoiceWrite"]);
        // The office itself (its seal) may issue for the client too.
        assert_eq!(effective(&st, &client, &office), ["InvoiceWrite"]);
    }
}
