//! Mutation fuzzing of the parser (and its own XML reader, `src/xml.rs`) from the real fixture
//! invoices: byte flips, truncations, deletions, duplications and inserted markup, stacked up to
//! four deep. Whatever comes out must be `Ok` (and then survive a write → parse round trip) or a
//! typed error that renders; never a panic, a hang or an error without its field path. roxmltree
//! is the independent oracle both ways: what it finds not well-formed is never `Ok`, what it reads
//! is never refused as malformed XML (bar its known laxities, listed where they are excused).
//!
//! The case count is `FA3_FUZZ_CASES` (default 512, CI-friendly); a long local run:
//! `FA3_FUZZ_CASES=20000 cargo test -p ksef-fa --release --test fuzz_fixtures`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use std::sync::OnceLock;

use ksef_fa::{Error, Faktura};
use proptest::prelude::*;

/// Every FA(3) fixture (filled) plus the minimal test invoice, as bytes.
fn corpus() -> &'static [Vec<u8>] {
    static C: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    C.get_or_init(|| {
        let mut v: Vec<Vec<u8>> = common::fa3_templates()
            .iter()
            .map(|p| common::fill(&std::fs::read_to_string(p).unwrap()).into_bytes())
            .collect();
        v.push(include_bytes!("data/minimal.xml").to_vec());
        v
    })
}

/// Markup and text that stress the reader's states.
const SNIPPETS: &[&str] = &[
    "<",
    ">",
    "</",
    "/>",
    "<Fa>",
    "</Fa>",
    "<P_2>",
    "</P_2>",
    "<FaWiersz><NrWierszaFa>1</NrWierszaFa></FaWiersz>",
    "<![CDATA[x]]>",
    "<![CDATA[",
    "]]>",
    "<!-- c -->",
    "<!--",
    "-->",
    "<?pi x?>",
    "<?xml version=\"1.0\"?>",
    "<!DOCTYPE Faktura [<!ENTITY e \"x\">]>",
    "&amp;",
    "&e;",
    "&#0;",
    "&#x110000;",
    "&#65;",
    "&",
    "&#",
    "\"",
    "'",
    " a=\"1\"",
    " xmlns=\"urn:x\"",
    " xmlns:p=\"\"",
    " xmlns=\"\"",
    "p:",
    ":",
    "\u{0}",
    "\u{1}",
    "\u{feff}",
    "\u{fffe}",
    "é",
    "\r\n",
    "9999999999999999999999.999999999",
    "-0.00",
    "2026-13-45",
    "24",
];

#[derive(Debug, Clone)]
enum Mutation {
    /// XOR the byte at a position with a non-zero mask.
    Flip(prop::sample::Index, u8),
    /// Cut the document at a position.
    Truncate(prop::sample::Index),
    /// Remove a range.
    Delete(prop::sample::Index, usize),
    /// Repeat a range right after itself.
    Duplicate(prop::sample::Index, usize),
    /// Insert a snippet at a position.
    Insert(prop::sample::Index, prop::sample::Index),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<prop::sample::Index>(), 1u8..=255).prop_map(|(i, m)| Mutation::Flip(i, m)),
        any::<prop::sample::Index>().prop_map(Mutation::Truncate),
        (any::<prop::sample::Index>(), 1usize..64).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (any::<prop::sample::Index>(), 1usize..256).prop_map(|(i, n)| Mutation::Duplicate(i, n)),
        (any::<prop::sample::Index>(), any::<prop::sample::Index>())
            .prop_map(|(i, s)| Mutation::Insert(i, s)),
    ]
}

fn apply(doc: &mut Vec<u8>, m: &Mutation) {
    let at = |i: &prop::sample::Index, len: usize| if len == 0 { 0 } else { i.index(len + 1) };
    match m {
        Mutation::Flip(i, mask) => {
            if !doc.is_empty() {
                let p = i.index(doc.len());
                doc[p] ^= mask;
            }
        }
        Mutation::Truncate(i) => {
            let p = at(i, doc.len());
            doc.truncate(p);
        }
        Mutation::Delete(i, n) => {
            let p = at(i, doc.len());
            let end = (p + n).min(doc.len());
            doc.drain(p..end);
        }
        Mutation::Duplicate(i, n) => {
            let p = at(i, doc.len());
            let end = (p + n).min(doc.len());
            let copy = doc[p..end].to_vec();
            doc.splice(end..end, copy);
        }
        Mutation::Insert(i, s) => {
            let p = at(i, doc.len());
            let snippet = SNIPPETS[s.index(SNIPPETS.len())].as_bytes();
            doc.splice(p..p, snippet.iter().copied());
        }
    }
}

/// The outcome contract for any input.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    match Faktura::from_slice(bytes) {
        Ok(f) => {
            // independent oracle: what roxmltree finds not well-formed we must not accept
            let text = std::str::from_utf8(bytes).unwrap();
            if let Err(e) =
                roxmltree::Document::parse(text.strip_prefix('\u{feff}').unwrap_or(text))
            {
                prop_assert!(false, "accepted, but roxmltree says: {}", e);
            }
            let again = Faktura::from_xml(&f.to_xml());
            prop_assert_eq!(again.as_ref(), Ok(&f), "a parsed invoice must round-trip");
        }
        Err(e) => {
            // and what roxmltree reads is not refused as malformed XML (bar its known laxities,
            // as in tests/xml_forms.rs, and DTDs, which invoices may not carry)
            if let (Error::Xml(m), Ok(text)) = (&e, std::str::from_utf8(bytes)) {
                let text = text.strip_prefix('\u{feff}').unwrap_or(text);
                if roxmltree::Document::parse(text).is_ok()
                    && !text.contains("<!DOCTYPE")
                    && !m.contains("XML declaration")
                    && !m.contains("processing instruction")
                    && !m.contains("empty URI") // `xmlns:p=""` is XML 1.1 only
                    && !text.contains("&#x110000;") // beyond Unicode: roxmltree lets it through
                    && !(m.contains("attribute `xmlns") && m.contains("appears twice"))
                    && !text.contains("<:")
                    && !text.contains("</:")
                    && !text.contains(" :")
                {
                    prop_assert!(false, "refused as XML ({}), roxmltree reads it", m);
                }
            }
            let msg = e.to_string();
            prop_assert!(!msg.is_empty());
            match &e {
                Error::Invalid { .. } => {
                    prop_assert!(e.path().is_some(), "no field path: {}", msg);
                    prop_assert!(e.problem().is_some(), "no problem: {}", msg);
                }
                Error::Xml(_) | Error::WrongDocument(_) => {}
                other => prop_assert!(false, "an error kind this test does not know: {:?}", other),
            }
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("FA3_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(512)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), max_shrink_iters: 2000, ..ProptestConfig::default() })]

    #[test]
    fn mutated_fixtures_give_ok_or_a_typed_error(
        which in any::<prop::sample::Index>(),
        muts in prop::collection::vec(mutation(), 1..5),
    ) {
        let src = corpus();
        let mut doc = src[which.index(src.len())].clone();
        for m in &muts {
            apply(&mut doc, m);
        }
        check(&doc)?;
    }
}

#[test]
fn every_truncation_of_the_minimal_invoice() {
    // exhaustive: each prefix of a whole invoice is an error (the root is never closed) and
    // never a panic
    let doc = include_bytes!("data/minimal.xml");
    let end = doc.iter().rposition(|b| *b == b'>').unwrap() + 1;
    for n in 0..end {
        let r = Faktura::from_slice(&doc[..n]);
        assert!(r.is_err(), "prefix of {n} bytes accepted");
    }
    assert!(Faktura::from_slice(doc).is_ok());
}

#[test]
fn deep_nesting_is_refused_without_recursion() {
    // 100 000 nested unknown elements inside Fa: the parser must stop at the first one
    let xml = include_str!("data/minimal.xml");
    let deep = format!("{}{}", "<x>".repeat(100_000), "</x>".repeat(100_000));
    let e = Faktura::from_xml(&xml.replacen("<P_2>", &format!("{deep}<P_2>"), 1)).unwrap_err();
    assert!(e.path().is_some(), "{e}");
    // and deep nesting after the root closed or before it
    assert!(Faktura::from_xml(&deep).is_err());
}

#[test]
fn attribute_names_must_be_namespace_well_formed() {
    // found by the fuzzer above: `xmlns::etd=` (one byte duplicated) was read as a declaration
    // of the prefix `:etd`; xmllint and roxmltree refuse it
    let xml = include_str!("data/minimal.xml");
    for attr in [
        " xmlns::etd=\"urn:x\"",
        " xmlns:=\"urn:x\"",
        " a::b=\"1\"",
        " :a=\"1\"",
        " a:=\"1\"",
        " xsi::type=\"x\"",
    ] {
        let bad = xml.replacen("<Naglowek>", &format!("<Naglowek{attr}>"), 1);
        match Faktura::from_xml(&bad) {
            Err(Error::Xml(m)) => assert!(m.contains("namespace-well-formed"), "{attr}: {m}"),
            other => panic!("{attr}: {other:?}"),
        }
        // (roxmltree is lax about an empty prefix, `:a`)
        if !attr.starts_with(" :") {
            assert!(roxmltree::Document::parse(&bad).is_err(), "{attr}");
        }
    }
}

#[test]
fn non_ascii_names_follow_the_xml_name_rules() {
    // found by the fuzzer above: U+FFFE inside `xmlns:xsi` was accepted in an attribute name
    let xml = include_str!("data/minimal.xml");
    for attr in [
        " xmlns:x\u{fffe}si=\"urn:x\"",
        " a\u{d7}=\"1\"",
        " \u{300}a=\"1\"",
    ] {
        let bad = xml.replacen("<Naglowek>", &format!("<Naglowek{attr}>"), 1);
        assert!(
            matches!(Faktura::from_xml(&bad), Err(Error::Xml(_))),
            "{attr}"
        );
        assert!(roxmltree::Document::parse(&bad).is_err(), "{attr}");
    }
    // a well-formed non-ASCII attribute name: well-formed, but not an attribute FA(3) allows
    let ok = xml.replacen("<Naglowek>", "<Naglowek zażółć=\"1\">", 1);
    assert!(roxmltree::Document::parse(&ok).is_ok());
    let e = Faktura::from_xml(&ok).unwrap_err();
    assert_eq!(e.path().unwrap().to_string(), "Naglowek", "{e}");
    // an element name with a non-name character is malformed, not an unknown element
    let bad = xml.replacen("<Naglowek>", "<Naglowek><a\u{fffe}/>", 1);
    assert!(matches!(Faktura::from_xml(&bad), Err(Error::Xml(_))));
}
