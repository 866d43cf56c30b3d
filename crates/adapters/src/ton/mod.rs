//! TON staking through the official **nominator pool** (ton-blockchain/nominator-pool,
//! `func/pool.fc`), from a wallet v4r2 that signs Ed25519 external messages, over
//! toncenter's HTTP API (v3; v2 for config parameters and as the fallback for sending).
//!
//! ```text
//!  delegate    wallet → pool, bounceable, value = amount + 1 TON (DEPOSIT_PROCESSING_FEE),
//!              comment "d": pool state 0 (not staking) → amount; else
//!              pending_deposit_amount (staked from the next election). The pool throws 67
//!              when amount + pending < min_nominator_stake, 65 when full, 61 for a
//!              sender outside the basechain: the message bounces back less fees
//!  undelegate  wallet → pool, 1 TON, comment "w": the WHOLE position (amount + pending).
//!              Paid at once when the pool is not staking, else a withdraw request the
//!              validator pays after recovering the stake (round end + stake_held_for)
//!  withdraw    nothing to send: the pool pays by itself (ChainAdapter::
//!              unbonding_returns_itself); the operation books the return
//!  rewards     compound into `amount` when the pool recovers its stake (distribute_share):
//!              ChainAdapter::rewards_from_positions books the growth over the ledger
//!  positions   get_nominator_data(addr) → (amount, pending_deposit_amount,
//!              withdraw_requested): active, activating; deactivating when requested
//!  replay      the wallet's seqno and valid_until (wallet v4r2 exit codes 33, 35, 36)
//!  status      transactionsByMessage(normalized hash) → the wallet's transaction → its
//!              message to the pool → the pool's transaction: aborted = failed (its exit
//!              code); not indexed 60 s past valid_until = expired; not indexed with the
//!              wallet's seqno past the message's = pending (landed, or another took it)
//! ```
//!
//! **Partial exits.** `w` always withdraws the whole position, so the exchange spreads its
//! stake over several pools (a validator usually runs two, for even and odd rounds) and
//! exits whole pools: [`LiquidityModel::whole_position_exits`] makes the planner
//! undelegate whole positions, and what it releases beyond the need returns to the buffer
//! and is delegated again at the next election. A partial undelegation is refused.
//!
//! **Single-nominator pools** (orbs-network/single-nominator `contracts/single-nominator.fc`,
//! for a validator the exchange runs itself; `single_nominator_pools`):
//!
//! ```text
//!  delegate    wallet → pool, bounceable, value = amount, EMPTY body (any other body from
//!              a stranger is ignored or throws 9). Checked first: get_roles' owner is our
//!              wallet, or the funds could never come back
//!  undelegate  wallet → pool, 0.1 TON, op 0x1000 (query_id, amount): the pool pays
//!              min(amount, balance − 1 TON − msg value) at once (mode 64), exit 0x2004
//!              when nothing is free. Stake at the elector cannot leave before the
//!              validator recovers it: an undelegation above what the pool holds is refused
//!  positions   the pool's balance less its 1 TON reserve = activating (our validator
//!              stakes it at the next elections); at the elector (ConfigParam 1):
//!              participant_list_extended (current elections) + past_elections' frozen
//!              dictionaries + compute_returned_stake (credits not recovered) = active
//!  rewards     the elector's bonuses, returned with the stake: growth, as above
//! ```
//!
//! Timing is read from the chain, not assumed: the round (epoch) is `ConfigParam 15`
//! `validators_elected_for` (65 536 s on mainnet), unbonding is that plus
//! `stake_held_for` (32 768 s); the current round is `ConfigParam 34`'s `utime_since` /
//! `utime_until`. Amounts are nanotons (1 TON = 10^9). The ticker stays TON (Toncoin
//! was renamed Gram in 2026; units and protocol are unchanged).

pub mod wire;

use async_trait::async_trait;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tlb_ton::MsgAddress;
use tokio::sync::OnceCell;

use softstake_core::{Amount, Timestamp};

use crate::ed25519::Ed25519Key;
use crate::error::{AdapterError, Result};
use crate::signer::{SecretBytes, TreasuryKey};
use crate::traits::{
    unix_secs_time, ChainAdapter, EpochInfo, LiquidityModel, Position, RewardsPage, SignedTx, StakeState, TxStatus,
    ValidatorCandidate,
};

const CHAIN: &str = "ton";
/// 1 TON in nanotons.
pub const TON: u128 = 1_000_000_000;
/// What the pool keeps of each deposit (`DEPOSIT_PROCESSING_FEE`, pool.fc), nanotons.
pub const DEPOSIT_FEE: u128 = TON;
/// Value sent with a withdrawal request `w`; the pool returns the excess, nanotons.
pub const WITHDRAW_VALUE: u128 = TON;
/// Kept in the wallet for its own fees and storage, nanotons (0.2 TON).
pub const GAS_RESERVE: u128 = TON / 5;
/// A wallet transaction's gas and forward fee, at most, nanotons (0.05 TON; a v4r2 send
/// costs about 0.004 TON on mainnet).
pub const GAS_PER_MESSAGE: u128 = TON / 20;
/// How long a signed external message stays valid, seconds (wallet `valid_until`).
pub const VALIDITY_SECS: u32 = 600;
/// How long after `valid_until` a message unknown to the indexer counts as expired (the
/// indexer's lag behind the chain), seconds.
pub const INDEX_LAG_SECS: u32 = 60;
/// Value sent with a single-nominator withdrawal (op 0x1000); the pool returns what its
/// gas leaves of it with the amount (mode 64), nanotons.
pub const SINGLE_WITHDRAW_VALUE: u128 = TON / 10;
/// What a single-nominator pool keeps for storage (`MIN_TON_FOR_STORAGE`), nanotons.
pub const SINGLE_MIN_TON_FOR_STORAGE: u128 = TON;
/// The prefix of a withdrawal's id: the pool pays by itself, nothing is sent.
const RETURNED: &str = "returned:";
/// Most pools one adapter reads (the loops' bound).
const MAX_POOLS: usize = 256;
/// Most elements read from one of the elector's lists (participants, past elections;
/// mainnet elects at most 400 validators).
const MAX_LIST: usize = 4_096;

/// Settings of the TON adapter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TonConfig {
    /// toncenter's base URL (`https://toncenter.com`, `https://testnet.toncenter.com`, a
    /// local chain); v3 lives under `/api/v3`, v2 under `/api/v2`.
    pub toncenter_url: String,
    /// toncenter API key (header `X-API-Key`); without one toncenter allows 1 request/s.
    pub api_key: Option<String>,
    /// The nominator pools the exchange delegates to (raw `-1:…` or user-friendly).
    pub pools: Vec<String>,
    /// Single-nominator pools our wallet owns (orbs-network/single-nominator), for a
    /// validator the exchange runs itself.
    pub single_nominator_pools: Vec<String>,
    /// Wallet v4r2 subwallet id (698983191 by default).
    pub wallet_id: u32,
    /// The network's global id the chain must report (ConfigParam 19: mainnet −239,
    /// testnet −3); `None` takes any.
    pub global_id: Option<i32>,
    /// Largest number of operations sent per round.
    pub max_operations_per_epoch: u32,
}

/// A nominator pool's `get_pool_data` (pool.fc `load_data`, flattened on the stack).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolData {
    /// 0 = not staking, 1 = stake sent to the elector, 2 = stake accepted.
    pub state: u128,
    /// Nominators in the pool.
    pub nominators_count: u128,
    /// Stake at the elector, nanotons.
    pub stake_amount_sent: u128,
    /// The validator's own stake in the pool, nanotons.
    pub validator_amount: u128,
    /// The validator's share of rewards, basis points of 10 000.
    pub validator_reward_share: u128,
    /// Most nominators the pool takes.
    pub max_nominators_count: u128,
    /// Smallest position a nominator may hold, nanotons.
    pub min_nominator_stake: u128,
    /// The election the stake was sent for (Unix seconds).
    pub stake_at: u128,
    /// `stake_held_for` saved at the last new_stake, seconds.
    pub stake_held_for: u128,
}

/// Our position in one pool (`get_nominator_data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Nominator {
    amount: u128,
    pending: u128,
    withdraw_requested: bool,
}

/// What a single-nominator pool holds, as its owner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SingleHolding {
    /// `get_roles`' owner (the only address that may withdraw).
    pub owner: MsgAddress,
    /// `get_roles`' validator (the wallet that stakes at the elector).
    pub validator: MsgAddress,
    /// The pool's balance less its 1 TON storage reserve: withdrawable now, nanotons.
    pub liquid: u128,
    /// What the elector holds for the pool (current elections, frozen, credits), nanotons.
    pub at_elector: u128,
    /// When the earliest frozen stake unfreezes (Unix seconds), if any.
    pub unfreeze_at: Option<u32>,
}

/// What a withdrawal books: the pool paid by itself.
#[derive(Debug, Serialize, Deserialize)]
struct Returned {
    pool: String,
    amount: String,
    at_secs: i64,
}

/// The TON adapter.
pub struct TonAdapter {
    http: reqwest::Client,
    cfg: TonConfig,
    key: Ed25519Key,
    wallet: MsgAddress,
    pools: Vec<MsgAddress>,
    singles: Vec<MsgAddress>,
    timing: OnceCell<[u32; 4]>,
    elector: OnceCell<MsgAddress>,
}

impl std::fmt::Debug for TonAdapter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TonAdapter")
            .field("toncenter_url", &self.cfg.toncenter_url)
            .field("wallet", &wire::raw(&self.wallet))
            .field("key", &"<redacted>")
            .finish()
    }
}

/// The 32-byte Ed25519 seed of a raw key: 32 seed bytes, or 64 bytes (seed ‖ public key).
///
/// # Errors
/// [`AdapterError::Signer`] for another length or a 64-byte key whose halves disagree.
pub fn seed(key: &SecretBytes) -> Result<[u8; 32]> {
    crate::ed25519::seed_or_keypair("TON", key)
}

fn amount_str(what: &str, v: &Value) -> Result<u128> {
    let s = v
        .as_str()
        .map(str::to_string)
        .or_else(|| v.as_u64().map(|n| n.to_string()))
        .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{what} is not an amount: {v}")))?;
    s.parse()
        .map_err(|_| AdapterError::bad_response(CHAIN, format!("{what} {s:?} is not an amount")))
}

/// What a pool's exit code means (pool.fc `throw_unless`).
pub fn pool_exit_reason(code: i64) -> &'static str {
    match code {
        9 => "the pool could not read the message body (cell underflow)",
        0x2004 => "the single-nominator pool holds nothing free to pay (the rest is at the elector)",
        60 | 69 | 86 => "not a nominator of this pool",
        61 => "nominators must be in the basechain",
        62 => "the validator cannot be a nominator",
        64 => "unknown comment (only d, w, y, n)",
        65 => "the pool is full (max_nominators_count)",
        66 => "the deposit does not cover the 1 TON processing fee",
        67 => "the position would be below min_nominator_stake",
        68 => "the nominators dictionary is too deep",
        _ => "refused by the pool",
    }
}

impl TonAdapter {
    /// An adapter signing with `key` (its wallet v4r2 is the treasury): 32 seed bytes, 64
    /// bytes, or an Ed25519 key pair in a PKCS#11 token.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for an empty URL, no pools, too many pools or a pool
    /// address that is not one; [`AdapterError::Signer`] for a key that is not Ed25519.
    pub fn new(cfg: TonConfig, key: impl Into<TreasuryKey>) -> Result<TonAdapter> {
        if cfg.toncenter_url.trim().is_empty() {
            return Err(AdapterError::bad_input(CHAIN, "toncenter_url is empty"));
        }
        let count = cfg.pools.len() + cfg.single_nominator_pools.len();
        if count == 0 || count > MAX_POOLS {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("pools: give 1 to {MAX_POOLS} nominator and single-nominator pools (have {count})"),
            ));
        }
        let pools = cfg
            .pools
            .iter()
            .map(|p| wire::parse_address("pool", p))
            .collect::<Result<Vec<_>>>()?;
        let singles = cfg
            .single_nominator_pools
            .iter()
            .map(|p| wire::parse_address("single-nominator pool", p))
            .collect::<Result<Vec<_>>>()?;
        let mut seen = std::collections::BTreeSet::new();
        for a in pools.iter().chain(&singles) {
            if !seen.insert(wire::raw(a)) {
                return Err(AdapterError::bad_input(
                    CHAIN,
                    format!("pool {} is configured twice", wire::raw(a)),
                ));
            }
        }
        let key = Ed25519Key::from_treasury(CHAIN, key.into(), seed)?;
        let wallet = wire::wallet_address(cfg.wallet_id, key.public_key())?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(30))
            .build()
            .map_err(|e| AdapterError::bad_input(CHAIN, format!("HTTP client: {e}")))?;
        Ok(TonAdapter {
            http,
            cfg,
            key,
            wallet,
            pools,
            singles,
            timing: OnceCell::new(),
            elector: OnceCell::new(),
        })
    }

    /// The treasury wallet's address, raw form `0:…`.
    pub fn address(&self) -> String {
        wire::raw(&self.wallet)
    }

    /// What [`ChainAdapter::spendable`] keeps back, nanotons.
    fn fee_reserve(&self) -> u128 {
        let per_deposit = DEPOSIT_FEE + GAS_PER_MESSAGE;
        GAS_RESERVE + per_deposit * self.pools.len() as u128 + GAS_PER_MESSAGE * self.singles.len() as u128
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.cfg.toncenter_url.trim_end_matches('/'))
    }

    /// A configured pool: its address and whether it is a single-nominator pool.
    fn pool(&self, validator: &str) -> Result<(MsgAddress, bool)> {
        let a = wire::parse_address("validator", validator)?;
        if self.pools.contains(&a) {
            return Ok((a, false));
        }
        if self.singles.contains(&a) {
            return Ok((a, true));
        }
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator} is not one of the configured pools"),
        ))
    }

    /// One toncenter call: the JSON on success. 429 and 5xx are transient; 4xx name the
    /// request.
    async fn call(&self, path: &str, req: reqwest::RequestBuilder) -> Result<(u16, Value)> {
        let req = match &self.cfg.api_key {
            Some(k) => req.header("X-API-Key", k),
            None => req,
        };
        let resp = req
            .send()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{path}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .text()
            .await
            .map_err(|e| AdapterError::transient(CHAIN, format!("{path}: reading the reply: {e}")))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            if status < 300 {
                AdapterError::bad_response(CHAIN, format!("{path}: not JSON ({e}): {text}"))
            } else {
                AdapterError::transient(CHAIN, format!("{path}: HTTP {status}: {text}"))
            }
        })?;
        if status == 429 || (status >= 500 && !is_rejection(&v)) {
            return Err(AdapterError::transient(CHAIN, format!("{path}: HTTP {status}: {v}")));
        }
        Ok((status, v))
    }

    async fn get(&self, path: &str) -> Result<Value> {
        let (status, v) = self.call(path, self.http.get(self.url(path))).await?;
        if status >= 300 {
            return Err(AdapterError::bad_response(CHAIN, format!("{path}: HTTP {status}: {v}")));
        }
        Ok(v)
    }

    /// A config parameter's cell (v2 `getConfigParam`).
    async fn config_param(&self, id: u32) -> Result<std::sync::Arc<tlb_ton::Cell>> {
        let path = format!("/api/v2/getConfigParam?config_id={id}");
        let v = self.get(&path).await?;
        let b64 = v
            .pointer("/result/config/bytes")
            .and_then(Value::as_str)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{path}: no result.config.bytes: {v}")))?;
        wire::boc_root(&format!("ConfigParam {id}"), b64)
    }

    /// ConfigParam 15, read once: (elected_for, start_before, end_before, held_for).
    async fn timing(&self) -> Result<[u32; 4]> {
        self.timing
            .get_or_try_init(|| async {
                let t = wire::config_15(&*self.config_param(15).await?)?;
                if t[0] == 0 {
                    return Err(AdapterError::bad_response(
                        CHAIN,
                        "ConfigParam 15: validators_elected_for is 0",
                    ));
                }
                Ok(t)
            })
            .await
            .copied()
    }

    /// A get-method's stack; `Ok(None)` when it exits with `none_on` (e.g. 86: not a
    /// nominator).
    async fn run_get(
        &self,
        addr: &MsgAddress,
        method: &str,
        stack: Vec<Value>,
        none_on: Option<i64>,
    ) -> Result<Option<Vec<Value>>> {
        let path = "/api/v3/runGetMethod";
        let body = json!({"address": wire::raw(addr), "method": method, "stack": stack});
        let (status, v) = self.call(path, self.http.post(self.url(path)).json(&body)).await?;
        if status >= 300 {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("{path} {method}: HTTP {status}: {v}"),
            ));
        }
        let code = v
            .get("exit_code")
            .and_then(Value::as_i64)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{path} {method}: no exit_code: {v}")))?;
        if code != 0 && code != 1 {
            if Some(code) == none_on {
                return Ok(None);
            }
            return Err(AdapterError::bad_response(
                CHAIN,
                format!(
                    "{method} on {}: exit code {code} (not the contract the config names?)",
                    wire::raw(addr)
                ),
            ));
        }
        let stack = v
            .get("stack")
            .and_then(Value::as_array)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("{path} {method}: no stack: {v}")))?;
        Ok(Some(stack.clone()))
    }

    /// `get_pool_data` of a pool.
    pub async fn pool_data(&self, pool: &MsgAddress) -> Result<PoolData> {
        let s = self
            .run_get(pool, "get_pool_data", vec![], None)
            .await?
            .unwrap_or_default();
        if s.len() < 16 {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!(
                    "get_pool_data on {}: {} stack entries, a nominator pool returns 17",
                    wire::raw(pool),
                    s.len()
                ),
            ));
        }
        let n = |i: usize, what: &str| wire::stack_uint(&format!("get_pool_data {what}"), &s[i]);
        Ok(PoolData {
            state: n(0, "state")?,
            nominators_count: n(1, "nominators_count")?,
            stake_amount_sent: n(2, "stake_amount_sent")?,
            validator_amount: n(3, "validator_amount")?,
            validator_reward_share: n(5, "validator_reward_share")?,
            max_nominators_count: n(6, "max_nominators_count")?,
            min_nominator_stake: n(8, "min_nominator_stake")?,
            stake_at: n(11, "stake_at")?,
            stake_held_for: n(15, "stake_held_for")?,
        })
    }

    async fn nominator(&self, pool: &MsgAddress) -> Result<Option<Nominator>> {
        let Some(s) = self
            .run_get(
                pool,
                "get_nominator_data",
                vec![wire::stack_arg_address(&self.wallet)],
                Some(86),
            )
            .await?
        else {
            return Ok(None);
        };
        if s.len() != 3 {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("get_nominator_data: {} stack entries, want 3", s.len()),
            ));
        }
        // withdraw_found is a FunC bool: -1 (true) or 0; toncenter prints -1 as "-0x1"
        let requested = s[2].get("value").and_then(Value::as_str).unwrap_or("0x0");
        Ok(Some(Nominator {
            amount: wire::stack_uint("get_nominator_data amount", &s[0])?,
            pending: wire::stack_uint("get_nominator_data pending_deposit_amount", &s[1])?,
            withdraw_requested: !matches!(requested, "0x0" | "0"),
        }))
    }

    /// The elector's address (ConfigParam 1), read once.
    async fn elector(&self) -> Result<MsgAddress> {
        self.elector
            .get_or_try_init(|| async { wire::config_1(&*self.config_param(1).await?) })
            .await
            .copied()
    }

    /// An account's balance (v3 `addressInformation`), nanotons.
    async fn account_balance(&self, a: &MsgAddress) -> Result<u128> {
        let path = format!("/api/v3/addressInformation?address={}&use_v2=false", wire::raw(a));
        let v = self.get(&path).await?;
        amount_str("balance", v.get("balance").unwrap_or(&json!("0")))
    }

    /// A get-method that must answer, with at least `min` stack entries.
    async fn run_get_min(&self, addr: &MsgAddress, method: &str, stack: Vec<Value>, min: usize) -> Result<Vec<Value>> {
        let s = self.run_get(addr, method, stack, None).await?.unwrap_or_default();
        if s.len() < min {
            return Err(AdapterError::bad_response(
                CHAIN,
                format!("{method} on {}: {} stack entries, want {min}", wire::raw(addr), s.len()),
            ));
        }
        Ok(s)
    }

    /// What the elector holds for `pool` (elector-code.fc get-methods): its stake in the
    /// current elections, its frozen stakes of past elections and its credits not yet
    /// recovered, nanotons; and the earliest unfreeze time of a frozen stake.
    async fn at_elector(&self, pool: &MsgAddress) -> Result<(u128, Option<u32>)> {
        let e = self.elector().await?;
        let add = |a: u128, b: u128, what: &str| {
            a.checked_add(b)
                .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("elector {what}: sum past u128")))
        };
        let mut held = 0u128;
        let s = self.run_get_min(&e, "participant_list_extended", vec![], 5).await?;
        for m in wire::stack_list("participant_list_extended", &s[4], MAX_LIST)? {
            let m = wire::stack_items("participant", m)?;
            let d = m.get(1).map(|d| wire::stack_items("participant data", d)).transpose()?;
            let (Some(stake), Some(addr)) = (d.and_then(|d| d.first()), d.and_then(|d| d.get(2))) else {
                return Err(AdapterError::bad_response(
                    CHAIN,
                    "participant: want [pubkey, [stake, max_factor, addr, adnl]]",
                ));
            };
            if wire::stack_u256("participant addr", addr)? == pool.address {
                held = add(held, wire::stack_uint("participant stake", stake)?, "participants")?;
            }
        }
        let mut unfreeze_at: Option<u32> = None;
        let s = self.run_get_min(&e, "past_elections", vec![], 1).await?;
        for past in wire::stack_list("past_elections", &s[0], MAX_LIST)? {
            let past = wire::stack_items("past election", past)?;
            if past.len() < 5 {
                return Err(AdapterError::bad_response(CHAIN, "past election: fewer than 5 entries"));
            }
            for f in wire::frozen_stakes(&past[4])?
                .into_iter()
                .filter(|f| f.addr == pool.address)
            {
                held = add(held, f.stake, "frozen stakes")?;
                let at = u32::try_from(wire::stack_uint("unfreeze_at", &past[1])?).unwrap_or(u32::MAX);
                unfreeze_at = Some(unfreeze_at.map_or(at, |u| u.min(at)));
            }
        }
        let s = self
            .run_get_min(&e, "compute_returned_stake", vec![wire::stack_arg_address(pool)], 1)
            .await?;
        held = add(held, wire::stack_uint("compute_returned_stake", &s[0])?, "credits")?;
        Ok((held, unfreeze_at))
    }

    /// A single-nominator pool's `get_roles`: (owner, validator).
    async fn roles(&self, pool: &MsgAddress) -> Result<(MsgAddress, MsgAddress)> {
        let roles = self.run_get_min(pool, "get_roles", vec![], 2).await?;
        Ok((
            wire::stack_address("get_roles owner", &roles[0])?,
            wire::stack_address("get_roles validator", &roles[1])?,
        ))
    }

    /// A single-nominator pool's roles and holdings.
    ///
    /// # Errors
    /// [`AdapterError::BadResponse`] for answers that are not single-nominator.fc's.
    pub async fn single_holding(&self, pool: &MsgAddress) -> Result<SingleHolding> {
        let (owner, validator) = self.roles(pool).await?;
        let balance = self.account_balance(pool).await?;
        let (at_elector, unfreeze_at) = self.at_elector(pool).await?;
        Ok(SingleHolding {
            owner,
            validator,
            liquid: balance.saturating_sub(SINGLE_MIN_TON_FOR_STORAGE),
            at_elector,
            unfreeze_at,
        })
    }

    /// Refuses `owner` unless it is our wallet: what a pool owned by another sends only
    /// to that owner.
    fn check_owner(&self, pool: &MsgAddress, owner: &MsgAddress) -> Result<()> {
        if *owner == self.wallet {
            return Ok(());
        }
        Err(AdapterError::bad_input(
            CHAIN,
            format!(
                "single-nominator pool {} is owned by {}, not by our wallet {}: funds sent there could not be withdrawn by us",
                wire::raw(pool),
                wire::raw(owner),
                self.address()
            ),
        ))
    }

    /// [`TonAdapter::single_holding`], refused unless our wallet owns the pool.
    async fn owned_single(&self, pool: &MsgAddress) -> Result<SingleHolding> {
        let h = self.single_holding(pool).await?;
        self.check_owner(pool, &h.owner)?;
        Ok(h)
    }

    /// The wallet: (status, seqno, balance) from v3 `walletInformation`; an account that is
    /// not a wallet yet (404 / 409) is read with `addressInformation` (seqno 0).
    async fn wallet_info(&self) -> Result<(String, u32, u128)> {
        let path = format!(
            "/api/v3/walletInformation?address={}&use_v2=false",
            wire::raw(&self.wallet)
        );
        let (code, mut v) = self.call(&path, self.http.get(self.url(&path))).await?;
        if code == 404 || code == 409 {
            // not a wallet (yet): an undeployed account; its balance from addressInformation
            let path = format!(
                "/api/v3/addressInformation?address={}&use_v2=false",
                wire::raw(&self.wallet)
            );
            v = self.get(&path).await?;
        } else if code >= 300 {
            return Err(AdapterError::bad_response(CHAIN, format!("{path}: HTTP {code}: {v}")));
        }
        let status = v.get("status").and_then(Value::as_str).unwrap_or("uninit").to_string();
        let seqno = v.get("seqno").and_then(Value::as_u64).unwrap_or(0);
        let seqno =
            u32::try_from(seqno).map_err(|_| AdapterError::bad_response(CHAIN, format!("seqno {seqno} past u32")))?;
        let balance = amount_str("balance", v.get("balance").unwrap_or(&json!("0")))?;
        Ok((status, seqno, balance))
    }

    /// The latest masterchain block's time.
    async fn chain_time(&self) -> Result<u32> {
        let v = self.get("/api/v3/masterchainInfo").await?;
        let t = v
            .pointer("/last/gen_utime")
            .and_then(|x| x.as_u64().or_else(|| x.as_str().and_then(|s| s.parse().ok())))
            .ok_or_else(|| {
                AdapterError::bad_response(CHAIN, format!("/api/v3/masterchainInfo: no last.gen_utime: {v}"))
            })?;
        u32::try_from(t).map_err(|_| AdapterError::bad_response(CHAIN, format!("gen_utime {t} past u32")))
    }

    /// Signs one message from the wallet: `value` nanotons to `pool` with `body` (none: an
    /// empty body).
    async fn send_to_pool(&self, pool: MsgAddress, value: u128, body: Option<tlb_ton::Cell>) -> Result<SignedTx> {
        let (status, seqno, balance) = self.wallet_info().await?;
        let need = value
            .checked_add(GAS_RESERVE)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, "amount overflows"))?;
        if balance < need {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("insufficient funds: need {need} nanotons (with fees), the wallet holds {balance}"),
            ));
        }
        let now = self.chain_time().await?;
        let valid_until = now.saturating_add(VALIDITY_SECS);
        let msg = wire::transfer(pool, value, true, body)?;
        let (body, hash) = wire::sign_body(self.cfg.wallet_id, valid_until, seqno, vec![msg])?;
        let signature = self.key.sign(&hash).await?;
        let deploy = (status != "active").then(|| (self.cfg.wallet_id, self.key.public_key()));
        let ext = wire::external(self.wallet, body, signature, deploy)?;
        Ok(SignedTx {
            tx_id: ext.hash_norm,
            payload: ext.boc,
            valid_until: Some(unix_secs_time(CHAIN, "valid_until", u64::from(valid_until))?),
        })
    }

    /// Transactions whose inbound message has `hash` (hex).
    async fn transactions_by_message(&self, hash: &str) -> Result<Vec<Value>> {
        let path = format!("/api/v3/transactionsByMessage?msg_hash={hash}&direction=in&limit=8");
        let (status, v) = self.call(&path, self.http.get(self.url(&path))).await?;
        if status == 404 {
            return Ok(Vec::new());
        }
        if status >= 300 {
            return Err(AdapterError::bad_response(CHAIN, format!("{path}: HTTP {status}: {v}")));
        }
        Ok(v.get("transactions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default())
    }

    /// The status of our external message: the wallet's transaction, then the pool's.
    async fn external_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        let txs = self.transactions_by_message(&tx.tx_id).await?;
        let Some(wallet_tx) = txs.first() else {
            // not indexed: expired once valid_until (and the indexer's lag) passed; while
            // the wallet's seqno has moved past the message's, it either landed and is not
            // indexed yet or another message took the seqno: pending, never re-signed early
            let now = self.chain_time().await?;
            let past = tx.valid_until.is_some_and(|v| {
                unix_secs_time(CHAIN, "now", u64::from(now.saturating_sub(INDEX_LAG_SECS))).is_ok_and(|n| n > v)
            });
            if past {
                return Ok(TxStatus::Expired);
            }
            let (_, seqno, _) = self.wallet_info().await?;
            let taken = seqno > wire::external_seqno(&tx.payload)?;
            return Ok(if taken { TxStatus::Pending } else { TxStatus::NotFound });
        };
        let out = wallet_tx
            .get("out_msgs")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let Some(msg) = out.first() else {
            return Ok(TxStatus::Failed {
                reason: "the wallet accepted the message but sent nothing (its balance could not pay)".into(),
            });
        };
        let hash = msg
            .get("hash")
            .and_then(Value::as_str)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("out message without hash: {msg}")))?;
        let hash = hex_of_hash(hash)?;
        let Some(pool_tx) = self.transactions_by_message(&hash).await?.into_iter().next() else {
            return Ok(TxStatus::Pending);
        };
        let d = pool_tx.get("description").cloned().unwrap_or(Value::Null);
        let aborted = d.get("aborted").and_then(Value::as_bool).unwrap_or(false);
        let code = d.pointer("/compute_ph/exit_code").and_then(Value::as_i64).unwrap_or(0);
        if aborted || (code != 0 && code != 1) {
            return Ok(TxStatus::Failed {
                reason: format!(
                    "the pool refused the message: exit code {code} ({}); the value bounced back less fees",
                    pool_exit_reason(code)
                ),
            });
        }
        let at = pool_tx
            .get("now")
            .and_then(Value::as_u64)
            .ok_or_else(|| AdapterError::bad_response(CHAIN, format!("transaction without now: {pool_tx}")))?;
        Ok(TxStatus::Confirmed {
            at: unix_secs_time(CHAIN, "transaction time", at)?,
        })
    }
}

impl TonAdapter {
    /// Op 0x1000 for `amount` to a single-nominator pool we own: paid at once from what it
    /// holds outside the elector.
    async fn single_withdraw(&self, pool: MsgAddress, amount: Amount) -> Result<SignedTx> {
        let h = self.owned_single(&pool).await?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "an undelegation of 0"));
        }
        if amount.0 > h.liquid {
            let when = h.unfreeze_at.map_or_else(String::new, |t| {
                format!(" (the earliest unfreezes at {t}, then our validator recovers it)")
            });
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "{}: the pool can pay {} nanotons now; {} are at the elector{when}: undelegate at most what it holds, or keep the validator out of the next elections",
                    wire::raw(&pool),
                    h.liquid,
                    h.at_elector
                ),
            ));
        }
        let query_id = u64::from(self.chain_time().await?);
        let body = wire::single_withdraw_body(query_id, amount.0)?;
        self.send_to_pool(pool, SINGLE_WITHDRAW_VALUE, Some(body)).await
    }
}

/// A toncenter message hash (base64 or hex) as hex.
fn hex_of_hash(h: &str) -> Result<String> {
    if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(h.to_ascii_lowercase());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(h)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(h))
        .map_err(|_| AdapterError::bad_response(CHAIN, format!("message hash {h:?} is neither hex nor base64")))?;
    Ok(hex::encode(bytes))
}

/// Whether an error reply is the chain refusing the message (not a server fault).
fn is_rejection(v: &Value) -> bool {
    let e = v.get("error").and_then(Value::as_str).unwrap_or("");
    e.contains("exitcode=") || e.contains("cannot apply external message")
}

#[async_trait]
impl ChainAdapter for TonAdapter {
    fn chain(&self) -> &str {
        CHAIN
    }

    fn token(&self) -> &str {
        "TON"
    }

    fn rewards_from_positions(&self) -> bool {
        true
    }

    fn unbonding_returns_itself(&self) -> bool {
        true
    }

    /// Round = ConfigParam 15 `validators_elected_for`; unbonding = that plus
    /// `stake_held_for`, at round boundaries; deposits earn from the next election; the
    /// minimum is the largest `min_nominator_stake` of the configured pools.
    async fn liquidity_model(&self) -> Result<LiquidityModel> {
        let t = self.timing().await?;
        let mut min = 1u128;
        for p in &self.pools {
            min = min.max(self.pool_data(p).await?.min_nominator_stake);
        }
        Ok(LiquidityModel {
            unbonding_period_secs: u64::from(t[0]) + u64::from(t[3]),
            epoch_secs: u64::from(t[0]),
            epoch_aligned: true,
            activation_epochs: 1,
            min_delegation: Amount(min),
            rewards_auto_compound: true,
            claim_cadence_secs: 0,
            claim_all_validators: false,
            max_operations_per_epoch: self.cfg.max_operations_per_epoch,
            instant_exit: false,
            earns_in_custody: false,
            stake_unit: Amount(1),
            whole_position_exits: true,
        })
    }

    /// The current validation round (ConfigParam 34): index = its `utime_since` (the
    /// election id), length = `utime_until − utime_since`.
    async fn epoch(&self) -> Result<EpochInfo> {
        let (since, until) = wire::config_34(&*self.config_param(34).await?)?;
        Ok(EpochInfo {
            index: u64::from(since),
            start: unix_secs_time(CHAIN, "utime_since", u64::from(since))?,
            secs: u64::from(until - since),
        })
    }

    async fn now(&self) -> Result<Timestamp> {
        unix_secs_time(CHAIN, "gen_utime", u64::from(self.chain_time().await?))
    }

    /// The configured pools: commission = `validator_reward_share`, stake = what the
    /// pool has at the elector (or its validator's own stake between rounds); a full pool
    /// we are not in is inactive. Single-nominator pools: commission 0 (the exchange's own
    /// validator), stake = what they hold; inactive unless our wallet owns them.
    async fn validators(&self) -> Result<Vec<ValidatorCandidate>> {
        let mut out = Vec::with_capacity(self.pools.len());
        for p in &self.pools {
            let d = self.pool_data(p).await?;
            let full = d.nominators_count >= d.max_nominators_count;
            let member = full && self.nominator(p).await?.is_some();
            out.push(ValidatorCandidate {
                id: wire::raw(p),
                name: p.to_base64_url(),
                commission_bps: u32::try_from(d.validator_reward_share.min(10_000)).unwrap_or(10_000),
                total_stake: Amount(d.stake_amount_sent.max(d.validator_amount)),
                performance_bps: 10_000,
                active: !full || member,
                own_validator: false,
            });
        }
        for p in &self.singles {
            // our own validator: no commission; ours only while our wallet owns it
            let h = self.single_holding(p).await?;
            out.push(ValidatorCandidate {
                id: wire::raw(p),
                name: p.to_base64_url(),
                commission_bps: 0,
                total_stake: Amount(h.liquid.saturating_add(h.at_elector)),
                performance_bps: 10_000,
                active: h.owner == self.wallet,
                own_validator: h.owner == self.wallet,
            });
        }
        Ok(out)
    }

    async fn positions(&self) -> Result<Vec<Position>> {
        let mut out = Vec::new();
        let t = self.timing().await?;
        for p in &self.pools {
            let Some(n) = self.nominator(p).await? else { continue };
            let validator = wire::raw(p);
            let pos = |state, amount, eta| Position {
                validator: validator.clone(),
                state,
                amount: Amount(amount),
                eta,
                account: None,
            };
            if n.withdraw_requested {
                let d = self.pool_data(p).await?;
                let secs = d.stake_at + u128::from(t[0]) + d.stake_held_for.max(u128::from(t[3]));
                let eta = u64::try_from(secs)
                    .ok()
                    .and_then(|s| unix_secs_time(CHAIN, "eta", s).ok());
                out.push(pos(StakeState::Deactivating, n.amount + n.pending, eta));
                continue;
            }
            if n.amount > 0 {
                out.push(pos(StakeState::Active, n.amount, None));
            }
            if n.pending > 0 {
                out.push(pos(StakeState::Activating, n.pending, None));
            }
        }
        for p in &self.singles {
            let h = self.owned_single(p).await?;
            let eta = h
                .unfreeze_at
                .and_then(|s| unix_secs_time(CHAIN, "unfreeze_at", u64::from(s)).ok());
            let pos = |state, amount, eta| Position {
                validator: wire::raw(p),
                state,
                amount: Amount(amount),
                eta,
                account: None,
            };
            if h.at_elector > 0 {
                out.push(pos(StakeState::Active, h.at_elector, eta));
            }
            if h.liquid > 0 {
                out.push(pos(StakeState::Activating, h.liquid, None));
            }
        }
        Ok(out)
    }

    /// The wallet's balance less what one deposit into every configured pool costs on
    /// top of its amount (the pool's 1 TON fee and the wallet's gas each) and the gas
    /// reserve: a plan delegating all of it to every pool can pay every deposit.
    async fn spendable(&self) -> Result<Amount> {
        let (_, _, balance) = self.wallet_info().await?;
        Ok(Amount(balance.saturating_sub(self.fee_reserve())))
    }

    async fn claimable(&self) -> Result<Vec<(String, Amount)>> {
        Ok(Vec::new())
    }

    /// `amount` + 1 TON to a nominator pool with comment `d`; `amount` with an empty body
    /// to a single-nominator pool.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for a pool not configured, zero, a position that would
    /// stay below the pool's `min_nominator_stake` (the pool would bounce it, exit code
    /// 67), a full pool, a single-nominator pool our wallet does not own, or too little
    /// in the wallet.
    async fn delegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let (pool, single) = self.pool(validator)?;
        if amount.is_zero() {
            return Err(AdapterError::bad_input(CHAIN, "a delegation of 0"));
        }
        if single {
            // a plain transfer: the pool takes any amount; our validator stakes it
            // only the owner matters here: the holdings need not be read
            let (owner, _) = self.roles(&pool).await?;
            self.check_owner(&pool, &owner)?;
            return self.send_to_pool(pool, amount.0, None).await;
        }
        let d = self.pool_data(&pool).await?;
        let held = self.nominator(&pool).await?;
        if held.is_some_and(|n| n.withdraw_requested) {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator}: our withdrawal is pending; deposit after the pool pays it"),
            ));
        }
        if held.is_none() && d.nominators_count >= d.max_nominators_count {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator}: {}", pool_exit_reason(65)),
            ));
        }
        let position = held.map_or(0, |n| n.amount + n.pending).saturating_add(amount.0);
        if position < d.min_nominator_stake {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!(
                    "{validator}: a position of {position} nanotons is below the pool's min_nominator_stake {}",
                    d.min_nominator_stake
                ),
            ));
        }
        let value = amount
            .0
            .checked_add(DEPOSIT_FEE)
            .ok_or_else(|| AdapterError::bad_input(CHAIN, "amount overflows"))?;
        self.send_to_pool(pool, value, Some(wire::comment("d"))).await
    }

    /// Comment `w` with 1 TON: the whole position leaves. From a single-nominator pool:
    /// op 0x1000 for `amount`, paid at once.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] for no position, a withdrawal already requested, or an
    /// amount other than the whole position; from a single-nominator pool, zero or more
    /// than the pool holds outside the elector.
    async fn undelegate(&self, _key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let (pool, single) = self.pool(validator)?;
        if single {
            return self.single_withdraw(pool, amount).await;
        }
        let n = self
            .nominator(&pool)
            .await?
            .ok_or_else(|| AdapterError::bad_input(CHAIN, format!("no position in {validator}")))?;
        if n.withdraw_requested {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator}: a withdrawal is already requested"),
            ));
        }
        let whole = n.amount + n.pending;
        if amount.0 != whole {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("the nominator pool withdraws the whole position: undelegate {whole} nanotons, not {amount}"),
            ));
        }
        self.send_to_pool(pool, WITHDRAW_VALUE, Some(wire::comment("w"))).await
    }

    /// Nothing to send: books what the pool paid back by itself.
    ///
    /// # Errors
    /// [`AdapterError::BadInput`] while the pool still holds our withdrawal request.
    async fn withdraw(&self, key: &str, validator: &str, amount: Amount) -> Result<SignedTx> {
        let (pool, single) = self.pool(validator)?;
        if !single && self.nominator(&pool).await?.is_some_and(|n| n.withdraw_requested) {
            return Err(AdapterError::bad_input(
                CHAIN,
                format!("{validator} has not paid our withdrawal yet: it pays after recovering its stake"),
            ));
        }
        let r = Returned {
            pool: wire::raw(&pool),
            amount: amount.0.to_string(),
            at_secs: i64::from(self.chain_time().await?),
        };
        Ok(SignedTx {
            tx_id: format!("{RETURNED}{key}"),
            payload: serde_json::to_string(&r).map_err(|e| AdapterError::Signer(e.to_string()))?,
            valid_until: None,
        })
    }

    /// Rewards compound into the position: there is nothing to claim.
    async fn claim_rewards(&self, _key: &str, validator: &str) -> Result<SignedTx> {
        Err(AdapterError::bad_input(
            CHAIN,
            format!("{validator}: pool rewards compound into the position; there is no claim"),
        ))
    }

    /// `POST /api/v3/message {boc}`, `/api/v2/sendBocReturnHash` when v3 is missing.
    /// Sending a message that is already on chain again is harmless (`Ok`).
    ///
    /// # Errors
    /// [`AdapterError::Rejected`] naming the wallet's exit code (33 seqno, 34 subwallet,
    /// 35 signature, 36 expired) for a message the chain refuses and does not hold.
    async fn broadcast(&self, tx: &SignedTx) -> Result<()> {
        if tx.tx_id.starts_with(RETURNED) {
            return Ok(());
        }
        let body = json!({"boc": tx.payload});
        let path = "/api/v3/message";
        let (mut status, mut v) = self.call(path, self.http.post(self.url(path)).json(&body)).await?;
        if status == 404 || status == 405 {
            let v2 = "/api/v2/sendBocReturnHash";
            (status, v) = self.call(v2, self.http.post(self.url(v2)).json(&body)).await?;
        }
        if status < 300 && v.get("ok").and_then(Value::as_bool) != Some(false) {
            return Ok(());
        }
        // the same message sent twice: the wallet refuses the old seqno, and the message is
        // on chain. Otherwise the refusal stands (a seqno another message took may still be
        // ours, not indexed yet: tx_status says pending, and the journal waits)
        if !self.transactions_by_message(&tx.tx_id).await?.is_empty() {
            return Ok(());
        }
        let error = v
            .get("error")
            .and_then(Value::as_str)
            .map_or_else(|| v.to_string(), str::to_string);
        Err(AdapterError::rejected(CHAIN, wallet_reason(&error)))
    }

    async fn tx_status(&self, tx: &SignedTx) -> Result<TxStatus> {
        if tx.tx_id.starts_with(RETURNED) {
            let r: Returned = serde_json::from_str(&tx.payload)
                .map_err(|e| AdapterError::bad_input(CHAIN, format!("withdrawal payload: {e}")))?;
            return Ok(TxStatus::Confirmed {
                at: Timestamp::from_unix_secs(r.at_secs).map_err(|e| AdapterError::bad_input(CHAIN, e.to_string()))?,
            });
        }
        self.external_status(tx).await
    }

    /// Rewards are booked from position growth
    /// ([`ChainAdapter::rewards_from_positions`]): no records here.
    async fn rewards_since(&self, cursor: Option<&str>) -> Result<RewardsPage> {
        Ok(RewardsPage {
            records: Vec::new(),
            cursor: cursor.unwrap_or("").to_string(),
        })
    }

    async fn preflight(&self) -> Result<crate::preflight::Preflight> {
        use crate::preflight::{Check, Preflight};
        let mut checks = Vec::new();
        let global = wire::config_19(&*self.config_param(19).await?)?;
        checks.push(match self.cfg.global_id {
            Some(want) if want == global => Check::pass("global id", format!("the network's global id is {global}")),
            Some(want) => Check::fail(
                "global id",
                format!("toncenter serves global id {global}, the config pins {want}"),
                "point toncenter_url at the network the config names (mainnet −239, testnet −3)",
            ),
            None => Check::warn(
                "global id",
                format!("not pinned; toncenter serves {global}"),
                "set global_id to refuse another network",
            ),
        });
        let t = self.timing().await?;
        checks.push(Check::pass(
            "round timing",
            format!(
                "ConfigParam 15: rounds of {} s, stake held {} s after a round",
                t[0], t[3]
            ),
        ));
        let (status, seqno, balance) = self.wallet_info().await?;
        checks.push(if balance > GAS_RESERVE + DEPOSIT_FEE {
            Check::pass(
                "wallet",
                format!("{} ({status}, seqno {seqno}) holds {balance} nanotons", self.address()),
            )
        } else {
            Check::fail(
                "wallet",
                format!("{} holds {balance} nanotons", self.address()),
                format!(
                    "send TON to {} (fees and the pools' 1 TON deposit fee are paid from it)",
                    self.wallet.to_base64_url_flags(true, false)
                ),
            )
        });
        for p in &self.pools {
            checks.push(match self.pool_data(p).await {
                Ok(d) => Check::pass(
                    "nominator pool",
                    format!(
                        "{}: {} of {} nominators, min stake {} nanotons, validator share {} bps",
                        wire::raw(p),
                        d.nominators_count,
                        d.max_nominators_count,
                        d.min_nominator_stake,
                        d.validator_reward_share
                    ),
                ),
                Err(e) => Check::fail(
                    "nominator pool",
                    format!("{}: {e}", wire::raw(p)),
                    "configure the address of a nominator pool",
                ),
            });
        }
        for p in &self.singles {
            checks.push(match self.single_holding(p).await {
                Ok(h) if h.owner == self.wallet => Check::pass(
                    "single-nominator pool",
                    format!(
                        "{}: owned by our wallet, validator {}, {} nanotons free, {} at the elector",
                        wire::raw(p),
                        wire::raw(&h.validator),
                        h.liquid,
                        h.at_elector
                    ),
                ),
                Ok(h) => Check::fail(
                    "single-nominator pool",
                    format!("{}: owned by {}, not by our wallet", wire::raw(p), wire::raw(&h.owner)),
                    "configure only single-nominator pools whose owner is the treasury wallet",
                ),
                Err(e) => Check::fail(
                    "single-nominator pool",
                    format!("{}: {e}", wire::raw(p)),
                    "configure the address of a single-nominator pool (orbs-network/single-nominator)",
                ),
            });
        }
        Ok(Preflight {
            signer: Some(self.address()),
            fee_token: None,
            signer_balance: Some(Amount(balance)),
            fee_per_operation: Some(Amount(DEPOSIT_FEE)),
            checks,
        })
    }
}

/// The wallet contract's refusal in words (wallet v4r2 exit codes).
fn wallet_reason(error: &str) -> String {
    let what = if error.contains("exitcode=33") {
        "wrong seqno (replayed or stale)"
    } else if error.contains("exitcode=34") {
        "wrong subwallet id"
    } else if error.contains("exitcode=35") {
        "bad signature"
    } else if error.contains("exitcode=36") {
        "expired (valid_until passed)"
    } else {
        "refused"
    };
    format!("the wallet refused the message: {what}: {error}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_wallet_reasons_name_the_exit_code() {
        assert!(wallet_reason("... exitcode=35, steps=4").contains("bad signature"));
        assert!(wallet_reason("exitcode=33").contains("seqno"));
        assert!(wallet_reason("exitcode=36").contains("expired"));
    }

    #[test]
    fn success_hashes_decode_from_base64_or_hex() {
        let h = [0xabu8; 32];
        let b64 = base64::engine::general_purpose::STANDARD.encode(h);
        assert_eq!(hex_of_hash(&b64).unwrap(), hex::encode(h));
        assert_eq!(hex_of_hash(&hex::encode(h)).unwrap(), hex::encode(h));
        assert!(hex_of_hash("??").is_err());
    }

    #[test]
    fn fail_config_without_pools_or_with_garbage() {
        let cfg = TonConfig {
            toncenter_url: "http://127.0.0.1:1".into(),
            api_key: None,
            pools: vec![],
            single_nominator_pools: vec![],
            wallet_id: wire::DEFAULT_WALLET_ID,
            global_id: None,
            max_operations_per_epoch: 8,
        };
        let key = SecretBytes::new(vec![1u8; 32]);
        assert!(TonAdapter::new(cfg.clone(), key.clone())
            .unwrap_err()
            .to_string()
            .contains("pools"));
        let bad = TonConfig {
            pools: vec!["nope".into()],
            ..cfg.clone()
        };
        assert!(TonAdapter::new(bad, key)
            .unwrap_err()
            .to_string()
            .contains("not a TON address"));
        let pool = "-1:".to_string() + &"ab".repeat(32);
        let twice = TonConfig {
            pools: vec![pool.clone()],
            single_nominator_pools: vec![pool],
            ..cfg
        };
        assert!(TonAdapter::new(twice, SecretBytes::new(vec![1u8; 32]))
            .unwrap_err()
            .to_string()
            .contains("configured twice"));
    }
}
