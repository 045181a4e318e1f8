//! The independent signers' XAdES fixtures (fixtures/xades/manifest.json) over HTTP: with their
//! fixed challenge planted and a clock inside their certificates' validity, every valid
//! AuthTokenRequest is accepted (202, then the authentication's final status) and every
//! negative one is refused with its 9xxx code before any operation starts.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ksef_model::operations::OperationId;
use serde_json::{Value, json};
use time::macros::datetime;

fn fixtures(rel: &str) -> Vec<u8> {
    let path = format!("{}/../../fixtures/xades/{rel}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// 202 → (reference, operation token).
fn accepted(name: &str, r: &Resp) -> (String, String) {
    assert_eq!(r.status, 202, "{name}: {:?}", r.json);
    (
        r.json["referenceNumber"].as_str().unwrap().to_owned(),
        r.json["authenticationToken"]["token"]
            .as_str()
            .unwrap()
            .to_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn independent_signers_fixtures_accepted_and_negatives_rejected() {
    let manifest: Value = serde_json::from_slice(&fixtures("manifest.json")).unwrap();
    let challenge = manifest["document"]["Challenge"].as_str().unwrap();
    let context_nip = manifest["document"]["ContextIdentifier/Nip"]
        .as_str()
        .unwrap();
    // The fixtures were signed on 2026-11-25; their certificates are valid 2026-01-01..2036-01-01.
    let clock = ksef_sim::ManualClock::new(datetime!(2026-11-25 03:00 UTC));
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());

    // Not planted: the fixed challenge is unknown (21111).
    let first = manifest["files"][0]["file"].as_str().unwrap();
    let r = api.submit_xades(fixtures(first), "").await;
    assert_eq!((r.status, r.code()), (400, 21111), "{:?}", r.json);

    let files = manifest["files"].as_array().unwrap();
    assert!(files.len() >= 34);
    for f in files {
        let name = f["file"].as_str().unwrap();
        assert_eq!(f["expected"]["verdict"], "valid", "{name}");
        sim.plant_challenge_for_tests(challenge).unwrap();
        let (reference, op) = accepted(name, &api.submit_xades(fixtures(name), "").await);
        // The certificate names the context's NIP (manifest `identity`): the owner, 200.
        assert_eq!(f["identity"]["value"], context_nip, "{name}");
        let st = api.auth_status(&reference, &op).await;
        assert_eq!(st["status"]["code"], 200, "{name}: {st}");
        let method = match f["form"].as_str().unwrap() {
            "seal" => "QualifiedSeal",
            _ => "QualifiedSignature",
        };
        assert_eq!(st["authenticationMethod"], method, "{name}");
        let r = api
            .call(OperationId::RedeemTokens, &[], Some(&op), Body::None)
            .await;
        assert_eq!(r.status, 200, "{name}: {:?}", r.json);
        // The challenge is used up by the submission.
        let r = api.submit_xades(fixtures(name), "").await;
        assert_eq!((r.status, r.code()), (400, 21111), "{name}");
    }

    // Documented failures for these self-signed certificates: an untrusted chain when the
    // chain check is requested, and an expired certificate once the clock passes its notAfter.
    sim.plant_challenge_for_tests(challenge).unwrap();
    let (reference, op) = accepted(
        first,
        &api.submit_xades(fixtures(first), "?verifyCertificateChain=true")
            .await,
    );
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["status"]["code"], 460, "{st}");
    assert_eq!(
        st["status"]["details"][0],
        "Niezaufany łańcuch certyfikatów"
    );
    clock.set(datetime!(2036-01-02 00:00 UTC));
    sim.plant_challenge_for_tests(challenge).unwrap();
    let (reference, op) = accepted(first, &api.submit_xades(fixtures(first), "").await);
    let st = api.auth_status(&reference, &op).await;
    assert_eq!(st["status"]["code"], 460, "{st}");
    assert_eq!(st["status"]["details"][0], "Nieważny certyfikat");
    clock.set(datetime!(2026-11-25 03:00 UTC));

    // Negatives: 400 with 9103 (a second signature) or 9105 (any other invalid signature),
    // even with the challenge planted.
    let negatives = manifest["negative"].as_array().unwrap();
    assert!(negatives.len() >= 27);
    for f in negatives {
        let name = f["file"].as_str().unwrap();
        assert_eq!(f["expected"]["verdict"], "invalid", "{name}");
        let want = match f["case"].as_str().unwrap_or("") {
            "e" | "e2" => 9103,
            _ => 9105,
        };
        sim.plant_challenge_for_tests(challenge).unwrap();
        let r = api.submit_xades(fixtures(name), "").await;
        assert_eq!((r.status, r.code()), (400, want), "{name}: {:?}", r.json);
    }

    // The same planting over HTTP (`POST /__sim/challenges`), for black-box tests.
    let admin = format!("http://{}/__sim/challenges", sim.local_addr());
    let r = api
        .http
        .post(&admin)
        .json(&json!({"challenge": challenge}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["challenge"], challenge);
    assert_eq!(
        body["timestampMs"],
        datetime!(2026-11-25 03:00 UTC).unix_timestamp() * 1000
    );
    let (reference, op) = accepted(first, &api.submit_xades(fixtures(first), "").await);
    assert_eq!(
        api.auth_status(&reference, &op).await["status"]["code"],
        200
    );
    // Only challenge references are planted.
    for bad in [
        json!({"challenge": "20250604-AU-461EA5B000-537A6BA15D-D7"}),
        json!({"challenge": "nonsense"}),
        json!({}),
    ] {
        let r = api.http.post(&admin).json(&bad).send().await.unwrap();
        assert_eq!(r.status(), 400, "{bad}");
    }
    assert!(sim.plant_challenge_for_tests("nonsense").is_err());
    sim.shutdown().await;
}
