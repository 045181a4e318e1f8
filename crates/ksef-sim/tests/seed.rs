//! `--seed` / `SimulatorBuilder::seed` promise reproducible reference and KSeF numbers: two
//! simulators with the same seed and clock that get the same id-minting requests mint the same
//! ids, whatever else (polls, key listings) they are asked in between; another seed mints others.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use ksef_model::operations::OperationId;
use time::OffsetDateTime;

/// The ids one simulator mints for a fixed flow: challenge, authentication, session, invoice
/// reference and KSeF number. `noise` read-only requests are sent in between.
async fn flow(seed: u64, at: OffsetDateTime, noise: usize) -> Vec<String> {
    let sim = ksef_sim::Simulator::builder()
        .seed(seed)
        .rate_limits(false)
        .clock(ksef_sim::ManualClock::new(at))
        .start_checked()
        .await
        .unwrap();
    let api = Api::new(sim.base_url());
    let mut ids = Vec::new();
    let ch = api.challenge().await;
    ids.push(ch["challenge"].as_str().unwrap().to_owned());
    for _ in 0..noise {
        let r = api
            .call(OperationId::PublicKeyCertificates, &[], None, Body::None)
            .await;
        assert_eq!(r.status, 200);
    }
    // login() polls the authentication status as often as it takes.
    let (access, _, auth_ref) = api.login(&signer("xmlsec1cli-rsa-seal"), NIP).await;
    ids.push(auth_ref);
    let (session, key) = api.open_session(&access).await;
    ids.push(session.clone());
    let r = api
        .send(&access, &session, &key, &invoice(NIP, "SEED/1"))
        .await;
    assert_eq!(r.status, 202, "{:?}", r.json);
    let invoice_ref = r.json["referenceNumber"].as_str().unwrap().to_owned();
    ids.push(invoice_ref.clone());
    for _ in 0..noise {
        api.call(
            OperationId::SessionStatus,
            &[&session],
            Some(&access),
            Body::None,
        )
        .await;
    }
    let st = api.invoice_final(&access, &session, &invoice_ref).await;
    assert_eq!(st["status"]["code"], 200, "{st}");
    ids.push(st["ksefNumber"].as_str().unwrap().to_owned());
    sim.shutdown().await;
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_seed_same_ids() {
    let at = OffsetDateTime::now_utc();
    let a = flow(42, at, 0).await;
    let b = flow(42, at, 7).await;
    assert_eq!(a, b, "same seed, same clock, same minting requests");
    let c = flow(43, at, 0).await;
    for (x, y) in a.iter().zip(&c) {
        assert_ne!(x, y, "another seed mints other ids");
    }
}

/// The binary's `--seed`: two processes started with the same seed answer the same first
/// challenge (reference numbers carry the date, so both run on the same system clock).
#[tokio::test]
async fn binary_seed_gives_the_same_first_challenge() {
    use std::io::{BufRead, BufReader};
    async fn first_challenge(seed: &str) -> String {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ksef-sim"))
            .args(["--bind", "127.0.0.1:0", "--seed", seed])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line.trim().rsplit(' ').next().unwrap().to_owned();
        let ch = Api::new(base).challenge().await;
        child.kill().unwrap();
        child.wait().unwrap();
        ch["challenge"].as_str().unwrap().to_owned()
    }
    let a = first_challenge("7").await;
    let b = first_challenge("7").await;
    let c = first_challenge("8").await;
    assert_eq!(a, b);
    assert_ne!(a, c);
}
