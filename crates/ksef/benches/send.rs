//! Client-side cost of one online invoice send, without the network: encrypt a 5.5 KB FA(3),
//! hash it twice and build the JSON request body of `POST /sessions/online/{ref}/invoices`.
//! Goal (issue #3 / session notes): ≤ 25 µs. The baseline, measured in the same run, is raw
//! AES-256-CBC of the same bytes (the one step no implementation can skip).
//!
//! Baselines, measured in the same run: AES-256-CBC alone, and `encrypt_invoice` (AES-CBC plus
//! both SHA-256 hashes, no Base64 and no body) — the crypto alone.
//!
//! Variants:
//! - `typed_serde` (before session 3): `encrypt_invoice`, the typed `SendInvoiceRequest` with the
//!   ciphertext in `Base64Bytes`, then `serde_json::to_vec` (the transport's JSON body). Base64
//!   is encoded into a temporary String by `Base64Bytes`'s `Serialize`, and serde_json then
//!   scans all 7.3 KB of it for characters to escape.
//! - `sdk_prepared` (what `OnlineSession::send_invoice` does now): `ksef::PreparedInvoice::new`
//!   — the UTF-8/size checks, then `encrypt_invoice_with_base64` encodes the ciphertext straight
//!   into the body buffer in the same pass as encryption and hashing; the few small fields are
//!   written around it, and the body goes to `Transport::send_invoice_json` as these bytes.
//!   The bench checks that both bodies are the same JSON.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a bench binary: panics and prints are its UI

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ksef::{PreparedInvoice, SendOptions};
use ksef_crypto::encryption::SessionKey;
use ksef_model::api;

const KEY: [u8; 32] = [7; 32];
const IV: [u8; 16] = [9; 16];

/// The FA(3) template from fixtures/, padded with two more invoice rows to about 5.5 KB.
fn invoice() -> Vec<u8> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/invoices/invoice-template-fa-3-with-custom-Subject3.xml"
    );
    let xml = std::fs::read_to_string(path).unwrap();
    let start = xml.find("<FaWiersz>").unwrap();
    let end = xml.find("</FaWiersz>").unwrap() + "</FaWiersz>".len();
    let row = &xml[start..end];
    let mut out = String::with_capacity(xml.len() + 2 * row.len());
    out.push_str(&xml[..end]);
    out.push_str(row);
    out.push_str(row);
    out.push_str(&xml[end..]);
    out.into_bytes()
}

fn typed_serde(k: &SessionKey, xml: &[u8]) -> Vec<u8> {
    std::str::from_utf8(xml).unwrap(); // session.rs's check_invoice_bytes
    let e = k.encrypt_invoice(xml);
    let body = api::SendInvoiceRequest {
        encrypted_invoice_content: ksef_model::Base64Bytes::new(e.ciphertext),
        encrypted_invoice_hash: e.encrypted_invoice_hash,
        encrypted_invoice_size: e.encrypted_invoice_size,
        hash_of_corrected_invoice: None,
        invoice_hash: e.invoice_hash,
        invoice_size: e.invoice_size,
        offline_mode: None,
    };
    serde_json::to_vec(&body).unwrap()
}

/// The SDK's send path up to the HTTP call.
fn sdk_prepared(k: &SessionKey, xml: &[u8]) -> PreparedInvoice {
    PreparedInvoice::new(k, xml, &SendOptions::default()).unwrap()
}

/// The crypto alone: AES-CBC and both SHA-256 hashes, no Base64, no body.
fn crypto_only(k: &SessionKey, xml: &[u8]) {
    black_box(k.encrypt_invoice(xml));
}

/// AES-256-CBC alone (`SessionKey::encrypt`: one copy, the CBC chain, the padding block).
fn aes_cbc_only(k: &SessionKey, xml: &[u8]) {
    black_box(k.encrypt(xml));
}

fn bench(c: &mut Criterion) {
    let k = SessionKey::from_parts(&KEY, &IV).unwrap();
    let xml = invoice();
    let a: serde_json::Value = serde_json::from_slice(&typed_serde(&k, &xml)).unwrap();
    let b: serde_json::Value = serde_json::from_slice(sdk_prepared(&k, &xml).body()).unwrap();
    assert_eq!(a, b, "both paths must build the same request");
    let mut g = c.benchmark_group("send_5.5KB_client_side");
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("aes_cbc_only (baseline)", |b| {
        b.iter(|| aes_cbc_only(&k, black_box(&xml)))
    });
    g.bench_function("crypto_only (baseline: AES + 2 hashes)", |b| {
        b.iter(|| crypto_only(&k, black_box(&xml)))
    });
    g.bench_function("typed_serde (before)", |b| {
        b.iter(|| typed_serde(&k, black_box(&xml)))
    });
    g.bench_function("sdk_prepared (now)", |b| {
        b.iter(|| sdk_prepared(&k, black_box(&xml)))
    });
    g.finish();
}

/// This thread's time on a CPU in ns (Linux `schedstat`), so figures taken on a loaded machine
/// count only the time we ran; `None` elsewhere (then wall time is used).
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Per-call µs of `f`, best of 5 runs of `n` calls: (wall, on-CPU).
fn per_call<F: FnMut()>(n: u32, mut f: F) -> (f64, f64) {
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let c = cpu_ns();
        let t = Instant::now();
        for _ in 0..n {
            f();
        }
        let wall = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let cpu = match (c, cpu_ns()) {
            (Some(a), Some(b)) => Duration::from_nanos(b - a).as_secs_f64() * 1e6 / f64::from(n),
            _ => wall,
        };
        best = (best.0.min(wall), best.1.min(cpu));
    }
    best
}

fn ratios(_: &mut Criterion) {
    let k = SessionKey::from_parts(&KEY, &IV).unwrap();
    let xml = invoice();
    let n = 20_000;
    let aes = per_call(n, || aes_cbc_only(&k, black_box(&xml)));
    let crypto = per_call(n, || crypto_only(&k, black_box(&xml)));
    let before = per_call(n, || {
        black_box(typed_serde(&k, black_box(&xml)));
    });
    let now = per_call(n, || {
        black_box(sdk_prepared(&k, black_box(&xml)));
    });
    for (label, pick) in [
        ("wall", (|d: (f64, f64)| d.0) as fn((f64, f64)) -> f64),
        ("on-CPU", |d: (f64, f64)| d.1),
    ] {
        println!(
            "ratio send {} B FA(3) client side ({label}): baselines AES-CBC alone {:.2} µs, \
             crypto alone (AES + 2 SHA-256) {:.2} µs; before (encrypt_invoice + \
             SendInvoiceRequest + serde_json) {:.2} µs = {:.2}x crypto; now (PreparedInvoice: \
             Base64 written into the body) {:.2} µs = {:.2}x crypto, {:.2}x AES",
            xml.len(),
            pick(aes),
            pick(crypto),
            pick(before),
            pick(before) / pick(crypto),
            pick(now),
            pick(now) / pick(crypto),
            pick(now) / pick(aes),
        );
    }
}

criterion_group!(benches, bench, ratios);
criterion_main!(benches);
