//! `auth.permissions()` against the in-process simulator over HTTP, one test per group of
//! scenarios in scenarios.md §7 (each: grant → wait for the operation → search → revoke → search).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

#[path = "../examples/permissions.rs"]
#[allow(dead_code)]
mod example;

mod common;
use futures_util::TryStreamExt;
use ksef::crypto::cert::PersonId;
use ksef::model::api;
use ksef::model::{ContextIdentifier, InternalId, NipVatUe, Pesel, SubjectIdentifierType};
use ksef::permissions::{
    authorizations_query, person_by_fingerprint, person_by_identifier, persons_query,
};
use ksef::{Error, NewTestPerson, NewTestSubject, TestIdentity, XadesOptions};

const NIP: &str = "5265877635";
const CLIENT_NIP: &str = "7010002139";
const OFFICE_NIP: &str = "3333333333";
const SUB_NIP: &str = "5554443334";
const PESEL: &str = "90010112349";
const OFFICE_PESEL: &str = "85020212343";

use common::{nip, owner, sim};

fn employee(pesel: &str) -> TestIdentity {
    TestIdentity::Person {
        given_name: "Anna".into(),
        surname: "Nowak".into(),
        id: PersonId::Pesel(pesel.into()),
    }
}

fn pesel_subject(pesel: &str) -> api::PersonPermissionsSubjectIdentifier {
    api::PersonPermissionsSubjectIdentifier {
        r#type: api::PersonPermissionsSubjectIdentifierType::Pesel,
        value: pesel.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn example_person_permissions_flow() {
    let (sim, client) = sim().await;
    let out = example::permissions_flow(&client, &nip(NIP), &PESEL.parse::<Pesel>().unwrap())
        .await
        .unwrap();
    assert_eq!(out.granted.len(), 2);
    assert!(
        out.granted
            .iter()
            .all(|p| p.permission_state == api::PermissionState::Active)
    );
    assert_eq!(out.personal.len(), 2);
    assert_eq!(out.left_after_revoke, 0);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn entity_indirect_and_authorization_permissions() {
    let (sim, client) = sim().await;
    let customer = owner(&client, CLIENT_NIP).await;
    let office = owner(&client, OFFICE_NIP).await;

    // §7.39 entity permissions: the customer lets the accounting office issue (delegable).
    customer
        .permissions()
        .grant_entities(&api::EntityPermissionsGrantRequest {
            subject_identifier: api::EntityPermissionsSubjectIdentifier {
                r#type: api::EntityPermissionsSubjectIdentifierType::Nip,
                value: OFFICE_NIP.into(),
            },
            permissions: vec![
                api::EntityPermission {
                    r#type: api::EntityPermissionType::InvoiceWrite,
                    can_delegate: Some(true),
                },
                api::EntityPermission {
                    r#type: api::EntityPermissionType::InvoiceRead,
                    can_delegate: None,
                },
            ],
            description: "Biuro rachunkowe".into(),
            subject_details: api::EntityDetails {
                full_name: "Biuro Rachunkowe Sp. z o.o.".into(),
            },
        })
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let received: Vec<api::EntityPermissionItem> = office
        .permissions()
        .entities(api::EntityPermissionsQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(received.len(), 2);
    assert_eq!(received[0].context_identifier.value, CLIENT_NIP);

    // §7.38/§7.41 indirect, selective: complete chain → the office's employee can work for the
    // customer; incomplete chain (InvoiceRead not delegable) → 440, no permission.
    let indirect = |perm: api::IndirectPermissionType,
                    target: api::IndirectPermissionsTargetIdentifier| {
        api::IndirectPermissionsGrantRequest {
            subject_identifier: api::IndirectPermissionsSubjectIdentifier {
                r#type: api::IndirectPermissionsSubjectIdentifierType::Pesel,
                value: OFFICE_PESEL.into(),
            },
            target_identifier: Some(target),
            permissions: vec![perm],
            description: "Pracownik biura".into(),
            subject_details: person_by_identifier("Ewa", "Kowalska"),
        }
    };
    let customer_target = api::IndirectPermissionsTargetIdentifier {
        r#type: api::IndirectPermissionsTargetIdentifierType::Nip,
        value: Some(CLIENT_NIP.into()),
    };
    office
        .permissions()
        .grant_indirect(&indirect(
            api::IndirectPermissionType::InvoiceWrite,
            customer_target.clone(),
        ))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let worker = client
        .auth()
        .test_certificate(
            &employee(OFFICE_PESEL),
            ContextIdentifier::Nip(nip(CLIENT_NIP)),
        )
        .await
        .unwrap();
    let effective: Vec<api::PersonalPermission> = worker
        .permissions()
        .personal(api::PersonalPermissionsQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(effective.len(), 1);
    assert_eq!(
        effective[0].permission_scope,
        api::PersonalPermissionScope::InvoiceWrite
    );
    let err = office
        .permissions()
        .grant_indirect(&indirect(
            api::IndirectPermissionType::InvoiceRead,
            customer_target,
        ))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::PermissionOperationFailed { .. }),
        "{err}"
    );
    assert_eq!(err.status_code(), Some(440));
    // §7.41 all partners (general).
    office
        .permissions()
        .grant_indirect(&indirect(
            api::IndirectPermissionType::InvoiceWrite,
            api::IndirectPermissionsTargetIdentifier {
                r#type: api::IndirectPermissionsTargetIdentifierType::AllPartners,
                value: None,
            },
        ))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let granted: Vec<api::PersonPermission> = office
        .permissions()
        .persons(persons_query(
            api::PersonPermissionsQueryType::PermissionsGrantedInCurrentContext,
        ))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(granted.len(), 2);
    // §7.46 revoke both: no active permission left for the PESEL.
    for p in &granted {
        office
            .permissions()
            .revoke(p.id.as_str())
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    let left: Vec<api::PersonPermission> = office
        .permissions()
        .persons(persons_query(
            api::PersonPermissionsQueryType::PermissionsGrantedInCurrentContext,
        ))
        .try_collect()
        .await
        .unwrap();
    assert!(left.is_empty());

    // §7.40 authorization (self-invoicing): granted → searched both ways → revoked.
    customer
        .permissions()
        .grant_authorization(&api::EntityAuthorizationPermissionsGrantRequest {
            subject_identifier: api::EntityAuthorizationPermissionsSubjectIdentifier {
                r#type: api::EntityAuthorizationPermissionsSubjectIdentifierType::Nip,
                value: OFFICE_NIP.into(),
            },
            permission: api::EntityAuthorizationPermissionType::SelfInvoicing,
            description: "Samofakturowanie".into(),
            subject_details: api::EntityDetails {
                full_name: "Biuro Rachunkowe Sp. z o.o.".into(),
            },
        })
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let received: Vec<api::EntityAuthorizationGrant> = office
        .permissions()
        .authorizations(authorizations_query(api::QueryType::Received))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].authorization_scope,
        api::InvoicePermissionType::SelfInvoicing
    );
    customer
        .permissions()
        .revoke_authorization(received[0].id.as_str())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let granted: Vec<api::EntityAuthorizationGrant> = customer
        .permissions()
        .authorizations(authorizations_query(api::QueryType::Granted))
        .try_collect()
        .await
        .unwrap();
    assert!(granted.is_empty());
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subunits_roles_enforcement_eu_and_attachments() {
    let (sim, client) = sim().await;
    let td = client.testdata().unwrap();
    td.create_subject(&NewTestSubject {
        nip: nip(OFFICE_NIP),
        subject_type: api::SubjectType::Jst,
        description: "Gmina testowa".into(),
        subunits: vec![(nip(SUB_NIP), "Szkoła podstawowa".into())],
    })
    .await
    .unwrap();
    let jst = owner(&client, OFFICE_NIP).await;

    // §7.42/§7.45 roles of the entity and its subordinate entities.
    let roles: Vec<api::EntityRole> = jst
        .permissions()
        .entity_roles()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(roles[0].role, api::EntityRoleType::LocalGovernmentUnit);
    let subs: Vec<api::SubordinateEntityRole> = jst
        .permissions()
        .subordinate_entities(api::SubordinateEntityRolesQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(subs[0].subordinate_entity_identifier.value, SUB_NIP);

    // §7.42 subunit administrator of an internal unit: grant → search → admin works → revoke.
    let internal = InternalId::new(&nip(OFFICE_NIP), 42).unwrap();
    jst.permissions()
        .grant_subunit_admin(&api::SubunitPermissionsGrantRequest {
            subject_identifier: api::SubunitPermissionsSubjectIdentifier {
                r#type: api::SubunitPermissionsSubjectIdentifierType::Pesel,
                value: PESEL.into(),
            },
            context_identifier: api::SubunitPermissionsContextIdentifier {
                r#type: api::SubunitPermissionsContextIdentifierType::InternalId,
                value: internal.to_string(),
            },
            description: "Administrator wydziału".into(),
            subunit_name: Some("Wydział Finansowy".into()),
            subject_details: person_by_identifier("Anna", "Nowak"),
        })
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let admins: Vec<api::SubunitPermission> = jst
        .permissions()
        .subunits(api::SubunitPermissionsQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(admins.len(), 1);
    assert_eq!(admins[0].subunit_name.as_deref(), Some("Wydział Finansowy"));
    client
        .auth()
        .test_certificate(&employee(PESEL), ContextIdentifier::InternalId(internal))
        .await
        .unwrap();
    jst.permissions()
        .revoke(admins[0].id.as_str())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let admins: Vec<api::SubunitPermission> = jst
        .permissions()
        .subunits(api::SubunitPermissionsQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert!(admins.is_empty());

    // §7.44 enforcement: refused outside an enforcement context (430, not visible), granted by
    // a court bailiff.
    let plain = owner(&client, NIP).await;
    let enforcement = |pesel: &str| api::PersonPermissionsGrantRequest {
        subject_identifier: pesel_subject(pesel),
        permissions: vec![api::PersonPermissionType::EnforcementOperations],
        description: "Czynności egzekucyjne".into(),
        subject_details: person_by_identifier("Jan", "Kowalski"),
    };
    let err = plain
        .permissions()
        .grant_persons(&enforcement(PESEL))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(430), "{err}");
    let visible: Vec<api::PersonPermission> = plain
        .permissions()
        .persons(persons_query(
            api::PersonPermissionsQueryType::PermissionsInCurrentContext,
        ))
        .try_collect()
        .await
        .unwrap();
    assert!(visible.is_empty());
    td.create_person_with(&NewTestPerson {
        nip: nip(CLIENT_NIP),
        pesel: OFFICE_PESEL.parse().unwrap(),
        description: "Komornik sądowy".into(),
        is_bailiff: true,
        is_deceased: false,
    })
    .await
    .unwrap();
    let bailiff = owner(&client, CLIENT_NIP).await;
    bailiff
        .permissions()
        .grant_persons(&enforcement(PESEL))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let roles: Vec<api::EntityRole> = bailiff
        .permissions()
        .entity_roles()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(roles[0].role, api::EntityRoleType::CourtBailiff);

    // §7.43 EU entity: administrator by fingerprint, who then authenticates in the composite
    // context and names a representative; the owner lists the administrators.
    let admin_signer = ksef::test_signer(&employee(PESEL)).unwrap();
    let fingerprint = admin_signer.certificate().fingerprint_sha256_hex();
    let composite: NipVatUe = format!("{NIP}-ATU12345678").parse().unwrap();
    plain
        .permissions()
        .grant_eu_entity_admin(&api::EuEntityAdministrationPermissionsGrantRequest {
            subject_identifier: api::EuEntityAdministrationPermissionsSubjectIdentifier {
                r#type: api::EuEntityAdministrationPermissionsSubjectIdentifierType::Fingerprint,
                value: fingerprint.clone(),
            },
            context_identifier: api::EuEntityAdministrationPermissionsContextIdentifier {
                r#type: api::EuEntityAdministrationPermissionsContextIdentifierType::NipVatUe,
                value: composite.to_string(),
            },
            description: "Administrator podmiotu unijnego".into(),
            eu_entity_name: "Muster GmbH, Wien".into(),
            subject_details: api::EuEntityPermissionSubjectDetails {
                subject_details_type:
                    api::EuEntityPermissionSubjectDetailsType::PersonByFingerprintWithIdentifier,
                person_by_fp_with_id: person_by_fingerprint(
                    "Anna",
                    "Nowak",
                    api::PersonIdentifier {
                        r#type: api::PersonIdentifierType::Pesel,
                        value: PESEL.into(),
                    },
                )
                .person_by_fp_with_id,
                person_by_fp_no_id: None,
                entity_by_fp: None,
            },
            eu_entity_details: api::EuEntityDetails {
                full_name: "Muster GmbH".into(),
                address: "Ring 1, Wien".into(),
            },
        })
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let admins: Vec<api::EuEntityPermission> = plain
        .permissions()
        .eu_entities(api::EuEntityPermissionsQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(
        admins.len(),
        4,
        "VatUeManage, InvoiceWrite, InvoiceRead, Introspection"
    );
    assert!(
        admins
            .iter()
            .all(|a| a.authorized_fingerprint_identifier == fingerprint)
    );
    let eu_admin = client
        .auth()
        .xades_with(
            &admin_signer,
            ContextIdentifier::NipVatUe(composite),
            &XadesOptions {
                subject_identifier_type: SubjectIdentifierType::CertificateFingerprint,
                ..XadesOptions::default()
            },
        )
        .await
        .unwrap();
    eu_admin
        .permissions()
        .grant_eu_entity_representative(&api::EuEntityPermissionsGrantRequest {
            subject_identifier: api::EuEntityPermissionsSubjectIdentifier {
                r#type: api::EuEntityPermissionsSubjectIdentifierType::Fingerprint,
                value: "AB".repeat(32),
            },
            permissions: vec![api::EuEntityPermissionType::InvoiceWrite],
            description: "Reprezentant podmiotu unijnego".into(),
            subject_details: api::EuEntityPermissionSubjectDetails {
                subject_details_type:
                    api::EuEntityPermissionSubjectDetailsType::EntityByFingerprint,
                person_by_fp_with_id: None,
                person_by_fp_no_id: None,
                entity_by_fp: Some(api::EntityByFingerprintDetails {
                    full_name: "Vertreter AG".into(),
                    address: "Gasse 2, Graz".into(),
                }),
            },
        })
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let in_eu: Vec<api::EuEntityPermission> = eu_admin
        .permissions()
        .eu_entities(api::EuEntityPermissionsQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(in_eu.len(), 5);

    // §7.45 attachment permission status.
    let status = plain.permissions().attachment_status().await.unwrap();
    assert_eq!(status.is_attachment_allowed, Some(false));

    // Bad input is refused before any call.
    let mut bad = enforcement(PESEL);
    bad.description = "abc".into();
    assert!(matches!(
        plain.permissions().grant_persons(&bad).await.unwrap_err(),
        Error::InvalidInput(_)
    ));
    assert!(matches!(
        plain.permissions().revoke("nope").await.unwrap_err(),
        Error::InvalidInput(_)
    ));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn person_permission_searches_by_subject_kind() {
    // §7.37: searches as the owner filtered by fingerprint, NIP or PESEL; the grantee's own
    // permissions in the current context; a PESEL in a NIP context.
    let (sim, client) = sim().await;
    let owner = owner(&client, NIP).await;
    let fingerprint = "AB".repeat(32);
    let grants = [
        (
            api::PersonPermissionsSubjectIdentifierType::Fingerprint,
            fingerprint.clone(),
            person_by_fingerprint(
                "Ewa",
                "Nowak",
                api::PersonIdentifier {
                    r#type: api::PersonIdentifierType::Nip,
                    value: CLIENT_NIP.into(),
                },
            ),
        ),
        (
            api::PersonPermissionsSubjectIdentifierType::Nip,
            OFFICE_NIP.to_owned(),
            person_by_identifier("Jan", "Kowalski"),
        ),
        (
            api::PersonPermissionsSubjectIdentifierType::Pesel,
            PESEL.to_owned(),
            person_by_identifier("Anna", "Nowak"),
        ),
    ];
    for (kind, value, details) in grants {
        owner
            .permissions()
            .grant_persons(&api::PersonPermissionsGrantRequest {
                subject_identifier: api::PersonPermissionsSubjectIdentifier {
                    r#type: kind,
                    value,
                },
                permissions: vec![api::PersonPermissionType::InvoiceRead],
                description: "Przeglądanie faktur".into(),
                subject_details: details,
            })
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    for (kind, value) in [
        (
            api::PersonPermissionsAuthorizedIdentifierType::Fingerprint,
            fingerprint.as_str(),
        ),
        (
            api::PersonPermissionsAuthorizedIdentifierType::Nip,
            OFFICE_NIP,
        ),
        (api::PersonPermissionsAuthorizedIdentifierType::Pesel, PESEL),
    ] {
        let mut filter =
            persons_query(api::PersonPermissionsQueryType::PermissionsInCurrentContext);
        filter.authorized_identifier = Some(api::PersonPermissionsAuthorizedIdentifier {
            r#type: kind.clone(),
            value: value.into(),
        });
        let found: Vec<api::PersonPermission> = owner
            .permissions()
            .persons(filter)
            .try_collect()
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{kind:?}");
        assert_eq!(found[0].authorized_identifier.value, value);
    }
    // The PESEL holder in the NIP context sees exactly its own permission.
    let person = client
        .auth()
        .test_certificate(&employee(PESEL), ContextIdentifier::Nip(nip(NIP)))
        .await
        .unwrap();
    let mine: Vec<api::PersonalPermission> = person
        .permissions()
        .personal(api::PersonalPermissionsQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(
        mine[0].permission_scope,
        api::PersonalPermissionScope::InvoiceRead
    );
    sim.shutdown().await;
}

/// `XadesOptions::allowed_ips` (the AuthTokenRequest's `AuthorizationPolicy`) binds the tokens
/// to those addresses: from elsewhere every call fails with 403 `ip-not-allowed`, which the
/// SDK reports as `ForbiddenReason::IpNotAllowed`; a policy that covers the caller works.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_policy_binds_tokens_to_allowed_ips() {
    use ksef::model::auth_request::AllowedIps;
    use ksef::transport::ForbiddenReason;
    let (sim, client) = sim().await;
    let signer = ksef::test_signer(&TestIdentity::Seal {
        name: "Firma Testowa".into(),
        nip: "5265877635".into(),
    })
    .unwrap();
    let login = |allowed: AllowedIps| {
        let (client, signer) = (&client, &signer);
        async move {
            client
                .auth()
                .xades_with(
                    signer,
                    ContextIdentifier::Nip(nip("5265877635")),
                    &XadesOptions {
                        allowed_ips: Some(allowed),
                        ..XadesOptions::default()
                    },
                )
                .await
                .unwrap()
        }
    };
    // The simulator sees the test's loopback address, outside 10.0.0.1.
    let elsewhere = login(AllowedIps {
        ip4_addresses: vec![[10, 0, 0, 1].into()],
        ..AllowedIps::default()
    })
    .await;
    let err = elsewhere
        .permissions()
        .attachment_status()
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(403), "{err}");
    let Error::Transport(t) = &err else {
        panic!("not a transport error: {err:?}")
    };
    let api = t.api_error().unwrap();
    assert_eq!(api.reason, Some(ForbiddenReason::IpNotAllowed), "{err}");
    // Refreshing does not help: the refresh token is bound too.
    let err = elsewhere.refresh().await.unwrap_err();
    assert_eq!(err.http_status(), Some(403), "{err}");

    let here = login(AllowedIps {
        ip4_masks: vec!["127.0.0.0/8".parse().unwrap()],
        ..AllowedIps::default()
    })
    .await;
    here.permissions().attachment_status().await.unwrap();
    here.refresh().await.unwrap();
    here.permissions().attachment_status().await.unwrap();
    sim.shutdown().await;
}
