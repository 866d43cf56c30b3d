//! The staking system Sui and IOTA share, as a pure state machine (no I/O, no clock) for the
//! SUI and IOTA local chains (issue 20): the rules of the `sui_system` package
//! (`staking_pool.move`, `validator_set.move`, `validator.move`; IOTA's `iota_system` is the
//! same code renamed), amounts in the chain's base unit (MIST for SUI, nanos for IOTA; 10^9
//! per coin).
//!
//! ```text
//!  request_add_stake(v, coin)  ≥ MIN_STAKING_THRESHOLD else validator_set::EStakingBelowThreshold
//!                              pool.pending_stake += coin; StakedCoin{activation = epoch + 1}
//!  request_withdraw_stake(s)   before activation: the principal back, no reward
//!                              else pool tokens = principal at the rate of the activation
//!                              epoch; reward = tokens at today's rate − principal (capped by
//!                              the rewards pool); both paid now (no unbonding), the pool's
//!                              balances settled at the boundary
//!  advance_epoch(reward)       each active validator's share by stake; commission
//!                              (commission_rate / 10 000) staked to the validator itself;
//!                              the rest into the pool's rewards (compounds); then pending
//!                              withdrawals and stakes, and the new epoch's exchange rate
//! ```
//!
//! Left out, since a treasury never meets them: fungible staked coins, validator
//! candidacy and removal, tallying-rule slashing, the storage fund's share, and the 10 %
//! voting-power cap (rewards are shared by stake). Every arithmetic step is checked; a
//! step that would abort on chain returns the [`Abort`] the Move module names.

use std::collections::BTreeMap;

/// Smallest stake (and smallest part of a split stake), base units: 1 SUI / 1 IOTA
/// (`staking_pool::MIN_STAKING_THRESHOLD`).
pub const MIN_STAKING_THRESHOLD: u64 = 1_000_000_000;
/// Denominator of commission rates (`validator_set::BASIS_POINT_DENOMINATOR`).
pub const BASIS_POINT_DENOMINATOR: u64 = 10_000;
/// Most validators one system holds (Sui's active set is at most 150).
pub const MAX_VALIDATORS: usize = 1_000;

/// A Move abort: the module and constant names the chain reports, and its code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Abort {
    /// `validator_set::EStakingBelowThreshold` (10): a stake below 1 coin.
    StakingBelowThreshold,
    /// `validator_set::ENotAValidator` (4): no active validator at that address.
    NotAValidator,
    /// `validator_set::ENoPoolFound` (3): the staked coin names no known pool.
    NoPoolFound,
    /// `staking_pool::EDelegationToInactivePool` (10): the pool was deactivated.
    DelegationToInactivePool,
    /// `staking_pool::EStakedSuiBelowThreshold` (18): a split would leave a part below 1 coin.
    StakedBelowThreshold,
    /// `staking_pool::EInsufficientSuiTokenBalance` (3): a split larger than the principal.
    InsufficientBalance,
    /// `validator_set::EValidatorSetEmpty` (13): an epoch change with no validator.
    ValidatorSetEmpty,
    /// An arithmetic overflow (Move aborts with `ARITHMETIC_ERROR`).
    ArithmeticError,
}

impl Abort {
    /// The Move location and constant, as the chain's error names it
    /// (`validator_set::EStakingBelowThreshold`).
    pub fn name(self) -> &'static str {
        match self {
            Abort::StakingBelowThreshold => "validator_set::EStakingBelowThreshold",
            Abort::NotAValidator => "validator_set::ENotAValidator",
            Abort::NoPoolFound => "validator_set::ENoPoolFound",
            Abort::DelegationToInactivePool => "staking_pool::EDelegationToInactivePool",
            Abort::StakedBelowThreshold => "staking_pool::EStakedSuiBelowThreshold",
            Abort::InsufficientBalance => "staking_pool::EInsufficientSuiTokenBalance",
            Abort::ValidatorSetEmpty => "validator_set::EValidatorSetEmpty",
            Abort::ArithmeticError => "ARITHMETIC_ERROR",
        }
    }

    /// The name as IOTA's `iota_system` package spells it: Sui's with `Sui` → `Iota`
    /// (`staking_pool::EStakedIotaBelowThreshold`, `EInsufficientIotaTokenBalance`).
    pub fn iota_name(self) -> String {
        self.name().replace("Sui", "Iota")
    }

    /// The abort code (the constant's value; 4017 is the VM's arithmetic error status).
    pub fn code(self) -> u64 {
        match self {
            Abort::StakingBelowThreshold => 10,
            Abort::NotAValidator => 4,
            Abort::NoPoolFound | Abort::InsufficientBalance => 3,
            Abort::DelegationToInactivePool => 10,
            Abort::StakedBelowThreshold => 18,
            Abort::ValidatorSetEmpty => 13,
            Abort::ArithmeticError => 4017,
        }
    }
}

impl std::fmt::Display for Abort {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MoveAbort({}, {})", self.name(), self.code())
    }
}

impl std::error::Error for Abort {}

/// One validator of a local chain's genesis: its real address, name, commission and stake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSpec {
    /// Its address (`0x…`, 32 bytes).
    pub address: String,
    /// Its name.
    pub name: String,
    /// Commission, basis points.
    pub commission_bps: u64,
    /// Its stake at genesis, base units (MIST, nanos).
    pub stake: u64,
}

/// Reads validators from CSV text with the header `address,name,commission_bps,stake_<coin>`
/// (stake in whole coins, 10^9 base units each); `check_address` says why an address is not
/// one of the chain's.
///
/// # Errors
/// A malformed row, naming its line and field; no validator at all.
pub fn validators_from_csv(
    text: &str,
    check_address: impl Fn(&str) -> std::result::Result<(), String>,
) -> anyhow::Result<Vec<ValidatorSpec>> {
    use anyhow::{bail, Context};
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 4 {
            bail!("validators line {}: {} fields, want 4", n + 1, f.len());
        }
        if let Err(e) = check_address(f[0]) {
            bail!("validators line {}: address {:?}: {e}", n + 1, f[0]);
        }
        let commission_bps = f[2]
            .parse()
            .with_context(|| format!("validators line {}: commission_bps {:?}", n + 1, f[2]))?;
        let stake_coins: u64 = f[3]
            .parse()
            .with_context(|| format!("validators line {}: stake {:?}", n + 1, f[3]))?;
        out.push(ValidatorSpec {
            address: f[0].to_string(),
            name: f[1].to_string(),
            commission_bps,
            stake: stake_coins
                .checked_mul(MIN_STAKING_THRESHOLD)
                .with_context(|| format!("validators line {}: stake overflows u64 base units", n + 1))?,
        });
    }
    if out.is_empty() {
        bail!("no validators");
    }
    Ok(out)
}

/// Reads per-epoch APYs from CSV text with the header `epoch,apy_bps`.
///
/// # Errors
/// A malformed row, naming its line; no row at all.
pub fn apys_from_csv(text: &str) -> anyhow::Result<Vec<u64>> {
    use anyhow::{bail, Context};
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let apy = line
            .split(',')
            .nth(1)
            .with_context(|| format!("apy line {}: no apy_bps", n + 1))?;
        out.push(
            apy.trim()
                .parse()
                .with_context(|| format!("apy line {}: apy_bps {apy:?}", n + 1))?,
        );
    }
    if out.is_empty() {
        bail!("no APYs");
    }
    Ok(out)
}

type Result<T> = std::result::Result<T, Abort>;

fn add(a: u64, b: u64) -> Result<u64> {
    a.checked_add(b).ok_or(Abort::ArithmeticError)
}

fn sub(a: u64, b: u64) -> Result<u64> {
    a.checked_sub(b).ok_or(Abort::ArithmeticError)
}

/// `a × b / c` with a 128-bit product (`staking_pool::mul_div!`); aborts when the result
/// passes u64 or `c` is zero.
fn mul_div(a: u64, b: u64, c: u64) -> Result<u64> {
    if c == 0 {
        return Err(Abort::ArithmeticError);
    }
    u64::try_from(u128::from(a) * u128::from(b) / u128::from(c)).map_err(|_| Abort::ArithmeticError)
}

/// Coins per pool token at the start of an epoch (`PoolTokenExchangeRate`); (0, 0) is 1:1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExchangeRate {
    /// Coins in the pool, base units (`sui_amount`).
    pub coin_amount: u64,
    /// Pool tokens issued (`pool_token_amount`).
    pub pool_token_amount: u64,
}

impl ExchangeRate {
    /// Coins worth `tokens` (`get_sui_amount`).
    ///
    /// # Errors
    /// [`Abort::ArithmeticError`] past u64.
    pub fn coins(self, tokens: u64) -> Result<u64> {
        if self.coin_amount == 0 || self.pool_token_amount == 0 {
            return Ok(tokens);
        }
        mul_div(self.coin_amount, tokens, self.pool_token_amount)
    }

    /// Pool tokens worth `coins` (`get_token_amount`).
    ///
    /// # Errors
    /// [`Abort::ArithmeticError`] past u64.
    pub fn tokens(self, coins: u64) -> Result<u64> {
        if self.coin_amount == 0 || self.pool_token_amount == 0 {
            return Ok(coins);
        }
        mul_div(self.pool_token_amount, coins, self.coin_amount)
    }
}

/// A validator's staking pool (`StakingPool`), amounts in base units.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StakingPool {
    /// Epoch the pool became active.
    pub activation_epoch: u64,
    /// Epoch it was deactivated; `None` while active.
    pub deactivation_epoch: Option<u64>,
    /// Coins in the pool: principals and rewards, settled at boundaries (`sui_balance`).
    pub coin_balance: u64,
    /// Rewards deposited and not yet withdrawn (`rewards_pool`).
    pub rewards_pool: u64,
    /// Pool tokens issued (`pool_token_balance`).
    pub pool_token_balance: u64,
    /// The rate at the start of each epoch since activation.
    pub exchange_rates: BTreeMap<u64, ExchangeRate>,
    /// Stake requested this epoch, active from the next (`pending_stake`).
    pub pending_stake: u64,
    /// Coins withdrawn this epoch, principal and reward (`pending_total_sui_withdraw`).
    pub pending_total_withdraw: u64,
    /// Pool tokens withdrawn this epoch (`pending_pool_token_withdraw`).
    pub pending_pool_token_withdraw: u64,
}

impl StakingPool {
    /// A pool active from `epoch` (`activate_staking_pool`: the initial rate is 1:1).
    pub fn active_from(epoch: u64) -> StakingPool {
        StakingPool {
            activation_epoch: epoch,
            exchange_rates: BTreeMap::from([(epoch, ExchangeRate::default())]),
            ..StakingPool::default()
        }
    }

    /// The rate in force at `epoch`: the newest entry at or before it, clamped to the
    /// deactivation epoch; 1:1 before activation (`pool_token_exchange_rate_at_epoch`).
    pub fn rate_at(&self, epoch: u64) -> ExchangeRate {
        if epoch < self.activation_epoch {
            return ExchangeRate::default();
        }
        let epoch = self.deactivation_epoch.map_or(epoch, |d| d.min(epoch));
        self.exchange_rates
            .range(..=epoch)
            .next_back()
            .map_or_else(ExchangeRate::default, |(_, r)| *r)
    }

    /// Adds `rewards` to the pool (`deposit_rewards`).
    fn deposit_rewards(&mut self, rewards: u64) -> Result<()> {
        self.coin_balance = add(self.coin_balance, rewards)?;
        self.rewards_pool = add(self.rewards_pool, rewards)?;
        Ok(())
    }

    /// Settles the epoch's withdrawals, then its stakes at the rate they leave, and records
    /// the rate of `new_epoch` (`process_pending_stakes_and_withdraws`).
    fn process_pending(&mut self, new_epoch: u64) -> Result<()> {
        self.settle_withdrawals()?;
        let latest = ExchangeRate {
            coin_amount: self.coin_balance,
            pool_token_amount: self.pool_token_balance,
        };
        self.coin_balance = add(self.coin_balance, self.pending_stake)?;
        self.pool_token_balance = latest.tokens(self.coin_balance)?;
        self.pending_stake = 0;
        let rate = ExchangeRate {
            coin_amount: self.coin_balance,
            pool_token_amount: self.pool_token_balance,
        };
        self.exchange_rates.insert(new_epoch, rate);
        debug_assert_eq!(
            self.rate_at(new_epoch).tokens(self.coin_balance),
            Ok(self.pool_token_balance),
            "check_balance_invariants"
        );
        Ok(())
    }

    fn settle_withdrawals(&mut self) -> Result<()> {
        self.coin_balance = sub(self.coin_balance, self.pending_total_withdraw)?;
        self.pool_token_balance = sub(self.pool_token_balance, self.pending_pool_token_withdraw)?;
        self.pending_total_withdraw = 0;
        self.pending_pool_token_withdraw = 0;
        Ok(())
    }

    /// Pool tokens of `staked` and the reward they carry at `epoch`, capped by the rewards
    /// pool (`withdraw_from_principal` + `withdraw_rewards`).
    fn tokens_and_reward(&self, staked: &StakedCoin, epoch: u64) -> Result<(u64, u64)> {
        let tokens = self.rate_at(staked.stake_activation_epoch).tokens(staked.principal)?;
        let worth = self.rate_at(epoch).coins(tokens)?;
        let reward = worth.saturating_sub(staked.principal).min(self.rewards_pool);
        Ok((tokens, reward))
    }
}

/// A stake object (`StakedSui` / `StakedIota`): one per delegation, owned by the staker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StakedCoin {
    /// Index of the validator whose pool holds it (the pool id).
    pub pool_id: usize,
    /// Epoch from which it earns (the epoch after the request).
    pub stake_activation_epoch: u64,
    /// Coins staked, base units.
    pub principal: u64,
}

impl StakedCoin {
    /// Splits `amount` off into a new object; both parts stay at least
    /// [`MIN_STAKING_THRESHOLD`] (`staking_pool::split`).
    ///
    /// # Errors
    /// [`Abort::InsufficientBalance`] for more than the principal,
    /// [`Abort::StakedBelowThreshold`] when a part would fall below one coin.
    pub fn split(&mut self, amount: u64) -> Result<StakedCoin> {
        let rest = self.principal.checked_sub(amount).ok_or(Abort::InsufficientBalance)?;
        if rest < MIN_STAKING_THRESHOLD || amount < MIN_STAKING_THRESHOLD {
            return Err(Abort::StakedBelowThreshold);
        }
        self.principal = rest;
        Ok(StakedCoin {
            principal: amount,
            ..*self
        })
    }
}

/// What a withdrawal pays (`validator::UnstakingRequestEvent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Withdrawal {
    /// The principal, base units (`principal_amount`).
    pub principal_amount: u64,
    /// The reward, base units (`reward_amount`): the realized reward.
    pub reward_amount: u64,
}

/// An active validator and its pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validator {
    /// Its address (`0x…`).
    pub address: String,
    /// Commission, basis points of its pool's reward (`commission_rate`).
    pub commission_rate_bps: u64,
    /// Its staking pool.
    pub pool: StakingPool,
}

impl Validator {
    /// Its stake: the pool's coins plus what is pending (`total_stake_amount` after the
    /// boundary).
    pub fn stake(&self) -> u64 {
        self.pool.coin_balance.saturating_add(self.pool.pending_stake)
    }
}

/// The validator set and the epoch (`SuiSystemState` / `IotaSystemState`, the staking part).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StakingSystem {
    /// The current epoch.
    pub epoch: u64,
    /// The validators, the pool id being the index; a departed one stays, its pool inactive.
    pub validators: Vec<Validator>,
    /// Pools leaving the active set at the end of this epoch (`pending_removals`).
    pub departing: Vec<usize>,
}

impl StakingSystem {
    /// A system at epoch 0 whose validators (address, commission bps, self-stake in base
    /// units) are active from genesis with their self-stake.
    ///
    /// # Errors
    /// [`Abort::ValidatorSetEmpty`] for none or more than [`MAX_VALIDATORS`];
    /// [`Abort::ArithmeticError`] for a commission above 100 %.
    pub fn genesis(validators: &[(String, u64, u64)]) -> Result<StakingSystem> {
        if validators.is_empty() || validators.len() > MAX_VALIDATORS {
            return Err(Abort::ValidatorSetEmpty);
        }
        let mut out = Vec::with_capacity(validators.len());
        for (address, commission_rate_bps, self_stake) in validators {
            if *commission_rate_bps > BASIS_POINT_DENOMINATOR {
                return Err(Abort::ArithmeticError);
            }
            let mut pool = StakingPool::active_from(0);
            pool.pending_stake = *self_stake;
            pool.process_pending(0)?;
            out.push(Validator {
                address: address.clone(),
                commission_rate_bps: *commission_rate_bps,
                pool,
            });
        }
        Ok(StakingSystem {
            epoch: 0,
            validators: out,
            departing: Vec::new(),
        })
    }

    /// The pool id of the active validator at `address` (a departed validator's pool is
    /// reached only through its stake objects, as `inactive_validators` on chain).
    pub fn pool_of(&self, address: &str) -> Option<usize> {
        self.validators
            .iter()
            .position(|v| v.address == address && v.pool.deactivation_epoch.is_none())
    }

    /// The validator at `address` leaves the active set at the end of this epoch
    /// (`process_validator_departure` → `deactivate_staking_pool(new_epoch)`): its pool's
    /// rate freezes at the new epoch's, it earns nothing more, takes no new stake, and its
    /// stakes are paid out at once on withdrawal.
    ///
    /// # Errors
    /// [`Abort::NotAValidator`] for an address not in the active set.
    pub fn request_remove_validator(&mut self, address: &str) -> Result<()> {
        let pool_id = self.pool_of(address).ok_or(Abort::NotAValidator)?;
        if !self.departing.contains(&pool_id) {
            self.departing.push(pool_id);
        }
        Ok(())
    }

    /// Stakes `amount` with the validator at `address`, earning from the next epoch
    /// (`sui_system::request_add_stake`).
    ///
    /// # Errors
    /// [`Abort::StakingBelowThreshold`] below one coin, [`Abort::NotAValidator`] for an
    /// unknown address, [`Abort::DelegationToInactivePool`] for a deactivated pool; nothing
    /// changes on an abort.
    pub fn request_add_stake(&mut self, address: &str, amount: u64) -> Result<StakedCoin> {
        if amount < MIN_STAKING_THRESHOLD {
            return Err(Abort::StakingBelowThreshold);
        }
        let pool_id = self.pool_of(address).ok_or(Abort::NotAValidator)?;
        let pool = &mut self.validators[pool_id].pool;
        if pool.deactivation_epoch.is_some() {
            return Err(Abort::DelegationToInactivePool);
        }
        pool.pending_stake = add(pool.pending_stake, amount)?;
        Ok(StakedCoin {
            pool_id,
            stake_activation_epoch: self.epoch + 1,
            principal: amount,
        })
    }

    /// Withdraws `staked` with its reward, paid in this transaction
    /// (`sui_system::request_withdraw_stake`): before its activation epoch the principal
    /// alone, taken back from the pending stake.
    ///
    /// # Errors
    /// [`Abort::NoPoolFound`] for an unknown pool; [`Abort::ArithmeticError`]; nothing
    /// changes on an abort.
    pub fn request_withdraw_stake(&mut self, staked: StakedCoin) -> Result<Withdrawal> {
        let epoch = self.epoch;
        let pool = &mut self.validators.get_mut(staked.pool_id).ok_or(Abort::NoPoolFound)?.pool;
        if staked.stake_activation_epoch > epoch {
            pool.pending_stake = sub(pool.pending_stake, staked.principal)?;
            return Ok(Withdrawal {
                principal_amount: staked.principal,
                reward_amount: 0,
            });
        }
        let (tokens, reward) = pool.tokens_and_reward(&staked, epoch)?;
        let total = add(staked.principal, reward)?;
        let pending_total = add(pool.pending_total_withdraw, total)?;
        let pending_tokens = add(pool.pending_pool_token_withdraw, tokens)?;
        pool.rewards_pool -= reward; // reward ≤ rewards_pool (tokens_and_reward caps it)
        pool.pending_total_withdraw = pending_total;
        pool.pending_pool_token_withdraw = pending_tokens;
        if pool.deactivation_epoch.is_some() {
            pool.settle_withdrawals()?;
        }
        Ok(Withdrawal {
            principal_amount: staked.principal,
            reward_amount: reward,
        })
    }

    /// Principal plus the reward `staked` would withdraw now, for display
    /// (`calculate_rewards`); the principal alone before activation.
    ///
    /// # Errors
    /// [`Abort::NoPoolFound`]; [`Abort::ArithmeticError`].
    pub fn calculate_rewards(&self, staked: &StakedCoin) -> Result<u64> {
        let pool = &self.validators.get(staked.pool_id).ok_or(Abort::NoPoolFound)?.pool;
        if staked.stake_activation_epoch > self.epoch {
            return Ok(staked.principal);
        }
        let (_, reward) = pool.tokens_and_reward(staked, self.epoch)?;
        add(staked.principal, reward)
    }

    /// The reward of one epoch of `epoch_ms` at a network rate of `apy_bps` a year (simple,
    /// 365 days) on the coins of the active pools, base units: what the local chains mint
    /// at each epoch change.
    ///
    /// # Errors
    /// [`Abort::ArithmeticError`] for a zero epoch length or a reward past u64.
    pub fn epoch_reward(&self, apy_bps: u64, epoch_ms: u64) -> Result<u64> {
        if epoch_ms == 0 {
            return Err(Abort::ArithmeticError);
        }
        let staked: u128 = self
            .validators
            .iter()
            .filter(|v| v.pool.deactivation_epoch.is_none())
            .map(|v| u128::from(v.pool.coin_balance))
            .sum();
        let epochs_per_year = u128::from(365 * 86_400_000 / epoch_ms).max(1);
        u64::try_from(staked * u128::from(apy_bps) / u128::from(BASIS_POINT_DENOMINATOR) / epochs_per_year)
            .map_err(|_| Abort::ArithmeticError)
    }

    /// Ends the epoch with `staking_reward` base units to share (`advance_epoch` with
    /// `distribute_reward`): each active validator's part by its pool's coins; its
    /// commission staked to itself from the new epoch; the rest into its pool; then every
    /// pool settles and records the new epoch's rate. Returns the commission stakes, one
    /// per validator that earned any (they belong to the validators).
    ///
    /// # Errors
    /// [`Abort::ArithmeticError`]; the system is unchanged on an abort.
    pub fn advance_epoch(&mut self, staking_reward: u64) -> Result<Vec<StakedCoin>> {
        let mut next = self.clone();
        let total: u64 = next
            .validators
            .iter()
            .filter(|v| v.pool.deactivation_epoch.is_none())
            .try_fold(0u64, |acc, v| add(acc, v.pool.coin_balance))?;
        let mut commissions = Vec::new();
        for (pool_id, v) in next.validators.iter_mut().enumerate() {
            if v.pool.deactivation_epoch.is_some() {
                continue;
            }
            let reward = if total == 0 {
                0
            } else {
                mul_div(staking_reward, v.pool.coin_balance, total)?
            };
            let commission = mul_div(reward, v.commission_rate_bps, BASIS_POINT_DENOMINATOR)?;
            if commission > 0 {
                v.pool.pending_stake = add(v.pool.pending_stake, commission)?;
                commissions.push(StakedCoin {
                    pool_id,
                    stake_activation_epoch: next.epoch + 1,
                    principal: commission,
                });
            }
            v.pool.deposit_rewards(reward - commission)?;
        }
        let new_epoch = next.epoch + 1;
        for v in next
            .validators
            .iter_mut()
            .filter(|v| v.pool.deactivation_epoch.is_none())
        {
            v.pool.process_pending(new_epoch)?;
        }
        for pool_id in std::mem::take(&mut next.departing) {
            next.validators[pool_id].pool.deactivation_epoch = Some(new_epoch);
        }
        next.epoch = new_epoch;
        *self = next;
        Ok(commissions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const COIN: u64 = MIN_STAKING_THRESHOLD;

    fn system() -> StakingSystem {
        StakingSystem::genesis(&[
            ("0xa".into(), 200, 1_000_000 * COIN),
            ("0xb".into(), 1_000, 3_000_000 * COIN),
        ])
        .unwrap()
    }

    #[test]
    fn fail_below_threshold_unknown_validator_change_nothing() {
        let mut s = system();
        let before = s.clone();
        assert_eq!(s.request_add_stake("0xa", COIN - 1), Err(Abort::StakingBelowThreshold));
        assert_eq!(s.request_add_stake("0xc", COIN), Err(Abort::NotAValidator));
        assert_eq!(s, before);
        assert_eq!(
            Abort::StakingBelowThreshold.to_string(),
            "MoveAbort(validator_set::EStakingBelowThreshold, 10)"
        );
    }

    #[test]
    fn success_stake_earns_from_the_next_epoch_and_withdraws_with_its_reward() {
        let mut s = system();
        let staked = s.request_add_stake("0xa", 100 * COIN).unwrap();
        assert_eq!(staked.stake_activation_epoch, 1);
        // withdrawn in the same epoch: the principal, nothing earned
        let mut early = s.clone();
        assert_eq!(
            early.request_withdraw_stake(staked).unwrap(),
            Withdrawal {
                principal_amount: 100 * COIN,
                reward_amount: 0
            }
        );
        assert_eq!(early.validators[0].pool.pending_stake, 0);
        // the epoch it enters earns nothing for it; the next one does
        s.advance_epoch(4_000 * COIN).unwrap();
        assert_eq!(s.calculate_rewards(&staked).unwrap(), 100 * COIN);
        s.advance_epoch(4_000 * COIN).unwrap();
        let shown = s.calculate_rewards(&staked).unwrap();
        let w = s.request_withdraw_stake(staked).unwrap();
        assert_eq!(w.principal_amount + w.reward_amount, shown);
        // 0xa holds ≈ 1/4 of the stake: ≈ 1 000 coins of reward, 2 % commission, 100 of its
        // ≈ 1 000 100 coins → ≈ 0.098 coin
        assert!((97_000_000..=98_100_000).contains(&w.reward_amount), "{w:?}");
    }

    #[test]
    fn success_commission_is_staked_to_the_validator() {
        let mut s = system();
        let commissions = s.advance_epoch(4_000 * COIN).unwrap();
        assert_eq!(commissions.len(), 2);
        assert_eq!(commissions[0].principal, 1_000 * COIN * 200 / 10_000);
        assert_eq!(commissions[1].principal, 3_000 * COIN * 1_000 / 10_000);
        assert_eq!(commissions[1].stake_activation_epoch, 1);
    }

    /// A departed validator's pool freezes: no new stake (its address is no longer a
    /// validator), no more reward, and its stake is paid at the frozen rate at once.
    #[test]
    fn success_departed_validator_pays_out_at_its_last_rate() {
        let mut s = system();
        let staked = s.request_add_stake("0xa", 100 * COIN).unwrap();
        s.advance_epoch(4_000 * COIN).unwrap();
        s.advance_epoch(4_000 * COIN).unwrap();
        s.request_remove_validator("0xa").unwrap();
        s.advance_epoch(4_000 * COIN).unwrap();
        let frozen = s.calculate_rewards(&staked).unwrap();
        let pool_before = s.validators[0].pool.coin_balance;
        s.advance_epoch(4_000 * COIN).unwrap();
        assert_eq!(
            s.calculate_rewards(&staked).unwrap(),
            frozen,
            "no reward after departure"
        );
        assert_eq!(
            s.validators[0].pool.coin_balance, pool_before,
            "the pool earns nothing more"
        );
        assert_eq!(s.request_add_stake("0xa", COIN), Err(Abort::NotAValidator));
        assert_eq!(s.request_remove_validator("0xa"), Err(Abort::NotAValidator));
        let w = s.request_withdraw_stake(staked).unwrap();
        assert_eq!(w.principal_amount + w.reward_amount, frozen);
        assert!(w.reward_amount > 0);
        // settled at once: an inactive pool has no boundary to wait for
        assert_eq!(s.validators[0].pool.pending_total_withdraw, 0);
        assert_eq!(s.validators[0].pool.coin_balance, pool_before - frozen);
    }

    #[test]
    fn fail_split_below_threshold() {
        let mut s = system();
        let mut staked = s.request_add_stake("0xa", 3 * COIN).unwrap();
        assert_eq!(staked.split(COIN / 2), Err(Abort::StakedBelowThreshold));
        assert_eq!(staked.split(4 * COIN), Err(Abort::InsufficientBalance));
        let part = staked.split(COIN).unwrap();
        assert_eq!((part.principal, staked.principal), (COIN, 2 * COIN));
    }

    proptest! {
        /// Stakers never take out more than they put in plus the rewards given to their
        /// pools; nobody loses principal, also when validators leave; the pools' invariant
        /// (tokens = coins at the recorded rate) holds at every boundary.
        #[test]
        fn prop_withdrawals_are_bounded_by_principal_plus_rewards(
            ops in proptest::collection::vec((0u8..4, 1u64..50_000, 0usize..2), 1..60),
            rewards in proptest::collection::vec(0u64..10_000, 1..20),
        ) {
            let mut s = system();
            let mut open: Vec<StakedCoin> = Vec::new();
            let (mut paid_in, mut paid_out, mut rewards_given) = (0u128, 0u128, 0u128);
            for (i, (kind, coins, v)) in ops.into_iter().enumerate() {
                match kind {
                    0 => {
                        let addr = ["0xa", "0xb"][v];
                        match s.request_add_stake(addr, coins * COIN / 10) {
                            Ok(staked) => {
                                paid_in += u128::from(staked.principal);
                                open.push(staked);
                            }
                            Err(Abort::NotAValidator) => prop_assert!(s.validators[v].pool.deactivation_epoch.is_some()),
                            Err(e) => {
                                prop_assert_eq!(e, Abort::StakingBelowThreshold);
                                prop_assert!(coins < 10);
                            }
                        }
                    }
                    1 if !open.is_empty() => {
                        let staked = open.swap_remove(i % open.len());
                        let w = s.request_withdraw_stake(staked).unwrap();
                        prop_assert_eq!(w.principal_amount, staked.principal);
                        paid_out += u128::from(w.principal_amount) + u128::from(w.reward_amount);
                    }
                    3 if i % 7 == 0 => {
                        let _ = s.request_remove_validator(["0xa", "0xb"][v]);
                    }
                    _ => {
                        let r = rewards[i % rewards.len()] * COIN;
                        s.advance_epoch(r).unwrap();
                        rewards_given += u128::from(r);
                        // checked on active pools, as `check_balance_invariants` is: a
                        // departed pool's rate is frozen while withdrawals settle at once
                        for v in s.validators.iter().filter(|v| v.pool.deactivation_epoch.is_none()) {
                            let rate = v.pool.rate_at(s.epoch);
                            prop_assert_eq!(rate.tokens(v.pool.coin_balance).unwrap(), v.pool.pool_token_balance);
                        }
                    }
                }
            }
            for staked in open {
                let w = s.request_withdraw_stake(staked).unwrap();
                paid_out += u128::from(w.principal_amount) + u128::from(w.reward_amount);
            }
            prop_assert!(paid_out >= paid_in, "principal lost: in {paid_in}, out {paid_out}");
            prop_assert!(paid_out <= paid_in + rewards_given, "out {paid_out} > in {paid_in} + rewards {rewards_given}");
        }
    }
}
