//! Time without a clock: [`Timestamp`] (Unix nanoseconds, UTC) and [`Day`] (a UTC
//! calendar day, the half-open interval `[00:00, 24:00)`).
//!
//! Nothing here reads the system clock; callers pass `now` in.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, SecondsFormat, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Nanoseconds in one second.
pub const NANOS_PER_SEC: i64 = 1_000_000_000;
/// Seconds in one UTC day (no leap seconds, as in Unix time).
pub const SECS_PER_DAY: i64 = 86_400;
/// Nanoseconds in one UTC day.
pub const NANOS_PER_DAY: i64 = SECS_PER_DAY * NANOS_PER_SEC;

/// An instant as nanoseconds since 1970-01-01T00:00:00Z (range 1677–2262).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default)]
pub struct Timestamp(pub i64);

impl Timestamp {
    /// From whole Unix seconds. Errors when out of the representable range.
    pub fn from_unix_secs(secs: i64) -> Result<Timestamp> {
        secs.checked_mul(NANOS_PER_SEC)
            .map(Timestamp)
            .ok_or_else(|| CoreError::InvalidTime {
                input: secs.to_string(),
                reason: "out of range (1677–2262)".into(),
            })
    }

    /// From Unix milliseconds. Errors when out of range.
    pub fn from_unix_millis(ms: i64) -> Result<Timestamp> {
        ms.checked_mul(1_000_000)
            .map(Timestamp)
            .ok_or_else(|| CoreError::InvalidTime {
                input: ms.to_string(),
                reason: "out of range (1677–2262)".into(),
            })
    }

    /// Whole Unix seconds, rounded toward negative infinity.
    pub fn unix_secs(self) -> i64 {
        self.0.div_euclid(NANOS_PER_SEC)
    }

    /// Unix milliseconds, rounded toward negative infinity.
    pub fn unix_millis(self) -> i64 {
        self.0.div_euclid(1_000_000)
    }

    /// Parses an RFC 3339 timestamp (`2025-06-01T12:00:00Z`, offsets allowed and converted
    /// to UTC, fractional seconds down to nanoseconds).
    ///
    /// Errors ([`CoreError::InvalidTime`]): not RFC 3339; more than 9 fractional digits
    /// (they would be truncated, as amounts refuse extra digits); outside the days
    /// [`Day::MIN`]..=[`Day::MAX`] that nanoseconds since 1970 in an `i64` can hold.
    pub fn parse_rfc3339(s: &str) -> Result<Timestamp> {
        let t = s.trim();
        if let Some(ns) = parse_utc_fast(t.as_bytes()) {
            return Ok(Timestamp(ns));
        }
        if let Some(n) = fraction_digits(t) {
            if n > 9 {
                return Err(CoreError::InvalidTime {
                    input: s.to_string(),
                    reason: format!("{n} fractional digits; at most 9 (nanoseconds)"),
                });
            }
        }
        let dt = DateTime::parse_from_rfc3339(t).map_err(|e| CoreError::InvalidTime {
            input: s.to_string(),
            reason: format!("not RFC 3339 ({e})"),
        })?;
        let utc = dt.with_timezone(&Utc);
        let day = Day(utc.date_naive());
        if day < Day::MIN || day > Day::MAX {
            return Err(out_of_range(s));
        }
        utc.timestamp_nanos_opt().map(Timestamp).ok_or_else(|| out_of_range(s))
    }

    /// As a chrono UTC datetime.
    pub fn to_datetime(self) -> DateTime<Utc> {
        Utc.timestamp_nanos(self.0)
    }

    /// RFC 3339 with `Z` and only as many fractional digits as needed.
    pub fn to_rfc3339(self) -> String {
        self.to_datetime().to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// The UTC day containing this instant.
    pub fn day(self) -> Day {
        Day(self.to_datetime().date_naive())
    }

    /// `self + secs` seconds, checked.
    pub fn checked_add_secs(self, secs: i64) -> Result<Timestamp> {
        secs.checked_mul(NANOS_PER_SEC)
            .and_then(|n| self.0.checked_add(n))
            .map(Timestamp)
            .ok_or_else(|| CoreError::InvalidTime {
                input: format!("{} + {secs}s", self.0),
                reason: "out of range".into(),
            })
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// A UTC calendar day; as an interval it is `[start, end)` with `end = start + 86 400 s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Day(pub NaiveDate);

impl Day {
    /// The first day whose start fits nanoseconds in an `i64` (1677-09-22).
    pub const MIN: Day = Day(match NaiveDate::from_ymd_opt(1677, 9, 22) {
        Some(d) => d,
        None => NaiveDate::MIN,
    });
    /// The last day whose end fits nanoseconds in an `i64` (2262-04-10).
    pub const MAX: Day = Day(match NaiveDate::from_ymd_opt(2262, 4, 10) {
        Some(d) => d,
        None => NaiveDate::MAX,
    });

    /// Parses `YYYY-MM-DD`.
    ///
    /// Errors ([`CoreError::InvalidTime`]): another shape, no such date, or a day outside
    /// [`Day::MIN`]..=[`Day::MAX`].
    pub fn parse(s: &str) -> Result<Day> {
        let d = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
            .map(Day)
            .map_err(|e| CoreError::InvalidTime {
                input: s.to_string(),
                reason: format!("expected YYYY-MM-DD ({e})"),
            })?;
        Day::in_range(d, s)
    }

    /// From a calendar date; errors as [`Day::parse`].
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Result<Day> {
        let input = format!("{y:04}-{m:02}-{d:02}");
        let day = NaiveDate::from_ymd_opt(y, m, d)
            .map(Day)
            .ok_or_else(|| CoreError::InvalidTime {
                input: input.clone(),
                reason: "no such date".into(),
            })?;
        Day::in_range(day, &input)
    }

    fn in_range(d: Day, input: &str) -> Result<Day> {
        if d < Day::MIN || d > Day::MAX {
            return Err(out_of_range(input));
        }
        Ok(d)
    }

    /// 00:00:00 UTC of this day. Days are refused outside [`Day::MIN`]..=[`Day::MAX`] when
    /// parsed; one computed beyond them (the day after `Day::MAX`) saturates at the end of
    /// the representable range instead of wrapping.
    pub fn start(self) -> Timestamp {
        let days = i64::from(self.0.num_days_from_ce()) - i64::from(EPOCH_DAYS_FROM_CE);
        Timestamp(days.saturating_mul(NANOS_PER_DAY))
    }

    /// 00:00:00 UTC of the next day (exclusive end); saturates as [`Day::start`].
    pub fn end(self) -> Timestamp {
        Timestamp(self.start().0.saturating_add(NANOS_PER_DAY))
    }

    /// The next day.
    pub fn next(self) -> Day {
        Day(self.0.succ_opt().unwrap_or(self.0))
    }

    /// The previous day.
    pub fn prev(self) -> Day {
        Day(self.0.pred_opt().unwrap_or(self.0))
    }

    /// Whether `ts` lies in `[start, end)`.
    pub fn contains(self, ts: Timestamp) -> bool {
        ts >= self.start() && ts < self.end()
    }

    /// Days from `self` to `other` (positive when `other` is later).
    pub fn days_until(self, other: Day) -> i64 {
        (other.0 - self.0).num_days()
    }

    /// `self + n` days.
    pub fn plus_days(self, n: i64) -> Day {
        Day(self.0 + chrono::Duration::days(n))
    }
}

fn out_of_range(input: &str) -> CoreError {
    CoreError::InvalidTime {
        input: input.to_string(),
        reason: format!(
            "outside {}..={}, the days nanoseconds since 1970 in 64 bits can hold",
            Day::MIN,
            Day::MAX
        ),
    }
}

/// The common form `YYYY-MM-DDTHH:MM:SS[.f…]Z` (1–9 fractional digits) parsed directly:
/// the balance feed's hot path (millions of timestamps a second). `None` for anything
/// else (offsets, a lower-case `t`, leap seconds, more digits, out of range, malformed),
/// which [`Timestamp::parse_rfc3339`] then hands to chrono; a property test checks the two
/// agree. Days from the civil date by Howard Hinnant's `days_from_civil`
/// (howardhinnant.github.io/date_algorithms.html).
fn parse_utc_fast(b: &[u8]) -> Option<i64> {
    fn num(b: &[u8]) -> Option<i64> {
        b.iter().try_fold(0i64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
        })
    }
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (y, m, d) = (num(&b[0..4])?, num(&b[5..7])?, num(&b[8..10])?);
    let (hh, mm, ss) = (num(&b[11..13])?, num(&b[14..16])?, num(&b[17..19])?);
    let frac_ns = match (&b[19..], b.last()) {
        ([b'Z'], _) => 0,
        ([b'.', rest @ ..], Some(b'Z')) => {
            let digits = &rest[..rest.len() - 1];
            if digits.is_empty() || digits.len() > 9 {
                return None;
            }
            num(digits)? * 10i64.pow(9 - digits.len() as u32)
        }
        _ => return None,
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let month_days = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if !(1..=12).contains(&m) || d < 1 || d > month_days[(m - 1) as usize] || hh > 23 || mm > 59 || ss > 59 {
        return None;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let min_days = Day::MIN.start().0 / NANOS_PER_DAY;
    let max_days = Day::MAX.start().0 / NANOS_PER_DAY;
    if days < min_days || days > max_days {
        return None;
    }
    Some(days * NANOS_PER_DAY + (hh * 3_600 + mm * 60 + ss) * NANOS_PER_SEC + frac_ns)
}

/// Number of fractional-second digits of an RFC 3339 string, if it has a fraction.
fn fraction_digits(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    // `YYYY-MM-DDTHH:MM:SS` is 19 bytes; a fraction starts right after it.
    if b.len() <= 19 || b[19] != b'.' {
        return None;
    }
    Some(b[20..].iter().take_while(|c| c.is_ascii_digit()).count())
}

/// Days from 0001-01-01 (CE day 1) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_day_bounds() {
        let d = Day::parse("2025-06-01").unwrap();
        assert_eq!(d.start(), Timestamp::parse_rfc3339("2025-06-01T00:00:00Z").unwrap());
        assert_eq!(d.end(), Timestamp::parse_rfc3339("2025-06-02T00:00:00Z").unwrap());
        assert!(d.contains(d.start()));
        assert!(!d.contains(d.end()));
        assert_eq!(
            Timestamp::parse_rfc3339("2025-06-01T23:59:59.999999999Z")
                .unwrap()
                .day(),
            d
        );
    }

    #[test]
    fn success_offsets_convert_to_utc() {
        let a = Timestamp::parse_rfc3339("2025-06-01T02:00:00+02:00").unwrap();
        assert_eq!(a, Timestamp::parse_rfc3339("2025-06-01T00:00:00Z").unwrap());
        assert_eq!(a.to_rfc3339(), "2025-06-01T00:00:00Z");
    }

    #[test]
    fn success_range_edges() {
        assert_eq!(Day::parse("2262-04-10").unwrap(), Day::MAX);
        assert_eq!(Day::parse("1677-09-22").unwrap(), Day::MIN);
        assert!(Day::MAX.end() > Day::MAX.start());
        assert!(Day::MIN.start().0 < 0);
        assert!(Timestamp::parse_rfc3339("2262-04-10T23:59:59.999999999Z").is_ok());
        assert!(Timestamp::parse_rfc3339("2025-06-01T00:00:00.123456789Z").is_ok());
        // The day after MAX saturates instead of wrapping.
        assert_eq!(Day::MAX.next().end(), Timestamp(i64::MAX));
    }

    #[test]
    fn fail_days_and_times_beyond_nanosecond_range() {
        for d in ["2262-04-11", "9999-12-31", "1677-09-21", "0001-01-01"] {
            let e = Day::parse(d).unwrap_err().to_string();
            assert!(e.contains("outside 1677-09-22..=2262-04-10"), "{d}: {e}");
        }
        assert!(Day::from_ymd(9999, 1, 1).is_err());
        for t in ["2262-04-11T00:00:00Z", "9999-01-01T00:00:00Z", "1677-09-21T12:00:00Z"] {
            assert!(Timestamp::parse_rfc3339(t).is_err(), "{t}");
        }
    }

    proptest::proptest! {
        /// The fast path and chrono agree on every instant of the range, with 0–9
        /// fractional digits.
        #[test]
        fn prop_fast_path_matches_chrono(
            ns in Day::MIN.start().0..Day::MAX.end().0,
            digits in 0usize..=9,
        ) {
            let dt = Utc.timestamp_nanos(ns);
            let mut text = dt.format("%Y-%m-%dT%H:%M:%S").to_string();
            if digits > 0 {
                let frac = format!("{:09}", dt.timestamp_subsec_nanos());
                text.push('.');
                text.push_str(&frac[..digits]);
            }
            text.push('Z');
            let fast = parse_utc_fast(text.as_bytes());
            let slow = DateTime::parse_from_rfc3339(&text).unwrap().timestamp_nanos_opt().unwrap();
            proptest::prop_assert_eq!(fast, Some(slow), "{}", text);
        }

        /// The fast path never accepts what chrono refuses, and agrees when both accept.
        #[test]
        fn prop_fast_path_never_accepts_more(s in "[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]{0,10})?Z") {
            if let Some(fast) = parse_utc_fast(s.as_bytes()) {
                let slow = DateTime::parse_from_rfc3339(&s).ok().and_then(|d| d.timestamp_nanos_opt());
                proptest::prop_assert_eq!(Some(fast), slow, "{}", s);
            }
        }
    }

    #[test]
    fn fail_more_than_nanoseconds() {
        let e = Timestamp::parse_rfc3339("2025-06-01T00:00:00.1234567891Z")
            .unwrap_err()
            .to_string();
        assert!(e.contains("10 fractional digits; at most 9"), "{e}");
    }

    #[test]
    fn fail_bad_time() {
        assert!(Timestamp::parse_rfc3339("2025-06-01 00:00").is_err());
        assert!(Day::parse("2025-13-01").is_err());
        assert!(Day::parse("June 1").is_err());
    }
}
