//! Per-call overhead of the transport against a bare reqwest call, same local server, same run.
//!
//! Both sides build a request, send it to a local wiremock server, read the body and decode it
//! into `ksef_model::api::AuthenticationChallengeResponse`; the transport adds its headers,
//! URL building, tracing span, retry bookkeeping and warning parsing. At the end the bench
//! prints the ratio transport / bare from an interleaved run (goal ≤ 1.2×).

// A bench reports on stdout; unwrap is fine in a bench harness.
#![allow(clippy::print_stdout, clippy::unwrap_used, missing_docs)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ksef_model::api::AuthenticationChallengeResponse;
use ksef_transport::Transport;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

struct Setup {
    rt: tokio::runtime::Runtime,
    _server: MockServer,
    base: String,
    bare: reqwest::Client,
    transport: Transport,
}

fn setup() -> Setup {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = rt.block_on(async {
        let server = MockServer::start().await;
        let body = serde_json::json!({
            "challenge": "20250514-CR-226FB7B000-3ACF9BE4C0-10",
            "timestamp": "2025-07-11T12:23:56.0154302+00:00",
            "timestampMs": 1752236636015i64,
            "clientIp": "127.0.0.1"
        });
        Mock::given(method("POST"))
            .and(path("/v2/auth/challenge"))
            .respond_with(ResponseTemplate::new(200).set_body_json(body))
            .mount(&server)
            .await;
        server
    });
    let base = format!("{}/v2", server.uri());
    let transport = Transport::for_url(&base).unwrap();
    Setup {
        rt,
        _server: server,
        base,
        bare: reqwest::Client::new(),
        transport,
    }
}

async fn bare_call(client: &reqwest::Client, url: &str) -> AuthenticationChallengeResponse {
    let bytes = client
        .post(url)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn bench(c: &mut Criterion) {
    let s = setup();
    let url = format!("{}/auth/challenge", s.base);
    let mut group = c.benchmark_group("auth_challenge");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function("bare_reqwest", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(bare_call(&s.bare, &url).await) })
    });
    group.bench_function("transport", |b| {
        b.to_async(&s.rt)
            .iter(|| async { black_box(s.transport.auth_challenge().await.unwrap()) })
    });
    group.finish();

    // Interleaved A/B rounds so drift affects both sides alike; report the ratio of medians.
    let (bare, ours) = s.rt.block_on(async {
        let mut bare = Vec::new();
        let mut ours = Vec::new();
        for _ in 0..30 {
            let t0 = Instant::now();
            for _ in 0..50 {
                black_box(bare_call(&s.bare, &url).await);
            }
            bare.push(t0.elapsed());
            let t0 = Instant::now();
            for _ in 0..50 {
                black_box(s.transport.auth_challenge().await.unwrap());
            }
            ours.push(t0.elapsed());
        }
        bare.sort();
        ours.sort();
        (bare[bare.len() / 2] / 50, ours[ours.len() / 2] / 50)
    });
    println!(
        "per call: bare reqwest {bare:?}, transport {ours:?}, ratio {:.3} (goal <= 1.2)",
        ours.as_secs_f64() / bare.as_secs_f64()
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
