//! Invoice file checks KSeF makes before assigning a KSeF number (ksef-api.md §6.5): UTF-8
//! without BOM, no non-UTF-8 prolog, no DTD, no processing instructions, the root element and
//! `KodFormularza` of the session's form; and the fields the simulator needs (seller NIP,
//! `RodzajFaktury`, `P_2`, `P_1`).
//!
//! FA(3) documents are also parsed with `ksef_fa` (a typed model generated from the official
//! XSD, checking element order, cardinalities, patterns, enumerations and digit limits), so what
//! the schema rejects is rejected with 430. FA(2), FA_RR and PEF get the structural checks only.

use ksef_model::form::FormCode;

/// What a valid invoice says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InvoiceFacts {
    pub seller_nip: String,
    pub kind: String,
    pub number: String,
    pub issue_date: time::Date,
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
    let fa = child_in(root, ns, "Fa").ok_or("Brak elementu Fa.")?;
    let kind = text_of(child_in(fa, ns, "RodzajFaktury")).ok_or("Brak elementu RodzajFaktury.")?;
    let number = text_of(child_in(fa, ns, "P_2")).ok_or("Brak elementu P_2 (numer faktury).")?;
    let p1 = text_of(child_in(fa, ns, "P_1")).ok_or("Brak elementu P_1 (data wystawienia).")?;
    let issue_date = ksef_model::datetime::parse_date(&p1)
        .map_err(|_| format!("Nieprawidłowa data wystawienia P_1 '{p1}'."))?;
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
    })
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
}
