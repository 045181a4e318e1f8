//! Parse and write a ~5.5 KB FA(3) invoice, against quick-xml's raw event reader over the same
//! bytes in the same run (the baseline: the least work any XML reader can do), with quick-xml's
//! namespace-resolving reader (the floor of the streaming parser) and roxmltree's DOM (the
//! previous parser's first stage) for reference.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a bench: failures should panic

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

fn bench(c: &mut Criterion) {
    let xml = invoice();
    let model = Faktura::from_xml(&xml).expect("bench invoice parses");
    let written = model.to_xml();
    let mut g = c.benchmark_group(format!("fa3 {} bytes", xml.len()));
    g.throughput(Throughput::Bytes(xml.len() as u64));
    g.bench_function("baseline: quick-xml raw events", |b| {
        b.iter(|| {
            let mut r = quick_xml::Reader::from_str(black_box(&xml));
            let mut n = 0usize;
            loop {
                match r.read_event().unwrap() {
                    quick_xml::events::Event::Eof => break,
                    _ => n += 1,
                }
            }
            n
        })
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
