//! Permissions over HTTP (scenarios.md §7): every grant → poll the operation → query → revoke →
//! query, the business checks that end an operation with 410/430/440/450, grants taking effect for
//! authentication, entity roles, paging, retention (410 Gone) and request validation. Every JSON
//! response is checked against the spec's schema by `common::Api`.

// Test helpers outside #[test] may panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use ksef_crypto::cert::PersonId;
use ksef_crypto::keys::{KeyKind, PrivateKey};
use ksef_crypto::signer::InMemorySigner;
use ksef_model::auth_request::{AuthTokenRequest, ContextIdentifier, SubjectIdentifierType};
use ksef_model::operations::OperationId;
use serde_json::{Value, json};
use std::time::Duration;

/// A third valid NIP (an accounting office) and a subunit's NIP.
const OFFICE_NIP: &str = "3333333333";
const SUB_NIP: &str = "5554443334";
const OFFICE_PESEL: &str = "85020212343";

fn seal(nip: &str) -> InMemorySigner {
    let key = PrivateKey::generate(KeyKind::P256).unwrap();
    let cert = ksef_crypto::cert::test_seal(&key, "Firma Testowa", nip).unwrap();
    InMemorySigner::new(key, cert).unwrap()
}

fn person(pesel: &str) -> InMemorySigner {
    let key = PrivateKey::generate(KeyKind::P256).unwrap();
    let cert = ksef_crypto::cert::test_personal(
        &key,
        "Jan",
        "Kowalski",
        PersonId::Pesel(pesel.to_owned()),
    )
    .unwrap();
    InMemorySigner::new(key, cert).unwrap()
}

fn nip_ctx(nip: &str) -> ContextIdentifier {
    ContextIdentifier::Nip(nip.parse().unwrap())
}

/// Authenticates; returns the final auth status JSON and, on 200, the access token.
async fn try_login(
    api: &Api,
    signer: &InMemorySigner,
    ctx: ContextIdentifier,
    subject: SubjectIdentifierType,
) -> (Value, Option<String>) {
    let ch = api.challenge().await;
    let req = AuthTokenRequest::builder(ch["challenge"].as_str().unwrap().parse().unwrap(), ctx)
        .subject_identifier_type(subject)
        .build()
        .unwrap();
    let xml = ksef_crypto::xades::sign(&req.to_xml().unwrap(), signer).unwrap();
    let r = api.submit_xades(xml, "").await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    let op = r.json["authenticationToken"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let st = api.auth_status(&reference, &op).await;
    if st["status"]["code"] != 200 {
        return (st, None);
    }
    let r = api
        .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    (
        st,
        Some(r.json["accessToken"]["token"].as_str().unwrap().to_owned()),
    )
}

async fn login(
    api: &Api,
    signer: &InMemorySigner,
    ctx: ContextIdentifier,
    subject: SubjectIdentifierType,
) -> String {
    let (st, access) = try_login(api, signer, ctx, subject).await;
    access.unwrap_or_else(|| panic!("login failed: {st}"))
}

/// Polls `GET /permissions/operations/{ref}` until it leaves 100; returns the status object.
async fn wait_op(api: &Api, access: &str, reference: &str) -> Value {
    for _ in 0..500 {
        let r = api
            .call(
                OperationId::PermissionOperationStatus,
                &[reference],
                Some(access),
                Body::None,
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        if r.json["status"]["code"] != 100 {
            return r.json["status"].clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("permission operation stayed 100");
}

/// Sends a grant (or revoke) and waits for its operation; returns the final status code and
/// the status object.
async fn run(
    api: &Api,
    access: &str,
    op: OperationId,
    params: &[&str],
    body: Body,
) -> (i64, Value) {
    let r = api.call(op, params, Some(access), body).await;
    assert_eq!(r.status, 202, "{op:?}: {:?}", r.json);
    let reference = r.json["referenceNumber"].as_str().unwrap();
    assert_eq!(reference.len(), 36);
    assert_eq!(&reference[9..11], "EG");
    let st = wait_op(api, access, reference).await;
    (st["code"].as_i64().unwrap(), st)
}

async fn query(api: &Api, access: &str, op: OperationId, body: Value) -> Value {
    let r = api
        .call_q(
            op,
            &[],
            "?pageSize=100",
            Some(access),
            Body::Json(body),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{op:?}: {:?}", r.json);
    r.json
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().to_owned())
        .collect()
}

fn person_details() -> Value {
    json!({"subjectDetailsType": "PersonByIdentifier",
           "personById": {"firstName": "Jan", "lastName": "Kowalski"}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_permissions_grant_query_revoke_and_effect() {
    let (sim, api) = start().await;
    let owner = login(
        &api,
        &seal(NIP),
        nip_ctx(NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let employee = person(PESEL);

    // Without a grant the employee cannot authenticate in the context (415).
    let (st, _) = try_login(
        &api,
        &employee,
        nip_ctx(NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    assert_eq!(st["status"]["code"], 415, "{st}");

    let (code, st) = run(
        &api,
        &owner,
        OperationId::GrantPersonPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": PESEL},
            "permissions": ["InvoiceWrite", "InvoiceRead"],
            "description": "Księgowa – wystawianie",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");

    // Search: both permissions in the current context, with details and the author.
    let all = query(
        &api,
        &owner,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsInCurrentContext",
               "authorizedIdentifier": {"type": "Pesel", "value": PESEL}}),
    )
    .await;
    let perms = all["permissions"].as_array().unwrap();
    assert_eq!(perms.len(), 2, "{all:#}");
    assert_eq!(all["hasMore"], false);
    let write = perms
        .iter()
        .find(|p| p["permissionScope"] == "InvoiceWrite")
        .unwrap();
    assert_eq!(
        write["authorIdentifier"],
        json!({"type": "Nip", "value": NIP})
    );
    assert_eq!(
        write["contextIdentifier"],
        json!({"type": "Nip", "value": NIP})
    );
    assert_eq!(write["subjectPersonDetails"]["lastName"], "Kowalski");
    assert_eq!(write["permissionState"], "Active");
    assert_eq!(write["id"].as_str().unwrap().len(), 36);
    // Filters: permission type, author (granted by me), another subject.
    let only_read = query(
        &api,
        &owner,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsGrantedInCurrentContext", "permissionTypes": ["InvoiceRead"]}),
    )
    .await;
    assert_eq!(only_read["permissions"].as_array().unwrap().len(), 1);
    let nobody = query(
        &api,
        &owner,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsInCurrentContext",
               "authorizedIdentifier": {"type": "Nip", "value": OTHER_NIP}}),
    )
    .await;
    assert!(nobody["permissions"].as_array().unwrap().is_empty());

    // The grant takes effect: the employee authenticates, sees its own permissions and may
    // open a session (InvoiceWrite).
    let emp = login(
        &api,
        &employee,
        nip_ctx(NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let mine = query(&api, &emp, OperationId::QueryPersonalPermissions, json!({})).await;
    assert_eq!(mine["permissions"].as_array().unwrap().len(), 2, "{mine:#}");
    let (session, key) = api.open_session(&emp).await;
    let r = api
        .send(&emp, &session, &key, &invoice(NIP, "PERM/1"))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let st = api
        .invoice_final(&emp, &session, r.json["referenceNumber"].as_str().unwrap())
        .await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    // … but not manage permissions (403 missing-permissions).
    let r = api
        .call(
            OperationId::QueryPersonPermissions,
            &[],
            Some(&emp),
            Body::Json(json!({"queryType": "PermissionsInCurrentContext"})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json["reasonCode"], "missing-permissions");

    // Revoke InvoiceWrite → search shows only InvoiceRead.
    let write_id = write["id"].as_str().unwrap().to_owned();
    let (code, _) = run(
        &api,
        &owner,
        OperationId::RevokeCommonPermission,
        &[&write_id],
        Body::None,
    )
    .await;
    assert_eq!(code, 200);
    let after = query(
        &api,
        &owner,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsInCurrentContext"}),
    )
    .await;
    let left = after["permissions"].as_array().unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["permissionScope"], "InvoiceRead");
    // Revoking it again: the operation fails (400), nothing changes.
    let (code, st) = run(
        &api,
        &owner,
        OperationId::RevokeCommonPermission,
        &[&write_id],
        Body::None,
    )
    .await;
    assert_eq!(code, 400, "{st}");

    // EnforcementOperations outside an enforcement context: 430, and not visible.
    let (code, st) = run(
        &api,
        &owner,
        OperationId::GrantPersonPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": PESEL},
            "permissions": ["EnforcementOperations"],
            "description": "Egzekucja – próba",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 430, "{st}");
    let enforcement = query(
        &api,
        &owner,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsInCurrentContext", "permissionTypes": ["EnforcementOperations"]}),
    )
    .await;
    assert!(enforcement["permissions"].as_array().unwrap().is_empty());

    // A fingerprint subject needs fingerprint details; a bad combination is 400 21405.
    let r = api
        .call(
            OperationId::GrantPersonPermissions,
            &[],
            Some(&owner),
            Body::Json(json!({
                "subjectIdentifier": {"type": "Fingerprint", "value": "AB".repeat(32)},
                "permissions": ["InvoiceRead"],
                "description": "Odcisk palca",
                "subjectDetails": person_details(),
            })),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    let (code, _) = run(
        &api,
        &owner,
        OperationId::GrantPersonPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Fingerprint", "value": "ab".repeat(32)},
            "permissions": ["InvoiceRead"],
            "description": "Odcisk palca",
            "subjectDetails": {"subjectDetailsType": "PersonByFingerprintWithoutIdentifier",
                "personByFpNoId": {"firstName": "Anna", "lastName": "Nowak", "birthDate": "1990-01-01",
                    "idDocument": {"type": "Paszport", "number": "AB123456", "country": "DE"}}},
        })),
    )
    .await;
    assert_eq!(code, 200);
    let by_fp = query(
        &api,
        &owner,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsInCurrentContext",
               "authorizedIdentifier": {"type": "Fingerprint", "value": "AB".repeat(32)}}),
    )
    .await;
    assert_eq!(
        by_fp["permissions"][0]["subjectPersonDetails"]["idDocument"]["country"],
        "DE"
    );

    // Test-data grants are listed with the System author and revoked through /testdata only.
    api.testdata_grant(NIP, ("Nip", OTHER_NIP), &["Introspection"])
        .await;
    let sys = query(
        &api,
        &owner,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsInCurrentContext", "authorIdentifier": {"type": "System"}}),
    )
    .await;
    let sys = sys["permissions"].as_array().unwrap();
    assert_eq!(sys.len(), 1);
    assert_eq!(sys[0]["authorIdentifier"], json!({"type": "System"}));
    let sys_id = sys[0]["id"].as_str().unwrap().to_owned();
    let (code, _) = run(
        &api,
        &owner,
        OperationId::RevokeCommonPermission,
        &[&sys_id],
        Body::None,
    )
    .await;
    assert_eq!(code, 450);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_indirect_and_authorization_permissions() {
    let (sim, api) = start().await;
    let client = login(
        &api,
        &seal(OTHER_NIP),
        nip_ctx(OTHER_NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let office = login(
        &api,
        &seal(OFFICE_NIP),
        nip_ctx(OFFICE_NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;

    // The client lets the accounting office issue invoices (delegable) and read them (not).
    let (code, st) = run(
        &api,
        &client,
        OperationId::GrantEntityPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Nip", "value": OFFICE_NIP},
            "permissions": [{"type": "InvoiceWrite", "canDelegate": true}, {"type": "InvoiceRead"}],
            "description": "Biuro rachunkowe",
            "subjectDetails": {"fullName": "Biuro Rachunkowe Sp. z o.o."},
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    // The office sees what it received; filter by the client.
    let received = query(
        &api,
        &office,
        OperationId::QueryEntityPermissions,
        json!({"contextIdentifier": {"type": "Nip", "value": OTHER_NIP}}),
    )
    .await;
    let received = received["permissions"].as_array().unwrap();
    assert_eq!(received.len(), 2);
    assert!(
        received
            .iter()
            .any(|p| p["permissionScope"] == "InvoiceWrite" && p["canDelegate"] == true)
    );
    // The office's owner sees them among its personal permissions.
    let personal = query(
        &api,
        &office,
        OperationId::QueryPersonalPermissions,
        json!({}),
    )
    .await;
    assert_eq!(
        personal["permissions"].as_array().unwrap().len(),
        2,
        "{personal:#}"
    );
    // The office's seal can now authenticate in the client's context.
    let (st, _) = try_login(
        &api,
        &seal(OFFICE_NIP),
        nip_ctx(OTHER_NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    assert_eq!(st["status"]["code"], 200, "{st}");

    // Indirect, selective: complete chain for InvoiceWrite → the employee works for the client.
    let employee = person(OFFICE_PESEL);
    let (code, st) = run(
        &api,
        &office,
        OperationId::GrantIndirectPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": OFFICE_PESEL},
            "targetIdentifier": {"type": "Nip", "value": OTHER_NIP},
            "permissions": ["InvoiceWrite"],
            "description": "Pracownik biura dla klienta",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let emp = login(
        &api,
        &employee,
        nip_ctx(OTHER_NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let mine = query(&api, &emp, OperationId::QueryPersonalPermissions, json!({})).await;
    let mine = mine["permissions"].as_array().unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0]["targetIdentifier"],
        json!({"type": "Nip", "value": OTHER_NIP})
    );
    // Incomplete chain (InvoiceRead was not delegable): 440, nothing granted.
    let (code, st) = run(
        &api,
        &office,
        OperationId::GrantIndirectPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": OFFICE_PESEL},
            "targetIdentifier": {"type": "Nip", "value": OTHER_NIP},
            "permissions": ["InvoiceRead"],
            "description": "Pracownik biura – odczyt",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 440, "{st}");
    // General (all partners).
    let (code, _) = run(
        &api,
        &office,
        OperationId::GrantIndirectPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Nip", "value": NIP},
            "targetIdentifier": {"type": "AllPartners"},
            "permissions": ["InvoiceWrite"],
            "description": "Wszyscy klienci biura",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 200);
    // The client lists the office and the indirectly authorised persons in its context… no:
    // indirect grants are listed in the intermediary's context.
    let office_view = query(
        &api,
        &office,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsGrantedInCurrentContext"}),
    )
    .await;
    let office_view = office_view["permissions"].as_array().unwrap();
    assert_eq!(office_view.len(), 2, "{office_view:#?}");
    assert!(
        office_view
            .iter()
            .any(|p| p["targetIdentifier"] == json!({"type": "AllPartners"}))
    );
    let client_view = query(
        &api,
        &client,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsInCurrentContext"}),
    )
    .await;
    assert_eq!(
        client_view["permissions"].as_array().unwrap().len(),
        2,
        "{client_view:#}"
    );

    // Revoking the client's delegable grant breaks the chain: the indirect grant turns Inactive
    // and the employee can no longer authenticate for the client.
    let write_id = received
        .iter()
        .find(|p| p["permissionScope"] == "InvoiceWrite")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (code, _) = run(
        &api,
        &client,
        OperationId::RevokeCommonPermission,
        &[&write_id],
        Body::None,
    )
    .await;
    assert_eq!(code, 200);
    let inactive = query(
        &api,
        &office,
        OperationId::QueryPersonPermissions,
        json!({"queryType": "PermissionsGrantedInCurrentContext", "permissionState": "Inactive"}),
    )
    .await;
    assert_eq!(inactive["permissions"].as_array().unwrap().len(), 1);
    let (st, _) = try_login(
        &api,
        &employee,
        nip_ctx(OTHER_NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    assert_eq!(st["status"]["code"], 415, "{st}");

    // Authorizations (self-invoicing): granted by the client, received by the office.
    let (code, st) = run(
        &api,
        &client,
        OperationId::GrantAuthorizationPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Nip", "value": OFFICE_NIP},
            "permission": "SelfInvoicing",
            "description": "Samofakturowanie",
            "subjectDetails": {"fullName": "Biuro Rachunkowe Sp. z o.o."},
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let granted = query(
        &api,
        &client,
        OperationId::QueryAuthorizationPermissions,
        json!({"queryType": "Granted", "authorizedIdentifier": {"type": "Nip", "value": OFFICE_NIP}}),
    )
    .await;
    let granted = granted["authorizationGrants"].as_array().unwrap();
    assert_eq!(granted.len(), 1);
    assert_eq!(granted[0]["authorizationScope"], "SelfInvoicing");
    assert_eq!(
        granted[0]["subjectEntityDetails"]["fullName"],
        "Biuro Rachunkowe Sp. z o.o."
    );
    let received = query(
        &api,
        &office,
        OperationId::QueryAuthorizationPermissions,
        json!({"queryType": "Received", "permissionTypes": ["SelfInvoicing"]}),
    )
    .await;
    assert_eq!(
        ids(&received["authorizationGrants"]),
        ids(&Value::Array(granted.clone()))
    );
    let auth_id = granted[0]["id"].as_str().unwrap().to_owned();
    // The common revoke refuses authorizations (450); the authorization revoke takes it.
    let (code, _) = run(
        &api,
        &client,
        OperationId::RevokeCommonPermission,
        &[&auth_id],
        Body::None,
    )
    .await;
    assert_eq!(code, 450);
    // Another context cannot revoke it.
    let (code, _) = run(
        &api,
        &office,
        OperationId::RevokeAuthorizationPermission,
        &[&auth_id],
        Body::None,
    )
    .await;
    assert_eq!(code, 400);
    let (code, _) = run(
        &api,
        &client,
        OperationId::RevokeAuthorizationPermission,
        &[&auth_id],
        Body::None,
    )
    .await;
    assert_eq!(code, 200);
    let granted = query(
        &api,
        &client,
        OperationId::QueryAuthorizationPermissions,
        json!({"queryType": "Granted"}),
    )
    .await;
    assert!(
        granted["authorizationGrants"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subunits_roles_and_eu_entities() {
    let (sim, api) = start().await;
    // A local government unit (JST) with one subordinate unit.
    let r = api
        .call(
            OperationId::TestdataCreateSubject,
            &[],
            None,
            Body::Json(json!({"subjectNip": OFFICE_NIP, "subjectType": "JST",
                "description": "Gmina testowa",
                "subunits": [{"subjectNip": SUB_NIP, "description": "Szkoła podstawowa"}]})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let jst = login(
        &api,
        &seal(OFFICE_NIP),
        nip_ctx(OFFICE_NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let roles = api
        .call_q(
            OperationId::QueryEntityRoles,
            &[],
            "?pageOffset=0&pageSize=10",
            Some(&jst),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(roles.status, 200);
    assert_eq!(roles.json["roles"][0]["role"], "LocalGovernmentUnit");
    let subs = query(
        &api,
        &jst,
        OperationId::QuerySubordinateEntityRoles,
        json!({}),
    )
    .await;
    assert_eq!(
        subs["roles"][0]["subordinateEntityIdentifier"],
        json!({"type": "Nip", "value": SUB_NIP})
    );
    assert_eq!(subs["roles"][0]["role"], "LocalGovernmentSubUnit");
    let sub = login(
        &api,
        &seal(SUB_NIP),
        nip_ctx(SUB_NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let sub_roles = api
        .call(OperationId::QueryEntityRoles, &[], Some(&sub), Body::None)
        .await;
    assert_eq!(
        sub_roles.json["roles"][0]["parentEntityIdentifier"]["value"],
        OFFICE_NIP
    );

    // Subunit administrators: of the subordinate NIP, and of an internal unit.
    let admin = person(PESEL);
    let (code, st) = run(
        &api,
        &jst,
        OperationId::GrantSubunitPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": PESEL},
            "contextIdentifier": {"type": "Nip", "value": SUB_NIP},
            "description": "Administrator szkoły",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let internal = ksef_model::ids::InternalId::new(&OFFICE_NIP.parse().unwrap(), 1234).unwrap();
    let (code, st) = run(
        &api,
        &jst,
        OperationId::GrantSubunitPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": PESEL},
            "contextIdentifier": {"type": "InternalId", "value": internal.as_str()},
            "description": "Administrator wydziału",
            "subunitName": "Wydział Finansowy",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let admins = query(&api, &jst, OperationId::QuerySubunitPermissions, json!({})).await;
    let admins = admins["permissions"].as_array().unwrap();
    assert_eq!(admins.len(), 2);
    assert!(
        admins
            .iter()
            .all(|a| a["permissionScope"] == "CredentialsManage")
    );
    let filtered = query(
        &api,
        &jst,
        OperationId::QuerySubunitPermissions,
        json!({"subunitIdentifier": {"type": "InternalId", "value": internal.as_str()}}),
    )
    .await;
    assert_eq!(
        filtered["permissions"][0]["subunitName"],
        "Wydział Finansowy"
    );
    // The administrator works in the internal unit's context.
    let adm = login(
        &api,
        &admin,
        ContextIdentifier::InternalId(internal.clone()),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let mine = query(&api, &adm, OperationId::QueryPersonalPermissions, json!({})).await;
    assert_eq!(
        mine["permissions"][0]["permissionScope"],
        "CredentialsManage"
    );
    // Not a parent of that NIP: 430. An internal id of another NIP: 410.
    let (code, _) = run(
        &api,
        &jst,
        OperationId::GrantSubunitPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": PESEL},
            "contextIdentifier": {"type": "Nip", "value": OTHER_NIP},
            "description": "Nie nasza jednostka",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 430);
    let foreign = ksef_model::ids::InternalId::new(&NIP.parse().unwrap(), 1).unwrap();
    let (code, _) = run(
        &api,
        &jst,
        OperationId::GrantSubunitPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": PESEL},
            "contextIdentifier": {"type": "InternalId", "value": foreign.as_str()},
            "description": "Cudza jednostka",
            "subunitName": "Cudzy wydział",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 410);

    // EU entity: the owner of NIP makes a fingerprint the administrator of NIP-ATU12345678.
    let owner = login(
        &api,
        &seal(NIP),
        nip_ctx(NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let eu_admin = person("44051401458");
    let fp = eu_admin.certificate().fingerprint_sha256_hex();
    let vat_ue = format!("{NIP}-ATU12345678");
    let (code, st) = run(
        &api,
        &owner,
        OperationId::GrantEuEntityAdministrationPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Fingerprint", "value": fp},
            "contextIdentifier": {"type": "NipVatUe", "value": vat_ue},
            "description": "Administrator podmiotu unijnego",
            "euEntityName": "Muster GmbH, Wien",
            "subjectDetails": {"subjectDetailsType": "PersonByFingerprintWithIdentifier",
                "personByFpWithId": {"firstName": "Hans", "lastName": "Muster",
                    "identifier": {"type": "Pesel", "value": "44051401458"}}},
            "euEntityDetails": {"fullName": "Muster GmbH", "address": "Ring 1, Wien"},
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let listed = query(
        &api,
        &owner,
        OperationId::QueryEuEntityPermissions,
        json!({"vatUeIdentifier": "ATU12345678"}),
    )
    .await;
    let listed = listed["permissions"].as_array().unwrap();
    assert_eq!(listed.len(), 4, "{listed:#?}");
    assert!(listed.iter().any(|p| p["permissionScope"] == "VatUeManage"));
    assert_eq!(listed[0]["euEntityDetails"]["fullName"], "Muster GmbH");
    // The administrator authenticates in the composite context and names a representative.
    let adm = login(
        &api,
        &eu_admin,
        ContextIdentifier::NipVatUe(vat_ue.parse().unwrap()),
        SubjectIdentifierType::CertificateFingerprint,
    )
    .await;
    let (code, st) = run(
        &api,
        &adm,
        OperationId::GrantEuEntityRepresentativePermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Fingerprint", "value": "CD".repeat(32)},
            "permissions": ["InvoiceWrite"],
            "description": "Reprezentant podmiotu unijnego",
            "subjectDetails": {"subjectDetailsType": "EntityByFingerprint",
                "entityByFp": {"fullName": "Vertreter AG", "address": "Gasse 2, Graz"}},
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");
    let in_eu = query(
        &api,
        &adm,
        OperationId::QueryEuEntityPermissions,
        json!({"authorizedFingerprintIdentifier": "CD".repeat(20)}),
    )
    .await;
    let in_eu = in_eu["permissions"].as_array().unwrap();
    assert_eq!(in_eu.len(), 1);
    assert_eq!(in_eu[0]["subjectEntityDetails"]["fullName"], "Vertreter AG");
    let rep_id = in_eu[0]["id"].as_str().unwrap().to_owned();
    let (code, _) = run(
        &api,
        &adm,
        OperationId::RevokeCommonPermission,
        &[&rep_id],
        Body::None,
    )
    .await;
    assert_eq!(code, 200);
    let in_eu = query(
        &api,
        &adm,
        OperationId::QueryEuEntityPermissions,
        json!({"permissionTypes": ["InvoiceWrite"]}),
    )
    .await;
    assert_eq!(
        in_eu["permissions"].as_array().unwrap().len(),
        1,
        "only the admin's InvoiceWrite"
    );
    // A composite context of another NIP: 410.
    let (code, _) = run(
        &api,
        &owner,
        OperationId::GrantEuEntityAdministrationPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Fingerprint", "value": fp},
            "contextIdentifier": {"type": "NipVatUe", "value": format!("{OTHER_NIP}-ATU12345678")},
            "description": "Cudzy podmiot unijny",
            "euEntityName": "Muster GmbH, Wien",
            "subjectDetails": {"subjectDetailsType": "PersonByFingerprintWithIdentifier",
                "personByFpWithId": {"firstName": "Hans", "lastName": "Muster",
                    "identifier": {"type": "Pesel", "value": "44051401458"}}},
            "euEntityDetails": {"fullName": "Muster GmbH", "address": "Ring 1, Wien"},
        })),
    )
    .await;
    assert_eq!(code, 410);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_paging_validation_and_retention() {
    let clock = ksef_sim::ManualClock::starting_now();
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());

    // A court bailiff's context may grant EnforcementOperations; the bailiff holds it.
    let r = api
        .call(
            OperationId::TestdataCreatePerson,
            &[],
            None,
            Body::Json(
                json!({"nip": OFFICE_NIP, "pesel": OFFICE_PESEL, "isBailiff": true,
                              "description": "Komornik sądowy"}),
            ),
        )
        .await;
    assert_eq!(r.status, 200);
    let bailiff = login(
        &api,
        &seal(OFFICE_NIP),
        nip_ctx(OFFICE_NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let roles = api
        .call(
            OperationId::QueryEntityRoles,
            &[],
            Some(&bailiff),
            Body::None,
        )
        .await;
    assert_eq!(roles.json["roles"][0]["role"], "CourtBailiff");
    let (code, st) = run(
        &api,
        &bailiff,
        OperationId::GrantPersonPermissions,
        &[],
        Body::Json(json!({
            "subjectIdentifier": {"type": "Pesel", "value": PESEL},
            "permissions": ["EnforcementOperations"],
            "description": "Asesor komorniczy",
            "subjectDetails": person_details(),
        })),
    )
    .await;
    assert_eq!(code, 200, "{st}");

    // Paging: 25 grants, pages of 10, sorted by startDate desc then id.
    let owner = login(
        &api,
        &seal(NIP),
        nip_ctx(NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    for i in 0..25 {
        let fp = format!("{:064X}", i + 1);
        let r = api
            .call(
                OperationId::GrantPersonPermissions,
                &[],
                Some(&owner),
                Body::Json(json!({
                    "subjectIdentifier": {"type": "Fingerprint", "value": fp},
                    "permissions": ["InvoiceRead"],
                    "description": format!("Osoba numer {i}"),
                    "subjectDetails": {"subjectDetailsType": "PersonByFingerprintWithIdentifier",
                        "personByFpWithId": {"firstName": "Ewa", "lastName": "Nowak",
                            "identifier": {"type": "Nip", "value": OTHER_NIP}}},
                })),
            )
            .await;
        assert_eq!(r.status, 202);
        wait_op(&api, &owner, r.json["referenceNumber"].as_str().unwrap()).await;
        clock.advance(time::Duration::seconds(1));
    }
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let r = api
            .call_q(
                OperationId::QueryPersonPermissions,
                &[],
                &format!("?pageOffset={offset}&pageSize=10"),
                Some(&owner),
                Body::Json(json!({"queryType": "PermissionsInCurrentContext"})),
                &[],
            )
            .await;
        assert_eq!(r.status, 200);
        seen.extend(r.json["permissions"].as_array().unwrap().iter().cloned());
        if r.json["hasMore"] == false {
            break;
        }
        offset += 1;
    }
    assert_eq!(seen.len(), 25);
    assert_eq!(offset, 2);
    assert_eq!(seen[0]["description"], "Osoba numer 24", "newest first");
    let r = api
        .call_q(
            OperationId::QueryPersonPermissions,
            &[],
            "?pageSize=5",
            Some(&owner),
            Body::Json(json!({"queryType": "PermissionsInCurrentContext"})),
            &[],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));

    // Validation: description too short, unknown permission, missing queryType, bad id.
    let r = api
        .call(
            OperationId::GrantPersonPermissions,
            &[],
            Some(&owner),
            Body::Json(
                json!({"subjectIdentifier": {"type": "Pesel", "value": PESEL},
                "permissions": ["InvoiceRead"], "description": "abc",
                "subjectDetails": person_details()}),
            ),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    let r = api
        .call_q(
            OperationId::GrantPersonPermissions,
            &[],
            "",
            Some(&owner),
            Body::Json(
                json!({"subjectIdentifier": {"type": "Pesel", "value": PESEL},
                "permissions": ["VatUeManage"], "description": "Nie dla osób",
                "subjectDetails": person_details()}),
            ),
            &[("X-Error-Format", "problem-details")],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    let r = api
        .call(
            OperationId::QueryPersonPermissions,
            &[],
            Some(&owner),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    let r = api
        .call(
            OperationId::RevokeCommonPermission,
            &["too-short"],
            Some(&owner),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    let r = api
        .call(
            OperationId::PermissionOperationStatus,
            &["20250101-EG-0000000000-0000000000-00"],
            Some(&owner),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 400);
    // Without CredentialsManage a grant is 403 with the permission it needs.
    api.testdata_grant(NIP, ("Pesel", PESEL), &["InvoiceRead"])
        .await;
    let reader = login(
        &api,
        &person(PESEL),
        nip_ctx(NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let r = api
        .call(
            OperationId::GrantEntityPermissions,
            &[],
            Some(&reader),
            Body::Json(json!({})),
        )
        .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.json["security"]["requiredAnyOfPermissions"],
        json!(["CredentialsManage"])
    );

    // Operation statuses are kept 30 days, then 410 Gone; another context never sees them.
    let r = api
        .call(
            OperationId::GrantPersonPermissions,
            &[],
            Some(&owner),
            Body::Json(
                json!({"subjectIdentifier": {"type": "Nip", "value": OTHER_NIP},
                "permissions": ["Introspection"], "description": "Podgląd sesji",
                "subjectDetails": person_details()}),
            ),
        )
        .await;
    let reference = r.json["referenceNumber"].as_str().unwrap().to_owned();
    assert_eq!(wait_op(&api, &owner, &reference).await["code"], 200);
    let r = api
        .call(
            OperationId::PermissionOperationStatus,
            &[&reference],
            Some(&bailiff),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 400);
    clock.advance(time::Duration::days(31));
    let owner = login(
        &api,
        &seal(NIP),
        nip_ctx(NIP),
        SubjectIdentifierType::CertificateSubject,
    )
    .await;
    let r = api
        .call(
            OperationId::PermissionOperationStatus,
            &[&reference],
            Some(&owner),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 410, "{:?}", r.json);
    sim.shutdown().await;
}
