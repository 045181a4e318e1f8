//! The Rust snippets of `docs/*.md`, compiled here so their API names stay real.
//!
//! `every_doc_snippet_line_is_compiled_here` checks that each line of every ```rust block in
//! docs/ appears in this file, so a guide cannot drift from the code below without a failing test.
//! The functions are compiled, not run (they talk to KSeF); the guides' flows run for real in
//! crates/ksef/tests and in this crate's `flows` tests.

// The snippets print as user code would.
#![allow(
    dead_code,
    unused_variables,
    clippy::unwrap_used,
    clippy::print_stdout,
    clippy::print_stderr
)]

use std::path::{Path, PathBuf};

mod authentication {
    use ksef::model::{ContextIdentifier, Environment, Nip};
    use ksef::secrecy::SecretString;
    use ksef::{KsefClient, SavedAuth, TestIdentity};

    async fn files(nip: Nip, p12: Vec<u8>, password: String) -> Result<(), ksef::Error> {
        let client = KsefClient::new(Environment::Production)?;
        let ctx = ContextIdentifier::Nip(nip.clone());
        // Certificate and key files (PEM or DER; the password only for an encrypted key):
        let auth = client
            .auth()
            .xades_files("seal.pem", "seal.key", None, ctx.clone())
            .await?;
        // A PKCS#12 bundle:
        let auth = client
            .auth()
            .xades_pkcs12(&p12, &password, ctx.clone())
            .await?;
        // TEST only: a generated self-signed certificate (refused on DEMO and PRODUCTION):
        let identity = TestIdentity::Seal {
            name: "My company".into(),
            nip: nip.to_string(),
        };
        let auth = client.auth().test_certificate(&identity, ctx).await?;
        Ok(())
    }

    async fn token(client: ksef::KsefClient, nip: Nip) -> Result<(), ksef::Error> {
        let token = SecretString::from(std::env::var("KSEF_TOKEN").unwrap_or_default());
        let auth = client
            .auth()
            .ksef_token(&token, ContextIdentifier::Nip(nip))
            .await?;
        Ok(())
    }

    async fn signer(
        client: ksef::KsefClient,
        signer: &dyn ksef::crypto::signer::Signer,
        nip: Nip,
    ) -> Result<(), ksef::Error> {
        let auth = client
            .auth()
            .xades(signer, ContextIdentifier::Nip(nip))
            .await?;
        Ok(())
    }

    async fn save_restore(
        client: ksef::KsefClient,
        auth: ksef::AuthenticatedClient,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let saved: SavedAuth = auth.save().await; // serde; holds the tokens: store it like a password
        let json = serde_json::to_string(&saved)?;
        // ... after a restart:
        let saved: SavedAuth = serde_json::from_str(&json)?;
        let auth = client.auth().restore(saved)?; // no network call
        auth.refresh().await?; // or let it refresh itself a minute before expiry
        auth.revoke().await?; // log out: the tokens stop working
        Ok(())
    }
}

mod sessions {
    use std::sync::Arc;

    use ksef::batch::{BatchBuilder, BatchInvoice, Compression};
    use ksef::crypto::encryption::SessionKey;
    use ksef::model::FormCode;
    use ksef::{BatchSendOptions, Error, SavedAuth, SavedOnlineSession};

    async fn online(auth: ksef::AuthenticatedClient, xml: Vec<u8>) -> Result<(), Error> {
        let session = auth.sessions().open_online().await?; // FA(3); key generated and wrapped
        let sent = session.send_invoice(&xml).await?; // checked, encrypted, hashed, sent
        match sent.wait().await {
            Ok(accepted) => println!("KSeF number {}", accepted.ksef_number),
            Err(Error::InvoiceRejected { status, .. }) => println!("rejected: {status}"),
            Err(e) => return Err(e),
        }
        let closed = session.close().await?; // waits for processing and the session UPO
        for page in closed.fetch_upo().await? {
            std::fs::write("session-upo.xml", &page.bytes).ok();
        }
        Ok(())
    }

    async fn scoped(auth: ksef::AuthenticatedClient, xml: Vec<u8>) -> Result<(), Error> {
        let (number, closed) = auth
            .sessions()
            .with_online(FormCode::Fa3, async |s| {
                Ok(s.send_invoice(&xml).await?.wait().await?.ksef_number)
            })
            .await?; // closed also when the body fails
        Ok(())
    }

    async fn resume(
        client: ksef::KsefClient,
        session: ksef::OnlineSession,
        auth_json: String,
        xml: Vec<u8>,
    ) -> Result<(), Box<dyn std::error::Error>> {
        let saved: SavedOnlineSession = session.save(); // no network call
        let json = serde_json::to_string(&saved)?; // holds the AES key: store it like a private key
        // ... after a restart:
        let auth = client
            .auth()
            .restore(serde_json::from_str::<SavedAuth>(&auth_json)?)?;
        let session = auth
            .sessions()
            .resume_online(serde_json::from_str(&json)?)?;
        session.send_invoice(&xml).await?.wait().await?;
        session.close().await?;
        Ok(())
    }

    async fn batch(
        auth: ksef::AuthenticatedClient,
        files: Vec<std::path::PathBuf>,
    ) -> Result<(), Error> {
        let key = SessionKey::generate()?;
        let package = BatchBuilder::new(key.clone())
            .compression(Compression::Zip)
            .build(files.into_iter().map(BatchInvoice::path))?; // streams; parts in temp files
        let options = BatchSendOptions {
            concurrency: 4,
            progress: Some(Arc::new(|p: ksef::UploadProgress| {
                eprintln!(
                    "{}/{} parts, {} bytes",
                    p.parts_done, p.parts_total, p.bytes_done
                )
            })),
            ..BatchSendOptions::default()
        };
        let outcome = auth.sessions().send_batch(&package, &key, &options).await?;
        for invoice in &outcome.invoices {
            match &invoice.outcome {
                Some(Ok(number)) => println!("{}: {number}", invoice.name),
                Some(Err(status)) => println!("{}: rejected {status}", invoice.name),
                None => println!("{}: not reported", invoice.name),
            }
        }
        Ok(())
    }

    async fn status(
        auth: ksef::AuthenticatedClient,
        session: ksef::model::ReferenceNumber,
        invoice: ksef::model::ReferenceNumber,
    ) -> Result<(), Error> {
        let s = auth.sessions().status(&session).await?; // any session, any time
        let i = auth.sessions().invoice_status(&session, &invoice).await?;
        println!("{} {:?}", s.status.code, i.ksef_number);
        Ok(())
    }
}

mod retrieval {
    use ksef::model::KsefNumber;
    use ksef::model::api::{InvoiceQueryFilters, QueryInvoicesMetadataResponse};
    use ksef::model::operations::QueryInvoiceMetadataQuery;

    async fn download(
        auth: ksef::AuthenticatedClient,
        number: KsefNumber,
    ) -> Result<(), ksef::Error> {
        let (t, n) = (auth.client().transport(), &number);
        let doc = auth
            .call(|token| async move { t.download_invoice(&token, n).await })
            .await?;
        std::fs::write(format!("{number}.xml"), &doc.into_value().bytes).ok();
        Ok(())
    }

    async fn query(auth: ksef::AuthenticatedClient) -> Result<(), Box<dyn std::error::Error>> {
        let filters: InvoiceQueryFilters = serde_json::from_value(serde_json::json!({
            "subjectType": "Subject2",
            "dateRange": {"dateType": "PermanentStorage", "from": "2026-01-01T00:00:00Z"}
        }))?;
        let query = QueryInvoiceMetadataQuery {
            page_offset: Some(0),
            page_size: Some(250),
            sort_order: None,
        };
        let t = auth.client().transport();
        let (q, f) = (&query, &filters);
        let page: QueryInvoicesMetadataResponse = auth
            .call(|token| async move { t.query_invoice_metadata(&token, q, f).await })
            .await?
            .into_value();
        println!("{} invoices, more: {}", page.invoices.len(), page.has_more);
        Ok(())
    }
}

mod tokens {
    use ksef::model::api::{GenerateTokenRequest, TokenPermissionType};

    async fn generate(auth: ksef::AuthenticatedClient) -> Result<(), ksef::Error> {
        let body = GenerateTokenRequest {
            description: "invoice reader for the accounting system".into(),
            permissions: vec![TokenPermissionType::InvoiceRead],
        };
        let t = auth.client().transport();
        let b = &body;
        let generated = auth
            .call(|token| async move { t.generate_token(&token, b).await })
            .await?
            .into_value();
        // generated.token is shown once: store it in a secret store now.
        Ok(())
    }
}

mod certificates {
    use ksef::crypto::cert::DistinguishedName;
    use ksef::crypto::csr::CertificateRequest;
    use ksef::crypto::keys::{KeyKind, PrivateKey};

    fn csr() -> Result<(), ksef::crypto::Error> {
        let key = PrivateKey::generate(KeyKind::P256)?; // EC P-256: what KSeF recommends
        let dn = DistinguishedName::seal("My company", "5265877635", "My company")?;
        let csr = CertificateRequest::new(&dn, &key)?; // exactly the DN, nothing added
        std::fs::write("ksef.csr", csr.to_pem()).ok();
        let body = csr.to_base64(); // what POST /certificates/enrollments wants in `csr`
        Ok(())
    }
}

mod offline_qr {
    use ksef::SendOptions;
    use ksef::crypto::cert::Certificate;
    use ksef::crypto::keys::PrivateKey;
    use ksef::model::{Environment, KsefNumber, Nip};
    use ksef::qr::ContextType;

    fn codes(
        xml: &[u8],
        nip: &Nip,
        offline_cert: &Certificate,
        offline_key: &PrivateKey,
    ) -> Result<(), ksef::Error> {
        let date = time::macros::date!(2026 - 02 - 01); // P_1, the issue date
        let env = Environment::Production;
        let kod1 = ksef::qr::invoice_link(&env, nip, date, xml)?;
        let svg = ksef::qr::invoice_qr_svg(&kod1, None)?; // labelled OFFLINE until sent
        let kod2 = ksef::qr::certificate_link(
            &env,
            ContextType::Nip,
            nip.as_str(),
            nip,
            offline_cert,
            offline_key,
            xml,
        )?;
        let svg2 = ksef::qr::certificate_qr_svg(&kod2.url)?; // labelled CERTYFIKAT
        Ok(())
    }

    async fn send_offline(
        session: &ksef::OnlineSession,
        xml: Vec<u8>,
    ) -> Result<KsefNumber, ksef::Error> {
        let options = SendOptions {
            offline_mode: true,
            ..SendOptions::default()
        };
        let accepted = session
            .send_invoice_with(&xml, &options)
            .await?
            .wait()
            .await?;
        Ok(accepted.ksef_number)
    }

    async fn technical_correction(
        session: &ksef::OnlineSession,
        rejected_xml: Vec<u8>,
        fixed_xml: Vec<u8>,
    ) -> Result<(), ksef::Error> {
        // The original exactly as it was sent, and the invoice with the fault fixed:
        let accepted = session
            .send_technical_correction(&rejected_xml, &fixed_xml)
            .await?
            .wait()
            .await?; // the correction's KSeF number
        Ok(())
    }

    async fn technical_correction_refused(
        session: &ksef::OnlineSession,
        rejected_xml: Vec<u8>,
        fixed_xml: Vec<u8>,
    ) -> Result<(), ksef::Error> {
        use ksef::{CorrectionRefusal, Error};
        match session
            .send_technical_correction(&rejected_xml, &fixed_xml)
            .await
        {
            Ok(sent) => println!("KSeF number {}", sent.wait().await?.ksef_number),
            // 21166: the original already has an accepted correction (one per original)
            Err(Error::TechnicalCorrectionRefused {
                reason: CorrectionRefusal::AlreadyCorrected,
                ..
            }) => {}
            // 21167: the original was accepted (send a correcting invoice, KOR, instead)
            Err(Error::TechnicalCorrectionRefused {
                reason: CorrectionRefusal::NotCorrectable,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }
}

mod simulator {
    use ksef::KsefClient;

    async fn embedded() -> Result<(), Box<dyn std::error::Error>> {
        let sim = ksef_sim::Simulator::builder()
            .seed(42) // reproducible reference numbers
            .rate_limits(false) // fast polling in tests
            .start()
            .await?;
        let client = KsefClient::builder_for_url(&sim.base_url()).build()?; // TEST semantics
        // ... client.auth().test_certificate(...), client.testdata()?, sessions ...
        sim.shutdown().await;
        Ok(())
    }
}

mod errors {
    use ksef::Error;

    fn report(e: &Error) {
        if e.is_retryable() {
            // 429 after the retry budget, 5xx, timeouts, status 500/550: try again later
        }
        if let Some(code) = e.ksef_code() {
            eprintln!("KSeF exception {code:?}: {e}");
        }
        if let Some(status) = e.status_code() {
            eprintln!("asynchronous status {status}"); // 415, 440, 450 …
        }
    }
}

fn rust_blocks(md: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in md.lines() {
        let t = line.trim_start();
        match &mut current {
            None if t.starts_with("```rust") => current = Some(String::new()),
            Some(block) if t.starts_with("```") => {
                out.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    out
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn every_doc_snippet_line_is_compiled_here() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs");
    let here = squash(include_str!("doc_snippets.rs"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(&docs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    files.sort();
    let mut checked = 0;
    for file in files {
        let md = std::fs::read_to_string(&file).unwrap();
        for block in rust_blocks(&md) {
            for line in block.lines().map(str::trim).filter(|l| !l.is_empty()) {
                assert!(
                    here.contains(&squash(line)),
                    "{}: snippet line not compiled in tests/doc_snippets.rs: {line}",
                    file.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 50, "only {checked} snippet lines found");
}
