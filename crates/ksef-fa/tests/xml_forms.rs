//! The streaming parser reads every XML form of the same invoice alike (prefixes, entities,
//! CDATA, comments, line ends) and refuses what is not one well-formed FA(3) document.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use ksef_fa::{Error, Faktura, Problem, WrongDocument};

const MINIMAL: &str = include_str!("data/minimal.xml");

fn p2(xml: &str) -> String {
    Faktura::from_xml(xml).unwrap().fa.p_2.as_str().to_owned()
}

fn err(xml: &str) -> Error {
    match Faktura::from_xml(xml) {
        Ok(_) => panic!("accepted:\n{xml}"),
        Err(e) => e,
    }
}

#[test]
fn prefixed_namespace_reads_like_the_default_one() {
    let base = Faktura::from_xml(MINIMAL).unwrap();
    // every element in a `fa:` prefix instead of the default namespace
    let mut prefixed = String::new();
    let mut rest = MINIMAL;
    while let Some(i) = rest.find('<') {
        prefixed.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        if rest.starts_with('/') {
            prefixed.push_str("/fa:");
            rest = &rest[1..];
        } else if !rest.starts_with('?') {
            prefixed.push_str("fa:");
        }
    }
    prefixed.push_str(rest);
    let prefixed = prefixed.replace("xmlns=", "xmlns:fa=");
    assert_eq!(Faktura::from_xml(&prefixed).unwrap(), base);
}

#[test]
fn entities_cdata_comments_and_line_ends() {
    let xml = MINIMAL.replace(
        "<P_2>FV/1/2026</P_2>",
        "<P_2>FV&#47;1<!-- c --><![CDATA[/20]]>&#x32;6 &amp; &lt;&gt;&quot;&apos;</P_2>",
    );
    assert_eq!(p2(&xml), "FV/1/2026 & <>\"'");
    // CR LF in content is read as LF (XML 1.0 line-end handling); whitespace between elements
    // and a processing instruction are ignored
    let xml = MINIMAL
        .replace('\n', "\r\n")
        .replace("<P_2>FV/1/2026</P_2>", "<?pi x?><P_2>FV/1/2026</P_2>");
    assert_eq!(p2(&xml), "FV/1/2026");
    // an empty-element tag is an empty value
    let e = err(&MINIMAL.replace("<P_2>FV/1/2026</P_2>", "<P_2/>"));
    assert_eq!(e.path().unwrap().to_string(), "Fa/P_2");
    // with a byte-order mark
    assert!(Faktura::from_xml(&format!("\u{feff}{MINIMAL}")).is_ok());
}

#[test]
fn xsi_attributes_pass_and_foreign_ones_do_not() {
    let xml = MINIMAL.replace(
        "<Naglowek>",
        "<Naglowek xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xsi:type=\"TNaglowek\">",
    );
    assert!(Faktura::from_xml(&xml).is_ok());
    let e = err(&MINIMAL.replace("<Naglowek>", "<Naglowek x=\"1\">"));
    assert_eq!(e.to_string(), "Naglowek: attribute `x` is not allowed here");
    let e = err(&MINIMAL.replace("<Naglowek>", "<Naglowek xmlns:a=\"urn:a\" a:x=\"1\">"));
    assert!(e.to_string().contains("{urn:a}x"), "{e}");
}

#[test]
fn text_among_children_names_the_parent() {
    let e = err(&MINIMAL.replace("<JST>2</JST>", "stray<JST>2</JST>"));
    assert_eq!(e.path().unwrap().to_string(), "Podmiot2");
    assert_eq!(e.problem(), Some(&Problem::Text));
    let e = err(&MINIMAL.replace("<GV>2</GV>", "<GV>2</GV>stray"));
    assert_eq!(e.path().unwrap().to_string(), "Podmiot2");
    let e = err(&MINIMAL.replace("<P_2>FV/1/2026</P_2>", "<P_2>FV<b/></P_2>"));
    assert_eq!(e.path().unwrap().to_string(), "Fa/P_2");
    assert_eq!(e.problem(), Some(&Problem::ChildElements));
}

#[test]
fn malformed_documents_are_xml_errors() {
    for (what, xml) in [
        (
            "DTD",
            MINIMAL.replace(
                "<Faktura ",
                "<!DOCTYPE Faktura [<!ENTITY x \"y\">]><Faktura ",
            ),
        ),
        ("unknown entity", MINIMAL.replace("FV/1/2026", "FV&x;")),
        ("bad char ref", MINIMAL.replace("FV/1/2026", "FV&#1;")),
        ("second root", format!("{MINIMAL}<Faktura/>")),
        ("text after root", format!("{MINIMAL}x")),
        ("mismatched end", MINIMAL.replace("</P_2>", "</P_3>")),
        ("truncated", MINIMAL[..MINIMAL.len() / 2].to_owned()),
        (
            "undeclared prefix",
            MINIMAL.replace("<P_2>FV/1/2026</P_2>", "<q:P_2>x</q:P_2>"),
        ),
        (
            "duplicate attribute",
            MINIMAL.replace(
                "wersjaSchemy=\"1-0E\"",
                "wersjaSchemy=\"1-0E\" wersjaSchemy=\"1-0E\"",
            ),
        ),
        ("empty", String::new()),
    ] {
        assert!(
            matches!(err(&xml), Error::Xml(_)),
            "{what}: {:?}",
            err(&xml)
        );
    }
}

#[test]
fn root_forms() {
    let e = err("<Faktura/>");
    assert!(
        matches!(&e, Error::WrongDocument(WrongDocument::Other { namespace, root }) if namespace.is_empty() && root == "Faktura"),
        "{e:?}"
    );
    let e = err("<x:Invoice xmlns:x=\"urn:oasis:names:specification:ubl:schema:xsd:Invoice-2\"/>");
    assert!(
        matches!(e, Error::WrongDocument(WrongDocument::Pef { .. })),
        "{e:?}"
    );
    // a root in the FA(3) namespace with no content
    let e = err("<Faktura xmlns=\"http://crd.gov.pl/wzor/2025/06/25/13775/\"/>");
    assert_eq!(e.path().unwrap().to_string(), "Naglowek");
}

#[test]
fn namespace_scopes_end_with_their_element() {
    // a prefix declared on Naglowek is out of scope in Fa
    let xml = MINIMAL
        .replace(
            "<Naglowek>",
            "<Naglowek xmlns:q=\"http://crd.gov.pl/wzor/2025/06/25/13775/\">",
        )
        .replace("<P_2>FV/1/2026</P_2>", "<q:P_2>FV/1/2026</q:P_2>");
    assert!(matches!(err(&xml), Error::Xml(_)));
    // ... and in scope inside it
    let xml = MINIMAL
        .replace(
            "<Naglowek>",
            "<Naglowek xmlns:q=\"http://crd.gov.pl/wzor/2025/06/25/13775/\">",
        )
        .replace(
            "<WariantFormularza>3</WariantFormularza>",
            "<q:WariantFormularza>3</q:WariantFormularza>",
        );
    assert!(Faktura::from_xml(&xml).is_ok());
    // a default namespace redeclared on an element applies to it and its content only
    let e = err(&MINIMAL.replace("<P_2>FV/1/2026</P_2>", "<P_2 xmlns=\"urn:x\">FV</P_2>"));
    assert_eq!(e.path().unwrap().to_string(), "Fa/P_2");
    assert!(e.to_string().contains("{urn:x}P_2"), "{e}");
    let xml = MINIMAL.replace(
        "<JST>2</JST>",
        "<JST xmlns=\"urn:x\" xmlns:fa=\"http://crd.gov.pl/wzor/2025/06/25/13775/\"/><JST>2</JST>",
    );
    let e = err(&xml);
    assert!(e.to_string().contains("{urn:x}JST"), "{e}");
    // the empty-element tag's declarations do not leak to its siblings
    let xml = MINIMAL.replace(
        "<Podmiot1>",
        "<!-- --><?x?><Podmiot1 xmlns:z=\"urn:z\" z:a=\"1\">",
    );
    assert!(err(&xml).to_string().contains("{urn:z}a"));
    // xmlns="" undeclares the default namespace
    let e = err(&MINIMAL.replace("<P_2>FV/1/2026</P_2>", "<P_2 xmlns=\"\">FV</P_2>"));
    assert!(e.to_string().contains("{}P_2"), "{e}");
}

/// The XML forms of MINIMAL's text that the differential test splices in: markup of every kind,
/// references good and bad, namespace declarations and prefixes.
const PIECES: &[&str] = &[
    "<",
    ">",
    "/",
    "</",
    "/>",
    "&",
    ";",
    "&amp;",
    "&#x41;",
    "&#1;",
    "&lt;",
    "&foo;",
    "\"",
    "'",
    "=",
    " ",
    "\r\n",
    "\r",
    "<!-- c -->",
    "<!--",
    "-->",
    "--",
    "<![CDATA[",
    "]]>",
    "<?pi x?>",
    "<?xml version=\"1.0\"?>",
    "?>",
    "<!DOCTYPE x>",
    "xmlns=\"\"",
    " xmlns:q=\"urn:q\"",
    "q:",
    ":",
    "<a>",
    "</a>",
    "<a/>",
    "P_2",
    " a=\"1\"",
    " a='1'",
    "x",
    "<!x>",
    "\u{1}",
    "é",
    "\u{fffe}",
    "\t",
];

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

    /// Independent oracle for the XML layer (`src/xml.rs`, ours): a document roxmltree finds
    /// not well-formed is refused, and one it reads is never refused as malformed XML.
    #[test]
    fn well_formedness_agrees_with_roxmltree(
        edits in proptest::collection::vec((0usize..MINIMAL.len(), 0usize..6, 0..PIECES.len()), 1..4)
    ) {
        let mut s = MINIMAL.to_owned();
        for (pos, len, piece) in edits {
            let start = (0..=pos.min(s.len())).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
            let end = (start + len..=s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
            s.replace_range(start..end, PIECES[piece]);
        }
        let ours = Faktura::from_xml(&s);
        let theirs = roxmltree::Document::parse(&s);
        match (&ours, &theirs) {
            (Ok(_), Err(e)) => proptest::prop_assert!(false, "accepted, roxmltree: {e}\n{s}"),
            // roxmltree is laxer than XML 1.0 about the declaration's pseudo-attributes, about
            // processing instruction targets (`<?a=""b ?>`) and about names with an empty
            // prefix (`<:a>`, even `<a></:a>`)
            (Err(Error::Xml(e)), Ok(_))
                if !s.contains("<!DOCTYPE")
                    && !e.contains("XML declaration")
                    && !e.contains("processing instruction")
                    && !s.contains("<:")
                    && !s.contains("</:")
                    // roxmltree also reads attribute names with an empty prefix (` :a=`)
                    && !s.contains(" :") =>
            {
                proptest::prop_assert!(false, "refused as XML ({e}), roxmltree reads it\n{s}")
            }
            _ => {}
        }
    }
}
