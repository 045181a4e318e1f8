//! KOD I / KOD II links on the documented vectors.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use ksef_crypto::Error;
use ksef_crypto::cert::Certificate;
use ksef_crypto::hash;
use ksef_crypto::keys::PrivateKey;
use ksef_crypto::qr::{self, CertificateLinkData, ContextType};
use time::macros::date;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

const HASH_B64URL: &str = "UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE";

fn doc_hash() -> [u8; 32] {
    hash::decode_base64url(HASH_B64URL, "h")
        .unwrap()
        .try_into()
        .unwrap()
}

#[test]
fn kod_i_documented_example() {
    let url = qr::invoice_url(
        "https://qr-test.ksef.mf.gov.pl/",
        "1111111111",
        date!(2026 - 02 - 01),
        &doc_hash(),
    )
    .unwrap();
    assert_eq!(
        url,
        "https://qr-test.ksef.mf.gov.pl/invoice/1111111111/01-02-2026/UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE"
    );
    let xml = b"<Faktura/>";
    let url = qr::invoice_url_for_xml(
        "https://qr.ksef.mf.gov.pl",
        "5265877635",
        date!(2025 - 12 - 31),
        xml,
    )
    .unwrap();
    assert_eq!(
        url,
        format!(
            "https://qr.ksef.mf.gov.pl/invoice/5265877635/31-12-2025/{}",
            hash::sha256_base64url(xml)
        )
    );
    assert_eq!(hash::sha256_base64url(xml).len(), 43);
    assert!(matches!(
        qr::invoice_url("https://x", "123", date!(2026 - 02 - 01), &doc_hash()),
        Err(Error::InvalidInput(_))
    ));
}

fn link_data(serial: &str) -> CertificateLinkData<'_> {
    CertificateLinkData {
        qr_base: "https://qr-test.ksef.mf.gov.pl",
        context_type: ContextType::Nip,
        context_value: "1111111111",
        seller_nip: "1111111111",
        certificate_serial: serial,
        invoice_hash: doc_hash(),
    }
}

#[test]
fn kod_ii_documented_signed_string() {
    let d = link_data("01F20A5D352AE590");
    assert_eq!(
        d.signed_string().unwrap(),
        "qr-test.ksef.mf.gov.pl/certificate/Nip/1111111111/1111111111/01F20A5D352AE590/UtQp9Gpc51y-u3xApZjIjgkpZ01js-J8KflSPW8WzIE"
    );
}

#[test]
fn kod_ii_rsa_pss_and_ecdsa_round_trip() {
    for (keyf, certf, sig_len) in [
        ("rsa2048.pkcs8.pem", "rsa-seal.crt.pem", 256),
        ("p256.pkcs8.pem", "p256-personal.crt.pem", 64),
    ] {
        let key = PrivateKey::from_pem(&data(keyf), None).unwrap();
        let cert = Certificate::from_pem(&data(certf)).unwrap();
        let link = qr::certificate_url(
            "https://qr-test.ksef.mf.gov.pl",
            ContextType::Nip,
            "1111111111",
            "1111111111",
            &cert,
            &key,
            &doc_hash(),
        )
        .unwrap();
        assert_eq!(link.signature.len(), sig_len);
        let prefix = format!(
            "https://qr-test.ksef.mf.gov.pl/certificate/Nip/1111111111/1111111111/{}/{HASH_B64URL}/",
            cert.serial_hex()
        );
        assert!(link.url.starts_with(&prefix), "{}", link.url);
        assert_eq!(&link.url[prefix.len()..], hash::base64url(&link.signature));
        assert_eq!(
            format!(
                "https://{}/{}",
                link.signed_string,
                hash::base64url(&link.signature)
            ),
            link.url
        );
        qr::verify_certificate_url(&link.url, &cert.public_key().unwrap()).unwrap();
        // One changed character in the signed part breaks the signature.
        let tampered = link.url.replacen("/Nip/", "/NipVatUe/", 1);
        assert!(matches!(
            qr::verify_certificate_url(&tampered, &cert.public_key().unwrap()),
            Err(Error::BadSignature(_))
        ));
        // The wrong key type / wrong certificate.
        let other = if sig_len == 64 {
            "rsa-seal.crt.pem"
        } else {
            "p256-personal.crt.pem"
        };
        let other = Certificate::from_pem(&data(other)).unwrap();
        assert!(
            qr::certificate_url(
                "https://q",
                ContextType::Nip,
                "1",
                "1111111111",
                &other,
                &key,
                &doc_hash()
            )
            .is_err()
        );
    }
}

#[test]
fn kod_ii_bad_input() {
    let key = PrivateKey::from_pem(&data("p256.pkcs8.pem"), None).unwrap();
    assert!(link_data("XYZ").sign(&key).is_err());
    let mut d = link_data("01");
    d.context_value = "a/b";
    assert!(matches!(d.sign(&key), Err(Error::InvalidInput(_))));
    let pk = key.public_key();
    assert!(qr::verify_certificate_url("https://x/invoice/1/2/3", &pk).is_err());
    assert!(matches!(
        qr::verify_certificate_url("https://x/certificate/Nip/1/2/3/4/!!!", &pk),
        Err(Error::Base64 { .. })
    ));
}
