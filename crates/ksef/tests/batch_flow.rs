//! Batch sessions end to end over HTTP against the in-process simulator: the `batch` example's
//! flow with 1 000 invoices in several parts (KSeF numbers for all, a signed session UPO), a
//! batch with invalid invoices (each reported by file name with its reason), a part upload
//! that fails once and is retried, and 10 000 invoices sent then exported (§3.21).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

#[path = "../examples/batch.rs"]
#[allow(dead_code)]
mod example;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use example::{generate, invoice_xml, login, send};
use futures_util::TryStreamExt;
use ksef::batch::{BatchBuilder, BatchInvoice, Compression};
use ksef::crypto::encryption::SessionKey;
use ksef::model::{Nip, api};
use ksef::{BatchSendOptions, ExportOptions, KsefClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const NIP: &str = "5265877635";
const OTHER_NIP: &str = "7010002139";

async fn sim(public_url: Option<String>) -> (checked::CheckedSim, KsefClient) {
    let mut b = ksef_sim::Simulator::builder().rate_limits(false);
    if let Some(u) = public_url {
        b = b.public_url(u);
    }
    let sim = b.start_checked().await.unwrap();
    // Short polls: a 10 000-invoice session or export is ready within seconds, and the default
    // backoff (up to 5 s) would add idle time to every wait.
    let client = KsefClient::builder_for_url(&sim.base_url())
        .poll_options(ksef::PollOptions {
            initial_delay: std::time::Duration::from_millis(20),
            max_delay: std::time::Duration::from_millis(500),
            ..Default::default()
        })
        .build()
        .unwrap();
    (sim, client)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_invoices_in_parts_accepted_with_session_upo() {
    let (sim, client) = sim(None).await;
    let nip: Nip = NIP.parse().unwrap();
    let auth = login(&client, &nip).await.unwrap();
    let invoices = generate(&nip, "K", 1_000).unwrap();
    let names: Vec<String> = invoices.iter().map(|i| i.name().to_owned()).collect();
    // Small parts so that several are uploaded in parallel.
    let outcome = send(&auth, invoices, 300_000).await.unwrap();
    assert_eq!(outcome.session.successful_invoice_count(), 1_000);
    assert_eq!(outcome.session.failed_invoice_count(), 0);
    assert_eq!(outcome.invoices.len(), 1_000);
    let mut numbers = HashSet::new();
    for (inv, name) in outcome.invoices.iter().zip(&names) {
        assert_eq!(&inv.name, name, "results come in input order");
        let number = match &inv.outcome {
            Some(Ok(k)) => k,
            other => panic!("{}: {other:?}", inv.name),
        };
        assert_eq!(number.seller_nip(), nip);
        assert!(
            numbers.insert(number.to_string()),
            "KSeF numbers are unique"
        );
    }
    let pages = outcome.session.fetch_upo().await.unwrap();
    assert_eq!(pages.len(), 1);
    let upo = &pages[0];
    assert_eq!(upo.upo.documents.len(), 1_000);
    ksef::crypto::xades::verify(&upo.bytes).unwrap();
    // Each UPO document carries the hash of the file the SDK packed.
    let hashes: HashSet<String> = outcome
        .invoices
        .iter()
        .map(|i| i.hash.as_str().to_owned())
        .collect();
    assert!(
        upo.upo
            .documents
            .iter()
            .all(|d| hashes.contains(d.invoice_hash.as_str()))
    );
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_invoices_are_reported_by_file_name_with_their_reasons() {
    let (sim, client) = sim(None).await;
    let nip: Nip = NIP.parse().unwrap();
    let other: Nip = OTHER_NIP.parse().unwrap();
    let auth = login(&client, &nip).await.unwrap();
    let schema_invalid = String::from_utf8(invoice_xml(&nip, "V/3").unwrap())
        .unwrap()
        .replacen("<P_12>23</P_12>", "<P_12>24</P_12>", 1);
    let invoices = vec![
        BatchInvoice::bytes("ok-1.xml", invoice_xml(&nip, "V/1").unwrap()),
        BatchInvoice::bytes("other-seller.xml", invoice_xml(&other, "V/2").unwrap()),
        BatchInvoice::bytes("schema.xml", schema_invalid),
        BatchInvoice::bytes("ok-2.xml", invoice_xml(&nip, "V/4").unwrap()),
        BatchInvoice::bytes("duplicate.xml", invoice_xml(&nip, "V/1").unwrap()),
    ];
    let outcome = send(&auth, invoices, 100_000_000).await.unwrap();
    let code = |name: &str| {
        let inv = outcome.invoices.iter().find(|i| i.name == name).unwrap();
        match inv.outcome.as_ref().unwrap() {
            Ok(_) => 200,
            Err(f) => {
                assert!(!f.description.is_empty());
                f.code
            }
        }
    };
    assert_eq!(code("ok-1.xml"), 200);
    assert_eq!(code("ok-2.xml"), 200);
    assert_eq!(code("other-seller.xml"), 410);
    assert_eq!(code("schema.xml"), 430);
    assert_eq!(code("duplicate.xml"), 440);
    let schema = outcome
        .invoices
        .iter()
        .find(|i| i.name == "schema.xml")
        .unwrap();
    let Some(Err(f)) = &schema.outcome else {
        unreachable!()
    };
    assert!(f.details.iter().any(|d| d.contains("P_12")), "{f:?}");
    assert_eq!(outcome.session.successful_invoice_count(), 2);
    assert_eq!(outcome.session.failed_invoice_count(), 3);
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_no_valid_invoice_fails_445_and_still_reports_each_one() {
    let (sim, client) = sim(None).await;
    let nip: Nip = NIP.parse().unwrap();
    let other: Nip = OTHER_NIP.parse().unwrap();
    let auth = login(&client, &nip).await.unwrap();
    let key = SessionKey::generate().unwrap();
    let package = BatchBuilder::new(key.clone())
        .build(generate(&other, "N", 3).unwrap())
        .unwrap();
    let err = auth
        .sessions()
        .send_batch(&package, &key, &BatchSendOptions::default())
        .await
        .unwrap_err();
    let ksef::Error::SessionFailed { reference, status } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(status.code, 445, "{err}");
    let results = auth
        .sessions()
        .batch_results(&reference.parse().unwrap(), &package)
        .await
        .unwrap();
    assert_eq!(results.len(), 3);
    for r in &results {
        let Some(Err(f)) = &r.outcome else {
            panic!("{r:?}")
        };
        assert_eq!(f.code, 410, "{}: {f}", r.name);
    }
    sim.shutdown().await;
}

/// A proxy in front of the simulator's storage: the first `fail` PUTs get a 503 (and the
/// connection is closed); everything else is piped to the simulator unchanged.
async fn flaky_storage(target: std::net::SocketAddr, fail: usize) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    let failed = Arc::new(AtomicUsize::new(0));
    let f = failed.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let failed = f.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                if head.starts_with(b"PUT ")
                    && failed
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                            (n < fail).then_some(n + 1)
                        })
                        .is_ok()
                {
                    let reply = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                    let _ = client.write_all(reply).await;
                    return;
                }
                let Ok(mut server) = TcpStream::connect(target).await else {
                    return;
                };
                if server.write_all(&head).await.is_err() {
                    return;
                }
                let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
            });
        }
    });
    (origin, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_part_upload_that_fails_once_is_retried() {
    // The simulator writes the proxy's origin into its presigned upload URLs.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let sim_addr = listener.local_addr().unwrap();
    drop(listener);
    let (proxy, failed) = flaky_storage(sim_addr, 1).await;
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .bind(sim_addr)
        .public_url(proxy)
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .build()
        .unwrap();
    let nip: Nip = NIP.parse().unwrap();
    let auth = login(&client, &nip).await.unwrap();
    let key = SessionKey::generate().unwrap();
    let package = BatchBuilder::new(key.clone())
        .compression(Compression::TarGz)
        .max_part_size(2_000)
        .build(generate(&nip, "R", 60).unwrap())
        .unwrap();
    assert!(package.parts().len() >= 2);
    let progress = Arc::new(AtomicUsize::new(0));
    let p = progress.clone();
    let options = BatchSendOptions {
        concurrency: 2,
        part_retries: 2,
        progress: Some(Arc::new(move |_| {
            p.fetch_add(1, Ordering::SeqCst);
        })),
        ..BatchSendOptions::default()
    };
    let outcome = auth
        .sessions()
        .send_batch(&package, &key, &options)
        .await
        .unwrap();
    assert_eq!(failed.load(Ordering::SeqCst), 1, "one upload was refused");
    assert_eq!(progress.load(Ordering::SeqCst), package.parts().len());
    assert_eq!(outcome.session.successful_invoice_count(), 60);
    assert!(
        outcome
            .invoices
            .iter()
            .all(|i| matches!(i.outcome, Some(Ok(_))))
    );
    sim.shutdown().await;
}

/// §3.21 (C `BatchSession_ExportOf10kInvoices_ShouldNotBeTruncated`): 10 000 invoices sent in
/// one batch session (build, upload, processing, results, session UPO), then exported through
/// the SDK (export → wait → download → decrypt → unpack): the package is not truncated and every
/// invoice arrives exactly once, its XML hashing to what the batch sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_invoices_sent_in_a_batch_then_exported_exactly_once() {
    let (sim, client) = sim(None).await;
    let nip: Nip = NIP.parse().unwrap();
    let auth = login(&client, &nip).await.unwrap();
    let from =
        ksef::model::DateTime::new(time::OffsetDateTime::now_utc() - time::Duration::minutes(5));
    let invoices = generate(&nip, "T", 10_000).unwrap();
    let started = std::time::Instant::now();
    let outcome = send(&auth, invoices, 100_000_000).await.unwrap();
    let sent = started.elapsed();
    assert_eq!(outcome.session.successful_invoice_count(), 10_000);
    let mut expected: HashMap<String, String> = HashMap::new();
    for inv in &outcome.invoices {
        let Some(Ok(number)) = &inv.outcome else {
            panic!("{}: {:?}", inv.name, inv.outcome)
        };
        expected.insert(number.to_string(), inv.hash.as_str().to_owned());
    }
    assert_eq!(expected.len(), 10_000, "KSeF numbers are unique");
    let pages = outcome.session.fetch_upo().await.unwrap();
    assert_eq!(
        pages.iter().map(|p| p.upo.documents.len()).sum::<usize>(),
        10_000
    );

    let filters: api::InvoiceQueryFilters = serde_json::from_value(serde_json::json!({
        "subjectType": "Subject1",
        "dateRange": {"dateType": "PermanentStorage", "from": from.to_string()},
    }))
    .unwrap();
    // The invoices become visible once stored permanently (shortly after acceptance): wait for
    // the metadata query to report all of them before exporting.
    let stored = wait_until_stored(&auth, &filters, 10_000).await;
    assert_eq!(stored, 10_000);
    let package = auth
        .invoices()
        .export(filters, ExportOptions::default())
        .await
        .unwrap();
    assert!(!package.info().is_truncated, "{:?}", package.info());
    assert_eq!(package.info().invoice_count, 10_000);
    let mut seen: HashSet<String> = HashSet::new();
    let mut items = package.invoices().await.unwrap();
    while let Some(item) = items.try_next().await.unwrap() {
        let number = item.metadata.ksef_number.to_string();
        let hash = expected
            .get(&number)
            .unwrap_or_else(|| panic!("{number} was not sent"));
        assert_eq!(item.metadata.invoice_hash.as_str(), hash);
        let xml = item.xml.unwrap();
        assert_eq!(&ksef::crypto::hash::sha256_base64(&xml), hash);
        assert!(seen.insert(number), "each invoice arrives once");
    }
    assert_eq!(seen.len(), 10_000);
    eprintln!(
        "10 000 invoices: sent and processed in {sent:.2?}, exported and unpacked after {:.2?}",
        started.elapsed()
    );
    sim.shutdown().await;
}

/// Counts the invoices the metadata query returns, polling until `want` of them match.
async fn wait_until_stored(
    auth: &ksef::AuthenticatedClient,
    filters: &api::InvoiceQueryFilters,
    want: usize,
) -> usize {
    for _ in 0..200 {
        let n = auth
            .invoices()
            .query(filters.clone())
            .try_fold(0usize, |n, _| async move { Ok(n + 1) })
            .await
            .unwrap();
        if n >= want {
            return n;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("fewer than {want} invoices were stored");
}
