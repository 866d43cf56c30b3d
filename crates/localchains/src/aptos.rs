//! A local Aptos chain that speaks the fullnode REST API `/v1` and keeps
//! `0x1::delegation_pool`'s rules, for tests and local runs (no `aptos-node` can be
//! installed offline here).
//!
//! ```text
//!  GET  /v1                                  LedgerInfo (chain_id, epoch, ledger_timestamp µs)
//!  GET  /v1/accounts/{addr}                  sequence_number, authentication_key (404
//!                                            account_not_found)
//!  GET  /v1/accounts/0x1/resource/{type}     stake::ValidatorSet, stake::ValidatorPerformance,
//!                                            staking_config::StakingConfig, block::BlockResource,
//!                                            reconfiguration::Configuration
//!  POST /v1/view                             delegation_pool::{get_stake, get_pending_withdrawal,
//!                                            get_add_stake_fee, operator_commission_percentage,
//!                                            get_delegation_pool_stake, delegation_pool_exists},
//!                                            stake::get_lockup_secs, coin::balance<AptosCoin>
//!  POST /v1/transactions                     BCS SignedTransaction, validated as the mempool
//!                                            and the VM prologue do: chain id (BAD_CHAIN_ID),
//!                                            Ed25519 signature over SHA3-256("APTOS::RawTransaction")
//!                                            ‖ BCS, verified by aptos-sdk (INVALID_SIGNATURE,
//!                                            INVALID_AUTH_KEY), sequence number (…_TOO_OLD /
//!                                            …_TOO_NEW), expiration (TRANSACTION_EXPIRED), gas
//!                                            balance; then committed in its own block
//!  POST /v1/transactions/simulate            the same on a copy of the state; the signature
//!                                            must not be valid (as the node demands)
//!  GET  /v1/transactions/by_hash/{hash}      user_transaction {success, vm_status, timestamp}
//!  GET  /v1/estimate_gas_price
//! ```
//!
//! Delegation pools follow aptos-framework `delegation_pool.move`: active and per-lockup-cycle
//! inactive share pools; `add_stake` charges `get_add_stake_fee` (bought as shares of the
//! NULL_SHAREHOLDER 0x0 and given back to the pool when the epoch ends); `unlock` moves
//! coins to the current cycle's pending_inactive pool (rounded by
//! `coins_to_transfer_to_ensure_min_stake`); one pending withdrawal per delegator, executed
//! by the next `add_stake` or `unlock` once inactive; `withdraw` of inactive stake.
//! `MIN_COINS_ON_SHARES_POOL` (10 APT) is enforced on active and pending_inactive balances,
//! with the module's abort codes. At each epoch boundary active (not pending_active) and
//! pending_inactive stake earn the epoch's rate, the operator's commission is bought as
//! shares, and when the pool's lockup has passed its pending_inactive stake becomes inactive
//! and the lockup renews by `recurring_lockup_duration_secs`. Gas is flat per call.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use aptos_sdk::transaction::{SignedTransaction, TransactionPayload};
use aptos_sdk::types::AccountAddress;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

/// Octas in one APT.
pub const APT: u64 = 100_000_000;
/// `delegation_pool::MIN_COINS_ON_SHARES_POOL`.
pub const MIN_COINS_ON_SHARES_POOL: u64 = 10 * APT;
/// `delegation_pool::MAX_FEE`: commission in hundredths of a percent.
pub const MAX_FEE: u64 = 10_000;
/// The NULL_SHAREHOLDER owning the add-stake fees of the current epoch.
const NULL_SHAREHOLDER: AccountAddress = AccountAddress::ZERO;
const YEAR_SECS: u128 = 365 * 86_400;
/// Epoch boundaries processed per clock step (bounds the loop).
const MAX_EPOCHS_PER_STEP: u64 = 100_000;

/// A validator of the local chain.
#[derive(Debug, Clone)]
pub struct ValidatorSpec {
    /// The stake pool's address (the delegation pool's address for delegators).
    pub address: AccountAddress,
    /// Operator commission, hundredths of a percent (`MAX_FEE` = 100 %).
    pub commission: u64,
    /// Stake held by others at genesis, octas.
    pub stake_octas: u64,
    /// Whether delegators can stake with it (a delegation pool) or it is its owner's
    /// stake pool alone.
    pub delegation_pool: bool,
}

/// The local chain's genesis.
#[derive(Debug, Clone)]
pub struct AptosGenesis {
    /// Chain id (mainnet 1, testnet 2, local testnet 4).
    pub chain_id: u8,
    /// `block::BlockResource.epoch_interval`, seconds (mainnet 7 200).
    pub epoch_secs: u64,
    /// `staking_config.recurring_lockup_duration_secs` (mainnet 14 d since AIP-94).
    pub lockup_secs: u64,
    /// Annual reward rates, basis points, one per epoch, cycled.
    pub rates_bps: Vec<u32>,
    /// The validator set.
    pub validators: Vec<ValidatorSpec>,
    /// Funded accounts, octas.
    pub accounts: Vec<(AccountAddress, u64)>,
    /// Ledger time at genesis, seconds since 1970.
    pub genesis_secs: u64,
    /// Real milliseconds per chain second (0: the clock moves only by the controls and one
    /// second per committed transaction).
    pub tick_ms: u64,
    /// The gas unit price the node estimates, octas.
    pub gas_unit_price: u64,
}

#[derive(Debug, Clone, Default)]
struct SharePool {
    coins: u128,
    shares: u128,
    holders: BTreeMap<AccountAddress, u128>,
}

impl SharePool {
    fn to_shares(&self, coins: u128) -> u128 {
        if self.coins == 0 || self.shares == 0 {
            coins
        } else {
            coins * self.shares / self.coins
        }
    }

    fn value(&self, who: &AccountAddress) -> u128 {
        let s = self.holders.get(who).copied().unwrap_or(0);
        (s * self.coins).checked_div(self.shares).unwrap_or(0)
    }

    fn buy(&mut self, who: AccountAddress, coins: u128) {
        let s = self.to_shares(coins);
        self.coins += coins;
        self.shares += s;
        *self.holders.entry(who).or_default() += s;
    }

    /// Redeems `coins` worth of `who`'s shares (all of them when that is more than it
    /// holds); returns the coins paid out.
    fn redeem(&mut self, who: &AccountAddress, coins: u128) -> u128 {
        let s = self.to_shares(coins);
        self.redeem_shares(who, s)
    }

    /// Redeems every share `who` holds; returns the coins paid out.
    fn redeem_all(&mut self, who: &AccountAddress) -> u128 {
        self.redeem_shares(who, u128::MAX)
    }

    fn redeem_shares(&mut self, who: &AccountAddress, shares: u128) -> u128 {
        let held = self.holders.get(who).copied().unwrap_or(0);
        let s = shares.min(held);
        let out = (s * self.coins).checked_div(self.shares).unwrap_or(0);
        self.shares -= s;
        self.coins -= out;
        if held == s {
            self.holders.remove(who);
        } else {
            self.holders.insert(*who, held - s);
        }
        out
    }
}

#[derive(Debug, Clone)]
struct Pool {
    commission: u64,
    delegation: bool,
    active: SharePool,
    /// One share pool per observed lockup cycle; the last is pending_inactive.
    inactive: Vec<SharePool>,
    pending_withdrawals: BTreeMap<AccountAddress, usize>,
    pending_active: u128,
    locked_until_secs: u64,
    /// Rewards credited since genesis (delegators' and commission), octas.
    minted: u128,
}

impl Pool {
    fn olc(&self) -> usize {
        self.inactive.len() - 1
    }

    /// `(active, inactive, pending_inactive)` of `who`, as `get_stake` answers.
    fn stake(&self, who: &AccountAddress) -> (u128, u128, u128) {
        let active = self.active.value(who);
        match self.pending_withdrawals.get(who) {
            Some(&i) if i == self.olc() => (active, 0, self.inactive[i].value(who)),
            Some(&i) => (active, self.inactive[i].value(who), 0),
            None => (active, 0, 0),
        }
    }

    fn voting_power(&self) -> u128 {
        self.active.coins - self.pending_active + self.inactive[self.olc()].coins
    }
}

#[derive(Debug, Clone)]
struct Account {
    sequence_number: u64,
    balance: u64,
    authentication_key: String,
}

#[derive(Debug, Clone)]
struct TxRecord {
    json: Value,
}

#[derive(Debug, Clone)]
struct Chain {
    g: AptosGenesis,
    now_us: u64,
    epoch: u64,
    epoch_start_us: u64,
    version: u64,
    height: u64,
    accounts: BTreeMap<AccountAddress, Account>,
    pools: BTreeMap<AccountAddress, Pool>,
    txs: HashMap<String, TxRecord>,
    committed: u64,
}

/// A Move abort: module, name, category and reason as the module documents it.
struct Abort {
    module: &'static str,
    name: &'static str,
    code: u64,
    reason: &'static str,
}

impl Abort {
    fn vm_status(&self) -> String {
        format!(
            "Move abort in 0x1::{}: {}({:#x}): {}",
            self.module, self.name, self.code, self.reason
        )
    }
}

const EDELEGATION_POOL_DOES_NOT_EXIST: Abort = Abort {
    module: "delegation_pool",
    name: "EDELEGATION_POOL_DOES_NOT_EXIST",
    code: 0x60003,
    reason: "Delegation pool does not exist at the provided pool address.",
};
const EDELEGATOR_ACTIVE_BALANCE_TOO_LOW: Abort = Abort {
    module: "delegation_pool",
    name: "EDELEGATOR_ACTIVE_BALANCE_TOO_LOW",
    code: 0x10008,
    reason: "Delegator's active balance cannot be less than `MIN_COINS_ON_SHARES_POOL`.",
};
const EDELEGATOR_PENDING_INACTIVE_BALANCE_TOO_LOW: Abort = Abort {
    module: "delegation_pool",
    name: "EDELEGATOR_PENDING_INACTIVE_BALANCE_TOO_LOW",
    code: 0x10009,
    reason: "Delegator's pending_inactive balance cannot be less than `MIN_COINS_ON_SHARES_POOL`.",
};
const ENOT_ENOUGH_ACTIVE_STAKE_TO_UNLOCK: Abort = Abort {
    module: "delegation_pool",
    name: "ENOT_ENOUGH_ACTIVE_STAKE_TO_UNLOCK",
    code: 0x10006,
    reason: "There is not enough `active` stake on the stake pool to `unlock`.",
};
const EWITHDRAW_ZERO_STAKE: Abort = Abort {
    module: "delegation_pool",
    name: "EWITHDRAW_ZERO_STAKE",
    code: 0x1000b,
    reason: "Cannot request to withdraw zero stake.",
};
const EINSUFFICIENT_BALANCE: Abort = Abort {
    module: "coin",
    name: "EINSUFFICIENT_BALANCE",
    code: 0x10006,
    reason: "Not enough coins to complete transaction",
};

/// Flat gas per entry function, gas units (a delegation pool call uses a few thousand).
fn gas_of(function: &str) -> u64 {
    match function {
        "add_stake" => 2_200,
        "unlock" => 1_800,
        "withdraw" => 1_200,
        "reactivate_stake" => 1_800,
        _ => 50,
    }
}

/// Credits `base × num / den` of rewards to `pool`: the delegators' part raises the share
/// price, the operator's commission (hundredths of a percent) buys shares for `operator`.
/// Returns the rewards credited, octas.
fn reward(
    pool: &mut SharePool,
    base: u128,
    (num, den): (u128, u128),
    commission: u128,
    operator: AccountAddress,
) -> u128 {
    let rewards = base * num / den;
    let fee = rewards * commission / u128::from(MAX_FEE);
    pool.coins += rewards - fee;
    if fee > 0 {
        pool.buy(operator, fee);
    }
    rewards
}

/// A validation failure: the node's `vm_error` answer.
#[derive(Debug)]
struct Invalid(&'static str, u64);

/// What one entry function did: the VM status (`None` on success) and its gas.
struct Outcome {
    abort: Option<String>,
    gas_used: u64,
}

fn u64_arg(b: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(b.try_into().ok()?))
}

fn address_arg(b: &[u8]) -> Option<AccountAddress> {
    AccountAddress::from_bytes(b).ok()
}

impl Chain {
    fn new(g: AptosGenesis) -> Chain {
        let now_us = g.genesis_secs * 1_000_000;
        let mut accounts = BTreeMap::new();
        for (a, balance) in &g.accounts {
            accounts.insert(
                *a,
                Account {
                    sequence_number: 0,
                    balance: *balance,
                    authentication_key: a.to_string(),
                },
            );
        }
        let mut pools = BTreeMap::new();
        for v in &g.validators {
            let mut active = SharePool::default();
            // the owner's (and others') stake, held by the pool address itself
            active.buy(v.address, u128::from(v.stake_octas));
            pools.insert(
                v.address,
                Pool {
                    commission: v.commission,
                    delegation: v.delegation_pool,
                    active,
                    inactive: vec![SharePool::default()],
                    pending_withdrawals: BTreeMap::new(),
                    pending_active: 0,
                    locked_until_secs: g.genesis_secs + g.lockup_secs,
                    minted: 0,
                },
            );
        }
        Chain {
            now_us,
            epoch: 1,
            epoch_start_us: now_us,
            version: 1,
            height: 1,
            accounts,
            pools,
            txs: HashMap::new(),
            committed: 0,
            g,
        }
    }

    fn now_secs(&self) -> u64 {
        self.now_us / 1_000_000
    }

    fn epoch_us(&self) -> u64 {
        self.g.epoch_secs * 1_000_000
    }

    /// Moves the clock `secs` ahead, ending every epoch it crosses.
    fn advance_secs(&mut self, secs: u64) {
        self.now_us += secs * 1_000_000;
        for _ in 0..MAX_EPOCHS_PER_STEP {
            if self.now_us < self.epoch_start_us + self.epoch_us() {
                break;
            }
            self.end_epoch();
        }
    }

    /// The epoch's rewards, the add-stake fees given back, lockups renewed.
    fn end_epoch(&mut self) {
        let (num, den) = self.rewards_rate();
        let boundary_secs = (self.epoch_start_us + self.epoch_us()) / 1_000_000;
        let lockup = self.g.lockup_secs;
        for (addr, p) in self.pools.iter_mut() {
            // pending_active stake earns nothing this epoch; pending_inactive still does
            let earning = p.active.coins - p.pending_active;
            let olc = p.olc();
            let commission = u128::from(p.commission);
            p.minted += reward(&mut p.active, earning, (num, den), commission, *addr);
            let pending_inactive = p.inactive[olc].coins;
            p.minted += reward(&mut p.inactive[olc], pending_inactive, (num, den), commission, *addr);
            p.pending_active = 0;
            // the NULL_SHAREHOLDER's fee shares go back to the pool
            if let Some(s) = p.active.holders.remove(&NULL_SHAREHOLDER) {
                p.active.shares -= s;
            }
            if boundary_secs >= p.locked_until_secs {
                p.inactive.push(SharePool::default());
                while p.locked_until_secs <= boundary_secs {
                    p.locked_until_secs += lockup;
                }
            }
        }
        self.epoch += 1;
        self.epoch_start_us += self.epoch_us();
        self.height += 1;
        self.version += 1;
    }

    fn rewards_rate(&self) -> (u128, u128) {
        let rate = u128::from(self.g.rates_bps[(self.epoch as usize) % self.g.rates_bps.len()]);
        (rate * u128::from(self.g.epoch_secs), 10_000 * YEAR_SECS)
    }

    fn add_stake_fee(&self, pool: &Pool, amount: u128) -> u128 {
        let (rate, den) = self.rewards_rate();
        let r = rate * u128::from(MAX_FEE - pool.commission);
        amount * r / (r + den * u128::from(MAX_FEE))
    }

    fn pool(&self, addr: &AccountAddress) -> std::result::Result<&Pool, &'static Abort> {
        self.pools
            .get(addr)
            .filter(|p| p.delegation)
            .ok_or(&EDELEGATION_POOL_DOES_NOT_EXIST)
    }

    /// Withdraws `who`'s inactive pending withdrawal in `pool`, if any, to its account.
    fn execute_pending_withdrawal(&mut self, pool: AccountAddress, who: AccountAddress) {
        let p = self.pools.get_mut(&pool).expect("checked");
        if let Some(&i) = p.pending_withdrawals.get(&who) {
            if i < p.olc() {
                let out = p.inactive[i].redeem_all(&who);
                p.pending_withdrawals.remove(&who);
                self.credit(who, out);
            }
        }
    }

    fn credit(&mut self, who: AccountAddress, octas: u128) {
        let a = self.accounts.entry(who).or_insert_with(|| Account {
            sequence_number: 0,
            balance: 0,
            authentication_key: who.to_string(),
        });
        a.balance = a.balance.saturating_add(u64::try_from(octas).unwrap_or(u64::MAX));
    }

    fn add_stake(&mut self, who: AccountAddress, pool: AccountAddress, amount: u64) -> Option<&'static Abort> {
        let fee = match self.pool(&pool) {
            Ok(p) => self.add_stake_fee(p, u128::from(amount)),
            Err(a) => return Some(a),
        };
        if amount == 0 {
            return None;
        }
        if self.accounts.get(&who).map_or(0, |a| a.balance) < amount {
            return Some(&EINSUFFICIENT_BALANCE);
        }
        self.execute_pending_withdrawal(pool, who);
        let p = self.pools.get_mut(&pool).expect("checked");
        let mut next = p.active.clone();
        next.buy(who, u128::from(amount) - fee);
        next.buy(NULL_SHAREHOLDER, fee);
        if next.value(&who) < u128::from(MIN_COINS_ON_SHARES_POOL) {
            return Some(&EDELEGATOR_ACTIVE_BALANCE_TOO_LOW);
        }
        p.active = next;
        p.pending_active += u128::from(amount);
        self.accounts.get_mut(&who).expect("checked").balance -= amount;
        None
    }

    fn unlock(&mut self, who: AccountAddress, pool: AccountAddress, amount: u64) -> Option<&'static Abort> {
        if let Err(a) = self.pool(&pool) {
            return Some(a);
        }
        if amount == 0 {
            return None;
        }
        self.execute_pending_withdrawal(pool, who);
        let p = self.pools.get_mut(&pool).expect("checked");
        let olc = p.olc();
        let active = p.active.value(&who);
        let pending = match p.pending_withdrawals.get(&who) {
            Some(&i) if i == olc => p.inactive[olc].value(&who),
            _ => 0,
        };
        // coins_to_transfer_to_ensure_min_stake
        let mut amount = u128::from(amount).min(active);
        if active - amount < u128::from(MIN_COINS_ON_SHARES_POOL) {
            amount = active;
        }
        if pending + amount < u128::from(MIN_COINS_ON_SHARES_POOL) {
            amount = (u128::from(MIN_COINS_ON_SHARES_POOL) - pending).min(active);
        }
        if amount > p.active.coins - p.pending_active {
            return Some(&ENOT_ENOUGH_ACTIVE_STAKE_TO_UNLOCK);
        }
        let mut next = p.clone();
        let coins = if amount == active {
            next.active.redeem_all(&who)
        } else {
            next.active.redeem(&who, amount)
        };
        next.inactive[olc].buy(who, coins);
        next.pending_withdrawals.insert(who, olc);
        let (a, _, pi) = next.stake(&who);
        if a != 0 && a < u128::from(MIN_COINS_ON_SHARES_POOL) {
            return Some(&EDELEGATOR_ACTIVE_BALANCE_TOO_LOW);
        }
        if pi < u128::from(MIN_COINS_ON_SHARES_POOL) {
            return Some(&EDELEGATOR_PENDING_INACTIVE_BALANCE_TOO_LOW);
        }
        *p = next;
        None
    }

    fn withdraw(&mut self, who: AccountAddress, pool: AccountAddress, amount: u64) -> Option<&'static Abort> {
        if let Err(a) = self.pool(&pool) {
            return Some(a);
        }
        if amount == 0 {
            return Some(&EWITHDRAW_ZERO_STAKE);
        }
        let p = self.pools.get_mut(&pool).expect("checked");
        let out = match p.pending_withdrawals.get(&who) {
            Some(&i) if i < p.olc() => {
                let out = if u128::from(amount) >= p.inactive[i].value(&who) {
                    p.inactive[i].redeem_all(&who)
                } else {
                    p.inactive[i].redeem(&who, u128::from(amount))
                };
                if p.inactive[i].value(&who) == 0 {
                    p.inactive[i].holders.remove(&who);
                    p.pending_withdrawals.remove(&who);
                }
                out
            }
            // nothing inactive: the module returns without effect
            _ => 0,
        };
        self.credit(who, out);
        None
    }

    /// Runs `f` as a Move transaction runs: an abort undoes everything it wrote.
    fn atomically(&mut self, f: impl FnOnce(&mut Chain) -> Option<&'static Abort>) -> Option<&'static Abort> {
        let saved = (self.accounts.clone(), self.pools.clone());
        let abort = f(self);
        if abort.is_some() {
            (self.accounts, self.pools) = saved;
        }
        abort
    }

    /// Runs one entry function for `who`.
    fn execute(&mut self, who: AccountAddress, payload: &TransactionPayload) -> Outcome {
        let TransactionPayload::EntryFunction(f) = payload else {
            return Outcome {
                abort: Some("FEATURE_UNDER_GATING".into()),
                gas_used: gas_of(""),
            };
        };
        let gas_used = gas_of(&f.function);
        let module = (f.module.address == AccountAddress::ONE).then(|| f.module.name.as_str());
        let args = (
            f.args.first().and_then(|a| address_arg(a)),
            f.args.get(1).and_then(|a| u64_arg(a)),
        );
        let abort = match (module, f.function.as_str(), args) {
            (Some("delegation_pool"), "add_stake", (Some(pool), Some(n))) if f.args.len() == 2 => {
                self.atomically(|c| c.add_stake(who, pool, n))
            }
            (Some("delegation_pool"), "unlock", (Some(pool), Some(n))) if f.args.len() == 2 => {
                self.atomically(|c| c.unlock(who, pool, n))
            }
            (Some("delegation_pool"), "withdraw", (Some(pool), Some(n))) if f.args.len() == 2 => {
                self.atomically(|c| c.withdraw(who, pool, n))
            }
            (Some("delegation_pool"), "add_stake" | "unlock" | "withdraw", _) => {
                return Outcome {
                    abort: Some("NUMBER_OF_ARGUMENTS_MISMATCH".into()),
                    gas_used,
                }
            }
            _ => {
                return Outcome {
                    abort: Some("FUNCTION_RESOLUTION_FAILURE".into()),
                    gas_used,
                }
            }
        };
        Outcome {
            abort: abort.map(Abort::vm_status),
            gas_used,
        }
    }

    /// The checks of mempool and the VM prologue, in their order.
    fn validate(&self, tx: &SignedTransaction, check_signature: bool) -> std::result::Result<(), Invalid> {
        let raw = &tx.raw_txn;
        if raw.chain_id.id() != self.g.chain_id {
            return Err(Invalid("BAD_CHAIN_ID", 23));
        }
        if check_signature {
            if let Err(e) = tx.verify_signature() {
                return Err(if e.to_string().contains("does not match") {
                    Invalid("INVALID_AUTH_KEY", 2)
                } else {
                    Invalid("INVALID_SIGNATURE", 1)
                });
            }
        }
        let Some(account) = self.accounts.get(&raw.sender) else {
            return Err(Invalid("SENDING_ACCOUNT_DOES_NOT_EXIST", 7));
        };
        if raw.sequence_number < account.sequence_number {
            return Err(Invalid("SEQUENCE_NUMBER_TOO_OLD", 3));
        }
        if raw.sequence_number > account.sequence_number {
            return Err(Invalid("SEQUENCE_NUMBER_TOO_NEW", 4));
        }
        if raw.expiration_timestamp_secs <= self.now_secs() {
            return Err(Invalid("TRANSACTION_EXPIRED", 6));
        }
        if raw.gas_unit_price < self.g.gas_unit_price {
            return Err(Invalid("GAS_UNIT_PRICE_BELOW_MIN_BOUND", 15));
        }
        let max_fee = u128::from(raw.max_gas_amount) * u128::from(raw.gas_unit_price);
        if u128::from(account.balance) < max_fee {
            return Err(Invalid("INSUFFICIENT_BALANCE_FOR_TRANSACTION_FEE", 5));
        }
        Ok(())
    }

    /// Executes `tx` (validated) and commits it in a block of its own; returns its JSON.
    fn apply(&mut self, tx: &SignedTransaction, hash: &str) -> Value {
        let raw = &tx.raw_txn;
        let out = self.execute(raw.sender, &raw.payload);
        let (success, vm_status, gas_used) = match out.abort {
            _ if out.gas_used > raw.max_gas_amount => (false, "OUT_OF_GAS".to_string(), raw.max_gas_amount),
            None => (true, "Executed successfully".to_string(), out.gas_used),
            Some(s) => (false, s, out.gas_used),
        };
        let a = self.accounts.get_mut(&raw.sender).expect("validated");
        a.sequence_number += 1;
        a.balance = a.balance.saturating_sub(gas_used.saturating_mul(raw.gas_unit_price));
        self.version += 1;
        self.height += 1;
        json!({
            "type": "user_transaction",
            "version": self.version.to_string(),
            "hash": hash,
            "success": success,
            "vm_status": vm_status,
            "gas_used": gas_used.to_string(),
            "sender": raw.sender.to_string(),
            "sequence_number": raw.sequence_number.to_string(),
            "max_gas_amount": raw.max_gas_amount.to_string(),
            "gas_unit_price": raw.gas_unit_price.to_string(),
            "expiration_timestamp_secs": raw.expiration_timestamp_secs.to_string(),
            "timestamp": self.now_us.to_string(),
        })
    }

    fn ledger_info(&self) -> Value {
        json!({
            "chain_id": self.g.chain_id,
            "epoch": self.epoch.to_string(),
            "ledger_version": self.version.to_string(),
            "oldest_ledger_version": "0",
            "ledger_timestamp": self.now_us.to_string(),
            "node_role": "full_node",
            "oldest_block_height": "0",
            "block_height": self.height.to_string(),
            "git_hash": "softstake-aptos-localnet",
        })
    }

    fn resource(&self, typ: &str) -> Option<Value> {
        let (rate, den) = self.rewards_rate();
        let validators: Vec<(&AccountAddress, &Pool)> = self.pools.iter().collect();
        Some(match typ {
            "0x1::stake::ValidatorSet" => json!({
                "active_validators": validators.iter().enumerate().map(|(i, (a, p))| json!({
                    "addr": a.to_string(),
                    "voting_power": p.voting_power().to_string(),
                    "config": {"validator_index": i.to_string(), "consensus_pubkey": "0x", "fullnode_addresses": "0x", "network_addresses": "0x"},
                })).collect::<Vec<_>>(),
                "pending_active": [], "pending_inactive": [],
                "total_voting_power": validators.iter().map(|(_, p)| p.voting_power()).sum::<u128>().to_string(),
                "total_joining_power": "0",
                "consensus_scheme": 0,
            }),
            "0x1::stake::ValidatorPerformance" => json!({
                "validators": validators.iter().map(|_| json!({
                    "successful_proposals": (self.epoch * 100).to_string(),
                    "failed_proposals": "0",
                })).collect::<Vec<_>>(),
            }),
            "0x1::staking_config::StakingConfig" => json!({
                "minimum_stake": (1_000_000 * APT).to_string(),
                "maximum_stake": (50_000_000 * APT).to_string(),
                "recurring_lockup_duration_secs": self.g.lockup_secs.to_string(),
                "allow_validator_set_change": true,
                "rewards_rate": rate.to_string(),
                "rewards_rate_denominator": den.to_string(),
                "voting_power_increase_limit": "10",
            }),
            "0x1::block::BlockResource" => json!({
                "height": self.height.to_string(),
                "epoch_interval": self.epoch_us().to_string(),
            }),
            "0x1::reconfiguration::Configuration" => json!({
                "epoch": self.epoch.to_string(),
                "last_reconfiguration_time": self.epoch_start_us.to_string(),
            }),
            _ => return None,
        })
    }

    /// A view function's result values, or the Move abort it raised.
    fn view(&self, function: &str, args: &[Value]) -> std::result::Result<Vec<Value>, String> {
        let addr = |i: usize| -> std::result::Result<AccountAddress, String> {
            args.get(i)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("argument {i} is not an address: {args:?}"))
        };
        let num = |i: usize| -> std::result::Result<u64, String> {
            args.get(i)
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("argument {i} is not a u64 string: {args:?}"))
        };
        let s = |v: u128| json!(v.to_string());
        let pool = |a: AccountAddress| self.pool(&a).map_err(Abort::vm_status);
        Ok(match function {
            "0x1::delegation_pool::delegation_pool_exists" => vec![json!(self.pool(&addr(0)?).is_ok())],
            "0x1::delegation_pool::get_stake" => {
                let (a, i, pi) = pool(addr(0)?)?.stake(&addr(1)?);
                vec![s(a), s(i), s(pi)]
            }
            "0x1::delegation_pool::get_pending_withdrawal" => {
                let (p, who) = (pool(addr(0)?)?, addr(1)?);
                let (_, i, pi) = p.stake(&who);
                vec![json!(p.pending_withdrawals.contains_key(&who)), s(i + pi)]
            }
            "0x1::delegation_pool::get_add_stake_fee" => {
                vec![s(self.add_stake_fee(pool(addr(0)?)?, u128::from(num(1)?)))]
            }
            "0x1::delegation_pool::operator_commission_percentage" => {
                vec![s(u128::from(pool(addr(0)?)?.commission))]
            }
            "0x1::delegation_pool::get_delegation_pool_stake" => {
                let p = pool(addr(0)?)?;
                let olc = p.olc();
                let inactive: u128 = p.inactive[..olc].iter().map(|x| x.coins).sum();
                vec![
                    s(p.active.coins - p.pending_active),
                    s(inactive),
                    s(p.pending_active),
                    s(p.inactive[olc].coins),
                ]
            }
            "0x1::stake::get_lockup_secs" => {
                let p = self.pools.get(&addr(0)?).ok_or("ESTAKE_POOL_DOES_NOT_EXIST")?;
                vec![s(u128::from(p.locked_until_secs))]
            }
            "0x1::coin::balance" => vec![s(u128::from(self.accounts.get(&addr(0)?).map_or(0, |a| a.balance)))],
            other => return Err(format!("FUNCTION_RESOLUTION_FAILURE: {other}")),
        })
    }
}

type Shared = Arc<Mutex<Chain>>;

fn api_error(status: StatusCode, message: String, error_code: &str, vm_error_code: Option<u64>) -> Response {
    (
        status,
        Json(json!({"message": message, "error_code": error_code, "vm_error_code": vm_error_code})),
    )
        .into_response()
}

fn lock(c: &Shared) -> std::sync::MutexGuard<'_, Chain> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

async fn ledger(State(c): State<Shared>) -> Response {
    Json(lock(&c).ledger_info()).into_response()
}

async fn account(State(c): State<Shared>, Path(addr): Path<String>) -> Response {
    let c = lock(&c);
    match addr.parse::<AccountAddress>().ok().and_then(|a| c.accounts.get(&a)) {
        Some(a) => Json(json!({
            "sequence_number": a.sequence_number.to_string(),
            "authentication_key": a.authentication_key,
        }))
        .into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            format!("Account not found by Address({addr}) and Ledger version({})", c.version),
            "account_not_found",
            None,
        ),
    }
}

async fn resource(State(c): State<Shared>, Path((addr, typ)): Path<(String, String)>) -> Response {
    let c = lock(&c);
    let found = (addr.parse::<AccountAddress>().ok() == Some(AccountAddress::ONE))
        .then(|| c.resource(&typ))
        .flatten();
    match found {
        Some(data) => Json(json!({"type": typ, "data": data})).into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            format!(
                "Resource not found by Address({addr}), Struct tag({typ}) and Ledger version({})",
                c.version
            ),
            "resource_not_found",
            None,
        ),
    }
}

async fn view(State(c): State<Shared>, Json(req): Json<Value>) -> Response {
    let function = req.get("function").and_then(Value::as_str).unwrap_or_default();
    let args = req
        .get("arguments")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    match lock(&c).view(function, &args) {
        Ok(v) => Json(Value::Array(v)).into_response(),
        Err(e) => api_error(StatusCode::BAD_REQUEST, e, "invalid_input", None),
    }
}

fn decode(body: &[u8]) -> std::result::Result<(SignedTransaction, String), Box<Response>> {
    let tx: SignedTransaction = aptos_sdk::aptos_bcs::from_bytes(body).map_err(|e| {
        Box::new(api_error(
            StatusCode::BAD_REQUEST,
            format!("Failed to deserialize input into SignedTransaction: {e}"),
            "invalid_input",
            None,
        ))
    })?;
    let hash = tx
        .hash()
        .map(|h| format!("0x{}", h.to_hex().trim_start_matches("0x")))
        .map_err(|e| Box::new(api_error(StatusCode::BAD_REQUEST, e.to_string(), "invalid_input", None)))?;
    Ok((tx, hash))
}

fn rejected(e: Invalid) -> Response {
    api_error(
        StatusCode::BAD_REQUEST,
        format!("Invalid transaction: Type: Validation Code: {}", e.0),
        "vm_error",
        Some(e.1),
    )
}

async fn submit(State(c): State<Shared>, body: Bytes) -> Response {
    let (tx, hash) = match decode(&body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    let mut c = lock(&c);
    if let Err(e) = c.validate(&tx, true) {
        return rejected(e);
    }
    let record = c.apply(&tx, &hash);
    c.committed += 1;
    c.txs.insert(hash.clone(), TxRecord { json: record });
    // one committed block takes a second of ledger time
    c.advance_secs(1);
    let raw = &tx.raw_txn;
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "hash": hash,
            "sender": raw.sender.to_string(),
            "sequence_number": raw.sequence_number.to_string(),
            "max_gas_amount": raw.max_gas_amount.to_string(),
            "gas_unit_price": raw.gas_unit_price.to_string(),
            "expiration_timestamp_secs": raw.expiration_timestamp_secs.to_string(),
        })),
    )
        .into_response()
}

async fn simulate(State(c): State<Shared>, body: Bytes) -> Response {
    let (tx, hash) = match decode(&body) {
        Ok(t) => t,
        Err(r) => return *r,
    };
    if tx.verify_signature().is_ok() {
        return api_error(
            StatusCode::BAD_REQUEST,
            "Simulated transactions must not have a valid signature".into(),
            "invalid_input",
            None,
        );
    }
    let mut copy = lock(&c).clone();
    if let Err(e) = copy.validate(&tx, false) {
        return rejected(e);
    }
    Json(json!([copy.apply(&tx, &hash)])).into_response()
}

async fn by_hash(State(c): State<Shared>, Path(hash): Path<String>) -> Response {
    let c = lock(&c);
    match c.txs.get(&hash.to_ascii_lowercase()) {
        Some(r) => Json(r.json.clone()).into_response(),
        None => api_error(
            StatusCode::NOT_FOUND,
            format!("Transaction not found by Transaction hash({hash})"),
            "transaction_not_found",
            None,
        ),
    }
}

async fn gas_price(State(c): State<Shared>) -> Response {
    let p = lock(&c).g.gas_unit_price;
    Json(json!({"deprioritized_gas_estimate": p, "gas_estimate": p, "prioritized_gas_estimate": p * 3 / 2}))
        .into_response()
}

/// A running local Aptos chain; dropping it stops the server.
#[derive(Debug)]
pub struct LocalAptos {
    /// REST base URL, with its `/v1` (`http://127.0.0.1:<port>/v1`).
    pub url: String,
    chain: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalAptos {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the chain on 127.0.0.1:`port` (0 = any free port).
///
/// # Errors
/// A genesis without rates, with a rate above 100 %, a commission above `MAX_FEE` or a
/// zero epoch or lockup; a port that cannot be bound.
pub async fn start(genesis: AptosGenesis, port: u16) -> Result<LocalAptos> {
    anyhow::ensure!(
        !genesis.rates_bps.is_empty() && genesis.rates_bps.iter().all(|r| *r <= 10_000),
        "rates_bps: one or more annual rates of at most 10 000 bps"
    );
    anyhow::ensure!(
        genesis.epoch_secs > 0 && genesis.lockup_secs > 0,
        "epoch_secs and lockup_secs must be positive"
    );
    anyhow::ensure!(
        genesis.validators.iter().all(|v| v.commission <= MAX_FEE),
        "a validator's commission is above MAX_FEE (10 000)"
    );
    let tick_ms = genesis.tick_ms;
    let chain: Shared = Arc::new(Mutex::new(Chain::new(genesis)));
    let app = Router::new()
        .route("/v1", get(ledger))
        .route("/v1/", get(ledger))
        .route("/v1/accounts/{addr}", get(account))
        .route("/v1/accounts/{addr}/resource/{typ}", get(resource))
        .route("/v1/view", post(view))
        .route("/v1/transactions", post(submit))
        .route("/v1/transactions/simulate", post(simulate))
        .route("/v1/transactions/by_hash/{hash}", get(by_hash))
        .route("/v1/estimate_gas_price", get(gas_price))
        .with_state(chain.clone());
    let ticker = chain.clone();
    let (addr, server) = crate::serve(app, port, tick_ms, move || lock(&ticker).advance_secs(1))
        .await
        .context("starting the local Aptos chain")?;
    Ok(LocalAptos {
        url: format!("http://{addr}/v1"),
        chain,
        server,
    })
}

impl LocalAptos {
    /// Moves the ledger clock `secs` ahead (ending the epochs it crosses).
    pub fn advance_secs(&self, secs: u64) {
        lock(&self.chain).advance_secs(secs);
    }

    /// Ends `n` epochs: the clock moves to the `n`-th next boundary.
    pub fn advance_epochs(&self, n: u64) {
        let mut c = lock(&self.chain);
        for _ in 0..n {
            let to = c.epoch_start_us + c.epoch_us();
            let secs = to.saturating_sub(c.now_us).div_ceil(1_000_000);
            c.advance_secs(secs.max(1));
        }
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        lock(&self.chain).epoch
    }

    /// `account`'s coin balance, octas.
    pub fn balance(&self, account: &AccountAddress) -> u64 {
        lock(&self.chain).accounts.get(account).map_or(0, |a| a.balance)
    }

    /// `get_stake(pool, delegator)`: `(active, inactive, pending_inactive)`, octas.
    pub fn stake(&self, pool: &AccountAddress, delegator: &AccountAddress) -> (u128, u128, u128) {
        lock(&self.chain)
            .pools
            .get(pool)
            .map_or((0, 0, 0), |p| p.stake(delegator))
    }

    /// Transactions committed (successful or aborted).
    pub fn committed(&self) -> u64 {
        lock(&self.chain).committed
    }

    /// `pool`'s lockup end, seconds since 1970.
    pub fn locked_until_secs(&self, pool: &AccountAddress) -> u64 {
        lock(&self.chain).pools.get(pool).map_or(0, |p| p.locked_until_secs)
    }
}

/// The bundled validator set (`data/aptos/validators.csv`: address, name, commission
/// (hundredths of a percent), stake in whole APT), as delegation pools.
///
/// # Errors
/// A malformed row, naming it.
pub fn bundled_validators(csv_text: &str) -> Result<Vec<(ValidatorSpec, String)>> {
    let mut r = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(csv_text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in r.records().enumerate() {
        let row = row.with_context(|| format!("validators.csv row {}", i + 1))?;
        let field = |n: usize| {
            row.get(n)
                .with_context(|| format!("validators.csv row {}: column {n}", i + 1))
        };
        let address: AccountAddress = field(0)?
            .parse()
            .map_err(|e| anyhow::anyhow!("validators.csv row {}: address: {e}", i + 1))?;
        let commission: u64 = field(2)?
            .parse()
            .with_context(|| format!("validators.csv row {}: commission", i + 1))?;
        let stake: u64 = field(3)?
            .parse()
            .with_context(|| format!("validators.csv row {}: stake", i + 1))?;
        anyhow::ensure!(
            commission <= MAX_FEE,
            "validators.csv row {}: commission above 10 000",
            i + 1
        );
        out.push((
            ValidatorSpec {
                address,
                commission,
                stake_octas: stake.checked_mul(APT).context("stake overflows u64 octas")?,
                delegation_pool: true,
            },
            field(1)?.to_string(),
        ));
    }
    anyhow::ensure!(!out.is_empty(), "validators.csv has no validator");
    Ok(out)
}

/// The bundled annual rates (`data/aptos/apr.csv`: period, apr_bps), in order.
///
/// # Errors
/// A malformed row, naming it.
pub fn bundled_rates(csv_text: &str) -> Result<Vec<u32>> {
    let mut r = csv::ReaderBuilder::new()
        .comment(Some(b'#'))
        .from_reader(csv_text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in r.records().enumerate() {
        let row = row.with_context(|| format!("apr.csv row {}", i + 1))?;
        let bps: u32 = row
            .get(1)
            .context("apr.csv: no apr_bps column")?
            .parse()
            .with_context(|| format!("apr.csv row {}: apr_bps", i + 1))?;
        anyhow::ensure!(bps <= 10_000, "apr.csv row {}: {bps} bps is above 100 %", i + 1);
        out.push(bps);
    }
    anyhow::ensure!(!out.is_empty(), "apr.csv has no rate");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(n: u64) -> AccountAddress {
        format!("{n:#x}").parse().unwrap()
    }

    fn pool_addr() -> AccountAddress {
        addr(0xabc)
    }

    fn chain() -> Chain {
        let me = addr(0x1234);
        Chain::new(AptosGenesis {
            chain_id: 4,
            epoch_secs: 60,
            lockup_secs: 300,
            rates_bps: vec![700],
            validators: vec![ValidatorSpec {
                address: pool_addr(),
                commission: 800,
                stake_octas: 1_000_000 * APT,
                delegation_pool: true,
            }],
            accounts: vec![(me, 10_000 * APT)],
            genesis_secs: 1_700_000_000,
            tick_ms: 0,
            gas_unit_price: 100,
        })
    }

    #[test]
    fn success_fee_is_refunded_by_the_epoch_and_stake_then_earns() {
        let mut c = chain();
        let me = addr(0x1234);
        assert!(c.add_stake(me, pool_addr(), 1_000 * APT).is_none());
        let (a0, _, _) = c.pools[&pool_addr()].stake(&me);
        assert!(a0 < u128::from(1_000 * APT), "short by the fee: {a0}");
        c.advance_secs(60);
        let (a1, _, _) = c.pools[&pool_addr()].stake(&me);
        assert!(u128::from(1_000 * APT).abs_diff(a1) <= 2, "refunded: {a1}");
        c.advance_secs(60);
        let (a2, _, _) = c.pools[&pool_addr()].stake(&me);
        assert!(a2 > a1 + 2, "earning: {a2}");
    }

    proptest::proptest! {
        /// Any sequence of delegator calls and clock moves keeps the pool's books: its
        /// coins are genesis stake + deposits − withdrawals + rewards minted, every share
        /// pool's shares are its holders' sum, nothing the delegator holds is below the
        /// minimum unless zero, and no epoch lowers what the delegator holds.
        #[test]
        fn success_pool_books_balance_under_any_sequence(
            ops in proptest::collection::vec((0u8..4, 1u64..3_000, 1u64..700), 1..40),
        ) {
            let mut c = chain();
            let me = addr(0x1234);
            let p = pool_addr();
            let coins = |c: &Chain| {
                let x = &c.pools[&p];
                x.active.coins + x.inactive.iter().map(|i| i.coins).sum::<u128>()
            };
            let held = |c: &Chain| {
                let (a, i, pi) = c.pools[&p].stake(&me);
                a + i + pi
            };
            let genesis = coins(&c);
            let (mut deposits, mut withdrawals) = (0u128, 0u128);
            for (kind, apt, secs) in ops {
                let before = u128::from(c.accounts[&me].balance);
                let deposit = match kind {
                    0 => c.atomically(|c| c.add_stake(me, p, apt * APT)).is_none().then_some(apt * APT),
                    1 => c.atomically(|c| c.unlock(me, p, apt * APT)).and(None),
                    2 => c.atomically(|c| c.withdraw(me, p, apt * APT)).and(None),
                    _ => {
                        let h = held(&c);
                        c.advance_secs(secs);
                        proptest::prop_assert!(held(&c) + 2 >= h, "an epoch lowered the stake");
                        None
                    }
                };
                // what reached the account: a withdrawal, or an inactive one add_stake and
                // unlock executed first
                let deposit = u128::from(deposit.unwrap_or(0));
                deposits += deposit;
                withdrawals += u128::from(c.accounts[&me].balance) + deposit - before;
                let x = &c.pools[&p];
                proptest::prop_assert_eq!(coins(&c), genesis + deposits - withdrawals + x.minted);
                for sp in std::iter::once(&x.active).chain(x.inactive.iter()) {
                    proptest::prop_assert_eq!(sp.shares, sp.holders.values().sum::<u128>());
                }
                let (a, _, pi) = x.stake(&me);
                let min = u128::from(MIN_COINS_ON_SHARES_POOL);
                proptest::prop_assert!(a == 0 || a + 1 >= min, "active {a}");
                proptest::prop_assert!(pi == 0 || pi + 1 >= min, "pending_inactive {pi}");
            }
        }
    }

    #[test]
    fn fail_minimums_and_lockup() {
        let mut c = chain();
        let me = addr(0x1234);
        let a = c.add_stake(me, pool_addr(), 5 * APT).unwrap();
        assert_eq!(a.name, "EDELEGATOR_ACTIVE_BALANCE_TOO_LOW");
        assert!(c.add_stake(me, addr(9), 50 * APT).is_some());
        assert!(c.add_stake(me, pool_addr(), 100 * APT).is_none());
        c.advance_secs(120);
        // leaving less than 10 APT active unlocks everything
        assert!(c.unlock(me, pool_addr(), 95 * APT).is_none());
        let (a, i, pi) = c.pools[&pool_addr()].stake(&me);
        assert_eq!((a, i), (0, 0));
        assert!(pi >= u128::from(100 * APT), "{pi}");
        assert!(c.withdraw(me, pool_addr(), 1).is_none(), "nothing inactive: no effect");
        assert_eq!(c.pools[&pool_addr()].stake(&me).2, pi);
        c.advance_secs(300);
        let (_, i, pi2) = c.pools[&pool_addr()].stake(&me);
        assert!(i > pi && pi2 == 0, "inactive after the lockup: {i}");
        let before = c.accounts[&me].balance;
        assert!(c.withdraw(me, pool_addr(), u64::try_from(i).unwrap()).is_none());
        assert_eq!(u128::from(c.accounts[&me].balance - before), i);
    }
}
