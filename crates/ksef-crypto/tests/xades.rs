//! XAdES: verification of every third-party fixture (fixtures/xades/manifest.json), our own
//! signatures (round trip, snapshot with a fixed clock and key, tampering), and xmlsec1 as an
//! independent verifier of what we produce.

// Test code: a panic is a test failure, and skip notes go to stderr.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::path::{Path, PathBuf};
use std::process::Command;

use ksef_crypto::cert::Certificate;
use ksef_crypto::keys::PrivateKey;
use ksef_crypto::signer::{InMemorySigner, SignatureAlgorithm, Signer, SignerError};
use ksef_crypto::xades::{self, FixedClock, InvalidSignature, SignOptions, XadesError};
use time::macros::datetime;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/xades")
}

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

fn signer(base: &str) -> InMemorySigner {
    let key = PrivateKey::from_pem(&read(&format!("{base}.key.pem")), None).unwrap();
    let cert = Certificate::from_pem(&read(&format!("{base}.cert.pem"))).unwrap();
    InMemorySigner::new(key, cert).unwrap()
}

fn fixed() -> SignOptions {
    SignOptions::default().with_clock(FixedClock(datetime!(2026-11-25 02:17:23 UTC)))
}

#[test]
fn manifest_fixtures_verify_and_negatives_are_rejected() {
    let manifest: serde_json::Value = serde_json::from_slice(&read("manifest.json")).unwrap();
    let files = manifest["files"].as_array().unwrap();
    assert!(files.len() >= 34);
    for f in files {
        let name = f["file"].as_str().unwrap();
        assert_eq!(f["expected"]["verdict"], "valid", "{name}");
        let v = xades::verify(&read(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
        let cert = Certificate::from_pem(&read(f["cert"].as_str().unwrap())).unwrap();
        assert_eq!(
            v.certificate().der(),
            cert.der(),
            "{name}: signer certificate"
        );
        assert!(v.signing_time().is_some(), "{name}: SigningTime");
        assert!(v.signing_time().unwrap().year() == 2026, "{name}");
    }
    let negatives = manifest["negative"].as_array().unwrap();
    assert!(negatives.len() >= 27);
    for f in negatives {
        let name = f["file"].as_str().unwrap();
        assert_eq!(f["expected"]["verdict"], "invalid", "{name}");
        let err = xades::verify(&read(name)).expect_err(name);
        let code = err.ksef_code().unwrap();
        assert!(matches!(code, 9103 | 9105), "{name}: {err} ({code})");
        // The reason must fit the mutation.
        let case = f["case"].as_str().unwrap_or("");
        let ok = match case {
            "a" | "b" => matches!(
                err,
                XadesError::InvalidSignature(InvalidSignature::DigestMismatch(_))
            ),
            // signxml signs KeyInfo too, so there the KeyInfo reference digest fails first.
            "c" | "g" => matches!(
                err,
                XadesError::InvalidSignature(
                    InvalidSignature::SigningCertificate(_)
                        | InvalidSignature::SignatureMismatch
                        | InvalidSignature::DigestMismatch(_)
                )
            ),
            "d" => matches!(
                err,
                XadesError::InvalidSignature(InvalidSignature::SignatureMismatch)
            ),
            "e" | "e2" => matches!(err, XadesError::TooManySignatures(2)),
            "f" => matches!(
                err,
                XadesError::InvalidSignature(InvalidSignature::ExternalReference(_))
            ),
            _ => true,
        };
        assert!(
            ok,
            "{name} (case {case}) rejected for the wrong reason: {err}"
        );
        eprintln!("{name}: {err}");
    }
}

const INPUTS: &[&str] = &[
    "input/auth-token-request.xml",
    "input/auth-token-request-pretty.xml",
];

#[test]
fn sign_then_verify_rsa_ec_pss() {
    for base in ["xmlsec1cli-rsa-seal", "xmlsec1cli-ec-personal", "pss"] {
        let s = if base == "pss" {
            signer("xmlsec1cli-rsa-seal").with_rsa_pss().unwrap()
        } else {
            signer(base)
        };
        for input in INPUTS {
            let doc = read(input);
            let signed = xades::sign_with(&doc, &s, &fixed()).unwrap();
            // The input is kept byte for byte around the inserted signature.
            let text = std::str::from_utf8(&signed).unwrap();
            let at = text.find("<ds:Signature ").unwrap();
            assert_eq!(&signed[..at], &doc[..at]);
            let doc_text = std::str::from_utf8(&doc).unwrap();
            let close = doc_text.rfind("</AuthTokenRequest>").unwrap();
            assert_eq!(&doc_text[..close], &text[..at]);
            assert!(text.ends_with(&doc_text[close..]));
            assert!(text[at..].contains("</ds:Signature></AuthTokenRequest>"));

            let v = xades::verify(&signed).unwrap_or_else(|e| panic!("{base} {input}: {e}"));
            assert_eq!(v.certificate().der(), s.certificate_der());
            assert_eq!(v.signing_time(), Some(datetime!(2026-11-25 02:17:23 UTC)));
            assert_eq!(v.signature_method(), s.algorithm().uri());
        }
    }
}

#[test]
fn ecdsa_signature_value_is_raw_r_s() {
    let s = signer("xmlsec1cli-ec-seal");
    assert_eq!(s.algorithm(), SignatureAlgorithm::EcdsaP256Sha256);
    assert_eq!(s.sign(b"data").unwrap().len(), 64);
}

#[test]
fn snapshot_with_fixed_clock_and_key() {
    // RSA PKCS#1 v1.5 and RFC 6979 ECDSA are deterministic, so the whole output is.
    let doc = read("input/auth-token-request.xml");
    for (base, snap) in [
        ("xmlsec1cli-rsa-seal", "signed-rsa.xml"),
        ("xmlsec1cli-ec-seal", "signed-ec.xml"),
    ] {
        let signed = xades::sign_with(&doc, &signer(base), &fixed()).unwrap();
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/snapshots")
            .join(snap);
        if std::env::var("UPDATE_SNAPSHOTS").is_ok_and(|v| v == "1") {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, &signed).unwrap();
        }
        let want = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_SNAPSHOTS=1)", path.display()));
        assert_eq!(
            String::from_utf8_lossy(&signed),
            String::from_utf8_lossy(&want),
            "{snap} changed (review, then UPDATE_SNAPSHOTS=1)"
        );
    }
}

#[test]
fn self_closing_root_and_prolog_kept() {
    let doc = b"<?xml version=\"1.0\"?>\n<!-- c --><r xmlns=\"urn:r\" a=\"1\"/>\n";
    let signed = xades::sign_with(doc, &signer("xmlsec1cli-ec-seal"), &fixed()).unwrap();
    let text = String::from_utf8(signed.clone()).unwrap();
    assert!(text.starts_with(
        "<?xml version=\"1.0\"?>\n<!-- c --><r xmlns=\"urn:r\" a=\"1\"><ds:Signature"
    ));
    assert!(text.ends_with("</ds:Signature></r>\n"));
    xades::verify(&signed).unwrap();
}

#[test]
fn tampering_is_detected() {
    let s = signer("xmlsec1cli-rsa-seal");
    let signed = xades::sign_with(&read(INPUTS[0]), &s, &fixed()).unwrap();
    let text = String::from_utf8(signed).unwrap();

    let nip = text.replace("5265877635</Nip>", "5265877641</Nip>");
    assert!(matches!(
        xades::verify(nip.as_bytes()),
        Err(XadesError::InvalidSignature(InvalidSignature::DigestMismatch(u))) if u.is_empty()
    ));
    let time = text.replace("2026-11-25T02:17:23Z", "2026-11-25T02:17:24Z");
    assert!(matches!(
        xades::verify(time.as_bytes()),
        Err(XadesError::InvalidSignature(InvalidSignature::DigestMismatch(u))) if u == "#SignedProperties"
    ));
    // A changed SignedInfo byte (the algorithm attribute of a transform) breaks the signature.
    let si = text.replacen("<ds:Reference URI=\"\">", "<ds:Reference URI=\"\" >", 1);
    xades::verify(si.as_bytes()).unwrap(); // whitespace inside a tag is not significant
    let start = text.find("<ds:SignatureValue>").unwrap() + 19;
    let mut sv = text.clone().into_bytes();
    sv[start + 5] = if sv[start + 5] == b'A' { b'B' } else { b'A' };
    assert!(matches!(
        xades::verify(&sv),
        Err(XadesError::InvalidSignature(
            InvalidSignature::SignatureMismatch
        ))
    ));
    // Signing twice is refused (KSeF accepts exactly one signature).
    assert!(matches!(
        xades::sign(text.as_bytes(), &s),
        Err(XadesError::CannotSign(_))
    ));
}

#[test]
fn key_must_match_certificate() {
    let key = PrivateKey::from_pem(&read("xmlsec1cli-ec-seal.key.pem"), None).unwrap();
    let cert = Certificate::from_pem(&read("xmlsec1cli-ec-personal.cert.pem")).unwrap();
    assert!(matches!(
        InMemorySigner::new(key, cert),
        Err(SignerError::KeyMismatch)
    ));
    let key = PrivateKey::from_pem(&read("xmlsec1cli-rsa-seal.key.pem"), None).unwrap();
    let cert = Certificate::from_pem(&read("ksef2-rsa-seal.cert.pem")).unwrap();
    assert!(matches!(
        InMemorySigner::new(key, cert),
        Err(SignerError::KeyMismatch)
    ));
    assert!(signer("xmlsec1cli-ec-seal").with_rsa_pss().is_err());
}

/// A signer outside this process: the key is only reachable through a closure, as with an HSM.
struct RemoteSigner {
    inner: InMemorySigner,
    calls: std::sync::atomic::AtomicUsize,
}

impl Signer for RemoteSigner {
    fn algorithm(&self) -> SignatureAlgorithm {
        self.inner.algorithm()
    }
    fn certificate_der(&self) -> &[u8] {
        self.inner.certificate_der()
    }
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, SignerError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.inner.sign(data)
    }
}

#[test]
fn custom_signer_plugs_in() {
    let remote = RemoteSigner {
        inner: signer("xmlsec1cli-ec-seal"),
        calls: Default::default(),
    };
    let signed = xades::sign(&read(INPUTS[0]), &remote).unwrap();
    assert_eq!(remote.calls.load(std::sync::atomic::Ordering::SeqCst), 1);
    xades::verify(&signed).unwrap();

    struct Broken(Vec<u8>);
    impl Signer for Broken {
        fn algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::EcdsaP256Sha256
        }
        fn certificate_der(&self) -> &[u8] {
            &self.0
        }
        fn sign(&self, _: &[u8]) -> Result<Vec<u8>, SignerError> {
            Err(SignerError::Failed("card removed".into()))
        }
    }
    let broken = Broken(remote.inner.certificate_der().to_vec());
    assert!(matches!(
        xades::sign(&read(INPUTS[0]), &broken),
        Err(XadesError::Signer(SignerError::Failed(_)))
    ));
}

// ---------------------------------------------------------------------------------------------
// xmlsec1 as an independent verifier.

fn oracles_required() -> bool {
    std::env::var("KSEF_REQUIRE_ORACLES").is_ok_and(|v| v == "1")
}

fn xmlsec1_verify(cert_pem: &Path, file: &Path) -> bool {
    Command::new("xmlsec1")
        .args([
            "--verify",
            "--enabled-key-data",
            "x509",
            "--enabled-reference-uris",
            "empty,same-doc",
            "--id-attr:Id",
            "http://uri.etsi.org/01903/v1.3.2#:SignedProperties",
            "--trusted-pem",
        ])
        .arg(cert_pem)
        .args(["--verification-gmt-time", "2027-01-01 00:00:00"])
        .arg(file)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn xmlsec1_accepts_our_signatures_and_rejects_tampered_ones() {
    if Command::new("xmlsec1").arg("--version").output().is_err() {
        assert!(
            !oracles_required(),
            "xmlsec1 missing but KSEF_REQUIRE_ORACLES=1"
        );
        eprintln!("note: xmlsec1 not installed; skipping");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for base in [
        "xmlsec1cli-rsa-seal",
        "xmlsec1cli-ec-seal",
        "ksef2-ec-personal",
    ] {
        let s = signer(base);
        let cert = fixtures().join(format!("{base}.cert.pem"));
        for (i, input) in INPUTS.iter().enumerate() {
            let signed = xades::sign(&read(input), &s).unwrap();
            let good = dir.path().join(format!("{base}-{i}.xml"));
            std::fs::write(&good, &signed).unwrap();
            assert!(
                xmlsec1_verify(&cert, &good),
                "xmlsec1 rejected {}",
                good.display()
            );

            // One byte of signed content changed: the NIP's last digit.
            let text = String::from_utf8(signed).unwrap();
            let at = text.find("</Nip>").unwrap() - 1;
            let mut bad = text.into_bytes();
            bad[at] = if bad[at] == b'5' { b'6' } else { b'5' };
            let badf = dir.path().join(format!("{base}-{i}-bad.xml"));
            std::fs::write(&badf, &bad).unwrap();
            assert!(
                !xmlsec1_verify(&cert, &badf),
                "xmlsec1 accepted a tampered file"
            );
            assert!(xades::verify(&bad).is_err());
        }
    }
}

#[test]
fn signing_certificate_v2_round_trip_matches_other_signers_and_xmlsec1() {
    let xmlsec1 = Command::new("xmlsec1").arg("--version").output().is_ok();
    assert!(
        xmlsec1 || !oracles_required(),
        "xmlsec1 missing but KSEF_REQUIRE_ORACLES=1"
    );
    let dir = tempfile::tempdir().unwrap();
    let opts = fixed().with_signing_certificate_v2();
    for base in [
        "xmlsec1cli-rsa-seal",
        "xmlsec1cli-ec-seal",
        "xmlsec1cli-ec-personal",
    ] {
        let s = signer(base);
        let signed = xades::sign_with(&read(INPUTS[0]), &s, &opts).unwrap();
        let text = String::from_utf8(signed.clone()).unwrap();
        assert!(
            text.contains("<xades:SigningCertificateV2><xades:Cert>"),
            "{base}"
        );
        assert!(!text.contains("<xades:IssuerSerial>"), "{base}");
        let v = xades::verify(&signed).unwrap();
        assert_eq!(v.certificate().der(), s.certificate_der());
        // The IssuerSerialV2 is byte-for-byte what the fixture's own signer wrote for the same
        // certificate (the fixtures made with the xmlsec1 CLI carry one).
        let ours = between(&text, "<xades:IssuerSerialV2>", "</xades:IssuerSerialV2>");
        let fixture = String::from_utf8(read(&format!("{base}.xml"))).unwrap();
        let theirs = between(
            &fixture,
            "<xades:IssuerSerialV2>",
            "</xades:IssuerSerialV2>",
        );
        assert_eq!(ours, theirs.trim(), "{base}");
        if xmlsec1 {
            let f = dir.path().join(format!("{base}-v2.xml"));
            std::fs::write(&f, &signed).unwrap();
            let cert = fixtures().join(format!("{base}.cert.pem"));
            assert!(
                xmlsec1_verify(&cert, &f),
                "xmlsec1 rejected {}",
                f.display()
            );
        }
    }
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> &'a str {
    let a = s.find(start).unwrap_or_else(|| panic!("no {start}")) + start.len();
    let b = a + s[a..].find(end).unwrap();
    &s[a..b]
}

// ---------------------------------------------------------------------------------------------
// Variants other signers produce, made by editing our output and re-signing SignedInfo.

/// Replaces the SignatureValue with a fresh signature over the (edited) SignedInfo; `der` turns
/// an ECDSA r||s value into DER, as some non-conforming signers emit.
fn resign(text: &str, s: &InMemorySigner, der: bool) -> String {
    use base64::Engine as _;
    use ksef_crypto::c14n::{self, Method, Options};
    let doc = c14n::parse(text).unwrap();
    let si = doc
        .descendants()
        .find(|n| n.tag_name().name() == "SignedInfo")
        .unwrap();
    let bytes = c14n::canonicalize(si, &Options::new(Method::EXCLUSIVE));
    let mut sv = s.sign(&bytes).unwrap();
    if der {
        let sig = ksef_crypto::p256::ecdsa::Signature::from_slice(&sv).unwrap();
        sv = sig.to_der().as_bytes().to_vec();
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(sv);
    let start = text.find("<ds:SignatureValue>").unwrap() + "<ds:SignatureValue>".len();
    let end = text.find("</ds:SignatureValue>").unwrap();
    format!("{}{}{}", &text[..start], b64, &text[end..])
}

#[test]
fn xpath_transform_and_der_ecdsa_are_accepted() {
    let s = signer("xmlsec1cli-ec-seal");
    let signed =
        String::from_utf8(xades::sign_with(&read(INPUTS[1]), &s, &fixed()).unwrap()).unwrap();

    // XPath not(ancestor-or-self::ds:Signature) selects the same nodes as enveloped-signature.
    let xpath = signed.replacen(
        r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></ds:Transform>"#,
        r#"<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"><ds:XPath>not(ancestor-or-self::ds:Signature)</ds:XPath></ds:Transform>"#,
        1,
    );
    assert_ne!(xpath, signed);
    xades::verify(resign(&xpath, &s, false).as_bytes()).unwrap();
    // Any other XPath is refused.
    let other = xpath.replace("not(ancestor-or-self::ds:Signature)", "self::node()");
    assert!(matches!(
        xades::verify(resign(&other, &s, false).as_bytes()),
        Err(XadesError::InvalidSignature(
            InvalidSignature::UnsupportedAlgorithm(_)
        ))
    ));
    // Without any transform that removes the signature, the digest no longer matches.
    let none = signed.replacen(
        r#"<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"></ds:Transform>"#,
        "",
        1,
    );
    assert!(matches!(
        xades::verify(resign(&none, &s, false).as_bytes()),
        Err(XadesError::InvalidSignature(
            InvalidSignature::DigestMismatch(_)
        ))
    ));

    // DER-encoded ECDSA SignatureValue (not XMLDSig-conforming, tolerated).
    xades::verify(resign(&signed, &s, true).as_bytes()).unwrap();

    // The SignedProperties reference removed from SignedInfo: rejected even though the
    // SignatureValue is valid.
    let a = signed.find("<ds:Reference Type=").unwrap();
    let b = signed[a..].find("</ds:Reference>").unwrap() + a + "</ds:Reference>".len();
    let no_sp = format!("{}{}", &signed[..a], &signed[b..]);
    assert!(matches!(
        xades::verify(resign(&no_sp, &s, false).as_bytes()),
        Err(XadesError::InvalidSignature(
            InvalidSignature::SignedProperties(_)
        ))
    ));
    // Only the SignedProperties signed (the document reference removed): rejected.
    let a = signed.find("<ds:Reference URI=\"\">").unwrap();
    let b = signed[a..].find("</ds:Reference>").unwrap() + a + "</ds:Reference>".len();
    let no_doc = format!("{}{}", &signed[..a], &signed[b..]);
    assert!(matches!(
        xades::verify(resign(&no_doc, &s, false).as_bytes()),
        Err(XadesError::InvalidSignature(
            InvalidSignature::DocumentNotSigned
        ))
    ));
    // An IssuerSerial with another serial number: rejected by the XAdES check.
    let serial_at = signed.find("<ds:X509SerialNumber>").unwrap() + "<ds:X509SerialNumber>".len();
    let mut wrong = signed.clone();
    wrong.insert(serial_at, '1');
    // Re-digest the SignedProperties so only the XAdES check can catch it.
    let wrong = redigest_signed_properties(&wrong);
    assert!(matches!(
        xades::verify(resign(&wrong, &s, false).as_bytes()),
        Err(XadesError::InvalidSignature(
            InvalidSignature::SigningCertificate(_)
        ))
    ));
}

#[test]
fn issuer_names_are_compared_as_names() {
    let s = signer("xmlsec1cli-ec-seal");
    let signed =
        String::from_utf8(xades::sign_with(&read(INPUTS[0]), &s, &fixed()).unwrap()).unwrap();
    let a = signed.find("<ds:X509IssuerName>").unwrap() + "<ds:X509IssuerName>".len();
    let b = signed[a..].find('<').unwrap() + a;
    let ours = &signed[a..b];
    assert_eq!(
        ours,
        "C=PL,CN=KSeF Fixture xmlsec1cli EC,2.5.4.97=VATPL-5265877635,O=KSeF Fixture xmlsec1cli EC"
    );
    let with_issuer = |name: &str| {
        let t = format!("{}{}{}", &signed[..a], name, &signed[b..]);
        xades::verify(resign(&redigest_signed_properties(&t), &s, false).as_bytes())
    };
    // The same name written the .NET way (forward order, ", ", OID.2.5.4.97): accepted.
    with_issuer("O=KSeF Fixture xmlsec1cli EC, OID.2.5.4.97=VATPL-5265877635, CN=KSeF Fixture xmlsec1cli EC, C=PL").unwrap();
    // A different organisation: rejected.
    assert!(matches!(
        with_issuer("C=PL,CN=KSeF Fixture xmlsec1cli EC,2.5.4.97=VATPL-5265877635,O=Someone Else"),
        Err(XadesError::InvalidSignature(
            InvalidSignature::SigningCertificate(_)
        ))
    ));
}

fn redigest_signed_properties(text: &str) -> String {
    use base64::Engine as _;
    use ksef_crypto::c14n::{self, Method, Options};
    use sha2::Digest as _;
    let doc = c14n::parse(text).unwrap();
    let sp = doc
        .descendants()
        .find(|n| n.tag_name().name() == "SignedProperties")
        .unwrap();
    let d = sha2::Sha256::digest(c14n::canonicalize(sp, &Options::new(Method::EXCLUSIVE)));
    let b64 = base64::engine::general_purpose::STANDARD.encode(d);
    let r = text.find("<ds:Reference Type=").unwrap();
    let start = text[r..].find("<ds:DigestValue>").unwrap() + r + "<ds:DigestValue>".len();
    let end = text[start..].find('<').unwrap() + start;
    format!("{}{}{}", &text[..start], b64, &text[end..])
}

#[test]
fn byte_order_mark_is_kept() {
    let mut doc = vec![0xef, 0xbb, 0xbf];
    doc.extend_from_slice(&read(INPUTS[1]));
    let signed = xades::sign_with(&doc, &signer("xmlsec1cli-ec-seal"), &fixed()).unwrap();
    assert!(signed.starts_with(&doc[..60]));
    xades::verify(&signed).unwrap();
}

#[cfg(feature = "aws-lc")]
#[test]
fn aws_lc_signer_produces_verifiable_signatures() {
    use ksef_crypto::signer::AwsLcSigner;
    for base in ["xmlsec1cli-rsa-seal", "xmlsec1cli-ec-seal"] {
        let key = PrivateKey::from_pem(&read(&format!("{base}.key.pem")), None).unwrap();
        let cert = Certificate::from_pem(&read(&format!("{base}.cert.pem"))).unwrap();
        let fast = AwsLcSigner::new(&key, cert).unwrap();
        let signed = xades::sign_with(&read(INPUTS[1]), &fast, &fixed()).unwrap();
        xades::verify(&signed).unwrap();
        if base.contains("rsa") {
            // PKCS#1 v1.5 is deterministic: byte-identical to the pure-Rust signer.
            let slow = xades::sign_with(&read(INPUTS[1]), &signer(base), &fixed()).unwrap();
            assert_eq!(signed, slow);
            let pss = fast.with_rsa_pss().unwrap();
            xades::verify(&xades::sign_with(&read(INPUTS[1]), &pss, &fixed()).unwrap()).unwrap();
        }
    }
    let key = PrivateKey::from_pem(&read("xmlsec1cli-ec-seal.key.pem"), None).unwrap();
    let cert = Certificate::from_pem(&read("xmlsec1cli-rsa-seal.cert.pem")).unwrap();
    assert!(matches!(
        AwsLcSigner::new(&key, cert),
        Err(SignerError::KeyMismatch)
    ));
}
