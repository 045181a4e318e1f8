//! Certificate parsing against fixtures made by OpenSSL (see tests/data/PROVENANCE.md).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use ksef_crypto::cert::Certificate;
use ksef_crypto::keys::PublicKey;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

#[test]
fn seal_certificate_fields() {
    let pem = Certificate::from_pem(&data("rsa-seal.crt.pem")).unwrap();
    let der = Certificate::from_der(&data("rsa-seal.crt.der")).unwrap();
    assert_eq!(pem, der);
    assert_eq!(pem.der(), data("rsa-seal.crt.der").as_slice());
    // openssl x509 -subject -nameopt RFC2253 prints organizationIdentifier by name; we use the OID.
    assert_eq!(
        pem.subject(),
        "O=Firma Testowa sp. z o.o.,2.5.4.97=VATPL-1234567890,CN=Firma Testowa,C=PL"
    );
    assert_eq!(pem.issuer(), pem.subject());
    assert!(pem.is_self_issued());
    assert_eq!(pem.serial_hex(), "01F20A5D352AE590");
    assert_eq!(
        pem.serial_decimal(),
        u64::from_str_radix("01F20A5D352AE590", 16)
            .unwrap()
            .to_string()
    );
    assert_eq!(
        pem.serial_bytes(),
        &[0x01, 0xF2, 0x0A, 0x5D, 0x35, 0x2A, 0xE5, 0x90]
    );
    assert_eq!(
        pem.fingerprint_sha256_hex(),
        "C730A1D39A022CC762B49315691F3E8B9B943C33D1F0347A017B83E51F15919E"
    );
    assert!(matches!(pem.public_key().unwrap(), PublicKey::Rsa(_)));
    assert!(pem.not_before() < pem.not_after());
    assert!(pem.is_valid_at(time::OffsetDateTime::now_utc()));
    assert_eq!(
        pem.subject_attribute("2.5.4.97").as_deref(),
        Some("VATPL-1234567890")
    );
    // PEM round trip.
    assert_eq!(Certificate::from_pem(pem.to_pem().as_bytes()).unwrap(), pem);
    assert_eq!(Certificate::from_base64_der(&pem.to_base64()).unwrap(), pem);
    assert_eq!(Certificate::from_pem_or_der(pem.der()).unwrap(), pem);
}

#[test]
fn personal_certificate_fields() {
    let c = Certificate::from_pem(&data("p256-personal.crt.pem")).unwrap();
    assert_eq!(
        c.subject(),
        "2.5.4.5=TINPL-1234567890,2.5.4.42=Jan,2.5.4.4=Kowalski,CN=Jan Kowalski,C=PL"
    );
    assert_eq!(c.serial_hex(), "12D687");
    assert_eq!(c.serial_decimal(), "1234567");
    assert!(matches!(c.public_key().unwrap(), PublicKey::P256(_)));
}

#[test]
fn serial_with_top_bit_set_keeps_the_der_zero_octet() {
    // DER: INTEGER 02 09 00 F2 0A 5D 35 2A E5 90 AB (see tests/data/PROVENANCE.md).
    let c = Certificate::from_pem(&data("p256-topbit-serial.crt.pem")).unwrap();
    assert_eq!(
        c.serial_bytes(),
        &[0x00, 0xF2, 0x0A, 0x5D, 0x35, 0x2A, 0xE5, 0x90, 0xAB]
    );
    assert_eq!(c.serial_hex(), "00F20A5D352AE590AB");
    // The XAdES X509SerialNumber is the decimal value, where the octet makes no difference.
    assert_eq!(
        c.serial_decimal(),
        u64::from_str_radix("F20A5D352AE590AB", 16)
            .unwrap()
            .to_string()
    );
}

#[test]
fn bad_certificates_are_typed_errors() {
    use ksef_crypto::Error;
    assert!(matches!(
        Certificate::from_der(b"\x30\x03abc"),
        Err(Error::InvalidCertificate(_))
    ));
    assert!(matches!(
        Certificate::from_pem(b"hello"),
        Err(Error::InvalidCertificate(_))
    ));
    assert!(matches!(
        Certificate::from_pem(b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"),
        Err(Error::Base64 { .. })
    ));
    let der = data("rsa-seal.crt.der");
    assert!(Certificate::from_der(&der[..der.len() - 1]).is_err());
}
