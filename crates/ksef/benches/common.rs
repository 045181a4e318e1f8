//! Generated 5.5 KB FA(3) invoices for the batch benches.

const TEMPLATE: &str = include_str!("../../../fixtures/invoices/invoice-template-fa-3.xml");

/// Invoice `i`: the FA(3) template with its own number and extra lines (≈5.5 KB).
pub fn invoice(i: usize) -> Vec<u8> {
    invoice_of(i, 5_500)
}

/// Invoice `i` with extra lines up to about `bytes`.
pub fn invoice_of(i: usize, bytes: usize) -> Vec<u8> {
    let mut extra = String::new();
    let mut line = 3;
    let base = TEMPLATE
        .replace("#nip#", "5265877635")
        .replace("#invoice_number#", &format!("FV/{i:07}"));
    while base.len() + extra.len() < bytes.saturating_sub(200) {
        let qty = (i * 31 + line * 7) % 1000;
        extra.push_str(&format!(
            "\t\t<FaWiersz>\n\t\t\t<NrWierszaFa>{line}</NrWierszaFa>\n\t\t\t<P_7>Usługa {i}-{line}</P_7>\n\t\t\t<P_8A>szt</P_8A>\n\t\t\t<P_8B>{qty}.00</P_8B>\n\t\t\t<P_9A>1.{:02}</P_9A>\n\t\t\t<P_11>{qty}.{:02}</P_11>\n\t\t\t<P_12>23</P_12>\n\t\t</FaWiersz>\n",
            line % 100,
            (i + line) % 100
        ));
        line += 1;
    }
    base.replacen("\t\t<Rozliczenie>", &format!("{extra}\t\t<Rozliczenie>"), 1)
        .into_bytes()
}
