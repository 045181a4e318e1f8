//! MF public-key selection and identifiers.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use ksef_crypto::Error;
use ksef_crypto::cert::Certificate;
use ksef_crypto::public_key::{self, KeyUsage, MfPublicKey, MfPublicKeyEntry};
use time::macros::datetime;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn entry(usage: &[&str], from: time::OffsetDateTime, to: time::OffsetDateTime) -> MfPublicKeyEntry {
    let cert = Certificate::from_pem(&data("rsa-seal.crt.pem")).unwrap();
    MfPublicKeyEntry {
        certificate_base64: cert.to_base64(),
        usage: usage.iter().map(|u| KeyUsage::parse(u)).collect(),
        valid_from: from,
        valid_to: to,
    }
}

#[test]
fn identifiers_match_openssl_computation() {
    let k = MfPublicKey::from_entry(&entry(
        &["SymmetricKeyEncryption"],
        datetime!(2025-01-01 0:00 UTC),
        datetime!(2027-01-01 0:00 UTC),
    ))
    .unwrap();
    // openssl x509 -in rsa-seal.crt.pem -pubkey -noout | openssl pkey -pubin -outform DER | openssl dgst -sha256 -binary | base64
    assert_eq!(k.public_key_id().len(), 44);
    let spki = k.certificate().spki_der().unwrap();
    assert_eq!(k.public_key_id(), ksef_crypto::hash::sha256_base64(&spki));
    assert_eq!(
        k.certificate_id(),
        ksef_crypto::hash::sha256_base64(&data("rsa-seal.crt.der"))
    );
}

#[test]
fn selection_by_usage_validity_and_latest_valid_from() {
    let now = datetime!(2026-06-01 0:00 UTC);
    let entries = vec![
        entry(
            &["KsefTokenEncryption"],
            datetime!(2025-01-01 0:00 UTC),
            datetime!(2027-01-01 0:00 UTC),
        ),
        entry(
            &["SymmetricKeyEncryption"],
            datetime!(2025-01-01 0:00 UTC),
            datetime!(2027-01-01 0:00 UTC),
        ),
        entry(
            &["SymmetricKeyEncryption"],
            datetime!(2026-03-01 0:00 UTC),
            datetime!(2028-01-01 0:00 UTC),
        ),
        // Latest validFrom but not valid yet.
        entry(
            &["SymmetricKeyEncryption"],
            datetime!(2026-09-01 0:00 UTC),
            datetime!(2028-01-01 0:00 UTC),
        ),
        // Expired.
        entry(
            &["KsefTokenEncryption"],
            datetime!(2026-01-01 0:00 UTC),
            datetime!(2026-05-01 0:00 UTC),
        ),
        entry(
            &["SomethingNew"],
            datetime!(2026-05-01 0:00 UTC),
            datetime!(2028-01-01 0:00 UTC),
        ),
        MfPublicKeyEntry {
            certificate_base64: "garbage!".into(),
            ..entry(&[], now, now)
        },
    ];
    let (keys, errors) = public_key::parse_all(&entries);
    assert_eq!(keys.len(), 6);
    assert_eq!(errors.len(), 1);
    let sym = public_key::select(&keys, &KeyUsage::SymmetricKeyEncryption, now).unwrap();
    assert_eq!(sym.valid_from(), datetime!(2026-03-01 0:00 UTC));
    let tok = public_key::select(&keys, &KeyUsage::KsefTokenEncryption, now).unwrap();
    assert_eq!(tok.valid_from(), datetime!(2025-01-01 0:00 UTC));
    assert!(matches!(
        public_key::select(
            &keys,
            &KeyUsage::KsefTokenEncryption,
            datetime!(2030-01-01 0:00 UTC)
        ),
        Err(Error::NoSuitablePublicKey(_))
    ));
    assert_eq!(keys[5].usage(), &[KeyUsage::Unknown("SomethingNew".into())]);
}
