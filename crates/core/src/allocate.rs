//! Splitting a day's realized reward among eligible accounts.
//!
//! ```text
//!  R (realized, base units) ──▶ fee = floor(R · fee_bps / 10 000)
//!                               D   = R − fee + carry_in
//!  e_u (eligible per account) ──▶ Σe
//!  Σe = 0 ─▶ nothing paid, carry_out = D
//!  Σe > 0 ─▶ reward_u = floor(D · e_u / Σe)            (256-bit intermediate)
//!           leftover L = D − Σ reward_u  (< #accounts)
//!           +1 unit to the L accounts with the largest (D · e_u) mod Σe,
//!              ties by smaller account_id (byte order)
//!           Σ reward_u = D exactly, carry_out = 0
//!  APR = D / Σe · 365
//! ```
//!
//! Conservation: `Σ reward_u + fee + carry_out = R + carry_in`, checked before returning.

use std::cmp::Ordering;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::amount::{mul_div_floor, mul_div_rem, Amount};
use crate::error::{CoreError, Result};
use crate::token::BPS_DENOMINATOR;

/// One account's eligible amount for the day (base units).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EligibleEntry {
    /// Account id.
    pub account_id: String,
    /// Eligible amount `e_u`, base units.
    pub eligible: Amount,
}

/// One account's reward for the day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payout {
    /// Account id.
    pub account_id: String,
    /// Eligible amount `e_u`, base units.
    pub eligible: Amount,
    /// Reward paid, base units.
    pub reward: Amount,
}

/// The day's split for one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Realized reward `R` attributed to the day, base units.
    pub realized_reward: Amount,
    /// Platform fee, base units.
    pub fee: Amount,
    /// Undistributed amount carried in from earlier days, base units.
    pub carry_in: Amount,
    /// Distributable `D = R − fee + carry_in`, base units.
    pub distributable: Amount,
    /// `Σe`, base units.
    pub total_eligible: Amount,
    /// Payouts sorted by account id (byte order); accounts with `e_u = 0` included with 0.
    pub payouts: Vec<Payout>,
    /// Amount carried to the next day (all of `D` when `Σe = 0`, else 0), base units.
    pub carry_out: Amount,
    /// `D / Σe · 365` (0 when `Σe = 0`), an estimate published daily.
    pub apr: Decimal,
}

impl Allocation {
    /// Σ of payouts, base units.
    pub fn total_paid(&self) -> Result<Amount> {
        Amount::checked_sum(self.payouts.iter().map(|p| p.reward), "total paid")
    }

    /// Number of accounts with a positive eligible amount.
    pub fn eligible_accounts(&self) -> usize {
        self.payouts.iter().filter(|p| !p.eligible.is_zero()).count()
    }
}

/// `floor(R · fee_bps / 10 000)`, base units.
pub fn platform_fee(realized_reward: Amount, fee_bps: u32) -> Result<Amount> {
    if fee_bps > BPS_DENOMINATOR {
        return Err(CoreError::InvalidInput(format!(
            "fee_bps {fee_bps} > {BPS_DENOMINATOR}"
        )));
    }
    realized_reward.mul_div_floor(u128::from(fee_bps), u128::from(BPS_DENOMINATOR), "platform fee")
}

/// Number of decimal places of the APR (fewer only when the value is too large for a
/// Decimal at this precision).
pub const APR_SCALE: u32 = 12;

/// `D / Σe · 365` as a Decimal rounded down to [`APR_SCALE`] places; 0 when `Σe = 0`.
///
/// Errors with [`CoreError::Overflow`] only when the APR exceeds Decimal's range
/// (about 7.9 · 10^28), which no real chain's rewards can produce.
pub fn apr(distributable: Amount, total_eligible: Amount) -> Result<Decimal> {
    scaled_ratio(distributable, 365, total_eligible, "APR")
}

/// `num / den` as a Decimal rounded down to [`APR_SCALE`] places; 0 when `den = 0`
/// (shares such as the buffer ratio, for display and metrics).
pub fn ratio(num: Amount, den: Amount) -> Result<Decimal> {
    scaled_ratio(num, 1, den, "ratio")
}

fn scaled_ratio(num: Amount, mult: u128, den: Amount, what: &'static str) -> Result<Decimal> {
    if den.is_zero() {
        return Ok(Decimal::ZERO);
    }
    for scale in (0..=APR_SCALE).rev() {
        let Ok(scaled) = mul_div_floor(num.0, mult * 10u128.pow(scale), den.0, what) else {
            continue;
        };
        let Ok(v) = i128::try_from(scaled) else { continue };
        if let Ok(d) = Decimal::try_from_i128_with_scale(v, scale) {
            return Ok(d.normalize());
        }
    }
    Err(CoreError::Overflow { what })
}

/// Splits `realized_reward` (plus `carry_in`) among `entries` by the rules above.
///
/// Errors: a duplicate account id ([`CoreError::InvalidInput`]), `fee_bps > 10 000`,
/// overflow of `Σe` or `D` beyond u128 ([`CoreError::Overflow`]), or a broken
/// conservation invariant ([`CoreError::Invariant`], never expected).
pub fn allocate(
    realized_reward: Amount,
    carry_in: Amount,
    fee_bps: u32,
    entries: &[EligibleEntry],
) -> Result<Allocation> {
    let fee = platform_fee(realized_reward, fee_bps)?;
    let distributable = realized_reward
        .checked_sub(fee, "R − fee")?
        .checked_add(carry_in, "D + carry")?;
    let mut sorted: Vec<&EligibleEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.account_id.as_bytes().cmp(b.account_id.as_bytes()));
    if let Some(w) = sorted.windows(2).find(|w| w[0].account_id == w[1].account_id) {
        return Err(CoreError::InvalidInput(format!(
            "account {} appears twice in one allocation",
            w[0].account_id
        )));
    }
    let total_eligible = Amount::checked_sum(sorted.iter().map(|e| e.eligible), "Σe")?;
    let (rewards, carry_out) = if total_eligible.is_zero() {
        (vec![Amount::ZERO; sorted.len()], distributable)
    } else {
        (split(distributable, total_eligible, &sorted)?, Amount::ZERO)
    };
    let payouts: Vec<Payout> = sorted
        .iter()
        .zip(rewards)
        .map(|(e, reward)| Payout {
            account_id: e.account_id.clone(),
            eligible: e.eligible,
            reward,
        })
        .collect();
    let paid_apr = if total_eligible.is_zero() {
        Amount::ZERO
    } else {
        distributable
    };
    let alloc = Allocation {
        realized_reward,
        fee,
        carry_in,
        distributable,
        total_eligible,
        payouts,
        carry_out,
        apr: apr(paid_apr, total_eligible)?,
    };
    check_conservation(&alloc)?;
    Ok(alloc)
}

/// Floor shares plus largest-remainder leftovers; `sorted` is in account-id order.
fn split(d: Amount, total: Amount, sorted: &[&EligibleEntry]) -> Result<Vec<Amount>> {
    let mut rewards = Vec::with_capacity(sorted.len());
    let mut remainders: Vec<(u128, usize)> = Vec::with_capacity(sorted.len());
    let mut floor_sum = Amount::ZERO;
    for (i, e) in sorted.iter().enumerate() {
        let (q, r) = mul_div_rem(d.0, e.eligible.0, total.0, "D · e_u / Σe")?;
        rewards.push(Amount(q));
        floor_sum = floor_sum.checked_add(Amount(q), "Σ floor shares")?;
        if r > 0 {
            remainders.push((r, i));
        }
    }
    let leftover = d.checked_sub(floor_sum, "leftover units")?;
    let leftover = usize::try_from(leftover.0).map_err(|_| CoreError::Invariant("leftover too large".into()))?;
    if leftover > remainders.len() {
        return Err(CoreError::Invariant(format!(
            "leftover {leftover} exceeds accounts with a remainder {}",
            remainders.len()
        )));
    }
    // Largest remainder first; ties by smaller account id (= smaller index, as `sorted` is in id order).
    let order = |a: &(u128, usize), b: &(u128, usize)| -> Ordering { b.0.cmp(&a.0).then(a.1.cmp(&b.1)) };
    if leftover > 0 && leftover < remainders.len() {
        remainders.select_nth_unstable_by(leftover - 1, order);
    }
    for &(_, i) in remainders.iter().take(leftover) {
        rewards[i] = rewards[i].checked_add(Amount(1), "leftover unit")?;
    }
    Ok(rewards)
}

fn check_conservation(a: &Allocation) -> Result<()> {
    let paid = a.total_paid()?;
    let out = paid
        .checked_add(a.fee, "conservation")?
        .checked_add(a.carry_out, "conservation")?;
    let inn = a.realized_reward.checked_add(a.carry_in, "conservation")?;
    if out != inn {
        return Err(CoreError::Invariant(format!(
            "conservation: paid {paid} + fee {} + carry {} != R {} + carry_in {}",
            a.fee, a.carry_out, a.realized_reward, a.carry_in
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(id: &str, v: u128) -> EligibleEntry {
        EligibleEntry {
            account_id: id.into(),
            eligible: Amount(v),
        }
    }

    #[test]
    fn success_exact_split_with_fee() {
        let a = allocate(Amount(1_000), Amount::ZERO, 1_000, &[e("a", 1), e("b", 3)]).unwrap();
        assert_eq!(a.fee, Amount(100));
        assert_eq!(a.distributable, Amount(900));
        assert_eq!(a.payouts[0].reward, Amount(225));
        assert_eq!(a.payouts[1].reward, Amount(675));
        assert_eq!(a.carry_out, Amount::ZERO);
    }

    #[test]
    fn success_largest_remainder_ties_by_account_id() {
        // D = 10 over three equal accounts: 3 each, 1 left, goes to the smallest id.
        let a = allocate(Amount(10), Amount::ZERO, 0, &[e("c", 5), e("b", 5), e("a", 5)]).unwrap();
        let got: Vec<(String, u128)> = a.payouts.iter().map(|p| (p.account_id.clone(), p.reward.0)).collect();
        assert_eq!(got, vec![("a".into(), 4), ("b".into(), 3), ("c".into(), 3)]);
    }

    #[test]
    fn success_largest_remainder_prefers_larger_remainder() {
        // D = 10, e = (1, 2): 10/3 = 3 r1, 20/3 = 6 r2 → leftover 1 goes to "b" (remainder 2).
        let a = allocate(Amount(10), Amount::ZERO, 0, &[e("a", 1), e("b", 2)]).unwrap();
        assert_eq!(a.payouts[0].reward, Amount(3));
        assert_eq!(a.payouts[1].reward, Amount(7));
    }

    #[test]
    fn success_zero_eligible_carries() {
        let a = allocate(Amount(1_000), Amount(5), 1_000, &[e("a", 0)]).unwrap();
        assert_eq!(a.carry_out, Amount(905));
        assert_eq!(a.total_paid().unwrap(), Amount::ZERO);
        assert_eq!(a.apr, Decimal::ZERO);
    }

    #[test]
    fn success_apr() {
        // D = 1, Σe = 365 → APR = 1.
        let a = allocate(Amount(1), Amount::ZERO, 0, &[e("a", 365)]).unwrap();
        assert_eq!(a.apr, Decimal::ONE);
    }

    #[test]
    fn success_wei_scale_products_beyond_u128() {
        let wei = 10u128.pow(18);
        let a = allocate(
            Amount(1_000 * wei),
            Amount::ZERO,
            0,
            &[e("a", 1_000 * wei), e("b", 3 * wei)],
        )
        .unwrap();
        assert_eq!(a.total_paid().unwrap(), Amount(1_000 * wei));
    }

    #[test]
    fn fail_duplicate_account() {
        assert!(allocate(Amount(1), Amount::ZERO, 0, &[e("a", 1), e("a", 2)]).is_err());
    }

    #[test]
    fn fail_fee_above_100_percent() {
        assert!(allocate(Amount(1), Amount::ZERO, 10_001, &[e("a", 1)]).is_err());
    }
}
