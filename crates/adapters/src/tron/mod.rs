//! TRON staking (Stake 2.0) over java-tron's HTTP API (`/wallet/*`, `/walletsolidity/*`)
//! and TronGrid's account history (`/v1/accounts/{address}/transactions`), with
//! transactions built and signed here (protobuf `raw_data`, `txID = sha256(raw_data)`,
//! secp256k1), so the id is known before anything is sent.
//!
//! ```text
//!  delegate    [FreezeBalanceV2 (BANDWIDTH) of what is not frozen yet] + VoteWitness with
//!              the account's complete vote list plus `amount` TRX for the witness
//!              (a vote replaces every earlier vote; ≤ 30 witnesses)
//!  undelegate  VoteWitness without `amount` TRX for the witness + UnfreezeBalanceV2:
//!              the TRX unfreezes for getUnfreezeDelayDays (14) days, at most 32 pending;
//!              unfreezes are not per witness, so they are reported under the pooled
//!              pseudo-validator `unfreezing` (ChainAdapter::pooled_unbonding)
//!  withdraw    WithdrawExpireUnfreeze: every expired unfreeze at once
//!  claim       WithdrawBalance: every witness's voting reward at once, ≤ once per
//!              getWitnessAllowanceFrozenTime (1 day)
//!  rewards     TronGrid history: our confirmed WithdrawBalance transactions, each one's
//!              withdraw_amount from /walletsolidity/gettransactioninfobyid
//!  status      /walletsolidity/gettransactioninfobyid (solid: confirmed) →
//!              /wallet/gettransactioninfobyid or gettransactionfrompending (pending) → unknown:
//!              expired once the head block is past the expiration, else not found
//! ```
//!
//! An operation of two contracts (freeze + vote, vote + unfreeze) is one journal entry
//! whose payload holds both signed transactions; its id is the last one's. A retry sends
//! whichever has not landed, and a re-signed attempt starts from the account's state:
//! TRX frozen but not voted (a freeze that landed without its vote) is voted before
//! anything new is frozen, and an undelegation whose vote already landed only unfreezes.
//! Operations of one account must run one at a time, since each vote carries the whole
//! list read when it was signed.
//!
//! Sources: java-tron `FreezeBalanceV2Actuator`, `VoteWitnessActuator`,
//! `UnfreezeBalanceV2Actuator` (`UNFREEZE_MAX_TIMES = 32`; an unfreeze also sweeps expired
//! unfreezes into the balance), `WithdrawExpireUnfreezeActuator`,
//! `WithdrawBalanceActuator`; developers.tron.network "Stake 2.0" and the HTTP API
//! reference. Amounts are sun (1 TRX = 10^6 sun); votes are whole TRX.

pub mod wire;

use std::collections::BTreeMap;

use async_trait::async_trait;
use k256::ecdsa::SigningKey;
use prost::Message;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use softstake_core::plan::ALL_VALIDATORS;
use softstake_core::{Amount, Timestamp};

use crate::error::{AdapterError, Result};
use crate::secp256k1::Secp256k1Key;
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    ChainAdapter, EpochInfo, LiquidityModel, Position, RewardKind, RewardRecord, RewardsPage, SignedTx, StakeState,
    TxStatus, ValidatorCandidate,
};
use wire::Address;

const CHAIN: &str = "tron";
/// 1 TRX in sun; one vote is one TRX of TRON Power.
pub const SUN_PER_TRX: u128 = 1_000_000;
/// The pseudo-validator under which unfreezing TRX is reported (unfreezes are not per
/// witness).
pub const UNFREEZING: &str = "unfreezing";
/// The pseudo-validator under which TRX frozen but not voted is reported (a freeze that
/// landed without its vote); the next delegation votes it first.
pub const UNVOTED: &str = "unvoted";
/// Most witnesses one vote list may name (java-tron `MAX_VOTE_NUMBER`).
pub const MAX_VOTE_WITNESSES: usize = 30;
/// Most unfreezes pending at once (java-tron `UnfreezeBalanceV2Actuator.UNFREEZE_MAX_TIMES`).
pub const UNFREEZE_MAX_TIMES: usize = 32;
/// Witnesses whose voters share the voting reward (the top 127 by votes).
pub const VOTING_REWARD_WITNESSES: usize = 127;
/// Kept in the account for bandwidth burned by our own transactions, sun (1 TRX).
const FEE_RESERVE_SUN: u128 = SUN_PER_TRX;
/// Most history rows read per call (TronGrid's page limit).
const HISTORY_PAGE: usize = 200;
/// Most pages read per `rewards_since` (bounds the loop; the cursor continues).
const MAX_HISTORY_PAGES: usize = 50;

/// Settings of the TRON adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TronConfig {
    /// Full node HTTP API with TronGrid's `/v1` routes (`https://nile.trongrid.io`,
    /// `https://api.trongrid.io`, a local chain).
    pub api_url: String,
    /// TronGrid API key, sent as `TRON-PRO-API-KEY` (TronGrid rate-limits without one).
    pub api_key: Option<String>,
    /// Seconds a signed transaction stays valid after its reference block (TronWeb's
    /// default 60; java-tron allows up to 24 h).
    pub expiration_secs: u64,
    /// Largest number of operations sent per epoch (maintenance period).
    pub max_operations_per_epoch: u32,
    /// The account to act for (`T…`) when the key is another key of its owner
    /// permission (an account whose owner permission was changed to a custody key);
    /// `None`: the key's own account.
    pub owner_address: Option<String>,
}

/// The chain parameters the adapter needs (`/wallet/getchainparameters` holds many more).
#[derive(Debug, Clone, Copy)]
struct ChainParams {
    maintenance_interval_ms: u64,
    unfreeze_delay_days: u64,
    withdraw_cadence_days: u64,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct AccountView {
    #[serde(default)]
    balance: i64,
    #[serde(default, rename = "frozenV2")]
    frozen_v2: Vec<FrozenV2>,
    #[serde(default, rename = "unfrozenV2")]
    unfrozen_v2: Vec<UnfrozenV2>,
    #[serde(default)]
    votes: Vec<VoteView>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct FrozenV2 {
    /// Absent for BANDWIDTH (the enum's default is not printed).
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    amount: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct UnfrozenV2 {
    #[serde(default)]
    unfreeze_amount: i64,
    #[serde(default)]
    unfreeze_expire_time: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct VoteView {
    vote_address: String,
    vote_count: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct BlockView {
    #[serde(rename = "blockID")]
    block_id: String,
    block_header: BlockHeader,
}

#[derive(Debug, Clone, Deserialize)]
struct BlockHeader {
    raw_data: BlockRaw,
}

#[derive(Debug, Clone, Deserialize)]
struct BlockRaw {
    #[serde(default)]
    number: i64,
    #[serde(default)]
    timestamp: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct WitnessView {
    address: String,
    #[serde(default, rename = "voteCount")]
    vote_count: i64,
    #[serde(default)]
    url: String,
    #[serde(default, rename = "totalProduced")]
    total_produced: i64,
    #[serde(default, rename = "totalMissed")]
    total_missed: i64,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct TxInfo {
    #[serde(default)]
    id: Option<String>,
    #[serde(default, rename = "blockNumber")]
    block_number: i64,
    #[serde(default, rename = "blockTimeStamp")]
    block_time_stamp: i64,
    #[serde(default)]
    result: Option<String>,
    #[serde(default, rename = "resMessage")]
    res_message: Option<String>,
    #[serde(default)]
    withdraw_amount: i64,
}

#[derive(Debug, Clone, Deserialize)]
struct BroadcastReply {
    #[serde(default)]
    result: bool,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct HistoryPage {
    #[serde(default)]
    data: Vec<HistoryTx>,
}

#[derive(Debug, Clone, Deserialize)]
struct HistoryTx {
    #[serde(rename = "txID")]
    tx_id: String,
    #[serde(default)]
    block_timestamp: i64,
    #[serde(default)]
    ret: Vec<HistoryRet>,
    raw_data: HistoryRaw,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct HistoryRet {
    #[serde(default, rename = "contractRet")]
    contract_ret: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
struct HistoryRaw {
    #[serde(default)]
    contract: Vec<HistoryContract>,
}

#[derive(Debug, Clone, Deserialize)]
struct HistoryContract {
    #[serde(rename = "type")]
    kind: String,
}

fn sun(what: &str, v: i64) -> Result<u128> {
    u128::try_from(v).map_err(|_| AdapterError::bad_response(CHAIN, format!("{what} is negative: {v}")))
}

fn to_i64(what: &str, a: u128) -> Result<i64> {
    i64::try_from(a).map_err(|_| AdapterError::bad_input(CHAIN, format!("{what} of {a} sun is beyond int64")))
}

fn ms_time(what: &str, ms: i64) -> Result<Timestamp> {
    ms.checked_mul(1_000_000)
        .map(Timestamp)
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what} {ms} ms is out of range")))
}

/// java-tron answers messages as text or as hex-encoded text: the text either way.
fn readable(message: &str) -> String {
    hex::decode(message)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_else(|| message.to_string())
}

/// A secp256k1 key from 32 bytes.
///
/// # Errors
/// [`AdapterError::Signer`] for another length or a scalar outside the curve's order.
pub fn signing_key(key: &SecretBytes) -> Result<SigningKey> {
    let bytes = key.expose();
    if bytes.len() != 32 {
        return Err(AdapterError::Signer(format!(
            "a TRON key is 32 bytes, not {}",
            bytes.len()
        )));
    }
    SigningKey::from_slice(bytes)
        .map_err(|_| AdapterError::Signer("the TRON key is not a valid secp256k1 scalar".into()))
}

/// The account state the operations are built from: votes (whole TRX), TRX frozen (sun)
/// and unfreezes (sun, expiry in ms).
#[derive(Debug, Clone, Default)]
struct Stake {
    balance: u128,
    frozen: u128,
    frozen_bandwidth: u128,
    votes: BTreeMap<String, u128>,
    unfreezes: Vec<(u128, i64)>,
}

impl Stake {
    fn voted_sun(&self) -> Result<u128> {
        self.votes
            .values()
            .try_fold(0u128, |acc, v| acc.checked_add(v.checked_mul(SUN_PER_TRX)?))
            .ok_or_else(|| AdapterError::bad_response(CHAIN, "votes overflow"))
    }

    /// TRX frozen and not voted, sun.
    fn unvoted(&self) -> Result<u128> {
        Ok(self.frozen.saturating_sub(self.voted_sun()?))
    }

    fn expired(&self, now_ms: i64) -> u128 {
        self.unfreezes.iter().filter(|u| u.1 <= now_ms).map(|u| u.0).sum()
    }
}

/// The TRON adapter.
pub struct TronAdapter {
    http: reqwest::Client,
    cfg: TronConfig,
    key: Secp256k1Key,
    address: Address,
    base58: String,
    params: OnceCell<ChainParams>,
}

impl std::fmt::Debug for TronAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TronAdapter")
            .field("api_url", &self.cfg.api_url)
            .field("address", &self.base58)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl TronAdapter {
    /// An adapter signing with `key` (its address is the treasury's): 32 secret bytes or
    /// a secp256k1 key pair in a PKCS#11 token.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an empty URL or a zero expiration;
    /// [`AdapterError::Signer`] for a key that is not secp256k1.
    pub fn new(cfg: TronConfig, key: impl Into<TreasuryKey>) -> Result<TronAdapter> {
        if cfg.api_url.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "api_url is empty"));
        }
        if cfg.expiration_secs == 0 || cfg.expiration_secs > 86_400 {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("expiration_secs {} is not in 1..=86400", cfg.expiration_secs),
            ));
        }
        let key = Secp256k1Key::from_treasury(CHAIN, key.into())?;
        let address = match &cfg.owner_address {
            Some(a) => {
                wire::parse_address(a).map_err(|e| AdapterError::bad_input(CHAIN, format!("owner_address: {e}")))?
            }
            None => wire::address_of(&key.verifying_key()),
        };
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("HTTP client: {e}")))?;
        Ok(TronAdapter {
            http,
            base58: wire::to_base58(&address),
            address,
            key,
            cfg,
            params: OnceCell::new(),
        })
    }

    /// The treasury's address (`T…`).
    pub fn address(&self) -> &str {
        &self.base58
    }

    async fn send(&self, path: &str, req: reqwest::RequestBuilder) -> Result<Value> {
        let req = match &self.cfg.api_key {
            Some(k) => req.header("TRON-PRO-API-KEY", k),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{path}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{path}: reading the reply: {e}")))?;
        if status.as_u16() == 429 || status.is_server_error() {
            return Err(AdapterError::transient(CHAIN, format!("{path}: HTTP {status}")));
        }
        if !status.is_success() {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("{path}: HTTP {status}: {text}"),
            ));
        }
        let v: Value = if text.trim().is_empty() {
            json!({})
        } else {
            serde_json::from_str(&text)
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("{path}: not JSON ({e}): {text}")))?
        };
        if let Some(e) = v.get("Error") {
            return Err(AdapterError::bad_response(CHAIN, format!("{path}: {e}")));
        }
        Ok(v)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.api_url.trim_end_matches('/'))
    }

    async fn post<T: DeserializeOwned>(&self, path: &str, body: Value) -> Result<T> {
        let v = self.send(path, self.http.post(self.url(path)).json(&body)).await?;
        serde_json::from_value(v.clone()).map_err(|e| AdapterError::bad_response(CHAIN, format!("{path}: {e}: {v}")))
    }

    async fn params(&self) -> Result<ChainParams> {
        self.params
            .get_or_try_init(|| async {
                let v: Value = self.post("/wallet/getchainparameters", json!({})).await?;
                let mut map: BTreeMap<String, i64> = BTreeMap::new();
                for p in v["chainParameter"].as_array().into_iter().flatten().take(1_000) {
                    if let Some(k) = p["key"].as_str() {
                        map.insert(k.to_string(), p["value"].as_i64().unwrap_or(0));
                    }
                }
                let get = |k: &str| -> Result<u64> {
                    let v = map
                        .get(k)
                        .copied()
                        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("chain parameter {k} missing")))?;
                    u64::try_from(v)
                        .ok()
                        .filter(|v| *v > 0)
                        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("chain parameter {k} = {v}")))
                };
                Ok(ChainParams {
                    maintenance_interval_ms: get("getMaintenanceTimeInterval")?,
                    unfreeze_delay_days: get("getUnfreezeDelayDays")?,
                    // not every node lists it: java-tron's default is one day
                    withdraw_cadence_days: get("getWitnessAllowanceFrozenTime").unwrap_or(1),
                })
            })
            .await
            .copied()
    }

    async fn head(&self) -> Result<BlockView> {
        self.post("/wallet/getnowblock", json!({})).await
    }

    async fn stake(&self) -> Result<Stake> {
        let a: AccountView = self
            .post("/wallet/getaccount", json!({"address": self.base58, "visible": true}))
            .await?;
        let mut s = Stake {
            balance: sun("balance", a.balance)?,
            ..Stake::default()
        };
        for f in &a.frozen_v2 {
            let amount = sun("frozenV2 amount", f.amount)?;
            s.frozen = s.frozen.saturating_add(amount);
            if f.kind.as_deref().is_none_or(|k| k == "BANDWIDTH") {
                s.frozen_bandwidth = s.frozen_bandwidth.saturating_add(amount);
            }
        }
        for v in a.votes.iter().take(MAX_VOTE_WITNESSES) {
            let w = wire::parse_address(&v.vote_address).map_err(|e| AdapterError::bad_response(CHAIN, e))?;
            *s.votes.entry(wire::to_base58(&w)).or_default() += sun("vote_count", v.vote_count)?;
        }
        for u in a.unfrozen_v2.iter().take(UNFREEZE_MAX_TIMES * 2) {
            s.unfreezes
                .push((sun("unfreeze_amount", u.unfreeze_amount)?, u.unfreeze_expire_time));
        }
        Ok(s)
    }

    fn owner(&self) -> Vec<u8> {
        self.address.to_vec()
    }

    fn vote_contract(&self, votes: &BTreeMap<String, u128>) -> Result<wire::Contract> {
        let mut list = Vec::new();
        for (w, n) in votes.iter().filter(|(_, n)| **n > 0) {
            let a = wire::parse_address(w).map_err(|e| AdapterError::bad_input(CHAIN, e))?;
            list.push(wire::Vote {
                vote_address: a.to_vec(),
                vote_count: to_i64("vote", *n)?,
            });
        }
        if list.len() > MAX_VOTE_WITNESSES {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{} witnesses: a vote names at most {MAX_VOTE_WITNESSES}", list.len()),
            ));
        }
        Ok(wire::contract(
            wire::VOTE_WITNESS,
            &wire::VoteWitness {
                owner_address: self.owner(),
                votes: list,
                support: false,
            },
        ))
    }

    /// Signs one transaction per contract against `head` (TAPOS), valid for
    /// `expiration_secs` after it; the payload is the JSON list of their hex encodings.
    fn sign_all(&self, head: &BlockView, contracts: Vec<wire::Contract>) -> Result<SignedTx> {
        let id = hex::decode(&head.block_id)
            .ok()
            .filter(|b| b.len() == 32)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("blockID {:?}", head.block_id)))?;
        let ts = head.block_header.raw_data.timestamp;
        let expiration = ts
            .checked_add(to_i64("expiration", u128::from(self.cfg.expiration_secs) * 1_000)?)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, "head block time overflows"))?;
        let number = head.block_header.raw_data.number.to_be_bytes();
        let mut txs = Vec::new();
        let mut last = String::new();
        for c in contracts {
            let raw = wire::Raw {
                ref_block_bytes: number[6..8].to_vec(),
                ref_block_hash: id[8..16].to_vec(),
                expiration,
                contract: vec![c],
                timestamp: ts,
            }
            .encode_to_vec();
            let tx_id = wire::tx_id(&raw);
            let signature = wire::sign(&self.key, &tx_id).map_err(AdapterError::Signer)?;
            let tx = wire::Transaction {
                raw_data: raw,
                signature: vec![signature],
            };
            txs.push(hex::encode(tx.encode_to_vec()));
            last = hex::encode(tx_id);
        }
        Ok(SignedTx {
            tx_id: last,
            payload: serde_json::to_string(&txs).map_err(|e| AdapterError::Signer(e.to_string()))?,
            valid_until: Some(ms_time("expiration", expiration)?),
        })
    }

    /// The transactions of a payload: (id, hex, expiration ms), checked against the
    /// recorded id.
    fn decode(&self, tx: &SignedTx) -> Result<Vec<(String, String, i64)>> {
        let list: Vec<String> = serde_json::from_str(&tx.payload)
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not a list of transactions: {e}")))?;
        let mut out = Vec::new();
        for h in list.iter().take(8) {
            let bytes =
                hex::decode(h).map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not hex: {e}")))?;
            let t = wire::Transaction::decode(bytes.as_slice())
                .map_err(|e| AdapterError::bad_input(CHAIN, format!("payload is not a transaction: {e}")))?;
            let raw = wire::Raw::decode(t.raw_data.as_slice())
                .map_err(|e| AdapterError::bad_input(CHAIN, format!("raw_data: {e}")))?;
            out.push((hex::encode(wire::tx_id(&t.raw_data)), h.clone(), raw.expiration));
        }
        match out.last() {
            Some((id, _, _)) if *id == tx.tx_id => Ok(out),
            Some((id, _, _)) => Err(AdapterError::bad_input(
                CHAIN,
                format!("payload's last transaction is {id}, not the recorded {}", tx.tx_id),
            )),
            None => Err(AdapterError::bad_input(CHAIN, "empty payload")),
        }
    }

    async fn info(&self, solid: bool, id: &str) -> Result<Option<TxInfo>> {
        let path = if solid {
            "/walletsolidity/gettransactioninfobyid"
        } else {
            "/wallet/gettransactioninfobyid"
        };
        let i: TxInfo = self.post(path, json!({ "value": id })).await?;
        Ok(i.id.is_some().then_some(i))
    }

    async fn seen(&self, id: &str) -> Result<bool> {
        if self.info(false, id).await?.is_some() {
            return Ok(true);
        }
        // in the node's pending pool, not yet in a block
        let v: Value = self
            .post("/wallet/gettransactionfrompending", json!({ "value": id }))
            .await?;
        Ok(v.get("txID").is_some())
    }

    async fn head_ms(&self) -> Result<i64> {
        Ok(self.head().await?.block_header.raw_data.timestamp)
    }

    fn check_unit(what: &str, amount: Amount) -> Result<()> {
        if amount.is_zero() || !amount.0.is_multiple_of(SUN_PER_TRX) {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{what} of {amount} sun: votes are whole TRX (multiples of {SUN_PER_TRX} sun, at least one)"),
            ));
        }
        Ok(())
    }

    fn witness(validator: &str) -> Result<String> {
        let a = wire::parse_address(validator).map_err(|e| AdapterError::bad_input(CHAIN, format!("witness: {e}")))?;
        Ok(wire::to_base58(&a))
    }
}

#[async_trait]
impl ChainAdapter for TronAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "TRX"
    }

    fn pooled_unbonding(&self) -> Option<&str> {
        Some(UNFREEZING)
    }

    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let p = self.params().await?;
        Ok(LiquidityModel {
            unbonding_period_secs: p.unfreeze_delay_days.saturating_mul(86_400),
            epoch_secs: p.maintenance_interval_ms / 1_000,
            epoch_aligned: false,
            // votes count from the next maintenance
            activation_epochs: 1,
            min_delegation: Amount(SUN_PER_TRX),
            rewards_auto_compound: false,
            claim_cadence_secs: p.withdraw_cadence_days.saturating_mul(86_400),
            claim_all_validators: true,
            max_operations_per_epoch: self.cfg.max_operations_per_epoch,
            instant_exit: false,
            earns_in_custody: false,
            stake_unit: Amount(SUN_PER_TRX),
            whole_position_exits: false,
        })
    }

    /// The maintenance period (6 h on mainnet and Nile): its index counts periods since
    /// 1970, from `/wallet/getnextmaintenancetime`.
    async fn epoch(&self) -> Result<EpochInfo> {
        let p = self.params().await?;
        let v: Value = self.post("/wallet/getnextmaintenancetime", json!({})).await?;
        let next = v["num"]
            .as_i64()
            .and_then(|n| u64::try_from(n).ok())
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("getnextmaintenancetime: {v}")))?;
        let start = next.saturating_sub(p.maintenance_interval_ms);
        Ok(EpochInfo {
            index: start / p.maintenance_interval_ms,
            start: ms_time("maintenance start", i64::try_from(start).unwrap_or(i64::MAX))?,
            secs: p.maintenance_interval_ms / 1_000,
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        ms_time("head block time", self.head_ms().await?)
    }

    /// The top 127 witnesses by votes (their voters share the voting reward), with
    /// `getBrokerage` as commission and produced / (produced + missed) as performance.
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        #[derive(Deserialize)]
        struct Witnesses {
            #[serde(default)]
            witnesses: Vec<WitnessView>,
        }
        let mut ws = self
            .post::<Witnesses>("/wallet/listwitnesses", json!({"visible": true}))
            .await?
            .witnesses;
        ws.sort_by(|a, b| b.vote_count.cmp(&a.vote_count).then(a.address.cmp(&b.address)));
        let mut out = Vec::new();
        for w in ws.into_iter().take(VOTING_REWARD_WITNESSES) {
            let id = wire::parse_address(&w.address)
                .map(|a| wire::to_base58(&a))
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("listwitnesses: {e}")))?;
            let b: Value = self
                .post("/wallet/getBrokerage", json!({"address": id, "visible": true}))
                .await?;
            let brokerage = b["brokerage"]
                .as_u64()
                .filter(|b| *b <= 100)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("getBrokerage {id}: {b}")))?;
            let produced = u64::try_from(w.total_produced).unwrap_or(0);
            let missed = u64::try_from(w.total_missed).unwrap_or(0);
            let performance_bps = produced
                .saturating_mul(10_000)
                .checked_div(produced + missed)
                .map_or(10_000, |p| u32::try_from(p).unwrap_or(10_000));
            out.push(ValidatorCandidate {
                name: if w.url.is_empty() { id.clone() } else { w.url },
                id,
                commission_bps: u32::try_from(brokerage * 100).unwrap_or(10_000),
                total_stake: Amount(sun("voteCount", w.vote_count)?.saturating_mul(SUN_PER_TRX)),
                performance_bps,
                active: true,
                own_validator: false,
            });
        }
        Ok(out)
    }

    /// Votes per witness (active), frozen TRX without a vote under [`UNVOTED`], and
    /// unfreezes under [`UNFREEZING`]: deactivating until their expiry, withdrawable
    /// (summed) after it.
    async fn positions(&self) -> Result<Vec<Position>> {
        let s = self.stake().await?;
        let now = self.head_ms().await?;
        let mut out: Vec<Position> = s
            .votes
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(w, n)| Position {
                validator: w.clone(),
                state: StakeState::Active,
                amount: Amount(n.saturating_mul(SUN_PER_TRX)),
                eta: None,
                account: None,
            })
            .collect();
        let unvoted = s.unvoted()?;
        if unvoted > 0 {
            out.push(Position {
                validator: UNVOTED.into(),
                state: StakeState::Active,
                amount: Amount(unvoted),
                eta: None,
                account: None,
            });
        }
        for (amount, expire) in s.unfreezes.iter().filter(|u| u.1 > now) {
            out.push(Position {
                validator: UNFREEZING.into(),
                state: StakeState::Deactivating,
                amount: Amount(*amount),
                eta: Some(ms_time("unfreeze_expire_time", *expire)?),
                account: None,
            });
        }
        let expired = s.expired(now);
        if expired > 0 {
            out.push(Position {
                validator: UNFREEZING.into(),
                state: StakeState::Withdrawable,
                amount: Amount(expired),
                eta: None,
                account: None,
            });
        }
        Ok(out)
    }

    /// Preflight: the account is activated (java-tron answers `{}` for an address that
    /// never received TRX), the chain parameters read, TronGrid's account history answers
    /// (rewards are found there), and an API key is set for TronGrid (it rate-limits
    /// anonymous callers); the fee per operation is the bandwidth reserve, 1 TRX.
    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let account: Value = self
            .post("/wallet/getaccount", json!({"address": self.base58, "visible": true}))
            .await?;
        let mut checks = vec![if account.get("address").is_some() {
            Check::pass("account", format!("{} is activated", self.base58))
        } else {
            Check::fail(
                "account",
                format!("{} is not activated on {}", self.base58, self.cfg.api_url),
                format!("send TRX to {} to activate it", self.base58),
            )
        }];
        let p = self.params().await?;
        checks.push(Check::pass(
            "chain parameters",
            format!(
                "maintenance every {} s, unfreeze delay {} days",
                p.maintenance_interval_ms / 1000,
                p.unfreeze_delay_days
            ),
        ));
        let path = format!("/v1/accounts/{}/transactions", self.base58);
        let req = self
            .http
            .get(self.url(&path))
            .query(&[("limit", "1"), ("only_confirmed", "true")]);
        checks.push(match self.send(&path, req).await {
            Ok(_) => Check::pass("history", "TronGrid /v1 account history answers"),
            Err(e) => Check::fail(
                "history",
                format!("{path}: {e}"),
                "point rpc_url at a node with TronGrid's /v1 routes (nile.trongrid.io, api.trongrid.io)",
            ),
        });
        if self.cfg.api_url.contains("trongrid.io") && self.cfg.api_key.is_none() {
            checks.push(Check::warn(
                "api key",
                "no TronGrid API key: anonymous callers are rate-limited",
                "set tron.api_key_env to a variable holding a TronGrid key",
            ));
        }
        let balance = account.get("balance").and_then(Value::as_i64).unwrap_or(0);
        Ok(Preflight {
            signer: Some(self.base58.clone()),
            fee_token: None,
            signer_balance: Some(Amount(u128::try_from(balance).unwrap_or(0))),
            fee_per_operation: Some(Amount(FEE_RESERVE_SUN)),
            checks,
        })
    }

    async fn spendable(&self) -> Result<Amount> {
        Ok(Amount(self.stake().await?.balance.saturating_sub(FEE_RESERVE_SUN)))
    }

    /// `getReward`: every witness's unclaimed voting reward, as one line under `*`
    /// (one `WithdrawBalance` takes it all).
    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        let v: Value = self
            .post("/wallet/getReward", json!({"address": self.base58, "visible": true}))
            .await?;
        let r = v["reward"].as_i64().unwrap_or(0);
        Ok(vec![(ALL_VALIDATORS.to_string(), Amount(sun("reward", r)?))])
    }

    /// Freezes what is not frozen yet (TRX frozen without a vote is used first) and votes
    /// the complete list plus `amount` TRX for `validator`.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a malformed witness, an amount that is not whole
    /// TRX, or a 31st witness; [`AdapterError::InsufficientFunds`] beyond the balance.
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let w = Self::witness(validator)?;
        Self::check_unit("delegation", amount)?;
        let s = self.stake().await?;
        let to_freeze = amount.0.saturating_sub(s.unvoted()?);
        let have = s.balance.saturating_sub(FEE_RESERVE_SUN);
        if to_freeze > have {
            return Err(AdapterError::InsufficientFunds {
                chain: CHAIN.into(),
                needed: to_freeze,
                available: have,
            });
        }
        let mut votes = s.votes.clone();
        *votes.entry(w).or_default() += amount.0 / SUN_PER_TRX;
        let mut contracts = Vec::new();
        if to_freeze > 0 {
            contracts.push(wire::contract(
                wire::FREEZE_BALANCE_V2,
                &wire::FreezeBalanceV2 {
                    owner_address: self.owner(),
                    frozen_balance: to_i64("freeze", to_freeze)?,
                    resource: wire::BANDWIDTH,
                },
            ));
        }
        contracts.push(self.vote_contract(&votes)?);
        self.sign_all(&self.head().await?, contracts)
    }

    /// Votes the list without `amount` TRX for `validator` (skipped when the list would
    /// be empty: the unfreeze then voids the votes itself), then unfreezes `amount`.
    /// When at least `amount` is frozen without a vote (an earlier attempt's vote
    /// landed), only unfreezes.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an amount that is not whole TRX or beyond the votes
    /// for `validator`, 32 unfreezes pending, or expired unfreezes not yet withdrawn (an
    /// unfreeze would sweep them into the balance without a withdrawal).
    async fn undelegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        Self::check_unit("undelegation", amount)?;
        let s = self.stake().await?;
        let head = self.head().await?;
        if s.expired(head.block_header.raw_data.timestamp) > 0 {
            return Err(AdapterError::bad_input(
                CHAIN,
                "expired unfreezes are waiting: withdraw them first (an unfreeze would sweep them into the balance)",
            ));
        }
        if s.unfreezes.len() >= UNFREEZE_MAX_TIMES {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{} unfreezes pending: at most {UNFREEZE_MAX_TIMES}", s.unfreezes.len()),
            ));
        }
        if amount.0 > s.frozen_bandwidth {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "undelegation of {amount} sun: only {} sun frozen for bandwidth",
                    s.frozen_bandwidth
                ),
            ));
        }
        let mut contracts = Vec::new();
        if s.unvoted()? < amount.0 {
            if validator == UNVOTED {
                return Err(AdapterError::bad_input(
                    CHAIN,
                    format!("only {} sun frozen without a vote", s.unvoted()?),
                ));
            }
            let w = Self::witness(validator)?;
            let trx = amount.0 / SUN_PER_TRX;
            let mut votes = s.votes.clone();
            let have = votes.get(&w).copied().unwrap_or(0);
            if have < trx {
                return Err(AdapterError::bad_input(
                    CHAIN,
                    format!("undelegation of {trx} TRX from {w}: only {have} votes there"),
                ));
            }
            votes.insert(w, have - trx);
            if votes.values().any(|n| *n > 0) {
                contracts.push(self.vote_contract(&votes)?);
            }
        }
        contracts.push(wire::contract(
            wire::UNFREEZE_BALANCE_V2,
            &wire::UnfreezeBalanceV2 {
                owner_address: self.owner(),
                unfreeze_balance: to_i64("unfreeze", amount.0)?,
                resource: wire::BANDWIDTH,
            },
        ));
        self.sign_all(&head, contracts)
    }

    /// `WithdrawExpireUnfreeze`: every expired unfreeze at once, so `amount` must be
    /// their sum (the withdrawable position).
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for another validator than [`UNFREEZING`] or another
    /// amount than the expired sum.
    async fn withdraw(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        if validator != UNFREEZING {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("withdrawals are from {UNFREEZING:?} (unfreezes are not per witness), not {validator:?}"),
            ));
        }
        let s = self.stake().await?;
        let head = self.head().await?;
        let expired = s.expired(head.block_header.raw_data.timestamp);
        if expired == 0 || expired != amount.0 {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "withdrawal of {amount} sun: WithdrawExpireUnfreeze takes every expired unfreeze, {expired} sun"
                ),
            ));
        }
        self.sign_all(
            &head,
            vec![wire::contract(
                wire::WITHDRAW_EXPIRE_UNFREEZE,
                &wire::OwnerOnly {
                    owner_address: self.owner(),
                },
            )],
        )
    }

    /// `WithdrawBalance`: every witness's voting reward (`validator` is informational).
    async fn claim_rewards(&self, _key: &str, _validator: &str) -> Result<SignedTx> {
        self.sign_all(
            &self.head().await?,
            vec![wire::contract(
                wire::WITHDRAW_BALANCE,
                &wire::OwnerOnly {
                    owner_address: self.owner(),
                },
            )],
        )
    }

    /// `/wallet/broadcasthex` for each transaction of the payload the chain has not seen.
    /// `DUP_TRANSACTION_ERROR` is success (a retry); busy nodes are transient; anything
    /// else is a rejection with java-tron's code and message.
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        for (id, hex_tx, _) in self.decode(tx)? {
            if self.seen(&id).await? {
                continue;
            }
            let r: BroadcastReply = self
                .post("/wallet/broadcasthex", json!({ "transaction": hex_tx }))
                .await?;
            if r.result {
                continue;
            }
            let code = r.code.unwrap_or_default();
            let message = readable(r.message.as_deref().unwrap_or(""));
            match code.as_str() {
                "DUP_TRANSACTION_ERROR" => continue,
                "SERVER_BUSY" | "NO_CONNECTION" | "NOT_ENOUGH_EFFECTIVE_CONNECTION" | "BLOCK_UNSOLIDIFIED" => {
                    return Err(AdapterError::transient(
                        CHAIN,
                        format!("broadcast {id}: {code} {message}"),
                    ))
                }
                _ => return Err(AdapterError::rejected(CHAIN, format!("{code}: {message}"))),
            }
        }
        Ok(())
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let mut at = None;
        for (id, _, expiration) in self.decode(tx)? {
            if let Some(i) = self.info(true, &id).await? {
                if i.result.as_deref() == Some("FAILED") {
                    return Ok(TxStatus::Failed {
                        reason: readable(i.res_message.as_deref().unwrap_or("FAILED")),
                    });
                }
                at = Some(ms_time("blockTimeStamp", i.block_time_stamp)?);
                continue;
            }
            if self.seen(&id).await? {
                return Ok(TxStatus::Pending);
            }
            return Ok(if self.head_ms().await? > expiration {
                TxStatus::Expired
            } else {
                TxStatus::NotFound
            });
        }
        Ok(at.map_or(TxStatus::NotFound, |at| TxStatus::Confirmed { at }))
    }

    /// Our confirmed `WithdrawBalance` transactions after the cursor (a block time, ms),
    /// from TronGrid's history, each with its `withdraw_amount`; keyed by block number.
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        let mut from: i64 = match cursor {
            Some(c) if !c.is_empty() => c
                .parse()
                .map_err(|_| AdapterError::bad_input(CHAIN, format!("reward cursor {c:?} is not a block time")))?,
            _ => 0,
        };
        let mut records = Vec::new();
        for _ in 0..MAX_HISTORY_PAGES {
            let path = format!("/v1/accounts/{}/transactions", self.base58);
            let (limit, min) = (HISTORY_PAGE.to_string(), from.to_string());
            let req = self.http.get(self.url(&path)).query(&[
                ("only_confirmed", "true"),
                ("only_from", "true"),
                ("order_by", "block_timestamp,asc"),
                ("limit", limit.as_str()),
                ("min_timestamp", min.as_str()),
            ]);
            let v = self.send(&path, req).await?;
            let page: HistoryPage = serde_json::from_value(v.clone())
                .map_err(|e| AdapterError::bad_response(CHAIN, format!("{path}: {e}")))?;
            let n = page.data.len();
            let mut last = from;
            for t in page.data.into_iter().take(HISTORY_PAGE) {
                last = last.max(t.block_timestamp);
                let claim = t
                    .raw_data
                    .contract
                    .first()
                    .is_some_and(|c| c.kind == "WithdrawBalanceContract");
                let ok = t.ret.first().and_then(|r| r.contract_ret.as_deref()) == Some("SUCCESS");
                if !(claim && ok) {
                    continue;
                }
                let i = self
                    .info(true, &t.tx_id)
                    .await?
                    .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{}: confirmed but no info", t.tx_id)))?;
                let amount = sun("withdraw_amount", i.withdraw_amount)?;
                if amount == 0 {
                    continue;
                }
                records.push(RewardRecord {
                    validator: ALL_VALIDATORS.into(),
                    epoch: u64::try_from(i.block_number).unwrap_or(0),
                    amount: Amount(amount),
                    at: ms_time("block_timestamp", t.block_timestamp)?,
                    kind: RewardKind::Claimed,
                });
            }
            // the next page starts at the last block time seen (inclusive: records are
            // keyed by block, so one read twice is the same record)
            let full_page = n >= HISTORY_PAGE && last != from;
            from = last;
            if !full_page {
                break;
            }
        }
        Ok(RewardsPage {
            records,
            cursor: from.to_string(),
        })
    }
}
