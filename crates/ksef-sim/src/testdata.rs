//! `/testdata/*` (ksef-api.md §16): subjects, persons and ZAW-FA permissions. All answer 200 with
//! an empty body.

use axum::http::StatusCode;
use axum::response::Response;
use ksef_model::api::{
    PersonCreateRequest, PersonRemoveRequest, SubjectCreateRequest, SubjectRemoveRequest,
    TestDataPermissionsGrantRequest, TestDataPermissionsRevokeRequest,
};

use crate::error::ApiError;
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
    st.subjects.push(Subject {
        nip,
        subject_type: body.subject_type.as_str().to_owned(),
        subunits: body
            .subunits
            .unwrap_or_default()
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
    inner.state().persons.retain(|p| p.nip != body.nip.as_str());
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
        let g = Grant {
            context: context.clone(),
            subject: subject.clone(),
            permission: p.permission_type.as_str().to_owned(),
        };
        if !st.grants.contains(&g) {
            st.grants.push(g);
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
    inner
        .state()
        .grants
        .retain(|g| !(g.context == context && g.subject == subject));
    Ok(empty(StatusCode::OK))
}
