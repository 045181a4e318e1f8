//! Test data against the in-process simulator: every anonymous `/testdata` endpoint through the
//! SDK, and the temporal scope that removes what it created — also when its body fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use ksef::crypto::cert::PersonId;
use ksef::model::api::{SubjectType, TestDataPermissionType};
use ksef::model::{ContextIdentifier, Environment, Nip, Pesel};
use ksef::{Error, KsefClient, NewTestSubject, TestIdentity, TestSubject};

const COMPANY: &str = "5265877635";
const GROUP: &str = "7010002139";
const MEMBER: &str = "1111111111";
const PESEL: &str = "44051401359";

async fn sim() -> (ksef_sim::SimulatorHandle, KsefClient) {
    let sim = ksef_sim::Simulator::builder()
        .seed(11)
        .rate_limits(false)
        .start()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    (sim, client)
}

fn person() -> TestIdentity {
    TestIdentity::Person {
        given_name: "Jan".into(),
        surname: "Testowy".into(),
        id: PersonId::Pesel(PESEL.into()),
    }
}

/// Authenticates the PESEL person in the company's context; `Ok(())` or the failure status code.
async fn person_login(client: &KsefClient) -> Result<(), i32> {
    let ctx = ContextIdentifier::Nip(COMPANY.parse().unwrap());
    match client.auth().test_certificate(&person(), ctx).await {
        Ok(_) => Ok(()),
        Err(Error::AuthenticationFailed(s)) => Err(s.code),
        Err(e) => panic!("unexpected error: {e}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_permissions_work_inside_and_are_revoked_after() {
    let (sim, client) = sim().await;
    let company: Nip = COMPANY.parse().unwrap();
    let pesel: Pesel = PESEL.parse().unwrap();
    assert_eq!(person_login(&client).await, Err(415), "no permission yet");

    let td = client.testdata().unwrap();
    let inside = td
        .temporal(async |t| {
            t.grant_permissions(
                &company,
                &TestSubject::Pesel(pesel.clone()),
                &[TestDataPermissionType::InvoiceWrite],
            )
            .await?;
            assert_eq!(t.pending(), 1);
            Ok(person_login(&client).await)
        })
        .await
        .unwrap();
    assert_eq!(inside, Ok(()), "the granted permission lets the person in");
    assert_eq!(
        person_login(&client).await,
        Err(415),
        "the scope revoked the permission"
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_cleans_up_in_reverse_order_when_the_body_fails() {
    let (sim, client) = sim().await;
    let company: Nip = COMPANY.parse().unwrap();
    let pesel: Pesel = PESEL.parse().unwrap();
    let ctx = ContextIdentifier::Nip(company.clone());
    let td = client.testdata().unwrap();
    let result: ksef::Result<()> = td
        .temporal(async |t| {
            // Person first, then a permission for them, then a block: undone block → permission →
            // person, so every removal finds what it removes.
            t.create_person(&company, &pesel, "ksef-rs temporal person")
                .await?;
            t.grant_permissions(
                &company,
                &TestSubject::Pesel(pesel.clone()),
                &[TestDataPermissionType::InvoiceRead],
            )
            .await?;
            t.block_context(&ctx).await?;
            assert_eq!(t.pending(), 3);
            assert_eq!(person_login(&client).await, Err(480), "context blocked");
            // The body fails: a duplicate person is refused by KSeF.
            t.create_person(&company, &pesel, "ksef-rs temporal person")
                .await?;
            unreachable!("a second person with the same NIP must be refused");
        })
        .await;
    assert!(result.is_err(), "the body's error is returned");
    // Cleaned up: the context is unblocked, the person and the permission are gone, so the same
    // person can be created again.
    let seal = TestIdentity::Seal {
        name: "ksef-rs".into(),
        nip: COMPANY.into(),
    };
    client
        .auth()
        .test_certificate(&seal, ctx.clone())
        .await
        .expect("unblocked after the scope");
    assert_eq!(person_login(&client).await, Err(415));
    td.create_person(&company, &pesel, "ksef-rs temporal person again")
        .await
        .expect("the person was removed at clean-up");
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subjects_attachments_and_explicit_cleanup() {
    let (sim, client) = sim().await;
    let group: Nip = GROUP.parse().unwrap();
    let member: Nip = MEMBER.parse().unwrap();
    let td = client.testdata().unwrap();
    let subject = NewTestSubject {
        nip: group.clone(),
        subject_type: SubjectType::VatGroup,
        description: "ksef-rs VAT group".into(),
        subunits: vec![(member.clone(), "ksef-rs group member".into())],
    };
    let rec = td.recorder();
    rec.create_subject(&subject).await.unwrap();
    rec.enable_attachments(&group).await.unwrap();
    // A second creation of the same subject is refused while it exists.
    assert!(td.create_subject(&subject).await.is_err());
    assert_eq!(rec.pending(), 2);
    let failures = rec.cleanup().await;
    assert!(failures.is_empty(), "{failures:?}");
    // Removed: it can be created again (and removed without the recorder).
    td.create_subject(&subject).await.unwrap();
    td.remove_subject(&group).await.unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn test_data_is_refused_outside_test_before_any_call() {
    for env in [Environment::Demo, Environment::Production] {
        let client = KsefClient::new(env).unwrap();
        match client.testdata() {
            Err(Error::TestOnly { .. }) => {}
            other => panic!("expected TestOnly, got {other:?}"),
        }
    }
}
