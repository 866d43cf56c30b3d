//! A local TRON chain that speaks java-tron's HTTP API and TronGrid's account history and
//! keeps Stake 2.0's rules, for tests and local runs (java-tron is a jar from GitHub; no
//! node can be installed offline here).
//!
//! ```text
//!  POST /wallet/getnowblock | /walletsolidity/getnowblock      head | solid block
//!  POST /wallet/getaccount {address, visible}                  balance, frozenV2, unfrozenV2,
//!                                                              votes, allowance, …
//!  POST /wallet/getReward {address}                            {"reward": sun}
//!  POST /wallet/getchainparameters                             maintenance interval, unfreeze
//!                                                              delay, fees, pay per block
//!  POST /wallet/getnextmaintenancetime                         {"num": ms}
//!  POST /wallet/listwitnesses | /wallet/getBrokerage {address}
//!  POST /wallet/broadcasthex {transaction}                     checked as java-tron does:
//!       duplicate (DUP_TRANSACTION_ERROR), expiration (TRANSACTION_EXPIRATION_ERROR), TAPOS
//!       reference block (TAPOS_ERROR), one contract, the secp256k1 signature of the owner
//!       over sha256(raw_data) (SIGERROR), the contract's own rules
//!       (CONTRACT_VALIDATE_ERROR with the actuator's message), bandwidth (BANDWITH_ERROR)
//!  POST /wallet/gettransactioninfobyid | /walletsolidity/…     {} until in a (solid) block
//!  POST /wallet/gettransactionfrompending {value}
//!  GET  /v1/accounts/{address}/transactions                    TronGrid's history
//! ```
//!
//! Rules (java-tron actuators): FreezeBalanceV2 (≥ 1 TRX, ≤ balance); VoteWitness (1–30
//! witnesses, whole TRX, Σ votes ≤ TRON Power, replaces the list); UnfreezeBalanceV2
//! (≤ frozen, ≤ 32 pending, `getUnfreezeDelayDays` days, sweeps expired unfreezes into the
//! balance, scales votes down when power falls short); WithdrawExpireUnfreeze;
//! WithdrawBalance (once per 24 h). A transaction applies to the pending state when it is
//! accepted (as java-tron's pending pool does), is in the next block, and is solid
//! `solid_lag_blocks` later. At each maintenance (6 h) voters are paid for the period that
//! ends on the votes counted at its start: the top 127 witnesses share
//! `witness127_pay_per_block` by votes, the top 27 produce the blocks and earn
//! `witness_pay_per_block` each; a witness keeps its brokerage and its voters share the
//! rest by votes (java-tron `MortgageService`). Bandwidth: 600 free bytes a day per
//! account, then 1 000 sun per byte burned (frozen bandwidth is not counted here).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use crate::tron_codec::{self as wire, Address};
use anyhow::{Context, Result};
use axum::extract::{Path, Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use prost::Message;
use serde_json::{json, Value};

/// 1 TRX in sun.
pub const TRX: u128 = 1_000_000;
/// A day in ms (java-tron `FROZEN_PERIOD`).
pub const DAY_MS: i64 = 86_400_000;
/// Most pending unfreezes (java-tron `UNFREEZE_MAX_TIMES`).
pub const UNFREEZE_MAX_TIMES: usize = 32;
/// Most witnesses in one vote (java-tron `MAX_VOTE_NUMBER`).
pub const MAX_VOTE_NUMBER: usize = 30;
/// Free bandwidth per account per day, bytes (`getFreeNetLimit`).
pub const FREE_NET_LIMIT: u64 = 600;
/// Sun burned per byte beyond the free bandwidth (`getTransactionFee`).
pub const TRANSACTION_FEE_SUN_PER_BYTE: u128 = 1_000;
/// Recent blocks kept for TAPOS (java-tron keeps 65 536 by `ref_block_bytes`).
const TAPOS_SLOTS: usize = 65_536;
/// Most blocks one `produce` call makes (bounds the loop: 35 days of 3 s blocks).
const MAX_BLOCKS_PER_CALL: u64 = 1_000_000;

/// One witness (super representative candidate) at genesis.
#[derive(Debug, Clone)]
pub struct WitnessSpec {
    /// Base58 address.
    pub address: String,
    /// Its URL.
    pub url: String,
    /// Votes from others at genesis, whole TRX.
    pub votes: u64,
    /// Share of its rewards it keeps, percent (`getBrokerage`; 20 by default).
    pub brokerage_pct: u8,
}

/// The witnesses of `shared/data/tron/super_representatives.csv` (address, url,
/// vote_count, brokerage_pct), at most `limit`.
///
/// # Errors
/// A malformed row, named by its line.
pub fn witnesses_from_csv(text: &str, limit: usize) -> Result<Vec<WitnessSpec>> {
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in rd.records().enumerate().take(limit) {
        let row = row.with_context(|| format!("witness CSV line {}", i + 2))?;
        let field = |n: usize| row.get(n).unwrap_or("").to_string();
        out.push(WitnessSpec {
            address: field(0),
            url: field(2),
            votes: field(3)
                .parse()
                .with_context(|| format!("witness CSV line {}: vote_count", i + 2))?,
            brokerage_pct: field(4)
                .parse()
                .with_context(|| format!("witness CSV line {}: brokerage_pct", i + 2))?,
        });
    }
    Ok(out)
}

/// The chain's genesis.
#[derive(Debug, Clone)]
pub struct TronGenesis {
    /// Witnesses.
    pub witnesses: Vec<WitnessSpec>,
    /// Accounts with a balance: (base58 address, sun).
    pub accounts: Vec<(String, u128)>,
    /// Chain time of the genesis block, Unix ms.
    pub genesis_ms: i64,
    /// Block interval, ms (3 000 on mainnet).
    pub block_ms: i64,
    /// Maintenance interval, ms (`getMaintenanceTimeInterval`, 21 600 000 on mainnet).
    pub maintenance_interval_ms: i64,
    /// Days an unfreeze waits (`getUnfreezeDelayDays`, 14 on mainnet).
    pub unfreeze_delay_days: i64,
    /// Blocks after which a block is solid (about 2/3 of 27 witnesses: 19).
    pub solid_lag_blocks: u64,
    /// Voting reward per block shared by the top 127, sun (`getWitness127PayPerBlock`,
    /// 128 TRX on mainnet).
    pub witness127_pay_per_block_sun: u128,
    /// Block reward of the producing witness, sun (`getWitnessPayPerBlock`, 8 TRX).
    pub witness_pay_per_block_sun: u128,
    /// Real milliseconds between blocks produced on their own (0: only `produce`).
    pub tick_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct Account {
    balance: u128,
    frozen_bandwidth: u128,
    frozen_energy: u128,
    unfrozen: Vec<(u128, i64)>,
    votes: Vec<(Address, u64)>,
    /// The votes counted for the current maintenance period (its start's list).
    counted: Vec<(Address, u64)>,
    allowance: u128,
    latest_withdraw_time: i64,
    free_net_used: u64,
    free_net_day: i64,
}

impl Account {
    fn tron_power(&self) -> u128 {
        self.frozen_bandwidth + self.frozen_energy
    }
}

#[derive(Debug, Clone)]
struct Witness {
    address: Address,
    url: String,
    genesis_votes: u64,
    brokerage_pct: u8,
    produced: u64,
}

#[derive(Debug, Clone)]
struct TxRecord {
    id: String,
    raw: wire::Raw,
    signature: Vec<u8>,
    owner: Address,
    /// 0 while pending.
    block: u64,
    block_ms: i64,
    fee: u128,
    net_usage: u64,
    withdraw_amount: u128,
    withdraw_expire_amount: u128,
}

#[derive(Debug)]
struct Chain {
    g: TronGenesis,
    head: u64,
    head_ms: i64,
    head_id: [u8; 32],
    blocks: BTreeMap<u64, ([u8; 32], i64)>,
    /// `ref_block_bytes` → bytes 8..16 of that block's id (java-tron's recent-block store).
    tapos: HashMap<[u8; 2], [u8; 8]>,
    next_maintenance_ms: i64,
    accounts: HashMap<Address, Account>,
    witnesses: Vec<Witness>,
    txs: HashMap<String, TxRecord>,
    order: Vec<String>,
    /// Accepted and not yet in a block: the next block takes them all.
    pending: Vec<String>,
}

/// A refusal in java-tron's broadcast shape: its response code and message.
struct Refusal(&'static str, String);

fn refuse(code: &'static str, msg: impl Into<String>) -> Refusal {
    Refusal(code, msg.into())
}

fn validate_err(msg: impl Into<String>) -> Refusal {
    Refusal(
        "CONTRACT_VALIDATE_ERROR",
        format!("Contract validate error : {}", msg.into()),
    )
}

fn addr(text: &str) -> Result<Address> {
    wire::parse_address(text).map_err(anyhow::Error::msg)
}

impl Chain {
    fn new(g: TronGenesis) -> Result<Chain> {
        anyhow::ensure!(
            g.block_ms > 0 && g.maintenance_interval_ms > 0,
            "block and maintenance intervals must be > 0"
        );
        let mut accounts = HashMap::new();
        for (a, sun) in &g.accounts {
            accounts.insert(
                addr(a)?,
                Account {
                    balance: *sun,
                    ..Account::default()
                },
            );
        }
        let mut witnesses = Vec::new();
        for w in &g.witnesses {
            let a = addr(&w.address).with_context(|| format!("witness {}", w.address))?;
            accounts.entry(a).or_default();
            witnesses.push(Witness {
                address: a,
                url: w.url.clone(),
                genesis_votes: w.votes,
                brokerage_pct: w.brokerage_pct.min(100),
                produced: 0,
            });
        }
        let interval = g.maintenance_interval_ms;
        let mut c = Chain {
            head: 0,
            head_ms: g.genesis_ms,
            head_id: [0; 32],
            blocks: BTreeMap::new(),
            tapos: HashMap::new(),
            next_maintenance_ms: (g.genesis_ms / interval + 1) * interval,
            accounts,
            witnesses,
            txs: HashMap::new(),
            order: Vec::new(),
            pending: Vec::new(),
            g,
        };
        c.seal(0, c.head_ms);
        Ok(c)
    }

    /// Records block `number` at `ms` as the head.
    fn seal(&mut self, number: u64, ms: i64) {
        let mut h = sha2_256(&[&self.head_id[..], &number.to_be_bytes()[..], &ms.to_be_bytes()[..]]);
        h[..8].copy_from_slice(&number.to_be_bytes());
        self.head = number;
        self.head_ms = ms;
        self.head_id = h;
        self.blocks.insert(number, (h, ms));
        while self.blocks.len() > TAPOS_SLOTS {
            self.blocks.pop_first();
        }
        let mut key = [0u8; 2];
        key.copy_from_slice(&number.to_be_bytes()[6..8]);
        let mut hash = [0u8; 8];
        hash.copy_from_slice(&h[8..16]);
        self.tapos.insert(key, hash);
    }

    fn produce(&mut self, n: u64) {
        for _ in 0..n.min(MAX_BLOCKS_PER_CALL) {
            let ms = self.head_ms + self.g.block_ms;
            let number = self.head + 1;
            self.seal(number, ms);
            for id in self.pending.drain(..) {
                if let Some(t) = self.txs.get_mut(&id) {
                    t.block = number;
                    t.block_ms = ms;
                }
            }
            while self.head_ms >= self.next_maintenance_ms {
                self.maintenance();
                self.next_maintenance_ms += self.g.maintenance_interval_ms;
            }
        }
    }

    fn solid(&self) -> u64 {
        self.head.saturating_sub(self.g.solid_lag_blocks)
    }

    /// Votes per witness: genesis votes plus every account's `counted` (or current) list.
    fn totals(&self, counted: bool) -> HashMap<Address, u128> {
        let mut t: HashMap<Address, u128> = self
            .witnesses
            .iter()
            .map(|w| (w.address, u128::from(w.genesis_votes)))
            .collect();
        for a in self.accounts.values() {
            for (w, n) in if counted { &a.counted } else { &a.votes } {
                *t.entry(*w).or_default() += u128::from(*n);
            }
        }
        t
    }

    /// Witnesses by votes, most first (address breaks ties).
    fn ranked(&self, counted: bool) -> Vec<(Address, u128)> {
        let totals = self.totals(counted);
        let mut r: Vec<(Address, u128)> = self
            .witnesses
            .iter()
            .map(|w| (w.address, totals.get(&w.address).copied().unwrap_or(0)))
            .collect();
        r.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        r
    }

    /// Pays the period that ends on the votes counted at its start, then counts the
    /// current votes for the next one.
    fn maintenance(&mut self) {
        let blocks = u128::try_from(self.g.maintenance_interval_ms / self.g.block_ms).unwrap_or(0);
        let ranked = self.ranked(true);
        let top127: Vec<(Address, u128)> = ranked.iter().take(127).copied().collect();
        let sum127: u128 = top127.iter().map(|w| w.1).sum();
        let mut voters_pay: HashMap<Address, (u128, u128)> = HashMap::new();
        for (rank, (w, votes)) in top127.iter().enumerate() {
            let voting = (blocks * self.g.witness127_pay_per_block_sun * votes)
                .checked_div(sum127)
                .unwrap_or(0);
            let producing = if rank < 27 {
                blocks / 27 * self.g.witness_pay_per_block_sun
            } else {
                0
            };
            let brokerage = self
                .witnesses
                .iter()
                .find(|x| x.address == *w)
                .map_or(20, |x| u128::from(x.brokerage_pct));
            voters_pay.insert(*w, ((voting + producing) * (100 - brokerage) / 100, *votes));
        }
        for w in ranked.iter().take(27) {
            if let Some(x) = self.witnesses.iter_mut().find(|x| x.address == w.0) {
                x.produced += u64::try_from(blocks / 27).unwrap_or(0);
            }
        }
        for a in self.accounts.values_mut() {
            for (w, n) in &a.counted {
                if let Some((pay, total)) = voters_pay.get(w) {
                    a.allowance += (pay * u128::from(*n)).checked_div(*total).unwrap_or(0);
                }
            }
            a.counted = a.votes.clone();
        }
    }

    /// Checks and applies a hex transaction as java-tron's `broadcasthex` does.
    fn broadcast(&mut self, hex_tx: &str) -> std::result::Result<String, Refusal> {
        let bytes = hex::decode(hex_tx).map_err(|e| refuse("OTHER_ERROR", format!("not hex: {e}")))?;
        let tx = wire::Transaction::decode(bytes.as_slice())
            .map_err(|e| refuse("OTHER_ERROR", format!("not a Transaction: {e}")))?;
        let raw = wire::Raw::decode(tx.raw_data.as_slice())
            .map_err(|e| refuse("OTHER_ERROR", format!("not a Transaction.raw: {e}")))?;
        let id_bytes = wire::tx_id(&tx.raw_data);
        let id = hex::encode(id_bytes);
        if self.txs.contains_key(&id) {
            return Err(refuse("DUP_TRANSACTION_ERROR", "dup trans"));
        }
        if raw.expiration <= self.head_ms {
            return Err(refuse(
                "TRANSACTION_EXPIRATION_ERROR",
                format!(
                    "Transaction expiration, transaction expiration time is {}, but headBlockTime is {}",
                    raw.expiration, self.head_ms
                ),
            ));
        }
        if raw.expiration > self.head_ms + DAY_MS {
            return Err(refuse(
                "TRANSACTION_EXPIRATION_ERROR",
                format!("expiration time is too long: {} > head + 24 h", raw.expiration),
            ));
        }
        self.check_tapos(&raw)?;
        let [contract] = raw.contract.as_slice() else {
            return Err(validate_err("act size should be exactly 1, this is extend feature"));
        };
        let param = contract.parameter.clone().ok_or_else(|| validate_err("No contract!"))?;
        let owner_bytes = wire::OwnerOnly::decode(param.value.as_slice())
            .map_err(|e| validate_err(e.to_string()))?
            .owner_address;
        let owner: Address = owner_bytes
            .as_slice()
            .try_into()
            .map_err(|_| validate_err("Invalid address"))?;
        let [sig] = tx.signature.as_slice() else {
            return Err(refuse(
                "SIGERROR",
                format!("{} signatures: exactly one expected", tx.signature.len()),
            ));
        };
        let signer =
            wire::recover(&id_bytes, sig).map_err(|e| refuse("SIGERROR", format!("Validate signature error: {e}")))?;
        if signer != owner {
            return Err(refuse(
                "SIGERROR",
                format!(
                    "Validate signature error: {} is signed by {} but it is not contained of permission.",
                    hex::encode(sig),
                    wire::to_base58(&signer)
                ),
            ));
        }
        if !self.accounts.contains_key(&owner) {
            return Err(validate_err(format!("Account[{}] does not exist", hex::encode(owner))));
        }
        let net = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let fee = self.bandwidth_fee(&owner, net)?;
        // validate on a copy, then apply: a refusal changes nothing
        let mut acct = self.accounts.get(&owner).cloned().unwrap_or_default();
        let mut rec = TxRecord {
            id: id.clone(),
            raw: raw.clone(),
            signature: sig.clone(),
            owner,
            block: 0,
            block_ms: 0,
            fee,
            net_usage: if fee == 0 { net } else { 0 },
            withdraw_amount: 0,
            withdraw_expire_amount: 0,
        };
        self.apply(contract.r#type, &param.value, &mut acct, &mut rec)?;
        acct.balance = acct
            .balance
            .checked_sub(fee)
            .ok_or_else(|| refuse("BANDWITH_ERROR", "Account resource insufficient error."))?;
        if fee == 0 {
            acct.free_net_used += net;
        }
        self.accounts.insert(owner, acct);
        self.txs.insert(id.clone(), rec);
        self.order.push(id.clone());
        self.pending.push(id.clone());
        Ok(id)
    }

    fn check_tapos(&self, raw: &wire::Raw) -> std::result::Result<(), Refusal> {
        let key: [u8; 2] = raw
            .ref_block_bytes
            .as_slice()
            .try_into()
            .map_err(|_| refuse("TAPOS_ERROR", "Tapos failed, ref_block_bytes is not 2 bytes"))?;
        match self.tapos.get(&key) {
            Some(h) if h[..] == raw.ref_block_hash[..] => Ok(()),
            Some(h) => Err(refuse(
                "TAPOS_ERROR",
                format!(
                    "Tapos failed, different block hash, {}, {}",
                    hex::encode(key),
                    hex::encode(h)
                ),
            )),
            None => Err(refuse(
                "TAPOS_ERROR",
                format!("Tapos failed, block not found, ref block is {}", hex::encode(key)),
            )),
        }
    }

    /// Free bandwidth first (600 bytes a day), else 1 000 sun per byte burned.
    fn bandwidth_fee(&mut self, owner: &Address, net: u64) -> std::result::Result<u128, Refusal> {
        let day = self.head_ms / DAY_MS;
        let a = self.accounts.entry(*owner).or_default();
        if a.free_net_day != day {
            a.free_net_day = day;
            a.free_net_used = 0;
        }
        if a.free_net_used + net <= FREE_NET_LIMIT {
            return Ok(0);
        }
        let burn = u128::from(net) * TRANSACTION_FEE_SUN_PER_BYTE;
        if a.balance < burn {
            return Err(Refusal("BANDWITH_ERROR", "Account resource insufficient error.".into()));
        }
        Ok(burn)
    }

    fn apply(&self, kind: i32, value: &[u8], a: &mut Account, rec: &mut TxRecord) -> std::result::Result<(), Refusal> {
        let bad = |e: prost::DecodeError| validate_err(e.to_string());
        match kind {
            wire::FREEZE_BALANCE_V2 => {
                let c = wire::FreezeBalanceV2::decode(value).map_err(bad)?;
                let f = u128::try_from(c.frozen_balance).unwrap_or(0);
                if f < TRX {
                    return Err(validate_err("frozenBalance must be greater than or equal to 1 TRX"));
                }
                if f > a.balance {
                    return Err(validate_err(
                        "frozenBalance must be less than or equal to accountBalance",
                    ));
                }
                a.balance -= f;
                match c.resource {
                    wire::BANDWIDTH => a.frozen_bandwidth += f,
                    wire::ENERGY => a.frozen_energy += f,
                    _ => {
                        return Err(validate_err(
                            "ResourceCode error, valid ResourceCode[BANDWIDTH、ENERGY]",
                        ))
                    }
                }
            }
            wire::UNFREEZE_BALANCE_V2 => {
                let c = wire::UnfreezeBalanceV2::decode(value).map_err(bad)?;
                let frozen = match c.resource {
                    wire::BANDWIDTH if a.frozen_bandwidth > 0 => a.frozen_bandwidth,
                    wire::BANDWIDTH => return Err(validate_err("no frozenBalance(BANDWIDTH)")),
                    wire::ENERGY if a.frozen_energy > 0 => a.frozen_energy,
                    wire::ENERGY => return Err(validate_err("no frozenBalance(Energy)")),
                    _ => {
                        return Err(validate_err(
                            "ResourceCode error.valid ResourceCode[BANDWIDTH、Energy、TRON_POWER]",
                        ))
                    }
                };
                let u = u128::try_from(c.unfreeze_balance).unwrap_or(0);
                if u == 0 || u > frozen {
                    return Err(validate_err(format!(
                        "Invalid unfreeze_balance, [{}] is error",
                        c.unfreeze_balance
                    )));
                }
                if a.unfrozen.iter().filter(|x| x.1 > self.head_ms).count() >= UNFREEZE_MAX_TIMES {
                    return Err(validate_err(
                        "Invalid unfreeze operation, unfreezing times is over limit",
                    ));
                }
                rec.withdraw_expire_amount = sweep_expired(a, self.head_ms);
                if c.resource == wire::BANDWIDTH {
                    a.frozen_bandwidth -= u;
                } else {
                    a.frozen_energy -= u;
                }
                a.unfrozen.push((u, self.head_ms + self.g.unfreeze_delay_days * DAY_MS));
                scale_votes(a);
            }
            wire::WITHDRAW_EXPIRE_UNFREEZE => {
                let expired = sweep_expired(a, self.head_ms);
                if expired == 0 {
                    return Err(validate_err("no unFreeze balance to withdraw "));
                }
                rec.withdraw_expire_amount = expired;
            }
            wire::VOTE_WITNESS => {
                let c = wire::VoteWitness::decode(value).map_err(bad)?;
                a.votes = self.check_votes(&c, a)?;
            }
            wire::WITHDRAW_BALANCE => {
                if self.head_ms - a.latest_withdraw_time < DAY_MS {
                    return Err(validate_err(format!(
                        "The last withdraw time is {}, less than 24 hours",
                        a.latest_withdraw_time
                    )));
                }
                if a.allowance == 0 {
                    return Err(validate_err("witnessAccount does not have any reward"));
                }
                rec.withdraw_amount = a.allowance;
                a.balance += a.allowance;
                a.allowance = 0;
                a.latest_withdraw_time = self.head_ms;
            }
            other => {
                return Err(validate_err(format!(
                    "contract type {other} is not supported by this local chain"
                )))
            }
        }
        Ok(())
    }

    fn check_votes(&self, c: &wire::VoteWitness, a: &Account) -> std::result::Result<Vec<(Address, u64)>, Refusal> {
        if c.votes.is_empty() {
            return Err(validate_err("VoteNumber must more than 0"));
        }
        if c.votes.len() > MAX_VOTE_NUMBER {
            return Err(validate_err(format!(
                "VoteNumber more than maxVoteNumber {MAX_VOTE_NUMBER}"
            )));
        }
        let mut out = Vec::new();
        let mut sum: u128 = 0;
        for v in &c.votes {
            let w: Address = v
                .vote_address
                .as_slice()
                .try_into()
                .map_err(|_| validate_err("Invalid vote address!"))?;
            if v.vote_count <= 0 {
                return Err(validate_err("vote count must be greater than 0"));
            }
            if !self.witnesses.iter().any(|x| x.address == w) {
                return Err(validate_err(format!("Witness[{}] not exists", hex::encode(w))));
            }
            let n = u64::try_from(v.vote_count).unwrap_or(0);
            sum += u128::from(n);
            out.push((w, n));
        }
        if sum * TRX > a.tron_power() {
            return Err(validate_err(format!(
                "The total number of votes[{}] is greater than the tronPower[{}]",
                sum * TRX,
                a.tron_power()
            )));
        }
        Ok(out)
    }

    fn account_json(&self, a: &Address) -> Value {
        let Some(x) = self.accounts.get(a) else {
            return json!({});
        };
        let mut v = json!({
            "address": wire::to_base58(a),
            "create_time": self.g.genesis_ms,
            "frozenV2": [
                nonzero(json!({}), "amount", x.frozen_bandwidth),
                nonzero(json!({"type": "ENERGY"}), "amount", x.frozen_energy),
                {"type": "TRON_POWER"},
            ],
        });
        // protobuf's JSON leaves zero fields out
        v = nonzero(v, "balance", x.balance);
        v = nonzero(v, "allowance", x.allowance);
        v = nonzero(
            v,
            "latest_withdraw_time",
            u128::try_from(x.latest_withdraw_time).unwrap_or(0),
        );
        if !x.unfrozen.is_empty() {
            v["unfrozenV2"] = x
                .unfrozen
                .iter()
                .map(|(amount, at)| json!({"unfreeze_amount": amount, "unfreeze_expire_time": at}))
                .collect();
        }
        if !x.votes.is_empty() {
            v["votes"] = x
                .votes
                .iter()
                .map(|(w, n)| json!({"vote_address": wire::to_base58(w), "vote_count": n}))
                .collect();
        }
        v
    }

    fn block_json(&self, number: u64) -> Value {
        let (id, ms) = self
            .blocks
            .get(&number)
            .copied()
            .unwrap_or((self.head_id, self.head_ms));
        let parent = self
            .blocks
            .get(&number.saturating_sub(1))
            .map(|b| b.0)
            .unwrap_or([0; 32]);
        json!({
            "blockID": hex::encode(id),
            "block_header": {
                "raw_data": {
                    "number": number,
                    "txTrieRoot": hex::encode([0u8; 32]),
                    "witness_address": self.witnesses.first().map(|w| hex::encode(w.address)).unwrap_or_default(),
                    "parentHash": hex::encode(parent),
                    "version": 30,
                    "timestamp": ms,
                },
                "witness_signature": "",
            },
        })
    }

    fn info_json(&self, id: &str, solid: bool) -> Value {
        let Some(t) = self.txs.get(id) else {
            return json!({});
        };
        let limit = if solid { self.solid() } else { self.head };
        if t.block == 0 || t.block > limit {
            return json!({});
        }
        let receipt = if t.fee > 0 {
            json!({"net_fee": t.fee})
        } else {
            json!({"net_usage": t.net_usage})
        };
        let mut v = json!({
            "id": t.id,
            "blockNumber": t.block,
            "blockTimeStamp": t.block_ms,
            "contractResult": [""],
            "receipt": receipt,
        });
        v = nonzero(v, "fee", t.fee);
        v = nonzero(v, "withdraw_amount", t.withdraw_amount);
        nonzero(v, "withdraw_expire_amount", t.withdraw_expire_amount)
    }

    fn history_json(&self, a: &Address, q: &HashMap<String, String>) -> Value {
        let confirmed = q.get("only_confirmed").is_some_and(|v| v == "true");
        let min = q.get("min_timestamp").and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let limit = q
            .get("limit")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(20)
            .clamp(1, 200);
        let solid = self.solid();
        let mut rows: Vec<&TxRecord> = self
            .order
            .iter()
            .filter_map(|id| self.txs.get(id))
            .filter(|t| t.owner == *a && t.block > 0 && (!confirmed || t.block <= solid) && t.block_ms >= min)
            .collect();
        rows.sort_by_key(|t| (t.block_ms, t.block));
        if q.get("order_by").is_some_and(|o| o.ends_with(",desc")) {
            rows.reverse();
        }
        let data: Vec<Value> = rows
            .into_iter()
            .take(limit)
            .map(|t| {
                let c = t.raw.contract.first();
                let kind = c.and_then(|c| wire::contract_name(c.r#type)).unwrap_or("Unknown");
                let type_url = c
                    .and_then(|c| c.parameter.as_ref())
                    .map(|p| p.type_url.clone())
                    .unwrap_or_default();
                json!({
                    "ret": [{"contractRet": "SUCCESS", "fee": t.fee}],
                    "signature": [hex::encode(&t.signature)],
                    "txID": t.id,
                    "net_usage": t.net_usage,
                    "raw_data_hex": hex::encode(t.raw.encode_to_vec()),
                    "net_fee": t.fee,
                    "energy_usage": 0,
                    "blockNumber": t.block,
                    "block_timestamp": t.block_ms,
                    "energy_fee": 0,
                    "energy_usage_total": 0,
                    "raw_data": {
                        "contract": [{
                            "parameter": {
                                "value": {"owner_address": hex::encode(t.owner)},
                                "type_url": type_url,
                            },
                            "type": kind,
                        }],
                        "ref_block_bytes": hex::encode(&t.raw.ref_block_bytes),
                        "ref_block_hash": hex::encode(&t.raw.ref_block_hash),
                        "expiration": t.raw.expiration,
                        "timestamp": t.raw.timestamp,
                    },
                    "internal_transactions": [],
                })
            })
            .collect();
        json!({"data": data, "success": true, "meta": {"at": self.head_ms, "page_size": data.len()}})
    }
}

fn nonzero(mut v: Value, key: &str, amount: u128) -> Value {
    if amount > 0 {
        v[key] = json!(amount);
    }
    v
}

fn sha2_256(parts: &[&[u8]]) -> [u8; 32] {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// Moves expired unfreezes into the balance; returns their sum.
fn sweep_expired(a: &mut Account, now_ms: i64) -> u128 {
    let expired: u128 = a.unfrozen.iter().filter(|u| u.1 <= now_ms).map(|u| u.0).sum();
    a.unfrozen.retain(|u| u.1 > now_ms);
    a.balance += expired;
    expired
}

/// java-tron `UnfreezeBalanceV2Actuator.updateVote`: when TRON Power no longer covers the
/// votes, each is scaled to `votes / total × power` (floored), zeros dropped.
fn scale_votes(a: &mut Account) {
    let total: u128 = a.votes.iter().map(|v| u128::from(v.1)).sum();
    let power = a.tron_power();
    if total == 0 || power >= total * TRX {
        return;
    }
    a.votes = a
        .votes
        .iter()
        .filter_map(|(w, n)| {
            let scaled = u128::from(*n) * power / total / TRX;
            (scaled > 0).then(|| (*w, u64::try_from(scaled).unwrap_or(0)))
        })
        .collect();
}

type Shared = Arc<Mutex<Chain>>;

/// A running local TRON chain; stopped when dropped.
#[derive(Debug)]
pub struct LocalTron {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    chain: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalTron {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn lock(chain: &Shared) -> std::sync::MutexGuard<'_, Chain> {
    chain.lock().unwrap_or_else(|p| p.into_inner())
}

/// Starts the chain on 127.0.0.1:`port` (0 = any free port).
///
/// # Errors
/// A malformed genesis (addresses, intervals) or a port that cannot be bound.
pub async fn start(genesis: TronGenesis, port: u16) -> Result<LocalTron> {
    let tick_ms = genesis.tick_ms;
    let chain: Shared = Arc::new(Mutex::new(Chain::new(genesis)?));
    let app = Router::new()
        .route("/wallet/getnowblock", post(now_block))
        .route("/walletsolidity/getnowblock", post(solid_block))
        .route("/wallet/getaccount", post(get_account))
        .route("/walletsolidity/getaccount", post(get_account))
        .route("/wallet/getReward", post(get_reward))
        .route("/wallet/getchainparameters", post(chain_parameters))
        .route("/wallet/getnextmaintenancetime", post(next_maintenance))
        .route("/wallet/listwitnesses", post(list_witnesses))
        .route("/wallet/getBrokerage", post(get_brokerage))
        .route("/wallet/broadcasthex", post(broadcast_hex))
        .route("/wallet/gettransactioninfobyid", post(tx_info))
        .route("/walletsolidity/gettransactioninfobyid", post(solid_tx_info))
        .route("/wallet/gettransactionfrompending", post(from_pending))
        .route("/v1/accounts/{address}/transactions", get(history))
        .with_state(chain.clone());
    let ticking = chain.clone();
    let (addr, server) = crate::serve(app, port, tick_ms, move || lock(&ticking).produce(1))
        .await
        .context("the local TRON HTTP API")?;
    Ok(LocalTron {
        url: format!("http://{addr}"),
        chain,
        server,
    })
}

impl LocalTron {
    /// Produces `blocks` blocks (maintenance and rewards at each 6 h boundary).
    pub fn produce(&self, blocks: u64) {
        lock(&self.chain).produce(blocks);
    }

    /// Produces blocks for `secs` seconds of chain time.
    pub fn advance_secs(&self, secs: i64) {
        let mut c = lock(&self.chain);
        let n = u64::try_from(secs * 1_000 / c.g.block_ms).unwrap_or(0);
        c.produce(n);
    }

    /// Produces blocks up to just past the `n`-th next maintenance.
    pub fn advance_maintenances(&self, n: u32) {
        let mut c = lock(&self.chain);
        let target = c.next_maintenance_ms + i64::from(n.saturating_sub(1)) * c.g.maintenance_interval_ms;
        let blocks = u64::try_from((target - c.head_ms) / c.g.block_ms + 1).unwrap_or(0);
        c.produce(blocks);
    }

    /// Produces enough blocks for every accepted transaction to be solid.
    pub fn solidify(&self) {
        let mut c = lock(&self.chain);
        let n = c.g.solid_lag_blocks + 1;
        c.produce(n);
    }

    /// `address`'s balance, sun.
    pub fn balance(&self, address: &str) -> u128 {
        let c = lock(&self.chain);
        addr(address)
            .ok()
            .and_then(|a| c.accounts.get(&a).map(|x| x.balance))
            .unwrap_or(0)
    }

    /// `address`'s (frozen TRON Power, Σ pending unfreezes, unclaimed reward), sun.
    pub fn stake(&self, address: &str) -> (u128, u128, u128) {
        let c = lock(&self.chain);
        addr(address)
            .ok()
            .and_then(|a| c.accounts.get(&a))
            .map(|x| (x.tron_power(), x.unfrozen.iter().map(|u| u.0).sum(), x.allowance))
            .unwrap_or((0, 0, 0))
    }

    /// `address`'s votes for `witness`, whole TRX.
    pub fn votes(&self, address: &str, witness: &str) -> u64 {
        let c = lock(&self.chain);
        let (Ok(a), Ok(w)) = (addr(address), addr(witness)) else {
            return 0;
        };
        c.accounts
            .get(&a)
            .and_then(|x| x.votes.iter().find(|v| v.0 == w).map(|v| v.1))
            .unwrap_or(0)
    }

    /// The head block time, Unix ms.
    pub fn head_ms(&self) -> i64 {
        lock(&self.chain).head_ms
    }
}

type Body = Json<Value>;

fn address_param(body: &Value) -> Option<Address> {
    body["address"].as_str().and_then(|a| addr(a).ok())
}

async fn now_block(State(c): State<Shared>) -> Body {
    let c = lock(&c);
    Json(c.block_json(c.head))
}

async fn solid_block(State(c): State<Shared>) -> Body {
    let c = lock(&c);
    Json(c.block_json(c.solid()))
}

async fn get_account(State(c): State<Shared>, Json(body): Json<Value>) -> Body {
    let c = lock(&c);
    match address_param(&body) {
        Some(a) => Json(c.account_json(&a)),
        None => Json(json!({"Error": "class java.lang.IllegalArgumentException : invalid address"})),
    }
}

async fn get_reward(State(c): State<Shared>, Json(body): Json<Value>) -> Body {
    let c = lock(&c);
    let r = address_param(&body)
        .and_then(|a| c.accounts.get(&a).map(|x| x.allowance))
        .unwrap_or(0);
    Json(json!({ "reward": r }))
}

async fn chain_parameters(State(c): State<Shared>) -> Body {
    let c = lock(&c);
    Json(json!({"chainParameter": [
        {"key": "getMaintenanceTimeInterval", "value": c.g.maintenance_interval_ms},
        {"key": "getTransactionFee", "value": TRANSACTION_FEE_SUN_PER_BYTE},
        {"key": "getFreeNetLimit", "value": FREE_NET_LIMIT},
        {"key": "getWitnessPayPerBlock", "value": c.g.witness_pay_per_block_sun},
        {"key": "getWitness127PayPerBlock", "value": c.g.witness127_pay_per_block_sun},
        {"key": "getAllowNewResourceModel", "value": 1},
        {"key": "getUnfreezeDelayDays", "value": c.g.unfreeze_delay_days},
    ]}))
}

async fn next_maintenance(State(c): State<Shared>) -> Body {
    Json(json!({ "num": lock(&c).next_maintenance_ms }))
}

async fn list_witnesses(State(c): State<Shared>) -> Body {
    let c = lock(&c);
    let ranked = c.ranked(false);
    let ws: Vec<Value> = ranked
        .iter()
        .enumerate()
        .filter_map(|(i, (a, votes))| {
            let w = c.witnesses.iter().find(|w| w.address == *a)?;
            Some(json!({
                "address": wire::to_base58(a),
                "voteCount": votes,
                "url": w.url,
                "totalProduced": w.produced,
                "totalMissed": 0,
                "latestBlockNum": c.head,
                "isJobs": i < 27,
            }))
        })
        .collect();
    Json(json!({ "witnesses": ws }))
}

async fn get_brokerage(State(c): State<Shared>, Json(body): Json<Value>) -> Body {
    let c = lock(&c);
    let b = address_param(&body)
        .and_then(|a| c.witnesses.iter().find(|w| w.address == a))
        .map_or(20, |w| w.brokerage_pct);
    Json(json!({ "brokerage": b }))
}

async fn broadcast_hex(State(c): State<Shared>, Json(body): Json<Value>) -> Body {
    let mut c = lock(&c);
    let hex_tx = body["transaction"].as_str().unwrap_or("");
    match c.broadcast(hex_tx) {
        Ok(id) => Json(json!({"result": true, "txid": id})),
        Err(Refusal(code, message)) => Json(json!({"result": false, "code": code, "message": message})),
    }
}

async fn tx_info(State(c): State<Shared>, Json(body): Json<Value>) -> Body {
    Json(lock(&c).info_json(body["value"].as_str().unwrap_or(""), false))
}

async fn solid_tx_info(State(c): State<Shared>, Json(body): Json<Value>) -> Body {
    Json(lock(&c).info_json(body["value"].as_str().unwrap_or(""), true))
}

async fn from_pending(State(c): State<Shared>, Json(body): Json<Value>) -> Body {
    let c = lock(&c);
    match c.txs.get(body["value"].as_str().unwrap_or("")) {
        Some(t) if t.block == 0 => Json(json!({"txID": t.id, "raw_data_hex": hex::encode(t.raw.encode_to_vec())})),
        _ => Json(json!({})),
    }
}

async fn history(
    State(c): State<Shared>,
    Path(address): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Body {
    let c = lock(&c);
    match addr(&address) {
        Ok(a) => Json(c.history_json(&a, &q)),
        Err(e) => Json(json!({"success": false, "error": e.to_string(), "statusCode": 400})),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::ecdsa::SigningKey;

    fn genesis(owner: &str) -> TronGenesis {
        TronGenesis {
            witnesses: witnesses_from_csv(include_str!("../../../data/tron/super_representatives.csv"), 30).unwrap(),
            accounts: vec![(owner.into(), 1_000 * TRX)],
            genesis_ms: 1_750_000_000_000,
            block_ms: 3_000,
            maintenance_interval_ms: 21_600_000,
            unfreeze_delay_days: 14,
            solid_lag_blocks: 19,
            witness127_pay_per_block_sun: 128 * TRX,
            witness_pay_per_block_sun: 8 * TRX,
            tick_ms: 0,
        }
    }

    fn sign(key: &SigningKey, id: &[u8; 32]) -> Vec<u8> {
        let (sig, rec) = key.sign_prehash_recoverable(id).unwrap();
        let mut out = sig.to_bytes().to_vec();
        out.push(rec.to_byte() + 27);
        out
    }

    fn contract<M: Message>(contract_type: i32, name: &str, m: &M) -> wire::Contract {
        wire::Contract {
            r#type: contract_type,
            parameter: Some(wire::Any {
                type_url: format!("type.googleapis.com/protocol.{name}"),
                value: m.encode_to_vec(),
            }),
            permission_id: 0,
        }
    }

    fn signed(c: &Chain, key: &SigningKey, contract: wire::Contract, expiration: i64) -> String {
        let raw = wire::Raw {
            ref_block_bytes: c.head.to_be_bytes()[6..8].to_vec(),
            ref_block_hash: c.head_id[8..16].to_vec(),
            expiration,
            contract: vec![contract],
            timestamp: c.head_ms,
            ..wire::Raw::default()
        }
        .encode_to_vec();
        let sig = sign(key, &wire::tx_id(&raw));
        hex::encode(
            wire::Transaction {
                raw_data: raw,
                signature: vec![sig],
            }
            .encode_to_vec(),
        )
    }

    #[test]
    fn success_freeze_vote_and_fail_on_java_tron_rules() {
        let key = SigningKey::from_slice(&[9u8; 32]).unwrap();
        let me = wire::address_of(key.verifying_key());
        let mut c = Chain::new(genesis(&wire::to_base58(&me))).unwrap();
        let exp = c.head_ms + 60_000;
        let freeze = |n: i64| {
            contract(
                wire::FREEZE_BALANCE_V2,
                "FreezeBalanceV2Contract",
                &wire::FreezeBalanceV2 {
                    owner_address: me.to_vec(),
                    frozen_balance: n,
                    resource: wire::BANDWIDTH,
                },
            )
        };
        let tx = signed(&c, &key, freeze(100 * 1_000_000), exp);
        c.broadcast(&tx).map_err(|r| r.1).unwrap();
        assert!(matches!(c.broadcast(&tx), Err(Refusal("DUP_TRANSACTION_ERROR", _))));
        let w = c.witnesses[0].address;
        let vote = |n: i64| {
            contract(
                wire::VOTE_WITNESS,
                "VoteWitnessContract",
                &wire::VoteWitness {
                    owner_address: me.to_vec(),
                    votes: vec![wire::Vote {
                        vote_address: w.to_vec(),
                        vote_count: n,
                    }],
                    support: false,
                },
            )
        };
        let Err(Refusal(code, msg)) = c.broadcast(&signed(&c, &key, vote(101), exp)) else {
            panic!("101 votes with 100 TRX of power")
        };
        assert_eq!(code, "CONTRACT_VALIDATE_ERROR");
        assert!(msg.contains("greater than the tronPower"), "{msg}");
        c.broadcast(&signed(&c, &key, vote(100), exp)).map_err(|r| r.1).unwrap();
        // another key signing for this owner
        let other = SigningKey::from_slice(&[8u8; 32]).unwrap();
        assert!(matches!(
            c.broadcast(&signed(&c, &other, vote(1), exp)),
            Err(Refusal("SIGERROR", _))
        ));
        // expired and unknown reference block
        assert!(matches!(
            c.broadcast(&signed(&c, &key, vote(2), c.head_ms)),
            Err(Refusal("TRANSACTION_EXPIRATION_ERROR", _))
        ));
        let mut bad =
            wire::Transaction::decode(hex::decode(signed(&c, &key, vote(3), exp)).unwrap().as_slice()).unwrap();
        let mut raw = wire::Raw::decode(bad.raw_data.as_slice()).unwrap();
        raw.ref_block_hash = vec![0; 8];
        bad.raw_data = raw.encode_to_vec();
        bad.signature = vec![sign(&key, &wire::tx_id(&bad.raw_data))];
        assert!(matches!(
            c.broadcast(&hex::encode(bad.encode_to_vec())),
            Err(Refusal("TAPOS_ERROR", _))
        ));
        // rewards start after the next maintenance counts the votes, and are paid the one after
        c.produce(21_600_000 / 3_000 + 1);
        assert_eq!(c.accounts[&me].allowance, 0);
        c.produce(21_600_000 / 3_000);
        assert!(c.accounts[&me].allowance > 0);
    }

    #[test]
    fn success_unfreeze_scales_votes_and_sweeps_expired() {
        let mut a = Account {
            frozen_bandwidth: 10 * TRX,
            votes: vec![([0x41; 21], 6), ([0x42; 21], 4)],
            unfrozen: vec![(5 * TRX, 100)],
            ..Account::default()
        };
        a.frozen_bandwidth = 5 * TRX;
        scale_votes(&mut a);
        assert_eq!(a.votes, vec![([0x41; 21], 3), ([0x42; 21], 2)]);
        assert_eq!(sweep_expired(&mut a, 100), 5 * TRX);
        assert_eq!(a.balance, 5 * TRX);
        assert!(a.unfrozen.is_empty());
    }
}
