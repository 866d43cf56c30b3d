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
    /// `D / Σe · 365` (0 when `Σe = 0`), an estimate published daily; `None` when beyond
    /// `Decimal`'s range (display only: it never blocks a payout).
    pub apr: Option<Decimal>,
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

    /// The day's totals without the per-account payouts.
    pub fn plan(&self) -> AllocationPlan {
        AllocationPlan {
            realized_reward: self.realized_reward,
            fee: self.fee,
            carry_in: self.carry_in,
            distributable: self.distributable,
            total_eligible: self.total_eligible,
            carry_out: self.carry_out,
            apr: self.apr,
        }
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

/// The day's figures that do not depend on any one account: what a streaming payer needs
/// before it reads the first eligible amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllocationPlan {
    /// Realized reward `R`, base units.
    pub realized_reward: Amount,
    /// Platform fee, base units.
    pub fee: Amount,
    /// Carried in from earlier days, base units.
    pub carry_in: Amount,
    /// Distributable `D = R − fee + carry_in`, base units.
    pub distributable: Amount,
    /// `Σe`, base units.
    pub total_eligible: Amount,
    /// All of `D` when `Σe = 0`, else 0, base units.
    pub carry_out: Amount,
    /// `D / Σe · 365` (0 when `Σe = 0`); `None` when beyond `Decimal`'s range. Display
    /// only: it never blocks a payout.
    pub apr: Option<Decimal>,
}

/// Fee, `D`, carry and APR for a day with realized reward `R`, `carry_in` and `Σe`.
///
/// Errors: `fee_bps > 10 000` ([`CoreError::InvalidInput`]); `D` beyond u128
/// ([`CoreError::Overflow`]).
pub fn plan_allocation(
    realized_reward: Amount,
    carry_in: Amount,
    fee_bps: u32,
    total_eligible: Amount,
) -> Result<AllocationPlan> {
    let fee = platform_fee(realized_reward, fee_bps)?;
    let distributable = realized_reward
        .checked_sub(fee, "R − fee")?
        .checked_add(carry_in, "D + carry")?;
    let (carry_out, apr_value) = if total_eligible.is_zero() {
        (distributable, Some(Decimal::ZERO))
    } else {
        (Amount::ZERO, apr(distributable, total_eligible).ok())
    };
    Ok(AllocationPlan {
        realized_reward,
        fee,
        carry_in,
        distributable,
        total_eligible,
        carry_out,
        apr: apr_value,
    })
}

impl AllocationPlan {
    /// `(floor(D · e / Σe), (D · e) mod Σe)` for one eligible amount (256-bit product);
    /// `(0, 0)` when `Σe = 0`.
    pub fn share(&self, eligible: Amount) -> Result<(Amount, u128)> {
        if self.total_eligible.is_zero() {
            return Ok((Amount::ZERO, 0));
        }
        let (q, r) = mul_div_rem(self.distributable.0, eligible.0, self.total_eligible.0, "D · e_u / Σe")?;
        Ok((Amount(q), r))
    }

    /// Σ of the payouts: `D − carry_out`.
    pub fn to_pay(&self) -> Amount {
        self.distributable.saturating_sub(self.carry_out)
    }
}

/// Which remainders receive one leftover unit: every remainder above `threshold`, and the
/// first `ties` (in account-id order) equal to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeftoverCut {
    threshold: u128,
    ties: u64,
    leftover: u128,
}

impl LeftoverCut {
    /// The cut for `leftover` units over the day's positive `remainders` (reordered in
    /// place; memory: 16 bytes per eligible account).
    ///
    /// Errors with [`CoreError::Invariant`] when fewer remainders than units exist (never
    /// expected: `Σ r = leftover · Σe` and every `r < Σe`).
    pub fn new(remainders: &mut [u128], leftover: u128) -> Result<LeftoverCut> {
        if leftover == 0 {
            return Ok(LeftoverCut {
                threshold: u128::MAX,
                ties: 0,
                leftover,
            });
        }
        let l = usize::try_from(leftover)
            .ok()
            .filter(|l| *l <= remainders.len())
            .ok_or_else(|| {
                CoreError::Invariant(format!(
                    "leftover {leftover} exceeds accounts with a remainder {}",
                    remainders.len()
                ))
            })?;
        // The l-th largest remainder.
        let (_, &mut threshold, _) = remainders.select_nth_unstable_by(l - 1, |a, b| b.cmp(a));
        let above = remainders.iter().filter(|r| **r > threshold).count();
        Ok(LeftoverCut {
            threshold,
            ties: (l - above) as u64,
            leftover,
        })
    }
}

/// Pays a day account by account in account-id order (byte order), after the remainders
/// were cut: the streaming half of [`allocate`], so a day of any size is paid with memory
/// for its remainders only.
#[derive(Debug)]
pub struct Payer<'p> {
    plan: &'p AllocationPlan,
    cut: LeftoverCut,
    ties_left: u64,
    leftover_given: u128,
    paid: Amount,
    last_id: String,
    started: bool,
}

impl<'p> Payer<'p> {
    /// A payer for `plan` with `cut`.
    pub fn new(plan: &'p AllocationPlan, cut: LeftoverCut) -> Payer<'p> {
        Payer {
            plan,
            cut,
            ties_left: cut.ties,
            leftover_given: 0,
            paid: Amount::ZERO,
            last_id: String::new(),
            started: false,
        }
    }

    /// The reward of `account_id` with eligible amount `eligible`.
    ///
    /// Errors with [`CoreError::Invariant`] when ids do not strictly increase (byte order)
    /// or the payouts would exceed what the plan pays.
    pub fn pay(&mut self, account_id: &str, eligible: Amount) -> Result<Amount> {
        if self.started && account_id.as_bytes() <= self.last_id.as_bytes() {
            return Err(CoreError::Invariant(format!(
                "payouts out of account order: {account_id:?} after {:?}",
                self.last_id
            )));
        }
        self.started = true;
        self.last_id.clear();
        self.last_id.push_str(account_id);
        let (q, r) = self.plan.share(eligible)?;
        let bonus = r > 0
            && (r > self.cut.threshold
                || (r == self.cut.threshold && self.ties_left > 0 && {
                    self.ties_left -= 1;
                    true
                }));
        let reward = if bonus {
            self.leftover_given += 1;
            q.checked_add(Amount(1), "leftover unit")?
        } else {
            q
        };
        self.paid = self.paid.checked_add(reward, "Σ payouts")?;
        if self.paid > self.plan.to_pay() {
            return Err(CoreError::Invariant(format!(
                "payouts {} exceed D − carry {}",
                self.paid,
                self.plan.to_pay()
            )));
        }
        Ok(reward)
    }

    /// Checks that every unit was paid: `Σ rewards = D − carry_out` and every leftover
    /// unit given. Returns `Σ rewards`.
    pub fn finish(self) -> Result<Amount> {
        if self.paid != self.plan.to_pay() || self.leftover_given != self.cut.leftover {
            return Err(CoreError::Invariant(format!(
                "paid {} of {} ({} of {} leftover units)",
                self.paid,
                self.plan.to_pay(),
                self.leftover_given,
                self.cut.leftover
            )));
        }
        Ok(self.paid)
    }
}

/// Splits `realized_reward` (plus `carry_in`) among `entries` by the rules above, in
/// memory. The store pays large days with the same pieces streamed: [`plan_allocation`],
/// [`LeftoverCut`], [`Payer`].
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
    let mut sorted: Vec<&EligibleEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.account_id.as_bytes().cmp(b.account_id.as_bytes()));
    if let Some(w) = sorted.windows(2).find(|w| w[0].account_id == w[1].account_id) {
        return Err(CoreError::InvalidInput(format!(
            "account {} appears twice in one allocation",
            w[0].account_id
        )));
    }
    let total_eligible = Amount::checked_sum(sorted.iter().map(|e| e.eligible), "Σe")?;
    let plan = plan_allocation(realized_reward, carry_in, fee_bps, total_eligible)?;
    let mut remainders = Vec::new();
    let mut floor_sum = Amount::ZERO;
    for e in &sorted {
        let (q, r) = plan.share(e.eligible)?;
        floor_sum = floor_sum.checked_add(q, "Σ floor shares")?;
        if r > 0 {
            remainders.push(r);
        }
    }
    let leftover = plan.to_pay().checked_sub(floor_sum, "leftover units")?;
    let cut = LeftoverCut::new(&mut remainders, leftover.0)?;
    let mut payer = Payer::new(&plan, cut);
    let mut payouts = Vec::with_capacity(sorted.len());
    for e in &sorted {
        payouts.push(Payout {
            account_id: e.account_id.clone(),
            eligible: e.eligible,
            reward: payer.pay(&e.account_id, e.eligible)?,
        });
    }
    payer.finish()?;
    let alloc = Allocation {
        realized_reward,
        fee: plan.fee,
        carry_in,
        distributable: plan.distributable,
        total_eligible,
        payouts,
        carry_out: plan.carry_out,
        apr: plan.apr,
    };
    check_conservation(&alloc)?;
    Ok(alloc)
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
        assert_eq!(a.apr, Some(Decimal::ZERO));
    }

    #[test]
    fn success_apr() {
        // D = 1, Σe = 365 → APR = 1.
        let a = allocate(Amount(1), Amount::ZERO, 0, &[e("a", 365)]).unwrap();
        assert_eq!(a.apr, Some(Decimal::ONE));
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
    fn success_apr_beyond_decimal_range_still_pays() {
        // D = u128::MAX / 2 over Σe = 1: the APR (≈ 6 · 10^40) is beyond Decimal's range.
        let d = u128::MAX / 2;
        let a = allocate(Amount(d), Amount::ZERO, 0, &[e("a", 1)]).unwrap();
        assert_eq!(a.apr, None);
        assert_eq!(a.payouts[0].reward, Amount(d));
    }

    #[test]
    fn fail_payer_out_of_account_order() {
        let plan = plan_allocation(Amount(10), Amount::ZERO, 0, Amount(2)).unwrap();
        let cut = LeftoverCut::new(&mut [], 0).unwrap();
        let mut payer = Payer::new(&plan, cut);
        payer.pay("b", Amount(1)).unwrap();
        assert!(matches!(payer.pay("a", Amount(1)), Err(CoreError::Invariant(_))));
    }

    #[test]
    fn fail_payer_finish_before_everyone_is_paid() {
        let plan = plan_allocation(Amount(10), Amount::ZERO, 0, Amount(2)).unwrap();
        let cut = LeftoverCut::new(&mut [], 0).unwrap();
        let mut payer = Payer::new(&plan, cut);
        payer.pay("a", Amount(1)).unwrap();
        assert!(matches!(payer.finish(), Err(CoreError::Invariant(_))));
    }

    proptest::proptest! {
        /// Largest remainder by streaming (remainders cut, then paid in account order)
        /// gives what sorting every (remainder, account) pair gives.
        #[test]
        fn prop_streaming_matches_sorted_largest_remainder(
            d in 0u128..1_000_000,
            eligible in proptest::collection::vec(0u128..1_000, 1..40),
        ) {
            let entries: Vec<EligibleEntry> = eligible.iter().enumerate().map(|(i, v)| e(&format!("a{i:03}"), *v)).collect();
            let a = allocate(Amount(d), Amount::ZERO, 0, &entries).unwrap();
            let total: u128 = eligible.iter().sum();
            if total == 0 {
                proptest::prop_assert!(a.payouts.iter().all(|p| p.reward.is_zero()));
                return Ok(());
            }
            let mut base: Vec<(u128, u128, String)> = entries.iter().map(|x| (d * x.eligible.0 / total, d * x.eligible.0 % total, x.account_id.clone())).collect();
            let left = d - base.iter().map(|b| b.0).sum::<u128>();
            let mut order: Vec<usize> = (0..base.len()).filter(|i| base[*i].1 > 0).collect();
            order.sort_by(|&x, &y| base[y].1.cmp(&base[x].1).then(base[x].2.cmp(&base[y].2)));
            for &i in order.iter().take(left as usize) { base[i].0 += 1; }
            base.sort_by(|x, y| x.2.cmp(&y.2));
            let want: Vec<u128> = base.iter().map(|b| b.0).collect();
            let got: Vec<u128> = a.payouts.iter().map(|p| p.reward.0).collect();
            proptest::prop_assert_eq!(got, want);
        }
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
