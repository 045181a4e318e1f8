//! Collective identifiers over HTTP: create (format and CRC-8, unknown KSeF numbers 71001,
//! different sellers and more than 500 invoices 21405, the 132-identifier rule 71002), the
//! context query (filters, sorting, continuation paging, the 100-day rule), the invoices of an
//! identifier (payment hidden from a context that is no party of the invoice) and the
//! identifiers of a KSeF number. Every JSON response is checked against the spec's schema.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns may panic

mod common;

use std::time::Duration;

use common::*;
use ksef_model::operations::OperationId;
use serde_json::{Value, json};

/// Sends `xmls` in one session and returns their KSeF numbers once stored.
async fn send_all(api: &Api, access: &str, xmls: &[Vec<u8>]) -> Vec<String> {
    let (session, key) = api.open_session(access).await;
    let mut refs = Vec::new();
    for x in xmls {
        let r = api.send(access, &session, &key, x).await;
        assert_eq!(r.status, 202, "{:?}", r.json);
        refs.push(r.json["referenceNumber"].as_str().unwrap().to_owned());
    }
    let mut out = Vec::new();
    for r in refs {
        let st = api.invoice_final(access, &session, &r).await;
        assert_eq!(st["status"]["code"], 200, "{st}");
        out.push(st["ksefNumber"].as_str().unwrap().to_owned());
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    out
}

fn with_buyer(xml: Vec<u8>, buyer: &str) -> Vec<u8> {
    String::from_utf8(xml)
        .unwrap()
        .replacen("<NIP>1111111111</NIP>", &format!("<NIP>{buyer}</NIP>"), 1)
        .into_bytes()
}

async fn create(api: &Api, access: &str, invoices: Value) -> Resp {
    api.call(
        OperationId::CreateCollectiveIdentifier,
        &[],
        Some(access),
        Body::Json(json!({ "invoices": invoices })),
    )
    .await
}

fn crc8(data: &[u8]) -> u8 {
    // Independent of the simulator's: bitwise CRC-8, polynomial 0x07, init 0.
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

fn assert_format(n: &str, seller: &str) {
    let re = regex::Regex::new(r"^\d{10}-IZ\d{6}-[0-9A-F]{12}-[0-9A-F]{2}$").unwrap();
    assert!(re.is_match(n), "{n}");
    assert!(n.starts_with(&format!("{seller}-IZ")), "{n}");
    let now = time::OffsetDateTime::now_utc();
    assert_eq!(
        &n[13..19],
        format!("{:04}{:02}", now.year(), now.month() as u8)
    );
    assert_eq!(
        &n[33..],
        format!("{:02X}", crc8(&n.as_bytes()[..32])),
        "{n}"
    );
}

fn window() -> (String, String) {
    let f = &time::format_description::well_known::Rfc3339;
    let now = time::OffsetDateTime::now_utc();
    (
        (now - time::Duration::hours(1)).format(f).unwrap(),
        (now + time::Duration::hours(1)).format(f).unwrap(),
    )
}

async fn query(api: &Api, access: &str, q: &str, body: Value, token: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = token
        .map(|t| vec![("x-continuation-token", t)])
        .unwrap_or_default();
    api.call_q(
        OperationId::QueryCollectiveIdentifiers,
        &[],
        q,
        Some(access),
        Body::Json(body),
        &headers,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_query_list_and_limits() {
    let (_sim, api) = start().await;
    let seal = signer("xmlsec1cli-rsa-seal");
    let (access, _, _) = api.login(&seal, NIP).await;
    // The other context may read and write invoices as OTHER_NIP.
    api.testdata_grant(OTHER_NIP, ("Nip", NIP), &["InvoiceRead", "InvoiceWrite"])
        .await;
    let (other, _, _) = api.login(&seal, OTHER_NIP).await;

    let ours = send_all(
        &api,
        &access,
        &[
            invoice(NIP, "C/1"),
            invoice(NIP, "C/2"),
            invoice(NIP, "C/3"),
        ],
    )
    .await;
    // Sold by OTHER_NIP to NIP: visible to NIP as the buyer.
    let theirs = send_all(&api, &other, &[with_buyer(invoice(OTHER_NIP, "O/1"), NIP)]).await;

    // Create with payment on two and a description on one.
    let r = create(
        &api,
        &access,
        json!([
            {"ksefNumber": ours[0], "payment": {"amount": 123.45, "currency": "PLN"}, "description": "raty"},
            {"ksefNumber": ours[1], "payment": {"amount": 10, "currency": "EUR"}},
            {"ksefNumber": ours[2]},
        ]),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let id = r.json["collectiveIdentifierNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_format(&id, NIP);

    // Errors.
    let unknown = "5265877635-20250826-0100001AF629-AF";
    let r = create(&api, &access, json!([{"ksefNumber": unknown}])).await;
    assert_eq!((r.status, r.code()), (400, 71001), "{:?}", r.json);
    assert!(r.json.to_string().contains(unknown));
    let r = create(
        &api,
        &access,
        json!([{"ksefNumber": ours[0]}, {"ksefNumber": theirs[0]}]),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, 21405), "{:?}", r.json);
    assert!(r.json.to_string().contains("same seller"), "{:?}", r.json);
    let many: Vec<Value> = (0..501).map(|_| json!({"ksefNumber": ours[0]})).collect();
    let r = create(&api, &access, Value::Array(many)).await;
    assert_eq!((r.status, r.code()), (400, 21405), "{:?}", r.json);
    assert!(r.json.to_string().contains("500"), "{:?}", r.json);
    let r = create(&api, &access, json!([])).await;
    assert_eq!((r.status, r.code()), (400, 21405), "{:?}", r.json);
    let r = create(&api, &access, json!([{"ksefNumber": "nope"}])).await;
    assert_eq!((r.status, r.code()), (400, 21405), "{:?}", r.json);
    // OTHER_NIP is no party of our invoices: it cannot use them.
    let r = create(&api, &other, json!([{"ksefNumber": ours[0]}])).await;
    assert_eq!((r.status, r.code()), (400, 71001), "{:?}", r.json);
    // The buyer may create one for an invoice it bought (the seller's NIP leads it).
    let r = create(&api, &access, json!([{"ksefNumber": theirs[0]}])).await;
    assert_eq!(r.status, 201, "{:?}", r.json);
    let bought = r.json["collectiveIdentifierNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_format(&bought, OTHER_NIP);

    // Invoices of the identifier: KSeF number descending; payment for the creator.
    let r = api
        .call(
            OperationId::CollectiveIdentifierInvoices,
            &[&id],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let items = r.json["invoices"].as_array().unwrap();
    let got: Vec<&str> = items
        .iter()
        .map(|i| i["ksefNumber"].as_str().unwrap())
        .collect();
    let mut want: Vec<&str> = ours.iter().map(String::as_str).collect();
    want.sort_by(|a, b| b.cmp(a));
    assert_eq!(got, want);
    let of = |items: &[Value], k: &str| {
        items
            .iter()
            .find(|i| i["ksefNumber"] == k)
            .cloned()
            .unwrap()
    };
    let first = of(items, &ours[0]);
    assert_eq!(
        first["payment"],
        json!({"amount": 123.45, "currency": "PLN"})
    );
    assert_eq!(first["description"], "raty");
    assert_eq!(first["detailsHidden"], false);
    let third = of(items, &ours[2]);
    assert!(third.get("payment").is_none());
    assert_eq!(third["detailsHidden"], false);
    // Another context that is no party of the invoices: payment hidden where one was given.
    let r = api
        .call(
            OperationId::CollectiveIdentifierInvoices,
            &[&id],
            Some(&other),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let items = r.json["invoices"].as_array().unwrap();
    let first = of(items, &ours[0]);
    assert!(first.get("payment").is_none(), "{first}");
    assert_eq!(first["detailsHidden"], true);
    assert_eq!(of(items, &ours[2])["detailsHidden"], false);
    // A bad checksum, an unknown identifier.
    let mut bad = id.clone();
    let last = if bad.ends_with('0') { "1" } else { "0" };
    bad.replace_range(34..35, last);
    for n in [bad.as_str(), "5265877635-IZ202601-000000000000-00", "x"] {
        let r = api
            .call(
                OperationId::CollectiveIdentifierInvoices,
                &[n],
                Some(&access),
                Body::None,
            )
            .await;
        assert_eq!((r.status, r.code()), (400, 21405), "{n}: {:?}", r.json);
    }

    // By KSeF number.
    let r = api
        .call(
            OperationId::CollectiveIdentifiersByKsefNumber,
            &[&ours[1]],
            Some(&access),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        r.json["collectiveIdentifiers"],
        json!([{
            "collectiveIdentifierNumber": id,
            "dateCreated": r.json["collectiveIdentifiers"][0]["dateCreated"],
            "createdInCurrentContext": true,
        }])
    );
    // OTHER_NIP sees the identifier its buyer made for its invoice, not created in its context.
    let r = api
        .call(
            OperationId::CollectiveIdentifiersByKsefNumber,
            &[&theirs[0]],
            Some(&other),
            Body::None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    assert_eq!(
        r.json["collectiveIdentifiers"][0]["collectiveIdentifierNumber"],
        bought
    );
    assert_eq!(
        r.json["collectiveIdentifiers"][0]["createdInCurrentContext"],
        false
    );
    // An invoice the caller cannot see.
    let r = api
        .call(
            OperationId::CollectiveIdentifiersByKsefNumber,
            &[&ours[1]],
            Some(&other),
            Body::None,
        )
        .await;
    assert_eq!((r.status, r.code()), (400, 21405), "{:?}", r.json);

    // Query: filters.
    let (from, to) = window();
    let base = json!({"dateCreatedFrom": from, "dateCreatedTo": to});
    let r = query(&api, &access, "", base.clone(), None).await;
    assert_eq!(r.status, 200, "{:?}", r.json);
    let numbers: Vec<&str> = r.json["collectiveIdentifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["collectiveIdentifierNumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers.len(), 2);
    assert!(numbers.contains(&id.as_str()) && numbers.contains(&bought.as_str()));
    let mut b = base.clone();
    b["invoiceCountFrom"] = json!(2);
    let r = query(&api, &access, "", b, None).await;
    assert_eq!(
        r.json["collectiveIdentifiers"][0]["collectiveIdentifierNumber"],
        id
    );
    assert_eq!(r.json["collectiveIdentifiers"][0]["invoiceCount"], 3);
    assert_eq!(r.json["collectiveIdentifiers"].as_array().unwrap().len(), 1);
    let mut b = base.clone();
    b["collectiveIdentifierNumber"] = json!(bought);
    let r = query(&api, &access, "", b, None).await;
    assert_eq!(r.json["collectiveIdentifiers"].as_array().unwrap().len(), 1);
    // OTHER_NIP sees the one with its NIP (it is the seller), not created in its context.
    let r = query(&api, &other, "", base.clone(), None).await;
    assert_eq!(
        r.json["collectiveIdentifiers"],
        json!([{
            "collectiveIdentifierNumber": bought,
            "dateCreated": r.json["collectiveIdentifiers"][0]["dateCreated"],
            "invoiceCount": 1,
            "createdInCurrentContext": false,
        }])
    );
    let mut b = base.clone();
    b["createdInCurrentContext"] = json!(true);
    let r = query(&api, &other, "", b, None).await;
    assert_eq!(r.json["collectiveIdentifiers"], json!([]));
    // More than 100 days.
    let f = &time::format_description::well_known::Rfc3339;
    let long = json!({
        "dateCreatedFrom": (time::OffsetDateTime::now_utc() - time::Duration::days(101)).format(f).unwrap(),
        "dateCreatedTo": to,
    });
    let r = query(&api, &access, "", long, None).await;
    assert_eq!((r.status, r.code()), (400, 21405), "{:?}", r.json);
    let r = query(&api, &access, "?pageSize=5", base.clone(), None).await;
    assert_eq!((r.status, r.code()), (400, 21405), "{:?}", r.json);

    // The 132 rule: ours[2] is in one already; 131 more are allowed, the next is 71002.
    for _ in 0..131 {
        let r = create(&api, &access, json!([{"ksefNumber": ours[2]}])).await;
        assert_eq!(r.status, 201, "{:?}", r.json);
    }
    let r = create(
        &api,
        &access,
        json!([{"ksefNumber": ours[1]}, {"ksefNumber": ours[2]}]),
    )
    .await;
    assert_eq!((r.status, r.code()), (400, 71002), "{:?}", r.json);
    assert!(r.json.to_string().contains(&ours[2]));

    // Paging the query: 133 identifiers, newest first, no repeats.
    let mut all: Vec<(String, String)> = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let r = query(
            &api,
            &access,
            "?pageSize=50",
            base.clone(),
            token.as_deref(),
        )
        .await;
        assert_eq!(r.status, 200, "{:?}", r.json);
        pages += 1;
        for c in r.json["collectiveIdentifiers"].as_array().unwrap() {
            all.push((
                c["dateCreated"].as_str().unwrap().to_owned(),
                c["collectiveIdentifierNumber"].as_str().unwrap().to_owned(),
            ));
        }
        match r.json["continuationToken"].as_str() {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(all.len(), 133);
    let parsed: Vec<(time::OffsetDateTime, String)> = all
        .iter()
        .map(|(d, n)| (time::OffsetDateTime::parse(d, f).unwrap(), n.clone()))
        .collect();
    assert!(
        parsed.windows(2).all(|w| w[0] > w[1]),
        "not sorted descending"
    );
    let r = query(&api, &access, "", base, Some("garbage")).await;
    assert_eq!((r.status, r.code()), (400, 21418), "{:?}", r.json);
    // By KSeF number pages too (132 identifiers hold ours[2]).
    let r = api
        .call_q(
            OperationId::CollectiveIdentifiersByKsefNumber,
            &[&ours[2]],
            "?pageSize=200",
            Some(&access),
            Body::None,
            &[],
        )
        .await;
    assert_eq!(
        r.json["collectiveIdentifiers"].as_array().unwrap().len(),
        132
    );
    assert!(r.json.get("continuationToken").is_none());
}
