//! Each kind of schema restriction (enumeration, pattern, length, whitespace, decimal total and
//! fraction digits, integer and decimal ranges, date and date-time ranges, fixed values) checked
//! on values just inside and just outside the limit, and each verdict compared with xmllint's
//! against the official XSD: our types accept exactly what the schema accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use ksef_fa::model::{TKwotowy, TNaturalny, TNrNip, TProcentowy, TStawkaPodatku, TZnakowy};
use ksef_fa::{Decimal, Faktura, Problem, ValueErrorKind};

const MINIMAL: &str = include_str!("data/minimal.xml");

/// What our parser must say about a value.
enum Want {
    Ok,
    /// A value error at `path` of this kind.
    Err(&'static str, fn(&ValueErrorKind) -> bool),
    /// Any typed error at `path` (fixed values, enumerations of attributes).
    AnyErr(&'static str),
}

fn case(label: &str, from: &str, to: &str, want: Want) {
    assert!(
        MINIMAL.contains(from),
        "{label}: `{from}` not in minimal.xml"
    );
    let xml = MINIMAL.replacen(from, to, 1);
    let ours = Faktura::from_xml(&xml);
    match (&want, &ours) {
        (Want::Ok, Ok(_)) => {}
        (Want::Err(path, kind), Err(e)) => {
            assert_eq!(
                e.path().map(|p| p.to_string()).as_deref(),
                Some(*path),
                "{label}: {e}"
            );
            match e.problem() {
                Some(Problem::Value(v)) => assert!(kind(v.kind()), "{label}: {e}"),
                other => panic!("{label}: not a value error: {other:?}"),
            }
        }
        (Want::AnyErr(path), Err(e)) => {
            assert_eq!(
                e.path().map(|p| p.to_string()).as_deref(),
                Some(*path),
                "{label}: {e}"
            );
        }
        (_, r) => panic!("{label}: unexpected {r:?}"),
    }
    // the independent oracle agrees with our verdict
    if let Some(lint) = common::xmllint(&xml) {
        assert_eq!(
            lint.is_ok(),
            ours.is_ok(),
            "{label}: xmllint says {lint:?}, we say {ours:?}"
        );
    }
}

#[test]
fn enumerations() {
    for rate in [
        "23", "22", "8", "7", "5", "4", "3", "0 KR", "0 WDT", "0 EX", "zw", "oo", "np I", "np II",
    ] {
        case(
            rate,
            "<P_12>23</P_12>",
            &format!("<P_12>{rate}</P_12>"),
            Want::Ok,
        );
    }
    let not_allowed = |k: &ValueErrorKind| matches!(k, ValueErrorKind::NotAllowed { .. });
    for bad in ["24", "0", "np", "NP I", "23%"] {
        case(
            bad,
            "<P_12>23</P_12>",
            &format!("<P_12>{bad}</P_12>"),
            Want::Err("Fa/FaWiersz[1]/P_12", not_allowed),
        );
    }
    case(
        "JST 3",
        "<JST>2</JST>",
        "<JST>3</JST>",
        Want::Err("Podmiot2/JST", not_allowed),
    );
    case(
        "currency",
        "<KodWaluty>PLN</KodWaluty>",
        "<KodWaluty>XYZ</KodWaluty>",
        Want::Err("Fa/KodWaluty", not_allowed),
    );
    case(
        "country",
        "<KodKraju>PL</KodKraju>",
        "<KodKraju>XX</KodKraju>",
        Want::Err("Podmiot1/Adres/KodKraju", not_allowed),
    );
    assert_eq!(
        TStawkaPodatku::from_xml_str("np II"),
        Some(TStawkaPodatku::NpIi)
    );
    assert_eq!(TStawkaPodatku::from_xml_str("24"), None);
}

#[test]
fn patterns() {
    let pattern = |k: &ValueErrorKind| matches!(k, ValueErrorKind::Pattern { .. });
    // TNrNIP: [1-9]((\d[1-9])|([1-9]\d))\d{7}
    for bad in [
        "0261040828",
        "526104082",
        "52610408281",
        "5006104082",
        "526104082a",
    ] {
        case(
            bad,
            "<NIP>5261040828</NIP>",
            &format!("<NIP>{bad}</NIP>"),
            Want::Err("Podmiot1/DaneIdentyfikacyjne/NIP", pattern),
        );
    }
    case(
        "nip ok",
        "<NIP>5261040828</NIP>",
        "<NIP>1111111111</NIP>",
        Want::Ok,
    );
    assert!(TNrNip::new("0261040828").is_err());
    assert!(TNrNip::new("5261040828").is_ok());
}

#[test]
fn lengths_and_whitespace() {
    let p2 = "<P_2>FV/1/2026</P_2>";
    case(
        "256",
        p2,
        &format!("<P_2>{}</P_2>", "x".repeat(256)),
        Want::Ok,
    );
    case(
        "257",
        p2,
        &format!("<P_2>{}</P_2>", "x".repeat(257)),
        Want::Err("Fa/P_2", |k| {
            matches!(k, ValueErrorKind::TooLong { max: 256 })
        }),
    );
    // 256 characters, 512 bytes: lengths count characters
    case(
        "256 chars",
        p2,
        &format!("<P_2>{}</P_2>", "ł".repeat(256)),
        Want::Ok,
    );
    case(
        "empty",
        p2,
        "<P_2></P_2>",
        Want::Err("Fa/P_2", |k| {
            matches!(k, ValueErrorKind::TooShort { min: 1 })
        }),
    );
    case(
        "only spaces (token collapses to empty)",
        p2,
        "<P_2>   </P_2>",
        Want::Err("Fa/P_2", |k| {
            matches!(k, ValueErrorKind::TooShort { min: 1 })
        }),
    );
    // xsd:token collapses whitespace before the length is counted
    case(
        "collapsed",
        p2,
        &format!("<P_2>  {}  </P_2>", "x".repeat(256)),
        Want::Ok,
    );
    let f = Faktura::from_xml(&MINIMAL.replace(p2, "<P_2>  FV \t 1\n</P_2>")).unwrap();
    assert_eq!(f.fa.p_2.as_str(), "FV 1");
    assert!(TZnakowy::new("x".repeat(257)).is_err());
}

#[test]
fn decimal_digits_and_ranges() {
    let p15 = "<P_15>123.00</P_15>";
    case(
        "16 int digits",
        p15,
        "<P_15>1234567890123456.00</P_15>",
        Want::Ok,
    );
    case(
        "17 int digits",
        p15,
        "<P_15>12345678901234567</P_15>",
        Want::Err("Fa/P_15", |k| {
            matches!(
                k,
                ValueErrorKind::TooManyIntegerDigits { .. } | ValueErrorKind::TooManyDigits { .. }
            )
        }),
    );
    case(
        "3 fraction digits",
        p15,
        "<P_15>1.001</P_15>",
        Want::Err("Fa/P_15", |k| {
            matches!(k, ValueErrorKind::TooManyFractionDigits { max: 2 })
        }),
    );
    case(
        "trailing zeros",
        p15,
        "<P_15>1.0000</P_15>",
        Want::Err("Fa/P_15", |_| true),
    );
    case("negative", p15, "<P_15>-5.10</P_15>", Want::Ok);
    case(
        "exponent",
        p15,
        "<P_15>1e3</P_15>",
        Want::Err("Fa/P_15", |k| matches!(k, ValueErrorKind::NotDecimal)),
    );
    case(
        "no digits",
        p15,
        "<P_15>.</P_15>",
        Want::Err("Fa/P_15", |_| true),
    );
    // TIlosci: 6 fraction digits; TKwotowy2: 8
    case(
        "P_8B 6",
        "<P_8B>1</P_8B>",
        "<P_8B>1.123456</P_8B>",
        Want::Ok,
    );
    case(
        "P_8B 7",
        "<P_8B>1</P_8B>",
        "<P_8B>1.1234567</P_8B>",
        Want::Err("Fa/FaWiersz[1]/P_8B", |k| {
            matches!(k, ValueErrorKind::TooManyFractionDigits { max: 6 })
        }),
    );
    case(
        "P_9A 8",
        "<P_9A>100.00</P_9A>",
        "<P_9A>100.12345678</P_9A>",
        Want::Ok,
    );
    // TProcentowy: 0..=100
    let line_pct = |v: &str| format!("<P_12>23</P_12><P_12_XII>{v}</P_12_XII>");
    case("pct 100", "<P_12>23</P_12>", &line_pct("100"), Want::Ok);
    case(
        "pct 100.000001",
        "<P_12>23</P_12>",
        &line_pct("100.000001"),
        Want::Err("Fa/FaWiersz[1]/P_12_XII", |k| {
            matches!(k, ValueErrorKind::TooLarge { .. })
        }),
    );
    case(
        "pct -1",
        "<P_12>23</P_12>",
        &line_pct("-1"),
        Want::Err("Fa/FaWiersz[1]/P_12_XII", |k| {
            matches!(k, ValueErrorKind::TooSmall { .. })
        }),
    );
    assert!(TKwotowy::new(Decimal::new(1001, 3)).is_err());
    assert!(TProcentowy::new(Decimal::from(101)).is_err());
}

#[test]
fn integer_ranges() {
    let nr = "<NrWierszaFa>1</NrWierszaFa>";
    let small = |k: &ValueErrorKind| matches!(k, ValueErrorKind::TooSmall { .. });
    case(
        "0",
        nr,
        "<NrWierszaFa>0</NrWierszaFa>",
        Want::Err("Fa/FaWiersz[1]/NrWierszaFa", small),
    );
    case(
        "-1",
        nr,
        "<NrWierszaFa>-1</NrWierszaFa>",
        Want::Err("Fa/FaWiersz[1]/NrWierszaFa", small),
    );
    case(
        "1.5",
        nr,
        "<NrWierszaFa>1.5</NrWierszaFa>",
        Want::Err("Fa/FaWiersz[1]/NrWierszaFa", |k| {
            matches!(k, ValueErrorKind::NotInteger)
        }),
    );
    case(
        "14 digits",
        nr,
        "<NrWierszaFa>99999999999999</NrWierszaFa>",
        Want::Ok,
    );
    case(
        "15 digits",
        nr,
        "<NrWierszaFa>100000000000000</NrWierszaFa>",
        Want::Err("Fa/FaWiersz[1]/NrWierszaFa", |_| true),
    );
    assert!(TNaturalny::new(0).is_err());
    assert!(TNaturalny::new(1).is_ok());
}

#[test]
fn date_and_datetime_ranges() {
    // P_1 is TDataT: 2006-01-01 ..= 2050-01-01
    let p1 = "<P_1>2026-02-01</P_1>";
    case("first day", p1, "<P_1>2006-01-01</P_1>", Want::Ok);
    case("last day", p1, "<P_1>2050-01-01</P_1>", Want::Ok);
    case(
        "day before",
        p1,
        "<P_1>2005-12-31</P_1>",
        Want::Err("Fa/P_1", |k| matches!(k, ValueErrorKind::TooSmall { .. })),
    );
    case(
        "day after",
        p1,
        "<P_1>2050-01-02</P_1>",
        Want::Err("Fa/P_1", |k| matches!(k, ValueErrorKind::TooLarge { .. })),
    );
    case(
        "30 February",
        p1,
        "<P_1>2026-02-30</P_1>",
        Want::Err("Fa/P_1", |k| matches!(k, ValueErrorKind::NotDate)),
    );
    case(
        "no zero padding",
        p1,
        "<P_1>2026-2-1</P_1>",
        Want::Err("Fa/P_1", |k| matches!(k, ValueErrorKind::NotDate)),
    );
    // DataWytworzeniaFa restricts etd:TDataCzas inline: 2025-09-01T00:00:00Z ..= 2050-01-01T23:59:59Z
    let dw = "<DataWytworzeniaFa>2026-02-01T10:00:00Z</DataWytworzeniaFa>";
    let at = |v: &str| format!("<DataWytworzeniaFa>{v}</DataWytworzeniaFa>");
    case("dt first", dw, &at("2025-09-01T00:00:00Z"), Want::Ok);
    case("dt last", dw, &at("2050-01-01T23:59:59Z"), Want::Ok);
    case(
        "dt offset",
        dw,
        &at("2026-02-01T10:00:00.123+01:00"),
        Want::Ok,
    );
    case(
        "dt before",
        dw,
        &at("2025-08-31T23:59:59Z"),
        Want::Err("Naglowek/DataWytworzeniaFa", |k| {
            matches!(k, ValueErrorKind::TooSmall { .. })
        }),
    );
    case(
        "dt after",
        dw,
        &at("2050-01-02T00:00:00Z"),
        Want::Err("Naglowek/DataWytworzeniaFa", |k| {
            matches!(k, ValueErrorKind::TooLarge { .. })
        }),
    );
    case(
        "dt no time",
        dw,
        &at("2026-02-01"),
        Want::Err("Naglowek/DataWytworzeniaFa", |k| {
            matches!(k, ValueErrorKind::NotDateTime)
        }),
    );
}

#[test]
fn fixed_values() {
    case(
        "kodSystemowy",
        "kodSystemowy=\"FA (3)\"",
        "kodSystemowy=\"FA (2)\"",
        Want::AnyErr("Naglowek/KodFormularza/@kodSystemowy"),
    );
    case(
        "WariantFormularza",
        "<WariantFormularza>3</WariantFormularza>",
        "<WariantFormularza>2</WariantFormularza>",
        Want::AnyErr("Naglowek/WariantFormularza"),
    );
}
