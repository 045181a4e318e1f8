//! Retrieval against the in-process simulator over HTTP: download by KSeF number, the metadata
//! stream across KSeF's truncation (cap lowered to 5 rows), exports (Zip, TarGz, metadata only,
//! several parts, truncated packages followed with `next_from`), and the incremental sync —
//! interrupted by a handler error and by dropping the future, then restarted — ending with
//! every invoice exactly once. Also runs both retrieval examples.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

#[path = "../examples/sync.rs"]
#[allow(dead_code)]
mod example;

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use example::download_export::{retrieval_flow, seller_filters, send_some};
use futures_util::TryStreamExt;
use ksef::invoices::QueryOptions;
use ksef::model::api::{InvoiceQuerySubjectType, SortOrder};
use ksef::model::{ContextIdentifier, DateTime, Nip};
use ksef::sync::MemorySyncStateStore;
use ksef::{AuthenticatedClient, Error, ExportOptions, KsefClient, SyncOptions, TestIdentity};

const NIP: &str = "5265877635";

async fn setup(rows: usize, part_bytes: usize) -> (checked::CheckedSim, AuthenticatedClient) {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
        .retrieval_limits_for_tests(rows, part_bytes)
        .start_checked()
        .await
        .unwrap();
    let client = KsefClient::builder_for_url(&sim.base_url())
        .pacing(false)
        .build()
        .unwrap();
    let nip: Nip = NIP.parse().unwrap();
    let auth = client
        .auth()
        .test_certificate(
            &TestIdentity::Seal {
                name: "retrieval test".into(),
                nip: NIP.into(),
            },
            ContextIdentifier::Nip(nip),
        )
        .await
        .unwrap();
    (sim, auth)
}

fn since() -> DateTime {
    DateTime::new(time::OffsetDateTime::now_utc() - time::Duration::hours(1))
}

fn set(v: &[String]) -> BTreeSet<String> {
    v.iter().cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_query_across_truncation_and_exports() {
    let (sim, auth) = setup(5, 2048).await;
    let nip: Nip = NIP.parse().unwrap();
    let sent = send_some(&auth, &nip, 12, "R").await.unwrap();
    let inv = auth.invoices();

    // Download: the bytes KSeF stores, hash checked; an unknown number is 21164.
    let doc = inv.download(&sent[0].parse().unwrap()).await.unwrap();
    assert_eq!(doc.sha256, ksef::crypto::hash::sha256_base64(&doc.xml));
    assert!(std::str::from_utf8(&doc.xml).unwrap().contains("R/0"));
    let missing = "5265877635-20250826-0100001AF629-AF".parse().unwrap();
    let err = inv.download(&missing).await.unwrap_err();
    assert_eq!(err.ksef_code().map(|c| c.code()), Some(21164), "{err}");

    // The metadata stream moves the window at each truncation (every 5 rows) and deduplicates.
    for (size, order) in [(10, SortOrder::Asc), (10, SortOrder::Desc)] {
        let rows: Vec<_> = inv
            .query_with(
                seller_filters(since()),
                QueryOptions {
                    page_size: size,
                    sort_order: order.clone(),
                },
            )
            .try_collect()
            .await
            .unwrap();
        let numbers: Vec<String> = rows
            .iter()
            .map(|m| m.ksef_number.as_str().to_owned())
            .collect();
        assert_eq!(numbers.len(), 12, "{order:?}: {numbers:?}");
        assert_eq!(set(&numbers), set(&sent), "{order:?}");
        let dates: Vec<_> = rows.iter().map(|m| m.permanent_storage_date).collect();
        let sorted = dates.windows(2).all(|w| {
            if order == SortOrder::Asc {
                w[0] <= w[1]
            } else {
                w[0] >= w[1]
            }
        });
        assert!(sorted, "{order:?}");
    }

    // Exports: each package holds at most 5 invoices; follow `next_from` until not truncated.
    for options in [
        ExportOptions::default(),
        ExportOptions {
            tar_gz: true,
            ..Default::default()
        },
        ExportOptions {
            only_metadata: true,
            ..Default::default()
        },
    ] {
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        let mut filters = seller_filters(since());
        filters.date_range.restrict_to_permanent_storage_hwm_date = Some(true);
        let mut rounds = 0;
        loop {
            rounds += 1;
            let package = inv.export(filters.clone(), options.clone()).await.unwrap();
            let info = package.info().clone();
            assert!(info.invoice_count <= 5);
            if !options.only_metadata {
                assert!(info.parts.len() > 1, "2 KB parts: {info:?}");
            }
            let next = package.next_from().unwrap();
            let items: Vec<_> = package
                .invoices()
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            assert_eq!(items.len() as u64, info.invoice_count);
            for it in items {
                let k = it.metadata.ksef_number.as_str().to_owned();
                if options.only_metadata {
                    assert!(it.xml.is_none());
                } else {
                    let xml = it.xml.unwrap();
                    assert_eq!(
                        ksef::crypto::hash::sha256_base64(&xml),
                        it.metadata.invoice_hash.as_str()
                    );
                }
                *seen.entry(k).or_default() += 1;
            }
            if !info.is_truncated {
                break;
            }
            filters.date_range.from = next;
            assert!(rounds < 10);
        }
        // Adjacent windows repeat the boundary invoice; deduplicated they are all of them.
        let got: Vec<String> = seen.keys().cloned().collect();
        assert_eq!(set(&got), set(&sent), "{options:?}");
        assert!(rounds >= 3, "{options:?}: 12 invoices in packages of 5");
    }

    // A range past the HWM with the restrict flag: export status 420, a typed failure.
    let mut late = seller_filters(DateTime::new(
        time::OffsetDateTime::now_utc() + time::Duration::days(1),
    ));
    late.date_range.to = Some(DateTime::new(
        time::OffsetDateTime::now_utc() + time::Duration::days(2),
    ));
    late.date_range.restrict_to_permanent_storage_hwm_date = Some(true);
    let err = inv
        .export(late, ExportOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::ExportFailed { .. }), "{err}");
    assert_eq!(err.status_code(), Some(420));
    sim.shutdown().await;
}

type Seen = Arc<Mutex<BTreeMap<String, usize>>>;

fn record(seen: &Seen, k: &str) {
    *seen.lock().unwrap().entry(k.to_owned()).or_default() += 1;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_restarts_after_errors_and_cancellation_without_gaps_or_duplicates() {
    sync_restarts(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_via_exports_restarts_without_gaps_or_duplicates() {
    sync_restarts(true).await;
}

async fn sync_restarts(via_export: bool) {
    // A cap of 5 rows makes the sync cross KSeF's truncation too.
    let (sim, auth) = setup(5, 50_000_000).await;
    let nip: Nip = NIP.parse().unwrap();
    let mut sent = send_some(&auth, &nip, 9, "S").await.unwrap();
    let store = Arc::new(MemorySyncStateStore::default());
    let mut options = SyncOptions::new(InvoiceQuerySubjectType::Subject1, since());
    options.via_export = via_export;
    let seen: Seen = Arc::default();

    // Run 1: the handler fails on its 4th invoice.
    let mut calls = 0;
    let s = seen.clone();
    let err = auth
        .sync(store.clone())
        .run(&options, async |inv| {
            calls += 1;
            if calls == 4 {
                return Err(Error::InvalidInput("injected failure".into()));
            }
            record(&s, inv.metadata.ksef_number.as_str());
            Ok(())
        })
        .await
        .unwrap_err();
    assert!(err.to_string().contains("injected"));
    assert_eq!(seen.lock().unwrap().len(), 3);

    // Run 2: dropped midway (the handler is slow; the timeout drops the future).
    let s = seen.clone();
    let sync = auth.sync(store.clone());
    let dropped = tokio::time::timeout(
        Duration::from_millis(400),
        sync.run(&options, async |inv| {
            tokio::time::sleep(Duration::from_millis(100)).await;
            record(&s, inv.metadata.ksef_number.as_str());
            Ok(())
        }),
    )
    .await;
    assert!(dropped.is_err(), "the run should have been cut off");
    let after_drop = seen.lock().unwrap().len();
    // (On a loaded machine the cut may come before the first slow handler finishes.)
    assert!((3..9).contains(&after_drop), "{after_drop}");

    // More invoices arrive; run 3 completes.
    sent.extend(send_some(&auth, &nip, 4, "T").await.unwrap());
    let s = seen.clone();
    let report = auth
        .sync(store.clone())
        .run(&options, async |inv| {
            record(&s, inv.metadata.ksef_number.as_str());
            Ok(())
        })
        .await
        .unwrap();
    assert!(report.delivered > 0);
    let counts = seen.lock().unwrap().clone();
    assert_eq!(counts.keys().cloned().collect::<BTreeSet<_>>(), set(&sent));
    assert!(counts.values().all(|&n| n == 1), "{counts:?}");

    // Run 4: nothing new.
    let report = auth
        .sync(store.clone())
        .run(&options, async |inv| {
            record(&seen, inv.metadata.ksef_number.as_str());
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(report.delivered, 0);
    assert!(seen.lock().unwrap().values().all(|&n| n == 1));
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_examples_run_against_the_simulator() {
    let (sim, auth) = setup(10_000, 50_000_000).await;
    let nip: Nip = NIP.parse().unwrap();
    let sent = send_some(&auth, &nip, 3, "X").await.unwrap();
    let out = retrieval_flow(&auth, since()).await.unwrap();
    assert_eq!(set(&out.queried), set(&sent));
    assert!(out.downloaded_bytes.unwrap() > 1000);
    let exported: Vec<String> = out.exported.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(set(&exported), set(&sent));

    // The sync example into a directory, twice: the second run finds nothing new.
    let dir = tempfile::tempdir().unwrap();
    let reports = example::sync_dir(&auth, dir.path(), since()).await.unwrap();
    assert_eq!(reports[0].delivered, 3);
    assert_eq!(reports[1].delivered, 0);
    let files: BTreeSet<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().to_string_lossy().into_owned();
            name.strip_suffix(".xml").map(str::to_owned)
        })
        .collect();
    assert_eq!(files, set(&sent));
    let again = example::sync_dir(&auth, dir.path(), since()).await.unwrap();
    assert_eq!(again[0].delivered + again[1].delivered, 0);
    sim.shutdown().await;
}
