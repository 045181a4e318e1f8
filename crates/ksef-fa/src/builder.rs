//! A builder for the common invoice kinds, so that a valid FA(3) invoice needs no field codes.
//!
//! | kind | constructor | `RodzajFaktury` |
//! |---|---|---|
//! | VAT invoice (*faktura podstawowa*) | [`InvoiceBuilder::vat`] | `VAT` |
//! | correction (*faktura korygująca*) | [`InvoiceBuilder::correction`] | `KOR` |
//! | advance (*faktura zaliczkowa*) | [`InvoiceBuilder::advance`] | `ZAL` |
//! | settlement (*faktura rozliczeniowa*) | [`InvoiceBuilder::settlement`] | `ROZ` |
//! | simplified (*faktura uproszczona*) | [`InvoiceBuilder::simplified`] | `UPR` |
//!
//! ## Totals and rounding
//! Line net value (`P_11`) = quantity (`P_8B`) × unit net price (`P_9A`), rounded to grosze.
//! Per VAT rate, the net values of the lines are summed and the VAT is computed **once from that
//! sum** (art. 106e ust. 10 of the VAT act: tax from the sum of net values per rate), rounded half
//! away from zero to grosze ("końcówki poniżej 0,5 grosza pomija się, 0,5 grosza i więcej
//! zaokrągla się do 1 grosza"). Rates map to the header fields as the Ministry's FA(3) guide says:
//! 23/22 % → `P_13_1`/`P_14_1`, 8/7 % → `P_13_2`/`P_14_2`, 5 % → `P_13_3`/`P_14_3`, 4/3 %
//! (taxi flat rate) → `P_13_4`/`P_14_4`, 0 KR → `P_13_6_1`, 0 WDT → `P_13_6_2`, 0 EX →
//! `P_13_6_3`, zw → `P_13_7`, np I → `P_13_8`, np II → `P_13_9`, oo → `P_13_10`.
//! `P_15` (gross total) = Σ `P_13_x` + Σ `P_14_x`. For a foreign currency the PLN VAT
//! (`P_14_xW`) = VAT × exchange rate, rounded the same way.
//!
//! An advance invoice's received gross amount is split over the order's rates in proportion to
//! the order's gross value per rate (the last rate takes the rounding remainder); the VAT in each
//! part is `gross × rate / (100 + rate)` (art. 106f ust. 1 pkt 3), rounded to grosze.

use rust_decimal::Decimal;
use time::{Date, OffsetDateTime};

use crate::error::{Error, FieldPath, Problem, Segment, ValueError};
use crate::model::*;
use crate::validate::{Bucket, bucket, percent, round_grosze, vat_of};

pub use crate::model::TFormaPlatnosci as PaymentForm;
pub use crate::model::TRolaPodmiotu3 as ThirdPartyRole;
pub use crate::model::TStawkaPodatku as VatRate;

fn at<T>(r: Result<T, ValueError>, path: &[&'static str]) -> Result<T, Error> {
    r.map_err(|e| Error::Invalid {
        path: FieldPath(
            path.iter()
                .map(|n| Segment {
                    name: std::borrow::Cow::Borrowed(n),
                    index: None,
                })
                .collect(),
        ),
        problem: Problem::Value(e),
    })
}

macro_rules! val {
    ($t:ty, $v:expr, $($p:literal)/+) => {
        at(($v).parse::<$t>(), &[$($p),+])
    };
}

/// A postal address (`Adres`).
#[derive(Debug, Clone)]
pub struct Address {
    country: String,
    line1: String,
    line2: Option<String>,
}

impl Address {
    /// A Polish address: `AdresL1` (street and number), `AdresL2` (postcode and town).
    pub fn pl(line1: impl Into<String>, line2: impl Into<String>) -> Self {
        Self {
            country: "PL".into(),
            line1: line1.into(),
            line2: Some(line2.into()),
        }
    }
    /// An address in country `country` (ISO code, `KodKraju`) on one line (`AdresL1`).
    pub fn new(country: impl Into<String>, line1: impl Into<String>) -> Self {
        Self {
            country: country.into(),
            line1: line1.into(),
            line2: None,
        }
    }
    /// Adds the second line (`AdresL2`).
    pub fn line2(mut self, line2: impl Into<String>) -> Self {
        self.line2 = Some(line2.into());
        self
    }
    fn build(&self) -> Result<TAdres, Error> {
        Ok(TAdres {
            kod_kraju: val!(TKodKraju, self.country.as_str(), "Adres" / "KodKraju")?,
            adres_l1: val!(TZnakowy512, self.line1.as_str(), "Adres" / "AdresL1")?,
            adres_l2: match &self.line2 {
                Some(l) => Some(val!(TZnakowy512, l.as_str(), "Adres" / "AdresL2")?),
                None => None,
            },
            gln: None,
        })
    }
}

/// The seller (`Podmiot1`): NIP, name, address and optional contact.
#[derive(Debug, Clone)]
pub struct Seller {
    nip: String,
    name: String,
    address: Address,
    email: Option<String>,
    phone: Option<String>,
}

impl Seller {
    /// Seller with NIP (`NIP`), name (`Nazwa`) and address (`Adres`).
    pub fn new(nip: impl Into<String>, name: impl Into<String>, address: Address) -> Self {
        Self {
            nip: nip.into(),
            name: name.into(),
            address,
            email: None,
            phone: None,
        }
    }
    /// Contact e-mail (`DaneKontaktowe/Email`).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
    /// Contact phone (`DaneKontaktowe/Telefon`).
    pub fn phone(mut self, phone: impl Into<String>) -> Self {
        self.phone = Some(phone.into());
        self
    }
}

/// How the buyer is identified (`Podmiot2/DaneIdentyfikacyjne`).
#[derive(Debug, Clone)]
pub enum BuyerId {
    /// Polish NIP (`NIP`).
    Nip(String),
    /// EU VAT number: country prefix (`KodUE`) and number (`NrVatUE`).
    Eu {
        /// EU country code, e.g. `DE`.
        country: String,
        /// VAT number without the prefix.
        vat: String,
    },
    /// Another tax identifier (`KodKraju` optional, `NrID`).
    Foreign {
        /// Country code.
        country: Option<String>,
        /// The identifier.
        id: String,
    },
    /// No identifier (a consumer: `BrakID`).
    None,
}

/// The buyer (`Podmiot2`).
#[derive(Debug, Clone)]
pub struct Buyer {
    id: BuyerId,
    name: Option<String>,
    address: Option<Address>,
    email: Option<String>,
    customer_number: Option<String>,
    jst: bool,
    gv: bool,
}

impl Buyer {
    /// A buyer identified by `id`, with a name (`Nazwa`).
    pub fn new(id: BuyerId, name: impl Into<String>) -> Self {
        Self {
            id,
            name: Some(name.into()),
            address: None,
            email: None,
            customer_number: None,
            jst: false,
            gv: false,
        }
    }
    /// A Polish business buyer with NIP and name.
    pub fn nip(nip: impl Into<String>, name: impl Into<String>) -> Self {
        Self::new(BuyerId::Nip(nip.into()), name)
    }
    /// A buyer identified by NIP only (enough on a simplified invoice).
    pub fn nip_only(nip: impl Into<String>) -> Self {
        let mut b = Self::new(BuyerId::Nip(nip.into()), "");
        b.name = None;
        b
    }
    /// Address (`Adres`).
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }
    /// Contact e-mail (`DaneKontaktowe/Email`).
    pub fn email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }
    /// Customer number (`NrKlienta`).
    pub fn customer_number(mut self, n: impl Into<String>) -> Self {
        self.customer_number = Some(n.into());
        self
    }
    /// The buyer is a local-government subordinate unit (`JST` = 1; default 2).
    pub fn local_government_unit(mut self) -> Self {
        self.jst = true;
        self
    }
    /// The buyer is a VAT group member (`GV` = 1; default 2).
    pub fn vat_group_member(mut self) -> Self {
        self.gv = true;
        self
    }
}

/// A third party (`Podmiot3`) with a NIP, e.g. a recipient or payer.
#[derive(Debug, Clone)]
pub struct ThirdParty {
    nip: String,
    name: String,
    role: ThirdPartyRole,
    address: Option<Address>,
}

impl ThirdParty {
    /// A third party with NIP, name and role (`Rola`: 1 factor, 2 recipient, 3 original entity,
    /// 4 additional buyer, 5 issuer, 6 payer, 7 local government issuer, 8 local government
    /// recipient, 9 VAT group member issuer, 10 VAT group member recipient, 11 employee).
    pub fn new(nip: impl Into<String>, name: impl Into<String>, role: ThirdPartyRole) -> Self {
        Self {
            nip: nip.into(),
            name: name.into(),
            role,
            address: None,
        }
    }
    /// Address (`Adres`).
    pub fn address(mut self, address: Address) -> Self {
        self.address = Some(address);
        self
    }
}

/// One invoice line (`FaWiersz`; `ZamowienieWiersz` on an advance invoice).
#[derive(Debug, Clone)]
pub struct Line {
    name: String,
    unit: Option<String>,
    quantity: Decimal,
    unit_net_price: Decimal,
    rate: VatRate,
    gtu: Option<TGtu>,
    index: Option<String>,
}

impl Line {
    /// A line: name (`P_7`), quantity (`P_8B`), unit net price (`P_9A`), VAT rate (`P_12`).
    pub fn new(
        name: impl Into<String>,
        quantity: Decimal,
        unit_net_price: Decimal,
        rate: VatRate,
    ) -> Self {
        Self {
            name: name.into(),
            unit: None,
            quantity,
            unit_net_price,
            rate,
            gtu: None,
            index: None,
        }
    }
    /// Unit of measure (`P_8A`), e.g. "szt.".
    pub fn unit(mut self, unit: impl Into<String>) -> Self {
        self.unit = Some(unit.into());
        self
    }
    /// GTU code (`GTU`).
    pub fn gtu(mut self, gtu: TGtu) -> Self {
        self.gtu = Some(gtu);
        self
    }
    /// Seller's product index (`Indeks`).
    pub fn index(mut self, index: impl Into<String>) -> Self {
        self.index = Some(index.into());
        self
    }
    /// Net value: quantity × unit net price rounded to grosze (`P_11`).
    pub fn net(&self) -> Decimal {
        round_grosze(self.quantity * self.unit_net_price)
    }
}

/// Payment terms (`Platnosc`).
#[derive(Debug, Clone, Default)]
pub struct Payment {
    due: Option<Date>,
    form: Option<PaymentForm>,
    accounts: Vec<(String, Option<String>)>,
    paid_on: Option<Date>,
}

impl Payment {
    /// Bank transfer (`FormaPlatnosci` = 6) due on `due` (`TerminPlatnosci/Termin`).
    pub fn transfer(due: Date) -> Self {
        Self {
            due: Some(due),
            form: Some(PaymentForm::V6),
            ..Self::default()
        }
    }
    /// Payment form (`FormaPlatnosci`: 1 cash, 2 card, 3 voucher, 4 cheque, 5 credit,
    /// 6 transfer, 7 mobile).
    pub fn form(mut self, form: PaymentForm) -> Self {
        self.form = Some(form);
        self
    }
    /// Due date (`TerminPlatnosci/Termin`).
    pub fn due(mut self, due: Date) -> Self {
        self.due = Some(due);
        self
    }
    /// A bank account (`RachunekBankowy/NrRB`), optionally with the bank's name (`NazwaBanku`).
    pub fn account(mut self, number: impl Into<String>, bank: Option<&str>) -> Self {
        self.accounts.push((number.into(), bank.map(str::to_owned)));
        self
    }
    /// Already paid on `date` (`Zaplacono` = 1, `DataZaplaty`).
    pub fn paid_on(mut self, date: Date) -> Self {
        self.paid_on = Some(date);
        self
    }
}

/// The legal basis of a VAT exemption, required when a line has rate `zw` (`P_19` = 1).
#[derive(Debug, Clone)]
pub enum Exemption {
    /// A provision of the Polish VAT act (`P_19A`).
    Act(String),
    /// A provision of Directive 2006/112/EC (`P_19B`).
    Directive(String),
    /// Another legal basis (`P_19C`).
    Other(String),
}

/// The invoice a correction corrects (`DaneFaKorygowanej`).
#[derive(Debug, Clone)]
pub struct CorrectedInvoice {
    /// Its issue date (`DataWystFaKorygowanej`).
    pub issue_date: Date,
    /// Its number (`NrFaKorygowanej`).
    pub number: String,
    /// Its KSeF number (`NrKSeFFaKorygowanej`), `None` if it was issued outside KSeF
    /// (`NrKSeFN` = 1).
    pub ksef_number: Option<String>,
}

/// An advance invoice settled by a settlement invoice (`FakturaZaliczkowa`).
#[derive(Debug, Clone)]
pub struct AdvanceRef {
    /// KSeF number of the advance invoice (`NrKSeFFaZaliczkowej`), or its own number when it
    /// was issued outside KSeF (`NrKSeFZN` = 1 with `NrFaZaliczkowej`).
    pub ksef_number: Option<String>,
    /// Its number.
    pub number: String,
    /// Gross amount it documented (deducted from `P_15`).
    pub gross: Decimal,
}

/// Builds an FA(3) [`Faktura`] with computed totals and default annotations.
///
/// `Adnotacje` defaults: no cash method (`P_16`=2), no self-billing (`P_17`=2), reverse charge
/// (`P_18`) set to 1 exactly when a line has rate `oo`, no split payment (`P_18A`=2), no
/// exemption (`P_19N`=1) unless a line is `zw` (then [`InvoiceBuilder::exemption`] is
/// required), no new means of transport (`P_22N`=1), no simplified triangular procedure
/// (`P_23`=2), no margin scheme (`P_PMarzyN`=1).
#[derive(Debug, Clone)]
pub struct InvoiceBuilder {
    kind: TRodzajFaktury,
    number: String,
    issue_date: Date,
    place: Option<String>,
    sale_date: Option<Date>,
    currency: String,
    exchange_rate: Option<Decimal>,
    seller: Option<Seller>,
    buyer: Option<Buyer>,
    third: Vec<ThirdParty>,
    lines: Vec<Line>,
    lines_before: Vec<Line>,
    payment: Option<Payment>,
    exemption: Option<Exemption>,
    split_payment: bool,
    cash_method: bool,
    self_billing: bool,
    created_at: Option<OffsetDateTime>,
    system_info: Option<String>,
    notes: Vec<(String, String)>,
    corrected: Option<CorrectedInvoice>,
    correction_reason: Option<String>,
    advance_gross: Option<Decimal>,
    advances: Vec<AdvanceRef>,
}

impl InvoiceBuilder {
    fn new(kind: TRodzajFaktury, number: impl Into<String>, issue_date: Date) -> Self {
        Self {
            kind,
            number: number.into(),
            issue_date,
            place: None,
            sale_date: None,
            currency: "PLN".into(),
            exchange_rate: None,
            seller: None,
            buyer: None,
            third: Vec::new(),
            lines: Vec::new(),
            lines_before: Vec::new(),
            payment: None,
            exemption: None,
            split_payment: false,
            cash_method: false,
            self_billing: false,
            created_at: None,
            system_info: None,
            notes: Vec::new(),
            corrected: None,
            correction_reason: None,
            advance_gross: None,
            advances: Vec::new(),
        }
    }
    /// A basic VAT invoice numbered `number` (`P_2`), issued on `issue_date` (`P_1`).
    pub fn vat(number: impl Into<String>, issue_date: Date) -> Self {
        Self::new(TRodzajFaktury::Vat, number, issue_date)
    }
    /// A simplified invoice (`UPR`, up to 450 PLN gross; the buyer may be given by NIP only).
    pub fn simplified(number: impl Into<String>, issue_date: Date) -> Self {
        Self::new(TRodzajFaktury::Upr, number, issue_date)
    }
    /// An advance invoice (`ZAL`) for `received_gross` received before delivery; the lines are
    /// the order (`Zamowienie`).
    pub fn advance(number: impl Into<String>, issue_date: Date, received_gross: Decimal) -> Self {
        let mut b = Self::new(TRodzajFaktury::Zal, number, issue_date);
        b.advance_gross = Some(received_gross);
        b
    }
    /// A settlement invoice (`ROZ`) after advances: the lines are the whole delivery, and
    /// `P_15` is what remains to pay after the advances given with [`Self::advance_invoice`].
    pub fn settlement(number: impl Into<String>, issue_date: Date) -> Self {
        Self::new(TRodzajFaktury::Roz, number, issue_date)
    }
    /// A correction (`KOR`) of `corrected` for `reason` (`PrzyczynaKorekty`). Give the lines as
    /// they were with [`Self::line_before`] (`StanPrzed` = 1) and as they are now with
    /// [`Self::line`]; the totals are the differences.
    pub fn correction(
        number: impl Into<String>,
        issue_date: Date,
        corrected: CorrectedInvoice,
        reason: impl Into<String>,
    ) -> Self {
        let mut b = Self::new(TRodzajFaktury::Kor, number, issue_date);
        b.corrected = Some(corrected);
        b.correction_reason = Some(reason.into());
        b
    }
    /// The seller (`Podmiot1`).
    pub fn seller(mut self, seller: Seller) -> Self {
        self.seller = Some(seller);
        self
    }
    /// The buyer (`Podmiot2`).
    pub fn buyer(mut self, buyer: Buyer) -> Self {
        self.buyer = Some(buyer);
        self
    }
    /// A third party (`Podmiot3`).
    pub fn third_party(mut self, party: ThirdParty) -> Self {
        self.third.push(party);
        self
    }
    /// Adds a line (`FaWiersz`).
    pub fn line(mut self, line: Line) -> Self {
        self.lines.push(line);
        self
    }
    /// Adds a line as it was before a correction (`FaWiersz` with `StanPrzed` = 1).
    pub fn line_before(mut self, line: Line) -> Self {
        self.lines_before.push(line);
        self
    }
    /// Place of issue (`P_1M`).
    pub fn place(mut self, place: impl Into<String>) -> Self {
        self.place = Some(place.into());
        self
    }
    /// Date of delivery or service when it differs from the issue date (`P_6`).
    pub fn sale_date(mut self, date: Date) -> Self {
        self.sale_date = Some(date);
        self
    }
    /// Invoice currency (`KodWaluty`, default PLN) and, for a foreign currency, the exchange
    /// rate to PLN used for the VAT in PLN (`P_14_xW`).
    pub fn currency(mut self, code: impl Into<String>, rate_to_pln: Option<Decimal>) -> Self {
        self.currency = code.into();
        self.exchange_rate = rate_to_pln;
        self
    }
    /// Payment terms (`Platnosc`).
    pub fn payment(mut self, payment: Payment) -> Self {
        self.payment = Some(payment);
        self
    }
    /// Legal basis of an exemption (needed when a line is `zw`).
    pub fn exemption(mut self, exemption: Exemption) -> Self {
        self.exemption = Some(exemption);
        self
    }
    /// Split payment mechanism (`P_18A` = 1).
    pub fn split_payment(mut self) -> Self {
        self.split_payment = true;
        self
    }
    /// Cash accounting method (`P_16` = 1).
    pub fn cash_method(mut self) -> Self {
        self.cash_method = true;
        self
    }
    /// Self-billing (`P_17` = 1).
    pub fn self_billing(mut self) -> Self {
        self.self_billing = true;
        self
    }
    /// When the document was produced (`DataWytworzeniaFa`; default: now).
    pub fn created_at(mut self, at: OffsetDateTime) -> Self {
        self.created_at = Some(at);
        self
    }
    /// Name of the issuing system (`SystemInfo`).
    pub fn system_info(mut self, s: impl Into<String>) -> Self {
        self.system_info = Some(s.into());
        self
    }
    /// Free-form key/value note (`DodatkowyOpis`).
    pub fn note(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.notes.push((key.into(), value.into()));
        self
    }
    /// An advance invoice settled by this settlement invoice (`FakturaZaliczkowa`).
    pub fn advance_invoice(mut self, advance: AdvanceRef) -> Self {
        self.advances.push(advance);
        self
    }

    /// Builds the invoice. Errors name the field path of the value that breaks the schema.
    pub fn build(self) -> Result<Faktura, Error> {
        let seller = self.seller.clone().ok_or_else(|| missing("Podmiot1"))?;
        let buyer = self.buyer.clone().ok_or_else(|| missing("Podmiot2"))?;
        let created = self.created_at.unwrap_or_else(OffsetDateTime::now_utc);
        let naglowek = TNaglowek {
            kod_formularza: KodFormularza {
                value: TKodFormularza::Fa,
                kod_systemowy: KodSystemowy::Fa3,
                wersja_schemy: WersjaSchemy::V10e,
            },
            wariant_formularza: WariantFormularza::V3,
            data_wytworzenia_fa: at(
                DataWytworzeniaFa::new(XsdDateTime::from_offset(created)),
                &["Naglowek", "DataWytworzeniaFa"],
            )?,
            system_info: opt_text(&self.system_info, &["Naglowek", "SystemInfo"])?,
        };
        let podmiot1 = Podmiot1 {
            prefiks_podatnika: None,
            nr_eori: None,
            dane_identyfikacyjne: TPodmiot1 {
                nip: val!(
                    TNrNip,
                    seller.nip.as_str(),
                    "Podmiot1" / "DaneIdentyfikacyjne" / "NIP"
                )?,
                nazwa: val!(
                    TZnakowy512,
                    seller.name.as_str(),
                    "Podmiot1" / "DaneIdentyfikacyjne" / "Nazwa"
                )?,
            },
            adres: seller.address.build().map_err(|e| e.at("Podmiot1", None))?,
            adres_koresp: None,
            dane_kontaktowe: if seller.email.is_some() || seller.phone.is_some() {
                vec![Podmiot1DaneKontaktowe {
                    email: opt_val::<TAdresEmail>(
                        &seller.email,
                        &["Podmiot1", "DaneKontaktowe", "Email"],
                    )?,
                    telefon: opt_val::<TNumerTelefonu>(
                        &seller.phone,
                        &["Podmiot1", "DaneKontaktowe", "Telefon"],
                    )?,
                }]
            } else {
                Vec::new()
            },
            status_info_podatnika: None,
        };
        let podmiot2 = build_buyer(&buyer)?;
        let mut podmiot3 = Vec::new();
        for t in &self.third {
            podmiot3.push(Podmiot3 {
                id_nabywcy: None,
                nr_eori: None,
                dane_identyfikacyjne: TPodmiot3 {
                    id: TPodmiot3Id::Nip(val!(
                        TNrNip,
                        t.nip.as_str(),
                        "Podmiot3" / "DaneIdentyfikacyjne" / "NIP"
                    )?),
                    nazwa_group: Some(TPodmiot3NazwaGroup {
                        nazwa: val!(
                            TZnakowy512,
                            t.name.as_str(),
                            "Podmiot3" / "DaneIdentyfikacyjne" / "Nazwa"
                        )?,
                    }),
                },
                adres: t
                    .address
                    .as_ref()
                    .map(Address::build)
                    .transpose()
                    .map_err(|e| e.at("Podmiot3", None))?,
                adres_koresp: None,
                dane_kontaktowe: Vec::new(),
                rola: Podmiot3Rola::Rola(t.role),
                udzial: None,
                nr_klienta: None,
            });
        }
        let fa = self.build_fa()?;
        Ok(Faktura {
            naglowek,
            podmiot1,
            podmiot2,
            podmiot3,
            podmiot_upowazniony: None,
            fa,
            stopka: None,
            zalacznik: None,
        })
    }

    fn build_fa(&self) -> Result<Fa, Error> {
        let kind = self.kind;
        // per-rate (net, vat) of the header
        let mut per_rate: Vec<(VatRate, Decimal, Decimal)> = Vec::new();
        let mut add = |rate: VatRate, net: Decimal, vat: Decimal| match per_rate
            .iter_mut()
            .find(|r| r.0 == rate)
        {
            Some(r) => {
                r.1 += net;
                r.2 += vat;
            }
            None => per_rate.push((rate, net, vat)),
        };
        let mut fa_wiersz = Vec::new();
        let mut zamowienie = None;
        if kind == TRodzajFaktury::Zal {
            let received = self.advance_gross.unwrap_or_default();
            let (z, parts) = self.build_order(received)?;
            zamowienie = Some(z);
            for (rate, net, vat) in parts {
                add(rate, net, vat);
            }
        } else {
            let mut nets: Vec<(VatRate, Decimal)> = Vec::new();
            let mut sum = |rate, n: Decimal| match nets.iter_mut().find(|r| r.0 == rate) {
                Some(r) => r.1 += n,
                None => nets.push((rate, n)),
            };
            for l in &self.lines_before {
                sum(l.rate, -l.net());
            }
            for l in &self.lines {
                sum(l.rate, l.net());
            }
            for (rate, net) in nets {
                add(rate, net, vat_of(net, rate));
            }
            let n = self.lines_before.len().max(self.lines.len());
            for i in 0..n {
                if let Some(l) = self.lines_before.get(i) {
                    fa_wiersz.push(build_line(l, i + 1, true)?);
                }
                if let Some(l) = self.lines.get(i) {
                    fa_wiersz.push(build_line(l, i + 1, false)?);
                }
            }
        }
        let rate_w = |vat: Decimal| {
            self.exchange_rate
                .filter(|_| self.currency != "PLN")
                .map(|r| round_grosze(vat * r))
        };
        let kw = |d: Decimal, f: &'static str| at(TKwotowy::new(round_grosze(d)), &["Fa", f]);
        let kw_opt = |d: Option<Decimal>, f: &'static str| d.map(|d| kw(d, f)).transpose();
        let bucket_sum = |b: Bucket| -> Option<(Decimal, Decimal)> {
            let rows: Vec<_> = per_rate.iter().filter(|r| bucket(r.0) == b).collect();
            if rows.is_empty() {
                None
            } else {
                Some((
                    rows.iter().map(|r| r.1).sum(),
                    rows.iter().map(|r| r.2).sum(),
                ))
            }
        };
        let mut gross = Decimal::ZERO;
        for r in &per_rate {
            gross += r.1 + r.2;
        }
        let p_15 = if kind == TRodzajFaktury::Roz {
            gross - self.advances.iter().map(|a| a.gross).sum::<Decimal>()
        } else if kind == TRodzajFaktury::Zal {
            self.advance_gross.unwrap_or_default()
        } else {
            gross
        };
        macro_rules! group {
            ($t:ident, $b:expr, $n:literal, $v:literal, $w:literal, $nf:ident, $vf:ident, $wf:ident) => {
                match bucket_sum($b) {
                    Some((n, v)) => Some($t {
                        $nf: kw(n, $n)?,
                        $vf: kw(v, $v)?,
                        $wf: kw_opt(rate_w(v), $w)?,
                    }),
                    None => None,
                }
            };
        }
        let single = |b: Bucket, f: &'static str| kw_opt(bucket_sum(b).map(|s| s.0), f);
        let has = |r: VatRate| {
            self.lines
                .iter()
                .chain(&self.lines_before)
                .any(|l| l.rate == r)
        };
        let zwolnienie = if has(VatRate::Zw) || self.exemption.is_some() {
            let ex = self.exemption.as_ref().ok_or_else(|| Error::Invalid {
                path: path(&["Fa", "Adnotacje", "Zwolnienie"]),
                problem: Problem::Rule(crate::Rule::ExemptionBasisMissing),
            })?;
            let p = &["Fa", "Adnotacje", "Zwolnienie"];
            let c = match ex {
                Exemption::Act(s) => {
                    ZwolnienieZwolnienieP19P19AChoice::P19a(at(TZnakowy::new(s.as_str()), p)?)
                }
                Exemption::Directive(s) => {
                    ZwolnienieZwolnienieP19P19AChoice::P19b(at(TZnakowy::new(s.as_str()), p)?)
                }
                Exemption::Other(s) => {
                    ZwolnienieZwolnienieP19P19AChoice::P19c(at(TZnakowy::new(s.as_str()), p)?)
                }
            };
            ZwolnienieZwolnienie::P19(ZwolnienieZwolnienieP19 {
                p_19: TWybor1::V1,
                p_19_a_choice: c,
            })
        } else {
            ZwolnienieZwolnienie::P19n(TWybor1::V1)
        };
        let yn = |b: bool| if b { TWybor12::V1 } else { TWybor12::V2 };
        let adnotacje = Adnotacje {
            p_16: yn(self.cash_method),
            p_17: yn(self.self_billing),
            p_18: yn(has(VatRate::Oo)),
            p_18_a: yn(self.split_payment),
            zwolnienie: Zwolnienie { zwolnienie },
            nowe_srodki_transportu: NoweSrodkiTransportu {
                nowe_srodki_transportu: NoweSrodkiTransportuNoweSrodkiTransportu::P22n(TWybor1::V1),
            },
            p_23: TWybor12::V2,
            p_marzy: PMarzy {
                p_marzy: PMarzyPMarzy::PpMarzyN(TWybor1::V1),
            },
        };
        let korekta = match &self.corrected {
            Some(c) => Some(FaPrzyczynaKorektyGroup {
                przyczyna_korekty: opt_text(&self.correction_reason, &["Fa", "PrzyczynaKorekty"])?,
                typ_korekty: None,
                dane_fa_korygowanej: vec![DaneFaKorygowanej {
                    data_wyst_fa_korygowanej: at(
                        TDataT::new(c.issue_date),
                        &["Fa", "DaneFaKorygowanej", "DataWystFaKorygowanej"],
                    )?,
                    nr_fa_korygowanej: at(
                        TZnakowy::new(c.number.as_str()),
                        &["Fa", "DaneFaKorygowanej", "NrFaKorygowanej"],
                    )?,
                    nr_ksef: match &c.ksef_number {
                        Some(k) => DaneFaKorygowanejNrKsef::NrKsef(DaneFaKorygowanejNrKsefNrKsef {
                            nr_ksef: TWybor1::V1,
                            nr_ksef_fa_korygowanej: at(
                                TNumerKsef::new(k.as_str()),
                                &["Fa", "DaneFaKorygowanej", "NrKSeFFaKorygowanej"],
                            )?,
                        }),
                        None => DaneFaKorygowanejNrKsef::NrKsefN(TWybor1::V1),
                    },
                }],
                okres_fa_korygowanej: None,
                nr_fa_korygowany: None,
                podmiot1_k: None,
                podmiot2_k: Vec::new(),
                p_15_zk_group: None,
            }),
            None => None,
        };
        let mut faktura_zaliczkowa = Vec::new();
        for a in &self.advances {
            let p = &["Fa", "FakturaZaliczkowa"];
            faktura_zaliczkowa.push(FakturaZaliczkowa {
                faktura: match &a.ksef_number {
                    Some(k) => FakturaZaliczkowaFaktura::NrKsefFaZaliczkowej(at(
                        TNumerKsef::new(k.as_str()),
                        p,
                    )?),
                    None => FakturaZaliczkowaFaktura::NrKsefZn(FakturaZaliczkowaFakturaNrKsefZn {
                        nr_ksef_zn: TWybor1::V1,
                        nr_fa_zaliczkowej: at(TZnakowy::new(a.number.as_str()), p)?,
                    }),
                },
            });
        }
        let mut dodatkowy_opis = Vec::new();
        for (k, v) in &self.notes {
            dodatkowy_opis.push(TKluczWartosc {
                nr_wiersza: None,
                klucz: at(TZnakowy::new(k.as_str()), &["Fa", "DodatkowyOpis", "Klucz"])?,
                wartosc: at(
                    TZnakowy::new(v.as_str()),
                    &["Fa", "DodatkowyOpis", "Wartosc"],
                )?,
            });
        }
        Ok(Fa {
            kod_waluty: at(
                crate::rt::XmlValue::parse_xml(self.currency.as_str()),
                &["Fa", "KodWaluty"],
            )?,
            p_1: at(TDataT::new(self.issue_date), &["Fa", "P_1"])?,
            p_1_m: opt_text(&self.place, &["Fa", "P_1M"])?,
            p_2: at(TZnakowy::new(self.number.as_str()), &["Fa", "P_2"])?,
            wz: Vec::new(),
            data_dostawy: match self.sale_date {
                Some(d) => Some(FaDataDostawy::P6(at(TDataT::new(d), &["Fa", "P_6"])?)),
                None => None,
            },
            p_13_1_group: group!(
                FaP131Group,
                Bucket::B1,
                "P_13_1",
                "P_14_1",
                "P_14_1W",
                p_13_1,
                p_14_1,
                p_14_1_w
            ),
            p_13_2_group: group!(
                FaP132Group,
                Bucket::B2,
                "P_13_2",
                "P_14_2",
                "P_14_2W",
                p_13_2,
                p_14_2,
                p_14_2_w
            ),
            p_13_3_group: group!(
                FaP133Group,
                Bucket::B3,
                "P_13_3",
                "P_14_3",
                "P_14_3W",
                p_13_3,
                p_14_3,
                p_14_3_w
            ),
            p_13_4_group: group!(
                FaP134Group,
                Bucket::B4,
                "P_13_4",
                "P_14_4",
                "P_14_4W",
                p_13_4,
                p_14_4,
                p_14_4_w
            ),
            p_13_5_group: None,
            p_13_6_1: single(Bucket::B61, "P_13_6_1")?,
            p_13_6_2: single(Bucket::B62, "P_13_6_2")?,
            p_13_6_3: single(Bucket::B63, "P_13_6_3")?,
            p_13_7: single(Bucket::B7, "P_13_7")?,
            p_13_8: single(Bucket::B8, "P_13_8")?,
            p_13_9: single(Bucket::B9, "P_13_9")?,
            p_13_10: single(Bucket::B10, "P_13_10")?,
            p_13_11: None,
            p_15: kw(p_15, "P_15")?,
            kurs_waluty_z: None,
            adnotacje,
            rodzaj_faktury: kind,
            przyczyna_korekty_group: korekta,
            zaliczka_czesciowa: Vec::new(),
            fp: None,
            tp: None,
            dodatkowy_opis,
            faktura_zaliczkowa,
            zwrot_akcyzy: None,
            fa_wiersz,
            rozliczenie: None,
            platnosc: self.payment.as_ref().map(build_payment).transpose()?,
            warunki_transakcji: None,
            zamowienie,
        })
    }

    /// The order of an advance invoice, and the received amount split over its rates.
    #[allow(clippy::type_complexity)] // (order, [(rate, net, vat)])
    fn build_order(
        &self,
        received: Decimal,
    ) -> Result<(Zamowienie, Vec<(VatRate, Decimal, Decimal)>), Error> {
        let mut rows = Vec::new();
        let mut by_rate: Vec<(VatRate, Decimal)> = Vec::new();
        let mut order_gross = Decimal::ZERO;
        for (i, l) in self.lines.iter().enumerate() {
            let net = l.net();
            let vat = vat_of(net, l.rate);
            order_gross += net + vat;
            match by_rate.iter_mut().find(|r| r.0 == l.rate) {
                Some(r) => r.1 += net + vat,
                None => by_rate.push((l.rate, net + vat)),
            }
            let p = &["Fa", "Zamowienie", "ZamowienieWiersz"];
            rows.push(ZamowienieWiersz {
                nr_wiersza_zam: at(TNaturalny::new(i64::try_from(i + 1).unwrap_or(i64::MAX)), p)?,
                uu_idz: None,
                p_7_z: Some(at(TZnakowy512::new(l.name.as_str()), p)?),
                indeks_z: None,
                gtinz: None,
                pk_wi_uz: None,
                cnz: None,
                pkobz: None,
                p_8_az: l
                    .unit
                    .as_deref()
                    .map(|s| at(TZnakowy::new(s), p))
                    .transpose()?,
                p_8_bz: Some(at(TIlosci::new(l.quantity), p)?),
                p_9_az: Some(at(TKwotowy2::new(l.unit_net_price), p)?),
                p_11_netto_z: Some(at(TKwotowy::new(net), p)?),
                p_11_vat_z: Some(at(TKwotowy::new(vat), p)?),
                p_12_z: Some(l.rate),
                p_12_z_xii: None,
                p_12_z_zal_15: None,
                gtuz: l.gtu,
                procedura_z: None,
                kwota_akcyzy_z: None,
                stan_przed_z: None,
            });
        }
        let mut parts = Vec::new();
        let mut left = received;
        for (i, (rate, g)) in by_rate.iter().enumerate() {
            let share = if i + 1 == by_rate.len() || order_gross.is_zero() {
                left
            } else {
                round_grosze(received * g / order_gross)
            };
            left -= share;
            let vat = match percent(*rate) {
                Some(p) => round_grosze(share * p / (Decimal::ONE_HUNDRED + p)),
                None => Decimal::ZERO,
            };
            parts.push((*rate, share - vat, vat));
        }
        let z = Zamowienie {
            wartosc_zamowienia: at(
                TKwotowy::new(order_gross),
                &["Fa", "Zamowienie", "WartoscZamowienia"],
            )?,
            zamowienie_wiersz: rows,
        };
        Ok((z, parts))
    }
}

fn path(p: &[&'static str]) -> FieldPath {
    FieldPath(
        p.iter()
            .map(|n| Segment {
                name: std::borrow::Cow::Borrowed(n),
                index: None,
            })
            .collect(),
    )
}

fn missing(name: &'static str) -> Error {
    Error::Invalid {
        path: path(&[name]),
        problem: Problem::Missing { found: None },
    }
}

fn opt_text(s: &Option<String>, p: &[&'static str]) -> Result<Option<TZnakowy>, Error> {
    s.as_deref().map(|s| at(TZnakowy::new(s), p)).transpose()
}

fn opt_val<T: std::str::FromStr<Err = ValueError>>(
    s: &Option<String>,
    p: &[&'static str],
) -> Result<Option<T>, Error> {
    s.as_deref().map(|s| at(s.parse::<T>(), p)).transpose()
}

fn build_buyer(b: &Buyer) -> Result<Podmiot2, Error> {
    let p = |f: &'static str| ["Podmiot2", "DaneIdentyfikacyjne", f];
    let id = match &b.id {
        BuyerId::Nip(n) => TPodmiot2Id::Nip(at(TNrNip::new(n.as_str()), &p("NIP"))?),
        BuyerId::Eu { country, vat } => TPodmiot2Id::KodUe(TPodmiot2IdKodUe {
            kod_ue: at(country.parse::<TKodyKrajowUe>(), &p("KodUE"))?,
            nr_vat_ue: at(TNrVatUe::new(vat.as_str()), &p("NrVatUE"))?,
        }),
        BuyerId::Foreign { country, id } => TPodmiot2Id::KodKraju(TPodmiot2IdKodKraju {
            kod_kraju: country
                .as_deref()
                .map(|c| at(c.parse::<TKodKraju>(), &p("KodKraju")))
                .transpose()?,
            nr_id: at(NrId::new(id.as_str()), &p("NrID"))?,
        }),
        BuyerId::None => TPodmiot2Id::BrakId(TWybor1::V1),
    };
    Ok(Podmiot2 {
        nr_eori: None,
        dane_identyfikacyjne: TPodmiot2 {
            id,
            nazwa_group: match &b.name {
                Some(n) => Some(TPodmiot2NazwaGroup {
                    nazwa: at(TZnakowy512::new(n.as_str()), &p("Nazwa"))?,
                }),
                None => None,
            },
        },
        adres: b
            .address
            .as_ref()
            .map(Address::build)
            .transpose()
            .map_err(|e| e.at("Podmiot2", None))?,
        adres_koresp: None,
        dane_kontaktowe: match &b.email {
            Some(e) => vec![Podmiot2DaneKontaktowe {
                email: Some(at(
                    TAdresEmail::new(e.as_str()),
                    &["Podmiot2", "DaneKontaktowe", "Email"],
                )?),
                telefon: None,
            }],
            None => Vec::new(),
        },
        nr_klienta: opt_text(&b.customer_number, &["Podmiot2", "NrKlienta"])?,
        id_nabywcy: None,
        jst: if b.jst { Jst::V1 } else { Jst::V2 },
        gv: if b.gv { Gv::V1 } else { Gv::V2 },
    })
}

fn build_line(l: &Line, nr: usize, before: bool) -> Result<FaWiersz, Error> {
    let p = |f: &'static str| ["Fa", "FaWiersz", f];
    Ok(FaWiersz {
        nr_wiersza_fa: at(
            TNaturalny::new(i64::try_from(nr).unwrap_or(i64::MAX)),
            &p("NrWierszaFa"),
        )?,
        uu_id: None,
        p_6_a: None,
        p_7: Some(at(TZnakowy512::new(l.name.as_str()), &p("P_7"))?),
        indeks: l
            .index
            .as_deref()
            .map(|s| at(TZnakowy50::new(s), &p("Indeks")))
            .transpose()?,
        gtin: None,
        pk_wi_u: None,
        cn: None,
        pkob: None,
        p_8_a: l
            .unit
            .as_deref()
            .map(|s| at(TZnakowy::new(s), &p("P_8A")))
            .transpose()?,
        p_8_b: Some(at(TIlosci::new(l.quantity), &p("P_8B"))?),
        p_9_a: Some(at(TKwotowy2::new(l.unit_net_price), &p("P_9A"))?),
        p_9_b: None,
        p_10: None,
        p_11: Some(at(TKwotowy::new(l.net()), &p("P_11"))?),
        p_11_a: None,
        p_11_vat: None,
        p_12: Some(l.rate),
        p_12_xii: None,
        p_12_zal_15: None,
        kwota_akcyzy: None,
        gtu: l.gtu,
        procedura: None,
        kurs_waluty: None,
        stan_przed: before.then_some(TWybor1::V1),
    })
}

fn build_payment(pay: &Payment) -> Result<Platnosc, Error> {
    let mut accounts = Vec::new();
    for (nr, bank) in &pay.accounts {
        accounts.push(TRachunekBankowy {
            nr_rb: at(
                TNrRb::new(nr.as_str()),
                &["Fa", "Platnosc", "RachunekBankowy", "NrRB"],
            )?,
            swift: None,
            rachunek_wlasny_banku: None,
            nazwa_banku: opt_text(bank, &["Fa", "Platnosc", "RachunekBankowy", "NazwaBanku"])?,
            opis_rachunku: None,
        });
    }
    Ok(Platnosc {
        zaplata: match pay.paid_on {
            Some(d) => Some(PlatnoscZaplata::Zaplacono(PlatnoscZaplataZaplacono {
                zaplacono: TWybor1::V1,
                data_zaplaty: at(TData::new(d), &["Fa", "Platnosc", "DataZaplaty"])?,
            })),
            None => None,
        },
        termin_platnosci: match pay.due {
            Some(d) => vec![TerminPlatnosci {
                termin: Some(at(
                    TData::new(d),
                    &["Fa", "Platnosc", "TerminPlatnosci", "Termin"],
                )?),
                termin_opis: None,
            }],
            None => Vec::new(),
        },
        forma_platnosci: pay.form.map(PlatnoscFormaPlatnosci::FormaPlatnosci),
        rachunek_bankowy: accounts,
        rachunek_bankowy_faktora: Vec::new(),
        skonto: None,
        link_do_platnosci: None,
        ip_ksef: None,
    })
}
