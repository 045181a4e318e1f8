//! Batch building (archive → split → encrypt + hash) of 10 000 generated 5.5 KB FA(3)
//! invoices, Zip and TarGz, against a baseline measured in the same run: AES-256-CBC + SHA-256
//! of the same plaintext bytes in one buffer (what the crypto alone costs, with no archive).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // a bench: failures should panic; it reports sizes

use criterion::{Criterion, criterion_group, criterion_main};
use ksef::batch::{BatchBuilder, BatchInvoice, Compression};
use ksef::crypto::encryption::SessionKey;

mod common;

fn bench(c: &mut Criterion) {
    let n: usize = std::env::var("KSEF_BENCH_INVOICES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let invoices: Vec<Vec<u8>> = (0..n).map(common::invoice).collect();
    let total: usize = invoices.iter().map(Vec::len).sum();
    eprintln!("{n} invoices, {total} bytes, {} bytes average", total / n);
    let key = SessionKey::generate().unwrap();
    let mut g = c.benchmark_group("batch_10k");
    g.sample_size(10);
    let all: Vec<u8> = invoices.concat();
    g.bench_function("baseline_encrypt_hash_plaintext", |b| {
        b.iter(|| key.encrypt_invoice(&all).encrypted_invoice_size)
    });
    for (label, compression) in [("zip", Compression::Zip), ("targz", Compression::TarGz)] {
        g.bench_function(format!("build_{label}"), |b| {
            b.iter(|| {
                let p = BatchBuilder::new(key.clone())
                    .compression(compression)
                    .build(
                        invoices
                            .iter()
                            .enumerate()
                            .map(|(i, x)| BatchInvoice::bytes(format!("{i:06}.xml"), x.clone())),
                    )
                    .unwrap();
                p.file_size()
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
