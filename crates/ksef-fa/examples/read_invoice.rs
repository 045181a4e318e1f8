//! Reads an FA(3) invoice (e.g. one downloaded from KSeF) and prints its parties, lines and
//! totals.
//!
//! `cargo run -p ksef-fa --example read_invoice -- invoice.xml` (without an argument it reads
//! the crate's test invoice).
#![allow(clippy::print_stdout, clippy::print_stderr)] // an example: printing is its job

use std::process::ExitCode;

use ksef_fa::Faktura;
use ksef_fa::model::{TPodmiot2Id, TRodzajFaktury};

fn main() -> ExitCode {
    // errors are shown with Display (what is wrong, at which field), not Debug
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let xml = match std::env::args().nth(1) {
        Some(path) => {
            std::fs::read_to_string(&path).map_err(|e| format!("cannot read {path}: {e}"))?
        }
        None => include_str!("../tests/data/minimal.xml").to_owned(),
    };
    let f = Faktura::from_xml(&xml)?;
    let fa = &f.fa;
    let kind = match fa.rodzaj_faktury {
        TRodzajFaktury::Vat => "VAT invoice",
        TRodzajFaktury::Kor => "correction",
        TRodzajFaktury::Zal => "advance invoice",
        TRodzajFaktury::Roz => "settlement invoice",
        TRodzajFaktury::Upr => "simplified invoice",
        TRodzajFaktury::KorZal => "correction of an advance invoice",
        TRodzajFaktury::KorRoz => "correction of a settlement invoice",
    };
    println!("{kind} {} of {} ({})", fa.p_2, fa.p_1, fa.kod_waluty);
    let s = &f.podmiot1.dane_identyfikacyjne;
    println!("seller: {} (NIP {})", s.nazwa, s.nip);
    let b = &f.podmiot2.dane_identyfikacyjne;
    let name = b.nazwa_group.as_ref().map_or("-", |g| g.nazwa.as_str());
    match &b.id {
        TPodmiot2Id::Nip(n) => println!("buyer: {name} (NIP {n})"),
        TPodmiot2Id::KodUe(eu) => println!("buyer: {name} (VAT {}{})", eu.kod_ue, eu.nr_vat_ue),
        TPodmiot2Id::KodKraju(x) => println!("buyer: {name} (tax id {})", x.nr_id),
        TPodmiot2Id::BrakId(_) => println!("buyer: {name} (no tax id)"),
    }
    for p in &f.podmiot3 {
        let n = p
            .dane_identyfikacyjne
            .nazwa_group
            .as_ref()
            .map_or("-", |g| g.nazwa.as_str());
        println!("third party: {n}");
    }
    for l in &fa.fa_wiersz {
        let show = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        println!(
            "  {:>3}. {:<40} {:>10} {:<6} × {:>10} = {:>10}  VAT {}",
            l.nr_wiersza_fa,
            show(l.p_7.as_ref().map(ToString::to_string)),
            show(l.p_8_b.map(|v| v.to_string())),
            show(l.p_8_a.as_ref().map(ToString::to_string)),
            show(l.p_9_a.map(|v| v.to_string())),
            show(l.p_11.map(|v| v.to_string())),
            show(l.p_12.map(|v| v.to_string())),
        );
    }
    if let Some(g) = &fa.p_13_1_group {
        println!("net 23/22 %: {}  VAT: {}", g.p_13_1, g.p_14_1);
    }
    if let Some(g) = &fa.p_13_2_group {
        println!("net 8/7 %: {}  VAT: {}", g.p_13_2, g.p_14_2);
    }
    if let Some(g) = &fa.p_13_3_group {
        println!("net 5 %: {}  VAT: {}", g.p_13_3, g.p_14_3);
    }
    println!("total (P_15): {} {}", fa.p_15, fa.kod_waluty);
    match f.validate() {
        Ok(()) => println!("valid"),
        Err(errs) => {
            for e in errs {
                println!("invalid: {e}");
            }
        }
    }
    Ok(())
}
