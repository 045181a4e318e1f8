//! Bad input gives typed errors with the field path, never a panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

use ksef_fa::{Error, Faktura, Problem, Rule, ValueErrorKind, WrongDocument};
use proptest::prelude::*;
use time::macros::date;

const MINIMAL: &str = include_str!("data/minimal.xml");

fn err(xml: &str) -> Error {
    match Faktura::from_xml(xml) {
        Ok(_) => panic!("accepted:\n{xml}"),
        Err(e) => e,
    }
}

fn with_line(extra: &str) -> String {
    MINIMAL.replace(
        "</Fa>",
        &format!(
            "<FaWiersz><NrWierszaFa>2</NrWierszaFa><P_12>23</P_12></FaWiersz>\
             <FaWiersz><NrWierszaFa>3</NrWierszaFa>{extra}</FaWiersz></Fa>"
        ),
    )
}

#[test]
fn wrong_vat_rate_names_the_line() {
    let e = err(&with_line("<P_12>24</P_12>"));
    assert_eq!(
        e.to_string(),
        r#"Fa/FaWiersz[3]/P_12: "24" is not a VAT rate"#
    );
}

#[test]
fn wrong_namespace_and_fa2() {
    let e = err(&MINIMAL.replace("2025/06/25/13775", "2025/06/25/99999"));
    assert!(
        matches!(e, Error::WrongDocument(WrongDocument::Other { .. })),
        "{e}"
    );
    let e = err(&MINIMAL.replace("2025/06/25/13775", "2023/06/29/12648"));
    assert_eq!(e, Error::WrongDocument(WrongDocument::Fa2));
    // an FA(3) root with a child element in a foreign namespace
    let e = err(&MINIMAL.replace(
        "<P_2>FV/1/2026</P_2>",
        "<x:P_2 xmlns:x=\"urn:x\">FV</x:P_2>",
    ));
    assert_eq!(e.path().unwrap().to_string(), "Fa/P_2");
}

#[test]
fn missing_required_element() {
    let e = err(&MINIMAL.replace("<P_15>123.00</P_15>", ""));
    assert_eq!(e.path().unwrap().to_string(), "Fa/P_15");
    assert!(matches!(e.problem(), Some(Problem::Missing { .. })), "{e}");
    let e = err(&MINIMAL.replace("<RodzajFaktury>VAT</RodzajFaktury>", ""));
    assert_eq!(e.path().unwrap().to_string(), "Fa/RodzajFaktury");
}

#[test]
fn over_long_string_and_too_many_digits() {
    let long = "x".repeat(257);
    let e = err(&MINIMAL.replace("<P_2>FV/1/2026</P_2>", &format!("<P_2>{long}</P_2>")));
    assert_eq!(e.path().unwrap().to_string(), "Fa/P_2");
    assert!(e.to_string().contains("longer than 256"), "{e}");
    let e = err(&MINIMAL.replace("<P_15>123.00</P_15>", "<P_15>123.001</P_15>"));
    assert_eq!(e.path().unwrap().to_string(), "Fa/P_15");
    match e.problem() {
        Some(Problem::Value(v)) => {
            assert_eq!(v.kind(), &ValueErrorKind::TooManyFractionDigits { max: 2 })
        }
        other => panic!("{other:?}"),
    }
    let e = err(&MINIMAL.replace("<P_15>123.00</P_15>", "<P_15>12345678901234567.00</P_15>"));
    assert!(e.to_string().contains("before the decimal point"), "{e}");
}

#[test]
fn out_of_order_and_unknown_elements() {
    let e = err(&MINIMAL.replace(
        "<P_1>2026-02-01</P_1>\n    <P_2>FV/1/2026</P_2>",
        "<P_2>FV/1/2026</P_2><P_1>2026-02-01</P_1>",
    ));
    assert_eq!(e.path().unwrap().to_string(), "Fa/P_1");
    let e = err(&MINIMAL.replace("</Fa>", "<Nieznany/></Fa>"));
    assert!(
        e.to_string().contains("unexpected element `Nieznany`"),
        "{e}"
    );
    let e = err(&MINIMAL.replace("<JST>2</JST>", "<JST>3</JST>"));
    assert_eq!(e.path().unwrap().to_string(), "Podmiot2/JST");
}

#[test]
fn not_xml() {
    assert!(matches!(err("<Faktura"), Error::Xml(_)));
    assert!(matches!(
        Faktura::from_slice(&[0xff, 0xfe, 0x00]),
        Err(Error::Xml(_))
    ));
}

#[test]
fn semantic_rules() {
    let f = Faktura::from_xml(&MINIMAL.replace("5261040828", "5261040829")).unwrap();
    let errs = f.validate_at(date!(2026 - 02 - 01)).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        errs[0].to_string(),
        "Podmiot1/DaneIdentyfikacyjne/NIP: NIP \"5261040829\" has a wrong check digit"
    );

    let f = Faktura::from_xml(MINIMAL).unwrap();
    let errs = f.validate_at(date!(2026 - 01 - 31)).unwrap_err();
    assert!(matches!(
        errs[0].problem(),
        Some(Problem::Rule(Rule::IssueDateInFuture { .. }))
    ));
    assert_eq!(errs[0].path().unwrap().to_string(), "Fa/P_1");

    let f = Faktura::from_xml(&MINIMAL.replace("<P_14_1>23.00</P_14_1>", "<P_14_1>23.01</P_14_1>"))
        .unwrap();
    let errs = f.validate_at(date!(2026 - 02 - 01)).unwrap_err();
    let paths: Vec<String> = errs.iter().map(|e| e.path().unwrap().to_string()).collect();
    assert_eq!(paths, ["Fa/P_14_1", "Fa/P_15"], "{errs:?}");

    let f =
        Faktura::from_xml(&MINIMAL.replace("<P_11>100.00</P_11>", "<P_11>90.00</P_11>")).unwrap();
    let errs = f.validate_at(date!(2026 - 02 - 01)).unwrap_err();
    assert_eq!(errs[0].path().unwrap().to_string(), "Fa/FaWiersz[1]/P_11");

    let f = Faktura::from_xml(&MINIMAL.replace("<P_12>23</P_12>", "<P_12>zw</P_12>")).unwrap();
    let errs = f.validate_at(date!(2026 - 02 - 01)).unwrap_err();
    assert!(
        errs.iter().any(|e| matches!(
            e.problem(),
            Some(Problem::Rule(Rule::ExemptionBasisMissing))
        )),
        "{errs:?}"
    );

    let f = Faktura::from_xml(&MINIMAL.replace(">VAT<", ">KOR<")).unwrap();
    let errs = f.validate_at(date!(2026 - 02 - 01)).unwrap_err();
    assert!(errs.iter().any(|e| matches!(
        e.problem(),
        Some(Problem::Rule(Rule::CorrectionWithoutReference))
    )));
}

#[test]
fn structural_counts_of_a_model_built_in_code() {
    let mut f = Faktura::from_xml(MINIMAL).unwrap();
    let contact = ksef_fa::model::Podmiot1DaneKontaktowe {
        email: None,
        telefon: None,
    };
    f.podmiot1.dane_kontaktowe = vec![contact; 4];
    let errs = f.validate_at(date!(2026 - 02 - 01)).unwrap_err();
    assert_eq!(
        errs[0].to_string(),
        "Podmiot1/DaneKontaktowe: 4 occurrences, at most 3 allowed"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = Faktura::from_slice(&bytes);
    }

    #[test]
    fn mutated_invoice_never_panics(pos in 0usize..MINIMAL.len(), len in 0usize..40, junk in "[<>/a-zA-Z0-9_ .&;\"=-]{0,20}") {
        let mut s = MINIMAL.to_owned();
        let start = (0..=pos).rev().find(|i| s.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + len..=s.len()).find(|i| s.is_char_boundary(*i)).unwrap_or(s.len());
        s.replace_range(start..end, &junk);
        if let Ok(f) = Faktura::from_xml(&s) {
            // whatever parses writes back to something that parses to the same model
            prop_assert_eq!(Faktura::from_xml(&f.to_xml()).unwrap(), f);
        }
    }

    #[test]
    fn any_amount_text_is_typed(v in "[-+0-9.eE ]{0,25}") {
        let xml = MINIMAL.replace("<P_15>123.00</P_15>", &format!("<P_15>{v}</P_15>"));
        match Faktura::from_xml(&xml) {
            Ok(f) => prop_assert_eq!(Faktura::from_xml(&f.to_xml()).unwrap(), f),
            Err(e) => prop_assert_eq!(e.path().map(|p| p.to_string()), Some("Fa/P_15".to_owned())),
        }
    }
}

#[test]
fn nip_converts_to_ksef_model() {
    let f = Faktura::from_xml(MINIMAL).unwrap();
    let nip = f.podmiot1.dane_identyfikacyjne.nip.to_nip().unwrap();
    assert_eq!(nip.as_str(), "5261040828");
    let back = ksef_fa::model::TNrNip::try_from(&nip).unwrap();
    assert_eq!(back, f.podmiot1.dane_identyfikacyjne.nip);
    let bad = ksef_fa::model::TNrNip::new("5261040829").unwrap();
    assert!(bad.to_nip().is_err());
}

#[test]
fn control_characters_are_refused_in_code() {
    let e = ksef_fa::model::TZnakowy::new("a\u{1}b").unwrap_err();
    assert_eq!(e.kind(), &ValueErrorKind::InvalidChar);
    assert!(ksef_fa::model::TZnakowy::new("a\tb").is_ok());
}

#[test]
fn fixed_values_are_checked_on_parse() {
    let xml = MINIMAL.replace(
        "<Podmiot1>",
        "<Podmiot1><PrefiksPodatnika>DE</PrefiksPodatnika>",
    );
    let e = err(&xml);
    assert_eq!(
        e.to_string(),
        r#"Podmiot1/PrefiksPodatnika: must be "PL" (fixed by the schema), found "DE""#
    );
    let xml = MINIMAL.replace(
        "<Podmiot1>",
        "<Podmiot1><PrefiksPodatnika>PL</PrefiksPodatnika>",
    );
    assert!(Faktura::from_xml(&xml).is_ok());
    let e = err(&MINIMAL.replace("kodSystemowy=\"FA (3)\"", "kodSystemowy=\"FA (2)\""));
    assert_eq!(
        e.path().unwrap().to_string(),
        "Naglowek/KodFormularza/@kodSystemowy"
    );
}

#[test]
fn currency_is_ksef_models_enum_limited_to_the_schema() {
    use ksef_model::api::CurrencyCode;
    let f = Faktura::from_xml(MINIMAL).unwrap();
    assert_eq!(f.fa.kod_waluty, CurrencyCode::Pln);
    let e = err(&MINIMAL.replace("<KodWaluty>PLN</KodWaluty>", "<KodWaluty>XYZ</KodWaluty>"));
    assert_eq!(
        e.to_string(),
        r#"Fa/KodWaluty: "XYZ" is not a currency code"#
    );
    let mut f = f;
    f.fa.kod_waluty = CurrencyCode::Unknown("XYZ".into());
    let errs = f.validate_at(date!(2026 - 02 - 01)).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.to_string() == r#"Fa/KodWaluty: "XYZ" is not a currency code"#),
        "{errs:?}"
    );
}

#[test]
fn fa2_document_relabelled_as_fa3_is_refused_at_the_form_code() {
    // an FA(2) invoice whose namespace was changed to FA(3)'s: the form code still says FA (2)
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/invoices/invoice-template-fa-2.xml"
    );
    let xml = std::fs::read_to_string(path).unwrap().replace(
        "http://crd.gov.pl/wzor/2023/06/29/12648/",
        ksef_fa::NAMESPACE,
    );
    assert!(xml.contains(ksef_fa::NAMESPACE));
    let e = err(&xml);
    assert_eq!(
        e.to_string(),
        r#"Naglowek/KodFormularza/@kodSystemowy: "FA (2)" is not the FA(3) system code "FA (3)" (this is not an FA(3) invoice)"#
    );
}

/// (the element as written in minimal.xml, its field path)
const FIELDS: &[(&str, &str)] = &[
    ("<P_2>FV/1/2026</P_2>", "Fa/P_2"),
    ("<NIP>5261040828</NIP>", "Podmiot1/DaneIdentyfikacyjne/NIP"),
    (
        "<Nazwa>Nabywca S.A.</Nazwa>",
        "Podmiot2/DaneIdentyfikacyjne/Nazwa",
    ),
    ("<KodWaluty>PLN</KodWaluty>", "Fa/KodWaluty"),
    ("<P_1>2026-02-01</P_1>", "Fa/P_1"),
    (
        "<DataWytworzeniaFa>2026-02-01T10:00:00Z</DataWytworzeniaFa>",
        "Naglowek/DataWytworzeniaFa",
    ),
    ("<NrWierszaFa>1</NrWierszaFa>", "Fa/FaWiersz[1]/NrWierszaFa"),
    ("<P_7>Usługa</P_7>", "Fa/FaWiersz[1]/P_7"),
    ("<P_8B>1</P_8B>", "Fa/FaWiersz[1]/P_8B"),
    ("<P_9A>100.00</P_9A>", "Fa/FaWiersz[1]/P_9A"),
    ("<P_12>23</P_12>", "Fa/FaWiersz[1]/P_12"),
    ("<JST>2</JST>", "Podmiot2/JST"),
    ("<P_16>2</P_16>", "Fa/Adnotacje/P_16"),
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Any text (control characters, non-BMP, long runs, digits, spaces) in any kind of field:
    /// accepted and round-tripping, or a typed error naming exactly that field.
    #[test]
    fn any_text_in_a_field_is_ok_or_names_the_field(
        field in 0..FIELDS.len(),
        text in prop_oneof![
            "\\PC{0,20}",
            "[ \t\r\n0-9.,+eE:TZ-]{0,30}",
            "[\u{0}-\u{1f}a ]{0,8}",
            "x{250,600}",
            "[0-9]{10,40}",
        ],
    ) {
        let (elem, path) = FIELDS[field];
        let name = &elem[1..elem.find('>').unwrap()];
        let xml = MINIMAL.replacen(elem, &format!("<{name}>{}</{name}>", escape(&text)), 1);
        match Faktura::from_xml(&xml) {
            Ok(f) => prop_assert_eq!(Faktura::from_xml(&f.to_xml()).unwrap(), f),
            Err(e) => {
                prop_assert_eq!(e.path().map(|p| p.to_string()), Some(path.to_owned()), "{}", e);
            }
        }
    }
}

/// Three lines of 0.10 net at 23 %: the VAT of the summed nets is round(0.069) = 0.07, the sum
/// of the per-line VATs is 3 × round(0.023) = 0.06. Both are legal ways to the total.
fn three_small_lines(p_14_1: &str, p_15: &str) -> Faktura {
    let line = |n: u32| {
        format!(
            "<FaWiersz><NrWierszaFa>{n}</NrWierszaFa><P_11>0.10</P_11><P_12>23</P_12></FaWiersz>"
        )
    };
    let xml = MINIMAL
        .replace("<P_9A>100.00</P_9A>", "<P_9A>0.10</P_9A>")
        .replace("<P_11>100.00</P_11>", "<P_11>0.10</P_11>")
        .replace("<P_13_1>100.00</P_13_1>", "<P_13_1>0.30</P_13_1>")
        .replace(
            "<P_14_1>23.00</P_14_1>",
            &format!("<P_14_1>{p_14_1}</P_14_1>"),
        )
        .replace("<P_15>123.00</P_15>", &format!("<P_15>{p_15}</P_15>"))
        .replace("</Fa>", &format!("{}{}</Fa>", line(2), line(3)));
    Faktura::from_xml(&xml).unwrap()
}

#[test]
fn vat_total_rounded_once_on_the_summed_nets_is_accepted() {
    three_small_lines("0.07", "0.37")
        .validate_at(date!(2026 - 02 - 01))
        .unwrap();
}

#[test]
fn vat_total_summed_from_per_line_rounded_vat_is_accepted() {
    three_small_lines("0.06", "0.36")
        .validate_at(date!(2026 - 02 - 01))
        .unwrap();
}

#[test]
fn vat_total_matching_neither_method_names_the_field_and_both_amounts() {
    let errs = three_small_lines("0.08", "0.38")
        .validate_at(date!(2026 - 02 - 01))
        .unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(errs[0].path().unwrap().to_string(), "Fa/P_14_1");
    assert!(
        matches!(
            errs[0].problem(),
            Some(Problem::Rule(Rule::TotalMismatch { expected, found, per_line: Some(per_line) }))
                if expected.to_string() == "0.07" && found.to_string() == "0.08" && per_line.to_string() == "0.06"
        ),
        "{errs:?}"
    );
    assert_eq!(
        errs[0].to_string(),
        "Fa/P_14_1: is 0.08, but the lines give 0.07 (or 0.06 with the VAT rounded per line and summed)"
    );
    // a net total off by a grosz still fails, with its own path
    let mut f = three_small_lines("0.07", "0.37");
    f.fa.p_13_1_group.as_mut().unwrap().p_13_1 = "0.31".parse().unwrap();
    let errs = f.validate_at(date!(2026 - 02 - 01)).unwrap_err();
    let paths: Vec<String> = errs.iter().map(|e| e.path().unwrap().to_string()).collect();
    assert_eq!(paths, ["Fa/P_13_1", "Fa/P_15"], "{errs:?}");
}

#[test]
fn validate_uses_todays_date_in_poland() {
    // an invoice dated today in Poland is never "in the future"
    let mut f = Faktura::from_xml(MINIMAL).unwrap();
    let today = ksef_fa::date_in_poland(time::OffsetDateTime::now_utc());
    f.fa.p_1 = ksef_fa::model::TDataT::new(today).unwrap();
    f.validate().unwrap();
    // and one dated tomorrow is
    f.fa.p_1 = ksef_fa::model::TDataT::new(today.next_day().unwrap()).unwrap();
    let errs = f.validate().unwrap_err();
    assert_eq!(errs[0].path().unwrap().to_string(), "Fa/P_1");
}
