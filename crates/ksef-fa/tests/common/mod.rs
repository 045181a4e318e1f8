//! Shared helpers for the integration tests: repository paths, template filling and the
//! xmllint oracle (skipped when xmllint is missing unless KSEF_REQUIRE_ORACLES=1).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)] // test helpers: panics are failures
#![allow(dead_code)] // each test binary uses a subset

use std::path::PathBuf;
use std::process::Command;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The FA(3) templates (the PEF ones are UBL, not FA(3)).
pub fn fa3_templates() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(repo().join("fixtures/invoices"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().to_string_lossy().into_owned();
            n.starts_with("invoice-template-fa-3") && !n.contains("pef")
        })
        .collect();
    v.sort();
    assert!(v.len() >= 5, "FA(3) templates not found: {v:?}");
    v
}

/// Fills `#placeholder#` tokens with valid values.
pub fn fill(t: &str) -> String {
    t.replace("#nip#", "5261040828")
        .replace("#nipOdbiorca#", "7740001454")
        .replace("#invoice_number#", "0001")
        .replace("#nip_podmiot1#", "5261040828")
        .replace("#nip_podmiot2#", "7740001454")
        .replace("#nip1_podmiot3#", "9542751368")
        .replace("#nip2_podmiot3#", "1132853869")
        .replace("#idwew1_podmiot3#", "5261040828-00001")
        .replace("#idwew2_podmiot3#", "5261040828-00002")
}

/// Validates `xml` against the official FA(3) XSD with xmllint. `None` when xmllint is missing
/// and oracles are optional; `Some(Err(output))` when invalid.
pub fn xmllint(xml: &str) -> Option<Result<(), String>> {
    let have = Command::new("xmllint").arg("--version").output().is_ok();
    if !have {
        if std::env::var("KSEF_REQUIRE_ORACLES").as_deref() == Ok("1") {
            panic!("xmllint is required (KSEF_REQUIRE_ORACLES=1) but not installed");
        }
        eprintln!("note: xmllint not installed, skipping the XSD oracle");
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = repo().join("spec/fa").canonicalize().unwrap();
    let catalog = format!(
        r#"<?xml version="1.0"?>
<catalog xmlns="urn:oasis:names:tc:entity:xmlns:xml:catalog">
  <rewriteURI uriStartString="http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/" rewritePrefix="file://{}/"/>
</catalog>
"#,
        spec.display()
    );
    std::fs::write(dir.path().join("catalog.xml"), catalog).unwrap();
    std::fs::write(dir.path().join("inv.xml"), xml).unwrap();
    let out = Command::new("xmllint")
        .env("XML_CATALOG_FILES", dir.path().join("catalog.xml"))
        .args(["--nonet", "--noout", "--schema"])
        .arg(spec.join("schemat_FA(3)_v1-0E.xsd"))
        .arg(dir.path().join("inv.xml"))
        .output()
        .unwrap();
    let code = out.status.code();
    assert_ne!(
        code,
        Some(5),
        "schema did not compile: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}
