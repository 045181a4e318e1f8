//! `/testdata/*` (ksef-api.md §16): subjects, persons and ZAW-FA permissions. All answer 200 with
//! an empty body.

use axum::http::StatusCode;
use axum::response::Response;
use ksef_model::api::{
    PersonCreateRequest, PersonRemoveRequest, SubjectCreateRequest, SubjectRemoveRequest,
    TestDataPermissionsGrantRequest, TestDataPermissionsRevokeRequest,
};

use crate::error::ApiError;
use crate::permissions::{GrantMeta, Kind, Role, new_id};
use crate::server::{Inner, Req, empty};
use crate::state::{Grant, Ident, Person, Subject};

/// KSeF's documentation examples use `"nip"`/`"pesel"` while the enums say `Nip`/`Pesel`; KSeF
/// takes both, so identifier types are compared case-insensitively and stored canonically.
fn canonical_type(t: &str) -> String {
    match t.to_ascii_lowercase().as_str() {
        "nip" => "Nip".into(),
        "pesel" => "Pesel".into(),
        "fingerprint" => "Fingerprint".into(),
        "internalid" => "InternalId".into(),
        "nipvatue" => "NipVatUe".into(),
        "peppolid" => "PeppolId".into(),
        _ => t.to_owned(),
    }
}

fn ident(t: &str, v: &str) -> Ident {
    let t = canonical_type(t);
    let v = if t == "Fingerprint" {
        v.to_ascii_uppercase()
    } else {
        v.to_owned()
    };
    (t, v)
}

fn check_description(d: &str) -> Result<(), ApiError> {
    let n = d.chars().count();
    if !(5..=256).contains(&n) {
        return Err(ApiError::validation(format!(
            "'description' must be between 5 and 256 characters. You entered {n} characters."
        )));
    }
    Ok(())
}

pub(crate) fn create_subject(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: SubjectCreateRequest = req.json()?;
    check_description(&body.description)?;
    let mut st = inner.state();
    let nip = body.subject_nip.as_str().to_owned();
    if st.subjects.iter().any(|s| s.nip == nip) {
        return Err(ApiError::bad(
            30001,
            [format!("Podmiot {nip} już istnieje.")],
        ));
    }
    // The subject's role and its subunits' roles (`GET /permissions/query/entities/roles`,
    // `POST /permissions/query/subordinate-entities/roles`).
    let (role, sub_role) = match body.subject_type.as_str() {
        "EnforcementAuthority" => ("EnforcementAuthority", None),
        "VatGroup" => ("VatGroupUnit", Some("VatGroupSubUnit")),
        _ => ("LocalGovernmentUnit", Some("LocalGovernmentSubUnit")),
    };
    let start = req.now;
    st.perm.roles.push(Role {
        nip: nip.clone(),
        role,
        parent: None,
        description: body.description.clone(),
        start,
    });
    let subunits = body.subunits.unwrap_or_default();
    for s in &subunits {
        if let Some(sub_role) = sub_role {
            st.perm.roles.push(Role {
                nip: s.subject_nip.as_str().to_owned(),
                role: sub_role,
                parent: Some(nip.clone()),
                description: s.description.clone(),
                start,
            });
        }
    }
    st.subjects.push(Subject {
        nip,
        subject_type: body.subject_type.as_str().to_owned(),
        subunits: subunits
            .iter()
            .map(|s| s.subject_nip.as_str().to_owned())
            .collect(),
    });
    Ok(empty(StatusCode::OK))
}

pub(crate) fn remove_subject(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: SubjectRemoveRequest = req.json()?;
    let nip = body.subject_nip.as_str();
    let mut st = inner.state();
    let subunits: Vec<String> = st
        .subjects
        .iter()
        .filter(|s| s.nip == nip)
        .flat_map(|s| s.subunits.clone())
        .collect();
    st.subjects
        .retain(|s| s.nip != nip && !subunits.contains(&s.nip));
    st.perm
        .roles
        .retain(|r| r.nip != nip && !subunits.contains(&r.nip) && r.parent.as_deref() != Some(nip));
    Ok(empty(StatusCode::OK))
}

pub(crate) fn create_person(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: PersonCreateRequest = req.json()?;
    check_description(&body.description)?;
    let mut st = inner.state();
    let (nip, pesel) = (body.nip.as_str().to_owned(), body.pesel.as_str().to_owned());
    if st.persons.iter().any(|p| p.nip == nip && p.pesel == pesel) {
        return Err(ApiError::bad(
            30001,
            [format!("Osoba {pesel} powiązana z {nip} już istnieje.")],
        ));
    }
    if body.is_bailiff {
        st.perm.roles.push(Role {
            nip: nip.clone(),
            role: "CourtBailiff",
            parent: None,
            description: body.description.clone(),
            start: req.now,
        });
    }
    st.persons.push(Person {
        nip,
        pesel,
        is_bailiff: body.is_bailiff,
        is_deceased: body.is_deceased.unwrap_or(false),
    });
    Ok(empty(StatusCode::OK))
}

pub(crate) fn remove_person(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: PersonRemoveRequest = req.json()?;
    let mut st = inner.state();
    st.persons.retain(|p| p.nip != body.nip.as_str());
    st.perm
        .roles
        .retain(|r| !(r.nip == body.nip.as_str() && r.role == "CourtBailiff"));
    Ok(empty(StatusCode::OK))
}

pub(crate) fn grant(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: TestDataPermissionsGrantRequest = req.json()?;
    let context = ident(
        body.context_identifier.r#type.as_str(),
        &body.context_identifier.value,
    );
    if context.0 != "Nip" {
        return Err(ApiError::validation(
            "'contextIdentifier.type' must be Nip.",
        ));
    }
    let subject = ident(
        body.authorized_identifier.r#type.as_str(),
        &body.authorized_identifier.value,
    );
    if body.permissions.is_empty() {
        return Err(ApiError::validation("'permissions' must not be empty."));
    }
    let mut st = inner.state();
    for p in &body.permissions {
        check_description(&p.description)?;
        let permission = p.permission_type.as_str().to_owned();
        let exists = st.grants.iter().any(|g| {
            g.meta.kind == Kind::TestData
                && g.context == context
                && g.subject == subject
                && g.permission == permission
        });
        if !exists {
            let id = new_id(&mut st);
            st.grants.push(Grant {
                context: context.clone(),
                subject: subject.clone(),
                permission,
                meta: GrantMeta {
                    id,
                    kind: Kind::TestData,
                    granted_in: context.clone(),
                    author: ("System".into(), String::new()),
                    description: p.description.clone(),
                    start: Some(req.now),
                    ..GrantMeta::default()
                },
            });
        }
    }
    Ok(empty(StatusCode::OK))
}

pub(crate) fn revoke(inner: &Inner, req: &Req) -> Result<Response, ApiError> {
    let body: TestDataPermissionsRevokeRequest = req.json()?;
    let context = ident(
        body.context_identifier.r#type.as_str(),
        &body.context_identifier.value,
    );
    let subject = ident(
        body.authorized_identifier.r#type.as_str(),
        &body.authorized_identifier.value,
    );
    inner.state().grants.retain(|g| {
        !(g.meta.kind == Kind::TestData && g.context == context && g.subject == subject)
    });
    Ok(empty(StatusCode::OK))
}
