//! Walks the official FA(3) XSD and fails if an element or attribute has no field in the model,
//! and checks the committed generated code is what the generator produces (drift).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use std::collections::HashSet;

use ksef_fa::model::SCHEMA_FIELDS;

const XS: &str = "http://www.w3.org/2001/XMLSchema";

fn walk(node: roxmltree::Node<'_, '_>, scope: &str, out: &mut Vec<(String, String)>) {
    for c in node.children().filter(|c| c.is_element()) {
        if c.tag_name().namespace() != Some(XS) {
            continue;
        }
        match c.tag_name().name() {
            "element" => {
                let name = c.attribute("name").expect("named element");
                out.push((scope.to_owned(), name.to_owned()));
                if let Some(ct) = c.children().find(|x| x.has_tag_name((XS, "complexType"))) {
                    walk(ct, &format!("{scope}/{name}"), out);
                }
            }
            "attribute" => {
                out.push((
                    scope.to_owned(),
                    format!("@{}", c.attribute("name").unwrap()),
                ));
            }
            "simpleType" | "annotation" => {}
            _ => walk(c, scope, out),
        }
    }
}

#[test]
fn every_element_and_attribute_has_a_field() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../spec/fa/schemat_FA(3)_v1-0E.xsd"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let doc = roxmltree::Document::parse(&text).unwrap();
    let mut decls = Vec::new();
    for top in doc.root_element().children().filter(|c| c.is_element()) {
        match (top.tag_name().name(), top.attribute("name")) {
            ("complexType", Some(name)) => walk(top, name, &mut decls),
            ("element", Some(name)) => {
                decls.push((String::new(), name.to_owned()));
                let ct = top
                    .children()
                    .find(|x| x.has_tag_name((XS, "complexType")))
                    .unwrap();
                walk(ct, name, &mut decls);
            }
            _ => {}
        }
    }
    let have: HashSet<(&str, &str)> = SCHEMA_FIELDS.iter().map(|(s, n, _)| (*s, *n)).collect();
    let missing: Vec<_> = decls
        .iter()
        .filter(|(s, n)| !have.contains(&(s.as_str(), n.as_str())))
        .collect();
    assert!(
        missing.is_empty(),
        "declarations without a field: {missing:?}"
    );
    // the schema has ~330 element and 3 attribute declarations
    assert!(
        decls.len() > 330,
        "walked only {} declarations",
        decls.len()
    );
    for (_, _, rust) in SCHEMA_FIELDS {
        assert!(!rust.is_empty());
    }
}

#[test]
fn generated_code_is_up_to_date() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/codegen/gen.py");
    match std::process::Command::new("python3")
        .arg(script)
        .arg("--check")
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "generated.rs is stale: run python3 crates/ksef-fa/codegen/gen.py\n{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) if std::env::var("KSEF_REQUIRE_ORACLES").as_deref() != Ok("1") => {
            eprintln!("note: python3 missing, skipping the drift check");
        }
        Err(e) => panic!("python3 required: {e}"),
    }
}

/// The base schemas (`etd:`, ElementarneTypyDanych / KodyKrajow / StrukturyDanych): every type
/// FA(3) uses from them, directly or through another type's `base`, is a simple type (so no
/// element or attribute of the base schemas is reachable: the walk above is complete) and has
/// its validated Rust type in the model.
#[test]
fn base_schema_types_are_all_modelled() {
    let spec = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/fa/");
    let mut etd = std::collections::HashMap::new();
    let files = [
        "ElementarneTypyDanych_v10-0E.xsd",
        "KodyKrajow_v10-0E.xsd",
        "StrukturyDanych_v10-0E.xsd",
    ];
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(format!("{spec}{f}")).unwrap())
        .collect();
    let docs: Vec<roxmltree::Document<'_>> = texts
        .iter()
        .map(|t| roxmltree::Document::parse(t).unwrap())
        .collect();
    for d in &docs {
        for top in d.root_element().children().filter(|c| c.is_element()) {
            if let Some(name) = top.attribute("name") {
                etd.insert(name.to_owned(), top);
            }
        }
    }
    let fa = std::fs::read_to_string(format!("{spec}schemat_FA(3)_v1-0E.xsd")).unwrap();
    let fa_doc = roxmltree::Document::parse(&fa).unwrap();
    // etd: references in FA(3): `type=` ones need their own Rust type; `base=` ones are
    // restricted further by an FA(3) type, whose Rust type carries the merged facets
    let refs = |attr: &str| -> Vec<String> {
        fa_doc
            .descendants()
            .filter_map(|n| n.attribute(attr))
            .filter_map(|t| t.strip_prefix("etd:").map(str::to_owned))
            .collect()
    };
    let by_type: HashSet<String> = refs("type").into_iter().collect();
    let mut todo: Vec<String> = refs("type");
    todo.extend(refs("base"));
    let mut seen = HashSet::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        let decl = etd
            .get(&name)
            .unwrap_or_else(|| panic!("etd:{name} not found"));
        assert_eq!(
            decl.tag_name().name(),
            "simpleType",
            "etd:{name} is a complex type: its elements need fields and the walk must cover it"
        );
        for n in decl.descendants() {
            if let Some(b) = n.attribute("base").and_then(|b| b.strip_prefix("etd:")) {
                todo.push(b.to_owned());
            }
        }
    }
    assert!(seen.len() >= 12, "only {} etd types found", seen.len());
    let generated = include_str!("../src/generated.rs");
    let missing: Vec<_> = by_type
        .iter()
        .filter(|n| !generated.contains(&format!("Schema type: `etd:{n}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "etd types without a Rust type: {missing:?}"
    );
}

/// Facets inherited from a base-schema type reach the FA(3) type that restricts it further.
#[test]
fn base_schema_facets_are_inherited() {
    use ksef_fa::model::{NrId, TData, TNaturalny};
    // NrID: an empty restriction of etd:TNrIdentyfikacjiPodatkowej (whiteSpace replace, 1..=50)
    assert!(NrId::new("x".repeat(50)).is_ok());
    assert!(NrId::new("x".repeat(51)).is_err());
    assert_eq!(NrId::new("a\tb").unwrap().as_str(), "a b");
    // tns:TNaturalny restricts etd:TNaturalny (totalDigits 14) to >= 1
    assert!(TNaturalny::new(99_999_999_999_999).is_ok());
    assert!(TNaturalny::new(100_000_000_000_000).is_err());
    // tns:TData restricts etd:TData (1900..=2050-12-31) to 2016-07-01..=2050-01-01
    let d = |y, m, day| time::Date::from_calendar_date(y, m, day).unwrap();
    assert!(TData::new(d(2016, time::Month::July, 1)).is_ok());
    assert!(TData::new(d(2016, time::Month::June, 30)).is_err());
    assert!(TData::new(d(2050, time::Month::January, 2)).is_err());
}
