//! Built invoices of every kind and every VAT rate validate (our rules and the official XSD).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers outside #[test] fns

mod common;

use ksef_fa::builder::*;
use ksef_fa::{Decimal, Faktura};
use time::macros::{date, datetime};

fn d(s: &str) -> Decimal {
    s.parse().unwrap()
}

fn base(b: InvoiceBuilder) -> InvoiceBuilder {
    b.seller(
        Seller::new(
            "5261040828",
            "Sprzedawca sp. z o.o.",
            Address::pl("ul. Prosta 1", "00-001 Warszawa"),
        )
        .email("biuro@sprzedawca.pl"),
    )
    .buyer(
        Buyer::nip("7740001454", "Nabywca S.A.")
            .address(Address::pl("ul. Krzywa 2", "30-001 Kraków")),
    )
    .created_at(datetime!(2026-02-01 10:00 UTC))
    .system_info("ksef-rs")
}

fn check(inv: &Faktura) {
    inv.validate_at(date!(2026 - 03 - 01))
        .unwrap_or_else(|e| panic!("{e:?}\n{}", inv.to_xml()));
    let xml = inv.to_xml();
    assert_eq!(&Faktura::from_xml(&xml).unwrap(), inv);
    if let Some(r) = common::xmllint(&xml) {
        r.unwrap_or_else(|e| panic!("{e}\n{xml}"));
    }
}

#[test]
fn vat_invoice_with_every_rate() {
    let mut b = base(InvoiceBuilder::vat("FV/1/2026", date!(2026 - 02 - 01)))
        .place("Warszawa")
        .payment(
            Payment::transfer(date!(2026 - 02 - 15))
                .account("61109010140000071219812874", Some("Bank")),
        )
        .exemption(Exemption::Act("art. 43 ust. 1 pkt 37 ustawy o VAT".into()))
        .note("Uwagi", "Dziękujemy");
    for (i, rate) in VatRate::ALL.iter().enumerate() {
        b = b.line(Line::new(format!("Pozycja {i}"), d("3"), d("33.33"), *rate).unit("szt."));
    }
    let inv = b.build().unwrap();
    let fa = &inv.fa;
    // 23 % and 22 % share P_13_1: VAT computed per rate from the net sums
    let g1 = fa.p_13_1_group.as_ref().unwrap();
    assert_eq!(g1.p_13_1.get(), d("199.98"));
    assert_eq!(g1.p_14_1.get(), d("23.00") + d("22.00")); // 99.99 × 23 % = 22.9977, × 22 % = 21.9978
    assert_eq!(fa.p_13_7.unwrap().get(), d("99.99"));
    assert_eq!(fa.p_13_10.unwrap().get(), d("99.99"));
    assert_eq!(
        inv.fa.adnotacje.p_18,
        ksef_fa::model::TWybor12::V1,
        "oo line sets reverse charge"
    );
    check(&inv);
}

#[test]
fn rounding_is_half_up_on_the_rate_sum() {
    // three lines of 0.05 net at 23 %: VAT from the sum 0.15 → 0.0345 → 0.03 (not 3 × 0.01)
    let mut b = base(InvoiceBuilder::vat("FV/2/2026", date!(2026 - 02 - 01)));
    for _ in 0..3 {
        b = b.line(Line::new("x", d("1"), d("0.05"), VatRate::V23));
    }
    let inv = b.build().unwrap();
    assert_eq!(
        inv.fa.p_13_1_group.as_ref().unwrap().p_14_1.get(),
        d("0.03")
    );
    // 0.5 grosza rounds up: 0.50 net at 23 % → 0.115 → 0.12
    let inv = base(InvoiceBuilder::vat("FV/3/2026", date!(2026 - 02 - 01)))
        .line(Line::new("x", d("1"), d("0.50"), VatRate::V23))
        .build()
        .unwrap();
    assert_eq!(
        inv.fa.p_13_1_group.as_ref().unwrap().p_14_1.get(),
        d("0.12")
    );
    assert_eq!(inv.fa.p_15.get(), d("0.62"));
    check(&inv);
}

#[test]
fn foreign_currency_vat_in_pln() {
    let inv = base(InvoiceBuilder::vat("FV/4/2026", date!(2026 - 02 - 01)))
        .currency("EUR", Some(d("4.2567")))
        .line(Line::new("Consulting", d("10"), d("100"), VatRate::V23))
        .build()
        .unwrap();
    let g = inv.fa.p_13_1_group.as_ref().unwrap();
    assert_eq!(g.p_14_1.get(), d("230.00"));
    assert_eq!(g.p_14_1_w.unwrap().get(), d("979.04"));
    check(&inv);
}

#[test]
fn correction_invoice() {
    let inv = base(InvoiceBuilder::correction(
        "FK/1/2026",
        date!(2026 - 02 - 10),
        CorrectedInvoice {
            issue_date: date!(2026 - 02 - 01),
            number: "FV/1/2026".into(),
            ksef_number: Some("5261040828-20260201-0A1B2C3D4E5F-1A".into()),
        },
        "Rabat",
    ))
    .line_before(Line::new("Usługa", d("1"), d("100"), VatRate::V23))
    .line(Line::new("Usługa", d("1"), d("80"), VatRate::V23))
    .build()
    .unwrap();
    let g = inv.fa.p_13_1_group.as_ref().unwrap();
    assert_eq!(g.p_13_1.get(), d("-20.00"));
    assert_eq!(g.p_14_1.get(), d("-4.60"));
    assert_eq!(inv.fa.p_15.get(), d("-24.60"));
    assert_eq!(inv.fa.fa_wiersz.len(), 2);
    check(&inv);
}

#[test]
fn advance_invoice_splits_over_rates() {
    let inv = base(InvoiceBuilder::advance(
        "FZ/1/2026",
        date!(2026 - 02 - 01),
        d("1000.00"),
    ))
    .line(Line::new("Towar A", d("1"), d("1000"), VatRate::V23))
    .line(Line::new("Towar B", d("1"), d("1000"), VatRate::V8))
    .build()
    .unwrap();
    let fa = &inv.fa;
    let (a, b) = (
        fa.p_13_1_group.as_ref().unwrap(),
        fa.p_13_2_group.as_ref().unwrap(),
    );
    // order gross 1230 + 1080 = 2310; 1000 × 1230/2310 = 532.47; rest 467.53
    assert_eq!(a.p_13_1.get() + a.p_14_1.get(), d("532.47"));
    assert_eq!(b.p_13_2.get() + b.p_14_2.get(), d("467.53"));
    assert_eq!(a.p_14_1.get(), d("99.57")); // 532.47 × 23/123
    assert_eq!(fa.p_15.get(), d("1000.00"));
    assert!(fa.zamowienie.is_some());
    check(&inv);
}

#[test]
fn settlement_invoice() {
    let inv = base(InvoiceBuilder::settlement(
        "FR/1/2026",
        date!(2026 - 02 - 20),
    ))
    .line(Line::new("Towar A", d("1"), d("1000"), VatRate::V23))
    .advance_invoice(AdvanceRef {
        ksef_number: None,
        number: "FZ/1/2026".into(),
        gross: d("1000.00"),
    })
    .build()
    .unwrap();
    assert_eq!(inv.fa.p_15.get(), d("230.00"));
    check(&inv);
}

#[test]
fn simplified_invoice_with_nip_only() {
    let inv = base(InvoiceBuilder::simplified(
        "P/1/2026",
        date!(2026 - 02 - 01),
    ))
    .buyer(Buyer::nip_only("7740001454"))
    .line(Line::new("Kawa", d("2"), d("10.00"), VatRate::V8))
    .payment(
        Payment::default()
            .form(PaymentForm::V1)
            .paid_on(date!(2026 - 02 - 01)),
    )
    .build()
    .unwrap();
    check(&inv);
}

#[test]
fn foreign_and_eu_buyers_and_third_party() {
    let inv = base(InvoiceBuilder::vat("FV/5/2026", date!(2026 - 02 - 01)))
        .buyer(
            Buyer::new(
                BuyerId::Eu {
                    country: "DE".into(),
                    vat: "123456789".into(),
                },
                "GmbH",
            )
            .address(Address::new("DE", "Hauptstr. 1, Berlin")),
        )
        .third_party(ThirdParty::new(
            "9542751368",
            "Odbiorca",
            ThirdPartyRole::V2,
        ))
        .line(Line::new("WDT", d("1"), d("500"), VatRate::V0Wdt))
        .build()
        .unwrap();
    assert_eq!(inv.fa.p_13_6_2.unwrap().get(), d("500.00"));
    check(&inv);
}

#[test]
fn builder_errors_name_the_field() {
    let e = base(InvoiceBuilder::vat("FV/6/2026", date!(2026 - 02 - 01)))
        .buyer(Buyer::nip("123", "X"))
        .build()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Podmiot2/DaneIdentyfikacyjne/NIP: \"123\""),
        "{e}"
    );
    let e = base(InvoiceBuilder::vat("FV/6/2026", date!(2026 - 02 - 01)))
        .line(Line::new("x", d("1"), d("1"), VatRate::Zw))
        .build()
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("Fa/Adnotacje/Zwolnienie: a line is exempt"),
        "{e}"
    );
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn line() -> impl Strategy<Value = Line> {
        (
            0i64..100_000,
            0u32..4,
            0i64..1_000_000,
            0usize..VatRate::ALL.len(),
        )
            .prop_map(|(q, qs, p, r)| {
                Line::new(
                    "Pozycja",
                    Decimal::new(q, qs),
                    Decimal::new(p, 2),
                    VatRate::ALL[r],
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Whatever the lines, a built invoice passes our validation (totals consistent with the
        /// lines) and survives a write/parse round trip.
        #[test]
        fn built_invoices_validate_and_round_trip(lines in proptest::collection::vec(line(), 1..8), correction in any::<bool>()) {
            let mut b = if correction {
                base(InvoiceBuilder::correction(
                    "FK/9/2026",
                    date!(2026 - 02 - 01),
                    CorrectedInvoice { issue_date: date!(2026 - 01 - 15), number: "FV/9/2026".into(), ksef_number: None },
                    "Korekta",
                ))
                .line_before(Line::new("Pozycja", Decimal::ONE, Decimal::ONE_HUNDRED, VatRate::V23))
            } else {
                base(InvoiceBuilder::vat("FV/9/2026", date!(2026 - 02 - 01)))
            };
            b = b.exemption(Exemption::Act("art. 43 ust. 1".into()));
            for l in lines {
                b = b.line(l);
            }
            let inv = b.build().unwrap();
            prop_assert!(inv.validate_at(date!(2026 - 02 - 01)).is_ok(), "{:?}", inv.validate_at(date!(2026 - 02 - 01)));
            prop_assert_eq!(Faktura::from_xml(&inv.to_xml()).unwrap(), inv);
        }
    }
}

#[test]
fn each_rate_alone_is_valid_and_accepted_by_xmllint() {
    // one invoice per rate: the per-rate field (P_13_x/P_14_x) is filled on its own, the
    // invoice passes our validation, round-trips and xmllint accepts it
    for &rate in VatRate::ALL {
        let mut b = base(InvoiceBuilder::vat(
            format!("FV/{rate:?}/2026"),
            date!(2026 - 02 - 01),
        ))
        .line(Line::new("Towar", d("2"), d("10.05"), rate));
        if rate == VatRate::Zw {
            b = b.exemption(Exemption::Act("art. 43 ust. 1 pkt 37 ustawy o VAT".into()));
        }
        let inv = b.build().unwrap_or_else(|e| panic!("{rate:?}: {e}"));
        assert_eq!(
            inv.fa.fa_wiersz[0].p_11.unwrap().get(),
            d("20.10"),
            "{rate:?}"
        );
        let vat = inv.fa.p_15.get() - d("20.10");
        match rate {
            VatRate::V23 => assert_eq!(vat, d("4.62")), // 4.623
            VatRate::V22 => assert_eq!(vat, d("4.42")), // 4.422
            VatRate::V8 => assert_eq!(vat, d("1.61")),  // 1.608
            VatRate::V7 => assert_eq!(vat, d("1.41")),  // 1.407
            VatRate::V5 => assert_eq!(vat, d("1.01")),  // 1.005: half away from zero
            VatRate::V4 => assert_eq!(vat, d("0.80")),  // 0.804
            VatRate::V3 => assert_eq!(vat, d("0.60")),  // 0.603
            _ => assert_eq!(vat, d("0"), "{rate:?}"),
        }
        check(&inv);
    }
}
