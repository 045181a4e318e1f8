//! Validated identifier newtypes: [`Nip`], [`Pesel`], [`InternalId`], [`NipVatUe`], [`PeppolId`],
//! [`KsefNumber`], [`ReferenceNumber`] and [`Sha256Base64`].
//!
//! Every type parses with [`FromStr`], prints with [`Display`](fmt::Display) and (de)serializes as a JSON string.
//! Invalid input gives an [`IdError`] naming the identifier kind and what is wrong.
//!
//! # Strict and lenient NIP/PESEL
//!
//! KSeF TEST does not validate NIP checksums (only PRODUCTION does), so responses from TEST may carry
//! NIPs with a bad checksum. [`Nip::from_str`] / [`Nip::new`] are strict (pattern **and** checksum);
//! serde `Deserialize` and [`Nip::parse_lenient`] accept any NIP matching the OpenAPI pattern, and
//! [`Nip::has_valid_checksum`] tells the two apart. [`Pesel`] has the same split (lenient = the OpenAPI
//! pattern), and so has [`InternalId`] for its check digit. Composite identifiers ([`InternalId`],
//! [`NipVatUe`], [`KsefNumber`]) check their NIP part against the pattern only, for the same reason.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month};

/// The kind of identifier an [`IdError`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum IdKind {
    /// Polish tax identification number.
    Nip,
    /// Polish personal identification number.
    Pesel,
    /// KSeF internal identifier (`NIP-nnnnn`).
    InternalId,
    /// Composite Polish NIP + EU VAT number.
    NipVatUe,
    /// Peppol service provider identifier.
    PeppolId,
    /// KSeF invoice number.
    KsefNumber,
    /// KSeF operation reference number.
    ReferenceNumber,
    /// Base64 SHA-256 digest.
    Sha256Base64,
}

impl fmt::Display for IdKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdKind::Nip => "NIP",
            IdKind::Pesel => "PESEL",
            IdKind::InternalId => "internal ID",
            IdKind::NipVatUe => "NIP-VAT-UE identifier",
            IdKind::PeppolId => "Peppol ID",
            IdKind::KsefNumber => "KSeF number",
            IdKind::ReferenceNumber => "reference number",
            IdKind::Sha256Base64 => "SHA-256 Base64 digest",
        })
    }
}

/// Why an identifier was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdError {
    /// The identifier has the wrong number of characters.
    #[error("{kind} has wrong length: expected {expected} characters, found {found}")]
    Length {
        /// Identifier kind.
        kind: IdKind,
        /// Expected length, e.g. `"10"` or `"35 or 36"`.
        expected: &'static str,
        /// Number of characters found.
        found: usize,
    },
    /// A character is not allowed at its position.
    #[error("{kind} has invalid character {found:?} at position {position}: expected {expected}")]
    Character {
        /// Identifier kind.
        kind: IdKind,
        /// Zero-based character position.
        position: usize,
        /// The offending character.
        found: char,
        /// What was expected there, e.g. `"a digit"`.
        expected: &'static str,
    },
    /// The check digit / checksum does not match.
    #[error("{kind} checksum mismatch: expected {expected}, found {found}")]
    Checksum {
        /// Identifier kind.
        kind: IdKind,
        /// Expected check value (e.g. `digit 5` or `AF`).
        expected: String,
        /// Check value found in the input.
        found: String,
    },
    /// Any other structural problem (described in `reason`).
    #[error("invalid {kind}: {reason}")]
    Invalid {
        /// Identifier kind.
        kind: IdKind,
        /// What is wrong.
        reason: String,
    },
}

impl IdError {
    /// The identifier kind this error is about.
    pub fn kind(&self) -> IdKind {
        match self {
            IdError::Length { kind, .. }
            | IdError::Character { kind, .. }
            | IdError::Checksum { kind, .. }
            | IdError::Invalid { kind, .. } => *kind,
        }
    }

    fn invalid(kind: IdKind, reason: impl Into<String>) -> Self {
        IdError::Invalid {
            kind,
            reason: reason.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// small character-level helpers (hand-written: a regex engine would be a heavy dependency for a
// handful of fixed-width patterns, and these give position-precise error messages)

fn check_len(kind: IdKind, s: &str, expected: usize, label: &'static str) -> Result<(), IdError> {
    let found = s.chars().count();
    if found != expected || s.len() != expected {
        return Err(IdError::Length {
            kind,
            expected: label,
            found,
        });
    }
    Ok(())
}

fn bad_char(kind: IdKind, s: &str, position: usize, expected: &'static str) -> IdError {
    IdError::Character {
        kind,
        position,
        found: s.chars().nth(position).unwrap_or('\u{FFFD}'),
        expected,
    }
}

/// Checks that `s[range]` is all ASCII digits; `s` must be ASCII.
fn check_digits(kind: IdKind, s: &str, from: usize, to: usize) -> Result<(), IdError> {
    for (i, b) in s.as_bytes()[from..to].iter().enumerate() {
        if !b.is_ascii_digit() {
            return Err(bad_char(kind, s, from + i, "a digit"));
        }
    }
    Ok(())
}

fn check_upper_hex(kind: IdKind, s: &str, from: usize, to: usize) -> Result<(), IdError> {
    for (i, b) in s.as_bytes()[from..to].iter().enumerate() {
        if !(b.is_ascii_digit() || (b'A'..=b'F').contains(b)) {
            return Err(bad_char(
                kind,
                s,
                from + i,
                "an uppercase hex digit (0-9, A-F)",
            ));
        }
    }
    Ok(())
}

fn check_literal(
    kind: IdKind,
    s: &str,
    at: usize,
    lit: u8,
    expected: &'static str,
) -> Result<(), IdError> {
    if s.as_bytes()[at] != lit {
        return Err(bad_char(kind, s, at, expected));
    }
    Ok(())
}

fn ensure_ascii(kind: IdKind, s: &str) -> Result<(), IdError> {
    if let Some((pos, c)) = s.chars().enumerate().find(|(_, c)| !c.is_ascii()) {
        return Err(IdError::Character {
            kind,
            position: pos,
            found: c,
            expected: "an ASCII character",
        });
    }
    Ok(())
}

fn digit(b: u8) -> u32 {
    u32::from(b - b'0')
}

/// Parses `YYYYMMDD` (already checked to be 8 digits) into a calendar date.
fn parse_yyyymmdd(kind: IdKind, s: &str) -> Result<Date, IdError> {
    let b = s.as_bytes();
    let n = |r: std::ops::Range<usize>| b[r].iter().fold(0u32, |acc, &c| acc * 10 + digit(c));
    let (y, m, d) = (n(0..4), n(4..6), n(6..8));
    let month = u8::try_from(m)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| IdError::invalid(kind, format!("month {m:02} in date {s} is not 01-12")))?;
    let year =
        i32::try_from(y).map_err(|_| IdError::invalid(kind, format!("year {y} out of range")))?;
    let day =
        u8::try_from(d).map_err(|_| IdError::invalid(kind, format!("day {d} out of range")))?;
    Date::from_calendar_date(year, month, day)
        .map_err(|_| IdError::invalid(kind, format!("{s} is not a valid calendar date")))
}

fn format_yyyymmdd(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Shared boilerplate: `Display`, `AsRef<str>`, `as_str`, `into_string`, `FromStr`, `TryFrom`,
/// `Serialize` (as string) and, unless `lenient_de` is given, a strict `Deserialize`.
macro_rules! string_id {
    ($ty:ident) => {
        string_id!(@common $ty);
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
    ($ty:ident, lenient_de) => {
        string_id!(@common $ty);
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $ty::parse_lenient(&s).map_err(serde::de::Error::custom)
            }
        }
    };
    (@common $ty:ident) => {
        impl $ty {
            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
            /// The identifier as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
        impl AsRef<str> for $ty {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl From<$ty> for String {
            fn from(v: $ty) -> String {
                v.0
            }
        }
        impl TryFrom<&str> for $ty {
            type Error = IdError;
            fn try_from(s: &str) -> Result<Self, IdError> {
                s.parse()
            }
        }
        impl TryFrom<String> for $ty {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                s.parse()
            }
        }
        impl PartialEq<str> for $ty {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }
        impl PartialEq<&str> for $ty {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

// ---------------------------------------------------------------------------------------------
// NIP

const NIP_WEIGHTS: [u32; 9] = [6, 5, 7, 2, 3, 4, 5, 6, 7];

/// Polish tax identification number (NIP): 10 digits, pattern
/// `^[1-9]((\d[1-9])|([1-9]\d))\d{7}$`, mod-11 checksum with weights 6,5,7,2,3,4,5,6,7.
///
/// Parsing ([`FromStr`], [`Nip::new`]) is strict. **Deserialization is lenient**: KSeF TEST does not
/// validate NIP checksums, so JSON from TEST may carry a pattern-valid NIP with a bad checksum; use
/// [`Nip::has_valid_checksum`] to check.
///
/// ```
/// use ksef_model::ids::Nip;
/// let nip: Nip = "5265877635".parse()?;
/// assert!(nip.has_valid_checksum());
/// assert!("5265877636".parse::<Nip>().is_err());
/// assert!(Nip::parse_lenient("5265877636").is_ok());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nip(String);
string_id!(Nip, lenient_de);

impl Nip {
    /// Strictly parses a NIP (pattern and checksum).
    pub fn new(s: &str) -> Result<Self, IdError> {
        let nip = Self::parse_lenient(s)?;
        let (expected, found) = nip_check(nip.0.as_bytes());
        match expected {
            None => Err(IdError::invalid(
                IdKind::Nip,
                "the weighted digit sum mod 11 is 10, which no valid NIP has",
            )),
            Some(e) if e != found => Err(IdError::Checksum {
                kind: IdKind::Nip,
                expected: format!("digit {e}"),
                found: found.to_string(),
            }),
            Some(_) => Ok(nip),
        }
    }

    /// Parses a NIP checking only the OpenAPI pattern, not the checksum (what KSeF TEST accepts).
    pub fn parse_lenient(s: &str) -> Result<Self, IdError> {
        check_nip_pattern(IdKind::Nip, s)?;
        Ok(Nip(s.to_owned()))
    }

    /// Whether the checksum digit is correct (always true for strictly parsed NIPs).
    pub fn has_valid_checksum(&self) -> bool {
        let (expected, found) = nip_check(self.0.as_bytes());
        expected == Some(found)
    }

    /// Computes the NIP for the nine leading digits, or `None` when no check digit exists
    /// (weighted sum mod 11 is 10) or the digits violate the pattern.
    pub fn from_leading_digits(digits: [u8; 9]) -> Option<Self> {
        if digits.iter().any(|d| *d > 9) {
            return None;
        }
        let sum: u32 = digits
            .iter()
            .zip(NIP_WEIGHTS)
            .map(|(d, w)| u32::from(*d) * w)
            .sum();
        let check = sum % 11;
        if check == 10 {
            return None;
        }
        let mut s: String = digits.iter().map(|d| char::from(b'0' + d)).collect();
        s.push(char::from(b'0' + check as u8));
        Nip::new(&s).ok()
    }

    /// A random valid NIP (test data).
    #[cfg(feature = "testdata")]
    pub fn random<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
        use rand::RngExt as _;
        loop {
            let mut digits = [0u8; 9];
            for d in &mut digits {
                *d = rng.random_range(0..10);
            }
            if let Some(nip) = Nip::from_leading_digits(digits) {
                return nip;
            }
        }
    }
}

/// Checks the NIP pattern `^[1-9]((\d[1-9])|([1-9]\d))\d{7}$` on `s` (a whole NIP, or the
/// 10-character NIP part of a composite identifier, so positions are the same either way).
fn check_nip_pattern(kind: IdKind, s: &str) -> Result<(), IdError> {
    ensure_ascii(kind, s)?;
    check_len(kind, s, 10, "10")?;
    check_digits(kind, s, 0, 10)?;
    let b = s.as_bytes();
    if b[0] == b'0' {
        return Err(bad_char(kind, s, 0, "a NIP to start with a digit 1-9"));
    }
    if b[1] == b'0' && b[2] == b'0' {
        return Err(IdError::invalid(
            kind,
            "NIP digits 2 and 3 (tax office code) cannot both be 0",
        ));
    }
    Ok(())
}

/// Returns (expected check digit or None if impossible, found check digit).
fn nip_check(b: &[u8]) -> (Option<u32>, u32) {
    let sum: u32 = b[..9]
        .iter()
        .zip(NIP_WEIGHTS)
        .map(|(c, w)| digit(*c) * w)
        .sum();
    let check = sum % 11;
    ((check != 10).then_some(check), digit(b[9]))
}

impl FromStr for Nip {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Nip::new(s)
    }
}

// ---------------------------------------------------------------------------------------------
// PESEL

const PESEL_WEIGHTS: [u32; 10] = [1, 3, 7, 9, 1, 3, 7, 9, 1, 3];

/// Polish personal identification number (PESEL): 11 digits, birth date `YYMMDD` with the century
/// in the month (+80 → 1800s, +0 → 1900s, +20 → 2000s, +40 → 2100s, +60 → 2200s), check digit with
/// weights 1,3,7,9,1,3,7,9,1,3.
///
/// Parsing is strict (checksum and real birth date); deserialization and [`Pesel::parse_lenient`]
/// check only the OpenAPI pattern.
///
/// ```
/// use ksef_model::ids::Pesel;
/// let p: Pesel = "44051401359".parse()?;
/// assert_eq!(p.birth_date().ok_or("no birth date")?.to_string(), "1944-05-14");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pesel(String);
string_id!(Pesel, lenient_de);

impl Pesel {
    /// Strictly parses a PESEL (pattern, birth date and checksum).
    pub fn new(s: &str) -> Result<Self, IdError> {
        let p = Self::parse_lenient(s)?;
        if p.birth_date().is_none() {
            return Err(IdError::invalid(
                IdKind::Pesel,
                format!("digits 1-6 ({}) do not encode a real birth date", &s[..6]),
            ));
        }
        let b = p.0.as_bytes();
        let expected = pesel_check_digit(b);
        let found = digit(b[10]);
        if expected != found {
            return Err(IdError::Checksum {
                kind: IdKind::Pesel,
                expected: format!("digit {expected}"),
                found: found.to_string(),
            });
        }
        Ok(p)
    }

    /// Parses a PESEL checking only the OpenAPI pattern (11 digits, month code in a valid range).
    pub fn parse_lenient(s: &str) -> Result<Self, IdError> {
        let kind = IdKind::Pesel;
        ensure_ascii(kind, s)?;
        check_len(kind, s, 11, "11")?;
        check_digits(kind, s, 0, 11)?;
        let b = s.as_bytes();
        let mm = digit(b[2]) * 10 + digit(b[3]);
        if !(1..=12).contains(&(mm % 20)) {
            return Err(IdError::invalid(
                kind,
                format!("month code {mm:02} (digits 3-4) is not a month 01-12 plus 0/20/40/60/80"),
            ));
        }
        Ok(Pesel(s.to_owned()))
    }

    /// Whether the check digit is correct (always true for strictly parsed values).
    pub fn has_valid_checksum(&self) -> bool {
        let b = self.0.as_bytes();
        pesel_check_digit(b) == digit(b[10])
    }

    /// The encoded birth date, or `None` if a leniently parsed PESEL encodes no real date.
    pub fn birth_date(&self) -> Option<Date> {
        let b = self.0.as_bytes();
        let yy = digit(b[0]) * 10 + digit(b[1]);
        let mm = digit(b[2]) * 10 + digit(b[3]);
        let dd = digit(b[4]) * 10 + digit(b[5]);
        let century = match mm / 20 {
            4 => 1800,
            0 => 1900,
            1 => 2000,
            2 => 2100,
            _ => 2200,
        };
        let month = Month::try_from(u8::try_from(mm % 20).ok()?).ok()?;
        Date::from_calendar_date(
            i32::try_from(century + yy).ok()?,
            month,
            u8::try_from(dd).ok()?,
        )
        .ok()
    }

    /// Builds a valid PESEL for a birth date (years 1800–2299) and a four-digit serial (0–9999;
    /// its last digit's parity encodes sex: odd = male). `None` if out of range.
    pub fn from_parts(birth_date: Date, serial: u16) -> Option<Self> {
        let year = birth_date.year();
        let offset = match year {
            1800..=1899 => 80,
            1900..=1999 => 0,
            2000..=2099 => 20,
            2100..=2199 => 40,
            2200..=2299 => 60,
            _ => return None,
        };
        if serial > 9999 {
            return None;
        }
        let body = format!(
            "{:02}{:02}{:02}{:04}",
            year % 100,
            u8::from(birth_date.month()) + offset,
            birth_date.day(),
            serial
        );
        let check = pesel_check_digit(body.as_bytes());
        Pesel::new(&format!("{body}{check}")).ok()
    }

    /// A random valid PESEL with a birth date between 1900-01-01 and 2099-12-31 (test data).
    #[cfg(feature = "testdata")]
    pub fn random<R: rand::Rng + ?Sized>(rng: &mut R) -> Self {
        use rand::RngExt as _;
        loop {
            let julian = rng.random_range(
                time::macros::date!(1900 - 01 - 01).to_julian_day()
                    ..=time::macros::date!(2099 - 12 - 31).to_julian_day(),
            );
            let serial = rng.random_range(0..10000u16);
            if let Some(p) = Date::from_julian_day(julian)
                .ok()
                .and_then(|d| Pesel::from_parts(d, serial))
            {
                return p;
            }
        }
    }
}

fn pesel_check_digit(b: &[u8]) -> u32 {
    let sum: u32 = b[..10]
        .iter()
        .zip(PESEL_WEIGHTS)
        .map(|(c, w)| digit(*c) * w)
        .sum();
    (10 - sum % 10) % 10
}

impl FromStr for Pesel {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        Pesel::new(s)
    }
}

// ---------------------------------------------------------------------------------------------
// InternalId

/// KSeF internal identifier of a subunit: `{NIP}-{5 digits}` (16 characters), the last digit being
/// a check digit: weights 1,3,1,3,… over the 14 preceding digits, sum mod 10.
///
/// The NIP part is checked against the pattern only (KSeF TEST accepts NIPs with bad checksums).
/// [`FromStr`] also verifies the check digit; **deserialization** and [`InternalId::parse_lenient`]
/// check only the OpenAPI pattern (the official UPO examples carry `5265877635-12345`, whose check
/// digit is wrong), and [`InternalId::has_valid_checksum`] tells them apart.
///
/// ```
/// use ksef_model::ids::{InternalId, Nip};
/// let id: InternalId = "6824515772-12343".parse()?;
/// assert_eq!(id.nip().as_str(), "6824515772");
/// let built = InternalId::new(&Nip::parse_lenient("6824515772")?, 1234)?;
/// assert_eq!(built, id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InternalId(String);
string_id!(InternalId, lenient_de);

impl InternalId {
    /// Builds the internal ID for a NIP and a four-digit subunit number (0–9999), computing the
    /// check digit.
    pub fn new(nip: &Nip, subunit: u16) -> Result<Self, IdError> {
        if subunit > 9999 {
            return Err(IdError::invalid(
                IdKind::InternalId,
                format!("subunit number {subunit} has more than 4 digits"),
            ));
        }
        let body = format!("{}{:04}", nip.as_str(), subunit);
        let check = internal_id_check(body.as_bytes());
        Ok(InternalId(format!(
            "{}-{:04}{}",
            nip.as_str(),
            subunit,
            check
        )))
    }

    /// Parses checking only the OpenAPI pattern `^[1-9]((\d[1-9])|([1-9]\d))\d{7}-\d{5}$`.
    pub fn parse_lenient(s: &str) -> Result<Self, IdError> {
        let kind = IdKind::InternalId;
        ensure_ascii(kind, s)?;
        check_len(kind, s, 16, "16")?;
        check_nip_pattern(kind, &s[..10])?;
        check_literal(kind, s, 10, b'-', "'-' after the NIP")?;
        check_digits(kind, s, 11, 16)?;
        Ok(InternalId(s.to_owned()))
    }

    /// Whether the check digit is correct (always true for strictly parsed values).
    pub fn has_valid_checksum(&self) -> bool {
        let (expected, found) = self.check_digits();
        expected == found
    }

    fn check_digits(&self) -> (u32, u32) {
        let b = self.0.as_bytes();
        let digits: Vec<u8> = b[..10].iter().chain(&b[11..15]).copied().collect();
        (internal_id_check(&digits), digit(b[15]))
    }

    /// The NIP part (checked against the pattern only).
    pub fn nip(&self) -> Nip {
        Nip(self.0[..10].to_owned())
    }

    /// The five digits after the hyphen (four-digit subunit number and check digit).
    pub fn suffix(&self) -> &str {
        &self.0[11..]
    }
}

fn internal_id_check(digits14: &[u8]) -> u32 {
    digits14
        .iter()
        .enumerate()
        .map(|(i, c)| digit(*c) * if i % 2 == 0 { 1 } else { 3 })
        .sum::<u32>()
        % 10
}

impl FromStr for InternalId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let id = InternalId::parse_lenient(s)?;
        let (expected, found) = id.check_digits();
        if expected != found {
            return Err(IdError::Checksum {
                kind: IdKind::InternalId,
                expected: format!("digit {expected}"),
                found: found.to_string(),
            });
        }
        Ok(id)
    }
}

// ---------------------------------------------------------------------------------------------
// NipVatUe

/// Per-country VAT-UE number shapes from the OpenAPI `NipVatUe` schema. Each alternative is a
/// shape string for the part after the two-letter prefix: `9` digit, `A` uppercase letter,
/// `X` uppercase letter or digit, `P` uppercase letter, digit, `+` or `*`, `b` `0` or `1`;
/// any other character is literal.
const VAT_UE_SHAPES: &[(&str, &[&str])] = &[
    ("AT", &["U99999999"]),
    ("BE", &["b999999999"]),
    ("BG", &["999999999", "9999999999"]),
    ("CY", &["99999999A"]),
    ("CZ", &["99999999", "999999999", "9999999999"]),
    ("DE", &["999999999"]),
    ("DK", &["99999999"]),
    ("EE", &["999999999"]),
    ("EL", &["999999999"]),
    ("ES", &["A99999999", "99999999A", "A9999999A"]),
    ("FI", &["99999999"]),
    ("FR", &["XX999999999"]),
    ("HR", &["99999999999"]),
    ("HU", &["99999999"]),
    ("IE", &["9999999AA", "9P99999A"]),
    ("IT", &["99999999999"]),
    ("LT", &["999999999", "999999999999"]),
    ("LU", &["99999999"]),
    ("LV", &["99999999999"]),
    ("MT", &["99999999"]),
    ("NL", &["PPPPPPPPPPPP"]),
    ("PT", &["999999999"]),
    (
        "RO",
        &[
            "99",
            "999",
            "9999",
            "99999",
            "999999",
            "9999999",
            "99999999",
            "999999999",
            "9999999999",
        ],
    ),
    ("SE", &["999999999999"]),
    ("SI", &["99999999"]),
    ("SK", &["9999999999"]),
    ("XI", &["999999999", "999999999999", "GD999", "HA999"]),
];

fn shape_matches(shape: &str, s: &str) -> bool {
    shape.len() == s.len()
        && shape.bytes().zip(s.bytes()).all(|(p, c)| match p {
            b'9' => c.is_ascii_digit(),
            b'A' => c.is_ascii_uppercase(),
            b'X' => c.is_ascii_uppercase() || c.is_ascii_digit(),
            b'P' => c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'+' || c == b'*',
            b'b' => c == b'0' || c == b'1',
            lit => c == lit,
        })
}

/// Composite identifier `{NIP}-{VAT-UE number}` of a Polish entity and an EU entity, e.g.
/// `5265877635-ATU12345678`; the VAT-UE part must match its country's pattern from the OpenAPI
/// `NipVatUe` schema.
///
/// ```
/// use ksef_model::ids::NipVatUe;
/// let id: NipVatUe = "5265877635-ATU12345678".parse()?;
/// assert_eq!(id.country_code(), "AT");
/// assert_eq!(id.vat_ue(), "ATU12345678");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NipVatUe(String);
string_id!(NipVatUe);

impl NipVatUe {
    /// Builds the composite identifier from a NIP and a VAT-UE number (with country prefix).
    pub fn new(nip: &Nip, vat_ue: &str) -> Result<Self, IdError> {
        format!("{nip}-{vat_ue}").parse()
    }
    /// The Polish NIP part (pattern-checked only).
    pub fn nip(&self) -> Nip {
        Nip(self.0[..10].to_owned())
    }
    /// The EU VAT number including its two-letter country prefix.
    pub fn vat_ue(&self) -> &str {
        &self.0[11..]
    }
    /// The two-letter country prefix of the VAT-UE number (`EL` for Greece, `XI` for Northern Ireland).
    pub fn country_code(&self) -> &str {
        &self.0[11..13]
    }
}

impl FromStr for NipVatUe {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let kind = IdKind::NipVatUe;
        ensure_ascii(kind, s)?;
        if s.len() < 15 {
            return Err(IdError::Length {
                kind,
                expected: "at least 15",
                found: s.len(),
            });
        }
        check_nip_pattern(kind, &s[..10])?;
        check_literal(kind, s, 10, b'-', "'-' after the NIP")?;
        let (cc, rest) = (&s[11..13], &s[13..]);
        let Some((_, shapes)) = VAT_UE_SHAPES.iter().find(|(c, _)| *c == cc) else {
            return Err(IdError::invalid(
                kind,
                format!("{cc:?} is not an EU VAT country prefix (AT, BE, … XI; Greece is EL)"),
            ));
        };
        if !shapes.iter().any(|shape| shape_matches(shape, rest)) {
            return Err(IdError::invalid(
                kind,
                format!(
                    "{:?} does not match the VAT-UE number format of {cc}",
                    &s[11..]
                ),
            ));
        }
        Ok(NipVatUe(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------------
// PeppolId

/// Peppol service provider identifier, pattern `^P[A-Z]{2}[0-9]{6}$` (e.g. `PPL123456`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeppolId(String);
string_id!(PeppolId);

impl FromStr for PeppolId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let kind = IdKind::PeppolId;
        ensure_ascii(kind, s)?;
        check_len(kind, s, 9, "9")?;
        check_literal(kind, s, 0, b'P', "'P'")?;
        for i in 1..3 {
            if !s.as_bytes()[i].is_ascii_uppercase() {
                return Err(bad_char(kind, s, i, "an uppercase letter A-Z"));
            }
        }
        check_digits(kind, s, 3, 9)?;
        Ok(PeppolId(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------------
// KsefNumber

const CRC8: crc::Crc<u8> = crc::Crc::<u8>::new(&crc::CRC_8_SMBUS);

/// KSeF's CRC-8 (polynomial 0x07, init 0, no reflection) over `data`, as the checksum of KSeF
/// numbers and collective identifiers (`…-IZRRRRMM-…`) is computed: two uppercase hex digits are
/// `format!("{:02X}", crc8(data))`.
///
/// ```
/// assert_eq!(ksef_model::ids::crc8(b"1111111111-IZ202607-65ED02180000"), 0xE7);
/// ```
pub fn crc8(data: &[u8]) -> u8 {
    CRC8.checksum(data)
}

/// KSeF invoice number `NNNNNNNNNN-YYYYMMDD-XXXXXXXXXXXX-CC` (35 characters): seller NIP,
/// acceptance date, 12 uppercase hex digits of technical part, and a CRC-8 (polynomial 0x07,
/// init 0) over the ASCII bytes of the first 32 characters as two uppercase hex digits.
///
/// The legacy KSeF 1.0 form with 36 characters (`…-XXXXXX-XXXXXX-CC`) is accepted too; its
/// checksum is not verified (KSeF 1.0 did not document it), see [`KsefNumber::is_legacy`].
///
/// ```
/// use ksef_model::ids::{KsefNumber, Nip};
/// use time::macros::date;
/// let n: KsefNumber = "5265877635-20250826-0100001AF629-AF".parse()?;
/// assert_eq!(n.seller_nip().as_str(), "5265877635");
/// assert_eq!(n.date(), date!(2025-08-26));
/// let built = KsefNumber::new(&n.seller_nip(), date!(2025-08-26), "0100001AF629")?;
/// assert_eq!(built, n);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KsefNumber(String);
string_id!(KsefNumber);

impl KsefNumber {
    /// Builds a KSeF number from its parts, computing the CRC. `technical_hex` is 12 hex digits
    /// (lowercase is upper-cased); the date's year must be 2020–9999.
    pub fn new(seller: &Nip, date: Date, technical_hex: &str) -> Result<Self, IdError> {
        let kind = IdKind::KsefNumber;
        let tech = technical_hex.to_ascii_uppercase();
        ensure_ascii(kind, &tech)?;
        if tech.len() != 12 {
            return Err(IdError::invalid(
                kind,
                format!("technical part must be 12 hex digits, found {}", tech.len()),
            ));
        }
        if !(2020..=9999).contains(&date.year()) {
            return Err(IdError::invalid(
                kind,
                format!("year {} is outside 2020-9999", date.year()),
            ));
        }
        let data = format!("{}-{}-{}", seller.as_str(), format_yyyymmdd(date), tech);
        check_upper_hex(kind, &data, 20, 32)?;
        let crc = CRC8.checksum(data.as_bytes());
        format!("{data}-{crc:02X}").parse()
    }

    /// Builds a KSeF number from raw technical bytes (rendered as 12 uppercase hex digits).
    pub fn from_technical_bytes(
        seller: &Nip,
        date: Date,
        technical: [u8; 6],
    ) -> Result<Self, IdError> {
        let hex: String = technical.iter().map(|b| format!("{b:02X}")).collect();
        Self::new(seller, date, &hex)
    }

    /// The seller NIP (pattern-checked only).
    pub fn seller_nip(&self) -> Nip {
        Nip(self.0[..10].to_owned())
    }

    /// The acceptance date encoded in the number.
    pub fn date(&self) -> Date {
        // Validated at construction; the fallback is unreachable.
        parse_yyyymmdd(IdKind::KsefNumber, &self.0[11..19]).unwrap_or(Date::MIN)
    }

    /// The technical part: 12 hex digits (`XXXXXX-XXXXXX` with the hyphen in the legacy form).
    pub fn technical_part(&self) -> &str {
        &self.0[20..self.0.len() - 3]
    }

    /// The two hex digits of the checksum.
    pub fn checksum(&self) -> &str {
        &self.0[self.0.len() - 2..]
    }

    /// Whether this is a legacy 36-character KSeF 1.0 number.
    pub fn is_legacy(&self) -> bool {
        self.0.len() == 36
    }
}

impl FromStr for KsefNumber {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let kind = IdKind::KsefNumber;
        ensure_ascii(kind, s)?;
        let legacy = match s.len() {
            35 => false,
            36 => true,
            n => {
                return Err(IdError::Length {
                    kind,
                    expected: "35 (or 36 for legacy KSeF 1.0 numbers)",
                    found: n,
                });
            }
        };
        check_nip_pattern(kind, &s[..10])?;
        check_literal(kind, s, 10, b'-', "'-' after the seller NIP")?;
        check_digits(kind, s, 11, 19)?;
        let date = parse_yyyymmdd(kind, &s[11..19])?;
        if date.year() < 2020 {
            return Err(IdError::invalid(
                kind,
                format!("year {} is before 2020", date.year()),
            ));
        }
        check_literal(kind, s, 19, b'-', "'-' after the date")?;
        if legacy {
            check_upper_hex(kind, s, 20, 26)?;
            check_literal(kind, s, 26, b'-', "'-' inside the legacy technical part")?;
            check_upper_hex(kind, s, 27, 33)?;
            check_literal(kind, s, 33, b'-', "'-' before the checksum")?;
            check_upper_hex(kind, s, 34, 36)?;
        } else {
            check_upper_hex(kind, s, 20, 32)?;
            check_literal(kind, s, 32, b'-', "'-' before the checksum")?;
            check_upper_hex(kind, s, 33, 35)?;
            let expected = format!("{:02X}", CRC8.checksum(&s.as_bytes()[..32]));
            if expected != s[33..] {
                return Err(IdError::Checksum {
                    kind,
                    expected: format!("CRC-8 {expected}"),
                    found: format!("CRC-8 {}", &s[33..]),
                });
            }
        }
        Ok(KsefNumber(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------------
// ReferenceNumber

/// The two-letter type code inside a [`ReferenceNumber`] (meanings inferred from KSeF examples).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReferenceType {
    /// `CR` — authentication challenge.
    Challenge,
    /// `AU` — authentication operation.
    Authentication,
    /// `SO` — online session.
    OnlineSession,
    /// `SB` — batch session.
    BatchSession,
    /// `EE` — invoice within a session.
    Invoice,
    /// `EU` — session UPO page.
    SessionUpo,
    /// `EC` — KSeF token.
    KsefToken,
    /// `EG` — permission operation.
    PermissionOperation,
    /// `EH` — certificate enrollment or invoice export.
    EnrollmentOrExport,
    /// Any other code (two characters `[0-9A-Z]`).
    Unknown(String),
}

impl ReferenceType {
    /// The two-character wire code.
    pub fn code(&self) -> &str {
        match self {
            ReferenceType::Challenge => "CR",
            ReferenceType::Authentication => "AU",
            ReferenceType::OnlineSession => "SO",
            ReferenceType::BatchSession => "SB",
            ReferenceType::Invoice => "EE",
            ReferenceType::SessionUpo => "EU",
            ReferenceType::KsefToken => "EC",
            ReferenceType::PermissionOperation => "EG",
            ReferenceType::EnrollmentOrExport => "EH",
            ReferenceType::Unknown(s) => s,
        }
    }

    /// Maps a two-character code to its type (`Unknown` for codes not listed).
    pub fn from_code(code: &str) -> Self {
        match code {
            "CR" => ReferenceType::Challenge,
            "AU" => ReferenceType::Authentication,
            "SO" => ReferenceType::OnlineSession,
            "SB" => ReferenceType::BatchSession,
            "EE" => ReferenceType::Invoice,
            "EU" => ReferenceType::SessionUpo,
            "EC" => ReferenceType::KsefToken,
            "EG" => ReferenceType::PermissionOperation,
            "EH" => ReferenceType::EnrollmentOrExport,
            other => ReferenceType::Unknown(other.to_owned()),
        }
    }
}

impl fmt::Display for ReferenceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// KSeF reference number `YYYYMMDD-TT-HHHHHHHHHH-HHHHHHHHHH-HH` (36 characters): date, type code
/// (`[0-9A-Z]{2}`) and 22 uppercase hex digits.
///
/// ```
/// use ksef_model::ids::{ReferenceNumber, ReferenceType};
/// let r: ReferenceNumber = "20250626-SO-2F14610000-242991F8C9-B4".parse()?;
/// assert_eq!(r.type_code(), ReferenceType::OnlineSession);
/// assert_eq!(r.date().to_string(), "2025-06-26");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReferenceNumber(String);
string_id!(ReferenceNumber);

impl ReferenceNumber {
    /// Builds a reference number from a date, a type and 11 bytes (rendered as 22 uppercase hex
    /// digits). Fails if the type's code is not two `[0-9A-Z]` characters or the year is not 4 digits.
    pub fn from_parts(date: Date, kind: &ReferenceType, hex: [u8; 11]) -> Result<Self, IdError> {
        let h: String = hex.iter().map(|b| format!("{b:02X}")).collect();
        format!(
            "{}-{}-{}-{}-{}",
            format_yyyymmdd(date),
            kind.code(),
            &h[..10],
            &h[10..20],
            &h[20..]
        )
        .parse()
    }

    /// The type code (e.g. `SO` for an online session).
    pub fn type_code(&self) -> ReferenceType {
        ReferenceType::from_code(&self.0[9..11])
    }

    /// The date part.
    pub fn date(&self) -> Date {
        // Validated at construction; the fallback is unreachable.
        parse_yyyymmdd(IdKind::ReferenceNumber, &self.0[..8]).unwrap_or(Date::MIN)
    }
}

impl FromStr for ReferenceNumber {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let kind = IdKind::ReferenceNumber;
        ensure_ascii(kind, s)?;
        check_len(kind, s, 36, "36")?;
        check_digits(kind, s, 0, 8)?;
        parse_yyyymmdd(kind, &s[..8])?;
        check_literal(kind, s, 8, b'-', "'-' after the date")?;
        for i in 9..11 {
            let c = s.as_bytes()[i];
            if !(c.is_ascii_digit() || c.is_ascii_uppercase()) {
                return Err(bad_char(
                    kind,
                    s,
                    i,
                    "an uppercase letter or digit (type code)",
                ));
            }
        }
        check_literal(kind, s, 11, b'-', "'-' after the type code")?;
        check_upper_hex(kind, s, 12, 22)?;
        check_literal(kind, s, 22, b'-', "'-'")?;
        check_upper_hex(kind, s, 23, 33)?;
        check_literal(kind, s, 33, b'-', "'-'")?;
        check_upper_hex(kind, s, 34, 36)?;
        Ok(ReferenceNumber(s.to_owned()))
    }
}

// ---------------------------------------------------------------------------------------------
// Sha256Base64

/// A SHA-256 digest written as standard padded Base64 (44 characters decoding to 32 bytes), the
/// API's `Sha256HashBase64`.
///
/// ```
/// use ksef_model::ids::Sha256Base64;
/// let h = Sha256Base64::from_digest([0u8; 32]);
/// assert_eq!(h.as_str(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
/// assert_eq!(h.to_base64url(), "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sha256Base64(String);
string_id!(Sha256Base64);

impl Sha256Base64 {
    /// Wraps a raw 32-byte digest.
    pub fn from_digest(digest: [u8; 32]) -> Self {
        Sha256Base64(STANDARD.encode(digest))
    }

    /// The 32 digest bytes.
    pub fn as_bytes(&self) -> [u8; 32] {
        let mut out = [0u8; 32];
        // Validated at construction (44 chars decoding to exactly 32 bytes).
        if let Ok(v) = STANDARD.decode(&self.0)
            && v.len() == 32
        {
            out.copy_from_slice(&v);
        }
        out
    }

    /// The digest as unpadded Base64url (RFC 4648 §5), as used in KSeF QR-code links.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.as_bytes())
    }
}

impl FromStr for Sha256Base64 {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, IdError> {
        let kind = IdKind::Sha256Base64;
        ensure_ascii(kind, s)?;
        check_len(kind, s, 44, "44")?;
        let bytes = STANDARD.decode(s).map_err(|e| {
            IdError::invalid(kind, format!("not canonical standard padded Base64: {e}"))
        })?;
        if bytes.len() != 32 {
            return Err(IdError::invalid(
                kind,
                format!("decodes to {} bytes, a SHA-256 digest has 32", bytes.len()),
            ));
        }
        Ok(Sha256Base64(s.to_owned()))
    }
}

impl From<[u8; 32]> for Sha256Base64 {
    fn from(d: [u8; 32]) -> Self {
        Sha256Base64::from_digest(d)
    }
}
