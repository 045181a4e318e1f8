//! Parse and write a ~5.5 KB FA(3) invoice, against quick-xml's raw event reader over the same
//! bytes in the same run (the baseline: the least work any XML reader can do), with quick-xml's
//! namespace-resolving reader (the floor of the streaming parser) and roxmltree's DOM (the
//! previous parser's first stage) for reference.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)] // a bench: failures should panic; it reports

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ksef_fa::Faktura;
use std::hint::black_box;

fn invoice() -> String {
    let t = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml")
        .replace("#nip#", "5261040828")
        .replace("#invoice_number#", "0001");
    let line = |n: usize| {
        format!(
            "<FaWiersz><NrWierszaFa>{n}</NrWierszaFa><P_7>Pozycja numer {n}</P_7><P_8A>szt.</P_8A>\
             <P_8B>2.00</P_8B><P_9A>12.50</P_9A><P_11>25.00</P_11><P_12>23</P_12></FaWiersz>\n"
        )
    };
    let mut extra = String::new();
    let mut n = 3;
    while t.len() + extra.len() < 5500 {
        extra.push_str(&line(n));
        n += 1;
    }
    t.replace("\t\t<Rozliczenie>", &format!("{extra}\t\t<Rozliczenie>"))
}

/// `FA3_REPEAT=<raw|parse|write>:<n>` runs one case `n` times and exits, without criterion:
/// for instruction counts under `valgrind --tool=callgrind` (on a loaded machine wall time is
/// noise; the difference between two `n` divided by their difference is the cost per run).
fn repeat(xml: &str, spec: &str) {
    let (what, n) = spec
        .split_once(':')
        .expect("FA3_REPEAT=<raw|parse|write>:<n>");
    let n: usize = n.parse().expect("FA3_REPEAT count");
    let model = Faktura::from_xml(xml).expect("bench invoice parses");
    let mut sink = 0usize;
    for _ in 0..n {
        sink += match what {
            "raw" => raw_events(black_box(xml)),
            "parse" => usize::from(Faktura::from_xml(black_box(xml)).is_ok()),
            "write" => black_box(&model).to_xml().len(),
            other => panic!("FA3_REPEAT: unknown case {other}"),
        };
    }
    black_box(sink);
}

/// On-CPU time of this thread in nanoseconds (Linux `schedstat`), `None` elsewhere.
fn on_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// `FA3_ONCPU=<rounds>` measures on-CPU time (not wall time: the machine may be loaded) of the
/// raw reader, parse and write in interleaved rounds and prints MB/s per case with the ratio to
/// the raw reader from the same run. `schedstat` advances in scheduler ticks, so each round runs
/// a case for ~100 ms of wall time and the totals over all rounds are compared.
fn on_cpu(xml: &str, rounds: usize) {
    let model = Faktura::from_xml(xml).expect("bench invoice parses");
    let written = model.to_xml();
    type Case<'a> = (&'a str, usize, Box<dyn Fn() -> usize + 'a>);
    let cases: [Case<'_>; 3] = [
        (
            "raw reader",
            xml.len(),
            Box::new(|| raw_events(black_box(xml))),
        ),
        (
            "parse",
            xml.len(),
            Box::new(|| usize::from(Faktura::from_xml(black_box(xml)).is_ok())),
        ),
        (
            "write",
            written.len(),
            Box::new(|| black_box(&model).to_xml().len()),
        ),
    ];
    // iterations per round: ~100 ms of wall time each
    let per_round: Vec<u64> = cases
        .iter()
        .map(|(_, _, f)| {
            let t = std::time::Instant::now();
            let mut n = 0u64;
            while t.elapsed() < std::time::Duration::from_millis(100) {
                black_box(f());
                n += 1;
            }
            n
        })
        .collect();
    let mut total = [(0u64, 0u64); 3];
    for _ in 0..rounds {
        for (i, (_, _, f)) in cases.iter().enumerate() {
            let t0 = on_cpu_ns().expect("/proc/thread-self/schedstat");
            for _ in 0..per_round[i] {
                black_box(f());
            }
            let t = on_cpu_ns().expect("/proc/thread-self/schedstat") - t0;
            total[i].0 += t;
            total[i].1 += per_round[i];
        }
    }
    let ns: Vec<f64> = total.iter().map(|(t, n)| *t as f64 / *n as f64).collect();
    for (i, (name, bytes, _)) in cases.iter().enumerate() {
        println!(
            "{name:>10}: {:>8.0} ns/run on-CPU ({} runs), {:>6.1} MB/s, {:.2}x the raw reader's time",
            ns[i],
            total[i].1,
            *bytes as f64 * 1e3 / ns[i],
            ns[i] / ns[0]
        );
    }
}

fn raw_events(xml: &str) -> usize {
    let mut r = quick_xml::Reader::from_str(xml);
    let mut n = 0usize;
    loop {
        match r.read_event().unwrap() {
            quick_xml::events::Event::Eof => break,
            _ => n += 1,
        }
    }
    n
}

fn bench(c: &mut Criterion) {
    let xml = invoice();
    if let Some(rounds) = std::env::var("FA3_ONCPU").ok().and_then(|r| r.parse().ok()) {
        on_cpu(&xml, rounds);
        std::process::exit(0);
    }
    if let Ok(spec) = std::env::var("FA3_REPEAT") {
        repeat(&xml, &spec);
        std::process::exit(0);
    }
    let model = Faktura::from_xml(&xml).expect("bench invoice parses");
    let written = model.to_xml();
    let mut g = c.benchmark_group(format!("fa3 {} bytes", xml.len()));
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("baseline: quick-xml raw events", |b| {
        b.iter(|| raw_events(black_box(&xml)))
    });
    g.bench_function("reference: quick-xml NsReader resolved events", |b| {
        b.iter(|| {
            let mut r = quick_xml::NsReader::from_str(black_box(&xml));
            let mut n = 0usize;
            loop {
                match r.read_resolved_event().unwrap() {
                    (_, quick_xml::events::Event::Eof) => break,
                    (quick_xml::name::ResolveResult::Bound(_), _) => n += 2,
                    _ => n += 1,
                }
            }
            n
        })
    });
    g.bench_function(
        "reference: roxmltree DOM (the previous parser's first stage)",
        |b| {
            b.iter(|| {
                roxmltree::Document::parse(black_box(&xml))
                    .unwrap()
                    .descendants()
                    .count()
            })
        },
    );
    g.bench_function("parse (Faktura::from_xml)", |b| {
        b.iter(|| Faktura::from_xml(black_box(&xml)).unwrap())
    });
    g.throughput(Throughput::Bytes(written.len() as u64));
    g.bench_function("write (Faktura::to_xml)", |b| {
        b.iter(|| black_box(&model).to_xml())
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
