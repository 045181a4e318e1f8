//! scenarios.md §7.42 (subunits) and §7.44 (enforcement operations) through the SDK against the
//! in-process simulator over HTTP, step by step as the Ministry's clients test them (J
//! `SubUnitPermissionIntegrationTest`, C `VatGroupParentSubunitPermissionsQueryE2ETests`,
//! C `EnforcementOperationsE2ETests`): grant → wait for the operation → search → the grant takes
//! effect at login → revoke → search → the effect is gone.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

mod common;
use futures_util::TryStreamExt;
use ksef::crypto::cert::PersonId;
use ksef::model::api;
use ksef::model::{ContextIdentifier, InternalId};
use ksef::permissions::{person_by_identifier, persons_query};
use ksef::{AuthenticatedClient, Error, KsefClient, NewTestPerson, NewTestSubject, TestIdentity};

/// A plain company that is no subject of any special kind.
const UNIT_NIP: &str = "5265877635";
/// The person (identified by NIP) who manages the unit's subunits.
const SUBUNIT_NIP: &str = "1112223303";
/// The person (identified by NIP) made administrator of a subunit.
const ADMIN_NIP: &str = "4445556607";
/// A VAT group and its member.
const VAT_GROUP_NIP: &str = "7778889900";
const VAT_MEMBER_NIP: &str = "1231231208";
/// An enforcement authority, a court bailiff and the grantee of enforcement operations.
const AUTHORITY_NIP: &str = "3213213201";
const BAILIFF_NIP: &str = "9990001108";
const BAILIFF_PESEL: &str = "85020212343";
const GRANTEE_NIP: &str = "7010002139";

use common::{nip, owner, sim};

/// A person whose personal certificate carries `TINPL-<nip>`.
fn person_with_nip(of: &str) -> TestIdentity {
    TestIdentity::Person {
        given_name: "Anna".into(),
        surname: "Testowa".into(),
        id: PersonId::Nip(of.into()),
    }
}

/// Logs a person identified by NIP in; the handle, or the failed authentication's status code.
async fn login(
    client: &KsefClient,
    who: &str,
    context: ContextIdentifier,
) -> Result<AuthenticatedClient, i32> {
    match client
        .auth()
        .test_certificate(&person_with_nip(who), context)
        .await
    {
        Ok(a) => Ok(a),
        Err(Error::AuthenticationFailed(s)) => Err(s.code),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

fn nip_subject(of: &str) -> api::PersonPermissionsSubjectIdentifier {
    api::PersonPermissionsSubjectIdentifier {
        r#type: api::PersonPermissionsSubjectIdentifierType::Nip,
        value: of.into(),
    }
}

/// `SubunitManage` + `CredentialsManage` for the person `of` in the caller's context.
fn subunit_manager(of: &str) -> api::PersonPermissionsGrantRequest {
    api::PersonPermissionsGrantRequest {
        subject_identifier: nip_subject(of),
        permissions: vec![
            api::PersonPermissionType::SubunitManage,
            api::PersonPermissionType::CredentialsManage,
        ],
        description: "Zarządzanie jednostkami podrzędnymi".into(),
        subject_details: person_by_identifier("Jan", "Testowy"),
    }
}

/// Subunit administrator (`CredentialsManage` in the internal unit) for the person `of`.
fn subunit_admin(of: &str, internal: &InternalId) -> api::SubunitPermissionsGrantRequest {
    api::SubunitPermissionsGrantRequest {
        subject_identifier: api::SubunitPermissionsSubjectIdentifier {
            r#type: api::SubunitPermissionsSubjectIdentifierType::Nip,
            value: of.into(),
        },
        context_identifier: api::SubunitPermissionsContextIdentifier {
            r#type: api::SubunitPermissionsContextIdentifierType::InternalId,
            value: internal.to_string(),
        },
        description: "Administrator jednostki podrzędnej".into(),
        subunit_name: Some("Jednostka podrzędna E2E".into()),
        subject_details: person_by_identifier("Jan", "Kowalski"),
    }
}

async fn subunits(
    a: &AuthenticatedClient,
    filter: Option<&InternalId>,
) -> Vec<api::SubunitPermission> {
    a.permissions()
        .subunits(api::SubunitPermissionsQueryRequest {
            subunit_identifier: filter.map(|i| api::SubunitPermissionsSubunitIdentifier {
                r#type: api::SubunitPermissionsSubunitIdentifierType::InternalId,
                value: i.to_string(),
            }),
        })
        .try_collect()
        .await
        .unwrap()
}

/// J `subUnitPermissionE2EIntegrationTest`: the unit lets a person manage its subunits; that
/// person, logged in in the unit's context, makes another the administrator of an internal
/// unit, finds the grant, and revokes it. The administrator can log in to the internal unit's
/// context only while granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subunit_admin_granted_by_a_subunit_manager_then_revoked() {
    let (sim, client) = sim().await;
    let unit = owner(&client, UNIT_NIP).await;
    let internal = InternalId::new(&nip(UNIT_NIP), 1234).unwrap();

    // Before any grant the manager cannot act for the unit.
    let unit_ctx = ContextIdentifier::Nip(nip(UNIT_NIP));
    assert_eq!(
        login(&client, SUBUNIT_NIP, unit_ctx.clone()).await.err(),
        Some(415)
    );
    unit.permissions()
        .grant_persons(&subunit_manager(SUBUNIT_NIP))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let manager = login(&client, SUBUNIT_NIP, unit_ctx).await.unwrap();

    let admin_ctx = ContextIdentifier::InternalId(internal.clone());
    assert_eq!(
        login(&client, ADMIN_NIP, admin_ctx.clone()).await.err(),
        Some(415),
        "no administrator yet"
    );
    manager
        .permissions()
        .grant_subunit_admin(&subunit_admin(ADMIN_NIP, &internal))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();

    // The manager finds the grant it made.
    let granted = subunits(&manager, None).await;
    assert_eq!(granted.len(), 1, "{granted:?}");
    let g = &granted[0];
    assert_eq!(
        g.authorized_identifier.r#type,
        api::SubunitPermissionsSubjectIdentifierType::Nip
    );
    assert_eq!(g.authorized_identifier.value, ADMIN_NIP);
    assert_eq!(
        g.subunit_identifier.r#type,
        api::SubunitPermissionsSubunitIdentifierType::InternalId
    );
    assert_eq!(g.subunit_identifier.value, internal.to_string());
    assert_eq!(g.subunit_name.as_deref(), Some("Jednostka podrzędna E2E"));
    assert_eq!(
        g.permission_scope,
        api::SubunitPermissionScope::CredentialsManage
    );

    // The administrator works in the internal unit's context.
    login(&client, ADMIN_NIP, admin_ctx.clone()).await.unwrap();

    // A plain company has no subordinate entities (the query answers, empty).
    let subordinates: Vec<api::SubordinateEntityRole> = unit
        .permissions()
        .subordinate_entities(api::SubordinateEntityRolesQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert!(subordinates.is_empty(), "{subordinates:?}");

    // Revoked by the manager: gone from the search, and the administrator is refused.
    manager
        .permissions()
        .revoke(g.id.as_str())
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    assert!(subunits(&manager, None).await.is_empty());
    assert_eq!(login(&client, ADMIN_NIP, admin_ctx).await.err(), Some(415));
    sim.shutdown().await;
}

/// C `SubunitPermissions_AsVatGroupParent_ShouldReturnList` (J
/// `subunitPermissionsAsVatGroupParentShouldReturnList`): a VAT group with one member; the group
/// lets the member manage subunits; the member, logged in in the group's context, names a
/// subunit administrator; the group (the parent) lists it, filtered by the internal unit, and
/// revokes it. The group also sees its role and the member's role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vat_group_parent_lists_and_revokes_subunit_admins() {
    let (sim, client) = sim().await;
    let td = client.testdata().unwrap();
    td.create_subject(&NewTestSubject {
        nip: nip(VAT_GROUP_NIP),
        subject_type: api::SubjectType::VatGroup,
        description: "Grupa VAT testowa".into(),
        subunits: vec![(
            nip(VAT_MEMBER_NIP),
            "Jednostka podrzędna - Grupa VAT".into(),
        )],
    })
    .await
    .unwrap();
    let parent = owner(&client, VAT_GROUP_NIP).await;

    // Roles: the group is a VAT group unit; its member is its subordinate VAT group subunit.
    let roles: Vec<api::EntityRole> = parent
        .permissions()
        .entity_roles()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(roles.len(), 1);
    assert_eq!(roles[0].role, api::EntityRoleType::VatGroupUnit);
    let subordinates: Vec<api::SubordinateEntityRole> = parent
        .permissions()
        .subordinate_entities(api::SubordinateEntityRolesQueryRequest::default())
        .try_collect()
        .await
        .unwrap();
    assert_eq!(subordinates.len(), 1, "{subordinates:?}");
    assert_eq!(
        subordinates[0].subordinate_entity_identifier.value,
        VAT_MEMBER_NIP
    );
    assert_eq!(
        subordinates[0].role,
        api::SubordinateEntityRoleType::VatGroupSubUnit
    );

    // The member gets SubunitManage and CredentialsManage in the group's context.
    parent
        .permissions()
        .grant_persons(&subunit_manager(VAT_MEMBER_NIP))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let member = login(
        &client,
        VAT_MEMBER_NIP,
        ContextIdentifier::Nip(nip(VAT_GROUP_NIP)),
    )
    .await
    .unwrap();

    // The member names the administrator of one of the group's internal units.
    let internal = InternalId::new(&nip(VAT_GROUP_NIP), 1).unwrap();
    member
        .permissions()
        .grant_subunit_admin(&subunit_admin(ADMIN_NIP, &internal))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();

    // The parent lists the subunit administrators, filtered by the internal unit.
    let listed = subunits(&parent, Some(&internal)).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].authorized_identifier.value, ADMIN_NIP);
    assert_eq!(
        listed[0].authorized_identifier.r#type,
        api::SubunitPermissionsSubjectIdentifierType::Nip
    );
    assert_eq!(listed[0].subunit_identifier.value, internal.to_string());
    // Another internal unit of the group has none.
    let other = InternalId::new(&nip(VAT_GROUP_NIP), 2).unwrap();
    assert!(subunits(&parent, Some(&other)).await.is_empty());
    login(
        &client,
        ADMIN_NIP,
        ContextIdentifier::InternalId(internal.clone()),
    )
    .await
    .unwrap();

    // The parent revokes every listed permission; the list is empty after.
    for p in &listed {
        parent
            .permissions()
            .revoke(p.id.as_str())
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    assert!(subunits(&parent, Some(&internal)).await.is_empty());
    assert_eq!(
        login(&client, ADMIN_NIP, ContextIdentifier::InternalId(internal))
            .await
            .err(),
        Some(415)
    );

    // Cleanup as the Ministry's test does: the group goes, and can be created again.
    td.remove_subject(&nip(VAT_GROUP_NIP)).await.unwrap();
    sim.shutdown().await;
}

const ENFORCEMENT: &str = "E2E grant EnforcementOperations";

fn enforcement_grant(to: &str) -> api::PersonPermissionsGrantRequest {
    api::PersonPermissionsGrantRequest {
        subject_identifier: nip_subject(to),
        permissions: vec![api::PersonPermissionType::EnforcementOperations],
        description: ENFORCEMENT.into(),
        subject_details: person_by_identifier("Jan", "Kowalski"),
    }
}

/// The persons query C `EnforcementOperationsE2ETests` uses: EnforcementOperations granted in
/// the current context, with this test's description.
async fn enforcement_grants(a: &AuthenticatedClient) -> Vec<api::PersonPermission> {
    let mut q = persons_query(api::PersonPermissionsQueryType::PermissionsGrantedInCurrentContext);
    q.permission_types = Some(vec![api::PersonPermissionType::EnforcementOperations]);
    let all: Vec<api::PersonPermission> = a.permissions().persons(q).try_collect().await.unwrap();
    all.into_iter()
        .filter(|p| p.description == ENFORCEMENT)
        .collect()
}

/// Grant → search → the grantee logs in → revoke → search → the grantee is refused, in the
/// context of `granting` (an enforcement authority or a court bailiff).
async fn enforcement_round_trip(client: &KsefClient, granting: &AuthenticatedClient, ctx: &str) {
    let context = ContextIdentifier::Nip(nip(ctx));
    assert_eq!(
        login(client, GRANTEE_NIP, context.clone()).await.err(),
        Some(415)
    );
    granting
        .permissions()
        .grant_persons(&enforcement_grant(GRANTEE_NIP))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap();
    let found = enforcement_grants(granting).await;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(
        found[0].permission_scope,
        api::PersonPermissionScope::EnforcementOperations
    );
    assert_eq!(found[0].authorized_identifier.value, GRANTEE_NIP);
    assert_eq!(found[0].permission_state, api::PermissionState::Active);
    login(client, GRANTEE_NIP, context.clone()).await.unwrap();
    for p in &found {
        granting
            .permissions()
            .revoke(p.id.as_str())
            .await
            .unwrap()
            .wait()
            .await
            .unwrap();
    }
    assert!(enforcement_grants(granting).await.is_empty());
    assert_eq!(login(client, GRANTEE_NIP, context).await.err(), Some(415));
}

/// C `GrantEnforcementOperations_AsEnforcementAuthority_E2E_GrantSearchRevokeSearch` and
/// `…_AsCourtBailiff_…`, and the negative `EnforcementOperations` test: outside an enforcement
/// context the operation fails (430) and the grant is not visible.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforcement_operations_by_authority_and_bailiff_not_elsewhere() {
    let (sim, client) = sim().await;
    let td = client.testdata().unwrap();

    // Enforcement authority (organ egzekucyjny): a test subject of that type.
    td.create_subject(&NewTestSubject {
        nip: nip(AUTHORITY_NIP),
        subject_type: api::SubjectType::EnforcementAuthority,
        description: "E2E EnforcementAuthority".into(),
        subunits: Vec::new(),
    })
    .await
    .unwrap();
    let authority = owner(&client, AUTHORITY_NIP).await;
    let roles: Vec<api::EntityRole> = authority
        .permissions()
        .entity_roles()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(roles[0].role, api::EntityRoleType::EnforcementAuthority);
    enforcement_round_trip(&client, &authority, AUTHORITY_NIP).await;
    td.remove_subject(&nip(AUTHORITY_NIP)).await.unwrap();

    // Court bailiff (komornik sądowy): a test person with the bailiff flag.
    td.create_person_with(&NewTestPerson {
        nip: nip(BAILIFF_NIP),
        pesel: BAILIFF_PESEL.parse().unwrap(),
        description: "E2E CourtBailiff".into(),
        is_bailiff: true,
        is_deceased: false,
    })
    .await
    .unwrap();
    let bailiff = owner(&client, BAILIFF_NIP).await;
    let roles: Vec<api::EntityRole> = bailiff
        .permissions()
        .entity_roles()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(roles[0].role, api::EntityRoleType::CourtBailiff);
    enforcement_round_trip(&client, &bailiff, BAILIFF_NIP).await;
    td.remove_person(&nip(BAILIFF_NIP)).await.unwrap();

    // Disallowed: a plain company's context. The operation fails with 430 and nothing shows.
    let plain = owner(&client, UNIT_NIP).await;
    let err = plain
        .permissions()
        .grant_persons(&enforcement_grant(GRANTEE_NIP))
        .await
        .unwrap()
        .wait()
        .await
        .unwrap_err();
    assert_eq!(err.status_code(), Some(430), "{err}");
    assert!(enforcement_grants(&plain).await.is_empty());
    let mut q = persons_query(api::PersonPermissionsQueryType::PermissionsInCurrentContext);
    q.permission_types = Some(vec![api::PersonPermissionType::EnforcementOperations]);
    let visible: Vec<api::PersonPermission> =
        plain.permissions().persons(q).try_collect().await.unwrap();
    assert!(visible.is_empty(), "{visible:?}");
    assert_eq!(
        login(&client, GRANTEE_NIP, ContextIdentifier::Nip(nip(UNIT_NIP)))
            .await
            .err(),
        Some(415)
    );
    sim.shutdown().await;
}
