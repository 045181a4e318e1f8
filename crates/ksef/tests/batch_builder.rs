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

/// Our own zip writer (see `batch/zip_stream.rs`) against independent readers: the `zip` crate,
/// Info-ZIP `unzip -t` and Python's `zipfile`, with more than 65 535 entries (ZIP64 end records)
/// and a non-ASCII name (UTF-8 flag). `unzip` and `python3` are run where installed.
#[test]
fn zip_with_many_entries_reads_in_other_tools() {
    const N: usize = 70_000;
    let name = |i: usize| {
        if i == 7 {
            "faktura-zażółć.xml".to_owned()
        } else {
            format!("{i:06}.xml")
        }
    };
    let xml = |i: usize| format!("<a>{}</a>", i * 7919 % 100_003).into_bytes();
    let key = SessionKey::generate().unwrap();
    let package = BatchBuilder::new(key.clone())
        .max_invoices(N)
        .build((0..N).map(|i| BatchInvoice::bytes(name(i), xml(i))))
        .unwrap();
    assert_eq!(package.invoices().len(), N);
    assert_eq!(package.invoices().name(7), Some("faktura-zażółć.xml"));
    let packed = package.invoices().get(N - 1).unwrap();
    assert_eq!(packed.name, name(N - 1));
    assert_eq!(packed.hash.as_str(), sha256_base64(&xml(N - 1)));
    assert_eq!(packed.size, xml(N - 1).len() as u64);
    let archive = reassemble(&package, &key).unwrap();

    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(archive.as_slice())).unwrap();
    assert_eq!(zip.len(), N);
    for i in [0, 7, 65_535, 65_536, N - 1] {
        let mut f = zip.by_index(i).unwrap();
        assert_eq!(f.name().unwrap(), name(i));
        let mut out = Vec::new();
        f.read_to_end(&mut out).unwrap();
        assert_eq!(out, xml(i));
    }

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("batch.zip");
    std::fs::write(&path, &archive).unwrap();
    match std::process::Command::new("unzip")
        .arg("-tqq")
        .arg(&path)
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "unzip -t: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) => eprintln!("unzip not run: {e}"),
    }
    let script = "import sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        assert z.testzip() is None\n\
        names = z.namelist()\n\
        print(len(names), names[7], z.read(names[-1]).decode())\n";
    match std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
    {
        Ok(out) => {
            assert!(
                out.status.success(),
                "python zipfile: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                format!(
                    "{N} faktura-zażółć.xml {}",
                    String::from_utf8_lossy(&xml(N - 1))
                )
            );
        }
        Err(e) => eprintln!("python3 not run: {e}"),
    }
}
