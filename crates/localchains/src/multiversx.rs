//! A local MultiversX chain that speaks the gateway's REST API and keeps the system
//! delegation contract's rules, for tests and local runs (no node can be installed
//! offline here).
//!
//! ```text
//!  GET  /network/config                 erd_chain_id, erd_min_gas_price, erd_round_duration,
//!                                       erd_rounds_per_epoch, erd_min_gas_limit, …
//!  GET  /network/status/4294967295      erd_epoch_number, erd_nonce, erd_current_round,
//!                                       erd_rounds_passed_in_current_epoch
//!  GET  /hyperblock/by-nonce/{n}        nonce, round, epoch, timestamp
//!  GET  /address/{erd1…}                nonce, balance
//!  POST /vm-values/query                the delegation manager's getAllContractAddresses /
//!                                       getContractConfig and the providers' views
//!  POST /transaction/send               checked as the node's interceptor checks it: chain id,
//!       (FrontendTransaction JSON)      version, Ed25519 signature over the JSON signing form,
//!                                       nonce (lower / higher nonce in transaction), funds
//!                                       for value + gas; errors in the node's 400 shape
//!  GET  /transaction/{hash}             status success | fail, the contract's returnMessage
//!                                       in a smart contract result, the value it paid
//! ```
//!
//! The providers follow mx-chain-go `vm/systemSmartContracts/delegation.go`: `delegate`
//! (≥ the manager's minDelegationAmount), `unDelegate@hex` (no dust left below the
//! minimum, at most 50 funds, merged per epoch), `withdraw` (funds `unBondPeriodInEpochs`
//! old, "nothing to unBond" otherwise), `claimRewards` (pays the unclaimed rewards,
//! adds them to TotalCumulatedRewards, deletes a delegator left without funds). Rewards
//! are paid at each epoch's end at the configured yearly rate, the service fee to the
//! owner, the rest pro rata to the active stake at that moment: the contract stores an
//! epoch's rewards at the next epoch's start block (`updateRewards` keyed by the new
//! epoch) and every action first settles the epochs up to the current one, so a
//! delegation made during an epoch shares that epoch's reward. Every transaction is one block; a failed call burns its gas.
//! The transaction hash is computed here from the protobuf form (transaction.proto), not
//! with the adapter's code.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use prost::Message;
use ruint::aliases::U256;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// 1 EGLD in base units.
pub const EGLD: u128 = 1_000_000_000_000_000_000;
/// The delegation manager's address.
pub const DELEGATION_MANAGER: &str = "erd1qqqqqqqqqqqqqqqpqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqylllslmq6y6";
/// Minimum gas limit of any transaction (`erd_min_gas_limit`).
pub const MIN_GAS_LIMIT: u64 = 50_000;
/// Gas per byte of data (`erd_gas_per_data_byte`).
pub const GAS_PER_DATA_BYTE: u64 = 1_500;
/// Most undelegated funds per delegator (delegation.go `maxNumOfUnStakedFunds`).
pub const MAX_UNSTAKED_FUNDS: usize = 50;
const YEAR_SECS: u128 = 365 * 86_400;

/// One staking provider at genesis.
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    /// Its delegation contract's address (`erd1qqqqqqqqqqqqqqqpqqqqqqqqqqqqqqqqqqqqq…`).
    pub address: String,
    /// Its name (`getMetaData`).
    pub name: String,
    /// Service fee, hundredths of a percent (`getContractConfig`; 10 000 = 100 %).
    pub service_fee: u64,
    /// Other delegators' active stake at genesis, base units.
    pub total_active: u128,
}

/// The chain's genesis.
#[derive(Debug, Clone)]
pub struct MultiversxGenesis {
    /// Chain id (`1` mainnet, `D` devnet, `T` testnet; the local chain's own).
    pub chain_id: String,
    /// Unix seconds of round 0.
    pub start_time_secs: u64,
    /// Milliseconds per round (6 000 before Supernova, 600 after).
    pub round_duration_ms: u64,
    /// Rounds per epoch (mainnet 14 400 at 6 s: one day).
    pub rounds_per_epoch: u64,
    /// Minimum gas price, base units per gas unit (mainnet 10^9).
    pub min_gas_price: u64,
    /// Epochs an undelegated fund waits (mainnet 10).
    pub unbond_period_epochs: u64,
    /// The manager's minDelegationAmount, base units (mainnet 1 EGLD).
    pub min_delegation: u128,
    /// The providers' yearly reward before their fee, bps of their active stake.
    pub apr_bps: u32,
    /// The providers.
    pub providers: Vec<ProviderSpec>,
    /// Accounts: (32-byte Ed25519 public key, balance in base units).
    pub accounts: Vec<([u8; 32], u128)>,
    /// Real milliseconds between rounds produced on their own (0: only transactions and
    /// the test clock produce them).
    pub tick_ms: u64,
}

/// The `erd1…` form of 32 bytes.
pub fn to_bech32(a: &[u8; 32]) -> String {
    bech32::encode::<bech32::Bech32>(bech32::Hrp::parse_unchecked("erd"), a).unwrap_or_default()
}

fn parse(s: &str) -> Result<[u8; 32], String> {
    let (hrp, b) = bech32::decode(s).map_err(|e| format!("invalid address {s}: {e}"))?;
    if hrp.as_str() != "erd" {
        return Err(format!("invalid address {s}: prefix {hrp}"));
    }
    b.try_into().map_err(|_| format!("invalid address {s}: length"))
}

/// The address of provider `i` as the delegation manager derives them (a system
/// contract: eight zero bytes, then the VM type and the index).
pub fn provider_address(i: u32) -> String {
    let mut a = [0u8; 32];
    a[8] = 0x01;
    a[24..28].copy_from_slice(&(i + 1).to_be_bytes());
    a[28..].copy_from_slice(&[0xff; 4]);
    to_bech32(&a)
}

/// Providers from a CSV of `address,name,service_fee_bps,total_active_egld` (the
/// bundled `data/multiversx/providers.csv`), the first `n`.
///
/// # Errors
/// A row that does not parse, naming its line.
pub fn providers_from_csv(text: &str, n: usize) -> Result<Vec<ProviderSpec>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in r.records().take(n).enumerate() {
        let line = i + 2;
        let row = row.with_context(|| format!("providers.csv line {line}"))?;
        let field = |k: usize| row.get(k).unwrap_or("").trim().to_string();
        let egld: u128 = field(3)
            .parse()
            .with_context(|| format!("providers.csv line {line}: total_active_egld"))?;
        parse(&field(0)).map_err(|e| anyhow::anyhow!("providers.csv line {line}: {e}"))?;
        out.push(ProviderSpec {
            address: field(0),
            name: field(1),
            service_fee: field(2)
                .parse()
                .with_context(|| format!("providers.csv line {line}: service_fee_bps"))?,
            total_active: egld
                .checked_mul(EGLD)
                .with_context(|| format!("providers.csv line {line}: total_active_egld overflows"))?,
        });
    }
    Ok(out)
}

/// The transaction as the node takes it (`FrontendTransaction`, mx-chain-core-go), read
/// strictly.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Tx {
    nonce: u64,
    value: String,
    receiver: String,
    sender: String,
    gas_price: u64,
    gas_limit: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    signature: Option<String>,
    #[serde(rename = "chainID")]
    chain_id: String,
    version: u32,
    #[serde(default, skip_serializing_if = "is_zero")]
    options: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

/// transaction.proto's `Transaction` (the fields a plain transaction carries).
#[derive(Clone, PartialEq, Message)]
struct Proto {
    #[prost(uint64, tag = "1")]
    nonce: u64,
    #[prost(bytes = "vec", tag = "2")]
    value: Vec<u8>,
    #[prost(bytes = "vec", tag = "3")]
    rcv: Vec<u8>,
    #[prost(bytes = "vec", tag = "5")]
    snd: Vec<u8>,
    #[prost(uint64, tag = "7")]
    gas_price: u64,
    #[prost(uint64, tag = "8")]
    gas_limit: u64,
    #[prost(bytes = "vec", tag = "9")]
    data: Vec<u8>,
    #[prost(bytes = "vec", tag = "10")]
    chain_id: Vec<u8>,
    #[prost(uint32, tag = "11")]
    version: u32,
    #[prost(bytes = "vec", tag = "12")]
    signature: Vec<u8>,
    #[prost(uint32, tag = "13")]
    options: u32,
}

/// A checked transaction: its parts decoded.
struct Checked {
    hash: String,
    sender: [u8; 32],
    receiver: [u8; 32],
    value: u128,
    data: Vec<u8>,
    tx: Tx,
}

fn big_bytes(v: u128) -> Vec<u8> {
    let b = v.to_be_bytes();
    b[b.iter().position(|x| *x != 0).unwrap_or(16)..].to_vec()
}

fn from_big(b: &[u8]) -> Option<u128> {
    let b = &b[b.iter().position(|x| *x != 0).unwrap_or(b.len())..];
    (b.len() <= 16).then(|| {
        let mut buf = [0u8; 16];
        buf[16 - b.len()..].copy_from_slice(b);
        u128::from_be_bytes(buf)
    })
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `a · b / c` with a 256-bit intermediate.
fn mul_div(a: u128, b: u128, c: u128) -> u128 {
    if c == 0 {
        return 0;
    }
    u128::try_from(U256::from(a) * U256::from(b) / U256::from(c)).unwrap_or(u128::MAX)
}

impl Tx {
    /// Decodes and checks the signature over the JSON signing form.
    fn check(self) -> Result<Checked, String> {
        let sender = parse(&self.sender)?;
        let receiver = parse(&self.receiver)?;
        let value: u128 = self
            .value
            .parse()
            .map_err(|_| format!("invalid value {}", self.value))?;
        let data = match &self.data {
            Some(d) => base64::engine::general_purpose::STANDARD
                .decode(d)
                .map_err(|_| "invalid data field".to_string())?,
            None => vec![],
        };
        let sig =
            hex::decode(self.signature.as_deref().unwrap_or("")).map_err(|_| "signature is invalid".to_string())?;
        let unsigned = Tx {
            signature: None,
            ..self.clone()
        };
        let msg = serde_json::to_vec(&unsigned).map_err(|e| e.to_string())?;
        let key = VerifyingKey::from_bytes(&sender).map_err(|_| "signature is invalid".to_string())?;
        let sig = Signature::from_slice(&sig).map_err(|_| "signature is invalid".to_string())?;
        key.verify(&msg, &sig).map_err(|_| "signature is invalid".to_string())?;
        let mut v = vec![0u8];
        v.extend(big_bytes(value));
        if v.len() == 1 {
            v.push(0);
        }
        let p = Proto {
            nonce: self.nonce,
            value: v,
            rcv: receiver.to_vec(),
            snd: sender.to_vec(),
            gas_price: self.gas_price,
            gas_limit: self.gas_limit,
            data: data.clone(),
            chain_id: self.chain_id.as_bytes().to_vec(),
            version: self.version,
            signature: sig.to_bytes().to_vec(),
            options: self.options,
        };
        Ok(Checked {
            hash: hex::encode(Blake2b::<U32>::digest(p.encode_to_vec())),
            sender,
            receiver,
            value,
            data,
            tx: self,
        })
    }
}

#[derive(Debug, Clone, Default)]
struct Delegator {
    active: u128,
    /// (value, epoch of the undelegation)
    unstaked: Vec<(u128, u64)>,
    unclaimed: u128,
    cumulated: u128,
}

#[derive(Debug, Clone)]
struct Provider {
    name: String,
    owner: [u8; 32],
    service_fee: u64,
    delegators: BTreeMap<[u8; 32], Delegator>,
}

impl Provider {
    fn total_active(&self) -> u128 {
        self.delegators.values().map(|d| d.active).sum()
    }
}

#[derive(Debug, Clone, Default)]
struct Account {
    nonce: u64,
    balance: u128,
}

#[derive(Debug, Clone)]
struct TxRecord {
    tx: Tx,
    status: &'static str,
    return_message: String,
    paid: u128,
    nonce: u64,
    timestamp: u64,
    epoch: u64,
}

#[derive(Debug)]
struct Chain {
    g: MultiversxGenesis,
    round: u64,
    epoch: u64,
    epoch_start_round: u64,
    /// metachain block nonce and its round, one per block
    blocks: Vec<u64>,
    accounts: BTreeMap<[u8; 32], Account>,
    providers: BTreeMap<[u8; 32], Provider>,
    /// In the manager's list order.
    provider_list: Vec<[u8; 32]>,
    txs: HashMap<String, TxRecord>,
}

/// A refusal at send (HTTP 400 with the node's message).
struct Refused(String);

impl Chain {
    fn new(g: MultiversxGenesis) -> Result<Chain> {
        anyhow::ensure!(
            g.round_duration_ms > 0 && g.rounds_per_epoch > 0 && g.min_gas_price > 0,
            "genesis: round_duration_ms, rounds_per_epoch and min_gas_price must be above 0"
        );
        let mut providers = BTreeMap::new();
        let mut provider_list = Vec::new();
        for (i, p) in g.providers.iter().enumerate() {
            let a = parse(&p.address).map_err(|e| anyhow::anyhow!("genesis provider {i}: {e}"))?;
            anyhow::ensure!(
                p.service_fee <= 10_000,
                "genesis provider {}: service fee above 10000",
                p.name
            );
            let mut owner = [0u8; 32];
            owner[..4].copy_from_slice(&u32::try_from(i)?.to_be_bytes());
            owner[31] = 0x42;
            let mut delegators = BTreeMap::new();
            delegators.insert(
                owner,
                Delegator {
                    active: p.total_active,
                    ..Delegator::default()
                },
            );
            providers.insert(
                a,
                Provider {
                    name: p.name.clone(),
                    owner,
                    service_fee: p.service_fee,
                    delegators,
                },
            );
            provider_list.push(a);
        }
        let accounts = g
            .accounts
            .iter()
            .map(|(k, b)| (*k, Account { nonce: 0, balance: *b }))
            .collect();
        Ok(Chain {
            round: 0,
            epoch: 0,
            epoch_start_round: 0,
            blocks: vec![0],
            accounts,
            providers,
            provider_list,
            txs: HashMap::new(),
            g,
        })
    }

    fn timestamp_of(&self, round: u64) -> u64 {
        self.g.start_time_secs + round.saturating_mul(self.g.round_duration_ms) / 1_000
    }

    fn now(&self) -> u64 {
        self.timestamp_of(self.round)
    }

    /// Produces `n` rounds, each a block; an epoch ends every `rounds_per_epoch`.
    fn produce(&mut self, n: u64) {
        for _ in 0..n {
            self.round += 1;
            self.blocks.push(self.round);
            if self.round - self.epoch_start_round >= self.g.rounds_per_epoch {
                self.end_epoch();
            }
        }
    }

    /// The end of epoch `self.epoch`: each provider's reward for it, the service fee to
    /// its owner, the rest pro rata to the delegators' active stake.
    fn end_epoch(&mut self) {
        let epoch_secs = u128::from(self.g.rounds_per_epoch) * u128::from(self.g.round_duration_ms) / 1_000;
        let apr = u128::from(self.g.apr_bps);
        for p in self.providers.values_mut() {
            let total = p.total_active();
            let reward = mul_div(total, apr * epoch_secs, 10_000 * YEAR_SECS);
            if reward == 0 {
                continue;
            }
            let fee = mul_div(reward, u128::from(p.service_fee), 10_000);
            let rest = reward - fee;
            let owner = p.owner;
            for (who, d) in p.delegators.iter_mut() {
                if *who == owner {
                    d.unclaimed += fee;
                }
                d.unclaimed += mul_div(rest, d.active, total);
            }
        }
        self.epoch += 1;
        self.epoch_start_round = self.round;
    }

    fn status(&self) -> Value {
        json!({
            "erd_current_round": self.round,
            "erd_epoch_number": self.epoch,
            "erd_nonce": self.blocks.len() - 1,
            "erd_highest_final_nonce": self.blocks.len() - 1,
            "erd_round_at_epoch_start": self.epoch_start_round,
            "erd_rounds_passed_in_current_epoch": self.round - self.epoch_start_round,
            "erd_rounds_per_epoch": self.g.rounds_per_epoch,
        })
    }

    fn config(&self) -> Value {
        json!({
            "erd_chain_id": self.g.chain_id,
            "erd_denomination": 18,
            "erd_gas_per_data_byte": GAS_PER_DATA_BYTE,
            "erd_gas_price_modifier": "0.01",
            "erd_min_gas_limit": MIN_GAS_LIMIT,
            "erd_min_gas_price": self.g.min_gas_price,
            "erd_min_transaction_version": 1,
            "erd_round_duration": self.g.round_duration_ms,
            "erd_rounds_per_epoch": self.g.rounds_per_epoch,
            "erd_start_time": self.g.start_time_secs,
            "erd_num_shards_without_meta": 3,
        })
    }

    /// The node's checks before a transaction enters the pool.
    fn admit(&self, t: &Checked) -> Result<(), Refused> {
        let tx = &t.tx;
        if tx.chain_id != self.g.chain_id {
            return Err(Refused("invalid chain ID".into()));
        }
        if tx.version < 1 {
            return Err(Refused("invalid transaction version".into()));
        }
        if tx.gas_price < self.g.min_gas_price {
            return Err(Refused("insufficient gas price in tx".into()));
        }
        let min_gas = MIN_GAS_LIMIT + GAS_PER_DATA_BYTE * t.data.len() as u64;
        if tx.gas_limit < min_gas {
            return Err(Refused("insufficient gas limit in tx".into()));
        }
        let a = self.accounts.get(&t.sender).cloned().unwrap_or_default();
        if tx.nonce < a.nonce {
            return Err(Refused("lower nonce in transaction".into()));
        }
        if tx.nonce > a.nonce {
            // the node pools nonces a little ahead; this chain executes at once, so a
            // gap is refused
            return Err(Refused("higher nonce in transaction".into()));
        }
        let cost = u128::from(tx.gas_limit)
            .checked_mul(u128::from(tx.gas_price))
            .and_then(|gas| gas.checked_add(t.value));
        if cost.is_none_or(|c| a.balance < c) {
            return Err(Refused("insufficient funds".into()));
        }
        Ok(())
    }

    /// Executes an admitted transaction in a new block.
    fn execute(&mut self, t: Checked) -> String {
        self.produce(1);
        let fee = self.fee(&t);
        let acct = self.accounts.entry(t.sender).or_default();
        acct.nonce += 1;
        acct.balance -= fee;
        let result = if self.providers.contains_key(&t.receiver) {
            // the call's value (a delegation's) leaves the account only when it succeeds
            self.call(&t)
                .inspect(|_| self.accounts.entry(t.sender).or_default().balance -= t.value)
        } else {
            self.accounts.entry(t.sender).or_default().balance -= t.value;
            self.accounts.entry(t.receiver).or_default().balance += t.value;
            Ok(0)
        };
        let (status, return_message, paid) = match result {
            Ok(paid) => ("success", String::new(), paid),
            Err(m) => ("fail", m, 0),
        };
        if paid > 0 {
            self.accounts.entry(t.sender).or_default().balance += paid;
        }
        self.txs.insert(
            t.hash.clone(),
            TxRecord {
                status,
                return_message,
                paid,
                nonce: self.blocks.len() as u64 - 1,
                timestamp: self.now(),
                epoch: self.epoch,
                tx: t.tx,
            },
        );
        t.hash
    }

    /// The fee: the move-balance part at the gas price, the rest at 1 % (the
    /// `erd_gas_price_modifier`), no refund modelled.
    fn fee(&self, t: &Checked) -> u128 {
        let price = u128::from(t.tx.gas_price);
        let move_gas = u128::from(MIN_GAS_LIMIT + GAS_PER_DATA_BYTE * t.data.len() as u64);
        let rest = u128::from(t.tx.gas_limit).saturating_sub(move_gas);
        move_gas * price + rest * price / 100
    }

    /// A call to a delegation contract: the value it pays back to the caller, or its
    /// user error (the call's value stays with the caller).
    fn call(&mut self, t: &Checked) -> Result<u128, String> {
        let text = String::from_utf8(t.data.clone()).map_err(|_| "invalid function".to_string())?;
        let mut parts = text.split('@');
        let function = parts.next().unwrap_or("");
        let args: Vec<Vec<u8>> = parts
            .map(|a| hex::decode(a).map_err(|_| "invalid argument".to_string()))
            .collect::<Result<_, _>>()?;
        let (epoch, min, unbond) = (self.epoch, self.g.min_delegation, self.g.unbond_period_epochs);
        let p = self.providers.get_mut(&t.receiver).ok_or("not a provider")?;
        if function != "delegate" && t.value != 0 {
            return Err("callValue must be 0".into());
        }
        match function {
            "delegate" => {
                if t.value < min {
                    return Err(format!("delegate value must be higher than minDelegationAmount {min}"));
                }
                let d = p.delegators.entry(t.sender).or_default();
                d.active += t.value;
                Ok(0)
            }
            "unDelegate" => {
                let [v] = args.as_slice() else {
                    return Err("wrong number of arguments".into());
                };
                let v = from_big(v).filter(|v| *v > 0).ok_or("invalid value to undelegate")?;
                let d = p.delegators.get_mut(&t.sender).ok_or("caller is not a delegator")?;
                if d.active < v {
                    return Err("invalid value to undelegate".into());
                }
                let rest = d.active - v;
                if rest > 0 && rest < min {
                    return Err(
                        "invalid value to undelegate - need to undelegate all - do not leave dust behind".into(),
                    );
                }
                match d.unstaked.last_mut() {
                    Some(last) if last.1 == epoch => last.0 += v,
                    _ => d.unstaked.push((v, epoch)),
                }
                if d.unstaked.len() > MAX_UNSTAKED_FUNDS {
                    d.unstaked.pop();
                    return Err("number of unDelegate limit reached, withDraw required".into());
                }
                d.active = rest;
                Ok(0)
            }
            "withdraw" => {
                let d = p.delegators.get_mut(&t.sender).ok_or("caller is not a delegator")?;
                let ready: u128 = d.unstaked.iter().filter(|f| epoch - f.1 >= unbond).map(|f| f.0).sum();
                if ready == 0 {
                    return Err("nothing to unBond".into());
                }
                d.unstaked.retain(|f| epoch - f.1 < unbond);
                let delete = d.active == 0 && d.unstaked.is_empty() && d.unclaimed == 0 && t.sender != p.owner;
                if delete {
                    p.delegators.remove(&t.sender);
                }
                Ok(ready)
            }
            "claimRewards" => {
                let d = p.delegators.get_mut(&t.sender).ok_or("caller is not a delegator")?;
                let paid = std::mem::take(&mut d.unclaimed);
                d.cumulated += paid;
                if d.active == 0 && d.unstaked.is_empty() && t.sender != p.owner {
                    p.delegators.remove(&t.sender);
                }
                Ok(paid)
            }
            other => Err(format!("{other} is an unknown function")),
        }
    }

    /// A VM query: (returnData, returnCode, returnMessage).
    fn query(&self, q: &Query) -> (Vec<Vec<u8>>, &'static str, String) {
        let user = |msg: &str| (vec![], "user error", msg.to_string());
        let Ok(sc) = parse(&q.sc_address) else {
            return user("invalid sc address");
        };
        let args: Vec<Vec<u8>> = match q.args.iter().map(hex::decode).collect() {
            Ok(a) => a,
            Err(_) => return user("invalid arguments"),
        };
        if q.sc_address == DELEGATION_MANAGER {
            if q.caller.as_deref() != Some(DELEGATION_MANAGER) {
                return user("invalid caller");
            }
            return match q.func_name.as_str() {
                // the list's first entry is skipped by the contract; ours starts at 0
                "getAllContractAddresses" => (
                    self.provider_list.iter().map(|a| a.to_vec()).collect(),
                    "ok",
                    String::new(),
                ),
                "getContractConfig" => (
                    vec![
                        big_bytes(self.provider_list.len() as u128),
                        self.provider_list.last().map(|a| a.to_vec()).unwrap_or_default(),
                        big_bytes(0),
                        big_bytes(10_000),
                        big_bytes(1_250 * EGLD),
                        big_bytes(self.g.min_delegation),
                    ],
                    "ok",
                    String::new(),
                ),
                f => user(&format!("invalid function to call {f}")),
            };
        }
        let Some(p) = self.providers.get(&sc) else {
            return user("invalid contract code (not found)");
        };
        let ok = |data: Vec<Vec<u8>>| (data, "ok", String::new());
        match q.func_name.as_str() {
            "getContractConfig" => ok(vec![
                p.owner.to_vec(),
                big_bytes(u128::from(p.service_fee)),
                big_bytes(0),
                big_bytes(1_250 * EGLD),
                b"true".to_vec(),
                b"false".to_vec(),
                b"true".to_vec(),
                b"false".to_vec(),
                big_bytes(1),
                big_bytes(u128::from(self.g.unbond_period_epochs)),
            ]),
            "getTotalActiveStake" => ok(vec![big_bytes(p.total_active())]),
            "getMetaData" => ok(vec![p.name.clone().into_bytes(), b"https://localhost".to_vec(), vec![]]),
            f @ ("getUserActiveStake"
            | "getUserUnStakedValue"
            | "getUserUnBondable"
            | "getUserUnDelegatedList"
            | "getClaimableRewards"
            | "getTotalCumulatedRewardsForUser") => {
                let [who] = args.as_slice() else {
                    return user("invalid number of arguments");
                };
                let Some(d) = <[u8; 32]>::try_from(who.as_slice())
                    .ok()
                    .and_then(|w| p.delegators.get(&w))
                else {
                    return user("view function works only for existing delegators");
                };
                let unbond = self.g.unbond_period_epochs;
                let ready = |f: &&(u128, u64)| self.epoch - f.1 >= unbond;
                ok(match f {
                    "getUserActiveStake" => vec![big_bytes(d.active)],
                    "getUserUnStakedValue" => vec![big_bytes(d.unstaked.iter().map(|f| f.0).sum())],
                    "getUserUnBondable" => vec![big_bytes(d.unstaked.iter().filter(ready).map(|f| f.0).sum())],
                    "getUserUnDelegatedList" => d
                        .unstaked
                        .iter()
                        .flat_map(|f| {
                            let left = unbond.saturating_sub(self.epoch - f.1);
                            [big_bytes(f.0), big_bytes(u128::from(left))]
                        })
                        .collect(),
                    "getClaimableRewards" => vec![big_bytes(d.unclaimed)],
                    _ => vec![big_bytes(d.cumulated + d.unclaimed)],
                })
            }
            f => user(&format!("invalid function to call {f}")),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Query {
    sc_address: String,
    func_name: String,
    #[serde(default)]
    caller: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    value: Option<String>,
}

type Shared = Arc<Mutex<Chain>>;

fn lock(chain: &Shared) -> std::sync::MutexGuard<'_, Chain> {
    chain.lock().unwrap_or_else(|p| p.into_inner())
}

fn ok(data: Value) -> (StatusCode, Json<Value>) {
    (
        StatusCode::OK,
        Json(json!({"data": data, "error": "", "code": "successful"})),
    )
}

fn bad(status: StatusCode, error: String, code: &str) -> (StatusCode, Json<Value>) {
    (status, Json(json!({"data": null, "error": error, "code": code})))
}

async fn network_config(State(c): State<Shared>) -> (StatusCode, Json<Value>) {
    ok(json!({"config": lock(&c).config()}))
}

async fn network_status(State(c): State<Shared>, Path(shard): Path<String>) -> (StatusCode, Json<Value>) {
    if shard != "4294967295" {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("shard {shard}: only the metachain here"),
            "bad_request",
        );
    }
    ok(json!({"status": lock(&c).status()}))
}

async fn hyperblock(State(c): State<Shared>, Path(nonce): Path<u64>) -> (StatusCode, Json<Value>) {
    let c = lock(&c);
    match c.blocks.get(usize::try_from(nonce).unwrap_or(usize::MAX)) {
        Some(round) => ok(json!({"hyperblock": {
            "nonce": nonce,
            "round": round,
            "epoch": c.epoch,
            "timestamp": c.timestamp_of(*round),
        }})),
        None => bad(
            StatusCode::NOT_FOUND,
            "getting hyperblock failed: block not found".into(),
            "internal_issue",
        ),
    }
}

async fn address(State(c): State<Shared>, Path(addr): Path<String>) -> (StatusCode, Json<Value>) {
    let Ok(a) = parse(&addr) else {
        return bad(
            StatusCode::BAD_REQUEST,
            format!("cannot get account: invalid address {addr}"),
            "bad_request",
        );
    };
    let acct = lock(&c).accounts.get(&a).cloned().unwrap_or_default();
    ok(json!({"account": {"address": addr, "nonce": acct.nonce, "balance": acct.balance.to_string()}}))
}

async fn vm_query(State(c): State<Shared>, Json(q): Json<Query>) -> (StatusCode, Json<Value>) {
    if q.value.as_deref().is_some_and(|v| v != "0" && !v.is_empty()) {
        return bad(
            StatusCode::BAD_REQUEST,
            "a view is called with no value".into(),
            "bad_request",
        );
    }
    let (data, code, message) = lock(&c).query(&q);
    ok(json!({"data": {
        "returnData": data.iter().map(|d| b64(d)).collect::<Vec<_>>(),
        "returnCode": code,
        "returnMessage": message,
    }}))
}

async fn send(State(c): State<Shared>, Json(body): Json<Value>) -> (StatusCode, Json<Value>) {
    let refuse = |m: String| {
        bad(
            StatusCode::BAD_REQUEST,
            format!("transaction generation failed: {m}"),
            "bad_request",
        )
    };
    let tx: Tx = match serde_json::from_value(body) {
        Ok(t) => t,
        Err(e) => return bad(StatusCode::BAD_REQUEST, format!("validation error: {e}"), "bad_request"),
    };
    let checked = match tx.check() {
        Ok(t) => t,
        Err(m) => return refuse(m),
    };
    let mut chain = lock(&c);
    if let Err(Refused(m)) = chain.admit(&checked) {
        return refuse(m);
    }
    let hash = chain.execute(checked);
    ok(json!({ "txHash": hash }))
}

async fn transaction(State(c): State<Shared>, Path(hash): Path<String>) -> (StatusCode, Json<Value>) {
    let c = lock(&c);
    let Some(r) = c.txs.get(&hash) else {
        return bad(
            StatusCode::INTERNAL_SERVER_ERROR,
            "getting transaction failed: transaction not found".into(),
            "internal_issue",
        );
    };
    let mut scrs = Vec::new();
    if r.paid > 0 || !r.return_message.is_empty() {
        scrs.push(json!({
            "hash": hex::encode(Blake2b::<U32>::digest(format!("{hash}-scr"))),
            "sender": r.tx.receiver,
            "receiver": r.tx.sender,
            "value": r.paid.to_string(),
            "originalTxHash": hash,
            "returnMessage": r.return_message,
        }));
    }
    let mut t = serde_json::to_value(&r.tx).unwrap_or(Value::Null);
    t["hash"] = json!(hash);
    t["status"] = json!(r.status);
    t["blockNonce"] = json!(r.nonce);
    t["epoch"] = json!(r.epoch);
    t["timestamp"] = json!(r.timestamp);
    t["smartContractResults"] = json!(scrs);
    ok(json!({ "transaction": t }))
}

/// A running local MultiversX chain (stopped when dropped).
#[derive(Debug)]
pub struct LocalMultiversx {
    /// `http://127.0.0.1:<port>`, the gateway's base URL.
    pub url: String,
    chain: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for LocalMultiversx {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts the chain on 127.0.0.1:`port` (0 = any free port).
///
/// # Errors
/// A genesis that does not hold together; a port that cannot be bound.
pub async fn start(genesis: MultiversxGenesis, port: u16) -> Result<LocalMultiversx> {
    let tick_ms = genesis.tick_ms;
    let chain: Shared = Arc::new(Mutex::new(Chain::new(genesis)?));
    let app = Router::new()
        .route("/network/config", get(network_config))
        .route("/network/status/{shard}", get(network_status))
        .route("/hyperblock/by-nonce/{nonce}", get(hyperblock))
        .route("/address/{address}", get(address))
        .route("/vm-values/query", post(vm_query))
        .route("/transaction/send", post(send))
        .route("/transaction/{hash}", get(transaction))
        .with_state(chain.clone());
    let ticking = chain.clone();
    let (addr, server) = crate::serve(app, port, tick_ms, move || lock(&ticking).produce(1))
        .await
        .context("the local MultiversX gateway")?;
    Ok(LocalMultiversx {
        url: format!("http://{addr}"),
        chain,
        server,
    })
}

impl LocalMultiversx {
    /// Produces rounds up to the end of the current epoch and `n − 1` more epochs (each
    /// end pays the epoch's rewards).
    pub fn advance_epochs(&self, n: u64) {
        let mut c = lock(&self.chain);
        for _ in 0..n {
            let left = c.g.rounds_per_epoch - (c.round - c.epoch_start_round);
            c.produce(left);
        }
    }

    /// Produces `n` rounds.
    pub fn advance_rounds(&self, n: u64) {
        lock(&self.chain).produce(n);
    }

    /// The current epoch.
    pub fn epoch(&self) -> u64 {
        lock(&self.chain).epoch
    }

    /// (nonce, balance) of an account.
    pub fn account(&self, key: &[u8; 32]) -> (u64, u128) {
        let a = lock(&self.chain).accounts.get(key).cloned().unwrap_or_default();
        (a.nonce, a.balance)
    }

    /// Our delegation at `provider`: (active, undelegated total, unclaimed, cumulated
    /// claimed); `None` when the contract holds no record of `who`.
    pub fn delegation(&self, provider: &str, who: &[u8; 32]) -> Option<(u128, u128, u128, u128)> {
        let p = parse(provider).ok()?;
        let c = lock(&self.chain);
        let d = c.providers.get(&p)?.delegators.get(who)?;
        Some((d.active, d.unstaked.iter().map(|f| f.0).sum(), d.unclaimed, d.cumulated))
    }

    /// The value a transaction's smart contract result paid back to its sender.
    pub fn paid_by(&self, hash: &str) -> Option<u128> {
        lock(&self.chain).txs.get(hash).map(|r| r.paid)
    }

    /// Number of transactions executed (failed ones included).
    pub fn tx_count(&self) -> usize {
        lock(&self.chain).txs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};

    fn genesis(me: [u8; 32]) -> MultiversxGenesis {
        MultiversxGenesis {
            chain_id: "localnet".into(),
            start_time_secs: 1_750_000_000,
            round_duration_ms: 6_000,
            rounds_per_epoch: 100,
            min_gas_price: 1_000_000_000,
            unbond_period_epochs: 10,
            min_delegation: EGLD,
            apr_bps: 800,
            providers: vec![ProviderSpec {
                address: provider_address(0),
                name: "p0".into(),
                service_fee: 1_000,
                total_active: 1_000_000 * EGLD,
            }],
            accounts: vec![(me, 1_000 * EGLD)],
            tick_ms: 0,
        }
    }

    fn signed(k: &SigningKey, nonce: u64, value: u128, data: &str, chain: &str) -> Tx {
        let mut t = Tx {
            nonce,
            value: value.to_string(),
            receiver: provider_address(0),
            sender: to_bech32(&k.verifying_key().to_bytes()),
            gas_price: 1_000_000_000,
            gas_limit: 12_000_000,
            data: Some(b64(data.as_bytes())),
            signature: None,
            chain_id: chain.into(),
            version: 2,
            options: 0,
        };
        t.signature = Some(hex::encode(k.sign(&serde_json::to_vec(&t).unwrap()).to_bytes()));
        t
    }

    #[test]
    fn success_delegation_rules_as_the_contract_keeps_them() {
        let k = SigningKey::from_bytes(&[5; 32]);
        let me = k.verifying_key().to_bytes();
        let mut c = Chain::new(genesis(me)).unwrap();
        let run = |c: &mut Chain, n: u64, v: u128, d: &str| {
            let t = signed(&k, n, v, d, "localnet").check().unwrap();
            c.admit(&t).map_err(|r| r.0).unwrap();
            let h = c.execute(t);
            let r = &c.txs[&h];
            (r.status, r.return_message.clone())
        };
        let below = run(&mut c, 0, EGLD / 2, "delegate");
        assert_eq!(
            below,
            (
                "fail",
                format!("delegate value must be higher than minDelegationAmount {EGLD}")
            )
        );
        assert_eq!(run(&mut c, 1, 10 * EGLD, "delegate").0, "success");
        let dust = run(
            &mut c,
            2,
            0,
            &format!("unDelegate@{}", hex::encode(big_bytes(9 * EGLD + 1))),
        );
        assert!(dust.1.contains("do not leave dust behind"), "{dust:?}");
        assert_eq!(run(&mut c, 3, 0, "withdraw").1, "nothing to unBond");
        // a delegation shares the reward of the epoch it was made in, on its stake at the end
        let p0 = parse(&provider_address(0)).unwrap();
        c.end_epoch();
        let first = c.providers[&p0].delegators[&me].unclaimed;
        // 10 of 1 000 010 EGLD active: its share of the epoch's reward after the 10 % fee
        let epoch_reward = mul_div(1_000_010 * EGLD, 800 * 600, 10_000 * YEAR_SECS);
        let expected = mul_div(epoch_reward - epoch_reward / 10, 10 * EGLD, 1_000_010 * EGLD);
        assert_eq!(first, expected);
        c.end_epoch();
        assert_eq!(c.providers[&p0].delegators[&me].unclaimed, 2 * first, "the same again");
    }

    proptest::proptest! {
        /// An epoch's end pays exactly the provider's reward: the fee to the owner, the
        /// rest pro rata to the active stakes, losing at most one base unit per delegator
        /// to rounding down, never creating any.
        #[test]
        fn success_epoch_rewards_are_conserved(
            stakes in proptest::collection::vec(1u128..10_000_000u128, 1..20),
            fee in 0u64..=10_000,
            apr in 1u32..5_000,
        ) {
            let mut g = genesis([1; 32]);
            g.apr_bps = apr;
            g.providers[0].service_fee = fee;
            let mut c = Chain::new(g).unwrap();
            let p0 = parse(&provider_address(0)).unwrap();
            let p = c.providers.get_mut(&p0).unwrap();
            for (i, s) in stakes.iter().enumerate() {
                let mut who = [9u8; 32];
                who[..8].copy_from_slice(&(i as u64).to_be_bytes());
                p.delegators.insert(who, Delegator { active: s * EGLD, ..Delegator::default() });
            }
            let total = c.providers[&p0].total_active();
            let unclaimed = |c: &Chain| -> u128 { c.providers[&p0].delegators.values().map(|d| d.unclaimed).sum() };
            let before = unclaimed(&c);
            c.end_epoch();
            let paid = unclaimed(&c) - before;
            let reward = mul_div(total, u128::from(apr) * 600, 10_000 * YEAR_SECS);
            let n = c.providers[&p0].delegators.len() as u128;
            proptest::prop_assert!(paid <= reward && paid + n >= reward, "paid {paid} of {reward}");
            let owner = c.providers[&p0].owner;
            proptest::prop_assert!(c.providers[&p0].delegators[&owner].unclaimed >= mul_div(reward, u128::from(fee), 10_000));
        }
    }

    #[test]
    fn fail_signature_chain_and_nonce_refused_at_send() {
        let k = SigningKey::from_bytes(&[5; 32]);
        let me = k.verifying_key().to_bytes();
        let c = Chain::new(genesis(me)).unwrap();
        let mut forged = signed(&k, 0, EGLD, "delegate", "localnet");
        forged.value = (2 * EGLD).to_string();
        assert_eq!(forged.check().err().unwrap(), "signature is invalid");
        let other = signed(&k, 0, EGLD, "delegate", "1").check().unwrap();
        assert_eq!(c.admit(&other).err().unwrap().0, "invalid chain ID");
        let ahead = signed(&k, 4, EGLD, "delegate", "localnet").check().unwrap();
        assert_eq!(c.admit(&ahead).err().unwrap().0, "higher nonce in transaction");
        let huge = signed(&k, 0, u128::MAX, "delegate", "localnet").check().unwrap();
        assert_eq!(c.admit(&huge).err().unwrap().0, "insufficient funds", "no overflow");
    }
}
