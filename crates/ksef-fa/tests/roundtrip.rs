//! Every FA(3) template parses → writes → parses to an equal model, and the written XML
//! validates against the official XSD (xmllint oracle).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use ksef_fa::{Error, Faktura, WrongDocument};

#[test]
fn templates_round_trip_and_validate() {
    for path in common::fa3_templates() {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let xml = common::fill(&std::fs::read_to_string(&path).unwrap());
        if name.contains("multiple-Subject3") {
            // As shipped, this template puts both NIP and IDWew in Podmiot3's identifier choice,
            // which the schema forbids: xmllint and our parser must both refuse it.
            if let Some(r) = common::xmllint(&xml) {
                assert!(r.is_err(), "{name}: xmllint accepted it");
            }
            let e = Faktura::from_xml(&xml).unwrap_err();
            assert!(
                e.to_string().contains("Podmiot3[1]/DaneIdentyfikacyjne"),
                "{e}"
            );
            // without the IDWew lines it is valid: round-trip the rest of it
            let fixed: Vec<&str> = xml.lines().filter(|l| !l.contains("<IDWew>")).collect();
            round_trip(&name, &fixed.join("\n"));
            continue;
        }
        round_trip(&name, &xml);
    }
}

fn round_trip(name: &str, xml: &str) {
    if let Some(r) = common::xmllint(xml) {
        r.unwrap_or_else(|e| panic!("{name}: the filled template itself is invalid: {e}"));
    }
    let first = Faktura::from_xml(xml).unwrap_or_else(|e| panic!("{name}: {e}"));
    let written = first.to_xml();
    assert!(!written.starts_with('\u{feff}'));
    assert_eq!(written.matches("<?").count(), 1, "only the XML declaration");
    let second =
        Faktura::from_xml(&written).unwrap_or_else(|e| panic!("{name} (written): {e}\n{written}"));
    assert_eq!(first, second, "{name}: model changed over a round trip");
    assert_eq!(written, second.to_xml(), "{name}: writing is not stable");
    if let Some(r) = common::xmllint(&written) {
        r.unwrap_or_else(|e| panic!("{name}: written XML is invalid: {e}\n{written}"));
    }
}

#[test]
fn minimal_round_trips() {
    let xml = include_str!("data/minimal.xml");
    let f = Faktura::from_xml(xml).unwrap();
    assert_eq!(f.fa.p_2.as_str(), "FV/1/2026");
    assert_eq!(Faktura::from_xml(&f.to_xml()).unwrap(), f);
    f.validate_at(time::macros::date!(2026 - 02 - 01)).unwrap();
}

fn wrong(path: &str) -> WrongDocument {
    let xml = std::fs::read_to_string(common::repo().join(path)).unwrap();
    match Faktura::from_xml(&common::fill(&xml)) {
        Err(Error::WrongDocument(w)) => w,
        other => panic!("{path}: expected WrongDocument, got {other:?}"),
    }
}

#[test]
fn other_forms_are_refused() {
    assert_eq!(
        wrong("fixtures/invoices/invoice-template-fa-2.xml"),
        WrongDocument::Fa2
    );
    assert_eq!(
        wrong("fixtures/invoices/invoice-template-fa-rr-1.xml"),
        WrongDocument::FaRr
    );
    assert!(matches!(
        wrong("fixtures/invoices/invoice-template-fa-3-pef.xml"),
        WrongDocument::Pef { .. }
    ));
    assert!(matches!(
        wrong("fixtures/invoices/invoice-template-fa-3-pef-correction.xml"),
        WrongDocument::Pef { .. }
    ));
    let msg = Error::WrongDocument(WrongDocument::Fa2).to_string();
    assert!(msg.contains("FA(2)"), "{msg}");
}

#[test]
fn written_form_has_the_official_namespaces_and_nothing_else() {
    let xml = common::fill(
        &std::fs::read_to_string(
            common::repo().join("fixtures/invoices/invoice-template-fa-3.xml"),
        )
        .unwrap(),
    );
    let written = Faktura::from_xml(&xml).unwrap().to_xml();
    // the XML declaration, then the root with the official default namespace and the `etd` and
    // `xsi` prefixes the Ministry's templates declare
    let head = concat!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Faktura",
        " xmlns=\"http://crd.gov.pl/wzor/2025/06/25/13775/\"",
        " xmlns:etd=\"http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/\"",
        " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">"
    );
    assert!(written.starts_with(head), "{}", &written[..300]);
    let official_root: std::collections::BTreeSet<_> = roxmltree::Document::parse(&xml)
        .unwrap()
        .root_element()
        .namespaces()
        .map(|n| (n.name().map(str::to_owned), n.uri().to_owned()))
        .collect();
    let doc = roxmltree::Document::parse(&written).unwrap();
    let ours: std::collections::BTreeSet<_> = doc
        .root_element()
        .namespaces()
        .map(|n| (n.name().map(str::to_owned), n.uri().to_owned()))
        .collect();
    assert_eq!(ours, official_root);
    // every element in the FA(3) namespace, written unprefixed; no namespace declared below the root
    for n in doc.descendants().filter(|n| n.is_element()) {
        assert_eq!(n.tag_name().namespace(), Some(ksef_fa::NAMESPACE));
    }
    assert_eq!(written.matches("xmlns").count(), 3);
    assert!(!written.contains("<fa:") && !written.contains("<etd:"));
    // UTF-8 without BOM, no processing instructions, non-ASCII text as itself (not escaped)
    assert!(!written.as_bytes().starts_with(&[0xEF, 0xBB, 0xBF]));
    assert_eq!(written.matches("<?").count(), 1);
    assert!(!written.contains("&#"), "characters written as references");
    let f = Faktura::from_xml(&xml.replace("<Nazwa>", "<Nazwa>Zażółć gęślą jaźń ")).unwrap();
    let w = f.to_xml();
    assert!(w.contains("Zażółć gęślą jaźń"));
    assert_eq!(Faktura::from_slice(w.as_bytes()).unwrap(), f);
}
