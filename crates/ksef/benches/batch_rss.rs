//! A bench binary for peak memory: builds one batch of N generated invoices (argument or
//! KSEF_BENCH_INVOICES, default 10 000), generating them on the fly so the input is not held in
//! memory either. Run it under `/usr/bin/time -v` and read "Maximum resident set size".
//!
//! With `--send` it also sends the batch end to end to an embedded simulator (open, parallel
//! part upload, close, processing, per-invoice results, session UPO) and reports each phase's
//! wall time; the peak RSS then includes the simulator, which keeps every accepted invoice in
//! memory.
//!
//!     cargo bench -p ksef --bench batch_rss --no-run   # then run the binary it names:
//!     /usr/bin/time -v target/release/deps/batch_rss-… 10000 [--send]
//!     KSEF_BENCH_INVOICE_KB=500 /usr/bin/time -v target/release/deps/batch_rss-… 2000

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)] // a bench binary: reports on stdout, failures panic

use std::time::Instant;

use ksef::batch::{BatchBuilder, BatchInvoice, BatchPackage, Compression};
use ksef::crypto::encryption::SessionKey;

mod common;

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .or_else(|| std::env::var("KSEF_BENCH_INVOICES").ok()?.parse().ok())
        .unwrap_or(10_000);
    let send = std::env::args().any(|a| a == "--send");
    let compression = match std::env::var("KSEF_BENCH_COMPRESSION").as_deref() {
        Ok("targz") => Compression::TarGz,
        _ => Compression::Zip,
    };
    // KSEF_BENCH_INVOICE_KB: invoice size (default 5.5 KB), e.g. 500 to check that memory stays
    // bounded with large invoices too.
    let invoice_bytes = std::env::var("KSEF_BENCH_INVOICE_KB")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .map(|kb| kb * 1000);
    let invoice = |i| match invoice_bytes {
        Some(bytes) => common::invoice_of(i, bytes),
        None => common::invoice(i),
    };
    let key = SessionKey::generate().unwrap();
    let cpu_start = process_cpu_seconds();
    let start = Instant::now();
    let p = BatchBuilder::new(key.clone())
        .compression(compression)
        .max_invoices(n)
        .build((0..n).map(|i| BatchInvoice::bytes(format!("{i:07}.xml"), invoice(i))))
        .unwrap();
    let wall = start.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds().zip(cpu_start).map(|(b, a)| b - a);
    println!(
        "{n} invoices ({compression:?}): archive {} bytes in {} part(s), {wall:.3} s wall, {} on-CPU (all threads; invoices generated on the fly included), load average {}",
        p.file_size(),
        p.parts().len(),
        cpu.map_or("?".into(), |c| format!("{c:.3} s")),
        std::fs::read_to_string("/proc/loadavg")
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_else(|_| "?".into())
    );
    if send {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(send_to_simulator(&p, &key));
    }
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, clock ticks of
/// 1/100 s), so a figure taken on a loaded machine counts only the time we ran.
fn process_cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Sends `p` to an embedded simulator and reports the phases.
async fn send_to_simulator(p: &BatchPackage, key: &SessionKey) {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .start()
        .await
        .unwrap();
    let client = ksef::KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    let nip: ksef::model::Nip = "5265877635".parse().unwrap();
    let identity = ksef::TestIdentity::Seal {
        name: "ksef-rs batch bench".into(),
        nip: nip.to_string(),
    };
    let auth = client
        .auth()
        .test_certificate(&identity, ksef::model::ContextIdentifier::Nip(nip))
        .await
        .unwrap();
    let start = Instant::now();
    let outcome = auth
        .sessions()
        .send_batch(p, key, &ksef::BatchSendOptions::default())
        .await
        .unwrap();
    let sent = start.elapsed();
    let accepted = outcome
        .invoices
        .iter()
        .filter(|i| matches!(i.outcome, Some(Ok(_))))
        .count();
    let pages = outcome.session.fetch_upo().await.unwrap();
    println!(
        "sent to the simulator: {accepted}/{} accepted, {} UPO page(s); open+upload+close+processing+results {:.3} s, with UPO {:.3} s",
        outcome.invoices.len(),
        pages.len(),
        sent.as_secs_f64(),
        start.elapsed().as_secs_f64()
    );
    assert_eq!(accepted, outcome.invoices.len(), "every invoice accepted");
    sim.shutdown().await;
}
