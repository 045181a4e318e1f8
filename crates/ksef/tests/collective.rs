//! Collective identifiers through the SDK against the in-process simulator over HTTP: send three
//! invoices, create an identifier (format and CRC checked independently), find it by the
//! context query, list its invoices, find it by each KSeF number; local and KSeF refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

#[path = "../examples/download_export.rs"]
#[allow(dead_code)]
mod example;

#[path = "../../ksef-sim/tests/checked/mod.rs"]
mod checked;
use checked::StartChecked;

use futures_util::TryStreamExt;
use ksef::collective::CollectiveIdentifier;
use ksef::model::api::{
    CollectiveIdentifierInvoice, CollectiveIdentifierInvoicePayment,
    CollectiveIdentifiersQueryRequest, CurrencyCode,
};
use ksef::model::ids::KsefNumber;
use ksef::model::{ContextIdentifier, DateTime, Nip};
use ksef::{Error, KsefClient, TestIdentity};

const NIP: &str = "5265877635";

fn crc8(data: &[u8]) -> u8 {
    // Bitwise CRC-8, polynomial 0x07, init 0 (independent of ksef_model's table).
    let mut c = 0u8;
    for &b in data {
        c ^= b;
        for _ in 0..8 {
            c = if c & 0x80 != 0 {
                (c << 1) ^ 0x07
            } else {
                c << 1
            };
        }
    }
    c
}

fn item(k: &str, payment: Option<f64>) -> CollectiveIdentifierInvoice {
    CollectiveIdentifierInvoice {
        ksef_number: k.parse().unwrap(),
        payment: payment.map(|amount| CollectiveIdentifierInvoicePayment {
            amount,
            currency: CurrencyCode::Pln,
        }),
        description: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_and_find_by_every_route() {
    let sim = ksef_sim::Simulator::builder()
        .rate_limits(false)
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
                name: "collective test".into(),
                nip: NIP.into(),
            },
            ContextIdentifier::Nip(nip.clone()),
        )
        .await
        .unwrap();
    let sent = example::send_some(&auth, &nip, 3, "Z").await.unwrap();
    let ci = auth.collective_identifiers();

    let id = ci
        .create(&[
            item(&sent[0], Some(100.5)),
            item(&sent[1], None),
            item(&sent[2], Some(7.0)),
        ])
        .await
        .unwrap();
    // Format and CRC, checked independently of the parser.
    let s = id.as_str();
    let shape: String = s
        .chars()
        .map(|c| match c {
            '0'..='9' => 'd',
            'A'..='F' => 'h',
            c => c,
        })
        .collect();
    // NIP-IZRRRRMM-FFFFFFFFFFFF-FF: digits are hex digits too, so compare classes loosely.
    assert_eq!(shape.len(), 35, "{s}");
    assert!(
        shape[..10].chars().all(|c| c == 'd') && &shape[10..13] == "-IZ",
        "{s}"
    );
    assert!(
        shape[13..19].chars().all(|c| c == 'd') && &shape[19..20] == "-",
        "{s}"
    );
    assert!(shape[20..32].chars().all(|c| c == 'd' || c == 'h'), "{s}");
    assert!(
        &shape[32..33] == "-" && shape[33..].chars().all(|c| c == 'd' || c == 'h'),
        "{s}"
    );
    assert!(s.starts_with("5265877635-IZ"));
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        &s[13..19],
        format!("{:04}{:02}", now.year(), now.month() as u8)
    );
    assert_eq!(id.checksum(), format!("{:02X}", crc8(&s.as_bytes()[..32])));
    assert_eq!(id.seller_nip(), nip);
    assert_eq!(s.parse::<CollectiveIdentifier>().unwrap(), id);

    // The context query.
    let filter = CollectiveIdentifiersQueryRequest {
        collective_identifier_number: None,
        created_in_current_context: None,
        date_created_from: DateTime::new(now - time::Duration::hours(1)),
        date_created_to: DateTime::new(now + time::Duration::hours(1)),
        invoice_count_from: None,
        invoice_count_to: None,
    };
    let found: Vec<_> = ci.query(filter.clone()).try_collect().await.unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].collective_identifier_number, s);
    assert_eq!(found[0].invoice_count, 3);
    assert!(found[0].created_in_current_context);

    // Its invoices, KSeF number descending, payment visible to the creator.
    let invoices: Vec<_> = ci.invoices(&id).try_collect().await.unwrap();
    let got: Vec<&str> = invoices.iter().map(|i| i.ksef_number.as_str()).collect();
    let mut want: Vec<&str> = sent.iter().map(String::as_str).collect();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(got, want);
    let first = invoices
        .iter()
        .find(|i| i.ksef_number.as_str() == sent[0])
        .unwrap();
    assert_eq!(first.payment.as_ref().unwrap().amount, 100.5);
    assert_eq!(first.payment.as_ref().unwrap().currency, "PLN");
    assert!(!first.details_hidden);

    // By each KSeF number.
    for k in &sent {
        let k: KsefNumber = k.parse().unwrap();
        let ids: Vec<_> = ci.by_ksef_number(&k).try_collect().await.unwrap();
        assert_eq!(ids.len(), 1, "{k}");
        assert_eq!(ids[0].collective_identifier_number, s);
    }

    // More identifiers than one page (200): the query stream follows the continuation token.
    // An invoice may be in at most 132 identifiers of a context: 131 more on the first, then
    // 80 on the second (212 in all).
    for _ in 0..131 {
        ci.create(&[item(&sent[0], None)]).await.unwrap();
    }
    let err = ci.create(&[item(&sent[0], None)]).await.unwrap_err();
    assert_eq!(
        err.ksef_code(),
        Some(ksef::ExceptionCode::CollectiveAssignmentLimit),
        "{err:?}"
    );
    for _ in 0..80 {
        ci.create(&[item(&sent[1], None)]).await.unwrap();
    }
    let all: Vec<_> = ci.query(filter.clone()).try_collect().await.unwrap();
    assert_eq!(all.len(), 212);
    let distinct: std::collections::BTreeSet<&str> = all
        .iter()
        .map(|c| c.collective_identifier_number.as_str())
        .collect();
    assert_eq!(distinct.len(), 212);
    assert!(
        all.windows(2)
            .all(|w| w[0].date_created.as_offset_date_time()
                >= w[1].date_created.as_offset_date_time()),
        "newest first"
    );
    let k0: KsefNumber = sent[0].parse().unwrap();
    let of_first: Vec<_> = ci.by_ksef_number(&k0).try_collect().await.unwrap();
    assert_eq!(of_first.len(), 132);

    // Refused locally, and by KSeF.
    let err = ci.create(&[]).await.unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = ci
        .create(&[item(&sent[0], None), item(&sent[0], None)])
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidInput(_)), "{err}");
    let err = ci
        .create(&[item("5265877635-20250826-0100001AF629-AF", None)])
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), Some(400), "{err}");
    assert_eq!(
        err.ksef_code(),
        Some(ksef::ExceptionCode::CollectiveAssignmentRejected),
        "{err:?}"
    );
    sim.shutdown().await;
}
