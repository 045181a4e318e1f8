//! XAdES signing cost: the raw signature (RSA-2048 PKCS#1 v1.5, P-256 ECDSA) as the baseline,
//! against the whole XAdES signature of an AuthTokenRequest with the same key; plus verification
//! and exclusive c14n alone. The goal: the XAdES machinery (parsing, c14n, digests, XML, Base64)
//! adds at most 0.1 ms on top of the raw signature.

// Bench output goes to the terminal.
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use ksef_crypto::c14n::{self, Method, Options};
use ksef_crypto::cert::Certificate;
use ksef_crypto::keys::PrivateKey;
use ksef_crypto::signer::{InMemorySigner, SignatureAlgorithm, Signer, SignerError};
use ksef_crypto::xades::{self, FixedClock, SignOptions};

fn read(rel: &str) -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fixtures/xades")
            .join(rel),
    )
    .unwrap()
}

fn signer(base: &str) -> InMemorySigner {
    let key = PrivateKey::from_pem(&read(&format!("{base}.key.pem")), None).unwrap();
    let cert = Certificate::from_pem(&read(&format!("{base}.cert.pem"))).unwrap();
    InMemorySigner::new(key, cert).unwrap()
}

fn bench(c: &mut Criterion) {
    let doc = read("input/auth-token-request.xml");
    let opts = SignOptions::default().with_clock(FixedClock(time::OffsetDateTime::UNIX_EPOCH));
    // A SignedInfo-sized message for the raw baseline.
    let signed_info = vec![b'x'; 1100];

    for (label, base) in [
        ("rsa2048", "xmlsec1cli-rsa-seal"),
        ("p256", "xmlsec1cli-ec-seal"),
    ] {
        let s = signer(base);
        let mut g = c.benchmark_group(format!("xades_sign_{label}"));
        g.bench_function("raw_signature (baseline)", |b| {
            b.iter(|| s.sign(black_box(&signed_info)).unwrap())
        });
        g.bench_function("xades_sign_auth_token_request", |b| {
            b.iter(|| xades::sign_with(black_box(&doc), &s, &opts).unwrap())
        });
        #[cfg(feature = "aws-lc")]
        {
            let key = PrivateKey::from_pem(&read(&format!("{base}.key.pem")), None).unwrap();
            let cert = Certificate::from_pem(&read(&format!("{base}.cert.pem"))).unwrap();
            let fast = ksef_crypto::signer::AwsLcSigner::new(&key, cert).unwrap();
            g.bench_function("aws_lc raw_signature", |b| {
                b.iter(|| fast.sign(black_box(&signed_info)).unwrap())
            });
            g.bench_function("aws_lc xades_sign_auth_token_request", |b| {
                b.iter(|| xades::sign_with(black_box(&doc), &fast, &opts).unwrap())
            });
        }
        g.finish();

        let signed = xades::sign_with(&doc, &s, &opts).unwrap();
        c.bench_function(&format!("xades_verify_{label}"), |b| {
            b.iter(|| xades::verify(black_box(&signed)).unwrap())
        });
    }

    // The machinery alone: a signer that returns a fixed 64-byte value instead of signing.
    struct NoopSigner(Vec<u8>);
    impl Signer for NoopSigner {
        fn algorithm(&self) -> SignatureAlgorithm {
            SignatureAlgorithm::EcdsaP256Sha256
        }
        fn certificate_der(&self) -> &[u8] {
            &self.0
        }
        fn sign(&self, _: &[u8]) -> Result<Vec<u8>, SignerError> {
            Ok(vec![7; 64])
        }
    }
    let noop = NoopSigner(signer("xmlsec1cli-ec-seal").certificate_der().to_vec());
    c.bench_function("xades_sign_machinery_only (no-op signer)", |b| {
        b.iter(|| xades::sign_with(black_box(&doc), &noop, &opts).unwrap())
    });

    let signed = read("pyxmlsec-csharp-rsa-seal-pretty.xml");
    let text = std::str::from_utf8(&signed).unwrap();
    c.bench_function("exc_c14n_parse_and_canonicalize_signed_request", |b| {
        b.iter(|| {
            let d = c14n::parse(black_box(text)).unwrap();
            c14n::canonicalize(d.root(), &Options::new(Method::EXCLUSIVE))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
