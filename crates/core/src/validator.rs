//! Validator selection: who gets our stake, and how much.
//!
//! ```text
//!  candidates ─▶ superminority (largest validators holding ⅓ of network stake): excluded
//!             ─▶ inactive / delinquent (performance < 90 % of median) / implausible (> 200 %)
//!                / commission > max: excluded
//!             ─▶ first those whose stake-share cap holds the pool-share cap (room to grow)
//!             ─▶ score = min(performance, 102 %) · (1 − commission); ties: smaller stake, then id
//!             ─▶ keep current eligible validators, add the best others, up to max_validators
//!             ─▶ caps: max_pool_share · total target, max_validator_stake_share · validator stake
//!             ─▶ water-fill the total target under the caps
//! ```
//!
//! Excluding the superminority means we never raise the concentration of the largest
//! validators. Each target carries a reason that ends up in the plan.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::error::Result;
use crate::token::{ValidatorPolicy, BPS_DENOMINATOR};

/// Validators performing below this share of the network median are treated as
/// delinquent, bps.
pub const MIN_PERFORMANCE_BPS: u32 = 9_000;

/// Reward rates above this share of the median are data anomalies (on Solana: stake that
/// changed during the epoch), not performance; such validators are left out, bps.
pub const MAX_PLAUSIBLE_PERFORMANCE_BPS: u32 = 20_000;

/// A validator we could delegate to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorCandidate {
    /// Address we delegate to (vote account, operator, pool id).
    pub id: String,
    /// Human name, if known.
    pub name: String,
    /// Commission on rewards, bps.
    pub commission_bps: u32,
    /// Total stake delegated to it on the network, base units.
    pub total_stake: Amount,
    /// Reward rate relative to the network median, bps (10 000 = median).
    pub performance_bps: u32,
    /// False when jailed, retired, not in the active set, or not open to delegation (an
    /// Aptos owner's own stake pool): listed for the network's stake, never chosen.
    pub active: bool,
    /// Run by the exchange itself (a TON single-nominator pool the treasury owns): all of
    /// its stake is ours by design, so the cap on our share of a validator's stake
    /// (`max_validator_stake_share_bps`) does not apply to it. False for every
    /// third-party validator.
    #[serde(default)]
    pub own_validator: bool,
}

/// What the selection wants a validator to hold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorTarget {
    /// Validator id.
    pub validator: String,
    /// Our stake with it now (activating + active), base units.
    pub current: Amount,
    /// Our stake we want with it, base units.
    pub target: Amount,
    /// Rank by score (0 = best); ineligible validators rank after all eligible ones.
    pub rank: usize,
    /// Why.
    pub reason: String,
}

/// The selection's outcome: targets best first, then notes (e.g. capacity shortfall).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Selection {
    /// One per chosen or currently held validator, best first.
    pub targets: Vec<ValidatorTarget>,
    /// Remarks for the plan.
    pub notes: Vec<String>,
}

/// Formats basis points as a percentage with two decimals (`750` → `7.50%`).
pub fn fmt_bps(bps: u32) -> String {
    format!("{}.{:02}%", bps / 100, bps % 100)
}

/// Performance above this share of the median counts as this much when scoring, bps:
/// a reward rate far above the median is an outlier (stake that changed during the
/// epoch, a tiny validator's lucky epoch), not a better validator.
pub const PERFORMANCE_SCORE_CAP_BPS: u32 = 10_200;

fn score(c: &ValidatorCandidate) -> u64 {
    u64::from(c.performance_bps.min(PERFORMANCE_SCORE_CAP_BPS))
        * u64::from(BPS_DENOMINATOR.saturating_sub(c.commission_bps))
}

/// Our stake allowed at `c` by its share of the validator's stake (unbounded at our own
/// validator, [`ValidatorCandidate::own_validator`]).
fn stake_share_cap(c: &ValidatorCandidate, policy: &ValidatorPolicy) -> Result<Amount> {
    if c.own_validator {
        return Ok(Amount(u128::MAX));
    }
    c.total_stake.mul_div_floor(
        u128::from(policy.max_validator_stake_share_bps),
        u128::from(BPS_DENOMINATOR),
        "validator share cap",
    )
}

/// The ids of the superminority: the largest validators that together hold at least
/// `superminority_bps` of the network's stake.
pub fn superminority(candidates: &[ValidatorCandidate], superminority_bps: u32) -> Result<BTreeSet<String>> {
    let network = Amount::checked_sum(candidates.iter().map(|c| c.total_stake), "network stake")?;
    let threshold = network.mul_div_floor(
        u128::from(superminority_bps),
        u128::from(BPS_DENOMINATOR),
        "superminority",
    )?;
    let mut by_stake: Vec<&ValidatorCandidate> = candidates.iter().collect();
    by_stake.sort_by(|a, b| b.total_stake.cmp(&a.total_stake).then(a.id.cmp(&b.id)));
    let mut acc = Amount::ZERO;
    let mut out = BTreeSet::new();
    for c in by_stake {
        if acc >= threshold || threshold.is_zero() {
            break;
        }
        acc = acc.checked_add(c.total_stake, "superminority")?;
        out.insert(c.id.clone());
    }
    Ok(out)
}

fn exclusion(c: &ValidatorCandidate, policy: &ValidatorPolicy, supermin: &BTreeSet<String>) -> Option<String> {
    if !c.active {
        Some("not in the active set or not open to delegation".into())
    } else if supermin.contains(&c.id) {
        Some("in the superminority (would raise stake concentration)".into())
    } else if c.commission_bps > policy.max_commission_bps {
        Some(format!(
            "commission {} above the {} limit",
            fmt_bps(c.commission_bps),
            fmt_bps(policy.max_commission_bps)
        ))
    } else if c.performance_bps > MAX_PLAUSIBLE_PERFORMANCE_BPS {
        Some(format!(
            "reward rate {}% of the median is not plausible (stake changed during the epoch?): data excluded",
            c.performance_bps / 100
        ))
    } else if c.performance_bps < MIN_PERFORMANCE_BPS {
        Some(format!(
            "delinquent: rewards at {}% of the network median",
            c.performance_bps / 100
        ))
    } else {
        None
    }
}

/// Chooses validators and per-validator targets for `total_target` of stake.
///
/// `current` is our committed stake per validator (validators we hold but that are
/// not in `candidates` get target 0).
pub fn select(
    candidates: &[ValidatorCandidate],
    current: &BTreeMap<String, Amount>,
    total_target: Amount,
    policy: &ValidatorPolicy,
    decimals: u8,
) -> Result<Selection> {
    let supermin = superminority(candidates, policy.superminority_bps)?;
    let mut eligible: Vec<&ValidatorCandidate> = Vec::new();
    let mut excluded: BTreeMap<String, String> = BTreeMap::new();
    for c in candidates {
        match exclusion(c, policy, &supermin) {
            None => eligible.push(c),
            Some(why) => {
                excluded.insert(c.id.clone(), why);
            }
        }
    }
    // Validators with room for their share of the target come first (so the pool is
    // not spread over validators too small to hold it); then by score; then the smaller
    // validator (decentralization); then the id.
    let max_n = usize::try_from(policy.max_validators).unwrap_or(usize::MAX);
    // "Room" means a stake-share cap of at least the pool-share cap, so a validator can
    // keep its share while the pool grows.
    let room_needed = total_target.mul_div_floor(
        u128::from(policy.max_pool_share_bps),
        u128::from(BPS_DENOMINATOR),
        "pool share cap",
    )?;
    let mut roomy: BTreeSet<&str> = BTreeSet::new();
    for c in &eligible {
        if stake_share_cap(c, policy)? >= room_needed {
            roomy.insert(c.id.as_str());
        }
    }
    eligible.sort_by(|a, b| {
        roomy
            .contains(b.id.as_str())
            .cmp(&roomy.contains(a.id.as_str()))
            .then(score(b).cmp(&score(a)))
            .then(a.total_stake.cmp(&b.total_stake))
            .then(a.id.cmp(&b.id))
    });
    let held = |c: &ValidatorCandidate| current.get(&c.id).is_some_and(|a| !a.is_zero());
    let mut chosen: Vec<&ValidatorCandidate> = eligible.iter().filter(|c| held(c)).take(max_n).copied().collect();
    for c in eligible.iter().filter(|c| !held(c)) {
        if chosen.len() >= max_n {
            break;
        }
        chosen.push(c);
    }
    chosen.sort_by(|a, b| {
        score(b)
            .cmp(&score(a))
            .then(a.total_stake.cmp(&b.total_stake))
            .then(a.id.cmp(&b.id))
    });
    let pool_cap = total_target.mul_div_floor(
        u128::from(policy.max_pool_share_bps),
        u128::from(BPS_DENOMINATOR),
        "pool share cap",
    )?;
    let caps: Vec<Amount> = chosen
        .iter()
        .map(|c| Ok(stake_share_cap(c, policy)?.min(pool_cap)))
        .collect::<Result<_>>()?;
    let (fills, shortfall) = water_fill(total_target, &caps)?;
    let mut notes = Vec::new();
    if !shortfall.is_zero() {
        notes.push(format!(
            "capacity shortfall: caps allow {} base units less than the target; raise validators.max_validators (now {}) or the share caps",
            shortfall, policy.max_validators
        ));
    }
    let mut targets: Vec<ValidatorTarget> = chosen
        .iter()
        .zip(&fills)
        .enumerate()
        .map(|(rank, (c, fill))| ValidatorTarget {
            validator: c.id.clone(),
            current: current.get(&c.id).copied().unwrap_or_default(),
            target: *fill,
            rank,
            reason: format!(
                "rank {} of {} eligible: commission {}, performance {}% of median, stake {}",
                rank + 1,
                eligible.len(),
                fmt_bps(c.commission_bps),
                c.performance_bps / 100,
                c.total_stake.to_units_string(decimals)
            ),
        })
        .collect();
    let chosen_ids: BTreeSet<&str> = chosen.iter().map(|c| c.id.as_str()).collect();
    for (id, amount) in current
        .iter()
        .filter(|(id, a)| !a.is_zero() && !chosen_ids.contains(id.as_str()))
    {
        let reason = excluded.get(id).cloned().unwrap_or_else(|| {
            if candidates.iter().any(|c| &c.id == id) {
                "outranked: max_validators reached".into()
            } else {
                "no longer a candidate".into()
            }
        });
        targets.push(ValidatorTarget {
            validator: id.clone(),
            current: *amount,
            target: Amount::ZERO,
            rank: usize::MAX,
            reason: format!("deselected: {reason}"),
        });
    }
    Ok(Selection { targets, notes })
}

/// Splits `total` as evenly as possible under per-slot caps (slots in priority order:
/// leftover units go to the first slots with room). Returns the fills and what did not
/// fit.
fn water_fill(total: Amount, caps: &[Amount]) -> Result<(Vec<Amount>, Amount)> {
    let mut fills = vec![Amount::ZERO; caps.len()];
    let mut order: Vec<usize> = (0..caps.len()).collect();
    order.sort_by(|a, b| caps[*a].cmp(&caps[*b]).then(a.cmp(b)));
    let mut remaining = total;
    for (k, &i) in order.iter().enumerate() {
        let left = (order.len() - k) as u128;
        let share = Amount(remaining.0 / left);
        let give = share.min(caps[i]);
        fills[i] = give;
        remaining = remaining.checked_sub(give, "water fill")?;
    }
    for (i, cap) in caps.iter().enumerate() {
        if remaining.is_zero() {
            break;
        }
        let room = cap.checked_sub(fills[i], "water fill room")?;
        let give = room.min(remaining);
        fills[i] = fills[i].checked_add(give, "water fill")?;
        remaining = remaining.checked_sub(give, "water fill")?;
    }
    Ok((fills, remaining))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: &str, commission_bps: u32, stake: u128, perf: u32) -> ValidatorCandidate {
        ValidatorCandidate {
            id: id.into(),
            name: id.into(),
            commission_bps,
            total_stake: Amount(stake),
            performance_bps: perf,
            active: true,
            own_validator: false,
        }
    }

    fn policy() -> ValidatorPolicy {
        ValidatorPolicy {
            max_validators: 3,
            max_pool_share_bps: 5_000,
            max_validator_stake_share_bps: 1_000,
            max_commission_bps: 1_000,
            superminority_bps: 3_334,
        }
    }

    fn set() -> Vec<ValidatorCandidate> {
        vec![
            cand("whale", 0, 10_000_000, 10_000), // superminority alone
            cand("a", 500, 2_000_000, 10_000),
            cand("b", 0, 2_000_000, 10_000),
            cand("c", 0, 2_000_000, 8_000),      // delinquent
            cand("d", 2_000, 2_000_000, 10_000), // commission too high
            cand("e", 700, 2_000_000, 10_100),
            cand("f", 900, 2_000_000, 10_000),
        ]
    }

    #[test]
    fn success_excludes_superminority_and_bad_validators() {
        let s = select(&set(), &BTreeMap::new(), Amount(300_000), &policy(), 0).unwrap();
        let ids: Vec<&str> = s.targets.iter().map(|t| t.validator.as_str()).collect();
        assert_eq!(ids, vec!["b", "a", "e"]); // b best (0 %), a (5 %), e (7 %, perf 101 %)
        assert_eq!(
            Amount::checked_sum(s.targets.iter().map(|t| t.target), "t").unwrap(),
            Amount(300_000)
        );
        assert!(s.notes.is_empty());
    }

    #[test]
    fn success_caps_and_shortfall() {
        // validator cap 10 % of 2 000 000 = 200 000 each; pool cap 50 % of 1 000 000.
        let s = select(&set(), &BTreeMap::new(), Amount(1_000_000), &policy(), 0).unwrap();
        assert!(s.targets.iter().all(|t| t.target <= Amount(200_000)));
        assert_eq!(s.notes.len(), 1, "{:?}", s.notes);
    }

    #[test]
    fn success_own_validator_is_not_capped_by_its_stake_share() {
        // our own validator holds only our stake (0 of its own before we delegate): a
        // third party's would be capped at 10 % of that, ours takes its pool share
        let mut own = cand("own", 0, 0, 10_000);
        own.own_validator = true;
        let mut set = set();
        set.push(own.clone());
        let s = select(&set, &BTreeMap::new(), Amount(1_000_000), &policy(), 0).unwrap();
        let t = s.targets.iter().find(|t| t.validator == "own").unwrap();
        assert_eq!(t.target, Amount(500_000), "the 50 % pool share, not 10 % of its stake");
        own.own_validator = false;
        *set.last_mut().unwrap() = own;
        let s = select(&set, &BTreeMap::new(), Amount(1_000_000), &policy(), 0).unwrap();
        assert!(s.targets.iter().all(|t| t.validator != "own" || t.target.is_zero()));
    }

    #[test]
    fn success_deselects_validator_that_became_ineligible() {
        let mut current = BTreeMap::new();
        current.insert("d".to_string(), Amount(50_000));
        let s = select(&set(), &current, Amount(300_000), &policy(), 0).unwrap();
        let d = s.targets.iter().find(|t| t.validator == "d").unwrap();
        assert_eq!(d.target, Amount::ZERO);
        assert!(d.reason.contains("commission"), "{}", d.reason);
    }

    #[test]
    fn success_keeps_current_eligible_validators() {
        let mut current = BTreeMap::new();
        current.insert("f".to_string(), Amount(10));
        let s = select(&set(), &current, Amount(300_000), &policy(), 0).unwrap();
        assert!(s.targets.iter().any(|t| t.validator == "f" && !t.target.is_zero()));
    }

    #[test]
    fn success_water_fill_even_split() {
        let (f, left) = water_fill(Amount(10), &[Amount(100), Amount(2), Amount(100)]).unwrap();
        assert_eq!(f, vec![Amount(4), Amount(2), Amount(4)]);
        assert_eq!(left, Amount::ZERO);
    }
}
