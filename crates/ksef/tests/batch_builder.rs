//! The batch builder standalone: the parts decrypt, concatenate and unpack back to the inputs;
//! metadata (sizes, hashes, ordinals) matches what KSeF will check.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

use std::io::Read;

use ksef::Error;
use ksef::batch::{BatchBuilder, BatchInvoice, Compression, reassemble};
use ksef::crypto::encryption::SessionKey;
use ksef::crypto::hash::sha256_base64;

fn invoices(n: usize) -> Vec<(String, Vec<u8>)> {
    (0..n)
        .map(|i| {
            let body: String = (0..50)
                .map(|j| format!("<L n=\"{j}\">{}</L>", i * 7919 % 1000 + j))
                .collect();
            (
                format!("inv-{i:05}.xml"),
                format!("<?xml version=\"1.0\"?><Faktura>{body}</Faktura>").into_bytes(),
            )
        })
        .collect()
}

fn check(
    package: &ksef::batch::BatchPackage,
    key: &SessionKey,
    inputs: &[(String, Vec<u8>)],
) -> Vec<u8> {
    let archive = reassemble(package, key).unwrap();
    assert_eq!(archive.len() as u64, package.file_size());
    assert_eq!(sha256_base64(&archive), package.file_hash().as_str());
    let info = package.batch_file_info();
    let mut plain_total = 0;
    for (i, (part, meta)) in package.parts().iter().zip(&info.file_parts).enumerate() {
        let enc = part.read().unwrap();
        assert_eq!(meta.ordinal_number as usize, i + 1);
        assert_eq!(enc.len() as u64, meta.file_size);
        assert_eq!(sha256_base64(&enc), meta.file_hash.as_str());
        // Each part is encrypted on its own with the same key and IV.
        assert_eq!(
            key.decrypt(&enc).unwrap().len() as u64,
            part.plaintext_size()
        );
        plain_total += part.plaintext_size();
    }
    assert_eq!(plain_total, package.file_size());
    for (packed, (name, xml)) in package.invoices().iter().zip(inputs) {
        assert_eq!(&packed.name, name);
        assert_eq!(packed.hash.as_str(), sha256_base64(xml));
        assert_eq!(packed.size, xml.len() as u64);
    }
    archive
}

#[test]
fn zip_split_into_small_parts_round_trips() {
    let key = SessionKey::generate().unwrap();
    let inputs = invoices(300);
    let package = BatchBuilder::new(key.clone())
        .max_part_size(20_000)
        .build(
            inputs
                .iter()
                .map(|(n, x)| BatchInvoice::bytes(n.clone(), x.clone())),
        )
        .unwrap();
    assert!(package.parts().len() > 1, "{} parts", package.parts().len());
    assert!(
        package.parts()[..package.parts().len() - 1]
            .iter()
            .all(|p| p.plaintext_size() == 20_000)
    );
    let archive = check(&package, &key, &inputs);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive)).unwrap();
    assert_eq!(zip.len(), inputs.len());
    for (name, xml) in &inputs {
        let mut f = zip.by_name(name).unwrap();
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        assert_eq!(&out, xml);
    }
}

#[test]
fn tar_gz_from_paths_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = invoices(40);
    for (name, xml) in &inputs {
        std::fs::write(dir.path().join(name), xml).unwrap();
    }
    let key = SessionKey::generate().unwrap();
    let package = BatchBuilder::new(key.clone())
        .compression(Compression::TarGz)
        .max_part_size(3_000)
        .temp_dir(dir.path())
        .build(
            inputs
                .iter()
                .map(|(n, _)| BatchInvoice::path(dir.path().join(n))),
        )
        .unwrap();
    assert_eq!(package.compression(), Compression::TarGz);
    let archive = check(&package, &key, &inputs);
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(archive.as_slice()));
    let mut seen = 0;
    for (entry, (name, xml)) in tar.entries().unwrap().zip(&inputs) {
        let mut entry = entry.unwrap();
        assert_eq!(entry.path().unwrap().to_str().unwrap(), name);
        let mut out = Vec::new();
        entry.read_to_end(&mut out).unwrap();
        assert_eq!(&out, xml);
        seen += 1;
    }
    assert_eq!(seen, inputs.len());
    // Temporary part files go away with the package.
    let paths: Vec<_> = package
        .parts()
        .iter()
        .map(|p| p.path().to_owned())
        .collect();
    drop(package);
    assert!(paths.iter().all(|p| !p.exists()));
}

#[test]
fn limits_and_bad_inputs_are_typed_errors() {
    let key = SessionKey::generate().unwrap();
    let inputs = invoices(200);
    let too_many_parts = BatchBuilder::new(key.clone())
        .max_part_size(1_000)
        .max_parts(3)
        .build(
            inputs
                .iter()
                .map(|(n, x)| BatchInvoice::bytes(n.clone(), x.clone())),
        );
    let err = too_many_parts.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    assert!(err.to_string().contains("3 parts"), "{err}");

    let err = BatchBuilder::new(key.clone())
        .max_invoices(10)
        .build(
            inputs
                .iter()
                .map(|(n, x)| BatchInvoice::bytes(n.clone(), x.clone())),
        )
        .unwrap_err();
    assert!(err.to_string().contains("10 000"), "{err}");

    let err = BatchBuilder::new(key.clone())
        .build([BatchInvoice::bytes("a.xml", b"<a>\xff</a>".to_vec())])
        .unwrap_err();
    assert!(
        err.to_string().contains("a.xml") && err.to_string().contains("UTF-8"),
        "{err}"
    );

    let err = BatchBuilder::new(key.clone())
        .build([
            BatchInvoice::bytes("a.xml", "<a/>"),
            BatchInvoice::bytes("a.xml", "<b/>"),
        ])
        .unwrap_err();
    assert!(err.to_string().contains("unique"), "{err}");

    let err = BatchBuilder::new(key.clone())
        .build(Vec::new())
        .unwrap_err();
    assert!(err.to_string().contains("at least one"), "{err}");

    let err = BatchBuilder::new(key)
        .build([BatchInvoice::path("/nonexistent/x.xml")])
        .unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}
