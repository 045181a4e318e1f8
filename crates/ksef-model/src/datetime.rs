//! Date-time and date types used by every KSeF API field with `format: date-time` / `format: date`.
//!
//! [`DateTime`] wraps [`time::OffsetDateTime`]. KSeF sends timestamps with seven fraction digits
//! (`2025-07-11T12:23:56.0154302+00:00`) and, in a few places (the legacy `ExceptionResponse`),
//! without any UTC offset (`2025-10-11T12:23:56.0154302`). Parsing therefore accepts:
//!
//! - `YYYY-MM-DDTHH:MM:SS` with an optional fraction of **any** number of digits (digits beyond
//!   the ninth — below one nanosecond — are dropped);
//! - an offset `Z`, `z`, `±HH:MM`, or **no offset at all, which is read as UTC** (KSeF's servers
//!   run in UTC; note that KSeF itself reads offset-less *query filters* as Europe/Warsaw local
//!   time, so always send an explicit offset — [`DateTime`]'s `Display` always writes one).
//!
//! Serialization writes RFC 3339: the fraction with trailing zeros removed (none when whole
//! seconds) and `Z` for UTC, otherwise `±HH:MM`. (Values built from an `OffsetDateTime` outside
//! years 0000–9999 cannot be RFC 3339; they are written with a sign or a fifth digit, and
//! offsets with a seconds part are written converted to UTC.)
//!
//! We parse by hand rather than with `time`'s `Rfc3339` description because that one rejects
//! the missing offset KSeF sends and caps the fraction length.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

/// An instant with its UTC offset, as sent and received by the KSeF API (RFC 3339 on the wire).
///
/// Equality and ordering compare instants: `12:00:00+01:00` equals `11:00:00Z`.
///
/// ```
/// use ksef_model::datetime::DateTime;
/// let t: DateTime = "2025-07-11T12:23:56.0154302+00:00".parse()?;
/// assert_eq!(t.to_string(), "2025-07-11T12:23:56.0154302Z");
/// let no_offset: DateTime = "2025-07-11T12:23:56.0154302".parse()?; // read as UTC
/// assert_eq!(t, no_offset);
/// # Ok::<(), ksef_model::datetime::DateTimeParseError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DateTime(OffsetDateTime);

impl DateTime {
    /// Wraps an [`OffsetDateTime`].
    pub const fn new(value: OffsetDateTime) -> Self {
        Self(value)
    }

    /// The current instant in UTC.
    pub fn now_utc() -> Self {
        Self(OffsetDateTime::now_utc())
    }

    /// The wrapped [`OffsetDateTime`].
    pub const fn as_offset_date_time(&self) -> OffsetDateTime {
        self.0
    }

    /// Parses an RFC 3339 date-time (see the [module docs](self) for what is accepted).
    pub fn parse(input: &str) -> Result<Self, DateTimeParseError> {
        parse_date_time(input).map_err(|reason| DateTimeParseError::new(input, reason))
    }
}

impl From<OffsetDateTime> for DateTime {
    fn from(value: OffsetDateTime) -> Self {
        Self(value)
    }
}

impl From<DateTime> for OffsetDateTime {
    fn from(value: DateTime) -> Self {
        value.0
    }
}

impl FromStr for DateTime {
    type Err = DateTimeParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut value = self.0;
        // RFC 3339 offsets have no seconds part: write such (exotic) offsets as UTC instead.
        if value.offset().seconds_past_minute() != 0 {
            value = value.to_offset(UtcOffset::UTC);
        }
        write_date(f, value.date())?;
        write!(
            f,
            "T{:02}:{:02}:{:02}",
            value.hour(),
            value.minute(),
            value.second()
        )?;
        let nanos = value.nanosecond();
        if nanos != 0 {
            let digits = format!("{nanos:09}");
            write!(f, ".{}", digits.trim_end_matches('0'))?;
        }
        let offset = value.offset();
        if offset.is_utc() {
            f.write_str("Z")
        } else {
            let sign = if offset.is_negative() { '-' } else { '+' };
            write!(
                f,
                "{sign}{:02}:{:02}",
                offset.whole_hours().unsigned_abs(),
                offset.minutes_past_hour().unsigned_abs()
            )
        }
    }
}

impl fmt::Debug for DateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DateTime({self})")
    }
}

impl Serialize for DateTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DateTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// A date-time or date string that is not valid RFC 3339.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {what} `{input}`: {reason}; expected RFC 3339 like `{example}`")]
pub struct DateTimeParseError {
    what: &'static str,
    input: String,
    reason: &'static str,
    example: &'static str,
}

impl DateTimeParseError {
    fn new(input: &str, reason: &'static str) -> Self {
        Self {
            what: "date-time",
            input: shorten(input),
            reason,
            example: "2025-07-11T12:23:56.0154302+00:00",
        }
    }

    fn date(input: &str, reason: &'static str) -> Self {
        Self {
            what: "date",
            input: shorten(input),
            reason,
            example: "2025-07-11",
        }
    }

    /// What is wrong with the input.
    pub fn reason(&self) -> &str {
        self.reason
    }
}

fn shorten(input: &str) -> String {
    input.chars().take(64).collect()
}

fn digits(s: &str, what: &'static str) -> Result<u32, &'static str> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(what);
    }
    s.parse().map_err(|_| what)
}

fn parse_date_part(s: &str) -> Result<Date, &'static str> {
    let b = s.as_bytes();
    if !s.is_ascii() || b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err("the date must be YYYY-MM-DD");
    }
    let year = digits(&s[0..4], "the year must be four digits")?;
    let month = digits(&s[5..7], "the month must be two digits")?;
    let day = digits(&s[8..10], "the day must be two digits")?;
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or("the month is out of range 01-12")?;
    let year = i32::try_from(year).map_err(|_| "the year is out of range")?;
    let day = u8::try_from(day).map_err(|_| "the day is out of range")?;
    Date::from_calendar_date(year, month, day).map_err(|_| "the day does not exist in that month")
}

fn parse_date_time(input: &str) -> Result<DateTime, &'static str> {
    if !input.is_ascii() {
        return Err("non-ASCII characters");
    }
    if input.len() < 19 {
        return Err("too short");
    }
    let (date, rest) = input.split_at(10);
    let date = parse_date_part(date)?;
    let rest = rest
        .strip_prefix('T')
        .or_else(|| rest.strip_prefix('t'))
        .ok_or("`T` must separate date and time")?;
    let b = rest.as_bytes();
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return Err("the time must be HH:MM:SS");
    }
    let hour = digits(&rest[0..2], "the hour must be two digits")?;
    let minute = digits(&rest[3..5], "the minute must be two digits")?;
    let second = digits(&rest[6..8], "the second must be two digits")?;
    let mut rest = &rest[8..];
    let mut nanos = 0u32;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return Err("the fraction after `.` has no digits");
        }
        let kept = &fraction[..len.min(9)];
        let value = digits(kept, "bad fraction digits")?;
        let scale = 10u32.pow(9 - u32::try_from(kept.len()).map_err(|_| "bad fraction")?);
        nanos = value * scale;
        rest = &fraction[len..];
    }
    let offset = match rest {
        "" | "Z" | "z" => UtcOffset::UTC,
        _ => {
            let b = rest.as_bytes();
            if b.len() != 6 || b[3] != b':' || !(b[0] == b'+' || b[0] == b'-') {
                return Err("the offset must be `Z` or ±HH:MM");
            }
            let h = digits(&rest[1..3], "the offset hours must be two digits")?;
            let m = digits(&rest[4..6], "the offset minutes must be two digits")?;
            let (h, m) = (
                i8::try_from(h).map_err(|_| "the offset is out of range")?,
                i8::try_from(m).map_err(|_| "the offset is out of range")?,
            );
            let sign = if b[0] == b'-' { -1 } else { 1 };
            UtcOffset::from_hms(sign * h, sign * m, 0).map_err(|_| "the offset is out of range")?
        }
    };
    let time = Time::from_hms_nano(
        u8::try_from(hour).map_err(|_| "the hour is out of range")?,
        u8::try_from(minute).map_err(|_| "the minute is out of range")?,
        u8::try_from(second).map_err(|_| "the second is out of range")?,
        nanos,
    )
    .map_err(|_| "the time of day is out of range (leap seconds are not supported)")?;
    Ok(DateTime(
        PrimitiveDateTime::new(date, time).assume_offset(offset),
    ))
}

fn write_date(f: &mut impl fmt::Write, date: Date) -> fmt::Result {
    write!(
        f,
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// Parses a `YYYY-MM-DD` date (the wire form of `format: date`).
pub fn parse_date(input: &str) -> Result<Date, DateTimeParseError> {
    parse_date_part(input).map_err(|reason| DateTimeParseError::date(input, reason))
}

/// Formats a date as `YYYY-MM-DD` (the wire form of `format: date`).
pub fn format_date(date: Date) -> String {
    let mut s = String::with_capacity(10);
    // Writing to a String cannot fail.
    let _ = write_date(&mut s, date);
    s
}

/// `#[serde(with = "ksef_model::datetime::serde_date")]` for [`time::Date`] fields as `YYYY-MM-DD`.
pub mod serde_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    /// Serializes as `YYYY-MM-DD`.
    pub fn serialize<S: Serializer>(date: &Date, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&super::format_date(*date))
    }

    /// Deserializes from `YYYY-MM-DD`.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Date, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        super::parse_date(&s).map_err(serde::de::Error::custom)
    }

    /// The same for `Option<Date>` (`null` or absent is `None`).
    pub mod option {
        use serde::{Deserialize, Deserializer, Serializer};
        use time::Date;

        /// Serializes `Some` as `YYYY-MM-DD`, `None` as `null`.
        pub fn serialize<S: Serializer>(
            date: &Option<Date>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            match date {
                Some(d) => serializer.serialize_str(&super::super::format_date(*d)),
                None => serializer.serialize_none(),
            }
        }

        /// Deserializes `YYYY-MM-DD` or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<Date>, D::Error> {
            let s = <Option<std::borrow::Cow<'de, str>>>::deserialize(deserializer)?;
            s.map(|s| super::super::parse_date(&s).map_err(serde::de::Error::custom))
                .transpose()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_seven_fraction_digits_and_round_trips() {
        let t = DateTime::parse("2025-07-11T12:23:56.0154302+00:00").unwrap();
        assert_eq!(t.as_offset_date_time().nanosecond(), 15_430_200);
        assert_eq!(t.to_string(), "2025-07-11T12:23:56.0154302Z");
        assert_eq!(DateTime::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn missing_offset_is_utc() {
        let t = DateTime::parse("2025-10-11T12:23:56.0154302").unwrap();
        assert!(t.as_offset_date_time().offset().is_utc());
    }

    #[test]
    fn keeps_offset_and_drops_sub_nanosecond_digits() {
        let t = DateTime::parse("2025-01-02T03:04:05.123456789123-02:30").unwrap();
        assert_eq!(t.to_string(), "2025-01-02T03:04:05.123456789-02:30");
        let whole = DateTime::parse("2025-01-02T03:04:05+01:00").unwrap();
        assert_eq!(whole.to_string(), "2025-01-02T03:04:05+01:00");
    }

    #[test]
    fn rejects_garbage_with_reason() {
        for bad in [
            "",
            "2025-13-01T00:00:00Z",
            "2025-02-30T00:00:00Z",
            "2025-01-01 00:00:00Z",
            "2025-01-01T25:00:00Z",
            "2025-01-01T00:00:00.Z",
            "2025-01-01T00:00:00+1:00",
            "2025-01-01T00:00:60Z",
            "2025-01-01T00:00:00Zx",
            "ąąąą-01-01T00:00:00Z",
        ] {
            let err = DateTimeParseError::to_string(&DateTime::parse(bad).unwrap_err());
            assert!(err.contains("expected RFC 3339"), "{err}");
        }
    }

    #[test]
    fn serde_round_trip() {
        let t: DateTime = serde_json::from_str("\"2025-07-11T12:23:56.5+02:00\"").unwrap();
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2025-07-11T12:23:56.5+02:00\""
        );
    }

    proptest::proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = DateTime::parse(&s);
            let _ = parse_date(&s);
        }

        #[test]
        fn never_panics_near_valid(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.]{0,20}[Zz+-]?[0-9:ą]{0,6}") {
            let _ = DateTime::parse(&s);
            let _ = parse_date(&s[..10]);
        }

        #[test]
        fn display_round_trips(secs in -30_000_000_000i64..250_000_000_000i64, nanos in 0u32..1_000_000_000, off in -86_399i32..86_399) {
            let t = OffsetDateTime::from_unix_timestamp(secs).unwrap()
                .replace_nanosecond(nanos).unwrap()
                .to_offset(UtcOffset::from_whole_seconds(off / 60 * 60).unwrap());
            if (0..=9999).contains(&t.year()) {
                let d = DateTime::new(t);
                proptest::prop_assert_eq!(DateTime::parse(&d.to_string()).unwrap(), d);
            }
        }
    }

    #[test]
    fn dates() {
        let d = parse_date("2024-02-29").unwrap();
        assert_eq!(format_date(d), "2024-02-29");
        assert!(parse_date("2023-02-29").is_err());
        assert!(parse_date("2023-2-1").is_err());
    }
}
