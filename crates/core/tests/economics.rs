//! Property tests on the economics of the daily allocation (SPL stake-pool style):
//! conservation, monotonicity, cap and minimum, and independence from input order.

use proptest::prelude::*;
use softstake_core::allocate::{allocate, EligibleEntry};
use softstake_core::eligibility::eligible_amount;
use softstake_core::ledger::allocation_entries;
use softstake_core::{Amount, Day, TokenRegistry};

fn entries(v: &[u128]) -> Vec<EligibleEntry> {
    v.iter()
        .enumerate()
        .map(|(i, e)| EligibleEntry {
            account_id: format!("acct-{i:04}"),
            eligible: Amount(*e),
        })
        .collect()
}

fn registry(min: &str, cap: &str) -> TokenRegistry {
    TokenRegistry::from_toml_str(&format!(
        "[tokens.BNB]\nchain = \"bsc\"\ndecimals = 18\nbase_unit = \"wei\"\nmin_holding = \"{min}\"\ncap = \"{cap}\"\nfee_bps = 500\nunbonding_period_secs = 604800\n"
    ))
    .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Σ payouts + fee + carry_out = R + carry_in, to the unit, and payouts sum to D
    /// exactly whenever anyone is eligible.
    #[test]
    fn prop_conservation(r in any::<u64>(), carry in any::<u32>(), fee_bps in 0u32..=10_000,
                         e in prop::collection::vec(0u128..u128::from(u64::MAX) * 1_000_000, 0..40)) {
        let a = allocate(Amount(r.into()), Amount(carry.into()), fee_bps, &entries(&e)).unwrap();
        let paid = a.total_paid().unwrap();
        prop_assert_eq!(paid.0 + a.fee.0 + a.carry_out.0, u128::from(r) + u128::from(carry));
        if a.total_eligible.0 > 0 {
            prop_assert_eq!(paid, a.distributable);
            prop_assert_eq!(a.carry_out, Amount::ZERO);
        } else {
            prop_assert_eq!(paid, Amount::ZERO);
        }
        let es = allocation_entries("BNB", Day::parse("2025-06-01").unwrap(), &a.plan()).unwrap();
        prop_assert!(es.iter().all(|x| x.check_balanced().is_ok()));
    }

    /// Conservation holds for 24-decimal amounts, where D · e_u passes u128.
    #[test]
    fn prop_conservation_yocto_scale(r in 0u128..10u128.pow(30), e in prop::collection::vec(0u128..10u128.pow(33), 1..20)) {
        let a = allocate(Amount(r), Amount::ZERO, 1_000, &entries(&e)).unwrap();
        prop_assert_eq!(a.total_paid().unwrap().0 + a.fee.0 + a.carry_out.0, r);
    }

    /// Each reward is within one unit of the exact share D · e_u / Σe.
    #[test]
    fn prop_fair_within_one_unit(r in any::<u64>(), e in prop::collection::vec(0u128..1_000_000_000_000, 1..40)) {
        let a = allocate(Amount(r.into()), Amount::ZERO, 0, &entries(&e)).unwrap();
        if a.total_eligible.0 > 0 {
            for p in &a.payouts {
                let exact_floor = softstake_core::amount::mul_div_floor(a.distributable.0, p.eligible.0, a.total_eligible.0, "t").unwrap();
                prop_assert!(p.reward.0 == exact_floor || p.reward.0 == exact_floor + 1);
            }
        }
    }

    /// Order of input rows does not matter: the same set in any order gives the same
    /// allocation, byte for byte.
    #[test]
    fn prop_order_independent(r in any::<u64>(), e in prop::collection::vec(0u128..1_000_000, 1..30), seed in any::<u64>()) {
        let base = entries(&e);
        let mut shuffled = base.clone();
        // deterministic Fisher–Yates from the seed
        let mut s = seed;
        for i in (1..shuffled.len()).rev() {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let j = (s >> 33) as usize % (i + 1);
            shuffled.swap(i, j);
        }
        let a = allocate(Amount(r.into()), Amount::ZERO, 250, &base).unwrap();
        let b = allocate(Amount(r.into()), Amount::ZERO, 250, &shuffled).unwrap();
        prop_assert_eq!(a, b);
    }

    /// Monotonicity below the cap: raising one account's eligible amount (others and D
    /// fixed) never lowers its reward. Why the largest-remainder step cannot break this:
    /// every other account's fractional share falls, or wraps below an integer, and each
    /// wrap adds one leftover unit, so the account's rank stays within the leftover count.
    #[test]
    fn prop_monotone(r in 1u64.., e in prop::collection::vec(0u128..1_000_000, 2..30), who in any::<prop::sample::Index>(), extra in 1u128..1_000_000) {
        let i = who.index(e.len());
        let before = allocate(Amount(r.into()), Amount::ZERO, 0, &entries(&e)).unwrap();
        let mut more = e.clone();
        more[i] += extra;
        let after = allocate(Amount(r.into()), Amount::ZERO, 0, &entries(&more)).unwrap();
        prop_assert!(after.payouts[i].reward >= before.payouts[i].reward);
    }

    /// Eligible amounts respect the minimum and the cap, and are monotone in the average.
    #[test]
    fn prop_cap_and_min(avg in any::<u64>(), avg2 in any::<u64>()) {
        let reg = registry("0.5", "1000");
        let t = reg.get("BNB").unwrap();
        let el = eligible_amount(Amount(avg.into()), t);
        prop_assert!(el <= t.cap);
        prop_assert!(el.is_zero() || el >= t.min_holding);
        prop_assert!(el <= Amount(avg.into()));
        let (lo, hi) = (avg.min(avg2), avg.max(avg2));
        prop_assert!(eligible_amount(Amount(lo.into()), t) <= eligible_amount(Amount(hi.into()), t));
    }
}

/// Exhaustive check of monotonicity on a small grid, where leftover units and ties are
/// frequent (three accounts, every D and eligible amount up to small bounds).
#[test]
fn success_monotone_exhaustive_small_grid() {
    for d in 1u128..30 {
        for a in 0u128..9 {
            for b in 0u128..9 {
                for c in 0u128..9 {
                    let before = allocate(Amount(d), Amount::ZERO, 0, &entries(&[a, b, c])).unwrap();
                    let after = allocate(Amount(d), Amount::ZERO, 0, &entries(&[a + 1, b, c])).unwrap();
                    assert!(
                        after.payouts[0].reward >= before.payouts[0].reward,
                        "D={d} e=({a},{b},{c}): {} -> {}",
                        before.payouts[0].reward,
                        after.payouts[0].reward
                    );
                }
            }
        }
    }
}
