//! `ksef demo`: the seed flow end to end against an embedded simulator, step by step with timings.

use std::path::PathBuf;
use std::time::Instant;

use ksef::model::{ContextIdentifier, InvoiceTemplate, Nip, Pesel};
use ksef::{KsefClient, TestIdentity, TestSubject};
use ksef_model::api::TestDataPermissionType;

use crate::CliError;

/// The Ministry's FA(3) invoice template (MIT), with `#nip#` and `#invoice_number#` placeholders.
const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

/// Prints one step's outcome and duration (stderr when `--json` keeps stdout for the result).
struct Steps {
    json: bool,
    started: Instant,
    step: u32,
}

impl Steps {
    fn done(&mut self, what: &str, since: Instant) {
        self.step += 1;
        let ms = since.elapsed().as_secs_f64() * 1000.0;
        let line = format!("[{:>2}] {what:<62} {ms:>8.1} ms", self.step);
        if self.json {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
    }
}

/// Runs the demo; `Ok` only when every step succeeded.
pub async fn run(out: PathBuf, nip: Option<String>, json: bool) -> Result<(), CliError> {
    let mut steps = Steps {
        json,
        started: Instant::now(),
        step: 0,
    };
    let nip: Nip = match nip {
        Some(n) => n
            .parse()
            .map_err(|e| CliError::invalid(format!("--nip: {e}")))?,
        None => Nip::random(&mut rand::rng()),
    };
    let pesel = Pesel::random(&mut rand::rng());

    let t = Instant::now();
    let sim = ksef_sim::Simulator::builder()
        .start()
        .await
        .map_err(|e| CliError::failed(format!("cannot start the embedded simulator: {e}")))?;
    let base_url = sim.base_url();
    steps.done(&format!("simulator started at {base_url}"), t);

    let result = flow(&mut steps, &base_url, &nip, &pesel, &out).await;
    sim.shutdown().await;
    let summary = result?;

    let total = steps.started.elapsed().as_secs_f64();
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "nip": nip.as_str(),
                "ksefNumber": summary.ksef_number,
                "invoiceUpo": summary.invoice_upo.display().to_string(),
                "sessionUpo": summary.session_upo.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
                "seconds": total,
            })
        );
    } else {
        println!();
        println!("KSeF number: {}", summary.ksef_number);
        println!("invoice UPO: {}", summary.invoice_upo.display());
        for p in &summary.session_upo {
            println!("session UPO: {}", p.display());
        }
        println!("demo completed in {total:.2} s");
    }
    Ok(())
}

struct Summary {
    ksef_number: String,
    invoice_upo: PathBuf,
    session_upo: Vec<PathBuf>,
}

fn failed(step: &str) -> impl Fn(ksef::Error) -> CliError + '_ {
    move |e| CliError::failed(format!("{step} failed: {e}"))
}

async fn flow(
    steps: &mut Steps,
    base_url: &str,
    nip: &Nip,
    pesel: &Pesel,
    out: &std::path::Path,
) -> Result<Summary, CliError> {
    let client = KsefClient::builder_for_url(base_url)
        .build()
        .map_err(failed("creating the client"))?;
    let testdata = client
        .testdata()
        .map_err(failed("opening the test-data API"))?;

    let t = Instant::now();
    testdata
        .create_person(nip, pesel, "ksef-rs demo")
        .await
        .map_err(failed("creating the test person"))?;
    testdata
        .grant_permissions(
            nip,
            &TestSubject::Nip(nip.clone()),
            &[
                TestDataPermissionType::InvoiceWrite,
                TestDataPermissionType::InvoiceRead,
            ],
        )
        .await
        .map_err(failed("granting test permissions"))?;
    steps.done(&format!("test subject NIP {nip} with permissions"), t);

    let t = Instant::now();
    let signer = ksef::test_signer(&TestIdentity::Seal {
        name: "ksef-rs demo".into(),
        nip: nip.to_string(),
    })
    .map_err(failed("generating the test certificate"))?;
    steps.done("self-signed seal certificate (P-256, VATPL-NIP)", t);

    let t = Instant::now();
    let auth = client
        .auth()
        .xades(&signer, ContextIdentifier::Nip(nip.clone()))
        .await
        .map_err(failed("XAdES authentication"))?;
    steps.done(
        &format!("XAdES authentication {}", auth.reference_number()),
        t,
    );

    let t = Instant::now();
    let session = auth
        .sessions()
        .open_online()
        .await
        .map_err(failed("opening the online session"))?;
    steps.done(
        &format!("online FA(3) session {}", session.reference_number()),
        t,
    );

    let invoice_number = format!("DEMO-{}", time::OffsetDateTime::now_utc().unix_timestamp());
    let today = time::OffsetDateTime::now_utc().date();
    let xml = InvoiceTemplate::new(TEMPLATE)
        .fill([
            ("nip", nip.as_str()),
            ("invoice_number", invoice_number.as_str()),
        ])
        .map_err(|e| CliError::failed(format!("filling the invoice template failed: {e}")))?
        .replace("<P_1>2025-09-01</P_1>", &format!("<P_1>{today}</P_1>"));

    let t = Instant::now();
    let sent = session
        .send_invoice(xml.as_bytes())
        .await
        .map_err(failed("sending the invoice"))?;
    steps.done(
        &format!("invoice sent (encrypted) {}", sent.reference_number()),
        t,
    );

    let t = Instant::now();
    let accepted = sent
        .wait()
        .await
        .map_err(failed("waiting for the KSeF number"))?;
    steps.done(&format!("KSeF number {}", accepted.ksef_number), t);

    std::fs::create_dir_all(out)
        .map_err(|e| CliError::failed(format!("cannot create {}: {e}", out.display())))?;
    let t = Instant::now();
    let upo = session
        .upo_by_ksef_number(&accepted.ksef_number)
        .await
        .map_err(failed("fetching the invoice UPO"))?;
    let invoice_upo = out.join(format!("upo-{}.xml", accepted.ksef_number));
    std::fs::write(&invoice_upo, &upo.bytes)
        .map_err(|e| CliError::failed(format!("cannot write {}: {e}", invoice_upo.display())))?;
    steps.done(&format!("invoice UPO ({} bytes)", upo.bytes.len()), t);

    let t = Instant::now();
    let closed = session
        .close()
        .await
        .map_err(failed("closing the session"))?;
    let pages = closed
        .fetch_upo()
        .await
        .map_err(failed("fetching the session UPO"))?;
    let mut session_upo = Vec::new();
    for (i, page) in pages.iter().enumerate() {
        let path = out.join(format!(
            "upo-session-{}-{}.xml",
            closed.reference_number(),
            i + 1
        ));
        std::fs::write(&path, &page.bytes)
            .map_err(|e| CliError::failed(format!("cannot write {}: {e}", path.display())))?;
        session_upo.push(path);
    }
    steps.done(
        &format!(
            "session closed: {} accepted, {} failed, {} UPO page(s)",
            closed.successful_invoice_count(),
            closed.failed_invoice_count(),
            pages.len()
        ),
        t,
    );
    if closed.successful_invoice_count() != 1 {
        return Err(CliError::failed(format!(
            "the session accepted {} invoices, expected 1",
            closed.successful_invoice_count()
        )));
    }
    Ok(Summary {
        ksef_number: accepted.ksef_number.to_string(),
        invoice_upo,
        session_upo,
    })
}
