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
