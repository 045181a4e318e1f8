//! Identifier parsing, errors, serde and property tests.

// Test code: a panic is a test failure, and skip notes go to stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::str::FromStr;

use ksef_model::ids::*;
use proptest::prelude::*;
use time::macros::date;

#[test]
fn nip_valid_and_checksum_errors() {
    let nip: Nip = "5265877635".parse().unwrap();
    assert_eq!(nip.as_str(), "5265877635");
    assert_eq!(nip.to_string(), "5265877635");
    assert!(nip.has_valid_checksum());

    let err = "5265877637".parse::<Nip>().unwrap_err();
    assert_eq!(
        err.to_string(),
        "NIP checksum mismatch: expected digit 5, found 7"
    );
    assert_eq!(err.kind(), IdKind::Nip);

    // Weighted sum mod 11 == 10: no check digit can make it valid.
    let impossible = (123_000_000u32..123_100_000)
        .map(|n| n.to_string())
        .find(|s| {
            let w = [6, 5, 7, 2, 3, 4, 5, 6, 7];
            let sum: u32 = s.bytes().zip(w).map(|(c, w)| u32::from(c - b'0') * w).sum();
            sum % 11 == 10 && s.as_bytes()[1..3] != *b"00"
        })
        .unwrap();
    let e = Nip::new(&format!("{impossible}0")).unwrap_err();
    assert!(e.to_string().contains("mod 11 is 10"), "{e}");
    assert!(Nip::parse_lenient(&format!("{impossible}0")).is_ok());
}

#[test]
fn nip_pattern_errors() {
    let e = "123".parse::<Nip>().unwrap_err();
    assert!(matches!(e, IdError::Length { found: 3, .. }), "{e}");
    assert_eq!(
        e.to_string(),
        "NIP has wrong length: expected 10 characters, found 3"
    );
    let e = "0265877635".parse::<Nip>().unwrap_err();
    assert!(matches!(e, IdError::Character { position: 0, .. }), "{e}");
    let e = "5005877635".parse::<Nip>().unwrap_err();
    assert!(e.to_string().contains("cannot both be 0"), "{e}");
    let e = "52658776x5".parse::<Nip>().unwrap_err();
    assert!(
        matches!(
            e,
            IdError::Character {
                position: 8,
                found: 'x',
                ..
            }
        ),
        "{e}"
    );
    assert!("52658776ą5".parse::<Nip>().is_err());
    assert!("".parse::<Nip>().is_err());
    assert!(" 5265877635".parse::<Nip>().is_err());
}

#[test]
fn nip_serde_is_lenient() {
    // TEST does not check NIP checksums: a bad checksum must deserialize.
    let nip: Nip = serde_json::from_str("\"5265877636\"").unwrap();
    assert!(!nip.has_valid_checksum());
    assert_eq!(serde_json::to_string(&nip).unwrap(), "\"5265877636\"");
    // ...but the pattern is still enforced.
    assert!(serde_json::from_str::<Nip>("\"0265877635\"").is_err());
    assert!(serde_json::from_str::<Nip>("5265877635").is_err());
}

#[test]
fn nip_from_leading_digits() {
    let nip = Nip::from_leading_digits([5, 2, 6, 5, 8, 7, 7, 6, 3]).unwrap();
    assert_eq!(nip.as_str(), "5265877635");
    assert!(Nip::from_leading_digits([0, 2, 6, 5, 8, 7, 7, 6, 3]).is_none());
    assert!(Nip::from_leading_digits([10, 2, 6, 5, 8, 7, 7, 6, 3]).is_none());
}

#[test]
fn pesel_checks() {
    let p: Pesel = "44051401359".parse().unwrap();
    assert_eq!(p.birth_date(), Some(date!(1944 - 05 - 14)));
    let e = "44051401358".parse::<Pesel>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "PESEL checksum mismatch: expected digit 9, found 8"
    );
    // Century encodings.
    for (d, serial) in [
        (date!(1850 - 03 - 01), 1234u16),
        (date!(1999 - 12 - 31), 1),
        (date!(2000 - 01 - 01), 9999),
        (date!(2024 - 02 - 29), 42),
        (date!(2150 - 07 - 15), 7),
        (date!(2299 - 11 - 30), 0),
    ] {
        let p = Pesel::from_parts(d, serial).unwrap();
        assert_eq!(p.birth_date(), Some(d), "{p}");
        assert_eq!(Pesel::from_str(p.as_str()).unwrap(), p);
    }
    let p2000 = Pesel::from_parts(date!(2000 - 01 - 01), 9999).unwrap();
    assert_eq!(&p2000.as_str()[..6], "002101");
    let p1850 = Pesel::from_parts(date!(1850 - 03 - 01), 1234).unwrap();
    assert_eq!(&p1850.as_str()[..6], "508301");
    assert!(Pesel::from_parts(date!(1799 - 12 - 31), 0).is_none());

    // Invalid date (February 30th) passes the pattern, fails strict parsing.
    let body = "9002300000";
    let sum: u32 = body
        .bytes()
        .zip([1, 3, 7, 9, 1, 3, 7, 9, 1, 3])
        .map(|(c, w)| u32::from(c - b'0') * w)
        .sum();
    let s = format!("{body}{}", (10 - sum % 10) % 10);
    let e = s.parse::<Pesel>().unwrap_err();
    assert!(e.to_string().contains("birth date"), "{e}");
    let lenient = Pesel::parse_lenient(&s).unwrap();
    assert!(lenient.has_valid_checksum());
    assert_eq!(lenient.birth_date(), None);
    // Month code out of the pattern.
    let e = Pesel::parse_lenient("44131401359").unwrap_err();
    assert!(e.to_string().contains("month code 13"), "{e}");
    // serde lenient.
    let p: Pesel = serde_json::from_str("\"44051401358\"").unwrap();
    assert!(!p.has_valid_checksum());
}

#[test]
fn internal_id() {
    let id: InternalId = "6824515772-12343".parse().unwrap();
    assert_eq!(id.nip().as_str(), "6824515772");
    assert_eq!(id.suffix(), "12343");
    let e = "6824515772-12344".parse::<InternalId>().unwrap_err();
    assert_eq!(
        e.to_string(),
        "internal ID checksum mismatch: expected digit 3, found 4"
    );
    let built = InternalId::new(&Nip::parse_lenient("6824515772").unwrap(), 1234).unwrap();
    assert_eq!(built, id);
    assert!(InternalId::new(&built.nip(), 10000).is_err());
    assert!("6824515772_12343".parse::<InternalId>().is_err());
    assert!("0824515772-12343".parse::<InternalId>().is_err());
    // The official UPO examples carry an internal ID with a wrong check digit.
    let lenient = InternalId::parse_lenient("5265877635-12345").unwrap();
    assert!(!lenient.has_valid_checksum());
    assert!(id.has_valid_checksum());
    assert_eq!(
        serde_json::from_str::<InternalId>("\"5265877635-12345\"").unwrap(),
        lenient
    );
    assert!(serde_json::from_str::<InternalId>("\"5265877635-1234\"").is_err());
    let json = serde_json::to_string(&id).unwrap();
    assert_eq!(json, "\"6824515772-12343\"");
    assert_eq!(serde_json::from_str::<InternalId>(&json).unwrap(), id);
}

#[test]
fn nip_vat_ue() {
    for ok in [
        "5265877635-ATU12345678",
        "5265877635-BE0123456789",
        "5265877635-DE123456789",
        "5265877635-EL123456789",
        "5265877635-ESA1234567B",
        "5265877635-ES12345678Z",
        "5265877635-FRAB123456789",
        "5265877635-IE1234567WA",
        "5265877635-IE1+12345A",
        "5265877635-NL12345678B0*1",
        "5265877635-RO12",
        "5265877635-XIGD123",
        "5265877635-XI123456789012",
    ] {
        let id: NipVatUe = ok.parse().unwrap_or_else(|e| panic!("{ok}: {e}"));
        assert_eq!(id.nip().as_str(), "5265877635");
        assert_eq!(id.vat_ue(), &ok[11..]);
    }
    for bad in [
        "5265877635-ATU1234567",
        "5265877635-BE2123456789",
        "5265877635-GR123456789",
        "5265877635-PL1234567890",
        "5265877635-RO1",
        "5265877635ATU12345678",
        "5265877635-XIAB123",
    ] {
        let e = bad.parse::<NipVatUe>().unwrap_err();
        assert_eq!(e.kind(), IdKind::NipVatUe, "{bad}");
    }
    let e = "5265877635-GR123456789".parse::<NipVatUe>().unwrap_err();
    assert!(e.to_string().contains("Greece is EL"), "{e}");
    let id = NipVatUe::new(&Nip::new("5265877635").unwrap(), "ATU12345678").unwrap();
    assert_eq!(id.country_code(), "AT");
}

#[test]
fn peppol_id() {
    let p: PeppolId = "PPL123456".parse().unwrap();
    assert_eq!(p.as_ref(), "PPL123456");
    assert!("XPL123456".parse::<PeppolId>().is_err());
    assert!("PpL123456".parse::<PeppolId>().is_err());
    assert!("PPL12345".parse::<PeppolId>().is_err());
    assert!("PPL12345A".parse::<PeppolId>().is_err());
}

#[test]
fn ksef_number_vectors() {
    let n: KsefNumber = "5265877635-20250826-0100001AF629-AF".parse().unwrap();
    assert_eq!(n.seller_nip().as_str(), "5265877635");
    assert_eq!(n.date(), date!(2025 - 08 - 26));
    assert_eq!(n.technical_part(), "0100001AF629");
    assert_eq!(n.checksum(), "AF");
    assert!(!n.is_legacy());
    let n2: KsefNumber = "5265877635-20250626-010080DD2B5E-26".parse().unwrap();
    assert_eq!(n2.checksum(), "26");

    let built = KsefNumber::new(
        &Nip::new("5265877635").unwrap(),
        date!(2025 - 06 - 26),
        "010080dd2b5e",
    )
    .unwrap();
    assert_eq!(built, n2);
    let from_bytes = KsefNumber::from_technical_bytes(
        &Nip::new("5265877635").unwrap(),
        date!(2025 - 08 - 26),
        [0x01, 0x00, 0x00, 0x1A, 0xF6, 0x29],
    )
    .unwrap();
    assert_eq!(from_bytes, n);

    let e = "5265877635-20250826-0100001AF629-AE"
        .parse::<KsefNumber>()
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "KSeF number checksum mismatch: expected CRC-8 AF, found CRC-8 AE"
    );
    // Lowercase hex, bad date, bad year, bad length.
    assert!(
        "5265877635-20250826-0100001af629-AF"
            .parse::<KsefNumber>()
            .is_err()
    );
    let e = "5265877635-20250230-0100001AF629-AF"
        .parse::<KsefNumber>()
        .unwrap_err();
    assert!(e.to_string().contains("not a valid calendar date"), "{e}");
    assert!(
        "5265877635-20190826-0100001AF629-AF"
            .parse::<KsefNumber>()
            .is_err()
    );
    assert!(matches!(
        "5265877635-20250826-0100001AF629".parse::<KsefNumber>(),
        Err(IdError::Length { .. })
    ));
    assert!(
        KsefNumber::new(
            &Nip::new("5265877635").unwrap(),
            date!(2025 - 06 - 26),
            "XYZ0DD2B5E00"
        )
        .is_err()
    );
}

#[test]
fn ksef_number_legacy_and_bad_checksum_nip() {
    let legacy: KsefNumber = "5265877635-20230101-ABCDEF-123456-7F".parse().unwrap();
    assert!(legacy.is_legacy());
    assert_eq!(legacy.technical_part(), "ABCDEF-123456");
    assert_eq!(legacy.date(), date!(2023 - 01 - 01));
    // Seller NIPs from TEST may have bad checksums: only the pattern is checked.
    let n = KsefNumber::new(
        &Nip::parse_lenient("5265877636").unwrap(),
        date!(2026 - 01 - 02),
        "0200A0D6723E",
    )
    .unwrap();
    assert_eq!(n.seller_nip().as_str(), "5265877636");
    assert_eq!(n.as_str().parse::<KsefNumber>().unwrap(), n);
}

#[test]
fn reference_number() {
    let r: ReferenceNumber = "20250626-SO-2F14610000-242991F8C9-B4".parse().unwrap();
    assert_eq!(r.type_code(), ReferenceType::OnlineSession);
    assert_eq!(r.date(), date!(2025 - 06 - 26));
    let r2: ReferenceNumber = "20250626-ZZ-2F14610000-242991F8C9-B4".parse().unwrap();
    assert_eq!(r2.type_code(), ReferenceType::Unknown("ZZ".into()));
    for (code, ty) in [
        ("CR", ReferenceType::Challenge),
        ("AU", ReferenceType::Authentication),
        ("SB", ReferenceType::BatchSession),
        ("EE", ReferenceType::Invoice),
        ("EU", ReferenceType::SessionUpo),
        ("EC", ReferenceType::KsefToken),
        ("EG", ReferenceType::PermissionOperation),
        ("EH", ReferenceType::EnrollmentOrExport),
    ] {
        assert_eq!(ReferenceType::from_code(code), ty);
        assert_eq!(ty.code(), code);
    }
    let built = ReferenceNumber::from_parts(
        date!(2025 - 06 - 26),
        &ReferenceType::OnlineSession,
        [
            0x2F, 0x14, 0x61, 0x00, 0x00, 0x24, 0x29, 0x91, 0xF8, 0xC9, 0xB4,
        ],
    )
    .unwrap();
    assert_eq!(built, r);
    assert!(
        ReferenceNumber::from_parts(
            date!(2025 - 06 - 26),
            &ReferenceType::Unknown("x".into()),
            [0; 11]
        )
        .is_err()
    );
    for bad in [
        "20250626-SO-2F14610000-242991F8C9-b4",
        "20251326-SO-2F14610000-242991F8C9-B4",
        "20250626_SO-2F14610000-242991F8C9-B4",
        "20250626-so-2F14610000-242991F8C9-B4",
        "20250626-SO-2F14610000-242991F8C9-B",
    ] {
        assert!(bad.parse::<ReferenceNumber>().is_err(), "{bad}");
    }
    let json = serde_json::to_string(&r).unwrap();
    assert_eq!(serde_json::from_str::<ReferenceNumber>(&json).unwrap(), r);
}

#[test]
fn sha256_base64() {
    let digest: [u8; 32] = core::array::from_fn(|i| (i * 7 + 250) as u8);
    let h = Sha256Base64::from_digest(digest);
    assert_eq!(h.as_str().len(), 44);
    assert_eq!(h.as_bytes(), digest);
    let parsed: Sha256Base64 = h.as_str().parse().unwrap();
    assert_eq!(parsed, h);
    assert!(!h.to_base64url().contains(['=', '+', '/']));
    assert_eq!(h.to_base64url().len(), 43);
    // 44 chars but 33 bytes? impossible; 44 chars with wrong padding / wrong alphabet:
    assert!(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
            .parse::<Sha256Base64>()
            .is_err()
    );
    assert!(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-="
            .parse::<Sha256Base64>()
            .is_err()
    );
    // Non-canonical trailing bits.
    assert!(
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB="
            .parse::<Sha256Base64>()
            .is_err()
    );
    let e = "abc".parse::<Sha256Base64>().unwrap_err();
    assert_eq!(e.kind(), IdKind::Sha256Base64);
    let json = serde_json::to_string(&h).unwrap();
    assert_eq!(serde_json::from_str::<Sha256Base64>(&json).unwrap(), h);
}

#[cfg(feature = "testdata")]
#[test]
fn random_generators_produce_valid_values() {
    let mut rng = rand::rng();
    for _ in 0..500 {
        let nip = Nip::random(&mut rng);
        assert_eq!(Nip::new(nip.as_str()).unwrap(), nip);
        let p = Pesel::random(&mut rng);
        assert_eq!(Pesel::new(p.as_str()).unwrap(), p);
        assert!(p.birth_date().is_some());
    }
}

fn never_panics(s: &str) {
    let _ = s.parse::<Nip>();
    let _ = Nip::parse_lenient(s);
    let _ = s.parse::<Pesel>();
    let _ = Pesel::parse_lenient(s).map(|p| p.birth_date());
    let _ = s.parse::<InternalId>().map(|i| i.nip());
    let _ = s.parse::<NipVatUe>().map(|i| i.country_code().to_owned());
    let _ = s.parse::<PeppolId>();
    let _ = s.parse::<KsefNumber>().map(|k| (k.date(), k.seller_nip()));
    let _ = s
        .parse::<ReferenceNumber>()
        .map(|r| (r.date(), r.type_code()));
    let _ = s.parse::<Sha256Base64>().map(|h| h.to_base64url());
    let _ = serde_json::from_value::<Nip>(serde_json::Value::String(s.to_owned()));
}

proptest! {
    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        never_panics(&s);
    }

    #[test]
    fn shaped_strings_never_panic(s in "[0-9A-Za-z\\-+*=/ą]{0,40}") {
        never_panics(&s);
    }

    #[test]
    fn near_valid_ksef_numbers_never_panic(s in "[1-9][0-9]{9}-20[0-9]{6}-[0-9A-F]{12}-[0-9A-F]{2}") {
        never_panics(&s);
    }

    #[test]
    fn nip_roundtrip(d in proptest::array::uniform9(0u8..10)) {
        if let Some(nip) = Nip::from_leading_digits(d) {
            prop_assert!(nip.has_valid_checksum());
            let json = serde_json::to_string(&nip).unwrap();
            prop_assert_eq!(serde_json::from_str::<Nip>(&json).unwrap(), nip.clone());
            prop_assert_eq!(nip.as_str().parse::<Nip>().unwrap(), nip);
        }
    }

    #[test]
    fn pesel_roundtrip(julian in date!(1800-01-01).to_julian_day()..=date!(2299-12-31).to_julian_day(), serial in 0u16..10000) {
        let d = time::Date::from_julian_day(julian).unwrap();
        let p = Pesel::from_parts(d, serial).unwrap();
        prop_assert_eq!(p.birth_date(), Some(d));
        prop_assert_eq!(p.as_str().parse::<Pesel>().unwrap(), p);
    }

    #[test]
    fn ksef_number_roundtrip(d in proptest::array::uniform9(0u8..10), tech in any::<[u8; 6]>(), julian in date!(2020-01-01).to_julian_day()..=date!(2100-12-31).to_julian_day()) {
        if let Some(nip) = Nip::from_leading_digits(d) {
            let date = time::Date::from_julian_day(julian).unwrap();
            let n = KsefNumber::from_technical_bytes(&nip, date, tech).unwrap();
            prop_assert_eq!(n.date(), date);
            prop_assert_eq!(n.seller_nip(), nip);
            let json = serde_json::to_string(&n).unwrap();
            prop_assert_eq!(serde_json::from_str::<KsefNumber>(&json).unwrap(), n);
        }
    }

    #[test]
    fn internal_id_roundtrip(d in proptest::array::uniform9(0u8..10), sub in 0u16..10000) {
        if let Some(nip) = Nip::from_leading_digits(d) {
            let id = InternalId::new(&nip, sub).unwrap();
            prop_assert_eq!(id.as_str().parse::<InternalId>().unwrap(), id.clone());
            prop_assert_eq!(id.nip(), nip);
        }
    }

    #[test]
    fn reference_roundtrip(bytes in any::<[u8; 11]>(), julian in date!(2020-01-01).to_julian_day()..=date!(2099-12-31).to_julian_day()) {
        let date = time::Date::from_julian_day(julian).unwrap();
        let r = ReferenceNumber::from_parts(date, &ReferenceType::Invoice, bytes).unwrap();
        prop_assert_eq!(r.date(), date);
        prop_assert_eq!(r.type_code(), ReferenceType::Invoice);
        prop_assert_eq!(r.as_str().parse::<ReferenceNumber>().unwrap(), r);
    }

    #[test]
    fn sha_roundtrip(d in any::<[u8; 32]>()) {
        let h = Sha256Base64::from_digest(d);
        prop_assert_eq!(h.as_bytes(), d);
        prop_assert_eq!(h.as_str().parse::<Sha256Base64>().unwrap(), h);
    }
}
