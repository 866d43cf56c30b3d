//! A local Cosmos SDK chain (Cosmos Hub shaped): the gRPC query services cosmos-sdk-proto
//! generates (staking, distribution, auth, bank, tx, CometBFT service) and CometBFT's
//! JSON-RPC `broadcast_tx_sync`, over the rules of `x/auth`'s ante handlers, `x/staking`
//! and `x/distribution`, on a clock the tests control.
//!
//! ```text
//!  Simulate(TxRaw) ─▶ CheckTx's checks without the minimum gas price, the messages on a
//!                     copy of the state: the gas used (nothing changes)
//!  gas: 60 000 per transaction + 10 per byte (x/auth TxSizeCostPerByte) + per message
//!       (delegate 120 000, undelegate 140 000, redelegate 190 000, withdraw 60 000);
//!       delivery above the gas limit fails with sdk code 11 (out of gas), fee kept
//!  block / block_results(height) ─▶ a block's transactions and their results, from the
//!                                   block store (no tx index needed)
//!  broadcast_tx_sync(TxRaw) ─▶ CheckTx: decode, one secp256k1 signer matching the
//!                               messages' signer, timeout_height, fee ≥ gas × min price,
//!                               sequence (check state), SIGN_MODE_DIRECT signature over
//!                               SignDoc{body, auth_info, chain_id, account_number}
//!                            ─▶ mempool ─▶ next block: the same checks on the block's
//!                               state, fee taken, sequence + 1, messages all or nothing
//!  block: rewards accrue per block (inflation × supply spread over bonded tokens, less
//!         community tax and the validator's commission, kept as 18-decimal amounts);
//!         EndBlock pays matured unbonding entries back (`complete_unbonding`)
//! ```
//!
//! Messages: `MsgDelegate`, `MsgUndelegate` (an entry for `unbonding_time`, at most
//! `max_entries` per delegator–validator pair: staking code 27), `MsgBeginRedelegate`,
//! `MsgWithdrawDelegatorReward`; a delegation change pays the pending reward first
//! (`withdraw_rewards` event), as x/distribution's hooks do. Error codes and logs are the
//! SDK's (`sdk` codespace: 4 unauthorized, 5 insufficient funds, 13 insufficient fee, 30
//! timeout height, 32 wrong sequence).
// tonic's `Status` is the error type every generated gRPC method returns
#![allow(clippy::result_large_err)]

mod grpc;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context, Result};
use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine as _;
use cosmos_sdk_proto::cosmos::auth::v1beta1 as auth;
use cosmos_sdk_proto::cosmos::bank::v1beta1 as bank;
use cosmos_sdk_proto::cosmos::base::abci::v1beta1::TxResponse;
use cosmos_sdk_proto::cosmos::base::query::v1beta1::PageResponse;
use cosmos_sdk_proto::cosmos::base::tendermint::v1beta1 as cmt;
use cosmos_sdk_proto::cosmos::base::v1beta1::{Coin, DecCoin};
use cosmos_sdk_proto::cosmos::distribution::v1beta1 as distr;
use cosmos_sdk_proto::cosmos::staking::v1beta1 as staking;
use cosmos_sdk_proto::cosmos::tx::v1beta1 as txpb;
use cosmos_sdk_proto::prost::Message;
use cosmos_sdk_proto::tendermint::abci::{Event, EventAttribute};
use cosmos_sdk_proto::Any;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tonic_cosmos::Status;

const YEAR_SECS: u128 = 31_557_600;
const DEC: u128 = 1_000_000_000_000_000_000;
/// Gas the ante handlers charge per transaction (signature verification, fee deduction,
/// account reads), before its bytes and messages.
const GAS_BASE: u64 = 60_000;
/// x/auth's `TxSizeCostPerByte` default: gas per byte of the transaction.
const GAS_PER_TX_BYTE: u64 = 10;

/// Gas one message uses, by type: our model of the store reads and writes each does
/// (Gaia mainnet transactions use about 150–250 k gas for a delegation or undelegation
/// in total, 100–150 k for a reward withdrawal).
fn message_gas(type_url: &str) -> u64 {
    match type_url {
        "/cosmos.staking.v1beta1.MsgDelegate" => 120_000,
        "/cosmos.staking.v1beta1.MsgUndelegate" => 140_000,
        "/cosmos.staking.v1beta1.MsgBeginRedelegate" => 190_000,
        "/cosmos.distribution.v1beta1.MsgWithdrawDelegatorReward" => 60_000,
        _ => 90_000,
    }
}

/// Gas a transaction of `tx_bytes` bytes carrying `messages` uses: what delivery meters
/// against its gas limit and what `Simulate` reports.
pub fn gas_used(tx_bytes: usize, messages: &[Any]) -> u64 {
    let size = GAS_PER_TX_BYTE.saturating_mul(tx_bytes as u64);
    messages.iter().fold(GAS_BASE.saturating_add(size), |g, m| {
        g.saturating_add(message_gas(&m.type_url))
    })
}
/// Most transactions kept in one block (bounds the mempool drain).
const MAX_BLOCK_TXS: usize = 5_000;

/// One validator of the genesis.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidatorSpec {
    /// `cosmosvaloper1…`.
    pub operator_address: String,
    /// Moniker.
    pub moniker: String,
    /// Bonded tokens, base units.
    pub tokens: u128,
    /// Commission rate scaled by 10^18 (`sdk.Dec`).
    pub commission_dec: u128,
}

/// Parses a fraction (`"0.1"`) into an `sdk.Dec` scaled by 10^18.
///
/// # Errors
/// Anything but digits with at most one point and 18 decimals.
pub fn dec18(s: &str) -> Result<u128> {
    let (whole, frac) = s.trim().split_once('.').unwrap_or((s.trim(), ""));
    if whole.is_empty() || frac.len() > 18 || !(whole.bytes().chain(frac.bytes())).all(|b| b.is_ascii_digit()) {
        bail!("{s:?} is not a decimal with at most 18 decimals");
    }
    let scaled = format!("{whole}{frac:0<18}");
    scaled.parse::<u128>().with_context(|| format!("{s:?} is out of range"))
}

/// The validators of `data/cosmos/validators_*.csv` (validator_address, name,
/// tokens_uatom, commission_rate), the `limit` largest by tokens.
///
/// # Errors
/// A malformed row, named by its line.
pub fn validators_from_csv(text: &str, limit: usize) -> Result<Vec<ValidatorSpec>> {
    let mut r = csv::Reader::from_reader(text.as_bytes());
    let mut out = Vec::new();
    for (i, row) in r.records().enumerate() {
        let row = row.with_context(|| format!("validators csv line {}", i + 2))?;
        let field = |n: usize| row.get(n).map(str::to_string).unwrap_or_default();
        out.push(ValidatorSpec {
            operator_address: field(0),
            moniker: field(1),
            tokens: field(2)
                .parse()
                .with_context(|| format!("validators csv line {}: tokens_uatom", i + 2))?,
            commission_dec: dec18(&field(3))
                .with_context(|| format!("validators csv line {}: commission_rate", i + 2))?,
        });
    }
    out.sort_by(|a, b| {
        b.tokens
            .cmp(&a.tokens)
            .then(a.operator_address.cmp(&b.operator_address))
    });
    out.truncate(limit);
    Ok(out)
}

/// The chain's starting state and rules.
#[derive(Debug, Clone)]
pub struct CosmosGenesis {
    /// Chain id signed into every SignDoc.
    pub chain_id: String,
    /// Staking denom (`uatom`).
    pub bond_denom: String,
    /// Validators (all bonded).
    pub validators: Vec<ValidatorSpec>,
    /// Funded accounts: (`cosmos1…`, base units).
    pub accounts: Vec<(String, u128)>,
    /// Time of the first block, unix seconds.
    pub genesis_secs: i64,
    /// Chain seconds per block.
    pub block_secs: i64,
    /// `x/staking` `unbonding_time`, seconds (Hub: 1 814 400).
    pub unbonding_time_secs: i64,
    /// `x/staking` `max_entries` (Hub: 7).
    pub max_entries: u32,
    /// Total supply, base units (with the validators' tokens it sets the bonded ratio).
    pub supply: u128,
    /// Yearly inflation, basis points.
    pub inflation_bps: u32,
    /// `x/distribution` community tax, basis points.
    pub community_tax_bps: u32,
    /// Minimum gas price as (numerator, denominator) base units per gas.
    pub min_gas_price: (u128, u128),
    /// Real milliseconds per block produced on its own (0: only when told).
    pub tick_ms: u64,
}

#[derive(Debug, Clone, Default)]
struct Account {
    number: u64,
    sequence: u64,
    balance: u128,
}

#[derive(Debug, Clone)]
struct UnbondingEntry {
    creation_height: i64,
    completion_secs: i64,
    initial: u128,
    balance: u128,
}

#[derive(Debug, Clone)]
struct TxRecord {
    hash: String,
    height: i64,
    time_secs: i64,
    code: u32,
    codespace: String,
    log: String,
    gas_wanted: u64,
    gas_used: u64,
    events: Vec<Event>,
    sender: String,
    /// The transaction's bytes, as the block holds them.
    raw: Vec<u8>,
}

/// A refusal: codespace, code, log.
#[derive(Debug, Clone)]
struct Refusal(&'static str, u32, String);

type Refused<T> = std::result::Result<T, Refusal>;

/// A decoded, checked transaction.
#[derive(Debug, Clone)]
struct Checked {
    signer: String,
    sequence: u64,
    fee: u128,
    gas_limit: u64,
    messages: Vec<Any>,
}

/// The state the messages change (cloned for all-or-nothing delivery).
#[derive(Debug, Clone, Default)]
struct Ledger {
    accounts: BTreeMap<String, Account>,
    tokens: BTreeMap<String, u128>,
    delegations: BTreeMap<(String, String), u128>,
    rewards_dec: BTreeMap<(String, String), u128>,
    unbonding: BTreeMap<(String, String), Vec<UnbondingEntry>>,
    community_pool_dec: u128,
}

#[derive(Debug)]
struct Chain {
    g: CosmosGenesis,
    height: i64,
    time_secs: i64,
    ledger: Ledger,
    check_sequence: BTreeMap<String, u64>,
    mempool: Vec<(String, Vec<u8>)>,
    txs: BTreeMap<String, TxRecord>,
    order: Vec<String>,
    /// Reward per bonded base unit per block before tax and commission, 10^18 scale.
    rate_dec: u128,
    /// Test fault: the tx indexer lags this many blocks behind the head (`GetTx` does not
    /// find transactions of the last `index_lag` blocks, as on a busy node).
    index_lag: i64,
}

fn attr(key: &str, value: impl Into<String>) -> EventAttribute {
    EventAttribute {
        key: key.into(),
        value: value.into(),
        index: true,
    }
}

fn event(kind: &str, attrs: Vec<EventAttribute>) -> Event {
    Event {
        r#type: kind.into(),
        attributes: attrs,
    }
}

fn hash_of(bytes: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(bytes))
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn proto_time(secs: i64) -> cosmos_sdk_proto::Timestamp {
    cosmos_sdk_proto::Timestamp {
        seconds: secs,
        nanos: 0,
    }
}

fn amount(what: &str, s: &str) -> Refused<u128> {
    s.parse::<u128>()
        .map_err(|_| Refusal("sdk", 10, format!("{what} {s:?}: invalid coins")))
}

/// The `cosmos1…` address of a compressed secp256k1 key.
fn address_of(key: &[u8], prefix: &str) -> Option<String> {
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(key).ok()?;
    cosmrs::crypto::PublicKey::from(vk)
        .account_id(prefix)
        .ok()
        .map(|a| a.to_string())
}

impl Chain {
    fn new(g: CosmosGenesis) -> Result<Chain> {
        if g.block_secs <= 0 || g.unbonding_time_secs <= 0 || g.max_entries == 0 || g.min_gas_price.1 == 0 {
            bail!("block_secs, unbonding_time_secs, max_entries and the gas price denominator must be positive");
        }
        let mut ledger = Ledger::default();
        for (i, (a, balance)) in g.accounts.iter().enumerate() {
            if !a.starts_with("cosmos1") {
                bail!("genesis account {a:?} is not a cosmos1… address");
            }
            ledger.accounts.insert(
                a.clone(),
                Account {
                    number: i as u64 + 1,
                    sequence: 0,
                    balance: *balance,
                },
            );
        }
        for v in &g.validators {
            if !v.operator_address.starts_with("cosmosvaloper1") || v.commission_dec > DEC {
                bail!("genesis validator {:?}: address or commission", v.operator_address);
            }
            ledger.tokens.insert(v.operator_address.clone(), v.tokens);
        }
        let bonded: u128 = ledger.tokens.values().sum();
        if bonded == 0 {
            bail!("no bonded tokens");
        }
        let provisions_dec = g
            .supply
            .checked_mul(u128::from(g.inflation_bps))
            .and_then(|x| x.checked_mul(g.block_secs as u128))
            .and_then(|x| x.checked_mul(DEC / 10_000))
            .context("supply × inflation overflows")?;
        let rate_dec = provisions_dec / YEAR_SECS / bonded;
        Ok(Chain {
            height: 1,
            time_secs: g.genesis_secs,
            g,
            ledger,
            check_sequence: BTreeMap::new(),
            mempool: Vec::new(),
            txs: BTreeMap::new(),
            order: Vec::new(),
            rate_dec,
            index_lag: 0,
        })
    }

    /// Decodes and checks a transaction against `ledger` (CheckTx and DeliverTx alike).
    fn check(
        &self,
        ledger: &Ledger,
        sequences: &BTreeMap<String, u64>,
        bytes: &[u8],
        next_height: i64,
    ) -> Refused<Checked> {
        self.check_mode(ledger, sequences, bytes, next_height, false)
    }

    /// [`Chain::check`]; `simulate` skips the minimum gas price (x/auth's
    /// `DeductFeeDecorator` checks it only outside simulation), as `Simulate` does.
    fn check_mode(
        &self,
        ledger: &Ledger,
        sequences: &BTreeMap<String, u64>,
        bytes: &[u8],
        next_height: i64,
        simulate: bool,
    ) -> Refused<Checked> {
        let decode_err = |what: &str, e: String| Refusal("sdk", 2, format!("{what}: {e}: tx parse error"));
        let raw = txpb::TxRaw::decode(bytes).map_err(|e| decode_err("TxRaw", e.to_string()))?;
        let body = txpb::TxBody::decode(raw.body_bytes.as_slice()).map_err(|e| decode_err("TxBody", e.to_string()))?;
        let info = txpb::AuthInfo::decode(raw.auth_info_bytes.as_slice())
            .map_err(|e| decode_err("AuthInfo", e.to_string()))?;
        if body.messages.is_empty() {
            return Err(Refusal(
                "sdk",
                18,
                "must contain at least one message: invalid request".into(),
            ));
        }
        let [signer_info] = info.signer_infos.as_slice() else {
            return Err(Refusal(
                "sdk",
                4,
                "wrong number of signers; expected 1: unauthorized".into(),
            ));
        };
        let [signature] = raw.signatures.as_slice() else {
            return Err(Refusal(
                "sdk",
                4,
                "wrong number of signatures; expected 1: unauthorized".into(),
            ));
        };
        let pk = signer_info
            .public_key
            .as_ref()
            .filter(|k| k.type_url == "/cosmos.crypto.secp256k1.PubKey")
            .and_then(|k| cosmos_sdk_proto::cosmos::crypto::secp256k1::PubKey::decode(k.value.as_slice()).ok())
            .ok_or_else(|| Refusal("sdk", 8, "pubKey is not a secp256k1 key: invalid pubkey".into()))?;
        let signer = address_of(&pk.key, "cosmos").ok_or_else(|| Refusal("sdk", 8, "invalid pubkey".into()))?;
        for m in &body.messages {
            let s = message_signer(m)?;
            if s != signer {
                return Err(Refusal(
                    "sdk",
                    4,
                    format!("pubKey does not match signer address {s} with signer index: 0: invalid pubkey"),
                ));
            }
        }
        if body.timeout_height > 0 && next_height as u64 > body.timeout_height {
            return Err(Refusal(
                "sdk",
                30,
                format!(
                    "block height: {next_height}, timeout height: {}: tx timeout height",
                    body.timeout_height
                ),
            ));
        }
        let fee = info.fee.clone().unwrap_or_default();
        let paid = fee
            .amount
            .iter()
            .filter(|c| c.denom == self.g.bond_denom)
            .map(|c| amount("fee", &c.amount))
            .sum::<Refused<u128>>()?;
        let (num, den) = self.g.min_gas_price;
        let required = (u128::from(fee.gas_limit) * num).div_ceil(den);
        if paid < required && !simulate {
            return Err(Refusal(
                "sdk",
                13,
                format!(
                    "insufficient fees; got: {paid}{d} required: {required}{d}: insufficient fee",
                    d = self.g.bond_denom
                ),
            ));
        }
        let account = ledger
            .accounts
            .get(&signer)
            .ok_or_else(|| Refusal("sdk", 9, format!("account {signer} not found: unknown address")))?;
        let expected = sequences.get(&signer).copied().unwrap_or(account.sequence);
        if signer_info.sequence != expected {
            return Err(Refusal(
                "sdk",
                32,
                format!(
                    "account sequence mismatch, expected {expected}, got {}: incorrect account sequence",
                    signer_info.sequence
                ),
            ));
        }
        let doc = txpb::SignDoc {
            body_bytes: raw.body_bytes.clone(),
            auth_info_bytes: raw.auth_info_bytes.clone(),
            chain_id: self.g.chain_id.clone(),
            account_number: account.number,
        }
        .encode_to_vec();
        if !verify(&pk.key, &doc, signature) {
            return Err(Refusal(
                "sdk",
                4,
                format!(
                    "signature verification failed; please verify account number ({}), sequence ({}) and chain-id ({}): unauthorized",
                    account.number, signer_info.sequence, self.g.chain_id
                ),
            ));
        }
        if account.balance < paid {
            return Err(Refusal(
                "sdk",
                5,
                format!(
                    "{}{d} is smaller than {paid}{d}: insufficient funds",
                    account.balance,
                    d = self.g.bond_denom
                ),
            ));
        }
        Ok(Checked {
            signer,
            sequence: signer_info.sequence,
            fee: paid,
            gas_limit: fee.gas_limit,
            messages: body.messages,
        })
    }

    /// `Service/Simulate`: the transaction checked as CheckTx would (signature,
    /// sequence, fee, balance) and its messages run on a copy of the state with no gas
    /// limit (the SDK simulates with an infinite gas meter); the gas it used and its
    /// events. Nothing changes.
    fn simulate(&self, bytes: &[u8]) -> Refused<(u64, Vec<Event>)> {
        let c = self.check_mode(&self.ledger, &self.check_sequence, bytes, self.height + 1, true)?;
        let mut scratch = self.ledger.clone();
        let mut events = Vec::new();
        c.messages
            .iter()
            .try_for_each(|m| self.run_message(&mut scratch, m, &mut events))?;
        Ok((gas_used(bytes.len(), &c.messages), events))
    }

    /// The delivered transactions of block `height`, in block order.
    fn block_txs(&self, height: i64) -> Vec<&TxRecord> {
        self.order
            .iter()
            .filter_map(|h| self.txs.get(h))
            .filter(|t| t.height == height)
            .collect()
    }

    /// CometBFT's answer for a height above the head.
    fn height_error(&self, height: i64) -> Option<Value> {
        (height < 1 || height > self.height).then(|| {
            json!({"error": {"code": -32603, "message": "Internal error", "data": format!(
                "height {height} must be less than or equal to the current blockchain height {}", self.height
            )}})
        })
    }

    /// CometBFT `block`: the header and the transactions' bytes (served from the block
    /// store, whatever the tx indexer does).
    fn block_json(&self, height: i64) -> Value {
        if let Some(e) = self.height_error(height) {
            return e;
        }
        let txs: Vec<String> = self
            .block_txs(height)
            .iter()
            .map(|t| base64::engine::general_purpose::STANDARD.encode(&t.raw))
            .collect();
        let time = rfc3339(self.g.genesis_secs + height * self.g.block_secs);
        json!({"result": {"block": {
            "header": {"chain_id": self.g.chain_id, "height": height.to_string(), "time": time},
            "data": {"txs": txs}
        }}})
    }

    /// CometBFT `block_results`: each transaction's code, codespace, log and gas, in
    /// block order.
    fn block_results_json(&self, height: i64) -> Value {
        if let Some(e) = self.height_error(height) {
            return e;
        }
        let results: Vec<Value> = self
            .block_txs(height)
            .iter()
            .map(|t| {
                json!({"code": t.code, "codespace": t.codespace, "log": t.log,
                       "gas_wanted": t.gas_wanted.to_string(), "gas_used": t.gas_used.to_string()})
            })
            .collect();
        json!({"result": {"height": height.to_string(), "txs_results": results}})
    }

    /// CometBFT `broadcast_tx_sync`: CheckTx, then the mempool.
    fn broadcast(&mut self, bytes: Vec<u8>) -> Value {
        let hash = hash_of(&bytes);
        if self.txs.contains_key(&hash) || self.mempool.iter().any(|(h, _)| *h == hash) {
            return json!({"error": {"code": -32603, "message": "Internal error", "data": "tx already exists in cache"}});
        }
        match self.check(&self.ledger, &self.check_sequence, &bytes, self.height + 1) {
            Ok(c) => {
                self.check_sequence.insert(c.signer.clone(), c.sequence + 1);
                self.mempool.push((hash.clone(), bytes));
                json!({"result": {"code": 0, "data": "", "log": "[]", "codespace": "", "hash": hash}})
            }
            Err(Refusal(space, code, log)) => {
                json!({"result": {"code": code, "data": "", "log": log, "codespace": space, "hash": hash}})
            }
        }
    }

    /// Produces `blocks` blocks.
    fn produce(&mut self, blocks: u64) {
        for _ in 0..blocks {
            self.height += 1;
            self.time_secs += self.g.block_secs;
            self.accrue();
            let pending: Vec<(String, Vec<u8>)> = std::mem::take(&mut self.mempool);
            for (hash, bytes) in pending.into_iter().take(MAX_BLOCK_TXS) {
                self.deliver(hash, &bytes);
            }
            self.complete_unbondings();
            self.check_sequence.clear();
        }
    }

    /// BeginBlock: each delegation's share of this block's provisions.
    fn accrue(&mut self) {
        let l = &mut self.ledger;
        for ((del, val), stake) in &l.delegations {
            let commission = self
                .g
                .validators
                .iter()
                .find(|v| v.operator_address == *val)
                .map_or(0, |v| v.commission_dec);
            let gross = stake * self.rate_dec;
            let after_tax = gross / 10_000 * u128::from(10_000 - self.g.community_tax_bps);
            let net = after_tax / DEC * (DEC - commission) + after_tax % DEC * (DEC - commission) / DEC;
            *l.rewards_dec.entry((del.clone(), val.clone())).or_default() += net;
        }
    }

    fn complete_unbondings(&mut self) {
        let now = self.time_secs;
        let l = &mut self.ledger;
        for ((del, _), entries) in l.unbonding.iter_mut() {
            let (done, left): (Vec<_>, Vec<_>) = entries.drain(..).partition(|e| e.completion_secs <= now);
            *entries = left;
            let paid: u128 = done.iter().map(|e| e.balance).sum();
            if paid > 0 {
                l.accounts.entry(del.clone()).or_default().balance += paid;
            }
        }
        l.unbonding.retain(|_, e| !e.is_empty());
    }

    fn deliver(&mut self, hash: String, bytes: &[u8]) {
        let seqs = BTreeMap::new();
        let mut rec = TxRecord {
            hash: hash.clone(),
            height: self.height,
            time_secs: self.time_secs,
            code: 0,
            codespace: String::new(),
            log: String::new(),
            gas_wanted: 0,
            gas_used: 0,
            events: Vec::new(),
            sender: String::new(),
            raw: bytes.to_vec(),
        };
        let c = match self.check(&self.ledger, &seqs, bytes, self.height) {
            Ok(c) => c,
            // refused at delivery (another transaction took the sequence): not in the block
            Err(_) => return,
        };
        rec.sender = c.signer.clone();
        rec.gas_wanted = c.gas_limit;
        rec.gas_used = gas_used(bytes.len(), &c.messages);
        {
            let a = self.ledger.accounts.entry(c.signer.clone()).or_default();
            a.balance -= c.fee;
            a.sequence += 1;
        }
        rec.events.push(event(
            "tx",
            vec![
                attr("fee", format!("{}{}", c.fee, self.g.bond_denom)),
                attr("fee_payer", c.signer.clone()),
            ],
        ));
        rec.events.push(event(
            "tx",
            vec![attr("acc_seq", format!("{}/{}", c.signer, c.sequence))],
        ));
        let outcome = if rec.gas_used > c.gas_limit {
            Err(Refusal(
                "sdk",
                11,
                format!(
                    "out of gas in location: txSize; gasWanted: {}, gasUsed: {}: out of gas",
                    c.gas_limit, rec.gas_used
                ),
            ))
        } else {
            let mut scratch = self.ledger.clone();
            let mut events = Vec::new();
            let r = c
                .messages
                .iter()
                .try_for_each(|m| self.run_message(&mut scratch, m, &mut events));
            r.map(|()| (scratch, events))
        };
        match outcome {
            Ok((state, events)) => {
                self.ledger = state;
                rec.events.extend(events);
            }
            Err(Refusal(space, code, log)) => {
                rec.code = code;
                rec.codespace = space.into();
                rec.log = format!("failed to execute message; message index: 0: {log}");
            }
        }
        self.order.push(hash.clone());
        self.txs.insert(hash, rec);
    }

    fn validator(&self, v: &str) -> Refused<()> {
        if self.g.validators.iter().any(|x| x.operator_address == v) {
            Ok(())
        } else {
            Err(Refusal("staking", 3, "validator does not exist".into()))
        }
    }

    fn bond_amount(&self, c: Option<&Coin>) -> Refused<u128> {
        let c = c.ok_or_else(|| Refusal("sdk", 10, "invalid delegation amount: invalid coins".into()))?;
        if c.denom != self.g.bond_denom {
            return Err(Refusal(
                "sdk",
                18,
                format!(
                    "invalid coin denomination: got {}, expected {}: invalid request",
                    c.denom, self.g.bond_denom
                ),
            ));
        }
        let a = amount("amount", &c.amount)?;
        if a == 0 {
            return Err(Refusal("sdk", 10, "invalid delegation amount: invalid coins".into()));
        }
        Ok(a)
    }

    /// x/distribution `withdrawDelegationRewards`: pays the truncated reward, the
    /// remainder to the community pool.
    fn withdraw_rewards(&self, l: &mut Ledger, del: &str, val: &str, events: &mut Vec<Event>) {
        let dec = l.rewards_dec.remove(&(del.to_string(), val.to_string())).unwrap_or(0);
        let paid = dec / DEC;
        l.community_pool_dec += dec % DEC;
        if paid > 0 {
            l.accounts.entry(del.to_string()).or_default().balance += paid;
        }
        let shown = if paid > 0 {
            format!("{paid}{}", self.g.bond_denom)
        } else {
            String::new()
        };
        events.push(event(
            "withdraw_rewards",
            vec![attr("amount", shown), attr("validator", val), attr("delegator", del)],
        ));
    }

    fn run_message(&self, l: &mut Ledger, m: &Any, events: &mut Vec<Event>) -> Refused<()> {
        let bad =
            |e: cosmos_sdk_proto::prost::DecodeError| Refusal("sdk", 2, format!("{}: {e}: tx parse error", m.type_url));
        let signer = message_signer(m)?;
        events.push(event(
            "message",
            vec![attr("action", m.type_url.clone()), attr("sender", signer.clone())],
        ));
        match m.type_url.as_str() {
            "/cosmos.staking.v1beta1.MsgDelegate" => {
                let msg = staking::MsgDelegate::decode(m.value.as_slice()).map_err(bad)?;
                self.validator(&msg.validator_address)?;
                let a = self.bond_amount(msg.amount.as_ref())?;
                let acct = l.accounts.entry(signer.clone()).or_default();
                if acct.balance < a {
                    return Err(Refusal(
                        "sdk",
                        5,
                        format!(
                            "spendable balance {}{d} is smaller than {a}{d}: insufficient funds",
                            acct.balance,
                            d = self.g.bond_denom
                        ),
                    ));
                }
                self.withdraw_rewards(l, &signer, &msg.validator_address, events);
                l.accounts.entry(signer.clone()).or_default().balance -= a;
                *l.delegations
                    .entry((signer.clone(), msg.validator_address.clone()))
                    .or_default() += a;
                *l.tokens.entry(msg.validator_address.clone()).or_default() += a;
                events.push(event(
                    "delegate",
                    vec![
                        attr("validator", msg.validator_address),
                        attr("delegator", signer),
                        attr("amount", format!("{a}{}", self.g.bond_denom)),
                    ],
                ));
                Ok(())
            }
            "/cosmos.staking.v1beta1.MsgUndelegate" => {
                let msg = staking::MsgUndelegate::decode(m.value.as_slice()).map_err(bad)?;
                self.validator(&msg.validator_address)?;
                let a = self.bond_amount(msg.amount.as_ref())?;
                let key = (signer.clone(), msg.validator_address.clone());
                let have = l.delegations.get(&key).copied().unwrap_or(0);
                if have == 0 {
                    return Err(Refusal(
                        "staking",
                        19,
                        "no delegation for (address, validator) tuple".into(),
                    ));
                }
                if a > have {
                    return Err(Refusal("sdk", 18, "invalid shares amount: invalid request".into()));
                }
                if l.unbonding.get(&key).map_or(0, Vec::len) >= self.g.max_entries as usize {
                    return Err(Refusal(
                        "staking",
                        27,
                        "too many unbonding delegation entries for (delegator, validator) tuple".into(),
                    ));
                }
                self.withdraw_rewards(l, &signer, &msg.validator_address, events);
                l.delegations.insert(key.clone(), have - a);
                l.delegations.retain(|_, v| *v > 0);
                *l.tokens.entry(msg.validator_address.clone()).or_default() -= a;
                let completion = self.time_secs + self.g.unbonding_time_secs;
                l.unbonding.entry(key).or_default().push(UnbondingEntry {
                    creation_height: self.height,
                    completion_secs: completion,
                    initial: a,
                    balance: a,
                });
                events.push(event(
                    "unbond",
                    vec![
                        attr("validator", msg.validator_address),
                        attr("delegator", signer),
                        attr("amount", format!("{a}{}", self.g.bond_denom)),
                        attr("completion_time", rfc3339(completion)),
                    ],
                ));
                Ok(())
            }
            "/cosmos.staking.v1beta1.MsgBeginRedelegate" => {
                let msg = staking::MsgBeginRedelegate::decode(m.value.as_slice()).map_err(bad)?;
                self.validator(&msg.validator_src_address)?;
                self.validator(&msg.validator_dst_address)?;
                if msg.validator_src_address == msg.validator_dst_address {
                    return Err(Refusal("staking", 20, "cannot redelegate to the same validator".into()));
                }
                let a = self.bond_amount(msg.amount.as_ref())?;
                let src = (signer.clone(), msg.validator_src_address.clone());
                let have = l.delegations.get(&src).copied().unwrap_or(0);
                if a > have {
                    return Err(Refusal("sdk", 18, "invalid shares amount: invalid request".into()));
                }
                self.withdraw_rewards(l, &signer, &msg.validator_src_address, events);
                self.withdraw_rewards(l, &signer, &msg.validator_dst_address, events);
                l.delegations.insert(src, have - a);
                l.delegations.retain(|_, v| *v > 0);
                *l.delegations
                    .entry((signer.clone(), msg.validator_dst_address.clone()))
                    .or_default() += a;
                *l.tokens.entry(msg.validator_src_address.clone()).or_default() -= a;
                *l.tokens.entry(msg.validator_dst_address.clone()).or_default() += a;
                events.push(event(
                    "redelegate",
                    vec![
                        attr("source_validator", msg.validator_src_address),
                        attr("destination_validator", msg.validator_dst_address),
                        attr("amount", format!("{a}{}", self.g.bond_denom)),
                    ],
                ));
                Ok(())
            }
            "/cosmos.distribution.v1beta1.MsgWithdrawDelegatorReward" => {
                let msg = distr::MsgWithdrawDelegatorReward::decode(m.value.as_slice()).map_err(bad)?;
                self.validator(&msg.validator_address)?;
                if !l
                    .delegations
                    .contains_key(&(signer.clone(), msg.validator_address.clone()))
                {
                    return Err(Refusal("distribution", 9, "no delegation distribution info".into()));
                }
                self.withdraw_rewards(l, &signer, &msg.validator_address, events);
                Ok(())
            }
            other => Err(Refusal(
                "sdk",
                6,
                format!("unrecognized message type: {other}: unknown request"),
            )),
        }
    }

    fn response(&self, r: &TxRecord) -> TxResponse {
        TxResponse {
            height: r.height,
            txhash: r.hash.clone(),
            codespace: r.codespace.clone(),
            code: r.code,
            raw_log: r.log.clone(),
            gas_wanted: r.gas_wanted as i64,
            gas_used: r.gas_used as i64,
            timestamp: rfc3339(r.time_secs),
            events: r.events.clone(),
            ..Default::default()
        }
    }
}

/// The signer a message names (its delegator).
fn message_signer(m: &Any) -> Refused<String> {
    let bad =
        |e: cosmos_sdk_proto::prost::DecodeError| Refusal("sdk", 2, format!("{}: {e}: tx parse error", m.type_url));
    Ok(match m.type_url.as_str() {
        "/cosmos.staking.v1beta1.MsgDelegate" => {
            staking::MsgDelegate::decode(m.value.as_slice())
                .map_err(bad)?
                .delegator_address
        }
        "/cosmos.staking.v1beta1.MsgUndelegate" => {
            staking::MsgUndelegate::decode(m.value.as_slice())
                .map_err(bad)?
                .delegator_address
        }
        "/cosmos.staking.v1beta1.MsgBeginRedelegate" => {
            staking::MsgBeginRedelegate::decode(m.value.as_slice())
                .map_err(bad)?
                .delegator_address
        }
        "/cosmos.distribution.v1beta1.MsgWithdrawDelegatorReward" => {
            distr::MsgWithdrawDelegatorReward::decode(m.value.as_slice())
                .map_err(bad)?
                .delegator_address
        }
        other => {
            return Err(Refusal(
                "sdk",
                6,
                format!("unrecognized message type: {other}: unknown request"),
            ))
        }
    })
}

/// ECDSA secp256k1 over SHA-256 of `msg`, 64-byte r‖s with low S (the SDK refuses high S).
fn verify(key: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    use k256::ecdsa::signature::Verifier;
    let (Ok(vk), Ok(s)) = (
        k256::ecdsa::VerifyingKey::from_sec1_bytes(key),
        k256::ecdsa::Signature::from_slice(sig),
    ) else {
        return false;
    };
    s.normalize_s().is_none() && vk.verify(msg, &s).is_ok()
}

type Shared = Arc<Mutex<Chain>>;

fn lock(chain: &Shared) -> std::sync::MutexGuard<'_, Chain> {
    chain.lock().unwrap_or_else(|p| p.into_inner())
}

/// The gRPC side of the chain.
#[derive(Debug, Clone)]
pub struct Node {
    chain: Shared,
}

fn page_of<T: Clone>(all: &[T]) -> (Vec<T>, Option<PageResponse>) {
    (
        all.to_vec(),
        Some(PageResponse {
            next_key: Vec::new(),
            total: all.len() as u64,
        }),
    )
}

impl Node {
    fn staking_params(&self, _: staking::QueryParamsRequest) -> Result<staking::QueryParamsResponse, Status> {
        let c = lock(&self.chain);
        Ok(staking::QueryParamsResponse {
            params: Some(staking::Params {
                unbonding_time: Some(cosmos_sdk_proto::tendermint::google::protobuf::Duration {
                    seconds: c.g.unbonding_time_secs,
                    nanos: 0,
                }),
                max_validators: 180,
                max_entries: c.g.max_entries,
                historical_entries: 10_000,
                bond_denom: c.g.bond_denom.clone(),
                min_commission_rate: (DEC / 20).to_string(),
            }),
        })
    }

    fn staking_validators(
        &self,
        r: staking::QueryValidatorsRequest,
    ) -> Result<staking::QueryValidatorsResponse, Status> {
        if !r.status.is_empty() && r.status != "BOND_STATUS_BONDED" {
            return Ok(staking::QueryValidatorsResponse::default());
        }
        let c = lock(&self.chain);
        let all: Vec<staking::Validator> = c
            .g
            .validators
            .iter()
            .map(|v| staking::Validator {
                operator_address: v.operator_address.clone(),
                status: staking::BondStatus::Bonded as i32,
                tokens: c
                    .ledger
                    .tokens
                    .get(&v.operator_address)
                    .copied()
                    .unwrap_or(0)
                    .to_string(),
                delegator_shares: (c.ledger.tokens.get(&v.operator_address).copied().unwrap_or(0) * DEC).to_string(),
                description: Some(staking::Description {
                    moniker: v.moniker.clone(),
                    ..Default::default()
                }),
                commission: Some(staking::Commission {
                    commission_rates: Some(staking::CommissionRates {
                        rate: v.commission_dec.to_string(),
                        max_rate: DEC.to_string(),
                        max_change_rate: (DEC / 100).to_string(),
                    }),
                    update_time: Some(proto_time(c.g.genesis_secs)),
                }),
                min_self_delegation: "1".into(),
                ..Default::default()
            })
            .collect();
        let (validators, pagination) = page_of(&all);
        Ok(staking::QueryValidatorsResponse { validators, pagination })
    }

    fn delegation_of(c: &Chain, del: &str, val: &str, a: u128) -> staking::DelegationResponse {
        staking::DelegationResponse {
            delegation: Some(staking::Delegation {
                delegator_address: del.into(),
                validator_address: val.into(),
                shares: (a * DEC).to_string(),
            }),
            balance: Some(Coin {
                denom: c.g.bond_denom.clone(),
                amount: a.to_string(),
            }),
        }
    }

    fn staking_delegation(
        &self,
        r: staking::QueryDelegationRequest,
    ) -> Result<staking::QueryDelegationResponse, Status> {
        let c = lock(&self.chain);
        let a = c
            .ledger
            .delegations
            .get(&(r.delegator_addr.clone(), r.validator_addr.clone()))
            .copied()
            .ok_or_else(|| {
                Status::not_found(format!(
                    "delegation with delegator {} not found for validator {}",
                    r.delegator_addr, r.validator_addr
                ))
            })?;
        Ok(staking::QueryDelegationResponse {
            delegation_response: Some(Self::delegation_of(&c, &r.delegator_addr, &r.validator_addr, a)),
        })
    }

    fn staking_delegator_delegations(
        &self,
        r: staking::QueryDelegatorDelegationsRequest,
    ) -> Result<staking::QueryDelegatorDelegationsResponse, Status> {
        let c = lock(&self.chain);
        let all: Vec<_> = c
            .ledger
            .delegations
            .iter()
            .filter(|((d, _), _)| *d == r.delegator_addr)
            .map(|((d, v), a)| Self::delegation_of(&c, d, v, *a))
            .collect();
        let (delegation_responses, pagination) = page_of(&all);
        Ok(staking::QueryDelegatorDelegationsResponse {
            delegation_responses,
            pagination,
        })
    }

    fn staking_delegator_unbonding_delegations(
        &self,
        r: staking::QueryDelegatorUnbondingDelegationsRequest,
    ) -> Result<staking::QueryDelegatorUnbondingDelegationsResponse, Status> {
        let c = lock(&self.chain);
        let all: Vec<_> = c
            .ledger
            .unbonding
            .iter()
            .filter(|((d, _), _)| *d == r.delegator_addr)
            .map(|((d, v), entries)| staking::UnbondingDelegation {
                delegator_address: d.clone(),
                validator_address: v.clone(),
                entries: entries
                    .iter()
                    .map(|e| staking::UnbondingDelegationEntry {
                        creation_height: e.creation_height,
                        completion_time: Some(proto_time(e.completion_secs)),
                        initial_balance: e.initial.to_string(),
                        balance: e.balance.to_string(),
                        ..Default::default()
                    })
                    .collect(),
            })
            .collect();
        let (unbonding_responses, pagination) = page_of(&all);
        Ok(staking::QueryDelegatorUnbondingDelegationsResponse {
            unbonding_responses,
            pagination,
        })
    }

    fn dec_coins(c: &Chain, dec: u128) -> Vec<DecCoin> {
        if dec == 0 {
            return Vec::new();
        }
        vec![DecCoin {
            denom: c.g.bond_denom.clone(),
            amount: dec.to_string(),
        }]
    }

    fn distr_delegation_rewards(
        &self,
        r: distr::QueryDelegationRewardsRequest,
    ) -> Result<distr::QueryDelegationRewardsResponse, Status> {
        let c = lock(&self.chain);
        let key = (r.delegator_address.clone(), r.validator_address.clone());
        if !c.ledger.delegations.contains_key(&key) {
            return Err(Status::not_found("delegation does not exist"));
        }
        let dec = c.ledger.rewards_dec.get(&key).copied().unwrap_or(0);
        Ok(distr::QueryDelegationRewardsResponse {
            rewards: Self::dec_coins(&c, dec),
        })
    }

    fn distr_delegation_total_rewards(
        &self,
        r: distr::QueryDelegationTotalRewardsRequest,
    ) -> Result<distr::QueryDelegationTotalRewardsResponse, Status> {
        let c = lock(&self.chain);
        let mut total = 0u128;
        let rewards = c
            .ledger
            .delegations
            .keys()
            .filter(|(d, _)| *d == r.delegator_address)
            .map(|k| {
                let dec = c.ledger.rewards_dec.get(k).copied().unwrap_or(0);
                total += dec;
                distr::DelegationDelegatorReward {
                    validator_address: k.1.clone(),
                    reward: Self::dec_coins(&c, dec),
                }
            })
            .collect();
        Ok(distr::QueryDelegationTotalRewardsResponse {
            rewards,
            total: Self::dec_coins(&c, total),
        })
    }

    fn auth_account(&self, r: auth::QueryAccountRequest) -> Result<auth::QueryAccountResponse, Status> {
        let c = lock(&self.chain);
        let a = c
            .ledger
            .accounts
            .get(&r.address)
            .ok_or_else(|| Status::not_found(format!("account {} not found", r.address)))?;
        let base = auth::BaseAccount {
            address: r.address.clone(),
            pub_key: None,
            account_number: a.number,
            sequence: a.sequence,
        };
        Ok(auth::QueryAccountResponse {
            account: Some(Any {
                type_url: "/cosmos.auth.v1beta1.BaseAccount".into(),
                value: base.encode_to_vec(),
            }),
        })
    }

    fn bank_balance(&self, r: bank::QueryBalanceRequest) -> Result<bank::QueryBalanceResponse, Status> {
        let c = lock(&self.chain);
        let amount = if r.denom == c.g.bond_denom {
            c.ledger.accounts.get(&r.address).map_or(0, |a| a.balance)
        } else {
            0
        };
        Ok(bank::QueryBalanceResponse {
            balance: Some(Coin {
                denom: r.denom,
                amount: amount.to_string(),
            }),
        })
    }

    fn txpb_simulate(&self, r: txpb::SimulateRequest) -> Result<txpb::SimulateResponse, Status> {
        if r.tx_bytes.is_empty() {
            return Err(Status::invalid_argument(
                "empty txBytes is not allowed (the tx field is deprecated)",
            ));
        }
        let bytes = r.tx_bytes;
        let c = lock(&self.chain);
        match c.simulate(&bytes) {
            Ok((gas, events)) => Ok(txpb::SimulateResponse {
                gas_info: Some(cosmos_sdk_proto::cosmos::base::abci::v1beta1::GasInfo {
                    gas_wanted: 0,
                    gas_used: gas,
                }),
                result: Some(cosmos_sdk_proto::cosmos::base::abci::v1beta1::Result {
                    events,
                    ..Default::default()
                }),
            }),
            // baseapp answers a failed simulation with the ABCI error's log
            Err(Refusal(space, code, log)) => Err(Status::unknown(format!("{log} [codespace {space}, code {code}]"))),
        }
    }

    fn txpb_get_tx(&self, r: txpb::GetTxRequest) -> Result<txpb::GetTxResponse, Status> {
        let c = lock(&self.chain);
        let t = c
            .txs
            .get(&r.hash.to_uppercase())
            .filter(|t| t.height <= c.height - c.index_lag)
            .ok_or_else(|| Status::not_found(format!("tx not found: {}", r.hash)))?;
        Ok(txpb::GetTxResponse {
            tx: None,
            tx_response: Some(c.response(t)),
        })
    }

    /// `query`: `message.sender='…'` and `tx.height>N` / `tx.height>=N` joined by `AND`.
    fn txpb_get_txs_event(&self, r: txpb::GetTxsEventRequest) -> Result<txpb::GetTxsEventResponse, Status> {
        let mut sender = None;
        let mut min_height = i64::MIN;
        for cond in r.query.split(" AND ").map(str::trim) {
            if let Some(v) = cond.strip_prefix("message.sender=") {
                sender = Some(v.trim_matches('\'').to_string());
            } else if let Some(v) = cond.strip_prefix("tx.height>=") {
                min_height = v
                    .parse()
                    .map_err(|_| Status::invalid_argument(format!("bad height in {cond:?}")))?;
            } else if let Some(v) = cond.strip_prefix("tx.height>") {
                let h: i64 = v
                    .parse()
                    .map_err(|_| Status::invalid_argument(format!("bad height in {cond:?}")))?;
                min_height = h + 1;
            } else {
                return Err(Status::invalid_argument(format!(
                    "query condition {cond:?} is not supported here"
                )));
            }
        }
        let Some(sender) = sender else {
            return Err(Status::invalid_argument("query must name message.sender"));
        };
        let limit = r.limit.clamp(1, 100) as usize;
        let page = r.page.max(1) as usize;
        let c = lock(&self.chain);
        let mut all: Vec<&TxRecord> = c
            .order
            .iter()
            .filter_map(|h| c.txs.get(h))
            .filter(|t| t.sender == sender && t.height >= min_height)
            .collect();
        if r.order_by == txpb::OrderBy::Desc as i32 {
            all.reverse();
        }
        let tx_responses: Vec<TxResponse> = all
            .iter()
            .skip((page - 1) * limit)
            .take(limit)
            .map(|t| c.response(t))
            .collect();
        #[allow(deprecated)]
        let reply = txpb::GetTxsEventResponse {
            txs: Vec::new(),
            tx_responses,
            pagination: None,
            total: all.len() as u64,
        };
        Ok(reply)
    }

    fn cmt_get_latest_block(&self, _: cmt::GetLatestBlockRequest) -> Result<cmt::GetLatestBlockResponse, Status> {
        let c = lock(&self.chain);
        Ok(cmt::GetLatestBlockResponse {
            block_id: None,
            block: None,
            sdk_block: Some(cmt::Block {
                header: Some(cmt::Header {
                    chain_id: c.g.chain_id.clone(),
                    height: c.height,
                    time: Some(proto_time(c.time_secs)),
                    ..Default::default()
                }),
                ..Default::default()
            }),
        })
    }
}

async fn json_rpc(State(chain): State<Shared>, Json(req): Json<Value>) -> Json<Value> {
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let reply = match req["method"].as_str() {
        Some("broadcast_tx_sync") => match req["params"]["tx"]
            .as_str()
            .and_then(|t| base64::engine::general_purpose::STANDARD.decode(t).ok())
        {
            Some(bytes) => lock(&chain).broadcast(bytes),
            None => json!({"error": {"code": -32602, "message": "Invalid params", "data": "tx: not base64"}}),
        },
        Some(m @ ("block" | "block_results")) => {
            let c = lock(&chain);
            let height = req["params"]["height"]
                .as_str()
                .and_then(|h| h.parse::<i64>().ok())
                .unwrap_or(c.height);
            if m == "block" {
                c.block_json(height)
            } else {
                c.block_results_json(height)
            }
        }
        Some("status") => {
            let c = lock(&chain);
            json!({"result": {"node_info": {"network": c.g.chain_id}, "sync_info": {"latest_block_height": c.height.to_string(), "latest_block_time": rfc3339(c.time_secs), "catching_up": false}}})
        }
        other => json!({"error": {"code": -32601, "message": "Method not found", "data": format!("{other:?}")}}),
    };
    let mut out = json!({"jsonrpc": "2.0", "id": id});
    for (k, v) in reply.as_object().into_iter().flatten() {
        out[k] = v.clone();
    }
    Json(out)
}

/// A running local Cosmos chain; stopped when dropped.
#[derive(Debug)]
pub struct LocalCosmos {
    /// The gRPC endpoint, `http://127.0.0.1:<port>`.
    pub grpc_url: String,
    /// The CometBFT RPC endpoint, `http://127.0.0.1:<port>`.
    pub rpc_url: String,
    chain: Shared,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for LocalCosmos {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

/// Starts the chain: gRPC on 127.0.0.1:`grpc_port`, CometBFT RPC on `rpc_port` (0 = any
/// free port).
///
/// # Errors
/// A malformed genesis or a port that cannot be bound.
pub async fn start(genesis: CosmosGenesis, grpc_port: u16, rpc_port: u16) -> Result<LocalCosmos> {
    let tick_ms = genesis.tick_ms;
    let chain: Shared = Arc::new(Mutex::new(Chain::new(genesis)?));
    let app = Router::new().route("/", post(json_rpc)).with_state(chain.clone());
    let ticking = chain.clone();
    let (rpc_addr, rpc) = crate::serve(app, rpc_port, tick_ms, move || lock(&ticking).produce(1))
        .await
        .context("the local CometBFT RPC")?;
    let listener = tokio::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], grpc_port)))
        .await
        .with_context(|| format!("binding 127.0.0.1:{grpc_port}"))?;
    let grpc_addr = listener.local_addr()?;
    let node = Node { chain: chain.clone() };
    let router = tonic_cosmos::transport::Server::builder()
        .add_service(staking::query_server::QueryServer::new(node.clone()))
        .add_service(distr::query_server::QueryServer::new(node.clone()))
        .add_service(auth::query_server::QueryServer::new(node.clone()))
        .add_service(bank::query_server::QueryServer::new(node.clone()))
        .add_service(txpb::service_server::ServiceServer::new(node.clone()))
        .add_service(cmt::service_server::ServiceServer::new(node));
    let grpc = tokio::spawn(async move {
        let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
        let _ = router.serve_with_incoming(incoming).await;
    });
    Ok(LocalCosmos {
        grpc_url: format!("http://{grpc_addr}"),
        rpc_url: format!("http://{rpc_addr}"),
        chain,
        tasks: vec![rpc, grpc],
    })
}

impl LocalCosmos {
    /// Makes the tx indexer lag `blocks` blocks behind the head (0: in step): `GetTx`
    /// answers NotFound for transactions of the last `blocks` blocks.
    pub fn set_index_lag(&self, blocks: i64) {
        lock(&self.chain).index_lag = blocks.max(0);
    }

    /// Produces `blocks` blocks.
    pub fn produce(&self, blocks: u64) {
        lock(&self.chain).produce(blocks);
    }

    /// Produces blocks until `secs` of chain time have passed.
    pub fn advance_secs(&self, secs: i64) {
        let mut c = lock(&self.chain);
        let blocks = (secs.max(0) + c.g.block_secs - 1) / c.g.block_secs;
        c.produce(blocks as u64);
    }

    /// A delivered transaction's (gas wanted, gas used), by hash (upper-case hex).
    pub fn gas_of(&self, hash: &str) -> Option<(u64, u64)> {
        lock(&self.chain)
            .txs
            .get(&hash.to_uppercase())
            .map(|t| (t.gas_wanted, t.gas_used))
    }

    /// Height of the latest block.
    pub fn height(&self) -> i64 {
        lock(&self.chain).height
    }

    /// An account's balance, base units.
    pub fn balance(&self, address: &str) -> u128 {
        lock(&self.chain).ledger.accounts.get(address).map_or(0, |a| a.balance)
    }

    /// An account's committed sequence.
    pub fn sequence(&self, address: &str) -> u64 {
        lock(&self.chain).ledger.accounts.get(address).map_or(0, |a| a.sequence)
    }

    /// A delegation, base units.
    pub fn delegation(&self, delegator: &str, validator: &str) -> u128 {
        lock(&self.chain)
            .ledger
            .delegations
            .get(&(delegator.to_string(), validator.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// Unbonding entries of a pair: (balance, completion unix seconds).
    pub fn unbonding(&self, delegator: &str, validator: &str) -> Vec<(u128, i64)> {
        lock(&self.chain)
            .ledger
            .unbonding
            .get(&(delegator.to_string(), validator.to_string()))
            .map(|e| e.iter().map(|e| (e.balance, e.completion_secs)).collect())
            .unwrap_or_default()
    }

    /// The pending reward of a pair, truncated to base units.
    pub fn pending_reward(&self, delegator: &str, validator: &str) -> u128 {
        lock(&self.chain)
            .ledger
            .rewards_dec
            .get(&(delegator.to_string(), validator.to_string()))
            .copied()
            .unwrap_or(0)
            / DEC
    }

    /// Transactions waiting in the mempool.
    pub fn mempool_len(&self) -> usize {
        lock(&self.chain).mempool.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_dec18_parses_fractions() {
        assert_eq!(dec18("0.1").unwrap(), DEC / 10);
        assert_eq!(dec18("1").unwrap(), DEC);
        assert!(dec18("-0.1").is_err() && dec18("0.1234567890123456789").is_err());
    }

    #[test]
    fn success_bundled_validators_parse() {
        let v = validators_from_csv(
            include_str!("../../../../data/cosmos/validators_cosmoshub3_height1685677.csv"),
            200,
        )
        .unwrap();
        assert_eq!(v.len(), 125);
        assert_eq!(v.iter().map(|v| v.tokens).sum::<u128>(), 183_406_308_589_481);
    }
}
