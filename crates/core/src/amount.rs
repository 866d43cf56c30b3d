//! [`Amount`]: a non-negative quantity of one token in its **base units** (lamports,
//! yoctoNEAR, sun, lovelace, wei, …), backed by `u128`.
//!
//! Every operation is checked: overflow and underflow are errors, never a wrap or a
//! saturation. Products that can exceed `u128` (reward × balance for 18- and 24-decimal
//! tokens) go through [`mul_div_floor`], which uses a 256-bit intermediate
//! ([`ruint::aliases::U256`], the same type as alloy's `U256`).

use std::fmt;

use ruint::aliases::U256;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};

/// Largest number of decimals a token may declare: 10^38 < u128::MAX < 10^39.
pub const MAX_DECIMALS: u8 = 38;

/// A non-negative amount of a token in base units.
///
/// The token is not part of the value: callers keep amounts of different tokens apart
/// (the ledger and the pool are keyed by token). Serialized as a decimal string of base
/// units so JSON readers never lose precision.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Amount(pub u128);

impl Amount {
    /// Zero base units.
    pub const ZERO: Amount = Amount(0);
    /// The largest representable amount.
    pub const MAX: Amount = Amount(u128::MAX);

    /// The raw number of base units.
    pub const fn base_units(self) -> u128 {
        self.0
    }

    /// `self + rhs`, or [`CoreError::Overflow`] naming `what`.
    pub fn checked_add(self, rhs: Amount, what: &'static str) -> Result<Amount> {
        self.0
            .checked_add(rhs.0)
            .map(Amount)
            .ok_or(CoreError::Overflow { what })
    }

    /// `self - rhs`, or [`CoreError::Underflow`] naming `what`.
    pub fn checked_sub(self, rhs: Amount, what: &'static str) -> Result<Amount> {
        self.0
            .checked_sub(rhs.0)
            .map(Amount)
            .ok_or(CoreError::Underflow { what })
    }

    /// `self - rhs`, or zero when `rhs > self` (for "how much is missing" questions,
    /// never for moving money).
    pub fn saturating_sub(self, rhs: Amount) -> Amount {
        Amount(self.0.saturating_sub(rhs.0))
    }

    /// `self · n`, or [`CoreError::Overflow`].
    pub fn checked_mul_u128(self, n: u128, what: &'static str) -> Result<Amount> {
        self.0.checked_mul(n).map(Amount).ok_or(CoreError::Overflow { what })
    }

    /// Sum of an iterator of amounts, checked.
    pub fn checked_sum<I: IntoIterator<Item = Amount>>(iter: I, what: &'static str) -> Result<Amount> {
        iter.into_iter()
            .try_fold(Amount::ZERO, |acc, a| acc.checked_add(a, what))
    }

    /// `floor(self · num / den)` with a 256-bit intermediate.
    ///
    /// Errors: [`CoreError::DivisionByZero`] when `den == 0`, [`CoreError::Overflow`] when
    /// the quotient does not fit `u128`.
    pub fn mul_div_floor(self, num: u128, den: u128, what: &'static str) -> Result<Amount> {
        mul_div_floor(self.0, num, den, what).map(Amount)
    }

    /// Smaller of two amounts.
    pub fn min(self, other: Amount) -> Amount {
        Amount(self.0.min(other.0))
    }

    /// True when zero.
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Parses a decimal string in **token units** (e.g. `"1.5"` SOL) into base units for a
    /// token with `decimals` fractional digits.
    ///
    /// The conversion is exact. Accepted: `123`, `123.`, `123.45`, `.5`, with at most
    /// `decimals` fractional digits. Rejected with [`CoreError::InvalidAmount`]: empty
    /// strings, signs (`-1`, `+1`), exponents, more fractional digits than the token has,
    /// non-digits, and values above `u128::MAX` base units.
    pub fn parse_units(s: &str, decimals: u8) -> Result<Amount> {
        parse_units(s, decimals).map(Amount)
    }

    /// Parses a string of base units (digits only), e.g. `"1500000000"` lamports.
    pub fn parse_base_units(s: &str) -> Result<Amount> {
        let t = s.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CoreError::InvalidAmount {
                input: s.to_string(),
                reason: "expected an unsigned integer number of base units".into(),
            });
        }
        t.parse::<u128>().map(Amount).map_err(|_| CoreError::InvalidAmount {
            input: s.to_string(),
            reason: "larger than u128::MAX base units".into(),
        })
    }

    /// Formats in token units with exactly `decimals` fractional digits trimmed of
    /// trailing zeros (`1500000000` lamports with 9 decimals → `"1.5"`; zero → `"0"`).
    pub fn to_units_string(self, decimals: u8) -> String {
        format_units(self.0, decimals)
    }
}

impl fmt::Display for Amount {
    /// Displays raw base units.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<Amount> for String {
    fn from(a: Amount) -> String {
        a.0.to_string()
    }
}

impl TryFrom<String> for Amount {
    type Error = CoreError;
    fn try_from(s: String) -> Result<Amount> {
        Amount::parse_base_units(&s)
    }
}

/// `floor(a · b / den)` computed in 256 bits.
///
/// Errors: [`CoreError::DivisionByZero`] when `den == 0`; [`CoreError::Overflow`] when the
/// quotient exceeds `u128::MAX`.
pub fn mul_div_floor(a: u128, b: u128, den: u128, what: &'static str) -> Result<u128> {
    let (q, _) = mul_div_rem(a, b, den, what)?;
    Ok(q)
}

/// `(floor(a · b / den), (a · b) mod den)` computed in 256 bits.
///
/// The remainder is `< den`, so it always fits `u128`. Errors as [`mul_div_floor`].
pub fn mul_div_rem(a: u128, b: u128, den: u128, what: &'static str) -> Result<(u128, u128)> {
    if den == 0 {
        return Err(CoreError::DivisionByZero { what });
    }
    let product = U256::from(a) * U256::from(b);
    let den256 = U256::from(den);
    let q = product / den256;
    let r = product % den256;
    let q: u128 = u128::try_from(q).map_err(|_| CoreError::Overflow { what })?;
    let r: u128 = u128::try_from(r).map_err(|_| CoreError::Overflow { what })?;
    Ok((q, r))
}

/// 10^decimals as u128 (decimals ≤ 38).
pub fn pow10(decimals: u8) -> Result<u128> {
    10u128
        .checked_pow(u32::from(decimals))
        .ok_or(CoreError::Overflow { what: "10^decimals" })
}

fn parse_units(s: &str, decimals: u8) -> Result<u128> {
    let bad = |reason: &str| CoreError::InvalidAmount {
        input: s.to_string(),
        reason: reason.to_string(),
    };
    let t = s.trim().as_bytes();
    match t.first() {
        None => return Err(bad("empty amount")),
        Some(b'-') => return Err(bad("negative amounts are not allowed")),
        Some(b'+') => return Err(bad("a sign is not allowed")),
        _ => {}
    }
    // One scan for the shape: digits, at most one '.'.
    let mut dot = None;
    for (i, &c) in t.iter().enumerate() {
        match c {
            b'0'..=b'9' => {}
            b'.' if dot.is_none() => dot = Some(i),
            _ => return Err(bad("expected digits with at most one '.'")),
        }
    }
    let frac_len = dot.map(|d| t.len() - d - 1).unwrap_or(0);
    if t.len() == usize::from(dot.is_some()) {
        return Err(bad("no digits"));
    }
    if frac_len > usize::from(decimals) {
        return Err(bad(&format!("{frac_len} fractional digits, the token has {decimals}")));
    }
    let overflow = || bad("larger than u128::MAX base units");
    // Digits left to right, in u64 while it cannot overflow (19 digits), then u128.
    let mut small: u64 = 0;
    let mut big: Option<u128> = None;
    for (n, &c) in t.iter().filter(|c| **c != b'.').enumerate() {
        let d = c - b'0';
        match &mut big {
            None if n < 19 => small = small * 10 + u64::from(d),
            None => {
                big = Some(
                    u128::from(small)
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u128::from(d)))
                        .ok_or_else(overflow)?,
                )
            }
            Some(v) => {
                *v = v
                    .checked_mul(10)
                    .and_then(|v| v.checked_add(u128::from(d)))
                    .ok_or_else(overflow)?
            }
        }
    }
    let v = big.unwrap_or(u128::from(small));
    let pad = u32::from(decimals) - frac_len as u32;
    v.checked_mul(pow10(pad as u8)?).ok_or_else(overflow)
}

fn format_units(value: u128, decimals: u8) -> String {
    let mut s = String::new();
    write_units(value, decimals, &mut s);
    s
}

/// Appends `value` base units as token units with `decimals` fractional digits, trailing
/// zeros trimmed (the format of [`Amount::to_units_string`]), without allocating when
/// `out` has room. Values and scales that fit 64 bits take a 64-bit path (u128 division is
/// a library call).
pub fn write_units(value: u128, decimals: u8, out: &mut String) {
    use std::fmt::Write;
    if let (Ok(v), true) = (u64::try_from(value), decimals <= 19) {
        if decimals == 0 {
            let _ = write!(out, "{v}");
            return;
        }
        let scale = 10u64.pow(u32::from(decimals));
        let (int, mut frac) = (v / scale, v % scale);
        let _ = write!(out, "{int}");
        if frac == 0 {
            return;
        }
        let mut width = usize::from(decimals);
        while frac % 10 == 0 {
            frac /= 10;
            width -= 1;
        }
        let _ = write!(out, ".{frac:0width$}");
        return;
    }
    if decimals == 0 {
        let _ = write!(out, "{value}");
        return;
    }
    let scale = 10u128.pow(u32::from(decimals.min(MAX_DECIMALS)));
    let int = value / scale;
    let frac = value % scale;
    let _ = write!(out, "{int}");
    if frac == 0 {
        return;
    }
    let mut frac_s = format!("{frac:0width$}", width = usize::from(decimals));
    while frac_s.ends_with('0') {
        frac_s.pop();
    }
    let _ = write!(out, ".{frac_s}");
}

/// A signed number of base units over the whole `u128` range on either side: a ledger
/// account's `debits − credits`, or a drift `actual − expected`. (An `i128` would refuse
/// valid balances at or above 2^127 base units; a difference of two `u128` needs 129 bits.)
///
/// Zero is never negative, so equal values compare equal.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Net {
    negative: bool,
    magnitude: u128,
}

impl Net {
    /// Zero.
    pub const ZERO: Net = Net {
        negative: false,
        magnitude: 0,
    };

    /// `+a`.
    pub const fn positive(a: Amount) -> Net {
        Net {
            negative: false,
            magnitude: a.0,
        }
    }

    /// `−a` (zero stays non-negative).
    pub const fn negative(a: Amount) -> Net {
        Net {
            negative: a.0 != 0,
            magnitude: a.0,
        }
    }

    /// From an `i128`.
    pub const fn from_i128(v: i128) -> Net {
        Net {
            negative: v < 0,
            magnitude: v.unsigned_abs(),
        }
    }

    /// `plus − minus`, exact for any two amounts.
    pub fn diff(plus: Amount, minus: Amount) -> Net {
        if plus >= minus {
            Net::positive(Amount(plus.0 - minus.0))
        } else {
            Net::negative(Amount(minus.0 - plus.0))
        }
    }

    /// True below zero.
    pub const fn is_negative(self) -> bool {
        self.negative
    }

    /// True at zero.
    pub const fn is_zero(self) -> bool {
        self.magnitude == 0
    }

    /// `|self|`.
    pub const fn magnitude(self) -> Amount {
        Amount(self.magnitude)
    }

    /// The value when it is not negative, else `None`.
    pub fn non_negative(self) -> Option<Amount> {
        (!self.negative).then_some(Amount(self.magnitude))
    }

    /// `−self`.
    pub const fn neg(self) -> Net {
        Net {
            negative: !self.negative && self.magnitude != 0,
            magnitude: self.magnitude,
        }
    }

    /// `self + rhs`, or [`CoreError::Overflow`] when the magnitude passes `u128::MAX`.
    pub fn checked_add(self, rhs: Net, what: &'static str) -> Result<Net> {
        if self.negative == rhs.negative {
            let m = self
                .magnitude
                .checked_add(rhs.magnitude)
                .ok_or(CoreError::Overflow { what })?;
            return Ok(if self.negative {
                Net::negative(Amount(m))
            } else {
                Net::positive(Amount(m))
            });
        }
        // Opposite signs: the larger magnitude wins.
        let (pos, neg) = if self.negative { (rhs, self) } else { (self, rhs) };
        Ok(Net::diff(Amount(pos.magnitude), Amount(neg.magnitude)))
    }

    /// `self − rhs`, checked as [`Net::checked_add`].
    pub fn checked_sub(self, rhs: Net, what: &'static str) -> Result<Net> {
        self.checked_add(rhs.neg(), what)
    }

    /// As an `i128` when it fits (metrics and displays that need a primitive).
    pub fn to_i128(self) -> Option<i128> {
        let m = i128::try_from(self.magnitude).ok()?;
        Some(if self.negative { -m } else { m })
    }
}

impl PartialOrd for Net {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Net {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self.negative, other.negative) {
            (false, false) => self.magnitude.cmp(&other.magnitude),
            (true, true) => other.magnitude.cmp(&self.magnitude),
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
        }
    }
}

impl fmt::Display for Net {
    /// Signed base units, e.g. `-12`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.negative {
            f.write_str("-")?;
        }
        write!(f, "{}", self.magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn success_parse_exact() {
        assert_eq!(Amount::parse_units("1.5", 9).unwrap(), Amount(1_500_000_000));
        assert_eq!(Amount::parse_units("0.000000001", 9).unwrap(), Amount(1));
        assert_eq!(Amount::parse_units(".5", 1).unwrap(), Amount(5));
        assert_eq!(Amount::parse_units("7.", 2).unwrap(), Amount(700));
        assert_eq!(Amount::parse_units("42", 0).unwrap(), Amount(42));
        assert_eq!(
            Amount::parse_units("1", 24).unwrap(),
            Amount(1_000_000_000_000_000_000_000_000)
        );
    }

    #[test]
    fn fail_parse_bad_inputs() {
        for (s, d) in [
            ("-1", 9),
            ("+1", 9),
            ("1.0000000001", 9),
            ("", 9),
            (".", 9),
            ("1e9", 9),
            ("1.2.3", 9),
            ("abc", 9),
            (" 1 2", 9),
            ("340282366920938463463374607431768211456", 0),
            ("340282366920938463463.374607431768211456", 18),
        ] {
            assert!(Amount::parse_units(s, d).is_err(), "{s:?} with {d} decimals parsed");
        }
    }

    #[test]
    fn success_parse_max() {
        assert_eq!(
            Amount::parse_units("340282366920938463463374607431768211455", 0).unwrap(),
            Amount::MAX
        );
    }

    #[test]
    fn success_format() {
        assert_eq!(Amount(1_500_000_000).to_units_string(9), "1.5");
        assert_eq!(Amount(0).to_units_string(9), "0");
        assert_eq!(Amount(1).to_units_string(24), "0.000000000000000000000001");
        assert_eq!(Amount(120).to_units_string(0), "120");
    }

    #[test]
    fn fail_checked_overflow() {
        assert!(Amount::MAX.checked_add(Amount(1), "t").is_err());
        assert!(Amount(0).checked_sub(Amount(1), "t").is_err());
        assert!(Amount::MAX.mul_div_floor(2, 1, "t").is_err());
        assert!(Amount(1).mul_div_floor(1, 0, "t").is_err());
    }

    #[test]
    fn success_mul_div_beyond_u128() {
        // 1 000 BNB · 1 BNB in wei = 10^39 > u128::MAX; divided back it fits.
        let wei = 10u128.pow(18);
        let q = mul_div_floor(1000 * wei, wei, 1000 * wei, "t").unwrap();
        assert_eq!(q, wei);
    }

    proptest! {
        #[test]
        fn prop_format_parse_roundtrip(v in any::<u128>(), d in 0u8..=24) {
            let s = Amount(v).to_units_string(d);
            prop_assert_eq!(Amount::parse_units(&s, d).unwrap(), Amount(v));
        }

        #[test]
        fn prop_mul_div_rem_identity(a in any::<u64>(), b in any::<u64>(), den in 1u128..) {
            let (q, r) = mul_div_rem(a.into(), b.into(), den, "t").unwrap();
            prop_assert!(r < den);
            prop_assert_eq!(U256::from(q) * U256::from(den) + U256::from(r), U256::from(a) * U256::from(b));
        }
    }

    proptest! {
        /// The 64-bit fast path formats exactly as the general one.
        #[test]
        fn prop_write_units_fast_path_matches(v in any::<u64>(), d in 0u8..=24) {
            let mut fast = String::new();
            write_units(u128::from(v), d, &mut fast);
            let scale = 10u128.pow(u32::from(d));
            let (int, frac) = (u128::from(v) / scale, u128::from(v) % scale);
            let slow = if frac == 0 { int.to_string() } else {
                format!("{int}.{}", format!("{frac:0w$}", w = usize::from(d)).trim_end_matches('0'))
            };
            prop_assert_eq!(fast, slow);
        }
    }

    #[test]
    fn success_net_spans_the_whole_u128_range() {
        let max = Amount(u128::MAX);
        let n = Net::diff(max, Amount::ZERO);
        assert_eq!(n.magnitude(), max);
        assert!(!n.is_negative());
        let m = Net::diff(Amount::ZERO, max);
        assert!(m.is_negative());
        assert!(m < n);
        assert_eq!(n.checked_add(m, "t").unwrap(), Net::ZERO);
        assert_eq!(Net::negative(Amount::ZERO), Net::ZERO);
        assert_eq!(n.to_i128(), None);
        assert_eq!(Net::diff(Amount(3), Amount(5)).to_i128(), Some(-2));
        assert_eq!(Net::diff(Amount(3), Amount(5)).to_string(), "-2");
    }

    #[test]
    fn fail_net_magnitude_overflow() {
        let max = Net::positive(Amount(u128::MAX));
        assert!(max.checked_add(Net::positive(Amount(1)), "t").is_err());
        assert_eq!(
            max.checked_sub(Net::positive(Amount(1)), "t").unwrap().magnitude(),
            Amount(u128::MAX - 1)
        );
    }
}
