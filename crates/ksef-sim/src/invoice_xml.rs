//! Invoice file checks KSeF makes before assigning a KSeF number (ksef-api.md §6.5): UTF-8
//! without BOM, no non-UTF-8 prolog, no DTD, no processing instructions, the root element and
//! `KodFormularza` of the session's form; and the fields the simulator needs (seller NIP,
//! `RodzajFaktury`, `P_2`, `P_1`).
//!
//! Every form is validated against its full official schema, so what the XSD rejects is
//! rejected with 430: FA(3) through `ksef_fa` (a typed model generated from the XSD, checking
//! element order, cardinalities, patterns, enumerations and digit limits); FA(2), FA_RR(1),
//! PEF(3) and PEF_KOR(3) through the simulator's own XSD engine (`crate::xsd`, the embedded
//! official schemas, checked against xmllint by a differential test). The 430 detail names the
//! element path and the violated rule, e.g. `Fa/FaWiersz[2]/P_8B: wartość '1.2345678' narusza
//! ograniczenie fractionDigits=6`. PEF documents also get the Peppol BIS Billing 3.0 rules that
//! need no schema (type code and currency shapes, the seller's NIP).

use ksef_model::form::FormCode;

/// What a valid invoice says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvoiceFacts {
    pub seller_nip: String,
    pub kind: String,
    pub number: String,
    pub issue_date: time::Date,
    /// Whether the invoice carries a `Zalacznik` (attachment consent needed, ksef-api.md §6.5).
    pub has_attachment: bool,
}

/// Checks `xml` against the session's form; `Err` carries the 430 detail.
pub(crate) fn check(xml: &[u8], form: &FormCode) -> Result<InvoiceFacts, String> {
    if xml.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Err(
            "Plik faktury zawiera znacznik BOM; wymagane jest kodowanie UTF-8 bez BOM.".into(),
        );
    }
    let text = std::str::from_utf8(xml)
        .map_err(|e| format!("Plik faktury nie jest poprawnie zakodowany w UTF-8: {e}."))?;
    if let Some(rest) = text.strip_prefix("<?xml")
        && let Some(end) = rest.find("?>")
    {
        let decl = rest[..end].to_ascii_lowercase();
        if let Some(i) = decl.find("encoding") {
            let enc: String = decl[i + 8..]
                .trim_start_matches([' ', '=', '"', '\''])
                .chars()
                .take_while(|c| !matches!(c, '"' | '\''))
                .collect();
            if enc != "utf-8" && enc != "utf8" {
                return Err(format!(
                    "Deklaracja XML wskazuje niedozwolone kodowanie '{enc}'; wymagane UTF-8."
                ));
            }
        }
    }
    let doc = ksef_crypto::c14n::parse(text).map_err(|e| {
        format!(
            "Plik faktury nie jest poprawnym dokumentem XML: {}.",
            e.reason()
        )
    })?;
    if doc.descendants().any(|n| n.is_pi()) {
        return Err("Plik faktury zawiera instrukcje przetwarzania, które są niedozwolone.".into());
    }
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    let (want_ns, want_root) = (form.namespace(), form.root_element());
    if Some(ns) != want_ns || Some(root.tag_name().name()) != want_root {
        return Err(format!(
            "Element główny {{{ns}}}{} nie odpowiada formularzowi sesji {} ({{{}}}{}).",
            root.tag_name().name(),
            form.system_code(),
            want_ns.unwrap_or(""),
            want_root.unwrap_or("")
        ));
    }
    let text_of =
        |n: Option<roxmltree::Node<'_, '_>>| n.and_then(|n| n.text()).map(|t| t.trim().to_owned());
    if let Some(engine) = crate::xsd::Form::of(form) {
        let schema = form.system_code();
        engine
            .schema()
            .and_then(|s| s.validate(root))
            .map_err(|e| format!("Niezgodność ze schematem {schema}: {e}."))?;
    }
    if matches!(form, FormCode::Pef3 | FormCode::PefKor3) {
        return check_pef(root, form);
    }
    let header = child_in(root, ns, "Naglowek").ok_or("Brak elementu Naglowek.")?;
    let kod = child_in(header, ns, "KodFormularza").ok_or("Brak elementu KodFormularza.")?;
    let system = kod.attribute("kodSystemowy").unwrap_or("");
    let version = kod.attribute("wersjaSchemy").unwrap_or("");
    if system != form.system_code() || version != form.schema_version() {
        return Err(format!(
            "KodFormularza ({system}, {version}) nie odpowiada formularzowi sesji ({}, {}).",
            form.system_code(),
            form.schema_version()
        ));
    }
    let seller = child_in(root, ns, "Podmiot1")
        .and_then(|p| child_in(p, ns, "DaneIdentyfikacyjne"))
        .and_then(|d| child_in(d, ns, "NIP"));
    let seller_nip =
        text_of(seller).ok_or("Brak NIP sprzedawcy (Podmiot1/DaneIdentyfikacyjne/NIP).")?;
    // FA_RR keeps its body in `FakturaRR`, the number in `P_4C` and the issue date in `P_4B`.
    let (body, number_el, date_el) = if *form == FormCode::FaRr1 {
        ("FakturaRR", "P_4C", "P_4B")
    } else {
        ("Fa", "P_2", "P_1")
    };
    let fa = child_in(root, ns, body).ok_or(format!("Brak elementu {body}."))?;
    let kind = text_of(child_in(fa, ns, "RodzajFaktury")).ok_or("Brak elementu RodzajFaktury.")?;
    let number = text_of(child_in(fa, ns, number_el))
        .filter(|n| !n.is_empty())
        .ok_or(format!("Brak elementu {number_el} (numer faktury)."))?;
    if number.chars().count() > 256 {
        return Err(format!(
            "Numer faktury {number_el} jest dłuższy niż 256 znaków."
        ));
    }
    let p1 = text_of(child_in(fa, ns, date_el))
        .ok_or(format!("Brak elementu {date_el} (data wystawienia)."))?;
    let issue_date = ksef_model::datetime::parse_date(&p1)
        .map_err(|_| format!("Nieprawidłowa data wystawienia {date_el} '{p1}'."))?;
    if *form == FormCode::Fa3
        && let Err(e) = ksef_fa::Faktura::from_xml(text)
    {
        return Err(format!(
            "Plik faktury nie jest zgodny ze schematem FA(3): {e}."
        ));
    }
    if seller_nip.len() != 10 || !seller_nip.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Nieprawidłowy NIP sprzedawcy '{seller_nip}'."));
    }
    Ok(InvoiceFacts {
        seller_nip,
        kind,
        number,
        issue_date,
        has_attachment: child_in(root, ns, "Zalacznik").is_some(),
    })
}

/// UBL 2.1 basic and aggregate components (PEF, PEF_KOR).
const UBL_CBC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2";
const UBL_CAC: &str = "urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2";

/// The seller's NIP of a UBL party: `PartyTaxScheme/CompanyID`, else
/// `PartyLegalEntity/CompanyID`, without a `PL` prefix.
fn ubl_party_nip(party: roxmltree::Node<'_, '_>) -> Option<String> {
    let id = |agg: &str| {
        child_in(party, UBL_CAC, agg)
            .and_then(|n| child_in(n, UBL_CBC, "CompanyID"))
            .and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let v = id("PartyTaxScheme").or_else(|| id("PartyLegalEntity"))?;
    Some(v.strip_prefix("PL").map(str::to_owned).unwrap_or(v))
}

/// A PEF (UBL `Invoice`) or PEF_KOR (UBL `CreditNote`) document: what KSeF reads from it and the
/// rules of Peppol BIS Billing 3.0 that need no schema (ksef-api.md §6.1, §17).
fn check_pef(root: roxmltree::Node<'_, '_>, form: &FormCode) -> Result<InvoiceFacts, String> {
    let credit = *form == FormCode::PefKor3;
    let schema = form.system_code();
    let text = |n: Option<roxmltree::Node<'_, '_>>| {
        n.and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let cbc = |name: &str| text(child_in(root, UBL_CBC, name));
    let missing = |what: &str| format!("Niezgodność ze schematem {schema}: brak elementu {what}.");
    cbc("CustomizationID").ok_or_else(|| missing("cbc:CustomizationID"))?;
    let number = cbc("ID").ok_or_else(|| missing("cbc:ID (numer faktury)"))?;
    let issue = cbc("IssueDate").ok_or_else(|| missing("cbc:IssueDate"))?;
    let issue_date = ksef_model::datetime::parse_date(&issue)
        .map_err(|_| format!("Nieprawidłowa data wystawienia cbc:IssueDate '{issue}'."))?;
    let type_el = if credit {
        "CreditNoteTypeCode"
    } else {
        "InvoiceTypeCode"
    };
    let type_code = cbc(type_el).ok_or_else(|| missing(&format!("cbc:{type_el}")))?;
    if type_code.len() != 3 || !type_code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "Niezgodność ze schematem {schema}: cbc:{type_el} '{type_code}' nie jest kodem UNCL1001."
        ));
    }
    let currency =
        cbc("DocumentCurrencyCode").ok_or_else(|| missing("cbc:DocumentCurrencyCode"))?;
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(format!(
            "Niezgodność ze schematem {schema}: cbc:DocumentCurrencyCode '{currency}' nie jest kodem ISO 4217."
        ));
    }
    let supplier = child_in(root, UBL_CAC, "AccountingSupplierParty")
        .and_then(|p| child_in(p, UBL_CAC, "Party"))
        .ok_or_else(|| missing("cac:AccountingSupplierParty/cac:Party"))?;
    child_in(root, UBL_CAC, "AccountingCustomerParty")
        .and_then(|p| child_in(p, UBL_CAC, "Party"))
        .ok_or_else(|| missing("cac:AccountingCustomerParty/cac:Party"))?;
    let total = child_in(root, UBL_CAC, "LegalMonetaryTotal")
        .ok_or_else(|| missing("cac:LegalMonetaryTotal"))?;
    let payable = text(child_in(total, UBL_CBC, "PayableAmount"))
        .ok_or_else(|| missing("cac:LegalMonetaryTotal/cbc:PayableAmount"))?;
    if payable.parse::<f64>().is_err() {
        return Err(format!(
            "Niezgodność ze schematem {schema}: cbc:PayableAmount '{payable}' nie jest kwotą."
        ));
    }
    let line = if credit {
        "CreditNoteLine"
    } else {
        "InvoiceLine"
    };
    if child_in(root, UBL_CAC, line).is_none() {
        return Err(missing(&format!("cac:{line}")));
    }
    let seller_nip = ubl_party_nip(supplier).ok_or_else(|| {
        missing("cac:AccountingSupplierParty/cac:Party/cac:PartyTaxScheme/cbc:CompanyID (NIP)")
    })?;
    if seller_nip.len() != 10 || !seller_nip.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Nieprawidłowy NIP sprzedawcy '{seller_nip}'."));
    }
    let has_attachment = ubl_has_attachment(root);
    Ok(InvoiceFacts {
        seller_nip,
        // Inferred: the duplicate key of a PEF document is (NIP, its invoice type, cbc:ID).
        kind: if credit { "KorPef" } else { "VatPef" }.to_owned(),
        number,
        issue_date,
        has_attachment,
    })
}

/// Whether a UBL document embeds an attachment (`cac:AdditionalDocumentReference/cac:Attachment/
/// cbc:EmbeddedDocumentBinaryObject`). Inferred: a reference to an external document
/// (`cac:ExternalReference`) is not an attachment in KSeF's sense.
fn ubl_has_attachment(root: roxmltree::Node<'_, '_>) -> bool {
    root.children().any(|c| {
        c.is_element()
            && c.tag_name().name() == "AdditionalDocumentReference"
            && c.tag_name().namespace() == Some(UBL_CAC)
            && child_in(c, UBL_CAC, "Attachment")
                .and_then(|a| child_in(a, UBL_CBC, "EmbeddedDocumentBinaryObject"))
                .is_some()
    })
}

/// The metadata of an accepted PEF or PEF_KOR document (UBL).
fn pef_metadata(root: roxmltree::Node<'_, '_>, form: &FormCode) -> Option<InvoiceMeta> {
    let text = |n: Option<roxmltree::Node<'_, '_>>| {
        n.and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let party =
        |agg: &str| child_in(root, UBL_CAC, agg).and_then(|p| child_in(p, UBL_CAC, "Party"));
    let name = |p: Option<roxmltree::Node<'_, '_>>| {
        p.and_then(|p| child_in(p, UBL_CAC, "PartyLegalEntity"))
            .and_then(|e| text(child_in(e, UBL_CBC, "RegistrationName")))
    };
    let supplier = party("AccountingSupplierParty");
    let customer = party("AccountingCustomerParty");
    let buyer = match customer.and_then(ubl_party_nip) {
        Some(v) if v.len() == 10 && v.bytes().all(|b| b.is_ascii_digit()) => ("Nip", Some(v)),
        Some(v) => ("Other", Some(v)),
        None => ("None", None),
    };
    let total = child_in(root, UBL_CAC, "LegalMonetaryTotal");
    let amount = |n: &str| {
        total
            .and_then(|t| text(child_in(t, UBL_CBC, n)))
            .and_then(|v| v.parse::<f64>().ok())
    };
    let net = amount("TaxExclusiveAmount").unwrap_or(0.0);
    let gross = amount("TaxInclusiveAmount")
        .or_else(|| amount("PayableAmount"))
        .unwrap_or(net);
    let vat = child_in(root, UBL_CAC, "TaxTotal")
        .and_then(|t| text(child_in(t, UBL_CBC, "TaxAmount")))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(gross - net);
    Some(InvoiceMeta {
        seller_nip: supplier.and_then(ubl_party_nip).unwrap_or_default(),
        seller_name: name(supplier),
        buyer,
        buyer_name: name(customer),
        number: text(child_in(root, UBL_CBC, "ID")).unwrap_or_default(),
        issue_date: text(child_in(root, UBL_CBC, "IssueDate"))
            .and_then(|d| ksef_model::datetime::parse_date(&d).ok()),
        currency: text(child_in(root, UBL_CBC, "DocumentCurrencyCode"))
            .unwrap_or_else(|| "PLN".into()),
        net,
        gross,
        vat,
        invoice_type: invoice_type(form, ""),
        third: Vec::new(),
        authorized: None,
        has_attachment: ubl_has_attachment(root),
        self_invoicing: false,
    })
}

/// An identifier of a party as the metadata query reports it: `(type, value)`.
pub(crate) type PartyId = (&'static str, Option<String>);

/// A third subject (`Podmiot3`) of an invoice.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ThirdSubject {
    /// `Nip`, `InternalId`, `VatUe`, `Other` or `None`.
    pub id: PartyId,
    pub name: Option<String>,
    /// `Rola` (1–11), 0 for `RolaInna`.
    pub role: i32,
}

/// The fields of an accepted invoice the metadata query filters on and returns
/// (`InvoiceMetadata`), read from the invoice XML.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InvoiceMeta {
    pub seller_nip: String,
    pub seller_name: Option<String>,
    /// `Nip`, `VatUe`, `Other` or `None`.
    pub buyer: PartyId,
    pub buyer_name: Option<String>,
    pub number: String,
    pub issue_date: Option<time::Date>,
    pub currency: String,
    pub net: f64,
    pub gross: f64,
    /// In PLN (the `P_14_xW` values for invoices in another currency).
    pub vat: f64,
    /// The API's `InvoiceType` (`Vat`, `Kor`, `VatRr`, `VatPef`, ...).
    pub invoice_type: String,
    pub third: Vec<ThirdSubject>,
    /// NIP, name and role (`RolaPU`) of the authorized subject.
    pub authorized: Option<(String, Option<String>, i32)>,
    pub has_attachment: bool,
    pub self_invoicing: bool,
}

/// Reads the metadata fields of an accepted invoice (any form; missing fields get neutral
/// values). `None` only when the bytes are not XML at all.
pub(crate) fn metadata(xml: &[u8], form: &FormCode) -> Option<InvoiceMeta> {
    let text = std::str::from_utf8(xml).ok()?;
    let doc = roxmltree::Document::parse(text).ok()?;
    let root = doc.root_element();
    let ns = root.tag_name().namespace().unwrap_or("");
    if matches!(form, FormCode::Pef3 | FormCode::PefKor3) {
        return pef_metadata(root, form);
    }
    let text_of = |n: Option<roxmltree::Node<'_, '_>>| {
        n.and_then(|n| n.text())
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
    };
    let seller =
        child_in(root, ns, "Podmiot1").and_then(|p| child_in(p, ns, "DaneIdentyfikacyjne"));
    let seller_nip = text_of(seller.and_then(|d| child_in(d, ns, "NIP"))).unwrap_or_default();
    let seller_name = text_of(seller.and_then(|d| child_in(d, ns, "Nazwa")));
    let party = |d: Option<roxmltree::Node<'_, '_>>| -> PartyId {
        let Some(d) = d else {
            return ("None", None);
        };
        if let Some(v) = text_of(child_in(d, ns, "NIP")) {
            ("Nip", Some(v))
        } else if let Some(v) = text_of(child_in(d, ns, "IDWew")) {
            ("InternalId", Some(v))
        } else if let Some(v) = text_of(child_in(d, ns, "NrVatUE")) {
            let code = text_of(child_in(d, ns, "KodUE")).unwrap_or_default();
            ("VatUe", Some(format!("{code}{v}")))
        } else if let Some(v) = text_of(child_in(d, ns, "NrID")) {
            ("Other", Some(v))
        } else {
            ("None", None)
        }
    };
    let buyer_ids =
        child_in(root, ns, "Podmiot2").and_then(|p| child_in(p, ns, "DaneIdentyfikacyjne"));
    let buyer = party(buyer_ids);
    let buyer_name = text_of(buyer_ids.and_then(|d| child_in(d, ns, "Nazwa")));
    let third = root
        .children()
        .filter(|c| c.is_element() && c.tag_name().name() == "Podmiot3")
        .map(|p| {
            let d = child_in(p, ns, "DaneIdentyfikacyjne");
            ThirdSubject {
                id: party(d),
                name: text_of(d.and_then(|d| child_in(d, ns, "Nazwa"))),
                role: text_of(child_in(p, ns, "Rola"))
                    .and_then(|r| r.parse().ok())
                    .unwrap_or(0),
            }
        })
        .collect();
    let authorized = child_in(root, ns, "PodmiotUpowazniony").and_then(|p| {
        let d = child_in(p, ns, "DaneIdentyfikacyjne");
        let nip = text_of(d.and_then(|d| child_in(d, ns, "NIP")))?;
        let name = text_of(d.and_then(|d| child_in(d, ns, "Nazwa")));
        let role = text_of(child_in(p, ns, "RolaPU"))
            .and_then(|r| r.parse().ok())
            .unwrap_or(0);
        Some((nip, name, role))
    });
    let fa = child_in(root, ns, "Fa")
        .or_else(|| child_in(root, ns, "FakturaRR"))
        .unwrap_or(root);
    let currency = text_of(child_in(fa, ns, "KodWaluty")).unwrap_or_else(|| "PLN".into());
    let number = text_of(child_in(fa, ns, "P_2"))
        .or_else(|| text_of(child_in(fa, ns, "P_4C")))
        .unwrap_or_default();
    let issue_date = text_of(child_in(fa, ns, "P_1"))
        .or_else(|| text_of(child_in(fa, ns, "P_4B")))
        .and_then(|d| ksef_model::datetime::parse_date(&d).ok());
    let amount = |n: roxmltree::Node<'_, '_>| n.text().and_then(|t| t.trim().parse::<f64>().ok());
    let sum = |pred: &dyn Fn(&str) -> bool| -> f64 {
        fa.children()
            .filter(|c| c.is_element() && pred(c.tag_name().name()))
            .filter_map(amount)
            .sum()
    };
    let net = sum(&|n| n.starts_with("P_13_"));
    let vat_pln = sum(&|n| n.starts_with("P_14_") && n.ends_with('W'));
    let vat_own = sum(&|n| n.starts_with("P_14_") && !n.ends_with('W'));
    let vat = if currency != "PLN" && vat_pln != 0.0 {
        vat_pln
    } else {
        vat_own
    };
    let gross = text_of(child_in(fa, ns, "P_15"))
        .and_then(|t| t.parse().ok())
        .unwrap_or(net + vat_own);
    let kind = text_of(child_in(fa, ns, "RodzajFaktury")).unwrap_or_default();
    let invoice_type = invoice_type(form, &kind);
    let self_invoicing = child_in(fa, ns, "Adnotacje")
        .and_then(|a| text_of(child_in(a, ns, "P_17")))
        .is_some_and(|v| v == "1");
    Some(InvoiceMeta {
        seller_nip,
        seller_name,
        buyer,
        buyer_name,
        number,
        issue_date,
        currency,
        net,
        gross,
        vat,
        invoice_type,
        third,
        authorized,
        has_attachment: child_in(root, ns, "Zalacznik").is_some(),
        self_invoicing,
    })
}

/// The API's `InvoiceType` for a form and its `RodzajFaktury`.
fn invoice_type(form: &FormCode, kind: &str) -> String {
    let k = kind.to_ascii_uppercase();
    match form.value() {
        "FA_RR" => if k.contains("KOR") {
            "KorVatRr"
        } else {
            "VatRr"
        }
        .to_owned(),
        "PEF" => {
            if form.system_code().contains("KOR") || k.contains("KOR") {
                "KorPef"
            } else {
                "VatPef"
            }
        }
        .to_owned(),
        _ => match k.as_str() {
            "VAT" => "Vat",
            "KOR" => "Kor",
            "ZAL" => "Zal",
            "ROZ" => "Roz",
            "UPR" => "Upr",
            "KOR_ZAL" => "KorZal",
            "KOR_ROZ" => "KorRoz",
            _ => "Vat",
        }
        .to_owned(),
    }
}

fn child_in<'a, 'i>(
    parent: roxmltree::Node<'a, 'i>,
    ns: &str,
    name: &str,
) -> Option<roxmltree::Node<'a, 'i>> {
    parent.children().find(|c| {
        c.is_element() && c.tag_name().name() == name && c.tag_name().namespace() == Some(ns)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fa3() -> FormCode {
        FormCode::from_parts("FA (3)", "1-0E", "FA")
    }

    pub(crate) fn template() -> String {
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../fixtures/invoices/invoice-template-fa-3.xml"
        ))
        .unwrap()
        .replace("#nip#", "5265877635")
        .replace("#invoicing_date#", "2026-01-15")
        .replace("#invoice_number#", "FV/1/2026")
    }

    #[test]
    fn template_passes_and_variants_fail() {
        let x = template();
        let facts = check(x.as_bytes(), &fa3()).unwrap();
        assert_eq!(facts.seller_nip, "5265877635");
        assert!(facts.number.contains("FV/1/2026"), "{}", facts.number);
        let mut bom = vec![0xEF, 0xBB, 0xBF];
        bom.extend_from_slice(x.as_bytes());
        assert!(check(&bom, &fa3()).is_err());
        let pi = x.replacen("<Faktura", "<?xml-stylesheet href='a'?><Faktura", 1);
        assert!(check(pi.as_bytes(), &fa3()).is_err());
        let fa2 = FormCode::from_parts("FA (2)", "1-0E", "FA");
        assert!(check(x.as_bytes(), &fa2).is_err());
        assert!(check(b"<a>", &fa3()).is_err());
        let dtd = format!(
            "<!DOCTYPE x [<!ENTITY e 'x'>]>{}",
            x.split_once("?>").unwrap().1
        );
        assert!(check(dtd.as_bytes(), &fa3()).is_err());
        // Schema-invalid: a VAT rate FA(3) does not know.
        let bad_rate = x.replacen("<P_12>23</P_12>", "<P_12>24</P_12>", 1);
        assert_ne!(bad_rate, x);
        let err = check(bad_rate.as_bytes(), &fa3()).unwrap_err();
        assert!(err.contains("P_12"), "{err}");
    }

    fn fixture(name: &str) -> String {
        std::fs::read_to_string(format!(
            "{}/../../fixtures/invoices/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap()
    }

    #[test]
    fn metadata_of_the_templates() {
        let m = metadata(template().as_bytes(), &fa3()).unwrap();
        assert_eq!(m.seller_nip, "5265877635");
        assert_eq!(m.seller_name.as_deref(), Some("Elektrownia S.A."));
        assert_eq!(m.buyer, ("Nip", Some("1111111111".to_owned())));
        assert_eq!(m.buyer_name.as_deref(), Some("F.H.U. Jan Kowalski"));
        assert_eq!(m.currency, "PLN");
        assert!((m.net - 43.60).abs() < 1e-9 && (m.vat - 10.03).abs() < 1e-9);
        assert!((m.gross - 53.63).abs() < 1e-9);
        assert_eq!(m.invoice_type, "Vat");
        assert_eq!(m.issue_date.unwrap().to_string(), "2025-09-01");
        assert!(!m.has_attachment && m.third.is_empty() && m.authorized.is_none());

        let s3 = fixture("invoice-template-fa-3-with-multiple-Subject3.xml");
        let m = metadata(s3.as_bytes(), &fa3()).unwrap();
        assert_eq!(m.third.len(), 2);
        assert_eq!(m.third[0].role, 8);
        let att = fixture("invoice-template-fa-3-with-attachment.xml");
        assert!(metadata(att.as_bytes(), &fa3()).unwrap().has_attachment);
        assert!(metadata(b"not xml", &fa3()).is_none());
    }
}
