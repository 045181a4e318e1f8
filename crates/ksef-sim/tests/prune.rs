//! Housekeeping of a long-running simulator on a manual clock: expired challenges,
//! authentication operations none of whose tokens is usable any more, and idle rate-limit
//! counters are dropped; what can still be used is kept.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ksef_model::auth_request::SubjectIdentifierType;
use ksef_model::operations::OperationId;
use time::Duration;

/// The detail of a 21111 answer.
fn challenge_error(r: &Resp) -> String {
    assert_eq!((r.status, r.code()), (400, 21111), "{:?}", r.json);
    r.json["exception"]["exceptionDetailList"][0]["details"][0]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_challenges_and_auth_operations_are_dropped() {
    let clock = ksef_sim::ManualClock::starting_now();
    // No tick: only the explicit purges below remove anything.
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .prune_every(None)
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let seal = signer("xmlsec1cli-rsa-seal");
    let subject = SubjectIdentifierType::CertificateSubject;

    // A: redeemed, no session. B: finished, never redeemed. C: redeemed, opened a session.
    let (_, refresh_a, _) = api.login(&seal, NIP).await;
    let xml = api.signed_request(&seal, NIP, subject).await;
    let r = api.submit_xades(xml, "").await;
    assert_eq!(r.status, 202);
    let st = api
        .auth_status(
            r.json["referenceNumber"].as_str().unwrap(),
            r.json["authenticationToken"]["token"].as_str().unwrap(),
        )
        .await;
    assert_eq!(st["status"]["code"], 200);
    let (access_c, _, _) = api.login(&seal, NIP).await;
    api.open_session(&access_c).await;
    // Two signed documents whose challenges are never used.
    let late = api.signed_request(&seal, NIP, subject).await;
    let later = api.signed_request(&seal, NIP, subject).await;
    assert_eq!(sim.purge_expired(), ksef_sim::Purged::default());

    // 11 minutes on: the unused challenges expired but are still known until the purge…
    clock.advance(Duration::minutes(11));
    let r = api.submit_xades(late.clone(), "").await;
    assert_eq!(challenge_error(&r), "Wyzwanie autoryzacyjne wygasło.");
    // …which drops all five (three used by the logins, two never used); no operation yet.
    let purged = sim.purge_expired();
    assert_eq!((purged.challenges, purged.auth_operations), (5, 0));
    let r = api.submit_xades(later, "").await;
    assert_eq!(challenge_error(&r), "Wyzwanie autoryzacyjne nie istnieje.");

    // 46 minutes: every operation token expired; B had nothing else and goes.
    clock.advance(Duration::minutes(35));
    assert_eq!(sim.purge_expired().auth_operations, 1);
    // A's refresh token is still valid and still works.
    let r = api
        .call(
            OperationId::RefreshAccessToken,
            &[],
            Some(&refresh_a),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let access_a = r.json["accessToken"]["token"].as_str().unwrap().to_owned();

    // Just under 7 days + 15 minutes after the logins A's last access token could still be
    // valid: A stays. Then it goes; C stays because its session's UPOs cite it.
    clock.advance(Duration::days(7) + Duration::minutes(15) - Duration::minutes(47));
    assert_eq!(sim.purge_expired().auth_operations, 0);
    clock.advance(Duration::minutes(2));
    assert_eq!(sim.purge_expired().auth_operations, 1);
    let r = api
        .call(
            OperationId::ListAuthSessions,
            &[],
            Some(&access_a),
            Body::None,
        )
        .await;
    assert_eq!(
        r.status, 401,
        "the purged operation's tokens had expired anyway"
    );
    assert_eq!(sim.purge_expired(), ksef_sim::Purged::default());

    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_periodic_tick_purges_on_its_own() {
    let clock = ksef_sim::ManualClock::starting_now();
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .prune_every(Some(std::time::Duration::from_millis(50)))
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let seal = signer("xmlsec1cli-rsa-seal");
    let soon = api
        .signed_request(&seal, NIP, SubjectIdentifierType::CertificateSubject)
        .await;
    clock.advance(Duration::minutes(11));
    let mut detail = String::new();
    for _ in 0..100 {
        detail = challenge_error(&api.submit_xades(soon.clone(), "").await);
        if detail.ends_with("nie istnieje.") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(detail, "Wyzwanie autoryzacyjne nie istnieje.");
    sim.shutdown().await;
}

#[tokio::test]
async fn idle_rate_limit_counters_are_dropped() {
    let clock = ksef_sim::ManualClock::starting_now();
    let sim = ksef_sim::Simulator::builder()
        .prune_every(None)
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    // The public endpoints share one counter per IP (challenge, key listing).
    for _ in 0..3 {
        api.challenge().await;
    }
    clock.advance(Duration::minutes(30));
    let r = api
        .call(OperationId::PublicKeyCertificates, &[], None, Body::None)
        .await;
    assert_eq!(r.status, 200);
    // An hour after the first requests the counter still holds the later one: kept.
    clock.advance(Duration::minutes(30));
    assert_eq!(sim.purge_expired().rate_limit_counters, 0);
    // An hour after its last request it goes.
    clock.advance(Duration::minutes(29));
    assert_eq!(sim.purge_expired().rate_limit_counters, 0);
    clock.advance(Duration::minutes(1));
    assert_eq!(sim.purge_expired().rate_limit_counters, 1);
    assert_eq!(sim.purge_expired(), ksef_sim::Purged::default());
    // A dropped counter starts afresh.
    api.challenge().await;
    sim.shutdown().await;
}
