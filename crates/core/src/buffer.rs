//! The liquidity buffer: how much of a token's pool stays liquid for withdrawals.
//!
//! ```text
//!  P (custodial total), daily history of P ─▶ net outflow per day  o_d = P_{d−1} − P_d
//!  W = ceil(unbonding / 1 day) days         ─▶ rolling W-day sums of o_d (clamped ≥ 0)
//!  q = quantile_{outflow_quantile}(sums) · safety_factor
//!  target_buffer = min(P, max(min_buffer_ratio · P, q))
//!  target_staked = min(Σe, P − target_buffer)
//! ```
//!
//! The window is as long as the unbonding period because stake undelegated today only
//! comes back after it: the buffer must cover the outflows of that long. The quantile is
//! the nearest-rank quantile of the window sums (`ceil(q · m)`-th smallest of `m`).
//!
//! The forecast adds, to what is liquid now, the unbonding stake that completes within
//! 1, 7 and 21 days; when withdrawals have exceeded the buffer (liquid below zero) the
//! exit ETA is the first time that enough unbonding completes.

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::error::{CoreError, Result};
use crate::position::{Position, StakeState};
use crate::time::{Timestamp, SECS_PER_DAY};
use crate::token::{BufferPolicy, BPS_DENOMINATOR};

/// Converts an amount to a signed number (for liquid balances that can go negative).
pub fn signed(a: Amount) -> Result<i128> {
    i128::try_from(a.0).map_err(|_| CoreError::Overflow { what: "signed amount" })
}

/// Converts a non-negative signed number back to an amount (negative → 0).
pub fn unsigned(v: i128) -> Amount {
    Amount(u128::try_from(v.max(0)).unwrap_or(0))
}

/// The buffer targets for one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BufferTarget {
    /// Window length, days (= unbonding period rounded up, at least 1).
    pub window_days: u64,
    /// Quantile of W-day net outflows, base units (before the safety factor).
    pub outflow_quantile: Amount,
    /// `quantile · safety_factor`, base units.
    pub statistical_buffer: Amount,
    /// `min_buffer_ratio · P`, base units.
    pub floor_buffer: Amount,
    /// The target buffer, base units.
    pub target_buffer: Amount,
    /// The target staked amount, base units.
    pub target_staked: Amount,
}

/// Computes the buffer target from the custodial total `P`, `Σe`, the history of daily
/// custodial totals (oldest first, ending with the latest closed day) and the unbonding
/// period.
pub fn buffer_target(
    custodial_total: Amount,
    total_eligible: Amount,
    daily_totals: &[Amount],
    unbonding_period_secs: u64,
    policy: &BufferPolicy,
) -> Result<BufferTarget> {
    let window_days = unbonding_period_secs.div_ceil(SECS_PER_DAY as u64).max(1);
    let sums = window_outflows(daily_totals, window_days)?;
    let outflow_quantile = quantile(&sums, policy.outflow_quantile_bps);
    let statistical_buffer = outflow_quantile.mul_div_floor(
        u128::from(policy.safety_factor_bps),
        u128::from(BPS_DENOMINATOR),
        "statistical buffer",
    )?;
    let floor_buffer = custodial_total.mul_div_floor(
        u128::from(policy.min_buffer_ratio_bps),
        u128::from(BPS_DENOMINATOR),
        "buffer floor",
    )?;
    let target_buffer = floor_buffer.max(statistical_buffer).min(custodial_total);
    let target_staked = total_eligible.min(custodial_total.checked_sub(target_buffer, "P − buffer")?);
    Ok(BufferTarget {
        window_days,
        outflow_quantile,
        statistical_buffer,
        floor_buffer,
        target_buffer,
        target_staked,
    })
}

/// Rolling `w`-day sums of net outflows `P_{d−1} − P_d`, clamped at zero. With fewer
/// than `w` days of outflows, one sum over all of them.
fn window_outflows(daily_totals: &[Amount], w: u64) -> Result<Vec<Amount>> {
    let mut outflows = Vec::with_capacity(daily_totals.len().saturating_sub(1));
    for pair in daily_totals.windows(2) {
        outflows.push(signed(pair[0])? - signed(pair[1])?);
    }
    if outflows.is_empty() {
        return Ok(Vec::new());
    }
    let w = usize::try_from(w).unwrap_or(usize::MAX).min(outflows.len());
    let mut sums = Vec::with_capacity(outflows.len() - w + 1);
    let mut acc: i128 = outflows[..w].iter().sum();
    sums.push(unsigned(acc));
    for i in w..outflows.len() {
        acc += outflows[i] - outflows[i - w];
        sums.push(unsigned(acc));
    }
    Ok(sums)
}

/// Nearest-rank quantile (`q_bps` of 10 000) of `values`; 0 for an empty slice.
pub fn quantile(values: &[Amount], q_bps: u32) -> Amount {
    if values.is_empty() {
        return Amount::ZERO;
    }
    let mut v = values.to_vec();
    v.sort();
    let m = v.len() as u128;
    let rank = (u128::from(q_bps) * m).div_ceil(u128::from(BPS_DENOMINATOR)).max(1);
    v[usize::try_from(rank - 1).unwrap_or(0).min(v.len() - 1)]
}

/// Liquidity at a few horizons, base units (signed: negative means withdrawals already
/// exceed what is liquid).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forecast {
    /// In custody now: `P − Σ positions`.
    pub liquid_now: i128,
    /// Liquid now plus withdrawable positions (one withdraw away).
    pub available_now: i128,
    /// … plus unbonding completing within 1 day.
    pub available_1d: i128,
    /// … within 7 days.
    pub available_7d: i128,
    /// … within 21 days.
    pub available_21d: i128,
}

/// Unbonding amounts with their ETAs, from positions and from undelegations a plan is
/// about to send.
pub fn unbonding_schedule(positions: &[Position], planned: &[(Timestamp, Amount)]) -> Vec<(Timestamp, Amount)> {
    let mut v: Vec<(Timestamp, Amount)> = positions
        .iter()
        .filter(|p| p.state == StakeState::Deactivating)
        .map(|p| (p.eta.unwrap_or(Timestamp(i64::MAX)), p.amount))
        .chain(planned.iter().copied())
        .collect();
    v.sort();
    v
}

/// The forecast from what is available now and the unbonding schedule.
pub fn forecast(
    liquid_now: i128,
    withdrawable: Amount,
    schedule: &[(Timestamp, Amount)],
    now: Timestamp,
) -> Result<Forecast> {
    let available_now = liquid_now + signed(withdrawable)?;
    let by = |days: i64| -> Result<i128> {
        let horizon = now.checked_add_secs(days * SECS_PER_DAY)?;
        let mut v = available_now;
        for (_, a) in schedule.iter().filter(|(eta, _)| *eta <= horizon) {
            v += signed(*a)?;
        }
        Ok(v)
    };
    Ok(Forecast {
        liquid_now,
        available_now,
        available_1d: by(1)?,
        available_7d: by(7)?,
        available_21d: by(21)?,
    })
}

/// The first time at which `available_now` plus the unbonding completed by then reaches
/// `needed`; `None` when the schedule never gets there.
pub fn exit_eta(
    available_now: i128,
    needed: i128,
    schedule: &[(Timestamp, Amount)],
    now: Timestamp,
) -> Result<Option<Timestamp>> {
    if available_now >= needed {
        return Ok(Some(now));
    }
    let mut v = available_now;
    for (eta, a) in schedule {
        v += signed(*a)?;
        if v >= needed {
            return Ok(Some((*eta).max(now)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(v: u128) -> Amount {
        Amount(v)
    }

    #[test]
    fn success_floor_when_no_history() {
        let t = buffer_target(a(1_000), a(900), &[], 86_400, &BufferPolicy::default()).unwrap();
        assert_eq!(t.target_buffer, a(100)); // 10 % floor
        assert_eq!(t.target_staked, a(900));
    }

    #[test]
    fn success_quantile_of_window_outflows_with_safety() {
        // P falls 10, 20, 30, 40 over 4 days; window 2 days: sums 30, 50, 70 → p95 = 70 → ×1.5 = 105
        let hist = [a(1_000), a(990), a(970), a(940), a(900)];
        let t = buffer_target(a(900), a(900), &hist, 2 * 86_400, &BufferPolicy::default()).unwrap();
        assert_eq!(t.window_days, 2);
        assert_eq!(t.outflow_quantile, a(70));
        assert_eq!(t.statistical_buffer, a(105));
        assert_eq!(t.target_buffer, a(105));
        assert_eq!(t.target_staked, a(795));
    }

    #[test]
    fn success_inflows_do_not_shrink_buffer_below_floor() {
        let hist = [a(100), a(200), a(300)];
        let t = buffer_target(a(300), a(300), &hist, 86_400, &BufferPolicy::default()).unwrap();
        assert_eq!(t.outflow_quantile, a(0));
        assert_eq!(t.target_buffer, a(30));
    }

    #[test]
    fn success_target_staked_capped_by_eligible() {
        let t = buffer_target(a(1_000), a(100), &[], 0, &BufferPolicy::default()).unwrap();
        assert_eq!(t.target_staked, a(100));
    }

    #[test]
    fn success_quantile_nearest_rank() {
        let v: Vec<Amount> = (1..=100).map(a).collect();
        assert_eq!(quantile(&v, 9_500), a(95));
        assert_eq!(quantile(&v, 10_000), a(100));
        assert_eq!(quantile(&v, 0), a(1));
    }

    #[test]
    fn success_exit_eta_when_unbonding_completes() {
        let now = Timestamp::from_unix_secs(0).unwrap();
        let t1 = Timestamp::from_unix_secs(86_400).unwrap();
        let t2 = Timestamp::from_unix_secs(3 * 86_400).unwrap();
        let sched = vec![(t1, a(50)), (t2, a(100))];
        assert_eq!(exit_eta(-120, 0, &sched, now).unwrap(), Some(t2));
        assert_eq!(exit_eta(-40, 0, &sched, now).unwrap(), Some(t1));
        assert_eq!(exit_eta(-400, 0, &sched, now).unwrap(), None);
        let f = forecast(-120, a(10), &sched, now).unwrap();
        assert_eq!((f.available_now, f.available_1d, f.available_7d), (-110, -60, 40));
    }
}
