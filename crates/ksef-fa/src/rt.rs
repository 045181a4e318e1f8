//! Runtime support for the generated model: value checks, the element cursor used by the parser,
//! the XML writer and the structural checker behind `validate`.
//!
//! Hand-written rather than built on a serde XML layer because quick-xml's serde ignores
//! namespaces and cannot report field paths. The parser pulls tokens from our own XML reader
//! (`crate::xml`, which says why it is not quick-xml's), and the generated code fills the model
//! directly (no DOM: that stage alone cost more than the whole parse does now); the writer
//! appends to one preallocated `String`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::OnceLock;

use rust_decimal::Decimal;
use time::{Date, Month, PrimitiveDateTime, Time, UtcOffset};

pub(crate) use crate::error::{Error, Problem, Segment, ValueError, ValueErrorKind};

const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

// ------------------------------------------------------------------ whitespace

/// The schema's `whiteSpace` facet (plus `Int` for integer enumerations).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ws {
    Preserve,
    Replace,
    Collapse,
    Int,
}

fn is_collapsed(s: &str) -> bool {
    let b = s.as_bytes();
    if b.first() == Some(&b' ') || b.last() == Some(&b' ') {
        return false;
    }
    let mut prev_space = false;
    for &c in b {
        match c {
            b'\t' | b'\n' | b'\r' => return false,
            b' ' if prev_space => return false,
            b' ' => prev_space = true,
            _ => prev_space = false,
        }
    }
    true
}

pub(crate) fn ws_owned(s: String, ws: Ws) -> String {
    match ws {
        Ws::Preserve => s,
        Ws::Replace => {
            if s.contains(['\t', '\n', '\r']) {
                s.replace(['\t', '\n', '\r'], " ")
            } else {
                s
            }
        }
        Ws::Collapse | Ws::Int => {
            if is_collapsed(&s) {
                s
            } else {
                s.split([' ', '\t', '\n', '\r'])
                    .filter(|p| !p.is_empty())
                    .collect::<Vec<_>>()
                    .join(" ")
            }
        }
    }
}

/// Normalises an enumeration's lexical form before lookup.
pub(crate) fn normalize_enum(s: &str, ws: Ws) -> Cow<'_, str> {
    match ws {
        Ws::Preserve => Cow::Borrowed(s),
        Ws::Replace | Ws::Collapse => {
            if is_collapsed(s) {
                Cow::Borrowed(s)
            } else {
                Cow::Owned(ws_owned(s.to_owned(), ws))
            }
        }
        Ws::Int => {
            let t = s.trim_matches([' ', '\t', '\n', '\r']);
            let t = t.strip_prefix('+').unwrap_or(t);
            if t.len() > 1 && t.starts_with('0') && t.bytes().all(|c| c.is_ascii_digit()) {
                let z = t.trim_start_matches('0');
                Cow::Borrowed(if z.is_empty() { "0" } else { z })
            } else {
                Cow::Borrowed(t)
            }
        }
    }
}

fn trim_xml(s: &str) -> &str {
    // bytes: XML whitespace is ASCII, so the cut is on a character boundary
    let b = s.as_bytes();
    let ws = |c: &u8| matches!(c, b' ' | b'\t' | b'\n' | b'\r');
    let start = b.iter().position(|c| !ws(c)).unwrap_or(b.len());
    let end = b.iter().rposition(|c| !ws(c)).map_or(start, |e| e + 1);
    s.get(start..end).unwrap_or_default()
}

// ------------------------------------------------------------------ value checks

/// Rejects characters XML 1.0 cannot carry (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF),
/// so that every value in the model can be written.
pub(crate) fn check_chars(v: &str) -> Result<(), ValueError> {
    let bad = v.chars().any(|c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{fffe}' || c == '\u{ffff}'
    });
    if bad {
        Err(ValueError::new(v, ValueErrorKind::InvalidChar))
    } else {
        Ok(())
    }
}

pub(crate) fn check_len(v: &str, min: usize, max: usize) -> Result<(), ValueError> {
    // byte length bounds the character count from above: count characters only when needed
    let n = if v.len() <= max && v.len() >= min {
        if v.is_ascii() {
            v.len()
        } else {
            v.chars().count()
        }
    } else {
        v.chars().count()
    };
    if n < min {
        Err(ValueError::new(v, ValueErrorKind::TooShort { min }))
    } else if n > max {
        Err(ValueError::new(v, ValueErrorKind::TooLong { max }))
    } else {
        Ok(())
    }
}

/// A string type's value: whitespace normalised as the type says (`ws`), characters XML can
/// carry, length in characters within `min..=max`.
///
/// Most values are plain printable ASCII with single spaces: for them one pass over the bytes
/// shows that normalising would change nothing and that the length is the byte count. Anything
/// else takes the general path, which also words the errors.
pub(crate) fn text_value(s: String, ws: Ws, min: usize, max: usize) -> Result<String, ValueError> {
    let b = s.as_bytes();
    let mut plain = b.first() != Some(&b' ') && b.last() != Some(&b' ');
    let mut prev = 0u8;
    for &c in b {
        plain &= (0x20..0x7f).contains(&c) && !(c == b' ' && prev == b' ');
        prev = c;
    }
    if plain && (min..=max).contains(&b.len()) {
        return Ok(s);
    }
    let v = ws_owned(s, ws);
    check_chars(&v)?;
    check_len(&v, min, max)?;
    Ok(v)
}

/// An XSD `pattern` facet, compiled on first use (XSD patterns are implicitly anchored).
pub(crate) struct Pattern {
    src: &'static str,
    re: OnceLock<Option<regex::Regex>>,
}

impl Pattern {
    pub(crate) const fn new(src: &'static str) -> Self {
        Self {
            src,
            re: OnceLock::new(),
        }
    }
    pub(crate) fn check(&self, v: &str) -> Result<(), ValueError> {
        let re = self
            .re
            .get_or_init(|| regex::Regex::new(&format!("^(?:{})$", self.src)).ok());
        match re {
            Some(re) if re.is_match(v) => Ok(()),
            _ => Err(ValueError::new(
                v,
                ValueErrorKind::Pattern { pattern: self.src },
            )),
        }
    }
    #[cfg(test)]
    fn compiles(&self) -> bool {
        regex::Regex::new(&format!("^(?:{})$", self.src)).is_ok()
    }
}

/// Lexical rule of a decimal type.
pub(crate) enum DecLex {
    /// Plain `xsd:decimal` lexical form.
    Any,
    /// The FA amount pattern `-?([1-9]\d{0,N-1}|0)(\.\d{1,M})?` (checked by hand: it is the hot path).
    Plain { int_digits: u32, frac_digits: u32 },
}

/// Facets of a decimal type. Bounds are `(mantissa, scale, inclusive)`.
pub(crate) struct DecimalSpec {
    pub(crate) total_digits: u32,
    pub(crate) fraction_digits: u32,
    pub(crate) lex: DecLex,
    pub(crate) min: Option<(i64, u32, bool)>,
    pub(crate) max: Option<(i64, u32, bool)>,
}

fn digits(mut m: u128) -> u32 {
    let mut n = 1;
    while m >= 10 {
        m /= 10;
        n += 1;
    }
    n
}

impl DecimalSpec {
    pub(crate) fn check(&self, d: Decimal) -> Result<Decimal, ValueError> {
        let n = d.normalize();
        let scale = n.scale();
        let err = |k| Err(ValueError::new(&d.to_string(), k));
        if scale > self.fraction_digits {
            return err(ValueErrorKind::TooManyFractionDigits {
                max: self.fraction_digits,
            });
        }
        let total = digits(n.mantissa().unsigned_abs());
        if total > self.total_digits {
            return err(ValueErrorKind::TooManyDigits {
                max: self.total_digits,
            });
        }
        if let DecLex::Plain { int_digits, .. } = self.lex
            && total.saturating_sub(scale) > int_digits
        {
            return err(ValueErrorKind::TooManyIntegerDigits { max: int_digits });
        }
        if let Some((m, s, incl)) = self.min
            && let Ok(b) = Decimal::try_new(m, s)
            && (d < b || (!incl && d == b))
        {
            return err(ValueErrorKind::TooSmall { min: b.to_string() });
        }
        if let Some((m, s, incl)) = self.max
            && let Ok(b) = Decimal::try_new(m, s)
            && (d > b || (!incl && d == b))
        {
            return err(ValueErrorKind::TooLarge { max: b.to_string() });
        }
        Ok(d)
    }

    pub(crate) fn parse(&self, s: &str) -> Result<Decimal, ValueError> {
        let t = trim_xml(s);
        let b = t.as_bytes();
        match self.lex {
            DecLex::Plain {
                int_digits,
                frac_digits,
            } => {
                let mut i = usize::from(b.first() == Some(&b'-'));
                let start = i;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let int_len = i - start;
                if int_len == 0 || (int_len > 1 && b[start] == b'0') {
                    return Err(ValueError::new(s, ValueErrorKind::NotDecimal));
                }
                if int_len > int_digits as usize {
                    return Err(ValueError::new(
                        s,
                        ValueErrorKind::TooManyIntegerDigits { max: int_digits },
                    ));
                }
                if i < b.len() {
                    if b[i] != b'.' {
                        return Err(ValueError::new(s, ValueErrorKind::NotDecimal));
                    }
                    let fs = i + 1;
                    let mut j = fs;
                    while j < b.len() && b[j].is_ascii_digit() {
                        j += 1;
                    }
                    if j != b.len() || j == fs {
                        return Err(ValueError::new(s, ValueErrorKind::NotDecimal));
                    }
                    if j - fs > frac_digits as usize {
                        return Err(ValueError::new(
                            s,
                            ValueErrorKind::TooManyFractionDigits { max: frac_digits },
                        ));
                    }
                }
                if let Some(d) = self.plain_fast(b, start, i) {
                    return Ok(d);
                }
            }
            DecLex::Any => {
                let body = t.strip_prefix(['+', '-']).unwrap_or(t);
                let (ip, fp) = body.split_once('.').unwrap_or((body, ""));
                let ok = !(ip.is_empty() && fp.is_empty())
                    && ip.bytes().all(|c| c.is_ascii_digit())
                    && fp.bytes().all(|c| c.is_ascii_digit())
                    && (ip.len() + fp.len()) > 0;
                if !ok {
                    return Err(ValueError::new(s, ValueErrorKind::NotDecimal));
                }
            }
        }
        let d = Decimal::from_str_exact(t).map_err(|_| {
            ValueError::new(
                s,
                ValueErrorKind::TooManyDigits {
                    max: self.total_digits,
                },
            )
        })?;
        self.check(d)
    }

    /// The value of a lexically checked plain amount (`b[start..int_end]` the integer digits,
    /// then optionally `.` and the fraction) when it passes every facet; `None` sends it to the
    /// general path (which also words the errors). Saves the second parse and `normalize` that
    /// most values in an invoice would otherwise cost.
    fn plain_fast(&self, b: &[u8], start: usize, int_end: usize) -> Option<Decimal> {
        if self.min.is_some() || self.max.is_some() {
            return None;
        }
        let frac = b.get(int_end + 1..).unwrap_or_default();
        let int = b.get(start..int_end)?;
        if int.len() + frac.len() > 28 {
            return None; // may not fit the 96-bit mantissa
        }
        let mut m: i128 = 0;
        for &c in int.iter().chain(frac) {
            m = m * 10 + i128::from(c - b'0');
        }
        // the normalised value's digits: without the fraction's trailing zeros and the
        // leading zeros (counted on the text: no 128-bit divisions)
        let frac_sig = frac.len() - frac.iter().rev().take_while(|&&c| c == b'0').count();
        let sig = int.iter().chain(frac.get(..frac_sig).unwrap_or_default());
        let leading = sig.clone().take_while(|&&c| c == b'0').count();
        let total = u32::try_from((int.len() + frac_sig - leading).max(1)).ok()?;
        let scale = u32::try_from(frac_sig).ok()?;
        if scale > self.fraction_digits || total > self.total_digits {
            return None;
        }
        let m = if start == 1 { -m } else { m };
        Decimal::try_from_i128_with_scale(m, u32::try_from(frac.len()).ok()?).ok()
    }

    pub(crate) fn write(&self, d: Decimal, out: &mut String) {
        let d = if d.scale() > self.fraction_digits {
            d.normalize()
        } else {
            d
        };
        let _ = write!(out, "{d}");
    }
}

/// Facets of an integer type (exclusive bounds already turned inclusive).
pub(crate) struct IntSpec {
    pub(crate) min: Option<i64>,
    pub(crate) max: Option<i64>,
    pub(crate) total_digits: Option<u32>,
}

impl IntSpec {
    pub(crate) fn check(&self, v: i64) -> Result<i64, ValueError> {
        if let Some(min) = self.min
            && v < min
        {
            {
                return Err(ValueError::new(
                    &v.to_string(),
                    ValueErrorKind::TooSmall {
                        min: min.to_string(),
                    },
                ));
            }
        }
        if let Some(max) = self.max
            && v > max
        {
            {
                return Err(ValueError::new(
                    &v.to_string(),
                    ValueErrorKind::TooLarge {
                        max: max.to_string(),
                    },
                ));
            }
        }
        if let Some(td) = self.total_digits
            && digits(u128::from(v.unsigned_abs())) > td
        {
            {
                return Err(ValueError::new(
                    &v.to_string(),
                    ValueErrorKind::TooManyDigits { max: td },
                ));
            }
        }
        Ok(v)
    }
    pub(crate) fn parse(&self, s: &str) -> Result<i64, ValueError> {
        let t = trim_xml(s);
        let body = t.strip_prefix(['+', '-']).unwrap_or(t);
        if body.is_empty() || !body.bytes().all(|c| c.is_ascii_digit()) {
            return Err(ValueError::new(s, ValueErrorKind::NotInteger));
        }
        let t = t.strip_prefix('+').unwrap_or(t);
        let v: i64 = t.parse().map_err(|_| {
            ValueError::new(
                s,
                ValueErrorKind::TooLarge {
                    max: i64::MAX.to_string(),
                },
            )
        })?;
        self.check(v)
    }
}

/// Date range of a date type: `(year, month, day)` inclusive.
pub(crate) struct DateSpec {
    pub(crate) min: (i32, u8, u8),
    pub(crate) max: (i32, u8, u8),
}

fn two(b: &[u8]) -> Option<u8> {
    match b {
        [a, c] if a.is_ascii_digit() && c.is_ascii_digit() => Some((a - b'0') * 10 + (c - b'0')),
        _ => None,
    }
}

fn parse_date_bytes(b: &[u8]) -> Option<Date> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let y = b[..4].iter().try_fold(0i32, |a, c| {
        c.is_ascii_digit().then(|| a * 10 + i32::from(c - b'0'))
    })?;
    let m = Month::try_from(two(&b[5..7])?).ok()?;
    Date::from_calendar_date(y, m, two(&b[8..10])?).ok()
}

impl DateSpec {
    pub(crate) fn check(&self, d: Date) -> Result<Date, ValueError> {
        let t = (d.year(), u8::from(d.month()), d.day());
        let fmt = |(y, m, d): (i32, u8, u8)| format!("{y:04}-{m:02}-{d:02}");
        if t < self.min {
            Err(ValueError::new(
                &fmt(t),
                ValueErrorKind::TooSmall { min: fmt(self.min) },
            ))
        } else if t > self.max {
            Err(ValueError::new(
                &fmt(t),
                ValueErrorKind::TooLarge { max: fmt(self.max) },
            ))
        } else {
            Ok(d)
        }
    }
    pub(crate) fn parse(&self, s: &str) -> Result<Date, ValueError> {
        let d = parse_date_bytes(trim_xml(s).as_bytes())
            .ok_or_else(|| ValueError::new(s, ValueErrorKind::NotDate))?;
        self.check(d)
    }
}

pub(crate) fn write_date(d: Date, out: &mut String) {
    let _ = write!(
        out,
        "{:04}-{:02}-{:02}",
        d.year(),
        u8::from(d.month()),
        d.day()
    );
}

/// An `xsd:dateTime` value: a date, a time (to the nanosecond) and an optional zone offset.
///
/// The schema allows values without a zone; they are kept as such (and treated as UTC for the
/// schema's range checks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct XsdDateTime {
    /// Date part.
    pub date: Date,
    /// Time part.
    pub time: Time,
    /// Zone offset, if the value had one (`Z` is UTC).
    pub offset: Option<UtcOffset>,
}

impl XsdDateTime {
    /// From a zoned date-time (written with `Z` when the offset is UTC).
    pub fn from_offset(dt: time::OffsetDateTime) -> Self {
        Self {
            date: dt.date(),
            time: dt.time(),
            offset: Some(dt.offset()),
        }
    }
    /// As a zoned date-time (a value without zone is taken as UTC).
    pub fn to_offset(self) -> time::OffsetDateTime {
        PrimitiveDateTime::new(self.date, self.time)
            .assume_offset(self.offset.unwrap_or(UtcOffset::UTC))
    }
    /// Parses the `xsd:dateTime` lexical form (`2026-02-01T10:00:00Z`, `…T10:00:00.5+01:00`, …).
    pub fn parse(s: &str) -> Result<Self, ValueError> {
        let err = || ValueError::new(s, ValueErrorKind::NotDateTime);
        let b = trim_xml(s).as_bytes();
        if b.len() < 19 || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
            return Err(err());
        }
        let date = parse_date_bytes(&b[..10]).ok_or_else(err)?;
        let (h, mi, se) = (
            two(&b[11..13]).ok_or_else(err)?,
            two(&b[14..16]).ok_or_else(err)?,
            two(&b[17..19]).ok_or_else(err)?,
        );
        let mut i = 19;
        let mut nanos = 0u32;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let st = i;
            let mut scale = 100_000_000u32;
            while i < b.len() && b[i].is_ascii_digit() {
                nanos += u32::from(b[i] - b'0') * scale;
                scale /= 10;
                i += 1;
            }
            if i == st {
                return Err(err());
            }
        }
        let time = Time::from_hms_nano(h, mi, se, nanos).map_err(|_| err())?;
        let offset = match &b[i..] {
            [] => None,
            [b'Z'] => Some(UtcOffset::UTC),
            [sign @ (b'+' | b'-'), rest @ ..] if rest.len() == 5 && rest[2] == b':' => {
                let oh = two(&rest[..2]).ok_or_else(err)?;
                let om = two(&rest[3..]).ok_or_else(err)?;
                if oh > 14 || om > 59 {
                    return Err(err());
                }
                let secs = (i32::from(oh) * 3600 + i32::from(om) * 60)
                    * if *sign == b'-' { -1 } else { 1 };
                Some(UtcOffset::from_whole_seconds(secs).map_err(|_| err())?)
            }
            _ => return Err(err()),
        };
        Ok(Self { date, time, offset })
    }
    pub(crate) fn write(&self, out: &mut String) {
        write_date(self.date, out);
        let _ = write!(
            out,
            "T{:02}:{:02}:{:02}",
            self.time.hour(),
            self.time.minute(),
            self.time.second()
        );
        let n = self.time.nanosecond();
        if n != 0 {
            let f = format!("{n:09}");
            out.push('.');
            out.push_str(f.trim_end_matches('0'));
        }
        match self.offset {
            None => {}
            Some(o) if o.is_utc() => out.push('Z'),
            Some(o) => {
                let secs = o.whole_seconds();
                let sign = if secs < 0 { '-' } else { '+' };
                let a = secs.unsigned_abs();
                let _ = write!(out, "{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60);
            }
        }
    }
}

impl std::fmt::Display for XsdDateTime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = String::new();
        self.write(&mut s);
        f.write_str(&s)
    }
}

/// Range of a date-time type as UTC Unix seconds, inclusive.
pub(crate) struct DateTimeSpec {
    pub(crate) min: i64,
    pub(crate) max: i64,
}

impl DateTimeSpec {
    pub(crate) fn check(&self, v: XsdDateTime) -> Result<XsdDateTime, ValueError> {
        let ts = v.to_offset().unix_timestamp();
        let show = |t: i64| {
            time::OffsetDateTime::from_unix_timestamp(t)
                .map(|d| XsdDateTime::from_offset(d).to_string())
                .unwrap_or_default()
        };
        if ts < self.min {
            Err(ValueError::new(
                &v.to_string(),
                ValueErrorKind::TooSmall {
                    min: show(self.min),
                },
            ))
        } else if ts > self.max {
            Err(ValueError::new(
                &v.to_string(),
                ValueErrorKind::TooLarge {
                    max: show(self.max),
                },
            ))
        } else {
            Ok(v)
        }
    }
    pub(crate) fn parse(&self, s: &str) -> Result<XsdDateTime, ValueError> {
        self.check(XsdDateTime::parse(s)?)
    }
}

// ------------------------------------------------------------------ traits

/// A simple-typed value: parse from and write to XML text.
pub(crate) trait XmlValue: Sized {
    fn parse_xml(s: &str) -> Result<Self, ValueError>;
    fn write_xml(&self, out: &mut String);
}

/// A type that is the content of an element.
pub(crate) trait XmlElement: Sized {
    fn from_node(node: Node<'_, '_>) -> Result<Self, Error>;
    fn write_node(&self, name: &'static str, w: &mut Writer);
    fn check_node(&self, v: &mut Check) {
        let _ = v;
    }
}

/// Escapes text for both element content and attribute values. CR, TAB and LF inside
/// attributes would be normalised away by a parser, so they are written as character references.
pub(crate) fn escape_into(s: &str, out: &mut String, attr: bool) {
    let b = s.as_bytes();
    let mut last = 0;
    for (i, &c) in b.iter().enumerate() {
        let rep = match c {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\r' => "&#xD;",
            b'\n' if attr => "&#xA;",
            b'\t' if attr => "&#x9;",
            _ => continue,
        };
        out.push_str(&s[last..i]);
        out.push_str(rep);
        last = i + 1;
    }
    out.push_str(&s[last..]);
}

// ------------------------------------------------------------------ parsing

use crate::xml::{Attrs, Tag, Tok, eof_error, is_xml_ws};
pub(crate) use crate::xml::{Ns, Reader};

/// An element whose start tag has just been read: the content is next in the reader.
pub(crate) struct Node<'p, 'i> {
    r: &'p mut Reader<'i>,
    tag: Tag<'i>,
}

impl<'p, 'i> Node<'p, 'i> {
    pub(crate) fn new(r: &'p mut Reader<'i>, tag: Tag<'i>) -> Self {
        Self { r, tag }
    }
}

/// Checks an element's attributes: unprefixed ones must be in `allowed`, `xsi:*` and namespace
/// declarations pass, anything else is refused.
pub(crate) fn check_attrs(node: &Node<'_, '_>, allowed: &[&str]) -> Result<(), Error> {
    if is_xml_ws(node.tag.attrs) {
        return Ok(()); // most elements have none
    }
    for a in Attrs::new(node.tag.attrs) {
        let (key, raw) = a?;
        crate::xml::no_forbidden_chars(raw)?;
        if key == "xmlns" || key.starts_with("xmlns:") {
            continue;
        }
        let local = key.rsplit(':').next().unwrap_or(key);
        let name = match node.r.attribute_ns(key)? {
            Ns::Other(ns) if &*ns == XSI => continue,
            Ns::None if allowed.contains(&local) => continue,
            Ns::None => local.to_owned(),
            Ns::Other(ns) => format!("{{{ns}}}{local}"),
            Ns::Fa => format!("{{{}}}{local}", crate::NAMESPACE),
        };
        return Err(Error::invalid(Problem::Attribute { name }));
    }
    Ok(())
}

fn attr_value<T: XmlValue>(node: &Node<'_, '_>, name: &'static str) -> Result<Option<T>, Error> {
    for a in Attrs::new(node.tag.attrs) {
        let (key, raw) = a?;
        if key == name {
            let v = crate::xml::attr_value(raw)?;
            return T::parse_xml(&v)
                .map(Some)
                .map_err(|e| Error::invalid(Problem::Value(e)).at_attr(name));
        }
    }
    Ok(None)
}

pub(crate) fn attr<T: XmlValue>(node: &Node<'_, '_>, name: &'static str) -> Result<T, Error> {
    attr_value(node, name)?.ok_or_else(|| Error::invalid(Problem::MissingAttribute).at_attr(name))
}

#[allow(dead_code)] // FA(3) declares no optional attribute; kept for schema updates
pub(crate) fn attr_opt<T: XmlValue>(
    node: &Node<'_, '_>,
    name: &'static str,
) -> Result<Option<T>, Error> {
    attr_value(node, name)
}

/// The text of a simple-content element (children must be text only). Consumes the element.
pub(crate) fn simple_text<T: XmlValue>(node: Node<'_, '_>) -> Result<T, Error> {
    if node.tag.empty {
        return T::parse_xml("").map_err(|e| Error::invalid(Problem::Value(e)));
    }
    let r = node.r;
    if let Some(raw) = r.simple_content() {
        return T::parse_xml(raw).map_err(|e| Error::invalid(Problem::Value(e)));
    }
    let mut text: Cow<'_, str> = Cow::Borrowed("");
    loop {
        let piece = match r.next()? {
            Tok::Text(t) => crate::xml::text(t)?,
            Tok::CData(t) => crate::xml::cdata(t),
            Tok::End => break,
            Tok::Start(_) => return Err(Error::invalid(Problem::ChildElements)),
            Tok::Skip => continue,
            Tok::Decl | Tok::DocType => {
                return Err(Error::Xml(
                    "an XML declaration or DTD inside an element".to_owned(),
                ));
            }
            Tok::Eof => return Err(eof_error()),
        };
        if text.is_empty() {
            text = piece;
        } else {
            text.to_mut().push_str(&piece);
        }
    }
    T::parse_xml(&text).map_err(|e| Error::invalid(Problem::Value(e)))
}

pub(crate) fn simple_from_node<T: XmlValue>(node: Node<'_, '_>) -> Result<T, Error> {
    check_attrs(&node, &[])?;
    simple_text(node)
}

impl Error {
    fn at_attr(mut self, name: &'static str) -> Self {
        if let Self::Invalid { path, .. } = &mut self {
            path.0.insert(
                0,
                Segment {
                    name: Cow::Owned(format!("@{name}")),
                    index: None,
                },
            );
        }
        self
    }
}

/// Parse-time check of an element's `fixed` value.
pub(crate) fn fixed_value(
    found: &str,
    name: &'static str,
    expected: &'static str,
) -> Result<(), Error> {
    if found == expected {
        Ok(())
    } else {
        Err(Error::invalid(Problem::Fixed {
            expected,
            found: found.to_owned(),
        })
        .at(name, None))
    }
}

/// What comes next among an element's children.
enum Next<'i> {
    /// A child element's start tag (already read).
    Child(Tag<'i>),
    /// The parent's end tag (already read).
    End,
    /// Reading on failed; the error is reported by the next `one`/`many`/`finish`.
    Failed(Error),
    /// The child was handed out and has consumed its content: read on before peeking.
    Taken,
}

/// Walks the child elements of one element in document order, one start tag of lookahead.
pub(crate) struct Cursor<'p, 'i> {
    r: &'p mut Reader<'i>,
    next: Next<'i>,
}

const FOREIGN: &str = "{foreign}";

impl<'p, 'i> Cursor<'p, 'i> {
    /// Starts on the content of `node` (its attributes must have been checked already).
    pub(crate) fn new(node: Node<'p, 'i>) -> Result<Self, Error> {
        let mut c = Self {
            r: node.r,
            next: if node.tag.empty {
                Next::End
            } else {
                Next::Taken
            },
        };
        c.advance();
        Ok(c)
    }

    /// Reads up to the next child's start tag or the parent's end tag.
    fn advance(&mut self) {
        if !matches!(self.next, Next::Taken) {
            return;
        }
        self.r.skip_ws();
        self.next = loop {
            match self.r.next() {
                Ok(Tok::Start(tag)) => break Next::Child(tag),
                Ok(Tok::End) => break Next::End,
                Ok(Tok::Text(t)) if is_xml_ws(t) => {}
                Ok(Tok::CData(t)) if is_xml_ws(t) => {}
                Ok(Tok::Text(t)) => match crate::xml::text(t) {
                    // whitespace written as character references
                    Ok(t) if is_xml_ws(&t) => {}
                    Ok(_) => break Next::Failed(Error::invalid(Problem::Text)),
                    Err(e) => break Next::Failed(e),
                },
                Ok(Tok::CData(_)) => break Next::Failed(Error::invalid(Problem::Text)),
                Ok(Tok::Skip) => {}
                Ok(Tok::Decl | Tok::DocType) => {
                    break Next::Failed(Error::Xml(
                        "an XML declaration or DTD inside an element".to_owned(),
                    ));
                }
                Ok(Tok::Eof) => break Next::Failed(eof_error()),
                Err(e) => break Next::Failed(e),
            }
        };
    }

    /// Local name of the next child element when it is in the FA(3) namespace
    /// (`{foreign}` for one in another namespace, `None` at the end).
    #[inline]
    pub(crate) fn peek(&self) -> Option<&'i str> {
        match &self.next {
            Next::Child(Tag {
                ns: Ns::Fa, local, ..
            }) => Some(local),
            Next::Child(_) => Some(FOREIGN),
            _ => None,
        }
    }

    /// Whether the next child is the FA(3) element `name`.
    #[inline]
    fn is(&self, name: &str) -> bool {
        matches!(&self.next, Next::Child(Tag { ns: Ns::Fa, local, .. }) if *local == name)
    }

    fn found(&self) -> Option<String> {
        match &self.next {
            Next::Child(Tag { local, ns, .. }) => Some(match ns {
                Ns::Fa => (*local).to_owned(),
                Ns::None => format!("{{}}{local}"),
                Ns::Other(n) => format!("{{{n}}}{local}"),
            }),
            _ => None,
        }
    }

    /// The error reading on failed with, if it did.
    fn failed(&mut self) -> Option<Error> {
        if let Next::Failed(_) = self.next {
            match std::mem::replace(&mut self.next, Next::End) {
                Next::Failed(e) => return Some(e),
                _ => return None,
            }
        }
        None
    }

    fn take<T: XmlElement>(&mut self) -> Result<T, Error> {
        match std::mem::replace(&mut self.next, Next::Taken) {
            Next::Child(tag) => {
                let v = T::from_node(Node::new(self.r, tag));
                self.advance();
                v
            }
            other => {
                self.next = other;
                Err(Error::invalid(Problem::Missing { found: None }))
            }
        }
    }

    #[cold]
    fn missing(&mut self, name: &'static str) -> Error {
        if let Some(e) = self.failed() {
            return e;
        }
        Error::invalid(Problem::Missing {
            found: self.found(),
        })
        .at(name, None)
    }

    #[inline]
    pub(crate) fn one<T: XmlElement>(&mut self, name: &'static str) -> Result<T, Error> {
        if self.is(name) {
            self.take().map_err(|e| e.at(name, None))
        } else {
            Err(self.missing(name))
        }
    }

    #[inline]
    pub(crate) fn opt<T: XmlElement>(&mut self, name: &'static str) -> Result<Option<T>, Error> {
        if self.is(name) {
            self.take().map(Some).map_err(|e| e.at(name, None))
        } else if let Some(e) = self.failed() {
            Err(e)
        } else {
            Ok(None)
        }
    }

    pub(crate) fn many<T: XmlElement>(
        &mut self,
        name: &'static str,
        min: usize,
        max: usize,
    ) -> Result<Vec<T>, Error> {
        let mut v = Vec::new();
        while self.is(name) {
            let x = self.take().map_err(|e| e.at(name, Some(v.len() + 1)))?;
            v.push(x);
        }
        if let Some(e) = self.failed() {
            return Err(e);
        }
        if v.len() < min {
            if v.is_empty() {
                return Err(Error::invalid(Problem::Missing {
                    found: self.found(),
                })
                .at(name, None));
            }
            return Err(Error::invalid(Problem::TooFew {
                min,
                found: v.len(),
            })
            .at(name, None));
        }
        if v.len() > max {
            return Err(Error::invalid(Problem::TooMany {
                max,
                found: v.len(),
            })
            .at(name, None));
        }
        Ok(v)
    }

    pub(crate) fn expected(&mut self, names: &[&'static str]) -> Error {
        if let Some(e) = self.failed() {
            return e;
        }
        Error::invalid(Problem::ExpectedOneOf {
            expected: names.to_vec(),
            found: self.found(),
        })
    }

    pub(crate) fn finish(mut self) -> Result<(), Error> {
        if let Some(e) = self.failed() {
            return Err(e);
        }
        match self.found() {
            None => Ok(()),
            Some(found) => Err(Error::invalid(Problem::Unexpected { found })),
        }
    }
}

// ------------------------------------------------------------------ writing

/// Appends XML to a string; elements are in the FA(3) default namespace.
pub(crate) struct Writer {
    out: String,
    root_ns: bool,
}

impl Writer {
    pub(crate) fn with_capacity(n: usize) -> Self {
        Self {
            out: String::with_capacity(n),
            root_ns: true,
        }
    }
    pub(crate) fn out(&mut self) -> &mut String {
        &mut self.out
    }
    pub(crate) fn into_string(self) -> String {
        self.out
    }
    pub(crate) fn open(&mut self, name: &str) {
        self.out.push('<');
        self.out.push_str(name);
        if self.root_ns {
            self.root_ns = false;
            self.out.push_str(concat!(
                " xmlns=\"http://crd.gov.pl/wzor/2025/06/25/13775/\"",
                " xmlns:etd=\"http://crd.gov.pl/xml/schematy/dziedzinowe/mf/2022/01/05/eD/DefinicjeTypy/\"",
                " xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\""
            ));
        }
    }
    pub(crate) fn attr<T: XmlValue>(&mut self, name: &str, v: &T) {
        self.out.push(' ');
        self.out.push_str(name);
        self.out.push_str("=\"");
        // attribute types here are enumerations of plain characters: content escaping suffices
        v.write_xml(&mut self.out);
        self.out.push('"');
    }
    pub(crate) fn open_end(&mut self) {
        self.out.push('>');
    }
    pub(crate) fn close(&mut self, name: &str) {
        self.out.push_str("</");
        self.out.push_str(name);
        self.out.push('>');
    }
    pub(crate) fn one<T: XmlElement>(&mut self, name: &'static str, v: &T) {
        v.write_node(name, self);
    }
    pub(crate) fn opt<T: XmlElement>(&mut self, name: &'static str, v: &Option<T>) {
        if let Some(v) = v {
            v.write_node(name, self);
        }
    }
    pub(crate) fn many<T: XmlElement>(&mut self, name: &'static str, v: &[T]) {
        for x in v {
            x.write_node(name, self);
        }
    }
}

// ------------------------------------------------------------------ structural check

/// Collects structural problems (repetition counts, fixed values) of a model built in code.
pub(crate) struct Check {
    path: Vec<Segment>,
    pub(crate) errors: Vec<Error>,
}

impl Check {
    pub(crate) fn new() -> Self {
        Self {
            path: Vec::new(),
            errors: Vec::new(),
        }
    }
    fn push(&mut self, name: &'static str, index: Option<usize>) {
        self.path.push(Segment {
            name: Cow::Borrowed(name),
            index,
        });
    }
    pub(crate) fn report(&mut self, name: Option<&'static str>, problem: Problem) {
        let mut path = self.path.clone();
        if let Some(n) = name {
            path.push(Segment {
                name: Cow::Borrowed(n),
                index: None,
            });
        }
        self.errors.push(Error::Invalid {
            path: crate::error::FieldPath(path),
            problem,
        });
    }
    pub(crate) fn one<T: XmlElement>(&mut self, name: &'static str, v: &T) {
        self.push(name, None);
        v.check_node(self);
        self.path.pop();
    }
    pub(crate) fn opt<T: XmlElement>(&mut self, name: &'static str, v: &Option<T>) {
        if let Some(v) = v {
            self.one(name, v);
        }
    }
    pub(crate) fn count<T>(&mut self, name: &'static str, v: &[T], min: usize, max: usize) {
        if v.len() < min {
            let p = if v.is_empty() {
                Problem::Missing { found: None }
            } else {
                Problem::TooFew {
                    min,
                    found: v.len(),
                }
            };
            self.report(Some(name), p);
        } else if v.len() > max {
            self.report(
                Some(name),
                Problem::TooMany {
                    max,
                    found: v.len(),
                },
            );
        }
    }
    pub(crate) fn many<T: XmlElement>(
        &mut self,
        name: &'static str,
        v: &[T],
        min: usize,
        max: usize,
    ) {
        self.count(name, v, min, max);
        for (i, x) in v.iter().enumerate() {
            self.push(name, Some(i + 1));
            x.check_node(self);
            self.path.pop();
        }
    }
    /// A value of a shared enumeration set in code must be one the schema lists.
    pub(crate) fn known<T: XmlValue>(&mut self, name: &'static str, v: &T) {
        let mut s = String::new();
        v.write_xml(&mut s);
        if let Err(e) = T::parse_xml(&s) {
            self.report(Some(name), Problem::Value(e));
        }
    }
    pub(crate) fn fixed(&mut self, name: &'static str, found: &str, expected: &'static str) {
        if found != expected {
            self.report(
                Some(name),
                Problem::Fixed {
                    expected,
                    found: found.to_owned(),
                },
            );
        }
    }
}

// ------------------------------------------------------------------ impl macros

/// An element with simple content and no attributes holding `$t`.
macro_rules! simple_xml_element {
    ($t:ident) => {
        impl $crate::rt::XmlElement for $t {
            fn from_node(node: $crate::rt::Node<'_, '_>) -> Result<Self, $crate::rt::Error> {
                $crate::rt::simple_from_node(node)
            }
            fn write_node(&self, name: &'static str, w: &mut $crate::rt::Writer) {
                w.open(name);
                w.open_end();
                $crate::rt::XmlValue::write_xml(self, w.out());
                w.close(name);
            }
        }
    };
}

macro_rules! simple_element {
    ($t:ident) => {
        $crate::rt::simple_xml_element!($t);
        impl std::str::FromStr for $t {
            type Err = $crate::rt::ValueError;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                <Self as $crate::rt::XmlValue>::parse_xml(s)
            }
        }
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                let mut s = String::new();
                $crate::rt::XmlValue::write_xml(self, &mut s);
                f.write_str(&s)
            }
        }
    };
}

macro_rules! enum_impls {
    ($t:ident, $ws:expr, $what:expr) => {
        impl $crate::rt::XmlValue for $t {
            fn parse_xml(s: &str) -> Result<Self, $crate::rt::ValueError> {
                let n = $crate::rt::normalize_enum(s, $ws);
                Self::from_xml_str(&n).ok_or_else(|| {
                    $crate::rt::ValueError::new(
                        s,
                        $crate::rt::ValueErrorKind::NotAllowed { what: $what },
                    )
                })
            }
            fn write_xml(&self, out: &mut String) {
                $crate::rt::escape_into(self.as_str(), out, false)
            }
        }
        $crate::rt::simple_element!($t);
    };
}

macro_rules! string_impls {
    ($t:ident) => {
        impl $crate::rt::XmlValue for $t {
            fn parse_xml(s: &str) -> Result<Self, $crate::rt::ValueError> {
                Self::new(s)
            }
            fn write_xml(&self, out: &mut String) {
                $crate::rt::escape_into(&self.0, out, false)
            }
        }
        impl AsRef<str> for $t {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }
        impl TryFrom<&str> for $t {
            type Error = $crate::rt::ValueError;
            fn try_from(s: &str) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }
        impl TryFrom<String> for $t {
            type Error = $crate::rt::ValueError;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }
        $crate::rt::simple_element!($t);
    };
}

macro_rules! decimal_impls {
    ($t:ident, $spec:expr) => {
        impl $crate::rt::XmlValue for $t {
            fn parse_xml(s: &str) -> Result<Self, $crate::rt::ValueError> {
                $spec.parse(s).map(Self)
            }
            fn write_xml(&self, out: &mut String) {
                $spec.write(self.0, out)
            }
        }
        impl TryFrom<rust_decimal::Decimal> for $t {
            type Error = $crate::rt::ValueError;
            fn try_from(d: rust_decimal::Decimal) -> Result<Self, Self::Error> {
                Self::new(d)
            }
        }
        $crate::rt::simple_element!($t);
    };
}

macro_rules! int_impls {
    ($t:ident, $spec:expr) => {
        impl $crate::rt::XmlValue for $t {
            fn parse_xml(s: &str) -> Result<Self, $crate::rt::ValueError> {
                $spec.parse(s).map(Self)
            }
            fn write_xml(&self, out: &mut String) {
                use std::fmt::Write as _;
                let _ = write!(out, "{}", self.0);
            }
        }
        impl TryFrom<i64> for $t {
            type Error = $crate::rt::ValueError;
            fn try_from(v: i64) -> Result<Self, Self::Error> {
                Self::new(v)
            }
        }
        $crate::rt::simple_element!($t);
    };
}

macro_rules! date_impls {
    ($t:ident, $spec:expr) => {
        impl $crate::rt::XmlValue for $t {
            fn parse_xml(s: &str) -> Result<Self, $crate::rt::ValueError> {
                $spec.parse(s).map(Self)
            }
            fn write_xml(&self, out: &mut String) {
                $crate::rt::write_date(self.0, out)
            }
        }
        impl TryFrom<time::Date> for $t {
            type Error = $crate::rt::ValueError;
            fn try_from(d: time::Date) -> Result<Self, Self::Error> {
                Self::new(d)
            }
        }
        $crate::rt::simple_element!($t);
    };
}

macro_rules! datetime_impls {
    ($t:ident, $spec:expr) => {
        impl $crate::rt::XmlValue for $t {
            fn parse_xml(s: &str) -> Result<Self, $crate::rt::ValueError> {
                $spec.parse(s).map(Self)
            }
            fn write_xml(&self, out: &mut String) {
                self.0.write(out)
            }
        }
        $crate::rt::simple_element!($t);
    };
}

/// Parsing and writing for an enumeration another crate defines (`ksef_model`'s, with an
/// `Unknown` arm that the schema does not allow: parsing refuses such values).
macro_rules! shared_enum_impls {
    ($t:ident, $ws:expr, $what:expr) => {
        impl $crate::rt::XmlValue for $t {
            fn parse_xml(s: &str) -> Result<Self, $crate::rt::ValueError> {
                let n = $crate::rt::normalize_enum(s, $ws);
                let v = <$t>::from(n.as_ref());
                if v.is_unknown() {
                    Err($crate::rt::ValueError::new(
                        s,
                        $crate::rt::ValueErrorKind::NotAllowed { what: $what },
                    ))
                } else {
                    Ok(v)
                }
            }
            fn write_xml(&self, out: &mut String) {
                $crate::rt::escape_into(self.as_str(), out, false)
            }
        }
        $crate::rt::simple_xml_element!($t);
    };
}

pub(crate) use {
    date_impls, datetime_impls, decimal_impls, enum_impls, int_impls, shared_enum_impls,
    simple_element, simple_xml_element, string_impls,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_plain_lexical() {
        let spec = DecimalSpec {
            total_digits: 18,
            fraction_digits: 2,
            lex: DecLex::Plain {
                int_digits: 16,
                frac_digits: 2,
            },
            min: None,
            max: None,
        };
        assert!(spec.parse("0").is_ok());
        assert!(spec.parse("-12.5").is_ok());
        for bad in [
            "",
            "01",
            "1.",
            ".5",
            "1.234",
            "+1",
            "1e3",
            "12345678901234567",
        ] {
            assert!(spec.parse(bad).is_err(), "{bad}");
        }
        let mut s = String::new();
        spec.write(Decimal::new(12300, 3), &mut s);
        assert_eq!(s, "12.3");
    }

    #[test]
    fn decimal_fast_path_equals_the_general_one() {
        let spec = DecimalSpec {
            total_digits: 18,
            fraction_digits: 2,
            lex: DecLex::Plain {
                int_digits: 16,
                frac_digits: 2,
            },
            min: None,
            max: None,
        };
        for v in [
            "0",
            "0.00",
            "-0.5",
            "12.50",
            "1",
            "100",
            "-100.10",
            "9999999999999999.99",
            "0.01",
            " 7.1 ",
            "-0.00",
        ] {
            let fast = spec.parse(v).unwrap();
            let slow = spec
                .check(Decimal::from_str_exact(v.trim()).unwrap())
                .unwrap();
            assert_eq!(fast, slow, "{v}");
            assert_eq!(fast.to_string(), slow.to_string(), "{v}");
        }
        let narrow = DecimalSpec {
            total_digits: 3,
            ..spec
        };
        assert!(narrow.parse("12.30").is_ok()); // 3 digits once normalised
        assert!(narrow.parse("12.34").is_err());
    }

    proptest::proptest! {
        #[test]
        fn decimal_fast_path_equals_decimal_from_str(v in "-?(0|[1-9][0-9]{0,17})(\\.[0-9]{1,3})?", total in 1u32..20) {
            let spec = DecimalSpec {
                total_digits: total,
                fraction_digits: 2,
                lex: DecLex::Plain { int_digits: 16, frac_digits: 2 },
                min: None,
                max: None,
            };
            let general = (|| {
                let d = Decimal::from_str_exact(&v).map_err(|_| ())?;
                spec.check(d).map_err(|_| ())
            })();
            match spec.parse(&v) {
                Ok(d) => {
                    let g = general.unwrap();
                    proptest::prop_assert_eq!(d, g);
                    proptest::prop_assert_eq!(d.to_string(), g.to_string());
                }
                Err(_) => proptest::prop_assert!(
                    general.is_err() || v.trim_start_matches('-').split('.').next().unwrap().len() > 16
                        || v.split('.').nth(1).is_some_and(|f| f.len() > 2)
                ),
            }
        }

        #[test]
        fn text_value_equals_the_general_path(v in "[a b\t\n\u{1}é]{0,8}", min in 0usize..4, len in 0usize..6) {
            for ws in [Ws::Preserve, Ws::Replace, Ws::Collapse] {
                let general = (|| {
                    let n = ws_owned(v.clone(), ws);
                    check_chars(&n)?;
                    check_len(&n, min, min + len)?;
                    Ok::<_, ValueError>(n)
                })();
                let fast = text_value(v.clone(), ws, min, min + len);
                proptest::prop_assert_eq!(fast.is_ok(), general.is_ok());
                if let (Ok(a), Ok(b)) = (fast, general) {
                    proptest::prop_assert_eq!(a, b);
                }
            }
        }
    }

    #[test]
    fn datetime_forms() {
        for ok in [
            "2026-02-01T10:00:00Z",
            "2026-02-01T10:00:00.25+01:00",
            "2026-02-01T10:00:00",
        ] {
            let d = XsdDateTime::parse(ok).unwrap();
            assert_eq!(XsdDateTime::parse(&d.to_string()).unwrap(), d);
        }
        for bad in [
            "2026-02-01",
            "2026-13-01T10:00:00Z",
            "2026-02-01T25:00:00Z",
            "2026-02-01T10:00:00+1",
        ] {
            assert!(XsdDateTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn whitespace() {
        assert_eq!(ws_owned(" a \t b ".into(), Ws::Collapse), "a b");
        assert_eq!(ws_owned("a\tb".into(), Ws::Replace), "a b");
        assert_eq!(normalize_enum(" 007 ", Ws::Int), "7");
    }

    #[test]
    fn patterns_compile() {
        static P: Pattern = Pattern::new(r"[1-9]((\d[1-9])|([1-9]\d))\d{7}");
        assert!(P.compiles());
        assert!(P.check("5261040828").is_ok());
        assert!(P.check("0261040828").is_err());
    }
}
