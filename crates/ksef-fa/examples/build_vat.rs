//! Builds a VAT invoice and a correction of it, validates both and prints the XML.
//!
//! `cargo run -p ksef-fa --example build_vat`
#![allow(clippy::print_stdout)] // an example: printing is its job

use ksef_fa::Decimal;
use ksef_fa::builder::*;
use time::macros::{date, datetime};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seller = Seller::new(
        "5261040828",
        "Sprzedawca sp. z o.o.",
        Address::pl("ul. Prosta 1", "00-001 Warszawa"),
    );
    let buyer = Buyer::nip("7740001454", "Nabywca S.A.")
        .address(Address::pl("ul. Krzywa 2", "30-001 Kraków"));
    let invoice = InvoiceBuilder::vat("FV/1/2026", date!(2026 - 02 - 01))
        .seller(seller.clone())
        .buyer(buyer.clone())
        .created_at(datetime!(2026-02-01 10:00 UTC))
        .line(
            Line::new(
                "Usługa programistyczna",
                Decimal::from(10),
                Decimal::new(15000, 2),
                VatRate::V23,
            )
            .unit("h"),
        )
        .line(Line::new("Książka", Decimal::ONE, Decimal::new(4990, 2), VatRate::V5).unit("szt."))
        .payment(
            Payment::transfer(date!(2026 - 02 - 15))
                .account("61109010140000071219812874", Some("Bank")),
        )
        .build()?;
    if let Err(errors) = invoice.validate_at(date!(2026 - 02 - 01)) {
        for e in errors {
            println!("invalid: {e}");
        }
    }
    println!("{}", invoice.to_xml());

    let correction = InvoiceBuilder::correction(
        "FK/1/2026",
        date!(2026 - 02 - 10),
        CorrectedInvoice {
            issue_date: date!(2026 - 02 - 01),
            number: "FV/1/2026".into(),
            ksef_number: Some("5261040828-20260201-0A1B2C3D4E5F-1A".into()),
        },
        "Rabat 10 %",
    )
    .seller(seller)
    .buyer(buyer)
    .created_at(datetime!(2026-02-10 10:00 UTC))
    .line_before(Line::new(
        "Usługa programistyczna",
        Decimal::from(10),
        Decimal::new(15000, 2),
        VatRate::V23,
    ))
    .line(Line::new(
        "Usługa programistyczna",
        Decimal::from(10),
        Decimal::new(13500, 2),
        VatRate::V23,
    ))
    .build()?;
    correction
        .validate_at(date!(2026 - 02 - 10))
        .map_err(|e| format!("{e:?}"))?;
    println!("{}", correction.to_xml());
    Ok(())
}
