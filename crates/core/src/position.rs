//! What the chain says we hold: stake positions per validator and state, the chain's
//! liquidity model and its epoch clock. Adapters fill these; the planner reads them.

use serde::{Deserialize, Serialize};

use crate::amount::Amount;
use crate::time::Timestamp;

/// State of a stake position (Solana's stake-account states generalized).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StakeState {
    /// Delegated, not yet earning (e.g. until the next epoch boundary).
    Activating,
    /// Delegated and earning.
    Active,
    /// Undelegated, unbonding until its ETA.
    Deactivating,
    /// Unbonding complete; a withdraw moves it back to custody.
    Withdrawable,
}

impl StakeState {
    /// Lower-case name (`active`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            StakeState::Activating => "activating",
            StakeState::Active => "active",
            StakeState::Deactivating => "deactivating",
            StakeState::Withdrawable => "withdrawable",
        }
    }

    /// Parses [`StakeState::as_str`]'s output.
    pub fn parse(s: &str) -> Option<StakeState> {
        Some(match s {
            "activating" => StakeState::Activating,
            "active" => StakeState::Active,
            "deactivating" => StakeState::Deactivating,
            "withdrawable" => StakeState::Withdrawable,
            _ => return None,
        })
    }
}

/// One position on chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Validator (vote account, operator address, pool id, …).
    pub validator: String,
    /// State.
    pub state: StakeState,
    /// Amount, base units (principal plus auto-compounded rewards).
    pub amount: Amount,
    /// When an activating position becomes active or a deactivating one withdrawable.
    pub eta: Option<Timestamp>,
    /// The on-chain account holding it (stake account, request id), if any.
    pub account: Option<String>,
}

/// One transaction's effect on the treasury account's balance, read from its receipt.
///
/// A chain whose reward is balance growth with no event of its own (ApeChain's native
/// yield rebases balances) realizes reward as `balance(b1) − balance(b0) − Σ flows` over
/// the flows that landed in `(b0, b1]`; every other transfer in or out must be one of
/// these, or the growth is not reward.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreasuryFlow {
    /// The chain's transaction id (hash).
    pub tx_id: String,
    /// Block (height) it landed in.
    pub block: u64,
    /// The treasury's account nonce it used when the treasury sent it; `None` when another
    /// account sent it.
    pub nonce: Option<u64>,
    /// What it brought to the treasury, base units.
    pub received: Amount,
    /// What it took from the treasury, fees included, base units.
    pub sent: Amount,
}

/// How a chain locks and releases stake, and how its rewards arrive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiquidityModel {
    /// Time from undelegate to withdrawable, seconds (the maximum when epoch-aligned).
    pub unbonding_period_secs: u64,
    /// Epoch (era, cycle, round) length, seconds; 0 when the chain has none.
    pub epoch_secs: u64,
    /// True when unbonding completes at an epoch boundary (Solana, NEAR, Sui, …);
    /// false when it runs by timestamp from the request (BNB, TRON, Cosmos, …).
    pub epoch_aligned: bool,
    /// Epochs until a delegation earns (0 = at once, 1 = from the next epoch).
    pub activation_epochs: u32,
    /// Smallest delegation the chain accepts, base units.
    pub min_delegation: Amount,
    /// True when rewards add to the stake by themselves; false when they must be claimed.
    pub rewards_auto_compound: bool,
    /// For claim chains: the shortest time between two claims, seconds (0 = any time).
    pub claim_cadence_secs: u64,
    /// True when one claim takes the rewards of every validator at once (TRON's
    /// `WithdrawBalance`); false when each validator is claimed on its own (Cosmos
    /// `MsgWithdrawDelegatorReward`).
    pub claim_all_validators: bool,
    /// Most stake operations we send per epoch (a chain limit or our policy).
    pub max_operations_per_epoch: u32,
    /// True when leaving pays out at once, with no unbonding (the AXS staking pool's
    /// `unstake`): the planner releases stake with one [`crate::plan::OpKind::Withdraw`]
    /// from the active position instead of an undelegation followed by a withdrawal.
    #[serde(default)]
    pub instant_exit: bool,
    /// True when every unit held in custody earns by itself (ApeChain's native yield
    /// rebases the custody account's balance): there is nothing to delegate, and the
    /// planner only tracks the buffer.
    #[serde(default)]
    pub earns_in_custody: bool,
    /// The chain's unit of stake, base units: the planner delegates and undelegates whole
    /// multiples of it (TRON's votes are whole TRX, so 1 000 000 sun; java-tron
    /// `VoteWitnessActuator` counts votes × `TRX_PRECISION`). 1 where any amount goes.
    #[serde(default = "one_base_unit")]
    pub stake_unit: Amount,
    /// True when an exit always takes a validator's whole position (TON's nominator
    /// pool: the comment `w` withdraws the nominator's entire `amount` and
    /// `pending_deposit_amount`; ton-blockchain/nominator-pool `pool.fc`
    /// `withdraw_nominator`): the planner undelegates whole positions only, and what it
    /// releases beyond the need returns to the buffer and is delegated again.
    #[serde(default)]
    pub whole_position_exits: bool,
}

fn one_base_unit() -> Amount {
    Amount(1)
}

/// The chain's epoch clock at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochInfo {
    /// Current epoch number (the chain's own).
    pub index: u64,
    /// When it started.
    pub start: Timestamp,
    /// Its length, seconds (0 when the chain has no epochs: then one "epoch" is a day).
    pub secs: u64,
}

impl EpochInfo {
    /// Effective epoch length for planning: the chain's, or one day when it has none.
    pub fn planning_secs(&self) -> u64 {
        if self.secs == 0 {
            86_400
        } else {
            self.secs
        }
    }

    /// Start of the epoch `n` epochs after the current one.
    pub fn boundary_after(&self, n: u64) -> Timestamp {
        let secs = self.planning_secs().saturating_mul(n);
        self.start
            .checked_add_secs(i64::try_from(secs).unwrap_or(i64::MAX))
            .unwrap_or(Timestamp(i64::MAX))
    }
}

impl LiquidityModel {
    /// When an undelegation sent at `now` (in `epoch`) becomes withdrawable.
    ///
    /// Epoch-aligned chains release at the boundary `ceil(unbonding / epoch)` epochs after
    /// the current epoch's start (Solana: the next boundary; NEAR's pool: 4 epochs later);
    /// others release `unbonding_period_secs` after `now`.
    pub fn unbonding_eta(&self, now: Timestamp, epoch: &EpochInfo) -> Timestamp {
        if self.epoch_aligned && epoch.secs > 0 {
            let n = self.unbonding_period_secs.div_ceil(epoch.secs).max(1);
            epoch.boundary_after(n)
        } else {
            now.checked_add_secs(i64::try_from(self.unbonding_period_secs).unwrap_or(i64::MAX))
                .unwrap_or(Timestamp(i64::MAX))
        }
    }
}

/// Position totals by state, base units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateTotals {
    /// Σ activating.
    pub activating: Amount,
    /// Σ active.
    pub active: Amount,
    /// Σ deactivating.
    pub deactivating: Amount,
    /// Σ withdrawable.
    pub withdrawable: Amount,
}

impl StateTotals {
    /// Sums positions by state (checked).
    pub fn of(positions: &[Position]) -> crate::Result<StateTotals> {
        let mut t = StateTotals::default();
        for p in positions {
            let slot = match p.state {
                StakeState::Activating => &mut t.activating,
                StakeState::Active => &mut t.active,
                StakeState::Deactivating => &mut t.deactivating,
                StakeState::Withdrawable => &mut t.withdrawable,
            };
            *slot = slot.checked_add(p.amount, "position totals")?;
        }
        Ok(t)
    }

    /// Stake that is or will be earning: activating + active.
    pub fn committed(&self) -> crate::Result<Amount> {
        self.activating.checked_add(self.active, "committed stake")
    }

    /// Everything still on chain.
    pub fn total(&self) -> crate::Result<Amount> {
        self.committed()?
            .checked_add(self.deactivating, "total positions")?
            .checked_add(self.withdrawable, "total positions")
    }
}

/// How an undelegation of `amount` is drawn from one validator's stake accounts on a chain
/// that keeps one account per delegation (Solana stake accounts, the simulated chains, TON
/// pool tranches) and refuses to leave or split off less than `min` (Solana's
/// `StakeInstruction::Split` needs both halves above the minimum delegation; TON's pools
/// take no deposit below their minimum). `accounts` are the amounts, base units; the
/// answer is (index into `accounts`, amount taken) in the order to apply, or `None` when
/// no draw keeps every part at zero or at least `min`.
///
/// The rule, deterministic so the planner and the chain agree:
///
/// ```text
///  1. one account holding exactly `amount`                      → take it whole
///  2. the smallest account ≥ amount + min (and amount ≥ min)    → split it
///  3. whole accounts, smallest first, while they fit; the rest r
///     split off the smallest untaken account ≥ r + min (r ≥ min)
/// ```
pub fn draw_stake(accounts: &[Amount], amount: Amount, min: Amount) -> Option<Vec<(usize, Amount)>> {
    if amount.is_zero() {
        return None;
    }
    let mut order: Vec<usize> = (0..accounts.len()).collect();
    order.sort_by_key(|&i| (accounts[i], i));
    if let Some(&i) = order.iter().find(|&&i| accounts[i] == amount) {
        return Some(vec![(i, amount)]);
    }
    let splittable = |part: Amount, taken: &[bool]| {
        (part >= min)
            .then(|| {
                order.iter().copied().find(|&i| {
                    !taken[i]
                        && accounts[i]
                            .checked_sub(part, "split")
                            .is_ok_and(|rest| rest >= min && !rest.is_zero())
                })
            })
            .flatten()
    };
    let mut taken = vec![false; accounts.len()];
    if let Some(i) = splittable(amount, &taken) {
        return Some(vec![(i, amount)]);
    }
    let mut draw = Vec::new();
    let mut left = amount;
    for &i in &order {
        if accounts[i] <= left && !accounts[i].is_zero() {
            left = left.checked_sub(accounts[i], "draw").ok()?;
            taken[i] = true;
            draw.push((i, accounts[i]));
        }
        if left.is_zero() {
            return Some(draw);
        }
    }
    let i = splittable(left, &taken)?;
    draw.push((i, left));
    Some(draw)
}
