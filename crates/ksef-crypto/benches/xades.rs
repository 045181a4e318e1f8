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

/// This thread's time on a CPU in ns (Linux `schedstat`): figures taken on a loaded machine then
/// count only the time we ran; `None` elsewhere (then wall time is used).
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Per-call time of `f`, best of 5 runs of `n` calls: (wall, on-CPU).
fn per_call<F: FnMut()>(n: u32, mut f: F) -> (f64, f64) {
    let mut best = (f64::MAX, f64::MAX);
    for _ in 0..5 {
        let c = cpu_ns();
        let t = std::time::Instant::now();
        for _ in 0..n {
            f();
        }
        let wall = t.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let cpu = match (c, cpu_ns()) {
            (Some(a), Some(b)) => (b - a) as f64 / 1e3 / f64::from(n),
            _ => wall,
        };
        best = (best.0.min(wall), best.1.min(cpu));
    }
    best
}

/// Same-run ratios: each backend's whole XAdES signature against its own raw signature of a
/// SignedInfo-sized message (the baseline), wall and on-CPU.
fn ratios(_: &mut Criterion) {
    let doc = read("input/auth-token-request.xml");
    let opts = SignOptions::default().with_clock(FixedClock(time::OffsetDateTime::UNIX_EPOCH));
    let signed_info = vec![b'x'; 1100];
    let report = |label: &str, s: &dyn Signer, n: u32| {
        let raw = per_call(n, || {
            black_box(s.sign(black_box(&signed_info)).unwrap());
        });
        let full = per_call(n, || {
            black_box(xades::sign_with(black_box(&doc), s, &opts).unwrap());
        });
        println!(
            "ratio {label}: raw signature {:.1} µs (on-CPU {:.1}); XAdES signature {:.1} µs \
             (on-CPU {:.1}); machinery on top of the raw signature {:.1} µs on-CPU ({:.2}x raw)",
            raw.0,
            raw.1,
            full.0,
            full.1,
            full.1 - raw.1,
            full.1 / raw.1
        );
    };
    for (label, base, n) in [
        ("rsa2048", "xmlsec1cli-rsa-seal", 50),
        ("p256", "xmlsec1cli-ec-seal", 500),
    ] {
        report(&format!("{label} RustCrypto"), &signer(base), n);
        #[cfg(feature = "aws-lc")]
        {
            let key = PrivateKey::from_pem(&read(&format!("{base}.key.pem")), None).unwrap();
            let cert = Certificate::from_pem(&read(&format!("{base}.cert.pem"))).unwrap();
            let fast = ksef_crypto::signer::AwsLcSigner::new(&key, cert).unwrap();
            report(&format!("{label} aws-lc"), &fast, n * 4);
        }
    }
}

criterion_group!(benches, bench, ratios);
criterion_main!(benches);
