//! Encryption round trips, streaming adapters and bad input.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use std::io::{Read, Write};

use ksef_crypto::Error;
use ksef_crypto::encryption::{self, SessionKey, ciphertext_len};
use ksef_crypto::hash;
use ksef_crypto::keys::PrivateKey;
use proptest::prelude::*;

fn data(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn rsa() -> PrivateKey {
    PrivateKey::from_pem(&data("rsa2048.pkcs8.pem"), None).unwrap()
}

fn sample(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i.wrapping_mul(7919) >> 3) as u8).collect()
}

#[test]
fn session_key_wrap_and_unwrap() {
    let k = SessionKey::generate().unwrap();
    let priv_key = rsa();
    let info = k
        .encryption_info(&priv_key.public_key(), Some("pkid"))
        .unwrap();
    assert_eq!(info.initialization_vector.len(), 24);
    assert_eq!(info.public_key_id.as_deref(), Some("pkid"));
    let back = SessionKey::from_encryption_info(
        &priv_key,
        &info.encrypted_symmetric_key,
        &info.initialization_vector,
    )
    .unwrap();
    assert_eq!(back.key_bytes(), k.key_bytes());
    assert_eq!(back.iv(), k.iv());
    // Two fresh keys differ.
    assert_ne!(SessionKey::generate().unwrap().key_bytes(), k.key_bytes());
}

#[test]
fn ksef_token_round_trip_keeps_pipes() {
    let priv_key = rsa();
    let token = "20251010-EC-2B7F4A1E6D-9C0A3B5E7D-1F|nip-1111111111|abcdef0123456789";
    let enc =
        encryption::encrypt_ksef_token(token, 1_760_000_000_123, &priv_key.public_key()).unwrap();
    assert_eq!(enc.len(), 344); // Base64 of 256 bytes
    let (tok, ts) = encryption::decrypt_ksef_token(&enc, &priv_key).unwrap();
    assert_eq!(tok.as_str(), token);
    assert_eq!(ts, 1_760_000_000_123);
}

#[test]
fn ec_keys_cannot_do_oaep() {
    let ec = PrivateKey::from_pem(&data("p256.pkcs8.pem"), None).unwrap();
    assert!(matches!(
        encryption::oaep_encrypt(&ec.public_key(), b"x"),
        Err(Error::UnsupportedAlgorithm(_))
    ));
}

#[test]
fn invoice_encryption_values() {
    let k = SessionKey::generate().unwrap();
    let xml = sample(5500);
    let inv = k.encrypt_invoice(&xml);
    assert_eq!(inv.invoice_size, 5500);
    assert_eq!(inv.encrypted_invoice_size, 5504);
    assert_eq!(inv.ciphertext.len(), 5504);
    assert_eq!(inv.invoice_hash.as_str(), hash::sha256_base64(&xml));
    assert_eq!(
        inv.encrypted_invoice_hash.as_str(),
        hash::sha256_base64(&inv.ciphertext)
    );
    assert_eq!(
        hash::decode_base64(&inv.ciphertext_base64(), "x").unwrap(),
        inv.ciphertext
    );
    assert_eq!(k.decrypt(&inv.ciphertext).unwrap(), xml);
    // Size examples from the KSeF documentation.
    assert_eq!(ciphertext_len(16037), 16048);
    assert_eq!(ciphertext_len(22_425_060), 22_425_072);
}

#[test]
fn streaming_matches_one_shot() {
    let k = SessionKey::generate().unwrap();
    for n in [0usize, 5, 16, 100_000, 256 * 1024, 256 * 1024 + 1, 700_001] {
        let pt = sample(n);
        let one = k.encrypt_invoice(&pt);

        // Writer, fed in odd-sized pieces.
        let mut w = k.encrypting_writer(Vec::new());
        for piece in pt.chunks(7777) {
            w.write_all(piece).unwrap();
        }
        let (ct, d) = w.finish().unwrap();
        assert_eq!(ct, one.ciphertext, "n={n}");
        assert_eq!(d.plaintext_hash, one.invoice_hash);
        assert_eq!(d.ciphertext_hash, one.encrypted_invoice_hash);
        assert_eq!(d.plaintext_size, n as u64);
        assert_eq!(d.ciphertext_size, one.encrypted_invoice_size);

        // Reader.
        let mut r = k.encrypting_reader(&pt[..]);
        assert!(r.digests().is_none() || n == usize::MAX);
        let mut ct2 = Vec::new();
        let mut small = [0u8; 1000];
        loop {
            let m = r.read(&mut small).unwrap();
            if m == 0 {
                break;
            }
            ct2.extend_from_slice(&small[..m]);
        }
        assert_eq!(ct2, one.ciphertext);
        assert_eq!(r.digests().unwrap(), d);

        // encrypt_stream / decrypt_stream.
        let mut out = Vec::new();
        assert_eq!(k.encrypt_stream(&pt[..], &mut out).unwrap(), d);
        assert_eq!(out, one.ciphertext);
        let mut back = Vec::new();
        let dd = k.decrypt_stream(&out[..], &mut back).unwrap();
        assert_eq!(back, pt);
        assert_eq!(dd, d);

        // Decrypting reader, read in small pieces.
        let mut dr = k.decrypting_reader(&one.ciphertext[..]);
        let mut back2 = Vec::new();
        let mut small = [0u8; 999];
        loop {
            let m = dr.read(&mut small).unwrap();
            if m == 0 {
                break;
            }
            back2.extend_from_slice(&small[..m]);
        }
        assert_eq!(back2, pt);
        assert_eq!(dr.digests(), Some(&d));

        // Decrypting writer in odd pieces.
        let mut dw = k.decrypting_writer(Vec::new());
        for piece in one.ciphertext.chunks(33) {
            dw.write_all(piece).unwrap();
        }
        assert_eq!(dw.finish().unwrap().0, pt);
    }
}

#[test]
fn bad_ciphertexts_are_typed_errors() {
    let k = SessionKey::from_parts(&[1; 32], &[2; 16]).unwrap();
    let other = SessionKey::from_parts(&[3; 32], &[2; 16]).unwrap();
    let ct = k.encrypt(b"hello, world, this is an invoice");
    assert!(matches!(k.decrypt(&[]), Err(Error::Decrypt(_))));
    assert!(matches!(
        k.decrypt(&ct[..ct.len() - 1]),
        Err(Error::Decrypt(_))
    ));
    // Wrong key: padding check fails (overwhelmingly likely; fixed keys make it deterministic).
    assert!(matches!(other.decrypt(&ct), Err(Error::Decrypt(_))));
    let mut bad = ct.clone();
    let last = bad.len() - 1;
    bad[last] ^= 0x55;
    assert!(matches!(k.decrypt(&bad), Err(Error::Decrypt(_))));
    let mut sink = Vec::new();
    assert!(matches!(
        k.decrypt_stream(&ct[..ct.len() - 3], &mut sink),
        Err(Error::Decrypt(_))
    ));
    assert!(matches!(
        SessionKey::from_parts(&[0; 16], &[0; 16]),
        Err(Error::InvalidLength {
            expected: 32,
            actual: 16,
            ..
        })
    ));
    assert!(matches!(
        SessionKey::from_parts(&[0; 32], b"00112233445566778899aabbccddeeff"),
        Err(Error::InvalidLength { expected: 16, .. })
    ));
    let priv_key = rsa();
    assert!(matches!(
        SessionKey::from_encryption_info(&priv_key, "!!!", "AAAAAAAAAAAAAAAAAAAAAA=="),
        Err(Error::Base64 { .. })
    ));
    assert!(matches!(
        SessionKey::from_encryption_info(&priv_key, "AAAA", "AAAAAAAAAAAAAAAAAAAAAA=="),
        Err(Error::Oaep(_))
    ));
    assert!(matches!(
        encryption::decrypt_ksef_token("bm90IGEgdG9rZW4=", &priv_key),
        Err(Error::Oaep(_))
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn round_trip_any_plaintext(pt in proptest::collection::vec(any::<u8>(), 0..3000), key in any::<[u8; 32]>(), iv in any::<[u8; 16]>()) {
        let k = SessionKey::from_parts(&key, &iv).unwrap();
        let ct = k.encrypt(&pt);
        prop_assert_eq!(ct.len() as u64, ciphertext_len(pt.len() as u64));
        prop_assert_eq!(k.decrypt(&ct).unwrap(), pt);
    }

    #[test]
    fn decrypt_never_panics(ct in proptest::collection::vec(any::<u8>(), 0..200)) {
        let k = SessionKey::from_parts(&[9; 32], &[8; 16]).unwrap();
        let _ = k.decrypt(&ct);
        let mut sink = Vec::new();
        let _ = k.decrypt_stream(&ct[..], &mut sink);
    }

    #[test]
    fn base64_decoding_never_panics(s in ".{0,80}") {
        let _ = hash::decode_base64(&s, "x");
        let _ = hash::decode_base64url(&s, "x");
        let _ = ksef_crypto::cert::Certificate::from_base64_der(&s);
    }
}
