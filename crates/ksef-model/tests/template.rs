//! Every invoice template in fixtures/invoices fills to well-formed XML.

// Test code: a panic is a test failure, and skip notes go to stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use ksef_model::form::FormCode;
use ksef_model::template::{InvoiceTemplate, TemplateError};
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

fn templates() -> Vec<(String, Vec<u8>)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/invoices");
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "xml"))
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert_eq!(out.len(), 10, "expected the ten MF templates");
    out
}

/// Values for every placeholder the templates use; the invoice number carries characters that
/// must be escaped.
fn values() -> HashMap<String, String> {
    [
        ("nip", "5265877635"),
        ("nipOdbiorca", "7811767696"),
        ("nip_podmiot1", "5265877635"),
        ("nip_podmiot2", "7811767696"),
        ("nip1_podmiot3", "1111111111"),
        ("nip2_podmiot3", "9999999999"),
        ("idwew1_podmiot3", "6824515772-12343"),
        ("idwew2_podmiot3", "5265877635-00016"),
        ("invoice_number", "R&D <7> \"Q\" 'x'"),
        ("supplier_nip", "5265877635"),
        ("buyer_nip", "7811767696"),
        ("buyer_reference", "REF & 1"),
        ("issue_date", "2026-01-15"),
        ("due_date", "2026-02-15"),
        ("iban", "PL61109010140000071219812874"),
        ("ksef_number", "5265877635-20250826-0100001AF629-AF"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// Reads the whole document with quick-xml's namespace-resolving reader, touching every
/// attribute; returns the root's namespace and local name and all text.
fn parse_to_end(xml: &str) -> (String, String, String) {
    let mut r = NsReader::from_str(xml);
    let mut root: Option<(String, String)> = None;
    let mut text = String::new();
    let mut depth = 0usize;
    loop {
        let (ns, ev) = r.read_resolved_event().unwrap();
        let ns = match ns {
            ResolveResult::Bound(n) => n.as_ref().to_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(p) => panic!("undeclared prefix {p}"),
        };
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                for a in e.attributes() {
                    let a = a.unwrap();
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                        .unwrap();
                }
                if root.is_none() {
                    root = Some((ns, e.local_name().as_ref().to_owned()));
                }
                if matches!(ev, Event::Start(_)) {
                    depth += 1;
                }
            }
            Event::End(_) => depth -= 1,
            Event::Text(t) => text.push_str(&t.xml10_content()),
            Event::GeneralRef(g) => {
                let c = match &*g {
                    "amp" => '&',
                    "lt" => '<',
                    "gt" => '>',
                    "quot" => '"',
                    "apos" => '\'',
                    other => g
                        .resolve_char_ref()
                        .unwrap()
                        .unwrap_or_else(|| panic!("unknown entity {other}")),
                };
                text.push(c);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(depth, 0, "unbalanced document");
    let (ns, local) = root.expect("no root element");
    (ns, local, text)
}

#[test]
fn every_template_fills_to_well_formed_xml() {
    let values = values();
    for (name, bytes) in templates() {
        let t = InvoiceTemplate::from_bytes(&bytes).unwrap();
        assert!(!t.placeholders().is_empty(), "{name} has no placeholders");
        let xml = t
            .fill_map(&values)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // No placeholder survives, and the literal Peppol URNs are intact.
        assert!(
            InvoiceTemplate::new(xml.clone()).placeholders().is_empty(),
            "{name}"
        );
        if name.contains("pef") {
            assert!(
                xml.contains("urn:cen.eu:en16931:2017#compliant#urn:fdc:peppol.eu"),
                "{name}"
            );
        }
        let (ns, local, text) = parse_to_end(&xml);
        let form = FormCode::from_root(&ns, &local)
            .unwrap_or_else(|| panic!("{name}: unknown root {{{ns}}}{local}"));
        let expected = if name.contains("pef-correction") {
            FormCode::PefKor3
        } else if name.contains("pef") {
            FormCode::Pef3
        } else if name.contains("fa-rr") {
            FormCode::FaRr1
        } else if name.contains("fa-2") {
            FormCode::Fa2
        } else {
            FormCode::Fa3
        };
        assert_eq!(form, expected, "{name}");
        // Escaped values read back unchanged.
        if t.placeholders().contains(&"invoice_number") {
            assert!(text.contains("R&D <7> \"Q\" 'x'"), "{name}");
        }
    }
}

#[test]
fn missing_values_are_all_listed() {
    let (_, bytes) = templates()
        .into_iter()
        .find(|(n, _)| n == "invoice-template-fa-3-with-multiple-Subject3.xml")
        .unwrap();
    let t = InvoiceTemplate::from_bytes(&bytes).unwrap();
    let err = t.fill([("nip_podmiot1", "5265877635")]).unwrap_err();
    assert_eq!(
        err,
        TemplateError::Unfilled(vec![
            "idwew1_podmiot3".into(),
            "idwew2_podmiot3".into(),
            "nip1_podmiot3".into(),
            "nip2_podmiot3".into(),
            "nip_podmiot2".into(),
        ])
    );
    let (_, pef) = templates()
        .into_iter()
        .find(|(n, _)| n == "invoice-template-fa-3-pef-correction.xml")
        .unwrap();
    // `#compliant#` / `#extended#` inside the CustomizationID URN are not placeholders.
    assert_eq!(
        InvoiceTemplate::from_bytes(&pef).unwrap().placeholders(),
        [
            "buyer_nip",
            "buyer_reference",
            "iban",
            "invoice_number",
            "issue_date",
            "ksef_number",
            "supplier_nip"
        ]
    );
}

#[test]
fn xmllint_agrees_the_filled_templates_are_well_formed() {
    let have = Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            std::env::var("KSEF_REQUIRE_ORACLES").as_deref() != Ok("1"),
            "xmllint is required (KSEF_REQUIRE_ORACLES=1) but not installed"
        );
        eprintln!("note: xmllint not installed, skipping");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ksef-model-template-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let values = values();
    let mut files: Vec<PathBuf> = Vec::new();
    for (name, bytes) in templates() {
        let xml = InvoiceTemplate::from_bytes(&bytes)
            .unwrap()
            .fill_map(&values)
            .unwrap();
        let p = dir.join(name);
        std::fs::write(&p, xml).unwrap();
        files.push(p);
    }
    let out = Command::new("xmllint")
        .args(["--noout", "--nonet"])
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&dir).ok();
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_templates_never_panic(t in ".{0,200}", v in ".{0,20}") {
            let t = InvoiceTemplate::new(t);
            let names: Vec<String> = t.placeholders().into_iter().map(str::to_owned).collect();
            let _ = t.fill(names.iter().map(|n| (n.as_str(), v.as_str())));
        }

        #[test]
        fn filled_values_read_back(v in "[^\u{0}-\u{8}\u{b}-\u{1f}\u{fffe}\u{ffff}]{0,40}") {
            let t = InvoiceTemplate::new("<a x=\"#v#\">#v#</a>");
            let xml = t.fill([("v", v.as_str())]).unwrap();
            let mut r = NsReader::from_str(&xml);
            let mut text = String::new();
            loop {
                match r.read_event().unwrap() {
                    Event::Start(e) => {
                        let a = e.attributes().next().unwrap().unwrap();
                        let got = a
                            .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                            .unwrap()
                            .into_owned();
                        // Attribute-value normalization turns line feeds and tabs into spaces
                        // (values here have no carriage returns: line-end handling is the
                        // XML parser's business, not the template's).
                        let expected = v.replace(['\t', '\n'], " ");
                        prop_assert_eq!(got, expected);
                    }
                    Event::Text(t) => text.push_str(&t.xml10_content()),
                    Event::GeneralRef(g) => text.push(match &*g {
                        "amp" => '&', "lt" => '<', "gt" => '>', "quot" => '"', "apos" => '\'',
                        _ => g.resolve_char_ref().unwrap().unwrap(),
                    }),
                    Event::Eof => break,
                    _ => {}
                }
            }
            prop_assert_eq!(text.replace("\r\n", "\n").replace('\r', "\n"), v.replace("\r\n", "\n").replace('\r', "\n"));
        }
    }
}
