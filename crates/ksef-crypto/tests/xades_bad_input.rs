//! Bad input into the XML side of ksef-crypto: every failure is a typed error, never a panic.

// Test code: a panic is a test failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use ksef_crypto::c14n::{self, Method, Options};
use ksef_crypto::xades::{self, InvalidSignature, XadesError};
use proptest::prelude::*;

fn fixture(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/xades")
            .join(rel),
    )
    .unwrap()
}

const VALID: &[&str] = &[
    "pyxmlsec-csharp-rsa-seal.xml",
    "signxml-ec-seal.xml",
    "xmlsec1cli-ec-seal-pretty.xml",
    "pyxmlsec-ksefclient-ec-personal.xml",
];

#[test]
fn typed_errors_for_each_kind_of_bad_input() {
    let code = |doc: &[u8]| xades::verify(doc).unwrap_err().ksef_code();
    // Not XML / not UTF-8 / DTD and entities.
    assert_eq!(code(b""), Some(9101));
    assert_eq!(code(b"<a><b></a>"), Some(9101));
    assert_eq!(code(&[0xff, 0xfe, 0x00]), Some(9101));
    assert_eq!(
        code(b"<!DOCTYPE a [<!ENTITY x SYSTEM 'file:///etc/passwd'>]><a>&x;</a>"),
        Some(9101)
    );
    assert_eq!(
        code(b"<!DOCTYPE a [<!ENTITY a 'aaaaaaaaaa'><!ENTITY b '&a;&a;&a;&a;&a;&a;'>]><a>&b;</a>"),
        Some(9101)
    );
    // No signature.
    assert!(matches!(
        xades::verify(&fixture("input/auth-token-request.xml")),
        Err(XadesError::NoSignature)
    ));

    let good = String::from_utf8(fixture("pyxmlsec-csharp-rsa-seal.xml")).unwrap();
    xades::verify(good.as_bytes()).unwrap();

    // Two signatures (a copy appended).
    let start = good.find("<Signature ").unwrap();
    let end = good.find("</Signature>").unwrap() + "</Signature>".len();
    let two = format!("{}{}{}", &good[..end], &good[start..end], &good[end..]);
    assert!(matches!(
        xades::verify(two.as_bytes()),
        Err(XadesError::TooManySignatures(2))
    ));

    // Garbage Base64 in the SignatureValue and in the certificate.
    let sv_at = good.find("<SignatureValue>").unwrap() + "<SignatureValue>".len();
    let mut garbage = good.clone();
    garbage.insert_str(sv_at, "!!not*base64!!");
    assert!(matches!(
        xades::verify(garbage.as_bytes()),
        Err(XadesError::InvalidSignature(InvalidSignature::Base64(
            "SignatureValue"
        )))
    ));
    let c_at = good.find("<X509Certificate>").unwrap() + "<X509Certificate>".len();
    let mut garbage = good.clone();
    garbage.insert_str(c_at, "%%");
    assert!(matches!(
        xades::verify(garbage.as_bytes()),
        Err(XadesError::InvalidSignature(InvalidSignature::Base64(_)))
    ));
    // Valid Base64 that is not a certificate.
    let c_end = good[c_at..].find('<').unwrap() + c_at;
    let notcert = format!("{}AAAA{}", &good[..c_at], &good[c_end..]);
    assert!(matches!(
        xades::verify(notcert.as_bytes()),
        Err(XadesError::InvalidSignature(InvalidSignature::Certificate(
            _
        ))) | Err(XadesError::InvalidSignature(
            InvalidSignature::SigningCertificate(_)
        ))
    ));

    // Truncated SignatureValue (valid Base64 of fewer bytes).
    let sv_end = good[sv_at..].find('<').unwrap() + sv_at;
    let truncated = format!("{}AAAA{}", &good[..sv_at], &good[sv_end..]);
    assert!(matches!(
        xades::verify(truncated.as_bytes()),
        Err(XadesError::InvalidSignature(
            InvalidSignature::SignatureMismatch
        ))
    ));

    // Unknown algorithms.
    let unknown = good.replace(
        "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        "http://example.org/rot13",
    );
    assert!(matches!(
        xades::verify(unknown.as_bytes()),
        Err(XadesError::InvalidSignature(
            InvalidSignature::UnsupportedAlgorithm(_)
        ))
    ));
    let unknown = good.replacen(
        "http://www.w3.org/2001/04/xmlenc#sha256",
        "http://www.w3.org/2001/04/xmldsig-more#md5",
        1,
    );
    assert!(matches!(
        xades::verify(unknown.as_bytes()),
        Err(XadesError::InvalidSignature(
            InvalidSignature::UnsupportedAlgorithm(_)
        ))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let _ = xades::verify(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes)
            && let Ok(doc) = c14n::parse(s)
        {
            let _ = c14n::canonicalize(doc.root(), &Options::new(Method::EXCLUSIVE));
        }
    }

    #[test]
    fn xml_like_strings_never_panic(s in "(<[a-z:]{1,4}( [a-z:]{1,3}=['\"][^<]{0,6}['\"])?>|</[a-z:]{1,4}>|<!--x-->|<\\?p d\\?>|&amp;|&#[0-9]{1,3};|[a-z \n]{0,5}|xmlns(:[a-z]{1,2})?=\"u\"){0,30}") {
        let _ = xades::verify(s.as_bytes());
        if let Ok(doc) = c14n::parse(&s) {
            for m in [Method::INCLUSIVE_10, Method::INCLUSIVE_11_WITH_COMMENTS, Method::EXCLUSIVE] {
                let once = c14n::canonicalize(doc.root(), &Options::new(m));
                // Canonical output is itself well-formed and a fixed point of canonicalization.
                let again = c14n::canonicalize_str(std::str::from_utf8(&once).unwrap(), m).unwrap();
                prop_assert_eq!(once, again);
            }
        }
    }

    #[test]
    fn mutated_signed_documents_never_panic(
        which in 0..VALID.len(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0u8..3, any::<u8>()), 1..4),
    ) {
        let mut doc = fixture(VALID[which]);
        for (at, op, byte) in edits {
            let i = at.index(doc.len());
            match op {
                0 => doc[i] = byte,
                1 => { doc.remove(i); }
                _ => doc.insert(i, byte),
            }
        }
        // Mostly an error; a change in insignificant whitespace may still verify. Never a panic.
        if let Err(e) = xades::verify(&doc) {
            prop_assert!(e.ksef_code().is_some());
        }
    }
}

#[test]
fn deep_nesting_does_not_overflow_the_stack() {
    let depth = 200_000;
    let mut s = String::with_capacity(depth * 7 + 200);
    s.push_str("<r xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\">");
    s.push_str(&"<a>".repeat(depth));
    s.push_str(&"</a>".repeat(depth));
    s.push_str("<ds:Signature><ds:SignedInfo/></ds:Signature></r>");
    let out = c14n::canonicalize_str(&s, Method::INCLUSIVE_10).unwrap();
    assert!(out.starts_with(b"<r xmlns:ds=\"http://www.w3.org/2000/09/xmldsig#\"><a><a>"));
    assert!(
        out.ends_with(b"</a></a><ds:Signature><ds:SignedInfo></ds:SignedInfo></ds:Signature></r>")
    );
    assert_eq!(out.len(), s.len() + 15); // <ds:SignedInfo/> became start and end tags
    assert!(xades::verify(s.as_bytes()).is_err());
}
