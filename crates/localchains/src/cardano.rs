//! A local Cardano chain behind Blockfrost's REST API (the routes the adapter reads and
//! `POST /tx/submit` with CBOR), over the Conway ledger rules a staking treasury meets, on
//! a clock the tests control. Every answer carries every field of Blockfrost's OpenAPI
//! model (`BlockContent`, `EpochParamContent`, `AccountContent`, `TxContent`, …: the
//! adapter reads them through Blockfrost's own SDK, which refuses a missing key), and a
//! project id can be required as the hosted API does (403 without it).
//!
//! ```text
//!  /tx/submit(CBOR) ─▶ decode (pallas) ─▶ TTL ─▶ inputs unspent ─▶ witnesses (ed25519 over
//!                      the body hash; payment keys of the inputs, stake keys of the
//!                      certificates and withdrawals) ─▶ fee ≥ a·size + b ─▶ min UTxO ─▶
//!                      withdrawals (whole balance, vote delegated) then certificates
//!                      (deposits, refunds) ─▶ value preserved ─▶ mempool ─▶ next block
//!  epoch boundary: rewards of the snapshot three boundaries back (taken at the start of
//!                  epoch e, it elects the leaders of e + 1 and is paid at the start of
//!                  e + 3), at the member rate of the bundled pool history, into the
//!                  reward accounts still registered; then a new snapshot
//! ```
//!
//! Refusals carry the ledger's failure names (`BadInputsUTxO`, `FeeTooSmallUTxO`,
//! `ValueNotConservedUTxO`, `MissingVKeyWitnessesUTXOW`, `InvalidWitnessesUTXOW`,
//! `OutsideValidityIntervalUTxO`, `StakeKeyRegisteredDELEG`, `ConwayWdrlNotDelegatedToDRep`,
//! …) in Blockfrost's error body (`{"status_code": 400, "error": "Bad Request", "message"}`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use axum::body::Bytes as Body;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use pallas_addresses::{Address, Network, ShelleyDelegationPart, ShelleyPaymentPart, StakeAddress, StakePayload};
use pallas_codec::minicbor;
use pallas_crypto::hash::Hash;
use pallas_primitives::conway::{Certificate, TransactionOutput, Value};
use pallas_primitives::StakeCredential;
use serde::Deserialize;
use serde_json::{json, Value as Json_};

use crate::cardano_codec as codec;

/// 1 ADA in lovelace.
pub const ADA: u64 = 1_000_000;
/// Most transactions in one block.
const MAX_BLOCK_TXS: usize = 1_000;

/// A stake pool of the genesis.
#[derive(Debug, Clone, PartialEq)]
pub struct PoolSpec {
    /// `pool1…`.
    pub pool_id: String,
    /// Margin, parts per million.
    pub margin_ppm: u32,
    /// Fixed cost, lovelace.
    pub fixed_cost: u64,
    /// Stake of others, lovelace.
    pub live_stake: u64,
}

/// The live pools of the bundled Blockfrost fixture `data/cardano/pools/pool-id.json`:
/// retired pools (a retirement listed) and pools whose margin the fixture gives only as a
/// range are left out.
///
/// # Errors
/// Malformed JSON.
pub fn pools_from_fixture(text: &str) -> Result<Vec<PoolSpec>> {
    let fixtures: Vec<Json_> = serde_json::from_str(text).context("pools fixture")?;
    let mut out = Vec::new();
    for f in &fixtures {
        let r = &f["response"];
        let Some(id) = r["pool_id"].as_str() else { continue };
        let retired = r["retirement"].as_array().is_some_and(|a| !a.is_empty());
        let Some(margin) = r["margin_cost"].as_f64() else {
            continue;
        };
        if retired || out.iter().any(|p: &PoolSpec| p.pool_id == id) {
            continue;
        }
        // live numbers are range matchers in the fixture: their lower bound
        let live = r["live_stake"]["args"][0]
            .as_str()
            .or_else(|| r["live_stake"].as_str())
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        out.push(PoolSpec {
            pool_id: id.to_string(),
            margin_ppm: (margin * 1e6).round() as u32,
            fixed_cost: r["fixed_cost"]
                .as_str()
                .and_then(|s| s.parse().ok())
                .unwrap_or(340 * ADA),
            live_stake: live,
        });
    }
    Ok(out)
}

/// Member reward rates per epoch, (numerator, denominator) = (rewards − operator fees,
/// active stake), from the bundled `data/cardano/pools/pool-id-history.json` (its first
/// pool's epochs).
///
/// # Errors
/// Malformed JSON or rows.
pub fn rates_from_fixture(text: &str) -> Result<Vec<(u128, u128)>> {
    let fixtures: Vec<Json_> = serde_json::from_str(text).context("pool history fixture")?;
    let rows = fixtures
        .first()
        .and_then(|f| f["response"].as_array())
        .context("pool history fixture: no rows")?;
    let num = |r: &Json_, k: &str| -> Result<u128> {
        r[k].as_str()
            .and_then(|s| s.parse().ok())
            .with_context(|| format!("pool history: {k}"))
    };
    let mut out = Vec::new();
    for r in rows {
        let active = num(r, "active_stake")?;
        if active > 0 {
            out.push((num(r, "rewards")?.saturating_sub(num(r, "fees")?), active));
        }
    }
    Ok(out)
}

/// The chain's starting state and rules.
#[derive(Debug, Clone)]
pub struct CardanoGenesis {
    /// 0 testnet, 1 mainnet.
    pub network_id: u8,
    /// Registered pools.
    pub pools: Vec<PoolSpec>,
    /// Member reward rate per epoch, cycled.
    pub reward_rates: Vec<(u128, u128)>,
    /// Initial UTxOs: (address bech32, lovelace), one each.
    pub utxos: Vec<(String, u64)>,
    /// Unix time of slot 0.
    pub genesis_secs: i64,
    /// Slots per epoch (mainnet and preprod 432 000, one second each).
    pub epoch_slots: u64,
    /// Slots per block.
    pub block_slots: u64,
    /// `min_fee_a` (lovelace per byte) and `min_fee_b` (lovelace).
    pub min_fee: (u64, u64),
    /// `key_deposit`, lovelace.
    pub key_deposit: u64,
    /// `coins_per_utxo_size`, lovelace per byte.
    pub coins_per_utxo_size: u64,
    /// Real milliseconds per block produced on its own (0: only when told).
    pub tick_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct StakeAccount {
    registered: bool,
    deposit: u64,
    pool: Option<Hash<28>>,
    drep: bool,
    rewards: u64,
    rewards_sum: u64,
    withdrawals: Vec<(String, u64)>,
    active_epoch: u64,
}

/// What `/txs/{hash}` counts of a transaction.
#[derive(Debug, Clone, Copy, Default)]
struct TxCounts {
    /// Lovelace of its outputs.
    output: u64,
    /// Inputs plus outputs.
    utxos: usize,
    withdrawals: usize,
    /// Certificates that delegate to a pool.
    delegations: usize,
    /// Certificates that register or deregister a stake key.
    stake_certs: usize,
}

#[derive(Debug, Clone)]
struct TxRecord {
    height: u64,
    time: i64,
    slot: u64,
    fee: u64,
    deposit: i128,
    size: usize,
    ttl: u64,
    /// Addresses of its inputs and outputs (bytes), for `/addresses/{a}/transactions`.
    addresses: BTreeSet<Vec<u8>>,
    counts: TxCounts,
    /// Its position in its block.
    index: usize,
}

#[derive(Debug, Clone, Default)]
struct Ledger {
    utxos: BTreeMap<(Hash<32>, u64), (Vec<u8>, u64)>,
    accounts: BTreeMap<Hash<28>, StakeAccount>,
}

#[derive(Debug)]
struct Chain {
    g: CardanoGenesis,
    net: Network,
    slot: u64,
    height: u64,
    ledger: Ledger,
    mempool: Vec<(Hash<32>, Vec<u8>)>,
    txs: BTreeMap<String, TxRecord>,
    snapshots: VecDeque<BTreeMap<Hash<28>, (Hash<28>, u64)>>,
    /// Pools announced to retire: pool id → retirement epoch (`/pools/retiring`).
    retiring: BTreeMap<String, u64>,
    /// The `project_id` header every request must carry; `None`: any.
    project_id: Option<String>,
}

/// A refusal with the ledger's failure name.
#[derive(Debug)]
struct Refusal(String);

fn refuse<T>(m: impl Into<String>) -> Result<T, Refusal> {
    Err(Refusal(m.into()))
}

fn key_credential(c: &StakeCredential) -> Result<Hash<28>, Refusal> {
    match c {
        StakeCredential::AddrKeyhash(h) => Ok(*h),
        StakeCredential::ScriptHash(_) => refuse("script credentials are not kept by the local chain"),
    }
}

/// What a valid transaction does to the ledger.
struct Effect {
    id: Hash<32>,
    spent: Vec<(Hash<32>, u64)>,
    created: Vec<(Vec<u8>, u64)>,
    ledger_accounts: BTreeMap<Hash<28>, StakeAccount>,
    withdrawals: Vec<(Hash<28>, u64)>,
    fee: u64,
    deposit: i128,
    size: usize,
    ttl: u64,
    counts: TxCounts,
}

impl Chain {
    fn new(g: CardanoGenesis) -> Result<Chain> {
        if g.epoch_slots == 0 || g.block_slots == 0 || g.reward_rates.is_empty() {
            bail!("epoch_slots, block_slots and reward_rates must be non-empty");
        }
        let net = codec::network(g.network_id);
        let mut ledger = Ledger::default();
        for (i, (addr, coin)) in g.utxos.iter().enumerate() {
            let a = Address::from_bech32(addr).with_context(|| format!("genesis address {addr}"))?;
            let mut id = [0u8; 32];
            id[..8].copy_from_slice(&(i as u64).to_be_bytes());
            ledger.utxos.insert((Hash::from(id), 0), (a.to_vec(), *coin));
        }
        Ok(Chain {
            g,
            net,
            slot: 0,
            height: 1,
            ledger,
            mempool: Vec::new(),
            txs: BTreeMap::new(),
            snapshots: VecDeque::new(),
            retiring: BTreeMap::new(),
            project_id: None,
        })
    }

    fn epoch(&self) -> u64 {
        self.slot / self.g.epoch_slots
    }

    fn time(&self) -> i64 {
        self.g.genesis_secs + self.slot as i64
    }

    fn pool_known(&self, h: &Hash<28>) -> bool {
        self.g
            .pools
            .iter()
            .any(|p| codec::pool_hash(&p.pool_id).is_ok_and(|x| x == *h))
    }

    fn min_utxo(&self, out_cbor_len: usize) -> u64 {
        self.g.coins_per_utxo_size * (160 + out_cbor_len as u64)
    }

    /// Validates `cbor` against `ledger` minus `pending` (inputs of mempool transactions).
    fn validate(&self, ledger: &Ledger, pending: &BTreeSet<(Hash<32>, u64)>, cbor: &[u8]) -> Result<Effect, Refusal> {
        let tx =
            codec::decode(cbor).map_err(|e| Refusal(format!("transaction read error: DeserialiseFailure: {e}")))?;
        let body = &*tx.transaction_body;
        let id = codec::tx_id(tx.transaction_body.raw_cbor());
        let ttl = body.ttl.unwrap_or(u64::MAX);
        if self.slot > ttl {
            return refuse(format!("OutsideValidityIntervalUTxO (ValidityInterval {{invalidHereafter = SJust (SlotNo {ttl})}}) (SlotNo {})", self.slot));
        }
        // witnesses: every signature valid, then the keys that signed
        let mut signed: BTreeSet<Hash<28>> = BTreeSet::new();
        for w in tx
            .transaction_witness_set
            .vkeywitness
            .clone()
            .map(|s| s.to_vec())
            .unwrap_or_default()
        {
            if !codec::verify(&w.vkey, &w.signature, id.as_ref()) {
                return refuse(format!("InvalidWitnessesUTXOW [{}]", hex::encode(w.vkey.to_vec())));
            }
            let pk: [u8; 32] = w
                .vkey
                .to_vec()
                .try_into()
                .map_err(|_| Refusal("InvalidWitnessesUTXOW".into()))?;
            signed.insert(codec::key_hash(&pk));
        }
        let mut needed: BTreeSet<Hash<28>> = BTreeSet::new();
        let mut value_in: u128 = 0;
        let mut spent = Vec::new();
        for i in body.inputs.iter() {
            let key = (i.transaction_id, i.index);
            let Some((addr, coin)) = ledger.utxos.get(&key).filter(|_| !pending.contains(&key)) else {
                return refuse(format!(
                    "BadInputsUTxO (fromList [TxIn (TxId {{unTxId = {}}}) (TxIx {})])",
                    i.transaction_id, i.index
                ));
            };
            match Address::from_bytes(addr) {
                Ok(Address::Shelley(s)) => match s.payment() {
                    ShelleyPaymentPart::Key(h) => {
                        needed.insert(*h);
                    }
                    ShelleyPaymentPart::Script(_) => return refuse("script inputs are not kept by the local chain"),
                },
                _ => return refuse("BadInputsUTxO: not a Shelley address"),
            }
            value_in += u128::from(*coin);
            spent.push(key);
        }
        if spent.is_empty() {
            return refuse("InputSetEmptyUTxO");
        }
        let size = cbor.len();
        let (a, b) = self.g.min_fee;
        let min_fee = a * size as u64 + b;
        if body.fee < min_fee {
            return refuse(format!("FeeTooSmallUTxO (Coin {min_fee}) (Coin {})", body.fee));
        }
        let mut created = Vec::new();
        let mut value_out: u128 = u128::from(body.fee);
        for o in &body.outputs {
            let TransactionOutput::PostAlonzo(o) = o else {
                return refuse("legacy outputs are not kept by the local chain");
            };
            let Value::Coin(coin) = o.value.clone() else {
                return refuse("multi-asset outputs are not kept by the local chain");
            };
            let len = minicbor::to_vec(&**o).map(|v| v.len()).unwrap_or(0);
            if coin < self.min_utxo(len) {
                return refuse(format!(
                    "BabbageOutputTooSmallUTxO [(Coin {coin}, Coin {})]",
                    self.min_utxo(len)
                ));
            }
            if Address::from_bytes(&o.address).is_err() {
                return refuse("OutputBootAddrAttrsTooBig: malformed address");
            }
            value_out += u128::from(coin);
            created.push((o.address.to_vec(), coin));
        }
        // withdrawals first (the ledger drains them before the certificates), each the whole balance
        let mut accounts = ledger.accounts.clone();
        let mut withdrawals = Vec::new();
        for (ra, coin) in body.withdrawals.clone().unwrap_or_default() {
            let h = match Address::from_bytes(&ra) {
                Ok(Address::Stake(s)) => match s.payload() {
                    StakePayload::Stake(h) => *h,
                    StakePayload::Script(_) => return refuse("script reward accounts are not kept by the local chain"),
                },
                _ => return refuse("WithdrawalsNotInRewardsCERTS: not a reward account"),
            };
            needed.insert(h);
            let acct = accounts.get_mut(&h).filter(|a| a.registered);
            let Some(acct) = acct else {
                return refuse(format!(
                    "WithdrawalsNotInRewardsCERTS (fromList [({}, Coin {coin})])",
                    hex::encode(h)
                ));
            };
            if !acct.drep {
                return refuse(format!("ConwayWdrlNotDelegatedToDRep [{}]", hex::encode(h)));
            }
            if acct.rewards != coin {
                return refuse(format!(
                    "WithdrawalsNotInRewardsCERTS: withdrawal {coin} but the balance is {}",
                    acct.rewards
                ));
            }
            acct.rewards = 0;
            value_in += u128::from(coin);
            withdrawals.push((h, coin));
        }
        let mut deposits: u128 = 0;
        let mut refunds: u128 = 0;
        let mut counts = TxCounts {
            output: created.iter().map(|c| c.1).sum(),
            utxos: spent.len() + created.len(),
            withdrawals: withdrawals.len(),
            ..TxCounts::default()
        };
        for c in body.certificates.clone().map(|c| c.to_vec()).unwrap_or_default() {
            let (h, reg, pool, drep, unreg) = match &c {
                Certificate::StakeVoteRegDeleg(cred, pool, _, dep) => {
                    (key_credential(cred)?, Some(*dep), Some(*pool), true, None)
                }
                Certificate::StakeRegDeleg(cred, pool, dep) => {
                    (key_credential(cred)?, Some(*dep), Some(*pool), false, None)
                }
                Certificate::Reg(cred, dep) => (key_credential(cred)?, Some(*dep), None, false, None),
                Certificate::StakeVoteDeleg(cred, pool, _) => (key_credential(cred)?, None, Some(*pool), true, None),
                Certificate::StakeDelegation(cred, pool) => (key_credential(cred)?, None, Some(*pool), false, None),
                Certificate::VoteDeleg(cred, _) => (key_credential(cred)?, None, None, true, None),
                Certificate::UnReg(cred, refund) => (key_credential(cred)?, None, None, false, Some(*refund)),
                other => return refuse(format!("certificate {other:?} is not kept by the local chain")),
            };
            needed.insert(h);
            counts.delegations += usize::from(pool.is_some());
            counts.stake_certs += usize::from(reg.is_some() || unreg.is_some());
            if let Some(dep) = reg {
                self.register(&mut accounts, h, dep)?;
                deposits += u128::from(dep);
            }
            if let Some(pool) = pool {
                self.delegate_to(&mut accounts, h, pool)?;
            }
            if drep {
                let Some(a) = accounts.get_mut(&h).filter(|a| a.registered) else {
                    return refuse(format!("StakeKeyNotRegisteredDELEG ({})", hex::encode(h)));
                };
                a.drep = true;
            }
            if let Some(refund) = unreg {
                let Some(a) = accounts.get_mut(&h).filter(|a| a.registered) else {
                    return refuse(format!("StakeKeyNotRegisteredDELEG ({})", hex::encode(h)));
                };
                if refund != a.deposit {
                    return refuse(format!(
                        "IncorrectKeyDepositRefundDELEG (Coin {refund}) (Coin {})",
                        a.deposit
                    ));
                }
                if a.rewards != 0 {
                    return refuse(format!("StakeKeyNonZeroAccountBalanceDELEG (Coin {})", a.rewards));
                }
                a.registered = false;
                a.pool = None;
                a.drep = false;
                a.deposit = 0;
                refunds += u128::from(refund);
            }
        }
        let missing: Vec<String> = needed.difference(&signed).map(hex::encode).collect();
        if !missing.is_empty() {
            return refuse(format!("MissingVKeyWitnessesUTXOW (fromList [{}])", missing.join(",")));
        }
        let consumed = value_in + refunds;
        let produced = value_out + deposits;
        if consumed != produced {
            return refuse(format!(
                "ValueNotConservedUTxO (Mismatch {{mismatchSupplied = Coin {consumed}, mismatchExpected = Coin {produced}}})"
            ));
        }
        Ok(Effect {
            id,
            spent,
            created,
            ledger_accounts: accounts,
            withdrawals,
            fee: body.fee,
            deposit: deposits as i128 - refunds as i128,
            size,
            ttl,
            counts,
        })
    }

    fn register(&self, accounts: &mut BTreeMap<Hash<28>, StakeAccount>, h: Hash<28>, dep: u64) -> Result<(), Refusal> {
        let a = accounts.entry(h).or_default();
        if a.registered {
            return refuse(format!("StakeKeyRegisteredDELEG ({})", hex::encode(h)));
        }
        if dep != self.g.key_deposit {
            return refuse(format!("IncorrectDepositDELEG (Coin {dep})"));
        }
        a.registered = true;
        a.deposit = dep;
        Ok(())
    }

    fn delegate_to(
        &self,
        accounts: &mut BTreeMap<Hash<28>, StakeAccount>,
        h: Hash<28>,
        pool: Hash<28>,
    ) -> Result<(), Refusal> {
        if !self.pool_known(&pool) {
            return refuse(format!("DelegateeStakePoolNotRegisteredDELEG ({})", hex::encode(pool)));
        }
        let epoch = self.epoch();
        let Some(a) = accounts.get_mut(&h).filter(|a| a.registered) else {
            return refuse(format!("StakeKeyNotRegisteredDELEG ({})", hex::encode(h)));
        };
        a.pool = Some(pool);
        a.active_epoch = epoch + 2;
        Ok(())
    }

    fn pending_inputs(&self) -> BTreeSet<(Hash<32>, u64)> {
        self.mempool
            .iter()
            .filter_map(|(_, c)| {
                codec::decode(c).ok().map(|t| {
                    t.transaction_body
                        .inputs
                        .iter()
                        .map(|i| (i.transaction_id, i.index))
                        .collect::<Vec<_>>()
                })
            })
            .flatten()
            .collect()
    }

    fn submit(&mut self, cbor: Vec<u8>) -> Result<String, Refusal> {
        let id = codec::decode(&cbor)
            .map(|t| codec::tx_id(t.transaction_body.raw_cbor()))
            .map_err(|e| Refusal(format!("transaction read error: DeserialiseFailure: {e}")))?;
        if self.mempool.iter().any(|(h, _)| *h == id) {
            return refuse("the transaction is already in the mempool");
        }
        let e = self.validate(&self.ledger, &self.pending_inputs(), &cbor)?;
        self.mempool.push((e.id, cbor));
        Ok(hex::encode(id))
    }

    fn apply(&mut self, e: Effect) {
        let mut addresses = BTreeSet::new();
        for k in &e.spent {
            if let Some((addr, _)) = self.ledger.utxos.remove(k) {
                addresses.insert(addr);
            }
        }
        for (i, (addr, coin)) in e.created.into_iter().enumerate() {
            addresses.insert(addr.clone());
            self.ledger.utxos.insert((e.id, i as u64), (addr, coin));
        }
        self.ledger.accounts = e.ledger_accounts;
        let hash = hex::encode(e.id);
        for (h, coin) in e.withdrawals {
            self.ledger
                .accounts
                .entry(h)
                .or_default()
                .withdrawals
                .push((hash.clone(), coin));
        }
        let index = self.block_txs(self.height).count();
        self.txs.insert(
            hash,
            TxRecord {
                height: self.height,
                time: self.time(),
                slot: self.slot,
                fee: e.fee,
                deposit: e.deposit,
                size: e.size,
                ttl: e.ttl,
                addresses,
                counts: e.counts,
                index,
            },
        );
    }

    /// Produces `blocks` blocks: the mempool's transactions that are still valid, and the
    /// epoch boundary's snapshot and rewards when one is crossed.
    fn produce(&mut self, blocks: u64) {
        for _ in 0..blocks {
            let before = self.epoch();
            self.slot += self.g.block_slots;
            self.height += 1;
            if self.epoch() != before {
                self.boundary();
            }
            let pending = std::mem::take(&mut self.mempool);
            for (_, cbor) in pending.into_iter().take(MAX_BLOCK_TXS) {
                if let Ok(e) = self.validate(&self.ledger, &BTreeSet::new(), &cbor) {
                    self.apply(e);
                }
            }
        }
    }

    /// Stake of each delegated credential: its base-address UTxOs and its rewards.
    fn stake_distribution(&self) -> BTreeMap<Hash<28>, (Hash<28>, u64)> {
        let mut out: BTreeMap<Hash<28>, (Hash<28>, u64)> = BTreeMap::new();
        for (h, a) in &self.ledger.accounts {
            if let (true, Some(pool)) = (a.registered, a.pool) {
                out.insert(*h, (pool, a.rewards));
            }
        }
        for (addr, coin) in self.ledger.utxos.values() {
            if let Ok(Address::Shelley(s)) = Address::from_bytes(addr) {
                if let ShelleyDelegationPart::Key(h) = s.delegation() {
                    if let Some(e) = out.get_mut(h) {
                        e.1 += coin;
                    }
                }
            }
        }
        out
    }

    /// The boundary into a new epoch: rewards on the snapshot taken three boundaries ago,
    /// then a new snapshot. The ledger's `mark` snapshot taken at the start of epoch e
    /// becomes `set` (leader election of e + 1), then `go`, whose epoch's rewards are paid
    /// at the start of e + 3 (docs.cardano.org "Delegation": stake delegated in epoch N is
    /// active in N + 2 and first paid at the end of N + 3; cardano-ledger `SnapShots`).
    fn boundary(&mut self) {
        let epoch = self.epoch();
        if self.snapshots.len() >= REWARD_LAG_BOUNDARIES {
            let go = self.snapshots.pop_front().unwrap_or_default();
            let (num, den) = self.g.reward_rates[(epoch as usize) % self.g.reward_rates.len()];
            for (h, (_snapshot_pool, stake)) in go {
                let reward = u64::try_from(u128::from(stake) * num / den.max(1)).unwrap_or(u64::MAX);
                // the pool of the snapshot earned it: the member is paid while its stake key
                // stays registered, wherever it delegates now (a deregistered key's reward
                // goes to the treasury)
                let a = self.ledger.accounts.entry(h).or_default();
                if a.registered && reward > 0 {
                    a.rewards += reward;
                    a.rewards_sum += reward;
                }
            }
        }
        let snap = self.stake_distribution();
        self.snapshots.push_back(snap);
    }

    fn stake_hash(&self, stake: &str) -> Option<Hash<28>> {
        match Address::from_bech32(stake).ok()? {
            Address::Stake(s) => match s.payload() {
                StakePayload::Stake(h) => Some(*h),
                StakePayload::Script(_) => None,
            },
            _ => None,
        }
    }
}

/// Lovelace at which a pool is saturated in `live_saturation` (mainnet: total stake
/// ≈ 21.5 G ADA over k = 500 pools, about 64 M ADA).
const SATURATION_LOVELACE: u64 = 64_000_000 * ADA;

/// Epoch boundaries between a stake snapshot and the payment of its rewards.
const REWARD_LAG_BOUNDARIES: usize = 3;

type Shared = Arc<Mutex<Chain>>;

fn lock(chain: &Shared) -> std::sync::MutexGuard<'_, Chain> {
    chain.lock().unwrap_or_else(|p| p.into_inner())
}

fn blockfrost_error(status: StatusCode, message: impl Into<String>) -> Response {
    let reason = status.canonical_reason().unwrap_or("Error");
    (
        status,
        Json(json!({"status_code": status.as_u16(), "error": reason, "message": message.into()})),
    )
        .into_response()
}

fn not_found() -> Response {
    blockfrost_error(StatusCode::NOT_FOUND, "The requested component has not been found.")
}

#[derive(Debug, Deserialize)]
struct Paging {
    count: Option<usize>,
    page: Option<usize>,
    order: Option<String>,
}

impl Paging {
    fn apply<T: Clone>(&self, mut rows: Vec<T>) -> Vec<T> {
        if self.order.as_deref() == Some("desc") {
            rows.reverse();
        }
        let count = self.count.unwrap_or(100).clamp(1, 100);
        let page = self.page.unwrap_or(1).max(1);
        rows.into_iter().skip((page - 1) * count).take(count).collect()
    }
}

/// A block's hash as the local chain names it: its height in 64 hex digits.
fn block_hash(height: u64) -> String {
    format!("{height:064x}")
}

impl Chain {
    /// The transactions in block `height`.
    fn block_txs(&self, height: u64) -> impl Iterator<Item = &TxRecord> {
        self.txs.values().filter(move |t| t.height == height)
    }

    /// Blockfrost's `BlockContent` of block `height` (1..=head): block 1 is at slot 0,
    /// each next `block_slots` on.
    fn block_json(&self, height: u64) -> Json_ {
        let slot = (height - 1) * self.g.block_slots;
        let txs: Vec<&TxRecord> = self.block_txs(height).collect();
        let leader = self.g.pools.get(height as usize % self.g.pools.len().max(1));
        json!({
            "time": self.g.genesis_secs + slot as i64, "height": height, "hash": block_hash(height),
            "slot": slot, "epoch": slot / self.g.epoch_slots, "epoch_slot": slot % self.g.epoch_slots,
            "slot_leader": leader.map_or("", |p| p.pool_id.as_str()),
            "size": txs.iter().map(|t| t.size).sum::<usize>(), "tx_count": txs.len(),
            "output": if txs.is_empty() { None } else { Some(txs.iter().map(|t| t.counts.output).sum::<u64>().to_string()) },
            "fees": if txs.is_empty() { None } else { Some(txs.iter().map(|t| t.fee).sum::<u64>().to_string()) },
            "block_vrf": null, "op_cert": null, "op_cert_counter": null,
            "previous_block": (height > 1).then(|| block_hash(height - 1)),
            "next_block": (height < self.height).then(|| block_hash(height + 1)),
            "confirmations": self.height - height,
        })
    }
}

async fn latest_block(State(c): State<Shared>) -> Response {
    let c = lock(&c);
    Json(c.block_json(c.height)).into_response()
}

/// `/epochs/latest`: Blockfrost's `EpochContent` of the current epoch so far.
async fn latest_epoch(State(c): State<Shared>) -> Response {
    let c = lock(&c);
    let first_slot = c.epoch() * c.g.epoch_slots;
    let start = c.g.genesis_secs + first_slot as i64;
    let txs: Vec<&TxRecord> = c.txs.values().filter(|t| t.slot >= first_slot).collect();
    let blocks = (c.slot - first_slot) / c.g.block_slots + 1;
    let active: Option<u64> = c.snapshots.front().map(|s| s.values().map(|v| v.1).sum());
    Json(json!({
        "epoch": c.epoch(), "start_time": start, "end_time": start + c.g.epoch_slots as i64,
        "first_block_time": start, "last_block_time": c.time(), "block_count": blocks,
        "tx_count": txs.len(), "output": txs.iter().map(|t| t.counts.output).sum::<u64>().to_string(),
        "fees": txs.iter().map(|t| t.fee).sum::<u64>().to_string(),
        "active_stake": active.map(|a| a.to_string()),
    }))
    .into_response()
}

/// `/epochs/latest/parameters`: Blockfrost's `EpochParamContent`; the fee, deposit and
/// UTxO prices from the genesis, the rest mainnet's Conway values (cardano-node's
/// `mainnet-shelley-genesis.json`, `mainnet-alonzo-genesis.json`,
/// `mainnet-conway-genesis.json`, after the Plomin hard fork).
async fn parameters(State(c): State<Shared>) -> Response {
    let c = lock(&c);
    let per_byte = c.g.coins_per_utxo_size.to_string();
    let mut fees = json!({
        "epoch": c.epoch(), "min_fee_a": c.g.min_fee.0, "min_fee_b": c.g.min_fee.1,
        "max_block_size": 90112, "max_tx_size": 16384, "max_block_header_size": 1100,
        "key_deposit": c.g.key_deposit.to_string(), "pool_deposit": "500000000",
        "e_max": 18, "n_opt": 500, "a0": 0.3, "rho": 0.003, "tau": 0.2,
        "decentralisation_param": 0.0, "extra_entropy": null,
        "protocol_major_ver": 10, "protocol_minor_ver": 0,
        "min_utxo": per_byte, "min_pool_cost": "170000000",
        "nonce": format!("{:064x}", c.epoch()), "cost_models": null, "cost_models_raw": null,
        "price_mem": 0.0577, "price_step": 0.0000721,
        "max_tx_ex_mem": "16500000", "max_tx_ex_steps": "10000000000",
        "max_block_ex_mem": "72000000", "max_block_ex_steps": "20000000000",
        "max_val_size": "5000", "collateral_percent": 150, "max_collateral_inputs": 3,
        "coins_per_utxo_size": per_byte, "coins_per_utxo_word": per_byte,
    });
    // the governance thresholds (one json! of all the fields passes the macro's recursion limit)
    let governance = json!({
        "pvt_motion_no_confidence": 0.51, "pvt_committee_normal": 0.51,
        "pvt_committee_no_confidence": 0.51, "pvt_hard_fork_initiation": 0.51,
        "dvt_motion_no_confidence": 0.67, "dvt_committee_normal": 0.67,
        "dvt_committee_no_confidence": 0.6, "dvt_update_to_constitution": 0.75,
        "dvt_hard_fork_initiation": 0.6, "dvt_p_p_network_group": 0.67,
        "dvt_p_p_economic_group": 0.67, "dvt_p_p_technical_group": 0.67,
        "dvt_p_p_gov_group": 0.75, "dvt_treasury_withdrawal": 0.67,
        "committee_min_size": "7", "committee_max_term_length": "146",
        "gov_action_lifetime": "6", "gov_action_deposit": "100000000000",
        "drep_deposit": "500000000", "drep_activity": "20",
        "pvtpp_security_group": 0.51, "pvt_p_p_security_group": 0.51,
        "min_fee_ref_script_cost_per_byte": 15,
    });
    if let (Some(all), Some(g)) = (fees.as_object_mut(), governance.as_object()) {
        all.extend(g.clone());
    }
    Json(fees).into_response()
}

async fn account(State(c): State<Shared>, Path(stake): Path<String>) -> Response {
    let c = lock(&c);
    let Some(h) = c.stake_hash(&stake) else {
        return blockfrost_error(StatusCode::BAD_REQUEST, "Invalid or malformed stake address format.");
    };
    let Some(a) = c.ledger.accounts.get(&h) else {
        return not_found();
    };
    let controlled = c.stake_distribution().get(&h).map_or(a.rewards, |s| s.1);
    Json(json!({
        "stake_address": stake, "active": a.registered && a.pool.is_some(), "registered": a.registered,
        "active_epoch": a.active_epoch,
        "controlled_amount": controlled.to_string(), "rewards_sum": a.rewards_sum.to_string(),
        "withdrawals_sum": a.withdrawals.iter().map(|w| w.1).sum::<u64>().to_string(),
        "reserves_sum": "0", "treasury_sum": "0",
        "withdrawable_amount": a.rewards.to_string(),
        "pool_id": a.pool.map(|p| codec::pool_id(&p)),
        "drep_id": if a.drep { Some("drep_always_abstain") } else { None },
    }))
    .into_response()
}

async fn withdrawals(State(c): State<Shared>, Path(stake): Path<String>, Query(p): Query<Paging>) -> Response {
    let c = lock(&c);
    let Some(a) = c.stake_hash(&stake).and_then(|h| c.ledger.accounts.get(&h)) else {
        return not_found();
    };
    let rows: Vec<Json_> = a
        .withdrawals
        .iter()
        .filter_map(|(h, amt)| {
            let t = c.txs.get(h)?;
            Some(json!({
                "tx_hash": h, "amount": amt.to_string(), "tx_slot": t.slot,
                "block_time": t.time, "block_height": t.height,
            }))
        })
        .collect();
    Json(p.apply(rows)).into_response()
}

/// The bytes of a bech32 address.
fn address_bytes(addr: &str) -> Option<Vec<u8>> {
    Address::from_bech32(addr).map(|a| a.to_vec()).ok()
}

/// Blockfrost's 400 for a malformed address.
fn bad_address() -> Response {
    blockfrost_error(
        StatusCode::BAD_REQUEST,
        "Invalid address for this network or malformed address format.",
    )
}

async fn utxos(State(c): State<Shared>, Path(addr): Path<String>, Query(p): Query<Paging>) -> Response {
    let c = lock(&c);
    let Some(bytes) = address_bytes(&addr) else {
        return bad_address();
    };
    let rows: Vec<Json_> = c
        .ledger
        .utxos
        .iter()
        .filter(|(_, (a, _))| *a == bytes)
        .map(|((id, ix), (_, coin))| {
            let tx = hex::encode(id);
            // the genesis UTxOs are in block 1
            let height = c.txs.get(&tx).map_or(1, |t| t.height);
            json!({
                "address": addr, "tx_hash": tx, "tx_index": ix, "output_index": ix,
                "amount": [{"unit": "lovelace", "quantity": coin.to_string()}],
                "block": block_hash(height), "data_hash": null, "inline_datum": null,
                "reference_script_hash": null,
            })
        })
        .collect();
    if rows.is_empty() {
        return not_found();
    }
    Json(p.apply(rows)).into_response()
}

async fn transaction(State(c): State<Shared>, Path(hash): Path<String>) -> Response {
    let c = lock(&c);
    let Some(t) = c.txs.get(&hash.to_lowercase()) else {
        return not_found();
    };
    Json(json!({
        "hash": hash, "block": block_hash(t.height), "block_height": t.height, "block_time": t.time,
        "slot": t.slot, "index": t.index,
        "output_amount": [{"unit": "lovelace", "quantity": t.counts.output.to_string()}],
        "fees": t.fee.to_string(), "deposit": t.deposit.to_string(),
        "size": t.size, "invalid_before": null, "invalid_hereafter": t.ttl.to_string(),
        "utxo_count": t.counts.utxos, "withdrawal_count": t.counts.withdrawals, "mir_cert_count": 0,
        "delegation_count": t.counts.delegations, "stake_cert_count": t.counts.stake_certs,
        "pool_update_count": 0, "pool_retire_count": 0, "asset_mint_or_burn_count": 0,
        "redeemer_count": 0, "valid_contract": true, "treasury_donation": "0",
    }))
    .into_response()
}

/// `/blocks/{hash_or_number}`: a block by height or by the hash the local chain gives it
/// (the height, hex, 64 digits); its slot, epoch and time.
async fn block(State(c): State<Shared>, Path(id): Path<String>) -> Response {
    let c = lock(&c);
    let height = if id.len() == 64 {
        u64::from_str_radix(id.trim_start_matches('0'), 16).ok()
    } else {
        id.parse::<u64>().ok()
    };
    let Some(height) = height.filter(|h| (1..=c.height).contains(h)) else {
        return not_found();
    };
    Json(c.block_json(height)).into_response()
}

/// `/addresses/{address}/transactions`: the transactions spending from or paying to an
/// address, oldest first (`order=desc` newest first); 404 for an address never used.
async fn address_transactions(State(c): State<Shared>, Path(addr): Path<String>, Query(p): Query<Paging>) -> Response {
    let c = lock(&c);
    let Some(bytes) = address_bytes(&addr) else {
        return bad_address();
    };
    let mut rows: Vec<(u64, &String, &TxRecord)> = c
        .txs
        .iter()
        .filter(|(_, t)| t.addresses.contains(&bytes))
        .map(|(h, t)| (t.height, h, t))
        .collect();
    if rows.is_empty() {
        return not_found();
    }
    rows.sort_by_key(|r| (r.0, r.1.clone()));
    let rows: Vec<Json_> = rows
        .into_iter()
        .map(|(_, h, t)| json!({"tx_hash": h, "tx_index": 0, "block_height": t.height, "block_time": t.time}))
        .collect();
    Json(p.apply(rows)).into_response()
}

async fn pools_extended(State(c): State<Shared>, Query(p): Query<Paging>) -> Response {
    let c = lock(&c);
    let dist = c.stake_distribution();
    let rows: Vec<Json_> =
        c.g.pools
            .iter()
            .map(|s| {
                let ours: u64 = codec::pool_hash(&s.pool_id)
                    .map(|h| dist.values().filter(|(p, _)| *p == h).map(|(_, a)| a).sum())
                    .unwrap_or(0);
                let live = s.live_stake + ours;
                json!({
                    "pool_id": s.pool_id,
                    "hex": codec::pool_hash(&s.pool_id).map(hex::encode).unwrap_or_default(),
                    "active_stake": s.live_stake.to_string(), "live_stake": live.to_string(),
                    "live_saturation": live as f64 / SATURATION_LOVELACE as f64,
                    "blocks_minted": 0, "declared_pledge": "0",
                    "margin_cost": f64::from(s.margin_ppm) / 1e6,
                    "fixed_cost": s.fixed_cost.to_string(), "metadata": null,
                })
            })
            .collect();
    Json(p.apply(rows)).into_response()
}

/// `/pools/retiring`: the pools announced to retire, with their retirement epoch.
async fn pools_retiring(State(c): State<Shared>, Query(p): Query<Paging>) -> Response {
    let c = lock(&c);
    let rows: Vec<Json_> = c
        .retiring
        .iter()
        .map(|(id, epoch)| json!({"pool_id": id, "epoch": epoch}))
        .collect();
    Json(p.apply(rows)).into_response()
}

/// Blockfrost's 403 for a request without the required `project_id` header.
async fn project_gate(State(c): State<Shared>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let want = lock(&c).project_id.clone();
    if let Some(want) = want {
        let got = req.headers().get("project_id").and_then(|v| v.to_str().ok());
        if got != Some(want.as_str()) {
            return blockfrost_error(StatusCode::FORBIDDEN, "Invalid project token.");
        }
    }
    next.run(req).await
}

async fn submit(State(c): State<Shared>, body: Body) -> Response {
    match lock(&c).submit(body.to_vec()) {
        Ok(id) => Json(json!(id)).into_response(),
        Err(Refusal(m)) => blockfrost_error(StatusCode::BAD_REQUEST, m),
    }
}

/// A running local Cardano chain; stopped when dropped.
#[derive(Debug)]
pub struct LocalCardano {
    /// Blockfrost-style base URL, `http://127.0.0.1:<port>/api/v0`.
    pub url: String,
    chain: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalCardano {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the chain on 127.0.0.1:`port` (0 = any free port).
///
/// # Errors
/// A malformed genesis or a port that cannot be bound.
pub async fn start(genesis: CardanoGenesis, port: u16) -> Result<LocalCardano> {
    let tick_ms = genesis.tick_ms;
    let chain: Shared = Arc::new(Mutex::new(Chain::new(genesis)?));
    let api = Router::new()
        .route("/blocks/latest", get(latest_block))
        .route("/epochs/latest", get(latest_epoch))
        .route("/epochs/latest/parameters", get(parameters))
        .route("/accounts/{stake}", get(account))
        .route("/accounts/{stake}/withdrawals", get(withdrawals))
        .route("/addresses/{address}/utxos", get(utxos))
        .route("/addresses/{address}/transactions", get(address_transactions))
        .route("/blocks/{id}", get(block))
        .route("/txs/{hash}", get(transaction))
        .route("/pools/extended", get(pools_extended))
        .route("/pools/retiring", get(pools_retiring))
        .route("/tx/submit", post(submit))
        .layer(axum::middleware::from_fn_with_state(chain.clone(), project_gate))
        .with_state(chain.clone());
    let app = Router::new().nest("/api/v0", api);
    let ticking = chain.clone();
    let (addr, server) = crate::serve(app, port, tick_ms, move || lock(&ticking).produce(1))
        .await
        .context("the local Blockfrost API")?;
    Ok(LocalCardano {
        url: format!("http://{addr}/api/v0"),
        chain,
        server,
    })
}

impl LocalCardano {
    /// Produces `blocks` blocks.
    pub fn produce(&self, blocks: u64) {
        lock(&self.chain).produce(blocks);
    }

    /// Produces blocks until `epochs` epoch boundaries have passed.
    pub fn advance_epochs(&self, epochs: u64) {
        let mut c = lock(&self.chain);
        let target = (c.epoch() + epochs) * c.g.epoch_slots;
        let blocks = target.saturating_sub(c.slot).div_ceil(c.g.block_slots);
        c.produce(blocks);
    }

    /// Lovelace at an address (bech32).
    pub fn balance(&self, address: &str) -> u64 {
        let c = lock(&self.chain);
        let Ok(a) = Address::from_bech32(address) else { return 0 };
        let bytes = a.to_vec();
        c.ledger
            .utxos
            .values()
            .filter(|(x, _)| *x == bytes)
            .map(|(_, v)| v)
            .sum()
    }

    /// A stake address's reward balance, lovelace.
    pub fn rewards(&self, stake: &str) -> u64 {
        let c = lock(&self.chain);
        c.stake_hash(stake)
            .and_then(|h| c.ledger.accounts.get(&h))
            .map_or(0, |a| a.rewards)
    }

    /// Announces that `pool_id` retires at `epoch` (`/pools/retiring` lists it).
    pub fn retire_pool(&self, pool_id: &str, epoch: u64) {
        lock(&self.chain).retiring.insert(pool_id.to_string(), epoch);
    }

    /// Requires every request to carry `project_id` (Blockfrost's hosted API: 403
    /// "Invalid project token." otherwise).
    pub fn require_project_id(&self, project_id: &str) {
        lock(&self.chain).project_id = Some(project_id.to_string());
    }

    /// A stake address's registration and pool.
    pub fn delegation(&self, stake: &str) -> (bool, Option<String>) {
        let c = lock(&self.chain);
        c.stake_hash(stake)
            .and_then(|h| c.ledger.accounts.get(&h))
            .map_or((false, None), |a| (a.registered, a.pool.map(|p| codec::pool_id(&p))))
    }

    /// A stake address's reward withdrawals, lovelace, oldest first.
    pub fn withdrawals(&self, stake: &str) -> Vec<u64> {
        let c = lock(&self.chain);
        c.stake_hash(stake)
            .and_then(|h| c.ledger.accounts.get(&h))
            .map(|a| a.withdrawals.iter().map(|w| w.1).collect())
            .unwrap_or_default()
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        lock(&self.chain).epoch()
    }

    /// The network of the chain's addresses.
    pub fn network(&self) -> Network {
        lock(&self.chain).net
    }
}

/// The stake address (bech32) of a stake key hash on `net`.
pub fn stake_address_of(net: Network, h: Hash<28>) -> String {
    StakeAddress::new(net, StakePayload::Stake(h))
        .to_bech32()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rewards follow the snapshot: a key redelegated after its stake was snapshotted at
    /// pool A is still paid for that snapshot (the ledger pays the reward account, not
    /// the current delegation); before, the local chain paid nothing.
    #[test]
    fn success_rewards_go_to_the_snapshot_pool_after_a_redelegation() {
        let pools = pools_from_fixture(include_str!("../../../data/cardano/pools/pool-id.json")).unwrap();
        let (payment, stake) = (Hash::<28>::from([1u8; 28]), Hash::<28>::from([2u8; 28]));
        let base = codec::base_address(codec::network(0), payment, stake)
            .to_bech32()
            .unwrap();
        let mut c = Chain::new(CardanoGenesis {
            network_id: 0,
            pools: pools.clone(),
            reward_rates: vec![(1, 1_000)],
            utxos: vec![(base, 1_000_000 * ADA)],
            genesis_secs: 0,
            epoch_slots: 100,
            block_slots: 1,
            min_fee: (44, 155_381),
            key_deposit: 2 * ADA,
            coins_per_utxo_size: 4_310,
            tick_ms: 0,
        })
        .unwrap();
        let a = codec::pool_hash(&pools[0].pool_id).unwrap();
        let b = codec::pool_hash(&pools[1].pool_id).unwrap();
        c.ledger.accounts.insert(
            stake,
            StakeAccount {
                registered: true,
                pool: Some(a),
                drep: true,
                ..StakeAccount::default()
            },
        );
        c.boundary();
        c.boundary();
        c.ledger.accounts.get_mut(&stake).unwrap().pool = Some(b);
        c.boundary();
        assert_eq!(c.ledger.accounts[&stake].rewards, 0, "paid three boundaries on");
        c.boundary();
        assert_eq!(
            c.ledger.accounts[&stake].rewards,
            ADA * 1_000,
            "0.1 % of the snapshot at A"
        );
        // a deregistered key is paid nothing
        c.ledger.accounts.get_mut(&stake).unwrap().registered = false;
        c.boundary();
        assert_eq!(c.ledger.accounts[&stake].rewards, ADA * 1_000);
    }

    #[test]
    fn success_bundled_fixtures_parse() {
        let pools = pools_from_fixture(include_str!("../../../data/cardano/pools/pool-id.json")).unwrap();
        assert_eq!(pools.len(), 2, "the live pools with a known margin");
        assert_eq!(pools[0].margin_ppm, 49_000);
        let rates = rates_from_fixture(include_str!("../../../data/cardano/pools/pool-id-history.json")).unwrap();
        assert_eq!(rates.len(), 10);
        assert_eq!(rates[0].0, 0, "epoch 210 paid nothing");
        assert!(rates.iter().all(|(n, d)| n < d));
    }
}
