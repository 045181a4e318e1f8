//! Encryption speed: invoice encryption with both hashes and Base64, streaming encryption of
//! 100 MB against AES-CBC alone, and the raw AES-CBC / SHA-256 throughput.
//!
//! Goals (issue #3): 5.5 KB invoice encrypt + hashes + Base64 ≤ 22 µs; streaming with both hashes
//! ≥ 85 % of AES-CBC alone. Compare with `openssl speed -evp aes-256-cbc` and
//! `openssl speed -evp sha256` run in the same session. At the end the bench prints the same-run
//! ratios it measured itself.
#![allow(clippy::unwrap_used, clippy::print_stdout)] // a bench binary: panics and prints are its UI

use std::hint::black_box;
use std::time::{Duration, Instant};

use aes::cipher::block_padding::Pkcs7;
use aes::cipher::{BlockModeEncrypt, KeyIvInit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ksef_crypto::encryption::SessionKey;
use ksef_crypto::hash;
use sha2::{Digest, Sha256};

type Enc = cbc::Encryptor<aes::Aes256>;

const KEY: [u8; 32] = [7; 32];
const IV: [u8; 16] = [9; 16];
const INVOICE: usize = 5500;
const STREAM: usize = 100 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

fn sample(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

/// The naive composition the goal was measured against: encrypt, then hash both, then encode.
fn naive(pt: &[u8]) -> (String, String, String) {
    let ct = Enc::new((&KEY).into(), (&IV).into()).encrypt_padded_vec::<Pkcs7>(pt);
    let ph = hash::sha256_base64(pt);
    let ch = hash::sha256_base64(&ct);
    (hash::base64(&ct), ph, ch)
}

fn ours(k: &SessionKey, pt: &[u8]) -> (String, String, String) {
    let inv = k.encrypt_invoice(pt);
    (
        inv.ciphertext_base64(),
        inv.invoice_hash.as_str().to_owned(),
        inv.encrypted_invoice_hash.as_str().to_owned(),
    )
}

/// AES-256-CBC alone over `data` in CHUNK pieces into a reused buffer (the streaming baseline).
fn aes_cbc_only(data: &[u8], out: &mut [u8]) {
    let mut enc = Enc::new((&KEY).into(), (&IV).into());
    let whole = data.len() / 16 * 16;
    for c in data[..whole].chunks(CHUNK) {
        let o = &mut out[..c.len()];
        o.copy_from_slice(c);
        let (blocks, _) = aes::cipher::common::array::Array::<u8, aes::cipher::common::typenum::U16>::slice_as_chunks_mut(o);
        enc.encrypt_blocks(blocks);
        black_box(&o[..16]);
    }
}

fn invoice(c: &mut Criterion) {
    let k = SessionKey::from_parts(&KEY, &IV).unwrap();
    let pt = sample(INVOICE);
    assert_eq!(naive(&pt), ours(&k, &pt));
    let mut g = c.benchmark_group("invoice_5.5KB");
    g.throughput(Throughput::Bytes(INVOICE as u64));
    g.bench_function("aes_cbc_only", |b| b.iter(|| k.encrypt(black_box(&pt))));
    g.bench_function("naive_encrypt_hash_hash_base64", |b| {
        b.iter(|| naive(black_box(&pt)))
    });
    g.bench_function("encrypt_invoice_plus_base64", |b| {
        b.iter(|| ours(&k, black_box(&pt)))
    });
    g.finish();
}

fn stream(c: &mut Criterion) {
    let k = SessionKey::from_parts(&KEY, &IV).unwrap();
    let data = sample(STREAM);
    let mut out = vec![0u8; CHUNK];
    let mut g = c.benchmark_group("stream_100MB");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Bytes(STREAM as u64));
    g.bench_function("aes_cbc_only", |b| b.iter(|| aes_cbc_only(&data, &mut out)));
    g.bench_function("encrypt_stream_both_hashes_2_threads", |b| {
        b.iter(|| k.encrypt_stream(&data[..], std::io::sink()).unwrap())
    });
    g.bench_function("encrypting_reader_both_hashes_1_thread", |b| {
        b.iter(|| {
            let mut r = k.encrypting_reader(&data[..]);
            std::io::copy(&mut r, &mut std::io::sink()).unwrap();
            r.digests().unwrap()
        })
    });
    g.finish();
}

fn primitives(c: &mut Criterion) {
    let data = sample(1 << 20);
    let mut out = vec![0u8; CHUNK];
    let mut g = c.benchmark_group("primitives_1MB");
    g.throughput(Throughput::Bytes(1 << 20));
    g.bench_function("aes_256_cbc", |b| {
        b.iter(|| aes_cbc_only(black_box(&data), &mut out))
    });
    g.bench_function("sha256", |b| b.iter(|| Sha256::digest(black_box(&data))));
    g.finish();
}

fn best_of<F: FnMut()>(n: usize, mut f: F) -> Duration {
    (0..n)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap()
}

/// Same-run ratios, measured here directly (best of N) so they print side by side.
fn ratios(_: &mut Criterion) {
    let k = SessionKey::from_parts(&KEY, &IV).unwrap();
    let data = sample(STREAM);
    let mut out = vec![0u8; CHUNK];
    let base = best_of(5, || aes_cbc_only(&data, &mut out));
    let two = best_of(5, || {
        k.encrypt_stream(&data[..], std::io::sink()).unwrap();
    });
    let one = best_of(5, || {
        let mut r = k.encrypting_reader(&data[..]);
        std::io::copy(&mut r, &mut std::io::sink()).unwrap();
    });
    let mbps = |d: Duration| STREAM as f64 / d.as_secs_f64() / 1e6;
    println!(
        "ratio: AES-CBC alone {:.0} MB/s; streaming+2 hashes (2 threads) {:.0} MB/s = {:.1} %; \
         (1 thread) {:.0} MB/s = {:.1} %",
        mbps(base),
        mbps(two),
        100.0 * base.as_secs_f64() / two.as_secs_f64(),
        mbps(one),
        100.0 * base.as_secs_f64() / one.as_secs_f64()
    );
    let pt = sample(INVOICE);
    let n = 20_000;
    let t_naive = best_of(5, || {
        for _ in 0..n {
            black_box(naive(black_box(&pt)));
        }
    });
    let t_ours = best_of(5, || {
        for _ in 0..n {
            black_box(ours(&k, black_box(&pt)));
        }
    });
    println!(
        "ratio: 5.5 KB invoice naive {:.2} µs, encrypt_invoice+Base64 {:.2} µs ({:.1} % of naive)",
        t_naive.as_secs_f64() * 1e6 / n as f64,
        t_ours.as_secs_f64() * 1e6 / n as f64,
        100.0 * t_ours.as_secs_f64() / t_naive.as_secs_f64()
    );
}

criterion_group!(benches, invoice, stream, primitives, ratios);
criterion_main!(benches);
