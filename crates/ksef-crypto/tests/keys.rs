//! Private-key loading in every supported form, against OpenSSL-made fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use ksef_crypto::Error;
use ksef_crypto::cert::Certificate;
use ksef_crypto::keys::{KeyBundle, PrivateKey};

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn rsa_cert() -> Certificate {
    Certificate::from_pem(&data("rsa-seal.crt.pem")).unwrap()
}
fn ec_cert() -> Certificate {
    Certificate::from_pem(&data("p256-personal.crt.pem")).unwrap()
}

#[test]
fn rsa_key_in_every_form() {
    let cert = rsa_cert();
    for (file, pw) in [
        ("rsa2048.pkcs8.pem", None),
        ("rsa2048.pkcs8.der", None),
        ("rsa2048.pkcs1.pem", None),
        ("rsa2048.pkcs1.der", None),
        ("rsa2048.pkcs8.enc.pem", Some("test1234")),
    ] {
        let k =
            PrivateKey::from_pem_or_der(&data(file), pw).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(k.algorithm(), "RSA", "{file}");
        assert!(k.matches(&cert), "{file}");
        assert!(!k.matches(&ec_cert()), "{file}");
        assert!(matches!(
            k.check_matches(&ec_cert()),
            Err(Error::KeyMismatch)
        ));
    }
}

#[test]
fn ec_key_in_every_form() {
    let cert = ec_cert();
    for (file, pw) in [
        ("p256.pkcs8.pem", None),
        ("p256.pkcs8.der", None),
        ("p256.sec1.pem", None),
        ("p256.sec1.der", None),
        ("p256.pkcs8.enc.pem", Some("test1234")),
    ] {
        let k =
            PrivateKey::from_pem_or_der(&data(file), pw).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(k.algorithm(), "P-256", "{file}");
        assert!(k.matches(&cert), "{file}");
        assert!(!k.matches(&rsa_cert()), "{file}");
    }
}

#[test]
fn pkcs8_round_trip_and_redacted_debug() {
    let k = PrivateKey::from_pem(&data("p256.sec1.pem"), None).unwrap();
    let pem = k.to_pkcs8_pem().unwrap();
    let k2 = PrivateKey::from_pem(pem.as_bytes(), None).unwrap();
    assert_eq!(k.public_key(), k2.public_key());
    let dbg = format!("{k:?}");
    assert!(dbg.contains("redacted"), "{dbg}");
    let der = k.to_pkcs8_der().unwrap();
    let hex: String = der.iter().map(|b| format!("{b:02x}")).collect();
    assert!(!dbg.contains(&hex[hex.len() - 16..]));
}

#[test]
fn encrypted_key_errors() {
    assert!(matches!(
        PrivateKey::from_pem(&data("rsa2048.pkcs8.enc.pem"), None),
        Err(Error::PasswordRequired)
    ));
    assert!(matches!(
        PrivateKey::from_pem(&data("p256.pkcs8.enc.pem"), Some("wrong")),
        Err(Error::WrongPassword(_))
    ));
}

#[test]
fn pkcs12_bundles() {
    for (file, cert) in [
        ("rsa-seal.p12", rsa_cert()),
        ("rsa-seal-legacy.p12", rsa_cert()),
        ("p256-personal.p12", ec_cert()),
    ] {
        let b = KeyBundle::from_pkcs12(&data(file), "test1234")
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(b.certificate, cert, "{file}");
        assert!(b.key.matches(&b.certificate));
        assert!(b.chain.is_empty());
        let err = KeyBundle::from_pkcs12(&data(file), "nope").unwrap_err();
        assert!(matches!(err, Error::WrongPassword(_)), "{file}: {err}");
    }
}

#[test]
fn bundle_new_checks_the_match() {
    let k = PrivateKey::from_pem(&data("p256.pkcs8.pem"), None).unwrap();
    assert!(matches!(
        KeyBundle::new(k.clone(), rsa_cert()),
        Err(Error::KeyMismatch)
    ));
    assert!(KeyBundle::new(k, ec_cert()).is_ok());
}

#[test]
fn unsupported_and_malformed_keys() {
    for f in ["p384.pkcs8.pem", "p384.sec1.pem"] {
        let e = PrivateKey::from_pem(&data(f), None).unwrap_err();
        assert!(matches!(e, Error::UnsupportedAlgorithm(_)), "{f}: {e}");
    }
    for bad in [
        &b""[..],
        b"garbage",
        b"\x30\x82\xff\xff",
        b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
    ] {
        assert!(PrivateKey::from_pem_or_der(bad, None).is_err());
    }
    assert!(matches!(
        KeyBundle::from_pkcs12(b"not a pfx", "x"),
        Err(Error::InvalidPkcs12(_))
    ));
    let mut p12 = data("rsa-seal.p12");
    p12.truncate(p12.len() / 2);
    assert!(KeyBundle::from_pkcs12(&p12, "test1234").is_err());
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn pem_parsers_never_panic(body in "[A-Za-z0-9+/=\n !-]{0,300}", label in prop::sample::select(vec![
            "PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY", "CERTIFICATE", "CERTIFICATE REQUEST",
        ])) {
            let pem = format!("-----BEGIN {label}-----\n{body}\n-----END {label}-----\n");
            let _ = PrivateKey::from_pem(pem.as_bytes(), Some("pw"));
            let _ = Certificate::from_pem(pem.as_bytes());
            let _ = ksef_crypto::csr::CertificateRequest::from_pem(pem.as_bytes());
            // Unterminated block.
            let _ = PrivateKey::from_pem(pem.as_bytes()[..pem.len() / 2].as_ref(), None);
        }

        #[test]
        fn truncated_fixtures_give_errors(cut in 0usize..1200) {
            for f in ["rsa2048.pkcs8.der", "p256.sec1.der", "rsa-seal.crt.der", "p256-personal.p12"] {
                let b = data(f);
                let c = cut % b.len();
                prop_assert!(PrivateKey::from_der(&b[..c], Some("test1234")).is_err());
                prop_assert!(Certificate::from_der(&b[..c]).is_err());
                prop_assert!(KeyBundle::from_pkcs12(&b[..c], "test1234").is_err());
            }
        }
    }
}
