//! PKCS#10 requests: build from enrollment data, parse, verify.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use ksef_crypto::Error;
use ksef_crypto::cert::DistinguishedName;
use ksef_crypto::csr::CertificateRequest;
use ksef_crypto::keys::PrivateKey;
use proptest::prelude::*;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn enrollment_dn() -> DistinguishedName {
    DistinguishedName {
        common_name: "Jan Kowalski".into(),
        country_name: "PL".into(),
        given_name: Some("Jan".into()),
        surname: Some("Kowalski".into()),
        serial_number: Some("TINPL-1234567890".into()),
        unique_identifier: Some("a1b2c3".into()),
        organization_name: Some("Firma Żółć sp. z o.o.".into()),
        organization_identifier: Some("VATPL-1234567890".into()),
    }
}

#[test]
fn csr_round_trip_both_key_types() {
    for file in ["rsa2048.pkcs8.pem", "p256.pkcs8.pem"] {
        let key = PrivateKey::from_pem(&data(file), None).unwrap();
        let csr = CertificateRequest::new(&enrollment_dn(), &key).unwrap();
        csr.verify().unwrap();
        assert_eq!(csr.public_key().unwrap(), key.public_key());
        let parsed = CertificateRequest::from_base64(&csr.to_base64()).unwrap();
        parsed.verify().unwrap();
        assert_eq!(parsed.der(), csr.der());
        assert_eq!(
            CertificateRequest::from_pem(csr.to_pem().as_bytes())
                .unwrap()
                .der(),
            csr.der()
        );
        let attrs = parsed.subject_attributes();
        let oids: Vec<&str> = attrs.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(
            oids,
            [
                "2.5.4.6", "2.5.4.3", "2.5.4.5", "2.5.4.4", "2.5.4.42", "2.5.4.45", "2.5.4.97",
                "2.5.4.10"
            ]
        );
        assert!(attrs.contains(&("2.5.4.10".into(), "Firma Żółć sp. z o.o.".into())));
        assert_eq!(
            parsed.subject(),
            "O=Firma Żółć sp. z o.o.,2.5.4.97=VATPL-1234567890,2.5.4.45=a1b2c3,2.5.4.42=Jan,2.5.4.4=Kowalski,2.5.4.5=TINPL-1234567890,CN=Jan Kowalski,C=PL"
        );
    }
}

#[test]
fn ca_issues_from_csr() {
    use ksef_crypto::cert::{self, CertificateUse, IssueOptions};
    let ca_key = PrivateKey::from_pem(&data("rsa2048.pkcs8.pem"), None).unwrap();
    let mut o = IssueOptions::test_defaults();
    o.usage = CertificateUse::Ca;
    let ca_dn = DistinguishedName {
        common_name: "CA".into(),
        country_name: "PL".into(),
        ..Default::default()
    };
    let ca = cert::self_signed(&ca_key, &ca_dn, &o).unwrap();
    let user = PrivateKey::from_pem(&data("p256.pkcs8.pem"), None).unwrap();
    let csr = CertificateRequest::new(&enrollment_dn(), &user).unwrap();
    let mut uo = IssueOptions::test_defaults();
    uo.usage = CertificateUse::DigitalSignature;
    let c = csr.issue(&ca_key, &ca, &uo).unwrap();
    assert_eq!(c.subject(), csr.subject());
    assert!(user.matches(&c));
    c.verify_signed_by(&ca).unwrap();
}

#[test]
fn minimal_dn_has_only_cn_and_c() {
    let key = PrivateKey::from_pem(&data("p256.pkcs8.pem"), None).unwrap();
    let dn = DistinguishedName {
        common_name: "X".into(),
        country_name: "PL".into(),
        ..Default::default()
    };
    let csr = CertificateRequest::new(&dn, &key).unwrap();
    assert_eq!(csr.subject(), "CN=X,C=PL");
}

#[test]
fn tampered_csr_fails_verification() {
    let key = PrivateKey::from_pem(&data("p256.pkcs8.pem"), None).unwrap();
    let csr = CertificateRequest::new(&enrollment_dn(), &key).unwrap();
    let mut der = csr.der().to_vec();
    // Flip a byte inside the subject's commonName value ("Jan Kowalski").
    let pos = der.windows(12).position(|w| w == b"Jan Kowalski").unwrap();
    der[pos] = b'X';
    let t = CertificateRequest::from_der(&der).unwrap();
    assert!(matches!(t.verify(), Err(Error::BadSignature(_))));
    assert!(matches!(
        CertificateRequest::from_der(b"\x30\x00"),
        Err(Error::InvalidCsr(_))
    ));
    assert!(matches!(
        CertificateRequest::from_base64("%%%"),
        Err(Error::Base64 { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn parsers_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = CertificateRequest::from_der(&bytes).map(|c| c.verify());
        let _ = ksef_crypto::cert::Certificate::from_der(&bytes).map(|c| (c.subject(), c.public_key()));
        let _ = PrivateKey::from_der(&bytes, Some("pw"));
        let _ = ksef_crypto::keys::KeyBundle::from_pkcs12(&bytes, "pw");
    }

    #[test]
    fn mutated_valid_inputs_never_panic(pos in 0usize..2000, val in any::<u8>()) {
        for f in ["rsa-seal.crt.der", "rsa2048.pkcs8.der", "p256.sec1.der", "rsa-seal.p12"] {
            let mut b = data(f);
            let i = pos % b.len();
            b[i] = val;
            let _ = ksef_crypto::cert::Certificate::from_der(&b).map(|c| (c.subject(), c.public_key(), c.verify_signed_by(&c)));
            let _ = PrivateKey::from_der(&b, None);
            let _ = ksef_crypto::keys::KeyBundle::from_pkcs12(&b, "test1234");
        }
    }
}
