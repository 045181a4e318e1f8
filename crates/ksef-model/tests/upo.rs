//! UPO v4-3: the six official examples parse to the values they contain; namespace checks; the
//! `ds:Signature` MF adds is tolerated; writer round trips and validates against the XSD (xmllint).

// Test code: a panic is a test failure, and skip notes go to stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::PathBuf;
use std::process::Command;

use ksef_model::auth_request::ContextIdentifier;
use ksef_model::form::FormCode;
use ksef_model::upo::*;
use proptest::prelude::*;
use time::macros::{date, datetime};

fn example(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/../../spec/upo/examples/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

const ALL: [&str; 6] = [
    "upo-faktura-id-zlozony-vat-ue.xml",
    "upo-faktura-internal-id.xml",
    "upo-faktura-kontekst-id-nip.xml",
    "upo-sesja-id-zlozony-vat-ue.xml",
    "upo-sesja-internal-id.xml",
    "upo-sesja-kontekst-id-nip.xml",
];

const TE: &str = "Ministerstwo Finansów - środowisko testowe (TE)";
const HASH_A: &str = "GZMGNVzs3krF6URKgvaw77OOeG3nJ+WGziT5xguliQ8=";
const HASH_B: &str = "jli86Kp2Kw7jppX59P8VmjWRcwLTvsPK3DcPEB87mNk=";
const AUTH_HASH: &str = "kyqH+QUgP8ATWd/95IY632mP4uqibwG66Oqclq9+qno=";

fn doc_a() -> (
    &'static str,
    &'static str,
    time::OffsetDateTime,
    time::OffsetDateTime,
) {
    (
        "5265877635-20250916-0200A0D6723E-C2",
        "FA/XVQUD-9997622510/04/2027",
        datetime!(2025-09-16 11:05:40.841 +02:00),
        datetime!(2025-09-16 11:05:41.045 +02:00),
    )
}

fn check_doc(
    d: &UpoDocument,
    ksef: &str,
    number: &str,
    sent: time::OffsetDateTime,
    assigned: time::OffsetDateTime,
    hash: &str,
) {
    assert_eq!(d.seller_nip.as_str(), "5265877635");
    assert_eq!(d.ksef_number.as_str(), ksef);
    assert_eq!(d.invoice_number, number);
    assert_eq!(d.issue_date, date!(2025 - 09 - 16));
    assert_eq!(d.sent_at, sent);
    assert_eq!(d.ksef_number_assigned_at, assigned);
    assert_eq!(d.invoice_hash.as_str(), hash);
    assert_eq!(d.sending_mode, SendingMode::Online);
}

fn common(upo: &Upo) {
    assert_eq!(upo.receiving_entity, TE);
    assert_eq!(
        receiving_entity_name(&ksef_model::Environment::Test),
        upo.receiving_entity
    );
    assert_eq!(upo.logical_structure_name, "Schemat_FA(3)_v1-0E.xsd");
    assert_eq!(upo.form_system_code, "FA (3)");
    assert_eq!(upo.form_code(), Some(FormCode::Fa3));
    assert!(!upo.has_signature);
    assert_eq!(upo.schema_version, None);
}

#[test]
fn invoice_upo_nip_context() {
    let upo = Upo::parse(&example("upo-faktura-kontekst-id-nip.xml")).unwrap();
    common(&upo);
    assert_eq!(upo.kind(), UpoKind::Invoice);
    assert_eq!(
        upo.session_reference_number.as_str(),
        "36950822-93-9D5A28BFDA-47C899773E-5C"
    );
    assert!(
        matches!(&upo.authentication.context, ContextIdentifier::Nip(n) if n.as_str() == "5265877635")
    );
    assert!(
        matches!(&upo.authentication.proof, UpoAuthProof::AuthDocumentHash(h) if h.as_str() == AUTH_HASH)
    );
    assert_eq!(upo.documents.len(), 1);
    let (k, n, s, a) = doc_a();
    check_doc(&upo.documents[0], k, n, s, a, HASH_A);
}

#[test]
fn invoice_upo_vat_ue_context() {
    let upo = Upo::parse(&example("upo-faktura-id-zlozony-vat-ue.xml")).unwrap();
    common(&upo);
    assert_eq!(upo.kind(), UpoKind::Invoice);
    assert!(
        matches!(&upo.authentication.context, ContextIdentifier::NipVatUe(n) if n.as_str() == "5265877635-ATU12345678")
    );
    assert!(
        matches!(&upo.authentication.proof, UpoAuthProof::AuthDocumentHash(h) if h.as_str() == AUTH_HASH)
    );
    assert_eq!(upo.documents.len(), 1);
    let (k, n, s, a) = doc_a();
    check_doc(&upo.documents[0], k, n, s, a, HASH_A);
}

#[test]
fn invoice_upo_internal_id_context_with_token() {
    let upo = Upo::parse(&example("upo-faktura-internal-id.xml")).unwrap();
    common(&upo);
    assert_eq!(upo.kind(), UpoKind::Invoice);
    assert_eq!(
        upo.session_reference_number.as_str(),
        "58550905-BD-D0587DA4A3-4AE171EDED-46"
    );
    match &upo.authentication.context {
        // The example's internal ID has a wrong check digit: it parses leniently.
        ContextIdentifier::InternalId(i) => {
            assert_eq!(i.as_str(), "5265877635-12345");
            assert!(!i.has_valid_checksum());
        }
        other => panic!("{other:?}"),
    }
    match &upo.authentication.proof {
        UpoAuthProof::KsefTokenReference(r) => {
            assert_eq!(r.as_str(), "20250819-EC-1ECDD12000-5EE71AE5E3-B7");
            assert_eq!(r.type_code(), ksef_model::ids::ReferenceType::KsefToken);
        }
        other => panic!("{other:?}"),
    }
    check_doc(
        &upo.documents[0],
        "5265877635-20250916-02000009FF3E-FB",
        "FA/XVQUD-9997622510/04/2027",
        datetime!(2025-09-16 11:10:27.818 +02:00),
        datetime!(2025-09-16 11:10:28.168 +02:00),
        HASH_A,
    );
}

#[test]
fn session_upos() {
    let page = UpoPage {
        page: 1,
        page_count: 1,
        documents_from: 1,
        documents_to: 2,
        total_documents: 2,
    };

    let nip = Upo::parse(&example("upo-sesja-kontekst-id-nip.xml")).unwrap();
    common(&nip);
    assert_eq!(nip.kind(), UpoKind::Session);
    assert_eq!(nip.page, Some(page));
    assert!(matches!(
        &nip.authentication.context,
        ContextIdentifier::Nip(_)
    ));
    assert_eq!(nip.documents.len(), 2);
    check_doc(
        &nip.documents[0],
        "5265877635-20250916-010040741B3E-46",
        "FA/SIGTF-3388125147/11/2025",
        datetime!(2025-09-16 11:02:41.584 +02:00),
        datetime!(2025-09-16 11:02:42.084 +02:00),
        HASH_B,
    );
    let (k, n, s, a) = doc_a();
    check_doc(&nip.documents[1], k, n, s, a, HASH_A);

    let vat = Upo::parse(&example("upo-sesja-id-zlozony-vat-ue.xml")).unwrap();
    common(&vat);
    assert_eq!(vat.page, Some(page));
    assert!(matches!(
        &vat.authentication.context,
        ContextIdentifier::NipVatUe(_)
    ));
    check_doc(
        &vat.documents[0],
        "5265877635-20250916-020000583241-84",
        "FA/XVQUD-9997622510/04/2027",
        datetime!(2025-09-16 11:29:41.524 +02:00),
        datetime!(2025-09-16 11:29:41.824 +02:00),
        HASH_A,
    );
    check_doc(&vat.documents[1], k, n, s, a, HASH_A);

    let internal = Upo::parse(&example("upo-sesja-internal-id.xml")).unwrap();
    common(&internal);
    assert_eq!(internal.page, Some(page));
    assert!(matches!(
        &internal.authentication.proof,
        UpoAuthProof::KsefTokenReference(_)
    ));
    check_doc(
        &internal.documents[0],
        "5265877635-20250916-0100C002FF3E-D5",
        "FA/SIGTF-3388125147/11/2025",
        datetime!(2025-09-16 11:10:27.710 +02:00),
        datetime!(2025-09-16 11:10:28.120 +02:00),
        HASH_B,
    );
    check_doc(
        &internal.documents[1],
        "5265877635-20250916-02000009FF3E-FB",
        "FA/XVQUD-9997622510/04/2027",
        datetime!(2025-09-16 11:10:27.818 +02:00),
        datetime!(2025-09-16 11:10:28.168 +02:00),
        HASH_A,
    );
}

#[test]
fn writer_round_trips_all_examples() {
    for name in ALL {
        let upo = Upo::parse(&example(name)).unwrap();
        let xml = upo.to_xml().unwrap();
        assert_eq!(Upo::parse(&xml).unwrap(), upo, "{name}");
    }
}

#[test]
fn signature_is_tolerated() {
    let xml = String::from_utf8(example("upo-sesja-kontekst-id-nip.xml")).unwrap();
    let signed = xml.replace(
        "</Potwierdzenie>",
        r##"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#" Id="Signature-1"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/></ds:SignedInfo><ds:SignatureValue>AAAA</ds:SignatureValue><ds:Object><xades:QualifyingProperties xmlns:xades="http://uri.etsi.org/01903/v1.3.2#" Target="#Signature-1"/></ds:Object></ds:Signature></Potwierdzenie>"##,
    );
    let upo = Upo::parse(signed.as_bytes()).unwrap();
    assert!(upo.has_signature);
    assert_eq!(upo.documents.len(), 2);
}

#[test]
fn wrong_namespace_and_bad_values_are_errors() {
    let xml = String::from_utf8(example("upo-faktura-kontekst-id-nip.xml")).unwrap();
    let cases: Vec<(String, &str)> = vec![
        (
            xml.replace("KSeF/v4-3", "KSeF/v4-2"),
            "expected a UPO v4-3 root element",
        ),
        (
            xml.replace(r#" xmlns="http://upo.schematy.mf.gov.pl/KSeF/v4-3""#, ""),
            "found Potwierdzenie",
        ),
        (
            xml.replace("<Dokument>", r#"<Dokument xmlns="urn:other">"#),
            "{urn:other}Dokument",
        ),
        (
            xml.replace("<TrybWysylki>Online", "<TrybWysylki>Maybe"),
            "must be Online or Offline",
        ),
        (
            xml.replace("0200A0D6723E-C2", "0200A0D6723E-C3"),
            "checksum mismatch",
        ),
        (
            xml.replace(
                "<DataWystawieniaFaktury>2025-09-16",
                "<DataWystawieniaFaktury>16.09.2025",
            ),
            "Dokument[1]/DataWystawieniaFaktury",
        ),
        (
            xml.replace("11:05:40.841+02:00", "11:05:40.841"),
            "RFC 3339",
        ),
        (
            xml.replace("<KodFormularza>FA (3)</KodFormularza>", ""),
            "KodFormularza",
        ),
        (xml.replace("<Nip>5265877635</Nip>", ""), "IdKontekstu"),
        (
            xml.replace("<Nip>5265877635</Nip>", "<Nip>0265877635</Nip>"),
            "IdKontekstu/Nip",
        ),
        (xml.replace("</Dokument>", "</Dokument><Extra/>"), "Extra"),
        (xml.replace("</Potwierdzenie>", ""), "not well-formed"),
        (String::from("<x/>"), "found x"),
    ];
    for (doc, needle) in cases {
        let e = Upo::parse(doc.as_bytes()).unwrap_err().to_string();
        assert!(e.contains(needle), "{needle:?} not in {e:?}");
    }
    // No documents at all.
    let start = xml.find("<Dokument>").unwrap();
    let end = xml.find("</Dokument>").unwrap() + "</Dokument>".len();
    let none = format!("{}{}", &xml[..start], &xml[end..]);
    assert!(matches!(
        Upo::parse(none.as_bytes()),
        Err(UpoError::Missing(m)) if m == "Dokument"
    ));
    // Offline mode and entities in the invoice number.
    let offline = xml
        .replace("<TrybWysylki>Online", "<TrybWysylki>Offline")
        .replace("FA/XVQUD-9997622510/04/2027", "A&amp;B &#x3C;1&gt;");
    let upo = Upo::parse(offline.as_bytes()).unwrap();
    assert_eq!(upo.documents[0].sending_mode, SendingMode::Offline);
    assert_eq!(upo.documents[0].invoice_number, "A&B <1>");
    assert_eq!(Upo::parse(&upo.to_xml().unwrap()).unwrap(), upo);
}

fn oracle_required() -> bool {
    std::env::var("KSEF_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

#[test]
fn written_upos_validate_against_the_xsd() {
    let have = Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !have {
        assert!(
            !oracle_required(),
            "xmllint is required (KSEF_REQUIRE_ORACLES=1) but not installed"
        );
        eprintln!("note: xmllint not installed, skipping UPO XSD validation");
        return;
    }
    let dir = std::env::temp_dir().join(format!("ksef-model-upo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut files: Vec<PathBuf> = Vec::new();
    for name in ALL {
        let mut upo = Upo::parse(&example(name)).unwrap();
        // The XSD fixes this value to the production name; the examples come from TEST.
        upo.receiving_entity = "Ministerstwo Finansów".into();
        let path = dir.join(name);
        std::fs::write(&path, upo.to_xml().unwrap()).unwrap();
        files.push(path);
    }
    let xsd = concat!(env!("CARGO_MANIFEST_DIR"), "/../../spec/upo/upo-v4-3.xsd");
    let out = Command::new("xmllint")
        .args(["--noout", "--schema", xsd])
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

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = Upo::parse(&bytes);
    }

    #[test]
    fn mutated_examples_never_panic(idx in 0usize..6, pos in any::<prop::sample::Index>(), len in 0usize..64, junk in "[<>/&;a-zA-Z0-9: =\"'#x-]{0,16}") {
        let xml = example(ALL[idx]);
        let p = pos.index(xml.len());
        let end = (p + len).min(xml.len());
        let mut m = xml[..p].to_vec();
        m.extend_from_slice(junk.as_bytes());
        m.extend_from_slice(&xml[end..]);
        let _ = Upo::parse(&m);
    }
}
