//! The treasury planner: buffer, validator choice, move caps, alerts, and a property test
//! over seeded random withdrawal histories on a small deterministic chain model.

use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use softstake_core::buffer::signed;
use softstake_core::plan::{plan, AlertKind, OpKind, PlanInputs, TreasuryPlan};
use softstake_core::position::{draw_stake, EpochInfo, LiquidityModel, Position, StakeState, StateTotals};
use softstake_core::validator::ValidatorCandidate;
use softstake_core::{Amount, Timestamp, TokenConfig, TokenRegistry};

const DAY: i64 = 86_400;

fn token(unbonding_secs: u64) -> TokenConfig {
    let text = format!(
        r#"
[tokens.TST]
chain = "sim"
decimals = 0
base_unit = "unit"
min_holding = "0"
cap = "1000000000000"
fee_bps = 0
unbonding_period_secs = {unbonding_secs}
min_delegation = "10"
[tokens.TST.validators]
max_validators = 4
max_pool_share_bps = 5000
max_validator_stake_share_bps = 10000
superminority_bps = 1000
"#
    );
    TokenRegistry::from_toml_str(&text).unwrap().get("TST").unwrap().clone()
}

fn model(unbonding_secs: u64) -> LiquidityModel {
    LiquidityModel {
        unbonding_period_secs: unbonding_secs,
        epoch_secs: DAY as u64,
        epoch_aligned: false,
        activation_epochs: 1,
        min_delegation: Amount(10),
        rewards_auto_compound: true,
        claim_cadence_secs: 0,
        claim_all_validators: false,
        max_operations_per_epoch: 64,
        instant_exit: false,
        earns_in_custody: false,
        stake_unit: Amount(1),
        whole_position_exits: false,
    }
}

fn validators() -> Vec<ValidatorCandidate> {
    let mut v: Vec<ValidatorCandidate> = (0..8)
        .map(|i| ValidatorCandidate {
            id: format!("v{i}"),
            name: format!("v{i}"),
            commission_bps: 100 * i,
            total_stake: Amount(1_000_000_000),
            performance_bps: 10_000,
            active: true,
            own_validator: false,
        })
        .collect();
    v.push(ValidatorCandidate {
        id: "whale".into(),
        name: "whale".into(),
        commission_bps: 0,
        total_stake: Amount(100_000_000_000),
        performance_bps: 10_000,
        active: true,
        own_validator: false,
    });
    v
}

fn epoch(now: Timestamp) -> EpochInfo {
    let start = Timestamp::from_unix_secs(now.unix_secs().div_euclid(DAY) * DAY).unwrap();
    EpochInfo {
        index: (now.unix_secs() / DAY) as u64,
        start,
        secs: DAY as u64,
    }
}

struct Ctx {
    token: TokenConfig,
    model: LiquidityModel,
    validators: Vec<ValidatorCandidate>,
}

impl Ctx {
    fn new(unbonding_days: u64) -> Ctx {
        Ctx {
            token: token(unbonding_days * DAY as u64),
            model: model(unbonding_days * DAY as u64),
            validators: validators(),
        }
    }

    fn plan(&self, now: Timestamp, p: u128, history: &[Amount], positions: &[Position], moved: u128) -> TreasuryPlan {
        plan(&PlanInputs {
            token: &self.token,
            model: &self.model,
            epoch: epoch(now),
            now,
            custodial_total: Amount(p),
            total_eligible: Amount(p),
            daily_totals: history,
            positions,
            validators: &self.validators,
            moved_this_epoch: Amount(moved),
            ops_this_epoch: 0,
            claimable: &[],
            last_claim: None,
            frozen: None,
            spendable: None,
        })
        .unwrap()
    }
}

fn t0() -> Timestamp {
    Timestamp::from_unix_secs(1_750_000_000 / DAY * DAY + 3_600).unwrap()
}

fn pos(v: &str, state: StakeState, amount: u128, eta: Option<Timestamp>) -> Position {
    Position {
        validator: v.into(),
        state,
        amount: Amount(amount),
        eta,
        account: None,
    }
}

#[test]
fn success_delegates_up_to_target_keeping_the_buffer() {
    let c = Ctx::new(7);
    let p = c.plan(t0(), 100_000, &[], &[], 0);
    // floor buffer 10 %: target staked 90 000, but the move cap is 20 % of P per epoch.
    assert_eq!(p.buffer.target_buffer, Amount(10_000));
    assert_eq!(p.moved, Amount(20_000));
    assert!(p
        .ops
        .iter()
        .all(|o| o.kind == OpKind::Delegate && o.validator != "whale"));
    assert!(p.notes.iter().any(|n| n.contains("move cap")), "{:?}", p.notes);
    // without the cap binding (already most of the way there) it reaches the target exactly
    let held = vec![
        pos("v0", StakeState::Active, 40_000, None),
        pos("v1", StakeState::Active, 40_000, None),
    ];
    let p = c.plan(t0(), 100_000, &[], &held, 0);
    assert_eq!(p.moved, Amount(10_000));
}

#[test]
fn success_withdraws_then_undelegates_worst_first() {
    let c = Ctx::new(7);
    let held = vec![
        pos("v0", StakeState::Active, 30_000, None),
        pos("v3", StakeState::Active, 30_000, None),
        pos("v1", StakeState::Withdrawable, 5_000, None),
    ];
    // P fell to 50 000: target staked 45 000, 60 000 committed → 15 000 to release, capped at
    // 20 % of the pool max(P, positions) = 65 000: 13 000.
    let p = c.plan(t0(), 50_000, &[], &held, 0);
    assert_eq!(p.ops[0].kind, OpKind::Withdraw);
    let und: Vec<_> = p.ops.iter().filter(|o| o.kind == OpKind::Undelegate).collect();
    assert_eq!(und[0].validator, "v3", "worst (highest commission) first: {:?}", p.ops);
    assert_eq!(p.moved, Amount(13_000));
}

#[test]
fn success_instant_exit_releases_with_one_withdrawal_due_now() {
    // the AXS pool: no unbonding, `unstake` pays at once
    let mut c = Ctx::new(0);
    c.model.instant_exit = true;
    let held = vec![
        pos("v0", StakeState::Active, 30_000, None),
        pos("v3", StakeState::Active, 30_000, None),
    ];
    let p = c.plan(t0(), 50_000, &[], &held, 0);
    assert!(!p.ops.is_empty());
    assert!(
        p.ops.iter().all(|o| o.kind == OpKind::Withdraw),
        "no undelegation on an instant-exit chain: {:?}",
        p.ops
    );
    assert_eq!(p.ops[0].validator, "v3", "worst first, as undelegations: {:?}", p.ops);
    // the releases count as moves (capped at 20 % of max(P, positions) = 60 000) and as
    // liquidity at once
    assert_eq!(p.moved, Amount(12_000));
    let released: u128 = p.ops.iter().map(|o| o.amount.0).sum();
    assert_eq!(p.forecast.available_1d, p.forecast.available_now + released as i128);
}

#[test]
fn success_whole_position_exits_take_each_position_whole() {
    // TON's nominator pool: `w` withdraws the nominator's whole position
    let held = vec![
        pos("v0", StakeState::Active, 30_000, None),
        pos("v3", StakeState::Active, 25_000, None),
        pos("v3", StakeState::Activating, 5_000, None),
    ];
    let mut partial = Ctx::new(2);
    let split = partial.plan(t0(), 50_000, &[], &held, 0);
    assert!(
        split
            .ops
            .iter()
            .any(|o| o.kind == OpKind::Undelegate && o.amount.0 < 30_000),
        "without the flag the planner takes part of a position: {:?}",
        split.ops
    );
    partial.model.whole_position_exits = true;
    let whole = partial.plan(t0(), 50_000, &[], &held, 0);
    let und: Vec<_> = whole.ops.iter().filter(|o| o.kind == OpKind::Undelegate).collect();
    assert_eq!(und.len(), 1, "one whole position covers the need: {:?}", whole.ops);
    assert_eq!(und[0].validator, "v3", "worst first: {:?}", whole.ops);
    assert_eq!(
        und[0].amount,
        Amount(30_000),
        "active and pending leave together: {:?}",
        whole.ops
    );
}

#[test]
fn success_moves_are_whole_stake_units() {
    // TRON: votes are whole TRX, so stake moves in multiples of the chain's unit
    let held = vec![
        pos("v0", StakeState::Active, 30_000, None),
        pos("v3", StakeState::Active, 30_000, None),
    ];
    for (p_total, positions) in [(100_777, vec![]), (50_333, held)] {
        let mut c = Ctx::new(14);
        // an odd move cap (3 333 bps) so the capped amounts are not round either
        c.token.buffer.max_move_per_epoch_bps = 3_333;
        let odd = c.plan(t0(), p_total, &[], &positions, 0);
        assert!(
            odd.ops.iter().any(|o| o.amount.0 % 1_000 != 0),
            "with a unit of 1 some move is not whole thousands: {:?}",
            odd.ops
        );
        c.model.stake_unit = Amount(1_000);
        let whole = c.plan(t0(), p_total, &[], &positions, 0);
        assert_eq!(whole.ops.len(), odd.ops.len());
        for (w, o) in whole.ops.iter().zip(&odd.ops) {
            assert_eq!((w.kind, &w.validator), (o.kind, &o.validator));
            assert_eq!(w.amount.0, o.amount.0 / 1_000 * 1_000, "rounded down to the unit");
        }
    }
}

#[test]
fn success_earns_in_custody_plans_no_delegation() {
    // ApeChain: the custody balance earns by itself
    let mut c = Ctx::new(0);
    c.model.earns_in_custody = true;
    let p = c.plan(t0(), 100_000, &[], &[], 0);
    assert!(p.ops.is_empty(), "{:?}", p.ops);
    assert!(
        p.notes.iter().any(|n| n.contains("nothing to delegate")),
        "{:?}",
        p.notes
    );
    assert_eq!(p.forecast.available_now, 100_000);
    assert!(p.alerts.is_empty(), "{:?}", p.alerts);
}

#[test]
fn success_withdrawal_wave_raises_shortfall_alert_with_exit_eta() {
    let c = Ctx::new(7);
    let held = vec![
        pos("v0", StakeState::Active, 45_000, None),
        pos("v1", StakeState::Active, 45_000, None),
    ];
    // a wave took P from 100 000 to 60 000: liquid = 60 000 − 90 000 = −30 000.
    let hist = [Amount(100_000), Amount(100_000), Amount(60_000)];
    let p = c.plan(t0(), 60_000, &hist, &held, 0);
    let alert = p
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::LiquidityShortfall)
        .expect("alert");
    assert_eq!(alert.shortfall, Amount(30_000));
    // the cap (20 % of the pool max(P, positions) = 90 000: 18 000) releases 18 000 now,
    // due in 7 days; the remaining 12 000 starts unbonding at the next epoch.
    let expected = epoch(t0()).boundary_after(1).checked_add_secs(7 * DAY).unwrap();
    assert_eq!(alert.exit_eta, Some(expected));
    assert!(alert.message.contains("exit ETA"));
    // with the whole shortfall unbonding already, the ETA is its completion
    let eta = t0().checked_add_secs(3 * DAY).unwrap();
    let held = vec![
        pos("v0", StakeState::Active, 60_000, None),
        pos("v1", StakeState::Deactivating, 30_000, Some(eta)),
    ];
    let p = c.plan(t0(), 60_000, &hist, &held, 0);
    let alert = p
        .alerts
        .iter()
        .find(|a| a.kind == AlertKind::LiquidityShortfall)
        .expect("alert");
    assert_eq!(alert.exit_eta, Some(eta));
    // the 7-day window of outflows (40 000 · 1.5) makes the target buffer all of P, so the
    // plan also undelegates the capped 18 000, due in 7 days.
    assert_eq!(p.buffer.target_buffer, Amount(60_000));
    assert_eq!(p.forecast.available_1d, -30_000);
    assert_eq!(p.forecast.available_7d, 18_000);
}

#[test]
fn success_plan_id_is_deterministic_and_keys_unique() {
    let c = Ctx::new(7);
    let a = c.plan(t0(), 100_000, &[], &[], 0);
    let b = c.plan(t0(), 100_000, &[], &[], 0);
    assert_eq!(a, b);
    let keys: std::collections::BTreeSet<_> = a.ops.iter().map(|o| o.idempotency_key.clone()).collect();
    assert_eq!(keys.len(), a.ops.len());
    let other = c.plan(t0(), 100_001, &[], &[], 0);
    assert_ne!(a.plan_id, other.plan_id);
}

#[test]
fn success_move_cap_counts_earlier_moves() {
    let c = Ctx::new(7);
    let p = c.plan(t0(), 100_000, &[], &[], 15_000);
    assert_eq!(p.moved, Amount(5_000));
    let p = c.plan(t0(), 100_000, &[], &[], 20_000);
    assert!(p.ops.is_empty());
}

#[test]
fn fail_frozen_plans_nothing() {
    let c = Ctx::new(7);
    let mut inputs_token = c.token.clone();
    inputs_token.symbol = "TST".into();
    let p = plan(&PlanInputs {
        token: &inputs_token,
        model: &c.model,
        epoch: epoch(t0()),
        now: t0(),
        custodial_total: Amount(100_000),
        total_eligible: Amount(100_000),
        daily_totals: &[],
        positions: &[],
        validators: &c.validators,
        moved_this_epoch: Amount::ZERO,
        ops_this_epoch: 0,
        claimable: &[],
        last_claim: None,
        frozen: Some("drift on v1".into()),
        spendable: None,
    })
    .unwrap();
    assert!(p.ops.is_empty());
    assert_eq!(p.alerts[0].kind, AlertKind::Frozen);
}

/// A tiny deterministic chain: applies plans at once, activates at the next epoch,
/// releases unbonding at its ETA.
struct Chain {
    positions: Vec<Position>,
}

impl Chain {
    fn apply(&mut self, plan: &TreasuryPlan, model: &LiquidityModel, now: Timestamp) {
        for op in &plan.ops {
            match op.kind {
                OpKind::Delegate => self
                    .positions
                    .push(pos(&op.validator, StakeState::Activating, op.amount.0, None)),
                OpKind::Undelegate => {
                    let mut left = op.amount.0;
                    for p in self.positions.iter_mut().filter(|p| {
                        p.validator == op.validator && matches!(p.state, StakeState::Active | StakeState::Activating)
                    }) {
                        let take = left.min(p.amount.0);
                        p.amount.0 -= take;
                        left -= take;
                    }
                    assert_eq!(left, 0, "undelegated more than held: {op:?}");
                    let eta = model.unbonding_eta(now, &epoch(now));
                    self.positions
                        .push(pos(&op.validator, StakeState::Deactivating, op.amount.0, Some(eta)));
                }
                OpKind::Withdraw => {
                    let i = self
                        .positions
                        .iter()
                        .position(|p| {
                            p.validator == op.validator && p.state == StakeState::Withdrawable && p.amount == op.amount
                        })
                        .expect("withdrawable");
                    self.positions.remove(i);
                }
                OpKind::Claim => {}
            }
        }
        self.positions.retain(|p| !p.amount.is_zero());
    }

    fn tick(&mut self, now: Timestamp) {
        for p in &mut self.positions {
            match p.state {
                StakeState::Activating => p.state = StakeState::Active,
                StakeState::Deactivating if p.eta.is_some_and(|e| e <= now) => p.state = StakeState::Withdrawable,
                _ => {}
            }
        }
    }
}

fn amounts(v: &[u128]) -> Vec<Amount> {
    v.iter().copied().map(Amount).collect()
}

#[test]
fn success_draw_stake_takes_whole_accounts_and_splits_one() {
    let min = Amount(10);
    // exact account first, then a split of the smallest account that keeps min
    assert_eq!(
        draw_stake(&amounts(&[30, 12, 25]), Amount(12), min),
        Some(vec![(1, Amount(12))])
    );
    assert_eq!(
        draw_stake(&amounts(&[30, 12, 25]), Amount(15), min),
        Some(vec![(2, Amount(15))])
    );
    // whole accounts smallest first, the rest split off the next
    assert_eq!(
        draw_stake(&amounts(&[12, 11, 40]), Amount(33), min),
        Some(vec![(1, Amount(11)), (0, Amount(12)), (2, Amount(10))])
    );
    // no minimum (withdrawals): any amount up to the total
    assert_eq!(
        draw_stake(&amounts(&[5, 7]), Amount(6), Amount::ZERO),
        Some(vec![(1, Amount(6))])
    );
}

#[test]
fn fail_draw_stake_never_leaves_or_splits_off_dust() {
    let min = Amount(10);
    // the TON demo: 10 000 out of a 10 741.5 position would leave 741.5 below the minimum
    assert_eq!(
        draw_stake(&amounts(&[10_741, 15_000]), Amount(10_000), Amount(10_000)),
        None
    );
    assert_eq!(draw_stake(&amounts(&[15]), Amount(8), min), None, "splits off 8 < min");
    assert_eq!(draw_stake(&amounts(&[15]), Amount(10), min), None, "leaves 5 < min");
    assert_eq!(draw_stake(&amounts(&[15]), Amount(16), min), None, "more than held");
    assert_eq!(draw_stake(&amounts(&[15]), Amount::ZERO, min), None);
}

/// The TON demo's refusal: the plan must undelegate what the chain can draw from its stake
/// accounts, not only what leaves the validator's total above the minimum.
#[test]
fn success_undelegation_respects_each_stake_account_minimum() {
    let mut c = Ctx::new(7);
    c.model.min_delegation = Amount(10_000);
    let acct = |v: &str, n: u32, amount: u128| Position {
        account: Some(format!("{v}-{n}")),
        ..pos(v, StakeState::Active, amount, None)
    };
    // v3 (worst) holds two accounts; every draw from them must keep 10 000 on both sides
    let held = vec![acct("v0", 0, 60_000), acct("v3", 0, 10_741), acct("v3", 1, 15_000)];
    let p = c.plan(t0(), 60_000, &[], &held, 0);
    let und: Vec<_> = p.ops.iter().filter(|o| o.kind == OpKind::Undelegate).collect();
    assert!(!und.is_empty(), "{:?}", p.ops);
    for o in und {
        let accts: Vec<Amount> = held
            .iter()
            .filter(|h| h.validator == o.validator)
            .map(|h| h.amount)
            .collect();
        assert!(
            draw_stake(&accts, o.amount, Amount(10_000)).is_some(),
            "{} from {:?} at {} leaves dust",
            o.amount,
            accts,
            o.validator
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever stake accounts a validator holds, every undelegation planned from them is
    /// one the chain can draw (whole accounts, at most one split, each part ≥ the minimum).
    #[test]
    fn prop_planned_undelegations_are_drawable(
        accounts in proptest::collection::vec((0usize..4, 10_000u128..40_000), 1..10),
        p in 1_000u128..150_000,
    ) {
        let mut c = Ctx::new(7);
        c.model.min_delegation = Amount(10_000);
        let held: Vec<Position> = accounts
            .iter()
            .enumerate()
            .map(|(n, (v, amount))| Position {
                account: Some(format!("a{n}")),
                ..pos(&format!("v{v}"), StakeState::Active, *amount, None)
            })
            .collect();
        let plan = c.plan(t0(), p, &[], &held, 0);
        for o in plan.ops.iter().filter(|o| o.kind == OpKind::Undelegate) {
            let accts: Vec<Amount> = held.iter().filter(|h| h.validator == o.validator).map(|h| h.amount).collect();
            prop_assert!(draw_stake(&accts, o.amount, Amount(10_000)).is_some(), "{} from {:?}", o.amount, accts);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Under a seeded random history of deposits, withdrawals and withdrawal waves, every
    /// plan respects the move cap and never undelegates more than is held; and once flows
    /// stop and the plans settle, liquid funds are at or above the target buffer and the
    /// stake is within the watermarks.
    #[test]
    fn prop_buffer_at_target_after_plans_settle(seed in any::<u64>(), unbonding_days in 1u64..15, days in 5usize..40) {
        let c = Ctx::new(unbonding_days);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut chain = Chain { positions: vec![] };
        let mut p: u128 = rng.gen_range(50_000..1_000_000);
        let mut history = vec![Amount(p)];
        let mut now = t0();
        for _ in 0..days {
            let change: i128 = if rng.gen_bool(0.1) {
                -(p as i128) * rng.gen_range(20..60) / 100 // a withdrawal wave
            } else {
                (p as i128) * rng.gen_range(-8..10) / 100
            };
            p = (p as i128 + change).max(1_000) as u128;
            history.push(Amount(p));
            let plan = c.plan(now, p, &history, &chain.positions, 0);
            let pool = p.max(StateTotals::of(&chain.positions).unwrap().total().unwrap().0);
            let cap = pool * u128::from(c.token.buffer.max_move_per_epoch_bps) / 10_000;
            prop_assert!(plan.moved.0 <= cap, "moved {} > cap {cap}", plan.moved);
            chain.apply(&plan, &c.model, now);
            now = now.checked_add_secs(DAY).unwrap();
            chain.tick(now);
        }
        // flows stop: plan once per epoch until the plans settle.
        let mut last = None;
        for _ in 0..200 {
            let plan = c.plan(now, p, &history, &chain.positions, 0);
            let settled = plan.ops.is_empty() && !chain.positions.iter().any(|x| matches!(x.state, StakeState::Deactivating | StakeState::Activating));
            chain.apply(&plan, &c.model, now);
            if settled {
                last = Some(plan);
                break;
            }
            now = now.checked_add_secs(DAY).unwrap();
            chain.tick(now);
        }
        let plan = last.expect("plans settle within 200 epochs");
        let totals = StateTotals::of(&chain.positions).unwrap();
        let liquid = signed(Amount(p)).unwrap() - signed(totals.total().unwrap()).unwrap();
        prop_assert!(liquid >= signed(plan.buffer.target_buffer).unwrap(), "liquid {liquid} < target {}", plan.buffer.target_buffer);
        let high = plan.buffer.target_staked.0 * u128::from(10_000 + c.token.buffer.high_watermark_bps) / 10_000;
        prop_assert!(totals.committed().unwrap().0 <= high);
        prop_assert!(plan.alerts.iter().all(|a| a.kind != AlertKind::LiquidityShortfall));
    }
}
