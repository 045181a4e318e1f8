//! Test-certificate generation and CA issuance.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use ksef_crypto::Error;
use ksef_crypto::cert::{self, CertificateUse, DistinguishedName, IssueOptions, PersonId};
use ksef_crypto::keys::PrivateKey;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}
fn rsa() -> PrivateKey {
    PrivateKey::from_pem(&data("rsa2048.pkcs8.pem"), None).unwrap()
}
fn ec() -> PrivateKey {
    PrivateKey::from_pem(&data("p256.pkcs8.pem"), None).unwrap()
}

#[test]
fn personal_and_seal_test_certificates() {
    for key in [rsa(), ec()] {
        let c = cert::test_personal(&key, "Jan", "Kowalski", PersonId::Nip("1234567890".into()))
            .unwrap();
        assert_eq!(
            c.subject(),
            "2.5.4.42=Jan,2.5.4.4=Kowalski,2.5.4.5=TINPL-1234567890,CN=Jan Kowalski,C=PL"
        );
        assert!(c.is_self_issued());
        assert!(key.matches(&c));
        c.verify_signed_by(&c).unwrap();
        let now = time::OffsetDateTime::now_utc();
        assert!(c.is_valid_at(now));
        let span = c.not_after() - c.not_before();
        assert!(
            span >= time::Duration::days(730) && span <= time::Duration::days(731),
            "{span}"
        );
        assert!(c.not_before() <= now - time::Duration::minutes(59));
        assert_eq!(c.serial_bytes().len(), 8);

        let s = cert::test_seal(&key, "Firma Testowa sp. z o.o.", "1234567890").unwrap();
        assert_eq!(
            s.subject(),
            "O=Firma Testowa sp. z o.o.,2.5.4.97=VATPL-1234567890,CN=Firma Testowa sp. z o.o.,C=PL"
        );
        s.verify_signed_by(&s).unwrap();
        // A different key (the other algorithm's fixture certificate) does not verify it.
        let other = if key.algorithm() == "RSA" {
            "p256-personal.crt.pem"
        } else {
            "rsa-seal.crt.pem"
        };
        let other = ksef_crypto::cert::Certificate::from_pem(&data(other)).unwrap();
        assert!(s.verify_signed_by(&other).is_err());
    }
    let p = cert::test_personal(
        &ec(),
        "Anna",
        "Nowak",
        PersonId::Pesel("80010112345".into()),
    )
    .unwrap();
    assert_eq!(
        p.subject_attribute("2.5.4.5").as_deref(),
        Some("PNOPL-80010112345")
    );
}

#[test]
fn bad_names_are_rejected() {
    assert!(matches!(
        cert::test_seal(&ec(), "X", "123"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        cert::test_personal(&ec(), "A", "B", PersonId::Pesel("1234567890".into())),
        Err(Error::InvalidInput(_))
    ));
    let dn = DistinguishedName {
        common_name: "x".into(),
        country_name: "Poland".into(),
        ..Default::default()
    };
    assert!(matches!(dn.to_name(), Err(Error::InvalidInput(_))));
}

#[test]
fn ca_issues_a_certificate() {
    let ca_key = rsa();
    let ca_dn = DistinguishedName {
        common_name: "KSeF Simulator CA".into(),
        country_name: "PL".into(),
        organization_name: Some("ksef-rs".into()),
        ..Default::default()
    };
    let mut opts = IssueOptions::test_defaults();
    opts.usage = CertificateUse::Ca;
    opts.serial = Some(vec![0x01, 0xF2, 0x0A, 0x5D, 0x35, 0x2A, 0xE5, 0x90]);
    let ca = cert::self_signed(&ca_key, &ca_dn, &opts).unwrap();
    assert_eq!(ca.serial_hex(), "01F20A5D352AE590");

    let user_key = ec();
    let dn = DistinguishedName::personal(
        "Jan",
        "Kowalski",
        PersonId::Nip("1234567890".into()),
        "Jan Kowalski",
    )
    .unwrap();
    let mut o = IssueOptions::test_defaults();
    o.usage = CertificateUse::NonRepudiation;
    let issued = cert::issue(
        &ca_key,
        &ca,
        &dn.to_name().unwrap(),
        &user_key.public_key(),
        &o,
    )
    .unwrap();
    assert_eq!(issued.issuer(), ca.subject());
    assert!(user_key.matches(&issued));
    issued.verify_signed_by(&ca).unwrap();
    assert!(issued.verify_signed_by(&issued).is_err());
    // The CA key must belong to the CA certificate.
    assert!(matches!(
        cert::issue(
            &user_key,
            &ca,
            &dn.to_name().unwrap(),
            &user_key.public_key(),
            &o
        ),
        Err(Error::KeyMismatch)
    ));
}
