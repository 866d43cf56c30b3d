//! The treasury planner: from the pool's numbers and the chain's positions to an ordered
//! list of stake operations with reasons, a liquidity forecast and alerts.
//!
//! ```text
//!  P, Σe, history of P ──▶ buffer::buffer_target ──▶ target_buffer, target_staked
//!  positions ──▶ StateTotals (activating, active, deactivating, withdrawable)
//!  1. withdraw every withdrawable position            (frees liquidity)
//!  2. claim rewards where the chain needs a claim     (claim cadence respected)
//!  3. committed < target·(1 − low):  delegate up to target, within liquid − target_buffer
//!     committed > target·(1 + high): undelegate down to target, worst validators first
//!     otherwise: undelegate from deselected validators only (rebalancing)
//!     (instant-exit chains such as the AXS pool: one withdraw from the active stake)
//!     earns-in-custody chains (ApeChain): no delegation at all, only step 2 (the
//!     chain's yield opt-in, when custody is not earning)
//!     all moves ≤ max_move_per_epoch · max(P, Σ positions) − moved this epoch;
//!     each ≥ min_delegation
//!  4. forecast (now, 1 d, 7 d, 21 d) with the planned undelegations at their ETA
//!  5. alerts: liquid < 0 → LiquidityShortfall with exit ETA; < target → BufferBelowTarget
//! ```
//!
//! The plan id is a hash of the token, the epoch and the operations, so the same state
//! gives the same id, and each operation's idempotency key is derived from it: executing
//! the same plan twice can never act twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::amount::Amount;
use crate::buffer::{buffer_target, exit_eta, forecast, signed, unbonding_schedule, BufferTarget, Forecast};
use crate::error::Result;
use crate::position::{draw_stake, EpochInfo, LiquidityModel, Position, StakeState, StateTotals};
use crate::time::Timestamp;
use crate::token::{TokenConfig, BPS_DENOMINATOR};
use crate::validator::{select, ValidatorCandidate};

/// The validator field of a claim that takes every validator's rewards at once.
pub const ALL_VALIDATORS: &str = "*";

/// A stake operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum OpKind {
    /// Delegate from custody to a validator.
    Delegate,
    /// Start unbonding from a validator.
    Undelegate,
    /// Move completed unbonding back to custody.
    Withdraw,
    /// Claim accrued rewards (chains without auto-compounding).
    Claim,
}

impl OpKind {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            OpKind::Delegate => "delegate",
            OpKind::Undelegate => "undelegate",
            OpKind::Withdraw => "withdraw",
            OpKind::Claim => "claim",
        }
    }

    /// True for the kinds counted against the per-epoch move cap: delegations and
    /// undelegations, and on an instant-exit chain the withdrawal that replaces the
    /// undelegation.
    pub fn moves_stake(self, instant_exit: bool) -> bool {
        self == OpKind::Delegate || self.releases_stake(instant_exit)
    }

    /// True for the kind that releases active stake: an undelegation, or on an
    /// instant-exit chain (no unbonding) the withdrawal that replaces it.
    pub fn releases_stake(self, instant_exit: bool) -> bool {
        self == OpKind::Undelegate || (instant_exit && self == OpKind::Withdraw)
    }

    /// Parses [`OpKind::as_str`]'s output.
    pub fn parse(s: &str) -> Option<OpKind> {
        Some(match s {
            "delegate" => OpKind::Delegate,
            "undelegate" => OpKind::Undelegate,
            "withdraw" => OpKind::Withdraw,
            "claim" => OpKind::Claim,
            _ => return None,
        })
    }
}

/// One operation of a plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedOp {
    /// Position in the plan, from 0.
    pub seq: u32,
    /// What to do.
    pub kind: OpKind,
    /// With which validator.
    pub validator: String,
    /// How much, base units (for claims: the amount expected).
    pub amount: Amount,
    /// Why.
    pub reason: String,
    /// `sha256(plan_id | seq)`, hex: the journal's key for this operation.
    pub idempotency_key: String,
}

/// Kinds of treasury alerts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertKind {
    /// Withdrawals exceed what is liquid: users wait until the exit ETA.
    LiquidityShortfall,
    /// Liquid funds are below the target buffer.
    BufferBelowTarget,
    /// Moves are frozen (unacknowledged reconciliation drift).
    Frozen,
}

impl AlertKind {
    /// Snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::LiquidityShortfall => "liquidity_shortfall",
            AlertKind::BufferBelowTarget => "buffer_below_target",
            AlertKind::Frozen => "frozen",
        }
    }
}

/// An alert raised by the planner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanAlert {
    /// Kind.
    pub kind: AlertKind,
    /// Missing amount, base units.
    pub shortfall: Amount,
    /// When enough unbonding completes (None: not reachable with the moves allowed).
    pub exit_eta: Option<Timestamp>,
    /// Human message.
    pub message: String,
}

/// Everything the planner needs about one token, at one instant.
#[derive(Debug, Clone)]
pub struct PlanInputs<'a> {
    /// The token and its policies.
    pub token: &'a TokenConfig,
    /// The chain's liquidity model.
    pub model: &'a LiquidityModel,
    /// The chain's current epoch.
    pub epoch: EpochInfo,
    /// Now.
    pub now: Timestamp,
    /// Custodial total P (Σ users' balances), base units.
    pub custodial_total: Amount,
    /// Σ eligible of the last closed day, base units.
    pub total_eligible: Amount,
    /// Daily custodial totals, oldest first (net-outflow history).
    pub daily_totals: &'a [Amount],
    /// Positions on chain.
    pub positions: &'a [Position],
    /// Validator candidates.
    pub validators: &'a [ValidatorCandidate],
    /// Stake already moved this epoch (delegated + undelegated), base units.
    pub moved_this_epoch: Amount,
    /// Operations already sent this epoch.
    pub ops_this_epoch: u32,
    /// Claimable rewards per validator (claim chains), base units.
    pub claimable: &'a [(String, Amount)],
    /// Last successful claim, for the claim cadence.
    pub last_claim: Option<Timestamp>,
    /// Why moves are frozen, if they are.
    pub frozen: Option<String>,
    /// The treasury account's spendable balance on chain, base units (delegations never
    /// ask for more; `None` when the chain cannot tell).
    pub spendable: Option<Amount>,
}

/// The plan for one token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreasuryPlan {
    /// Content hash (hex, 32 chars).
    pub plan_id: String,
    /// Token symbol.
    pub token: String,
    /// The chain epoch the plan is for.
    pub epoch: u64,
    /// When it was computed.
    pub now: Timestamp,
    /// P, base units.
    pub custodial_total: Amount,
    /// Σe, base units.
    pub total_eligible: Amount,
    /// Buffer targets.
    pub buffer: BufferTarget,
    /// Position totals by state.
    pub totals: StateTotals,
    /// Operations in order.
    pub ops: Vec<PlannedOp>,
    /// Liquidity forecast including the planned undelegations.
    pub forecast: Forecast,
    /// Alerts.
    pub alerts: Vec<PlanAlert>,
    /// Stake moved by the plan (delegate + undelegate), base units.
    pub moved: Amount,
    /// True when `moved` exceeds the approval threshold.
    pub needs_approval: bool,
    /// Remarks (why something was not done).
    pub notes: Vec<String>,
}

/// Stake that may move per epoch: `max_move_per_epoch` of the pool's size
/// `max(P, Σ positions)`, so the cap does not shrink when a withdrawal wave empties P
/// while the stake is still out.
fn move_cap(inp: &PlanInputs<'_>, totals: &StateTotals) -> Result<Amount> {
    let pool = inp.custodial_total.max(totals.total()?);
    bps_of(pool, inp.token.buffer.max_move_per_epoch_bps, "move cap")
}

fn bps_of(a: Amount, bps: u32, what: &'static str) -> Result<Amount> {
    a.mul_div_floor(u128::from(bps), u128::from(BPS_DENOMINATOR), what)
}

/// Computes the plan. Pure: the same inputs give the same plan, byte for byte.
pub fn plan(inp: &PlanInputs<'_>) -> Result<TreasuryPlan> {
    let t = inp.token;
    let totals = StateTotals::of(inp.positions)?;
    let committed = totals.committed()?;
    let buffer = buffer_target(
        inp.custodial_total,
        inp.total_eligible,
        inp.daily_totals,
        inp.model.unbonding_period_secs,
        &t.buffer,
    )?;
    let liquid_now = signed(inp.custodial_total)? - signed(totals.total()?)?;
    let mut draft: Vec<(OpKind, String, Amount, String)> = Vec::new();
    let mut notes = Vec::new();
    let mut alerts = Vec::new();
    if let Some(why) = &inp.frozen {
        alerts.push(PlanAlert {
            kind: AlertKind::Frozen,
            shortfall: Amount::ZERO,
            exit_eta: None,
            message: format!("moves frozen for {}: {why}", t.symbol),
        });
    } else if inp.model.earns_in_custody {
        // only a claim can be due: the chain's opt-in when custody is not earning
        plan_withdrawals_and_claims(inp, &mut draft);
        notes.push(format!(
            "{} earns in custody (the chain pays every unit held): nothing to delegate",
            t.symbol
        ));
    } else {
        plan_withdrawals_and_claims(inp, &mut draft);
        let cap = move_cap(inp, &totals)?;
        let budget = cap.saturating_sub(inp.moved_this_epoch);
        plan_moves(
            inp,
            &buffer,
            committed,
            liquid_now + signed(totals.withdrawable)?,
            budget,
            &mut draft,
            &mut notes,
        )?;
    }
    let max_ops = inp.model.max_operations_per_epoch.saturating_sub(inp.ops_this_epoch) as usize;
    if draft.len() > max_ops {
        notes.push(format!(
            "{} operations deferred: at most {} per epoch",
            draft.len() - max_ops,
            inp.model.max_operations_per_epoch
        ));
        draft.truncate(max_ops);
    }
    let eta = inp.model.unbonding_eta(inp.now, &inp.epoch);
    let planned: Vec<(Timestamp, Amount)> = draft
        .iter()
        .filter(|d| d.0.releases_stake(inp.model.instant_exit))
        .map(|d| (eta, d.2))
        .collect();
    let schedule = unbonding_schedule(inp.positions, &planned);
    let fc = forecast(liquid_now, totals.withdrawable, &schedule, inp.now)?;
    let planned_out = Amount::checked_sum(planned.iter().map(|(_, a)| *a), "planned undelegations")?;
    raise_liquidity_alerts(inp, &buffer, &fc, &schedule, planned_out, &mut alerts)?;
    let moved = Amount::checked_sum(
        draft
            .iter()
            .filter(|d| d.0.moves_stake(inp.model.instant_exit))
            .map(|d| d.2),
        "moved",
    )?;
    let threshold = bps_of(
        inp.custodial_total,
        t.buffer.approval_threshold_bps,
        "approval threshold",
    )?;
    let plan_id = plan_id(inp, &draft);
    let ops = draft
        .into_iter()
        .enumerate()
        .map(|(i, (kind, validator, amount, reason))| PlannedOp {
            seq: i as u32,
            kind,
            idempotency_key: op_key(&plan_id, i as u32),
            validator,
            amount,
            reason,
        })
        .collect();
    Ok(TreasuryPlan {
        plan_id,
        token: t.symbol.clone(),
        epoch: inp.epoch.index,
        now: inp.now,
        custodial_total: inp.custodial_total,
        total_eligible: inp.total_eligible,
        buffer,
        totals,
        ops,
        forecast: fc,
        alerts,
        moved,
        needs_approval: moved > threshold,
        notes,
    })
}

fn plan_withdrawals_and_claims(inp: &PlanInputs<'_>, draft: &mut Vec<(OpKind, String, Amount, String)>) {
    for p in inp
        .positions
        .iter()
        .filter(|p| p.state == StakeState::Withdrawable && !p.amount.is_zero())
    {
        draft.push((
            OpKind::Withdraw,
            p.validator.clone(),
            p.amount,
            "unbonding complete: back to custody".into(),
        ));
    }
    if inp.model.rewards_auto_compound {
        return;
    }
    let cadence_ok = inp.last_claim.is_none_or(|last| {
        inp.now.0.saturating_sub(last.0)
            >= i64::try_from(inp.model.claim_cadence_secs)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000_000)
    });
    if !cadence_ok {
        return;
    }
    let accrued: Vec<&(String, Amount)> = inp.claimable.iter().filter(|(_, a)| !a.is_zero()).collect();
    if inp.model.claim_all_validators {
        if let Ok(total) = Amount::checked_sum(accrued.iter().map(|(_, a)| *a), "claimable") {
            if !total.is_zero() {
                draft.push((
                    OpKind::Claim,
                    ALL_VALIDATORS.into(),
                    total,
                    "rewards accrued: one claim takes them all".into(),
                ));
            }
        }
        return;
    }
    for (v, a) in accrued {
        draft.push((
            OpKind::Claim,
            v.clone(),
            *a,
            "rewards accrued: claim to realize them".into(),
        ));
    }
}

fn current_by_validator(positions: &[Position]) -> Result<BTreeMap<String, Amount>> {
    let mut m: BTreeMap<String, Amount> = BTreeMap::new();
    for p in positions
        .iter()
        .filter(|p| matches!(p.state, StakeState::Activating | StakeState::Active))
    {
        let e = m.entry(p.validator.clone()).or_default();
        *e = e.checked_add(p.amount, "stake per validator")?;
    }
    Ok(m)
}

fn plan_moves(
    inp: &PlanInputs<'_>,
    buffer: &BufferTarget,
    committed: Amount,
    available_now: i128,
    budget: Amount,
    draft: &mut Vec<(OpKind, String, Amount, String)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let t = inp.token;
    let target = buffer.target_staked;
    let low = bps_of(
        target,
        BPS_DENOMINATOR.saturating_sub(t.buffer.low_watermark_bps),
        "low watermark",
    )?;
    let high = bps_of(target, BPS_DENOMINATOR + t.buffer.high_watermark_bps, "high watermark")?;
    let current = current_by_validator(inp.positions)?;
    if committed < low {
        let want = target.checked_sub(committed, "stake wanted")?;
        let room = crate::buffer::unsigned(available_now - signed(buffer.target_buffer)?);
        let wallet = inp.spendable.unwrap_or(Amount::MAX);
        let amount = want.min(room).min(budget).min(wallet);
        if amount < want {
            let why = if amount == wallet {
                "the treasury account's spendable balance on chain"
            } else if amount == room {
                "liquid funds above the target buffer"
            } else {
                "the per-epoch move cap"
            };
            notes.push(format!(
                "delegating {amount} of the {want} base units wanted: limited by {why}"
            ));
        }
        return delegate(inp, &current, committed, amount, draft, notes);
    }
    // The buffer is a floor: when liquid funds, counting unbonding already under way,
    // are below it, release the excess at once; the high watermark only damps churn
    // when the buffer is whole.
    let projected_liquid = available_now + signed(StateTotals::of(inp.positions)?.deactivating)?;
    let breach = projected_liquid < signed(buffer.target_buffer)?;
    if committed > high || (breach && committed > target) {
        let excess = committed.checked_sub(target, "stake to release")?;
        let want = if breach {
            excess.max(inp.model.min_delegation)
        } else {
            excess
        };
        let amount = want.min(budget);
        if amount < want {
            notes.push(format!(
                "undelegating {amount} of the {want} base units wanted: limited by the per-epoch move cap"
            ));
        }
        let why = if breach {
            "buffer below target"
        } else {
            "above target staked"
        };
        return undelegate(inp, &current, target, amount, why, draft);
    }
    // Inside the band: only rebalance away from deselected validators.
    undelegate(inp, &current, committed, budget, "rebalance", draft)
}

fn delegate(
    inp: &PlanInputs<'_>,
    current: &BTreeMap<String, Amount>,
    committed: Amount,
    amount: Amount,
    draft: &mut Vec<(OpKind, String, Amount, String)>,
    notes: &mut Vec<String>,
) -> Result<()> {
    let min = inp.model.min_delegation.max(inp.token.min_delegation).max(Amount(1));
    if amount < min {
        if !amount.is_zero() {
            notes.push(format!("{amount} to delegate is below the minimum delegation {min}"));
        }
        return Ok(());
    }
    let sel = select(
        inp.validators,
        current,
        committed.checked_add(amount, "stake target")?,
        &inp.token.validators,
        inp.token.decimals,
    )?;
    notes.extend(sel.notes);
    let mut left = amount;
    for tgt in sel.targets.iter().filter(|x| x.target > x.current) {
        let a = whole_units(
            tgt.target.checked_sub(tgt.current, "delegation")?.min(left),
            inp.model.stake_unit,
        );
        if a < min {
            continue;
        }
        left = left.checked_sub(a, "delegation budget")?;
        draft.push((
            OpKind::Delegate,
            tgt.validator.clone(),
            a,
            format!("below target staked: {}", tgt.reason),
        ));
    }
    Ok(())
}

fn undelegate(
    inp: &PlanInputs<'_>,
    current: &BTreeMap<String, Amount>,
    total_target: Amount,
    amount: Amount,
    why: &str,
    draft: &mut Vec<(OpKind, String, Amount, String)>,
) -> Result<()> {
    let min = inp.model.min_delegation.max(Amount(1));
    let sel = select(
        inp.validators,
        current,
        total_target,
        &inp.token.validators,
        inp.token.decimals,
    )?;
    let mut over: Vec<_> = sel.targets.iter().filter(|x| x.current > x.target).collect();
    if why == "rebalance" {
        over.retain(|x| x.target.is_zero());
    }
    over.sort_by(|a, b| b.rank.cmp(&a.rank).then(a.validator.cmp(&b.validator)));
    let mut left = amount;
    for tgt in over {
        if left.is_zero() {
            break;
        }
        if inp.model.whole_position_exits {
            // the chain exits whole positions only: take this one whole, even past the
            // need; the surplus returns to the buffer and is delegated again
            left = left.saturating_sub(tgt.current);
            draft.push(exit_op(
                inp,
                tgt.validator.clone(),
                tgt.current,
                format!("{why}: {} (whole position)", tgt.reason),
            ));
            continue;
        }
        let excess = tgt.current.checked_sub(tgt.target, "excess stake")?;
        let mut a = excess.min(left);
        if a < min && left >= min && tgt.current >= min {
            // The chain will not take less than its minimum: release the minimum.
            a = min;
        }
        let remaining = tgt.current.checked_sub(a, "remaining stake")?;
        if !remaining.is_zero() && remaining < min {
            // Never leave dust below the chain minimum: exit fully if the budget allows,
            // else leave exactly the minimum.
            a = if tgt.current <= left {
                tgt.current
            } else {
                tgt.current.checked_sub(min, "stake above the minimum")?
            };
        }
        if a != tgt.current {
            a = whole_units(a, inp.model.stake_unit);
        }
        if let Some(accounts) = accounts_at(inp.positions, &tgt.validator) {
            // one account per delegation: the chain splits at most one, and neither part
            // may fall below its minimum (the TON demo's "would leave 741.5 TON")
            match drawable(&accounts, a, min, left) {
                Some(x) => a = x,
                None => continue,
            }
        }
        if a.is_zero() || (a < min && a != tgt.current) {
            continue;
        }
        left = left.checked_sub(a, "undelegation budget")?;
        draft.push(exit_op(inp, tgt.validator.clone(), a, format!("{why}: {}", tgt.reason)));
    }
    Ok(())
}

/// The operation that releases `amount` from `validator`: a withdrawal on a chain whose
/// exits pay out at once ([`LiquidityModel::instant_exit`]), an undelegation elsewhere.
fn exit_op(inp: &PlanInputs<'_>, validator: String, amount: Amount, why: String) -> (OpKind, String, Amount, String) {
    let kind = if inp.model.instant_exit {
        OpKind::Withdraw
    } else {
        OpKind::Undelegate
    };
    (kind, validator, amount, why)
}

/// The amounts of the earning stake accounts at `validator`, when the chain keeps one
/// account per delegation (every position there names its account); `None` when it keeps
/// one balance per validator.
fn accounts_at(positions: &[Position], validator: &str) -> Option<Vec<Amount>> {
    let at: Vec<&Position> = positions
        .iter()
        .filter(|p| p.validator == validator && matches!(p.state, StakeState::Activating | StakeState::Active))
        .collect();
    (!at.is_empty() && at.iter().all(|p| p.account.is_some())).then(|| at.iter().map(|p| p.amount).collect())
}

/// The undelegation closest to `a` (the smaller on a tie) that the chain can draw from
/// `accounts` ([`draw_stake`]) without exceeding `cap`: `a` itself, or what whole accounts
/// plus one split keeping `min` on both sides give. `None` when nothing can be drawn.
fn drawable(accounts: &[Amount], a: Amount, min: Amount, cap: Amount) -> Option<Amount> {
    if draw_stake(accounts, a, min).is_some() {
        return Some(a);
    }
    // the whole accounts that fit, smallest first (draw_stake's step 3)
    let mut order: Vec<usize> = (0..accounts.len()).collect();
    order.sort_by_key(|&i| (accounts[i], i));
    let (mut whole, mut taken) = (Amount::ZERO, vec![false; accounts.len()]);
    for &i in &order {
        if whole.0.saturating_add(accounts[i].0) <= a.0 {
            whole = Amount(whole.0 + accounts[i].0);
            taken[i] = true;
        }
    }
    let mut candidates = vec![whole, Amount(whole.0.saturating_add(min.0))];
    for &i in order.iter().filter(|&&i| !taken[i]) {
        candidates.push(Amount(whole.0.saturating_add(accounts[i].0)));
        candidates.push(Amount(whole.0.saturating_add(accounts[i].0.saturating_sub(min.0))));
    }
    candidates
        .into_iter()
        .filter(|x| !x.is_zero() && *x <= cap && draw_stake(accounts, *x, min).is_some())
        .min_by_key(|x| (x.0.abs_diff(a.0), x.0))
}

/// `a` rounded down to whole multiples of the chain's stake unit (TRON: whole TRX).
fn whole_units(a: Amount, unit: Amount) -> Amount {
    let unit = unit.0.max(1);
    Amount(a.0 - a.0 % unit)
}

fn raise_liquidity_alerts(
    inp: &PlanInputs<'_>,
    buffer: &BufferTarget,
    fc: &Forecast,
    schedule: &[(Timestamp, Amount)],
    planned_out: Amount,
    alerts: &mut Vec<PlanAlert>,
) -> Result<()> {
    let t = &inp.token.symbol;
    let fmt = |a: Amount| inp.token.format_amount(a);
    let eta_for = |needed: i128| -> Result<Option<Timestamp>> {
        match exit_eta(fc.available_now, needed, schedule, inp.now)? {
            Some(e) => Ok(Some(e)),
            None => projected_eta(inp, fc.available_now, needed, schedule, planned_out),
        }
    };
    let when = |eta: Option<Timestamp>| {
        eta.map(|e| e.to_rfc3339())
            .unwrap_or_else(|| "unknown: not enough stake to release".into())
    };
    if fc.available_now < 0 {
        let shortfall = crate::buffer::unsigned(-fc.available_now);
        let eta = eta_for(0)?;
        alerts.push(PlanAlert {
            kind: AlertKind::LiquidityShortfall,
            shortfall,
            exit_eta: eta,
            message: format!(
                "{t}: withdrawals exceed the liquid buffer by {} {t}; exit ETA {} (when enough unbonding completes)",
                fmt(shortfall),
                when(eta)
            ),
        });
    } else if fc.available_now < signed(buffer.target_buffer)? {
        let need = signed(buffer.target_buffer)?;
        let shortfall = crate::buffer::unsigned(need - fc.available_now);
        let eta = eta_for(need)?;
        alerts.push(PlanAlert {
            kind: AlertKind::BufferBelowTarget,
            shortfall,
            exit_eta: eta,
            message: format!(
                "{t}: liquid {} {t} is below the target buffer {} {t}; back at target {}",
                fmt(crate::buffer::unsigned(fc.available_now)),
                fmt(buffer.target_buffer),
                when(eta)
            ),
        });
    }
    Ok(())
}

/// When what is unbonding is not enough to reach `needed`, project further epochs of
/// undelegation at the per-epoch cap (from the stake this plan leaves committed), each
/// completing one unbonding period after its epoch starts.
fn projected_eta(
    inp: &PlanInputs<'_>,
    available_now: i128,
    needed: i128,
    schedule: &[(Timestamp, Amount)],
    planned_out: Amount,
) -> Result<Option<Timestamp>> {
    let totals = StateTotals::of(inp.positions)?;
    let cap = signed(move_cap(inp, &totals)?)?;
    if cap <= 0 {
        return Ok(None);
    }
    let mut have = available_now;
    for (_, a) in schedule {
        have += signed(*a)?;
    }
    let mut left_to_release = signed(totals.committed()?)? - signed(planned_out)?;
    for k in 1..=10_000u64 {
        if left_to_release <= 0 {
            return Ok(None);
        }
        let step = cap.min(left_to_release);
        have += step;
        left_to_release -= step;
        if have >= needed {
            let start = inp.epoch.boundary_after(k);
            let e = EpochInfo {
                index: inp.epoch.index + k,
                start,
                secs: inp.epoch.secs,
            };
            return Ok(Some(inp.model.unbonding_eta(start, &e)));
        }
    }
    Ok(None)
}

/// Hash of what the plan was computed from (token, epoch, P, Σe, positions) and of its
/// operations: the same state gives the same id; any change gives another.
fn plan_id(inp: &PlanInputs<'_>, draft: &[(OpKind, String, Amount, String)]) -> String {
    let mut h = Sha256::new();
    h.update(format!(
        "{}|{}|{}|{}",
        inp.token.symbol, inp.epoch.index, inp.custodial_total.0, inp.total_eligible.0
    ));
    let mut positions: Vec<String> = inp
        .positions
        .iter()
        .map(|p| {
            format!(
                "{}:{}:{}:{}",
                p.validator,
                p.state.as_str(),
                p.amount.0,
                p.eta.map(|e| e.0).unwrap_or(0)
            )
        })
        .collect();
    positions.sort();
    for p in positions {
        h.update(format!("|{p}"));
    }
    h.update("|ops");
    for (k, v, a, _) in draft {
        h.update(format!("|{}:{v}:{}", k.as_str(), a.0));
    }
    hex::encode(&h.finalize()[..16])
}

/// The idempotency key of operation `seq` of plan `plan_id`: `sha256(plan_id | seq)`.
pub fn op_key(plan_id: &str, seq: u32) -> String {
    let mut h = Sha256::new();
    h.update(format!("{plan_id}|{seq}"));
    hex::encode(&h.finalize()[..16])
}
