//! A bench binary for peak memory: builds one batch of N generated invoices (argument or
//! KSEF_BENCH_INVOICES, default 10 000), generating them on the fly so the input is not held in
//! memory either. Run it under `/usr/bin/time -v` and read "Maximum resident set size".

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a bench binary: reports on stdout, failures panic

use ksef::batch::{BatchBuilder, BatchInvoice, Compression};
use ksef::crypto::encryption::SessionKey;

mod common;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .or_else(|| std::env::var("KSEF_BENCH_INVOICES").ok()?.parse().ok())
        .unwrap_or(10_000);
    let compression = match std::env::var("KSEF_BENCH_COMPRESSION").as_deref() {
        Ok("targz") => Compression::TarGz,
        _ => Compression::Zip,
    };
    let key = SessionKey::generate().unwrap();
    let start = std::time::Instant::now();
    let p = BatchBuilder::new(key)
        .compression(compression)
        .max_invoices(n)
        .build((0..n).map(|i| BatchInvoice::bytes(format!("{i:07}.xml"), common::invoice(i))))
        .unwrap();
    println!(
        "{n} invoices ({compression:?}): archive {} bytes in {} part(s), {:.3} s",
        p.file_size(),
        p.parts().len(),
        start.elapsed().as_secs_f64()
    );
}
