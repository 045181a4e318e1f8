//! Validation before sending: the schema's structural rules that the types cannot hold
//! (repetition counts, fixed values) plus the semantic checks KSeF applies.

use rust_decimal::Decimal;
use time::Date;

use crate::error::{Error, FieldPath, Problem, Segment};
use crate::model::{
    Fa, FaWiersz, Faktura, TPodmiot2Id, TPodmiot3Id, TRodzajFaktury, TStawkaPodatku,
};
use crate::rt::Check;

/// A business rule broken by an invoice that is schema-valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Rule {
    /// A NIP whose check digit is wrong (weights 6 5 7 2 3 4 5 6 7, sum mod 11).
    #[error("NIP \"{nip}\" has a wrong check digit")]
    NipChecksum {
        /// The NIP.
        nip: String,
    },
    /// The issue date (`P_1`) lies in the future.
    #[error("issue date {date} is in the future (today is {today})")]
    IssueDateInFuture {
        /// `P_1`.
        date: Date,
        /// The date it was checked against.
        today: Date,
    },
    /// A total does not match the sum computed from the lines.
    #[error("is {found}, but the lines give {expected}{}", or_per_line(.per_line))]
    TotalMismatch {
        /// Computed from the lines (for a VAT total `P_14_x`: the VAT of the summed net
        /// amounts per rate, rounded once).
        expected: Decimal,
        /// Found in the invoice.
        found: Decimal,
        /// For a VAT total whose per-line method gives another amount: the sum of the VAT of
        /// each line rounded to grosze (also accepted).
        per_line: Option<Decimal>,
    },
    /// A correction invoice (KOR, KOR_ZAL, KOR_ROZ) that does not name the corrected invoice.
    #[error("a correction invoice must name the corrected invoice (DaneFaKorygowanej)")]
    CorrectionWithoutReference,
    /// A line has rate `zw` but the invoice gives no legal basis for the exemption (`P_19` = 1
    /// with `P_19A`, `P_19B` or `P_19C`).
    #[error("a line is exempt (zw): give the legal basis of the exemption (P_19A/P_19B/P_19C)")]
    ExemptionBasisMissing,
    /// A line net amount that does not equal quantity × unit net price rounded to grosze.
    #[error("net amount {found} differs from quantity × unit price = {expected}")]
    LineNetMismatch {
        /// `round(P_8B × P_9A, 2)`.
        expected: Decimal,
        /// `P_11`.
        found: Decimal,
    },
}

fn or_per_line(per_line: &Option<Decimal>) -> String {
    per_line.map_or_else(String::new, |v| {
        format!(" (or {v} with the VAT rounded per line and summed)")
    })
}

/// The UTC offset of Polish civil time (Europe/Warsaw) at the instant `at`: CEST (UTC+2) from
/// the last Sunday of March 01:00 UTC until the last Sunday of October 01:00 UTC, CET (UTC+1)
/// otherwise (the EU summer-time rule, Directive 2000/84/EC).
///
/// A pure function of our own instead of a time-zone database: Poland has followed this one
/// rule since 1996 and `validate` needs only "which day is it in Poland".
pub fn poland_offset(at: time::OffsetDateTime) -> time::UtcOffset {
    let utc = at.to_offset(time::UtcOffset::UTC);
    let year = utc.year();
    let summer = match (
        last_sunday_0100_utc(year, time::Month::March),
        last_sunday_0100_utc(year, time::Month::October),
    ) {
        (Some(start), Some(end)) => utc >= start && utc < end,
        // only outside time's supported years; winter time is the safe side for "not in the
        // future" checks at the edges of the calendar
        _ => false,
    };
    if summer {
        time::macros::offset!(+2)
    } else {
        time::macros::offset!(+1)
    }
}

/// The last Sunday of `month` (March or October: 31 days) in `year`, at 01:00 UTC.
fn last_sunday_0100_utc(year: i32, month: time::Month) -> Option<time::OffsetDateTime> {
    let last = Date::from_calendar_date(year, month, 31).ok()?;
    let back = i64::from(last.weekday().number_days_from_sunday());
    let sunday = last.checked_sub(time::Duration::days(back))?;
    Some(sunday.with_hms(1, 0, 0).ok()?.assume_utc())
}

/// The calendar date in Poland (Europe/Warsaw civil time) at the instant `at`.
pub fn date_in_poland(at: time::OffsetDateTime) -> Date {
    at.to_offset(poland_offset(at)).date()
}

/// Checks a NIP's check digit with `ksef_model::ids::Nip` (the pattern is already checked by
/// the schema type).
pub(crate) fn nip_checksum_ok(nip: &str) -> bool {
    ksef_model::ids::Nip::parse_lenient(nip).is_ok_and(|n| n.has_valid_checksum())
}

/// The `P_13_x`/`P_14_x` bucket of a VAT rate (Ministry's FA(3) mapping).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Bucket {
    /// 23 / 22 → P_13_1, P_14_1
    B1,
    /// 8 / 7 → P_13_2, P_14_2
    B2,
    /// 5 → P_13_3, P_14_3
    B3,
    /// 4 / 3 (taxi flat rate) → P_13_4, P_14_4
    B4,
    /// 0 KR → P_13_6_1
    B61,
    /// 0 WDT → P_13_6_2
    B62,
    /// 0 EX → P_13_6_3
    B63,
    /// zw → P_13_7
    B7,
    /// np I → P_13_8
    B8,
    /// np II → P_13_9
    B9,
    /// oo → P_13_10
    B10,
}

pub(crate) fn bucket(rate: TStawkaPodatku) -> Bucket {
    use TStawkaPodatku as S;
    match rate {
        S::V23 | S::V22 => Bucket::B1,
        S::V8 | S::V7 => Bucket::B2,
        S::V5 => Bucket::B3,
        S::V4 | S::V3 => Bucket::B4,
        S::V0Kr => Bucket::B61,
        S::V0Wdt => Bucket::B62,
        S::V0Ex => Bucket::B63,
        S::Zw => Bucket::B7,
        S::NpI => Bucket::B8,
        S::NpIi => Bucket::B9,
        S::Oo => Bucket::B10,
    }
}

/// The VAT percentage of a rate, `None` for rates without tax (0 %, zw, oo, np).
pub(crate) fn percent(rate: TStawkaPodatku) -> Option<Decimal> {
    use TStawkaPodatku as S;
    let p = match rate {
        S::V23 => 23,
        S::V22 => 22,
        S::V8 => 8,
        S::V7 => 7,
        S::V5 => 5,
        S::V4 => 4,
        S::V3 => 3,
        _ => return None,
    };
    Some(Decimal::from(p))
}

/// Rounds half away from zero to grosze (the Ministry's rule: "końcówki kwot wynoszące mniej
/// niż 0,5 grosza pomija się, a końcówki kwot wynoszące 0,5 grosza i więcej zaokrągla się do
/// 1 grosza").
pub fn round_grosze(d: Decimal) -> Decimal {
    d.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero)
}

/// VAT of a bucket: from the sum of net amounts per rate, rounded half-up to grosze.
pub(crate) fn vat_of(net: Decimal, rate: TStawkaPodatku) -> Decimal {
    match percent(rate) {
        Some(p) => round_grosze(net * p / Decimal::ONE_HUNDRED),
        None => Decimal::ZERO,
    }
}

fn path(names: &[(&'static str, Option<usize>)]) -> FieldPath {
    FieldPath(
        names
            .iter()
            .map(|(n, i)| Segment {
                name: std::borrow::Cow::Borrowed(n),
                index: *i,
            })
            .collect(),
    )
}

fn rule(p: &[(&'static str, Option<usize>)], r: Rule) -> Error {
    Error::Invalid {
        path: path(p),
        problem: Problem::Rule(r),
    }
}

/// One header bucket: bucket, net field name, net, (VAT field name, VAT).
type HeaderTotal = (
    Bucket,
    &'static str,
    Decimal,
    Option<(&'static str, Decimal)>,
);

/// Per-bucket totals from the invoice header, as written.
fn header_totals(fa: &Fa) -> Vec<HeaderTotal> {
    let mut v = Vec::new();
    if let Some(g) = &fa.p_13_1_group {
        v.push((
            Bucket::B1,
            "P_13_1",
            g.p_13_1.get(),
            Some(("P_14_1", g.p_14_1.get())),
        ));
    }
    if let Some(g) = &fa.p_13_2_group {
        v.push((
            Bucket::B2,
            "P_13_2",
            g.p_13_2.get(),
            Some(("P_14_2", g.p_14_2.get())),
        ));
    }
    if let Some(g) = &fa.p_13_3_group {
        v.push((
            Bucket::B3,
            "P_13_3",
            g.p_13_3.get(),
            Some(("P_14_3", g.p_14_3.get())),
        ));
    }
    if let Some(g) = &fa.p_13_4_group {
        v.push((
            Bucket::B4,
            "P_13_4",
            g.p_13_4.get(),
            Some(("P_14_4", g.p_14_4.get())),
        ));
    }
    let single = [
        (Bucket::B61, "P_13_6_1", fa.p_13_6_1),
        (Bucket::B62, "P_13_6_2", fa.p_13_6_2),
        (Bucket::B63, "P_13_6_3", fa.p_13_6_3),
        (Bucket::B7, "P_13_7", fa.p_13_7),
        (Bucket::B8, "P_13_8", fa.p_13_8),
        (Bucket::B9, "P_13_9", fa.p_13_9),
        (Bucket::B10, "P_13_10", fa.p_13_10),
    ];
    for (b, n, x) in single {
        if let Some(x) = x {
            v.push((b, n, x.get(), None));
        }
    }
    v
}

fn line_nets(lines: &[FaWiersz]) -> Option<Vec<(Bucket, TStawkaPodatku, Decimal)>> {
    let mut out = Vec::new();
    for l in lines {
        // gross-based lines (P_11A) or lines without a rate: totals are not derivable here
        let (Some(net), Some(rate)) = (l.p_11, l.p_12) else {
            return None;
        };
        if l.stan_przed.is_some() {
            return None;
        }
        out.push((bucket(rate), rate, net.get()));
    }
    Some(out)
}

impl Faktura {
    /// Validates the invoice before sending, with "today" the current date in Poland
    /// ([`date_in_poland`] of the system clock: CET/CEST).
    pub fn validate(&self) -> Result<(), Vec<Error>> {
        let today = date_in_poland(time::OffsetDateTime::now_utc());
        self.validate_at(today)
    }

    /// Validates the invoice as of `today`: the schema's repetition counts and fixed values
    /// (every value is already valid by construction), then the rules KSeF applies — NIP check
    /// digits of the parties, issue date not in the future, per-rate totals and `P_15`
    /// consistent with the lines, line net = quantity × unit price, and a correction names the
    /// invoice it corrects. Each error names its field path.
    pub fn validate_at(&self, today: Date) -> Result<(), Vec<Error>> {
        let mut c = Check::new();
        self.check(&mut c);
        let mut errs = c.errors;
        self.semantic(today, &mut errs);
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    fn semantic(&self, today: Date, errs: &mut Vec<Error>) {
        let nip_rule = |nip: &str, p: &[(&'static str, Option<usize>)], errs: &mut Vec<Error>| {
            if !nip_checksum_ok(nip) {
                errs.push(rule(
                    p,
                    Rule::NipChecksum {
                        nip: nip.to_owned(),
                    },
                ));
            }
        };
        nip_rule(
            self.podmiot1.dane_identyfikacyjne.nip.as_str(),
            &[
                ("Podmiot1", None),
                ("DaneIdentyfikacyjne", None),
                ("NIP", None),
            ],
            errs,
        );
        if let TPodmiot2Id::Nip(n) = &self.podmiot2.dane_identyfikacyjne.id {
            nip_rule(
                n.as_str(),
                &[
                    ("Podmiot2", None),
                    ("DaneIdentyfikacyjne", None),
                    ("NIP", None),
                ],
                errs,
            );
        }
        for (i, p3) in self.podmiot3.iter().enumerate() {
            if let TPodmiot3Id::Nip(n) = &p3.dane_identyfikacyjne.id {
                nip_rule(
                    n.as_str(),
                    &[
                        ("Podmiot3", Some(i + 1)),
                        ("DaneIdentyfikacyjne", None),
                        ("NIP", None),
                    ],
                    errs,
                );
            }
        }
        if let Some(pu) = &self.podmiot_upowazniony {
            nip_rule(
                pu.dane_identyfikacyjne.nip.as_str(),
                &[
                    ("PodmiotUpowazniony", None),
                    ("DaneIdentyfikacyjne", None),
                    ("NIP", None),
                ],
                errs,
            );
        }
        let fa = &self.fa;
        if fa.p_1.get() > today {
            errs.push(rule(
                &[("Fa", None), ("P_1", None)],
                Rule::IssueDateInFuture {
                    date: fa.p_1.get(),
                    today,
                },
            ));
        }
        let kind = fa.rodzaj_faktury;
        let is_kor = matches!(
            kind,
            TRodzajFaktury::Kor | TRodzajFaktury::KorZal | TRodzajFaktury::KorRoz
        );
        if is_kor
            && fa
                .przyczyna_korekty_group
                .as_ref()
                .is_none_or(|g| g.dane_fa_korygowanej.is_empty())
        {
            errs.push(rule(
                &[("Fa", None), ("DaneFaKorygowanej", None)],
                Rule::CorrectionWithoutReference,
            ));
        }
        let has_zw = fa
            .fa_wiersz
            .iter()
            .any(|l| l.p_12 == Some(TStawkaPodatku::Zw));
        if has_zw
            && matches!(
                fa.adnotacje.zwolnienie.zwolnienie,
                crate::model::ZwolnienieZwolnienie::P19n(_)
            )
        {
            errs.push(rule(
                &[("Fa", None), ("Adnotacje", None), ("Zwolnienie", None)],
                Rule::ExemptionBasisMissing,
            ));
        }
        // line arithmetic: P_11 = round(P_8B × P_9A, 2) when all three are given
        for (i, l) in fa.fa_wiersz.iter().enumerate() {
            if let (Some(q), Some(p), Some(net)) = (l.p_8_b, l.p_9_a, l.p_11) {
                let expected = round_grosze(q.get() * p.get());
                if expected != net.get() {
                    errs.push(rule(
                        &[("Fa", None), ("FaWiersz", Some(i + 1)), ("P_11", None)],
                        Rule::LineNetMismatch {
                            expected,
                            found: net.get(),
                        },
                    ));
                }
            }
        }
        // per-rate totals (VAT, UPR and ROZ invoices with net-based lines)
        if is_kor || fa.fa_wiersz.is_empty() || kind == TRodzajFaktury::Zal {
            return;
        }
        let Some(lines) = line_nets(&fa.fa_wiersz) else {
            return;
        };
        let mut sums: Vec<(Bucket, TStawkaPodatku, Decimal)> = Vec::new();
        for &(b, r, n) in &lines {
            match sums.iter_mut().find(|(_, r2, _)| *r2 == r) {
                Some(s) => s.2 += n,
                None => sums.push((b, r, n)),
            }
        }
        let header = header_totals(fa);
        let mut total = Decimal::ZERO;
        let mut buckets: Vec<Bucket> = sums.iter().map(|s| s.0).collect();
        buckets.extend(header.iter().map(|h| h.0));
        buckets.sort();
        buckets.dedup();
        for b in buckets {
            let net: Decimal = sums.iter().filter(|s| s.0 == b).map(|s| s.2).sum();
            // Two legal ways to the VAT of a rate: once on the summed nets (the Ministry's
            // example) or per line, rounded, then summed (what much invoicing software does).
            // Either is accepted; a mismatch reports the first and, if different, the second.
            let vat: Decimal = sums
                .iter()
                .filter(|s| s.0 == b)
                .map(|s| vat_of(s.2, s.1))
                .sum();
            let vat_per_line: Decimal = lines
                .iter()
                .filter(|l| l.0 == b)
                .map(|l| vat_of(l.2, l.1))
                .sum();
            let h = header.iter().find(|h| h.0 == b);
            let (name, found_net, vat_field) = match h {
                Some((_, n, v, vf)) => (*n, *v, *vf),
                None => {
                    let name = match b {
                        Bucket::B1 => "P_13_1",
                        Bucket::B2 => "P_13_2",
                        Bucket::B3 => "P_13_3",
                        Bucket::B4 => "P_13_4",
                        Bucket::B61 => "P_13_6_1",
                        Bucket::B62 => "P_13_6_2",
                        Bucket::B63 => "P_13_6_3",
                        Bucket::B7 => "P_13_7",
                        Bucket::B8 => "P_13_8",
                        Bucket::B9 => "P_13_9",
                        Bucket::B10 => "P_13_10",
                    };
                    (name, Decimal::ZERO, None)
                }
            };
            if found_net != net {
                errs.push(rule(
                    &[("Fa", None), (name, None)],
                    Rule::TotalMismatch {
                        expected: net,
                        found: found_net,
                        per_line: None,
                    },
                ));
            }
            if let Some((vn, found_vat)) = vat_field
                && found_vat != vat
                && found_vat != vat_per_line
            {
                errs.push(rule(
                    &[("Fa", None), (vn, None)],
                    Rule::TotalMismatch {
                        expected: vat,
                        found: found_vat,
                        per_line: (vat_per_line != vat).then_some(vat_per_line),
                    },
                ));
            }
            total += found_net + vat_field.map_or(Decimal::ZERO, |v| v.1);
        }
        if kind != TRodzajFaktury::Roz
            && fa.p_13_11.is_none()
            && fa.p_13_5_group.is_none()
            && fa.p_15.get() != total
        {
            errs.push(rule(
                &[("Fa", None), ("P_15", None)],
                Rule::TotalMismatch {
                    expected: total,
                    found: fa.p_15.get(),
                    per_line: None,
                },
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::{datetime, offset};

    #[test]
    fn poland_offset_at_the_spring_edge() {
        // 2026: last Sunday of March is the 29th; clocks go 02:00 CET -> 03:00 CEST
        assert_eq!(
            poland_offset(datetime!(2026-03-29 00:59:59 UTC)),
            offset!(+1)
        );
        assert_eq!(
            poland_offset(datetime!(2026-03-29 01:00:00 UTC)),
            offset!(+2)
        );
        // 2024: March 31 itself is the last Sunday
        assert_eq!(
            poland_offset(datetime!(2024-03-31 00:59:59 UTC)),
            offset!(+1)
        );
        assert_eq!(
            poland_offset(datetime!(2024-03-31 01:00:00 UTC)),
            offset!(+2)
        );
        assert_eq!(
            poland_offset(datetime!(2024-03-24 12:00:00 UTC)),
            offset!(+1)
        );
    }

    #[test]
    fn poland_offset_at_the_autumn_edge() {
        // 2026: last Sunday of October is the 25th; clocks go 03:00 CEST -> 02:00 CET
        assert_eq!(
            poland_offset(datetime!(2026-10-25 00:59:59 UTC)),
            offset!(+2)
        );
        assert_eq!(
            poland_offset(datetime!(2026-10-25 01:00:00 UTC)),
            offset!(+1)
        );
        // 2025: October 26
        assert_eq!(
            poland_offset(datetime!(2025-10-26 00:59:59 UTC)),
            offset!(+2)
        );
        assert_eq!(
            poland_offset(datetime!(2025-10-26 01:00:00 UTC)),
            offset!(+1)
        );
        // an instant given in another zone is the same instant
        assert_eq!(
            poland_offset(datetime!(2026-10-25 02:59:59 +02:00)),
            offset!(+2)
        );
        assert_eq!(
            poland_offset(datetime!(2026-10-25 03:00:00 +02:00)),
            offset!(+1)
        );
    }

    #[test]
    fn date_in_poland_turns_at_local_midnight() {
        // winter: midnight is 23:00 UTC
        assert_eq!(
            date_in_poland(datetime!(2026-12-31 22:59:59 UTC)),
            time::macros::date!(2026 - 12 - 31)
        );
        assert_eq!(
            date_in_poland(datetime!(2026-12-31 23:00:00 UTC)),
            time::macros::date!(2027 - 01 - 01)
        );
        // summer: midnight is 22:00 UTC
        assert_eq!(
            date_in_poland(datetime!(2026-06-30 21:59:59 UTC)),
            time::macros::date!(2026 - 06 - 30)
        );
        assert_eq!(
            date_in_poland(datetime!(2026-06-30 22:00:00 UTC)),
            time::macros::date!(2026 - 07 - 01)
        );
        // the night of the spring change is still in winter time at midnight
        assert_eq!(
            date_in_poland(datetime!(2026-03-28 22:59:59 UTC)),
            time::macros::date!(2026 - 03 - 28)
        );
        assert_eq!(
            date_in_poland(datetime!(2026-03-28 23:00:00 UTC)),
            time::macros::date!(2026 - 03 - 29)
        );
        // and the night of the autumn change in summer time
        assert_eq!(
            date_in_poland(datetime!(2026-10-24 21:59:59 UTC)),
            time::macros::date!(2026 - 10 - 24)
        );
        assert_eq!(
            date_in_poland(datetime!(2026-10-24 22:00:00 UTC)),
            time::macros::date!(2026 - 10 - 25)
        );
    }
}
