//! Error formats, headers, routing, body limits, public keys and the catalogue coverage.

mod common;

use common::*;
use ksef_model::operations::{OPERATIONS, OperationId};
use serde_json::json;

#[tokio::test]
async fn error_formats_and_headers() {
    let (sim, api) = start().await;

    // Malformed JSON: 400 21405, legacy by default, with details.
    let r = api
        .call(
            OperationId::TestdataCreatePerson,
            &[],
            None,
            Body::Raw("application/json", b"{not json".to_vec()),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    assert!(r.content_type().starts_with("application/json"));
    let d = &r.json["exception"]["exceptionDetailList"][0];
    assert_eq!(
        d["exceptionDescription"],
        "Błąd walidacji danych wejściowych."
    );
    assert!(!d["details"][0].as_str().unwrap().is_empty());

    // The same as problem details on request.
    let r = api
        .call_q(
            OperationId::TestdataCreatePerson,
            &[],
            "",
            None,
            Body::Json(json!({"nip": "123"})),
            &[("X-Error-Format", "problem-details")],
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405));
    assert!(r.content_type().starts_with("application/problem+json"));
    assert_eq!(r.json["status"], 400);
    assert!(r.json["traceId"].is_string());

    // 401 is always problem+json.
    let r = api
        .call(OperationId::ListAuthSessions, &[], None, Body::None)
        .await;
    assert_eq!(r.status, 401);
    assert!(r.content_type().starts_with("application/problem+json"));
    let r = api
        .call(
            OperationId::ListAuthSessions,
            &[],
            Some("a.b.c"),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 401);

    // X-Test-System-Warning is echoed.
    let r = api
        .call_q(
            OperationId::AuthChallenge,
            &[],
            "",
            None,
            Body::None,
            &[("X-Test-System-Warning", "[W1]: test warning")],
        )
        .await;
    assert_eq!(r.header("x-system-warning"), Some("[W1]: test warning"));

    // Unknown routes: 404.
    let base = sim.base_url();
    let r = reqwest::get(format!("{base}/no/such/thing")).await.unwrap();
    assert_eq!(r.status(), 404);
    let r = reqwest::get(format!(
        "{}/v3/auth/challenge",
        base.trim_end_matches("/v2")
    ))
    .await
    .unwrap();
    assert_eq!(r.status(), 404);

    // Wrong content type for JSON.
    let r = api
        .call(
            OperationId::TestdataCreatePerson,
            &[],
            None,
            Body::Raw("text/plain", b"{}".to_vec()),
        )
        .await;
    assert_eq!(r.status, 415);
    sim.shutdown().await;
}

#[tokio::test]
async fn body_limit_and_garbage_never_hang() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .body_limit(1024)
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let r = api
        .call(
            OperationId::TestdataCreatePerson,
            &[],
            None,
            Body::Raw("application/json", vec![b' '; 4096]),
        )
        .await;
    assert_eq!(r.status, 413);
    for garbage in [
        &b"\xff\xfe\x00"[..],
        b"<a>",
        b"<!DOCTYPE a [<!ENTITY x 'y'>]><a>&x;</a>",
        b"",
    ] {
        let r = api
            .call(
                OperationId::AuthXadesSignature,
                &[],
                None,
                Body::Xml(garbage.to_vec()),
            )
            .await;
        assert_eq!(r.status, 400, "{garbage:?}");
        assert!(
            [21001, 21217, 9101, 9102].contains(&r.code()),
            "{garbage:?}: {}",
            r.code()
        );
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn public_key_certificates() {
    let (sim, api) = start().await;
    let r = api
        .call(OperationId::PublicKeyCertificates, &[], None, Body::None)
        .await;
    let list = r.json.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let mut usages = Vec::new();
    for c in list {
        let cert =
            ksef_crypto::cert::Certificate::from_base64_der(c["certificate"].as_str().unwrap())
                .unwrap();
        assert_eq!(
            c["certificateId"],
            ksef_crypto::hash::sha256_base64(cert.der())
        );
        assert_eq!(
            c["publicKeyId"],
            ksef_crypto::hash::sha256_base64(&cert.spki_der().unwrap())
        );
        usages.push(c["usage"][0].as_str().unwrap().to_owned());
    }
    usages.sort();
    assert_eq!(usages, ["KsefTokenEncryption", "SymmetricKeyEncryption"]);
    sim.shutdown().await;
}

#[tokio::test]
async fn unimplemented_operations_answer_501_and_the_list_is_explicit() {
    let (sim, api) = start().await;
    let implemented: Vec<&str> = ksef_sim::IMPLEMENTED_OPERATIONS
        .iter()
        .map(|o| o.name())
        .collect();
    eprintln!(
        "ksef-sim implements {} of {} operations: {}",
        implemented.len(),
        OPERATIONS.len(),
        implemented.join(", ")
    );
    // Grows as the areas land (each area adds its operations); at least the first slice's 40.
    assert!(implemented.len() >= 40, "{}", implemented.len());
    for op in OPERATIONS {
        if ksef_sim::IMPLEMENTED_OPERATIONS.contains(&op.id) {
            continue;
        }
        let params: Vec<&str> = op.path_params.iter().map(|_| "X1").collect();
        let r = api.call(op.id, &params, None, Body::None).await;
        assert_eq!(r.status, 501, "{}", op.name);
        let detail = r.json["exception"]["exceptionDetailList"][0]["details"][0]
            .as_str()
            .unwrap();
        assert!(detail.contains(op.name), "{detail}");
    }
    sim.shutdown().await;
}

#[tokio::test]
async fn binary_serves_and_stops() {
    use std::io::{BufRead, BufReader};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ksef-sim"))
        .args(["--bind", "127.0.0.1:0", "--seed", "3"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(
        base.starts_with("http://127.0.0.1:") && base.ends_with("/v2"),
        "{line}"
    );
    let api = Api::new(base);
    let ch = api.challenge().await;
    assert_eq!(ch["challenge"].as_str().unwrap().len(), 36);
    child.kill().unwrap();
    child.wait().unwrap();
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_ksef-sim"))
        .args(["--bind", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}

/// SIGTERM (what `docker stop`, systemd and Kubernetes send) shuts the binary down gracefully:
/// its shutdown message, then exit status 0.
#[cfg(unix)]
#[tokio::test]
async fn binary_shuts_down_gracefully_on_sigterm() {
    use std::io::{BufRead, BufReader, Read};
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ksef-sim"))
        .args(["--bind", "127.0.0.1:0"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let base = line.trim().rsplit(' ').next().unwrap().to_owned();
    assert!(
        line.starts_with("ksef-sim listening on http://127.0.0.1:"),
        "{line}"
    );
    // It serves until the signal.
    let ch = Api::new(base).challenge().await;
    assert_eq!(ch["challenge"].as_str().unwrap().len(), 36);
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert_eq!(
        status.code(),
        Some(0),
        "{status:?}; stdout after start: {rest:?}"
    );
    assert_eq!(rest, "ksef-sim shutting down\n");
}

#[tokio::test]
async fn rate_limits_answer_429_with_retry_after() {
    let clock = ksef_sim::ManualClock::starting_now();
    let sim = ksef_sim::Simulator::builder()
        .clock(clock.clone())
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let per_second = OperationId::AuthChallenge
        .spec()
        .rate_limit
        .per_second
        .unwrap();
    for _ in 0..per_second {
        api.challenge().await;
    }
    let r = api
        .call(OperationId::AuthChallenge, &[], None, Body::None)
        .await;
    assert_eq!(r.status, 429);
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json["status"]["code"], 429);
    let r = api
        .call_q(
            OperationId::AuthChallenge,
            &[],
            "",
            None,
            Body::None,
            &[("X-Error-Format", "problem-details")],
        )
        .await;
    assert_eq!(r.status, 429);
    assert!(r.content_type().starts_with("application/problem+json"));
    // Unauthenticated endpoints share one per-IP budget (60 req/s).
    let r = api
        .call(OperationId::PublicKeyCertificates, &[], None, Body::None)
        .await;
    assert_eq!(r.status, 429);
    // The window slides with the clock.
    clock.advance(time::Duration::seconds(1));
    api.challenge().await;
    sim.shutdown().await;
}
